#include "daemon/config.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/digest.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/strv.h"
#include "util/time.h"
#include "util/toml.h"

/* The host platform in Go's GOARCH words, as containerd's runtime.v2.task default platforms prints it. */
#if defined(__x86_64__)
#define HOST_GOARCH "amd64"
#elif defined(__aarch64__)
#define HOST_GOARCH "arm64"
#elif defined(__i386__)
#define HOST_GOARCH "386"
#elif defined(__arm__)
#define HOST_GOARCH "arm"
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HOST_GOARCH "ppc64le"
#elif defined(__s390x__)
#define HOST_GOARCH "s390x"
#elif defined(__riscv) && __riscv_xlen == 64
#define HOST_GOARCH "riscv64"
#else
#define HOST_GOARCH "unknown"
#endif

#define CRI "plugins.\"io.containerd.grpc.v1.cri\""
#define MAX_IMPORTED_FILES 64

/* The schema: one row per key, in the order `containerd config default` prints them. Loading walks it
 * to read and mark keys; printing walks it to write the file, so the two cannot drift apart. */
enum field_type {
        F_STR,      /* char * */
        F_DUR,      /* char *, validated as a Go duration */
        F_INT,      /* int64_t within [min, max] */
        F_BOOL,     /* bool */
        F_FLOAT,    /* double */
        F_STRV,     /* char ** */
        F_KNOWN,    /* a containerd key krill accepts and ignores; printed as dflt */
        F_TABLE,    /* key names a table whose keys have their own rows */
        F_OPAQUE,   /* key names a table accepted as a whole (maps krill does not interpret) */
        F_RUNTIMES, /* the CRI runtimes map */
        F_TIMEOUTS, /* the [timeouts] map */
        F_REGISTRY_HOSTS, /* the CRI registry.configs map */
};

#define NOPRINT 0x1 /* accepted containerd plugin krill does not have: not in `config default` */

struct field {
        const char *table; /* TOML path of the containing table ("" = the top level) */
        const char *key;
        enum field_type type;
        size_t off;
        int64_t min, max;
        const char *dflt; /* F_KNOWN: TOML text printed by `config default` */
        unsigned flags;
};

#define C(m) offsetof(struct krill_config, m)
#define R(m) offsetof(struct krill_config_runtime, m)
#define STR(t, k, m) {t, k, F_STR, C(m), 0, 0, NULL, 0}
#define DUR(t, k, m) {t, k, F_DUR, C(m), 0, 0, NULL, 0}
#define INT(t, k, m, lo, hi) {t, k, F_INT, C(m), lo, hi, NULL, 0}
#define BOOL(t, k, m) {t, k, F_BOOL, C(m), 0, 0, NULL, 0}
#define STRV(t, k, m) {t, k, F_STRV, C(m), 0, 0, NULL, 0}
#define KNOWN(t, k, d) {t, k, F_KNOWN, 0, 0, 0, d, 0}
#define HIDDEN(t, k) {t, k, F_KNOWN, 0, 0, 0, NULL, NOPRINT}
#define TABLE(t, k) {t, k, F_TABLE, 0, 0, 0, NULL, 0}
#define OPAQUE(t, k) {t, k, F_OPAQUE, 0, 0, 0, NULL, 0}
#define OPAQUE_HIDDEN(t, k) {t, k, F_OPAQUE, 0, 0, 0, NULL, NOPRINT}

#define ID_MAX 4294967294LL /* uid/gid: uint32 minus the -1 sentinel */

static const struct field config_fields[] = {
        STRV("", "disabled_plugins", disabled_plugins),
        STRV("", "imports", imports),
        INT("", "oom_score", oom_score, -1000, 1000),
        STR("", "plugin_dir", plugin_dir),
        STRV("", "required_plugins", required_plugins),
        STR("", "root", root),
        STR("", "state", state),
        STR("", "temp", temp),
        INT("", "version", version, 1, 100),

        TABLE("", "cgroup"),
        STR("cgroup", "path", cgroup.path),

        TABLE("", "debug"),
        STR("debug", "address", debug.address),
        STR("debug", "format", debug.format),
        INT("debug", "gid", debug.gid, 0, ID_MAX),
        STR("debug", "level", debug.level),
        INT("debug", "uid", debug.uid, 0, ID_MAX),

        TABLE("", "grpc"),
        STR("grpc", "address", grpc.address),
        INT("grpc", "gid", grpc.gid, 0, ID_MAX),
        INT("grpc", "max_recv_message_size", grpc.max_recv_message_size, 1, INT32_MAX),
        INT("grpc", "max_send_message_size", grpc.max_send_message_size, 1, INT32_MAX),
        STR("grpc", "tcp_address", grpc.tcp_address),
        STR("grpc", "tcp_tls_ca", grpc.tcp_tls_ca),
        STR("grpc", "tcp_tls_cert", grpc.tcp_tls_cert),
        STR("grpc", "tcp_tls_key", grpc.tcp_tls_key),
        INT("grpc", "uid", grpc.uid, 0, ID_MAX),

        TABLE("", "metrics"),
        STR("metrics", "address", metrics.address),
        BOOL("metrics", "grpc_histogram", metrics.grpc_histogram),

        TABLE("", "plugins"),

        TABLE("plugins", "io.containerd.gc.v1.scheduler"),
        INT("plugins.\"io.containerd.gc.v1.scheduler\"", "deletion_threshold", gc.deletion_threshold, 0, INT32_MAX),
        INT("plugins.\"io.containerd.gc.v1.scheduler\"", "mutation_threshold", gc.mutation_threshold, 0, INT32_MAX),
        {"plugins.\"io.containerd.gc.v1.scheduler\"", "pause_threshold", F_FLOAT, C(gc.pause_threshold), 0, 0, NULL, 0},
        DUR("plugins.\"io.containerd.gc.v1.scheduler\"", "schedule_delay", gc.schedule_delay),
        DUR("plugins.\"io.containerd.gc.v1.scheduler\"", "startup_delay", gc.startup_delay),

        TABLE("plugins", "io.containerd.grpc.v1.cri"),
        BOOL(CRI, "device_ownership_from_security_context", cri.device_ownership_from_security_context),
        BOOL(CRI, "disable_apparmor", cri.disable_apparmor),
        BOOL(CRI, "disable_cgroup", cri.disable_cgroup),
        BOOL(CRI, "disable_hugetlb_controller", cri.disable_hugetlb_controller),
        BOOL(CRI, "disable_proc_mount", cri.disable_proc_mount),
        KNOWN(CRI, "disable_tcp_service", "true"),
        BOOL(CRI, "enable_selinux", cri.enable_selinux),
        BOOL(CRI, "enable_tls_streaming", cri.enable_tls_streaming),
        BOOL(CRI, "enable_unprivileged_icmp", cri.enable_unprivileged_icmp),
        BOOL(CRI, "enable_unprivileged_ports", cri.enable_unprivileged_ports),
        BOOL(CRI, "ignore_image_defined_volumes", cri.ignore_image_defined_volumes),
        INT(CRI, "max_concurrent_downloads", cri.max_concurrent_downloads, 1, 1024),
        INT(CRI, "max_container_log_line_size", cri.max_container_log_line_size, -1, INT32_MAX),
        BOOL(CRI, "netns_mounts_under_state_dir", cri.netns_mounts_under_state_dir),
        BOOL(CRI, "restrict_oom_score_adj", cri.restrict_oom_score_adj),
        STR(CRI, "sandbox_image", cri.sandbox_image),
        INT(CRI, "selinux_category_range", cri.selinux_category_range, 0, INT32_MAX),
        INT(CRI, "stats_collect_period", cri.stats_collect_period, 0, INT32_MAX),
        DUR(CRI, "stream_idle_timeout", cri.stream_idle_timeout),
        STR(CRI, "stream_server_address", cri.stream_server_address),
        STR(CRI, "stream_server_port", cri.stream_server_port),
        BOOL(CRI, "systemd_cgroup", cri.systemd_cgroup),
        BOOL(CRI, "tolerate_missing_hugetlb_controller", cri.tolerate_missing_hugetlb_controller),
        STR(CRI, "unset_seccomp_profile", cri.unset_seccomp_profile),

        TABLE(CRI, "cni"),
        STR(CRI ".cni", "bin_dir", cri.cni.bin_dir),
        STR(CRI ".cni", "conf_dir", cri.cni.conf_dir),
        STR(CRI ".cni", "conf_template", cri.cni.conf_template),
        STR(CRI ".cni", "ip_pref", cri.cni.ip_pref),
        INT(CRI ".cni", "max_conf_num", cri.cni.max_conf_num, 0, INT32_MAX),

        TABLE(CRI, "containerd"),
        STR(CRI ".containerd", "default_runtime_name", cri.containerd.default_runtime_name),
        BOOL(CRI ".containerd", "disable_snapshot_annotations", cri.containerd.disable_snapshot_annotations),
        BOOL(CRI ".containerd", "discard_unpacked_layers", cri.containerd.discard_unpacked_layers),
        KNOWN(CRI ".containerd", "ignore_rdt_not_enabled_errors", "false"),
        BOOL(CRI ".containerd", "no_pivot", cri.containerd.no_pivot),
        STR(CRI ".containerd", "snapshotter", cri.containerd.snapshotter),
        /* Deprecated in containerd 1.6 in favour of runtimes.<default_runtime_name>; accepted whole. */
        OPAQUE_HIDDEN(CRI ".containerd", "default_runtime"),
        {CRI ".containerd", "runtimes", F_RUNTIMES, 0, 0, 0, NULL, 0},
        OPAQUE_HIDDEN(CRI ".containerd", "untrusted_workload_runtime"),

        TABLE(CRI, "image_decryption"),
        KNOWN(CRI ".image_decryption", "key_model", "\"node\""),

        TABLE(CRI, "registry"),
        STR(CRI ".registry", "config_path", cri.registry.config_path),
        /* Deprecated per-registry tables (config_path replaces them); accepted whole. */
        OPAQUE(CRI ".registry", "auths"),
        {CRI ".registry", "configs", F_REGISTRY_HOSTS, 0, 0, 0, NULL, 0},
        OPAQUE(CRI ".registry", "headers"),
        OPAQUE(CRI ".registry", "mirrors"),

        TABLE(CRI, "x509_key_pair_streaming"),
        KNOWN(CRI ".x509_key_pair_streaming", "tls_cert_file", "\"\""),
        KNOWN(CRI ".x509_key_pair_streaming", "tls_key_file", "\"\""),

        TABLE("plugins", "io.containerd.internal.v1.opt"),
        STR("plugins.\"io.containerd.internal.v1.opt\"", "path", opt_path),

        TABLE("plugins", "io.containerd.internal.v1.restart"),
        DUR("plugins.\"io.containerd.internal.v1.restart\"", "interval", restart_interval),

        /* containerd's metadata store is bolt; krill's is LMDB. Both keys configure the same store. */
        OPAQUE_HIDDEN("plugins", "io.containerd.metadata.v1.bolt"),
        TABLE("plugins", "io.containerd.metadata.v1.lmdb"),
        STR("plugins.\"io.containerd.metadata.v1.lmdb\"", "content_sharing_policy", metadata.content_sharing_policy),

        OPAQUE_HIDDEN("plugins", "io.containerd.monitor.v1.cgroups"),
        OPAQUE_HIDDEN("plugins", "io.containerd.runtime.v1.linux"),

        TABLE("plugins", "io.containerd.runtime.v2.task"),
        STRV("plugins.\"io.containerd.runtime.v2.task\"", "platforms", task.platforms),
        BOOL("plugins.\"io.containerd.runtime.v2.task\"", "sched_core", task.sched_core),

        TABLE("plugins", "io.containerd.service.v1.diff-service"),
        STRV("plugins.\"io.containerd.service.v1.diff-service\"", "default", diff_default),

        OPAQUE_HIDDEN("plugins", "io.containerd.service.v1.tasks-service"),
        OPAQUE_HIDDEN("plugins", "io.containerd.snapshotter.v1.aufs"),
        OPAQUE_HIDDEN("plugins", "io.containerd.snapshotter.v1.btrfs"),
        OPAQUE_HIDDEN("plugins", "io.containerd.snapshotter.v1.devmapper"),

        TABLE("plugins", "io.containerd.snapshotter.v1.native"),
        STR("plugins.\"io.containerd.snapshotter.v1.native\"", "root_path", native.root_path),

        TABLE("plugins", "io.containerd.snapshotter.v1.overlayfs"),
        STR("plugins.\"io.containerd.snapshotter.v1.overlayfs\"", "root_path", overlayfs.root_path),
        BOOL("plugins.\"io.containerd.snapshotter.v1.overlayfs\"", "upperdir_label", overlayfs.upperdir_label),

        OPAQUE_HIDDEN("plugins", "io.containerd.snapshotter.v1.zfs"),

        OPAQUE("", "proxy_plugins"),
        OPAQUE("", "stream_processors"),
        {"", "timeouts", F_TIMEOUTS, 0, 0, 0, NULL, 0},

        TABLE("", "ttrpc"),
        STR("ttrpc", "address", ttrpc.address),
        INT("ttrpc", "gid", ttrpc.gid, 0, ID_MAX),
        INT("ttrpc", "uid", ttrpc.uid, 0, ID_MAX),
};

/* Rows of one runtime handler; tables relative to [...runtimes.<name>]. */
static const struct field runtime_fields[] = {
        {"", "base_runtime_spec", F_STR, R(base_runtime_spec), 0, 0, NULL, 0},
        {"", "cni_conf_dir", F_STR, R(cni_conf_dir), 0, 0, NULL, 0},
        {"", "cni_max_conf_num", F_INT, R(cni_max_conf_num), 0, INT32_MAX, NULL, 0},
        {"", "container_annotations", F_STRV, R(container_annotations), 0, 0, NULL, 0},
        {"", "pod_annotations", F_STRV, R(pod_annotations), 0, 0, NULL, 0},
        {"", "privileged_without_host_devices", F_BOOL, R(privileged_without_host_devices), 0, 0, NULL, 0},
        {"", "runtime_engine", F_KNOWN, 0, 0, 0, "\"\"", 0},
        {"", "runtime_path", F_STR, R(runtime_path), 0, 0, NULL, 0},
        {"", "runtime_root", F_KNOWN, 0, 0, 0, "\"\"", 0},
        {"", "runtime_type", F_STR, R(runtime_type), 0, 0, NULL, 0},
        {"", "options", F_TABLE, 0, 0, 0, NULL, 0},
        {"options", "BinaryName", F_STR, R(binary_name), 0, 0, NULL, 0},
        {"options", "CriuImagePath", F_KNOWN, 0, 0, 0, "\"\"", 0},
        {"options", "CriuPath", F_KNOWN, 0, 0, 0, "\"\"", 0},
        {"options", "CriuWorkPath", F_KNOWN, 0, 0, 0, "\"\"", 0},
        {"options", "IoGid", F_INT, R(io_gid), 0, ID_MAX, NULL, 0},
        {"options", "IoUid", F_INT, R(io_uid), 0, ID_MAX, NULL, 0},
        {"options", "NoNewKeyring", F_BOOL, R(no_new_keyring), 0, 0, NULL, 0},
        {"options", "NoPivotRoot", F_BOOL, R(no_pivot_root), 0, 0, NULL, 0},
        {"options", "Root", F_STR, R(root), 0, 0, NULL, 0},
        {"options", "ShimCgroup", F_STR, R(shim_cgroup), 0, 0, NULL, 0},
        {"options", "SystemdCgroup", F_BOOL, R(systemd_cgroup), 0, 0, NULL, 0},
};

#define H(m) offsetof(struct krill_config_registry_host, m)
static const struct field registry_host_fields[] = {
        {"", "auth", F_TABLE, 0, 0, 0, NULL, 0},
        {"auth", "auth", F_STR, H(auth), 0, 0, NULL, 0},
        {"auth", "identitytoken", F_STR, H(identitytoken), 0, 0, NULL, 0},
        {"auth", "password", F_STR, H(password), 0, 0, NULL, 0},
        {"auth", "username", F_STR, H(username), 0, 0, NULL, 0},
        /* TLS settings per host: hosts.toml (config_path) is how krill configures them; accepted, not printed */
        {"", "tls", F_OPAQUE, 0, 0, 0, NULL, NOPRINT},
};

#define FIELD(base, f, type) ((type *)((char *)(base) + (f)->off))

/* ---- lifecycle ---- */

static void fields_init_strings(void *obj, const struct field *fields, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                const struct field *f = &fields[i];
                if ((f->type == F_STR || f->type == F_DUR) && !*FIELD(obj, f, char *))
                        *FIELD(obj, f, char *) = xstrdup("");
                else if (f->type == F_STRV && !*FIELD(obj, f, char **))
                        *FIELD(obj, f, char **) = strv_new_empty();
        }
}

static void fields_free(void *obj, const struct field *fields, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                const struct field *f = &fields[i];
                if (f->type == F_STR || f->type == F_DUR) {
                        free(*FIELD(obj, f, char *));
                        *FIELD(obj, f, char *) = NULL;
                } else if (f->type == F_STRV) {
                        strv_free(*FIELD(obj, f, char **));
                        *FIELD(obj, f, char **) = NULL;
                }
        }
}

static void fields_copy(void *dst, const void *src, const struct field *fields, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                const struct field *f = &fields[i];
                if (f->type == F_STR || f->type == F_DUR)
                        *FIELD(dst, f, char *) = xstrdup(*FIELD(src, f, char *));
                else if (f->type == F_STRV)
                        *FIELD(dst, f, char **) = strv_copy(*FIELD(src, f, char **));
        }
}

static struct krill_config_runtime *runtime_add(struct krill_config *cfg, const char *name)
{
        cfg->cri.containerd.runtimes = xreallocarray(cfg->cri.containerd.runtimes, cfg->cri.containerd.n_runtimes + 1,
                                                     sizeof(struct krill_config_runtime));
        struct krill_config_runtime *rt = &cfg->cri.containerd.runtimes[cfg->cri.containerd.n_runtimes++];
        memset(rt, 0, sizeof(*rt));
        rt->name = xstrdup(name);
        fields_init_strings(rt, runtime_fields, ELEMENTSOF(runtime_fields));
        return rt;
}

static struct krill_config_registry_host *registry_host_add(struct krill_config *cfg, const char *host)
{
        cfg->cri.registry.hosts = xreallocarray(cfg->cri.registry.hosts, cfg->cri.registry.n_hosts + 1,
                                                sizeof(struct krill_config_registry_host));
        struct krill_config_registry_host *h = &cfg->cri.registry.hosts[cfg->cri.registry.n_hosts++];
        memset(h, 0, sizeof(*h));
        h->host = xstrdup(host);
        fields_init_strings(h, registry_host_fields, ELEMENTSOF(registry_host_fields));
        return h;
}

static void set_str(char **p, const char *v)
{
        free(*p);
        *p = xstrdup(v);
}

void krill_config_defaults(struct krill_config *cfg)
{
        memset(cfg, 0, sizeof(*cfg));
        fields_init_strings(cfg, config_fields, ELEMENTSOF(config_fields));
        cfg->version = KRILL_CONFIG_VERSION;
        set_str(&cfg->root, KRILL_DEFAULT_ROOT);
        set_str(&cfg->state, KRILL_DEFAULT_STATE);
        set_str(&cfg->grpc.address, KRILL_DEFAULT_ADDRESS);
        cfg->grpc.max_recv_message_size = KRILL_DEFAULT_MAX_MSG_SIZE;
        cfg->grpc.max_send_message_size = KRILL_DEFAULT_MAX_MSG_SIZE;

        cfg->gc.pause_threshold = 0.02;
        cfg->gc.deletion_threshold = 0;
        cfg->gc.mutation_threshold = 100;
        set_str(&cfg->gc.schedule_delay, "0s");
        set_str(&cfg->gc.startup_delay, "100ms");

        set_str(&cfg->cri.sandbox_image, "registry.k8s.io/pause:3.6");
        cfg->cri.max_concurrent_downloads = 3;
        cfg->cri.max_container_log_line_size = 16384;
        set_str(&cfg->cri.stream_server_address, "127.0.0.1");
        set_str(&cfg->cri.stream_server_port, "0");
        set_str(&cfg->cri.stream_idle_timeout, "4h0m0s");
        cfg->cri.selinux_category_range = 1024;
        cfg->cri.stats_collect_period = 10;
        cfg->cri.tolerate_missing_hugetlb_controller = true;
        cfg->cri.disable_hugetlb_controller = true;
        /* Debian installs the CNI plugins (containernetworking-plugins) in /usr/lib/cni, not /opt/cni/bin. */
        set_str(&cfg->cri.cni.bin_dir, "/usr/lib/cni");
        set_str(&cfg->cri.cni.conf_dir, "/etc/cni/net.d");
        cfg->cri.cni.max_conf_num = 1;
        set_str(&cfg->cri.containerd.snapshotter, "overlayfs");
        set_str(&cfg->cri.containerd.default_runtime_name, "runc");
        cfg->cri.containerd.disable_snapshot_annotations = true;
        struct krill_config_runtime *runc = runtime_add(cfg, "runc");
        set_str(&runc->runtime_type, "io.containerd.runc.v2");

        set_str(&cfg->metadata.content_sharing_policy, "shared");
        strv_extend(&cfg->task.platforms, "linux/" HOST_GOARCH);
        strv_extend(&cfg->diff_default, "walking");
        set_str(&cfg->restart_interval, "10s");
        set_str(&cfg->opt_path, "/opt/krill");

        /* containerd's default [timeouts] (timeout.Set calls of its plugins). */
        static const char *const timeouts[] = {
                "io.containerd.timeout.bolt.open",    "0s", "io.containerd.timeout.shim.cleanup",  "5s",
                "io.containerd.timeout.shim.load",    "5s", "io.containerd.timeout.shim.shutdown", "3s",
                "io.containerd.timeout.task.state",   "2s",
        };
        for (size_t i = 0; i < ELEMENTSOF(timeouts); i++)
                strv_extend(&cfg->timeouts, timeouts[i]);
}

void krill_config_free(struct krill_config *cfg)
{
        if (!cfg)
                return;
        fields_free(cfg, config_fields, ELEMENTSOF(config_fields));
        for (size_t i = 0; i < cfg->cri.containerd.n_runtimes; i++) {
                fields_free(&cfg->cri.containerd.runtimes[i], runtime_fields, ELEMENTSOF(runtime_fields));
                free(cfg->cri.containerd.runtimes[i].name);
        }
        free(cfg->cri.containerd.runtimes);
        for (size_t i = 0; i < cfg->cri.registry.n_hosts; i++) {
                fields_free(&cfg->cri.registry.hosts[i], registry_host_fields, ELEMENTSOF(registry_host_fields));
                free(cfg->cri.registry.hosts[i].host);
        }
        free(cfg->cri.registry.hosts);
        strv_free(cfg->timeouts);
        memset(cfg, 0, sizeof(*cfg));
}

void krill_config_copy(struct krill_config *dst, const struct krill_config *src)
{
        *dst = *src;
        fields_copy(dst, src, config_fields, ELEMENTSOF(config_fields));
        dst->cri.containerd.runtimes =
                xcalloc(src->cri.containerd.n_runtimes ? src->cri.containerd.n_runtimes : 1, sizeof(struct krill_config_runtime));
        for (size_t i = 0; i < src->cri.containerd.n_runtimes; i++) {
                dst->cri.containerd.runtimes[i] = src->cri.containerd.runtimes[i];
                dst->cri.containerd.runtimes[i].name = xstrdup(src->cri.containerd.runtimes[i].name);
                fields_copy(&dst->cri.containerd.runtimes[i], &src->cri.containerd.runtimes[i], runtime_fields,
                            ELEMENTSOF(runtime_fields));
        }
        dst->cri.registry.hosts =
                xcalloc(src->cri.registry.n_hosts ? src->cri.registry.n_hosts : 1, sizeof(struct krill_config_registry_host));
        for (size_t i = 0; i < src->cri.registry.n_hosts; i++) {
                dst->cri.registry.hosts[i].host = xstrdup(src->cri.registry.hosts[i].host);
                fields_copy(&dst->cri.registry.hosts[i], &src->cri.registry.hosts[i], registry_host_fields,
                            ELEMENTSOF(registry_host_fields));
        }
        dst->timeouts = strv_copy(src->timeouts);
}

/* ---- loading ---- */

/* Marks t and its ancestors up to (not including) stop as used. */
static void mark_up(struct toml_value *t, const struct toml_value *stop)
{
        for (; t && t != stop; t = toml_parent(t))
                toml_mark_used(t, false);
}

static int table_of(struct toml_value *base, const char *path, struct toml_value **ret, struct error **err)
{
        struct toml_value *t = *path ? toml_get_path(base, path) : base;
        *ret = NULL;
        if (!t)
                return 0;
        if (toml_type(t) != TOML_TABLE) {
                _cleanup_free_ char *p = toml_value_path(t);
                return error_set(err, EINVAL, "toml: line %u column %u: %s: expected table, got %s", toml_line(t),
                                 toml_column(t), p, toml_type_name(toml_type(t)));
        }
        mark_up(t, base);
        *ret = t;
        return 0;
}

static int load_runtimes(struct krill_config *cfg, struct toml_value *t, struct error **err);
static int load_timeouts(struct krill_config *cfg, struct toml_value *t, struct error **err);
static int load_registry_hosts(struct krill_config *cfg, struct toml_value *t, struct error **err);

static int load_fields(void *obj, struct toml_value *base, const struct field *fields, size_t n, struct krill_config *cfg,
                       struct error **err)
{
        for (size_t i = 0; i < n; i++) {
                const struct field *f = &fields[i];
                struct toml_value *t = NULL, *sub = NULL;
                int r = table_of(base, f->table, &t, err);
                if (r < 0)
                        return r;
                if (!t)
                        continue;
                switch (f->type) {
                case F_STR:
                case F_DUR: {
                        const char *s;
                        r = toml_get_string(t, f->key, &s, err);
                        if (r > 0 && f->type == F_DUR) {
                                int64_t ns;
                                r = time_parse_duration(s, &ns, err);
                                if (r < 0) {
                                        struct toml_value *v = toml_table_get(t, f->key);
                                        _cleanup_free_ char *p = toml_value_path(v);
                                        return error_wrap(err, "toml: line %u column %u: %s", toml_line(v),
                                                          toml_column(v), p);
                                }
                                r = 1;
                        }
                        if (r > 0)
                                set_str(FIELD(obj, f, char *), s);
                        break;
                }
                case F_INT:
                        r = toml_get_int_range(t, f->key, f->min, f->max, FIELD(obj, f, int64_t), err);
                        break;
                case F_BOOL:
                        r = toml_get_bool(t, f->key, FIELD(obj, f, bool), err);
                        break;
                case F_FLOAT:
                        r = toml_get_float(t, f->key, FIELD(obj, f, double), err);
                        break;
                case F_STRV: {
                        char **v = NULL;
                        r = toml_get_string_array(t, f->key, &v, err);
                        if (r > 0) {
                                strv_free(*FIELD(obj, f, char **));
                                *FIELD(obj, f, char **) = v;
                        }
                        break;
                }
                case F_KNOWN:
                        toml_mark_used(toml_table_get(t, f->key), true);
                        break;
                case F_TABLE:
                case F_OPAQUE:
                case F_RUNTIMES:
                case F_TIMEOUTS:
                case F_REGISTRY_HOSTS:
                        r = toml_get_table(t, f->key, &sub, err);
                        if (r <= 0)
                                break;
                        if (f->type == F_OPAQUE)
                                toml_mark_used(sub, true);
                        else if (f->type == F_RUNTIMES)
                                r = load_runtimes(cfg, sub, err);
                        else if (f->type == F_TIMEOUTS)
                                r = load_timeouts(cfg, sub, err);
                        else if (f->type == F_REGISTRY_HOSTS)
                                r = load_registry_hosts(cfg, sub, err);
                        break;
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

static int load_registry_hosts(struct krill_config *cfg, struct toml_value *t, struct error **err)
{
        for (size_t i = 0; i < toml_table_size(t); i++) {
                const char *host = toml_table_key(t, i);
                struct toml_value *ht = toml_table_value(t, i);
                if (toml_type(ht) != TOML_TABLE) {
                        _cleanup_free_ char *p = toml_value_path(ht);
                        return error_set(err, EINVAL, "toml: line %u column %u: %s: expected table, got %s",
                                         toml_line(ht), toml_column(ht), p, toml_type_name(toml_type(ht)));
                }
                toml_mark_used(ht, false);
                struct krill_config_registry_host *h = NULL;
                for (size_t k = 0; k < cfg->cri.registry.n_hosts && !h; k++)
                        if (strcmp(cfg->cri.registry.hosts[k].host, host) == 0)
                                h = &cfg->cri.registry.hosts[k];
                if (!h)
                        h = registry_host_add(cfg, host);
                int r = load_fields(h, ht, registry_host_fields, ELEMENTSOF(registry_host_fields), cfg, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int load_runtimes(struct krill_config *cfg, struct toml_value *t, struct error **err)
{
        for (size_t i = 0; i < toml_table_size(t); i++) {
                const char *name = toml_table_key(t, i);
                struct toml_value *rt = toml_table_value(t, i);
                if (toml_type(rt) != TOML_TABLE) {
                        _cleanup_free_ char *p = toml_value_path(rt);
                        return error_set(err, EINVAL, "toml: line %u column %u: %s: expected table, got %s",
                                         toml_line(rt), toml_column(rt), p, toml_type_name(toml_type(rt)));
                }
                toml_mark_used(rt, false);
                struct krill_config_runtime *r =
                        (struct krill_config_runtime *)krill_config_find_runtime(cfg, name);
                if (!r)
                        r = runtime_add(cfg, name);
                int ret = load_fields(r, rt, runtime_fields, ELEMENTSOF(runtime_fields), cfg, err);
                if (ret < 0)
                        return ret;
        }
        return 0;
}

static int load_timeouts(struct krill_config *cfg, struct toml_value *t, struct error **err)
{
        for (size_t i = 0; i < toml_table_size(t); i++) {
                const char *key = toml_table_key(t, i);
                const char *s = NULL;
                int64_t ns;
                int r = toml_get_string(t, key, &s, err);
                if (r < 0)
                        return r;
                struct toml_value *v = toml_table_value(t, i);
                if (time_parse_duration(s, &ns, err) < 0) {
                        _cleanup_free_ char *p = toml_value_path(v);
                        return error_wrap(err, "toml: line %u column %u: %s", toml_line(v), toml_column(v), p);
                }
                size_t n = strv_length(cfg->timeouts);
                bool replaced = false;
                for (size_t j = 0; j + 1 < n; j += 2)
                        if (strcmp(cfg->timeouts[j], key) == 0) {
                                set_str(&cfg->timeouts[j + 1], s);
                                replaced = true;
                        }
                if (!replaced) {
                        strv_extend(&cfg->timeouts, key);
                        strv_extend(&cfg->timeouts, s);
                }
        }
        return 0;
}

static size_t dot_parts(const char *s)
{
        size_t n = 1;
        for (; *s; s++)
                n += *s == '.';
        return n;
}

static int validate(const struct krill_config *cfg, struct toml_value *root, struct error **err)
{
        if (cfg->version != KRILL_CONFIG_VERSION)
                return error_set(err, EINVAL, "unsupported config version %lld: krill reads version %d",
                                 (long long)cfg->version, KRILL_CONFIG_VERSION);
        /* containerd's ValidateV2: plugin URIs have at least four dot-separated parts. */
        for (char **p = cfg->disabled_plugins; p && *p; p++)
                if (dot_parts(*p) < 4)
                        return error_set(err, EINVAL, "invalid disabled plugin URI \"%s\" expect io.containerd.x.vx", *p);
        for (char **p = cfg->required_plugins; p && *p; p++)
                if (dot_parts(*p) < 4)
                        return error_set(err, EINVAL, "invalid required plugin URI \"%s\" expect io.containerd.x.vx", *p);
        struct toml_value *plugins = toml_table_get(root, "plugins");
        for (size_t i = 0; i < toml_table_size(plugins); i++)
                if (dot_parts(toml_table_key(plugins, i)) < 4)
                        return error_set(err, EINVAL, "invalid plugin key URI \"%s\" expect io.containerd.x.vx",
                                         toml_table_key(plugins, i));
        if (cfg->debug.level[0] && log_level_from_string(cfg->debug.level) == _LOG_LEVEL_INVALID)
                return error_set(err, EINVAL, "debug.level: not a valid logrus Level: \"%s\"", cfg->debug.level);
        if (cfg->debug.format[0] && strcmp(cfg->debug.format, "text") != 0 && strcmp(cfg->debug.format, "json") != 0)
                return error_set(err, EINVAL, "debug.format: unknown log format \"%s\"", cfg->debug.format);
        const char *policy = cfg->metadata.content_sharing_policy;
        if (strcmp(policy, "shared") != 0 && strcmp(policy, "isolated") != 0)
                return error_set(err, EINVAL, "unknown policy: %s", policy);
        if (!cfg->grpc.address[0])
                return error_set(err, EINVAL, "grpc address cannot be empty");
        return 0;
}

/* Applies one parsed document to cfg. */
static int load_tree(struct krill_config *cfg, struct toml_value *root, bool *ret_has_version, struct error **err)
{
        int r = load_fields(cfg, root, config_fields, ELEMENTSOF(config_fields), cfg, err);
        if (r < 0)
                return r;
        struct toml_value *g = toml_table_get(root, "grpc"), *tt = toml_table_get(root, "ttrpc");
        cfg->set.root |= toml_table_get(root, "root") != NULL;
        cfg->set.state |= toml_table_get(root, "state") != NULL;
        cfg->set.grpc_address |= toml_table_get(g, "address") != NULL;
        cfg->set.ttrpc_address |= toml_table_get(tt, "address") != NULL;
        if (ret_has_version)
                *ret_has_version = toml_table_get(root, "version") != NULL;
        return 0;
}

static void collect_unknown(struct toml_value *root, const char *prefix, char ***unknown)
{
        _cleanup_strv_free_ char **u = toml_unused_keys(root);
        for (char **k = u; *k; k++) {
                if (prefix)
                        strv_extendf(unknown, "%s: %s", prefix, *k);
                else
                        strv_extend(unknown, *k);
        }
}

int krill_config_load_buffer(struct krill_config *cfg, const char *name, const char *buf, size_t len,
                             char ***unknown_keys, struct error **err)
{
        _cleanup_toml_ struct toml_value *root = NULL;
        _cleanup_strv_free_ char **unknown = strv_new_empty();
        struct krill_config tmp;
        int r = toml_parse(buf, len, &root, err);
        if (r < 0)
                return error_wrap(err, "%s", name);
        krill_config_copy(&tmp, cfg);
        r = load_tree(&tmp, root, NULL, err);
        if (r >= 0)
                r = validate(&tmp, root, err);
        if (r < 0) {
                krill_config_free(&tmp);
                return error_wrap(err, "%s", name);
        }
        collect_unknown(root, NULL, &unknown);
        krill_config_free(cfg);
        *cfg = tmp;
        if (unknown_keys)
                *unknown_keys = TAKE_PTR(unknown);
        return 0;
}

/* containerd's resolveImports: globs expand (sorted), other relative paths are relative to the importing
 * file's directory. */
static void resolve_imports(const char *parent, char *const *imports, char ***pending)
{
        _cleanup_free_ char *dir = fs_path_dir(parent);
        for (char *const *p = imports; p && *p; p++) {
                if (strchr(*p, '*')) {
                        glob_t g;
                        if (glob(*p, 0, NULL, &g) == 0)
                                for (size_t i = 0; i < g.gl_pathc; i++)
                                        strv_extend(pending, g.gl_pathv[i]);
                        globfree(&g);
                        continue;
                }
                _cleanup_free_ char *clean = fs_path_clean(*p);
                if (clean[0] == '/')
                        strv_extend(pending, clean);
                else
                        strv_push(pending, fs_path_join(dir, clean));
        }
}

int krill_config_load_file(struct krill_config *cfg, const char *path, char ***unknown_keys, struct error **err)
{
        _cleanup_strv_free_ char **pending = NULL, **loaded = strv_new_empty(), **unknown = strv_new_empty();
        struct krill_config tmp;
        int r = 0;

        krill_config_copy(&tmp, cfg);
        strv_extend(&pending, path);
        while (strv_length(pending) > 0) {
                _cleanup_free_ char *p = pending[0];
                _cleanup_toml_ struct toml_value *root = NULL;
                memmove(pending, pending + 1, strv_length(pending) * sizeof(char *));
                if (strv_contains(loaded, p))
                        continue; /* each file once, which also breaks import cycles */
                if (strv_length(loaded) >= MAX_IMPORTED_FILES) {
                        r = error_set(err, EINVAL, "%s: too many imported config files", path);
                        goto fail;
                }
                r = toml_parse_file(AT_FDCWD, p, &root, err);
                if (r < 0)
                        goto fail;
                /* Each file's own imports, not the merged list, decide what is loaded next. */
                strv_free(tmp.imports);
                tmp.imports = strv_new_empty();
                r = load_tree(&tmp, root, NULL, err);
                if (r >= 0)
                        r = validate(&tmp, root, err);
                if (r < 0) {
                        error_wrap(err, "%s", p);
                        goto fail;
                }
                resolve_imports(p, tmp.imports, &pending);
                collect_unknown(root, strv_length(loaded) ? p : NULL, &unknown);
                strv_extend(&loaded, p);
        }
        /* As containerd does, imports ends up listing every file that was loaded. */
        strv_free(tmp.imports);
        tmp.imports = TAKE_PTR(loaded);
        krill_config_free(cfg);
        *cfg = tmp;
        if (unknown_keys)
                *unknown_keys = TAKE_PTR(unknown);
        return 0;
fail:
        krill_config_free(&tmp);
        return r;
}

/* ---- printing ---- */

static size_t path_depth(const char *path)
{
        size_t n = *path ? 1 : 0;
        bool quoted = false;
        for (; *path; path++) {
                if (*path == '"')
                        quoted = !quoted;
                else if (*path == '.' && !quoted)
                        n++;
        }
        return n;
}

static void print_float(FILE *f, double d)
{
        char buf[64];
        /* The shortest text that reads back as the same double, as Go's strconv does (0.02, not 0.0200...). */
        for (int prec = 1; prec <= 17; prec++) {
                snprintf(buf, sizeof(buf), "%.*g", prec, d);
                if (strtod(buf, NULL) == d)
                        break;
        }
        if (isfinite(d) && !strpbrk(buf, ".en"))
                strcat(buf, ".0");
        fputs(buf, f);
}

static void print_strv(FILE *f, char *const *v)
{
        fputc('[', f);
        for (size_t i = 0; v && v[i]; i++) {
                _cleanup_free_ char *s = toml_format_string(v[i], strlen(v[i]));
                fprintf(f, "%s%s", i ? ", " : "", s);
        }
        fputc(']', f);
}

static void print_header(FILE *f, const char *path)
{
        size_t d = path_depth(path);
        fprintf(f, "\n%*s[%s]\n", (int)(2 * (d - 1)), "", path);
}

static void print_fields(FILE *f, const void *obj, const char *base, const struct field *fields, size_t n,
                         const struct krill_config *cfg);

static void print_field(FILE *f, const void *obj, const char *table, const struct field *fld,
                        const struct krill_config *cfg)
{
        _cleanup_free_ char *key = toml_format_key(fld->key);
        size_t indent = 2 * path_depth(table);
        switch (fld->type) {
        case F_TABLE:
        case F_OPAQUE:
        case F_RUNTIMES:
        case F_TIMEOUTS:
        case F_REGISTRY_HOSTS: {
                _cleanup_free_ char *path = *table ? xasprintf("%s.%s", table, key) : xstrdup(key);
                print_header(f, path);
                for (size_t i = 0; fld->type == F_REGISTRY_HOSTS && i < cfg->cri.registry.n_hosts; i++) {
                        const struct krill_config_registry_host *h = &cfg->cri.registry.hosts[i];
                        _cleanup_free_ char *name = toml_format_key(h->host);
                        _cleanup_free_ char *hpath = xasprintf("%s.%s", path, name);
                        print_header(f, hpath);
                        print_fields(f, h, hpath, registry_host_fields, ELEMENTSOF(registry_host_fields), cfg);
                }
                if (fld->type == F_RUNTIMES) {
                        for (size_t i = 0; i < cfg->cri.containerd.n_runtimes; i++) {
                                const struct krill_config_runtime *rt = &cfg->cri.containerd.runtimes[i];
                                _cleanup_free_ char *name = toml_format_key(rt->name);
                                _cleanup_free_ char *rpath = xasprintf("%s.%s", path, name);
                                print_header(f, rpath);
                                print_fields(f, rt, rpath, runtime_fields, ELEMENTSOF(runtime_fields), cfg);
                        }
                } else if (fld->type == F_TIMEOUTS) {
                        size_t n = strv_length(cfg->timeouts);
                        for (size_t i = 0; i + 1 < n; i += 2) {
                                _cleanup_free_ char *k = toml_format_key(cfg->timeouts[i]);
                                _cleanup_free_ char *v = toml_format_string(cfg->timeouts[i + 1], strlen(cfg->timeouts[i + 1]));
                                fprintf(f, "%*s%s = %s\n", (int)(indent + 2), "", k, v);
                        }
                }
                return;
        }
        default:
                break;
        }
        fprintf(f, "%*s%s = ", (int)indent, "", key);
        switch (fld->type) {
        case F_STR:
        case F_DUR: {
                const char *s = *FIELD(obj, fld, char *const);
                _cleanup_free_ char *q = toml_format_string(s, strlen(s));
                fputs(q, f);
                break;
        }
        case F_INT:
                fprintf(f, "%lld", (long long)*FIELD(obj, fld, const int64_t));
                break;
        case F_BOOL:
                fputs(*FIELD(obj, fld, const bool) ? "true" : "false", f);
                break;
        case F_FLOAT:
                print_float(f, *FIELD(obj, fld, const double));
                break;
        case F_STRV:
                print_strv(f, *FIELD(obj, fld, char **const));
                break;
        default:
                fputs(fld->dflt, f);
                break;
        }
        fputc('\n', f);
}

static void print_fields(FILE *f, const void *obj, const char *base, const struct field *fields, size_t n,
                         const struct krill_config *cfg)
{
        for (size_t i = 0; i < n; i++) {
                const struct field *fld = &fields[i];
                if (fld->flags & NOPRINT)
                        continue;
                _cleanup_free_ char *table = !*base ? xstrdup(fld->table)
                                             : *fld->table ? xasprintf("%s.%s", base, fld->table)
                                                           : xstrdup(base);
                print_field(f, obj, table, fld, cfg);
        }
}

int krill_config_print(FILE *f, const struct krill_config *cfg)
{
        print_fields(f, cfg, "", config_fields, ELEMENTSOF(config_fields), cfg);
        if (fflush(f) != 0 || ferror(f))
                return -(errno ? errno : EIO);
        return 0;
}

int krill_config_print_default(FILE *f)
{
        struct krill_config cfg;
        krill_config_defaults(&cfg);
        int r = krill_config_print(f, &cfg);
        krill_config_free(&cfg);
        return r;
}

/* ---- accessors ---- */

char *krill_config_ttrpc_address(const struct krill_config *cfg)
{
        if (cfg->ttrpc.address && cfg->ttrpc.address[0])
                return xstrdup(cfg->ttrpc.address);
        return xasprintf("%s.ttrpc", cfg->grpc.address);
}

const struct krill_config_runtime *krill_config_find_runtime(const struct krill_config *cfg, const char *name)
{
        for (size_t i = 0; i < cfg->cri.containerd.n_runtimes; i++)
                if (strcmp(cfg->cri.containerd.runtimes[i].name, name) == 0)
                        return &cfg->cri.containerd.runtimes[i];
        return NULL;
}

int64_t krill_config_timeout_ns(const struct krill_config *cfg, const char *key, int64_t def_ns)
{
        size_t n = strv_length(cfg->timeouts);
        for (size_t i = 0; i + 1 < n; i += 2)
                if (strcmp(cfg->timeouts[i], key) == 0) {
                        int64_t ns;
                        if (time_parse_duration(cfg->timeouts[i + 1], &ns, NULL) == 0)
                                return ns;
                }
        return def_ns;
}

int krill_config_registry_creds(const struct krill_config *cfg, const char *host, char **ret_user, char **ret_secret,
                                struct error **err)
{
        const struct krill_config_registry_host *h = NULL;
        for (size_t i = 0; i < cfg->cri.registry.n_hosts && !h; i++)
                if (strcmp(cfg->cri.registry.hosts[i].host, host) == 0)
                        h = &cfg->cri.registry.hosts[i];
        if (!h)
                return 0;
        if (h->username[0]) {
                *ret_user = xstrdup(h->username);
                *ret_secret = xstrdup(h->password);
                return 1;
        }
        if (h->identitytoken[0]) {
                *ret_user = xstrdup("");
                *ret_secret = xstrdup(h->identitytoken);
                return 1;
        }
        if (!h->auth[0])
                return 0;
        size_t n;
        _cleanup_free_ char *dec = NULL;
        if (base64_decode_new(h->auth, &dec, &n) < 0)
                return error_set(err, EINVAL, "registry %s: invalid auth: not base64", host);
        char *colon = memchr(dec, ':', n);
        if (!colon)
                return error_set(err, EINVAL, "registry %s: invalid decoded auth", host);
        /* containerd trims NULs from the password (strings.Trim(passwd, "\x00")) */
        size_t plen = n - (size_t)(colon + 1 - dec);
        const char *pw = colon + 1;
        while (plen > 0 && pw[0] == '\0') {
                pw++;
                plen--;
        }
        while (plen > 0 && pw[plen - 1] == '\0')
                plen--;
        *ret_user = xstrndup(dec, (size_t)(colon - dec));
        *ret_secret = xstrndup(pw, plen);
        return 1;
}

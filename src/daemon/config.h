/* krilld's configuration: containerd's version-2 config.toml shape (services/server/config/config.go in
 * containerd 1.6), so an admin's containerd config mostly carries over.
 *
 *   struct krill_config cfg;
 *   krill_config_defaults(&cfg);
 *   r = krill_config_load_file(&cfg, path, &unknown, &err);   -- file values override the defaults
 *   ... flags override cfg fields (main.c) ...
 *   krill_config_free(&cfg);
 *
 * Every key of `containerd config default` (1.6) is accepted. The keys krill acts on are stored in the
 * struct below; the others are recognised and ignored on purpose (listed in config.c). Any other key is
 * returned in *unknown_keys as its dotted TOML path (`plugins."io.containerd.grpc.v1.cri".bogus`) for
 * the caller to log as a warning: unknown keys are reported, not silently ignored.
 *
 * Strings are owned by the struct (never NULL after krill_config_defaults; "" means unset where containerd
 * treats it so). Durations are kept as their Go text ("4h0m0s") after validation; convert them with
 * time_parse_duration. Not thread-safe; load on the main thread before the loop starts. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/error.h"

#define KRILL_CONFIG_VERSION 2
#define KRILL_DEFAULT_ROOT "/var/lib/krill"
#define KRILL_DEFAULT_STATE "/run/krill"
#define KRILL_DEFAULT_ADDRESS "/run/krill/krill.sock"
#define KRILL_DEFAULT_CONFIG_PATH "/etc/krill/config.toml"
#define KRILL_DEFAULT_MAX_MSG_SIZE (16 << 20) /* containerd's defaults.DefaultMaxRecvMsgSize/SendMsgSize */

/* A CRI runtime handler: [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.<name>]. */
struct krill_config_runtime {
        char *name;
        char *runtime_type; /* "io.containerd.runc.v2": the shim is containerd-shim-runc-v2 */
        char *runtime_path;
        char *base_runtime_spec;
        char *cni_conf_dir;
        int64_t cni_max_conf_num;
        char **container_annotations; /* strv */
        char **pod_annotations;       /* strv */
        bool privileged_without_host_devices;
        /* [...runtimes.<name>.options] (runc shim options) */
        char *binary_name;    /* BinaryName: the OCI runtime binary ("" = runc) */
        char *root;           /* Root */
        bool systemd_cgroup;  /* SystemdCgroup */
        bool no_pivot_root;   /* NoPivotRoot */
        bool no_new_keyring;  /* NoNewKeyring */
        char *shim_cgroup;    /* ShimCgroup */
        int64_t io_uid;       /* IoUid */
        int64_t io_gid;       /* IoGid */
};

/* [plugins."io.containerd.grpc.v1.cri".registry.configs."<host>".auth]: credentials for daemon-side pulls. */
struct krill_config_registry_host {
        char *host;
        char *username;
        char *password;
        char *auth;          /* base64("user:password") */
        char *identitytoken; /* a refresh token, used with an empty user name */
};

struct krill_config {
        int64_t version;
        char *root;
        char *state;
        char *temp;
        char *plugin_dir;
        int64_t oom_score;
        char **disabled_plugins; /* strv of plugin URIs "io.containerd.x.vN.id" */
        char **required_plugins;
        char **imports;          /* strv: other config files merged in (globs allowed), as containerd */

        struct {
                char *address; /* unix socket path */
                char *tcp_address;
                char *tcp_tls_ca;
                char *tcp_tls_cert;
                char *tcp_tls_key;
                int64_t uid, gid;
                int64_t max_recv_message_size;
                int64_t max_send_message_size;
        } grpc;
        struct {
                char *address; /* "" = grpc.address + ".ttrpc" (see krill_config_ttrpc_address) */
                int64_t uid, gid;
        } ttrpc;
        struct {
                char *address;
                int64_t uid, gid;
                char *level;  /* "" = info; trace, debug, info, warn, error, fatal, panic */
                char *format; /* "" = text; text or json */
        } debug;
        struct {
                char *address;
                bool grpc_histogram;
        } metrics;
        struct {
                char *path;
        } cgroup;
        /* [timeouts]: alternating key, Go duration strv ("io.containerd.timeout.shim.load", "5s", ...) */
        char **timeouts;

        /* [plugins."io.containerd.grpc.v1.cri"] */
        struct {
                char *sandbox_image;
                int64_t max_concurrent_downloads;
                int64_t max_container_log_line_size;
                char *stream_server_address;
                char *stream_server_port;
                char *stream_idle_timeout;
                bool enable_tls_streaming;
                bool systemd_cgroup;
                bool disable_cgroup;
                bool disable_apparmor;
                bool disable_proc_mount;
                bool enable_selinux;
                int64_t selinux_category_range;
                bool restrict_oom_score_adj;
                bool tolerate_missing_hugetlb_controller;
                bool disable_hugetlb_controller;
                bool ignore_image_defined_volumes;
                bool netns_mounts_under_state_dir;
                bool enable_unprivileged_ports;
                bool enable_unprivileged_icmp;
                bool device_ownership_from_security_context;
                int64_t stats_collect_period;
                char *unset_seccomp_profile;
                struct {
                        char *bin_dir;
                        char *conf_dir;
                        int64_t max_conf_num;
                        char *conf_template;
                        char *ip_pref;
                } cni;
                struct {
                        char *snapshotter;
                        char *default_runtime_name;
                        bool discard_unpacked_layers;
                        bool disable_snapshot_annotations;
                        bool no_pivot;
                        struct krill_config_runtime *runtimes; /* [n_runtimes], document order */
                        size_t n_runtimes;
                } containerd;
                struct {
                        char *config_path; /* hosts.toml directory (certs.d layout) */
                        struct krill_config_registry_host *hosts; /* configs.<host>, document order */
                        size_t n_hosts;
                } registry;
        } cri;
        /* [plugins."io.containerd.snapshotter.v1.overlayfs"] and ."native": "" = <root>/<plugin URI> */
        struct {
                char *root_path;
                bool upperdir_label;
        } overlayfs;
        struct {
                char *root_path;
        } native;
        /* [plugins."io.containerd.gc.v1.scheduler"] */
        struct {
                double pause_threshold;
                int64_t deletion_threshold;
                int64_t mutation_threshold;
                char *schedule_delay;
                char *startup_delay;
        } gc;
        /* [plugins."io.containerd.metadata.v1.lmdb"] (".bolt" is read too, as containerd writes it) */
        struct {
                char *content_sharing_policy; /* "shared" or "isolated" */
        } metadata;
        /* [plugins."io.containerd.runtime.v2.task"] */
        struct {
                char **platforms; /* strv, default ["linux/<host GOARCH>"] */
                bool sched_core;
        } task;
        /* [plugins."io.containerd.service.v1.diff-service"] default = ["walking"] */
        char **diff_default;
        /* [plugins."io.containerd.internal.v1.restart"] interval */
        char *restart_interval;
        /* [plugins."io.containerd.internal.v1.opt"] path */
        char *opt_path;

        /* Which of these the loaded file(s) set, so main.c can derive what the user left out
         * (e.g. the socket under --state). Flags do not touch these. */
        struct {
                bool root, state, grpc_address, ttrpc_address;
        } set;
};

/* Fills cfg with krilld's defaults (everything owned; call krill_config_free after). Never fails. */
void krill_config_defaults(struct krill_config *cfg);
/* Releases everything cfg owns and zeroes it. NULL-safe; safe on a zeroed struct. */
void krill_config_free(struct krill_config *cfg);
/* Deep copy: *dst becomes an independent copy of src (dst's old contents are not freed). */
void krill_config_copy(struct krill_config *dst, const struct krill_config *src);

/* Loads path (and, like containerd, the files named by its `imports`, relative to its directory, glob
 * patterns allowed, each file once) over the values already in cfg. A key present in a file replaces
 * the current value; arrays given in a file replace the current array; runtimes and timeouts are merged
 * by name.
 * On success returns 0 and, if unknown_keys is not NULL, sets *unknown_keys to a new strv (possibly
 * empty) of the dotted paths of keys krill does not know, prefixed with the file when imports are used
 * ("path: key" for imported files only).
 * On failure returns -errno with err set and leaves cfg and *unknown_keys untouched:
 *   -ENOENT and other open errors (`open /x: not found`), -EFBIG (> 4 MiB),
 *   -EINVAL for TOML syntax (`/x: toml: line 3 column 1: duplicate key root`), a wrong type
 *   (`/x: toml: line 2 column 8: grpc.uid: expected integer, got string`), an unsupported version
 *   (`/x: unsupported config version 3: krill reads version 2`), a bad plugin URI, log level, log format,
 *   duration or size. */
int krill_config_load_file(struct krill_config *cfg, const char *path, char ***unknown_keys, struct error **err);
/* Same from a buffer (tests, fuzzing); imports are not followed. name labels error messages. */
int krill_config_load_buffer(struct krill_config *cfg, const char *name, const char *buf, size_t len,
                             char ***unknown_keys, struct error **err);

/* Writes cfg as a complete TOML config in containerd's layout (2-space indents, tables sorted as
 * `containerd config default` prints them). krill_config_load_file accepts the output back and yields
 * an equal config with no unknown keys. Returns 0 or -errno (write error). */
int krill_config_print(FILE *f, const struct krill_config *cfg);
/* Prints the defaults: what `krilld config default` shows. */
int krill_config_print_default(FILE *f);

/* The effective ttrpc socket: ttrpc.address, or grpc.address + ".ttrpc" when that is empty (as
 * containerd). Returns a new string. */
char *krill_config_ttrpc_address(const struct krill_config *cfg);
/* The runtime handler called name, or NULL. Borrowed from cfg. */
const struct krill_config_runtime *krill_config_find_runtime(const struct krill_config *cfg, const char *name);
/* The credentials the config gives for a registry host ("host[:port]"), as containerd's CRI ParseAuth reads them:
 * username + password; else identitytoken as the secret with an empty user; else auth = base64("user:password").
 * Returns 1 with new strings, 0 when the config has none for host, -EINVAL for an auth that does not decode. */
int krill_config_registry_creds(const struct krill_config *cfg, const char *host, char **ret_user, char **ret_secret,
                                struct error **err);
/* Looks up a [timeouts] entry and parses it; returns def_ns when absent. */
int64_t krill_config_timeout_ns(const struct krill_config *cfg, const char *key, int64_t def_ns);

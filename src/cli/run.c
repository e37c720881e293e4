/* krill run: ctr run's client-driven flow. Images.Get and the image config -> Snapshots.Prepare(ID, chainID)
 * and Containers.Create under a lease -> Tasks.Create with stdio FIFOs -> Tasks.Wait opened before
 * Tasks.Start on the same connection -> signals forwarded with Tasks.Kill -> Tasks.Delete, and with --rm
 * the snapshot and the container -> exit with the task's exit status. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/image_client.h"
#include "cli/run.h"
#include "cli/task_io.h"
#include "github.com/containerd/containerd/api/services/containers/v1/containers.pb-c.h"
#include "github.com/containerd/containerd/api/services/leases/v1/leases.pb-c.h"
#include "github.com/containerd/containerd/api/services/snapshots/v1/snapshots.pb-c.h"
#include "github.com/containerd/containerd/api/services/tasks/v1/tasks.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "oci/spec.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/strv.h"

#define KRILL_DEFAULT_RUNTIME "io.containerd.krill.v2"
#define SPEC_TYPE_URL "types.containerd.io/opencontainers/runtime-spec/1/Spec"
#define RUNC_OPTIONS_TYPE_URL "containerd.runc.v1.Options"
#define STOP_SIGNAL_LABEL "io.containerd.image.config.stop-signal"

typedef Containerd__Services__Containers__V1__Container Container;
typedef Containerd__Services__Containers__V1__Container__LabelsEntry LabelsEntry;

struct run_opts {
        bool rm, detach, tty, net_host, privileged, read_only, null_io;
        bool rootfs, no_pivot, allow_new_privs, seccomp, runc_systemd_cgroup, remap_labels, cni, cgroup_set;
        char **env, **env_files, **mounts, **labels, **annotations;
        char **with_ns, **devices, **cap_add, **cap_drop, **snapshotter_labels, **gpus;
        const char *cwd, *user, *memory_limit, *cpus, *runtime, *snapshotter, *platform, *fifo_dir;
        const char *log_uri, *cgroup, *runc_binary, *runc_root, *uidmap, *gidmap, *cpu_shares, *config;
        const char *runtime_config_path, *pid_file, *seccomp_profile, *apparmor_default, *apparmor_profile;
        const char *rdt_class, *cpu_quota, *cpu_period, *rootfs_propagation;
        /* parsed by check_run_opts */
        uint64_t memory, shares, period;
        int64_t quota;
        double ncpus;
        bool userns, create;
        struct oci_id_mapping uid_map, gid_map;
};

/* ctr containers create: the snapshotter flags and ContainerFlags; ctr run puts its own flags first. */
#define COMMON_FLAGS_HELP \
        "   --snapshotter value                     snapshotter name. Empty value stands for the default value. [$CONTAINERD_SNAPSHOTTER]\n" \
        "   --snapshotter-label value               labels added to the new snapshot for this container.\n" \
        "   --config value, -c value                path to the runtime-specific spec config file\n" \
        "   --cwd value                             specify the working directory of the process\n" \
        "   --env value                             specify additional container environment variables (e.g. FOO=bar)\n" \
        "   --env-file value                        specify additional container environment variables in a file(e.g. FOO=bar, one per line)\n" \
        "   --label value                           specify additional labels (e.g. foo=bar)\n" \
        "   --annotation value                      specify additional OCI annotations (e.g. foo=bar)\n" \
        "   --mount value                           specify additional container mount (e.g. type=bind,src=/tmp,dst=/host,options=rbind:ro)\n" \
        "   --net-host                              enable host networking for the container\n" \
        "   --privileged                            run privileged container\n" \
        "   --read-only                             set the containers filesystem as readonly\n" \
        "   --runtime value                         runtime name (default: \"" KRILL_DEFAULT_RUNTIME "\")\n" \
        "   --runtime-config-path value             optional runtime config path\n" \
        "   --tty, -t                               allocate a TTY for the container\n" \
        "   --with-ns value                         specify existing Linux namespaces to join at container runtime (format '<nstype>:<path>')\n" \
        "   --pid-file value                        file path to write the task's pid\n" \
        "   --gpus value                            add gpus to the container\n" \
        "   --allow-new-privs                       turn off OCI spec's NoNewPrivileges feature flag\n" \
        "   --memory-limit value                    memory limit (in bytes) for the container (default: 0)\n" \
        "   --device value                          file path to a device to add to the container; or a path to a directory tree of devices to add to the container\n" \
        "   --cap-add value                         add Linux capabilities (Set capabilities with 'CAP_' prefix)\n" \
        "   --cap-drop value                        drop Linux capabilities (Set capabilities with 'CAP_' prefix)\n" \
        "   --seccomp                               enable the default seccomp profile\n" \
        "   --seccomp-profile value                 file path to custom seccomp profile. seccomp must be set to true, before using seccomp-profile\n" \
        "   --apparmor-default-profile value        enable AppArmor with the default profile with the specified name, e.g. \"cri-containerd.apparmor.d\"\n" \
        "   --apparmor-profile value                enable AppArmor with an existing custom profile\n" \
        "   --rdt-class value                       name of the RDT class to associate the container with. Specifies a Class of Service (CLOS) for cache and memory bandwidth management.\n" \
        "   --rootfs                                use custom rootfs that is not managed by containerd snapshotter\n" \
        "   --no-pivot                              disable use of pivot-root (linux only)\n" \
        "   --cpu-quota value                       Limit CPU CFS quota (default: -1)\n" \
        "   --cpu-period value                      Limit CPU CFS period (default: 0)\n" \
        "   --rootfs-propagation value              set the propagation of the container rootfs\n" \
        "   --user value, -u value                  username or user id, group optional (format: <name|uid>[:<group|gid>]) (krill)\n"

static const char run_flags_help[] =
        "   --rm                                    remove the container after running, cannot be used with --detach\n"
        "   --null-io                               send all IO to /dev/null\n"
        "   --log-uri value                         log uri\n"
        "   --detach, -d                            detach from the task after it has started execution, cannot be used with --rm\n"
        "   --fifo-dir value                        directory used for storing IO FIFOs\n"
        "   --cgroup value                          cgroup path (To disable use of cgroup, set to \"\" explicitly)\n"
        "   --platform value                        run image for specific platform\n"
        "   --cni                                   enable cni networking for the container\n"
        "   --runc-binary value                     specify runc-compatible binary\n"
        "   --runc-root value                       specify runc-compatible root\n"
        "   --runc-systemd-cgroup                   start runc with systemd cgroup manager\n"
        "   --uidmap container-uid:host-uid:length  run inside a user namespace with the specified UID mapping range; specified with the format container-uid:host-uid:length\n"
        "   --gidmap container-gid:host-gid:length  run inside a user namespace with the specified GID mapping range; specified with the format container-gid:host-gid:length\n"
        "   --remap-labels                          provide the user namespace ID remapping to the snapshotter via label options; requires snapshotter support\n"
        "   --cpus value                            set the CFS cpu quota (default: 0)\n"
        "   --cpu-shares value                      set the cpu shares (default: 1024)\n"
        COMMON_FLAGS_HELP;

static const char create_flags_help[] = COMMON_FLAGS_HELP;

static int usage_error(const struct cli_global *g, const struct cli_command *cmd, const char *what, const char *flag)
{
        printf("Incorrect Usage: %s: -%s\n\n", what, flag);
        cli_print_command_help(g, cmd, cmd == &cli_run_command ? "krill run" : "krill containers create");
        return 1;
}

/* Returns 0 and *ret_optind, 1 for help, -1 after printing a usage error. */
static int parse_run_flags(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv,
                           struct run_opts *o, int *ret_optind)
{
        enum { O_RM = 256, O_NULLIO, O_FIFO, O_SNAP, O_RUNTIME, O_CWD, O_ENV, O_ENVFILE, O_LABEL, O_ANNOT,
               O_MOUNT, O_NETHOST, O_PRIV, O_RO, O_MEM, O_CPUS, O_PLATFORM, O_LOGURI, O_CGROUP, O_CNI,
               O_RUNC_BIN, O_RUNC_ROOT, O_RUNC_SYSTEMD, O_UIDMAP, O_GIDMAP, O_REMAP, O_SHARES, O_SNAPLABEL,
               O_RTCONFIG, O_WITHNS, O_PIDFILE, O_GPUS, O_NEWPRIVS, O_DEVICE, O_CAPADD, O_CAPDROP, O_SECCOMP,
               O_SECCOMP_PROFILE, O_AA_DEFAULT, O_AA_PROFILE, O_RDT, O_ROOTFS, O_NOPIVOT, O_QUOTA, O_PERIOD,
               O_PROPAGATION };
        static const struct option opts[] = {
                {"rm", no_argument, NULL, O_RM},
                {"null-io", no_argument, NULL, O_NULLIO},
                {"log-uri", required_argument, NULL, O_LOGURI},
                {"detach", no_argument, NULL, 'd'},
                {"fifo-dir", required_argument, NULL, O_FIFO},
                {"cgroup", required_argument, NULL, O_CGROUP},
                {"platform", required_argument, NULL, O_PLATFORM},
                {"cni", no_argument, NULL, O_CNI},
                {"runc-binary", required_argument, NULL, O_RUNC_BIN},
                {"runc-root", required_argument, NULL, O_RUNC_ROOT},
                {"runc-systemd-cgroup", no_argument, NULL, O_RUNC_SYSTEMD},
                {"uidmap", required_argument, NULL, O_UIDMAP},
                {"gidmap", required_argument, NULL, O_GIDMAP},
                {"remap-labels", no_argument, NULL, O_REMAP},
                {"cpus", required_argument, NULL, O_CPUS},
                {"cpu-shares", required_argument, NULL, O_SHARES},
                {"snapshotter", required_argument, NULL, O_SNAP},
                {"snapshotter-label", required_argument, NULL, O_SNAPLABEL},
                {"config", required_argument, NULL, 'c'},
                {"cwd", required_argument, NULL, O_CWD},
                {"env", required_argument, NULL, O_ENV},
                {"env-file", required_argument, NULL, O_ENVFILE},
                {"label", required_argument, NULL, O_LABEL},
                {"annotation", required_argument, NULL, O_ANNOT},
                {"mount", required_argument, NULL, O_MOUNT},
                {"net-host", no_argument, NULL, O_NETHOST},
                {"privileged", no_argument, NULL, O_PRIV},
                {"read-only", no_argument, NULL, O_RO},
                {"runtime", required_argument, NULL, O_RUNTIME},
                {"runtime-config-path", required_argument, NULL, O_RTCONFIG},
                {"tty", no_argument, NULL, 't'},
                {"with-ns", required_argument, NULL, O_WITHNS},
                {"pid-file", required_argument, NULL, O_PIDFILE},
                {"gpus", required_argument, NULL, O_GPUS},
                {"allow-new-privs", no_argument, NULL, O_NEWPRIVS},
                {"memory-limit", required_argument, NULL, O_MEM},
                {"device", required_argument, NULL, O_DEVICE},
                {"cap-add", required_argument, NULL, O_CAPADD},
                {"cap-drop", required_argument, NULL, O_CAPDROP},
                {"seccomp", no_argument, NULL, O_SECCOMP},
                {"seccomp-profile", required_argument, NULL, O_SECCOMP_PROFILE},
                {"apparmor-default-profile", required_argument, NULL, O_AA_DEFAULT},
                {"apparmor-profile", required_argument, NULL, O_AA_PROFILE},
                {"rdt-class", required_argument, NULL, O_RDT},
                {"rootfs", no_argument, NULL, O_ROOTFS},
                {"no-pivot", no_argument, NULL, O_NOPIVOT},
                {"cpu-quota", required_argument, NULL, O_QUOTA},
                {"cpu-period", required_argument, NULL, O_PERIOD},
                {"rootfs-propagation", required_argument, NULL, O_PROPAGATION},
                {"user", required_argument, NULL, 'u'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0},
        };
        /* ctr containers create has ContainerFlags and the snapshotter flags only, not run's own */
        static const int run_only[] = {O_RM, O_NULLIO, O_LOGURI, 'd', O_FIFO, O_CGROUP, O_PLATFORM, O_CNI,
                                       O_RUNC_BIN, O_RUNC_ROOT, O_RUNC_SYSTEMD, O_UIDMAP, O_GIDMAP, O_REMAP,
                                       O_CPUS, O_SHARES, 0};
        bool create = cmd == &cli_containers_create_command;
        int c;

        optind = 0;
        opterr = 0;
        int li = -1;
        while ((c = getopt_long(argc, argv, create ? "+:tu:c:h" : "+:dtu:c:h", opts, &li)) != -1) {
                for (size_t i = 0; create && run_only[i] && li >= 0; i++)
                        if (c == run_only[i])
                                return usage_error(g, cmd, "flag provided but not defined", opts[li].name) ? -1 : -1;
                li = -1;
                switch (c) {
                case O_RM: o->rm = true; break;
                case O_NULLIO: o->null_io = true; break;
                case O_LOGURI: o->log_uri = optarg; break;
                case 'd': o->detach = true; break;
                case O_FIFO: o->fifo_dir = optarg; break;
                case O_CGROUP: o->cgroup = optarg; o->cgroup_set = true; break;
                case O_PLATFORM: o->platform = optarg; break;
                case O_CNI: o->cni = true; break;
                case O_RUNC_BIN: o->runc_binary = optarg; break;
                case O_RUNC_ROOT: o->runc_root = optarg; break;
                case O_RUNC_SYSTEMD: o->runc_systemd_cgroup = true; break;
                case O_UIDMAP: o->uidmap = optarg; break;
                case O_GIDMAP: o->gidmap = optarg; break;
                case O_REMAP: o->remap_labels = true; break;
                case O_CPUS: o->cpus = optarg; break;
                case O_SHARES: o->cpu_shares = optarg; break;
                case O_SNAP: o->snapshotter = optarg; break;
                case O_SNAPLABEL: strv_extend(&o->snapshotter_labels, optarg); break;
                case 'c': o->config = optarg; break;
                case O_CWD: o->cwd = optarg; break;
                case O_ENV: strv_extend(&o->env, optarg); break;
                case O_ENVFILE: strv_extend(&o->env_files, optarg); break;
                case O_LABEL: strv_extend(&o->labels, optarg); break;
                case O_ANNOT: strv_extend(&o->annotations, optarg); break;
                case O_MOUNT: strv_extend(&o->mounts, optarg); break;
                case O_NETHOST: o->net_host = true; break;
                case O_PRIV: o->privileged = true; break;
                case O_RO: o->read_only = true; break;
                case O_RUNTIME: o->runtime = optarg; break;
                case O_RTCONFIG: o->runtime_config_path = optarg; break;
                case 't': o->tty = true; break;
                case O_WITHNS: strv_extend(&o->with_ns, optarg); break;
                case O_PIDFILE: o->pid_file = optarg; break;
                case O_GPUS: strv_extend(&o->gpus, optarg); break;
                case O_NEWPRIVS: o->allow_new_privs = true; break;
                case O_MEM: o->memory_limit = optarg; break;
                case O_DEVICE: strv_extend(&o->devices, optarg); break;
                case O_CAPADD: strv_extend(&o->cap_add, optarg); break;
                case O_CAPDROP: strv_extend(&o->cap_drop, optarg); break;
                case O_SECCOMP: o->seccomp = true; break;
                case O_SECCOMP_PROFILE: o->seccomp_profile = optarg; break;
                case O_AA_DEFAULT: o->apparmor_default = optarg; break;
                case O_AA_PROFILE: o->apparmor_profile = optarg; break;
                case O_RDT: o->rdt_class = optarg; break;
                case O_ROOTFS: o->rootfs = true; break;
                case O_NOPIVOT: o->no_pivot = true; break;
                case O_QUOTA: o->cpu_quota = optarg; break;
                case O_PERIOD: o->cpu_period = optarg; break;
                case O_PROPAGATION: o->rootfs_propagation = optarg; break;
                case 'u': o->user = optarg; break;
                case 'h':
                        cli_print_command_help(g, cmd, cmd == &cli_run_command ? "krill run" : "krill containers create");
                        return 1;
                case ':': {
                        const char *bad = argv[optind - 1];
                        while (*bad == '-')
                                bad++;
                        return usage_error(g, cmd, "flag needs an argument", bad) ? -1 : -1;
                }
                default: {
                        const char *bad = argv[optind - 1];
                        while (*bad == '-')
                                bad++;
                        return usage_error(g, cmd, "flag provided but not defined", bad) ? -1 : -1;
                }
                }
        }
        *ret_optind = optind;
        return 0;
}

static void run_opts_done(struct run_opts *o)
{
        strv_free(o->env);
        strv_free(o->env_files);
        strv_free(o->mounts);
        strv_free(o->labels);
        strv_free(o->annotations);
        strv_free(o->with_ns);
        strv_free(o->devices);
        strv_free(o->cap_add);
        strv_free(o->cap_drop);
        strv_free(o->snapshotter_labels);
        strv_free(o->gpus);
}

/* krill's own shim is runc's (same options), so it counts as runc where ctr checks for runc. */
static bool runc_family(const char *runtime)
{
        return strncmp(runtime, "io.containerd.runc.", 19) == 0 || strcmp(runtime, KRILL_DEFAULT_RUNTIME) == 0;
}

static bool parse_u64(const char *s, uint64_t *ret)
{
        char *end;
        if (!s || !*s || *s == '-')
                return false;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || *end)
                return false;
        *ret = v;
        return true;
}

static int bad_value(struct error **err, const char *flag, const char *v)
{
        _cleanup_free_ char *m = xasprintf("invalid value \"%s\" for flag -%s: parse error", v, flag);
        return error_set_literal(err, EINVAL, m);
}

/* Everything ctr rejects before it creates anything, in ctr's words (plus krill's "not supported"). */
static int check_run_opts(struct run_opts *o, struct error **err)
{
        o->shares = o->create ? 0 : 1024; /* ctr run's --cpu-shares default; create has no such flag */
        o->quota = -1;
        o->period = 0;
        if (o->memory_limit && !parse_u64(o->memory_limit, &o->memory))
                return bad_value(err, "memory-limit", o->memory_limit);
        if (o->cpu_shares && !parse_u64(o->cpu_shares, &o->shares))
                return bad_value(err, "cpu-shares", o->cpu_shares);
        if (o->cpu_period && !parse_u64(o->cpu_period, &o->period))
                return bad_value(err, "cpu-period", o->cpu_period);
        if (o->cpu_quota) {
                char *end;
                errno = 0;
                long long v = strtoll(o->cpu_quota, &end, 10);
                if (errno || *end || end == o->cpu_quota)
                        return bad_value(err, "cpu-quota", o->cpu_quota);
                o->quota = v;
        }
        if (o->cpus) {
                char *end;
                o->ncpus = strtod(o->cpus, &end);
                if (*end || end == o->cpus)
                        return bad_value(err, "cpus", o->cpus);
        }
        if (o->tty && o->null_io)
                return error_set_literal(err, EINVAL, "tty and null-io cannot be used together");
        if (o->cni)
                return error_set_literal(err, ENOTSUP, "--cni is not supported by krill");
        if ((o->runc_binary || o->runc_systemd_cgroup) && !runc_family(o->runtime))
                return error_set_literal(err, EINVAL, "specifying runc-binary and runc-systemd-cgroup is only "
                                                      "supported for \"io.containerd.runc.v2\" runtime");
        if (o->runc_systemd_cgroup && (!o->cgroup || !*o->cgroup))
                return error_set_literal(err, EINVAL, "option --runc-systemd-cgroup requires --cgroup to be set, "
                                                      "e.g. \"machine.slice:foo:deadbeef\"");
        if (o->config)
                return 0; /* ctr ignores every spec flag with a spec file */
        if (o->uidmap && o->gidmap && !o->rootfs) {
                int r = oci_parse_id_mapping(o->uidmap, &o->uid_map, err);
                if (r < 0)
                        return r;
                r = oci_parse_id_mapping(o->gidmap, &o->gid_map, err);
                if (r < 0)
                        return r;
                if (o->remap_labels)
                        return error_set_literal(err, ENOTSUP, "--remap-labels is not supported by krill: its "
                                                               "snapshotters have no remapping labels");
                o->userns = true;
        }
        for (size_t i = 0; o->annotations && o->annotations[i]; i++)
                if (!strchr(o->annotations[i], '=')) {
                        _cleanup_free_ char *m = xasprintf("invalid key=value format annotation: %s", o->annotations[i]);
                        return error_set_literal(err, EINVAL, m);
                }
        int r = oci_check_capability_names(o->cap_add, err);
        if (r >= 0)
                r = oci_check_capability_names(o->cap_drop, err);
        if (r < 0)
                return r;
        if (!o->seccomp && o->seccomp_profile && *o->seccomp_profile)
                return error_set_literal(err, EINVAL, "seccomp must be set to true, if using a custom seccomp-profile");
        if (o->apparmor_default && *o->apparmor_default)
                return error_set_literal(err, ENOTSUP, "AppArmor is not supported by krill");
        if (o->apparmor_profile && *o->apparmor_profile)
                return error_set_literal(err, ENOTSUP, "AppArmor is not supported by krill");
        if ((o->cpu_quota && o->quota != -1) || o->period != 0) {
                if (o->ncpus > 0)
                        return error_set_literal(err, EINVAL, "cpus and quota/period should be used separately");
        }
        for (size_t i = 0; o->with_ns && o->with_ns[i]; i++) {
                _cleanup_free_ char *t = NULL, *p = NULL;
                r = oci_parse_with_ns(o->with_ns[i], &t, &p, err);
                if (r < 0)
                        return r;
        }
        if (o->gpus)
                return error_set_literal(err, ENOTSUP, "--gpus is not supported by krill");
        if (o->rdt_class && *o->rdt_class)
                return error_set_literal(err, ENOTSUP, "--rdt-class is not supported by krill");
        return 0;
}

int cli_run_read_env_file(const char *path, char ***env, struct error **err)
{
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f) {
                int r = -errno;
                return error_set(err, -r, "open %s", path);
        }
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while ((n = getline(&line, &cap, f)) >= 0) {
                while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                        line[--n] = '\0';
                if (n == 0 || line[0] == '#')
                        continue;
                strv_extend(env, line);
        }
        free(line);
        return 0;
}

/* containerd's mount.WithReadonlyTempMount, enough to read /etc/passwd: the snapshot's lower layers (its
 * upper dir is fresh and empty), overlay for several, a bind of the only one otherwise. */
int cli_run_temp_mount(Containerd__Types__Mount **mounts, size_t n, char **ret_dir, struct error **err)
{
        if (n != 1)
                return error_set(err, EINVAL, "unsupported rootfs: %zu mounts", n);
        Containerd__Types__Mount *m = mounts[0];
        _cleanup_free_ char *src = NULL;
        bool overlay = false;
        if (strcmp(m->type, "overlay") == 0) {
                for (size_t i = 0; i < m->n_options; i++)
                        if (strncmp(m->options[i], "lowerdir=", 9) == 0)
                                src = xstrdup(m->options[i] + 9);
                if (!src)
                        return error_set(err, EINVAL, "overlay mount without lowerdir");
                overlay = strchr(src, ':') != NULL;
        } else if (strcmp(m->type, "bind") == 0 || strcmp(m->type, "rbind") == 0) {
                src = xstrdup(m->source);
        } else {
                return error_set(err, EINVAL, "unsupported rootfs mount type %s", m->type);
        }
        char *dir = xstrdup("/tmp/krill-mount-XXXXXX");
        if (!mkdtemp(dir)) {
                int r = -errno;
                free(dir);
                return error_set(err, -r, "failed to create temp mount dir");
        }
        int r;
        if (overlay) {
                _cleanup_free_ char *data = xasprintf("lowerdir=%s", src);
                r = mount("overlay", dir, "overlay", MS_RDONLY, data);
        } else {
                r = mount(src, dir, NULL, MS_BIND | MS_REC, NULL);
        }
        if (r < 0) {
                r = -errno;
                rmdir(dir);
                free(dir);
                return error_set(err, -r, "failed to mount the rootfs to read the user database");
        }
        *ret_dir = dir;
        return 0;
}

void cli_run_temp_unmount(char *dir)
{
        if (!dir)
                return;
        umount2(dir, MNT_DETACH);
        rmdir(dir);
        free(dir);
}

static bool needs_rootfs(const char *user)
{
        if (!user || !user[0])
                return false;
        /* numeric uid:gid needs no lookup except the additional groups, which ctr also reads */
        return true;
}

static void set_annotations(json_t *spec, char *const *kv)
{
        for (size_t i = 0; kv && kv[i]; i++) {
                const char *eq = strchr(kv[i], '=');
                _cleanup_free_ char *k = eq ? xstrndup(kv[i], (size_t)(eq - kv[i])) : xstrdup(kv[i]);
                oci_spec_set_annotation(spec, k, eq ? eq + 1 : "true"); /* LabelArgs' default */
        }
}

/* The spec, built in ctr's order (run_unix.go NewContainer). img is NULL with --rootfs (root_dir then is the
 * absolute rootfs directory) and with --config (the spec file is used as is). */
static int build_spec(const struct cli_global *g, const struct run_opts *o, const char *id,
                      const struct cli_image *img, const char *root_dir, char *const *args,
                      Containerd__Types__Mount **mounts, size_t n_mounts, json_t **ret, struct error **err)
{
        struct oci_image_config ic = {0};
        _cleanup_strv_free_ char **env = NULL;
        char *tmp_rootfs = NULL;
        const char *rootfs = root_dir;
        json_t *spec = NULL;
        int r;

        if (o->config) {
                r = oci_spec_load_file(o->config, &spec, err);
                if (r < 0)
                        return r;
                goto labels;
        }
        spec = oci_spec_new_default(g->namespace_, id);
        /* --env-file is a string flag in ctr: the last one given is the one read */
        size_t n_env_files = strv_length(o->env_files);
        if (n_env_files > 0) {
                r = cli_run_read_env_file(o->env_files[n_env_files - 1], &env, err);
                if (r < 0)
                        goto out;
        }
        strv_extend_strv(&env, o->env);
        if (env)
                oci_spec_set_env(spec, env);
        for (size_t i = 0; o->mounts && o->mounts[i]; i++) {
                r = oci_spec_add_mount_string(spec, o->mounts[i], err);
                if (r < 0)
                        goto out;
        }
        if (root_dir) {
                oci_spec_set_root_path(spec, root_dir);
        } else {
                r = oci_image_config_parse(img->config, img->config_len, &ic, err);
                if (r < 0)
                        goto out;
                if ((needs_rootfs(ic.user) || needs_rootfs(o->user)) && geteuid() == 0) {
                        r = cli_run_temp_mount(mounts, n_mounts, &tmp_rootfs, err);
                        if (r < 0)
                                goto out;
                        rootfs = tmp_rootfs;
                }
                /* WithImageConfig: entrypoint + cmd; command line args replace both (WithProcessArgs) */
                r = oci_spec_apply_image_config(spec, &ic, NULL, rootfs, err);
                if (r < 0)
                        goto out;
                if (o->userns)
                        oci_spec_set_user_namespace(spec, &o->uid_map, &o->gid_map);
        }
        if (o->read_only)
                oci_spec_set_readonly_rootfs(spec);
        if (args && args[0])
                oci_spec_set_args(spec, args);
        if (o->cwd && *o->cwd)
                oci_spec_set_cwd(spec, o->cwd);
        if (o->tty)
                oci_spec_set_tty(spec);
        if (o->privileged) {
                r = oci_spec_set_privileged(spec, err);
                if (r < 0)
                        goto out;
        }
        if (o->net_host) {
                char host[256] = "";
                gethostname(host, sizeof(host) - 1);
                oci_spec_set_host_network(spec, host);
        }
        if (o->user) { /* krill's own flag (ctr 1.6 has none): after the image config, like docker's -u */
                r = oci_spec_set_user(spec, o->user, rootfs, err);
                if (r < 0)
                        goto out;
        }
        set_annotations(spec, o->annotations);
        if (o->cap_add)
                oci_spec_add_capabilities(spec, o->cap_add);
        if (o->cap_drop)
                oci_spec_drop_capabilities(spec, o->cap_drop);
        if (o->seccomp && o->seccomp_profile && *o->seccomp_profile) {
                r = oci_spec_set_seccomp_profile(spec, o->seccomp_profile, err);
                if (r < 0)
                        goto out;
        } else if (o->seccomp) {
                json_object_set_new(json_object_get(spec, "linux"), "seccomp", oci_seccomp_default_profile(spec));
        }
        if (o->ncpus > 0)
                oci_spec_set_cpus(spec, o->ncpus);
        if (o->shares > 0)
                oci_spec_set_cpu_shares(spec, o->shares);
        if (o->quota != -1 || o->period != 0)
                oci_spec_set_cpu_cfs(spec, o->quota, o->period);
        for (size_t i = 0; o->with_ns && o->with_ns[i]; i++) {
                _cleanup_free_ char *t = NULL, *p = NULL;
                r = oci_parse_with_ns(o->with_ns[i], &t, &p, err);
                if (r < 0)
                        goto out;
                oci_spec_set_namespace(spec, t, p);
        }
        if (o->allow_new_privs)
                oci_spec_set_no_new_privileges(spec, false);
        if (o->cgroup_set)
                oci_spec_set_cgroups_path(spec, o->cgroup);
        if (o->memory > 0)
                oci_spec_set_memory_limit(spec, (int64_t)o->memory);
        for (size_t i = 0; o->devices && o->devices[i]; i++) {
                r = oci_spec_add_devices(spec, o->devices[i], NULL, "rwm", err);
                if (r < 0)
                        goto out;
        }
        if (o->rootfs_propagation && *o->rootfs_propagation)
                oci_spec_set_rootfs_propagation(spec, o->rootfs_propagation);
labels:
        /* ctr also copies --label into the spec's annotations */
        set_annotations(spec, o->labels);
        r = 0;
out:
        cli_run_temp_unmount(tmp_rootfs);
        oci_image_config_done(&ic);
        if (r < 0) {
                json_decref(spec);
                return r;
        }
        *ret = spec;
        return 0;
}

static void add_label(char ***labels, const char *k, const char *v)
{
        for (size_t i = 0; *labels && (*labels)[i]; i += 2)
                if (strcmp((*labels)[i], k) == 0) {
                        free((*labels)[i + 1]);
                        (*labels)[i + 1] = xstrdup(v);
                        return;
                }
        strv_extend(labels, k);
        strv_extend(labels, v);
}

/* Container labels as ctr sets them: image config labels, the stop signal, then --label (wins). */
static char **container_labels(const struct run_opts *o, const struct cli_image *img)
{
        struct oci_image_config ic = {0};
        char **labels = NULL;
        if (!img) {
                /* --rootfs and --config: WithContainerLabels(--label) only */
        } else if (oci_image_config_parse(img->config, img->config_len, &ic, NULL) == 0) {
                for (size_t i = 0; ic.labels && ic.labels[i]; i++) {
                        const char *eq = strchr(ic.labels[i], '=');
                        _cleanup_free_ char *k = eq ? xstrndup(ic.labels[i], (size_t)(eq - ic.labels[i]))
                                                    : xstrdup(ic.labels[i]);
                        add_label(&labels, k, eq ? eq + 1 : "");
                }
                add_label(&labels, STOP_SIGNAL_LABEL, ic.stop_signal && ic.stop_signal[0] ? ic.stop_signal : "SIGTERM");
                oci_image_config_done(&ic);
        } else {
                add_label(&labels, STOP_SIGNAL_LABEL, "SIGTERM");
        }
        for (size_t i = 0; o->labels && o->labels[i]; i++) {
                const char *eq = strchr(o->labels[i], '=');
                _cleanup_free_ char *k =
                        eq ? xstrndup(o->labels[i], (size_t)(eq - o->labels[i])) : xstrdup(o->labels[i]);
                add_label(&labels, k, eq ? eq + 1 : "true"); /* LabelArgs */
        }
        return labels;
}

static int lease_create(struct grpc_client *c, char **ret_id, struct error **err)
{
        ProtobufCMessage *resp = NULL;
        char expire[64];
        time_t t = time(NULL) + 24 * 3600;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(expire, sizeof(expire), "%Y-%m-%dT%H:%M:%SZ", &tm);
        Containerd__Services__Leases__V1__CreateRequest__LabelsEntry e =
                CONTAINERD__SERVICES__LEASES__V1__CREATE_REQUEST__LABELS_ENTRY__INIT;
        e.key = (char *)"containerd.io/gc.expire";
        e.value = expire;
        Containerd__Services__Leases__V1__CreateRequest__LabelsEntry *ep = &e;
        Containerd__Services__Leases__V1__CreateRequest req = CONTAINERD__SERVICES__LEASES__V1__CREATE_REQUEST__INIT;
        _cleanup_free_ char *id = xasprintf("%ld-krill-%d", (long)time(NULL), (int)getpid());
        req.id = id;
        req.n_labels = 1;
        req.labels = &ep;
        int r = grpc_client_unary(c, "/containerd.services.leases.v1.Leases/Create", NULL, &req.base,
                                  &containerd__services__leases__v1__create_response__descriptor, &resp, err);
        if (r < 0)
                return r;
        protobuf_c_message_free_unpacked(resp, NULL);
        *ret_id = TAKE_PTR(id);
        return 0;
}

static void lease_delete(struct grpc_client *c, const char *id)
{
        ProtobufCMessage *resp = NULL;
        Containerd__Services__Leases__V1__DeleteRequest req = CONTAINERD__SERVICES__LEASES__V1__DELETE_REQUEST__INIT;
        req.id = (char *)id;
        if (grpc_client_unary(c, "/containerd.services.leases.v1.Leases/Delete", NULL, &req.base,
                              &google__protobuf__empty__descriptor, &resp, NULL) >= 0)
                protobuf_c_message_free_unpacked(resp, NULL);
}

int cli_run_snapshot_remove(struct grpc_client *c, const char *snapshotter, const char *key, struct error **err)
{
        ProtobufCMessage *resp = NULL;
        Containerd__Services__Snapshots__V1__RemoveSnapshotRequest req =
                CONTAINERD__SERVICES__SNAPSHOTS__V1__REMOVE_SNAPSHOT_REQUEST__INIT;
        req.snapshotter = (char *)snapshotter;
        req.key = (char *)key;
        int r = grpc_client_unary(c, "/containerd.services.snapshots.v1.Snapshots/Remove", NULL, &req.base,
                                  &google__protobuf__empty__descriptor, &resp, err);
        if (r >= 0)
                protobuf_c_message_free_unpacked(resp, NULL);
        return r;
}

int cli_run_container_delete(struct grpc_client *c, const char *id, struct error **err)
{
        ProtobufCMessage *resp = NULL;
        Containerd__Services__Containers__V1__DeleteContainerRequest req =
                CONTAINERD__SERVICES__CONTAINERS__V1__DELETE_CONTAINER_REQUEST__INIT;
        req.id = (char *)id;
        int r = grpc_client_unary(c, "/containerd.services.containers.v1.Containers/Delete", NULL, &req.base,
                                  &google__protobuf__empty__descriptor, &resp, err);
        if (r >= 0)
                protobuf_c_message_free_unpacked(resp, NULL);
        return r;
}

int cli_run_task_delete(struct grpc_client *c, const char *id, uint32_t *ret_status, struct error **err)
{
        ProtobufCMessage *resp = NULL;
        Containerd__Services__Tasks__V1__DeleteTaskRequest req = CONTAINERD__SERVICES__TASKS__V1__DELETE_TASK_REQUEST__INIT;
        req.container_id = (char *)id;
        int r = grpc_client_unary(c, "/containerd.services.tasks.v1.Tasks/Delete", NULL, &req.base,
                                  &containerd__services__tasks__v1__delete_response__descriptor, &resp, err);
        if (r < 0)
                return r;
        if (ret_status)
                *ret_status = ((Containerd__Services__Tasks__V1__DeleteResponse *)resp)->exit_status;
        protobuf_c_message_free_unpacked(resp, NULL);
        return 0;
}

int cli_run_task_kill(struct grpc_client *c, const char *id, const char *exec_id, int sig, bool all,
                      struct error **err)
{
        ProtobufCMessage *resp = NULL;
        Containerd__Services__Tasks__V1__KillRequest req = CONTAINERD__SERVICES__TASKS__V1__KILL_REQUEST__INIT;
        req.container_id = (char *)id;
        req.exec_id = (char *)(exec_id ? exec_id : "");
        req.signal = (uint32_t)sig;
        req.all = all;
        int r = grpc_client_unary(c, "/containerd.services.tasks.v1.Tasks/Kill", NULL, &req.base,
                                  &google__protobuf__empty__descriptor, &resp, err);
        if (r >= 0)
                protobuf_c_message_free_unpacked(resp, NULL);
        return r;
}

int cli_run_task_start(struct grpc_client *c, const char *id, const char *exec_id, struct error **err)
{
        ProtobufCMessage *resp = NULL;
        Containerd__Services__Tasks__V1__StartRequest req = CONTAINERD__SERVICES__TASKS__V1__START_REQUEST__INIT;
        req.container_id = (char *)id;
        req.exec_id = (char *)(exec_id ? exec_id : "");
        int r = grpc_client_unary(c, "/containerd.services.tasks.v1.Tasks/Start", NULL, &req.base,
                                  &containerd__services__tasks__v1__start_response__descriptor, &resp, err);
        if (r >= 0)
                protobuf_c_message_free_unpacked(resp, NULL);
        return r;
}

int cli_run_wait_open(struct grpc_client *c, const char *id, const char *exec_id, struct grpc_stream **ret,
                      struct error **err)
{
        struct grpc_stream *s = NULL;
        Containerd__Services__Tasks__V1__WaitRequest req = CONTAINERD__SERVICES__TASKS__V1__WAIT_REQUEST__INIT;
        req.container_id = (char *)id;
        req.exec_id = (char *)(exec_id ? exec_id : "");
        int r = grpc_client_stream_open(c, "/containerd.services.tasks.v1.Tasks/Wait", NULL,
                                        &containerd__services__tasks__v1__wait_response__descriptor, &s, err);
        if (r < 0)
                return r;
        r = grpc_stream_send(s, &req.base, err);
        if (r >= 0)
                r = grpc_stream_close_send(s, err);
        if (r < 0) {
                grpc_stream_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

static volatile sig_atomic_t pending_signals[65];
static volatile sig_atomic_t pending_any;

static void on_signal(int sig)
{
        if (sig > 0 && sig < 65) {
                pending_signals[sig] = 1;
                pending_any = 1;
        }
}

/* ctr's ForwardAllSignals (without a terminal) and HandleConsoleResize (with one). */
static const int forwarded[] = {SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGTERM, 0};

void cli_run_catch_signals(bool tty)
{
        struct sigaction sa = {0};
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        if (tty) {
                sigaction(SIGWINCH, &sa, NULL);
                return;
        }
        for (size_t i = 0; forwarded[i]; i++)
                sigaction(forwarded[i], &sa, NULL);
}

static void resize(struct grpc_client *c, const char *id, const char *exec_id)
{
        unsigned w, h;
        ProtobufCMessage *resp = NULL;
        if (!cli_stdio_winsize(&w, &h))
                return;
        Containerd__Services__Tasks__V1__ResizePtyRequest req = CONTAINERD__SERVICES__TASKS__V1__RESIZE_PTY_REQUEST__INIT;
        req.container_id = (char *)id;
        req.exec_id = (char *)(exec_id ? exec_id : "");
        req.width = w;
        req.height = h;
        if (grpc_client_unary(c, "/containerd.services.tasks.v1.Tasks/ResizePty", NULL, &req.base,
                              &google__protobuf__empty__descriptor, &resp, NULL) >= 0)
                protobuf_c_message_free_unpacked(resp, NULL);
}

int cli_run_wait(struct grpc_client *c, struct grpc_stream *s, const char *id, const char *exec_id, bool tty,
                 uint32_t *ret_status, struct error **err)
{
        if (tty)
                resize(c, id, exec_id);
        for (;;) {
                ProtobufCMessage *m = NULL;
                _cleanup_error_ struct error *e = NULL;
                /* the blocking client cannot be woken by a signal: look at pending signals a few times a second */
                int r = grpc_stream_recv(s, 200, &m, &e);
                if (r == 1) {
                        *ret_status = ((Containerd__Services__Tasks__V1__WaitResponse *)m)->exit_status;
                        protobuf_c_message_free_unpacked(m, NULL);
                        return 0;
                }
                if (r == -ETIMEDOUT && !e) {
                        if (!pending_any)
                                continue;
                        pending_any = 0;
                        for (int sig = 1; sig < 65; sig++) {
                                if (!pending_signals[sig])
                                        continue;
                                pending_signals[sig] = 0;
                                if (sig == SIGWINCH)
                                        resize(c, id, exec_id);
                                else
                                        cli_run_task_kill(c, id, exec_id, sig, false, NULL);
                        }
                        continue;
                }
                if (r == 0)
                        return error_set(err, EPROTO, "wait ended without a status");
                if (err)
                        *err = TAKE_PTR(e);
                return r;
        }
}

static Containerd__Types__Mount **copy_mounts(Containerd__Types__Mount **m, size_t n)
{
        /* Tasks.Create takes the same messages Prepare returned: share the pointers */
        Containerd__Types__Mount **v = xcalloc(n + 1, sizeof(*v));
        if (n)
                memcpy(v, m, n * sizeof(*v));
        return v;
}

/* --- protobuf wire encoding of the small option messages (runc's options have no generated code here) --- */

struct pbuf {
        uint8_t *d;
        size_t len;
};

static void pb_raw(struct pbuf *b, uint64_t v)
{
        b->d = xrealloc(b->d, b->len + 10);
        do {
                uint8_t byte = v & 0x7f;
                v >>= 7;
                b->d[b->len++] = byte | (v ? 0x80 : 0);
        } while (v);
}

static void pb_uint(struct pbuf *b, unsigned field, uint64_t v)
{
        if (!v)
                return;
        pb_raw(b, (uint64_t)field << 3);
        pb_raw(b, v);
}

static void pb_str(struct pbuf *b, unsigned field, const char *v)
{
        if (!v || !*v)
                return;
        size_t n = strlen(v);
        pb_raw(b, (uint64_t)field << 3 | 2);
        pb_raw(b, n);
        b->d = xrealloc(b->d, b->len + n);
        memcpy(b->d + b->len, v, n);
        b->len += n;
}

/* getRuntimeOptions: runc's Options (binary, root, systemd cgroup) for runc runtimes, runtimeoptions.v1 with
 * --runtime-config-path for others, else none. Returns false for none. */
static bool runtime_options(const struct run_opts *o, Google__Protobuf__Any *any, struct pbuf *b)
{
        if (runc_family(o->runtime)) {
                pb_str(b, 6, o->runc_binary);
                pb_str(b, 7, o->runc_root);
                pb_uint(b, 9, o->runc_systemd_cgroup);
                any->type_url = (char *)RUNC_OPTIONS_TYPE_URL;
        } else if (o->runtime_config_path && *o->runtime_config_path) {
                pb_str(b, 2, o->runtime_config_path);
                any->type_url = (char *)"runtimeoptions.v1.Options";
        } else {
                return false;
        }
        any->value.data = b->d;
        any->value.len = b->len;
        return true;
}

/* getNewTaskOpts: WithNoPivotRoot, WithUIDOwner/WithGIDOwner (host ids of --uidmap/--gidmap) into runc's
 * Options for runc runtimes, runctypes.CreateOptions otherwise. Returns false when none is set. */
static bool task_options(const struct run_opts *o, Google__Protobuf__Any *any, struct pbuf *b)
{
        struct oci_id_mapping um = {0}, gm = {0};
        bool has_u = o->uidmap && oci_parse_id_mapping(o->uidmap, &um, NULL) == 0;
        bool has_g = o->gidmap && oci_parse_id_mapping(o->gidmap, &gm, NULL) == 0;
        if (!o->no_pivot && !o->uidmap && !o->gidmap)
                return false;
        bool runc = runc_family(o->runtime);
        pb_uint(b, 1, o->no_pivot);
        if (has_u)
                pb_uint(b, runc ? 4 : 10, um.host_id);
        if (has_g)
                pb_uint(b, runc ? 5 : 11, gm.host_id);
        any->type_url = (char *)(runc ? RUNC_OPTIONS_TYPE_URL : "containerd.linux.runc.CreateOptions");
        any->value.data = b->d;
        any->value.len = b->len;
        return true;
}

/* Go's filepath.Clean: lexical, "." and ".." resolved, no symlinks followed. */
static char *clean_path(const char *path)
{
        bool abs = path[0] == '/';
        _cleanup_strv_free_ char **parts = strv_split(path, "/");
        char **out = NULL;
        size_t n = 0;
        for (size_t i = 0; parts && parts[i]; i++) {
                const char *p = parts[i];
                if (!*p || strcmp(p, ".") == 0)
                        continue;
                if (strcmp(p, "..") == 0) {
                        if (n > 0 && strcmp(out[n - 1], "..") != 0) {
                                free(out[--n]);
                                out[n] = NULL;
                                continue;
                        }
                        if (abs)
                                continue;
                }
                strv_extend(&out, p);
                n++;
        }
        _cleanup_free_ char *joined = strv_join(out, "/");
        strv_free(out);
        if (abs)
                return xasprintf("/%s", joined);
        return xstrdup(*joined ? joined : ".");
}

/* filepath.Abs: cwd-relative paths joined to the working directory, then cleaned. */
static int abs_path(const char *path, char **ret, struct error **err)
{
        if (path[0] == '/') {
                *ret = clean_path(path);
                return 0;
        }
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof(cwd)))
                return error_set(err, errno, "getwd");
        _cleanup_free_ char *j = xasprintf("%s/%s", cwd, path);
        *ret = clean_path(j);
        return 0;
}

/* commands.WritePidFile: "<pid>" into .<name> beside the file (O_EXCL, O_SYNC), renamed over it. */
int cli_run_write_pid_file(const char *path, uint32_t pid, struct error **err)
{
        _cleanup_free_ char *abs = NULL;
        int ar = abs_path(path, &abs, err);
        if (ar < 0)
                return ar;
        char *slash = strrchr(abs, '/');
        _cleanup_free_ char *tmp = xasprintf("%.*s/.%s", (int)(slash - abs), abs, slash + 1);
        int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_SYNC | O_CLOEXEC, 0666);
        if (fd < 0) {
                int r = errno;
                _cleanup_free_ char *m = xasprintf("open %s: %s", tmp, strerror(r));
                return error_set_literal(err, r, m);
        }
        _cleanup_free_ char *txt = xasprintf("%u", pid);
        ssize_t w = write(fd, txt, strlen(txt));
        int werr = errno;
        close(fd);
        if (w != (ssize_t)strlen(txt)) {
                unlink(tmp);
                return error_set(err, w < 0 ? werr : EIO, "write %s", tmp);
        }
        if (rename(tmp, abs) < 0) {
                int r = errno;
                unlink(tmp);
                return error_set(err, r, "rename %s %s", tmp, abs);
        }
        return 0;
}

/* --- WithRemappedSnapshot (snapshotter_opts_unix.go): a committed copy of the image chain chowned by the
 * mapping's host ids, "<chainID>-<uid>-<gid>", reused when present; the container's snapshot on top. --- */

static uint32_t remap_uid, remap_gid;

static int remap_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)flag;
        (void)ftw;
        /* lchown: never follow a symlink out to a host file */
        if (lchown(path, st->st_uid + remap_uid, st->st_gid + remap_gid) < 0)
                return -errno;
        return 0;
}

static int mount_rw(Containerd__Types__Mount **mounts, size_t n, const char *dir, struct error **err)
{
        if (n != 1)
                return error_set(err, EINVAL, "unsupported rootfs: %zu mounts", n);
        Containerd__Types__Mount *m = mounts[0];
        unsigned long flags = 0;
        _cleanup_strv_free_ char **data = NULL;
        for (size_t i = 0; i < m->n_options; i++) {
                const char *op = m->options[i];
                if (strcmp(op, "ro") == 0)
                        flags |= MS_RDONLY;
                else if (strcmp(op, "bind") == 0 || strcmp(op, "rbind") == 0)
                        flags |= MS_BIND | (op[0] == 'r' ? MS_REC : 0);
                else if (strcmp(op, "rw") != 0)
                        strv_extend(&data, op);
        }
        _cleanup_free_ char *d = strv_join(data, ",");
        if (strcmp(m->type, "bind") == 0)
                flags |= MS_BIND;
        if (mount(m->source, dir, m->type, flags, d) < 0)
                return error_set(err, errno, "failed to mount the snapshot to remap it");
        return 0;
}

static int snapshot_call(struct grpc_client *c, const char *method, const struct grpc_metadata *md,
                         const ProtobufCMessage *req, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **ret,
                         struct error **err)
{
        _cleanup_free_ char *full = xasprintf("/containerd.services.snapshots.v1.Snapshots/%s", method);
        ProtobufCMessage *resp = NULL;
        int r = grpc_client_unary(c, full, md, req, desc, &resp, err);
        if (r < 0)
                return r;
        if (ret)
                *ret = resp;
        else
                protobuf_c_message_free_unpacked(resp, NULL);
        return 0;
}

static int prepare(struct grpc_client *c, const struct grpc_metadata *md, const char *snapshotter, const char *key,
                   const char *parent, char *const *labels, ProtobufCMessage **ret, struct error **err)
{
        Containerd__Services__Snapshots__V1__PrepareSnapshotRequest req =
                CONTAINERD__SERVICES__SNAPSHOTS__V1__PREPARE_SNAPSHOT_REQUEST__INIT;
        size_t nl = 0;
        for (size_t i = 0; labels && labels[i]; i++)
                nl++;
        _cleanup_free_ Containerd__Services__Snapshots__V1__PrepareSnapshotRequest__LabelsEntry *e =
                xcalloc(nl + 1, sizeof(*e));
        _cleanup_free_ Containerd__Services__Snapshots__V1__PrepareSnapshotRequest__LabelsEntry **ep =
                xcalloc(nl + 1, sizeof(*ep));
        _cleanup_strv_free_ char **kv = NULL;
        for (size_t i = 0; i < nl; i++) {
                const char *eq = strchr(labels[i], '=');
                strv_push(&kv, eq ? xstrndup(labels[i], (size_t)(eq - labels[i])) : xstrdup(labels[i]));
                strv_extend(&kv, eq ? eq + 1 : "true"); /* LabelArgs */
        }
        for (size_t i = 0; i < nl; i++) {
                containerd__services__snapshots__v1__prepare_snapshot_request__labels_entry__init(&e[i]);
                e[i].key = kv[2 * i];
                e[i].value = kv[2 * i + 1];
                ep[i] = &e[i];
        }
        req.snapshotter = (char *)snapshotter;
        req.key = (char *)key;
        req.parent = (char *)parent;
        req.n_labels = nl;
        req.labels = ep;
        return snapshot_call(c, "Prepare", md, &req.base,
                             &containerd__services__snapshots__v1__prepare_snapshot_response__descriptor, ret, err);
}

static int prepare_remapped(struct grpc_client *c, const struct grpc_metadata *md, const struct run_opts *o,
                            const char *parent, const char *id, ProtobufCMessage **ret, struct error **err)
{
        _cleanup_free_ char *userns_id = xasprintf("%s-%u-%u", parent, o->uid_map.host_id, o->gid_map.host_id);
        _cleanup_free_ char *remap_key = xasprintf("%s-remap", userns_id);
        Containerd__Services__Snapshots__V1__StatSnapshotRequest st =
                CONTAINERD__SERVICES__SNAPSHOTS__V1__STAT_SNAPSHOT_REQUEST__INIT;
        st.snapshotter = (char *)o->snapshotter;
        st.key = userns_id;
        if (snapshot_call(c, "Stat", md, &st.base,
                          &containerd__services__snapshots__v1__stat_snapshot_response__descriptor, NULL, NULL) == 0) {
                int r = prepare(c, md, o->snapshotter, id, userns_id, NULL, ret, err);
                if (r != -ENOENT)
                        return r;
                error_free(err);
        }
        ProtobufCMessage *pm = NULL;
        int r = prepare(c, md, o->snapshotter, remap_key, parent, NULL, &pm, err);
        if (r < 0)
                return r;
        Containerd__Services__Snapshots__V1__PrepareSnapshotResponse *pr = (void *)pm;
        char dir[] = "/tmp/krill-remap-XXXXXX";
        if (!mkdtemp(dir)) {
                r = error_set(err, errno, "failed to create temp mount dir");
        } else {
                r = mount_rw(pr->mounts, pr->n_mounts, dir, err);
                if (r >= 0) {
                        remap_uid = o->uid_map.host_id;
                        remap_gid = o->gid_map.host_id;
                        r = nftw(dir, remap_one, 32, FTW_PHYS | FTW_MOUNT);
                        if (r != 0)
                                r = error_set(err, r < 0 ? -r : EIO, "failed to remap the rootfs");
                        umount2(dir, MNT_DETACH);
                }
                rmdir(dir);
        }
        protobuf_c_message_free_unpacked(pm, NULL);
        if (r < 0) {
                cli_run_snapshot_remove(c, o->snapshotter, remap_key, NULL);
                return r;
        }
        Containerd__Services__Snapshots__V1__CommitSnapshotRequest cm =
                CONTAINERD__SERVICES__SNAPSHOTS__V1__COMMIT_SNAPSHOT_REQUEST__INIT;
        cm.snapshotter = (char *)o->snapshotter;
        cm.name = userns_id;
        cm.key = remap_key;
        r = snapshot_call(c, "Commit", md, &cm.base, &google__protobuf__empty__descriptor, NULL, err);
        if (r < 0)
                return r;
        return prepare(c, md, o->snapshotter, id, userns_id, NULL, ret, err);
}

static int do_run(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv, bool create_only)
{
        _cleanup_error_ struct error *err = NULL;
        struct run_opts o = {0};
        struct grpc_client *c = NULL;
        struct cli_image img = {0};
        bool have_img = false;
        ProtobufCMessage *prep = NULL, *cresp = NULL;
        json_t *spec = NULL;
        _cleanup_free_ char *lease = NULL, *spec_json = NULL, *root_dir = NULL;
        _cleanup_strv_free_ char **labels = NULL;
        _cleanup_free_ LabelsEntry *entries = NULL;
        _cleanup_free_ LabelsEntry **eps = NULL;
        _cleanup_free_ Containerd__Types__Mount **rootfs = NULL;
        struct pbuf rt_buf = {0}, task_buf = {0};
        struct cli_stdio *io = NULL;
        struct grpc_stream *wait = NULL;
        bool created = false, task_created = false, snapshot = false;
        const char *ref = NULL, *id = NULL;
        char **args = NULL;
        int optind_, rc = 1, r;

        o.create = create_only;
        r = parse_run_flags(g, cmd, argc, argv, &o, &optind_);
        if (r != 0) {
                run_opts_done(&o);
                return r > 0 ? 0 : 1;
        }
        if (!o.snapshotter || !*o.snapshotter)
                o.snapshotter = getenv("CONTAINERD_SNAPSHOTTER") && getenv("CONTAINERD_SNAPSHOTTER")[0]
                                        ? getenv("CONTAINERD_SNAPSHOTTER")
                                        : "overlayfs";
        if (!o.runtime)
                o.runtime = KRILL_DEFAULT_RUNTIME;
        if (!o.fifo_dir)
                o.fifo_dir = CLI_DEFAULT_FIFO_DIR;
        if (o.config) {
                if (argc - optind_ > 1) {
                        rc = cli_failf(g, "with spec config file, only container id should be provided");
                        goto out;
                }
                id = argc - optind_ > 0 ? argv[optind_] : "";
        } else {
                ref = argc - optind_ > 0 ? argv[optind_] : "";
                id = argc - optind_ > 1 ? argv[optind_ + 1] : "";
                args = argv + (argc - optind_ > 2 ? optind_ + 2 : argc);
                if (!*ref) {
                        rc = cli_failf(g, "image ref must be provided");
                        goto out;
                }
        }
        if (!*id) {
                rc = cli_failf(g, "container id must be provided");
                goto out;
        }
        if (o.rm && o.detach) {
                rc = cli_failf(g, "flags --detach and --rm cannot be specified together");
                goto out;
        }
        r = check_run_opts(&o, &err);
        if (r < 0) {
                rc = cli_fail(g, err);
                goto out;
        }

        if (cli_connect(g, &c) < 0)
                goto out;
        bool unpack = false;
        if (!o.config && o.rootfs) {
                r = abs_path(ref, &root_dir, &err);
                if (r < 0) {
                        rc = cli_fail(g, err);
                        goto out;
                }
        } else if (!o.config) {
                r = cli_image_resolve(c, ref, o.platform, &img, &err);
                if (r >= 0) {
                        have_img = true;
                        r = cli_image_check_unpacked(c, &img, o.snapshotter, &err);
                        if (r == -ENOENT) {
                                unpack = true;
                                error_free(&err);
                                r = 0;
                        }
                }
                if (r < 0) {
                        rc = cli_fail(g, err);
                        goto out;
                }
        }
        r = lease_create(c, &lease, &err);
        if (r < 0) {
                rc = cli_fail(g, err);
                goto out;
        }
        if (unpack) {
                r = cli_image_unpack(c, &img, o.snapshotter, lease, &err);
                if (r < 0) {
                        lease_delete(c, lease);
                        rc = cli_fail(g, err);
                        goto out;
                }
        }
        const struct grpc_metadata lease_md[] = {{"containerd-lease", lease}, {NULL, NULL}};

        Containerd__Services__Snapshots__V1__PrepareSnapshotResponse *pr = NULL;
        if (have_img) {
                if (o.userns)
                        r = prepare_remapped(c, lease_md, &o, img.chain_id, id, &prep, &err);
                else
                        r = prepare(c, lease_md, o.snapshotter, id, img.chain_id, o.snapshotter_labels, &prep, &err);
                if (r < 0) {
                        lease_delete(c, lease);
                        rc = cli_fail(g, err);
                        goto out;
                }
                snapshot = true;
                pr = (void *)prep;
        }
        r = build_spec(g, &o, id, have_img ? &img : NULL, root_dir, args, pr ? pr->mounts : NULL,
                       pr ? pr->n_mounts : 0, &spec, &err);
        if (r < 0) {
                if (snapshot)
                        cli_run_snapshot_remove(c, o.snapshotter, id, NULL);
                lease_delete(c, lease);
                rc = cli_fail(g, err);
                goto out;
        }
        spec_json = oci_spec_dump(spec);

        labels = container_labels(&o, have_img ? &img : NULL);
        size_t nl = strv_length(labels) / 2;
        entries = xcalloc(nl + 1, sizeof(*entries));
        eps = xcalloc(nl + 1, sizeof(*eps));
        for (size_t i = 0; i < nl; i++) {
                containerd__services__containers__v1__container__labels_entry__init(&entries[i]);
                entries[i].key = labels[2 * i];
                entries[i].value = labels[2 * i + 1];
                eps[i] = &entries[i];
        }
        Google__Protobuf__Any spec_any = GOOGLE__PROTOBUF__ANY__INIT, opts_any = GOOGLE__PROTOBUF__ANY__INIT;
        spec_any.type_url = (char *)SPEC_TYPE_URL;
        spec_any.value.data = (uint8_t *)spec_json;
        spec_any.value.len = strlen(spec_json);
        Containerd__Services__Containers__V1__Container__Runtime rt =
                CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__RUNTIME__INIT;
        rt.name = (char *)o.runtime;
        if (runtime_options(&o, &opts_any, &rt_buf))
                rt.options = &opts_any;
        Container ctr = CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__INIT;
        ctr.id = (char *)id;
        ctr.n_labels = nl;
        ctr.labels = eps;
        ctr.image = have_img ? img.name : (char *)"";
        ctr.runtime = &rt;
        ctr.spec = &spec_any;
        ctr.snapshotter = have_img ? (char *)o.snapshotter : (char *)"";
        ctr.snapshot_key = have_img ? (char *)id : (char *)"";
        Containerd__Services__Containers__V1__CreateContainerRequest creq =
                CONTAINERD__SERVICES__CONTAINERS__V1__CREATE_CONTAINER_REQUEST__INIT;
        creq.container = &ctr;
        r = grpc_client_unary(c, "/containerd.services.containers.v1.Containers/Create", lease_md, &creq.base,
                              &containerd__services__containers__v1__create_container_response__descriptor, &cresp,
                              &err);
        lease_delete(c, lease);
        if (r < 0) {
                if (snapshot)
                        cli_run_snapshot_remove(c, o.snapshotter, id, NULL);
                rc = cli_fail(g, err);
                goto out;
        }
        created = true;
        if (create_only) {
                created = false;
                rc = 0;
                goto out;
        }

        Containerd__Services__Tasks__V1__CreateTaskRequest treq = CONTAINERD__SERVICES__TASKS__V1__CREATE_TASK_REQUEST__INIT;
        Google__Protobuf__Any task_any = GOOGLE__PROTOBUF__ANY__INIT;
        treq.container_id = (char *)id;
        rootfs = copy_mounts(pr ? pr->mounts : NULL, pr ? pr->n_mounts : 0);
        treq.n_rootfs = pr ? pr->n_mounts : 0;
        treq.rootfs = rootfs;
        treq.terminal = o.tty;
        if (task_options(&o, &task_any, &task_buf))
                treq.options = &task_any;
        treq.stdin = treq.stdout = treq.stderr = (char *)"";
        if (o.tty || (!o.null_io && !(o.log_uri && *o.log_uri))) {
                /* ctr's cio.NewCreator; with -d the FIFOs are left for `tasks attach`, nobody copying */
                r = cli_stdio_new(o.fifo_dir, id, o.tty, &io, &err);
                if (r < 0) {
                        rc = cli_fail(g, err);
                        goto out;
                }
                treq.stdin = io->stdin_path;
                treq.stdout = io->stdout_path;
                treq.stderr = io->stderr_path ? io->stderr_path : (char *)"";
                if (!o.detach) {
                        /* like ctr's cio, our ends are opened before Tasks.Create: runc's shim opens the FIFOs
                         * there and blocks until a reader exists */
                        r = cli_stdio_start(io, &err);
                        if (r < 0) {
                                rc = cli_fail(g, err);
                                goto out;
                        }
                }
        } else if (!o.null_io) {
                /* cio.LogURI: the shim writes stdout and stderr to the URI */
                treq.stdout = treq.stderr = (char *)o.log_uri;
        }
        ProtobufCMessage *tresp = NULL;
        r = grpc_client_unary(c, "/containerd.services.tasks.v1.Tasks/Create", NULL, &treq.base,
                              &containerd__services__tasks__v1__create_task_response__descriptor, &tresp, &err);
        if (r < 0) {
                rc = cli_fail(g, err);
                goto out;
        }
        uint32_t pid = ((Containerd__Services__Tasks__V1__CreateTaskResponse *)tresp)->pid;
        protobuf_c_message_free_unpacked(tresp, NULL);
        task_created = true;

        if (!o.detach) {
                /* ctr opens Wait before Start so a fast exit cannot be missed */
                r = cli_run_wait_open(c, id, NULL, &wait, &err);
                if (r < 0) {
                        rc = cli_fail(g, err);
                        goto out;
                }
        }
        if (o.pid_file) {
                r = cli_run_write_pid_file(o.pid_file, pid, &err);
                if (r < 0) {
                        rc = cli_fail(g, err);
                        if (o.detach) /* ctr only deletes the task when it would have waited for it */
                                task_created = created = false;
                        goto out;
                }
        }
        if (o.detach) {
                r = cli_run_task_start(c, id, NULL, &err);
                if (r < 0)
                        rc = cli_fail(g, err);
                else
                        rc = 0;
                cli_stdio_leave(TAKE_PTR(io));
                task_created = false; /* leave it running (or created, as ctr does on a failed start) */
                created = false;
                goto out;
        }
        cli_run_catch_signals(o.tty);
        r = cli_run_task_start(c, id, NULL, &err);
        if (r < 0) {
                rc = cli_fail(g, err);
                goto out;
        }
        uint32_t status = 0;
        r = cli_run_wait(c, wait, id, NULL, o.tty, &status, &err);
        if (r < 0) {
                rc = cli_fail(g, err);
                goto out;
        }
        rc = (int)status;
        /* drain the output before the task (and its IO) is deleted */
        cli_stdio_free(TAKE_PTR(io));
        r = cli_run_task_delete(c, id, NULL, &err);
        task_created = false;
        if (r < 0 && r != -ENOENT) {
                rc = cli_fail(g, err);
                goto out;
        }
out:
        if (wait)
                grpc_stream_free(wait);
        cli_stdio_free(io);
        if (task_created)
                cli_run_task_delete(c, id, NULL, NULL);
        if (created && o.rm) {
                _cleanup_error_ struct error *e = NULL;
                /* containerd.WithSnapshotCleanup, then the record */
                if (snapshot && cli_run_snapshot_remove(c, o.snapshotter, id, &e) < 0 && rc == 0)
                        rc = cli_fail(g, e);
                error_free(&e);
                if (cli_run_container_delete(c, id, &e) < 0 && rc == 0)
                        rc = cli_fail(g, e);
        }
        free(rt_buf.d);
        free(task_buf.d);
        if (cresp)
                protobuf_c_message_free_unpacked(cresp, NULL);
        if (prep)
                protobuf_c_message_free_unpacked(prep, NULL);
        json_decref(spec);
        cli_image_done(&img);
        if (c)
                grpc_client_free(c);
        run_opts_done(&o);
        return rc;
}

static int run_run(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        return do_run(g, cmd, argc, argv, false);
}

/* krill containers create: the same container, no task (ctr containers create). */
static int run_create(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        return do_run(g, cmd, argc, argv, true);
}

const struct cli_command cli_containers_create_command = {
        .name = "create",
        .usage = "create container",
        .args_usage = "[flags] Image|RootFS CONTAINER [COMMAND] [ARG...]",
        .flags_help = create_flags_help,
        .run = run_create,
};

const struct cli_command cli_run_command = {
        .name = "run",
        .usage = "run a container",
        .args_usage = "[flags] Image|RootFS ID [COMMAND] [ARG...]",
        .flags_help = run_flags_help,
        .run = run_run,
};

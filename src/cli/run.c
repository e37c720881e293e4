/* krill run: ctr run's client-driven flow. Images.Get and the image config -> Snapshots.Prepare(ID, chainID)
 * and Containers.Create under a lease -> Tasks.Create with stdio FIFOs -> Tasks.Wait opened before
 * Tasks.Start on the same connection -> signals forwarded with Tasks.Kill -> Tasks.Delete, and with --rm
 * the snapshot and the container -> exit with the task's exit status. */
#include <errno.h>
#include <getopt.h>
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
        char **env, **env_files, **mounts, **labels, **annotations;
        const char *cwd, *user, *memory_limit, *cpus, *runtime, *snapshotter, *platform, *fifo_dir;
};

static const char run_flags_help[] =
        "   --rm                          remove the container after running\n"
        "   --null-io                     send all IO to /dev/null\n"
        "   --detach, -d                  detach from the task after it has started execution\n"
        "   --fifo-dir value              directory used for storing IO FIFOs\n"
        "   --snapshotter value           snapshotter name (default: \"overlayfs\") [$CONTAINERD_SNAPSHOTTER]\n"
        "   --runtime value               runtime name (default: \"" KRILL_DEFAULT_RUNTIME "\")\n"
        "   --tty, -t                     allocate a TTY for the container\n"
        "   --cwd value                   specify the working directory of the process\n"
        "   --env value                   specify additional container environment variables (e.g. FOO=bar)\n"
        "   --env-file value              specify additional container environment variables in a file\n"
        "   --label value                 specify additional labels (e.g. foo=bar)\n"
        "   --annotation value            specify additional OCI annotations (e.g. foo=bar)\n"
        "   --mount value                 specify additional container mount (e.g. type=bind,src=/tmp,dst=/host,options=rbind:ro)\n"
        "   --net-host                    enable host networking for the container\n"
        "   --privileged                  run privileged container\n"
        "   --read-only                   set the containers filesystem as readonly\n"
        "   --user value, -u value        username or user id, group optional (format: <name|uid>[:<group|gid>])\n"
        "   --memory-limit value          memory limit (in bytes) for the container (default: 0)\n"
        "   --cpus value                  set the CFS cpu quota (default: 0)\n"
        "   --platform value              run image for specific platform\n";

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
               O_MOUNT, O_NETHOST, O_PRIV, O_RO, O_MEM, O_CPUS, O_PLATFORM };
        static const struct option opts[] = {
                {"rm", no_argument, NULL, O_RM},
                {"null-io", no_argument, NULL, O_NULLIO},
                {"detach", no_argument, NULL, 'd'},
                {"fifo-dir", required_argument, NULL, O_FIFO},
                {"snapshotter", required_argument, NULL, O_SNAP},
                {"runtime", required_argument, NULL, O_RUNTIME},
                {"tty", no_argument, NULL, 't'},
                {"cwd", required_argument, NULL, O_CWD},
                {"env", required_argument, NULL, O_ENV},
                {"env-file", required_argument, NULL, O_ENVFILE},
                {"label", required_argument, NULL, O_LABEL},
                {"annotation", required_argument, NULL, O_ANNOT},
                {"mount", required_argument, NULL, O_MOUNT},
                {"net-host", no_argument, NULL, O_NETHOST},
                {"privileged", no_argument, NULL, O_PRIV},
                {"read-only", no_argument, NULL, O_RO},
                {"user", required_argument, NULL, 'u'},
                {"memory-limit", required_argument, NULL, O_MEM},
                {"cpus", required_argument, NULL, O_CPUS},
                {"platform", required_argument, NULL, O_PLATFORM},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0},
        };
        int c;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+:dtu:h", opts, NULL)) != -1) {
                switch (c) {
                case O_RM: o->rm = true; break;
                case O_NULLIO: o->null_io = true; break;
                case 'd': o->detach = true; break;
                case O_FIFO: o->fifo_dir = optarg; break;
                case O_SNAP: o->snapshotter = optarg; break;
                case O_RUNTIME: o->runtime = optarg; break;
                case 't': o->tty = true; break;
                case O_CWD: o->cwd = optarg; break;
                case O_ENV: strv_extend(&o->env, optarg); break;
                case O_ENVFILE: strv_extend(&o->env_files, optarg); break;
                case O_LABEL: strv_extend(&o->labels, optarg); break;
                case O_ANNOT: strv_extend(&o->annotations, optarg); break;
                case O_MOUNT: strv_extend(&o->mounts, optarg); break;
                case O_NETHOST: o->net_host = true; break;
                case O_PRIV: o->privileged = true; break;
                case O_RO: o->read_only = true; break;
                case 'u': o->user = optarg; break;
                case O_MEM: o->memory_limit = optarg; break;
                case O_CPUS: o->cpus = optarg; break;
                case O_PLATFORM: o->platform = optarg; break;
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

/* The spec, built in ctr's order (run_unix.go NewContainer). */
static int build_spec(const struct cli_global *g, const struct run_opts *o, const char *id,
                      const struct cli_image *img, char *const *args, Containerd__Types__Mount **mounts,
                      size_t n_mounts, json_t **ret, struct error **err)
{
        struct oci_image_config ic = {0};
        _cleanup_strv_free_ char **env = NULL;
        char *rootfs = NULL;
        int r;

        json_t *spec = oci_spec_new_default(g->namespace_, id);
        for (size_t i = 0; o->env_files && o->env_files[i]; i++) {
                r = cli_run_read_env_file(o->env_files[i], &env, err);
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
        r = oci_image_config_parse(img->config, img->config_len, &ic, err);
        if (r < 0)
                goto out;
        if ((needs_rootfs(ic.user) || needs_rootfs(o->user)) && geteuid() == 0) {
                r = cli_run_temp_mount(mounts, n_mounts, &rootfs, err);
                if (r < 0)
                        goto out;
        }
        r = oci_spec_apply_image_config(spec, &ic, args && args[0] ? args : NULL, rootfs, err);
        if (r < 0)
                goto out;
        if (o->cwd)
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
        if (o->user) {
                r = oci_spec_set_user(spec, o->user, rootfs, err);
                if (r < 0)
                        goto out;
        }
        if (o->read_only)
                oci_spec_set_readonly_rootfs(spec);
        if (o->memory_limit) {
                char *end;
                errno = 0;
                unsigned long long v = strtoull(o->memory_limit, &end, 10);
                if (errno || *end || end == o->memory_limit) {
                        r = error_set(err, EINVAL, "invalid value \"%s\" for flag -memory-limit", o->memory_limit);
                        goto out;
                }
                if (v > 0)
                        oci_spec_set_memory_limit(spec, (int64_t)v);
        }
        if (o->cpus) {
                char *end;
                double v = strtod(o->cpus, &end);
                if (*end || end == o->cpus || v < 0) {
                        r = error_set(err, EINVAL, "invalid value \"%s\" for flag -cpus", o->cpus);
                        goto out;
                }
                if (v > 0)
                        oci_spec_set_cpus(spec, v);
        }
        for (size_t i = 0; o->annotations && o->annotations[i]; i++) {
                const char *eq = strchr(o->annotations[i], '=');
                _cleanup_free_ char *k = eq ? xstrndup(o->annotations[i], (size_t)(eq - o->annotations[i]))
                                            : xstrdup(o->annotations[i]);
                oci_spec_set_annotation(spec, k, eq ? eq + 1 : "");
        }
        r = 0;
out:
        cli_run_temp_unmount(rootfs);
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
        if (oci_image_config_parse(img->config, img->config_len, &ic, NULL) == 0) {
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
                add_label(&labels, k, eq ? eq + 1 : "");
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
        memcpy(v, m, n * sizeof(*v));
        return v;
}

static int do_run(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv, bool create_only)
{
        _cleanup_error_ struct error *err = NULL;
        struct run_opts o = {0};
        struct grpc_client *c = NULL;
        struct cli_image img = {0};
        ProtobufCMessage *prep = NULL, *cresp = NULL;
        json_t *spec = NULL;
        _cleanup_free_ char *lease = NULL, *spec_json = NULL;
        _cleanup_strv_free_ char **labels = NULL;
        _cleanup_free_ LabelsEntry *entries = NULL;
        _cleanup_free_ LabelsEntry **eps = NULL;
        _cleanup_free_ Containerd__Types__Mount **rootfs = NULL;
        struct cli_stdio *io = NULL;
        struct grpc_stream *wait = NULL;
        bool created = false, task_created = false;
        int optind_, rc = 1, r;

        r = parse_run_flags(g, cmd, argc, argv, &o, &optind_);
        if (r != 0) {
                run_opts_done(&o);
                return r > 0 ? 0 : 1;
        }
        if (!o.snapshotter)
                o.snapshotter = getenv("CONTAINERD_SNAPSHOTTER") && getenv("CONTAINERD_SNAPSHOTTER")[0]
                                        ? getenv("CONTAINERD_SNAPSHOTTER")
                                        : "overlayfs";
        if (!o.runtime)
                o.runtime = KRILL_DEFAULT_RUNTIME;
        if (!o.fifo_dir)
                o.fifo_dir = CLI_DEFAULT_FIFO_DIR;
        if (argc - optind_ < 1) {
                rc = cli_failf(g, "image ref must be provided");
                goto out;
        }
        if (argc - optind_ < 2) {
                rc = cli_failf(g, "container id must be provided");
                goto out;
        }
        if (o.rm && o.detach) {
                rc = cli_failf(g, "flags --detach and --rm cannot be specified together");
                goto out;
        }
        const char *ref = argv[optind_], *id = argv[optind_ + 1];
        char **args = argv + optind_ + 2;

        if (cli_connect(g, &c) < 0)
                goto out;
        bool unpack = false;
        r = cli_image_resolve(c, ref, o.platform, &img, &err);
        if (r >= 0) {
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

        Containerd__Services__Snapshots__V1__PrepareSnapshotRequest preq =
                CONTAINERD__SERVICES__SNAPSHOTS__V1__PREPARE_SNAPSHOT_REQUEST__INIT;
        preq.snapshotter = (char *)o.snapshotter;
        preq.key = (char *)id;
        preq.parent = img.chain_id;
        r = grpc_client_unary(c, "/containerd.services.snapshots.v1.Snapshots/Prepare", lease_md, &preq.base,
                              &containerd__services__snapshots__v1__prepare_snapshot_response__descriptor, &prep,
                              &err);
        if (r < 0) {
                lease_delete(c, lease);
                rc = cli_fail(g, err);
                goto out;
        }
        Containerd__Services__Snapshots__V1__PrepareSnapshotResponse *pr = (void *)prep;
        r = build_spec(g, &o, id, &img, args, pr->mounts, pr->n_mounts, &spec, &err);
        if (r < 0) {
                cli_run_snapshot_remove(c, o.snapshotter, id, NULL);
                lease_delete(c, lease);
                rc = cli_fail(g, err);
                goto out;
        }
        spec_json = oci_spec_dump(spec);

        labels = container_labels(&o, &img);
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
        opts_any.type_url = (char *)RUNC_OPTIONS_TYPE_URL;
        Containerd__Services__Containers__V1__Container__Runtime rt =
                CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__RUNTIME__INIT;
        rt.name = (char *)o.runtime;
        rt.options = &opts_any;
        Container ctr = CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__INIT;
        ctr.id = (char *)id;
        ctr.n_labels = nl;
        ctr.labels = eps;
        ctr.image = img.name;
        ctr.runtime = &rt;
        ctr.spec = &spec_any;
        ctr.snapshotter = (char *)o.snapshotter;
        ctr.snapshot_key = (char *)id;
        Containerd__Services__Containers__V1__CreateContainerRequest creq =
                CONTAINERD__SERVICES__CONTAINERS__V1__CREATE_CONTAINER_REQUEST__INIT;
        creq.container = &ctr;
        r = grpc_client_unary(c, "/containerd.services.containers.v1.Containers/Create", lease_md, &creq.base,
                              &containerd__services__containers__v1__create_container_response__descriptor, &cresp,
                              &err);
        lease_delete(c, lease);
        if (r < 0) {
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
        treq.container_id = (char *)id;
        rootfs = copy_mounts(pr->mounts, pr->n_mounts);
        treq.n_rootfs = pr->n_mounts;
        treq.rootfs = rootfs;
        treq.terminal = o.tty;
        treq.stdin = treq.stdout = treq.stderr = (char *)"";
        if (!o.detach && !o.null_io) {
                r = cli_stdio_new(o.fifo_dir, id, o.tty, &io, &err);
                if (r < 0) {
                        rc = cli_fail(g, err);
                        goto out;
                }
                treq.stdin = io->stdin_path;
                treq.stdout = io->stdout_path;
                treq.stderr = io->stderr_path ? io->stderr_path : (char *)"";
                /* like ctr's cio, our ends are opened before Tasks.Create: runc's shim opens the FIFOs there
                 * and blocks until a reader exists */
                r = cli_stdio_start(io, &err);
                if (r < 0) {
                        rc = cli_fail(g, err);
                        goto out;
                }
        }
        ProtobufCMessage *tresp = NULL;
        r = grpc_client_unary(c, "/containerd.services.tasks.v1.Tasks/Create", NULL, &treq.base,
                              &containerd__services__tasks__v1__create_task_response__descriptor, &tresp, &err);
        if (r < 0) {
                rc = cli_fail(g, err);
                goto out;
        }
        protobuf_c_message_free_unpacked(tresp, NULL);
        task_created = true;

        if (o.detach) {
                r = cli_run_task_start(c, id, NULL, &err);
                if (r < 0) {
                        rc = cli_fail(g, err);
                        goto out;
                }
                rc = 0;
                task_created = false; /* leave it running */
                created = false;
                goto out;
        }
        /* ctr opens Wait before Start so a fast exit cannot be missed */
        r = cli_run_wait_open(c, id, NULL, &wait, &err);
        if (r < 0) {
                rc = cli_fail(g, err);
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
        if (r >= 0) {
                r = cli_run_task_delete(c, id, NULL, &err);
                task_created = false;
                if (r < 0 && r != -ENOENT) {
                        rc = cli_fail(g, err);
                        goto out;
                }
        }
out:
        if (wait)
                grpc_stream_free(wait);
        cli_stdio_free(io);
        if (task_created)
                cli_run_task_delete(c, argv[optind_ + 1], NULL, NULL);
        if (created && o.rm) {
                _cleanup_error_ struct error *e = NULL;
                const char *id2 = argv[optind_ + 1];
                /* containerd.WithSnapshotCleanup, then the record */
                if (cli_run_snapshot_remove(c, o.snapshotter, id2, &e) < 0 && rc == 0)
                        rc = cli_fail(g, e);
                error_free(&e);
                if (cli_run_container_delete(c, id2, &e) < 0 && rc == 0)
                        rc = cli_fail(g, e);
        }
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
        .args_usage = "[command options] Image|RootFS CONTAINER [COMMAND] [ARG...]",
        .flags_help = run_flags_help,
        .run = run_create,
};

const struct cli_command cli_run_command = {
        .name = "run",
        .usage = "run a container",
        .args_usage = "[command options] Image|RootFS ID [COMMAND] [ARG...]",
        .flags_help = run_flags_help,
        .run = run_run,
};

/* krill tasks (t, task): ls, start, kill, exec, ps, pause, resume, metrics, rm (ctr tasks). */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/events.h"
#include "cli/run.h"
#include "cli/tabwriter.h"
#include "cli/task_io.h"
#include "cli/tasks.h"
#include "github.com/containerd/cgroups/stats/v1/metrics.pb-c.h"
#include "github.com/containerd/containerd/api/services/containers/v1/containers.pb-c.h"
#include "github.com/containerd/containerd/api/services/snapshots/v1/snapshots.pb-c.h"
#include "github.com/containerd/containerd/api/services/tasks/v1/tasks.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "oci/spec.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/strv.h"

#define TASKS(m) "/containerd.services.tasks.v1.Tasks/" m
#define PROCESS_TYPE_URL "types.containerd.io/opencontainers/runtime-spec/1/Process"

typedef Containerd__Services__Containers__V1__Container Container;

const char *cli_task_status_name(int status)
{
        static const char *const names[] = {"UNKNOWN", "CREATED", "RUNNING", "STOPPED", "PAUSED", "PAUSING"};
        if (status < 0 || status > 5)
                return "UNKNOWN";
        return names[status];
}

static const struct {
        const char *name;
        int sig;
} signals[] = {
        {"HUP", SIGHUP},     {"INT", SIGINT},       {"QUIT", SIGQUIT},   {"ILL", SIGILL},       {"TRAP", SIGTRAP},
        {"ABRT", SIGABRT},   {"IOT", SIGIOT},       {"BUS", SIGBUS},     {"FPE", SIGFPE},       {"KILL", SIGKILL},
        {"USR1", SIGUSR1},   {"SEGV", SIGSEGV},     {"USR2", SIGUSR2},   {"PIPE", SIGPIPE},     {"ALRM", SIGALRM},
        {"TERM", SIGTERM},   {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD},   {"CONT", SIGCONT},     {"STOP", SIGSTOP},
        {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN},     {"TTOU", SIGTTOU},   {"URG", SIGURG},       {"XCPU", SIGXCPU},
        {"XFSZ", SIGXFSZ},   {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},   {"WINCH", SIGWINCH},   {"IO", SIGIO},
        {"POLL", SIGPOLL},   {"PWR", SIGPWR},       {"SYS", SIGSYS},
};

int cli_parse_signal(const char *s)
{
        char *end;
        long n = strtol(s, &end, 10);
        if (end != s && *end == '\0')
                return n > 0 && n < 65 ? (int)n : -EINVAL;
        const char *name = strncasecmp(s, "SIG", 3) == 0 ? s + 3 : s;
        for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
                if (strcasecmp(signals[i].name, name) == 0)
                        return signals[i].sig;
        return -EINVAL;
}

static int get_container(struct grpc_client *c, const char *id, ProtobufCMessage **ret, Container **ret_ctr,
                         struct error **err)
{
        Containerd__Services__Containers__V1__GetContainerRequest req =
                CONTAINERD__SERVICES__CONTAINERS__V1__GET_CONTAINER_REQUEST__INIT;
        req.id = (char *)id;
        int r = grpc_client_unary(c, "/containerd.services.containers.v1.Containers/Get", NULL, &req.base,
                                  &containerd__services__containers__v1__get_container_response__descriptor, ret,
                                  err);
        if (r < 0)
                return r;
        *ret_ctr = ((Containerd__Services__Containers__V1__GetContainerResponse *)*ret)->container;
        if (!*ret_ctr) {
                protobuf_c_message_free_unpacked(*ret, NULL);
                return error_set(err, EPROTO, "container \"%s\": empty response", id);
        }
        return 0;
}

/* Tasks.Get: 0 and the process (free *ret), or -errno (-ENOENT: no task). */
int cli_task_get(struct grpc_client *c, const char *id, const char *exec_id, ProtobufCMessage **ret,
                 Containerd__V1__Types__Process **ret_proc, struct error **err)
{
        Containerd__Services__Tasks__V1__GetRequest req = CONTAINERD__SERVICES__TASKS__V1__GET_REQUEST__INIT;
        req.container_id = (char *)id;
        req.exec_id = (char *)(exec_id ? exec_id : "");
        int r = grpc_client_unary(c, TASKS("Get"), NULL, &req.base,
                                  &containerd__services__tasks__v1__get_response__descriptor, ret, err);
        if (r < 0)
                return r;
        *ret_proc = ((Containerd__Services__Tasks__V1__GetResponse *)*ret)->process;
        if (!*ret_proc) {
                protobuf_c_message_free_unpacked(*ret, NULL);
                return error_set(err, EPROTO, "task \"%s\": empty response", id);
        }
        return 0;
}

static int simple_call(const struct cli_global *g, const char *path, const ProtobufCMessage *req)
{
        _cleanup_error_ struct error *err = NULL;
        struct grpc_client *c = NULL;
        ProtobufCMessage *resp = NULL;
        if (cli_connect(g, &c) < 0)
                return 1;
        int r = grpc_client_unary(c, path, NULL, req, &google__protobuf__empty__descriptor, &resp, &err);
        grpc_client_free(c);
        if (r < 0)
                return cli_fail(g, err);
        protobuf_c_message_free_unpacked(resp, NULL);
        return 0;
}

static int run_list(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        _cleanup_error_ struct error *err = NULL;
        struct grpc_client *c = NULL;
        ProtobufCMessage *resp = NULL;
        bool quiet = false;
        int optind_;
        const struct cli_flag flags[] = {{"quiet", 'q', false, &quiet, NULL}, {NULL, 0, false, NULL, NULL}};

        int r = cli_begin(g, cmd, "krill tasks list", flags, argc, argv, &optind_, &c);
        if (r != CLI_GO)
                return r;
        Containerd__Services__Tasks__V1__ListTasksRequest req = CONTAINERD__SERVICES__TASKS__V1__LIST_TASKS_REQUEST__INIT;
        r = grpc_client_unary(c, TASKS("List"), NULL, &req.base,
                              &containerd__services__tasks__v1__list_tasks_response__descriptor, &resp, &err);
        grpc_client_free(c);
        if (r < 0)
                return cli_fail(g, err);
        Containerd__Services__Tasks__V1__ListTasksResponse *l = (void *)resp;
        if (quiet) {
                for (size_t i = 0; i < l->n_tasks; i++)
                        printf("%s\n", l->tasks[i]->id);
                protobuf_c_message_free_unpacked(resp, NULL);
                return 0;
        }
        struct cli_tabwriter *tw = cli_tabwriter_new(stdout, 4, 8, 4, ' ');
        cli_tabwriter_write(tw, "TASK\tPID\tSTATUS\t\n");
        for (size_t i = 0; i < l->n_tasks; i++)
                cli_tabwriter_printf(tw, "%s\t%u\t%s\n", l->tasks[i]->id, l->tasks[i]->pid,
                                     cli_task_status_name(l->tasks[i]->status));
        r = cli_tabwriter_flush(tw);
        cli_tabwriter_free(tw);
        protobuf_c_message_free_unpacked(resp, NULL);
        return r < 0 ? 1 : 0;
}

static const char *label_of(const Container *ctr, const char *key)
{
        for (size_t i = 0; i < ctr->n_labels; i++)
                if (strcmp(ctr->labels[i]->key, key) == 0)
                        return ctr->labels[i]->value;
        return NULL;
}

static int run_kill(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        _cleanup_error_ struct error *err = NULL;
        struct grpc_client *c = NULL;
        const char *sig_s = NULL, *exec_id = NULL;
        bool all = false;
        int optind_;
        const struct cli_flag flags[] = {{"signal", 's', true, NULL, &sig_s},
                                         {"exec-id", 0, true, NULL, &exec_id},
                                         {"all", 'a', false, &all, NULL},
                                         {NULL, 0, false, NULL, NULL}};

        int r = cli_parse_flags(g, cmd, "krill tasks kill", flags, argc, argv, &optind_);
        if (r != 0)
                return r < 0 ? 1 : 0;
        if (optind_ >= argc)
                return cli_failf(g, "container id must be provided");
        if (all && exec_id)
                return cli_failf(g, "specify an exec-id or all; not both");
        const char *id = argv[optind_];
        if (cli_connect(g, &c) < 0)
                return 1;
        ProtobufCMessage *cresp = NULL;
        Container *ctr;
        r = get_container(c, id, &cresp, &ctr, &err);
        if (r < 0)
                goto fail;
        /* the default signal is the image's stop signal, recorded as a container label */
        const char *def = label_of(ctr, "io.containerd.image.config.stop-signal");
        int sig = cli_parse_signal(sig_s ? sig_s : def ? def : "SIGTERM");
        protobuf_c_message_free_unpacked(cresp, NULL);
        if (sig < 0) {
                grpc_client_free(c);
                return cli_failf(g, "invalid signal %s", sig_s ? sig_s : def);
        }
        ProtobufCMessage *tresp = NULL;
        Containerd__V1__Types__Process *p;
        r = cli_task_get(c, id, NULL, &tresp, &p, &err);
        if (r < 0)
                goto fail;
        protobuf_c_message_free_unpacked(tresp, NULL);
        r = cli_run_task_kill(c, id, exec_id, sig, all, &err);
        if (r < 0)
                goto fail;
        grpc_client_free(c);
        return 0;
fail:
        grpc_client_free(c);
        return cli_fail(g, err);
}

/* The FIFOs `run -d` left for `tasks attach` go with the task (ctr leaves them behind in its fifo dir). Only
 * FIFOs are removed, and their directory when that leaves it empty. */
static void remove_fifos(char *const *paths)
{
        for (size_t i = 0; paths && paths[i]; i++) {
                struct stat st;
                const char *p = paths[i];
                if (p[0] != '/' || lstat(p, &st) < 0 || !S_ISFIFO(st.st_mode) || unlink(p) < 0)
                        continue;
                _cleanup_free_ char *dir = xstrndup(p, (size_t)(strrchr(p, '/') - p));
                if (dir[0])
                        (void)rmdir(dir);
        }
}

static int run_delete(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        struct grpc_client *c = NULL;
        const char *exec_id = NULL;
        bool force = false;
        int optind_, rc = 0;
        const struct cli_flag flags[] = {{"force", 'f', false, &force, NULL},
                                         {"exec-id", 0, true, NULL, &exec_id},
                                         {NULL, 0, false, NULL, NULL}};

        int r = cli_parse_flags(g, cmd, "krill tasks delete", flags, argc, argv, &optind_);
        if (r != 0)
                return r < 0 ? 1 : 0;
        if (optind_ >= argc)
                return cli_failf(g, "container id must be provided");
        if (cli_connect(g, &c) < 0)
                return 1;
        for (int i = optind_; i < argc && rc == 0; i++) {
                _cleanup_error_ struct error *err = NULL;
                ProtobufCMessage *tresp = NULL;
                Containerd__V1__Types__Process *p;
                r = cli_task_get(c, argv[i], exec_id, &tresp, &p, &err);
                if (r < 0) {
                        rc = cli_fail(g, err);
                        break;
                }
                int st = p->status;
                _cleanup_strv_free_ char **fifos = NULL;
                strv_extend(&fifos, p->stdin ? p->stdin : "");
                strv_extend(&fifos, p->stdout ? p->stdout : "");
                strv_extend(&fifos, p->stderr ? p->stderr : "");
                protobuf_c_message_free_unpacked(tresp, NULL);
                if (st != CONTAINERD__V1__TYPES__STATUS__STOPPED && st != CONTAINERD__V1__TYPES__STATUS__CREATED &&
                    !force) {
                        rc = cli_failf(g, "task must be stopped before deletion: %s",
                                       st == CONTAINERD__V1__TYPES__STATUS__PAUSED ? "paused" : "running");
                        break;
                }
                if (force && st != CONTAINERD__V1__TYPES__STATUS__STOPPED)
                        cli_run_task_kill(c, argv[i], exec_id, SIGKILL, false, NULL);
                if (exec_id) {
                        ProtobufCMessage *resp = NULL;
                        Containerd__Services__Tasks__V1__DeleteProcessRequest req =
                                CONTAINERD__SERVICES__TASKS__V1__DELETE_PROCESS_REQUEST__INIT;
                        req.container_id = argv[i];
                        req.exec_id = (char *)exec_id;
                        r = grpc_client_unary(c, TASKS("DeleteProcess"), NULL, &req.base,
                                              &containerd__services__tasks__v1__delete_response__descriptor, &resp,
                                              &err);
                        if (r >= 0)
                                protobuf_c_message_free_unpacked(resp, NULL);
                } else {
                        r = cli_run_task_delete(c, argv[i], NULL, &err);
                }
                if (r >= 0)
                        remove_fifos(fifos);
                if (r < 0)
                        rc = cli_fail(g, err);
        }
        grpc_client_free(c);
        return rc;
}

static int run_pause_resume(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv,
                            bool pause)
{
        int optind_;
        int r = cli_parse_flags(g, cmd, pause ? "krill tasks pause" : "krill tasks resume", NULL, argc, argv,
                                &optind_);
        if (r != 0)
                return r < 0 ? 1 : 0;
        if (optind_ >= argc)
                return cli_failf(g, "container id must be provided");
        if (pause) {
                Containerd__Services__Tasks__V1__PauseTaskRequest req =
                        CONTAINERD__SERVICES__TASKS__V1__PAUSE_TASK_REQUEST__INIT;
                req.container_id = argv[optind_];
                return simple_call(g, TASKS("Pause"), &req.base);
        }
        Containerd__Services__Tasks__V1__ResumeTaskRequest req = CONTAINERD__SERVICES__TASKS__V1__RESUME_TASK_REQUEST__INIT;
        req.container_id = argv[optind_];
        return simple_call(g, TASKS("Resume"), &req.base);
}

static int run_pause(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        return run_pause_resume(g, cmd, argc, argv, true);
}

static int run_resume(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        return run_pause_resume(g, cmd, argc, argv, false);
}

static int run_ps(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        _cleanup_error_ struct error *err = NULL;
        struct grpc_client *c = NULL;
        ProtobufCMessage *resp = NULL;
        int optind_;

        int r = cli_parse_flags(g, cmd, "krill tasks ps", NULL, argc, argv, &optind_);
        if (r != 0)
                return r < 0 ? 1 : 0;
        if (optind_ >= argc)
                return cli_failf(g, "container id must be provided");
        if (cli_connect(g, &c) < 0)
                return 1;
        Containerd__Services__Tasks__V1__ListPidsRequest req = CONTAINERD__SERVICES__TASKS__V1__LIST_PIDS_REQUEST__INIT;
        req.container_id = argv[optind_];
        r = grpc_client_unary(c, TASKS("ListPids"), NULL, &req.base,
                              &containerd__services__tasks__v1__list_pids_response__descriptor, &resp, &err);
        grpc_client_free(c);
        if (r < 0)
                return cli_fail(g, err);
        Containerd__Services__Tasks__V1__ListPidsResponse *l = (void *)resp;
        struct cli_tabwriter *tw = cli_tabwriter_new(stdout, 1, 8, 4, ' ');
        cli_tabwriter_write(tw, "PID\tINFO\n");
        for (size_t i = 0; i < l->n_processes; i++) {
                /* ctr decodes runc's ProcessDetails{exec_id} from info; "-" when there is none */
                const char *info = "-";
                _cleanup_free_ char *exec_id = NULL;
                Google__Protobuf__Any *a = l->processes[i]->info;
                if (a && a->value.len > 2 && a->value.data[0] == 0x0a && a->value.data[1] < 0x80 &&
                    (size_t)a->value.data[1] + 2 <= a->value.len) {
                        exec_id = xstrndup((const char *)a->value.data + 2, a->value.data[1]);
                        info = exec_id;
                }
                cli_tabwriter_printf(tw, "%u\t%s\n", l->processes[i]->pid, info);
        }
        r = cli_tabwriter_flush(tw);
        cli_tabwriter_free(tw);
        protobuf_c_message_free_unpacked(resp, NULL);
        return r < 0 ? 1 : 0;
}

/* Rootfs mounts of a container's snapshot (Snapshots.Mounts), as ctr's NewTask sends them. */
static int snapshot_mounts(struct grpc_client *c, const Container *ctr, ProtobufCMessage **ret, struct error **err)
{
        if (!ctr->snapshot_key || !*ctr->snapshot_key) {
                /* --rootfs / --config containers: no snapshot, no rootfs mounts */
                *ret = protobuf_c_message_unpack(&containerd__services__snapshots__v1__mounts_response__descriptor, NULL,
                                                 0, (const uint8_t *)"");
                return *ret ? 0 : error_set(err, ENOMEM, "mounts");
        }
        Containerd__Services__Snapshots__V1__MountsRequest req = CONTAINERD__SERVICES__SNAPSHOTS__V1__MOUNTS_REQUEST__INIT;
        req.snapshotter = ctr->snapshotter;
        req.key = ctr->snapshot_key;
        return grpc_client_unary(c, "/containerd.services.snapshots.v1.Snapshots/Mounts", NULL, &req.base,
                                 &containerd__services__snapshots__v1__mounts_response__descriptor, ret, err);
}

static json_t *container_spec(const Container *ctr)
{
        if (!ctr->spec || ctr->spec->value.len == 0 || ctr->spec->value.len > (16u << 20))
                return NULL;
        return json_loadb((const char *)ctr->spec->value.data, ctr->spec->value.len, 0, NULL);
}

static int run_start(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        _cleanup_error_ struct error *err = NULL;
        struct grpc_client *c = NULL;
        const char *fifo_dir = NULL;
        const char *log_uri = NULL, *pid_file = NULL;
        bool null_io = false, detach = false;
        int optind_, rc = 1;
        const struct cli_flag flags[] = {{"null-io", 0, false, &null_io, NULL},
                                         {"log-uri", 0, true, NULL, &log_uri},
                                         {"fifo-dir", 0, true, NULL, &fifo_dir},
                                         {"pid-file", 0, true, NULL, &pid_file},
                                         {"detach", 'd', false, &detach, NULL},
                                         {NULL, 0, false, NULL, NULL}};

        int r = cli_parse_flags(g, cmd, "krill tasks start", flags, argc, argv, &optind_);
        if (r != 0)
                return r < 0 ? 1 : 0;
        if (optind_ >= argc)
                return cli_failf(g, "container id must be provided");
        const char *id = argv[optind_];
        if (cli_connect(g, &c) < 0)
                return 1;
        ProtobufCMessage *cresp = NULL, *mresp = NULL, *tresp = NULL;
        struct cli_stdio *io = NULL;
        struct grpc_stream *wait = NULL;
        bool task = false;
        Container *ctr;
        r = get_container(c, id, &cresp, &ctr, &err);
        if (r < 0)
                goto fail;
        json_t *spec = container_spec(ctr);
        bool tty = json_is_true(json_object_get(json_object_get(spec, "process"), "terminal"));
        json_decref(spec);
        r = snapshot_mounts(c, ctr, &mresp, &err);
        if (r < 0)
                goto fail;
        Containerd__Services__Snapshots__V1__MountsResponse *mr = (void *)mresp;
        Containerd__Services__Tasks__V1__CreateTaskRequest treq = CONTAINERD__SERVICES__TASKS__V1__CREATE_TASK_REQUEST__INIT;
        treq.container_id = (char *)id;
        treq.n_rootfs = mr->n_mounts;
        treq.rootfs = mr->mounts;
        treq.terminal = tty;
        treq.stdin = treq.stdout = treq.stderr = (char *)"";
        if (tty && null_io) {
                r = error_set_literal(&err, EINVAL, "tty and null-io cannot be used together");
                goto fail;
        }
        if (tty || (!null_io && !(log_uri && *log_uri))) {
                /* tasks.NewTask's cio.NewCreator; with -d the FIFOs stay for `tasks attach` */
                r = cli_stdio_new(fifo_dir ? fifo_dir : CLI_DEFAULT_FIFO_DIR, id, tty, &io, &err);
                if (r >= 0 && !detach)
                        r = cli_stdio_start(io, &err);
                if (r < 0)
                        goto fail;
                treq.stdin = io->stdin_path;
                treq.stdout = io->stdout_path;
                treq.stderr = io->stderr_path ? io->stderr_path : (char *)"";
        } else if (!null_io) {
                treq.stdout = treq.stderr = (char *)log_uri; /* cio.LogURI */
        }
        r = grpc_client_unary(c, TASKS("Create"), NULL, &treq.base,
                              &containerd__services__tasks__v1__create_task_response__descriptor, &tresp, &err);
        if (r < 0)
                goto fail;
        task = !detach; /* ctr deletes the task on failure only when it would have waited for it */
        if (!detach) {
                r = cli_run_wait_open(c, id, NULL, &wait, &err);
                if (r < 0)
                        goto fail;
        }
        if (pid_file) {
                r = cli_run_write_pid_file(pid_file,
                                           ((Containerd__Services__Tasks__V1__CreateTaskResponse *)tresp)->pid, &err);
                if (r < 0)
                        goto fail;
        }
        if (!detach)
                cli_run_catch_signals(tty);
        r = cli_run_task_start(c, id, NULL, &err);
        if (r < 0)
                goto fail;
        if (detach) {
                cli_stdio_leave(TAKE_PTR(io));
                rc = 0;
                goto out;
        }
        uint32_t status;
        r = cli_run_wait(c, wait, id, NULL, tty, &status, &err);
        if (r < 0)
                goto fail;
        rc = (int)status;
        cli_stdio_free(TAKE_PTR(io));
        cli_run_task_delete(c, id, NULL, NULL);
        task = false;
        goto out;
fail:
        rc = cli_fail(g, err);
        if (task)
                cli_run_task_delete(c, id, NULL, NULL);
out:
        if (wait)
                grpc_stream_free(wait);
        cli_stdio_free(io);
        if (tresp)
                protobuf_c_message_free_unpacked(tresp, NULL);
        if (mresp)
                protobuf_c_message_free_unpacked(mresp, NULL);
        if (cresp)
                protobuf_c_message_free_unpacked(cresp, NULL);
        grpc_client_free(c);
        return rc;
}

static int run_exec(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        _cleanup_error_ struct error *err = NULL;
        struct grpc_client *c = NULL;
        const char *fifo_dir = NULL, *exec_id = NULL, *cwd = NULL, *user = NULL;
        bool tty = false, detach = false;
        int optind_, rc = 1;
        const struct cli_flag flags[] = {{"cwd", 0, true, NULL, &cwd},
                                         {"tty", 't', false, &tty, NULL},
                                         {"detach", 'd', false, &detach, NULL},
                                         {"exec-id", 0, true, NULL, &exec_id},
                                         {"fifo-dir", 0, true, NULL, &fifo_dir},
                                         {"user", 'u', true, NULL, &user},
                                         {NULL, 0, false, NULL, NULL}};

        int r = cli_parse_flags(g, cmd, "krill tasks exec", flags, argc, argv, &optind_);
        if (r != 0)
                return r < 0 ? 1 : 0;
        if (optind_ >= argc)
                return cli_failf(g, "container id must be provided");
        if (!exec_id || !exec_id[0])
                return cli_failf(g, "exec-id must be provided");
        if (optind_ + 1 >= argc)
                return cli_failf(g, "command must be provided");
        const char *id = argv[optind_];
        if (cli_connect(g, &c) < 0)
                return 1;
        ProtobufCMessage *cresp = NULL, *mresp = NULL, *eresp = NULL;
        struct cli_stdio *io = NULL;
        struct grpc_stream *wait = NULL;
        json_t *spec = NULL;
        _cleanup_free_ char *pjson = NULL;
        char *rootfs = NULL;
        bool proc = false;
        Container *ctr;
        r = get_container(c, id, &cresp, &ctr, &err);
        if (r < 0)
                goto fail;
        spec = container_spec(ctr);
        if (!json_is_object(spec) || !json_is_object(json_object_get(spec, "process"))) {
                r = error_set(&err, EINVAL, "container \"%s\" has no process spec", id);
                goto fail;
        }
        /* ctr: the container's process with the new args, terminal and cwd */
        {
                _cleanup_free_ char **args = xcalloc((size_t)(argc - optind_), sizeof(char *));
                for (int i = optind_ + 1; i < argc; i++)
                        args[i - optind_ - 1] = argv[i];
                oci_spec_set_args(spec, args);
        }
        json_object_set_new(json_object_get(spec, "process"), "terminal", json_boolean(tty));
        if (cwd)
                oci_spec_set_cwd(spec, cwd);
        if (user) {
                r = snapshot_mounts(c, ctr, &mresp, &err);
                if (r >= 0 && geteuid() == 0) {
                        Containerd__Services__Snapshots__V1__MountsResponse *mr = (void *)mresp;
                        r = cli_run_temp_mount(mr->mounts, mr->n_mounts, &rootfs, &err);
                }
                if (r >= 0)
                        r = oci_spec_set_user(spec, user, rootfs, &err);
                cli_run_temp_unmount(TAKE_PTR(rootfs));
                if (r < 0)
                        goto fail;
        }
        pjson = json_dumps(json_object_get(spec, "process"), JSON_COMPACT);
        Google__Protobuf__Any pany = GOOGLE__PROTOBUF__ANY__INIT;
        pany.type_url = (char *)PROCESS_TYPE_URL;
        pany.value.data = (uint8_t *)pjson;
        pany.value.len = strlen(pjson);
        Containerd__Services__Tasks__V1__ExecProcessRequest ereq =
                CONTAINERD__SERVICES__TASKS__V1__EXEC_PROCESS_REQUEST__INIT;
        ereq.container_id = (char *)id;
        ereq.exec_id = (char *)exec_id;
        ereq.terminal = tty;
        ereq.spec = &pany;
        ereq.stdin = ereq.stdout = ereq.stderr = (char *)"";
        if (!detach) {
                r = cli_stdio_new(fifo_dir ? fifo_dir : CLI_DEFAULT_FIFO_DIR, exec_id, tty, &io, &err);
                if (r >= 0)
                        r = cli_stdio_start(io, &err);
                if (r < 0)
                        goto fail;
                ereq.stdin = io->stdin_path;
                ereq.stdout = io->stdout_path;
                ereq.stderr = io->stderr_path ? io->stderr_path : (char *)"";
        }
        r = grpc_client_unary(c, TASKS("Exec"), NULL, &ereq.base, &google__protobuf__empty__descriptor, &eresp, &err);
        if (r < 0)
                goto fail;
        proc = true;
        if (!detach) {
                r = cli_run_wait_open(c, id, exec_id, &wait, &err);
                if (r < 0)
                        goto fail;
                cli_run_catch_signals(tty);
        }
        r = cli_run_task_start(c, id, exec_id, &err);
        if (r < 0)
                goto fail;
        if (detach) {
                rc = 0;
                proc = false;
                goto out;
        }
        uint32_t status;
        r = cli_run_wait(c, wait, id, exec_id, tty, &status, &err);
        if (r < 0)
                goto fail;
        rc = (int)status;
        goto out;
fail:
        rc = cli_fail(g, err);
out:
        if (wait)
                grpc_stream_free(wait);
        cli_stdio_free(io);
        if (proc) {
                ProtobufCMessage *dresp = NULL;
                Containerd__Services__Tasks__V1__DeleteProcessRequest dreq =
                        CONTAINERD__SERVICES__TASKS__V1__DELETE_PROCESS_REQUEST__INIT;
                dreq.container_id = (char *)id;
                dreq.exec_id = (char *)exec_id;
                if (grpc_client_unary(c, TASKS("DeleteProcess"), NULL, &dreq.base,
                                      &containerd__services__tasks__v1__delete_response__descriptor, &dresp, NULL) >= 0)
                        protobuf_c_message_free_unpacked(dresp, NULL);
        }
        json_decref(spec);
        if (eresp)
                protobuf_c_message_free_unpacked(eresp, NULL);
        if (mresp)
                protobuf_c_message_free_unpacked(mresp, NULL);
        if (cresp)
                protobuf_c_message_free_unpacked(cresp, NULL);
        grpc_client_free(c);
        return rc;
}

static int run_metrics(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        _cleanup_error_ struct error *err = NULL;
        struct grpc_client *c = NULL;
        ProtobufCMessage *resp = NULL;
        const char *format = "table";
        int optind_;
        const struct cli_flag flags[] = {{"format", 0, true, NULL, &format}, {NULL, 0, false, NULL, NULL}};

        int r = cli_parse_flags(g, cmd, "krill tasks metrics", flags, argc, argv, &optind_);
        if (r != 0)
                return r < 0 ? 1 : 0;
        if (optind_ >= argc)
                return cli_failf(g, "container id must be provided");
        if (strcmp(format, "table") != 0)
                return cli_failf(g, "unknown format %s", format);
        if (cli_connect(g, &c) < 0)
                return 1;
        _cleanup_free_ char *filter = xasprintf("id==%s", argv[optind_]);
        char *filters[] = {filter};
        Containerd__Services__Tasks__V1__MetricsRequest req = CONTAINERD__SERVICES__TASKS__V1__METRICS_REQUEST__INIT;
        req.n_filters = 1;
        req.filters = filters;
        r = grpc_client_unary(c, TASKS("Metrics"), NULL, &req.base,
                              &containerd__services__tasks__v1__metrics_response__descriptor, &resp, &err);
        grpc_client_free(c);
        if (r < 0)
                return cli_fail(g, err);
        Containerd__Services__Tasks__V1__MetricsResponse *mr = (void *)resp;
        if (mr->n_metrics != 1) {
                protobuf_c_message_free_unpacked(resp, NULL);
                return cli_failf(g, "cannot get metrics for container \"%s\"", argv[optind_]);
        }
        r = cli_tasks_print_metrics(stdout, mr->metrics[0], &err);
        protobuf_c_message_free_unpacked(resp, NULL);
        return r < 0 ? cli_fail(g, err) : 0;
}

int cli_tasks_print_metrics(FILE *out, const Containerd__Types__Metric *m, struct error **err)
{
        if (!m->data || !m->data->type_url || strcmp(m->data->type_url, "io.containerd.cgroups.v1.Metrics") != 0)
                return error_set(err, ENOTSUP, "cannot convert metric data to cgroups.Metrics");
        Io__Containerd__Cgroups__V1__Metrics *cg = (void *)protobuf_c_message_unpack(
                &io__containerd__cgroups__v1__metrics__descriptor, NULL, m->data->value.len, m->data->value.data);
        if (!cg)
                return error_set(err, EINVAL, "cannot decode cgroups.Metrics");
        struct cli_tabwriter *tw = cli_tabwriter_new(out, 1, 8, 4, ' ');
        cli_tabwriter_write(tw, "ID\tTIMESTAMP\t\n");
        char ts[96] = "0001-01-01 00:00:00 +0000 UTC";
        if (m->timestamp)
                cli_go_time_string(m->timestamp->seconds, m->timestamp->nanos, ts, sizeof(ts));
        cli_tabwriter_printf(tw, "%s\t%s\t\n\n", m->id, ts);
        cli_tabwriter_write(tw, "METRIC\tVALUE\t\n");
        if (cg->memory) {
                cli_tabwriter_printf(tw, "memory.usage_in_bytes\t%llu\t\n",
                                     (unsigned long long)(cg->memory->usage ? cg->memory->usage->usage : 0));
                cli_tabwriter_printf(tw, "memory.limit_in_bytes\t%llu\t\n",
                                     (unsigned long long)(cg->memory->usage ? cg->memory->usage->limit : 0));
                cli_tabwriter_printf(tw, "memory.stat.cache\t%llu\t\n", (unsigned long long)cg->memory->cache);
        }
        if (cg->cpu) {
                cli_tabwriter_printf(tw, "cpuacct.usage\t%llu\t\n",
                                     (unsigned long long)(cg->cpu->usage ? cg->cpu->usage->total : 0));
                cli_tabwriter_write(tw, "cpuacct.usage_percpu\t[");
                for (size_t i = 0; cg->cpu->usage && i < cg->cpu->usage->n_per_cpu; i++)
                        cli_tabwriter_printf(tw, "%s%llu", i ? " " : "",
                                             (unsigned long long)cg->cpu->usage->per_cpu[i]);
                cli_tabwriter_write(tw, "]\t\n");
        }
        if (cg->pids) {
                cli_tabwriter_printf(tw, "pids.current\t%llu\t\n", (unsigned long long)cg->pids->current);
                cli_tabwriter_printf(tw, "pids.limit\t%llu\t\n", (unsigned long long)cg->pids->limit);
        }
        int r = cli_tabwriter_flush(tw);
        cli_tabwriter_free(tw);
        protobuf_c_message_free_unpacked(&cg->base, NULL);
        return r < 0 ? error_set(err, -r, "write") : 0;
}

static const char *const list_aliases[] = {"ls", NULL};
/* ctr tasks attach: the task's own FIFOs (Tasks.Get) copied to our stdio (cio.NewAttach(cio.WithStdio)), Wait,
 * signals forwarded (or the pty resized), then the task deleted and its FIFOs removed; exits with its status. */
static int run_attach(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        _cleanup_error_ struct error *err = NULL;
        struct grpc_client *c = NULL;
        ProtobufCMessage *cresp = NULL, *tresp = NULL;
        struct cli_stdio *io = NULL;
        struct grpc_stream *wait = NULL;
        Container *ctr;
        Containerd__V1__Types__Process *p;
        int optind_, rc = 1;

        int r = cli_parse_flags(g, cmd, "krill tasks attach", NULL, argc, argv, &optind_);
        if (r != 0)
                return r < 0 ? 1 : 0;
        const char *id = optind_ < argc ? argv[optind_] : "";
        if (cli_connect(g, &c) < 0)
                return 1;
        r = get_container(c, id, &cresp, &ctr, &err);
        if (r < 0)
                goto fail;
        json_t *spec = container_spec(ctr);
        bool tty = json_is_true(json_object_get(json_object_get(spec, "process"), "terminal"));
        json_decref(spec);
        r = cli_task_get(c, id, NULL, &tresp, &p, &err);
        if (r < 0) {
                if (r == -ENOENT)
                        error_wrap(&err, "no running task found");
                goto fail;
        }
        /* a task in unknown state has no FIFO paths */
        if (p->status != CONTAINERD__V1__TYPES__STATUS__UNKNOWN) {
                cli_stdio_attach(p->stdin, p->stdout, p->stderr, tty, &io);
                r = cli_stdio_start(io, &err);
                if (r < 0)
                        goto fail;
        }
        r = cli_run_wait_open(c, id, NULL, &wait, &err);
        if (r < 0)
                goto fail;
        cli_run_catch_signals(tty);
        uint32_t status = 0;
        r = cli_run_wait(c, wait, id, NULL, tty, &status, &err);
        if (r < 0)
                goto fail;
        rc = (int)status;
        goto out;
fail:
        rc = cli_fail(g, err);
out:
        if (wait)
                grpc_stream_free(wait);
        /* ctr's deferred task.Delete: the IO drained and closed (FIFOs removed), then Tasks.Delete */
        cli_stdio_free(io);
        if (tresp) {
                cli_run_task_delete(c, id, NULL, NULL);
                protobuf_c_message_free_unpacked(tresp, NULL);
        }
        if (cresp)
                protobuf_c_message_free_unpacked(cresp, NULL);
        grpc_client_free(c);
        return rc;
}

/* ctr tasks checkpoint: Tasks.Get, a lease, Pause (unless --exit), Tasks.Checkpoint with runc's
 * CheckpointOptions, Resume. krill has no image writer for the checkpoint's descriptors yet: a daemon that does
 * checkpoint gets a clear error after the pause is undone. */
static int run_checkpoint(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        _cleanup_error_ struct error *err = NULL;
        struct grpc_client *c = NULL;
        ProtobufCMessage *cresp = NULL, *tresp = NULL, *resp = NULL;
        Container *ctr;
        Containerd__V1__Types__Process *p;
        const char *image_path = NULL, *work_path = NULL;
        bool exit_ = false, paused = false;
        int optind_, rc = 1;
        const struct cli_flag flags[] = {{"exit", 0, false, &exit_, NULL},
                                         {"image-path", 0, true, NULL, &image_path},
                                         {"work-path", 0, true, NULL, &work_path},
                                         {NULL, 0, false, NULL, NULL}};

        int r = cli_parse_flags(g, cmd, "krill tasks checkpoint", flags, argc, argv, &optind_);
        if (r != 0)
                return r < 0 ? 1 : 0;
        const char *id = optind_ < argc ? argv[optind_] : "";
        if (!*id)
                return cli_failf(g, "container id must be provided");
        if (cli_connect(g, &c) < 0)
                return 1;
        r = get_container(c, id, &cresp, &ctr, &err);
        if (r >= 0)
                r = cli_task_get(c, id, NULL, &tresp, &p, &err);
        if (r < 0) {
                if (r == -ENOENT && cresp)
                        error_wrap(&err, "no running task found");
                goto fail;
        }
        /* withCheckpointOpts: runc's CheckpointOptions{exit=1, image_path=8, work_path=9} */
        uint8_t buf[4096];
        size_t n = 0;
        if (exit_) {
                buf[n++] = 1 << 3;
                buf[n++] = 1;
        }
        const struct {
                unsigned field;
                const char *v;
        } strs[] = {{8, image_path}, {9, work_path}};
        for (size_t i = 0; i < 2; i++) {
                size_t len = strs[i].v ? strlen(strs[i].v) : 0;
                if (!len)
                        continue;
                if (len > 1024) {
                        r = error_set(&err, EINVAL, "path too long");
                        goto fail;
                }
                buf[n++] = (uint8_t)(strs[i].field << 3 | 2);
                for (size_t v = len; ; v >>= 7) {
                        buf[n++] = (uint8_t)((v & 0x7f) | (v >> 7 ? 0x80 : 0));
                        if (!(v >> 7))
                                break;
                }
                memcpy(buf + n, strs[i].v, len);
                n += len;
        }
        const char *rt = ctr->runtime && ctr->runtime->name ? ctr->runtime->name : "";
        bool runc = strncmp(rt, "io.containerd.runc.", 19) == 0 || strcmp(rt, "io.containerd.krill.v2") == 0;
        Google__Protobuf__Any opts = GOOGLE__PROTOBUF__ANY__INIT;
        opts.type_url = (char *)(runc ? "containerd.runc.v1.CheckpointOptions" : "containerd.linux.runc.CheckpointOptions");
        opts.value.data = buf;
        opts.value.len = n;
        if (!exit_) {
                Containerd__Services__Tasks__V1__PauseTaskRequest preq = CONTAINERD__SERVICES__TASKS__V1__PAUSE_TASK_REQUEST__INIT;
                preq.container_id = (char *)id;
                r = grpc_client_unary(c, TASKS("Pause"), NULL, &preq.base, &google__protobuf__empty__descriptor,
                                      &resp, &err);
                if (r < 0)
                        goto fail;
                protobuf_c_message_free_unpacked(resp, NULL);
                resp = NULL;
                paused = true;
        }
        Containerd__Services__Tasks__V1__CheckpointTaskRequest req =
                CONTAINERD__SERVICES__TASKS__V1__CHECKPOINT_TASK_REQUEST__INIT;
        req.container_id = (char *)id;
        req.options = &opts;
        r = grpc_client_unary(c, TASKS("Checkpoint"), NULL, &req.base,
                              &containerd__services__tasks__v1__checkpoint_task_response__descriptor, &resp, &err);
        if (r < 0)
                goto fail;
        r = error_set_literal(&err, ENOTSUP, "the daemon made a checkpoint, but krill cannot store checkpoint "
                                             "images yet");
fail:
        rc = cli_fail(g, err);
        if (paused) {
                Containerd__Services__Tasks__V1__ResumeTaskRequest rreq =
                        CONTAINERD__SERVICES__TASKS__V1__RESUME_TASK_REQUEST__INIT;
                ProtobufCMessage *rr = NULL;
                rreq.container_id = (char *)id;
                if (grpc_client_unary(c, TASKS("Resume"), NULL, &rreq.base, &google__protobuf__empty__descriptor, &rr,
                                      NULL) >= 0)
                        protobuf_c_message_free_unpacked(rr, NULL);
        }
        if (resp)
                protobuf_c_message_free_unpacked(resp, NULL);
        if (tresp)
                protobuf_c_message_free_unpacked(tresp, NULL);
        if (cresp)
                protobuf_c_message_free_unpacked(cresp, NULL);
        grpc_client_free(c);
        return rc;
}

static const char *const delete_aliases[] = {"del", "remove", "rm", NULL};
static const char *const metrics_aliases[] = {"metric", NULL};
static const char *const tasks_aliases[] = {"t", "task", NULL};

static const struct cli_command list_cmd = {.name = "list", .aliases = list_aliases, .usage = "list tasks",
                                            .flags_help = "   --quiet, -q  print only the task id\n",
                                            .run = run_list};
static const struct cli_command start_cmd = {
        .name = "start", .usage = "start a container that has been created", .args_usage = "CONTAINER",
        .flags_help = "   --null-io         send all IO to /dev/null\n"
                      "   --log-uri value   log uri\n"
                      "   --fifo-dir value  directory used for storing IO FIFOs\n"
                      "   --pid-file value  file path to write the task's pid\n"
                      "   --detach, -d      detach from the task after it has started execution\n",
        .run = run_start};
static const struct cli_command kill_cmd = {
        .name = "kill", .usage = "signal a container (default: SIGTERM)", .args_usage = "[flags] CONTAINER",
        .flags_help = "   --signal value, -s value  signal to send to the container\n"
                      "   --exec-id value           process ID to kill\n"
                      "   --all, -a                 send signal to all processes inside the container\n",
        .run = run_kill};
static const struct cli_command exec_cmd = {
        .name = "exec", .usage = "execute additional processes in an existing container",
        .args_usage = "[flags] CONTAINER CMD [ARG...]",
        .flags_help = "   --cwd value             working directory of the new process\n"
                      "   --tty, -t               allocate a TTY for the container\n"
                      "   --detach, -d            detach from the task after it has started execution\n"
                      "   --exec-id value         exec specific id for the process\n"
                      "   --fifo-dir value        directory used for storing IO FIFOs\n"
                      "   --user value, -u value  user name or uid to run the process as\n",
        .run = run_exec};
static const struct cli_command ps_cmd = {.name = "ps", .usage = "list processes for container",
                                          .args_usage = "CONTAINER", .run = run_ps};
static const struct cli_command pause_cmd = {.name = "pause", .usage = "pause an existing container",
                                             .args_usage = "CONTAINER", .run = run_pause};
static const struct cli_command resume_cmd = {.name = "resume", .usage = "resume a paused container",
                                              .args_usage = "CONTAINER", .run = run_resume};
static const struct cli_command metrics_cmd = {
        .name = "metrics", .aliases = metrics_aliases, .usage = "get a single data point of metrics for a task with the built-in Linux runtime",
        .args_usage = "CONTAINER", .flags_help = "   --format value  \"table\" (default: \"table\")\n", .run = run_metrics};
static const struct cli_command delete_cmd = {
        .name = "delete", .aliases = delete_aliases, .usage = "delete one or more tasks",
        .args_usage = "CONTAINER [CONTAINER, ...]",
        .flags_help = "   --force, -f      force delete task process\n"
                      "   --exec-id value  process ID to kill\n",
        .run = run_delete};

static const struct cli_command attach_cmd = {.name = "attach", .usage = "attach to the IO of a running container",
                                              .args_usage = "CONTAINER", .run = run_attach};
static const struct cli_command checkpoint_cmd = {
        .name = "checkpoint", .usage = "checkpoint a container", .args_usage = "[flags] CONTAINER",
        .flags_help = "   --exit              stop the container after the checkpoint\n"
                      "   --image-path value  path to criu image files\n"
                      "   --work-path value   path to criu work files and logs\n",
        .run = run_checkpoint};

static const struct cli_command *const tasks_subcommands[] = {
        &attach_cmd, &checkpoint_cmd, &delete_cmd, &exec_cmd, &list_cmd, &kill_cmd, &pause_cmd, &ps_cmd, &resume_cmd, &start_cmd, &metrics_cmd, NULL,
};

const struct cli_command cli_tasks_command = {
        .name = "tasks",
        .aliases = tasks_aliases,
        .usage = "manage tasks",
        .subcommands = tasks_subcommands,
};

/* The task service (ttrpc containerd.task.v2.Task, 17 methods) and the server loop: containers and their
 * processes, reaping through a signalfd as a child subreaper, exit reporting after the output drained,
 * events. One epoll loop (loop.c), one thread (DESIGN.md section 5); the OCI runtime runs synchronously. */
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "shim/server.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/log.h"

/* musl defines stdin/stdout/stderr as "(stdin)"..., which breaks access to the protobuf fields of those names;
 * this file does not use stdio's streams */
#undef stdin
#undef stdout
#undef stderr

#define TASK_SERVICE "containerd.task.v2.Task"
#define MAX_EXECS 1024
#define MAX_SPEC (1u << 20)
#define MAX_CONFIG (16u << 20)
#define DRAIN_TIMEOUT_MS 5000
/* Go's zero time.Time as a protobuf Timestamp, what the runc shim reports for "not exited" */
#define GO_ZERO_TIME_SEC (-62135596800LL)

struct shim_process {
        struct shim_process *next;
        struct shim_container *c;
        char *id; /* exec id, or the container id for init */
        bool is_init;
        enum shim_state state;
        pid_t pid;
        uint32_t exit_status;
        struct timespec exited_at;
        bool exited, exit_reported;
        char *stdin_path, *stdout_path, *stderr_path;
        bool terminal;
        struct shim_stdio io;
        bool io_open;
        char *spec; /* exec: process.json */
        size_t spec_len;
        struct shim_call **waiters;
        size_t n_waiters;
        struct shim_timer drain_timer;
};

struct shim_container {
        struct shim_container *next;
        struct shim_server *srv;
        char *id, *bundle, *rootfs;
        struct shim_runtime rt;
        struct shim_process *init;
        struct shim_process *execs;
        size_t n_execs;
        struct shim_cgroup *cg;
        bool mounted;
        struct shim_spec_info spec; /* from config.json: may start/kill skip runc? */
};

struct shim_server {
        struct shim_loop loop;
        struct shim_config *cfg;
        struct shim_rpc *rpc;
        struct shim_events *events;
        struct shim_container *containers;
        int sfd;
        struct shim_watch sig_watch;
        struct shim_timer exit_timer;
        uint64_t shutdown_started;
        bool shutting_down;
};

/* ---------------- helpers ---------------- */

/* one thread, mostly idle: give memory freed after a call back to the system */
static void trim_heap(void)
{
#ifdef __GLIBC__
        malloc_trim(0);
#endif
}

static void set_ts(Google__Protobuf__Timestamp *ts, const struct timespec *t, bool valid)
{
        google__protobuf__timestamp__init(ts);
        if (valid) {
                ts->seconds = t->tv_sec;
                ts->nanos = (int32_t)t->tv_nsec;
        } else {
                ts->seconds = GO_ZERO_TIME_SEC;
        }
}

static struct shim_container *find_container(struct shim_server *s, const char *id)
{
        for (struct shim_container *c = s->containers; c; c = c->next)
                if (strcmp(c->id, id) == 0)
                        return c;
        return NULL;
}

static int lookup(struct shim_server *s, const char *id, const char *exec_id, struct shim_container **ret_c,
                  struct shim_process **ret_p, struct error **err)
{
        struct shim_container *c = find_container(s, id ? id : "");

        if (!c)
                return error_set(err, ENOENT, "container %s not created", id ? id : "");
        if (ret_c)
                *ret_c = c;
        if (!exec_id || !*exec_id) {
                if (ret_p)
                        *ret_p = c->init;
                return 0;
        }
        for (struct shim_process *p = c->execs; p; p = p->next)
                if (strcmp(p->id, exec_id) == 0) {
                        if (ret_p)
                                *ret_p = p;
                        return 0;
                }
        return error_set(err, ENOENT, "process %s", exec_id);
}

static void publish(struct shim_server *s, const char *topic, const ProtobufCMessage *m)
{
        shim_events_publish(s->events, topic, m);
}

static void fail(struct shim_call *call, int r, struct error *e, const char *method)
{
        log_fields(LOG_LEVEL_DEBUG, NULL, "%s: %s", method, e ? error_str(e) : "failed");
        shim_call_fail(call, r, e);
}

/* ---------------- processes ---------------- */

static struct shim_process *process_new(struct shim_container *c, const char *id, bool is_init, const char *in,
                                        const char *out, const char *errp, bool terminal)
{
        struct shim_process *p = xcalloc(1, sizeof(*p));

        p->c = c;
        p->id = xstrdup(id);
        p->is_init = is_init;
        p->state = SHIM_STATE_CREATED;
        p->stdin_path = xstrdup(in ? in : "");
        p->stdout_path = xstrdup(out ? out : "");
        p->stderr_path = xstrdup(errp ? errp : "");
        p->terminal = terminal;
        p->io.console_fd = p->io.console_listen_fd = p->io.tty_in_fd = p->io.tty_out_fd = -1;
        for (int i = 0; i < 3; i++)
                p->io.container_fds[i] = -1;
        return p;
}

static void process_stop_drain_timer(struct shim_process *p)
{
        shim_timer_stop(&p->drain_timer);
}

static void process_free(struct shim_process *p)
{
        if (!p)
                return;
        process_stop_drain_timer(p);
        for (size_t i = 0; i < p->n_waiters; i++) {
                shim_call_fail_status(p->waiters[i], GRPC_NOT_FOUND, "process deleted: not found");
                shim_call_unref(p->waiters[i]);
        }
        free(p->waiters);
        if (p->io_open)
                shim_stdio_close(&p->io);
        free(p->id);
        free(p->stdin_path);
        free(p->stdout_path);
        free(p->stderr_path);
        free(p->spec);
        free(p);
}

static void reply_wait(struct shim_call *call, struct shim_process *p)
{
        Containerd__Task__V2__WaitResponse resp = CONTAINERD__TASK__V2__WAIT_RESPONSE__INIT;
        Google__Protobuf__Timestamp ts;

        set_ts(&ts, &p->exited_at, true);
        resp.exit_status = p->exit_status;
        resp.exited_at = &ts;
        shim_call_reply(call, &resp.base);
}

static void report_exit(struct shim_process *p)
{
        struct shim_server *s = p->c->srv;
        Containerd__Events__TaskExit ev = CONTAINERD__EVENTS__TASK_EXIT__INIT;
        Google__Protobuf__Timestamp ts;

        if (p->exit_reported)
                return;
        p->exit_reported = true;
        process_stop_drain_timer(p);
        set_ts(&ts, &p->exited_at, true);
        ev.container_id = p->c->id;
        ev.id = p->id;
        ev.pid = (uint32_t)p->pid;
        ev.exit_status = p->exit_status;
        ev.exited_at = &ts;
        publish(s, "/tasks/exit", &ev.base);
        for (size_t i = 0; i < p->n_waiters; i++) {
                reply_wait(p->waiters[i], p);
                shim_call_unref(p->waiters[i]);
        }
        free(p->waiters);
        p->waiters = NULL;
        p->n_waiters = 0;
        log_fields(LOG_LEVEL_DEBUG, NULL, "process %s exited with status %u", p->id, p->exit_status);
}

static void on_drained(void *data)
{
        report_exit(data);
}

static void on_drain_timeout(struct shim_timer *t)
{
        struct shim_process *p = t->data;

        /* something outside the container keeps the output open: report anyway */
        log_warn("process %s: output not drained after %d ms", p->id, DRAIN_TIMEOUT_MS);
        p->io.drained_cb = NULL;
        report_exit(p);
}

static void process_exited(struct shim_process *p, int wstatus)
{
        p->exited = true;
        p->exit_status = shim_exit_status(wstatus);
        clock_gettime(CLOCK_REALTIME, &p->exited_at);
        p->state = SHIM_STATE_STOPPED;
        if (!p->io_open) {
                report_exit(p);
                return;
        }
        shim_timer_init(&p->c->srv->loop, &p->drain_timer, on_drain_timeout, p);
        shim_timer_start(&p->drain_timer, DRAIN_TIMEOUT_MS);
        shim_stdio_on_drained(&p->io, on_drained, p);
}

static struct shim_process *find_pid(struct shim_server *s, pid_t pid)
{
        for (struct shim_container *c = s->containers; c; c = c->next) {
                if (c->init && c->init->pid == pid && !c->init->exited)
                        return c->init;
                for (struct shim_process *p = c->execs; p; p = p->next)
                        if (p->pid == pid && !p->exited)
                                return p;
        }
        return NULL;
}

static void begin_shutdown(struct shim_server *s);

/* Reaps every exited child. Kill calls it before signalling a pid itself: a zombie is reported as finished,
 * as runc does (it reads the zombie state from /proc), and a pid is never reused before this reaps it. */
static void reap(struct shim_server *s)
{
        int wstatus;
        pid_t pid;

        while ((pid = waitpid(-1, &wstatus, WNOHANG)) > 0) {
                struct shim_process *p = find_pid(s, pid);
                if (p)
                        process_exited(p, wstatus);
        }
}

static void on_signal(struct shim_watch *w, uint32_t events)
{
        struct shim_server *s = w->data;
        struct signalfd_siginfo si;

        (void)events;
        while (read(s->sfd, &si, sizeof(si)) == sizeof(si))
                if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
                        /* like the Go shim's handleExitSignals: stop serving, containers keep running */
                        log_fields(LOG_LEVEL_DEBUG, NULL, "caught exit signal %u", si.ssi_signo);
                        begin_shutdown(s);
                }
        reap(s);
}

static void on_oom(void *data)
{
        struct shim_container *c = data;
        Containerd__Events__TaskOOM ev = CONTAINERD__EVENTS__TASK_OOM__INIT;

        ev.container_id = c->id;
        publish(c->srv, "/tasks/oom", &ev.base);
}

/* ---------------- containers ---------------- */

static void container_free(struct shim_container *c)
{
        struct shim_process *p, *next;

        for (p = c->execs; p; p = next) {
                next = p->next;
                process_free(p);
        }
        process_free(c->init);
        shim_cgroup_free(c->cg);
        shim_runtime_clear(&c->rt);
        free(c->id);
        free(c->bundle);
        free(c->rootfs);
        free(c);
}

static void container_unlink(struct shim_server *s, struct shim_container *c)
{
        for (struct shim_container **pp = &s->containers; *pp; pp = &(*pp)->next)
                if (*pp == c) {
                        *pp = c->next;
                        return;
                }
}

static Containerd__Runc__V1__Options *unpack_options(const Google__Protobuf__Any *any)
{
        const char *t;

        if (!any || !any->type_url || any->value.len == 0)
                return NULL;
        t = strrchr(any->type_url, '/');
        t = t ? t + 1 : any->type_url;
        if (strcmp(t, "containerd.runc.v1.Options") != 0)
                return NULL;
        return containerd__runc__v1__options__unpack(NULL, any->value.len, any->value.data);
}

static void json_bool_member(struct shim_buf *b, const char *key, bool v)
{
        shim_json_quote(b, key);
        shim_buf_puts(b, v ? ":true," : ":false,");
}

/* options.json as containerd's runc shim writes it (keys sorted, compact); `delete` reads it back. */
static void write_options(struct shim_container *c, const Containerd__Runc__V1__Options *o)
{
        _cleanup_free_ char *rpath = xasprintf("%s/runtime", c->bundle);
        _cleanup_free_ char *opath = xasprintf("%s/options.json", c->bundle);
        struct shim_buf b = {0};

        shim_buf_putc(&b, '{');
        if (o) {
                shim_buf_puts(&b, "\"BinaryName\":");
                shim_json_quote(&b, o->binary_name ? o->binary_name : "");
                shim_buf_putc(&b, ',');
                json_bool_member(&b, "NoNewKeyring", o->no_new_keyring);
                json_bool_member(&b, "NoPivotRoot", o->no_pivot_root);
                shim_buf_puts(&b, "\"Root\":");
                shim_json_quote(&b, o->root ? o->root : "");
                shim_buf_putc(&b, ',');
                json_bool_member(&b, "SystemdCgroup", o->systemd_cgroup);
                b.s[--b.len] = '\0'; /* the last comma */
        }
        shim_buf_putc(&b, '}');
        (void)shim_write_file(opath, b.s, b.len, NULL);
        (void)shim_write_file(rpath, c->rt.binary, strlen(c->rt.binary), NULL);
        free(b.s);
}

/* An unreadable config.json leaves the conservative answer: every start and kill goes through runc. */
static void read_spec_info(struct shim_container *c)
{
        _cleanup_free_ char *path = xasprintf("%s/config.json", c->bundle);
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;

        if (shim_read_file(path, MAX_CONFIG, &buf, &len, NULL) < 0)
                buf = NULL;
        (void)shim_spec_info_parse(buf, len, &c->spec);
}

static void h_create(struct shim_call *call, const ProtobufCMessage *msg, void *data)
{
        const Containerd__Task__V2__CreateTaskRequest *req = (const void *)msg;
        struct shim_server *s = data;
        Containerd__Runc__V1__Options *opts = NULL;
        const Containerd__Runc__V1__Options *o;
        _cleanup_error_ struct error *e = NULL;
        _cleanup_free_ char *pidfile = NULL;
        struct shim_container *c = NULL;
        struct shim_process *p = NULL;
        const char *args[16];
        size_t n = 0;
        int r, pid;

        if (!req->id || !*req->id || !req->bundle || req->bundle[0] != '/') {
                shim_call_fail_status(call, GRPC_INVALID_ARGUMENT, "id and an absolute bundle are required");
                return;
        }
        if (find_container(s, req->id)) {
                r = error_set(&e, EEXIST, "container %s", req->id);
                fail(call, r, e, "create");
                return;
        }
        if (req->checkpoint && *req->checkpoint) {
                shim_call_fail_status(call, GRPC_UNIMPLEMENTED, "restore from a checkpoint is not supported");
                return;
        }
        opts = unpack_options(req->options);
        o = opts ? opts : s->cfg->start_options;

        c = xcalloc(1, sizeof(*c));
        c->srv = s;
        c->id = xstrdup(req->id);
        c->bundle = xstrdup(req->bundle);
        c->rootfs = xasprintf("%s/rootfs", req->bundle);
        c->rt.binary = xstrdup(o && o->binary_name && *o->binary_name ? o->binary_name : "runc");
        c->rt.root = xasprintf("%s/%s", o && o->root && *o->root ? o->root : s->cfg->runtime_root, s->cfg->ns);
        c->rt.bundle = xstrdup(req->bundle);
        c->rt.systemd_cgroup = o && o->systemd_cgroup;
        write_options(c, o);
        read_spec_info(c);
        p = c->init = process_new(c, req->id, true, req->stdin, req->stdout, req->stderr, req->terminal);

        if (req->n_rootfs > 0) {
                (void)mkdir(c->rootfs, 0711);
                r = shim_mount_rootfs(req->rootfs, req->n_rootfs, c->rootfs, &e);
                if (r < 0)
                        goto fail;
                c->mounted = true;
        }
        r = shim_stdio_open(&s->loop, &p->io, p->stdin_path, p->stdout_path, p->stderr_path, p->terminal, c->bundle,
                            s->cfg->ns, c->id, &e);
        if (r < 0)
                goto fail;
        p->io_open = true;
        pidfile = xasprintf("%s/init.pid", c->bundle);
        args[n++] = "create";
        args[n++] = "--bundle";
        args[n++] = c->bundle;
        args[n++] = "--pid-file";
        args[n++] = pidfile;
        if (p->terminal) {
                args[n++] = "--console-socket";
                args[n++] = p->io.console_path;
        }
        if (o && o->no_pivot_root)
                args[n++] = "--no-pivot";
        if (o && o->no_new_keyring)
                args[n++] = "--no-new-keyring";
        args[n++] = c->id;
        args[n] = NULL;
        r = shim_runtime_run(
            &c->rt, "OCI runtime create failed", args,
            &(struct shim_runtime_io){.fds = {p->io.container_fds[0], p->io.container_fds[1], p->io.container_fds[2]}},
            &e);
        if (r < 0)
                goto fail;
        r = shim_stdio_after_start(&s->loop, &p->io, &e);
        if (r >= 0)
                r = pid = shim_read_pid_file(pidfile, &e);
        if (r < 0) {
                const char *del[] = {"delete", "--force", c->id, NULL};
                (void)shim_runtime_run(&c->rt, "delete", del, NULL, NULL);
                goto fail;
        }
        p->pid = pid;
        c->next = s->containers;
        s->containers = c;

        {
                Containerd__Events__TaskCreate ev = CONTAINERD__EVENTS__TASK_CREATE__INIT;
                Containerd__Events__TaskIO tio = CONTAINERD__EVENTS__TASK_IO__INIT;
                Containerd__Task__V2__CreateTaskResponse resp = CONTAINERD__TASK__V2__CREATE_TASK_RESPONSE__INIT;
                tio.stdin = p->stdin_path;
                tio.stdout = p->stdout_path;
                tio.stderr = p->stderr_path;
                tio.terminal = p->terminal;
                ev.container_id = c->id;
                ev.bundle = c->bundle;
                ev.n_rootfs = req->n_rootfs;
                ev.rootfs = req->rootfs;
                ev.io = &tio;
                ev.checkpoint = req->checkpoint;
                ev.pid = (uint32_t)pid;
                publish(s, "/tasks/create", &ev.base);
                resp.pid = (uint32_t)pid;
                shim_call_reply(call, &resp.base);
        }
        if (opts)
                containerd__runc__v1__options__free_unpacked(opts, NULL);
        trim_heap();
        return;
fail:
        if (c->mounted)
                shim_unmount_rootfs(c->rootfs);
        container_free(c);
        if (opts)
                containerd__runc__v1__options__free_unpacked(opts, NULL);
        fail(call, r, e, "create");
}

static bool valid_exec_id(const char *id)
{
        if (!id || !*id || id[0] == '.' || strlen(id) > 76)
                return false;
        for (const char *p = id; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
                      *p == '-' || *p == '.'))
                        return false;
        return true;
}

static int start_exec(struct shim_server *s, struct shim_container *c, struct shim_process *p, struct error **err)
{
        _cleanup_free_ char *spec = xasprintf("%s/.%s-process.json", c->bundle, p->id);
        _cleanup_free_ char *pidfile = xasprintf("%s/%s.pid", c->bundle, p->id);
        const char *args[12];
        size_t n = 0;
        int r, pid;

        r = shim_write_file(spec, p->spec, p->spec_len, err);
        if (r < 0)
                return r;
        r = shim_stdio_open(&s->loop, &p->io, p->stdin_path, p->stdout_path, p->stderr_path, p->terminal, c->bundle,
                            s->cfg->ns, c->id, err);
        if (r < 0) {
                (void)unlink(spec);
                return r;
        }
        p->io_open = true;
        args[n++] = "exec";
        args[n++] = "--process";
        args[n++] = spec;
        args[n++] = "--detach";
        args[n++] = "--pid-file";
        args[n++] = pidfile;
        if (p->terminal) {
                args[n++] = "--console-socket";
                args[n++] = p->io.console_path;
        }
        args[n++] = c->id;
        args[n] = NULL;
        r = shim_runtime_run(
            &c->rt, "OCI runtime exec failed", args,
            &(struct shim_runtime_io){.fds = {p->io.container_fds[0], p->io.container_fds[1], p->io.container_fds[2]}},
            err);
        (void)unlink(spec);
        if (r >= 0)
                r = shim_stdio_after_start(&s->loop, &p->io, err);
        if (r >= 0)
                r = pid = shim_read_pid_file(pidfile, err);
        if (r < 0) {
                shim_stdio_close(&p->io);
                p->io_open = false;
                return r;
        }
        p->pid = pid;
        return 0;
}

static void h_start(struct shim_call *call, const ProtobufCMessage *msg, void *data)
{
        const Containerd__Task__V2__StartRequest *req = (const void *)msg;
        Containerd__Task__V2__StartResponse resp = CONTAINERD__TASK__V2__START_RESPONSE__INIT;
        struct shim_server *s = data;
        _cleanup_error_ struct error *e = NULL;
        struct shim_container *c = NULL;
        struct shim_process *p = NULL;
        int r;

        r = lookup(s, req->id, req->exec_id, &c, &p, &e);
        if (r >= 0)
                r = shim_state_check(p->state, SHIM_OP_START, &e);
        if (r >= 0 && p->is_init && c->init->state != SHIM_STATE_CREATED)
                r = error_set(&e, EBUSY, "container %s already started", c->id);
        if (r >= 0 && !p->is_init && c->init->state != SHIM_STATE_RUNNING)
                r = error_set_literal(&e, EBUSY, "cannot start an exec process: container not running");
        if (r >= 0 && p->is_init) {
                const char *args[] = {"start", c->id, NULL};
                r = 1;
                /* runc start = status check + the exec.fifo read + (runc >= 1.2) poststart hooks + NOTIFY_SOCKET
                 * handling; the state machine did the check, so without hooks or a notify socket the shim reads
                 * the fifo itself and saves a Go process */
                if (shim_runtime_is_runc(&c->rt) && !c->spec.poststart && !getenv("NOTIFY_SOCKET") && p->pid > 0) {
                        r = shim_runc_exec_fifo(c->rt.root, c->id, p->pid, &e);
                        if (r < 0)
                                r = error_wrap(&e, "OCI runtime start failed");
                }
                if (r == 1)
                        r = shim_runtime_run(&c->rt, "OCI runtime start failed", args, NULL, &e);
        } else if (r >= 0) {
                r = start_exec(s, c, p, &e);
        }
        if (r < 0) {
                fail(call, r, e, "start");
                return;
        }
        p->state = shim_state_next(p->state, SHIM_OP_START);
        if (p->is_init) {
                Containerd__Events__TaskStart ev = CONTAINERD__EVENTS__TASK_START__INIT;
                ev.container_id = c->id;
                ev.pid = (uint32_t)p->pid;
                publish(s, "/tasks/start", &ev.base);
                if (!c->cg)
                        c->cg = shim_cgroup_for_pid(p->pid);
                if (c->cg && shim_cgroup_watch_oom(c->cg, &s->loop, on_oom, c) < 0)
                        log_debug("container %s: cannot watch for OOM", c->id);
        } else {
                Containerd__Events__TaskExecStarted ev = CONTAINERD__EVENTS__TASK_EXEC_STARTED__INIT;
                ev.container_id = c->id;
                ev.exec_id = p->id;
                ev.pid = (uint32_t)p->pid;
                publish(s, "/tasks/exec-started", &ev.base);
        }
        resp.pid = (uint32_t)p->pid;
        shim_call_reply(call, &resp.base);
        trim_heap();
}

/* A reaped init in its own pid namespace left nothing running: runc delete's destroy() is then cgroup rmdirs
 * and the state dir, which the shim does itself; false (runc delete) for anything else. */
static bool delete_direct(const struct shim_container *c, const struct shim_process *p)
{
        return p->state == SHIM_STATE_STOPPED && p->exited && c->spec.private_pidns && !c->rt.systemd_cgroup &&
               shim_runtime_is_runc(&c->rt) && shim_runc_delete_stopped(c->rt.root, c->id, "/sys/fs/cgroup") == 0;
}

static void h_delete(struct shim_call *call, const ProtobufCMessage *msg, void *data)
{
        const Containerd__Task__V2__DeleteRequest *req = (const void *)msg;
        Containerd__Task__V2__DeleteResponse resp = CONTAINERD__TASK__V2__DELETE_RESPONSE__INIT;
        struct shim_server *s = data;
        _cleanup_error_ struct error *e = NULL;
        Google__Protobuf__Timestamp ts;
        struct shim_container *c = NULL;
        struct shim_process *p = NULL;
        int r;

        r = lookup(s, req->id, req->exec_id, &c, &p, &e);
        if (r >= 0)
                r = shim_state_check(p->state, SHIM_OP_DELETE, &e);
        if (r >= 0 && p->is_init && !delete_direct(c, p)) {
                const char *args[] = {"delete", p->state == SHIM_STATE_CREATED ? "--force" : c->id,
                                      p->state == SHIM_STATE_CREATED ? c->id : NULL, NULL};
                r = shim_runtime_run(&c->rt, "OCI runtime delete failed", args, NULL, &e);
                if (r < 0 && e && e->msg && strstr(e->msg, "does not exist")) {
                        error_free(&e);
                        r = 0;
                }
        }
        if (r < 0) {
                fail(call, r, e, "delete");
                return;
        }
        if (p->exited && !p->exit_reported)
                report_exit(p);
        if (!p->exited)
                clock_gettime(CLOCK_REALTIME, &p->exited_at);
        set_ts(&ts, &p->exited_at, true);
        resp.pid = (uint32_t)p->pid;
        resp.exit_status = p->exit_status;
        resp.exited_at = &ts;
        if (p->is_init) {
                Containerd__Events__TaskDelete ev = CONTAINERD__EVENTS__TASK_DELETE__INIT;
                ev.container_id = c->id;
                ev.pid = (uint32_t)p->pid;
                ev.exit_status = p->exit_status;
                ev.exited_at = &ts;
                if (c->mounted)
                        shim_unmount_rootfs(c->rootfs);
                publish(s, "/tasks/delete", &ev.base);
                shim_call_reply(call, &resp.base);
                container_unlink(s, c);
                container_free(c);
        } else {
                shim_call_reply(call, &resp.base);
                for (struct shim_process **pp = &c->execs; *pp; pp = &(*pp)->next)
                        if (*pp == p) {
                                *pp = p->next;
                                break;
                        }
                c->n_execs--;
                process_free(p);
        }
        trim_heap();
}

static void h_state(struct shim_call *call, const ProtobufCMessage *msg, void *data)
{
        const Containerd__Task__V2__StateRequest *req = (const void *)msg;
        Containerd__Task__V2__StateResponse resp = CONTAINERD__TASK__V2__STATE_RESPONSE__INIT;
        struct shim_server *s = data;
        _cleanup_error_ struct error *e = NULL;
        Google__Protobuf__Timestamp ts;
        struct shim_container *c = NULL;
        struct shim_process *p = NULL;
        int r;

        r = lookup(s, req->id, req->exec_id, &c, &p, &e);
        if (r < 0) {
                fail(call, r, e, "state");
                return;
        }
        set_ts(&ts, &p->exited_at, p->exited);
        resp.id = p->id;
        resp.bundle = c->bundle;
        resp.pid = (uint32_t)p->pid;
        resp.status = (Containerd__V1__Types__Status)shim_state_to_status(p->state);
        resp.stdin = p->stdin_path;
        resp.stdout = p->stdout_path;
        resp.stderr = p->stderr_path;
        resp.terminal = p->terminal;
        resp.exit_status = p->exit_status;
        resp.exited_at = &ts;
        shim_call_reply(call, &resp.base);
}

/* May Kill of the init process skip `runc kill`? Only while created or running (runc thaws a paused container
 * for SIGKILL), and for --all only SIGKILL in a pid namespace of the container's own: init's death makes the
 * kernel kill every other process of the namespace, the set runc would signal from the cgroup. */
static bool kill_direct_ok(const struct shim_container *c, const struct shim_process *p,
                           const Containerd__Task__V2__KillRequest *req)
{
        if (p->pid <= 0 || p->exited || (p->state != SHIM_STATE_CREATED && p->state != SHIM_STATE_RUNNING))
                return false;
        if (req->all)
                return req->signal == SIGKILL && c->spec.private_pidns;
        return true;
}

static void h_kill(struct shim_call *call, const ProtobufCMessage *msg, void *data)
{
        const Containerd__Task__V2__KillRequest *req = (const void *)msg;
        struct shim_server *s = data;
        _cleanup_error_ struct error *e = NULL;
        _cleanup_free_ char *sig = NULL;
        struct shim_container *c = NULL;
        struct shim_process *p = NULL;
        int r;

        /* collect exits first: a zombie counts as finished (runc reads its state from /proc), and a pid the
         * shim signals itself cannot be reused before the shim reaps it */
        reap(s);
        r = lookup(s, req->id, req->exec_id, &c, &p, &e);
        if (r >= 0 && !(p->is_init && req->all))
                r = shim_state_check(p->state, SHIM_OP_KILL, &e);
        if (r >= 0 && req->signal > 64)
                r = error_set(&e, EINVAL, "signal %u", req->signal);
        if (r >= 0 && p->is_init && kill_direct_ok(c, p, req)) {
                /* the shim is init's parent (subreaper): its pid stays reserved until reap() collects it, so
                 * signalling it directly is what runc kill does, minus the Go process */
                if (kill(p->pid, (int)req->signal) < 0)
                        r = errno == ESRCH ? error_set(&e, ENOENT, "process already finished")
                                           : error_set(&e, errno, "kill %d", p->pid);
        } else if (r >= 0 && p->is_init) {
                const char *args[6];
                size_t n = 0;
                sig = xasprintf("%u", req->signal);
                args[n++] = "kill";
                if (req->all)
                        args[n++] = "--all";
                args[n++] = c->id;
                args[n++] = sig;
                args[n] = NULL;
                r = shim_runtime_run(&c->rt, "OCI runtime kill failed", args, NULL, &e);
                if (r < 0 && e && e->msg && (strstr(e->msg, "not running") || strstr(e->msg, "no such process"))) {
                        error_free(&e);
                        r = error_set(&e, ENOENT, "process already finished");
                }
        } else if (r >= 0) {
                if (p->pid <= 0)
                        r = error_set(&e, EBUSY, "process %s not started", p->id);
                else if (kill(p->pid, (int)req->signal) < 0)
                        r = errno == ESRCH ? error_set(&e, ENOENT, "process already finished")
                                           : error_set(&e, errno, "kill %d", p->pid);
        }
        if (r < 0) {
                fail(call, r, e, "kill");
                return;
        }
        shim_call_reply(call, NULL);
}

static void h_wait(struct shim_call *call, const ProtobufCMessage *msg, void *data)
{
        const Containerd__Task__V2__WaitRequest *req = (const void *)msg;
        struct shim_server *s = data;
        _cleanup_error_ struct error *e = NULL;
        struct shim_process *p = NULL;
        int r;

        r = lookup(s, req->id, req->exec_id, NULL, &p, &e);
        if (r < 0) {
                fail(call, r, e, "wait");
                return;
        }
        if (p->exit_reported) {
                reply_wait(call, p);
                return;
        }
        if (p->n_waiters >= 64) {
                shim_call_fail_status(call, GRPC_RESOURCE_EXHAUSTED, "too many waiters");
                return;
        }
        p->waiters = xreallocarray(p->waiters, p->n_waiters + 1, sizeof(*p->waiters));
        p->waiters[p->n_waiters++] = shim_call_ref(call);
}

static void h_exec(struct shim_call *call, const ProtobufCMessage *msg, void *data)
{
        const Containerd__Task__V2__ExecProcessRequest *req = (const void *)msg;
        struct shim_server *s = data;
        _cleanup_error_ struct error *e = NULL;
        Containerd__Events__TaskExecAdded ev = CONTAINERD__EVENTS__TASK_EXEC_ADDED__INIT;
        struct shim_container *c = NULL;
        struct shim_process *p = NULL;
        int r;

        r = lookup(s, req->id, NULL, &c, NULL, &e);
        if (r >= 0)
                r = shim_state_check(c->init->state, SHIM_OP_EXEC, &e);
        if (r >= 0 && !valid_exec_id(req->exec_id))
                r = error_set(&e, EINVAL, "invalid exec id \"%s\"", req->exec_id ? req->exec_id : "");
        if (r >= 0 && lookup(s, req->id, req->exec_id, NULL, NULL, NULL) >= 0)
                r = error_set(&e, EEXIST, "id %s", req->exec_id);
        if (r >= 0 && c->n_execs >= MAX_EXECS)
                r = error_set(&e, ENOSPC, "too many exec processes");
        if (r >= 0 && (!req->spec || req->spec->value.len == 0 || req->spec->value.len > MAX_SPEC))
                r = error_set(&e, EINVAL, "exec process spec");
        if (r < 0) {
                fail(call, r, e, "exec");
                return;
        }
        p = process_new(c, req->exec_id, false, req->stdin, req->stdout, req->stderr, req->terminal);
        p->spec = xmemdup(req->spec->value.data, req->spec->value.len);
        p->spec_len = req->spec->value.len;
        p->next = c->execs;
        c->execs = p;
        c->n_execs++;
        ev.container_id = c->id;
        ev.exec_id = p->id;
        publish(s, "/tasks/exec-added", &ev.base);
        shim_call_reply(call, NULL);
}

static void h_pids(struct shim_call *call, const ProtobufCMessage *msg, void *data)
{
        const Containerd__Task__V2__PidsRequest *req = (const void *)msg;
        Containerd__Task__V2__PidsResponse resp = CONTAINERD__TASK__V2__PIDS_RESPONSE__INIT;
        struct shim_server *s = data;
        _cleanup_error_ struct error *e = NULL;
        _cleanup_free_ char *out = NULL;
        struct shim_container *c = NULL;
        struct shim_json arr = {.type = SHIM_JSON_NULL}, v;
        const char *pos = NULL;
        size_t n = 0;
        int r;

        r = lookup(s, req->id, NULL, &c, NULL, &e);
        if (r >= 0) {
                const char *args[] = {"ps", "--format", "json", c->id, NULL};
                r = shim_runtime_run(&c->rt, "OCI runtime ps failed", args,
                                     &(struct shim_runtime_io){.fds = {-1, -1, -1}, .output = &out}, &e);
        }
        if (r >= 0 && shim_json_parse(out, strlen(out), &arr) == 0 && arr.type != SHIM_JSON_ARRAY &&
            arr.type != SHIM_JSON_NULL)
                r = error_set(&e, EIO, "runtime ps: unexpected output");
        if (r < 0) {
                fail(call, r, e, "pids");
                return;
        }
        while (shim_json_next(&arr, &pos, &v))
                n++;
        resp.processes = xcalloc(n ? n : 1, sizeof(*resp.processes));
        pos = NULL;
        while (resp.n_processes < n && shim_json_next(&arr, &pos, &v)) {
                Containerd__V1__Types__ProcessInfo *pi = xmalloc(sizeof(*pi));
                int64_t pid = 0;
                containerd__v1__types__process_info__init(pi);
                (void)shim_json_int64(&v, &pid);
                pi->pid = (uint32_t)pid;
                for (struct shim_process *p = c->execs; p; p = p->next)
                        if (p->pid > 0 && (uint32_t)p->pid == pi->pid) {
                                Containerd__Runc__V1__ProcessDetails d = CONTAINERD__RUNC__V1__PROCESS_DETAILS__INIT;
                                Google__Protobuf__Any *any = xmalloc(sizeof(*any));
                                google__protobuf__any__init(any);
                                d.exec_id = p->id;
                                any->type_url = xstrdup("containerd.runc.v1.ProcessDetails");
                                any->value.len = protobuf_c_message_get_packed_size(&d.base);
                                any->value.data = xmalloc(any->value.len + 1);
                                protobuf_c_message_pack(&d.base, any->value.data);
                                pi->info = any;
                        }
                resp.processes[resp.n_processes++] = pi;
        }
        shim_call_reply(call, &resp.base);
        for (size_t i = 0; i < resp.n_processes; i++) {
                if (resp.processes[i]->info) {
                        free(resp.processes[i]->info->type_url);
                        free(resp.processes[i]->info->value.data);
                        free(resp.processes[i]->info);
                }
                free(resp.processes[i]);
        }
        free(resp.processes);
}

static void pause_resume(struct shim_call *call, struct shim_server *s, const char *id, bool pause)
{
        _cleanup_error_ struct error *e = NULL;
        struct shim_container *c = NULL;
        int r;

        r = lookup(s, id, NULL, &c, NULL, &e);
        if (r >= 0)
                r = shim_state_check(c->init->state, pause ? SHIM_OP_PAUSE : SHIM_OP_RESUME, &e);
        if (r >= 0) {
                const char *args[] = {pause ? "pause" : "resume", c->id, NULL};
                r = shim_runtime_run(&c->rt, pause ? "OCI runtime pause failed" : "OCI runtime resume failed", args,
                                     NULL, &e);
        }
        if (r < 0) {
                fail(call, r, e, pause ? "pause" : "resume");
                return;
        }
        c->init->state = shim_state_next(c->init->state, pause ? SHIM_OP_PAUSE : SHIM_OP_RESUME);
        if (pause) {
                Containerd__Events__TaskPaused ev = CONTAINERD__EVENTS__TASK_PAUSED__INIT;
                ev.container_id = c->id;
                publish(s, "/tasks/paused", &ev.base);
        } else {
                Containerd__Events__TaskResumed ev = CONTAINERD__EVENTS__TASK_RESUMED__INIT;
                ev.container_id = c->id;
                publish(s, "/tasks/resumed", &ev.base);
        }
        shim_call_reply(call, NULL);
}

static void h_pause(struct shim_call *call, const ProtobufCMessage *msg, void *data)
{
        pause_resume(call, data, ((const Containerd__Task__V2__PauseRequest *)msg)->id, true);
}

static void h_resume(struct shim_call *call, const ProtobufCMessage *msg, void *data)
{
        pause_resume(call, data, ((const Containerd__Task__V2__ResumeRequest *)msg)->id, false);
}

static void h_checkpoint(struct shim_call *call, const ProtobufCMessage *msg, void *data)
{
        (void)msg;
        (void)data;
        shim_call_fail_status(call, GRPC_UNIMPLEMENTED,
                              "checkpoint is not supported by containerd-shim-krill-v2: not implemented");
}

static void h_resize(struct shim_call *call, const ProtobufCMessage *msg, void *data)
{
        const Containerd__Task__V2__ResizePtyRequest *req = (const void *)msg;
        _cleanup_error_ struct error *e = NULL;
        struct shim_process *p = NULL;
        int r;

        r = lookup(data, req->id, req->exec_id, NULL, &p, &e);
        if (r >= 0)
                r = shim_stdio_resize(&p->io, req->width, req->height, &e);
        if (r < 0) {
                fail(call, r, e, "resize");
                return;
        }
        shim_call_reply(call, NULL);
}

static void h_closeio(struct shim_call *call, const ProtobufCMessage *msg, void *data)
{
        const Containerd__Task__V2__CloseIORequest *req = (const void *)msg;
        _cleanup_error_ struct error *e = NULL;
        struct shim_process *p = NULL;
        int r;

        r = lookup(data, req->id, req->exec_id, NULL, &p, &e);
        if (r < 0) {
                fail(call, r, e, "closeio");
                return;
        }
        if (req->stdin && p->io_open)
                shim_stdio_close_stdin(&p->io);
        shim_call_reply(call, NULL);
}

static void h_update(struct shim_call *call, const ProtobufCMessage *msg, void *data)
{
        const Containerd__Task__V2__UpdateTaskRequest *req = (const void *)msg;
        _cleanup_error_ struct error *e = NULL;
        struct shim_container *c = NULL;
        int r;

        r = lookup(data, req->id, NULL, &c, NULL, &e);
        if (r >= 0)
                r = shim_state_check(c->init->state, SHIM_OP_UPDATE, &e);
        if (r >= 0 && (!req->resources || req->resources->value.len > MAX_SPEC))
                r = error_set(&e, EINVAL, "update: resources");
        if (r >= 0) {
                const char *args[] = {"update", "--resources", "-", c->id, NULL};
                r = shim_runtime_run(&c->rt, "OCI runtime update failed", args,
                                     &(struct shim_runtime_io){.fds = {-1, -1, -1},
                                                               .input = (const char *)req->resources->value.data,
                                                               .input_len = req->resources->value.len},
                                     &e);
        }
        if (r < 0) {
                fail(call, r, e, "update");
                return;
        }
        shim_call_reply(call, NULL);
}

static void h_stats(struct shim_call *call, const ProtobufCMessage *msg, void *data)
{
        const Containerd__Task__V2__StatsRequest *req = (const void *)msg;
        Containerd__Task__V2__StatsResponse resp = CONTAINERD__TASK__V2__STATS_RESPONSE__INIT;
        _cleanup_error_ struct error *e = NULL;
        Google__Protobuf__Any *any = NULL;
        struct shim_container *c = NULL;
        int r;

        r = lookup(data, req->id, NULL, &c, NULL, &e);
        if (r >= 0 && !c->cg && c->init->pid > 0 && !c->init->exited)
                c->cg = shim_cgroup_for_pid(c->init->pid);
        if (r >= 0)
                r = shim_cgroup_stats(c->cg, &any, &e);
        if (r < 0) {
                fail(call, r, e, "stats");
                return;
        }
        resp.stats = any;
        shim_call_reply(call, &resp.base);
        free(any->type_url);
        free(any->value.data);
        free(any);
}

static void h_connect(struct shim_call *call, const ProtobufCMessage *msg, void *data)
{
        const Containerd__Task__V2__ConnectRequest *req = (const void *)msg;
        Containerd__Task__V2__ConnectResponse resp = CONTAINERD__TASK__V2__CONNECT_RESPONSE__INIT;
        struct shim_container *c = find_container(data, req->id ? req->id : "");

        resp.shim_pid = (uint32_t)getpid();
        resp.task_pid = c && c->init ? (uint32_t)c->init->pid : 0;
        resp.version = (char *)KRILL_VERSION;
        shim_call_reply(call, &resp.base);
}

static void on_exit_timer(struct shim_timer *t)
{
        struct shim_server *s = t->data;

        /* leave once the last events went out (/tasks/delete must reach the daemon), at most after 5 s */
        if (shim_events_idle(s->events) || shim_loop_now() - s->shutdown_started > 5000)
                shim_loop_stop(&s->loop);
        else
                shim_timer_start(t, 20);
}

static void begin_shutdown(struct shim_server *s)
{
        if (s->shutting_down)
                return;
        s->shutting_down = true;
        s->shutdown_started = shim_loop_now();
        /* a short delay lets the Shutdown reply leave before the process does */
        shim_timer_start(&s->exit_timer, 20);
}

static void h_shutdown(struct shim_call *call, const ProtobufCMessage *msg, void *data)
{
        const Containerd__Task__V2__ShutdownRequest *req = (const void *)msg;
        struct shim_server *s = data;

        shim_call_reply(call, NULL);
        if (s->containers && !req->now)
                return; /* other containers of the group still live here */
        begin_shutdown(s);
}

static const struct shim_method methods[] = {
    {"State", &containerd__task__v2__state_request__descriptor, h_state},
    {"Create", &containerd__task__v2__create_task_request__descriptor, h_create},
    {"Start", &containerd__task__v2__start_request__descriptor, h_start},
    {"Delete", &containerd__task__v2__delete_request__descriptor, h_delete},
    {"Pids", &containerd__task__v2__pids_request__descriptor, h_pids},
    {"Pause", &containerd__task__v2__pause_request__descriptor, h_pause},
    {"Resume", &containerd__task__v2__resume_request__descriptor, h_resume},
    {"Checkpoint", &containerd__task__v2__checkpoint_task_request__descriptor, h_checkpoint},
    {"Kill", &containerd__task__v2__kill_request__descriptor, h_kill},
    {"Exec", &containerd__task__v2__exec_process_request__descriptor, h_exec},
    {"ResizePty", &containerd__task__v2__resize_pty_request__descriptor, h_resize},
    {"CloseIO", &containerd__task__v2__close_iorequest__descriptor, h_closeio},
    {"Update", &containerd__task__v2__update_task_request__descriptor, h_update},
    {"Wait", &containerd__task__v2__wait_request__descriptor, h_wait},
    {"Stats", &containerd__task__v2__stats_request__descriptor, h_stats},
    {"Connect", &containerd__task__v2__connect_request__descriptor, h_connect},
    {"Shutdown", &containerd__task__v2__shutdown_request__descriptor, h_shutdown},
};

int shim_server_run(struct shim_config *cfg, int listen_fd)
{
        struct shim_server *s = xcalloc(1, sizeof(*s));
        sigset_t mask;
        int r;

        s->cfg = cfg;
        (void)prctl(PR_SET_CHILD_SUBREAPER, 1);
        (void)signal(SIGPIPE, SIG_IGN);
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        (void)sigprocmask(SIG_BLOCK, &mask, NULL);
        s->sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        r = s->sfd < 0 ? -errno : shim_loop_init(&s->loop);
        if (r < 0) {
                log_error("event loop: %s", strerror(-r));
                if (s->sfd >= 0)
                        close(s->sfd);
                close(listen_fd);
                free(s);
                return 1;
        }
        shim_watch_init(&s->loop, &s->sig_watch, s->sfd, on_signal, s);
        (void)shim_watch_set(&s->sig_watch, EPOLLIN);
        shim_timer_init(&s->loop, &s->exit_timer, on_exit_timer, s);
        s->events = shim_events_new(&s->loop, cfg->ttrpc_address, cfg->ns);
        s->rpc = shim_rpc_new(&s->loop, listen_fd, TASK_SERVICE, methods, ELEMENTSOF(methods), s);
        if (!s->rpc) {
                r = -EIO;
        } else {
                trim_heap();
                r = shim_loop_run(&s->loop);
                if (r < 0)
                        log_error("event loop: %s", strerror(-r));
        }

        /* leaving: containers that are still here outlive the shim */
        while (s->containers) {
                struct shim_container *c = s->containers;
                s->containers = c->next;
                container_free(c);
        }
        shim_rpc_free(s->rpc);
        shim_events_free(s->events);
        shim_timer_stop(&s->exit_timer);
        shim_watch_stop(&s->sig_watch);
        shim_loop_close(&s->loop);
        close(s->sfd);
        free(s);
        if (cfg->socket_path)
                (void)unlink(cfg->socket_path);
        return r < 0 ? 1 : 0;
}

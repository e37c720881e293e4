#include "task_manager.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "github.com/containerd/containerd/runtime/v2/task/shim.pb-c.h"
#include "runtime/bundle.h"
#include "runtime/shim_binary.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/log.h"

#define TASK_SERVICE "containerd.task.v2.Task"
#define CONNECT_TIMEOUT_MS 5000  /* containerd: Connect during recovery */
#define SHUTDOWN_TIMEOUT_MS 3000 /* containerd: Shutdown after Delete */
#define CREATE_TIMEOUT_MS 0      /* Create runs the OCI runtime: no bound, like containerd */

struct removal;

struct shim {
        struct task_manager *tm;
        char *address;
        struct ttrpc_client *client;
        unsigned ntasks;
        bool connected;
        bool closing;            /* we asked it to shut down: its disconnect is expected */
        struct removal *removal; /* set while a deleted task waits for this shim to exit */
        struct shim *next;
};

enum task_state {
        TASK_CREATING,
        TASK_READY,
        TASK_DELETING,
};

struct task {
        struct task_manager *tm;
        char *ns, *id, *binary;
        struct runtime_bundle *bundle;
        struct shim *shim;
        uv_pipe_t *log;
        enum task_state state;
        uint32_t pid;
        struct task *next;
};

struct create_op;

/* A deleted task whose shim was asked to shut down. Delete answers as soon as the shim has deleted the task and
 * the bundle is moved aside; the shim's exit is awaited here instead. A new task with the same ns/id waits for
 * it: its shim socket name derives from ns/id, and `start` would otherwise hand back the exiting shim. */
struct removal {
        struct task_manager *tm;
        char *ns, *id;
        struct shim *shim;            /* its task reference is kept until the connection closes */
        struct runtime_bundle *trash; /* the moved-aside bundle, removed once the shim (its cwd) is gone */
        uv_timer_t *timer;            /* bounds that wait (containerd's shutdown timeout) */
        struct create_op *waiting;    /* creates of the same ns/id */
        struct removal *next;
};

struct task_manager {
        uv_loop_t *loop;
        char *state_dir, *root_dir, *address, *ttrpc_address, *publish_binary, *self_dir;
        bool debug;
        struct task *tasks;
        struct shim *shims;
        struct removal *removals;
        task_manager_exit_fn exit_cb;
        void *exit_data;
        /* Worker jobs and timers that call back into the manager. task_manager_free() only marks it closing
         * while any is pending; the last one frees it. Callbacks that find it closing touch no task. */
        unsigned jobs;
        bool closing;
};

/* --- bookkeeping --- */

static char *xstrdup_or_empty(const char *s)
{
        return xstrdup(s ? s : "");
}

struct task_manager *task_manager_new(uv_loop_t *loop, const struct task_manager_config *cfg)
{
        struct task_manager *tm = xcalloc(1, sizeof(*tm));
        tm->loop = loop;
        tm->state_dir = xstrdup_or_empty(cfg->state_dir);
        tm->root_dir = xstrdup_or_empty(cfg->root_dir);
        tm->address = xstrdup_or_empty(cfg->address);
        tm->ttrpc_address = xstrdup_or_empty(cfg->ttrpc_address);
        tm->publish_binary = xstrdup_or_empty(cfg->publish_binary);
        tm->self_dir = xstrdup(cfg->self_dir);
        tm->debug = cfg->debug;
        return tm;
}

void task_manager_set_exit_cb(struct task_manager *tm, task_manager_exit_fn fn, void *userdata)
{
        tm->exit_cb = fn;
        tm->exit_data = userdata;
}

static void tm_destroy(struct task_manager *tm)
{
        free(tm->state_dir);
        free(tm->root_dir);
        free(tm->address);
        free(tm->ttrpc_address);
        free(tm->publish_binary);
        free(tm->self_dir);
        free(tm);
}

/* Every uv_queue_work of the manager goes through here: the manager outlives its jobs. */
static void queue_job(struct task_manager *tm, void *data, uv_work_cb work, uv_after_work_cb after)
{
        uv_work_t *w = xcalloc(1, sizeof(*w));
        w->data = data;
        tm->jobs++;
        if (uv_queue_work(tm->loop, w, work, after) < 0) {
                /* Only fails for invalid arguments; run inline as a last resort. */
                work(w);
                after(w, 0);
        }
}

/* Ends a job (or a timer) taken with tm->jobs++. Returns true if the manager is closing; then the caller
 * only releases what it owns and calls tm_release() last. */
static bool job_end(struct task_manager *tm)
{
        tm->jobs--;
        return tm->closing;
}

static void tm_release(struct task_manager *tm)
{
        if (tm->closing && tm->jobs == 0)
                tm_destroy(tm);
}

static struct task *task_find(const struct task_manager *tm, const char *ns, const char *id)
{
        for (struct task *t = tm->tasks; t; t = t->next)
                if (strcmp(t->ns, ns) == 0 && strcmp(t->id, id) == 0)
                        return t;
        return NULL;
}

static void log_close_cb(uv_handle_t *h)
{
        free(h);
}

static void shim_unref_task(struct shim *s);

static void task_free(struct task *t)
{
        struct task_manager *tm = t->tm;
        for (struct task **pp = &tm->tasks; *pp; pp = &(*pp)->next)
                if (*pp == t) {
                        *pp = t->next;
                        break;
                }
        if (t->log)
                uv_close((uv_handle_t *)t->log, log_close_cb);
        if (t->shim)
                shim_unref_task(t->shim);
        runtime_bundle_free(t->bundle);
        free(t->ns);
        free(t->id);
        free(t->binary);
        free(t);
}

static struct task *task_new(struct task_manager *tm, const char *ns, const char *id)
{
        struct task *t = xcalloc(1, sizeof(*t));
        t->tm = tm;
        t->ns = xstrdup(ns);
        t->id = xstrdup(id);
        t->next = tm->tasks;
        tm->tasks = t;
        return t;
}

bool task_manager_exists(const struct task_manager *tm, const char *ns, const char *id)
{
        const struct task *t = task_find(tm, ns, id);
        return t && t->state != TASK_CREATING;
}

void task_manager_foreach(const struct task_manager *tm, const char *ns,
                          void (*fn)(const char *ns, const char *id, void *userdata), void *userdata)
{
        for (struct task *t = tm->tasks; t; t = t->next)
                if (t->state == TASK_READY && (!ns || strcmp(ns, t->ns) == 0))
                        fn(t->ns, t->id, userdata);
}

/* --- shim log relay: containerd copies each shim's log fifo to its own stderr --- */

static void log_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
        (void)h;
        (void)suggested;
        static char scratch[16384]; /* loop thread only; consumed synchronously in log_read_cb */
        *buf = uv_buf_init(scratch, sizeof(scratch));
}

static void log_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
        (void)s;
        if (n > 0)
                (void)fs_write_all(STDERR_FILENO, buf->base, (size_t)n);
        /* EOF/errors: the fifo is opened O_RDWR, so EOF never happens; the handle is closed with the task. */
}

static void task_attach_log(struct task *t, int fd)
{
        if (fd < 0)
                return;
        uv_pipe_t *p = xcalloc(1, sizeof(*p));
        if (uv_pipe_init(t->tm->loop, p, 0) < 0 || uv_pipe_open(p, fd) < 0) {
                (void)close(fd);
                free(p);
                return;
        }
        t->log = p;
        (void)uv_read_start((uv_stream_t *)p, log_alloc_cb, log_read_cb);
}

/* --- shims --- */

static void cleanup_dead_task(struct task *t);
static void removal_shim_gone(struct removal *rm);

static void shim_close_cb(struct ttrpc_client *c, void *data)
{
        (void)c;
        struct shim *s = data;
        s->connected = false;
        if (s->closing) {
                /* The shim we shut down has exited: a task waiting for its ns/id may start now. */
                if (s->removal)
                        removal_shim_gone(s->removal);
                return;
        }
        /* The shim died (or closed on us) without being asked: clean up every task it served, as containerd's
         * cleanupAfterDeadShim does. */
        log_fields(LOG_LEVEL_WARN, (struct log_field[]){{"address", s->address}, {NULL, NULL}},
                   "shim disconnected unexpectedly");
        struct task_manager *tm = s->tm;
        for (struct task *t = tm->tasks, *next; t; t = next) {
                next = t->next;
                if (t->shim == s && t->state == TASK_READY)
                        cleanup_dead_task(t);
        }
}

static struct shim *shim_find(struct task_manager *tm, const char *address)
{
        for (struct shim *s = tm->shims; s; s = s->next)
                if (strcmp(s->address, address) == 0 && s->connected && !s->closing)
                        return s;
        return NULL;
}

static void shim_unref_task(struct shim *s)
{
        if (s->ntasks > 0)
                s->ntasks--;
        if (s->ntasks > 0)
                return;
        struct task_manager *tm = s->tm;
        for (struct shim **pp = &tm->shims; *pp; pp = &(*pp)->next)
                if (*pp == s) {
                        *pp = s->next;
                        break;
                }
        s->closing = true;
        if (s->client)
                ttrpc_client_free(s->client);
        free(s->address);
        free(s);
}

struct connect_req {
        struct task_manager *tm;
        struct shim *shim;
        void (*cb)(struct shim *s, int r, void *data);
        void *data;
};

static void shim_connected_cb(struct ttrpc_client *c, int r, void *data)
{
        (void)c;
        struct connect_req *cr = data;
        if (cr->tm->closing) {
                cr->cb(NULL, -ECANCELED, cr->data);
                free(cr);
                return;
        }
        cr->shim->connected = r >= 0;
        cr->cb(cr->shim, r, cr->data);
        free(cr);
}

struct defer {
        uv_timer_t timer;
        struct connect_req *cr;
};

static void defer_closed(uv_handle_t *h)
{
        struct defer *d = h->data;
        struct task_manager *tm = d->cr->tm;
        free(d->cr);
        free(d);
        (void)job_end(tm);
        tm_release(tm);
}

static void defer_fire(uv_timer_t *t)
{
        struct defer *d = t->data;
        struct connect_req *cr = d->cr;
        uv_close((uv_handle_t *)&d->timer, defer_closed);
        /* Closing: the shim may be gone; the callback only releases its request. */
        if (cr->tm->closing)
                cr->cb(NULL, -ECANCELED, cr->data);
        else
                cr->cb(cr->shim, cr->shim->connected ? 0 : -ECONNRESET, cr->data);
}

/* Returns (in *ret) a shim for the address with a task reference taken: an existing connected one (tasks of
 * one group share a shim) or a new connecting one. cb runs later on the loop, once connected or on failure
 * (then the caller drops its reference with shim_unref_task). */
static int shim_get(struct task_manager *tm, const char *address, void (*cb)(struct shim *, int, void *), void *data,
                    struct shim **ret, struct error **err)
{
        struct connect_req *cr = xcalloc(1, sizeof(*cr));
        cr->tm = tm;
        cr->cb = cb;
        cr->data = data;
        struct shim *s = shim_find(tm, address);
        if (s) {
                s->ntasks++;
                cr->shim = s;
                struct defer *d = xcalloc(1, sizeof(*d));
                d->cr = cr;
                tm->jobs++;
                uv_timer_init(tm->loop, &d->timer);
                d->timer.data = d;
                uv_timer_start(&d->timer, defer_fire, 0, 0);
                *ret = s;
                return 0;
        }
        s = xcalloc(1, sizeof(*s));
        s->tm = tm;
        s->address = xstrdup(address);
        s->ntasks = 1;
        s->next = tm->shims;
        tm->shims = s;
        cr->shim = s;
        int r = ttrpc_client_connect(tm->loop, address, shim_connected_cb, cr, &s->client, err);
        if (r < 0) {
                free(cr);
                s->client = NULL;
                shim_unref_task(s);
                return r;
        }
        ttrpc_client_set_close_cb(s->client, shim_close_cb, s);
        *ret = s;
        return 0;
}

/* --- create --- */

struct create_op {
        struct task_manager *tm;
        struct task *task; /* never touched once tm->closing: task_manager_free() has freed it */
        task_create_fn cb;
        void *userdata;
        /* inputs (worker) */
        char *ns, *id, *binary;
        uint8_t *opts;
        size_t opts_len;
        uint8_t *spec;
        size_t spec_len;
        Containerd__Task__V2__CreateTaskRequest *req;
        /* outputs (worker) */
        int r;
        struct error *err;
        struct runtime_bundle *bundle;
        char *address;
        int log_fd;
        struct create_op *next_waiting; /* in a removal's waiting list */
};

static void create_op_free(struct create_op *op)
{
        free(op->ns);
        free(op->id);
        free(op->binary);
        free(op->opts);
        free(op->spec);
        if (op->req)
                containerd__task__v2__create_task_request__free_unpacked(op->req, NULL);
        error_free(&op->err);
        runtime_bundle_free(op->bundle);
        free(op->address);
        if (op->log_fd >= 0)
                (void)close(op->log_fd);
        free(op);
}

/* The manager is closing: the caller hears about it, the op goes. (A shim already started keeps running, as
 * on any daemon stop; the next start re-adopts it.) */
static void create_cancel(struct create_op *op)
{
        struct error *e = NULL;
        error_set(&e, ECANCELED, "task manager closed");
        op->cb(-ECANCELED, 0, e, op->userdata);
        error_free(&e);
        create_op_free(op);
}

static struct runtime_shim_cmd shim_cmd(const struct task_manager *tm, const char *binary, const char *ns,
                                        const char *id, const char *bundle)
{
        return (struct runtime_shim_cmd){.binary = binary, .ns = ns, .address = tm->address,
                                         .ttrpc_address = tm->ttrpc_address, .publish_binary = tm->publish_binary,
                                         .id = id, .bundle = bundle, .debug = tm->debug};
}

static void create_work(uv_work_t *w)
{
        struct create_op *op = w->data;
        struct task_manager *tm = op->tm;
        op->r = runtime_bundle_new(tm->state_dir, tm->root_dir, op->ns, op->id, op->spec, op->spec_len, &op->bundle,
                                   &op->err);
        if (op->r < 0)
                return;
        op->r = runtime_bundle_open_log(op->bundle, &op->err);
        if (op->r < 0)
                goto fail;
        op->log_fd = op->r;
        struct runtime_shim_cmd c = shim_cmd(tm, op->binary, op->ns, op->id, op->bundle->path);
        op->r = runtime_shim_start(&c, op->opts, op->opts_len, &op->address, &op->err);
        if (op->r < 0)
                goto fail;
        op->r = runtime_bundle_write(op->bundle, "shim-binary-path", op->binary, &op->err);
        if (op->r < 0)
                goto fail;
        return;
fail:
        (void)runtime_bundle_delete(op->bundle, NULL);
}

static void create_finish(struct create_op *op, int r, const struct error *e, uint32_t pid)
{
        struct task *t = op->task;
        if (r < 0) {
                op->cb(r, 0, e, op->userdata);
                task_free(t);
        } else {
                t->state = TASK_READY;
                t->pid = pid;
                op->cb(0, pid, NULL, op->userdata);
        }
        create_op_free(op);
}

struct cleanup_op {
        struct task_manager *tm;
        struct runtime_bundle *bundle;
        char *binary;
        bool run_delete; /* the shim's `delete` subcommand (dead shim) */
        int r;
        struct error *err;
        struct runtime_shim_exit exit;
        /* runs on the loop afterwards; must check c->tm->closing before touching any task */
        void (*done)(struct cleanup_op *op);
        void *data;
};

static void cleanup_work(uv_work_t *w)
{
        struct cleanup_op *op = w->data;
        if (op->run_delete && op->binary) {
                struct runtime_shim_cmd c =
                        shim_cmd(op->tm, op->binary, op->bundle->ns, op->bundle->id, op->bundle->path);
                op->r = runtime_shim_delete(&c, &op->exit, &op->err);
        }
        int r = runtime_bundle_delete(op->bundle, op->r < 0 ? NULL : &op->err);
        if (op->r >= 0 && r < 0)
                op->r = r;
}

static void cleanup_after(uv_work_t *w, int status)
{
        (void)status;
        struct cleanup_op *op = w->data;
        struct task_manager *tm = op->tm;
        free(w);
        (void)job_end(tm);
        if (op->done)
                op->done(op);
        runtime_bundle_free(op->bundle);
        free(op->binary);
        error_free(&op->err);
        free(op);
        tm_release(tm);
}

/* done may be NULL. */
static void queue_cleanup(struct task_manager *tm, struct runtime_bundle *bundle /* taken */, const char *binary,
                          bool run_delete, void (*done)(struct cleanup_op *), void *data)
{
        struct cleanup_op *op = xcalloc(1, sizeof(*op));
        op->tm = tm;
        op->bundle = bundle;
        op->binary = binary ? xstrdup(binary) : NULL;
        op->run_delete = run_delete;
        op->done = done;
        op->data = data;
        queue_job(tm, op, cleanup_work, cleanup_after);
}

static void ignore_reply(int r, ProtobufCMessage *resp, const struct error *e, void *userdata)
{
        (void)r;
        (void)e;
        (void)userdata;
        if (resp)
                protobuf_c_message_free_unpacked(resp, NULL);
}

static void create_reply_cb(int r, ProtobufCMessage *resp, const struct error *e, void *userdata)
{
        struct create_op *op = userdata;
        if (op->tm->closing) {
                if (resp)
                        protobuf_c_message_free_unpacked(resp, NULL);
                create_cancel(op);
                return;
        }
        struct task *t = op->task;
        if (r < 0) {
                /* The runtime refused: shut the shim down if it serves nothing else and remove the bundle. */
                struct error *copy = NULL;
                if (e)
                        error_set_literal(&copy, e->code, error_str(e));
                struct shim *s = t->shim;
                t->shim = NULL;
                if (s && s->ntasks == 1 && s->connected) {
                        s->closing = true;
                        Containerd__Task__V2__ShutdownRequest sr = CONTAINERD__TASK__V2__SHUTDOWN_REQUEST__INIT;
                        sr.id = t->id;
                        (void)ttrpc_client_call(s->client, TASK_SERVICE, "Shutdown", &sr.base, NULL, NULL,
                                                SHUTDOWN_TIMEOUT_MS, ignore_reply, NULL);
                }
                if (s)
                        shim_unref_task(s);
                queue_cleanup(t->tm, TAKE_PTR(t->bundle), t->binary, false, NULL, NULL);
                create_finish(op, r, copy ? copy : e, 0);
                error_free(&copy);
                return;
        }
        Containerd__Task__V2__CreateTaskResponse *cr = (Containerd__Task__V2__CreateTaskResponse *)resp;
        uint32_t pid = cr ? cr->pid : 0;
        if (resp)
                protobuf_c_message_free_unpacked(resp, NULL);
        create_finish(op, 0, NULL, pid);
}

static void create_connected(struct shim *s, int r, void *data)
{
        struct create_op *op = data;
        if (op->tm->closing) {
                create_cancel(op);
                return;
        }
        struct task *t = op->task;
        if (r < 0) {
                struct error *e = NULL;
                error_set(&e, -r, "connect to shim %s", s->address);
                t->shim = NULL;
                shim_unref_task(s);
                queue_cleanup(t->tm, TAKE_PTR(t->bundle), t->binary, true, NULL, NULL);
                create_finish(op, -(e->code), e, 0);
                error_free(&e);
                return;
        }
        struct error *e = NULL;
        r = ttrpc_client_call(s->client, TASK_SERVICE, "Create", &op->req->base,
                              &containerd__task__v2__create_task_response__descriptor, NULL, CREATE_TIMEOUT_MS,
                              create_reply_cb, op);
        if (r < 0) {
                error_set(&e, -r, "create task");
                create_reply_cb(r, NULL, e, op);
                error_free(&e);
        }
}

/* Replaces a string field of an unpacked protobuf-c message. Absent strings point at the shared
 * protobuf_c_empty_string, which must not be freed; free_unpacked later frees ours with free(). */
static void replace_string(char **field, const char *value)
{
        if (*field && *field != protobuf_c_empty_string)
                free(*field);
        *field = xstrdup(value);
}

static void create_after(uv_work_t *w, int status)
{
        (void)status;
        struct create_op *op = w->data;
        struct task_manager *tm = op->tm;
        free(w);
        if (job_end(tm)) {
                create_cancel(op);
                tm_release(tm);
                return;
        }
        struct task *t = op->task;
        if (op->r < 0) {
                create_finish(op, op->r, op->err, 0);
                return;
        }
        t->bundle = TAKE_PTR(op->bundle);
        task_attach_log(t, TAKE_FD(op->log_fd));
        /* The request goes out with our bundle path and the task id, whatever the caller had there. */
        replace_string(&op->req->id, t->id);
        replace_string(&op->req->bundle, t->bundle->path);
        struct error *e = NULL;
        /* shim_get takes a task reference; t->shim is set before the callback can run. */
        int r = shim_get(t->tm, op->address, create_connected, op, &t->shim, &e);
        if (r < 0) {
                queue_cleanup(t->tm, TAKE_PTR(t->bundle), t->binary, true, NULL, NULL);
                create_finish(op, r, e, 0);
                error_free(&e);
        }
}

static struct removal *removal_find(const struct task_manager *tm, const char *ns, const char *id)
{
        for (struct removal *rm = tm->removals; rm; rm = rm->next)
                if (strcmp(rm->ns, ns) == 0 && strcmp(rm->id, id) == 0)
                        return rm;
        return NULL;
}

int task_manager_create(struct task_manager *tm, const struct task_create_params *p, task_create_fn cb,
                        void *userdata, struct error **err)
{
        if (task_find(tm, p->ns, p->id))
                return error_set(err, EEXIST, "task %s", p->id);
        _cleanup_free_ char *binary = NULL;
        int r = runtime_shim_binary_find(p->runtime, tm->self_dir, &binary, err);
        if (r < 0)
                return r;
        /* Own a private copy of the request: it outlives the caller's message. */
        size_t n = protobuf_c_message_get_packed_size(p->create_req);
        _cleanup_free_ uint8_t *buf = xmalloc(n);
        protobuf_c_message_pack(p->create_req, buf);
        Containerd__Task__V2__CreateTaskRequest *req =
                containerd__task__v2__create_task_request__unpack(NULL, n, buf);
        if (!req)
                return error_set(err, EINVAL, "create task request");

        struct task *t = task_new(tm, p->ns, p->id);
        t->binary = xstrdup(binary);
        struct create_op *op = xcalloc(1, sizeof(*op));
        op->tm = tm;
        op->task = t;
        op->cb = cb;
        op->userdata = userdata;
        op->ns = xstrdup(p->ns);
        op->id = xstrdup(p->id);
        op->binary = TAKE_PTR(binary);
        op->opts = p->runtime_options_len ? xmemdup(p->runtime_options, p->runtime_options_len) : NULL;
        op->opts_len = p->runtime_options_len;
        op->spec = xmemdup(p->spec, p->spec_len);
        op->spec_len = p->spec_len;
        op->req = req;
        op->log_fd = -1;
        struct removal *rm = removal_find(tm, p->ns, p->id);
        if (rm) {
                /* The previous task of this id still has its shim exiting: start once it is gone. */
                op->next_waiting = rm->waiting;
                rm->waiting = op;
                return 0;
        }
        queue_job(tm, op, create_work, create_after);
        return 0;
}

/* --- calls --- */

int task_manager_call(struct task_manager *tm, const char *ns, const char *id, const char *method,
                      const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc, uint32_t timeout_ms,
                      ttrpc_reply_fn cb, void *userdata, struct error **err)
{
        struct task *t = task_find(tm, ns, id);
        if (!t || t->state == TASK_CREATING)
                return error_set(err, ENOENT, "task %s", id);
        if (!t->shim || !t->shim->connected)
                return error_set(err, EAGAIN, "shim of task %s is not connected", id);
        int r = ttrpc_client_call(t->shim->client, TASK_SERVICE, method, req, resp_desc, NULL, timeout_ms, cb,
                                  userdata);
        if (r < 0)
                return error_set(err, -r, "%s task %s", method, id);
        return 0;
}

/* --- delete --- */

struct delete_op {
        struct task_manager *tm;
        struct task *task; /* never touched once tm->closing */
        task_delete_fn cb;
        void *userdata;
        struct task_delete_result res;
        /* the retire job (worker) */
        struct runtime_bundle *bundle;
        int r;
        struct error *err;
};

static void delete_cancel(struct delete_op *op)
{
        struct error *e = NULL;
        error_set(&e, ECANCELED, "task manager closed");
        op->cb(-ECANCELED, NULL, e, op->userdata);
        error_free(&e);
        runtime_bundle_free(op->bundle);
        error_free(&op->err);
        free(op);
}

/* Dead-shim path: the exit status comes from the shim's `delete` subcommand. */
static void delete_cleanup_done(struct cleanup_op *c)
{
        struct delete_op *op = c->data;
        if (c->tm->closing) {
                delete_cancel(op);
                return;
        }
        struct task *t = op->task;
        if (c->run_delete) {
                op->res = (struct task_delete_result){.pid = c->exit.pid, .exit_status = c->exit.exit_status,
                                                      .exited_at_sec = c->exit.exited_at_sec,
                                                      .exited_at_nsec = c->exit.exited_at_nsec};
                if (c->r < 0 && op->res.exit_status == 0)
                        op->res.exit_status = 255;
        }
        /* Bundle removal problems are logged, not returned: the task is gone either way. */
        if (c->r < 0 && c->err)
                log_fields(LOG_LEVEL_WARN, (struct log_field[]){{"id", t->id}, {"error", error_str(c->err)}, {NULL, NULL}},
                           "cleanup of task bundle");
        op->cb(0, &op->res, NULL, op->userdata);
        task_free(t);
        free(op);
}

static void removal_finish(struct removal *rm);

static void removal_timer_closed(uv_handle_t *h)
{
        struct task_manager *tm = h->data;
        free(h);
        (void)job_end(tm);
        tm_release(tm);
}

/* The shim exited (its connection closed), or did not within the timeout: drop our reference, which closes
 * the connection if it is still open. */
static void removal_shim_gone(struct removal *rm)
{
        struct shim *s = TAKE_PTR(rm->shim);
        if (s) {
                s->removal = NULL;
                shim_unref_task(s);
        }
        removal_finish(rm);
}

static void removal_timeout(uv_timer_t *timer)
{
        struct removal *rm = timer->data;
        log_fields(LOG_LEVEL_WARN, (struct log_field[]){{"id", rm->id}, {NULL, NULL}},
                   "shim did not exit after shutdown");
        removal_shim_gone(rm);
}

static void removal_free(struct removal *rm)
{
        struct task_manager *tm = rm->tm;
        for (struct removal **pp = &tm->removals; *pp; pp = &(*pp)->next)
                if (*pp == rm) {
                        *pp = rm->next;
                        break;
                }
        if (rm->timer) {
                rm->timer->data = tm;
                uv_close((uv_handle_t *)rm->timer, removal_timer_closed);
        }
        runtime_bundle_free(rm->trash); /* only when closing: recovery empties the trash */
        free(rm->ns);
        free(rm->id);
        free(rm);
}

/* Starts the creates that waited for this ns/id. */
static void removal_finish(struct removal *rm)
{
        struct task_manager *tm = rm->tm;
        struct create_op *op = rm->waiting;
        if (rm->trash)
                queue_cleanup(tm, TAKE_PTR(rm->trash), NULL, false, NULL, NULL);
        removal_free(rm);
        while (op) {
                struct create_op *next = op->next_waiting;
                op->next_waiting = NULL;
                queue_job(tm, op, create_work, create_after);
                op = next;
        }
}

static void removal_start(struct task_manager *tm, const struct task *t, struct shim *s)
{
        struct removal *rm = xcalloc(1, sizeof(*rm));
        rm->tm = tm;
        rm->ns = xstrdup(t->ns);
        rm->id = xstrdup(t->id);
        rm->shim = s;
        s->removal = rm;
        rm->next = tm->removals;
        tm->removals = rm;
        rm->timer = xmalloc(sizeof(*rm->timer));
        uv_timer_init(tm->loop, rm->timer);
        rm->timer->data = rm;
        tm->jobs++;
        uv_timer_start(rm->timer, removal_timeout, SHUTDOWN_TIMEOUT_MS, 0);
}

static void retire_work(uv_work_t *w)
{
        struct delete_op *op = w->data;
        op->r = runtime_bundle_retire(op->bundle, &op->err);
}

static void retire_after(uv_work_t *w, int status)
{
        (void)status;
        struct delete_op *op = w->data;
        struct task_manager *tm = op->tm;
        free(w);
        if (job_end(tm)) {
                delete_cancel(op);
                tm_release(tm);
                return;
        }
        struct task *t = op->task;
        if (op->r < 0)
                log_fields(LOG_LEVEL_WARN,
                           (struct log_field[]){{"id", t->id}, {"error", error_str(op->err)}, {NULL, NULL}},
                           "cleanup of task bundle");
        op->cb(0, &op->res, NULL, op->userdata);
        task_free(t);
        /* The trashed copy goes in the background (rmdir alone costs milliseconds on some filesystems), once
         * the shim, whose cwd it is, has exited. */
        if (op->r > 0) {
                struct removal *rm = removal_find(tm, op->bundle->ns, op->bundle->id);
                if (rm && !rm->trash)
                        rm->trash = TAKE_PTR(op->bundle);
                else
                        queue_cleanup(tm, TAKE_PTR(op->bundle), NULL, false, NULL, NULL);
        }
        runtime_bundle_free(op->bundle);
        error_free(&op->err);
        free(op);
}

static void delete_reply_cb(int r, ProtobufCMessage *resp, const struct error *e, void *userdata)
{
        struct delete_op *op = userdata;
        struct task_manager *tm = op->tm;
        if (tm->closing) {
                if (resp)
                        protobuf_c_message_free_unpacked(resp, NULL);
                delete_cancel(op);
                return;
        }
        struct task *t = op->task;
        if (r < 0) {
                if (r == -ECONNRESET || r == -ECANCELED) {
                        /* The shim went away under us: clean up as for a dead shim. */
                        queue_cleanup(tm, TAKE_PTR(t->bundle), t->binary, true, delete_cleanup_done, op);
                        return;
                }
                t->state = TASK_READY;
                op->cb(r, NULL, e, op->userdata);
                free(op);
                return;
        }
        Containerd__Task__V2__DeleteResponse *dr = (Containerd__Task__V2__DeleteResponse *)resp;
        op->res.pid = dr->pid;
        op->res.exit_status = dr->exit_status;
        if (dr->exited_at) {
                op->res.exited_at_sec = dr->exited_at->seconds;
                op->res.exited_at_nsec = dr->exited_at->nanos;
        }
        protobuf_c_message_free_unpacked(resp, NULL);
        /* Shut the shim down if this was its last task. Its exit is awaited by a removal record, not by the
         * caller (containerd waits for it inside Delete). */
        struct shim *s = TAKE_PTR(t->shim);
        if (s && s->ntasks == 1 && s->connected) {
                s->closing = true;
                removal_start(tm, t, s);
                Containerd__Task__V2__ShutdownRequest sr = CONTAINERD__TASK__V2__SHUTDOWN_REQUEST__INIT;
                sr.id = t->id;
                if (ttrpc_client_call(s->client, TASK_SERVICE, "Shutdown", &sr.base, NULL, NULL, SHUTDOWN_TIMEOUT_MS,
                                      ignore_reply, NULL) < 0)
                        removal_shim_gone(s->removal);
        } else if (s)
                shim_unref_task(s);
        /* Move the bundle aside (a rename) and answer; it is removed in the background. */
        op->bundle = TAKE_PTR(t->bundle);
        queue_job(tm, op, retire_work, retire_after);
}

int task_manager_delete(struct task_manager *tm, const char *ns, const char *id, task_delete_fn cb,
                        void *userdata, struct error **err)
{
        struct task *t = task_find(tm, ns, id);
        if (!t || t->state != TASK_READY)
                return error_set(err, t ? EBUSY : ENOENT, "task %s", id);
        struct delete_op *op = xcalloc(1, sizeof(*op));
        op->tm = tm;
        op->task = t;
        op->cb = cb;
        op->userdata = userdata;
        t->state = TASK_DELETING;
        if (!t->shim || !t->shim->connected) {
                queue_cleanup(tm, TAKE_PTR(t->bundle), t->binary, true, delete_cleanup_done, op);
                return 0;
        }
        Containerd__Task__V2__DeleteRequest dr = CONTAINERD__TASK__V2__DELETE_REQUEST__INIT;
        dr.id = t->id;
        int r = ttrpc_client_call(t->shim->client, TASK_SERVICE, "Delete", &dr.base,
                                  &containerd__task__v2__delete_response__descriptor, NULL, 10000, delete_reply_cb,
                                  op);
        if (r < 0) {
                t->state = TASK_READY;
                free(op);
                return error_set(err, -r, "delete task %s", id);
        }
        return 0;
}

/* --- dead shims --- */

static void dead_cleanup_done(struct cleanup_op *c)
{
        if (c->tm->closing)
                return;
        struct task *t = c->data;
        struct task_manager *tm = t->tm;
        uint32_t status = c->r < 0 ? 255 : c->exit.exit_status;
        if (tm->exit_cb)
                tm->exit_cb(t->ns, t->id, c->exit.pid ? c->exit.pid : t->pid, status, c->exit.exited_at_sec,
                            c->exit.exited_at_nsec, tm->exit_data);
        task_free(t);
}

static void cleanup_dead_task(struct task *t)
{
        t->state = TASK_DELETING;
        queue_cleanup(t->tm, TAKE_PTR(t->bundle), t->binary, true, dead_cleanup_done, t);
}

/* --- recovery --- */

struct recover_ctx {
        struct task_manager *tm;
        void (*done_cb)(int adopted, int cleaned, void *userdata);
        void *userdata;
        int pending, adopted, cleaned;
        bool scanning;
};

struct recover_item {
        struct recover_ctx *rc;
        struct task *task;
        char *address;
        int log_fd;
        bool empty; /* no address: the shim never started */
};

struct recover_scan {
        struct recover_ctx *rc;
        struct recover_item **items;
        size_t n;
};

static void recover_maybe_done(struct recover_ctx *rc)
{
        if (rc->pending > 0 || rc->scanning)
                return;
        if (rc->done_cb && !rc->tm->closing)
                rc->done_cb(rc->adopted, rc->cleaned, rc->userdata);
        free(rc);
}

static void recover_item_closing(struct recover_item *it)
{
        struct recover_ctx *rc = it->rc;
        rc->pending--;
        free(it->address);
        free(it);
        recover_maybe_done(rc);
}

static void recover_dead_done(struct cleanup_op *c)
{
        struct recover_item *it = c->data;
        if (c->tm->closing) {
                recover_item_closing(it);
                return;
        }
        struct recover_ctx *rc = it->rc;
        struct task *t = it->task;
        struct task_manager *tm = t->tm;
        uint32_t status = c->r < 0 ? 255 : c->exit.exit_status;
        if (tm->exit_cb)
                tm->exit_cb(t->ns, t->id, c->exit.pid, status, c->exit.exited_at_sec, c->exit.exited_at_nsec,
                            tm->exit_data);
        task_free(t);
        rc->cleaned++;
        rc->pending--;
        free(it->address);
        free(it);
        recover_maybe_done(rc);
}

static void recover_fail(struct recover_item *it)
{
        struct task *t = it->task;
        t->state = TASK_DELETING;
        if (t->shim) {
                struct shim *s = t->shim;
                t->shim = NULL;
                shim_unref_task(s);
        }
        queue_cleanup(t->tm, TAKE_PTR(t->bundle), t->binary, t->binary != NULL, recover_dead_done, it);
}

static void recover_connect_reply(int r, ProtobufCMessage *resp, const struct error *e, void *userdata)
{
        (void)e;
        struct recover_item *it = userdata;
        struct recover_ctx *rc = it->rc;
        if (rc->tm->closing) {
                if (resp)
                        protobuf_c_message_free_unpacked(resp, NULL);
                recover_item_closing(it);
                return;
        }
        if (r < 0) {
                recover_fail(it);
                return;
        }
        Containerd__Task__V2__ConnectResponse *cr = (Containerd__Task__V2__ConnectResponse *)resp;
        it->task->pid = cr->task_pid;
        it->task->state = TASK_READY;
        protobuf_c_message_free_unpacked(resp, NULL);
        rc->adopted++;
        rc->pending--;
        free(it->address);
        free(it);
        recover_maybe_done(rc);
}

static void recover_connected(struct shim *s, int r, void *data)
{
        struct recover_item *it = data;
        if (it->rc->tm->closing) {
                recover_item_closing(it);
                return;
        }
        if (r < 0) {
                recover_fail(it);
                return;
        }
        Containerd__Task__V2__ConnectRequest req = CONTAINERD__TASK__V2__CONNECT_REQUEST__INIT;
        req.id = it->task->id;
        const char *md[] = {"containerd-namespace-ttrpc", it->task->ns, NULL};
        r = ttrpc_client_call(s->client, TASK_SERVICE, "Connect", &req.base,
                              &containerd__task__v2__connect_response__descriptor, md, CONNECT_TIMEOUT_MS,
                              recover_connect_reply, it);
        if (r < 0)
                recover_fail(it);
}

/* Worker: list bundles, read their address/shim-binary-path, open log fifos, drop orphaned work dirs. */
static void recover_scan_work(uv_work_t *w)
{
        struct recover_scan *sc = w->data;
        struct task_manager *tm = sc->rc->tm;
        /* Bundles moved aside by deletes that a crash interrupted. */
        runtime_bundle_empty_trash(tm->state_dir, tm->root_dir);
        _cleanup_free_ char *base = xasprintf("%s/io.containerd.runtime.v2.task", tm->state_dir);
        _cleanup_closedir_ DIR *nsd = opendir(base);
        if (nsd) {
                struct dirent *nde;
                while ((nde = readdir(nsd))) {
                        if (nde->d_name[0] == '.')
                                continue;
                        _cleanup_free_ char *nsdir = xasprintf("%s/%s", base, nde->d_name);
                        _cleanup_closedir_ DIR *idd = opendir(nsdir);
                        if (!idd)
                                continue;
                        struct dirent *ide;
                        while ((ide = readdir(idd))) {
                                if (ide->d_name[0] == '.')
                                        continue;
                                _cleanup_free_ char *bdir = xasprintf("%s/%s", nsdir, ide->d_name);
                                if (rmdir(bdir) == 0) /* empty bundle dir: nothing to recover */
                                        continue;
                                struct runtime_bundle *b =
                                        runtime_bundle_load(tm->state_dir, tm->root_dir, nde->d_name, ide->d_name);
                                struct recover_item *it = xcalloc(1, sizeof(*it));
                                it->rc = sc->rc;
                                it->log_fd = -1;
                                it->task = xcalloc(1, sizeof(struct task));
                                it->task->tm = tm;
                                it->task->ns = xstrdup(nde->d_name);
                                it->task->id = xstrdup(ide->d_name);
                                it->task->bundle = b;
                                (void)runtime_bundle_read(b, "shim-binary-path", &it->task->binary, NULL);
                                if (runtime_bundle_read(b, "address", &it->address, NULL) < 0)
                                        it->empty = true;
                                else
                                        it->log_fd = runtime_bundle_open_log(b, NULL);
                                sc->items = xreallocarray(sc->items, sc->n + 1, sizeof(*sc->items));
                                sc->items[sc->n++] = it;
                        }
                }
        }
        /* Work dirs whose bundle is gone (containerd: cleanupWorkDirs). */
        _cleanup_free_ char *wbase = xasprintf("%s/io.containerd.runtime.v2.task", tm->root_dir);
        _cleanup_closedir_ DIR *wnd = opendir(wbase);
        if (!wnd)
                return;
        struct dirent *wde;
        while ((wde = readdir(wnd))) {
                if (wde->d_name[0] == '.')
                        continue;
                _cleanup_free_ char *wns = xasprintf("%s/%s", wbase, wde->d_name);
                int fd = open(wns, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0)
                        continue;
                _cleanup_closedir_ DIR *wd = fdopendir(fd);
                if (!wd) {
                        close(fd);
                        continue;
                }
                struct dirent *we;
                while ((we = readdir(wd))) {
                        if (we->d_name[0] == '.')
                                continue;
                        _cleanup_free_ char *bdir = xasprintf("%s/%s/%s", base, wde->d_name, we->d_name);
                        if (access(bdir, F_OK) < 0 && errno == ENOENT)
                                (void)fs_rm_rf_at(dirfd(wd), we->d_name, NULL);
                }
        }
}

static void recover_scan_after(uv_work_t *w, int status)
{
        (void)status;
        struct recover_scan *sc = w->data;
        free(w);
        struct recover_ctx *rc = sc->rc;
        struct task_manager *tm = rc->tm;
        if (job_end(tm)) {
                for (size_t i = 0; i < sc->n; i++) {
                        struct recover_item *it = sc->items[i];
                        struct task *t = it->task;
                        runtime_bundle_free(t->bundle);
                        free(t->ns);
                        free(t->id);
                        free(t->binary);
                        free(t);
                        if (it->log_fd >= 0)
                                (void)close(it->log_fd);
                        free(it->address);
                        free(it);
                }
                free(sc->items);
                free(sc);
                free(rc);
                tm_release(tm);
                return;
        }
        for (size_t i = 0; i < sc->n; i++) {
                struct recover_item *it = sc->items[i];
                struct task *t = it->task;
                t->state = TASK_CREATING;
                t->next = tm->tasks;
                tm->tasks = t;
                rc->pending++;
                task_attach_log(t, it->log_fd);
                if (it->empty) {
                        recover_fail(it);
                        continue;
                }
                struct error *e = NULL;
                if (shim_get(tm, it->address, recover_connected, it, &t->shim, &e) < 0) {
                        error_free(&e);
                        recover_fail(it);
                }
        }
        free(sc->items);
        free(sc);
        rc->scanning = false;
        recover_maybe_done(rc);
}

void task_manager_recover(struct task_manager *tm, void (*done_cb)(int adopted, int cleaned, void *userdata),
                          void *userdata)
{
        struct recover_ctx *rc = xcalloc(1, sizeof(*rc));
        rc->tm = tm;
        rc->done_cb = done_cb;
        rc->userdata = userdata;
        rc->scanning = true;
        struct recover_scan *sc = xcalloc(1, sizeof(*sc));
        sc->rc = rc;
        queue_job(tm, sc, recover_scan_work, recover_scan_after);
}

void task_manager_free(struct task_manager *tm)
{
        if (!tm)
                return;
        tm->closing = true;
        while (tm->removals) {
                struct removal *rm = tm->removals;
                struct create_op *op = TAKE_PTR(rm->waiting);
                struct shim *s = TAKE_PTR(rm->shim);
                removal_free(rm);
                if (s) {
                        s->removal = NULL;
                        shim_unref_task(s);
                }
                while (op) {
                        struct create_op *next = op->next_waiting;
                        create_cancel(op);
                        op = next;
                }
        }
        while (tm->tasks) {
                struct task *t = tm->tasks;
                if (t->shim)
                        t->shim->closing = true;
                task_free(t);
        }
        tm_release(tm);
}

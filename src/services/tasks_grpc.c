#include <errno.h>
#include <signal.h>
#include <string.h>

#include "github.com/containerd/containerd/api/services/tasks/v1/tasks.pb-c.h"
#include "github.com/containerd/containerd/runtime/v2/task/shim.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "metadata/containers.h"
#include "metadata/filters.h"
#include "runtime/task_manager.h"
#include "services/tasks.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/time.h"

#define STATE_TIMEOUT_MS 2000 /* containerd: State during Get/List */
#define CALL_TIMEOUT_MS 10000

typedef Containerd__V1__Types__Process Process;

/* One pending gRPC call waiting on a shim reply. */
struct tcall {
        struct grpc_call *call;
        struct services_ctx *ctx;
        char *ns;
        char *id;
        char *exec_id;
        /* List/Metrics fan-out */
        void (*finish)(struct tcall *t);
        size_t pending;
        size_t n;
        ProtobufCMessage **items;
        char **item_ids;
};

static struct tcall *tcall_new(struct grpc_call *call, struct services_ctx *ctx, const char *ns, const char *id,
                               const char *exec_id)
{
        struct tcall *t = xcalloc(1, sizeof(*t));
        t->call = grpc_call_ref(call);
        t->ctx = ctx;
        t->ns = xstrdup(ns);
        t->id = xstrdup(id ? id : "");
        t->exec_id = xstrdup(exec_id ? exec_id : "");
        return t;
}

static void tcall_free(struct tcall *t)
{
        grpc_call_unref(t->call);
        for (size_t i = 0; i < t->n; i++) {
                if (t->items[i])
                        protobuf_c_message_free_unpacked(t->items[i], NULL);
                free(t->item_ids[i]);
        }
        free(t->items);
        free(t->item_ids);
        free(t->ns);
        free(t->id);
        free(t->exec_id);
        free(t);
}

/* Common prologue: namespace, task manager. Returns false after failing the call. */
static bool prologue(struct grpc_call *call, struct services_ctx *ctx, const char **ret_ns)
{
        _cleanup_error_ struct error *err = NULL;
        int r = services_call_namespace(call, ret_ns, &err);
        if (r < 0) {
                grpc_call_fail(call, r, err);
                return false;
        }
        if (!ctx->tasks || !ctx->db) {
                grpc_call_finish(call, GRPC_UNAVAILABLE, "task service is not available");
                return false;
        }
        return true;
}

/* containerd answers a missing task with codes.NotFound "task <id> not found" (services/tasks/local.go). */
static bool require_task(struct grpc_call *call, struct services_ctx *ctx, const char *ns, const char *id)
{
        if (!id || !*id || !task_manager_exists(ctx->tasks, ns, id)) {
                char *m = xasprintf("task %s not found", id ? id : "");
                grpc_call_finish(call, GRPC_NOT_FOUND, m);
                free(m);
                return false;
        }
        return true;
}

static void ts_set(Google__Protobuf__Timestamp *ts, const Google__Protobuf__Timestamp *src)
{
        google__protobuf__timestamp__init(ts);
        if (src) {
                ts->seconds = src->seconds;
                ts->nanos = src->nanos;
        } else
                time_pb_set_unset(&ts->seconds, &ts->nanos);
}

/* --- generic forwarding: shim reply -> Empty or a converted response --- */

typedef void (*convert_fn)(struct tcall *t, ProtobufCMessage *shim_resp);

struct fwd {
        struct tcall *t;
        convert_fn convert;
};

static void fwd_reply(int r, ProtobufCMessage *resp, const struct error *e, void *userdata)
{
        struct fwd *f = userdata;
        struct tcall *t = f->t;
        if (!grpc_call_is_done(t->call)) {
                if (r < 0)
                        grpc_call_fail(t->call, r, e);
                else if (f->convert)
                        f->convert(t, resp);
                else {
                        Google__Protobuf__Empty empty = GOOGLE__PROTOBUF__EMPTY__INIT;
                        grpc_call_reply(t->call, &empty.base);
                }
        }
        if (resp)
                protobuf_c_message_free_unpacked(resp, NULL);
        tcall_free(t);
        free(f);
}

static void forward(struct grpc_call *call, struct services_ctx *ctx, const char *ns, const char *id,
                    const char *exec_id, const char *method, const ProtobufCMessage *shim_req,
                    const ProtobufCMessageDescriptor *resp_desc, uint32_t timeout_ms, convert_fn convert)
{
        struct fwd *f = xcalloc(1, sizeof(*f));
        f->t = tcall_new(call, ctx, ns, id, exec_id);
        f->convert = convert;
        _cleanup_error_ struct error *err = NULL;
        int r = task_manager_call(ctx->tasks, ns, id, method, shim_req, resp_desc, timeout_ms, fwd_reply, f, &err);
        if (r < 0) {
                grpc_call_fail(call, r, err);
                tcall_free(f->t);
                free(f);
        }
}

/* --- Create --- */

static void create_done(int r, uint32_t pid, const struct error *e, void *userdata)
{
        struct tcall *t = userdata;
        if (!grpc_call_is_done(t->call)) {
                if (r < 0)
                        grpc_call_fail(t->call, r, e);
                else {
                        Containerd__Services__Tasks__V1__CreateTaskResponse resp =
                                CONTAINERD__SERVICES__TASKS__V1__CREATE_TASK_RESPONSE__INIT;
                        resp.container_id = t->id;
                        resp.pid = pid;
                        grpc_call_reply(t->call, &resp.base);
                }
        }
        tcall_free(t);
}

static uint8_t *pack_any(const struct metadata_any *a, const Google__Protobuf__Any *override, size_t *ret_len)
{
        Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
        if (override)
                any = *override;
        else if (a && a->type_url) {
                any.type_url = a->type_url;
                any.value.data = a->value;
                any.value.len = a->len;
        } else {
                *ret_len = 0;
                return NULL;
        }
        size_t n = google__protobuf__any__get_packed_size(&any);
        uint8_t *buf = xmalloc(n ? n : 1);
        google__protobuf__any__pack(&any, buf);
        *ret_len = n;
        return buf;
}

static void on_create(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Tasks__V1__CreateTaskRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        const char *ns;
        if (!prologue(call, ctx, &ns))
                return;
        _cleanup_error_ struct error *err = NULL;
        struct metadata_container c;
        int r = metadata_container_get(ctx->db, ns, in->container_id ? in->container_id : "", &c, &err);
        if (r < 0) {
                grpc_call_fail(call, r, err);
                return;
        }
        if (task_manager_exists(ctx->tasks, ns, c.id)) {
                char *m = xasprintf("task %s: already exists", c.id);
                grpc_call_finish(call, GRPC_ALREADY_EXISTS, m);
                free(m);
                metadata_container_clear(&c);
                return;
        }
        if (in->checkpoint) {
                grpc_call_finish(call, GRPC_UNIMPLEMENTED, "restore from a checkpoint is not supported: not implemented");
                metadata_container_clear(&c);
                return;
        }
        if (!c.spec.type_url || c.spec.len == 0) {
                grpc_call_finish(call, GRPC_FAILED_PRECONDITION, "container has no spec: failed precondition");
                metadata_container_clear(&c);
                return;
        }
        /* Shim stdin gets TaskOptions if the request has them, else the container's runtime options. */
        size_t opts_len = 0;
        _cleanup_free_ uint8_t *opts = pack_any(&c.runtime_options, in->options, &opts_len);

        Containerd__Task__V2__CreateTaskRequest sreq = CONTAINERD__TASK__V2__CREATE_TASK_REQUEST__INIT;
        sreq.id = c.id;
        sreq.stdin = in->stdin;
        sreq.stdout = in->stdout;
        sreq.stderr = in->stderr;
        sreq.terminal = in->terminal;
        sreq.n_rootfs = in->n_rootfs;
        sreq.rootfs = in->rootfs;
        Google__Protobuf__Any topts = GOOGLE__PROTOBUF__ANY__INIT;
        if (in->options)
                sreq.options = in->options;
        else if (c.runtime_options.type_url) {
                topts.type_url = c.runtime_options.type_url;
                topts.value.data = c.runtime_options.value;
                topts.value.len = c.runtime_options.len;
                sreq.options = &topts;
        }
        struct task_create_params p = {
                .ns = ns,
                .id = c.id,
                .runtime = (in->runtime_path && *in->runtime_path) ? in->runtime_path : c.runtime_name,
                .runtime_options = opts,
                .runtime_options_len = opts_len,
                .spec = c.spec.value,
                .spec_len = c.spec.len,
                .create_req = &sreq.base,
        };
        struct tcall *t = tcall_new(call, ctx, ns, c.id, NULL);
        r = task_manager_create(ctx->tasks, &p, create_done, t, &err);
        if (r < 0) {
                grpc_call_fail(call, r, err);
                tcall_free(t);
        }
        metadata_container_clear(&c);
}

/* --- Start --- */

static void convert_start(struct tcall *t, ProtobufCMessage *resp)
{
        Containerd__Task__V2__StartResponse *sr = (void *)resp;
        Containerd__Services__Tasks__V1__StartResponse out = CONTAINERD__SERVICES__TASKS__V1__START_RESPONSE__INIT;
        out.pid = sr->pid;
        grpc_call_reply(t->call, &out.base);
}

static void on_start(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Tasks__V1__StartRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        const char *ns;
        if (!prologue(call, ctx, &ns) || !require_task(call, ctx, ns, in->container_id))
                return;
        Containerd__Task__V2__StartRequest sreq = CONTAINERD__TASK__V2__START_REQUEST__INIT;
        sreq.id = in->container_id;
        sreq.exec_id = in->exec_id;
        forward(call, ctx, ns, in->container_id, in->exec_id, "Start", &sreq.base,
                &containerd__task__v2__start_response__descriptor, CALL_TIMEOUT_MS * 3, convert_start);
}

/* --- Delete --- */

static void delete_done(int r, const struct task_delete_result *res, const struct error *e, void *userdata)
{
        struct tcall *t = userdata;
        if (!grpc_call_is_done(t->call)) {
                if (r < 0)
                        grpc_call_fail(t->call, r, e);
                else {
                        Containerd__Services__Tasks__V1__DeleteResponse out =
                                CONTAINERD__SERVICES__TASKS__V1__DELETE_RESPONSE__INIT;
                        Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
                        ts.seconds = res->exited_at_sec;
                        ts.nanos = res->exited_at_nsec;
                        out.id = t->id;
                        out.pid = res->pid;
                        out.exit_status = res->exit_status;
                        out.exited_at = &ts;
                        grpc_call_reply(t->call, &out.base);
                }
        }
        tcall_free(t);
}

static void on_delete(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Tasks__V1__DeleteTaskRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        const char *ns;
        if (!prologue(call, ctx, &ns) || !require_task(call, ctx, ns, in->container_id))
                return;
        struct tcall *t = tcall_new(call, ctx, ns, in->container_id, NULL);
        _cleanup_error_ struct error *err = NULL;
        int r = task_manager_delete(ctx->tasks, ns, in->container_id, delete_done, t, &err);
        if (r < 0) {
                grpc_call_fail(call, r, err);
                tcall_free(t);
        }
}

static void convert_delete_process(struct tcall *t, ProtobufCMessage *resp)
{
        Containerd__Task__V2__DeleteResponse *dr = (void *)resp;
        Containerd__Services__Tasks__V1__DeleteResponse out = CONTAINERD__SERVICES__TASKS__V1__DELETE_RESPONSE__INIT;
        Google__Protobuf__Timestamp ts;
        ts_set(&ts, dr->exited_at);
        out.id = t->exec_id;
        out.pid = dr->pid;
        out.exit_status = dr->exit_status;
        out.exited_at = &ts;
        grpc_call_reply(t->call, &out.base);
}

static void on_delete_process(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Tasks__V1__DeleteProcessRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        const char *ns;
        if (!prologue(call, ctx, &ns) || !require_task(call, ctx, ns, in->container_id))
                return;
        if (!in->exec_id || !*in->exec_id) {
                grpc_call_finish(call, GRPC_INVALID_ARGUMENT, "exec id is required: invalid argument");
                return;
        }
        Containerd__Task__V2__DeleteRequest sreq = CONTAINERD__TASK__V2__DELETE_REQUEST__INIT;
        sreq.id = in->container_id;
        sreq.exec_id = in->exec_id;
        forward(call, ctx, ns, in->container_id, in->exec_id, "Delete", &sreq.base,
                &containerd__task__v2__delete_response__descriptor, CALL_TIMEOUT_MS, convert_delete_process);
}

/* --- Get / List --- */

static Process *process_from_state(const char *container_id, const Containerd__Task__V2__StateResponse *s,
                                   Google__Protobuf__Timestamp *ts_storage)
{
        Process *p = xcalloc(1, sizeof(*p));
        containerd__v1__types__process__init(p);
        p->container_id = (char *)container_id;
        p->id = s->exec_id && *s->exec_id ? s->exec_id : (char *)container_id;
        p->pid = s->pid;
        p->status = s->status;
        p->stdin = s->stdin;
        p->stdout = s->stdout;
        p->stderr = s->stderr;
        p->terminal = s->terminal;
        p->exit_status = s->exit_status;
        ts_set(ts_storage, s->exited_at);
        p->exited_at = ts_storage;
        return p;
}

static void convert_get(struct tcall *t, ProtobufCMessage *resp)
{
        Google__Protobuf__Timestamp ts;
        Process *p = process_from_state(t->id, (Containerd__Task__V2__StateResponse *)resp, &ts);
        Containerd__Services__Tasks__V1__GetResponse out = CONTAINERD__SERVICES__TASKS__V1__GET_RESPONSE__INIT;
        out.process = p;
        grpc_call_reply(t->call, &out.base);
        free(p);
}

static void on_get(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Tasks__V1__GetRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        const char *ns;
        if (!prologue(call, ctx, &ns) || !require_task(call, ctx, ns, in->container_id))
                return;
        Containerd__Task__V2__StateRequest sreq = CONTAINERD__TASK__V2__STATE_REQUEST__INIT;
        sreq.id = in->container_id;
        sreq.exec_id = in->exec_id;
        forward(call, ctx, ns, in->container_id, in->exec_id, "State", &sreq.base,
                &containerd__task__v2__state_response__descriptor, STATE_TIMEOUT_MS, convert_get);
}

/* Fan-out over every task of the namespace (List: State; Metrics: Stats). */
struct fan_item {
        struct tcall *t;
        size_t index;
};

struct fan {
        struct tcall *t;
        const struct filter *filter;
};

static void fan_reply(int r, ProtobufCMessage *resp, const struct error *e, void *userdata)
{
        (void)e;
        struct fan_item *it = userdata;
        struct tcall *t = it->t;
        /* A task whose shim does not answer is left out, as containerd does for List. */
        if (r >= 0)
                t->items[it->index] = resp;
        else if (resp)
                protobuf_c_message_free_unpacked(resp, NULL);
        free(it);
        if (--t->pending == 0) {
                t->finish(t);
                tcall_free(t);
        }
}

static bool match_id(const char *const *path, size_t npath, const char **ret_value, void *userdata)
{
        if (npath == 1 && (strcmp(path[0], "id") == 0 || strcmp(path[0], "container_id") == 0)) {
                *ret_value = userdata;
                return true;
        }
        return false;
}

static void collect_id(const char *ns, const char *id, void *userdata)
{
        (void)ns;
        struct fan *f = userdata;
        struct tcall *t = f->t;
        if (f->filter && !filter_match(f->filter, match_id, (void *)id))
                return;
        t->item_ids = xreallocarray(t->item_ids, t->n + 1, sizeof(char *));
        t->item_ids[t->n++] = xstrdup(id);
}

static void fan_out(struct grpc_call *call, struct services_ctx *ctx, const char *ns, const char *method,
                    const ProtobufCMessageDescriptor *resp_desc, const struct filter *filter, void (*finish)(struct tcall *t))
{
        struct tcall *t = tcall_new(call, ctx, ns, NULL, NULL);
        struct fan f = {.t = t, .filter = filter};
        t->finish = finish;
        task_manager_foreach(ctx->tasks, ns, collect_id, &f);
        t->items = xcalloc(t->n + 1, sizeof(*t->items));
        t->pending = 1; /* held until every call is issued */
        for (size_t i = 0; i < t->n; i++) {
                struct fan_item *it = xcalloc(1, sizeof(*it));
                it->t = t;
                it->index = i;
                t->pending++;
                if (strcmp(method, "State") == 0) {
                        Containerd__Task__V2__StateRequest sreq = CONTAINERD__TASK__V2__STATE_REQUEST__INIT;
                        sreq.id = t->item_ids[i];
                        if (task_manager_call(ctx->tasks, ns, t->item_ids[i], method, &sreq.base, resp_desc,
                                              STATE_TIMEOUT_MS, fan_reply, it, NULL) < 0)
                                fan_reply(-EAGAIN, NULL, NULL, it);
                } else {
                        Containerd__Task__V2__StatsRequest sreq = CONTAINERD__TASK__V2__STATS_REQUEST__INIT;
                        sreq.id = t->item_ids[i];
                        if (task_manager_call(ctx->tasks, ns, t->item_ids[i], method, &sreq.base, resp_desc,
                                              CALL_TIMEOUT_MS, fan_reply, it, NULL) < 0)
                                fan_reply(-EAGAIN, NULL, NULL, it);
                }
        }
        struct fan_item *self = xcalloc(1, sizeof(*self));
        self->t = t;
        self->index = t->n; /* never stored: r < 0 */
        fan_reply(-1, NULL, NULL, self);
}

static void list_finish(struct tcall *t)
{
        if (grpc_call_is_done(t->call))
                return;
        Process **procs = xcalloc(t->n + 1, sizeof(*procs));
        Google__Protobuf__Timestamp *ts = xcalloc(t->n + 1, sizeof(*ts));
        size_t k = 0;
        for (size_t i = 0; i < t->n; i++)
                if (t->items[i])
                        procs[k++] = process_from_state(t->item_ids[i],
                                                        (Containerd__Task__V2__StateResponse *)t->items[i], &ts[i]);
        Containerd__Services__Tasks__V1__ListTasksResponse out = CONTAINERD__SERVICES__TASKS__V1__LIST_TASKS_RESPONSE__INIT;
        out.n_tasks = k;
        out.tasks = procs;
        grpc_call_reply(t->call, &out.base);
        for (size_t i = 0; i < k; i++)
                free(procs[i]);
        free(procs);
        free(ts);
}

static void on_list(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Tasks__V1__ListTasksRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        const char *ns;
        if (!prologue(call, ctx, &ns))
                return;
        struct filter *f = NULL;
        if (in->filter && *in->filter) {
                _cleanup_error_ struct error *err = NULL;
                char *fs[] = {in->filter, NULL};
                int r = filter_parse(fs, 1, &f, &err);
                if (r < 0) {
                        grpc_call_fail(call, r, err);
                        return;
                }
        }
        fan_out(call, ctx, ns, "State", &containerd__task__v2__state_response__descriptor, f, list_finish);
        filter_free(f);
}

/* --- Metrics --- */

static void metrics_finish(struct tcall *t)
{
        if (grpc_call_is_done(t->call))
                return;
        Containerd__Types__Metric *ms = xcalloc(t->n + 1, sizeof(*ms));
        Containerd__Types__Metric **ptrs = xcalloc(t->n + 1, sizeof(*ptrs));
        Google__Protobuf__Timestamp now = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
        time_now(&now.seconds, &now.nanos);
        size_t k = 0;
        for (size_t i = 0; i < t->n; i++) {
                Containerd__Task__V2__StatsResponse *sr = (void *)t->items[i];
                if (!sr)
                        continue;
                containerd__types__metric__init(&ms[k]);
                ms[k].timestamp = &now;
                ms[k].id = t->item_ids[i];
                ms[k].data = sr->stats;
                ptrs[k] = &ms[k];
                k++;
        }
        Containerd__Services__Tasks__V1__MetricsResponse out = CONTAINERD__SERVICES__TASKS__V1__METRICS_RESPONSE__INIT;
        out.n_metrics = k;
        out.metrics = ptrs;
        grpc_call_reply(t->call, &out.base);
        free(ms);
        free(ptrs);
}

static void on_metrics(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Tasks__V1__MetricsRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        const char *ns;
        if (!prologue(call, ctx, &ns))
                return;
        struct filter *f = NULL;
        if (in->n_filters) {
                _cleanup_error_ struct error *err = NULL;
                int r = filter_parse(in->filters, in->n_filters, &f, &err);
                if (r < 0) {
                        grpc_call_fail(call, r, err);
                        return;
                }
        }
        fan_out(call, ctx, ns, "Stats", &containerd__task__v2__stats_response__descriptor, f, metrics_finish);
        filter_free(f);
}

/* --- simple forwards --- */

static void on_kill(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Tasks__V1__KillRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        const char *ns;
        if (!prologue(call, ctx, &ns) || !require_task(call, ctx, ns, in->container_id))
                return;
        Containerd__Task__V2__KillRequest sreq = CONTAINERD__TASK__V2__KILL_REQUEST__INIT;
        sreq.id = in->container_id;
        sreq.exec_id = in->exec_id;
        sreq.signal = in->signal ? in->signal : SIGTERM;
        sreq.all = in->all;
        forward(call, ctx, ns, in->container_id, in->exec_id, "Kill", &sreq.base, NULL, CALL_TIMEOUT_MS, NULL);
}

static void on_exec(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Tasks__V1__ExecProcessRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        const char *ns;
        if (!prologue(call, ctx, &ns) || !require_task(call, ctx, ns, in->container_id))
                return;
        if (!in->exec_id || !*in->exec_id) {
                grpc_call_finish(call, GRPC_INVALID_ARGUMENT, "exec id cannot be empty: invalid argument");
                return;
        }
        Containerd__Task__V2__ExecProcessRequest sreq = CONTAINERD__TASK__V2__EXEC_PROCESS_REQUEST__INIT;
        sreq.id = in->container_id;
        sreq.exec_id = in->exec_id;
        sreq.stdin = in->stdin;
        sreq.stdout = in->stdout;
        sreq.stderr = in->stderr;
        sreq.terminal = in->terminal;
        sreq.spec = in->spec;
        forward(call, ctx, ns, in->container_id, in->exec_id, "Exec", &sreq.base, NULL, CALL_TIMEOUT_MS, NULL);
}

static void on_resize_pty(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Tasks__V1__ResizePtyRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        const char *ns;
        if (!prologue(call, ctx, &ns) || !require_task(call, ctx, ns, in->container_id))
                return;
        Containerd__Task__V2__ResizePtyRequest sreq = CONTAINERD__TASK__V2__RESIZE_PTY_REQUEST__INIT;
        sreq.id = in->container_id;
        sreq.exec_id = in->exec_id;
        sreq.width = in->width;
        sreq.height = in->height;
        forward(call, ctx, ns, in->container_id, in->exec_id, "ResizePty", &sreq.base, NULL, CALL_TIMEOUT_MS, NULL);
}

static void on_close_io(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Tasks__V1__CloseIORequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        const char *ns;
        if (!prologue(call, ctx, &ns) || !require_task(call, ctx, ns, in->container_id))
                return;
        Containerd__Task__V2__CloseIORequest sreq = CONTAINERD__TASK__V2__CLOSE_IOREQUEST__INIT;
        sreq.id = in->container_id;
        sreq.exec_id = in->exec_id;
        sreq.stdin = in->stdin;
        forward(call, ctx, ns, in->container_id, in->exec_id, "CloseIO", &sreq.base, NULL, CALL_TIMEOUT_MS, NULL);
}

static void on_pause(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Tasks__V1__PauseTaskRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        const char *ns;
        if (!prologue(call, ctx, &ns) || !require_task(call, ctx, ns, in->container_id))
                return;
        Containerd__Task__V2__PauseRequest sreq = CONTAINERD__TASK__V2__PAUSE_REQUEST__INIT;
        sreq.id = in->container_id;
        forward(call, ctx, ns, in->container_id, NULL, "Pause", &sreq.base, NULL, CALL_TIMEOUT_MS, NULL);
}

static void on_resume(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Tasks__V1__ResumeTaskRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        const char *ns;
        if (!prologue(call, ctx, &ns) || !require_task(call, ctx, ns, in->container_id))
                return;
        Containerd__Task__V2__ResumeRequest sreq = CONTAINERD__TASK__V2__RESUME_REQUEST__INIT;
        sreq.id = in->container_id;
        forward(call, ctx, ns, in->container_id, NULL, "Resume", &sreq.base, NULL, CALL_TIMEOUT_MS, NULL);
}

static void convert_pids(struct tcall *t, ProtobufCMessage *resp)
{
        Containerd__Task__V2__PidsResponse *pr = (void *)resp;
        Containerd__Services__Tasks__V1__ListPidsResponse out = CONTAINERD__SERVICES__TASKS__V1__LIST_PIDS_RESPONSE__INIT;
        out.n_processes = pr->n_processes;
        out.processes = pr->processes;
        grpc_call_reply(t->call, &out.base);
}

static void on_list_pids(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Tasks__V1__ListPidsRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        const char *ns;
        if (!prologue(call, ctx, &ns) || !require_task(call, ctx, ns, in->container_id))
                return;
        Containerd__Task__V2__PidsRequest sreq = CONTAINERD__TASK__V2__PIDS_REQUEST__INIT;
        sreq.id = in->container_id;
        forward(call, ctx, ns, in->container_id, NULL, "Pids", &sreq.base,
                &containerd__task__v2__pids_response__descriptor, CALL_TIMEOUT_MS, convert_pids);
}

static void on_checkpoint(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        (void)req;
        (void)userdata;
        grpc_call_finish(call, GRPC_UNIMPLEMENTED, "checkpoint is not supported by krill yet: not implemented");
}

static void on_update(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Tasks__V1__UpdateTaskRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        const char *ns;
        if (!prologue(call, ctx, &ns) || !require_task(call, ctx, ns, in->container_id))
                return;
        Containerd__Task__V2__UpdateTaskRequest sreq = CONTAINERD__TASK__V2__UPDATE_TASK_REQUEST__INIT;
        sreq.id = in->container_id;
        sreq.resources = in->resources;
        /* The two AnnotationsEntry types have the same layout (key, value). */
        sreq.n_annotations = in->n_annotations;
        sreq.annotations = (Containerd__Task__V2__UpdateTaskRequest__AnnotationsEntry **)in->annotations;
        forward(call, ctx, ns, in->container_id, NULL, "Update", &sreq.base, NULL, CALL_TIMEOUT_MS, NULL);
}

static void convert_wait(struct tcall *t, ProtobufCMessage *resp)
{
        Containerd__Task__V2__WaitResponse *wr = (void *)resp;
        Containerd__Services__Tasks__V1__WaitResponse out = CONTAINERD__SERVICES__TASKS__V1__WAIT_RESPONSE__INIT;
        Google__Protobuf__Timestamp ts;
        ts_set(&ts, wr->exited_at);
        out.exit_status = wr->exit_status;
        out.exited_at = &ts;
        grpc_call_reply(t->call, &out.base);
}

static void on_wait(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Tasks__V1__WaitRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        const char *ns;
        if (!prologue(call, ctx, &ns) || !require_task(call, ctx, ns, in->container_id))
                return;
        Containerd__Task__V2__WaitRequest sreq = CONTAINERD__TASK__V2__WAIT_REQUEST__INIT;
        sreq.id = in->container_id;
        sreq.exec_id = in->exec_id;
        /* No timeout: Wait lasts until the process exits (or the client cancels). */
        forward(call, ctx, ns, in->container_id, in->exec_id, "Wait", &sreq.base,
                &containerd__task__v2__wait_response__descriptor, 0, convert_wait);
}

void services_tasks_register(struct grpc_server *s, struct services_ctx *ctx)
{
#define P "/containerd.services.tasks.v1.Tasks/"
#define M(name, type, fn)                                                                                              \
        {P name, GRPC_METHOD_UNARY, &containerd__services__tasks__v1__##type##__descriptor, fn, NULL, ctx}
        const struct grpc_method methods[] = {
                M("Create", create_task_request, on_create),
                M("Start", start_request, on_start),
                M("Delete", delete_task_request, on_delete),
                M("DeleteProcess", delete_process_request, on_delete_process),
                M("Get", get_request, on_get),
                M("List", list_tasks_request, on_list),
                M("Kill", kill_request, on_kill),
                M("Exec", exec_process_request, on_exec),
                M("ResizePty", resize_pty_request, on_resize_pty),
                M("CloseIO", close_iorequest, on_close_io),
                M("Pause", pause_task_request, on_pause),
                M("Resume", resume_task_request, on_resume),
                M("ListPids", list_pids_request, on_list_pids),
                M("Checkpoint", checkpoint_task_request, on_checkpoint),
                M("Update", update_task_request, on_update),
                M("Metrics", metrics_request, on_metrics),
                M("Wait", wait_request, on_wait),
        };
#undef M
#undef P
        for (size_t i = 0; i < ELEMENTSOF(methods); i++)
                (void)grpc_server_add_method(s, &methods[i]);
}

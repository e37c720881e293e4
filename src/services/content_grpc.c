/* content.v1 gRPC adapter. Reads (Info, List, Status, ListStatuses, Read) run on the loop: LMDB readers never
 * block and blob reads are bounded by backpressure. Everything that writes (Update, Delete, Abort, every
 * Write step: ingest writes, fsync, commit) runs on the worker pool and answers from the loop. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "github.com/containerd/containerd/api/services/content/v1/content.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "metadata/content.h"
#include "metadata/filters.h"
#include "services/content.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/log.h"

#define SVC "/containerd.services.content.v1.Content/"
#define READ_CHUNK (1u << 20)      /* containerd's copy buffer */
#define READ_HIGH_WATER (4u << 20) /* stop producing above this many queued bytes */
#define LIST_BATCH 100
/* A client that pipelines WRITE messages without reading replies may queue at most this much. */
#define WRITE_QUEUE_MAX (64u << 20)

typedef Containerd__Services__Content__V1__Info Info;
typedef Containerd__Services__Content__V1__Info__LabelsEntry InfoLabel;
typedef Containerd__Services__Content__V1__Status Status;
typedef Google__Protobuf__Timestamp Timestamp;

static void ts_fill(Timestamp *ts, int64_t ns)
{
        google__protobuf__timestamp__init(ts);
        ts->seconds = ns / 1000000000LL;
        ts->nanos = (int32_t)(ns % 1000000000LL);
}

static char **labels_from_info(InfoLabel **e, size_t n)
{
        char **l = xcalloc(1, sizeof(char *));
        for (size_t i = 0; i < n; i++)
                metadata_labels_set(&l, e[i]->key ? e[i]->key : "", e[i]->value ? e[i]->value : "");
        return l;
}

/* An Info message with everything borrowed from ci except the allocations it owns (free with info_msg_free). */
struct info_msg {
        Info m;
        Timestamp created, updated;
        InfoLabel *entries;
        InfoLabel **ptrs;
};

static void info_msg_fill(struct info_msg *im, const struct metadata_content_info *ci)
{
        containerd__services__content__v1__info__init(&im->m);
        im->m.digest = ci->digest;
        im->m.size = ci->size;
        ts_fill(&im->created, ci->created_at);
        ts_fill(&im->updated, ci->updated_at);
        im->m.created_at = &im->created;
        im->m.updated_at = &im->updated;
        size_t n = metadata_labels_count(ci->labels);
        im->entries = xcalloc(n + 1, sizeof(*im->entries));
        im->ptrs = xcalloc(n + 1, sizeof(*im->ptrs));
        for (size_t i = 0; i < n; i++) {
                containerd__services__content__v1__info__labels_entry__init(&im->entries[i]);
                im->entries[i].key = ci->labels[2 * i];
                im->entries[i].value = ci->labels[2 * i + 1];
                im->ptrs[i] = &im->entries[i];
        }
        im->m.n_labels = n;
        im->m.labels = im->ptrs;
}

static void info_msg_free(struct info_msg *im)
{
        free(im->entries);
        free(im->ptrs);
}

struct status_msg {
        Status m;
        Timestamp started, updated;
};

static void status_msg_fill(struct status_msg *sm, const struct content_status *st)
{
        containerd__services__content__v1__status__init(&sm->m);
        ts_fill(&sm->started, st->started_at);
        ts_fill(&sm->updated, st->updated_at);
        sm->m.started_at = &sm->started;
        sm->m.updated_at = &sm->updated;
        sm->m.ref = st->ref;
        sm->m.offset = st->offset;
        sm->m.total = st->total;
}

static bool call_ns(struct grpc_call *call, struct services_ctx *ctx, const char **ns)
{
        _cleanup_error_ struct error *err = NULL;
        if (!ctx->db || !ctx->content) {
                grpc_call_finish(call, GRPC_UNAVAILABLE, "content store is not available");
                return false;
        }
        int r = services_call_namespace(call, ns, &err);
        if (r < 0) {
                grpc_call_fail(call, r, err);
                return false;
        }
        return true;
}

/* --- worker jobs (services_job) --- */

struct job {
        struct services_job base;
        struct metadata_content_info info;
        char **paths;
        size_t npaths;
        char *str;
};

static void job_free(struct services_job *b)
{
        struct job *j = (struct job *)b;
        metadata_content_info_clear(&j->info);
        strv_free(j->paths);
        free(j->str);
        free(j);
}

static struct job *job_new(void (*run)(struct services_job *), void (*reply)(struct services_job *))
{
        struct job *j = xcalloc(1, sizeof(*j));
        j->base.run = run;
        j->base.reply = reply; /* NULL: google.protobuf.Empty */
        j->base.free = job_free;
        return j;
}

/* --- Info --- */

static void on_info(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Content__V1__InfoRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        _cleanup_error_ struct error *err = NULL;
        struct metadata_content_info ci = {0};
        const char *ns;
        if (!call_ns(call, ctx, &ns))
                return;
        int r = metadata_content_info(ctx->db, ns, in->digest ? in->digest : "", &ci, &err);
        if (r < 0) {
                grpc_call_fail(call, r, err);
                return;
        }
        struct info_msg im;
        info_msg_fill(&im, &ci);
        Containerd__Services__Content__V1__InfoResponse resp = CONTAINERD__SERVICES__CONTENT__V1__INFO_RESPONSE__INIT;
        resp.info = &im.m;
        grpc_call_reply(call, &resp.base);
        info_msg_free(&im);
        metadata_content_info_clear(&ci);
}

/* --- Update --- */

static void update_run(struct services_job *b)
{
        struct job *j = (struct job *)b;
        struct metadata_content_info out = {0};
        b->r = metadata_content_update(b->ctx->db, b->ns, &j->info, j->paths, j->npaths, &out, &b->err);
        metadata_content_info_clear(&j->info);
        j->info = out;
}

static void update_reply(struct services_job *b)
{
        struct job *j = (struct job *)b;
        struct info_msg im;
        info_msg_fill(&im, &j->info);
        Containerd__Services__Content__V1__UpdateResponse resp =
            CONTAINERD__SERVICES__CONTENT__V1__UPDATE_RESPONSE__INIT;
        resp.info = &im.m;
        grpc_call_reply(b->call, &resp.base);
        info_msg_free(&im);
}

static void on_update(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Content__V1__UpdateRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        const char *ns;
        if (!call_ns(call, ctx, &ns))
                return;
        if (!in->info || !in->info->digest) {
                grpc_call_finish(call, GRPC_INVALID_ARGUMENT, "info.digest: invalid argument");
                return;
        }
        struct job *j = job_new(update_run, update_reply);
        j->info.digest = xstrdup(in->info->digest);
        j->info.labels = labels_from_info(in->info->labels, in->info->n_labels);
        if (in->update_mask && in->update_mask->n_paths > 0) {
                j->npaths = in->update_mask->n_paths;
                j->paths = xcalloc(j->npaths + 1, sizeof(char *));
                for (size_t i = 0; i < j->npaths; i++)
                        j->paths[i] = xstrdup(in->update_mask->paths[i]);
        }
        services_job_start(&j->base, call, ctx, ns);
}

/* --- List --- */

static void on_list(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Content__V1__ListContentRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        _cleanup_error_ struct error *err = NULL;
        _cleanup_(filter_freep) struct filter *f = NULL;
        struct metadata_content_info *list = NULL;
        size_t n = 0;
        const char *ns;
        if (!call_ns(call, ctx, &ns))
                return;
        int r = filter_parse(in->filters, in->n_filters, &f, &err);
        if (r == 0)
                r = metadata_content_list(ctx->db, ns, f, &list, &n, &err);
        if (r < 0) {
                grpc_call_fail(call, r, err);
                return;
        }
        for (size_t off = 0; off < n; off += LIST_BATCH) {
                size_t k = n - off < LIST_BATCH ? n - off : LIST_BATCH;
                struct info_msg im[LIST_BATCH];
                Info *ptrs[LIST_BATCH];
                for (size_t i = 0; i < k; i++) {
                        info_msg_fill(&im[i], &list[off + i]);
                        ptrs[i] = &im[i].m;
                }
                Containerd__Services__Content__V1__ListContentResponse resp =
                    CONTAINERD__SERVICES__CONTENT__V1__LIST_CONTENT_RESPONSE__INIT;
                resp.n_info = k;
                resp.info = ptrs;
                r = grpc_call_send(call, &resp.base);
                for (size_t i = 0; i < k; i++)
                        info_msg_free(&im[i]);
                if (r < 0)
                        break;
        }
        metadata_content_info_list_free(list, n);
        grpc_call_finish(call, GRPC_OK, NULL);
}

/* --- Delete --- */

static void delete_run(struct services_job *b)
{
        struct job *j = (struct job *)b;
        b->r = services_content_delete(b->ctx, b->ns, j->str, &b->err);
}

static int delete_publish(struct services_job *b, struct error **err)
{
        (void)err;
        services_content_publish_delete(b->ctx, b->ns, ((struct job *)b)->str);
        return 0;
}

static void on_delete(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Content__V1__DeleteContentRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        const char *ns;
        if (!call_ns(call, ctx, &ns))
                return;
        struct job *j = job_new(delete_run, NULL);
        j->base.publish = delete_publish;
        j->base.collect = true;
        j->str = xstrdup(in->digest ? in->digest : "");
        services_job_start(&j->base, call, ctx, ns);
}

/* --- Read: server stream with backpressure --- */

struct reader {
        struct grpc_call *call;
        int fd;
        int64_t offset;
        int64_t end;
        uint8_t *buf;
};

static void reader_free(struct reader *rd)
{
        closep(&rd->fd);
        free(rd->buf);
        grpc_call_unref(rd->call);
        free(rd);
}

static void reader_cancel(struct grpc_call *call, void *userdata)
{
        (void)call;
        reader_free(userdata);
}

static void reader_pump(struct grpc_call *call, void *userdata)
{
        struct reader *rd = userdata;
        while (rd->offset < rd->end) {
                if (grpc_call_pending_bytes(call) >= READ_HIGH_WATER) {
                        grpc_call_set_writable_cb(call, READ_CHUNK, reader_pump, rd);
                        return;
                }
                size_t want = (size_t)(rd->end - rd->offset < READ_CHUNK ? rd->end - rd->offset : READ_CHUNK);
                ssize_t k = pread(rd->fd, rd->buf, want, rd->offset);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        _cleanup_error_ struct error *e = NULL;
                        int r = error_set(&e, k < 0 ? errno : EIO, "read content");
                        grpc_call_set_cancel_cb(call, NULL, NULL);
                        grpc_call_fail(call, r, e);
                        reader_free(rd);
                        return;
                }
                Containerd__Services__Content__V1__ReadContentResponse resp =
                    CONTAINERD__SERVICES__CONTENT__V1__READ_CONTENT_RESPONSE__INIT;
                resp.offset = rd->offset;
                resp.data.data = rd->buf;
                resp.data.len = (size_t)k;
                if (grpc_call_send(call, &resp.base) < 0) {
                        grpc_call_set_cancel_cb(call, NULL, NULL);
                        reader_free(rd);
                        return;
                }
                rd->offset += k;
        }
        grpc_call_set_cancel_cb(call, NULL, NULL);
        grpc_call_finish(call, GRPC_OK, NULL);
        reader_free(rd);
}

static void on_read(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Content__V1__ReadContentRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        _cleanup_error_ struct error *err = NULL;
        struct metadata_content_info ci = {0};
        const char *ns;
        int fd = -1;
        int64_t size = 0;
        if (!call_ns(call, ctx, &ns))
                return;
        int r = metadata_content_info(ctx->db, ns, in->digest ? in->digest : "", &ci, &err);
        if (r == 0) {
                metadata_content_info_clear(&ci);
                r = content_blob_open(ctx->content, in->digest, &fd, &size, &err);
        }
        if (r < 0) {
                grpc_call_fail(call, r, err);
                return;
        }
        if (in->offset < 0 || in->size < 0 || in->offset > size) {
                close(fd);
                grpc_call_finish(call, GRPC_OUT_OF_RANGE, "read offset out of range");
                return;
        }
        struct reader *rd = xcalloc(1, sizeof(*rd));
        rd->call = grpc_call_ref(call);
        rd->fd = fd;
        rd->offset = in->offset;
        rd->end = in->size <= 0 || in->offset + in->size > size ? size : in->offset + in->size;
        rd->buf = xmalloc(READ_CHUNK);
        grpc_call_set_cancel_cb(call, reader_cancel, rd);
        reader_pump(call, rd);
}

/* --- Status, ListStatuses, Abort --- */

static void on_status(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Content__V1__StatusRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        _cleanup_error_ struct error *err = NULL;
        struct content_status st = {0};
        const char *ns;
        if (!call_ns(call, ctx, &ns))
                return;
        int r = metadata_content_status(ctx->content, ns, in->ref ? in->ref : "", &st, &err);
        if (r < 0) {
                grpc_call_fail(call, r, err);
                return;
        }
        struct status_msg sm;
        status_msg_fill(&sm, &st);
        Containerd__Services__Content__V1__StatusResponse resp =
            CONTAINERD__SERVICES__CONTENT__V1__STATUS_RESPONSE__INIT;
        resp.status = &sm.m;
        grpc_call_reply(call, &resp.base);
        content_status_clear(&st);
}

static void on_list_statuses(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Content__V1__ListStatusesRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        _cleanup_error_ struct error *err = NULL;
        _cleanup_(filter_freep) struct filter *f = NULL;
        struct content_status *sts = NULL;
        size_t n = 0;
        const char *ns;
        if (!call_ns(call, ctx, &ns))
                return;
        int r = filter_parse(in->filters, in->n_filters, &f, &err);
        if (r == 0)
                r = metadata_content_list_statuses(ctx->content, ns, f, &sts, &n, &err);
        if (r < 0) {
                grpc_call_fail(call, r, err);
                return;
        }
        _cleanup_free_ struct status_msg *sm = xcalloc(n + 1, sizeof(*sm));
        _cleanup_free_ Status **ptrs = xcalloc(n + 1, sizeof(*ptrs));
        for (size_t i = 0; i < n; i++) {
                status_msg_fill(&sm[i], &sts[i]);
                ptrs[i] = &sm[i].m;
        }
        Containerd__Services__Content__V1__ListStatusesResponse resp =
            CONTAINERD__SERVICES__CONTENT__V1__LIST_STATUSES_RESPONSE__INIT;
        resp.n_statuses = n;
        resp.statuses = ptrs;
        grpc_call_reply(call, &resp.base);
        metadata_content_statuses_free(sts, n);
}

static void abort_run(struct services_job *b)
{
        b->r = metadata_content_abort(b->ctx->content, b->ns, ((struct job *)b)->str, &b->err);
}

static void on_abort(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Content__V1__AbortRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        const char *ns;
        if (!call_ns(call, ctx, &ns))
                return;
        struct job *j = job_new(abort_run, NULL);
        j->str = xstrdup(in->ref ? in->ref : "");
        services_job_start(&j->base, call, ctx, ns);
}

/* --- Write: bidi stream, one worker step per request, strictly in order --- */

struct wreq {
        struct services_write_req req;
        struct wreq *next;
};

struct wstream {
        struct services_ctx *ctx;
        struct grpc_call *call;
        struct services_content_write *s;
        struct wreq *head, *tail;
        struct wreq *cur;
        size_t queued_bytes;
        uv_work_t work;
        bool busy;
        bool gone;        /* cancelled: free when the running step returns */
        bool half_closed; /* client sent END_STREAM: finish OK once the queue drains */
        int r;
        struct error *err;
        struct services_write_resp resp;
};

static void wreq_free(struct wreq *q)
{
        if (!q)
                return;
        free(q->req.ref);
        free(q->req.expected);
        free(q->req.data);
        strv_free(q->req.labels);
        free(q);
}

static void wstream_free(struct wstream *ws)
{
        while (ws->head) {
                struct wreq *n = ws->head->next;
                wreq_free(ws->head);
                ws->head = n;
        }
        wreq_free(ws->cur);
        services_content_write_free(ws->s);
        free(ws->resp.digest);
        error_free(&ws->err);
        grpc_call_set_data(ws->call, NULL);
        grpc_call_unref(ws->call);
        free(ws);
}

static void wstream_next(struct wstream *ws);

static void write_work(uv_work_t *w)
{
        struct wstream *ws = w->data;
        ws->r = services_content_write_step(ws->s, &ws->cur->req, &ws->resp, &ws->err);
}

static void write_after(uv_work_t *w, int status)
{
        struct wstream *ws = w->data;
        ws->busy = false;
        wreq_free(TAKE_PTR(ws->cur));
        if (ws->gone || grpc_call_is_done(ws->call)) {
                wstream_free(ws);
                return;
        }
        if (status < 0 && ws->r >= 0)
                ws->r = error_set(&ws->err, ECANCELED, "canceled");
        if (ws->r < 0) {
                grpc_call_set_cancel_cb(ws->call, NULL, NULL);
                grpc_call_fail(ws->call, ws->r, ws->err);
                wstream_free(ws);
                return;
        }
        Containerd__Services__Content__V1__WriteContentResponse resp =
            CONTAINERD__SERVICES__CONTENT__V1__WRITE_CONTENT_RESPONSE__INIT;
        Timestamp started, updated;
        resp.action = (Containerd__Services__Content__V1__WriteAction)ws->resp.action;
        if (ws->resp.action == SERVICES_WRITE_STAT) {
                ts_fill(&started, ws->resp.started_at);
                ts_fill(&updated, ws->resp.updated_at);
                resp.started_at = &started;
                resp.updated_at = &updated;
        }
        resp.offset = ws->resp.offset;
        resp.total = ws->resp.total;
        resp.digest = ws->resp.digest;
        (void)grpc_call_send(ws->call, &resp.base);
        free(ws->resp.digest);
        ws->resp.digest = NULL;
        if (ws->r == 1 || (ws->half_closed && !ws->head)) {
                /* containerd returns after the commit reply: trailers, then RST_STREAM(NO_ERROR) since the
                 * client never half-closes */
                grpc_call_set_cancel_cb(ws->call, NULL, NULL);
                grpc_call_finish(ws->call, GRPC_OK, NULL);
                wstream_free(ws);
                return;
        }
        wstream_next(ws);
}

static void wstream_next(struct wstream *ws)
{
        if (ws->busy || !ws->head)
                return;
        ws->cur = ws->head;
        ws->head = ws->cur->next;
        ws->queued_bytes -= ws->cur->req.len;
        if (!ws->head)
                ws->tail = NULL;
        ws->busy = true;
        ws->work.data = ws;
        if (uv_queue_work(ws->ctx->loop, &ws->work, write_work, write_after) < 0) {
                ws->busy = false;
                grpc_call_set_cancel_cb(ws->call, NULL, NULL);
                grpc_call_finish(ws->call, GRPC_UNAVAILABLE, "worker pool unavailable");
                wstream_free(ws);
        }
}

static void write_cancel(struct grpc_call *call, void *userdata)
{
        struct wstream *ws = userdata;
        (void)call;
        grpc_call_set_data(call, NULL);
        if (ws->busy)
                ws->gone = true;
        else
                wstream_free(ws);
}

static void on_write_msg(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Content__V1__WriteContentRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        struct wstream *ws = grpc_call_get_data(call);
        if (grpc_call_is_done(call))
                return;
        if (!ws) {
                const char *ns;
                if (!call_ns(call, ctx, &ns))
                        return;
                ws = xcalloc(1, sizeof(*ws));
                ws->ctx = ctx;
                ws->call = grpc_call_ref(call);
                ws->s = services_content_write_new(ctx, ns, services_call_lease(call));
                grpc_call_set_data(call, ws);
                grpc_call_set_cancel_cb(call, write_cancel, ws);
        }
        if (ws->queued_bytes + in->data.len > WRITE_QUEUE_MAX) {
                grpc_call_set_cancel_cb(call, NULL, NULL);
                grpc_call_finish(call, GRPC_RESOURCE_EXHAUSTED, "too much write data queued");
                if (ws->busy)
                        ws->gone = true;
                else
                        wstream_free(ws);
                return;
        }
        ws->queued_bytes += in->data.len;
        struct wreq *q = xcalloc(1, sizeof(*q));
        q->req.action = (enum services_write_action)in->action;
        q->req.ref = xstrdup(in->ref);
        q->req.total = in->total;
        q->req.expected = xstrdup(in->expected);
        q->req.offset = in->offset;
        if (in->data.len) {
                /* The data is taken over instead of copied (a MiB per message): the server frees the request
                 * with protobuf_c_message_free_unpacked right after this callback, and that skips a NULL
                 * bytes field. */
                Containerd__Services__Content__V1__WriteContentRequest *own = (void *)in;
                q->req.data = TAKE_PTR(own->data.data);
                q->req.len = in->data.len;
                own->data.len = 0;
        }
        for (size_t i = 0; i < in->n_labels; i++)
                metadata_labels_set(&q->req.labels, in->labels[i]->key ? in->labels[i]->key : "",
                                    in->labels[i]->value ? in->labels[i]->value : "");
        if (ws->tail)
                ws->tail->next = q;
        else
                ws->head = q;
        ws->tail = q;
        wstream_next(ws);
}

static void on_write_half_close(struct grpc_call *call, void *userdata)
{
        struct wstream *ws = grpc_call_get_data(call);
        (void)userdata;
        if (!ws) {
                /* no message at all: containerd's first Recv gets EOF */
                grpc_call_finish(call, GRPC_OK, NULL);
                return;
        }
        ws->half_closed = true;
        if (!ws->busy && !ws->head) {
                grpc_call_set_data(call, NULL);
                grpc_call_set_cancel_cb(call, NULL, NULL);
                grpc_call_finish(call, GRPC_OK, NULL);
                wstream_free(ws);
        }
}

void services_content_register(struct grpc_server *s, struct services_ctx *ctx)
{
        const struct grpc_method methods[] = {
            {SVC "Info", GRPC_METHOD_UNARY, &containerd__services__content__v1__info_request__descriptor, on_info, NULL,
             ctx},
            {SVC "Update", GRPC_METHOD_UNARY, &containerd__services__content__v1__update_request__descriptor, on_update,
             NULL, ctx},
            {SVC "List", GRPC_METHOD_SERVER_STREAM,
             &containerd__services__content__v1__list_content_request__descriptor, on_list, NULL, ctx},
            {SVC "Delete", GRPC_METHOD_UNARY, &containerd__services__content__v1__delete_content_request__descriptor,
             on_delete, NULL, ctx},
            {SVC "Read", GRPC_METHOD_SERVER_STREAM,
             &containerd__services__content__v1__read_content_request__descriptor, on_read, NULL, ctx},
            {SVC "Status", GRPC_METHOD_UNARY, &containerd__services__content__v1__status_request__descriptor, on_status,
             NULL, ctx},
            {SVC "ListStatuses", GRPC_METHOD_UNARY,
             &containerd__services__content__v1__list_statuses_request__descriptor, on_list_statuses, NULL, ctx},
            {SVC "Write", GRPC_METHOD_BIDI_STREAM,
             &containerd__services__content__v1__write_content_request__descriptor, on_write_msg, on_write_half_close,
             ctx},
            {SVC "Abort", GRPC_METHOD_UNARY, &containerd__services__content__v1__abort_request__descriptor, on_abort,
             NULL, ctx},
        };
        for (size_t i = 0; i < ELEMENTSOF(methods); i++)
                if (grpc_server_add_method(s, &methods[i]) < 0)
                        log_warn("content: method %s registered twice", methods[i].path);
}

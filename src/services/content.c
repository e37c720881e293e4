/* content.v1 logic and the GC scheduler. */
#include "services/content.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#include "github.com/containerd/containerd/api/events/content.pb-c.h"
#include "events/exchange.h"
#include "metadata/gc.h"
#include "snapshot/registry.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/log.h"

/* --- GC scheduler: all state is touched on the loop thread only --- */

struct gc_waiter {
        services_gc_done_fn fn;
        void *userdata;
        struct gc_waiter *next;
};

struct gc_sched {
        const struct services_ctx *ctx;
        uv_work_t work;
        bool running;
        bool pending;
        struct gc_waiter *current; /* satisfied by the running collection */
        struct gc_waiter *next;    /* need a collection that starts later */
        int r;
        struct error *err;
        struct metadata_gc_stats stats;
        struct gc_sched *link;
};

/* One scheduler per services context (normally one per daemon). */
static struct gc_sched *schedulers;

static struct gc_sched *sched_for(const struct services_ctx *ctx, bool create)
{
        for (struct gc_sched *s = schedulers; s; s = s->link)
                if (s->ctx == ctx)
                        return s;
        if (!create)
                return NULL;
        struct gc_sched *s = xcalloc(1, sizeof(*s));
        s->ctx = ctx;
        s->link = schedulers;
        schedulers = s;
        return s;
}

static void gc_work(uv_work_t *w)
{
        struct gc_sched *s = w->data;
        const struct services_ctx *ctx = s->ctx;
        s->r = metadata_gc_run(ctx->db, ctx->content, ctx->snapshots ? snapshot_registry_gc_remove : NULL,
                               ctx->snapshots, &s->stats, &s->err);
}

static void gc_start(struct gc_sched *s);

static void gc_after(uv_work_t *w, int status)
{
        struct gc_sched *s = w->data;
        struct gc_waiter *done = TAKE_PTR(s->current);
        if (status < 0 && s->r == 0)
                s->r = error_set(&s->err, ECANCELED, "garbage collection");
        if (s->r < 0)
                log_warn("garbage collection failed: %s", error_str(s->err));
        else
                log_debug("garbage collected: %zu content refs, %zu blobs, %zu snapshots, %zu leases in %" PRId64 " us",
                          s->stats.content_refs, s->stats.blobs, s->stats.snapshots, s->stats.leases,
                          s->stats.duration_ns / 1000);
        s->running = false;
        while (done) {
                struct gc_waiter *n = done->next;
                if (done->fn)
                        done->fn(s->r, s->err, done->userdata);
                free(done);
                done = n;
        }
        error_free(&s->err);
        s->r = 0;
        if (s->pending)
                gc_start(s);
}

static void gc_start(struct gc_sched *s)
{
        s->pending = false;
        s->running = true;
        s->current = TAKE_PTR(s->next);
        s->work.data = s;
        if (uv_queue_work(s->ctx->loop, &s->work, gc_work, gc_after) < 0) {
                s->r = error_set(&s->err, EAGAIN, "garbage collection: cannot queue work");
                gc_after(&s->work, 0);
        }
}

void services_gc_schedule(struct services_ctx *ctx, services_gc_done_fn done, void *userdata)
{
        struct gc_sched *s = sched_for(ctx, true);
        if (!ctx->db) {
                if (done) {
                        struct error *e = NULL;
                        error_set(&e, EAGAIN, "metadata store is not available");
                        done(-EAGAIN, e, userdata);
                        error_free(&e);
                }
                return;
        }
        struct gc_waiter *w = xcalloc(1, sizeof(*w));
        w->fn = done;
        w->userdata = userdata;
        w->next = s->next;
        s->next = w;
        if (s->running)
                s->pending = true;
        else
                gc_start(s);
}

bool services_gc_busy(const struct services_ctx *ctx)
{
        struct gc_sched *s = sched_for(ctx, false);
        return s && (s->running || s->pending);
}

/* --- local functions --- */

int services_content_delete(struct services_ctx *ctx, const char *ns, const char *digest, struct error **err)
{
        return metadata_content_delete(ctx->db, ns, digest, err);
}

void services_content_publish_delete(struct services_ctx *ctx, const char *ns, const char *digest)
{
        if (!ctx->events)
                return;
        Containerd__Events__ContentDelete ev = CONTAINERD__EVENTS__CONTENT_DELETE__INIT;
        ev.digest = (char *)digest;
        _cleanup_error_ struct error *e = NULL;
        if (events_publish(ctx->events, ns, "/content/delete", &ev.base, &e) < 0)
                log_warn("publish /content/delete: %s", error_str(e));
}

struct services_content_write {
        struct services_ctx *ctx;
        char *ns;
        char *lease;
        char *ref;
        int64_t total;
        char *expected;
        struct metadata_content_writer *w;
};

struct services_content_write *services_content_write_new(struct services_ctx *ctx, const char *ns, const char *lease)
{
        struct services_content_write *s = xcalloc(1, sizeof(*s));
        s->ctx = ctx;
        s->ns = xstrdup(ns);
        s->lease = xstrdup(lease);
        return s;
}

void services_content_write_free(struct services_content_write *s)
{
        if (!s)
                return;
        metadata_content_writer_close(s->w);
        free(s->ns);
        free(s->lease);
        free(s->ref);
        free(s->expected);
        free(s);
}

static int set_literal(struct error **err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int set_literal(struct error **err, int code, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *m = xvasprintf(fmt, ap);
        va_end(ap);
        return error_set_literal(err, code, m);
}

/* Mirrors contentserver.go Write: one request in, one response out. */
int services_content_write_step(struct services_content_write *s, const struct services_write_req *req,
                                struct services_write_resp *resp, struct error **err)
{
        struct content_status st = {0};
        int r;

        memset(resp, 0, sizeof(*resp));
        if (!s->w) {
                if (!req->ref || !req->ref[0])
                        return error_set(err, EINVAL, "first message must have a reference");
                s->ref = xstrdup(req->ref);
                s->total = req->total;
                s->expected = req->expected && req->expected[0] ? xstrdup(req->expected) : NULL;
                r = metadata_content_writer_open(s->ctx->db, s->ctx->content, s->ns, s->ref, s->total, s->expected,
                                                 s->lease, &s->w, err);
                if (r < 0)
                        return r;
        }
        resp->action = req->action;
        metadata_content_writer_status(s->w, &st);
        resp->offset = st.offset;

        if (req->expected && req->expected[0]) {
                free(s->expected);
                s->expected = xstrdup(req->expected);
                struct metadata_content_info info = {0};
                if (metadata_content_info(s->ctx->db, s->ns, req->expected, &info, NULL) == 0) {
                        metadata_content_info_clear(&info);
                        content_status_clear(&st);
                        metadata_content_writer_close(TAKE_PTR(s->w));
                        (void)metadata_content_abort(s->ctx->content, s->ns, s->ref, NULL);
                        /* status.Errorf in containerd: the message has no class suffix */
                        return set_literal(err, EEXIST, "blob with expected digest %s exists", req->expected);
                }
        }
        if (req->total > 0)
                s->total = req->total;

        switch (req->action) {
        case SERVICES_WRITE_STAT:
                resp->digest = metadata_content_writer_digest(s->w);
                resp->started_at = st.started_at;
                resp->updated_at = st.updated_at;
                resp->total = s->total;
                break;
        case SERVICES_WRITE_WRITE:
        case SERVICES_WRITE_COMMIT:
                if (req->offset > 0 && req->offset != st.offset) {
                        r = set_literal(err, ERANGE, "write @%" PRId64 " must occur at current offset %" PRId64,
                                        req->offset, st.offset);
                        content_status_clear(&st);
                        return r;
                }
                if (req->offset == 0 && st.offset > 0) {
                        r = metadata_content_writer_truncate(s->w, 0, err);
                        if (r < 0) {
                                content_status_clear(&st);
                                return error_wrap(err, "truncate failed");
                        }
                        resp->offset = 0;
                }
                if (req->len > 0) {
                        r = metadata_content_writer_write(s->w, req->data, req->len, err);
                        if (r < 0) {
                                content_status_clear(&st);
                                return r;
                        }
                        resp->offset += (int64_t)req->len;
                }
                if (req->action == SERVICES_WRITE_COMMIT) {
                        r = metadata_content_writer_commit(s->w, s->total, s->expected, req->labels, err);
                        if (r < 0) {
                                content_status_clear(&st);
                                return r;
                        }
                }
                resp->digest = metadata_content_writer_digest(s->w);
                break;
        default:
                content_status_clear(&st);
                return error_set(err, EINVAL, "unknown write action %d", (int)req->action);
        }
        content_status_clear(&st);
        return req->action == SERVICES_WRITE_COMMIT ? 1 : 0;
}

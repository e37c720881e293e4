/* diff.v1 gRPC adapter: Apply decodes the descriptor and mounts, runs the apply on a thread of its own and
 * answers from the loop. An apply writes a whole layer (seconds for a big one): on libuv's worker pool (4
 * threads) a few concurrent imports would hold every worker and stall every other blocking RPC of the daemon
 * (snapshot prepare/commit, content reads), including the other imports' steps, so images would not unpack
 * in parallel. Diff (services_diff_compare) runs the same way. */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "github.com/containerd/containerd/api/services/diff/v1/diff.pb-c.h"
#include "github.com/containerd/containerd/api/types/descriptor.pb-c.h"
#include "services/diff.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/strv.h"

struct apply_job {
        uv_async_t async; /* done: the thread finished */
        struct grpc_call *call;
        struct services_ctx *ctx;
        char *ns;
        char *media_type;
        char *digest;
        struct snapshot_mount *mounts;
        size_t nmounts;
        struct image_apply_result res;
        int r;
        struct error *err;
};

static void job_free(struct apply_job *j)
{
        if (!j)
                return;
        if (j->call)
                grpc_call_unref(j->call);
        free(j->ns);
        free(j->media_type);
        free(j->digest);
        struct snapshot_mounts ms = {.v = j->mounts, .n = j->nmounts};
        snapshot_mounts_clear(&ms);
        error_free(&j->err);
        free(j);
}

static void job_closed(uv_handle_t *h)
{
        job_free(h->data);
}

static void job_done(uv_async_t *as)
{
        struct apply_job *j = as->data;

        if (grpc_call_is_done(j->call))
                ;
        else if (j->r < 0)
                grpc_call_fail(j->call, j->r, j->err);
        else {
                Containerd__Types__Descriptor d = CONTAINERD__TYPES__DESCRIPTOR__INIT;
                d.media_type = (char *)IMAGE_MEDIA_TYPE_LAYER_TAR;
                d.digest = j->res.diff_id;
                d.size = (int64_t)j->res.size;
                Containerd__Services__Diff__V1__ApplyResponse resp = CONTAINERD__SERVICES__DIFF__V1__APPLY_RESPONSE__INIT;
                resp.applied = &d;
                grpc_call_reply(j->call, &resp.base);
        }
        uv_close((uv_handle_t *)&j->async, job_closed);
}

static void *job_thread(void *data)
{
        struct apply_job *j = data;
        j->r = services_diff_apply(j->ctx, j->ns, j->media_type, j->digest, j->mounts, j->nmounts, &j->res, &j->err);
        /* the loop owns j from here on */
        uv_async_send(&j->async);
        return NULL;
}

/* Apply and Diff each run on a thread of their own, not on libuv's 4 shared workers (see the file comment). */
static int spawn_detached(void *(*fn)(void *), void *arg)
{
        pthread_attr_t attr;
        pthread_t t;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int r = pthread_create(&t, &attr, fn, arg);
        pthread_attr_destroy(&attr);
        return r;
}

static void on_apply(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Diff__V1__ApplyRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        _cleanup_error_ struct error *err = NULL;
        const char *ns = NULL;

        int r = services_call_namespace(call, &ns, &err);
        if (r < 0) {
                grpc_call_fail(call, r, err);
                return;
        }
        if (!in->diff) {
                grpc_call_finish(call, GRPC_INVALID_ARGUMENT, "diff descriptor is required");
                return;
        }
        struct apply_job *j = xcalloc(1, sizeof(*j));
        j->ctx = ctx;
        j->ns = xstrdup(ns);
        j->media_type = xstrdup(in->diff->media_type ? in->diff->media_type : "");
        j->digest = xstrdup(in->diff->digest ? in->diff->digest : "");
        j->nmounts = in->n_mounts;
        j->mounts = xcalloc(in->n_mounts + 1, sizeof(*j->mounts));
        for (size_t i = 0; i < in->n_mounts; i++) {
                const Containerd__Types__Mount *m = in->mounts[i];
                j->mounts[i].type = xstrdup(m->type ? m->type : "");
                j->mounts[i].source = xstrdup(m->source ? m->source : "");
                j->mounts[i].options = xcalloc(m->n_options + 1, sizeof(char *));
                for (size_t k = 0; k < m->n_options; k++)
                        j->mounts[i].options[k] = xstrdup(m->options[k] ? m->options[k] : "");
        }
        j->call = grpc_call_ref(call);
        j->async.data = j;
        r = uv_async_init(ctx->loop, &j->async, job_done);
        if (r < 0) {
                grpc_call_finish(call, GRPC_UNAVAILABLE, uv_strerror(r));
                job_free(j);
                return;
        }
        r = spawn_detached(job_thread, j);
        if (r != 0) {
                grpc_call_finish(call, GRPC_UNAVAILABLE, "cannot start the apply thread");
                uv_close((uv_handle_t *)&j->async, job_closed);
        }
}

/* Diff runs on its own thread too: it reads two whole trees and compresses the changes. */
struct compare_job {
        uv_async_t async;
        struct grpc_call *call;
        struct services_ctx *ctx;
        char *ns, *media_type, *ref, *lease;
        char **labels;
        struct snapshot_mounts left, right;
        struct services_diff_desc res;
        int r;
        struct error *err;
};

static void compare_closed(uv_handle_t *h)
{
        struct compare_job *j = h->data;
        grpc_call_unref(j->call);
        free(j->ns);
        free(j->media_type);
        free(j->ref);
        free(j->lease);
        strv_free(j->labels);
        snapshot_mounts_clear(&j->left);
        snapshot_mounts_clear(&j->right);
        services_diff_desc_clear(&j->res);
        error_free(&j->err);
        free(j);
}

static void compare_done(uv_async_t *as)
{
        struct compare_job *j = as->data;

        if (grpc_call_is_done(j->call))
                ;
        else if (j->r < 0)
                grpc_call_fail(j->call, j->r, j->err);
        else {
                Containerd__Types__Descriptor d = CONTAINERD__TYPES__DESCRIPTOR__INIT;
                d.media_type = j->res.media_type;
                d.digest = j->res.digest;
                d.size = j->res.size;
                Containerd__Services__Diff__V1__DiffResponse resp = CONTAINERD__SERVICES__DIFF__V1__DIFF_RESPONSE__INIT;
                resp.diff = &d;
                grpc_call_reply(j->call, &resp.base);
        }
        uv_close((uv_handle_t *)&j->async, compare_closed);
}

static void *compare_thread(void *data)
{
        struct compare_job *j = data;
        j->r = services_diff_compare(j->ctx, j->ns, j->left.v, j->left.n, j->right.v, j->right.n, j->media_type,
                                     j->ref, j->labels, j->lease, &j->res, &j->err);
        uv_async_send(&j->async);
        return NULL;
}

static void copy_mounts(struct snapshot_mounts *dst, Containerd__Types__Mount **src, size_t n)
{
        dst->n = n;
        dst->v = xcalloc(n + 1, sizeof(*dst->v));
        for (size_t i = 0; i < n; i++) {
                const Containerd__Types__Mount *m = src[i];
                dst->v[i].type = xstrdup(m->type ? m->type : "");
                dst->v[i].source = xstrdup(m->source ? m->source : "");
                dst->v[i].options = xcalloc(m->n_options + 1, sizeof(char *));
                for (size_t k = 0; k < m->n_options; k++)
                        dst->v[i].options[k] = xstrdup(m->options[k] ? m->options[k] : "");
        }
}

static void on_diff(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Diff__V1__DiffRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        _cleanup_error_ struct error *err = NULL;
        const char *ns = NULL;

        int r = services_call_namespace(call, &ns, &err);
        if (r < 0) {
                grpc_call_fail(call, r, err);
                return;
        }
        struct compare_job *j = xcalloc(1, sizeof(*j));
        j->ctx = ctx;
        j->ns = xstrdup(ns);
        j->media_type = xstrdup(in->media_type ? in->media_type : "");
        j->ref = xstrdup(in->ref ? in->ref : "");
        const char *lease = services_call_lease(call);
        j->lease = lease ? xstrdup(lease) : NULL;
        j->labels = xcalloc(2 * in->n_labels + 1, sizeof(char *));
        for (size_t i = 0; i < in->n_labels; i++) {
                j->labels[2 * i] = xstrdup(in->labels[i]->key ? in->labels[i]->key : "");
                j->labels[2 * i + 1] = xstrdup(in->labels[i]->value ? in->labels[i]->value : "");
        }
        copy_mounts(&j->left, in->left, in->n_left);
        copy_mounts(&j->right, in->right, in->n_right);
        j->call = grpc_call_ref(call);
        j->async.data = j;
        r = uv_async_init(ctx->loop, &j->async, compare_done);
        if (r < 0) {
                grpc_call_finish(call, GRPC_UNAVAILABLE, uv_strerror(r));
                compare_closed((uv_handle_t *)&j->async); /* not a live handle: only frees j */
                return;
        }
        r = spawn_detached(compare_thread, j);
        if (r != 0) {
                grpc_call_finish(call, GRPC_UNAVAILABLE, "cannot start the diff thread");
                uv_close((uv_handle_t *)&j->async, compare_closed);
        }
}

#define DIFF_PATH(m) "/containerd.services.diff.v1.Diff/" m

void services_diff_register(struct grpc_server *s, struct services_ctx *ctx)
{
        const struct grpc_method methods[] = {
                {DIFF_PATH("Apply"), GRPC_METHOD_UNARY, &containerd__services__diff__v1__apply_request__descriptor,
                 on_apply, NULL, ctx},
                {DIFF_PATH("Diff"), GRPC_METHOD_UNARY, &containerd__services__diff__v1__diff_request__descriptor,
                 on_diff, NULL, ctx},
        };
        for (size_t i = 0; i < ELEMENTSOF(methods); i++)
                (void)grpc_server_add_method(s, &methods[i]);
}

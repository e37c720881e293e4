/* Helpers shared by every service adapter: the namespace and lease a call runs in, and worker-pool jobs. */
#include <errno.h>

#include "services/services.h"
#include "metadata/db.h"
#include "services/content.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "krill-api.h"

int services_call_namespace(const struct grpc_call *call, const char **ret_ns, struct error **err)
{
        const char *ns = grpc_call_metadata(call, "containerd-namespace");
        int r;

        /* containerd's namespaces.NamespaceRequired: missing or empty is FailedPrecondition */
        if (!ns || ns[0] == '\0')
                return error_set(err, EBUSY, "namespace is required");
        r = metadata_validate_identifier(ns, err);
        if (r < 0)
                return error_wrap(err, "namespace validation");
        *ret_ns = ns;
        return 0;
}

const char *services_call_lease(const struct grpc_call *call)
{
        const char *lease = grpc_call_metadata(call, "containerd-lease");
        return lease && lease[0] ? lease : NULL;
}

bool services_call_db_ns(struct grpc_call *call, struct services_ctx *ctx, const char **ret_ns)
{
        _cleanup_error_ struct error *err = NULL;
        if (!ctx->db) {
                grpc_call_finish(call, GRPC_UNAVAILABLE, "metadata store is not available");
                return false;
        }
        int r = services_call_namespace(call, ret_ns, &err);
        if (r < 0) {
                grpc_call_fail(call, r, err);
                return false;
        }
        return true;
}

void services_reply_empty(struct grpc_call *call)
{
        Google__Protobuf__Empty resp = GOOGLE__PROTOBUF__EMPTY__INIT;
        grpc_call_reply(call, &resp.base);
}

static void job_release(struct services_job *j)
{
        grpc_call_unref(j->call);
        free(j->ns);
        error_free(&j->err);
        j->free(j);
}

static void job_reply(struct services_job *j)
{
        if (j->reply)
                j->reply(j);
        else
                services_reply_empty(j->call);
}

static void job_gc_done(int r, const struct error *e, void *userdata)
{
        struct services_job *j = userdata;
        if (!grpc_call_is_done(j->call)) {
                if (r < 0)
                        grpc_call_fail(j->call, r, e);
                else
                        job_reply(j);
        }
        job_release(j);
}

static void job_work(uv_work_t *w)
{
        struct services_job *j = w->data;
        j->run(j);
}

static void job_after(uv_work_t *w, int status)
{
        struct services_job *j = w->data;
        _cleanup_error_ struct error *perr = NULL;
        int pr = 0;
        if (status < 0 && j->r == 0)
                j->r = error_set(&j->err, ECANCELED, "canceled");
        if (j->r == 0 && j->publish)
                pr = j->publish(j, &perr);
        bool collect = j->r == 0 && j->collect;
        if (grpc_call_is_done(j->call)) { /* the caller went away: nobody to answer, the work still counts */
                if (collect)
                        services_gc_schedule(j->ctx, NULL, NULL);
                job_release(j);
                return;
        }
        if (j->r < 0) {
                grpc_call_fail(j->call, j->r, j->err);
        } else if (pr < 0) {
                _cleanup_free_ char *msg = perr ? error_message(perr) : NULL;
                grpc_call_finish(j->call, GRPC_UNKNOWN, msg ? msg : "failed publishing event");
        } else if (collect && j->sync) {
                services_gc_schedule(j->ctx, job_gc_done, j);
                return;
        } else {
                if (collect)
                        services_gc_schedule(j->ctx, NULL, NULL);
                job_reply(j);
        }
        job_release(j);
}

void services_job_start(struct services_job *j, struct grpc_call *call, struct services_ctx *ctx, const char *ns)
{
        j->call = grpc_call_ref(call);
        j->ctx = ctx;
        j->ns = ns ? xstrdup(ns) : NULL;
        j->work.data = j;
        if (uv_queue_work(ctx->loop, &j->work, job_work, job_after) < 0) {
                grpc_call_finish(call, GRPC_UNAVAILABLE, "worker pool unavailable");
                job_release(j);
        }
}

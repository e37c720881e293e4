/* leases.v1 gRPC adapter. List and ListResources read inline; the rest runs on the worker pool. */
#include <errno.h>
#include <string.h>

#include "github.com/containerd/containerd/api/services/leases/v1/leases.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "metadata/filters.h"
#include "metadata/leases.h"
#include "services/content.h"
#include "services/leases.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/log.h"

#define SVC "/containerd.services.leases.v1.Leases/"

typedef Containerd__Services__Leases__V1__Lease Lease;
typedef Containerd__Services__Leases__V1__Lease__LabelsEntry LeaseLabel;
typedef Containerd__Services__Leases__V1__Resource Resource;

struct lease_msg {
        Lease m;
        Google__Protobuf__Timestamp created;
        LeaseLabel *ent;
        LeaseLabel **ptr;
};

static void lease_msg_fill(struct lease_msg *lm, const struct metadata_lease *l)
{
        containerd__services__leases__v1__lease__init(&lm->m);
        google__protobuf__timestamp__init(&lm->created);
        lm->m.id = l->id;
        lm->created.seconds = l->created_at / 1000000000LL;
        lm->created.nanos = (int32_t)(l->created_at % 1000000000LL);
        lm->m.created_at = &lm->created;
        size_t n = metadata_labels_count(l->labels);
        lm->ent = xcalloc(n + 1, sizeof(*lm->ent));
        lm->ptr = xcalloc(n + 1, sizeof(*lm->ptr));
        for (size_t i = 0; i < n; i++) {
                containerd__services__leases__v1__lease__labels_entry__init(&lm->ent[i]);
                lm->ent[i].key = l->labels[2 * i];
                lm->ent[i].value = l->labels[2 * i + 1];
                lm->ptr[i] = &lm->ent[i];
        }
        lm->m.n_labels = n;
        lm->m.labels = lm->ptr;
}

static void lease_msg_free(struct lease_msg *lm)
{
        free(lm->ent);
        free(lm->ptr);
}

static bool call_ns(struct grpc_call *call, struct services_ctx *ctx, const char **ns)
{
        _cleanup_error_ struct error *err = NULL;
        if (!ctx->db) {
                grpc_call_finish(call, GRPC_UNAVAILABLE, "metadata store is not available");
                return false;
        }
        int r = services_call_namespace(call, ns, &err);
        if (r < 0) {
                grpc_call_fail(call, r, err);
                return false;
        }
        return true;
}

static void reply_empty(struct grpc_call *call)
{
        Google__Protobuf__Empty resp = GOOGLE__PROTOBUF__EMPTY__INIT;
        grpc_call_reply(call, &resp.base);
}

enum op { OP_CREATE, OP_DELETE, OP_ADD, OP_DEL_RES };

struct job {
        uv_work_t work;
        struct grpc_call *call;
        struct services_ctx *ctx;
        char *ns;
        enum op op;
        char *id;
        char **labels;
        struct metadata_lease_resource res;
        bool sync;
        struct metadata_lease out;
        int r;
        struct error *err;
};

static void job_free(struct job *j)
{
        grpc_call_unref(j->call);
        free(j->ns);
        free(j->id);
        strv_free(j->labels);
        free(j->res.id);
        free(j->res.type);
        metadata_lease_clear(&j->out);
        error_free(&j->err);
        free(j);
}

static void job_work(uv_work_t *w)
{
        struct job *j = w->data;
        struct metadata_db *db = j->ctx->db;
        switch (j->op) {
        case OP_CREATE:
                j->r = metadata_lease_create(db, j->ns, j->id, j->labels, &j->out, &j->err);
                break;
        case OP_DELETE:
                j->r = metadata_lease_delete(db, j->ns, j->id, &j->err);
                break;
        case OP_ADD:
                j->r = metadata_lease_add_resource(db, j->ns, j->id, &j->res, &j->err);
                break;
        case OP_DEL_RES:
                j->r = metadata_lease_delete_resource(db, j->ns, j->id, &j->res, &j->err);
                break;
        }
}

static void sync_gc_done(int r, const struct error *e, void *userdata)
{
        struct job *j = userdata;
        if (!grpc_call_is_done(j->call)) {
                if (r < 0)
                        grpc_call_fail(j->call, r, e);
                else
                        reply_empty(j->call);
        }
        job_free(j);
}

static void job_after(uv_work_t *w, int status)
{
        struct job *j = w->data;
        if (status < 0 && j->r == 0)
                j->r = error_set(&j->err, ECANCELED, "canceled");
        bool collect = j->r == 0 && (j->op == OP_DELETE || j->op == OP_DEL_RES);
        if (grpc_call_is_done(j->call)) {
                if (collect)
                        services_gc_schedule(j->ctx, NULL, NULL);
                job_free(j);
                return;
        }
        if (j->r < 0) {
                grpc_call_fail(j->call, j->r, j->err);
        } else if (j->op == OP_CREATE) {
                struct lease_msg lm;
                lease_msg_fill(&lm, &j->out);
                Containerd__Services__Leases__V1__CreateResponse resp =
                    CONTAINERD__SERVICES__LEASES__V1__CREATE_RESPONSE__INIT;
                resp.lease = &lm.m;
                grpc_call_reply(j->call, &resp.base);
                lease_msg_free(&lm);
        } else if (collect && j->sync) {
                services_gc_schedule(j->ctx, sync_gc_done, j);
                return;
        } else {
                if (collect)
                        services_gc_schedule(j->ctx, NULL, NULL);
                reply_empty(j->call);
        }
        job_free(j);
}

static void job_start(struct grpc_call *call, struct services_ctx *ctx, const char *ns, struct job *j)
{
        j->call = grpc_call_ref(call);
        j->ctx = ctx;
        j->ns = xstrdup(ns);
        j->work.data = j;
        if (uv_queue_work(ctx->loop, &j->work, job_work, job_after) < 0) {
                grpc_call_finish(call, GRPC_UNAVAILABLE, "worker pool unavailable");
                job_free(j);
        }
}

static void on_create(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Leases__V1__CreateRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        const char *ns;
        if (!call_ns(call, ctx, &ns))
                return;
        struct job *j = xcalloc(1, sizeof(*j));
        j->op = OP_CREATE;
        j->id = in->id && in->id[0] ? xstrdup(in->id) : services_leases_random_id();
        for (size_t i = 0; i < in->n_labels; i++)
                metadata_labels_set(&j->labels, in->labels[i]->key ? in->labels[i]->key : "",
                                    in->labels[i]->value ? in->labels[i]->value : "");
        job_start(call, ctx, ns, j);
}

static void on_delete(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Leases__V1__DeleteRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        const char *ns;
        if (!call_ns(call, ctx, &ns))
                return;
        struct job *j = xcalloc(1, sizeof(*j));
        j->op = OP_DELETE;
        j->id = xstrdup(in->id ? in->id : "");
        j->sync = in->sync;
        job_start(call, ctx, ns, j);
}

static void on_resource(struct grpc_call *call, enum op op, const char *id, const Resource *res,
                        struct services_ctx *ctx)
{
        const char *ns;
        if (!call_ns(call, ctx, &ns))
                return;
        struct job *j = xcalloc(1, sizeof(*j));
        j->op = op;
        j->id = xstrdup(id ? id : "");
        j->res.id = xstrdup(res && res->id ? res->id : "");
        j->res.type = xstrdup(res && res->type ? res->type : "");
        job_start(call, ctx, ns, j);
}

static void on_add_resource(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Leases__V1__AddResourceRequest *in = (const void *)req;
        on_resource(call, OP_ADD, in->id, in->resource, userdata);
}

static void on_delete_resource(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Leases__V1__DeleteResourceRequest *in = (const void *)req;
        on_resource(call, OP_DEL_RES, in->id, in->resource, userdata);
}

static void on_list(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Leases__V1__ListRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        _cleanup_error_ struct error *err = NULL;
        _cleanup_(filter_freep) struct filter *f = NULL;
        struct metadata_lease *list = NULL;
        size_t n = 0;
        const char *ns;
        if (!call_ns(call, ctx, &ns))
                return;
        int r = filter_parse(in->filters, in->n_filters, &f, &err);
        if (r == 0)
                r = metadata_lease_list(ctx->db, ns, f, &list, &n, &err);
        if (r < 0) {
                grpc_call_fail(call, r, err);
                return;
        }
        _cleanup_free_ struct lease_msg *lms = xcalloc(n + 1, sizeof(*lms));
        _cleanup_free_ Lease **ptrs = xcalloc(n + 1, sizeof(*ptrs));
        for (size_t i = 0; i < n; i++) {
                lease_msg_fill(&lms[i], &list[i]);
                ptrs[i] = &lms[i].m;
        }
        Containerd__Services__Leases__V1__ListResponse resp = CONTAINERD__SERVICES__LEASES__V1__LIST_RESPONSE__INIT;
        resp.n_leases = n;
        resp.leases = ptrs;
        grpc_call_reply(call, &resp.base);
        for (size_t i = 0; i < n; i++)
                lease_msg_free(&lms[i]);
        metadata_lease_list_free(list, n);
}

static void on_list_resources(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Leases__V1__ListResourcesRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        _cleanup_error_ struct error *err = NULL;
        struct metadata_lease_resource *res = NULL;
        size_t n = 0;
        const char *ns;
        if (!call_ns(call, ctx, &ns))
                return;
        int r = metadata_lease_list_resources(ctx->db, ns, in->id ? in->id : "", &res, &n, &err);
        if (r < 0) {
                grpc_call_fail(call, r, err);
                return;
        }
        _cleanup_free_ Resource *msgs = xcalloc(n + 1, sizeof(*msgs));
        _cleanup_free_ Resource **ptrs = xcalloc(n + 1, sizeof(*ptrs));
        for (size_t i = 0; i < n; i++) {
                containerd__services__leases__v1__resource__init(&msgs[i]);
                msgs[i].id = res[i].id;
                msgs[i].type = res[i].type;
                ptrs[i] = &msgs[i];
        }
        Containerd__Services__Leases__V1__ListResourcesResponse resp =
            CONTAINERD__SERVICES__LEASES__V1__LIST_RESOURCES_RESPONSE__INIT;
        resp.n_resources = n;
        resp.resources = ptrs;
        grpc_call_reply(call, &resp.base);
        metadata_lease_resources_free(res, n);
}

void services_leases_register(struct grpc_server *s, struct services_ctx *ctx)
{
        const struct grpc_method methods[] = {
            {SVC "Create", GRPC_METHOD_UNARY, &containerd__services__leases__v1__create_request__descriptor, on_create,
             NULL, ctx},
            {SVC "Delete", GRPC_METHOD_UNARY, &containerd__services__leases__v1__delete_request__descriptor, on_delete,
             NULL, ctx},
            {SVC "List", GRPC_METHOD_UNARY, &containerd__services__leases__v1__list_request__descriptor, on_list, NULL,
             ctx},
            {SVC "AddResource", GRPC_METHOD_UNARY, &containerd__services__leases__v1__add_resource_request__descriptor,
             on_add_resource, NULL, ctx},
            {SVC "DeleteResource", GRPC_METHOD_UNARY,
             &containerd__services__leases__v1__delete_resource_request__descriptor, on_delete_resource, NULL, ctx},
            {SVC "ListResources", GRPC_METHOD_UNARY,
             &containerd__services__leases__v1__list_resources_request__descriptor, on_list_resources, NULL, ctx},
        };
        for (size_t i = 0; i < ELEMENTSOF(methods); i++)
                if (grpc_server_add_method(s, &methods[i]) < 0)
                        log_warn("leases: method %s registered twice", methods[i].path);
}

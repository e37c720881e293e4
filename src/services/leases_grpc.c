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

enum op { OP_CREATE, OP_DELETE, OP_ADD, OP_DEL_RES };

struct job {
        struct services_job base;
        enum op op;
        char *id;
        char **labels;
        struct metadata_lease_resource res;
        struct metadata_lease out;
};

static void job_free(struct services_job *b)
{
        struct job *j = (struct job *)b;
        free(j->id);
        strv_free(j->labels);
        free(j->res.id);
        free(j->res.type);
        metadata_lease_clear(&j->out);
        free(j);
}

static void job_run(struct services_job *b)
{
        struct job *j = (struct job *)b;
        struct metadata_db *db = b->ctx->db;
        switch (j->op) {
        case OP_CREATE:
                b->r = metadata_lease_create(db, b->ns, j->id, j->labels, &j->out, &b->err);
                break;
        case OP_DELETE:
                b->r = metadata_lease_delete(db, b->ns, j->id, &b->err);
                break;
        case OP_ADD:
                b->r = metadata_lease_add_resource(db, b->ns, j->id, &j->res, &b->err);
                break;
        case OP_DEL_RES:
                b->r = metadata_lease_delete_resource(db, b->ns, j->id, &j->res, &b->err);
                break;
        }
}

static void reply_created(struct services_job *b)
{
        struct job *j = (struct job *)b;
        struct lease_msg lm;
        lease_msg_fill(&lm, &j->out);
        Containerd__Services__Leases__V1__CreateResponse resp = CONTAINERD__SERVICES__LEASES__V1__CREATE_RESPONSE__INIT;
        resp.lease = &lm.m;
        grpc_call_reply(b->call, &resp.base);
        lease_msg_free(&lm);
}

static struct job *job_new(enum op op, const char *id)
{
        struct job *j = xcalloc(1, sizeof(*j));
        j->op = op;
        j->id = id ? xstrdup(id) : NULL;
        j->base.run = job_run;
        j->base.reply = op == OP_CREATE ? reply_created : NULL;
        j->base.free = job_free;
        j->base.collect = op == OP_DELETE || op == OP_DEL_RES;
        return j;
}

static void on_create(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Leases__V1__CreateRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        const char *ns;
        if (!services_call_db_ns(call, ctx, &ns))
                return;
        struct job *j = job_new(OP_CREATE, NULL);
        j->id = in->id && in->id[0] ? xstrdup(in->id) : services_leases_random_id();
        for (size_t i = 0; i < in->n_labels; i++)
                metadata_labels_set(&j->labels, in->labels[i]->key ? in->labels[i]->key : "",
                                    in->labels[i]->value ? in->labels[i]->value : "");
        services_job_start(&j->base, call, ctx, ns);
}

static void on_delete(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Leases__V1__DeleteRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        const char *ns;
        if (!services_call_db_ns(call, ctx, &ns))
                return;
        struct job *j = job_new(OP_DELETE, in->id ? in->id : "");
        j->base.sync = in->sync;
        services_job_start(&j->base, call, ctx, ns);
}

static void on_resource(struct grpc_call *call, enum op op, const char *id, const Resource *res,
                        struct services_ctx *ctx)
{
        const char *ns;
        if (!services_call_db_ns(call, ctx, &ns))
                return;
        struct job *j = job_new(op, id ? id : "");
        j->res.id = xstrdup(res && res->id ? res->id : "");
        j->res.type = xstrdup(res && res->type ? res->type : "");
        services_job_start(&j->base, call, ctx, ns);
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
        if (!services_call_db_ns(call, ctx, &ns))
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
        if (!services_call_db_ns(call, ctx, &ns))
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

/* namespaces.v1 gRPC adapter. Reads run inline on the loop (LMDB readers never block); writes commit with
 * fsync, so they run on the worker pool and answer from the loop when done. */
#include <errno.h>
#include <string.h>

#include "events/exchange.h"
#include "github.com/containerd/containerd/api/events/namespace.pb-c.h"
#include "github.com/containerd/containerd/api/services/namespaces/v1/namespace.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "metadata/db.h"
#include "services/namespaces.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/log.h"

typedef Containerd__Services__Namespaces__V1__Namespace Namespace;
typedef Containerd__Services__Namespaces__V1__Namespace__LabelsEntry LabelsEntry;

enum ns_op {
        NS_CREATE,
        NS_UPDATE,
        NS_DELETE,
};

/* base.ns is the call's containerd-namespace header (may be NULL): events go there. */
struct ns_job {
        struct services_job base;
        enum ns_op op;
        char *name;
        char **labels; /* pairs */
        char **paths;
        size_t n_paths;
};

static char **labels_from_msg(LabelsEntry **entries, size_t n)
{
        char **labels = NULL;
        for (size_t i = 0; i < n; i++)
                metadata_labels_set(&labels, entries[i]->key ? entries[i]->key : "",
                                    entries[i]->value ? entries[i]->value : "");
        return labels;
}

/* Fills m with borrowed strings from name/labels; entries/ptrs must hold labels' pair count. */
static void namespace_msg_fill(Namespace *m, const char *name, char *const *labels, LabelsEntry *entries,
                               LabelsEntry **ptrs)
{
        containerd__services__namespaces__v1__namespace__init(m);
        m->name = (char *)name;
        size_t n = labels ? metadata_labels_count(labels) : 0;
        for (size_t i = 0; i < n; i++) {
                containerd__services__namespaces__v1__namespace__labels_entry__init(&entries[i]);
                entries[i].key = labels[2 * i];
                entries[i].value = labels[2 * i + 1];
                ptrs[i] = &entries[i];
        }
        m->n_labels = n;
        m->labels = ptrs;
}

static struct metadata_db *ctx_db(struct grpc_call *call, void *userdata)
{
        struct services_ctx *ctx = userdata;
        if (!ctx->db)
                grpc_call_finish(call, GRPC_UNAVAILABLE, "metadata store is not available");
        return ctx->db;
}

static void on_get(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Namespaces__V1__GetNamespaceRequest *in = (const void *)req;
        struct metadata_db *db = ctx_db(call, userdata);
        _cleanup_error_ struct error *err = NULL;
        struct services_namespace ns = {0};

        if (!db)
                return;
        int r = services_namespaces_get(db, in->name ? in->name : "", &ns, &err);
        if (r < 0) {
                grpc_call_fail(call, r, err);
                return;
        }
        size_t n = metadata_labels_count(ns.labels);
        _cleanup_free_ LabelsEntry *entries = xcalloc(n + 1, sizeof(*entries));
        _cleanup_free_ LabelsEntry **ptrs = xcalloc(n + 1, sizeof(*ptrs));
        Namespace m;
        namespace_msg_fill(&m, ns.name, ns.labels, entries, ptrs);
        Containerd__Services__Namespaces__V1__GetNamespaceResponse resp =
                CONTAINERD__SERVICES__NAMESPACES__V1__GET_NAMESPACE_RESPONSE__INIT;
        resp.namespace_ = &m;
        grpc_call_reply(call, &resp.base);
        services_namespace_done(&ns);
}

static void on_list(struct grpc_call *call, _unused_ const ProtobufCMessage *req, void *userdata)
{
        struct metadata_db *db = ctx_db(call, userdata);
        _cleanup_error_ struct error *err = NULL;
        struct services_namespace *list = NULL;
        size_t n = 0;

        if (!db)
                return;
        int r = services_namespaces_list(db, &list, &n, &err);
        if (r < 0) {
                grpc_call_fail(call, r, err);
                return;
        }
        size_t total = 0;
        for (size_t i = 0; i < n; i++)
                total += metadata_labels_count(list[i].labels);
        _cleanup_free_ Namespace *msgs = xcalloc(n + 1, sizeof(*msgs));
        _cleanup_free_ Namespace **mptrs = xcalloc(n + 1, sizeof(*mptrs));
        _cleanup_free_ LabelsEntry *entries = xcalloc(total + 1, sizeof(*entries));
        _cleanup_free_ LabelsEntry **ptrs = xcalloc(total + 1, sizeof(*ptrs));
        size_t off = 0;
        for (size_t i = 0; i < n; i++) {
                namespace_msg_fill(&msgs[i], list[i].name, list[i].labels, entries + off, ptrs + off);
                off += msgs[i].n_labels;
                mptrs[i] = &msgs[i];
        }
        Containerd__Services__Namespaces__V1__ListNamespacesResponse resp =
                CONTAINERD__SERVICES__NAMESPACES__V1__LIST_NAMESPACES_RESPONSE__INIT;
        resp.n_namespaces = n;
        resp.namespaces = mptrs;
        grpc_call_reply(call, &resp.base);
        for (size_t i = 0; i < n; i++)
                services_namespace_done(&list[i]);
        free(list);
}

static void job_free(struct services_job *b)
{
        struct ns_job *job = (struct ns_job *)b;
        free(job->name);
        strv_free(job->labels);
        for (size_t i = 0; i < job->n_paths; i++)
                free(job->paths[i]);
        free(job->paths);
        free(job);
}

static void job_run(struct services_job *b)
{
        struct ns_job *job = (struct ns_job *)b;
        struct metadata_db *db = b->ctx->db;
        switch (job->op) {
        case NS_CREATE:
                b->r = services_namespaces_create(db, job->name, job->labels, &b->err);
                break;
        case NS_UPDATE:
                b->r = services_namespaces_update(db, job->name, job->labels, job->paths, job->n_paths, &b->err);
                break;
        case NS_DELETE:
                b->r = services_namespaces_delete(db, job->name, &b->err);
                break;
        }
}

static void job_reply(struct services_job *b)
{
        struct ns_job *job = (struct ns_job *)b;
        size_t n = metadata_labels_count(job->labels);
        _cleanup_free_ LabelsEntry *entries = xcalloc(n + 1, sizeof(*entries));
        _cleanup_free_ LabelsEntry **ptrs = xcalloc(n + 1, sizeof(*ptrs));
        Namespace m;

        switch (job->op) {
        case NS_CREATE: {
                /* containerd echoes the request's namespace */
                namespace_msg_fill(&m, job->name, job->labels, entries, ptrs);
                Containerd__Services__Namespaces__V1__CreateNamespaceResponse resp =
                        CONTAINERD__SERVICES__NAMESPACES__V1__CREATE_NAMESPACE_RESPONSE__INIT;
                resp.namespace_ = &m;
                grpc_call_reply(b->call, &resp.base);
                break;
        }
        case NS_UPDATE: {
                /* containerd leaves the response's (non-nullable) namespace empty */
                namespace_msg_fill(&m, "", NULL, entries, ptrs);
                Containerd__Services__Namespaces__V1__UpdateNamespaceResponse resp =
                        CONTAINERD__SERVICES__NAMESPACES__V1__UPDATE_NAMESPACE_RESPONSE__INIT;
                resp.namespace_ = &m;
                grpc_call_reply(b->call, &resp.base);
                break;
        }
        case NS_DELETE:
                services_reply_empty(b->call);
                break;
        }
}

/* containerd publishes /namespaces/{create,update,delete} after the commit, in the caller's namespace (the
 * deleted namespace itself for delete), with the request's labels. As there, a failure to publish fails the
 * call although the change is committed. */
static int job_publish(struct services_job *b, struct error **err)
{
        struct ns_job *job = (struct ns_job *)b;
        struct events_exchange *events = b->ctx->events; /* NULL: no event plugin */
        size_t n = metadata_labels_count(job->labels);

        if (!events)
                return 0;
        switch (job->op) {
        case NS_CREATE: {
                _cleanup_free_ Containerd__Events__NamespaceCreate__LabelsEntry *e = xcalloc(n + 1, sizeof(*e));
                _cleanup_free_ Containerd__Events__NamespaceCreate__LabelsEntry **p = xcalloc(n + 1, sizeof(*p));
                for (size_t i = 0; i < n; i++) {
                        containerd__events__namespace_create__labels_entry__init(&e[i]);
                        e[i].key = job->labels[2 * i];
                        e[i].value = job->labels[2 * i + 1];
                        p[i] = &e[i];
                }
                Containerd__Events__NamespaceCreate ev = CONTAINERD__EVENTS__NAMESPACE_CREATE__INIT;
                ev.name = job->name;
                ev.n_labels = n;
                ev.labels = p;
                return events_publish(events, b->ns, "/namespaces/create", &ev.base, err);
        }
        case NS_UPDATE: {
                _cleanup_free_ Containerd__Events__NamespaceUpdate__LabelsEntry *e = xcalloc(n + 1, sizeof(*e));
                _cleanup_free_ Containerd__Events__NamespaceUpdate__LabelsEntry **p = xcalloc(n + 1, sizeof(*p));
                for (size_t i = 0; i < n; i++) {
                        containerd__events__namespace_update__labels_entry__init(&e[i]);
                        e[i].key = job->labels[2 * i];
                        e[i].value = job->labels[2 * i + 1];
                        p[i] = &e[i];
                }
                Containerd__Events__NamespaceUpdate ev = CONTAINERD__EVENTS__NAMESPACE_UPDATE__INIT;
                ev.name = job->name;
                ev.n_labels = n;
                ev.labels = p;
                return events_publish(events, b->ns, "/namespaces/update", &ev.base, err);
        }
        case NS_DELETE: {
                Containerd__Events__NamespaceDelete ev = CONTAINERD__EVENTS__NAMESPACE_DELETE__INIT;
                ev.name = job->name;
                return events_publish(events, job->name, "/namespaces/delete", &ev.base, err);
        }
        }
        return 0;
}

static struct ns_job *job_new(enum ns_op op, const char *name)
{
        struct ns_job *job = xcalloc(1, sizeof(*job));
        job->op = op;
        job->name = xstrdup(name ? name : "");
        job->base.run = job_run;
        job->base.publish = job_publish;
        job->base.reply = job_reply;
        job->base.free = job_free;
        return job;
}

static void job_start(struct grpc_call *call, struct services_ctx *ctx, struct ns_job *job)
{
        services_job_start(&job->base, call, ctx, grpc_call_metadata(call, "containerd-namespace"));
}

static void on_create(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Namespaces__V1__CreateNamespaceRequest *in = (const void *)req;
        if (!ctx_db(call, userdata))
                return;
        struct ns_job *job = job_new(NS_CREATE, in->namespace_ ? in->namespace_->name : NULL);
        if (in->namespace_)
                job->labels = labels_from_msg(in->namespace_->labels, in->namespace_->n_labels);
        job_start(call, userdata, job);
}

static void on_update(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Namespaces__V1__UpdateNamespaceRequest *in = (const void *)req;
        if (!ctx_db(call, userdata))
                return;
        struct ns_job *job = job_new(NS_UPDATE, in->namespace_ ? in->namespace_->name : NULL);
        if (in->namespace_)
                job->labels = labels_from_msg(in->namespace_->labels, in->namespace_->n_labels);
        if (in->update_mask && in->update_mask->n_paths > 0) {
                job->n_paths = in->update_mask->n_paths;
                job->paths = xcalloc(job->n_paths + 1, sizeof(char *));
                for (size_t i = 0; i < job->n_paths; i++)
                        job->paths[i] = xstrdup(in->update_mask->paths[i] ? in->update_mask->paths[i] : "");
        }
        job_start(call, userdata, job);
}

static void on_delete(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Namespaces__V1__DeleteNamespaceRequest *in = (const void *)req;
        if (!ctx_db(call, userdata))
                return;
        struct ns_job *job = job_new(NS_DELETE, in->name);
        job_start(call, userdata, job);
}

#define NS_PATH(m) "/containerd.services.namespaces.v1.Namespaces/" m

void services_namespaces_register(struct grpc_server *s, struct services_ctx *ctx)
{
        const struct grpc_method methods[] = {
                {NS_PATH("Get"), GRPC_METHOD_UNARY,
                 &containerd__services__namespaces__v1__get_namespace_request__descriptor, on_get, NULL, ctx},
                {NS_PATH("List"), GRPC_METHOD_UNARY,
                 &containerd__services__namespaces__v1__list_namespaces_request__descriptor, on_list, NULL, ctx},
                {NS_PATH("Create"), GRPC_METHOD_UNARY,
                 &containerd__services__namespaces__v1__create_namespace_request__descriptor, on_create, NULL, ctx},
                {NS_PATH("Update"), GRPC_METHOD_UNARY,
                 &containerd__services__namespaces__v1__update_namespace_request__descriptor, on_update, NULL, ctx},
                {NS_PATH("Delete"), GRPC_METHOD_UNARY,
                 &containerd__services__namespaces__v1__delete_namespace_request__descriptor, on_delete, NULL, ctx},
        };
        for (size_t i = 0; i < ELEMENTSOF(methods); i++)
                (void)grpc_server_add_method(s, &methods[i]);
}

/* containers.v1 gRPC adapter: decode, call the metadata store, encode, map errors. Reads run inline on the
 * loop (LMDB readers never block); writes fsync, so they run on the worker pool. */
#include <errno.h>
#include <string.h>

#include "events/exchange.h"
#include "github.com/containerd/containerd/api/events/container.pb-c.h"
#include "github.com/containerd/containerd/api/services/containers/v1/containers.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "metadata/containers.h"
#include "metadata/db.h"
#include "metadata/filters.h"
#include "services/containers.h"
#include "services/content.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/time.h"

typedef Containerd__Services__Containers__V1__Container Container;
typedef Containerd__Services__Containers__V1__Container__LabelsEntry LabelsEntry;
typedef Containerd__Services__Containers__V1__Container__ExtensionsEntry ExtensionsEntry;
typedef Containerd__Services__Containers__V1__Container__Runtime Runtime;

/* A Container message built from a record; every pointer borrows from the record or this struct. */
struct container_msg {
        Container m;
        Runtime runtime;
        Google__Protobuf__Any runtime_options, spec;
        Google__Protobuf__Timestamp created, updated;
        LabelsEntry *labels;
        LabelsEntry **label_ptrs;
        ExtensionsEntry *exts;
        ExtensionsEntry **ext_ptrs;
        Google__Protobuf__Any *ext_anys;
};

static void any_to_msg(Google__Protobuf__Any *dst, const struct metadata_any *src)
{
        google__protobuf__any__init(dst);
        dst->type_url = src->type_url;
        dst->value.data = src->value;
        dst->value.len = src->len;
}

static void container_msg_fill(struct container_msg *cm, const struct metadata_container *c)
{
        memset(cm, 0, sizeof(*cm));
        containerd__services__containers__v1__container__init(&cm->m);
        cm->m.id = c->id;
        cm->m.image = c->image;
        cm->m.snapshotter = c->snapshotter;
        cm->m.snapshot_key = c->snapshot_key;
        containerd__services__containers__v1__container__runtime__init(&cm->runtime);
        cm->runtime.name = c->runtime_name;
        if (c->runtime_options.type_url) {
                any_to_msg(&cm->runtime_options, &c->runtime_options);
                cm->runtime.options = &cm->runtime_options;
        }
        cm->m.runtime = &cm->runtime;
        if (c->spec.type_url) {
                any_to_msg(&cm->spec, &c->spec);
                cm->m.spec = &cm->spec;
        }
        google__protobuf__timestamp__init(&cm->created);
        google__protobuf__timestamp__init(&cm->updated);
        time_pb_from_ns(c->created_at, &cm->created.seconds, &cm->created.nanos);
        time_pb_from_ns(c->updated_at, &cm->updated.seconds, &cm->updated.nanos);
        cm->m.created_at = &cm->created;
        cm->m.updated_at = &cm->updated;
        size_t nl = c->labels ? metadata_labels_count(c->labels) : 0;
        cm->labels = xcalloc(nl + 1, sizeof(*cm->labels));
        cm->label_ptrs = xcalloc(nl + 1, sizeof(*cm->label_ptrs));
        for (size_t i = 0; i < nl; i++) {
                containerd__services__containers__v1__container__labels_entry__init(&cm->labels[i]);
                cm->labels[i].key = c->labels[2 * i];
                cm->labels[i].value = c->labels[2 * i + 1];
                cm->label_ptrs[i] = &cm->labels[i];
        }
        cm->m.n_labels = nl;
        cm->m.labels = cm->label_ptrs;
        cm->exts = xcalloc(c->nextensions + 1, sizeof(*cm->exts));
        cm->ext_ptrs = xcalloc(c->nextensions + 1, sizeof(*cm->ext_ptrs));
        cm->ext_anys = xcalloc(c->nextensions + 1, sizeof(*cm->ext_anys));
        for (size_t i = 0; i < c->nextensions; i++) {
                containerd__services__containers__v1__container__extensions_entry__init(&cm->exts[i]);
                cm->exts[i].key = c->extensions[i].name;
                any_to_msg(&cm->ext_anys[i], &c->extensions[i].value);
                cm->exts[i].value = &cm->ext_anys[i];
                cm->ext_ptrs[i] = &cm->exts[i];
        }
        cm->m.n_extensions = c->nextensions;
        cm->m.extensions = cm->ext_ptrs;
}

static void container_msg_done(struct container_msg *cm)
{
        free(cm->labels);
        free(cm->label_ptrs);
        free(cm->exts);
        free(cm->ext_ptrs);
        free(cm->ext_anys);
}

static void any_from_msg(struct metadata_any *dst, const Google__Protobuf__Any *src)
{
        memset(dst, 0, sizeof(*dst));
        if (!src)
                return;
        dst->type_url = xstrdup(src->type_url ? src->type_url : "");
        dst->len = src->value.len;
        dst->value = src->value.len ? xmemdup(src->value.data, src->value.len) : NULL;
}

/* Copies a Container message into a record the caller owns (clear with metadata_container_clear). */
static void container_from_msg(struct metadata_container *c, const Container *m)
{
        memset(c, 0, sizeof(*c));
        c->id = xstrdup(m->id ? m->id : "");
        c->image = xstrdup(m->image ? m->image : "");
        c->snapshotter = xstrdup(m->snapshotter ? m->snapshotter : "");
        c->snapshot_key = xstrdup(m->snapshot_key ? m->snapshot_key : "");
        if (m->runtime) {
                c->runtime_name = xstrdup(m->runtime->name ? m->runtime->name : "");
                any_from_msg(&c->runtime_options, m->runtime->options);
        } else
                c->runtime_name = xstrdup("");
        any_from_msg(&c->spec, m->spec);
        for (size_t i = 0; i < m->n_labels; i++)
                metadata_labels_set(&c->labels, m->labels[i]->key ? m->labels[i]->key : "",
                                    m->labels[i]->value ? m->labels[i]->value : "");
        if (m->n_extensions) {
                c->extensions = xcalloc(m->n_extensions, sizeof(*c->extensions));
                for (size_t i = 0; i < m->n_extensions; i++) {
                        c->extensions[i].name = xstrdup(m->extensions[i]->key ? m->extensions[i]->key : "");
                        any_from_msg(&c->extensions[i].value, m->extensions[i]->value);
                }
                c->nextensions = m->n_extensions;
        }
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
        const Containerd__Services__Containers__V1__GetContainerRequest *in = (const void *)req;
        _cleanup_error_ struct error *err = NULL;
        const char *ns;
        struct metadata_db *db = ctx_db(call, userdata);
        if (!db)
                return;
        int r = services_call_namespace(call, &ns, &err);
        if (r < 0) {
                grpc_call_fail(call, r, err);
                return;
        }
        if (!in->id || !*in->id) {
                grpc_call_finish(call, GRPC_INVALID_ARGUMENT, "Container.ID required: invalid argument");
                return;
        }
        struct metadata_container c;
        r = metadata_container_get(db, ns, in->id, &c, &err);
        if (r < 0) {
                grpc_call_fail(call, r, err);
                return;
        }
        struct container_msg cm;
        container_msg_fill(&cm, &c);
        Containerd__Services__Containers__V1__GetContainerResponse resp =
                CONTAINERD__SERVICES__CONTAINERS__V1__GET_CONTAINER_RESPONSE__INIT;
        resp.container = &cm.m;
        grpc_call_reply(call, &resp.base);
        container_msg_done(&cm);
        metadata_container_clear(&c);
}

static int list_containers(struct grpc_call *call, void *userdata, char **filters, size_t nfilters,
                           struct metadata_container **ret, size_t *ret_n)
{
        _cleanup_error_ struct error *err = NULL;
        const char *ns;
        struct metadata_db *db = ctx_db(call, userdata);
        if (!db)
                return -EAGAIN;
        int r = services_call_namespace(call, &ns, &err);
        if (r < 0) {
                grpc_call_fail(call, r, err);
                return r;
        }
        struct filter *f = NULL;
        if (nfilters > 0) {
                r = filter_parse(filters, nfilters, &f, &err);
                if (r < 0) {
                        grpc_call_fail(call, r, err);
                        return r;
                }
        }
        r = metadata_container_list(db, ns, f, ret, ret_n, &err);
        filter_free(f);
        if (r < 0)
                grpc_call_fail(call, r, err);
        return r;
}

static void on_list(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Containers__V1__ListContainersRequest *in = (const void *)req;
        struct metadata_container *list = NULL;
        size_t n = 0;
        if (list_containers(call, userdata, in->filters, in->n_filters, &list, &n) < 0)
                return;
        struct container_msg *cms = xcalloc(n + 1, sizeof(*cms));
        Container **ptrs = xcalloc(n + 1, sizeof(*ptrs));
        for (size_t i = 0; i < n; i++) {
                container_msg_fill(&cms[i], &list[i]);
                ptrs[i] = &cms[i].m;
        }
        Containerd__Services__Containers__V1__ListContainersResponse resp =
                CONTAINERD__SERVICES__CONTAINERS__V1__LIST_CONTAINERS_RESPONSE__INIT;
        resp.n_containers = n;
        resp.containers = ptrs;
        /* A response over the send limit fails the call cleanly (RESOURCE_EXHAUSTED); ListStream has no limit. */
        grpc_call_reply(call, &resp.base);
        for (size_t i = 0; i < n; i++)
                container_msg_done(&cms[i]);
        free(cms);
        free(ptrs);
        metadata_container_list_free(list, n);
}

static void on_list_stream(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Containers__V1__ListContainersRequest *in = (const void *)req;
        struct metadata_container *list = NULL;
        size_t n = 0;
        if (list_containers(call, userdata, in->filters, in->n_filters, &list, &n) < 0)
                return;
        for (size_t i = 0; i < n && !grpc_call_is_done(call); i++) {
                struct container_msg cm;
                container_msg_fill(&cm, &list[i]);
                Containerd__Services__Containers__V1__ListContainerMessage msg =
                        CONTAINERD__SERVICES__CONTAINERS__V1__LIST_CONTAINER_MESSAGE__INIT;
                msg.container = &cm.m;
                (void)grpc_call_send(call, &msg.base);
                container_msg_done(&cm);
        }
        grpc_call_finish(call, GRPC_OK, NULL);
        metadata_container_list_free(list, n);
}

enum ctr_op {
        CTR_CREATE,
        CTR_UPDATE,
        CTR_DELETE,
};

struct ctr_job {
        struct services_job base;
        enum ctr_op op;
        struct metadata_container in, out;
        char **paths;
        size_t npaths;
};

static void job_run(struct services_job *b)
{
        struct ctr_job *job = (struct ctr_job *)b;
        struct metadata_db *db = b->ctx->db;
        switch (job->op) {
        case CTR_CREATE:
                b->r = metadata_container_create(db, b->ns, &job->in, &job->out, &b->err);
                break;
        case CTR_UPDATE:
                b->r = metadata_container_update(db, b->ns, &job->in, job->paths, job->npaths, &job->out, &b->err);
                break;
        case CTR_DELETE:
                b->r = metadata_container_delete(db, b->ns, job->in.id, &b->err);
                break;
        }
}

/* The events containerd's containers service publishes after a successful write (services/containers/local.go).
 * A failure to publish is logged, not returned: the write is committed. */
static int publish_event(struct services_job *b, struct error **unused)
{
        struct ctr_job *job = (struct ctr_job *)b;
        _cleanup_error_ struct error *e = NULL;
        const char *topic;
        int r;
        (void)unused;
        if (!b->ctx->events)
                return 0;
        if (job->op == CTR_CREATE) {
                Containerd__Events__ContainerCreate ev = CONTAINERD__EVENTS__CONTAINER_CREATE__INIT;
                Containerd__Events__ContainerCreate__Runtime rt = CONTAINERD__EVENTS__CONTAINER_CREATE__RUNTIME__INIT;
                Google__Protobuf__Any opts;
                topic = "/containers/create";
                ev.id = job->out.id;
                ev.image = job->out.image ? job->out.image : "";
                rt.name = job->out.runtime_name ? job->out.runtime_name : "";
                if (job->out.runtime_options.type_url) {
                        any_to_msg(&opts, &job->out.runtime_options);
                        rt.options = &opts;
                }
                ev.runtime = &rt;
                r = events_publish(b->ctx->events, b->ns, topic, &ev.base, &e);
        } else if (job->op == CTR_UPDATE) {
                size_t n = metadata_labels_count(job->out.labels);
                _cleanup_free_ Containerd__Events__ContainerUpdate__LabelsEntry *ent = xcalloc(n + 1, sizeof(*ent));
                _cleanup_free_ Containerd__Events__ContainerUpdate__LabelsEntry **ptr = xcalloc(n + 1, sizeof(*ptr));
                Containerd__Events__ContainerUpdate ev = CONTAINERD__EVENTS__CONTAINER_UPDATE__INIT;
                topic = "/containers/update";
                for (size_t i = 0; i < n; i++) {
                        containerd__events__container_update__labels_entry__init(&ent[i]);
                        ent[i].key = job->out.labels[2 * i];
                        ent[i].value = job->out.labels[2 * i + 1];
                        ptr[i] = &ent[i];
                }
                ev.id = job->out.id;
                ev.image = job->out.image ? job->out.image : "";
                ev.n_labels = n;
                ev.labels = ptr;
                ev.snapshot_key = job->out.snapshot_key ? job->out.snapshot_key : "";
                r = events_publish(b->ctx->events, b->ns, topic, &ev.base, &e);
        } else {
                Containerd__Events__ContainerDelete ev = CONTAINERD__EVENTS__CONTAINER_DELETE__INIT;
                topic = "/containers/delete";
                ev.id = job->in.id;
                r = events_publish(b->ctx->events, b->ns, topic, &ev.base, &e);
        }
        if (r < 0)
                log_warn("publish %s: %s", topic, error_str(e));
        return 0;
}

static void job_reply(struct services_job *b)
{
        struct ctr_job *job = (struct ctr_job *)b;
        struct container_msg cm;
        container_msg_fill(&cm, &job->out);
        if (job->op == CTR_CREATE) {
                Containerd__Services__Containers__V1__CreateContainerResponse resp =
                        CONTAINERD__SERVICES__CONTAINERS__V1__CREATE_CONTAINER_RESPONSE__INIT;
                resp.container = &cm.m;
                grpc_call_reply(b->call, &resp.base);
        } else {
                Containerd__Services__Containers__V1__UpdateContainerResponse resp =
                        CONTAINERD__SERVICES__CONTAINERS__V1__UPDATE_CONTAINER_RESPONSE__INIT;
                resp.container = &cm.m;
                grpc_call_reply(b->call, &resp.base);
        }
        container_msg_done(&cm);
}

static void job_free(struct services_job *b)
{
        struct ctr_job *job = (struct ctr_job *)b;
        metadata_container_clear(&job->in);
        metadata_container_clear(&job->out);
        strv_free(job->paths);
        free(job);
}

/* A deleted container releases its snapshot lease reference: the GC (collect) may take its snapshot. */
static struct ctr_job *job_new(struct grpc_call *call, struct services_ctx *ctx, enum ctr_op op, const char **ret_ns)
{
        if (!services_call_db_ns(call, ctx, ret_ns))
                return NULL;
        struct ctr_job *job = xcalloc(1, sizeof(*job));
        job->op = op;
        job->base.run = job_run;
        job->base.publish = publish_event;
        job->base.reply = op == CTR_DELETE ? NULL : job_reply;
        job->base.free = job_free;
        job->base.collect = op == CTR_DELETE;
        return job;
}

static void on_create(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Containers__V1__CreateContainerRequest *in = (const void *)req;
        if (!in->container) {
                grpc_call_finish(call, GRPC_INVALID_ARGUMENT, "container is required: invalid argument");
                return;
        }
        const char *ns;
        struct ctr_job *job = job_new(call, userdata, CTR_CREATE, &ns);
        if (!job)
                return;
        container_from_msg(&job->in, in->container);
        services_job_start(&job->base, call, userdata, ns);
}

static void on_update(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Containers__V1__UpdateContainerRequest *in = (const void *)req;
        if (!in->container || !in->container->id || !*in->container->id) {
                grpc_call_finish(call, GRPC_INVALID_ARGUMENT, "Container.ID required: invalid argument");
                return;
        }
        const char *ns;
        struct ctr_job *job = job_new(call, userdata, CTR_UPDATE, &ns);
        if (!job)
                return;
        container_from_msg(&job->in, in->container);
        if (in->update_mask && in->update_mask->n_paths) {
                job->paths = xcalloc(in->update_mask->n_paths + 1, sizeof(char *));
                for (size_t i = 0; i < in->update_mask->n_paths; i++)
                        job->paths[i] = xstrdup(in->update_mask->paths[i]);
                job->npaths = in->update_mask->n_paths;
        }
        services_job_start(&job->base, call, userdata, ns);
}

static void on_delete(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Containers__V1__DeleteContainerRequest *in = (const void *)req;
        const char *ns;
        struct ctr_job *job = job_new(call, userdata, CTR_DELETE, &ns);
        if (!job)
                return;
        job->in.id = xstrdup(in->id ? in->id : "");
        services_job_start(&job->base, call, userdata, ns);
}

void services_containers_register(struct grpc_server *s, struct services_ctx *ctx)
{
#define P "/containerd.services.containers.v1.Containers/"
        const struct grpc_method methods[] = {
                {P "Get", GRPC_METHOD_UNARY, &containerd__services__containers__v1__get_container_request__descriptor,
                 on_get, NULL, ctx},
                {P "List", GRPC_METHOD_UNARY,
                 &containerd__services__containers__v1__list_containers_request__descriptor, on_list, NULL, ctx},
                {P "ListStream", GRPC_METHOD_SERVER_STREAM,
                 &containerd__services__containers__v1__list_containers_request__descriptor, on_list_stream, NULL,
                 ctx},
                {P "Create", GRPC_METHOD_UNARY,
                 &containerd__services__containers__v1__create_container_request__descriptor, on_create, NULL, ctx},
                {P "Update", GRPC_METHOD_UNARY,
                 &containerd__services__containers__v1__update_container_request__descriptor, on_update, NULL, ctx},
                {P "Delete", GRPC_METHOD_UNARY,
                 &containerd__services__containers__v1__delete_container_request__descriptor, on_delete, NULL, ctx},
        };
#undef P
        for (size_t i = 0; i < ELEMENTSOF(methods); i++)
                (void)grpc_server_add_method(s, &methods[i]);
}

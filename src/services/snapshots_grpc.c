/* snapshots.v1 gRPC adapter. Every call runs on the worker pool (LMDB commits fsync; prepare on the native
 * snapshotter copies trees; usage walks them) and answers from the loop. List streams the infos in batches
 * of 100 as containerd's service does. */
#include <errno.h>
#include <string.h>

#include "events/exchange.h"
#include "github.com/containerd/containerd/api/events/snapshot.pb-c.h"
#include "github.com/containerd/containerd/api/services/snapshots/v1/snapshots.pb-c.h"
#include "github.com/containerd/containerd/api/types/mount.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "services/snapshots.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/strv.h"
#include "util/time.h"

#define LIST_BATCH 100

typedef Containerd__Services__Snapshots__V1__Info Info;
typedef Containerd__Services__Snapshots__V1__Info__LabelsEntry InfoLabel;
typedef Containerd__Types__Mount Mount;

enum snap_op {
        OP_PREPARE,
        OP_VIEW,
        OP_MOUNTS,
        OP_COMMIT,
        OP_REMOVE,
        OP_STAT,
        OP_UPDATE,
        OP_LIST,
        OP_USAGE,
        OP_CLEANUP,
};

struct snap_job {
        uv_work_t work;
        struct grpc_call *call;
        struct services_ctx *ctx;
        enum snap_op op;
        char *ns, *snapshotter, *key, *parent, *name, *lease;
        char **labels;  /* pairs */
        char **paths;   /* update mask */
        char **filters;
        int r;
        struct error *err;
        struct snapshot_mounts mounts;
        struct snapshot_info info;
        struct snapshot_info *list;
        size_t nlist;
        struct snapshot_usage usage;
};

/* Labels entries of any of the snapshot requests share the {key, value} layout. */
struct kv_entry {
        ProtobufCMessage base;
        char *key;
        char *value;
};

static char **labels_from(struct kv_entry **entries, size_t n)
{
        char **l = xcalloc(2 * n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++) {
                l[2 * i] = xstrdup(entries[i]->key ? entries[i]->key : "");
                l[2 * i + 1] = xstrdup(entries[i]->value ? entries[i]->value : "");
        }
        return l;
}

static char **strv_from(char **v, size_t n)
{
        char **l = xcalloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++)
                l[i] = xstrdup(v[i] ? v[i] : "");
        return l;
}

static void job_free(struct snap_job *j)
{
        if (!j)
                return;
        if (j->call)
                grpc_call_unref(j->call);
        free(j->ns);
        free(j->snapshotter);
        free(j->key);
        free(j->parent);
        free(j->name);
        free(j->lease);
        strv_free(j->labels);
        strv_free(j->paths);
        strv_free(j->filters);
        error_free(&j->err);
        snapshot_mounts_clear(&j->mounts);
        snapshot_info_clear(&j->info);
        for (size_t i = 0; i < j->nlist; i++)
                snapshot_info_clear(&j->list[i]);
        free(j->list);
        free(j);
}

static void job_work(uv_work_t *w)
{
        struct snap_job *j = w->data;
        struct services_ctx *c = j->ctx;

        switch (j->op) {
        case OP_PREPARE:
        case OP_VIEW:
                j->r = services_snapshots_prepare(c, j->ns, j->snapshotter, j->key, j->parent, j->labels, j->lease,
                                                  j->op == OP_VIEW, &j->mounts, &j->err);
                break;
        case OP_MOUNTS:
                j->r = services_snapshots_mounts(c, j->ns, j->snapshotter, j->key, &j->mounts, &j->err);
                break;
        case OP_COMMIT:
                j->r = services_snapshots_commit(c, j->ns, j->snapshotter, j->name, j->key, j->labels, j->lease,
                                                 &j->err);
                break;
        case OP_REMOVE:
                j->r = services_snapshots_remove(c, j->ns, j->snapshotter, j->key, &j->err);
                break;
        case OP_STAT:
                j->r = services_snapshots_stat(c, j->ns, j->snapshotter, j->key, &j->info, &j->err);
                break;
        case OP_UPDATE: {
                struct snapshot_info in = {.name = j->name, .labels = j->labels};
                j->r = services_snapshots_update(c, j->ns, j->snapshotter, &in, j->paths, strv_length(j->paths),
                                                 &j->info, &j->err);
                break;
        }
        case OP_LIST:
                j->r = services_snapshots_list(c, j->ns, j->snapshotter, j->filters, strv_length(j->filters),
                                               &j->list, &j->nlist, &j->err);
                break;
        case OP_USAGE:
                j->r = services_snapshots_usage(c, j->ns, j->snapshotter, j->key, &j->usage, &j->err);
                break;
        case OP_CLEANUP:
                j->r = services_snapshots_cleanup(c, j->snapshotter, &j->err);
                break;
        }
}

/* --- encoding (borrowed strings from the job) --- */

struct mounts_msg {
        Mount *m;
        Mount **ptrs;
};

static void mounts_encode(const struct snapshot_mounts *ms, struct mounts_msg *out)
{
        out->m = xcalloc(ms->n + 1, sizeof(Mount));
        out->ptrs = xcalloc(ms->n + 1, sizeof(Mount *));
        for (size_t i = 0; i < ms->n; i++) {
                containerd__types__mount__init(&out->m[i]);
                out->m[i].type = ms->v[i].type;
                out->m[i].source = ms->v[i].source;
                out->m[i].n_options = strv_length(ms->v[i].options);
                out->m[i].options = ms->v[i].options;
                out->ptrs[i] = &out->m[i];
        }
}

struct info_msg {
        Info m;
        Google__Protobuf__Timestamp created, updated;
        InfoLabel *labels;
        InfoLabel **ptrs;
};

static void info_encode(const struct snapshot_info *i, struct info_msg *out)
{
        size_t n = strv_length(i->labels) / 2;
        containerd__services__snapshots__v1__info__init(&out->m);
        out->m.name = i->name;
        out->m.parent = i->parent ? i->parent : (char *)"";
        out->m.kind = (Containerd__Services__Snapshots__V1__Kind)i->kind;
        google__protobuf__timestamp__init(&out->created);
        google__protobuf__timestamp__init(&out->updated);
        time_pb_from_ns(i->created_ns, &out->created.seconds, &out->created.nanos);
        time_pb_from_ns(i->updated_ns, &out->updated.seconds, &out->updated.nanos);
        out->m.created_at = &out->created;
        out->m.updated_at = &out->updated;
        out->labels = xcalloc(n + 1, sizeof(InfoLabel));
        out->ptrs = xcalloc(n + 1, sizeof(InfoLabel *));
        for (size_t k = 0; k < n; k++) {
                containerd__services__snapshots__v1__info__labels_entry__init(&out->labels[k]);
                out->labels[k].key = i->labels[2 * k];
                out->labels[k].value = i->labels[2 * k + 1];
                out->ptrs[k] = &out->labels[k];
        }
        out->m.n_labels = n;
        out->m.labels = out->ptrs;
}

static void info_msg_done(struct info_msg *m)
{
        free(m->labels);
        free(m->ptrs);
}

static void reply_list(struct snap_job *j)
{
        for (size_t off = 0; off < j->nlist; off += LIST_BATCH) {
                size_t n = j->nlist - off < LIST_BATCH ? j->nlist - off : LIST_BATCH;
                struct info_msg *msgs = xcalloc(n, sizeof(*msgs));
                Info **ptrs = xcalloc(n, sizeof(Info *));
                for (size_t i = 0; i < n; i++) {
                        info_encode(&j->list[off + i], &msgs[i]);
                        ptrs[i] = &msgs[i].m;
                }
                Containerd__Services__Snapshots__V1__ListSnapshotsResponse resp =
                        CONTAINERD__SERVICES__SNAPSHOTS__V1__LIST_SNAPSHOTS_RESPONSE__INIT;
                resp.n_info = n;
                resp.info = ptrs;
                int r = grpc_call_send(j->call, &resp.base);
                for (size_t i = 0; i < n; i++)
                        info_msg_done(&msgs[i]);
                free(msgs);
                free(ptrs);
                if (r < 0) {
                        grpc_call_fail(j->call, r, NULL);
                        return;
                }
        }
        grpc_call_finish(j->call, GRPC_OK, NULL);
}

static void job_reply(struct snap_job *j)
{
        switch (j->op) {
        case OP_PREPARE:
        case OP_VIEW:
        case OP_MOUNTS: {
                struct mounts_msg mm;
                mounts_encode(&j->mounts, &mm);
                /* Prepare, View and Mounts responses share the layout {repeated Mount mounts = 1}. */
                Containerd__Services__Snapshots__V1__PrepareSnapshotResponse p =
                        CONTAINERD__SERVICES__SNAPSHOTS__V1__PREPARE_SNAPSHOT_RESPONSE__INIT;
                Containerd__Services__Snapshots__V1__ViewSnapshotResponse v =
                        CONTAINERD__SERVICES__SNAPSHOTS__V1__VIEW_SNAPSHOT_RESPONSE__INIT;
                Containerd__Services__Snapshots__V1__MountsResponse m =
                        CONTAINERD__SERVICES__SNAPSHOTS__V1__MOUNTS_RESPONSE__INIT;
                p.n_mounts = v.n_mounts = m.n_mounts = j->mounts.n;
                p.mounts = v.mounts = m.mounts = mm.ptrs;
                grpc_call_reply(j->call, j->op == OP_PREPARE ? &p.base : j->op == OP_VIEW ? &v.base : &m.base);
                free(mm.m);
                free(mm.ptrs);
                break;
        }
        case OP_COMMIT:
        case OP_REMOVE:
        case OP_CLEANUP: {
                Google__Protobuf__Empty e = GOOGLE__PROTOBUF__EMPTY__INIT;
                grpc_call_reply(j->call, &e.base);
                break;
        }
        case OP_STAT:
        case OP_UPDATE: {
                struct info_msg im;
                info_encode(&j->info, &im);
                Containerd__Services__Snapshots__V1__StatSnapshotResponse s =
                        CONTAINERD__SERVICES__SNAPSHOTS__V1__STAT_SNAPSHOT_RESPONSE__INIT;
                Containerd__Services__Snapshots__V1__UpdateSnapshotResponse u =
                        CONTAINERD__SERVICES__SNAPSHOTS__V1__UPDATE_SNAPSHOT_RESPONSE__INIT;
                s.info = u.info = &im.m;
                grpc_call_reply(j->call, j->op == OP_STAT ? &s.base : &u.base);
                info_msg_done(&im);
                break;
        }
        case OP_LIST:
                reply_list(j);
                break;
        case OP_USAGE: {
                Containerd__Services__Snapshots__V1__UsageResponse u =
                        CONTAINERD__SERVICES__SNAPSHOTS__V1__USAGE_RESPONSE__INIT;
                u.size = j->usage.size;
                u.inodes = j->usage.inodes;
                grpc_call_reply(j->call, &u.base);
                break;
        }
        }
}

/* containerd's snapshots service publishes prepare, commit and remove (not view). Loop thread only. */
static void publish_event(struct snap_job *j)
{
        _cleanup_error_ struct error *e = NULL;
        const char *topic = NULL;
        int r = 0;

        if (!j->ctx->events)
                return;
        switch (j->op) {
        case OP_PREPARE: {
                Containerd__Events__SnapshotPrepare ev = CONTAINERD__EVENTS__SNAPSHOT_PREPARE__INIT;
                ev.key = j->key;
                ev.parent = j->parent;
                topic = "/snapshot/prepare";
                r = events_publish(j->ctx->events, j->ns, topic, &ev.base, &e);
                break;
        }
        case OP_COMMIT: {
                Containerd__Events__SnapshotCommit ev = CONTAINERD__EVENTS__SNAPSHOT_COMMIT__INIT;
                ev.key = j->key;
                ev.name = j->name;
                topic = "/snapshot/commit";
                r = events_publish(j->ctx->events, j->ns, topic, &ev.base, &e);
                break;
        }
        case OP_REMOVE: {
                Containerd__Events__SnapshotRemove ev = CONTAINERD__EVENTS__SNAPSHOT_REMOVE__INIT;
                ev.key = j->key;
                topic = "/snapshot/remove";
                r = events_publish(j->ctx->events, j->ns, topic, &ev.base, &e);
                break;
        }
        default:
                return;
        }
        if (r < 0)
                log_warn("publish %s: %s", topic, error_str(e));
}

static void job_done(uv_work_t *w, int status)
{
        struct snap_job *j = w->data;

        if (grpc_call_is_done(j->call))
                ; /* cancelled meanwhile */
        else if (status < 0)
                grpc_call_finish(j->call, GRPC_CANCELLED, "canceled");
        else if (j->r < 0)
                grpc_call_fail(j->call, j->r, j->err);
        else
                job_reply(j);
        /* the change happened even if the caller went away */
        if (status == 0 && j->r == 0)
                publish_event(j);
        job_free(j);
}

/* Creates a job bound to the call's namespace, or answers the call with the error and returns NULL. */
static struct snap_job *job_new(struct grpc_call *call, void *userdata, enum snap_op op, const char *snapshotter)
{
        struct services_ctx *ctx = userdata;
        _cleanup_error_ struct error *err = NULL;
        const char *ns = NULL;

        int r = services_call_namespace(call, &ns, &err);
        if (r < 0) {
                grpc_call_fail(call, r, err);
                return NULL;
        }
        struct snap_job *j = xcalloc(1, sizeof(*j));
        j->ctx = ctx;
        j->op = op;
        j->ns = xstrdup(ns);
        j->snapshotter = xstrdup(snapshotter ? snapshotter : "");
        j->lease = xstrdup(services_call_lease(call));
        return j;
}

static void job_start(struct grpc_call *call, struct snap_job *j)
{
        j->call = grpc_call_ref(call);
        j->work.data = j;
        int r = uv_queue_work(j->ctx->loop, &j->work, job_work, job_done);
        if (r < 0) {
                grpc_call_finish(call, GRPC_UNAVAILABLE, uv_strerror(r));
                job_free(j);
        }
}

static void on_prepare(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Snapshots__V1__PrepareSnapshotRequest *in = (const void *)req;
        struct snap_job *j = job_new(call, userdata, OP_PREPARE, in->snapshotter);
        if (!j)
                return;
        j->key = xstrdup(in->key ? in->key : "");
        j->parent = xstrdup(in->parent ? in->parent : "");
        j->labels = labels_from((struct kv_entry **)in->labels, in->n_labels);
        job_start(call, j);
}

static void on_view(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Snapshots__V1__ViewSnapshotRequest *in = (const void *)req;
        struct snap_job *j = job_new(call, userdata, OP_VIEW, in->snapshotter);
        if (!j)
                return;
        j->key = xstrdup(in->key ? in->key : "");
        j->parent = xstrdup(in->parent ? in->parent : "");
        j->labels = labels_from((struct kv_entry **)in->labels, in->n_labels);
        job_start(call, j);
}

static void on_mounts(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Snapshots__V1__MountsRequest *in = (const void *)req;
        struct snap_job *j = job_new(call, userdata, OP_MOUNTS, in->snapshotter);
        if (!j)
                return;
        j->key = xstrdup(in->key ? in->key : "");
        job_start(call, j);
}

static void on_commit(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Snapshots__V1__CommitSnapshotRequest *in = (const void *)req;
        struct snap_job *j = job_new(call, userdata, OP_COMMIT, in->snapshotter);
        if (!j)
                return;
        j->key = xstrdup(in->key ? in->key : "");
        j->name = xstrdup(in->name ? in->name : "");
        j->labels = labels_from((struct kv_entry **)in->labels, in->n_labels);
        job_start(call, j);
}

static void on_remove(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Snapshots__V1__RemoveSnapshotRequest *in = (const void *)req;
        struct snap_job *j = job_new(call, userdata, OP_REMOVE, in->snapshotter);
        if (!j)
                return;
        j->key = xstrdup(in->key ? in->key : "");
        job_start(call, j);
}

static void on_stat(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Snapshots__V1__StatSnapshotRequest *in = (const void *)req;
        struct snap_job *j = job_new(call, userdata, OP_STAT, in->snapshotter);
        if (!j)
                return;
        j->key = xstrdup(in->key ? in->key : "");
        job_start(call, j);
}

static void on_update(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Snapshots__V1__UpdateSnapshotRequest *in = (const void *)req;
        struct snap_job *j = job_new(call, userdata, OP_UPDATE, in->snapshotter);
        if (!j)
                return;
        j->name = xstrdup(in->info && in->info->name ? in->info->name : "");
        j->labels = in->info ? labels_from((struct kv_entry **)in->info->labels, in->info->n_labels)
                             : xcalloc(1, sizeof(char *));
        j->paths = in->update_mask ? strv_from(in->update_mask->paths, in->update_mask->n_paths)
                                   : xcalloc(1, sizeof(char *));
        job_start(call, j);
}

static void on_list(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Snapshots__V1__ListSnapshotsRequest *in = (const void *)req;
        struct snap_job *j = job_new(call, userdata, OP_LIST, in->snapshotter);
        if (!j)
                return;
        j->filters = strv_from(in->filters, in->n_filters);
        job_start(call, j);
}

static void on_usage(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Snapshots__V1__UsageRequest *in = (const void *)req;
        struct snap_job *j = job_new(call, userdata, OP_USAGE, in->snapshotter);
        if (!j)
                return;
        j->key = xstrdup(in->key ? in->key : "");
        job_start(call, j);
}

static void on_cleanup(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Snapshots__V1__CleanupRequest *in = (const void *)req;
        struct snap_job *j = job_new(call, userdata, OP_CLEANUP, in->snapshotter);
        if (!j)
                return;
        job_start(call, j);
}

#define SN_PATH(m) "/containerd.services.snapshots.v1.Snapshots/" m
#define SN_DESC(x) &containerd__services__snapshots__v1__##x##__descriptor

void services_snapshots_register(struct grpc_server *s, struct services_ctx *ctx)
{
        const struct grpc_method methods[] = {
                {SN_PATH("Prepare"), GRPC_METHOD_UNARY, SN_DESC(prepare_snapshot_request), on_prepare, NULL, ctx},
                {SN_PATH("View"), GRPC_METHOD_UNARY, SN_DESC(view_snapshot_request), on_view, NULL, ctx},
                {SN_PATH("Mounts"), GRPC_METHOD_UNARY, SN_DESC(mounts_request), on_mounts, NULL, ctx},
                {SN_PATH("Commit"), GRPC_METHOD_UNARY, SN_DESC(commit_snapshot_request), on_commit, NULL, ctx},
                {SN_PATH("Remove"), GRPC_METHOD_UNARY, SN_DESC(remove_snapshot_request), on_remove, NULL, ctx},
                {SN_PATH("Stat"), GRPC_METHOD_UNARY, SN_DESC(stat_snapshot_request), on_stat, NULL, ctx},
                {SN_PATH("Update"), GRPC_METHOD_UNARY, SN_DESC(update_snapshot_request), on_update, NULL, ctx},
                {SN_PATH("List"), GRPC_METHOD_SERVER_STREAM, SN_DESC(list_snapshots_request), on_list, NULL, ctx},
                {SN_PATH("Usage"), GRPC_METHOD_UNARY, SN_DESC(usage_request), on_usage, NULL, ctx},
                {SN_PATH("Cleanup"), GRPC_METHOD_UNARY, SN_DESC(cleanup_request), on_cleanup, NULL, ctx},
        };
        for (size_t i = 0; i < ELEMENTSOF(methods); i++)
                (void)grpc_server_add_method(s, &methods[i]);
}

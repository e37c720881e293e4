/* The plugin table: containerd's registry (cmd/containerd/builtins) as a static table with containerd's
 * type strings, so `ctr plugins ls` reads the same. Only plugins that exist in this build are listed, and a
 * plugin that fails to initialise is shown with its error, as containerd does. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "content/store.h"
#include "daemon/config.h"
#include "daemon/daemon.h"
#include "events/exchange.h"
#include "metadata/db.h"
#include "services/content.h"
#include "services/diff.h"
#include "services/events.h"
#include "services/health.h"
#include "services/images.h"
#include "services/introspection.h"
#include "services/leases.h"
#include "services/namespaces.h"
#include "services/snapshots.h"
#include "services/version.h"
#include "runtime/task_manager.h"
#include "services/containers.h"
#include "services/tasks.h"
#include "snapshot/registry.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "github.com/containerd/containerd/api/events/task.pb-c.h"

#define T_CONTENT "io.containerd.content.v1"
#define T_SNAPSHOTTER "io.containerd.snapshotter.v1"
#define T_METADATA "io.containerd.metadata.v1"
#define T_DIFFER "io.containerd.differ.v1"
#define T_EVENT "io.containerd.event.v1"
#define T_GC "io.containerd.gc.v1"
#define T_SERVICE "io.containerd.service.v1"
#define T_GRPC "io.containerd.grpc.v1"
#define T_RUNTIME "io.containerd.runtime.v2"

/* containerd's InitContext.Get: the dependency's own error if it failed, "not found" if it is absent. */
static int require_plugin(const struct daemon *d, const char *type, const char *id, struct error **err)
{
        const struct plugin_info *p = daemon_plugin_find(d, type, id);
        if (!p)
                return error_set(err, ENOENT, "no plugins registered for %s", type);
        if (p->init_err < 0)
                return error_set_literal(err, -p->init_err, p->init_msg);
        return 0;
}

static int plugin_dir(const struct daemon *d, const struct plugin_info *self, char **ret)
{
        *ret = xasprintf("%s/%s.%s", d->root, self->type, self->id);
        return 0;
}

/* A snapshotter's root_path from the config ([plugins."io.containerd.snapshotter.v1.<id>"]), or the default. */
static char *snapshotter_dir(const struct daemon *d, const struct plugin_info *self)
{
        const char *configured = NULL;
        if (d->config && strcmp(self->id, "overlayfs") == 0)
                configured = d->config->overlayfs.root_path;
        else if (d->config && strcmp(self->id, "native") == 0)
                configured = d->config->native.root_path;
        if (configured && configured[0])
                return xstrdup(configured);
        return xasprintf("%s/%s.%s", d->root, self->type, self->id);
}

static int init_content(struct daemon *d, struct plugin_info *self, struct error **err)
{
        _cleanup_free_ char *dir = NULL;
        plugin_dir(d, self, &dir);
        int r = content_store_open(dir, &d->content, err);
        if (r < 0)
                return r;
        d->ctx.content = d->content;
        services_plugin_info_export(self, "root", dir);
        return 0;
}

/* Each snapshotter plugin opens its backend under <root>/io.containerd.snapshotter.v1.<id> and joins the
 * registry the snapshots service and the metadata store use. */
static struct snapshot_registry *snapshot_registry(struct daemon *d)
{
        if (!d->snapshots) {
                d->snapshots = snapshot_registry_new("overlayfs");
                d->ctx.snapshots = d->snapshots;
        }
        return d->snapshots;
}

static int init_native(struct daemon *d, struct plugin_info *self, struct error **err)
{
        _cleanup_free_ char *dir = snapshotter_dir(d, self);
        struct snapshotter *s = NULL;
        int r = snapshot_native_open(dir, &s, err);
        if (r < 0)
                return r;
        r = snapshot_registry_add(snapshot_registry(d), s);
        if (r < 0)
                return error_set(err, -r, "snapshotter %s", self->id);
        services_plugin_info_export(self, "root", dir);
        return 0;
}

static int init_overlayfs(struct daemon *d, struct plugin_info *self, struct error **err)
{
        _cleanup_free_ char *dir = snapshotter_dir(d, self);
        struct snapshotter *s = NULL;
        int r = snapshot_overlay_open(dir, &s, err);
        if (r < 0)
                return r;
        /* as containerd's overlay plugin: refuse to load where overlayfs cannot be mounted */
        r = snapshot_overlay_supported(dir, err);
        if (r != 1) {
                snapshot_close(s);
                if (r == 0)
                        return error_set(err, EOPNOTSUPP, "overlayfs cannot be mounted on %s: skip plugin", dir);
                return r;
        }
        r = snapshot_registry_add(snapshot_registry(d), s);
        if (r < 0)
                return error_set(err, -r, "snapshotter %s", self->id);
        services_plugin_info_export(self, "root", dir);
        return 0;
}

static int init_metadata(struct daemon *d, struct plugin_info *self, struct error **err)
{
        _cleanup_free_ char *dir = NULL;
        int r = require_plugin(d, T_CONTENT, "content", err);
        if (r < 0)
                return r;
        plugin_dir(d, self, &dir);
        r = metadata_db_open(dir, &d->db, err);
        if (r < 0)
                return r;
        d->ctx.db = d->db;
        return 0;
}

static int init_differ(_unused_ struct daemon *d, _unused_ struct plugin_info *self, _unused_ struct error **err)
{
        /* layer apply (image/apply.h) is linked in; Diff.Diff (creating layers) is not implemented yet */
        return 0;
}

static int init_exchange(struct daemon *d, _unused_ struct plugin_info *self, _unused_ struct error **err)
{
        d->events = events_exchange_new(d->loop);
        d->ctx.events = d->events;
        return 0;
}

static int init_snapshots_service(struct daemon *d, _unused_ struct plugin_info *self, struct error **err)
{
        int r = require_plugin(d, T_METADATA, NULL, err);
        if (r < 0)
                return r;
        if (!d->snapshots || !snapshot_registry_name(d->snapshots, 0))
                return error_set(err, ENOENT, "no plugins registered for %s", T_SNAPSHOTTER);
        return 0;
}

static int init_diff_service(struct daemon *d, _unused_ struct plugin_info *self, struct error **err)
{
        int r = require_plugin(d, T_DIFFER, "walking", err);
        if (r < 0)
                return r;
        return require_plugin(d, T_METADATA, NULL, err);
}

static int init_gc_scheduler(struct daemon *d, _unused_ struct plugin_info *self, struct error **err)
{
        int r = require_plugin(d, T_METADATA, NULL, err);
        if (r < 0)
                return r;
        /* one collection at start-up clears what a crash left behind (expired leases, unreferenced blobs and
         * snapshots); afterwards the services schedule one after their deletions */
        services_gc_schedule(&d->ctx, NULL, NULL);
        return 0;
}

/* content-, images- and leases-service: the metadata store (with the content store behind it) */
static int init_metadata_service(struct daemon *d, _unused_ struct plugin_info *self, struct error **err)
{
        int r = require_plugin(d, T_METADATA, NULL, err);
        if (r < 0)
                return r;
        return require_plugin(d, T_CONTENT, "content", err);
}

static int init_introspection_service(struct daemon *d, _unused_ struct plugin_info *self, struct error **err)
{
        /* the UUID lives at <root>/io.containerd.service.v1.introspection-service/uuid, created once */
        int r = services_introspection_uuid(d->root, &d->uuid, err);
        if (r < 0)
                return r;
        d->ctx.uuid = d->uuid;
        d->ctx.plugins = &d->registry;
        return 0;
}

static int init_namespaces_service(struct daemon *d, _unused_ struct plugin_info *self, struct error **err)
{
        return require_plugin(d, T_METADATA, NULL, err);
}

static int init_grpc_version(struct daemon *d, _unused_ struct plugin_info *self, _unused_ struct error **err)
{
        services_version_register(d->server, &d->ctx);
        return 0;
}

static int init_grpc_events(struct daemon *d, _unused_ struct plugin_info *self, struct error **err)
{
        int r = require_plugin(d, T_EVENT, "exchange", err);
        if (r < 0)
                return r;
        services_events_register(d->server, &d->ctx);
        /* shims forward task events over ttrpc to <address>.ttrpc (PROTOCOLS.md section 3.4) */
        r = services_events_ttrpc_register(d->ttrpc, &d->ctx);
        if (r < 0)
                return error_set(err, -r, "register ttrpc events service");
        return 0;
}

static int init_grpc_healthcheck(struct daemon *d, _unused_ struct plugin_info *self, _unused_ struct error **err)
{
        services_health_register(d->server, &d->ctx);
        return 0;
}

/* A task whose shim died (or could not be re-adopted after a restart) was cleaned up by the task manager:
 * publish /tasks/exit and /tasks/delete as containerd's cleanupAfterDeadShim does. */
static void on_dead_task(const char *ns, const char *id, uint32_t pid, uint32_t exit_status, int64_t exited_at_sec,
                         int32_t exited_at_nsec, void *userdata)
{
        struct daemon *d = userdata;
        log_fields(LOG_LEVEL_INFO, (struct log_field[]){{"id", id}, {"namespace", ns}, {NULL, NULL}},
                   "cleaned up dead shim");
        if (!d->events)
                return;
        Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
        ts.seconds = exited_at_sec;
        ts.nanos = exited_at_nsec;
        Containerd__Events__TaskExit ex = CONTAINERD__EVENTS__TASK_EXIT__INIT;
        ex.container_id = (char *)id;
        ex.id = (char *)id;
        ex.pid = pid;
        ex.exit_status = exit_status;
        ex.exited_at = &ts;
        (void)events_publish(d->events, ns, "/tasks/exit", &ex.base, NULL);
        Containerd__Events__TaskDelete del = CONTAINERD__EVENTS__TASK_DELETE__INIT;
        del.container_id = (char *)id;
        del.pid = pid;
        del.exit_status = exit_status;
        del.exited_at = &ts;
        (void)events_publish(d->events, ns, "/tasks/delete", &del.base, NULL);
}

static void on_recovered(int adopted, int cleaned, _unused_ void *userdata)
{
        char a[16], c[16];
        snprintf(a, sizeof(a), "%d", adopted);
        snprintf(c, sizeof(c), "%d", cleaned);
        log_fields(LOG_LEVEL_INFO, (struct log_field[]){{"adopted", a}, {"cleaned", c}, {NULL, NULL}},
                   "task recovery done");
}

/* io.containerd.runtime.v2 "task": bundles under <state>, shims found next to krilld or on PATH, re-adoption of
 * running shims from the bundles on disk (runs concurrently, in the background, while the daemon serves). */
static int init_task_runtime(struct daemon *d, _unused_ struct plugin_info *self, struct error **err)
{
        int r = require_plugin(d, T_METADATA, NULL, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *exe = realpath("/proc/self/exe", NULL);
        _cleanup_free_ char *dir = exe ? xstrdup(exe) : NULL;
        if (dir) {
                char *slash = strrchr(dir, '/');
                if (slash)
                        *slash = 0;
        }
        struct task_manager_config cfg = {
                .state_dir = d->state,
                .root_dir = d->root,
                .address = d->address,
                .ttrpc_address = d->ttrpc_address,
                .publish_binary = exe ? exe : "krilld",
                .self_dir = dir,
                .debug = log_enabled(LOG_LEVEL_DEBUG),
        };
        d->tasks = task_manager_new(d->loop, &cfg);
        d->ctx.tasks = d->tasks;
        task_manager_set_exit_cb(d->tasks, on_dead_task, d);
        task_manager_recover(d->tasks, on_recovered, NULL);
        return 0;
}

static int init_tasks_service(struct daemon *d, _unused_ struct plugin_info *self, struct error **err)
{
        int r = require_plugin(d, T_METADATA, NULL, err);
        if (r < 0)
                return r;
        return require_plugin(d, T_RUNTIME, "task", err);
}

/* A gRPC plugin that registers its service's methods once the service plugin it wraps initialised. */
#define GRPC_SERVICE_PLUGIN(name)                                                                                      \
        static int init_grpc_##name(struct daemon *d, _unused_ struct plugin_info *self, struct error **err)           \
        {                                                                                                              \
                int r = require_plugin(d, T_SERVICE, #name "-service", err);                                           \
                if (r < 0)                                                                                             \
                        return r;                                                                                      \
                services_##name##_register(d->server, &d->ctx);                                                        \
                return 0;                                                                                              \
        }

GRPC_SERVICE_PLUGIN(introspection)
GRPC_SERVICE_PLUGIN(namespaces)
GRPC_SERVICE_PLUGIN(snapshots)
GRPC_SERVICE_PLUGIN(diff)
GRPC_SERVICE_PLUGIN(content)
GRPC_SERVICE_PLUGIN(images)
GRPC_SERVICE_PLUGIN(leases)
GRPC_SERVICE_PLUGIN(containers)
GRPC_SERVICE_PLUGIN(tasks)

static const char *const req_content_snapshotter[] = {T_CONTENT, T_SNAPSHOTTER, NULL};
static const char *const req_metadata[] = {T_METADATA, NULL};
static const char *const req_metadata_snapshotter[] = {T_METADATA, T_SNAPSHOTTER, NULL};
static const char *const req_differ_metadata[] = {T_DIFFER, T_METADATA, NULL};
static const char *const req_service[] = {T_SERVICE, NULL};
static const char *const req_event[] = {T_EVENT, NULL};
static const char *const req_metadata_runtime[] = {T_METADATA, T_RUNTIME, NULL};
static const char *const req_metadata_event[] = {T_METADATA, T_EVENT, NULL};

/* Written in containerd's registration order; daemon_plugins_order() enforces the dependencies. */
const struct daemon_plugin daemon_builtins[] = {
        {T_CONTENT, "content", NULL, false, init_content},
        {T_SNAPSHOTTER, "native", NULL, true, init_native},
        {T_SNAPSHOTTER, "overlayfs", NULL, true, init_overlayfs},
        {T_METADATA, "lmdb", req_content_snapshotter, false, init_metadata},
        {T_DIFFER, "walking", req_metadata, true, init_differ},
        {T_EVENT, "exchange", NULL, false, init_exchange},
        {T_GC, "scheduler", req_metadata, false, init_gc_scheduler},
        {T_SERVICE, "introspection-service", NULL, false, init_introspection_service},
        {T_RUNTIME, "task", req_metadata_event, true, init_task_runtime},
        {T_SERVICE, "containers-service", req_metadata, false, init_metadata_service},
        {T_SERVICE, "content-service", req_metadata, false, init_metadata_service},
        {T_SERVICE, "diff-service", req_differ_metadata, false, init_diff_service},
        {T_SERVICE, "images-service", req_metadata, false, init_metadata_service},
        {T_SERVICE, "leases-service", req_metadata, false, init_metadata_service},
        {T_SERVICE, "namespaces-service", req_metadata, false, init_namespaces_service},
        {T_SERVICE, "snapshots-service", req_metadata_snapshotter, false, init_snapshots_service},
        {T_SERVICE, "tasks-service", req_metadata_runtime, false, init_tasks_service},
        {T_GRPC, "introspection", req_service, false, init_grpc_introspection},
        {T_GRPC, "containers", req_service, false, init_grpc_containers},
        {T_GRPC, "content", req_service, false, init_grpc_content},
        {T_GRPC, "diff", req_service, false, init_grpc_diff},
        {T_GRPC, "events", req_event, false, init_grpc_events},
        {T_GRPC, "healthcheck", NULL, false, init_grpc_healthcheck},
        {T_GRPC, "images", req_service, false, init_grpc_images},
        {T_GRPC, "leases", req_service, false, init_grpc_leases},
        {T_GRPC, "namespaces", req_service, false, init_grpc_namespaces},
        {T_GRPC, "snapshots", req_service, false, init_grpc_snapshots},
        {T_GRPC, "tasks", req_service, false, init_grpc_tasks},
        {T_GRPC, "version", NULL, false, init_grpc_version},
};
const size_t daemon_builtins_count = ELEMENTSOF(daemon_builtins);

void daemon_plugins_close(struct daemon *d)
{
        if (d->snapshots) {
                snapshot_registry_free(d->snapshots);
                d->snapshots = NULL;
                d->ctx.snapshots = NULL;
        }
        if (d->db) {
                metadata_db_close(d->db);
                d->db = NULL;
                d->ctx.db = NULL;
        }
        if (d->content) {
                content_store_free(d->content);
                d->content = NULL;
                d->ctx.content = NULL;
        }
}

/* The plugin table: containerd's registry (cmd/containerd/builtins) as a static table with containerd's
 * type strings, so `ctr plugins ls` reads the same. Only plugins that exist in this build are listed, and a
 * plugin that fails to initialise is shown with its error, as containerd does. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "content/store.h"
#include "daemon/daemon.h"
#include "metadata/db.h"
#include "services/health.h"
#include "services/introspection.h"
#include "services/namespaces.h"
#include "services/version.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/log.h"

#define T_CONTENT "io.containerd.content.v1"
#define T_METADATA "io.containerd.metadata.v1"
#define T_SERVICE "io.containerd.service.v1"
#define T_GRPC "io.containerd.grpc.v1"

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

static int init_grpc_introspection(struct daemon *d, _unused_ struct plugin_info *self, struct error **err)
{
        int r = require_plugin(d, T_SERVICE, "introspection-service", err);
        if (r < 0)
                return r;
        services_introspection_register(d->server, &d->ctx);
        return 0;
}

static int init_grpc_namespaces(struct daemon *d, _unused_ struct plugin_info *self, struct error **err)
{
        int r = require_plugin(d, T_SERVICE, "namespaces-service", err);
        if (r < 0)
                return r;
        services_namespaces_register(d->server, &d->ctx);
        return 0;
}

static int init_grpc_healthcheck(struct daemon *d, _unused_ struct plugin_info *self, _unused_ struct error **err)
{
        services_health_register(d->server, &d->ctx);
        return 0;
}

static const char *const req_content[] = {T_CONTENT, NULL};
static const char *const req_metadata[] = {T_METADATA, NULL};
static const char *const req_service[] = {T_SERVICE, NULL};

/* Written in containerd's registration order; daemon_plugins_order() enforces the dependencies. */
const struct daemon_plugin daemon_builtins[] = {
        {T_CONTENT, "content", NULL, false, init_content},
        {T_METADATA, "lmdb", req_content, false, init_metadata},
        {T_SERVICE, "introspection-service", NULL, false, init_introspection_service},
        {T_SERVICE, "namespaces-service", req_metadata, false, init_namespaces_service},
        {T_GRPC, "introspection", req_service, false, init_grpc_introspection},
        {T_GRPC, "healthcheck", NULL, false, init_grpc_healthcheck},
        {T_GRPC, "namespaces", req_service, false, init_grpc_namespaces},
        {T_GRPC, "version", NULL, false, init_grpc_version},
};
const size_t daemon_builtins_count = ELEMENTSOF(daemon_builtins);

void daemon_plugins_close(struct daemon *d)
{
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

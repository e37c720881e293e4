/* introspection.v1: what the daemon is made of (Plugins, with containerd's filters) and who it is (Server,
 * a UUID created once under the root dir and kept across restarts).
 *
 * The plugin registry is filled by the daemon (src/daemon/builtins.c) while it initialises its plugin
 * table; it is defined here, in the services layer, so that the service can read it without including
 * the daemon. Every function runs on the daemon's loop thread unless noted. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "proto/grpc/grpc.h"
#include "services/services.h"
#include "util/error.h"

struct plugin_info {
        char *type;          /* "io.containerd.grpc.v1" */
        char *id;            /* "version" */
        char **requires;     /* strv of plugin types, may be NULL */
        bool has_platform;   /* reports the host platform (linux/amd64), like containerd's snapshotters */
        char **exports;      /* strv of key, value pairs, may be NULL */
        char **capabilities; /* strv, may be NULL */
        int init_err;        /* 0, or the -errno the plugin's init returned */
        char *init_msg;      /* rendered error message when init_err != 0 */
};

struct plugin_registry {
        struct plugin_info *plugins; /* in initialisation order */
        size_t n;
        size_t cap;
};

/* Appends a plugin (type and id copied) and returns it, owned by the registry. Pointers returned earlier
 * may move: use them only until the next add. */
struct plugin_info *services_plugin_registry_add(struct plugin_registry *reg, const char *type, const char *id);
/* Appends "key", "value" to p->exports. */
void services_plugin_info_export(struct plugin_info *p, const char *key, const char *value);
/* Records an init failure (r < 0) with e's rendered message (or the class text). */
void services_plugin_info_set_error(struct plugin_info *p, int r, const struct error *e);
/* Frees every entry and resets reg to empty. NULL-safe. */
void services_plugin_registry_clear(struct plugin_registry *reg);

/* The host platform as containerd reports it: os "linux", architecture in GOARCH spelling ("amd64",
 * "arm64", ...), variant ("v8" for arm64, "" otherwise). Static strings. */
void services_introspection_platform(const char **os, const char **arch, const char **variant);

/* Loads <root>/io.containerd.service.v1.introspection-service/uuid, creating it (a random v4 UUID, written
 * atomically) the first time. *ret is a new string. Blocking file I/O: call it at daemon start-up. */
int services_introspection_uuid(const char *root, char **ret, struct error **err);

/* The plugins matching filters (containerd's syntax, OR'ed; metadata/filters.h). *ret is a new array of borrowed pointers into
 * reg (valid while reg is unchanged); *ret_n its length. -EINVAL on a filter parse error. */
int services_introspection_plugins(const struct plugin_registry *reg, const char *const *filters, size_t n_filters,
                                   const struct plugin_info ***ret, size_t *ret_n, struct error **err);

/* Registers /containerd.services.introspection.v1.Introspection/{Plugins,Server}. Reads ctx->plugins and
 * ctx->uuid on every call, so both must outlive the server. */
void services_introspection_register(struct grpc_server *s, struct services_ctx *ctx);

/* krilld internals shared by main.c, plugins.c and builtins.c (daemon-internal, not used outside src/daemon).
 *
 * One libuv loop owns every socket and all in-memory state (DESIGN.md section 5). main() parses the flags,
 * builds a struct daemon, initialises the plugin table (builtins.c, mechanics in plugins.c) in dependency order, serves, and on
 * SIGTERM/SIGINT shuts the gRPC server down, lets the loop drain (worker jobs included), then closes the
 * stores. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "proto/grpc/grpc.h"
#include "proto/ttrpc/ttrpc.h"
#include "services/introspection.h"
#include "services/services.h"
#include "util/error.h"

struct krill_config;

struct daemon {
        uv_loop_t *loop;
        struct grpc_server *server;
        struct ttrpc_server *ttrpc; /* <address>.ttrpc: shims forward their events here */
        struct services_ctx ctx;         /* what the services see; points into this struct */
        struct plugin_registry registry; /* introspection's view, filled by daemon_plugins_init */
        const struct krill_config *config; /* borrowed from main() */

        char *root;    /* absolute */
        char *state;   /* absolute */
        char *address;       /* gRPC socket path */
        char *ttrpc_address; /* <address>.ttrpc */
        char *uuid;

        /* resources owned by plugins, released by daemon_plugins_close() */
        struct metadata_db *db;
        struct content_store *content;
        struct snapshot_registry *snapshots;
        struct events_exchange *events; /* freed on the loop at shutdown (it owns a timer) */
        struct task_manager *tasks;     /* io.containerd.runtime.v2 task: freed on the loop at shutdown */

        uv_signal_t sig_term;
        uv_signal_t sig_int;
        bool stopping;
        int exit_code;
};

/* A plugin of the static table, initialised in dependency order (containerd plugin.Graph):
 * every plugin of each required type comes first. "*" requires every other plugin. */
struct daemon_plugin {
        const char *type; /* containerd's type string, "io.containerd.grpc.v1" */
        const char *id;
        const char *const *requires; /* NULL-terminated plugin types, may be NULL */
        bool platform;               /* reports the host platform (as containerd's snapshotters do) */
        /* Sets up the plugin: opens its store, registers its gRPC methods, adds exports to self.
         * Returns 0 or -errno with *err set; the failure is recorded for introspection and the daemon goes on
         * without the plugin (containerd's behaviour). */
        int (*init)(struct daemon *d, struct plugin_info *self, struct error **err);
};

/* The built-in table and its length. */
extern const struct daemon_plugin daemon_builtins[];
extern const size_t daemon_builtins_count;

/* Orders table[0..n) the way containerd's plugin.Graph does. *ret is a new array of n indexes. */
void daemon_plugins_order(const struct daemon_plugin *table, size_t n, size_t **ret);

/* Initialises table[0..n) in dependency order into d->registry, logging each plugin as containerd does
 * ("loading plugin ..."). A plugin in d->config's disabled_plugins ("<type>.<id>") is left out entirely. A
 * failing plugin is recorded and logged as a warning, not fatal, unless it is in required_plugins: then, or
 * when a required plugin is not in the table, returns -errno with containerd's message. Loop thread. */
int daemon_plugins_init(struct daemon *d, const struct daemon_plugin *table, size_t n, struct error **err);
/* Releases what the plugins opened (metadata store, content store, snapshotters). Only after the loop has
 * drained; the event exchange must already be freed (it needs the loop). */
void daemon_plugins_close(struct daemon *d);

/* The first plugin of type (and id, unless NULL) in the registry, or NULL. */
const struct plugin_info *daemon_plugin_find(const struct daemon *d, const char *type, const char *id);
/* True if a plugin of this type initialised successfully. */
bool daemon_plugin_type_ready(const struct daemon *d, const char *type);

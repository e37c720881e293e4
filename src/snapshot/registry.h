/* Snapshotters by name (containerd's snapshotter plugins: "overlayfs", "native"), owned by the daemon and
 * shared through services_ctx.snapshots. Built at startup on one thread, then read-only (any thread). */
#pragma once

#include "snapshot/snapshot.h"

struct snapshot_registry;

struct snapshot_registry *snapshot_registry_new(const char *default_name);
/* Takes ownership of s (closed by snapshot_registry_free). -EEXIST if the name is taken (s is closed). */
int snapshot_registry_add(struct snapshot_registry *r, struct snapshotter *s);
/* Borrowed; NULL if unknown. name NULL or "" means the default snapshotter. */
struct snapshotter *snapshot_registry_get(const struct snapshot_registry *r, const char *name);
/* "overlayfs" unless configured otherwise. */
const char *snapshot_registry_default(const struct snapshot_registry *r);
/* Name of the i-th snapshotter, NULL past the end. */
const char *snapshot_registry_name(const struct snapshot_registry *r, size_t i);
void snapshot_registry_free(struct snapshot_registry *r); /* NULL-safe */

/* Opens the standard snapshotters under the daemon root: <root>/io.containerd.snapshotter.v1.overlayfs (when
 * overlayfs can be mounted there) and <root>/io.containerd.snapshotter.v1.native. Never fails as a whole:
 * a backend that cannot be opened is skipped and reported through *err (the first failure) for logging. */
struct snapshot_registry *snapshot_registry_open_default(const char *root, const char *default_name,
                                                         struct error **err);

/* GC callback (matches metadata_gc_snapshot_fn): removes backend_key from the named snapshotter; a key that
 * is already gone counts as removed. userdata is the registry. */
int snapshot_registry_gc_remove(const char *snapshotter, const char *backend_key, void *userdata);

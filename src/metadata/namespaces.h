/* Namespaces (containerd metadata/namespaces.go). See db.h for the shared conventions. */
#pragma once

#include <stddef.h>

#include "metadata/db.h"

/* Creates a namespace. Name validated as an identifier (-EINVAL); -EEXIST `namespace "x": already exists`. */
int metadata_namespace_create(struct metadata_db *db, const char *name, char *const *labels, struct error **err);
/* Creates the namespace if missing (implicit creation when something is written there). */
int metadata_namespace_ensure(struct metadata_db *db, const char *name, struct error **err);
/* *ret_labels: new label vector (possibly empty, never NULL). -ENOENT `namespace "x": not found`.
 * Note: containerd's Namespaces.Get service answers a missing namespace with empty labels, not an error. */
int metadata_namespace_get(struct metadata_db *db, const char *name, char ***ret_labels, struct error **err);
/* *ret_names: new sorted string vector (NULL-terminated, never NULL). */
int metadata_namespace_list(struct metadata_db *db, char ***ret_names, struct error **err);
/* Namespaces.Update: with paths, each must be "labels.<key>" (set, or delete when the value is empty/missing),
 * anything else -EINVAL `cannot update "p" field`; without paths every label is replaced by labels.
 * Creates the namespace if missing, as containerd does. */
int metadata_namespace_update(struct metadata_db *db, const char *name, char *const *labels, char *const *paths,
                              size_t npaths, struct error **err);
/* -ENOENT if missing; -EBUSY `namespace "x" must be empty, but it still has images, blobs, containers,
 * snapshots on "overlayfs" snapshotter` (FailedPrecondition) if it holds objects. Leases are removed with it. */
int metadata_namespace_delete(struct metadata_db *db, const char *name, struct error **err);

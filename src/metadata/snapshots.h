/* Per-namespace snapshot references (containerd metadata/snapshot.go keeps the same mapping): the key a
 * client sees in a namespace -> the snapshotter's own (backend) key, with parent, kind and labels.
 * The snapshot module owns the backends; GC (gc.h) tells it which backend keys to remove.
 * See db.h for conventions. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "metadata/db.h"
#include "metadata/filters.h"

struct metadata_snapshot_ref {
        char *snapshotter; /* e.g. "overlayfs" */
        char *key;         /* namespaced key (the client's name) */
        char *backend_key; /* the snapshotter's key */
        char *parent;      /* namespaced key of the parent, or NULL */
        char *kind;        /* "active", "committed", "view" (free-form, for filters), or NULL */
        char **labels;
        int64_t created_at;
        int64_t updated_at;
};

void metadata_snapshot_ref_clear(struct metadata_snapshot_ref *r);
void metadata_snapshot_ref_list_free(struct metadata_snapshot_ref *r, size_t n);

/* Adds (and to lease as "snapshots/<snapshotter>" when given). -EEXIST `snapshot "k": already exists`;
 * -ENOENT `parent snapshot "p": not found` if parent is set and missing. Creates the namespace. */
int metadata_snapshot_ref_add(struct metadata_db *db, const char *ns, const struct metadata_snapshot_ref *ref,
                              const char *lease, struct error **err);
/* -ENOENT `snapshot "k": not found`. */
int metadata_snapshot_ref_get(struct metadata_db *db, const char *ns, const char *snapshotter, const char *key,
                              struct metadata_snapshot_ref *ret, struct error **err);
/* Labels update with field paths (labels, labels.<k>; none = replace). */
int metadata_snapshot_ref_update(struct metadata_db *db, const char *ns, const char *snapshotter, const char *key,
                                 char *const *labels, char *const *paths, size_t npaths,
                                 struct metadata_snapshot_ref *ret, struct error **err);
/* Snapshots.Commit in one transaction: removes key, adds name (kind "committed", same parent) with the given
 * backend key and labels; -ENOENT if key is missing, -EEXIST if name exists. lease as in _add. */
int metadata_snapshot_ref_commit(struct metadata_db *db, const char *ns, const char *snapshotter, const char *key,
                                 const char *name, const char *backend_key, char *const *labels, const char *lease,
                                 struct error **err);
/* -ENOENT if missing; -EBUSY `cannot remove snapshot with child` if another ref names it as parent.
 * The backend snapshot is removed by the next GC (callback). Marks the db dirty. */
int metadata_snapshot_ref_remove(struct metadata_db *db, const char *ns, const char *snapshotter, const char *key,
                                 struct error **err);
/* Refs of one snapshotter in ns, filter fields: name, parent, kind, labels.*. Sorted by key. */
int metadata_snapshot_ref_list(struct metadata_db *db, const char *ns, const char *snapshotter, const struct filter *f,
                               struct metadata_snapshot_ref **ret, size_t *ret_n, struct error **err);

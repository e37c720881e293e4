/* Shared inside src/snapshot: the LMDB-backed storage common to every backend (storage.c) and the
 * backend hooks (overlay.c, native.c). */
#pragma once

#include <lmdb.h>
#include <stdbool.h>
#include <sys/types.h>

#include "snapshot/snapshot.h"

struct snap_base;

/* What differs between backends. ids are decimal strings, the names of directories in snapshots/. */
struct snap_backend {
        const char *name;
        /* Fills the new snapshot directory dir_fd (snapshots/<tmp>, empty) for a snapshot whose parent is
         * parent_id (NULL for none). */
        int (*populate)(struct snap_base *b, int dir_fd, const char *parent_id, enum snapshot_kind kind,
                        struct error **err);
        /* Mounts for snapshot id; parent_ids nearest first (NULL-terminated, may be empty). */
        int (*mounts)(struct snap_base *b, const char *id, enum snapshot_kind kind, char *const *parent_ids,
                      struct snapshot_mounts *ret, struct error **err);
        /* Directory (relative to snapshots/) whose usage counts for the snapshot: "<id>/fs" or "<id>". */
        char *(*usage_dir)(const char *id);
};

struct snap_base {
        struct snapshotter pub;
        const struct snap_backend *be;
        char *root;       /* absolute */
        char *snaps_path; /* <root>/snapshots */
        int snaps_fd;     /* O_DIRECTORY of <root>/snapshots */
        MDB_env *env;
        MDB_dbi dbi_snaps; /* key -> JSON record */
        MDB_dbi dbi_meta;  /* "next_id" -> uint64 */
        bool index_off;    /* overlay: pass index=off */
};

/* Opens root (created 0700), <root>/snapshots and <root>/metadata.lmdb. On success *ret is a new object whose
 * pub.ops is the generic table in storage.c. */
int snap_base_open(const char *root, const struct snap_backend *be, struct snap_base **ret, struct error **err);

/* Helpers for backends. */
void snap_mount_init(struct snapshot_mount *m, const char *type, const char *source);
void snap_mount_add_option(struct snapshot_mount *m, const char *opt);
struct snapshot_mount *snap_mounts_append(struct snapshot_mounts *ms);

/* Disk usage of dir_fd/name (tree walk, hard links counted once). */
int snap_disk_usage(int dir_fd, const char *name, struct snapshot_usage *ret, struct error **err);
/* rm -rf that does not follow symlinks. */
int snap_rm_rf_at(int dir_fd, const char *name);
/* Copies the tree src_fd/src_name into the (existing, empty) directory dst_fd, preserving owners, modes,
 * xattrs, times, hard links, symlinks, devices and fifos. Files are reflinked (FICLONE) when possible. */
int snap_copy_tree(int src_fd, int dst_fd, struct error **err);

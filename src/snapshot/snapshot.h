/* Snapshotters (containerd snapshots.Snapshotter, 1.6): a tree of filesystem snapshots keyed by strings.
 * Active snapshots are writable and become committed ones (immutable, usable as parents) by Commit; views
 * are read-only. Keys are opaque to the backend: namespacing ("<ns>/<key>") is done by the caller (the
 * metadata layer / service), the backend never interprets them.
 *
 * Backends (overlay.h: overlayfs, native.h: full copies) share this interface through an ops table, so the
 * conformance suite (tests/test_snapshotter_suite.c) runs unchanged against each.
 *
 * Errors follow containerd's storage package: unknown key ENOENT ("snapshot does not exist"), existing key
 * EEXIST, parent not committed EINVAL, commit of a non-active snapshot or remove of a snapshot with
 * children EBUSY (FailedPrecondition), update of a field other than labels EINVAL.
 *
 * Threading: every function may block on disk I/O (native prepare copies whole trees; usage walks a tree;
 * commit syncs the filesystem): call from a worker thread. One snapshotter may be used from several threads
 * at once (LMDB serialises writers). Functions never log above debug. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

/* Values match containerd.services.snapshots.v1.Kind. */
enum snapshot_kind {
        SNAPSHOT_KIND_UNKNOWN = 0,
        SNAPSHOT_KIND_VIEW = 1,
        SNAPSHOT_KIND_ACTIVE = 2,
        SNAPSHOT_KIND_COMMITTED = 3,
};

const char *snapshot_kind_name(enum snapshot_kind k); /* "view", "active", "committed", "unknown" */

/* A mount as in containerd's mount.Mount (types.Mount on the wire). */
struct snapshot_mount {
        char *type;     /* "overlay", "bind" */
        char *source;
        char **options; /* NULL-terminated, may be empty */
};

struct snapshot_mounts {
        struct snapshot_mount *v;
        size_t n;
};

/* Frees the contents (not the struct) and zeroes it. NULL-safe. */
void snapshot_mounts_clear(struct snapshot_mounts *m);

/* Labels are a NULL-terminated array of alternating keys and values: {"k1", "v1", "k2", "v2", NULL}. */
struct snapshot_info {
        char *name;
        char *parent;   /* NULL or "" for none */
        enum snapshot_kind kind;
        char **labels;  /* key/value pairs, never NULL after a successful stat */
        int64_t created_ns;
        int64_t updated_ns;
};

void snapshot_info_clear(struct snapshot_info *i);

struct snapshot_usage {
        int64_t size;   /* bytes (allocated blocks * 512, as containerd's fs.DiskUsage) */
        int64_t inodes;
};

struct snapshotter;

/* Walk callback: return 0 to continue, > 0 to stop early (walk returns 0), < 0 to stop with that error.
 * info is borrowed for the duration of the call. The callback runs outside any database transaction and may
 * call back into the snapshotter. */
typedef int (*snapshot_walk_fn)(const struct snapshot_info *info, void *userdata);
/* Filter: true to include info. NULL filter includes everything. */
typedef bool (*snapshot_filter_fn)(const struct snapshot_info *info, void *userdata);

struct snapshotter_ops {
        int (*prepare)(struct snapshotter *s, const char *key, const char *parent, char *const *labels,
                       struct snapshot_mounts *ret, struct error **err);
        int (*view)(struct snapshotter *s, const char *key, const char *parent, char *const *labels,
                    struct snapshot_mounts *ret, struct error **err);
        int (*commit)(struct snapshotter *s, const char *name, const char *key, char *const *labels,
                      struct error **err);
        int (*mounts)(struct snapshotter *s, const char *key, struct snapshot_mounts *ret, struct error **err);
        int (*remove)(struct snapshotter *s, const char *key, struct error **err);
        int (*stat)(struct snapshotter *s, const char *key, struct snapshot_info *ret, struct error **err);
        int (*update)(struct snapshotter *s, const struct snapshot_info *info, char *const *fieldpaths,
                      struct snapshot_info *ret, struct error **err);
        int (*usage)(struct snapshotter *s, const char *key, struct snapshot_usage *ret, struct error **err);
        int (*walk)(struct snapshotter *s, snapshot_filter_fn filter, void *filter_data, snapshot_walk_fn fn,
                    void *userdata, struct error **err);
        int (*cleanup)(struct snapshotter *s, struct error **err);
        void (*close)(struct snapshotter *s);
};

/* Common head of every backend object. */
struct snapshotter {
        const struct snapshotter_ops *ops;
        const char *name; /* "overlayfs", "native" (containerd's plugin ids) */
};

/* Creates an active snapshot `key` on top of committed `parent` (NULL or "" for none) and returns the mounts
 * for it in *ret (caller frees with snapshot_mounts_clear). labels may be NULL. */
static inline int snapshot_prepare(struct snapshotter *s, const char *key, const char *parent, char *const *labels,
                                   struct snapshot_mounts *ret, struct error **err)
{
        return s->ops->prepare(s, key, parent, labels, ret, err);
}
/* Like prepare, but a read-only view that can never be committed. */
static inline int snapshot_view(struct snapshotter *s, const char *key, const char *parent, char *const *labels,
                                struct snapshot_mounts *ret, struct error **err)
{
        return s->ops->view(s, key, parent, labels, ret, err);
}
/* Turns active `key` into committed `name` (key disappears). Records its usage and syncs its filesystem. */
static inline int snapshot_commit(struct snapshotter *s, const char *name, const char *key, char *const *labels,
                                  struct error **err)
{
        return s->ops->commit(s, name, key, labels, err);
}
/* Mounts of an active snapshot or a view; a committed snapshot has none (EBUSY, FailedPrecondition, as
 * containerd's "not active or view"). */
static inline int snapshot_mounts(struct snapshotter *s, const char *key, struct snapshot_mounts *ret,
                                  struct error **err)
{
        return s->ops->mounts(s, key, ret, err);
}
/* Removes a snapshot and its directory. EBUSY if it has children. */
static inline int snapshot_remove(struct snapshotter *s, const char *key, struct error **err)
{
        return s->ops->remove(s, key, err);
}
/* Fills *ret (caller frees with snapshot_info_clear). */
static inline int snapshot_stat(struct snapshotter *s, const char *key, struct snapshot_info *ret,
                                struct error **err)
{
        return s->ops->stat(s, key, ret, err);
}
/* Updates labels of info->name. fieldpaths (NULL-terminated, may be NULL or empty): empty or "labels"
 * replaces all labels, "labels.<k>" sets or (absent in info) removes one; any other path is EINVAL.
 * Fills *ret with the updated info when ret is not NULL. */
static inline int snapshot_update(struct snapshotter *s, const struct snapshot_info *info, char *const *fieldpaths,
                                  struct snapshot_info *ret, struct error **err)
{
        return s->ops->update(s, info, fieldpaths, ret, err);
}
/* Disk usage: computed now for active snapshots, recorded at commit for committed ones. */
static inline int snapshot_usage(struct snapshotter *s, const char *key, struct snapshot_usage *ret,
                                 struct error **err)
{
        return s->ops->usage(s, key, ret, err);
}
/* Calls fn for every snapshot the filter accepts, in key order. */
static inline int snapshot_walk(struct snapshotter *s, snapshot_filter_fn filter, void *filter_data,
                                snapshot_walk_fn fn, void *userdata, struct error **err)
{
        return s->ops->walk(s, filter, filter_data, fn, userdata, err);
}
/* Removes directories no snapshot refers to (left by crashes or failed operations). */
static inline int snapshot_cleanup(struct snapshotter *s, struct error **err)
{
        return s->ops->cleanup(s, err);
}
/* Closes and frees the snapshotter. NULL-safe. */
static inline void snapshot_close(struct snapshotter *s)
{
        if (s)
                s->ops->close(s);
}
static inline void snapshot_closep(struct snapshotter **s)
{
        snapshot_close(*s);
}
#define _cleanup_snapshotter_ __attribute__((cleanup(snapshot_closep)))

/* Labels helper: returns the value of key in a key/value array, or NULL (borrowed). */
const char *snapshot_labels_get(char *const *labels, const char *key);

/* --- backends --- */

/* Opens (creating if needed) the overlayfs snapshotter rooted at root, e.g.
 * "<krill root>/io.containerd.snapshotter.v1.overlayfs": snapshots/<id>/{fs,work} and metadata.lmdb.
 * Mounts use "index=off" when the kernel offers the parameter (as containerd). */
int snapshot_overlay_open(const char *root, struct snapshotter **ret, struct error **err);
/* Whether overlayfs can be mounted with upper/work dirs on the filesystem holding dir (a probe mount;
 * needs CAP_SYS_ADMIN). Returns 1, 0 or -errno. */
int snapshot_overlay_supported(const char *dir, struct error **err);

/* Opens the native snapshotter at root (e.g. "<krill root>/io.containerd.snapshotter.v1.native"):
 * snapshots/<id> holds a full copy of the parent (reflinked per file when the filesystem supports FICLONE,
 * otherwise copy_file_range). Mounts are bind mounts. */
int snapshot_native_open(const char *root, struct snapshotter **ret, struct error **err);

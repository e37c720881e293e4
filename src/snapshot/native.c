/* native snapshotter (containerd snapshots/native): every snapshot is a full copy of its parent, for
 * filesystems where overlayfs cannot be used. Files are reflinked where the filesystem can (btrfs, xfs). */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot/snapshot-internal.h"
#include "util/alloc.h"
#include "util/cleanup.h"

static int native_populate(struct snap_base *b, int dir_fd, const char *parent_id, enum snapshot_kind kind,
                           struct error **err)
{
        (void)kind;
        if (!parent_id) {
                if (fchmod(dir_fd, 0755) < 0)
                        return error_set(err, errno, "chmod snapshot dir");
                return 0;
        }
        _cleanup_close_ int src = openat(b->snaps_fd, parent_id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (src < 0)
                return error_set(err, errno, "open parent snapshot dir %s", parent_id);
        return snap_copy_tree(src, dir_fd, err);
}

static int native_mounts(struct snap_base *b, const char *id, enum snapshot_kind kind, char *const *parent_ids,
                         struct snapshot_mounts *ret, struct error **err)
{
        (void)parent_ids;
        (void)err;
        struct snapshot_mount *m = snap_mounts_append(ret);
        _cleanup_free_ char *src = xasprintf("%s/%s", b->snaps_path, id);
        snap_mount_init(m, "bind", src);
        snap_mount_add_option(m, kind == SNAPSHOT_KIND_VIEW ? "ro" : "rw");
        snap_mount_add_option(m, "rbind");
        return 0;
}

static char *native_usage_dir(const char *id)
{
        return xstrdup(id);
}

static const struct snap_backend native_backend = {
        .name = "native",
        .populate = native_populate,
        .mounts = native_mounts,
        .usage_dir = native_usage_dir,
};

int snapshot_native_open(const char *root, struct snapshotter **ret, struct error **err)
{
        struct snap_base *b;
        int r = snap_base_open(root, &native_backend, &b, err);
        if (r < 0)
                return r;
        *ret = &b->pub;
        return 0;
}

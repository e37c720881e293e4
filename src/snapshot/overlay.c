/* overlayfs snapshotter (containerd snapshots/overlay, 1.6): snapshots/<id>/fs is the upper dir of an
 * active snapshot and the lower dir once committed; snapshots/<id>/work is overlay's work dir. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot/snapshot-internal.h"
#include "util/alloc.h"
#include "util/cleanup.h"

static int overlay_populate(struct snap_base *b, int dir_fd, const char *parent_id, enum snapshot_kind kind,
                            struct error **err)
{
        if (mkdirat(dir_fd, "fs", 0755) < 0)
                return error_set(err, errno, "create overlay upper dir");
        /* Views never get an upper dir mounted, but containerd creates both for every snapshot. */
        (void)kind;
        if (mkdirat(dir_fd, "work", 0711) < 0)
                return error_set(err, errno, "create overlay work dir");
        /* mkdir honours the umask: set the modes exactly. */
        if (fchmodat(dir_fd, "fs", 0755, 0) < 0 || fchmodat(dir_fd, "work", 0711, 0) < 0 || fchmod(dir_fd, 0700) < 0)
                return error_set(err, errno, "chmod overlay snapshot dirs");
        /* The upper dir is the merged root's inode: it takes the owner of the parent's root, as containerd does,
         * so that a remapped (user namespace) image stays owned by its remapped root. */
        if (parent_id && parent_id[0]) {
                struct stat st;
                _cleanup_free_ char *pfs = xasprintf("%s/%s/fs", b->snaps_path, parent_id);
                if (stat(pfs, &st) < 0)
                        return error_set(err, errno, "failed to create snapshot: failed to stat parent");
                if ((st.st_uid != 0 || st.st_gid != 0) && fchownat(dir_fd, "fs", st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
                        return error_set(err, errno, "failed to create snapshot: chown upper dir");
        }
        return 0;
}

static int overlay_mounts(struct snap_base *b, const char *id, enum snapshot_kind kind, char *const *parent_ids,
                          struct snapshot_mounts *ret, struct error **err)
{
        size_t np = 0;
        (void)err;

        while (parent_ids[np])
                np++;
        if (np == 0) {
                /* One layer, no parents: overlay needs a lowerdir, so a bind mount (containerd). */
                struct snapshot_mount *m = snap_mounts_append(ret);
                _cleanup_free_ char *src = xasprintf("%s/%s/fs", b->snaps_path, id);
                snap_mount_init(m, "bind", src);
                snap_mount_add_option(m, kind == SNAPSHOT_KIND_VIEW ? "ro" : "rw");
                snap_mount_add_option(m, "rbind");
                return 0;
        }
        if (kind != SNAPSHOT_KIND_ACTIVE && np == 1) {
                struct snapshot_mount *m = snap_mounts_append(ret);
                _cleanup_free_ char *src = xasprintf("%s/%s/fs", b->snaps_path, parent_ids[0]);
                snap_mount_init(m, "bind", src);
                snap_mount_add_option(m, "ro");
                snap_mount_add_option(m, "rbind");
                return 0;
        }
        struct snapshot_mount *m = snap_mounts_append(ret);
        snap_mount_init(m, "overlay", "overlay");
        if (b->index_off)
                snap_mount_add_option(m, "index=off");
        if (kind == SNAPSHOT_KIND_ACTIVE) {
                _cleanup_free_ char *w = xasprintf("workdir=%s/%s/work", b->snaps_path, id);
                _cleanup_free_ char *u = xasprintf("upperdir=%s/%s/fs", b->snaps_path, id);
                snap_mount_add_option(m, w);
                snap_mount_add_option(m, u);
        }
        size_t len = strlen("lowerdir=");
        for (size_t i = 0; i < np; i++)
                len += strlen(b->snaps_path) + strlen(parent_ids[i]) + 5;
        char *low = xmalloc(len + 1), *p = low;
        p += sprintf(p, "lowerdir=");
        for (size_t i = 0; i < np; i++)
                p += sprintf(p, "%s%s/%s/fs", i ? ":" : "", b->snaps_path, parent_ids[i]);
        snap_mount_add_option(m, low);
        free(low);
        return 0;
}

static char *overlay_usage_dir(const char *id)
{
        return xasprintf("%s/fs", id);
}

static const struct snap_backend overlay_backend = {
        .name = "overlayfs",
        .populate = overlay_populate,
        .mounts = overlay_mounts,
        .usage_dir = overlay_usage_dir,
};

int snapshot_overlay_open(const char *root, struct snapshotter **ret, struct error **err)
{
        struct snap_base *b;
        int r = snap_base_open(root, &overlay_backend, &b, err);
        if (r < 0)
                return r;
        /* containerd passes index=off whenever the kernel has the parameter, so that upper dirs stay
         * usable after a layer is re-mounted with different lowers. */
        b->index_off = access("/sys/module/overlay/parameters/index", F_OK) == 0;
        *ret = &b->pub;
        return 0;
}

int snapshot_overlay_supported(const char *dir, struct error **err)
{
        _cleanup_free_ char *base = xasprintf("%s/overlay-check-XXXXXX", dir);
        int ok = 0;

        if (!mkdtemp(base))
                return error_set(err, errno, "create %s", dir);
        _cleanup_free_ char *lower = xasprintf("%s/lower", base), *upper = xasprintf("%s/upper", base),
                            *work = xasprintf("%s/work", base), *merged = xasprintf("%s/merged", base),
                            *opts = NULL;
        if (mkdir(lower, 0700) == 0 && mkdir(upper, 0700) == 0 && mkdir(work, 0700) == 0 && mkdir(merged, 0700) == 0) {
                opts = xasprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work);
                if (mount("overlay", merged, "overlay", 0, opts) == 0) {
                        ok = 1;
                        (void)umount2(merged, MNT_DETACH);
                }
        }
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
                (void)snap_rm_rf_at(fd, base + strlen(dir) + 1);
                (void)close(fd);
        }
        return ok;
}

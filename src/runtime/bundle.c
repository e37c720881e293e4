#include "bundle.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/identifiers.h"
#include "util/json.h"
#include "util/time.h"

#define TASK_DIR "io.containerd.runtime.v2.task"
#define MAX_SMALL_FILE 4096
#define TRASH_DIR ".trash"

static struct runtime_bundle *bundle_describe(const char *state_dir, const char *root_dir, const char *ns,
                                              const char *id)
{
        struct runtime_bundle *b = xcalloc(1, sizeof(*b));
        b->ns = xstrdup(ns);
        b->id = xstrdup(id);
        b->path = xasprintf("%s/" TASK_DIR "/%s/%s", state_dir, ns, id);
        b->work = xasprintf("%s/" TASK_DIR "/%s/%s", root_dir, ns, id);
        return b;
}

struct runtime_bundle *runtime_bundle_free(struct runtime_bundle *b)
{
        if (!b)
                return NULL;
        free(b->ns);
        free(b->id);
        free(b->path);
        free(b->work);
        free(b);
        return NULL;
}

struct runtime_bundle *runtime_bundle_load(const char *state_dir, const char *root_dir, const char *ns,
                                           const char *id)
{
        return bundle_describe(state_dir, root_dir, ns, id);
}

/* Removes path (a directory tree) after unmounting anything mounted on rootfs. Used for cleanup on failure
 * and for Delete. */
static int remove_tree(const char *path, struct error **err)
{
        _cleanup_free_ char *parent = fs_path_dir(path);
        _cleanup_free_ char *base = fs_path_base(path);
        _cleanup_close_ int pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (pfd < 0)
                return errno == ENOENT ? 0 : error_set(err, errno, "open %s", parent);
        return fs_rm_rf_at(pfd, base, err);
}

/* Writes a small bundle file. No fsync: the state dir is volatile by design (/run, as containerd's), a crash
 * loses the tasks anyway, and containerd writes these files without syncing too. The temp name + rename keeps
 * a reader (recovery) from ever seeing half a file. */
static int write_small(int dfd, const char *name, const void *data, size_t len, mode_t mode, struct error **err)
{
        _cleanup_free_ char *tmp = xasprintf(".%s.tmp", name);
        _cleanup_close_ int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return error_set(err, errno, "write %s", name);
        int r = fs_write_all(fd, data, len);
        if (r < 0 || fchmod(fd, mode) < 0) {
                r = error_set(err, r < 0 ? -r : errno, "write %s", name);
                (void)unlinkat(dfd, tmp, 0);
                return r;
        }
        if (renameat(dfd, tmp, dfd, name) < 0) {
                r = error_set(err, errno, "write %s: rename", name);
                (void)unlinkat(dfd, tmp, 0);
                return r;
        }
        return 0;
}

static void unmount_all(const char *target)
{
        /* The shim normally unmounts; after a crash the rootfs may still carry one or more stacked mounts.
         * MNT_DETACH never blocks on a busy mount; loop until nothing is mounted there. */
        for (int i = 0; i < 64; i++)
                if (umount2(target, MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
                        break;
}

/* The host gid that container gid 0 maps to (linux.gidMappings), 0 without a mapping (containerd's remappedGID). */
static int remapped_gid(const void *spec, size_t len, gid_t *ret, struct error **err)
{
        json_t *doc = NULL, *linux_ = NULL, *maps = NULL, *m;
        size_t i;
        *ret = 0;
        int r = json_load(spec, len, &doc, err);
        if (r < 0)
                return error_wrap(err, "parse spec");
        if (json_get_object(doc, "linux", &linux_, NULL) == 0 && json_get_array(linux_, "gidMappings", &maps, NULL) == 0)
                json_array_foreach(maps, i, m) {
                        uint64_t cid, hid;
                        if (json_get_uint(m, "containerID", &cid, NULL) == 0 && cid == 0 &&
                            json_get_uint(m, "hostID", &hid, NULL) == 0 && hid < UINT32_MAX) {
                                *ret = (gid_t)hid;
                                break;
                        }
                }
        json_decref(doc);
        return 0;
}

int runtime_bundle_new(const char *state_dir, const char *root_dir, const char *ns, const char *id,
                       const void *spec, size_t spec_len, struct runtime_bundle **ret, struct error **err)
{
        int r = identifier_validate(ns, err);
        if (r < 0)
                return error_wrap(err, "invalid namespace");
        r = identifier_validate(id, err);
        if (r < 0)
                return error_wrap(err, "invalid task id %s", id);

        _cleanup_(runtime_bundle_freep) struct runtime_bundle *b = bundle_describe(state_dir, root_dir, ns, id);
        _cleanup_free_ char *bparent = fs_path_dir(b->path);
        _cleanup_free_ char *wparent = fs_path_dir(b->work);
        r = fs_mkdir_p(AT_FDCWD, bparent, 0711, err);
        if (r < 0)
                return error_wrap(err, "create bundle parent");
        if (mkdir(b->path, 0700) < 0)
                return error_set(err, errno, "bundle %s", b->path);
        /* containerd's prepareBundleDirectoryPermissions: with a user namespace, the remapped root group must be
         * able to reach the rootfs through the bundle (runc's init runs as that root). */
        gid_t gid;
        r = remapped_gid(spec, spec_len, &gid, err);
        if (r == 0 && gid != 0 && (chown(b->path, (uid_t)-1, gid) < 0 || chmod(b->path, 0710) < 0))
                r = error_set(err, errno, "bundle %s", b->path);
        if (r < 0) {
                (void)rmdir(b->path);
                return r;
        }

        _cleanup_free_ char *rootfs = xasprintf("%s/rootfs", b->path);
        _cleanup_free_ char *worklink = xasprintf("%s/work", b->path);
        _cleanup_close_ int bfd = -1;
        if (mkdir(rootfs, 0711) < 0) {
                r = error_set(err, errno, "mkdir %s", rootfs);
                goto fail;
        }
        r = fs_mkdir_p(AT_FDCWD, wparent, 0711, err);
        if (r < 0)
                goto fail;
        if (mkdir(b->work, 0711) < 0) {
                if (errno != EEXIST) {
                        r = error_set(err, errno, "mkdir %s", b->work);
                        goto fail;
                }
                /* A stale work dir from a crashed task: start clean, as containerd does. */
                r = remove_tree(b->work, err);
                if (r < 0)
                        goto fail;
                if (mkdir(b->work, 0711) < 0) {
                        r = error_set(err, errno, "mkdir %s", b->work);
                        goto fail;
                }
        }
        if (symlink(b->work, worklink) < 0) {
                r = error_set(err, errno, "symlink %s", worklink);
                goto fail;
        }
        bfd = open(b->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (bfd < 0) {
                r = error_set(err, errno, "open %s", b->path);
                goto fail;
        }
        r = write_small(bfd, "config.json", spec, spec_len, 0666, err);
        if (r < 0)
                goto fail;
        *ret = TAKE_PTR(b);
        return 0;
fail:
        (void)remove_tree(b->work, NULL);
        (void)remove_tree(b->path, NULL);
        return r;
}

int runtime_bundle_open_log(const struct runtime_bundle *b, struct error **err)
{
        _cleanup_free_ char *p = xasprintf("%s/log", b->path);
        if (mkfifo(p, 0700) < 0 && errno != EEXIST)
                return error_set(err, errno, "mkfifo %s", p);
        int fd = open(p, O_RDWR | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
                return error_set(err, errno, "open %s", p);
        return fd;
}

int runtime_bundle_delete(const struct runtime_bundle *b, struct error **err)
{
        _cleanup_free_ char *rootfs = xasprintf("%s/rootfs", b->path);
        unmount_all(rootfs);
        int r = remove_tree(b->path, err);
        int r2 = remove_tree(b->work, r < 0 ? NULL : err);
        if (r < 0)
                return error_wrap(err, "remove bundle %s", b->path);
        return r2;
}

/* <path>/../../.trash/<name>: the .trash dir next to the namespace dirs, on the same filesystem. */
static char *trash_path(const char *path, const char *name)
{
        _cleanup_free_ char *nsdir = fs_path_dir(path);
        _cleanup_free_ char *top = fs_path_dir(nsdir);
        return xasprintf("%s/" TRASH_DIR "/%s", top, name);
}

/* Renames path to dst, creating the trash dir if needed. Returns 0 or -errno. */
static int move_to_trash(const char *path, const char *dst)
{
        _cleanup_free_ char *trash = fs_path_dir(dst);
        if (mkdir(trash, 0700) < 0 && errno != EEXIST)
                return -errno;
        return rename(path, dst) < 0 ? -errno : 0;
}

int runtime_bundle_retire(struct runtime_bundle *b, struct error **err)
{
        /* Unique within this boot: the monotonic clock never repeats; recovery empties the trash anyway. */
        _cleanup_free_ char *name =
                xasprintf("%s-%s-%llx", b->ns, b->id, (unsigned long long)time_monotonic_ns());
        char *p = trash_path(b->path, name);
        char *w = trash_path(b->work, name);
        int r = move_to_trash(b->path, p);
        if (r < 0) {
                free(p);
                free(w);
                if (r == -ENOENT) {
                        r = remove_tree(b->work, err);
                        return r < 0 ? error_wrap(err, "remove bundle work dir %s", b->work) : 0;
                }
                r = runtime_bundle_delete(b, err);
                return r < 0 ? r : 0;
        }
        r = move_to_trash(b->work, w);
        if (r < 0 && r != -ENOENT) {
                r = remove_tree(b->work, err);
                if (r < 0) {
                        free(p);
                        free(w);
                        return error_wrap(err, "remove bundle work dir %s", b->work);
                }
        }
        /* From here on b names only trash paths (w may not exist): deleting it later never touches a new
         * bundle of the same id. */
        free(b->path);
        b->path = p;
        free(b->work);
        b->work = w;
        return 1;
}

void runtime_bundle_empty_trash(const char *state_dir, const char *root_dir)
{
        const char *tops[] = {state_dir, root_dir};
        for (size_t i = 0; i < 2; i++) {
                _cleanup_free_ char *dir = xasprintf("%s/" TASK_DIR, tops[i]);
                _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0)
                        continue;
                /* Anything mounted on a trashed rootfs is a leftover of a crash: detach it first. */
                _cleanup_closedir_ DIR *d = NULL;
                int tfd = openat(fd, TRASH_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (tfd < 0)
                        continue;
                d = fdopendir(tfd);
                if (!d) {
                        close(tfd);
                        continue;
                }
                struct dirent *de;
                while ((de = readdir(d))) {
                        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                                continue;
                        _cleanup_free_ char *rootfs = xasprintf("%s/" TRASH_DIR "/%s/rootfs", dir, de->d_name);
                        unmount_all(rootfs);
                        (void)fs_rm_rf_at(dirfd(d), de->d_name, NULL);
                }
        }
}

int runtime_bundle_read(const struct runtime_bundle *b, const char *name, char **ret, struct error **err)
{
        _cleanup_close_ int bfd = open(b->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (bfd < 0)
                return error_set(err, errno, "bundle %s", b->path);
        char *data = NULL;
        size_t len = 0;
        int r = fs_read_file(bfd, name, MAX_SMALL_FILE, &data, &len, err);
        if (r < 0)
                return r;
        while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == ' ' || data[len - 1] == '\r'))
                data[--len] = 0;
        *ret = data;
        return 0;
}

int runtime_bundle_write(const struct runtime_bundle *b, const char *name, const char *content, struct error **err)
{
        _cleanup_close_ int bfd = open(b->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (bfd < 0)
                return error_set(err, errno, "bundle %s", b->path);
        return write_small(bfd, name, content, strlen(content), 0600, err);
}

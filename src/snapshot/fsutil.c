/* Tree helpers for the snapshotters: rm -rf, disk usage, and the native snapshotter's copy. None of them
 * follows symlinks. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "snapshot/snapshot-internal.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/fs.h"

#define MAX_DEPTH 2048

/* --- inode set for hard links --- */

struct ino_ent {
        dev_t dev;
        ino_t ino;
        char *path; /* copy: relative path of the first copy; usage: unused */
};

struct ino_set {
        struct ino_ent *v;
        size_t n, cap; /* open addressing, cap a power of two */
};

static size_t ino_hash(dev_t d, ino_t i)
{
        uint64_t h = ((uint64_t)d * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)i * 0xc2b2ae3d27d4eb4full);
        return (size_t)(h ^ (h >> 29));
}

/* Returns the entry for (dev, ino), inserting a new one (path NULL) when missing; *found tells which. */
static struct ino_ent *ino_set_get(struct ino_set *s, dev_t d, ino_t i, bool *found)
{
        if ((s->n + 1) * 2 > s->cap) {
                size_t ncap = s->cap ? s->cap * 2 : 64;
                struct ino_ent *nv = xcalloc(ncap, sizeof(*nv));
                for (size_t k = 0; k < s->cap; k++) {
                        if (!s->v[k].ino && !s->v[k].dev)
                                continue;
                        size_t j = ino_hash(s->v[k].dev, s->v[k].ino) & (ncap - 1);
                        while (nv[j].ino || nv[j].dev)
                                j = (j + 1) & (ncap - 1);
                        nv[j] = s->v[k];
                }
                free(s->v);
                s->v = nv;
                s->cap = ncap;
        }
        size_t j = ino_hash(d, i) & (s->cap - 1);
        while (s->v[j].ino || s->v[j].dev) {
                if (s->v[j].ino == i && s->v[j].dev == d) {
                        *found = true;
                        return &s->v[j];
                }
                j = (j + 1) & (s->cap - 1);
        }
        s->v[j].dev = d;
        s->v[j].ino = i ? i : 1;
        s->n++;
        *found = false;
        return &s->v[j];
}

static void ino_set_clear(struct ino_set *s)
{
        for (size_t k = 0; k < s->cap; k++)
                free(s->v[k].path);
        free(s->v);
        *s = (struct ino_set){0};
}

/* --- rm -rf --- */

int snap_rm_rf_at(int dir_fd, const char *name)
{
        return fs_rm_rf_at(dir_fd, name, NULL);
}

/* --- disk usage --- */

static int du(int dfd, struct ino_set *seen, struct snapshot_usage *u, unsigned depth)
{
        if (depth > MAX_DEPTH)
                return -ELOOP;
        int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        DIR *d = fdopendir(fd);
        if (!d) {
                int e = errno;
                (void)close(fd);
                return -e;
        }
        struct dirent *de;
        int r = 0;
        while ((de = readdir(d))) {
                struct stat st;
                bool found;
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno == ENOENT)
                                continue;
                        r = -errno;
                        break;
                }
                ino_set_get(seen, st.st_dev, st.st_ino, &found);
                if (!found) {
                        u->inodes++;
                        u->size += (int64_t)st.st_blocks * 512;
                }
                if (S_ISDIR(st.st_mode)) {
                        int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (sub < 0) {
                                r = -errno;
                                break;
                        }
                        r = du(sub, seen, u, depth + 1);
                        (void)close(sub);
                        if (r < 0)
                                break;
                }
        }
        closedir(d);
        return r;
}

int snap_disk_usage(int dir_fd, const char *name, struct snapshot_usage *ret, struct error **err)
{
        struct ino_set seen = {0};
        struct snapshot_usage u = {0};
        struct stat st;
        _cleanup_close_ int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

        if (fd < 0)
                return error_set(err, errno, "usage of %s", name);
        if (fstat(fd, &st) == 0) {
                bool found;
                ino_set_get(&seen, st.st_dev, st.st_ino, &found);
                u.inodes++;
                u.size += (int64_t)st.st_blocks * 512;
        }
        int r = du(fd, &seen, &u, 0);
        ino_set_clear(&seen);
        if (r < 0)
                return error_set(err, -r, "usage of %s", name);
        *ret = u;
        return 0;
}

/* --- copy --- */

struct copier {
        int dst_root;
        struct ino_set links;
        char *buf;
};

static int copy_data(struct copier *c, int in, int out, off_t size)
{
        if (ioctl(out, FICLONE, in) == 0)
                return 0;
        off_t left = size;
        while (left > 0) {
                ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP))
                        break; /* fall back to read/write below */
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return 0; /* file shrank while copying */
                left -= n;
        }
        if (left == 0)
                return 0;
        if (!c->buf)
                c->buf = xmalloc(1 << 20);
        if (lseek(in, size - left, SEEK_SET) < 0 || lseek(out, size - left, SEEK_SET) < 0)
                return -errno;
        for (;;) {
                ssize_t n = read(in, c->buf, 1 << 20);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return 0;
                for (ssize_t off = 0; off < n;) {
                        ssize_t w = write(out, c->buf + off, (size_t)(n - off));
                        if (w < 0 && errno == EINTR)
                                continue;
                        if (w < 0)
                                return -errno;
                        off += w;
                }
        }
}

/* Copies xattrs from the open source (fd) or, for symlinks/devices, by /proc path. */
static int copy_xattrs(int sfd, const char *spath, int dfd, const char *dpath)
{
        char list[8192], val[65536];
        ssize_t n = sfd >= 0 ? flistxattr(sfd, list, sizeof(list)) : llistxattr(spath, list, sizeof(list));
        if (n < 0)
                return errno == ENOTSUP ? 0 : -errno;
        for (char *k = list; k < list + n; k += strlen(k) + 1) {
                ssize_t vl = sfd >= 0 ? fgetxattr(sfd, k, val, sizeof(val)) : lgetxattr(spath, k, val, sizeof(val));
                if (vl < 0)
                        continue;
                int r = dfd >= 0 ? fsetxattr(dfd, k, val, (size_t)vl, 0) : lsetxattr(dpath, k, val, (size_t)vl, 0);
                if (r < 0 && errno != ENOTSUP && !(errno == EPERM && strncmp(k, "security.", 9) == 0))
                        return -errno;
        }
        return 0;
}

static int copy_meta(int sdir, int ddir, const char *name, const struct stat *st, int sfd, int dfd)
{
        struct timespec ts[2] = {st->st_atim, st->st_mtim};
        int r;

        if (geteuid() == 0) {
                r = dfd >= 0 ? fchown(dfd, st->st_uid, st->st_gid)
                             : fchownat(ddir, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW);
                if (r < 0)
                        return -errno;
        }
        if (!S_ISLNK(st->st_mode)) {
                _cleanup_free_ char *sp = xasprintf("/proc/self/fd/%d/%s", sdir, name);
                _cleanup_free_ char *dp = xasprintf("/proc/self/fd/%d/%s", ddir, name);
                r = copy_xattrs(sfd, sp, dfd, dp);
                if (r < 0)
                        return r;
                r = dfd >= 0 ? fchmod(dfd, st->st_mode & 07777) : fchmodat(ddir, name, st->st_mode & 07777, 0);
                if (r < 0)
                        return -errno;
        }
        r = dfd >= 0 ? futimens(dfd, ts) : utimensat(ddir, name, ts, AT_SYMLINK_NOFOLLOW);
        return r < 0 ? -errno : 0;
}

static int copy_dir(struct copier *c, int sdir, int ddir, const char *rel, unsigned depth)
{
        if (depth > MAX_DEPTH)
                return -ELOOP;
        int fd = openat(sdir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        DIR *d = fdopendir(fd);
        if (!d) {
                int e = errno;
                (void)close(fd);
                return -e;
        }
        struct dirent *de;
        int r = 0;
        while (r == 0 && (de = readdir(d))) {
                const char *nm = de->d_name;
                struct stat st;
                if (strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0)
                        continue;
                if (fstatat(sdir, nm, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        r = -errno;
                        break;
                }
                _cleanup_free_ char *path = rel[0] ? xasprintf("%s/%s", rel, nm) : xstrdup(nm);
                if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
                        bool found;
                        struct ino_ent *e = ino_set_get(&c->links, st.st_dev, st.st_ino, &found);
                        if (found && e->path) {
                                if (linkat(c->dst_root, e->path, ddir, nm, 0) < 0)
                                        r = -errno;
                                continue;
                        }
                        e->path = xstrdup(path);
                }
                switch (st.st_mode & S_IFMT) {
                case S_IFDIR: {
                        if (mkdirat(ddir, nm, 0700) < 0) {
                                r = -errno;
                                break;
                        }
                        _cleanup_close_ int s2 = openat(sdir, nm, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        _cleanup_close_ int d2 = openat(ddir, nm, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (s2 < 0 || d2 < 0) {
                                r = -errno;
                                break;
                        }
                        r = copy_dir(c, s2, d2, path, depth + 1);
                        if (r == 0)
                                r = copy_meta(sdir, ddir, nm, &st, s2, d2);
                        break;
                }
                case S_IFREG: {
                        _cleanup_close_ int in = openat(sdir, nm, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                        _cleanup_close_ int out =
                                openat(ddir, nm, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                        if (in < 0 || out < 0) {
                                r = -errno;
                                break;
                        }
                        r = copy_data(c, in, out, st.st_size);
                        if (r == 0)
                                r = copy_meta(sdir, ddir, nm, &st, in, out);
                        break;
                }
                case S_IFLNK: {
                        char target[PATH_MAX + 1];
                        ssize_t n = readlinkat(sdir, nm, target, PATH_MAX);
                        if (n < 0) {
                                r = -errno;
                                break;
                        }
                        target[n] = '\0';
                        if (symlinkat(target, ddir, nm) < 0)
                                r = -errno;
                        else
                                r = copy_meta(sdir, ddir, nm, &st, -1, -1);
                        break;
                }
                default:
                        if (mknodat(ddir, nm, st.st_mode, st.st_rdev) < 0)
                                r = -errno;
                        else
                                r = copy_meta(sdir, ddir, nm, &st, -1, -1);
                        break;
                }
        }
        closedir(d);
        return r;
}

int snap_copy_tree(int src_fd, int dst_fd, struct error **err)
{
        struct copier c = {.dst_root = dst_fd};
        struct stat st;
        int r = copy_dir(&c, src_fd, dst_fd, "", 0);
        if (r == 0 && fstat(src_fd, &st) == 0) {
                /* The root directory's own attributes. */
                struct timespec ts[2] = {st.st_atim, st.st_mtim};
                if (geteuid() == 0 && fchown(dst_fd, st.st_uid, st.st_gid) < 0)
                        r = -errno;
                if (r == 0 && fchmod(dst_fd, st.st_mode & 07777) < 0)
                        r = -errno;
                if (r == 0)
                        (void)futimens(dst_fd, ts);
        }
        ino_set_clear(&c.links);
        free(c.buf);
        if (r < 0)
                return error_set(err, -r, "copy snapshot tree");
        return 0;
}

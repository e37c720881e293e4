#include "util/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/time.h"

#define MAX_SYMLINKS 40
#define OPENAT2_EAGAIN_RETRIES 32

/* ---- openat2 and its fallback ---- */

static int sys_openat2(int dirfd, const char *path, struct open_how *how)
{
        return (int)syscall(SYS_openat2, dirfd, path, how, sizeof(*how));
}

struct walk {
        int *fds; /* fds[0] is the root of the walk; each later entry is a directory below it */
        size_t n, cap;
};

static void walk_push(struct walk *w, int fd)
{
        if (w->n == w->cap) {
                w->cap = w->cap ? w->cap * 2 : 16;
                w->fds = xreallocarray(w->fds, w->cap, sizeof(int));
        }
        w->fds[w->n++] = fd;
}

static void walk_pop_to(struct walk *w, size_t n)
{
        while (w->n > n)
                (void)close(w->fds[--w->n]);
}

static void walk_done(struct walk *w)
{
        walk_pop_to(w, 0);
        free(w->fds);
}

static int walk_top(const struct walk *w)
{
        return w->fds[w->n - 1];
}

/* Reads the target of the symlink fd (an O_PATH|O_NOFOLLOW fd): returns a new string or NULL with errno. */
static char *read_link_fd(int fd)
{
        size_t sz = 256;
        for (;;) {
                char *buf = xmalloc(sz);
                ssize_t n = readlinkat(fd, "", buf, sz);
                if (n < 0) {
                        int e = errno;
                        free(buf);
                        errno = e;
                        return NULL;
                }
                if ((size_t)n < sz) {
                        buf[n] = '\0';
                        return buf;
                }
                free(buf);
                if (sz >= 65536) {
                        errno = ENAMETOOLONG;
                        return NULL;
                }
                sz *= 2;
        }
}

int fs_open_resolve_fallback(int dirfd, const char *path, int flags, mode_t mode, unsigned resolve,
                             struct error **err)
{
        _cleanup_free_ char *todo = NULL;
        struct walk w = {0};
        struct stat rootst;
        unsigned links = 0;
        int r, fd;

        if (!*path)
                return error_set(err, ENOENT, "open \"\"");
        fd = openat(dirfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return error_set(err, errno, "open %s", path);
        walk_push(&w, fd);
        if (fstat(fd, &rootst) < 0) {
                r = error_set(err, errno, "open %s", path);
                goto out;
        }
        if (path[0] == '/' && (resolve & FS_RESOLVE_BENEATH)) {
                r = error_set(err, EXDEV, "open %s: absolute path escapes the directory", path);
                goto out;
        }
        todo = xstrdup(path);
        char *p = todo;
        for (;;) {
                while (*p == '/')
                        p++;
                char *end = p + strcspn(p, "/");
                char *rest = end;
                while (*rest == '/')
                        rest++;
                bool last = *rest == '\0';
                bool trailing_slash = last && end != rest;
                *end = '\0';
                const char *comp = p;

                if (comp[0] == '\0' || strcmp(comp, ".") == 0 || strcmp(comp, "..") == 0) {
                        if (strcmp(comp, "..") == 0) {
                                if (w.n > 1)
                                        walk_pop_to(&w, w.n - 1);
                                else if (resolve & FS_RESOLVE_BENEATH) {
                                        r = error_set(err, EXDEV, "open %s: path escapes the directory", path);
                                        goto out;
                                }
                                /* FS_RESOLVE_IN_ROOT: ".." at the root stays at the root, like chroot. */
                        }
                        if (last) {
                                fd = openat(walk_top(&w), ".", (flags & ~(O_CREAT | O_EXCL | O_NOFOLLOW)) | O_CLOEXEC);
                                if (fd < 0)
                                        r = error_set(err, errno, "open %s", path);
                                else
                                        r = fd;
                                goto out;
                        }
                        p = rest;
                        continue;
                }

                struct stat st;
                if (last) {
                        int fl = flags | O_NOFOLLOW | O_CLOEXEC | (trailing_slash ? O_DIRECTORY : 0);
                        fd = openat(walk_top(&w), comp, fl, mode);
                        if (fd >= 0 && !(flags & O_PATH)) {
                                r = fd;
                                goto check_xdev;
                        }
                        if (fd < 0 && errno != ELOOP && errno != ENOTDIR) {
                                r = error_set(err, errno, "open %s", path);
                                goto out;
                        }
                        if (fd < 0) {
                                /* ELOOP/ENOTDIR: maybe a symlink we must resolve ourselves. */
                                int e0 = errno;
                                fd = openat(walk_top(&w), comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                                if (fd < 0) {
                                        r = error_set(err, errno, "open %s", path);
                                        goto out;
                                }
                                if (fstat(fd, &st) == 0 && !S_ISLNK(st.st_mode)) {
                                        (void)close(fd);
                                        r = error_set(err, e0, "open %s", path);
                                        goto out;
                                }
                        }
                } else {
                        fd = openat(walk_top(&w), comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                        if (fd < 0) {
                                r = error_set(err, errno, "open %s", path);
                                goto out;
                        }
                }
                if (fstat(fd, &st) < 0) {
                        r = error_set(err, errno, "open %s", path);
                        (void)close(fd);
                        goto out;
                }
                if (S_ISLNK(st.st_mode) && !(last && (flags & O_NOFOLLOW))) {
                        _cleanup_free_ char *target = read_link_fd(fd);
                        int e = errno;
                        (void)close(fd);
                        if (!target) {
                                r = error_set(err, e, "open %s: readlink", path);
                                goto out;
                        }
                        if ((resolve & FS_RESOLVE_NO_SYMLINKS) || ++links > MAX_SYMLINKS) {
                                r = error_set(err, ELOOP, "open %s", path);
                                goto out;
                        }
                        if (target[0] == '/') {
                                if (resolve & FS_RESOLVE_BENEATH) {
                                        r = error_set(err, EXDEV, "open %s: symlink escapes the directory", path);
                                        goto out;
                                }
                                walk_pop_to(&w, 1);
                        }
                        char *ntodo = xasprintf("%s%s%s", target, *rest || trailing_slash ? "/" : "", rest);
                        free(todo);
                        todo = ntodo;
                        p = todo;
                        continue;
                }
                if (last) {
                        if (S_ISLNK(st.st_mode) && !(flags & O_PATH)) {
                                (void)close(fd);
                                r = error_set(err, ELOOP, "open %s", path);
                                goto out;
                        }
                        r = fd;
                        goto check_xdev;
                }
                if (!S_ISDIR(st.st_mode)) {
                        (void)close(fd);
                        r = error_set(err, ENOTDIR, "open %s", path);
                        goto out;
                }
                if ((resolve & FS_RESOLVE_NO_XDEV) && st.st_dev != rootst.st_dev) {
                        (void)close(fd);
                        r = error_set(err, EXDEV, "open %s: crosses a mount", path);
                        goto out;
                }
                walk_push(&w, fd);
                p = rest;
        }
check_xdev:
        if (resolve & FS_RESOLVE_NO_XDEV) {
                struct stat st;
                if (fstat(r, &st) == 0 && st.st_dev != rootst.st_dev) {
                        (void)close(r);
                        r = error_set(err, EXDEV, "open %s: crosses a mount", path);
                }
        }
out:
        walk_done(&w);
        return r;
}

int fs_open_resolve(int dirfd, const char *path, int flags, mode_t mode, unsigned resolve, struct error **err)
{
        struct open_how how = {
                .flags = (uint64_t)(flags | O_CLOEXEC),
                .mode = (flags & (O_CREAT | __O_TMPFILE)) ? mode : 0,
                .resolve = resolve,
        };
        for (int i = 0; i < OPENAT2_EAGAIN_RETRIES; i++) {
                int fd = sys_openat2(dirfd, path, &how);
                if (fd >= 0)
                        return fd;
                if (errno == ENOSYS)
                        return fs_open_resolve_fallback(dirfd, path, flags, mode, resolve, err);
                /* EAGAIN: a concurrent rename raced with ".." resolution; the kernel asks us to retry. */
                if (errno != EAGAIN)
                        return error_set(err, errno, "open %s", path);
        }
        return error_set(err, EAGAIN, "open %s", path);
}

/* ---- mkdir -p ---- */

int fs_mkdir_p_open(int dirfd, const char *path, mode_t mode, int *ret_fd, struct error **err)
{
        _cleanup_free_ char *clean = fs_path_clean(path);
        _cleanup_close_ int cur = -1;
        bool absolute = clean[0] == '/';

        if (!absolute && (strcmp(clean, "..") == 0 || strncmp(clean, "../", 3) == 0))
                return error_set(err, EINVAL, "mkdir %s: path escapes the directory", path);
        cur = absolute ? open("/", O_PATH | O_DIRECTORY | O_CLOEXEC)
                       : openat(dirfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (cur < 0)
                return error_set(err, errno, "mkdir %s", path);
        char *save = NULL;
        for (char *comp = strtok_r(clean, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
                if (strcmp(comp, ".") == 0)
                        continue;
                if (mkdirat(cur, comp, mode) < 0 && errno != EEXIST)
                        return error_set(err, errno, "mkdir %s", path);
                int fd = openat(cur, comp, O_PATH | O_DIRECTORY | O_CLOEXEC | (absolute ? 0 : O_NOFOLLOW));
                if (fd < 0) {
                        int e = errno == ELOOP ? ENOTDIR : errno;
                        return error_set(err, e, "mkdir %s", path);
                }
                (void)close(cur);
                cur = fd;
        }
        if (ret_fd) {
                int fd = openat(cur, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0)
                        return error_set(err, errno, "open %s", path);
                *ret_fd = fd;
        }
        return 0;
}

int fs_mkdir_p(int dirfd, const char *path, mode_t mode, struct error **err)
{
        return fs_mkdir_p_open(dirfd, path, mode, NULL, err);
}

/* ---- whole-file I/O ---- */

int fs_write_all(int fd, const void *data, size_t len)
{
        const char *p = data;
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return -EIO;
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

int fs_write_file_atomic(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
                         struct error **err)
{
        _cleanup_free_ char *dir = NULL, *base = NULL, *tmp = NULL;
        _cleanup_close_ int dfd = -1, fd = -1;
        const char *slash = strrchr(name, '/');
        int r;

        if (slash) {
                dir = slash == name ? xstrdup("/") : xstrndup(name, (size_t)(slash - name));
                base = xstrdup(slash + 1);
        } else {
                dir = xstrdup(".");
                base = xstrdup(name);
        }
        if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
                return error_set(err, EINVAL, "write %s: not a file name", name);
        dfd = openat(dirfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return error_set(err, errno, "write %s", name);
        for (int i = 0; i < 100; i++) {
                free(tmp);
                tmp = xasprintf(".%s.tmp-%d-%llx", base, (int)getpid(),
                                (unsigned long long)(time_monotonic_ns() + (uint64_t)i * 7919));
                fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (fd >= 0 || errno != EEXIST)
                        break;
        }
        if (fd < 0)
                return error_set(err, errno, "write %s: create temp file", name);
        r = fs_write_all(fd, data, len);
        if (r < 0) {
                error_set(err, -r, "write %s", name);
                goto fail;
        }
        if (fchmod(fd, mode) < 0 || fsync(fd) < 0) {
                r = error_set(err, errno, "write %s", name);
                goto fail;
        }
        r = close(TAKE_FD(fd));
        if (r < 0) {
                r = error_set(err, errno, "write %s: close", name);
                goto fail;
        }
        if (renameat(dfd, tmp, dfd, base) < 0) {
                r = error_set(err, errno, "write %s: rename", name);
                goto fail;
        }
        /* The rename is durable only once the directory itself is synced. */
        if (fsync(dfd) < 0)
                return error_set(err, errno, "write %s: sync directory", name);
        return 0;
fail:
        (void)unlinkat(dfd, tmp, 0);
        return r;
}

int fs_read_fd(int fd, size_t max, char **ret_data, size_t *ret_len, struct error **err)
{
        struct stat st;
        size_t cap, len = 0;
        if (fstat(fd, &st) < 0)
                return error_set(err, errno, "read");
        if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > max)
                return error_set(err, EFBIG, "read: file is larger than %zu bytes", max);
        cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 4096;
        if (cap > max + 1)
                cap = max + 1;
        if (cap < 64)
                cap = 64;
        _cleanup_free_ char *buf = xmalloc(cap + 1);
        for (;;) {
                if (len == cap) {
                        if (cap > max)
                                return error_set(err, EFBIG, "read: file is larger than %zu bytes", max);
                        cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
                        buf = xrealloc(buf, cap + 1);
                }
                ssize_t n = read(fd, buf + len, cap - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return error_set(err, errno, "read");
                }
                if (n == 0)
                        break;
                len += (size_t)n;
                if (len > max)
                        return error_set(err, EFBIG, "read: file is larger than %zu bytes", max);
        }
        buf[len] = '\0';
        if (ret_len)
                *ret_len = len;
        *ret_data = TAKE_PTR(buf);
        return 0;
}

int fs_read_file(int dirfd, const char *name, size_t max, char **ret_data, size_t *ret_len, struct error **err)
{
        _cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return error_set(err, errno, "open %s", name);
        int r = fs_read_fd(fd, max, ret_data, ret_len, err);
        if (r < 0)
                return error_wrap(err, "%s", name);
        return 0;
}

/* ---- rm -rf ---- */

int fs_is_mountpoint(int dirfd, const char *name)
{
        struct statx sx;
        if (statx(dirfd, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | (*name ? 0 : AT_EMPTY_PATH),
                  STATX_BASIC_STATS, &sx) < 0)
                return -errno;
        if (sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT)
                return !!(sx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
        /* Kernels before 5.8: a different device than the parent means a mount (bind mounts of the same
         * filesystem are missed, which only makes rm_rf fail later with EBUSY instead of skipping). */
        struct stat st, parent;
        _cleanup_free_ char *up = xasprintf("%s%s..", name, *name ? "/" : "");
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW | (*name ? 0 : AT_EMPTY_PATH)) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode))
                return 0;
        if (fstatat(dirfd, up, &parent, 0) < 0)
                return -errno;
        return st.st_dev != parent.st_dev || st.st_ino == parent.st_ino;
}

/* Deeper trees than this are refused (-ELOOP) rather than risking the stack: a container can build any depth. */
#define RM_MAX_DEPTH 4096

static int rm_children(int fd, dev_t dev, const char *what, unsigned depth, struct error **err);

static int rm_entry(int dfd, const char *name, dev_t dev, const char *what, unsigned depth, struct error **err)
{
        /* Most entries are not directories: try the unlink first and look closer only when it says so. */
        if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
                return 0;
        if (errno != EISDIR && errno != EPERM)
                return error_set(err, errno, "remove %s/%s", what, name);
        struct stat st;
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : error_set(err, errno, "remove %s/%s", what, name);
        if (!S_ISDIR(st.st_mode)) /* EPERM for a file: immutable or similar */
                return error_set(err, EPERM, "remove %s/%s", what, name);
        if (depth >= RM_MAX_DEPTH)
                return error_set(err, ELOOP, "remove %s/%s: deeper than %d levels", what, name, RM_MAX_DEPTH);
        if (st.st_dev != dev || fs_is_mountpoint(dfd, name) > 0)
                return error_set(err, EBUSY, "remove %s/%s: is a mount point", what, name);
        _cleanup_close_ int sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0)
                return errno == ENOENT ? 0 : error_set(err, errno, "remove %s/%s", what, name);
        _cleanup_free_ char *subwhat = xasprintf("%s/%s", what, name);
        int r = rm_children(sub, dev, subwhat, depth + 1, err);
        if (r < 0)
                return r;
        if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
                return error_set(err, errno, "remove %s/%s", what, name);
        return 0;
}

static int rm_children(int fd, dev_t dev, const char *what, unsigned depth, struct error **err)
{
        int dupfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dupfd < 0)
                return error_set(err, errno, "remove %s", what);
        _cleanup_closedir_ DIR *d = fdopendir(dupfd);
        if (!d) {
                (void)close(dupfd);
                return error_set(err, errno, "remove %s", what);
        }
        int ret = 0;
        for (;;) {
                errno = 0;
                struct dirent *de = readdir(d);
                if (!de) {
                        if (errno != 0 && ret == 0)
                                ret = error_set(err, errno, "remove %s", what);
                        break;
                }
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                int r = rm_entry(dirfd(d), de->d_name, dev, what, depth, err);
                if (r < 0 && ret == 0)
                        ret = r;
        }
        return ret;
}

int fs_rm_rf_children(int fd, struct error **err)
{
        struct stat st;
        if (fstat(fd, &st) < 0)
                return error_set(err, errno, "remove");
        return rm_children(fd, st.st_dev, ".", 0, err);
}

int fs_rm_rf_at(int dirfd, const char *name, struct error **err)
{
        struct stat parent;
        if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
                return 0;
        if (errno != EISDIR && errno != EPERM)
                return error_set(err, errno, "remove %s", name);
        if (fstatat(dirfd, name, &parent, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : error_set(err, errno, "remove %s", name);
        if (!S_ISDIR(parent.st_mode))
                return error_set(err, EPERM, "remove %s", name);
        _cleanup_close_ int sub = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0)
                return errno == ENOENT ? 0 : error_set(err, errno, "remove %s", name);
        int r = rm_children(sub, parent.st_dev, name, 1, err);
        if (r < 0)
                return r;
        if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
                return error_set(err, errno, "remove %s", name);
        return 0;
}

/* ---- path strings ---- */

char *fs_path_join(const char *a, const char *b)
{
        if (!a || !*a)
                return xstrdup(b ? b : "");
        if (!b || !*b)
                return xstrdup(a);
        size_t la = strlen(a);
        while (la > 1 && a[la - 1] == '/')
                la--;
        while (*b == '/')
                b++;
        if (la == 1 && a[0] == '/')
                return xasprintf("/%s", b);
        return xasprintf("%.*s/%s", (int)la, a, b);
}

char *fs_path_clean(const char *p)
{
        /* Go's path.Clean, rule for rule. */
        size_t n = strlen(p);
        if (n == 0)
                return xstrdup(".");
        bool rooted = p[0] == '/';
        char *out = xmalloc(n + 2);
        size_t w = 0, r = 0, dotdot = 0;
        if (rooted) {
                out[w++] = '/';
                r = 1;
                dotdot = 1;
        }
        while (r < n) {
                if (p[r] == '/')
                        r++;
                else if (p[r] == '.' && (r + 1 == n || p[r + 1] == '/'))
                        r++;
                else if (p[r] == '.' && p[r + 1] == '.' && (r + 2 == n || p[r + 2] == '/')) {
                        r += 2;
                        if (w > dotdot) {
                                w--;
                                while (w > dotdot && out[w] != '/')
                                        w--;
                        } else if (!rooted) {
                                if (w > 0)
                                        out[w++] = '/';
                                out[w++] = '.';
                                out[w++] = '.';
                                dotdot = w;
                        }
                } else {
                        if ((rooted && w != 1) || (!rooted && w != 0))
                                out[w++] = '/';
                        for (; r < n && p[r] != '/'; r++)
                                out[w++] = p[r];
                }
        }
        if (w == 0)
                out[w++] = '.';
        out[w] = '\0';
        return out;
}

bool fs_path_is_beneath(const char *p)
{
        _cleanup_free_ char *c = fs_path_clean(p);
        if (c[0] == '/')
                return false;
        return !(strcmp(c, "..") == 0 || strncmp(c, "../", 3) == 0);
}

char *fs_path_base(const char *p)
{
        size_t n = strlen(p);
        if (n == 0)
                return xstrdup(".");
        while (n > 0 && p[n - 1] == '/')
                n--;
        if (n == 0)
                return xstrdup("/");
        size_t s = n;
        while (s > 0 && p[s - 1] != '/')
                s--;
        return xstrndup(p + s, n - s);
}

char *fs_path_dir(const char *p)
{
        const char *slash = strrchr(p, '/');
        _cleanup_free_ char *d = slash ? xstrndup(p, (size_t)(slash - p + 1)) : xstrdup("");
        return fs_path_clean(d);
}

/* Layer apply; see apply.h for the contract and the containment rules. */
#include "image/apply.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "image/tar.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/fs.h"

#define READ_BUF_SIZE (1u << 20)
#define WHITEOUT_PREFIX ".wh."
#define WHITEOUT_OPAQUE ".wh..wh..opq"
#define OVERLAY_XATTR_PREFIX "trusted.overlay."

static atomic_bool force_fallback;

void image_apply_force_fallback(bool on)
{
        atomic_store(&force_fallback, on);
}

/* --- a small string set (native opaque whiteouts need "created by this layer") --- */

struct strset {
        char **slots;
        size_t cap; /* power of two */
        size_t len;
};

static uint64_t str_hash(const char *s)
{
        uint64_t h = 1469598103934665603ull;
        for (; *s; s++)
                h = (h ^ (uint8_t)*s) * 1099511628211ull;
        return h;
}

static bool strset_contains(const struct strset *set, const char *s)
{
        if (set->cap == 0)
                return false;
        for (size_t i = str_hash(s) & (set->cap - 1);; i = (i + 1) & (set->cap - 1)) {
                if (!set->slots[i])
                        return false;
                if (strcmp(set->slots[i], s) == 0)
                        return true;
        }
}

static void strset_add(struct strset *set, const char *s)
{
        if (strset_contains(set, s))
                return;
        if ((set->len + 1) * 2 > set->cap) {
                size_t ncap = set->cap ? set->cap * 2 : 256;
                char **n = xcalloc(ncap, sizeof(char *));
                for (size_t i = 0; i < set->cap; i++) {
                        if (!set->slots[i])
                                continue;
                        size_t j = str_hash(set->slots[i]) & (ncap - 1);
                        while (n[j])
                                j = (j + 1) & (ncap - 1);
                        n[j] = set->slots[i];
                }
                free(set->slots);
                set->slots = n;
                set->cap = ncap;
        }
        size_t i = str_hash(s) & (set->cap - 1);
        while (set->slots[i])
                i = (i + 1) & (set->cap - 1);
        set->slots[i] = xstrdup(s);
        set->len++;
}

static void strset_clear(struct strset *set)
{
        for (size_t i = 0; i < set->cap; i++)
                free(set->slots[i]);
        free(set->slots);
        *set = (struct strset){0};
}

/* --- state --- */

struct dir_times {
        char *path; /* cleaned, relative to the root; "" is the root */
        struct timespec ts[2];
};

struct applier {
        int root_fd;
        const struct image_apply_options *o;
        bool chown;
        struct image_layer_stream *stream; /* borrowed */
        struct tar_reader *tar;
        struct error *read_err; /* error from the stream, reported when the tar reader passes its code on */
        int read_r;
        /* one-entry cache of the last resolved parent directory */
        char *cached_parent;
        int cached_fd;
        struct dir_times *dirs;
        size_t n_dirs, cap_dirs;
        struct strset created; /* native mode only */
        /* Skipping a chown/chmod that would change nothing (see create_perm): */
        bool fast_meta;        /* allowed for this apply */
        mode_t umask;
        uid_t euid;
        gid_t egid;
        bool cached_sgid;      /* the cached parent is setgid: new entries take cached_gid */
        gid_t cached_gid;
};

static void cache_drop(struct applier *a)
{
        free(a->cached_parent);
        a->cached_parent = NULL;
        if (a->cached_fd >= 0)
                (void)close(a->cached_fd);
        a->cached_fd = -1;
}

/* An entry at path may replace a directory that the cached parent lies in: forget the cache then. */
static void cache_invalidate_under(struct applier *a, const char *path)
{
        size_t n = strlen(path);
        if (!a->cached_parent)
                return;
        if (strncmp(a->cached_parent, path, n) == 0 && (a->cached_parent[n] == '\0' || a->cached_parent[n] == '/'))
                cache_drop(a);
}

static int take_read_err(struct applier *a, struct error **err);

static ssize_t read_cb(void *data, const void **buf)
{
        struct applier *a = data;
        ssize_t n = image_layer_stream_next(a->stream, buf, &a->read_err);
        if (n < 0)
                a->read_r = (int)n;
        return n;
}

/* A failure of the tar reader: the stream's own error when the stream failed, else the reader's. */
static int tar_failed(struct applier *a, int r, struct error **err)
{
        if (a->read_r < 0)
                return take_read_err(a, err);
        return r;
}

/* The inode type an entry creates (hard links: that of their target, decided when linking). */
static mode_t entry_type(const struct tar_entry *e)
{
        switch (e->type) {
        case TAR_DIR:
                return S_IFDIR;
        case TAR_SYMLINK:
                return S_IFLNK;
        case TAR_CHR:
                return S_IFCHR;
        case TAR_BLK:
                return S_IFBLK;
        case TAR_FIFO:
                return S_IFIFO;
        case TAR_REG:
        case TAR_HARDLINK:
                break;
        }
        return S_IFREG;
}

static const char *entry_hardlink(const struct tar_entry *e)
{
        return e->type == TAR_HARDLINK ? e->linkname : NULL;
}

static void entry_times(const struct tar_entry *e, struct timespec ts[2])
{
        ts[1].tv_sec = e->mtime_sec;
        ts[1].tv_nsec = e->mtime_nsec;
        if (e->atime_set) {
                ts[0].tv_sec = e->atime_sec;
                ts[0].tv_nsec = e->atime_nsec;
        } else {
                ts[0] = ts[1];
        }
}

/* Moves the error of a failed stream read (decompression, size bound) to the caller. */
static int take_read_err(struct applier *a, struct error **err)
{
        if (err && !*err && a->read_err)
                *err = TAKE_PTR(a->read_err);
        return a->read_r;
}

/* --- paths --- */

/* Cleans a tar path as filepath.Clean("/" + name) would, minus the leading slash: "." and empty components
 * are dropped and ".." never climbs above the root. Returns a new string ("" for the root). */
static char *clean_path(const char *name)
{
        size_t n = strlen(name);
        char *out = xmalloc(n + 1);
        size_t o = 0;
        const char *p = name;

        while (*p) {
                while (*p == '/')
                        p++;
                if (!*p)
                        break;
                const char *e = strchrnul(p, '/');
                size_t len = (size_t)(e - p);
                if (len == 1 && p[0] == '.') {
                        /* skip */
                } else if (len == 2 && p[0] == '.' && p[1] == '.') {
                        while (o > 0 && out[o - 1] != '/')
                                o--;
                        if (o > 0)
                                o--; /* the separator */
                } else {
                        if (o > 0)
                                out[o++] = '/';
                        memcpy(out + o, p, len);
                        o += len;
                }
                p = e;
        }
        out[o] = '\0';
        return out;
}

static int sys_openat2(int dirfd, const char *path, uint64_t flags, uint64_t resolve)
{
        struct open_how how = {.flags = flags, .resolve = resolve};
        return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

/* Opens dir (cleaned, relative) beneath root as an O_PATH directory fd. */
static int open_beneath(int root_fd, const char *dir, struct error **err)
{
        int fd;

        if (dir[0] == '\0')
                dir = ".";
        if (!atomic_load(&force_fallback)) {
                fd = sys_openat2(root_fd, dir, O_PATH | O_DIRECTORY | O_CLOEXEC,
                                 RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
                if (fd >= 0)
                        return fd;
                if (errno != ENOSYS && errno != EPERM)
                        return -errno;
                /* EPERM: seccomp filters that deny unknown syscalls; use the fallback. */
        }
        /* Fallback: a component walk refusing symlinks anywhere in the parent path. */
        _cleanup_free_ char *copy = xstrdup(dir);
        _cleanup_close_ int cur = fcntl(root_fd, F_DUPFD_CLOEXEC, 3);
        char *save = NULL;

        if (cur < 0)
                return error_set(err, errno, "dup root fd");
        for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
                if (strcmp(c, ".") == 0)
                        continue;
                int next = openat(cur, c, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (next < 0) {
                        int e = errno;
                        struct stat st;
                        /* O_PATH|O_NOFOLLOW|O_DIRECTORY on a symlink reports ENOTDIR: say ELOOP. */
                        if (e == ENOTDIR && fstatat(cur, c, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
                                e = ELOOP;
                        return -e;
                }
                (void)close(cur);
                cur = next;
        }
        return TAKE_FD(cur);
}

/* Splits a cleaned non-root path into parent ("" for top level) and the final component (borrowed from
 * path). */
static char *split_parent(const char *path, const char **ret_name)
{
        const char *slash = strrchr(path, '/');
        if (!slash) {
                *ret_name = path;
                return xstrdup("");
        }
        *ret_name = slash + 1;
        return xstrndup(path, (size_t)(slash - path));
}

/* A directory created implicitly in an overlay upper dir takes the attributes of the same directory in the
 * nearest lower layer (resolved inside that layer); a non-directory there means "replaced": keep 0755. */
static void inherit_from_parents(struct applier *a, int upfd, const char *name, const char *path)
{
        for (const char *const *p = a->o->parents; p && *p; p++) {
                _cleanup_close_ int lfd = open(*p, O_PATH | O_DIRECTORY | O_CLOEXEC);
                struct stat st;
                if (lfd < 0)
                        continue;
                _cleanup_close_ int fd = atomic_load(&force_fallback) ? -1
                        : sys_openat2(lfd, path, O_PATH | O_NOFOLLOW | O_CLOEXEC, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
                if (fd < 0)
                        continue;
                if (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode))
                        return;
                /* best effort, like containerd's copyDirInfo: the directory exists either way */
                if (a->chown && fchownat(upfd, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
                        return;
                if (fchmodat(upfd, name, st.st_mode & 07777, 0) < 0)
                        return;
                struct timespec ts[2] = {st.st_atim, st.st_mtim};
                (void)utimensat(upfd, name, ts, AT_SYMLINK_NOFOLLOW);
                return;
        }
}

/* Creates every missing directory of dir (cleaned) beneath the root, 0755 as containerd's MkdirAll. */
static int mkdir_parents(struct applier *a, const char *dir, struct error **err)
{
        _cleanup_free_ char *prefix = xstrdup(dir);
        size_t n = strlen(dir);

        for (size_t i = 0; i <= n; i++) {
                if (dir[i] != '/' && dir[i] != '\0')
                        continue;
                prefix[i] = '\0';
                _cleanup_close_ int fd = open_beneath(a->root_fd, prefix, err);
                if (fd == -ENOENT) {
                        const char *name;
                        _cleanup_free_ char *up = split_parent(prefix, &name);
                        _cleanup_close_ int upfd = open_beneath(a->root_fd, up, err);
                        if (upfd < 0)
                                return error_set(err, -upfd, "open parent of \"%s\"", prefix);
                        if (mkdirat(upfd, name, 0755) < 0 && errno != EEXIST)
                                return error_set(err, errno, "mkdir \"%s\"", prefix);
                        inherit_from_parents(a, upfd, name, prefix);
                        if (!a->o->overlay)
                                strset_add(&a->created, prefix);
                } else if (fd < 0) {
                        return error_set(err, -fd, "open \"%s\"", prefix);
                }
                prefix[i] = dir[i];
        }
        return 0;
}

/* Returns a borrowed fd for the parent directory (cached). */
static int get_parent(struct applier *a, const char *parent, struct error **err)
{
        int fd;

        if (a->cached_parent && strcmp(a->cached_parent, parent) == 0)
                return a->cached_fd;
        cache_drop(a);
        fd = open_beneath(a->root_fd, parent, err);
        if (fd == -ENOENT) {
                int r = mkdir_parents(a, parent, err);
                if (r < 0)
                        return r;
                fd = open_beneath(a->root_fd, parent, err);
        }
        if (fd < 0)
                return error_set(err, -fd, "open directory \"%s\"", parent);
        a->cached_sgid = true; /* unknown: never assume an owner */
        if (a->fast_meta) {
                struct stat st;
                if (fstat(fd, &st) == 0) {
                        a->cached_sgid = (st.st_mode & S_ISGID) != 0;
                        a->cached_gid = st.st_gid;
                }
        }
        a->cached_parent = xstrdup(parent);
        a->cached_fd = fd;
        return fd;
}

/* Removes name in dirfd, recursively for directories, never following symlinks or crossing mounts. */
static int rm_rf_at(int dfd, const char *name)
{
        return fs_rm_rf_at(dfd, name, NULL);
}

/* Native opaque directory: remove every child of dir (cleaned path) not created by this layer. */
static int opaque_clear(struct applier *a, int dfd, const char *dir)
{
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
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                _cleanup_free_ char *p = dir[0] ? xasprintf("%s/%s", dir, de->d_name) : xstrdup(de->d_name);
                if (strset_contains(&a->created, p))
                        continue;
                r = rm_rf_at(dirfd(d), de->d_name);
                if (r < 0)
                        break;
        }
        closedir(d);
        return r;
}

static int xattr_path(int parent_fd, const char *name, char **ret)
{
        *ret = xasprintf("/proc/self/fd/%d/%s", parent_fd, name);
        return 0;
}

static int apply_xattrs(struct applier *a, const struct tar_entry *e, int parent_fd, const char *name, int fd,
                        const char *path, struct error **err)
{
        _cleanup_free_ char *proc = NULL;

        for (size_t i = 0; i < e->nxattrs; i++) {
                const char *key = e->xattrs[i].name;
                const void *val = e->xattrs[i].value;
                size_t len = e->xattrs[i].len;
                int r;
                /* Overlay's own xattrs (redirect, metacopy, opaque) come only from our whiteout
                 * conversion, never from layer content. */
                if (strncmp(key, OVERLAY_XATTR_PREFIX, strlen(OVERLAY_XATTR_PREFIX)) == 0)
                        continue;
                /* a default ACL replaces the umask for what is created below: trust no creation mode */
                if (strcmp(key, "system.posix_acl_default") == 0)
                        a->fast_meta = false;
                if (fd >= 0) {
                        r = fsetxattr(fd, key, val, len, 0);
                } else {
                        if (!proc)
                                xattr_path(parent_fd, name, &proc);
                        r = lsetxattr(proc, key, val, len, 0);
                }
                if (r < 0) {
                        /* containerd skips security.* it may not set (e.g. SELinux labels without a
                         * policy), and filesystems without xattr support. */
                        if (errno == ENOTSUP || (errno == EPERM && strncmp(key, "security.", 9) == 0))
                                continue;
                        if (errno == EPERM && !a->chown)
                                continue;
                        return error_set(err, errno, "setxattr %s on \"%s\"", key, path);
                }
        }
        return 0;
}

static int write_data(struct applier *a, int fd, int64_t size, const char *path, struct error **err)
{
        const void *buf;
        ssize_t n;
        int64_t off = 0;

        while ((n = tar_reader_data(a->tar, &buf, err)) > 0) {
                const uint8_t *p = buf;
                size_t len = (size_t)n;
                while (len > 0) {
                        ssize_t w = write(fd, p, len);
                        if (w < 0) {
                                if (errno == EINTR)
                                        continue;
                                return error_set(err, errno, "write \"%s\"", path);
                        }
                        p += w;
                        len -= (size_t)w;
                        off += w;
                }
        }
        if (n < 0)
                return tar_failed(a, (int)n, err);
        if (off != size)
                return error_set(err, EIO, "short data for \"%s\"", path);
        return 0;
}

static void record_dir(struct applier *a, const char *path, const struct tar_entry *e)
{
        if (a->n_dirs == a->cap_dirs) {
                a->cap_dirs = a->cap_dirs ? a->cap_dirs * 2 : 64;
                a->dirs = xreallocarray(a->dirs, a->cap_dirs, sizeof(*a->dirs));
        }
        struct dir_times *d = &a->dirs[a->n_dirs++];
        d->path = xstrdup(path);
        entry_times(e, d->ts);
}

#define NOT_FRESH ((mode_t)-1)

/* The permission bits to create an inode of an entry with perm: perm itself when the umask keeps it and no
 * special bit is involved (apply_meta then skips the chmod), else fallback (chmod'ed later). */
static mode_t create_perm(const struct applier *a, mode_t perm, mode_t fallback)
{
        if (a->fast_meta && !a->cached_sgid && (perm & ~(mode_t)0777) == 0 && (perm & a->umask) == 0)
                return perm;
        return fallback;
}

static mode_t process_umask = 0777;
static pthread_once_t process_umask_once = PTHREAD_ONCE_INIT;

static void process_umask_init(void)
{
        _cleanup_fclose_ FILE *f = fopen("/proc/self/status", "re");
        char line[256];
        unsigned m;
        while (f && fgets(line, sizeof(line), f))
                if (sscanf(line, "Umask: %o", &m) == 1) {
                        process_umask = (mode_t)(m & 0777);
                        break;
                }
}

/* The process umask without changing it (umask(2) sets it, racing other threads' creations): from
 * /proc/self/status, read once; 0777 (never trust a creation mode) when unknown. krilld does not change
 * its umask after start. */
static mode_t read_umask(void)
{
        pthread_once(&process_umask_once, process_umask_init);
        return process_umask;
}

/* Owner, xattrs, mode (after chown, which clears setuid/setgid), times. fd is the open regular file or -1.
 * fresh: the permission bits the inode was just created with by this entry (it then has our fsuid and
 * the parent's group rules), or NOT_FRESH; a chown or chmod that would change nothing is skipped. */
static int apply_meta(struct applier *a, const struct tar_entry *e, int parent_fd, const char *name, int fd,
                      const char *path, bool is_dir, mode_t fresh, struct error **err)
{
        mode_t type = entry_type(e);
        mode_t perm = e->mode & 07777;
        int64_t uid = e->uid, gid = e->gid;
        int r;

        if (uid < 0 || uid > UINT32_MAX - 1 || gid < 0 || gid > UINT32_MAX - 1)
                return error_set(err, EINVAL, "invalid owner %lld:%lld for \"%s\"", (long long)uid, (long long)gid,
                                 path);
        if (fresh != NOT_FRESH && (!a->fast_meta || a->cached_sgid))
                fresh = NOT_FRESH;
        if (a->chown && fresh != NOT_FRESH && (uid_t)uid == a->euid && (gid_t)gid == a->egid) {
                /* already owned so */
        } else if (a->chown) {
                r = fd >= 0 ? fchown(fd, (uid_t)uid, (gid_t)gid)
                            : fchownat(parent_fd, name, (uid_t)uid, (gid_t)gid, AT_SYMLINK_NOFOLLOW);
                if (r < 0)
                        return error_set(err, errno, "chown \"%s\"", path);
        }
        r = apply_xattrs(a, e, parent_fd, name, fd, path, err);
        if (r < 0)
                return r;
        if (type != S_IFLNK && fresh != perm) {
                r = fd >= 0 ? fchmod(fd, perm) : fchmodat(parent_fd, name, perm, 0);
                if (r < 0)
                        return error_set(err, errno, "chmod \"%s\"", path);
        }
        if (is_dir) {
                record_dir(a, path, e);
                return 0;
        }
        struct timespec ts[2];
        entry_times(e, ts);
        if (ts[1].tv_nsec < 0 || ts[1].tv_nsec > 999999999 || ts[0].tv_nsec < 0 || ts[0].tv_nsec > 999999999)
                return 0;
        r = fd >= 0 ? futimens(fd, ts) : utimensat(parent_fd, name, ts, AT_SYMLINK_NOFOLLOW);
        if (r < 0 && errno != EINVAL && errno != EOVERFLOW)
                return error_set(err, errno, "set times of \"%s\"", path);
        return 0;
}

static int do_whiteout(struct applier *a, int parent_fd, const char *parent, const char *name,
                       const struct tar_entry *e, struct error **err)
{
        const char *target = name + strlen(WHITEOUT_PREFIX);
        int r;

        if (strcmp(name, WHITEOUT_OPAQUE) == 0) {
                if (a->o->overlay) {
                        _cleanup_free_ char *proc = xasprintf("/proc/self/fd/%d", parent_fd);
                        if (setxattr(proc, "trusted.overlay.opaque", "y", 1, 0) < 0)
                                return error_set(err, errno, "set opaque xattr on \"%s\"", parent);
                        return 0;
                }
                r = opaque_clear(a, parent_fd, parent);
                if (r < 0)
                        return error_set(err, -r, "clear opaque directory \"%s\"", parent);
                return 0;
        }
        if (target[0] == '\0' || strcmp(target, ".") == 0 || strcmp(target, "..") == 0)
                return error_set(err, EINVAL, "invalid whiteout \"%s\"", name);
        _cleanup_free_ char *tpath = parent[0] ? xasprintf("%s/%s", parent, target) : xstrdup(target);
        cache_invalidate_under(a, tpath);
        r = rm_rf_at(parent_fd, target);
        if (r < 0)
                return error_set(err, -r, "remove whited-out \"%s\"", tpath);
        if (!a->o->overlay)
                return 0;
        if (mknodat(parent_fd, target, S_IFCHR | 0, makedev(0, 0)) < 0)
                return error_set(err, errno, "create whiteout \"%s\"", tpath);
        if (a->chown) {
                int64_t uid = e->uid, gid = e->gid;
                if (uid >= 0 && uid < UINT32_MAX && gid >= 0 && gid < UINT32_MAX &&
                    fchownat(parent_fd, target, (uid_t)uid, (gid_t)gid, AT_SYMLINK_NOFOLLOW) < 0)
                        return error_set(err, errno, "chown whiteout \"%s\"", tpath);
        }
        return 0;
}

static int apply_root_entry(struct applier *a, const struct tar_entry *e, struct error **err)
{
        if (e->type != TAR_DIR)
                return error_set(err, EINVAL, "invalid tar entry: root replaced by a non-directory");
        /* The root's owner and mode come from the snapshot, its times from the layer (as containerd). */
        record_dir(a, "", e);
        return 0;
}

/* --- hard links to files of lower layers (overlay upper dirs) --- */

/* Hard links whose target lives in a lower layer cannot be made in an upper dir: the target is copied up
 * first (as overlayfs itself would on a write), then linked, so the merged view shows both names on one
 * inode with the lower file's content and attributes. The target is looked up the way overlayfs merges:
 * the upper dir first, then the lower layers nearest first; a whiteout, a non-directory or an opaque
 * directory on the way hides everything below. Lookups walk one component at a time with O_NOFOLLOW
 * beneath each layer root: a symlink anywhere in the target's path ends the search (ENOENT). */

#define COPY_BUF_SIZE (1u << 20)

static bool is_whiteout(const struct stat *st)
{
        return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

static bool dir_is_opaque(int dfd)
{
        char v[2] = {0};
        return fgetxattr(dfd, "trusted.overlay.opaque", v, sizeof(v)) == 1 && v[0] == 'y';
}

enum { LOWER_FOUND = 1, LOWER_IN_UPPER = 2 };

/* Looks tpath (cleaned, non-root) up in one layer. Returns LOWER_FOUND with *ret_dfd (its parent directory)
 * and *st, 0 when the layer does not have it (*stop set when an opaque directory hides the layers below),
 * or -errno: -ENOENT hidden by a whiteout or a non-directory, -EPERM a directory. */
static int lower_lookup_one(int layer_fd, char *const *comps, size_t n, int *ret_dfd, struct stat *st, bool *stop)
{
        _cleanup_close_ int cur = openat(layer_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (cur < 0)
                return -errno;
        for (size_t i = 0; i < n; i++) {
                if (fstatat(cur, comps[i], st, AT_SYMLINK_NOFOLLOW) < 0)
                        return errno == ENOENT ? 0 : -errno;
                if (is_whiteout(st))
                        return -ENOENT;
                if (i == n - 1) {
                        if (S_ISDIR(st->st_mode))
                                return -EPERM;
                        *ret_dfd = TAKE_FD(cur);
                        return LOWER_FOUND;
                }
                if (!S_ISDIR(st->st_mode))
                        return -ENOENT;
                int next = openat(cur, comps[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (next < 0)
                        return errno == ENOENT ? 0 : -errno;
                (void)close(cur);
                cur = next;
                if (dir_is_opaque(cur))
                        *stop = true;
        }
        return 0;
}

/* Finds tpath in the upper dir (LOWER_IN_UPPER) or the nearest lower layer that shows it (LOWER_FOUND, with
 * its parent directory fd and stat), else -ENOENT (or -EPERM for a directory). */
static int lower_lookup(struct applier *a, const char *tpath, int *ret_dfd, struct stat *st)
{
        _cleanup_free_ char *copy = xstrdup(tpath);
        _cleanup_free_ char **comps = xcalloc(strlen(tpath) / 2 + 2, sizeof(char *));
        size_t n = 0;
        char *save = NULL;
        bool stop = false;
        int r, dfd = -1;

        for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save))
                comps[n++] = c;
        if (n == 0)
                return -EPERM;
        r = lower_lookup_one(a->root_fd, comps, n, &dfd, st, &stop);
        if (r == LOWER_FOUND) {
                (void)close(dfd);
                return LOWER_IN_UPPER;
        }
        if (r < 0)
                return r;
        for (const char *const *p = a->o->parents; p && *p && !stop; p++) {
                _cleanup_close_ int lfd = open(*p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (lfd < 0)
                        return -errno;
                r = lower_lookup_one(lfd, comps, n, ret_dfd, st, &stop);
                if (r != 0)
                        return r;
        }
        return -ENOENT;
}

static int copy_up_data(int in, int out)
{
        for (;;) {
                ssize_t n = copy_file_range(in, NULL, out, NULL, 1u << 30, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP))
                        break;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return 0;
        }
        /* copy_file_range moved nothing (it fails before the first byte): plain copy from the start */
        _cleanup_free_ uint8_t *buf = xmalloc(COPY_BUF_SIZE);
        for (;;) {
                ssize_t n = read(in, buf, COPY_BUF_SIZE);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return n < 0 ? -errno : 0;
                for (ssize_t off = 0; off < n;) {
                        ssize_t w = write(out, buf + off, (size_t)(n - off));
                        if (w < 0 && errno == EINTR)
                                continue;
                        if (w < 0)
                                return -errno;
                        off += w;
                }
        }
}

/* Copies the xattrs of sdfd/name to ddfd/name (neither followed), except overlay's own. Best effort for
 * what the filesystem or our privileges do not allow, as apply_xattrs. */
static int copy_up_xattrs(struct applier *a, int sdfd, int ddfd, const char *name)
{
        _cleanup_free_ char *sp = xasprintf("/proc/self/fd/%d/%s", sdfd, name);
        _cleanup_free_ char *dp = xasprintf("/proc/self/fd/%d/%s", ddfd, name);
        _cleanup_free_ char *list = NULL, *val = NULL;
        ssize_t n = llistxattr(sp, NULL, 0);
        if (n <= 0)
                return n < 0 && errno != ENOTSUP ? -errno : 0;
        list = xmalloc((size_t)n);
        n = llistxattr(sp, list, (size_t)n);
        if (n < 0)
                return errno == ERANGE ? -EAGAIN : -errno;
        val = xmalloc(XATTR_SIZE_MAX);
        for (char *k = list; k < list + n; k += strlen(k) + 1) {
                if (strncmp(k, OVERLAY_XATTR_PREFIX, strlen(OVERLAY_XATTR_PREFIX)) == 0)
                        continue;
                ssize_t vl = lgetxattr(sp, k, val, XATTR_SIZE_MAX);
                if (vl < 0)
                        continue;
                if (lsetxattr(dp, k, val, (size_t)vl, 0) < 0) {
                        if (errno == ENOTSUP || (errno == EPERM && (strncmp(k, "security.", 9) == 0 || !a->chown)))
                                continue;
                        return -errno;
                }
        }
        return 0;
}

/* Copies the lower entry sdfd/name (stat st) to the same path in the upper dir. */
static int copy_up(struct applier *a, int sdfd, const struct stat *st, const char *tpath, struct error **err)
{
        const char *name;
        _cleanup_free_ char *tparent = split_parent(tpath, &name);
        int r = mkdir_parents(a, tparent, err);
        if (r < 0)
                return r;
        _cleanup_close_ int ufd = open_beneath(a->root_fd, tparent, err);
        if (ufd < 0)
                return error_set(err, -ufd, "open \"%s\" for copy-up", tparent);
        /* O_PATH fds cannot carry *xattr calls by /proc path on every kernel: use a real directory fd */
        _cleanup_close_ int udfd = openat(ufd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (udfd < 0)
                return error_set(err, errno, "open \"%s\" for copy-up", tparent);
        _cleanup_close_ int out = -1;
        switch (st->st_mode & S_IFMT) {
        case S_IFREG: {
                _cleanup_close_ int in = openat(sdfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                if (in < 0)
                        return error_set(err, errno, "open lower \"%s\"", tpath);
                out = openat(udfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (out < 0)
                        return error_set(err, errno, "copy up \"%s\"", tpath);
                r = copy_up_data(in, out);
                if (r < 0)
                        return error_set(err, -r, "copy up \"%s\"", tpath);
                break;
        }
        case S_IFLNK: {
                char target[PATH_MAX];
                ssize_t n = readlinkat(sdfd, name, target, sizeof(target) - 1);
                if (n < 0)
                        return error_set(err, errno, "read lower symlink \"%s\"", tpath);
                target[n] = '\0';
                if (symlinkat(target, udfd, name) < 0)
                        return error_set(err, errno, "copy up \"%s\"", tpath);
                break;
        }
        case S_IFCHR:
        case S_IFBLK:
        case S_IFIFO:
                if (!S_ISFIFO(st->st_mode) && !a->o->allow_devices)
                        return error_set(err, EPERM, "device node \"%s\" not allowed", tpath);
                if (mknodat(udfd, name, (st->st_mode & S_IFMT) | 0600, st->st_rdev) < 0)
                        return error_set(err, errno, "copy up \"%s\"", tpath);
                break;
        default:
                return error_set(err, EINVAL, "cannot hard link to \"%s\": unsupported file type", tpath);
        }
        if (a->chown && fchownat(udfd, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0)
                return error_set(err, errno, "chown \"%s\"", tpath);
        r = copy_up_xattrs(a, sdfd, udfd, name);
        if (r < 0)
                return error_set(err, -r, "copy xattrs of \"%s\"", tpath);
        if (!S_ISLNK(st->st_mode) && fchmodat(udfd, name, st->st_mode & 07777, 0) < 0)
                return error_set(err, errno, "chmod \"%s\"", tpath);
        struct timespec ts[2] = {st->st_atim, st->st_mtim};
        if (utimensat(udfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0 && errno != EINVAL && errno != EOVERFLOW)
                return error_set(err, errno, "set times of \"%s\"", tpath);
        return 0;
}

/* linkat failed with ENOENT in an overlay upper dir: copy the target up from the lower layers. Returns 1
 * when the caller should retry the link, -ENOENT when no layer shows the target, or another -errno. */
static int hardlink_copy_up(struct applier *a, const char *tpath, struct error **err)
{
        struct stat st;
        _cleanup_close_ int dfd = -1;
        if (!a->o->overlay || !a->o->parents || !a->o->parents[0])
                return -ENOENT;
        int r = lower_lookup(a, tpath, &dfd, &st);
        if (r == LOWER_IN_UPPER)
                return 1;
        if (r == -EPERM)
                return error_set(err, EPERM, "hard link to directory \"%s\"", tpath);
        if (r < 0)
                return r;
        r = copy_up(a, dfd, &st, tpath, err);
        return r < 0 ? r : 1;
}

/* Hard link entry path (in pfd as name) to tpath, both cleaned, beneath the root. */
static int link_entry(struct applier *a, int pfd, const char *name, const char *path, const char *tpath,
                      struct error **err)
{
        const char *tname;
        _cleanup_free_ char *tparent = split_parent(tpath, &tname);
        for (int attempt = 0;; attempt++) {
                struct error *e = NULL;
                _cleanup_close_ int tfd = open_beneath(a->root_fd, tparent, &e);
                int r = tfd;
                /* flags 0: a symlink target is linked itself, never followed. */
                if (tfd >= 0)
                        r = linkat(tfd, tname, pfd, name, 0) < 0 ? -errno : 0;
                if (r == 0) {
                        error_free(&e);
                        return 0;
                }
                if (r == -ENOENT && attempt == 0) {
                        error_free(&e);
                        r = hardlink_copy_up(a, tpath, err);
                        if (r == 1)
                                continue;
                        if (r != -ENOENT)
                                return r;
                }
                if (err && !*err && e)
                        *err = TAKE_PTR(e);
                error_free(&e);
                if (tfd < 0)
                        return error_set(err, -r, "hard link \"%s\": target \"%s\"", path, tpath);
                return error_set(err, -r, "hard link \"%s\" to \"%s\"", path, tpath);
        }
}

/* containerd semantics: anything already at name is removed unless a directory meets a directory. Returns 1
 * when an existing directory stays (dir is true and one is there), 0 when the name is free, or -errno. */
static int make_room(struct applier *a, int pfd, const char *name, const char *path, bool dir, struct error **err)
{
        struct stat st;
        if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno == ENOENT)
                        return 0;
                return error_set(err, errno, "stat \"%s\"", path);
        }
        if (dir && S_ISDIR(st.st_mode))
                return 1;
        cache_invalidate_under(a, path);
        int r = rm_rf_at(pfd, name);
        if (r < 0)
                return error_set(err, -r, "remove \"%s\"", path);
        return 0;
}

static int apply_entry(struct applier *a, const struct tar_entry *e, struct error **err)
{
        const char *raw = e->path;
        const char *hardlink = entry_hardlink(e);
        const char *name;
        mode_t type = entry_type(e);
        int pfd, r;

        if (!raw || raw[0] == '\0')
                return error_set(err, EINVAL, "invalid tar entry: empty name");
        if (strlen(raw) >= PATH_MAX)
                return error_set(err, ENAMETOOLONG, "invalid tar entry: path longer than %d bytes", PATH_MAX);
        _cleanup_free_ char *path = clean_path(raw);
        if (path[0] == '\0')
                return apply_root_entry(a, e, err);
        _cleanup_free_ char *parent = split_parent(path, &name);
        if (strlen(name) > NAME_MAX)
                return error_set(err, ENAMETOOLONG, "invalid tar entry: name longer than %d bytes", NAME_MAX);

        pfd = get_parent(a, parent, err);
        if (pfd < 0)
                return pfd;

        if (strncmp(name, WHITEOUT_PREFIX, strlen(WHITEOUT_PREFIX)) == 0)
                return do_whiteout(a, pfd, parent, name, e, err);

        if (!hardlink && (type == S_IFCHR || type == S_IFBLK) && !a->o->allow_devices)
                return error_set(err, EPERM, "device node \"%s\" not allowed", path);

        if (!a->o->overlay)
                strset_add(&a->created, path);

        if (hardlink) {
                r = make_room(a, pfd, name, path, false, err);
                if (r < 0)
                        return r;
                if (strlen(hardlink) >= PATH_MAX)
                        return error_set(err, ENAMETOOLONG, "hard link target of \"%s\" too long", path);
                _cleanup_free_ char *tpath = clean_path(hardlink);
                if (tpath[0] == '\0')
                        return error_set(err, EINVAL, "invalid hard link \"%s\" to the root", path);
                return link_entry(a, pfd, name, path, tpath, err);
        }

        /* Create first; only when the name is taken apply containerd's rule (make_room) and retry: most
         * entries are new, and a stat per entry would be wasted. */
        mode_t perm = e->mode & 07777;
        for (int attempt = 0;; attempt++) {
                mode_t cp;
                switch (type) {
                case S_IFREG: {
                        cp = create_perm(a, perm, 0600);
                        _cleanup_close_ int fd = openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, cp);
                        if (fd < 0)
                                break;
                        r = write_data(a, fd, e->size, path, err);
                        if (r < 0)
                                return r;
                        return apply_meta(a, e, pfd, name, fd, path, false, cp, err);
                }
                case S_IFDIR:
                        cp = create_perm(a, perm, 0700);
                        if (mkdirat(pfd, name, cp) < 0)
                                break;
                        return apply_meta(a, e, pfd, name, -1, path, true, cp, err);
                case S_IFLNK: {
                        const char *target = e->linkname;
                        if (!target || target[0] == '\0' || strlen(target) >= PATH_MAX)
                                return error_set(err, EINVAL, "invalid symlink target for \"%s\"", path);
                        if (symlinkat(target, pfd, name) < 0)
                                break;
                        return apply_meta(a, e, pfd, name, -1, path, false, 0777, err);
                }
                case S_IFCHR:
                case S_IFBLK:
                case S_IFIFO: {
                        dev_t dev = type == S_IFIFO ? 0 : makedev(e->devmajor, e->devminor);
                        cp = create_perm(a, perm, 0600);
                        if (mknodat(pfd, name, type | cp, dev) < 0)
                                break;
                        return apply_meta(a, e, pfd, name, -1, path, false, cp, err);
                }
                default:
                        /* Sockets and unknown types: containerd refuses them too. */
                        return error_set(err, EINVAL, "unsupported tar entry type %o for \"%s\"", (unsigned)type,
                                         path);
                }
                if (errno != EEXIST || attempt > 0)
                        return error_set(err, errno, "create \"%s\"", path);
                r = make_room(a, pfd, name, path, type == S_IFDIR, err);
                if (r < 0)
                        return r;
                if (r == 1)
                        return apply_meta(a, e, pfd, name, -1, path, true, NOT_FRESH, err);
        }
}

static int finish_dirs(struct applier *a, struct error **err)
{
        for (size_t i = a->n_dirs; i-- > 0;) {
                struct dir_times *d = &a->dirs[i];
                const char *name;
                _cleanup_free_ char *parent = NULL;
                _cleanup_close_ int pfd = -1;
                if (d->path[0] == '\0') {
                        if (utimensat(a->root_fd, ".", d->ts, 0) < 0 && errno != EINVAL && errno != EOVERFLOW)
                                return error_set(err, errno, "set times of the root");
                        continue;
                }
                parent = split_parent(d->path, &name);
                pfd = open_beneath(a->root_fd, parent, err);
                if (pfd == -ENOENT || pfd == -ENOTDIR || pfd == -ELOOP)
                        continue; /* removed or replaced later in the layer */
                if (pfd < 0)
                        return error_set(err, -pfd, "open \"%s\"", parent);
                if (utimensat(pfd, name, d->ts, AT_SYMLINK_NOFOLLOW) < 0 && errno != ENOENT && errno != EINVAL &&
                    errno != EOVERFLOW)
                        return error_set(err, errno, "set times of \"%s\"", d->path);
        }
        return 0;
}

static void applier_done(struct applier *a)
{
        cache_drop(a);
        for (size_t i = 0; i < a->n_dirs; i++)
                free(a->dirs[i].path);
        free(a->dirs);
        strset_clear(&a->created);
        error_free(&a->read_err);
        tar_reader_free(a->tar);
}

int image_apply_layer_stream(int root_fd, struct image_layer_stream *stream, const struct image_apply_options *opts,
                             struct image_apply_result *res, struct error **err)
{
        static const struct image_apply_options defaults = {.allow_devices = true};
        const struct image_apply_options *o = opts ? opts : &defaults;
        uint64_t max_entries = o->max_entries ? o->max_entries : IMAGE_APPLY_DEFAULT_MAX_ENTRIES;
        struct applier a = {
                .root_fd = root_fd,
                .o = o,
                .chown = !o->no_same_owner && geteuid() == 0,
                .stream = stream,
                .cached_fd = -1,
                /* overlay: every directory entries are created in is new in this upper dir (its xattrs come
                 * from this layer); a native root may hold lower directories with default ACLs */
                .fast_meta = o->overlay,
                .umask = read_umask(),
                .euid = geteuid(),
                .egid = getegid(),
        };
        const struct tar_entry *e;
        uint64_t n = 0;
        int r;

        /* tar only (an empty stream is an empty layer); decompression is the stream's */
        a.tar = tar_reader_new(read_cb, &a);
        for (;;) {
                r = tar_reader_next(a.tar, &e, err);
                if (r < 0) {
                        r = tar_failed(&a, r, err);
                        if (err && *err && a.read_r >= 0)
                                error_wrap(err, "invalid layer tar");
                        goto out;
                }
                if (!e)
                        break;
                if (++n > max_entries) {
                        r = error_set(err, E2BIG, "layer has more than %llu entries", (unsigned long long)max_entries);
                        goto out;
                }
                r = apply_entry(&a, e, err);
                if (r < 0)
                        goto out;
        }
        r = finish_dirs(&a, err);
        if (r < 0)
                goto out;
        /* The diff ID covers the whole uncompressed stream, padding after the end-of-archive included. */
        const void *buf;
        ssize_t k;
        while ((k = image_layer_stream_next(stream, &buf, &a.read_err)) > 0)
                ;
        if (k < 0) {
                a.read_r = (int)k;
                r = take_read_err(&a, err);
                goto out;
        }
        struct image_decompressor *dec = image_layer_stream_finish(stream);
        if (!dec) {
                r = error_set(err, EIO, "layer stream did not end");
                goto out;
        }
        if (res) {
                *res = (struct image_apply_result){
                        .size = image_decompressor_size(dec),
                        .entries = n,
                        .compression = image_decompressor_compression(dec),
                };
                r = image_decompressor_digest(dec, res->diff_id);
                if (r < 0) {
                        r = error_set(err, -r, "layer digest");
                        goto out;
                }
        }
        r = 0;
out:
        applier_done(&a);
        return r;
}

/* The current layer's own stream only needs to stay a little ahead of the tar reader. */
#define APPLY_AHEAD_BYTES (4u << 20)

int image_apply_layer(int root_fd, int blob_fd, const struct image_apply_options *opts,
                      struct image_apply_result *res, struct error **err)
{
        uint64_t max = opts && opts->max_bytes ? opts->max_bytes : IMAGE_APPLY_DEFAULT_MAX_BYTES;
        _cleanup_layer_stream_ struct image_layer_stream *s = NULL;
        int r = image_layer_stream_start(blob_fd, max, APPLY_AHEAD_BYTES, &s, err);
        if (r < 0)
                return r;
        return image_apply_layer_stream(root_fd, s, opts, res, err);
}

int image_apply_layer_path(const char *root, int blob_fd, const struct image_apply_options *opts,
                           struct image_apply_result *res, struct error **err)
{
        _cleanup_close_ int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return error_set(err, errno, "open layer root \"%s\"", root);
        return image_apply_layer(fd, blob_fd, opts, res, err);
}

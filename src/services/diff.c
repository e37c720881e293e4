/* diff.v1 Apply logic; see diff.h. */
#include "services/diff.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "content/store.h"
#include "image/tar.h"
#include "metadata/content.h"
#include "snapshot/mount.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/strv.h"

#include <dirent.h>
#include <inttypes.h>
#include <isa-l/igzip_lib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/xattr.h>
#include <time.h>

static atomic_uint_fast64_t diff_seq;
static uint64_t diff_seq_base;
static pthread_once_t diff_seq_once = PTHREAD_ONCE_INIT;

static void diff_seq_init(void)
{
        diff_seq_base = (uint64_t)time(NULL);
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* containerd's applier accepts OCI and Docker layer media types (diff/apply/apply.go via
 * images.DiffCompression); the compression itself is detected from the data. */
static bool media_type_supported(const char *mt)
{
        static const char *const ok[] = {
                "application/vnd.oci.image.layer.v1.tar",
                "application/vnd.oci.image.layer.v1.tar+gzip",
                "application/vnd.oci.image.layer.v1.tar+zstd",
                "application/vnd.oci.image.layer.nondistributable.v1.tar",
                "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
                "application/vnd.docker.image.rootfs.diff.tar",
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        };
        if (!mt || !mt[0])
                return false;
        for (size_t i = 0; i < ELEMENTSOF(ok); i++)
                if (strcmp(mt, ok[i]) == 0)
                        return true;
        return false;
}

static const char *option_value(const struct snapshot_mount *m, const char *prefix)
{
        size_t n = strlen(prefix);
        for (char **o = m->options; o && *o; o++)
                if (strncmp(*o, prefix, n) == 0)
                        return *o + n;
        return NULL;
}

static bool has_option(const struct snapshot_mount *m, const char *opt)
{
        for (char **o = m->options; o && *o; o++)
                if (strcmp(*o, opt) == 0)
                        return true;
        return false;
}

static int apply_into(const char *dir, struct image_layer_stream *stream, bool overlay, char *const *parents,
                      struct image_apply_result *ret, struct error **err)
{
        struct image_apply_options o = {
                .overlay = overlay,
                .allow_devices = true,
                .parents = (const char *const *)parents,
        };
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return error_set(err, errno, "open layer root \"%s\"", dir);
        return image_apply_layer_stream(fd, stream, &o, ret, err);
}

int services_diff_open_layer(struct services_ctx *ctx, const char *ns, const char *media_type, const char *digest,
                             int *ret_fd, struct error **err)
{
        struct metadata_content_info info = {0};
        int64_t size = 0;
        int r;

        if (!ctx->db || !ctx->content)
                return error_set(err, EAGAIN, "diff service is not available");
        if (!media_type_supported(media_type))
                return error_set(err, ENOSYS, "unsupported diff media type: %s", media_type ? media_type : "");
        if (!digest || !digest[0])
                return error_set(err, EINVAL, "diff descriptor digest is required");
        r = metadata_content_info(ctx->db, ns, digest, &info, err);
        if (r < 0)
                return r;
        metadata_content_info_clear(&info);
        return content_blob_open(ctx->content, digest, ret_fd, &size, err);
}

int services_diff_apply_stream(struct services_ctx *ctx, const char *digest, struct image_layer_stream *stream,
                               const struct snapshot_mount *mounts, size_t nmounts, struct image_apply_result *ret,
                               struct error **err)
{
        int r;

        if (nmounts == 0)
                return error_set(err, EINVAL, "no mounts to apply to");
        if (nmounts == 1 && strcmp(mounts[0].type, "overlay") == 0 && option_value(&mounts[0], "upperdir=")) {
                /* The upper dir of an active overlay snapshot is exactly the layer's diff; the lower dirs
                 * give implicitly created directories their attributes and hard-linked lower files. */
                const char *low = option_value(&mounts[0], "lowerdir=");
                _cleanup_strv_free_ char **parents = low ? strv_split(low, ":") : NULL;
                r = apply_into(option_value(&mounts[0], "upperdir="), stream, true, parents, ret, err);
        } else if (nmounts == 1 && strcmp(mounts[0].type, "bind") == 0 && !has_option(&mounts[0], "ro")) {
                r = apply_into(mounts[0].source, stream, false, NULL, ret, err);
        } else {
                _cleanup_free_ char *base = xasprintf("%s/tmpmounts", ctx->root ? ctx->root : "/tmp");
                (void)mkdir(base, 0700);
                _cleanup_free_ char *dir = xasprintf("%s/apply-XXXXXX", base);
                if (!mkdtemp(dir))
                        return error_set(err, errno, "create temp mount dir in %s", base);
                r = snapshot_mount_all(mounts, nmounts, dir, err);
                if (r == 0) {
                        r = apply_into(dir, stream, false, NULL, ret, err);
                        struct error *e2 = NULL;
                        int u = snapshot_unmount(dir, 0, &e2);
                        if (u < 0)
                                (void)snapshot_unmount(dir, MNT_DETACH, NULL);
                        error_free(&e2);
                }
                (void)rmdir(dir);
        }
        if (r < 0)
                return error_wrap(err, "apply layer %s", digest);
        return 0;
}

/* A layer applied on its own only needs its decompression a little ahead of the tar reader. */
#define APPLY_AHEAD_BYTES (4u << 20)

int services_diff_apply(struct services_ctx *ctx, const char *ns, const char *media_type, const char *digest,
                        const struct snapshot_mount *mounts, size_t nmounts, struct image_apply_result *ret,
                        struct error **err)
{
        _cleanup_close_ int fd = -1;
        _cleanup_layer_stream_ struct image_layer_stream *stream = NULL;
        int r = services_diff_open_layer(ctx, ns, media_type, digest, &fd, err);
        if (r < 0)
                return r;
        if (nmounts == 0)
                return error_set(err, EINVAL, "no mounts to apply to");
        r = image_layer_stream_start(fd, IMAGE_APPLY_DEFAULT_MAX_BYTES, APPLY_AHEAD_BYTES, &stream, err);
        if (r < 0)
                return error_wrap(err, "apply layer %s", digest);
        return services_diff_apply_stream(ctx, digest, stream, mounts, nmounts, ret, err);
}

/* --- Diff (compare): containerd's walking differ (diff/walking + archive.WriteDiff + continuity's
 * doubleWalkDiff), on the two trees mounted read-only. --- */

#define DIFF_MAX_DEPTH 200 /* two fds per level */
#define DIFF_COPY_BUF (1u << 20)
#define UNCOMPRESSED_LABEL "containerd.io/uncompressed"

struct differ {
        struct tar_writer *tw;
        struct metadata_content_writer *w;
        struct digester *raw;     /* of the uncompressed tar: the diff ID */
        struct isal_zstream z;
        uint8_t *zbuf, *zlevel;
        int r;                    /* first write error */
        struct error *err;
        uint8_t *copy;
        struct ino_link {         /* hard-linked inodes: the first name written carries the data */
                dev_t dev;
                ino_t ino;
                char *name;
        } *links;
        size_t nlinks, caplinks;
        time_t now;
};

/* A directory of the upper tree being walked. Everything is reached through these fds with single-component
 * *at() calls that never follow the final component, so a tree changing under the walk (an active snapshot
 * in use) cannot point it outside the mounted tree. */
struct frame {
        struct frame *up;
        const char *rel; /* "" for the root */
        int fd;
        struct stat st;
        bool written;    /* its own entry is in the tar (containerd's addedDirs) */
};

static int zflush(struct differ *d, const uint8_t *in, size_t n, bool end)
{
        d->z.next_in = (uint8_t *)in;
        d->z.avail_in = (uint32_t)n;
        d->z.end_of_stream = end;
        do {
                d->z.next_out = d->zbuf;
                d->z.avail_out = DIFF_COPY_BUF;
                if (isal_deflate(&d->z) != COMP_OK)
                        return error_set(&d->err, EIO, "gzip");
                size_t out = DIFF_COPY_BUF - d->z.avail_out;
                if (out > 0) {
                        int r = metadata_content_writer_write(d->w, d->zbuf, out, &d->err);
                        if (r < 0)
                                return r;
                }
        } while (d->z.avail_in > 0 || d->z.avail_out == 0 || (end && d->z.internal_state.state != ZSTATE_END));
        return 0;
}

static int diff_sink(void *data, const void *buf, size_t n)
{
        struct differ *d = data;
        if (d->r < 0)
                return d->r;
        digester_update(d->raw, buf, n);
        d->r = zflush(d, buf, n, false);
        return d->r;
}

static ssize_t lgetxattr_at(int dfd, const char *name, const char *key, void *buf, size_t n)
{
        _cleanup_free_ char *p = xasprintf("/proc/self/fd/%d/%s", dfd, name);
        return lgetxattr(p, key, buf, n);
}

static char *join(const char *rel, const char *name)
{
        return rel[0] ? xasprintf("%s/%s", rel, name) : xstrdup(name);
}

static int write_entry(struct differ *d, struct frame *parent, const char *name, const char *rel,
                       const struct stat *st);

/* containerd's includeParents: the directories above a change (not the root) go before it, once, outermost
 * first. */
static int include_parents(struct differ *d, struct frame *f)
{
        if (!f || !f->up || f->written)
                return 0;
        f->written = true;
        const char *slash = strrchr(f->rel, '/');
        return write_entry(d, f->up, slash ? slash + 1 : f->rel, f->rel, &f->st);
}

static int header(struct differ *d, const struct tar_entry *e)
{
        return tar_writer_header(d->tw, e, &d->err);
}

static int write_whiteout(struct differ *d, struct frame *parent, const char *name)
{
        int r = include_parents(d, parent);
        if (r < 0)
                return r;
        _cleanup_free_ char *wname = xasprintf(".wh.%s", name);
        _cleanup_free_ char *wh = join(parent->rel, wname);
        struct tar_entry e = {.type = TAR_REG, .path = wh, .mode = 0, .mtime_sec = d->now};
        return header(d, &e);
}

/* Writes parent/name (stat st, path rel in the tar) with its data. */
static int write_entry(struct differ *d, struct frame *parent, const char *name, const char *rel,
                       const struct stat *st)
{
        char target[PATH_MAX];
        const char *link = NULL;
        int r;

        if (S_ISSOCK(st->st_mode))
                return 0;
        r = include_parents(d, parent);
        if (r < 0)
                return r;
        _cleanup_free_ char *tarname = S_ISDIR(st->st_mode) ? xasprintf("%s/", rel) : xstrdup(rel);
        struct tar_entry e = {
                .path = tarname,
                .mode = st->st_mode & 07777,
                .uid = st->st_uid,
                .gid = st->st_gid,
                .mtime_sec = st->st_mtim.tv_sec,
        };
        switch (st->st_mode & S_IFMT) {
        case S_IFDIR:
                e.type = TAR_DIR;
                break;
        case S_IFLNK: {
                ssize_t n = readlinkat(parent->fd, name, target, sizeof(target) - 1);
                if (n < 0)
                        return error_set(&d->err, errno, "readlink \"%s\"", rel);
                target[n] = '\0';
                e.type = TAR_SYMLINK;
                e.linkname = target;
                break;
        }
        case S_IFCHR:
        case S_IFBLK:
                e.type = S_ISCHR(st->st_mode) ? TAR_CHR : TAR_BLK;
                e.devmajor = major(st->st_rdev);
                e.devminor = minor(st->st_rdev);
                break;
        case S_IFIFO:
                e.type = TAR_FIFO;
                break;
        default:
                e.type = TAR_REG;
                break;
        }
        if (!S_ISDIR(st->st_mode) && st->st_nlink > 1) {
                for (size_t i = 0; i < d->nlinks; i++)
                        if (d->links[i].dev == st->st_dev && d->links[i].ino == st->st_ino) {
                                link = d->links[i].name;
                                break;
                        }
                if (!link) {
                        if (d->nlinks == d->caplinks) {
                                d->caplinks = d->caplinks ? d->caplinks * 2 : 16;
                                d->links = xreallocarray(d->links, d->caplinks, sizeof(*d->links));
                        }
                        d->links[d->nlinks++] = (struct ino_link){st->st_dev, st->st_ino, xstrdup(rel)};
                }
        }
        if (link) {
                e.type = TAR_HARDLINK;
                e.linkname = (char *)link;
        } else if (S_ISREG(st->st_mode)) {
                e.size = st->st_size;
        }
        uint8_t cap[256];
        ssize_t cl = lgetxattr_at(parent->fd, name, "security.capability", cap, sizeof(cap));
        struct tar_xattr capx = {(char *)"security.capability", cap, cl > 0 ? (size_t)cl : 0};
        if (cl > 0) {
                e.xattrs = &capx;
                e.nxattrs = 1;
        }
        r = header(d, &e);
        if (r < 0 || link || !S_ISREG(st->st_mode) || st->st_size == 0)
                return r;
        _cleanup_close_ int fd = openat(parent->fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return error_set(&d->err, errno, "open \"%s\"", rel);
        int64_t left = st->st_size;
        while (left > 0) {
                ssize_t n = read(fd, d->copy, left < DIFF_COPY_BUF ? (size_t)left : DIFF_COPY_BUF);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return error_set(&d->err, errno, "read \"%s\"", rel);
                if (n == 0)
                        return error_set(&d->err, EIO, "\"%s\" shrank while being read", rel);
                r = tar_writer_data(d->tw, d->copy, (size_t)n, &d->err);
                if (r < 0)
                        return r;
                left -= n;
        }
        return 0;
}

/* Names in dir fd, sorted bytewise (Go's filepath.Walk order). */
static int list_sorted(int dfd, char ***ret, size_t *ret_n)
{
        int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        DIR *dir = fdopendir(fd);
        if (!dir) {
                int e = errno;
                (void)close(fd);
                return -e;
        }
        char **v = NULL;
        size_t n = 0, cap = 0;
        struct dirent *de;
        while ((de = readdir(dir))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (n + 1 >= cap) {
                        cap = cap ? cap * 2 : 32;
                        v = xreallocarray(v, cap, sizeof(char *));
                }
                v[n++] = xstrdup(de->d_name);
        }
        closedir(dir);
        if (n)
                qsort(v, n, sizeof(char *), cmp_str);
        if (!v)
                v = xcalloc(1, sizeof(char *));
        v[n] = NULL;
        *ret = v;
        *ret_n = n;
        return 0;
}

/* Regular files of equal size and second, both with zero nanoseconds (truncated times): compare bytes. */
static int same_content(struct differ *d, int lfd, int ufd, const char *name, off_t size)
{
        _cleanup_close_ int a = openat(lfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        _cleanup_close_ int b = openat(ufd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (a < 0 || b < 0)
                return -errno;
        _cleanup_free_ uint8_t *bb = xmalloc(DIFF_COPY_BUF / 2);
        for (off_t left = size; left > 0;) {
                size_t want = left < DIFF_COPY_BUF / 2 ? (size_t)left : DIFF_COPY_BUF / 2;
                ssize_t x = read(a, d->copy, want), y = read(b, bb, want);
                if (x < 0 || y < 0)
                        return -errno;
                if (x != y || x == 0)
                        return 0;
                if (memcmp(d->copy, bb, (size_t)x) != 0)
                        return 0;
                left -= x;
        }
        return 1;
}

/* continuity's sameFile: same inode; else owner, mode (type included), rdev, capabilities, and for
 * non-directories size, mtime (content when both times are truncated to seconds) and symlink targets. */
static int same_file(struct differ *d, int lfd, int ufd, const char *name, const struct stat *a, const struct stat *b)
{
        if (a->st_dev == b->st_dev && a->st_ino == b->st_ino)
                return 1;
        if (a->st_mode != b->st_mode || a->st_uid != b->st_uid || a->st_gid != b->st_gid || a->st_rdev != b->st_rdev)
                return 0;
        char ca[256], cb[256];
        ssize_t la = lgetxattr_at(lfd, name, "security.capability", ca, sizeof(ca));
        ssize_t lb = lgetxattr_at(ufd, name, "security.capability", cb, sizeof(cb));
        if ((la > 0 || lb > 0) && (la != lb || memcmp(ca, cb, (size_t)la) != 0))
                return 0;
        if (S_ISDIR(a->st_mode))
                return 1;
        if (a->st_size != b->st_size || a->st_mtim.tv_sec != b->st_mtim.tv_sec)
                return 0;
        if (S_ISLNK(a->st_mode)) {
                char ta[PATH_MAX], tb[PATH_MAX];
                ssize_t x = readlinkat(lfd, name, ta, sizeof(ta)), y = readlinkat(ufd, name, tb, sizeof(tb));
                return x >= 0 && x == y && memcmp(ta, tb, (size_t)x) == 0;
        }
        if (a->st_mtim.tv_nsec == 0 && b->st_mtim.tv_nsec == 0) {
                if (!S_ISREG(a->st_mode) || a->st_size == 0)
                        return 1;
                return same_content(d, lfd, ufd, name, a->st_size);
        }
        return a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Emits the changes inside the upper directory uf against the lower directory lfd (-1: absent). */
static int diff_dir(struct differ *d, struct frame *uf, int lfd, unsigned depth)
{
        char **lv = NULL, **uv = NULL;
        size_t ln = 0, un = 0, i = 0, j = 0;
        int r;

        if (depth > DIFF_MAX_DEPTH)
                return error_set(&d->err, ELOOP, "directory tree deeper than %d levels", DIFF_MAX_DEPTH);
        r = list_sorted(uf->fd, &uv, &un);
        if (r < 0)
                return error_set(&d->err, -r, "list \"%s\"", uf->rel);
        if (lfd >= 0 && list_sorted(lfd, &lv, &ln) < 0)
                lfd = -1;
        while (r == 0 && (i < ln || j < un)) {
                int c = i >= ln ? 1 : j >= un ? -1 : strcmp(lv[i], uv[j]);
                const char *name = c < 0 ? lv[i] : uv[j];
                struct stat ls, us;
                if (c < 0) {
                        i++;
                        r = write_whiteout(d, uf, name);
                        continue;
                }
                j++;
                if (fstatat(uf->fd, name, &us, AT_SYMLINK_NOFOLLOW) < 0) {
                        r = error_set(&d->err, errno, "stat \"%s/%s\"", uf->rel, name);
                        break;
                }
                bool in_lower = false;
                if (c == 0) {
                        i++;
                        in_lower = fstatat(lfd, name, &ls, AT_SYMLINK_NOFOLLOW) == 0;
                }
                _cleanup_free_ char *rel = join(uf->rel, name);
                bool written = false;
                if (!in_lower) {
                        r = write_entry(d, uf, name, rel, &us);
                        written = true;
                } else {
                        int same = same_file(d, lfd, uf->fd, name, &ls, &us);
                        if (same < 0) {
                                r = error_set(&d->err, -same, "compare \"%s\"", rel);
                                break;
                        }
                        /* a hard-linked file is written even unchanged: a changed sibling may link to it
                         * (continuity's isLinked) */
                        if (!same || (!S_ISDIR(us.st_mode) && us.st_nlink > 1)) {
                                r = write_entry(d, uf, name, rel, &us);
                                written = true;
                        }
                }
                if (r < 0 || !S_ISDIR(us.st_mode))
                        continue;
                struct frame child = {.up = uf, .rel = rel, .st = us, .written = written};
                child.fd = openat(uf->fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (child.fd < 0) {
                        r = error_set(&d->err, errno, "open \"%s\"", rel);
                        break;
                }
                int clfd = in_lower && S_ISDIR(ls.st_mode)
                                   ? openat(lfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                                   : -1;
                r = diff_dir(d, &child, clfd, depth + 1);
                (void)close(child.fd);
                if (clfd >= 0)
                        (void)close(clfd);
        }
        strv_free(lv);
        strv_free(uv);
        return r;
}

int services_diff_compare(struct services_ctx *ctx, const char *ns, const struct snapshot_mount *lower,
                          size_t nlower, const struct snapshot_mount *upper, size_t nupper, const char *media_type,
                          const char *ref, char *const *labels, const char *lease, struct services_diff_desc *ret,
                          struct error **err)
{
        struct differ d = {.now = time(NULL)};
        _cleanup_free_ char *base = NULL, *ldir = NULL, *udir = NULL, *uniq = NULL;
        bool lmounted = false, umounted = false;
        _cleanup_close_ int lfd = -1, ufd = -1;
        int r;

        if (!ctx->db || !ctx->content)
                return error_set(err, EAGAIN, "diff service is not available");
        if (!media_type || !media_type[0])
                media_type = "application/vnd.oci.image.layer.v1.tar+gzip";
        if (strcmp(media_type, "application/vnd.oci.image.layer.v1.tar+gzip") != 0)
                return error_set(err, ENOSYS, "unsupported diff media type: %s", media_type);
        if (nupper == 0)
                return error_set(err, EINVAL, "no upper mounts to compare");
        base = xasprintf("%s/tmpmounts", ctx->root ? ctx->root : "/tmp");
        (void)mkdir(base, 0700);
        ldir = xasprintf("%s/diff-lower-XXXXXX", base);
        udir = xasprintf("%s/diff-upper-XXXXXX", base);
        if (!mkdtemp(ldir))
                return error_set(err, errno, "create temp mount dir in %s", base);
        if (!mkdtemp(udir)) {
                r = error_set(err, errno, "create temp mount dir in %s", base);
                (void)rmdir(ldir);
                return r;
        }
        /* both read-only (containerd: WithTempMount(lower) with the view's own ro, WithReadonlyTempMount) */
        struct snapshot_mounts ro = {.n = nupper, .v = xcalloc(nupper + 1, sizeof(*ro.v))};
        for (size_t i = 0; i < nupper; i++) {
                ro.v[i].type = xstrdup(upper[i].type);
                ro.v[i].source = xstrdup(upper[i].source);
                size_t k = strv_length(upper[i].options);
                ro.v[i].options = xcalloc(k + 2, sizeof(char *));
                size_t o = 0;
                for (size_t x = 0; x < k; x++)
                        if (strcmp(upper[i].options[x], "rw") != 0)
                                ro.v[i].options[o++] = xstrdup(upper[i].options[x]);
                ro.v[i].options[o] = xstrdup("ro");
        }
        r = nlower ? snapshot_mount_all(lower, nlower, ldir, err) : 0;
        if (r < 0)
                goto out;
        lmounted = nlower > 0;
        r = snapshot_mount_all(ro.v, ro.n, udir, err);
        if (r < 0)
                goto out;
        umounted = true;
        lfd = open(ldir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ufd = open(udir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (lfd < 0 || ufd < 0) {
                r = error_set(err, errno, "open mounted trees");
                goto out;
        }

        if (!ref || !ref[0]) {
                pthread_once(&diff_seq_once, diff_seq_init);
                uniq = xasprintf("diff-%" PRIu64 "-%" PRIu64, diff_seq_base, atomic_fetch_add(&diff_seq, 1));
                ref = uniq;
        }
        r = metadata_content_writer_open(ctx->db, ctx->content, ns, ref, 0, NULL, lease, &d.w, err);
        if (r < 0)
                goto out;
        d.raw = digester_new();
        d.copy = xmalloc(DIFF_COPY_BUF);
        d.zbuf = xmalloc(DIFF_COPY_BUF);
        d.zlevel = xmalloc(ISAL_DEF_LVL1_DEFAULT);
        isal_deflate_init(&d.z);
        d.z.gzip_flag = IGZIP_GZIP;
        d.z.level = 1;
        d.z.level_buf = d.zlevel;
        d.z.level_buf_size = ISAL_DEF_LVL1_DEFAULT;
        d.tw = tar_writer_new(diff_sink, &d); /* no padding to 10 KiB records, as Go's tar */
        struct frame root = {.rel = "", .fd = ufd, .written = true};
        r = diff_dir(&d, &root, lfd, 0);
        if (r == 0)
                r = tar_writer_close(d.tw, &d.err);
        if (r == 0)
                r = zflush(&d, NULL, 0, true);
        if (r < 0) {
                if (err && !*err)
                        *err = TAKE_PTR(d.err);
                goto out;
        }
        {
                _cleanup_free_ char *uncompressed = digester_digest(d.raw);
                _cleanup_free_ char *dg = metadata_content_writer_digest(d.w);
                int64_t size = metadata_content_writer_offset(d.w);
                size_t nl = strv_length((char **)labels);
                _cleanup_free_ char **all = xcalloc(nl + 3, sizeof(char *));
                size_t o = 0;
                for (size_t i = 0; i + 1 < nl; i += 2)
                        if (strcmp(labels[i], UNCOMPRESSED_LABEL) != 0) {
                                all[o++] = labels[i];
                                all[o++] = labels[i + 1];
                        }
                all[o++] = UNCOMPRESSED_LABEL;
                all[o++] = uncompressed;
                r = metadata_content_writer_commit(d.w, size, dg, all, err);
                if (r == -EEXIST) {
                        error_free(err);
                        r = 0;
                }
                if (r < 0)
                        goto out;
                *ret = (struct services_diff_desc){
                        .media_type = xstrdup(media_type),
                        .digest = TAKE_PTR(dg),
                        .size = size,
                        .uncompressed = TAKE_PTR(uncompressed),
                };
        }
out:
        tar_writer_free(d.tw);
        if (d.w)
                metadata_content_writer_close(d.w);
        digester_free(d.raw);
        free(d.copy);
        free(d.zbuf);
        free(d.zlevel);
        for (size_t i = 0; i < d.nlinks; i++)
                free(d.links[i].name);
        free(d.links);
        error_free(&d.err);
        snapshot_mounts_clear(&ro);
        lfd = lfd >= 0 ? (close(lfd), -1) : -1;
        ufd = ufd >= 0 ? (close(ufd), -1) : -1;
        if (umounted && snapshot_unmount(udir, 0, NULL) < 0)
                (void)snapshot_unmount(udir, MNT_DETACH, NULL);
        if (lmounted && snapshot_unmount(ldir, 0, NULL) < 0)
                (void)snapshot_unmount(ldir, MNT_DETACH, NULL);
        (void)rmdir(udir);
        (void)rmdir(ldir);
        return r;
}

void services_diff_desc_clear(struct services_diff_desc *d)
{
        free(d->media_type);
        free(d->digest);
        free(d->uncompressed);
        *d = (struct services_diff_desc){0};
}

#include "content/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/digest.h"

#define READ_CHUNK (1 << 20)

struct locked_ref {
        char *ref;
        struct locked_ref *next;
};

struct content_store {
        char *root;
        int root_fd;
        int blobs_fd;  /* blobs/sha256 */
        int ingest_fd; /* ingest */
        pthread_mutex_t lock;
        struct locked_ref *locked;
};

struct content_writer {
        struct content_store *cs;
        char *ref;
        char *dir; /* ingest dir name (hex of sha256(ref)) */
        int dir_fd;
        int data_fd;
        struct digester *md;
        int64_t offset;
        int64_t total;
        int64_t started_at;
        int64_t updated_at;
};

static int64_t now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t stat_mtime_ns(const struct stat *st)
{
        return (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

/* Ingest directory name: hex of sha256(ref), as containerd's content/local. */
static char *sha256_hex_of(const void *p, size_t n)
{
        _cleanup_free_ char *d = digest_from_buf(p, n);
        return xstrdup(d + strlen(DIGEST_SHA256_PREFIX));
}

void content_blob_info_clear(struct content_blob_info *i)
{
        free(i->digest);
        i->digest = NULL;
}

void content_status_clear(struct content_status *s)
{
        free(s->ref);
        s->ref = NULL;
}

int content_digest_validate(const char *digest, struct error **err)
{
        if (!digest || strncmp(digest, "sha256:", 7) != 0) {
                if (digest && strchr(digest, ':'))
                        return error_set(err, EINVAL, "invalid digest \"%s\": unsupported digest algorithm", digest);
                return error_set(err, EINVAL, "invalid digest \"%s\": invalid checksum digest format",
                                 digest ? digest : "");
        }
        const char *h = digest + 7;
        if (strlen(h) != 64)
                return error_set(err, EINVAL, "invalid digest \"%s\": invalid checksum digest length", digest);
        for (size_t i = 0; i < 64; i++)
                if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
                        return error_set(err, EINVAL, "invalid digest \"%s\": invalid checksum digest format", digest);
        return 0;
}

int content_blob_relpath(const char *digest, char **ret, struct error **err)
{
        int r = content_digest_validate(digest, err);
        if (r < 0)
                return r;
        *ret = xasprintf("blobs/sha256/%s", digest + 7);
        return 0;
}

static int mkdirat_p(int dfd, const char *name, int *ret_fd)
{
        if (mkdirat(dfd, name, 0755) < 0 && errno != EEXIST)
                return -errno;
        int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        *ret_fd = fd;
        return 0;
}

int content_store_open(const char *dir, struct content_store **ret, struct error **err)
{
        _cleanup_close_ int root_fd = -1, blobs_fd = -1, sha_fd = -1, ingest_fd = -1;
        int r;

        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                return error_set(err, errno, "content store: create %s", dir);
        root_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (root_fd < 0)
                return error_set(err, errno, "content store: open %s", dir);
        r = mkdirat_p(root_fd, "blobs", &blobs_fd);
        if (r == 0)
                r = mkdirat_p(blobs_fd, "sha256", &sha_fd);
        if (r == 0)
                r = mkdirat_p(root_fd, "ingest", &ingest_fd);
        if (r < 0)
                return error_set(err, -r, "content store: create directories in %s", dir);
        struct content_store *cs = xcalloc(1, sizeof(*cs));
        cs->root = xstrdup(dir);
        cs->root_fd = TAKE_FD(root_fd);
        cs->blobs_fd = TAKE_FD(sha_fd);
        cs->ingest_fd = TAKE_FD(ingest_fd);
        pthread_mutex_init(&cs->lock, NULL);
        *ret = cs;
        return 0;
}

void content_store_free(struct content_store *cs)
{
        if (!cs)
                return;
        while (cs->locked) {
                struct locked_ref *l = cs->locked;
                cs->locked = l->next;
                free(l->ref);
                free(l);
        }
        pthread_mutex_destroy(&cs->lock);
        closep(&cs->root_fd);
        closep(&cs->blobs_fd);
        closep(&cs->ingest_fd);
        free(cs->root);
        free(cs);
}

const char *content_store_root(const struct content_store *cs)
{
        return cs->root;
}

/* --- blobs --- */

int content_blob_info(struct content_store *cs, const char *digest, struct content_blob_info *ret, struct error **err)
{
        struct stat st;
        int r = content_digest_validate(digest, err);
        if (r < 0)
                return r;
        if (fstatat(cs->blobs_fd, digest + 7, &st, 0) < 0) {
                if (errno == ENOENT)
                        return error_set(err, ENOENT, "content digest %s", digest);
                return error_set(err, errno, "content digest %s: stat", digest);
        }
        ret->digest = xstrdup(digest);
        ret->size = st.st_size;
        ret->created_at = stat_mtime_ns(&st);
        ret->updated_at = ret->created_at;
        return 0;
}

bool content_blob_exists(struct content_store *cs, const char *digest)
{
        struct stat st;
        return content_digest_validate(digest, NULL) == 0 && fstatat(cs->blobs_fd, digest + 7, &st, 0) == 0;
}

int content_blob_open(struct content_store *cs, const char *digest, int *ret_fd, int64_t *ret_size, struct error **err)
{
        struct stat st;
        int r = content_digest_validate(digest, err);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = openat(cs->blobs_fd, digest + 7, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
                if (errno == ENOENT)
                        return error_set(err, ENOENT, "content digest %s", digest);
                return error_set(err, errno, "content digest %s: open", digest);
        }
        if (fstat(fd, &st) < 0)
                return error_set(err, errno, "content digest %s: stat", digest);
        if (ret_size)
                *ret_size = st.st_size;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int content_blob_delete(struct content_store *cs, const char *digest, struct error **err)
{
        int r = content_digest_validate(digest, err);
        if (r < 0)
                return r;
        if (unlinkat(cs->blobs_fd, digest + 7, 0) < 0) {
                if (errno == ENOENT)
                        return error_set(err, ENOENT, "content digest %s", digest);
                return error_set(err, errno, "content digest %s: delete", digest);
        }
        return 0;
}

int content_blob_walk(struct content_store *cs, content_walk_fn fn, void *userdata, struct error **err)
{
        int fd = openat(cs->blobs_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return error_set(err, errno, "content walk");
        _cleanup_closedir_ DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return error_set(err, errno, "content walk");
        }
        struct dirent *de;
        while ((de = readdir(d))) {
                struct stat st;
                if (de->d_name[0] == '.')
                        continue;
                _cleanup_free_ char *dg = xasprintf("sha256:%s", de->d_name);
                if (content_digest_validate(dg, NULL) < 0)
                        continue; /* stray file, not ours */
                if (fstatat(cs->blobs_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                        continue;
                struct content_blob_info info = {.digest = dg,
                                                 .size = st.st_size,
                                                 .created_at = stat_mtime_ns(&st),
                                                 .updated_at = stat_mtime_ns(&st)};
                int r = fn(&info, userdata);
                if (r != 0)
                        return r;
        }
        return 0;
}

/* --- ref locks --- */

static int ref_lock(struct content_store *cs, const char *ref, struct error **err)
{
        pthread_mutex_lock(&cs->lock);
        for (struct locked_ref *l = cs->locked; l; l = l->next)
                if (strcmp(l->ref, ref) == 0) {
                        pthread_mutex_unlock(&cs->lock);
                        return error_set(err, EAGAIN, "ref %s locked", ref);
                }
        struct locked_ref *l = xcalloc(1, sizeof(*l));
        l->ref = xstrdup(ref);
        l->next = cs->locked;
        cs->locked = l;
        pthread_mutex_unlock(&cs->lock);
        return 0;
}

static void ref_unlock(struct content_store *cs, const char *ref)
{
        pthread_mutex_lock(&cs->lock);
        for (struct locked_ref **p = &cs->locked; *p; p = &(*p)->next)
                if (strcmp((*p)->ref, ref) == 0) {
                        struct locked_ref *l = *p;
                        *p = l->next;
                        free(l->ref);
                        free(l);
                        break;
                }
        pthread_mutex_unlock(&cs->lock);
}

/* --- small files in an ingest dir --- */

static int write_small(int dfd, const char *name, const char *s)
{
        _cleanup_free_ char *tmp = xasprintf(".%s.tmp", name);
        _cleanup_close_ int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        size_t n = strlen(s);
        if (write(fd, s, n) != (ssize_t)n)
                return errno ? -errno : -EIO;
        if (renameat(dfd, tmp, dfd, name) < 0)
                return -errno;
        return 0;
}

static char *read_small(int dfd, const char *name, size_t max)
{
        _cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return NULL;
        char *buf = xmalloc(max + 1);
        ssize_t n = read(fd, buf, max);
        if (n < 0) {
                free(buf);
                return NULL;
        }
        buf[n] = '\0';
        return buf;
}

static int64_t read_i64(int dfd, const char *name)
{
        _cleanup_free_ char *s = read_small(dfd, name, 32);
        return s ? strtoll(s, NULL, 10) : 0;
}

static int write_i64(int dfd, const char *name, int64_t v)
{
        char b[32];
        snprintf(b, sizeof(b), "%" PRId64, v);
        return write_small(dfd, name, b);
}

/* --- writers --- */

static void writer_free(struct content_writer *w)
{
        if (!w)
                return;
        closep(&w->data_fd);
        closep(&w->dir_fd);
        digester_free(w->md);
        free(w->ref);
        free(w->dir);
        free(w);
}

static int rehash(struct content_writer *w, struct error **err)
{
        _cleanup_free_ char *buf = xmalloc(READ_CHUNK);
        int64_t off = 0;
        for (;;) {
                ssize_t n = pread(w->data_fd, buf, READ_CHUNK, off);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return error_set(err, errno, "ingest ref \"%s\": read", w->ref);
                }
                if (n == 0)
                        break;
                digester_update(w->md, buf, (size_t)n);
                off += n;
        }
        w->offset = off;
        return 0;
}

int content_writer_open(struct content_store *cs, const char *ref, int64_t total, const char *expected,
                        struct content_writer **ret, struct error **err)
{
        int r;
        if (!ref || !ref[0])
                return error_set(err, EINVAL, "ref must not be empty");
        if (expected && expected[0]) {
                r = content_digest_validate(expected, err);
                if (r < 0)
                        return r;
                if (content_blob_exists(cs, expected))
                        return error_set(err, EEXIST, "content %s", expected);
        }
        r = ref_lock(cs, ref, err);
        if (r < 0)
                return r;
        struct content_writer *w = xcalloc(1, sizeof(*w));
        w->cs = cs;
        w->ref = xstrdup(ref);
        w->dir = sha256_hex_of(ref, strlen(ref));
        w->dir_fd = w->data_fd = -1;
        w->md = digester_new();

        bool fresh = mkdirat(cs->ingest_fd, w->dir, 0755) == 0;
        if (!fresh && errno != EEXIST) {
                r = error_set(err, errno, "ingest ref \"%s\": create", ref);
                goto fail;
        }
        w->dir_fd = openat(cs->ingest_fd, w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (w->dir_fd < 0) {
                r = error_set(err, errno, "ingest ref \"%s\": open", ref);
                goto fail;
        }
        if (!fresh) {
                _cleanup_free_ char *stored = read_small(w->dir_fd, "ref", 64 * 1024);
                if (!stored) {
                        /* Crashed between mkdir and writing ref: treat as fresh. */
                        fresh = true;
                } else if (strcmp(stored, ref) != 0) {
                        r = error_set(err, EIO, "ingest ref \"%s\": ref hash collides with \"%s\"", ref, stored);
                        goto fail;
                }
        }
        w->data_fd = openat(w->dir_fd, "data", O_RDWR | O_CREAT | O_CLOEXEC | (fresh ? O_TRUNC : 0), 0644);
        if (w->data_fd < 0) {
                r = error_set(err, errno, "ingest ref \"%s\": open data", ref);
                goto fail;
        }
        if (fresh) {
                int64_t now = now_ns();
                w->started_at = w->updated_at = now;
                if ((r = write_i64(w->dir_fd, "startedat", now)) < 0 ||
                    (r = write_i64(w->dir_fd, "updatedat", now)) < 0 ||
                    (total > 0 && (r = write_i64(w->dir_fd, "total", total)) < 0) ||
                    /* ref last: its presence marks a complete ingest header. */
                    (r = write_small(w->dir_fd, "ref", ref)) < 0) {
                        r = error_set(err, -r, "ingest ref \"%s\": write", ref);
                        goto fail;
                }
        } else {
                w->started_at = read_i64(w->dir_fd, "startedat");
                w->updated_at = read_i64(w->dir_fd, "updatedat");
                r = rehash(w, err);
                if (r < 0)
                        goto fail;
        }
        w->total = total > 0 ? total : read_i64(w->dir_fd, "total");
        if (total > 0 && !fresh)
                (void)write_i64(w->dir_fd, "total", total);
        *ret = w;
        return 0;
fail:
        ref_unlock(cs, ref);
        writer_free(w);
        return r;
}

int content_writer_write(struct content_writer *w, const void *data, size_t n, struct error **err)
{
        const char *p = data;
        size_t left = n;
        while (left > 0) {
                ssize_t k = pwrite(w->data_fd, p, left, w->offset);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return error_set(err, errno, "ingest ref \"%s\": write", w->ref);
                }
                digester_update(w->md, p, (size_t)k);
                w->offset += k;
                p += k;
                left -= (size_t)k;
        }
        w->updated_at = now_ns();
        return 0;
}

int content_writer_truncate(struct content_writer *w, int64_t size, struct error **err)
{
        if (size != 0)
                return error_set(err, EINVAL, "truncate: unsupported size %" PRId64, size);
        if (ftruncate(w->data_fd, 0) < 0)
                return error_set(err, errno, "ingest ref \"%s\": truncate", w->ref);
        digester_free(w->md);
        w->md = digester_new();
        w->offset = 0;
        w->updated_at = now_ns();
        return 0;
}

int64_t content_writer_offset(const struct content_writer *w)
{
        return w->offset;
}

char *content_writer_digest(const struct content_writer *w)
{
        return digester_digest(w->md);
}

void content_writer_status(const struct content_writer *w, struct content_status *st)
{
        st->ref = xstrdup(w->ref);
        st->offset = w->offset;
        st->total = w->total;
        st->started_at = w->started_at;
        st->updated_at = w->updated_at;
}

static int remove_ingest_dir(int ingest_fd, const char *dir)
{
        static const char *const files[] = {"data",      "ref",      "startedat",      "updatedat",      "total",
                                            ".data.tmp", ".ref.tmp", ".startedat.tmp", ".updatedat.tmp", ".total.tmp"};
        _cleanup_close_ int dfd = openat(ingest_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        for (size_t i = 0; i < ELEMENTSOF(files); i++)
                (void)unlinkat(dfd, files[i], 0);
        if (unlinkat(ingest_fd, dir, AT_REMOVEDIR) < 0)
                return -errno;
        return 0;
}

int content_writer_commit(struct content_writer *w, int64_t size, const char *expected, char **ret_digest,
                          struct error **err)
{
        struct content_store *cs = w->cs;
        int r;
        if (size > 0 && size != w->offset)
                return error_set(err, EBUSY, "unexpected commit size %" PRId64 ", expected %" PRId64, w->offset, size);
        _cleanup_free_ char *dg = content_writer_digest(w);
        if (expected && expected[0] && strcmp(expected, dg) != 0)
                return error_set(err, EBUSY, "unexpected commit digest %s, expected %s", dg, expected);
        if (fsync(w->data_fd) < 0)
                return error_set(err, errno, "ingest ref \"%s\": sync", w->ref);
        (void)fchmod(w->data_fd, 0444);
        /* RENAME_NOREPLACE: an existing blob wins and is reported as AlreadyExists. */
        r = renameat2(w->dir_fd, "data", cs->blobs_fd, dg + 7, RENAME_NOREPLACE);
        if (r < 0 && errno == EEXIST) {
                (void)remove_ingest_dir(cs->ingest_fd, w->dir);
                return error_set(err, EEXIST, "content %s", dg);
        }
        if (r < 0)
                return error_set(err, errno, "content %s: commit rename", dg);
        (void)fsync(cs->blobs_fd);
        (void)remove_ingest_dir(cs->ingest_fd, w->dir);
        if (ret_digest)
                *ret_digest = TAKE_PTR(dg);
        return 0;
}

void content_writer_close(struct content_writer *w)
{
        if (!w)
                return;
        if (w->dir_fd >= 0 && w->updated_at)
                (void)write_i64(w->dir_fd, "updatedat", w->updated_at);
        ref_unlock(w->cs, w->ref);
        writer_free(w);
}

/* --- ingests --- */

static int status_from_dir(struct content_store *cs, const char *dir, struct content_status *st)
{
        struct stat sb;
        _cleanup_close_ int dfd = openat(cs->ingest_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        char *ref = read_small(dfd, "ref", 64 * 1024);
        if (!ref)
                return -ENOENT;
        st->ref = ref;
        st->offset = fstatat(dfd, "data", &sb, 0) == 0 ? sb.st_size : 0;
        st->total = read_i64(dfd, "total");
        st->started_at = read_i64(dfd, "startedat");
        st->updated_at = read_i64(dfd, "updatedat");
        if (fstatat(dfd, "data", &sb, 0) == 0 && stat_mtime_ns(&sb) > st->updated_at)
                st->updated_at = stat_mtime_ns(&sb);
        return 0;
}

int content_ingest_status(struct content_store *cs, const char *ref, struct content_status *ret, struct error **err)
{
        _cleanup_free_ char *dir = sha256_hex_of(ref, strlen(ref));
        int r = status_from_dir(cs, dir, ret);
        if (r < 0 || strcmp(ret->ref, ref) != 0) {
                if (r == 0)
                        content_status_clear(ret);
                return error_set(err, ENOENT, "ingest ref \"%s\"", ref);
        }
        return 0;
}

int content_ingest_abort(struct content_store *cs, const char *ref, struct error **err)
{
        _cleanup_free_ char *dir = sha256_hex_of(ref, strlen(ref));
        int r = ref_lock(cs, ref, err);
        if (r < 0)
                return r;
        r = remove_ingest_dir(cs->ingest_fd, dir);
        ref_unlock(cs, ref);
        if (r == -ENOENT)
                return error_set(err, ENOENT, "ingest ref \"%s\"", ref);
        if (r < 0)
                return error_set(err, -r, "ingest ref \"%s\": abort", ref);
        return 0;
}

int content_ingest_walk(struct content_store *cs, content_status_fn fn, void *userdata, struct error **err)
{
        int fd = openat(cs->ingest_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return error_set(err, errno, "ingest walk");
        _cleanup_closedir_ DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return error_set(err, errno, "ingest walk");
        }
        struct dirent *de;
        while ((de = readdir(d))) {
                struct content_status st = {0};
                if (de->d_name[0] == '.')
                        continue;
                if (status_from_dir(cs, de->d_name, &st) < 0)
                        continue;
                int r = fn(&st, userdata);
                content_status_clear(&st);
                if (r != 0)
                        return r;
        }
        return 0;
}

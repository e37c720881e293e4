/* Layer apply: normal trees, compression, whiteouts, and hostile tars that must be rejected or confined. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <isa-l/igzip_lib.h>
#include <openssl/evp.h>
#include <zstd.h>

#include "image/apply.h"
#include "util/alloc.h"
#include "util/cleanup.h"

/* --- tar building --- */

enum ent_kind { E_FILE, E_DIR, E_SYMLINK, E_HARDLINK, E_FIFO, E_CHR, E_BLK, E_END };

struct ent {
        enum ent_kind kind;
        const char *path;
        const char *data_or_target; /* file content, symlink target or hard link target */
        mode_t mode;
        int64_t size; /* -1: strlen(data) */
        unsigned uid, gid;
        time_t mtime;
        const char *xattr_key, *xattr_val;
};

struct buf {
        uint8_t *p;
        size_t len, cap;
};

static void buf_add(struct buf *b, const void *p, size_t n)
{
        if (b->len + n > b->cap) {
                b->cap = (b->len + n) * 2;
                b->p = xrealloc(b->p, b->cap);
        }
        memcpy(b->p + b->len, p, n);
        b->len += n;
}

static la_ssize_t write_cb(struct archive *ar, void *data, const void *p, size_t n)
{
        (void)ar;
        buf_add(data, p, n);
        return (la_ssize_t)n;
}

static struct buf make_tar(const struct ent *ents)
{
        struct buf b = {0};
        struct archive *ar = archive_write_new();
        assert_non_null(ar);
        assert_int_equal(archive_write_set_format_pax_restricted(ar), ARCHIVE_OK);
        assert_int_equal(archive_write_set_bytes_in_last_block(ar, 1), ARCHIVE_OK);
        assert_int_equal(archive_write_open(ar, &b, NULL, write_cb, NULL), ARCHIVE_OK);
        for (const struct ent *e = ents; e->kind != E_END; e++) {
                struct archive_entry *ae = archive_entry_new();
                archive_entry_set_pathname(ae, e->path);
                archive_entry_set_uid(ae, e->uid);
                archive_entry_set_gid(ae, e->gid);
                archive_entry_set_mtime(ae, e->mtime ? e->mtime : 1000000000, 0);
                mode_t perm = e->mode ? e->mode : 0644;
                size_t size = 0;
                switch (e->kind) {
                case E_FILE:
                        size = e->size >= 0 && e->size ? (size_t)e->size
                                                       : (e->data_or_target ? strlen(e->data_or_target) : 0);
                        archive_entry_set_filetype(ae, AE_IFREG);
                        archive_entry_set_size(ae, (la_int64_t)size);
                        break;
                case E_DIR:
                        archive_entry_set_filetype(ae, AE_IFDIR);
                        if (!e->mode)
                                perm = 0755;
                        break;
                case E_SYMLINK:
                        archive_entry_set_filetype(ae, AE_IFLNK);
                        archive_entry_set_symlink(ae, e->data_or_target);
                        perm = 0777;
                        break;
                case E_HARDLINK:
                        archive_entry_set_filetype(ae, AE_IFREG);
                        archive_entry_set_hardlink(ae, e->data_or_target);
                        break;
                case E_FIFO:
                        archive_entry_set_filetype(ae, AE_IFIFO);
                        break;
                case E_CHR:
                        archive_entry_set_filetype(ae, AE_IFCHR);
                        archive_entry_set_rdevmajor(ae, 1);
                        archive_entry_set_rdevminor(ae, 3);
                        break;
                case E_BLK:
                        archive_entry_set_filetype(ae, AE_IFBLK);
                        archive_entry_set_rdevmajor(ae, 7);
                        archive_entry_set_rdevminor(ae, 0);
                        break;
                case E_END:
                        break;
                }
                archive_entry_set_perm(ae, perm);
                if (e->xattr_key)
                        archive_entry_xattr_add_entry(ae, e->xattr_key, e->xattr_val, strlen(e->xattr_val));
                assert_int_equal(archive_write_header(ar, ae), ARCHIVE_OK);
                if (e->kind == E_FILE && size > 0) {
                        if (e->data_or_target) {
                                assert_int_equal(archive_write_data(ar, e->data_or_target, size), (la_ssize_t)size);
                        } else {
                                _cleanup_free_ char *zeros = xcalloc(1, size);
                                assert_int_equal(archive_write_data(ar, zeros, size), (la_ssize_t)size);
                        }
                }
                archive_entry_free(ae);
        }
        assert_int_equal(archive_write_close(ar), ARCHIVE_OK);
        archive_write_free(ar);
        return b;
}

static int blob_fd(const void *p, size_t n)
{
        int fd = memfd_create("blob", MFD_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, p, n), (ssize_t)n);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        return fd;
}

static void sha256_hex(const void *p, size_t n, char out[IMAGE_DIGEST_STRLEN])
{
        unsigned char md[32];
        unsigned int len = 0;
        EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
        strcpy(out, "sha256:");
        for (int i = 0; i < 32; i++)
                sprintf(out + 7 + 2 * i, "%02x", md[i]);
}

static struct buf gzip_of(const void *p, size_t n)
{
        struct isal_zstream z;
        struct buf b = {.cap = n + n / 2 + 1024};
        b.p = xmalloc(b.cap);
        isal_deflate_init(&z);
        z.gzip_flag = IGZIP_GZIP;
        z.end_of_stream = 1;
        z.flush = NO_FLUSH;
        z.next_in = (uint8_t *)p;
        z.avail_in = (uint32_t)n;
        z.next_out = b.p;
        z.avail_out = (uint32_t)b.cap;
        assert_int_equal(isal_deflate(&z), COMP_OK);
        assert_int_equal(z.internal_state.state, ZSTATE_END);
        b.len = z.total_out;
        return b;
}

static struct buf zstd_of(const void *p, size_t n)
{
        struct buf b = {.cap = ZSTD_compressBound(n)};
        b.p = xmalloc(b.cap);
        size_t r = ZSTD_compress(b.p, b.cap, p, n, 3);
        assert_false(ZSTD_isError(r));
        b.len = r;
        return b;
}

/* --- fixture: <parent>/root, and a check that nothing else appears in <parent> --- */

struct fix {
        char parent[64];
        char root[96];
        int root_fd;
};

static int rm_rf(const char *path)
{
        _cleanup_free_ char *cmd = xasprintf("rm -rf '%s'", path);
        return system(cmd);
}

static int setup(void **state)
{
        struct fix *f = xcalloc(1, sizeof(*f));
        strcpy(f->parent, "/tmp/krill-apply-XXXXXX");
        assert_non_null(mkdtemp(f->parent));
        snprintf(f->root, sizeof(f->root), "%s/root", f->parent);
        assert_int_equal(mkdir(f->root, 0755), 0);
        f->root_fd = open(f->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(f->root_fd >= 0);
        image_apply_force_fallback(false);
        *state = f;
        return 0;
}

static void assert_parent_clean(struct fix *f)
{
        DIR *d = opendir(f->parent);
        struct dirent *de;
        int n = 0;
        assert_non_null(d);
        while ((de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                assert_string_equal(de->d_name, "root");
                n++;
        }
        closedir(d);
        assert_int_equal(n, 1);
}

static int teardown(void **state)
{
        struct fix *f = *state;
        assert_parent_clean(f);
        close(f->root_fd);
        rm_rf(f->parent);
        image_apply_force_fallback(false);
        free(f);
        return 0;
}

static int apply_ents(struct fix *f, const struct ent *ents, const struct image_apply_options *o,
                      struct image_apply_result *res, struct error **err)
{
        struct buf b = make_tar(ents);
        _cleanup_close_ int fd = blob_fd(b.p, b.len);
        free(b.p);
        return image_apply_layer(f->root_fd, fd, o, res, err);
}

static void assert_exists(struct fix *f, const char *rel, mode_t type)
{
        struct stat st;
        if (fstatat(f->root_fd, rel, &st, AT_SYMLINK_NOFOLLOW) != 0)
                fail_msg("%s: missing", rel);
        assert_int_equal(st.st_mode & S_IFMT, type);
}

static void assert_missing(struct fix *f, const char *rel)
{
        struct stat st;
        if (fstatat(f->root_fd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0)
                fail_msg("%s: exists", rel);
}

static char *read_rel(struct fix *f, const char *rel)
{
        _cleanup_close_ int fd = openat(f->root_fd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        assert_true(fd >= 0);
        char *s = xcalloc(1, 4096);
        assert_true(read(fd, s, 4095) >= 0);
        return s;
}

/* --- normal layers --- */

static const struct ent basic_tree[] = {
        {E_DIR, "./", NULL, 0755, 0, 0, 0, 0, NULL, NULL},
        {E_DIR, "bin/", NULL, 0755, 0, 0, 0, 1111111111, NULL, NULL},
        {E_FILE, "bin/sh", "#!shell\n", 04755, -1, 0, 0, 1222222222, NULL, NULL},
        {E_HARDLINK, "bin/ash", "bin/sh", 0, 0, 0, 0, 0, NULL, NULL},
        {E_SYMLINK, "bin/bash", "sh", 0, 0, 0, 0, 0, NULL, NULL},
        {E_DIR, "tmp/", NULL, 01777, 0, 0, 0, 0, NULL, NULL},
        {E_DIR, "home/user/", NULL, 02750, 0, 1000, 1000, 0, NULL, NULL},
        {E_FILE, "home/user/f", "hello", 0600, -1, 1000, 1001, 0, "user.krill", "v1"},
        {E_FIFO, "run/fifo", NULL, 0640, 0, 0, 0, 0, NULL, NULL},
        {E_CHR, "dev/null", NULL, 0666, 0, 0, 0, 0, NULL, NULL},
        {E_BLK, "dev/loop0", NULL, 0660, 0, 0, 6, 0, NULL, NULL},
        {E_FILE, "big", NULL, 0644, 3 << 20, 0, 0, 0, NULL, NULL},
        {E_END, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL},
};

static void test_hostile_absolute_and_dotdot_confined_fwd(void **state);

static void test_apply_basic_tree(void **state)
{
        struct fix *f = *state;
        struct image_apply_result res;
        struct error *err = NULL;
        struct stat st, st2;
        char want[IMAGE_DIGEST_STRLEN];
        struct buf b = make_tar(basic_tree);
        _cleanup_close_ int fd = blob_fd(b.p, b.len);

        sha256_hex(b.p, b.len, want);
        assert_int_equal(image_apply_layer(f->root_fd, fd, NULL, &res, &err), 0);
        assert_null(err);
        assert_string_equal(res.diff_id, want);
        assert_int_equal(res.size, b.len);
        assert_int_equal(res.compression, IMAGE_COMPRESSION_NONE);
        assert_int_equal(res.entries, 12);
        free(b.p);

        _cleanup_free_ char *sh = read_rel(f, "bin/sh");
        assert_string_equal(sh, "#!shell\n");
        assert_int_equal(fstatat(f->root_fd, "bin/sh", &st, AT_SYMLINK_NOFOLLOW), 0);
        assert_int_equal(fstatat(f->root_fd, "bin/ash", &st2, AT_SYMLINK_NOFOLLOW), 0);
        assert_int_equal(st.st_ino, st2.st_ino);
        assert_int_equal(st.st_nlink, 2);
        assert_int_equal(st.st_mtim.tv_sec, 1222222222);
        if (geteuid() == 0)
                assert_int_equal(st.st_mode & 07777, 04755);

        char link[64] = {0};
        assert_int_equal(readlinkat(f->root_fd, "bin/bash", link, sizeof(link) - 1), 2);
        assert_string_equal(link, "sh");

        assert_int_equal(fstatat(f->root_fd, "bin", &st, 0), 0);
        assert_int_equal(st.st_mtim.tv_sec, 1111111111); /* set after its contents */
        assert_int_equal(fstatat(f->root_fd, "tmp", &st, 0), 0);
        assert_int_equal(st.st_mode & 07777, 01777);
        assert_exists(f, "run", S_IFDIR); /* implicit parent */
        assert_exists(f, "run/fifo", S_IFIFO);
        assert_int_equal(fstatat(f->root_fd, "big", &st, 0), 0);
        assert_int_equal(st.st_size, 3 << 20);

        if (geteuid() == 0) {
                assert_int_equal(fstatat(f->root_fd, "home/user", &st, 0), 0);
                assert_int_equal(st.st_mode & 07777, 02750);
                assert_int_equal(st.st_uid, 1000);
                assert_int_equal(fstatat(f->root_fd, "home/user/f", &st, 0), 0);
                assert_int_equal(st.st_uid, 1000);
                assert_int_equal(st.st_gid, 1001);
                assert_int_equal(fstatat(f->root_fd, "dev/null", &st, AT_SYMLINK_NOFOLLOW), 0);
                assert_true(S_ISCHR(st.st_mode));
                assert_int_equal(major(st.st_rdev), 1);
                assert_int_equal(minor(st.st_rdev), 3);
                assert_exists(f, "dev/loop0", S_IFBLK);
        }
        char val[16] = {0};
        _cleanup_free_ char *p = xasprintf("%s/home/user/f", f->root);
        ssize_t n = getxattr(p, "user.krill", val, sizeof(val));
        if (n >= 0) /* some filesystems have no user xattrs */
                assert_string_equal(val, "v1");
}

/* The same tree through the no-openat2 resolver. */
static void test_apply_basic_tree_fallback(void **state)
{
        image_apply_force_fallback(true);
        test_apply_basic_tree(state);
        test_hostile_absolute_and_dotdot_confined_fwd(state);
}

static void test_apply_compressed_same_diff_id(void **state)
{
        struct fix *f = *state;
        struct error *err = NULL;
        struct image_apply_result r1, r2, r3, r4;
        static const struct ent ents[] = {
                {E_FILE, "a", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0644, -1, 0, 0, 0, NULL, NULL},
                {E_FILE, "z", NULL, 0644, 5 << 20, 0, 0, 0, NULL, NULL},
                {E_END, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL},
        };
        struct buf tar = make_tar(ents);
        struct buf gz = gzip_of(tar.p, tar.len);
        struct buf zs = zstd_of(tar.p, tar.len);
        /* Two gzip members concatenated (Go reads them as one stream). */
        struct buf gz1 = gzip_of(tar.p, 1000), gz2 = gzip_of(tar.p + 1000, tar.len - 1000);
        struct buf multi = {0};
        buf_add(&multi, gz1.p, gz1.len);
        buf_add(&multi, gz2.p, gz2.len);

        _cleanup_close_ int f1 = blob_fd(tar.p, tar.len), f2 = blob_fd(gz.p, gz.len), f3 = blob_fd(zs.p, zs.len),
                            f4 = blob_fd(multi.p, multi.len);
        assert_int_equal(image_apply_layer(f->root_fd, f1, NULL, &r1, &err), 0);
        assert_int_equal(image_apply_layer(f->root_fd, f2, NULL, &r2, &err), 0);
        assert_int_equal(image_apply_layer(f->root_fd, f3, NULL, &r3, &err), 0);
        assert_int_equal(image_apply_layer(f->root_fd, f4, NULL, &r4, &err), 0);
        assert_null(err);
        assert_int_equal(r2.compression, IMAGE_COMPRESSION_GZIP);
        assert_int_equal(r3.compression, IMAGE_COMPRESSION_ZSTD);
        assert_string_equal(r1.diff_id, r2.diff_id);
        assert_string_equal(r1.diff_id, r3.diff_id);
        assert_string_equal(r1.diff_id, r4.diff_id);
        assert_int_equal(r4.size, tar.len);
        _cleanup_free_ char *a = read_rel(f, "a");
        assert_string_equal(a, ents[0].data_or_target);

        /* Corrupt and truncated streams fail with EINVAL. */
        gz.p[gz.len / 2] ^= 0xff;
        gz.p[gz.len / 2 + 1] ^= 0xff;
        _cleanup_close_ int f5 = blob_fd(gz.p, gz.len), f6 = blob_fd(zs.p, zs.len / 2);
        assert_int_equal(image_apply_layer(f->root_fd, f5, NULL, &r1, &err), -EINVAL);
        error_free(&err);
        assert_int_equal(image_apply_layer(f->root_fd, f6, NULL, &r1, &err), -EINVAL);
        error_free(&err);
        free(tar.p);
        free(gz.p);
        free(zs.p);
        free(gz1.p);
        free(gz2.p);
        free(multi.p);
}

static void test_apply_overlay_whiteouts(void **state)
{
        struct fix *f = *state;
        struct error *err = NULL;
        struct image_apply_options o = {.overlay = true, .allow_devices = true};
        static const struct ent ents[] = {
                {E_DIR, "etc/", NULL, 0755, 0, 0, 0, 0, NULL, NULL},
                {E_FILE, "etc/.wh.passwd", "", 0644, -1, 0, 0, 0, NULL, NULL},
                {E_DIR, "opq/", NULL, 0755, 0, 0, 0, 0, NULL, NULL},
                {E_FILE, "opq/.wh..wh..opq", "", 0644, -1, 0, 0, 0, NULL, NULL},
                {E_FILE, "opq/new", "n", 0644, -1, 0, 0, 0, NULL, NULL},
                {E_END, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL},
        };
        struct stat st;

        if (geteuid() != 0)
                skip(); /* mknod and trusted.* xattrs need root */
        assert_int_equal(apply_ents(f, ents, &o, NULL, &err), 0);
        assert_null(err);
        assert_int_equal(fstatat(f->root_fd, "etc/passwd", &st, AT_SYMLINK_NOFOLLOW), 0);
        assert_true(S_ISCHR(st.st_mode));
        assert_int_equal(st.st_rdev, makedev(0, 0));
        assert_missing(f, "etc/.wh.passwd");
        assert_missing(f, "opq/.wh..wh..opq");
        _cleanup_free_ char *p = xasprintf("%s/opq", f->root);
        char v[4] = {0};
        assert_int_equal(getxattr(p, "trusted.overlay.opaque", v, sizeof(v)), 1);
        assert_string_equal(v, "y");
        assert_exists(f, "opq/new", S_IFREG);
}

static void test_apply_overlay_inherits_parent_dirs(void **state)
{
        struct fix *f = *state;
        struct error *err = NULL;
        static const struct ent ents[] = {
                {E_FILE, "tmp/x", "x", 0644, -1, 0, 0, 0, NULL, NULL},
                {E_FILE, "new/y", "y", 0644, -1, 0, 0, 0, NULL, NULL},
                {E_END, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL},
        };
        struct stat st;
        /* the lower layer lives outside the root: <parent>/root/lower is fine for the clean check */
        _cleanup_free_ char *lower = xasprintf("%s/lower", f->root), *ltmp = xasprintf("%s/lower/tmp", f->root);
        assert_int_equal(mkdir(lower, 0755), 0);
        assert_int_equal(mkdir(ltmp, 0700), 0);
        assert_int_equal(chmod(ltmp, 01777), 0);
        if (geteuid() == 0)
                assert_int_equal(chown(ltmp, 1234, 5678), 0);
        assert_int_equal(mkdirat(f->root_fd, "upper", 0755), 0);
        _cleanup_close_ int ufd = openat(f->root_fd, "upper", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        const char *parents[] = {lower, NULL};
        struct image_apply_options o = {.overlay = true, .allow_devices = true, .parents = parents};
        struct buf b = make_tar(ents);
        _cleanup_close_ int fd = blob_fd(b.p, b.len);
        free(b.p);
        assert_int_equal(image_apply_layer(ufd, fd, &o, NULL, &err), 0);
        assert_null(err);
        assert_int_equal(fstatat(ufd, "tmp", &st, AT_SYMLINK_NOFOLLOW), 0);
        assert_int_equal(st.st_mode & 07777, 01777);
        if (geteuid() == 0) {
                assert_int_equal(st.st_uid, 1234);
                assert_int_equal(st.st_gid, 5678);
        }
        assert_int_equal(fstatat(ufd, "new", &st, AT_SYMLINK_NOFOLLOW), 0);
        assert_int_equal(st.st_mode & 07777, 0755);
}

/* --- hard links to files of lower layers (overlay upper dirs) --- */

static int write_file_at(int dfd, const char *rel, const char *data, mode_t mode)
{
        _cleanup_close_ int fd = openat(dfd, rel, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (fd < 0)
                return -1;
        if (write(fd, data, strlen(data)) != (ssize_t)strlen(data))
                return -1;
        return fchmod(fd, mode);
}

/* <root>/l1 (farthest), <root>/l2 (nearest) and the upper dir <root>/upper. */
struct lowers {
        char *l1, *l2;
        int l1fd, l2fd, ufd;
};

static void lowers_make(struct fix *f, struct lowers *l)
{
        l->l1 = xasprintf("%s/l1", f->root);
        l->l2 = xasprintf("%s/l2", f->root);
        assert_int_equal(mkdir(l->l1, 0755), 0);
        assert_int_equal(mkdir(l->l2, 0755), 0);
        assert_int_equal(mkdirat(f->root_fd, "upper", 0755), 0);
        l->l1fd = open(l->l1, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        l->l2fd = open(l->l2, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        l->ufd = openat(f->root_fd, "upper", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(l->l1fd >= 0 && l->l2fd >= 0 && l->ufd >= 0);
}

static void lowers_free(struct lowers *l)
{
        free(l->l1);
        free(l->l2);
        close(l->l1fd);
        close(l->l2fd);
        close(l->ufd);
}

static int apply_upper(struct lowers *l, const struct ent *ents, struct error **err)
{
        const char *parents[] = {l->l2, l->l1, NULL};
        struct image_apply_options o = {.overlay = true, .allow_devices = true, .parents = parents};
        struct buf b = make_tar(ents);
        _cleanup_close_ int fd = blob_fd(b.p, b.len);
        free(b.p);
        return image_apply_layer(l->ufd, fd, &o, NULL, err);
}

static void test_overlay_hardlink_to_lower_copied_up(void **state)
{
        struct fix *f = *state;
        struct lowers l;
        struct error *err = NULL;
        struct stat a, b, lo;
        static const struct ent ents[] = {
                {E_HARDLINK, "usr/bin/tool2", "usr/bin/tool", 0, 0, 0, 0, 0, NULL, NULL},
                {E_HARDLINK, "top-link", "/usr/bin/shadowed", 0, 0, 0, 0, 0, NULL, NULL},
                {E_HARDLINK, "sl2", "usr/sl", 0, 0, 0, 0, 0, NULL, NULL},
                {E_END, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL},
        };
        lowers_make(f, &l);
        assert_int_equal(mkdirat(l.l1fd, "usr", 0750), 0);
        assert_int_equal(mkdirat(l.l1fd, "usr/bin", 0711), 0);
        assert_int_equal(write_file_at(l.l1fd, "usr/bin/tool", "TOOL", 04751), 0);
        assert_int_equal(write_file_at(l.l1fd, "usr/bin/shadowed", "old", 0644), 0);
        assert_int_equal(symlinkat("bin/tool", l.l1fd, "usr/sl"), 0);
        _cleanup_free_ char *tp = xasprintf("%s/usr/bin/tool", l.l1);
        (void)setxattr(tp, "user.krill", "v1", 2, 0); /* tmpfs before 6.6 has no user.* */
        struct timespec ts[2] = {{1000, 0}, {1234567890, 5}};
        assert_int_equal(utimensat(l.l1fd, "usr/bin/tool", ts, 0), 0);
        /* the nearer layer's version wins */
        assert_int_equal(mkdirat(l.l2fd, "usr", 0755), 0);
        assert_int_equal(mkdirat(l.l2fd, "usr/bin", 0755), 0);
        assert_int_equal(write_file_at(l.l2fd, "usr/bin/shadowed", "new", 0600), 0);
        assert_int_equal(fstatat(l.l1fd, "usr/bin/tool", &lo, 0), 0);

        assert_int_equal(apply_upper(&l, ents, &err), 0);
        assert_null(err);
        assert_int_equal(fstatat(l.ufd, "usr/bin/tool", &a, AT_SYMLINK_NOFOLLOW), 0);
        assert_int_equal(fstatat(l.ufd, "usr/bin/tool2", &b, AT_SYMLINK_NOFOLLOW), 0);
        assert_int_equal(a.st_ino, b.st_ino);
        assert_int_equal(a.st_nlink, 2);
        assert_true(a.st_ino != lo.st_ino);
        assert_int_equal(a.st_mode & 07777, 04751);
        assert_int_equal(a.st_size, 4);
        assert_int_equal(a.st_mtim.tv_sec, 1234567890);
        assert_int_equal(a.st_mtim.tv_nsec, 5);
        _cleanup_close_ int fd = openat(l.ufd, "usr/bin/tool2", O_RDONLY | O_CLOEXEC);
        char buf[16] = {0};
        assert_int_equal(read(fd, buf, sizeof(buf)), 4);
        assert_string_equal(buf, "TOOL");
        char v[8] = {0};
        _cleanup_free_ char *up = xasprintf("%s/upper/usr/bin/tool", f->root);
        if (getxattr(tp, "user.krill", v, sizeof(v)) == 2) {
                memset(v, 0, sizeof(v));
                assert_int_equal(getxattr(up, "user.krill", v, sizeof(v)), 2);
                assert_string_equal(v, "v1");
        }
        /* copied-up parents take the nearest lower layer's attributes */
        assert_int_equal(fstatat(l.ufd, "usr", &a, AT_SYMLINK_NOFOLLOW), 0);
        assert_int_equal(a.st_mode & 07777, 0755);
        fd = (close(fd), openat(l.ufd, "top-link", O_RDONLY | O_CLOEXEC));
        memset(buf, 0, sizeof(buf));
        assert_int_equal(read(fd, buf, sizeof(buf)), 3);
        assert_string_equal(buf, "new");
        assert_int_equal(fstatat(l.ufd, "usr/bin/shadowed", &a, AT_SYMLINK_NOFOLLOW), 0);
        assert_int_equal(fstatat(l.ufd, "top-link", &b, AT_SYMLINK_NOFOLLOW), 0);
        assert_int_equal(a.st_ino, b.st_ino);
        assert_int_equal(a.st_mode & 07777, 0600);
        /* a hard link to a lower symlink links a copy of the symlink itself */
        assert_int_equal(fstatat(l.ufd, "sl2", &a, AT_SYMLINK_NOFOLLOW), 0);
        assert_true(S_ISLNK(a.st_mode));
        assert_int_equal(readlinkat(l.ufd, "sl2", buf, sizeof(buf)), 8);
        /* the lower layers are untouched */
        assert_int_equal(fstatat(l.l1fd, "usr/bin/tool", &a, AT_SYMLINK_NOFOLLOW), 0);
        assert_int_equal(a.st_nlink, 1);
        lowers_free(&l);
}

static void test_overlay_hardlink_to_lower_hidden_or_escaping(void **state)
{
        struct fix *f = *state;
        struct lowers l;
        struct error *err = NULL;
        struct stat st_host, st;
        static const struct ent whited[] = {
                {E_HARDLINK, "h1", "gone", 0, 0, 0, 0, 0, NULL, NULL},
                {E_END, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL},
        };
        static const struct ent under_file[] = {
                {E_HARDLINK, "h2", "was-dir/f", 0, 0, 0, 0, 0, NULL, NULL},
                {E_END, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL},
        };
        static const struct ent via_symlink[] = {
                {E_HARDLINK, "h3", "etcl/passwd", 0, 0, 0, 0, 0, NULL, NULL},
                {E_END, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL},
        };
        static const struct ent to_dir[] = {
                {E_HARDLINK, "h4", "adir", 0, 0, 0, 0, 0, NULL, NULL},
                {E_END, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL},
        };
        static const struct ent dotdot[] = {
                {E_HARDLINK, "h5", "../../../../../../etc/passwd", 0, 0, 0, 0, 0, NULL, NULL},
                {E_END, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL},
        };
        assert_int_equal(stat("/etc/passwd", &st_host), 0);
        lowers_make(f, &l);
        assert_int_equal(write_file_at(l.l1fd, "gone", "x", 0644), 0);
        assert_int_equal(mkdirat(l.l1fd, "was-dir", 0755), 0);
        assert_int_equal(write_file_at(l.l1fd, "was-dir/f", "x", 0644), 0);
        assert_int_equal(write_file_at(l.l2fd, "was-dir", "now a file", 0644), 0);
        assert_int_equal(symlinkat("/etc", l.l2fd, "etcl"), 0);
        assert_int_equal(mkdirat(l.l1fd, "adir", 0755), 0);
        bool root = geteuid() == 0;
        if (root)
                assert_int_equal(mknodat(l.l2fd, "gone", S_IFCHR | 0, makedev(0, 0)), 0);

        assert_int_equal(apply_upper(&l, whited, &err), root ? -ENOENT : 0);
        error_free(&err);
        assert_int_equal(apply_upper(&l, under_file, &err), -ENOENT);
        error_free(&err);
        assert_int_equal(apply_upper(&l, via_symlink, &err), -ENOENT);
        error_free(&err);
        assert_int_equal(apply_upper(&l, to_dir, &err), -EPERM);
        error_free(&err);
        assert_int_equal(apply_upper(&l, dotdot, &err), -ENOENT);
        error_free(&err);
        assert_int_equal(fstatat(l.ufd, "h2", &st, AT_SYMLINK_NOFOLLOW), -1);
        assert_int_equal(fstatat(l.ufd, "h3", &st, AT_SYMLINK_NOFOLLOW), -1);
        assert_int_equal(fstatat(l.ufd, "etcl", &st, AT_SYMLINK_NOFOLLOW), -1);
        assert_int_equal(fstatat(l.ufd, "h5", &st, AT_SYMLINK_NOFOLLOW), -1);
        assert_int_equal(stat("/etc/passwd", &st), 0);
        assert_int_equal(st.st_nlink, st_host.st_nlink);
        lowers_free(&l);
}

/* Overlay applies skip a chown/chmod that would change nothing on a fresh inode; whatever differs from a
 * fresh inode's owner and mode (umask-masked bits, special bits, other owners, a setgid parent, an entry
 * replacing an earlier one) must still be set. */
static void test_overlay_modes_and_owners_exact(void **state)
{
        struct fix *f = *state;
        struct error *err = NULL;
        struct stat st;
        static const struct ent ents[] = {
                {E_FILE, "plain", "p", 0644, -1, 0, 0, 0, NULL, NULL},
                {E_FILE, "wide", "w", 0666, -1, 0, 0, 0, NULL, NULL},
                {E_FILE, "ro", "r", 0400, -1, 0, 0, 0, NULL, NULL},
                {E_FILE, "grp", "g", 0640, -1, 0, 1234, 0, NULL, NULL},
                {E_FILE, "usr", "u", 0755, -1, 4321, 0, 0, NULL, NULL},
                {E_FILE, "suid", "s", 04755, -1, 0, 0, 0, NULL, NULL},
                {E_DIR, "sg/", NULL, 02775, 0, 0, 1234, 0, NULL, NULL},
                {E_FILE, "sg/f", "f", 0644, -1, 0, 0, 0, NULL, NULL},
                {E_DIR, "sg/d/", NULL, 0755, 0, 0, 0, 0, NULL, NULL},
                {E_DIR, "d/", NULL, 0700, 0, 0, 0, 0, NULL, NULL},
                {E_DIR, "d/", NULL, 0751, 0, 0, 0, 0, NULL, NULL},
                {E_FILE, "twice", "1", 0600, -1, 0, 0, 0, NULL, NULL},
                {E_FILE, "twice", "2", 0644, -1, 0, 0, 0, NULL, NULL},
                {E_FIFO, "fifo", NULL, 0620, 0, 0, 0, 0, NULL, NULL},
                {E_END, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL},
        };
        static const struct {
                const char *path;
                mode_t mode;
                uid_t uid;
                gid_t gid;
        } want[] = {
                {"plain", 0644, 0, 0}, {"wide", 0666, 0, 0}, {"ro", 0400, 0, 0},   {"grp", 0640, 0, 1234},
                {"usr", 0755, 4321, 0}, {"suid", 04755, 0, 0}, {"sg", 02775, 0, 1234}, {"sg/f", 0644, 0, 0},
                {"sg/d", 0755, 0, 0},   {"d", 0751, 0, 0},      {"twice", 0644, 0, 0}, {"fifo", 0620, 0, 0},
        };
        mode_t old = umask(022);
        assert_int_equal(mkdirat(f->root_fd, "upper", 0755), 0);
        _cleanup_close_ int ufd = openat(f->root_fd, "upper", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct image_apply_options o = {.overlay = true, .allow_devices = true};
        struct buf b = make_tar(ents);
        _cleanup_close_ int fd = blob_fd(b.p, b.len);
        free(b.p);
        assert_int_equal(image_apply_layer(ufd, fd, &o, NULL, &err), 0);
        umask(old);
        assert_null(err);
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
                assert_int_equal(fstatat(ufd, want[i].path, &st, AT_SYMLINK_NOFOLLOW), 0);
                if ((st.st_mode & 07777) != want[i].mode)
                        fail_msg("%s: mode %o, want %o", want[i].path, st.st_mode & 07777, want[i].mode);
                if (geteuid() == 0 && (st.st_uid != want[i].uid || st.st_gid != want[i].gid))
                        fail_msg("%s: owner %u:%u, want %u:%u", want[i].path, st.st_uid, st.st_gid, want[i].uid,
                                 want[i].gid);
        }
        _cleanup_close_ int tfd = openat(ufd, "twice", O_RDONLY | O_CLOEXEC);
        char c[4] = {0};
        assert_int_equal(read(tfd, c, sizeof(c)), 1);
        assert_string_equal(c, "2");
}

/* The threaded stream: applied through a small window it gives the same result; freed while its thread
 * waits on a full window it stops cleanly; a corrupt stream reports its error through the apply. */
static void test_layer_stream(void **state)
{
        struct fix *f = *state;
        struct error *err = NULL;
        struct image_apply_result res;
        char want[IMAGE_DIGEST_STRLEN];
        static const struct ent big[] = {
                {E_FILE, "big1", NULL, 0644, 5 << 20, 0, 0, 0, NULL, NULL},
                {E_FILE, "big2", NULL, 0644, 3 << 20, 0, 0, 0, NULL, NULL},
                {E_END, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL},
        };
        struct buf t = make_tar(big);
        struct buf g = gzip_of(t.p, t.len);
        sha256_hex(t.p, t.len, want);

        _cleanup_close_ int fd = blob_fd(g.p, g.len);
        struct image_layer_stream *s = NULL;
        assert_int_equal(image_layer_stream_start(fd, 0, 0, &s, &err), 0);
        assert_int_equal(image_apply_layer_stream(f->root_fd, s, NULL, &res, &err), 0);
        assert_null(err);
        assert_string_equal(res.diff_id, want);
        assert_int_equal(res.size, t.len);
        assert_int_equal(res.compression, IMAGE_COMPRESSION_GZIP);
        s = image_layer_stream_free(s);

        /* abandoned after one buffer: the thread is blocked on the full 2-buffer window */
        _cleanup_close_ int fd2 = blob_fd(g.p, g.len);
        const void *p = NULL;
        assert_int_equal(image_layer_stream_start(fd2, 0, 2u << 20, &s, &err), 0);
        assert_true(image_layer_stream_next(s, &p, &err) > 0);
        assert_null(image_layer_stream_finish(s));
        s = image_layer_stream_free(s);

        /* corrupt data in the middle of the gzip stream */
        g.p[g.len / 2] ^= 0xff;
        g.p[g.len / 2 + 1] ^= 0xff;
        _cleanup_close_ int fd3 = blob_fd(g.p, g.len);
        assert_int_equal(image_layer_stream_start(fd3, 0, 4u << 20, &s, &err), 0);
        assert_int_equal(image_apply_layer_stream(f->root_fd, s, NULL, &res, &err), -EINVAL);
        assert_non_null(err);
        error_free(&err);
        s = image_layer_stream_free(s);
        free(t.p);
        free(g.p);
}

static void test_apply_native_whiteouts(void **state)
{
        struct fix *f = *state;
        struct error *err = NULL;
        struct image_apply_options o = {.overlay = false, .allow_devices = true};
        static const struct ent l1[] = {
                {E_FILE, "a/x", "x", 0644, -1, 0, 0, 0, NULL, NULL},
                {E_FILE, "a/y", "y", 0644, -1, 0, 0, 0, NULL, NULL},
                {E_DIR, "b/c/", NULL, 0755, 0, 0, 0, 0, NULL, NULL},
                {E_FILE, "keep", "k", 0644, -1, 0, 0, 0, NULL, NULL},
                {E_END, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL},
        };
        static const struct ent l2[] = {
                {E_FILE, "a/z", "z", 0644, -1, 0, 0, 0, NULL, NULL},
                {E_FILE, "a/.wh..wh..opq", "", 0644, -1, 0, 0, 0, NULL, NULL},
                {E_FILE, ".wh.b", "", 0644, -1, 0, 0, 0, NULL, NULL},
                {E_END, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL},
        };
        assert_int_equal(apply_ents(f, l1, &o, NULL, &err), 0);
        assert_int_equal(apply_ents(f, l2, &o, NULL, &err), 0);
        assert_null(err);
        assert_exists(f, "a/z", S_IFREG);
        assert_missing(f, "a/x");
        assert_missing(f, "a/y");
        assert_missing(f, "b");
        assert_missing(f, ".wh.b");
        assert_exists(f, "keep", S_IFREG);
}

static void test_apply_replace_file_and_dir(void **state)
{
        struct fix *f = *state;
        struct error *err = NULL;
        static const struct ent l1[] = {
                {E_FILE, "d/f", "f", 0644, -1, 0, 0, 0, NULL, NULL},
                {E_FILE, "g", "g", 0644, -1, 0, 0, 0, NULL, NULL},
                {E_END, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL},
        };
        static const struct ent l2[] = {
                {E_FILE, "d", "now a file", 0644, -1, 0, 0, 0, NULL, NULL},
                {E_DIR, "g/", NULL, 0755, 0, 0, 0, 0, NULL, NULL},
                {E_FILE, "g/inner", "i", 0644, -1, 0, 0, 0, NULL, NULL},
                {E_END, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL},
        };
        assert_int_equal(apply_ents(f, l1, NULL, NULL, &err), 0);
        assert_int_equal(apply_ents(f, l2, NULL, NULL, &err), 0);
        assert_null(err);
        assert_exists(f, "d", S_IFREG);
        _cleanup_free_ char *d = read_rel(f, "d");
        assert_string_equal(d, "now a file");
        assert_exists(f, "g", S_IFDIR);
        assert_exists(f, "g/inner", S_IFREG);
}

/* --- hostile layers --- */

static void test_hostile_absolute_and_dotdot_confined(void **state)
{
        test_hostile_absolute_and_dotdot_confined_fwd(state);
}

static void test_hostile_absolute_and_dotdot_confined_fwd(void **state)
{
        struct fix *f = *state;
        struct error *err = NULL;
        static const struct ent ents[] = {
                {E_FILE, "/abs-krill-escape", "a", 0644, -1, 0, 0, 0, NULL, NULL},
                {E_FILE, "../../dotdot-krill-escape", "b", 0644, -1, 0, 0, 0, NULL, NULL},
                {E_FILE, "x/../../../y/../dd2-krill-escape", "c", 0644, -1, 0, 0, 0, NULL, NULL},
                {E_END, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL},
        };
        assert_int_equal(apply_ents(f, ents, NULL, NULL, &err), 0);
        assert_null(err);
        assert_exists(f, "abs-krill-escape", S_IFREG);
        assert_exists(f, "dotdot-krill-escape", S_IFREG);
        assert_exists(f, "dd2-krill-escape", S_IFREG);
        assert_int_equal(access("/abs-krill-escape", F_OK), -1);
}

static void test_hostile_symlink_escape_same_layer(void **state)
{
        struct fix *f = *state;
        struct error *err = NULL;
        _cleanup_free_ char *unique = xasprintf("krill-escape-%d", getpid());
        _cleanup_free_ char *p1 = xasprintf("toroot/tmp/%s", unique);
        _cleanup_free_ char *p2 = xasprintf("up/%s", unique);
        struct ent ents[] = {
                {E_SYMLINK, "toroot", "/", 0, 0, 0, 0, 0, NULL, NULL},
                {E_FILE, p1, "through /", 0644, -1, 0, 0, 0, NULL, NULL},
                {E_SYMLINK, "up", "../../../../../../../..", 0, 0, 0, 0, 0, NULL, NULL},
                {E_FILE, p2, "through ..", 0644, -1, 0, 0, 0, NULL, NULL},
                {E_END, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL},
        };
        _cleanup_free_ char *outside = xasprintf("/tmp/%s", unique);
        _cleanup_free_ char *outside2 = xasprintf("/%s", unique);

        assert_int_equal(apply_ents(f, ents, NULL, NULL, &err), 0);
        assert_null(err);
        /* Resolved inside the root, as containerd's RootPath does. */
        assert_int_equal(access(outside, F_OK), -1);
        assert_int_equal(access(outside2, F_OK), -1);
        _cleanup_free_ char *in1 = xasprintf("tmp/%s", unique);
        assert_exists(f, in1, S_IFREG);
        assert_exists(f, unique, S_IFREG);
        assert_exists(f, "toroot", S_IFLNK);
        assert_exists(f, "up", S_IFLNK);
}

static void test_hostile_symlink_from_earlier_layer(void **state)
{
        struct fix *f = *state;
        struct error *err = NULL;
        _cleanup_free_ char *unique = xasprintf("krill-escape2-%d", getpid());
        _cleanup_free_ char *p = xasprintf("evil/%s", unique);
        _cleanup_free_ char *p2 = xasprintf("evil2/%s", unique);
        struct ent l1[] = {
                {E_SYMLINK, "evil", "/", 0, 0, 0, 0, 0, NULL, NULL},
                {E_SYMLINK, "evil2", f->parent, 0, 0, 0, 0, 0, NULL, NULL},
                {E_END, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL},
        };
        struct ent l2[] = {
                {E_FILE, p, "pwned", 0644, -1, 0, 0, 0, NULL, NULL},
                {E_END, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL},
        };
        struct ent l3[] = {
                {E_FILE, p2, "pwned", 0644, -1, 0, 0, 0, NULL, NULL},
                {E_END, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL},
        };
        _cleanup_free_ char *outside = xasprintf("/%s", unique);
        assert_int_equal(apply_ents(f, l1, NULL, NULL, &err), 0);
        assert_int_equal(apply_ents(f, l2, NULL, NULL, &err), 0);
        assert_null(err);
        assert_exists(f, unique, S_IFREG);
        assert_int_equal(access(outside, F_OK), -1);
        /* evil2 dangles inside the root: refused (never created through the host's parent, which teardown
         * checks). */
        assert_int_equal(apply_ents(f, l3, NULL, NULL, &err), -ENOENT);
        error_free(&err);
}

static void test_hostile_symlinked_parent_fallback_refused(void **state)
{
        struct fix *f = *state;
        struct error *err = NULL;
        static const struct ent ents[] = {
                {E_SYMLINK, "s", "/", 0, 0, 0, 0, 0, NULL, NULL},
                {E_FILE, "s/krill-fallback-escape", "x", 0644, -1, 0, 0, 0, NULL, NULL},
                {E_END, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL},
        };
        image_apply_force_fallback(true);
        assert_int_equal(apply_ents(f, ents, NULL, NULL, &err), -ELOOP);
        assert_non_null(err);
        error_free(&err);
        assert_int_equal(access("/krill-fallback-escape", F_OK), -1);
        assert_missing(f, "krill-fallback-escape");
}

static void test_hostile_hardlink_escapes(void **state)
{
        struct fix *f = *state;
        struct error *err = NULL;
        struct stat st_host, st;
        static const struct ent abs[] = {
                {E_HARDLINK, "h1", "/etc/passwd", 0, 0, 0, 0, 0, NULL, NULL},
                {E_END, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL},
        };
        static const struct ent dotdot[] = {
                {E_HARDLINK, "h2", "../../../../../../../../etc/passwd", 0, 0, 0, 0, 0, NULL, NULL},
                {E_END, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL},
        };
        static const struct ent via_symlink[] = {
                {E_SYMLINK, "etcl", "/etc", 0, 0, 0, 0, 0, NULL, NULL},
                {E_HARDLINK, "h3", "etcl/passwd", 0, 0, 0, 0, 0, NULL, NULL},
                {E_END, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL},
        };
        static const struct ent missing[] = {
                {E_HARDLINK, "h4", "nothing-here", 0, 0, 0, 0, 0, NULL, NULL},
                {E_END, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL},
        };
        /* A hard link to a symlink pointing outside links the symlink itself, never its target. */
        static const struct ent to_symlink[] = {
                {E_SYMLINK, "sl", "/etc/passwd", 0, 0, 0, 0, 0, NULL, NULL},
                {E_HARDLINK, "h5", "sl", 0, 0, 0, 0, 0, NULL, NULL},
                {E_END, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL},
        };
        assert_int_equal(stat("/etc/passwd", &st_host), 0);
        assert_int_equal(apply_ents(f, abs, NULL, NULL, &err), -ENOENT);
        error_free(&err);
        assert_int_equal(apply_ents(f, dotdot, NULL, NULL, &err), -ENOENT);
        error_free(&err);
        assert_int_equal(apply_ents(f, via_symlink, NULL, NULL, &err), -ENOENT);
        error_free(&err);
        assert_int_equal(apply_ents(f, missing, NULL, NULL, &err), -ENOENT);
        error_free(&err);
        assert_missing(f, "h1");
        assert_missing(f, "h2");
        assert_missing(f, "h3");
        assert_missing(f, "h4");
        assert_int_equal(apply_ents(f, to_symlink, NULL, NULL, &err), 0);
        assert_null(err);
        assert_exists(f, "h5", S_IFLNK);
        assert_int_equal(fstatat(f->root_fd, "h5", &st, AT_SYMLINK_NOFOLLOW), 0);
        assert_true(st.st_ino != st_host.st_ino);
        assert_int_equal(stat("/etc/passwd", &st), 0);
        assert_int_equal(st.st_nlink, st_host.st_nlink);
}

static void test_hostile_devices_not_allowed(void **state)
{
        struct fix *f = *state;
        struct error *err = NULL;
        struct image_apply_options o = {.allow_devices = false};
        static const struct ent chr[] = {
                {E_CHR, "mem", NULL, 0666, 0, 0, 0, 0, NULL, NULL},
                {E_END, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL},
        };
        static const struct ent blk[] = {
                {E_BLK, "disk", NULL, 0666, 0, 0, 0, 0, NULL, NULL},
                {E_END, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL},
        };
        assert_int_equal(apply_ents(f, chr, &o, NULL, &err), -EPERM);
        error_free(&err);
        assert_int_equal(apply_ents(f, blk, &o, NULL, &err), -EPERM);
        error_free(&err);
        assert_missing(f, "mem");
        assert_missing(f, "disk");
}

static void test_hostile_size_and_count_bounds(void **state)
{
        struct fix *f = *state;
        struct error *err = NULL;
        struct image_apply_options small = {.max_bytes = 8192, .allow_devices = true};
        struct image_apply_options few = {.max_entries = 3, .allow_devices = true};
        static const struct ent big[] = {
                {E_FILE, "big", NULL, 0644, 1 << 20, 0, 0, 0, NULL, NULL},
                {E_END, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL},
        };
        static const struct ent many[] = {
                {E_FILE, "1", "1", 0644, -1, 0, 0, 0, NULL, NULL}, {E_FILE, "2", "2", 0644, -1, 0, 0, 0, NULL, NULL},
                {E_FILE, "3", "3", 0644, -1, 0, 0, 0, NULL, NULL}, {E_FILE, "4", "4", 0644, -1, 0, 0, 0, NULL, NULL},
                {E_END, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL},
        };
        /* A small gzip bomb: 1 MiB of zeros compresses to about 1 KiB. */
        struct buf tar = make_tar(big);
        struct buf gz = gzip_of(tar.p, tar.len);
        _cleanup_close_ int fd = blob_fd(gz.p, gz.len);
        assert_int_equal(image_apply_layer(f->root_fd, fd, &small, NULL, &err), -EFBIG);
        error_free(&err);
        assert_int_equal(apply_ents(f, many, &few, NULL, &err), -E2BIG);
        error_free(&err);
        assert_missing(f, "4");
        free(tar.p);
        free(gz.p);
}

static void test_hostile_long_paths(void **state)
{
        struct fix *f = *state;
        struct error *err = NULL;
        char *longpath = xmalloc(PATH_MAX + 100);
        char *longname = xmalloc(NAME_MAX + 20);
        memset(longpath, 'a', PATH_MAX + 99);
        for (int i = 100; i < PATH_MAX; i += 100)
                longpath[i] = '/';
        longpath[PATH_MAX + 99] = '\0';
        memset(longname, 'b', NAME_MAX + 19);
        longname[NAME_MAX + 19] = '\0';
        struct ent e1[] = {
                {E_FILE, longpath, "x", 0644, -1, 0, 0, 0, NULL, NULL},
                {E_END, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL},
        };
        struct ent e2[] = {
                {E_FILE, longname, "x", 0644, -1, 0, 0, 0, NULL, NULL},
                {E_END, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL},
        };
        assert_int_equal(apply_ents(f, e1, NULL, NULL, &err), -ENAMETOOLONG);
        error_free(&err);
        assert_int_equal(apply_ents(f, e2, NULL, NULL, &err), -ENAMETOOLONG);
        error_free(&err);
        free(longpath);
        free(longname);
}

static void test_hostile_garbage_rejected(void **state)
{
        struct fix *f = *state;
        struct error *err = NULL;
        char junk[4096];
        for (size_t i = 0; i < sizeof(junk); i++)
                junk[i] = (char)(i * 7 + 3);
        _cleanup_close_ int fd = blob_fd(junk, sizeof(junk));
        assert_int_equal(image_apply_layer(f->root_fd, fd, NULL, NULL, &err), -EINVAL);
        assert_non_null(err);
        error_free(&err);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_apply_basic_tree, setup, teardown),
                cmocka_unit_test_setup_teardown(test_apply_basic_tree_fallback, setup, teardown),
                cmocka_unit_test_setup_teardown(test_apply_compressed_same_diff_id, setup, teardown),
                cmocka_unit_test_setup_teardown(test_apply_overlay_whiteouts, setup, teardown),
                cmocka_unit_test_setup_teardown(test_apply_overlay_inherits_parent_dirs, setup, teardown),
                cmocka_unit_test_setup_teardown(test_overlay_hardlink_to_lower_copied_up, setup, teardown),
                cmocka_unit_test_setup_teardown(test_overlay_hardlink_to_lower_hidden_or_escaping, setup, teardown),
                cmocka_unit_test_setup_teardown(test_overlay_modes_and_owners_exact, setup, teardown),
                cmocka_unit_test_setup_teardown(test_layer_stream, setup, teardown),
                cmocka_unit_test_setup_teardown(test_apply_native_whiteouts, setup, teardown),
                cmocka_unit_test_setup_teardown(test_apply_replace_file_and_dir, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hostile_absolute_and_dotdot_confined, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hostile_symlink_escape_same_layer, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hostile_symlink_from_earlier_layer, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hostile_symlinked_parent_fallback_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hostile_hardlink_escapes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hostile_devices_not_allowed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hostile_size_and_count_bounds, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hostile_long_paths, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hostile_garbage_rejected, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

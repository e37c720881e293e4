/* The layer tar reader: archives written by libarchive in each tar dialect (pax, GNU, ustar, v7) read back the same
 * through our reader and libarchive's, in pieces of every size; crafted hostile headers are refused. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "image/tar.h"
#include "util/alloc.h"
#include "util/cleanup.h"

struct mem {
        uint8_t *p;
        size_t len, cap;
};

static la_ssize_t mem_write(struct archive *a, void *ud, const void *buf, size_t n)
{
        (void)a;
        struct mem *m = ud;
        if (m->len + n > m->cap) {
                m->cap = (m->len + n) * 2;
                m->p = xrealloc(m->p, m->cap);
        }
        memcpy(m->p + m->len, buf, n);
        m->len += n;
        return (la_ssize_t)n;
}

struct spec {
        const char *path;
        mode_t type;
        mode_t perm;
        const char *link; /* symlink target or hard link source */
        size_t size;
        int64_t uid, gid;
        int64_t mtime;
        long mtime_nsec;
        const char *xattr;
        unsigned dev_major, dev_minor;
};

static const struct spec files[] = {
    {"etc/", AE_IFDIR, 0755, NULL, 0, 0, 0, 1700000000, 0, NULL, 0, 0},
    {"etc/passwd", AE_IFREG, 0644, NULL, 1234, 0, 0, 1700000001, 0, NULL, 0, 0},
    {"bin/su", AE_IFREG, 04755, NULL, 70000, 0, 0, 1700000002, 0, NULL, 0, 0},
    {"bin/sh", AE_IFLNK, 0777, "busybox", 0, 0, 0, 1700000003, 0, NULL, 0, 0},
    {"empty", AE_IFREG, 0600, NULL, 0, 1000, 1000, 1700000004, 0, NULL, 0, 0},
    {"dev/null", AE_IFCHR, 0666, NULL, 0, 0, 0, 1700000005, 0, NULL, 1, 3},
    {"dev/sda", AE_IFBLK, 0660, NULL, 0, 0, 6, 1700000005, 0, NULL, 8, 0},
    {"run/fifo", AE_IFIFO, 0644, NULL, 0, 0, 0, 1700000006, 0, NULL, 0, 0},
    {"a/very/long/path/that/goes/on/and/on/beyond/the/hundred/characters/of/the/old/name/field/"
     "of/a/tar/header/file.txt",
     AE_IFREG, 0644, NULL, 10, 0, 0, 1700000007, 0, NULL, 0, 0},
    {"link-to-passwd", AE_IFREG, 0644, "etc/passwd", 0, 0, 0, 1700000008, 0, NULL, 0, 0},
    {"big-ids", AE_IFREG, 0644, NULL, 3, 3000000, 4000000, 1700000009, 0, NULL, 0, 0},
    {"with-xattr", AE_IFREG, 0644, NULL, 5, 0, 0, 1700000010, 500000000, "user.test", 0, 0},
};

/* Dialects that can hold each entry: ustar and v7 cannot hold long names, big ids, xattrs or nanoseconds. */
static bool fits(int format, const struct spec *s)
{
        if (format == ARCHIVE_FORMAT_TAR_PAX_RESTRICTED)
                return true;
        if (s->xattr || s->mtime_nsec)
                return false;
        if (format == ARCHIVE_FORMAT_TAR_GNUTAR)
                return true;
        if (strlen(s->path) > 100 || s->uid > 07777777 || s->gid > 07777777)
                return false;
        return !(format == ARCHIVE_FORMAT_TAR && (s->type == AE_IFCHR || s->type == AE_IFBLK || s->type == AE_IFIFO));
}

static void build(int format, struct mem *m)
{
        struct archive *a = archive_write_new();
        assert_int_equal(archive_write_set_format(a, format), ARCHIVE_OK);
        assert_int_equal(archive_write_open(a, m, NULL, mem_write, NULL), ARCHIVE_OK);
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
                const struct spec *s = &files[i];
                if (!fits(format, s))
                        continue;
                struct archive_entry *e = archive_entry_new();
                archive_entry_set_pathname(e, s->path);
                archive_entry_set_filetype(e, s->type);
                archive_entry_set_perm(e, s->perm);
                archive_entry_set_uid(e, s->uid);
                archive_entry_set_gid(e, s->gid);
                archive_entry_set_mtime(e, s->mtime, s->mtime_nsec);
                if (s->type == AE_IFLNK)
                        archive_entry_set_symlink(e, s->link);
                else if (s->link)
                        archive_entry_set_hardlink(e, s->link);
                if (s->type == AE_IFCHR || s->type == AE_IFBLK) {
                        archive_entry_set_rdevmajor(e, s->dev_major);
                        archive_entry_set_rdevminor(e, s->dev_minor);
                }
                if (s->xattr)
                        archive_entry_xattr_add_entry(e, s->xattr, "v\0al", 4);
                archive_entry_set_size(e, s->type == AE_IFREG && !s->link ? (la_int64_t)s->size : 0);
                assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
                if (s->type == AE_IFREG && !s->link && s->size) {
                        uint8_t *d = xmalloc(s->size);
                        for (size_t k = 0; k < s->size; k++)
                                d[k] = (uint8_t)(k * 7 + i);
                        assert_int_equal(archive_write_data(a, d, s->size), (la_ssize_t)s->size);
                        free(d);
                }
                archive_entry_free(e);
        }
        assert_int_equal(archive_write_close(a), ARCHIVE_OK);
        archive_write_free(a);
}

struct src {
        const uint8_t *p;
        size_t len, off, piece;
};

static ssize_t src_next(void *ud, const void **buf)
{
        struct src *s = ud;
        size_t n = s->len - s->off < s->piece ? s->len - s->off : s->piece;
        *buf = s->p + s->off;
        s->off += n;
        return (ssize_t)n;
}

static enum tar_type type_of(mode_t t, const char *hardlink)
{
        if (hardlink)
                return TAR_HARDLINK;
        switch (t) {
        case AE_IFDIR:
                return TAR_DIR;
        case AE_IFLNK:
                return TAR_SYMLINK;
        case AE_IFCHR:
                return TAR_CHR;
        case AE_IFBLK:
                return TAR_BLK;
        case AE_IFIFO:
                return TAR_FIFO;
        default:
                return TAR_REG;
        }
}

static void check_format(int format)
{
        struct mem m = {0};
        build(format, &m);
        static const size_t pieces[] = {1, 7, 511, 512, 513, 4096, 1 << 20};
        for (size_t pi = 0; pi < sizeof(pieces) / sizeof(pieces[0]); pi++) {
                struct src s = {m.p, m.len, 0, pieces[pi]};
                struct tar_reader *r = tar_reader_new(src_next, &s);
                size_t count = 0;
                for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
                        const struct spec *sp = &files[i];
                        if (!fits(format, sp))
                                continue;
                        const struct tar_entry *e;
                        struct error *err = NULL;
                        assert_int_equal(tar_reader_next(r, &e, &err), 0);
                        assert_non_null(e);
                        assert_string_equal(e->path, sp->path);
                        bool hl = sp->type == AE_IFREG && sp->link;
                        assert_int_equal(e->type, type_of(sp->type, hl ? sp->link : NULL));
                        if (sp->link)
                                assert_string_equal(e->linkname, sp->link);
                        else
                                assert_null(e->linkname);
                        assert_int_equal(e->mode, sp->perm);
                        assert_int_equal(e->uid, sp->uid);
                        assert_int_equal(e->gid, sp->gid);
                        assert_int_equal(e->mtime_sec, sp->mtime);
                        assert_int_equal(e->mtime_nsec, sp->mtime_nsec);
                        if (sp->type == AE_IFCHR || sp->type == AE_IFBLK) {
                                assert_int_equal(e->devmajor, sp->dev_major);
                                assert_int_equal(e->devminor, sp->dev_minor);
                        }
                        if (sp->xattr) {
                                assert_int_equal(e->nxattrs, 1);
                                assert_string_equal(e->xattrs[0].name, sp->xattr);
                                assert_int_equal(e->xattrs[0].len, 4);
                                assert_memory_equal(e->xattrs[0].value, "v\0al", 4);
                        }
                        size_t want = sp->type == AE_IFREG && !hl ? sp->size : 0;
                        assert_int_equal(e->size, (int64_t)want);
                        /* read half of the data only: the rest must be skipped by the next call */
                        size_t got = 0;
                        const void *b;
                        ssize_t n;
                        while (got < want / 2 && (n = tar_reader_data(r, &b, &err)) > 0) {
                                for (ssize_t k = 0; k < n; k++)
                                        assert_int_equal(((const uint8_t *)b)[k], (uint8_t)((got + (size_t)k) * 7 + i));
                                got += (size_t)n;
                        }
                        if (i % 2) { /* and all of it for every other entry */
                                while ((n = tar_reader_data(r, &b, &err)) > 0)
                                        got += (size_t)n;
                                assert_int_equal(n, 0);
                                assert_int_equal(got, want);
                        }
                        count++;
                }
                const struct tar_entry *e;
                struct error *err = NULL;
                assert_int_equal(tar_reader_next(r, &e, &err), 0);
                assert_null(e);
                assert_true(count >= 6);
                tar_reader_free(r);
        }
        free(m.p);
}

static void test_tar_pax(void **state)
{
        (void)state;
        check_format(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
}

static void test_tar_gnu(void **state)
{
        (void)state;
        check_format(ARCHIVE_FORMAT_TAR_GNUTAR);
}

static void test_tar_ustar(void **state)
{
        (void)state;
        check_format(ARCHIVE_FORMAT_TAR_USTAR);
}

static void test_tar_v7(void **state)
{
        (void)state;
        check_format(ARCHIVE_FORMAT_TAR);
}

/* --- crafted headers --- */

static void octal(uint8_t *f, size_t n, uint64_t v)
{
        /* n-1 octal digits and a NUL, as tar writes them */
        f[n - 1] = '\0';
        for (size_t i = n - 1; i-- > 0; v >>= 3)
                f[i] = (uint8_t)('0' + (v & 7));
}

static void header(uint8_t *h, const char *name, char flag, uint64_t size)
{
        memset(h, 0, 512);
        memcpy(h, name, strlen(name));
        octal(h + 100, 8, 0644);
        octal(h + 108, 8, 0);
        octal(h + 116, 8, 0);
        octal(h + 124, 12, size);
        octal(h + 136, 12, 1);
        h[156] = (uint8_t)flag;
        memcpy(h + 257, "ustar\0" "00", 8);
        unsigned sum = 0;
        memset(h + 148, ' ', 8);
        for (int i = 0; i < 512; i++)
                sum += h[i];
        snprintf((char *)h + 148, 8, "%06o", sum);
}

static int read_all(const uint8_t *p, size_t len, struct error **err, size_t *entries)
{
        struct src s = {p, len, 0, 100};
        struct tar_reader *r = tar_reader_new(src_next, &s);
        const struct tar_entry *e;
        int k;
        *entries = 0;
        while ((k = tar_reader_next(r, &e, err)) == 0 && e) {
                const void *b;
                ssize_t n;
                (*entries)++;
                while ((n = tar_reader_data(r, &b, err)) > 0)
                        ;
                if (n < 0) {
                        k = (int)n;
                        break;
                }
        }
        tar_reader_free(r);
        return k;
}

static void expect_error(const uint8_t *p, size_t len, int code, const char *msg)
{
        struct error *err = NULL;
        size_t n;
        assert_int_equal(read_all(p, len, &err, &n), -code);
        assert_non_null(err);
        _cleanup_free_ char *m = error_message(err);
        if (!strstr(m, msg))
                fail_msg("error \"%s\" does not contain \"%s\"", m, msg);
        error_free(&err);
}

static void test_tar_hostile(void **state)
{
        (void)state;
        uint8_t t[512 * 8];
        size_t n;
        struct error *err = NULL;

        /* bad checksum */
        header(t, "x", '0', 0);
        t[0] = 'y';
        expect_error(t, 512, EINVAL, "checksum");
        /* a pax header larger than the limit is refused before anything is allocated */
        header(t, "pax", 'x', (uint64_t)TAR_MAX_PAX_SIZE + 1);
        expect_error(t, sizeof(t), E2BIG, "exceeds the limit");
        /* a GNU long name past its limit */
        header(t, "././@LongLink", 'L', (uint64_t)TAR_MAX_LONGNAME + 1);
        expect_error(t, sizeof(t), E2BIG, "exceeds the limit");
        /* negative base-256 size */
        header(t, "neg", '0', 0);
        memset(t + 124, 0xff, 12);
        memset(t + 148, ' ', 8);
        unsigned sum = 0;
        for (int i = 0; i < 512; i++)
                sum += t[i];
        snprintf((char *)t + 148, 8, "%06o", sum);
        expect_error(t, 512, EINVAL, "invalid tar header");
        /* data cut short */
        header(t, "short", '0', 4000);
        expect_error(t, 1024, EINVAL, "unexpected end");
        /* a header cut short */
        header(t, "x", '0', 0);
        expect_error(t, 300, EINVAL, "unexpected end");
        /* sparse files and unknown types */
        header(t, "sparse", 'S', 0);
        expect_error(t, 512, EINVAL, "unhandled tar header type");
        /* malformed pax records */
        const char *bad[] = {"5 a=b\n", "99 path=x\n", "6 path\n", "x path=y\n", "11 size=-1\n",
                             "22 GNU.sparse.major=1\n"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                size_t l = strlen(bad[i]);
                memset(t, 0, sizeof(t));
                header(t, "pax", 'x', l);
                memcpy(t + 512, bad[i], l);
                header(t + 1024, "f", '0', 0);
                expect_error(t, 512 * 4, EINVAL, i == 5 ? "sparse" : "pax");
        }
        /* a symlink without a target */
        header(t, "l", '2', 0);
        expect_error(t, 512, EINVAL, "without a target");
        /* a hard link's size field carries no data (Go's header-only types) */
        memset(t, 0, sizeof(t));
        header(t, "h", '1', 1000);
        memcpy(t + 157, "target", 6);
        memset(t + 148, ' ', 8);
        sum = 0;
        for (int i = 0; i < 512; i++)
                sum += t[i];
        snprintf((char *)t + 148, 8, "%06o", sum);
        header(t + 512, "after", '0', 0);
        assert_int_equal(read_all(t, 512 * 4, &err, &n), 0);
        assert_int_equal(n, 2);
        /* end at EOF on a block boundary, or at one zero block */
        header(t, "only", '0', 0);
        assert_int_equal(read_all(t, 512, &err, &n), 0);
        assert_int_equal(n, 1);
        memset(t + 512, 0, 512);
        assert_int_equal(read_all(t, 1024, &err, &n), 0);
        assert_int_equal(n, 1);
        /* '\0' typeflag with a trailing slash is a directory */
        header(t, "olddir/", '\0', 0);
        struct src s = {t, 512, 0, 512};
        struct tar_reader *r = tar_reader_new(src_next, &s);
        const struct tar_entry *e;
        assert_int_equal(tar_reader_next(r, &e, &err), 0);
        assert_int_equal(e->type, TAR_DIR);
        tar_reader_free(r);
}

static void test_tar_pax_overrides(void **state)
{
        (void)state;
        uint8_t t[512 * 5];
        const char *rec = "15 mtime=-1.25\n" "12 uid=4242\n" "18 path=renamed/x\n";
        memset(t, 0, sizeof(t));
        header(t, "pax", 'x', strlen(rec));
        memcpy(t + 512, rec, strlen(rec));
        header(t + 1024, "orig", '0', 0);
        struct src s = {t, sizeof(t), 0, 4096};
        struct tar_reader *r = tar_reader_new(src_next, &s);
        const struct tar_entry *e;
        struct error *err = NULL;
        assert_int_equal(tar_reader_next(r, &e, &err), 0);
        assert_non_null(e);
        assert_string_equal(e->path, "renamed/x");
        assert_int_equal(e->uid, 4242);
        assert_int_equal(e->mtime_sec, -2);
        assert_int_equal(e->mtime_nsec, 750000000);
        assert_int_equal(tar_reader_next(r, &e, &err), 0);
        assert_null(e);
        tar_reader_free(r);
}

static int mem_sink(void *ud, const void *buf, size_t n)
{
        return mem_write(NULL, ud, buf, n) == (la_ssize_t)n ? 0 : -EIO;
}

/* Entries written by our writer read back the same through libarchive and through our reader. */
static void test_tar_writer_roundtrip(void **state)
{
        (void)state;
        struct mem m = {0};
        struct tar_writer *w = tar_writer_new(mem_sink, &m);
        char longlink[300];
        memset(longlink, 'l', sizeof(longlink) - 1);
        longlink[sizeof(longlink) - 1] = '\0';
        uint8_t cap[20] = {1, 0, 0, 2, 0x20, 0, 0, 0};
        struct tar_xattr xa = {(char *)"security.capability", cap, sizeof(cap)};
        struct tar_entry es[] = {
            {.type = TAR_DIR, .path = (char *)"dir/", .mode = 0755, .mtime_sec = 1700000000},
            {.type = TAR_REG, .path = (char *)"dir/file", .mode = 04755, .uid = 5, .gid = 6, .size = 70000,
             .mtime_sec = 1700000001, .xattrs = &xa, .nxattrs = 1},
            {.type = TAR_HARDLINK, .path = (char *)"dir/hard", .linkname = (char *)"dir/file", .mode = 0644},
            {.type = TAR_SYMLINK, .path = (char *)"dir/sym", .linkname = longlink, .mode = 0777},
            {.type = TAR_CHR, .path = (char *)"dev/null", .mode = 0666, .devmajor = 1, .devminor = 3},
            {.type = TAR_FIFO, .path = (char *)"fifo", .mode = 0600},
            {.type = TAR_REG, .path = (char *)files[8].path, .mode = 0644, .uid = 3000000000LL, .gid = 7,
             .size = 1, .mtime_sec = -5},
            {.type = TAR_REG, .path = (char *)".wh.gone", .mode = 0, .size = 0},
        };
        struct error *err = NULL;
        for (size_t i = 0; i < sizeof(es) / sizeof(es[0]); i++) {
                assert_int_equal(tar_writer_header(w, &es[i], &err), 0);
                for (int64_t k = 0; k < es[i].size; k++) {
                        uint8_t b = (uint8_t)(k * 3 + i);
                        assert_int_equal(tar_writer_data(w, &b, 1, &err), 0);
                }
        }
        /* too much data, and a header while data is missing */
        assert_int_equal(tar_writer_data(w, "x", 1, &err), -EINVAL);
        error_free(&err);
        assert_int_equal(tar_writer_close(w, &err), 0);
        tar_writer_free(w);
        assert_int_equal(m.len % 512, 0);

        /* libarchive */
        struct archive *a = archive_read_new();
        archive_read_support_format_tar(a);
        assert_int_equal(archive_read_open_memory(a, m.p, m.len), ARCHIVE_OK);
        struct archive_entry *ae;
        size_t n = 0;
        while (archive_read_next_header(a, &ae) == ARCHIVE_OK) {
                const struct tar_entry *e = &es[n++];
                assert_string_equal(archive_entry_pathname(ae), e->path);
                assert_int_equal(archive_entry_perm(ae), e->mode);
                assert_int_equal(archive_entry_uid(ae), e->uid);
                if (e->type == TAR_HARDLINK)
                        assert_string_equal(archive_entry_hardlink(ae), e->linkname);
                if (e->type == TAR_SYMLINK)
                        assert_string_equal(archive_entry_symlink(ae), e->linkname);
                if (e->type == TAR_CHR)
                        assert_int_equal(archive_entry_rdevminor(ae), 3);
                if (e->type == TAR_REG)
                        assert_int_equal(archive_entry_size(ae), e->size);
                assert_int_equal(archive_entry_mtime(ae), e->mtime_sec);
        }
        assert_int_equal(n, sizeof(es) / sizeof(es[0]));
        archive_read_free(a);

        /* ours */
        struct src s = {m.p, m.len, 0, 333};
        struct tar_reader *r = tar_reader_new(src_next, &s);
        const struct tar_entry *e;
        n = 0;
        while (tar_reader_next(r, &e, &err) == 0 && e) {
                const struct tar_entry *want = &es[n++];
                assert_string_equal(e->path, want->path);
                assert_int_equal(e->type, want->type);
                assert_int_equal(e->uid, want->uid);
                assert_int_equal(e->mtime_sec, want->mtime_sec);
                assert_int_equal(e->nxattrs, want->nxattrs);
                if (want->nxattrs)
                        assert_memory_equal(e->xattrs[0].value, cap, sizeof(cap));
                const void *b;
                ssize_t k;
                int64_t off = 0;
                while ((k = tar_reader_data(r, &b, &err)) > 0)
                        for (ssize_t j = 0; j < k; j++, off++)
                                assert_int_equal(((const uint8_t *)b)[j], (uint8_t)(off * 3 + (int64_t)(n - 1)));
                assert_int_equal(off, want->type == TAR_REG ? want->size : 0);
        }
        assert_int_equal(n, sizeof(es) / sizeof(es[0]));
        tar_reader_free(r);
        free(m.p);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_tar_pax),     cmocka_unit_test(test_tar_gnu),
            cmocka_unit_test(test_tar_ustar),   cmocka_unit_test(test_tar_v7),
            cmocka_unit_test(test_tar_hostile), cmocka_unit_test(test_tar_pax_overrides),
            cmocka_unit_test(test_tar_writer_roundtrip),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

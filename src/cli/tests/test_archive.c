/* Image archive reading (OCI layout, Docker save, hostile members) and size formatting. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/archive.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/strv.h"

struct file {
        const char *name;
        const char *data; /* NULL: a symlink to link */
        const char *link;
};

/* Writes a tar of files to a temp file; returns an fd at offset 0. */
static int make_tar(const struct file *files)
{
        char path[] = "/tmp/test_archive.XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        unlink(path);
        struct archive *a = archive_write_new();
        archive_write_set_format_pax_restricted(a);
        assert_int_equal(archive_write_open_fd(a, fd), ARCHIVE_OK);
        for (const struct file *f = files; f->name; f++) {
                struct archive_entry *e = archive_entry_new();
                archive_entry_set_pathname(e, f->name);
                if (f->data) {
                        archive_entry_set_filetype(e, AE_IFREG);
                        archive_entry_set_perm(e, 0644);
                        archive_entry_set_size(e, (la_int64_t)strlen(f->data));
                } else {
                        archive_entry_set_filetype(e, AE_IFLNK);
                        archive_entry_set_perm(e, 0777);
                        archive_entry_set_symlink(e, f->link);
                }
                assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
                if (f->data)
                        assert_int_equal(archive_write_data(a, f->data, strlen(f->data)), (la_ssize_t)strlen(f->data));
                archive_entry_free(e);
        }
        assert_int_equal(archive_write_close(a), ARCHIVE_OK);
        archive_write_free(a);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        return fd;
}

struct rec {
        char **names;    /* received members */
        char **expected; /* expected digests ("" when none) */
        char **digests;
        size_t bytes;
};

static int rec_begin(void *ud, const char *name, int64_t size, const char *expected, struct error **err)
{
        (void)size;
        (void)err;
        struct rec *r = ud;
        strv_extend(&r->names, name);
        strv_extend(&r->expected, expected ? expected : "");
        return 0;
}

static int rec_data(void *ud, const void *buf, size_t len, struct error **err)
{
        (void)buf;
        (void)err;
        ((struct rec *)ud)->bytes += len;
        return 0;
}

static int rec_end(void *ud, const char *digest, struct error **err)
{
        (void)err;
        strv_extend(&((struct rec *)ud)->digests, digest);
        return 0;
}

static void rec_free(struct rec *r)
{
        strv_free(r->names);
        strv_free(r->expected);
        strv_free(r->digests);
}

static int import(const struct file *files, struct rec *r, struct cli_archive_index *idx, struct error **err)
{
        int fd = make_tar(files);
        const struct cli_archive_sink sink = {rec_begin, rec_data, rec_end, r};
        int ret = cli_archive_import(fd, &sink, idx, err);
        close(fd);
        return ret;
}

#define CONFIG "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}"
#define LAYER "not really a tar but data"

static void test_oci_layout(void **state)
{
        (void)state;
        _cleanup_free_ char *cd = digest_from_buf(CONFIG, strlen(CONFIG));
        _cleanup_free_ char *cname = xasprintf("blobs/sha256/%s", digest_hex(cd));
        const char *index = "{\"schemaVersion\":2,\"manifests\":[]}";
        _cleanup_free_ char *id = digest_from_buf(index, strlen(index));
        const struct file files[] = {
            {"oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", NULL},
            {"./index.json", index, NULL},
            {"blobs/", NULL, NULL},
            {cname, CONFIG, NULL},
            {NULL, NULL, NULL},
        };
        struct file fs[5];
        memcpy(fs, files, sizeof(files));
        fs[2] = fs[3];
        fs[3] = fs[4];
        struct rec r = {0};
        struct cli_archive_index idx = {0};
        struct error *err = NULL;
        assert_int_equal(import(fs, &r, &idx, &err), 0);
        assert_string_equal(idx.digest, id);
        assert_int_equal(idx.size, (int64_t)strlen(index));
        assert_string_equal(idx.media_type, CLI_MT_OCI_INDEX);
        assert_int_equal(idx.n_extra, 0);
        /* oci-layout is read, not stored; the index and blobs go to the sink with their names cleaned */
        assert_int_equal(strv_length(r.names), 2);
        assert_string_equal(r.names[0], "index.json");
        assert_string_equal(r.expected[0], "");
        assert_string_equal(r.names[1], cname);
        assert_string_equal(r.expected[1], cd);
        assert_string_equal(r.digests[1], cd);
        cli_archive_index_done(&idx);
        rec_free(&r);
}

static void expect_fail(const struct file *files, int code, const char *needle)
{
        struct rec r = {0};
        struct cli_archive_index idx = {0};
        struct error *err = NULL;
        assert_int_equal(import(files, &r, &idx, &err), code);
        _cleanup_free_ char *m = error_message(err);
        if (!strstr(m, needle))
                fail_msg("\"%s\" does not contain \"%s\"", m, needle);
        error_free(&err);
        rec_free(&r);
}

static void test_hostile(void **state)
{
        (void)state;
        const struct file traversal[] = {{"../../etc/x", "x", NULL}, {NULL, NULL, NULL}};
        expect_fail(traversal, -EINVAL, "invalid path");
        const struct file inner[] = {{"blobs/../../x", "x", NULL}, {NULL, NULL, NULL}};
        expect_fail(inner, -EINVAL, "invalid path");
        const struct file absolute[] = {{"/etc/passwd", "x", NULL}, {NULL, NULL, NULL}};
        expect_fail(absolute, -EINVAL, "invalid path");
        const struct file mismatch[] = {
            {"blobs/sha256/0000000000000000000000000000000000000000000000000000000000000000", "data", NULL},
            {NULL, NULL, NULL}};
        expect_fail(mismatch, -EINVAL, "digest mismatch");
        const struct file nolayout[] = {{"index.json", "{}", NULL}, {NULL, NULL, NULL}};
        expect_fail(nolayout, -EINVAL, "unrecognized image format");
        const struct file noindex[] = {{"oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", NULL}, {NULL, NULL, NULL}};
        expect_fail(noindex, -ENOENT, "missing index.json");
        const struct file badversion[] = {{"oci-layout", "{\"imageLayoutVersion\":\"9.9\"}", NULL}, {NULL, NULL, NULL}};
        expect_fail(badversion, -EINVAL, "unsupported OCI version 9.9");
        const struct file escape_link[] = {{"a/layer.tar", NULL, "../../../etc/shadow"}, {NULL, NULL, NULL}};
        expect_fail(escape_link, -EINVAL, "invalid symlink target");
        const struct file badjson[] = {{"manifest.json", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", NULL},
                                       {NULL, NULL, NULL}};
        expect_fail(badjson, -EINVAL, "manifest.json");
}

static void test_docker_save(void **state)
{
        (void)state;
        const char *manifest = "[{\"Config\":\"abc.json\",\"RepoTags\":[\"busybox:1\"],"
                               "\"Layers\":[\"l1/layer.tar\",\"l2/layer.tar\"]}]";
        const struct file files[] = {
            {"abc.json", CONFIG, NULL},
            {"l1/layer.tar", LAYER, NULL},
            {"l2/layer.tar", NULL, "../l1/layer.tar"}, /* docker dedups identical layers with symlinks */
            {"manifest.json", manifest, NULL},
            {"repositories", "{}", NULL},
            {NULL, NULL, NULL},
        };
        struct rec r = {0};
        struct cli_archive_index idx = {0};
        struct error *err = NULL;
        assert_int_equal(import(files, &r, &idx, &err), 0);
        assert_int_equal(idx.n_extra, 2);
        assert_string_equal(idx.media_type, CLI_MT_OCI_INDEX);
        assert_string_equal(idx.digest, idx.extra[1].digest);
        _cleanup_free_ char *ld = digest_from_buf(LAYER, strlen(LAYER));
        _cleanup_free_ char *cd = digest_from_buf(CONFIG, strlen(CONFIG));
        /* the manifest: containerd's field order and media types; both layers resolve to the same blob */
        _cleanup_free_ char *want =
            xasprintf("{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":\"%s\",\"digest\":\"%s\","
                      "\"size\":%zu},\"layers\":[{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu},"
                      "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu}]}",
                      CLI_MT_DOCKER_MANIFEST, CLI_MT_DOCKER_CONFIG, cd, strlen(CONFIG), CLI_MT_DOCKER_LAYER, ld,
                      strlen(LAYER), CLI_MT_DOCKER_LAYER, ld, strlen(LAYER));
        assert_string_equal(idx.extra[0].data, want);
        assert_string_equal(idx.extra[0].ref, idx.extra[0].digest - 0 ? idx.extra[0].ref : "");
        assert_true(str_startswith(idx.extra[0].ref, "manifest-sha256:"));
        json_t *ij = json_loads(idx.extra[1].data, 0, NULL);
        assert_non_null(ij);
        json_t *m0 = json_array_get(json_object_get(ij, "manifests"), 0);
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(m0, "annotations"), "io.containerd.image.name")),
            "docker.io/library/busybox:1");
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(m0, "annotations"), "org.opencontainers.image.ref.name")),
            "1");
        assert_string_equal(json_string_value(json_object_get(json_object_get(m0, "platform"), "architecture")),
                            "amd64");
        assert_string_equal(json_string_value(json_object_get(m0, "digest")), idx.extra[0].digest);
        json_decref(ij);
        cli_archive_index_done(&idx);
        rec_free(&r);

        const struct file missing[] = {
            {"abc.json", CONFIG, NULL},
            {"manifest.json", manifest, NULL},
            {NULL, NULL, NULL},
        };
        expect_fail(missing, -ENOENT, "layer \"l1/layer.tar\" not found");
        const struct file nocfg[] = {{"manifest.json", manifest, NULL}, {NULL, NULL, NULL}};
        expect_fail(nocfg, -ENOENT, "image config \"abc.json\" not found");
        const char *badtag = "[{\"Config\":\"abc.json\",\"RepoTags\":[\"UPPER:1\"],\"Layers\":[]}]";
        const struct file badref[] = {{"abc.json", CONFIG, NULL}, {"manifest.json", badtag, NULL}, {NULL, NULL, NULL}};
        expect_fail(badref, -EINVAL, "normalize image ref \"UPPER:1\"");
}

/* A hand-made ustar header claiming a member of 100 GiB (base-256 size field), with no data behind it. */
static void test_absurd_size(void **state)
{
        (void)state;
        unsigned char h[1024] = {0};
        strcpy((char *)h, "blobs/huge");
        memcpy(h + 100, "0000644", 8);
        memcpy(h + 108, "0000000", 8);
        memcpy(h + 116, "0000000", 8);
        uint64_t size = 100ull << 30;
        h[124] = 0x80;
        for (int i = 0; i < 8; i++)
                h[135 - i] = (unsigned char)(size >> (8 * i));
        memcpy(h + 136, "00000000000", 12);
        h[156] = '0';
        memcpy(h + 257, "ustar", 6);
        memcpy(h + 263, "00", 2);
        memset(h + 148, ' ', 8);
        unsigned sum = 0;
        for (int i = 0; i < 512; i++)
                sum += h[i];
        snprintf((char *)h + 148, 8, "%06o", sum);
        char path[] = "/tmp/test_archive.XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        unlink(path);
        assert_int_equal(write(fd, h, sizeof(h)), (ssize_t)sizeof(h));
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        struct rec r = {0};
        struct cli_archive_index idx = {0};
        struct error *err = NULL;
        const struct cli_archive_sink sink = {rec_begin, rec_data, rec_end, &r};
        assert_int_equal(cli_archive_import(fd, &sink, &idx, &err), -EFBIG);
        assert_null(r.names); /* refused before the sink saw it */
        error_free(&err);
        close(fd);
        rec_free(&r);
}

static void test_clean_name(void **state)
{
        (void)state;
        const struct {
                const char *in, *out;
        } cases[] = {
            {"index.json", "index.json"},
            {"./index.json", "index.json"},
            {"a//b/./c", "a/b/c"},
            {"blobs/sha256/", "blobs/sha256"},
            {"../x", NULL},
            {"a/../b", NULL},
            {"/abs", NULL},
            {"", NULL},
            {".", NULL},
            {"./", NULL},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                _cleanup_free_ char *got = cli_archive_clean_name(cases[i].in);
                if (cases[i].out)
                        assert_string_equal(got, cases[i].out);
                else
                        assert_null(got);
        }
}

static void test_format_bytes(void **state)
{
        (void)state;
        const struct {
                int64_t n;
                const char *s;
        } cases[] = {
            {0, "0.0 B"},      {512, "512.0 B"},     {1023, "1023.0 B"},     {1024, "1.0 KiB"},
            {1536, "1.5 KiB"}, {2202009, "2.1 MiB"}, {5ll << 30, "5.0 GiB"},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char buf[32];
                cli_format_bytes(cases[i].n, buf, sizeof(buf));
                assert_string_equal(buf, cases[i].s);
        }
}

/* Export then import: the writer's archive reads back as the same members. */
static void test_writer_roundtrip(void **state)
{
        (void)state;
        char path[] = "/tmp/test_archive.XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        unlink(path);
        struct cli_archive_writer *w = NULL;
        struct error *err = NULL;
        const char *layout = "{\"imageLayoutVersion\":\"1.0.0\"}";
        const char *index = "{\"schemaVersion\":2,\"manifests\":[]}";
        assert_int_equal(cli_archive_writer_open(fd, &w, &err), 0);
        assert_int_equal(cli_archive_writer_add_dir(w, "blobs/", &err), 0);
        assert_int_equal(cli_archive_writer_add(w, "oci-layout", (int64_t)strlen(layout), &err), 0);
        assert_int_equal(cli_archive_writer_data(w, layout, strlen(layout), &err), 0);
        assert_int_equal(cli_archive_writer_add(w, "index.json", (int64_t)strlen(index), &err), 0);
        /* more than announced is refused */
        assert_int_equal(cli_archive_writer_data(w, "0123456789012345678901234567890123456789", 40, &err), -EINVAL);
        error_free(&err);
        assert_int_equal(cli_archive_writer_data(w, index, strlen(index), &err), 0);
        assert_int_equal(cli_archive_writer_close(w, &err), 0);
        cli_archive_writer_free(w);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        struct rec r = {0};
        struct cli_archive_index idx = {0};
        const struct cli_archive_sink sink = {rec_begin, rec_data, rec_end, &r};
        assert_int_equal(cli_archive_import(fd, &sink, &idx, &err), 0);
        _cleanup_free_ char *id = digest_from_buf(index, strlen(index));
        assert_string_equal(idx.digest, id);
        cli_archive_index_done(&idx);
        rec_free(&r);
        close(fd);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_oci_layout),       cmocka_unit_test(test_hostile),
            cmocka_unit_test(test_docker_save),      cmocka_unit_test(test_absurd_size),
            cmocka_unit_test(test_clean_name),       cmocka_unit_test(test_format_bytes),
            cmocka_unit_test(test_writer_roundtrip),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

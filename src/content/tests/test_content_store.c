#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "content/store.h"
#include "util/alloc.h"
#include "util/cleanup.h"

/* sha256("hello world") */
#define HELLO_DG "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
#define HELLO_ONLY_DG "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"

struct fx {
        char *dir;
        struct content_store *cs;
};

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
        (void)sb;
        (void)flag;
        (void)ftw;
        return remove(p);
}

static int setup(void **state)
{
        struct fx *f = xcalloc(1, sizeof(*f));
        struct error *e = NULL;
        f->dir = xstrdup("/tmp/krill-content-test-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        _cleanup_free_ char *p = xasprintf("%s/io.containerd.content.v1.content", f->dir);
        assert_int_equal(content_store_open(p, &f->cs, &e), 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fx *f = *state;
        content_store_free(f->cs);
        (void)nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
        free(f->dir);
        free(f);
        return 0;
}

static void expect_msg(struct error **e, const char *msg)
{
        assert_non_null(*e);
        _cleanup_free_ char *m = error_message(*e);
        assert_string_equal(m, msg);
        error_free(e);
}

static void write_blob(struct content_store *cs, const char *ref, const char *data)
{
        struct error *e = NULL;
        _cleanup_(content_writer_closep) struct content_writer *w = NULL;
        assert_int_equal(content_writer_open(cs, ref, 0, NULL, &w, &e), 0);
        assert_int_equal(content_writer_write(w, data, strlen(data), &e), 0);
        assert_int_equal(content_writer_commit(w, (int64_t)strlen(data), NULL, NULL, &e), 0);
}

static void test_content_write_commit_read(void **state)
{
        struct fx *f = *state;
        struct error *e = NULL;
        _cleanup_(content_writer_closep) struct content_writer *w = NULL;
        char *dg = NULL;

        assert_int_equal(content_writer_open(f->cs, "ref-1", 11, HELLO_DG, &w, &e), 0);
        _cleanup_free_ char *empty = content_writer_digest(w);
        assert_string_equal(empty, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_int_equal(content_writer_write(w, "hello", 5, &e), 0);
        assert_int_equal(content_writer_write(w, " world", 6, &e), 0);
        assert_int_equal(content_writer_offset(w), 11);
        assert_int_equal(content_writer_commit(w, 11, HELLO_DG, &dg, &e), 0);
        assert_string_equal(dg, HELLO_DG);
        free(dg);

        struct content_blob_info info = {0};
        assert_int_equal(content_blob_info(f->cs, HELLO_DG, &info, &e), 0);
        assert_int_equal(info.size, 11);
        content_blob_info_clear(&info);

        /* ranged read */
        int fd = -1;
        int64_t size = 0;
        char buf[8] = {0};
        assert_int_equal(content_blob_open(f->cs, HELLO_DG, &fd, &size, &e), 0);
        assert_int_equal(size, 11);
        assert_int_equal(pread(fd, buf, 5, 6), 5);
        assert_string_equal(buf, "world");
        close(fd);

        /* the ingest is gone */
        struct content_status st = {0};
        assert_int_equal(content_ingest_status(f->cs, "ref-1", &st, &e), -ENOENT);
        expect_msg(&e, "ingest ref \"ref-1\": not found");
}

static void test_content_verify_failures(void **state)
{
        struct fx *f = *state;
        struct error *e = NULL;
        _cleanup_(content_writer_closep) struct content_writer *w = NULL;

        assert_int_equal(content_writer_open(f->cs, "ref-v", 0, NULL, &w, &e), 0);
        assert_int_equal(content_writer_write(w, "hello world", 11, &e), 0);
        assert_int_equal(content_writer_commit(w, 12, NULL, NULL, &e), -EBUSY);
        expect_msg(&e, "unexpected commit size 11, expected 12: failed precondition");
        assert_int_equal(content_writer_commit(w, 11, HELLO_ONLY_DG, NULL, &e), -EBUSY);
        expect_msg(&e, "unexpected commit digest " HELLO_DG ", expected " HELLO_ONLY_DG ": failed precondition");
        assert_false(content_blob_exists(f->cs, HELLO_DG));
        /* still committable after a failed verification */
        assert_int_equal(content_writer_commit(w, 11, HELLO_DG, NULL, &e), 0);
        assert_true(content_blob_exists(f->cs, HELLO_DG));
}

static void test_content_resume_after_close(void **state)
{
        struct fx *f = *state;
        struct error *e = NULL;
        struct content_writer *w = NULL;
        struct content_status st = {0};

        assert_int_equal(content_writer_open(f->cs, "resume", 11, NULL, &w, &e), 0);
        assert_int_equal(content_writer_write(w, "hello", 5, &e), 0);
        /* a second writer on the same ref is refused while the first holds it */
        struct content_writer *w2 = NULL;
        assert_int_equal(content_writer_open(f->cs, "resume", 0, NULL, &w2, &e), -EAGAIN);
        error_free(&e);
        content_writer_close(w);

        /* Simulated crash: a half-written ingest is not a blob, but shows up as an ingest. */
        assert_false(content_blob_exists(f->cs, HELLO_DG));
        assert_int_equal(content_ingest_status(f->cs, "resume", &st, &e), 0);
        assert_string_equal(st.ref, "resume");
        assert_int_equal(st.offset, 5);
        assert_int_equal(st.total, 11);
        content_status_clear(&st);

        assert_int_equal(content_writer_open(f->cs, "resume", 0, NULL, &w, &e), 0);
        assert_int_equal(content_writer_offset(w), 5);
        assert_int_equal(content_writer_write(w, " world", 6, &e), 0);
        _cleanup_free_ char *dg = content_writer_digest(w);
        assert_string_equal(dg, HELLO_DG);
        assert_int_equal(content_writer_commit(w, 11, HELLO_DG, NULL, &e), 0);
        content_writer_close(w);
}

static void test_content_truncate(void **state)
{
        struct fx *f = *state;
        struct error *e = NULL;
        _cleanup_(content_writer_closep) struct content_writer *w = NULL;
        assert_int_equal(content_writer_open(f->cs, "trunc", 0, NULL, &w, &e), 0);
        assert_int_equal(content_writer_write(w, "garbage", 7, &e), 0);
        assert_int_equal(content_writer_truncate(w, 3, &e), -EINVAL);
        error_free(&e);
        assert_int_equal(content_writer_truncate(w, 0, &e), 0);
        assert_int_equal(content_writer_write(w, "hello world", 11, &e), 0);
        assert_int_equal(content_writer_commit(w, 0, HELLO_DG, NULL, &e), 0);
}

static int count_ingest(const struct content_status *st, void *ud)
{
        (void)st;
        (*(int *)ud)++;
        return 0;
}

static void test_content_abort_and_list(void **state)
{
        struct fx *f = *state;
        struct error *e = NULL;
        struct content_writer *w = NULL;
        int n = 0;
        assert_int_equal(content_writer_open(f->cs, "a1", 0, NULL, &w, &e), 0);
        content_writer_close(w);
        assert_int_equal(content_writer_open(f->cs, "a2", 0, NULL, &w, &e), 0);
        content_writer_close(w);
        assert_int_equal(content_ingest_walk(f->cs, count_ingest, &n, &e), 0);
        assert_int_equal(n, 2);
        assert_int_equal(content_ingest_abort(f->cs, "a1", &e), 0);
        assert_int_equal(content_ingest_abort(f->cs, "a1", &e), -ENOENT);
        expect_msg(&e, "ingest ref \"a1\": not found");
        n = 0;
        assert_int_equal(content_ingest_walk(f->cs, count_ingest, &n, &e), 0);
        assert_int_equal(n, 1);
}

static void test_content_already_exists(void **state)
{
        struct fx *f = *state;
        struct error *e = NULL;
        struct content_writer *w = NULL;
        int n = 0;
        write_blob(f->cs, "first", "hello world");
        /* open with the expected digest of an existing blob */
        assert_int_equal(content_writer_open(f->cs, "second", 0, HELLO_DG, &w, &e), -EEXIST);
        expect_msg(&e, "content " HELLO_DG ": already exists");
        /* commit without expectation: AlreadyExists at commit, ingest removed */
        assert_int_equal(content_writer_open(f->cs, "third", 0, NULL, &w, &e), 0);
        assert_int_equal(content_writer_write(w, "hello world", 11, &e), 0);
        assert_int_equal(content_writer_commit(w, 11, NULL, NULL, &e), -EEXIST);
        expect_msg(&e, "content " HELLO_DG ": already exists");
        content_writer_close(w);
        assert_int_equal(content_ingest_walk(f->cs, count_ingest, &n, &e), 0);
        assert_int_equal(n, 0);
}

static int collect(const struct content_blob_info *i, void *ud)
{
        (*(int *)ud)++;
        assert_int_equal(content_digest_validate(i->digest, NULL), 0);
        return 0;
}

static void test_content_walk_delete(void **state)
{
        struct fx *f = *state;
        struct error *e = NULL;
        int n = 0;
        write_blob(f->cs, "x", "hello world");
        write_blob(f->cs, "y", "hello");
        assert_int_equal(content_blob_walk(f->cs, collect, &n, &e), 0);
        assert_int_equal(n, 2);
        assert_int_equal(content_blob_delete(f->cs, HELLO_DG, &e), 0);
        assert_int_equal(content_blob_delete(f->cs, HELLO_DG, &e), -ENOENT);
        expect_msg(&e, "content digest " HELLO_DG ": not found");
        struct content_blob_info info = {0};
        assert_int_equal(content_blob_info(f->cs, "sha256:zz", &info, &e), -EINVAL);
        error_free(&e);
        assert_int_equal(content_blob_info(f->cs, "md5:abc", &info, &e), -EINVAL);
        error_free(&e);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_content_write_commit_read, setup, teardown),
            cmocka_unit_test_setup_teardown(test_content_verify_failures, setup, teardown),
            cmocka_unit_test_setup_teardown(test_content_resume_after_close, setup, teardown),
            cmocka_unit_test_setup_teardown(test_content_truncate, setup, teardown),
            cmocka_unit_test_setup_teardown(test_content_abort_and_list, setup, teardown),
            cmocka_unit_test_setup_teardown(test_content_already_exists, setup, teardown),
            cmocka_unit_test_setup_teardown(test_content_walk_delete, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

#include "tests/testutil.h"

#include "metadata/content.h"
#include "metadata/leases.h"
#include "metadata/namespaces.h"

static void write_ns(struct tu_fx *f, const char *ns, const char *ref, const char *data, const char *lease, int expect)
{
        struct error *e = NULL;
        struct metadata_content_writer *w = NULL;
        assert_int_equal(metadata_content_writer_open(f->db, f->cs, ns, ref, 0, NULL, lease, &w, &e), 0);
        assert_int_equal(metadata_content_writer_write(w, data, strlen(data), &e), 0);
        assert_int_equal(metadata_content_writer_commit(w, (int64_t)strlen(data), NULL, NULL, &e), expect);
        error_free(&e);
        metadata_content_writer_close(w);
}

static void test_content_meta_visibility(void **state)
{
        struct tu_fx *f = *state;
        struct error *e = NULL;
        struct metadata_content_info info = {0};
        write_ns(f, "a", "r1", "hello world", NULL, 0);
        assert_int_equal(metadata_content_info(f->db, "a", TU_HELLO_WORLD, &info, &e), 0);
        assert_int_equal(info.size, 11);
        metadata_content_info_clear(&info);
        /* not visible in another namespace */
        assert_err(metadata_content_info(f->db, "b", TU_HELLO_WORLD, &info, &e), e, -ENOENT,
                   "content digest " TU_HELLO_WORLD ": not found");
        /* same blob again in a: AlreadyExists */
        write_ns(f, "a", "r2", "hello world", NULL, -EEXIST);
        /* in b the store has it: writing commits the reference for b */
        write_ns(f, "b", "r1", "hello world", NULL, 0);
        assert_int_equal(metadata_content_info(f->db, "b", TU_HELLO_WORLD, &info, &e), 0);
        metadata_content_info_clear(&info);
        assert_err(metadata_namespace_delete(f->db, "b", &e), e, -EBUSY,
                   "namespace \"b\" must be empty, but it still has blobs: failed precondition");
}

static void test_content_meta_shared_expected(void **state)
{
        struct tu_fx *f = *state;
        struct error *e = NULL;
        struct metadata_content_writer *w = NULL;
        write_ns(f, "a", "r1", "hello world", NULL, 0);
        /* open with expected in a namespace that has it: AlreadyExists at open */
        assert_err(metadata_content_writer_open(f->db, f->cs, "a", "x", 0, TU_HELLO_WORLD, NULL, &w, &e), e, -EEXIST,
                   "content " TU_HELLO_WORLD ": already exists");
        /* another namespace: shared, no data needed */
        assert_int_equal(metadata_content_writer_open(f->db, f->cs, "c", "x", 11, TU_HELLO_WORLD, NULL, &w, &e), 0);
        assert_int_equal(metadata_content_writer_offset(w), 11);
        assert_int_equal(metadata_content_writer_commit(w, 11, TU_HELLO_WORLD, NULL, &e), 0);
        metadata_content_writer_close(w);
        struct metadata_content_info info = {0};
        assert_int_equal(metadata_content_info(f->db, "c", TU_HELLO_WORLD, &info, &e), 0);
        metadata_content_info_clear(&info);
}

static void test_content_meta_update_list_delete(void **state)
{
        struct tu_fx *f = *state;
        struct error *e = NULL;
        struct metadata_content_info upd = {.digest = TU_HELLO_WORLD}, got = {0};
        write_ns(f, "a", "r1", "hello world", NULL, 0);
        write_ns(f, "a", "r2", "hello", NULL, 0);
        char *labels[] = {"containerd.io/gc.ref.content.l.0", TU_HELLO, "x", "y", NULL};
        upd.labels = labels;
        char *paths[] = {"labels.containerd.io/gc.ref.content.l.0"};
        assert_int_equal(metadata_content_update(f->db, "a", &upd, paths, 1, &got, &e), 0);
        assert_int_equal(metadata_labels_count(got.labels), 1);
        metadata_content_info_clear(&got);
        char *bad[] = {"size"};
        assert_err(metadata_content_update(f->db, "a", &upd, bad, 1, NULL, &e), e, -EINVAL,
                   "cannot update \"size\" field on content info \"" TU_HELLO_WORLD "\": invalid argument");
        struct metadata_content_info *list = NULL;
        size_t n = 0;
        struct filter *flt = NULL;
        char *fs[] = {"labels.\"containerd.io/gc.ref.content.l.0\""};
        assert_int_equal(filter_parse(fs, 1, &flt, &e), 0);
        assert_int_equal(metadata_content_list(f->db, "a", flt, &list, &n, &e), 0);
        assert_int_equal(n, 1);
        assert_string_equal(list[0].digest, TU_HELLO_WORLD);
        metadata_content_info_list_free(list, n);
        filter_free(flt);
        assert_int_equal(metadata_content_list(f->db, "a", NULL, &list, &n, &e), 0);
        assert_int_equal(n, 2);
        metadata_content_info_list_free(list, n);
        assert_int_equal(metadata_content_delete(f->db, "a", TU_HELLO, &e), 0);
        assert_err(metadata_content_delete(f->db, "a", TU_HELLO, &e), e, -ENOENT, NULL);
        /* the blob stays until GC */
        assert_true(content_blob_exists(f->cs, TU_HELLO));
}

static void test_content_meta_ingests_and_lease(void **state)
{
        struct tu_fx *f = *state;
        struct error *e = NULL;
        struct metadata_content_writer *w = NULL;
        assert_err(metadata_content_writer_open(f->db, f->cs, "a", "r", 0, NULL, "nolease", &w, &e), e, -ENOENT,
                   "lease does not exist: not found");
        assert_int_equal(metadata_lease_create(f->db, "a", "l", NULL, NULL, &e), 0);
        assert_int_equal(metadata_content_writer_open(f->db, f->cs, "a", "half", 11, NULL, "l", &w, &e), 0);
        assert_int_equal(metadata_content_writer_write(w, "hello", 5, &e), 0);
        metadata_content_writer_close(w);
        struct metadata_lease_resource *res = NULL;
        size_t n = 0;
        assert_int_equal(metadata_lease_list_resources(f->db, "a", "l", &res, &n, &e), 0);
        assert_int_equal(n, 1);
        assert_string_equal(res[0].type, "ingests");
        metadata_lease_resources_free(res, n);

        /* status is per namespace */
        struct content_status st = {0};
        assert_int_equal(metadata_content_status(f->cs, "a", "half", &st, &e), 0);
        assert_string_equal(st.ref, "half");
        assert_int_equal(st.offset, 5);
        assert_int_equal(st.total, 11);
        content_status_clear(&st);
        assert_err(metadata_content_status(f->cs, "b", "half", &st, &e), e, -ENOENT, "ingest ref \"half\": not found");
        struct content_status *sts = NULL;
        assert_int_equal(metadata_content_list_statuses(f->cs, "a", NULL, &sts, &n, &e), 0);
        assert_int_equal(n, 1);
        assert_string_equal(sts[0].ref, "half");
        metadata_content_statuses_free(sts, n);
        assert_int_equal(metadata_content_list_statuses(f->cs, "b", NULL, &sts, &n, &e), 0);
        assert_int_equal(n, 0);
        metadata_content_statuses_free(sts, n);

        /* resume and commit under the lease */
        assert_int_equal(metadata_content_writer_open(f->db, f->cs, "a", "half", 11, NULL, "l", &w, &e), 0);
        assert_int_equal(metadata_content_writer_offset(w), 5);
        assert_int_equal(metadata_content_writer_write(w, " world", 6, &e), 0);
        _cleanup_free_ char *dg = metadata_content_writer_digest(w);
        assert_string_equal(dg, TU_HELLO_WORLD);
        assert_int_equal(metadata_content_writer_commit(w, 11, TU_HELLO_WORLD, NULL, &e), 0);
        metadata_content_writer_close(w);
        assert_int_equal(metadata_lease_list_resources(f->db, "a", "l", &res, &n, &e), 0);
        assert_int_equal(n, 1);
        assert_string_equal(res[0].type, "content");
        assert_string_equal(res[0].id, TU_HELLO_WORLD);
        metadata_lease_resources_free(res, n);

        /* abort */
        assert_int_equal(metadata_content_writer_open(f->db, f->cs, "a", "gone", 0, NULL, NULL, &w, &e), 0);
        metadata_content_writer_close(w);
        assert_int_equal(metadata_content_abort(f->cs, "a", "gone", &e), 0);
        assert_err(metadata_content_abort(f->cs, "a", "gone", &e), e, -ENOENT, "ingest ref \"gone\": not found");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_content_meta_visibility, tu_setup, tu_teardown),
            cmocka_unit_test_setup_teardown(test_content_meta_shared_expected, tu_setup, tu_teardown),
            cmocka_unit_test_setup_teardown(test_content_meta_update_list_delete, tu_setup, tu_teardown),
            cmocka_unit_test_setup_teardown(test_content_meta_ingests_and_lease, tu_setup, tu_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

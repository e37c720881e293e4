#include "tests/testutil.h"

#include "metadata/leases.h"

static void test_leases_crud(void **state)
{
        struct tu_fx *f = *state;
        struct error *e = NULL;
        struct metadata_lease l = {0};
        char *labels[] = {"containerd.io/gc.expire", "2099-01-01T00:00:00Z", NULL};
        assert_int_equal(metadata_lease_create(f->db, "default", "l1", labels, &l, &e), 0);
        assert_string_equal(l.id, "l1");
        assert_true(l.created_at > 0);
        metadata_lease_clear(&l);
        assert_err(metadata_lease_create(f->db, "default", "l1", NULL, NULL, &e), e, -EEXIST,
                   "lease \"l1\": already exists");
        /* Any non-empty ID is accepted, as in containerd: ctr generates IDs like this one. */
        assert_int_equal(metadata_lease_create(f->db, "other", "602286437--w4v", NULL, NULL, &e), 0);
        assert_err(metadata_lease_create(f->db, "default", "", NULL, NULL, &e), e, -EINVAL,
                   "lease id must be provided: invalid argument");
        assert_int_equal(metadata_lease_create(f->db, "default", "l2", NULL, NULL, &e), 0);
        assert_int_equal(metadata_lease_create(f->db, "other", "l3", NULL, NULL, &e), 0);

        struct metadata_lease *list = NULL;
        size_t n = 0;
        assert_int_equal(metadata_lease_list(f->db, "default", NULL, &list, &n, &e), 0);
        assert_int_equal(n, 2);
        assert_string_equal(list[0].id, "l1");
        assert_string_equal(metadata_labels_get(list[0].labels, "containerd.io/gc.expire"), "2099-01-01T00:00:00Z");
        metadata_lease_list_free(list, n);
        struct filter *flt = NULL;
        char *fs[] = {"id==l2"};
        assert_int_equal(filter_parse(fs, 1, &flt, &e), 0);
        assert_int_equal(metadata_lease_list(f->db, "default", flt, &list, &n, &e), 0);
        assert_int_equal(n, 1);
        assert_string_equal(list[0].id, "l2");
        metadata_lease_list_free(list, n);
        filter_free(flt);

        assert_int_equal(metadata_lease_delete(f->db, "default", "l1", &e), 0);
        assert_err(metadata_lease_delete(f->db, "default", "l1", &e), e, -ENOENT, "lease \"l1\": not found");
}

static void test_leases_resources(void **state)
{
        struct tu_fx *f = *state;
        struct error *e = NULL;
        struct metadata_lease_resource c = {.id = TU_HELLO, .type = "content"};
        struct metadata_lease_resource s = {.id = "snap-1", .type = "snapshots/overlayfs"};
        struct metadata_lease_resource bad = {.id = "x", .type = "content"};
        struct metadata_lease_resource badtype = {.id = "x", .type = "snapshots"};
        struct metadata_lease_resource unsup = {.id = "x", .type = "containers"};
        assert_err(metadata_lease_add_resource(f->db, "default", "nope", &c, &e), e, -ENOENT,
                   "lease \"nope\": not found");
        assert_int_equal(metadata_lease_create(f->db, "default", "l", NULL, NULL, &e), 0);
        assert_int_equal(metadata_lease_add_resource(f->db, "default", "l", &c, &e), 0);
        assert_int_equal(metadata_lease_add_resource(f->db, "default", "l", &c, &e), 0);
        assert_int_equal(metadata_lease_add_resource(f->db, "default", "l", &s, &e), 0);
        assert_err(metadata_lease_add_resource(f->db, "default", "l", &bad, &e), e, -EINVAL, NULL);
        assert_err(metadata_lease_add_resource(f->db, "default", "l", &badtype, &e), e, -EINVAL,
                   "invalid snapshot resource type snapshots: invalid argument");
        assert_err(metadata_lease_add_resource(f->db, "default", "l", &unsup, &e), e, -ENOSYS, NULL);
        struct metadata_lease_resource *res = NULL;
        size_t n = 0;
        assert_int_equal(metadata_lease_list_resources(f->db, "default", "l", &res, &n, &e), 0);
        assert_int_equal(n, 2);
        assert_string_equal(res[0].type, "content");
        assert_string_equal(res[0].id, TU_HELLO);
        assert_string_equal(res[1].type, "snapshots/overlayfs");
        assert_string_equal(res[1].id, "snap-1");
        metadata_lease_resources_free(res, n);
        assert_int_equal(metadata_lease_delete_resource(f->db, "default", "l", &c, &e), 0);
        assert_int_equal(metadata_lease_list_resources(f->db, "default", "l", &res, &n, &e), 0);
        assert_int_equal(n, 1);
        metadata_lease_resources_free(res, n);
        /* deleting the lease drops its resources */
        assert_int_equal(metadata_lease_delete(f->db, "default", "l", &e), 0);
        assert_int_equal(metadata_lease_create(f->db, "default", "l", NULL, NULL, &e), 0);
        assert_int_equal(metadata_lease_list_resources(f->db, "default", "l", &res, &n, &e), 0);
        assert_int_equal(n, 0);
        metadata_lease_resources_free(res, n);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_leases_crud, tu_setup, tu_teardown),
            cmocka_unit_test_setup_teardown(test_leases_resources, tu_setup, tu_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

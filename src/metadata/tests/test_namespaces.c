#include "tests/testutil.h"

#include "metadata/db.h"
#include "metadata/namespaces.h"

struct fx {
        char *dir;
        struct metadata_db *db;
};

static int setup(void **state)
{
        struct fx *f = xcalloc(1, sizeof(*f));
        struct error *e = NULL;
        f->dir = tu_mkdtemp();
        _cleanup_free_ char *p = xasprintf("%s/io.containerd.metadata.v1.lmdb", f->dir);
        assert_int_equal(metadata_db_open(p, &f->db, &e), 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fx *f = *state;
        metadata_db_close(f->db);
        tu_rmrf(f->dir);
        free(f);
        return 0;
}

static void test_namespace_create_get_list(void **state)
{
        struct fx *f = *state;
        struct error *e = NULL;
        char *labels[] = {"b", "2", "a", "1", "empty", "", NULL};
        char **got = NULL, **names = NULL;

        assert_int_equal(metadata_namespace_create(f->db, "default", labels, &e), 0);
        assert_err(metadata_namespace_create(f->db, "default", NULL, &e), e, -EEXIST,
                   "namespace \"default\": already exists");
        assert_int_equal(metadata_namespace_create(f->db, "k8s.io", NULL, &e), 0);
        assert_int_equal(metadata_namespace_get(f->db, "default", &got, &e), 0);
        assert_int_equal(metadata_labels_count(got), 2);
        assert_string_equal(got[0], "a");
        assert_string_equal(got[1], "1");
        assert_string_equal(got[2], "b");
        strv_free(got);
        assert_err(metadata_namespace_get(f->db, "nope", &got, &e), e, -ENOENT, "namespace \"nope\": not found");
        assert_int_equal(metadata_namespace_list(f->db, &names, &e), 0);
        assert_string_equal(names[0], "default");
        assert_string_equal(names[1], "k8s.io");
        assert_null(names[2]);
        strv_free(names);
}

static void test_namespace_validation(void **state)
{
        struct fx *f = *state;
        struct error *e = NULL;
        assert_err(metadata_namespace_create(f->db, "", NULL, &e), e, -EINVAL,
                   "identifier must not be empty: invalid argument");
        assert_err(metadata_namespace_create(f->db, "a..b", NULL, &e), e, -EINVAL,
                   "identifier \"a..b\" must match ^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$: invalid argument");
        assert_err(metadata_namespace_create(f->db, "-a", NULL, &e), e, -EINVAL, NULL);
        assert_err(metadata_namespace_create(f->db, "a-", NULL, &e), e, -EINVAL, NULL);
        assert_err(metadata_namespace_create(f->db, "a/b", NULL, &e), e, -EINVAL, NULL);
        _cleanup_free_ char *longn = xmalloc(78);
        memset(longn, 'a', 77);
        longn[77] = 0;
        assert_err(metadata_namespace_create(f->db, longn, NULL, &e), e, -EINVAL, NULL);
        longn[76] = 0;
        assert_int_equal(metadata_namespace_create(f->db, longn, NULL, &e), 0);
        assert_int_equal(metadata_namespace_create(f->db, "A1.b_c-9", NULL, &e), 0);
        _cleanup_free_ char *big = xmalloc(5000);
        memset(big, 'v', 4999);
        big[4999] = 0;
        char *labels[] = {"k", big, NULL};
        assert_err(metadata_namespace_create(f->db, "biglabel", labels, &e), e, -EINVAL, NULL);
}

static void test_namespace_update(void **state)
{
        struct fx *f = *state;
        struct error *e = NULL;
        char *l1[] = {"a", "1", "b", "2", NULL};
        char **got = NULL;

        /* Update creates the namespace, like containerd's SetLabel. */
        assert_int_equal(metadata_namespace_update(f->db, "u", l1, NULL, 0, &e), 0);
        char *l2[] = {"b", "3", "c", "4", NULL};
        char *paths[] = {"labels.b", "labels.a"};
        assert_int_equal(metadata_namespace_update(f->db, "u", l2, paths, 2, &e), 0);
        assert_int_equal(metadata_namespace_get(f->db, "u", &got, &e), 0);
        assert_int_equal(metadata_labels_count(got), 1);
        assert_string_equal(metadata_labels_get(got, "b"), "3");
        strv_free(got);
        char *bad[] = {"name"};
        assert_err(metadata_namespace_update(f->db, "u", l2, bad, 1, &e), e, -EINVAL,
                   "cannot update \"name\" field: invalid argument");
        /* No mask: replace everything. */
        assert_int_equal(metadata_namespace_update(f->db, "u", l2, NULL, 0, &e), 0);
        assert_int_equal(metadata_namespace_get(f->db, "u", &got, &e), 0);
        assert_int_equal(metadata_labels_count(got), 2);
        assert_string_equal(metadata_labels_get(got, "c"), "4");
        strv_free(got);
}

static void test_namespace_delete_and_ensure(void **state)
{
        struct fx *f = *state;
        struct error *e = NULL;
        char **got = NULL;
        assert_err(metadata_namespace_delete(f->db, "x", &e), e, -ENOENT, "namespace \"x\": not found");
        assert_int_equal(metadata_namespace_ensure(f->db, "x", &e), 0);
        assert_int_equal(metadata_namespace_ensure(f->db, "x", &e), 0);
        assert_int_equal(metadata_namespace_get(f->db, "x", &got, &e), 0);
        assert_null(got[0]);
        strv_free(got);
        assert_err(metadata_namespace_ensure(f->db, "bad name", &e), e, -EINVAL, NULL);
        assert_int_equal(metadata_namespace_delete(f->db, "x", &e), 0);
        assert_err(metadata_namespace_get(f->db, "x", &got, &e), e, -ENOENT, NULL);
}

static void test_namespace_persists(void **state)
{
        struct fx *f = *state;
        struct error *e = NULL;
        char **got = NULL;
        char *l[] = {"k", "v", NULL};
        assert_int_equal(metadata_namespace_create(f->db, "p", l, &e), 0);
        metadata_db_close(f->db);
        _cleanup_free_ char *p = xasprintf("%s/io.containerd.metadata.v1.lmdb", f->dir);
        assert_int_equal(metadata_db_open(p, &f->db, &e), 0);
        assert_int_equal(metadata_namespace_get(f->db, "p", &got, &e), 0);
        assert_string_equal(metadata_labels_get(got, "k"), "v");
        strv_free(got);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_namespace_create_get_list, setup, teardown),
            cmocka_unit_test_setup_teardown(test_namespace_validation, setup, teardown),
            cmocka_unit_test_setup_teardown(test_namespace_update, setup, teardown),
            cmocka_unit_test_setup_teardown(test_namespace_delete_and_ensure, setup, teardown),
            cmocka_unit_test_setup_teardown(test_namespace_persists, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

#include "tests/testutil.h"

#include "metadata/images.h"
#include "metadata/namespaces.h"

static struct metadata_image mkimg(const char *name, const char *digest)
{
        static char *labels[] = {"a", "1", NULL};
        return (struct metadata_image){.name = (char *)name,
                                       .labels = labels,
                                       .target = {.media_type = "application/vnd.oci.image.manifest.v1+json",
                                                  .digest = (char *)digest,
                                                  .size = 42}};
}

static void test_images_create_get(void **state)
{
        struct tu_fx *f = *state;
        struct error *e = NULL;
        struct metadata_image img = mkimg("docker.io/library/busybox:latest", TU_HELLO), got = {0};
        assert_int_equal(metadata_image_create(f->db, "default", &img, &got, &e), 0);
        assert_true(got.created_at > 0);
        assert_int_equal(got.created_at, got.updated_at);
        metadata_image_clear(&got);
        assert_err(metadata_image_create(f->db, "default", &img, NULL, &e), e, -EEXIST,
                   "image \"docker.io/library/busybox:latest\": already exists");
        assert_int_equal(metadata_image_get(f->db, "default", img.name, &got, &e), 0);
        assert_string_equal(got.target.digest, TU_HELLO);
        assert_int_equal(got.target.size, 42);
        assert_string_equal(metadata_labels_get(got.labels, "a"), "1");
        metadata_image_clear(&got);
        /* namespaces isolate images; the namespace was created implicitly */
        assert_err(metadata_image_get(f->db, "other", img.name, &got, &e), e, -ENOENT,
                   "image \"docker.io/library/busybox:latest\": not found");
        char **labels = NULL;
        assert_int_equal(metadata_namespace_get(f->db, "default", &labels, &e), 0);
        strv_free(labels);
        /* namespace with an image cannot be removed */
        assert_err(metadata_namespace_delete(f->db, "default", &e), e, -EBUSY,
                   "namespace \"default\" must be empty, but it still has images: failed precondition");
}

static void test_images_validation(void **state)
{
        struct tu_fx *f = *state;
        struct error *e = NULL;
        struct metadata_image img = mkimg("", TU_HELLO);
        assert_err(metadata_image_create(f->db, "default", &img, NULL, &e), e, -EINVAL,
                   "image name must not be empty: invalid argument");
        img = mkimg("x", "sha256:abc");
        assert_err(metadata_image_create(f->db, "default", &img, NULL, &e), e, -EINVAL, NULL);
        img = mkimg("x", TU_HELLO);
        img.target.size = 0;
        assert_err(metadata_image_create(f->db, "default", &img, NULL, &e), e, -EINVAL,
                   "Target.Size must be greater than zero: invalid argument");
        img = mkimg("x", TU_HELLO);
        img.target.media_type = NULL;
        assert_err(metadata_image_create(f->db, "default", &img, NULL, &e), e, -EINVAL,
                   "Target.MediaType must be set: invalid argument");
}

static void test_images_update(void **state)
{
        struct tu_fx *f = *state;
        struct error *e = NULL;
        struct metadata_image img = mkimg("img", TU_HELLO), got = {0};
        assert_err(metadata_image_update(f->db, "default", &img, NULL, 0, NULL, &e), e, -ENOENT,
                   "image \"img\": not found");
        assert_int_equal(metadata_image_create(f->db, "default", &img, NULL, &e), 0);
        char *nl[] = {"b", "2", NULL};
        struct metadata_image upd = mkimg("img", TU_HELLO_WORLD);
        upd.labels = nl;
        char *paths[] = {"labels.b", "labels.a"};
        assert_int_equal(metadata_image_update(f->db, "default", &upd, paths, 2, &got, &e), 0);
        assert_string_equal(got.target.digest, TU_HELLO); /* target untouched */
        assert_null(metadata_labels_get(got.labels, "a"));
        assert_string_equal(metadata_labels_get(got.labels, "b"), "2");
        assert_true(got.updated_at >= got.created_at);
        metadata_image_clear(&got);
        char *tp[] = {"target"};
        assert_int_equal(metadata_image_update(f->db, "default", &upd, tp, 1, &got, &e), 0);
        assert_string_equal(got.target.digest, TU_HELLO_WORLD);
        metadata_image_clear(&got);
        char *bad[] = {"name"};
        assert_err(metadata_image_update(f->db, "default", &upd, bad, 1, NULL, &e), e, -EINVAL,
                   "cannot update \"name\" field on image \"img\": invalid argument");
        /* no mask: full replace */
        upd.labels = NULL;
        assert_int_equal(metadata_image_update(f->db, "default", &upd, NULL, 0, &got, &e), 0);
        assert_int_equal(metadata_labels_count(got.labels), 0);
        metadata_image_clear(&got);
}

static void test_images_list_filters_delete(void **state)
{
        struct tu_fx *f = *state;
        struct error *e = NULL;
        struct metadata_image a = mkimg("docker.io/library/a:1", TU_HELLO);
        struct metadata_image b = mkimg("docker.io/library/b:1", TU_HELLO_WORLD);
        char *lb[] = {"env", "prod", NULL};
        b.labels = lb;
        assert_int_equal(metadata_image_create(f->db, "default", &a, NULL, &e), 0);
        assert_int_equal(metadata_image_create(f->db, "default", &b, NULL, &e), 0);
        assert_int_equal(metadata_image_create(f->db, "other", &a, NULL, &e), 0);
        struct metadata_image *list = NULL;
        size_t n = 0;
        assert_int_equal(metadata_image_list(f->db, "default", NULL, &list, &n, &e), 0);
        assert_int_equal(n, 2);
        assert_string_equal(list[0].name, "docker.io/library/a:1");
        metadata_image_list_free(list, n);

        struct filter *flt = NULL;
        char *fs[] = {"labels.env==prod"};
        assert_int_equal(filter_parse(fs, 1, &flt, &e), 0);
        assert_int_equal(metadata_image_list(f->db, "default", flt, &list, &n, &e), 0);
        assert_int_equal(n, 1);
        assert_string_equal(list[0].name, "docker.io/library/b:1");
        metadata_image_list_free(list, n);
        filter_free(flt);
        char *fs2[] = {"target.digest==" TU_HELLO, "name~=b:1$"};
        assert_int_equal(filter_parse(fs2, 2, &flt, &e), 0);
        assert_int_equal(metadata_image_list(f->db, "default", flt, &list, &n, &e), 0);
        assert_int_equal(n, 2);
        metadata_image_list_free(list, n);
        filter_free(flt);

        uint64_t d0 = metadata_db_dirty(f->db);
        assert_int_equal(metadata_image_delete(f->db, "default", a.name, &e), 0);
        assert_true(metadata_db_dirty(f->db) > d0);
        assert_err(metadata_image_delete(f->db, "default", a.name, &e), e, -ENOENT,
                   "image \"docker.io/library/a:1\": not found");
        assert_int_equal(metadata_image_list(f->db, "default", NULL, &list, &n, &e), 0);
        assert_int_equal(n, 1);
        metadata_image_list_free(list, n);
        assert_int_equal(metadata_image_list(f->db, "empty", NULL, &list, &n, &e), 0);
        assert_int_equal(n, 0);
        metadata_image_list_free(list, n);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_images_create_get, tu_setup, tu_teardown),
            cmocka_unit_test_setup_teardown(test_images_validation, tu_setup, tu_teardown),
            cmocka_unit_test_setup_teardown(test_images_update, tu_setup, tu_teardown),
            cmocka_unit_test_setup_teardown(test_images_list_filters_delete, tu_setup, tu_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

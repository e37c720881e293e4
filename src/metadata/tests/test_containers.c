#include "tests/testutil.h"

#include "metadata/containers.h"
#include "metadata/namespaces.h"

static struct metadata_container mkct(const char *id)
{
        static uint8_t spec[] = "{\"ociVersion\":\"1.0.2\"}";
        return (struct metadata_container){
            .id = (char *)id,
            .image = "docker.io/library/busybox:latest",
            .runtime_name = "io.containerd.runc.v2",
            .runtime_options = {.type_url = "containerd.runc.v1.Options"},
            .spec = {.type_url = "types.containerd.io/opencontainers/runtime-spec/1/Spec",
                     .value = spec,
                     .len = sizeof(spec) - 1},
            .snapshotter = "overlayfs",
            .snapshot_key = (char *)id,
        };
}

static void test_containers_crud(void **state)
{
        struct tu_fx *f = *state;
        struct error *e = NULL;
        struct metadata_container c = mkct("c1"), got;
        struct metadata_any ext = {.type_url = "x/y", .value = (uint8_t *)"\x01\x02", .len = 2};
        struct metadata_extension exts[] = {{.name = "ext1", .value = ext}};
        c.extensions = exts;
        c.nextensions = 1;
        assert_int_equal(metadata_container_create(f->db, "default", &c, NULL, &e), 0);
        assert_err(metadata_container_create(f->db, "default", &c, NULL, &e), e, -EEXIST,
                   "container \"c1\": already exists");
        assert_int_equal(metadata_container_get(f->db, "default", "c1", &got, &e), 0);
        assert_string_equal(got.runtime_name, "io.containerd.runc.v2");
        assert_string_equal(got.runtime_options.type_url, "containerd.runc.v1.Options");
        assert_int_equal(got.runtime_options.len, 0);
        assert_int_equal(got.spec.len, c.spec.len);
        assert_memory_equal(got.spec.value, c.spec.value, c.spec.len);
        assert_int_equal(got.nextensions, 1);
        assert_string_equal(got.extensions[0].name, "ext1");
        assert_int_equal(got.extensions[0].value.len, 2);
        assert_string_equal(got.snapshot_key, "c1");
        metadata_container_clear(&got);
        assert_err(metadata_container_get(f->db, "default", "c2", &got, &e), e, -ENOENT, "container \"c2\": not found");
        assert_err(metadata_namespace_delete(f->db, "default", &e), e, -EBUSY,
                   "namespace \"default\" must be empty, but it still has containers: failed precondition");

        struct metadata_container *list = NULL;
        size_t n = 0;
        struct metadata_container c2 = mkct("c2");
        c2.runtime_name = "io.containerd.krill.v2";
        assert_int_equal(metadata_container_create(f->db, "default", &c2, NULL, &e), 0);
        struct filter *flt = NULL;
        char *fs[] = {"runtime.name==io.containerd.krill.v2"};
        assert_int_equal(filter_parse(fs, 1, &flt, &e), 0);
        assert_int_equal(metadata_container_list(f->db, "default", flt, &list, &n, &e), 0);
        assert_int_equal(n, 1);
        assert_string_equal(list[0].id, "c2");
        metadata_container_list_free(list, n);
        filter_free(flt);

        assert_int_equal(metadata_container_delete(f->db, "default", "c1", &e), 0);
        assert_err(metadata_container_delete(f->db, "default", "c1", &e), e, -ENOENT, NULL);
}

static void test_containers_validation_and_update(void **state)
{
        struct tu_fx *f = *state;
        struct error *e = NULL;
        struct metadata_container c = mkct("v");
        c.runtime_name = NULL;
        assert_err(metadata_container_create(f->db, "default", &c, NULL, &e), e, -EINVAL,
                   "create container failed validation: container.Runtime.Name must be set: invalid argument");
        c = mkct("v");
        c.spec.type_url = NULL;
        assert_err(metadata_container_create(f->db, "default", &c, NULL, &e), e, -EINVAL,
                   "create container failed validation: container.Spec must be set: invalid argument");
        c = mkct("v");
        c.snapshotter = NULL;
        assert_err(metadata_container_create(f->db, "default", &c, NULL, &e), e, -EINVAL, NULL);
        c = mkct("bad/id");
        assert_err(metadata_container_create(f->db, "default", &c, NULL, &e), e, -EINVAL, NULL);

        c = mkct("v");
        assert_int_equal(metadata_container_create(f->db, "default", &c, NULL, &e), 0);
        struct metadata_container u = mkct("v"), got;
        char *labels[] = {"k", "v", NULL};
        u.labels = labels;
        u.image = "other:1";
        char *paths[] = {"labels.k"};
        assert_int_equal(metadata_container_update(f->db, "default", &u, paths, 1, &got, &e), 0);
        assert_string_equal(metadata_labels_get(got.labels, "k"), "v");
        assert_string_equal(got.image, "docker.io/library/busybox:latest");
        metadata_container_clear(&got);
        char *bad[] = {"runtime"};
        assert_err(metadata_container_update(f->db, "default", &u, bad, 1, NULL, &e), e, -EINVAL,
                   "cannot update \"runtime\" field on \"v\": invalid argument");
        u.runtime_name = "other";
        assert_err(metadata_container_update(f->db, "default", &u, NULL, 0, NULL, &e), e, -EINVAL,
                   "container.Runtime.Name field is immutable: invalid argument");
        u.runtime_name = "io.containerd.runc.v2";
        assert_int_equal(metadata_container_update(f->db, "default", &u, NULL, 0, &got, &e), 0);
        assert_string_equal(got.image, "other:1");
        metadata_container_clear(&got);
        u.id = "missing";
        assert_err(metadata_container_update(f->db, "default", &u, NULL, 0, NULL, &e), e, -ENOENT, NULL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_containers_crud, tu_setup, tu_teardown),
            cmocka_unit_test_setup_teardown(test_containers_validation_and_update, tu_setup, tu_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

/* introspection.v1 logic: the persistent server UUID and filtered plugin lists. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "services/introspection.h"
#include "util/alloc.h"
#include "util/cleanup.h"

static char *make_tmpdir(void)
{
        char *d = xstrdup("/tmp/krill-test-introspection-XXXXXX");
        assert_non_null(mkdtemp(d));
        return d;
}

static void rm_tree(const char *d)
{
        _cleanup_free_ char *u = xasprintf("%s/io.containerd.service.v1.introspection-service/uuid", d);
        _cleanup_free_ char *s = xasprintf("%s/io.containerd.service.v1.introspection-service", d);
        (void)unlink(u);
        (void)rmdir(s);
        assert_int_equal(rmdir(d), 0);
}

static void test_introspection_uuid_created_once(void **state)
{
        (void)state;
        _cleanup_free_ char *root = make_tmpdir();
        _cleanup_free_ char *u1 = NULL, *u2 = NULL;
        _cleanup_error_ struct error *err = NULL;

        assert_int_equal(services_introspection_uuid(root, &u1, &err), 0);
        assert_int_equal(strlen(u1), 36);
        assert_true(u1[14] == '4'); /* version 4 */
        assert_true(strchr("89ab", u1[19]) != NULL);
        assert_int_equal(services_introspection_uuid(root, &u2, &err), 0);
        assert_string_equal(u1, u2);

        /* the file is where containerd keeps it, and holds exactly the UUID */
        _cleanup_free_ char *path = xasprintf("%s/io.containerd.service.v1.introspection-service/uuid", root);
        char buf[64] = {0};
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(read(fd, buf, sizeof(buf) - 1), 36);
        assert_string_equal(buf, u1);
        rm_tree(root);
}

static void test_introspection_uuid_corrupt_is_an_error(void **state)
{
        (void)state;
        _cleanup_free_ char *root = make_tmpdir();
        _cleanup_free_ char *dir = xasprintf("%s/io.containerd.service.v1.introspection-service", root);
        _cleanup_free_ char *path = xasprintf("%s/uuid", dir);
        _cleanup_free_ char *u = NULL;
        _cleanup_error_ struct error *err = NULL;

        assert_int_equal(mkdir(dir, 0700), 0);
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        fputs("not-a-uuid", f);
        fclose(f);
        assert_int_equal(services_introspection_uuid(root, &u, &err), -EINVAL);
        assert_null(u);
        assert_non_null(err);
        rm_tree(root);
}

static void test_introspection_plugins_filtered(void **state)
{
        (void)state;
        struct plugin_registry reg = {0};
        _cleanup_error_ struct error *err = NULL;

        services_plugin_registry_add(&reg, "io.containerd.metadata.v1", "lmdb");
        struct plugin_info *p = services_plugin_registry_add(&reg, "io.containerd.grpc.v1", "version");
        (void)p;
        p = services_plugin_registry_add(&reg, "io.containerd.grpc.v1", "namespaces");
        _cleanup_error_ struct error *e = NULL;
        error_set(&e, ENOENT, "no plugins registered for io.containerd.metadata.v1");
        services_plugin_info_set_error(p, -ENOENT, e);
        services_plugin_info_export(&reg.plugins[0], "root", "/x");

        const struct plugin_info **list = NULL;
        size_t n = 0;
        const char *f1[] = {"type==io.containerd.grpc.v1"};
        assert_int_equal(services_introspection_plugins(&reg, f1, 1, &list, &n, &err), 0);
        assert_int_equal(n, 2);
        assert_string_equal(list[0]->id, "version");
        assert_string_equal(list[1]->id, "namespaces");
        assert_int_equal(list[1]->init_err, -ENOENT);
        assert_string_equal(list[1]->init_msg, "no plugins registered for io.containerd.metadata.v1: not found");
        free(list);

        const char *f2[] = {"id==lmdb", "id~=^name"};
        assert_int_equal(services_introspection_plugins(&reg, f2, 2, &list, &n, &err), 0);
        assert_int_equal(n, 2);
        assert_string_equal(list[0]->id, "lmdb");
        assert_string_equal(list[0]->exports[0], "root");
        assert_string_equal(list[0]->exports[1], "/x");
        assert_null(list[0]->exports[2]);
        assert_string_equal(list[1]->id, "namespaces");
        free(list);

        assert_int_equal(services_introspection_plugins(&reg, NULL, 0, &list, &n, &err), 0);
        assert_int_equal(n, 3);
        free(list);

        const char *bad[] = {"type=="};
        list = NULL;
        assert_int_equal(services_introspection_plugins(&reg, bad, 1, &list, &n, &err), -EINVAL);
        assert_null(list);
        assert_non_null(err);
        /* what containerd 1.6.20 answers for `ctr plugins ls 'bad filter ==='` */
        _cleanup_free_ char *msg = error_message(err);
        assert_string_equal(msg, "filters: parse error: [type==]: expected value or quoted: invalid argument: "
                                 "invalid argument");
        error_free(&err);
        const char *bad2[] = {"bad filter ==="};
        assert_int_equal(services_introspection_plugins(&reg, bad2, 1, &list, &n, &err), -EINVAL);
        _cleanup_free_ char *msg2 = error_message(err);
        assert_string_equal(msg2, "filters: parse error: [bad  >|f|< ilter ===]: expected an operator "
                                  "(\"==\"|\"!=\"|\"~=\"): invalid argument: invalid argument");
        services_plugin_registry_clear(&reg);
        assert_int_equal(reg.n, 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_introspection_uuid_created_once),
                cmocka_unit_test(test_introspection_uuid_corrupt_is_an_error),
                cmocka_unit_test(test_introspection_plugins_filtered),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

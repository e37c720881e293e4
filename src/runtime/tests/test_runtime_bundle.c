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

#include "github.com/containerd/containerd/runtime/v2/task/shim.pb-c.h"
#include "runtime/bundle.h"
#include "runtime/shim_binary.h"
#include "util/alloc.h"

static char *tmp, *state, *root;

static int setup(void **s)
{
        (void)s;
        tmp = xstrdup("/tmp/krill-rt-test-XXXXXX");
        assert_non_null(mkdtemp(tmp));
        state = xasprintf("%s/state", tmp);
        root = xasprintf("%s/root", tmp);
        return 0;
}

static int teardown(void **s)
{
        (void)s;
        char *cmd = xasprintf("rm -rf '%s'", tmp);
        assert_int_equal(system(cmd), 0);
        free(cmd);
        free(tmp);
        free(state);
        free(root);
        return 0;
}

static mode_t mode_of(const char *p)
{
        struct stat st;
        assert_int_equal(lstat(p, &st), 0);
        return st.st_mode;
}

/* With a user namespace the remapped root group gets into the bundle (containerd: chown :gid, 0710). */
static void test_runtime_bundle_userns_permissions(void **s)
{
        (void)s;
        struct runtime_bundle *b = NULL;
        const char spec[] = "{\"linux\":{\"gidMappings\":[{\"containerID\":1,\"hostID\":5,\"size\":1},"
                            "{\"containerID\":0,\"hostID\":100000,\"size\":65536}]}}";
        if (geteuid() != 0)
                skip();
        assert_int_equal(runtime_bundle_new(state, root, "default", "u1", spec, strlen(spec), &b, NULL), 0);
        struct stat st;
        assert_int_equal(stat(b->path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0710);
        assert_int_equal(st.st_gid, 100000);
        assert_int_equal(runtime_bundle_delete(b, NULL), 0);
        runtime_bundle_free(b);
        /* a spec that is not JSON fails like containerd's json.Unmarshal, and leaves no bundle */
        struct error *e = NULL;
        assert_int_equal(runtime_bundle_new(state, root, "default", "u2", "{", 1, &b, &e), -EINVAL);
        error_free(&e);
        char *p = xasprintf("%s/io.containerd.runtime.v2.task/default/u2", state);
        assert_int_equal(access(p, F_OK), -1);
        free(p);
}

static void test_runtime_bundle_layout(void **s)
{
        (void)s;
        struct runtime_bundle *b = NULL;
        const char spec[] = "{\"ociVersion\":\"1.0.2-dev\"}";
        assert_int_equal(runtime_bundle_new(state, root, "default", "c1", spec, strlen(spec), &b, NULL), 0);
        char *p = xasprintf("%s/io.containerd.runtime.v2.task/default/c1", state);
        assert_string_equal(b->path, p);
        assert_int_equal(mode_of(p) & 07777, 0700);
        free(p);
        p = xasprintf("%s/rootfs", b->path);
        assert_true(S_ISDIR(mode_of(p)));
        free(p);
        p = xasprintf("%s/work", b->path);
        assert_true(S_ISLNK(mode_of(p)));
        char target[4096] = {0};
        assert_true(readlink(p, target, sizeof(target) - 1) > 0);
        assert_string_equal(target, b->work);
        free(p);
        char *cfg = NULL;
        assert_int_equal(runtime_bundle_read(b, "config.json", &cfg, NULL), 0);
        assert_string_equal(cfg, spec);
        free(cfg);

        int fd = runtime_bundle_open_log(b, NULL);
        assert_true(fd >= 0);
        p = xasprintf("%s/log", b->path);
        assert_true(S_ISFIFO(mode_of(p)));
        free(p);
        close(fd);

        assert_int_equal(runtime_bundle_write(b, "address", "unix:///x/s/abc\n", NULL), 0);
        char *addr = NULL;
        assert_int_equal(runtime_bundle_read(b, "address", &addr, NULL), 0);
        assert_string_equal(addr, "unix:///x/s/abc");
        free(addr);

        /* A second bundle with the same id is refused. */
        struct runtime_bundle *b2 = NULL;
        struct error *e = NULL;
        assert_int_equal(runtime_bundle_new(state, root, "default", "c1", spec, strlen(spec), &b2, &e), -EEXIST);
        error_free(&e);

        assert_int_equal(runtime_bundle_delete(b, NULL), 0);
        assert_int_equal(access(b->path, F_OK), -1);
        assert_int_equal(access(b->work, F_OK), -1);
        /* Deleting twice is fine. */
        assert_int_equal(runtime_bundle_delete(b, NULL), 0);
        runtime_bundle_free(b);
}

static void test_runtime_bundle_retire_then_same_id(void **s)
{
        (void)s;
        struct runtime_bundle *b = NULL;
        const char spec[] = "{}";
        assert_int_equal(runtime_bundle_new(state, root, "default", "r1", spec, strlen(spec), &b, NULL), 0);
        char *path = xstrdup(b->path), *work = xstrdup(b->work);
        assert_int_equal(runtime_bundle_write(b, "address", "unix:///x", NULL), 0);
        /* Moved aside at once: the id is free again, b now names the trashed copies. */
        assert_int_equal(runtime_bundle_retire(b, NULL), 1);
        assert_int_equal(access(path, F_OK), -1);
        assert_int_equal(access(work, F_OK), -1);
        char *trash = xasprintf("%s/io.containerd.runtime.v2.task/.trash/", state);
        assert_memory_equal(b->path, trash, strlen(trash));
        char *addr = NULL;
        assert_int_equal(runtime_bundle_read(b, "address", &addr, NULL), 0);
        assert_string_equal(addr, "unix:///x");
        free(addr);
        struct runtime_bundle *b2 = NULL;
        assert_int_equal(runtime_bundle_new(state, root, "default", "r1", spec, strlen(spec), &b2, NULL), 0);
        /* Removing the trashed copy leaves the new bundle alone. */
        assert_int_equal(runtime_bundle_delete(b, NULL), 0);
        assert_int_equal(access(b->path, F_OK), -1);
        assert_int_equal(access(b->work, F_OK), -1);
        assert_int_equal(access(path, F_OK), 0);
        assert_int_equal(access(work, F_OK), 0);
        runtime_bundle_free(b);

        /* A bundle already gone: nothing to move, nothing to delete later. */
        assert_int_equal(runtime_bundle_delete(b2, NULL), 0);
        assert_int_equal(runtime_bundle_retire(b2, NULL), 0);
        /* Leftovers of a crash are emptied by recovery. */
        assert_int_equal(runtime_bundle_new(state, root, "default", "r2", spec, strlen(spec), &b, NULL), 0);
        assert_int_equal(runtime_bundle_retire(b, NULL), 1);
        assert_int_equal(access(b->path, F_OK), 0);
        runtime_bundle_empty_trash(state, root);
        assert_int_equal(access(b->path, F_OK), -1);
        assert_int_equal(access(b->work, F_OK), -1);
        runtime_bundle_free(b);
        runtime_bundle_free(b2);
        free(trash);
        free(path);
        free(work);
}

static void test_runtime_bundle_rejects_bad_ids(void **s)
{
        (void)s;
        struct runtime_bundle *b = NULL;
        struct error *e = NULL;
        assert_int_equal(runtime_bundle_new(state, root, "default", "../evil", "{}", 2, &b, &e), -EINVAL);
        assert_null(b);
        error_free(&e);
        assert_int_equal(runtime_bundle_new(state, root, "bad/ns", "c", "{}", 2, &b, &e), -EINVAL);
        error_free(&e);
        char *p = xasprintf("%s/io.containerd.runtime.v2.task/default/../evil", state);
        assert_int_equal(access(p, F_OK), -1);
        free(p);
}

static void test_runtime_shim_binary_name(void **s)
{
        (void)s;
        char *n = NULL;
        struct error *e = NULL;
        assert_int_equal(runtime_shim_binary_name("io.containerd.runc.v2", &n, NULL), 0);
        assert_string_equal(n, "containerd-shim-runc-v2");
        free(n);
        assert_int_equal(runtime_shim_binary_name("io.containerd.krill.v2", &n, NULL), 0);
        assert_string_equal(n, "containerd-shim-krill-v2");
        free(n);
        assert_int_equal(runtime_shim_binary_name("/opt/bin/my-shim", &n, NULL), 0);
        assert_string_equal(n, "/opt/bin/my-shim");
        free(n);
        assert_int_equal(runtime_shim_binary_name("runc", &n, &e), -EINVAL);
        error_free(&e);
        assert_int_equal(runtime_shim_binary_name("io.containerd.runc.", &n, &e), -EINVAL);
        error_free(&e);
}

static char *write_script(const char *name, const char *body)
{
        char *p = xasprintf("%s/%s", tmp, name);
        FILE *f = fopen(p, "we");
        assert_non_null(f);
        fprintf(f, "#!/bin/sh\n%s", body);
        fclose(f);
        assert_int_equal(chmod(p, 0755), 0);
        return p;
}

static void test_runtime_shim_binary_find(void **s)
{
        (void)s;
        char *p = write_script("containerd-shim-fake-v9", "exit 0\n");
        char *found = NULL;
        struct error *e = NULL;
        assert_int_equal(runtime_shim_binary_find("io.containerd.fake.v9", tmp, &found, NULL), 0);
        assert_string_equal(found, p);
        free(found);
        assert_int_equal(runtime_shim_binary_find("io.containerd.nosuch.v9", tmp, &found, &e), -ENOENT);
        assert_string_equal(error_str(e),
                            "runtime \"io.containerd.nosuch.v9\" binary not installed "
                            "\"containerd-shim-nosuch-v9\": not found");
        error_free(&e);
        free(p);
}

static void test_runtime_exec_capture(void **s)
{
        (void)s;
        char *out = NULL, *errs = NULL;
        size_t len = 0;
        char *argv[] = {"/bin/sh", "-c", "cat; echo err >&2; exit 3", NULL};
        int r = runtime_exec_capture(argv, NULL, "/", "hello", 5, false, 5000, &out, &len, &errs, NULL);
        assert_int_equal(r, 3);
        assert_string_equal(out, "hello");
        assert_string_equal(errs, "err\n");
        free(out);
        free(errs);
        char *argv2[] = {"/bin/sh", "-c", "echo $KRILL_X; kill -9 $$", NULL};
        char *env[] = {"KRILL_X=yes", NULL};
        r = runtime_exec_capture(argv2, env, NULL, NULL, 0, true, 5000, &out, &len, NULL, NULL);
        assert_int_equal(r, 128 + 9);
        assert_string_equal(out, "yes\n");
        free(out);
        char *argv3[] = {"/bin/sleep", "10", NULL};
        struct error *e = NULL;
        r = runtime_exec_capture(argv3, NULL, NULL, NULL, 0, true, 200, &out, &len, NULL, &e);
        assert_int_equal(r, -ETIMEDOUT);
        error_free(&e);
        char *argv4[] = {"/nonexistent/binary", NULL};
        r = runtime_exec_capture(argv4, NULL, NULL, NULL, 0, true, 200, &out, &len, NULL, &e);
        assert_int_equal(r, -ENOENT);
        error_free(&e);
}

static void test_runtime_shim_start_and_delete(void **s)
{
        (void)s;
        /* A stand-in shim that checks its command line and environment the way containerd 1.6 calls shims. */
        char *resp_path = xasprintf("%s/delete-response.bin", tmp);
        Containerd__Task__V2__DeleteResponse dr = CONTAINERD__TASK__V2__DELETE_RESPONSE__INIT;
        Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
        ts.seconds = 1700000000;
        ts.nanos = 5;
        dr.pid = 42;
        dr.exit_status = 137;
        dr.exited_at = &ts;
        uint8_t buf[128];
        size_t n = containerd__task__v2__delete_response__pack(&dr, buf);
        FILE *f = fopen(resp_path, "we");
        fwrite(buf, 1, n, f);
        fclose(f);
        char *body = xasprintf(
                "for a in \"$@\"; do last=$a; done\n"
                "case \"$last\" in\n"
                "start) [ \"$1 $2 $3 $4\" = \"-namespace ns1 -address /a/krill.sock\" ] || exit 9\n"
                "       [ \"$TTRPC_ADDRESS\" = /a/krill.sock.ttrpc ] || exit 8\n"
                "       [ \"$(pwd)\" = \"%s\" ] || exit 7\n"
                "       opts=$(cat); [ \"$opts\" = OPTS ] || exit 6\n"
                "       printf 'unix:///run/x/s/abc\\n';;\n"
                "delete) cat '%s';;\n"
                "*) exit 1;;\n"
                "esac\n",
                tmp, resp_path);
        char *shim = write_script("containerd-shim-test-v2", body);
        struct runtime_shim_cmd c = {.binary = shim, .ns = "ns1", .address = "/a/krill.sock",
                                     .ttrpc_address = "/a/krill.sock.ttrpc", .publish_binary = "/usr/bin/krilld",
                                     .id = "c1", .bundle = tmp, .timeout_ms = 5000};
        char *addr = NULL;
        assert_int_equal(runtime_shim_start(&c, "OPTS", 4, &addr, NULL), 0);
        assert_string_equal(addr, "unix:///run/x/s/abc");
        free(addr);
        struct runtime_shim_exit ex;
        assert_int_equal(runtime_shim_delete(&c, &ex, NULL), 0);
        assert_int_equal(ex.pid, 42);
        assert_int_equal(ex.exit_status, 137);
        assert_int_equal(ex.exited_at_sec, 1700000000);

        /* A failing start surfaces the shim's own output as the error. */
        char *bad = write_script("containerd-shim-bad-v2", "echo 'runc: something broke'; exit 1\n");
        c.binary = bad;
        struct error *e = NULL;
        assert_true(runtime_shim_start(&c, NULL, 0, &addr, &e) < 0);
        assert_string_equal(error_str(e), "runc: something broke");
        error_free(&e);
        free(bad);
        free(shim);
        free(body);
        free(resp_path);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_runtime_bundle_layout),
                cmocka_unit_test(test_runtime_bundle_userns_permissions),
                cmocka_unit_test(test_runtime_bundle_retire_then_same_id),
        cmocka_unit_test(test_runtime_bundle_rejects_bad_ids),
                cmocka_unit_test(test_runtime_shim_binary_name),
                cmocka_unit_test(test_runtime_shim_binary_find),
                cmocka_unit_test(test_runtime_exec_capture),
                cmocka_unit_test(test_runtime_shim_start_and_delete),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}

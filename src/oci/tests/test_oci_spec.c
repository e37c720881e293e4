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

#include "oci/spec.h"
#include "util/alloc.h"

static char *tmpdir;

static void write_file(const char *rel, const char *content)
{
        char *p = xasprintf("%s/%s", tmpdir, rel);
        FILE *f = fopen(p, "we");
        assert_non_null(f);
        fputs(content, f);
        fclose(f);
        free(p);
}

static int setup(void **state)
{
        (void)state;
        tmpdir = xstrdup("/tmp/krill-oci-test-XXXXXX");
        assert_non_null(mkdtemp(tmpdir));
        char *etc = xasprintf("%s/etc", tmpdir);
        assert_int_equal(mkdir(etc, 0755), 0);
        free(etc);
        write_file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"
                                 "# comment\n"
                                 "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
                                 "app:x:1000:1001:app:/home/app:/bin/sh\n");
        write_file("etc/group", "root:x:0:\n"
                                "wheel:x:10:root,app\n"
                                "appgrp:x:1001:\n"
                                "audio:x:29:app\n");
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        char *cmd = xasprintf("rm -rf '%s'", tmpdir);
        assert_int_equal(system(cmd), 0);
        free(cmd);
        free(tmpdir);
        return 0;
}

static const char *sget(json_t *spec, const char *path)
{
        json_t *j = spec;
        char *copy = xstrdup(path), *save = NULL;
        for (char *t = strtok_r(copy, ".", &save); t && j; t = strtok_r(NULL, ".", &save))
                j = json_object_get(j, t);
        free(copy);
        return json_string_value(j);
}

static json_int_t iget(json_t *spec, const char *path)
{
        json_t *j = spec;
        char *copy = xstrdup(path), *save = NULL;
        for (char *t = strtok_r(copy, ".", &save); t && j; t = strtok_r(NULL, ".", &save))
                j = json_object_get(j, t);
        free(copy);
        assert_true(json_is_integer(j));
        return json_integer_value(j);
}

static void test_oci_default_spec_matches_containerd(void **state)
{
        (void)state;
        json_t *s = oci_spec_new_default("default", "c1");
        assert_string_equal(sget(s, "ociVersion"), "1.0.2-dev");
        assert_string_equal(sget(s, "root.path"), "rootfs");
        assert_string_equal(sget(s, "process.cwd"), "/");
        assert_string_equal(sget(s, "linux.cgroupsPath"), "/default/c1");
        assert_true(json_is_true(json_object_get(json_object_get(s, "process"), "noNewPrivileges")));
        json_t *caps = json_object_get(json_object_get(json_object_get(s, "process"), "capabilities"), "bounding");
        assert_int_equal(json_array_size(caps), 14);
        assert_int_equal(json_array_size(json_object_get(s, "mounts")), 7);
        json_t *nss = json_object_get(json_object_get(s, "linux"), "namespaces");
        assert_int_equal(json_array_size(nss), 5);
        json_t *devs = json_object_get(json_object_get(json_object_get(s, "linux"), "resources"), "devices");
        assert_int_equal(json_array_size(devs), 10);
        assert_false(json_is_true(json_object_get(json_array_get(devs, 0), "allow")));
        json_t *rl = json_array_get(json_object_get(json_object_get(s, "process"), "rlimits"), 0);
        assert_string_equal(json_string_value(json_object_get(rl, "type")), "RLIMIT_NOFILE");
        assert_int_equal(json_integer_value(json_object_get(rl, "hard")), 1024);
        json_decref(s);
}

static void test_oci_env_replace_append_remove(void **state)
{
        (void)state;
        json_t *s = oci_spec_new_default("default", "c1");
        char *e1[] = {"A=1", "B=2", NULL};
        oci_spec_set_env(s, e1);
        char *e2[] = {"A=3", "C=4", "B", NULL};
        oci_spec_set_env(s, e2);
        json_t *env = json_object_get(json_object_get(s, "process"), "env");
        assert_int_equal(json_array_size(env), 2);
        assert_string_equal(json_string_value(json_array_get(env, 0)), "A=3");
        assert_string_equal(json_string_value(json_array_get(env, 1)), "C=4");
        json_decref(s);
}

static void test_oci_image_config_applied(void **state)
{
        (void)state;
        const char *cfg = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Env\":[\"PATH=/bin\",\"X=img\"],"
                          "\"Entrypoint\":[\"/bin/sh\",\"-c\"],\"Cmd\":[\"echo hi\"],\"WorkingDir\":\"/work\","
                          "\"User\":\"app\",\"StopSignal\":\"SIGQUIT\",\"Labels\":{\"k\":\"v\"}}}";
        struct oci_image_config ic;
        assert_int_equal(oci_image_config_parse(cfg, strlen(cfg), &ic, NULL), 0);
        assert_string_equal(ic.stop_signal, "SIGQUIT");
        assert_string_equal(ic.labels[0], "k=v");
        json_t *s = oci_spec_new_default("default", "c1");
        char *user_env[] = {"X=user", NULL};
        oci_spec_set_env(s, user_env);
        assert_int_equal(oci_spec_apply_image_config(s, &ic, NULL, tmpdir, NULL), 0);
        json_t *proc = json_object_get(s, "process");
        json_t *env = json_object_get(proc, "env");
        assert_int_equal(json_array_size(env), 2);
        assert_string_equal(json_string_value(json_array_get(env, 1)), "X=user");
        json_t *args = json_object_get(proc, "args");
        assert_int_equal(json_array_size(args), 3);
        assert_string_equal(json_string_value(json_array_get(args, 2)), "echo hi");
        assert_string_equal(sget(s, "process.cwd"), "/work");
        assert_int_equal(iget(s, "process.user.uid"), 1000);
        assert_int_equal(iget(s, "process.user.gid"), 1001);
        json_t *gids = json_object_get(json_object_get(proc, "user"), "additionalGids");
        assert_int_equal(json_array_size(gids), 3); /* 1001 first, then wheel 10, audio 29 */
        assert_int_equal(json_integer_value(json_array_get(gids, 0)), 1001);
        assert_int_equal(json_integer_value(json_array_get(gids, 1)), 10);

        /* User args replace Cmd but keep the Entrypoint. */
        char *args2[] = {"ls", NULL};
        assert_int_equal(oci_spec_apply_image_config(s, &ic, args2, tmpdir, NULL), 0);
        args = json_object_get(json_object_get(s, "process"), "args");
        assert_int_equal(json_array_size(args), 3);
        assert_string_equal(json_string_value(json_array_get(args, 2)), "ls");
        oci_image_config_done(&ic);
        json_decref(s);
}

static void test_oci_user_forms(void **state)
{
        (void)state;
        json_t *s = oci_spec_new_default("default", "c1");
        struct error *e = NULL;
        assert_int_equal(oci_spec_set_user(s, "1000", tmpdir, NULL), 0);
        assert_int_equal(iget(s, "process.user.gid"), 1001);
        assert_int_equal(oci_spec_set_user(s, "4242", tmpdir, NULL), 0); /* unknown uid: gid 0 */
        assert_int_equal(iget(s, "process.user.uid"), 4242);
        assert_int_equal(iget(s, "process.user.gid"), 0);
        assert_int_equal(oci_spec_set_user(s, "5:6", NULL, NULL), 0);
        assert_int_equal(iget(s, "process.user.uid"), 5);
        assert_int_equal(iget(s, "process.user.gid"), 6);
        assert_int_equal(oci_spec_set_user(s, "daemon:wheel", tmpdir, NULL), 0);
        assert_int_equal(iget(s, "process.user.uid"), 1);
        assert_int_equal(iget(s, "process.user.gid"), 10);
        assert_int_equal(oci_spec_set_user(s, "nobody", tmpdir, &e), -ENOENT);
        assert_string_equal(error_str(e), "no users found: not found");
        error_free(&e);
        assert_int_equal(oci_spec_set_user(s, "app:nogroup", tmpdir, &e), -ENOENT);
        error_free(&e);
        assert_int_equal(oci_spec_set_user(s, "app", NULL, &e), -EINVAL);
        error_free(&e);
        json_decref(s);
}

static void test_oci_user_lookup_stays_in_rootfs(void **state)
{
        (void)state;
        /* A rootfs whose /etc/passwd is an absolute symlink must resolve inside the rootfs, not to the host. */
        char *root = xasprintf("%s/evil", tmpdir);
        char *etc = xasprintf("%s/etc", root);
        assert_int_equal(mkdir(root, 0755), 0);
        assert_int_equal(mkdir(etc, 0755), 0);
        char *lnk = xasprintf("%s/passwd", etc);
        assert_int_equal(symlink("/../../../../etc/passwd", lnk), 0);
        json_t *s = oci_spec_new_default("default", "c1");
        struct error *e = NULL;
        /* The host has a "root" user; inside this rootfs the link points to itself's missing target. */
        int r = oci_spec_set_user(s, "root", root, &e);
        assert_true(r < 0);
        error_free(&e);
        json_decref(s);
        free(lnk);
        free(etc);
        free(root);
}

static void test_oci_mount_string(void **state)
{
        (void)state;
        json_t *s = oci_spec_new_default("default", "c1");
        struct error *e = NULL;
        assert_int_equal(oci_spec_add_mount_string(s, "type=bind,src=/tmp,dst=/mnt,options=rbind:ro", NULL), 0);
        json_t *mounts = json_object_get(s, "mounts");
        json_t *m = json_array_get(mounts, json_array_size(mounts) - 1);
        assert_string_equal(json_string_value(json_object_get(m, "destination")), "/mnt");
        assert_string_equal(json_string_value(json_object_get(m, "source")), "/tmp");
        assert_int_equal(json_array_size(json_object_get(m, "options")), 2);
        assert_int_equal(oci_spec_add_mount_string(s, "type=bind,src=/tmp", &e), -EINVAL);
        error_free(&e);
        assert_int_equal(oci_spec_add_mount_string(s, "bogus", &e), -EINVAL);
        error_free(&e);
        json_decref(s);
}

static void test_oci_resources_and_flags(void **state)
{
        (void)state;
        json_t *s = oci_spec_new_default("ns", "c");
        oci_spec_set_memory_limit(s, 64 << 20);
        oci_spec_set_cpus(s, 1.5);
        oci_spec_set_readonly_rootfs(s);
        oci_spec_set_tty(s);
        oci_spec_set_host_network(s, "myhost");
        assert_int_equal(iget(s, "linux.resources.memory.limit"), 64 << 20);
        assert_int_equal(iget(s, "linux.resources.cpu.quota"), 150000);
        assert_int_equal(iget(s, "linux.resources.cpu.period"), 100000);
        assert_true(json_is_true(json_object_get(json_object_get(s, "root"), "readonly")));
        assert_true(json_is_true(json_object_get(json_object_get(s, "process"), "terminal")));
        assert_int_equal(json_array_size(json_object_get(json_object_get(s, "linux"), "namespaces")), 4);
        assert_int_equal(json_array_size(json_object_get(s, "mounts")), 9);
        char *dump = oci_spec_dump(s);
        assert_non_null(strstr(dump, "\"HOSTNAME=myhost\""));
        assert_non_null(strstr(dump, "\"TERM=xterm\""));
        free(dump);
        json_decref(s);
}

static void test_oci_privileged(void **state)
{
        (void)state;
        json_t *s = oci_spec_new_default("ns", "c");
        assert_int_equal(oci_spec_set_privileged(s, NULL), 0);
        json_t *linux_ = json_object_get(s, "linux");
        assert_null(json_object_get(linux_, "maskedPaths"));
        json_t *devs = json_object_get(json_object_get(linux_, "resources"), "devices");
        assert_int_equal(json_array_size(devs), 1);
        assert_true(json_is_true(json_object_get(json_array_get(devs, 0), "allow")));
        char *dump = oci_spec_dump(s);
        if (geteuid() == 0)
                assert_non_null(strstr(dump, "CAP_SYS_ADMIN"));
        assert_non_null(strstr(dump, "\"/dev/null\""));
        assert_null(strstr(dump, "\"/dev/console\""));
        free(dump);
        json_decref(s);
}

static void test_oci_image_config_rejects_bad_input(void **state)
{
        (void)state;
        struct oci_image_config ic;
        struct error *e = NULL;
        assert_int_equal(oci_image_config_parse("{", 1, &ic, &e), -EINVAL);
        error_free(&e);
        assert_int_equal(oci_image_config_parse("[1]", 3, &ic, &e), -EINVAL);
        error_free(&e);
        /* 100 nested arrays exceed the depth bound. */
        char deep[256];
        memset(deep, '[', 100);
        memset(deep + 100, ']', 100);
        char *obj = xasprintf("{\"config\":%.*s}", 200, deep);
        assert_int_equal(oci_image_config_parse(obj, strlen(obj), &ic, &e), -EINVAL);
        error_free(&e);
        free(obj);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_oci_default_spec_matches_containerd),
                cmocka_unit_test(test_oci_env_replace_append_remove),
                cmocka_unit_test(test_oci_image_config_applied),
                cmocka_unit_test(test_oci_user_forms),
                cmocka_unit_test(test_oci_user_lookup_stays_in_rootfs),
                cmocka_unit_test(test_oci_mount_string),
                cmocka_unit_test(test_oci_resources_and_flags),
                cmocka_unit_test(test_oci_privileged),
                cmocka_unit_test(test_oci_image_config_rejects_bad_input),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}

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
#include "util/strv.h"

static char *tmpdir;

static char *write_file(const char *rel, const char *content)
{
        char *p = xasprintf("%s/%s", tmpdir, rel);
        FILE *f = fopen(p, "we");
        assert_non_null(f);
        fputs(content, f);
        fclose(f);
        return p;
}

static int setup(void **state)
{
        (void)state;
        tmpdir = xstrdup("/tmp/krill-oci-opts-XXXXXX");
        assert_non_null(mkdtemp(tmpdir));
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

static void assert_msg(const struct error *e, const char *want, bool exact)
{
        char *m = error_message(e);
        if (exact)
                assert_string_equal(m, want);
        else
                assert_non_null(strstr(m, want));
        free(m);
}

static json_t *jget(json_t *j, const char *path)
{
        char *copy = xstrdup(path), *save = NULL;
        for (char *t = strtok_r(copy, ".", &save); t && j; t = strtok_r(NULL, ".", &save))
                j = json_is_array(j) ? json_array_get(j, (size_t)atoi(t)) : json_object_get(j, t);
        free(copy);
        return j;
}

static bool has_string(json_t *a, const char *s)
{
        size_t i;
        json_t *v;
        json_array_foreach(a, i, v)
        {
                if (strcmp(json_string_value(v), s) == 0)
                        return true;
        }
        return false;
}

static void test_oci_caps_add_drop(void **state)
{
        (void)state;
        json_t *s = oci_spec_new_default("default", "c1");
        char *add[] = {"CAP_SYS_ADMIN", "CAP_CHOWN", NULL};
        char *drop[] = {"CAP_NET_RAW", "CAP_SYS_ADMIN", NULL};
        oci_spec_add_capabilities(s, add);
        static const char *const sets[] = {"bounding", "effective", "permitted", NULL};
        for (const char *const *set = sets; *set; set++) {
                char *p = xasprintf("process.capabilities.%s", *set);
                json_t *a = jget(s, p);
                assert_int_equal(json_array_size(a), 15); /* CHOWN was already there */
                assert_string_equal(json_string_value(json_array_get(a, 14)), "CAP_SYS_ADMIN");
                free(p);
        }
        oci_spec_drop_capabilities(s, drop);
        json_t *eff = jget(s, "process.capabilities.effective");
        assert_int_equal(json_array_size(eff), 13);
        assert_false(has_string(eff, "CAP_NET_RAW"));
        assert_false(has_string(eff, "CAP_SYS_ADMIN"));
        assert_true(has_string(eff, "CAP_CHOWN"));

        /* dropping everything leaves no key (Go's nil slice, omitempty) */
        json_t *bnd = jget(s, "process.capabilities.bounding");
        size_t n = json_array_size(bnd);
        char **all = xcalloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++)
                all[i] = xstrdup(json_string_value(json_array_get(bnd, i)));
        oci_spec_drop_capabilities(s, all);
        assert_null(jget(s, "process.capabilities.bounding"));
        assert_non_null(jget(s, "process.capabilities"));
        strv_free(all);

        struct error *e = NULL;
        char *bad[] = {"CAP_CHOWN", "SYS_ADMIN", NULL};
        assert_int_equal(oci_check_capability_names(bad, &e), -EINVAL);
        assert_msg(e, "capabilities must be specified with 'CAP_' prefix", true);
        error_free(&e);
        assert_int_equal(oci_check_capability_names(add, NULL), 0);
        json_decref(s);
}

static void test_oci_linux_options(void **state)
{
        (void)state;
        json_t *s = oci_spec_new_default("default", "c1");
        oci_spec_set_cgroups_path(s, "");
        assert_null(jget(s, "linux.cgroupsPath"));
        oci_spec_set_cgroups_path(s, "/my/cg");
        assert_string_equal(json_string_value(jget(s, "linux.cgroupsPath")), "/my/cg");
        oci_spec_set_no_new_privileges(s, false);
        assert_null(jget(s, "process.noNewPrivileges"));
        oci_spec_set_rootfs_propagation(s, "rshared");
        assert_string_equal(json_string_value(jget(s, "linux.rootfsPropagation")), "rshared");
        oci_spec_set_root_path(s, "/abs/rootfs");
        assert_string_equal(json_string_value(jget(s, "root.path")), "/abs/rootfs");

        oci_spec_set_cpu_shares(s, 512);
        oci_spec_set_cpu_cfs(s, -1, 50000);
        assert_int_equal(json_integer_value(jget(s, "linux.resources.cpu.shares")), 512);
        assert_int_equal(json_integer_value(jget(s, "linux.resources.cpu.quota")), -1);
        assert_int_equal(json_integer_value(jget(s, "linux.resources.cpu.period")), 50000);

        /* a namespace of an existing type is replaced in place, a new one appended */
        oci_spec_set_namespace(s, "network", "/proc/1/ns/net");
        json_t *nss = jget(s, "linux.namespaces");
        assert_int_equal(json_array_size(nss), 5);
        assert_string_equal(json_string_value(jget(s, "linux.namespaces.4.type")), "network");
        assert_string_equal(json_string_value(jget(s, "linux.namespaces.4.path")), "/proc/1/ns/net");
        oci_spec_set_namespace(s, "cgroup", "/proc/1/ns/cgroup");
        assert_int_equal(json_array_size(nss), 6);

        char *type = NULL, *path = NULL;
        struct error *e = NULL;
        assert_int_equal(oci_parse_with_ns("ipc:/proc/2/ns/ipc", &type, &path, NULL), 0);
        assert_string_equal(type, "ipc");
        assert_string_equal(path, "/proc/2/ns/ipc");
        free(type);
        free(path);
        assert_int_equal(oci_parse_with_ns("ipc", &type, &path, &e), -EINVAL);
        assert_msg(e, "joining a Linux namespace using --with-ns requires the format 'nstype:path'", true);
        error_free(&e);
        assert_int_equal(oci_parse_with_ns("time:/x", &type, &path, &e), -EINVAL);
        assert_msg(e, "the Linux namespace type specified in --with-ns is not valid: time", true);
        error_free(&e);
        json_decref(s);
}

static void test_oci_id_mappings(void **state)
{
        (void)state;
        struct oci_id_mapping u, g;
        struct error *e = NULL;
        assert_int_equal(oci_parse_id_mapping("0:100000:65536", &u, NULL), 0);
        assert_int_equal(u.container_id, 0);
        assert_int_equal(u.host_id, 100000);
        assert_int_equal(u.size, 65536);
        assert_int_equal(oci_parse_id_mapping("0x10:010:0b11", &g, NULL), 0); /* Go base 0 */
        assert_int_equal(g.container_id, 16);
        assert_int_equal(g.host_id, 8);
        assert_int_equal(g.size, 3);
        assert_int_equal(oci_parse_id_mapping("0:1", &g, &e), -EINVAL);
        assert_msg(e, "user namespace mappings require the format `container-id:host-id:size`", true);
        error_free(&e);
        assert_int_equal(oci_parse_id_mapping("0:x:1", &g, &e), -EINVAL);
        assert_msg(e, "invalid host id for user namespace remapping: strconv.ParseUint: "
                                              "parsing \"x\": invalid syntax", true);
        error_free(&e);
        assert_int_equal(oci_parse_id_mapping("0:1:4294967296", &g, &e), -EINVAL);
        assert_msg(e, "value out of range", false);
        error_free(&e);

        json_t *s = oci_spec_new_default("default", "c1");
        g = (struct oci_id_mapping){0, 200000, 1000};
        oci_spec_set_user_namespace(s, &u, &g);
        oci_spec_set_user_namespace(s, &u, &g); /* one user namespace, mappings appended */
        assert_int_equal(json_array_size(jget(s, "linux.namespaces")), 6);
        assert_string_equal(json_string_value(jget(s, "linux.namespaces.5.type")), "user");
        assert_int_equal(json_array_size(jget(s, "linux.uidMappings")), 2);
        assert_int_equal(json_integer_value(jget(s, "linux.uidMappings.0.hostID")), 100000);
        assert_int_equal(json_integer_value(jget(s, "linux.gidMappings.0.hostID")), 200000);
        assert_int_equal(json_integer_value(jget(s, "linux.gidMappings.0.size")), 1000);
        json_decref(s);
}

static void test_oci_devices(void **state)
{
        (void)state;
        json_t *s = oci_spec_new_default("default", "c1");
        struct error *e = NULL;
        assert_int_equal(oci_spec_add_devices(s, "/dev/null", NULL, "rwm", NULL), 0);
        json_t *devs = jget(s, "linux.devices");
        assert_int_equal(json_array_size(devs), 1);
        assert_string_equal(json_string_value(jget(devs, "0.path")), "/dev/null");
        assert_string_equal(json_string_value(jget(devs, "0.type")), "c");
        assert_int_equal(json_integer_value(jget(devs, "0.major")), 1);
        assert_int_equal(json_integer_value(jget(devs, "0.minor")), 3);
        assert_int_equal(json_integer_value(jget(devs, "0.fileMode")), 0666);
        json_t *rules = jget(s, "linux.resources.devices");
        json_t *last = json_array_get(rules, json_array_size(rules) - 1);
        assert_true(json_is_true(json_object_get(last, "allow")));
        assert_string_equal(json_string_value(json_object_get(last, "access")), "rwm");
        assert_int_equal(json_integer_value(json_object_get(last, "minor")), 3);

        /* a directory: fifos count, regular files do not, pts/console skipped, sorted by name */
        char *dir = xasprintf("%s/devdir", tmpdir);
        assert_int_equal(mkdir(dir, 0755), 0);
        char *sub = xasprintf("%s/pts", dir);
        assert_int_equal(mkdir(sub, 0755), 0);
        char *f1 = xasprintf("%s/b-fifo", dir), *f2 = xasprintf("%s/a-fifo", dir), *f3 = xasprintf("%s/pts/x", dir);
        assert_int_equal(mkfifo(f1, 0600), 0);
        assert_int_equal(mkfifo(f2, 0600), 0);
        assert_int_equal(mkfifo(f3, 0600), 0);
        free(write_file("devdir/regular", "x"));
        json_t *s2 = oci_spec_new_default("default", "c1");
        assert_int_equal(oci_spec_add_devices(s2, dir, "/dev/mine", "r", NULL), 0);
        devs = jget(s2, "linux.devices");
        assert_int_equal(json_array_size(devs), 2);
        assert_string_equal(json_string_value(jget(devs, "0.path")), "/dev/mine/a-fifo");
        assert_string_equal(json_string_value(jget(devs, "0.type")), "p");
        assert_int_equal(json_integer_value(jget(devs, "0.fileMode")), 0600);

        char *reg = xasprintf("%s/devdir/regular", tmpdir);
        assert_int_equal(oci_spec_add_devices(s2, reg, NULL, "rwm", &e), -EINVAL);
        assert_msg(e, "not a device node", true);
        error_free(&e);
        assert_int_equal(oci_spec_add_devices(s2, "/nonexistent-dev", NULL, "rwm", &e), -ENOENT);
        assert_msg(e, "error stating device path", false);
        error_free(&e);
        free(reg);
        free(f1);
        free(f2);
        free(f3);
        free(sub);
        free(dir);
        json_decref(s2);
        json_decref(s);
}

static void test_oci_files(void **state)
{
        (void)state;
        struct error *e = NULL;
        json_t *s = NULL;
        char *p = write_file("config.json", "{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"/r\"},\"x\":[1,2]}");
        assert_int_equal(oci_spec_load_file(p, &s, NULL), 0);
        assert_string_equal(json_string_value(jget(s, "root.path")), "/r");
        free(p);

        p = write_file("bad.json", "{\"a\":");
        json_t *t = NULL;
        assert_int_equal(oci_spec_load_file(p, &t, &e), -EINVAL);
        assert_msg(e, "decoding spec config file failed", false);
        error_free(&e);
        free(p);
        p = write_file("arr.json", "[1]");
        assert_int_equal(oci_spec_load_file(p, &t, &e), -EINVAL);
        error_free(&e);
        assert_int_equal(oci_spec_set_seccomp_profile(s, p, &e), -EINVAL);
        assert_msg(e, "decoding seccomp profile failed", false);
        error_free(&e);
        free(p);
        assert_int_equal(oci_spec_load_file("/nonexistent/spec.json", &t, &e), -ENOENT);
        assert_msg(e, "cannot load spec config file", false);
        error_free(&e);
        assert_int_equal(oci_spec_set_seccomp_profile(s, "/nonexistent/p.json", &e), -ENOENT);
        assert_msg(e, "cannot load seccomp profile \"/nonexistent/p.json\": "
                                              "open /nonexistent/p.json: no such file or directory", true);
        error_free(&e);

        p = write_file("seccomp.json", "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"mkdir\"],"
                                       "\"action\":\"SCMP_ACT_ERRNO\"}]}");
        assert_int_equal(oci_spec_set_seccomp_profile(s, p, NULL), 0);
        assert_string_equal(json_string_value(jget(s, "linux.seccomp.defaultAction")), "SCMP_ACT_ALLOW");
        assert_string_equal(json_string_value(jget(s, "linux.seccomp.syscalls.0.names.0")), "mkdir");
        free(p);

        /* depth bound */
        char deep[300];
        memset(deep, '[', 100);
        memset(deep + 100, ']', 100);
        deep[200] = 0;
        char *obj = xasprintf("{\"a\":%s}", deep);
        p = write_file("deep.json", obj);
        assert_int_equal(oci_spec_load_file(p, &t, &e), -EINVAL);
        error_free(&e);
        free(p);
        free(obj);
        json_decref(s);
}

static bool allows(json_t *profile, const char *name)
{
        size_t i, k;
        json_t *c, *n;
        json_array_foreach(json_object_get(profile, "syscalls"), i, c)
        {
                if (strcmp(json_string_value(json_object_get(c, "action")), "SCMP_ACT_ALLOW") != 0 ||
                    json_object_get(c, "args"))
                        continue;
                json_array_foreach(json_object_get(c, "names"), k, n)
                {
                        if (strcmp(json_string_value(n), name) == 0)
                                return true;
                }
        }
        return false;
}

static void test_oci_seccomp_default(void **state)
{
        (void)state;
        json_t *s = oci_spec_new_default("default", "c1");
        json_t *p = oci_seccomp_default_profile(s);
        assert_string_equal(json_string_value(json_object_get(p, "defaultAction")), "SCMP_ACT_ERRNO");
#if defined(__x86_64__)
        assert_string_equal(json_string_value(jget(p, "architectures.0")), "SCMP_ARCH_X86_64");
        assert_true(allows(p, "arch_prctl"));
#endif
        assert_true(allows(p, "read"));
        assert_true(allows(p, "chroot")); /* CAP_SYS_CHROOT is a default capability */
        assert_false(allows(p, "mount"));
        assert_false(allows(p, "unshare"));
        assert_false(allows(p, "reboot"));
        /* without CAP_SYS_ADMIN: clone only without namespace flags, clone3 fails with ENOSYS */
        json_t *last = json_array_get(json_object_get(p, "syscalls"), json_array_size(json_object_get(p, "syscalls")) - 1);
        assert_string_equal(json_string_value(jget(last, "names.0")), "clone3");
        assert_int_equal(json_integer_value(json_object_get(last, "errnoRet")), ENOSYS);
        json_t *personality = json_array_get(json_object_get(p, "syscalls"), 1);
        assert_string_equal(json_string_value(jget(personality, "names.0")), "personality");
        assert_string_equal(json_string_value(jget(personality, "args.0.op")), "SCMP_CMP_EQ");
        json_decref(p);

        char *add[] = {"CAP_SYS_ADMIN", "CAP_SYS_BOOT", NULL};
        char *drop[] = {"CAP_SYS_CHROOT", NULL};
        oci_spec_add_capabilities(s, add);
        oci_spec_drop_capabilities(s, drop);
        p = oci_seccomp_default_profile(s);
        assert_true(allows(p, "mount"));
        assert_true(allows(p, "clone3"));
        assert_true(allows(p, "reboot"));
        assert_false(allows(p, "chroot"));
        last = json_array_get(json_object_get(p, "syscalls"), json_array_size(json_object_get(p, "syscalls")) - 1);
        assert_null(json_object_get(last, "errnoRet"));
        json_decref(p);
        json_decref(s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_oci_caps_add_drop),
                cmocka_unit_test(test_oci_linux_options),
                cmocka_unit_test(test_oci_id_mappings),
                cmocka_unit_test(test_oci_devices),
                cmocka_unit_test(test_oci_files),
                cmocka_unit_test(test_oci_seccomp_default),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "daemon/config.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/strv.h"

#ifndef CONFIG_CORPUS_DIR
#error "CONFIG_CORPUS_DIR must point at tests/fuzz/corpus/toml"
#endif

struct fixture {
        char dir[64];
        int dfd;
};

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        snprintf(f->dir, sizeof(f->dir), "/tmp/krill-test-config-XXXXXX");
        if (!mkdtemp(f->dir))
                return -1;
        f->dfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        *state = f;
        return f->dfd < 0 ? -1 : 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        int r = fs_rm_rf_at(AT_FDCWD, f->dir, NULL);
        close(f->dfd);
        free(f);
        return r;
}

static char *write_file(struct fixture *f, const char *name, const char *text)
{
        assert_int_equal(fs_write_file_atomic(f->dfd, name, text, strlen(text), 0644, NULL), 0);
        return xasprintf("%s/%s", f->dir, name);
}

static char *print_to_string(const struct krill_config *cfg)
{
        char *buf = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&buf, &len);
        assert_non_null(m);
        assert_int_equal(krill_config_print(m, cfg), 0);
        fclose(m);
        return buf;
}

static void test_config_defaults(void **state)
{
        (void)state;
        struct krill_config cfg;
        krill_config_defaults(&cfg);
        assert_int_equal(cfg.version, 2);
        assert_string_equal(cfg.root, "/var/lib/krill");
        assert_string_equal(cfg.state, "/run/krill");
        assert_string_equal(cfg.grpc.address, "/run/krill/krill.sock");
        assert_int_equal(cfg.grpc.max_recv_message_size, 16 << 20);
        assert_string_equal(cfg.ttrpc.address, "");
        _cleanup_free_ char *tt = krill_config_ttrpc_address(&cfg);
        assert_string_equal(tt, "/run/krill/krill.sock.ttrpc");
        assert_string_equal(cfg.debug.level, "");
        assert_string_equal(cfg.cri.sandbox_image, "registry.k8s.io/pause:3.6");
        assert_int_equal(cfg.cri.max_concurrent_downloads, 3);
        assert_string_equal(cfg.cri.registry.config_path, "");
        assert_string_equal(cfg.cri.containerd.default_runtime_name, "runc");
        const struct krill_config_runtime *runc = krill_config_find_runtime(&cfg, "runc");
        assert_non_null(runc);
        assert_string_equal(runc->runtime_type, "io.containerd.runc.v2");
        assert_string_equal(runc->binary_name, "");
        assert_null(krill_config_find_runtime(&cfg, "crun"));
        assert_true(cfg.gc.pause_threshold == 0.02);
        assert_int_equal(krill_config_timeout_ns(&cfg, "io.containerd.timeout.shim.load", 0), 5000000000LL);
        assert_int_equal(krill_config_timeout_ns(&cfg, "nope", 42), 42);
        assert_string_equal(cfg.task.platforms[0], "linux/amd64");
        assert_false(cfg.set.root);
        krill_config_free(&cfg);
        krill_config_free(&cfg); /* idempotent on a zeroed struct */
        krill_config_free(NULL);
}

static void test_config_print_default_round_trip(void **state)
{
        struct fixture *f = *state;
        struct krill_config def, loaded;
        char *buf = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&buf, &len);
        assert_int_equal(krill_config_print_default(m), 0);
        fclose(m);
        /* Spot-check the layout: containerd's indentation and quoting. */
        assert_non_null(strstr(buf, "version = 2\n"));
        assert_non_null(strstr(buf, "\n[grpc]\n  address = \"/run/krill/krill.sock\"\n"));
        assert_non_null(strstr(buf, "\n  [plugins.\"io.containerd.grpc.v1.cri\"]\n"));
        assert_non_null(strstr(buf, "    sandbox_image = \"registry.k8s.io/pause:3.6\"\n"));
        assert_non_null(strstr(buf, "        [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n"
                                    "          base_runtime_spec = \"\"\n"));
        assert_non_null(strstr(buf, "            BinaryName = \"\"\n"));
        assert_non_null(strstr(buf, "    pause_threshold = 0.02\n"));
        assert_non_null(strstr(buf, "\n[timeouts]\n  \"io.containerd.timeout.bolt.open\" = \"0s\"\n"));
        assert_non_null(strstr(buf, "\n[ttrpc]\n  address = \"\"\n"));

        _cleanup_free_ char *path = write_file(f, "default.toml", buf);
        krill_config_defaults(&def);
        krill_config_defaults(&loaded);
        /* Change things first so the load must really set them back. */
        free(loaded.root);
        loaded.root = xstrdup("/elsewhere");
        loaded.cri.max_concurrent_downloads = 9;
        _cleanup_strv_free_ char **unknown = NULL;
        _cleanup_error_ struct error *e = NULL;
        int r = krill_config_load_file(&loaded, path, &unknown, &e);
        if (r < 0)
                fail_msg("%s", error_str(e));
        assert_int_equal(strv_length(unknown), 0);
        assert_true(loaded.set.root && loaded.set.state && loaded.set.grpc_address && loaded.set.ttrpc_address);
        /* imports now lists the loaded file, as containerd reports it; clear it to compare the rest. */
        assert_int_equal(strv_length(loaded.imports), 1);
        assert_string_equal(loaded.imports[0], path);
        strv_free(loaded.imports);
        loaded.imports = strv_new_empty();
        _cleanup_free_ char *again = print_to_string(&loaded);
        assert_string_equal(again, buf);
        assert_string_equal(loaded.root, "/var/lib/krill");
        assert_int_equal(loaded.cri.max_concurrent_downloads, 3);
        krill_config_free(&def);
        krill_config_free(&loaded);
        free(buf);
}

static void check_containerd_default(const char *text, size_t len)
{
        struct krill_config cfg;
        _cleanup_strv_free_ char **unknown = NULL;
        _cleanup_error_ struct error *e = NULL;
        krill_config_defaults(&cfg);
        int r = krill_config_load_buffer(&cfg, "containerd.toml", text, len, &unknown, &e);
        if (r < 0)
                fail_msg("%s", error_str(e));
        if (strv_length(unknown) > 0) {
                _cleanup_free_ char *j = strv_join(unknown, ", ");
                fail_msg("unknown keys in containerd's default config: %s", j);
        }
        assert_string_equal(cfg.root, "/var/lib/containerd");
        assert_string_equal(cfg.state, "/run/containerd");
        assert_string_equal(cfg.grpc.address, "/run/containerd/containerd.sock");
        assert_string_equal(cfg.cri.cni.bin_dir, "/opt/cni/bin");
        assert_string_equal(cfg.cri.sandbox_image, "registry.k8s.io/pause:3.6");
        assert_string_equal(cfg.cri.stream_idle_timeout, "4h0m0s");
        assert_int_equal(cfg.cri.containerd.n_runtimes, 1);
        assert_string_equal(cfg.cri.containerd.runtimes[0].runtime_type, "io.containerd.runc.v2");
        assert_string_equal(cfg.diff_default[0], "walking");
        assert_int_equal(krill_config_timeout_ns(&cfg, "io.containerd.timeout.shim.shutdown", 0), 3000000000LL);
        krill_config_free(&cfg);
}

static void test_config_accepts_containerd_default(void **state)
{
        (void)state;
        char *text = NULL;
        size_t len = 0;
        assert_int_equal(fs_read_file(AT_FDCWD, CONFIG_CORPUS_DIR "/containerd-default.toml", 1 << 20, &text, &len, NULL), 0);
        check_containerd_default(text, len);
        free(text);

        /* And what the installed containerd prints right now, when there is one. */
        if (access("/usr/bin/containerd", X_OK) == 0) {
                FILE *p = popen("/usr/bin/containerd config default 2>/dev/null", "r");
                assert_non_null(p);
                char *out = NULL;
                size_t n = 0;
                assert_int_equal(fs_read_fd(fileno(p), 1 << 20, &out, &n, NULL), 0);
                if (pclose(p) == 0 && n > 0)
                        check_containerd_default(out, n);
                free(out);
        }
}

static void test_config_overrides_and_unknown_keys(void **state)
{
        struct fixture *f = *state;
        _cleanup_free_ char *path = write_file(f, "config.toml",
                "version = 2\n"
                "root = \"/tmp/r\"\n"
                "bogus = 1\n"
                "[grpc]\n  address = \"/tmp/s/k.sock\"\n  uid = 1000\n  weird = \"x\"\n"
                "[debug]\n  level = \"debug\"\n  format = \"json\"\n"
                "[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"pause:1\"\n  max_concurrent_downloads = 5\n"
                "  [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.crun]\n    runtime_type = \"io.containerd.runc.v2\"\n"
                "    [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.crun.options]\n      BinaryName = \"/usr/bin/crun\"\n"
                "      SystemdCgroup = true\n      Frobnicate = 1\n"
                "  [plugins.\"io.containerd.grpc.v1.cri\".registry]\n    config_path = \"/etc/krill/certs.d\"\n"
                "    [plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"docker.io\"]\n      endpoint = [\"http://127.0.0.1:5000\"]\n"
                "[plugins.\"io.containerd.foo.v1.bar\"]\n  x = 1\n"
                "[plugins.\"io.containerd.snapshotter.v1.overlayfs\"]\n  root_path = \"/data/ovl\"\n"
                "[timeouts]\n  \"io.containerd.timeout.shim.load\" = \"7s\"\n  \"custom\" = \"1m\"\n"
                "[ttrpc]\n  address = \"/tmp/s/other.ttrpc\"\n");
        struct krill_config cfg;
        _cleanup_strv_free_ char **unknown = NULL;
        _cleanup_error_ struct error *e = NULL;
        krill_config_defaults(&cfg);
        int r = krill_config_load_file(&cfg, path, &unknown, &e);
        if (r < 0)
                fail_msg("%s", error_str(e));
        _cleanup_free_ char *joined = strv_join(unknown, " ");
        assert_string_equal(joined, "bogus grpc.weird plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.crun.options."
                                    "Frobnicate plugins.\"io.containerd.foo.v1.bar\"");
        assert_string_equal(cfg.root, "/tmp/r");
        assert_string_equal(cfg.state, "/run/krill");
        assert_true(cfg.set.root);
        assert_false(cfg.set.state);
        assert_true(cfg.set.grpc_address);
        assert_string_equal(cfg.grpc.address, "/tmp/s/k.sock");
        assert_int_equal(cfg.grpc.uid, 1000);
        assert_string_equal(cfg.debug.level, "debug");
        assert_string_equal(cfg.cri.sandbox_image, "pause:1");
        assert_int_equal(cfg.cri.max_concurrent_downloads, 5);
        assert_string_equal(cfg.cri.registry.config_path, "/etc/krill/certs.d");
        assert_int_equal(cfg.cri.containerd.n_runtimes, 2);
        const struct krill_config_runtime *crun = krill_config_find_runtime(&cfg, "crun");
        assert_non_null(crun);
        assert_string_equal(crun->binary_name, "/usr/bin/crun");
        assert_true(crun->systemd_cgroup);
        assert_non_null(krill_config_find_runtime(&cfg, "runc"));
        assert_string_equal(cfg.overlayfs.root_path, "/data/ovl");
        assert_int_equal(krill_config_timeout_ns(&cfg, "io.containerd.timeout.shim.load", 0), 7000000000LL);
        assert_int_equal(krill_config_timeout_ns(&cfg, "custom", 0), 60000000000LL);
        assert_int_equal(krill_config_timeout_ns(&cfg, "io.containerd.timeout.shim.cleanup", 0), 5000000000LL);
        _cleanup_free_ char *tt = krill_config_ttrpc_address(&cfg);
        assert_string_equal(tt, "/tmp/s/other.ttrpc");

        /* A copy is independent and prints the same; printing and reloading keeps the runtimes. */
        struct krill_config copy, back;
        krill_config_copy(&copy, &cfg);
        _cleanup_free_ char *p1 = print_to_string(&cfg);
        krill_config_free(&cfg);
        _cleanup_free_ char *p2 = print_to_string(&copy);
        assert_string_equal(p1, p2);
        krill_config_defaults(&back);
        _cleanup_strv_free_ char **unknown2 = NULL;
        assert_int_equal(krill_config_load_buffer(&back, "printed", p2, strlen(p2), &unknown2, NULL), 0);
        assert_int_equal(strv_length(unknown2), 0);
        _cleanup_free_ char *p3 = print_to_string(&back);
        assert_string_equal(p3, p2);
        krill_config_free(&copy);
        krill_config_free(&back);
}

static void expect_load_error(struct fixture *f, const char *text, int code, const char *msg)
{
        _cleanup_free_ char *path = write_file(f, "bad.toml", text);
        struct krill_config cfg;
        _cleanup_strv_free_ char **unknown = NULL;
        _cleanup_error_ struct error *e = NULL;
        krill_config_defaults(&cfg);
        assert_int_equal(krill_config_load_file(&cfg, path, &unknown, &e), -code);
        assert_null(unknown);
        _cleanup_free_ char *want = xasprintf("%s: %s", path, msg);
        assert_string_equal(error_str(e), want);
        /* cfg is untouched on failure. */
        assert_string_equal(cfg.root, "/var/lib/krill");
        assert_string_equal(cfg.grpc.address, "/run/krill/krill.sock");
        krill_config_free(&cfg);
}

/* containerd's CRI registry.configs."<host>".auth: the credentials daemon-side pulls use, read as ParseAuth does. */
static void test_config_registry_auth(void **state)
{
        struct fixture *f = *state;
        /* "user:pa:ss\0\0" in base64 */
        _cleanup_free_ char *path = write_file(f, "config.toml",
                "version = 2\n"
                "[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"a.example:5000\".auth]\n"
                "  username = \"alice\"\n  password = \"s3cret\"\n"
                "[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"b.example\".auth]\n"
                "  auth = \"dXNlcjpwYTpzcwAA\"\n"
                "[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"b.example\".tls]\n"
                "  insecure_skip_verify = true\n"
                "[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"c.example\".auth]\n"
                "  identitytoken = \"tok\"\n"
                "[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"d.example\".auth]\n"
                "  auth = \"not base64!\"\n");
        struct krill_config cfg;
        _cleanup_strv_free_ char **unknown = NULL;
        _cleanup_error_ struct error *e = NULL;
        krill_config_defaults(&cfg);
        int r = krill_config_load_file(&cfg, path, &unknown, &e);
        if (r < 0)
                fail_msg("%s", error_str(e));
        assert_int_equal(strv_length(unknown), 0);
        assert_int_equal(cfg.cri.registry.n_hosts, 4);
        char *u = NULL, *p = NULL;
        assert_int_equal(krill_config_registry_creds(&cfg, "a.example:5000", &u, &p, NULL), 1);
        assert_string_equal(u, "alice");
        assert_string_equal(p, "s3cret");
        free(u);
        free(p);
        assert_int_equal(krill_config_registry_creds(&cfg, "b.example", &u, &p, NULL), 1);
        assert_string_equal(u, "user");
        assert_string_equal(p, "pa:ss");
        free(u);
        free(p);
        assert_int_equal(krill_config_registry_creds(&cfg, "c.example", &u, &p, NULL), 1);
        assert_string_equal(u, "");
        assert_string_equal(p, "tok");
        free(u);
        free(p);
        assert_int_equal(krill_config_registry_creds(&cfg, "d.example", &u, &p, &e), -EINVAL);
        assert_int_equal(krill_config_registry_creds(&cfg, "nowhere", &u, &p, NULL), 0);
        /* a copy keeps them, and `config dump` style printing writes them back */
        struct krill_config copy;
        krill_config_copy(&copy, &cfg);
        assert_int_equal(copy.cri.registry.n_hosts, 4);
        assert_string_equal(copy.cri.registry.hosts[0].username, "alice");
        char *buf = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&buf, &len);
        krill_config_print(m, &copy);
        fclose(m);
        assert_non_null(strstr(buf, "[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"a.example:5000\".auth]"));
        assert_non_null(strstr(buf, "username = \"alice\""));
        free(buf);
        krill_config_free(&copy);
        krill_config_free(&cfg);
}

static void test_config_errors(void **state)
{
        struct fixture *f = *state;
        expect_load_error(f, "root = \"/x\"\n[grpc]\nuid = \"root\"\n", EINVAL,
                          "toml: line 3 column 7: grpc.uid: expected integer, got string: invalid argument");
        expect_load_error(f, "root = \"/x\"\nroot = \"/y\"\n", EINVAL,
                          "toml: line 2 column 1: duplicate key root: invalid argument");
        expect_load_error(f, "version = 3\nroot = \"/x\"\n", EINVAL,
                          "unsupported config version 3: krill reads version 2: invalid argument");
        expect_load_error(f, "root = \"/x\"\n[plugins.cri]\nx = 1\n", EINVAL,
                          "invalid plugin key URI \"cri\" expect io.containerd.x.vx: invalid argument");
        expect_load_error(f, "disabled_plugins = [\"cri\"]\n", EINVAL,
                          "invalid disabled plugin URI \"cri\" expect io.containerd.x.vx: invalid argument");
        expect_load_error(f, "[debug]\nlevel = \"loud\"\n", EINVAL,
                          "debug.level: not a valid logrus Level: \"loud\": invalid argument");
        expect_load_error(f, "[debug]\nformat = \"xml\"\n", EINVAL, "debug.format: unknown log format \"xml\": invalid argument");
        expect_load_error(f, "[plugins.\"io.containerd.grpc.v1.cri\"]\nstream_idle_timeout = \"4 hours\"\n", EINVAL,
                          "toml: line 2 column 23: plugins.\"io.containerd.grpc.v1.cri\".stream_idle_timeout: "
                          "time: invalid duration \"4 hours\": invalid argument");
        expect_load_error(f, "[grpc]\nmax_recv_message_size = 0\n", EINVAL,
                          "toml: line 2 column 25: grpc.max_recv_message_size: value 0 out of range: invalid argument");
        expect_load_error(f, "grpc = 1\n", EINVAL, "toml: line 1 column 8: grpc: expected table, got integer: invalid argument");
        expect_load_error(f, "[timeouts]\n\"x\" = 5\n", EINVAL,
                          "toml: line 2 column 7: timeouts.x: expected string, got integer: invalid argument");
        expect_load_error(f, "[plugins.\"io.containerd.metadata.v1.lmdb\"]\ncontent_sharing_policy = \"mine\"\n", EINVAL,
                          "unknown policy: mine: invalid argument");
        expect_load_error(f, "[grpc]\naddress = \"\"\n", EINVAL, "grpc address cannot be empty: invalid argument");

        struct krill_config cfg;
        _cleanup_error_ struct error *e = NULL;
        krill_config_defaults(&cfg);
        assert_int_equal(krill_config_load_file(&cfg, "/nonexistent/krill.toml", NULL, &e), -ENOENT);
        assert_string_equal(error_str(e), "open /nonexistent/krill.toml: not found");
        krill_config_free(&cfg);
}

static void test_config_imports(void **state)
{
        struct fixture *f = *state;
        assert_int_equal(fs_mkdir_p(f->dfd, "conf.d", 0755, NULL), 0);
        _cleanup_free_ char *a = write_file(f, "conf.d/10-a.toml", "[grpc]\nuid = 7\nodd = 1\n");
        _cleanup_free_ char *b = write_file(f, "conf.d/20-b.toml", "[grpc]\nuid = 8\n");
        _cleanup_free_ char *c = write_file(f, "extra.toml", "state = \"/tmp/st\"\nimports = [\"config.toml\"]\n");
        _cleanup_free_ char *glob = xasprintf("%s/conf.d/*.toml", f->dir);
        _cleanup_free_ char *main_text = xasprintf("version = 2\nimports = [\"%s\", \"extra.toml\"]\nroot = \"/tmp/r\"\n", glob);
        _cleanup_free_ char *path = write_file(f, "config.toml", main_text);
        struct krill_config cfg;
        _cleanup_strv_free_ char **unknown = NULL;
        _cleanup_error_ struct error *e = NULL;
        krill_config_defaults(&cfg);
        int r = krill_config_load_file(&cfg, path, &unknown, &e);
        if (r < 0)
                fail_msg("%s", error_str(e));
        assert_int_equal(cfg.grpc.uid, 8); /* later files win */
        assert_string_equal(cfg.state, "/tmp/st");
        assert_string_equal(cfg.root, "/tmp/r");
        assert_int_equal(strv_length(cfg.imports), 4);
        assert_string_equal(cfg.imports[0], path);
        assert_true(strv_contains(cfg.imports, a));
        assert_true(strv_contains(cfg.imports, b));
        assert_true(strv_contains(cfg.imports, c));
        assert_int_equal(strv_length(unknown), 1);
        _cleanup_free_ char *want = xasprintf("%s: grpc.odd", a);
        assert_string_equal(unknown[0], want);
        krill_config_free(&cfg);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_config_defaults),
                cmocka_unit_test_setup_teardown(test_config_print_default_round_trip, setup, teardown),
                cmocka_unit_test(test_config_accepts_containerd_default),
                cmocka_unit_test_setup_teardown(test_config_overrides_and_unknown_keys, setup, teardown),
                cmocka_unit_test_setup_teardown(test_config_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_config_registry_auth, setup, teardown),
                cmocka_unit_test_setup_teardown(test_config_imports, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Registry client and resolver against tests/fake_registry.py on 127.0.0.1: resolution by tag and digest,
 * buffered and streamed fetches with verification, Basic and Bearer auth, redirects, hosts.toml mirrors with
 * fallback, and the errors a user sees. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/manifest.h"
#include "image/resolver.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/fs.h"
#include "util/strv.h"

#include "fake_registry.h"

struct result {
        bool done;
        struct image_descriptor desc;
        struct error *err;
        char *buf;
        size_t len;
        struct digester *dg;
        size_t streamed;
};

static void result_clear(struct result *r)
{
        image_descriptor_clear(&r->desc);
        error_free(&r->err);
        free(r->buf);
        digester_free(r->dg);
        memset(r, 0, sizeof(*r));
}

static void resolved(const struct image_descriptor *d, const struct error *e, void *ud)
{
        struct result *r = ud;

        r->done = true;
        if (e)
                error_set_literal(&r->err, e->code, error_str(e));
        else
                image_descriptor_copy(&r->desc, d);
}

static void fetched(const char *buf, size_t len, const struct error *e, void *ud)
{
        struct result *r = ud;

        r->done = true;
        if (e)
                error_set_literal(&r->err, e->code, error_str(e));
        else if (buf) {
                r->buf = xstrndup(buf, len);
                r->len = len;
        }
}

static int on_data(const void *data, size_t n, void *ud, struct error **err _unused_)
{
        struct result *r = ud;

        if (!r->dg)
                r->dg = digester_new();
        digester_update(r->dg, data, n);
        r->streamed += n;
        return 0;
}

struct env {
        uv_loop_t loop;
        struct image_registry_client *client;
        struct fake_registry reg;
        const char *user, *pass;
        char *base; /* "127.0.0.1:PORT" */
};

static int creds(const char *host _unused_, char **u, char **p, void *ud)
{
        struct env *e = ud;

        if (!e->user)
                return -ENOENT;
        *u = xstrdup(e->user);
        *p = xstrdup(e->pass);
        return 0;
}

static void run_until(struct env *e, bool *flag)
{
        while (!*flag)
                uv_run(&e->loop, UV_RUN_ONCE);
}

static void env_start(struct env *e, const char *auth)
{
        memset(e, 0, sizeof(*e));
        if (fake_registry_start(&e->reg, auth) < 0)
                skip();
        uv_loop_init(&e->loop);
        assert_int_equal(image_registry_client_new(&e->loop, creds, e, NULL, &e->client, NULL), 0);
        e->base = xasprintf("127.0.0.1:%d", e->reg.port);
}

static void env_stop(struct env *e)
{
        image_registry_client_free(e->client);
        uv_run(&e->loop, UV_RUN_DEFAULT);
        assert_int_equal(uv_loop_close(&e->loop), 0);
        fake_registry_stop(&e->reg);
        free(e->base);
}

static void resolve(struct env *e, const struct image_resolver_options *o, const char *ref, struct result *r)
{
        _cleanup_(image_resolver_freep) struct image_resolver *res = NULL;

        memset(r, 0, sizeof(*r));
        assert_int_equal(image_resolver_new(e->client, o, ref, &res, NULL), 0);
        assert_int_equal(image_resolver_resolve(res, resolved, r, NULL), 0);
        run_until(e, &r->done);
}

static void test_registry_resolve_and_fetch(void **state _unused_)
{
        struct env e;
        struct image_resolver_options o = {.plain_http = true};
        struct result r;
        _cleanup_free_ char *ref = NULL, *missing = NULL, *byd = NULL;
        struct image_descriptor *idx = NULL;
        size_t n = 0;

        env_start(&e, "none");
        ref = xasprintf("%s/test/img:1", e.base);
        resolve(&e, &o, ref, &r);
        assert_null(r.err);
        assert_string_equal(r.desc.digest, fake_registry_str(&e.reg, "index"));
        assert_string_equal(r.desc.media_type, IMAGE_MT_OCI_INDEX);
        {
                _cleanup_(image_resolver_freep) struct image_resolver *res = NULL;
                struct result f = {0};
                struct image_descriptor d = {0};

                image_descriptor_copy(&d, &r.desc);
                assert_int_equal(image_resolver_new(e.client, &o, ref, &res, NULL), 0);
                assert_int_equal(image_resolver_fetch(res, &d, 0, NULL, fetched, &f, NULL, NULL), 0);
                run_until(&e, &f.done);
                assert_null(f.err);
                assert_int_equal(image_index_parse(f.buf, f.len, &idx, &n, NULL), 0);
                assert_int_equal(n, 2);
                assert_string_equal(idx[1].digest, fake_registry_str(&e.reg, "amd64"));
                assert_string_equal(idx[0].platform.arch, "arm64");
                image_descriptors_free(idx, n);
                /* a descriptor whose digest does not match what is served */
                free(d.digest);
                d.digest = xstrdup(fake_registry_str(&e.reg, "amd64"));
                result_clear(&f);
                assert_int_equal(image_resolver_fetch(res, &d, 0, NULL, fetched, &f, NULL, NULL), 0);
                run_until(&e, &f.done);
                assert_non_null(f.err);
                assert_non_null(strstr(error_str(f.err), "digest mismatch"));
                result_clear(&f);
                image_descriptor_clear(&d);
        }
        result_clear(&r);

        missing = xasprintf("%s/test/img:nope", e.base);
        resolve(&e, &o, missing, &r);
        assert_non_null(r.err);
        assert_int_equal(r.err->code, ENOENT);
        {
                _cleanup_free_ char *want = xasprintf("%s/test/img:nope: not found", e.base);
                assert_string_equal(error_str(r.err), want);
        }
        result_clear(&r);

        byd = xasprintf("%s/test/img@%s", e.base, fake_registry_str(&e.reg, "amd64"));
        resolve(&e, &o, byd, &r);
        assert_null(r.err);
        assert_string_equal(r.desc.digest, fake_registry_str(&e.reg, "amd64"));
        assert_string_equal(r.desc.media_type, IMAGE_MT_OCI_MANIFEST);
        result_clear(&r);
        env_stop(&e);
}

static void stream_layer(struct env *e, const char *repo, struct result *out)
{
        struct image_resolver_options o = {.plain_http = true};
        _cleanup_free_ char *ref = xasprintf("%s/%s:single", e->base, repo);
        _cleanup_(image_resolver_freep) struct image_resolver *res = NULL;
        struct result m = {0};
        struct image_descriptor cfg = {0}, *layers = NULL;
        size_t n = 0;
        struct image_descriptor d = {0};

        resolve(e, &o, ref, &m);
        assert_null(m.err);
        assert_int_equal(image_resolver_new(e->client, &o, ref, &res, NULL), 0);
        image_descriptor_copy(&d, &m.desc);
        result_clear(&m);
        assert_int_equal(image_resolver_fetch(res, &d, 0, NULL, fetched, &m, NULL, NULL), 0);
        run_until(e, &m.done);
        assert_null(m.err);
        assert_int_equal(image_manifest_parse(m.buf, m.len, &cfg, &layers, &n, NULL), 0);
        assert_int_equal(n, 2);
        memset(out, 0, sizeof(*out));
        assert_int_equal(image_resolver_fetch(res, &layers[1], 0, on_data, fetched, out, NULL, NULL), 0);
        run_until(e, &out->done);
        if (!out->err) {
                _cleanup_free_ char *got = digester_digest(out->dg);
                assert_string_equal(got, layers[1].digest);
                assert_int_equal(out->streamed, layers[1].size);
        }
        image_descriptors_free(layers, n);
        image_descriptor_clear(&cfg);
        image_descriptor_clear(&d);
        result_clear(&m);
}

static void test_registry_stream_redirect(void **state _unused_)
{
        struct env e;
        struct result r;

        env_start(&e, "none");
        stream_layer(&e, "test/redirect", &r);
        assert_null(r.err);
        result_clear(&r);
        env_stop(&e);
}

static void test_registry_basic_auth(void **state _unused_)
{
        struct env e;
        struct image_resolver_options o = {.plain_http = true};
        struct result r;
        _cleanup_free_ char *ref = NULL, *want = NULL;

        env_start(&e, "basic");
        ref = xasprintf("%s/test/img:1", e.base);
        resolve(&e, &o, ref, &r);
        assert_non_null(r.err);
        want = xasprintf("unexpected status from HEAD request to http://%s/v2/test/img/manifests/1: 401 Unauthorized",
                         e.base);
        assert_string_equal(error_str(r.err), want);
        assert_int_equal(r.err->code, EACCES);
        result_clear(&r);
        e.user = "u";
        e.pass = "p";
        resolve(&e, &o, ref, &r);
        assert_null(r.err);
        result_clear(&r);
        stream_layer(&e, "test/img", &r);
        assert_null(r.err);
        result_clear(&r);
        env_stop(&e);
}

static void test_registry_bearer_auth(void **state _unused_)
{
        struct env e;
        struct image_resolver_options o = {.plain_http = true};
        struct result r;
        _cleanup_free_ char *ref = NULL;

        env_start(&e, "bearer");
        ref = xasprintf("%s/test/img:1", e.base);
        resolve(&e, &o, ref, &r);
        assert_non_null(r.err);
        assert_non_null(strstr(error_str(r.err), "token"));
        assert_non_null(strstr(error_str(r.err), "401 Unauthorized: unauthorized: invalid credentials"));
        result_clear(&r);
        e.user = "u";
        e.pass = "p";
        resolve(&e, &o, ref, &r);
        if (r.err)
                fail_msg("%s", error_str(r.err));
        result_clear(&r);
        stream_layer(&e, "test/img", &r);
        assert_null(r.err);
        result_clear(&r);
        env_stop(&e);
}

/* With credentials the token comes from the OAuth POST (grant_type=password); the fake refuses the GET in this
 * mode, so a success proves the POST. Without credentials: the anonymous GET and the realm's message. */
static void test_registry_bearer_oauth_post(void **state _unused_)
{
        struct env e;
        struct image_resolver_options o = {.plain_http = true};
        struct result r;
        _cleanup_free_ char *ref = NULL;

        env_start(&e, "bearer-oauth");
        ref = xasprintf("%s/test/img:1", e.base);
        resolve(&e, &o, ref, &r);
        assert_non_null(r.err);
        assert_non_null(strstr(error_str(r.err), "failed to fetch anonymous token"));
        assert_non_null(strstr(error_str(r.err), "invalid credentials"));
        result_clear(&r);
        e.user = "u";
        e.pass = "wrong";
        resolve(&e, &o, ref, &r);
        assert_non_null(r.err);
        /* 401 from the POST falls back to the GET (Artifactory), which this realm refuses too */
        assert_non_null(strstr(error_str(r.err), "failed to fetch oauth token"));
        result_clear(&r);
        e.pass = "p";
        resolve(&e, &o, ref, &r);
        if (r.err)
                fail_msg("%s", error_str(r.err));
        result_clear(&r);
        stream_layer(&e, "test/img", &r);
        assert_null(r.err);
        result_clear(&r);
        env_stop(&e);
}

static void test_registry_connection_refused(void **state _unused_)
{
        struct env e;
        struct image_resolver_options o = {.plain_http = true};
        struct result r;

        env_start(&e, "none");
        resolve(&e, &o, "127.0.0.1:1/test/img:1", &r);
        assert_non_null(r.err);
        assert_int_equal(r.err->code, ECONNREFUSED);
        assert_string_equal(error_str(r.err),
                            "failed to do request: Head \"http://127.0.0.1:1/v2/test/img/manifests/1\": "
                            "connect: connection refused");
        result_clear(&r);
        env_stop(&e);
}

static void write_file(const char *path, const char *s)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
        close(fd);
}

static void test_registry_hosts_toml_mirror_fallback(void **state _unused_)
{
        struct env e;
        char tmpl[] = "/tmp/krill-hosts-XXXXXX";
        char *dir = mkdtemp(tmpl);
        _cleanup_free_ char *hd = NULL, *file = NULL, *toml = NULL;
        struct image_resolver_options o = {0};
        struct result r;
        struct image_host *hosts = NULL;
        size_t n = 0;

        assert_non_null(dir);
        env_start(&e, "none");
        hd = xasprintf("%s/docker.io", dir);
        assert_int_equal(mkdir(hd, 0755), 0);
        file = xasprintf("%s/hosts.toml", hd);
        /* a dead mirror first, the working one second, the (unreachable here) upstream last */
        toml = xasprintf("server = \"https://registry-1.docker.io\"\n"
                         "[host.\"http://127.0.0.1:1\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
                         "[host.\"http://%s\"]\n  capabilities = [\"pull\", \"resolve\"]\n  skip_verify = true\n"
                         "  ca = \"ca.pem\"\n",
                         e.base);
        write_file(file, toml);
        o.hosts_dir = dir;
        assert_int_equal(image_hosts_config(&o, "docker.io", &hosts, &n, NULL), 0);
        assert_int_equal(n, 3);
        assert_string_equal(hosts[0].scheme, "http");
        assert_string_equal(hosts[0].host, "127.0.0.1:1");
        assert_string_equal(hosts[0].path, "/v2");
        assert_int_equal(hosts[0].caps, IMAGE_HOST_CAP_PULL | IMAGE_HOST_CAP_RESOLVE);
        assert_true(hosts[1].skip_verify);
        {
                _cleanup_free_ char *ca = xasprintf("%s/ca.pem", hd);
                assert_string_equal(hosts[1].ca_file, ca);
        }
        assert_string_equal(hosts[2].host, "registry-1.docker.io");
        image_hosts_free(hosts, n);

        resolve(&e, &o, "test/img:1", &r);
        if (r.err)
                fail_msg("%s", error_str(r.err));
        assert_string_equal(r.desc.digest, fake_registry_str(&e.reg, "index"));
        result_clear(&r);

        /* no hosts.toml for this host: the default https host; _default is used when present */
        {
                _cleanup_free_ char *dd = xasprintf("%s/_default", dir), *df = NULL, *t2 = NULL;
                assert_int_equal(mkdir(dd, 0755), 0);
                df = xasprintf("%s/hosts.toml", dd);
                t2 = xasprintf("[host.\"http://%s\"]\n", e.base);
                write_file(df, t2);
                assert_int_equal(image_hosts_config(&o, "example.com", &hosts, &n, NULL), 0);
                assert_int_equal(n, 2);
                assert_string_equal(hosts[1].scheme, "https");
                assert_string_equal(hosts[1].host, "example.com");
                image_hosts_free(hosts, n);
        }
        write_file(file, "server = 1\n[host.\"ftp://x\"]\n");
        {
                struct error *er = NULL;
                assert_int_equal(image_hosts_config(&o, "docker.io", &hosts, &n, &er), -EINVAL);
                assert_non_null(strstr(error_str(er), "unsupported scheme"));
                error_free(&er);
        }
        env_stop(&e);
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, dir, NULL), 0);
}

static void test_registry_parse_challenge(void **state _unused_)
{
        char *scheme = NULL;
        char **kv = NULL;

        assert_int_equal(image_registry_parse_challenge(
                             "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
                             "scope=\"repository:library/busybox:pull\"",
                             &scheme, &kv, NULL),
                         0);
        assert_string_equal(scheme, "bearer");
        assert_string_equal(kv[0], "realm");
        assert_string_equal(kv[1], "https://auth.docker.io/token");
        assert_string_equal(kv[5], "repository:library/busybox:pull");
        free(scheme);
        strv_free(kv);
        assert_int_equal(image_registry_parse_challenge("Basic realm=\"x\\\"y\"", &scheme, &kv, NULL), 0);
        assert_string_equal(scheme, "basic");
        assert_string_equal(kv[1], "x\"y");
        free(scheme);
        strv_free(kv);
        assert_int_equal(image_registry_parse_challenge("Bearer realm=\"unterminated", &scheme, &kv, NULL), -EINVAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_registry_parse_challenge),
            cmocka_unit_test(test_registry_resolve_and_fetch),
            cmocka_unit_test(test_registry_stream_redirect),
            cmocka_unit_test(test_registry_basic_auth),
            cmocka_unit_test(test_registry_bearer_auth),
            cmocka_unit_test(test_registry_bearer_oauth_post),
            cmocka_unit_test(test_registry_connection_refused),
            cmocka_unit_test(test_registry_hosts_toml_mirror_fallback),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

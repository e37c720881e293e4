/* Image reference parsing: cases from docker/distribution reference_test.go and normalize_test.go
 * (behaviour, re-expressed as a table). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "image/ref.h"
#include "util/alloc.h"
#include "util/cleanup.h"

#define H64 "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"

struct parse_case {
        const char *in;
        const char *err; /* NULL: valid */
        const char *domain, *path, *tag, *digest;
};

static const struct parse_case parse_cases[] = {
    {"test_com", NULL, NULL, "test_com", NULL, NULL},
    {"test.com:tag", NULL, NULL, "test.com", "tag", NULL},
    {"test.com:5000", NULL, NULL, "test.com", "5000", NULL},
    {"test.com/repo:tag", NULL, "test.com", "repo", "tag", NULL},
    {"test:5000/repo", NULL, "test:5000", "repo", NULL, NULL},
    {"test:5000/repo:tag", NULL, "test:5000", "repo", "tag", NULL},
    {"test:5000/repo@sha256:" H64, NULL, "test:5000", "repo", NULL, "sha256:" H64},
    {"test:5000/repo:tag@sha256:" H64, NULL, "test:5000", "repo", "tag", "sha256:" H64},
    {"test:5000/repo", NULL, "test:5000", "repo", NULL, NULL},
    {"", "repository name must have at least one component", NULL, NULL, NULL, NULL},
    {":justtag", "invalid reference format", NULL, NULL, NULL, NULL},
    {"@sha256:" H64, "invalid reference format", NULL, NULL, NULL, NULL},
    {"repo@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "invalid checksum digest length",
     NULL, NULL, NULL, NULL},
    {"validname@invaliddigest:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
     "unsupported digest algorithm", NULL, NULL, NULL, NULL},
    {"Uppercase:tag", "repository name must be lowercase", NULL, NULL, NULL, NULL},
    {"test:5000/Uppercase/lowercase:tag", "repository name must be lowercase", NULL, NULL, NULL, NULL},
    {"lowercase:Uppercase", NULL, NULL, "lowercase", "Uppercase", NULL},
    {"aa/asdf$$^/aa", "invalid reference format", NULL, NULL, NULL, NULL},
    {"sub-dom1.foo.com/bar/baz/quux", NULL, "sub-dom1.foo.com", "bar/baz/quux", NULL, NULL},
    {"sub-dom1.foo.com/bar/baz/quux:some-long-tag", NULL, "sub-dom1.foo.com", "bar/baz/quux", "some-long-tag", NULL},
    {"b.gcr.io/test.example.com/my-app:test.example.com", NULL, "b.gcr.io", "test.example.com/my-app",
     "test.example.com", NULL},
    {"xn--n3h.com/myimage:xn--n3h.com", NULL, "xn--n3h.com", "myimage", "xn--n3h.com", NULL},
    {"xn--7o8h.com/myimage:xn--7o8h.com@sha512:"
     "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
     "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
     NULL, "xn--7o8h.com", "myimage", "xn--7o8h.com",
     "sha512:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
     "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"},
    {"foo_bar.com:8080", NULL, NULL, "foo_bar.com", "8080", NULL},
    {"foo/foo_bar.com:8080", NULL, "foo", "foo_bar.com", "8080", NULL},
    {"a--b/c", NULL, "a--b", "c", NULL, NULL}, /* a valid domain component is taken as the domain */
    {"a--b", NULL, NULL, "a--b", NULL, NULL},
    {"a__b", NULL, NULL, "a__b", NULL, NULL},
    {"a___b", "invalid reference format", NULL, NULL, NULL, NULL},
    {"a._b", "invalid reference format", NULL, NULL, NULL, NULL},
    {"-a", "invalid reference format", NULL, NULL, NULL, NULL},
    {"a-", "invalid reference format", NULL, NULL, NULL, NULL},
    {"a//b", "invalid reference format", NULL, NULL, NULL, NULL},
    {"a/", "invalid reference format", NULL, NULL, NULL, NULL},
    {"a:", "invalid reference format", NULL, NULL, NULL, NULL},
    {"a:.tag", "invalid reference format", NULL, NULL, NULL, NULL},
    {"a:_tag", NULL, NULL, "a", "_tag", NULL},
    {"localhost:5000", NULL, NULL, "localhost", "5000", NULL},
    {"localhost:5000/a/b:c", NULL, "localhost:5000", "a/b", "c", NULL},
    {"-host.com/a", "invalid reference format", NULL, NULL, NULL, NULL},
    {"host.com:/a", "invalid reference format", NULL, NULL, NULL, NULL},
    {"repo@sha256:FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", "invalid checksum digest format",
     NULL, NULL, NULL, NULL},
    {"repo@sha256:fff", "invalid reference format", NULL, NULL, NULL, NULL},
};

static void test_ref_parse_table(void **state)
{
        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(parse_cases); i++) {
                const struct parse_case *c = &parse_cases[i];
                _cleanup_(image_ref_clearp) struct image_ref r = {0};
                struct error *e = NULL;
                int k = image_ref_parse(c->in, &r, &e);

                print_message("case %zu %s\n", i, c->in);
                if (c->err) {
                        assert_int_equal(k, -EINVAL);
                        assert_non_null(e);
                        assert_string_equal(error_str(e), c->err);
                        error_free(&e);
                        continue;
                }
                if (k < 0)
                        fail_msg("%s: %s", c->in, error_str(e));
                if (c->domain)
                        assert_string_equal(r.domain, c->domain);
                else
                        assert_null(r.domain);
                assert_string_equal(r.path, c->path);
                if (c->tag)
                        assert_string_equal(r.tag, c->tag);
                else
                        assert_null(r.tag);
                if (c->digest)
                        assert_string_equal(r.digest, c->digest);
                else
                        assert_null(r.digest);
        }
}

static void test_ref_parse_name_too_long(void **state)
{
        _cleanup_free_ char *s = NULL;
        struct image_ref r = {0};
        struct error *e = NULL;
        char buf[300];

        (void)state;
        memset(buf, 'a', sizeof(buf) - 1);
        buf[sizeof(buf) - 1] = 0;
        buf[100] = '/';
        assert_int_equal(image_ref_parse(buf, &r, &e), -EINVAL);
        assert_string_equal(error_str(e), "repository name must not be more than 255 characters");
        error_free(&e);
        s = xasprintf("%.*s", 255, buf);
        assert_int_equal(image_ref_parse(s, &r, NULL), 0);
        image_ref_clear(&r);
        /* a tag of 128 is fine, 129 is not */
        free(s);
        s = xasprintf("a:%.*s", 128, buf + 101);
        assert_int_equal(image_ref_parse(s, &r, NULL), 0);
        assert_int_equal(strlen(r.tag), 128);
        image_ref_clear(&r);
        free(s);
        s = xasprintf("a:%.*s", 129, buf + 101);
        assert_int_equal(image_ref_parse(s, &r, &e), -EINVAL);
        assert_string_equal(error_str(e), "invalid reference format");
        error_free(&e);
}

struct norm_case {
        const char *in;
        const char *out; /* ParseDockerRef string, or the error */
        const char *familiar;
        bool err;
};

static const struct norm_case norm_cases[] = {
    {"busybox", "docker.io/library/busybox:latest", "busybox:latest", false},
    {"busybox:1", "docker.io/library/busybox:1", "busybox:1", false},
    {"foo/bar", "docker.io/foo/bar:latest", "foo/bar:latest", false},
    {"library/foo/bar", "docker.io/library/foo/bar:latest", "library/foo/bar:latest", false},
    {"docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest", false},
    {"index.docker.io/busybox:1", "docker.io/library/busybox:1", "busybox:1", false},
    {"localhost/foo", "localhost/foo:latest", "localhost/foo:latest", false},
    {"localhost:5000/foo", "localhost:5000/foo:latest", "localhost:5000/foo:latest", false},
    {"127.0.0.1:5002/test/busybox:1", "127.0.0.1:5002/test/busybox:1", "127.0.0.1:5002/test/busybox:1", false},
    {"gcr.io/a/b:c@sha256:" H64, "gcr.io/a/b@sha256:" H64, "gcr.io/a/b@sha256:" H64, false},
    {"busybox@sha256:" H64, "docker.io/library/busybox@sha256:" H64, "busybox@sha256:" H64, false},
    {"Busybox", "invalid reference format: repository name must be lowercase", NULL, true},
    {"docker.io/Foo/bar", "invalid reference format: repository name must be lowercase", NULL, true},
    {"Foo/bar", "invalid reference format: repository name must be lowercase", NULL, true},
    {"HOST.COM/foo", "HOST.COM/foo:latest", "HOST.COM/foo:latest", false},
    {H64, "invalid repository name (" H64 "), cannot specify 64-byte hexadecimal strings", NULL, true},
    {"", "invalid reference format", NULL, true},
    {"busybox:", "invalid reference format", NULL, true},
    {"a b", "invalid reference format", NULL, true},
};

static void test_ref_normalize_table(void **state)
{
        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(norm_cases); i++) {
                const struct norm_case *c = &norm_cases[i];
                _cleanup_(image_ref_clearp) struct image_ref r = {0};
                struct error *e = NULL;
                int k = image_ref_parse_docker(c->in, &r, &e);

                print_message("case %zu %s\n", i, c->in);
                if (c->err) {
                        assert_int_equal(k, -EINVAL);
                        assert_string_equal(error_str(e), c->out);
                        error_free(&e);
                } else {
                        _cleanup_free_ char *s = NULL, *f = NULL;
                        if (k < 0)
                                fail_msg("%s: %s", c->in, error_str(e));
                        s = image_ref_string(&r);
                        f = image_ref_familiar_string(&r);
                        assert_string_equal(s, c->out);
                        assert_string_equal(f, c->familiar);
                        /* normalising a normalised reference is the identity */
                        {
                                _cleanup_(image_ref_clearp) struct image_ref r2 = {0};
                                _cleanup_free_ char *s2 = NULL;
                                assert_int_equal(image_ref_parse_docker(s, &r2, NULL), 0);
                                s2 = image_ref_string(&r2);
                                assert_string_equal(s2, s);
                        }
                }
        }
}

static void test_ref_normalized_named_keeps_both(void **state)
{
        _cleanup_(image_ref_clearp) struct image_ref r = {0};
        _cleanup_free_ char *s = NULL, *n = NULL;

        (void)state;
        assert_int_equal(image_ref_parse_normalized_named("busybox:1@sha256:" H64, &r, NULL), 0);
        s = image_ref_string(&r);
        assert_string_equal(s, "docker.io/library/busybox:1@sha256:" H64);
        n = image_ref_name(&r);
        assert_string_equal(n, "docker.io/library/busybox");
        image_ref_clear(&r);
        assert_int_equal(image_ref_parse_normalized_named("busybox", &r, NULL), 0);
        assert_null(r.tag);
}

static void test_ref_digest_validate(void **state)
{
        struct error *e = NULL;

        (void)state;
        assert_int_equal(image_ref_digest_validate("sha256:" H64, NULL), 0);
        assert_int_equal(image_ref_digest_validate("sha256", &e), -EINVAL);
        assert_string_equal(error_str(e), "invalid checksum digest format");
        error_free(&e);
        assert_int_equal(image_ref_digest_validate("md5:abc", &e), -EINVAL);
        assert_string_equal(error_str(e), "unsupported digest algorithm");
        error_free(&e);
        assert_int_equal(image_ref_digest_validate("sha256:abc", &e), -EINVAL);
        assert_string_equal(error_str(e), "invalid checksum digest length");
        error_free(&e);
        assert_true(image_ref_tag_valid("v1.0-rc_1"));
        assert_false(image_ref_tag_valid("-x"));
        assert_true(image_ref_domain_valid("127.0.0.1:5000", 14));
        assert_false(image_ref_domain_valid("a..b", 4));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_ref_parse_table),     cmocka_unit_test(test_ref_parse_name_too_long),
            cmocka_unit_test(test_ref_normalize_table), cmocka_unit_test(test_ref_normalized_named_keeps_both),
            cmocka_unit_test(test_ref_digest_validate),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

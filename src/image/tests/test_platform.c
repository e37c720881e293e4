/* Platform parsing, normalisation and best-match ordering (containerd platforms package behaviour). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "image/platform.h"
#include "util/alloc.h"
#include "util/cleanup.h"

static char *parse_fmt(const char *spec)
{
        struct image_platform p = {0};
        struct error *e = NULL;
        char *s;

        if (image_platform_parse(spec, &p, &e) < 0) {
                s = xstrdup(error_str(e));
                error_free(&e);
                return s;
        }
        s = image_platform_format(&p);
        image_platform_clear(&p);
        return s;
}

static void test_platform_parse(void **state)
{
        static const char *const cases[][2] = {
            {"linux/amd64", "linux/amd64"},
            {"linux/x86_64", "linux/amd64"},
            {"Linux/X86-64", "linux/amd64"},
            {"linux/amd64/v1", "linux/amd64"},
            {"linux/amd64/v3", "linux/amd64/v3"},
            {"linux/aarch64", "linux/arm64"},
            {"linux/arm64/v8", "linux/arm64/v8"},
            {"linux/arm64/8", "linux/arm64/v8"},
            {"linux/arm", "linux/arm"},
            {"linux/arm/7", "linux/arm/v7"},
            {"linux/arm/6", "linux/arm/v6"},
            {"linux/armhf", "linux/arm"},
            {"linux/armel", "linux/arm/v6"},
            {"linux/i386", "linux/386"},
            {"macos/arm64", "darwin/arm64"},
            {"windows/amd64", "windows/amd64"},
            {"arm64", "linux/arm64"},
            {"s390x", "linux/s390x"},
            {"foo", "\"foo\": unknown operating system or architecture: invalid argument"},
            {"linux/*", "\"linux/*\": wildcards not yet supported: invalid argument"},
            {"linux/a b", "\"a b\" is an invalid component of \"linux/a b\": platform specifier component must "
                          "match \"^[A-Za-z0-9_-]+$\": invalid argument"},
            {"linux//", "\"\" is an invalid component of \"linux//\": platform specifier component must "
                        "match \"^[A-Za-z0-9_-]+$\": invalid argument"},
            {"a/b/c/d", "\"a/b/c/d\": cannot parse platform specifier: invalid argument"},
        };
        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *s = parse_fmt(cases[i][0]);
                print_message("%s\n", cases[i][0]);
                assert_string_equal(s, cases[i][1]);
        }
}

static void test_platform_parse_os_only_is_host_arch(void **state)
{
        struct image_platform def = {0};
        _cleanup_free_ char *d = NULL, *s = NULL;

        (void)state;
        image_platform_default(&def);
        d = image_platform_format(&def);
        s = parse_fmt("linux");
        if (strcmp(def.arch, "arm") != 0)
                assert_string_equal(s, d);
        assert_string_equal(def.os, "linux");
        image_platform_clear(&def);
}

static void test_platform_default_host(void **state)
{
        struct image_platform def = {0};
        struct utsname u;

        (void)state;
        assert_int_equal(uname(&u), 0);
        image_platform_default(&def);
        if (!strcmp(u.machine, "x86_64"))
                assert_string_equal(def.arch, "amd64");
        else if (!strcmp(u.machine, "aarch64"))
                assert_string_equal(def.arch, "arm64");
        image_platform_clear(&def);
}

static struct image_platform P(const char *os, const char *arch, const char *variant) {
        return (struct image_platform){(char *)os, (char *)arch, (char *)variant};
}

static void
test_platform_match_order(void **state)
{
        struct image_platform want = P("linux", "amd64", "v3");
        struct image_platform_matcher *m = image_platform_matcher_new_only(&want);
        struct image_platform a = P("linux", "amd64", NULL), b = P("linux", "386", NULL), c = P("linux", "amd64", "v2"),
                              d = P("linux", "arm64", NULL), e = P("linux", "x86_64", "v3"),
                              f = P("windows", "amd64", NULL);

        (void)state;
        assert_int_equal(image_platform_rank(m, &e), 0);
        assert_int_equal(image_platform_rank(m, &c), 1);
        assert_int_equal(image_platform_rank(m, &a), 2);
        assert_int_equal(image_platform_rank(m, &b), 3);
        assert_int_equal(image_platform_rank(m, &d), -1);
        assert_int_equal(image_platform_rank(m, &f), -1);
        assert_true(image_platform_less(m, &c, &a));
        assert_false(image_platform_less(m, &a, &c));
        assert_true(image_platform_less(m, &b, &d));
        assert_false(image_platform_less(m, &d, &b));
        image_platform_matcher_free(m);

        /* arm64 runs arm64 first, then arm v8 .. v5; an arm64/v8 descriptor is arm64 */
        want = P("linux", "aarch64", "v8");
        m = image_platform_matcher_new_only(&want);
        a = P("linux", "arm64", NULL);
        b = P("linux", "arm64", "v8");
        c = P("linux", "arm", "v7");
        d = P("linux", "arm", NULL); /* normalises to v7 */
        e = P("linux", "arm", "v5");
        assert_int_equal(image_platform_rank(m, &a), 0);
        assert_int_equal(image_platform_rank(m, &b), 0);
        assert_int_equal(image_platform_rank(m, &c), 2);
        assert_int_equal(image_platform_rank(m, &d), 2);
        assert_int_equal(image_platform_rank(m, &e), 4);
        image_platform_matcher_free(m);

        /* arm v6 does not run v7 */
        want = P("linux", "arm", "v6");
        m = image_platform_matcher_new_only(&want);
        assert_int_equal(image_platform_rank(m, &c), -1);
        assert_int_equal(image_platform_rank(m, &e), 1);
        image_platform_matcher_free(m);

        m = image_platform_matcher_new_all();
        assert_true(image_platform_match(m, &f));
        image_platform_matcher_free(m);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_platform_parse),
            cmocka_unit_test(test_platform_parse_os_only_is_host_arch),
            cmocka_unit_test(test_platform_default_host),
            cmocka_unit_test(test_platform_match_order),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

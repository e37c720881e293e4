/* containerd filter syntax (util/filters.c): matching, OR/AND, regexps, quoting, error messages. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/filters.h"

struct obj {
        const char *name;
        const char *target;
        char **labels;
};

static bool lookup(const char *const *path, size_t n, const char **ret, void *ud)
{
        struct obj *o = ud;
        const char *names[] = {"name", "target"};
        const char *values[] = {o->name, o->target};
        return filter_lookup_common(path, n, ret, o->labels, names, values, 2);
}

static bool m(const char *expr, struct obj *o)
{
        struct filter *f = NULL;
        struct error *e = NULL;
        char *strs[] = {(char *)expr};
        int r = filter_parse(strs, 1, &f, &e);
        if (r < 0)
                fail_msg("parse %s: %s", expr, error_str(e));
        bool res = filter_match(f, lookup, o);
        filter_free(f);
        return res;
}

static void parse_fails(const char *expr, const char *msg)
{
        struct filter *f = NULL;
        struct error *e = NULL;
        char *strs[] = {(char *)expr};
        if (filter_parse(strs, 1, &f, &e) != -EINVAL)
                fail_msg("parse of %s did not fail", expr);
        assert_null(f);
        if (msg) {
                _cleanup_free_ char *got = error_message(e);
                assert_string_equal(got, msg);
        }
        error_free(&e);
}

static char *labels[] = {"foo", "bar", "a.b", "c", "with space", "v v", "empty", "x", NULL};

static void test_filters_equality_and_presence(void **state)
{
        (void)state;
        struct obj o = {.name = "docker.io/library/busybox:latest", .target = "", .labels = labels};
        assert_true(m("name==docker.io/library/busybox:latest", &o));
        assert_false(m("name==busybox", &o));
        assert_true(m("name!=busybox", &o));
        assert_true(m("name", &o));
        assert_false(m("target", &o)); /* empty field = absent */
        assert_true(m("target!=x", &o));
        assert_true(m("labels.foo", &o));
        assert_true(m("labels.foo==bar", &o));
        assert_false(m("labels.foo==baz", &o));
        assert_false(m("labels.nope", &o));
        assert_true(m("labels.\"a.b\"==c", &o));
        assert_true(m("labels.a.b==c", &o));
        assert_true(m("labels.\"with space\"==\"v v\"", &o));
        assert_true(m("  name  ==  docker.io/library/busybox:latest", &o));
        assert_true(m("name==x==y", &o) == false);
        assert_true(m("", &o));
}

static void test_filters_and_or(void **state)
{
        (void)state;
        struct obj o = {.name = "n1", .labels = labels};
        assert_true(m("name==n1,labels.foo==bar", &o));
        assert_false(m("name==n1,labels.foo==nope", &o));
        struct filter *f = NULL;
        struct error *e = NULL;
        char *strs[] = {"name==n2", "labels.foo==bar"};
        assert_int_equal(filter_parse(strs, 2, &f, &e), 0);
        assert_true(filter_match(f, lookup, &o));
        filter_free(f);
        char *strs2[] = {"name==n2", "labels.foo==baz"};
        assert_int_equal(filter_parse(strs2, 2, &f, &e), 0);
        assert_false(filter_match(f, lookup, &o));
        filter_free(f);
        /* A NULL or empty string among several matches everything (containerd's Always). */
        char *strs3[] = {"name==n2", NULL};
        assert_int_equal(filter_parse(strs3, 2, &f, &e), 0);
        assert_true(filter_match(f, lookup, &o));
        filter_free(f);
        char *strs4[] = {"name==n2", ""};
        assert_int_equal(filter_parse(strs4, 2, &f, &e), 0);
        assert_true(filter_match(f, lookup, &o));
        filter_free(f);
        assert_int_equal(filter_parse(NULL, 0, &f, &e), 0);
        assert_true(filter_match(f, lookup, &o));
        filter_free(f);
}

static void test_filters_regexp(void **state)
{
        (void)state;
        struct obj o = {.name = "docker.io/library/busybox:1.36", .labels = labels};
        assert_true(m("name~=busybox", &o));
        assert_true(m("name~=^docker\\.io/", &o) || m("name~=/^docker\\.io/", &o));
        assert_true(m("name~=/busybox:[0-9.]+$/", &o));
        assert_true(m("name~=|library/busy|", &o));
        assert_false(m("name~=^busybox", &o));
        assert_true(m("labels.foo~=^ba", &o));
        assert_true(m("name~=\"b.sy\"", &o));
        /* a bad regexp matches nothing, as in containerd */
        assert_false(m("name~=(", &o));
        /* Regexps glibc's regcomp would expand to gigabytes never match (RE2, which containerd uses, rejects
         * them, and containerd then never matches). */
        assert_false(m("name~=\"busybox++++++\"", &o));
        assert_false(m("name~=\"((x{100}){100}){10}|busybox\"", &o));
        assert_false(m("name~=\"x{1001}|busybox\"", &o));
        assert_true(m("name~=\"(x{100}){100}|busybox\"", &o));
        assert_true(m("name~=\"^d[[:alpha:]]{5}[.]io/\"", &o));
}

static void test_filters_quotes_and_escapes(void **state)
{
        (void)state;
        char *l[] = {"k", "a,b", "nl", "x\ny", "u", "\xc3\xa9", NULL};
        struct obj o = {.name = "n", .labels = l};
        assert_true(m("labels.k==\"a,b\"", &o));
        assert_true(m("labels.nl==\"x\\ny\"", &o));
        assert_true(m("labels.u==\"\\u00e9\"", &o));
        assert_true(m("labels.u==\"\\xc3\\xa9\"", &o));
        assert_true(m("labels.u==\"\\303\\251\"", &o));
}

static void test_filters_errors(void **state)
{
        (void)state;
        parse_fails("name==", "filters: parse error: [name==]: expected value or quoted: invalid argument");
        parse_fails("name==,", "filters: parse error: [name== >|,|< ]: expected value or quoted: invalid argument");
        parse_fails("name=x", "filters: parse error: [name >|=|< x]: unsupported operator \"=\": invalid argument");
        parse_fails(",name", "filters: parse error: [ >|,|< name]: expected field or quoted: invalid argument");
        parse_fails("name==a b", NULL);
        parse_fails("name==\"unterminated", NULL);
        parse_fails("labels.\"bad\\q\"", NULL);
        parse_fails("labels.|x|",
                    "filters: parse error: [labels. >|||< x|]: invalid quote encountered: invalid argument");
        parse_fails("name==/x/", NULL);
        parse_fails("name,", NULL);
        parse_fails("a..b", NULL);
        /* like containerd, trailing blanks are unexpected input */
        parse_fails("name==x ", NULL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_filters_equality_and_presence),
            cmocka_unit_test(test_filters_and_or),
            cmocka_unit_test(test_filters_regexp),
            cmocka_unit_test(test_filters_quotes_and_escapes),
            cmocka_unit_test(test_filters_errors),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

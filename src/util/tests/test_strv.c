#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "util/strv.h"

static void test_strv_push_join_split(void **state)
{
        (void)state;
        _cleanup_strv_free_ char **v = NULL;
        assert_int_equal(strv_length(v), 0);
        strv_extend(&v, "a");
        strv_push(&v, strdup("b"));
        strv_extendf(&v, "%d", 3);
        assert_int_equal(strv_length(v), 3);
        _cleanup_free_ char *j = strv_join(v, ", ");
        assert_string_equal(j, "a, b, 3");
        _cleanup_strv_free_ char **s = strv_split("a,,b", ",");
        assert_int_equal(strv_length(s), 3);
        assert_string_equal(s[1], "");
        _cleanup_strv_free_ char **e = strv_split("", ",");
        assert_int_equal(strv_length(e), 0);
        _cleanup_free_ char *je = strv_join(e, ",");
        assert_string_equal(je, "");
}

static void test_strv_find_remove_sort_uniq(void **state)
{
        (void)state;
        _cleanup_strv_free_ char **v = strv_split("c b a b", " ");
        assert_true(strv_contains(v, "a"));
        assert_false(strv_contains(v, "z"));
        assert_int_equal(strv_find(v, "b"), 1);
        strv_sort(v);
        strv_uniq(v);
        _cleanup_free_ char *j = strv_join(v, "");
        assert_string_equal(j, "abc");
        assert_int_equal(strv_remove(v, "b"), 1);
        _cleanup_strv_free_ char **c = strv_copy(v);
        assert_true(strv_equal(c, v));
        strv_extend_strv(&c, v);
        assert_int_equal(strv_length(c), 4);
        assert_false(strv_equal(c, v));
        assert_false(strv_contains(NULL, "a"));
}

static void test_str_go_quote(void **state)
{
        (void)state;
        const struct {
                const char *in, *out;
        } cases[] = {
                {"abc", "\"abc\""},
                {"a b\"\\", "\"a b\\\"\\\\\""},
                {"\n\t\x01\x7f", "\"\\n\\t\\x01\\x7f\""},
                {"h\xc3\xa9", "\"h\xc3\xa9\""},
                {"\xff", "\"\\xff\""},
                {"", "\"\""},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char *q = str_go_quote(cases[i].in);
                assert_string_equal(q, cases[i].out);
                free(q);
        }
        assert_true(str_startswith("sha256:x", "sha256:"));
        assert_false(str_startswith("sha", "sha256:"));
        assert_true(str_endswith("krill.sock.ttrpc", ".ttrpc"));
        assert_false(str_endswith("c", ".ttrpc"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_strv_push_join_split),
                cmocka_unit_test(test_strv_find_remove_sort_uniq),
                cmocka_unit_test(test_str_go_quote),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

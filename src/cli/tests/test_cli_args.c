/* CLI argument helpers: Go durations (--timeout) and ctr's <object> [key=value...] label arguments. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#include "cli/cli.h"
#include "util/cleanup.h"

static void test_cli_duration(void **state)
{
        (void)state;
        int ms = -1;
        assert_int_equal(cli_parse_duration_ms("0", &ms), 0);
        assert_int_equal(ms, 0);
        assert_int_equal(cli_parse_duration_ms("10s", &ms), 0);
        assert_int_equal(ms, 10000);
        assert_int_equal(cli_parse_duration_ms("1m30s", &ms), 0);
        assert_int_equal(ms, 90000);
        assert_int_equal(cli_parse_duration_ms("250ms", &ms), 0);
        assert_int_equal(ms, 250);
        assert_int_equal(cli_parse_duration_ms("1.5h", &ms), 0);
        assert_int_equal(ms, 5400000);
        assert_int_equal(cli_parse_duration_ms("xyz", &ms), -EINVAL);
        assert_int_equal(cli_parse_duration_ms("10", &ms), -EINVAL); /* Go: missing unit */
        assert_int_equal(cli_parse_duration_ms("", &ms), -EINVAL);
        assert_int_equal(cli_parse_duration_ms("5q", &ms), -EINVAL);
}

static void test_cli_object_with_labels(void **state)
{
        (void)state;
        const char *obj = NULL;
        char **labels = NULL;
        char *argv[] = {"foo", "a=b", "c=d=e", "flag", "a=z", NULL};
        cli_object_with_labels(5, argv, &obj, &labels);
        assert_string_equal(obj, "foo");
        assert_string_equal(labels[0], "a");
        assert_string_equal(labels[1], "z"); /* a later duplicate wins, as in ctr's map */
        assert_string_equal(labels[2], "c");
        assert_string_equal(labels[3], "d=e");
        assert_string_equal(labels[4], "flag");
        assert_string_equal(labels[5], "");
        assert_null(labels[6]);
        strv_free(labels);

        cli_object_with_labels(0, argv, &obj, &labels);
        assert_string_equal(obj, "");
        assert_null(labels);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_cli_duration),
                cmocka_unit_test(test_cli_object_with_labels),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

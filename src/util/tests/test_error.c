#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "util/error.h"

static void test_error_set_returns_negative_errno(void **state)
{
        (void)state;
        struct error *e = NULL;
        assert_int_equal(error_set(&e, ENOENT, "container \"%s\"", "abc"), -ENOENT);
        assert_non_null(e);
        assert_int_equal(e->code, ENOENT);
        char *m = error_message(e);
        assert_string_equal(m, "container \"abc\": not found");
        free(m);
        error_free(&e);
        assert_null(e);
}

static void test_error_set_null_err(void **state)
{
        (void)state;
        assert_int_equal(error_set(NULL, EEXIST, "x"), -EEXIST);
}

static void test_error_first_wins(void **state)
{
        (void)state;
        _cleanup_error_ struct error *e = NULL;
        error_set(&e, EINVAL, "first");
        assert_int_equal(error_set(&e, ENOENT, "second"), -ENOENT);
        assert_int_equal(e->code, EINVAL);
        assert_string_equal(error_str(e), "first: invalid argument");
}

static void test_error_wrap_prefixes(void **state)
{
        (void)state;
        _cleanup_error_ struct error *e = NULL;
        error_set(&e, EEXIST, "namespace \"x\"");
        assert_int_equal(error_wrap(&e, "create"), -EEXIST);
        assert_string_equal(error_str(e), "create: namespace \"x\": already exists");
}

static void test_error_empty_message_is_class(void **state)
{
        (void)state;
        _cleanup_error_ struct error *e = NULL;
        error_set(&e, EBUSY, NULL);
        assert_string_equal(error_str(e), "failed precondition");
}

static void test_error_literal_not_suffixed(void **state)
{
        (void)state;
        _cleanup_error_ struct error *e = NULL;
        error_set_literal(&e, EIO, "runc: container_linux.go:380: starting container process caused");
        assert_string_equal(error_str(e), "runc: container_linux.go:380: starting container process caused");
        error_wrap(&e, "create");
        assert_string_equal(error_str(e), "create: runc: container_linux.go:380: starting container process caused");
}

static void test_error_class_text_go_style(void **state)
{
        (void)state;
        assert_string_equal(error_class_text(EACCES), "permission denied");
        assert_string_equal(error_class_text(ENOTDIR), "not a directory");
        assert_string_equal(error_class_text(ETIMEDOUT), "context deadline exceeded");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_error_set_returns_negative_errno),
                cmocka_unit_test(test_error_set_null_err),
                cmocka_unit_test(test_error_first_wins),
                cmocka_unit_test(test_error_wrap_prefixes),
                cmocka_unit_test(test_error_empty_message_is_class),
                cmocka_unit_test(test_error_literal_not_suffixed),
                cmocka_unit_test(test_error_class_text_go_style),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

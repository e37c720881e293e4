#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "util/cleanup.h"
#include "util/json.h"
#include "util/strv.h"

static void test_json_load_and_getters(void **state)
{
        (void)state;
        const char *doc = "{\"s\":\"x\",\"i\":-3,\"u\":7,\"b\":true,\"o\":{\"a\":\"1\",\"b\":\"2\"},"
                          "\"a\":[\"p\",\"q\"],\"n\":null}";
        _cleanup_json_ json_t *j = NULL;
        assert_int_equal(json_load(doc, strlen(doc), &j, NULL), 0);
        const char *s = NULL;
        int64_t i = 0;
        uint64_t u = 0;
        bool b = false;
        json_t *o = NULL, *a = NULL;
        assert_int_equal(json_get_string(j, "s", &s, NULL), 0);
        assert_string_equal(s, "x");
        assert_int_equal(json_get_int(j, "i", &i, NULL), 0);
        assert_int_equal(i, -3);
        assert_int_equal(json_get_uint(j, "u", &u, NULL), 0);
        assert_int_equal(u, 7);
        assert_int_equal(json_get_uint(j, "i", &u, NULL), -EINVAL);
        assert_int_equal(json_get_bool(j, "b", &b, NULL), 0);
        assert_true(b);
        assert_int_equal(json_get_object(j, "o", &o, NULL), 0);
        assert_int_equal(json_get_array(j, "a", &a, NULL), 0);
        assert_int_equal(json_array_size(a), 2);

        _cleanup_strv_free_ char **kv = NULL, **arr = NULL;
        assert_int_equal(json_get_string_map(j, "o", &kv, NULL), 0);
        _cleanup_free_ char *kvj = strv_join(kv, "=");
        assert_string_equal(kvj, "a=1=b=2");
        assert_int_equal(json_get_string_array(j, "a", &arr, NULL), 0);
        assert_int_equal(strv_length(arr), 2);

        /* Optional getters keep the default for missing and null. */
        s = "default";
        assert_int_equal(json_get_string_opt(j, "missing", &s, NULL), 0);
        assert_int_equal(json_get_string_opt(j, "n", &s, NULL), 0);
        assert_string_equal(s, "default");
        i = 42;
        assert_int_equal(json_get_int_opt(j, "missing", &i, NULL), 0);
        assert_int_equal(i, 42);
        b = false;
        assert_int_equal(json_get_bool_opt(j, "b", &b, NULL), 0);
        assert_true(b);

        _cleanup_free_ char *dump = json_dump_compact(o);
        assert_string_equal(dump, "{\"a\":\"1\",\"b\":\"2\"}");
}

static void test_json_getter_errors(void **state)
{
        (void)state;
        _cleanup_json_ json_t *j = NULL;
        assert_int_equal(json_load("{\"s\":1,\"m\":{\"k\":2}}", 19, &j, NULL), 0);
        const char *s;
        _cleanup_error_ struct error *e = NULL;
        assert_int_equal(json_get_string(j, "s", &s, &e), -EINVAL);
        assert_string_equal(error_str(e), "json: \"s\": expected string, got integer: invalid argument");
        error_free(&e);
        assert_int_equal(json_get_string(j, "nope", &s, &e), -ENOENT);
        assert_string_equal(error_str(e), "json: \"nope\": not found");
        error_free(&e);
        assert_int_equal(json_get_string_opt(j, "s", &s, &e), -EINVAL);
        error_free(&e);
        char **kv = NULL;
        assert_int_equal(json_get_string_map(j, "m", &kv, &e), -EINVAL);
        assert_null(kv);
}

static void test_json_bounds(void **state)
{
        (void)state;
        _cleanup_json_ json_t *j = NULL;
        _cleanup_error_ struct error *e = NULL;
        assert_int_equal(json_load_bounded("[[[1]]]", 7, 100, 3, &j, NULL), 0);
        json_decref(j);
        j = NULL;
        assert_int_equal(json_load_bounded("[[[[1]]]]", 9, 100, 3, &j, &e), -EINVAL);
        assert_string_equal(error_str(e), "json: too deep: invalid argument");
        error_free(&e);
        /* Brackets inside strings do not count, even after escaped quotes. */
        assert_int_equal(json_check_depth("[\"\\\"[[[[\"]", 11, 1, NULL), 0);
        assert_int_equal(json_load_bounded("\"aaaa\"", 6, 5, 3, &j, &e), -EINVAL);
        assert_string_equal(error_str(e), "json: too large (6 bytes, limit 5): invalid argument");
        error_free(&e);
        assert_int_equal(json_load("{\"a\":", 5, &j, &e), -EINVAL);
        assert_non_null(strstr(error_str(e), "line 1"));
        assert_null(j);
        /* 100k nested arrays must be refused cheaply, not recursed into. */
        size_t n = 100000;
        char *deep = malloc(2 * n);
        memset(deep, '[', n);
        memset(deep + n, ']', n);
        error_free(&e);
        assert_int_equal(json_load_bounded(deep, 2 * n, 4 * n, 64, &j, &e), -EINVAL);
        free(deep);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_json_load_and_getters),
                cmocka_unit_test(test_json_getter_errors),
                cmocka_unit_test(test_json_bounds),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

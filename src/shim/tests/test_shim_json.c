/* The shim's bounded JSON reader: grammar validation, members, arrays, string decoding, integers, depth
 * limit, and the string quoting used for options.json. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shim/shim.h"

static int parse(const char *s, struct shim_json *j)
{
        return shim_json_parse(s, strlen(s), j);
}

static void test_valid_and_invalid(void **state)
{
        static const char *const good[] = {
            "{}",
            " [ ] ",
            "null",
            "true",
            "false",
            "0",
            "-0.5e+10",
            "1E3",
            "\"a\\u00e9\\n\"",
            "{\"a\":[1,2,{\"b\":null}],\"c\":\"d\"}",
            "[[[]]]",
            "\t{ \"k\" : \"v\" }\r\n",
        };
        static const char *const bad[] = {
            "",        " ",           "{",         "}",     "[1,]",       "{\"a\"}", "{\"a\":}",   "{a:1}",
            "01",      "1.",          "-",         ".5",    "1e",         "tru",     "nulll",      "\"abc",
            "\"\\x\"", "\"\\u12g4\"", "\"a\x01\"", "[1 2]", "{\"a\":1,}", "1 2",     "{\"a\":1}}", "[\"\\u12\"]",
        };
        struct shim_json j;
        (void)state;
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
                assert_int_equal(parse(good[i], &j), 0);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(parse(bad[i], &j), -EINVAL);
        assert_int_equal(parse("[1]", &j), 0);
        assert_int_equal(j.type, SHIM_JSON_ARRAY);
        assert_int_equal(parse(" {\"x\":1} ", &j), 0);
        assert_int_equal(j.type, SHIM_JSON_OBJECT);
        assert_int_equal(j.len, 7);
}

static void test_depth_limit(void **state)
{
        char buf[2 * (SHIM_JSON_MAX_DEPTH + 1) + 1];
        struct shim_json j;
        size_t n;
        (void)state;
        for (n = 0; n < SHIM_JSON_MAX_DEPTH; n++)
                buf[n] = '[';
        for (size_t i = 0; i < SHIM_JSON_MAX_DEPTH; i++)
                buf[n++] = ']';
        buf[n] = '\0';
        assert_int_equal(parse(buf, &j), 0);
        memmove(buf + 1, buf, n + 1);
        buf[0] = '[';
        strcat(buf, "]");
        assert_int_equal(parse(buf, &j), -EINVAL);
}

static void test_members(void **state)
{
        const char *doc = "{\"annotations\":{\"io.containerd.runc.v2.group\":\"g1\",\"x\":[1,{\"y\":2}]},"
                          "\"a\\u0062c\":\"escaped key\",\"dup\":1,\"dup\":\"last\",\"t\":true}";
        struct shim_json root, ann, v, arr;
        char *s;
        (void)state;
        assert_int_equal(parse(doc, &root), 0);
        assert_int_equal(shim_json_member(&root, "annotations", &ann), 0);
        assert_int_equal(shim_json_member(&ann, "io.containerd.runc.v2.group", &v), 0);
        s = shim_json_strdup(&v);
        assert_string_equal(s, "g1");
        free(s);
        assert_int_equal(shim_json_member(&ann, "missing", &v), -ENOENT);
        assert_int_equal(shim_json_member(&root, "abc", &v), 0);
        s = shim_json_strdup(&v);
        assert_string_equal(s, "escaped key");
        free(s);
        assert_int_equal(shim_json_member(&root, "dup", &v), 0);
        assert_int_equal(v.type, SHIM_JSON_STRING);
        assert_int_equal(shim_json_member(&root, "t", &v), 0);
        assert_int_equal(v.type, SHIM_JSON_TRUE);
        assert_null(shim_json_strdup(&v));
        assert_int_equal(shim_json_member(&ann, "x", &arr), 0);
        assert_int_equal(shim_json_member(&arr, "x", &v), -EINVAL);
        s = shim_json_string_member(doc, strlen(doc), "dup");
        assert_string_equal(s, "last");
        free(s);
        assert_null(shim_json_string_member("{\"a\":1}", 7, "a"));
        assert_null(shim_json_string_member("{\"a\":", 5, "a"));
}

static void test_arrays_and_ints(void **state)
{
        const char *doc = "[ 1, 23 ,-4, 9223372036854775807, -9223372036854775808, 9223372036854775808, 1.5, \"7\" ]";
        static const int64_t want[] = {1, 23, -4, INT64_MAX, INT64_MIN};
        struct shim_json arr, v;
        const char *pos = NULL;
        size_t n = 0;
        int64_t x;
        (void)state;
        assert_int_equal(parse(doc, &arr), 0);
        while (shim_json_next(&arr, &pos, &v)) {
                if (n < 5) {
                        assert_true(shim_json_int64(&v, &x));
                        assert_true(x == want[n]);
                } else {
                        assert_false(shim_json_int64(&v, &x));
                }
                n++;
        }
        assert_int_equal(n, 8);
        assert_int_equal(parse("[]", &arr), 0);
        pos = NULL;
        assert_false(shim_json_next(&arr, &pos, &v));
        assert_int_equal(parse("{}", &arr), 0);
        pos = NULL;
        assert_false(shim_json_next(&arr, &pos, &v));
        assert_int_equal(parse("{\"a\":5,\"b\":[6]}", &arr), 0);
        pos = NULL;
        assert_true(shim_json_next(&arr, &pos, &v));
        assert_true(shim_json_int64(&v, &x) && x == 5);
        assert_true(shim_json_next(&arr, &pos, &v));
        assert_int_equal(v.type, SHIM_JSON_ARRAY);
        assert_false(shim_json_next(&arr, &pos, &v));
        assert_int_equal(parse("7", &arr), 0);
        pos = NULL;
        assert_false(shim_json_next(&arr, &pos, &v));
}

static void test_strings(void **state)
{
        struct shim_json j;
        char *s;
        (void)state;
        assert_int_equal(parse("\"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t \\u00e9 \\u20ac \\ud83d\\ude00 \\ud800x\"", &j), 0);
        s = shim_json_strdup(&j);
        assert_string_equal(s, "q\" b\\ s/ \b\f\n\r\t \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbdx");
        free(s);
        assert_int_equal(parse("\"a\\u0000b\"", &j), 0);
        assert_null(shim_json_strdup(&j));
        assert_int_equal(parse("\"\"", &j), 0);
        s = shim_json_strdup(&j);
        assert_string_equal(s, "");
        free(s);
}

static void test_quote(void **state)
{
        struct shim_buf b = {0};
        struct shim_json j;
        char *s;
        (void)state;
        shim_json_quote(&b, "a\"b\\c\n\x01/\xc3\xa9");
        assert_string_equal(b.s, "\"a\\\"b\\\\c\\u000a\\u0001/\xc3\xa9\"");
        assert_int_equal(shim_json_parse(b.s, b.len, &j), 0);
        s = shim_json_strdup(&j);
        assert_string_equal(s, "a\"b\\c\n\x01/\xc3\xa9");
        free(s);
        free(b.s);
}

static void test_group_id(void **state)
{
        const char *cfg = "{\"ociVersion\":\"1.0.2\",\"annotations\":{\"io.kubernetes.cri.sandbox-id\":\"\","
                          "\"io.containerd.runc.v2.group\":\"grp\"}}";
        char *g;
        (void)state;
        g = shim_group_id(cfg, strlen(cfg), "id1");
        assert_string_equal(g, "grp");
        free(g);
        g = shim_group_id("{\"annotations\":[]}", 18, "id1");
        assert_string_equal(g, "id1");
        free(g);
        g = shim_group_id("not json", 8, "id1");
        assert_string_equal(g, "id1");
        free(g);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_valid_and_invalid), cmocka_unit_test(test_depth_limit),
            cmocka_unit_test(test_members),           cmocka_unit_test(test_arrays_and_ints),
            cmocka_unit_test(test_strings),           cmocka_unit_test(test_quote),
            cmocka_unit_test(test_group_id),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

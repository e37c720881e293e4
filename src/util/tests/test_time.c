#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "util/cleanup.h"
#include "util/time.h"

static void check_fmt(int64_t s, int32_t ns, int off, const char *want)
{
        char *got = time_format_rfc3339nano(s, ns, off);
        assert_string_equal(got, want);
        free(got);
}

static void test_time_format_like_go(void **state)
{
        (void)state;
        /* Outputs of Go's time.Unix(s, ns).UTC().Format(time.RFC3339Nano). */
        check_fmt(0, 0, 0, "1970-01-01T00:00:00Z");
        check_fmt(1735787045, 123456789, 0, "2025-01-02T03:04:05.123456789Z");
        check_fmt(1735787045, 120000000, 0, "2025-01-02T03:04:05.12Z");
        check_fmt(1735787045, 1, 0, "2025-01-02T03:04:05.000000001Z");
        check_fmt(1735787045, 500000000, 3600 + 1800, "2025-01-02T04:34:05.5+01:30");
        check_fmt(1735787045, 0, -7 * 3600, "2025-01-01T20:04:05-07:00");
        check_fmt(TIME_GO_ZERO_UNIX_SEC, 0, 0, "0001-01-01T00:00:00Z");
        char *f = time_format_rfc3339nano_fixed(1735787045, 120000000, 0);
        assert_string_equal(f, "2025-01-02T03:04:05.120000000Z");
        free(f);
}

static void test_time_parse(void **state)
{
        (void)state;
        int64_t s;
        int32_t ns;
        assert_int_equal(time_parse_rfc3339("2025-01-02T03:04:05.12Z", &s, &ns, NULL), 0);
        assert_int_equal(s, 1735787045);
        assert_int_equal(ns, 120000000);
        assert_int_equal(time_parse_rfc3339("2025-01-02T04:34:05+01:30", &s, &ns, NULL), 0);
        assert_int_equal(s, 1735787045);
        assert_int_equal(ns, 0);
        assert_int_equal(time_parse_rfc3339("0001-01-01T00:00:00Z", &s, &ns, NULL), 0);
        assert_int_equal(s, TIME_GO_ZERO_UNIX_SEC);
        assert_int_equal(time_parse_rfc3339("2024-02-29T00:00:00Z", &s, &ns, NULL), 0);
        const char *bad[] = {"", "2025-01-02", "2025-13-02T03:04:05Z", "2023-02-29T00:00:00Z",
                             "2025-01-02T03:04:05", "2025-01-02T03:04:05.Z", "2025-01-02T03:04:05Zx",
                             "2025-01-02T03:04:05.1234567891Z"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(time_parse_rfc3339(bad[i], &s, &ns, NULL), -EINVAL);
        _cleanup_error_ struct error *e = NULL;
        time_parse_rfc3339("x", &s, &ns, &e);
        assert_string_equal(error_str(e), "parsing time \"x\" as RFC3339: invalid argument");
}

static void test_time_pb_helpers(void **state)
{
        (void)state;
        int64_t s = 0;
        int32_t n = 5;
        time_pb_set_unset(&s, &n);
        assert_true(time_pb_is_unset(s, n));
        assert_false(time_pb_is_unset(0, 0));
        time_pb_from_ns(-1, &s, &n);
        assert_int_equal(s, -1);
        assert_int_equal(n, 999999999);
        assert_int_equal(time_pb_to_ns(s, n), -1);
        time_pb_from_ns(1500000000, &s, &n);
        assert_int_equal(s, 1);
        assert_int_equal(n, 500000000);
        assert_int_equal(time_pb_to_ns(INT64_MAX / 2, 0), INT64_MAX);
}

static void test_time_clocks(void **state)
{
        (void)state;
        uint64_t a = time_monotonic_ns(), b = time_monotonic_ns();
        assert_true(b >= a);
        assert_true(time_monotonic_ms() >= a / 1000000);
        int64_t s;
        int32_t n;
        time_now(&s, &n);
        assert_true(s > 1700000000);
        assert_true(n >= 0 && n < 1000000000);
        assert_true(time_now_ns() / 1000000000 >= s);
}

static void test_time_duration(void **state)
{
        (void)state;
        struct {
                const char *in;
                int64_t ns;
        } ok[] = {
                {"0", 0},          {"0s", 0},           {"5s", 5000000000LL},      {"100ms", 100000000},
                {"4h0m0s", 4 * 3600 * 1000000000LL},   {"1.5h", 5400000000000LL}, {"-1.5s", -1500000000},
                {"+3m", 180000000000LL}, {"1h2m3s4ms5us6ns", 3723004005006LL}, {"2\xc2\xb5s", 2000},
                {".5s", 500000000}, {"1.s", 1000000000},
        };
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                int64_t ns = -1;
                assert_int_equal(time_parse_duration(ok[i].in, &ns, NULL), 0);
                assert_true(ns == ok[i].ns);
        }
        const char *bad[] = {"", "s", "5", "1x", "1.5", ".s", "-", "9999999999999999999h", "1h 2m"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                int64_t ns;
                assert_int_equal(time_parse_duration(bad[i], &ns, NULL), -EINVAL);
        }
        _cleanup_error_ struct error *e = NULL;
        int64_t ns;
        time_parse_duration("1x", &ns, &e);
        assert_string_equal(error_str(e), "time: invalid duration \"1x\": invalid argument");

        struct {
                int64_t ns;
                const char *out;
        } fmt[] = {
                {0, "0s"}, {1, "1ns"}, {1100, "1.1\xc2\xb5s"}, {100000000, "100ms"}, {1500000000, "1.5s"},
                {4 * 3600 * 1000000000LL, "4h0m0s"}, {3723004005006LL, "1h2m3.004005006s"}, {-5000000000LL, "-5s"},
                {90 * 1000000000LL, "1m30s"},
        };
        for (size_t i = 0; i < sizeof(fmt) / sizeof(fmt[0]); i++) {
                char *s = time_format_duration(fmt[i].ns);
                assert_string_equal(s, fmt[i].out);
                free(s);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_time_format_like_go),
                cmocka_unit_test(test_time_parse),
                cmocka_unit_test(test_time_pb_helpers),
                cmocka_unit_test(test_time_clocks),
                cmocka_unit_test(test_time_duration),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

/* cli/progress: bar rendering, sizes, plain lines on status changes only, the TTY redraw and quiet. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/progress.h"

static void test_bar(void **state)
{
        (void)state;
        char b[64];
        cli_progress_bar(b, sizeof(b), 0, 100, 10);
        assert_string_equal(b, "|----------|");
        cli_progress_bar(b, sizeof(b), 50, 100, 10);
        assert_string_equal(b, "|+++++-----|");
        cli_progress_bar(b, sizeof(b), 200, 100, 10);
        assert_string_equal(b, "|++++++++++|");
        cli_progress_bar(b, sizeof(b), 5, 0, 4); /* unknown total */
        assert_string_equal(b, "|----|");
        cli_progress_bar(b, 6, 1, 1, 40); /* clipped to the buffer */
        assert_string_equal(b, "|+++|");
}

static void test_size(void **state)
{
        (void)state;
        char b[32];
        cli_progress_size(b, sizeof(b), 412);
        assert_string_equal(b, "412.0 B");
        cli_progress_size(b, sizeof(b), 1536);
        assert_string_equal(b, "1.5 KiB");
        cli_progress_size(b, sizeof(b), 3.0 * 1024 * 1024);
        assert_string_equal(b, "3.0 MiB");
}

static char *capture(bool tty, bool quiet)
{
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        assert_non_null(f);
        struct cli_progress *p = cli_progress_new(f, tty, quiet);
        cli_progress_update(p, "layer-sha256:aa", "waiting", 0, 10);
        cli_progress_update(p, "layer-sha256:aa", "downloading", 1, 10);
        cli_progress_update(p, "layer-sha256:aa", "downloading", 5, 10); /* same status: no new plain line */
        cli_progress_flush(p);
        cli_progress_update(p, "layer-sha256:aa", "done", 10, 10);
        cli_progress_finish(p, 10);
        cli_progress_free(p);
        fclose(f);
        return buf;
}

static int count(const char *s, const char *needle)
{
        int n = 0;
        for (const char *q = strstr(s, needle); q; q = strstr(q + 1, needle))
                n++;
        return n;
}

static void test_plain(void **state)
{
        (void)state;
        char *out = capture(false, false);
        assert_int_equal(count(out, "layer-sha256:aa:"), 3);
        assert_non_null(strstr(out, "layer-sha256:aa:\tdone\t|++++"));
        assert_non_null(strstr(out, "elapsed: "));
        assert_null(strstr(out, "\033["));
        free(out);
}

static void test_tty(void **state)
{
        (void)state;
        char *out = capture(true, false);
        /* drawn twice (flush, finish); the second time after moving the cursor up one line */
        assert_int_equal(count(out, "layer-sha256:aa:"), 2);
        assert_non_null(strstr(out, "\033[1A"));
        assert_non_null(strstr(out, "10.0 B/10.0 B"));
        free(out);
}

static void test_quiet(void **state)
{
        (void)state;
        char *out = capture(false, true);
        assert_string_equal(out, "");
        free(out);
        out = capture(true, true);
        assert_string_equal(out, "");
        free(out);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_bar),   cmocka_unit_test(test_size),  cmocka_unit_test(test_plain),
            cmocka_unit_test(test_tty),   cmocka_unit_test(test_quiet),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

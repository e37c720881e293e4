/* Process state machine, exit status mapping and stdio URI parsing. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "shim/shim.h"

static void expect_err(enum shim_state s, enum shim_op op, int code, const char *msg)
{
        struct error *e = NULL;
        assert_int_equal(shim_state_check(s, op, &e), -code);
        assert_non_null(e);
        char *m = error_message(e);
        assert_string_equal(m, msg);
        free(m);
        error_free(&e);
}

static void test_state_machine(void **state)
{
        enum shim_state s = SHIM_STATE_CREATED;
        (void)state;
        assert_int_equal(shim_state_to_status(s), 1);
        expect_err(s, SHIM_OP_PAUSE, EBUSY, "cannot pause a created process");
        assert_int_equal(shim_state_check(s, SHIM_OP_START, NULL), 0);
        s = shim_state_next(s, SHIM_OP_START);
        assert_int_equal(s, SHIM_STATE_RUNNING);
        assert_int_equal(shim_state_to_status(s), 2);
        expect_err(s, SHIM_OP_START, EBUSY, "cannot start a running process");
        expect_err(s, SHIM_OP_DELETE, EBUSY, "cannot delete a running process");
        expect_err(s, SHIM_OP_RESUME, EBUSY, "cannot resume a running process");
        assert_int_equal(shim_state_check(s, SHIM_OP_PAUSE, NULL), 0);
        s = shim_state_next(s, SHIM_OP_PAUSE);
        assert_int_equal(shim_state_to_status(s), 4);
        expect_err(s, SHIM_OP_EXEC, EBUSY, "cannot exec in a paused state");
        expect_err(s, SHIM_OP_DELETE, EBUSY, "cannot delete a paused process");
        assert_int_equal(shim_state_check(s, SHIM_OP_RESUME, NULL), 0);
        s = shim_state_next(s, SHIM_OP_RESUME);
        assert_int_equal(s, SHIM_STATE_RUNNING);
        s = shim_state_next(s, SHIM_OP_EXIT);
        assert_int_equal(s, SHIM_STATE_STOPPED);
        assert_int_equal(shim_state_to_status(s), 3);
        expect_err(s, SHIM_OP_KILL, ENOENT, "process already finished: not found");
        expect_err(s, SHIM_OP_START, EBUSY, "cannot start a stopped process");
        expect_err(s, SHIM_OP_EXEC, EBUSY, "cannot exec in a stopped state");
        assert_int_equal(shim_state_check(s, SHIM_OP_DELETE, NULL), 0);
        s = shim_state_next(s, SHIM_OP_DELETE);
        expect_err(s, SHIM_OP_KILL, ENOENT, "process deleted: not found");
}

static void test_exit_status(void **state)
{
        (void)state;
        assert_int_equal(shim_exit_status(0), 0);
        assert_int_equal(shim_exit_status(3 << 8), 3);
        assert_int_equal(shim_exit_status(255 << 8), 255);
        assert_int_equal(shim_exit_status(SIGKILL), 137);
        assert_int_equal(shim_exit_status(SIGTERM), 143);
        assert_int_equal(shim_exit_status(SIGSEGV | 0x80), 139); /* core dumped */
}

static void test_uri(void **state)
{
        struct shim_uri u;
        struct error *e = NULL;
        (void)state;
        assert_int_equal(shim_uri_parse("", &u, NULL), 0);
        assert_int_equal(u.kind, SHIM_URI_NONE);
        assert_int_equal(shim_uri_parse("/run/x/fifo/t1-stdout", &u, NULL), 0);
        assert_int_equal(u.kind, SHIM_URI_FIFO);
        assert_string_equal(u.path, "/run/x/fifo/t1-stdout");
        shim_uri_clear(&u);
        assert_int_equal(shim_uri_parse("file:///var/log/a%20b.log", &u, NULL), 0);
        assert_int_equal(u.kind, SHIM_URI_FILE);
        assert_string_equal(u.path, "/var/log/a b.log");
        assert_null(u.args);
        shim_uri_clear(&u);
        assert_int_equal(shim_uri_parse("binary:///usr/bin/logger?id=abc&flag&x=a+b", &u, NULL), 0);
        assert_int_equal(u.kind, SHIM_URI_BINARY);
        assert_string_equal(u.path, "/usr/bin/logger");
        assert_non_null(u.args);
        assert_string_equal(u.args[0], "id");
        assert_string_equal(u.args[1], "abc");
        assert_string_equal(u.args[2], "flag");
        assert_string_equal(u.args[3], "x");
        assert_string_equal(u.args[4], "a b");
        assert_null(u.args[5]);
        shim_uri_clear(&u);
        assert_int_equal(shim_uri_parse("http://x/y", &u, &e), -EINVAL);
        char *m = error_message(e);
        assert_non_null(strstr(m, "unsupported STDIO scheme http"));
        free(m);
        error_free(&e);
        assert_int_equal(shim_uri_parse("file://relative/path", &u, NULL), -EINVAL);
        assert_int_equal(shim_uri_parse("file:///bad%zz", &u, NULL), -EINVAL);
        assert_int_equal(shim_uri_parse("file:///nul%00x", &u, NULL), -EINVAL);
        assert_int_equal(shim_uri_parse("file:///trunc%4", &u, NULL), -EINVAL);
        assert_int_equal(shim_uri_parse("relative", &u, NULL), -EINVAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_state_machine),
            cmocka_unit_test(test_exit_status),
            cmocka_unit_test(test_uri),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

/* krill run's client stdio (task_io.c): FIFO names like ctr's cio, copies in both directions with a fake shim
 * on the other ends, and no hang or leftover when the shim never opens its ends. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/task_io.h"
#include "util/alloc.h"
#include "util/cleanup.h"

static char *tmpdir(void)
{
        char *d = xstrdup("/tmp/test-run-io-XXXXXX");
        assert_non_null(mkdtemp(d));
        return d;
}

static void test_paths(void **state)
{
        (void)state;
        char *in, *out, *err;
        cli_stdio_paths("/run/x/abc", "t1", false, &in, &out, &err);
        assert_string_equal(in, "/run/x/abc/t1-stdin");
        assert_string_equal(out, "/run/x/abc/t1-stdout");
        assert_string_equal(err, "/run/x/abc/t1-stderr");
        free(in);
        free(out);
        free(err);
        cli_stdio_paths("/d", "e1", true, &in, &out, &err);
        assert_string_equal(in, "/d/e1-stdin");
        assert_string_equal(out, "/d/e1-stdout");
        assert_null(err);
        free(in);
        free(out);
}

static void read_all(int fd, char *buf, size_t size)
{
        size_t n = 0;
        for (;;) {
                ssize_t r = read(fd, buf + n, size - 1 - n);
                assert_true(r >= 0);
                if (r == 0)
                        break;
                n += (size_t)r;
        }
        buf[n] = '\0';
}

static void test_copies(void **state)
{
        (void)state;
        _cleanup_free_ char *d = tmpdir();
        _cleanup_free_ char *fifo_dir = xasprintf("%s/fifo", d); /* created on demand */
        struct cli_stdio *s = NULL;
        int out[2], err[2], in[2];

        assert_int_equal(cli_stdio_new(fifo_dir, "c1", false, &s, NULL), 0);
        assert_int_equal(strncmp(s->dir, fifo_dir, strlen(fifo_dir)), 0);
        struct stat st;
        assert_int_equal(stat(s->stdout_path, &st), 0);
        assert_true(S_ISFIFO(st.st_mode));
        assert_int_equal(stat(s->stderr_path, &st), 0);
        assert_true(S_ISFIFO(st.st_mode));
        _cleanup_free_ char *dir = xstrdup(s->dir);

        assert_int_equal(pipe(out), 0);
        assert_int_equal(pipe(err), 0);
        assert_int_equal(pipe(in), 0);
        assert_int_equal(write(in[1], "typed", 5), 5);
        close(in[1]);
        s->out_fd = out[1];
        s->err_fd = err[1];
        s->in_fd = in[0];
        assert_int_equal(cli_stdio_start(s, NULL), 0);

        /* the shim's side */
        int w = open(s->stdout_path, O_WRONLY);
        assert_true(w >= 0);
        assert_int_equal(write(w, "hello\n", 6), 6);
        close(w);
        w = open(s->stderr_path, O_WRONLY);
        assert_true(w >= 0);
        assert_int_equal(write(w, "oops\n", 5), 5);
        close(w);
        int r = open(s->stdin_path, O_RDONLY);
        assert_true(r >= 0);
        char buf[64];
        read_all(r, buf, sizeof(buf));
        close(r);
        assert_string_equal(buf, "typed");

        cli_stdio_free(s);
        close(out[1]);
        close(err[1]);
        read_all(out[0], buf, sizeof(buf));
        assert_string_equal(buf, "hello\n");
        read_all(err[0], buf, sizeof(buf));
        assert_string_equal(buf, "oops\n");
        close(out[0]);
        close(err[0]);
        close(in[0]);
        assert_int_equal(access(dir, F_OK), -1); /* FIFOs and their dir are gone */
        assert_int_equal(rmdir(fifo_dir), 0);
        assert_int_equal(rmdir(d), 0);
}

static void test_shim_never_opened(void **state)
{
        (void)state;
        _cleanup_free_ char *d = tmpdir();
        struct cli_stdio *s = NULL;
        int in[2];

        assert_int_equal(cli_stdio_new(d, "c2", true, &s, NULL), 0);
        assert_null(s->stderr_path);
        assert_int_equal(pipe(in), 0);
        s->in_fd = in[0]; /* never written, never closed: the stdin copy stays blocked */
        s->out_fd = in[1];
        assert_int_equal(cli_stdio_start(s, NULL), 0);
        /* must return: readers blocked in open(2) are released, the stdin copy is cancelled */
        cli_stdio_free(s);
        close(in[0]);
        close(in[1]);
        assert_int_equal(rmdir(d), 0); /* empty */
}

static void test_bad_dir(void **state)
{
        (void)state;
        struct cli_stdio *s = NULL;
        struct error *err = NULL;
        assert_int_equal(cli_stdio_new("/proc/no/such/dir", "c3", false, &s, &err), -ENOENT);
        assert_non_null(err);
        error_free(&err);
        assert_null(s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_paths),
                cmocka_unit_test(test_copies),
                cmocka_unit_test(test_shim_never_opened),
                cmocka_unit_test(test_bad_dir),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

/* OCI runtime CLI runner: last error extraction from the JSON log, running a fake runtime, pid files. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "shim/shim.h"

static void test_last_error(void **state)
{
        const char *log = "{\"level\":\"info\",\"msg\":\"starting\",\"time\":\"t\"}\n"
                          "{\"level\":\"error\",\"msg\":\"first\",\"time\":\"t\"}\n"
                          "garbage line\n"
                          "{\"level\":\"error\",\"msg\":\"runc create failed: unable to start container process: "
                          "exec: \\\"nope\\\": executable file not found in $PATH\",\"time\":\"t\"}\n"
                          "{\"level\":\"warning\",\"msg\":\"later warning\"}";
        char *m;
        (void)state;
        m = shim_runtime_last_error(log, strlen(log));
        assert_non_null(m);
        assert_string_equal(m, "runc create failed: unable to start container process: exec: \"nope\": "
                               "executable file not found in $PATH");
        free(m);
        assert_null(shim_runtime_last_error("{\"level\":\"info\",\"msg\":\"x\"}\n", 27));
        assert_null(shim_runtime_last_error("", 0));
        m = shim_runtime_last_error("{\"level\":\"fatal\",\"msg\":\"boom\"}", 30);
        assert_string_equal(m, "boom");
        free(m);
}

struct fixture {
        char dir[64];
        char *script;
};

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        FILE *fp;
        strcpy(f->dir, "/tmp/test-shim-runtime-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        assert_true(asprintf(&f->script, "%s/fake-runtime", f->dir) > 0);
        fp = fopen(f->script, "w");
        assert_non_null(fp);
        /* args: --root R --log L --log-format json CMD ...; "fail" logs an error, "echo" copies stdin */
        fputs("#!/bin/sh\nlog=$4\nshift 6\ncase $1 in\n"
              "fail) echo '{\"level\":\"error\",\"msg\":\"container \\\"x\\\" does not exist\"}' >> $log; exit 1;;\n"
              "silent) exit 3;;\n"
              "echo) cat; echo \" args=$*\";;\n"
              "esac\nexit 0\n",
              fp);
        fclose(fp);
        chmod(f->script, 0755);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        char *cmd = NULL;
        assert_true(asprintf(&cmd, "rm -rf %s", f->dir) > 0);
        assert_int_equal(system(cmd), 0);
        free(cmd);
        free(f->script);
        free(f);
        return 0;
}

static void test_run(void **state)
{
        struct fixture *f = *state;
        struct shim_runtime rt = {.binary = f->script, .root = f->dir, .bundle = f->dir};
        struct error *e = NULL;
        char *out = NULL, *m;
        const char *ok[] = {"echo", "a", "b", NULL};
        const char *bad[] = {"fail", NULL};
        const char *silent[] = {"silent", NULL};

        assert_int_equal(
            shim_runtime_run(
                &rt, "op", ok,
                &(struct shim_runtime_io){.fds = {-1, -1, -1}, .input = "in", .input_len = 2, .output = &out}, &e),
            0);
        assert_string_equal(out, "in args=echo a b\n");
        free(out);
        assert_int_equal(shim_runtime_run(&rt, "OCI runtime delete failed", bad, NULL, &e), -EIO);
        m = error_message(e);
        assert_string_equal(m, "OCI runtime delete failed: container \"x\" does not exist");
        free(m);
        error_free(&e);
        /* a failure that logged nothing new must not pick up the earlier error */
        assert_int_equal(shim_runtime_run(&rt, "op", silent, NULL, &e), -EIO);
        m = error_message(e);
        assert_non_null(strstr(m, "did not terminate successfully: exit status 3"));
        free(m);
        error_free(&e);
}

static void test_pid_file(void **state)
{
        struct fixture *f = *state;
        char *p = NULL;
        struct error *e = NULL;
        assert_true(asprintf(&p, "%s/init.pid", f->dir) > 0);
        assert_int_equal(shim_write_file(p, "1234", 4, NULL), 0);
        assert_int_equal(shim_read_pid_file(p, NULL), 1234);
        assert_int_equal(shim_write_file(p, "12x", 3, NULL), 0);
        assert_int_equal(shim_read_pid_file(p, &e), -EINVAL);
        error_free(&e);
        unlink(p);
        assert_int_equal(shim_read_pid_file(p, &e), -ENOENT);
        error_free(&e);
        free(p);
}

static void test_spec_info(void **state)
{
        struct shim_spec_info si;
        const char *plain = "{\"process\":{},\"linux\":{\"namespaces\":[{\"type\":\"mount\"},{\"type\":\"pid\"}]}}";
        const char *hooks = "{\"hooks\":{\"prestart\":[{\"path\":\"/x\"}],\"poststart\":[{\"path\":\"/bin/true\"}]},"
                            "\"linux\":{\"namespaces\":[{\"type\":\"pid\",\"path\":\"/proc/1/ns/pid\"}]}}";
        const char *empty = "{\"hooks\":{\"poststart\":[],\"createRuntime\":[{\"path\":\"/x\"}]},\"linux\":{}}";
        const char *nullhook =
            "{\"hooks\":{\"poststart\":null},\"linux\":{\"namespaces\":[{\"type\":\"pid\",\"path\":\"\"}]}}";
        (void)state;

        assert_int_equal(shim_spec_info_parse(plain, strlen(plain), &si), 0);
        assert_false(si.poststart);
        assert_true(si.private_pidns);
        assert_int_equal(shim_spec_info_parse(hooks, strlen(hooks), &si), 0);
        assert_true(si.poststart);
        assert_false(si.private_pidns); /* joins another pid namespace */
        assert_int_equal(shim_spec_info_parse(empty, strlen(empty), &si), 0);
        assert_false(si.poststart);
        assert_false(si.private_pidns); /* host pid namespace */
        assert_int_equal(shim_spec_info_parse(nullhook, strlen(nullhook), &si), 0);
        assert_false(si.poststart);
        assert_true(si.private_pidns);
        /* unreadable: the conservative answer */
        assert_int_equal(shim_spec_info_parse("{\"hooks\":", 9, &si), -EINVAL);
        assert_true(si.poststart);
        assert_false(si.private_pidns);
        assert_int_equal(shim_spec_info_parse(NULL, 0, &si), -EINVAL);
        assert_true(si.poststart);
}

static void test_is_runc(void **state)
{
        (void)state;
        assert_true(shim_runtime_is_runc(&(struct shim_runtime){.binary = "runc"}));
        assert_true(shim_runtime_is_runc(&(struct shim_runtime){.binary = "/usr/sbin/runc"}));
        assert_true(shim_runtime_is_runc(&(struct shim_runtime){.binary = NULL}));
        assert_false(shim_runtime_is_runc(&(struct shim_runtime){.binary = "crun"}));
        assert_false(shim_runtime_is_runc(&(struct shim_runtime){.binary = "/opt/runc-wrapper"}));
}

/* A fake runc init: opens the fifo for writing (blocks until the reader), writes what it is told, exits. */
static pid_t fake_init(const char *fifo, const char *data, bool open_it, unsigned delay_ms)
{
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                if (delay_ms)
                        usleep(delay_ms * 1000);
                if (open_it) {
                        int fd = open(fifo, O_WRONLY | O_CLOEXEC);
                        if (fd < 0)
                                _exit(1);
                        if (*data && write(fd, data, strlen(data)) < 0)
                                _exit(2);
                }
                _exit(0);
        }
        return pid;
}

static void test_exec_fifo(void **state)
{
        struct fixture *f = *state;
        char *dir = NULL, *fifo = NULL, *m;
        struct error *e = NULL;
        struct stat st;
        int status, r;
        pid_t pid;

        assert_true(asprintf(&dir, "%s/ctr1", f->dir) > 0);
        assert_true(asprintf(&fifo, "%s/exec.fifo", dir) > 0);
        /* no fifo: the caller falls back to `runc start` */
        assert_int_equal(shim_runc_exec_fifo(f->dir, "ctr1", getpid(), &e), 1);
        assert_null(e);
        assert_int_equal(mkdir(dir, 0700), 0);

        /* the normal start: one byte, then EOF when the writer is gone; the fifo is removed */
        assert_int_equal(mkfifo(fifo, 0622), 0);
        pid = fake_init(fifo, "0", true, 0);
        assert_int_equal(shim_runc_exec_fifo(f->dir, "ctr1", pid, &e), 0);
        assert_null(e);
        assert_int_equal(stat(fifo, &st), -1);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

        /* init died before the call (a zombie not reaped yet, or reaped): runc start gives its own error */
        assert_int_equal(mkfifo(fifo, 0622), 0);
        pid = fake_init(fifo, "", false, 0);
        assert_int_equal(waitid(P_PID, (id_t)pid, &(siginfo_t){0}, WEXITED | WNOWAIT), 0);
        assert_int_equal(shim_runc_exec_fifo(f->dir, "ctr1", pid, &e), 1);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_int_equal(shim_runc_exec_fifo(f->dir, "ctr1", pid, &e), 1);
        assert_null(e);
        /* init dies while the shim waits (it never opened the fifo): runc's error, fifo kept. On a machine slow
         * enough to run the call after the death, the answer is the fallback above. */
        pid = fake_init(fifo, "", false, 150);
        r = shim_runc_exec_fifo(f->dir, "ctr1", pid, &e);
        if (r != 1) {
                assert_int_equal(r, -EIO);
                m = error_message(e);
                assert_string_equal(m, "container process is already dead");
                free(m);
                error_free(&e);
        }
        assert_int_equal(stat(fifo, &st), 0);
        assert_int_equal(waitpid(pid, &status, 0), pid);

        /* a writer that closes without a byte: runc's "already running" */
        pid = fake_init(fifo, "", true, 0);
        assert_int_equal(shim_runc_exec_fifo(f->dir, "ctr1", pid, &e), -EIO);
        m = error_message(e);
        assert_string_equal(m, "cannot start an already running container");
        free(m);
        error_free(&e);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

        free(dir);
        free(fifo);
}

static void write_state(const char *dir, const char *cgroot, const char *hooks, const char *pidns, const char *extra)
{
        char *path = NULL, *json = NULL;
        assert_true(asprintf(&path, "%s/state.json", dir) > 0);
        assert_true(asprintf(&json,
                             "{\"id\":\"c\",\"config\":{\"namespaces\":[{\"type\":\"NEWNS\",\"path\":\"\"},%s],"
                             "\"cgroups\":{\"path\":\"/x\"},\"Hooks\":%s,\"intel_rdt\":null},"
                             "\"cgroup_paths\":{\"\":\"%s/unified/k/c\",\"memory\":\"%s/memory/k/c\"%s},"
                             "\"intel_rdt_path\":\"\"}",
                             pidns, hooks, cgroot, cgroot, extra) > 0);
        assert_int_equal(shim_write_file(path, json, strlen(json), NULL), 0);
        free(path);
        free(json);
}

static void test_delete_stopped(void **state)
{
        struct fixture *f = *state;
        char *root = NULL, *dir = NULL, *cg = NULL, *cmd = NULL, *p = NULL;
        const char *nohooks = "{\"poststop\":null,\"prestart\":null}";
        const char *own = "{\"type\":\"NEWPID\",\"path\":\"\"}";
        struct stat st;

        assert_true(asprintf(&root, "%s/runc", f->dir) > 0);
        assert_true(asprintf(&dir, "%s/runc/c", f->dir) > 0);
        assert_true(asprintf(&cg, "%s/cg", f->dir) > 0);
        assert_true(asprintf(&cmd, "mkdir -p %s %s/unified/k/c/sub/subsub %s/memory/k/c", dir, cg, cg) > 0);
        /* no state.json: runc's business */
        assert_int_equal(system(cmd), 0);
        assert_int_equal(shim_runc_delete_stopped(root, "c", cg), 1);

        /* each refusal leaves everything in place */
        write_state(dir, cg, "{\"poststop\":[{\"path\":\"/bin/true\"}]}", own, "");
        assert_int_equal(shim_runc_delete_stopped(root, "c", cg), 1);
        write_state(dir, cg, nohooks, "{\"type\":\"NEWPID\",\"path\":\"/proc/1/ns/pid\"}", "");
        assert_int_equal(shim_runc_delete_stopped(root, "c", cg), 1);
        write_state(dir, cg, nohooks, "{\"type\":\"NEWNET\",\"path\":\"\"}", "");
        assert_int_equal(shim_runc_delete_stopped(root, "c", cg), 1);
        write_state(dir, cg, nohooks, own, ",\"pids\":\"/elsewhere/pids/k/c\"");
        assert_int_equal(shim_runc_delete_stopped(root, "c", cg), 1);
        write_state(dir, cg, nohooks, own, ",\"pids\":\"/sys/../etc\"");
        assert_int_equal(shim_runc_delete_stopped(root, "c", cg), 1);
        assert_int_equal(stat(dir, &st), 0);
        free(p);
        assert_true(asprintf(&p, "%s/memory/k/c", cg) > 0);
        assert_int_equal(stat(p, &st), 0);

        /* the common case: cgroups (children first) and the state dir go, the parents stay */
        write_state(dir, cg, nohooks, own, "");
        assert_int_equal(shim_runc_delete_stopped(root, "c", cg), 0);
        assert_int_equal(stat(dir, &st), -1);
        assert_int_equal(stat(p, &st), -1);
        free(p);
        assert_true(asprintf(&p, "%s/unified/k/c", cg) > 0);
        assert_int_equal(stat(p, &st), -1);
        free(p);
        assert_true(asprintf(&p, "%s/unified/k", cg) > 0);
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(stat(root, &st), 0);
        free(p);
        free(root);
        free(dir);
        free(cg);
        free(cmd);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_last_error),
            cmocka_unit_test_setup_teardown(test_run, setup, teardown),
            cmocka_unit_test_setup_teardown(test_pid_file, setup, teardown),
            cmocka_unit_test(test_spec_info),
            cmocka_unit_test(test_is_runc),
            cmocka_unit_test_setup_teardown(test_exec_fifo, setup, teardown),
            cmocka_unit_test_setup_teardown(test_delete_stopped, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

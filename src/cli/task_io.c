/* ctr's cio for the krill CLI: FIFOs plus copy threads (the gRPC client is blocking and single-threaded, so
 * the copies run beside it on plain threads that only touch file descriptors). */
#include "cli/task_io.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/cleanup.h"

void cli_stdio_paths(const char *dir, const char *id, bool terminal, char **ret_in, char **ret_out,
                     char **ret_err)
{
        *ret_in = xasprintf("%s/%s-stdin", dir, id);
        *ret_out = xasprintf("%s/%s-stdout", dir, id);
        *ret_err = terminal ? NULL : xasprintf("%s/%s-stderr", dir, id);
}

static void stdio_remove(struct cli_stdio *s)
{
        if (s->stdin_path)
                unlink(s->stdin_path);
        if (s->stdout_path)
                unlink(s->stdout_path);
        if (s->stderr_path)
                unlink(s->stderr_path);
        if (s->dir)
                rmdir(s->dir);
}

static void stdio_release(struct cli_stdio *s)
{
        free(s->stdin_path);
        free(s->stdout_path);
        free(s->stderr_path);
        free(s->dir);
        free(s);
}

int cli_stdio_new(const char *fifo_dir, const char *id, bool terminal, struct cli_stdio **ret, struct error **err)
{
        if (mkdir(fifo_dir, 0700) < 0 && errno != EEXIST) {
                int r = -errno;
                error_set(err, -r, "failed to create fifo dir %s", fifo_dir);
                return r;
        }
        struct cli_stdio *s = xcalloc(1, sizeof(*s));
        s->terminal = terminal;
        s->in_fd = STDIN_FILENO;
        s->out_fd = STDOUT_FILENO;
        s->err_fd = STDERR_FILENO;
        s->dir = xasprintf("%s/XXXXXX", fifo_dir);
        if (!mkdtemp(s->dir)) {
                int r = -errno;
                error_set(err, -r, "failed to create fifo dir under %s", fifo_dir);
                free(s->dir);
                s->dir = NULL;
                stdio_release(s);
                return r;
        }
        cli_stdio_paths(s->dir, id, terminal, &s->stdin_path, &s->stdout_path, &s->stderr_path);
        const char *paths[] = {s->stdin_path, s->stdout_path, s->stderr_path};
        for (size_t i = 0; i < 3; i++) {
                if (paths[i] && mkfifo(paths[i], 0700) < 0) {
                        int r = -errno;
                        error_set(err, -r, "failed to create fifo %s", paths[i]);
                        stdio_remove(s);
                        stdio_release(s);
                        return r;
                }
        }
        *ret = s;
        return 0;
}

static int write_all(int fd, const char *buf, size_t n)
{
        while (n > 0) {
                ssize_t w = write(fd, buf, n);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                buf += w;
                n -= (size_t)w;
        }
        return 0;
}

static void copy_fd(int from, int to)
{
        char buf[32 * 1024];
        for (;;) {
                ssize_t n = read(from, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return;
                if (write_all(to, buf, (size_t)n) < 0)
                        return;
        }
}

struct copy_out {
        char *path;
        int to;
};

static void *out_thread(void *p)
{
        struct copy_out *c = p;
        int fd;
        do
                fd = open(c->path, O_RDONLY | O_CLOEXEC);
        while (fd < 0 && errno == EINTR);
        if (fd >= 0) {
                copy_fd(fd, c->to);
                close(fd);
        }
        free(c->path);
        free(c);
        return NULL;
}

static void *in_thread(void *p)
{
        struct copy_out *c = p; /* path and our fd: the same shape, the other direction */
        int from = c->to;
        int fd = open(c->path, O_WRONLY | O_CLOEXEC);
        free(c->path);
        free(c);
        if (fd < 0)
                return NULL;
        /* EOF on our stdin closes the FIFO, which the shim turns into EOF for the process */
        copy_fd(from, fd);
        close(fd);
        return NULL;
}

static int start_out(const char *path, int to, pthread_t *tid, struct error **err)
{
        struct copy_out *c = xcalloc(1, sizeof(*c));
        c->path = xstrdup(path);
        c->to = to;
        int r = pthread_create(tid, NULL, out_thread, c);
        if (r != 0) {
                free(c->path);
                free(c);
                return error_set(err, r, "failed to start an io copy");
        }
        return 0;
}

int cli_stdio_start(struct cli_stdio *s, struct error **err)
{
        int r;

        if (s->terminal && isatty(s->in_fd) && tcgetattr(s->in_fd, &s->saved) == 0) {
                struct termios raw = s->saved;
                cfmakeraw(&raw);
                if (tcsetattr(s->in_fd, TCSANOW, &raw) == 0)
                        s->raw = true;
        }
        /* a closed stdout reader must not kill us; the copy just stops */
        signal(SIGPIPE, SIG_IGN);
        r = start_out(s->stdout_path, s->out_fd, &s->out_tid, err);
        if (r < 0)
                return r;
        s->out_started = true;
        if (s->stderr_path) {
                r = start_out(s->stderr_path, s->err_fd, &s->err_tid, err);
                if (r < 0)
                        return r;
                s->err_started = true;
        }
        struct copy_out *in = xcalloc(1, sizeof(*in));
        in->path = xstrdup(s->stdin_path);
        in->to = s->in_fd;
        r = pthread_create(&s->in_tid, NULL, in_thread, in);
        if (r != 0) {
                free(in->path);
                free(in);
                return error_set(err, r, "failed to start an io copy");
        }
        s->in_started = true;
        return 0;
}

/* A reader still blocked in open(2) (the shim never opened its end) is released by a writer that comes and
 * goes; a reader already copying is unaffected and ends when the shim closes its end. */
static void release_reader(const char *path)
{
        int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0)
                close(fd);
}

void cli_stdio_free(struct cli_stdio *s)
{
        if (!s)
                return;
        if (s->out_started) {
                release_reader(s->stdout_path);
                pthread_join(s->out_tid, NULL);
        }
        if (s->err_started) {
                release_reader(s->stderr_path);
                pthread_join(s->err_tid, NULL);
        }
        if (s->in_started) {
                /* blocked reading our stdin or opening the FIFO: both are cancellation points */
                pthread_cancel(s->in_tid);
                pthread_join(s->in_tid, NULL);
        }
        if (s->raw)
                tcsetattr(s->in_fd, TCSANOW, &s->saved);
        stdio_remove(s);
        stdio_release(s);
}

bool cli_stdio_winsize(unsigned *ret_width, unsigned *ret_height)
{
        struct winsize ws;
        if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) < 0)
                return false;
        *ret_width = ws.ws_col;
        *ret_height = ws.ws_row;
        return true;
}

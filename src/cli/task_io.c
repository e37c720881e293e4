/* ctr's cio for the krill CLI: FIFOs plus copy threads (the gRPC client is blocking and single-threaded, so
 * the copies run beside it on plain threads that only touch file descriptors). */
#include "cli/task_io.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
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
        /* cio.NewFIFOSetInDir: os.MkdirAll(root, 0700) */
        _cleanup_free_ char *parents = xstrdup(fifo_dir);
        for (char *p = strchr(parents + 1, '/'); p; p = strchr(p + 1, '/')) {
                *p = '\0';
                (void)mkdir(parents, 0700);
                *p = '/';
        }
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
        s->stop[0] = s->stop[1] = -1;
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

/* Copies until EOF or an error; with stop_fd >= 0 also ends when stop_fd becomes readable. */
static void copy_fd(int from, int to, int stop_fd)
{
        char buf[32 * 1024];
        for (;;) {
                if (stop_fd >= 0) {
                        struct pollfd p[2] = {{.fd = from, .events = POLLIN}, {.fd = stop_fd, .events = POLLIN}};
                        if (poll(p, 2, -1) < 0) {
                                if (errno == EINTR)
                                        continue;
                                return;
                        }
                        if (p[1].revents)
                                return;
                }
                ssize_t n = read(from, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return;
                if (write_all(to, buf, (size_t)n) < 0)
                        return;
        }
}

struct copy {
        char *path;
        int fd;      /* ours: where output goes, or where input comes from */
        int stop_fd; /* input only */
        int *opened;
};

static void *out_thread(void *p)
{
        struct copy *c = p;
        int fd;
        do
                fd = open(c->path, O_RDONLY | O_CLOEXEC);
        while (fd < 0 && errno == EINTR);
        __atomic_store_n(c->opened, 1, __ATOMIC_RELEASE);
        if (fd >= 0) {
                copy_fd(fd, c->fd, -1);
                close(fd);
        }
        free(c->path);
        free(c);
        return NULL;
}

static void *in_thread(void *p)
{
        struct copy *c = p;
        int fd;
        do
                fd = open(c->path, O_WRONLY | O_CLOEXEC);
        while (fd < 0 && errno == EINTR);
        __atomic_store_n(c->opened, 1, __ATOMIC_RELEASE);
        if (fd >= 0) {
                /* EOF on our stdin closes the FIFO, which the shim turns into EOF for the process */
                copy_fd(c->fd, fd, c->stop_fd);
                close(fd);
        }
        free(c->path);
        free(c);
        return NULL;
}

static int start_copy(void *(*fn)(void *), const char *path, int fd, int stop_fd, int *opened, pthread_t *tid,
                      struct error **err)
{
        struct copy *c = xcalloc(1, sizeof(*c));
        c->path = xstrdup(path);
        c->fd = fd;
        c->stop_fd = stop_fd;
        c->opened = opened;
        int r = pthread_create(tid, NULL, fn, c);
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

        if (pipe2(s->stop, O_CLOEXEC) < 0) {
                r = -errno;
                s->stop[0] = s->stop[1] = -1;
                return error_set(err, -r, "failed to start an io copy");
        }
        if (s->terminal && isatty(s->in_fd) && tcgetattr(s->in_fd, &s->saved) == 0) {
                struct termios raw = s->saved;
                cfmakeraw(&raw);
                if (tcsetattr(s->in_fd, TCSANOW, &raw) == 0)
                        s->raw = true;
        }
        /* a closed stdout reader must not kill us; the copy just stops */
        signal(SIGPIPE, SIG_IGN);
        if (s->stdout_path) {
                r = start_copy(out_thread, s->stdout_path, s->out_fd, -1, &s->out_opened, &s->out_tid, err);
                if (r < 0)
                        return r;
                s->out_started = true;
        }
        if (s->stderr_path) {
                r = start_copy(out_thread, s->stderr_path, s->err_fd, -1, &s->err_opened, &s->err_tid, err);
                if (r < 0)
                        return r;
                s->err_started = true;
        }
        if (s->stdin_path) {
                r = start_copy(in_thread, s->stdin_path, s->in_fd, s->stop[0], &s->in_opened, &s->in_tid, err);
                if (r < 0)
                        return r;
                s->in_started = true;
        }
        return 0;
}

/* A copy thread still blocked in open(2) of its FIFO (the shim never opened the other end) is released by an
 * opener of the other side that comes and goes; one already copying is unaffected. The thread may not have
 * reached open(2) yet, so retry until it reports back (only in that abnormal case does this loop). */
static void release_open(const char *path, int flags, const int *opened)
{
        while (!__atomic_load_n(opened, __ATOMIC_ACQUIRE)) {
                int fd = open(path, flags | O_NONBLOCK | O_CLOEXEC);
                if (fd >= 0)
                        close(fd);
                if (__atomic_load_n(opened, __ATOMIC_ACQUIRE))
                        break;
                nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
        }
}

void cli_stdio_free(struct cli_stdio *s)
{
        if (!s)
                return;
        if (s->out_started) {
                release_open(s->stdout_path, O_WRONLY, &s->out_opened);
                pthread_join(s->out_tid, NULL);
        }
        if (s->err_started) {
                release_open(s->stderr_path, O_WRONLY, &s->err_opened);
                pthread_join(s->err_tid, NULL);
        }
        if (s->in_started) {
                /* blocked reading our stdin or opening the FIFO */
                ssize_t w = write(s->stop[1], "x", 1);
                (void)w;
                release_open(s->stdin_path, O_RDONLY, &s->in_opened);
                pthread_join(s->in_tid, NULL);
        }
        if (s->stop[0] >= 0) {
                close(s->stop[0]);
                close(s->stop[1]);
        }
        if (s->raw)
                tcsetattr(s->in_fd, TCSANOW, &s->saved);
        stdio_remove(s);
        stdio_release(s);
}

void cli_stdio_leave(struct cli_stdio *s)
{
        if (s)
                stdio_release(s);
}

static bool is_fifo(const char *path)
{
        struct stat st;
        return path && path[0] == '/' && stat(path, &st) == 0 && S_ISFIFO(st.st_mode);
}

int cli_stdio_attach(const char *in, const char *out, const char *err_path, bool terminal, struct cli_stdio **ret)
{
        struct cli_stdio *s = xcalloc(1, sizeof(*s));
        s->terminal = terminal;
        s->in_fd = STDIN_FILENO;
        s->out_fd = STDOUT_FILENO;
        s->err_fd = STDERR_FILENO;
        s->stop[0] = s->stop[1] = -1;
        /* only FIFOs: a log URI or an empty path has nothing to attach to */
        s->stdin_path = is_fifo(in) ? xstrdup(in) : NULL;
        s->stdout_path = is_fifo(out) ? xstrdup(out) : NULL;
        s->stderr_path = !terminal && is_fifo(err_path) ? xstrdup(err_path) : NULL;
        const char *any = s->stdout_path ? s->stdout_path : s->stdin_path ? s->stdin_path : s->stderr_path;
        if (any) {
                const char *slash = strrchr(any, '/');
                s->dir = xstrndup(any, (size_t)(slash - any));
                if (!s->dir[0]) {
                        free(s->dir);
                        s->dir = NULL;
                }
        }
        *ret = s;
        return 0;
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

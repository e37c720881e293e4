/* Container stdio: containerd's FIFOs, file:// and binary:// log URIs, and the TTY through runc's console
 * socket. Data is moved with splice(2) between pipes (no copy through user space); a pty or anything
 * splice refuses falls back to read/write with a small buffer allocated on first use. Output pumps report
 * EOF so that an exit is published only after the last output was handed on. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>

#include "shim/server.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/log.h"

#define PUMP_CHUNK (64u << 10)
#define PUMP_BUF (16u << 10)
#define PUMP_ROUNDS 16

struct shim_pump {
        struct shim_stdio *io;
        int src, dst;
        bool output;    /* counts in io->pending */
        bool close_dst; /* close dst at EOF (the reader then sees EOF) */
        bool use_rw;    /* splice refused these fds */
        bool discard;   /* the reader went away: keep draining so the writer never blocks */
        bool done;
        struct shim_watch src_w, dst_w;
        bool dst_waiting;
        char *buf;
        size_t buf_len, buf_off;
};

static void pump_finish(struct shim_pump *p);

/* Stops the pump and frees it. The fds close with it. */
static void pump_destroy(struct shim_pump *p)
{
        if (!p)
                return;
        shim_watch_stop(&p->src_w);
        shim_watch_stop(&p->dst_w);
        if (p->src >= 0)
                close(p->src);
        if (p->dst >= 0)
                close(p->dst);
        free(p->buf);
        free(p);
}

static bool fd_writable(int fd)
{
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        return poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLOUT | POLLERR | POLLHUP));
}

static void wait_dst(struct shim_pump *p)
{
        if (shim_watch_set(&p->dst_w, EPOLLOUT) < 0) {
                /* a destination epoll cannot watch (a regular file) never blocks: retry on the next read */
                return;
        }
        p->dst_waiting = true;
        shim_watch_stop(&p->src_w);
}

/* Moves what is available. Returns true at EOF (or an unrecoverable source error). */
static bool pump_transfer(struct shim_pump *p)
{
        for (int round = 0; round < PUMP_ROUNDS; round++) {
                ssize_t n;

                if (!p->use_rw && !p->discard) {
                        n = splice(p->src, NULL, p->dst, NULL, PUMP_CHUNK, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
                        if (n > 0)
                                continue;
                        if (n == 0)
                                return true;
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                if (!fd_writable(p->dst))
                                        wait_dst(p);
                                return false;
                        }
                        if (errno == EPIPE) {
                                p->discard = true;
                                continue;
                        }
                        if (errno == EIO)
                                return true; /* pty: the last slave closed */
                        p->use_rw = true;    /* EINVAL: splice does not support these fds */
                }
                if (!p->buf)
                        p->buf = xmalloc(PUMP_BUF);
                if (p->buf_off == p->buf_len) {
                        p->buf_off = p->buf_len = 0;
                        n = read(p->src, p->buf, PUMP_BUF);
                        if (n == 0)
                                return true;
                        if (n < 0) {
                                if (errno == EINTR)
                                        continue;
                                if (errno == EAGAIN)
                                        return false;
                                return true; /* EIO from a pty master, or a broken source */
                        }
                        p->buf_len = (size_t)n;
                }
                if (p->discard) {
                        p->buf_off = p->buf_len;
                        continue;
                }
                n = write(p->dst, p->buf + p->buf_off, p->buf_len - p->buf_off);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                wait_dst(p);
                                return false;
                        }
                        p->discard = true; /* EPIPE/EIO: nobody reads any more */
                        continue;
                }
                p->buf_off += (size_t)n;
        }
        return false;
}

static void pump_run(struct shim_pump *p)
{
        if (p->done || p->dst_waiting)
                return;
        if (pump_transfer(p))
                pump_finish(p);
}

static void on_src(struct shim_watch *w, uint32_t events)
{
        (void)events;
        pump_run(w->data);
}

static void on_dst(struct shim_watch *w, uint32_t events)
{
        struct shim_pump *p = w->data;

        (void)events;
        shim_watch_stop(&p->dst_w);
        p->dst_waiting = false;
        (void)shim_watch_set(&p->src_w, EPOLLIN | EPOLLRDHUP);
        pump_run(p);
}

static void pump_finish(struct shim_pump *p)
{
        struct shim_stdio *io = p->io;

        if (p->done)
                return;
        p->done = true;
        shim_watch_stop(&p->src_w);
        shim_watch_stop(&p->dst_w);
        /* flush what the rw fallback still holds; the reader may be gone, then it is dropped */
        if (p->buf_off < p->buf_len && !p->discard)
                (void)!write(p->dst, p->buf + p->buf_off, p->buf_len - p->buf_off);
        if (p->close_dst && p->dst >= 0) {
                shim_watch_stop(&p->dst_w);
                close(p->dst);
                p->dst = -1;
        }
        if (p->output && io) {
                if (io->pending > 0)
                        io->pending--;
                if (io->pending == 0 && io->drained_cb) {
                        void (*cb)(void *) = io->drained_cb;
                        io->drained_cb = NULL;
                        cb(io->drained_data);
                }
        }
}

/* Takes ownership of src and dst (even on failure). */
static struct shim_pump *pump_new(struct shim_loop *loop, struct shim_stdio *io, int src, int dst, bool output,
                                  bool close_dst)
{
        struct shim_pump *p = xcalloc(1, sizeof(*p));

        p->io = io, p->src = src, p->dst = dst, p->output = output, p->close_dst = close_dst;
        (void)fcntl(src, F_SETFL, fcntl(src, F_GETFL) | O_NONBLOCK);
        (void)fcntl(dst, F_SETFL, fcntl(dst, F_GETFL) | O_NONBLOCK);
        shim_watch_init(loop, &p->src_w, src, on_src, p);
        shim_watch_init(loop, &p->dst_w, dst, on_dst, p);
        return p;
}

static void pump_start(struct shim_pump *p)
{
        int r = shim_watch_set(&p->src_w, EPOLLIN | EPOLLRDHUP);

        if (r < 0) {
                log_warn("stdio: cannot poll fd %d: %s", p->src, strerror(-r));
                pump_finish(p);
        }
}

static int open_output(const struct shim_uri *u, int *ret_fd, struct error **err)
{
        int fd;

        if (u->kind == SHIM_URI_FIFO) {
                /* read-write so that opening never blocks and a vanished reader never raises SIGPIPE,
                 * as containerd's runc shim keeps a reader open too */
                fd = open(u->path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
        } else {
                _cleanup_free_ char *dir = xstrdup(u->path);
                char *slash = strrchr(dir, '/');
                if (slash && slash != dir) {
                        *slash = '\0';
                        (void)mkdir(dir, 0755);
                }
                fd = open(u->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        }
        if (fd < 0)
                return error_set(err, errno, "open %s", u->path);
        *ret_fd = fd;
        return 0;
}

static int start_logger(struct shim_stdio *io, const struct shim_uri *u, const char *ns, const char *id, int *ret_out,
                        int *ret_err, struct error **err)
{
        int out[2], errp[2], ready[2];
        _cleanup_strv_free_ char **argv = NULL;
        size_t n = 0;
        pid_t pid;
        char c;

        if (pipe2(out, O_CLOEXEC) < 0)
                return error_set(err, errno, "pipe");
        if (pipe2(errp, O_CLOEXEC) < 0) {
                close(out[0]), close(out[1]);
                return error_set(err, errno, "pipe");
        }
        if (pipe2(ready, O_CLOEXEC) < 0) {
                close(out[0]), close(out[1]), close(errp[0]), close(errp[1]);
                return error_set(err, errno, "pipe");
        }
        for (char **a = u->args; a && *a; a++)
                n++;
        argv = xcalloc(n + 2, sizeof(char *));
        argv[0] = xstrdup(u->path);
        for (size_t i = 0; i < n; i++)
                argv[i + 1] = xstrdup(u->args[i]);
        pid = fork();
        if (pid == 0) {
                sigset_t all;
                sigemptyset(&all);
                (void)sigprocmask(SIG_SETMASK, &all, NULL);
                (void)signal(SIGPIPE, SIG_DFL);
                /* fd 3: stdout, fd 4: stderr, fd 5: close it (or write) when ready (containerd's contract) */
                int a = fcntl(out[0], F_DUPFD, 10), b = fcntl(errp[0], F_DUPFD, 10), w = fcntl(ready[1], F_DUPFD, 10);
                int nul = open("/dev/null", O_RDWR);
                if (a < 0 || b < 0 || w < 0 || dup2(a, 3) < 0 || dup2(b, 4) < 0 || dup2(w, 5) < 0)
                        _exit(126);
                close(a), close(b), close(w);
                if (nul >= 0) {
                        dup2(nul, 0), dup2(nul, 1), dup2(nul, 2);
                }
                setenv("CONTAINER_ID", id, 1);
                setenv("CONTAINER_NAMESPACE", ns, 1);
                execv(argv[0], argv);
                _exit(127);
        }
        close(out[0]), close(errp[0]), close(ready[1]);
        if (pid < 0) {
                close(out[1]), close(errp[1]), close(ready[0]);
                return error_set(err, errno, "fork logger");
        }
        /* the logger closes fd 5 (or writes to it) once it is ready; do not hang the loop on a broken one */
        {
                struct pollfd pfd = {.fd = ready[0], .events = POLLIN};
                int pr;
                do
                        pr = poll(&pfd, 1, 10000);
                while (pr < 0 && errno == EINTR);
                if (pr > 0)
                        (void)!read(ready[0], &c, 1);
                else
                        log_warn("logger %s not ready after 10 s", u->path);
        }
        close(ready[0]);
        io->logger_pid = pid;
        *ret_out = out[1];
        *ret_err = errp[1];
        return 0;
}

static int console_socket(struct shim_stdio *io, struct error **err)
{
        char tmpl[] = "/tmp/krill-pty-XXXXXX";
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd;

        if (!mkdtemp(tmpl))
                return error_set(err, errno, "console socket dir");
        io->console_path = xasprintf("%s/pty.sock", tmpl);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return error_set(err, errno, "console socket");
        strcpy(sa.sun_path, io->console_path);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0) {
                int e = errno;
                close(fd);
                return error_set(err, e, "console socket %s", io->console_path);
        }
        io->console_listen_fd = fd;
        return 0;
}

static void console_socket_remove(struct shim_stdio *io)
{
        if (io->console_listen_fd >= 0) {
                close(io->console_listen_fd);
                io->console_listen_fd = -1;
        }
        if (io->console_path) {
                char *slash;
                (void)unlink(io->console_path);
                slash = strrchr(io->console_path, '/');
                *slash = '\0';
                (void)rmdir(io->console_path);
                free(io->console_path);
                io->console_path = NULL;
        }
}

static int receive_console(struct shim_stdio *io, struct error **err)
{
        _cleanup_close_ int conn = accept4(io->console_listen_fd, NULL, NULL, SOCK_CLOEXEC);
        _cleanup_free_ char *name = xmalloc(4096);
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } cm;
        struct iovec iov = {.iov_base = name, .iov_len = 4096};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof(cm.buf)};
        struct cmsghdr *c;
        ssize_t n;

        if (conn < 0)
                return error_set(err, errno, "console socket: runtime sent no terminal");
        do
                n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return error_set(err, errno, "receive console");
        c = CMSG_FIRSTHDR(&msg);
        if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int)))
                return error_set(err, EINVAL, "receive console: no file descriptor");
        memcpy(&io->console_fd, CMSG_DATA(c), sizeof(int));
        return 0;
}

int shim_stdio_open(struct shim_loop *loop, struct shim_stdio *io, const char *in, const char *out, const char *errp,
                    bool terminal, const char *dir, const char *ns, const char *id, struct error **err)
{
        struct shim_uri uin = {0}, uout = {0}, uerr = {0};
        int r, p[2];

        (void)loop;
        (void)dir;
        *io = (struct shim_stdio){.terminal = terminal,
                                  .container_fds = {-1, -1, -1},
                                  .console_fd = -1,
                                  .console_listen_fd = -1,
                                  .tty_in_fd = -1,
                                  .tty_out_fd = -1};
        r = shim_uri_parse(in, &uin, err);
        if (r >= 0)
                r = shim_uri_parse(out, &uout, err);
        if (r >= 0)
                r = shim_uri_parse(errp, &uerr, err);
        if (r < 0)
                goto out;

        if (terminal) {
                r = console_socket(io, err);
                if (r < 0)
                        goto out;
        }
        /* stdin: a pipe fed from the FIFO (non-terminal); the terminal gets it through the pty */
        if (uin.kind == SHIM_URI_FIFO) {
                int fifo = open(uin.path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
                if (fifo < 0) {
                        r = error_set(err, errno, "open %s", uin.path);
                        goto out;
                }
                if (terminal) {
                        io->tty_in_fd = fifo;
                } else {
                        if (pipe2(p, O_CLOEXEC) < 0) {
                                close(fifo);
                                r = error_set(err, errno, "pipe");
                                goto out;
                        }
                        io->container_fds[0] = p[0];
                        io->pumps[0] = pump_new(loop, io, fifo, p[1], false, true);
                }
        }
        if (uout.kind == SHIM_URI_BINARY) {
                r = start_logger(io, &uout, ns, id, &io->container_fds[1], &io->container_fds[2], err);
                if (r < 0)
                        goto out;
                if (terminal) {
                        /* the pty output goes to the logger's stdout pipe */
                        io->tty_out_fd = TAKE_FD(io->container_fds[1]);
                        close(TAKE_FD(io->container_fds[2]));
                }
                goto out;
        }
        for (int i = 1; i <= 2; i++) {
                const struct shim_uri *u = i == 1 ? &uout : &uerr;
                int dst = -1;
                if (u->kind == SHIM_URI_NONE || (terminal && i == 2))
                        continue;
                r = open_output(u, &dst, err);
                if (r < 0)
                        goto out;
                if (terminal) {
                        io->tty_out_fd = dst;
                } else if (u->kind == SHIM_URI_FILE) {
                        io->container_fds[i] = dst; /* the container appends to the file itself */
                } else {
                        if (pipe2(p, O_CLOEXEC) < 0) {
                                close(dst);
                                r = error_set(err, errno, "pipe");
                                goto out;
                        }
                        io->container_fds[i] = p[1];
                        io->pumps[i] = pump_new(loop, io, p[0], dst, true, true);
                }
        }
out:
        shim_uri_clear(&uin);
        shim_uri_clear(&uout);
        shim_uri_clear(&uerr);
        if (r < 0)
                shim_stdio_close(io);
        return r < 0 ? r : 0;
}

int shim_stdio_after_start(struct shim_loop *loop, struct shim_stdio *io, struct error **err)
{
        int r;

        for (int i = 0; i < 3; i++)
                if (io->container_fds[i] >= 0) {
                        close(io->container_fds[i]);
                        io->container_fds[i] = -1;
                }
        if (io->terminal) {
                r = receive_console(io, err);
                console_socket_remove(io);
                if (r < 0)
                        return r;
                (void)fcntl(io->console_fd, F_SETFL, fcntl(io->console_fd, F_GETFL) | O_NONBLOCK);
                /* each pump watches its own dup of the master: epoll takes an fd once per set */
                if (io->tty_out_fd >= 0)
                        io->pumps[1] = pump_new(loop, io, fcntl(io->console_fd, F_DUPFD_CLOEXEC, 3),
                                                TAKE_FD(io->tty_out_fd), true, true);
                if (io->tty_in_fd >= 0)
                        io->pumps[0] = pump_new(loop, io, TAKE_FD(io->tty_in_fd),
                                                fcntl(io->console_fd, F_DUPFD_CLOEXEC, 3), false, true);
        }
        io->pending = 0;
        for (int i = 0; i < 3; i++)
                if (io->pumps[i]) {
                        if (io->pumps[i]->output)
                                io->pending++;
                        pump_start(io->pumps[i]);
                }
        return 0;
}

void shim_stdio_on_drained(struct shim_stdio *io, void (*cb)(void *), void *data)
{
        if (io->pending == 0) {
                cb(data);
                return;
        }
        io->drained_cb = cb;
        io->drained_data = data;
}

void shim_stdio_close_stdin(struct shim_stdio *io)
{
        struct shim_pump *p = io->pumps[0];

        if (!p)
                return;
        io->pumps[0] = NULL;
        /* hand on what is buffered in the FIFO, then close: the container sees EOF */
        if (!p->done)
                (void)pump_transfer(p);
        p->done = true;
        pump_destroy(p);
}

int shim_stdio_resize(struct shim_stdio *io, unsigned width, unsigned height, struct error **err)
{
        struct winsize ws = {.ws_col = (unsigned short)width, .ws_row = (unsigned short)height};

        if (io->console_fd < 0)
                return error_set(err, ENOTTY, "tty");
        if (ioctl(io->console_fd, TIOCSWINSZ, &ws) < 0)
                return error_set(err, errno, "resize pty");
        return 0;
}

void shim_stdio_close(struct shim_stdio *io)
{
        for (int i = 0; i < 3; i++) {
                if (io->pumps[i]) {
                        struct shim_pump *p = io->pumps[i];
                        p->done = true;
                        p->io = NULL;
                        pump_destroy(p);
                        io->pumps[i] = NULL;
                }
                if (io->container_fds[i] >= 0) {
                        close(io->container_fds[i]);
                        io->container_fds[i] = -1;
                }
        }
        if (io->console_fd >= 0) {
                close(io->console_fd);
                io->console_fd = -1;
        }
        if (io->tty_in_fd >= 0)
                close(TAKE_FD(io->tty_in_fd));
        if (io->tty_out_fd >= 0)
                close(TAKE_FD(io->tty_out_fd));
        console_socket_remove(io);
        io->drained_cb = NULL;
        io->pending = 0;
}

/* The OCI runtime CLI (runc, crun, or Options.BinaryName), run synchronously: each call is short, and the
 * shim is single-threaded by design (DESIGN.md section 5). Errors carry the runtime's own last error
 * message from its JSON log (STYLE.md section 11). */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "shim/shim.h"
#include "util/alloc.h"
#include "util/cleanup.h"

#define RUNTIME_MAX_OUTPUT (4u << 20)
#define RUNTIME_LOG_TAIL (64u << 10)

void shim_runtime_clear(struct shim_runtime *rt)
{
        free(rt->binary);
        free(rt->root);
        free(rt->bundle);
        *rt = (struct shim_runtime){0};
}

char *shim_runtime_last_error(const char *log, size_t len)
{
        const char *p = log, *end = log + len;
        char *last = NULL;

        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                const char *le = nl ? nl : end;
                struct shim_json o, v;
                if (shim_json_parse(p, (size_t)(le - p), &o) == 0 && shim_json_member(&o, "level", &v) == 0) {
                        _cleanup_free_ char *lvl = shim_json_strdup(&v);
                        if (lvl &&
                            (strcmp(lvl, "error") == 0 || strcmp(lvl, "fatal") == 0 || strcmp(lvl, "panic") == 0) &&
                            shim_json_member(&o, "msg", &v) == 0 && v.type == SHIM_JSON_STRING) {
                                free(last);
                                last = shim_json_strdup(&v);
                        }
                }
                p = le + 1;
        }
        return last;
}

int shim_read_file(const char *path, size_t max, char **ret, size_t *ret_len, struct error **err)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, cap = 0;

        if (fd < 0)
                return error_set(err, errno, "open %s", path);
        for (;;) {
                ssize_t n;
                if (cap - len < 4096) {
                        cap = cap ? cap * 2 : 4096;
                        buf = xrealloc(buf, cap + 1);
                }
                n = read(fd, buf + len, cap - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return error_set(err, errno, "read %s", path);
                }
                if (n == 0)
                        break;
                len += (size_t)n;
                if (len > max)
                        return error_set(err, EFBIG, "%s larger than %zu bytes", path, max);
        }
        if (!buf)
                buf = xmalloc(1);
        buf[len] = '\0';
        *ret = TAKE_PTR(buf);
        if (ret_len)
                *ret_len = len;
        return 0;
}

int shim_write_file(const char *path, const void *data, size_t len, struct error **err)
{
        _cleanup_free_ char *tmp = xasprintf("%s.tmp", path);
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        const char *p = data;

        if (fd < 0)
                return error_set(err, errno, "create %s", tmp);
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        int e = errno;
                        (void)unlink(tmp);
                        return error_set(err, e, "write %s", tmp);
                }
                p += n, len -= (size_t)n;
        }
        if (rename(tmp, path) < 0) {
                int e = errno;
                (void)unlink(tmp);
                return error_set(err, e, "rename %s", path);
        }
        return 0;
}

int shim_read_pid_file(const char *path, struct error **err)
{
        _cleanup_free_ char *s = NULL;
        char *end;
        long v;
        int r;

        r = shim_read_file(path, 64, &s, NULL, err);
        if (r < 0)
                return r;
        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || end == s || v <= 0 || v > 0x3fffffff || (*end && *end != '\n'))
                return error_set(err, EINVAL, "pid file %s: invalid content", path);
        return (int)v;
}

int shim_spec_info_parse(const char *config_json, size_t len, struct shim_spec_info *out)
{
        struct shim_json doc, v, el, t;
        const char *pos = NULL;

        *out = (struct shim_spec_info){.poststart = true};
        if (!config_json || shim_json_parse(config_json, len, &doc) < 0 || doc.type != SHIM_JSON_OBJECT)
                return -EINVAL;
        out->poststart = false;
        if (shim_json_member(&doc, "hooks", &v) == 0 && v.type == SHIM_JSON_OBJECT &&
            shim_json_member(&v, "poststart", &v) == 0)
                out->poststart = v.type != SHIM_JSON_NULL && shim_json_next(&v, &pos, &el);
        pos = NULL;
        if (shim_json_member(&doc, "linux", &v) == 0 && v.type == SHIM_JSON_OBJECT &&
            shim_json_member(&v, "namespaces", &v) == 0)
                while (shim_json_next(&v, &pos, &el)) {
                        _cleanup_free_ char *type = NULL, *path = NULL;
                        if (el.type != SHIM_JSON_OBJECT || shim_json_member(&el, "type", &t) < 0)
                                continue;
                        type = shim_json_strdup(&t);
                        if (!type || strcmp(type, "pid") != 0)
                                continue;
                        if (shim_json_member(&el, "path", &t) == 0)
                                path = shim_json_strdup(&t);
                        /* the last pid entry wins, as runc's config conversion keeps one per type */
                        out->private_pidns = !path || !*path;
                }
        return 0;
}

bool shim_runtime_is_runc(const struct shim_runtime *rt)
{
        const char *b = rt->binary && *rt->binary ? rt->binary : "runc";
        const char *slash = strrchr(b, '/');

        return strcmp(slash ? slash + 1 : b, "runc") == 0;
}

/* True once pid has exited (gone, or a zombie not reaped yet), what runc's exec() checks every 100 ms. */
static bool pid_dead(pid_t pid)
{
        char path[64], buf[512];
        _cleanup_close_ int fd = -1;
        const char *rp;
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT || errno == ESRCH;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return true;
        buf[n] = '\0';
        rp = strrchr(buf, ')');
        return !rp || rp[1] != ' ' || rp[2] == 'Z' || rp[2] == 'X' || rp[2] == 'x';
}

/* Reads what is there without blocking: 1 at EOF, 0 if the writer still holds it open, -errno. */
static int drain_fifo(int fd, size_t *got)
{
        char buf[64];

        for (;;) {
                ssize_t n = read(fd, buf, sizeof(buf));
                if (n > 0) {
                        *got += (size_t)n;
                        continue;
                }
                if (n == 0)
                        return 1;
                if (errno == EINTR)
                        continue;
                return errno == EAGAIN ? 0 : -errno;
        }
}

int shim_runc_exec_fifo(const char *root, const char *id, pid_t pid, struct error **err)
{
        _cleanup_free_ char *path = xasprintf("%s/%s/exec.fifo", root, id);
        _cleanup_close_ int fd = -1;
        size_t got = 0;
        int r;

        /* an init that is already gone: `runc start` says "cannot start a container that has stopped" */
        if (pid_dead(pid))
                return 1;
        /* O_NONBLOCK: the open does not wait for runc init, and a dead init cannot hang the shim. Until a
         * writer has come, poll reports nothing and read would say EOF, so read only after poll says so. */
        fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) {
                if (errno == ENOENT)
                        return 1;
                return error_set(err, errno, "exec fifo: open %s", path);
        }
        for (;;) {
                struct pollfd pfd = {.fd = fd, .events = POLLIN};
                r = poll(&pfd, 1, 100);
                if (r < 0 && errno != EINTR)
                        return error_set(err, errno, "poll %s", path);
                if (r > 0) {
                        r = drain_fifo(fd, &got);
                        if (r < 0)
                                return error_set(err, -r, "exec fifo: read %s", path);
                        if (r == 1)
                                break;
                        continue;
                }
                if (r == 0 && pid_dead(pid)) {
                        /* runc: it may have run and finished between two checks; data means it started */
                        if (drain_fifo(fd, &got) < 0 || got == 0)
                                return error_set_literal(err, EIO, "container process is already dead");
                        break;
                }
        }
        if (got == 0)
                return error_set_literal(err, EIO, "cannot start an already running container");
        if (unlink(path) < 0 && errno != ENOENT)
                return error_set(err, errno, "remove %s", path);
        return 0;
}

/* runc's RemovePath: rmdir, else the child cgroups first, then rmdir again. 0, or -errno (ENOENT is done). */
static int remove_cgroup(const char *path, int depth)
{
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;

        if (rmdir(path) == 0 || errno == ENOENT)
                return 0;
        if (errno != EBUSY && errno != ENOTEMPTY)
                return -errno;
        if (depth > 32)
                return -ELOOP;
        d = opendir(path);
        if (!d)
                return errno == ENOENT ? 0 : -errno;
        while ((de = readdir(d))) {
                _cleanup_free_ char *sub = NULL;
                int r;
                if (de->d_type != DT_DIR || strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                sub = xasprintf("%s/%s", path, de->d_name);
                r = remove_cgroup(sub, depth + 1);
                if (r < 0)
                        return r;
        }
        if (rmdir(path) == 0 || errno == ENOENT)
                return 0;
        return -errno;
}

/* runc's state dir holds files only (state.json, exec.fifo); anything else is left to runc */
static int remove_state_dir(const char *dir)
{
        _cleanup_(closedirp) DIR *d = opendir(dir);
        struct dirent *de;

        if (!d)
                return errno == ENOENT ? 0 : -errno;
        while ((de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT)
                        return -errno;
        }
        return rmdir(dir) == 0 || errno == ENOENT ? 0 : -errno;
}

static bool nonempty_array_member(const struct shim_json *obj, const char *key)
{
        struct shim_json v, el;
        const char *pos = NULL;

        return shim_json_member(obj, key, &v) == 0 && shim_json_next(&v, &pos, &el);
}

int shim_runc_delete_stopped(const char *root, const char *id, const char *cgroup_root)
{
        _cleanup_free_ char *dir = xasprintf("%s/%s", root, id);
        _cleanup_free_ char *path = xasprintf("%s/state.json", dir);
        _cleanup_free_ char *buf = NULL;
        struct shim_json doc, cfg, v, el, t;
        const char *pos = NULL;
        size_t len = 0, rootlen = strlen(cgroup_root);
        bool own_pidns = false;

        if (shim_read_file(path, 16u << 20, &buf, &len, NULL) < 0 || shim_json_parse(buf, len, &doc) < 0 ||
            doc.type != SHIM_JSON_OBJECT || shim_json_member(&doc, "config", &cfg) < 0 || cfg.type != SHIM_JSON_OBJECT)
                return 1;
        /* poststop hooks, Intel RDT and the systemd driver (a unit to stop over D-Bus) stay runc's */
        if (shim_json_member(&cfg, "Hooks", &v) == 0 && v.type == SHIM_JSON_OBJECT &&
            nonempty_array_member(&v, "poststop"))
                return 1;
        if (shim_json_member(&cfg, "intel_rdt", &v) == 0 && v.type != SHIM_JSON_NULL)
                return 1;
        if (shim_json_member(&doc, "intel_rdt_path", &v) == 0 && v.type == SHIM_JSON_STRING && v.len > 2)
                return 1;
        if (shim_json_member(&cfg, "cgroups", &v) == 0 && v.type == SHIM_JSON_OBJECT &&
            shim_json_member(&v, "systemd", &t) == 0 && t.type == SHIM_JSON_TRUE)
                return 1;
        /* without a pid namespace of its own, runc first SIGKILLs whatever is left in the cgroup */
        if (shim_json_member(&cfg, "namespaces", &v) == 0)
                while (shim_json_next(&v, &pos, &el)) {
                        _cleanup_free_ char *type = NULL, *nspath = NULL;
                        if (el.type != SHIM_JSON_OBJECT || shim_json_member(&el, "type", &t) < 0)
                                continue;
                        type = shim_json_strdup(&t);
                        if (!type || strcmp(type, "NEWPID") != 0)
                                continue;
                        if (shim_json_member(&el, "path", &t) == 0)
                                nspath = shim_json_strdup(&t);
                        own_pidns = !nspath || !*nspath;
                }
        if (!own_pidns)
                return 1;
        if (shim_json_member(&doc, "cgroup_paths", &v) < 0 || v.type != SHIM_JSON_OBJECT)
                return 1;
        /* check every path before removing any */
        for (int pass = 0; pass < 2; pass++) {
                pos = NULL;
                while (shim_json_next(&v, &pos, &el)) {
                        _cleanup_free_ char *cg = shim_json_strdup(&el);
                        if (!cg || strncmp(cg, cgroup_root, rootlen) != 0 || cg[rootlen] != '/' || strstr(cg, "/..") ||
                            strstr(cg, "/./"))
                                return 1;
                        if (pass == 1 && remove_cgroup(cg, 0) < 0)
                                return 1;
                }
        }
        return remove_state_dir(dir) < 0 ? 1 : 0;
}

__attribute__((noreturn)) static void child_exec(const char *const *argv, const int fds[3])
{
        sigset_t all;
        int tmp[3];

        sigemptyset(&all);
        (void)sigprocmask(SIG_SETMASK, &all, NULL);
        (void)signal(SIGPIPE, SIG_DFL);
        for (int i = 0; i < 3; i++) {
                int fd = fds[i];
                if (fd < 0)
                        fd = open("/dev/null", O_RDWR | O_CLOEXEC);
                tmp[i] = fcntl(fd, F_DUPFD_CLOEXEC, 10);
                if (tmp[i] < 0)
                        _exit(126);
        }
        for (int i = 0; i < 3; i++)
                if (dup2(tmp[i], i) < 0)
                        _exit(126);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
}

/* vfork: no page tables to copy, and the parent sleeps until the exec. child_exec only makes system calls on
 * its own stack (no malloc, no stdio), and the signal dispositions it changes are its own (no CLONE_SIGHAND).
 * A function of its own, so that no caller's variable lives across vfork's second return. */
__attribute__((noinline)) static pid_t spawn(const char *const *argv, const int fds[3])
{
        pid_t pid = vfork();

        if (pid == 0)
                child_exec(argv, fds);
        return pid;
}

static char *log_tail_error(const char *logpath, off_t from)
{
        _cleanup_close_ int fd = open(logpath, O_RDONLY | O_CLOEXEC);
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        ssize_t n;

        if (fd < 0 || fstat(fd, &st) < 0)
                return NULL;
        if (st.st_size - from > (off_t)RUNTIME_LOG_TAIL || st.st_size < from)
                from = st.st_size > (off_t)RUNTIME_LOG_TAIL ? st.st_size - (off_t)RUNTIME_LOG_TAIL : 0;
        buf = xmalloc(RUNTIME_LOG_TAIL);
        n = pread(fd, buf, RUNTIME_LOG_TAIL, from);
        if (n <= 0)
                return NULL;
        return shim_runtime_last_error(buf, (size_t)n);
}

int shim_runtime_run(const struct shim_runtime *rt, const char *what, const char *const *args,
                     const struct shim_runtime_io *io, struct error **err)
{
        _cleanup_free_ char *logpath = xasprintf("%s/log.json", rt->bundle);
        _cleanup_free_ const char **argv = NULL;
        _cleanup_free_ char *out = NULL;
        _cleanup_close_ int in_w = -1, out_r = -1;
        int fds[3] = {-1, -1, -1};
        int pipe_in[2] = {-1, -1}, pipe_out[2] = {-1, -1};
        size_t n = 0, nargs = 0, out_len = 0;
        struct stat st;
        off_t log_start = 0;
        pid_t pid;
        int status;

        while (args[nargs])
                nargs++;
        argv = xcalloc(nargs + 10, sizeof(char *));
        argv[n++] = rt->binary && *rt->binary ? rt->binary : "runc";
        argv[n++] = "--root";
        argv[n++] = rt->root;
        argv[n++] = "--log";
        argv[n++] = logpath;
        argv[n++] = "--log-format";
        argv[n++] = "json";
        if (rt->systemd_cgroup)
                argv[n++] = "--systemd-cgroup";
        for (size_t i = 0; i < nargs; i++)
                argv[n++] = args[i];
        argv[n] = NULL;

        if (io)
                memcpy(fds, io->fds, sizeof(fds));
        if (io && io->input) {
                if (pipe2(pipe_in, O_CLOEXEC) < 0)
                        return error_set(err, errno, "pipe");
                fds[0] = pipe_in[0];
                in_w = pipe_in[1];
        }
        if (io && io->output) {
                if (pipe2(pipe_out, O_CLOEXEC) < 0) {
                        if (pipe_in[0] >= 0)
                                close(pipe_in[0]);
                        return error_set(err, errno, "pipe");
                }
                fds[1] = pipe_out[1];
                out_r = pipe_out[0];
        }
        if (stat(logpath, &st) == 0)
                log_start = st.st_size;

        pid = spawn(argv, fds);
        if (pipe_in[0] >= 0)
                close(pipe_in[0]);
        if (pipe_out[1] >= 0)
                close(pipe_out[1]);
        if (pid < 0)
                return error_set(err, errno, "vfork %s", argv[0]);

        if (in_w >= 0) {
                const char *p = io->input;
                size_t left = io->input_len;
                /* the runtime reads its stdin fully before writing output; a failed write means it died */
                while (left > 0) {
                        ssize_t w = write(in_w, p, left);
                        if (w < 0 && errno == EINTR)
                                continue;
                        if (w <= 0)
                                break;
                        p += w, left -= (size_t)w;
                }
                close(TAKE_FD(in_w));
        }
        if (out_r >= 0) {
                size_t cap = 0;
                for (;;) {
                        ssize_t r;
                        if (cap - out_len < 4096) {
                                cap = cap ? cap * 2 : 8192;
                                out = xrealloc(out, cap + 1);
                        }
                        r = read(out_r, out + out_len, cap - out_len);
                        if (r < 0 && errno == EINTR)
                                continue;
                        if (r <= 0)
                                break;
                        out_len += (size_t)r;
                        if (out_len > RUNTIME_MAX_OUTPUT)
                                break;
                }
                if (out)
                        out[out_len] = '\0';
        }
        while (waitpid(pid, &status, 0) < 0) {
                if (errno != EINTR)
                        return error_set(err, errno, "wait for %s", argv[0]);
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                _cleanup_free_ char *last = log_tail_error(logpath, log_start);
                _cleanup_free_ char *msg = NULL;
                if (last)
                        msg = xasprintf("%s: %s", what, last);
                else
                        msg = xasprintf("%s: %s did not terminate successfully: exit status %u", what, argv[0],
                                        shim_exit_status(status));
                return error_set_literal(err, EIO, msg);
        }
        if (io && io->output)
                *io->output = out ? TAKE_PTR(out) : xstrdup("");
        return 0;
}

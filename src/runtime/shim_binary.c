#include "shim_binary.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "github.com/containerd/containerd/runtime/v2/task/shim.pb-c.h"
#include "util/alloc.h"
#include "util/cleanup.h"

#define MAX_CAPTURE (1u << 20)
#define DEFAULT_TIMEOUT_MS 30000

extern char **environ;

int runtime_shim_binary_name(const char *runtime, char **ret, struct error **err)
{
        if (runtime[0] == '/') {
                *ret = xstrdup(runtime);
                return 0;
        }
        /* containerd's BinaryName: the last two dot-separated parts, e.g. io.containerd.runc.v2 -> runc, v2. */
        const char *last = strrchr(runtime, '.');
        if (!last || last == runtime)
                return error_set(err, EINVAL, "invalid runtime name %s, correct runtime name should be either "
                                              "format like `io.containerd.runc.v1` or a full path to the binary",
                                 runtime);
        const char *prev = last - 1;
        while (prev > runtime && *prev != '.')
                prev--;
        if (*prev != '.' || prev == runtime || last - prev < 2 || !last[1])
                return error_set(err, EINVAL, "invalid runtime name %s, correct runtime name should be either "
                                              "format like `io.containerd.runc.v1` or a full path to the binary",
                                 runtime);
        *ret = xasprintf("containerd-shim-%.*s-%s", (int)(last - prev - 1), prev + 1, last + 1);
        return 0;
}

static bool is_executable(const char *p)
{
        struct stat st;
        return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
}

int runtime_shim_binary_find(const char *runtime, const char *self_dir, char **ret_path, struct error **err)
{
        _cleanup_free_ char *name = NULL;
        int r = runtime_shim_binary_name(runtime, &name, err);
        if (r < 0)
                return r;
        if (name[0] == '/') {
                if (!is_executable(name))
                        return error_set(err, ENOENT, "runtime %s binary not installed %s", runtime, name);
                *ret_path = TAKE_PTR(name);
                return 0;
        }
        if (self_dir) {
                _cleanup_free_ char *p = xasprintf("%s/%s", self_dir, name);
                if (is_executable(p)) {
                        *ret_path = TAKE_PTR(p);
                        return 0;
                }
        }
        const char *path = getenv("PATH");
        _cleanup_free_ char *copy = xstrdup(path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        char *save = NULL;
        for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
                if (!*d)
                        continue;
                _cleanup_free_ char *p = xasprintf("%s/%s", d, name);
                if (is_executable(p)) {
                        *ret_path = TAKE_PTR(p);
                        return 0;
                }
        }
        return error_set(err, ENOENT, "runtime \"%s\" binary not installed \"%s\"", runtime, name);
}

static uint64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct capture {
        char *buf;
        size_t len, cap;
};

static void capture_add(struct capture *c, const char *data, size_t n)
{
        if (c->len + n > MAX_CAPTURE)
                n = MAX_CAPTURE - c->len;
        if (c->len + n + 1 > c->cap) {
                c->cap = c->len + n + 4096;
                c->buf = xrealloc(c->buf, c->cap);
        }
        memcpy(c->buf + c->len, data, n);
        c->len += n;
        c->buf[c->len] = 0;
}

static char **env_build(char *const env_add[])
{
        size_t n = 0, k = 0, a = 0;
        while (environ[n])
                n++;
        while (env_add && env_add[a])
                a++;
        char **env = xcalloc(n + a + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++) {
                bool overridden = false;
                for (size_t j = 0; j < a; j++) {
                        const char *eq = strchr(env_add[j], '=');
                        size_t kl = eq ? (size_t)(eq - env_add[j]) : strlen(env_add[j]);
                        if (strncmp(environ[i], env_add[j], kl) == 0 && environ[i][kl] == '=') {
                                overridden = true;
                                break;
                        }
                }
                if (!overridden)
                        env[k++] = environ[i];
        }
        for (size_t j = 0; j < a; j++)
                env[k++] = env_add[j];
        return env;
}

int runtime_exec_capture(char *const argv[], char *const env_add[], const char *cwd, const void *in, size_t in_len,
                         bool combine, uint32_t timeout_ms, char **ret_out, size_t *ret_out_len, char **ret_err,
                         struct error **err)
{
        int inp[2] = {-1, -1}, outp[2] = {-1, -1}, errp[2] = {-1, -1};
        _cleanup_free_ char **env = NULL;
        int r;
        if (pipe2(inp, O_CLOEXEC) < 0 || pipe2(outp, O_CLOEXEC) < 0 || (!combine && pipe2(errp, O_CLOEXEC) < 0)) {
                r = error_set(err, errno, "pipe");
                goto out_close;
        }
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        posix_spawn_file_actions_init(&fa);
        posix_spawnattr_init(&attr);
        posix_spawn_file_actions_adddup2(&fa, inp[0], 0);
        posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
        posix_spawn_file_actions_adddup2(&fa, combine ? outp[1] : errp[1], 2);
        if (cwd)
                posix_spawn_file_actions_addchdir_np(&fa, cwd);
        /* The daemon blocks SIGCHLD/SIGTERM etc. for its signal handling; the child must start clean. */
        sigset_t none;
        sigemptyset(&none);
        posix_spawnattr_setsigmask(&attr, &none);
        sigset_t all;
        sigfillset(&all);
        posix_spawnattr_setsigdefault(&attr, &all);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        env = env_build(env_add);
        pid_t pid;
        int sr = posix_spawn(&pid, argv[0], &fa, &attr, argv, env);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        if (sr != 0) {
                r = error_set(err, sr, "exec %s", argv[0]);
                goto out_close;
        }
        close(inp[0]);
        inp[0] = -1;
        close(outp[1]);
        outp[1] = -1;
        if (errp[1] >= 0) {
                close(errp[1]);
                errp[1] = -1;
        }
        (void)fcntl(inp[1], F_SETFL, O_NONBLOCK);
        size_t in_off = 0;
        if (in_len == 0) {
                close(inp[1]);
                inp[1] = -1;
        }

        struct capture out = {0}, errc = {0};
        uint64_t deadline = now_ms() + (timeout_ms ? timeout_ms : DEFAULT_TIMEOUT_MS);
        bool timed_out = false;
        while (outp[0] >= 0 || errp[0] >= 0) {
                struct pollfd pfd[3];
                int n = 0, io = -1, oo = -1, eo = -1;
                if (inp[1] >= 0) {
                        io = n;
                        pfd[n++] = (struct pollfd){.fd = inp[1], .events = POLLOUT};
                }
                if (outp[0] >= 0) {
                        oo = n;
                        pfd[n++] = (struct pollfd){.fd = outp[0], .events = POLLIN};
                }
                if (errp[0] >= 0) {
                        eo = n;
                        pfd[n++] = (struct pollfd){.fd = errp[0], .events = POLLIN};
                }
                uint64_t now = now_ms();
                if (now >= deadline) {
                        timed_out = true;
                        break;
                }
                int pr = poll(pfd, (nfds_t)n, (int)(deadline - now));
                if (pr < 0 && errno == EINTR)
                        continue;
                if (pr < 0)
                        break;
                if (io >= 0 && pfd[io].revents) {
                        ssize_t w = write(inp[1], (const char *)in + in_off, in_len - in_off);
                        if (w > 0)
                                in_off += (size_t)w;
                        if (w < 0 && errno != EAGAIN) /* the child closed stdin early: not our problem */
                                in_off = in_len;
                        if (in_off >= in_len) {
                                close(inp[1]);
                                inp[1] = -1;
                        }
                }
                char buf[4096];
                if (oo >= 0 && pfd[oo].revents) {
                        ssize_t k = read(outp[0], buf, sizeof(buf));
                        if (k > 0)
                                capture_add(&out, buf, (size_t)k);
                        else if (k == 0 || errno != EINTR) {
                                close(outp[0]);
                                outp[0] = -1;
                        }
                }
                if (eo >= 0 && pfd[eo].revents) {
                        ssize_t k = read(errp[0], buf, sizeof(buf));
                        if (k > 0)
                                capture_add(&errc, buf, (size_t)k);
                        else if (k == 0 || errno != EINTR) {
                                close(errp[0]);
                                errp[0] = -1;
                        }
                }
        }
        if (timed_out)
                (void)kill(pid, SIGKILL); /* our own child */
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (timed_out) {
                free(out.buf);
                free(errc.buf);
                r = error_set(err, ETIMEDOUT, "%s did not finish within %u ms", argv[0],
                              timeout_ms ? timeout_ms : DEFAULT_TIMEOUT_MS);
                goto out_close;
        }
        if (!out.buf)
                capture_add(&out, "", 0);
        *ret_out = out.buf;
        if (ret_out_len)
                *ret_out_len = out.len;
        if (ret_err) {
                if (!errc.buf)
                        capture_add(&errc, "", 0);
                *ret_err = errc.buf;
        } else
                free(errc.buf);
        r = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
out_close:
        for (int i = 0; i < 2; i++) {
                if (inp[i] >= 0)
                        close(inp[i]);
                if (outp[i] >= 0)
                        close(outp[i]);
                if (errp[i] >= 0)
                        close(errp[i]);
        }
        return r;
}

static char **shim_argv(const struct runtime_shim_cmd *c, const char *verb, bool with_bundle)
{
        char **argv = xcalloc(16, sizeof(char *));
        size_t n = 0;
        argv[n++] = (char *)c->binary;
        argv[n++] = "-namespace";
        argv[n++] = (char *)c->ns;
        argv[n++] = "-address";
        argv[n++] = (char *)c->address;
        argv[n++] = "-publish-binary";
        argv[n++] = (char *)(c->publish_binary ? c->publish_binary : "");
        argv[n++] = "-id";
        argv[n++] = (char *)c->id;
        if (with_bundle) {
                argv[n++] = "-bundle";
                argv[n++] = (char *)c->bundle;
        }
        if (c->debug)
                argv[n++] = "-debug";
        argv[n++] = (char *)verb;
        return argv;
}

int runtime_shim_start(const struct runtime_shim_cmd *c, const void *opts, size_t opts_len, char **ret_address,
                       struct error **err)
{
        _cleanup_free_ char **argv = shim_argv(c, "start", false);
        _cleanup_free_ char *ttrpc_env = xasprintf("TTRPC_ADDRESS=%s", c->ttrpc_address);
        char *env[] = {ttrpc_env, NULL};
        _cleanup_free_ char *out = NULL;
        size_t len = 0;
        int r = runtime_exec_capture(argv, env, c->bundle, opts, opts_len, true, c->timeout_ms, &out, &len, NULL,
                                     err);
        if (r < 0)
                return error_wrap(err, "start shim");
        /* TrimSpace, as containerd does. */
        char *s = out;
        while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')
                s++;
        size_t l = strlen(s);
        while (l > 0 && (s[l - 1] == ' ' || s[l - 1] == '\n' || s[l - 1] == '\t' || s[l - 1] == '\r'))
                s[--l] = 0;
        if (r != 0)
                return error_set_literal(err, EIO, *s ? s : "shim start failed");
        if (!*s)
                return error_set(err, EIO, "start shim: no address printed");
        *ret_address = xstrdup(s);
        return 0;
}

int runtime_shim_delete(const struct runtime_shim_cmd *c, struct runtime_shim_exit *ret, struct error **err)
{
        _cleanup_free_ char **argv = shim_argv(c, "delete", true);
        _cleanup_free_ char *ttrpc_env = xasprintf("TTRPC_ADDRESS=%s", c->ttrpc_address);
        char *env[] = {ttrpc_env, NULL};
        _cleanup_free_ char *out = NULL, *errs = NULL;
        size_t len = 0;
        int r = runtime_exec_capture(argv, env, c->bundle, NULL, 0, false, c->timeout_ms, &out, &len, &errs, err);
        if (r < 0)
                return error_wrap(err, "delete shim");
        if (r != 0)
                return error_set(err, EIO, "%s: exit status %d", errs[0] ? errs : "shim delete failed", r);
        Containerd__Task__V2__DeleteResponse *resp =
                containerd__task__v2__delete_response__unpack(NULL, len, (const uint8_t *)out);
        if (!resp)
                return error_set(err, EINVAL, "shim delete: cannot decode DeleteResponse (%zu bytes)", len);
        *ret = (struct runtime_shim_exit){.pid = resp->pid, .exit_status = resp->exit_status};
        if (resp->exited_at) {
                ret->exited_at_sec = resp->exited_at->seconds;
                ret->exited_at_nsec = resp->exited_at->nanos;
        }
        containerd__task__v2__delete_response__free_unpacked(resp, NULL);
        return 0;
}

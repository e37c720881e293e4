/* containerd-shim-krill-v2: command line as containerd 1.6 drives a v2 shim (PROTOCOLS.md 3.2).
 *   start   creates the socket, forks the long-running server (no re-exec), prints the address
 *   delete  cleans up after a dead shim and prints a raw DeleteResponse
 * Without a subcommand and with a listening socket on fd 3 it serves, like a re-exec'd Go shim. */
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include "shim/server.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/log.h"

#define MAX_STDIN_OPTIONS (1u << 20)
#define MAX_CONFIG_JSON (16u << 20)

struct args {
        char *ns, *address, *publish_binary, *id, *bundle, *socket;
        bool debug;
        const char *action;
};

static int parse_args(int argc, char **argv, struct args *a)
{
        for (int i = 1; i < argc; i++) {
                const char *arg = argv[i], *val = NULL, *eq;
                char *name;
                if (arg[0] != '-' || arg[1] == '\0') {
                        if (a->action) {
                                fprintf(stderr, "unexpected argument %s\n", arg);
                                return -EINVAL;
                        }
                        a->action = arg;
                        continue;
                }
                arg += arg[1] == '-' ? 2 : 1;
                eq = strchr(arg, '=');
                name = eq ? xstrndup(arg, (size_t)(eq - arg)) : xstrdup(arg);
                if (eq)
                        val = eq + 1;
                if (strcmp(name, "debug") == 0) {
                        a->debug = !val || strcmp(val, "true") == 0 || strcmp(val, "1") == 0;
                        free(name);
                        continue;
                }
                if (strcmp(name, "v") == 0 || strcmp(name, "version") == 0) {
                        free(name);
                        a->action = "version";
                        continue;
                }
                if (!val) {
                        if (i + 1 >= argc) {
                                fprintf(stderr, "flag needs an argument: -%s\n", name);
                                free(name);
                                return -EINVAL;
                        }
                        val = argv[++i];
                }
                char **slot = strcmp(name, "namespace") == 0        ? &a->ns
                              : strcmp(name, "address") == 0        ? &a->address
                              : strcmp(name, "publish-binary") == 0 ? &a->publish_binary
                              : strcmp(name, "id") == 0             ? &a->id
                              : strcmp(name, "bundle") == 0         ? &a->bundle
                              : strcmp(name, "socket") == 0         ? &a->socket
                                                                    : NULL;
                if (!slot) {
                        fprintf(stderr, "flag provided but not defined: -%s\n", name);
                        free(name);
                        return -EINVAL;
                }
                free(*slot);
                *slot = xstrdup(val);
                free(name);
        }
        return 0;
}

static void args_clear(struct args *a)
{
        free(a->ns);
        free(a->address);
        free(a->publish_binary);
        free(a->id);
        free(a->bundle);
        free(a->socket);
}

static char *read_all_fd(int fd, size_t max, size_t *ret_len)
{
        char *buf = NULL;
        size_t len = 0, cap = 0;

        for (;;) {
                ssize_t n;
                if (cap - len < 4096) {
                        cap = cap ? cap * 2 : 4096;
                        buf = xrealloc(buf, cap);
                }
                n = read(fd, buf + len, cap - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                len += (size_t)n;
                if (len > max)
                        break;
        }
        *ret_len = len;
        return buf;
}

static Containerd__Runc__V1__Options *options_from_stdin(void)
{
        _cleanup_free_ char *buf = NULL;
        Google__Protobuf__Any *any;
        Containerd__Runc__V1__Options *o = NULL;
        struct stat st;
        size_t len = 0;

        if (fstat(0, &st) < 0 || S_ISCHR(st.st_mode))
                return NULL; /* a terminal or /dev/null: nothing to read */
        buf = read_all_fd(0, MAX_STDIN_OPTIONS, &len);
        if (len == 0 || len > MAX_STDIN_OPTIONS)
                return NULL;
        any = google__protobuf__any__unpack(NULL, len, (const uint8_t *)buf);
        if (!any)
                return NULL;
        if (any->type_url && strstr(any->type_url, "containerd.runc.v1.Options"))
                o = containerd__runc__v1__options__unpack(NULL, any->value.len, any->value.data);
        google__protobuf__any__free_unpacked(any, NULL);
        return o;
}

static int write_string_file(const char *path, const char *v)
{
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);

        if (fd < 0 || write(fd, v, strlen(v)) < 0)
                return -errno;
        return 0;
}

static char *dir_of(const char *path)
{
        const char *p = strncmp(path, "unix://", 7) == 0 ? path + 7 : path;
        const char *slash = strrchr(p, '/');

        if (!slash)
                return xstrdup(".");
        if (slash == p)
                return xstrdup("/");
        return xstrndup(p, (size_t)(slash - p));
}

static int mkdir_p(const char *path, mode_t mode)
{
        _cleanup_free_ char *p = xstrdup(path);

        for (char *s = p + 1; *s; s++)
                if (*s == '/') {
                        *s = '\0';
                        if (mkdir(p, mode) < 0 && errno != EEXIST)
                                return -errno;
                        *s = '/';
                }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

static int socket_connects(const char *path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0)
                return -errno;
        strncpy(sa.sun_path, path, sizeof(sa.sun_path) - 1);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return -errno;
        return 0;
}

/* Returns a listening fd, 0 when a live shim already serves path (reuse it), or -errno. */
static int listen_socket(const char *path, int *ret_fd)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        _cleanup_free_ char *dir = dir_of(path);
        int fd, r;
        mode_t old;

        r = mkdir_p(dir, 0711);
        if (r < 0)
                return r;
        strncpy(sa.sun_path, path, sizeof(sa.sun_path) - 1);
        for (int attempt = 0; attempt < 2; attempt++) {
                fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0)
                        return -errno;
                old = umask(0177);
                r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
                umask(old);
                if (r == 0) {
                        if (chmod(path, 0600) < 0 || listen(fd, 128) < 0) {
                                r = -errno;
                                close(fd);
                                return r;
                        }
                        *ret_fd = fd;
                        return 1;
                }
                r = -errno;
                close(fd);
                if (r != -EADDRINUSE)
                        return r;
                if (socket_connects(path) == 0)
                        return 0;
                (void)unlink(path); /* stale socket of a dead shim */
        }
        return -EADDRINUSE;
}

/* Like containerd's shim: one point above the daemon's oom_score_adj, so the OOM killer picks the shim before
 * the daemon. Raising needs no privilege; failures are ignored (DESIGN.md 8: no CAP_SYS_RESOURCE here). */
static void adjust_oom_score(pid_t daemon)
{
        _cleanup_free_ char *p = xasprintf("/proc/%d/oom_score_adj", (int)daemon), *s = NULL, *v = NULL;
        long score;

        if (shim_read_file(p, 64, &s, NULL, NULL) < 0)
                return;
        score = strtol(s, NULL, 10) + 1;
        if (score > 1000)
                score = 1000;
        v = xasprintf("%ld", score);
        (void)write_string_file("/proc/self/oom_score_adj", v);
}

static int cmd_start(struct args *a)
{
        _cleanup_free_ char *config = NULL, *group = NULL, *path = NULL, *address = NULL;
        Containerd__Runc__V1__Options *opts;
        struct shim_config cfg = {0};
        size_t config_len = 0;
        int fd = -1, r;
        pid_t pid, daemon;

        if (!a->ns || !a->id || !a->address) {
                fprintf(stderr, "start: -namespace, -id and -address are required\n");
                return 1;
        }
        opts = options_from_stdin();
        if (shim_read_file("config.json", MAX_CONFIG_JSON, &config, &config_len, NULL) < 0)
                config = NULL;
        group = shim_group_id(config, config_len, a->id);
        path = shim_socket_path(a->address, a->ns, group);
        if (!path) {
                fprintf(stderr, "shim socket path for %s too long\n", a->address);
                return 1;
        }
        address = xasprintf("unix://%s", path);
        r = listen_socket(path, &fd);
        if (r < 0) {
                fprintf(stderr, "listen on %s: %s\n", path, strerror(-r));
                return 1;
        }
        if (shim_write_file("address", address, strlen(address), NULL) < 0) {
                fprintf(stderr, "write address file\n");
                if (fd >= 0) {
                        close(fd);
                        (void)unlink(path);
                }
                return 1;
        }
        if (r == 0) {
                /* the group's shim already runs: containerd talks to it */
                if (opts)
                        containerd__runc__v1__options__free_unpacked(opts, NULL);
                fputs(address, stdout);
                return 0;
        }
        fflush(stdout);
        daemon = getppid();
        pid = fork();
        if (pid < 0) {
                fprintf(stderr, "fork: %s\n", strerror(errno));
                close(fd);
                (void)unlink(path);
                return 1;
        }
        if (pid == 0) {
                int nul = open("/dev/null", O_RDWR | O_CLOEXEC), logfd;
                const char *ttrpc = getenv("TTRPC_ADDRESS");
                (void)setsid();
                adjust_oom_score(daemon);
                if (nul >= 0) {
                        dup2(nul, 0), dup2(nul, 1), dup2(nul, 2);
                        close(nul);
                }
                /* containerd holds the FIFO open read-write, so this never blocks; never block on it later */
                logfd = open("log", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
                log_set_fd(logfd >= 0 ? logfd : 2);
                log_set_level(a->debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
                cfg.ns = a->ns;
                cfg.id = a->id;
                cfg.address = a->address;
                cfg.ttrpc_address = ttrpc && *ttrpc ? xstrdup(ttrpc) : xasprintf("%s.ttrpc", a->address);
                cfg.socket_path = path;
                {
                        _cleanup_free_ char *d = dir_of(a->address);
                        cfg.runtime_root = xasprintf("%s/runc", d);
                }
                cfg.debug = a->debug;
                cfg.start_options = opts;
                if (opts && opts->shim_cgroup && *opts->shim_cgroup) {
                        struct error *e = NULL;
                        if (shim_cgroup_enter(opts->shim_cgroup, &e) < 0)
                                log_warn("failed to join shim cgroup: %s", error_str(e));
                        error_free(&e);
                }
                free(TAKE_PTR(config));
                free(TAKE_PTR(group));
                if (chdir("/") < 0)
                        log_debug("chdir /: %s", strerror(errno));
                r = shim_server_run(&cfg, fd);
                free(cfg.ttrpc_address);
                free(cfg.runtime_root);
                if (opts)
                        containerd__runc__v1__options__free_unpacked(opts, NULL);
                return r;
        }
        close(fd);
        if (opts)
                containerd__runc__v1__options__free_unpacked(opts, NULL);
        fputs(address, stdout);
        return 0;
}

static int cmd_delete(struct args *a)
{
        _cleanup_free_ char *bundle = NULL, *opts = NULL, *binary = NULL, *root = NULL, *rootfs = NULL, *addr = NULL,
                            *dir = NULL;
        struct shim_runtime rt = {0};
        Containerd__Task__V2__DeleteResponse resp = CONTAINERD__TASK__V2__DELETE_RESPONSE__INIT;
        Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
        struct timespec now;
        uint8_t *buf;
        size_t len;

        if (!a->ns || !a->id || !a->address) {
                fprintf(stderr, "delete: -namespace, -id and -address are required\n");
                return 1;
        }
        bundle = a->bundle ? xstrdup(a->bundle) : getcwd(NULL, 0);
        if (!bundle) {
                fprintf(stderr, "delete: no bundle\n");
                return 1;
        }
        {
                _cleanup_free_ char *p = xasprintf("%s/options.json", bundle);
                if (shim_read_file(p, 1 << 20, &opts, NULL, NULL) >= 0) {
                        struct shim_json j, v;
                        if (shim_json_parse(opts, strlen(opts), &j) == 0) {
                                if (shim_json_member(&j, "BinaryName", &v) == 0)
                                        binary = shim_json_strdup(&v);
                                if (shim_json_member(&j, "Root", &v) == 0)
                                        root = shim_json_strdup(&v);
                                rt.systemd_cgroup =
                                    shim_json_member(&j, "SystemdCgroup", &v) == 0 && v.type == SHIM_JSON_TRUE;
                        }
                        if (binary && !*binary)
                                free(TAKE_PTR(binary));
                        if (root && !*root)
                                free(TAKE_PTR(root));
                }
        }
        if (!binary) {
                _cleanup_free_ char *p = xasprintf("%s/runtime", bundle);
                if (shim_read_file(p, 4096, &binary, NULL, NULL) < 0 || !*binary) {
                        free(binary);
                        binary = xstrdup("runc");
                }
        }
        dir = dir_of(a->address);
        rt.binary = xstrdup(binary);
        rt.root = root ? xasprintf("%s/%s", root, a->ns) : xasprintf("%s/runc/%s", dir, a->ns);
        rt.bundle = xstrdup(bundle);
        {
                const char *args[] = {"delete", "--force", a->id, NULL};
                (void)shim_runtime_run(&rt, "delete", args, NULL, NULL);
        }
        shim_runtime_clear(&rt);
        rootfs = xasprintf("%s/rootfs", bundle);
        shim_unmount_rootfs(rootfs);
        {
                _cleanup_free_ char *p = xasprintf("%s/address", bundle);
                if (shim_read_file(p, 4096, &addr, NULL, NULL) >= 0 && strncmp(addr, "unix://", 7) == 0 &&
                    socket_connects(addr + 7) == -ECONNREFUSED)
                        (void)unlink(addr + 7);
        }
        clock_gettime(CLOCK_REALTIME, &now);
        ts.seconds = now.tv_sec;
        ts.nanos = (int32_t)now.tv_nsec;
        resp.exited_at = &ts;
        resp.exit_status = 128 + 9;
        len = protobuf_c_message_get_packed_size(&resp.base);
        buf = xmalloc(len);
        protobuf_c_message_pack(&resp.base, buf);
        fwrite(buf, 1, len, stdout);
        free(buf);
        return 0;
}

static int cmd_serve(struct args *a)
{
        struct shim_config cfg = {0};
        _cleanup_free_ char *d = NULL;
        const char *ttrpc = getenv("TTRPC_ADDRESS");
        int type = 0, r;
        socklen_t l = sizeof(type);

        if (!a->ns || !a->id || !a->address || getsockopt(3, SOL_SOCKET, SO_TYPE, &type, &l) < 0) {
                fprintf(stderr, "usage: containerd-shim-krill-v2 -namespace NS -address ADDR -id ID [-bundle B] "
                                "[-debug] start|delete\n");
                return 1;
        }
        d = dir_of(a->address);
        cfg.ns = a->ns;
        cfg.id = a->id;
        cfg.address = a->address;
        cfg.ttrpc_address = ttrpc && *ttrpc ? xstrdup(ttrpc) : xasprintf("%s.ttrpc", a->address);
        cfg.runtime_root = xasprintf("%s/runc", d);
        cfg.debug = a->debug;
        log_set_level(a->debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
        r = shim_server_run(&cfg, 3);
        free(cfg.ttrpc_address);
        free(cfg.runtime_root);
        return r;
}

int main(int argc, char **argv)
{
        struct args a = {0};
        int r;

        /* one thread: one arena, and give freed memory back early */
#ifdef __GLIBC__
        mallopt(M_ARENA_MAX, 1);
        mallopt(M_TRIM_THRESHOLD, 64 * 1024);
        mallopt(M_MMAP_THRESHOLD, 64 * 1024);
#endif
        log_set_level(LOG_LEVEL_ERROR);
        if (parse_args(argc, argv, &a) < 0) {
                args_clear(&a);
                return 2;
        }
        if (a.action && strcmp(a.action, "start") == 0)
                r = cmd_start(&a);
        else if (a.action && strcmp(a.action, "delete") == 0)
                r = cmd_delete(&a);
        else if (a.action && strcmp(a.action, "version") == 0) {
                printf("containerd-shim-krill-v2:\n  Version:  %s\n  Revision: %s\n", KRILL_VERSION, KRILL_REVISION);
                r = 0;
        } else if (!a.action)
                r = cmd_serve(&a);
        else {
                fprintf(stderr, "unknown command %s\n", a.action);
                r = 2;
        }
        args_clear(&a);
        return r;
}

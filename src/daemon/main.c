/* krilld: the daemon (containerd's cmd/containerd).
 *
 *   krilld [--config FILE] [--root DIR] [--state DIR] [--address SOCK] [--log-level LEVEL]
 *   krilld config default     the default configuration (containerd's version-2 TOML)
 *   krilld config dump        the effective configuration (defaults, file, flags)
 *   krilld --version
 *
 * Flags override the config file, which overrides the defaults. Without --config, /etc/krill/config.toml is
 * read if it exists (containerd does the same with its default path). Everything lives under root and
 * state; the socket defaults to <state>/krill.sock unless the file or a flag names it. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/config.h"
#include "daemon/daemon.h"
#include "events/exchange.h"
#include "runtime/task_manager.h"
#include "services/health.h"
#include "services/version.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/log.h"

#define SOCKET_NAME "krill.sock"

enum command {
        CMD_SERVE,
        CMD_CONFIG_DEFAULT,
        CMD_CONFIG_DUMP,
};

struct options {
        const char *config;
        const char *root;
        const char *state;
        const char *address;
        const char *log_level;
};

static void usage(FILE *f)
{
        fprintf(f, "NAME:\n"
                   "   krilld - a containerd-compatible container runtime daemon\n\n"
                   "USAGE:\n"
                   "   krilld [global options] [command]\n\n"
                   "COMMANDS:\n"
                   "   config default   print the default configuration (TOML)\n"
                   "   config dump      print the effective configuration (defaults, file, flags)\n\n"
                   "GLOBAL OPTIONS:\n"
                   "   --config value, -c value     path to the configuration file (default: "
                   KRILL_DEFAULT_CONFIG_PATH " if it exists)\n"
                   "   --log-level value, -l value  set the logging level [trace, debug, info, warn, error, fatal, "
                   "panic]\n"
                   "   --address value, -a value    address for krilld's GRPC server (default: <state>/" SOCKET_NAME
                   ")\n"
                   "   --root value                 krilld root directory (default: " KRILL_DEFAULT_ROOT ")\n"
                   "   --state value                krilld state directory (default: " KRILL_DEFAULT_STATE ")\n"
                   "   --help, -h                   show help\n"
                   "   --version, -v                print the version\n");
}

static char *absolute(const char *p)
{
        if (p[0] == '/')
                return xstrdup(p);
        _cleanup_free_ char *cwd = getcwd(NULL, 0);
        if (!cwd)
                return xstrdup(p);
        return xasprintf("%s/%s", cwd, p);
}

/* mkdir -p with the last component's mode applied exactly (root and state are 0711, as containerd's). */
static int make_dir(const char *path, mode_t mode, struct error **err)
{
        _cleanup_free_ char *p = xstrdup(path);
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = '\0';
                if (mkdir(p, 0755) < 0 && errno != EEXIST)
                        return error_set(err, errno, "mkdir %s", p);
                *s = '/';
        }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return error_set(err, errno, "mkdir %s", p);
        struct stat st;
        if (stat(p, &st) < 0)
                return error_set(err, errno, "stat %s", p);
        if (!S_ISDIR(st.st_mode))
                return error_set(err, ENOTDIR, "%s", p);
        if ((st.st_mode & 07777) != mode && chmod(p, mode) < 0)
                return error_set(err, errno, "chmod %s", p);
        return 0;
}

static double now_seconds(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_release_stopped(_unused_ void *data)
{
}

/* Releases the loop-owned objects that need the loop to close (the ttrpc server, the event exchange's timer).
 * Afterwards only pending worker jobs keep the loop alive, and uv_run() waits for them before it returns. */
static void release_loop_objects(struct daemon *d)
{
        /* Shim connections close; shims and their containers keep running (containerd's behaviour). */
        task_manager_free(d->tasks);
        d->tasks = NULL;
        d->ctx.tasks = NULL;
        ttrpc_server_free(d->ttrpc);
        d->ttrpc = NULL;
        d->events = events_exchange_free(d->events);
        d->ctx.events = NULL;
}

static void on_server_stopped(void *data)
{
        struct daemon *d = data;
        release_loop_objects(d);
        uv_close((uv_handle_t *)&d->sig_term, NULL);
        uv_close((uv_handle_t *)&d->sig_int, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
        struct daemon *d = h->data;
        const struct log_field f[] = {{"signal", signum == SIGTERM ? "terminated" : "interrupt"}, {NULL, NULL}};

        log_fields(LOG_LEVEL_INFO, f, "received signal");
        if (d->stopping)
                return;
        d->stopping = true;
        services_health_set_shutting_down();
        log_info("stopping krilld");
        grpc_server_shutdown(d->server, on_server_stopped, d);
}

static int parse_args(int argc, char **argv, struct options *o, enum command *cmd)
{
        static const struct option longopts[] = {
                {"config", required_argument, NULL, 'c'},
                {"log-level", required_argument, NULL, 'l'},
                {"address", required_argument, NULL, 'a'},
                {"root", required_argument, NULL, 'R'},
                {"state", required_argument, NULL, 'S'},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, 'v'},
                {NULL, 0, NULL, 0},
        };
        int c;

        /* '+': stop at the first non-option, like urfave/cli, so `krilld config default` is a command */
        while ((c = getopt_long(argc, argv, "+c:l:a:hv", longopts, NULL)) != -1) {
                switch (c) {
                case 'c':
                        o->config = optarg;
                        break;
                case 'l':
                        o->log_level = optarg;
                        break;
                case 'a':
                        o->address = optarg;
                        break;
                case 'R':
                        o->root = optarg;
                        break;
                case 'S':
                        o->state = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return 1;
                case 'v':
                        printf("krilld %s %s\n", services_version_version(), services_version_revision());
                        return 1;
                default:
                        usage(stderr);
                        return -EINVAL;
                }
        }
        if (optind < argc) {
                if (strcmp(argv[optind], "config") == 0 && optind + 2 == argc) {
                        if (strcmp(argv[optind + 1], "default") == 0) {
                                *cmd = CMD_CONFIG_DEFAULT;
                                return 0;
                        }
                        if (strcmp(argv[optind + 1], "dump") == 0) {
                                *cmd = CMD_CONFIG_DUMP;
                                return 0;
                        }
                }
                fprintf(stderr, "krilld: unknown command \"%s\"\n", argv[optind]);
                usage(stderr);
                return -EINVAL;
        }
        return 0;
}

/* Loads the configuration: defaults, then the file (--config, or the default path if it exists), then the
 * flags. Prints its own error. Unknown keys are returned for logging once the log level is known. */
static int load_config(const struct options *o, struct krill_config *cfg, char ***unknown)
{
        _cleanup_error_ struct error *err = NULL;
        const char *path = o->config;

        krill_config_defaults(cfg);
        if (!path && access(KRILL_DEFAULT_CONFIG_PATH, F_OK) == 0)
                path = KRILL_DEFAULT_CONFIG_PATH;
        if (path) {
                int r = krill_config_load_file(cfg, path, unknown, &err);
                if (r < 0) {
                        fprintf(stderr, "krilld: failed to load config: %s\n", error_str(err));
                        return r;
                }
        }
        /* flags win; what neither the file nor a flag names derives from state, as documented */
        if (o->root) {
                free(cfg->root);
                cfg->root = absolute(o->root);
        }
        if (o->state) {
                free(cfg->state);
                cfg->state = absolute(o->state);
        }
        if (o->address) {
                free(cfg->grpc.address);
                cfg->grpc.address = absolute(o->address);
        } else if (!cfg->set.grpc_address) {
                free(cfg->grpc.address);
                cfg->grpc.address = xasprintf("%s/" SOCKET_NAME, cfg->state);
        }
        if (o->log_level) {
                if (log_level_from_string(o->log_level) == _LOG_LEVEL_INVALID) {
                        fprintf(stderr, "krilld: not a valid logrus Level: \"%s\"\n", o->log_level);
                        return -EINVAL;
                }
                free(cfg->debug.level);
                cfg->debug.level = xstrdup(o->log_level);
        }
        return 0;
}

/* containerd's oom_score: the daemon's own oom_score_adj. Without CAP_SYS_RESOURCE a negative value is
 * refused; clamp to what is allowed instead of failing (DESIGN.md section 8). */
static void apply_oom_score(int64_t score)
{
        if (score == 0)
                return;
        for (int64_t s = score; s <= 1000; s = s < 0 ? 0 : 1001) {
                _cleanup_close_ int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
                if (fd < 0)
                        break;
                char buf[32];
                int n = snprintf(buf, sizeof(buf), "%lld", (long long)s);
                if (write(fd, buf, (size_t)n) == n) {
                        if (s != score)
                                log_warn("oom_score %lld not permitted, using %lld", (long long)score, (long long)s);
                        return;
                }
        }
        log_warn("could not set oom_score %lld", (long long)score);
}

static int run(struct daemon *d, struct krill_config *cfg)
{
        _cleanup_error_ struct error *err = NULL;
        double start = now_seconds();
        int r;

        d->root = absolute(cfg->root);
        d->state = absolute(cfg->state);
        d->address = absolute(cfg->grpc.address);
        d->ttrpc_address = cfg->set.ttrpc_address && cfg->ttrpc.address[0] ? absolute(cfg->ttrpc.address)
                                                                            : xasprintf("%s.ttrpc", d->address);
        d->ctx.config = cfg;
        d->config = cfg;

        const struct log_field vf[] = {{"revision", services_version_revision()},
                                       {"version", services_version_version()},
                                       {NULL, NULL}};
        log_fields(LOG_LEVEL_INFO, vf, "starting krilld");

        r = make_dir(d->root, 0711, &err);
        if (r < 0)
                goto fail;
        r = make_dir(d->state, 0711, &err);
        if (r < 0)
                goto fail;

        d->loop = xmalloc(sizeof(uv_loop_t));
        r = uv_loop_init(d->loop);
        if (r < 0) {
                r = error_set(&err, -r, "uv_loop_init");
                free(d->loop);
                d->loop = NULL;
                goto fail;
        }
        apply_oom_score(cfg->oom_score);
        const struct grpc_server_options gopts = {
                .max_recv_msg = cfg->grpc.max_recv_message_size > 0 ? (size_t)cfg->grpc.max_recv_message_size : 0,
                .max_send_msg = cfg->grpc.max_send_message_size > 0 ? (size_t)cfg->grpc.max_send_message_size : 0,
                .log_calls = log_enabled(LOG_LEVEL_DEBUG),
        };
        d->server = grpc_server_new(d->loop, &gopts);
        d->ttrpc = ttrpc_server_new(d->loop);
        d->ctx.loop = d->loop;
        d->ctx.root = d->root;
        d->ctx.state = d->state;

        r = daemon_plugins_init(d, daemon_builtins, daemon_builtins_count, &err);
        if (r < 0)
                goto fail;

        r = grpc_server_listen_unix(d->server, d->address, &err);
        if (r < 0) {
                error_wrap(&err, "failed to serve on %s", d->address);
                goto fail;
        }
        const struct log_field af[] = {{"address", d->address}, {NULL, NULL}};
        log_fields(LOG_LEVEL_INFO, af, "serving...");
        /* only the daemon's own uid may forward events (containerd checks the peer's credentials too) */
        r = ttrpc_server_listen_unix(d->ttrpc, d->ttrpc_address, true, &err);
        if (r < 0) {
                error_wrap(&err, "failed to serve on %s", d->ttrpc_address);
                goto fail;
        }
        const struct log_field tf[] = {{"address", d->ttrpc_address}, {NULL, NULL}};
        log_fields(LOG_LEVEL_INFO, tf, "serving...");

        uv_signal_init(d->loop, &d->sig_term);
        uv_signal_init(d->loop, &d->sig_int);
        d->sig_term.data = d->sig_int.data = d;
        uv_signal_start(&d->sig_term, on_signal, SIGTERM);
        uv_signal_start(&d->sig_int, on_signal, SIGINT);

        log_info("krilld successfully booted in %fs", now_seconds() - start);
        uv_run(d->loop, UV_RUN_DEFAULT);
        log_info("krilld stopped");
        return 0;

fail:
        log_fields(LOG_LEVEL_FATAL, (const struct log_field[]){{"error", error_str(err)}, {NULL, NULL}},
                   "krilld failed to start");
        return r;
}

static void daemon_release(struct daemon *d)
{
        if (d->loop && !d->stopping) {
                /* start-up failed after the loop existed: close everything on it before freeing */
                d->stopping = true;
                if (d->server)
                        grpc_server_shutdown(d->server, on_release_stopped, NULL);
                release_loop_objects(d);
                uv_run(d->loop, UV_RUN_DEFAULT);
        }
        daemon_plugins_close(d);
        grpc_server_free(d->server);
        d->server = NULL;
        if (d->loop) {
                (void)uv_loop_close(d->loop);
                free(d->loop);
                d->loop = NULL;
        }
        services_plugin_registry_clear(&d->registry);
        free(d->root);
        free(d->state);
        free(d->address);
        free(d->ttrpc_address);
        free(d->uuid);
}

int main(int argc, char **argv)
{
        struct options o = {0};
        enum command cmd = CMD_SERVE;
        struct krill_config cfg = {0};
        _cleanup_strv_free_ char **unknown = NULL;
        struct daemon d = {0};

        int r = parse_args(argc, argv, &o, &cmd);
        if (r != 0)
                return r < 0 ? 1 : 0;
        if (cmd == CMD_CONFIG_DEFAULT)
                return krill_config_print_default(stdout) < 0 ? 1 : 0;

        r = load_config(&o, &cfg, &unknown);
        if (r < 0) {
                krill_config_free(&cfg);
                return 1;
        }
        if (cmd == CMD_CONFIG_DUMP) {
                r = krill_config_print(stdout, &cfg);
                krill_config_free(&cfg);
                return r < 0 ? 1 : 0;
        }
        if (cfg.debug.level[0])
                log_set_level(log_level_from_string(cfg.debug.level));
        if (strcmp(cfg.debug.format, "json") == 0)
                log_set_format(LOG_FORMAT_JSON);
        for (size_t i = 0; unknown && unknown[i]; i++) {
                const struct log_field f[] = {{"key", unknown[i]}, {NULL, NULL}};
                log_fields(LOG_LEVEL_WARN, f, "unknown key in configuration, ignored");
        }
        /* a client that goes away mid-write must not kill the daemon */
        signal(SIGPIPE, SIG_IGN);

        r = run(&d, &cfg);
#if !defined(__SANITIZE_ADDRESS__)
        /* A clean stop: every metadata commit is already durable, shims and containers keep running, logs are
         * written unbuffered. Closing the stores, freeing the heap and joining libuv's worker threads (its
         * destructor) would only delay the exit that `kill; wait` measures by milliseconds. Sanitizer builds
         * keep the full teardown below so leaks stay visible. */
        if (r == 0) {
                (void)fflush(NULL);
                _exit(0);
        }
#endif
        daemon_release(&d);
        krill_config_free(&cfg);
        return r < 0 ? 1 : 0;
}

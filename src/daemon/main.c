/* krilld: the daemon (containerd's cmd/containerd).
 *
 *   krilld [--config FILE] [--root DIR] [--state DIR] [--address SOCK] [--log-level LEVEL]
 *   krilld config default
 *   krilld --version
 *
 * Flags override the config file. Everything lives under root and state; the socket defaults to
 * <state>/krill.sock. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "events/exchange.h"
#include "services/health.h"
#include "services/version.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/log.h"

#define DEFAULT_ROOT "/var/lib/krill"
#define DEFAULT_STATE "/run/krill"
#define SOCKET_NAME "krill.sock"

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
                   "   config default   print the default configuration (TOML)\n\n"
                   "GLOBAL OPTIONS:\n"
                   "   --config value, -c value     path to the configuration file\n"
                   "   --log-level value, -l value  set the logging level [trace, debug, info, warn, error, fatal, "
                   "panic]\n"
                   "   --address value, -a value    address for krilld's GRPC server (default: <state>/" SOCKET_NAME
                   ")\n"
                   "   --root value                 krilld root directory (default: " DEFAULT_ROOT ")\n"
                   "   --state value                krilld state directory (default: " DEFAULT_STATE ")\n"
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

static int parse_args(int argc, char **argv, struct options *o, bool *print_default)
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
                if (strcmp(argv[optind], "config") == 0 && optind + 1 < argc &&
                    strcmp(argv[optind + 1], "default") == 0 && optind + 2 == argc) {
                        *print_default = true;
                        return 0;
                }
                fprintf(stderr, "krilld: unknown command \"%s\"\n", argv[optind]);
                usage(stderr);
                return -EINVAL;
        }
        return 0;
}

static int run(struct daemon *d, const struct options *o)
{
        _cleanup_error_ struct error *err = NULL;
        double start = now_seconds();
        int r;

        d->root = absolute(o->root ? o->root : DEFAULT_ROOT);
        d->state = absolute(o->state ? o->state : DEFAULT_STATE);
        d->address = o->address ? absolute(o->address) : xasprintf("%s/" SOCKET_NAME, d->state);
        d->ttrpc_address = xasprintf("%s.ttrpc", d->address);

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
        const struct grpc_server_options gopts = {.log_calls = log_enabled(LOG_LEVEL_DEBUG)};
        d->server = grpc_server_new(d->loop, &gopts);
        d->ttrpc = ttrpc_server_new(d->loop);
        d->ctx.loop = d->loop;
        d->ctx.root = d->root;
        d->ctx.state = d->state;

        daemon_plugins_init(d, daemon_builtins, daemon_builtins_count);

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
        bool print_default = false;
        struct daemon d = {0};

        int r = parse_args(argc, argv, &o, &print_default);
        if (r != 0)
                return r < 0 ? 1 : 0;
        if (print_default) {
                fprintf(stderr, "krilld: config default: the configuration module is not part of this build yet\n");
                return 1;
        }
        if (o.config) {
                fprintf(stderr, "krilld: --config: the configuration module is not part of this build yet\n");
                return 1;
        }
        if (o.log_level) {
                enum log_level l = log_level_from_string(o.log_level);
                if (l == _LOG_LEVEL_INVALID) {
                        fprintf(stderr, "krilld: not a valid logrus Level: \"%s\"\n", o.log_level);
                        return 1;
                }
                log_set_level(l);
        }
        /* a client that goes away mid-write must not kill the daemon */
        signal(SIGPIPE, SIG_IGN);

        r = run(&d, &o);
        daemon_release(&d);
        return r < 0 ? 1 : 0;
}

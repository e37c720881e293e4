/* Helpers shared by the command files: dispatch and help in urfave/cli's layout, flags, errors, the
 * connection, durations and label arguments. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/alloc.h"
#include "util/cleanup.h"

bool cli_command_matches(const struct cli_command *cmd, const char *name)
{
        if (strcmp(cmd->name, name) == 0)
                return true;
        for (size_t i = 0; cmd->aliases && cmd->aliases[i]; i++)
                if (strcmp(cmd->aliases[i], name) == 0)
                        return true;
        return false;
}

static char *names_of(const struct cli_command *cmd)
{
        char *s = xstrdup(cmd->name);
        for (size_t i = 0; cmd->aliases && cmd->aliases[i]; i++) {
                char *n = xasprintf("%s, %s", s, cmd->aliases[i]);
                free(s);
                s = n;
        }
        return s;
}

void cli_print_command_help(const struct cli_global *g, const struct cli_command *cmd, const char *path)
{
        (void)g;
        printf("NAME:\n   %s - %s\n\nUSAGE:\n", path, cmd->usage);
        if (cmd->subcommands) {
                printf("   %s command [command options] [arguments...]\n\nCOMMANDS:\n", path);
                size_t w = 0;
                for (size_t i = 0; cmd->subcommands[i]; i++) {
                        _cleanup_free_ char *n = names_of(cmd->subcommands[i]);
                        if (strlen(n) > w)
                                w = strlen(n);
                }
                for (size_t i = 0; cmd->subcommands[i]; i++) {
                        _cleanup_free_ char *n = names_of(cmd->subcommands[i]);
                        printf("   %-*s  %s\n", (int)w, n, cmd->subcommands[i]->usage);
                }
                printf("\nOPTIONS:\n   --help, -h  show help\n   \n");
                return;
        }
        printf("   %s [command options] %s\n\n", path, cmd->args_usage ? cmd->args_usage : "[arguments...]");
        if (cmd->flags_help)
                printf("OPTIONS:\n%s   \n", cmd->flags_help);
}

int cli_dispatch(const struct cli_global *g, const struct cli_command *cmd, const char *path, int argc, char **argv)
{
        if (cmd->run)
                return cmd->run(g, cmd, argc, argv);

        /* a group: argv[0] is the group's name, argv[1] the subcommand */
        if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
            strcmp(argv[1], "help") == 0 || strcmp(argv[1], "h") == 0) {
                cli_print_command_help(g, cmd, path);
                return 0;
        }
        for (size_t i = 0; cmd->subcommands[i]; i++) {
                if (cli_command_matches(cmd->subcommands[i], argv[1])) {
                        _cleanup_free_ char *sub = xasprintf("%s %s", path, cmd->subcommands[i]->name);
                        return cli_dispatch(g, cmd->subcommands[i], sub, argc - 1, argv + 1);
                }
        }
        /* urfave/cli's answer to an unknown subcommand, with its exit code 3 */
        fprintf(stderr, "No help topic for '%s'\n", argv[1]);
        return 3;
}

int cli_fail(const struct cli_global *g, const struct error *err)
{
        _cleanup_free_ char *m = err ? error_message(err) : xstrdup("unknown error");
        fprintf(stderr, "%s: %s\n", g->prog, m);
        return 1;
}

int cli_failf(const struct cli_global *g, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *m = xvasprintf(fmt, ap);
        va_end(ap);
        fprintf(stderr, "%s: %s\n", g->prog, m);
        return 1;
}

int cli_begin(const struct cli_global *g, const struct cli_command *cmd, const char *path, const struct cli_flag *flags,
              int argc, char **argv, int *ret_optind, struct grpc_client **ret)
{
        int r = cli_parse_flags(g, cmd, path, flags, argc, argv, ret_optind);
        if (r != 0)
                return r < 0 ? 1 : 0;
        return cli_connect(g, ret) < 0 ? 1 : CLI_GO;
}

int cli_connect(const struct cli_global *g, struct grpc_client **ret)
{
        _cleanup_error_ struct error *err = NULL;
        struct grpc_client *c = NULL;
        /* ctr waits up to 10 s for the daemon when no --connect-timeout is given */
        int timeout = g->connect_timeout_ms > 0 ? g->connect_timeout_ms : 10000;

        int r = grpc_client_connect(g->address, timeout, &c, &err);
        if (r < 0) {
                _cleanup_free_ char *m = err ? error_message(err) : xstrdup(error_class_text(-r));
                fprintf(stderr, "%s: failed to dial \"%s\": %s\n", g->prog, g->address, m);
                return r;
        }
        const struct grpc_metadata md[] = {{"containerd-namespace", g->namespace_}, {NULL, NULL}};
        grpc_client_set_default_metadata(c, md);
        if (g->timeout_ms > 0)
                grpc_client_set_timeout(c, g->timeout_ms);
        *ret = c;
        return 0;
}

/* Go's time.ParseDuration, restricted to what fits in an int of milliseconds. */
int cli_parse_duration_ms(const char *s, int *ret_ms)
{
        static const struct {
                const char *unit;
                double ms;
        } units[] = {
                {"ns", 1e-6}, {"us", 1e-3}, {"\xc2\xb5s", 1e-3}, {"\xce\xbcs", 1e-3}, {"ms", 1},
                {"s", 1e3},   {"m", 6e4},   {"h", 3.6e6},
        };
        const char *p = s;
        double total = 0;
        bool neg = false;

        if (*p == '-' || *p == '+')
                neg = *p++ == '-';
        if (strcmp(p, "0") == 0) {
                *ret_ms = 0;
                return 0;
        }
        if (*p == '\0')
                return -EINVAL;
        while (*p) {
                char *end;
                if (!((*p >= '0' && *p <= '9') || *p == '.'))
                        return -EINVAL;
                double v = strtod(p, &end);
                if (end == p)
                        return -EINVAL;
                p = end;
                size_t best = 0;
                double mult = 0;
                for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
                        size_t l = strlen(units[i].unit);
                        if (strncmp(p, units[i].unit, l) == 0 && l > best) {
                                best = l;
                                mult = units[i].ms;
                        }
                }
                if (best == 0)
                        return -EINVAL; /* Go: missing unit in duration */
                p += best;
                total += v * mult;
        }
        if (total > INT_MAX)
                return -ERANGE;
        *ret_ms = (int)(neg ? -total : total);
        return 0;
}

void cli_object_with_labels(int argc, char **argv, const char **ret_object, char ***ret_labels)
{
        char **labels = NULL;
        size_t n = 0;

        *ret_object = argc > 0 ? argv[0] : "";
        for (int i = 1; i < argc; i++) {
                const char *eq = strchr(argv[i], '=');
                _cleanup_free_ char *k = eq ? xstrndup(argv[i], (size_t)(eq - argv[i])) : xstrdup(argv[i]);
                const char *v = eq ? eq + 1 : "";
                size_t j;
                for (j = 0; j < n; j += 2)
                        if (strcmp(labels[j], k) == 0)
                                break;
                if (j < n) {
                        free(labels[j + 1]);
                        labels[j + 1] = xstrdup(v);
                        continue;
                }
                labels = xreallocarray(labels, n + 3, sizeof(char *));
                labels[n++] = TAKE_PTR(k);
                labels[n++] = xstrdup(v);
                labels[n] = NULL;
        }
        *ret_labels = labels;
}

int cli_parse_flags(const struct cli_global *g, const struct cli_command *cmd, const char *path,
                    const struct cli_flag *flags, int argc, char **argv, int *ret_optind)
{
        size_t n = 0;
        while (flags && flags[n].long_name)
                n++;
        _cleanup_free_ struct option *opts = xcalloc(n + 2, sizeof(struct option));
        _cleanup_free_ char *shorts = xmalloc(3 * n + 4);
        size_t k = 0;

        shorts[k++] = '+';
        shorts[k++] = ':';
        for (size_t i = 0; i < n; i++) {
                opts[i].name = flags[i].long_name;
                opts[i].has_arg = flags[i].has_arg ? required_argument : no_argument;
                opts[i].val = 256 + (int)i;
                if (flags[i].short_name) {
                        shorts[k++] = flags[i].short_name;
                        if (flags[i].has_arg)
                                shorts[k++] = ':';
                }
        }
        opts[n].name = "help";
        opts[n].val = 'h';
        shorts[k++] = 'h';
        shorts[k] = '\0';

        optind = 0; /* full re-initialisation of getopt for this argv */
        opterr = 0;
        int c;
        while ((c = getopt_long(argc, argv, shorts, opts, NULL)) != -1) {
                const struct cli_flag *f = NULL;
                if (c >= 256 && c < 256 + (int)n) {
                        f = &flags[c - 256];
                } else if (c == 'h') {
                        cli_print_command_help(g, cmd, path);
                        return 1;
                } else {
                        for (size_t i = 0; i < n; i++)
                                if (flags[i].short_name && flags[i].short_name == c)
                                        f = &flags[i];
                }
                if (!f) {
                        const char *bad = argv[optind - 1];
                        while (*bad == '-')
                                bad++;
                        if (c == ':')
                                printf("Incorrect Usage: flag needs an argument: -%s\n\n", bad);
                        else
                                printf("Incorrect Usage: flag provided but not defined: -%s\n\n", bad);
                        cli_print_command_help(g, cmd, path);
                        return -EINVAL;
                }
                if (f->has_arg)
                        *f->value = optarg;
                else
                        *f->set = true;
        }
        *ret_optind = optind;
        return 0;
}

/* krill: the command-line client, with ctr's global flags and command names so that a ctr user's muscle
 * memory works. Commands live one group per file; add a group to `commands` below. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/log.h"

#ifndef KRILL_VERSION
#error "KRILL_VERSION must be defined by the build"
#endif

/* The command table, in ctr's order. */
static const struct cli_command *const commands[] = {
        &cli_plugins_command,
        &cli_version_command,
        &cli_containers_command,
        &cli_content_command,
        &cli_namespaces_command,
        &cli_events_command,
        &cli_images_command,
        &cli_leases_command,
        &cli_run_command,
        &cli_snapshots_command,
        &cli_tasks_command,
        NULL,
};

static void usage(FILE *f)
{
        fprintf(f, "NAME:\n"
                   "   krill - krill CLI (ctr-compatible)\n\n"
                   "USAGE:\n"
                   "   krill [global options] command [command options] [arguments...]\n\n"
                   "VERSION:\n"
                   "   %s\n\n"
                   "COMMANDS:\n",
                KRILL_VERSION);
        size_t w = strlen("help, h");
        for (size_t i = 0; commands[i]; i++) {
                size_t l = strlen(commands[i]->name);
                for (size_t j = 0; commands[i]->aliases && commands[i]->aliases[j]; j++)
                        l += 2 + strlen(commands[i]->aliases[j]);
                if (l > w)
                        w = l;
        }
        for (size_t i = 0; commands[i]; i++) {
                _cleanup_free_ char *n = xstrdup(commands[i]->name);
                for (size_t j = 0; commands[i]->aliases && commands[i]->aliases[j]; j++) {
                        char *t = xasprintf("%s, %s", n, commands[i]->aliases[j]);
                        free(n);
                        n = t;
                }
                fprintf(f, "   %-*s  %s\n", (int)w, n, commands[i]->usage);
        }
        fprintf(f, "   %-*s  %s\n", (int)w, "help, h", "Shows a list of commands or help for one command");
        fprintf(f, "\nGLOBAL OPTIONS:\n"
                   "   --debug                      enable debug output in logs\n"
                   "   --address value, -a value    address for krilld's GRPC server (default: \"" CLI_DEFAULT_ADDRESS
                   "\") [$CONTAINERD_ADDRESS]\n"
                   "   --timeout value              total timeout for krill commands (default: 0s)\n"
                   "   --connect-timeout value      timeout for connecting to krilld (default: 0s)\n"
                   "   --namespace value, -n value  namespace to use with commands (default: \"" CLI_DEFAULT_NAMESPACE
                   "\") [$CONTAINERD_NAMESPACE]\n"
                   "   --help, -h                   show help\n"
                   "   --version, -v                print the version\n");
}

static const char *env_or(const char *name, const char *def)
{
        const char *v = getenv(name);
        return v && v[0] ? v : def;
}

int main(int argc, char **argv)
{
        static const struct option longopts[] = {
                {"address", required_argument, NULL, 'a'},
                {"namespace", required_argument, NULL, 'n'},
                {"timeout", required_argument, NULL, 'T'},
                {"connect-timeout", required_argument, NULL, 'C'},
                {"debug", no_argument, NULL, 'D'},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, 'v'},
                {NULL, 0, NULL, 0},
        };
        struct cli_global g = {
                .address = env_or("CONTAINERD_ADDRESS", CLI_DEFAULT_ADDRESS),
                .namespace_ = env_or("CONTAINERD_NAMESPACE", CLI_DEFAULT_NAMESPACE),
                .prog = "krill",
        };
        int c;

        opterr = 0;
        while ((c = getopt_long(argc, argv, "+:a:n:hv", longopts, NULL)) != -1) {
                switch (c) {
                case 'a':
                        g.address = optarg;
                        break;
                case 'n':
                        g.namespace_ = optarg;
                        break;
                case 'T':
                case 'C': {
                        int ms;
                        if (cli_parse_duration_ms(optarg, &ms) < 0)
                                return cli_failf(&g, "invalid value \"%s\" for flag -%s: parse error", optarg,
                                                 c == 'T' ? "timeout" : "connect-timeout");
                        if (c == 'T')
                                g.timeout_ms = ms;
                        else
                                g.connect_timeout_ms = ms;
                        break;
                }
                case 'D':
                        g.debug = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                case 'v':
                        printf("krill version %s\n", KRILL_VERSION);
                        return 0;
                case ':':
                        return cli_failf(&g, "flag needs an argument: %s", argv[optind - 1]);
                default: {
                        const char *bad = argv[optind - 1];
                        while (*bad == '-')
                                bad++;
                        return cli_failf(&g, "flag provided but not defined: -%s", bad);
                }
                }
        }
        if (g.debug)
                log_set_level(LOG_LEVEL_DEBUG);

        if (optind >= argc) {
                usage(stdout);
                return 0;
        }
        const char *name = argv[optind];
        if (strcmp(name, "help") == 0 || strcmp(name, "h") == 0) {
                if (optind + 1 < argc) {
                        for (size_t i = 0; commands[i]; i++)
                                if (cli_command_matches(commands[i], argv[optind + 1])) {
                                        _cleanup_free_ char *path = xasprintf("krill %s", commands[i]->name);
                                        cli_print_command_help(&g, commands[i], path);
                                        return 0;
                                }
                        fprintf(stderr, "No help topic for '%s'\n", argv[optind + 1]);
                        return 3;
                }
                usage(stdout);
                return 0;
        }
        for (size_t i = 0; commands[i]; i++) {
                if (cli_command_matches(commands[i], name)) {
                        _cleanup_free_ char *path = xasprintf("krill %s", commands[i]->name);
                        return cli_dispatch(&g, commands[i], path, argc - optind, argv + optind);
                }
        }
        fprintf(stderr, "No help topic for '%s'\n", name);
        return 3;
}

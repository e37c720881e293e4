/* The krill CLI (ctr's command line): global flags, the command table, and helpers shared by the command
 * files. One file per command group (crun's layout): version.c, namespaces.c, plugins.c, ... A new group is a
 * new file defining a `const struct cli_command cli_<group>_command` plus one line in main.c's table.
 * Single-threaded; commands run to completion and return an exit code. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "proto/grpc/grpc.h"
#include "util/error.h"

#define CLI_DEFAULT_ADDRESS "/run/krill/krill.sock"
#define CLI_DEFAULT_NAMESPACE "default"

struct cli_global {
        const char *address;    /* --address/-a, $CONTAINERD_ADDRESS */
        const char *namespace_; /* --namespace/-n, $CONTAINERD_NAMESPACE */
        int timeout_ms;         /* --timeout: per-call deadline, 0 = none */
        int connect_timeout_ms; /* --connect-timeout */
        bool debug;             /* --debug */
        const char *prog;       /* "krill", for messages */
};

struct cli_command;

/* argv[0] is the command's own name (as typed, maybe an alias); the command parses its flags itself.
 * Returns the process exit code. */
typedef int (*cli_run_fn)(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv);

struct cli_command {
        const char *name;
        const char *const *aliases; /* NULL-terminated, may be NULL */
        const char *usage;          /* one line, shown in the parent's COMMANDS list */
        const char *args_usage;     /* e.g. "<name> [<key>=<value>]" */
        const char *flags_help;     /* the OPTIONS block, pre-formatted; may be NULL */
        cli_run_fn run;             /* NULL for a group */
        const struct cli_command *const *subcommands; /* NULL-terminated, for a group */
};

/* Command groups (one file each). */
extern const struct cli_command cli_version_command;
extern const struct cli_command cli_namespaces_command;
extern const struct cli_command cli_plugins_command;
extern const struct cli_command cli_containers_command; /* containers.c */
extern const struct cli_command cli_events_command;     /* events.c */
extern const struct cli_command cli_run_command;        /* run.c */
extern const struct cli_command cli_tasks_command;      /* tasks.c */
extern const struct cli_command cli_content_command;    /* content.c */
extern const struct cli_command cli_images_command;     /* images.c */
extern const struct cli_command cli_leases_command;     /* leases.c */
extern const struct cli_command cli_snapshots_command;  /* snapshots.c */
extern const struct cli_command cli_images_pull_command; /* pull.c, in the images group */

/* Runs argv against cmd: a group dispatches to its subcommands (by name or alias) and prints help. */
int cli_dispatch(const struct cli_global *g, const struct cli_command *cmd, const char *path, int argc, char **argv);
/* True if name is cmd's name or one of its aliases. */
bool cli_command_matches(const struct cli_command *cmd, const char *name);
/* Prints a command's help (urfave/cli's layout) to stdout. */
void cli_print_command_help(const struct cli_global *g, const struct cli_command *cmd, const char *path);

/* Prints "<prog>: <message>" to stderr as ctr does for a failed command, and returns 1. */
int cli_fail(const struct cli_global *g, const struct error *err);
int cli_failf(const struct cli_global *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Connects to g->address with the namespace header and the --timeout deadline set for every call.
 * On failure prints ctr's message and returns -errno. */
int cli_connect(const struct cli_global *g, struct grpc_client **ret);

/* Go time.ParseDuration ("10s", "1m30s", "250ms", "0"); -EINVAL otherwise. */
int cli_parse_duration_ms(const char *s, int *ret_ms);

/* ctr's commands.ObjectWithLabelArgs: argv[0] is the object, the rest are key=value (no '=' means an empty
 * value). *ret_labels is a new strv of key, value pairs in argument order (later duplicates win). */
void cli_object_with_labels(int argc, char **argv, const char **ret_object, char ***ret_labels);

/* Parses a command's flags with getopt_long ('+': stop at the first argument, like urfave/cli). On return
 * *ret_optind indexes the first positional argument. Unknown flags print ctr's "flag provided but not defined"
 * and return -EINVAL; -h/--help prints the command's help and returns 1. */
struct cli_flag {
        const char *long_name; /* "quiet" */
        char short_name;       /* 'q' or 0 */
        bool has_arg;
        bool *set;             /* for boolean flags */
        const char **value;    /* for flags with an argument */
};
int cli_parse_flags(const struct cli_global *g, const struct cli_command *cmd, const char *path,
                    const struct cli_flag *flags, int argc, char **argv, int *ret_optind);
/* The start of most commands: cli_parse_flags, then cli_connect. Returns CLI_GO to go on with *ret connected,
 * else the exit status to return at once (0 after --help, 1 on a bad flag or a failed connection). */
#define CLI_GO (-1)
int cli_begin(const struct cli_global *g, const struct cli_command *cmd, const char *path, const struct cli_flag *flags,
              int argc, char **argv, int *ret_optind, struct grpc_client **ret);

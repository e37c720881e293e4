/* krill plugins (plugin) ls: the daemon's plugins, as `ctr plugins ls` prints them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/tabwriter.h"
#include "github.com/containerd/containerd/api/services/introspection/v1/introspection.pb-c.h"
#include "proto/status.h"
#include "util/alloc.h"
#include "util/cleanup.h"

typedef Containerd__Services__Introspection__V1__Plugin Plugin;

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ctr's prettyPlatforms: "os/arch[/variant]", deduplicated, sorted, joined by ','. New string. */
static char *pretty_platforms(const Plugin *p)
{
        _cleanup_free_ char **v = xcalloc(p->n_platforms + 1, sizeof(char *));
        size_t n = 0;
        for (size_t i = 0; i < p->n_platforms; i++) {
                const Containerd__Types__Platform *pl = p->platforms[i];
                char *s = pl->variant && pl->variant[0]
                                  ? xasprintf("%s/%s/%s", pl->os, pl->architecture, pl->variant)
                                  : xasprintf("%s/%s", pl->os, pl->architecture);
                bool dup = false;
                for (size_t j = 0; j < n && !dup; j++)
                        dup = strcmp(v[j], s) == 0;
                if (dup)
                        free(s);
                else
                        v[n++] = s;
        }
        qsort(v, n, sizeof(char *), cmp_str);
        char *out = xstrdup("");
        for (size_t i = 0; i < n; i++) {
                char *t = xasprintf("%s%s%s", out, i ? "," : "", v[i]);
                free(out);
                free(v[i]);
                out = t;
        }
        return out;
}

static void print_detailed(struct cli_tabwriter *w, Containerd__Services__Introspection__V1__PluginsResponse *resp)
{
        for (size_t i = 0; i < resp->n_plugins; i++) {
                const Plugin *p = resp->plugins[i];
                /* Go's Fprintln puts a space between operands, hence "Type:\t <type>" */
                if (i > 0)
                        cli_tabwriter_write(w, "\t\t\t\n");
                cli_tabwriter_printf(w, "Type:\t %s\n", p->type);
                cli_tabwriter_printf(w, "ID:\t %s\n", p->id);
                if (p->n_requires > 0) {
                        cli_tabwriter_write(w, "Requires:\t\n");
                        for (size_t j = 0; j < p->n_requires; j++)
                                cli_tabwriter_printf(w, "\t %s\n", p->requires[j]);
                }
                if (p->n_platforms > 0) {
                        _cleanup_free_ char *pl = pretty_platforms(p);
                        cli_tabwriter_printf(w, "Platforms:\t %s\n", pl);
                }
                if (p->n_exports > 0) {
                        cli_tabwriter_write(w, "Exports:\t\n");
                        for (size_t j = 0; j < p->n_exports; j++)
                                cli_tabwriter_printf(w, "\t %s \t %s\n", p->exports[j]->key, p->exports[j]->value);
                }
                if (p->n_capabilities > 0) {
                        cli_tabwriter_write(w, "Capabilities:\t ");
                        for (size_t j = 0; j < p->n_capabilities; j++)
                                cli_tabwriter_printf(w, "%s%s", j ? "," : "", p->capabilities[j]);
                        cli_tabwriter_write(w, "\n");
                }
                if (p->init_err) {
                        cli_tabwriter_write(w, "Error:\t\n");
                        cli_tabwriter_printf(w, "\t Code:\t %s\n", status_code_name((enum grpc_code)p->init_err->code));
                        cli_tabwriter_printf(w, "\t Message:\t %s\n", p->init_err->message ? p->init_err->message : "");
                }
        }
}

static int run_list(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        _cleanup_error_ struct error *err = NULL;
        struct grpc_client *c = NULL;
        ProtobufCMessage *msg = NULL;
        bool quiet = false, detailed = false;
        int optind_;
        const struct cli_flag flags[] = {
                {"quiet", 'q', false, &quiet, NULL},
                {"detailed", 'd', false, &detailed, NULL},
                {NULL, 0, false, NULL, NULL},
        };

        int r = cli_begin(g, cmd, "krill plugins list", flags, argc, argv, &optind_, &c);
        if (r != CLI_GO)
                return r;
        Containerd__Services__Introspection__V1__PluginsRequest req =
                CONTAINERD__SERVICES__INTROSPECTION__V1__PLUGINS_REQUEST__INIT;
        req.n_filters = (size_t)(argc - optind_);
        req.filters = argv + optind_;
        r = grpc_client_unary(c, "/containerd.services.introspection.v1.Introspection/Plugins", NULL, &req.base,
                              &containerd__services__introspection__v1__plugins_response__descriptor, &msg, &err);
        grpc_client_free(c);
        if (r < 0)
                return cli_fail(g, err);
        Containerd__Services__Introspection__V1__PluginsResponse *resp = (void *)msg;

        if (quiet) {
                for (size_t i = 0; i < resp->n_plugins; i++)
                        printf("%s\n", resp->plugins[i]->id);
                protobuf_c_message_free_unpacked(msg, NULL);
                return 0;
        }
        struct cli_tabwriter *w = cli_tabwriter_new(stdout, 4, 8, 4, ' ');
        if (detailed) {
                print_detailed(w, resp);
        } else {
                cli_tabwriter_write(w, "TYPE\tID\tPLATFORMS\tSTATUS\t\n");
                for (size_t i = 0; i < resp->n_plugins; i++) {
                        const Plugin *p = resp->plugins[i];
                        const char *status = "ok";
                        if (p->init_err)
                                status = p->init_err->message && strstr(p->init_err->message, "skip plugin")
                                                 ? "skip"
                                                 : "error";
                        _cleanup_free_ char *pl = p->n_platforms ? pretty_platforms(p) : xstrdup("-");
                        cli_tabwriter_printf(w, "%s\t%s\t%s\t%s\t\n", p->type, p->id, pl, status);
                }
        }
        r = cli_tabwriter_flush(w);
        cli_tabwriter_free(w);
        protobuf_c_message_free_unpacked(msg, NULL);
        return r < 0 ? 1 : 0;
}

static const struct cli_command list_command = {
        .name = "list",
        .aliases = (const char *const[]){"ls", NULL},
        .usage = "lists containerd plugins",
        .flags_help = "   --quiet, -q     print only the plugin ids\n"
                      "   --detailed, -d  print detailed information about each plugin\n",
        .run = run_list,
};

const struct cli_command cli_plugins_command = {
        .name = "plugins",
        .aliases = (const char *const[]){"plugin", NULL},
        .usage = "provides information about containerd plugins",
        .subcommands = (const struct cli_command *const[]){&list_command, NULL},
};

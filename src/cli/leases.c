/* krill leases: list, create, delete (ctr leases). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/content_client.h"
#include "cli/tabwriter.h"
#include "github.com/containerd/containerd/api/services/leases/v1/leases.pb-c.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/strv.h"

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Go's Time.Local().Format(time.RFC3339). */
static char *rfc3339_local(const Google__Protobuf__Timestamp *t)
{
        time_t s = t ? (time_t)t->seconds : 0;
        struct tm tm;
        localtime_r(&s, &tm);
        char base[64];
        strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
        if (tm.tm_gmtoff == 0)
                return xasprintf("%sZ", base);
        long off = tm.tm_gmtoff;
        char sign = off < 0 ? '-' : '+';
        if (off < 0)
                off = -off;
        return xasprintf("%s%c%02ld:%02ld", base, sign, off / 3600, (off % 3600) / 60);
}

static int run_list(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        _cleanup_error_ struct error *err = NULL;
        bool quiet = false;
        const struct cli_flag flags[] = {{"quiet", 'q', false, &quiet, NULL}, {NULL, 0, false, NULL, NULL}};
        struct grpc_client *c = NULL;
        ProtobufCMessage *resp = NULL;
        int optind_;
        int r = cli_begin(g, cmd, "krill leases list", flags, argc, argv, &optind_, &c);
        if (r != CLI_GO)
                return r;
        Containerd__Services__Leases__V1__ListRequest req = CONTAINERD__SERVICES__LEASES__V1__LIST_REQUEST__INIT;
        req.n_filters = (size_t)(argc - optind_);
        req.filters = argv + optind_;
        r = grpc_client_unary(c, "/containerd.services.leases.v1.Leases/List", NULL, &req.base,
                              &containerd__services__leases__v1__list_response__descriptor, &resp, &err);
        grpc_client_free(c);
        if (r < 0) {
                error_wrap(&err, "failed to list leases");
                return cli_fail(g, err);
        }
        Containerd__Services__Leases__V1__ListResponse *lr = (void *)resp;
        if (quiet) {
                for (size_t i = 0; i < lr->n_leases; i++)
                        printf("%s\n", lr->leases[i]->id);
                protobuf_c_message_free_unpacked(resp, NULL);
                return 0;
        }
        struct cli_tabwriter *tw = cli_tabwriter_new(stdout, 1, 8, 1, ' ');
        cli_tabwriter_write(tw, "ID\tCREATED AT\tLABELS\t\n");
        for (size_t i = 0; i < lr->n_leases; i++) {
                Containerd__Services__Leases__V1__Lease *l = lr->leases[i];
                _cleanup_free_ char *labels = NULL;
                if (l->n_labels) {
                        _cleanup_free_ char **kv = xcalloc(l->n_labels + 1, sizeof(char *));
                        for (size_t j = 0; j < l->n_labels; j++)
                                kv[j] = xasprintf("%s=%s", l->labels[j]->key, l->labels[j]->value);
                        qsort(kv, l->n_labels, sizeof(char *), cmp_str);
                        labels = strv_join(kv, ",");
                        for (size_t j = 0; j < l->n_labels; j++)
                                free(kv[j]);
                } else {
                        labels = xstrdup("-");
                }
                _cleanup_free_ char *ts = rfc3339_local(l->created_at);
                cli_tabwriter_printf(tw, "%s\t%s\t%s\t\n", l->id, ts, labels);
        }
        r = cli_tabwriter_flush(tw);
        cli_tabwriter_free(tw);
        protobuf_c_message_free_unpacked(resp, NULL);
        return r < 0 ? 1 : 0;
}

static int run_create(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        _cleanup_error_ struct error *err = NULL;
        const char *id = NULL, *expires = NULL;
        const struct cli_flag flags[] = {
            {"id", 0, true, NULL, &id}, {"expires", 'x', true, NULL, &expires}, {NULL, 0, false, NULL, NULL}};
        struct grpc_client *c = NULL;
        _cleanup_strv_free_ char **labels = NULL;
        int optind_;
        int r = cli_parse_flags(g, cmd, "krill leases create", flags, argc, argv, &optind_);
        if (r != 0)
                return r < 0 ? 1 : 0;
        int exp_ms = 24 * 3600 * 1000;
        if (expires && cli_parse_duration_ms(expires, &exp_ms) < 0)
                return cli_failf(g, "invalid value \"%s\" for flag -expires: parse error", expires);
        for (int i = optind_; i < argc; i++) {
                const char *eq = strchr(argv[i], '=');
                strv_push(&labels, eq ? xstrndup(argv[i], (size_t)(eq - argv[i])) : xstrdup(argv[i]));
                strv_extend(&labels, eq ? eq + 1 : "");
        }
        if (exp_ms > 0) {
                /* leases.WithExpiration: containerd.io/gc.expire = now + d, RFC3339 UTC */
                time_t t = time(NULL) + exp_ms / 1000;
                struct tm tm;
                char buf[64];
                gmtime_r(&t, &tm);
                strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
                strv_extend(&labels, "containerd.io/gc.expire");
                strv_extend(&labels, buf);
        }
        if (cli_connect(g, &c) < 0)
                return 1;
        struct cli_lease l;
        r = cli_lease_create(c, id && id[0] ? id : NULL, labels, &l, &err);
        grpc_client_free(c);
        if (r < 0) {
                error_wrap(&err, "failed to create lease");
                return cli_fail(g, err);
        }
        printf("%s\n", l.id);
        cli_lease_done(&l);
        return 0;
}

static int run_delete(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        bool sync = false;
        const struct cli_flag flags[] = {{"sync", 0, false, &sync, NULL}, {NULL, 0, false, NULL, NULL}};
        struct grpc_client *c = NULL;
        int optind_;
        int r = cli_begin(g, cmd, "krill leases delete", flags, argc, argv, &optind_, &c);
        if (r != CLI_GO)
                return r;
        for (int i = optind_; i < argc; i++) {
                _cleanup_error_ struct error *err = NULL;
                struct cli_lease l = {.id = xstrdup(argv[i])};
                r = cli_lease_delete(c, &l, sync, &err);
                if (r < 0) {
                        grpc_client_free(c);
                        error_wrap(&err, "failed to delete lease");
                        return cli_fail(g, err);
                }
                printf("%s\n", argv[i]);
        }
        grpc_client_free(c);
        return 0;
}

static const struct cli_command list_command = {
    .name = "list",
    .aliases = (const char *const[]){"ls", NULL},
    .usage = "list all active leases",
    .args_usage = "[flags] <filter>",
    .flags_help = "   --quiet, -q  print only the blob digest\n",
    .run = run_list,
};

static const struct cli_command create_command = {
    .name = "create",
    .usage = "create lease",
    .args_usage = "[flags] <label>=<value> ...",
    .flags_help = "   --id value                 set the id for the lease, will be generated by default\n"
                  "   --expires value, -x value  expiration of lease (0 value will not expire) (default: 24h0m0s)\n",
    .run = run_create,
};

static const struct cli_command delete_command = {
    .name = "delete",
    .aliases = (const char *const[]){"del", "remove", "rm", NULL},
    .usage = "delete a lease",
    .args_usage = "[flags] <lease id> ...",
    .flags_help = "   --sync  Synchronously remove leases and all unreferenced resources\n",
    .run = run_delete,
};

const struct cli_command cli_leases_command = {
    .name = "leases",
    .usage = "manage leases",
    .subcommands = (const struct cli_command *const[]){&list_command, &create_command, &delete_command, NULL},
};

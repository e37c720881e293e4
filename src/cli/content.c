/* krill content: list, get, delete, label, active (ctr content). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/content_client.h"
#include "cli/tabwriter.h"
#include "github.com/containerd/containerd/api/services/content/v1/content.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/log.h"
#include "util/strv.h"

#define CONTENT_PATH(m) "/containerd.services.content.v1.Content/" m

/* go-units HumanSize: decimal units, 4 significant digits. */
static void human_size(int64_t n, char *buf, size_t len)
{
        static const char *const units[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"};
        double size = (double)n;
        size_t i = 0;
        while (size >= 1000.0 && i < sizeof(units) / sizeof(units[0]) - 1) {
                size /= 1000.0;
                i++;
        }
        snprintf(buf, len, "%.4g%s", size, units[i]);
}

/* go-units HumanDuration. */
static void human_duration(double secs, char *buf, size_t len)
{
        long s = (long)secs;
        long minutes = (long)(secs / 60);
        long hours = (long)(secs / 3600 + 0.5);
        if (s < 1)
                snprintf(buf, len, "Less than a second");
        else if (s == 1)
                snprintf(buf, len, "1 second");
        else if (s < 60)
                snprintf(buf, len, "%ld seconds", s);
        else if (minutes == 1)
                snprintf(buf, len, "About a minute");
        else if (minutes < 60)
                snprintf(buf, len, "%ld minutes", minutes);
        else if (hours == 1)
                snprintf(buf, len, "About an hour");
        else if (hours < 48)
                snprintf(buf, len, "%ld hours", hours);
        else if (hours < 24 * 7 * 2)
                snprintf(buf, len, "%ld days", hours / 24);
        else if (hours < 24 * 30 * 2)
                snprintf(buf, len, "%ld weeks", hours / 24 / 7);
        else if (hours < 24 * 365 * 2)
                snprintf(buf, len, "%ld months", hours / 24 / 30);
        else
                snprintf(buf, len, "%ld years", (long)(secs / 3600) / 24 / 365);
}

static double since(const Google__Protobuf__Timestamp *t)
{
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        if (!t)
                return (double)now.tv_sec;
        return (double)(now.tv_sec - t->seconds) + (double)(now.tv_nsec - t->nanos) / 1e9;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_list(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        _cleanup_error_ struct error *err = NULL;
        bool quiet = false;
        const struct cli_flag flags[] = {{"quiet", 'q', false, &quiet, NULL}, {NULL, 0, false, NULL, NULL}};
        struct grpc_client *c = NULL;
        struct grpc_stream *s = NULL;
        int optind_;
        int r = cli_begin(g, cmd, "krill content list", flags, argc, argv, &optind_, &c);
        if (r != CLI_GO)
                return r;
        Containerd__Services__Content__V1__ListContentRequest req =
            CONTAINERD__SERVICES__CONTENT__V1__LIST_CONTENT_REQUEST__INIT;
        req.n_filters = (size_t)(argc - optind_);
        req.filters = argv + optind_;
        r = grpc_client_stream_open(c, CONTENT_PATH("List"), NULL,
                                    &containerd__services__content__v1__list_content_response__descriptor, &s, &err);
        if (r >= 0)
                r = grpc_stream_send(s, &req.base, &err);
        if (r >= 0)
                r = grpc_stream_close_send(s, &err);
        struct cli_tabwriter *tw = quiet ? NULL : cli_tabwriter_new(stdout, 1, 8, 1, '\t');
        if (tw)
                cli_tabwriter_write(tw, "DIGEST\tSIZE\tAGE\tLABELS\n");
        while (r >= 0) {
                ProtobufCMessage *m = NULL;
                r = grpc_stream_recv(s, 0, &m, &err);
                if (r <= 0)
                        break;
                Containerd__Services__Content__V1__ListContentResponse *lr = (void *)m;
                for (size_t i = 0; i < lr->n_info; i++) {
                        Containerd__Services__Content__V1__Info *info = lr->info[i];
                        if (quiet) {
                                printf("%s\n", info->digest);
                                continue;
                        }
                        char sz[32], age[64];
                        human_size(info->size, sz, sizeof(sz));
                        human_duration(since(info->created_at), age, sizeof(age));
                        /* Go prints the label map in random order; sorted is one of those orders */
                        _cleanup_free_ char **kv = xcalloc(info->n_labels + 1, sizeof(char *));
                        for (size_t j = 0; j < info->n_labels; j++)
                                kv[j] = xasprintf("%s=%s", info->labels[j]->key, info->labels[j]->value);
                        qsort(kv, info->n_labels, sizeof(char *), cmp_str);
                        _cleanup_free_ char *labels = info->n_labels ? strv_join(kv, ",") : xstrdup("-");
                        for (size_t j = 0; j < info->n_labels; j++)
                                free(kv[j]);
                        cli_tabwriter_printf(tw, "%s\t%s\t%s\t%s\n", info->digest, sz, age, labels);
                }
                protobuf_c_message_free_unpacked(m, NULL);
        }
        if (s)
                grpc_stream_free(s);
        grpc_client_free(c);
        if (tw) {
                cli_tabwriter_flush(tw);
                cli_tabwriter_free(tw);
        }
        return r < 0 ? cli_fail(g, err) : 0;
}

static int run_get(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        _cleanup_error_ struct error *err = NULL;
        struct grpc_client *c = NULL;
        int optind_;
        int r = cli_parse_flags(g, cmd, "krill content get", NULL, argc, argv, &optind_);
        if (r != 0)
                return r < 0 ? 1 : 0;
        const char *d = optind_ < argc ? argv[optind_] : "";
        if (digest_validate(d, &err) < 0)
                return cli_fail(g, err);
        if (cli_connect(g, &c) < 0)
                return 1;
        /* ctr opens a ReaderAt: Info first, so a missing blob fails before any output */
        r = cli_content_info(c, NULL, d, NULL, NULL, &err);
        if (r >= 0)
                r = cli_content_read_to_fd(c, NULL, d, STDOUT_FILENO, &err);
        grpc_client_free(c);
        return r < 0 ? cli_fail(g, err) : 0;
}

static int run_delete(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        struct grpc_client *c = NULL;
        _cleanup_free_ char *exit_err = NULL;
        int optind_;
        int r = cli_begin(g, cmd, "krill content delete", NULL, argc, argv, &optind_, &c);
        if (r != CLI_GO)
                return r;
        for (int i = optind_; i < argc; i++) {
                _cleanup_error_ struct error *err = NULL;
                ProtobufCMessage *resp = NULL;
                r = digest_validate(argv[i], &err);
                if (r >= 0) {
                        Containerd__Services__Content__V1__DeleteContentRequest req =
                            CONTAINERD__SERVICES__CONTENT__V1__DELETE_CONTENT_REQUEST__INIT;
                        req.digest = argv[i];
                        r = grpc_client_unary(c, CONTENT_PATH("Delete"), NULL, &req.base,
                                              &google__protobuf__empty__descriptor, &resp, &err);
                        if (resp)
                                protobuf_c_message_free_unpacked(resp, NULL);
                        if (r == -ENOENT)
                                continue;
                }
                if (r < 0) {
                        _cleanup_free_ char *msg = error_message(err);
                        const struct log_field f[] = {{"error", msg}, {NULL, NULL}};
                        log_fields(LOG_LEVEL_ERROR, f, "could not delete %s", argv[i]);
                        if (!exit_err)
                                exit_err = xstrdup(msg);
                        continue;
                }
                printf("%s\n", argv[i]);
                fflush(stdout);
        }
        grpc_client_free(c);
        return exit_err ? cli_failf(g, "%s", exit_err) : 0;
}

static int run_label(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        _cleanup_error_ struct error *err = NULL;
        _cleanup_strv_free_ char **labels = NULL;
        _cleanup_strv_free_ char **after = NULL;
        struct grpc_client *c = NULL;
        const char *object;
        int optind_;
        int r = cli_parse_flags(g, cmd, "krill content label", NULL, argc, argv, &optind_);
        if (r != 0)
                return r < 0 ? 1 : 0;
        cli_object_with_labels(argc - optind_, argv + optind_, &object, &labels);
        if (digest_validate(object, &err) < 0)
                return cli_fail(g, err);
        if (cli_connect(g, &c) < 0)
                return 1;
        if (labels && labels[0])
                r = cli_content_set_labels(c, NULL, object, labels, &err);
        if (r >= 0)
                r = cli_content_info(c, NULL, object, NULL, &after, &err);
        grpc_client_free(c);
        if (r < 0)
                return cli_fail(g, err);
        _cleanup_strv_free_ char **kv = NULL;
        for (size_t i = 0; after && after[i]; i += 2)
                strv_extendf(&kv, "%s=%s", after[i], after[i + 1]);
        strv_sort(kv);
        _cleanup_free_ char *line = kv ? strv_join(kv, ",") : xstrdup("");
        printf("%s\n", line);
        return 0;
}

static int run_active(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        _cleanup_error_ struct error *err = NULL;
        const char *timeout = NULL, *root = NULL;
        const struct cli_flag flags[] = {
            {"timeout", 't', true, NULL, &timeout}, {"root", 0, true, NULL, &root}, {NULL, 0, false, NULL, NULL}};
        struct grpc_client *c = NULL;
        ProtobufCMessage *resp = NULL;
        int optind_;
        int r = cli_begin(g, cmd, "krill content active", flags, argc, argv, &optind_, &c);
        if (r != CLI_GO)
                return r;
        Containerd__Services__Content__V1__ListStatusesRequest req =
            CONTAINERD__SERVICES__CONTENT__V1__LIST_STATUSES_REQUEST__INIT;
        req.n_filters = (size_t)(argc - optind_);
        req.filters = argv + optind_;
        r = grpc_client_unary(c, CONTENT_PATH("ListStatuses"), NULL, &req.base,
                              &containerd__services__content__v1__list_statuses_response__descriptor, &resp, &err);
        grpc_client_free(c);
        if (r < 0)
                return cli_fail(g, err);
        Containerd__Services__Content__V1__ListStatusesResponse *lr = (void *)resp;
        struct cli_tabwriter *tw = cli_tabwriter_new(stdout, 1, 8, 1, '\t');
        cli_tabwriter_write(tw, "REF\tSIZE\tAGE\t\n");
        for (size_t i = 0; i < lr->n_statuses; i++) {
                char sz[32], age[64];
                human_size(lr->statuses[i]->offset, sz, sizeof(sz));
                human_duration(since(lr->statuses[i]->started_at), age, sizeof(age));
                cli_tabwriter_printf(tw, "%s\t%s\t%s\t\n", lr->statuses[i]->ref, sz, age);
        }
        cli_tabwriter_flush(tw);
        cli_tabwriter_free(tw);
        protobuf_c_message_free_unpacked(resp, NULL);
        return 0;
}

static const struct cli_command active_command = {
    .name = "active",
    .usage = "display active transfers",
    .args_usage = "[flags] [<regexp>]",
    .flags_help = "   --timeout value, -t value  total timeout for fetch (default: 0s)\n"
                  "   --root value               path to content store root (default: \"/tmp/content\")\n",
    .run = run_active,
};

static const struct cli_command delete_command = {
    .name = "delete",
    .aliases = (const char *const[]){"del", "remove", "rm", NULL},
    .usage = "permanently delete one or more blobs",
    .args_usage = "[<digest>, ...]",
    .run = run_delete,
};

static const struct cli_command get_command = {
    .name = "get",
    .usage = "get the data for an object",
    .args_usage = "[<digest>, ...]",
    .run = run_get,
};

static const struct cli_command list_command = {
    .name = "list",
    .aliases = (const char *const[]){"ls", NULL},
    .usage = "list all blobs in the store",
    .args_usage = "[flags]",
    .flags_help = "   --quiet, -q  print only the blob digest\n",
    .run = run_list,
};

static const struct cli_command label_command = {
    .name = "label",
    .usage = "add labels to content",
    .args_usage = "<digest> [<label>=<value> ...]",
    .run = run_label,
};

const struct cli_command cli_content_command = {
    .name = "content",
    .usage = "manage content",
    .subcommands = (const struct cli_command *const[]){&active_command, &delete_command, &get_command, &list_command,
                                                       &label_command, NULL},
};

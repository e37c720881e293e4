/* krill snapshots (snapshot): commit, info, list, mounts, prepare, delete, label, usage, view
 * (ctr snapshots). --snapshotter is a flag of the group, as in ctr. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/archive.h"
#include "cli/cli.h"
#include "cli/images.h"
#include "cli/tabwriter.h"
#include "github.com/containerd/containerd/api/services/snapshots/v1/snapshots.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/json.h"
#include "util/log.h"
#include "util/strv.h"

#define SN_PATH(m) "/containerd.services.snapshots.v1.Snapshots/" m

typedef Containerd__Services__Snapshots__V1__Info Info;

static const char *snapshotter_flag; /* the group's --snapshotter; the CLI is single-threaded */

static const char *kind_name(Containerd__Services__Snapshots__V1__Kind k)
{
        switch (k) {
        case CONTAINERD__SERVICES__SNAPSHOTS__V1__KIND__VIEW:
                return "View";
        case CONTAINERD__SERVICES__SNAPSHOTS__V1__KIND__ACTIVE:
                return "Active";
        case CONTAINERD__SERVICES__SNAPSHOTS__V1__KIND__COMMITTED:
                return "Committed";
        default:
                return "Unknown";
        }
}

static int connect_sn(const struct cli_global *g, struct grpc_client **c, char **sn)
{
        if (cli_connect(g, c) < 0)
                return -1;
        *sn = cli_images_resolve_snapshotter(*c, g, snapshotter_flag);
        return 0;
}

static int run_list(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        _cleanup_error_ struct error *err = NULL;
        _cleanup_free_ char *sn = NULL;
        struct grpc_client *c = NULL;
        struct grpc_stream *s = NULL;
        int optind_;
        int r = cli_parse_flags(g, cmd, "krill snapshots list", NULL, argc, argv, &optind_);
        if (r != 0)
                return r < 0 ? 1 : 0;
        if (connect_sn(g, &c, &sn) < 0)
                return 1;
        Containerd__Services__Snapshots__V1__ListSnapshotsRequest req =
            CONTAINERD__SERVICES__SNAPSHOTS__V1__LIST_SNAPSHOTS_REQUEST__INIT;
        req.snapshotter = sn;
        r = grpc_client_stream_open(c, SN_PATH("List"), NULL,
                                    &containerd__services__snapshots__v1__list_snapshots_response__descriptor, &s,
                                    &err);
        if (r >= 0)
                r = grpc_stream_send(s, &req.base, &err);
        if (r >= 0)
                r = grpc_stream_close_send(s, &err);
        struct cli_tabwriter *tw = cli_tabwriter_new(stdout, 1, 8, 1, ' ');
        cli_tabwriter_write(tw, "KEY\tPARENT\tKIND\t\n");
        while (r >= 0) {
                ProtobufCMessage *m = NULL;
                r = grpc_stream_recv(s, 0, &m, &err);
                if (r <= 0)
                        break;
                Containerd__Services__Snapshots__V1__ListSnapshotsResponse *lr = (void *)m;
                for (size_t i = 0; i < lr->n_info; i++)
                        cli_tabwriter_printf(tw, "%s\t%s\t%s\t\n", lr->info[i]->name,
                                             lr->info[i]->parent ? lr->info[i]->parent : "",
                                             kind_name(lr->info[i]->kind));
                protobuf_c_message_free_unpacked(m, NULL);
        }
        if (s)
                grpc_stream_free(s);
        grpc_client_free(c);
        if (r < 0) {
                cli_tabwriter_free(tw);
                return cli_fail(g, err);
        }
        r = cli_tabwriter_flush(tw);
        cli_tabwriter_free(tw);
        return r < 0 ? 1 : 0;
}

static void print_mounts(const char *target, Containerd__Types__Mount **mounts, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                /* options is not NULL-terminated in protobuf-c: join by count */
                _cleanup_free_ char *opts = xstrdup("");
                for (size_t j = 0; j < mounts[i]->n_options; j++) {
                        char *t = xasprintf("%s%s%s", opts, j ? "," : "", mounts[i]->options[j]);
                        free(opts);
                        opts = t;
                }
                printf("mount -t %s %s %s -o %s\n", mounts[i]->type, mounts[i]->source, target, opts);
        }
}

static void print_mounts_json(Containerd__Types__Mount **mounts, size_t n)
{
        _cleanup_json_ json_t *a = json_array();
        for (size_t i = 0; i < n; i++) {
                json_t *m = json_object();
                json_object_set_new(m, "Type", json_string(mounts[i]->type));
                json_object_set_new(m, "Source", json_string(mounts[i]->source));
                json_t *o = json_array();
                for (size_t j = 0; j < mounts[i]->n_options; j++)
                        json_array_append_new(o, json_string(mounts[i]->options[j]));
                json_object_set_new(m, "Options", n ? o : json_null());
                json_array_append_new(a, m);
        }
        char *s = json_dumps(a, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
        printf("%s\n", s ? s : "null");
        free(s);
}

static char *gc_root_now(void)
{
        time_t t = time(NULL);
        struct tm tm;
        char buf[64];
        gmtime_r(&t, &tm);
        strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
        return xstrdup(buf);
}

static int prepare_or_view(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv, bool view)
{
        _cleanup_error_ struct error *err = NULL;
        _cleanup_free_ char *sn = NULL;
        const char *target = NULL;
        bool json_mounts = false;
        const struct cli_flag flags[] = {{"target", 't', true, NULL, &target},
                                         {"mounts", 0, false, &json_mounts, NULL},
                                         {NULL, 0, false, NULL, NULL}};
        struct grpc_client *c = NULL;
        ProtobufCMessage *resp = NULL;
        int optind_;
        int r = cli_parse_flags(g, cmd, view ? "krill snapshots view" : "krill snapshots prepare", flags, argc, argv,
                                &optind_);
        if (r != 0)
                return r < 0 ? 1 : 0;
        int narg = argc - optind_;
        if (narg < 1 || narg > 2)
                return cli_failf(g, "%s", "please provide key and parent");
        const char *key = argv[optind_];
        const char *parent = narg == 2 ? argv[optind_ + 1] : "";
        if (connect_sn(g, &c, &sn) < 0)
                return 1;
        _cleanup_free_ char *now = gc_root_now();
        size_t n_mounts;
        Containerd__Types__Mount **mounts;
        if (view) {
                Containerd__Services__Snapshots__V1__ViewSnapshotRequest req =
                    CONTAINERD__SERVICES__SNAPSHOTS__V1__VIEW_SNAPSHOT_REQUEST__INIT;
                req.snapshotter = sn;
                req.key = (char *)key;
                req.parent = (char *)parent;
                r = grpc_client_unary(c, SN_PATH("View"), NULL, &req.base,
                                      &containerd__services__snapshots__v1__view_snapshot_response__descriptor, &resp,
                                      &err);
        } else {
                Containerd__Services__Snapshots__V1__PrepareSnapshotRequest__LabelsEntry e =
                    CONTAINERD__SERVICES__SNAPSHOTS__V1__PREPARE_SNAPSHOT_REQUEST__LABELS_ENTRY__INIT;
                Containerd__Services__Snapshots__V1__PrepareSnapshotRequest__LabelsEntry *ep = &e;
                e.key = (char *)"containerd.io/gc.root";
                e.value = now;
                Containerd__Services__Snapshots__V1__PrepareSnapshotRequest req =
                    CONTAINERD__SERVICES__SNAPSHOTS__V1__PREPARE_SNAPSHOT_REQUEST__INIT;
                req.snapshotter = sn;
                req.key = (char *)key;
                req.parent = (char *)parent;
                req.n_labels = 1;
                req.labels = &ep;
                r = grpc_client_unary(c, SN_PATH("Prepare"), NULL, &req.base,
                                      &containerd__services__snapshots__v1__prepare_snapshot_response__descriptor,
                                      &resp, &err);
        }
        grpc_client_free(c);
        if (r < 0)
                return cli_fail(g, err);
        /* Prepare and View responses have the same layout */
        Containerd__Services__Snapshots__V1__PrepareSnapshotResponse *pr = (void *)resp;
        n_mounts = pr->n_mounts;
        mounts = pr->mounts;
        if (target && target[0])
                print_mounts(target, mounts, n_mounts);
        if (json_mounts)
                print_mounts_json(mounts, n_mounts);
        protobuf_c_message_free_unpacked(resp, NULL);
        return 0;
}

static int run_prepare(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        return prepare_or_view(g, cmd, argc, argv, false);
}

static int run_view(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        return prepare_or_view(g, cmd, argc, argv, true);
}

static int run_mounts(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        _cleanup_error_ struct error *err = NULL;
        _cleanup_free_ char *sn = NULL;
        struct grpc_client *c = NULL;
        ProtobufCMessage *resp = NULL;
        int optind_;
        int r = cli_parse_flags(g, cmd, "krill snapshots mounts", NULL, argc, argv, &optind_);
        if (r != 0)
                return r < 0 ? 1 : 0;
        if (argc - optind_ != 2)
                return cli_failf(g, "must provide mount target and key");
        if (connect_sn(g, &c, &sn) < 0)
                return 1;
        Containerd__Services__Snapshots__V1__MountsRequest req =
            CONTAINERD__SERVICES__SNAPSHOTS__V1__MOUNTS_REQUEST__INIT;
        req.snapshotter = sn;
        req.key = argv[optind_ + 1];
        r = grpc_client_unary(c, SN_PATH("Mounts"), NULL, &req.base,
                              &containerd__services__snapshots__v1__mounts_response__descriptor, &resp, &err);
        grpc_client_free(c);
        if (r < 0)
                return cli_fail(g, err);
        Containerd__Services__Snapshots__V1__MountsResponse *mr = (void *)resp;
        print_mounts(argv[optind_], mr->mounts, mr->n_mounts);
        protobuf_c_message_free_unpacked(resp, NULL);
        return 0;
}

static int run_commit(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        _cleanup_error_ struct error *err = NULL;
        _cleanup_free_ char *sn = NULL;
        struct grpc_client *c = NULL;
        ProtobufCMessage *resp = NULL;
        int optind_;
        int r = cli_parse_flags(g, cmd, "krill snapshots commit", NULL, argc, argv, &optind_);
        if (r != 0)
                return r < 0 ? 1 : 0;
        if (argc - optind_ != 2)
                return cli_failf(g, "must provide name and active key");
        if (connect_sn(g, &c, &sn) < 0)
                return 1;
        _cleanup_free_ char *now = gc_root_now();
        Containerd__Services__Snapshots__V1__CommitSnapshotRequest__LabelsEntry e =
            CONTAINERD__SERVICES__SNAPSHOTS__V1__COMMIT_SNAPSHOT_REQUEST__LABELS_ENTRY__INIT;
        Containerd__Services__Snapshots__V1__CommitSnapshotRequest__LabelsEntry *ep = &e;
        e.key = (char *)"containerd.io/gc.root";
        e.value = now;
        Containerd__Services__Snapshots__V1__CommitSnapshotRequest req =
            CONTAINERD__SERVICES__SNAPSHOTS__V1__COMMIT_SNAPSHOT_REQUEST__INIT;
        req.snapshotter = sn;
        req.name = argv[optind_];
        req.key = argv[optind_ + 1];
        req.n_labels = 1;
        req.labels = &ep;
        r = grpc_client_unary(c, SN_PATH("Commit"), NULL, &req.base, &google__protobuf__empty__descriptor, &resp, &err);
        grpc_client_free(c);
        if (r < 0)
                return cli_fail(g, err);
        protobuf_c_message_free_unpacked(resp, NULL);
        return 0;
}

static int run_delete(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        _cleanup_free_ char *sn = NULL;
        struct grpc_client *c = NULL;
        int optind_;
        int r = cli_parse_flags(g, cmd, "krill snapshots delete", NULL, argc, argv, &optind_);
        if (r != 0)
                return r < 0 ? 1 : 0;
        if (connect_sn(g, &c, &sn) < 0)
                return 1;
        for (int i = optind_; i < argc; i++) {
                _cleanup_error_ struct error *err = NULL;
                ProtobufCMessage *resp = NULL;
                Containerd__Services__Snapshots__V1__RemoveSnapshotRequest req =
                    CONTAINERD__SERVICES__SNAPSHOTS__V1__REMOVE_SNAPSHOT_REQUEST__INIT;
                req.snapshotter = sn;
                req.key = argv[i];
                r = grpc_client_unary(c, SN_PATH("Remove"), NULL, &req.base, &google__protobuf__empty__descriptor,
                                      &resp, &err);
                if (r < 0) {
                        grpc_client_free(c);
                        error_wrap(&err, "failed to remove \"%s\"", argv[i]);
                        return cli_fail(g, err);
                }
                protobuf_c_message_free_unpacked(resp, NULL);
        }
        grpc_client_free(c);
        return 0;
}

static void fmt_time(const Google__Protobuf__Timestamp *t, char *buf, size_t len)
{
        time_t s = t ? (time_t)t->seconds : 0;
        struct tm tm;
        char base[40];
        gmtime_r(&s, &tm);
        strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
        int nanos = t ? t->nanos : 0;
        if (nanos == 0) {
                snprintf(buf, len, "%sZ", base);
                return;
        }
        char frac[16];
        snprintf(frac, sizeof(frac), "%09d", nanos % 1000000000);
        for (int i = 8; i > 0 && frac[i] == '0'; i--)
                frac[i] = '\0';
        snprintf(buf, len, "%s.%sZ", base, frac);
}

static int run_info(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        _cleanup_error_ struct error *err = NULL;
        _cleanup_free_ char *sn = NULL;
        struct grpc_client *c = NULL;
        ProtobufCMessage *resp = NULL;
        int optind_;
        int r = cli_parse_flags(g, cmd, "krill snapshots info", NULL, argc, argv, &optind_);
        if (r != 0)
                return r < 0 ? 1 : 0;
        if (argc - optind_ != 1)
                return cli_failf(g, "usage: ctr snapshots info <key>");
        if (connect_sn(g, &c, &sn) < 0)
                return 1;
        Containerd__Services__Snapshots__V1__StatSnapshotRequest req =
            CONTAINERD__SERVICES__SNAPSHOTS__V1__STAT_SNAPSHOT_REQUEST__INIT;
        req.snapshotter = sn;
        req.key = argv[optind_];
        r = grpc_client_unary(c, SN_PATH("Stat"), NULL, &req.base,
                              &containerd__services__snapshots__v1__stat_snapshot_response__descriptor, &resp, &err);
        grpc_client_free(c);
        if (r < 0)
                return cli_fail(g, err);
        Info *info = ((Containerd__Services__Snapshots__V1__StatSnapshotResponse *)resp)->info;
        _cleanup_json_ json_t *j = json_object();
        char ts[96];
        json_object_set_new(j, "Kind", json_string(kind_name(info->kind)));
        json_object_set_new(j, "Name", json_string(info->name ? info->name : ""));
        if (info->parent && info->parent[0])
                json_object_set_new(j, "Parent", json_string(info->parent));
        if (info->n_labels) {
                json_t *l = json_object();
                for (size_t i = 0; i < info->n_labels; i++)
                        json_object_set_new(l, info->labels[i]->key, json_string(info->labels[i]->value));
                json_object_set_new(j, "Labels", l);
        }
        fmt_time(info->created_at, ts, sizeof(ts));
        json_object_set_new(j, "Created", json_string(ts));
        fmt_time(info->updated_at, ts, sizeof(ts));
        json_object_set_new(j, "Updated", json_string(ts));
        char *s = json_dumps(j, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
        printf("%s\n", s);
        free(s);
        protobuf_c_message_free_unpacked(resp, NULL);
        return 0;
}

static int run_usage(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        _cleanup_error_ struct error *err = NULL;
        _cleanup_free_ char *sn = NULL;
        bool bytes = false;
        const struct cli_flag flags[] = {{"b", 0, false, &bytes, NULL}, {NULL, 0, false, NULL, NULL}};
        struct grpc_client *c = NULL;
        _cleanup_strv_free_ char **keys = NULL;
        int optind_;
        int r = cli_parse_flags(g, cmd, "krill snapshots usage", flags, argc, argv, &optind_);
        if (r != 0)
                return r < 0 ? 1 : 0;
        if (connect_sn(g, &c, &sn) < 0)
                return 1;
        if (optind_ < argc) {
                for (int i = optind_; i < argc; i++)
                        strv_extend(&keys, argv[i]);
        } else {
                struct grpc_stream *s = NULL;
                Containerd__Services__Snapshots__V1__ListSnapshotsRequest req =
                    CONTAINERD__SERVICES__SNAPSHOTS__V1__LIST_SNAPSHOTS_REQUEST__INIT;
                req.snapshotter = sn;
                r = grpc_client_stream_open(c, SN_PATH("List"), NULL,
                                            &containerd__services__snapshots__v1__list_snapshots_response__descriptor,
                                            &s, &err);
                if (r >= 0)
                        r = grpc_stream_send(s, &req.base, &err);
                if (r >= 0)
                        r = grpc_stream_close_send(s, &err);
                while (r >= 0) {
                        ProtobufCMessage *m = NULL;
                        r = grpc_stream_recv(s, 0, &m, &err);
                        if (r <= 0)
                                break;
                        Containerd__Services__Snapshots__V1__ListSnapshotsResponse *lr = (void *)m;
                        for (size_t i = 0; i < lr->n_info; i++)
                                strv_extend(&keys, lr->info[i]->name);
                        protobuf_c_message_free_unpacked(m, NULL);
                }
                if (s)
                        grpc_stream_free(s);
                if (r < 0) {
                        grpc_client_free(c);
                        return cli_fail(g, err);
                }
        }
        struct cli_tabwriter *tw = cli_tabwriter_new(stdout, 1, 8, 1, ' ');
        cli_tabwriter_write(tw, "KEY\tSIZE\tINODES\t\n");
        for (size_t i = 0; keys && keys[i]; i++) {
                ProtobufCMessage *resp = NULL;
                Containerd__Services__Snapshots__V1__UsageRequest req =
                    CONTAINERD__SERVICES__SNAPSHOTS__V1__USAGE_REQUEST__INIT;
                req.snapshotter = sn;
                req.key = keys[i];
                r = grpc_client_unary(c, SN_PATH("Usage"), NULL, &req.base,
                                      &containerd__services__snapshots__v1__usage_response__descriptor, &resp, &err);
                if (r < 0) {
                        grpc_client_free(c);
                        cli_tabwriter_free(tw);
                        return cli_fail(g, err);
                }
                Containerd__Services__Snapshots__V1__UsageResponse *u = (void *)resp;
                char sz[64];
                if (bytes)
                        snprintf(sz, sizeof(sz), "%lld", (long long)u->size);
                else
                        cli_format_bytes(u->size, sz, sizeof(sz));
                cli_tabwriter_printf(tw, "%s\t%s\t%lld\t\n", keys[i], sz, (long long)u->inodes);
                protobuf_c_message_free_unpacked(resp, NULL);
        }
        grpc_client_free(c);
        r = cli_tabwriter_flush(tw);
        cli_tabwriter_free(tw);
        return r < 0 ? 1 : 0;
}

static int run_label(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        typedef Containerd__Services__Snapshots__V1__Info__LabelsEntry Entry;
        _cleanup_error_ struct error *err = NULL;
        _cleanup_free_ char *sn = NULL;
        _cleanup_strv_free_ char **labels = NULL;
        _cleanup_strv_free_ char **paths = NULL;
        struct grpc_client *c = NULL;
        ProtobufCMessage *resp = NULL;
        const char *key;
        int optind_;
        int r = cli_parse_flags(g, cmd, "krill snapshots label", NULL, argc, argv, &optind_);
        if (r != 0)
                return r < 0 ? 1 : 0;
        cli_object_with_labels(argc - optind_, argv + optind_, &key, &labels);
        if (connect_sn(g, &c, &sn) < 0)
                return 1;
        size_t n = 0, np = 0;
        while (labels && labels[2 * n])
                n++;
        _cleanup_free_ Entry *entries = xcalloc(n + 1, sizeof(*entries));
        _cleanup_free_ Entry **ptrs = xcalloc(n + 1, sizeof(*ptrs));
        for (size_t i = 0; i < n; i++) {
                strv_extendf(&paths, "labels.%s", labels[2 * i]);
                if (labels[2 * i + 1][0] == '\0')
                        continue;
                containerd__services__snapshots__v1__info__labels_entry__init(&entries[np]);
                entries[np].key = labels[2 * i];
                entries[np].value = labels[2 * i + 1];
                ptrs[np] = &entries[np];
                np++;
        }
        Info *out;
        if (n == 0) {
                /* nothing to update: Stat, like ctr */
                Containerd__Services__Snapshots__V1__StatSnapshotRequest req =
                    CONTAINERD__SERVICES__SNAPSHOTS__V1__STAT_SNAPSHOT_REQUEST__INIT;
                req.snapshotter = sn;
                req.key = (char *)key;
                r = grpc_client_unary(c, SN_PATH("Stat"), NULL, &req.base,
                                      &containerd__services__snapshots__v1__stat_snapshot_response__descriptor, &resp,
                                      &err);
                out = r < 0 ? NULL : ((Containerd__Services__Snapshots__V1__StatSnapshotResponse *)resp)->info;
        } else {
                Info info = CONTAINERD__SERVICES__SNAPSHOTS__V1__INFO__INIT;
                info.name = (char *)key;
                info.n_labels = np;
                info.labels = ptrs;
                Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
                mask.n_paths = n;
                mask.paths = paths;
                Containerd__Services__Snapshots__V1__UpdateSnapshotRequest req =
                    CONTAINERD__SERVICES__SNAPSHOTS__V1__UPDATE_SNAPSHOT_REQUEST__INIT;
                req.snapshotter = sn;
                req.info = &info;
                req.update_mask = &mask;
                r = grpc_client_unary(c, SN_PATH("Update"), NULL, &req.base,
                                      &containerd__services__snapshots__v1__update_snapshot_response__descriptor, &resp,
                                      &err);
                out = r < 0 ? NULL : ((Containerd__Services__Snapshots__V1__UpdateSnapshotResponse *)resp)->info;
        }
        grpc_client_free(c);
        if (r < 0)
                return cli_fail(g, err);
        _cleanup_strv_free_ char **kv = NULL;
        for (size_t i = 0; out && i < out->n_labels; i++)
                strv_extendf(&kv, "%s=%s", out->labels[i]->key, out->labels[i]->value);
        strv_sort(kv);
        _cleanup_free_ char *line = kv ? strv_join(kv, ",") : xstrdup("");
        printf("%s\n", line);
        protobuf_c_message_free_unpacked(resp, NULL);
        return 0;
}

static const struct cli_command commit_command = {
    .name = "commit",
    .usage = "commit an active snapshot into the provided name",
    .args_usage = "<key> <active>",
    .run = run_commit,
};

static const struct cli_command info_command = {
    .name = "info",
    .usage = "get info about a snapshot",
    .args_usage = "<key>",
    .run = run_info,
};

static const struct cli_command list_command = {
    .name = "list",
    .aliases = (const char *const[]){"ls", NULL},
    .usage = "list snapshots",
    .run = run_list,
};

static const struct cli_command mounts_command = {
    .name = "mounts",
    .aliases = (const char *const[]){"m", "mount", NULL},
    .usage = "mount gets mount commands for the snapshots",
    .args_usage = "<target> <key>",
    .run = run_mounts,
};

static const struct cli_command prepare_command = {
    .name = "prepare",
    .usage = "prepare a snapshot from a committed snapshot",
    .args_usage = "[flags] <key> [<parent>]",
    .flags_help = "   --target value, -t value  mount target path, will print mount, if provided\n"
                  "   --mounts                  Print out snapshot mounts as JSON\n",
    .run = run_prepare,
};

static const struct cli_command delete_command = {
    .name = "delete",
    .aliases = (const char *const[]){"del", "remove", "rm", NULL},
    .usage = "remove snapshots",
    .args_usage = "<key> [<key>, ...]",
    .run = run_delete,
};

static const struct cli_command label_command = {
    .name = "label",
    .usage = "add labels to content",
    .args_usage = "<name> [<label>=<value> ...]",
    .run = run_label,
};

static const struct cli_command usage_command = {
    .name = "usage",
    .usage = "usage snapshots",
    .args_usage = "[flags] [<key>, ...]",
    .flags_help = "   -b  display size in bytes\n",
    .run = run_usage,
};

static const struct cli_command view_command = {
    .name = "view",
    .usage = "create a read-only snapshot from a committed snapshot",
    .args_usage = "[flags] <key> [<parent>]",
    .flags_help = "   --target value, -t value  mount target path, will print mount, if provided\n"
                  "   --mounts                  Print out snapshot mounts as JSON\n",
    .run = run_view,
};

static const struct cli_command snapshots_group = {
    .name = "snapshots",
    .aliases = (const char *const[]){"snapshot", NULL},
    .usage = "manage snapshots",
    .flags_help = "   --snapshotter value  snapshotter name. Empty value stands for the default value. "
                  "[$CONTAINERD_SNAPSHOTTER]\n",
    .subcommands = (const struct cli_command *const[]){&commit_command, &info_command, &list_command, &mounts_command,
                                                       &prepare_command, &delete_command, &label_command,
                                                       &usage_command, &view_command, NULL},
};

/* Takes the group's own --snapshotter flag, then dispatches like any group. */
static int run_group(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        (void)cmd;
        const char *env = getenv("CONTAINERD_SNAPSHOTTER");
        snapshotter_flag = env && env[0] ? env : NULL;
        int i = 1;
        while (i < argc) {
                if (strcmp(argv[i], "--snapshotter") == 0 || strcmp(argv[i], "-snapshotter") == 0) {
                        if (i + 1 >= argc)
                                return cli_failf(g, "flag needs an argument: %s", argv[i]);
                        snapshotter_flag = argv[i + 1];
                        i += 2;
                } else if (str_startswith(argv[i], "--snapshotter=")) {
                        snapshotter_flag = argv[i] + strlen("--snapshotter=");
                        i++;
                } else {
                        break;
                }
        }
        /* keep argv[0] (the group name) in front of the subcommand */
        argv[i - 1] = argv[0];
        return cli_dispatch(g, &snapshots_group, "krill snapshots", argc - (i - 1), argv + (i - 1));
}

const struct cli_command cli_snapshots_command = {
    .name = "snapshots",
    .aliases = (const char *const[]){"snapshot", NULL},
    .usage = "manage snapshots",
    .run = run_group,
};

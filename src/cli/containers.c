/* krill containers (c, container): create, delete, info, list, label (ctr containers). */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/run.h"
#include "cli/tabwriter.h"
#include "cli/tasks.h"
#include "github.com/containerd/containerd/api/services/containers/v1/containers.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "google/protobuf/field_mask.pb-c.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/strv.h"

#define CONTAINERS(m) "/containerd.services.containers.v1.Containers/" m

typedef Containerd__Services__Containers__V1__Container Container;

/* ctr's containerstore List: ListStream, or List when the daemon does not implement it. Fills a strv-like
 * array of messages to free and the containers inside them. */
struct container_list {
        ProtobufCMessage **msgs;
        size_t n_msgs;
        Container **items;
        size_t n;
};

static void container_list_done(struct container_list *l)
{
        for (size_t i = 0; i < l->n_msgs; i++)
                protobuf_c_message_free_unpacked(l->msgs[i], NULL);
        free(l->msgs);
        free(l->items);
}

static int list_containers(struct grpc_client *c, char **filters, size_t n_filters, struct container_list *l,
                           struct error **err)
{
        Containerd__Services__Containers__V1__ListContainersRequest req =
                CONTAINERD__SERVICES__CONTAINERS__V1__LIST_CONTAINERS_REQUEST__INIT;
        req.filters = filters;
        req.n_filters = n_filters;
        struct grpc_stream *s = NULL;
        _cleanup_error_ struct error *e = NULL;
        int r = grpc_client_stream_open(c, CONTAINERS("ListStream"), NULL,
                                        &containerd__services__containers__v1__list_container_message__descriptor, &s,
                                        &e);
        if (r >= 0)
                r = grpc_stream_send(s, &req.base, &e);
        if (r >= 0)
                r = grpc_stream_close_send(s, &e);
        while (r >= 0) {
                ProtobufCMessage *m = NULL;
                r = grpc_stream_recv(s, 0, &m, &e);
                if (r <= 0)
                        break;
                Containerd__Services__Containers__V1__ListContainerMessage *lm = (void *)m;
                l->msgs = xreallocarray(l->msgs, l->n_msgs + 1, sizeof(*l->msgs));
                l->msgs[l->n_msgs++] = m;
                if (lm->container) {
                        l->items = xreallocarray(l->items, l->n + 1, sizeof(*l->items));
                        l->items[l->n++] = lm->container;
                }
        }
        if (s)
                grpc_stream_free(s);
        if (r != -ENOSYS) {
                if (r < 0 && err)
                        *err = TAKE_PTR(e);
                return r;
        }
        container_list_done(l);
        memset(l, 0, sizeof(*l));
        ProtobufCMessage *resp = NULL;
        r = grpc_client_unary(c, CONTAINERS("List"), NULL, &req.base,
                              &containerd__services__containers__v1__list_containers_response__descriptor, &resp, err);
        if (r < 0)
                return r;
        Containerd__Services__Containers__V1__ListContainersResponse *lr = (void *)resp;
        l->msgs = xcalloc(1, sizeof(*l->msgs));
        l->msgs[0] = resp;
        l->n_msgs = 1;
        l->items = xcalloc(lr->n_containers + 1, sizeof(*l->items));
        memcpy(l->items, lr->containers, lr->n_containers * sizeof(*l->items));
        l->n = lr->n_containers;
        return 0;
}

static int run_list(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        _cleanup_error_ struct error *err = NULL;
        struct grpc_client *c = NULL;
        struct container_list l = {0};
        bool quiet = false;
        int optind_;
        const struct cli_flag flags[] = {{"quiet", 'q', false, &quiet, NULL}, {NULL, 0, false, NULL, NULL}};

        int r = cli_begin(g, cmd, "krill containers list", flags, argc, argv, &optind_, &c);
        if (r != CLI_GO)
                return r;
        r = list_containers(c, argv + optind_, (size_t)(argc - optind_), &l, &err);
        grpc_client_free(c);
        if (r < 0) {
                container_list_done(&l);
                return cli_fail(g, err);
        }
        if (quiet) {
                for (size_t i = 0; i < l.n; i++)
                        printf("%s\n", l.items[i]->id);
                container_list_done(&l);
                return 0;
        }
        struct cli_tabwriter *tw = cli_tabwriter_new(stdout, 4, 8, 4, ' ');
        cli_tabwriter_write(tw, "CONTAINER\tIMAGE\tRUNTIME\t\n");
        for (size_t i = 0; i < l.n; i++) {
                Container *ct = l.items[i];
                cli_tabwriter_printf(tw, "%s\t%s\t%s\t\n", ct->id, ct->image && ct->image[0] ? ct->image : "-",
                                     ct->runtime && ct->runtime->name ? ct->runtime->name : "");
        }
        r = cli_tabwriter_flush(tw);
        cli_tabwriter_free(tw);
        container_list_done(&l);
        return r < 0 ? 1 : 0;
}

static int get_container(struct grpc_client *c, const char *id, ProtobufCMessage **ret, Container **ret_ctr,
                         struct error **err)
{
        Containerd__Services__Containers__V1__GetContainerRequest req =
                CONTAINERD__SERVICES__CONTAINERS__V1__GET_CONTAINER_REQUEST__INIT;
        req.id = (char *)id;
        int r = grpc_client_unary(c, CONTAINERS("Get"), NULL, &req.base,
                                  &containerd__services__containers__v1__get_container_response__descriptor, ret, err);
        if (r < 0)
                return r;
        *ret_ctr = ((Containerd__Services__Containers__V1__GetContainerResponse *)*ret)->container;
        if (!*ret_ctr) {
                protobuf_c_message_free_unpacked(*ret, NULL);
                return error_set(err, EPROTO, "container \"%s\": empty response", id);
        }
        return 0;
}

static json_t *go_time(const Google__Protobuf__Timestamp *t)
{
        char date[64], buf[96];
        struct tm tm;
        time_t s = t ? (time_t)t->seconds : 0;
        if (!t)
                return json_string("0001-01-01T00:00:00Z");
        gmtime_r(&s, &tm);
        strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
        if (t->nanos) {
                /* RFC3339Nano drops trailing zeros */
                char frac[16];
                snprintf(frac, sizeof(frac), "%09d", t->nanos);
                size_t n = strlen(frac);
                while (n > 0 && frac[n - 1] == '0')
                        frac[--n] = '\0';
                snprintf(buf, sizeof(buf), "%s.%sZ", date, frac);
        } else {
                snprintf(buf, sizeof(buf), "%sZ", date);
        }
        return json_string(buf);
}

static json_t *any_json(const Google__Protobuf__Any *a)
{
        if (!a)
                return json_null();
        json_t *o = json_object();
        if (a->type_url && a->type_url[0])
                json_object_set_new(o, "type_url", json_string(a->type_url));
        if (a->value.len) {
                static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
                size_t n = a->value.len;
                char *b = xmalloc(4 * ((n + 2) / 3) + 1), *p = b;
                for (size_t i = 0; i < n; i += 3) {
                        uint32_t v = (uint32_t)a->value.data[i] << 16;
                        if (i + 1 < n)
                                v |= (uint32_t)a->value.data[i + 1] << 8;
                        if (i + 2 < n)
                                v |= a->value.data[i + 2];
                        *p++ = tbl[(v >> 18) & 63];
                        *p++ = tbl[(v >> 12) & 63];
                        *p++ = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
                        *p++ = i + 2 < n ? tbl[v & 63] : '=';
                }
                *p = '\0';
                json_object_set_new(o, "value", json_string(b));
                free(b);
        }
        return o;
}

static int cmp_label(const void *a, const void *b)
{
        return strcmp((*(Containerd__Services__Containers__V1__Container__LabelsEntry *const *)a)->key,
                      (*(Containerd__Services__Containers__V1__Container__LabelsEntry *const *)b)->key);
}

/* ctr containers info: containers.Container as Go's encoding/json renders it, with the decoded spec. */
char *cli_container_info_json(Container *ct, bool spec_only)
{
        json_t *spec = NULL;
        if (ct->spec && ct->spec->value.len && ct->spec->value.len < (16u << 20))
                spec = json_loadb((const char *)ct->spec->value.data, ct->spec->value.len, 0, NULL);
        json_t *o;
        if (spec_only) {
                o = spec ? spec : json_null();
        } else {
                o = json_object();
                json_object_set_new(o, "ID", json_string(ct->id));
                json_t *labels = json_object();
                qsort(ct->labels, ct->n_labels, sizeof(*ct->labels), cmp_label);
                for (size_t i = 0; i < ct->n_labels; i++)
                        json_object_set_new(labels, ct->labels[i]->key, json_string(ct->labels[i]->value));
                json_object_set_new(o, "Labels", ct->n_labels ? labels : (json_decref(labels), json_null()));
                json_object_set_new(o, "Image", json_string(ct->image ? ct->image : ""));
                json_t *rt = json_object();
                json_object_set_new(rt, "Name", json_string(ct->runtime && ct->runtime->name ? ct->runtime->name : ""));
                json_object_set_new(rt, "Options", any_json(ct->runtime ? ct->runtime->options : NULL));
                json_object_set_new(o, "Runtime", rt);
                json_object_set_new(o, "SnapshotKey", json_string(ct->snapshot_key ? ct->snapshot_key : ""));
                json_object_set_new(o, "Snapshotter", json_string(ct->snapshotter ? ct->snapshotter : ""));
                json_object_set_new(o, "CreatedAt", go_time(ct->created_at));
                json_object_set_new(o, "UpdatedAt", go_time(ct->updated_at));
                json_t *ext = json_null();
                if (ct->n_extensions) {
                        ext = json_object();
                        for (size_t i = 0; i < ct->n_extensions; i++)
                                json_object_set_new(ext, ct->extensions[i]->key, any_json(ct->extensions[i]->value));
                }
                json_object_set_new(o, "Extensions", ext);
                if (spec)
                        json_object_set_new(o, "Spec", spec);
        }
        char *s = json_dumps(o, JSON_INDENT(4) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
        json_decref(o);
        return s;
}

static int run_info(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        _cleanup_error_ struct error *err = NULL;
        struct grpc_client *c = NULL;
        ProtobufCMessage *resp = NULL;
        bool spec = false;
        int optind_;
        const struct cli_flag flags[] = {{"spec", 0, false, &spec, NULL}, {NULL, 0, false, NULL, NULL}};

        int r = cli_parse_flags(g, cmd, "krill containers info", flags, argc, argv, &optind_);
        if (r != 0)
                return r < 0 ? 1 : 0;
        if (optind_ >= argc)
                return cli_failf(g, "container id must be provided");
        if (cli_connect(g, &c) < 0)
                return 1;
        Container *ct;
        r = get_container(c, argv[optind_], &resp, &ct, &err);
        grpc_client_free(c);
        if (r < 0)
                return cli_fail(g, err);
        _cleanup_free_ char *s = cli_container_info_json(ct, spec);
        printf("%s\n", s);
        protobuf_c_message_free_unpacked(resp, NULL);
        return 0;
}

static int delete_one(struct grpc_client *c, const char *id, bool keep_snapshot, struct error **err)
{
        ProtobufCMessage *cresp = NULL, *tresp = NULL;
        Container *ct;
        int r = get_container(c, id, &cresp, &ct, err);
        if (r < 0)
                return r;
        Containerd__V1__Types__Process *p;
        r = cli_task_get(c, id, NULL, &tresp, &p, err);
        if (r >= 0) {
                int st = p->status;
                protobuf_c_message_free_unpacked(tresp, NULL);
                if (st != CONTAINERD__V1__TYPES__STATUS__STOPPED && st != CONTAINERD__V1__TYPES__STATUS__CREATED) {
                        /* ctr prints the task's Status struct */
                        _cleanup_free_ char *m = xasprintf(
                                "cannot delete a non stopped container: {%s 0 0001-01-01 00:00:00 +0000 UTC}",
                                st == CONTAINERD__V1__TYPES__STATUS__RUNNING ? "running" : "paused");
                        r = error_set_literal(err, EBUSY, m);
                        goto out;
                }
                r = cli_run_task_delete(c, id, NULL, err);
                if (r < 0 && r != -ENOENT)
                        goto out;
        } else if (r != -ENOENT) {
                goto out;
        }
        error_free(err);
        if (!keep_snapshot && ct->snapshot_key && ct->snapshot_key[0]) {
                r = cli_run_snapshot_remove(c, ct->snapshotter, ct->snapshot_key, err);
                if (r < 0 && r != -ENOENT)
                        goto out;
                error_free(err);
        }
        r = cli_run_container_delete(c, id, err);
out:
        protobuf_c_message_free_unpacked(cresp, NULL);
        return r;
}

static int run_delete(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        struct grpc_client *c = NULL;
        bool keep = false;
        int optind_, rc = 0;
        const struct cli_flag flags[] = {{"keep-snapshot", 0, false, &keep, NULL}, {NULL, 0, false, NULL, NULL}};

        int r = cli_parse_flags(g, cmd, "krill containers delete", flags, argc, argv, &optind_);
        if (r != 0)
                return r < 0 ? 1 : 0;
        if (optind_ >= argc)
                return cli_failf(g, "must specify at least one container to delete");
        if (cli_connect(g, &c) < 0)
                return 1;
        _cleanup_free_ char *first = NULL;
        for (int i = optind_; i < argc; i++) {
                _cleanup_error_ struct error *err = NULL;
                if (delete_one(c, argv[i], keep, &err) < 0) {
                        /* like ctr: log each, keep going, fail with the first */
                        _cleanup_free_ char *m = error_message(err);
                        const struct log_field f[] = {{"error", m}, {NULL, NULL}};
                        log_fields(LOG_LEVEL_ERROR, f, "failed to delete container \"%s\"", argv[i]);
                        if (!first)
                                first = xasprintf("%s", m);
                        rc = 1;
                }
        }
        grpc_client_free(c);
        if (first)
                return cli_failf(g, "%s", first);
        return rc;
}

static int run_label(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        _cleanup_error_ struct error *err = NULL;
        _cleanup_strv_free_ char **labels = NULL;
        struct grpc_client *c = NULL;
        ProtobufCMessage *resp = NULL;
        const char *id;
        int optind_;

        int r = cli_parse_flags(g, cmd, "krill containers label", NULL, argc, argv, &optind_);
        if (r != 0)
                return r < 0 ? 1 : 0;
        cli_object_with_labels(argc - optind_, argv + optind_, &id, &labels);
        if (!id || !id[0])
                return cli_failf(g, "container id must be provided");
        size_t n = 0;
        while (labels && labels[2 * n])
                n++;
        _cleanup_free_ Containerd__Services__Containers__V1__Container__LabelsEntry *entries =
                xcalloc(n + 1, sizeof(*entries));
        _cleanup_free_ Containerd__Services__Containers__V1__Container__LabelsEntry **eps = xcalloc(n + 1, sizeof(*eps));
        _cleanup_strv_free_ char **paths = NULL;
        size_t ne = 0;
        for (size_t i = 0; i < n; i++) {
                strv_extendf(&paths, "labels.%s", labels[2 * i]);
                if (!labels[2 * i + 1][0])
                        continue; /* an empty value removes the label */
                containerd__services__containers__v1__container__labels_entry__init(&entries[ne]);
                entries[ne].key = labels[2 * i];
                entries[ne].value = labels[2 * i + 1];
                eps[ne] = &entries[ne];
                ne++;
        }
        Container ct = CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__INIT;
        ct.id = (char *)id;
        ct.labels = eps;
        ct.n_labels = ne;
        Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
        mask.paths = paths;
        mask.n_paths = strv_length(paths);
        Containerd__Services__Containers__V1__UpdateContainerRequest req =
                CONTAINERD__SERVICES__CONTAINERS__V1__UPDATE_CONTAINER_REQUEST__INIT;
        req.container = &ct;
        req.update_mask = n ? &mask : NULL;
        if (cli_connect(g, &c) < 0)
                return 1;
        r = grpc_client_unary(c, CONTAINERS("Update"), NULL, &req.base,
                              &containerd__services__containers__v1__update_container_response__descriptor, &resp, &err);
        grpc_client_free(c);
        if (r < 0)
                return cli_fail(g, err);
        protobuf_c_message_free_unpacked(resp, NULL);
        return 0;
}

static const char *const list_aliases[] = {"ls", NULL};
static const char *const delete_aliases[] = {"del", "remove", "rm", NULL};
static const char *const containers_aliases[] = {"c", "container", NULL};

static const struct cli_command list_cmd = {.name = "list", .aliases = list_aliases, .usage = "list containers",
                                            .args_usage = "[flags] [<filter>, ...]",
                                            .flags_help = "   --quiet, -q  print only the container id\n",
                                            .run = run_list};
static const struct cli_command delete_cmd = {
        .name = "delete", .aliases = delete_aliases, .usage = "delete one or more existing containers",
        .args_usage = "[flags] CONTAINER [CONTAINER, ...]",
        .flags_help = "   --keep-snapshot  do not clean up snapshot with container\n", .run = run_delete};
static const struct cli_command info_cmd = {.name = "info", .usage = "get info about a container",
                                            .args_usage = "CONTAINER",
                                            .flags_help = "   --spec  only display the spec\n", .run = run_info};
static const struct cli_command label_cmd = {.name = "label", .usage = "set and clear labels for a container",
                                             .args_usage = "[flags] CONTAINER [<key>=<value>, ...]",
                                             .run = run_label};

static const struct cli_command *const containers_subcommands[] = {
        &cli_containers_create_command, &delete_cmd, &info_cmd, &list_cmd, &label_cmd, NULL,
};

const struct cli_command cli_containers_command = {
        .name = "containers",
        .aliases = containers_aliases,
        .usage = "manage containers",
        .subcommands = containers_subcommands,
};

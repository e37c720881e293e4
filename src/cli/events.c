/* krill events (event): ctr events. Subscribes to events.v1 and prints `TIMESTAMP NAMESPACE TOPIC JSON` per
 * envelope, the payload decoded from its Any and rendered the way Go's encoding/json renders containerd's
 * gogo-generated structs (proto field names, omitempty, timestamps as RFC 3339, bytes as base64, maps as
 * objects with sorted keys). */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/events.h"
#include "cli/cli.h"
#include "cli/events.h"
#include "github.com/containerd/containerd/api/events/container.pb-c.h"
#include "github.com/containerd/containerd/api/events/content.pb-c.h"
#include "github.com/containerd/containerd/api/events/image.pb-c.h"
#include "github.com/containerd/containerd/api/events/namespace.pb-c.h"
#include "github.com/containerd/containerd/api/events/snapshot.pb-c.h"
#include "github.com/containerd/containerd/api/events/task.pb-c.h"
#include "github.com/containerd/containerd/api/services/events/v1/events.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "util/alloc.h"
#include "util/digest.h"
#include "util/cleanup.h"
#include "util/log.h"

static void format_time(int64_t seconds, int32_t nanos, bool rfc3339, char *buf, size_t size)
{
        char date[64], frac[16] = "";
        struct tm tm;
        time_t t = (time_t)seconds;
        if (nanos < 0 || nanos > 999999999)
                nanos = 0;
        gmtime_r(&t, &tm);
        /* by hand: strftime's %Y does not pad year 1 (Go's zero time) to four digits */
        snprintf(date, sizeof(date), "%04d-%02d-%02d%c%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                 rfc3339 ? 'T' : ' ', tm.tm_hour, tm.tm_min, tm.tm_sec);
        if (nanos) {
                /* Go's .999999999 layouts drop trailing zeros */
                snprintf(frac, sizeof(frac), ".%09d", nanos);
                size_t n = strlen(frac);
                while (frac[n - 1] == '0')
                        frac[--n] = '\0';
        }
        snprintf(buf, size, rfc3339 ? "%s%sZ" : "%s%s +0000 UTC", date, frac);
}

void cli_go_time_string(int64_t seconds, int32_t nanos, char *buf, size_t size)
{
        format_time(seconds, nanos, false, buf, size);
}

static json_t *render_message(const ProtobufCMessage *m);

static bool is_timestamp(const ProtobufCFieldDescriptor *f)
{
        return f->type == PROTOBUF_C_TYPE_MESSAGE && f->descriptor == &google__protobuf__timestamp__descriptor;
}

static bool is_map_entry(const ProtobufCMessageDescriptor *d)
{
        size_t l = strlen(d->name);
        return d->n_fields == 2 && l > 5 && strcmp(d->name + l - 5, "Entry") == 0 &&
               strcmp(d->fields[0].name, "key") == 0 && strcmp(d->fields[1].name, "value") == 0;
}

/* One value of field f at p; NULL when Go's omitempty would drop it. */
static json_t *render_value(const ProtobufCFieldDescriptor *f, const void *p, bool in_repeated)
{
        switch (f->type) {
        case PROTOBUF_C_TYPE_INT32:
        case PROTOBUF_C_TYPE_SINT32:
        case PROTOBUF_C_TYPE_SFIXED32:
        case PROTOBUF_C_TYPE_ENUM: {
                int32_t v = *(const int32_t *)p;
                return v || in_repeated ? json_integer(v) : NULL;
        }
        case PROTOBUF_C_TYPE_UINT32:
        case PROTOBUF_C_TYPE_FIXED32: {
                uint32_t v = *(const uint32_t *)p;
                return v || in_repeated ? json_integer(v) : NULL;
        }
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64: {
                int64_t v = *(const int64_t *)p;
                return v || in_repeated ? json_integer(v) : NULL;
        }
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64: {
                uint64_t v = *(const uint64_t *)p;
                /* jansson integers are signed: print the huge ones as a real number would lose digits */
                return v || in_repeated ? json_integer((json_int_t)v) : NULL;
        }
        case PROTOBUF_C_TYPE_BOOL: {
                protobuf_c_boolean v = *(const protobuf_c_boolean *)p;
                return v || in_repeated ? json_boolean(v) : NULL;
        }
        case PROTOBUF_C_TYPE_FLOAT:
                return *(const float *)p != 0 || in_repeated ? json_real(*(const float *)p) : NULL;
        case PROTOBUF_C_TYPE_DOUBLE:
                return *(const double *)p != 0 || in_repeated ? json_real(*(const double *)p) : NULL;
        case PROTOBUF_C_TYPE_STRING: {
                const char *s = *(char *const *)p;
                return (s && s[0]) || in_repeated ? json_string(s ? s : "") : NULL;
        }
        case PROTOBUF_C_TYPE_BYTES: {
                const ProtobufCBinaryData *b = p;
                if (!b->len && !in_repeated)
                        return NULL;
                char *s = base64_encode_new(b->data, b->len);
                json_t *j = json_string(s);
                free(s);
                return j;
        }
        case PROTOBUF_C_TYPE_MESSAGE: {
                const ProtobufCMessage *m = *(ProtobufCMessage *const *)p;
                if (is_timestamp(f)) {
                        /* gogo stdtime, non-nullable: always present */
                        const Google__Protobuf__Timestamp *t = (const void *)m;
                        char buf[96];
                        format_time(t ? t->seconds : -62135596800LL, t ? t->nanos : 0, true, buf, sizeof(buf));
                        return json_string(buf);
                }
                if (!m)
                        return NULL;
                return render_message(m);
        }
        }
        return NULL;
}

static size_t type_size(ProtobufCType t)
{
        switch (t) {
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64:
                return 8;
        case PROTOBUF_C_TYPE_DOUBLE:
                return sizeof(double);
        case PROTOBUF_C_TYPE_BOOL:
                return sizeof(protobuf_c_boolean);
        case PROTOBUF_C_TYPE_STRING:
        case PROTOBUF_C_TYPE_MESSAGE:
                return sizeof(void *);
        case PROTOBUF_C_TYPE_BYTES:
                return sizeof(ProtobufCBinaryData);
        default:
                return 4;
        }
}

static int cmp_keys(const void *a, const void *b)
{
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static json_t *render_message(const ProtobufCMessage *m)
{
        const ProtobufCMessageDescriptor *d = m->descriptor;
        json_t *o = json_object();
        for (unsigned i = 0; i < d->n_fields; i++) {
                const ProtobufCFieldDescriptor *f = &d->fields[i];
                const char *base = (const char *)m;
                if (f->label == PROTOBUF_C_LABEL_REPEATED) {
                        size_t n = *(const size_t *)(base + f->quantifier_offset);
                        const char *arr = *(char *const *)(base + f->offset);
                        if (!n)
                                continue;
                        if (f->type == PROTOBUF_C_TYPE_MESSAGE && is_map_entry(f->descriptor)) {
                                /* a map: Go sorts the keys */
                                ProtobufCMessage *const *ents = (ProtobufCMessage *const *)arr;
                                const ProtobufCMessageDescriptor *ed = f->descriptor;
                                _cleanup_free_ const char **keys = xcalloc(n, sizeof(char *));
                                json_t *map = json_object();
                                for (size_t k = 0; k < n; k++) {
                                        const char *key =
                                                *(char *const *)((const char *)ents[k] + ed->fields[0].offset);
                                        keys[k] = key ? key : "";
                                        json_t *v = render_value(&ed->fields[1],
                                                                 (const char *)ents[k] + ed->fields[1].offset, true);
                                        json_object_set_new(map, keys[k], v ? v : json_null());
                                }
                                qsort(keys, n, sizeof(char *), cmp_keys);
                                json_t *sorted = json_object();
                                for (size_t k = 0; k < n; k++)
                                        json_object_set(sorted, keys[k], json_object_get(map, keys[k]));
                                json_decref(map);
                                json_object_set_new(o, f->name, sorted);
                                continue;
                        }
                        json_t *a = json_array();
                        size_t sz = type_size(f->type);
                        for (size_t k = 0; k < n; k++) {
                                json_t *v = render_value(f, arr + k * sz, true);
                                json_array_append_new(a, v ? v : json_null());
                        }
                        json_object_set_new(o, f->name, a);
                        continue;
                }
                if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
                    f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING &&
                    !*(const protobuf_c_boolean *)(base + f->quantifier_offset))
                        continue;
                json_t *v = render_value(f, base + f->offset, false);
                if (v)
                        json_object_set_new(o, f->name, v);
        }
        return o;
}

char *cli_event_json(const char *type_url, const uint8_t *data, size_t len)
{
        if (!type_url)
                return NULL;
        ProtobufCMessage *m = api_event_unpack(type_url, data, len); /* also "type.googleapis.com/..." */
        if (!m)
                return NULL;
        json_t *j = render_message(m);
        protobuf_c_message_free_unpacked(m, NULL);
        char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(j);
        return s;
}

char *cli_event_line(const Containerd__Services__Events__V1__Envelope *e)
{
        char ts[96];
        format_time(e->timestamp ? e->timestamp->seconds : -62135596800LL, e->timestamp ? e->timestamp->nanos : 0,
                    false, ts, sizeof(ts));
        _cleanup_free_ char *json = NULL;
        if (e->event) {
                json = cli_event_json(e->event->type_url, e->event->value.data, e->event->value.len);
                if (!json)
                        return NULL;
        }
        return xasprintf("%s %s %s %s", ts, e->namespace_ ? e->namespace_ : "", e->topic ? e->topic : "",
                         json ? json : "");
}

static int run_events(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        _cleanup_error_ struct error *err = NULL;
        struct grpc_client *c = NULL;
        struct grpc_stream *s = NULL;
        int optind_;

        int r = cli_begin(g, cmd, "krill events", NULL, argc, argv, &optind_, &c);
        if (r != CLI_GO)
                return r;
        Containerd__Services__Events__V1__SubscribeRequest req = CONTAINERD__SERVICES__EVENTS__V1__SUBSCRIBE_REQUEST__INIT;
        req.filters = argv + optind_;
        req.n_filters = (size_t)(argc - optind_);
        r = grpc_client_stream_open(c, "/containerd.services.events.v1.Events/Subscribe", NULL,
                                    &containerd__services__events__v1__envelope__descriptor, &s, &err);
        if (r >= 0)
                r = grpc_stream_send(s, &req.base, &err);
        if (r >= 0)
                r = grpc_stream_close_send(s, &err);
        while (r >= 0) {
                ProtobufCMessage *m = NULL;
                r = grpc_stream_recv(s, 0, &m, &err);
                if (r == 0) {
                        /* ctr treats the end of the stream as an error */
                        r = error_set_literal(&err, EPIPE, "EOF");
                        break;
                }
                if (r < 0)
                        break;
                Containerd__Services__Events__V1__Envelope *e = (void *)m;
                _cleanup_free_ char *line = cli_event_line(e);
                if (line) {
                        printf("%s\n", line);
                        fflush(stdout);
                } else {
                        const struct log_field f[] = {{"type_url", e->event ? e->event->type_url : ""},
                                                      {NULL, NULL}};
                        log_fields(LOG_LEVEL_WARN, f, "cannot unmarshal event");
                }
                protobuf_c_message_free_unpacked(m, NULL);
        }
        if (s)
                grpc_stream_free(s);
        grpc_client_free(c);
        return cli_fail(g, err);
}

static const char *const events_aliases[] = {"event", NULL};

const struct cli_command cli_events_command = {
        .name = "events",
        .aliases = events_aliases,
        .usage = "display containerd events",
        .args_usage = "[flags] [<filter>, ...]",
        .run = run_events,
};

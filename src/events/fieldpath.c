/* The `event.<path>` side of subscription filters: containerd's generated Field(fieldpath) methods
 * (protobuf/plugin/fieldpath) done by reflection over protobuf-c descriptors. The rules the plugin generates:
 * a string field is present when non-empty, a bool is always present as "true"/"false", a nested message
 * recurses, a `labels` map looks up the rest of the
 * path joined with '.', and everything else (numbers, timestamps, repeated fields) is unhandled. */
#include <string.h>

#include "api/events.h"
#include "events/events-internal.h"
#include "github.com/containerd/containerd/api/events/container.pb-c.h"
#include "github.com/containerd/containerd/api/events/content.pb-c.h"
#include "github.com/containerd/containerd/api/events/image.pb-c.h"
#include "github.com/containerd/containerd/api/events/namespace.pb-c.h"
#include "github.com/containerd/containerd/api/events/snapshot.pb-c.h"
#include "github.com/containerd/containerd/api/events/task.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"

ProtobufCMessage *events_decode_any(const Google__Protobuf__Any *any)
{
        if (!any || !any->type_url)
                return NULL;
        return api_event_unpack(any->type_url, any->value.data, any->value.len);
}

/* Does key equal path[0] "." path[1] ... (strings.Join(fieldpath[1:], "."))? */
static bool key_matches_path(const char *key, const char *const *path, size_t npath)
{
        for (size_t i = 0; i < npath; i++) {
                size_t l = strlen(path[i]);
                if (i > 0) {
                        if (*key != '.')
                                return false;
                        key++;
                }
                if (strncmp(key, path[i], l) != 0)
                        return false;
                key += l;
        }
        return *key == '\0';
}

static bool labels_lookup(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, const char *const *path,
                          size_t npath, const char **ret_value)
{
        size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
        ProtobufCMessage *const *entries = *(ProtobufCMessage *const *const *)((const char *)m + f->offset);
        const ProtobufCMessageDescriptor *ed = f->descriptor;
        const ProtobufCFieldDescriptor *kf, *vf;

        if (npath == 0 || n == 0 || !ed)
                return false;
        kf = protobuf_c_message_descriptor_get_field_by_name(ed, "key");
        vf = protobuf_c_message_descriptor_get_field_by_name(ed, "value");
        if (!kf || !vf || kf->type != PROTOBUF_C_TYPE_STRING || vf->type != PROTOBUF_C_TYPE_STRING)
                return false;
        for (size_t i = 0; i < n; i++) {
                const char *k = *(char *const *)((const char *)entries[i] + kf->offset);
                if (k && key_matches_path(k, path, npath)) {
                        const char *v = *(char *const *)((const char *)entries[i] + vf->offset);
                        *ret_value = v ? v : "";
                        return true;
                }
        }
        return false;
}

static bool message_field(const ProtobufCMessage *m, const char *const *path, size_t npath, const char **ret_value,
                          int depth)
{
        const ProtobufCFieldDescriptor *f;
        const void *member;

        if (!m || npath == 0 || depth > 8)
                return false;
        f = protobuf_c_message_descriptor_get_field_by_name(m->descriptor, path[0]);
        if (!f)
                return false;
        member = (const char *)m + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
                if (f->type == PROTOBUF_C_TYPE_MESSAGE && strcmp(f->name, "labels") == 0)
                        return labels_lookup(m, f, path + 1, npath - 1, ret_value);
                return false;
        }
        switch (f->type) {
        case PROTOBUF_C_TYPE_STRING: {
                const char *s = *(char *const *)member;
                if (npath != 1 || !s || !s[0])
                        return false;
                *ret_value = s;
                return true;
        }
        case PROTOBUF_C_TYPE_BOOL:
                if (npath != 1)
                        return false;
                *ret_value = *(const protobuf_c_boolean *)member ? "true" : "false";
                return true;
        case PROTOBUF_C_TYPE_MESSAGE: {
                const ProtobufCMessage *sub = *(ProtobufCMessage *const *)member;
                if (!sub || f->descriptor == &google__protobuf__timestamp__descriptor)
                        return false;
                /* runtime.options is an Any of a runtime's own type, which has no Field method in Go either
                 * unless it is registered; none of containerd's events nests one. */
                if (f->descriptor == &google__protobuf__any__descriptor)
                        return false;
                return message_field(sub, path + 1, npath - 1, ret_value, depth + 1);
        }
        default:
                return false;
        }
}

bool events_message_field(const ProtobufCMessage *m, const char *const *path, size_t npath, const char **ret_value)
{
        return message_field(m, path, npath, ret_value, 0);
}

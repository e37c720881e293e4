/* See events.h. One table for the daemon's event filters and the CLI's `events` output. */
#include "events.h"

#include <string.h>

#include "krill-api.h"

static const ProtobufCMessageDescriptor *const event_types[] = {
        &containerd__events__container_create__descriptor,
        &containerd__events__container_update__descriptor,
        &containerd__events__container_delete__descriptor,
        &containerd__events__content_delete__descriptor,
        &containerd__services__images__v1__image_create__descriptor,
        &containerd__services__images__v1__image_update__descriptor,
        &containerd__services__images__v1__image_delete__descriptor,
        &containerd__events__namespace_create__descriptor,
        &containerd__events__namespace_update__descriptor,
        &containerd__events__namespace_delete__descriptor,
        &containerd__events__snapshot_prepare__descriptor,
        &containerd__events__snapshot_commit__descriptor,
        &containerd__events__snapshot_remove__descriptor,
        &containerd__events__task_create__descriptor,
        &containerd__events__task_start__descriptor,
        &containerd__events__task_delete__descriptor,
        &containerd__events__task_io__descriptor,
        &containerd__events__task_exit__descriptor,
        &containerd__events__task_oom__descriptor,
        &containerd__events__task_exec_added__descriptor,
        &containerd__events__task_exec_started__descriptor,
        &containerd__events__task_paused__descriptor,
        &containerd__events__task_resumed__descriptor,
        &containerd__events__task_checkpointed__descriptor,
};

const ProtobufCMessageDescriptor *api_event_descriptor(const char *type_url)
{
        if (!type_url)
                return NULL;
        const char *slash = strrchr(type_url, '/');
        const char *name = slash ? slash + 1 : type_url;
        for (size_t i = 0; i < sizeof(event_types) / sizeof(event_types[0]); i++)
                if (strcmp(event_types[i]->name, name) == 0)
                        return event_types[i];
        return NULL;
}

ProtobufCMessage *api_event_unpack(const char *type_url, const uint8_t *data, size_t len)
{
        const ProtobufCMessageDescriptor *d = api_event_descriptor(type_url);
        return d ? protobuf_c_message_unpack(d, NULL, len, data) : NULL;
}

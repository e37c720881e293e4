/* containerd's event types (api/events, plus the images service's events), known by the typeurl names containerd
 * registers them under ("containerd.events.TaskExit"), for decoding the Any an envelope carries. */
#pragma once

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

/* The descriptor for a typeurl, also in the "type.googleapis.com/<name>" form; NULL when unknown. */
const ProtobufCMessageDescriptor *api_event_descriptor(const char *type_url);
/* Unpacks an event's bytes by its typeurl: a new message (protobuf_c_message_free_unpacked), or NULL when the type
 * is unknown or the bytes do not decode. */
ProtobufCMessage *api_event_unpack(const char *type_url, const uint8_t *data, size_t len);

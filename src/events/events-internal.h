/* Shared inside src/events only. Subscription filters use util/filters.h; events_message_field is the
 * `event.<path>` half of their field lookup. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#include "google/protobuf/any.pb-c.h"
#include "util/error.h"

/* Decodes an event Any whose type_url is one of containerd's event types (the api/events protos, by full name).
 * Returns a new message (protobuf_c_message_free_unpacked) or NULL if the type is unknown or the bytes bad. */
ProtobufCMessage *events_decode_any(const Google__Protobuf__Any *any);
/* containerd's generated Field(fieldpath) for event messages (fieldpath.c). *ret_value is borrowed from m or
 * static. */
bool events_message_field(const ProtobufCMessage *m, const char *const *path, size_t npath, const char **ret_value);

/* Shared inside src/events only.
 *
 * The filter matcher here is deliberately the same shape as src/metadata/filters.h (filter_parse /
 * filter_match / filter_free with a field-lookup callback): events may not link metadata (same layer,
 * STYLE.md section 2), so once the shared parser moves to src/util the exchange switches to it by renaming
 * these three calls and deleting filter.c. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#include "google/protobuf/any.pb-c.h"
#include "util/error.h"

struct events_filter;

/* Looks up a field path on the object being matched; true with *ret_value (borrowed) if present. */
typedef bool (*events_field_fn)(const char *const *path, size_t npath, const char **ret_value, void *userdata);

/* containerd filters.ParseAll: n strings OR'ed; each is `selector ("," selector)*` AND'ed, where
 * selector := fieldpath [("=="|"!="|"~=") value]; fieldpath := field ("." field)*; field := [A-Za-z0-9_]+ or
 * "quoted"; value := "quoted" | [^\s,.]+, and after ~= also /quoted/ or |quoted|. ~= is a POSIX extended
 * regexp (containerd uses RE2). No strings, or an empty string, matches everything.
 * -EINVAL with containerd's text, e.g. `filters: parse error: [topic==>|/|< x]: ...`. */
int events_filter_parse(char *const *strs, size_t n, struct events_filter **ret, struct error **err);
bool events_filter_match(const struct events_filter *f, events_field_fn lookup, void *userdata);
void events_filter_free(struct events_filter *f); /* NULL-safe */

/* Decodes an event Any whose type_url is one of containerd's event types (the api/events protos, by full name).
 * Returns a new message (protobuf_c_message_free_unpacked) or NULL if the type is unknown or the bytes bad. */
ProtobufCMessage *events_decode_any(const Google__Protobuf__Any *any);
/* containerd's generated Field(fieldpath) for event messages (fieldpath.c). *ret_value is borrowed from m or
 * static. */
bool events_message_field(const ProtobufCMessage *m, const char *const *path, size_t npath, const char **ret_value);

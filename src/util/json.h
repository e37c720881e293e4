/* Thin helpers over jansson: bounded loading (size and nesting depth checked before jansson sees the
 * text, so hostile input cannot make it recurse deeply) and typed getters that return errors.
 * Errors are EINVAL with messages like `json: too deep`, `json: "key": expected string`. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "util/error.h"

#define JSON_DEFAULT_MAX_BYTES (4u * 1024 * 1024)
#define JSON_DEFAULT_MAX_DEPTH 64u

/* jansson provides json_decrefp (NULL-safe) for cleanup attributes. */
#define _cleanup_json_ __attribute__((cleanup(json_decrefp)))

/* Parses exactly one JSON value from buf[0..len). Fails with -EINVAL and `json: too large (N bytes,
 * limit M)` when len > max_bytes, `json: too deep` when arrays/objects nest deeper than max_depth
 * (a top-level object is depth 1), or `json: <jansson text> at line L column C`. Accepts any top-level
 * value. On success *ret is a new reference. */
int json_load_bounded(const char *buf, size_t len, size_t max_bytes, unsigned max_depth, json_t **ret,
                      struct error **err);
/* Same with JSON_DEFAULT_MAX_BYTES / JSON_DEFAULT_MAX_DEPTH. */
int json_load(const char *buf, size_t len, json_t **ret, struct error **err);
/* Checks the nesting depth of raw JSON text without parsing it; returns 0 or -EINVAL. Exposed for tests. */
int json_check_depth(const char *buf, size_t len, unsigned max_depth, struct error **err);

/* Typed getters on an object. A missing key gives -ENOENT (`json: "key": not found` when rendered),
 * a present key of the wrong type -EINVAL (`json: "key": expected string`). *ret values are borrowed
 * from obj (strings live as long as obj). obj must be an object, else -EINVAL. */
int json_get_string(const json_t *obj, const char *key, const char **ret, struct error **err);
int json_get_int(const json_t *obj, const char *key, int64_t *ret, struct error **err);
/* Non-negative integer check. */
int json_get_uint(const json_t *obj, const char *key, uint64_t *ret, struct error **err);
int json_get_bool(const json_t *obj, const char *key, bool *ret, struct error **err);
int json_get_object(const json_t *obj, const char *key, json_t **ret, struct error **err);
int json_get_array(const json_t *obj, const char *key, json_t **ret, struct error **err);
/* Optional variants: a missing key (or JSON null) returns 0 and leaves *ret untouched (so the caller's
 * default stays); a wrong type is still -EINVAL. */
int json_get_string_opt(const json_t *obj, const char *key, const char **ret, struct error **err);
int json_get_int_opt(const json_t *obj, const char *key, int64_t *ret, struct error **err);
int json_get_bool_opt(const json_t *obj, const char *key, bool *ret, struct error **err);
/* String-to-string map (e.g. labels, annotations): returns a new NULL-terminated strv of alternating
 * key, value (in object iteration order), or -EINVAL if any value is not a string. Missing key -> empty. */
int json_get_string_map(const json_t *obj, const char *key, char ***ret_kv, struct error **err);
/* Array of strings -> new strv; missing key -> empty vector; non-string element -> -EINVAL. */
int json_get_string_array(const json_t *obj, const char *key, char ***ret, struct error **err);

/* Serialises compactly with keys in insertion order (JSON_COMPACT). Returns a new string. */
char *json_dump_compact(const json_t *j);

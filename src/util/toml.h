/* A TOML 1.0 parser for configuration files (containerd's config.toml shape), producing a tree.
 *
 * Supported: tables, arrays of tables, dotted and quoted keys, basic/literal/multi-line strings with
 * all escapes (\uXXXX, \UXXXXXXXX), integers (decimal, 0x, 0o, 0b, underscores), floats (exponents,
 * inf, nan), booleans, arrays (mixed types), inline tables, and offset/local date-times, dates and
 * times (kept as their text, validated). Redefinitions (duplicate keys, tables defined twice, extending
 * inline tables or static arrays) fail with the line and column. Input size and nesting depth are
 * bounded so that hostile input cannot exhaust memory or the stack.
 *
 * Trees are plain data: build one with toml_parse, read it from one thread at a time, free it with
 * toml_free. Every value remembers where it was defined (line/column) and whether the consumer has
 * "used" it, so a config loader can report the keys it did not understand (toml_unused_keys). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

#define TOML_MAX_INPUT (4u * 1024 * 1024) /* bytes */
#define TOML_MAX_DEPTH 128u               /* nesting of tables and arrays below the root */

enum toml_type {
        TOML_STRING,
        TOML_INTEGER,
        TOML_FLOAT,
        TOML_BOOLEAN,
        TOML_DATETIME,
        TOML_ARRAY,
        TOML_TABLE,
};

enum toml_datetime_kind {
        TOML_DATETIME_OFFSET,   /* 1979-05-27T07:32:00Z, 1979-05-27 00:32:00.999-07:00 */
        TOML_DATETIME_LOCAL,    /* 1979-05-27T07:32:00 */
        TOML_DATE_LOCAL,        /* 1979-05-27 */
        TOML_TIME_LOCAL,        /* 07:32:00 */
};

struct toml_value;

/* Parses buf[0..len) (need not be NUL-terminated). On success *ret_root is a new table owned by the
 * caller. Errors are -EINVAL with `toml: line L column C: <reason>` (columns count bytes from 1), e.g.
 * `toml: line 3 column 1: duplicate key name`; input over TOML_MAX_INPUT bytes is refused. */
int toml_parse(const char *buf, size_t len, struct toml_value **ret_root, struct error **err);
/* Reads (at most TOML_MAX_INPUT bytes, else -EFBIG) and parses dirfd/path; errors are prefixed with path. */
int toml_parse_file(int dirfd, const char *path, struct toml_value **ret_root, struct error **err);
/* Frees a whole tree (call it on the root only). NULL-safe; returns NULL. */
struct toml_value *toml_free(struct toml_value *v);
static inline void toml_freep(struct toml_value **v)
{
        if (*v)
                toml_free(*v);
}
#define _cleanup_toml_ __attribute__((cleanup(toml_freep)))

/* ---- inspection (all pointers borrowed from the tree) ---- */
enum toml_type toml_type(const struct toml_value *v);
const char *toml_type_name(enum toml_type t); /* "string", "integer", ..., "table" */
unsigned toml_line(const struct toml_value *v);
unsigned toml_column(const struct toml_value *v);
/* String or date-time text; NULL for other types. Strings may contain NUL (\u0000): see toml_string_len. */
const char *toml_string(const struct toml_value *v);
size_t toml_string_len(const struct toml_value *v);
int64_t toml_integer(const struct toml_value *v);  /* 0 unless TOML_INTEGER */
double toml_float(const struct toml_value *v);     /* TOML_FLOAT, or an integer converted; else 0 */
bool toml_boolean(const struct toml_value *v);     /* false unless TOML_BOOLEAN */
enum toml_datetime_kind toml_datetime_kind(const struct toml_value *v);

/* Tables keep their keys in document order. */
size_t toml_table_size(const struct toml_value *t);
const char *toml_table_key(const struct toml_value *t, size_t i);
struct toml_value *toml_table_value(const struct toml_value *t, size_t i);
/* Lookup by one key (not dotted). NULL if t is NULL, not a table, or has no such key. */
struct toml_value *toml_table_get(const struct toml_value *t, const char *key);
/* Lookup by a TOML key expression: `plugins."io.containerd.grpc.v1.cri".registry`. NULL if missing,
 * if the expression is not a valid key, or if an intermediate value is not a table. */
struct toml_value *toml_get_path(const struct toml_value *t, const char *dotted);
/* The table or array holding v; NULL for the root. */
struct toml_value *toml_parent(const struct toml_value *v);
size_t toml_array_size(const struct toml_value *a);
struct toml_value *toml_array_get(const struct toml_value *a, size_t i);
/* Returns a new string: the dotted key path of v from the root, keys quoted where TOML requires
 * (`plugins."io.containerd.grpc.v1.cri".sandbox_image`). Array elements share their array's path. */
char *toml_value_path(const struct toml_value *v);

/* ---- used-key tracking ---- */
/* Marks v (and with recursive, everything below it) as understood by the consumer. NULL-safe. */
void toml_mark_used(struct toml_value *v, bool recursive);
bool toml_is_used(const struct toml_value *v);
/* Returns a new strv of the paths of keys never marked used, in document order. A key whose value is
 * an unused table is reported once, without its children; used tables (and arrays) are searched. */
char **toml_unused_keys(const struct toml_value *root);

/* ---- typed getters for loaders: they mark the value used ----
 * Return 1 and set *ret when t has key with the right type, 0 when t is NULL or lacks key (*ret untouched),
 * -EINVAL when the type is wrong: `toml: line L column C: grpc.address: expected string, got integer`. */
int toml_get_string(struct toml_value *t, const char *key, const char **ret, struct error **err);
int toml_get_int(struct toml_value *t, const char *key, int64_t *ret, struct error **err);
/* Integer in [min, max], else -EINVAL `...: x: value N out of range`. */
int toml_get_int_range(struct toml_value *t, const char *key, int64_t min, int64_t max, int64_t *ret,
                       struct error **err);
int toml_get_float(struct toml_value *t, const char *key, double *ret, struct error **err); /* integers accepted */
int toml_get_bool(struct toml_value *t, const char *key, bool *ret, struct error **err);
int toml_get_table(struct toml_value *t, const char *key, struct toml_value **ret, struct error **err);
int toml_get_array(struct toml_value *t, const char *key, struct toml_value **ret, struct error **err);
/* Array of strings -> new strv (replacing nothing on 0/-EINVAL). Elements are marked used. */
int toml_get_string_array(struct toml_value *t, const char *key, char ***ret, struct error **err);

/* ---- writing TOML ---- */
/* Returns a new string: key bare if it matches [A-Za-z0-9_-]+, otherwise a basic quoted string. */
char *toml_format_key(const char *key);
/* Returns a new string: s as a TOML basic string with quotes and escapes (control characters as \uXXXX). */
char *toml_format_string(const char *s, size_t len);
/* Returns a new string: the whole tree as TOML (top-level keys one per line, nested tables inline).
 * Parsing the result gives an equal tree; used for round-trip tests and fuzzing. */
char *toml_dump(const struct toml_value *root);

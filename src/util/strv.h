/* NULL-terminated string vectors (char **) and small string helpers.
 * A strv owns its strings and the array; strv_free()/_cleanup_strv_free_ live in util/cleanup.h.
 * The empty vector may be represented by NULL: every function here accepts NULL as "no strings". */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "util/cleanup.h"

size_t strv_length(char *const *v);
/* Appends s, taking ownership of s. *v may be NULL (a new vector is created). */
void strv_push(char ***v, char *s);
/* Appends a copy of s. */
void strv_extend(char ***v, const char *s);
/* Appends a formatted string. */
void strv_extendf(char ***v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends copies of every string of other. */
void strv_extend_strv(char ***v, char *const *other);
/* Returns a new deep copy (NULL for NULL or empty input gives an empty vector, never NULL). */
char **strv_copy(char *const *v);
/* Returns a new empty vector (just the NULL terminator). */
char **strv_new_empty(void);
bool strv_contains(char *const *v, const char *s);
/* Index of s in v or -1. */
long strv_find(char *const *v, const char *s);
/* Removes every occurrence of s (frees them); returns how many were removed. */
size_t strv_remove(char **v, const char *s);
/* Returns a new string: the strings joined by sep ("" for an empty vector). */
char *strv_join(char *const *v, const char *sep);
/* Splits s at every occurrence of the separator string sep (non-empty). Empty fields are kept
 * ("a,,b" gives "a","","b"); an empty s gives an empty vector. Returns a new vector. */
char **strv_split(const char *s, const char *sep);
/* Sorts in place by strcmp. */
void strv_sort(char **v);
/* Removes adjacent duplicates (sort first for full uniqueness). */
void strv_uniq(char **v);
bool strv_equal(char *const *a, char *const *b);

bool str_startswith(const char *s, const char *prefix);
bool str_endswith(const char *s, const char *suffix);
/* Returns a new string quoted the way Go's %q / strconv.Quote does (for messages that must match
 * containerd's: `identifier "a b" must match ...`). Valid UTF-8 is kept; invalid bytes become \xNN. */
char *str_go_quote(const char *s);

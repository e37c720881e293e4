/* containerd's filter syntax (filters/parser.go), parsed once into a matcher.
 *
 *   selectors := selector ("," selector)*          all must match
 *   selector  := fieldpath [operator value]         no operator: the field must be present
 *   fieldpath := field ("." field)*                 field: [A-Za-z0-9_]+ or "quoted"
 *   operator  := "==" | "!=" | "~="                 ~= is a POSIX extended regexp (Go uses RE2)
 *   value     := quoted | [^\s,]+                   quotes: "..." (and /.../ or |...| after ~=)
 * Several filter strings are OR'ed (ParseAll); no strings, or one empty string, matches everything.
 * Pure functions, thread-safe once built. Used by metadata (list filters) and events (subscriptions): the
 * lookup callback decides what a field path means, e.g. events resolves `event.<path>` on the decoded event.
 * A ~= regexp that glibc would expand to gigabytes (stacked quantifiers, large nested counts) never matches. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "util/error.h"

struct filter;

/* Looks up a field path on the object being matched. Return true and set *ret_value (borrowed; may be "")
 * if present. */
typedef bool (*filter_field_fn)(const char *const *path, size_t npath, const char **ret_value, void *userdata);

/* Parses n strings. -EINVAL with containerd's message, e.g.
 * `filters: parse error: [name==>|,|<]: expected value or quoted: invalid argument`. */
int filter_parse(char *const *strs, size_t n, struct filter **ret, struct error **err);
bool filter_match(const struct filter *f, filter_field_fn lookup, void *userdata);
void filter_free(struct filter *f); /* NULL-safe */
static inline void filter_freep(struct filter **f)
{
        if (*f)
                filter_free(*f);
}

/* Adaptor helper for the common objects: looks path up as
 * "labels.<k>" in labels (a {k,v,...,NULL} vector), or a top-level field among names[i]/values[i]. */
bool filter_lookup_common(const char *const *path, size_t npath, const char **ret_value, char *const *labels,
                          const char *const *names, const char *const *values, size_t nfields);

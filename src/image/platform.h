/* Platforms (os/arch/variant) the way containerd 1.6's platforms package treats them: normalisation
 * (x86_64 -> amd64, aarch64 -> arm64 with v8 folded to "", armhf -> arm/v7, arm defaults to v7), parsing
 * of specifiers ("linux", "arm64", "linux/arm64/v8"), the host default, and the ordered matcher used to
 * choose the best manifest of an index (platforms.Only: the platform itself first, then what it can also
 * run: amd64 v3 -> v2 -> v1 -> 386, arm v7 -> v6 -> v5, arm64 -> arm v8 ... v5).
 * Pure functions except image_platform_default (reads /proc/cpuinfo on arm). Never logs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "util/error.h"

struct image_platform {
        char *os;
        char *arch;
        char *variant; /* NULL or "" when none */
};

void image_platform_clear(struct image_platform *p);
void image_platform_copy(struct image_platform *dst, const struct image_platform *src);

/* Normalises in place (containerd Normalize): lower case, known aliases; an empty os becomes "linux". */
void image_platform_normalize(struct image_platform *p);

/* containerd platforms.Parse. -EINVAL with containerd's messages:
 * `"x y" is an invalid component of "x y/..": platform specifier component must match "^[A-Za-z0-9_-]+$"`,
 * `"foo": unknown operating system or architecture`, `"a/b/c/d": cannot parse platform specifier`,
 * `"*": wildcards not yet supported`. *ret filled (new strings) only on success. */
int image_platform_parse(const char *spec, struct image_platform *ret, struct error **err);

/* "os/arch[/variant]", or "unknown" without an os; new string. */
char *image_platform_format(const struct image_platform *p);

/* The host's platform (linux/<arch>[/variant]), new strings. */
void image_platform_default(struct image_platform *ret);

/* Ordered matcher (platforms.Only for one platform, platforms.Ordered for several). */
struct image_platform_matcher;
struct image_platform_matcher *image_platform_matcher_new_only(const struct image_platform *p);
/* Matches every platform (--all-platforms). */
struct image_platform_matcher *image_platform_matcher_new_all(void);
struct image_platform_matcher *image_platform_matcher_free(struct image_platform_matcher *m);
static inline void image_platform_matcher_freep(struct image_platform_matcher **m)
{
        image_platform_matcher_free(*m);
}

/* Whether p (normalised for the comparison) is acceptable. */
bool image_platform_match(const struct image_platform_matcher *m, const struct image_platform *p);
/* Rank of p: 0 best, larger worse, -1 no match. Sorting an index by rank picks containerd's choice. */
int image_platform_rank(const struct image_platform_matcher *m, const struct image_platform *p);
/* containerd's Less: a matches an earlier entry of the vector than b. */
bool image_platform_less(const struct image_platform_matcher *m, const struct image_platform *a,
                         const struct image_platform *b);

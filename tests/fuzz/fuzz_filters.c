/* Fuzzes the containerd filter parser and matcher (src/util/filters.c, shared by metadata and events): the
 * input is split on '\n' into filter strings. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "util/filters.h"
#include "util/alloc.h"
#include "util/cleanup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool lookup(const char *const *path, size_t n, const char **ret, void *ud)
{
        static char *labels[] = {"foo", "bar", "a.b", "c", NULL};
        const char *names[] = {"name", "id"};
        const char *values[] = {"docker.io/library/busybox:latest", ""};
        (void)ud;
        return filter_lookup_common(path, n, ret, labels, names, values, 2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size > 4096)
                return 0;
        _cleanup_free_ char *buf = xstrndup((const char *)data, size);
        char *strs[16];
        size_t n = 0;
        char *save = NULL;
        for (char *t = strtok_r(buf, "\n", &save); t && n < 16; t = strtok_r(NULL, "\n", &save))
                strs[n++] = t;
        struct filter *f = NULL;
        struct error *e = NULL;
        if (filter_parse(strs, n, &f, &e) == 0) {
                (void)filter_match(f, lookup, NULL);
                filter_free(f);
        }
        error_free(&e);
        return 0;
}

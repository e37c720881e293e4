/* Feeds arbitrary bytes to the event subscription filter parser (src/events/filter.c) and matches the result
 * against a fixed envelope. Input: filter strings separated by '\n' (OR'ed, as Subscribe's repeated filters). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "events/events-internal.h"
#include "util/alloc.h"
#include "util/cleanup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool lookup(const char *const *path, size_t npath, const char **ret_value, void *userdata _unused_)
{
        if (npath == 1 && strcmp(path[0], "topic") == 0) {
                *ret_value = "/tasks/exit";
                return true;
        }
        if (npath == 1 && strcmp(path[0], "namespace") == 0) {
                *ret_value = "default";
                return true;
        }
        return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_free_ char *buf = NULL;
        char *strs[16];
        size_t n = 0;
        struct events_filter *f = NULL;
        struct error *e = NULL;

        if (size > 4096)
                return 0;
        buf = xmalloc(size + 1);
        memcpy(buf, data, size);
        buf[size] = '\0';
        for (char *p = buf; n < 16;) {
                char *nl = strchr(p, '\n');
                strs[n++] = p;
                if (!nl)
                        break;
                *nl = '\0';
                p = nl + 1;
        }
        if (events_filter_parse(strs, n, &f, &e) == 0) {
                (void)events_filter_match(f, lookup, NULL);
                events_filter_free(f);
        }
        error_free(&e);
        return 0;
}

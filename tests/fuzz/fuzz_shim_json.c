/* Fuzzes the shim's bounded JSON reader (src/shim/json.c): parse, walk every member and element down to the
 * depth limit, decode strings and integers, the group-id lookup and the hooks/pid-namespace reading of
 * config.json. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shim/shim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(const struct shim_json *v, int depth)
{
        struct shim_json e;
        const char *pos = NULL;
        int64_t n;
        char *s;

        if (depth > SHIM_JSON_MAX_DEPTH + 1)
                abort();
        switch (v->type) {
        case SHIM_JSON_STRING:
                s = shim_json_strdup(v);
                if (s && strlen(s) > v->len)
                        abort();
                free(s);
                break;
        case SHIM_JSON_NUMBER:
                (void)shim_json_int64(v, &n);
                break;
        case SHIM_JSON_OBJECT:
                (void)shim_json_member(v, "annotations", &e);
                (void)shim_json_member(v, "a\"b", &e);
                /* fall through */
        case SHIM_JSON_ARRAY:
                while (shim_json_next(v, &pos, &e))
                        walk(&e, depth + 1);
                break;
        default:
                break;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct shim_json j;
        char *s;

        if (size > 65536)
                return 0;
        if (shim_json_parse((const char *)data, size, &j) == 0)
                walk(&j, 0);
        s = shim_group_id((const char *)data, size, "id");
        free(s);
        s = shim_json_string_member((const char *)data, size, "msg");
        free(s);
        {
                struct shim_spec_info si;
                /* an unparsable document must give the conservative answer */
                if (shim_spec_info_parse((const char *)data, size, &si) < 0 && (!si.poststart || si.private_pidns))
                        abort();
        }
        return 0;
}

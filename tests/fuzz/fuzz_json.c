/* Fuzzes the bounded JSON loader and the typed getters: any input must load or fail cleanly within the
 * size and depth bounds, and the getters must never crash on whatever types they meet. */
#include <stdint.h>
#include <stdlib.h>

#include "util/cleanup.h"
#include "util/json.h"
#include "util/strv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_json_ json_t *j = NULL;
        _cleanup_error_ struct error *e = NULL;
        if (json_load_bounded((const char *)data, size, 64 * 1024, 32, &j, &e) < 0) {
                if (!e || e->code <= 0)
                        abort();
                return 0;
        }
        static const char *const keys[] = {"mediaType", "schemaVersion", "layers", "annotations", "config", "size"};
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
                const char *s = NULL;
                int64_t n = 0;
                uint64_t u = 0;
                bool b = false;
                json_t *o = NULL;
                char **v = NULL;
                (void)json_get_string(j, keys[i], &s, NULL);
                (void)json_get_string_opt(j, keys[i], &s, NULL);
                (void)json_get_int(j, keys[i], &n, NULL);
                (void)json_get_uint(j, keys[i], &u, NULL);
                (void)json_get_bool_opt(j, keys[i], &b, NULL);
                (void)json_get_object(j, keys[i], &o, NULL);
                (void)json_get_array(j, keys[i], &o, NULL);
                if (json_get_string_map(j, keys[i], &v, NULL) == 0)
                        strv_free(v);
                v = NULL;
                if (json_get_string_array(j, keys[i], &v, NULL) == 0)
                        strv_free(v);
        }
        free(json_dump_compact(j));
        return 0;
}

/* Fuzzes the shim's parsers of untrusted input: stdio URIs (from the daemon's CreateTask/Exec), the OCI
 * runtime's JSON log (last error extraction) and config.json annotations (group id). First byte picks. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shim/shim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *s, *r;
        struct shim_uri u;
        struct error *e = NULL;

        if (size < 1 || size > 65536)
                return 0;
        s = malloc(size);
        memcpy(s, data + 1, size - 1);
        s[size - 1] = '\0';
        switch (data[0] % 3) {
        case 0:
                if (shim_uri_parse(s, &u, &e) == 0)
                        shim_uri_clear(&u);
                error_free(&e);
                break;
        case 1:
                r = shim_runtime_last_error((const char *)data + 1, size - 1);
                free(r);
                break;
        default:
                r = shim_group_id((const char *)data + 1, size - 1, "id");
                free(r);
                break;
        }
        free(s);
        return 0;
}

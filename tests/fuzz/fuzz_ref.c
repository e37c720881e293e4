/* Fuzzes image reference parsing: any input parses or fails with -EINVAL; whatever parses prints back to a
 * string that parses to the same reference, and the docker normalisation is idempotent. */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image/ref.h"
#include "util/alloc.h"
#include "util/cleanup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void roundtrip(int (*parse)(const char *, struct image_ref *, struct error **), const char *s)
{
        _cleanup_(image_ref_clearp) struct image_ref r = {0}, r2 = {0};
        _cleanup_error_ struct error *err = NULL;
        _cleanup_free_ char *out = NULL, *out2 = NULL;
        int k = parse(s, &r, &err);

        if (k < 0) {
                assert(k == -EINVAL && err && err->code == EINVAL);
                return;
        }
        out = image_ref_string(&r);
        k = parse(out, &r2, NULL);
        assert(k == 0);
        out2 = image_ref_string(&r2);
        assert(strcmp(out, out2) == 0);
        free(image_ref_familiar_string(&r));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_free_ char *s = NULL;

        if (size > 4096)
                return 0;
        s = xstrndup((const char *)data, size);
        roundtrip(image_ref_parse, s);
        roundtrip(image_ref_parse_docker, s);
        roundtrip(image_ref_parse_normalized_named, s);
        return 0;
}

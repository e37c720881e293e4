/* Fuzzes the OCI/Docker index, manifest and config parsers of src/image/manifest.c: any input is parsed or
 * refused with an error; whatever parses has validated digests and non-negative sizes. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image/manifest.h"
#include "image/ref.h"
#include "util/cleanup.h"
#include "util/strv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *buf = (const char *)data;
        struct image_descriptor *d = NULL, cfg = {0};
        size_t n = 0;
        char **ids = NULL;
        struct image_platform p = {0};
        struct error *err = NULL;

        if (size > 1 << 20)
                return 0;
        (void)image_manifest_kind(NULL, buf, size);
        if (image_index_parse(buf, size, &d, &n, &err) == 0) {
                for (size_t i = 0; i < n; i++) {
                        assert(image_ref_digest_validate(d[i].digest, NULL) == 0);
                        assert(d[i].size >= 0);
                        if (d[i].has_platform) {
                                char *s = image_platform_format(&d[i].platform);
                                free(s);
                        }
                }
                image_descriptors_free(d, n);
        } else {
                assert(err && err->code > 0);
        }
        error_free(&err);
        if (image_manifest_parse(buf, size, &cfg, &d, &n, &err) == 0) {
                assert(image_ref_digest_validate(cfg.digest, NULL) == 0);
                image_descriptor_clear(&cfg);
                image_descriptors_free(d, n);
        }
        error_free(&err);
        if (image_config_parse(buf, size, &ids, &p, &err) == 0) {
                for (size_t i = 0; ids[i]; i++)
                        assert(image_ref_digest_validate(ids[i], NULL) == 0);
                strv_free(ids);
                image_platform_clear(&p);
        }
        error_free(&err);
        return 0;
}

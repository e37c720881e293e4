/* Fuzzes the TOML parser: any input must parse or fail cleanly, and whatever parses must survive a
 * dump/parse round trip unchanged (toml_dump prints a tree that parses back to an equal tree). The
 * used-key walk and path formatting run on every parsed tree too. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/strv.h"
#include "util/toml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_toml_ struct toml_value *root = NULL, *again = NULL;
        _cleanup_error_ struct error *err = NULL;
        if (size > 256 * 1024)
                return 0;
        if (toml_parse((const char *)data, size, &root, &err) < 0) {
                assert(err && err->code > 0);
                return 0;
        }
        /* Mark every other top-level key used and list the rest. */
        for (size_t i = 0; i < toml_table_size(root); i += 2)
                toml_mark_used(toml_table_value(root, i), true);
        _cleanup_strv_free_ char **unused = toml_unused_keys(root);
        (void)unused;

        _cleanup_free_ char *d1 = toml_dump(root);
        if (toml_parse(d1, strlen(d1), &again, NULL) < 0)
                abort(); /* the dump of a valid tree must be valid */
        _cleanup_free_ char *d2 = toml_dump(again);
        if (strcmp(d1, d2) != 0)
                abort();
        return 0;
}

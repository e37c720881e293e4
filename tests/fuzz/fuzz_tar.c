/* Reads arbitrary bytes as a layer tar through image/tar.h, in pieces whose sizes come from the input, touching
 * every entry's fields and data: the reader must neither crash nor hand out more data than an entry declares. */
#include <stdint.h>
#include <string.h>

#include "image/tar.h"
#include "util/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct src {
        const uint8_t *p;
        size_t len, off, piece;
};

static ssize_t next(void *ud, const void **buf)
{
        struct src *s = ud;
        size_t n = s->len - s->off < s->piece ? s->len - s->off : s->piece;
        *buf = s->p + s->off;
        s->off += n;
        s->piece = s->piece * 5 % 1031 + 1;
        return (ssize_t)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct src s = {data, size, 0, size ? (size_t)data[0] + 1 : 1};
        struct tar_reader *r = tar_reader_new(next, &s);
        const struct tar_entry *e;
        struct error *err = NULL;
        volatile size_t sink = 0;
        while (tar_reader_next(r, &e, &err) == 0 && e) {
                sink += strlen(e->path) + (e->linkname ? strlen(e->linkname) : 0) + e->nxattrs;
                for (size_t i = 0; i < e->nxattrs; i++)
                        sink += strlen(e->xattrs[i].name) + e->xattrs[i].len;
                uint64_t got = 0;
                const void *b;
                ssize_t n;
                while ((n = tar_reader_data(r, &b, &err)) > 0) {
                        got += (uint64_t)n;
                        sink += ((const uint8_t *)b)[n - 1];
                }
                if (got > (uint64_t)e->size)
                        __builtin_trap();
                if (n < 0)
                        break;
        }
        error_free(&err);
        tar_reader_free(r);
        (void)sink;
        return 0;
}

/* Layer blob decompression; see decompress.h. */
#include "image/decompress.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <isa-l/igzip_lib.h>
#include <zstd.h>

#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/sha256.h"

/* Large reads: layer blobs are big and sequential, and fewer syscalls matter more than cache footprint. */
#define IN_BUF_SIZE (1u << 20)

struct image_decompressor {
        int fd;
        enum image_compression comp;
        uint8_t *in;
        size_t in_len; /* valid bytes in in[] */
        size_t in_pos; /* consumed */
        bool in_eof;
        bool out_eof;
        uint64_t max_out;
        uint64_t out_total;
        struct sha256 md; /* of the uncompressed stream: the diff ID */
        struct inflate_state *gz;
        bool gz_member_done;
        ZSTD_DCtx *zs;
        size_t zs_last; /* last ZSTD_decompressStream return: 0 at a frame boundary */
        char digest[IMAGE_DIGEST_STRLEN];
};

static const uint8_t gzip_magic[] = {0x1f, 0x8b};
static const uint8_t zstd_magic[] = {0x28, 0xb5, 0x2f, 0xfd};

const char *image_compression_name(enum image_compression c)
{
        switch (c) {
        case IMAGE_COMPRESSION_GZIP:
                return "gzip";
        case IMAGE_COMPRESSION_ZSTD:
                return "zstd";
        case IMAGE_COMPRESSION_NONE:
        default:
                return "none";
        }
}

/* Refills in[] (keeping unconsumed bytes). Returns bytes added, 0 at EOF, -errno. */
static ssize_t fill(struct image_decompressor *d, struct error **err)
{
        if (d->in_pos > 0) {
                memmove(d->in, d->in + d->in_pos, d->in_len - d->in_pos);
                d->in_len -= d->in_pos;
                d->in_pos = 0;
        }
        if (d->in_eof || d->in_len == IN_BUF_SIZE)
                return 0;
        for (;;) {
                ssize_t n = read(d->fd, d->in + d->in_len, IN_BUF_SIZE - d->in_len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return error_set(err, errno == EISDIR ? EINVAL : errno, "read layer blob");
                if (n == 0)
                        d->in_eof = true;
                d->in_len += (size_t)n;
                return n;
        }
}

int image_decompressor_new(int fd, uint64_t max_uncompressed, struct image_decompressor **ret, struct error **err)
{
        struct image_decompressor *d = xcalloc(1, sizeof(*d));
        ssize_t n;

        d->fd = fd;
        d->in = xmalloc(IN_BUF_SIZE);
        d->max_out = max_uncompressed;
        sha256_init(&d->md);
        /* Read until there are enough bytes to recognise a magic number, or EOF. */
        while (d->in_len < sizeof(zstd_magic) && !d->in_eof) {
                n = fill(d, err);
                if (n < 0) {
                        image_decompressor_free(d);
                        return (int)n;
                }
        }
        if (d->in_len >= sizeof(gzip_magic) && memcmp(d->in, gzip_magic, sizeof(gzip_magic)) == 0) {
                d->comp = IMAGE_COMPRESSION_GZIP;
                d->gz = xmalloc(sizeof(*d->gz));
                isal_inflate_init(d->gz);
                d->gz->crc_flag = ISAL_GZIP;
        } else if (d->in_len >= sizeof(zstd_magic) && memcmp(d->in, zstd_magic, sizeof(zstd_magic)) == 0) {
                d->comp = IMAGE_COMPRESSION_ZSTD;
                d->zs = ZSTD_createDCtx();
                if (!d->zs) {
                        image_decompressor_free(d);
                        return error_set(err, ENOMEM, "zstd context");
                }
                d->zs_last = 1;
        } else {
                d->comp = IMAGE_COMPRESSION_NONE;
        }
        *ret = d;
        return 0;
}

struct image_decompressor *image_decompressor_free(struct image_decompressor *d)
{
        if (!d)
                return NULL;
        free(d->in);
        free(d->gz);
        if (d->zs)
                ZSTD_freeDCtx(d->zs);
        free(d);
        return NULL;
}

enum image_compression image_decompressor_compression(const struct image_decompressor *d)
{
        return d->comp;
}

uint64_t image_decompressor_size(const struct image_decompressor *d)
{
        return d->out_total;
}

static ssize_t read_none(struct image_decompressor *d, uint8_t *buf, size_t len, struct error **err)
{
        if (d->in_pos == d->in_len) {
                /* Large caller buffers bypass our copy. */
                if (len >= IN_BUF_SIZE / 2 && !d->in_eof) {
                        for (;;) {
                                ssize_t n = read(d->fd, buf, len);
                                if (n < 0 && errno == EINTR)
                                        continue;
                                if (n < 0)
                                        return error_set(err, errno, "read layer blob");
                                if (n == 0)
                                        d->in_eof = true;
                                return n;
                        }
                }
                ssize_t n = fill(d, err);
                if (n < 0)
                        return n;
                if (d->in_len == 0)
                        return 0;
        }
        size_t k = d->in_len - d->in_pos;
        if (k > len)
                k = len;
        memcpy(buf, d->in + d->in_pos, k);
        d->in_pos += k;
        return (ssize_t)k;
}

static ssize_t read_gzip(struct image_decompressor *d, uint8_t *buf, size_t len, struct error **err)
{
        struct inflate_state *s = d->gz;

        for (;;) {
                if (d->gz_member_done) {
                        /* Concatenated gzip members form one stream (Go's gzip.Reader multistream default).
                         * Anything else after a member ends the stream. */
                        if (d->in_len - d->in_pos < sizeof(gzip_magic) && !d->in_eof) {
                                ssize_t n = fill(d, err);
                                if (n < 0)
                                        return n;
                                continue;
                        }
                        if (d->in_len - d->in_pos >= sizeof(gzip_magic) &&
                            memcmp(d->in + d->in_pos, gzip_magic, sizeof(gzip_magic)) == 0) {
                                isal_inflate_reset(s);
                                s->crc_flag = ISAL_GZIP;
                                d->gz_member_done = false;
                        } else {
                                return 0;
                        }
                }
                if (d->in_pos == d->in_len && !d->in_eof) {
                        ssize_t n = fill(d, err);
                        if (n < 0)
                                return n;
                }
                s->next_in = d->in + d->in_pos;
                s->avail_in = (uint32_t)(d->in_len - d->in_pos);
                s->next_out = buf;
                s->avail_out = (uint32_t)(len > UINT32_MAX ? UINT32_MAX : len);
                int r = isal_inflate(s);
                d->in_pos = d->in_len - s->avail_in;
                if (r < 0 || r == ISAL_NEED_DICT)
                        return error_set(err, EINVAL, "gzip: corrupt layer data (isa-l error %d)", r);
                size_t produced = (size_t)(s->next_out - buf);
                if (s->block_state == ISAL_BLOCK_FINISH)
                        d->gz_member_done = true;
                if (produced > 0)
                        return (ssize_t)produced;
                if (d->gz_member_done)
                        continue;
                if (d->in_pos == d->in_len && d->in_eof)
                        return error_set(err, EINVAL, "gzip: unexpected end of layer data");
        }
}

static ssize_t read_zstd(struct image_decompressor *d, uint8_t *buf, size_t len, struct error **err)
{
        for (;;) {
                if (d->in_pos == d->in_len && !d->in_eof) {
                        ssize_t n = fill(d, err);
                        if (n < 0)
                                return n;
                }
                if (d->in_pos == d->in_len && d->in_eof) {
                        if (d->zs_last != 0)
                                return error_set(err, EINVAL, "zstd: unexpected end of layer data");
                        return 0;
                }
                ZSTD_inBuffer in = {d->in, d->in_len, d->in_pos};
                ZSTD_outBuffer out = {buf, len, 0};
                size_t r = ZSTD_decompressStream(d->zs, &out, &in);
                d->in_pos = in.pos;
                if (ZSTD_isError(r))
                        return error_set(err, EINVAL, "zstd: %s", ZSTD_getErrorName(r));
                d->zs_last = r;
                if (out.pos > 0)
                        return (ssize_t)out.pos;
        }
}

ssize_t image_decompressor_read(struct image_decompressor *d, void *buf, size_t len, struct error **err)
{
        ssize_t n;

        if (d->out_eof || len == 0)
                return 0;
        switch (d->comp) {
        case IMAGE_COMPRESSION_GZIP:
                n = read_gzip(d, buf, len, err);
                break;
        case IMAGE_COMPRESSION_ZSTD:
                n = read_zstd(d, buf, len, err);
                break;
        case IMAGE_COMPRESSION_NONE:
        default:
                n = read_none(d, buf, len, err);
                break;
        }
        if (n < 0)
                return n;
        if (n == 0) {
                d->out_eof = true;
                return 0;
        }
        d->out_total += (uint64_t)n;
        if (d->max_out > 0 && d->out_total > d->max_out)
                return error_set(err, EFBIG, "layer larger than the limit of %llu uncompressed bytes",
                                 (unsigned long long)d->max_out);
        sha256_update(&d->md, buf, (size_t)n);
        return n;
}

int image_decompressor_drain(struct image_decompressor *d, struct error **err)
{
        _cleanup_free_ uint8_t *buf = xmalloc(IN_BUF_SIZE);

        for (;;) {
                ssize_t n = image_decompressor_read(d, buf, IN_BUF_SIZE, err);
                if (n < 0)
                        return (int)n;
                if (n == 0)
                        return 0;
        }
}

int image_decompressor_digest(struct image_decompressor *d, char out[IMAGE_DIGEST_STRLEN])
{
        uint8_t md[SHA256_SIZE];

        if (!d->out_eof)
                return -EBUSY;
        if (d->digest[0]) {
                memcpy(out, d->digest, IMAGE_DIGEST_STRLEN);
                return 0;
        }
        sha256_final(&d->md, md);
        memcpy(out, "sha256:", 7);
        hex_encode(md, sizeof(md), out + 7);
        memcpy(d->digest, out, IMAGE_DIGEST_STRLEN);
        return 0;
}

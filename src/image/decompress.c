/* Layer blob decompression; see decompress.h. */
#include "image/decompress.h"

#include <errno.h>
#include <pthread.h>
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

/* --- threaded stream --- */

#define STREAM_BUF_SIZE (1u << 20)
#define STREAM_MIN_SLOTS 2
#define STREAM_MAX_SLOTS 256

/* Buffers are kept for the next stream while any stream lives: an image's layers follow each other, and in
 * a VM every first touch of a fresh 1 MiB buffer costs 256 page faults (measured: +35% CPU for an unpack
 * whose streams allocated 32 MiB each). Everything goes back to malloc when the last stream ends, so an idle
 * daemon keeps nothing. */
#define STREAM_POOL_MAX 64

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *pool[STREAM_POOL_MAX];
static size_t pool_n;
static size_t pool_streams; /* live streams */

static uint8_t *pool_get(void)
{
        uint8_t *b = NULL;
        pthread_mutex_lock(&pool_mu);
        if (pool_n > 0)
                b = pool[--pool_n];
        pthread_mutex_unlock(&pool_mu);
        return b ? b : xmalloc(STREAM_BUF_SIZE);
}

static void pool_stream_add(void)
{
        pthread_mutex_lock(&pool_mu);
        pool_streams++;
        pthread_mutex_unlock(&pool_mu);
}

/* Returns a stream's buffers (n of them, NULLs allowed) and drops its reference. */
static void pool_stream_release(uint8_t **bufs, size_t n)
{
        uint8_t *drop[STREAM_POOL_MAX];
        size_t ndrop = 0;
        pthread_mutex_lock(&pool_mu);
        for (size_t i = 0; i < n; i++) {
                if (!bufs[i])
                        continue;
                if (pool_n < STREAM_POOL_MAX)
                        pool[pool_n++] = bufs[i];
                else
                        free(bufs[i]);
        }
        if (--pool_streams == 0) {
                memcpy(drop, pool, pool_n * sizeof(*pool));
                ndrop = pool_n;
                pool_n = 0;
        }
        pthread_mutex_unlock(&pool_mu);
        for (size_t i = 0; i < ndrop; i++)
                free(drop[i]);
}

struct image_layer_stream {
        pthread_t thread;
        bool joined;
        pthread_mutex_t mu;
        pthread_cond_t cv;
        struct image_decompressor *dec; /* the thread's until it is joined */
        uint8_t **bufs;
        size_t *lens;
        size_t nslots;
        size_t head, count; /* filled slots: head .. head+count-1 */
        bool held;          /* the consumer still reads slots[head] (the tar reader keeps it until the next read) */
        bool eof, stop;
        int r;
        struct error *err;
};

static void *stream_main(void *data)
{
        struct image_layer_stream *s = data;

        pthread_mutex_lock(&s->mu);
        for (;;) {
                while (s->count == s->nslots && !s->stop)
                        pthread_cond_wait(&s->cv, &s->mu);
                if (s->stop)
                        break;
                size_t slot = (s->head + s->count) % s->nslots;
                pthread_mutex_unlock(&s->mu);
                if (!s->bufs[slot])
                        s->bufs[slot] = pool_get();
                struct error *e = NULL;
                ssize_t n = image_decompressor_read(s->dec, s->bufs[slot], STREAM_BUF_SIZE, &e);
                pthread_mutex_lock(&s->mu);
                if (n < 0) {
                        s->r = (int)n;
                        s->err = e;
                        s->eof = true;
                } else if (n == 0) {
                        s->eof = true;
                } else {
                        s->lens[slot] = (size_t)n;
                        s->count++;
                }
                pthread_cond_broadcast(&s->cv);
                if (s->eof)
                        break;
        }
        pthread_mutex_unlock(&s->mu);
        return NULL;
}

int image_layer_stream_start(int fd, uint64_t max_uncompressed, size_t ahead_bytes, struct image_layer_stream **ret,
                             struct error **err)
{
        struct image_layer_stream *s = xcalloc(1, sizeof(*s));
        int r;

        r = image_decompressor_new(fd, max_uncompressed, &s->dec, err);
        if (r < 0) {
                free(s);
                return r;
        }
        s->nslots = ahead_bytes / STREAM_BUF_SIZE;
        if (s->nslots < STREAM_MIN_SLOTS)
                s->nslots = STREAM_MIN_SLOTS;
        if (s->nslots > STREAM_MAX_SLOTS)
                s->nslots = STREAM_MAX_SLOTS;
        s->bufs = xcalloc(s->nslots, sizeof(*s->bufs));
        s->lens = xcalloc(s->nslots, sizeof(*s->lens));
        pool_stream_add();
        pthread_mutex_init(&s->mu, NULL);
        pthread_cond_init(&s->cv, NULL);
        r = pthread_create(&s->thread, NULL, stream_main, s);
        if (r != 0) {
                s->joined = true;
                image_layer_stream_free(s);
                return error_set(err, r, "start decompression thread");
        }
        *ret = s;
        return 0;
}

static void stream_join(struct image_layer_stream *s)
{
        if (s->joined)
                return;
        pthread_mutex_lock(&s->mu);
        s->stop = true;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
        s->joined = true;
}

ssize_t image_layer_stream_next(struct image_layer_stream *s, const void **buf, struct error **err)
{
        ssize_t n;

        pthread_mutex_lock(&s->mu);
        if (s->held) {
                s->held = false;
                s->head = (s->head + 1) % s->nslots;
                s->count--;
                pthread_cond_broadcast(&s->cv);
        }
        while (s->count == 0 && !s->eof)
                pthread_cond_wait(&s->cv, &s->mu);
        if (s->count > 0) {
                *buf = s->bufs[s->head];
                n = (ssize_t)s->lens[s->head];
                s->held = true;
        } else if (s->r < 0) {
                n = s->r;
                if (err && !*err)
                        *err = TAKE_PTR(s->err);
                else
                        error_set(err, -s->r, "layer stream");
        } else {
                n = 0;
        }
        pthread_mutex_unlock(&s->mu);
        return n;
}

struct image_decompressor *image_layer_stream_finish(struct image_layer_stream *s)
{
        pthread_mutex_lock(&s->mu);
        bool done = s->eof && s->count == 0 && s->r == 0;
        pthread_mutex_unlock(&s->mu);
        if (!done)
                return NULL;
        stream_join(s);
        return s->dec;
}

struct image_layer_stream *image_layer_stream_free(struct image_layer_stream *s)
{
        if (!s)
                return NULL;
        stream_join(s);
        pool_stream_release(s->bufs, s->nslots);
        free(s->bufs);
        free(s->lens);
        error_free(&s->err);
        image_decompressor_free(s->dec);
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        free(s);
        return NULL;
}

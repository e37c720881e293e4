/* Streaming decompression of layer blobs: gzip (isa-l igzip, multi-member), zstd (libzstd streaming) or
 * uncompressed, detected from the first bytes of the blob. The reader also digests the *uncompressed*
 * stream with sha256 (that digest is the layer's diff ID, OCI image-spec config.md rootfs.diff_ids) and
 * bounds the total uncompressed size. Not thread-safe; one reader per thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/error.h"

enum image_compression {
        IMAGE_COMPRESSION_NONE,
        IMAGE_COMPRESSION_GZIP,
        IMAGE_COMPRESSION_ZSTD,
};

struct image_decompressor;

/* "sha256:" + 64 hex + NUL */
#define IMAGE_DIGEST_STRLEN 72

/* Creates a reader over fd (borrowed: the caller keeps it open until image_decompressor_free). The
 * compression is detected from the first bytes read from fd. max_uncompressed bounds the total number of
 * bytes produced (0 = no bound); exceeding it fails the read with -EFBIG. Returns -errno (EINVAL for a
 * corrupt stream detected at start, EIO for read errors). */
int image_decompressor_new(int fd, uint64_t max_uncompressed, struct image_decompressor **ret, struct error **err);
/* Frees the reader. NULL-safe. Returns NULL. */
struct image_decompressor *image_decompressor_free(struct image_decompressor *d);
static inline void image_decompressor_freep(struct image_decompressor **d)
{
        if (*d)
                image_decompressor_free(*d);
}
#define _cleanup_decompressor_ __attribute__((cleanup(image_decompressor_freep)))

enum image_compression image_decompressor_compression(const struct image_decompressor *d);
const char *image_compression_name(enum image_compression c);

/* Reads up to len uncompressed bytes. Returns the count, 0 at the end of the stream, or -errno:
 * -EINVAL corrupt data or truncated stream, -EFBIG over the bound, -EIO read error. */
ssize_t image_decompressor_read(struct image_decompressor *d, void *buf, size_t len, struct error **err);
/* Reads and digests everything left (tar padding after the end-of-archive marker counts towards the
 * diff ID, as in containerd). Returns 0 or -errno like image_decompressor_read. */
int image_decompressor_drain(struct image_decompressor *d, struct error **err);
/* After the stream ended: writes "sha256:<hex>" of the uncompressed bytes into out (IMAGE_DIGEST_STRLEN).
 * Returns -EBUSY if the end of the stream was not reached yet. */
int image_decompressor_digest(struct image_decompressor *d, char out[IMAGE_DIGEST_STRLEN]);
/* Uncompressed bytes produced so far. */
uint64_t image_decompressor_size(const struct image_decompressor *d);

/* A decompressor running on its own thread, up to a bounded number of uncompressed bytes ahead of its
 * consumer (the layer apply). Started early, it decompresses and digests the next layer of an image while
 * the current one is still being written (services_snapshots_unpack). Decompression plus sha256 is about
 * half of an apply's CPU time, file creation the other half. One consumer thread; the reader thread owns
 * the decompressor until the stream ends or is stopped. */
struct image_layer_stream;

/* Detects the compression (reads the first bytes of fd, borrowed: keep it open until the stream is freed)
 * and starts the thread. ahead_bytes bounds the buffered uncompressed bytes (1 MiB buffers, allocated as
 * needed; at least 2, at most 256). max_uncompressed as image_decompressor_new. */
int image_layer_stream_start(int fd, uint64_t max_uncompressed, size_t ahead_bytes, struct image_layer_stream **ret,
                             struct error **err);
/* The next buffer of uncompressed bytes (valid until the next call): > 0 bytes, 0 at the end of the stream,
 * or -errno with err set (as image_decompressor_read). */
ssize_t image_layer_stream_next(struct image_layer_stream *s, const void **buf, struct error **err);
/* After image_layer_stream_next returned 0: joins the thread and returns the decompressor (owned by the
 * stream) for its size, compression and digest. NULL before the end. */
struct image_decompressor *image_layer_stream_finish(struct image_layer_stream *s);
/* Stops the thread (if running) and frees everything. NULL-safe. Returns NULL. */
struct image_layer_stream *image_layer_stream_free(struct image_layer_stream *s);
static inline void image_layer_stream_freep(struct image_layer_stream **s)
{
        if (*s)
                image_layer_stream_free(*s);
}
#define _cleanup_layer_stream_ __attribute__((cleanup(image_layer_stream_freep)))

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

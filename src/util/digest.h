/* Content digests in the OCI form "<algorithm>:<hex>" (opencontainers/go-digest). Only sha256 is
 * supported for now; hashing is util/sha256.c (no crypto library).
 * All functions are thread-safe (no shared state). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

#define DIGEST_SHA256_PREFIX "sha256:"
#define DIGEST_SHA256_SIZE 32      /* raw bytes */
#define DIGEST_SHA256_HEX_LEN 64   /* hex characters */
/* "sha256:" + 64 hex characters, without the NUL. */
#define DIGEST_SHA256_STRING_LEN (sizeof(DIGEST_SHA256_PREFIX) - 1 + DIGEST_SHA256_HEX_LEN)

/* Streaming sha256 hasher. */
struct digester;

/* Returns a new sha256 hasher (aborts on OOM, like xmalloc). */
struct digester *digester_new(void);
/* Feeds len bytes (borrowed). len may be 0. */
void digester_update(struct digester *d, const void *buf, size_t len);
/* Total bytes fed so far. */
uint64_t digester_size(const struct digester *d);
/* Returns a new string "sha256:<64 lowercase hex>" for everything fed so far. The hasher is not
 * consumed: more data may be fed afterwards and the digest is then of the whole stream. */
char *digester_digest(const struct digester *d);
/* Like digester_digest but writes the raw 32 bytes. */
void digester_raw(const struct digester *d, uint8_t out[DIGEST_SHA256_SIZE]);
/* NULL-safe; returns NULL. */
struct digester *digester_free(struct digester *d);
static inline void digester_freep(struct digester **d)
{
        if (*d)
                digester_free(*d);
}
#define _cleanup_digester_ __attribute__((cleanup(digester_freep)))

/* One-shot: returns a new "sha256:<hex>" string for buf. */
char *digest_from_buf(const void *buf, size_t len);
/* Digests everything readable from fd (reads to EOF from the current offset). Returns 0 and a new
 * string in *ret_digest, or -errno (read failure) with err set. */
int digest_from_fd(int fd, char **ret_digest, uint64_t *ret_size, struct error **err);

/* Validates "sha256:<64 lowercase hex>". Returns 0 or -EINVAL with err set to
 * `invalid digest "x": <reason>`, reason as go-digest words it ("invalid checksum digest format",
 * "unsupported digest algorithm", "invalid checksum digest length"). */
int digest_validate(const char *s, struct error **err);
/* Validates and splits: *ret_algorithm and *ret_hex are borrowed pointers into s (the algorithm is
 * not NUL-terminated at ':'; its length is *ret_algorithm_len). Any ret_ may be NULL. */
int digest_parse(const char *s, const char **ret_algorithm, size_t *ret_algorithm_len, const char **ret_hex,
                 struct error **err);
/* Returns the hex part of a valid digest (borrowed, points into s), or NULL if s is not valid. */
const char *digest_hex(const char *s);
/* Compares two digests for equality; both must be valid; case-sensitive like go-digest. */
bool digest_equal(const char *a, const char *b);

/* Lowercase hex: writes 2*n characters and a NUL to out (which must hold 2*n+1 bytes). */
void hex_encode(const void *in, size_t n, char *out);
/* Returns a new NUL-terminated lowercase hex string of in. */
char *hex_encode_new(const void *in, size_t n);
/* Decodes exactly 2*outlen hex characters (either case) from hex; returns 0 or -EINVAL. */
int hex_decode(const char *hex, size_t hexlen, void *out, size_t outlen);
/* Standard base64 (RFC 4648, with padding) of in: a new NUL-terminated string. */
char *base64_encode_new(const void *in, size_t n);
/* Decodes standard base64 (padding optional, no whitespace) into a new NUL-terminated buffer (*ret_len bytes before
 * the NUL). Returns 0 or -EINVAL. */
int base64_decode_new(const char *in, char **ret, size_t *ret_len);
/* true if s[0..n) is all lowercase hex */
bool hex_is_lower(const char *s, size_t n);

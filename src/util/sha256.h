/* SHA-256 without a crypto library (see sha256.c for why). Plain struct, no allocation, thread-safe. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define SHA256_SIZE 32

struct sha256 {
        uint32_t state[8];
        uint64_t bytes; /* fed so far */
        uint8_t buf[64];
        size_t buffered;
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
/* The digest of everything fed so far; s is not consumed (more may be fed afterwards). */
void sha256_final(const struct sha256 *s, uint8_t out[SHA256_SIZE]);
/* sha256_update forced through the portable code, for tests comparing it with the CPU's SHA instructions. */
void sha256_portable_only(struct sha256 *s, const void *data, size_t len);

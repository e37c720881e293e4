/* SHA-256 (FIPS 180-4) without a crypto library. Content digests are the only hashing krill does, and OpenSSL's
 * libcrypto costs every process that loads it about 1.4 MB of RSS (0.4 MB of it private, relocated data), more than
 * the rest of krilld's own memory. x86-64 CPUs with the SHA extensions (this machine's EPYC has them) hash through
 * them at the speed of OpenSSL's assembly; other CPUs use the portable rounds below. */
#include "util/sha256.h"

#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define SHA256_HAVE_SHANI 1
#endif

static const uint32_t K[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static inline uint32_t ror(uint32_t x, unsigned n)
{
        return (x >> n) | (x << (32 - n));
}

static inline uint32_t load_be32(const uint8_t *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void blocks_portable(uint32_t st[8], const uint8_t *p, size_t n)
{
        for (; n > 0; n--, p += 64) {
                uint32_t w[64];
                for (int t = 0; t < 16; t++)
                        w[t] = load_be32(p + 4 * t);
                for (int t = 16; t < 64; t++) {
                        uint32_t s0 = ror(w[t - 15], 7) ^ ror(w[t - 15], 18) ^ (w[t - 15] >> 3);
                        uint32_t s1 = ror(w[t - 2], 17) ^ ror(w[t - 2], 19) ^ (w[t - 2] >> 10);
                        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
                }
                uint32_t a = st[0], b = st[1], c = st[2], d = st[3], e = st[4], f = st[5], g = st[6], h = st[7];
                for (int t = 0; t < 64; t++) {
                        uint32_t t1 = h + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + K[t] + w[t];
                        uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
                        h = g;
                        g = f;
                        f = e;
                        e = d + t1;
                        d = c;
                        c = b;
                        b = a;
                        a = t1 + t2;
                }
                st[0] += a;
                st[1] += b;
                st[2] += c;
                st[3] += d;
                st[4] += e;
                st[5] += f;
                st[6] += g;
                st[7] += h;
        }
}

#ifdef SHA256_HAVE_SHANI
/* The SHA extensions keep the state as two vectors, ABEF and CDGH (lane 3 first); sha256rnds2 does two rounds with
 * the two low lanes of W+K, and sha256msg1/msg2 compute the message schedule four words at a time:
 * W[16..19] = msg2(msg1(W[0..3], W[4..7]) + W[9..12], W[12..15]). */
__attribute__((target("sha,sse4.1,ssse3"))) static void blocks_shani(uint32_t st[8], const uint8_t *p, size_t n)
{
        const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
        __m128i dcba = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&st[0]), 0xb1); /* b a d c */
        __m128i hgfe = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&st[4]), 0x1b); /* h g f e */
        __m128i abef = _mm_alignr_epi8(dcba, hgfe, 8);
        __m128i cdgh = _mm_blend_epi16(hgfe, dcba, 0xf0);

        for (; n > 0; n--, p += 64) {
                const __m128i abef0 = abef, cdgh0 = cdgh;
                __m128i w[4];
#pragma GCC unroll 16
                for (int g = 0; g < 16; g++) {
                        __m128i *x = &w[g & 3];
                        if (g < 4)
                                *x = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * g)), bswap);
                        else
                                *x = _mm_sha256msg2_epu32(
                                    _mm_add_epi32(_mm_sha256msg1_epu32(*x, w[(g + 1) & 3]),
                                                  _mm_alignr_epi8(w[(g + 3) & 3], w[(g + 2) & 3], 4)),
                                    w[(g + 3) & 3]);
                        __m128i wk = _mm_add_epi32(*x, _mm_loadu_si128((const __m128i *)&K[4 * g]));
                        /* Each rnds2 returns the new ABEF, and the old ABEF becomes CDGH: after two calls with
                         * the variables' roles exchanged, abef and cdgh hold what their names say again. */
                        cdgh = _mm_sha256rnds2_epu32(cdgh, abef, wk);
                        abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(wk, 0x0e));
                }
                abef = _mm_add_epi32(abef, abef0);
                cdgh = _mm_add_epi32(cdgh, cdgh0);
        }
        __m128i feba = _mm_shuffle_epi32(abef, 0x1b); /* a b e f */
        __m128i dchg = _mm_shuffle_epi32(cdgh, 0xb1); /* g h c d */
        _mm_storeu_si128((__m128i *)&st[0], _mm_blend_epi16(feba, dchg, 0xf0));
        _mm_storeu_si128((__m128i *)&st[4], _mm_alignr_epi8(dchg, feba, 8));
}

static int have_shani(void)
{
        static int cached = -1; /* racing first calls compute the same answer */
        if (cached < 0) {
                unsigned a, b, c, d, ok = 0;
                if (__get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSE4_1) && (c & bit_SSSE3) &&
                    __get_cpuid_count(7, 0, &a, &b, &c, &d))
                        ok = (b >> 29) & 1; /* CPUID.(7,0):EBX.SHA */
                __atomic_store_n(&cached, (int)ok, __ATOMIC_RELAXED);
        }
        return __atomic_load_n(&cached, __ATOMIC_RELAXED);
}
#endif

static void blocks(uint32_t st[8], const uint8_t *p, size_t n)
{
#ifdef SHA256_HAVE_SHANI
        if (have_shani()) {
                blocks_shani(st, p, n);
                return;
        }
#endif
        blocks_portable(st, p, n);
}

void sha256_init(struct sha256 *s)
{
        static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                       0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
        memcpy(s->state, iv, sizeof(iv));
        s->bytes = 0;
        s->buffered = 0;
}

void sha256_update(struct sha256 *s, const void *data, size_t len)
{
        const uint8_t *p = data;
        if (len == 0)
                return; /* data may be NULL */
        s->bytes += len;
        if (s->buffered) {
                size_t take = 64 - s->buffered < len ? 64 - s->buffered : len;
                memcpy(s->buf + s->buffered, p, take);
                s->buffered += take;
                p += take;
                len -= take;
                if (s->buffered < 64)
                        return;
                blocks(s->state, s->buf, 1);
                s->buffered = 0;
        }
        if (len >= 64) {
                blocks(s->state, p, len / 64);
                p += len / 64 * 64;
                len %= 64;
        }
        memcpy(s->buf, p, len);
        s->buffered = len;
}

void sha256_final(const struct sha256 *s, uint8_t out[SHA256_SIZE])
{
        /* Works on a copy, so the caller may keep feeding the stream afterwards. */
        struct sha256 c = *s;
        uint64_t bits = c.bytes * 8;
        c.buf[c.buffered++] = 0x80;
        if (c.buffered > 56) {
                memset(c.buf + c.buffered, 0, 64 - c.buffered);
                blocks(c.state, c.buf, 1);
                c.buffered = 0;
        }
        memset(c.buf + c.buffered, 0, 56 - c.buffered);
        for (int i = 0; i < 8; i++)
                c.buf[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
        blocks(c.state, c.buf, 1);
        for (int i = 0; i < 8; i++) {
                out[4 * i] = (uint8_t)(c.state[i] >> 24);
                out[4 * i + 1] = (uint8_t)(c.state[i] >> 16);
                out[4 * i + 2] = (uint8_t)(c.state[i] >> 8);
                out[4 * i + 3] = (uint8_t)c.state[i];
        }
}

void sha256_portable_only(struct sha256 *s, const void *data, size_t len)
{
        /* For tests: the same update through the portable rounds, to check both paths agree. */
        const uint8_t *p = data;
        if (len == 0)
                return;
        s->bytes += len;
        for (; len > 0 && s->buffered > 0; len--) {
                s->buf[s->buffered++] = *p++;
                if (s->buffered == 64) {
                        blocks_portable(s->state, s->buf, 1);
                        s->buffered = 0;
                }
        }
        if (s->buffered > 0)
                return;
        blocks_portable(s->state, p, len / 64);
        p += len / 64 * 64;
        memcpy(s->buf, p, len % 64);
        s->buffered = len % 64;
}

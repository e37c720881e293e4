#include "util/digest.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/sha256.h"

struct digester {
        struct sha256 sha;
};

struct digester *digester_new(void)
{
        struct digester *d = xmalloc(sizeof(*d));
        sha256_init(&d->sha);
        return d;
}

void digester_update(struct digester *d, const void *buf, size_t len)
{
        sha256_update(&d->sha, buf, len);
}

uint64_t digester_size(const struct digester *d)
{
        return d->sha.bytes;
}

void digester_raw(const struct digester *d, uint8_t out[DIGEST_SHA256_SIZE])
{
        /* sha256_final works on a copy, so the caller may keep feeding the stream (resumable ingests). */
        sha256_final(&d->sha, out);
}

char *digester_digest(const struct digester *d)
{
        uint8_t raw[DIGEST_SHA256_SIZE];
        char *s = xmalloc(DIGEST_SHA256_STRING_LEN + 1);
        digester_raw(d, raw);
        memcpy(s, DIGEST_SHA256_PREFIX, sizeof(DIGEST_SHA256_PREFIX) - 1);
        hex_encode(raw, sizeof(raw), s + sizeof(DIGEST_SHA256_PREFIX) - 1);
        return s;
}

struct digester *digester_free(struct digester *d)
{
        free(d);
        return NULL;
}

char *digest_from_buf(const void *buf, size_t len)
{
        _cleanup_digester_ struct digester *d = digester_new();
        digester_update(d, buf, len);
        return digester_digest(d);
}

int digest_from_fd(int fd, char **ret_digest, uint64_t *ret_size, struct error **err)
{
        _cleanup_digester_ struct digester *d = digester_new();
        _cleanup_free_ char *buf = xmalloc(128 * 1024);
        for (;;) {
                ssize_t n = read(fd, buf, 128 * 1024);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return error_set(err, errno, "digest: read");
                }
                if (n == 0)
                        break;
                digester_update(d, buf, (size_t)n);
        }
        if (ret_size)
                *ret_size = d->sha.bytes;
        if (ret_digest)
                *ret_digest = digester_digest(d);
        return 0;
}

static bool algorithm_char_ok(char c, bool first)
{
        /* go-digest's anchoredEncodedRegexp for the algorithm: [a-z0-9]+(?:[.+_-][a-z0-9]+)* */
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
                return true;
        return !first && (c == '.' || c == '+' || c == '_' || c == '-');
}

int digest_parse(const char *s, const char **ret_algorithm, size_t *ret_algorithm_len, const char **ret_hex,
                 struct error **err)
{
        if (!s)
                return error_set(err, EINVAL, "invalid digest \"\": invalid checksum digest format");
        const char *colon = strchr(s, ':');
        /* go-digest: "i < 0 || i+1 == len(d)" is a format error, as is an empty algorithm. */
        if (!colon || colon == s || colon[1] == '\0')
                return error_set(err, EINVAL, "invalid digest \"%s\": invalid checksum digest format", s);
        size_t alen = (size_t)(colon - s);
        for (size_t i = 0; i < alen; i++)
                if (!algorithm_char_ok(s[i], i == 0))
                        return error_set(err, EINVAL, "invalid digest \"%s\": invalid checksum digest format", s);
        if (alen != 6 || memcmp(s, "sha256", 6) != 0)
                return error_set(err, EINVAL, "invalid digest \"%s\": unsupported digest algorithm", s);
        const char *hex = colon + 1;
        size_t hlen = strlen(hex);
        if (hlen != DIGEST_SHA256_HEX_LEN)
                return error_set(err, EINVAL, "invalid digest \"%s\": invalid checksum digest length", s);
        if (!hex_is_lower(hex, hlen))
                return error_set(err, EINVAL, "invalid digest \"%s\": invalid checksum digest format", s);
        if (ret_algorithm)
                *ret_algorithm = s;
        if (ret_algorithm_len)
                *ret_algorithm_len = alen;
        if (ret_hex)
                *ret_hex = hex;
        return 0;
}

int digest_validate(const char *s, struct error **err)
{
        return digest_parse(s, NULL, NULL, NULL, err);
}

const char *digest_hex(const char *s)
{
        const char *hex = NULL;
        if (digest_parse(s, NULL, NULL, &hex, NULL) < 0)
                return NULL;
        return hex;
}

bool digest_equal(const char *a, const char *b)
{
        return a && b && strcmp(a, b) == 0;
}

void hex_encode(const void *in, size_t n, char *out)
{
        static const char digits[] = "0123456789abcdef";
        const uint8_t *p = in;
        for (size_t i = 0; i < n; i++) {
                out[2 * i] = digits[p[i] >> 4];
                out[2 * i + 1] = digits[p[i] & 0xf];
        }
        out[2 * n] = '\0';
}

char *hex_encode_new(const void *in, size_t n)
{
        char *s = xmalloc(2 * n + 1);
        hex_encode(in, n, s);
        return s;
}

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int hex_decode(const char *hex, size_t hexlen, void *out, size_t outlen)
{
        uint8_t *o = out;
        if (hexlen != 2 * outlen)
                return -EINVAL;
        for (size_t i = 0; i < outlen; i++) {
                int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
                if (hi < 0 || lo < 0)
                        return -EINVAL;
                o[i] = (uint8_t)(hi << 4 | lo);
        }
        return 0;
}

bool hex_is_lower(const char *s, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return true;
}

char *base64_encode_new(const void *in, size_t n)
{
        static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const uint8_t *d = in;
        char *b = xmalloc(4 * ((n + 2) / 3) + 1), *p = b;
        for (size_t i = 0; i < n; i += 3) {
                uint32_t v = (uint32_t)d[i] << 16;
                if (i + 1 < n)
                        v |= (uint32_t)d[i + 1] << 8;
                if (i + 2 < n)
                        v |= d[i + 2];
                *p++ = tbl[(v >> 18) & 63];
                *p++ = tbl[(v >> 12) & 63];
                *p++ = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
                *p++ = i + 2 < n ? tbl[v & 63] : '=';
        }
        *p = '\0';
        return b;
}

int base64_decode_new(const char *in, char **ret, size_t *ret_len)
{
        size_t len = strlen(in);
        while (len > 0 && in[len - 1] == '=')
                len--;
        if (len % 4 == 1)
                return -EINVAL;
        char *out = xmalloc(len / 4 * 3 + 3), *o = out;
        uint32_t acc = 0;
        unsigned bits = 0;
        for (size_t i = 0; i < len; i++) {
                char c = in[i];
                int v = c >= 'A' && c <= 'Z' ? c - 'A'
                        : c >= 'a' && c <= 'z' ? c - 'a' + 26
                        : c >= '0' && c <= '9' ? c - '0' + 52
                        : c == '+' ? 62
                        : c == '/' ? 63
                        : -1;
                if (v < 0) {
                        free(out);
                        return -EINVAL;
                }
                acc = acc << 6 | (uint32_t)v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        *o++ = (char)(acc >> bits);
                }
        }
        *o = '\0';
        *ret = out;
        *ret_len = (size_t)(o - out);
        return 0;
}

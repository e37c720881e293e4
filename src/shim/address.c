/* Shim socket addresses: sha256(grpc address + "/" + ns + "/" + group) as containerd's shim computes it
 * (PROTOCOLS.md 3.2), placed under the daemon's own run dir instead of a hard-coded /run/containerd/s.
 * sha256 is implemented here (FIPS 180-4) so the shim does not link libcrypto for one hash. */
#include <string.h>
#include <sys/un.h>

#include "shim/shim.h"
#include "util/alloc.h"
#include "util/cleanup.h"

struct sha256 {
        uint32_t h[8];
        uint8_t buf[64];
        uint64_t len;
        size_t fill;
};

static const uint32_t sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static inline uint32_t ror(uint32_t x, int n)
{
        return (x >> n) | (x << (32 - n));
}

static void sha256_block(struct sha256 *s, const uint8_t *p)
{
        uint32_t w[64], a, b, c, d, e, f, g, h;

        for (int i = 0; i < 16; i++)
                w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 |
                       p[4 * i + 3];
        for (int i = 16; i < 64; i++) {
                uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
                uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
                w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3], e = s->h[4], f = s->h[5], g = s->h[6], h = s->h[7];
        for (int i = 0; i < 64; i++) {
                uint32_t t1 = h + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + sha256_k[i] + w[i];
                uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
                h = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
        }
        s->h[0] += a, s->h[1] += b, s->h[2] += c, s->h[3] += d;
        s->h[4] += e, s->h[5] += f, s->h[6] += g, s->h[7] += h;
}

static void sha256_update(struct sha256 *s, const uint8_t *p, size_t n)
{
        s->len += n;
        while (n > 0) {
                size_t take = 64 - s->fill < n ? 64 - s->fill : n;
                memcpy(s->buf + s->fill, p, take);
                s->fill += take, p += take, n -= take;
                if (s->fill == 64) {
                        sha256_block(s, s->buf);
                        s->fill = 0;
                }
        }
}

void shim_sha256_hex(const void *buf, size_t len, char out[65])
{
        struct sha256 s = {
            .h = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19}};
        uint8_t pad[72] = {0x80};
        uint64_t bits;
        size_t padlen;

        sha256_update(&s, buf, len);
        bits = s.len * 8;
        padlen = (s.fill < 56 ? 56 - s.fill : 120 - s.fill);
        for (int i = 0; i < 8; i++)
                pad[padlen + i] = (uint8_t)(bits >> (56 - 8 * i));
        sha256_update(&s, pad, padlen + 8);
        for (int i = 0; i < 8; i++)
                for (int j = 0; j < 4; j++) {
                        uint8_t v = (uint8_t)(s.h[i] >> (24 - 8 * j));
                        out[8 * i + 2 * j] = "0123456789abcdef"[v >> 4];
                        out[8 * i + 2 * j + 1] = "0123456789abcdef"[v & 15];
                }
        out[64] = '\0';
}

char *shim_socket_path(const char *grpc_address, const char *ns, const char *group)
{
        _cleanup_free_ char *key = NULL, *dir = NULL;
        const char *addr = grpc_address, *slash;
        char hex[65];
        char *path;

        /* containerd hashes the address as given; the directory comes from the path without a scheme */
        key = xasprintf("%s/%s/%s", grpc_address, ns, group);
        shim_sha256_hex(key, strlen(key), hex);
        if (strncmp(addr, "unix://", 7) == 0)
                addr += 7;
        slash = strrchr(addr, '/');
        if (!slash)
                dir = xstrdup(".");
        else if (slash == addr)
                dir = xstrdup("");
        else
                dir = xstrndup(addr, (size_t)(slash - addr));
        path = xasprintf("%s/s/%s", dir, hex);
        if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
                free(path);
                return NULL;
        }
        return path;
}

char *shim_group_id(const char *config_json, size_t len, const char *id)
{
        static const char *const keys[] = {"io.kubernetes.cri.sandbox-id", "io.containerd.runc.v2.group"};
        struct shim_json root, ann, v;
        char *ret = NULL;

        if (!config_json || shim_json_parse(config_json, len, &root) < 0 ||
            shim_json_member(&root, "annotations", &ann) < 0)
                return xstrdup(id);
        for (size_t i = 0; i < ELEMENTSOF(keys) && !ret; i++)
                if (shim_json_member(&ann, keys[i], &v) == 0) {
                        ret = shim_json_strdup(&v);
                        if (ret && !*ret) {
                                free(ret);
                                ret = NULL;
                        }
                }
        return ret ? ret : xstrdup(id);
}

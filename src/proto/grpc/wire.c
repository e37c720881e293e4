/* gRPC wire helpers shared by server and client: framing, grpc-message and grpc-timeout (PROTOCOLS.md 4). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "grpc-internal.h"
#include "util/alloc.h"

void grpc_buf_done(struct grpc_buf *b)
{
        free(b->data);
        *b = (struct grpc_buf){0};
}

uint8_t *grpc_buf_reserve(struct grpc_buf *b, size_t n)
{
        if (b->off > 0 && b->off == b->len) {
                b->off = b->len = 0;
        }
        if (b->cap - b->len >= n)
                return b->data + b->len;
        /* Slide unconsumed bytes down before growing: a long-lived stream buffer stays bounded. */
        if (b->off > 0) {
                memmove(b->data, b->data + b->off, b->len - b->off);
                b->len -= b->off;
                b->off = 0;
                if (b->cap - b->len >= n)
                        return b->data + b->len;
        }
        size_t want = b->len + n;
        size_t cap = b->cap ? b->cap : 256;
        while (cap < want)
                cap = cap > SIZE_MAX / 2 ? want : cap * 2;
        b->data = xrealloc(b->data, cap);
        b->cap = cap;
        return b->data + b->len;
}

void grpc_buf_append(struct grpc_buf *b, const void *p, size_t n)
{
        if (n == 0)
                return;
        memcpy(grpc_buf_reserve(b, n), p, n);
        b->len += n;
}

void grpc_buf_consume(struct grpc_buf *b, size_t n)
{
        b->off += n;
        if (b->off >= b->len) {
                b->off = b->len = 0;
                /* Drop big buffers once drained so an idle stream does not pin a 16 MiB allocation, but keep
                 * one that holds a few 1 MiB messages: a stream of them (Content.Write/Read) would otherwise
                 * regrow it by doubling and fault its pages in again for every message. */
                if (b->cap > GRPC_BUF_KEEP) {
                        free(b->data);
                        b->data = NULL;
                        b->cap = 0;
                }
        }
}

size_t grpc_frame_append(struct grpc_buf *b, const ProtobufCMessage *msg)
{
        size_t n = protobuf_c_message_get_packed_size(msg);
        uint8_t *p = grpc_buf_reserve(b, GRPC_PREFIX_LEN + n);
        p[0] = 0;
        p[1] = (uint8_t)(n >> 24);
        p[2] = (uint8_t)(n >> 16);
        p[3] = (uint8_t)(n >> 8);
        p[4] = (uint8_t)n;
        size_t w = protobuf_c_message_pack(msg, p + GRPC_PREFIX_LEN);
        b->len += GRPC_PREFIX_LEN + w;
        return GRPC_PREFIX_LEN + w;
}

int grpc_frame_next(const struct grpc_buf *b, size_t max, const uint8_t **ret_msg, size_t *ret_len)
{
        size_t avail = grpc_buf_pending(b);
        if (avail < GRPC_PREFIX_LEN)
                return 0;
        const uint8_t *p = b->data + b->off;
        if (p[0] > 1)
                return -EBADMSG;
        if (p[0] == 1)
                return -EPROTO;
        size_t n = ((size_t)p[1] << 24) | ((size_t)p[2] << 16) | ((size_t)p[3] << 8) | p[4];
        if (n > max) {
                *ret_len = n;
                return -EMSGSIZE;
        }
        if (avail - GRPC_PREFIX_LEN < n)
                return 0;
        *ret_msg = p + GRPC_PREFIX_LEN;
        *ret_len = n;
        return 1;
}

char *grpc_percent_encode(const char *s)
{
        static const char hex[] = "0123456789ABCDEF";
        size_t n = 0;
        for (const unsigned char *p = (const unsigned char *)s; *p; p++)
                n += (*p < 0x20 || *p > 0x7e || *p == '%') ? 3 : 1;
        char *out = xmalloc(n + 1), *o = out;
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                if (*p < 0x20 || *p > 0x7e || *p == '%') {
                        *o++ = '%';
                        *o++ = hex[*p >> 4];
                        *o++ = hex[*p & 15];
                } else
                        *o++ = (char)*p;
        }
        *o = 0;
        return out;
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

char *grpc_percent_decode(const char *s)
{
        size_t n = strlen(s);
        char *out = xmalloc(n + 1), *o = out;
        for (size_t i = 0; i < n; i++) {
                int hi, lo;
                if (s[i] == '%' && i + 2 < n && (hi = hexval(s[i + 1])) >= 0 && (lo = hexval(s[i + 2])) >= 0) {
                        *o++ = (char)(hi << 4 | lo);
                        i += 2;
                } else
                        *o++ = s[i];
        }
        *o = 0;
        return out;
}

int grpc_timeout_parse(const char *s, uint64_t *ret_ms)
{
        size_t n = s ? strlen(s) : 0;
        if (n < 2 || n > 9)
                return -EINVAL;
        uint64_t v = 0;
        for (size_t i = 0; i < n - 1; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                v = v * 10 + (uint64_t)(s[i] - '0');
        }
        uint64_t ms;
        switch (s[n - 1]) {
        case 'H':
                ms = v * 3600000;
                break;
        case 'M':
                ms = v * 60000;
                break;
        case 'S':
                ms = v * 1000;
                break;
        case 'm':
                ms = v;
                break;
        case 'u':
                ms = (v + 999) / 1000;
                break;
        case 'n':
                ms = (v + 999999) / 1000000;
                break;
        default:
                return -EINVAL;
        }
        *ret_ms = ms;
        return 0;
}

void grpc_timeout_format(uint64_t ms, char *buf, size_t size)
{
        if (ms <= 99999999)
                snprintf(buf, size, "%llum", (unsigned long long)ms);
        else if (ms / 1000 <= 99999999)
                snprintf(buf, size, "%lluS", (unsigned long long)((ms + 999) / 1000));
        else if (ms / 60000 <= 99999999)
                snprintf(buf, size, "%lluM", (unsigned long long)((ms + 59999) / 60000));
        else
                snprintf(buf, size, "%lluH", (unsigned long long)((ms + 3599999) / 3600000));
}

uint64_t grpc_now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

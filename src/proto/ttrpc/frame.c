/* ttrpc framing: the 10-byte big-endian header and an incremental reader (ttrpc v1.1 channel.go semantics). */
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "proto/ttrpc/ttrpc-internal.h"
#include "util/alloc.h"

void ttrpc_header_encode(const struct ttrpc_header *h, uint8_t out[10])
{
        out[0] = (uint8_t)(h->length >> 24);
        out[1] = (uint8_t)(h->length >> 16);
        out[2] = (uint8_t)(h->length >> 8);
        out[3] = (uint8_t)h->length;
        out[4] = (uint8_t)(h->stream_id >> 24);
        out[5] = (uint8_t)(h->stream_id >> 16);
        out[6] = (uint8_t)(h->stream_id >> 8);
        out[7] = (uint8_t)h->stream_id;
        out[8] = h->type;
        out[9] = h->flags;
}

void ttrpc_header_decode(const uint8_t in[10], struct ttrpc_header *h)
{
        h->length = (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 | (uint32_t)in[2] << 8 | (uint32_t)in[3];
        h->stream_id = (uint32_t)in[4] << 24 | (uint32_t)in[5] << 16 | (uint32_t)in[6] << 8 | (uint32_t)in[7];
        h->type = in[8];
        h->flags = in[9];
}

void ttrpc_reader_init(struct ttrpc_reader *r)
{
        memset(r, 0, sizeof(*r));
}

void ttrpc_reader_done(struct ttrpc_reader *r)
{
        free(r->buf);
        memset(r, 0, sizeof(*r));
}

static void reader_frame_finished(struct ttrpc_reader *r)
{
        r->in_body = false;
        r->hdr_have = 0;
        r->have = 0;
        if (r->cap > TTRPC_KEEP_BUFFER) {
                free(r->buf);
                r->buf = NULL;
                r->cap = 0;
        }
}

/* Grows the payload buffer to hold want bytes (want <= h.length <= TTRPC_MAX_MESSAGE), doubling so that a
 * frame arriving in many small reads does not realloc per read, but never beyond the announced length. */
static void reader_reserve(struct ttrpc_reader *r, size_t want)
{
        size_t ncap;

        if (want <= r->cap)
                return;
        ncap = r->cap ? r->cap : 512;
        while (ncap < want)
                ncap *= 2;
        if (ncap > r->h.length)
                ncap = r->h.length;
        r->buf = xrealloc(r->buf, ncap);
        r->cap = ncap;
}

bool ttrpc_reader_feed(struct ttrpc_reader *r, const uint8_t *data, size_t n, ttrpc_frame_fn fn, void *userdata)
{
        while (n > 0) {
                if (!r->in_body) {
                        size_t take = TTRPC_HEADER_LEN - r->hdr_have;
                        if (take > n)
                                take = n;
                        memcpy(r->hdr + r->hdr_have, data, take);
                        r->hdr_have += take;
                        data += take;
                        n -= take;
                        if (r->hdr_have < TTRPC_HEADER_LEN)
                                return true;
                        ttrpc_header_decode(r->hdr, &r->h);
                        r->in_body = true;
                        r->have = 0;
                }

                bool oversize = r->h.length > TTRPC_MAX_MESSAGE;
                size_t take = r->h.length - r->have;
                if (take > n)
                        take = n;
                if (!oversize && take > 0) {
                        reader_reserve(r, r->have + take);
                        memcpy(r->buf + r->have, data, take);
                }
                r->have += take;
                data += take;
                n -= take;
                if (r->have < r->h.length)
                        return true;

                struct ttrpc_header h = r->h;
                const uint8_t *payload = oversize ? NULL : r->buf;
                size_t len = oversize ? 0 : h.length;
                /* The owner holds a reference across the feed, so r outlives the callback. */
                bool cont = fn(userdata, &h, payload, len, oversize);
                reader_frame_finished(r);
                if (!cont)
                        return false;
        }
        return true;
}

struct ttrpc_wbuf *ttrpc_wbuf_new(uint32_t stream_id, uint8_t type, const ProtobufCMessage *msg)
{
        size_t len = msg ? protobuf_c_message_get_packed_size(msg) : 0;
        struct ttrpc_wbuf *w = xmalloc(sizeof(*w) + TTRPC_HEADER_LEN + len);
        struct ttrpc_header h = {.length = (uint32_t)len, .stream_id = stream_id, .type = type, .flags = 0};

        ttrpc_header_encode(&h, w->data);
        if (len > 0)
                (void)protobuf_c_message_pack(msg, w->data + TTRPC_HEADER_LEN);
        w->buf = uv_buf_init((char *)w->data, (unsigned)(TTRPC_HEADER_LEN + len));
        w->req.data = NULL;
        return w;
}

const char *ttrpc_address_path(const char *address)
{
        const char *p = address;

        if (!p)
                return NULL;
        if (strncmp(p, "unix://", 7) == 0)
                p += 7;
        if (p[0] != '/' || strlen(p) >= sizeof(((struct sockaddr_un *)NULL)->sun_path))
                return NULL;
        return p;
}

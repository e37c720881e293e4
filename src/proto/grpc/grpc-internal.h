/* Shared inside src/proto/grpc only: gRPC message framing, grpc-message percent-encoding and grpc-timeout
 * parsing (PROTOCOLS.md section 4), used by the server, the client and their unit tests. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#define GRPC_DEFAULT_MAX_MSG (16u * 1024 * 1024) /* containerd's defaults.DefaultMaxRecvMsgSize */
#define GRPC_PREFIX_LEN 5u
#define GRPC_BUF_KEEP (4u * 1024 * 1024 + 64 * 1024) /* a drained grpc_buf up to this size is kept */

/* A growable byte queue: bytes are appended at the end and consumed from off. */
struct grpc_buf {
        uint8_t *data;
        size_t off; /* first unconsumed byte */
        size_t len; /* end of valid bytes */
        size_t cap;
};

void grpc_buf_done(struct grpc_buf *b);
static inline size_t grpc_buf_pending(const struct grpc_buf *b)
{
        return b->len - b->off;
}
/* Makes room for n more bytes and returns a pointer to them (not yet counted in len). */
uint8_t *grpc_buf_reserve(struct grpc_buf *b, size_t n);
void grpc_buf_append(struct grpc_buf *b, const void *p, size_t n);
/* Consumes n bytes (n <= pending); resets the buffer when empty so it does not grow forever. */
void grpc_buf_consume(struct grpc_buf *b, size_t n);

/* Appends msg as one length-prefixed gRPC message (flag 0). Returns the framed size. */
size_t grpc_frame_append(struct grpc_buf *b, const ProtobufCMessage *msg);

/* Extracts the next complete message from the unconsumed bytes of b.
 * Returns 1 and sets *ret_msg and *ret_len (borrowed: valid until b is next modified; the caller consumes
 * GRPC_PREFIX_LEN + *ret_len bytes when done), 0 if more bytes are needed,
 * -EMSGSIZE as soon as the declared length exceeds max (*ret_len = declared length),
 * -EPROTO if the compressed flag is 1 (no compression is negotiated), -EBADMSG if the flag is neither 0 nor 1. */
int grpc_frame_next(const struct grpc_buf *b, size_t max, const uint8_t **ret_msg, size_t *ret_len);

/* grpc-message encoding: bytes outside 0x20-0x7E and '%' become %XX. Returns a new string. */
char *grpc_percent_encode(const char *s);
/* Inverse; malformed escapes are kept verbatim (as grpc-go does). Returns a new string. */
char *grpc_percent_decode(const char *s);

/* Parses a grpc-timeout value: 1-8 ASCII digits and a unit H M S m u n. *ret_ms is rounded up to whole
 * milliseconds (so "1n" is 1 ms). Returns 0 or -EINVAL. */
int grpc_timeout_parse(const char *s, uint64_t *ret_ms);
/* Formats ms as a grpc-timeout value into buf (at least 16 bytes), picking a unit that fits 8 digits. */
void grpc_timeout_format(uint64_t ms, char *buf, size_t size);

struct grpc_client;
struct error;
/* Client on an already connected, non-blocking stream socket (tests, fuzzing); takes ownership of fd, even
 * on failure. name is used in error messages. Exchanges the prefaces like grpc_client_connect(). */
int grpc_client_from_fd(int fd, const char *name, int timeout_ms, struct grpc_client **ret, struct error **err);

/* Creates the listening unix socket at path (absolute): parent directories created 0711, socket 0660,
 * bound under a temporary name and renamed over path so a stale socket is replaced atomically; an
 * answering socket gives -EADDRINUSE, a non-socket file -EEXIST. Returns a non-blocking listening fd. */
int grpc_unix_listen(const char *path, int *ret_fd, struct error **err);

/* CLOCK_MONOTONIC in ms. */
uint64_t grpc_now_ms(void);

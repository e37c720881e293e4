/* Shared inside src/proto/ttrpc only: the incremental frame reader and frame writer used by both the server
 * and the clients, plus the hooks the fuzz target uses to drive a server connection without a socket. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "proto/ttrpc/ttrpc.h"

#ifndef container_of
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#endif

#define TTRPC_HEADER_LEN 10
#define TTRPC_TYPE_REQUEST 1
#define TTRPC_TYPE_RESPONSE 2
/* A payload buffer larger than this is released after its frame instead of being kept for reuse, so one big
 * message does not pin memory for the life of the connection (the shim's RSS budget). */
#define TTRPC_KEEP_BUFFER (16u << 10)
/* Bytes handed to libuv per read. */
#define TTRPC_READ_CHUNK (8u << 10)

/* Called once per complete frame. payload is borrowed (valid during the call). oversize means the header
 * announced more than TTRPC_MAX_MESSAGE: the payload was discarded (payload NULL, len 0) and the receiver
 * must answer ResourceExhausted on h->stream_id. Return false to stop feeding (the connection is gone). */
typedef bool (*ttrpc_frame_fn)(void *userdata, const struct ttrpc_header *h, const uint8_t *payload, size_t len,
                               bool oversize);

struct ttrpc_reader {
        uint8_t hdr[TTRPC_HEADER_LEN];
        size_t hdr_have;
        struct ttrpc_header h;
        uint8_t *buf; /* payload of the current frame; grows as bytes arrive, never past h.length */
        size_t cap;
        size_t have;  /* payload bytes received (or discarded) so far */
        bool in_body; /* header complete, reading payload */
};

void ttrpc_reader_init(struct ttrpc_reader *r);
void ttrpc_reader_done(struct ttrpc_reader *r);
/* Feeds n bytes. Returns false if fn asked to stop; the rest of data is then ignored. */
bool ttrpc_reader_feed(struct ttrpc_reader *r, const uint8_t *data, size_t n, ttrpc_frame_fn fn, void *userdata);

/* A frame ready to be written: header + packed message in one allocation, with the uv_write_t in front. */
struct ttrpc_wbuf {
        uv_write_t req;
        uv_buf_t buf;
        uint8_t data[];
};
/* Packs msg (NULL = empty body) as a frame. Returns a new buffer; the caller writes it or frees it. */
struct ttrpc_wbuf *ttrpc_wbuf_new(uint32_t stream_id, uint8_t type, const ProtobufCMessage *msg);

/* Splits "unix:///path" or "/path"; returns the path (borrowed from address) or NULL if it is not an absolute
 * path-based unix socket address that fits in sun_path. */
const char *ttrpc_address_path(const char *address);

/* --- fuzzing / tests: a server connection with no socket behind it. Frames it would send are dropped. --- */
struct ttrpc_conn;
struct ttrpc_conn *ttrpc_server_conn_new_detached(struct ttrpc_server *s);
/* Feeds bytes into the connection's input path exactly as a read from the socket would. */
void ttrpc_conn_feed(struct ttrpc_conn *conn, const uint8_t *data, size_t n);
/* Closes the connection and drops the caller's reference. */
void ttrpc_conn_release(struct ttrpc_conn *conn);

/* ttrpc for the shim on its own loop (rpc.c): the Task server on the shim socket and the framing the events
 * client shares. Same wire behaviour as src/proto/ttrpc (ttrpc v1.1, PROTOCOLS.md 3.6), without libuv. */
#pragma once

#include <protobuf-c/protobuf-c.h>

#include "proto/status.h"
#include "shim/loop.h"
#include "util/error.h"

#define SHIM_RPC_MAX_MESSAGE (4u << 20)
#define SHIM_RPC_HEADER_LEN 10
#define SHIM_RPC_REQUEST 1
#define SHIM_RPC_RESPONSE 2

/* --- framing (pure) --- */
void shim_frame_header_encode(uint32_t length, uint32_t stream_id, uint8_t type, uint8_t out[10]);

/* Called per complete frame; payload NULL and oversize true when the header announced more than
 * SHIM_RPC_MAX_MESSAGE (the payload was skipped). Return false to stop feeding. */
typedef bool (*shim_frame_fn)(void *data, uint32_t stream_id, uint8_t type, const uint8_t *payload, size_t len,
                              bool oversize);

struct shim_frame_reader {
        uint8_t hdr[SHIM_RPC_HEADER_LEN];
        size_t hdr_have;
        uint32_t length, stream_id;
        uint8_t type;
        bool in_body;
        uint8_t *buf;
        size_t cap, have;
};

bool shim_frame_feed(struct shim_frame_reader *r, const uint8_t *data, size_t n, shim_frame_fn fn, void *userdata);
void shim_frame_reader_done(struct shim_frame_reader *r);

/* --- outgoing byte queue of a non-blocking socket --- */
struct shim_wbuf;
struct shim_wqueue {
        struct shim_wbuf *head, **tail;
        size_t bytes;
};
void shim_wqueue_init(struct shim_wqueue *q);
/* Appends a frame: header + packed msg (NULL = empty body). */
void shim_wqueue_frame(struct shim_wqueue *q, uint32_t stream_id, uint8_t type, const ProtobufCMessage *msg);
/* Writes as much as the socket takes. Returns 1 if everything went out, 0 if some is left (wait for EPOLLOUT),
 * -errno on a write error. */
int shim_wqueue_flush(struct shim_wqueue *q, int fd);
void shim_wqueue_clear(struct shim_wqueue *q);

/* --- server --- */
struct shim_rpc;
struct shim_call;

typedef void (*shim_handler_fn)(struct shim_call *call, const ProtobufCMessage *req, void *userdata);

struct shim_method {
        const char *name;
        const ProtobufCMessageDescriptor *input;
        shim_handler_fn fn;
};

/* Serves one service on an already listening socket fd (takes ownership), rejecting peers whose SO_PEERCRED
 * uid differs from our euid. methods must outlive the server. */
struct shim_rpc *shim_rpc_new(struct shim_loop *l, int listen_fd, const char *service,
                              const struct shim_method *methods, size_t n_methods, void *userdata);
/* Tests and fuzzing (listen_fd may be -1 then): serves a connected socket as if accepted, without the uid
 * check. Takes ownership of fd. */
void shim_rpc_adopt(struct shim_rpc *s, int fd);
/* Stops accepting, tries once more to write queued replies, closes every connection. Calls still referenced
 * answer into the void. NULL-safe. */
void shim_rpc_free(struct shim_rpc *s);

void shim_call_reply(struct shim_call *c, const ProtobufCMessage *msg);
void shim_call_fail(struct shim_call *c, int r, const struct error *e);
void shim_call_fail_status(struct shim_call *c, enum grpc_code code, const char *message);
/* Keeps a call past its handler (Wait). Every call is answered exactly once. */
struct shim_call *shim_call_ref(struct shim_call *c);
void shim_call_unref(struct shim_call *c);

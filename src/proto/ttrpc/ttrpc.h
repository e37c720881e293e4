/* ttrpc (containerd/ttrpc v1.1 as used by containerd 1.6): 10-byte header framing, Request/Response
 * envelopes (src/api/ttrpc.proto). Wire facts: ../shared/docs/PROTOCOLS.md section 3.6.
 * Server and async client run on a libuv loop; all functions must be called on the loop thread.
 * Used by the shim (task server, events client) and krilld (shim clients, events server). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>
#include <uv.h>

#include "proto/status.h"
#include "util/error.h"

#define TTRPC_MAX_MESSAGE (4u << 20)

/* --- framing (pure functions, unit-tested and fuzzed) --- */
struct ttrpc_header {
        uint32_t length;
        uint32_t stream_id;
        uint8_t type; /* 1 request, 2 response */
        uint8_t flags;
};
void ttrpc_header_encode(const struct ttrpc_header *h, uint8_t out[10]);
void ttrpc_header_decode(const uint8_t in[10], struct ttrpc_header *h);

/* --- server --- */
struct ttrpc_server;
struct ttrpc_call;

/* Handler for one method. req is the decoded request (input descriptor of the method), owned by the
 * server and freed after the handler returns. Reply now or later with ttrpc_call_reply/ttrpc_call_fail. */
typedef void (*ttrpc_handler_fn)(struct ttrpc_call *call, const ProtobufCMessage *req, void *userdata);

struct ttrpc_method {
        const char *service; /* "containerd.task.v2.Task" */
        const char *method;  /* "Create" */
        const ProtobufCMessageDescriptor *input;
        ttrpc_handler_fn handler;
        void *userdata;
};

struct ttrpc_server *ttrpc_server_new(uv_loop_t *loop);
int ttrpc_server_add_method(struct ttrpc_server *s, const struct ttrpc_method *m);
/* Listens on a path-based unix socket (never abstract; "unix://" prefix accepted), mode 0600; rejects peers whose
 * SO_PEERCRED uid differs from our euid when require_same_uid (the connection is closed without a reply). A
 * stale socket file nobody answers on is replaced; a live one gives -EADDRINUSE. ttrpc_server_close() removes
 * the socket file. */
int ttrpc_server_listen_unix(struct ttrpc_server *s, const char *path, bool require_same_uid, struct error **err);
/* Serves an already-listening socket fd (takes ownership, even on failure). -EBUSY if already listening. */
int ttrpc_server_listen_fd(struct ttrpc_server *s, int fd, bool require_same_uid, struct error **err);
/* Optional: called when the last client connection closes (the shim uses it after Shutdown). */
void ttrpc_server_set_idle_cb(struct ttrpc_server *s, void (*fn)(void *), void *data);
/* Stops accepting and closes every connection after flushing replies already queued (so a handler may answer
 * Shutdown and then close the server). done_cb (may be NULL) runs when all handles are closed; synchronously if
 * there were none. Calls still referenced answer into the void. */
void ttrpc_server_close(struct ttrpc_server *s, void (*done_cb)(void *), void *data);
/* NULL-safe. Closes first if needed; the memory goes once the loop has run the close callbacks. */
void ttrpc_server_free(struct ttrpc_server *s);

/* First value of a request metadata key, or NULL. Borrowed, valid for the call's life. */
const char *ttrpc_call_metadata(const struct ttrpc_call *c, const char *key);
/* The caller's remaining deadline when it sent the request (Request.timeout_nano), 0 = none. Servers may use
 * it to bound their own work; the client enforces it regardless. */
int64_t ttrpc_call_timeout_nano(const struct ttrpc_call *c);
/* Replies with msg (NULL = empty payload, which is how Empty is sent: a zero-length body). */
void ttrpc_call_reply(struct ttrpc_call *c, const ProtobufCMessage *msg);
void ttrpc_call_fail(struct ttrpc_call *c, int r, const struct error *e);
void ttrpc_call_fail_status(struct ttrpc_call *c, enum grpc_code code, const char *message);
/* Keeps the call alive past the handler (for async replies, e.g. Wait). Every call must be answered exactly
 * once; a call whose connection closed is answered into the void. */
struct ttrpc_call *ttrpc_call_ref(struct ttrpc_call *c);
void ttrpc_call_unref(struct ttrpc_call *c);

/* --- async client --- */
struct ttrpc_client;

/* resp is a new message (free with protobuf_c_message_free_unpacked), or NULL on error (r < 0, e set; e is
 * borrowed for the callback's duration). */
typedef void (*ttrpc_reply_fn)(int r, ProtobufCMessage *resp, const struct error *e, void *userdata);

/* Connects (async) to "unix:///path" or "/path" (-EINVAL otherwise, nothing allocated). connect_cb gets 0 or
 * -errno (e.g. -ENOENT, -ECONNREFUSED); after a failure the client is closed but must still be freed. Calls made
 * while connecting are queued and sent once connected (or failed with the dial error). */
int ttrpc_client_connect(uv_loop_t *loop, const char *address, void (*connect_cb)(struct ttrpc_client *, int, void *),
                         void *data, struct ttrpc_client **ret, struct error **err);
/* Sends a request. metadata: NULL-terminated {key,value} pairs or NULL. timeout_ms 0 = none (sent as
 * timeout_nano and enforced locally: the callback gets -ETIMEDOUT). resp_desc NULL means Empty.
 * If the connection drops, every outstanding call completes with -ECONNRESET. Returns 0 (cb will run exactly
 * once, never from inside this function) or -ENOTCONN / -ECONNRESET when the client is closed (cb is not called).
 * Requires SIGPIPE to be ignored by the process (libuv writes with write(2)). */
int ttrpc_client_call(struct ttrpc_client *c, const char *service, const char *method, const ProtobufCMessage *req,
                      const ProtobufCMessageDescriptor *resp_desc, const char *const *metadata, uint32_t timeout_ms,
                      ttrpc_reply_fn cb, void *userdata);
/* Called once when an established connection closes (peer gone or error); not for a failed dial, not from
 * ttrpc_client_free(). The callback may free the client. Reconnecting is the caller's business. */
void ttrpc_client_set_close_cb(struct ttrpc_client *c, void (*fn)(struct ttrpc_client *, void *), void *data);
bool ttrpc_client_connected(const struct ttrpc_client *c);
/* Closes and frees (outstanding calls complete with -ECANCELED first). NULL-safe; may be called from any of the
 * client's callbacks. */
void ttrpc_client_free(struct ttrpc_client *c);

/* --- blocking client (the shim's `delete` path, tests, CLI tools): one call at a time --- */
/* Dials, sends one request (stream id 1), waits for its reply, closes. timeout_ms bounds the whole call (0 =
 * none) and is sent as timeout_nano. *ret_resp (may be NULL) gets a new message, or NULL for Empty. Errors:
 * the dial errno, -ETIMEDOUT, -ECONNRESET (closed without a reply), or the mapped status with err set. */
int ttrpc_call_sync(const char *address, const char *service, const char *method, const ProtobufCMessage *req,
                    const ProtobufCMessageDescriptor *resp_desc, const char *const *metadata, uint32_t timeout_ms,
                    ProtobufCMessage **ret_resp, struct error **err);

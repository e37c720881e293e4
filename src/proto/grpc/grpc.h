/* gRPC over HTTP/2 (nghttp2 1.52) on unix sockets: a server driven by a libuv loop, and a blocking client.
 * Wire facts: ../shared/docs/PROTOCOLS.md section 4. Threading: every server function must be called on the
 * loop thread that owns the server. The client is blocking and single-threaded (CLI, tests).
 *
 * Server model: a method table keyed by "/package.Service/Method". Each incoming stream becomes a
 * struct grpc_call. The server decodes each 5-byte-framed request message with the method's input
 * descriptor (bounded by max_recv_msg, default 16 MiB) and calls on_message. A handler answers
 * synchronously or later (async: after a worker job or a shim reply) with grpc_call_send()/grpc_call_finish().
 * Calls on one connection run concurrently: a handler that does not finish immediately never blocks others.
 * The process must ignore SIGPIPE: libuv writes to sockets with write(2), and a client that went away would
 * otherwise kill it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>
#include <uv.h>

#include "proto/status.h"
#include "util/error.h"

struct grpc_server;
struct grpc_call;

enum grpc_method_kind {
        GRPC_METHOD_UNARY,
        GRPC_METHOD_SERVER_STREAM,
        GRPC_METHOD_CLIENT_STREAM,
        GRPC_METHOD_BIDI_STREAM,
};

/* Called once per request message. req is owned by the server and freed right after the callback returns;
 * copy what must outlive it. For unary and server-streaming methods it is called once, after the client's
 * END_STREAM. For client/bidi streams it is called per message as they arrive. */
typedef void (*grpc_message_fn)(struct grpc_call *call, const ProtobufCMessage *req, void *userdata);
/* Client streams: the client half-closed (END_STREAM). Optional. */
typedef void (*grpc_half_close_fn)(struct grpc_call *call, void *userdata);
/* The call ended before the handler finished it: RST_STREAM from the client, deadline expiry, connection
 * closed, server shutdown, or the transport failed the call because a later request message was invalid
 * (malformed, too large, compressed; the error status was already sent). Runs at most once, never after
 * grpc_call_finish(). After this returns the handler must not use the call except grpc_call_unref() of
 * references it took. */
typedef void (*grpc_cancel_fn)(struct grpc_call *call, void *userdata);

struct grpc_method {
        const char *path; /* "/containerd.services.version.v1.Version/Version" */
        enum grpc_method_kind kind;
        const ProtobufCMessageDescriptor *input;
        grpc_message_fn on_message;
        grpc_half_close_fn on_half_close; /* may be NULL */
        void *userdata;
};

struct grpc_server_options {
        size_t max_recv_msg;  /* 0 = 16 MiB */
        size_t max_send_msg;  /* 0 = 16 MiB; replies larger than this fail the call with RESOURCE_EXHAUSTED */
        uint32_t max_streams; /* concurrent streams per connection, 0 = 1000 */
        bool log_calls;       /* log each RPC at debug level (path, namespace, status, duration) */
};

/* Creates a server on loop. Never fails (allocation aborts). */
struct grpc_server *grpc_server_new(uv_loop_t *loop, const struct grpc_server_options *opts);
/* Registers a method; the struct is copied (strings are borrowed and must outlive the server). Returns
 * -EEXIST if the path is already registered. Unknown paths get UNIMPLEMENTED. */
int grpc_server_add_method(struct grpc_server *s, const struct grpc_method *m);
/* Listens on a unix socket path: the parent directory is created 0711 if missing, a stale socket (nobody
 * answering) is removed first, an active one gives -EADDRINUSE. The socket is chmod 0660. */
int grpc_server_listen_unix(struct grpc_server *s, const char *path, struct error **err);
/* Serves an already connected stream socket (socket activation, socketpair in tests and fuzzing).
 * Takes ownership of fd, even on failure. */
int grpc_server_add_connection(struct grpc_server *s, int fd, struct error **err);
/* Graceful stop: stop accepting, send GOAWAY, cancel open streams (their cancel callbacks run before this
 * returns), let connections drain (at most 2 s), remove the socket file; done_cb (may be NULL) runs on the
 * loop when everything is closed. Idempotent. */
void grpc_server_shutdown(struct grpc_server *s, void (*done_cb)(void *data), void *data);
void grpc_server_free(struct grpc_server *s); /* after shutdown completed; NULL-safe */

/* --- per call --- */
struct grpc_call *grpc_call_ref(struct grpc_call *c);
void grpc_call_unref(struct grpc_call *c);
const char *grpc_call_path(const struct grpc_call *c);
/* Request metadata (lower-case key). Returns the first value or NULL; borrowed, valid for the call's life. */
const char *grpc_call_metadata(const struct grpc_call *c, const char *key);
/* Absolute deadline in CLOCK_MONOTONIC milliseconds from grpc-timeout, or 0 if none. */
uint64_t grpc_call_deadline_ms(const struct grpc_call *c);
bool grpc_call_is_done(const struct grpc_call *c); /* finished or cancelled */
void grpc_call_set_cancel_cb(struct grpc_call *c, grpc_cancel_fn fn, void *userdata);
/* Handler-private pointer. */
void grpc_call_set_data(struct grpc_call *c, void *data);
void *grpc_call_get_data(const struct grpc_call *c);

/* Queues one response message (packed now; msg stays the caller's). Response HEADERS are sent before the
 * first message. Frames are written on the next loop iteration (never from inside this call), so a send
 * never re-enters handler code. Returns -ECANCELED if the call is done, -EMSGSIZE if larger than max_send_msg.
 * Backpressure: grpc_call_pending_bytes() tells how much is queued but not yet written to the socket; a
 * streaming producer (Content.Read) waits for the writable callback before producing more. */
int grpc_call_send(struct grpc_call *c, const ProtobufCMessage *msg);
size_t grpc_call_pending_bytes(const struct grpc_call *c);
/* Called (once per registration) when pending bytes drop below low_water. */
void grpc_call_set_writable_cb(struct grpc_call *c, size_t low_water, void (*fn)(struct grpc_call *, void *),
                               void *userdata);
/* Ends the call with a status. message may be NULL; it is percent-encoded on the wire. Trailers-only
 * response if nothing was sent yet. If the client has not half-closed, RST_STREAM(NO_ERROR) follows the
 * trailers. No-op if already done. */
void grpc_call_finish(struct grpc_call *c, enum grpc_code code, const char *message);
/* send + finish OK. */
void grpc_call_reply(struct grpc_call *c, const ProtobufCMessage *msg);
/* Finishes with the status mapped from r (-errno) and the rendered message of e (or the class text). */
void grpc_call_fail(struct grpc_call *c, int r, const struct error *e);

/* --- blocking client (CLI, tests) --- */
struct grpc_client;
struct grpc_stream;

struct grpc_metadata {
        const char *key;
        const char *value;
};

/* Connects to a unix socket ("unix:///path" or "/path"), exchanges the HTTP/2 prefaces.
 * timeout_ms bounds the dial (0 = no bound). */
int grpc_client_connect(const char *address, int timeout_ms, struct grpc_client **ret, struct error **err);
void grpc_client_free(struct grpc_client *c);
/* Metadata sent with every call (e.g. containerd-namespace); NULL-terminated array, copied. */
void grpc_client_set_default_metadata(struct grpc_client *c, const struct grpc_metadata *md);
/* Per-call timeout in ms for subsequent calls (sent as grpc-timeout); 0 = none. */
void grpc_client_set_timeout(struct grpc_client *c, int timeout_ms);

/* Unary call. On success *ret_resp is a new message of resp_desc (free with protobuf_c_message_free_unpacked).
 * On a non-OK status returns -errno via status_to_error() with err set from grpc-message. */
int grpc_client_unary(struct grpc_client *c, const char *path, const struct grpc_metadata *extra_md,
                      const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
                      ProtobufCMessage **ret_resp, struct error **err);

/* Streams: open, send any number of messages, close the send side, receive until end.
 * Several streams may be open on one client; receiving on one pumps the connection for all. */
int grpc_client_stream_open(struct grpc_client *c, const char *path, const struct grpc_metadata *extra_md,
                            const ProtobufCMessageDescriptor *resp_desc, struct grpc_stream **ret, struct error **err);
int grpc_stream_send(struct grpc_stream *s, const ProtobufCMessage *msg, struct error **err);
int grpc_stream_close_send(struct grpc_stream *s, struct error **err);
/* Returns 1 with *ret_msg set, 0 at the end of a stream that finished OK, -errno on a non-OK status.
 * timeout_ms: 0 = wait forever; returns -ETIMEDOUT without setting err if nothing arrived in time (the
 * stream stays usable). The call deadline (grpc_client_set_timeout) also ends in -ETIMEDOUT, but with err
 * set ("context deadline exceeded") and the stream reset. A lost connection gives -EAGAIN (UNAVAILABLE). */
int grpc_stream_recv(struct grpc_stream *s, int timeout_ms, ProtobufCMessage **ret_msg, struct error **err);
/* Cancels (RST_STREAM CANCEL) if still open, and frees. */
void grpc_stream_free(struct grpc_stream *s);

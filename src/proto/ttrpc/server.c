/* ttrpc server on libuv: accepts unix connections, checks SO_PEERCRED, decodes Request frames, dispatches to
 * registered methods and writes Response frames, in whatever order the handlers answer (ttrpc v1.1 server.go
 * runs each call in its own goroutine, so clients expect out-of-order replies). */
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "krill-api.h"
#include "proto/ttrpc/ttrpc-internal.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/log.h"

/* Hard limits on what one client can make us hold (STYLE.md section 11). */
#define TTRPC_MAX_CALLS_PER_CONN 1024
#define TTRPC_MAX_WRITE_QUEUE (64u << 20)

struct ttrpc_server {
        uv_loop_t *loop;
        struct ttrpc_method *methods;
        size_t n_methods;
        uv_pipe_t *listener;
        char *bound_path; /* socket file we created, removed on close */
        bool require_same_uid;
        uid_t uid;
        struct ttrpc_conn *conns;
        struct ttrpc_conn *zombies; /* closed by a foreign uv_close(), see on_conn_shutdown() */
        size_t n_conns;
        unsigned pending_closes; /* handles (listener, connections) whose close callback has not run */
        bool closing;
        bool free_when_closed;
        bool in_done;
        void (*idle_fn)(void *);
        void *idle_data;
        void (*done_fn)(void *);
        void *done_data;
};

struct ttrpc_conn {
        unsigned refs;
        struct ttrpc_server *server; /* NULL once the connection is closed */
        struct ttrpc_conn *prev, *next;
        uv_pipe_t pipe;
        uv_shutdown_t shutdown_req;
        bool has_handle; /* false for detached (fuzzing) connections */
        bool serving;    /* passed the credential check */
        bool closed;
        unsigned active_calls;
        struct ttrpc_reader reader;
        uint8_t *rbuf;
};

struct ttrpc_call {
        unsigned refs;
        struct ttrpc_conn *conn;
        uint32_t stream_id;
        bool answered;
        Ttrpc__Request *req;
};

static void server_maybe_done(struct ttrpc_server *s);

static struct ttrpc_conn *conn_ref(struct ttrpc_conn *conn)
{
        conn->refs++;
        return conn;
}

static void conn_unref(struct ttrpc_conn *conn)
{
        assert(conn->refs > 0);
        if (--conn->refs > 0)
                return;
        ttrpc_reader_done(&conn->reader);
        free(conn->rbuf);
        free(conn);
}

static void on_conn_closed(uv_handle_t *h)
{
        struct ttrpc_conn *conn = h->data;
        struct ttrpc_server *s = conn->server;

        conn->server = NULL;
        if (s) {
                s->pending_closes--;
                if (conn->serving && s->n_conns == 0 && !s->closing && s->idle_fn)
                        s->idle_fn(s->idle_data);
                server_maybe_done(s);
        }
        conn_unref(conn);
}

/* Someone closed our handle behind our back (an owner's uv_walk() closing every handle at exit): our close
 * callback will never run, and libuv may still use the handle when we are called. Park the connection;
 * server_destroy() drops its reference once the loop is done with it. */
static void conn_park_foreign_closed(struct ttrpc_conn *conn)
{
        struct ttrpc_server *s = conn->server;

        assert(s);
        conn->server = NULL;
        s->pending_closes--;
        conn->next = s->zombies;
        s->zombies = conn;
}

static void on_conn_shutdown(uv_shutdown_t *req, int status _unused_)
{
        if (uv_is_closing((uv_handle_t *)req->handle))
                conn_park_foreign_closed(req->handle->data);
        else
                uv_close((uv_handle_t *)req->handle, on_conn_closed);
}

/* Stops reading and detaches the connection from the server. Calls still referencing it answer into the void.
 * graceful: replies already queued are flushed first (the reply to the shim's Shutdown must reach the daemon). */
static void conn_close_full(struct ttrpc_conn *conn, bool graceful)
{
        struct ttrpc_server *s = conn->server;

        if (conn->closed)
                return;
        conn->closed = true;
        if (conn->prev)
                conn->prev->next = conn->next;
        else if (s)
                s->conns = conn->next;
        if (conn->next)
                conn->next->prev = conn->prev;
        conn->prev = conn->next = NULL;
        if (s)
                s->n_conns--;
        if (conn->has_handle && s) {
                s->pending_closes++;
                if (uv_is_closing((uv_handle_t *)&conn->pipe)) {
                        conn_park_foreign_closed(conn);
                        return;
                }
                (void)uv_read_stop((uv_stream_t *)&conn->pipe);
                if (!graceful || uv_shutdown(&conn->shutdown_req, (uv_stream_t *)&conn->pipe, on_conn_shutdown) < 0)
                        uv_close((uv_handle_t *)&conn->pipe, on_conn_closed);
        } else {
                conn->server = NULL;
                conn_unref(conn);
        }
}

static void conn_close(struct ttrpc_conn *conn)
{
        conn_close_full(conn, false);
}

static void on_write(uv_write_t *req, int status)
{
        struct ttrpc_wbuf *w = container_of(req, struct ttrpc_wbuf, req);
        struct ttrpc_conn *conn = req->handle->data;

        free(w);
        if (status < 0 && status != UV_ECANCELED)
                conn_close(conn);
}

static void conn_write(struct ttrpc_conn *conn, struct ttrpc_wbuf *w)
{
        if (conn->closed || !conn->has_handle) {
                free(w);
                return;
        }
        /* A peer that never reads must not make us queue replies without bound. */
        if (uv_stream_get_write_queue_size((uv_stream_t *)&conn->pipe) > TTRPC_MAX_WRITE_QUEUE) {
                free(w);
                conn_close(conn);
                return;
        }
        if (uv_write(&w->req, (uv_stream_t *)&conn->pipe, &w->buf, 1, on_write) < 0) {
                free(w);
                conn_close(conn);
        }
}

static void conn_send_status(struct ttrpc_conn *conn, uint32_t stream_id, enum grpc_code code, const char *msg)
{
        Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
        Ttrpc__Response resp = TTRPC__RESPONSE__INIT;

        st.code = (int32_t)code;
        st.message = (char *)msg;
        resp.status = &st;
        conn_write(conn, ttrpc_wbuf_new(stream_id, TTRPC_TYPE_RESPONSE, &resp.base));
}

static void conn_send_statusf(struct ttrpc_conn *conn, uint32_t stream_id, enum grpc_code code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void conn_send_statusf(struct ttrpc_conn *conn, uint32_t stream_id, enum grpc_code code, const char *fmt, ...)
{
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        va_start(ap, fmt);
        msg = xvasprintf(fmt, ap);
        va_end(ap);
        conn_send_status(conn, stream_id, code, msg);
}

static const struct ttrpc_method *server_lookup(const struct ttrpc_server *s, const char *service, const char *method,
                                                bool *ret_service_known)
{
        bool known = false;

        for (size_t i = 0; i < s->n_methods; i++) {
                if (strcmp(s->methods[i].service, service) != 0)
                        continue;
                known = true;
                if (strcmp(s->methods[i].method, method) == 0)
                        return &s->methods[i];
        }
        *ret_service_known = known;
        return NULL;
}

static void conn_dispatch(struct ttrpc_conn *conn, uint32_t stream_id, Ttrpc__Request *req)
{
        struct ttrpc_server *s = conn->server;
        const struct ttrpc_method *mp;
        struct ttrpc_method m;
        ProtobufCMessage *in;
        struct ttrpc_call *call;
        bool service_known = false;

        mp = server_lookup(s, req->service, req->method, &service_known);
        if (!mp) {
                /* ttrpc services.go resolve(): exactly these texts, code Unimplemented. */
                if (!service_known)
                        conn_send_statusf(conn, stream_id, GRPC_UNIMPLEMENTED, "service %s", req->service);
                else
                        conn_send_statusf(conn, stream_id, GRPC_UNIMPLEMENTED, "method %s", req->method);
                protobuf_c_message_free_unpacked(&req->base, NULL);
                return;
        }
        m = *mp; /* the handler may register methods, which may move the table */
        in = protobuf_c_message_unpack(m.input, NULL, req->payload.len, req->payload.data);
        if (!in) {
                conn_send_status(conn, stream_id, GRPC_INTERNAL,
                                 "ttrpc: error unmarshalling payload: invalid protobuf encoding");
                protobuf_c_message_free_unpacked(&req->base, NULL);
                return;
        }

        call = xcalloc(1, sizeof(*call));
        call->refs = 1;
        call->conn = conn_ref(conn);
        call->stream_id = stream_id;
        call->req = req;
        conn->active_calls++;
        m.handler(call, in, m.userdata);
        protobuf_c_message_free_unpacked(in, NULL);
        ttrpc_call_unref(call);
}

static bool conn_on_frame(void *userdata, const struct ttrpc_header *h, const uint8_t *payload, size_t len,
                          bool oversize)
{
        struct ttrpc_conn *conn = userdata;
        Ttrpc__Request *req;

        if (conn->closed)
                return false;
        if (oversize) {
                /* channel.go: the payload was discarded; answer on that stream and keep the connection. */
                conn_send_statusf(conn, h->stream_id, GRPC_RESOURCE_EXHAUSTED,
                                  "message length %" PRIu32 " exceed maximum message size of %u", h->length,
                                  TTRPC_MAX_MESSAGE);
                return !conn->closed;
        }
        if (h->type != TTRPC_TYPE_REQUEST)
                return true; /* ignored for forward compatibility, as server.go does */

        req = (Ttrpc__Request *)protobuf_c_message_unpack(&ttrpc__request__descriptor, NULL, len, payload);
        if (!req) {
                conn_send_status(conn, h->stream_id, GRPC_INVALID_ARGUMENT,
                                 "unmarshal request error: invalid protobuf encoding");
                return !conn->closed;
        }
        if (h->stream_id % 2 != 1) {
                protobuf_c_message_free_unpacked(&req->base, NULL);
                conn_send_status(conn, h->stream_id, GRPC_INVALID_ARGUMENT,
                                 "StreamID must be odd for client initiated streams");
                return !conn->closed;
        }
        if (conn->active_calls >= TTRPC_MAX_CALLS_PER_CONN) {
                protobuf_c_message_free_unpacked(&req->base, NULL);
                conn_send_status(conn, h->stream_id, GRPC_RESOURCE_EXHAUSTED, "too many concurrent calls");
                return !conn->closed;
        }
        conn_dispatch(conn, h->stream_id, req);
        return !conn->closed;
}

void ttrpc_conn_feed(struct ttrpc_conn *conn, const uint8_t *data, size_t n)
{
        conn_ref(conn);
        (void)ttrpc_reader_feed(&conn->reader, data, n, conn_on_frame, conn);
        conn_unref(conn);
}

static void on_alloc(uv_handle_t *h, size_t suggested _unused_, uv_buf_t *buf)
{
        struct ttrpc_conn *conn = h->data;

        if (!conn->rbuf)
                conn->rbuf = xmalloc(TTRPC_READ_CHUNK);
        *buf = uv_buf_init((char *)conn->rbuf, TTRPC_READ_CHUNK);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
        struct ttrpc_conn *conn = stream->data;

        if (nread < 0) {
                conn_close(conn);
                return;
        }
        if (nread > 0)
                ttrpc_conn_feed(conn, (const uint8_t *)buf->base, (size_t)nread);
}

static struct ttrpc_conn *conn_new(struct ttrpc_server *s)
{
        struct ttrpc_conn *conn = xcalloc(1, sizeof(*conn));

        conn->refs = 1; /* owned by the open connection; dropped when it closes */
        conn->server = s;
        ttrpc_reader_init(&conn->reader);
        conn->next = s->conns;
        if (s->conns)
                s->conns->prev = conn;
        s->conns = conn;
        s->n_conns++;
        return conn;
}

static bool peer_allowed(struct ttrpc_server *s, struct ttrpc_conn *conn)
{
        struct ucred cred;
        socklen_t len = sizeof(cred);
        uv_os_fd_t fd;

        if (!s->require_same_uid)
                return true;
        if (uv_fileno((uv_handle_t *)&conn->pipe, &fd) < 0)
                return false;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                return false;
        /* Like ttrpc's UnixSocketRequireSameUser, minus the gid: the lead's contract checks the uid only. */
        if (cred.uid != s->uid) {
                log_debug("ttrpc: rejecting connection from uid %u (pid %d)", (unsigned)cred.uid, (int)cred.pid);
                return false;
        }
        return true;
}

static void on_connection(uv_stream_t *listener, int status)
{
        struct ttrpc_server *s = listener->data;
        struct ttrpc_conn *conn;

        if (status < 0 || s->closing)
                return;
        conn = conn_new(s);
        (void)uv_pipe_init(s->loop, &conn->pipe, 0);
        conn->pipe.data = conn;
        conn->has_handle = true;
        if (uv_accept(listener, (uv_stream_t *)&conn->pipe) < 0 || !peer_allowed(s, conn)) {
                conn_close(conn);
                return;
        }
        conn->serving = true;
        if (uv_read_start((uv_stream_t *)&conn->pipe, on_alloc, on_read) < 0)
                conn_close(conn);
}

struct ttrpc_conn *ttrpc_server_conn_new_detached(struct ttrpc_server *s)
{
        struct ttrpc_conn *conn = conn_new(s);

        conn->serving = true;
        return conn_ref(conn);
}

void ttrpc_conn_release(struct ttrpc_conn *conn)
{
        conn_close(conn);
        conn_unref(conn);
}

struct ttrpc_server *ttrpc_server_new(uv_loop_t *loop)
{
        struct ttrpc_server *s = xcalloc(1, sizeof(*s));

        s->loop = loop;
        s->uid = geteuid();
        return s;
}

int ttrpc_server_add_method(struct ttrpc_server *s, const struct ttrpc_method *m)
{
        bool known;

        assert(m && m->service && m->method && m->input && m->handler);
        if (server_lookup(s, m->service, m->method, &known))
                return -EEXIST;
        s->methods = xreallocarray(s->methods, s->n_methods + 1, sizeof(*s->methods));
        s->methods[s->n_methods++] = *m;
        return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
        struct ttrpc_server *s = h->data;

        free(h);
        s->pending_closes--;
        server_maybe_done(s);
}

int ttrpc_server_listen_fd(struct ttrpc_server *s, int fd, bool require_same_uid, struct error **err)
{
        _cleanup_close_ int owned = fd;
        int r;

        if (s->listener || s->closing)
                return error_set(err, EBUSY, "ttrpc server already listening");
        s->listener = xcalloc(1, sizeof(*s->listener));
        (void)uv_pipe_init(s->loop, s->listener, 0);
        s->listener->data = s;
        r = uv_pipe_open(s->listener, owned);
        if (r >= 0) {
                owned = -1; /* the handle owns it now and closes it with itself */
                r = uv_listen((uv_stream_t *)s->listener, 128, on_connection);
        }
        if (r < 0) {
                s->pending_closes++;
                uv_close((uv_handle_t *)TAKE_PTR(s->listener), on_listener_closed);
                return error_set(err, -r, "ttrpc listen");
        }
        s->require_same_uid = require_same_uid;
        return 0;
}

int ttrpc_server_listen_unix(struct ttrpc_server *s, const char *path, bool require_same_uid, struct error **err)
{
        _cleanup_close_ int fd = -1;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        const char *p = ttrpc_address_path(path);
        int r;

        if (!p)
                return error_set(err, EINVAL, "ttrpc socket %s: must be an absolute path that fits sun_path",
                                 path ? path : "(null)");
        strcpy(sa.sun_path, p);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return error_set(err, errno, "ttrpc socket %s", p);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                _cleanup_close_ int probe = -1;

                if (errno != EADDRINUSE)
                        return error_set(err, errno, "ttrpc bind %s", p);
                /* A socket file nobody answers on is left over from a dead process: replace it. */
                probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (probe < 0)
                        return error_set(err, errno, "ttrpc socket %s", p);
                if (connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno != ECONNREFUSED)
                        return error_set(err, EADDRINUSE, "ttrpc bind %s", p);
                if (unlink(p) < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                        return error_set(err, errno, "ttrpc bind %s", p);
        }
        /* Before listen(), so nobody can connect while the mode is still the umask default. */
        if (chmod(p, 0600) < 0 || listen(fd, 128) < 0) {
                r = error_set(err, errno, "ttrpc listen %s", p);
                (void)unlink(p);
                return r;
        }
        r = ttrpc_server_listen_fd(s, TAKE_FD(fd), require_same_uid, err);
        if (r < 0) {
                (void)unlink(p);
                return r;
        }
        s->bound_path = xstrdup(p);
        return 0;
}

void ttrpc_server_set_idle_cb(struct ttrpc_server *s, void (*fn)(void *), void *data)
{
        s->idle_fn = fn;
        s->idle_data = data;
}

static void server_destroy(struct ttrpc_server *s)
{
        while (s->zombies) {
                struct ttrpc_conn *z = s->zombies;
                s->zombies = z->next;
                z->next = NULL;
                conn_unref(z);
        }
        free(s->methods);
        free(s->bound_path);
        free(s);
}

static void server_maybe_done(struct ttrpc_server *s)
{
        void (*fn)(void *);

        /* in_done: the done callback may call ttrpc_server_free(), which comes back here. */
        if (!s->closing || s->pending_closes > 0 || s->n_conns > 0 || s->in_done)
                return;
        s->in_done = true;
        fn = TAKE_PTR(s->done_fn);
        if (fn)
                fn(s->done_data);
        s->in_done = false;
        if (s->free_when_closed)
                server_destroy(s);
}

void ttrpc_server_close(struct ttrpc_server *s, void (*done_cb)(void *), void *data)
{
        if (s->closing)
                return;
        s->closing = true;
        s->done_fn = done_cb;
        s->done_data = data;
        if (s->listener) {
                s->pending_closes++;
                uv_close((uv_handle_t *)TAKE_PTR(s->listener), on_listener_closed);
        }
        if (s->bound_path)
                (void)unlink(s->bound_path);
        while (s->conns)
                conn_close_full(s->conns, true);
        server_maybe_done(s);
}

void ttrpc_server_free(struct ttrpc_server *s)
{
        if (!s)
                return;
        /* Handles still closing need the server in their close callbacks: finish the free there. */
        s->free_when_closed = true;
        if (!s->closing)
                ttrpc_server_close(s, NULL, NULL);
        else
                server_maybe_done(s);
}

/* --- calls --- */

const char *ttrpc_call_metadata(const struct ttrpc_call *c, const char *key)
{
        for (size_t i = 0; i < c->req->n_metadata; i++)
                if (c->req->metadata[i]->key && strcmp(c->req->metadata[i]->key, key) == 0)
                        return c->req->metadata[i]->value;
        return NULL;
}

int64_t ttrpc_call_timeout_nano(const struct ttrpc_call *c)
{
        return c->req->timeout_nano;
}

static bool call_claim(struct ttrpc_call *c)
{
        if (c->answered) {
                log_debug("ttrpc: stream %" PRIu32 " answered twice", c->stream_id);
                return false;
        }
        c->answered = true;
        return true;
}

/* Encodes Response{payload} by hand (field 2, length-delimited) so the reply is packed once, straight into the
 * frame. A reply with no payload is an empty Response: the zero-length body ttrpc sends for Empty. */
void ttrpc_call_reply(struct ttrpc_call *c, const ProtobufCMessage *msg)
{
        size_t len = msg ? protobuf_c_message_get_packed_size(msg) : 0;
        uint8_t vbuf[10];
        size_t vlen = 0, body;
        struct ttrpc_wbuf *w;
        struct ttrpc_header h = {.stream_id = c->stream_id, .type = TTRPC_TYPE_RESPONSE};

        if (!call_claim(c))
                return;
        if (c->conn->closed)
                return;
        for (size_t v = len;; v >>= 7) {
                vbuf[vlen++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
                if (v <= 0x7f)
                        break;
        }
        body = len ? 1 + vlen + len : 0;
        if (body > TTRPC_MAX_MESSAGE) {
                conn_send_statusf(c->conn, c->stream_id, GRPC_RESOURCE_EXHAUSTED,
                                  "message length %zu exceed maximum message size of %u", body, TTRPC_MAX_MESSAGE);
                return;
        }
        w = xmalloc(sizeof(*w) + TTRPC_HEADER_LEN + body);
        h.length = (uint32_t)body;
        ttrpc_header_encode(&h, w->data);
        if (body) {
                w->data[TTRPC_HEADER_LEN] = 0x12;
                memcpy(w->data + TTRPC_HEADER_LEN + 1, vbuf, vlen);
                (void)protobuf_c_message_pack(msg, w->data + TTRPC_HEADER_LEN + 1 + vlen);
        }
        w->buf = uv_buf_init((char *)w->data, (unsigned)(TTRPC_HEADER_LEN + body));
        conn_write(c->conn, w);
}

void ttrpc_call_fail_status(struct ttrpc_call *c, enum grpc_code code, const char *message)
{
        if (!call_claim(c))
                return;
        if (code == GRPC_OK)
                code = GRPC_UNKNOWN; /* a failure must not read as success on the other side */
        conn_send_status(c->conn, c->stream_id, code, message ? message : "");
}

void ttrpc_call_fail(struct ttrpc_call *c, int r, const struct error *e)
{
        _cleanup_free_ char *msg = NULL;

        if (e)
                msg = error_message(e);
        else
                msg = xstrdup(error_class_text(r < 0 ? -r : r));
        ttrpc_call_fail_status(c, status_from_errno(r), msg);
}

struct ttrpc_call *ttrpc_call_ref(struct ttrpc_call *c)
{
        c->refs++;
        return c;
}

void ttrpc_call_unref(struct ttrpc_call *c)
{
        if (!c)
                return;
        assert(c->refs > 0);
        if (--c->refs > 0)
                return;
        if (!c->answered)
                /* A dropped call would leave the client waiting until its own deadline. */
                ttrpc_call_fail_status(c, GRPC_INTERNAL, "ttrpc: call ended without a reply");
        c->conn->active_calls--;
        conn_unref(c->conn);
        protobuf_c_message_free_unpacked(&c->req->base, NULL);
        free(c);
}

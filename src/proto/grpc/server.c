/* gRPC server: nghttp2 1.52 sessions driven by libuv on unix sockets (PROTOCOLS.md section 4).
 *
 * Lifetimes: a connection and a call are refcounted. nghttp2 callbacks never run handler code: they only
 * record what arrived (headers, bytes, stream close) and mark the call; after nghttp2_session_mem_recv()
 * returns, conn_dispatch() delivers messages, half-closes and cancellations to handlers, each under a
 * reference, so a handler may finish, unref or even shut the server down from inside its callback
 * (redis freeClientAsync idea: objects are released only when no callback of theirs is on the stack). */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "grpc-internal.h"
#include "proto/grpc/grpc.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/log.h"

#define CONN_READ_BUF (64 * 1024)
#define CONN_WRITE_HIGH (1024 * 1024)  /* stop pulling from nghttp2 above this much unwritten output */
/* SETTINGS_INITIAL_WINDOW_SIZE we advertise: a 1 MiB message (ctr's Content.Write chunk) never waits for a
 * WINDOW_UPDATE half way; queued request data is bounded by the services (and CONN_MAX_BUFFERED) */
#define STREAM_WINDOW (4 * 1024 * 1024)
#define CONN_WINDOW (16 * 1024 * 1024) /* connection receive window */
#define MAX_HEADER_BYTES (64 * 1024)   /* request header list bound per stream */
#define MAX_METADATA 64
/* Request bytes buffered per connection (partial messages, unary requests awaiting END_STREAM). One
 * message may be 16 MiB; a client needing more than this at once is abusive and loses the connection. */
#define CONN_MAX_BUFFERED (64 * 1024 * 1024)

struct method_slot {
        struct grpc_method m;
        bool used;
};

struct grpc_server {
        uv_loop_t *loop;
        struct grpc_server_options opts;
        struct method_slot *methods; /* open addressing, power-of-two size */
        size_t methods_cap, methods_n;
        uv_pipe_t *listener;
        char *socket_path;
        struct grpc_conn *conns; /* doubly linked */
        size_t live_conns;       /* connections not yet freed */
        bool shutting_down;
        uv_idle_t *kick;          /* runs conn_flush for kicked connections on the next loop iteration */
        uv_timer_t *drain_timer;  /* bounds how long shutdown waits for connections to drain */
        struct grpc_conn *kicked; /* singly linked through kick_next, one reference each */
        void (*done_cb)(void *);
        void *done_data;
};

struct grpc_conn {
        unsigned refs;
        struct grpc_server *server;
        struct grpc_conn *prev, *next;
        uv_pipe_t handle;
        nghttp2_session *session;
        struct grpc_call *calls; /* doubly linked, one reference each */
        size_t ncalls;
        size_t in_bytes;      /* sum of the calls' in_accounted */
        size_t write_pending; /* bytes handed to uv_write, not yet completed */
        unsigned busy;        /* > 0 while dispatching or flushing: nested flush requests are deferred */
        bool want_flush;
        bool closing;
        bool reading;
        bool in_kick_list;
        struct grpc_conn *kick_next;
        uint8_t rbuf[CONN_READ_BUF];
};

struct md_entry {
        char *key, *value;
};

struct grpc_call {
        unsigned refs;
        struct grpc_conn *conn; /* NULL once detached (stream gone or connection closed) */
        struct grpc_call *prev, *next;
        struct grpc_server *server;
        int32_t stream_id;
        const struct grpc_method *method; /* NULL if the request was rejected */

        /* request */
        char *path, *content_type, *http_method, *timeout, *encoding;
        struct md_entry *md;
        size_t nmd, header_bytes;
        bool headers_done, remote_closed, stream_closed;
        struct grpc_buf in;
        size_t in_scanned;         /* bytes after in.off already checked to be complete, valid messages */
        size_t in_accounted;       /* this call's share of conn->in_bytes */
        struct grpc_buf unary_msg; /* the single request of unary/server-stream calls */
        unsigned nmsgs;

        /* dispatch state */
        bool half_close_pending, half_close_delivered, cancel_pending, unary_delivered;
        bool in_handler_msgs; /* streaming messages were handed over to the dispatcher */
        int reject_code;      /* >0: finish with this status at dispatch */
        char *reject_msg;

        /* response */
        struct grpc_buf out;
        bool headers_sent, finished, cancelled, trailers_submitted, data_deferred;
        bool rst_after_end; /* early server closure: RST_STREAM(NO_ERROR) once our END_STREAM is out */
        enum grpc_code status;
        char *status_msg;
        uint64_t start_ms, deadline_ms;
        uv_timer_t *deadline_timer;

        grpc_cancel_fn cancel_fn;
        void *cancel_data;
        void (*writable_fn)(struct grpc_call *, void *);
        void *writable_data;
        size_t low_water;
        void *data;
};

static void conn_flush(struct grpc_conn *conn);
static void conn_kick(struct grpc_conn *conn);
static void conn_close(struct grpc_conn *conn);
static void call_detach(struct grpc_call *c);
static void conn_unref(struct grpc_conn *conn);

/* ---------------- method table ---------------- */

static uint64_t hash_str(const char *s)
{
        uint64_t h = 1469598103934665603ull;
        for (; *s; s++)
                h = (h ^ (unsigned char)*s) * 1099511628211ull;
        return h;
}

static struct method_slot *method_slot(struct method_slot *t, size_t cap, const char *path)
{
        size_t i = hash_str(path) & (cap - 1);
        while (t[i].used && strcmp(t[i].m.path, path) != 0)
                i = (i + 1) & (cap - 1);
        return &t[i];
}

static const struct grpc_method *method_find(const struct grpc_server *s, const char *path)
{
        if (s->methods_n == 0)
                return NULL;
        struct method_slot *sl = method_slot(s->methods, s->methods_cap, path);
        return sl->used ? &sl->m : NULL;
}

int grpc_server_add_method(struct grpc_server *s, const struct grpc_method *m)
{
        if (!m || !m->path || m->path[0] != '/' || !m->input || !m->on_message)
                return -EINVAL;
        if (method_find(s, m->path))
                return -EEXIST;
        if ((s->methods_n + 1) * 2 > s->methods_cap) {
                size_t cap = s->methods_cap ? s->methods_cap * 2 : 64;
                struct method_slot *t = xcalloc(cap, sizeof(*t));
                for (size_t i = 0; i < s->methods_cap; i++)
                        if (s->methods[i].used)
                                *method_slot(t, cap, s->methods[i].m.path) = s->methods[i];
                free(s->methods);
                s->methods = t;
                s->methods_cap = cap;
        }
        struct method_slot *sl = method_slot(s->methods, s->methods_cap, m->path);
        sl->m = *m;
        sl->used = true;
        s->methods_n++;
        return 0;
}

/* grpc-go's wording for unknown services and methods, which clients print. */
static char *unknown_method_message(const struct grpc_server *s, const char *path)
{
        const char *slash = path[0] == '/' ? strrchr(path + 1, '/') : NULL;
        if (!slash || slash == path + 1)
                return xasprintf("malformed method name: \"%s\"", path);
        size_t svc_len = (size_t)(slash - path); /* includes the leading '/' */
        for (size_t i = 0; i < s->methods_cap; i++) {
                const char *p = s->methods[i].m.path;
                if (s->methods[i].used && strncmp(p, path, svc_len) == 0 && p[svc_len] == '/')
                        return xasprintf("unknown method %s for service %.*s", slash + 1, (int)svc_len - 1, path + 1);
        }
        return xasprintf("unknown service %.*s", (int)svc_len - 1, path + 1);
}

/* ---------------- server ---------------- */

struct grpc_server *grpc_server_new(uv_loop_t *loop, const struct grpc_server_options *opts)
{
        struct grpc_server *s = xcalloc(1, sizeof(*s));
        s->loop = loop;
        if (opts)
                s->opts = *opts;
        if (s->opts.max_recv_msg == 0)
                s->opts.max_recv_msg = GRPC_DEFAULT_MAX_MSG;
        if (s->opts.max_send_msg == 0)
                s->opts.max_send_msg = GRPC_DEFAULT_MAX_MSG;
        if (s->opts.max_streams == 0)
                s->opts.max_streams = 1000;
        s->kick = xcalloc(1, sizeof(*s->kick));
        uv_idle_init(loop, s->kick);
        s->kick->data = s;
        return s;
}

void grpc_server_free(struct grpc_server *s)
{
        if (!s)
                return;
        assert(s->live_conns == 0 && !s->listener && !s->kick && !s->drain_timer);
        free(s->methods);
        free(s->socket_path);
        free(s);
}

static void kick_close_cb(uv_handle_t *h);
static void drain_close_cb(uv_handle_t *h);

/* Shutdown completes in steps: connections gone, then the server's own handles closed, then done_cb. */
static void server_maybe_done(struct grpc_server *s)
{
        if (!s->shutting_down || s->live_conns > 0)
                return;
        if (s->kick && !uv_is_closing((uv_handle_t *)s->kick))
                uv_close((uv_handle_t *)s->kick, kick_close_cb);
        if (s->drain_timer && !uv_is_closing((uv_handle_t *)s->drain_timer))
                uv_close((uv_handle_t *)s->drain_timer, drain_close_cb);
        if (s->listener || s->kick || s->drain_timer || !s->done_cb)
                return;
        void (*cb)(void *) = s->done_cb;
        s->done_cb = NULL;
        cb(s->done_data);
}

/* ---------------- calls ---------------- */

struct grpc_call *grpc_call_ref(struct grpc_call *c)
{
        assert(c->refs > 0);
        c->refs++;
        return c;
}

static void timer_free_cb(uv_handle_t *h)
{
        free(h);
}

static void handle_free_data_cb(uv_handle_t *h)
{
        free(h->data);
}

static void call_stop_timer(struct grpc_call *c)
{
        if (c->deadline_timer) {
                uv_close((uv_handle_t *)c->deadline_timer, timer_free_cb);
                c->deadline_timer = NULL;
        }
}

void grpc_call_unref(struct grpc_call *c)
{
        if (!c)
                return;
        assert(c->refs > 0);
        if (--c->refs > 0)
                return;
        assert(!c->conn);
        call_stop_timer(c);
        free(c->path);
        free(c->content_type);
        free(c->http_method);
        free(c->timeout);
        free(c->encoding);
        for (size_t i = 0; i < c->nmd; i++) {
                free(c->md[i].key);
                free(c->md[i].value);
        }
        free(c->md);
        grpc_buf_done(&c->in);
        grpc_buf_done(&c->unary_msg);
        grpc_buf_done(&c->out);
        free(c->reject_msg);
        free(c->status_msg);
        free(c);
}

static void call_unrefp(struct grpc_call **c)
{
        grpc_call_unref(*c);
}

const char *grpc_call_path(const struct grpc_call *c)
{
        return c->path ? c->path : "";
}

const char *grpc_call_metadata(const struct grpc_call *c, const char *key)
{
        for (size_t i = 0; i < c->nmd; i++)
                if (strcmp(c->md[i].key, key) == 0)
                        return c->md[i].value;
        return NULL;
}

uint64_t grpc_call_deadline_ms(const struct grpc_call *c)
{
        return c->deadline_ms;
}

bool grpc_call_is_done(const struct grpc_call *c)
{
        return c->finished || c->cancelled;
}

void grpc_call_set_cancel_cb(struct grpc_call *c, grpc_cancel_fn fn, void *userdata)
{
        c->cancel_fn = fn;
        c->cancel_data = userdata;
}

void grpc_call_set_data(struct grpc_call *c, void *data)
{
        c->data = data;
}

void *grpc_call_get_data(const struct grpc_call *c)
{
        return c->data;
}

size_t grpc_call_pending_bytes(const struct grpc_call *c)
{
        return grpc_buf_pending(&c->out);
}

void grpc_call_set_writable_cb(struct grpc_call *c, size_t low_water, void (*fn)(struct grpc_call *, void *),
                               void *userdata)
{
        c->writable_fn = fn;
        c->writable_data = userdata;
        c->low_water = low_water;
        if (c->conn && fn)
                conn_kick(c->conn); /* fires it soon if already below low_water */
}

static void call_log(struct grpc_call *c)
{
        if (!c->server->opts.log_calls || !log_enabled(LOG_LEVEL_DEBUG))
                return;
        char status[16], dur[32];
        snprintf(status, sizeof(status), "%d", (int)c->status);
        uint64_t ms = grpc_now_ms() - c->start_ms;
        snprintf(dur, sizeof(dur), "%llu.%03llus", (unsigned long long)(ms / 1000), (unsigned long long)(ms % 1000));
        const char *ns = grpc_call_metadata(c, "containerd-namespace");
        struct log_field f[] = {
            {"method", grpc_call_path(c)},
            {"namespace", ns ? ns : ""},
            {"status", status},
            {"code", status_code_name(c->status)},
            {"duration", dur},
            {c->status != GRPC_OK && c->status_msg ? "error" : NULL, c->status_msg},
            {NULL, NULL},
        };
        log_fields(LOG_LEVEL_DEBUG, f, "grpc call");
}

/* Marks the call cancelled and tells the handler. rst: submit RST_STREAM(CANCEL) if the stream is open. */
static void call_cancel(struct grpc_call *c, enum grpc_code why, bool rst)
{
        if (grpc_call_is_done(c))
                return;
        c->cancelled = true;
        c->status = why;
        call_stop_timer(c);
        c->writable_fn = NULL;
        call_log(c);
        if (rst && c->conn && !c->stream_closed && !c->conn->closing) {
                (void)nghttp2_submit_rst_stream(c->conn->session, NGHTTP2_FLAG_NONE, c->stream_id, NGHTTP2_CANCEL);
                c->conn->want_flush = true;
        }
        if (c->cancel_fn) {
                grpc_cancel_fn fn = c->cancel_fn;
                c->cancel_fn = NULL;
                _cleanup_(call_unrefp) struct grpc_call *ref = grpc_call_ref(c);
                fn(c, c->cancel_data);
        }
}

static void deadline_cb(uv_timer_t *t)
{
        struct grpc_call *c = t->data;
        struct grpc_conn *conn = c->conn;
        if (!conn) {
                call_cancel(c, GRPC_DEADLINE_EXCEEDED, false);
                return;
        }
        conn->refs++;
        call_cancel(c, GRPC_DEADLINE_EXCEEDED, true);
        conn_flush(conn);
        conn_unref(conn);
}

static ssize_t call_data_read(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                              uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
        struct grpc_conn *conn = user_data;
        struct grpc_call *c = nghttp2_session_get_stream_user_data(session, stream_id);
        (void)source;
        if (!c)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        size_t n = grpc_buf_pending(&c->out);
        if (n > length)
                n = length;
        if (n > 0) {
                memcpy(buf, c->out.data + c->out.off, n);
                grpc_buf_consume(&c->out, n);
        }
        if (grpc_buf_pending(&c->out) > 0)
                return (ssize_t)n;
        if (c->finished && !c->trailers_submitted) {
                char code[16];
                _cleanup_free_ char *msg = grpc_percent_encode(c->status_msg ? c->status_msg : "");
                snprintf(code, sizeof(code), "%d", (int)c->status);
                nghttp2_nv trailers[] = {
                    {(uint8_t *)"grpc-status", (uint8_t *)code, 11, strlen(code), NGHTTP2_NV_FLAG_NONE},
                    {(uint8_t *)"grpc-message", (uint8_t *)msg, 12, strlen(msg), NGHTTP2_NV_FLAG_NONE},
                };
                *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
                c->trailers_submitted = true;
                if (nghttp2_submit_trailer(conn->session, stream_id, trailers, 2) == 0)
                        c->rst_after_end = true;
                return (ssize_t)n;
        }
        if (n == 0) {
                c->data_deferred = true;
                return NGHTTP2_ERR_DEFERRED;
        }
        return (ssize_t)n;
}

static int call_submit_headers(struct grpc_call *c)
{
        nghttp2_nv hdrs[] = {
            {(uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE},
            {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, NGHTTP2_NV_FLAG_NONE},
        };
        nghttp2_data_provider prd = {.source.ptr = c, .read_callback = call_data_read};
        c->headers_sent = true;
        return nghttp2_submit_response(c->conn->session, c->stream_id, hdrs, 2, &prd);
}

static void call_resume(struct grpc_call *c)
{
        if (c->data_deferred) {
                c->data_deferred = false;
                (void)nghttp2_session_resume_data(c->conn->session, c->stream_id);
        }
        c->conn->want_flush = true;
}

int grpc_call_send(struct grpc_call *c, const ProtobufCMessage *msg)
{
        if (grpc_call_is_done(c) || !c->conn || c->stream_closed)
                return -ECANCELED;
        if (protobuf_c_message_get_packed_size(msg) > c->server->opts.max_send_msg)
                return -EMSGSIZE;
        grpc_frame_append(&c->out, msg);
        if (!c->headers_sent) {
                if (call_submit_headers(c) < 0) {
                        call_cancel(c, GRPC_INTERNAL, true);
                        return -ECANCELED;
                }
                c->conn->want_flush = true;
        } else
                call_resume(c);
        conn_kick(c->conn);
        return 0;
}

static void submit_trailers_only(struct grpc_call *c, enum grpc_code code, const char *message)
{
        struct grpc_conn *conn = c->conn;
        char cs[16];
        _cleanup_free_ char *msg = grpc_percent_encode(message ? message : "");
        snprintf(cs, sizeof(cs), "%d", (int)code);
        nghttp2_nv hdrs[] = {
            {(uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE},
            {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, NGHTTP2_NV_FLAG_NONE},
            {(uint8_t *)"grpc-status", (uint8_t *)cs, 11, strlen(cs), NGHTTP2_NV_FLAG_NONE},
            {(uint8_t *)"grpc-message", (uint8_t *)msg, 12, strlen(msg), NGHTTP2_NV_FLAG_NONE},
        };
        if (nghttp2_submit_response(conn->session, c->stream_id, hdrs, 4, NULL) == 0)
                c->rst_after_end = true;
        conn->want_flush = true;
}

void grpc_call_finish(struct grpc_call *c, enum grpc_code code, const char *message)
{
        if (grpc_call_is_done(c))
                return;
        c->finished = true;
        c->status = code;
        c->status_msg = xstrdup(message);
        c->writable_fn = NULL;
        call_stop_timer(c);
        call_log(c);
        if (!c->conn || c->stream_closed)
                return;
        if (!c->headers_sent) {
                c->trailers_submitted = true;
                submit_trailers_only(c, code, message);
        } else
                call_resume(c);
        conn_kick(c->conn);
}

void grpc_call_reply(struct grpc_call *c, const ProtobufCMessage *msg)
{
        int r = grpc_call_send(c, msg);
        if (r == -EMSGSIZE) {
                _cleanup_free_ char *m =
                    xasprintf("grpc: trying to send message larger than max (%zu vs. %zu)",
                              protobuf_c_message_get_packed_size(msg), c->server->opts.max_send_msg);
                grpc_call_finish(c, GRPC_RESOURCE_EXHAUSTED, m);
                return;
        }
        grpc_call_finish(c, GRPC_OK, NULL);
}

void grpc_call_fail(struct grpc_call *c, int r, const struct error *e)
{
        enum grpc_code code = status_from_errno(r);
        if (code == GRPC_OK)
                code = GRPC_UNKNOWN;
        _cleanup_free_ char *m = e ? error_message(e) : xstrdup(error_class_text(r < 0 ? -r : r));
        grpc_call_finish(c, code, m);
}

/* ---------------- nghttp2 callbacks: record only, never run handlers ---------------- */

static struct grpc_call *stream_call(nghttp2_session *session, int32_t stream_id)
{
        return nghttp2_session_get_stream_user_data(session, stream_id);
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
        struct grpc_conn *conn = user_data;
        if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
                return 0;
        if (conn->closing || conn->server->shutting_down || conn->ncalls >= conn->server->opts.max_streams) {
                /* Hard limit even before the client has acknowledged MAX_CONCURRENT_STREAMS. */
                (void)nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                                NGHTTP2_REFUSED_STREAM);
                return 0;
        }
        struct grpc_call *c = xcalloc(1, sizeof(*c));
        c->refs = 1; /* the connection's */
        c->conn = conn;
        c->server = conn->server;
        c->stream_id = frame->hd.stream_id;
        c->start_ms = grpc_now_ms();
        c->next = conn->calls;
        if (conn->calls)
                conn->calls->prev = c;
        conn->calls = c;
        conn->ncalls++;
        nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, c);
        return 0;
}

static void set_str(char **p, const uint8_t *v, size_t n)
{
        free(*p);
        *p = xstrndup((const char *)v, n);
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data)
{
        (void)flags;
        (void)user_data;
        struct grpc_call *c = stream_call(session, frame->hd.stream_id);
        if (!c || c->headers_done) /* request trailers carry nothing gRPC uses */
                return 0;
        c->header_bytes += namelen + valuelen + 32;
        if (c->header_bytes > MAX_HEADER_BYTES)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets this stream only */
#define IS(s) (namelen == sizeof(s) - 1 && memcmp(name, s, sizeof(s) - 1) == 0)
        if (IS(":path"))
                set_str(&c->path, value, valuelen);
        else if (IS(":method"))
                set_str(&c->http_method, value, valuelen);
        else if (name[0] == ':')
                return 0;
        else {
                if (IS("content-type"))
                        set_str(&c->content_type, value, valuelen);
                else if (IS("grpc-timeout"))
                        set_str(&c->timeout, value, valuelen);
                else if (IS("grpc-encoding"))
                        set_str(&c->encoding, value, valuelen);
                if (c->nmd >= MAX_METADATA)
                        return 0;
                c->md = xreallocarray(c->md, c->nmd + 1, sizeof(*c->md));
                c->md[c->nmd].key = xstrndup((const char *)name, namelen);
                c->md[c->nmd].value = xstrndup((const char *)value, valuelen);
                c->nmd++;
        }
#undef IS
        return 0;
}

static void call_account(struct grpc_call *c)
{
        size_t now = c->conn ? grpc_buf_pending(&c->in) + grpc_buf_pending(&c->unary_msg) : 0;
        if (c->conn)
                c->conn->in_bytes = c->conn->in_bytes - c->in_accounted + now;
        c->in_accounted = now;
}

static void call_reject(struct grpc_call *c, enum grpc_code code, char *msg)
{
        if (c->reject_code)
                free(msg);
        else {
                c->reject_code = (int)code;
                c->reject_msg = msg;
        }
}

/* Validates the request headers once complete (HTTP and gRPC checks that need no handler). */
static void call_headers_done(struct grpc_conn *conn, struct grpc_call *c)
{
        c->headers_done = true;
        if (!c->http_method || strcmp(c->http_method, "POST") != 0) {
                c->reject_code = -405;
                return;
        }
        if (!c->content_type || strncmp(c->content_type, "application/grpc", 16) != 0 ||
            (c->content_type[16] != 0 && c->content_type[16] != '+' && c->content_type[16] != ';')) {
                /* gRPC spec: a non-gRPC content-type gets HTTP 415, not a gRPC status. */
                c->reject_code = -415;
                return;
        }
        c->method = c->path ? method_find(conn->server, c->path) : NULL;
        if (!c->method) {
                call_reject(c, GRPC_UNIMPLEMENTED, unknown_method_message(conn->server, c->path ? c->path : ""));
                return;
        }
        if (c->encoding && strcmp(c->encoding, "identity") != 0) {
                call_reject(c, GRPC_UNIMPLEMENTED,
                            xasprintf("grpc: Decompressor is not installed for grpc-encoding \"%s\"", c->encoding));
                return;
        }
        if (c->timeout) {
                uint64_t ms;
                if (grpc_timeout_parse(c->timeout, &ms) < 0) {
                        call_reject(c, GRPC_INTERNAL, xasprintf("transport: malformed grpc-timeout: %s", c->timeout));
                        return;
                }
                c->deadline_ms = c->start_ms + ms;
                c->deadline_timer = xmalloc(sizeof(*c->deadline_timer));
                uv_timer_init(conn->server->loop, c->deadline_timer);
                c->deadline_timer->data = c;
                uv_update_time(conn->server->loop); /* the cached loop time may be stale: never fire early */
                uv_timer_start(c->deadline_timer, deadline_cb, ms, 0);
        }
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
        struct grpc_conn *conn = user_data;
        if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
                return 0;
        struct grpc_call *c = stream_call(session, frame->hd.stream_id);
        if (!c)
                return 0;
        if (frame->hd.type == NGHTTP2_HEADERS && !c->headers_done)
                call_headers_done(conn, c);
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
                c->remote_closed = true;
                c->half_close_pending = true;
        }
        return 0;
}

static int on_data_chunk_recv(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data,
                              size_t len, void *user_data)
{
        (void)flags;
        struct grpc_conn *conn = user_data;
        struct grpc_call *c = stream_call(session, stream_id);
        if (!c || grpc_call_is_done(c) || c->reject_code)
                return 0;
        if (conn->in_bytes + len > CONN_MAX_BUFFERED) {
                (void)nghttp2_session_terminate_session(session, NGHTTP2_ENHANCE_YOUR_CALM);
                return 0;
        }
        /* Bounded before it is buffered: one message may be partial, complete ones are drained at dispatch. */
        grpc_buf_append(&c->in, data, len);
        const uint8_t *msg;
        size_t n;
        size_t off = c->in.off + c->in_scanned;
        for (;;) {
                struct grpc_buf view = c->in;
                view.off = off;
                int r = grpc_frame_next(&view, c->server->opts.max_recv_msg, &msg, &n);
                if (r == 0)
                        break;
                if (r == -EMSGSIZE) {
                        call_reject(c, GRPC_RESOURCE_EXHAUSTED,
                                    xasprintf("grpc: received message larger than max (%zu vs. %zu)", n,
                                              c->server->opts.max_recv_msg));
                        grpc_buf_done(&c->in);
                        break;
                }
                if (r == -EPROTO) {
                        call_reject(c, GRPC_INTERNAL,
                                    xstrdup("grpc: compressed flag set with identity or empty encoding"));
                        grpc_buf_done(&c->in);
                        break;
                }
                if (r < 0) {
                        call_reject(c, GRPC_INTERNAL, xstrdup("grpc: invalid message compression flag"));
                        grpc_buf_done(&c->in);
                        break;
                }
                off += GRPC_PREFIX_LEN + n;
        }
        c->in_scanned = grpc_buf_pending(&c->in) ? off - c->in.off : 0;
        call_account(c);
        return 0;
}

/* nghttp2 1.52 does not do "early server closure" itself (PROTOCOLS.md 4.3), and an RST_STREAM submitted
 * together with the final HEADERS would make nghttp2 drop those HEADERS (the stream turns CLOSING at submit
 * time). So the RST is submitted only once the END_STREAM HEADERS frame has actually been sent. */
static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
        (void)user_data;
        if (frame->hd.type != NGHTTP2_HEADERS || !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
                return 0;
        struct grpc_call *c = stream_call(session, frame->hd.stream_id);
        if (c && c->rst_after_end && !c->remote_closed) {
                c->rst_after_end = false;
                (void)nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_NO_ERROR);
        }
        return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *user_data)
{
        (void)error_code;
        (void)user_data;
        struct grpc_call *c = stream_call(session, stream_id);
        if (!c)
                return 0;
        nghttp2_session_set_stream_user_data(session, stream_id, NULL);
        c->stream_closed = true;
        if (!grpc_call_is_done(c))
                c->cancel_pending = true; /* delivered by conn_dispatch */
        else
                call_detach(c);
        return 0;
}

/* ---------------- dispatch (outside nghttp2) ---------------- */

/* Removes the call from its connection and drops the connection's reference. */
static void call_detach(struct grpc_call *c)
{
        struct grpc_conn *conn = c->conn;
        if (!conn)
                return;
        if (c->prev)
                c->prev->next = c->next;
        else
                conn->calls = c->next;
        if (c->next)
                c->next->prev = c->prev;
        c->prev = c->next = NULL;
        conn->ncalls--;
        conn->in_bytes -= c->in_accounted;
        c->in_accounted = 0;
        if (!c->stream_closed && conn->session)
                nghttp2_session_set_stream_user_data(conn->session, c->stream_id, NULL);
        c->conn = NULL;
        grpc_call_unref(c);
}

/* The transport ends a call the handler may already be working on (a later request message was malformed,
 * too big or compressed): finish it with the error and tell the handler through its cancel callback, so
 * references it holds are released exactly as for a client cancellation. */
static void call_abort(struct grpc_call *c, enum grpc_code code, const char *message)
{
        if (grpc_call_is_done(c))
                return;
        grpc_call_finish(c, code, message);
        if (c->cancel_fn) {
                grpc_cancel_fn fn = c->cancel_fn;
                c->cancel_fn = NULL;
                _cleanup_(call_unrefp) struct grpc_call *ref = grpc_call_ref(c);
                fn(c, c->cancel_data);
        }
}

static void deliver(struct grpc_call *c, const uint8_t *p, size_t n)
{
        ProtobufCMessage *req = protobuf_c_message_unpack(c->method->input, NULL, n, p);
        if (!req) {
                call_abort(c, GRPC_INTERNAL,
                           "grpc: error unmarshalling request: proto: cannot parse invalid "
                           "wire-format data");
                return;
        }
        c->method->on_message(c, req, c->method->userdata);
        protobuf_c_message_free_unpacked(req, NULL);
}

static void call_dispatch(struct grpc_call *c)
{
        struct grpc_conn *conn = c->conn;
        if (c->cancel_pending) {
                /* RST_STREAM from the client (or a protocol error): whatever was buffered is dropped. */
                c->cancel_pending = false;
                call_cancel(c, GRPC_CANCELLED, false);
                call_detach(c);
                return;
        }
        if (!c->headers_done && !c->stream_closed)
                return;
        if (c->reject_code < 0 && !grpc_call_is_done(c)) {
                /* HTTP-level rejection: no gRPC status. */
                char st[16];
                snprintf(st, sizeof(st), "%d", -c->reject_code);
                nghttp2_nv hdrs[] = {{(uint8_t *)":status", (uint8_t *)st, 7, strlen(st), NGHTTP2_NV_FLAG_NONE}};
                c->finished = true;
                c->status = GRPC_UNKNOWN;
                c->trailers_submitted = true;
                if (!c->stream_closed) {
                        if (nghttp2_submit_response(conn->session, c->stream_id, hdrs, 1, NULL) == 0)
                                c->rst_after_end = true;
                        conn->want_flush = true;
                }
        } else if (c->reject_code > 0 && !grpc_call_is_done(c)) {
                call_abort(c, (enum grpc_code)c->reject_code, c->reject_msg);
        }
        bool streaming =
            c->method && (c->method->kind == GRPC_METHOD_CLIENT_STREAM || c->method->kind == GRPC_METHOD_BIDI_STREAM);
        /* Drain complete messages. */
        while (!grpc_call_is_done(c) && c->method) {
                const uint8_t *p;
                size_t n;
                int r = grpc_frame_next(&c->in, c->server->opts.max_recv_msg, &p, &n);
                if (r <= 0)
                        break; /* errors were turned into reject_code while receiving */
                c->nmsgs++;
                if (streaming) {
                        /* The buffer may be appended to only by nghttp2, which is not running now. */
                        deliver(c, p, n);
                        grpc_buf_consume(&c->in, GRPC_PREFIX_LEN + n);
                        c->in_scanned -= GRPC_PREFIX_LEN + n;
                } else if (c->nmsgs > 1) {
                        grpc_call_finish(c, GRPC_INTERNAL, "grpc: too many request messages for a unary call");
                } else {
                        grpc_buf_append(&c->unary_msg, p, n);
                        grpc_buf_consume(&c->in, GRPC_PREFIX_LEN + n);
                        c->in_scanned -= GRPC_PREFIX_LEN + n;
                }
        }
        if (c->half_close_pending && !c->half_close_delivered && !grpc_call_is_done(c) && c->method) {
                c->half_close_delivered = true;
                if (grpc_buf_pending(&c->in) > 0)
                        call_abort(c, GRPC_INTERNAL, "grpc: client sent an incomplete message");
                else if (!streaming) {
                        if (c->nmsgs == 0)
                                grpc_call_finish(c, GRPC_INTERNAL, "grpc: no request message for a unary call");
                        else {
                                c->unary_delivered = true;
                                deliver(c, c->unary_msg.data + c->unary_msg.off, grpc_buf_pending(&c->unary_msg));
                                grpc_buf_done(&c->unary_msg);
                        }
                } else if (c->method->on_half_close)
                        c->method->on_half_close(c, c->method->userdata);
        }
        call_account(c);
        if (c->stream_closed)
                call_detach(c);
}

static void conn_dispatch(struct grpc_conn *conn)
{
        if (conn->ncalls == 0)
                return;
        /* Snapshot with references: handlers may finish, cancel or release any call, including others. */
        size_t n = 0;
        struct grpc_call **v = xmalloc(conn->ncalls * sizeof(*v));
        for (struct grpc_call *c = conn->calls; c; c = c->next)
                v[n++] = grpc_call_ref(c);
        for (size_t i = 0; i < n; i++) {
                if (v[i]->conn == conn)
                        call_dispatch(v[i]);
                grpc_call_unref(v[i]);
        }
        free(v);
}

/* ---------------- connection I/O ---------------- */

struct write_req {
        uv_write_t req;
        struct grpc_conn *conn;
        size_t len;
        uint8_t data[];
};

static void conn_unref(struct grpc_conn *conn)
{
        assert(conn->refs > 0);
        if (--conn->refs > 0)
                return;
        struct grpc_server *s = conn->server;
        nghttp2_session_del(conn->session);
        free(conn);
        s->live_conns--;
        server_maybe_done(s);
}

static void write_cb(uv_write_t *req, int status)
{
        struct write_req *w = (struct write_req *)req;
        struct grpc_conn *conn = w->conn;
        conn->write_pending -= w->len;
        free(w);
        if (status < 0)
                conn_close(conn);
        else
                conn_flush(conn);
        conn_unref(conn);
}

static void fire_writable(struct grpc_conn *conn)
{
        size_t n = 0;
        struct grpc_call **v = NULL;
        for (struct grpc_call *c = conn->calls; c; c = c->next)
                if (c->writable_fn && grpc_buf_pending(&c->out) < c->low_water) {
                        v = xreallocarray(v, n + 1, sizeof(*v));
                        v[n++] = grpc_call_ref(c);
                }
        for (size_t i = 0; i < n; i++) {
                struct grpc_call *c = v[i];
                if (c->writable_fn && !grpc_call_is_done(c) && grpc_buf_pending(&c->out) < c->low_water) {
                        void (*fn)(struct grpc_call *, void *) = c->writable_fn;
                        c->writable_fn = NULL;
                        fn(c, c->writable_data);
                }
                grpc_call_unref(c);
        }
        free(v);
}

static bool conn_has_writable(struct grpc_conn *conn)
{
        for (struct grpc_call *c = conn->calls; c; c = c->next)
                if (c->writable_fn && grpc_buf_pending(&c->out) < c->low_water)
                        return true;
        return false;
}

/* Pulls frames out of nghttp2 into uv writes, bounded by CONN_WRITE_HIGH, then gives producers a chance. */
static void conn_flush(struct grpc_conn *conn)
{
        if (conn->closing)
                return;
        if (conn->busy) {
                conn->want_flush = true;
                return;
        }
        conn->busy++;
        conn->refs++;
        for (int round = 0; round < 64 && !conn->closing; round++) {
                conn->want_flush = false;
                /* Frames are gathered straight into the write request: one copy out of nghttp2. */
                struct write_req *w = NULL;
                size_t len = 0, cap = 0;
                while (conn->write_pending + len < CONN_WRITE_HIGH) {
                        const uint8_t *data;
                        ssize_t n = nghttp2_session_mem_send(conn->session, &data);
                        if (n < 0) {
                                free(w);
                                conn->busy--;
                                conn_close(conn);
                                conn_unref(conn);
                                return;
                        }
                        if (n == 0)
                                break;
                        if (len + (size_t)n > cap) {
                                cap = cap * 2 > len + (size_t)n ? cap * 2 : len + (size_t)n + 64 * 1024;
                                w = xrealloc(w, sizeof(*w) + cap);
                        }
                        memcpy(w->data + len, data, (size_t)n);
                        len += (size_t)n;
                }
                if (len > 0) {
                        w->conn = conn;
                        w->len = len;
                        conn->refs++;
                        conn->write_pending += len;
                        uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)len);
                        int r = uv_write(&w->req, (uv_stream_t *)&conn->handle, &b, 1, write_cb);
                        if (r < 0) {
                                conn->write_pending -= len;
                                conn->refs--;
                                free(w);
                                conn->busy--;
                                conn_close(conn);
                                conn_unref(conn);
                                return;
                        }
                }
                /* Closed streams were noticed by nghttp2 while sending: release them. */
                conn_dispatch(conn);
                if (conn->write_pending < CONN_WRITE_HIGH && conn_has_writable(conn))
                        fire_writable(conn);
                if (!conn->want_flush)
                        break;
        }
        conn->busy--;
        /* During shutdown everything queued (the GOAWAY last) is out once nothing is pending: close then. */
        if (!conn->closing && conn->write_pending == 0 &&
            (conn->server->shutting_down ||
             (!nghttp2_session_want_read(conn->session) && !nghttp2_session_want_write(conn->session))))
                conn_close(conn);
        conn_unref(conn);
}

static void kick_cb(uv_idle_t *h)
{
        struct grpc_server *s = h->data;
        uv_idle_stop(h);
        while (s->kicked) {
                struct grpc_conn *conn = s->kicked;
                s->kicked = conn->kick_next;
                conn->kick_next = NULL;
                conn->in_kick_list = false;
                conn_flush(conn);
                conn_unref(conn);
        }
}

/* Handler API calls (send, finish) only mark the connection: frames go out on the next loop iteration, so
 * no handler code is ever re-entered from inside another handler's call, and sends are coalesced. */
static void conn_kick(struct grpc_conn *conn)
{
        struct grpc_server *s = conn->server;
        if (conn->in_kick_list || conn->closing || !s->kick)
                return;
        conn->in_kick_list = true;
        conn->refs++;
        conn->kick_next = s->kicked;
        s->kicked = conn;
        uv_idle_start(s->kick, kick_cb);
}

static void conn_handle_close_cb(uv_handle_t *h)
{
        struct grpc_conn *conn = h->data;
        conn_unref(conn);
}

/* Closes the connection: every open call is cancelled (cancel callbacks run) and detached. */
static void conn_close(struct grpc_conn *conn)
{
        if (conn->closing)
                return;
        conn->closing = true;
        conn->refs++;
        struct grpc_server *s = conn->server;
        if (conn->prev)
                conn->prev->next = conn->next;
        else if (s->conns == conn)
                s->conns = conn->next;
        if (conn->next)
                conn->next->prev = conn->prev;
        conn->prev = conn->next = NULL;
        while (conn->calls) {
                struct grpc_call *c = grpc_call_ref(conn->calls);
                call_detach(c);
                call_cancel(c, GRPC_CANCELLED, false);
                grpc_call_unref(c);
        }
        if (conn->reading)
                uv_read_stop((uv_stream_t *)&conn->handle);
        uv_close((uv_handle_t *)&conn->handle, conn_handle_close_cb);
        conn_unref(conn);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
        (void)suggested;
        struct grpc_conn *conn = h->data;
        *buf = uv_buf_init((char *)conn->rbuf, sizeof(conn->rbuf));
}

static void conn_input(struct grpc_conn *conn, const uint8_t *data, size_t len)
{
        conn->refs++;
        conn->busy++;
        ssize_t r = nghttp2_session_mem_recv(conn->session, data, len);
        conn->busy--;
        if (r < 0) {
                log_debug("grpc: closing connection: %s", nghttp2_strerror((int)r));
                /* Try to get the GOAWAY nghttp2 queued out before closing. */
                const uint8_t *p;
                ssize_t n = nghttp2_session_mem_send(conn->session, &p);
                if (n > 0) {
                        uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
                        (void)uv_try_write((uv_stream_t *)&conn->handle, &b, 1);
                }
                conn_close(conn);
        } else {
                conn->busy++;
                conn_dispatch(conn);
                conn->busy--;
                conn_flush(conn);
        }
        conn_unref(conn);
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
        struct grpc_conn *conn = stream->data;
        if (nread < 0) {
                conn_close(conn);
                return;
        }
        if (nread > 0)
                conn_input(conn, (const uint8_t *)buf->base, (size_t)nread);
}

static nghttp2_session_callbacks *server_callbacks(void)
{
        nghttp2_session_callbacks *cbs;
        if (nghttp2_session_callbacks_new(&cbs) != 0)
                abort();
        nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
        nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk_recv);
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
        nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
        return cbs;
}

/* Takes ownership of the connected handle (already initialised and accepted). */
static void conn_start(struct grpc_server *s, struct grpc_conn *conn)
{
        conn->refs = 1; /* the handle's, released in its close callback */
        conn->server = s;
        conn->handle.data = conn;
        s->live_conns++;
        conn->next = s->conns;
        if (s->conns)
                s->conns->prev = conn;
        s->conns = conn;

        nghttp2_session_callbacks *cbs = server_callbacks();
        nghttp2_option *opt;
        if (nghttp2_option_new(&opt) != 0)
                abort();
        /* grpc-go's BDP pings and our own flow control must not be throttled by nghttp2's flood checks. */
        nghttp2_option_set_max_outbound_ack(opt, 10000);
        int r = nghttp2_session_server_new2(&conn->session, cbs, conn, opt);
        nghttp2_option_del(opt);
        nghttp2_session_callbacks_del(cbs);
        if (r != 0)
                abort();

        /* grpc-go treats the server's first frame as its preface: it must be SETTINGS, sent right away. */
        nghttp2_settings_entry iv[] = {
            {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, s->opts.max_streams},
            {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
            {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_BYTES},
        };
        (void)nghttp2_submit_settings(conn->session, NGHTTP2_FLAG_NONE, iv, ELEMENTSOF(iv));
        (void)nghttp2_session_set_local_window_size(conn->session, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW);
        if (uv_read_start((uv_stream_t *)&conn->handle, alloc_cb, read_cb) == 0)
                conn->reading = true;
        conn_flush(conn);
        if (!conn->reading)
                conn_close(conn);
}

int grpc_server_add_connection(struct grpc_server *s, int fd, struct error **err)
{
        struct grpc_conn *conn = xcalloc(1, sizeof(*conn));
        int r = uv_pipe_init(s->loop, &conn->handle, 0);
        if (r < 0) {
                free(conn);
                close(fd);
                return error_set(err, -r, "grpc: pipe init");
        }
        r = uv_pipe_open(&conn->handle, fd);
        if (r < 0) {
                conn->handle.data = conn;
                uv_close((uv_handle_t *)&conn->handle, handle_free_data_cb);
                close(fd);
                return error_set(err, -r, "grpc: adopting connection fd");
        }
        conn_start(s, conn);
        return 0;
}

static void on_connection(uv_stream_t *listener, int status)
{
        struct grpc_server *s = listener->data;
        if (status < 0 || s->shutting_down)
                return;
        struct grpc_conn *conn = xcalloc(1, sizeof(*conn));
        uv_pipe_init(s->loop, &conn->handle, 0);
        if (uv_accept(listener, (uv_stream_t *)&conn->handle) < 0) {
                conn->handle.data = conn;
                uv_close((uv_handle_t *)&conn->handle, handle_free_data_cb);
                return;
        }
        conn_start(s, conn);
}

/* ---------------- listening ---------------- */

int grpc_server_listen_unix(struct grpc_server *s, const char *path, struct error **err)
{
        int fd = -1, r;

        if (s->listener)
                return error_set(err, EBUSY, "grpc: server already listening");
        r = grpc_unix_listen(path, &fd, err);
        if (r < 0)
                return r;
        s->listener = xcalloc(1, sizeof(*s->listener));
        uv_pipe_init(s->loop, s->listener, 0);
        s->listener->data = s;
        r = uv_pipe_open(s->listener, fd);
        if (r < 0)
                close(fd); /* not adopted by the handle */
        else
                r = uv_listen((uv_stream_t *)s->listener, 512, on_connection);
        if (r < 0) {
                uv_close((uv_handle_t *)s->listener, timer_free_cb);
                s->listener = NULL;
                (void)unlink(path);
                return error_set(err, -r, "grpc: listen %s", path);
        }
        s->socket_path = xstrdup(path);
        return 0;
}

/* Cancels every open call of conn locally (no RST_STREAM): used at shutdown, where the transport closes. */
static void conn_cancel_all(struct grpc_conn *conn)
{
        size_t n = 0;
        struct grpc_call **v = xmalloc((conn->ncalls + 1) * sizeof(*v));
        for (struct grpc_call *c = conn->calls; c; c = c->next)
                v[n++] = grpc_call_ref(c);
        for (size_t i = 0; i < n; i++) {
                if (v[i]->conn == conn)
                        call_cancel(v[i], GRPC_CANCELLED, false);
                grpc_call_unref(v[i]);
        }
        free(v);
}

static void kick_close_cb(uv_handle_t *h)
{
        struct grpc_server *s = h->data;
        free(h);
        s->kick = NULL;
        server_maybe_done(s);
}

static void drain_close_cb(uv_handle_t *h)
{
        struct grpc_server *s = h->data;
        free(h);
        s->drain_timer = NULL;
        server_maybe_done(s);
}

static void listener_close_cb(uv_handle_t *h)
{
        struct grpc_server *s = h->data;
        free(h);
        s->listener = NULL;
        server_maybe_done(s);
}

static void drain_cb(uv_timer_t *t)
{
        struct grpc_server *s = t->data;
        /* Peers that did not read our GOAWAY in time: close regardless. */
        while (s->conns)
                conn_close(s->conns);
}

void grpc_server_shutdown(struct grpc_server *s, void (*done_cb)(void *data), void *data)
{
        if (s->shutting_down)
                return;
        s->shutting_down = true;
        s->done_cb = done_cb;
        s->done_data = data;
        if (s->socket_path) {
                (void)unlink(s->socket_path);
                free(s->socket_path);
                s->socket_path = NULL;
        }
        if (s->listener && !uv_is_closing((uv_handle_t *)s->listener))
                uv_close((uv_handle_t *)s->listener, listener_close_cb);
        size_t n = 0;
        for (struct grpc_conn *conn = s->conns; conn; conn = conn->next)
                n++;
        struct grpc_conn **v = xmalloc((n + 1) * sizeof(*v));
        n = 0;
        for (struct grpc_conn *conn = s->conns; conn; conn = conn->next) {
                conn->refs++;
                v[n++] = conn;
        }
        /* GOAWAY with the last stream we processed, open calls cancelled here (cancel callbacks run now) but
         * not reset on the wire, then each connection closes as soon as the GOAWAY is written. A Go client
         * then fails its open streams with Unavailable ("transport is closing" / "error reading from
         * server: EOF"), as with containerd's Stop; RST_STREAM(CANCEL) would make them Canceled. */
        for (size_t i = 0; i < n; i++) {
                struct grpc_conn *conn = v[i];
                if (!conn->closing) {
                        (void)nghttp2_submit_goaway(conn->session, NGHTTP2_FLAG_NONE,
                                                    nghttp2_session_get_last_proc_stream_id(conn->session),
                                                    NGHTTP2_NO_ERROR, NULL, 0);
                        conn->busy++;
                        conn_cancel_all(conn);
                        conn->busy--;
                        conn_flush(conn);
                }
                conn_unref(conn);
        }
        free(v);
        if (s->conns) {
                s->drain_timer = xmalloc(sizeof(*s->drain_timer));
                uv_timer_init(s->loop, s->drain_timer);
                s->drain_timer->data = s;
                uv_timer_start(s->drain_timer, drain_cb, 2000, 0);
        }
        server_maybe_done(s);
}

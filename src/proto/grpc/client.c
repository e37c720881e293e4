/* Blocking gRPC client over a unix socket (CLI, tests). Single-threaded: every call pumps the one connection
 * with poll(), so receiving on one stream also moves every other open stream forward. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "grpc-internal.h"
#include "proto/grpc/grpc.h"
#include "util/alloc.h"
#include "util/cleanup.h"

#define CLIENT_WINDOW (4 * 1024 * 1024)
#define CLIENT_CONN_WINDOW (16 * 1024 * 1024)
#define SEND_HIGH (1024 * 1024) /* grpc_stream_send() pumps until the stream's queue is below this */
#define OUT_HIGH (256 * 1024)

struct rmsg {
        struct rmsg *next;
        size_t len;
        uint8_t data[];
};

struct grpc_stream {
        struct grpc_client *client;
        struct grpc_stream *prev, *next;
        int32_t stream_id;
        const ProtobufCMessageDescriptor *resp_desc;
        struct grpc_buf out;
        bool send_closed, deferred;
        struct grpc_buf in;
        struct rmsg *msgs, **msgs_tail;
        int http_status;
        bool have_status, remote_done, closed, ct_ok;
        enum grpc_code status;
        char *message;
        uint64_t deadline_ms;
};

struct grpc_client {
        int fd;
        nghttp2_session *session;
        struct grpc_metadata *md; /* owned copies */
        size_t nmd;
        int timeout_ms;
        struct grpc_stream *streams;
        struct grpc_buf wbuf;
        bool dead, got_settings;
};

static void stream_set_status(struct grpc_stream *s, enum grpc_code code, const char *msg)
{
        if (s->have_status)
                return;
        s->have_status = true;
        s->status = code;
        free(s->message);
        s->message = xstrdup(msg ? msg : "");
}

static void client_mark_dead(struct grpc_client *c, const char *why)
{
        c->dead = true;
        for (struct grpc_stream *s = c->streams; s; s = s->next) {
                stream_set_status(s, GRPC_UNAVAILABLE, why);
                s->remote_done = s->closed = true;
        }
}

/* ---------------- nghttp2 callbacks ---------------- */

static ssize_t stream_data_read(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                                uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
        (void)source;
        (void)user_data;
        /* Looked up, not taken from source: a freed stream has no user data and gets reset. */
        struct grpc_stream *s = nghttp2_session_get_stream_user_data(session, stream_id);
        if (!s)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        size_t n = grpc_buf_pending(&s->out);
        if (n > length)
                n = length;
        if (n > 0) {
                memcpy(buf, s->out.data + s->out.off, n);
                grpc_buf_consume(&s->out, n);
        }
        if (grpc_buf_pending(&s->out) == 0 && s->send_closed) {
                *data_flags |= NGHTTP2_DATA_FLAG_EOF;
                return (ssize_t)n;
        }
        if (n == 0) {
                s->deferred = true;
                return NGHTTP2_ERR_DEFERRED;
        }
        return (ssize_t)n;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data)
{
        (void)flags;
        (void)user_data;
        struct grpc_stream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
        if (!s || frame->hd.type != NGHTTP2_HEADERS)
                return 0;
#define IS(x) (namelen == sizeof(x) - 1 && memcmp(name, x, sizeof(x) - 1) == 0)
        if (IS(":status")) {
                char b[8] = {0};
                memcpy(b, value, valuelen < 7 ? valuelen : 7);
                s->http_status = atoi(b);
        } else if (IS("content-type"))
                s->ct_ok = valuelen >= 16 && memcmp(value, "application/grpc", 16) == 0;
        else if (IS("grpc-status")) {
                char b[8] = {0};
                memcpy(b, value, valuelen < 7 ? valuelen : 7);
                s->status = (enum grpc_code)atoi(b);
                s->have_status = true;
        } else if (IS("grpc-message")) {
                _cleanup_free_ char *raw = xstrndup((const char *)value, valuelen);
                free(s->message);
                s->message = grpc_percent_decode(raw);
        }
#undef IS
        return 0;
}

/* grpc-go's mapping of a non-200 HTTP status (http_util.go HTTPStatusConvTab). */
static enum grpc_code http_to_grpc(int st)
{
        switch (st) {
        case 400:
                return GRPC_INTERNAL;
        case 401:
                return GRPC_UNAUTHENTICATED;
        case 403:
                return GRPC_PERMISSION_DENIED;
        case 404:
                return GRPC_UNIMPLEMENTED;
        case 429:
        case 502:
        case 503:
        case 504:
                return GRPC_UNAVAILABLE;
        default:
                return GRPC_UNKNOWN;
        }
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
        struct grpc_client *c = user_data;
        if (frame->hd.type == NGHTTP2_SETTINGS && !(frame->hd.flags & NGHTTP2_FLAG_ACK))
                c->got_settings = true;
        if (frame->hd.type == NGHTTP2_GOAWAY)
                c->got_settings = true;
        if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
                return 0;
        struct grpc_stream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
        if (!s)
                return 0;
        if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_RESPONSE && !s->have_status) {
                if (s->http_status != 200) {
                        _cleanup_free_ char *m =
                            xasprintf("unexpected HTTP status code received from server: %d", s->http_status);
                        stream_set_status(s, http_to_grpc(s->http_status), m);
                } else if (!s->ct_ok)
                        /* grpc-go rejects a response that is not application/grpc (http_util.go). */
                        stream_set_status(s, GRPC_INTERNAL, "transport: received unexpected content-type");
        }
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
                s->remote_done = true;
                if (!s->have_status)
                        stream_set_status(s, GRPC_INTERNAL, "server closed the stream without sending trailers");
        }
        return 0;
}

static int on_data_chunk_recv(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data,
                              size_t len, void *user_data)
{
        (void)flags;
        (void)user_data;
        struct grpc_stream *s = nghttp2_session_get_stream_user_data(session, stream_id);
        if (!s || s->have_status)
                return 0;
        grpc_buf_append(&s->in, data, len);
        for (;;) {
                const uint8_t *p;
                size_t n;
                int r = grpc_frame_next(&s->in, GRPC_DEFAULT_MAX_MSG, &p, &n);
                if (r == 0)
                        break;
                if (r < 0) {
                        _cleanup_free_ char *m = r == -EMSGSIZE
                                                     ? xasprintf("grpc: received message larger than max (%zu vs. %u)",
                                                                 n, GRPC_DEFAULT_MAX_MSG)
                                                     : xstrdup("grpc: invalid or compressed response message");
                        stream_set_status(s, r == -EMSGSIZE ? GRPC_RESOURCE_EXHAUSTED : GRPC_INTERNAL, m);
                        s->remote_done = true;
                        grpc_buf_done(&s->in);
                        (void)nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
                        break;
                }
                struct rmsg *m = xmalloc(sizeof(*m) + n);
                m->next = NULL;
                m->len = n;
                memcpy(m->data, p, n);
                *s->msgs_tail = m;
                s->msgs_tail = &m->next;
                grpc_buf_consume(&s->in, GRPC_PREFIX_LEN + n);
        }
        return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *user_data)
{
        (void)user_data;
        struct grpc_stream *s = nghttp2_session_get_stream_user_data(session, stream_id);
        if (!s)
                return 0;
        s->closed = s->remote_done = true;
        if (!s->have_status) {
                if (error_code == NGHTTP2_CANCEL && s->deadline_ms && grpc_now_ms() >= s->deadline_ms)
                        /* The server enforced our own grpc-timeout: report it as the deadline, like grpc-go. */
                        stream_set_status(s, GRPC_DEADLINE_EXCEEDED, "context deadline exceeded");
                else if (error_code == NGHTTP2_CANCEL)
                        stream_set_status(s, GRPC_CANCELLED, "stream cancelled by the server");
                else if (error_code == NGHTTP2_REFUSED_STREAM)
                        stream_set_status(s, GRPC_UNAVAILABLE, "stream refused by the server");
                else {
                        char m[80];
                        snprintf(m, sizeof(m), "stream terminated by RST_STREAM with error code: %u", error_code);
                        stream_set_status(s, GRPC_INTERNAL, m);
                }
        }
        return 0;
}

/* ---------------- I/O pump ---------------- */

static void fill_wbuf(struct grpc_client *c)
{
        if (c->dead)
                return; /* the session is never driven again once the connection is gone */
        while (grpc_buf_pending(&c->wbuf) < OUT_HIGH && nghttp2_session_want_write(c->session)) {
                const uint8_t *p;
                ssize_t n = nghttp2_session_mem_send(c->session, &p);
                if (n < 0) {
                        client_mark_dead(c, "transport: http2 send failed");
                        return;
                }
                if (n == 0)
                        break;
                grpc_buf_append(&c->wbuf, p, (size_t)n);
        }
}

/* One round of I/O: writes what can be written, waits up to timeout_ms (-1 forever) for input, feeds it.
 * Returns 0, -ETIMEDOUT if nothing happened, or -ECONNRESET once the connection is gone. */
static int client_pump(struct grpc_client *c, int timeout_ms)
{
        if (c->dead)
                return -ECONNRESET;
        fill_wbuf(c);
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        if (grpc_buf_pending(&c->wbuf) > 0)
                pfd.events |= POLLOUT;
        int r = poll(&pfd, 1, timeout_ms);
        if (r < 0)
                return errno == EINTR ? 0 : -errno;
        if (r == 0)
                return -ETIMEDOUT;
        if (pfd.revents & POLLOUT) {
                ssize_t n = send(c->fd, c->wbuf.data + c->wbuf.off, grpc_buf_pending(&c->wbuf), MSG_NOSIGNAL);
                if (n > 0)
                        grpc_buf_consume(&c->wbuf, (size_t)n);
                else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                        client_mark_dead(c, "transport: connection closed");
                        return -ECONNRESET;
                }
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
                uint8_t buf[64 * 1024];
                ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
                if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                        client_mark_dead(c, "transport: connection closed");
                        return -ECONNRESET;
                }
                if (n > 0 && nghttp2_session_mem_recv(c->session, buf, (size_t)n) < 0) {
                        client_mark_dead(c, "transport: http2 protocol error");
                        return -ECONNRESET;
                }
        }
        fill_wbuf(c);
        return 0;
}

/* Writes out whatever can go without blocking. */
static void client_flush_nowait(struct grpc_client *c)
{
        fill_wbuf(c);
        while (!c->dead && grpc_buf_pending(&c->wbuf) > 0) {
                ssize_t n = send(c->fd, c->wbuf.data + c->wbuf.off, grpc_buf_pending(&c->wbuf), MSG_NOSIGNAL);
                if (n <= 0)
                        break;
                grpc_buf_consume(&c->wbuf, (size_t)n);
                fill_wbuf(c);
        }
}

/* ---------------- connection ---------------- */

int grpc_client_connect(const char *address, int timeout_ms, struct grpc_client **ret, struct error **err)
{
        const char *path = address;
        if (strncmp(path, "unix://", 7) == 0)
                path += 7;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof(sa.sun_path))
                return error_set(err, ENAMETOOLONG, "dial unix %s", path);
        strcpy(sa.sun_path, path);
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return error_set(err, errno, "socket");
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                if (errno != EAGAIN && errno != EINPROGRESS)
                        return error_set(err, errno, "dial unix %s: connect", path);
                /* A unix listener with a full backlog: wait for room. */
                uint64_t end = timeout_ms > 0 ? grpc_now_ms() + (uint64_t)timeout_ms : 0;
                for (;;) {
                        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
                        int left = end ? (int)(end > grpc_now_ms() ? end - grpc_now_ms() : 0) : 100;
                        (void)poll(&pfd, 1, left);
                        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EISCONN)
                                break;
                        if (errno != EAGAIN && errno != EINPROGRESS && errno != EALREADY)
                                return error_set(err, errno, "dial unix %s: connect", path);
                        if (end && grpc_now_ms() >= end)
                                return error_set(err, ETIMEDOUT, "dial unix %s", path);
                }
        }

        return grpc_client_from_fd(TAKE_FD(fd), path, timeout_ms, ret, err);
}

int grpc_client_from_fd(int fd, const char *name, int timeout_ms, struct grpc_client **ret, struct error **err)
{
        const char *path = name;
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
                int r = -errno;
                close(fd);
                return error_set(err, -r, "grpc: %s", name);
        }
        struct grpc_client *c = xcalloc(1, sizeof(*c));
        c->fd = fd;
        nghttp2_session_callbacks *cbs;
        if (nghttp2_session_callbacks_new(&cbs) != 0)
                abort();
        nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk_recv);
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
        int r = nghttp2_session_client_new(&c->session, cbs, c);
        nghttp2_session_callbacks_del(cbs);
        if (r != 0)
                abort();
        nghttp2_settings_entry iv[] = {
            {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
            {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, CLIENT_WINDOW},
        };
        (void)nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, ELEMENTSOF(iv));
        (void)nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, CLIENT_CONN_WINDOW);

        /* Like grpc-go's WithBlock: the connection is ready once the server's SETTINGS arrived. */
        uint64_t end = timeout_ms > 0 ? grpc_now_ms() + (uint64_t)timeout_ms : 0;
        while (!c->got_settings) {
                int left = -1;
                if (end) {
                        uint64_t now = grpc_now_ms();
                        left = now >= end ? 0 : (int)(end - now);
                }
                r = client_pump(c, left);
                if (r == -ETIMEDOUT || (r == 0 && end && grpc_now_ms() >= end && !c->got_settings)) {
                        grpc_client_free(c);
                        return error_set(err, ETIMEDOUT, "dial unix %s: no HTTP/2 settings from server", path);
                }
                if (r < 0 && r != -ETIMEDOUT) {
                        grpc_client_free(c);
                        return error_set(err, ECONNRESET, "dial unix %s: connection closed during handshake", path);
                }
        }
        *ret = c;
        return 0;
}

void grpc_client_free(struct grpc_client *c)
{
        if (!c)
                return;
        while (c->streams)
                grpc_stream_free(c->streams);
        if (!c->dead) {
                (void)nghttp2_session_terminate_session(c->session, NGHTTP2_NO_ERROR);
                client_flush_nowait(c);
        }
        nghttp2_session_del(c->session);
        for (size_t i = 0; i < c->nmd; i++) {
                free((char *)c->md[i].key);
                free((char *)c->md[i].value);
        }
        free(c->md);
        grpc_buf_done(&c->wbuf);
        if (c->fd >= 0)
                close(c->fd);
        free(c);
}

void grpc_client_set_default_metadata(struct grpc_client *c, const struct grpc_metadata *md)
{
        for (size_t i = 0; i < c->nmd; i++) {
                free((char *)c->md[i].key);
                free((char *)c->md[i].value);
        }
        free(c->md);
        c->md = NULL;
        c->nmd = 0;
        for (; md && md->key; md++) {
                c->md = xreallocarray(c->md, c->nmd + 1, sizeof(*c->md));
                c->md[c->nmd].key = xstrdup(md->key);
                c->md[c->nmd].value = xstrdup(md->value);
                c->nmd++;
        }
}

void grpc_client_set_timeout(struct grpc_client *c, int timeout_ms)
{
        c->timeout_ms = timeout_ms > 0 ? timeout_ms : 0;
}

/* ---------------- streams ---------------- */

#define NV(k, v) ((nghttp2_nv){(uint8_t *)(k), (uint8_t *)(v), strlen(k), strlen(v), NGHTTP2_NV_FLAG_NONE})

int grpc_client_stream_open(struct grpc_client *c, const char *path, const struct grpc_metadata *extra_md,
                            const ProtobufCMessageDescriptor *resp_desc, struct grpc_stream **ret, struct error **err)
{
        if (c->dead)
                return error_set(err, ECONNRESET, "grpc: connection closed");
        size_t nextra = 0;
        for (const struct grpc_metadata *m = extra_md; m && m->key; m++)
                nextra++;
        _cleanup_free_ nghttp2_nv *nva = xcalloc(8 + c->nmd + nextra, sizeof(*nva));
        size_t n = 0;
        char tbuf[32];
        nva[n++] = NV(":method", "POST");
        nva[n++] = NV(":scheme", "http");
        nva[n++] = NV(":path", path);
        nva[n++] = NV(":authority", "localhost");
        nva[n++] = NV("content-type", "application/grpc");
        nva[n++] = NV("user-agent", "krill-grpc/" KRILL_VERSION);
        nva[n++] = NV("te", "trailers");
        if (c->timeout_ms > 0) {
                grpc_timeout_format((uint64_t)c->timeout_ms, tbuf, sizeof(tbuf));
                nva[n++] = NV("grpc-timeout", tbuf);
        }
        for (size_t i = 0; i < c->nmd; i++) {
                bool overridden = false;
                for (const struct grpc_metadata *m = extra_md; m && m->key; m++)
                        overridden |= strcmp(m->key, c->md[i].key) == 0;
                if (!overridden)
                        nva[n++] = NV(c->md[i].key, c->md[i].value);
        }
        for (const struct grpc_metadata *m = extra_md; m && m->key; m++)
                nva[n++] = NV(m->key, m->value);

        struct grpc_stream *s = xcalloc(1, sizeof(*s));
        s->client = c;
        s->resp_desc = resp_desc;
        s->msgs_tail = &s->msgs;
        if (c->timeout_ms > 0)
                s->deadline_ms = grpc_now_ms() + (uint64_t)c->timeout_ms;
        nghttp2_data_provider prd = {.source.ptr = s, .read_callback = stream_data_read};
        int32_t id = nghttp2_submit_request(c->session, NULL, nva, n, &prd, s);
        if (id < 0) {
                free(s);
                return error_set(err, id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE ? EAGAIN : EIO,
                                 "grpc: opening stream: %s", nghttp2_strerror(id));
        }
        s->stream_id = id;
        s->next = c->streams;
        if (c->streams)
                c->streams->prev = s;
        c->streams = s;
        client_flush_nowait(c);
        *ret = s;
        return 0;
}

static void stream_resume(struct grpc_stream *s)
{
        if (s->deferred && !s->closed) {
                s->deferred = false;
                (void)nghttp2_session_resume_data(s->client->session, s->stream_id);
        }
}

int grpc_stream_send(struct grpc_stream *s, const ProtobufCMessage *msg, struct error **err)
{
        struct grpc_client *c = s->client;
        if (s->send_closed)
                return error_set(err, EPIPE, "grpc: send after close");
        /* Like grpc-go, a send on a stream the server already ended succeeds; recv reports the status. */
        if (s->remote_done || s->closed)
                return 0;
        grpc_frame_append(&s->out, msg);
        stream_resume(s);
        client_flush_nowait(c);
        while (grpc_buf_pending(&s->out) > SEND_HIGH && !s->closed && !c->dead) {
                int r = client_pump(c, -1);
                if (r == -ECONNRESET)
                        break;
        }
        return 0;
}

int grpc_stream_close_send(struct grpc_stream *s, struct error **err)
{
        (void)err;
        if (s->send_closed)
                return 0;
        s->send_closed = true;
        stream_resume(s);
        client_flush_nowait(s->client);
        return 0;
}

int grpc_stream_recv(struct grpc_stream *s, int timeout_ms, ProtobufCMessage **ret_msg, struct error **err)
{
        struct grpc_client *c = s->client;
        uint64_t end = timeout_ms > 0 ? grpc_now_ms() + (uint64_t)timeout_ms : 0;
        for (;;) {
                if (s->msgs) {
                        struct rmsg *m = s->msgs;
                        s->msgs = m->next;
                        if (!s->msgs)
                                s->msgs_tail = &s->msgs;
                        ProtobufCMessage *pm = protobuf_c_message_unpack(s->resp_desc, NULL, m->len, m->data);
                        free(m);
                        if (!pm)
                                return error_set(err, EBADMSG, "grpc: failed to unmarshal response %s",
                                                 s->resp_desc->name);
                        *ret_msg = pm;
                        return 1;
                }
                if (s->remote_done || c->dead) {
                        if (!s->have_status)
                                stream_set_status(s, GRPC_UNAVAILABLE, "transport: connection closed");
                        if (s->status == GRPC_OK)
                                return 0;
                        return status_to_error(s->status, s->message, err);
                }
                uint64_t now = grpc_now_ms();
                if (s->deadline_ms && now >= s->deadline_ms) {
                        /* The deadline is the client's to enforce (PROTOCOLS.md 4.4). */
                        (void)nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, s->stream_id, NGHTTP2_CANCEL);
                        client_flush_nowait(c);
                        stream_set_status(s, GRPC_DEADLINE_EXCEEDED, "context deadline exceeded");
                        s->remote_done = true;
                        continue;
                }
                if (end && now >= end)
                        return -ETIMEDOUT;
                int wait = -1;
                if (end)
                        wait = (int)(end - now);
                if (s->deadline_ms && (wait < 0 || s->deadline_ms - now < (uint64_t)wait))
                        wait = (int)(s->deadline_ms - now);
                int r = client_pump(c, wait);
                if (r < 0 && r != -ETIMEDOUT && r != -ECONNRESET)
                        return error_set(err, -r, "grpc: poll");
        }
}

void grpc_stream_free(struct grpc_stream *s)
{
        if (!s)
                return;
        struct grpc_client *c = s->client;
        if (!c->dead && !s->closed)
                /* RST_STREAM(CANCEL) also when the server already sent trailers but the stream is still
                 * half-open on our side: it releases the stream on both ends. */
                (void)nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, s->stream_id, NGHTTP2_CANCEL);
        (void)nghttp2_session_set_stream_user_data(c->session, s->stream_id, NULL);
        client_flush_nowait(c);
        if (s->prev)
                s->prev->next = s->next;
        else
                c->streams = s->next;
        if (s->next)
                s->next->prev = s->prev;
        while (s->msgs) {
                struct rmsg *m = s->msgs;
                s->msgs = m->next;
                free(m);
        }
        grpc_buf_done(&s->out);
        grpc_buf_done(&s->in);
        free(s->message);
        free(s);
}

int grpc_client_unary(struct grpc_client *c, const char *path, const struct grpc_metadata *extra_md,
                      const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
                      ProtobufCMessage **ret_resp, struct error **err)
{
        struct grpc_stream *s = NULL;
        ProtobufCMessage *resp = NULL;
        int r = grpc_client_stream_open(c, path, extra_md, resp_desc, &s, err);
        if (r < 0)
                return r;
        r = grpc_stream_send(s, req, err);
        if (r >= 0)
                r = grpc_stream_close_send(s, err);
        if (r >= 0)
                r = grpc_stream_recv(s, 0, &resp, err);
        if (r == 0)
                r = error_set(err, EIO, "grpc: no response message for unary call %s", path);
        if (r == 1) {
                ProtobufCMessage *extra = NULL;
                r = grpc_stream_recv(s, 0, &extra, err);
                if (r == 1) {
                        protobuf_c_message_free_unpacked(extra, NULL);
                        r = error_set(err, EPROTO, "grpc: too many response messages for unary call %s", path);
                }
        }
        grpc_stream_free(s);
        if (r < 0) {
                if (resp)
                        protobuf_c_message_free_unpacked(resp, NULL);
                return r;
        }
        *ret_resp = resp;
        return 0;
}

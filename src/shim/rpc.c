/* ttrpc on the shim's epoll loop: framing (ttrpc v1.1 channel.go), a write queue per socket, and the Task
 * server (accept, SO_PEERCRED uid check, Request decode, dispatch, Response encode). Replies may come in any
 * order (Wait answers late), as ttrpc clients expect. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "krill-api.h"
#include "shim/rpc.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/log.h"

/* Hard limits on what one client can make us hold (STYLE.md section 11). */
#define RPC_MAX_CALLS_PER_CONN 1024
#define RPC_MAX_WRITE_QUEUE (64u << 20)
#define RPC_MAX_CONNS 256
/* A payload buffer larger than this is dropped after its frame, so one big message does not stay pinned. */
#define RPC_KEEP_BUFFER (16u << 10)
#define RPC_READ_CHUNK 4096

/* ---------------- framing ---------------- */

void shim_frame_header_encode(uint32_t length, uint32_t stream_id, uint8_t type, uint8_t out[10])
{
        out[0] = (uint8_t)(length >> 24);
        out[1] = (uint8_t)(length >> 16);
        out[2] = (uint8_t)(length >> 8);
        out[3] = (uint8_t)length;
        out[4] = (uint8_t)(stream_id >> 24);
        out[5] = (uint8_t)(stream_id >> 16);
        out[6] = (uint8_t)(stream_id >> 8);
        out[7] = (uint8_t)stream_id;
        out[8] = type;
        out[9] = 0;
}

void shim_frame_reader_done(struct shim_frame_reader *r)
{
        free(r->buf);
        *r = (struct shim_frame_reader){0};
}

bool shim_frame_feed(struct shim_frame_reader *r, const uint8_t *data, size_t n, shim_frame_fn fn, void *userdata)
{
        while (n > 0) {
                bool oversize, cont;
                size_t take;

                if (!r->in_body) {
                        take = SHIM_RPC_HEADER_LEN - r->hdr_have;
                        if (take > n)
                                take = n;
                        memcpy(r->hdr + r->hdr_have, data, take);
                        r->hdr_have += take, data += take, n -= take;
                        if (r->hdr_have < SHIM_RPC_HEADER_LEN)
                                return true;
                        r->length = (uint32_t)r->hdr[0] << 24 | (uint32_t)r->hdr[1] << 16 | (uint32_t)r->hdr[2] << 8 |
                                    r->hdr[3];
                        r->stream_id = (uint32_t)r->hdr[4] << 24 | (uint32_t)r->hdr[5] << 16 |
                                       (uint32_t)r->hdr[6] << 8 | r->hdr[7];
                        r->type = r->hdr[8];
                        r->in_body = true;
                        r->have = 0;
                }
                oversize = r->length > SHIM_RPC_MAX_MESSAGE;
                take = r->length - r->have;
                if (take > n)
                        take = n;
                if (!oversize && take > 0) {
                        if (r->have + take > r->cap) {
                                size_t ncap = r->cap ? r->cap : 512;
                                while (ncap < r->have + take)
                                        ncap *= 2;
                                if (ncap > r->length)
                                        ncap = r->length;
                                r->buf = xrealloc(r->buf, ncap);
                                r->cap = ncap;
                        }
                        memcpy(r->buf + r->have, data, take);
                }
                r->have += take, data += take, n -= take;
                if (r->have < r->length)
                        return true;
                cont =
                    fn(userdata, r->stream_id, r->type, oversize ? NULL : r->buf, oversize ? 0 : r->length, oversize);
                r->in_body = false;
                r->hdr_have = 0;
                r->have = 0;
                if (r->cap > RPC_KEEP_BUFFER) {
                        free(r->buf);
                        r->buf = NULL;
                        r->cap = 0;
                }
                if (!cont)
                        return false;
        }
        return true;
}

/* ---------------- write queue ---------------- */

struct shim_wbuf {
        struct shim_wbuf *next;
        size_t len, off;
        uint8_t data[];
};

void shim_wqueue_init(struct shim_wqueue *q)
{
        q->head = NULL;
        q->tail = &q->head;
        q->bytes = 0;
}

static uint8_t *wqueue_append(struct shim_wqueue *q, size_t len)
{
        struct shim_wbuf *b = xmalloc(sizeof(*b) + len);

        b->next = NULL;
        b->len = len;
        b->off = 0;
        *q->tail = b;
        q->tail = &b->next;
        q->bytes += len;
        return b->data;
}

void shim_wqueue_frame(struct shim_wqueue *q, uint32_t stream_id, uint8_t type, const ProtobufCMessage *msg)
{
        size_t len = msg ? protobuf_c_message_get_packed_size(msg) : 0;
        uint8_t *p = wqueue_append(q, SHIM_RPC_HEADER_LEN + len);

        shim_frame_header_encode((uint32_t)len, stream_id, type, p);
        if (len > 0)
                (void)protobuf_c_message_pack(msg, p + SHIM_RPC_HEADER_LEN);
}

int shim_wqueue_flush(struct shim_wqueue *q, int fd)
{
        while (q->head) {
                struct shim_wbuf *b = q->head;
                ssize_t n = send(fd, b->data + b->off, b->len - b->off, MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 0;
                        return -errno;
                }
                b->off += (size_t)n;
                q->bytes -= (size_t)n;
                if (b->off == b->len) {
                        q->head = b->next;
                        if (!q->head)
                                q->tail = &q->head;
                        free(b);
                }
        }
        return 1;
}

void shim_wqueue_clear(struct shim_wqueue *q)
{
        while (q->head) {
                struct shim_wbuf *b = q->head;
                q->head = b->next;
                free(b);
        }
        shim_wqueue_init(q);
}

/* ---------------- server ---------------- */

struct rpc_conn {
        unsigned refs;
        struct shim_rpc *srv; /* NULL once closed */
        struct rpc_conn *next;
        struct shim_watch w;
        struct shim_frame_reader rd;
        struct shim_wqueue wq;
        unsigned active_calls;
        bool closed;
};

struct shim_rpc {
        struct shim_loop *loop;
        struct shim_watch listen;
        const char *service;
        const struct shim_method *methods;
        size_t n_methods;
        void *userdata;
        uid_t uid;
        struct rpc_conn *conns;
        size_t n_conns;
};

struct shim_call {
        unsigned refs;
        struct rpc_conn *conn;
        uint32_t stream_id;
        bool answered;
};

static void conn_unref(struct rpc_conn *c)
{
        if (--c->refs > 0)
                return;
        shim_frame_reader_done(&c->rd);
        shim_wqueue_clear(&c->wq);
        free(c);
}

static void conn_close(struct rpc_conn *c)
{
        struct shim_rpc *s = c->srv;

        if (c->closed)
                return;
        c->closed = true;
        shim_watch_stop(&c->w);
        close(c->w.fd);
        c->w.fd = -1;
        shim_wqueue_clear(&c->wq);
        if (s) {
                for (struct rpc_conn **pp = &s->conns; *pp; pp = &(*pp)->next)
                        if (*pp == c) {
                                *pp = c->next;
                                break;
                        }
                s->n_conns--;
        }
        c->srv = NULL;
        conn_unref(c); /* the open connection's reference */
}

static void conn_flush(struct rpc_conn *c)
{
        int r;

        if (c->closed)
                return;
        if (c->wq.bytes > RPC_MAX_WRITE_QUEUE) {
                /* a peer that never reads must not make us queue replies without bound */
                conn_close(c);
                return;
        }
        r = shim_wqueue_flush(&c->wq, c->w.fd);
        if (r < 0)
                conn_close(c);
        else
                (void)shim_watch_set(&c->w, r == 0 ? EPOLLIN | EPOLLOUT : EPOLLIN);
}

static void conn_send_status(struct rpc_conn *c, uint32_t stream_id, enum grpc_code code, const char *msg)
{
        Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
        Ttrpc__Response resp = TTRPC__RESPONSE__INIT;

        if (c->closed)
                return;
        st.code = (int32_t)code;
        st.message = (char *)msg;
        resp.status = &st;
        shim_wqueue_frame(&c->wq, stream_id, SHIM_RPC_RESPONSE, &resp.base);
        conn_flush(c);
}

static void conn_dispatch(struct rpc_conn *c, uint32_t stream_id, Ttrpc__Request *req)
{
        struct shim_rpc *s = c->srv;
        const struct shim_method *m = NULL;
        ProtobufCMessage *in;
        struct shim_call *call;

        if (!req->service || strcmp(req->service, s->service) != 0) {
                /* ttrpc services.go resolve(): exactly these texts, code Unimplemented */
                _cleanup_free_ char *msg = xasprintf("service %s", req->service ? req->service : "");
                conn_send_status(c, stream_id, GRPC_UNIMPLEMENTED, msg);
                return;
        }
        for (size_t i = 0; i < s->n_methods && !m; i++)
                if (req->method && strcmp(s->methods[i].name, req->method) == 0)
                        m = &s->methods[i];
        if (!m) {
                _cleanup_free_ char *msg = xasprintf("method %s", req->method ? req->method : "");
                conn_send_status(c, stream_id, GRPC_UNIMPLEMENTED, msg);
                return;
        }
        in = protobuf_c_message_unpack(m->input, NULL, req->payload.len, req->payload.data);
        if (!in) {
                conn_send_status(c, stream_id, GRPC_INTERNAL,
                                 "ttrpc: error unmarshalling payload: invalid protobuf encoding");
                return;
        }
        call = xcalloc(1, sizeof(*call));
        call->refs = 1;
        call->conn = c;
        c->refs++;
        call->stream_id = stream_id;
        c->active_calls++;
        m->fn(call, in, s->userdata);
        protobuf_c_message_free_unpacked(in, NULL);
        shim_call_unref(call);
}

static bool conn_on_frame(void *data, uint32_t stream_id, uint8_t type, const uint8_t *payload, size_t len,
                          bool oversize)
{
        struct rpc_conn *c = data;
        Ttrpc__Request *req;

        if (c->closed)
                return false;
        if (oversize) {
                _cleanup_free_ char *msg = xasprintf("message length %" PRIu32 " exceed maximum message size of %u",
                                                     c->rd.length, SHIM_RPC_MAX_MESSAGE);
                conn_send_status(c, stream_id, GRPC_RESOURCE_EXHAUSTED, msg);
                return !c->closed;
        }
        if (type != SHIM_RPC_REQUEST)
                return true; /* ignored for forward compatibility, as server.go does */
        req = (Ttrpc__Request *)protobuf_c_message_unpack(&ttrpc__request__descriptor, NULL, len, payload);
        if (!req) {
                conn_send_status(c, stream_id, GRPC_INVALID_ARGUMENT,
                                 "unmarshal request error: invalid protobuf encoding");
        } else if (stream_id % 2 != 1) {
                conn_send_status(c, stream_id, GRPC_INVALID_ARGUMENT,
                                 "StreamID must be odd for client initiated streams");
        } else if (c->active_calls >= RPC_MAX_CALLS_PER_CONN) {
                conn_send_status(c, stream_id, GRPC_RESOURCE_EXHAUSTED, "too many concurrent calls");
        } else if (c->srv) {
                conn_dispatch(c, stream_id, req);
        }
        if (req)
                protobuf_c_message_free_unpacked(&req->base, NULL);
        return !c->closed;
}

static void on_conn(struct shim_watch *w, uint32_t events)
{
        struct rpc_conn *c = w->data;
        uint8_t buf[RPC_READ_CHUNK];

        c->refs++;
        if (events & EPOLLOUT)
                conn_flush(c);
        if (!c->closed && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
                ssize_t n = read(c->w.fd, buf, sizeof(buf));
                if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                        conn_close(c);
                else if (n > 0)
                        (void)shim_frame_feed(&c->rd, buf, (size_t)n, conn_on_frame, c);
        }
        conn_unref(c);
}

static bool peer_allowed(struct shim_rpc *s, int fd)
{
        struct ucred cred;
        socklen_t len = sizeof(cred);

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                return false;
        if (cred.uid != s->uid) {
                log_debug("ttrpc: rejecting connection from uid %u (pid %d)", (unsigned)cred.uid, (int)cred.pid);
                return false;
        }
        return true;
}

static void conn_new(struct shim_rpc *s, int fd)
{
        struct rpc_conn *c = xcalloc(1, sizeof(*c));

        c->refs = 1;
        c->srv = s;
        shim_wqueue_init(&c->wq);
        shim_watch_init(s->loop, &c->w, fd, on_conn, c);
        c->next = s->conns;
        s->conns = c;
        s->n_conns++;
        if (shim_watch_set(&c->w, EPOLLIN) < 0)
                conn_close(c);
}

static void on_listen(struct shim_watch *w, uint32_t events)
{
        struct shim_rpc *s = w->data;
        int fd;

        (void)events;
        fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
                return;
        if (!peer_allowed(s, fd) || s->n_conns >= RPC_MAX_CONNS) {
                close(fd);
                return;
        }
        conn_new(s, fd);
}

void shim_rpc_adopt(struct shim_rpc *s, int fd)
{
        (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        conn_new(s, fd);
}

struct shim_rpc *shim_rpc_new(struct shim_loop *l, int listen_fd, const char *service,
                              const struct shim_method *methods, size_t n_methods, void *userdata)
{
        struct shim_rpc *s = xcalloc(1, sizeof(*s));

        s->loop = l;
        s->service = service;
        s->methods = methods;
        s->n_methods = n_methods;
        s->userdata = userdata;
        s->uid = geteuid();
        shim_watch_init(l, &s->listen, listen_fd, on_listen, s);
        if (listen_fd >= 0 && shim_watch_set(&s->listen, EPOLLIN) < 0) {
                log_error("ttrpc: cannot watch the listening socket: %s", strerror(errno));
                close(listen_fd);
                free(s);
                return NULL;
        }
        return s;
}

void shim_rpc_free(struct shim_rpc *s)
{
        if (!s)
                return;
        shim_watch_stop(&s->listen);
        if (s->listen.fd >= 0)
                close(s->listen.fd);
        while (s->conns) {
                struct rpc_conn *c = s->conns;
                /* the reply to Shutdown must reach the daemon: give queued bytes a short last chance */
                for (int i = 0; i < 10 && c->wq.head; i++) {
                        struct pollfd pfd = {.fd = c->w.fd, .events = POLLOUT};
                        if (shim_wqueue_flush(&c->wq, c->w.fd) != 0 || poll(&pfd, 1, 10) < 0)
                                break;
                }
                conn_close(c);
        }
        free(s);
}

/* ---------------- calls ---------------- */

static bool call_claim(struct shim_call *c)
{
        if (c->answered) {
                log_debug("ttrpc: stream %" PRIu32 " answered twice", c->stream_id);
                return false;
        }
        c->answered = true;
        return true;
}

void shim_call_reply(struct shim_call *c, const ProtobufCMessage *msg)
{
        Ttrpc__Response resp = TTRPC__RESPONSE__INIT;
        size_t len = msg ? protobuf_c_message_get_packed_size(msg) : 0;
        _cleanup_free_ uint8_t *buf = NULL;

        if (!call_claim(c) || c->conn->closed)
                return;
        if (len + 16 > SHIM_RPC_MAX_MESSAGE) {
                conn_send_status(c->conn, c->stream_id, GRPC_RESOURCE_EXHAUSTED, "reply exceeds maximum message size");
                return;
        }
        if (len > 0) {
                buf = xmalloc(len);
                (void)protobuf_c_message_pack(msg, buf);
                resp.payload.data = buf;
                resp.payload.len = len;
        }
        /* a reply with no payload is an empty Response: the zero-length body ttrpc sends for Empty */
        shim_wqueue_frame(&c->conn->wq, c->stream_id, SHIM_RPC_RESPONSE, &resp.base);
        conn_flush(c->conn);
}

void shim_call_fail_status(struct shim_call *c, enum grpc_code code, const char *message)
{
        if (!call_claim(c))
                return;
        if (code == GRPC_OK)
                code = GRPC_UNKNOWN; /* a failure must not read as success on the other side */
        conn_send_status(c->conn, c->stream_id, code, message ? message : "");
}

void shim_call_fail(struct shim_call *c, int r, const struct error *e)
{
        _cleanup_free_ char *msg = e ? error_message(e) : xstrdup(error_class_text(r < 0 ? -r : r));

        shim_call_fail_status(c, status_from_errno(r), msg);
}

struct shim_call *shim_call_ref(struct shim_call *c)
{
        c->refs++;
        return c;
}

void shim_call_unref(struct shim_call *c)
{
        if (!c || --c->refs > 0)
                return;
        if (!c->answered)
                shim_call_fail_status(c, GRPC_INTERNAL, "ttrpc: call ended without a reply");
        c->conn->active_calls--;
        conn_unref(c->conn);
        free(c);
}

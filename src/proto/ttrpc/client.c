/* ttrpc clients: an async one on libuv (many outstanding calls, replies matched by stream id, deadlines
 * enforced locally with one timer) and a blocking one-shot call (ttrpc v1.1 client.go semantics). */
#include <assert.h>
#include <inttypes.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "krill-api.h"
#include "proto/ttrpc/ttrpc-internal.h"
#include "util/alloc.h"
#include "util/cleanup.h"

/* --- shared by both clients --- */

/* Builds the Request frame. metadata is a NULL-terminated flat list key, value, key, value, ... */
static struct ttrpc_wbuf *request_frame(uint32_t stream_id, const char *service, const char *method,
                                        const ProtobufCMessage *req, const char *const *metadata, uint32_t timeout_ms)
{
        Ttrpc__Request r = TTRPC__REQUEST__INIT;
        _cleanup_free_ uint8_t *payload = NULL;
        _cleanup_free_ Ttrpc__KeyValue *kvs = NULL;
        _cleanup_free_ Ttrpc__KeyValue **kvp = NULL;
        size_t n_md = 0, len = req ? protobuf_c_message_get_packed_size(req) : 0;

        r.service = (char *)service;
        r.method = (char *)method;
        if (len > 0) {
                payload = xmalloc(len);
                (void)protobuf_c_message_pack(req, payload);
                r.payload.data = payload;
                r.payload.len = len;
        }
        r.timeout_nano = (int64_t)timeout_ms * 1000000;
        if (metadata)
                while (metadata[2 * n_md] && metadata[2 * n_md + 1])
                        n_md++;
        if (n_md > 0) {
                kvs = xcalloc(n_md, sizeof(*kvs));
                kvp = xcalloc(n_md, sizeof(*kvp));
                for (size_t i = 0; i < n_md; i++) {
                        ttrpc__key_value__init(&kvs[i]);
                        kvs[i].key = (char *)metadata[2 * i];
                        kvs[i].value = (char *)metadata[2 * i + 1];
                        kvp[i] = &kvs[i];
                }
                r.n_metadata = n_md;
                r.metadata = kvp;
        }
        return ttrpc_wbuf_new(stream_id, TTRPC_TYPE_REQUEST, &r.base);
}

/* Decodes a Response body into *ret_msg (NULL when resp_desc is NULL: Empty). */
static int response_decode(const uint8_t *payload, size_t len, const ProtobufCMessageDescriptor *resp_desc,
                           ProtobufCMessage **ret_msg, struct error **err)
{
        Ttrpc__Response *resp;
        ProtobufCMessage *msg = NULL;
        int r = 0;

        resp = (Ttrpc__Response *)protobuf_c_message_unpack(&ttrpc__response__descriptor, NULL, len, payload);
        if (!resp)
                return error_set(err, EPROTO, "ttrpc: failed to unmarshal response");
        if (resp->status && resp->status->code != GRPC_OK) {
                r = status_to_error((enum grpc_code)resp->status->code, resp->status->message, err);
        } else if (resp_desc) {
                msg = protobuf_c_message_unpack(resp_desc, NULL, resp->payload.len, resp->payload.data);
                if (!msg)
                        r = error_set(err, EPROTO, "ttrpc: failed to unmarshal %s", resp_desc->name);
        }
        protobuf_c_message_free_unpacked(&resp->base, NULL);
        if (r < 0)
                return r;
        *ret_msg = msg;
        return 0;
}

static int oversize_error(const struct ttrpc_header *h, struct error **err)
{
        return error_set(err, ENOSPC, "message length %" PRIu32 " exceed maximum message size of %u", h->length,
                         TTRPC_MAX_MESSAGE);
}

/* --- async client --- */

enum client_state {
        CLIENT_CONNECTING,
        CLIENT_CONNECTED,
        CLIENT_CLOSED,
};

struct pending {
        struct pending *prev, *next;
        uint32_t stream_id;
        const ProtobufCMessageDescriptor *resp_desc;
        ttrpc_reply_fn cb;
        void *userdata;
        uint64_t deadline;         /* uv_now() ms, 0 = none */
        struct ttrpc_wbuf *unsent; /* queued while connecting */
};

struct ttrpc_client {
        uv_loop_t *loop;
        unsigned refs;
        unsigned open_handles;
        bool handle_lost; /* a handle was closed by someone else: never free (libuv may still hold it) */
        enum client_state state;
        bool freed;
        uv_pipe_t pipe;
        uv_timer_t timer;
        uv_connect_t connect_req;
        struct ttrpc_reader reader;
        uint8_t *rbuf;
        uint32_t next_id;
        struct pending *calls;
        void (*connect_fn)(struct ttrpc_client *, int, void *);
        void *connect_data;
        void (*close_fn)(struct ttrpc_client *, void *);
        void *close_data;
};

static void client_ref(struct ttrpc_client *c)
{
        c->refs++;
}

static void client_unref(struct ttrpc_client *c)
{
        assert(c->refs > 0);
        if (--c->refs > 0 || c->open_handles > 0 || c->handle_lost)
                return;
        ttrpc_reader_done(&c->reader);
        free(c->rbuf);
        free(c);
}

static void on_handle_closed(uv_handle_t *h)
{
        struct ttrpc_client *c = h->data;

        c->open_handles--;
        client_ref(c);
        client_unref(c);
}

/* Closes one of our handles. If the owner already closed it behind our back (uv_walk at exit), our callback
 * will never run: the client's memory is then left to the process exit rather than risking a use after free. */
static void client_close_handle(struct ttrpc_client *c, uv_handle_t *h)
{
        if (uv_is_closing(h)) {
                c->handle_lost = true;
                return;
        }
        c->open_handles++;
        uv_close(h, on_handle_closed);
}

static void pending_unlink(struct ttrpc_client *c, struct pending *p)
{
        if (p->prev)
                p->prev->next = p->next;
        else
                c->calls = p->next;
        if (p->next)
                p->next->prev = p->prev;
        p->prev = p->next = NULL;
}

static struct pending *pending_find(struct ttrpc_client *c, uint32_t id)
{
        for (struct pending *p = c->calls; p; p = p->next)
                if (p->stream_id == id)
                        return p;
        return NULL;
}

/* Completes one unlinked call and frees it. The caller holds a client reference. */
static void pending_complete(struct pending *p, int r, ProtobufCMessage *msg, const struct error *e)
{
        p->cb(r, msg, e, p->userdata);
        free(p->unsent);
        free(p);
}

static void pending_fail(struct pending *p, int r, const char *what)
{
        _cleanup_error_ struct error *e = NULL;

        (void)error_set(&e, -r, "%s", what);
        pending_complete(p, r, NULL, e);
}

static void client_fail_all(struct ttrpc_client *c, int r, const char *what)
{
        struct pending *p;

        while ((p = c->calls)) {
                pending_unlink(c, p);
                pending_fail(p, r, what);
        }
}

static void on_timer(uv_timer_t *t);

static void client_rearm_timer(struct ttrpc_client *c)
{
        uint64_t next = 0, now;

        if (c->freed)
                return;
        for (struct pending *p = c->calls; p; p = p->next)
                if (p->deadline && (!next || p->deadline < next))
                        next = p->deadline;
        if (!next) {
                (void)uv_timer_stop(&c->timer);
                return;
        }
        now = uv_now(c->loop);
        (void)uv_timer_start(&c->timer, on_timer, next > now ? next - now : 0, 0);
}

static void on_timer(uv_timer_t *t)
{
        struct ttrpc_client *c = t->data;
        uint64_t now = uv_now(c->loop);
        struct pending *p, *next;

        client_ref(c);
        /* Restart the scan after each callback: it may have completed or added other calls. */
        for (p = c->calls; p && !c->freed; p = next) {
                next = p->next;
                if (!p->deadline || p->deadline > now)
                        continue;
                pending_unlink(c, p);
                pending_fail(p, -ETIMEDOUT, "ttrpc call");
                next = c->calls;
        }
        client_rearm_timer(c);
        client_unref(c);
}

static void client_drop(struct ttrpc_client *c, int r)
{
        bool was_connected = c->state == CLIENT_CONNECTED;

        if (c->state == CLIENT_CLOSED)
                return;
        c->state = CLIENT_CLOSED;
        (void)uv_read_stop((uv_stream_t *)&c->pipe);
        client_close_handle(c, (uv_handle_t *)&c->pipe);
        client_ref(c);
        client_fail_all(c, r, "ttrpc: closed");
        client_rearm_timer(c);
        if (was_connected && c->close_fn && !c->freed)
                c->close_fn(c, c->close_data);
        client_unref(c);
}

static void on_client_write(uv_write_t *req, int status)
{
        struct ttrpc_wbuf *w = container_of(req, struct ttrpc_wbuf, req);
        struct ttrpc_client *c = req->handle->data;

        free(w);
        if (status < 0 && status != UV_ECANCELED)
                client_drop(c, -ECONNRESET);
}

static int client_write(struct ttrpc_client *c, struct ttrpc_wbuf *w)
{
        int r = uv_write(&w->req, (uv_stream_t *)&c->pipe, &w->buf, 1, on_client_write);

        if (r < 0)
                free(w);
        return r;
}

static bool client_on_frame(void *userdata, const struct ttrpc_header *h, const uint8_t *payload, size_t len,
                            bool oversize)
{
        struct ttrpc_client *c = userdata;
        _cleanup_error_ struct error *e = NULL;
        ProtobufCMessage *msg = NULL;
        struct pending *p;
        int r;

        if (c->freed || c->state != CLIENT_CONNECTED)
                return false;
        if (h->type != TTRPC_TYPE_RESPONSE)
                return true;
        p = pending_find(c, h->stream_id);
        if (!p)
                return true; /* already timed out: the late reply is dropped */
        pending_unlink(c, p);
        if (oversize)
                r = oversize_error(h, &e);
        else
                r = response_decode(payload, len, p->resp_desc, &msg, &e);
        pending_complete(p, r, msg, e);
        client_rearm_timer(c);
        return !c->freed && c->state == CLIENT_CONNECTED;
}

static void on_client_alloc(uv_handle_t *h, size_t suggested _unused_, uv_buf_t *buf)
{
        struct ttrpc_client *c = h->data;

        if (!c->rbuf)
                c->rbuf = xmalloc(TTRPC_READ_CHUNK);
        *buf = uv_buf_init((char *)c->rbuf, TTRPC_READ_CHUNK);
}

static void on_client_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
        struct ttrpc_client *c = stream->data;

        if (nread < 0) {
                client_drop(c, -ECONNRESET);
                return;
        }
        client_ref(c);
        (void)ttrpc_reader_feed(&c->reader, (const uint8_t *)buf->base, (size_t)nread, client_on_frame, c);
        client_unref(c);
}

static void on_connect(uv_connect_t *req, int status)
{
        struct ttrpc_client *c = req->data;
        void (*fn)(struct ttrpc_client *, int, void *) = c->connect_fn;

        if (c->freed || c->state != CLIENT_CONNECTING)
                return;
        client_ref(c);
        if (status == 0)
                status = uv_read_start((uv_stream_t *)&c->pipe, on_client_alloc, on_client_read);
        if (status < 0) {
                client_drop(c, status);
        } else {
                struct pending *last = c->calls;

                c->state = CLIENT_CONNECTED;
                while (last && last->next)
                        last = last->next;
                /* The list is newest first: send the queued requests in the order they were made. */
                for (struct pending *p = last; p; p = p->prev)
                        if (p->unsent && client_write(c, TAKE_PTR(p->unsent)) < 0) {
                                client_drop(c, -ECONNRESET);
                                break;
                        }
        }
        if (fn && !c->freed)
                fn(c, c->state == CLIENT_CONNECTED ? 0 : (status < 0 ? status : -ECONNRESET), c->connect_data);
        client_unref(c);
}

int ttrpc_client_connect(uv_loop_t *loop, const char *address, void (*connect_cb)(struct ttrpc_client *, int, void *),
                         void *data, struct ttrpc_client **ret, struct error **err)
{
        const char *path = ttrpc_address_path(address);
        struct ttrpc_client *c;

        if (!path)
                return error_set(err, EINVAL, "ttrpc address %s: not a path-based unix socket",
                                 address ? address : "(null)");
        c = xcalloc(1, sizeof(*c));
        c->loop = loop;
        c->refs = 1; /* dropped by ttrpc_client_free */
        c->next_id = 1;
        c->connect_fn = connect_cb;
        c->connect_data = data;
        ttrpc_reader_init(&c->reader);
        (void)uv_pipe_init(loop, &c->pipe, 0);
        c->pipe.data = c;
        (void)uv_timer_init(loop, &c->timer);
        c->timer.data = c;
        c->open_handles = 0; /* counted as each handle is closed, see client_close_handle() */
        c->connect_req.data = c;
        uv_pipe_connect(&c->connect_req, &c->pipe, path, on_connect);
        *ret = c;
        return 0;
}

int ttrpc_client_call(struct ttrpc_client *c, const char *service, const char *method, const ProtobufCMessage *req,
                      const ProtobufCMessageDescriptor *resp_desc, const char *const *metadata, uint32_t timeout_ms,
                      ttrpc_reply_fn cb, void *userdata)
{
        struct ttrpc_wbuf *w;
        struct pending *p;

        assert(cb);
        if (c->freed || c->state == CLIENT_CLOSED)
                return -ENOTCONN;
        w = request_frame(c->next_id, service, method, req, metadata, timeout_ms);
        p = xcalloc(1, sizeof(*p));
        p->stream_id = c->next_id;
        /* Client-initiated ids are odd; skip 0 on wrap-around. */
        c->next_id = c->next_id >= UINT32_MAX - 1 ? 1 : c->next_id + 2;
        p->resp_desc = resp_desc;
        p->cb = cb;
        p->userdata = userdata;
        if (timeout_ms)
                p->deadline = uv_now(c->loop) + timeout_ms;
        p->next = c->calls;
        if (c->calls)
                c->calls->prev = p;
        c->calls = p;
        if (c->state == CLIENT_CONNECTING) {
                p->unsent = w;
        } else if (client_write(c, w) < 0) {
                pending_unlink(c, p);
                free(p);
                client_drop(c, -ECONNRESET);
                return -ECONNRESET;
        }
        if (timeout_ms)
                client_rearm_timer(c);
        return 0;
}

void ttrpc_client_set_close_cb(struct ttrpc_client *c, void (*fn)(struct ttrpc_client *, void *), void *data)
{
        c->close_fn = fn;
        c->close_data = data;
}

bool ttrpc_client_connected(const struct ttrpc_client *c)
{
        return c && !c->freed && c->state == CLIENT_CONNECTED;
}

void ttrpc_client_free(struct ttrpc_client *c)
{
        if (!c || c->freed)
                return;
        c->freed = true;
        c->close_fn = NULL;
        client_ref(c);
        client_fail_all(c, -ECANCELED, "ttrpc: client closed");
        if (c->state != CLIENT_CLOSED) {
                c->state = CLIENT_CLOSED;
                (void)uv_read_stop((uv_stream_t *)&c->pipe);
                client_close_handle(c, (uv_handle_t *)&c->pipe);
        }
        client_close_handle(c, (uv_handle_t *)&c->timer);
        client_unref(c);
        client_unref(c); /* the reference taken by connect */
}

/* --- blocking client --- */

struct sync_state {
        uint32_t stream_id;
        const ProtobufCMessageDescriptor *resp_desc;
        bool done;
        int r;
        ProtobufCMessage *msg;
        struct error **err;
};

static bool sync_on_frame(void *userdata, const struct ttrpc_header *h, const uint8_t *payload, size_t len,
                          bool oversize)
{
        struct sync_state *st = userdata;

        if (h->type != TTRPC_TYPE_RESPONSE || h->stream_id != st->stream_id)
                return true;
        st->done = true;
        st->r = oversize ? oversize_error(h, st->err) : response_decode(payload, len, st->resp_desc, &st->msg, st->err);
        return false;
}

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until the deadline (0 = none). Returns 0 or -ETIMEDOUT / -errno. */
static int wait_fd(int fd, short events, int64_t deadline)
{
        struct pollfd pfd = {.fd = fd, .events = events};
        int timeout, r;

        for (;;) {
                timeout = -1;
                if (deadline) {
                        int64_t left = deadline - now_ms();
                        if (left <= 0)
                                return -ETIMEDOUT;
                        timeout = left > INT32_MAX ? INT32_MAX : (int)left;
                }
                r = poll(&pfd, 1, timeout);
                if (r > 0)
                        return 0;
                if (r == 0)
                        return -ETIMEDOUT;
                if (errno != EINTR)
                        return -errno;
        }
}

int ttrpc_call_sync(const char *address, const char *service, const char *method, const ProtobufCMessage *req,
                    const ProtobufCMessageDescriptor *resp_desc, const char *const *metadata, uint32_t timeout_ms,
                    ProtobufCMessage **ret_resp, struct error **err)
{
        _cleanup_close_ int fd = -1;
        _cleanup_free_ struct ttrpc_wbuf *w = NULL;
        _cleanup_free_ uint8_t *rbuf = NULL;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        const char *path = ttrpc_address_path(address);
        struct ttrpc_reader reader;
        struct sync_state st = {.stream_id = 1, .resp_desc = resp_desc, .err = err};
        int64_t deadline = timeout_ms ? now_ms() + timeout_ms : 0;
        size_t off = 0;
        int r;

        if (!path)
                return error_set(err, EINVAL, "ttrpc address %s: not a path-based unix socket",
                                 address ? address : "(null)");
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return error_set(err, errno, "ttrpc socket");
        /* Unix stream connects complete or fail at once unless the backlog is full (EAGAIN): retry then. */
        while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                if (errno != EAGAIN)
                        return error_set(err, errno, "dial %s", path);
                r = wait_fd(fd, POLLOUT, deadline ? deadline : now_ms() + 1000);
                if (r < 0)
                        return error_set(err, -r, "dial %s", path);
        }

        w = request_frame(1, service, method, req, metadata, timeout_ms);
        while (off < w->buf.len) {
                ssize_t n = send(fd, w->buf.base + off, w->buf.len - off, MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                return error_set(err, errno, "ttrpc send");
                        r = wait_fd(fd, POLLOUT, deadline);
                        if (r < 0)
                                return error_set(err, -r, "ttrpc %s/%s", service, method);
                        continue;
                }
                off += (size_t)n;
        }

        ttrpc_reader_init(&reader);
        rbuf = xmalloc(TTRPC_READ_CHUNK);
        r = 0;
        while (!st.done) {
                ssize_t n = recv(fd, rbuf, TTRPC_READ_CHUNK, 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN) {
                                r = error_set(err, errno, "ttrpc recv");
                                break;
                        }
                        r = wait_fd(fd, POLLIN, deadline);
                        if (r < 0) {
                                r = error_set(err, -r, "ttrpc %s/%s", service, method);
                                break;
                        }
                        continue;
                }
                if (n == 0) {
                        r = error_set(err, ECONNRESET, "ttrpc %s/%s: connection closed", service, method);
                        break;
                }
                (void)ttrpc_reader_feed(&reader, rbuf, (size_t)n, sync_on_frame, &st);
        }
        ttrpc_reader_done(&reader);
        if (r < 0)
                return r;
        if (st.r < 0)
                return st.r;
        if (ret_resp)
                *ret_resp = st.msg;
        else if (st.msg)
                protobuf_c_message_free_unpacked(st.msg, NULL);
        return 0;
}

/* In-process gRPC server (loop in a thread) and blocking client (test thread) on a temp unix socket,
 * using real containerd message types. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "github.com/containerd/containerd/api/services/content/v1/content.pb-c.h"
#include "github.com/containerd/containerd/api/services/namespaces/v1/namespace.pb-c.h"
#include "github.com/containerd/containerd/api/services/version/v1/version.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "proto/grpc/grpc.h"
#include "util/alloc.h"

typedef Containerd__Services__Version__V1__VersionResponse VersionResponse;
typedef Containerd__Services__Content__V1__ReadContentRequest ReadReq;
typedef Containerd__Services__Content__V1__ReadContentResponse ReadResp;
typedef Containerd__Services__Content__V1__WriteContentRequest WriteReq;
typedef Containerd__Services__Content__V1__WriteContentResponse WriteResp;
typedef Containerd__Services__Namespaces__V1__GetNamespaceRequest GetNsReq;
typedef Containerd__Services__Namespaces__V1__GetNamespaceResponse GetNsResp;

#define VERSION_PATH "/containerd.services.version.v1.Version/Version"
#define NS_GET_PATH "/containerd.services.namespaces.v1.Namespaces/Get"
#define READ_PATH "/containerd.services.content.v1.Content/Read"
#define WRITE_PATH "/containerd.services.content.v1.Content/Write"
#define SUM_PATH "/test.Stream/Sum"
#define WAIT_PATH "/test.Slow/Wait"
#define RELEASE_PATH "/test.Slow/Release"
#define HANG_PATH "/test.Hang/Forever"
#define PUT_PATH "/test.Big/Put"

struct fixture {
        char dir[64];
        char sock[128];
        uv_loop_t loop;
        struct grpc_server *srv;
        pthread_t thread;
        uv_async_t stop;
        uv_timer_t release_timer;
        struct grpc_call *held; /* loop thread only */
        int ev_cancel, ev_received;
        atomic_int cancels;
        atomic_size_t max_pending;
        bool shut;
};

/* ---------------- helpers ---------------- */

static void ev_signal(int fd)
{
        uint64_t one = 1;
        assert_int_equal(write(fd, &one, sizeof(one)), sizeof(one));
}

/* Waits for the event (never a sleep: poll on the eventfd with a generous bound). */
static bool ev_wait(int fd, int ms)
{
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, ms) != 1)
                return false;
        uint64_t v;
        return read(fd, &v, sizeof(v)) == sizeof(v);
}

/* ---------------- handlers (loop thread) ---------------- */

static void on_version(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        (void)req;
        (void)userdata;
        VersionResponse resp = CONTAINERD__SERVICES__VERSION__V1__VERSION_RESPONSE__INIT;
        const char *ns = grpc_call_metadata(call, "containerd-namespace");
        resp.version = (char *)"1.2.3-test";
        resp.revision = (char *)(ns ? ns : "none");
        grpc_call_reply(call, &resp.base);
}

static void on_ns_get(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        (void)userdata;
        const GetNsReq *r = (const GetNsReq *)req;
        struct error *e = NULL;
        if (strcmp(r->name, "missing") == 0) {
                int rc = error_set(&e, ENOENT, "namespace \"%s\"", r->name);
                grpc_call_fail(call, rc, e);
                error_free(&e);
                return;
        }
        if (strncmp(r->name, "bad", 3) == 0) {
                grpc_call_finish(call, GRPC_INVALID_ARGUMENT, r->name);
                return;
        }
        Containerd__Services__Namespaces__V1__Namespace ns = CONTAINERD__SERVICES__NAMESPACES__V1__NAMESPACE__INIT;
        GetNsResp resp = CONTAINERD__SERVICES__NAMESPACES__V1__GET_NAMESPACE_RESPONSE__INIT;
        ns.name = r->name;
        resp.namespace_ = &ns;
        grpc_call_reply(call, &resp.base);
}

struct read_state {
        struct fixture *f;
        int64_t count, sent;
        size_t chunk;
        uint8_t *buf;
};

static void read_state_free(struct grpc_call *call)
{
        struct read_state *st = grpc_call_get_data(call);
        grpc_call_set_data(call, NULL);
        free(st->buf);
        free(st);
        grpc_call_unref(call);
}

static void read_produce(struct grpc_call *call, void *userdata);

static void read_cancelled(struct grpc_call *call, void *userdata)
{
        struct fixture *f = userdata;
        atomic_fetch_add(&f->cancels, 1);
        read_state_free(call);
        ev_signal(f->ev_cancel);
}

/* Content.Read-style producer: only produces while less than two chunks are queued. */
static void read_produce(struct grpc_call *call, void *userdata)
{
        (void)userdata;
        struct read_state *st = grpc_call_get_data(call);
        while (st->sent < st->count && grpc_call_pending_bytes(call) < 2 * st->chunk) {
                ReadResp resp = CONTAINERD__SERVICES__CONTENT__V1__READ_CONTENT_RESPONSE__INIT;
                resp.offset = st->sent;
                resp.data.data = st->buf;
                resp.data.len = st->chunk;
                assert_int_equal(grpc_call_send(call, &resp.base), 0);
                size_t p = grpc_call_pending_bytes(call);
                size_t cur = atomic_load(&st->f->max_pending);
                while (p > cur && !atomic_compare_exchange_weak(&st->f->max_pending, &cur, p))
                        ;
                st->sent++;
        }
        if (st->sent == st->count) {
                grpc_call_finish(call, GRPC_OK, NULL);
                read_state_free(call);
                return;
        }
        grpc_call_set_writable_cb(call, st->chunk, read_produce, NULL);
}

static void on_read(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const ReadReq *r = (const ReadReq *)req;
        struct read_state *st = xcalloc(1, sizeof(*st));
        st->f = userdata;
        st->count = r->offset;
        st->chunk = (size_t)r->size;
        st->buf = xcalloc(1, st->chunk + 1);
        memset(st->buf, 'x', st->chunk);
        grpc_call_set_data(call, st);
        grpc_call_ref(call);
        grpc_call_set_cancel_cb(call, read_cancelled, userdata);
        read_produce(call, NULL);
}

struct sum_state {
        int64_t sum, n;
};

static void sum_cancelled(struct grpc_call *call, void *userdata)
{
        (void)userdata;
        free(grpc_call_get_data(call));
        grpc_call_set_data(call, NULL);
}

static void on_sum_msg(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        (void)userdata;
        struct sum_state *st = grpc_call_get_data(call);
        if (!st) {
                st = xcalloc(1, sizeof(*st));
                grpc_call_set_data(call, st);
                grpc_call_set_cancel_cb(call, sum_cancelled, NULL);
        }
        st->sum += ((const WriteReq *)req)->offset;
        st->n++;
}

static void on_sum_done(struct grpc_call *call, void *userdata)
{
        (void)userdata;
        struct sum_state *st = grpc_call_get_data(call);
        WriteResp resp = CONTAINERD__SERVICES__CONTENT__V1__WRITE_CONTENT_RESPONSE__INIT;
        resp.offset = st ? st->sum : 0;
        resp.total = st ? st->n : 0;
        free(st);
        grpc_call_set_data(call, NULL);
        grpc_call_reply(call, &resp.base);
}

static void on_write_msg(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        (void)userdata;
        const WriteReq *r = (const WriteReq *)req;
        if (r->action == CONTAINERD__SERVICES__CONTENT__V1__WRITE_ACTION__COMMIT) {
                /* As containerd: the commit of an existing blob ends the stream before the client's END_STREAM. */
                grpc_call_finish(call, GRPC_ALREADY_EXISTS, "content sha256:abc: already exists");
                return;
        }
        WriteResp resp = CONTAINERD__SERVICES__CONTENT__V1__WRITE_CONTENT_RESPONSE__INIT;
        resp.action = r->action;
        resp.offset = r->offset + (int64_t)r->data.len;
        resp.total = (int64_t)r->data.len;
        resp.digest = r->ref;
        assert_int_equal(grpc_call_send(call, &resp.base), 0);
}

static void on_write_done(struct grpc_call *call, void *userdata)
{
        (void)userdata;
        grpc_call_finish(call, GRPC_OK, NULL);
}

static void held_cancelled(struct grpc_call *call, void *userdata)
{
        struct fixture *f = userdata;
        assert_ptr_equal(f->held, call);
        f->held = NULL;
        atomic_fetch_add(&f->cancels, 1);
        grpc_call_unref(call);
        ev_signal(f->ev_cancel);
}

static void on_wait(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        (void)req;
        struct fixture *f = userdata;
        f->held = grpc_call_ref(call);
        grpc_call_set_cancel_cb(call, held_cancelled, f);
        ev_signal(f->ev_received);
}

static void release_timer_cb(uv_timer_t *t)
{
        struct fixture *f = t->data;
        struct grpc_call *c = f->held;
        if (!c)
                return;
        f->held = NULL;
        VersionResponse resp = CONTAINERD__SERVICES__VERSION__V1__VERSION_RESPONSE__INIT;
        resp.version = (char *)"released";
        grpc_call_reply(c, &resp.base);
        grpc_call_unref(c);
}

static void on_release(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        (void)req;
        struct fixture *f = userdata;
        Google__Protobuf__Empty e = GOOGLE__PROTOBUF__EMPTY__INIT;
        grpc_call_reply(call, &e.base);
        uv_timer_start(&f->release_timer, release_timer_cb, 0, 0);
}

static void hang_cancelled(struct grpc_call *call, void *userdata)
{
        struct fixture *f = userdata;
        atomic_fetch_add(&f->cancels, 1);
        grpc_call_unref(call);
        ev_signal(f->ev_cancel);
}

static void on_hang(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        (void)req;
        struct fixture *f = userdata;
        grpc_call_ref(call);
        grpc_call_set_cancel_cb(call, hang_cancelled, f);
        ev_signal(f->ev_received);
}

static void on_put(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        (void)userdata;
        WriteResp resp = CONTAINERD__SERVICES__CONTENT__V1__WRITE_CONTENT_RESPONSE__INIT;
        resp.total = (int64_t)((const WriteReq *)req)->data.len;
        grpc_call_reply(call, &resp.base);
}

/* ---------------- fixture ---------------- */

static void server_done(void *data)
{
        struct fixture *f = data;
        uv_close((uv_handle_t *)&f->stop, NULL);
        uv_close((uv_handle_t *)&f->release_timer, NULL);
}

static void stop_cb(uv_async_t *a)
{
        struct fixture *f = a->data;
        grpc_server_shutdown(f->srv, server_done, f);
}

static void *loop_thread(void *arg)
{
        struct fixture *f = arg;
        uv_run(&f->loop, UV_RUN_DEFAULT);
        return NULL;
}

static int setup(void **state)
{
        struct fixture *f = xcalloc(1, sizeof(*f));
        strcpy(f->dir, "/tmp/krill-grpc-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        /* A missing parent directory is created 0711. */
        snprintf(f->sock, sizeof(f->sock), "%s/run/grpc.sock", f->dir);
        assert_int_equal(uv_loop_init(&f->loop), 0);
        f->ev_cancel = eventfd(0, EFD_CLOEXEC);
        f->ev_received = eventfd(0, EFD_CLOEXEC);
        struct grpc_server_options o = {.log_calls = true};
        f->srv = grpc_server_new(&f->loop, &o);
        const struct grpc_method methods[] = {
            {VERSION_PATH, GRPC_METHOD_UNARY, &google__protobuf__empty__descriptor, on_version, NULL, f},
            {NS_GET_PATH, GRPC_METHOD_UNARY, &containerd__services__namespaces__v1__get_namespace_request__descriptor,
             on_ns_get, NULL, f},
            {READ_PATH, GRPC_METHOD_SERVER_STREAM, &containerd__services__content__v1__read_content_request__descriptor,
             on_read, NULL, f},
            {WRITE_PATH, GRPC_METHOD_BIDI_STREAM, &containerd__services__content__v1__write_content_request__descriptor,
             on_write_msg, on_write_done, f},
            {SUM_PATH, GRPC_METHOD_CLIENT_STREAM, &containerd__services__content__v1__write_content_request__descriptor,
             on_sum_msg, on_sum_done, f},
            {WAIT_PATH, GRPC_METHOD_UNARY, &google__protobuf__empty__descriptor, on_wait, NULL, f},
            {RELEASE_PATH, GRPC_METHOD_UNARY, &google__protobuf__empty__descriptor, on_release, NULL, f},
            {HANG_PATH, GRPC_METHOD_UNARY, &google__protobuf__empty__descriptor, on_hang, NULL, f},
            {PUT_PATH, GRPC_METHOD_UNARY, &containerd__services__content__v1__write_content_request__descriptor, on_put,
             NULL, f},
        };
        for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
                assert_int_equal(grpc_server_add_method(f->srv, &methods[i]), 0);
        assert_int_equal(grpc_server_add_method(f->srv, &methods[0]), -EEXIST);
        struct error *e = NULL;
        assert_int_equal(grpc_server_listen_unix(f->srv, f->sock, &e), 0);
        uv_async_init(&f->loop, &f->stop, stop_cb);
        f->stop.data = f;
        uv_timer_init(&f->loop, &f->release_timer);
        f->release_timer.data = f;
        assert_int_equal(pthread_create(&f->thread, NULL, loop_thread, f), 0);
        *state = f;
        return 0;
}

static void stop_server(struct fixture *f)
{
        if (f->shut)
                return;
        f->shut = true;
        uv_async_send(&f->stop);
        pthread_join(f->thread, NULL);
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        stop_server(f);
        grpc_server_free(f->srv);
        assert_int_equal(uv_loop_close(&f->loop), 0);
        /* Shutdown removed the socket file. */
        assert_int_equal(access(f->sock, F_OK), -1);
        char *run = xasprintf("%s/run", f->dir);
        assert_int_equal(rmdir(run), 0);
        free(run);
        assert_int_equal(rmdir(f->dir), 0);
        close(f->ev_cancel);
        close(f->ev_received);
        free(f);
        return 0;
}

static struct grpc_client *connect_client(struct fixture *f)
{
        struct grpc_client *c = NULL;
        struct error *e = NULL;
        char *addr = xasprintf("unix://%s", f->sock);
        int r = grpc_client_connect(addr, 5000, &c, &e);
        free(addr);
        if (r < 0)
                fail_msg("connect: %s", error_str(e));
        static const struct grpc_metadata md[] = {{"containerd-namespace", "testns"}, {NULL, NULL}};
        grpc_client_set_default_metadata(c, md);
        return c;
}

/* ---------------- tests ---------------- */

static void test_grpc_unary_version_and_metadata(void **state)
{
        struct fixture *f = *state;
        struct grpc_client *c = connect_client(f);
        Google__Protobuf__Empty req = GOOGLE__PROTOBUF__EMPTY__INIT;
        VersionResponse *resp = NULL;
        struct error *e = NULL;
        assert_int_equal(grpc_client_unary(c, VERSION_PATH, NULL, &req.base,
                                           &containerd__services__version__v1__version_response__descriptor,
                                           (ProtobufCMessage **)&resp, &e),
                         0);
        assert_string_equal(resp->version, "1.2.3-test");
        assert_string_equal(resp->revision, "testns"); /* default metadata reached the handler */
        protobuf_c_message_free_unpacked(&resp->base, NULL);

        /* Per-call metadata overrides the default one. */
        const struct grpc_metadata extra[] = {{"containerd-namespace", "other"}, {NULL, NULL}};
        assert_int_equal(grpc_client_unary(c, VERSION_PATH, extra, &req.base,
                                           &containerd__services__version__v1__version_response__descriptor,
                                           (ProtobufCMessage **)&resp, &e),
                         0);
        assert_string_equal(resp->revision, "other");
        protobuf_c_message_free_unpacked(&resp->base, NULL);

        /* Many sequential calls on one connection (stream ids advance, state is released). */
        for (int i = 0; i < 200; i++) {
                assert_int_equal(grpc_client_unary(c, VERSION_PATH, NULL, &req.base,
                                                   &containerd__services__version__v1__version_response__descriptor,
                                                   (ProtobufCMessage **)&resp, &e),
                                 0);
                protobuf_c_message_free_unpacked(&resp->base, NULL);
        }
        grpc_client_free(c);
}

static void test_grpc_unary_errors_map_to_errno(void **state)
{
        struct fixture *f = *state;
        struct grpc_client *c = connect_client(f);
        GetNsReq req = CONTAINERD__SERVICES__NAMESPACES__V1__GET_NAMESPACE_REQUEST__INIT;
        GetNsResp *resp = NULL;
        struct error *e = NULL;

        req.name = (char *)"default";
        assert_int_equal(grpc_client_unary(c, NS_GET_PATH, NULL, &req.base,
                                           &containerd__services__namespaces__v1__get_namespace_response__descriptor,
                                           (ProtobufCMessage **)&resp, &e),
                         0);
        assert_string_equal(resp->namespace_->name, "default");
        protobuf_c_message_free_unpacked(&resp->base, NULL);

        req.name = (char *)"missing";
        assert_int_equal(grpc_client_unary(c, NS_GET_PATH, NULL, &req.base,
                                           &containerd__services__namespaces__v1__get_namespace_response__descriptor,
                                           (ProtobufCMessage **)&resp, &e),
                         -ENOENT);
        assert_int_equal(e->code, ENOENT);
        assert_string_equal(error_str(e), "namespace \"missing\": not found");
        error_free(&e);

        /* grpc-message survives percent-encoding: '%', quotes, newline, UTF-8. */
        req.name = (char *)"bad 100% \"q\"\n\xc3\xa9";
        assert_int_equal(grpc_client_unary(c, NS_GET_PATH, NULL, &req.base,
                                           &containerd__services__namespaces__v1__get_namespace_response__descriptor,
                                           (ProtobufCMessage **)&resp, &e),
                         -EINVAL);
        /* Rendering may add the class text (Go clients do); the message itself must survive intact. */
        assert_non_null(strstr(error_str(e), "bad 100% \"q\"\n\xc3\xa9"));
        error_free(&e);
        grpc_client_free(c);
}

static void test_grpc_unknown_method_unimplemented(void **state)
{
        struct fixture *f = *state;
        struct grpc_client *c = connect_client(f);
        Google__Protobuf__Empty req = GOOGLE__PROTOBUF__EMPTY__INIT;
        ProtobufCMessage *resp = NULL;
        struct error *e = NULL;
        assert_int_equal(grpc_client_unary(c, "/containerd.services.foo.v1.Foo/Bar", NULL, &req.base,
                                           &google__protobuf__empty__descriptor, &resp, &e),
                         -ENOSYS);
        assert_non_null(strstr(error_str(e), "unknown service containerd.services.foo.v1.Foo"));
        error_free(&e);
        assert_int_equal(grpc_client_unary(c, "/containerd.services.version.v1.Version/Nope", NULL, &req.base,
                                           &google__protobuf__empty__descriptor, &resp, &e),
                         -ENOSYS);
        assert_non_null(strstr(error_str(e), "unknown method Nope for service containerd.services.version.v1.Version"));
        error_free(&e);
        /* nghttp2 itself rejects a :path without '/', so this is a stream error, not a gRPC status. */
        assert_true(grpc_client_unary(c, "nonsense", NULL, &req.base, &google__protobuf__empty__descriptor, &resp, &e) <
                    0);
        error_free(&e);
        /* The connection still serves. */
        assert_int_equal(grpc_client_unary(c, VERSION_PATH, NULL, &req.base,
                                           &containerd__services__version__v1__version_response__descriptor, &resp, &e),
                         0);
        protobuf_c_message_free_unpacked(resp, NULL);
        grpc_client_free(c);
}

static void read_all(struct grpc_stream *s, int64_t count, size_t chunk)
{
        struct error *e = NULL;
        for (int64_t i = 0; i < count; i++) {
                ReadResp *m = NULL;
                int r = grpc_stream_recv(s, 0, (ProtobufCMessage **)&m, &e);
                if (r != 1)
                        fail_msg("recv %lld: %d %s", (long long)i, r, e ? error_str(e) : "");
                assert_int_equal(m->offset, i);
                assert_int_equal(m->data.len, chunk);
                protobuf_c_message_free_unpacked(&m->base, NULL);
        }
        ProtobufCMessage *m = NULL;
        assert_int_equal(grpc_stream_recv(s, 0, &m, &e), 0);
}

static struct grpc_stream *open_read(struct grpc_client *c, int64_t count, int64_t chunk)
{
        struct grpc_stream *s = NULL;
        struct error *e = NULL;
        ReadReq req = CONTAINERD__SERVICES__CONTENT__V1__READ_CONTENT_REQUEST__INIT;
        req.digest = (char *)"sha256:x";
        req.offset = count;
        req.size = chunk;
        assert_int_equal(grpc_client_stream_open(c, READ_PATH, NULL,
                                                 &containerd__services__content__v1__read_content_response__descriptor,
                                                 &s, &e),
                         0);
        assert_int_equal(grpc_stream_send(s, &req.base, &e), 0);
        assert_int_equal(grpc_stream_close_send(s, &e), 0);
        return s;
}

static void test_grpc_server_stream_and_concurrent_streams(void **state)
{
        struct fixture *f = *state;
        struct grpc_client *c = connect_client(f);
        struct grpc_stream *s = open_read(c, 50, 1000);
        read_all(s, 50, 1000);
        grpc_stream_free(s);

        /* Zero messages: trailers only, still OK. */
        s = open_read(c, 0, 10);
        read_all(s, 0, 10);
        grpc_stream_free(s);

        /* Twenty streams open at once, read in reverse order: receiving on one pumps them all. */
        struct grpc_stream *v[20];
        for (int i = 0; i < 20; i++)
                v[i] = open_read(c, 5 + i, 100 + (size_t)i);
        for (int i = 19; i >= 0; i--) {
                read_all(v[i], 5 + i, 100 + (size_t)i);
                grpc_stream_free(v[i]);
        }
        grpc_client_free(c);
}

static void test_grpc_server_stream_backpressure(void **state)
{
        struct fixture *f = *state;
        struct grpc_client *c = connect_client(f);
        const size_t chunk = 1024 * 1024;
        struct grpc_stream *s = open_read(c, 40, (int64_t)chunk);
        read_all(s, 40, chunk);
        grpc_stream_free(s);
        /* 40 MiB went through, but the producer never had more than ~2 chunks queued. */
        size_t maxp = atomic_load(&f->max_pending);
        assert_true(maxp > 0);
        assert_true(maxp <= 3 * (chunk + 16));
        grpc_client_free(c);
}

static void test_grpc_client_stream(void **state)
{
        struct fixture *f = *state;
        struct grpc_client *c = connect_client(f);
        struct grpc_stream *s = NULL;
        struct error *e = NULL;
        assert_int_equal(grpc_client_stream_open(c, SUM_PATH, NULL,
                                                 &containerd__services__content__v1__write_content_response__descriptor,
                                                 &s, &e),
                         0);
        for (int i = 0; i < 10; i++) {
                WriteReq req = CONTAINERD__SERVICES__CONTENT__V1__WRITE_CONTENT_REQUEST__INIT;
                req.offset = i;
                assert_int_equal(grpc_stream_send(s, &req.base, &e), 0);
        }
        assert_int_equal(grpc_stream_close_send(s, &e), 0);
        WriteResp *resp = NULL;
        assert_int_equal(grpc_stream_recv(s, 0, (ProtobufCMessage **)&resp, &e), 1);
        assert_int_equal(resp->offset, 45);
        assert_int_equal(resp->total, 10);
        protobuf_c_message_free_unpacked(&resp->base, NULL);
        ProtobufCMessage *m = NULL;
        assert_int_equal(grpc_stream_recv(s, 0, &m, &e), 0);
        grpc_stream_free(s);
        grpc_client_free(c);
}

static void test_grpc_bidi_and_early_close(void **state)
{
        struct fixture *f = *state;
        struct grpc_client *c = connect_client(f);
        struct grpc_stream *s = NULL;
        struct error *e = NULL;
        assert_int_equal(grpc_client_stream_open(c, WRITE_PATH, NULL,
                                                 &containerd__services__content__v1__write_content_response__descriptor,
                                                 &s, &e),
                         0);
        /* Each request gets its reply before the next one is sent: true bidi, like Content.Write. */
        uint8_t *data = xcalloc(1, 300000);
        int64_t off = 0;
        for (int i = 0; i < 5; i++) {
                WriteReq req = CONTAINERD__SERVICES__CONTENT__V1__WRITE_CONTENT_REQUEST__INIT;
                req.action = CONTAINERD__SERVICES__CONTENT__V1__WRITE_ACTION__WRITE;
                req.ref = (char *)"ref-1";
                req.offset = off;
                req.data.data = data;
                req.data.len = 1000 + (size_t)i * 70000; /* spans many DATA frames */
                assert_int_equal(grpc_stream_send(s, &req.base, &e), 0);
                WriteResp *resp = NULL;
                assert_int_equal(grpc_stream_recv(s, 0, (ProtobufCMessage **)&resp, &e), 1);
                assert_int_equal(resp->offset, off + (int64_t)req.data.len);
                assert_string_equal(resp->digest, "ref-1");
                off = resp->offset;
                protobuf_c_message_free_unpacked(&resp->base, NULL);
        }
        free(data);
        /* Commit of an existing blob: the server ends the stream (trailers, then RST_STREAM NO_ERROR)
         * without the client ever half-closing. */
        WriteReq commit = CONTAINERD__SERVICES__CONTENT__V1__WRITE_CONTENT_REQUEST__INIT;
        commit.action = CONTAINERD__SERVICES__CONTENT__V1__WRITE_ACTION__COMMIT;
        assert_int_equal(grpc_stream_send(s, &commit.base, &e), 0);
        ProtobufCMessage *m = NULL;
        int rc = grpc_stream_recv(s, 0, &m, &e);
        if (rc != -EEXIST)
                fail_msg("commit: %d %s", rc, e ? error_str(e) : "");
        assert_string_equal(e->msg, "content sha256:abc");
        error_free(&e);
        grpc_stream_free(s);

        /* Bidi with a normal half-close. */
        assert_int_equal(grpc_client_stream_open(c, WRITE_PATH, NULL,
                                                 &containerd__services__content__v1__write_content_response__descriptor,
                                                 &s, &e),
                         0);
        assert_int_equal(grpc_stream_close_send(s, &e), 0);
        assert_int_equal(grpc_stream_recv(s, 0, &m, &e), 0);
        grpc_stream_free(s);
        grpc_client_free(c);
}

static void test_grpc_slow_call_does_not_block_others(void **state)
{
        struct fixture *f = *state;
        struct grpc_client *c = connect_client(f);
        struct grpc_stream *slow = NULL;
        struct error *e = NULL;
        Google__Protobuf__Empty empty = GOOGLE__PROTOBUF__EMPTY__INIT;
        assert_int_equal(grpc_client_stream_open(c, WAIT_PATH, NULL,
                                                 &containerd__services__version__v1__version_response__descriptor,
                                                 &slow, &e),
                         0);
        assert_int_equal(grpc_stream_send(slow, &empty.base, &e), 0);
        assert_int_equal(grpc_stream_close_send(slow, &e), 0);
        ProtobufCMessage *m = NULL;
        /* The handler holds the call; nothing arrives, and the stream stays usable. */
        assert_int_equal(grpc_stream_recv(slow, 50, &m, &e), -ETIMEDOUT);
        assert_true(ev_wait(f->ev_received, 10000));

        /* A fast call on the same connection completes while Wait is pending (Tasks.Start vs Tasks.Wait). */
        for (int i = 0; i < 3; i++) {
                VersionResponse *v = NULL;
                assert_int_equal(grpc_client_unary(c, VERSION_PATH, NULL, &empty.base,
                                                   &containerd__services__version__v1__version_response__descriptor,
                                                   (ProtobufCMessage **)&v, &e),
                                 0);
                protobuf_c_message_free_unpacked(&v->base, NULL);
        }
        /* Release answers the held call later, from a uv timer. */
        assert_int_equal(
            grpc_client_unary(c, RELEASE_PATH, NULL, &empty.base, &google__protobuf__empty__descriptor, &m, &e), 0);
        protobuf_c_message_free_unpacked(m, NULL);
        VersionResponse *v = NULL;
        assert_int_equal(grpc_stream_recv(slow, 0, (ProtobufCMessage **)&v, &e), 1);
        assert_string_equal(v->version, "released");
        protobuf_c_message_free_unpacked(&v->base, NULL);
        assert_int_equal(grpc_stream_recv(slow, 0, &m, &e), 0);
        grpc_stream_free(slow);
        assert_int_equal(atomic_load(&f->cancels), 0);
        grpc_client_free(c);
}

/* Reads until EOF (the server closed this connection); false if it stayed open for 10 s. */
static bool wait_eof(int fd)
{
        for (;;) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                if (poll(&p, 1, 10000) != 1)
                        return false;
                char buf[4096];
                ssize_t n = read(fd, buf, sizeof(buf));
                if (n == 0 || (n < 0 && errno == ECONNRESET))
                        return true;
                if (n < 0)
                        return false;
        }
}

static int raw_connect(struct fixture *f)
{
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        strcpy(sa.sun_path, f->sock);
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        return fd;
}

static void test_grpc_malformed_input_closes_only_that_connection(void **state)
{
        struct fixture *f = *state;
        /* A good connection, opened first, with a call in flight on it. */
        struct grpc_client *good = connect_client(f);
        struct error *e = NULL;
        Google__Protobuf__Empty empty = GOOGLE__PROTOBUF__EMPTY__INIT;
        struct grpc_stream *slow = NULL;
        assert_int_equal(grpc_client_stream_open(good, WAIT_PATH, NULL,
                                                 &containerd__services__version__v1__version_response__descriptor,
                                                 &slow, &e),
                         0);
        assert_int_equal(grpc_stream_send(slow, &empty.base, &e), 0);
        assert_int_equal(grpc_stream_close_send(slow, &e), 0);
        ProtobufCMessage *m = NULL;
        while (!ev_wait(f->ev_received, 0))
                assert_int_equal(grpc_stream_recv(slow, 20, &m, &e), -ETIMEDOUT);

        /* HTTP/1.1 instead of the HTTP/2 preface. */
        int fd = raw_connect(f);
        static const char http1[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_int_equal(write(fd, http1, sizeof(http1) - 1), (ssize_t)sizeof(http1) - 1);
        assert_true(wait_eof(fd));
        close(fd);

        /* A valid preface followed by a garbage frame (type DATA on stream 0 is a connection error). */
        fd = raw_connect(f);
        static const char bad[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                                  "\x00\x00\x00\x04\x00\x00\x00\x00\x00" /* empty SETTINGS */
                                  "\x00\x00\x04\x00\x00\x00\x00\x00\x00"
                                  "abcd"; /* DATA on stream 0 */
        assert_int_equal(write(fd, bad, sizeof(bad) - 1), (ssize_t)sizeof(bad) - 1);
        assert_true(wait_eof(fd));
        close(fd);

        /* The good connection and its pending call are unaffected. */
        VersionResponse *v = NULL;
        assert_int_equal(grpc_client_unary(good, VERSION_PATH, NULL, &empty.base,
                                           &containerd__services__version__v1__version_response__descriptor,
                                           (ProtobufCMessage **)&v, &e),
                         0);
        protobuf_c_message_free_unpacked(&v->base, NULL);
        assert_int_equal(
            grpc_client_unary(good, RELEASE_PATH, NULL, &empty.base, &google__protobuf__empty__descriptor, &m, &e), 0);
        protobuf_c_message_free_unpacked(m, NULL);
        assert_int_equal(grpc_stream_recv(slow, 0, (ProtobufCMessage **)&v, &e), 1);
        assert_string_equal(v->version, "released");
        protobuf_c_message_free_unpacked(&v->base, NULL);
        grpc_stream_free(slow);
        assert_int_equal(atomic_load(&f->cancels), 0);
        grpc_client_free(good);
}

static void test_grpc_oversized_request_then_serves(void **state)
{
        struct fixture *f = *state;
        struct grpc_client *c = connect_client(f);
        struct error *e = NULL;
        WriteReq req = CONTAINERD__SERVICES__CONTENT__V1__WRITE_CONTENT_REQUEST__INIT;
        req.data.len = 17 * 1024 * 1024;
        req.data.data = xcalloc(1, req.data.len);
        WriteResp *resp = NULL;
        int rc = grpc_client_unary(c, PUT_PATH, NULL, &req.base,
                                   &containerd__services__content__v1__write_content_response__descriptor,
                                   (ProtobufCMessage **)&resp, &e);
        if (rc != -ENOSPC) /* RESOURCE_EXHAUSTED */
                fail_msg("oversized: %d %s", rc, e ? error_str(e) : "");
        assert_non_null(strstr(error_str(e), "larger than max"));
        error_free(&e);

        /* The same connection keeps serving, including a large (but allowed) message. */
        req.data.len = 4 * 1024 * 1024;
        assert_int_equal(grpc_client_unary(c, PUT_PATH, NULL, &req.base,
                                           &containerd__services__content__v1__write_content_response__descriptor,
                                           (ProtobufCMessage **)&resp, &e),
                         0);
        assert_int_equal(resp->total, 4 * 1024 * 1024);
        protobuf_c_message_free_unpacked(&resp->base, NULL);
        free(req.data.data);
        grpc_client_free(c);
}

static void test_grpc_connection_buffer_limit(void **state)
{
        struct fixture *f = *state;
        struct grpc_client *c = connect_client(f);
        struct error *e = NULL;
        /* Five unary requests of 15 MiB each that never half-close: the server must hold them all (it waits
         * for END_STREAM), which exceeds the per-connection bound, so the connection is dropped. */
        WriteReq req = CONTAINERD__SERVICES__CONTENT__V1__WRITE_CONTENT_REQUEST__INIT;
        req.data.len = 15 * 1024 * 1024;
        req.data.data = xcalloc(1, req.data.len);
        struct grpc_stream *v[5];
        for (int i = 0; i < 5; i++) {
                assert_int_equal(grpc_client_stream_open(
                                     c, PUT_PATH, NULL,
                                     &containerd__services__content__v1__write_content_response__descriptor, &v[i], &e),
                                 0);
                assert_int_equal(grpc_stream_send(v[i], &req.base, &e), 0);
        }
        free(req.data.data);
        ProtobufCMessage *m = NULL;
        int failed = 0;
        for (int i = 0; i < 5; i++) {
                int r = grpc_stream_recv(v[i], 10000, &m, &e);
                assert_int_equal(r, -EAGAIN); /* UNAVAILABLE: the connection went away */
                error_free(&e);
                failed++;
                grpc_stream_free(v[i]);
        }
        assert_int_equal(failed, 5);
        grpc_client_free(c);

        /* The server itself is fine. */
        c = connect_client(f);
        Google__Protobuf__Empty empty = GOOGLE__PROTOBUF__EMPTY__INIT;
        assert_int_equal(grpc_client_unary(c, VERSION_PATH, NULL, &empty.base,
                                           &containerd__services__version__v1__version_response__descriptor, &m, &e),
                         0);
        protobuf_c_message_free_unpacked(m, NULL);
        grpc_client_free(c);
}

static void test_grpc_deadline_cancels_call(void **state)
{
        struct fixture *f = *state;
        struct grpc_client *c = connect_client(f);
        struct error *e = NULL;
        Google__Protobuf__Empty empty = GOOGLE__PROTOBUF__EMPTY__INIT;
        ProtobufCMessage *m = NULL;
        /* A grpc-timeout only the server enforces (the client has no timeout of its own here). */
        const struct grpc_metadata md[] = {{"grpc-timeout", "50000u"}, {NULL, NULL}};
        assert_int_equal(grpc_client_unary(c, HANG_PATH, md, &empty.base, &google__protobuf__empty__descriptor, &m, &e),
                         -ECANCELED); /* the server's RST_STREAM(CANCEL) */
        error_free(&e);
        assert_true(ev_wait(f->ev_cancel, 10000));
        assert_int_equal(atomic_load(&f->cancels), 1);

        /* The client's own timeout: DEADLINE_EXCEEDED locally, and the server call is cancelled too. */
        grpc_client_set_timeout(c, 100);
        assert_int_equal(
            grpc_client_unary(c, HANG_PATH, NULL, &empty.base, &google__protobuf__empty__descriptor, &m, &e),
            -ETIMEDOUT);
        assert_string_equal(error_str(e), "context deadline exceeded");
        error_free(&e);
        assert_true(ev_wait(f->ev_cancel, 10000));
        assert_int_equal(atomic_load(&f->cancels), 2);
        grpc_client_free(c);
}

static void test_grpc_client_cancel_reaches_handler(void **state)
{
        struct fixture *f = *state;
        struct grpc_client *c = connect_client(f);
        struct error *e = NULL;
        Google__Protobuf__Empty empty = GOOGLE__PROTOBUF__EMPTY__INIT;
        struct grpc_stream *s = NULL;
        assert_int_equal(grpc_client_stream_open(c, HANG_PATH, NULL, &google__protobuf__empty__descriptor, &s, &e), 0);
        assert_int_equal(grpc_stream_send(s, &empty.base, &e), 0);
        assert_int_equal(grpc_stream_close_send(s, &e), 0);
        /* Pump until the handler has the call. */
        ProtobufCMessage *m = NULL;
        while (!ev_wait(f->ev_received, 0))
                assert_int_equal(grpc_stream_recv(s, 20, &m, &e), -ETIMEDOUT);
        grpc_stream_free(s); /* RST_STREAM(CANCEL) */
        assert_true(ev_wait(f->ev_cancel, 10000));
        assert_int_equal(atomic_load(&f->cancels), 1);

        /* A server stream the client stops reading (ctr does this on Content.Read): producer is cancelled. */
        s = open_read(c, 1000, 64 * 1024);
        ReadResp *r = NULL;
        assert_int_equal(grpc_stream_recv(s, 0, (ProtobufCMessage **)&r, &e), 1);
        protobuf_c_message_free_unpacked(&r->base, NULL);
        grpc_stream_free(s);
        assert_true(ev_wait(f->ev_cancel, 10000));
        assert_int_equal(atomic_load(&f->cancels), 2);

        /* Closing the whole connection cancels its open calls as well. */
        assert_int_equal(grpc_client_stream_open(c, HANG_PATH, NULL, &google__protobuf__empty__descriptor, &s, &e), 0);
        assert_int_equal(grpc_stream_send(s, &empty.base, &e), 0);
        assert_int_equal(grpc_stream_close_send(s, &e), 0);
        while (!ev_wait(f->ev_received, 0))
                assert_int_equal(grpc_stream_recv(s, 20, &m, &e), -ETIMEDOUT);
        grpc_client_free(c);
        assert_true(ev_wait(f->ev_cancel, 10000));
        assert_int_equal(atomic_load(&f->cancels), 3);
}

static void test_grpc_shutdown_cancels_open_calls(void **state)
{
        struct fixture *f = *state;
        struct grpc_client *c = connect_client(f);
        struct error *e = NULL;
        Google__Protobuf__Empty empty = GOOGLE__PROTOBUF__EMPTY__INIT;
        struct grpc_stream *s = NULL;
        assert_int_equal(grpc_client_stream_open(c, WAIT_PATH, NULL, &google__protobuf__empty__descriptor, &s, &e), 0);
        assert_int_equal(grpc_stream_send(s, &empty.base, &e), 0);
        assert_int_equal(grpc_stream_close_send(s, &e), 0);
        ProtobufCMessage *m = NULL;
        while (!ev_wait(f->ev_received, 0))
                assert_int_equal(grpc_stream_recv(s, 20, &m, &e), -ETIMEDOUT);
        stop_server(f);
        assert_true(ev_wait(f->ev_cancel, 0)); /* the loop has exited: the cancel callback already ran */
        /* GOAWAY and a closed transport, no RST_STREAM: the open stream ends Unavailable (as with containerd's
         * Stop), not Canceled. */
        assert_int_equal(grpc_stream_recv(s, 10000, &m, &e), -EAGAIN);
        assert_int_equal(e->code, EAGAIN);
        error_free(&e);
        grpc_stream_free(s);
        s = NULL;
        assert_true(grpc_client_stream_open(c, WAIT_PATH, NULL, &google__protobuf__empty__descriptor, &s, &e) < 0 ||
                    grpc_stream_recv(s, 10000, &m, &e) < 0);
        error_free(&e);
        grpc_stream_free(s);
        grpc_client_free(c);
}

/* ---------------- socket file handling (no loop thread needed) ---------------- */

static void test_grpc_socket_stale_replaced_active_refused(void **state)
{
        (void)state;
        char dir[] = "/tmp/krill-grpc-sock-XXXXXX";
        assert_non_null(mkdtemp(dir));
        char *sub = xasprintf("%s/a/b", dir);
        char *path = xasprintf("%s/a/b/s.sock", dir);
        uv_loop_t loop;
        uv_loop_init(&loop);

        /* A stale socket: bound, then its owner went away. */
        char *a = xasprintf("%s/a", dir);
        assert_int_equal(mkdir(a, 0755), 0);
        assert_int_equal(mkdir(sub, 0711), 0);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        strcpy(sa.sun_path, path);
        assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        close(fd);

        struct grpc_server *s1 = grpc_server_new(&loop, NULL);
        struct error *e = NULL;
        assert_int_equal(grpc_server_listen_unix(s1, path, &e), 0);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_true(S_ISSOCK(st.st_mode));
        assert_int_equal(st.st_mode & 0777, 0660);
        /* The replacement really listens. */
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        close(fd);

        /* An active socket is never taken over. */
        struct grpc_server *s2 = grpc_server_new(&loop, NULL);
        assert_int_equal(grpc_server_listen_unix(s2, path, &e), -EADDRINUSE);
        error_free(&e);

        /* Something that is not a socket is not removed either. */
        char *file = xasprintf("%s/a/b/file", dir);
        fd = open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        close(fd);
        assert_true(grpc_server_listen_unix(s2, file, &e) < 0);
        error_free(&e);
        assert_int_equal(access(file, F_OK), 0);
        unlink(file);

        /* A missing parent is created 0711. */
        char *deep = xasprintf("%s/new/dir/s.sock", dir);
        assert_int_equal(grpc_server_listen_unix(s2, deep, &e), 0);
        char *newdir = xasprintf("%s/new/dir", dir);
        assert_int_equal(stat(newdir, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0711);

        /* A path so long that no temporary name fits next to it in sun_path: replaced in place. */
        char *lng = xasprintf("%s/new/%.*s", dir, (int)(sizeof(sa.sun_path) - 1 - strlen(dir) - 5),
                              "ssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssss"
                              "ssssssssssssssssssssssssssssssssssssss");
        assert_int_equal(strlen(lng), sizeof(sa.sun_path) - 1);
        struct sockaddr_un lsa = {.sun_family = AF_UNIX};
        strcpy(lsa.sun_path, lng);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_int_equal(bind(fd, (struct sockaddr *)&lsa, sizeof(lsa)), 0);
        close(fd);
        struct grpc_server *s3 = grpc_server_new(&loop, NULL);
        assert_int_equal(grpc_server_listen_unix(s3, lng, &e), 0);
        assert_int_equal(stat(lng, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0660);

        grpc_server_shutdown(s1, NULL, NULL);
        grpc_server_shutdown(s2, NULL, NULL);
        grpc_server_shutdown(s3, NULL, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        grpc_server_free(s3);
        assert_int_equal(access(lng, F_OK), -1);
        free(lng);
        grpc_server_free(s1);
        grpc_server_free(s2);
        assert_int_equal(uv_loop_close(&loop), 0);
        assert_int_equal(access(path, F_OK), -1);
        assert_int_equal(access(deep, F_OK), -1);
        rmdir(newdir);
        char *newp = xasprintf("%s/new", dir);
        rmdir(newp);
        rmdir(sub);
        rmdir(a);
        assert_int_equal(rmdir(dir), 0);
        free(newp);
        free(newdir);
        free(deep);
        free(file);
        free(a);
        free(sub);
        free(path);
}

int main(void)
{
        signal(SIGPIPE, SIG_IGN); /* as in the daemon: libuv writes with write(2) */
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_grpc_unary_version_and_metadata, setup, teardown),
            cmocka_unit_test_setup_teardown(test_grpc_unary_errors_map_to_errno, setup, teardown),
            cmocka_unit_test_setup_teardown(test_grpc_unknown_method_unimplemented, setup, teardown),
            cmocka_unit_test_setup_teardown(test_grpc_server_stream_and_concurrent_streams, setup, teardown),
            cmocka_unit_test_setup_teardown(test_grpc_server_stream_backpressure, setup, teardown),
            cmocka_unit_test_setup_teardown(test_grpc_client_stream, setup, teardown),
            cmocka_unit_test_setup_teardown(test_grpc_bidi_and_early_close, setup, teardown),
            cmocka_unit_test_setup_teardown(test_grpc_slow_call_does_not_block_others, setup, teardown),
            cmocka_unit_test_setup_teardown(test_grpc_malformed_input_closes_only_that_connection, setup, teardown),
            cmocka_unit_test_setup_teardown(test_grpc_oversized_request_then_serves, setup, teardown),
            cmocka_unit_test_setup_teardown(test_grpc_connection_buffer_limit, setup, teardown),
            cmocka_unit_test_setup_teardown(test_grpc_deadline_cancels_call, setup, teardown),
            cmocka_unit_test_setup_teardown(test_grpc_client_cancel_reaches_handler, setup, teardown),
            cmocka_unit_test_setup_teardown(test_grpc_shutdown_cancels_open_calls, setup, teardown),
            cmocka_unit_test(test_grpc_socket_stale_replaced_active_refused),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The shim's epoll loop and ttrpc server (loop.c, rpc.c): frame reader splits and oversize frames, timers in
 * deadline order, a watch stopped by an earlier callback of the same batch, and a real unix socket served on
 * the loop: a reply with payload, a late (referenced) reply, a call dropped without reply, and the status
 * texts for an unknown service or method and an even stream id. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "krill-api.h"
#include "shim/rpc.h"
#include "util/cleanup.h"

/* ---------------- frame reader ---------------- */

struct frames {
        int n;
        uint32_t ids[4];
        size_t lens[4];
        bool oversize[4];
        char payload[4][16];
};

static bool on_frame(void *data, uint32_t stream_id, uint8_t type, const uint8_t *payload, size_t len, bool oversize)
{
        struct frames *f = data;

        assert_true(f->n < 4);
        assert_int_equal(type, SHIM_RPC_REQUEST);
        f->ids[f->n] = stream_id;
        f->lens[f->n] = len;
        f->oversize[f->n] = oversize;
        if (payload && len < 16)
                memcpy(f->payload[f->n], payload, len);
        f->n++;
        return true;
}

static void test_frame_split(void **state)
{
        uint8_t buf[64];
        size_t n = 0;
        struct shim_frame_reader r = {0};
        struct frames f = {0};
        (void)state;
        shim_frame_header_encode(5, 7, SHIM_RPC_REQUEST, buf);
        memcpy(buf + 10, "hello", 5);
        n = 15;
        shim_frame_header_encode(0, 9, SHIM_RPC_REQUEST, buf + n);
        n += 10;
        shim_frame_header_encode(3, 0x01020304, SHIM_RPC_REQUEST, buf + n);
        memcpy(buf + n + 10, "abc", 3);
        n += 13;
        for (size_t i = 0; i < n; i++)
                assert_true(shim_frame_feed(&r, buf + i, 1, on_frame, &f));
        assert_int_equal(f.n, 3);
        assert_int_equal(f.ids[0], 7);
        assert_int_equal(f.lens[0], 5);
        assert_memory_equal(f.payload[0], "hello", 5);
        assert_int_equal(f.ids[1], 9);
        assert_int_equal(f.lens[1], 0);
        assert_int_equal(f.ids[2], 0x01020304);
        assert_memory_equal(f.payload[2], "abc", 3);
        shim_frame_reader_done(&r);
}

static void test_frame_oversize(void **state)
{
        static uint8_t chunk[65536];
        uint8_t hdr[10];
        size_t left = SHIM_RPC_MAX_MESSAGE + 1;
        struct shim_frame_reader r = {0};
        struct frames f = {0};
        (void)state;
        shim_frame_header_encode((uint32_t)left, 3, SHIM_RPC_REQUEST, hdr);
        assert_true(shim_frame_feed(&r, hdr, 10, on_frame, &f));
        while (left > 0) {
                size_t take = left < sizeof(chunk) ? left : sizeof(chunk);
                assert_true(shim_frame_feed(&r, chunk, take, on_frame, &f));
                left -= take;
        }
        assert_int_equal(f.n, 1);
        assert_true(f.oversize[0]);
        assert_int_equal(f.lens[0], 0);
        assert_null(r.buf); /* nothing was buffered for it */
        shim_frame_reader_done(&r);
}

/* ---------------- loop ---------------- */

static int order[4], n_order;

static void on_timer(struct shim_timer *t)
{
        order[n_order++] = (int)(intptr_t)t->data;
        if (n_order == 3)
                shim_loop_stop(t->loop);
}

static void test_timers(void **state)
{
        struct shim_loop l;
        struct shim_timer a, b, c, d;
        (void)state;
        assert_int_equal(shim_loop_init(&l), 0);
        n_order = 0;
        shim_timer_init(&l, &a, on_timer, (void *)1);
        shim_timer_init(&l, &b, on_timer, (void *)2);
        shim_timer_init(&l, &c, on_timer, (void *)3);
        shim_timer_init(&l, &d, on_timer, (void *)4);
        shim_timer_start(&a, 30);
        shim_timer_start(&b, 10);
        shim_timer_start(&c, 20);
        shim_timer_start(&d, 5);
        shim_timer_stop(&d);
        shim_timer_start(&a, 25); /* restart moves it */
        assert_int_equal(shim_loop_run(&l), 0);
        assert_int_equal(n_order, 3);
        assert_int_equal(order[0], 2);
        assert_int_equal(order[1], 3);
        assert_int_equal(order[2], 1);
        assert_false(a.active || b.active || c.active || d.active);
        shim_loop_close(&l);
}

static int fired;
static struct shim_watch wa, wb;

static void on_readable(struct shim_watch *w, uint32_t events)
{
        (void)events;
        fired++;
        /* each stops both: the other one must not run from the same epoll_wait batch */
        shim_watch_stop(&wa);
        shim_watch_stop(&wb);
        shim_loop_stop(w->loop);
}

static void test_watch_stopped_in_batch(void **state)
{
        struct shim_loop l;
        int p1[2], p2[2];
        (void)state;
        assert_int_equal(shim_loop_init(&l), 0);
        assert_int_equal(pipe(p1), 0);
        assert_int_equal(pipe(p2), 0);
        assert_int_equal(write(p1[1], "x", 1), 1);
        assert_int_equal(write(p2[1], "y", 1), 1);
        fired = 0;
        shim_watch_init(&l, &wa, p1[0], on_readable, NULL);
        shim_watch_init(&l, &wb, p2[0], on_readable, NULL);
        assert_int_equal(shim_watch_set(&wa, EPOLLIN), 0);
        assert_int_equal(shim_watch_set(&wb, EPOLLIN), 0);
        assert_int_equal(shim_loop_run(&l), 0);
        assert_int_equal(fired, 1);
        close(p1[0]), close(p1[1]), close(p2[0]), close(p2[1]);
        shim_loop_close(&l);
}

/* ---------------- server on a unix socket ---------------- */

struct fx {
        char dir[64];
        struct shim_loop loop;
        struct shim_rpc *rpc;
        int client;
        struct shim_watch cw;
        struct shim_timer late, guard;
        struct shim_call *held;
        bool timed_out;
};

static void h_connect(struct shim_call *call, const ProtobufCMessage *msg, void *data)
{
        const Containerd__Task__V2__ConnectRequest *req = (const void *)msg;
        Containerd__Task__V2__ConnectResponse resp = CONTAINERD__TASK__V2__CONNECT_RESPONSE__INIT;
        struct fx *f = data;

        if (strcmp(req->id, "late") == 0) {
                f->held = shim_call_ref(call);
                shim_timer_start(&f->late, 0);
                return;
        }
        if (strcmp(req->id, "drop") == 0)
                return; /* unref without an answer: the server fails it */
        resp.shim_pid = 42;
        resp.version = (char *)"v-test";
        shim_call_reply(call, &resp.base);
}

static void on_late(struct shim_timer *t)
{
        struct fx *f = t->data;

        shim_call_fail_status(f->held, GRPC_NOT_FOUND, "late answer");
        shim_call_unref(f->held);
        f->held = NULL;
}

static const struct shim_method methods[] = {
    {"Connect", &containerd__task__v2__connect_request__descriptor, h_connect},
};

static void on_client_readable(struct shim_watch *w, uint32_t events)
{
        (void)events;
        shim_loop_stop(w->loop);
}

static void on_guard(struct shim_timer *t)
{
        struct fx *f = t->data;

        f->timed_out = true;
        shim_loop_stop(t->loop);
}

static int fx_setup(void **state)
{
        struct fx *f = calloc(1, sizeof(*f));
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int lfd;

        strcpy(f->dir, "/tmp/test-shim-rpc-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/s", f->dir);
        lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        assert_true(lfd >= 0);
        assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(listen(lfd, 8), 0);
        assert_int_equal(shim_loop_init(&f->loop), 0);
        f->rpc = shim_rpc_new(&f->loop, lfd, "containerd.task.v2.Task", methods, ELEMENTSOF(methods), f);
        assert_non_null(f->rpc);
        f->client = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_int_equal(connect(f->client, (struct sockaddr *)&sa, sizeof(sa)), 0);
        shim_watch_init(&f->loop, &f->cw, f->client, on_client_readable, f);
        assert_int_equal(shim_watch_set(&f->cw, EPOLLIN), 0);
        shim_timer_init(&f->loop, &f->late, on_late, f);
        shim_timer_init(&f->loop, &f->guard, on_guard, f);
        *state = f;
        return 0;
}

static int fx_teardown(void **state)
{
        struct fx *f = *state;
        char path[80];

        shim_watch_stop(&f->cw);
        close(f->client);
        shim_rpc_free(f->rpc);
        shim_timer_stop(&f->late);
        shim_timer_stop(&f->guard);
        shim_loop_close(&f->loop);
        snprintf(path, sizeof(path), "%s/s", f->dir);
        unlink(path);
        rmdir(f->dir);
        free(f);
        return 0;
}

static void send_request(struct fx *f, uint32_t stream_id, const char *service, const char *method, const char *id)
{
        Containerd__Task__V2__ConnectRequest cr = CONTAINERD__TASK__V2__CONNECT_REQUEST__INIT;
        Ttrpc__Request req = TTRPC__REQUEST__INIT;
        uint8_t payload[256], frame[512];
        size_t plen, rlen;

        cr.id = (char *)id;
        plen = protobuf_c_message_pack(&cr.base, payload);
        req.service = (char *)service;
        req.method = (char *)method;
        req.payload.data = payload;
        req.payload.len = plen;
        rlen = protobuf_c_message_get_packed_size(&req.base);
        assert_true(rlen + 10 <= sizeof(frame));
        shim_frame_header_encode((uint32_t)rlen, stream_id, SHIM_RPC_REQUEST, frame);
        protobuf_c_message_pack(&req.base, frame + 10);
        assert_int_equal(write(f->client, frame, rlen + 10), (ssize_t)(rlen + 10));
}

/* Runs the loop until the reply is readable, then reads one Response frame. */
static Ttrpc__Response *roundtrip(struct fx *f, uint32_t stream_id, const char *service, const char *method,
                                  const char *id)
{
        uint8_t hdr[10], body[4096];
        uint32_t len, sid;

        send_request(f, stream_id, service, method, id);
        shim_timer_start(&f->guard, 5000);
        assert_int_equal(shim_loop_run(&f->loop), 0);
        shim_timer_stop(&f->guard);
        assert_false(f->timed_out);
        assert_int_equal(recv(f->client, hdr, 10, MSG_WAITALL), 10);
        len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
        sid = (uint32_t)hdr[4] << 24 | (uint32_t)hdr[5] << 16 | (uint32_t)hdr[6] << 8 | hdr[7];
        assert_int_equal(sid, stream_id);
        assert_int_equal(hdr[8], SHIM_RPC_RESPONSE);
        assert_true(len <= sizeof(body));
        if (len > 0)
                assert_int_equal(recv(f->client, body, len, MSG_WAITALL), (ssize_t)len);
        return ttrpc__response__unpack(NULL, len, body);
}

static void assert_status(Ttrpc__Response *r, int code, const char *msg)
{
        assert_non_null(r);
        assert_non_null(r->status);
        assert_int_equal(r->status->code, code);
        assert_string_equal(r->status->message, msg);
        ttrpc__response__free_unpacked(r, NULL);
}

static void test_server(void **state)
{
        struct fx *f = *state;
        Containerd__Task__V2__ConnectResponse *cr;
        Ttrpc__Response *r;

        r = roundtrip(f, 1, "containerd.task.v2.Task", "Connect", "c1");
        assert_non_null(r);
        assert_null(r->status);
        cr = containerd__task__v2__connect_response__unpack(NULL, r->payload.len, r->payload.data);
        assert_non_null(cr);
        assert_int_equal(cr->shim_pid, 42);
        assert_string_equal(cr->version, "v-test");
        containerd__task__v2__connect_response__free_unpacked(cr, NULL);
        ttrpc__response__free_unpacked(r, NULL);

        assert_status(roundtrip(f, 3, "containerd.task.v2.Task", "Connect", "late"), GRPC_NOT_FOUND, "late answer");
        assert_status(roundtrip(f, 5, "containerd.task.v2.Task", "Connect", "drop"), GRPC_INTERNAL,
                      "ttrpc: call ended without a reply");
        assert_status(roundtrip(f, 7, "other.Service", "Connect", "x"), GRPC_UNIMPLEMENTED, "service other.Service");
        assert_status(roundtrip(f, 9, "containerd.task.v2.Task", "Nope", "x"), GRPC_UNIMPLEMENTED, "method Nope");
        assert_status(roundtrip(f, 10, "containerd.task.v2.Task", "Connect", "x"), GRPC_INVALID_ARGUMENT,
                      "StreamID must be odd for client initiated streams");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_frame_split),
            cmocka_unit_test(test_frame_oversize),
            cmocka_unit_test(test_timers),
            cmocka_unit_test(test_watch_stopped_in_batch),
            cmocka_unit_test_setup_teardown(test_server, fx_setup, fx_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

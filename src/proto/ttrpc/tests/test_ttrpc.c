/* ttrpc: framing, and server + async client on one loop over a temp unix socket, plus the blocking client
 * against a server on a second thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "github.com/containerd/containerd/runtime/v2/task/shim.pb-c.h"
#include "ttrpc.pb-c.h"
#include "proto/ttrpc/ttrpc-internal.h"
#include "proto/ttrpc/ttrpc.h"
#include "util/alloc.h"
#include "util/cleanup.h"

#define TASK "containerd.task.v2.Task"

/* --- framing --- */

static void test_ttrpc_header_roundtrip(void **state _unused_)
{
        /* The Empty reply seen on the wire: 00000000 00000023 02 00. */
        const uint8_t empty_reply[10] = {0, 0, 0, 0, 0, 0, 0, 0x23, 2, 0};
        struct ttrpc_header h = {0}, h2;
        uint8_t out[10];

        ttrpc_header_decode(empty_reply, &h);
        assert_int_equal(h.length, 0);
        assert_int_equal(h.stream_id, 35);
        assert_int_equal(h.type, 2);
        assert_int_equal(h.flags, 0);

        h = (struct ttrpc_header){.length = 0x01020304, .stream_id = 0xfffffffd, .type = 1, .flags = 0};
        ttrpc_header_encode(&h, out);
        const uint8_t want[10] = {1, 2, 3, 4, 0xff, 0xff, 0xff, 0xfd, 1, 0};
        assert_memory_equal(out, want, 10);
        ttrpc_header_decode(out, &h2);
        assert_int_equal(h2.length, h.length);
        assert_int_equal(h2.stream_id, h.stream_id);
        assert_int_equal(h2.type, 1);
}

struct frames {
        int n;
        uint32_t ids[8];
        size_t lens[8];
        bool oversize[8];
        uint8_t first[8];
};

static bool collect(void *ud, const struct ttrpc_header *h, const uint8_t *payload, size_t len, bool oversize)
{
        struct frames *f = ud;

        assert_true(f->n < 8);
        f->ids[f->n] = h->stream_id;
        f->lens[f->n] = len;
        f->oversize[f->n] = oversize;
        f->first[f->n] = len ? payload[0] : 0;
        f->n++;
        return true;
}

static void test_ttrpc_reader_split_and_oversize(void **state _unused_)
{
        struct ttrpc_reader r;
        struct frames f = {0};
        size_t big = TTRPC_MAX_MESSAGE + 5, n = 0;
        uint8_t *wire = xcalloc(1, 3 * TTRPC_HEADER_LEN + 3 + big);
        struct ttrpc_header h;

        /* frame 1: 3 bytes on stream 1; frame 2: oversize on stream 3; frame 3: empty on stream 5 */
        h = (struct ttrpc_header){.length = 3, .stream_id = 1, .type = 1};
        ttrpc_header_encode(&h, wire + n);
        n += TTRPC_HEADER_LEN;
        memcpy(wire + n, "abc", 3);
        n += 3;
        h = (struct ttrpc_header){.length = (uint32_t)big, .stream_id = 3, .type = 1};
        ttrpc_header_encode(&h, wire + n);
        n += TTRPC_HEADER_LEN + big;
        h = (struct ttrpc_header){.length = 0, .stream_id = 5, .type = 1};
        ttrpc_header_encode(&h, wire + n);
        n += TTRPC_HEADER_LEN;

        /* Byte by byte for the small parts, big chunks through the discarded payload. */
        ttrpc_reader_init(&r);
        for (size_t off = 0; off < n;) {
                size_t step = (off > 20 && off < n - 20) ? 65536 : 1;
                if (step > n - off)
                        step = n - off;
                assert_true(ttrpc_reader_feed(&r, wire + off, step, collect, &f));
                off += step;
        }
        assert_int_equal(f.n, 3);
        assert_int_equal(f.ids[0], 1);
        assert_int_equal(f.lens[0], 3);
        assert_int_equal(f.first[0], 'a');
        assert_false(f.oversize[0]);
        assert_int_equal(f.ids[1], 3);
        assert_true(f.oversize[1]);
        assert_int_equal(f.lens[1], 0);
        assert_int_equal(f.ids[2], 5);
        assert_int_equal(f.lens[2], 0);
        /* The discarded payload was never buffered. */
        assert_true(r.cap <= TTRPC_KEEP_BUFFER);
        ttrpc_reader_done(&r);
        free(wire);
}

static void test_ttrpc_address_path(void **state _unused_)
{
        assert_string_equal(ttrpc_address_path("unix:///run/x.sock"), "/run/x.sock");
        assert_string_equal(ttrpc_address_path("/run/x.sock"), "/run/x.sock");
        assert_null(ttrpc_address_path("unix://relative"));
        assert_null(ttrpc_address_path("@abstract"));
        assert_null(ttrpc_address_path(NULL));
}

/* --- server + async client on one loop --- */

struct fixture {
        char dir[64];
        char *sock;
        uv_loop_t loop;
        uv_timer_t watchdog;
        bool expired;
        struct ttrpc_server *srv;
        struct ttrpc_client *cli;
        int connect_status;
        bool connected;
        int closed_cb_calls;
        struct ttrpc_call *held;
        struct ttrpc_call *wait_call;
        uv_timer_t wait_timer;
        int order;
        bool server_done;
        bool idle;
        struct ttrpc_call **parked; /* Stats calls, answered when the test says so */
        size_t n_parked;
};

struct result {
        struct fixture *f;
        bool done;
        int r;
        ProtobufCMessage *msg;
        char *errmsg;
        int order;
};

static void result_clear(struct result *res)
{
        if (res->msg)
                protobuf_c_message_free_unpacked(res->msg, NULL);
        free(res->errmsg);
        struct fixture *f = res->f;
        memset(res, 0, sizeof(*res));
        res->f = f;
}

static void on_reply(int r, ProtobufCMessage *resp, const struct error *e, void *userdata)
{
        struct result *res = userdata;

        assert_false(res->done);
        res->done = true;
        res->r = r;
        res->msg = resp;
        res->errmsg = e ? error_message(e) : NULL;
        res->order = ++res->f->order;
        if (r < 0)
                assert_non_null(e);
}

static void on_watchdog(uv_timer_t *t)
{
        struct fixture *f = t->data;

        f->expired = true;
}

static void run_until(struct fixture *f, const bool *flag)
{
        f->expired = false;
        uv_timer_start(&f->watchdog, on_watchdog, 10000, 0);
        while (!*flag && !f->expired)
                uv_run(&f->loop, UV_RUN_ONCE);
        uv_timer_stop(&f->watchdog);
        assert_false(f->expired);
}

static void h_state(struct ttrpc_call *call, const ProtobufCMessage *req, void *userdata _unused_)
{
        const Containerd__Task__V2__StateRequest *in = (const Containerd__Task__V2__StateRequest *)req;
        Containerd__Task__V2__StateResponse out = CONTAINERD__TASK__V2__STATE_RESPONSE__INIT;
        const char *ns = ttrpc_call_metadata(call, "containerd-namespace-ttrpc");

        out.id = in->id;
        out.exec_id = in->exec_id;
        out.bundle = (char *)(ns ? ns : "/bundle");
        out.pid = 42;
        ttrpc_call_reply(call, &out.base);
}

static void h_kill(struct ttrpc_call *call, const ProtobufCMessage *req _unused_, void *userdata _unused_)
{
        ttrpc_call_reply(call, NULL);
}

static void h_delete(struct ttrpc_call *call, const ProtobufCMessage *req _unused_, void *userdata _unused_)
{
        _cleanup_error_ struct error *e = NULL;
        int r = error_set(&e, ENOENT, "container \"%s\"", "x");

        ttrpc_call_fail(call, r, e);
}

static void on_wait_timer(uv_timer_t *t)
{
        struct fixture *f = t->data;
        Containerd__Task__V2__WaitResponse out = CONTAINERD__TASK__V2__WAIT_RESPONSE__INIT;

        out.exit_status = 7;
        ttrpc_call_reply(f->wait_call, &out.base);
        ttrpc_call_unref(TAKE_PTR(f->wait_call));
}

static void h_wait(struct ttrpc_call *call, const ProtobufCMessage *req _unused_, void *userdata)
{
        struct fixture *f = userdata;

        assert_null(f->wait_call);
        f->wait_call = ttrpc_call_ref(call);
        uv_timer_start(&f->wait_timer, on_wait_timer, 20, 0);
}

static void h_pids(struct ttrpc_call *call, const ProtobufCMessage *req _unused_, void *userdata)
{
        struct fixture *f = userdata;

        assert_null(f->held);
        f->held = ttrpc_call_ref(call); /* never answered until the test says so */
}

static void h_stats(struct ttrpc_call *call, const ProtobufCMessage *req _unused_, void *userdata)
{
        struct fixture *f = userdata;

        f->parked = xreallocarray(f->parked, f->n_parked + 1, sizeof(*f->parked));
        f->parked[f->n_parked++] = ttrpc_call_ref(call);
}

static void release_parked(struct fixture *f, bool reply)
{
        for (size_t i = 0; i < f->n_parked; i++) {
                if (reply)
                        ttrpc_call_reply(f->parked[i], NULL);
                ttrpc_call_unref(f->parked[i]);
        }
        free(f->parked);
        f->parked = NULL;
        f->n_parked = 0;
}

static void add_methods(struct ttrpc_server *srv, void *ud)
{
        const struct ttrpc_method m[] = {
            {TASK, "State", &containerd__task__v2__state_request__descriptor, h_state, ud},
            {TASK, "Kill", &containerd__task__v2__kill_request__descriptor, h_kill, ud},
            {TASK, "Delete", &containerd__task__v2__delete_request__descriptor, h_delete, ud},
            {TASK, "Wait", &containerd__task__v2__wait_request__descriptor, h_wait, ud},
            {TASK, "Pids", &containerd__task__v2__pids_request__descriptor, h_pids, ud},
            {TASK, "Stats", &containerd__task__v2__stats_request__descriptor, h_stats, ud},
        };
        for (size_t i = 0; i < ELEMENTSOF(m); i++)
                assert_int_equal(ttrpc_server_add_method(srv, &m[i]), 0);
        assert_int_equal(ttrpc_server_add_method(srv, &m[0]), -EEXIST);
}

static void on_connected(struct ttrpc_client *c _unused_, int status, void *data)
{
        struct fixture *f = data;

        f->connect_status = status;
        f->connected = true;
}

static void on_client_closed(struct ttrpc_client *c _unused_, void *data)
{
        struct fixture *f = data;

        f->closed_cb_calls++;
}

static int setup(void **state)
{
        struct fixture *f = xcalloc(1, sizeof(*f));
        _cleanup_error_ struct error *e = NULL;
        struct stat st;

        strcpy(f->dir, "/tmp/krill-ttrpc-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        f->sock = xasprintf("%s/t.sock", f->dir);
        assert_int_equal(uv_loop_init(&f->loop), 0);
        uv_timer_init(&f->loop, &f->watchdog);
        f->watchdog.data = f;
        uv_timer_init(&f->loop, &f->wait_timer);
        f->wait_timer.data = f;
        f->srv = ttrpc_server_new(&f->loop);
        add_methods(f->srv, f);
        assert_int_equal(ttrpc_server_listen_unix(f->srv, f->sock, true, &e), 0);
        assert_int_equal(stat(f->sock, &st), 0);
        assert_true(S_ISSOCK(st.st_mode));
        assert_int_equal(st.st_mode & 0777, 0600);

        assert_int_equal(ttrpc_client_connect(&f->loop, f->sock, on_connected, f, &f->cli, &e), 0);
        ttrpc_client_set_close_cb(f->cli, on_client_closed, f);
        run_until(f, &f->connected);
        assert_int_equal(f->connect_status, 0);
        assert_true(ttrpc_client_connected(f->cli));
        *state = f;
        return 0;
}

static void on_server_done(void *data)
{
        struct fixture *f = data;

        f->server_done = true;
}

static int teardown(void **state)
{
        struct fixture *f = *state;

        ttrpc_client_free(f->cli);
        ttrpc_server_close(f->srv, on_server_done, f);
        run_until(f, &f->server_done);
        if (f->held)
                ttrpc_call_unref(TAKE_PTR(f->held)); /* answers into the void */
        if (f->wait_call)
                ttrpc_call_unref(TAKE_PTR(f->wait_call));
        release_parked(f, false);
        ttrpc_server_free(f->srv);
        uv_close((uv_handle_t *)&f->watchdog, NULL);
        uv_close((uv_handle_t *)&f->wait_timer, NULL);
        uv_run(&f->loop, UV_RUN_DEFAULT);
        assert_int_equal(uv_loop_close(&f->loop), 0);
        assert_int_equal(access(f->sock, F_OK), -1); /* the server removed its socket */
        assert_int_equal(rmdir(f->dir), 0);
        free(f->sock);
        free(f);
        return 0;
}

static int call_state(struct fixture *f, const char *id, const char *const *md, uint32_t timeout_ms, struct result *res)
{
        Containerd__Task__V2__StateRequest req = CONTAINERD__TASK__V2__STATE_REQUEST__INIT;

        req.id = (char *)id;
        res->f = f;
        return ttrpc_client_call(f->cli, TASK, "State", &req.base, &containerd__task__v2__state_response__descriptor,
                                 md, timeout_ms, on_reply, res);
}

static void test_ttrpc_unary_roundtrip(void **state)
{
        struct fixture *f = *state;
        struct result res = {0};
        const char *md[] = {"containerd-namespace-ttrpc", "protons", NULL};

        assert_int_equal(call_state(f, "t3", md, 2000, &res), 0);
        run_until(f, &res.done);
        assert_int_equal(res.r, 0);
        assert_non_null(res.msg);
        const Containerd__Task__V2__StateResponse *out = (const Containerd__Task__V2__StateResponse *)res.msg;
        assert_string_equal(out->id, "t3");
        assert_string_equal(out->bundle, "protons"); /* metadata reached the handler */
        assert_int_equal(out->pid, 42);
        result_clear(&res);

        /* Without metadata, and a second call on the same connection. */
        assert_int_equal(call_state(f, "t4", NULL, 0, &res), 0);
        run_until(f, &res.done);
        assert_int_equal(res.r, 0);
        assert_string_equal(((Containerd__Task__V2__StateResponse *)res.msg)->bundle, "/bundle");
        result_clear(&res);
}

static void test_ttrpc_empty_reply_and_errors(void **state)
{
        struct fixture *f = *state;
        Containerd__Task__V2__KillRequest kill = CONTAINERD__TASK__V2__KILL_REQUEST__INIT;
        Containerd__Task__V2__DeleteRequest del = CONTAINERD__TASK__V2__DELETE_REQUEST__INIT;
        struct result a = {.f = f}, b = {.f = f}, c = {.f = f}, d = {.f = f};

        kill.id = (char *)"t3";
        kill.signal = 9;
        assert_int_equal(ttrpc_client_call(f->cli, TASK, "Kill", &kill.base, NULL, NULL, 0, on_reply, &a), 0);
        assert_int_equal(ttrpc_client_call(f->cli, "nope.Svc", "Kill", &kill.base, NULL, NULL, 0, on_reply, &b), 0);
        assert_int_equal(ttrpc_client_call(f->cli, TASK, "NoSuchMethod", NULL, NULL, NULL, 0, on_reply, &c), 0);
        del.id = (char *)"x";
        assert_int_equal(ttrpc_client_call(f->cli, TASK, "Delete", &del.base,
                                           &containerd__task__v2__delete_response__descriptor, NULL, 0, on_reply, &d),
                         0);
        run_until(f, &d.done);
        assert_true(a.done && b.done && c.done);
        assert_int_equal(a.r, 0);
        assert_null(a.msg);
        assert_int_equal(b.r, -ENOSYS); /* Unimplemented */
        assert_string_equal(b.errmsg, "service nope.Svc: not implemented"); /* errdefs.FromGRPC rendering */
        assert_int_equal(c.r, -ENOSYS);
        assert_string_equal(c.errmsg, "method NoSuchMethod: not implemented");
        assert_int_equal(d.r, -ENOENT);
        assert_string_equal(d.errmsg, "container \"x\": not found");
        result_clear(&a);
        result_clear(&b);
        result_clear(&c);
        result_clear(&d);
}

/* Raw frames: the Empty reply is a zero-length body, an even stream id is InvalidArgument. */
static void raw_roundtrip(struct fixture *f, int fd, uint32_t id, const ProtobufCMessage *req, const char *method,
                          struct ttrpc_header *ret_h, uint8_t **ret_body)
{
        Ttrpc__Request r = TTRPC__REQUEST__INIT;
        size_t plen = protobuf_c_message_get_packed_size(req);
        _cleanup_free_ uint8_t *payload = xmalloc(plen + 1);
        struct ttrpc_wbuf *w;
        uint8_t hdr[10];
        size_t got = 0;

        protobuf_c_message_pack(req, payload);
        r.service = (char *)TASK;
        r.method = (char *)method;
        r.payload.data = payload;
        r.payload.len = plen;
        w = ttrpc_wbuf_new(id, 1, &r.base);
        assert_int_equal(send(fd, w->buf.base, w->buf.len, MSG_NOSIGNAL), (ssize_t)w->buf.len);
        free(w);
        /* Let the loop serve until the reply header is readable. */
        while (got < sizeof(hdr)) {
                ssize_t n = recv(fd, hdr + got, sizeof(hdr) - got, MSG_DONTWAIT);
                if (n > 0)
                        got += (size_t)n;
                else
                        uv_run(&f->loop, UV_RUN_NOWAIT);
                assert_true(n != 0);
        }
        ttrpc_header_decode(hdr, ret_h);
        *ret_body = xmalloc(ret_h->length + 1);
        got = 0;
        while (got < ret_h->length) {
                ssize_t n = recv(fd, *ret_body + got, ret_h->length - got, 0);
                assert_true(n > 0);
                got += (size_t)n;
        }
}

static void test_ttrpc_raw_wire(void **state)
{
        struct fixture *f = *state;
        Containerd__Task__V2__KillRequest kill = CONTAINERD__TASK__V2__KILL_REQUEST__INIT;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct ttrpc_header h;
        _cleanup_free_ uint8_t *body = NULL;
        Ttrpc__Response *resp;

        strcpy(sa.sun_path, f->sock);
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        kill.id = (char *)"t3";
        raw_roundtrip(f, fd, 35, &kill.base, "Kill", &h, &body);
        assert_int_equal(h.stream_id, 35);
        assert_int_equal(h.type, 2);
        assert_int_equal(h.flags, 0);
        assert_int_equal(h.length, 0);
        free(TAKE_PTR(body));

        raw_roundtrip(f, fd, 4, &kill.base, "Kill", &h, &body);
        assert_int_equal(h.stream_id, 4);
        resp = ttrpc__response__unpack(NULL, h.length, body);
        assert_non_null(resp);
        assert_non_null(resp->status);
        assert_int_equal(resp->status->code, GRPC_INVALID_ARGUMENT);
        assert_string_equal(resp->status->message, "StreamID must be odd for client initiated streams");
        ttrpc__response__free_unpacked(resp, NULL);
}

static void test_ttrpc_oversize_keeps_connection(void **state)
{
        struct fixture *f = *state;
        struct result res = {0};
        char *big = xmalloc(TTRPC_MAX_MESSAGE + 2);

        memset(big, 'a', TTRPC_MAX_MESSAGE + 1);
        big[TTRPC_MAX_MESSAGE + 1] = 0;
        assert_int_equal(call_state(f, big, NULL, 0, &res), 0);
        free(big);
        run_until(f, &res.done);
        assert_int_equal(res.r, -ENOSPC); /* ResourceExhausted */
        assert_non_null(strstr(res.errmsg, "exceed maximum message size of 4194304"));
        result_clear(&res);

        assert_true(ttrpc_client_connected(f->cli));
        assert_int_equal(call_state(f, "after", NULL, 0, &res), 0);
        run_until(f, &res.done);
        assert_int_equal(res.r, 0);
        assert_string_equal(((Containerd__Task__V2__StateResponse *)res.msg)->id, "after");
        result_clear(&res);
}

static void test_ttrpc_out_of_order(void **state)
{
        struct fixture *f = *state;
        Containerd__Task__V2__WaitRequest wr = CONTAINERD__TASK__V2__WAIT_REQUEST__INIT;
        struct result w = {.f = f}, s = {0};

        wr.id = (char *)"t3";
        assert_int_equal(ttrpc_client_call(f->cli, TASK, "Wait", &wr.base,
                                           &containerd__task__v2__wait_response__descriptor, NULL, 0, on_reply, &w),
                         0);
        assert_int_equal(call_state(f, "t3", NULL, 0, &s), 0);
        run_until(f, &w.done);
        assert_true(s.done);
        assert_int_equal(s.r, 0);
        assert_int_equal(w.r, 0);
        /* Wait was sent first but answered last. */
        assert_true(s.order < w.order);
        assert_int_equal(((Containerd__Task__V2__WaitResponse *)w.msg)->exit_status, 7);
        result_clear(&w);
        result_clear(&s);
}

static void test_ttrpc_client_timeout(void **state)
{
        struct fixture *f = *state;
        Containerd__Task__V2__PidsRequest pr = CONTAINERD__TASK__V2__PIDS_REQUEST__INIT;
        struct result p = {.f = f}, s = {0};

        pr.id = (char *)"t3";
        assert_int_equal(ttrpc_client_call(f->cli, TASK, "Pids", &pr.base,
                                           &containerd__task__v2__pids_response__descriptor, NULL, 30, on_reply, &p),
                         0);
        run_until(f, &p.done);
        assert_int_equal(p.r, -ETIMEDOUT);
        assert_non_null(f->held);
        assert_int_equal(ttrpc_call_timeout_nano(f->held), 30 * 1000000LL);
        /* The late reply is dropped by the client; the connection stays usable. */
        ttrpc_call_reply(f->held, NULL);
        ttrpc_call_unref(TAKE_PTR(f->held));
        assert_int_equal(call_state(f, "t3", NULL, 0, &s), 0);
        run_until(f, &s.done);
        assert_int_equal(s.r, 0);
        result_clear(&p);
        result_clear(&s);
}

static void test_ttrpc_connection_drop(void **state)
{
        struct fixture *f = *state;
        Containerd__Task__V2__PidsRequest pr = CONTAINERD__TASK__V2__PIDS_REQUEST__INIT;
        struct result p = {.f = f}, late = {0};

        pr.id = (char *)"t3";
        assert_int_equal(ttrpc_client_call(f->cli, TASK, "Pids", &pr.base,
                                           &containerd__task__v2__pids_response__descriptor, NULL, 0, on_reply, &p),
                         0);
        while (!f->held)
                uv_run(&f->loop, UV_RUN_ONCE);
        ttrpc_server_close(f->srv, on_server_done, f);
        run_until(f, &p.done);
        assert_int_equal(p.r, -ECONNRESET);
        assert_int_equal(f->closed_cb_calls, 1);
        assert_false(ttrpc_client_connected(f->cli));
        assert_int_equal(call_state(f, "t3", NULL, 0, &late), -ENOTCONN);
        run_until(f, &f->server_done);
        /* Answering a call whose connection is gone is harmless. */
        ttrpc_call_reply(f->held, NULL);
        ttrpc_call_unref(TAKE_PTR(f->held));
        result_clear(&p);
}

static void test_ttrpc_connect_refused(void **state)
{
        struct fixture *f = *state;
        _cleanup_free_ char *missing = xasprintf("%s/missing.sock", f->dir);
        _cleanup_error_ struct error *e = NULL;
        struct ttrpc_client *c = NULL;
        struct fixture g = {0};
        struct result res = {.f = f};
        Containerd__Task__V2__StateRequest req = CONTAINERD__TASK__V2__STATE_REQUEST__INIT;

        assert_int_equal(ttrpc_client_connect(&f->loop, "relative.sock", on_connected, &g, &c, &e), -EINVAL);
        error_free(&e);
        assert_int_equal(ttrpc_client_connect(&f->loop, missing, on_connected, &g, &c, &e), 0);
        /* A call made while connecting is queued, then failed with the dial error. */
        req.id = (char *)"q";
        assert_int_equal(ttrpc_client_call(c, TASK, "State", &req.base, NULL, NULL, 0, on_reply, &res), 0);
        run_until(f, &g.connected);
        assert_int_equal(g.connect_status, -ENOENT);
        assert_true(res.done);
        assert_int_equal(res.r, -ENOENT);
        result_clear(&res);
        ttrpc_client_free(c);
}

struct counter {
        int ok, exhausted, other;
        char *first_exhausted_msg;
};

static void on_count(int r, ProtobufCMessage *resp, const struct error *e, void *userdata)
{
        struct counter *c = userdata;

        assert_null(resp);
        if (r == 0)
                c->ok++;
        else if (r == -ENOSPC) {
                c->exhausted++;
                if (!c->first_exhausted_msg)
                        c->first_exhausted_msg = error_message(e);
        } else
                c->other++;
}

/* One connection may hold at most 1024 unanswered calls; more get ResourceExhausted, and the connection and
 * the calls already in flight are unaffected. */
static void test_ttrpc_concurrent_call_limit(void **state)
{
        struct fixture *f = *state;
        Containerd__Task__V2__StatsRequest req = CONTAINERD__TASK__V2__STATS_REQUEST__INIT;
        struct counter c = {0};
        bool all_parked = false, all_done = false;

        req.id = (char *)"t";
        for (int i = 0; i < 1030; i++)
                assert_int_equal(ttrpc_client_call(f->cli, TASK, "Stats", &req.base, NULL, NULL, 0, on_count, &c), 0);
        while (!all_parked) {
                uv_run(&f->loop, UV_RUN_ONCE);
                all_parked = f->n_parked == 1024 && c.exhausted == 6;
        }
        assert_int_equal(c.ok, 0);
        assert_string_equal(c.first_exhausted_msg, "too many concurrent calls: unknown");
        release_parked(f, true);
        while (!all_done) {
                uv_run(&f->loop, UV_RUN_ONCE);
                all_done = c.ok == 1024;
        }
        assert_int_equal(c.other, 0);
        free(c.first_exhausted_msg);
}

static void on_idle(void *data)
{
        struct fixture *f = data;

        assert_false(f->idle);
        f->idle = true;
}

static void test_ttrpc_idle_cb(void **state)
{
        struct fixture *f = *state;
        ttrpc_server_set_idle_cb(f->srv, on_idle, f);
        ttrpc_client_free(TAKE_PTR(f->cli));
        run_until(f, &f->idle);
}

static void close_walk(uv_handle_t *h, void *arg _unused_)
{
        if (!uv_is_closing(h))
                uv_close(h, NULL);
}

/* The shim closes every handle with uv_walk() after ttrpc_server_close() on its way out; the connection being
 * flushed (uv_shutdown pending) then gets closed by someone else. Nothing may crash or leak. */
static void test_ttrpc_foreign_close_after_server_close(void **state _unused_)
{
        char dir[] = "/tmp/krill-ttrpc-XXXXXX";
        _cleanup_free_ char *sock = NULL;
        _cleanup_error_ struct error *e = NULL;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        _cleanup_close_ int fd = -1;
        Containerd__Task__V2__KillRequest kill = CONTAINERD__TASK__V2__KILL_REQUEST__INIT;
        struct fixture f = {0};
        struct ttrpc_header h;
        _cleanup_free_ uint8_t *body = NULL;

        assert_non_null(mkdtemp(dir));
        sock = xasprintf("%s/s.sock", dir);
        assert_int_equal(uv_loop_init(&f.loop), 0);
        f.srv = ttrpc_server_new(&f.loop);
        add_methods(f.srv, &f);
        assert_int_equal(ttrpc_server_listen_unix(f.srv, sock, true, &e), 0);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        strcpy(sa.sun_path, sock);
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        kill.id = (char *)"t";
        raw_roundtrip(&f, fd, 1, &kill.base, "Kill", &h, &body); /* the connection is being served */
        assert_int_equal(h.length, 0);

        ttrpc_server_close(f.srv, NULL, NULL);
        uv_walk(&f.loop, close_walk, NULL);
        assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
        ttrpc_server_free(f.srv);
        assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
        assert_int_equal(uv_loop_close(&f.loop), 0);
        assert_int_equal(rmdir(dir), 0);
}

/* --- blocking client against a server on another thread --- */

struct thread_server {
        char dir[64];
        char *sock;
        pthread_t th;
        sem_t ready;
        uv_loop_t loop;
        uv_async_t stop;
        struct ttrpc_server *srv;
        struct fixture fx; /* only .held is used: Pids calls parked by h_pids */
};

static void ts_on_stop(uv_async_t *a)
{
        struct thread_server *t = a->data;

        ttrpc_server_free(t->srv);
        if (t->fx.held)
                ttrpc_call_unref(TAKE_PTR(t->fx.held));
        uv_close((uv_handle_t *)&t->stop, NULL);
}

static void *ts_main(void *arg)
{
        struct thread_server *t = arg;
        _cleanup_error_ struct error *e = NULL;

        assert_int_equal(uv_loop_init(&t->loop), 0);
        t->stop.data = t;
        uv_async_init(&t->loop, &t->stop, ts_on_stop);
        t->srv = ttrpc_server_new(&t->loop);
        add_methods(t->srv, &t->fx);
        assert_int_equal(ttrpc_server_listen_unix(t->srv, t->sock, true, &e), 0);
        sem_post(&t->ready);
        uv_run(&t->loop, UV_RUN_DEFAULT);
        assert_int_equal(uv_loop_close(&t->loop), 0);
        return NULL;
}

static void ts_start(struct thread_server *t)
{
        strcpy(t->dir, "/tmp/krill-ttrpc-XXXXXX");
        assert_non_null(mkdtemp(t->dir));
        t->sock = xasprintf("%s/s.sock", t->dir);
        sem_init(&t->ready, 0, 0);
        assert_int_equal(pthread_create(&t->th, NULL, ts_main, t), 0);
        sem_wait(&t->ready);
}

static void ts_stop(struct thread_server *t)
{
        uv_async_send(&t->stop);
        pthread_join(t->th, NULL);
        sem_destroy(&t->ready);
        assert_int_equal(rmdir(t->dir), 0);
        free(t->sock);
}

static void test_ttrpc_sync_client(void **state _unused_)
{
        struct thread_server t = {0};
        _cleanup_free_ char *addr = NULL;
        _cleanup_error_ struct error *e = NULL;
        Containerd__Task__V2__StateRequest req = CONTAINERD__TASK__V2__STATE_REQUEST__INIT;
        ProtobufCMessage *resp = NULL;
        const char *md[] = {"containerd-namespace-ttrpc", "syncns", NULL};

        ts_start(&t);
        addr = xasprintf("unix://%s", t.sock);
        req.id = (char *)"s1";
        assert_int_equal(ttrpc_call_sync(addr, TASK, "State", &req.base,
                                         &containerd__task__v2__state_response__descriptor, md, 2000, &resp, &e),
                         0);
        assert_string_equal(((Containerd__Task__V2__StateResponse *)resp)->id, "s1");
        assert_string_equal(((Containerd__Task__V2__StateResponse *)resp)->bundle, "syncns");
        protobuf_c_message_free_unpacked(resp, NULL);
        resp = NULL;

        assert_int_equal(ttrpc_call_sync(t.sock, TASK, "Kill", &req.base, NULL, NULL, 0, &resp, &e), 0);
        assert_null(resp);

        assert_int_equal(ttrpc_call_sync(t.sock, TASK, "Nope", &req.base, NULL, NULL, 0, &resp, &e), -ENOSYS);
        assert_string_equal(error_str(e), "method Nope: not implemented");
        error_free(&e);

        /* Pids is never answered: the deadline fires. (One parked call at a time: h_pids asserts that.) */
        assert_int_equal(ttrpc_call_sync(t.sock, TASK, "Pids", &req.base, NULL, NULL, 50, &resp, &e), -ETIMEDOUT);
        error_free(&e);

        /* A peer with another uid is refused (needs root to switch uid). */
        if (geteuid() == 0) {
                Ttrpc__Request rr = TTRPC__REQUEST__INIT;
                struct sockaddr_un sa = {.sun_family = AF_UNIX};
                struct ttrpc_wbuf *w;
                pid_t pid;
                int status;

                /* The child only makes raw syscalls: it is a fork of a multi-threaded process. */
                rr.service = (char *)TASK;
                rr.method = (char *)"Kill";
                w = ttrpc_wbuf_new(1, 1, &rr.base);
                strcpy(sa.sun_path, t.sock);
                assert_int_equal(chmod(t.dir, 0755), 0);
                assert_int_equal(chmod(t.sock, 0666), 0);
                pid = fork();
                assert_true(pid >= 0);
                if (pid == 0) {
                        char buf[16];
                        int fd;
                        if (setgid(65534) < 0 || setuid(65534) < 0)
                                _exit(3);
                        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                                _exit(4);
                        (void)send(fd, w->buf.base, w->buf.len, MSG_NOSIGNAL);
                        /* Refused: the server closes without answering (EOF or reset, never a reply). */
                        _exit(recv(fd, buf, sizeof(buf), 0) <= 0 ? 0 : 1);
                }
                free(w);
                assert_int_equal(waitpid(pid, &status, 0), pid);
                assert_true(WIFEXITED(status));
                assert_int_equal(WEXITSTATUS(status), 0);
        }

        ts_stop(&t);
        assert_int_equal(ttrpc_call_sync(addr, TASK, "State", &req.base, NULL, NULL, 0, &resp, &e), -ENOENT);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_ttrpc_header_roundtrip),
            cmocka_unit_test(test_ttrpc_reader_split_and_oversize),
            cmocka_unit_test(test_ttrpc_address_path),
            cmocka_unit_test_setup_teardown(test_ttrpc_unary_roundtrip, setup, teardown),
            cmocka_unit_test_setup_teardown(test_ttrpc_empty_reply_and_errors, setup, teardown),
            cmocka_unit_test_setup_teardown(test_ttrpc_raw_wire, setup, teardown),
            cmocka_unit_test_setup_teardown(test_ttrpc_oversize_keeps_connection, setup, teardown),
            cmocka_unit_test_setup_teardown(test_ttrpc_out_of_order, setup, teardown),
            cmocka_unit_test_setup_teardown(test_ttrpc_client_timeout, setup, teardown),
            cmocka_unit_test_setup_teardown(test_ttrpc_connection_drop, setup, teardown),
            cmocka_unit_test_setup_teardown(test_ttrpc_connect_refused, setup, teardown),
            cmocka_unit_test_setup_teardown(test_ttrpc_idle_cb, setup, teardown),
            cmocka_unit_test_setup_teardown(test_ttrpc_concurrent_call_limit, setup, teardown),
            cmocka_unit_test(test_ttrpc_foreign_close_after_server_close),
            cmocka_unit_test(test_ttrpc_sync_client),
        };

        /* libuv writes with write(2): a peer that went away must give EPIPE, not kill the test. */
        signal(SIGPIPE, SIG_IGN);
        return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The ttrpc Events/Forward service (src/services/events_ttrpc.c) end to end: a shim-style client forwards
 * the exact ForwardRequest bytes captured from containerd-shim-runc-v2, a subscriber of the exchange sees the
 * envelope unchanged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <string.h>

#include "events/exchange.h"
#include "services/events.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/log.h"

#define EVENTS_TTRPC "containerd.services.events.ttrpc.v1.Events"

/* shim-ttrpc-trace.txt: the payload of the /tasks/exec-added Forward request. */
static const uint8_t exec_added[] =
    "\nW\n\014\010\376\247\212\330\006\020\377\234\236\240\002\022\007protons\032\021"
    "/tasks/exec-added\"+\n\037containerd.events.TaskExecAdded\022\010\n\002t3\022\002e4";

struct fx {
        char dir[64];
        char *sock;
        uv_loop_t loop;
        struct events_exchange *ex;
        struct services_ctx ctx;
        struct ttrpc_server *srv;
        struct ttrpc_client *cli;
        bool connected;
        bool closed;
        int n_events;
        Containerd__Services__Events__V1__Envelope *last;
};

struct reply {
        bool done;
        int r;
        char *msg;
};

static void on_env(struct events_subscription *sub _unused_, const events_envelope *env, void *userdata)
{
        struct fx *f = userdata;
        size_t len = protobuf_c_message_get_packed_size(&env->base);
        _cleanup_free_ uint8_t *buf = xmalloc(len + 1);

        protobuf_c_message_pack(&env->base, buf);
        if (f->last)
                containerd__services__events__v1__envelope__free_unpacked(f->last, NULL);
        f->last = containerd__services__events__v1__envelope__unpack(NULL, len, buf);
        f->n_events++;
}

static void on_reply(int r, ProtobufCMessage *resp, const struct error *e, void *userdata)
{
        struct reply *rep = userdata;

        assert_null(resp);
        rep->done = true;
        rep->r = r;
        rep->msg = e ? error_message(e) : NULL;
}

static void on_connected(struct ttrpc_client *c _unused_, int status, void *data)
{
        struct fx *f = data;

        assert_int_equal(status, 0);
        f->connected = true;
}

static void on_closed(void *data)
{
        struct fx *f = data;

        f->closed = true;
}

static void run_until(struct fx *f, const bool *flag)
{
        for (int i = 0; i < 100000 && !*flag; i++)
                uv_run(&f->loop, UV_RUN_ONCE);
        assert_true(*flag);
}

static void test_events_ttrpc_forward(void **state _unused_)
{
        struct fx f = {0};
        _cleanup_error_ struct error *e = NULL;
        struct events_subscription *sub = NULL;
        struct reply ok = {0}, bad = {0};
        const char *md[] = {"containerd-namespace-ttrpc", "protons", NULL};
        Containerd__Services__Events__Ttrpc__V1__ForwardRequest *req;
        Containerd__Services__Events__Ttrpc__V1__ForwardRequest badreq =
            CONTAINERD__SERVICES__EVENTS__TTRPC__V1__FORWARD_REQUEST__INIT;
        Containerd__Services__Events__Ttrpc__V1__Envelope badenv =
            CONTAINERD__SERVICES__EVENTS__TTRPC__V1__ENVELOPE__INIT;

        strcpy(f.dir, "/tmp/krill-evttrpc-XXXXXX");
        assert_non_null(mkdtemp(f.dir));
        f.sock = xasprintf("%s/krilld.sock.ttrpc", f.dir);
        assert_int_equal(uv_loop_init(&f.loop), 0);
        f.ex = events_exchange_new(&f.loop);
        f.ctx.loop = &f.loop;
        f.ctx.events = f.ex;
        f.srv = ttrpc_server_new(&f.loop);
        assert_int_equal(services_events_ttrpc_register(f.srv, &f.ctx), 0);
        assert_int_equal(services_events_ttrpc_register(f.srv, &f.ctx), -EEXIST);
        assert_int_equal(ttrpc_server_listen_unix(f.srv, f.sock, true, &e), 0);
        assert_int_equal(events_subscribe(f.ex, NULL, 0, on_env, &f, &sub, &e), 0);
        assert_int_equal(ttrpc_client_connect(&f.loop, f.sock, on_connected, &f, &f.cli, &e), 0);
        run_until(&f, &f.connected);

        req =
            containerd__services__events__ttrpc__v1__forward_request__unpack(NULL, sizeof(exec_added) - 1, exec_added);
        assert_non_null(req);
        assert_int_equal(ttrpc_client_call(f.cli, EVENTS_TTRPC, "Forward", &req->base, NULL, md, 5000, on_reply, &ok),
                         0);
        run_until(&f, &ok.done);
        assert_int_equal(ok.r, 0);
        while (f.n_events == 0)
                uv_run(&f.loop, UV_RUN_ONCE);
        assert_int_equal(f.n_events, 1);
        assert_string_equal(f.last->namespace_, "protons");
        assert_string_equal(f.last->topic, "/tasks/exec-added");
        assert_string_equal(f.last->event->type_url, "containerd.events.TaskExecAdded");
        assert_int_equal(f.last->event->value.len, 8);
        assert_memory_equal(f.last->event->value.data, "\n\002t3\022\002e4", 8);
        assert_int_equal(f.last->timestamp->seconds, req->envelope->timestamp->seconds);
        assert_int_equal(f.last->timestamp->nanos, req->envelope->timestamp->nanos);
        containerd__services__events__ttrpc__v1__forward_request__free_unpacked(req, NULL);

        /* An envelope without a timestamp is refused with InvalidArgument and never reaches subscribers. */
        badenv.namespace_ = (char *)"protons";
        badenv.topic = (char *)"/tasks/exit";
        badreq.envelope = &badenv;
        log_set_level(LOG_LEVEL_FATAL); /* the expected "error forwarding event" line */
        assert_int_equal(
            ttrpc_client_call(f.cli, EVENTS_TTRPC, "Forward", &badreq.base, NULL, md, 5000, on_reply, &bad), 0);
        run_until(&f, &bad.done);
        log_set_level(LOG_LEVEL_INFO);
        assert_int_equal(bad.r, -EINVAL);
        assert_string_equal(bad.msg, "timestamp must be set on forwarded event: invalid argument");
        uv_run(&f.loop, UV_RUN_NOWAIT);
        assert_int_equal(f.n_events, 1);

        free(ok.msg);
        free(bad.msg);
        ttrpc_client_free(f.cli);
        ttrpc_server_close(f.srv, on_closed, &f);
        run_until(&f, &f.closed);
        ttrpc_server_free(f.srv);
        events_subscription_free(sub);
        events_exchange_free(f.ex);
        uv_run(&f.loop, UV_RUN_DEFAULT);
        assert_int_equal(uv_loop_close(&f.loop), 0);
        containerd__services__events__v1__envelope__free_unpacked(f.last, NULL);
        assert_int_equal(rmdir(f.dir), 0);
        free(f.sock);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_events_ttrpc_forward),
        };

        signal(SIGPIPE, SIG_IGN);
        return cmocka_run_group_tests(tests, NULL, NULL);
}

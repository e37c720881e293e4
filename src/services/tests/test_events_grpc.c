/* events.v1 over the real gRPC server (src/services/events_grpc.c): Subscribe stays open and gets only what its
 * filter matches, Publish keeps the caller's Any and needs a namespace, Forward keeps the envelope, a bad
 * filter is InvalidArgument, and a client that leaves releases its subscription (checked by ASan's leak
 * detection). The server runs on its own loop thread; the blocking client runs here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <string.h>

#include "events/exchange.h"
#include "google/protobuf/empty.pb-c.h"
#include "services/events.h"
#include "util/alloc.h"
#include "util/cleanup.h"

#define EVENTS "/containerd.services.events.v1.Events/"

struct srv {
        char dir[64];
        char *sock;
        pthread_t th;
        sem_t ready;
        uv_loop_t loop;
        uv_async_t stop;
        struct grpc_server *gs;
        struct services_ctx ctx;
};

static void on_shutdown_done(void *data _unused_)
{
}

static void on_stop(uv_async_t *a)
{
        struct srv *s = a->data;

        grpc_server_shutdown(s->gs, on_shutdown_done, s);
        uv_close((uv_handle_t *)&s->stop, NULL);
}

static void *srv_main(void *arg)
{
        struct srv *s = arg;
        _cleanup_error_ struct error *e = NULL;

        assert_int_equal(uv_loop_init(&s->loop), 0);
        s->stop.data = s;
        uv_async_init(&s->loop, &s->stop, on_stop);
        s->ctx.loop = &s->loop;
        s->ctx.events = events_exchange_new(&s->loop);
        s->gs = grpc_server_new(&s->loop, NULL);
        services_events_register(s->gs, &s->ctx);
        assert_int_equal(grpc_server_listen_unix(s->gs, s->sock, &e), 0);
        sem_post(&s->ready);
        uv_run(&s->loop, UV_RUN_DEFAULT);
        grpc_server_free(s->gs);
        s->ctx.events = events_exchange_free(s->ctx.events);
        uv_run(&s->loop, UV_RUN_DEFAULT);
        assert_int_equal(uv_loop_close(&s->loop), 0);
        return NULL;
}

static Containerd__Services__Events__V1__Envelope *recv_env(struct grpc_stream *st, int timeout_ms, int *ret_r)
{
        _cleanup_error_ struct error *e = NULL;
        ProtobufCMessage *m = NULL;

        *ret_r = grpc_stream_recv(st, timeout_ms, &m, &e);
        return (Containerd__Services__Events__V1__Envelope *)m;
}

static struct grpc_stream *subscribe(struct grpc_client *c, char **filters, size_t n)
{
        Containerd__Services__Events__V1__SubscribeRequest req =
            CONTAINERD__SERVICES__EVENTS__V1__SUBSCRIBE_REQUEST__INIT;
        _cleanup_error_ struct error *e = NULL;
        struct grpc_stream *st = NULL;

        req.filters = filters;
        req.n_filters = n;
        assert_int_equal(grpc_client_stream_open(c, EVENTS "Subscribe", NULL,
                                                 &containerd__services__events__v1__envelope__descriptor, &st, &e),
                         0);
        assert_int_equal(grpc_stream_send(st, &req.base, &e), 0);
        assert_int_equal(grpc_stream_close_send(st, &e), 0);
        return st;
}

static int publish(struct grpc_client *c, const char *topic, const char *type_url, struct error **err)
{
        Containerd__Services__Events__V1__PublishRequest req = CONTAINERD__SERVICES__EVENTS__V1__PUBLISH_REQUEST__INIT;
        Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
        ProtobufCMessage *resp = NULL;
        int r;

        any.type_url = (char *)type_url;
        any.value.data = (uint8_t *)"\n\002c1";
        any.value.len = 4;
        req.topic = (char *)topic;
        req.event = &any;
        r = grpc_client_unary(c, EVENTS "Publish", NULL, &req.base, &google__protobuf__empty__descriptor, &resp, err);
        if (resp)
                protobuf_c_message_free_unpacked(resp, NULL);
        return r;
}

static void forward_sync(struct grpc_client *c)
{
        Containerd__Services__Events__V1__ForwardRequest fr = CONTAINERD__SERVICES__EVENTS__V1__FORWARD_REQUEST__INIT;
        Containerd__Services__Events__V1__Envelope fe = CONTAINERD__SERVICES__EVENTS__V1__ENVELOPE__INIT;
        Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
        _cleanup_error_ struct error *e = NULL;
        ProtobufCMessage *resp = NULL;

        ts.seconds = 1;
        fe.timestamp = &ts;
        fe.namespace_ = (char *)"sync";
        fe.topic = (char *)"/tasks/exit";
        fr.envelope = &fe;
        assert_int_equal(
            grpc_client_unary(c, EVENTS "Forward", NULL, &fr.base, &google__protobuf__empty__descriptor, &resp, &e), 0);
        protobuf_c_message_free_unpacked(resp, NULL);
}

/* The server may dispatch streams of one read in any order, so a test cannot assume its Subscribe is in place
 * before a later Publish: forward marker events until the stream sees one. Returns how many were sent. */
static int sync_stream(struct grpc_client *c, struct grpc_stream *st)
{
        for (int i = 1; i <= 50; i++) {
                Containerd__Services__Events__V1__Envelope *env;
                int r;

                forward_sync(c);
                env = recv_env(st, 1000, &r);
                if (r == 1) {
                        assert_string_equal(env->namespace_, "sync");
                        protobuf_c_message_free_unpacked(&env->base, NULL);
                        return i;
                }
                assert_int_equal(r, -ETIMEDOUT);
        }
        fail_msg("subscription never became active");
        return 0;
}

static void test_events_grpc_subscribe_publish_forward(void **state _unused_)
{
        struct srv s = {0};
        _cleanup_error_ struct error *e = NULL;
        struct grpc_client *c = NULL, *c_nons = NULL;
        const struct grpc_metadata md[] = {{"containerd-namespace", "ns1"}, {NULL, NULL}};
        char *exit_only[] = {(char *)"topic==\"/tasks/exit\""};
        char *bad[] = {(char *)"topic==/tasks/exit"};
        struct grpc_stream *st, *all, *badst;
        Containerd__Services__Events__V1__Envelope *env;
        int r;

        strcpy(s.dir, "/tmp/krill-evgrpc-XXXXXX");
        assert_non_null(mkdtemp(s.dir));
        s.sock = xasprintf("%s/krilld.sock", s.dir);
        sem_init(&s.ready, 0, 0);
        assert_int_equal(pthread_create(&s.th, NULL, srv_main, &s), 0);
        sem_wait(&s.ready);

        assert_int_equal(grpc_client_connect(s.sock, 5000, &c, &e), 0);
        grpc_client_set_default_metadata(c, md);
        /* ctr events: an empty request, all events. */
        all = subscribe(c, NULL, 0);
        (void)sync_stream(c, all);
        st = subscribe(c, exit_only, 1);
        for (int n = sync_stream(c, st); n > 0; n--) {
                env = recv_env(all, 5000, &r); /* `all` saw every marker sent to sync st */
                assert_int_equal(r, 1);
                assert_string_equal(env->namespace_, "sync");
                protobuf_c_message_free_unpacked(&env->base, NULL);
        }
        assert_int_equal(publish(c, "/tasks/start", "containerd.events.TaskStart", &e), 0);
        assert_int_equal(publish(c, "/tasks/exit", "containerd.events.TaskExit", &e), 0);

        env = recv_env(st, 5000, &r);
        assert_int_equal(r, 1);
        assert_string_equal(env->topic, "/tasks/exit");
        assert_string_equal(env->namespace_, "ns1");
        assert_string_equal(env->event->type_url, "containerd.events.TaskExit");
        assert_memory_equal(env->event->value.data, "\n\002c1", 4);
        assert_true(env->timestamp && env->timestamp->seconds > 1600000000);
        protobuf_c_message_free_unpacked(&env->base, NULL);
        /* Nothing else matched, and the stream stays open. */
        env = recv_env(st, 200, &r);
        assert_int_equal(r, -ETIMEDOUT);
        assert_null(env);

        env = recv_env(all, 5000, &r);
        assert_int_equal(r, 1);
        assert_string_equal(env->topic, "/tasks/start");
        protobuf_c_message_free_unpacked(&env->base, NULL);
        env = recv_env(all, 5000, &r);
        assert_int_equal(r, 1);
        assert_string_equal(env->topic, "/tasks/exit");
        protobuf_c_message_free_unpacked(&env->base, NULL);

        /* Forward keeps namespace and timestamp as sent. */
        {
                Containerd__Services__Events__V1__ForwardRequest fr =
                    CONTAINERD__SERVICES__EVENTS__V1__FORWARD_REQUEST__INIT;
                Containerd__Services__Events__V1__Envelope fe = CONTAINERD__SERVICES__EVENTS__V1__ENVELOPE__INIT;
                Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
                Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
                ProtobufCMessage *resp = NULL;

                ts.seconds = 1700000001;
                any.type_url = (char *)"containerd.events.TaskExit";
                fe.timestamp = &ts;
                fe.namespace_ = (char *)"other";
                fe.topic = (char *)"/tasks/exit";
                fe.event = &any;
                fr.envelope = &fe;
                assert_int_equal(grpc_client_unary(c, EVENTS "Forward", NULL, &fr.base,
                                                   &google__protobuf__empty__descriptor, &resp, &e),
                                 0);
                protobuf_c_message_free_unpacked(resp, NULL);
                env = recv_env(st, 5000, &r);
                assert_int_equal(r, 1);
                assert_string_equal(env->namespace_, "other");
                assert_int_equal(env->timestamp->seconds, 1700000001);
                protobuf_c_message_free_unpacked(&env->base, NULL);
                fe.timestamp = NULL;
                assert_int_equal(grpc_client_unary(c, EVENTS "Forward", NULL, &fr.base,
                                                   &google__protobuf__empty__descriptor, &resp, &e),
                                 -EINVAL);
                error_free(&e);
        }

        /* Publish needs a namespace: FailedPrecondition, as containerd. */
        assert_int_equal(grpc_client_connect(s.sock, 5000, &c_nons, &e), 0);
        assert_int_equal(publish(c_nons, "/tasks/exit", "containerd.events.TaskExit", &e), -EBUSY);
        assert_non_null(strstr(error_str(e), "namespace is required"));
        error_free(&e);
        assert_int_equal(publish(c, "no-slash", "x", &e), -EINVAL);
        error_free(&e);

        /* A bad filter ends the stream with InvalidArgument. */
        badst = subscribe(c, bad, 1);
        env = recv_env(badst, 5000, &r);
        assert_int_equal(r, -EINVAL);
        grpc_stream_free(badst);

        /* Leaving cancels the streams; the server frees the subscriptions. */
        grpc_stream_free(st);
        grpc_stream_free(all);
        assert_int_equal(publish(c, "/tasks/delete", "containerd.events.TaskDelete", &e), 0);
        grpc_client_free(c);
        grpc_client_free(c_nons);

        uv_async_send(&s.stop);
        pthread_join(s.th, NULL);
        sem_destroy(&s.ready);
        (void)unlink(s.sock);
        assert_int_equal(rmdir(s.dir), 0);
        free(s.sock);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_events_grpc_subscribe_publish_forward),
        };

        signal(SIGPIPE, SIG_IGN);
        return cmocka_run_group_tests(tests, NULL, NULL);
}

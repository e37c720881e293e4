/* events.v1 gRPC adapter. Subscribe keeps the stream open and pushes every matching envelope; it only ends
 * when the client cancels or the server shuts down (containerd's Subscribe returns only on ctx.Done()). */
#include <stdlib.h>

#include "google/protobuf/empty.pb-c.h"
#include "services/events.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/log.h"

/* Above this many unsent bytes the subscription is paused; it resumes below the low-water mark. */
#define SUBSCRIBE_HIGH_WATER (1u << 20)
#define SUBSCRIBE_LOW_WATER (256u << 10)

static void reply_empty(struct grpc_call *call)
{
        Google__Protobuf__Empty empty = GOOGLE__PROTOBUF__EMPTY__INIT;

        grpc_call_reply(call, &empty.base);
}

static void on_publish(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Events__V1__PublishRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        _cleanup_error_ struct error *err = NULL;
        const char *ns = NULL;
        int r;

        r = services_call_namespace(call, &ns, &err);
        if (r >= 0)
                r = services_events_publish(ctx->events, ns, in, &err);
        if (r < 0) {
                grpc_call_fail(call, r, err);
                return;
        }
        reply_empty(call);
}

static void on_forward(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Events__V1__ForwardRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        _cleanup_error_ struct error *err = NULL;
        int r;

        r = services_events_forward(ctx->events, in->envelope, &err);
        if (r < 0) {
                grpc_call_fail(call, r, err);
                return;
        }
        reply_empty(call);
}

struct subscriber {
        struct grpc_call *call;
        struct events_subscription *sub;
        bool in_send; /* inside grpc_call_send: a cancel arriving now is finished afterwards */
        bool cancelled;
};

static void subscriber_free(struct subscriber *s)
{
        events_subscription_free(s->sub);
        grpc_call_unref(s->call);
        free(s);
}

static void on_cancel(struct grpc_call *call _unused_, void *userdata)
{
        struct subscriber *s = userdata;

        if (s->in_send) {
                s->cancelled = true;
                return;
        }
        subscriber_free(s);
}

static void on_writable(struct grpc_call *call _unused_, void *userdata)
{
        struct subscriber *s = userdata;

        events_subscription_set_ready(s->sub, true);
}

static void on_envelope(struct events_subscription *sub, const events_envelope *env, void *userdata)
{
        struct subscriber *s = userdata;
        int r;

        s->in_send = true;
        r = grpc_call_send(s->call, &env->base);
        s->in_send = false;
        if (s->cancelled) {
                subscriber_free(s);
                return;
        }
        if (r < 0) {
                /* The stream is done; its cancel callback releases us. Stop taking events meanwhile. */
                events_subscription_set_ready(sub, false);
                return;
        }
        if (grpc_call_pending_bytes(s->call) > SUBSCRIBE_HIGH_WATER) {
                events_subscription_set_ready(sub, false);
                grpc_call_set_writable_cb(s->call, SUBSCRIBE_LOW_WATER, on_writable, s);
        }
}

static void on_subscribe(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Events__V1__SubscribeRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        _cleanup_error_ struct error *err = NULL;
        struct subscriber *s;
        int r;

        if (!ctx->events) {
                grpc_call_finish(call, GRPC_UNAVAILABLE, "event exchange is not available");
                return;
        }
        s = xcalloc(1, sizeof(*s));
        r = events_subscribe(ctx->events, in->filters, in->n_filters, on_envelope, s, &s->sub, &err);
        if (r < 0) {
                free(s);
                grpc_call_fail(call, r, err);
                return;
        }
        s->call = grpc_call_ref(call);
        grpc_call_set_cancel_cb(call, on_cancel, s);
}

void services_events_register(struct grpc_server *s, struct services_ctx *ctx)
{
        const struct grpc_method methods[] = {
            {
                .path = "/containerd.services.events.v1.Events/Publish",
                .kind = GRPC_METHOD_UNARY,
                .input = &containerd__services__events__v1__publish_request__descriptor,
                .on_message = on_publish,
                .userdata = ctx,
            },
            {
                .path = "/containerd.services.events.v1.Events/Forward",
                .kind = GRPC_METHOD_UNARY,
                .input = &containerd__services__events__v1__forward_request__descriptor,
                .on_message = on_forward,
                .userdata = ctx,
            },
            {
                .path = "/containerd.services.events.v1.Events/Subscribe",
                .kind = GRPC_METHOD_SERVER_STREAM,
                .input = &containerd__services__events__v1__subscribe_request__descriptor,
                .on_message = on_subscribe,
                .userdata = ctx,
            },
        };

        for (size_t i = 0; i < ELEMENTSOF(methods); i++)
                (void)grpc_server_add_method(s, &methods[i]);
}

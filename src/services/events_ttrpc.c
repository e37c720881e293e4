/* The ttrpc Events/Forward service that shims call (containerd services/events/ttrpc.go). The shim sends
 * `containerd-namespace-ttrpc` metadata, but containerd validates and keeps the envelope's own namespace, and
 * so do we. */
#include "services/events.h"
#include "util/cleanup.h"
#include "util/log.h"

static void on_forward(struct ttrpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Events__Ttrpc__V1__ForwardRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        _cleanup_error_ struct error *err = NULL;
        int r;

        r = services_events_forward_ttrpc(ctx->events, in->envelope, &err);
        if (r < 0) {
                const struct log_field fields[] = {
                    {"error", error_str(err)},
                    {"ns", in->envelope && in->envelope->namespace_ ? in->envelope->namespace_ : ""},
                    {"topic", in->envelope && in->envelope->topic ? in->envelope->topic : ""},
                    {NULL, NULL},
                };
                log_fields(LOG_LEVEL_ERROR, fields, "error forwarding event");
                ttrpc_call_fail(call, r, err);
                return;
        }
        ttrpc_call_reply(call, NULL); /* google.protobuf.Empty: a zero-length body */
}

int services_events_ttrpc_register(struct ttrpc_server *s, struct services_ctx *ctx)
{
        const struct ttrpc_method m = {
            .service = "containerd.services.events.ttrpc.v1.Events",
            .method = "Forward",
            .input = &containerd__services__events__ttrpc__v1__forward_request__descriptor,
            .handler = on_forward,
            .userdata = ctx,
        };

        return ttrpc_server_add_method(s, &m);
}

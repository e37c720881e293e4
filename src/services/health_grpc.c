/* grpc.health.v1 gRPC adapter. */
#include "health.pb-c.h"
#include "services/health.h"
#include "util/cleanup.h"

static void on_check(struct grpc_call *call, const ProtobufCMessage *req, _unused_ void *userdata)
{
        const Grpc__Health__V1__HealthCheckRequest *in = (const void *)req;
        int st = services_health_status(in->service);
        if (st < 0) {
                grpc_call_finish(call, GRPC_NOT_FOUND, "unknown service");
                return;
        }
        Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
        resp.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)st;
        grpc_call_reply(call, &resp.base);
}

/* Watch sends the current status and keeps the stream open (grpc-go sends SERVICE_UNKNOWN for a name it
 * does not know, and never ends the stream itself). The status never changes while the daemon serves, and
 * shutdown cancels open streams, so there is nothing more to send. */
static void on_watch(struct grpc_call *call, const ProtobufCMessage *req, _unused_ void *userdata)
{
        const Grpc__Health__V1__HealthCheckRequest *in = (const void *)req;
        int st = services_health_status(in->service);
        Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
        resp.status = st < 0 ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN
                             : (Grpc__Health__V1__HealthCheckResponse__ServingStatus)st;
        (void)grpc_call_send(call, &resp.base);
}

void services_health_register(struct grpc_server *s, struct services_ctx *ctx)
{
        const struct grpc_method methods[] = {
                {
                        .path = "/grpc.health.v1.Health/Check",
                        .kind = GRPC_METHOD_UNARY,
                        .input = &grpc__health__v1__health_check_request__descriptor,
                        .on_message = on_check,
                        .userdata = ctx,
                },
                {
                        .path = "/grpc.health.v1.Health/Watch",
                        .kind = GRPC_METHOD_SERVER_STREAM,
                        .input = &grpc__health__v1__health_check_request__descriptor,
                        .on_message = on_watch,
                        .userdata = ctx,
                },
        };
        for (size_t i = 0; i < ELEMENTSOF(methods); i++)
                (void)grpc_server_add_method(s, &methods[i]);
}

/* version.v1 gRPC adapter. */
#include "github.com/containerd/containerd/api/services/version/v1/version.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "services/version.h"
#include "util/cleanup.h"

static void on_version(struct grpc_call *call, _unused_ const ProtobufCMessage *req, _unused_ void *userdata)
{
        Containerd__Services__Version__V1__VersionResponse resp = CONTAINERD__SERVICES__VERSION__V1__VERSION_RESPONSE__INIT;
        resp.version = (char *)services_version_version();
        resp.revision = (char *)services_version_revision();
        grpc_call_reply(call, &resp.base);
}

void services_version_register(struct grpc_server *s, struct services_ctx *ctx)
{
        const struct grpc_method m = {
                .path = "/containerd.services.version.v1.Version/Version",
                .kind = GRPC_METHOD_UNARY,
                .input = &google__protobuf__empty__descriptor,
                .on_message = on_version,
                .userdata = ctx,
        };
        (void)grpc_server_add_method(s, &m);
}

/* grpc.health.v1 Health: the standard gRPC health service, as containerd's healthcheck plugin serves it.
 * The Go client's IsServing() calls Check with an empty service name. */
#pragma once

#include "proto/grpc/grpc.h"
#include "services/services.h"

/* Serving status of a service name ("" = the whole server). Returns 1 SERVING, 2 NOT_SERVING, or -ENOENT for a
 * name the server does not know (gRPC's NotFound "unknown service"). */
int services_health_status(const char *service);

/* Registers /grpc.health.v1.Health/Check and /grpc.health.v1.Health/Watch. */
void services_health_register(struct grpc_server *s, struct services_ctx *ctx);
/* Marks the server NOT_SERVING (on shutdown) for later Check calls. Loop thread. */
void services_health_set_shutting_down(void);

/* events.v1 (Publish, Forward, Subscribe) on krilld's gRPC server, and the ttrpc
 * containerd.services.events.ttrpc.v1.Events/Forward service shims call on `<grpc address>.ttrpc`
 * (containerd services/events/{service,ttrpc}.go; PROTOCOLS.md sections 2.1 and 3.4).
 * Everything runs on the daemon loop and uses ctx->events. */
#pragma once

#include "events/exchange.h"
#include "github.com/containerd/containerd/api/services/events/v1/events.pb-c.h"
#include "github.com/containerd/containerd/api/services/ttrpc/events/v1/events.pb-c.h"
#include "proto/grpc/grpc.h"
#include "proto/ttrpc/ttrpc.h"
#include "services/services.h"
#include "util/error.h"

/* Local functions (also for CRI). ns is the caller's namespace; the request's Any is published as is.
 * Errors as events_publish_any / events_forward; -EAGAIN (Unavailable) when ex is NULL. */
int services_events_publish(struct events_exchange *ex, const char *ns,
                            const Containerd__Services__Events__V1__PublishRequest *req, struct error **err);
int services_events_forward(struct events_exchange *ex, const Containerd__Services__Events__V1__Envelope *env,
                            struct error **err);
int services_events_forward_ttrpc(struct events_exchange *ex,
                                  const Containerd__Services__Events__Ttrpc__V1__Envelope *env, struct error **err);

/* Registers /containerd.services.events.v1.Events/{Publish,Forward,Subscribe}. Subscribe is server-streaming
 * and stays open until the client goes away or the server shuts down (ctr events prints `ctr: EOF` if it
 * ends with OK). A subscriber whose stream backs up more than 1 MiB is paused and then loses events
 * (see exchange.h) instead of growing the daemon's memory. */
void services_events_register(struct grpc_server *s, struct services_ctx *ctx);
/* Registers containerd.services.events.ttrpc.v1.Events/Forward. Returns 0 or -EEXIST. */
int services_events_ttrpc_register(struct ttrpc_server *s, struct services_ctx *ctx);

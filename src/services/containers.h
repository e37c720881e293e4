/* containers.v1 (Get, List, ListStream, Create, Update, Delete) over the metadata container records
 * (metadata/containers.h holds the logic and validation). Writes commit on the worker pool. */
#pragma once

#include "services/services.h"

void services_containers_register(struct grpc_server *s, struct services_ctx *ctx);

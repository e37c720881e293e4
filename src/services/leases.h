/* leases.v1 over the metadata store (containerd services/leases). Writes run on the worker pool; Delete
 * with sync=true answers after a garbage collection that started after the delete has finished. */
#pragma once

#include "metadata/leases.h"
#include "proto/grpc/grpc.h"
#include "services/services.h"

/* A new random lease ID the way containerd's server makes one when the request has none
 * ("<ns of now>-<4 base64url chars>"). New string. Any thread. */
char *services_leases_random_id(void);

/* Registers /containerd.services.leases.v1.Leases/{Create,Delete,List,AddResource,DeleteResource,
 * ListResources}. */
void services_leases_register(struct grpc_server *s, struct services_ctx *ctx);

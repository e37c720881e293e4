/* images.v1 over the metadata store (containerd services/images/local.go). The metadata calls block (LMDB
 * fsync): the adapter runs writes on the worker pool. Events and GC scheduling happen on the loop. */
#pragma once

#include <stdbool.h>

#include "metadata/images.h"
#include "proto/grpc/grpc.h"
#include "services/services.h"
#include "util/error.h"

/* Loop thread: publishes /images/create, /images/update (with name and labels) or /images/delete (name only,
 * labels ignored). A publish failure is logged, not returned (the change is already committed). */
void services_images_publish(struct services_ctx *ctx, const char *ns, const char *topic, const char *name,
                             char *const *labels);

/* Registers /containerd.services.images.v1.Images/{Get,List,Create,Update,Delete}. Delete with sync=true
 * answers after a garbage collection that started after the delete has finished. */
void services_images_register(struct grpc_server *s, struct services_ctx *ctx);

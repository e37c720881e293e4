/* namespaces.v1 over the metadata store (containerd services/namespaces/local.go). Blocking LMDB calls:
 * the gRPC adapter runs the writes on the worker pool; any thread may call these. */
#pragma once

#include <stddef.h>

#include "proto/grpc/grpc.h"
#include "services/services.h"
#include "util/error.h"

struct metadata_db;

struct services_namespace {
        char *name;
        char **labels; /* sorted strv of key, value pairs, never NULL */
};

void services_namespace_done(struct services_namespace *ns);

/* Labels of a namespace. A missing namespace is not an error: containerd answers Get with empty labels. */
int services_namespaces_get(struct metadata_db *db, const char *name, struct services_namespace *ret,
                            struct error **err);
/* Every namespace, sorted by name. *ret is a new array of *ret_n entries (free each with services_namespace_done,
 * then the array). */
int services_namespaces_list(struct metadata_db *db, struct services_namespace **ret, size_t *ret_n,
                             struct error **err);
/* labels: strv of pairs or NULL. -EEXIST `namespace "x": already exists`, -EINVAL for a bad name or labels. */
int services_namespaces_create(struct metadata_db *db, const char *name, char *const *labels, struct error **err);
/* paths: "labels.<key>" each (set, or delete when empty); none replaces every label. Creates a missing namespace
 * as containerd does. -EINVAL `cannot update "x" field` for other paths. */
int services_namespaces_update(struct metadata_db *db, const char *name, char *const *labels, char *const *paths,
                               size_t n_paths, struct error **err);
/* -ENOENT `namespace "x": not found`; -EBUSY (FailedPrecondition) when it still holds objects. */
int services_namespaces_delete(struct metadata_db *db, const char *name, struct error **err);

/* Registers /containerd.services.namespaces.v1.Namespaces/{Get,List,Create,Update,Delete}; uses ctx->db and
 * ctx->loop (worker pool for writes). */
void services_namespaces_register(struct grpc_server *s, struct services_ctx *ctx);

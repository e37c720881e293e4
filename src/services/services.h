/* API services on krilld's gRPC server. One pair of files per service (STYLE.md section 2):
 *   <svc>.c       logic (local functions, also called directly by CRI later)
 *   <svc>_grpc.c  decode request -> call local function -> encode reply / map error
 * Each service exposes `void services_<svc>_register(struct grpc_server *s, struct services_ctx *ctx)`.
 * Every handler runs on the daemon's loop thread; blocking work goes to the worker pool (uv_queue_work). */
#pragma once

#include <stdbool.h>
#include <uv.h>

#include "proto/grpc/grpc.h"

struct metadata_db;       /* src/metadata */
struct content_store;     /* src/content */
struct snapshot_registry; /* src/snapshot: snapshotters by name */
struct events_exchange;   /* src/events */
struct task_manager;      /* src/runtime */
struct krill_config;      /* src/daemon/config.h */
struct plugin_registry;   /* src/daemon/builtins.c: for introspection */

struct services_ctx {
        uv_loop_t *loop;
        const struct krill_config *config;
        const char *root;  /* --root */
        const char *state; /* --state */
        const char *uuid;  /* persistent server UUID (introspection.Server) */
        struct metadata_db *db;
        struct content_store *content;
        struct snapshot_registry *snapshots;
        struct events_exchange *events;
        struct task_manager *tasks;
        const struct plugin_registry *plugins;
};

/* Reads and validates the `containerd-namespace` metadata of a call. On success *ret_ns is borrowed from the
 * call (valid for its life). Missing: -EBUSY ("namespace is required", FailedPrecondition as containerd);
 * invalid identifier: -EINVAL. */
int services_call_namespace(const struct grpc_call *call, const char **ret_ns, struct error **err);
/* The `containerd-lease` metadata of a call, or NULL. */
const char *services_call_lease(const struct grpc_call *call);

/* The metadata store and the namespace of a call, or the call is answered (Unavailable without a store, the
 * namespace error otherwise) and false returned. */
bool services_call_db_ns(struct grpc_call *call, struct services_ctx *ctx, const char **ret_ns);

/* A blocking metadata operation of one call, run on the worker pool. Embed it as the first member of the service's
 * own job, fill the hooks and call services_job_start; the job is freed through `free` once the call is answered. */
struct services_job {
        uv_work_t work;
        struct grpc_call *call; /* referenced while the job lives */
        struct services_ctx *ctx;
        char *ns; /* copy of the namespace given to start (may be NULL) */
        int r;    /* run's result and error */
        struct error *err;
        bool collect; /* a successful run deleted something: schedule a garbage collection */
        bool sync;    /* with collect: answer only once the collection ran (the requests' Sync flag) */
        void (*run)(struct services_job *j); /* on a worker thread: sets r and err */
        /* On the loop after a successful run, even when the caller has gone (events are still due). A failure
         * answers code Unknown with its message, as containerd returns publisher errors unmapped. May be NULL. */
        int (*publish)(struct services_job *j, struct error **err);
        void (*reply)(struct services_job *j); /* the success answer; NULL answers google.protobuf.Empty */
        void (*free)(struct services_job *j);  /* frees the service's own fields and the job itself */
};
void services_job_start(struct services_job *j, struct grpc_call *call, struct services_ctx *ctx, const char *ns);
/* Answers a call with google.protobuf.Empty. */
void services_reply_empty(struct grpc_call *call);

/* The task manager (containerd's runtime/v2 TaskManager + shim manager): creates bundles, starts shims with
 * their `start` subcommand, keeps one ttrpc client per shim, forwards task calls, deletes and shuts shims
 * down, cleans up after dead shims and re-adopts running shims after a daemon restart.
 *
 * Loop discipline: every function must be called on the daemon's loop thread. Filesystem work and the exec of
 * shim binaries run on the libuv worker pool; callbacks always run on the loop thread, never synchronously
 * from inside the call that registered them. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "proto/ttrpc/ttrpc.h"
#include "util/error.h"

struct task_manager;

struct task_manager_config {
        const char *state_dir;      /* daemon --state */
        const char *root_dir;       /* daemon --root */
        const char *address;        /* daemon gRPC socket (passed to shims as -address) */
        const char *ttrpc_address;  /* events ttrpc socket (TTRPC_ADDRESS) */
        const char *publish_binary; /* the daemon's executable (-publish-binary) */
        const char *self_dir;       /* searched first for shim binaries (dir of krilld) */
        bool debug;                 /* pass -debug to shims */
};

/* Called when the manager learns that a task's shim is gone for good (dead shim cleaned up, or a task that
 * could not be re-adopted at start-up), so the daemon can publish /tasks/exit and /tasks/delete the way
 * containerd does. exit_status 255 when the shim's delete gave no answer. */
typedef void (*task_manager_exit_fn)(const char *ns, const char *id, uint32_t pid, uint32_t exit_status,
                                     int64_t exited_at_sec, int32_t exited_at_nsec, void *userdata);

struct task_manager *task_manager_new(uv_loop_t *loop, const struct task_manager_config *cfg);
void task_manager_set_exit_cb(struct task_manager *tm, task_manager_exit_fn fn, void *userdata);
/* Closes every shim connection (shims and containers keep running, as with containerd) and frees. */
void task_manager_free(struct task_manager *tm);

struct task_create_params {
        const char *ns;
        const char *id;
        const char *runtime;                  /* "io.containerd.krill.v2", "io.containerd.runc.v2" or a path */
        const uint8_t *runtime_options;       /* packed google.protobuf.Any for the shim's stdin; may be NULL */
        size_t runtime_options_len;
        const uint8_t *spec;                  /* OCI spec JSON, written as config.json */
        size_t spec_len;
        const ProtobufCMessage *create_req;   /* a Containerd__Task__V2__CreateTaskRequest; id/bundle are set
                                                 by the manager, everything else is sent as given */
};

typedef void (*task_create_fn)(int r, uint32_t pid, const struct error *e, void *userdata);
/* Creates the task. -EEXIST (immediately) if ns/id already has a task. */
int task_manager_create(struct task_manager *tm, const struct task_create_params *p, task_create_fn cb,
                        void *userdata, struct error **err);

/* Forwards one containerd.task.v2.Task method to the task's shim. resp_desc NULL = Empty.
 * -ENOENT (immediately) if there is no such task: `task "<id>": not found` as containerd says... the message
 * matches containerd's runtime errors (errdefs.ErrNotFound). */
int task_manager_call(struct task_manager *tm, const char *ns, const char *id, const char *method,
                      const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc, uint32_t timeout_ms,
                      ttrpc_reply_fn cb, void *userdata, struct error **err);

struct task_delete_result {
        uint32_t pid;
        uint32_t exit_status;
        int64_t exited_at_sec;
        int32_t exited_at_nsec;
};
typedef void (*task_delete_fn)(int r, const struct task_delete_result *res, const struct error *e, void *userdata);
/* Deletes the init process: shim Delete, then Shutdown (when no other task shares the shim), then the bundle
 * (rootfs unmounted, directories removed) on the worker pool. A shim that is already gone is cleaned up with
 * its `delete` subcommand instead. */
int task_manager_delete(struct task_manager *tm, const char *ns, const char *id, task_delete_fn cb,
                        void *userdata, struct error **err);

bool task_manager_exists(const struct task_manager *tm, const char *ns, const char *id);
/* Calls fn for each task of ns (all namespaces when ns is NULL). */
void task_manager_foreach(const struct task_manager *tm, const char *ns,
                          void (*fn)(const char *ns, const char *id, void *userdata), void *userdata);

/* Restart recovery (containerd's shim_load.go): walks <state>/io.containerd.runtime.v2.task/<ns>/<id>,
 * connects to every shim concurrently with a short timeout, calls Connect, adopts the live ones, cleans up
 * the dead ones (shim `delete`, exit callback, bundle removal) and removes orphaned work dirs. done_cb runs
 * once when every bundle has been handled. */
void task_manager_recover(struct task_manager *tm, void (*done_cb)(int adopted, int cleaned, void *userdata),
                          void *userdata);

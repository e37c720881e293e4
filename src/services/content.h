/* content.v1 over the namespaced content store (containerd services/content/contentserver), plus the
 * daemon's garbage-collection scheduler (containerd's gc scheduler, simplified: a collection runs on the
 * worker pool after deletions, coalescing requests that arrive while one runs).
 * Blocking functions (marked) run on the worker pool; the rest on the loop thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metadata/content.h"
#include "proto/grpc/grpc.h"
#include "services/services.h"
#include "util/error.h"

/* --- garbage collection (loop thread) --- */

/* Called on the loop when a collection that started after the request finished. r < 0 with e on failure. */
typedef void (*services_gc_done_fn)(int r, const struct error *e, void *userdata);
/* Requests a collection (ctx->db, ctx->content, ctx->snapshots). done may be NULL (fire and forget). */
void services_gc_schedule(struct services_ctx *ctx, services_gc_done_fn done, void *userdata);
/* True while a collection runs or is queued (tests, shutdown). */
bool services_gc_busy(const struct services_ctx *ctx);

/* --- local functions --- */

/* Removes ns's reference to digest (blocking). The blob goes at the next GC; the caller schedules it and
 * publishes /content/delete with services_content_publish_delete (loop). */
int services_content_delete(struct services_ctx *ctx, const char *ns, const char *digest, struct error **err);
void services_content_publish_delete(struct services_ctx *ctx, const char *ns, const char *digest);

/* One Content.Write session (PROTOCOLS.md 2.2), transport-independent. Blocking steps. */
struct services_content_write;

enum services_write_action {
        SERVICES_WRITE_STAT = 0,
        SERVICES_WRITE_WRITE = 1,
        SERVICES_WRITE_COMMIT = 2,
};

struct services_write_req {
        enum services_write_action action;
        char *ref;
        int64_t total;
        char *expected;
        int64_t offset;
        uint8_t *data;
        size_t len;
        char **labels; /* pairs or NULL */
};

struct services_write_resp {
        enum services_write_action action;
        int64_t started_at; /* ns */
        int64_t updated_at;
        int64_t offset;
        int64_t total;
        char *digest; /* new string or NULL */
};

/* ns and lease are copied; lease may be NULL. */
struct services_content_write *services_content_write_new(struct services_ctx *ctx, const char *ns, const char *lease);
/* Processes one request: 0 = reply with resp and continue, 1 = reply with resp and end the stream OK (after
 * COMMIT), < 0 = end with that error (-EINVAL first message without ref, -ERANGE bad offset (OutOfRange),
 * -EEXIST blob exists, -EBUSY size/digest mismatch). resp->digest must be freed by the caller. */
int services_content_write_step(struct services_content_write *s, const struct services_write_req *req,
                                struct services_write_resp *resp, struct error **err);
/* Closes the writer (keeps an uncommitted ingest for resuming) and frees. NULL-safe. */
void services_content_write_free(struct services_content_write *s);

/* Registers /containerd.services.content.v1.Content/{Info,Update,List,Delete,Read,Status,ListStatuses,Write,
 * Abort}. Uses ctx->db, ctx->content, ctx->loop, ctx->events (may be NULL). */
void services_content_register(struct grpc_server *s, struct services_ctx *ctx);

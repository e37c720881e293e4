/* snapshots.v1 logic (containerd services/snapshots + metadata/snapshot.go): the client's keys live in the
 * metadata store per namespace (metadata/snapshots.h) and map to backend keys "<ns>/<seq>/<key>", so
 * namespaces never collide in a backend and a re-used name never meets a stale backend snapshot.
 * Every function blocks (LMDB fsync, tree copies, du): call from the worker pool; any thread.
 * snapshotter NULL or "" is the default one. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "proto/grpc/grpc.h"
#include "services/services.h"
#include "snapshot/snapshot.h"
#include "util/error.h"

/* -EINVAL `snapshotter not loaded: x` for an unknown snapshotter. *ret mounts are new. view selects View. */
int services_snapshots_prepare(struct services_ctx *ctx, const char *ns, const char *snapshotter, const char *key,
                               const char *parent, char *const *labels, const char *lease, bool view,
                               struct snapshot_mounts *ret, struct error **err);
int services_snapshots_mounts(struct services_ctx *ctx, const char *ns, const char *snapshotter, const char *key,
                              struct snapshot_mounts *ret, struct error **err);
int services_snapshots_commit(struct services_ctx *ctx, const char *ns, const char *snapshotter, const char *name,
                              const char *key, char *const *labels, const char *lease, struct error **err);
/* Removes the reference and then the backend snapshot (GC would otherwise do the latter). */
int services_snapshots_remove(struct services_ctx *ctx, const char *ns, const char *snapshotter, const char *key,
                              struct error **err);
/* *ret is new (snapshot_info_clear); names are the namespace's keys. */
int services_snapshots_stat(struct services_ctx *ctx, const char *ns, const char *snapshotter, const char *key,
                            struct snapshot_info *ret, struct error **err);
int services_snapshots_update(struct services_ctx *ctx, const char *ns, const char *snapshotter,
                              const struct snapshot_info *info, char *const *paths, size_t npaths,
                              struct snapshot_info *ret, struct error **err);
/* filters in containerd syntax (OR'ed), fields name, parent, kind, labels.*. *ret is a new array of *ret_n. */
int services_snapshots_list(struct services_ctx *ctx, const char *ns, const char *snapshotter,
                            char *const *filters, size_t nfilters, struct snapshot_info **ret, size_t *ret_n,
                            struct error **err);
int services_snapshots_usage(struct services_ctx *ctx, const char *ns, const char *snapshotter, const char *key,
                             struct snapshot_usage *ret, struct error **err);
int services_snapshots_cleanup(struct services_ctx *ctx, const char *snapshotter, struct error **err);

/* One layer of an image, for unpacking (strings borrowed). */
struct services_unpack_layer {
        const char *digest;     /* the (compressed) layer blob in the content store */
        const char *media_type; /* manifest layer media type */
        const char *diff_id;    /* image config rootfs.diff_ids[i] */
};

/* Unpacks an image's layers into snapshots named by chain ID, as containerd's unpacker does: a chain that
 * already exists is skipped; otherwise "extract-<unique> <chainID>" is prepared on the parent chain, the
 * layer applied (diff.h), its diff ID checked against diff_id (-EINVAL `wrong diff id calculated on
 * extraction "sha256:.."`), and committed as the chain ID with the label containerd.io/snapshot.ref. A failed
 * layer's active snapshot is removed. *ret_chain_id (may be NULL) gets the top chain ID (new string).
 * Blocking: worker pool (CRI PullImage, daemon-side pulls). */
int services_snapshots_unpack(struct services_ctx *ctx, const char *ns, const char *snapshotter,
                              const struct services_unpack_layer *layers, size_t n, const char *lease,
                              char **ret_chain_id, struct error **err);

/* Registers /containerd.services.snapshots.v1.Snapshots/{Prepare,View,Mounts,Commit,Remove,Stat,Update,List,
 * Usage,Cleanup}. Uses ctx->db, ctx->snapshots and ctx->loop (every call runs on the worker pool). */
void services_snapshots_register(struct grpc_server *s, struct services_ctx *ctx);

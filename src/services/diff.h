/* diff.v1 logic (containerd diff/apply): Apply reads a layer blob from the content store (it must be visible
 * in the namespace), decompresses and unpacks it into the given mounts (image/apply.h) and returns the applied
 * descriptor: media type application/vnd.oci.image.layer.v1.tar, the diff ID and the uncompressed size.
 * A single overlay mount is applied straight into its upperdir (overlay whiteouts), a single writable bind
 * mount into its source (whiteouts delete); anything else is mounted on a temp dir under
 * <root>/tmpmounts first. Diff: services_diff_compare.
 * Blocking: run on the worker pool. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "image/apply.h"
#include "proto/grpc/grpc.h"
#include "services/services.h"
#include "snapshot/snapshot.h"
#include "util/error.h"

/* -ENOSYS `unsupported diff media type: x` (Unimplemented, as containerd), -ENOENT when the namespace does not
 * have the blob, -EINVAL for a corrupt layer, or an apply error. *ret filled on success. */
int services_diff_apply(struct services_ctx *ctx, const char *ns, const char *media_type, const char *digest,
                        const struct snapshot_mount *mounts, size_t nmounts, struct image_apply_result *ret,
                        struct error **err);

/* The checks and the blob open of services_diff_apply (same errors): *ret_fd is a new fd on the blob. */
int services_diff_open_layer(struct services_ctx *ctx, const char *ns, const char *media_type, const char *digest,
                             int *ret_fd, struct error **err);
/* The apply of services_diff_apply with the layer's bytes from a started stream (image/apply.h) of blob digest
 * (named in errors): services_snapshots_unpack starts the next layer's stream early. */
int services_diff_apply_stream(struct services_ctx *ctx, const char *digest, struct image_layer_stream *stream,
                               const struct snapshot_mount *mounts, size_t nmounts, struct image_apply_result *ret,
                               struct error **err);

/* The descriptor Diff answers with (new strings). */
struct services_diff_desc {
        char *media_type;
        char *digest;
        int64_t size;
        char *uncompressed; /* diff ID, also the blob's containerd.io/uncompressed label */
};
void services_diff_desc_clear(struct services_diff_desc *d);

/* Diff (containerd's walking differ): mounts lower (none: an empty tree) and upper read-only under
 * <root>/tmpmounts, writes the changes from lower to upper as a tar (whiteouts for deletions, parent
 * directories of changes, hard links, security.capability) gzip-compressed into the content store under
 * ref (a unique one when empty) with labels plus containerd.io/uncompressed, in namespace ns under lease.
 * media_type "" means application/vnd.oci.image.layer.v1.tar+gzip, the only one supported (-ENOSYS
 * `unsupported diff media type: x` otherwise). */
int services_diff_compare(struct services_ctx *ctx, const char *ns, const struct snapshot_mount *lower,
                          size_t nlower, const struct snapshot_mount *upper, size_t nupper, const char *media_type,
                          const char *ref, char *const *labels, const char *lease, struct services_diff_desc *ret,
                          struct error **err);

/* Registers /containerd.services.diff.v1.Diff/{Apply,Diff}; Apply runs on ctx->loop's worker pool. */
void services_diff_register(struct grpc_server *s, struct services_ctx *ctx);

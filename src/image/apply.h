/* Layer apply (unpack): a compressed or plain tar layer blob is decompressed (decompress.h) and its entries
 * are created beneath a root directory, while the diff ID (sha256 of the uncompressed tar) is computed.
 * The caller compares the diff ID with the image config's rootfs.diff_ids.
 *
 * Containment: every path is cleaned lexically as if rooted at "/" (absolute paths and ".." are confined to
 * the root, as containerd's archive.Apply does), the parent directory is opened with
 * openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS) (symlinks in parent components are resolved inside the root),
 * and the final component is created with *at() calls that never follow it. Without openat2 the fallback
 * walks the components with O_NOFOLLOW and refuses symlinked parents (ELOOP). Hard link targets are resolved
 * the same way and must exist.
 *
 * Whiteouts (OCI image-spec layer.md): with overlay=true `.wh.NAME` becomes a 0/0 character device NAME and
 * `.wh..wh..opq` sets trusted.overlay.opaque=y on its directory (the layout overlayfs expects in an upper
 * dir); with overlay=false NAME is removed, and an opaque marker removes every entry of its directory that
 * this layer did not create (containerd's non-overlay applier).
 *
 * Blocking (disk I/O): call it from a worker thread, never from the event loop. Thread-safe for different
 * roots. Never logs above debug. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "image/decompress.h"
#include "util/error.h"

#define IMAGE_APPLY_DEFAULT_MAX_BYTES (64ull << 30) /* uncompressed bytes per layer */
#define IMAGE_APPLY_DEFAULT_MAX_ENTRIES (4u << 20)  /* tar entries per layer */

#define IMAGE_MEDIA_TYPE_LAYER_TAR "application/vnd.oci.image.layer.v1.tar"

struct image_apply_options {
        bool overlay;          /* overlay whiteout format (see above); false: delete (native snapshotter) */
        bool allow_devices;    /* create block/char device nodes; false: such entries fail with EPERM */
        bool no_same_owner;    /* do not lchown (unprivileged); also implied when not running as root */
        uint64_t max_bytes;    /* bound on uncompressed bytes, 0 = IMAGE_APPLY_DEFAULT_MAX_BYTES */
        uint64_t max_entries;  /* bound on tar entries, 0 = IMAGE_APPLY_DEFAULT_MAX_ENTRIES */
        /* Lower layer roots (nearest first, NULL-terminated, may be NULL) when applying into an overlay upper
         * dir: a parent directory the tar does not list is created with the mode, owner and times of the
         * same directory in the nearest lower layer that has it (containerd's WithParents), so that e.g.
         * /tmp keeps 1777 in the merged view. */
        const char *const *parents;
};

struct image_apply_result {
        char diff_id[IMAGE_DIGEST_STRLEN]; /* "sha256:<hex>" of the uncompressed stream */
        uint64_t size;                     /* uncompressed bytes */
        uint64_t entries;
        enum image_compression compression;
};

/* Applies the layer read from blob_fd (borrowed, read sequentially from its current offset; a pipe works)
 * beneath root_fd (borrowed directory fd). opts may be NULL (defaults: overlay=false, devices allowed).
 * On success fills *res and returns 0. Errors (-errno, err set): EINVAL corrupt compression/tar or an
 * invalid entry (empty name, bad hard link), ENAMETOOLONG path over PATH_MAX, EFBIG/E2BIG over the size or
 * entry bound, EPERM device node not allowed, ENOENT hard link target missing, ELOOP symlinked parent
 * (fallback only), or the errno of a failing syscall. On failure the root holds a partial layer; the caller
 * discards the snapshot. */
int image_apply_layer(int root_fd, int blob_fd, const struct image_apply_options *opts,
                      struct image_apply_result *res, struct error **err);

/* Same, reading the layer from a started stream (decompress.h; started with the max_bytes bound wanted,
 * opts->max_bytes is not used). The stream is consumed to its end on success; free it afterwards either way.
 * services_snapshots_unpack starts the next layer's stream while the current layer is applied. */
int image_apply_layer_stream(int root_fd, struct image_layer_stream *stream, const struct image_apply_options *opts,
                             struct image_apply_result *res, struct error **err);

/* Same, with the root given by path (opened O_DIRECTORY). */
int image_apply_layer_path(const char *root, int blob_fd, const struct image_apply_options *opts,
                           struct image_apply_result *res, struct error **err);

/* Tests only: force the no-openat2 fallback resolver (process-wide). */
void image_apply_force_fallback(bool on);

/* diff.v1 Apply logic; see diff.h. */
#include "services/diff.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "content/store.h"
#include "metadata/content.h"
#include "snapshot/mount.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/strv.h"

/* containerd's applier accepts OCI and Docker layer media types (diff/apply/apply.go via
 * images.DiffCompression); the compression itself is detected from the data. */
static bool media_type_supported(const char *mt)
{
        static const char *const ok[] = {
                "application/vnd.oci.image.layer.v1.tar",
                "application/vnd.oci.image.layer.v1.tar+gzip",
                "application/vnd.oci.image.layer.v1.tar+zstd",
                "application/vnd.oci.image.layer.nondistributable.v1.tar",
                "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
                "application/vnd.docker.image.rootfs.diff.tar",
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        };
        if (!mt || !mt[0])
                return false;
        for (size_t i = 0; i < ELEMENTSOF(ok); i++)
                if (strcmp(mt, ok[i]) == 0)
                        return true;
        return false;
}

static const char *option_value(const struct snapshot_mount *m, const char *prefix)
{
        size_t n = strlen(prefix);
        for (char **o = m->options; o && *o; o++)
                if (strncmp(*o, prefix, n) == 0)
                        return *o + n;
        return NULL;
}

static bool has_option(const struct snapshot_mount *m, const char *opt)
{
        for (char **o = m->options; o && *o; o++)
                if (strcmp(*o, opt) == 0)
                        return true;
        return false;
}

static int apply_into(const char *dir, struct image_layer_stream *stream, bool overlay, char *const *parents,
                      struct image_apply_result *ret, struct error **err)
{
        struct image_apply_options o = {
                .overlay = overlay,
                .allow_devices = true,
                .parents = (const char *const *)parents,
        };
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return error_set(err, errno, "open layer root \"%s\"", dir);
        return image_apply_layer_stream(fd, stream, &o, ret, err);
}

int services_diff_open_layer(struct services_ctx *ctx, const char *ns, const char *media_type, const char *digest,
                             int *ret_fd, struct error **err)
{
        struct metadata_content_info info = {0};
        int64_t size = 0;
        int r;

        if (!ctx->db || !ctx->content)
                return error_set(err, EAGAIN, "diff service is not available");
        if (!media_type_supported(media_type))
                return error_set(err, ENOSYS, "unsupported diff media type: %s", media_type ? media_type : "");
        if (!digest || !digest[0])
                return error_set(err, EINVAL, "diff descriptor digest is required");
        r = metadata_content_info(ctx->db, ns, digest, &info, err);
        if (r < 0)
                return r;
        metadata_content_info_clear(&info);
        return content_blob_open(ctx->content, digest, ret_fd, &size, err);
}

int services_diff_apply_stream(struct services_ctx *ctx, const char *digest, struct image_layer_stream *stream,
                               const struct snapshot_mount *mounts, size_t nmounts, struct image_apply_result *ret,
                               struct error **err)
{
        int r;

        if (nmounts == 0)
                return error_set(err, EINVAL, "no mounts to apply to");
        if (nmounts == 1 && strcmp(mounts[0].type, "overlay") == 0 && option_value(&mounts[0], "upperdir=")) {
                /* The upper dir of an active overlay snapshot is exactly the layer's diff; the lower dirs
                 * give implicitly created directories their attributes and hard-linked lower files. */
                const char *low = option_value(&mounts[0], "lowerdir=");
                _cleanup_strv_free_ char **parents = low ? strv_split(low, ":") : NULL;
                r = apply_into(option_value(&mounts[0], "upperdir="), stream, true, parents, ret, err);
        } else if (nmounts == 1 && strcmp(mounts[0].type, "bind") == 0 && !has_option(&mounts[0], "ro")) {
                r = apply_into(mounts[0].source, stream, false, NULL, ret, err);
        } else {
                _cleanup_free_ char *base = xasprintf("%s/tmpmounts", ctx->root ? ctx->root : "/tmp");
                (void)mkdir(base, 0700);
                _cleanup_free_ char *dir = xasprintf("%s/apply-XXXXXX", base);
                if (!mkdtemp(dir))
                        return error_set(err, errno, "create temp mount dir in %s", base);
                r = snapshot_mount_all(mounts, nmounts, dir, err);
                if (r == 0) {
                        r = apply_into(dir, stream, false, NULL, ret, err);
                        struct error *e2 = NULL;
                        int u = snapshot_unmount(dir, 0, &e2);
                        if (u < 0)
                                (void)snapshot_unmount(dir, MNT_DETACH, NULL);
                        error_free(&e2);
                }
                (void)rmdir(dir);
        }
        if (r < 0)
                return error_wrap(err, "apply layer %s", digest);
        return 0;
}

/* A layer applied on its own only needs its decompression a little ahead of the tar reader. */
#define APPLY_AHEAD_BYTES (4u << 20)

int services_diff_apply(struct services_ctx *ctx, const char *ns, const char *media_type, const char *digest,
                        const struct snapshot_mount *mounts, size_t nmounts, struct image_apply_result *ret,
                        struct error **err)
{
        _cleanup_close_ int fd = -1;
        _cleanup_layer_stream_ struct image_layer_stream *stream = NULL;
        int r = services_diff_open_layer(ctx, ns, media_type, digest, &fd, err);
        if (r < 0)
                return r;
        if (nmounts == 0)
                return error_set(err, EINVAL, "no mounts to apply to");
        r = image_layer_stream_start(fd, IMAGE_APPLY_DEFAULT_MAX_BYTES, APPLY_AHEAD_BYTES, &stream, err);
        if (r < 0)
                return error_wrap(err, "apply layer %s", digest);
        return services_diff_apply_stream(ctx, digest, stream, mounts, nmounts, ret, err);
}

/* The pull pipeline's local sink: the daemon's namespaced content store, image records and leases
 * (metadata + content), used by image_pull when no other sink is given. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "image/pull.h"
#include "metadata/content.h"
#include "metadata/images.h"
#include "metadata/leases.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/strv.h"

static int local_has(void *sink, const char *digest, struct error **err)
{
        struct image_pull_local *l = sink;
        struct metadata_content_info info = {0};

        (void)err;
        if (metadata_content_info(l->db, l->ns, digest, &info, NULL) < 0)
                return -ENOENT;
        metadata_content_info_clear(&info);
        return 0;
}

/* containerd's content.Update with labels.<k> paths */
static int local_add_labels(void *sink, const char *digest, char *const *labels, struct error **err)
{
        struct image_pull_local *l = sink;
        struct metadata_content_info info = {0};
        _cleanup_strv_free_ char **paths = strv_new_empty();

        if (!labels || !labels[0])
                return 0;
        for (size_t i = 0; labels[i] && labels[i + 1]; i += 2)
                strv_extendf(&paths, "labels.%s", labels[i]);
        info.digest = (char *)digest;
        info.labels = (char **)labels;
        return metadata_content_update(l->db, l->ns, &info, paths, strv_length(paths), NULL, err);
}

static int local_read(void *sink, const char *digest, int64_t want, char **ret, size_t *ret_n, struct error **err)
{
        struct image_pull_local *l = sink;
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        int64_t size = 0;
        int k;

        if (want < 0 || want > (int64_t)IMAGE_MANIFEST_MAX_BYTES)
                return error_set(err, EFBIG, "%s: %lld bytes is too large", digest, (long long)want);
        k = content_blob_open(l->cs, digest, &fd, &size, err);
        if (k < 0)
                return k;
        if (size != want)
                return error_set(err, EIO, "%s: size %lld, expected %lld", digest, (long long)size, (long long)want);
        buf = xmalloc((size_t)size + 1);
        if (pread(fd, buf, (size_t)size, 0) != size)
                return error_set(err, EIO, "%s: short read", digest);
        buf[size] = 0;
        *ret = TAKE_PTR(buf);
        *ret_n = (size_t)size;
        return 0;
}

static int local_open(void *sink, const char *ref, int64_t total, const char *expected, const char *lease,
                      void **ret_writer, int64_t *ret_offset, struct error **err)
{
        struct image_pull_local *l = sink;
        struct metadata_content_writer *w = NULL;
        int k;

        k = metadata_content_writer_open(l->db, l->cs, l->ns, ref, total, expected, lease, &w, err);
        if (k < 0)
                return k;
        *ret_writer = w;
        /* a blob another namespace has gives a shared writer at offset == size: commit only */
        *ret_offset = metadata_content_writer_offset(w);
        return 0;
}

static int local_write(void *writer, const void *data, size_t n, struct error **err)
{
        return metadata_content_writer_write(writer, data, n, err);
}

static int local_truncate(void *writer, struct error **err)
{
        return metadata_content_writer_truncate(writer, 0, err);
}

static int local_commit(void *writer, int64_t size, const char *expected, char *const *labels, struct error **err)
{
        return metadata_content_writer_commit(writer, size, expected, labels, err);
}

static void local_close(void *writer)
{
        metadata_content_writer_close(writer);
}

static int local_abort(void *sink, const char *ref, struct error **err)
{
        struct image_pull_local *l = sink;

        return metadata_content_abort(l->cs, l->ns, ref, err);
}

static int local_image_put(void *sink, const char *name, const struct image_descriptor *target, struct error **err)
{
        struct image_pull_local *l = sink;
        struct metadata_image img = {0};
        int k;

        img.name = (char *)name;
        img.target.media_type = target->media_type;
        img.target.digest = target->digest;
        img.target.size = target->size;
        k = metadata_image_create(l->db, l->ns, &img, NULL, err);
        if (k == -EEXIST) {
                char *paths[] = {(char *)"target", NULL};
                error_free(err);
                k = metadata_image_update(l->db, l->ns, &img, paths, 1, NULL, err);
        }
        return k;
}

static int local_lease_create(void *sink, char **ret_id, struct error **err)
{
        struct image_pull_local *l = sink;
        _cleanup_free_ char *id = image_pull_lease_id();
        _cleanup_free_ char *exp = image_pull_lease_expiry();
        char *labels[] = {(char *)METADATA_LABEL_GC_EXPIRE, exp, NULL};
        int k;

        k = metadata_lease_create(l->db, l->ns, id, labels, NULL, err);
        if (k < 0)
                return k;
        *ret_id = TAKE_PTR(id);
        return 0;
}

static int local_lease_delete(void *sink, const char *id, struct error **err)
{
        struct image_pull_local *l = sink;

        return metadata_lease_delete(l->db, l->ns, id, err);
}

const struct image_pull_sink image_pull_local_sink = {
    .has = local_has,
    .add_labels = local_add_labels,
    .read = local_read,
    .open = local_open,
    .write = local_write,
    .truncate = local_truncate,
    .commit = local_commit,
    .close = local_close,
    .abort = local_abort,
    .image_put = local_image_put,
    .lease_create = local_lease_create,
    .lease_delete = local_lease_delete,
};

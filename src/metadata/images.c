#include "metadata/images.h"

#include <errno.h>
#include <string.h>

#include "metadata/metadata-internal.h"
#include "util/alloc.h"

enum {
        T_LABEL = 'L',
        T_MEDIA = 'm',
        T_DIGEST = 'd',
        T_SIZE = 's',
        T_ANNOT = 'a',
        T_CREATED = 'c',
        T_UPDATED = 'u',
};

void metadata_descriptor_clear(struct metadata_descriptor *d)
{
        free(d->media_type);
        free(d->digest);
        strv_free(d->annotations);
        memset(d, 0, sizeof(*d));
}

void metadata_image_clear(struct metadata_image *img)
{
        free(img->name);
        strv_free(img->labels);
        metadata_descriptor_clear(&img->target);
        memset(img, 0, sizeof(*img));
}

void metadata_image_list_free(struct metadata_image *imgs, size_t n)
{
        for (size_t i = 0; imgs && i < n; i++)
                metadata_image_clear(&imgs[i]);
        free(imgs);
}

static void encode(struct rec *r, const struct metadata_image *img)
{
        rec_put_labels(r, T_LABEL, img->labels);
        rec_put_str(r, T_MEDIA, img->target.media_type);
        rec_put_str(r, T_DIGEST, img->target.digest);
        rec_put_i64(r, T_SIZE, img->target.size);
        rec_put_labels(r, T_ANNOT, img->target.annotations);
        rec_put_i64(r, T_CREATED, img->created_at);
        rec_put_i64(r, T_UPDATED, img->updated_at);
}

static int decode(const MDB_val *v, const char *name, const void *ctx, void *ret)
{
        struct metadata_image *img = ret;
        (void)ctx;
        struct rec_iter it = {v->mv_data, v->mv_size};
        uint8_t tag;
        const uint8_t *d;
        size_t n, nl = 0, na = 0;
        int r;
        memset(img, 0, sizeof(*img));
        img->name = xstrdup(name);
        img->labels = xcalloc(1, sizeof(char *));
        while ((r = rec_next(&it, &tag, &d, &n)) > 0) {
                switch (tag) {
                case T_LABEL:
                        rec_label_add(&img->labels, &nl, d, n);
                        break;
                case T_MEDIA:
                        free(img->target.media_type);
                        img->target.media_type = rec_str(d, n);
                        break;
                case T_DIGEST:
                        free(img->target.digest);
                        img->target.digest = rec_str(d, n);
                        break;
                case T_SIZE:
                        img->target.size = rec_i64(d, n);
                        break;
                case T_ANNOT:
                        rec_label_add(&img->target.annotations, &na, d, n);
                        break;
                case T_CREATED:
                        img->created_at = rec_i64(d, n);
                        break;
                case T_UPDATED:
                        img->updated_at = rec_i64(d, n);
                        break;
                default:
                        break;
                }
        }
        return r < 0 ? -EIO : 0;
}

static void copy_image(struct metadata_image *dst, const struct metadata_image *src)
{
        dst->name = xstrdup(src->name);
        dst->labels = metadata_labels_dup(src->labels);
        dst->target.media_type = xstrdup(src->target.media_type);
        dst->target.digest = xstrdup(src->target.digest);
        dst->target.size = src->target.size;
        dst->target.annotations = metadata_labels_dup(src->target.annotations);
        dst->created_at = src->created_at;
        dst->updated_at = src->updated_at;
}

static bool valid_digest(const char *d)
{
        /* go-digest: algorithm ":" hex; we only store sha256 (and sha384/512 by length). */
        const char *c = d ? strchr(d, ':') : NULL;
        if (!c || c == d)
                return false;
        size_t hl = strlen(c + 1), want = 0;
        if (strncmp(d, "sha256:", 7) == 0)
                want = 64;
        else if (strncmp(d, "sha384:", 7) == 0)
                want = 96;
        else if (strncmp(d, "sha512:", 7) == 0)
                want = 128;
        if (!want || hl != want)
                return false;
        for (size_t i = 0; i < hl; i++)
                if (!((c[1 + i] >= '0' && c[1 + i] <= '9') || (c[1 + i] >= 'a' && c[1 + i] <= 'f')))
                        return false;
        return true;
}

static int validate(const struct metadata_image *img, struct error **err)
{
        if (!img->name || !img->name[0])
                return error_set(err, EINVAL, "image name must not be empty");
        if (metadata_labels_validate(img->labels, err) < 0)
                return error_wrap(err, "image.Labels");
        if (!valid_digest(img->target.digest))
                return error_set(err, EINVAL, "Target.Digest \"%s\" invalid: invalid checksum digest format",
                                 img->target.digest ? img->target.digest : "");
        if (img->target.size <= 0)
                return error_set(err, EINVAL, "Target.Size must be greater than zero");
        if (!img->target.media_type || !img->target.media_type[0])
                return error_set(err, EINVAL, "Target.MediaType must be set");
        return 0;
}

static int put(struct metadata_db *db, MDB_txn *txn, const char *ns, const struct metadata_image *img, unsigned flags,
               struct error **err)
{
        _cleanup_(rec_freep) struct rec r = {0};
        size_t kl;
        _cleanup_free_ void *key = mkey(&kl, 2, ns, img->name);
        encode(&r, img);
        _cleanup_free_ char *what = xasprintf("image \"%s\"", img->name);
        return mdb_record_put(db, txn, MT_IMAGES, key, kl, &r, flags, "image", what, err);
}

static bool image_field(const char *const *path, size_t n, const char **ret, void *ud);

static void clear(void *rec)
{
        metadata_image_clear(rec);
}

static bool match(const struct filter *f, void *rec)
{
        return filter_match(f, image_field, rec);
}

static const struct mdb_record_type image_record = {
        .table = MT_IMAGES,
        .kind = "image",
        .size = sizeof(struct metadata_image),
        .decode = decode,
        .clear = clear,
        .match = match,
};

static int get_txn(struct metadata_db *db, MDB_txn *txn, const char *ns, const char *name, struct metadata_image *ret,
                   struct error **err)
{
        size_t kl;
        _cleanup_free_ void *key = mkey(&kl, 2, ns, name);
        _cleanup_free_ char *what = xasprintf("image \"%s\"", name);
        return mdb_record_load(db, txn, &image_record, key, kl, name, NULL, what, ret, err);
}

int metadata_image_get(struct metadata_db *db, const char *ns, const char *name, struct metadata_image *ret,
                       struct error **err)
{
        _cleanup_(txn_abortp) MDB_txn *txn = NULL;
        int r = mdb_begin(db, false, &txn, err);
        if (r < 0)
                return r;
        return get_txn(db, txn, ns, name, ret, err);
}

static bool image_field(const char *const *path, size_t n, const char **ret, void *ud)
{
        const struct metadata_image *img = ud;
        if (n == 0)
                return false;
        if (strcmp(path[0], "name") == 0 && n == 1) {
                *ret = img->name;
                return img->name && img->name[0];
        }
        if (strcmp(path[0], "target") == 0 && n == 2) {
                if (strcmp(path[1], "digest") == 0)
                        *ret = img->target.digest;
                else if (strcmp(path[1], "mediatype") == 0)
                        *ret = img->target.media_type;
                else
                        return false;
                return *ret && (*ret)[0];
        }
        if (strcmp(path[0], "labels") == 0)
                return map_lookup(path, n, img->labels, ret);
        if (strcmp(path[0], "annotations") == 0)
                return map_lookup(path, n, img->target.annotations, ret);
        return false;
}

int metadata_image_list(struct metadata_db *db, const char *ns, const struct filter *f, struct metadata_image **ret,
                        size_t *ret_n, struct error **err)
{
        size_t plen;
        _cleanup_free_ char *prefix = ns_prefix(ns, &plen);
        return mdb_record_list(db, &image_record, prefix, plen, f, NULL, (void **)ret, ret_n, err);
}

int metadata_image_create(struct metadata_db *db, const char *ns, const struct metadata_image *img,
                          struct metadata_image *ret, struct error **err)
{
        _cleanup_(txn_abortp) MDB_txn *txn = NULL;
        struct metadata_image rec = {0};
        int r = validate(img, err);
        if (r < 0)
                return r;
        r = mdb_begin(db, true, &txn, err);
        if (r < 0)
                return r;
        r = ns_ensure_txn(db, txn, ns, err);
        if (r < 0)
                return r;
        copy_image(&rec, img);
        rec.created_at = rec.updated_at = metadata_now();
        r = put(db, txn, ns, &rec, MDB_NOOVERWRITE, err);
        if (r == 0)
                r = mdb_commit(TAKE_PTR(txn), err);
        if (r == 0 && ret)
                *ret = rec;
        else
                metadata_image_clear(&rec);
        return r;
}

int metadata_image_update(struct metadata_db *db, const char *ns, const struct metadata_image *img, char *const *paths,
                          size_t npaths, struct metadata_image *ret, struct error **err)
{
        _cleanup_(txn_abortp) MDB_txn *txn = NULL;
        struct metadata_image cur = {0};
        int r;
        if (!img->name || !img->name[0])
                return error_set(err, EINVAL, "image name is required for update");
        r = mdb_begin(db, true, &txn, err);
        if (r < 0)
                return r;
        r = get_txn(db, txn, ns, img->name, &cur, err);
        if (r < 0)
                return r;
        int64_t created = cur.created_at;
        if (npaths == 0) {
                metadata_image_clear(&cur);
                copy_image(&cur, img);
        }
        for (size_t i = 0; i < npaths; i++) {
                const char *p = paths[i];
                if (strncmp(p, "labels.", 7) == 0) {
                        metadata_labels_set(&cur.labels, p + 7, metadata_labels_get(img->labels, p + 7));
                } else if (strncmp(p, "annotations.", 12) == 0) {
                        metadata_labels_set(&cur.target.annotations, p + 12,
                                            metadata_labels_get(img->target.annotations, p + 12));
                } else if (strcmp(p, "labels") == 0) {
                        strv_free(cur.labels);
                        cur.labels = metadata_labels_dup(img->labels);
                } else if (strcmp(p, "target") == 0) {
                        metadata_descriptor_clear(&cur.target);
                        cur.target.media_type = xstrdup(img->target.media_type);
                        cur.target.digest = xstrdup(img->target.digest);
                        cur.target.size = img->target.size;
                        cur.target.annotations = metadata_labels_dup(img->target.annotations);
                } else if (strcmp(p, "annotations") == 0) {
                        strv_free(cur.target.annotations);
                        cur.target.annotations = metadata_labels_dup(img->target.annotations);
                } else {
                        metadata_image_clear(&cur);
                        return error_set(err, EINVAL, "cannot update \"%s\" field on image \"%s\"", p, img->name);
                }
        }
        r = validate(&cur, err);
        if (r == 0) {
                cur.created_at = created;
                cur.updated_at = metadata_now();
                r = put(db, txn, ns, &cur, 0, err);
        }
        if (r == 0)
                r = mdb_commit(TAKE_PTR(txn), err);
        if (r == 0 && ret)
                *ret = cur;
        else
                metadata_image_clear(&cur);
        return r;
}

int metadata_image_delete(struct metadata_db *db, const char *ns, const char *name, struct error **err)
{
        size_t kl;
        _cleanup_free_ void *key = mkey(&kl, 2, ns, name);
        _cleanup_free_ char *what = xasprintf("image \"%s\"", name);
        return mdb_record_delete(db, MT_IMAGES, key, kl, "image", what, err);
}

/* Images (containerd metadata/images.go). See db.h for the shared conventions. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "metadata/db.h"
#include "metadata/filters.h"

struct metadata_descriptor {
        char *media_type;
        char *digest;
        int64_t size;
        char **annotations; /* label-style pair vector, may be NULL */
};

struct metadata_image {
        char *name;
        char **labels; /* may be NULL */
        struct metadata_descriptor target;
        int64_t created_at;
        int64_t updated_at;
};

void metadata_descriptor_clear(struct metadata_descriptor *d);
void metadata_image_clear(struct metadata_image *img);
void metadata_image_list_free(struct metadata_image *imgs, size_t n);

/* -ENOENT `image "x": not found`. *ret is filled with new strings. */
int metadata_image_get(struct metadata_db *db, const char *ns, const char *name, struct metadata_image *ret,
                       struct error **err);
/* Images matching f (NULL = all; fields: name, target.digest, target.mediatype, labels.*, annotations.*),
 * sorted by name. */
int metadata_image_list(struct metadata_db *db, const char *ns, const struct filter *f, struct metadata_image **ret,
                        size_t *ret_n, struct error **err);
/* Validates like containerd (`image name must not be empty`, `Target.Digest "x" invalid: ...`,
 * `Target.Size must be greater than zero`, `Target.MediaType must be set`: -EINVAL), creates the namespace
 * if needed, -EEXIST `image "x": already exists`. ret (may be NULL) gets the stored record. */
int metadata_image_create(struct metadata_db *db, const char *ns, const struct metadata_image *img,
                          struct metadata_image *ret, struct error **err);
/* Update with field paths: labels, labels.<k>, target, annotations, annotations.<k>; none = replace all.
 * -ENOENT if missing, -EINVAL `cannot update "p" field on image "x"`. */
int metadata_image_update(struct metadata_db *db, const char *ns, const struct metadata_image *img, char *const *paths,
                          size_t npaths, struct metadata_image *ret, struct error **err);
/* -ENOENT if missing. Marks the database dirty for GC. */
int metadata_image_delete(struct metadata_db *db, const char *ns, const char *name, struct error **err);

/* Container records (containerd metadata/containers.go); the Containers service is built on this.
 * See db.h for conventions. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metadata/db.h"
#include "metadata/filters.h"

/* google.protobuf.Any: set when type_url is not NULL. */
struct metadata_any {
        char *type_url;
        uint8_t *value;
        size_t len;
};

struct metadata_extension {
        char *name;
        struct metadata_any value;
};

struct metadata_container {
        char *id;
        char **labels;
        char *image;
        char *runtime_name;
        struct metadata_any runtime_options;
        struct metadata_any spec;
        char *snapshotter;
        char *snapshot_key;
        int64_t created_at;
        int64_t updated_at;
        struct metadata_extension *extensions;
        size_t nextensions;
        char *sandbox;
};

void metadata_any_clear(struct metadata_any *a);
void metadata_any_copy(struct metadata_any *dst, const struct metadata_any *src);
void metadata_container_clear(struct metadata_container *c);
void metadata_container_list_free(struct metadata_container *c, size_t n);

/* -ENOENT `container "x": not found`. */
int metadata_container_get(struct metadata_db *db, const char *ns, const char *id, struct metadata_container *ret,
                           struct error **err);
/* Fields for f: id, image, runtime.name, snapshotter, snapshotkey, labels.*. Sorted by id. */
int metadata_container_list(struct metadata_db *db, const char *ns, const struct filter *f,
                            struct metadata_container **ret, size_t *ret_n, struct error **err);
/* -EINVAL `create container failed validation: container.Runtime.Name must be set` etc.,
 * -EEXIST `container "x": already exists`. Creates the namespace if needed. ret may be NULL. */
int metadata_container_create(struct metadata_db *db, const char *ns, const struct metadata_container *c,
                              struct metadata_container *ret, struct error **err);
/* Paths: labels, labels.<k>, spec, extensions, extensions.<k>, image, snapshotkey; none = those five, with
 * snapshotter and runtime.name immutable. -ENOENT, -EINVAL `cannot update "p" field on "x"`. */
int metadata_container_update(struct metadata_db *db, const char *ns, const struct metadata_container *c,
                              char *const *paths, size_t npaths, struct metadata_container *ret, struct error **err);
/* -ENOENT if missing; marks the db dirty for GC. */
int metadata_container_delete(struct metadata_db *db, const char *ns, const char *id, struct error **err);

/* Leases (containerd metadata/leases.go). A lease protects the resources attached to it from GC until it
 * is deleted or, with the label containerd.io/gc.expire (RFC 3339), until it expires. See db.h. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "metadata/db.h"
#include "metadata/filters.h"

#define METADATA_LABEL_GC_EXPIRE "containerd.io/gc.expire"

struct metadata_lease {
        char *id;
        char **labels;
        int64_t created_at;
};

/* type is "content" (id a digest), "ingests" (id an ingest ref) or "snapshots/<snapshotter>" (id a key). */
struct metadata_lease_resource {
        char *id;
        char *type;
};

void metadata_lease_clear(struct metadata_lease *l);
void metadata_lease_list_free(struct metadata_lease *l, size_t n);
void metadata_lease_resources_free(struct metadata_lease_resource *r, size_t n);

/* id validated as an identifier; -EEXIST `lease "x": already exists`. ret may be NULL. */
int metadata_lease_create(struct metadata_db *db, const char *ns, const char *id, char *const *labels,
                          struct metadata_lease *ret, struct error **err);
/* -ENOENT `lease "x": not found`. Its resources lose their protection (marks the db dirty for GC). */
int metadata_lease_delete(struct metadata_db *db, const char *ns, const char *id, struct error **err);
/* Leases matching f (fields: id, labels.*), sorted by id. */
int metadata_lease_list(struct metadata_db *db, const char *ns, const struct filter *f, struct metadata_lease **ret,
                        size_t *ret_n, struct error **err);
/* -ENOENT `lease "x": not found`; -EINVAL `invalid resource type x`; -ENOSYS `resource type x not supported yet`.
 * Adding an existing resource is a no-op. */
int metadata_lease_add_resource(struct metadata_db *db, const char *ns, const char *id,
                                const struct metadata_lease_resource *res, struct error **err);
int metadata_lease_delete_resource(struct metadata_db *db, const char *ns, const char *id,
                                   const struct metadata_lease_resource *res, struct error **err);
int metadata_lease_list_resources(struct metadata_db *db, const char *ns, const char *id,
                                  struct metadata_lease_resource **ret, size_t *ret_n, struct error **err);

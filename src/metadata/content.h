/* Namespaced view of the content store (containerd metadata/content.go). A blob is visible in a namespace
 * only once something in that namespace committed or referenced it; each namespace keeps its own labels and
 * times for it. Blobs that no namespace references are removed by GC (metadata/gc.h).
 * Blocking (fsync, disk I/O): call from the worker pool. Any thread. See db.h for conventions. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "content/store.h"
#include "metadata/db.h"
#include "metadata/filters.h"

struct metadata_content_info {
        char *digest;
        int64_t size;
        char **labels;
        int64_t created_at;
        int64_t updated_at;
};
void metadata_content_info_clear(struct metadata_content_info *i);
void metadata_content_info_list_free(struct metadata_content_info *i, size_t n);

/* -ENOENT `content digest sha256:..: not found` when the namespace does not reference it. */
int metadata_content_info(struct metadata_db *db, const char *ns, const char *digest, struct metadata_content_info *ret,
                          struct error **err);
/* Fields for f: digest, size, labels.* . Sorted by digest. */
int metadata_content_list(struct metadata_db *db, const char *ns, const struct filter *f,
                          struct metadata_content_info **ret, size_t *ret_n, struct error **err);
/* Paths: labels, labels.<k>; none = replace all labels. -EINVAL `cannot update "p" field on content info "d"`. */
int metadata_content_update(struct metadata_db *db, const char *ns, const struct metadata_content_info *info,
                            char *const *paths, size_t npaths, struct metadata_content_info *ret, struct error **err);
/* Removes the namespace's reference (the blob goes at the next GC). -ENOENT if not referenced. */
int metadata_content_delete(struct metadata_db *db, const char *ns, const char *digest, struct error **err);
/* Records that ns references a committed blob (adds it to lease when given). -EEXIST `content d: already
 * exists` if it already did (the lease still gets it). */
int metadata_content_ref_add(struct metadata_db *db, const char *ns, const char *digest, int64_t size,
                             char *const *labels, const char *lease, struct error **err);

/* --- namespaced writers (Content.Write) --- */
struct metadata_content_writer;

/* Opens a writer for (ns, ref). expected may be NULL. -EEXIST `content d: already exists` when ns already has
 * expected (the lease still gets it). If the blob exists in the store for another namespace, no data is needed:
 * commit just adds the reference (containerd's shared content policy). lease may be NULL. */
int metadata_content_writer_open(struct metadata_db *db, struct content_store *cs, const char *ns, const char *ref,
                                 int64_t total, const char *expected, const char *lease,
                                 struct metadata_content_writer **ret, struct error **err);
int metadata_content_writer_write(struct metadata_content_writer *w, const void *data, size_t n, struct error **err);
int metadata_content_writer_truncate(struct metadata_content_writer *w, int64_t size, struct error **err);
int64_t metadata_content_writer_offset(const struct metadata_content_writer *w);
char *metadata_content_writer_digest(const struct metadata_content_writer *w); /* new string */
/* Status with the caller's ref (not the store's internal one). */
void metadata_content_writer_status(const struct metadata_content_writer *w, struct content_status *st);
/* Verifies and commits, then adds the namespace reference with labels. -EBUSY on size/digest mismatch,
 * -EEXIST `content d: already exists` if the namespace already had it. */
int metadata_content_writer_commit(struct metadata_content_writer *w, int64_t size, const char *expected,
                                   char *const *labels, struct error **err);
void metadata_content_writer_close(struct metadata_content_writer *w); /* NULL-safe; keeps an ingest */
static inline void metadata_content_writer_closep(struct metadata_content_writer **w)
{
        if (*w)
                metadata_content_writer_close(*w);
}

/* Ingests of ns: status by ref (-ENOENT `ingest ref "x"`), list (f fields: ref), abort. */
int metadata_content_status(struct content_store *cs, const char *ns, const char *ref, struct content_status *ret,
                            struct error **err);
int metadata_content_list_statuses(struct content_store *cs, const char *ns, const struct filter *f,
                                   struct content_status **ret, size_t *ret_n, struct error **err);
void metadata_content_statuses_free(struct content_status *st, size_t n);
int metadata_content_abort(struct content_store *cs, const char *ns, const char *ref, struct error **err);

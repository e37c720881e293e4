/* Local content-addressed store (containerd content/local), not namespaced: the metadata layer
 * (metadata/content.h) decides what each namespace sees.
 *
 * Layout under the store root (<root>/io.containerd.content.v1.content):
 *   blobs/sha256/<hex>                       committed blobs, mode 0444
 *   ingest/<sha256(ref) hex>/{data,ref,startedat,updatedat,total}   writes in progress
 * A blob becomes visible only by rename(2) after its data was fsynced and verified, so a crash leaves
 * either nothing or an ingest that can be resumed or aborted.
 *
 * Thread-safety: every function may be called from any thread; a ref is locked by at most one open
 * writer at a time (-EAGAIN `ref x locked: unavailable` otherwise). Functions block on disk I/O: run
 * them on the worker pool from the loop. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/error.h"

struct content_store;
struct content_writer;

struct content_blob_info {
        char *digest; /* "sha256:<hex>" */
        int64_t size;
        int64_t created_at; /* ns since epoch (file mtime at commit) */
        int64_t updated_at;
};
void content_blob_info_clear(struct content_blob_info *i);

struct content_status {
        char *ref;
        int64_t offset;
        int64_t total;
        int64_t started_at; /* ns */
        int64_t updated_at; /* ns */
};
void content_status_clear(struct content_status *s);

/* Opens (creating blobs/ and ingest/ as needed) the store rooted at dir. */
int content_store_open(const char *dir, struct content_store **ret, struct error **err);
void content_store_free(struct content_store *cs); /* NULL-safe; no writer may be open */
const char *content_store_root(const struct content_store *cs);

/* -EINVAL for a malformed digest, -ENOENT `content digest sha256:..: not found`. */
int content_blob_info(struct content_store *cs, const char *digest, struct content_blob_info *ret, struct error **err);
bool content_blob_exists(struct content_store *cs, const char *digest);
/* Opens the blob read-only (O_CLOEXEC); *ret_fd owned by the caller. Read ranges with pread(2). */
int content_blob_open(struct content_store *cs, const char *digest, int *ret_fd, int64_t *ret_size, struct error **err);
/* Removes a blob. -ENOENT if missing. */
int content_blob_delete(struct content_store *cs, const char *digest, struct error **err);
/* Calls fn for every committed blob; a non-zero return from fn stops the walk and is returned. */
typedef int (*content_walk_fn)(const struct content_blob_info *info, void *userdata);
int content_blob_walk(struct content_store *cs, content_walk_fn fn, void *userdata, struct error **err);

/* Opens a writer for ref (any non-empty string), resuming an existing ingest at its offset (the data
 * already written is re-hashed). total > 0 records the expected size. expected may be NULL; if the blob
 * already exists -EEXIST `content sha256:..: already exists`. */
int content_writer_open(struct content_store *cs, const char *ref, int64_t total, const char *expected,
                        struct content_writer **ret, struct error **err);
/* Appends at the current offset. */
int content_writer_write(struct content_writer *w, const void *data, size_t n, struct error **err);
/* Only truncation to 0 is supported (containerd's restriction); -EINVAL otherwise. */
int content_writer_truncate(struct content_writer *w, int64_t size, struct error **err);
int64_t content_writer_offset(const struct content_writer *w);
/* Returns a new "sha256:<hex>" of the bytes written so far. */
char *content_writer_digest(const struct content_writer *w);
/* Fills *st (new strings). */
void content_writer_status(const struct content_writer *w, struct content_status *st);
/* Verifies size (if size > 0) and digest (if expected), fsyncs and renames into blobs/, removes the ingest.
 * -EBUSY (failed precondition) `unexpected commit size 3, expected 4` / `unexpected commit digest ..., expected ...`;
 * -EEXIST `content sha256:..: already exists` when the blob was already there (the ingest is removed).
 * On success *ret_digest (may be NULL) gets the committed digest. The writer stays open: close it. */
int content_writer_commit(struct content_writer *w, int64_t size, const char *expected, char **ret_digest,
                          struct error **err);
/* Releases the writer and its ref lock; an uncommitted ingest is kept for resuming. NULL-safe. */
void content_writer_close(struct content_writer *w);
static inline void content_writer_closep(struct content_writer **w)
{
        if (*w)
                content_writer_close(*w);
}

/* Status of an ingest by ref; -ENOENT `ingest ref "x": not found`. */
int content_ingest_status(struct content_store *cs, const char *ref, struct content_status *ret, struct error **err);
/* Removes an ingest; -ENOENT if missing; -EAGAIN if a writer holds it. */
int content_ingest_abort(struct content_store *cs, const char *ref, struct error **err);
/* Calls fn for every ingest; a non-zero return stops the walk. */
typedef int (*content_status_fn)(const struct content_status *st, void *userdata);
int content_ingest_walk(struct content_store *cs, content_status_fn fn, void *userdata, struct error **err);

/* Blob path relative to the store root ("blobs/sha256/<hex>"), new string; -EINVAL on a bad digest. */
int content_blob_relpath(const char *digest, char **ret, struct error **err);
/* Validates "sha256:<64 lowercase hex>". */
int content_digest_validate(const char *digest, struct error **err);

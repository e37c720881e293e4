/* LMDB-backed, namespaced metadata (containerd's metadata package).
 *
 * One LMDB environment under <root>/io.containerd.metadata.v1.lmdb/ with one named table per object kind.
 * Every mutation is one write transaction; readers use read-only transactions and never block writers or
 * each other. The environment is opened with MDB_NOTLS, so any thread may call any function here; LMDB
 * serialises writers. Write functions fsync on commit: call them from the worker pool when latency matters.
 *
 * Conventions shared by every metadata_* header:
 * - Labels are a NULL-terminated string vector of pairs {k1, v1, k2, v2, ..., NULL}, sorted by key when
 *   returned; free with strv_free(). An empty value means "no label" (containerd drops empty labels).
 * - Times are nanoseconds since the Unix epoch (int64_t).
 * - Errors: -errno with *err set, containerd wording (`image "x": not found`). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

struct metadata_db;

/* Opens (creating the directory 0700 and the files if needed) the database in dir. */
int metadata_db_open(const char *dir, struct metadata_db **ret, struct error **err);
/* Closes; NULL-safe. No other thread may be using db. */
void metadata_db_close(struct metadata_db *db);
static inline void metadata_db_closep(struct metadata_db **db)
{
        if (*db)
                metadata_db_close(*db);
}

/* Number of deletions since open that may have left garbage; GC workers compare it with what they saw. */
uint64_t metadata_db_dirty(struct metadata_db *db);

/* Current time in ns since the epoch (CLOCK_REALTIME). */
int64_t metadata_now(void);

/* containerd identifiers.Validate: [A-Za-z0-9]+([._-][A-Za-z0-9]+)*, at most 76 bytes. -EINVAL with
 * containerd's message (`identifier "x" must match ...`). */
int metadata_validate_identifier(const char *s, struct error **err);

/* containerd labels.Validate: key + value at most 4096 bytes. pairs may be NULL. */
int metadata_labels_validate(char *const *labels, struct error **err);
/* Value for key or NULL; borrowed from labels. */
const char *metadata_labels_get(char *const *labels, const char *key);
/* Sets (value non-empty) or removes (value NULL or "") key in *labels (which may be NULL). */
void metadata_labels_set(char ***labels, const char *key, const char *value);
/* Returns a new sorted copy without empty values; NULL in gives NULL. */
char **metadata_labels_dup(char *const *labels);
size_t metadata_labels_count(char *const *labels); /* pairs */

/* Applies an update's field paths to labels, the way containerd's stores do:
 * no paths: *cur = copy of req (callers with other fields handle that themselves);
 * "labels": replace all; "labels.<k>": set or (empty/missing value) delete one key.
 * Paths that do not start with "labels" are skipped and counted in *ret_other (may be NULL). */
void metadata_labels_apply(char ***cur, char *const *req, char *const *paths, size_t npaths, size_t *ret_other);

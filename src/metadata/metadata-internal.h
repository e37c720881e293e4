/* Shared inside src/metadata only: LMDB handles, record codec and key helpers. */
#pragma once

#include <lmdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metadata/db.h"
#include "util/cleanup.h"
#include "util/error.h"

enum mdb_table {
        MT_NAMESPACES,      /* ns -> record(labels) */
        MT_IMAGES,          /* ns \0 name -> image record */
        MT_CONTENT,         /* ns \0 digest -> content ref record */
        MT_LEASES,          /* ns \0 id -> lease record */
        MT_LEASE_RESOURCES, /* ns \0 lease \0 type \0 id -> "" */
        MT_CONTAINERS,      /* ns \0 id -> container record */
        MT_SNAPSHOTS,       /* ns \0 snapshotter \0 key -> snapshot ref record */
        MT_META,            /* global keys: schema version, gc state */
        MT_COUNT,
};

struct metadata_db {
        MDB_env *env;
        MDB_dbi dbi[MT_COUNT];
        char *path;
        /* Bumped (atomically) by every deletion that can leave garbage; GC compares it. */
        uint64_t dirty;
        /* Content commits (blob rename + namespace reference) hold it shared; the GC blob sweep holds it
         * exclusively, so a blob is never removed between its commit and its reference. */
        pthread_rwlock_t gc_lock;
        pthread_mutex_t gc_run; /* one collection at a time */
};

void metadata_gc_lock_shared(struct metadata_db *db);
void metadata_gc_unlock_shared(struct metadata_db *db);

static inline void txn_abortp(MDB_txn **t)
{
        if (*t)
                mdb_txn_abort(*t);
}
static inline void cursor_closep(MDB_cursor **c)
{
        if (*c)
                mdb_cursor_close(*c);
}

/* Maps an LMDB return code to -errno with a message. */
int mdb_err(struct error **err, int rc, const char *what);
int mdb_begin(struct metadata_db *db, bool write, MDB_txn **ret, struct error **err);
int mdb_commit(MDB_txn *txn, struct error **err); /* consumes txn */

/* --- record codec: a sequence of [u8 tag][u32 le length][bytes] fields --- */
struct rec {
        uint8_t *p;
        size_t len, cap;
};
void rec_put(struct rec *r, uint8_t tag, const void *data, size_t n);
void rec_put_str(struct rec *r, uint8_t tag, const char *s); /* NULL writes nothing */
void rec_put_i64(struct rec *r, uint8_t tag, int64_t v);
/* Labels as one field per pair: "key\0value". */
void rec_put_labels(struct rec *r, uint8_t tag, char *const *labels);
static inline void rec_freep(struct rec *r)
{
        free(r->p);
        r->p = NULL;
}

struct rec_iter {
        const uint8_t *p;
        size_t left;
};
/* Returns 1 with a field, 0 at the end, -EIO on a corrupt record. */
int rec_next(struct rec_iter *it, uint8_t *tag, const uint8_t **data, size_t *n);
char *rec_str(const uint8_t *data, size_t n);   /* new string */
int64_t rec_i64(const uint8_t *data, size_t n); /* 0 if malformed */
/* Appends the pair to a label strv being built (n = current pair count). */
void rec_label_add(char ***labels, size_t *npairs, const uint8_t *data, size_t n);

/* --- keys: components joined with NUL --- */
/* Builds a key from n components into a new buffer; *ret_len includes the separators but no trailing NUL. */
void *mkey(size_t *ret_len, size_t n, ...);
/* Stores rec under key in table. With MDB_NOOVERWRITE an existing key gives -EEXIST `<what>`; other LMDB failures
 * are reported as `metadata put <kind>`. what is the object as messages name it (`container "x"`). */
int mdb_record_put(struct metadata_db *db, MDB_txn *txn, enum mdb_table table, const void *key, size_t kl,
                   const struct rec *rec, unsigned flags, const char *kind, const char *what, struct error **err);
/* Looks key up in table: -ENOENT `<what>` when absent, `metadata get <kind>` for other failures. *ret borrows
 * from the transaction. */
int mdb_record_get(struct metadata_db *db, MDB_txn *txn, enum mdb_table table, const void *key, size_t kl,
                   MDB_val *ret, const char *kind, const char *what, struct error **err);
/* How one kind of record is decoded, cleared and matched against a filter, so get and list are written once. */
struct filter;
struct mdb_record_type {
        enum mdb_table table;
        const char *kind; /* names LMDB failures: `metadata get <kind>` */
        size_t size;      /* sizeof the decoded struct */
        /* Fills *ret (completely, even when it fails, so clear is safe); name is the key's last component, ctx what
         * the caller passed to load/list. Returns < 0 on a corrupt record. */
        int (*decode)(const MDB_val *val, const char *name, const void *ctx, void *ret);
        void (*clear)(void *rec);
        bool (*match)(const struct filter *f, void *rec);
};
/* Gets key and decodes it into ret (may be NULL: existence check only). -ENOENT `<what>` when absent, -EIO
 * `<what>: corrupt record` when it does not decode. */
int mdb_record_load(struct metadata_db *db, MDB_txn *txn, const struct mdb_record_type *t, const void *key, size_t kl,
                    const char *name, const void *ctx, const char *what, void *ret, struct error **err);
/* Decodes every record under prefix that matches f into a new array of t->size elements (*ret, *ret_n); keys are
 * prefix + name. */
int mdb_record_list(struct metadata_db *db, const struct mdb_record_type *t, const void *prefix, size_t plen,
                    const struct filter *f, const void *ctx, void **ret, size_t *ret_n, struct error **err);
/* Deletes key from table inside txn: -ENOENT `<what>` when absent, `delete <kind>` for LMDB failures. */
int mdb_record_del(struct metadata_db *db, MDB_txn *txn, enum mdb_table table, const void *key, size_t kl,
                   const char *kind, const char *what, struct error **err);
/* The same in its own write transaction; a deletion marks the database dirty for GC. */
int mdb_record_delete(struct metadata_db *db, enum mdb_table table, const void *key, size_t kl, const char *kind,
                      const char *what, struct error **err);
/* Splits key into up to max components (borrowed-by-copy into new strings in out[]); returns count. */
size_t mkey_split(const void *key, size_t len, char **out, size_t max);
/* True if key starts with prefix bytes. */
bool mkey_has_prefix(const MDB_val *key, const void *prefix, size_t plen);

/* Ensures the namespace record exists inside txn (implicit creation). */
int ns_ensure_txn(struct metadata_db *db, MDB_txn *txn, const char *ns, struct error **err);
/* Adds a resource to a lease inside txn; -ENOENT if the lease does not exist. lease may be NULL (no-op). */
int lease_add_resource_txn(struct metadata_db *db, MDB_txn *txn, const char *ns, const char *lease, const char *type,
                           const char *id, struct error **err);
/* Deletes every key of table that starts with prefix. */
int mdb_delete_prefix(struct metadata_db *db, MDB_txn *txn, enum mdb_table t, const void *prefix, size_t plen,
                      struct error **err);
bool mdb_has_prefix(struct metadata_db *db, MDB_txn *txn, enum mdb_table t, const void *prefix, size_t plen);
void metadata_mark_dirty(struct metadata_db *db);

/* Calls fn for each key/value of table starting with prefix (plen > 0); fn returning non-zero stops and
 * that value is returned. */
typedef int (*mdb_iter_fn)(const MDB_val *key, const MDB_val *val, void *userdata);
int mdb_foreach_prefix(struct metadata_db *db, MDB_txn *txn, enum mdb_table t, const void *prefix, size_t plen,
                       mdb_iter_fn fn, void *userdata);
/* "ns\0" prefix, new buffer; *plen set. */
char *ns_prefix(const char *ns, size_t *plen);
/* Joins path components with "." into a new string. */
char *path_join(const char *const *path, size_t n, size_t from);
/* Looks key (joined path from index 1) up in a label vector. */
bool map_lookup(const char *const *path, size_t npath, char *const *labels, const char **ret);

/* RFC 3339 (with optional fraction and Z or +hh:mm) to ns since the epoch; -EINVAL if malformed. */
int parse_rfc3339(const char *s, int64_t *ret);

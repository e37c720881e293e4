/* Record get and list written once for every kind of metadata record (see struct mdb_record_type). */
#include <errno.h>
#include <string.h>

#include "metadata/metadata-internal.h"
#include "util/alloc.h"
#include "util/filters.h"

int mdb_record_load(struct metadata_db *db, MDB_txn *txn, const struct mdb_record_type *t, const void *key, size_t kl,
                    const char *name, const void *ctx, const char *what, void *ret, struct error **err)
{
        MDB_val v;
        int r = mdb_record_get(db, txn, t->table, key, kl, &v, t->kind, what, err);
        if (r < 0 || !ret)
                return r;
        if (t->decode(&v, name, ctx, ret) < 0) {
                t->clear(ret);
                return error_set(err, EIO, "%s: corrupt record", what);
        }
        return 0;
}

struct list_ctx {
        const struct mdb_record_type *t;
        const struct filter *f;
        const void *ctx;
        size_t plen;
        char *out;
        size_t n;
};

static int list_one(const MDB_val *k, const MDB_val *v, void *ud)
{
        struct list_ctx *c = ud;
        _cleanup_free_ char *name = xstrndup((const char *)k->mv_data + c->plen, k->mv_size - c->plen);
        c->out = xreallocarray(c->out, c->n + 1, c->t->size);
        void *slot = c->out + c->n * c->t->size;
        /* A record that does not decode is skipped, as containerd skips what it cannot read in a listing. */
        if (c->t->decode(v, name, c->ctx, slot) < 0 || !c->t->match(c->f, slot)) {
                c->t->clear(slot);
                return 0;
        }
        c->n++;
        return 0;
}

int mdb_record_list(struct metadata_db *db, const struct mdb_record_type *t, const void *prefix, size_t plen,
                    const struct filter *f, const void *ctx, void **ret, size_t *ret_n, struct error **err)
{
        _cleanup_(txn_abortp) MDB_txn *txn = NULL;
        struct list_ctx c = {.t = t, .f = f, .ctx = ctx, .plen = plen};
        int r = mdb_begin(db, false, &txn, err);
        if (r < 0)
                return r;
        (void)mdb_foreach_prefix(db, txn, t->table, prefix, plen, list_one, &c);
        *ret = c.out;
        *ret_n = c.n;
        return 0;
}

int mdb_record_del(struct metadata_db *db, MDB_txn *txn, enum mdb_table table, const void *key, size_t kl,
                   const char *kind, const char *what, struct error **err)
{
        MDB_val k = {kl, (void *)key};
        int rc = mdb_del(txn, db->dbi[table], &k, NULL);
        if (rc == MDB_NOTFOUND)
                return error_set(err, ENOENT, "%s", what);
        if (rc != 0) {
                _cleanup_free_ char *op = xasprintf("delete %s", kind);
                return mdb_err(err, rc, op);
        }
        return 0;
}

int mdb_record_delete(struct metadata_db *db, enum mdb_table table, const void *key, size_t kl, const char *kind,
                      const char *what, struct error **err)
{
        _cleanup_(txn_abortp) MDB_txn *txn = NULL;
        int r = mdb_begin(db, true, &txn, err);
        if (r < 0)
                return r;
        r = mdb_record_del(db, txn, table, key, kl, kind, what, err);
        if (r < 0)
                return r;
        r = mdb_commit(TAKE_PTR(txn), err);
        if (r == 0)
                metadata_mark_dirty(db);
        return r;
}

#include "metadata/snapshots.h"

#include <errno.h>
#include <string.h>

#include "metadata/metadata-internal.h"
#include "util/alloc.h"

enum { T_LABEL = 'L', T_BACKEND = 'b', T_PARENT = 'p', T_KIND = 'k', T_CREATED = 'c', T_UPDATED = 'u' };

void metadata_snapshot_ref_clear(struct metadata_snapshot_ref *r)
{
        free(r->snapshotter);
        free(r->key);
        free(r->backend_key);
        free(r->parent);
        free(r->kind);
        strv_free(r->labels);
        memset(r, 0, sizeof(*r));
}

void metadata_snapshot_ref_list_free(struct metadata_snapshot_ref *r, size_t n)
{
        for (size_t i = 0; r && i < n; i++)
                metadata_snapshot_ref_clear(&r[i]);
        free(r);
}

/* ctx is the snapshotter's name. */
static int decode(const MDB_val *v, const char *key, const void *ctx, void *ret)
{
        const char *snapshotter = ctx;
        struct metadata_snapshot_ref *s = ret;
        struct rec_iter it = {v->mv_data, v->mv_size};
        uint8_t tag;
        const uint8_t *d;
        size_t n, nl = 0;
        int r;
        memset(s, 0, sizeof(*s));
        s->snapshotter = xstrdup(snapshotter);
        s->key = xstrdup(key);
        s->labels = xcalloc(1, sizeof(char *));
        while ((r = rec_next(&it, &tag, &d, &n)) > 0) {
                switch (tag) {
                case T_LABEL:
                        rec_label_add(&s->labels, &nl, d, n);
                        break;
                case T_BACKEND:
                        free(s->backend_key);
                        s->backend_key = rec_str(d, n);
                        break;
                case T_PARENT:
                        free(s->parent);
                        s->parent = rec_str(d, n);
                        break;
                case T_KIND:
                        free(s->kind);
                        s->kind = rec_str(d, n);
                        break;
                case T_CREATED:
                        s->created_at = rec_i64(d, n);
                        break;
                case T_UPDATED:
                        s->updated_at = rec_i64(d, n);
                        break;
                default:
                        break;
                }
        }
        return r < 0 ? -EIO : 0;
}

static int put(struct metadata_db *db, MDB_txn *txn, const char *ns, const struct metadata_snapshot_ref *s,
               unsigned flags, struct error **err)
{
        _cleanup_(rec_freep) struct rec r = {0};
        size_t kl;
        _cleanup_free_ void *key = mkey(&kl, 3, ns, s->snapshotter, s->key);
        rec_put_labels(&r, T_LABEL, s->labels);
        rec_put_str(&r, T_BACKEND, s->backend_key);
        if (s->parent && s->parent[0])
                rec_put_str(&r, T_PARENT, s->parent);
        rec_put_str(&r, T_KIND, s->kind);
        rec_put_i64(&r, T_CREATED, s->created_at);
        rec_put_i64(&r, T_UPDATED, s->updated_at);
        _cleanup_free_ char *what = xasprintf("snapshot \"%s\"", s->key);
        return mdb_record_put(db, txn, MT_SNAPSHOTS, key, kl, &r, flags, "snapshot", what, err);
}

static bool snap_field(const char *const *path, size_t n, const char **ret, void *ud);

static void clear(void *rec)
{
        metadata_snapshot_ref_clear(rec);
}

static bool match(const struct filter *f, void *rec)
{
        return filter_match(f, snap_field, rec);
}

static const struct mdb_record_type snapshot_record = {
        .table = MT_SNAPSHOTS,
        .kind = "snapshot",
        .size = sizeof(struct metadata_snapshot_ref),
        .decode = decode,
        .clear = clear,
        .match = match,
};

static int get_txn(struct metadata_db *db, MDB_txn *txn, const char *ns, const char *snapshotter, const char *key,
                   struct metadata_snapshot_ref *ret, struct error **err)
{
        size_t kl;
        _cleanup_free_ void *k0 = mkey(&kl, 3, ns, snapshotter, key);
        _cleanup_free_ char *what = xasprintf("snapshot \"%s\"", key);
        return mdb_record_load(db, txn, &snapshot_record, k0, kl, key, snapshotter, what, ret, err);
}

static int add_txn(struct metadata_db *db, MDB_txn *txn, const char *ns, const struct metadata_snapshot_ref *ref,
                   const char *lease, struct error **err)
{
        int r;
        if (!ref->snapshotter || !ref->snapshotter[0] || !ref->key || !ref->key[0])
                return error_set(err, EINVAL, "snapshotter and key must be set");
        r = metadata_labels_validate(ref->labels, err);
        if (r < 0)
                return error_wrap(err, "snapshot.Labels");
        r = ns_ensure_txn(db, txn, ns, err);
        if (r < 0)
                return r;
        if (ref->parent && ref->parent[0]) {
                r = get_txn(db, txn, ns, ref->snapshotter, ref->parent, NULL, NULL);
                if (r < 0)
                        return error_set(err, ENOENT, "parent snapshot \"%s\"", ref->parent);
        }
        _cleanup_free_ char *type = xasprintf("snapshots/%s", ref->snapshotter);
        r = lease_add_resource_txn(db, txn, ns, lease, type, ref->key, err);
        if (r < 0)
                return r;
        struct metadata_snapshot_ref rec = *ref;
        _cleanup_strv_free_ char **l = metadata_labels_dup(ref->labels);
        rec.labels = l;
        rec.created_at = rec.updated_at = metadata_now();
        return put(db, txn, ns, &rec, MDB_NOOVERWRITE, err);
}

int metadata_snapshot_ref_add(struct metadata_db *db, const char *ns, const struct metadata_snapshot_ref *ref,
                              const char *lease, struct error **err)
{
        _cleanup_(txn_abortp) MDB_txn *txn = NULL;
        int r = mdb_begin(db, true, &txn, err);
        if (r < 0)
                return r;
        r = add_txn(db, txn, ns, ref, lease, err);
        if (r < 0)
                return r;
        return mdb_commit(TAKE_PTR(txn), err);
}

int metadata_snapshot_ref_get(struct metadata_db *db, const char *ns, const char *snapshotter, const char *key,
                              struct metadata_snapshot_ref *ret, struct error **err)
{
        _cleanup_(txn_abortp) MDB_txn *txn = NULL;
        int r = mdb_begin(db, false, &txn, err);
        if (r < 0)
                return r;
        return get_txn(db, txn, ns, snapshotter, key, ret, err);
}

int metadata_snapshot_ref_update(struct metadata_db *db, const char *ns, const char *snapshotter, const char *key,
                                 char *const *labels, char *const *paths, size_t npaths,
                                 struct metadata_snapshot_ref *ret, struct error **err)
{
        _cleanup_(txn_abortp) MDB_txn *txn = NULL;
        struct metadata_snapshot_ref cur;
        size_t other = 0;
        for (size_t i = 0; i < npaths; i++)
                if (strcmp(paths[i], "labels") != 0 && strncmp(paths[i], "labels.", 7) != 0)
                        return error_set(err, EINVAL, "cannot update %s field on snapshot \"%s\"", paths[i], key);
        int r = metadata_labels_validate(labels, err);
        if (r < 0)
                return error_wrap(err, "snapshot.Labels");
        r = mdb_begin(db, true, &txn, err);
        if (r < 0)
                return r;
        r = get_txn(db, txn, ns, snapshotter, key, &cur, err);
        if (r < 0)
                return r;
        metadata_labels_apply(&cur.labels, labels, paths, npaths, &other);
        cur.updated_at = metadata_now();
        r = put(db, txn, ns, &cur, 0, err);
        if (r == 0)
                r = mdb_commit(TAKE_PTR(txn), err);
        if (r == 0) {
                metadata_mark_dirty(db);
                if (ret) {
                        *ret = cur;
                        return 0;
                }
        }
        metadata_snapshot_ref_clear(&cur);
        return r;
}

struct child_ctx {
        const char *key;
        bool found;
};

static int child_cb(const MDB_val *k, const MDB_val *v, void *ud)
{
        struct child_ctx *c = ud;
        struct rec_iter it = {v->mv_data, v->mv_size};
        uint8_t tag;
        const uint8_t *d;
        size_t n;
        (void)k;
        while (rec_next(&it, &tag, &d, &n) > 0)
                if (tag == T_PARENT && n == strlen(c->key) && memcmp(d, c->key, n) == 0) {
                        c->found = true;
                        return 1;
                }
        return 0;
}

static int remove_txn(struct metadata_db *db, MDB_txn *txn, const char *ns, const char *snapshotter, const char *key,
                      bool check_children, struct error **err)
{
        size_t kl, pl;
        _cleanup_free_ void *k0 = mkey(&kl, 3, ns, snapshotter, key);
        if (check_children) {
                _cleanup_free_ void *prefix = mkey(&pl, 3, ns, snapshotter, "");
                struct child_ctx c = {.key = key};
                (void)mdb_foreach_prefix(db, txn, MT_SNAPSHOTS, prefix, pl, child_cb, &c);
                if (c.found)
                        return error_set(err, EBUSY, "cannot remove snapshot with child");
        }
        _cleanup_free_ char *what = xasprintf("snapshot \"%s\"", key);
        return mdb_record_del(db, txn, MT_SNAPSHOTS, k0, kl, "snapshot", what, err);
}

int metadata_snapshot_ref_commit(struct metadata_db *db, const char *ns, const char *snapshotter, const char *key,
                                 const char *name, const char *backend_key, char *const *labels, const char *lease,
                                 struct error **err)
{
        _cleanup_(txn_abortp) MDB_txn *txn = NULL;
        struct metadata_snapshot_ref cur;
        int r = mdb_begin(db, true, &txn, err);
        if (r < 0)
                return r;
        r = get_txn(db, txn, ns, snapshotter, key, &cur, err);
        if (r < 0)
                return r;
        r = remove_txn(db, txn, ns, snapshotter, key, true, err);
        if (r == 0) {
                struct metadata_snapshot_ref n = {.snapshotter = cur.snapshotter,
                                                  .key = (char *)name,
                                                  .backend_key = (char *)backend_key,
                                                  .parent = cur.parent,
                                                  .kind = "committed",
                                                  .labels = (char **)labels};
                r = add_txn(db, txn, ns, &n, lease, err);
        }
        metadata_snapshot_ref_clear(&cur);
        if (r < 0)
                return r;
        return mdb_commit(TAKE_PTR(txn), err);
}

int metadata_snapshot_ref_remove(struct metadata_db *db, const char *ns, const char *snapshotter, const char *key,
                                 struct error **err)
{
        _cleanup_(txn_abortp) MDB_txn *txn = NULL;
        int r = mdb_begin(db, true, &txn, err);
        if (r < 0)
                return r;
        r = remove_txn(db, txn, ns, snapshotter, key, true, err);
        if (r < 0)
                return r;
        r = mdb_commit(TAKE_PTR(txn), err);
        if (r == 0)
                metadata_mark_dirty(db);
        return r;
}

static bool snap_field(const char *const *path, size_t n, const char **ret, void *ud)
{
        const struct metadata_snapshot_ref *s = ud;
        const char *v = NULL;
        if (n >= 2 && strcmp(path[0], "labels") == 0)
                return map_lookup(path, n, s->labels, ret);
        if (n != 1)
                return false;
        if (strcmp(path[0], "name") == 0)
                v = s->key;
        else if (strcmp(path[0], "parent") == 0)
                v = s->parent;
        else if (strcmp(path[0], "kind") == 0)
                v = s->kind;
        if (!v || !v[0])
                return false;
        *ret = v;
        return true;
}

int metadata_snapshot_ref_list(struct metadata_db *db, const char *ns, const char *snapshotter, const struct filter *f,
                               struct metadata_snapshot_ref **ret, size_t *ret_n, struct error **err)
{
        size_t plen;
        _cleanup_free_ void *prefix = mkey(&plen, 3, ns, snapshotter, "");
        return mdb_record_list(db, &snapshot_record, prefix, plen, f, snapshotter, (void **)ret, ret_n, err);
}

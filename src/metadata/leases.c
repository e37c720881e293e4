#include "metadata/leases.h"

#include <errno.h>
#include <string.h>

#include "metadata/metadata-internal.h"
#include "util/alloc.h"

enum { T_LABEL = 'L', T_CREATED = 'c' };

void metadata_lease_clear(struct metadata_lease *l)
{
        free(l->id);
        strv_free(l->labels);
        memset(l, 0, sizeof(*l));
}

void metadata_lease_list_free(struct metadata_lease *l, size_t n)
{
        for (size_t i = 0; l && i < n; i++)
                metadata_lease_clear(&l[i]);
        free(l);
}

void metadata_lease_resources_free(struct metadata_lease_resource *r, size_t n)
{
        for (size_t i = 0; r && i < n; i++) {
                free(r[i].id);
                free(r[i].type);
        }
        free(r);
}

static int decode(const MDB_val *v, const char *id, const void *ctx, void *ret)
{
        struct metadata_lease *l = ret;
        (void)ctx;
        struct rec_iter it = {v->mv_data, v->mv_size};
        uint8_t tag;
        const uint8_t *d;
        size_t n, nl = 0;
        int r;
        memset(l, 0, sizeof(*l));
        l->id = xstrdup(id);
        l->labels = xcalloc(1, sizeof(char *));
        while ((r = rec_next(&it, &tag, &d, &n)) > 0) {
                if (tag == T_LABEL)
                        rec_label_add(&l->labels, &nl, d, n);
                else if (tag == T_CREATED)
                        l->created_at = rec_i64(d, n);
        }
        return r < 0 ? -EIO : 0;
}

int metadata_lease_create(struct metadata_db *db, const char *ns, const char *id, char *const *labels,
                          struct metadata_lease *ret, struct error **err)
{
        _cleanup_(txn_abortp) MDB_txn *txn = NULL;
        _cleanup_(rec_freep) struct rec rec = {0};
        /* containerd (metadata/leases.go) only requires a non-empty ID: ctr generates IDs such as
         * "602286437--w4v" that are not identifiers. Bounded so a key stays small. */
        if (!id || !*id)
                return error_set(err, EINVAL, "lease id must be provided");
        if (strlen(id) > 1024)
                return error_set(err, EINVAL, "lease id is longer than 1024 bytes");
        int r = metadata_labels_validate(labels, err);
        if (r < 0)
                return error_wrap(err, "lease.Labels");
        r = mdb_begin(db, true, &txn, err);
        if (r < 0)
                return r;
        r = ns_ensure_txn(db, txn, ns, err);
        if (r < 0)
                return r;
        int64_t now = metadata_now();
        _cleanup_strv_free_ char **l = metadata_labels_dup(labels);
        rec_put_labels(&rec, T_LABEL, l);
        rec_put_i64(&rec, T_CREATED, now);
        size_t kl;
        _cleanup_free_ void *key = mkey(&kl, 2, ns, id);
        MDB_val k = {kl, key}, v = {rec.len, rec.p};
        int rc = mdb_put(txn, db->dbi[MT_LEASES], &k, &v, MDB_NOOVERWRITE);
        if (rc == MDB_KEYEXIST)
                return error_set(err, EEXIST, "lease \"%s\"", id);
        if (rc != 0)
                return mdb_err(err, rc, "put lease");
        r = mdb_commit(TAKE_PTR(txn), err);
        if (r == 0 && ret) {
                ret->id = xstrdup(id);
                ret->labels = l ? TAKE_PTR(l) : xcalloc(1, sizeof(char *));
                ret->created_at = now;
        }
        return r;
}

int metadata_lease_delete(struct metadata_db *db, const char *ns, const char *id, struct error **err)
{
        _cleanup_(txn_abortp) MDB_txn *txn = NULL;
        size_t kl;
        _cleanup_free_ void *key = mkey(&kl, 2, ns, id);
        _cleanup_free_ char *what = xasprintf("lease \"%s\"", id);
        int r = mdb_begin(db, true, &txn, err);
        if (r < 0)
                return r;
        r = mdb_record_del(db, txn, MT_LEASES, key, kl, "lease", what, err);
        if (r < 0)
                return r;
        _cleanup_free_ void *prefix = mkey(&kl, 3, ns, id, "");
        r = mdb_delete_prefix(db, txn, MT_LEASE_RESOURCES, prefix, kl, err);
        if (r < 0)
                return r;
        r = mdb_commit(TAKE_PTR(txn), err);
        if (r == 0)
                metadata_mark_dirty(db);
        return r;
}

static bool lease_field(const char *const *path, size_t n, const char **ret, void *ud)
{
        const struct metadata_lease *l = ud;
        if (n == 1 && strcmp(path[0], "id") == 0) {
                *ret = l->id;
                return l->id[0] != '\0';
        }
        if (n >= 2 && strcmp(path[0], "labels") == 0)
                return map_lookup(path, n, l->labels, ret);
        return false;
}

static void clear(void *rec)
{
        metadata_lease_clear(rec);
}

static bool match(const struct filter *f, void *rec)
{
        return filter_match(f, lease_field, rec);
}

static const struct mdb_record_type lease_record = {
        .table = MT_LEASES,
        .kind = "lease",
        .size = sizeof(struct metadata_lease),
        .decode = decode,
        .clear = clear,
        .match = match,
};

int metadata_lease_list(struct metadata_db *db, const char *ns, const struct filter *f, struct metadata_lease **ret,
                        size_t *ret_n, struct error **err)
{
        size_t plen;
        _cleanup_free_ char *prefix = ns_prefix(ns, &plen);
        return mdb_record_list(db, &lease_record, prefix, plen, f, NULL, (void **)ret, ret_n, err);
}

static int check_resource(const struct metadata_lease_resource *res, struct error **err)
{
        const char *t = res->type ? res->type : "";
        if (strcmp(t, "content") == 0) {
                const char *c = res->id ? strchr(res->id, ':') : NULL;
                if (!c || strncmp(res->id, "sha256:", 7) != 0 || strlen(c + 1) != 64)
                        return error_set(err, EINVAL, "invalid content resource id %s: invalid checksum digest format",
                                         res->id ? res->id : "");
                return 0;
        }
        if (strcmp(t, "ingests") == 0)
                return 0;
        if (strncmp(t, "snapshots", 9) == 0 && (t[9] == '/' || t[9] == '\0')) {
                if (t[9] != '/' || !t[10] || strchr(t + 10, '/'))
                        return error_set(err, EINVAL, "invalid snapshot resource type %s", t);
                return 0;
        }
        if (strncmp(t, "content/", 8) == 0 || strncmp(t, "ingests/", 8) == 0)
                return error_set(err, EINVAL, "invalid resource type %s", t);
        return error_set(err, ENOSYS, "resource type %s not supported yet", t);
}

static int lease_exists(struct metadata_db *db, MDB_txn *txn, const char *ns, const char *id)
{
        size_t kl;
        _cleanup_free_ void *key = mkey(&kl, 2, ns, id);
        MDB_val k = {kl, key}, v;
        return mdb_get(txn, db->dbi[MT_LEASES], &k, &v) == 0;
}

int lease_add_resource_txn(struct metadata_db *db, MDB_txn *txn, const char *ns, const char *lease, const char *type,
                           const char *id, struct error **err)
{
        if (!lease || !lease[0])
                return 0;
        if (!lease_exists(db, txn, ns, lease))
                return error_set(err, ENOENT, "lease does not exist");
        size_t kl;
        _cleanup_free_ void *key = mkey(&kl, 4, ns, lease, type, id);
        MDB_val k = {kl, key}, v = {0, (void *)""};
        int rc = mdb_put(txn, db->dbi[MT_LEASE_RESOURCES], &k, &v, 0);
        if (rc != 0)
                return mdb_err(err, rc, "put lease resource");
        return 0;
}

int metadata_lease_add_resource(struct metadata_db *db, const char *ns, const char *id,
                                const struct metadata_lease_resource *res, struct error **err)
{
        _cleanup_(txn_abortp) MDB_txn *txn = NULL;
        int r = check_resource(res, err);
        if (r < 0)
                return r;
        r = mdb_begin(db, true, &txn, err);
        if (r < 0)
                return r;
        if (!lease_exists(db, txn, ns, id))
                return error_set(err, ENOENT, "lease \"%s\"", id);
        r = lease_add_resource_txn(db, txn, ns, id, res->type, res->id, err);
        if (r < 0)
                return r;
        return mdb_commit(TAKE_PTR(txn), err);
}

int metadata_lease_delete_resource(struct metadata_db *db, const char *ns, const char *id,
                                   const struct metadata_lease_resource *res, struct error **err)
{
        _cleanup_(txn_abortp) MDB_txn *txn = NULL;
        int r = check_resource(res, err);
        if (r < 0)
                return r;
        r = mdb_begin(db, true, &txn, err);
        if (r < 0)
                return r;
        if (!lease_exists(db, txn, ns, id))
                return error_set(err, ENOENT, "lease \"%s\"", id);
        size_t kl;
        _cleanup_free_ void *key = mkey(&kl, 4, ns, id, res->type, res->id);
        MDB_val k = {kl, key};
        int rc = mdb_del(txn, db->dbi[MT_LEASE_RESOURCES], &k, NULL);
        if (rc != 0 && rc != MDB_NOTFOUND)
                return mdb_err(err, rc, "delete lease resource");
        r = mdb_commit(TAKE_PTR(txn), err);
        if (r == 0)
                metadata_mark_dirty(db);
        return r;
}

struct res_ctx {
        size_t plen;
        struct metadata_lease_resource *out;
        size_t n;
};

static int res_cb(const MDB_val *k, const MDB_val *v, void *ud)
{
        struct res_ctx *c = ud;
        char *parts[2] = {0};
        (void)v;
        size_t np = mkey_split((const char *)k->mv_data + c->plen, k->mv_size - c->plen, parts, 2);
        if (np != 2) {
                for (size_t i = 0; i < np; i++)
                        free(parts[i]);
                return 0;
        }
        c->out = xreallocarray(c->out, c->n + 1, sizeof(*c->out));
        c->out[c->n].type = parts[0];
        c->out[c->n].id = parts[1];
        c->n++;
        return 0;
}

int metadata_lease_list_resources(struct metadata_db *db, const char *ns, const char *id,
                                  struct metadata_lease_resource **ret, size_t *ret_n, struct error **err)
{
        _cleanup_(txn_abortp) MDB_txn *txn = NULL;
        struct res_ctx c = {0};
        int r = mdb_begin(db, false, &txn, err);
        if (r < 0)
                return r;
        if (!lease_exists(db, txn, ns, id))
                return error_set(err, ENOENT, "lease \"%s\"", id);
        _cleanup_free_ void *prefix = mkey(&c.plen, 3, ns, id, "");
        (void)mdb_foreach_prefix(db, txn, MT_LEASE_RESOURCES, prefix, c.plen, res_cb, &c);
        *ret = c.out;
        *ret_n = c.n;
        return 0;
}

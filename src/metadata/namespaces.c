#include "metadata/namespaces.h"

#include <errno.h>
#include <string.h>

#include "metadata/metadata-internal.h"
#include "util/alloc.h"

enum { NS_TAG_LABEL = 'L' };

static int ns_put(struct metadata_db *db, MDB_txn *txn, const char *name, char *const *labels, unsigned flags,
                  struct error **err)
{
        _cleanup_(rec_freep) struct rec r = {0};
        rec_put_labels(&r, NS_TAG_LABEL, labels);
        MDB_val k = {.mv_size = strlen(name), .mv_data = (void *)name};
        MDB_val v = {.mv_size = r.len, .mv_data = r.p ? r.p : (void *)""};
        int rc = mdb_put(txn, db->dbi[MT_NAMESPACES], &k, &v, flags);
        if (rc == MDB_KEYEXIST)
                return error_set(err, EEXIST, "namespace \"%s\"", name);
        if (rc != 0)
                return mdb_err(err, rc, "put namespace");
        return 0;
}

static int ns_read(struct metadata_db *db, MDB_txn *txn, const char *name, char ***ret_labels, struct error **err)
{
        MDB_val k = {.mv_size = strlen(name), .mv_data = (void *)name}, v;
        int rc = mdb_get(txn, db->dbi[MT_NAMESPACES], &k, &v);
        if (rc == MDB_NOTFOUND)
                return error_set(err, ENOENT, "namespace \"%s\"", name);
        if (rc != 0)
                return mdb_err(err, rc, "get namespace");
        char **labels = xcalloc(1, sizeof(char *));
        size_t n = 0;
        struct rec_iter it = {v.mv_data, v.mv_size};
        uint8_t tag;
        const uint8_t *d;
        size_t dl;
        while ((rc = rec_next(&it, &tag, &d, &dl)) > 0)
                if (tag == NS_TAG_LABEL)
                        rec_label_add(&labels, &n, d, dl);
        if (rc < 0) {
                strv_free(labels);
                return error_set(err, EIO, "namespace \"%s\": corrupt record", name);
        }
        *ret_labels = labels;
        return 0;
}

int ns_ensure_txn(struct metadata_db *db, MDB_txn *txn, const char *ns, struct error **err)
{
        int r = metadata_validate_identifier(ns, err);
        if (r < 0)
                return error_wrap(err, "namespace validation");
        r = ns_put(db, txn, ns, NULL, MDB_NOOVERWRITE, NULL);
        if (r == -EEXIST)
                return 0;
        if (r < 0)
                return error_set(err, -r, "create namespace \"%s\"", ns);
        return 0;
}

int metadata_namespace_create(struct metadata_db *db, const char *name, char *const *labels, struct error **err)
{
        _cleanup_(txn_abortp) MDB_txn *txn = NULL;
        int r = metadata_validate_identifier(name, err);
        if (r < 0)
                return r;
        r = metadata_labels_validate(labels, err);
        if (r < 0)
                return error_wrap(err, "namespace.Labels");
        r = mdb_begin(db, true, &txn, err);
        if (r < 0)
                return r;
        _cleanup_strv_free_ char **l = metadata_labels_dup(labels);
        r = ns_put(db, txn, name, l, MDB_NOOVERWRITE, err);
        if (r < 0)
                return r;
        return mdb_commit(TAKE_PTR(txn), err);
}

int metadata_namespace_ensure(struct metadata_db *db, const char *name, struct error **err)
{
        _cleanup_(txn_abortp) MDB_txn *txn = NULL;
        MDB_val k = {.mv_size = strlen(name), .mv_data = (void *)name}, v;
        int r;

        /* Fast path without taking the writer lock. */
        r = mdb_begin(db, false, &txn, err);
        if (r < 0)
                return r;
        if (mdb_get(txn, db->dbi[MT_NAMESPACES], &k, &v) == 0)
                return 0;
        mdb_txn_abort(TAKE_PTR(txn));
        r = mdb_begin(db, true, &txn, err);
        if (r < 0)
                return r;
        r = ns_ensure_txn(db, txn, name, err);
        if (r < 0)
                return r;
        return mdb_commit(TAKE_PTR(txn), err);
}

int metadata_namespace_get(struct metadata_db *db, const char *name, char ***ret_labels, struct error **err)
{
        _cleanup_(txn_abortp) MDB_txn *txn = NULL;
        int r = mdb_begin(db, false, &txn, err);
        if (r < 0)
                return r;
        return ns_read(db, txn, name, ret_labels, err);
}

int metadata_namespace_list(struct metadata_db *db, char ***ret_names, struct error **err)
{
        _cleanup_(txn_abortp) MDB_txn *txn = NULL;
        _cleanup_(cursor_closep) MDB_cursor *c = NULL;
        MDB_val k, v;
        size_t n = 0;
        int r = mdb_begin(db, false, &txn, err);
        if (r < 0)
                return r;
        r = mdb_cursor_open(txn, db->dbi[MT_NAMESPACES], &c);
        if (r != 0)
                return mdb_err(err, r, "cursor");
        char **names = xcalloc(1, sizeof(char *));
        for (r = mdb_cursor_get(c, &k, &v, MDB_FIRST); r == 0; r = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
                names = xreallocarray(names, n + 2, sizeof(char *));
                names[n++] = xstrndup(k.mv_data, k.mv_size);
                names[n] = NULL;
        }
        *ret_names = names;
        return 0;
}

int metadata_namespace_update(struct metadata_db *db, const char *name, char *const *labels, char *const *paths,
                              size_t npaths, struct error **err)
{
        _cleanup_(txn_abortp) MDB_txn *txn = NULL;
        _cleanup_strv_free_ char **cur = NULL;
        int r;

        for (size_t i = 0; i < npaths; i++)
                if (strncmp(paths[i], "labels.", 7) != 0)
                        return error_set(err, EINVAL, "cannot update \"%s\" field", paths[i]);
        r = metadata_labels_validate(labels, err);
        if (r < 0)
                return error_wrap(err, "namespace.Labels");
        r = mdb_begin(db, true, &txn, err);
        if (r < 0)
                return r;
        r = ns_ensure_txn(db, txn, name, err);
        if (r < 0)
                return r;
        r = ns_read(db, txn, name, &cur, err);
        if (r < 0)
                return r;
        metadata_labels_apply(&cur, labels, paths, npaths, NULL);
        r = ns_put(db, txn, name, cur, 0, err);
        if (r < 0)
                return r;
        return mdb_commit(TAKE_PTR(txn), err);
}

static void append_kind(char **out, const char *kind)
{
        char *n = *out ? xasprintf("%s, %s", *out, kind) : xstrdup(kind);
        free(*out);
        *out = n;
}

int metadata_namespace_delete(struct metadata_db *db, const char *name, struct error **err)
{
        _cleanup_(txn_abortp) MDB_txn *txn = NULL;
        _cleanup_(cursor_closep) MDB_cursor *c = NULL;
        _cleanup_free_ char *kinds = NULL;
        _cleanup_free_ char *prefix = xasprintf("%s%c", name, '\0');
        size_t plen = strlen(name) + 1;
        MDB_val k = {.mv_size = strlen(name), .mv_data = (void *)name}, v;
        int r = mdb_begin(db, true, &txn, err);
        if (r < 0)
                return r;
        r = mdb_get(txn, db->dbi[MT_NAMESPACES], &k, &v);
        if (r == MDB_NOTFOUND)
                return error_set(err, ENOENT, "namespace \"%s\"", name);
        if (r != 0)
                return mdb_err(err, r, "get namespace");
        /* Same order and wording as containerd's listNs. */
        if (mdb_has_prefix(db, txn, MT_IMAGES, prefix, plen))
                append_kind(&kinds, "images");
        if (mdb_has_prefix(db, txn, MT_CONTENT, prefix, plen))
                append_kind(&kinds, "blobs");
        if (mdb_has_prefix(db, txn, MT_CONTAINERS, prefix, plen))
                append_kind(&kinds, "containers");
        r = mdb_cursor_open(txn, db->dbi[MT_SNAPSHOTS], &c);
        if (r != 0)
                return mdb_err(err, r, "cursor");
        MDB_val sk = {.mv_size = plen, .mv_data = prefix}, sv;
        r = mdb_cursor_get(c, &sk, &sv, MDB_SET_RANGE);
        while (r == 0 && mkey_has_prefix(&sk, prefix, plen)) {
                char *parts[3] = {0};
                size_t np = mkey_split(sk.mv_data, sk.mv_size, parts, 3);
                if (np >= 2) {
                        _cleanup_free_ char *s = xasprintf("snapshots on \"%s\" snapshotter", parts[1]);
                        append_kind(&kinds, s);
                        /* Skip to the next snapshotter: seek past "ns\0snapshotter\0\xff". */
                        _cleanup_free_ char *next = NULL;
                        size_t nl = plen + strlen(parts[1]) + 2;
                        next = xmalloc(nl);
                        memcpy(next, prefix, plen);
                        memcpy(next + plen, parts[1], strlen(parts[1]));
                        next[nl - 2] = '\x01';
                        next[nl - 1] = '\0';
                        sk.mv_data = next;
                        sk.mv_size = nl - 1;
                        for (size_t i = 0; i < np; i++)
                                free(parts[i]);
                        r = mdb_cursor_get(c, &sk, &sv, MDB_SET_RANGE);
                        continue;
                }
                for (size_t i = 0; i < np; i++)
                        free(parts[i]);
                r = mdb_cursor_get(c, &sk, &sv, MDB_NEXT);
        }
        /* A write transaction frees its cursors when it ends: close ours first. */
        mdb_cursor_close(TAKE_PTR(c));
        if (kinds)
                return error_set(err, EBUSY, "namespace \"%s\" must be empty, but it still has %s", name, kinds);
        r = mdb_delete_prefix(db, txn, MT_LEASES, prefix, plen, err);
        if (r < 0)
                return r;
        r = mdb_delete_prefix(db, txn, MT_LEASE_RESOURCES, prefix, plen, err);
        if (r < 0)
                return r;
        {
                size_t ml;
                _cleanup_free_ void *mp = mkey(&ml, 3, "ingest", name, "");
                r = mdb_delete_prefix(db, txn, MT_META, mp, ml, err);
                if (r < 0)
                        return r;
        }
        r = mdb_del(txn, db->dbi[MT_NAMESPACES], &k, NULL);
        if (r != 0)
                return mdb_err(err, r, "delete namespace");
        return mdb_commit(TAKE_PTR(txn), err);
}

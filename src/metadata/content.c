#include "metadata/content.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "metadata/metadata-internal.h"
#include "util/alloc.h"

enum { T_LABEL = 'L', T_SIZE = 's', T_CREATED = 'c', T_UPDATED = 'u' };

void metadata_content_info_clear(struct metadata_content_info *i)
{
        free(i->digest);
        strv_free(i->labels);
        memset(i, 0, sizeof(*i));
}

void metadata_content_info_list_free(struct metadata_content_info *i, size_t n)
{
        for (size_t k = 0; i && k < n; k++)
                metadata_content_info_clear(&i[k]);
        free(i);
}

static int decode(const MDB_val *v, const char *digest, const void *ctx, void *ret)
{
        struct metadata_content_info *ci = ret;
        (void)ctx;
        struct rec_iter it = {v->mv_data, v->mv_size};
        uint8_t tag;
        const uint8_t *d;
        size_t n, nl = 0;
        int r;
        memset(ci, 0, sizeof(*ci));
        ci->digest = xstrdup(digest);
        ci->labels = xcalloc(1, sizeof(char *));
        while ((r = rec_next(&it, &tag, &d, &n)) > 0) {
                switch (tag) {
                case T_LABEL:
                        rec_label_add(&ci->labels, &nl, d, n);
                        break;
                case T_SIZE:
                        ci->size = rec_i64(d, n);
                        break;
                case T_CREATED:
                        ci->created_at = rec_i64(d, n);
                        break;
                case T_UPDATED:
                        ci->updated_at = rec_i64(d, n);
                        break;
                default:
                        break;
                }
        }
        return r < 0 ? -EIO : 0;
}

static int put(struct metadata_db *db, MDB_txn *txn, const char *ns, const struct metadata_content_info *ci,
               unsigned flags, struct error **err)
{
        _cleanup_(rec_freep) struct rec r = {0};
        size_t kl;
        _cleanup_free_ void *key = mkey(&kl, 2, ns, ci->digest);
        rec_put_labels(&r, T_LABEL, ci->labels);
        rec_put_i64(&r, T_SIZE, ci->size);
        rec_put_i64(&r, T_CREATED, ci->created_at);
        rec_put_i64(&r, T_UPDATED, ci->updated_at);
        _cleanup_free_ char *what = xasprintf("content %s", ci->digest);
        return mdb_record_put(db, txn, MT_CONTENT, key, kl, &r, flags, "content", what, err);
}

static void clear(void *rec)
{
        metadata_content_info_clear(rec);
}

static bool match(const struct filter *f, void *rec);

static const struct mdb_record_type content_record = {
        .table = MT_CONTENT,
        .kind = "content",
        .size = sizeof(struct metadata_content_info),
        .decode = decode,
        .clear = clear,
        .match = match,
};

static int get_txn(struct metadata_db *db, MDB_txn *txn, const char *ns, const char *digest,
                   struct metadata_content_info *ret, struct error **err)
{
        size_t kl;
        _cleanup_free_ void *key = mkey(&kl, 2, ns, digest);
        _cleanup_free_ char *what = xasprintf("content digest %s", digest);
        return mdb_record_load(db, txn, &content_record, key, kl, digest, NULL, what, ret, err);
}

int metadata_content_info(struct metadata_db *db, const char *ns, const char *digest, struct metadata_content_info *ret,
                          struct error **err)
{
        _cleanup_(txn_abortp) MDB_txn *txn = NULL;
        int r = content_digest_validate(digest, err);
        if (r < 0)
                return r;
        r = mdb_begin(db, false, &txn, err);
        if (r < 0)
                return r;
        return get_txn(db, txn, ns, digest, ret, err);
}

struct field_ctx {
        const struct metadata_content_info *ci;
        char size[32];
};

static bool content_field(const char *const *path, size_t n, const char **ret, void *ud)
{
        struct field_ctx *c = ud;
        if (n == 1 && strcmp(path[0], "digest") == 0) {
                *ret = c->ci->digest;
                return true;
        }
        if (n == 1 && strcmp(path[0], "size") == 0) {
                snprintf(c->size, sizeof(c->size), "%" PRId64, c->ci->size);
                *ret = c->size;
                return true;
        }
        if (n >= 2 && strcmp(path[0], "labels") == 0)
                return map_lookup(path, n, c->ci->labels, ret);
        return false;
}

static bool match(const struct filter *f, void *rec)
{
        struct field_ctx fc = {.ci = rec};
        return filter_match(f, content_field, &fc);
}

int metadata_content_list(struct metadata_db *db, const char *ns, const struct filter *f,
                          struct metadata_content_info **ret, size_t *ret_n, struct error **err)
{
        size_t plen;
        _cleanup_free_ char *prefix = ns_prefix(ns, &plen);
        return mdb_record_list(db, &content_record, prefix, plen, f, NULL, (void **)ret, ret_n, err);
}

int metadata_content_update(struct metadata_db *db, const char *ns, const struct metadata_content_info *info,
                            char *const *paths, size_t npaths, struct metadata_content_info *ret, struct error **err)
{
        _cleanup_(txn_abortp) MDB_txn *txn = NULL;
        struct metadata_content_info cur = {0};
        size_t other = 0;
        int r = content_digest_validate(info->digest, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < npaths; i++)
                if (strcmp(paths[i], "labels") != 0 && strncmp(paths[i], "labels.", 7) != 0)
                        return error_set(err, EINVAL, "cannot update \"%s\" field on content info \"%s\"", paths[i],
                                         info->digest);
        r = metadata_labels_validate(info->labels, err);
        if (r < 0)
                return error_wrap(err, "info.Labels");
        r = mdb_begin(db, true, &txn, err);
        if (r < 0)
                return r;
        r = get_txn(db, txn, ns, info->digest, &cur, err);
        if (r < 0)
                return r;
        metadata_labels_apply(&cur.labels, info->labels, paths, npaths, &other);
        cur.updated_at = metadata_now();
        r = put(db, txn, ns, &cur, 0, err);
        if (r == 0)
                r = mdb_commit(TAKE_PTR(txn), err);
        if (r == 0) {
                /* Dropping a gc.ref label can orphan children. */
                metadata_mark_dirty(db);
                if (ret) {
                        *ret = cur;
                        return 0;
                }
        }
        metadata_content_info_clear(&cur);
        return r;
}

int metadata_content_delete(struct metadata_db *db, const char *ns, const char *digest, struct error **err)
{
        int r = content_digest_validate(digest, err);
        if (r < 0)
                return r;
        size_t kl;
        _cleanup_free_ void *key = mkey(&kl, 2, ns, digest);
        _cleanup_free_ char *what = xasprintf("content digest %s", digest);
        return mdb_record_delete(db, MT_CONTENT, key, kl, "content", what, err);
}

/* Drops a committed ingest from its lease and forgets its lease marker, inside txn. */
static void forget_ingest_txn(struct metadata_db *db, MDB_txn *txn, const char *ns, const char *lease, const char *ref)
{
        size_t kl;
        _cleanup_free_ void *key = mkey(&kl, 4, ns, lease, "ingests", ref);
        MDB_val k = {kl, key};
        (void)mdb_del(txn, db->dbi[MT_LEASE_RESOURCES], &k, NULL);
        _cleanup_free_ void *mk = mkey(&kl, 3, "ingest", ns, ref);
        MDB_val m = {kl, mk};
        (void)mdb_del(txn, db->dbi[MT_META], &m, NULL);
}

/* One transaction (one fsync) for the reference, the lease, and the ingest bookkeeping. */
static int ref_add(struct metadata_db *db, const char *ns, const char *digest, int64_t size, char *const *labels,
                   const char *lease, const char *ingest_ref, struct error **err)
{
        _cleanup_(txn_abortp) MDB_txn *txn = NULL;
        _cleanup_strv_free_ char **l = metadata_labels_dup(labels);
        int r = content_digest_validate(digest, err);
        if (r < 0)
                return r;
        r = metadata_labels_validate(labels, err);
        if (r < 0)
                return error_wrap(err, "info.Labels");
        r = mdb_begin(db, true, &txn, err);
        if (r < 0)
                return r;
        r = ns_ensure_txn(db, txn, ns, err);
        if (r < 0)
                return r;
        r = lease_add_resource_txn(db, txn, ns, lease, "content", digest, err);
        if (r < 0)
                return r;
        if (lease && ingest_ref)
                forget_ingest_txn(db, txn, ns, lease, ingest_ref);
        int64_t now = metadata_now();
        struct metadata_content_info ci = {
            .digest = (char *)digest, .size = size, .labels = l, .created_at = now, .updated_at = now};
        struct error *e = NULL;
        r = put(db, txn, ns, &ci, MDB_NOOVERWRITE, &e);
        if (r == -EEXIST) {
                /* Commit the lease even though the namespace already had the blob (containerd does the same). */
                int r2 = mdb_commit(TAKE_PTR(txn), err);
                if (r2 < 0) {
                        error_free(&e);
                        return r2;
                }
                if (err && !*err)
                        *err = e;
                else
                        error_free(&e);
                return r;
        }
        if (r < 0) {
                if (err && !*err)
                        *err = e;
                else
                        error_free(&e);
                return r;
        }
        return mdb_commit(TAKE_PTR(txn), err);
}

int metadata_content_ref_add(struct metadata_db *db, const char *ns, const char *digest, int64_t size,
                             char *const *labels, const char *lease, struct error **err)
{
        return ref_add(db, ns, digest, size, labels, lease, NULL, err);
}

/* --- writers --- */

struct metadata_content_writer {
        struct metadata_db *db;
        struct content_store *cs;
        char *ns;
        char *ref;
        char *bref; /* store ref: "<ns>/<ref>" keeps namespaces' ingests apart */
        char *lease;
        struct content_writer *w; /* NULL while the blob is shared from another namespace */
        char *shared_digest;
        int64_t shared_size;
        int64_t total;
        int64_t started_at;
};

static char *backend_ref(const char *ns, const char *ref)
{
        return xasprintf("%s/%s", ns, ref);
}

int metadata_content_writer_open(struct metadata_db *db, struct content_store *cs, const char *ns, const char *ref,
                                 int64_t total, const char *expected, const char *lease,
                                 struct metadata_content_writer **ret, struct error **err)
{
        _cleanup_(txn_abortp) MDB_txn *txn = NULL;
        int r;
        if (!ref || !ref[0])
                return error_set(err, EINVAL, "ref must not be empty");
        if (expected && !expected[0])
                expected = NULL;
        if (expected) {
                r = content_digest_validate(expected, err);
                if (r < 0)
                        return r;
        }
        r = mdb_begin(db, true, &txn, err);
        if (r < 0)
                return r;
        r = ns_ensure_txn(db, txn, ns, err);
        if (r < 0)
                return r;
        if (expected) {
                size_t kl;
                _cleanup_free_ void *key = mkey(&kl, 2, ns, expected);
                MDB_val k = {kl, key}, v;
                if (mdb_get(txn, db->dbi[MT_CONTENT], &k, &v) == 0) {
                        r = lease_add_resource_txn(db, txn, ns, lease, "content", expected, err);
                        if (r < 0)
                                return r;
                        r = mdb_commit(TAKE_PTR(txn), err);
                        if (r < 0)
                                return r;
                        return error_set(err, EEXIST, "content %s", expected);
                }
        }
        r = lease_add_resource_txn(db, txn, ns, lease, "ingests", ref, err);
        if (r < 0)
                return r;
        if (lease) {
                /* Remember that this ingest belonged to a lease: once no live lease holds it, GC aborts it
                 * right away instead of waiting for the unleased-ingest expiry. */
                size_t kl;
                _cleanup_free_ void *key = mkey(&kl, 3, "ingest", ns, ref);
                MDB_val k = {kl, key}, v = {0, (void *)""};
                int rc = mdb_put(txn, db->dbi[MT_META], &k, &v, 0);
                if (rc != 0)
                        return mdb_err(err, rc, "put ingest marker");
        }
        r = mdb_commit(TAKE_PTR(txn), err);
        if (r < 0)
                return r;

        struct metadata_content_writer *w = xcalloc(1, sizeof(*w));
        w->db = db;
        w->cs = cs;
        w->ns = xstrdup(ns);
        w->ref = xstrdup(ref);
        w->bref = backend_ref(ns, ref);
        w->lease = xstrdup(lease);
        w->total = total;
        w->started_at = metadata_now();
        struct content_blob_info bi = {0};
        if (expected && content_blob_info(cs, expected, &bi, NULL) == 0 && (total <= 0 || total == bi.size)) {
                w->shared_digest = xstrdup(expected);
                w->shared_size = bi.size;
                content_blob_info_clear(&bi);
                *ret = w;
                return 0;
        }
        r = content_writer_open(cs, w->bref, total, NULL, &w->w, err);
        if (r < 0) {
                metadata_content_writer_close(w);
                return r;
        }
        *ret = w;
        return 0;
}

/* A shared writer that receives data turns into a real one (containerd's createAndCopy is not needed: a
 * client that sends data restarts from offset 0). */
static int writer_unshare(struct metadata_content_writer *w, struct error **err)
{
        if (w->w)
                return 0;
        int r = content_writer_open(w->cs, w->bref, w->total, NULL, &w->w, err);
        if (r < 0)
                return r;
        free(w->shared_digest);
        w->shared_digest = NULL;
        return 0;
}

int metadata_content_writer_write(struct metadata_content_writer *w, const void *data, size_t n, struct error **err)
{
        if (n == 0)
                return 0;
        int r = writer_unshare(w, err);
        if (r < 0)
                return r;
        return content_writer_write(w->w, data, n, err);
}

int metadata_content_writer_truncate(struct metadata_content_writer *w, int64_t size, struct error **err)
{
        int r = writer_unshare(w, err);
        if (r < 0)
                return r;
        return content_writer_truncate(w->w, size, err);
}

int64_t metadata_content_writer_offset(const struct metadata_content_writer *w)
{
        return w->w ? content_writer_offset(w->w) : w->shared_size;
}

char *metadata_content_writer_digest(const struct metadata_content_writer *w)
{
        return w->w ? content_writer_digest(w->w) : xstrdup(w->shared_digest);
}

void metadata_content_writer_status(const struct metadata_content_writer *w, struct content_status *st)
{
        if (w->w) {
                content_writer_status(w->w, st);
                free(st->ref);
        } else {
                memset(st, 0, sizeof(*st));
                st->offset = w->shared_size;
                st->total = w->shared_size;
                st->started_at = st->updated_at = w->started_at;
        }
        st->ref = xstrdup(w->ref);
}

int metadata_content_writer_commit(struct metadata_content_writer *w, int64_t size, const char *expected,
                                   char *const *labels, struct error **err)
{
        _cleanup_free_ char *dg = NULL;
        int64_t final_size;
        int r = metadata_labels_validate(labels, err);
        if (r < 0)
                return error_wrap(err, "info.Labels");
        if (expected && !expected[0])
                expected = NULL;
        metadata_gc_lock_shared(w->db);
        if (!w->w) {
                if (size > 0 && size != w->shared_size) {
                        r = error_set(err, EBUSY, "\"%s\" failed size validation: %" PRId64 " != %" PRId64, w->ref,
                                      w->shared_size, size);
                        goto out;
                }
                if (expected && strcmp(expected, w->shared_digest) != 0) {
                        r = error_set(err, EBUSY, "\"%s\" unexpected digest", w->ref);
                        goto out;
                }
                dg = xstrdup(w->shared_digest);
                final_size = w->shared_size;
                if (!content_blob_exists(w->cs, dg)) {
                        r = error_set(err, ENOENT, "content digest %s", dg);
                        goto out;
                }
        } else {
                struct error *e = NULL;
                final_size = content_writer_offset(w->w);
                r = content_writer_commit(w->w, size, expected, &dg, &e);
                if (r == -EEXIST) {
                        error_free(&e);
                        dg = content_writer_digest(w->w);
                } else if (r < 0) {
                        if (err && !*err)
                                *err = e;
                        else
                                error_free(&e);
                        goto out;
                }
        }
        r = ref_add(w->db, w->ns, dg, final_size, labels, w->lease, w->ref, err);
out:
        metadata_gc_unlock_shared(w->db);
        return r;
}

void metadata_content_writer_close(struct metadata_content_writer *w)
{
        if (!w)
                return;
        content_writer_close(w->w);
        free(w->ns);
        free(w->ref);
        free(w->bref);
        free(w->lease);
        free(w->shared_digest);
        free(w);
}

int metadata_content_status(struct content_store *cs, const char *ns, const char *ref, struct content_status *ret,
                            struct error **err)
{
        _cleanup_free_ char *bref = backend_ref(ns, ref);
        struct error *e = NULL;
        int r = content_ingest_status(cs, bref, ret, &e);
        if (r < 0) {
                error_free(&e);
                return error_set(err, -r, "ingest ref \"%s\"", ref);
        }
        free(ret->ref);
        ret->ref = xstrdup(ref);
        return 0;
}

struct st_ctx {
        const char *prefix;
        size_t plen;
        const struct filter *f;
        struct content_status *out;
        size_t n;
};

static bool status_field(const char *const *path, size_t n, const char **ret, void *ud)
{
        const struct content_status *st = ud;
        if (n == 1 && strcmp(path[0], "ref") == 0) {
                *ret = st->ref;
                return true;
        }
        return false;
}

static int st_cb(const struct content_status *st, void *ud)
{
        struct st_ctx *c = ud;
        if (strncmp(st->ref, c->prefix, c->plen) != 0)
                return 0;
        struct content_status s = *st;
        s.ref = xstrdup(st->ref + c->plen);
        if (!filter_match(c->f, status_field, &s)) {
                free(s.ref);
                return 0;
        }
        c->out = xreallocarray(c->out, c->n + 1, sizeof(*c->out));
        c->out[c->n++] = s;
        return 0;
}

int metadata_content_list_statuses(struct content_store *cs, const char *ns, const struct filter *f,
                                   struct content_status **ret, size_t *ret_n, struct error **err)
{
        _cleanup_free_ char *prefix = xasprintf("%s/", ns);
        struct st_ctx c = {.prefix = prefix, .plen = strlen(prefix), .f = f};
        int r = content_ingest_walk(cs, st_cb, &c, err);
        if (r < 0) {
                metadata_content_statuses_free(c.out, c.n);
                return r;
        }
        *ret = c.out;
        *ret_n = c.n;
        return 0;
}

void metadata_content_statuses_free(struct content_status *st, size_t n)
{
        for (size_t i = 0; st && i < n; i++)
                content_status_clear(&st[i]);
        free(st);
}

int metadata_content_abort(struct content_store *cs, const char *ns, const char *ref, struct error **err)
{
        _cleanup_free_ char *bref = backend_ref(ns, ref);
        struct error *e = NULL;
        int r = content_ingest_abort(cs, bref, &e);
        if (r < 0) {
                int code = -r;
                error_free(&e);
                if (code == EAGAIN)
                        return error_set(err, EAGAIN, "ref %s locked", ref);
                return error_set(err, code, "ingest ref \"%s\"", ref);
        }
        return 0;
}

#include "metadata/gc.h"

#include <errno.h>
#include <string.h>

#include "metadata/leases.h"
#include "metadata/metadata-internal.h"
#include "util/alloc.h"

/* --- a set of node keys ("c\0ns\0digest", "s\0ns\0snapshotter\0key") --- */

struct nset {
        char **slots; /* each: 4-byte length prefix + bytes */
        size_t cap, n;
};

static uint64_t fnv(const void *p, size_t n)
{
        const unsigned char *b = p;
        uint64_t h = 1469598103934665603ULL;
        for (size_t i = 0; i < n; i++) {
                h ^= b[i];
                h *= 1099511628211ULL;
        }
        return h;
}

static bool slot_eq(const char *slot, const void *k, size_t n)
{
        uint32_t l;
        memcpy(&l, slot, 4);
        return l == n && memcmp(slot + 4, k, n) == 0;
}

static bool nset_has(const struct nset *s, const void *k, size_t n)
{
        if (!s->cap)
                return false;
        for (size_t i = fnv(k, n) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
                if (!s->slots[i])
                        return false;
                if (slot_eq(s->slots[i], k, n))
                        return true;
        }
}

static void nset_insert_slot(struct nset *s, char *slot)
{
        uint32_t l;
        memcpy(&l, slot, 4);
        for (size_t i = fnv(slot + 4, l) & (s->cap - 1);; i = (i + 1) & (s->cap - 1))
                if (!s->slots[i]) {
                        s->slots[i] = slot;
                        return;
                }
}

/* Returns true if newly added. */
static bool nset_add(struct nset *s, const void *k, size_t n)
{
        if (nset_has(s, k, n))
                return false;
        if ((s->n + 1) * 2 > s->cap) {
                size_t oc = s->cap;
                char **old = s->slots;
                s->cap = oc ? oc * 2 : 256;
                s->slots = xcalloc(s->cap, sizeof(char *));
                for (size_t i = 0; i < oc; i++)
                        if (old[i])
                                nset_insert_slot(s, old[i]);
                free(old);
        }
        char *slot = xmalloc(4 + n);
        uint32_t l = (uint32_t)n;
        memcpy(slot, &l, 4);
        memcpy(slot + 4, k, n);
        nset_insert_slot(s, slot);
        s->n++;
        return true;
}

static void nset_clear(struct nset *s)
{
        for (size_t i = 0; i < s->cap; i++)
                free(s->slots[i]);
        free(s->slots);
        memset(s, 0, sizeof(*s));
}

/* --- marking --- */

struct marker {
        struct metadata_db *db;
        MDB_txn *txn;
        struct nset marked;
        char **queue; /* pending node keys (same encoding as nset, length-prefixed) */
        size_t qn, qcap;
        int64_t now;
};

static void mark(struct marker *m, const char *type, const char *ns, const char *a, const char *b)
{
        size_t kl;
        _cleanup_free_ void *k = b ? mkey(&kl, 4, type, ns, a, b) : mkey(&kl, 3, type, ns, a);
        if (!nset_add(&m->marked, k, kl))
                return;
        if (m->qn == m->qcap) {
                m->qcap = m->qcap ? m->qcap * 2 : 64;
                m->queue = xreallocarray(m->queue, m->qcap, sizeof(char *));
        }
        char *q = xmalloc(4 + kl);
        uint32_t l = (uint32_t)kl;
        memcpy(q, &l, 4);
        memcpy(q + 4, k, kl);
        m->queue[m->qn++] = q;
}

/* Follows gc.ref labels found in a record's 'L' fields. */
static void mark_label_refs(struct marker *m, const char *ns, const MDB_val *v)
{
        struct rec_iter it = {v->mv_data, v->mv_size};
        uint8_t tag;
        const uint8_t *d;
        size_t n;
        static const size_t cl = sizeof(METADATA_LABEL_GC_REF_CONTENT) - 1;
        static const size_t sl = sizeof(METADATA_LABEL_GC_REF_SNAPSHOT) - 1;
        while (rec_next(&it, &tag, &d, &n) > 0) {
                if (tag != 'L')
                        continue;
                const char *k = (const char *)d;
                size_t klen = strnlen(k, n);
                if (klen >= n)
                        continue;
                _cleanup_free_ char *val = xstrndup(k + klen + 1, n - klen - 1);
                if (klen >= sl && strncmp(k, METADATA_LABEL_GC_REF_SNAPSHOT, sl) == 0) {
                        _cleanup_free_ char *sn = xstrndup(k + sl, klen - sl);
                        char *slash = strchr(sn, '/');
                        if (slash)
                                *slash = '\0';
                        if (sn[0])
                                mark(m, "s", ns, sn, val);
                } else if (klen >= cl && strncmp(k, METADATA_LABEL_GC_REF_CONTENT, cl) == 0) {
                        mark(m, "c", ns, val, NULL);
                }
        }
}

static bool has_label(const MDB_val *v, const char *key)
{
        struct rec_iter it = {v->mv_data, v->mv_size};
        uint8_t tag;
        const uint8_t *d;
        size_t n, kl = strlen(key);
        while (rec_next(&it, &tag, &d, &n) > 0)
                if (tag == 'L' && n > kl && memcmp(d, key, kl) == 0 && d[kl] == '\0')
                        return true;
        return false;
}

static char *field_str(const MDB_val *v, uint8_t want)
{
        struct rec_iter it = {v->mv_data, v->mv_size};
        uint8_t tag;
        const uint8_t *d;
        size_t n;
        char *out = NULL;
        while (rec_next(&it, &tag, &d, &n) > 0)
                if (tag == want) {
                        free(out);
                        out = rec_str(d, n);
                }
        return out;
}

static bool lease_expired(const MDB_val *v, int64_t now)
{
        struct rec_iter it = {v->mv_data, v->mv_size};
        uint8_t tag;
        const uint8_t *d;
        size_t n, kl = strlen(METADATA_LABEL_GC_EXPIRE);
        while (rec_next(&it, &tag, &d, &n) > 0)
                if (tag == 'L' && n > kl && memcmp(d, METADATA_LABEL_GC_EXPIRE, kl) == 0 && d[kl] == '\0') {
                        _cleanup_free_ char *s = xstrndup((const char *)d + kl + 1, n - kl - 1);
                        int64_t t;
                        /* An unparsable expiry does not expire (containerd logs and keeps the lease). */
                        return parse_rfc3339(s, &t) == 0 && t <= now;
                }
        return false;
}

/* Splits a table key into NUL-separated parts (up to max). */
static size_t key_parts(const MDB_val *k, char **out, size_t max)
{
        return mkey_split(k->mv_data, k->mv_size, out, max);
}

static void free_parts(char **p, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(p[i]);
}

static int root_lease_res(const MDB_val *k, const MDB_val *v, void *ud)
{
        struct marker *m = ud;
        char *p[4] = {0};
        (void)v;
        size_t n = key_parts(k, p, 4); /* ns, lease, type, id */
        if (n == 4) {
                size_t lk;
                _cleanup_free_ void *lkey = mkey(&lk, 2, p[0], p[1]);
                MDB_val key = {lk, lkey}, val;
                if (mdb_get(m->txn, m->db->dbi[MT_LEASES], &key, &val) == 0 && !lease_expired(&val, m->now)) {
                        if (strcmp(p[2], "content") == 0)
                                mark(m, "c", p[0], p[3], NULL);
                        else if (strncmp(p[2], "snapshots/", 10) == 0)
                                mark(m, "s", p[0], p[2] + 10, p[3]);
                }
        }
        free_parts(p, n);
        return 0;
}

static int root_image(const MDB_val *k, const MDB_val *v, void *ud)
{
        struct marker *m = ud;
        char *p[2] = {0};
        size_t n = key_parts(k, p, 2);
        if (n == 2) {
                _cleanup_free_ char *dg = field_str(v, 'd');
                if (dg)
                        mark(m, "c", p[0], dg, NULL);
                mark_label_refs(m, p[0], v);
        }
        free_parts(p, n);
        return 0;
}

static int root_container(const MDB_val *k, const MDB_val *v, void *ud)
{
        struct marker *m = ud;
        char *p[2] = {0};
        size_t n = key_parts(k, p, 2);
        if (n == 2) {
                _cleanup_free_ char *sn = field_str(v, 'n'), *key = field_str(v, 'k');
                if (sn && key && sn[0] && key[0])
                        mark(m, "s", p[0], sn, key);
                mark_label_refs(m, p[0], v);
        }
        free_parts(p, n);
        return 0;
}

static int root_content(const MDB_val *k, const MDB_val *v, void *ud)
{
        struct marker *m = ud;
        if (!has_label(v, METADATA_LABEL_GC_ROOT))
                return 0;
        char *p[2] = {0};
        size_t n = key_parts(k, p, 2);
        if (n == 2)
                mark(m, "c", p[0], p[1], NULL);
        free_parts(p, n);
        return 0;
}

static int root_snapshot(const MDB_val *k, const MDB_val *v, void *ud)
{
        struct marker *m = ud;
        if (!has_label(v, METADATA_LABEL_GC_ROOT))
                return 0;
        char *p[3] = {0};
        size_t n = key_parts(k, p, 3);
        if (n == 3)
                mark(m, "s", p[0], p[1], p[2]);
        free_parts(p, n);
        return 0;
}

static void run_marking(struct marker *m)
{
        nset_clear(&m->marked);
        m->now = metadata_now();
        (void)mdb_foreach_prefix(m->db, m->txn, MT_LEASE_RESOURCES, "", 0, root_lease_res, m);
        (void)mdb_foreach_prefix(m->db, m->txn, MT_IMAGES, "", 0, root_image, m);
        (void)mdb_foreach_prefix(m->db, m->txn, MT_CONTAINERS, "", 0, root_container, m);
        (void)mdb_foreach_prefix(m->db, m->txn, MT_CONTENT, "", 0, root_content, m);
        (void)mdb_foreach_prefix(m->db, m->txn, MT_SNAPSHOTS, "", 0, root_snapshot, m);
        while (m->qn > 0) {
                char *q = m->queue[--m->qn];
                uint32_t l;
                memcpy(&l, q, 4);
                char *p[4] = {0};
                size_t n = mkey_split(q + 4, l, p, 4);
                MDB_val key, val;
                if (n == 3 && strcmp(p[0], "c") == 0) {
                        size_t kl;
                        _cleanup_free_ void *k = mkey(&kl, 2, p[1], p[2]);
                        key = (MDB_val){kl, k};
                        if (mdb_get(m->txn, m->db->dbi[MT_CONTENT], &key, &val) == 0)
                                mark_label_refs(m, p[1], &val);
                } else if (n == 4 && strcmp(p[0], "s") == 0) {
                        size_t kl;
                        _cleanup_free_ void *k = mkey(&kl, 3, p[1], p[2], p[3]);
                        key = (MDB_val){kl, k};
                        if (mdb_get(m->txn, m->db->dbi[MT_SNAPSHOTS], &key, &val) == 0) {
                                _cleanup_free_ char *parent = field_str(&val, 'p');
                                if (parent && parent[0])
                                        mark(m, "s", p[1], p[2], parent);
                                mark_label_refs(m, p[1], &val);
                        }
                }
                free_parts(p, n);
                free(q);
        }
}

static void marker_free(struct marker *m)
{
        nset_clear(&m->marked);
        for (size_t i = 0; i < m->qn; i++)
                free(m->queue[i]);
        free(m->queue);
}

/* --- sweeping --- */

struct removed_snap {
        char *ns, *snapshotter, *key, *backend, *parent;
};

struct sweeper {
        struct marker *m;
        MDB_val *dead; /* keys to delete (copied) */
        enum mdb_table *dead_table;
        size_t ndead;
        struct removed_snap *snaps;
        size_t nsnaps;
        size_t content, leases;
};

static void sweep_add(struct sweeper *s, enum mdb_table t, const MDB_val *k)
{
        s->dead = xreallocarray(s->dead, s->ndead + 1, sizeof(*s->dead));
        s->dead_table = xreallocarray(s->dead_table, s->ndead + 1, sizeof(*s->dead_table));
        s->dead[s->ndead] = (MDB_val){k->mv_size, xmemdup(k->mv_data, k->mv_size)};
        s->dead_table[s->ndead++] = t;
}

static int sweep_content(const MDB_val *k, const MDB_val *v, void *ud)
{
        struct sweeper *s = ud;
        char *p[2] = {0};
        (void)v;
        size_t n = key_parts(k, p, 2);
        if (n == 2) {
                size_t kl;
                _cleanup_free_ void *node = mkey(&kl, 3, "c", p[0], p[1]);
                if (!nset_has(&s->m->marked, node, kl)) {
                        sweep_add(s, MT_CONTENT, k);
                        s->content++;
                }
        }
        free_parts(p, n);
        return 0;
}

static int sweep_snapshot(const MDB_val *k, const MDB_val *v, void *ud)
{
        struct sweeper *s = ud;
        char *p[3] = {0};
        size_t n = key_parts(k, p, 3);
        if (n == 3) {
                size_t kl;
                _cleanup_free_ void *node = mkey(&kl, 4, "s", p[0], p[1], p[2]);
                if (!nset_has(&s->m->marked, node, kl)) {
                        sweep_add(s, MT_SNAPSHOTS, k);
                        s->snaps = xreallocarray(s->snaps, s->nsnaps + 1, sizeof(*s->snaps));
                        s->snaps[s->nsnaps++] = (struct removed_snap){.ns = TAKE_PTR(p[0]),
                                                                      .snapshotter = TAKE_PTR(p[1]),
                                                                      .key = TAKE_PTR(p[2]),
                                                                      .backend = field_str(v, 'b'),
                                                                      .parent = field_str(v, 'p')};
                }
        }
        free_parts(p, n);
        return 0;
}

static int sweep_lease(const MDB_val *k, const MDB_val *v, void *ud)
{
        struct sweeper *s = ud;
        if (lease_expired(v, s->m->now)) {
                sweep_add(s, MT_LEASES, k);
                s->leases++;
        }
        return 0;
}

static void sweeper_reset(struct sweeper *s)
{
        for (size_t i = 0; i < s->ndead; i++)
                free(s->dead[i].mv_data);
        free(s->dead);
        free(s->dead_table);
        for (size_t i = 0; i < s->nsnaps; i++) {
                free(s->snaps[i].ns);
                free(s->snaps[i].snapshotter);
                free(s->snaps[i].key);
                free(s->snaps[i].backend);
                free(s->snaps[i].parent);
        }
        free(s->snaps);
        struct marker *m = s->m;
        memset(s, 0, sizeof(*s));
        s->m = m;
}

static int collect_digest(const MDB_val *k, const MDB_val *v, void *ud)
{
        struct nset *live = ud;
        const char *z = memchr(k->mv_data, 0, k->mv_size);
        (void)v;
        if (z) {
                size_t off = (size_t)(z - (const char *)k->mv_data) + 1;
                nset_add(live, (const char *)k->mv_data + off, k->mv_size - off);
        }
        return 0;
}

struct blob_ctx {
        struct nset *live;
        char **dead;
        size_t n;
};

static int blob_cb(const struct content_blob_info *info, void *ud)
{
        struct blob_ctx *c = ud;
        if (!nset_has(c->live, info->digest, strlen(info->digest))) {
                c->dead = xreallocarray(c->dead, c->n + 1, sizeof(char *));
                c->dead[c->n++] = xstrdup(info->digest);
        }
        return 0;
}

static int sweep_blobs(struct metadata_db *db, struct content_store *cs, struct metadata_gc_stats *st,
                       struct error **err)
{
        _cleanup_(txn_abortp) MDB_txn *txn = NULL;
        struct nset live = {0};
        struct blob_ctx c = {.live = &live};
        int r;
        pthread_rwlock_wrlock(&db->gc_lock);
        r = mdb_begin(db, false, &txn, err);
        if (r < 0)
                goto out;
        (void)mdb_foreach_prefix(db, txn, MT_CONTENT, "", 0, collect_digest, &live);
        r = content_blob_walk(cs, blob_cb, &c, err);
        if (r < 0)
                goto out;
        for (size_t i = 0; i < c.n; i++) {
                if (content_blob_delete(cs, c.dead[i], NULL) == 0)
                        st->blobs++;
                else
                        st->errors++;
        }
out:
        pthread_rwlock_unlock(&db->gc_lock);
        for (size_t i = 0; i < c.n; i++)
                free(c.dead[i]);
        free(c.dead);
        nset_clear(&live);
        return r;
}

/* --- ingests --- */

static int live_ingest_cb(const MDB_val *k, const MDB_val *v, void *ud)
{
        struct nset *live = ud;
        char *p[4] = {0};
        (void)v;
        size_t n = key_parts(k, p, 4); /* ns, lease, type, id */
        if (n == 4 && strcmp(p[2], "ingests") == 0) {
                size_t kl;
                _cleanup_free_ void *key = mkey(&kl, 2, p[0], p[3]);
                nset_add(live, key, kl);
        }
        free_parts(p, n);
        return 0;
}

struct ingest_ctx {
        struct metadata_db *db;
        MDB_txn *txn;
        struct nset *live;
        int64_t now;
        char **dead; /* store refs */
        size_t n;
};

static int ingest_cb(const struct content_status *st, void *ud)
{
        struct ingest_ctx *c = ud;
        const char *slash = strchr(st->ref, '/');
        if (!slash)
                return 0; /* not written through the metadata layer */
        _cleanup_free_ char *ns = xstrndup(st->ref, (size_t)(slash - st->ref));
        size_t kl, ml;
        _cleanup_free_ void *key = mkey(&kl, 2, ns, slash + 1);
        if (nset_has(c->live, key, kl))
                return 0;
        _cleanup_free_ void *mk = mkey(&ml, 3, "ingest", ns, slash + 1);
        MDB_val k = {ml, mk}, v;
        bool was_leased = mdb_get(c->txn, c->db->dbi[MT_META], &k, &v) == 0;
        if (!was_leased && c->now - st->updated_at < METADATA_GC_INGEST_EXPIRE_NS)
                return 0;
        c->dead = xreallocarray(c->dead, c->n + 1, sizeof(char *));
        c->dead[c->n++] = xstrdup(st->ref);
        return 0;
}

/* Aborts ingests nobody protects any more; an ingest with an open writer is skipped (its ref is locked). */
static void sweep_ingests(struct metadata_db *db, struct content_store *cs, struct metadata_gc_stats *st)
{
        struct nset live = {0};
        struct ingest_ctx c = {.db = db, .live = &live, .now = metadata_now()};
        _cleanup_(txn_abortp) MDB_txn *txn = NULL;
        if (mdb_begin(db, false, &txn, NULL) < 0)
                return;
        c.txn = txn;
        (void)mdb_foreach_prefix(db, txn, MT_LEASE_RESOURCES, "", 0, live_ingest_cb, &live);
        (void)content_ingest_walk(cs, ingest_cb, &c, NULL);
        mdb_txn_abort(TAKE_PTR(txn));
        _cleanup_(txn_abortp) MDB_txn *wtxn = NULL;
        bool have_w = mdb_begin(db, true, &wtxn, NULL) == 0;
        for (size_t i = 0; i < c.n; i++) {
                int r = content_ingest_abort(cs, c.dead[i], NULL);
                if (r == 0 || r == -ENOENT) {
                        if (r == 0)
                                st->ingests++;
                        char *slash = strchr(c.dead[i], '/');
                        *slash = '\0';
                        size_t ml;
                        _cleanup_free_ void *mk = mkey(&ml, 3, "ingest", c.dead[i], slash + 1);
                        MDB_val k = {ml, mk};
                        if (have_w)
                                (void)mdb_del(wtxn, db->dbi[MT_META], &k, NULL);
                } else if (r != -EAGAIN) {
                        st->errors++;
                }
                free(c.dead[i]);
        }
        free(c.dead);
        if (have_w)
                (void)mdb_txn_commit(TAKE_PTR(wtxn));
        nset_clear(&live);
}

/* Children before parents: emit a removed snapshot only once no other pending one names it as parent. */
static void remove_snapshots(struct sweeper *s, metadata_gc_snapshot_fn fn, void *ud, struct metadata_gc_stats *st)
{
        bool *done = xcalloc(s->nsnaps ? s->nsnaps : 1, sizeof(bool));
        size_t left = s->nsnaps;
        while (left > 0) {
                bool progress = false;
                for (size_t i = 0; i < s->nsnaps; i++) {
                        if (done[i])
                                continue;
                        bool has_child = false;
                        for (size_t j = 0; j < s->nsnaps && !has_child; j++)
                                has_child = !done[j] && j != i && s->snaps[j].parent &&
                                            strcmp(s->snaps[j].parent, s->snaps[i].key) == 0 &&
                                            strcmp(s->snaps[j].ns, s->snaps[i].ns) == 0 &&
                                            strcmp(s->snaps[j].snapshotter, s->snaps[i].snapshotter) == 0;
                        if (has_child)
                                continue;
                        done[i] = true;
                        left--;
                        progress = true;
                        if (fn && s->snaps[i].backend && fn(s->snaps[i].snapshotter, s->snaps[i].backend, ud) < 0)
                                st->errors++;
                }
                if (!progress)
                        break; /* a parent cycle cannot happen; be safe anyway */
        }
        free(done);
}

int metadata_gc_run(struct metadata_db *db, struct content_store *cs, metadata_gc_snapshot_fn snapshot_fn,
                    void *userdata, struct metadata_gc_stats *stats, struct error **err)
{
        struct metadata_gc_stats st = {0};
        struct marker m = {.db = db};
        struct sweeper s = {.m = &m};
        int64_t start = metadata_now();
        int r;

        pthread_mutex_lock(&db->gc_run);
        {
                _cleanup_(txn_abortp) MDB_txn *rtxn = NULL;
                r = mdb_begin(db, false, &rtxn, err);
                if (r < 0)
                        goto out;
                m.txn = rtxn;
                run_marking(&m);
                size_t read_id = mdb_txn_id(rtxn);
                mdb_txn_abort(TAKE_PTR(rtxn));

                _cleanup_(txn_abortp) MDB_txn *wtxn = NULL;
                r = mdb_begin(db, true, &wtxn, err);
                if (r < 0)
                        goto out;
                m.txn = wtxn;
                /* Something was committed since the marks were computed: redo them under the writer lock. */
                if (mdb_txn_id(wtxn) != read_id + 1)
                        run_marking(&m);
                (void)mdb_foreach_prefix(db, wtxn, MT_CONTENT, "", 0, sweep_content, &s);
                (void)mdb_foreach_prefix(db, wtxn, MT_SNAPSHOTS, "", 0, sweep_snapshot, &s);
                (void)mdb_foreach_prefix(db, wtxn, MT_LEASES, "", 0, sweep_lease, &s);
                for (size_t i = 0; i < s.ndead; i++) {
                        int rc = mdb_del(wtxn, db->dbi[s.dead_table[i]], &s.dead[i], NULL);
                        if (rc != 0 && rc != MDB_NOTFOUND) {
                                r = mdb_err(err, rc, "gc delete");
                                goto out;
                        }
                        if (s.dead_table[i] == MT_LEASES) {
                                /* lease key "ns\0id" -> resources prefix "ns\0id\0" */
                                size_t pl = s.dead[i].mv_size + 1;
                                _cleanup_free_ char *prefix = xmalloc(pl);
                                memcpy(prefix, s.dead[i].mv_data, pl - 1);
                                prefix[pl - 1] = '\0';
                                r = mdb_delete_prefix(db, wtxn, MT_LEASE_RESOURCES, prefix, pl, err);
                                if (r < 0)
                                        goto out;
                        }
                }
                m.txn = NULL;
                r = mdb_commit(TAKE_PTR(wtxn), err);
                if (r < 0)
                        goto out;
        }
        st.content_refs = s.content;
        st.snapshots = s.nsnaps;
        st.leases = s.leases;
        remove_snapshots(&s, snapshot_fn, userdata, &st);
        if (cs) {
                r = sweep_blobs(db, cs, &st, err);
                sweep_ingests(db, cs, &st);
        }
out:
        pthread_mutex_unlock(&db->gc_run);
        sweeper_reset(&s);
        marker_free(&m);
        st.duration_ns = metadata_now() - start;
        if (stats)
                *stats = st;
        return r;
}

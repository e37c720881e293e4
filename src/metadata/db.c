#include "metadata/metadata-internal.h"

#include <errno.h>
#include <regex.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "util/alloc.h"
#include "util/identifiers.h"

/* Sparse: LMDB only reserves address space. containerd's bolt grows without bound; 4 GiB is plenty for
 * metadata (content bytes live in the content store). */
#define MAP_SIZE ((size_t)4 << 30)

static const char *const table_names[MT_COUNT] = {
    [MT_NAMESPACES] = "namespaces",    [MT_IMAGES] = "images",
    [MT_CONTENT] = "content",          [MT_LEASES] = "leases",
    [MT_LEASE_RESOURCES] = "leaseres", [MT_CONTAINERS] = "containers",
    [MT_SNAPSHOTS] = "snapshots",      [MT_META] = "meta",
};

int mdb_err(struct error **err, int rc, const char *what)
{
        switch (rc) {
        case 0:
                return 0;
        case MDB_NOTFOUND:
                return error_set(err, ENOENT, "%s", what);
        case MDB_MAP_FULL:
                return error_set(err, ENOSPC, "metadata %s: database full", what);
        default:
                if (rc > 0 && rc < 4096)
                        return error_set(err, rc, "metadata %s", what);
                return error_set(err, EIO, "metadata %s: %s", what, mdb_strerror(rc));
        }
}

int mdb_begin(struct metadata_db *db, bool write, MDB_txn **ret, struct error **err)
{
        int rc = mdb_txn_begin(db->env, NULL, write ? 0 : MDB_RDONLY, ret);
        if (rc != 0)
                return mdb_err(err, rc, "begin transaction");
        return 0;
}

int mdb_commit(MDB_txn *txn, struct error **err)
{
        int rc = mdb_txn_commit(txn);
        if (rc != 0)
                return mdb_err(err, rc, "commit");
        return 0;
}

int metadata_db_open(const char *dir, struct metadata_db **ret, struct error **err)
{
        _cleanup_free_ struct metadata_db *db = xcalloc(1, sizeof(*db));
        MDB_env *env = NULL;
        MDB_txn *txn = NULL;
        int rc;

        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return error_set(err, errno, "metadata: create %s", dir);
        rc = mdb_env_create(&env);
        if (rc != 0)
                return mdb_err(err, rc, "create environment");
        (void)mdb_env_set_maxdbs(env, MT_COUNT + 2);
        (void)mdb_env_set_mapsize(env, MAP_SIZE);
        (void)mdb_env_set_maxreaders(env, 512);
        /* NOTLS: transactions are not tied to threads (worker pool + loop thread). */
        rc = mdb_env_open(env, dir, MDB_NOTLS, 0600);
        if (rc != 0) {
                mdb_env_close(env);
                return mdb_err(err, rc, dir);
        }
        rc = mdb_txn_begin(env, NULL, 0, &txn);
        for (int i = 0; rc == 0 && i < MT_COUNT; i++)
                rc = mdb_dbi_open(txn, table_names[i], MDB_CREATE, &db->dbi[i]);
        if (rc == 0)
                rc = mdb_txn_commit(txn);
        else if (txn)
                mdb_txn_abort(txn);
        if (rc != 0) {
                mdb_env_close(env);
                return mdb_err(err, rc, "open tables");
        }
        {
                /* A crashed process may leave stale reader slots; clear them. */
                int dead = 0;
                (void)mdb_reader_check(env, &dead);
        }
        db->env = env;
        db->path = xstrdup(dir);
        pthread_rwlock_init(&db->gc_lock, NULL);
        pthread_mutex_init(&db->gc_run, NULL);
        *ret = TAKE_PTR(db);
        return 0;
}

void metadata_db_close(struct metadata_db *db)
{
        if (!db)
                return;
        if (db->env) {
                mdb_env_close(db->env);
                pthread_rwlock_destroy(&db->gc_lock);
                pthread_mutex_destroy(&db->gc_run);
        }
        free(db->path);
        free(db);
}

uint64_t metadata_db_dirty(struct metadata_db *db)
{
        return __atomic_load_n(&db->dirty, __ATOMIC_ACQUIRE);
}

void metadata_mark_dirty(struct metadata_db *db)
{
        __atomic_add_fetch(&db->dirty, 1, __ATOMIC_RELEASE);
}

int64_t metadata_now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int metadata_validate_identifier(const char *s, struct error **err)
{
        return identifier_validate(s ? s : "", err);
}

/* --- labels --- */

size_t metadata_labels_count(char *const *labels)
{
        size_t n = 0;
        if (labels)
                while (labels[2 * n])
                        n++;
        return n;
}

int metadata_labels_validate(char *const *labels, struct error **err)
{
        for (size_t i = 0; labels && labels[i]; i += 2) {
                size_t sz = strlen(labels[i]) + (labels[i + 1] ? strlen(labels[i + 1]) : 0);
                if (sz > 4096)
                        return error_set(err, EINVAL,
                                         "label key and value greater than maximum size (4096 bytes), key: %.*s",
                                         (int)(strlen(labels[i]) > 64 ? 64 : strlen(labels[i])), labels[i]);
        }
        return 0;
}

const char *metadata_labels_get(char *const *labels, const char *key)
{
        for (size_t i = 0; labels && labels[i]; i += 2)
                if (strcmp(labels[i], key) == 0)
                        return labels[i + 1];
        return NULL;
}

void metadata_labels_set(char ***labels, const char *key, const char *value)
{
        char **l = *labels;
        size_t n = metadata_labels_count(l);
        for (size_t i = 0; i < n; i++) {
                if (strcmp(l[2 * i], key) != 0)
                        continue;
                if (value && value[0]) {
                        free(l[2 * i + 1]);
                        l[2 * i + 1] = xstrdup(value);
                } else {
                        free(l[2 * i]);
                        free(l[2 * i + 1]);
                        memmove(&l[2 * i], &l[2 * i + 2], (2 * (n - i - 1) + 1) * sizeof(char *));
                }
                return;
        }
        if (!value || !value[0])
                return;
        l = xreallocarray(l, 2 * n + 3, sizeof(char *));
        size_t pos = 0;
        while (pos < n && strcmp(l[2 * pos], key) < 0)
                pos++;
        memmove(&l[2 * pos + 2], &l[2 * pos], (2 * (n - pos)) * sizeof(char *));
        l[2 * pos] = xstrdup(key);
        l[2 * pos + 1] = xstrdup(value);
        l[2 * n + 2] = NULL;
        *labels = l;
}

char **metadata_labels_dup(char *const *labels)
{
        if (!labels)
                return NULL;
        char **out = xcalloc(1, sizeof(char *));
        for (size_t i = 0; labels[i]; i += 2)
                metadata_labels_set(&out, labels[i], labels[i + 1]);
        return out;
}

void metadata_labels_apply(char ***cur, char *const *req, char *const *paths, size_t npaths, size_t *ret_other)
{
        size_t other = 0;
        if (npaths == 0) {
                strv_free(*cur);
                *cur = metadata_labels_dup(req);
        }
        for (size_t i = 0; i < npaths; i++) {
                if (strcmp(paths[i], "labels") == 0) {
                        strv_free(*cur);
                        *cur = metadata_labels_dup(req);
                } else if (strncmp(paths[i], "labels.", 7) == 0) {
                        const char *k = paths[i] + 7;
                        metadata_labels_set(cur, k, metadata_labels_get(req, k));
                } else {
                        other++;
                }
        }
        if (ret_other)
                *ret_other = other;
}

/* --- record codec --- */

void rec_put(struct rec *r, uint8_t tag, const void *data, size_t n)
{
        if (r->len + n + 5 > r->cap) {
                r->cap = (r->len + n + 5) * 2 + 64;
                r->p = xrealloc(r->p, r->cap);
        }
        uint32_t l = (uint32_t)n;
        r->p[r->len++] = tag;
        memcpy(r->p + r->len, &l, 4);
        r->len += 4;
        if (n)
                memcpy(r->p + r->len, data, n);
        r->len += n;
}

void rec_put_str(struct rec *r, uint8_t tag, const char *s)
{
        if (s)
                rec_put(r, tag, s, strlen(s));
}

void rec_put_i64(struct rec *r, uint8_t tag, int64_t v)
{
        rec_put(r, tag, &v, sizeof(v));
}

void rec_put_labels(struct rec *r, uint8_t tag, char *const *labels)
{
        for (size_t i = 0; labels && labels[i]; i += 2) {
                if (!labels[i + 1] || !labels[i + 1][0])
                        continue;
                size_t kl = strlen(labels[i]), vl = strlen(labels[i + 1]);
                _cleanup_free_ char *b = xmalloc(kl + vl + 1);
                memcpy(b, labels[i], kl + 1);
                memcpy(b + kl + 1, labels[i + 1], vl);
                rec_put(r, tag, b, kl + 1 + vl);
        }
}

int rec_next(struct rec_iter *it, uint8_t *tag, const uint8_t **data, size_t *n)
{
        if (it->left == 0)
                return 0;
        if (it->left < 5)
                return -EIO;
        uint32_t l;
        memcpy(&l, it->p + 1, 4);
        if (l > it->left - 5)
                return -EIO;
        *tag = it->p[0];
        *data = it->p + 5;
        *n = l;
        it->p += 5 + l;
        it->left -= 5 + l;
        return 1;
}

char *rec_str(const uint8_t *data, size_t n)
{
        return xstrndup((const char *)data, n);
}

int64_t rec_i64(const uint8_t *data, size_t n)
{
        int64_t v = 0;
        if (n == sizeof(v))
                memcpy(&v, data, sizeof(v));
        return v;
}

void rec_label_add(char ***labels, size_t *npairs, const uint8_t *data, size_t n)
{
        const uint8_t *z = memchr(data, 0, n);
        if (!z)
                return;
        size_t kl = (size_t)(z - data);
        char **l = xreallocarray(*labels, 2 * *npairs + 3, sizeof(char *));
        l[2 * *npairs] = xstrndup((const char *)data, kl);
        l[2 * *npairs + 1] = xstrndup((const char *)z + 1, n - kl - 1);
        l[2 * *npairs + 2] = NULL;
        (*npairs)++;
        *labels = l;
}

/* --- keys --- */

void *mkey(size_t *ret_len, size_t n, ...)
{
        va_list ap;
        size_t len = 0;
        va_start(ap, n);
        for (size_t i = 0; i < n; i++)
                len += strlen(va_arg(ap, const char *)) + (i ? 1 : 0);
        va_end(ap);
        char *k = xmalloc(len + 1), *p = k;
        va_start(ap, n);
        for (size_t i = 0; i < n; i++) {
                const char *s = va_arg(ap, const char *);
                size_t l = strlen(s);
                if (i)
                        *p++ = '\0';
                memcpy(p, s, l);
                p += l;
        }
        va_end(ap);
        *p = '\0';
        *ret_len = len;
        return k;
}

size_t mkey_split(const void *key, size_t len, char **out, size_t max)
{
        const char *p = key, *end = p + len;
        size_t n = 0;
        while (n < max) {
                const char *z = memchr(p, 0, (size_t)(end - p));
                if (!z || n == max - 1)
                        z = end;
                out[n++] = xstrndup(p, (size_t)(z - p));
                if (z == end)
                        break;
                p = z + 1;
        }
        return n;
}

bool mkey_has_prefix(const MDB_val *key, const void *prefix, size_t plen)
{
        return key->mv_size >= plen && memcmp(key->mv_data, prefix, plen) == 0;
}

bool mdb_has_prefix(struct metadata_db *db, MDB_txn *txn, enum mdb_table t, const void *prefix, size_t plen)
{
        _cleanup_(cursor_closep) MDB_cursor *c = NULL;
        MDB_val k = {.mv_size = plen, .mv_data = (void *)prefix}, v;
        if (mdb_cursor_open(txn, db->dbi[t], &c) != 0)
                return false;
        if (plen == 0)
                return mdb_cursor_get(c, &k, &v, MDB_FIRST) == 0;
        return mdb_cursor_get(c, &k, &v, MDB_SET_RANGE) == 0 && mkey_has_prefix(&k, prefix, plen);
}

int mdb_delete_prefix(struct metadata_db *db, MDB_txn *txn, enum mdb_table t, const void *prefix, size_t plen,
                      struct error **err)
{
        _cleanup_(cursor_closep) MDB_cursor *c = NULL;
        MDB_val k = {.mv_size = plen, .mv_data = (void *)prefix}, v;
        int rc = mdb_cursor_open(txn, db->dbi[t], &c);
        if (rc != 0)
                return mdb_err(err, rc, "cursor");
        rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
        while (rc == 0 && mkey_has_prefix(&k, prefix, plen)) {
                rc = mdb_cursor_del(c, 0);
                if (rc != 0)
                        return mdb_err(err, rc, "delete");
                /* Re-seek rather than trust the cursor position after a delete (LMDB C_DEL quirks). */
                k.mv_size = plen;
                k.mv_data = (void *)prefix;
                rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
        }
        if (rc != 0 && rc != MDB_NOTFOUND)
                return mdb_err(err, rc, "iterate");
        return 0;
}

int mdb_foreach_prefix(struct metadata_db *db, MDB_txn *txn, enum mdb_table t, const void *prefix, size_t plen,
                       mdb_iter_fn fn, void *userdata)
{
        _cleanup_(cursor_closep) MDB_cursor *c = NULL;
        MDB_val k = {.mv_size = plen, .mv_data = (void *)prefix}, v;
        int rc = mdb_cursor_open(txn, db->dbi[t], &c);
        if (rc != 0)
                return -EIO;
        rc = plen ? mdb_cursor_get(c, &k, &v, MDB_SET_RANGE) : mdb_cursor_get(c, &k, &v, MDB_FIRST);
        while (rc == 0 && mkey_has_prefix(&k, prefix, plen)) {
                int r = fn(&k, &v, userdata);
                if (r != 0)
                        return r;
                rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
        }
        return 0;
}

char *ns_prefix(const char *ns, size_t *plen)
{
        size_t l = strlen(ns);
        char *p = xmalloc(l + 2);
        memcpy(p, ns, l);
        p[l] = '\0';
        p[l + 1] = '\0';
        *plen = l + 1;
        return p;
}

char *path_join(const char *const *path, size_t n, size_t from)
{
        char *s = xstrdup("");
        for (size_t i = from; i < n; i++) {
                char *t = i == from ? xstrdup(path[i]) : xasprintf("%s.%s", s, path[i]);
                free(s);
                s = t;
        }
        return s;
}

bool map_lookup(const char *const *path, size_t npath, char *const *labels, const char **ret)
{
        if (npath < 2)
                return false;
        _cleanup_free_ char *k = path_join(path, npath, 1);
        const char *v = metadata_labels_get(labels, k);
        if (!v)
                return false;
        *ret = v;
        return true;
}

static int parse_digits(const char **p, int n, int *ret)
{
        int v = 0;
        for (int i = 0; i < n; i++) {
                if ((*p)[i] < '0' || (*p)[i] > '9')
                        return -EINVAL;
                v = v * 10 + ((*p)[i] - '0');
        }
        *p += n;
        *ret = v;
        return 0;
}

int parse_rfc3339(const char *s, int64_t *ret)
{
        int Y, M, D, h, m, sec;
        const char *p = s;
        if (parse_digits(&p, 4, &Y) < 0 || *p++ != '-' || parse_digits(&p, 2, &M) < 0 || *p++ != '-' ||
            parse_digits(&p, 2, &D) < 0 || (*p != 'T' && *p != 't' && *p != ' '))
                return -EINVAL;
        p++;
        if (parse_digits(&p, 2, &h) < 0 || *p++ != ':' || parse_digits(&p, 2, &m) < 0 || *p++ != ':' ||
            parse_digits(&p, 2, &sec) < 0)
                return -EINVAL;
        int64_t frac = 0;
        if (*p == '.') {
                p++;
                int digits = 0;
                while (*p >= '0' && *p <= '9') {
                        if (digits < 9) {
                                frac = frac * 10 + (*p - '0');
                                digits++;
                        }
                        p++;
                }
                if (digits == 0)
                        return -EINVAL;
                while (digits++ < 9)
                        frac *= 10;
        }
        int off = 0;
        if (*p == 'Z' || *p == 'z') {
                p++;
        } else if (*p == '+' || *p == '-') {
                int sign = *p++ == '-' ? -1 : 1, oh, om;
                if (parse_digits(&p, 2, &oh) < 0 || *p++ != ':' || parse_digits(&p, 2, &om) < 0)
                        return -EINVAL;
                off = sign * (oh * 3600 + om * 60);
        } else {
                return -EINVAL;
        }
        if (*p || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
                return -EINVAL;
        struct tm tm = {.tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D, .tm_hour = h, .tm_min = m, .tm_sec = sec};
        int64_t t = (int64_t)timegm(&tm) - off;
        /* ns since the epoch overflow int64 after 2262: saturate (far-future expiries stay in the future). */
        if (t >= INT64_MAX / 1000000000LL)
                *ret = INT64_MAX;
        else if (t <= INT64_MIN / 1000000000LL)
                *ret = INT64_MIN;
        else
                *ret = t * 1000000000LL + frac;
        return 0;
}

void metadata_gc_lock_shared(struct metadata_db *db)
{
        pthread_rwlock_rdlock(&db->gc_lock);
}

void metadata_gc_unlock_shared(struct metadata_db *db)
{
        pthread_rwlock_unlock(&db->gc_lock);
}

int mdb_record_put(struct metadata_db *db, MDB_txn *txn, enum mdb_table table, const void *key, size_t kl,
                   const struct rec *rec, unsigned flags, const char *kind, const char *what, struct error **err)
{
        MDB_val k = {kl, (void *)key}, v = {rec->len, rec->p};
        int rc = mdb_put(txn, db->dbi[table], &k, &v, flags);
        if (rc == MDB_KEYEXIST)
                return error_set(err, EEXIST, "%s", what);
        if (rc != 0) {
                _cleanup_free_ char *op = xasprintf("put %s", kind);
                return mdb_err(err, rc, op);
        }
        return 0;
}

int mdb_record_get(struct metadata_db *db, MDB_txn *txn, enum mdb_table table, const void *key, size_t kl,
                   MDB_val *ret, const char *kind, const char *what, struct error **err)
{
        MDB_val k = {kl, (void *)key};
        int rc = mdb_get(txn, db->dbi[table], &k, ret);
        if (rc == MDB_NOTFOUND)
                return error_set(err, ENOENT, "%s", what);
        if (rc != 0) {
                _cleanup_free_ char *op = xasprintf("get %s", kind);
                return mdb_err(err, rc, op);
        }
        return 0;
}

#include "metadata/containers.h"

#include <errno.h>
#include <string.h>

#include "metadata/metadata-internal.h"
#include "util/alloc.h"

enum {
        T_LABEL = 'L',
        T_IMAGE = 'i',
        T_RUNTIME = 'r',
        T_RUNTIME_OPT_URL = 'o',
        T_RUNTIME_OPT_VAL = 'O',
        T_SPEC_URL = 'p',
        T_SPEC_VAL = 'P',
        T_SNAPSHOTTER = 'n',
        T_SNAPSHOT_KEY = 'k',
        T_CREATED = 'c',
        T_UPDATED = 'u',
        T_EXT_NAME = 'x', /* followed by T_EXT_URL and T_EXT_VAL */
        T_EXT_URL = 'y',
        T_EXT_VAL = 'Y',
        T_SANDBOX = 's',
};

void metadata_any_clear(struct metadata_any *a)
{
        free(a->type_url);
        free(a->value);
        memset(a, 0, sizeof(*a));
}

void metadata_any_copy(struct metadata_any *dst, const struct metadata_any *src)
{
        dst->type_url = xstrdup(src->type_url);
        dst->value = src->len ? xmemdup(src->value, src->len) : NULL;
        dst->len = src->len;
}

static void ext_free(struct metadata_extension *e, size_t n)
{
        for (size_t i = 0; e && i < n; i++) {
                free(e[i].name);
                metadata_any_clear(&e[i].value);
        }
        free(e);
}

void metadata_container_clear(struct metadata_container *c)
{
        free(c->id);
        strv_free(c->labels);
        free(c->image);
        free(c->runtime_name);
        metadata_any_clear(&c->runtime_options);
        metadata_any_clear(&c->spec);
        free(c->snapshotter);
        free(c->snapshot_key);
        ext_free(c->extensions, c->nextensions);
        free(c->sandbox);
        memset(c, 0, sizeof(*c));
}

void metadata_container_list_free(struct metadata_container *c, size_t n)
{
        for (size_t i = 0; c && i < n; i++)
                metadata_container_clear(&c[i]);
        free(c);
}

static void copy_exts(struct metadata_container *dst, const struct metadata_container *src)
{
        ext_free(dst->extensions, dst->nextensions);
        dst->extensions = src->nextensions ? xcalloc(src->nextensions, sizeof(*dst->extensions)) : NULL;
        dst->nextensions = src->nextensions;
        for (size_t i = 0; i < src->nextensions; i++) {
                dst->extensions[i].name = xstrdup(src->extensions[i].name);
                metadata_any_copy(&dst->extensions[i].value, &src->extensions[i].value);
        }
}

static void copy_container(struct metadata_container *d, const struct metadata_container *s)
{
        memset(d, 0, sizeof(*d));
        d->id = xstrdup(s->id);
        d->labels = metadata_labels_dup(s->labels);
        d->image = xstrdup(s->image);
        d->runtime_name = xstrdup(s->runtime_name);
        metadata_any_copy(&d->runtime_options, &s->runtime_options);
        metadata_any_copy(&d->spec, &s->spec);
        d->snapshotter = xstrdup(s->snapshotter);
        d->snapshot_key = xstrdup(s->snapshot_key);
        d->created_at = s->created_at;
        d->updated_at = s->updated_at;
        copy_exts(d, s);
        d->sandbox = xstrdup(s->sandbox);
}

static void put_any(struct rec *r, uint8_t tu, uint8_t tv, const struct metadata_any *a)
{
        if (!a->type_url)
                return;
        rec_put_str(r, tu, a->type_url);
        rec_put(r, tv, a->value, a->len);
}

static void encode(struct rec *r, const struct metadata_container *c)
{
        rec_put_labels(r, T_LABEL, c->labels);
        rec_put_str(r, T_IMAGE, c->image);
        rec_put_str(r, T_RUNTIME, c->runtime_name);
        put_any(r, T_RUNTIME_OPT_URL, T_RUNTIME_OPT_VAL, &c->runtime_options);
        put_any(r, T_SPEC_URL, T_SPEC_VAL, &c->spec);
        rec_put_str(r, T_SNAPSHOTTER, c->snapshotter);
        rec_put_str(r, T_SNAPSHOT_KEY, c->snapshot_key);
        rec_put_i64(r, T_CREATED, c->created_at);
        rec_put_i64(r, T_UPDATED, c->updated_at);
        for (size_t i = 0; i < c->nextensions; i++) {
                rec_put_str(r, T_EXT_NAME, c->extensions[i].name);
                rec_put_str(r, T_EXT_URL, c->extensions[i].value.type_url ? c->extensions[i].value.type_url : "");
                rec_put(r, T_EXT_VAL, c->extensions[i].value.value, c->extensions[i].value.len);
        }
        rec_put_str(r, T_SANDBOX, c->sandbox);
}

static int decode(const MDB_val *v, const char *id, const void *ctx, void *ret)
{
        struct metadata_container *c = ret;
        (void)ctx;
        struct rec_iter it = {v->mv_data, v->mv_size};
        uint8_t tag;
        const uint8_t *d;
        size_t n, nl = 0;
        int r;
        memset(c, 0, sizeof(*c));
        c->id = xstrdup(id);
        c->labels = xcalloc(1, sizeof(char *));
        struct metadata_extension *cur = NULL;
        while ((r = rec_next(&it, &tag, &d, &n)) > 0) {
                switch (tag) {
                case T_LABEL:
                        rec_label_add(&c->labels, &nl, d, n);
                        break;
                case T_IMAGE:
                        free(c->image);
                        c->image = rec_str(d, n);
                        break;
                case T_RUNTIME:
                        free(c->runtime_name);
                        c->runtime_name = rec_str(d, n);
                        break;
                case T_RUNTIME_OPT_URL:
                        free(c->runtime_options.type_url);
                        c->runtime_options.type_url = rec_str(d, n);
                        break;
                case T_RUNTIME_OPT_VAL:
                        free(c->runtime_options.value);
                        c->runtime_options.value = n ? xmemdup(d, n) : NULL;
                        c->runtime_options.len = n;
                        break;
                case T_SPEC_URL:
                        free(c->spec.type_url);
                        c->spec.type_url = rec_str(d, n);
                        break;
                case T_SPEC_VAL:
                        free(c->spec.value);
                        c->spec.value = n ? xmemdup(d, n) : NULL;
                        c->spec.len = n;
                        break;
                case T_SNAPSHOTTER:
                        free(c->snapshotter);
                        c->snapshotter = rec_str(d, n);
                        break;
                case T_SNAPSHOT_KEY:
                        free(c->snapshot_key);
                        c->snapshot_key = rec_str(d, n);
                        break;
                case T_CREATED:
                        c->created_at = rec_i64(d, n);
                        break;
                case T_UPDATED:
                        c->updated_at = rec_i64(d, n);
                        break;
                case T_EXT_NAME:
                        c->extensions = xreallocarray(c->extensions, c->nextensions + 1, sizeof(*c->extensions));
                        cur = &c->extensions[c->nextensions++];
                        memset(cur, 0, sizeof(*cur));
                        cur->name = rec_str(d, n);
                        break;
                case T_EXT_URL:
                        if (cur) {
                                free(cur->value.type_url);
                                cur->value.type_url = rec_str(d, n);
                        }
                        break;
                case T_EXT_VAL:
                        if (cur) {
                                free(cur->value.value);
                                cur->value.value = n ? xmemdup(d, n) : NULL;
                                cur->value.len = n;
                        }
                        break;
                case T_SANDBOX:
                        free(c->sandbox);
                        c->sandbox = rec_str(d, n);
                        break;
                default:
                        break;
                }
        }
        return r < 0 ? -EIO : 0;
}

static int validate(const struct metadata_container *c, struct error **err)
{
        int r = metadata_validate_identifier(c->id, err);
        if (r < 0)
                return error_wrap(err, "container.ID");
        for (size_t i = 0; i < c->nextensions; i++)
                if (!c->extensions[i].name || !c->extensions[i].name[0])
                        return error_set(err, EINVAL, "container.Extension keys must not be zero-length");
        r = metadata_labels_validate(c->labels, err);
        if (r < 0)
                return error_wrap(err, "containers.Labels");
        if (!c->runtime_name || !c->runtime_name[0])
                return error_set(err, EINVAL, "container.Runtime.Name must be set");
        if (!c->spec.type_url)
                return error_set(err, EINVAL, "container.Spec must be set");
        if (c->snapshot_key && c->snapshot_key[0] && (!c->snapshotter || !c->snapshotter[0]))
                return error_set(err, EINVAL, "container.Snapshotter must be set if container.SnapshotKey is set");
        return 0;
}

static int put(struct metadata_db *db, MDB_txn *txn, const char *ns, const struct metadata_container *c, unsigned flags,
               struct error **err)
{
        _cleanup_(rec_freep) struct rec r = {0};
        size_t kl;
        _cleanup_free_ void *key = mkey(&kl, 2, ns, c->id);
        encode(&r, c);
        _cleanup_free_ char *what = xasprintf("container \"%s\"", c->id);
        return mdb_record_put(db, txn, MT_CONTAINERS, key, kl, &r, flags, "container", what, err);
}

static bool container_field(const char *const *path, size_t n, const char **ret, void *ud);

static void clear(void *rec)
{
        metadata_container_clear(rec);
}

static bool match(const struct filter *f, void *rec)
{
        return filter_match(f, container_field, rec);
}

static const struct mdb_record_type container_record = {
        .table = MT_CONTAINERS,
        .kind = "container",
        .size = sizeof(struct metadata_container),
        .decode = decode,
        .clear = clear,
        .match = match,
};

static int get_txn(struct metadata_db *db, MDB_txn *txn, const char *ns, const char *id, struct metadata_container *ret,
                   struct error **err)
{
        size_t kl;
        _cleanup_free_ void *key = mkey(&kl, 2, ns, id);
        _cleanup_free_ char *what = xasprintf("container \"%s\"", id);
        return mdb_record_load(db, txn, &container_record, key, kl, id, NULL, what, ret, err);
}

int metadata_container_get(struct metadata_db *db, const char *ns, const char *id, struct metadata_container *ret,
                           struct error **err)
{
        _cleanup_(txn_abortp) MDB_txn *txn = NULL;
        if (!id || !id[0])
                return error_set(err, EINVAL, "container id must not be empty");
        int r = mdb_begin(db, false, &txn, err);
        if (r < 0)
                return r;
        return get_txn(db, txn, ns, id, ret, err);
}

static bool container_field(const char *const *path, size_t n, const char **ret, void *ud)
{
        const struct metadata_container *c = ud;
        if (n == 0)
                return false;
        if (strcmp(path[0], "labels") == 0)
                return map_lookup(path, n, c->labels, ret);
        _cleanup_free_ char *p = path_join(path, n, 0);
        const char *v = NULL;
        if (strcmp(p, "id") == 0)
                v = c->id;
        else if (strcmp(p, "image") == 0)
                v = c->image;
        else if (strcmp(p, "runtime.name") == 0 || strcmp(p, "runtime") == 0)
                v = c->runtime_name;
        else if (strcmp(p, "snapshotter") == 0)
                v = c->snapshotter;
        else if (strcmp(p, "snapshotkey") == 0 || strcmp(p, "snapshot_key") == 0)
                v = c->snapshot_key;
        if (!v || !v[0])
                return false;
        *ret = v;
        return true;
}

int metadata_container_list(struct metadata_db *db, const char *ns, const struct filter *f,
                            struct metadata_container **ret, size_t *ret_n, struct error **err)
{
        size_t plen;
        _cleanup_free_ char *prefix = ns_prefix(ns, &plen);
        return mdb_record_list(db, &container_record, prefix, plen, f, NULL, (void **)ret, ret_n, err);
}

int metadata_container_create(struct metadata_db *db, const char *ns, const struct metadata_container *c,
                              struct metadata_container *ret, struct error **err)
{
        _cleanup_(txn_abortp) MDB_txn *txn = NULL;
        struct metadata_container rec;
        int r = validate(c, err);
        if (r < 0)
                return error_wrap(err, "create container failed validation");
        r = mdb_begin(db, true, &txn, err);
        if (r < 0)
                return r;
        r = ns_ensure_txn(db, txn, ns, err);
        if (r < 0)
                return r;
        copy_container(&rec, c);
        rec.created_at = rec.updated_at = metadata_now();
        r = put(db, txn, ns, &rec, MDB_NOOVERWRITE, err);
        if (r == 0)
                r = mdb_commit(TAKE_PTR(txn), err);
        if (r == 0 && ret)
                *ret = rec;
        else
                metadata_container_clear(&rec);
        return r;
}

static bool str_eq(const char *a, const char *b)
{
        return strcmp(a ? a : "", b ? b : "") == 0;
}

static void ext_set(struct metadata_container *dst, const char *name, const struct metadata_container *src)
{
        size_t i;
        for (i = 0; i < dst->nextensions; i++)
                if (strcmp(dst->extensions[i].name, name) == 0)
                        break;
        const struct metadata_any *val = NULL;
        for (size_t j = 0; j < src->nextensions; j++)
                if (strcmp(src->extensions[j].name, name) == 0)
                        val = &src->extensions[j].value;
        if (i == dst->nextensions) {
                dst->extensions = xreallocarray(dst->extensions, dst->nextensions + 1, sizeof(*dst->extensions));
                memset(&dst->extensions[i], 0, sizeof(dst->extensions[i]));
                dst->extensions[i].name = xstrdup(name);
                dst->nextensions++;
        }
        metadata_any_clear(&dst->extensions[i].value);
        if (val)
                metadata_any_copy(&dst->extensions[i].value, val);
        else
                dst->extensions[i].value.type_url = xstrdup("");
}

int metadata_container_update(struct metadata_db *db, const char *ns, const struct metadata_container *c,
                              char *const *paths, size_t npaths, struct metadata_container *ret, struct error **err)
{
        static char *const full[] = {"labels", "spec", "extensions", "image", "snapshotkey"};
        _cleanup_(txn_abortp) MDB_txn *txn = NULL;
        struct metadata_container cur;
        int r;
        if (!c->id || !c->id[0])
                return error_set(err, EINVAL, "must specify a container id");
        r = mdb_begin(db, true, &txn, err);
        if (r < 0)
                return r;
        r = get_txn(db, txn, ns, c->id, &cur, err);
        if (r < 0)
                return r;
        int64_t created = cur.created_at;
        if (npaths == 0) {
                if (!str_eq(cur.snapshotter, c->snapshotter)) {
                        metadata_container_clear(&cur);
                        return error_set(err, EINVAL, "container.Snapshotter field is immutable");
                }
                if (!str_eq(cur.runtime_name, c->runtime_name)) {
                        metadata_container_clear(&cur);
                        return error_set(err, EINVAL, "container.Runtime.Name field is immutable");
                }
                paths = full;
                npaths = ELEMENTSOF(full);
        }
        for (size_t i = 0; i < npaths; i++) {
                const char *p = paths[i];
                if (strncmp(p, "labels.", 7) == 0) {
                        metadata_labels_set(&cur.labels, p + 7, metadata_labels_get(c->labels, p + 7));
                } else if (strncmp(p, "extensions.", 11) == 0) {
                        ext_set(&cur, p + 11, c);
                } else if (strcmp(p, "labels") == 0) {
                        strv_free(cur.labels);
                        cur.labels = metadata_labels_dup(c->labels);
                } else if (strcmp(p, "spec") == 0) {
                        metadata_any_clear(&cur.spec);
                        metadata_any_copy(&cur.spec, &c->spec);
                } else if (strcmp(p, "extensions") == 0) {
                        copy_exts(&cur, c);
                } else if (strcmp(p, "image") == 0) {
                        free(cur.image);
                        cur.image = xstrdup(c->image);
                } else if (strcmp(p, "snapshotkey") == 0) {
                        free(cur.snapshot_key);
                        cur.snapshot_key = xstrdup(c->snapshot_key);
                } else {
                        metadata_container_clear(&cur);
                        return error_set(err, EINVAL, "cannot update \"%s\" field on \"%s\"", p, c->id);
                }
        }
        r = validate(&cur, err);
        if (r < 0) {
                metadata_container_clear(&cur);
                return error_wrap(err, "update failed validation");
        }
        cur.created_at = created;
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
        metadata_container_clear(&cur);
        return r;
}

int metadata_container_delete(struct metadata_db *db, const char *ns, const char *id, struct error **err)
{
        size_t kl;
        _cleanup_free_ void *key = mkey(&kl, 2, ns, id);
        _cleanup_free_ char *what = xasprintf("container \"%s\"", id);
        return mdb_record_delete(db, MT_CONTAINERS, key, kl, "container", what, err);
}

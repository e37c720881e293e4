/* The snapshotter logic shared by every backend: metadata in LMDB (containerd's snapshots/storage
 * MetaStore, with bbolt replaced by LMDB) and the directory lifecycle of snapshots/<id>. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "snapshot/snapshot-internal.h"
#include "util/alloc.h"
#include "util/cleanup.h"

#define MAX_CHAIN 1000   /* parent chain depth bound (overlayfs itself stacks at most 500) */

static inline void txn_abortp(MDB_txn **t)
{
        if (*t)
                mdb_txn_abort(*t);
}
#define _cleanup_txn_ _cleanup_(txn_abortp)


static int mdb_err(struct error **err, int rc, const char *what)
{
        int code = rc > 0 ? rc : (rc == MDB_MAP_FULL ? ENOSPC : EIO);
        return error_set(err, code, "snapshot metadata %s: %s", what, mdb_strerror(rc));
}

static int64_t now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

const char *snapshot_kind_name(enum snapshot_kind k)
{
        switch (k) {
        case SNAPSHOT_KIND_VIEW:
                return "view";
        case SNAPSHOT_KIND_ACTIVE:
                return "active";
        case SNAPSHOT_KIND_COMMITTED:
                return "committed";
        case SNAPSHOT_KIND_UNKNOWN:
        default:
                return "unknown";
        }
}

void snapshot_mounts_clear(struct snapshot_mounts *m)
{
        if (!m)
                return;
        for (size_t i = 0; i < m->n; i++) {
                free(m->v[i].type);
                free(m->v[i].source);
                strv_free(m->v[i].options);
        }
        free(m->v);
        m->v = NULL;
        m->n = 0;
}

void snapshot_info_clear(struct snapshot_info *i)
{
        if (!i)
                return;
        free(i->name);
        free(i->parent);
        strv_free(i->labels);
        *i = (struct snapshot_info){0};
}

const char *snapshot_labels_get(char *const *labels, const char *key)
{
        for (size_t i = 0; labels && labels[i] && labels[i + 1]; i += 2)
                if (strcmp(labels[i], key) == 0)
                        return labels[i + 1];
        return NULL;
}

void snap_mount_init(struct snapshot_mount *m, const char *type, const char *source)
{
        m->type = xstrdup(type);
        m->source = xstrdup(source);
        m->options = xcalloc(1, sizeof(char *));
}

void snap_mount_add_option(struct snapshot_mount *m, const char *opt)
{
        size_t n = 0;
        while (m->options[n])
                n++;
        m->options = xreallocarray(m->options, n + 2, sizeof(char *));
        m->options[n] = xstrdup(opt);
        m->options[n + 1] = NULL;
}

struct snapshot_mount *snap_mounts_append(struct snapshot_mounts *ms)
{
        ms->v = xreallocarray(ms->v, ms->n + 1, sizeof(*ms->v));
        ms->v[ms->n] = (struct snapshot_mount){0};
        return &ms->v[ms->n++];
}

static bool mkdtemp_at(struct snap_base *b, char *name)
{
        _cleanup_free_ char *p = xasprintf("%s/%s", b->snaps_path, name);
        if (!mkdtemp(p))
                return false;
        memcpy(name, p + strlen(b->snaps_path) + 1, strlen(name));
        return true;
}

static int mkdir_p(const char *path, mode_t mode)
{
        _cleanup_free_ char *p = xstrdup(path);
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = '\0';
                if (mkdir(p, 0711) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

static bool strv_has(char *const *v, const char *s)
{
        for (; v && *v; v++)
                if (strcmp(*v, s) == 0)
                        return true;
        return false;
}

/* --- records --- */

struct rec {
        char *id;
        enum snapshot_kind kind;
        char *parent;
        json_t *labels; /* object, owned */
        int64_t created, updated;
        int64_t size, inodes;
        int64_t children;
};

static void rec_clear(struct rec *r)
{
        free(r->id);
        free(r->parent);
        if (r->labels)
                json_decref(r->labels);
        *r = (struct rec){0};
}

static json_t *labels_to_json(char *const *labels)
{
        json_t *o = json_object();
        for (size_t i = 0; labels && labels[i] && labels[i + 1]; i += 2)
                json_object_set_new(o, labels[i], json_string(labels[i + 1]));
        return o;
}

static char **labels_from_json(const json_t *o)
{
        const char *k;
        json_t *v;
        size_t n = json_object_size(o), i = 0;
        char **l = xcalloc(2 * n + 1, sizeof(char *));

        json_object_foreach((json_t *)o, k, v) {
                l[i++] = xstrdup(k);
                l[i++] = xstrdup(json_is_string(v) ? json_string_value(v) : "");
        }
        return l;
}

/* LMDB keys are limited to 511 bytes by default: longer snapshot keys are refused. */
static int check_key(const char *key, struct error **err)
{
        if (!key || key[0] == '\0')
                return error_set(err, EINVAL, "snapshot key must not be empty");
        if (strlen(key) > 500)
                return error_set(err, EINVAL, "snapshot key \"%.40s...\" longer than 500 bytes", key);
        return 0;
}

static int rec_get(struct snap_base *b, MDB_txn *txn, const char *key, struct rec *ret, struct error **err)
{
        MDB_val k = {strlen(key), (void *)key}, v;
        int rc = mdb_get(txn, b->dbi_snaps, &k, &v);
        if (rc == MDB_NOTFOUND)
                return -ENOENT; /* callers word the message */
        if (rc)
                return mdb_err(err, rc, "get");
        json_error_t jerr;
        _cleanup_(json_decrefp) json_t *j = json_loadb(v.mv_data, v.mv_size, 0, &jerr);
        if (!j || !json_is_object(j))
                return error_set(err, EIO, "snapshot %s: corrupt metadata record", key);
        *ret = (struct rec){0};
        json_t *x;
        ret->id = xstrdup(json_string_value(json_object_get(j, "id")));
        ret->kind = (enum snapshot_kind)json_integer_value(json_object_get(j, "kind"));
        x = json_object_get(j, "parent");
        ret->parent = json_is_string(x) && json_string_length(x) > 0 ? xstrdup(json_string_value(x)) : NULL;
        x = json_object_get(j, "labels");
        ret->labels = json_is_object(x) ? json_incref(x) : json_object();
        ret->created = json_integer_value(json_object_get(j, "created"));
        ret->updated = json_integer_value(json_object_get(j, "updated"));
        ret->size = json_integer_value(json_object_get(j, "size"));
        ret->inodes = json_integer_value(json_object_get(j, "inodes"));
        ret->children = json_integer_value(json_object_get(j, "children"));
        if (!ret->id) {
                rec_clear(ret);
                return error_set(err, EIO, "snapshot %s: corrupt metadata record", key);
        }
        return 0;
}

static int rec_put(struct snap_base *b, MDB_txn *txn, const char *key, const struct rec *r, struct error **err)
{
        _cleanup_(json_decrefp) json_t *j = json_pack("{s:s, s:I, s:s, s:O, s:I, s:I, s:I, s:I, s:I}", "id", r->id,
                                                       "kind", (json_int_t)r->kind, "parent",
                                                       r->parent ? r->parent : "", "labels", r->labels, "created",
                                                       (json_int_t)r->created, "updated", (json_int_t)r->updated,
                                                       "size", (json_int_t)r->size, "inodes", (json_int_t)r->inodes,
                                                       "children", (json_int_t)r->children);
        if (!j)
                return error_set(err, EINVAL, "snapshot %s: cannot encode record (labels must be UTF-8)", key);
        _cleanup_free_ char *s = json_dumps(j, JSON_COMPACT);
        MDB_val k = {strlen(key), (void *)key}, v = {strlen(s), s};
        int rc = mdb_put(txn, b->dbi_snaps, &k, &v, 0);
        if (rc)
                return mdb_err(err, rc, "put");
        return 0;
}

static int rec_del(struct snap_base *b, MDB_txn *txn, const char *key, struct error **err)
{
        MDB_val k = {strlen(key), (void *)key};
        int rc = mdb_del(txn, b->dbi_snaps, &k, NULL);
        if (rc && rc != MDB_NOTFOUND)
                return mdb_err(err, rc, "delete");
        return 0;
}

static void rec_to_info(const char *key, const struct rec *r, struct snapshot_info *i)
{
        *i = (struct snapshot_info){
                .name = xstrdup(key),
                .parent = xstrdup(r->parent),
                .kind = r->kind,
                .labels = labels_from_json(r->labels),
                .created_ns = r->created,
                .updated_ns = r->updated,
        };
}

static int begin(struct snap_base *b, bool write, MDB_txn **ret, struct error **err)
{
        int rc = mdb_txn_begin(b->env, NULL, write ? 0 : MDB_RDONLY, ret);
        if (rc)
                return mdb_err(err, rc, "begin transaction");
        return 0;
}

static int commit_txn(MDB_txn **txn, struct error **err)
{
        int rc = mdb_txn_commit(TAKE_PTR(*txn));
        if (rc)
                return mdb_err(err, rc, "commit");
        return 0;
}

/* Parent ids, nearest first (NULL-terminated). */
static int parent_chain(struct snap_base *b, MDB_txn *txn, const char *parent, char ***ret, struct error **err)
{
        _cleanup_strv_free_ char **ids = xcalloc(1, sizeof(char *));
        _cleanup_free_ char *cur = xstrdup(parent);
        size_t n = 0;

        while (cur && cur[0]) {
                struct rec r;
                if (n >= MAX_CHAIN)
                        return error_set(err, ELOOP, "snapshot parent chain longer than %d", MAX_CHAIN);
                int x = rec_get(b, txn, cur, &r, err);
                if (x == -ENOENT)
                        return error_set(err, ENOENT, "missing parent \"%s\"", cur);
                if (x < 0)
                        return x;
                ids = xreallocarray(ids, n + 2, sizeof(char *));
                ids[n++] = TAKE_PTR(r.id);
                ids[n] = NULL;
                free(cur);
                cur = TAKE_PTR(r.parent);
                rec_clear(&r);
        }
        *ret = TAKE_PTR(ids);
        return 0;
}

/* --- ops --- */

static struct snap_base *base(struct snapshotter *s)
{
        return (struct snap_base *)s;
}

static int create_snapshot(struct snapshotter *s, enum snapshot_kind kind, const char *key, const char *parent,
                           char *const *labels, struct snapshot_mounts *ret, struct error **err)
{
        struct snap_base *b = base(s);
        _cleanup_txn_ MDB_txn *txn = NULL;
        _cleanup_free_ char *parent_id = NULL;
        _cleanup_strv_free_ char **chain = NULL;
        char tmpname[] = "new-XXXXXX";
        _cleanup_close_ int tmp_fd = -1;
        struct rec r = {0};
        int x;

        if (parent && !parent[0])
                parent = NULL;
        x = check_key(key, err);
        if (x < 0)
                return x;

        /* Look the parent up first, to populate the new directory outside the write transaction (a native
         * copy can take a while). */
        if (parent) {
                struct rec p;
                x = begin(b, false, &txn, err);
                if (x < 0)
                        return x;
                x = rec_get(b, txn, parent, &p, err);
                mdb_txn_abort(TAKE_PTR(txn));
                if (x == -ENOENT)
                        return error_set(err, ENOENT, "failed to create snapshot: missing parent \"%s\" bucket", parent);
                if (x < 0)
                        return x;
                parent_id = TAKE_PTR(p.id);
                rec_clear(&p);
        }
        if (!mkdtemp_at(b, tmpname))
                return error_set(err, errno, "create snapshot directory in %s", b->snaps_path);
        tmp_fd = openat(b->snaps_fd, tmpname, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (tmp_fd < 0) {
                x = error_set(err, errno, "open %s/%s", b->snaps_path, tmpname);
                goto fail;
        }
        x = b->be->populate(b, tmp_fd, parent_id, kind, err);
        if (x < 0)
                goto fail;

        x = begin(b, true, &txn, err);
        if (x < 0)
                goto fail;
        {
                struct rec old;
                x = rec_get(b, txn, key, &old, err);
                if (x == 0) {
                        rec_clear(&old);
                        x = error_set(err, EEXIST, "failed to create snapshot: snapshot %s", key);
                        goto fail;
                }
                if (x != -ENOENT)
                        goto fail;
        }
        if (parent) {
                struct rec p;
                x = rec_get(b, txn, parent, &p, err);
                if (x == -ENOENT) {
                        x = error_set(err, ENOENT, "failed to create snapshot: missing parent \"%s\" bucket", parent);
                        goto fail;
                }
                if (x < 0)
                        goto fail;
                if (p.kind != SNAPSHOT_KIND_COMMITTED || strcmp(p.id, parent_id) != 0) {
                        rec_clear(&p);
                        x = error_set(err, EINVAL, "failed to create snapshot: parent \"%s\" is not committed snapshot",
                                      parent);
                        goto fail;
                }
                p.children++;
                x = rec_put(b, txn, parent, &p, err);
                rec_clear(&p);
                if (x < 0)
                        goto fail;
                x = parent_chain(b, txn, parent, &chain, err);
                if (x < 0)
                        goto fail;
        } else {
                chain = xcalloc(1, sizeof(char *));
        }
        {
                MDB_val k = {7, "next_id"}, v;
                uint64_t id = 1;
                int rc = mdb_get(txn, b->dbi_meta, &k, &v);
                if (rc == 0 && v.mv_size == sizeof(uint64_t))
                        memcpy(&id, v.mv_data, sizeof(id));
                else if (rc && rc != MDB_NOTFOUND) {
                        x = mdb_err(err, rc, "get next id");
                        goto fail;
                }
                uint64_t next = id + 1;
                v = (MDB_val){sizeof(next), &next};
                rc = mdb_put(txn, b->dbi_meta, &k, &v, 0);
                if (rc) {
                        x = mdb_err(err, rc, "put next id");
                        goto fail;
                }
                r.id = xasprintf("%" PRIu64, id);
        }
        r.kind = kind;
        r.parent = xstrdup(parent);
        r.labels = labels_to_json(labels);
        r.created = r.updated = now_ns();
        x = rec_put(b, txn, key, &r, err);
        if (x < 0)
                goto fail;
        /* A stale directory with this id can only come from a crash after rename and before commit. */
        (void)snap_rm_rf_at(b->snaps_fd, r.id);
        if (renameat(b->snaps_fd, tmpname, b->snaps_fd, r.id) < 0) {
                x = error_set(err, errno, "rename snapshot directory to %s", r.id);
                goto fail;
        }
        x = commit_txn(&txn, err);
        if (x < 0) {
                (void)snap_rm_rf_at(b->snaps_fd, r.id);
                rec_clear(&r);
                return x;
        }
        if (ret) {
                *ret = (struct snapshot_mounts){0};
                x = b->be->mounts(b, r.id, kind, chain, ret, err);
        }
        rec_clear(&r);
        return x;
fail:
        rec_clear(&r);
        (void)snap_rm_rf_at(b->snaps_fd, tmpname);
        return x;
}

static int op_prepare(struct snapshotter *s, const char *key, const char *parent, char *const *labels,
                      struct snapshot_mounts *ret, struct error **err)
{
        return create_snapshot(s, SNAPSHOT_KIND_ACTIVE, key, parent, labels, ret, err);
}

static int op_view(struct snapshotter *s, const char *key, const char *parent, char *const *labels,
                   struct snapshot_mounts *ret, struct error **err)
{
        return create_snapshot(s, SNAPSHOT_KIND_VIEW, key, parent, labels, ret, err);
}

static int op_mounts(struct snapshotter *s, const char *key, struct snapshot_mounts *ret, struct error **err)
{
        struct snap_base *b = base(s);
        _cleanup_txn_ MDB_txn *txn = NULL;
        _cleanup_strv_free_ char **chain = NULL;
        struct rec r;
        int x;

        x = check_key(key, err);
        if (x < 0)
                return x;
        x = begin(b, false, &txn, err);
        if (x < 0)
                return x;
        x = rec_get(b, txn, key, &r, err);
        if (x == -ENOENT)
                return error_set(err, ENOENT, "failed to get active mount: snapshot does not exist");
        if (x < 0)
                return x;
        if (r.kind != SNAPSHOT_KIND_ACTIVE && r.kind != SNAPSHOT_KIND_VIEW) {
                rec_clear(&r);
                return error_set(err, EBUSY, "failed to get active mount: requested snapshot %s not active or view",
                                 key);
        }
        x = parent_chain(b, txn, r.parent, &chain, err);
        if (x == 0) {
                *ret = (struct snapshot_mounts){0};
                x = b->be->mounts(b, r.id, r.kind, chain, ret, err);
        }
        rec_clear(&r);
        return x;
}

static int op_commit(struct snapshotter *s, const char *name, const char *key, char *const *labels,
                     struct error **err)
{
        struct snap_base *b = base(s);
        _cleanup_txn_ MDB_txn *txn = NULL;
        struct snapshot_usage u = {0};
        _cleanup_free_ char *udir = NULL;
        struct rec r, other;
        int x;

        x = check_key(name, err);
        if (x < 0)
                return x;
        x = check_key(key, err);
        if (x < 0)
                return x;
        /* Usage and sync before the write transaction: both walk or flush the whole tree. */
        x = begin(b, false, &txn, err);
        if (x < 0)
                return x;
        x = rec_get(b, txn, key, &r, err);
        mdb_txn_abort(TAKE_PTR(txn));
        if (x == -ENOENT)
                return error_set(err, ENOENT, "snapshot does not exist");
        if (x < 0)
                return x;
        if (r.kind != SNAPSHOT_KIND_ACTIVE) {
                rec_clear(&r);
                return error_set(err, EBUSY, "failed to commit snapshot: snapshot \"%s\" is not active", key);
        }
        udir = b->be->usage_dir(r.id);
        x = snap_disk_usage(b->snaps_fd, udir, &u, err);
        if (x == 0) {
                /* Layer files were written without per-file fsync; one syncfs makes the committed
                 * snapshot durable. */
                _cleanup_close_ int fd = openat(b->snaps_fd, udir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0 || syncfs(fd) < 0)
                        x = error_set(err, errno, "sync snapshot \"%s\"", key);
        }
        _cleanup_free_ char *id = TAKE_PTR(r.id);
        rec_clear(&r);
        if (x < 0)
                return x;

        x = begin(b, true, &txn, err);
        if (x < 0)
                return x;
        x = rec_get(b, txn, key, &r, err);
        if (x == -ENOENT)
                return error_set(err, ENOENT, "failed to commit snapshot: failed to get active snapshot \"%s\"",
                                 key);
        if (x < 0)
                return x;
        if (r.kind != SNAPSHOT_KIND_ACTIVE || strcmp(r.id, id) != 0) {
                rec_clear(&r);
                return error_set(err, EBUSY, "failed to commit snapshot: snapshot \"%s\" is not active", key);
        }
        x = rec_get(b, txn, name, &other, err);
        if (x == 0) {
                rec_clear(&other);
                rec_clear(&r);
                return error_set(err, EEXIST, "failed to commit snapshot: committed snapshot %s", name);
        }
        if (x != -ENOENT) {
                rec_clear(&r);
                return x;
        }
        r.kind = SNAPSHOT_KIND_COMMITTED;
        r.size = u.size;
        r.inodes = u.inodes;
        r.updated = now_ns();
        if (labels) {
                json_decref(r.labels);
                r.labels = labels_to_json(labels);
        }
        x = rec_del(b, txn, key, err);
        if (x == 0)
                x = rec_put(b, txn, name, &r, err);
        rec_clear(&r);
        if (x < 0)
                return x;
        return commit_txn(&txn, err);
}

static int op_remove(struct snapshotter *s, const char *key, struct error **err)
{
        struct snap_base *b = base(s);
        _cleanup_txn_ MDB_txn *txn = NULL;
        _cleanup_free_ char *rmname = NULL;
        struct rec r;
        int x;

        x = check_key(key, err);
        if (x < 0)
                return x;
        x = begin(b, true, &txn, err);
        if (x < 0)
                return x;
        x = rec_get(b, txn, key, &r, err);
        if (x == -ENOENT)
                return error_set(err, ENOENT, "snapshot \"%s\"", key);
        if (x < 0)
                return x;
        if (r.children > 0) {
                rec_clear(&r);
                return error_set(err, EBUSY, "cannot remove snapshot with child");
        }
        if (r.parent) {
                struct rec p;
                x = rec_get(b, txn, r.parent, &p, err);
                if (x == 0) {
                        if (p.children > 0)
                                p.children--;
                        x = rec_put(b, txn, r.parent, &p, err);
                        rec_clear(&p);
                } else if (x == -ENOENT) {
                        x = 0;
                }
                if (x < 0) {
                        rec_clear(&r);
                        return x;
                }
        }
        x = rec_del(b, txn, key, err);
        if (x < 0) {
                rec_clear(&r);
                return x;
        }
        /* Move the directory out of the way inside the transaction, delete it after the commit: a crash
         * leaves an "rm-" directory that cleanup removes. */
        rmname = xasprintf("rm-%s", r.id);
        if (renameat(b->snaps_fd, r.id, b->snaps_fd, rmname) < 0 && errno != ENOENT) {
                x = error_set(err, errno, "remove snapshot \"%s\" directory", key);
                rec_clear(&r);
                return x;
        }
        x = commit_txn(&txn, err);
        if (x < 0) {
                (void)renameat(b->snaps_fd, rmname, b->snaps_fd, r.id);
                rec_clear(&r);
                return x;
        }
        rec_clear(&r);
        x = snap_rm_rf_at(b->snaps_fd, rmname);
        if (x < 0)
                return error_set(err, -x, "remove snapshot \"%s\" directory (cleanup will retry)", key);
        return 0;
}

static int op_stat(struct snapshotter *s, const char *key, struct snapshot_info *ret, struct error **err)
{
        struct snap_base *b = base(s);
        _cleanup_txn_ MDB_txn *txn = NULL;
        struct rec r;
        int x;

        x = check_key(key, err);
        if (x < 0)
                return x;
        x = begin(b, false, &txn, err);
        if (x < 0)
                return x;
        x = rec_get(b, txn, key, &r, err);
        if (x == -ENOENT)
                return error_set(err, ENOENT, "snapshot \"%s\"", key);
        if (x < 0)
                return x;
        rec_to_info(key, &r, ret);
        rec_clear(&r);
        return 0;
}

static int op_update(struct snapshotter *s, const struct snapshot_info *info, char *const *fieldpaths,
                     struct snapshot_info *ret, struct error **err)
{
        struct snap_base *b = base(s);
        _cleanup_txn_ MDB_txn *txn = NULL;
        struct rec r;
        int x;

        if (!info)
                return error_set(err, EINVAL, "snapshot info required");
        x = check_key(info->name, err);
        if (x < 0)
                return x;
        x = begin(b, true, &txn, err);
        if (x < 0)
                return x;
        x = rec_get(b, txn, info->name, &r, err);
        if (x == -ENOENT)
                return error_set(err, ENOENT, "snapshot \"%s\"", info->name);
        if (x < 0)
                return x;
        if (!fieldpaths || !fieldpaths[0]) {
                json_decref(r.labels);
                r.labels = labels_to_json(info->labels);
        } else {
                for (char *const *f = fieldpaths; *f; f++) {
                        if (strcmp(*f, "labels") == 0) {
                                json_decref(r.labels);
                                r.labels = labels_to_json(info->labels);
                        } else if (strncmp(*f, "labels.", 7) == 0) {
                                const char *lk = *f + 7;
                                const char *v = snapshot_labels_get(info->labels, lk);
                                if (v)
                                        json_object_set_new(r.labels, lk, json_string(v));
                                else
                                        json_object_del(r.labels, lk);
                        } else {
                                rec_clear(&r);
                                return error_set(err, EINVAL, "cannot update \"%s\" field on snapshot \"%s\"", *f,
                                                 info->name);
                        }
                }
        }
        r.updated = now_ns();
        x = rec_put(b, txn, info->name, &r, err);
        if (x == 0)
                x = commit_txn(&txn, err);
        if (x == 0 && ret)
                rec_to_info(info->name, &r, ret);
        rec_clear(&r);
        return x;
}

static int op_usage(struct snapshotter *s, const char *key, struct snapshot_usage *ret, struct error **err)
{
        struct snap_base *b = base(s);
        _cleanup_txn_ MDB_txn *txn = NULL;
        struct rec r;
        int x;

        x = check_key(key, err);
        if (x < 0)
                return x;
        x = begin(b, false, &txn, err);
        if (x < 0)
                return x;
        x = rec_get(b, txn, key, &r, err);
        mdb_txn_abort(TAKE_PTR(txn));
        if (x == -ENOENT)
                return error_set(err, ENOENT, "snapshot \"%s\"", key);
        if (x < 0)
                return x;
        if (r.kind == SNAPSHOT_KIND_COMMITTED) {
                *ret = (struct snapshot_usage){.size = r.size, .inodes = r.inodes};
                rec_clear(&r);
                return 0;
        }
        _cleanup_free_ char *udir = b->be->usage_dir(r.id);
        rec_clear(&r);
        return snap_disk_usage(b->snaps_fd, udir, ret, err);
}

static int op_walk(struct snapshotter *s, snapshot_filter_fn filter, void *filter_data, snapshot_walk_fn fn,
                   void *userdata, struct error **err)
{
        struct snap_base *b = base(s);
        _cleanup_txn_ MDB_txn *txn = NULL;
        MDB_cursor *cur = NULL;
        MDB_val k, v;
        struct snapshot_info *infos = NULL;
        size_t n = 0, cap = 0;
        int x, rc;

        x = begin(b, false, &txn, err);
        if (x < 0)
                return x;
        rc = mdb_cursor_open(txn, b->dbi_snaps, &cur);
        if (rc)
                return mdb_err(err, rc, "cursor");
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
                _cleanup_free_ char *key = xstrndup(k.mv_data, k.mv_size);
                struct rec r;
                x = rec_get(b, txn, key, &r, err);
                if (x < 0)
                        break;
                if (n == cap) {
                        cap = cap ? cap * 2 : 32;
                        infos = xreallocarray(infos, cap, sizeof(*infos));
                }
                rec_to_info(key, &r, &infos[n]);
                rec_clear(&r);
                if (filter && !filter(&infos[n], filter_data)) {
                        snapshot_info_clear(&infos[n]);
                        continue;
                }
                n++;
        }
        mdb_cursor_close(cur);
        mdb_txn_abort(TAKE_PTR(txn));
        if (x >= 0 && rc != MDB_NOTFOUND && rc != 0)
                x = mdb_err(err, rc, "walk");
        for (size_t i = 0; x >= 0 && i < n; i++) {
                int y = fn(&infos[i], userdata);
                if (y < 0)
                        x = y;
                else if (y > 0)
                        break;
        }
        for (size_t i = 0; i < n; i++)
                snapshot_info_clear(&infos[i]);
        free(infos);
        return x < 0 ? x : 0;
}

static int op_cleanup(struct snapshotter *s, struct error **err)
{
        struct snap_base *b = base(s);
        _cleanup_txn_ MDB_txn *txn = NULL;
        _cleanup_strv_free_ char **ids = xcalloc(1, sizeof(char *));
        size_t n = 0;
        MDB_cursor *cur = NULL;
        MDB_val k, v;
        int x, rc;

        x = begin(b, false, &txn, err);
        if (x < 0)
                return x;
        rc = mdb_cursor_open(txn, b->dbi_snaps, &cur);
        if (rc)
                return mdb_err(err, rc, "cursor");
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
                _cleanup_free_ char *key = xstrndup(k.mv_data, k.mv_size);
                struct rec r;
                if (rec_get(b, txn, key, &r, NULL) < 0)
                        continue;
                ids = xreallocarray(ids, n + 2, sizeof(char *));
                ids[n++] = TAKE_PTR(r.id);
                ids[n] = NULL;
                rec_clear(&r);
        }
        mdb_cursor_close(cur);
        /* A create in flight holds a new-* directory, or (between its rename and its commit) an id at or
         * above the counter seen here: neither is touched. */
        uint64_t next = 0;
        {
                MDB_val mk = {7, "next_id"}, mv;
                if (mdb_get(txn, b->dbi_meta, &mk, &mv) == 0 && mv.mv_size == sizeof(uint64_t))
                        memcpy(&next, mv.mv_data, sizeof(next));
        }
        mdb_txn_abort(TAKE_PTR(txn));

        _cleanup_close_ int fd = openat(b->snaps_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return error_set(err, errno, "open %s", b->snaps_path);
        DIR *d = fdopendir(TAKE_FD(fd));
        if (!d)
                return error_set(err, errno, "list %s", b->snaps_path);
        struct dirent *de;
        int first = 0;
        while ((de = readdir(d))) {
                const char *nm = de->d_name;
                if (strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0)
                        continue;
                if (strv_has(ids, nm))
                        continue;
                char *end = NULL;
                unsigned long long idn = strtoull(nm, &end, 10);
                bool numeric = end && *end == '\0' && end != nm;
                /* new-* directories belong to creates in flight; only rm-* and stale numeric ids go. */
                if (strncmp(nm, "new-", 4) == 0 || (numeric && idn >= next))
                        continue;
                if (!numeric && strncmp(nm, "rm-", 3) != 0)
                        continue;
                int y = snap_rm_rf_at(dirfd(d), nm);
                if (y < 0 && first == 0)
                        first = y;
        }
        closedir(d);
        if (first < 0)
                return error_set(err, -first, "cleanup %s", b->snaps_path);
        return 0;
}

static void op_close(struct snapshotter *s)
{
        struct snap_base *b = base(s);
        if (!b)
                return;
        if (b->env)
                mdb_env_close(b->env);
        if (b->snaps_fd >= 0)
                (void)close(b->snaps_fd);
        free(b->root);
        free(b->snaps_path);
        free(b);
}

static const struct snapshotter_ops generic_ops = {
        .prepare = op_prepare,
        .view = op_view,
        .commit = op_commit,
        .mounts = op_mounts,
        .remove = op_remove,
        .stat = op_stat,
        .update = op_update,
        .usage = op_usage,
        .walk = op_walk,
        .cleanup = op_cleanup,
        .close = op_close,
};

int snap_base_open(const char *root, const struct snap_backend *be, struct snap_base **ret, struct error **err)
{
        struct snap_base *b = xcalloc(1, sizeof(*b));
        _cleanup_txn_ MDB_txn *txn = NULL;
        _cleanup_free_ char *dbpath = NULL;
        int rc, x;

        b->pub.ops = &generic_ops;
        b->pub.name = be->name;
        b->be = be;
        b->snaps_fd = -1;
        if (!root || root[0] != '/') {
                free(b);
                return error_set(err, EINVAL, "snapshotter root must be an absolute path");
        }
        b->root = xstrdup(root);
        b->snaps_path = xasprintf("%s/snapshots", root);
        if (mkdir_p(root, 0700) < 0 || (mkdir(b->snaps_path, 0700) < 0 && errno != EEXIST)) {
                x = error_set(err, errno, "create snapshotter root %s", root);
                op_close(&b->pub);
                return x;
        }
        b->snaps_fd = open(b->snaps_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (b->snaps_fd < 0) {
                x = error_set(err, errno, "open %s", b->snaps_path);
                op_close(&b->pub);
                return x;
        }
        /* Nothing is in flight at open: directories of interrupted creates and removes can go. */
        {
                int dfd = fcntl(b->snaps_fd, F_DUPFD_CLOEXEC, 3);
                DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
                struct dirent *de;
                if (!d && dfd >= 0)
                        (void)close(dfd);
                while (d && (de = readdir(d)))
                        if (strncmp(de->d_name, "new-", 4) == 0 || strncmp(de->d_name, "rm-", 3) == 0)
                                (void)snap_rm_rf_at(b->snaps_fd, de->d_name);
                if (d)
                        closedir(d);
        }
        dbpath = xasprintf("%s/metadata.lmdb", root);
        rc = mdb_env_create(&b->env);
        if (rc == 0)
                rc = mdb_env_set_maxdbs(b->env, 4);
        if (rc == 0)
                rc = mdb_env_set_mapsize(b->env, (size_t)1 << 30);
        if (rc == 0)
                rc = mdb_env_open(b->env, dbpath, MDB_NOSUBDIR | MDB_NOTLS, 0600);
        if (rc == 0)
                rc = mdb_txn_begin(b->env, NULL, 0, &txn);
        if (rc == 0)
                rc = mdb_dbi_open(txn, "snapshots", MDB_CREATE, &b->dbi_snaps);
        if (rc == 0)
                rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &b->dbi_meta);
        if (rc == 0)
                rc = mdb_txn_commit(TAKE_PTR(txn));
        if (rc) {
                x = mdb_err(err, rc, "open");
                op_close(&b->pub);
                return x;
        }
        *ret = b;
        return 0;
}

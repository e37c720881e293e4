/* snapshots.v1 logic; see snapshots.h. Ordering follows containerd's metadata snapshotter: the reference is
 * written first and undone if the backend fails, so GC never sees a backend snapshot without an owner for
 * longer than one call. */
#include "services/snapshots.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "metadata/db.h"
#include "metadata/filters.h"
#include "metadata/snapshots.h"
#include "services/diff.h"
#include "snapshot/registry.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/strv.h"

static atomic_uint_fast64_t backend_seq;
static uint64_t backend_seq_base;
static pthread_once_t backend_seq_once = PTHREAD_ONCE_INIT;

static void backend_seq_init(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        backend_seq_base = (uint64_t)ts.tv_sec * 1000000ull + (uint64_t)ts.tv_nsec / 1000;
}

/* Unique across restarts: microseconds at first use plus a counter. */
static char *backend_key(const char *ns, const char *key)
{
        pthread_once(&backend_seq_once, backend_seq_init);
        uint64_t seq = backend_seq_base + atomic_fetch_add(&backend_seq, 1);
        return xasprintf("%s/%" PRIu64 "/%s", ns, seq, key);
}

static int get_snapshotter(struct services_ctx *ctx, const char *name, struct snapshotter **ret, struct error **err)
{
        if (!ctx->db || !ctx->snapshots)
                return error_set(err, EAGAIN, "snapshot service is not available");
        struct snapshotter *s = snapshot_registry_get(ctx->snapshots, name);
        if (!s)
                return error_set(err, EINVAL, "snapshotter not loaded: %s", name && name[0] ? name : "(default)");
        *ret = s;
        return 0;
}

/* Looks a reference up, wording a missing one as containerd's metadata snapshotter does
 * (`snapshot k does not exist: not found`). */
static int ref_get(struct services_ctx *ctx, const char *ns, const char *snapshotter, const char *key,
                   struct metadata_snapshot_ref *ret, struct error **err)
{
        struct error *e = NULL;
        int r = metadata_snapshot_ref_get(ctx->db, ns, snapshotter, key ? key : "", ret, &e);
        if (r == -ENOENT) {
                error_free(&e);
                return error_set(err, ENOENT, "snapshot %s does not exist", key ? key : "");
        }
        if (r < 0) {
                if (err && !*err)
                        *err = e;
                else
                        error_free(&e);
        }
        return r;
}

static enum snapshot_kind kind_from_string(const char *k)
{
        if (!k)
                return SNAPSHOT_KIND_UNKNOWN;
        if (strcmp(k, "active") == 0)
                return SNAPSHOT_KIND_ACTIVE;
        if (strcmp(k, "view") == 0)
                return SNAPSHOT_KIND_VIEW;
        if (strcmp(k, "committed") == 0)
                return SNAPSHOT_KIND_COMMITTED;
        return SNAPSHOT_KIND_UNKNOWN;
}

static void ref_to_info(const struct metadata_snapshot_ref *r, struct snapshot_info *i)
{
        *i = (struct snapshot_info){
                .name = xstrdup(r->key),
                .parent = r->parent && r->parent[0] ? xstrdup(r->parent) : NULL,
                .kind = kind_from_string(r->kind),
                .labels = r->labels ? strv_copy(r->labels) : xcalloc(1, sizeof(char *)),
                .created_ns = r->created_at,
                .updated_ns = r->updated_at,
        };
}

int services_snapshots_prepare(struct services_ctx *ctx, const char *ns, const char *snapshotter, const char *key,
                               const char *parent, char *const *labels, const char *lease, bool view,
                               struct snapshot_mounts *ret, struct error **err)
{
        struct snapshotter *s = NULL;
        struct metadata_snapshot_ref pref = {0};
        _cleanup_free_ char *bkey = NULL;
        int r;

        r = get_snapshotter(ctx, snapshotter, &s, err);
        if (r < 0)
                return r;
        if (!key || !key[0])
                return error_set(err, EINVAL, "key must not be empty");
        r = metadata_labels_validate(labels, err);
        if (r < 0)
                return r;
        if (parent && !parent[0])
                parent = NULL;
        if (parent) {
                r = metadata_snapshot_ref_get(ctx->db, ns, s->name, parent, &pref, NULL);
                if (r == -ENOENT)
                        return error_set(err, ENOENT, "parent snapshot %s does not exist", parent);
                if (r < 0)
                        return error_set(err, -r, "parent snapshot %s", parent);
                if (r < 0)
                        return r;
        }
        bkey = backend_key(ns, key);
        struct metadata_snapshot_ref ref = {
                .snapshotter = (char *)s->name,
                .key = (char *)key,
                .backend_key = bkey,
                .parent = (char *)parent,
                .kind = view ? "view" : "active",
                .labels = (char **)labels,
        };
        r = metadata_snapshot_ref_add(ctx->db, ns, &ref, lease, err);
        if (r < 0) {
                metadata_snapshot_ref_clear(&pref);
                return r;
        }
        r = view ? snapshot_view(s, bkey, parent ? pref.backend_key : NULL, NULL, ret, err)
                 : snapshot_prepare(s, bkey, parent ? pref.backend_key : NULL, NULL, ret, err);
        metadata_snapshot_ref_clear(&pref);
        if (r < 0) {
                /* Undo the reference; the backend error is what the client sees. */
                (void)metadata_snapshot_ref_remove(ctx->db, ns, s->name, key, NULL);
                return r;
        }
        return 0;
}

int services_snapshots_mounts(struct services_ctx *ctx, const char *ns, const char *snapshotter, const char *key,
                              struct snapshot_mounts *ret, struct error **err)
{
        struct snapshotter *s = NULL;
        struct metadata_snapshot_ref ref = {0};
        int r = get_snapshotter(ctx, snapshotter, &s, err);
        if (r < 0)
                return r;
        r = ref_get(ctx, ns, s->name, key, &ref, err);
        if (r < 0)
                return r;
        r = snapshot_mounts(s, ref.backend_key, ret, err);
        metadata_snapshot_ref_clear(&ref);
        return r;
}

int services_snapshots_commit(struct services_ctx *ctx, const char *ns, const char *snapshotter, const char *name,
                              const char *key, char *const *labels, const char *lease, struct error **err)
{
        struct snapshotter *s = NULL;
        struct metadata_snapshot_ref ref = {0}, other = {0};
        _cleanup_free_ char *bname = NULL;
        int r = get_snapshotter(ctx, snapshotter, &s, err);
        if (r < 0)
                return r;
        if (!name || !name[0])
                return error_set(err, EINVAL, "name must not be empty");
        r = metadata_labels_validate(labels, err);
        if (r < 0)
                return r;
        /* containerd checks the target name before the source key */
        r = metadata_snapshot_ref_get(ctx->db, ns, s->name, name, &other, NULL);
        metadata_snapshot_ref_clear(&other);
        if (r == 0)
                return error_set(err, EEXIST, "snapshot \"%s\"", name);
        r = ref_get(ctx, ns, s->name, key, &ref, err);
        if (r < 0)
                return r;
        bname = backend_key(ns, name);
        r = snapshot_commit(s, bname, ref.backend_key, NULL, err);
        if (r < 0)
                goto out;
        r = metadata_snapshot_ref_commit(ctx->db, ns, s->name, key, name, bname, labels, lease, err);
out:
        metadata_snapshot_ref_clear(&ref);
        return r;
}

int services_snapshots_remove(struct services_ctx *ctx, const char *ns, const char *snapshotter, const char *key,
                              struct error **err)
{
        struct snapshotter *s = NULL;
        struct metadata_snapshot_ref ref = {0};
        int r = get_snapshotter(ctx, snapshotter, &s, err);
        if (r < 0)
                return r;
        r = ref_get(ctx, ns, s->name, key, &ref, err);
        if (r < 0)
                return r;
        r = metadata_snapshot_ref_remove(ctx->db, ns, s->name, key, err);
        if (r == 0) {
                /* Reclaim the space now rather than at the next GC; GC treats a missing backend key as done. */
                struct error *e2 = NULL;
                (void)snapshot_remove(s, ref.backend_key, &e2);
                error_free(&e2);
        }
        metadata_snapshot_ref_clear(&ref);
        return r;
}

int services_snapshots_stat(struct services_ctx *ctx, const char *ns, const char *snapshotter, const char *key,
                            struct snapshot_info *ret, struct error **err)
{
        struct snapshotter *s = NULL;
        struct metadata_snapshot_ref ref = {0};
        int r = get_snapshotter(ctx, snapshotter, &s, err);
        if (r < 0)
                return r;
        r = ref_get(ctx, ns, s->name, key, &ref, err);
        if (r < 0)
                return r;
        ref_to_info(&ref, ret);
        metadata_snapshot_ref_clear(&ref);
        return 0;
}

int services_snapshots_update(struct services_ctx *ctx, const char *ns, const char *snapshotter,
                              const struct snapshot_info *info, char *const *paths, size_t npaths,
                              struct snapshot_info *ret, struct error **err)
{
        struct snapshotter *s = NULL;
        struct metadata_snapshot_ref ref = {0};
        int r = get_snapshotter(ctx, snapshotter, &s, err);
        if (r < 0)
                return r;
        if (!info || !info->name || !info->name[0])
                return error_set(err, EINVAL, "snapshot name must not be empty");
        for (size_t i = 0; i < npaths; i++)
                if (strcmp(paths[i], "labels") != 0 && strncmp(paths[i], "labels.", 7) != 0)
                        return error_set(err, EINVAL, "cannot update \"%s\" field on snapshot \"%s\"", paths[i],
                                         info->name);
        r = metadata_labels_validate(info->labels, err);
        if (r < 0)
                return r;
        r = metadata_snapshot_ref_update(ctx->db, ns, s->name, info->name, info->labels, paths, npaths, &ref, err);
        if (r < 0)
                return r;
        if (ret)
                ref_to_info(&ref, ret);
        metadata_snapshot_ref_clear(&ref);
        return 0;
}

int services_snapshots_list(struct services_ctx *ctx, const char *ns, const char *snapshotter,
                            char *const *filters, size_t nfilters, struct snapshot_info **ret, size_t *ret_n,
                            struct error **err)
{
        struct snapshotter *s = NULL;
        _cleanup_(filter_freep) struct filter *f = NULL;
        struct metadata_snapshot_ref *refs = NULL;
        size_t n = 0;
        int r = get_snapshotter(ctx, snapshotter, &s, err);
        if (r < 0)
                return r;
        r = filter_parse(filters, nfilters, &f, err);
        if (r < 0)
                return r;
        r = metadata_snapshot_ref_list(ctx->db, ns, s->name, f, &refs, &n, err);
        if (r < 0)
                return r;
        struct snapshot_info *infos = xcalloc(n + 1, sizeof(*infos));
        for (size_t i = 0; i < n; i++)
                ref_to_info(&refs[i], &infos[i]);
        metadata_snapshot_ref_list_free(refs, n);
        *ret = infos;
        *ret_n = n;
        return 0;
}

int services_snapshots_usage(struct services_ctx *ctx, const char *ns, const char *snapshotter, const char *key,
                             struct snapshot_usage *ret, struct error **err)
{
        struct snapshotter *s = NULL;
        struct metadata_snapshot_ref ref = {0};
        int r = get_snapshotter(ctx, snapshotter, &s, err);
        if (r < 0)
                return r;
        r = ref_get(ctx, ns, s->name, key, &ref, err);
        if (r < 0)
                return r;
        r = snapshot_usage(s, ref.backend_key, ret, err);
        metadata_snapshot_ref_clear(&ref);
        return r;
}

int services_snapshots_cleanup(struct services_ctx *ctx, const char *snapshotter, struct error **err)
{
        struct snapshotter *s = NULL;
        int r = get_snapshotter(ctx, snapshotter, &s, err);
        if (r < 0)
                return r;
        return snapshot_cleanup(s, err);
}

/* identity.ChainID: chain(0) = diff(0), chain(i) = sha256(chain(i-1) + " " + diff(i)). */
static char *chain_id(const char *parent, const char *diff_id)
{
        if (!parent)
                return xstrdup(diff_id);
        _cleanup_free_ char *s = xasprintf("%s %s", parent, diff_id);
        return digest_from_buf(s, strlen(s));
}

/* A layer blob and its decompression thread. */
struct unpack_stream {
        int fd;
        struct image_layer_stream *s;
};

static void unpack_stream_clear(struct unpack_stream *u)
{
        u->s = image_layer_stream_free(u->s);
        if (u->fd >= 0)
                (void)close(u->fd);
        u->fd = -1;
}

/* How far the next layer's decompression may run ahead while the current layer is applied and committed.
 * Measured on the 2-core VM (docs/unpack.md): 32 MiB cost 25% more CPU (first touch of fresh buffers) for no
 * measurable gain; 8 MiB costs nothing and covers the next layer's start while the current one commits. */
#define UNPACK_AHEAD_BYTES (8u << 20)
/* The layer being applied only needs a few buffers ahead of its tar reader. */
#define UNPACK_CURRENT_AHEAD_BYTES (4u << 20)

static int unpack_stream_start(struct services_ctx *ctx, const char *ns, const struct services_unpack_layer *l,
                               size_t ahead, struct unpack_stream *ret, struct error **err)
{
        int r = services_diff_open_layer(ctx, ns, l->media_type, l->digest, &ret->fd, err);
        if (r < 0)
                return r;
        r = image_layer_stream_start(ret->fd, IMAGE_APPLY_DEFAULT_MAX_BYTES, ahead, &ret->s, err);
        if (r < 0) {
                unpack_stream_clear(ret);
                return error_wrap(err, "apply layer %s", l->digest);
        }
        return 0;
}

static int unpack_one(struct services_ctx *ctx, const char *ns, const char *snapshotter,
                      const struct services_unpack_layer *l, struct image_layer_stream *stream, const char *parent,
                      const char *chain, const char *lease, struct error **err)
{
        struct snapshot_mounts m = {0};
        struct image_apply_result res;
        uint64_t uniq = 0;
        int r;

        pthread_once(&backend_seq_once, backend_seq_init);
        uniq = backend_seq_base + atomic_fetch_add(&backend_seq, 1);
        _cleanup_free_ char *key = xasprintf("extract-%" PRIu64 " %s", uniq, chain);
        char *labels[] = {"containerd.io/snapshot.ref", (char *)chain, NULL};
        r = services_snapshots_prepare(ctx, ns, snapshotter, key, parent, labels, lease, false, &m, err);
        if (r < 0)
                return r;
        r = services_diff_apply_stream(ctx, l->digest, stream, m.v, m.n, &res, err);
        snapshot_mounts_clear(&m);
        if (r == 0 && strcmp(res.diff_id, l->diff_id) != 0)
                r = error_set(err, EINVAL, "wrong diff id calculated on extraction \"%s\"", l->diff_id);
        if (r == 0) {
                r = services_snapshots_commit(ctx, ns, snapshotter, chain, key, labels, lease, err);
                /* another unpack committed the same chain meanwhile: that is as good */
                if (r == -EEXIST) {
                        error_free(err);
                        r = 0;
                        (void)services_snapshots_remove(ctx, ns, snapshotter, key, NULL);
                }
                return r;
        }
        (void)services_snapshots_remove(ctx, ns, snapshotter, key, NULL);
        return r;
}

/* Layers are applied in order (each snapshot's parent must be committed first, as in containerd's
 * unpacker), but the next missing layer's blob is decompressed and digested on its own thread while the
 * current one is written and committed (image_layer_stream, bounded by UNPACK_AHEAD_BYTES). */
int services_snapshots_unpack(struct services_ctx *ctx, const char *ns, const char *snapshotter,
                              const struct services_unpack_layer *layers, size_t n, const char *lease,
                              char **ret_chain_id, struct error **err)
{
        _cleanup_strv_free_ char **chains = xcalloc(n + 1, sizeof(char *));
        _cleanup_free_ bool *have = xcalloc(n + 1, sizeof(bool));
        struct unpack_stream cur = {.fd = -1}, next = {.fd = -1};
        size_t next_i = SIZE_MAX;
        int r = 0;

        for (size_t i = 0; i < n; i++) {
                const struct services_unpack_layer *l = &layers[i];
                struct snapshot_info info = {0};
                struct error *e = NULL;
                if (!l->diff_id || digest_validate(l->diff_id, NULL) < 0)
                        return error_set(err, EINVAL, "layer %zu: invalid diff id", i);
                chains[i] = chain_id(i ? chains[i - 1] : NULL, l->diff_id);
                r = services_snapshots_stat(ctx, ns, snapshotter, chains[i], &info, &e);
                snapshot_info_clear(&info);
                if (r == -ENOENT) {
                        error_free(&e);
                        continue;
                }
                if (r < 0) {
                        if (err && !*err)
                                *err = TAKE_PTR(e);
                        error_free(&e);
                        return r;
                }
                have[i] = true;
        }
        for (size_t i = 0; i < n; i++) {
                if (have[i])
                        continue;
                if (next_i == i) {
                        cur = next;
                        next = (struct unpack_stream){.fd = -1};
                        next_i = SIZE_MAX;
                } else {
                        r = unpack_stream_start(ctx, ns, &layers[i], UNPACK_CURRENT_AHEAD_BYTES, &cur, err);
                        if (r < 0)
                                break;
                }
                size_t j = i + 1;
                while (j < n && have[j])
                        j++;
                if (j < n) {
                        /* best effort: without it the layer is simply started when its turn comes */
                        struct error *e = NULL;
                        if (unpack_stream_start(ctx, ns, &layers[j], UNPACK_AHEAD_BYTES, &next, &e) == 0)
                                next_i = j;
                        error_free(&e);
                }
                r = unpack_one(ctx, ns, snapshotter, &layers[i], cur.s, i ? chains[i - 1] : NULL, chains[i], lease,
                               err);
                unpack_stream_clear(&cur);
                if (r < 0)
                        break;
        }
        unpack_stream_clear(&cur);
        unpack_stream_clear(&next);
        if (r < 0)
                return r;
        if (ret_chain_id)
                *ret_chain_id = n ? xstrdup(chains[n - 1]) : NULL;
        return 0;
}

/* The pull runs as callbacks on a private loop: a counter of outstanding operations (fetches, unpack
 * steps) tells when it is over. Content writes happen on that loop's thread (it is not the daemon's loop);
 * unpack steps run on a short-lived thread each, reporting back through a uv_async_t. */
#include "image/pull.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "image/platform.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/strv.h"

#define LABEL_GC_CONTENT "containerd.io/gc.ref.content."
#define LABEL_GC_SNAPSHOT "containerd.io/gc.ref.snapshot."
#define LABEL_UNCOMPRESSED "containerd.io/uncompressed"
#define LABEL_SOURCE "containerd.io/distribution.source."

/* Copies e into *dst (first error wins) without error_str's per-thread buffer, which a pull thread would
 * leak when it exits. */
static void copy_err(struct error **dst, const struct error *e)
{
        _cleanup_free_ char *m = error_message(e);

        error_set_literal(dst, e->code, m);
}

struct pull;

struct layer_job {
        struct pull *p;
        struct image_descriptor desc;
        char *ref;
        char *diff_id;
        bool primary; /* part of the unpacked image */
        bool started, committed, retried;
        bool abort_ingest; /* verification failed: drop the ingest once the writer is closed */
        void *w;        /* the sink's writer */
        int64_t offset; /* bytes in the ingest */
        struct image_fetch *fetch;
        uv_timer_t retry; /* a concurrent pull holds the ingest: try again later */
        bool retry_init;
        unsigned lock_waits;
};

struct pull {
        const struct image_pull_options *o;
        const struct image_pull_sink *sink;
        void *sd; /* sink data */
        struct image_pull_local local;
        uv_loop_t loop;
        struct image_registry_client *client;
        struct image_resolver *res;
        struct image_platform_matcher *matcher;
        char *lease;
        bool own_lease;
        struct error *err;
        unsigned pending;
        char *source_label; /* containerd.io/distribution.source.<host> */
        char *source_repo;
        struct image_descriptor root;
        bool have_root;
        bool primary_taken;
        char *primary_config;
        char *primary_manifest;
        size_t primary_layers;
        struct layer_job **layers; /* every layer job, in queue order */
        size_t n_layers, next_layer;
        unsigned active;
        struct layer_job **unpack_list; /* primary layers, bottom first */
        size_t n_unpack, unpacked;
        bool unpack_inflight, unpack_ready;
        struct image_pull_layer *unpack_arg;
        size_t unpack_arg_n;
        char *unpack_chain;
        struct error *unpack_err;
        int unpack_rc;
        uv_async_t async;
        uv_thread_t thread;
        char *chain_id;
        bool finished;
        int64_t bytes;
};

static void check_finish(struct pull *p);
static void pump(struct pull *p);

static void fail(struct pull *p, int code, const struct error *e)
{
        if (!p->err) {
                if (e)
                        copy_err(&p->err, e);
                else
                        error_set(&p->err, code, "pull failed");
        }
        for (size_t i = 0; i < p->n_layers; i++)
                if (p->layers[i]->fetch)
                        image_fetch_cancel(p->layers[i]->fetch);
}

static void progress(struct pull *p, const char *ref, const struct image_descriptor *d, enum image_pull_status st,
                     int64_t off)
{
        if (p->o->progress)
                p->o->progress(ref, d, st, off, p->o->progress_userdata);
}

static const char *ref_prefix(const char *mt)
{
        switch (image_manifest_kind(mt, NULL, 0)) {
        case IMAGE_MANIFEST_KIND_INDEX:
                return "index";
        case IMAGE_MANIFEST_KIND_MANIFEST:
                return "manifest";
        default:
                return image_media_type_is_layer(mt) ? "layer" : "config";
        }
}

/* Adds labels to content the namespace already has (containerd's content.Update with labels.<k> paths). */
static int add_labels(struct pull *p, const char *digest, char *const *labels, struct error **err)
{
        if (!labels || !labels[0])
                return 0;
        return p->sink->add_labels(p->sd, digest, labels, err);
}

static void writer_close(struct pull *p, void **w)
{
        if (*w)
                p->sink->close(*w);
        *w = NULL;
}

static int store_buffer_ref(struct pull *p, const struct image_descriptor *d, const char *ref, const char *buf,
                            size_t len, char *const *labels, struct error **err)
{
        void *w = NULL;
        int64_t off = 0;
        int k;

        k = p->sink->open(p->sd, ref, d->size, d->digest, p->lease, &w, &off, err);
        if (k == -EEXIST) {
                if (err)
                        error_free(err);
                return add_labels(p, d->digest, labels, err);
        }
        if (k < 0)
                return k;
        if (off > 0)
                k = p->sink->truncate(w, err);
        /* always written: a writer shared with another namespace's blob turns into a real one, and the
         * store's commit then finds the blob present */
        if (k >= 0)
                k = p->sink->write(w, buf, len, err);
        if (k >= 0)
                k = p->sink->commit(w, d->size, d->digest, labels, err);
        writer_close(p, &w);
        if (k == -EEXIST) {
                if (err)
                        error_free(err);
                return add_labels(p, d->digest, labels, err);
        }
        if (k < 0)
                return error_wrap(err, "failed to commit %s", ref);
        return 0;
}

/* Writes a small verified blob into the store with labels (or just labels it when present). */
static int store_buffer(struct pull *p, const struct image_descriptor *d, const char *buf, size_t len,
                        char *const *labels, struct error **err)
{
        _cleanup_free_ char *ref = xasprintf("%s-%s", ref_prefix(d->media_type), d->digest);
        _cleanup_free_ char *own = NULL;
        int k;

        if (p->sink->has(p->sd, d->digest, NULL) == 0)
                return add_labels(p, d->digest, labels, err);
        k = store_buffer_ref(p, d, ref, buf, len, labels, err);
        if (k != -EAGAIN)
                return k;
        /* a concurrent pull holds the same ref: write a copy under a ref of this pull's own */
        if (err)
                error_free(err);
        own = xasprintf("%s-%s", ref, p->lease);
        return store_buffer_ref(p, d, own, buf, len, labels, err);
}

/* Reads a present blob (manifests/configs are re-read locally instead of fetched); the digest is checked
 * again, as the fetch would. */
static int read_local(struct pull *p, const struct image_descriptor *d, char **ret, size_t *ret_n)
{
        _cleanup_free_ char *buf = NULL, *dg = NULL;
        size_t n = 0;

        if (d->size < 0 || d->size > (int64_t)IMAGE_MANIFEST_MAX_BYTES)
                return -ENOENT;
        if (p->sink->read(p->sd, d->digest, d->size, &buf, &n, NULL) < 0 || (int64_t)n != d->size)
                return -ENOENT;
        dg = digest_from_buf(buf, n);
        if (!digest_equal(dg, d->digest))
                return -ENOENT;
        *ret = TAKE_PTR(buf);
        *ret_n = n;
        return 0;
}

/* ---- manifests ---- */

struct doc_op {
        struct pull *p;
        struct image_descriptor desc;
        bool primary; /* the manifest that gets unpacked */
        bool is_config;
        struct image_descriptor *layers; /* for a config: the manifest's layers */
        size_t n_layers;
};

static void doc_handle(struct doc_op *op, const char *buf, size_t len);

static void doc_done(const char *buf, size_t len, const struct error *e, void *ud)
{
        struct doc_op *op = ud;
        struct pull *p = op->p;

        /* handled before the count drops, so that nothing nested can see the pull as complete */
        if (e)
                fail(p, e->code, e);
        else if (!p->err)
                doc_handle(op, buf, len);
        p->pending--;
        image_descriptor_clear(&op->desc);
        image_descriptors_free(op->layers, op->n_layers);
        free(op);
        check_finish(p);
}

static void fetch_doc(struct pull *p, const struct image_descriptor *d, bool primary, bool is_config,
                      struct image_descriptor *layers, size_t n_layers)
{
        struct doc_op *op = xcalloc(1, sizeof(*op));
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        struct error *e = NULL;

        op->p = p;
        image_descriptor_copy(&op->desc, d);
        op->primary = primary;
        op->is_config = is_config;
        op->layers = layers;
        op->n_layers = n_layers;
        p->pending++;
        if (read_local(p, d, &buf, &len) == 0) {
                doc_done(buf, len, NULL, op);
                return;
        }
        if (image_resolver_fetch(p->res, d, 0, NULL, doc_done, op, NULL, &e) < 0) {
                doc_done(NULL, 0, e, op);
                error_free(&e);
        }
}

static char **source_labels(struct pull *p)
{
        char **l = strv_new_empty();

        strv_extend(&l, p->source_label);
        strv_extend(&l, p->source_repo);
        return l;
}

static void handle_index(struct doc_op *op, const char *buf, size_t len)
{
        struct pull *p = op->p;
        struct image_descriptor *m = NULL;
        size_t n = 0, best = SIZE_MAX;
        int best_rank = -1;
        struct error *e = NULL;
        _cleanup_strv_free_ char **labels = source_labels(p);
        bool *take;

        if (image_index_parse(buf, len, &m, &n, &e) < 0) {
                fail(p, EINVAL, e);
                error_free(&e);
                return;
        }
        take = xcalloc(n + 1, sizeof(*take));
        for (size_t i = 0; i < n; i++) {
                int rank;
                if (image_manifest_kind(m[i].media_type, NULL, 0) == IMAGE_MANIFEST_KIND_UNKNOWN)
                        continue;
                rank = m[i].has_platform ? image_platform_rank(p->matcher, &m[i].platform) : 0;
                if (p->o->all_platforms)
                        take[i] = true;
                if (rank >= 0 && (best_rank < 0 || rank < best_rank)) {
                        best_rank = rank;
                        best = i;
                }
        }
        if (best == SIZE_MAX && !p->o->all_platforms) {
                _cleanup_strv_free_ char **avail = strv_new_empty();
                _cleanup_free_ char *joined = NULL;
                for (size_t i = 0; i < n; i++)
                        if (m[i].has_platform)
                                strv_push(&avail, image_platform_format(&m[i].platform));
                joined = strv_join(avail, ", ");
                error_set(&e, ENOENT, "no match for platform in manifest (available: %s)", joined);
                fail(p, ENOENT, e);
                error_free(&e);
                free(take);
                image_descriptors_free(m, n);
                return;
        }
        if (best != SIZE_MAX)
                take[best] = true;
        for (size_t i = 0; i < n; i++)
                if (take[i])
                        strv_extendf(&labels, LABEL_GC_CONTENT "m.%zu", i), strv_extend(&labels, m[i].digest);
        if (store_buffer(p, &op->desc, buf, len, labels, &e) < 0) {
                fail(p, e->code, e);
                error_free(&e);
        } else {
                for (size_t i = 0; i < n; i++)
                        if (take[i])
                                fetch_doc(p, &m[i], op->primary && i == best, false, NULL, 0);
        }
        free(take);
        image_descriptors_free(m, n);
}

static void enqueue_layers(struct pull *p, const struct image_descriptor *layers, size_t n, char *const *diff_ids,
                           bool primary)
{
        for (size_t i = 0; i < n; i++) {
                struct layer_job *j = NULL;

                /* the same blob in two platforms' manifests is fetched once */
                for (size_t k = 0; k < p->n_layers; k++)
                        if (!strcmp(p->layers[k]->desc.digest, layers[i].digest))
                                j = p->layers[k];
                if (!j) {
                        j = xcalloc(1, sizeof(*j));
                        j->p = p;
                        image_descriptor_copy(&j->desc, &layers[i]);
                        j->ref = xasprintf("layer-%s", layers[i].digest);
                        j->diff_id = xstrdup(diff_ids[i]);
                        p->layers = xrealloc(p->layers, (p->n_layers + 1) * sizeof(*p->layers));
                        p->layers[p->n_layers++] = j;
                        progress(p, j->ref, &j->desc, IMAGE_PULL_WAITING, 0);
                }
                if (primary) {
                        j->primary = true;
                        p->unpack_list = xrealloc(p->unpack_list, (p->n_unpack + 1) * sizeof(*p->unpack_list));
                        p->unpack_list[p->n_unpack++] = j;
                }
        }
}

static void handle_config(struct doc_op *op, const char *buf, size_t len)
{
        struct pull *p = op->p;
        _cleanup_strv_free_ char **diff_ids = NULL;
        _cleanup_strv_free_ char **labels = source_labels(p);
        struct image_platform plat = {0};
        struct error *e = NULL;

        if (image_config_parse(buf, len, &diff_ids, &plat, &e) < 0 ||
            (strv_length(diff_ids) != op->n_layers &&
             error_set(&e, EINVAL, "mismatched image rootfs and manifest layers (%zu diff ids, %zu layers)",
                       strv_length(diff_ids), op->n_layers) < 0) ||
            store_buffer(p, &op->desc, buf, len, labels, &e) < 0) {
                fail(p, e->code, e);
                error_free(&e);
                image_platform_clear(&plat);
                return;
        }
        image_platform_clear(&plat);
        if (op->primary) {
                free(p->primary_config);
                p->primary_config = xstrdup(op->desc.digest);
        }
        enqueue_layers(p, op->layers, op->n_layers, diff_ids, op->primary);
        pump(p);
}

static void handle_manifest(struct doc_op *op, const char *buf, size_t len)
{
        struct pull *p = op->p;
        struct image_descriptor cfg = {0}, *layers = NULL;
        size_t n = 0;
        struct error *e = NULL;
        _cleanup_strv_free_ char **labels = source_labels(p);

        if (image_manifest_parse(buf, len, &cfg, &layers, &n, &e) < 0) {
                fail(p, EINVAL, e);
                error_free(&e);
                return;
        }
        strv_extend(&labels, LABEL_GC_CONTENT "config");
        strv_extend(&labels, cfg.digest);
        for (size_t i = 0; i < n; i++) {
                strv_extendf(&labels, LABEL_GC_CONTENT "l.%zu", i);
                strv_extend(&labels, layers[i].digest);
        }
        if (store_buffer(p, &op->desc, buf, len, labels, &e) < 0) {
                fail(p, e->code, e);
                error_free(&e);
                image_descriptors_free(layers, n);
        } else {
                /* the config fetch owns the layer list */
                if (op->primary) {
                        free(p->primary_manifest);
                        p->primary_manifest = xstrdup(op->desc.digest);
                        p->primary_layers = n;
                }
                fetch_doc(p, &cfg, op->primary, true, layers, n);
        }
        image_descriptor_clear(&cfg);
}

static void doc_handle(struct doc_op *op, const char *buf, size_t len)
{
        if (op->is_config) {
                handle_config(op, buf, len);
                return;
        }
        switch (image_manifest_kind(op->desc.media_type, buf, len)) {
        case IMAGE_MANIFEST_KIND_INDEX:
                handle_index(op, buf, len);
                break;
        case IMAGE_MANIFEST_KIND_MANIFEST:
                handle_manifest(op, buf, len);
                break;
        default: {
                struct error *e = NULL;
                error_set(&e, EINVAL, "%s: unsupported media type %s", op->desc.digest, op->desc.media_type);
                fail(op->p, EINVAL, e);
                error_free(&e);
        }
        }
}

/* ---- layers ---- */

static void layer_committed(struct layer_job *j, enum image_pull_status st)
{
        struct pull *p = j->p;

        j->committed = true;
        progress(p, j->ref, &j->desc, st, j->desc.size);
}

static void try_unpack(struct pull *p);

static int layer_data(const void *data, size_t n, void *ud, struct error **err)
{
        struct layer_job *j = ud;
        int k;

        if (j->p->err)
                return error_set(err, ECANCELED, "pull canceled");
        if (j->offset + (int64_t)n > j->desc.size)
                return error_set(err, EFBIG, "%s: more data than the descriptor's size %lld", j->desc.digest,
                                 (long long)j->desc.size);
        k = j->p->sink->write(j->w, data, n, err);
        if (k < 0)
                return k;
        j->offset += (int64_t)n;
        j->p->bytes += (int64_t)n;
        progress(j->p, j->ref, &j->desc, IMAGE_PULL_DOWNLOADING, j->offset);
        return 0;
}

static void layer_fetch(struct layer_job *j);

static void layer_finish(struct layer_job *j)
{
        struct pull *p = j->p;

        writer_close(p, &j->w);
        if (j->abort_ingest)
                (void)p->sink->abort(p->sd, j->ref, NULL);
        p->active--;
        p->pending--;
        try_unpack(p);
        pump(p);
        check_finish(p);
}

static void layer_done(const char *buf _unused_, size_t len _unused_, const struct error *e, void *ud)
{
        struct layer_job *j = ud;
        struct pull *p = j->p;
        struct error *ce = NULL;
        _cleanup_strv_free_ char **labels = NULL;
        int k;

        j->fetch = NULL;
        if (e && !p->err) {
                if (e->code == ERANGE) {
                        /* the registry ignored Range: start over */
                        if (p->sink->truncate(j->w, &ce) == 0) {
                                j->offset = 0;
                                layer_fetch(j);
                                return;
                        }
                } else if (!j->retried && e->code != ECANCELED && e->code != ENOENT && e->code != EACCES &&
                           e->code != EPERM && e->code != EFBIG) {
                        /* one resume from the ingest's offset after an interrupted transfer */
                        j->retried = true;
                        layer_fetch(j);
                        return;
                }
                fail(p, e->code, e);
        } else if (e) {
                fail(p, e->code, e);
        }
        if (!e && !p->err) {
                labels = source_labels(p);
                strv_extend(&labels, LABEL_UNCOMPRESSED);
                strv_extend(&labels, j->diff_id);
                k = p->sink->commit(j->w, j->desc.size, j->desc.digest, labels, &ce);
                if (k == -EEXIST) {
                        error_free(&ce);
                        k = add_labels(p, j->desc.digest, labels, &ce);
                }
                if (k < 0) {
                        error_wrap(&ce, "failed to commit %s", j->ref);
                        j->abort_ingest = k == -EBUSY;
                        fail(p, -k, ce);
                } else {
                        layer_committed(j, IMAGE_PULL_DONE);
                }
        } else if (ce) {
                fail(p, ce->code, ce);
        }
        error_free(&ce);
        layer_finish(j);
}

static void layer_fetch(struct layer_job *j)
{
        struct error *e = NULL;
        int64_t off = j->offset;

        if (image_resolver_fetch(j->p->res, &j->desc, off, layer_data, layer_done, j, &j->fetch, &e) < 0) {
                j->fetch = NULL;
                j->retried = true;
                layer_done(NULL, 0, e, j);
                error_free(&e);
        }
}

static void layer_open(struct layer_job *j);

static void layer_retry(uv_timer_t *t)
{
        layer_open(t->data);
}

static void layer_start(struct layer_job *j)
{
        j->started = true;
        j->p->active++;
        j->p->pending++;
        layer_open(j);
}

#define LOCK_RETRY_MS 100
#define LOCK_RETRY_MAX (10 * 60 * 1000 / LOCK_RETRY_MS)

static void layer_open(struct layer_job *j)
{
        struct pull *p = j->p;
        _cleanup_strv_free_ char **labels = source_labels(p);
        struct error *e = NULL;
        int k;

        if (p->err) {
                layer_finish(j);
                return;
        }
        strv_extend(&labels, LABEL_UNCOMPRESSED);
        strv_extend(&labels, j->diff_id);
        if (p->sink->has(p->sd, j->desc.digest, NULL) == 0) {
                k = add_labels(p, j->desc.digest, labels, &e);
                if (k < 0)
                        fail(p, -k, e);
                else
                        layer_committed(j, IMAGE_PULL_EXISTS);
                error_free(&e);
                layer_finish(j);
                return;
        }
        k = p->sink->open(p->sd, j->ref, j->desc.size, j->desc.digest, p->lease, &j->w, &j->offset, &e);
        if (k == -EAGAIN && j->lock_waits < LOCK_RETRY_MAX) {
                /* a concurrent pull holds the ingest: containerd waits for a locked ref too */
                error_free(&e);
                j->lock_waits++;
                if (!j->retry_init) {
                        uv_timer_init(&p->loop, &j->retry);
                        j->retry.data = j;
                        j->retry_init = true;
                }
                uv_timer_start(&j->retry, layer_retry, LOCK_RETRY_MS, 0);
                return;
        }
        if (k == -EEXIST) {
                error_free(&e);
                k = add_labels(p, j->desc.digest, labels, &e);
                if (k == 0)
                        layer_committed(j, IMAGE_PULL_EXISTS);
        }
        if (k < 0 || j->committed) {
                if (k < 0)
                        fail(p, -k, e);
                error_free(&e);
                layer_finish(j);
                return;
        }
        if (j->offset > j->desc.size) {
                /* an ingest longer than the blob cannot be it: start over */
                k = p->sink->truncate(j->w, &e);
                if (k < 0) {
                        fail(p, -k, e);
                        error_free(&e);
                        layer_finish(j);
                        return;
                }
                j->offset = 0;
        }
        if (j->offset == j->desc.size) {
                /* the data is already there (another namespace, or a complete ingest): commit only */
                layer_done(NULL, 0, NULL, j);
                return;
        }
        progress(p, j->ref, &j->desc, IMAGE_PULL_DOWNLOADING, j->offset);
        layer_fetch(j);
}

static void pump(struct pull *p)
{
        unsigned max = p->o->max_concurrent_downloads ?: IMAGE_PULL_DEFAULT_CONCURRENCY;

        while (!p->err && p->active < max && p->next_layer < p->n_layers) {
                struct layer_job *j = p->layers[p->next_layer++];
                if (!j->started)
                        layer_start(j);
        }
}

/* ---- unpack ---- */

static void unpack_thread(void *arg)
{
        struct pull *p = arg;

        p->unpack_rc = p->o->unpack(p->unpack_arg, p->unpack_arg_n, p->lease, &p->unpack_chain, p->o->unpack_userdata,
                                    &p->unpack_err);
        uv_async_send(&p->async);
}

static void unpack_done(uv_async_t *a)
{
        struct pull *p = a->data;

        if (!p->unpack_inflight)
                return;
        uv_thread_join(&p->thread);
        p->unpack_inflight = false;
        p->pending--;
        if (p->unpack_rc < 0) {
                fail(p, -p->unpack_rc, p->unpack_err);
        } else {
                for (size_t i = p->unpacked; i < p->unpack_arg_n; i++)
                        progress(p, p->unpack_list[i]->ref, &p->unpack_list[i]->desc, IMAGE_PULL_UNPACKED,
                                 p->unpack_list[i]->desc.size);
                p->unpacked = p->unpack_arg_n;
                free(p->chain_id);
                p->chain_id = TAKE_PTR(p->unpack_chain);
        }
        error_free(&p->unpack_err);
        free(p->unpack_chain);
        p->unpack_chain = NULL;
        try_unpack(p);
        check_finish(p);
}

static void try_unpack(struct pull *p)
{
        size_t k = p->unpacked;

        if (!p->o->unpack || p->unpack_inflight || p->err || !p->primary_config)
                return;
        while (k < p->n_unpack && p->unpack_list[k]->committed)
                k++;
        if (k == p->unpacked)
                return;
        p->unpack_arg = xrealloc(p->unpack_arg, k * sizeof(*p->unpack_arg));
        for (size_t i = 0; i < k; i++) {
                struct layer_job *j = p->unpack_list[i];
                p->unpack_arg[i] = (struct image_pull_layer){j->desc.digest, j->desc.media_type, j->diff_id};
                if (i >= p->unpacked)
                        progress(p, j->ref, &j->desc, IMAGE_PULL_UNPACKING, j->desc.size);
        }
        p->unpack_arg_n = k;
        p->unpack_inflight = true;
        p->pending++;
        if (uv_thread_create(&p->thread, unpack_thread, p) != 0) {
                struct error *e = NULL;
                p->unpack_inflight = false;
                p->pending--;
                error_set(&e, EAGAIN, "cannot start the unpack thread");
                fail(p, EAGAIN, e);
                error_free(&e);
        }
}

/* ---- end ---- */

static int create_image(struct pull *p, struct error **err)
{
        return p->sink->image_put(p->sd, image_resolver_name(p->res), &p->root, err);
}

static void check_finish(struct pull *p)
{
        struct error *e = NULL;

        if (p->finished || p->pending > 0 || p->err || !p->have_root)
                return;
        for (size_t i = 0; i < p->n_layers; i++)
                if (!p->layers[i]->committed)
                        return;
        if (p->o->unpack && p->unpacked < p->n_unpack)
                return;
        p->finished = true;
        if (p->o->unpack && p->chain_id && p->primary_config && p->n_unpack > 0) {
                _cleanup_strv_free_ char **labels = strv_new_empty();
                strv_extendf(&labels, LABEL_GC_SNAPSHOT "%s", p->o->snapshotter ?: "overlayfs");
                strv_extend(&labels, p->chain_id);
                if (add_labels(p, p->primary_config, labels, &e) < 0)
                        goto fail;
        }
        if (p->o->unpack && p->o->discard_unpacked_layers && p->primary_manifest && p->n_unpack > 0) {
                _cleanup_strv_free_ char **labels = strv_new_empty();
                for (size_t i = 0; i < p->primary_layers; i++) {
                        strv_extendf(&labels, LABEL_GC_CONTENT "l.%zu", i);
                        strv_extend(&labels, "");
                }
                if (add_labels(p, p->primary_manifest, labels, &e) < 0)
                        goto fail;
        }
        if (!p->o->no_image && create_image(p, &e) < 0)
                goto fail;
        return;
fail:
        fail(p, e->code, e);
        error_free(&e);
}

static void resolved(const struct image_descriptor *d, const struct error *e, void *ud)
{
        struct pull *p = ud;

        p->pending--;
        if (e) {
                struct error *w = NULL;
                copy_err(&w, e);
                error_wrap(&w, "failed to resolve reference \"%s\"", image_resolver_name(p->res));
                fail(p, e->code, w);
                error_free(&w);
                return;
        }
        image_descriptor_copy(&p->root, d);
        p->have_root = true;
        fetch_doc(p, d, true, false, NULL, 0);
        check_finish(p);
}

void image_pull_result_clear(struct image_pull_result *r)
{
        if (!r)
                return;
        free(r->name);
        image_descriptor_clear(&r->target);
        free(r->chain_id);
        *r = (struct image_pull_result){0};
}

static int setup(struct pull *p, struct error **err)
{
        const struct image_pull_options *o = p->o;
        struct image_platform plat = {0};
        const struct image_ref *ref;
        int k;

        if (o->platform) {
                k = image_platform_parse(o->platform, &plat, err);
                if (k < 0)
                        return k;
        } else {
                image_platform_default(&plat);
        }
        p->matcher = image_platform_matcher_new_only(&plat);
        image_platform_clear(&plat);
        k = image_registry_client_new(&p->loop, o->creds, o->creds_userdata, o->user_agent, &p->client, err);
        if (k < 0)
                return k;
        k = image_resolver_new(p->client, &o->resolver, o->ref, &p->res, err);
        if (k < 0)
                return k;
        ref = image_resolver_ref(p->res);
        p->source_label = xasprintf(LABEL_SOURCE "%s", ref->domain);
        p->source_repo = xstrdup(ref->path);
        if (o->lease) {
                p->lease = xstrdup(o->lease);
        } else {
                if (!p->sink->lease_create)
                        return error_set(err, EINVAL, "image pull: this sink needs a lease");
                k = p->sink->lease_create(p->sd, &p->lease, err);
                if (k < 0)
                        return k;
                p->own_lease = true;
        }
        return 0;
}

char *image_pull_lease_id(void)
{
        uint32_t rnd = 0;

        if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
                rnd = (uint32_t)getpid() ^ (uint32_t)clock();
        return xasprintf("pull-%ld-%08x", (long)time(NULL), rnd);
}

char *image_pull_lease_expiry(void)
{
        time_t t = time(NULL) + 24 * 3600;
        struct tm tm;
        char buf[64];

        gmtime_r(&t, &tm);
        strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
        return xstrdup(buf);
}

int image_pull(const struct image_pull_options *o, struct image_pull_result *ret, struct error **err)
{
        struct pull p = {.o = o};
        int k;

        if (!o->ref || (!o->sink && (!o->ns || !o->db || !o->cs)))
                return error_set(err, EINVAL, "image pull: ref, namespace, db and content store are required");
        if (o->sink) {
                p.sink = o->sink;
                p.sd = o->sink_data;
        } else {
                p.local = (struct image_pull_local){.db = o->db, .cs = o->cs, .ns = o->ns};
                p.sink = &image_pull_local_sink;
                p.sd = &p.local;
        }
        uv_loop_init(&p.loop);
        uv_async_init(&p.loop, &p.async, unpack_done);
        p.async.data = &p;
        k = setup(&p, err);
        if (k >= 0) {
                p.pending++;
                image_resolver_resolve(p.res, resolved, &p, NULL);
                while (p.pending > 0)
                        uv_run(&p.loop, UV_RUN_ONCE);
                check_finish(&p);
        }
        image_registry_client_free(p.client);
        uv_close((uv_handle_t *)&p.async, NULL);
        for (size_t i = 0; i < p.n_layers; i++)
                if (p.layers[i]->retry_init)
                        uv_close((uv_handle_t *)&p.layers[i]->retry, NULL);
        uv_run(&p.loop, UV_RUN_DEFAULT);
        (void)uv_loop_close(&p.loop);

        if (k >= 0 && p.err) {
                k = -p.err->code;
                if (err && !*err)
                        *err = TAKE_PTR(p.err);
        }
        if (p.own_lease)
                (void)p.sink->lease_delete(p.sd, p.lease, NULL);
        if (k >= 0 && ret) {
                *ret = (struct image_pull_result){0};
                ret->name = xstrdup(image_resolver_name(p.res));
                image_descriptor_copy(&ret->target, &p.root);
                ret->chain_id = TAKE_PTR(p.chain_id);
                ret->bytes_fetched = p.bytes;
        }
        for (size_t i = 0; i < p.n_layers; i++) {
                writer_close(&p, &p.layers[i]->w);
                image_descriptor_clear(&p.layers[i]->desc);
                free(p.layers[i]->ref);
                free(p.layers[i]->diff_id);
                free(p.layers[i]);
        }
        free(p.layers);
        free(p.unpack_list);
        free(p.unpack_arg);
        free(p.chain_id);
        free(p.primary_config);
        free(p.primary_manifest);
        free(p.lease);
        free(p.source_label);
        free(p.source_repo);
        image_descriptor_clear(&p.root);
        error_free(&p.err);
        image_resolver_free(p.res);
        image_platform_matcher_free(p.matcher);
        return k < 0 ? k : 0;
}

/* ---- background pull for the daemon ---- */

struct bg_pull {
        uv_async_t async;
        uv_thread_t thread;
        struct image_pull_options o;
        char *strs[8];
        image_pull_done_fn done;
        void *ud;
        int rc;
        struct image_pull_result res;
        struct error *err;
};

static void bg_thread(void *arg)
{
        struct bg_pull *b = arg;

        b->rc = image_pull(&b->o, &b->res, &b->err);
        uv_async_send(&b->async);
}

static void bg_closed(uv_handle_t *h)
{
        struct bg_pull *b = h->data;

        for (size_t i = 0; i < ELEMENTSOF(b->strs); i++)
                free(b->strs[i]);
        image_pull_result_clear(&b->res);
        error_free(&b->err);
        free(b);
}

static void bg_done(uv_async_t *a)
{
        struct bg_pull *b = a->data;

        uv_thread_join(&b->thread);
        if (b->rc < 0 && !b->err)
                error_set(&b->err, -b->rc, "image pull");
        b->done(b->rc < 0 ? NULL : &b->res, b->rc < 0 ? b->err : NULL, b->ud);
        uv_close((uv_handle_t *)&b->async, bg_closed);
}

int image_pull_start(uv_loop_t *loop, const struct image_pull_options *o, image_pull_done_fn done, void *userdata,
                     struct error **err)
{
        struct bg_pull *b = xcalloc(1, sizeof(*b));
        const char **fields[] = {&b->o.ref,
                                 &b->o.ns,
                                 &b->o.lease,
                                 &b->o.platform,
                                 &b->o.snapshotter,
                                 &b->o.user_agent,
                                 &b->o.resolver.hosts_dir};
        int k;

        b->o = *o;
        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                b->strs[i] = xstrdup(*fields[i]);
                *fields[i] = b->strs[i];
        }
        b->done = done;
        b->ud = userdata;
        k = uv_async_init(loop, &b->async, bg_done);
        if (k < 0) {
                for (size_t i = 0; i < ELEMENTSOF(b->strs); i++)
                        free(b->strs[i]);
                free(b);
                return error_set(err, -k, "image pull: %s", uv_strerror(k));
        }
        b->async.data = b;
        k = uv_thread_create(&b->thread, bg_thread, b);
        if (k < 0) {
                uv_close((uv_handle_t *)&b->async, bg_closed);
                return error_set(err, -k, "image pull thread: %s", uv_strerror(k));
        }
        return 0;
}

#include "tests/testutil.h"

#include "metadata/containers.h"
#include "metadata/content.h"
#include "metadata/gc.h"
#include "metadata/images.h"
#include "metadata/leases.h"
#include "metadata/snapshots.h"

#include <pthread.h>

static char *put_blob(struct tu_fx *f, const char *ns, const char *data, char *const *labels)
{
        struct error *e = NULL;
        struct metadata_content_writer *w = NULL;
        _cleanup_free_ char *ref = xasprintf("ref-%s", data);
        assert_int_equal(metadata_content_writer_open(f->db, f->cs, ns, ref, 0, NULL, NULL, &w, &e), 0);
        assert_int_equal(metadata_content_writer_write(w, data, strlen(data), &e), 0);
        char *dg = metadata_content_writer_digest(w);
        assert_int_equal(metadata_content_writer_commit(w, 0, NULL, labels, &e), 0);
        metadata_content_writer_close(w);
        return dg;
}

static bool visible(struct tu_fx *f, const char *ns, const char *dg)
{
        struct metadata_content_info i = {0};
        if (metadata_content_info(f->db, ns, dg, &i, NULL) < 0)
                return false;
        metadata_content_info_clear(&i);
        return true;
}

struct removed {
        char *keys[16];
        size_t n;
};

static int snap_cb(const char *snapshotter, const char *backend, void *ud)
{
        struct removed *r = ud;
        assert_string_equal(snapshotter, "overlayfs");
        assert_true(r->n < 16);
        r->keys[r->n++] = xstrdup(backend);
        return 0;
}

static void removed_clear(struct removed *r)
{
        for (size_t i = 0; i < r->n; i++)
                free(r->keys[i]);
        r->n = 0;
}

static void add_snap(struct tu_fx *f, const char *key, const char *parent, char *const *labels)
{
        struct error *e = NULL;
        _cleanup_free_ char *backend = xasprintf("backend-%s", key);
        struct metadata_snapshot_ref s = {.snapshotter = "overlayfs",
                                          .key = (char *)key,
                                          .backend_key = backend,
                                          .parent = (char *)parent,
                                          .kind = "committed",
                                          .labels = (char **)labels};
        assert_int_equal(metadata_snapshot_ref_add(f->db, "default", &s, NULL, &e), 0);
}

static void test_gc_image_keeps_its_graph(void **state)
{
        struct tu_fx *f = *state;
        struct error *e = NULL;
        struct metadata_gc_stats st;
        struct removed rm = {0};

        add_snap(f, "chain1", NULL, NULL);
        add_snap(f, "chain2", "chain1", NULL);
        add_snap(f, "orphan1", NULL, NULL);
        add_snap(f, "orphan2", "orphan1", NULL);
        _cleanup_free_ char *layer = put_blob(f, "default", "layer-data", NULL);
        char *cfg_labels[] = {"containerd.io/gc.ref.snapshot.overlayfs", "chain2", NULL};
        _cleanup_free_ char *config = put_blob(f, "default", "config-data", cfg_labels);
        char *man_labels[] = {"containerd.io/gc.ref.content.config", config, "containerd.io/gc.ref.content.l.0", layer,
                              NULL};
        _cleanup_free_ char *manifest = put_blob(f, "default", "manifest-data", man_labels);
        _cleanup_free_ char *junk = put_blob(f, "default", "junk-data", NULL);
        struct metadata_image img = {
            .name = "img:1",
            .target = {.media_type = "application/vnd.oci.image.manifest.v1+json", .digest = manifest, .size = 13}};
        assert_int_equal(metadata_image_create(f->db, "default", &img, NULL, &e), 0);

        assert_int_equal(metadata_gc_run(f->db, f->cs, snap_cb, &rm, &st, &e), 0);
        assert_int_equal(st.content_refs, 1);
        assert_int_equal(st.blobs, 1);
        assert_int_equal(st.snapshots, 2);
        assert_false(visible(f, "default", junk));
        assert_false(content_blob_exists(f->cs, junk));
        assert_true(visible(f, "default", manifest) && visible(f, "default", config) && visible(f, "default", layer));
        assert_true(content_blob_exists(f->cs, layer));
        /* children before parents */
        assert_int_equal(rm.n, 2);
        assert_string_equal(rm.keys[0], "backend-orphan2");
        assert_string_equal(rm.keys[1], "backend-orphan1");
        removed_clear(&rm);
        struct metadata_snapshot_ref sr;
        assert_int_equal(metadata_snapshot_ref_get(f->db, "default", "overlayfs", "chain1", &sr, &e), 0);
        metadata_snapshot_ref_clear(&sr);

        /* a container keeps its snapshot chain even without the image */
        static uint8_t spec[] = "{}";
        add_snap(f, "ctr-rw", "chain2", NULL);
        struct metadata_container c = {
            .id = "ctr",
            .runtime_name = "io.containerd.runc.v2",
            .spec = {.type_url = "types.containerd.io/opencontainers/runtime-spec/1/Spec", .value = spec, .len = 2},
            .snapshotter = "overlayfs",
            .snapshot_key = "ctr-rw"};
        assert_int_equal(metadata_container_create(f->db, "default", &c, NULL, &e), 0);
        assert_int_equal(metadata_image_delete(f->db, "default", "img:1", &e), 0);
        assert_int_equal(metadata_gc_run(f->db, f->cs, snap_cb, &rm, &st, &e), 0);
        assert_int_equal(st.blobs, 3);
        assert_false(content_blob_exists(f->cs, manifest));
        assert_false(content_blob_exists(f->cs, config));
        assert_false(content_blob_exists(f->cs, layer));
        assert_int_equal(rm.n, 0);
        assert_int_equal(metadata_container_delete(f->db, "default", "ctr", &e), 0);
        assert_int_equal(metadata_gc_run(f->db, f->cs, snap_cb, &rm, &st, &e), 0);
        assert_int_equal(rm.n, 3);
        assert_string_equal(rm.keys[0], "backend-ctr-rw");
        assert_string_equal(rm.keys[1], "backend-chain2");
        assert_string_equal(rm.keys[2], "backend-chain1");
        removed_clear(&rm);
}

static void test_gc_leases_and_roots(void **state)
{
        struct tu_fx *f = *state;
        struct error *e = NULL;
        struct metadata_gc_stats st;

        _cleanup_free_ char *leased = put_blob(f, "default", "leased", NULL);
        _cleanup_free_ char *expired = put_blob(f, "default", "expired", NULL);
        char *root_labels[] = {"containerd.io/gc.root", "2024-01-01T00:00:00Z", NULL};
        _cleanup_free_ char *rooted = put_blob(f, "default", "rooted", root_labels);
        char *future[] = {"containerd.io/gc.expire", "2999-01-01T00:00:00Z", NULL};
        char *past[] = {"containerd.io/gc.expire", "2001-01-01T00:00:00.5+02:00", NULL};
        assert_int_equal(metadata_lease_create(f->db, "default", "live", future, NULL, &e), 0);
        assert_int_equal(metadata_lease_create(f->db, "default", "old", past, NULL, &e), 0);
        struct metadata_lease_resource r1 = {.id = leased, .type = "content"};
        struct metadata_lease_resource r2 = {.id = expired, .type = "content"};
        assert_int_equal(metadata_lease_add_resource(f->db, "default", "live", &r1, &e), 0);
        assert_int_equal(metadata_lease_add_resource(f->db, "default", "old", &r2, &e), 0);

        /* the same blob referenced only from another namespace survives there */
        _cleanup_free_ char *shared = put_blob(f, "other", "expired", NULL);
        char *keep[] = {"containerd.io/gc.root", "x", NULL};
        struct metadata_content_info upd = {.digest = shared, .labels = keep};
        assert_int_equal(metadata_content_update(f->db, "other", &upd, NULL, 0, NULL, &e), 0);

        assert_int_equal(metadata_gc_run(f->db, f->cs, NULL, NULL, &st, &e), 0);
        assert_int_equal(st.leases, 1);
        assert_true(visible(f, "default", leased));
        assert_true(visible(f, "default", rooted));
        assert_false(visible(f, "default", expired));
        assert_true(visible(f, "other", expired));
        assert_true(content_blob_exists(f->cs, expired));
        struct metadata_lease *ls = NULL;
        size_t n = 0;
        assert_int_equal(metadata_lease_list(f->db, "default", NULL, &ls, &n, &e), 0);
        assert_int_equal(n, 1);
        assert_string_equal(ls[0].id, "live");
        metadata_lease_list_free(ls, n);

        assert_int_equal(metadata_lease_delete(f->db, "default", "live", &e), 0);
        assert_int_equal(metadata_gc_run(f->db, f->cs, NULL, NULL, &st, &e), 0);
        assert_false(visible(f, "default", leased));
        assert_false(content_blob_exists(f->cs, leased));
        assert_true(content_blob_exists(f->cs, rooted));
}

static void test_gc_keeps_half_written_ingest(void **state)
{
        struct tu_fx *f = *state;
        struct error *e = NULL;
        struct metadata_content_writer *w = NULL;
        assert_int_equal(metadata_content_writer_open(f->db, f->cs, "default", "partial", 11, NULL, NULL, &w, &e), 0);
        assert_int_equal(metadata_content_writer_write(w, "hello", 5, &e), 0);
        metadata_content_writer_close(w);
        assert_int_equal(metadata_gc_run(f->db, f->cs, NULL, NULL, NULL, &e), 0);
        /* reopen the database, as after a crash: the ingest resumes and nothing half-written is a blob */
        metadata_db_close(f->db);
        _cleanup_free_ char *p = xasprintf("%s/io.containerd.metadata.v1.lmdb", f->dir);
        assert_int_equal(metadata_db_open(p, &f->db, &e), 0);
        assert_false(content_blob_exists(f->cs, TU_HELLO));
        assert_false(visible(f, "default", TU_HELLO_WORLD));
        assert_int_equal(metadata_content_writer_open(f->db, f->cs, "default", "partial", 11, NULL, NULL, &w, &e), 0);
        assert_int_equal(metadata_content_writer_offset(w), 5);
        assert_int_equal(metadata_content_writer_write(w, " world", 6, &e), 0);
        assert_int_equal(metadata_content_writer_commit(w, 11, TU_HELLO_WORLD, NULL, &e), 0);
        metadata_content_writer_close(w);
        assert_true(visible(f, "default", TU_HELLO_WORLD));
}

static int count_ingests(const struct content_status *st, void *ud)
{
        (void)st;
        (*(int *)ud)++;
        return 0;
}

static void test_gc_aborts_ingests_of_gone_leases(void **state)
{
        struct tu_fx *f = *state;
        struct error *e = NULL;
        struct metadata_content_writer *w = NULL;
        struct metadata_gc_stats st;
        int n = 0;
        assert_int_equal(metadata_lease_create(f->db, "default", "pull", NULL, NULL, &e), 0);
        assert_int_equal(
            metadata_content_writer_open(f->db, f->cs, "default", "leased-ingest", 0, NULL, "pull", &w, &e), 0);
        assert_int_equal(metadata_content_writer_write(w, "abc", 3, &e), 0);
        metadata_content_writer_close(w);
        assert_int_equal(metadata_content_writer_open(f->db, f->cs, "default", "fresh", 0, NULL, NULL, &w, &e), 0);
        metadata_content_writer_close(w);
        /* an open writer is never aborted under it */
        assert_int_equal(metadata_content_writer_open(f->db, f->cs, "default", "busy", 0, NULL, NULL, &w, &e), 0);

        assert_int_equal(metadata_gc_run(f->db, f->cs, NULL, NULL, &st, &e), 0);
        assert_int_equal(st.ingests, 0);
        assert_int_equal(content_ingest_walk(f->cs, count_ingests, &n, &e), 0);
        assert_int_equal(n, 3);

        assert_int_equal(metadata_lease_delete(f->db, "default", "pull", &e), 0);
        assert_int_equal(metadata_gc_run(f->db, f->cs, NULL, NULL, &st, &e), 0);
        assert_int_equal(st.ingests, 1);
        n = 0;
        assert_int_equal(content_ingest_walk(f->cs, count_ingests, &n, &e), 0);
        assert_int_equal(n, 2);
        struct content_status cs = {0};
        assert_err(metadata_content_status(f->cs, "default", "leased-ingest", &cs, &e), e, -ENOENT, NULL);
        metadata_content_writer_close(w);
}

/* cmocka's assertions longjmp and must stay on the main thread: worker threads count failures instead. */
static int thread_failures;

struct writer_arg {
        struct tu_fx *f;
        int id;
        const char *lease;
};

static void *writer_thread(void *p)
{
        struct writer_arg *a = p;
        for (int i = 0; i < 40; i++) {
                struct error *e = NULL;
                struct metadata_content_writer *w = NULL;
                _cleanup_free_ char *ref = xasprintf("w%d-%d", a->id, i);
                _cleanup_free_ char *data = xasprintf("blob %d %d", a->id, i);
                if (metadata_content_writer_open(a->f->db, a->f->cs, "default", ref, 0, NULL, a->lease, &w, &e) < 0 ||
                    metadata_content_writer_write(w, data, strlen(data), &e) < 0 ||
                    metadata_content_writer_commit(w, 0, NULL, NULL, &e) < 0)
                        __atomic_add_fetch(&thread_failures, 1, __ATOMIC_RELAXED);
                error_free(&e);
                metadata_content_writer_close(w);
        }
        return NULL;
}

static void *gc_thread(void *p)
{
        struct tu_fx *f = p;
        for (int i = 0; i < 30; i++) {
                struct error *e = NULL;
                if (metadata_gc_run(f->db, f->cs, NULL, NULL, NULL, &e) < 0)
                        __atomic_add_fetch(&thread_failures, 1, __ATOMIC_RELAXED);
                error_free(&e);
        }
        return NULL;
}

/* Writers committing under a lease while collections run: no referenced blob may ever go missing. */
static void test_gc_concurrent_with_commits(void **state)
{
        struct tu_fx *f = *state;
        struct error *e = NULL;
        pthread_t w1, w2, g;
        assert_int_equal(metadata_lease_create(f->db, "default", "pull", NULL, NULL, &e), 0);
        struct writer_arg a1 = {f, 1, "pull"}, a2 = {f, 2, "pull"};
        assert_int_equal(pthread_create(&g, NULL, gc_thread, f), 0);
        assert_int_equal(pthread_create(&w1, NULL, writer_thread, &a1), 0);
        assert_int_equal(pthread_create(&w2, NULL, writer_thread, &a2), 0);
        pthread_join(w1, NULL);
        pthread_join(w2, NULL);
        pthread_join(g, NULL);
        assert_int_equal(__atomic_load_n(&thread_failures, __ATOMIC_RELAXED), 0);
        assert_int_equal(metadata_gc_run(f->db, f->cs, NULL, NULL, NULL, &e), 0);
        struct metadata_content_info *list = NULL;
        size_t n = 0;
        assert_int_equal(metadata_content_list(f->db, "default", NULL, &list, &n, &e), 0);
        assert_int_equal(n, 80);
        for (size_t i = 0; i < n; i++)
                assert_true(content_blob_exists(f->cs, list[i].digest));
        metadata_content_info_list_free(list, n);
        assert_int_equal(metadata_lease_delete(f->db, "default", "pull", &e), 0);
        struct metadata_gc_stats st;
        assert_int_equal(metadata_gc_run(f->db, f->cs, NULL, NULL, &st, &e), 0);
        assert_int_equal(st.blobs, 80);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_gc_image_keeps_its_graph, tu_setup, tu_teardown),
            cmocka_unit_test_setup_teardown(test_gc_leases_and_roots, tu_setup, tu_teardown),
            cmocka_unit_test_setup_teardown(test_gc_keeps_half_written_ingest, tu_setup, tu_teardown),
            cmocka_unit_test_setup_teardown(test_gc_aborts_ingests_of_gone_leases, tu_setup, tu_teardown),
            cmocka_unit_test_setup_teardown(test_gc_concurrent_with_commits, tu_setup, tu_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

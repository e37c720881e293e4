/* Pull pipeline against tests/fake_registry.py: index -> platform manifest -> config -> layers into a
 * content store + metadata db in a temp dir, unpacked through a test hook that applies layers with
 * image_apply; GC labels, skipping present blobs, resume after a cut transfer, digest mismatch, platform
 * errors, all platforms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/apply.h"
#include "image/pull.h"
#include "metadata/content.h"
#include "metadata/images.h"
#include "metadata/leases.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/fs.h"
#include "util/strv.h"

#include "fake_registry.h"

struct env {
        char dir[64];
        char *rootfs;
        struct metadata_db *db;
        struct content_store *cs;
        struct fake_registry reg;
        char *base;
        unsigned unpack_calls;
        unsigned done_events;
};

/* Applies the layers not applied yet (a chain-ID file marks progress) into env->rootfs. */
static int unpack(const struct image_pull_layer *layers, size_t n, const char *lease _unused_, char **ret_chain,
                  void *ud, struct error **err)
{
        struct env *e = ud;
        _cleanup_free_ char *chain = NULL;

        e->unpack_calls++;
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *next = NULL;
                _cleanup_free_ char *mark = NULL;
                if (!chain) {
                        next = xstrdup(layers[i].diff_id);
                } else {
                        _cleanup_free_ char *s = xasprintf("%s %s", chain, layers[i].diff_id);
                        next = digest_from_buf(s, strlen(s));
                }
                mark = xasprintf("%s/.%s", e->dir, digest_hex(next));
                if (access(mark, F_OK) < 0) {
                        _cleanup_close_ int fd = -1;
                        int64_t size;
                        struct image_apply_result res;
                        struct image_apply_options o = {.no_same_owner = true};
                        int k = content_blob_open(e->cs, layers[i].digest, &fd, &size, err);
                        if (k < 0)
                                return k;
                        k = image_apply_layer_path(e->rootfs, fd, &o, &res, err);
                        if (k < 0)
                                return k;
                        if (strcmp(res.diff_id, layers[i].diff_id) != 0)
                                return error_set(err, EINVAL, "wrong diff id calculated on extraction \"%s\"",
                                                 layers[i].diff_id);
                        close(open(mark, O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
                }
                free(chain);
                chain = TAKE_PTR(next);
        }
        *ret_chain = TAKE_PTR(chain);
        return 0;
}

static void on_progress(const char *ref _unused_, const struct image_descriptor *d _unused_, enum image_pull_status st,
                        int64_t off _unused_, void *ud)
{
        struct env *e = ud;

        if (st == IMAGE_PULL_DONE || st == IMAGE_PULL_EXISTS)
                e->done_events++;
}

static int setup(void **state)
{
        struct env *e = xcalloc(1, sizeof(*e));
        _cleanup_free_ char *md = NULL, *cd = NULL;

        if (fake_registry_start(&e->reg, "none") < 0) {
                free(e);
                return -1;
        }
        strcpy(e->dir, "/tmp/krill-pull-XXXXXX");
        assert_non_null(mkdtemp(e->dir));
        md = xasprintf("%s/meta", e->dir);
        cd = xasprintf("%s/content", e->dir);
        e->rootfs = xasprintf("%s/rootfs", e->dir);
        assert_int_equal(mkdir(e->rootfs, 0755), 0);
        assert_int_equal(metadata_db_open(md, &e->db, NULL), 0);
        assert_int_equal(content_store_open(cd, &e->cs, NULL), 0);
        e->base = xasprintf("127.0.0.1:%d", e->reg.port);
        *state = e;
        return 0;
}

static int teardown(void **state)
{
        struct env *e = *state;

        content_store_free(e->cs);
        metadata_db_close(e->db);
        fake_registry_stop(&e->reg);
        (void)fs_rm_rf_at(AT_FDCWD, e->dir, NULL);
        free(e->rootfs);
        free(e->base);
        free(e);
        return 0;
}

static struct image_pull_options opts(struct env *e, const char *ref)
{
        return (struct image_pull_options){
            .ref = ref,
            .ns = "default",
            .db = e->db,
            .cs = e->cs,
            .resolver = {.plain_http = true},
            .platform = "linux/amd64",
            .unpack = unpack,
            .unpack_userdata = e,
            .snapshotter = "overlayfs",
            .progress = on_progress,
            .progress_userdata = e,
        };
}

static const char *label(struct env *e, const char *digest, const char *key)
{
        static char buf[256];
        struct metadata_content_info info = {0};
        const char *v;

        if (metadata_content_info(e->db, "default", digest, &info, NULL) < 0)
                return NULL;
        v = metadata_labels_get(info.labels, key);
        snprintf(buf, sizeof(buf), "%s", v ?: "");
        metadata_content_info_clear(&info);
        return v ? buf : NULL;
}

static bool has_content(struct env *e, const char *digest)
{
        struct metadata_content_info info = {0};
        int k = metadata_content_info(e->db, "default", digest, &info, NULL);

        metadata_content_info_clear(&info);
        return k == 0;
}

static void test_pull_index_unpack_and_labels(void **state)
{
        struct env *e = *state;
        _cleanup_free_ char *ref = xasprintf("%s/test/img:1", e->base);
        struct image_pull_options o = opts(e, ref);
        struct image_pull_result r = {0};
        struct error *err = NULL;
        struct metadata_image img = {0};
        struct metadata_lease *leases = NULL;
        size_t nl = 0;
        const char *idx = fake_registry_str(&e->reg, "index"), *amd = fake_registry_str(&e->reg, "amd64"),
                   *arm = fake_registry_str(&e->reg, "arm64");
        _cleanup_free_ char *hello = xasprintf("%s/bin/hello", e->rootfs),
                            *host = xasprintf("%s/etc/hostname", e->rootfs);
        _cleanup_free_ char *src = xasprintf("containerd.io/distribution.source.%s", e->base);
        const char *cfg;

        if (image_pull(&o, &r, &err) < 0)
                fail_msg("%s", error_str(err));
        assert_string_equal(r.name, ref);
        assert_string_equal(r.target.digest, idx);
        assert_non_null(r.chain_id);
        assert_true(r.bytes_fetched > 4096);
        assert_int_equal(metadata_image_get(e->db, "default", ref, &img, NULL), 0);
        assert_string_equal(img.target.digest, idx);
        assert_string_equal(img.target.media_type, IMAGE_MT_OCI_INDEX);
        metadata_image_clear(&img);
        /* index keeps only the chosen manifest (m.1 = amd64, the second entry) */
        assert_string_equal(label(e, idx, "containerd.io/gc.ref.content.m.1"), amd);
        assert_null(label(e, idx, "containerd.io/gc.ref.content.m.0"));
        assert_string_equal(label(e, idx, src), "test/img");
        assert_false(has_content(e, arm));
        cfg = label(e, amd, "containerd.io/gc.ref.content.config");
        assert_non_null(cfg);
        {
                _cleanup_free_ char *c = xstrdup(cfg);
                _cleanup_free_ char *l0 = xstrdup(label(e, amd, "containerd.io/gc.ref.content.l.0"));
                json_t *diff = json_object_get(e->reg.info, "amd64_diff_ids");
                assert_string_equal(label(e, c, "containerd.io/gc.ref.snapshot.overlayfs"), r.chain_id);
                assert_string_equal(label(e, l0, "containerd.io/uncompressed"),
                                    json_string_value(json_array_get(diff, 0)));
        }
        assert_int_equal(access(hello, F_OK), 0);
        assert_int_equal(access(host, F_OK), 0);
        assert_true(e->unpack_calls >= 1);
        assert_int_equal(e->done_events, 2);
        /* the temporary lease is gone */
        assert_int_equal(metadata_lease_list(e->db, "default", NULL, &leases, &nl, NULL), 0);
        assert_int_equal(nl, 0);
        metadata_lease_list_free(leases, nl);
        image_pull_result_clear(&r);

        /* containerd's discard_unpacked_layers: the manifest stops referencing its layers */
        {
                struct image_pull_options d = o;
                assert_non_null(label(e, amd, "containerd.io/gc.ref.content.l.1"));
                d.discard_unpacked_layers = true;
                assert_int_equal(image_pull(&d, NULL, NULL), 0);
                assert_null(label(e, amd, "containerd.io/gc.ref.content.l.0"));
                assert_null(label(e, amd, "containerd.io/gc.ref.content.l.1"));
                assert_non_null(label(e, amd, "containerd.io/gc.ref.content.config"));
        }

        /* again: nothing is downloaded */
        e->done_events = 0;
        assert_int_equal(image_pull(&o, &r, NULL), 0);
        assert_int_equal(r.bytes_fetched, 0);
        assert_int_equal(e->done_events, 2);
        image_pull_result_clear(&r);
}

static void test_pull_platform_errors_and_all(void **state)
{
        struct env *e = *state;
        _cleanup_free_ char *ref = xasprintf("%s/test/img:1", e->base);
        struct image_pull_options o = opts(e, ref);
        struct image_pull_result r = {0};
        struct error *err = NULL;

        o.platform = "linux/s390x";
        assert_int_equal(image_pull(&o, &r, &err), -ENOENT);
        assert_string_equal(error_str(err),
                            "no match for platform in manifest (available: linux/arm64/v8, linux/amd64): not found");
        error_free(&err);
        o.platform = "linux/a b";
        assert_int_equal(image_pull(&o, &r, &err), -EINVAL);
        error_free(&err);

        o.platform = "linux/arm64";
        o.all_platforms = true;
        o.unpack = NULL;
        assert_int_equal(image_pull(&o, &r, &err), 0);
        assert_true(has_content(e, fake_registry_str(&e->reg, "arm64")));
        assert_true(has_content(e, fake_registry_str(&e->reg, "amd64")));
        assert_string_equal(label(e, fake_registry_str(&e->reg, "index"), "containerd.io/gc.ref.content.m.0"),
                            fake_registry_str(&e->reg, "arm64"));
        image_pull_result_clear(&r);
}

static void test_pull_not_found(void **state)
{
        struct env *e = *state;
        _cleanup_free_ char *ref = xasprintf("%s/test/img:nope", e->base);
        _cleanup_free_ char *want = NULL;
        struct image_pull_options o = opts(e, ref);
        struct error *err = NULL;

        assert_int_equal(image_pull(&o, NULL, &err), -ENOENT);
        want = xasprintf("failed to resolve reference \"%s\": %s: not found", ref, ref);
        assert_string_equal(error_str(err), want);
        error_free(&err);
}

static void test_pull_resume_after_cut(void **state)
{
        struct env *e = *state;
        _cleanup_free_ char *ref = xasprintf("%s/test/flaky:single", e->base);
        struct image_pull_options o = opts(e, ref);
        struct image_pull_result r = {0};
        struct error *err = NULL;

        o.max_concurrent_downloads = 1;
        if (image_pull(&o, &r, &err) < 0)
                fail_msg("%s", error_str(err));
        assert_string_equal(r.target.digest, fake_registry_str(&e->reg, "amd64"));
        image_pull_result_clear(&r);
}

static void test_pull_digest_mismatch(void **state)
{
        struct env *e = *state;
        _cleanup_free_ char *ref = xasprintf("%s/test/bad:single", e->base);
        struct image_pull_options o = opts(e, ref);
        struct metadata_image img = {0};
        struct error *err = NULL;
        struct content_status *st = NULL;
        size_t n = 0;

        /* a fresh store so that no layer is present yet */
        content_store_free(e->cs);
        metadata_db_close(e->db);
        {
                _cleanup_free_ char *md = xasprintf("%s/meta2", e->dir), *cd = xasprintf("%s/content2", e->dir);
                assert_int_equal(metadata_db_open(md, &e->db, NULL), 0);
                assert_int_equal(content_store_open(cd, &e->cs, NULL), 0);
        }
        o.db = e->db;
        o.cs = e->cs;
        assert_true(image_pull(&o, NULL, &err) < 0);
        assert_non_null(strstr(error_str(err), "failed to commit layer-sha256:"));
        assert_non_null(strstr(error_str(err), "unexpected commit digest"));
        error_free(&err);
        assert_int_equal(metadata_image_get(e->db, "default", ref, &img, NULL), -ENOENT);
        /* the corrupted layer's ingest was aborted (the other layer may keep a resumable one) */
        {
                _cleanup_free_ char *bad = xasprintf(
                    "layer-%s", label(e, fake_registry_str(&e->reg, "amd64"), "containerd.io/gc.ref.content.l.1"));
                assert_int_equal(metadata_content_list_statuses(e->cs, "default", NULL, &st, &n, NULL), 0);
                for (size_t i = 0; i < n; i++)
                        assert_string_not_equal(st[i].ref, bad);
        }
        metadata_content_statuses_free(st, n);
}

struct bg {
        bool done;
        int code;
        char *digest;
};

static void bg_done(const struct image_pull_result *res, const struct error *err, void *ud)
{
        struct bg *b = ud;

        b->done = true;
        b->code = err ? err->code : 0;
        if (err)
                print_message("pull error: %s\n", error_str(err));
        if (res)
                b->digest = xstrdup(res->target.digest);
}

static void test_pull_start_on_loop(void **state)
{
        struct env *e = *state;
        _cleanup_free_ char *ref = xasprintf("%s/test/img:1", e->base);
        _cleanup_free_ char *bad = xasprintf("%s/test/img:nope", e->base);
        struct image_pull_options o = opts(e, ref);
        uv_loop_t loop;
        struct bg b1 = {0}, b2 = {0}, b3 = {0};

        uv_loop_init(&loop);
        /* two pulls of the same image at once share the store (ingest locks are waited for) */
        o.unpack = NULL;
        assert_int_equal(image_pull_start(&loop, &o, bg_done, &b1, NULL), 0);
        assert_int_equal(image_pull_start(&loop, &o, bg_done, &b3, NULL), 0);
        o.ref = bad;
        assert_int_equal(image_pull_start(&loop, &o, bg_done, &b2, NULL), 0);
        while (!b1.done || !b2.done || !b3.done)
                uv_run(&loop, UV_RUN_ONCE);
        uv_run(&loop, UV_RUN_DEFAULT);
        assert_int_equal(uv_loop_close(&loop), 0);
        assert_int_equal(b1.code, 0);
        assert_string_equal(b1.digest, fake_registry_str(&e->reg, "index"));
        assert_int_equal(b2.code, ENOENT);
        assert_null(b2.digest);
        assert_int_equal(b3.code, 0);
        assert_string_equal(b3.digest, b1.digest);
        free(b1.digest);
        free(b3.digest);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_pull_index_unpack_and_labels, setup, teardown),
            cmocka_unit_test_setup_teardown(test_pull_platform_errors_and_all, setup, teardown),
            cmocka_unit_test_setup_teardown(test_pull_not_found, setup, teardown),
            cmocka_unit_test_setup_teardown(test_pull_resume_after_cut, setup, teardown),
            cmocka_unit_test_setup_teardown(test_pull_digest_mismatch, setup, teardown),
            cmocka_unit_test_setup_teardown(test_pull_start_on_loop, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

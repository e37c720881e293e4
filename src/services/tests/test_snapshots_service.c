/* snapshots.v1 + diff.v1 logic end to end, the way ctr unpacks an image: layer blobs in the content store,
 * Stat(chainID) -> NotFound -> Prepare -> Diff.Apply -> Commit(chainID), then a container snapshot that is
 * mounted for real (root only) and removed children first. Runs against both snapshotters. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>
#include <pthread.h>

#include "content/store.h"
#include "metadata/content.h"
#include "metadata/db.h"
#include "metadata/gc.h"
#include "metadata/leases.h"
#include "services/diff.h"
#include "services/snapshots.h"
#include "snapshot/mount.h"
#include "snapshot/registry.h"
#include "util/alloc.h"
#include "util/cleanup.h"

struct fix {
        char tmp[64];
        const char *snapshotter;
        struct services_ctx ctx;
        struct metadata_db *db;
        struct content_store *cs;
        struct snapshot_registry *reg;
};

static int rm_rf(const char *p)
{
        _cleanup_free_ char *cmd = xasprintf("rm -rf '%s'", p);
        return system(cmd);
}

static int setup_common(void **state, const char *snapshotter)
{
        struct fix *f = xcalloc(1, sizeof(*f));
        struct error *err = NULL;
        struct snapshotter *s = NULL;
        strcpy(f->tmp, "/tmp/krill-snapsvc-XXXXXX");
        assert_non_null(mkdtemp(f->tmp));
        f->snapshotter = snapshotter;
        _cleanup_free_ char *mdir = xasprintf("%s/io.containerd.metadata.v1.lmdb", f->tmp);
        _cleanup_free_ char *cdir = xasprintf("%s/io.containerd.content.v1.content", f->tmp);
        _cleanup_free_ char *odir = xasprintf("%s/io.containerd.snapshotter.v1.overlayfs", f->tmp);
        _cleanup_free_ char *ndir = xasprintf("%s/io.containerd.snapshotter.v1.native", f->tmp);
        assert_int_equal(metadata_db_open(mdir, &f->db, &err), 0);
        assert_int_equal(content_store_open(cdir, &f->cs, &err), 0);
        f->reg = snapshot_registry_new("overlayfs");
        assert_int_equal(snapshot_overlay_open(odir, &s, &err), 0);
        assert_int_equal(snapshot_registry_add(f->reg, s), 0);
        assert_int_equal(snapshot_native_open(ndir, &s, &err), 0);
        assert_int_equal(snapshot_registry_add(f->reg, s), 0);
        assert_null(err);
        f->ctx.root = f->tmp;
        f->ctx.db = f->db;
        f->ctx.content = f->cs;
        f->ctx.snapshots = f->reg;
        *state = f;
        return 0;
}

static int setup_overlay(void **state)
{
        return setup_common(state, "overlayfs");
}

static int setup_native(void **state)
{
        return setup_common(state, "native");
}

static int teardown(void **state)
{
        struct fix *f = *state;
        snapshot_registry_free(f->reg);
        content_store_free(f->cs);
        metadata_db_close(f->db);
        rm_rf(f->tmp);
        free(f);
        return 0;
}

/* --- layers --- */

struct blob {
        uint8_t *p;
        size_t len, cap;
};

static la_ssize_t wcb(struct archive *a, void *d, const void *p, size_t n)
{
        (void)a;
        struct blob *b = d;
        if (b->len + n > b->cap) {
                b->cap = (b->len + n) * 2;
                b->p = xrealloc(b->p, b->cap);
        }
        memcpy(b->p + b->len, p, n);
        b->len += n;
        return (la_ssize_t)n;
}

/* entries: "path=content" for files, "path/" for dirs; gzip selects compression. */
static struct blob make_layer(const char *const *entries, bool gzip)
{
        struct blob b = {0};
        struct archive *a = archive_write_new();
        archive_write_set_format_pax_restricted(a);
        if (gzip)
                assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
        archive_write_set_bytes_in_last_block(a, 1);
        assert_int_equal(archive_write_open(a, &b, NULL, wcb, NULL), ARCHIVE_OK);
        for (const char *const *e = entries; *e; e++) {
                struct archive_entry *ae = archive_entry_new();
                const char *eq = strchr(*e, '=');
                _cleanup_free_ char *path = eq ? xstrndup(*e, (size_t)(eq - *e)) : xstrdup(*e);
                archive_entry_set_pathname(ae, path);
                archive_entry_set_mtime(ae, 1600000000, 0);
                if (path[strlen(path) - 1] == '/') {
                        archive_entry_set_filetype(ae, AE_IFDIR);
                        archive_entry_set_perm(ae, 0755);
                } else {
                        archive_entry_set_filetype(ae, AE_IFREG);
                        archive_entry_set_perm(ae, 0644);
                        archive_entry_set_size(ae, eq ? (la_int64_t)strlen(eq + 1) : 0);
                }
                assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
                if (eq && strlen(eq + 1))
                        archive_write_data(a, eq + 1, strlen(eq + 1));
                archive_entry_free(ae);
        }
        assert_int_equal(archive_write_close(a), ARCHIVE_OK);
        archive_write_free(a);
        return b;
}

static char *sha256_of(const void *p, size_t n)
{
        unsigned char md[32];
        unsigned len = 0;
        char *s = xmalloc(72);
        EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
        strcpy(s, "sha256:");
        for (int i = 0; i < 32; i++)
                sprintf(s + 7 + 2 * i, "%02x", md[i]);
        return s;
}

/* Stores the blob in the content store and makes it visible in ns; returns its digest. */
static char *store_blob(struct fix *f, const char *ns, const struct blob *b)
{
        struct error *err = NULL;
        struct content_writer *w = NULL;
        char *dg = sha256_of(b->p, b->len);
        _cleanup_free_ char *ref = xasprintf("test-%s", dg + 7);
        assert_int_equal(content_writer_open(f->cs, ref, (int64_t)b->len, dg, &w, &err), 0);
        assert_int_equal(content_writer_write(w, b->p, b->len, &err), 0);
        assert_int_equal(content_writer_commit(w, (int64_t)b->len, dg, NULL, &err), 0);
        content_writer_close(w);
        assert_int_equal(metadata_content_ref_add(f->db, ns, dg, (int64_t)b->len, NULL, NULL, &err), 0);
        assert_null(err);
        return dg;
}

/* ctr's unpack of one layer; returns the new chain ID. */
static char *unpack_layer(struct fix *f, const char *ns, const char *parent_chain, const char *blob_digest,
                          const char *media_type, const char *expect_diff_id)
{
        struct error *err = NULL;
        struct snapshot_info info = {0};
        struct snapshot_mounts m = {0};
        struct image_apply_result res;
        char *chain;

        if (!parent_chain) {
                chain = xstrdup(expect_diff_id);
        } else {
                _cleanup_free_ char *s = xasprintf("%s %s", parent_chain, expect_diff_id);
                chain = sha256_of(s, strlen(s));
        }
        assert_int_equal(services_snapshots_stat(&f->ctx, ns, f->snapshotter, chain, &info, &err), -ENOENT);
        error_free(&err);
        _cleanup_free_ char *key = xasprintf("extract-1-%s", chain + 7);
        assert_int_equal(services_snapshots_prepare(&f->ctx, ns, f->snapshotter, key, parent_chain, NULL, "lease1",
                                                    false, &m, &err),
                         0);
        assert_int_equal(services_diff_apply(&f->ctx, ns, media_type, blob_digest, m.v, m.n, &res, &err), 0);
        assert_null(err);
        assert_string_equal(res.diff_id, expect_diff_id);
        snapshot_mounts_clear(&m);
        char *labels[] = {"containerd.io/snapshot.ref", chain, NULL};
        assert_int_equal(services_snapshots_commit(&f->ctx, ns, f->snapshotter, chain, key, labels, NULL, &err), 0);
        assert_null(err);
        return chain;
}

static void test_snapshots_service_unpack_and_run(void **state)
{
        struct fix *f = *state;
        struct error *err = NULL;
        static const char *const l1[] = {"bin/", "bin/sh=#!/bin/sh", "etc/", "etc/passwd=root:x:0:0",
                                         "data/", "data/old=old", NULL};
        static const char *const l2[] = {"etc/", "etc/.wh.passwd", "etc/hosts=127.0.0.1 localhost", "data/",
                                         "data/.wh..wh..opq", "data/new=new", NULL};
        struct blob t1 = make_layer(l1, false), t2 = make_layer(l2, false);
        struct blob g1 = make_layer(l1, true), g2 = make_layer(l2, false);
        _cleanup_free_ char *d1 = sha256_of(t1.p, t1.len), *d2 = sha256_of(t2.p, t2.len);
        _cleanup_free_ char *b1 = store_blob(f, "default", &g1), *b2 = store_blob(f, "default", &g2);
        assert_int_equal(metadata_lease_create(f->db, "default", "lease1", NULL, NULL, &err), 0);

        _cleanup_free_ char *c1 = unpack_layer(f, "default", NULL, b1, "application/vnd.oci.image.layer.v1.tar+gzip", d1);
        _cleanup_free_ char *c2 =
                unpack_layer(f, "default", c1, b2, "application/vnd.docker.image.rootfs.diff.tar.gzip", d2);

        struct snapshot_info info = {0};
        assert_int_equal(services_snapshots_stat(&f->ctx, "default", f->snapshotter, c2, &info, &err), 0);
        assert_int_equal(info.kind, SNAPSHOT_KIND_COMMITTED);
        assert_string_equal(info.parent, c1);
        assert_string_equal(snapshot_labels_get(info.labels, "containerd.io/snapshot.ref"), c2);
        snapshot_info_clear(&info);

        /* another namespace sees nothing */
        assert_int_equal(services_snapshots_stat(&f->ctx, "other", f->snapshotter, c2, &info, &err), -ENOENT);
        error_free(&err);

        /* list with filters */
        struct snapshot_info *list = NULL;
        size_t n = 0;
        char *flt[] = {"kind==committed"};
        assert_int_equal(services_snapshots_list(&f->ctx, "default", f->snapshotter, flt, 1, &list, &n, &err), 0);
        assert_int_equal(n, 2);
        for (size_t i = 0; i < n; i++)
                snapshot_info_clear(&list[i]);
        free(list);

        /* container snapshot, mounted for real */
        struct snapshot_mounts m = {0};
        assert_int_equal(services_snapshots_prepare(&f->ctx, "default", f->snapshotter, "ctr1", c2, NULL, NULL, false,
                                                    &m, &err),
                         0);
        if (geteuid() == 0) {
                _cleanup_free_ char *target = xasprintf("%s/rootfs", f->tmp);
                assert_int_equal(mkdir(target, 0755), 0);
                int r = snapshot_mount_all(m.v, m.n, target, &err);
                if (r == 0) {
                        _cleanup_free_ char *sh = xasprintf("%s/bin/sh", target), *pw = xasprintf("%s/etc/passwd", target),
                                            *ho = xasprintf("%s/etc/hosts", target),
                                            *old = xasprintf("%s/data/old", target),
                                            *nw = xasprintf("%s/data/new", target);
                        assert_int_equal(access(sh, F_OK), 0);
                        assert_int_equal(access(pw, F_OK), -1);
                        assert_int_equal(access(ho, F_OK), 0);
                        assert_int_equal(access(old, F_OK), -1);
                        assert_int_equal(access(nw, F_OK), 0);
                        assert_int_equal(snapshot_unmount(target, 0, &err), 0);
                } else {
                        print_message("mount skipped: %s\n", error_str(err));
                        error_free(&err);
                }
        }
        snapshot_mounts_clear(&m);
        struct snapshot_usage u;
        assert_int_equal(services_snapshots_usage(&f->ctx, "default", f->snapshotter, c1, &u, &err), 0);
        assert_true(u.inodes > 0);

        /* removal: children first */
        assert_int_equal(services_snapshots_remove(&f->ctx, "default", f->snapshotter, c2, &err), -EBUSY);
        error_free(&err);
        assert_int_equal(services_snapshots_remove(&f->ctx, "default", f->snapshotter, "ctr1", &err), 0);
        assert_int_equal(services_snapshots_remove(&f->ctx, "default", f->snapshotter, c2, &err), 0);
        assert_int_equal(services_snapshots_remove(&f->ctx, "default", f->snapshotter, c1, &err), 0);
        assert_null(err);
        _cleanup_free_ char *sdir = xasprintf("%s/io.containerd.snapshotter.v1.%s/snapshots", f->tmp,
                                              strcmp(f->snapshotter, "native") == 0 ? "native" : "overlayfs");
        _cleanup_free_ char *cmd = xasprintf("test -z \"$(ls -A '%s')\"", sdir);
        assert_int_equal(system(cmd), 0);
        free(t1.p);
        free(t2.p);
        free(g1.p);
        free(g2.p);
}

static void test_snapshots_service_errors(void **state)
{
        struct fix *f = *state;
        struct error *err = NULL;
        struct snapshot_mounts m = {0};
        struct image_apply_result res;
        static const char *const l1[] = {"a=1", NULL};
        struct blob t = make_layer(l1, false);
        _cleanup_free_ char *dg = store_blob(f, "ns1", &t);

        assert_int_equal(services_snapshots_prepare(&f->ctx, "ns1", "nope", "k", NULL, NULL, NULL, false, &m, &err),
                         -EINVAL);
        _cleanup_free_ char *msg = error_message(err);
        assert_string_equal(msg, "snapshotter not loaded: nope: invalid argument");
        error_free(&err);
        assert_int_equal(services_snapshots_prepare(&f->ctx, "ns1", f->snapshotter, "k", "missing", NULL, NULL, false,
                                                    &m, &err),
                         -ENOENT);
        error_free(&err);
        assert_int_equal(services_snapshots_prepare(&f->ctx, "ns1", f->snapshotter, "k", NULL, NULL, NULL, false, &m,
                                                    &err),
                         0);
        assert_int_equal(services_snapshots_prepare(&f->ctx, "ns1", f->snapshotter, "k", NULL, NULL, NULL, false, &m,
                                                    &err),
                         -EEXIST);
        error_free(&err);
        assert_int_equal(services_diff_apply(&f->ctx, "ns1", "application/x-foo", dg, m.v, m.n, &res, &err), -ENOSYS);
        error_free(&err);
        /* the blob is not visible in ns2 */
        assert_int_equal(services_diff_apply(&f->ctx, "ns2", IMAGE_MEDIA_TYPE_LAYER_TAR, dg, m.v, m.n, &res, &err),
                         -ENOENT);
        error_free(&err);
        assert_int_equal(services_diff_apply(&f->ctx, "ns1", IMAGE_MEDIA_TYPE_LAYER_TAR, dg, m.v, m.n, &res, &err), 0);
        snapshot_mounts_clear(&m);
        if (geteuid() == 0) {
                /* neither one overlay nor one writable bind: mounted on a temp dir, applied, unmounted */
                char *opts[] = {"size=16m", NULL};
                struct snapshot_mount tm = {.type = "tmpfs", .source = "tmpfs", .options = opts};
                struct image_apply_result res2;
                assert_int_equal(services_diff_apply(&f->ctx, "ns1", IMAGE_MEDIA_TYPE_LAYER_TAR, dg, &tm, 1, &res2, &err),
                                 0);
                assert_string_equal(res2.diff_id, res.diff_id);
                _cleanup_free_ char *tmpm = xasprintf("test -z \"$(ls -A '%s/tmpmounts')\"", f->tmp);
                assert_int_equal(system(tmpm), 0);
        }
        assert_int_equal(services_snapshots_commit(&f->ctx, "ns1", f->snapshotter, "c", "k", NULL, NULL, &err), 0);
        assert_int_equal(services_snapshots_commit(&f->ctx, "ns1", f->snapshotter, "c2", "c", NULL, NULL, &err), -EBUSY);
        error_free(&err);
        assert_int_equal(services_snapshots_mounts(&f->ctx, "ns1", f->snapshotter, "c", &m, &err), -EBUSY);
        error_free(&err);
        struct snapshot_info in = {.name = "c", .labels = (char *[]){"x", "y", NULL}}, out = {0};
        char *paths[] = {"labels.x"};
        assert_int_equal(services_snapshots_update(&f->ctx, "ns1", f->snapshotter, &in, paths, 1, &out, &err), 0);
        assert_string_equal(snapshot_labels_get(out.labels, "x"), "y");
        snapshot_info_clear(&out);
        char *bad[] = {"parent"};
        assert_int_equal(services_snapshots_update(&f->ctx, "ns1", f->snapshotter, &in, bad, 1, &out, &err), -EINVAL);
        error_free(&err);
        assert_int_equal(services_snapshots_cleanup(&f->ctx, f->snapshotter, &err), 0);
        free(t.p);
}

static void test_snapshots_service_unpack_helper(void **state)
{
        struct fix *f = *state;
        struct error *err = NULL;
        static const char *const l1[] = {"etc/", "etc/a=1", "etc/b=2", NULL};
        static const char *const l2[] = {"etc/", "etc/.wh.a", "etc/c=3", NULL};
        struct blob t1 = make_layer(l1, false), t2 = make_layer(l2, false);
        struct blob g1 = make_layer(l1, true), g2 = make_layer(l2, true);
        _cleanup_free_ char *d1 = sha256_of(t1.p, t1.len), *d2 = sha256_of(t2.p, t2.len);
        _cleanup_free_ char *b1 = store_blob(f, "k8s.io", &g1), *b2 = store_blob(f, "k8s.io", &g2);
        struct services_unpack_layer layers[] = {
                {b1, "application/vnd.oci.image.layer.v1.tar+gzip", d1},
                {b2, "application/vnd.oci.image.layer.v1.tar+gzip", d2},
        };
        _cleanup_free_ char *top = NULL, *top2 = NULL;
        _cleanup_free_ char *s = xasprintf("%s %s", d1, d2);
        _cleanup_free_ char *want = sha256_of(s, strlen(s));

        assert_int_equal(services_snapshots_unpack(&f->ctx, "k8s.io", f->snapshotter, layers, 2, NULL, &top, &err), 0);
        assert_null(err);
        assert_string_equal(top, want);
        /* again: both chains exist, nothing is applied */
        assert_int_equal(services_snapshots_unpack(&f->ctx, "k8s.io", f->snapshotter, layers, 2, NULL, &top2, &err), 0);
        assert_string_equal(top2, want);
        struct snapshot_info *list = NULL;
        size_t n = 0;
        assert_int_equal(services_snapshots_list(&f->ctx, "k8s.io", f->snapshotter, NULL, 0, &list, &n, &err), 0);
        assert_int_equal(n, 2);
        for (size_t i = 0; i < n; i++)
                snapshot_info_clear(&list[i]);
        free(list);

        /* a wrong diff id fails and leaves no extract snapshot behind */
        struct services_unpack_layer bad[] = {{b2, "application/vnd.oci.image.layer.v1.tar+gzip", d1}};
        assert_int_equal(services_snapshots_unpack(&f->ctx, "other", f->snapshotter, bad, 1, NULL, NULL, &err),
                         -ENOENT); /* blob not visible in "other" */
        error_free(&err);
        _cleanup_free_ char *wrong = sha256_of("nope", 4);
        assert_int_equal(services_snapshots_unpack(&f->ctx, "k8s.io", f->snapshotter,
                                                   (struct services_unpack_layer[]){{b2, layers[1].media_type, wrong}},
                                                   1, NULL, NULL, &err),
                         -EINVAL);
        _cleanup_free_ char *msg = error_message(err);
        assert_non_null(strstr(msg, "wrong diff id calculated on extraction"));
        error_free(&err);
        assert_int_equal(services_snapshots_list(&f->ctx, "k8s.io", f->snapshotter, NULL, 0, &list, &n, &err), 0);
        assert_int_equal(n, 2);
        for (size_t i = 0; i < n; i++)
                snapshot_info_clear(&list[i]);
        free(list);
        free(t1.p);
        free(t2.p);
        free(g1.p);
        free(g2.p);
}

/* The pipelined unpack: present chains are skipped in the middle of a run, a failing layer stops the run
 * while the next layer's decompression is already under way (its thread and buffers go, no extract
 * snapshot stays), and two images unpack at the same time from two threads. */
struct unpack_arg {
        struct fix *f;
        const char *ns;
        struct services_unpack_layer *layers;
        size_t n;
        char *top;
        int r;
};

static void *unpack_thread(void *data)
{
        struct unpack_arg *u = data;
        struct error *err = NULL;
        u->r = services_snapshots_unpack(&u->f->ctx, u->ns, u->f->snapshotter, u->layers, u->n, NULL, &u->top, &err);
        error_free(&err);
        return NULL;
}

static size_t count_snapshots(struct fix *f, const char *ns)
{
        struct error *err = NULL;
        struct snapshot_info *list = NULL;
        size_t n = 0;
        assert_int_equal(services_snapshots_list(&f->ctx, ns, f->snapshotter, NULL, 0, &list, &n, &err), 0);
        for (size_t i = 0; i < n; i++) {
                if (strncmp(list[i].name, "extract-", 8) == 0)
                        fail_msg("extract snapshot left: %s", list[i].name);
                snapshot_info_clear(&list[i]);
        }
        free(list);
        return n;
}

static void test_snapshots_service_unpack_pipeline(void **state)
{
        struct fix *f = *state;
        struct error *err = NULL;
        static const char *const l1[] = {"etc/", "etc/a=1", NULL};
        static const char *const l2[] = {"etc/", "etc/b=2", NULL};
        static const char *const l3[] = {"usr/", "usr/c=3", NULL};
        struct blob t[3] = {make_layer(l1, false), make_layer(l2, false), make_layer(l3, false)};
        struct blob g[3] = {make_layer(l1, true), make_layer(l2, true), make_layer(l3, true)};
        char *d[3], *b[3], *b2[3];
        for (int i = 0; i < 3; i++) {
                d[i] = sha256_of(t[i].p, t[i].len);
                b[i] = store_blob(f, "one", &g[i]);
                b2[i] = store_blob(f, "two", &t[i]);
        }
        const char *gz = "application/vnd.oci.image.layer.v1.tar+gzip";
        struct services_unpack_layer layers[] = {{b[0], gz, d[0]}, {b[1], gz, d[1]}, {b[2], gz, d[2]}};
        _cleanup_free_ char *wrong = sha256_of("nope", 4);
        struct services_unpack_layer bad[] = {{b[0], gz, d[0]}, {b[1], gz, wrong}, {b[2], gz, d[2]}};

        /* layer 2 fails while layer 3 is being decompressed ahead: layer 1 stays, nothing else */
        assert_int_equal(services_snapshots_unpack(&f->ctx, "one", f->snapshotter, bad, 3, NULL, NULL, &err),
                         -EINVAL);
        error_free(&err);
        assert_int_equal(count_snapshots(f, "one"), 1);
        /* layer 1 is skipped, 2 and 3 are applied (3 decompressed during 2) */
        _cleanup_free_ char *top = NULL;
        assert_int_equal(services_snapshots_unpack(&f->ctx, "one", f->snapshotter, layers, 3, NULL, &top, &err), 0);
        assert_null(err);
        assert_int_equal(count_snapshots(f, "one"), 3);

        /* two images at once: the same layers in another namespace (uncompressed), and the first image again */
        struct services_unpack_layer plain[] = {{b2[0], IMAGE_MEDIA_TYPE_LAYER_TAR, d[0]},
                                                {b2[1], IMAGE_MEDIA_TYPE_LAYER_TAR, d[1]},
                                                {b2[2], IMAGE_MEDIA_TYPE_LAYER_TAR, d[2]}};
        struct unpack_arg ua = {f, "two", plain, 3, NULL, 1}, ub = {f, "one", layers, 3, NULL, 1};
        pthread_t ta, tb;
        assert_int_equal(pthread_create(&ta, NULL, unpack_thread, &ua), 0);
        assert_int_equal(pthread_create(&tb, NULL, unpack_thread, &ub), 0);
        pthread_join(ta, NULL);
        pthread_join(tb, NULL);
        assert_int_equal(ua.r, 0);
        assert_int_equal(ub.r, 0);
        assert_string_equal(ua.top, top);
        assert_string_equal(ub.top, top);
        assert_int_equal(count_snapshots(f, "two"), 3);
        free(ua.top);
        free(ub.top);

        /* a container snapshot goes on the top chain */
        struct snapshot_mounts m = {0};
        assert_int_equal(services_snapshots_prepare(&f->ctx, "two", f->snapshotter, "rw", top, NULL, NULL, false, &m,
                                                    &err),
                         0);
        snapshot_mounts_clear(&m);
        for (int i = 0; i < 3; i++) {
                free(t[i].p);
                free(g[i].p);
                free(d[i]);
                free(b[i]);
                free(b2[i]);
        }
}

/* Diff (compare) on the native snapshotter: the changes of an active snapshot over its parent's view as a
 * gzip tar in the content store, labelled with its uncompressed digest and the caller's labels. */
static void test_snapshots_service_diff_compare(void **state)
{
        struct fix *f = *state;
        struct error *err = NULL;
        if (geteuid() != 0)
                skip();
        static const char *const l1[] = {"etc/", "etc/a=1", "etc/b=2", "usr/", "usr/keep=k", NULL};
        struct blob t1 = make_layer(l1, false);
        _cleanup_free_ char *d1 = sha256_of(t1.p, t1.len), *b1 = store_blob(f, "default", &t1);
        struct services_unpack_layer layers[] = {{b1, IMAGE_MEDIA_TYPE_LAYER_TAR, d1}};
        _cleanup_free_ char *top = NULL;
        assert_int_equal(services_snapshots_unpack(&f->ctx, "default", f->snapshotter, layers, 1, NULL, &top, &err), 0);
        struct snapshot_mounts up = {0}, low = {0};
        assert_int_equal(services_snapshots_prepare(&f->ctx, "default", f->snapshotter, "w", top, NULL, NULL, false,
                                                    &up, &err),
                         0);
        assert_int_equal(services_snapshots_prepare(&f->ctx, "default", f->snapshotter, "v", top, NULL, NULL, true,
                                                    &low, &err),
                         0);
        assert_string_equal(up.v[0].type, "bind");
        _cleanup_free_ char *cmd = xasprintf("cd '%s' && rm etc/a && echo changed > etc/b && echo c > etc/c && "
                                             "mkdir -p opt/d && echo z > opt/d/z",
                                             up.v[0].source);
        assert_int_equal(system(cmd), 0);
        char *labels[] = {"x", "y", NULL};
        struct services_diff_desc desc = {0};
        assert_int_equal(services_diff_compare(&f->ctx, "default", low.v, low.n, up.v, up.n, "", "ref-1", labels, NULL,
                                               &desc, &err),
                         0);
        assert_null(err);
        assert_string_equal(desc.media_type, "application/vnd.oci.image.layer.v1.tar+gzip");

        /* read it back: gzip tar with exactly the changes, in walk order */
        _cleanup_close_ int fd = -1;
        int64_t size = 0;
        assert_int_equal(content_blob_open(f->cs, desc.digest, &fd, &size, &err), 0);
        assert_int_equal(size, desc.size);
        struct archive *ar = archive_read_new();
        archive_read_support_filter_gzip(ar);
        archive_read_support_format_tar(ar);
        assert_int_equal(archive_read_open_fd(ar, fd, 65536), ARCHIVE_OK);
        static const char *const want[] = {"etc/", "etc/.wh.a", "etc/b", "etc/c", "opt/", "opt/d/", "opt/d/z", NULL};
        struct archive_entry *e;
        size_t i = 0;
        while (archive_read_next_header(ar, &e) == ARCHIVE_OK) {
                assert_non_null(want[i]);
                assert_string_equal(archive_entry_pathname(e), want[i]);
                i++;
        }
        assert_null(want[i]);
        archive_read_free(ar);
        struct metadata_content_info info = {0};
        assert_int_equal(metadata_content_info(f->db, "default", desc.digest, &info, &err), 0);
        bool saw_x = false, saw_u = false;
        for (char **l = info.labels; l && l[0] && l[1]; l += 2) {
                saw_x |= strcmp(l[0], "x") == 0 && strcmp(l[1], "y") == 0;
                saw_u |= strcmp(l[0], "containerd.io/uncompressed") == 0 && strcmp(l[1], desc.uncompressed) == 0;
        }
        assert_true(saw_x);
        assert_true(saw_u);
        metadata_content_info_clear(&info);
        /* an unsupported media type answers like containerd */
        struct services_diff_desc d2 = {0};
        assert_int_equal(services_diff_compare(&f->ctx, "default", low.v, low.n, up.v, up.n, "application/x-foo",
                                               NULL, NULL, NULL, &d2, &err),
                         -ENOSYS);
        error_free(&err);
        _cleanup_free_ char *tmpm = xasprintf("test -z \"$(ls -A '%s/tmpmounts')\"", f->tmp);
        assert_int_equal(system(tmpm), 0);
        services_diff_desc_clear(&desc);
        snapshot_mounts_clear(&up);
        snapshot_mounts_clear(&low);
        free(t1.p);
}

/* Unpacked layers nobody refers to (no image, lease or gc.root) are garbage: GC removes the references and,
 * through snapshot_registry_gc_remove, the backend snapshots, children before parents. */
static void test_snapshots_service_gc_removes_backend(void **state)
{
        struct fix *f = *state;
        struct error *err = NULL;
        static const char *const l1[] = {"a=1", NULL};
        static const char *const l2[] = {"b=2", NULL};
        struct blob t1 = make_layer(l1, false), t2 = make_layer(l2, false);
        _cleanup_free_ char *d1 = sha256_of(t1.p, t1.len), *d2 = sha256_of(t2.p, t2.len);
        _cleanup_free_ char *b1 = store_blob(f, "default", &t1), *b2 = store_blob(f, "default", &t2);
        struct services_unpack_layer layers[] = {{b1, IMAGE_MEDIA_TYPE_LAYER_TAR, d1}, {b2, IMAGE_MEDIA_TYPE_LAYER_TAR, d2}};
        struct metadata_gc_stats st = {0};
        _cleanup_free_ char *sdir = xasprintf("%s/io.containerd.snapshotter.v1.%s/snapshots", f->tmp,
                                              strcmp(f->snapshotter, "native") == 0 ? "native" : "overlayfs");
        _cleanup_free_ char *empty = xasprintf("test -z \"$(ls -A '%s')\"", sdir);

        assert_int_equal(services_snapshots_unpack(&f->ctx, "default", f->snapshotter, layers, 2, NULL, NULL, &err), 0);
        assert_int_equal(system(empty) == 0, false);
        assert_int_equal(metadata_gc_run(f->db, f->cs, snapshot_registry_gc_remove, f->reg, &st, &err), 0);
        assert_null(err);
        assert_int_equal(st.snapshots, 2);
        assert_int_equal(st.errors, 0);
        assert_int_equal(system(empty), 0);
        free(t1.p);
        free(t2.p);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_snapshots_service_unpack_and_run, setup_overlay, teardown),
                cmocka_unit_test_setup_teardown(test_snapshots_service_errors, setup_overlay, teardown),
                cmocka_unit_test_setup_teardown(test_snapshots_service_unpack_and_run, setup_native, teardown),
                cmocka_unit_test_setup_teardown(test_snapshots_service_errors, setup_native, teardown),
                cmocka_unit_test_setup_teardown(test_snapshots_service_unpack_helper, setup_overlay, teardown),
                cmocka_unit_test_setup_teardown(test_snapshots_service_unpack_helper, setup_native, teardown),
                cmocka_unit_test_setup_teardown(test_snapshots_service_unpack_pipeline, setup_overlay, teardown),
                cmocka_unit_test_setup_teardown(test_snapshots_service_unpack_pipeline, setup_native, teardown),
                cmocka_unit_test_setup_teardown(test_snapshots_service_diff_compare, setup_native, teardown),
                cmocka_unit_test_setup_teardown(test_snapshots_service_gc_removes_backend, setup_overlay, teardown),
                cmocka_unit_test_setup_teardown(test_snapshots_service_gc_removes_backend, setup_native, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

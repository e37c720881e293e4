/* Snapshotter conformance suite (containerd snapshots/testsuite): written once against snapshot.h and run
 * against every backend. Mount checks need root and skip otherwise. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "snapshot/mount.h"
#include "snapshot/snapshot.h"
#include "util/alloc.h"
#include "util/cleanup.h"

typedef int (*open_fn)(const char *root, struct snapshotter **ret, struct error **err);

struct fix {
        open_fn open;
        bool overlay;
        char tmp[64];
        char *root;
        struct snapshotter *s;
};

static int rm_rf(const char *path)
{
        _cleanup_free_ char *cmd = xasprintf("rm -rf '%s'", path);
        return system(cmd);
}

static int setup_common(void **state, open_fn fn, bool overlay, const char *sub)
{
        struct fix *f = xcalloc(1, sizeof(*f));
        struct error *err = NULL;
        f->open = fn;
        f->overlay = overlay;
        strcpy(f->tmp, "/tmp/krill-snap-XXXXXX");
        assert_non_null(mkdtemp(f->tmp));
        f->root = xasprintf("%s/%s", f->tmp, sub);
        assert_int_equal(fn(f->root, &f->s, &err), 0);
        assert_null(err);
        assert_string_equal(f->s->name, overlay ? "overlayfs" : "native");
        *state = f;
        return 0;
}

static int setup_overlay(void **state)
{
        return setup_common(state, snapshot_overlay_open, true, "io.containerd.snapshotter.v1.overlayfs");
}

static int setup_native(void **state)
{
        return setup_common(state, snapshot_native_open, false, "io.containerd.snapshotter.v1.native");
}

static int teardown(void **state)
{
        struct fix *f = *state;
        snapshot_close(f->s);
        rm_rf(f->tmp);
        free(f->root);
        free(f);
        return 0;
}

/* The writable directory of an active snapshot, from its mounts (as an applier would use it). */
static char *active_dir(struct fix *f, const struct snapshot_mounts *m)
{
        assert_int_equal(m->n, 1);
        if (strcmp(m->v[0].type, "bind") == 0)
                return xstrdup(m->v[0].source);
        assert_true(f->overlay);
        for (char **o = m->v[0].options; *o; o++)
                if (strncmp(*o, "upperdir=", 9) == 0)
                        return xstrdup(*o + 9);
        fail_msg("no upperdir");
        return NULL;
}

static void write_file(const char *dir, const char *name, const char *content)
{
        _cleanup_free_ char *p = xasprintf("%s/%s", dir, name);
        FILE *fp = fopen(p, "we");
        assert_non_null(fp);
        fputs(content, fp);
        fclose(fp);
}

static bool has_option(const struct snapshot_mount *m, const char *opt)
{
        for (char **o = m->options; *o; o++)
                if (strcmp(*o, opt) == 0)
                        return true;
        return false;
}

static const char *option_value(const struct snapshot_mount *m, const char *prefix)
{
        for (char **o = m->options; *o; o++)
                if (strncmp(*o, prefix, strlen(prefix)) == 0)
                        return *o + strlen(prefix);
        return NULL;
}

/* Prepares key on parent, writes name=content, commits as committed. */
static void make_layer(struct fix *f, const char *key, const char *parent, const char *committed, const char *name,
                       const char *content)
{
        struct snapshot_mounts m = {0};
        struct error *err = NULL;
        assert_int_equal(snapshot_prepare(f->s, key, parent, NULL, &m, &err), 0);
        assert_null(err);
        _cleanup_free_ char *dir = active_dir(f, &m);
        if (name)
                write_file(dir, name, content);
        snapshot_mounts_clear(&m);
        assert_int_equal(snapshot_commit(f->s, committed, key, NULL, &err), 0);
        assert_null(err);
}

static int count_snapshot_dirs(struct fix *f)
{
        _cleanup_free_ char *p = xasprintf("%s/snapshots", f->root);
        DIR *d = opendir(p);
        struct dirent *de;
        int n = 0;
        assert_non_null(d);
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                        n++;
        closedir(d);
        return n;
}

/* --- tests --- */

static void test_snapshotter_prepare_commit_stat(void **state)
{
        struct fix *f = *state;
        struct error *err = NULL;
        struct snapshot_mounts m = {0};
        struct snapshot_info info = {0};
        char *labels[] = {"containerd.io/gc.root", "x", NULL};

        assert_int_equal(snapshot_prepare(f->s, "k1", NULL, labels, &m, &err), 0);
        assert_int_equal(m.n, 1);
        assert_string_equal(m.v[0].type, "bind");
        assert_true(has_option(&m.v[0], "rw"));
        assert_true(has_option(&m.v[0], "rbind"));
        _cleanup_free_ char *dir = active_dir(f, &m);
        write_file(dir, "hello", "world");
        snapshot_mounts_clear(&m);

        assert_int_equal(snapshot_stat(f->s, "k1", &info, &err), 0);
        assert_string_equal(info.name, "k1");
        assert_int_equal(info.kind, SNAPSHOT_KIND_ACTIVE);
        assert_null(info.parent);
        assert_string_equal(snapshot_labels_get(info.labels, "containerd.io/gc.root"), "x");
        assert_true(info.created_ns > 0);
        snapshot_info_clear(&info);

        assert_int_equal(snapshot_commit(f->s, "c1", "k1", NULL, &err), 0);
        assert_int_equal(snapshot_stat(f->s, "k1", &info, &err), -ENOENT);
        assert_non_null(err);
        _cleanup_free_ char *msg = error_message(err);
        assert_string_equal(msg, "snapshot \"k1\": not found");
        error_free(&err);
        assert_int_equal(snapshot_stat(f->s, "c1", &info, &err), 0);
        assert_int_equal(info.kind, SNAPSHOT_KIND_COMMITTED);
        /* labels survive commit when none are given */
        assert_string_equal(snapshot_labels_get(info.labels, "containerd.io/gc.root"), "x");
        snapshot_info_clear(&info);

        /* persistence: reopen */
        snapshot_close(f->s);
        assert_int_equal(f->open(f->root, &f->s, &err), 0);
        assert_int_equal(snapshot_stat(f->s, "c1", &info, &err), 0);
        assert_int_equal(info.kind, SNAPSHOT_KIND_COMMITTED);
        snapshot_info_clear(&info);
}

static void test_snapshotter_parent_chain_mounts(void **state)
{
        struct fix *f = *state;
        struct error *err = NULL;
        struct snapshot_mounts m = {0};
        struct snapshot_info info = {0};

        make_layer(f, "l1-a", NULL, "l1", "one", "1");
        make_layer(f, "l2-a", "l1", "l2", "two", "2");
        assert_int_equal(snapshot_prepare(f->s, "top", "l2", NULL, &m, &err), 0);
        assert_null(err);
        assert_int_equal(snapshot_stat(f->s, "top", &info, &err), 0);
        assert_string_equal(info.parent, "l2");
        snapshot_info_clear(&info);
        assert_int_equal(m.n, 1);
        if (f->overlay) {
                assert_string_equal(m.v[0].type, "overlay");
                assert_string_equal(m.v[0].source, "overlay");
                const char *lower = option_value(&m.v[0], "lowerdir=");
                const char *upper = option_value(&m.v[0], "upperdir=");
                const char *work = option_value(&m.v[0], "workdir=");
                assert_non_null(lower);
                assert_non_null(upper);
                assert_non_null(work);
                /* nearest parent first: l2's dir holds "two", l1's holds "one" */
                _cleanup_free_ char *l = xstrdup(lower);
                char *colon = strchr(l, ':');
                assert_non_null(colon);
                *colon = '\0';
                _cleanup_free_ char *p2 = xasprintf("%s/two", l), *p1 = xasprintf("%s/one", colon + 1);
                assert_int_equal(access(p2, F_OK), 0);
                assert_int_equal(access(p1, F_OK), 0);
                assert_null(strchr(colon + 1, ':'));
        } else {
                assert_string_equal(m.v[0].type, "bind");
                _cleanup_free_ char *p1 = xasprintf("%s/one", m.v[0].source), *p2 = xasprintf("%s/two", m.v[0].source);
                assert_int_equal(access(p1, F_OK), 0);
                assert_int_equal(access(p2, F_OK), 0);
        }
        snapshot_mounts_clear(&m);

        /* Mounts() gives the same answer as Prepare() did */
        assert_int_equal(snapshot_mounts(f->s, "top", &m, &err), 0);
        assert_int_equal(m.n, 1);
        assert_string_equal(m.v[0].type, f->overlay ? "overlay" : "bind");
        snapshot_mounts_clear(&m);

        /* views */
        assert_int_equal(snapshot_view(f->s, "v1", "l1", NULL, &m, &err), 0);
        assert_string_equal(m.v[0].type, "bind");
        assert_true(has_option(&m.v[0], "ro"));
        snapshot_mounts_clear(&m);
        assert_int_equal(snapshot_view(f->s, "v2", "l2", NULL, &m, &err), 0);
        if (f->overlay) {
                assert_string_equal(m.v[0].type, "overlay");
                assert_null(option_value(&m.v[0], "upperdir="));
                assert_non_null(option_value(&m.v[0], "lowerdir="));
        } else {
                assert_true(has_option(&m.v[0], "ro"));
        }
        snapshot_mounts_clear(&m);
        assert_int_equal(snapshot_stat(f->s, "v2", &info, &err), 0);
        assert_int_equal(info.kind, SNAPSHOT_KIND_VIEW);
        snapshot_info_clear(&info);
        assert_null(err);
}

static void test_snapshotter_errors(void **state)
{
        struct fix *f = *state;
        struct error *err = NULL;
        struct snapshot_mounts m = {0};

        make_layer(f, "base-a", NULL, "base", NULL, NULL);
        assert_int_equal(snapshot_prepare(f->s, "act", "base", NULL, &m, &err), 0);
        snapshot_mounts_clear(&m);
        assert_int_equal(snapshot_view(f->s, "view", "base", NULL, &m, &err), 0);
        snapshot_mounts_clear(&m);

        assert_int_equal(snapshot_prepare(f->s, "act", NULL, NULL, &m, &err), -EEXIST);
        error_free(&err);
        assert_int_equal(snapshot_prepare(f->s, "x", "act", NULL, &m, &err), -EINVAL);
        error_free(&err);
        assert_int_equal(snapshot_prepare(f->s, "x", "missing", NULL, &m, &err), -ENOENT);
        error_free(&err);
        assert_int_equal(snapshot_prepare(f->s, "", NULL, NULL, &m, &err), -EINVAL);
        error_free(&err);
        assert_int_equal(snapshot_commit(f->s, "vc", "view", NULL, &err), -EBUSY);
        error_free(&err);
        assert_int_equal(snapshot_commit(f->s, "base", "act", NULL, &err), -EEXIST);
        error_free(&err);
        assert_int_equal(snapshot_commit(f->s, "y", "missing", NULL, &err), -ENOENT);
        error_free(&err);
        assert_int_equal(snapshot_mounts(f->s, "base", &m, &err), -EBUSY);
        error_free(&err);
        assert_int_equal(snapshot_mounts(f->s, "missing", &m, &err), -ENOENT);
        error_free(&err);
        assert_int_equal(snapshot_remove(f->s, "base", &err), -EBUSY);
        error_free(&err);
        assert_int_equal(snapshot_remove(f->s, "missing", &err), -ENOENT);
        error_free(&err);
        /* a failed create leaves no directory behind */
        assert_int_equal(count_snapshot_dirs(f), 3);
}

static void test_snapshotter_remove_children_first(void **state)
{
        struct fix *f = *state;
        struct error *err = NULL;
        struct snapshot_mounts m = {0};

        make_layer(f, "a-a", NULL, "a", "f", "1");
        make_layer(f, "b-a", "a", "b", "g", "2");
        assert_int_equal(snapshot_prepare(f->s, "c", "b", NULL, &m, &err), 0);
        snapshot_mounts_clear(&m);
        assert_int_equal(count_snapshot_dirs(f), 3);
        assert_int_equal(snapshot_remove(f->s, "b", &err), -EBUSY);
        error_free(&err);
        assert_int_equal(snapshot_remove(f->s, "c", &err), 0);
        assert_int_equal(snapshot_remove(f->s, "b", &err), 0);
        assert_int_equal(snapshot_remove(f->s, "a", &err), 0);
        assert_null(err);
        assert_int_equal(count_snapshot_dirs(f), 0);
}

static void test_snapshotter_update_labels(void **state)
{
        struct fix *f = *state;
        struct error *err = NULL;
        struct snapshot_info info = {0}, out = {0};
        char *l1[] = {"a", "1", "b", "2", NULL};
        char *lnew[] = {"b", "20", "c", "3", NULL};
        char *fp_b[] = {"labels.b", NULL};
        char *fp_a[] = {"labels.a", NULL};
        char *fp_all[] = {"labels", NULL};
        char *fp_bad[] = {"parent", NULL};
        struct snapshot_mounts m = {0};

        assert_int_equal(snapshot_prepare(f->s, "u", NULL, l1, &m, &err), 0);
        snapshot_mounts_clear(&m);
        info.name = "u";
        info.labels = lnew;
        assert_int_equal(snapshot_update(f->s, &info, fp_b, &out, &err), 0);
        assert_string_equal(snapshot_labels_get(out.labels, "a"), "1");
        assert_string_equal(snapshot_labels_get(out.labels, "b"), "20");
        assert_null(snapshot_labels_get(out.labels, "c"));
        assert_true(out.updated_ns >= out.created_ns);
        snapshot_info_clear(&out);
        /* a listed label absent from info is removed */
        assert_int_equal(snapshot_update(f->s, &info, fp_a, &out, &err), 0);
        assert_null(snapshot_labels_get(out.labels, "a"));
        snapshot_info_clear(&out);
        assert_int_equal(snapshot_update(f->s, &info, fp_all, &out, &err), 0);
        assert_string_equal(snapshot_labels_get(out.labels, "c"), "3");
        snapshot_info_clear(&out);
        assert_int_equal(snapshot_update(f->s, &info, fp_bad, &out, &err), -EINVAL);
        error_free(&err);
        info.name = "nope";
        assert_int_equal(snapshot_update(f->s, &info, NULL, &out, &err), -ENOENT);
        error_free(&err);
}

static void test_snapshotter_usage(void **state)
{
        struct fix *f = *state;
        struct error *err = NULL;
        struct snapshot_mounts m = {0};
        struct snapshot_usage u = {0}, u2 = {0};

        assert_int_equal(snapshot_prepare(f->s, "big-a", NULL, NULL, &m, &err), 0);
        _cleanup_free_ char *dir = active_dir(f, &m);
        snapshot_mounts_clear(&m);
        _cleanup_free_ char *p = xasprintf("%s/blob", dir);
        int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        _cleanup_free_ char *buf = xcalloc(1, 1 << 20);
        memset(buf, 'x', 1 << 20);
        assert_int_equal(write(fd, buf, 1 << 20), 1 << 20);
        close(fd);
        assert_int_equal(snapshot_usage(f->s, "big-a", &u, &err), 0);
        assert_true(u.size >= (1 << 20));
        assert_true(u.inodes >= 2);
        assert_int_equal(snapshot_commit(f->s, "big", "big-a", NULL, &err), 0);
        assert_int_equal(snapshot_usage(f->s, "big", &u2, &err), 0);
        assert_int_equal(u2.size, u.size);
        assert_int_equal(u2.inodes, u.inodes);
        assert_null(err);
}

struct walk_acc {
        int n;
        int stop_after;
};

static int walk_count(const struct snapshot_info *i, void *data)
{
        struct walk_acc *a = data;
        assert_non_null(i->name);
        a->n++;
        return a->stop_after && a->n >= a->stop_after ? 1 : 0;
}

static bool only_committed(const struct snapshot_info *i, void *data)
{
        (void)data;
        return i->kind == SNAPSHOT_KIND_COMMITTED;
}

static void test_snapshotter_walk(void **state)
{
        struct fix *f = *state;
        struct error *err = NULL;
        struct snapshot_mounts m = {0};
        struct walk_acc a = {0};

        make_layer(f, "w1-a", NULL, "w1", NULL, NULL);
        make_layer(f, "w2-a", "w1", "w2", NULL, NULL);
        assert_int_equal(snapshot_prepare(f->s, "w3", "w2", NULL, &m, &err), 0);
        snapshot_mounts_clear(&m);
        assert_int_equal(snapshot_walk(f->s, NULL, NULL, walk_count, &a, &err), 0);
        assert_int_equal(a.n, 3);
        a = (struct walk_acc){0};
        assert_int_equal(snapshot_walk(f->s, only_committed, NULL, walk_count, &a, &err), 0);
        assert_int_equal(a.n, 2);
        a = (struct walk_acc){.stop_after = 1};
        assert_int_equal(snapshot_walk(f->s, NULL, NULL, walk_count, &a, &err), 0);
        assert_int_equal(a.n, 1);
        assert_null(err);
}

static void test_snapshotter_cleanup(void **state)
{
        struct fix *f = *state;
        struct error *err = NULL;

        make_layer(f, "keep-a", NULL, "keep", "x", "y");
        _cleanup_free_ char *stale1 = xasprintf("%s/snapshots/rm-77", f->root);
        _cleanup_free_ char *stale2 = xasprintf("%s/snapshots/0", f->root);
        _cleanup_free_ char *inflight = xasprintf("%s/snapshots/new-abc", f->root);
        assert_int_equal(mkdir(stale1, 0700), 0);
        assert_int_equal(mkdir(stale2, 0700), 0);
        assert_int_equal(mkdir(inflight, 0700), 0);
        assert_int_equal(snapshot_cleanup(f->s, &err), 0);
        assert_null(err);
        assert_int_equal(access(stale1, F_OK), -1);
        assert_int_equal(access(stale2, F_OK), -1);
        assert_int_equal(access(inflight, F_OK), 0);
        assert_int_equal(count_snapshot_dirs(f), 2);
        struct snapshot_info info = {0};
        assert_int_equal(snapshot_stat(f->s, "keep", &info, &err), 0);
        snapshot_info_clear(&info);
        /* reopening (a daemon restart) also drops interrupted creates */
        snapshot_close(f->s);
        assert_int_equal(f->open(f->root, &f->s, &err), 0);
        assert_int_equal(access(inflight, F_OK), -1);
        assert_int_equal(count_snapshot_dirs(f), 1);
        assert_int_equal(snapshot_stat(f->s, "keep", &info, &err), 0);
        snapshot_info_clear(&info);
}

static void test_snapshotter_mount_for_real(void **state)
{
        struct fix *f = *state;
        struct error *err = NULL;
        struct snapshot_mounts m = {0};

        if (geteuid() != 0) {
                print_message("skipped: mounting needs root\n");
                skip();
        }
        make_layer(f, "m1-a", NULL, "m1", "gone", "will be whited out");
        /* second layer: a whiteout for "gone" (overlay format or deletion) and a new file */
        assert_int_equal(snapshot_prepare(f->s, "m2-a", "m1", NULL, &m, &err), 0);
        _cleanup_free_ char *d2 = active_dir(f, &m);
        snapshot_mounts_clear(&m);
        _cleanup_free_ char *wh = xasprintf("%s/gone", d2);
        if (f->overlay)
                assert_int_equal(mknod(wh, S_IFCHR | 0, makedev(0, 0)), 0);
        else
                assert_int_equal(unlink(wh), 0);
        write_file(d2, "kept", "second layer");
        assert_int_equal(snapshot_commit(f->s, "m2", "m2-a", NULL, &err), 0);

        assert_int_equal(snapshot_prepare(f->s, "ctr", "m2", NULL, &m, &err), 0);
        _cleanup_free_ char *target = xasprintf("%s/mnt", f->tmp);
        assert_int_equal(mkdir(target, 0755), 0);
        int r = snapshot_mount_all(m.v, m.n, target, &err);
        if (r < 0 && f->overlay && !snapshot_overlay_supported(f->tmp, NULL)) {
                print_message("skipped: overlayfs not usable here: %s\n", error_str(err));
                error_free(&err);
                snapshot_mounts_clear(&m);
                skip();
        }
        assert_int_equal(r, 0);
        _cleanup_free_ char *pk = xasprintf("%s/kept", target), *pg = xasprintf("%s/gone", target),
                            *pn = xasprintf("%s/new", target);
        assert_int_equal(access(pk, F_OK), 0);
        assert_int_equal(access(pg, F_OK), -1);
        write_file(target, "new", "container write");
        assert_int_equal(snapshot_unmount(target, 0, &err), 0);
        assert_int_equal(access(pn, F_OK), -1);
        /* the write landed in the active snapshot */
        _cleanup_free_ char *dir = active_dir(f, &m);
        _cleanup_free_ char *inside = xasprintf("%s/new", dir);
        assert_int_equal(access(inside, F_OK), 0);
        snapshot_mounts_clear(&m);

        /* a read-only view */
        assert_int_equal(snapshot_view(f->s, "ro", "m2", NULL, &m, &err), 0);
        assert_int_equal(snapshot_mount_all(m.v, m.n, target, &err), 0);
        assert_int_equal(access(pk, F_OK), 0);
        _cleanup_free_ char *pw = xasprintf("%s/x", target);
        assert_int_equal(open(pw, O_WRONLY | O_CREAT | O_CLOEXEC, 0644), -1);
        assert_int_equal(errno, EROFS);
        assert_int_equal(snapshot_unmount(target, 0, &err), 0);
        snapshot_mounts_clear(&m);
        assert_null(err);
}

/* A chain deep enough that lowerdir= exceeds a page: both the fsconfig path and the relative-path
 * fallback must mount it. */
static void test_snapshotter_deep_chain_mount(void **state)
{
        struct fix *f = *state;
        struct error *err = NULL;
        struct snapshot_mounts m = {0};
        char parent[32] = "", key[32], name[32], file[32];
        const int layers = 90;

        if (!f->overlay) {
                print_message("skipped: overlay only\n");
                skip();
        }
        if (geteuid() != 0) {
                print_message("skipped: mounting needs root\n");
                skip();
        }
        for (int i = 0; i < layers; i++) {
                snprintf(key, sizeof(key), "deep-%d-a", i);
                snprintf(name, sizeof(name), "deep-%d", i);
                snprintf(file, sizeof(file), "f%d", i);
                make_layer(f, key, parent[0] ? parent : NULL, name, file, "x");
                strcpy(parent, name);
        }
        assert_int_equal(snapshot_prepare(f->s, "deep-top", parent, NULL, &m, &err), 0);
        assert_true(strlen(option_value(&m.v[0], "lowerdir=")) > 4096);
        _cleanup_free_ char *target = xasprintf("%s/mnt", f->tmp);
        assert_int_equal(mkdir(target, 0755), 0);
        for (int pass = 0; pass < 2; pass++) {
                snapshot_mount_force_compact_fallback(pass);
                int r = snapshot_mount_all(m.v, m.n, target, &err);
                if (r < 0) {
                        print_message("deep mount pass %d: %s\n", pass, error_str(err));
                        if (!snapshot_overlay_supported(f->tmp, NULL)) {
                                error_free(&err);
                                snapshot_mounts_clear(&m);
                                skip();
                        }
                }
                assert_int_equal(r, 0);
                for (int i = 0; i < layers; i += 17) {
                        _cleanup_free_ char *p = xasprintf("%s/f%d", target, i);
                        assert_int_equal(access(p, F_OK), 0);
                }
                assert_int_equal(snapshot_unmount(target, 0, &err), 0);
        }
        snapshot_mount_force_compact_fallback(0);
        snapshot_mounts_clear(&m);
        assert_null(err);
}

#define SUITE(name, setup)                                                                                             \
        cmocka_unit_test_setup_teardown(test_snapshotter_prepare_commit_stat, setup, teardown),                        \
                cmocka_unit_test_setup_teardown(test_snapshotter_parent_chain_mounts, setup, teardown),                \
                cmocka_unit_test_setup_teardown(test_snapshotter_errors, setup, teardown),                             \
                cmocka_unit_test_setup_teardown(test_snapshotter_remove_children_first, setup, teardown),              \
                cmocka_unit_test_setup_teardown(test_snapshotter_update_labels, setup, teardown),                      \
                cmocka_unit_test_setup_teardown(test_snapshotter_usage, setup, teardown),                              \
                cmocka_unit_test_setup_teardown(test_snapshotter_walk, setup, teardown),                               \
                cmocka_unit_test_setup_teardown(test_snapshotter_cleanup, setup, teardown),                            \
                cmocka_unit_test_setup_teardown(test_snapshotter_mount_for_real, setup, teardown),                     \
                cmocka_unit_test_setup_teardown(test_snapshotter_deep_chain_mount, setup, teardown)

int main(void)
{
        const struct CMUnitTest overlay[] = {SUITE(overlay, setup_overlay)};
        const struct CMUnitTest native[] = {SUITE(native, setup_native)};
        int r = 0;
        r += cmocka_run_group_tests_name("overlayfs", overlay, NULL, NULL);
        r += cmocka_run_group_tests_name("native", native, NULL, NULL);
        return r;
}

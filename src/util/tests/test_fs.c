#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "util/cleanup.h"
#include "util/fs.h"

struct fixture {
        char dir[64];
        int dfd;
};

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        snprintf(f->dir, sizeof(f->dir), "/tmp/krill-test-fs-XXXXXX");
        if (!mkdtemp(f->dir))
                return -1;
        f->dfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        *state = f;
        return f->dfd < 0 ? -1 : 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        int r = fs_rm_rf_at(AT_FDCWD, f->dir, NULL);
        close(f->dfd);
        free(f);
        return r;
}

typedef int (*open_fn)(int, const char *, int, mode_t, unsigned, struct error **);

static void make_tree(int dfd)
{
        /* root/ a/b/file ("hello"), a/up -> ../.., a/abs -> /etc, a/rel -> b/file, a/loop -> loop, file -> a/b/file */
        assert_int_equal(fs_mkdir_p(dfd, "root/a/b", 0755, NULL), 0);
        assert_int_equal(fs_write_file_atomic(dfd, "root/a/b/file", "hello", 5, 0644, NULL), 0);
        assert_int_equal(symlinkat("../..", dfd, "root/a/up"), 0);
        assert_int_equal(symlinkat("/a/b/file", dfd, "root/a/abs"), 0);
        assert_int_equal(symlinkat("b/file", dfd, "root/a/rel"), 0);
        assert_int_equal(symlinkat("loop", dfd, "root/a/loop"), 0);
        assert_int_equal(fs_write_file_atomic(dfd, "outside", "OUT", 3, 0644, NULL), 0);
}

static void expect_content(int fd, const char *want)
{
        char buf[32] = {0};
        assert_true(fd >= 0);
        assert_int_equal(read(fd, buf, sizeof(buf) - 1), (ssize_t)strlen(want));
        assert_string_equal(buf, want);
        close(fd);
}

static void check_resolve(int dfd, open_fn fn)
{
        _cleanup_close_ int root = openat(dfd, "root", O_PATH | O_DIRECTORY | O_CLOEXEC);
        _cleanup_error_ struct error *e = NULL;
        assert_true(root >= 0);
        expect_content(fn(root, "a/b/file", O_RDONLY, 0, FS_RESOLVE_BENEATH, NULL), "hello");
        expect_content(fn(root, "a/rel", O_RDONLY, 0, FS_RESOLVE_BENEATH, NULL), "hello");
        expect_content(fn(root, "a/./b/../b/file", O_RDONLY, 0, FS_RESOLVE_BENEATH, NULL), "hello");
        /* BENEATH refuses escapes: "..", absolute paths and absolute symlinks. */
        assert_int_equal(fn(root, "../outside", O_RDONLY, 0, FS_RESOLVE_BENEATH, &e), -EXDEV);
        error_free(&e);
        assert_int_equal(fn(root, "a/up/outside", O_RDONLY, 0, FS_RESOLVE_BENEATH, NULL), -EXDEV);
        assert_int_equal(fn(root, "/a/b/file", O_RDONLY, 0, FS_RESOLVE_BENEATH, NULL), -EXDEV);
        assert_int_equal(fn(root, "a/abs", O_RDONLY, 0, FS_RESOLVE_BENEATH, NULL), -EXDEV);
        /* IN_ROOT clamps them to the root instead. */
        expect_content(fn(root, "a/abs", O_RDONLY, 0, FS_RESOLVE_IN_ROOT, NULL), "hello");
        expect_content(fn(root, "/a/b/file", O_RDONLY, 0, FS_RESOLVE_IN_ROOT, NULL), "hello");
        expect_content(fn(root, "../../a/b/file", O_RDONLY, 0, FS_RESOLVE_IN_ROOT, NULL), "hello");
        assert_int_equal(fn(root, "a/up/outside", O_RDONLY, 0, FS_RESOLVE_IN_ROOT, NULL), -ENOENT);
        assert_int_equal(fn(root, "a/loop", O_RDONLY, 0, FS_RESOLVE_IN_ROOT, NULL), -ELOOP);
        assert_int_equal(fn(root, "a/rel", O_RDONLY, 0, FS_RESOLVE_IN_ROOT | FS_RESOLVE_NO_SYMLINKS, NULL), -ELOOP);
        assert_int_equal(fn(root, "a/b/file/x", O_RDONLY, 0, FS_RESOLVE_IN_ROOT, NULL), -ENOTDIR);
        /* O_CREAT through a symlinked directory stays inside. */
        int fd = fn(root, "a/up/new", O_WRONLY | O_CREAT | O_EXCL, 0600, FS_RESOLVE_IN_ROOT, NULL);
        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(faccessat(root, "new", F_OK, 0), 0);
        assert_int_equal(unlinkat(root, "new", 0), 0);
        /* O_DIRECTORY on a regular file fails as the kernel does; O_NOFOLLOW on a final symlink is ELOOP. */
        assert_int_equal(fn(root, "a/b/file", O_RDONLY | O_DIRECTORY, 0, FS_RESOLVE_BENEATH, NULL), -ENOTDIR);
        assert_int_equal(fn(root, "a/rel", O_RDONLY | O_NOFOLLOW, 0, FS_RESOLVE_BENEATH, NULL), -ELOOP);
        fd = fn(root, "a/rel", O_PATH | O_NOFOLLOW, 0, FS_RESOLVE_BENEATH, NULL);
        assert_true(fd >= 0);
        struct stat lst;
        assert_int_equal(fstat(fd, &lst), 0);
        assert_true(S_ISLNK(lst.st_mode));
        close(fd);
        /* A directory target. */
        fd = fn(root, "a/b/", O_RDONLY | O_DIRECTORY, 0, FS_RESOLVE_BENEATH, NULL);
        assert_true(fd >= 0);
        close(fd);
}

static void test_fs_open_resolve_kernel(void **state)
{
        struct fixture *f = *state;
        make_tree(f->dfd);
        check_resolve(f->dfd, fs_open_resolve);
}

static void test_fs_open_resolve_fallback(void **state)
{
        struct fixture *f = *state;
        make_tree(f->dfd);
        check_resolve(f->dfd, fs_open_resolve_fallback);
}

static void test_fs_mkdir_p(void **state)
{
        struct fixture *f = *state;
        int fd = -1;
        assert_int_equal(fs_mkdir_p_open(f->dfd, "x/y/z", 0700, &fd, NULL), 0);
        assert_true(fd >= 0);
        struct stat st;
        assert_int_equal(fstat(fd, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        close(fd);
        assert_int_equal(fs_mkdir_p(f->dfd, "x/y/z", 0700, NULL), 0);
        assert_int_equal(symlinkat("/tmp", f->dfd, "x/link"), 0);
        assert_int_equal(fs_mkdir_p(f->dfd, "x/link/evil", 0700, NULL), -ENOTDIR);
        assert_int_equal(fs_mkdir_p(f->dfd, "../escape", 0700, NULL), -EINVAL);
        char *abs = NULL;
        assert_true(asprintf(&abs, "%s/abs/dir", f->dir) > 0);
        assert_int_equal(fs_mkdir_p(-1, abs, 0755, NULL), 0);
        free(abs);
        assert_int_equal(faccessat(f->dfd, "abs/dir", F_OK, 0), 0);
        assert_int_equal(fs_write_file_atomic(f->dfd, "file", "", 0, 0644, NULL), 0);
        assert_int_equal(fs_mkdir_p(f->dfd, "file/sub", 0700, NULL), -ENOTDIR);
}

static void test_fs_write_atomic_and_read_bounded(void **state)
{
        struct fixture *f = *state;
        char *data = NULL;
        size_t len = 0;
        _cleanup_error_ struct error *e = NULL;
        assert_int_equal(fs_write_file_atomic(f->dfd, "f", "first", 5, 0600, NULL), 0);
        assert_int_equal(fs_write_file_atomic(f->dfd, "f", "second!", 7, 0640, NULL), 0);
        struct stat st;
        assert_int_equal(fstatat(f->dfd, "f", &st, 0), 0);
        assert_int_equal(st.st_mode & 07777, 0640);
        assert_int_equal(fs_read_file(f->dfd, "f", 7, &data, &len, NULL), 0);
        assert_int_equal(len, 7);
        assert_string_equal(data, "second!");
        free(data);
        data = NULL;
        assert_int_equal(fs_read_file(f->dfd, "f", 6, &data, &len, &e), -EFBIG);
        assert_null(data);
        error_free(&e);
        assert_int_equal(fs_read_file(f->dfd, "missing", 6, &data, &len, &e), -ENOENT);
        assert_string_equal(error_str(e), "open missing: not found");
        /* Unsized files (a pipe) are bounded while reading. */
        int p[2];
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        assert_int_equal(write(p[1], "0123456789", 10), 10);
        close(p[1]);
        assert_int_equal(fs_read_fd(p[0], 9, &data, &len, NULL), -EFBIG);
        close(p[0]);
        /* No temp files are left behind. */
        assert_int_equal(fs_rm_rf_at(f->dfd, "f", NULL), 0);
        _cleanup_closedir_ DIR *d = fdopendir(openat(f->dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        struct dirent *de;
        while ((de = readdir(d)))
                assert_true(strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0);
        assert_int_equal(fs_write_file_atomic(f->dfd, "nodir/f", "x", 1, 0600, NULL), -ENOENT);
}

static void test_fs_rm_rf_does_not_follow_symlinks(void **state)
{
        struct fixture *f = *state;
        assert_int_equal(fs_mkdir_p(f->dfd, "keep", 0755, NULL), 0);
        assert_int_equal(fs_write_file_atomic(f->dfd, "keep/precious", "x", 1, 0644, NULL), 0);
        assert_int_equal(fs_mkdir_p(f->dfd, "tree/a/b/c", 0755, NULL), 0);
        assert_int_equal(fs_write_file_atomic(f->dfd, "tree/a/b/c/f", "x", 1, 0644, NULL), 0);
        assert_int_equal(symlinkat("../../keep", f->dfd, "tree/a/link"), 0);
        assert_int_equal(mkfifoat(f->dfd, "tree/fifo", 0600), 0);
        /* Unreadable directories are still removed by their owner. */
        assert_int_equal(fchmodat(f->dfd, "tree/a/b/c", 0700, 0), 0);
        assert_int_equal(fs_rm_rf_at(f->dfd, "tree", NULL), 0);
        assert_int_equal(faccessat(f->dfd, "tree", F_OK, AT_SYMLINK_NOFOLLOW), -1);
        assert_int_equal(faccessat(f->dfd, "keep/precious", F_OK, 0), 0);
        assert_int_equal(fs_rm_rf_at(f->dfd, "tree", NULL), 0);
        /* Children only. */
        _cleanup_close_ int kfd = openat(f->dfd, "keep", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_int_equal(fs_rm_rf_children(kfd, NULL), 0);
        assert_int_equal(faccessat(f->dfd, "keep", F_OK, 0), 0);
        assert_int_equal(faccessat(f->dfd, "keep/precious", F_OK, 0), -1);
}

/* In a private mount namespace (child process): a tmpfs mounted inside the tree must be neither emptied
 * nor crossed; rm_rf reports EBUSY for it and removes everything else. Returns the child's verdict. */
static int rm_rf_mount_child(const char *dir)
{
        char *mnt = NULL, *tree = NULL;
        if (unshare(CLONE_NEWNS) < 0)
                return 77;
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return 77;
        if (asprintf(&tree, "%s/tree", dir) < 0 || asprintf(&mnt, "%s/tree/sub/mnt", dir) < 0)
                return 1;
        if (fs_mkdir_p(AT_FDCWD, mnt, 0755, NULL) < 0)
                return 2;
        if (mount("tmpfs", mnt, "tmpfs", 0, "size=1m") < 0)
                return 77;
        int mfd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (mfd < 0 || fs_write_file_atomic(mfd, "keep", "x", 1, 0644, NULL) < 0)
                return 4;
        if (fs_is_mountpoint(AT_FDCWD, mnt) != 1)
                return 6;
        struct error *e = NULL;
        int r = fs_rm_rf_at(AT_FDCWD, tree, &e);
        error_free(&e);
        if (r != -EBUSY)
                return 7;
        if (faccessat(mfd, "keep", F_OK, 0) < 0)
                return 8; /* the mounted filesystem was entered and emptied */
        close(mfd);
        if (umount2(mnt, MNT_DETACH) < 0)
                return 9;
        if (fs_rm_rf_at(AT_FDCWD, tree, NULL) < 0)
                return 10;
        free(mnt);
        free(tree);
        return 0;
}

static void test_fs_rm_rf_stops_at_mounts(void **state)
{
        struct fixture *f = *state;
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(rm_rf_mount_child(f->dir));
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        if (WEXITSTATUS(status) == 77) {
                print_message("skipped: needs CAP_SYS_ADMIN for a private mount namespace and tmpfs\n");
                skip();
        }
        assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_fs_is_mountpoint(void **state)
{
        struct fixture *f = *state;
        assert_int_equal(fs_is_mountpoint(AT_FDCWD, "/proc"), 1);
        assert_int_equal(fs_is_mountpoint(AT_FDCWD, "/"), 1);
        assert_int_equal(fs_mkdir_p(f->dfd, "d", 0755, NULL), 0);
        assert_int_equal(fs_is_mountpoint(f->dfd, "d"), 0);
        assert_int_equal(fs_is_mountpoint(f->dfd, "nope"), -ENOENT);
}

static void test_fs_path_helpers(void **state)
{
        (void)state;
        /* Vectors from Go's path.Clean tests. */
        const char *clean[][2] = {
                {"", "."},           {"abc", "abc"},       {"abc/def", "abc/def"}, {".", "."},
                {"..", ".."},        {"../..", "../.."},   {"../../abc", "../../abc"},
                {"/abc", "/abc"},    {"/", "/"},           {"abc/", "abc"},       {"abc/def/", "abc/def"},
                {"a/b/c/", "a/b/c"}, {"./", "."},          {"../", ".."},         {"/abc/", "/abc"},
                {"abc//def//ghi", "abc/def/ghi"},          {"//abc", "/abc"},     {"///abc", "/abc"},
                {"abc/./def", "abc/def"},                  {"/./abc/def", "/abc/def"},
                {"abc/.", "abc"},    {"abc/def/ghi/../jkl", "abc/def/jkl"},       {"abc/def/../ghi/../jkl", "abc/jkl"},
                {"abc/def/..", "abc"}, {"abc/def/../..", "."}, {"/abc/def/../..", "/"},
                {"abc/def/../../..", ".."}, {"/abc/def/../../..", "/"}, {"abc/def/../../../ghi/jkl/../../../mno", "../../mno"},
                {"abc/./../def", "def"}, {"abc//./../def", "def"}, {"abc/../../././../def", "../../def"},
        };
        for (size_t i = 0; i < sizeof(clean) / sizeof(clean[0]); i++) {
                char *c = fs_path_clean(clean[i][0]);
                assert_string_equal(c, clean[i][1]);
                free(c);
        }
        char *s;
        s = fs_path_join("/a/", "/b");
        assert_string_equal(s, "/a/b");
        free(s);
        s = fs_path_join("/", "b");
        assert_string_equal(s, "/b");
        free(s);
        s = fs_path_join("", "b");
        assert_string_equal(s, "b");
        free(s);
        s = fs_path_base("/a/b/");
        assert_string_equal(s, "b");
        free(s);
        s = fs_path_dir("/a/b");
        assert_string_equal(s, "/a");
        free(s);
        s = fs_path_dir("b");
        assert_string_equal(s, ".");
        free(s);
        assert_true(fs_path_is_beneath("a/../b"));
        assert_false(fs_path_is_beneath("a/../../b"));
        assert_false(fs_path_is_beneath("/a"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_fs_open_resolve_kernel, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fs_open_resolve_fallback, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fs_mkdir_p, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fs_write_atomic_and_read_bounded, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fs_rm_rf_does_not_follow_symlinks, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fs_is_mountpoint, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fs_rm_rf_stops_at_mounts, setup, teardown),
                cmocka_unit_test(test_fs_path_helpers),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

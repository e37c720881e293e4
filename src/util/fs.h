/* Filesystem helpers that stay inside a directory: openat2() with RESOLVE_BENEATH / RESOLVE_IN_ROOT
 * (with a userspace fallback when the kernel lacks openat2), mkdir -p, atomic writes, bounded reads,
 * rm -rf that neither follows symlinks nor crosses mounts, and path string helpers.
 *
 * Every fd returned is O_CLOEXEC and owned by the caller. Paths are relative to a dirfd (AT_FDCWD
 * allowed) unless stated otherwise. All functions are thread-safe and block (call them from workers
 * when the filesystem may be slow). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/error.h"

/* Resolution modes, same values as linux/openat2.h RESOLVE_*. */
#define FS_RESOLVE_NO_XDEV 0x01
#define FS_RESOLVE_NO_MAGICLINKS 0x02
#define FS_RESOLVE_NO_SYMLINKS 0x04
#define FS_RESOLVE_BENEATH 0x08  /* fail with EXDEV if resolution would leave dirfd (.., absolute, symlinks) */
#define FS_RESOLVE_IN_ROOT 0x10  /* treat dirfd as "/": absolute paths and ".." are clamped to it (chroot-like) */

/* Opens path relative to dirfd with open(2) flags/mode under the given FS_RESOLVE_* rules.
 * Uses openat2(2); when the kernel returns ENOSYS it walks the path one component at a time with
 * O_NOFOLLOW, resolving symlinks itself under the same rules (crun's safe_openat approach).
 * Returns a new fd (>= 0) or -errno (EXDEV escape attempt, ELOOP too many links, ENOENT, ...) with err set. */
int fs_open_resolve(int dirfd, const char *path, int flags, mode_t mode, unsigned resolve, struct error **err);
/* The userspace fallback, always used regardless of kernel support. Exposed for tests. */
int fs_open_resolve_fallback(int dirfd, const char *path, int flags, mode_t mode, unsigned resolve,
                             struct error **err);
static inline int fs_open_beneath(int dirfd, const char *path, int flags, mode_t mode, struct error **err)
{
        return fs_open_resolve(dirfd, path, flags, mode, FS_RESOLVE_BENEATH, err);
}
static inline int fs_open_in_root(int rootfd, const char *path, int flags, mode_t mode, struct error **err)
{
        return fs_open_resolve(rootfd, path, flags, mode, FS_RESOLVE_IN_ROOT, err);
}

/* mkdir -p. Each missing component is created with mode (subject to umask); existing directories are
 * fine. A relative path never follows symlinks (a symlinked component fails with ENOTDIR); an absolute
 * path (admin-configured, like the root dir) follows them as mkdir -p does. Returns 0 or -errno. */
int fs_mkdir_p(int dirfd, const char *path, mode_t mode, struct error **err);
/* Like fs_mkdir_p, then returns a new O_DIRECTORY fd of the final directory in *ret_fd. */
int fs_mkdir_p_open(int dirfd, const char *path, mode_t mode, int *ret_fd, struct error **err);

/* Atomically replaces dirfd/name with data: writes a temp file in the same directory, fsyncs it,
 * renames it over name and fsyncs the directory, so that a crash leaves the old or the new content.
 * name may contain '/' (the directory must exist). mode is applied exactly (fchmod, no umask). */
int fs_write_file_atomic(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
                         struct error **err);

/* Reads all of dirfd/name (following symlinks; use fs_open_resolve + fs_read_fd for untrusted trees).
 * Fails with -EFBIG if it holds more than max bytes. On success *ret_data is a new buffer with a NUL
 * appended (not counted in *ret_len; ret_len may be NULL). */
int fs_read_file(int dirfd, const char *name, size_t max, char **ret_data, size_t *ret_len, struct error **err);
/* Same for an open fd (borrowed; read from the current offset to EOF). */
int fs_read_fd(int fd, size_t max, char **ret_data, size_t *ret_len, struct error **err);
/* Writes all of len bytes, retrying short writes and EINTR. Returns 0 or -errno (no err: callers add context). */
int fs_write_all(int fd, const void *data, size_t len);

/* rm -rf dirfd/name: removes a file, a symlink (not its target) or a directory tree. Never follows
 * symlinks and never descends into another mount (the mount point then fails with EBUSY, which is
 * returned). A missing name is success. Returns 0 or the first -errno. */
int fs_rm_rf_at(int dirfd, const char *name, struct error **err);
/* Removes everything inside the directory fd (borrowed), same rules; the directory itself stays. */
int fs_rm_rf_children(int fd, struct error **err);

/* 1 if dirfd/name (not following a final symlink) is the root of a mount, 0 if not, -errno on failure. */
int fs_is_mountpoint(int dirfd, const char *name);

/* Returns a new string: a and b joined by exactly one '/' (b's leading slashes dropped; "" parts skipped). */
char *fs_path_join(const char *a, const char *b);
/* Returns a new string cleaned like Go's path.Clean: "" -> ".", duplicate slashes and "." removed,
 * ".." resolved lexically (leading ".." kept for relative paths, dropped at "/"). */
char *fs_path_clean(const char *p);
/* true if p, after cleaning, is relative and does not start with "..": safe to use below a dir. */
bool fs_path_is_beneath(const char *p);
/* Returns a new string: the last element (Go's path.Base) / everything before it (path.Dir). */
char *fs_path_base(const char *p);
char *fs_path_dir(const char *p);

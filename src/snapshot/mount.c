/* Mount helper; see mount.h. */
#include "snapshot/mount.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/cleanup.h"

static int force_compact_fallback;

void snapshot_mount_force_compact_fallback(int on)
{
        force_compact_fallback = on;
}

struct flag_word {
        const char *name;
        bool clear;
        unsigned long flag;
};

/* containerd mount/mount_linux.go parseMountOptions. */
static const struct flag_word flag_words[] = {
        {"async", true, MS_SYNCHRONOUS},  {"atime", true, MS_NOATIME},       {"bind", false, MS_BIND},
        {"defaults", false, 0},           {"dev", true, MS_NODEV},           {"diratime", true, MS_NODIRATIME},
        {"dirsync", false, MS_DIRSYNC},   {"exec", true, MS_NOEXEC},         {"mand", false, MS_MANDLOCK},
        {"noatime", false, MS_NOATIME},   {"nodev", false, MS_NODEV},        {"nodiratime", false, MS_NODIRATIME},
        {"noexec", false, MS_NOEXEC},     {"nomand", true, MS_MANDLOCK},     {"norelatime", true, MS_RELATIME},
        {"nostrictatime", true, MS_STRICTATIME}, {"nosuid", false, MS_NOSUID}, {"rbind", false, MS_BIND | MS_REC},
        {"relatime", false, MS_RELATIME}, {"remount", false, MS_REMOUNT},    {"ro", false, MS_RDONLY},
        {"rw", true, MS_RDONLY},          {"strictatime", false, MS_STRICTATIME}, {"suid", true, MS_NOSUID},
        {"sync", false, MS_SYNCHRONOUS},
};

static const struct flag_word prop_words[] = {
        {"private", false, MS_PRIVATE},       {"rprivate", false, MS_PRIVATE | MS_REC},
        {"shared", false, MS_SHARED},         {"rshared", false, MS_SHARED | MS_REC},
        {"slave", false, MS_SLAVE},           {"rslave", false, MS_SLAVE | MS_REC},
        {"unbindable", false, MS_UNBINDABLE}, {"runbindable", false, MS_UNBINDABLE | MS_REC},
};

static void parse_options(char *const *opts, unsigned long *flags, unsigned long *prop, char **data)
{
        size_t len = 0, cap = 64;
        char *d = xmalloc(cap);
        d[0] = '\0';
        *flags = 0;
        *prop = 0;
        for (; opts && *opts; opts++) {
                bool matched = false;
                for (size_t i = 0; i < ELEMENTSOF(flag_words); i++) {
                        if (strcmp(*opts, flag_words[i].name) == 0) {
                                if (flag_words[i].clear)
                                        *flags &= ~flag_words[i].flag;
                                else
                                        *flags |= flag_words[i].flag;
                                matched = true;
                                break;
                        }
                }
                for (size_t i = 0; !matched && i < ELEMENTSOF(prop_words); i++) {
                        if (strcmp(*opts, prop_words[i].name) == 0) {
                                *prop |= prop_words[i].flag;
                                matched = true;
                        }
                }
                if (matched)
                        continue;
                size_t l = strlen(*opts);
                if (len + l + 2 > cap) {
                        cap = (len + l + 2) * 2;
                        d = xrealloc(d, cap);
                }
                if (len)
                        d[len++] = ',';
                memcpy(d + len, *opts, l + 1);
                len += l;
        }
        *data = d;
}

/* --- long overlay options --- */

/* New mount API: each option through fsconfig, lowerdir split into "lowerdir+" entries (Linux 6.8). */
static int mount_overlay_fsconfig(char *const *opts, unsigned long flags, const char *target)
{
        _cleanup_close_ int fs = fsopen("overlay", FSOPEN_CLOEXEC);
        if (fs < 0)
                return -errno;
        if (fsconfig(fs, FSCONFIG_SET_STRING, "source", "overlay", 0) < 0)
                return -errno;
        for (; opts && *opts; opts++) {
                const char *o = *opts;
                bool is_flag = false;
                for (size_t i = 0; i < ELEMENTSOF(flag_words); i++)
                        if (strcmp(o, flag_words[i].name) == 0)
                                is_flag = true;
                if (is_flag)
                        continue;
                const char *eq = strchr(o, '=');
                if (!eq) {
                        if (fsconfig(fs, FSCONFIG_SET_FLAG, o, NULL, 0) < 0)
                                return -errno;
                        continue;
                }
                _cleanup_free_ char *key = xstrndup(o, (size_t)(eq - o));
                if (strcmp(key, "lowerdir") == 0) {
                        _cleanup_free_ char *list = xstrdup(eq + 1);
                        char *save = NULL;
                        for (char *p = strtok_r(list, ":", &save); p; p = strtok_r(NULL, ":", &save))
                                if (fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir+", p, 0) < 0)
                                        return -errno;
                        continue;
                }
                if (fsconfig(fs, FSCONFIG_SET_STRING, key, eq + 1, 0) < 0)
                        return -errno;
        }
        if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
                return -errno;
        unsigned attr = 0;
        if (flags & MS_RDONLY)
                attr |= MOUNT_ATTR_RDONLY;
        if (flags & MS_NOSUID)
                attr |= MOUNT_ATTR_NOSUID;
        if (flags & MS_NODEV)
                attr |= MOUNT_ATTR_NODEV;
        if (flags & MS_NOEXEC)
                attr |= MOUNT_ATTR_NOEXEC;
        _cleanup_close_ int mnt = fsmount(fs, FSMOUNT_CLOEXEC, attr);
        if (mnt < 0)
                return -errno;
        if (move_mount(mnt, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
                return -errno;
        return 0;
}

/* Longest common directory prefix (ending without '/') of the lowerdir/upperdir/workdir paths. */
static char *common_dir(char **paths, size_t n)
{
        if (n == 0)
                return NULL;
        size_t len = strlen(paths[0]);
        for (size_t i = 1; i < n; i++) {
                size_t k = 0;
                while (k < len && paths[i][k] && paths[i][k] == paths[0][k])
                        k++;
                len = k;
        }
        while (len > 0 && paths[0][len] != '/' && paths[0][len] != '\0')
                len--;
        /* every path must continue with '/' after the prefix */
        for (size_t i = 0; i < n; i++)
                if (paths[i][len] != '/')
                        return NULL;
        if (len == 0)
                return NULL;
        return xstrndup(paths[0], len);
}

/* Rewrites the data with paths relative to a common parent and mounts from a vfork child chdir'ed there
 * (a child does not share the daemon's working directory). */
static int mount_overlay_relative(char *const *opts, unsigned long flags, const char *target)
{
        _cleanup_strv_free_ char **paths = xcalloc(1, sizeof(char *));
        size_t np = 0;
        for (char *const *o = opts; o && *o; o++) {
                const char *v = NULL;
                if (strncmp(*o, "lowerdir=", 9) == 0) {
                        _cleanup_free_ char *list = xstrdup(*o + 9);
                        char *save = NULL;
                        for (char *p = strtok_r(list, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
                                paths = xreallocarray(paths, np + 2, sizeof(char *));
                                paths[np++] = xstrdup(p);
                                paths[np] = NULL;
                        }
                        continue;
                }
                if (strncmp(*o, "upperdir=", 9) == 0 || strncmp(*o, "workdir=", 8) == 0)
                        v = strchr(*o, '=') + 1;
                if (v) {
                        paths = xreallocarray(paths, np + 2, sizeof(char *));
                        paths[np++] = xstrdup(v);
                        paths[np] = NULL;
                }
        }
        _cleanup_free_ char *dir = common_dir(paths, np);
        if (!dir)
                return -E2BIG;
        size_t dl = strlen(dir) + 1;
        /* Build the data with every path made relative. */
        size_t cap = 64, len = 0;
        _cleanup_free_ char *data = xmalloc(cap);
        data[0] = '\0';
#define APPEND(s, l)                                                                                                   \
        do {                                                                                                           \
                if (len + (l) + 1 > cap) {                                                                             \
                        cap = (len + (l) + 1) * 2;                                                                     \
                        data = xrealloc(data, cap);                                                                    \
                }                                                                                                      \
                memcpy(data + len, (s), (l));                                                                          \
                len += (l);                                                                                            \
                data[len] = '\0';                                                                                      \
        } while (0)
        for (char *const *o = opts; o && *o; o++) {
                bool is_flag = false;
                for (size_t i = 0; i < ELEMENTSOF(flag_words); i++)
                        if (strcmp(*o, flag_words[i].name) == 0)
                                is_flag = true;
                if (is_flag)
                        continue;
                if (len)
                        APPEND(",", 1);
                const char *eq = strchr(*o, '=');
                if (eq && (strncmp(*o, "lowerdir=", 9) == 0 || strncmp(*o, "upperdir=", 9) == 0 ||
                           strncmp(*o, "workdir=", 8) == 0)) {
                        APPEND(*o, (size_t)(eq - *o) + 1);
                        _cleanup_free_ char *list = xstrdup(eq + 1);
                        char *save = NULL;
                        bool first = true;
                        for (char *p = strtok_r(list, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
                                if (!first)
                                        APPEND(":", 1);
                                first = false;
                                APPEND(p + dl, strlen(p + dl));
                        }
                } else {
                        APPEND(*o, strlen(*o));
                }
        }
#undef APPEND
        if (len >= (size_t)sysconf(_SC_PAGESIZE))
                return -E2BIG;
        /* target must not depend on the child's working directory */
        if (target[0] != '/')
                return -EINVAL;
        pid_t pid = vfork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                if (chdir(dir) < 0)
                        _exit(errno);
                if (mount("overlay", target, "overlay", flags & ~(MS_BIND | MS_REC), data) < 0)
                        _exit(errno);
                _exit(0);
        }
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (!WIFEXITED(status))
                return -EIO;
        return -WEXITSTATUS(status);
}

static int mount_one(const struct snapshot_mount *m, const char *target, struct error **err)
{
        unsigned long flags, prop;
        _cleanup_free_ char *data = NULL;
        int r;

        parse_options(m->options, &flags, &prop, &data);
        const char *type = m->type;
        bool is_bind = (flags & MS_BIND) || strcmp(type, "bind") == 0;
        if (is_bind)
                flags |= MS_BIND;
        if (!is_bind && strcmp(type, "overlay") == 0 && strlen(data) >= (size_t)sysconf(_SC_PAGESIZE) - 1) {
                r = -EINVAL;
                if (!force_compact_fallback)
                        r = mount_overlay_fsconfig(m->options, flags, target);
                if (r == -EINVAL || r == -ENOSYS || r == -EOPNOTSUPP)
                        r = mount_overlay_relative(m->options, flags, target);
                if (r < 0)
                        return error_set(err, -r, "mount overlay on %s (%zu bytes of options)", target, strlen(data));
        } else {
                /* MS_RDONLY on a bind mount needs a remount; the first mount is made without it. */
                unsigned long first = is_bind ? (flags & (MS_BIND | MS_REC)) : flags;
                if (mount(m->source, target, is_bind ? NULL : type, first, data[0] ? data : NULL) < 0)
                        return error_set(err, errno, "mount %s (%s) on %s", m->source, type, target);
                if (is_bind && (flags & ~(MS_BIND | MS_REC | MS_REMOUNT))) {
                        if (mount(NULL, target, NULL, (flags & ~MS_REC) | MS_REMOUNT | MS_BIND, NULL) < 0) {
                                r = error_set(err, errno, "remount %s with flags", target);
                                (void)umount2(target, MNT_DETACH);
                                return r;
                        }
                }
        }
        if (prop && mount(NULL, target, NULL, prop, NULL) < 0) {
                r = error_set(err, errno, "set propagation of %s", target);
                (void)umount2(target, MNT_DETACH);
                return r;
        }
        return 0;
}

int snapshot_mount_all(const struct snapshot_mount *mounts, size_t n, const char *target, struct error **err)
{
        for (size_t i = 0; i < n; i++) {
                int r = mount_one(&mounts[i], target, err);
                if (r < 0) {
                        for (size_t j = 0; j < i; j++)
                                (void)umount2(target, MNT_DETACH);
                        return r;
                }
        }
        return 0;
}

int snapshot_unmount(const char *target, int flags, struct error **err)
{
        for (int i = 0; i < 64; i++) {
                if (umount2(target, flags | UMOUNT_NOFOLLOW) < 0) {
                        if (errno == EINVAL || errno == ENOENT)
                                return 0; /* not (or no longer) a mount point */
                        return error_set(err, errno, "unmount %s", target);
                }
        }
        return error_set(err, EBUSY, "unmount %s: too many stacked mounts", target);
}

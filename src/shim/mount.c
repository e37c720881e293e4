/* Mounts the CreateTask rootfs mounts (overlay or bind from the snapshotter) onto <bundle>/rootfs, and
 * unmounts it at delete, as containerd's runc shim does. */
#include <string.h>
#include <sys/mount.h>

#include "shim/server.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/log.h"

struct mount_flag {
        const char *name;
        bool clear;
        unsigned long flag;
};

static const struct mount_flag mount_flags[] = {
    {"async", true, MS_SYNCHRONOUS},
    {"atime", true, MS_NOATIME},
    {"bind", false, MS_BIND},
    {"defaults", false, 0},
    {"dev", true, MS_NODEV},
    {"diratime", true, MS_NODIRATIME},
    {"dirsync", false, MS_DIRSYNC},
    {"exec", true, MS_NOEXEC},
    {"mand", false, MS_MANDLOCK},
    {"noatime", false, MS_NOATIME},
    {"nodev", false, MS_NODEV},
    {"nodiratime", false, MS_NODIRATIME},
    {"noexec", false, MS_NOEXEC},
    {"nomand", true, MS_MANDLOCK},
    {"norelatime", true, MS_RELATIME},
    {"nostrictatime", true, MS_STRICTATIME},
    {"nosuid", false, MS_NOSUID},
    {"rbind", false, MS_BIND | MS_REC},
    {"relatime", false, MS_RELATIME},
    {"remount", false, MS_REMOUNT},
    {"ro", false, MS_RDONLY},
    {"rw", true, MS_RDONLY},
    {"strictatime", false, MS_STRICTATIME},
    {"suid", true, MS_NOSUID},
    {"sync", false, MS_SYNCHRONOUS},
};

static int mount_one(const Containerd__Types__Mount *m, const char *target, struct error **err)
{
        _cleanup_free_ char *data = xstrdup("");
        unsigned long flags = 0;

        for (size_t i = 0; i < m->n_options; i++) {
                const char *o = m->options[i];
                bool known = false;
                for (size_t j = 0; j < ELEMENTSOF(mount_flags); j++)
                        if (strcmp(o, mount_flags[j].name) == 0) {
                                if (mount_flags[j].clear)
                                        flags &= ~mount_flags[j].flag;
                                else
                                        flags |= mount_flags[j].flag;
                                known = true;
                                break;
                        }
                if (!known) {
                        char *d = *data ? xasprintf("%s,%s", data, o) : xstrdup(o);
                        free(data);
                        data = d;
                }
        }
        if (strlen(data) >= 4096)
                return error_set(err, EINVAL, "mount options of %s too long", m->source);
        if (mount(m->source, target, m->type, flags & ~(MS_RDONLY * !!(flags & MS_BIND)), data) < 0)
                return error_set(err, errno, "mount %s on %s (type %s)", m->source, target, m->type);
        /* a bind mount takes ro only on a remount */
        if ((flags & MS_BIND) && (flags & MS_RDONLY) &&
            mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | (flags & MS_REC), NULL) < 0)
                return error_set(err, errno, "remount %s read-only", target);
        return 0;
}

int shim_mount_rootfs(Containerd__Types__Mount **mounts, size_t n, const char *target, struct error **err)
{
        int r;

        for (size_t i = 0; i < n; i++) {
                r = mount_one(mounts[i], target, err);
                if (r < 0) {
                        shim_unmount_rootfs(target);
                        return r;
                }
        }
        return 0;
}

void shim_unmount_rootfs(const char *target)
{
        /* lazily: a process of the container may still hold it for an instant */
        for (int i = 0; i < 16; i++)
                if (umount2(target, MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
                        break;
}

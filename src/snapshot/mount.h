/* Performing the mounts a snapshotter returns (containerd mount.Mount.Mount / mount.UnmountAll), for tests,
 * the shim and CRI. Needs CAP_SYS_ADMIN. Blocking; any thread. */
#pragma once

#include <stddef.h>

#include "snapshot/snapshot.h"

/* Mounts mounts[0..n) at target in order (each on top of the previous). Options are parsed as containerd
 * does: flag words (ro, rw, bind, rbind, nosuid, nodev, noexec, relatime, ...) become mount flags, the rest
 * is passed as data. A bind mount with extra flags (ro) is remounted to apply them. An overlay whose option
 * data exceeds the kernel's one-page limit (deep layer chains) is mounted through the new mount API with one
 * "lowerdir+" per layer, or, on kernels without it, from a child process whose working directory is the
 * lowerdirs' common parent so that the paths become short relative ones (containerd's
 * compactLowerdirOption). On failure, mounts already made at target are unmounted. Returns 0 or -errno. */
int snapshot_mount_all(const struct snapshot_mount *mounts, size_t n, const char *target, struct error **err);

/* Unmounts everything mounted at target (repeats until target is no longer a mount point). flags as
 * umount2 (e.g. MNT_DETACH). A target that is not mounted is success. Returns 0 or -errno. */
int snapshot_unmount(const char *target, int flags, struct error **err);

/* Tests only: force the relative-path fallback for long overlay options (process-wide). */
void snapshot_mount_force_compact_fallback(int on);

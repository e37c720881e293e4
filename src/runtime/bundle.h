/* Task bundles, laid out as containerd 1.6 does (runtime/v2/bundle.go; PROTOCOLS.md section 3.3):
 *   <state>/io.containerd.runtime.v2.task/<ns>/<id>/   0700: config.json, rootfs/ (0711), work -> workdir,
 *                                                      log (fifo 0700), and files the shim writes
 *   <root>/io.containerd.runtime.v2.task/<ns>/<id>/    0711: the shim's scratch space (work)
 * Every function here blocks on the filesystem: call them from the worker pool, never the loop. */
#pragma once

#include <stddef.h>

#include "util/error.h"

struct runtime_bundle {
        char *ns;
        char *id;
        char *path; /* bundle dir (state side) */
        char *work; /* work dir (root side) */
};

/* state_dir/root_dir are the daemon's --state/--root. Creates the bundle; on failure nothing is left behind.
 * id and ns must be valid identifiers (EINVAL). An existing bundle dir gives EEXIST. */
int runtime_bundle_new(const char *state_dir, const char *root_dir, const char *ns, const char *id,
                       const void *spec, size_t spec_len, struct runtime_bundle **ret, struct error **err);
/* Describes an existing bundle (recovery) without touching it. */
struct runtime_bundle *runtime_bundle_load(const char *state_dir, const char *root_dir, const char *ns,
                                           const char *id);
/* Creates (if missing) and opens the shim log fifo O_RDWR|O_NONBLOCK, as containerd does before `start` so the
 * shim never blocks or dies on it. Returns the fd (O_CLOEXEC) or -errno. */
int runtime_bundle_open_log(const struct runtime_bundle *b, struct error **err);
/* Unmounts everything on rootfs (lazily, repeatedly), removes the bundle dir and the work dir. ENOENT-safe. */
int runtime_bundle_delete(const struct runtime_bundle *b, struct error **err);
/* Moves the bundle and work dirs out of the way, into <state>/io.containerd.runtime.v2.task/.trash/ and
 * <root>/io.containerd.runtime.v2.task/.trash/ (renames: a few microseconds, where removing them costs
 * milliseconds per rmdir), so ns/id is free at once. Returns 1 when moved: b then names only the trashed
 * copies, to remove later with runtime_bundle_delete. When a rename is impossible the dirs are deleted in
 * place instead and 0 is returned (b unchanged: do not delete it again). */
int runtime_bundle_retire(struct runtime_bundle *b, struct error **err);
/* Removes whatever is left in both trash dirs (recovery after a crash). */
void runtime_bundle_empty_trash(const char *state_dir, const char *root_dir);
/* Reads a small file of the bundle (address, shim-binary-path, ...), trimmed; bounded to 4 KiB. */
int runtime_bundle_read(const struct runtime_bundle *b, const char *name, char **ret, struct error **err);
/* Writes a small file of the bundle: temp file + rename, not synced (the state dir is volatile). */
int runtime_bundle_write(const struct runtime_bundle *b, const char *name, const char *content, struct error **err);
struct runtime_bundle *runtime_bundle_free(struct runtime_bundle *b);
static inline void runtime_bundle_freep(struct runtime_bundle **b)
{
        *b = runtime_bundle_free(*b);
}

/* Running a shim binary's `start` and `delete` subcommands exactly as containerd 1.6 does
 * (runtime/v2/binary.go, shim/util.go; PROTOCOLS.md section 3.1-3.2). Blocking: call from the worker pool.
 * Processes are started with posix_spawn (the daemon is multi-threaded: no fork without exec). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

/* "io.containerd.runc.v2" -> "containerd-shim-runc-v2"; an absolute path is returned as is.
 * EINVAL for a name without at least three dot-separated parts. Returns a new string in *ret. */
int runtime_shim_binary_name(const char *runtime, char **ret, struct error **err);
/* Resolves the binary: absolute path as is, else next to the daemon executable (self_dir), else $PATH.
 * ENOENT with containerd's wording `runtime "X" binary not installed "containerd-shim-X-vY"`. */
int runtime_shim_binary_find(const char *runtime, const char *self_dir, char **ret_path, struct error **err);

struct runtime_shim_cmd {
        const char *binary;         /* resolved path */
        const char *ns;             /* -namespace */
        const char *address;        /* -address: the daemon's gRPC socket */
        const char *ttrpc_address;  /* TTRPC_ADDRESS env */
        const char *publish_binary; /* -publish-binary (the daemon executable) */
        const char *id;             /* -id */
        const char *bundle;         /* cwd, and -bundle for delete */
        bool debug;                 /* -debug */
        uint32_t timeout_ms;        /* kill the subcommand after this long; 0 = 30 s */
};

/* `start`: runtime options (a marshalled google.protobuf.Any, may be empty) on stdin; stdout+stderr combined
 * (containerd uses CombinedOutput); the trimmed output is the ttrpc address. A non-zero exit fails with the
 * output as the message. *ret_address is a new string. */
int runtime_shim_start(const struct runtime_shim_cmd *c, const void *opts, size_t opts_len, char **ret_address,
                       struct error **err);

struct runtime_shim_exit {
        uint32_t pid;
        uint32_t exit_status;
        int64_t exited_at_sec;
        int32_t exited_at_nsec;
};
/* `delete`: parses the raw containerd.task.v2.DeleteResponse printed on stdout. */
int runtime_shim_delete(const struct runtime_shim_cmd *c, struct runtime_shim_exit *ret, struct error **err);

/* Runs argv with the given env additions, stdin data, cwd; captures stdout (and stderr into the same buffer
 * when combine is true, else separately, both bounded to 1 MiB). Returns the exit status (>= 0, 128+sig for a
 * signal) or -errno. Exposed for tests and for CNI/runtime binaries later. */
int runtime_exec_capture(char *const argv[], char *const env_add[], const char *cwd, const void *in, size_t in_len,
                         bool combine, uint32_t timeout_ms, char **ret_out, size_t *ret_out_len, char **ret_err,
                         struct error **err);

/* containerd-shim-krill-v2: internal interfaces shared by the shim's source files.
 * Wire facts: ../shared/docs/PROTOCOLS.md section 3. Nothing here is used outside src/shim. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "util/error.h"

/* ---------- address.c: socket path (pure) ---------- */

/* sha256 of buf, as 64 lowercase hex characters plus NUL written to out. */
void shim_sha256_hex(const void *buf, size_t len, char out[65]);
/* Returns a new string: the socket path for (grpc address, namespace, group id), i.e.
 * "<dirname(address)>/s/<sha256(address + "/" + ns + "/" + group)>". NULL if the result would not
 * fit in sockaddr_un.sun_path (108 bytes with the NUL). */
char *shim_socket_path(const char *grpc_address, const char *ns, const char *group);
/* Group id from config.json's annotations (io.kubernetes.cri.sandbox-id, then io.containerd.runc.v2.group),
 * or id when neither is set. Returns a new string. config_json may be NULL. */
char *shim_group_id(const char *config_json, size_t len, const char *id);

/* ---------- json.c: bounded JSON reader (pure) ---------- */

#define SHIM_JSON_MAX_DEPTH 64

enum shim_json_type {
        SHIM_JSON_NULL,
        SHIM_JSON_FALSE,
        SHIM_JSON_TRUE,
        SHIM_JSON_NUMBER,
        SHIM_JSON_STRING,
        SHIM_JSON_ARRAY,
        SHIM_JSON_OBJECT,
};

/* A value: its type and its raw text inside the parsed buffer (borrowed). */
struct shim_json {
        enum shim_json_type type;
        const char *p;
        size_t len;
};

/* Validates buf as exactly one JSON value (surrounding whitespace allowed; nesting <= SHIM_JSON_MAX_DEPTH).
 * Returns 0 or -EINVAL. Only values from a successful parse may be given to the accessors below. */
int shim_json_parse(const char *buf, size_t len, struct shim_json *out);
/* Member key of an object (the last one if repeated): 0, -ENOENT, or -EINVAL if obj is no object. */
int shim_json_member(const struct shim_json *obj, const char *key, struct shim_json *out);
/* Iterates an array's elements or an object's values: *pos starts NULL; false after the last one (or if c is
 * neither). */
bool shim_json_next(const struct shim_json *c, const char **pos, struct shim_json *out);
/* A string value decoded to a new UTF-8 string; NULL if v is no string or contains \u0000. */
char *shim_json_strdup(const struct shim_json *v);
/* An integer number value (no fraction/exponent) that fits int64. */
bool shim_json_int64(const struct shim_json *v, int64_t *ret);
/* Shortcut: the string member key of the object document buf, new string or NULL. */
char *shim_json_string_member(const char *buf, size_t len, const char *key);

/* A growing NUL-terminated string (s may be NULL while empty; free(s) when done). */
struct shim_buf {
        char *s;
        size_t len, cap;
};
void shim_buf_putc(struct shim_buf *b, char c);
void shim_buf_puts(struct shim_buf *b, const char *s);
/* Appends s as a JSON string literal. */
void shim_json_quote(struct shim_buf *b, const char *s);

/* ---------- state.c: process state machine and exit status (pure) ---------- */

enum shim_state {
        SHIM_STATE_CREATED,
        SHIM_STATE_RUNNING,
        SHIM_STATE_PAUSED,
        SHIM_STATE_STOPPED,
        SHIM_STATE_DELETED,
};

enum shim_op {
        SHIM_OP_START,
        SHIM_OP_KILL,
        SHIM_OP_DELETE,
        SHIM_OP_PAUSE,
        SHIM_OP_RESUME,
        SHIM_OP_EXEC,
        SHIM_OP_UPDATE,
        SHIM_OP_EXIT,
};

/* Checks that op is allowed in state; returns 0 or -errno with err set the way containerd's runc shim words
 * it ("cannot start a running process": failed precondition; "process already finished": not found). */
int shim_state_check(enum shim_state s, enum shim_op op, struct error **err);
/* State after op succeeded in s. */
enum shim_state shim_state_next(enum shim_state s, enum shim_op op);
/* containerd.v1.types.Status value for a state. */
int shim_state_to_status(enum shim_state s);
/* waitpid status -> exit status as containerd reports it: WEXITSTATUS, or 128+signal. */
uint32_t shim_exit_status(int wstatus);

/* ---------- uri.c: stdio URIs (pure) ---------- */

enum shim_uri_kind {
        SHIM_URI_NONE,   /* empty: no stream */
        SHIM_URI_FIFO,   /* a plain path (or fifo://path): containerd's FIFO */
        SHIM_URI_FILE,   /* file:///path */
        SHIM_URI_BINARY, /* binary:///path?k=v: a logging binary */
};

struct shim_uri {
        enum shim_uri_kind kind;
        char *path;  /* owned, percent-decoded */
        char **args; /* owned NULL-terminated argv tail for binary:// (k, v pairs, empty v left out) */
};

int shim_uri_parse(const char *s, struct shim_uri *out, struct error **err);
void shim_uri_clear(struct shim_uri *u);

/* ---------- runtime.c: the OCI runtime CLI ---------- */

struct shim_runtime {
        char *binary; /* "runc" by default; a name or a path */
        char *root;   /* --root */
        char *bundle; /* absolute; log.json lives here */
        bool systemd_cgroup;
};

struct shim_runtime_io {
        int fds[3];        /* stdin/stdout/stderr for the runtime (and the container), -1 = /dev/null */
        const char *input; /* written to the runtime's stdin (fds[0] must be -1) */
        size_t input_len;
        char **output; /* if not NULL, receives the runtime's stdout (new string) */
};

/* Runs `<binary> --root R --log <bundle>/log.json --log-format json [--systemd-cgroup] args...`, waits for it
 * (the shim's own SIGCHLD stays blocked; only this pid is reaped). On failure returns -EIO with err set to
 * "<what>: <runtime's last error message>", read from log.json. io may be NULL. */
int shim_runtime_run(const struct shim_runtime *rt, const char *what, const char *const *args,
                     const struct shim_runtime_io *io, struct error **err);
/* From the runtime's JSON log (one object per line), returns a new string with the msg of the last entry
 * whose level is error (or fatal/panic), or NULL. Pure. */
char *shim_runtime_last_error(const char *log, size_t len);
/* What the shim reads from a bundle's config.json to decide whether it may skip a runc call. */
struct shim_spec_info {
        bool poststart;     /* hooks.poststart is a non-empty array: `runc start` (runc >= 1.2) runs it */
        bool private_pidns; /* linux.namespaces has {"type":"pid"} without a path: killing init kills them all */
};
/* Parses config.json; an unreadable document gives the conservative answer (poststart true, no private pid
 * namespace) and -EINVAL. Pure. */
int shim_spec_info_parse(const char *config_json, size_t len, struct shim_spec_info *out);
/* True if the runtime binary is runc (its basename is "runc"): only runc's exec.fifo protocol is replicated. */
bool shim_runtime_is_runc(const struct shim_runtime *rt);
/* `runc start` without runc: opens <root>/<id>/exec.fifo for reading, reads until EOF (runc init writes one
 * byte, then execs the user process, which closes the fifo), and removes the fifo, as runc's Exec() does.
 * pid is the container's init; if it dies before writing, the error is runc's "container process is already
 * dead". Returns 0, 1 if the fifo does not exist or init is gone already (the caller runs `runc start` for
 * runc's own error), or -errno with err set. */
int shim_runc_exec_fifo(const char *root, const char *id, pid_t pid, struct error **err);
/* `runc delete` of a stopped container without runc, for the common case only: the container had a pid
 * namespace of its own (its processes died with init), no poststop hooks, no Intel RDT, no systemd cgroup
 * driver, and every path of state.json's cgroup_paths lies under cgroup_root. Then it does what runc's
 * destroy() does: removes each cgroup (children first) and <root>/<id>. Returns 0 when done, or 1 when runc
 * must do it (anything else, a cgroup that will not go yet such as EBUSY, or an unreadable state.json); the
 * caller then runs `runc delete`, which finds its state untouched except for cgroups already gone. */
int shim_runc_delete_stopped(const char *root, const char *id, const char *cgroup_root);
/* Reads a pid file ("1234", optional newline). Returns the pid or -errno. */
int shim_read_pid_file(const char *path, struct error **err);
void shim_runtime_clear(struct shim_runtime *rt);

/* ---------- file helpers (runtime.c) ---------- */

/* Reads a whole file (at most max bytes, else -EFBIG). */
int shim_read_file(const char *path, size_t max, char **ret, size_t *ret_len, struct error **err);
/* Writes atomically (temp file + rename), mode 0644. */
int shim_write_file(const char *path, const void *data, size_t len, struct error **err);

/* Pure pieces of the shim: the process state machine (containerd's runc shim init_state.go semantics),
 * exit status mapping and stdio URI parsing. No I/O, unit-tested. */
#include <string.h>
#include <sys/wait.h>

#include "shim/shim.h"
#include "util/alloc.h"
#include "util/cleanup.h"

static const char *const state_names[] = {
    [SHIM_STATE_CREATED] = "created", [SHIM_STATE_RUNNING] = "running", [SHIM_STATE_PAUSED] = "paused",
    [SHIM_STATE_STOPPED] = "stopped", [SHIM_STATE_DELETED] = "deleted",
};

int shim_state_check(enum shim_state s, enum shim_op op, struct error **err)
{
        if (s == SHIM_STATE_DELETED)
                return error_set(err, ENOENT, "process deleted");
        switch (op) {
        case SHIM_OP_START:
                if (s != SHIM_STATE_CREATED)
                        return error_set_literal(err, EBUSY,
                                                 s == SHIM_STATE_RUNNING  ? "cannot start a running process"
                                                 : s == SHIM_STATE_PAUSED ? "cannot start a paused process"
                                                                          : "cannot start a stopped process");
                return 0;
        case SHIM_OP_KILL:
                if (s == SHIM_STATE_STOPPED)
                        return error_set(err, ENOENT, "process already finished");
                return 0;
        case SHIM_OP_DELETE:
                if (s == SHIM_STATE_RUNNING || s == SHIM_STATE_PAUSED)
                        return error_set_literal(err, EBUSY,
                                                 s == SHIM_STATE_RUNNING ? "cannot delete a running process"
                                                                         : "cannot delete a paused process");
                return 0;
        case SHIM_OP_PAUSE:
                if (s == SHIM_STATE_PAUSED)
                        return 0; /* runc shim: pausing a paused container is a no-op */
                if (s != SHIM_STATE_RUNNING)
                        return error_set_literal(err, EBUSY,
                                                 s == SHIM_STATE_CREATED ? "cannot pause a created process"
                                                                         : "cannot pause a stopped process");
                return 0;
        case SHIM_OP_RESUME:
                if (s == SHIM_STATE_RUNNING)
                        return error_set_literal(err, EBUSY, "cannot resume a running process");
                if (s != SHIM_STATE_PAUSED)
                        return error_set_literal(err, EBUSY,
                                                 s == SHIM_STATE_CREATED ? "cannot resume a created process"
                                                                         : "cannot resume a stopped process");
                return 0;
        case SHIM_OP_EXEC:
        case SHIM_OP_UPDATE:
                if (s == SHIM_STATE_STOPPED)
                        return error_set_literal(err, EBUSY,
                                                 op == SHIM_OP_EXEC ? "cannot exec in a stopped state"
                                                                    : "cannot update a stopped container");
                if (op == SHIM_OP_EXEC && s == SHIM_STATE_PAUSED)
                        return error_set_literal(err, EBUSY, "cannot exec in a paused state");
                return 0;
        case SHIM_OP_EXIT:
                return 0;
        }
        return error_set(err, EINVAL, "operation on %s process", state_names[s]);
}

enum shim_state shim_state_next(enum shim_state s, enum shim_op op)
{
        switch (op) {
        case SHIM_OP_START:
                return SHIM_STATE_RUNNING;
        case SHIM_OP_DELETE:
                return SHIM_STATE_DELETED;
        case SHIM_OP_PAUSE:
                return SHIM_STATE_PAUSED;
        case SHIM_OP_RESUME:
                return SHIM_STATE_RUNNING;
        case SHIM_OP_EXIT:
                return SHIM_STATE_STOPPED;
        default:
                return s;
        }
}

int shim_state_to_status(enum shim_state s)
{
        /* containerd.v1.types.Status: UNKNOWN 0, CREATED 1, RUNNING 2, STOPPED 3, PAUSED 4 */
        switch (s) {
        case SHIM_STATE_CREATED:
                return 1;
        case SHIM_STATE_RUNNING:
                return 2;
        case SHIM_STATE_STOPPED:
        case SHIM_STATE_DELETED:
                return 3;
        case SHIM_STATE_PAUSED:
                return 4;
        }
        return 0;
}

uint32_t shim_exit_status(int wstatus)
{
        if (WIFEXITED(wstatus))
                return (uint32_t)WEXITSTATUS(wstatus);
        if (WIFSIGNALED(wstatus))
                return 128u + (uint32_t)WTERMSIG(wstatus);
        return 255;
}

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Percent-decodes s[0..n) into a new string; '+' stays '+' (paths, not forms) unless plus is set. */
static int pct_decode(const char *s, size_t n, bool plus, char **ret)
{
        _cleanup_free_ char *out = xmalloc(n + 1);
        size_t j = 0;

        for (size_t i = 0; i < n; i++) {
                if (s[i] == '%') {
                        int hi, lo;
                        if (i + 2 >= n)
                                return -EINVAL;
                        hi = hexval(s[i + 1]);
                        lo = hexval(s[i + 2]);
                        if (hi < 0 || lo < 0)
                                return -EINVAL;
                        out[j++] = (char)(hi << 4 | lo);
                        i += 2;
                } else if (plus && s[i] == '+') {
                        out[j++] = ' ';
                } else {
                        out[j++] = s[i];
                }
        }
        out[j] = '\0';
        if (strlen(out) != j)
                return -EINVAL; /* an encoded NUL */
        *ret = TAKE_PTR(out);
        return 0;
}

void shim_uri_clear(struct shim_uri *u)
{
        free(u->path);
        strv_free(u->args);
        *u = (struct shim_uri){0};
}

int shim_uri_parse(const char *s, struct shim_uri *out, struct error **err)
{
        struct shim_uri u = {0};
        const char *rest, *q;
        size_t nargs = 0;
        int r;

        *out = (struct shim_uri){0};
        if (!s || !*s)
                return 0;
        if (strlen(s) > 4096)
                return error_set(err, EINVAL, "stdio uri too long");
        if (s[0] == '/') {
                out->kind = SHIM_URI_FIFO;
                out->path = xstrdup(s);
                return 0;
        }
        if (strncmp(s, "fifo://", 7) == 0) {
                u.kind = SHIM_URI_FIFO, rest = s + 7;
        } else if (strncmp(s, "file://", 7) == 0) {
                u.kind = SHIM_URI_FILE, rest = s + 7;
        } else if (strncmp(s, "binary://", 9) == 0) {
                u.kind = SHIM_URI_BINARY, rest = s + 9;
        } else {
                const char *colon = strstr(s, "://");
                if (colon)
                        return error_set(err, EINVAL, "unsupported STDIO scheme %.*s", (int)(colon - s), s);
                return error_set(err, EINVAL, "invalid stdio uri \"%s\"", s);
        }
        /* no host part is allowed: the path must be absolute */
        if (rest[0] != '/')
                return error_set(err, EINVAL, "stdio uri \"%s\": path must be absolute", s);
        q = strchr(rest, '?');
        r = pct_decode(rest, q ? (size_t)(q - rest) : strlen(rest), false, &u.path);
        if (r < 0)
                return error_set(err, EINVAL, "stdio uri \"%s\": bad escape", s);
        if (q && u.kind == SHIM_URI_BINARY) {
                const char *p = q + 1;
                u.args = xcalloc(1, sizeof(char *));
                while (*p) {
                        const char *amp = strchr(p, '&'), *end = amp ? amp : p + strlen(p);
                        const char *eq = memchr(p, '=', (size_t)(end - p));
                        char *k = NULL, *v = NULL;
                        if (end == p) {
                                p = amp ? amp + 1 : end;
                                continue;
                        }
                        if (nargs >= 64) {
                                shim_uri_clear(&u);
                                return error_set(err, EINVAL, "stdio uri \"%s\": too many arguments", s);
                        }
                        r = pct_decode(p, (size_t)((eq ? eq : end) - p), true, &k);
                        if (r >= 0 && eq)
                                r = pct_decode(eq + 1, (size_t)(end - eq - 1), true, &v);
                        if (r < 0) {
                                free(k);
                                shim_uri_clear(&u);
                                return error_set(err, EINVAL, "stdio uri \"%s\": bad escape", s);
                        }
                        u.args = xreallocarray(u.args, nargs + 3, sizeof(char *));
                        u.args[nargs++] = k;
                        if (v && *v)
                                u.args[nargs++] = v;
                        else
                                free(v);
                        u.args[nargs] = NULL;
                        p = amp ? amp + 1 : end;
                }
        }
        *out = u;
        return 0;
}

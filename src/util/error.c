#include "error.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

/* Marks a message that must be rendered as is. Stored in the code's high bit would be hacky; we keep
 * a leading NUL-free marker byte that cannot occur in printf output of our callers. */
#define LITERAL_MARK '\x01'

int error_setv(struct error **err, int code, const char *fmt, va_list ap)
{
        assert(code > 0);
        if (code <= 0)
                code = EIO;
        if (!err || *err)
                return -code;
        struct error *e = xcalloc(1, sizeof(*e));
        e->code = code;
        e->msg = fmt ? xvasprintf(fmt, ap) : xstrdup("");
        *err = e;
        return -code;
}

int error_set(struct error **err, int code, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int r = error_setv(err, code, fmt, ap);
        va_end(ap);
        return r;
}

int error_set_literal(struct error **err, int code, const char *msg)
{
        assert(code > 0);
        if (code <= 0)
                code = EIO;
        if (!err || *err)
                return -code;
        struct error *e = xcalloc(1, sizeof(*e));
        e->code = code;
        e->msg = xasprintf("%c%s", LITERAL_MARK, msg ? msg : "");
        *err = e;
        return -code;
}

int error_wrap(struct error **err, const char *fmt, ...)
{
        if (!err || !*err)
                return -EIO;
        struct error *e = *err;
        va_list ap;
        va_start(ap, fmt);
        char *ctx = xvasprintf(fmt, ap);
        va_end(ap);
        bool literal = e->msg[0] == LITERAL_MARK;
        const char *old = literal ? e->msg + 1 : e->msg;
        char *n;
        if (old[0])
                n = literal ? xasprintf("%c%s: %s", LITERAL_MARK, ctx, old) : xasprintf("%s: %s", ctx, old);
        else
                n = literal ? xasprintf("%c%s", LITERAL_MARK, ctx) : xstrdup(ctx);
        free(ctx);
        free(e->msg);
        e->msg = n;
        return -e->code;
}

void error_free(struct error **err)
{
        if (!err || !*err)
                return;
        free((*err)->msg);
        free(*err);
        *err = NULL;
}

const char *error_class_text(int code)
{
        switch (code) {
        case ENOENT:
                return "not found";
        case EEXIST:
                return "already exists";
        case EINVAL:
                return "invalid argument";
        case EBUSY:
        case ENOTEMPTY:
                return "failed precondition";
        case ENOSYS:
        case EOPNOTSUPP:
                return "not implemented";
        case EAGAIN:
        case ECONNREFUSED:
                return "unavailable";
        case ECANCELED:
                return "context canceled";
        case ETIMEDOUT:
                return "context deadline exceeded";
        case EPERM:
        case EACCES:
                return "permission denied";
        case ENOSPC:
                return "no space left on device";
        case EDQUOT:
                return "disk quota exceeded";
        case ERANGE:
                return "out of range";
        default: {
                /* Go prints syscall errors in lower case, as strerror does on glibc except the first letter. */
                static __thread char buf[128];
                const char *s = strerrordesc_np(code);
                if (!s)
                        return "unknown";
                snprintf(buf, sizeof(buf), "%s", s);
                if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z'))
                        buf[0] = (char)(buf[0] - 'A' + 'a');
                return buf;
        }
        }
}

char *error_message(const struct error *e)
{
        if (!e)
                return xstrdup("");
        if (e->msg[0] == LITERAL_MARK)
                return xstrdup(e->msg + 1);
        if (!e->msg[0])
                return xstrdup(error_class_text(e->code));
        return xasprintf("%s: %s", e->msg, error_class_text(e->code));
}

const char *error_str(const struct error *e)
{
        static __thread char *last;
        free(last);
        last = error_message(e);
        return last;
}

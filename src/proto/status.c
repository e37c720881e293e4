#include "status.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/cleanup.h"

enum grpc_code status_from_errno(int err)
{
        if (err < 0)
                err = -err;
        switch (err) {
        case 0:
                return GRPC_OK;
        case ENOENT:
                return GRPC_NOT_FOUND;
        case EEXIST:
                return GRPC_ALREADY_EXISTS;
        case EINVAL:
                return GRPC_INVALID_ARGUMENT;
        case EBUSY:
        case ENOTEMPTY:
                return GRPC_FAILED_PRECONDITION;
        case EAGAIN:
        case ECONNREFUSED:
                return GRPC_UNAVAILABLE;
        case ENOSYS:
        case EOPNOTSUPP:
                return GRPC_UNIMPLEMENTED;
        case ECANCELED:
                return GRPC_CANCELLED;
        case ETIMEDOUT:
                return GRPC_DEADLINE_EXCEEDED;
        case EPERM:
        case EACCES:
                return GRPC_PERMISSION_DENIED;
        case ENOSPC:
        case EDQUOT:
                return GRPC_RESOURCE_EXHAUSTED;
        case ERANGE:
                return GRPC_OUT_OF_RANGE;
        default:
                return GRPC_UNKNOWN;
        }
}

int status_to_errno(enum grpc_code code)
{
        switch (code) {
        case GRPC_OK:
                return 0;
        case GRPC_CANCELLED:
                return ECANCELED;
        case GRPC_INVALID_ARGUMENT:
                return EINVAL;
        case GRPC_DEADLINE_EXCEEDED:
                return ETIMEDOUT;
        case GRPC_NOT_FOUND:
                return ENOENT;
        case GRPC_ALREADY_EXISTS:
                return EEXIST;
        case GRPC_PERMISSION_DENIED:
        case GRPC_UNAUTHENTICATED:
                return EACCES;
        case GRPC_RESOURCE_EXHAUSTED:
                return ENOSPC;
        case GRPC_FAILED_PRECONDITION:
                return EBUSY;
        case GRPC_OUT_OF_RANGE:
                return ERANGE;
        case GRPC_UNIMPLEMENTED:
                return ENOSYS;
        case GRPC_UNAVAILABLE:
                return EAGAIN;
        default:
                return EIO;
        }
}

const char *status_code_name(enum grpc_code code)
{
        static const char *const names[] = {
                "OK",           "Canceled",         "Unknown",          "InvalidArgument",    "DeadlineExceeded",
                "NotFound",     "AlreadyExists",    "PermissionDenied", "ResourceExhausted",  "FailedPrecondition",
                "Aborted",      "OutOfRange",       "Unimplemented",    "Internal",           "Unavailable",
                "DataLoss",     "Unauthenticated",
        };
        if ((unsigned)code < sizeof(names) / sizeof(names[0]))
                return names[code];
        return "Unknown";
}

/* The class a Go client (containerd errdefs.FromGRPC) assigns to a code; everything else is "unknown". */
static const char *client_class(enum grpc_code code)
{
        switch (code) {
        case GRPC_INVALID_ARGUMENT:
                return "invalid argument";
        case GRPC_ALREADY_EXISTS:
                return "already exists";
        case GRPC_NOT_FOUND:
                return "not found";
        case GRPC_UNAVAILABLE:
                return "unavailable";
        case GRPC_FAILED_PRECONDITION:
                return "failed precondition";
        case GRPC_UNIMPLEMENTED:
                return "not implemented";
        case GRPC_CANCELLED:
                return "context canceled";
        case GRPC_DEADLINE_EXCEEDED:
                return "context deadline exceeded";
        default:
                return NULL;
        }
}

int status_to_error(enum grpc_code code, const char *message, struct error **err)
{
        int e = status_to_errno(code);
        if (e == 0)
                e = EIO;
        const char *msg = message ? message : "";
        const char *cls = client_class(code);
        /* errdefs rebaseMessage: the message minus a trailing ": <class>", then the class is appended again,
         * so clients print `<context>: <class>` whatever the server sent. */
        const char *suffix = cls ? cls : "unknown";
        size_t ml = strlen(msg), sl = strlen(suffix);
        size_t ctx_len = ml;
        if (strcmp(msg, suffix) == 0)
                ctx_len = 0;
        else if (ml >= sl + 2 && strcmp(msg + ml - sl, suffix) == 0 && msg[ml - sl - 2] == ':' && msg[ml - sl - 1] == ' ')
                ctx_len = ml - sl - 2;
        _cleanup_free_ char *ctx = xstrndup(msg, ctx_len);
        if (cls && strcmp(error_class_text(e), cls) == 0)
                return ctx_len ? error_set(err, e, "%s", ctx) : error_set(err, e, NULL);
        _cleanup_free_ char *full = ctx_len ? xasprintf("%s: %s", ctx, suffix) : xstrdup(suffix);
        return error_set_literal(err, e, full);
}

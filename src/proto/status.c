#include "status.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

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

int status_to_error(enum grpc_code code, const char *message, struct error **err)
{
        int e = status_to_errno(code);
        if (e == 0)
                e = EIO;
        const char *msg = message ? message : "";
        const char *cls = error_class_text(e);
        size_t ml = strlen(msg), cl = strlen(cls);
        /* Only classes containerd maps (errdefs) get their suffix stripped; others keep the message verbatim. */
        if (code != GRPC_UNKNOWN && code != GRPC_INTERNAL && ml >= cl + 2 && strcmp(msg + ml - cl, cls) == 0 &&
            msg[ml - cl - 2] == ':' && msg[ml - cl - 1] == ' ') {
                char *ctx = xstrndup(msg, ml - cl - 2);
                int r = error_set(err, e, "%s", ctx);
                free(ctx);
                return r;
        }
        if (code != GRPC_UNKNOWN && code != GRPC_INTERNAL && strcmp(msg, cls) == 0)
                return error_set(err, e, NULL);
        return error_set_literal(err, e, msg);
}

/* The one place that maps errno to gRPC/ttrpc status codes and back (STYLE.md section 4),
 * following containerd/errdefs (errgrpc). */
#pragma once

#include "util/error.h"

enum grpc_code {
        GRPC_OK = 0,
        GRPC_CANCELLED = 1,
        GRPC_UNKNOWN = 2,
        GRPC_INVALID_ARGUMENT = 3,
        GRPC_DEADLINE_EXCEEDED = 4,
        GRPC_NOT_FOUND = 5,
        GRPC_ALREADY_EXISTS = 6,
        GRPC_PERMISSION_DENIED = 7,
        GRPC_RESOURCE_EXHAUSTED = 8,
        GRPC_FAILED_PRECONDITION = 9,
        GRPC_ABORTED = 10,
        GRPC_OUT_OF_RANGE = 11,
        GRPC_UNIMPLEMENTED = 12,
        GRPC_INTERNAL = 13,
        GRPC_UNAVAILABLE = 14,
        GRPC_DATA_LOSS = 15,
        GRPC_UNAUTHENTICATED = 16,
};

/* errno (positive or negative) -> status code. 0 -> GRPC_OK. */
enum grpc_code status_from_errno(int err);
/* status code -> positive errno, the inverse used by clients (NOT_FOUND -> ENOENT, UNKNOWN -> EIO, ...). */
int status_to_errno(enum grpc_code code);
/* "NotFound", "AlreadyExists", ... (grpc-go's code names, as ctr prints them in `rpc error: code = X`). */
const char *status_code_name(enum grpc_code code);

/* Client side: turns a received status + message into an error, stripping a trailing ": <class text>" the
 * way Go clients do (errdefs ToNative rebaseMessage), so error_message() does not repeat it.
 * Returns -errno. */
int status_to_error(enum grpc_code code, const char *message, struct error **err);

/* Force-included (-include) by the static musl build of the shim only (musl-build.sh): declarations of the
 * glibc extensions that shared util code calls and compat.c provides for musl. */
#pragma once

const char *strerrordesc_np(int errnum);

/* What the static musl build of the shim needs from glibc (issue 5): util/error.c renders errno classes with
 * glibc's strerrordesc_np(); musl's strerror() gives the same English text and is not locale-dependent either. */
#include <string.h>

#ifndef __GLIBC__
#include "shim/compat.h"

const char *strerrordesc_np(int errnum)
{
        return strerror(errnum);
}
#endif

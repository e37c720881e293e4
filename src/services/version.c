/* version.v1 logic. KRILL_VERSION and KRILL_REVISION come from the top-level meson.build. */
#include "services/version.h"

#ifndef KRILL_VERSION
#error "KRILL_VERSION must be defined by the build"
#endif
#ifndef KRILL_REVISION
#error "KRILL_REVISION must be defined by the build"
#endif

const char *services_version_version(void)
{
        return KRILL_VERSION;
}

const char *services_version_revision(void)
{
        return KRILL_REVISION;
}

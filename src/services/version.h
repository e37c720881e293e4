/* version.v1: the daemon's version (KRILL_VERSION, the meson project version) and revision
 * (KRILL_REVISION, the git commit the build came from), as `ctr version` prints them. */
#pragma once

#include "proto/grpc/grpc.h"
#include "services/services.h"

/* Static strings, never NULL. Any thread. */
const char *services_version_version(void);
const char *services_version_revision(void);

/* Registers /containerd.services.version.v1.Version/Version. */
void services_version_register(struct grpc_server *s, struct services_ctx *ctx);

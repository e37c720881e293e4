/* Image helpers of `krill images` that other command groups may use. */
#pragma once

#include <stdint.h>

#include "cli/cli.h"

/* Unpacks an image's layers for the host platform into snapshotter (NULL: the namespace default, else
 * overlayfs) the way the containerd client's Image.Unpack does, inside its own lease. */
int cli_images_unpack(struct grpc_client *c, const struct cli_global *g, const char *name, const char *target_mt,
                      const char *target_digest, int64_t target_size, const char *snapshotter, struct error **err);
/* The snapshotter to use: flag, else the namespace's containerd.io/defaults/snapshotter label, else
 * overlayfs. New string. */
char *cli_images_resolve_snapshotter(struct grpc_client *c, const struct cli_global *g, const char *flag);

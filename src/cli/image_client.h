/* Client-side image reading for `krill run` (what ctr's client library does before creating a container):
 * Images.Get, the manifest (through an index, by platform) and config via Content.Read, the chain ID of the
 * layers, and a Snapshots.Stat check that the image is unpacked. */
#pragma once

#include <stddef.h>

#include "proto/grpc/grpc.h"
#include "util/error.h"

struct cli_image {
        char *name;
        char *config;      /* the config blob (JSON) */
        size_t config_len;
        char *chain_id;    /* "sha256:..." of all layers */
        char *config_digest;
        char **diff_ids;   /* NULL-terminated, from the config */
        char **layers;     /* NULL-terminated "mediatype digest size" of the manifest's layers */
};

/* platform: "os/arch[/variant]" or NULL for the host's. */
int cli_image_resolve(struct grpc_client *c, const char *name, const char *platform, struct cli_image *ret,
                      struct error **err);
void cli_image_done(struct cli_image *img);
/* Snapshots.Stat(snapshotter, img->chain_id): 0 if unpacked, -ENOENT with containerd-like text otherwise. */
int cli_image_check_unpacked(struct grpc_client *c, const struct cli_image *img, const char *snapshotter,
                             struct error **err);
/* ctr's image.Unpack for the layers whose chain is missing, client-side under the given lease:
 * Snapshots.Prepare("extract-..."), Diff.Apply, Snapshots.Commit(chainID) per layer, then the config's
 * containerd.io/gc.ref.snapshot.<snapshotter> label so GC keeps the chain. */
int cli_image_unpack(struct grpc_client *c, const struct cli_image *img, const char *snapshotter, const char *lease,
                     struct error **err);
/* Client-side unpack of layers[0..n) ("mediatype digest size" each) with their diff IDs: for i >= from, a
 * missing chain is prepared, applied (Diff.Apply) and committed under lease; *ret_chain is the top chain ID
 * (new string). Layers below from are taken as unpacked. */
int cli_image_unpack_layers(struct grpc_client *c, const char *snapshotter, const char *lease, char *const *layers,
                            char *const *diff_ids, size_t n, size_t from, char **ret_chain, struct error **err);
/* identity chain ID: chain[0] = diff[0], chain[i] = sha256(chain[i-1] + " " + diff[i]). New string. */
char *cli_image_chain_id(char *const *diff_ids);
/* Reads a blob fully with Content.Read, refusing more than max bytes. */
int cli_image_read_blob(struct grpc_client *c, const char *digest, size_t max, char **ret, size_t *ret_len,
                        struct error **err);

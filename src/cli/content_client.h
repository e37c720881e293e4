/* Client-side helpers over the gRPC client for the image/content commands (what ctr's content proxy and
 * lease manager do): the Content.Write stream (STAT, WRITE in 1 MiB chunks, COMMIT; AlreadyExists counts as
 * success), Content.Read, Info/Update of labels, and lease create/delete. Calls made inside a lease pass the
 * metadata from cli_lease_md(). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "github.com/containerd/containerd/api/types/descriptor.pb-c.h"
#include "image/platform.h"
#include "proto/grpc/grpc.h"
#include "util/error.h"

#define CLI_CONTENT_CHUNK (1u << 20) /* ctr's write chunk and containerd's read buffer */

/* A lease: id plus the metadata array to pass as extra_md on calls made inside it. */
struct cli_lease {
        char *id;
        struct grpc_metadata md[2];
};

/* Leases.Create with id (NULL: a generated one like the containerd client's) and optional labels strv
 * (key, value pairs), e.g. containerd.io/gc.expire. */
int cli_lease_create(struct grpc_client *c, const char *id, char *const *labels, struct cli_lease *ret,
                     struct error **err);
/* The containerd client's WithLease: a generated id and containerd.io/gc.expire 24 h ahead, so a lease left by
 * a crashed CLI is collected. */
int cli_lease_create_temporary(struct grpc_client *c, struct cli_lease *ret, struct error **err);
/* Leases.Delete; frees ret's id. NULL-safe on a lease never created. */
int cli_lease_delete(struct grpc_client *c, struct cli_lease *l, bool sync, struct error **err);
void cli_lease_done(struct cli_lease *l);
/* The lease's metadata (NULL for NULL). */
const struct grpc_metadata *cli_lease_md(const struct cli_lease *l);

struct cli_content_writer;

/* Opens a Content.Write stream for ref (STAT with total and optional expected digest). */
int cli_content_writer_open(struct grpc_client *c, const struct grpc_metadata *md, const char *ref, int64_t total,
                            const char *expected, struct cli_content_writer **ret, struct error **err);
/* Sends data, buffering into CLI_CONTENT_CHUNK-sized WRITE messages (up to 8 in flight before waiting for
 * replies; an error may show at a later call); hashes it locally. */
int cli_content_writer_write(struct cli_content_writer *w, const void *data, size_t len, struct error **err);
/* COMMIT with the total written and expected (NULL: the locally computed digest). AlreadyExists is success.
 * *ret_digest (optional) gets the digest of the data written (new string). labels: strv of pairs or NULL. */
int cli_content_writer_commit(struct cli_content_writer *w, const char *expected, char *const *labels,
                              char **ret_digest, struct error **err);
/* Cancels the stream if still open. NULL-safe. */
void cli_content_writer_free(struct cli_content_writer *w);
/* Opens or resumes the ingest ref (ctr's content.OpenWriter + Status): STAT with total and expected; *ret_offset
 * is where the ingest stands, the next write goes there. -EEXIST (no writer) when the blob is present. The
 * data is not hashed locally: commit with the expected digest, krilld verifies it. */
int cli_content_writer_resume(struct grpc_client *c, const struct grpc_metadata *md, const char *ref, int64_t total,
                              const char *expected, struct cli_content_writer **ret, int64_t *ret_offset,
                              struct error **err);
/* Starts the ingest over: the next WRITE goes at offset 0, which truncates it. */
int cli_content_writer_truncate(struct cli_content_writer *w, struct error **err);
/* Bytes written so far (sent or buffered). */
int64_t cli_content_writer_offset(const struct cli_content_writer *w);

/* Writes a whole in-memory blob under ref with its digest expected. */
int cli_content_write_blob(struct grpc_client *c, const struct grpc_metadata *md, const char *ref, const void *data,
                           size_t len, char **ret_digest, struct error **err);

/* Content.Read of a whole blob into memory, refusing more than max bytes. NUL-terminated. */
int cli_content_read_all(struct grpc_client *c, const struct grpc_metadata *md, const char *digest, size_t max,
                         char **ret, size_t *ret_len, struct error **err);
/* Streams a blob to a callback in the server's chunks. */
typedef int (*cli_content_sink_fn)(void *userdata, const void *data, size_t len, struct error **err);
int cli_content_read_sink(struct grpc_client *c, const struct grpc_metadata *md, const char *digest,
                          cli_content_sink_fn sink, void *userdata, struct error **err);
/* Streams a blob to fd (used by `content get` and export). */
int cli_content_read_to_fd(struct grpc_client *c, const struct grpc_metadata *md, const char *digest, int fd,
                           struct error **err);
/* Content.Info: size (and labels as a strv of pairs, optional). -ENOENT when missing. */
int cli_content_info(struct grpc_client *c, const struct grpc_metadata *md, const char *digest, int64_t *ret_size,
                     char ***ret_labels, struct error **err);
/* Content.Update setting labels (strv of pairs); the mask is labels.<key> for each (empty value clears). */
int cli_content_set_labels(struct grpc_client *c, const struct grpc_metadata *md, const char *digest,
                           char *const *labels, struct error **err);

/* --- descriptors and manifest walking (images.Children, images.Manifest, images.Platforms) --- */

#define CLI_MAX_MANIFEST (8u << 20) /* manifests, indexes, configs read into memory */

struct cli_desc {
        char *media_type;
        char *digest;
        int64_t size;
        bool has_platform;
        struct image_platform platform;
        char **annotations; /* strv pairs */
};

void cli_desc_clear(struct cli_desc *d);
void cli_descs_free(struct cli_desc *v, size_t n);
/* An OCI descriptor object; -EINVAL without a valid digest or a non-negative size. */
int cli_desc_from_json(const json_t *j, struct cli_desc *ret, struct error **err);
struct cli_desc cli_desc_from_proto(const Containerd__Types__Descriptor *p);
const char *cli_desc_annotation(const struct cli_desc *d, const char *key);
bool cli_mt_is_index(const char *mt);
bool cli_mt_is_manifest(const char *mt);
bool cli_mt_is_config(const char *mt);
/* Reads a blob (at most CLI_MAX_MANIFEST) and parses it with bounded depth. */
int cli_content_read_json(struct grpc_client *c, const struct grpc_metadata *md, const char *digest, json_t **ret,
                          struct error **err);
/* Manifests of an index; config then layers of a manifest; nothing for other types. */
int cli_desc_children(struct grpc_client *c, const struct grpc_metadata *md, const struct cli_desc *d,
                      struct cli_desc **ret, size_t *ret_n, struct error **err);
/* os/architecture of a config blob, normalised. */
int cli_config_platform(struct grpc_client *c, const struct grpc_metadata *md, const struct cli_desc *cfg,
                        struct image_platform *ret, struct error **err);
/* The manifest for the matcher: in an index the best-ranked match (no platform: its config's). */
int cli_resolve_manifest(struct grpc_client *c, const struct grpc_metadata *md, const struct image_platform_matcher *m,
                         const struct cli_desc *target, int depth, struct cli_desc *ret, struct error **err);
/* platforms.Default(): the host's platform. */
struct image_platform_matcher *cli_default_platform_matcher(void);

/* Image archives on the client side, as ctr's images/archive package reads and writes them: OCI image
 * layouts (oci-layout, index.json, blobs/<alg>/<hex>) and Docker `save` archives (manifest.json, <id>.json,
 * <id>/layer.tar), streamed through image/tar.h (plain, gzip or zstd). Nothing is extracted to disk: every regular
 * file goes to a caller's sink (the content store) with its sha256 computed on the way. Entry names are
 * cleaned and must stay relative and beneath the archive root ("..", absolute names are refused); sizes,
 * entry counts and JSON documents are bounded. Pure: no gRPC, no logging above debug. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

#define CLI_ARCHIVE_MAX_ENTRIES 100000
#define CLI_ARCHIVE_MAX_BLOB (64ull << 30) /* one member */
#define CLI_ARCHIVE_MAX_JSON (8u << 20)    /* manifest.json, oci-layout, configs kept in memory */
#define CLI_ARCHIVE_MAX_NAME 4096

#define CLI_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define CLI_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define CLI_MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define CLI_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define CLI_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define CLI_MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define CLI_MT_DOCKER_LAYER "application/vnd.docker.image.rootfs.diff.tar"
#define CLI_MT_DOCKER_LAYER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"

/* Where member data goes. begin gets the cleaned name, the size and, for blobs/<alg>/<hex> members, the
 * digest the data must have (else NULL); data gets the bytes; end gets the computed digest once the data
 * matched the expected digest and size. Any callback may fail with -errno, which aborts the import. */
struct cli_archive_sink {
        int (*begin)(void *ud, const char *name, int64_t size, const char *expected, struct error **err);
        int (*data)(void *ud, const void *buf, size_t len, struct error **err);
        int (*end)(void *ud, const char *digest, struct error **err);
        void *userdata;
};

/* A blob the caller must also store (Docker archives: the generated manifests and index). */
struct cli_archive_extra {
        char *ref; /* "manifest-sha256:<hex>" like containerd's writeManifest */
        char *digest;
        char *data;
        size_t len;
};

struct cli_archive_index {
        char *media_type; /* of the top descriptor: always an OCI index */
        char *digest;
        int64_t size;
        size_t n_extra;
        struct cli_archive_extra *extra; /* write these (in order) before using the index */
};

void cli_archive_index_done(struct cli_archive_index *idx);

/* Reads the tar from fd (a plain or compressed tar; image/decompress detects gzip/zstd), feeding each member
 * except oci-layout and manifest.json to sink. Returns the top-level index descriptor ctr would import:
 * index.json for an OCI layout (version 1.0.0 only), or a generated OCI index over Docker schema2
 * manifests for a Docker archive (names normalised like docker: "busybox:1" ->
 * docker.io/library/busybox:1, in io.containerd.image.name and org.opencontainers.image.ref.name). */
int cli_archive_import(int fd, const struct cli_archive_sink *sink, struct cli_archive_index *ret, struct error **err);

/* Cleans a member name like Go's path.Clean and refuses anything absolute or escaping the root.
 * New string or NULL. Exposed for tests. */
char *cli_archive_clean_name(const char *name);

/* A tar writer for export: an OCI layout with a Docker manifest.json next to it like ctr's export. */
struct cli_archive_writer;
int cli_archive_writer_open(int fd, struct cli_archive_writer **ret, struct error **err);
/* Adds a member of size bytes; then call cli_archive_writer_data until size bytes were given. */
int cli_archive_writer_add(struct cli_archive_writer *w, const char *name, int64_t size, struct error **err);
int cli_archive_writer_data(struct cli_archive_writer *w, const void *buf, size_t len, struct error **err);
int cli_archive_writer_add_dir(struct cli_archive_writer *w, const char *name, struct error **err);
int cli_archive_writer_close(struct cli_archive_writer *w, struct error **err);
void cli_archive_writer_free(struct cli_archive_writer *w);

/* Go's progress.Bytes / units.CustomSize("%02.1f %s", 1024): "0.0 B", "512.0 B", "1.4 MiB". */
void cli_format_bytes(int64_t n, char *buf, size_t len);

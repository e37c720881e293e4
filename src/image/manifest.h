/* OCI / Docker image index, manifest and config parsing (the subset pulls need). Inputs are untrusted:
 * bounded in size (IMAGE_MANIFEST_MAX_BYTES), depth and entry count; every digest validated.
 * Pure functions, any thread, never log. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image/platform.h"
#include "util/error.h"

#define IMAGE_MANIFEST_MAX_BYTES (4u << 20) /* containerd's manifest size limit */
#define IMAGE_MANIFEST_MAX_ENTRIES 4096u

#define IMAGE_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define IMAGE_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define IMAGE_MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define IMAGE_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define IMAGE_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define IMAGE_MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
/* Accept header sent for manifests (containerd's resolver order) */
#define IMAGE_MANIFEST_ACCEPT                                                                                          \
        "Accept: " IMAGE_MT_DOCKER_MANIFEST ", " IMAGE_MT_DOCKER_LIST ", " IMAGE_MT_OCI_MANIFEST                       \
        ", " IMAGE_MT_OCI_INDEX ", */*"

struct image_descriptor {
        char *media_type;
        char *digest;
        int64_t size;
        bool has_platform;
        struct image_platform platform;
};

void image_descriptor_clear(struct image_descriptor *d);
void image_descriptor_copy(struct image_descriptor *dst, const struct image_descriptor *src);
void image_descriptors_free(struct image_descriptor *d, size_t n);

enum image_manifest_kind {
        IMAGE_MANIFEST_KIND_UNKNOWN,
        IMAGE_MANIFEST_KIND_INDEX,
        IMAGE_MANIFEST_KIND_MANIFEST,
};
/* From the media type; for an empty/unknown type, from the document's shape ("manifests" vs "layers"). */
enum image_manifest_kind image_manifest_kind(const char *media_type, const char *buf, size_t len);
bool image_media_type_is_layer(const char *mt);

/* Index / manifest list: *ret (n entries) new. -EINVAL on malformed input. */
int image_index_parse(const char *buf, size_t len, struct image_descriptor **ret, size_t *ret_n, struct error **err);
/* Manifest: config and layers, new. */
int image_manifest_parse(const char *buf, size_t len, struct image_descriptor *ret_config,
                         struct image_descriptor **ret_layers, size_t *ret_n, struct error **err);
/* Config: rootfs.diff_ids (new strv) and the platform (os/architecture/variant, new strings). */
int image_config_parse(const char *buf, size_t len, char ***ret_diff_ids, struct image_platform *ret_platform,
                       struct error **err);

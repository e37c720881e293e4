#include "image/manifest.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "image/ref.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/json.h"
#include "util/strv.h"

#define MAX_DEPTH 32

void image_descriptor_clear(struct image_descriptor *d)
{
        if (!d)
                return;
        free(d->media_type);
        free(d->digest);
        image_platform_clear(&d->platform);
        *d = (struct image_descriptor){0};
}

void image_descriptor_copy(struct image_descriptor *dst, const struct image_descriptor *src)
{
        dst->media_type = xstrdup(src->media_type);
        dst->digest = xstrdup(src->digest);
        dst->size = src->size;
        dst->has_platform = src->has_platform;
        dst->platform = (struct image_platform){0};
        if (src->has_platform)
                image_platform_copy(&dst->platform, &src->platform);
}

void image_descriptors_free(struct image_descriptor *d, size_t n)
{
        for (size_t i = 0; d && i < n; i++)
                image_descriptor_clear(&d[i]);
        free(d);
}

enum image_manifest_kind image_manifest_kind(const char *mt, const char *buf, size_t len)
{
        _cleanup_json_ json_t *j = NULL;

        if (mt && (!strcmp(mt, IMAGE_MT_OCI_INDEX) || !strcmp(mt, IMAGE_MT_DOCKER_LIST)))
                return IMAGE_MANIFEST_KIND_INDEX;
        if (mt && (!strcmp(mt, IMAGE_MT_OCI_MANIFEST) || !strcmp(mt, IMAGE_MT_DOCKER_MANIFEST)))
                return IMAGE_MANIFEST_KIND_MANIFEST;
        if (!buf || json_load_bounded(buf, len, IMAGE_MANIFEST_MAX_BYTES, MAX_DEPTH, &j, NULL) < 0 ||
            !json_is_object(j))
                return IMAGE_MANIFEST_KIND_UNKNOWN;
        if (json_is_array(json_object_get(j, "manifests")))
                return IMAGE_MANIFEST_KIND_INDEX;
        if (json_is_array(json_object_get(j, "layers")))
                return IMAGE_MANIFEST_KIND_MANIFEST;
        return IMAGE_MANIFEST_KIND_UNKNOWN;
}

bool image_media_type_is_layer(const char *mt)
{
        return mt && (strstr(mt, "image.layer.") || strstr(mt, "image.rootfs."));
}

static int desc_parse(json_t *o, struct image_descriptor *d, struct error **err)
{
        const char *mt = NULL, *dg = NULL;
        int64_t size = 0;
        json_t *p;
        int k;

        if (!json_is_object(o))
                return error_set(err, EINVAL, "descriptor is not an object");
        k = json_get_string_opt(o, "mediaType", &mt, err);
        if (k < 0)
                return k;
        k = json_get_string(o, "digest", &dg, err);
        if (k < 0)
                return k;
        k = image_ref_digest_validate(dg, err);
        if (k < 0)
                return error_wrap(err, "descriptor digest \"%s\"", dg);
        k = json_get_int(o, "size", &size, err);
        if (k < 0)
                return k;
        if (size < 0)
                return error_set(err, EINVAL, "descriptor %s: negative size", dg);
        *d = (struct image_descriptor){.media_type = xstrdup(mt ?: ""), .digest = xstrdup(dg), .size = size};
        p = json_object_get(o, "platform");
        if (json_is_object(p)) {
                const char *os = json_string_value(json_object_get(p, "os"));
                const char *arch = json_string_value(json_object_get(p, "architecture"));
                const char *var = json_string_value(json_object_get(p, "variant"));
                d->has_platform = true;
                d->platform.os = xstrdup(os ?: "");
                d->platform.arch = xstrdup(arch ?: "");
                d->platform.variant = xstrdup(var ?: "");
        }
        return 0;
}

static int load(const char *buf, size_t len, json_t **ret, struct error **err)
{
        int k = json_load_bounded(buf, len, IMAGE_MANIFEST_MAX_BYTES, MAX_DEPTH, ret, err);

        if (k < 0)
                return k;
        if (!json_is_object(*ret)) {
                json_decref(*ret);
                *ret = NULL;
                return error_set(err, EINVAL, "manifest is not a JSON object");
        }
        return 0;
}

static int desc_array(json_t *arr, struct image_descriptor **ret, size_t *ret_n, struct error **err)
{
        size_t n = json_array_size(arr);
        struct image_descriptor *v;

        if (n > IMAGE_MANIFEST_MAX_ENTRIES)
                return error_set(err, E2BIG, "%zu descriptors exceed the limit of %u", n, IMAGE_MANIFEST_MAX_ENTRIES);
        v = xcalloc(n + 1, sizeof(*v));
        for (size_t i = 0; i < n; i++) {
                int k = desc_parse(json_array_get(arr, i), &v[i], err);
                if (k < 0) {
                        image_descriptors_free(v, n);
                        return k;
                }
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

int image_index_parse(const char *buf, size_t len, struct image_descriptor **ret, size_t *ret_n, struct error **err)
{
        _cleanup_json_ json_t *j = NULL;
        json_t *m;
        int k = load(buf, len, &j, err);

        if (k < 0)
                return k;
        m = json_object_get(j, "manifests");
        if (!json_is_array(m))
                return error_set(err, EINVAL, "index has no manifests array");
        return desc_array(m, ret, ret_n, err);
}

int image_manifest_parse(const char *buf, size_t len, struct image_descriptor *ret_config,
                         struct image_descriptor **ret_layers, size_t *ret_n, struct error **err)
{
        _cleanup_json_ json_t *j = NULL;
        struct image_descriptor cfg = {0};
        json_t *l;
        int k = load(buf, len, &j, err);

        if (k < 0)
                return k;
        l = json_object_get(j, "layers");
        if (!json_is_array(l))
                return error_set(err, EINVAL, "manifest has no layers array");
        k = desc_parse(json_object_get(j, "config"), &cfg, err);
        if (k < 0)
                return error_wrap(err, "manifest config");
        k = desc_array(l, ret_layers, ret_n, err);
        if (k < 0) {
                image_descriptor_clear(&cfg);
                return k;
        }
        *ret_config = cfg;
        return 0;
}

int image_config_parse(const char *buf, size_t len, char ***ret_diff_ids, struct image_platform *ret_platform,
                       struct error **err)
{
        _cleanup_json_ json_t *j = NULL;
        _cleanup_strv_free_ char **ids = strv_new_empty();
        json_t *rootfs, *arr;
        int k = load(buf, len, &j, err);

        if (k < 0)
                return k;
        rootfs = json_object_get(j, "rootfs");
        arr = json_is_object(rootfs) ? json_object_get(rootfs, "diff_ids") : NULL;
        if (!json_is_array(arr))
                return error_set(err, EINVAL, "image config has no rootfs.diff_ids");
        if (json_array_size(arr) > IMAGE_MANIFEST_MAX_ENTRIES)
                return error_set(err, E2BIG, "too many diff_ids");
        for (size_t i = 0; i < json_array_size(arr); i++) {
                const char *s = json_string_value(json_array_get(arr, i));
                if (!s || image_ref_digest_validate(s, err) < 0)
                        return error_set(err, EINVAL, "invalid diff_id %zu", i);
                strv_extend(&ids, s);
        }
        if (ret_platform) {
                const char *os = json_string_value(json_object_get(j, "os"));
                const char *arch = json_string_value(json_object_get(j, "architecture"));
                const char *var = json_string_value(json_object_get(j, "variant"));
                ret_platform->os = xstrdup(os ?: "");
                ret_platform->arch = xstrdup(arch ?: "");
                ret_platform->variant = xstrdup(var ?: "");
        }
        *ret_diff_ids = TAKE_PTR(ids);
        return 0;
}

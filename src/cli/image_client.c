/* Image reading for `krill run`; see image_client.h. */
#include "cli/image_client.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "github.com/containerd/containerd/api/services/content/v1/content.pb-c.h"
#include "github.com/containerd/containerd/api/services/images/v1/images.pb-c.h"
#include "github.com/containerd/containerd/api/services/snapshots/v1/snapshots.pb-c.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/json.h"
#include "util/strv.h"

#define MAX_MANIFEST (4u << 20)
#define MAX_DEPTH 4 /* nested indexes */

int cli_image_read_blob(struct grpc_client *c, const char *digest, size_t max, char **ret, size_t *ret_len,
                        struct error **err)
{
        struct grpc_stream *s = NULL;
        Containerd__Services__Content__V1__ReadContentRequest req =
                CONTAINERD__SERVICES__CONTENT__V1__READ_CONTENT_REQUEST__INIT;
        req.digest = (char *)digest;
        int r = grpc_client_stream_open(c, "/containerd.services.content.v1.Content/Read", NULL,
                                        &containerd__services__content__v1__read_content_response__descriptor, &s,
                                        err);
        if (r < 0)
                return r;
        r = grpc_stream_send(s, &req.base, err);
        if (r >= 0)
                r = grpc_stream_close_send(s, err);
        char *buf = NULL;
        size_t len = 0;
        while (r >= 0) {
                ProtobufCMessage *m = NULL;
                r = grpc_stream_recv(s, 0, &m, err);
                if (r <= 0)
                        break;
                Containerd__Services__Content__V1__ReadContentResponse *rr = (void *)m;
                if (len + rr->data.len > max) {
                        protobuf_c_message_free_unpacked(m, NULL);
                        r = error_set(err, EFBIG, "blob %s is larger than %zu bytes", digest, max);
                        break;
                }
                buf = xrealloc(buf, len + rr->data.len + 1);
                memcpy(buf + len, rr->data.data, rr->data.len);
                len += rr->data.len;
                protobuf_c_message_free_unpacked(m, NULL);
        }
        grpc_stream_free(s);
        if (r < 0) {
                free(buf);
                return r;
        }
        if (!buf)
                buf = xmalloc(1);
        buf[len] = '\0';
        *ret = buf;
        *ret_len = len;
        return 0;
}

char *cli_image_chain_id(char *const *diff_ids)
{
        if (!diff_ids || !diff_ids[0])
                return NULL;
        char *chain = xstrdup(diff_ids[0]);
        for (size_t i = 1; diff_ids[i]; i++) {
                _cleanup_free_ char *s = xasprintf("%s %s", chain, diff_ids[i]);
                free(chain);
                chain = digest_from_buf(s, strlen(s));
        }
        return chain;
}

static void host_platform(char **os, char **arch, char **variant)
{
        struct utsname u;
        const char *a = "amd64";
        *variant = NULL;
        if (uname(&u) == 0) {
                if (strcmp(u.machine, "aarch64") == 0) {
                        a = "arm64";
                        *variant = xstrdup("v8");
                } else if (strcmp(u.machine, "x86_64") != 0) {
                        a = u.machine;
                }
        }
        *os = xstrdup("linux");
        *arch = xstrdup(a);
}

static bool platform_matches(const json_t *p, const char *os, const char *arch, const char *variant)
{
        const char *pos = json_string_value(json_object_get(p, "os"));
        const char *parch = json_string_value(json_object_get(p, "architecture"));
        const char *pvar = json_string_value(json_object_get(p, "variant"));
        if (!pos || !parch || strcmp(pos, os) != 0 || strcmp(parch, arch) != 0)
                return false;
        /* arm64 images usually carry no variant (v8 is implied) */
        if (variant && pvar && strcmp(variant, pvar) != 0)
                return false;
        return true;
}

static int find_config(struct grpc_client *c, const char *digest, const char *os, const char *arch,
                       const char *variant, int depth, char **ret_config_digest, struct error **err)
{
        _cleanup_free_ char *buf = NULL;
        size_t len;
        json_t *j = NULL;

        if (depth > MAX_DEPTH)
                return error_set(err, ELOOP, "image index nesting too deep at %s", digest);
        int r = cli_image_read_blob(c, digest, MAX_MANIFEST, &buf, &len, err);
        if (r < 0)
                return r;
        r = json_load_bounded(buf, len, MAX_MANIFEST, 64, &j, err);
        if (r < 0)
                return r;
        json_t *manifests = json_object_get(j, "manifests");
        json_t *config = json_object_get(j, "config");
        if (json_is_object(config)) {
                const char *d = json_string_value(json_object_get(config, "digest"));
                if (!d || digest_validate(d, NULL) < 0) {
                        json_decref(j);
                        return error_set(err, EINVAL, "manifest %s: invalid config digest", digest);
                }
                *ret_config_digest = xstrdup(d);
                json_decref(j);
                return 0;
        }
        if (!json_is_array(manifests)) {
                json_decref(j);
                return error_set(err, EINVAL, "%s: unexpected manifest media type", digest);
        }
        size_t i;
        json_t *m;
        const char *pick = NULL;
        json_array_foreach(manifests, i, m) {
                const char *d = json_string_value(json_object_get(m, "digest"));
                json_t *p = json_object_get(m, "platform");
                if (!d || digest_validate(d, NULL) < 0)
                        continue;
                if ((json_is_object(p) && platform_matches(p, os, arch, variant)) ||
                    (!json_is_object(p) && json_array_size(manifests) == 1)) {
                        pick = d;
                        break;
                }
        }
        if (!pick) {
                json_decref(j);
                return error_set(err, ENOENT, "no match for platform in manifest %s", digest);
        }
        _cleanup_free_ char *next = xstrdup(pick);
        json_decref(j);
        return find_config(c, next, os, arch, variant, depth + 1, ret_config_digest, err);
}

int cli_image_resolve(struct grpc_client *c, const char *name, const char *platform, struct cli_image *ret,
                      struct error **err)
{
        ProtobufCMessage *resp = NULL;
        _cleanup_free_ char *os = NULL, *arch = NULL, *variant = NULL, *config_digest = NULL;
        json_t *j = NULL;

        memset(ret, 0, sizeof(*ret));
        Containerd__Services__Images__V1__GetImageRequest req = CONTAINERD__SERVICES__IMAGES__V1__GET_IMAGE_REQUEST__INIT;
        req.name = (char *)name;
        int r = grpc_client_unary(c, "/containerd.services.images.v1.Images/Get", NULL, &req.base,
                                  &containerd__services__images__v1__get_image_response__descriptor, &resp, err);
        if (r < 0)
                return r;
        Containerd__Services__Images__V1__GetImageResponse *gr = (void *)resp;
        if (!gr->image || !gr->image->target || !gr->image->target->digest) {
                protobuf_c_message_free_unpacked(resp, NULL);
                return error_set(err, EINVAL, "image \"%s\" has no target", name);
        }
        _cleanup_free_ char *target = xstrdup(gr->image->target->digest);
        protobuf_c_message_free_unpacked(resp, NULL);

        if (platform) {
                _cleanup_strv_free_ char **parts = NULL;
                const char *p = platform;
                while (*p) {
                        const char *e = strchr(p, '/');
                        size_t l = e ? (size_t)(e - p) : strlen(p);
                        strv_push(&parts, xstrndup(p, l));
                        p += l + (e ? 1 : 0);
                }
                size_t n = strv_length(parts);
                if (n < 2 || n > 3)
                        return error_set(err, EINVAL, "\"%s\": cannot parse platform specifier", platform);
                os = xstrdup(parts[0]);
                arch = xstrdup(parts[1]);
                variant = n == 3 ? xstrdup(parts[2]) : NULL;
        } else {
                host_platform(&os, &arch, &variant);
        }
        r = find_config(c, target, os, arch, variant, 0, &config_digest, err);
        if (r < 0)
                return r;
        char *cfg = NULL;
        size_t cfg_len = 0;
        r = cli_image_read_blob(c, config_digest, MAX_MANIFEST, &cfg, &cfg_len, err);
        if (r < 0)
                return r;
        r = json_load_bounded(cfg, cfg_len, MAX_MANIFEST, 64, &j, err);
        if (r < 0) {
                free(cfg);
                return r;
        }
        _cleanup_strv_free_ char **diff_ids = NULL;
        json_t *ids = json_object_get(json_object_get(j, "rootfs"), "diff_ids");
        size_t i;
        json_t *v;
        json_array_foreach(ids, i, v) {
                const char *d = json_string_value(v);
                if (!d || digest_validate(d, NULL) < 0)
                        continue;
                strv_extend(&diff_ids, d);
        }
        json_decref(j);
        if (!diff_ids) {
                free(cfg);
                return error_set(err, EINVAL, "image \"%s\" has no layers", name);
        }
        ret->name = xstrdup(name);
        ret->config = cfg;
        ret->config_len = cfg_len;
        ret->chain_id = cli_image_chain_id(diff_ids);
        return 0;
}

void cli_image_done(struct cli_image *img)
{
        free(img->name);
        free(img->config);
        free(img->chain_id);
        memset(img, 0, sizeof(*img));
}

int cli_image_check_unpacked(struct grpc_client *c, const struct cli_image *img, const char *snapshotter,
                             struct error **err)
{
        ProtobufCMessage *resp = NULL;
        Containerd__Services__Snapshots__V1__StatSnapshotRequest req =
                CONTAINERD__SERVICES__SNAPSHOTS__V1__STAT_SNAPSHOT_REQUEST__INIT;
        req.snapshotter = (char *)snapshotter;
        req.key = img->chain_id;
        int r = grpc_client_unary(c, "/containerd.services.snapshots.v1.Snapshots/Stat", NULL, &req.base,
                                  &containerd__services__snapshots__v1__stat_snapshot_response__descriptor, &resp,
                                  err);
        if (r < 0) {
                if (r == -ENOENT)
                        error_wrap(err, "image \"%s\" is not unpacked for snapshotter %s (krill run does not unpack "
                                        "yet; unpack with `ctr images unpack` or a pull)", img->name, snapshotter);
                return r;
        }
        protobuf_c_message_free_unpacked(resp, NULL);
        return 0;
}

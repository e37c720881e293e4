/* Image reading for `krill run`; see image_client.h. */
#include "cli/image_client.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "github.com/containerd/containerd/api/services/content/v1/content.pb-c.h"
#include "github.com/containerd/containerd/api/services/diff/v1/diff.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "google/protobuf/field_mask.pb-c.h"
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
                       const char *variant, int depth, char **ret_config_digest, char ***ret_layers,
                       struct error **err)
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
                size_t i;
                json_t *l;
                json_array_foreach(json_object_get(j, "layers"), i, l) {
                        const char *ld = json_string_value(json_object_get(l, "digest"));
                        const char *mt = json_string_value(json_object_get(l, "mediaType"));
                        json_int_t sz = json_integer_value(json_object_get(l, "size"));
                        if (!ld || !mt || digest_validate(ld, NULL) < 0 || strchr(mt, ' ') || sz < 0) {
                                json_decref(j);
                                return error_set(err, EINVAL, "manifest %s: invalid layer %zu", digest, i);
                        }
                        strv_extendf(ret_layers, "%s %s %lld", mt, ld, (long long)sz);
                }
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
        return find_config(c, next, os, arch, variant, depth + 1, ret_config_digest, ret_layers, err);
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
        _cleanup_strv_free_ char **layers = NULL;
        r = find_config(c, target, os, arch, variant, 0, &config_digest, &layers, err);
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
        ret->config_digest = TAKE_PTR(config_digest);
        ret->diff_ids = TAKE_PTR(diff_ids);
        ret->layers = TAKE_PTR(layers);
        return 0;
}

void cli_image_done(struct cli_image *img)
{
        free(img->name);
        free(img->config);
        free(img->chain_id);
        free(img->config_digest);
        strv_free(img->diff_ids);
        strv_free(img->layers);
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

#define SNAPSHOTS(m) "/containerd.services.snapshots.v1.Snapshots/" m

static int stat_snapshot(struct grpc_client *c, const char *snapshotter, const char *key, struct error **err)
{
        ProtobufCMessage *resp = NULL;
        Containerd__Services__Snapshots__V1__StatSnapshotRequest req =
                CONTAINERD__SERVICES__SNAPSHOTS__V1__STAT_SNAPSHOT_REQUEST__INIT;
        req.snapshotter = (char *)snapshotter;
        req.key = (char *)key;
        int r = grpc_client_unary(c, SNAPSHOTS("Stat"), NULL, &req.base,
                                  &containerd__services__snapshots__v1__stat_snapshot_response__descriptor, &resp, err);
        if (r >= 0)
                protobuf_c_message_free_unpacked(resp, NULL);
        return r;
}

static int apply_layer(struct grpc_client *c, const struct grpc_metadata *md, const char *snapshotter,
                       const char *layer, const char *diff_id, const char *parent, const char *chain,
                       struct error **err)
{
        ProtobufCMessage *prep = NULL, *aresp = NULL, *cresp = NULL;
        _cleanup_free_ char *key = xasprintf("extract-%d-%ld %s", (int)getpid(), (long)time(NULL), chain);
        _cleanup_free_ char *mt = NULL, *dg = NULL;
        long long size = 0;
        const char *sp = strchr(layer, ' ');
        mt = xstrndup(layer, (size_t)(sp - layer));
        const char *sp2 = strchr(sp + 1, ' ');
        dg = xstrndup(sp + 1, (size_t)(sp2 - sp - 1));
        size = strtoll(sp2 + 1, NULL, 10);

        Containerd__Services__Snapshots__V1__PrepareSnapshotRequest preq =
                CONTAINERD__SERVICES__SNAPSHOTS__V1__PREPARE_SNAPSHOT_REQUEST__INIT;
        preq.snapshotter = (char *)snapshotter;
        preq.key = key;
        preq.parent = (char *)(parent ? parent : "");
        int r = grpc_client_unary(c, SNAPSHOTS("Prepare"), md, &preq.base,
                                  &containerd__services__snapshots__v1__prepare_snapshot_response__descriptor, &prep,
                                  err);
        if (r < 0)
                return r;
        Containerd__Services__Snapshots__V1__PrepareSnapshotResponse *pr = (void *)prep;
        Containerd__Types__Descriptor desc = CONTAINERD__TYPES__DESCRIPTOR__INIT;
        desc.media_type = mt;
        desc.digest = dg;
        desc.size = size;
        Containerd__Services__Diff__V1__ApplyRequest areq = CONTAINERD__SERVICES__DIFF__V1__APPLY_REQUEST__INIT;
        areq.diff = &desc;
        areq.mounts = pr->mounts;
        areq.n_mounts = pr->n_mounts;
        r = grpc_client_unary(c, "/containerd.services.diff.v1.Diff/Apply", md, &areq.base,
                              &containerd__services__diff__v1__apply_response__descriptor, &aresp, err);
        protobuf_c_message_free_unpacked(prep, NULL);
        if (r >= 0) {
                Containerd__Services__Diff__V1__ApplyResponse *ar = (void *)aresp;
                if (!ar->applied || !ar->applied->digest || strcmp(ar->applied->digest, diff_id) != 0)
                        r = error_set(err, EINVAL, "wrong diff id calculated on extraction \"%s\"", diff_id);
                protobuf_c_message_free_unpacked(aresp, NULL);
        }
        if (r >= 0) {
                Containerd__Services__Snapshots__V1__CommitSnapshotRequest creq =
                        CONTAINERD__SERVICES__SNAPSHOTS__V1__COMMIT_SNAPSHOT_REQUEST__INIT;
                creq.snapshotter = (char *)snapshotter;
                creq.name = (char *)chain;
                creq.key = key;
                r = grpc_client_unary(c, SNAPSHOTS("Commit"), md, &creq.base, &google__protobuf__empty__descriptor,
                                      &cresp, err);
                if (r >= 0)
                        protobuf_c_message_free_unpacked(cresp, NULL);
                else if (r == -EEXIST)
                        r = 0; /* someone else unpacked it meanwhile */
        }
        if (r < 0) {
                ProtobufCMessage *rresp = NULL;
                Containerd__Services__Snapshots__V1__RemoveSnapshotRequest rreq =
                        CONTAINERD__SERVICES__SNAPSHOTS__V1__REMOVE_SNAPSHOT_REQUEST__INIT;
                rreq.snapshotter = (char *)snapshotter;
                rreq.key = key;
                if (grpc_client_unary(c, SNAPSHOTS("Remove"), md, &rreq.base, &google__protobuf__empty__descriptor,
                                      &rresp, NULL) >= 0)
                        protobuf_c_message_free_unpacked(rresp, NULL);
        }
        return r;
}

int cli_image_unpack_layers(struct grpc_client *c, const char *snapshotter, const char *lease, char *const *layers,
                            char *const *diff_ids, size_t n, size_t from, char **ret_chain, struct error **err)
{
        const struct grpc_metadata md[] = {{"containerd-lease", lease}, {NULL, NULL}};
        _cleanup_free_ char *parent = NULL;

        if (n == 0)
                return error_set(err, EINVAL, "no layers to unpack");
        for (size_t i = 0; i < n; i++) {
                _cleanup_strv_free_ char **prefix = strv_new_empty();
                _cleanup_free_ char *chain = NULL;
                for (size_t k = 0; k <= i; k++)
                        strv_extend(&prefix, diff_ids[k]);
                chain = cli_image_chain_id(prefix);
                if (i >= from) {
                        _cleanup_error_ struct error *e = NULL;
                        int r = stat_snapshot(c, snapshotter, chain, &e);
                        if (r == -ENOENT)
                                r = apply_layer(c, md, snapshotter, layers[i], diff_ids[i], parent, chain, err);
                        else if (r < 0)
                                *err = TAKE_PTR(e);
                        if (r < 0)
                                return r;
                }
                free(parent);
                parent = TAKE_PTR(chain);
        }
        *ret_chain = TAKE_PTR(parent);
        return 0;
}

int cli_image_unpack(struct grpc_client *c, const struct cli_image *img, const char *snapshotter, const char *lease,
                     struct error **err)
{
        const struct grpc_metadata md[] = {{"containerd-lease", lease}, {NULL, NULL}};
        size_t n = strv_length(img->diff_ids);
        if (n != strv_length(img->layers))
                return error_set(err, EINVAL, "image \"%s\": %zu layers but %zu diff ids", img->name,
                                 strv_length(img->layers), n);
        _cleanup_strv_free_ char **chains = NULL;
        for (size_t i = 0; i < n; i++) {
                _cleanup_strv_free_ char **prefix = strv_copy(img->diff_ids);
                for (size_t k = i + 1; k < n; k++) {
                        free(prefix[k]);
                        prefix[k] = NULL;
                }
                strv_push(&chains, cli_image_chain_id(prefix));
        }
        for (size_t i = 0; i < n; i++) {
                _cleanup_error_ struct error *e = NULL;
                int r = stat_snapshot(c, snapshotter, chains[i], &e);
                if (r >= 0)
                        continue;
                if (r != -ENOENT) {
                        *err = TAKE_PTR(e);
                        return r;
                }
                r = apply_layer(c, md, snapshotter, img->layers[i], img->diff_ids[i], i ? chains[i - 1] : NULL,
                                chains[i], err);
                if (r < 0)
                        return r;
        }
        /* the config references the chain, so GC keeps the unpacked snapshots (containerd's unpacker) */
        _cleanup_free_ char *label = xasprintf("containerd.io/gc.ref.snapshot.%s", snapshotter);
        _cleanup_free_ char *path = xasprintf("labels.%s", label);
        Containerd__Services__Content__V1__Info__LabelsEntry le = CONTAINERD__SERVICES__CONTENT__V1__INFO__LABELS_ENTRY__INIT;
        le.key = label;
        le.value = img->chain_id;
        Containerd__Services__Content__V1__Info__LabelsEntry *lep = &le;
        Containerd__Services__Content__V1__Info info = CONTAINERD__SERVICES__CONTENT__V1__INFO__INIT;
        info.digest = img->config_digest;
        info.labels = &lep;
        info.n_labels = 1;
        char *paths[] = {path};
        Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
        mask.paths = paths;
        mask.n_paths = 1;
        Containerd__Services__Content__V1__UpdateRequest ureq = CONTAINERD__SERVICES__CONTENT__V1__UPDATE_REQUEST__INIT;
        ureq.info = &info;
        ureq.update_mask = &mask;
        ProtobufCMessage *uresp = NULL;
        int r = grpc_client_unary(c, "/containerd.services.content.v1.Content/Update", md, &ureq.base,
                                  &containerd__services__content__v1__update_response__descriptor, &uresp, err);
        if (r >= 0)
                protobuf_c_message_free_unpacked(uresp, NULL);
        return r;
}

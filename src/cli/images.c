/* krill images (image, i): import, export, list, delete, tag, unpack (ctr images). The client does the work
 * as ctr's client library does: content goes through Content.Write inside a lease, GC labels are set on
 * parents, images are created with Update -> NotFound -> Create, and unpack drives Snapshots and Diff. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "cli/archive.h"
#include "cli/cli.h"
#include "cli/content_client.h"
#include "cli/images.h"
#include "cli/tabwriter.h"
#include "github.com/containerd/containerd/api/services/diff/v1/diff.pb-c.h"
#include "github.com/containerd/containerd/api/services/images/v1/images.pb-c.h"
#include "github.com/containerd/containerd/api/services/namespaces/v1/namespace.pb-c.h"
#include "github.com/containerd/containerd/api/services/snapshots/v1/snapshots.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "image/platform.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/json.h"
#include "util/log.h"
#include "util/strv.h"

#define IMAGES_PATH(m) "/containerd.services.images.v1.Images/" m
#define SNAPSHOTS_PATH(m) "/containerd.services.snapshots.v1.Snapshots/" m
#define MAX_DEPTH 8

typedef Containerd__Services__Images__V1__Image Image;
typedef Containerd__Types__Descriptor Descriptor;

/* --- unpack --- */

/* rootfs uniquePart ("<nanoseconds>-<4 chars>"), alphanumerics only like our lease ids. */
static char *unique_part(void)
{
        static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789Aa";
        struct timespec ts;
        unsigned char rnd[3] = {0};
        clock_gettime(CLOCK_REALTIME, &ts);
        if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
                memcpy(rnd, &ts.tv_nsec, sizeof(rnd));
        uint32_t v = (uint32_t)rnd[0] << 16 | (uint32_t)rnd[1] << 8 | rnd[2];
        return xasprintf("%ld-%c%c%c%c", ts.tv_nsec, b64[(v >> 18) & 63], b64[(v >> 12) & 63], b64[(v >> 6) & 63],
                         b64[v & 63]);
}

/* The snapshotter to use: the flag, else the namespace's containerd.io/defaults/snapshotter, else
 * overlayfs (the containerd client's resolveSnapshotterName). */
char *cli_images_resolve_snapshotter(struct grpc_client *c, const struct cli_global *g, const char *flag)
{
        if (flag && flag[0])
                return xstrdup(flag);
        ProtobufCMessage *resp = NULL;
        char *ret = NULL;
        Containerd__Services__Namespaces__V1__GetNamespaceRequest req =
            CONTAINERD__SERVICES__NAMESPACES__V1__GET_NAMESPACE_REQUEST__INIT;
        req.name = (char *)g->namespace_;
        if (grpc_client_unary(c, "/containerd.services.namespaces.v1.Namespaces/Get", NULL, &req.base,
                              &containerd__services__namespaces__v1__get_namespace_response__descriptor, &resp,
                              NULL) == 0) {
                Containerd__Services__Namespaces__V1__GetNamespaceResponse *gr = (void *)resp;
                for (size_t i = 0; gr->namespace_ && i < gr->namespace_->n_labels; i++)
                        if (strcmp(gr->namespace_->labels[i]->key, "containerd.io/defaults/snapshotter") == 0)
                                ret = xstrdup(gr->namespace_->labels[i]->value);
                protobuf_c_message_free_unpacked(resp, NULL);
        }
        return ret ? ret : xstrdup("overlayfs");
}

static int snapshot_remove(struct grpc_client *c, const struct grpc_metadata *md, const char *sn, const char *key)
{
        ProtobufCMessage *resp = NULL;
        Containerd__Services__Snapshots__V1__RemoveSnapshotRequest req =
            CONTAINERD__SERVICES__SNAPSHOTS__V1__REMOVE_SNAPSHOT_REQUEST__INIT;
        req.snapshotter = (char *)sn;
        req.key = (char *)key;
        int r = grpc_client_unary(c, SNAPSHOTS_PATH("Remove"), md, &req.base, &google__protobuf__empty__descriptor,
                                  &resp, NULL);
        if (resp)
                protobuf_c_message_free_unpacked(resp, NULL);
        return r;
}

/* One layer (rootfs.applyLayers): Stat(chainID) -> NotFound -> Prepare(extract-..., parent), Diff.Apply,
 * check the diff ID, Commit(chainID). Returns 1 when it unpacked, 0 when the chain existed. */
static int apply_layer(struct grpc_client *c, const struct grpc_metadata *md, const char *sn,
                       const struct cli_desc *layer, const char *diff_id, const char *parent, const char *chain_id,
                       struct error **err)
{
        ProtobufCMessage *resp = NULL;
        Containerd__Services__Snapshots__V1__StatSnapshotRequest st =
            CONTAINERD__SERVICES__SNAPSHOTS__V1__STAT_SNAPSHOT_REQUEST__INIT;
        st.snapshotter = (char *)sn;
        st.key = (char *)chain_id;
        int r = grpc_client_unary(c, SNAPSHOTS_PATH("Stat"), md, &st.base,
                                  &containerd__services__snapshots__v1__stat_snapshot_response__descriptor, &resp, err);
        if (r == 0) {
                protobuf_c_message_free_unpacked(resp, NULL);
                return 0;
        }
        if (r != -ENOENT)
                return r;
        error_free(err);

        _cleanup_free_ char *u = unique_part();
        _cleanup_free_ char *key = xasprintf("extract-%s %s", u, chain_id);
        Containerd__Services__Snapshots__V1__PrepareSnapshotRequest pr =
            CONTAINERD__SERVICES__SNAPSHOTS__V1__PREPARE_SNAPSHOT_REQUEST__INIT;
        pr.snapshotter = (char *)sn;
        pr.key = key;
        pr.parent = (char *)(parent ? parent : "");
        r = grpc_client_unary(c, SNAPSHOTS_PATH("Prepare"), md, &pr.base,
                              &containerd__services__snapshots__v1__prepare_snapshot_response__descriptor, &resp, err);
        if (r == -EEXIST) {
                /* someone else is unpacking the same chain; containerd retries and finds it committed */
                return 0;
        }
        if (r < 0)
                return error_wrap(err, "failed to prepare extraction snapshot \"%s\"", key);
        Containerd__Services__Snapshots__V1__PrepareSnapshotResponse *prr = (void *)resp;

        Descriptor d = CONTAINERD__TYPES__DESCRIPTOR__INIT;
        d.media_type = layer->media_type;
        d.digest = layer->digest;
        d.size = layer->size;
        Containerd__Services__Diff__V1__ApplyRequest ar = CONTAINERD__SERVICES__DIFF__V1__APPLY_REQUEST__INIT;
        ar.diff = &d;
        ar.n_mounts = prr->n_mounts;
        ar.mounts = prr->mounts;
        ProtobufCMessage *aresp = NULL;
        r = grpc_client_unary(c, "/containerd.services.diff.v1.Diff/Apply", md, &ar.base,
                              &containerd__services__diff__v1__apply_response__descriptor, &aresp, err);
        protobuf_c_message_free_unpacked(resp, NULL);
        if (r < 0) {
                error_wrap(err, "failed to extract layer %s", diff_id);
                goto cleanup;
        }
        Containerd__Services__Diff__V1__ApplyResponse *apr = (void *)aresp;
        if (!apr->applied || !apr->applied->digest || strcmp(apr->applied->digest, diff_id) != 0) {
                r = error_set(err, EINVAL, "wrong diff id calculated on extraction \"%s\"",
                              apr->applied && apr->applied->digest ? apr->applied->digest : "");
                protobuf_c_message_free_unpacked(aresp, NULL);
                goto cleanup;
        }
        protobuf_c_message_free_unpacked(aresp, NULL);
        Containerd__Services__Snapshots__V1__CommitSnapshotRequest cr =
            CONTAINERD__SERVICES__SNAPSHOTS__V1__COMMIT_SNAPSHOT_REQUEST__INIT;
        cr.snapshotter = (char *)sn;
        cr.name = (char *)chain_id;
        cr.key = key;
        r = grpc_client_unary(c, SNAPSHOTS_PATH("Commit"), md, &cr.base, &google__protobuf__empty__descriptor, &resp,
                              err);
        if (r < 0) {
                if (r == -EEXIST) {
                        error_free(err);
                        snapshot_remove(c, md, sn, key);
                        return 0;
                }
                error_wrap(err, "failed to commit snapshot %s", key);
                goto cleanup;
        }
        protobuf_c_message_free_unpacked(resp, NULL);
        return 1;
cleanup:
        snapshot_remove(c, md, sn, key);
        return r;
}

int cli_images_unpack(struct grpc_client *c, const struct cli_global *g, const char *name, const char *target_mt,
                      const char *target_digest, int64_t target_size, const char *snapshotter_flag, struct error **err)
{
        _cleanup_(image_platform_matcher_freep) struct image_platform_matcher *m = cli_default_platform_matcher();
        struct cli_lease lease;
        struct cli_desc target = {
            .media_type = (char *)target_mt, .digest = (char *)target_digest, .size = target_size};
        struct cli_desc manifest = {0};
        struct cli_desc *ch = NULL;
        size_t n = 0;
        _cleanup_json_ json_t *cfg = NULL;
        _cleanup_free_ char *sn = NULL;
        _cleanup_free_ char *chain = NULL;
        int r;

        (void)name;
        r = cli_lease_create_temporary(c, &lease, err);
        if (r < 0)
                return r;
        const struct grpc_metadata *md = cli_lease_md(&lease);
        r = cli_resolve_manifest(c, md, m, &target, 0, &manifest, err);
        if (r < 0)
                goto out;
        r = cli_desc_children(c, md, &manifest, &ch, &n, err);
        if (r < 0)
                goto out;
        if (n == 0 || !cli_mt_is_config(ch[0].media_type)) {
                r = error_set(err, EINVAL, "manifest %s: no config", manifest.digest);
                goto out;
        }
        r = cli_content_read_json(c, md, ch[0].digest, &cfg, err);
        if (r < 0)
                goto out;
        json_t *diff_ids = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
        if (json_array_size(diff_ids) != n - 1) {
                r = error_set(err, EINVAL, "mismatched image rootfs and manifest layers");
                goto out;
        }
        sn = cli_images_resolve_snapshotter(c, g, snapshotter_flag);
        for (size_t i = 1; i < n; i++) {
                const char *diff_id = json_string_value(json_array_get(diff_ids, i - 1));
                if (!diff_id || digest_validate(diff_id, NULL) < 0) {
                        r = error_set(err, EINVAL, "invalid diff id in image config");
                        goto out;
                }
                char *next;
                if (!chain) {
                        next = xstrdup(diff_id);
                } else {
                        _cleanup_free_ char *s = xasprintf("%s %s", chain, diff_id);
                        next = digest_from_buf(s, strlen(s));
                }
                r = apply_layer(c, md, sn, &ch[i], diff_id, chain, next, err);
                free(chain);
                chain = next;
                if (r < 0)
                        goto out;
                if (r == 1) {
                        char *labels[] = {(char *)"containerd.io/uncompressed", (char *)diff_id, NULL};
                        r = cli_content_set_labels(c, md, ch[i].digest, labels, err);
                        if (r < 0)
                                goto out;
                }
        }
        if (chain) {
                _cleanup_free_ char *key = xasprintf("containerd.io/gc.ref.snapshot.%s", sn);
                char *labels[] = {key, chain, NULL};
                r = cli_content_set_labels(c, md, ch[0].digest, labels, err);
                if (r < 0)
                        goto out;
        }
        r = 0;
out:
        cli_descs_free(ch, n);
        cli_desc_clear(&manifest);
        {
                struct error *e2 = NULL;
                cli_lease_delete(c, &lease, false, &e2);
                error_free(&e2);
        }
        return r;
}

/* --- import --- */

struct import_sink {
        struct grpc_client *c;
        const struct grpc_metadata *md;
        struct cli_content_writer *w;
};

static int sink_begin(void *ud, const char *name, int64_t size, const char *expected, struct error **err)
{
        struct import_sink *s = ud;
        _cleanup_free_ char *ref = xasprintf("tar-%s", name);
        cli_content_writer_free(s->w);
        s->w = NULL;
        return cli_content_writer_open(s->c, s->md, ref, size, expected, &s->w, err);
}

static int sink_data(void *ud, const void *buf, size_t len, struct error **err)
{
        struct import_sink *s = ud;
        return cli_content_writer_write(s->w, buf, len, err);
}

static int sink_end(void *ud, const char *digest, struct error **err)
{
        struct import_sink *s = ud;
        int r = cli_content_writer_commit(s->w, digest, NULL, NULL, err);
        cli_content_writer_free(s->w);
        s->w = NULL;
        return r;
}

/* images.ChildGCLabels + SetChildrenLabels: one label per child on the parent. */
static int set_children_labels(struct grpc_client *c, const struct grpc_metadata *md, const char *parent,
                               const struct cli_desc *ch, size_t n, struct error **err)
{
        if (n == 0)
                return 0;
        _cleanup_strv_free_ char **labels = NULL;
        unsigned nm = 0, nl = 0, nc = 0, no = 0;
        for (size_t i = 0; i < n; i++) {
                const char *mt = ch[i].media_type;
                if (cli_mt_is_config(mt))
                        strv_extend(&labels, nc++ ? "containerd.io/gc.ref.content.config1"
                                                  : "containerd.io/gc.ref.content.config");
                else if (cli_mt_is_manifest(mt) || cli_mt_is_index(mt))
                        strv_extendf(&labels, "containerd.io/gc.ref.content.m.%u", nm++);
                else if (str_startswith(mt, "application/vnd.oci.image.layer.") ||
                         str_startswith(mt, "application/vnd.docker.image.rootfs."))
                        strv_extendf(&labels, "containerd.io/gc.ref.content.l.%u", nl++);
                else
                        strv_extendf(&labels, "containerd.io/gc.ref.content.%u", no++);
                strv_extend(&labels, ch[i].digest);
        }
        return cli_content_set_labels(c, md, parent, labels, err);
}

static bool desc_matches(const struct image_platform_matcher *m, const struct cli_desc *d)
{
        return !m || !d->has_platform || image_platform_match(m, &d->platform);
}

/* Labels the tree below d (platform-filtered like images.FilterPlatforms) and checks every blob exists. */
static int label_tree(struct grpc_client *c, const struct grpc_metadata *md, const struct image_platform_matcher *m,
                      const struct cli_desc *d, int depth, struct error **err)
{
        if (depth > MAX_DEPTH)
                return error_set(err, ELOOP, "%s: nesting too deep", d->digest);
        struct cli_desc *ch = NULL;
        size_t n = 0;
        int r;
        if (!cli_mt_is_index(d->media_type) && !cli_mt_is_manifest(d->media_type)) {
                r = cli_content_info(c, md, d->digest, NULL, NULL, err);
                return r < 0 ? error_wrap(err, "content %s", d->digest) : 0;
        }
        r = cli_desc_children(c, md, d, &ch, &n, err);
        if (r < 0)
                return r;
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                if (!desc_matches(m, &ch[i])) {
                        cli_desc_clear(&ch[i]);
                        continue;
                }
                if (k != i) {
                        ch[k] = ch[i];
                        memset(&ch[i], 0, sizeof(ch[i]));
                }
                k++;
        }
        r = set_children_labels(c, md, d->digest, ch, k, err);
        for (size_t i = 0; r >= 0 && i < k; i++)
                r = label_tree(c, md, m, &ch[i], depth + 1, err);
        cli_descs_free(ch, n);
        return r;
}

static Descriptor *desc_to_proto(const struct cli_desc *d, Descriptor *p)
{
        containerd__types__descriptor__init(p);
        p->media_type = d->media_type;
        p->digest = d->digest;
        p->size = d->size;
        return p;
}

/* Images.Update(target) -> NotFound -> Images.Create, as the containerd client's Import does. */
static int put_image(struct grpc_client *c, const struct grpc_metadata *md, const char *name, const struct cli_desc *d,
                     struct error **err)
{
        Descriptor pd;
        Image img = CONTAINERD__SERVICES__IMAGES__V1__IMAGE__INIT;
        img.name = (char *)name;
        img.target = desc_to_proto(d, &pd);
        ProtobufCMessage *resp = NULL;
        char *paths[] = {(char *)"target"};
        Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
        mask.n_paths = 1;
        mask.paths = paths;
        Containerd__Services__Images__V1__UpdateImageRequest ur =
            CONTAINERD__SERVICES__IMAGES__V1__UPDATE_IMAGE_REQUEST__INIT;
        ur.image = &img;
        ur.update_mask = &mask;
        int r = grpc_client_unary(c, IMAGES_PATH("Update"), md, &ur.base,
                                  &containerd__services__images__v1__update_image_response__descriptor, &resp, err);
        if (r == -ENOENT) {
                error_free(err);
                Containerd__Services__Images__V1__CreateImageRequest cr =
                    CONTAINERD__SERVICES__IMAGES__V1__CREATE_IMAGE_REQUEST__INIT;
                cr.image = &img;
                r = grpc_client_unary(c, IMAGES_PATH("Create"), md, &cr.base,
                                      &containerd__services__images__v1__create_image_response__descriptor, &resp, err);
        }
        if (r < 0)
                return r;
        protobuf_c_message_free_unpacked(resp, NULL);
        return 0;
}

/* archive.AddRefPrefix / FilterRefPrefix for org.opencontainers.image.ref.name. */
static char *translate_ref(const char *prefix, bool filter, const char *ref)
{
        if (!prefix || !prefix[0])
                return NULL;
        if (strpbrk(ref, "/:@")) {
                size_t pl = strlen(prefix);
                if (filter && !(strncmp(ref, prefix, pl) == 0 && strchr(":@", ref[pl]) && ref[pl] != '\0'))
                        return NULL;
                return xstrdup(ref);
        }
        return xasprintf("%s:%s", prefix, ref);
}

struct named {
        char *name;
        struct cli_desc d;
};

static int run_import(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        _cleanup_error_ struct error *err = NULL;
        bool digests = false, skip_digest_named = false, all_platforms = false, no_unpack = false, compress = false;
        const char *base_name = NULL, *index_name = NULL, *platform = NULL, *snapshotter = NULL, *label = NULL;
        const struct cli_flag flags[] = {
            {"snapshotter", 0, true, NULL, &snapshotter},
            {"label", 0, true, NULL, &label},
            {"base-name", 0, true, NULL, &base_name},
            {"digests", 0, false, &digests, NULL},
            {"skip-digest-for-named", 0, false, &skip_digest_named, NULL},
            {"index-name", 0, true, NULL, &index_name},
            {"all-platforms", 0, false, &all_platforms, NULL},
            {"platform", 0, true, NULL, &platform},
            {"no-unpack", 0, false, &no_unpack, NULL},
            {"compress-blobs", 0, false, &compress, NULL},
            {NULL, 0, false, NULL, NULL},
        };
        int optind_;
        int r = cli_parse_flags(g, cmd, "krill images import", flags, argc, argv, &optind_);
        if (r != 0)
                return r < 0 ? 1 : 0;
        if (optind_ >= argc)
                return cli_failf(g, "open : no such file or directory");
        const char *in = argv[optind_];
        if (skip_digest_named && !digests)
                return cli_failf(g, "--skip-digest-for-named must be specified with --digests option");

        _cleanup_(image_platform_matcher_freep) struct image_platform_matcher *m = NULL;
        bool filter_prefix = base_name && base_name[0];
        _cleanup_free_ char *prefix = NULL;
        if (filter_prefix) {
                prefix = xstrdup(base_name);
        } else {
                time_t now = time(NULL);
                struct tm tm;
                char day[32];
                localtime_r(&now, &tm);
                strftime(day, sizeof(day), "%Y-%m-%d", &tm);
                prefix = xasprintf("import-%s", day);
        }
        if (platform) {
                struct image_platform p = {0};
                if (image_platform_parse(platform, &p, &err) < 0)
                        return cli_fail(g, err);
                m = image_platform_matcher_new_only(&p);
                image_platform_clear(&p);
        } else if (!all_platforms) {
                m = cli_default_platform_matcher();
        }

        _cleanup_close_ int fd = strcmp(in, "-") == 0 ? dup(STDIN_FILENO) : open(in, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return cli_failf(g, "open %s: %s", in, strerror(errno));
        struct grpc_client *c = NULL;
        if (cli_connect(g, &c) < 0)
                return 1;

        struct cli_lease lease = {0};
        struct cli_archive_index idx = {0};
        struct named *imgs = NULL;
        size_t nimgs = 0;
        struct cli_desc *ch = NULL;
        size_t nch = 0;
        r = cli_lease_create_temporary(c, &lease, &err);
        if (r < 0)
                goto out;
        const struct grpc_metadata *md = cli_lease_md(&lease);
        struct import_sink s = {.c = c, .md = md};
        const struct cli_archive_sink sink = {sink_begin, sink_data, sink_end, &s};
        r = cli_archive_import(fd, &sink, &idx, &err);
        cli_content_writer_free(s.w);
        if (r < 0)
                goto out;
        for (size_t i = 0; i < idx.n_extra; i++) {
                r = cli_content_write_blob(c, md, idx.extra[i].ref, idx.extra[i].data, idx.extra[i].len, NULL, &err);
                if (r < 0)
                        goto out;
        }
        struct cli_desc top = {.media_type = idx.media_type, .digest = idx.digest, .size = idx.size};
        if (index_name) {
                imgs = xrealloc(imgs, (nimgs + 1) * sizeof(*imgs));
                imgs[nimgs].name = xstrdup(index_name);
                imgs[nimgs].d = cli_desc_from_proto(
                    &(Descriptor){.media_type = top.media_type, .digest = top.digest, .size = top.size});
                nimgs++;
        }
        r = cli_desc_children(c, md, &top, &ch, &nch, &err);
        if (r < 0)
                goto out;
        size_t k = 0;
        for (size_t i = 0; i < nch; i++) {
                if (!desc_matches(m, &ch[i])) {
                        cli_desc_clear(&ch[i]);
                        continue;
                }
                const char *full = cli_desc_annotation(&ch[i], "io.containerd.image.name");
                const char *refname = cli_desc_annotation(&ch[i], "org.opencontainers.image.ref.name");
                char *name = full ? xstrdup(full) : refname ? translate_ref(prefix, filter_prefix, refname) : NULL;
                if (name) {
                        imgs = xrealloc(imgs, (nimgs + 1) * sizeof(*imgs));
                        imgs[nimgs].name = name;
                        imgs[nimgs].d = cli_desc_from_proto(
                            &(Descriptor){.media_type = ch[i].media_type, .digest = ch[i].digest, .size = ch[i].size});
                        nimgs++;
                }
                if (digests && !(skip_digest_named && name)) {
                        imgs = xrealloc(imgs, (nimgs + 1) * sizeof(*imgs));
                        imgs[nimgs].name = xasprintf("%s@%s", prefix, ch[i].digest);
                        imgs[nimgs].d = cli_desc_from_proto(
                            &(Descriptor){.media_type = ch[i].media_type, .digest = ch[i].digest, .size = ch[i].size});
                        nimgs++;
                }
                if (k != i) {
                        ch[k] = ch[i];
                        memset(&ch[i], 0, sizeof(ch[i]));
                }
                k++;
        }
        r = set_children_labels(c, md, top.digest, ch, k, &err);
        for (size_t i = 0; r >= 0 && i < k; i++)
                r = label_tree(c, md, m, &ch[i], 1, &err);
        if (r < 0)
                goto out;
        for (size_t i = 0; i < nimgs; i++) {
                r = put_image(c, md, imgs[i].name, &imgs[i].d, &err);
                if (r < 0)
                        goto out;
        }
        r = cli_lease_delete(c, &lease, false, &err);
        if (r < 0)
                goto out;
        if (!no_unpack) {
                for (size_t i = 0; i < nimgs; i++) {
                        printf("unpacking %s (%s)...", imgs[i].name, imgs[i].d.digest);
                        fflush(stdout);
                        r = cli_images_unpack(c, g, imgs[i].name, imgs[i].d.media_type, imgs[i].d.digest,
                                              imgs[i].d.size, snapshotter, &err);
                        if (r < 0)
                                goto out;
                        printf("done\n");
                        fflush(stdout);
                }
        }
        r = 0;
out:
        if (lease.id) {
                struct error *e2 = NULL;
                cli_lease_delete(c, &lease, false, &e2);
                error_free(&e2);
        }
        cli_descs_free(ch, nch);
        for (size_t i = 0; i < nimgs; i++) {
                free(imgs[i].name);
                cli_desc_clear(&imgs[i].d);
        }
        free(imgs);
        cli_archive_index_done(&idx);
        grpc_client_free(c);
        if (r < 0)
                return cli_fail(g, err);
        return 0;
}

/* --- list --- */

/* image.Size: the target plus, through LimitManifests(1), one platform manifest and its config and layers. */
static int image_size(struct grpc_client *c, const struct image_platform_matcher *m, const struct cli_desc *d,
                      int depth, int64_t *size, struct error **err)
{
        if (depth > MAX_DEPTH)
                return error_set(err, ELOOP, "nesting too deep");
        if (d->size < 0)
                return error_set(err, EINVAL, "invalid size %lld in %s (%s)", (long long)d->size, d->digest,
                                 d->media_type);
        *size += d->size;
        if (cli_mt_is_manifest(d->media_type)) {
                struct cli_desc *ch = NULL;
                size_t n = 0;
                int r = cli_desc_children(c, NULL, d, &ch, &n, err);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < n; i++)
                        *size += ch[i].size;
                cli_descs_free(ch, n);
                return 0;
        }
        if (!cli_mt_is_index(d->media_type))
                return 0;
        struct cli_desc best = {0};
        int r = cli_resolve_manifest(c, NULL, m, d, depth, &best, err);
        if (r < 0)
                return r;
        /* the chosen manifest sits directly in this index unless indexes nest; count it like the walk does */
        r = image_size(c, m, &best, depth + 1, size, err);
        cli_desc_clear(&best);
        return r;
}

/* images.Platforms: platform fields of descriptors, else the configs' os/architecture. */
static void image_platforms(struct grpc_client *c, const struct cli_desc *d, int depth, char ***out, bool *failed)
{
        if (depth > MAX_DEPTH || *failed)
                return;
        if (d->has_platform) {
                strv_push(out, image_platform_format(&d->platform));
                return;
        }
        if (cli_mt_is_config(d->media_type)) {
                struct image_platform p = {0};
                if (cli_config_platform(c, NULL, d, &p, NULL) < 0) {
                        *failed = true;
                        return;
                }
                strv_push(out, image_platform_format(&p));
                image_platform_clear(&p);
                return;
        }
        struct cli_desc *ch = NULL;
        size_t n = 0;
        if (cli_desc_children(c, NULL, d, &ch, &n, NULL) < 0) {
                *failed = true;
                return;
        }
        for (size_t i = 0; i < n; i++)
                image_platforms(c, &ch[i], depth + 1, out, failed);
        cli_descs_free(ch, n);
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list_images(struct grpc_client *c, int nfilters, char **filters,
                       Containerd__Services__Images__V1__ListImagesResponse **ret, struct error **err)
{
        ProtobufCMessage *resp = NULL;
        Containerd__Services__Images__V1__ListImagesRequest req =
            CONTAINERD__SERVICES__IMAGES__V1__LIST_IMAGES_REQUEST__INIT;
        req.n_filters = (size_t)nfilters;
        req.filters = filters;
        int r = grpc_client_unary(c, IMAGES_PATH("List"), NULL, &req.base,
                                  &containerd__services__images__v1__list_images_response__descriptor, &resp, err);
        if (r < 0)
                return error_wrap(err, "failed to list images");
        *ret = (void *)resp;
        return 0;
}

static int run_list(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        _cleanup_error_ struct error *err = NULL;
        bool quiet = false;
        const struct cli_flag flags[] = {{"quiet", 'q', false, &quiet, NULL}, {NULL, 0, false, NULL, NULL}};
        struct grpc_client *c = NULL;
        Containerd__Services__Images__V1__ListImagesResponse *list = NULL;
        int optind_;
        int r = cli_begin(g, cmd, "krill images list", flags, argc, argv, &optind_, &c);
        if (r != CLI_GO)
                return r;
        r = list_images(c, argc - optind_, argv + optind_, &list, &err);
        if (r < 0) {
                grpc_client_free(c);
                return cli_fail(g, err);
        }
        if (quiet) {
                for (size_t i = 0; i < list->n_images; i++)
                        printf("%s\n", list->images[i]->name);
                protobuf_c_message_free_unpacked(&list->base, NULL);
                grpc_client_free(c);
                return 0;
        }
        _cleanup_(image_platform_matcher_freep) struct image_platform_matcher *m = cli_default_platform_matcher();
        struct cli_tabwriter *tw = cli_tabwriter_new(stdout, 1, 8, 1, ' ');
        cli_tabwriter_write(tw, "REF\tTYPE\tDIGEST\tSIZE\tPLATFORMS\tLABELS\t\n");
        for (size_t i = 0; i < list->n_images; i++) {
                Image *img = list->images[i];
                Descriptor empty = CONTAINERD__TYPES__DESCRIPTOR__INIT;
                struct cli_desc target = cli_desc_from_proto(img->target ? img->target : &empty);
                int64_t size = 0;
                struct error *e = NULL;
                if (image_size(c, m, &target, 0, &size, &e) < 0) {
                        _cleanup_free_ char *msg = error_message(e);
                        const struct log_field f[] = {{"error", msg}, {NULL, NULL}};
                        log_fields(LOG_LEVEL_ERROR, f, "failed calculating size for image %s", img->name);
                        error_free(&e);
                }
                _cleanup_strv_free_ char **plats = NULL;
                bool failed = false;
                image_platforms(c, &target, 0, &plats, &failed);
                _cleanup_free_ char *pcol = NULL;
                if (failed) {
                        const struct log_field f[] = {{"error", "failed to read content"}, {NULL, NULL}};
                        log_fields(LOG_LEVEL_ERROR, f, "failed resolving platform for image %s", img->name);
                }
                if (!failed && plats && plats[0]) {
                        strv_sort(plats);
                        strv_uniq(plats);
                        pcol = strv_join(plats, ",");
                } else {
                        pcol = xstrdup("-");
                }
                _cleanup_free_ char *lcol = NULL;
                if (img->n_labels > 0) {
                        _cleanup_free_ char **kv = xcalloc(img->n_labels + 1, sizeof(char *));
                        for (size_t j = 0; j < img->n_labels; j++)
                                kv[j] = xasprintf("%s=%s", img->labels[j]->key, img->labels[j]->value);
                        qsort(kv, img->n_labels, sizeof(char *), cmp_str);
                        lcol = strv_join(kv, ",");
                        for (size_t j = 0; j < img->n_labels; j++)
                                free(kv[j]);
                } else {
                        lcol = xstrdup("-");
                }
                char sz[64];
                cli_format_bytes(size, sz, sizeof(sz));
                cli_tabwriter_printf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", img->name, target.media_type, target.digest, sz,
                                     pcol, lcol);
                cli_desc_clear(&target);
        }
        r = cli_tabwriter_flush(tw);
        cli_tabwriter_free(tw);
        protobuf_c_message_free_unpacked(&list->base, NULL);
        grpc_client_free(c);
        return r < 0 ? 1 : 0;
}

/* --- delete, tag --- */

static int delete_image(struct grpc_client *c, const char *name, bool sync, struct error **err)
{
        ProtobufCMessage *resp = NULL;
        Containerd__Services__Images__V1__DeleteImageRequest req =
            CONTAINERD__SERVICES__IMAGES__V1__DELETE_IMAGE_REQUEST__INIT;
        req.name = (char *)name;
        req.sync = sync;
        int r = grpc_client_unary(c, IMAGES_PATH("Delete"), NULL, &req.base, &google__protobuf__empty__descriptor,
                                  &resp, err);
        if (resp)
                protobuf_c_message_free_unpacked(resp, NULL);
        return r;
}

static int run_delete(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        bool sync = false;
        const struct cli_flag flags[] = {{"sync", 0, false, &sync, NULL}, {NULL, 0, false, NULL, NULL}};
        struct grpc_client *c = NULL;
        _cleanup_free_ char *exit_err = NULL;
        int optind_;
        int r = cli_begin(g, cmd, "krill images delete", flags, argc, argv, &optind_, &c);
        if (r != CLI_GO)
                return r;
        for (int i = optind_; i < argc; i++) {
                _cleanup_error_ struct error *err = NULL;
                r = delete_image(c, argv[i], sync && i == argc - 1, &err);
                if (r == -ENOENT) {
                        log_warn("%s: image not found", argv[i]);
                        continue;
                }
                if (r < 0) {
                        _cleanup_free_ char *msg = error_message(err);
                        const struct log_field f[] = {{"error", msg}, {NULL, NULL}};
                        log_fields(LOG_LEVEL_ERROR, f, "unable to delete %s", argv[i]);
                        if (!exit_err)
                                exit_err = xasprintf("unable to delete %s: %s", argv[i], msg);
                        continue;
                }
                printf("%s\n", argv[i]);
                fflush(stdout);
        }
        grpc_client_free(c);
        if (exit_err)
                return cli_failf(g, "%s", exit_err);
        return 0;
}

static int get_image(struct grpc_client *c, const char *name, Containerd__Services__Images__V1__GetImageResponse **ret,
                     struct error **err)
{
        ProtobufCMessage *resp = NULL;
        Containerd__Services__Images__V1__GetImageRequest req =
            CONTAINERD__SERVICES__IMAGES__V1__GET_IMAGE_REQUEST__INIT;
        req.name = (char *)name;
        int r = grpc_client_unary(c, IMAGES_PATH("Get"), NULL, &req.base,
                                  &containerd__services__images__v1__get_image_response__descriptor, &resp, err);
        if (r < 0)
                return r;
        *ret = (void *)resp;
        if (!(*ret)->image || !(*ret)->image->target) {
                protobuf_c_message_free_unpacked(resp, NULL);
                return error_set(err, EINVAL, "image \"%s\" has no target", name);
        }
        return 0;
}

static int run_tag(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        _cleanup_error_ struct error *err = NULL;
        bool force = false;
        const struct cli_flag flags[] = {{"force", 0, false, &force, NULL}, {NULL, 0, false, NULL, NULL}};
        struct grpc_client *c = NULL;
        Containerd__Services__Images__V1__GetImageResponse *gr = NULL;
        struct cli_lease lease = {0};
        int optind_;
        int r = cli_parse_flags(g, cmd, "krill images tag", flags, argc, argv, &optind_);
        if (r != 0)
                return r < 0 ? 1 : 0;
        if (optind_ >= argc)
                return cli_failf(g, "please provide an image reference to tag from");
        if (argc - optind_ <= 1)
                return cli_failf(g, "please provide an image reference to tag to");
        if (cli_connect(g, &c) < 0)
                return 1;
        r = cli_lease_create_temporary(c, &lease, &err);
        if (r < 0)
                goto out;
        r = get_image(c, argv[optind_], &gr, &err);
        if (r < 0)
                goto out;
        for (int i = optind_ + 1; i < argc; i++) {
                ProtobufCMessage *resp = NULL;
                Image img = *gr->image;
                img.name = argv[i];
                img.created_at = NULL;
                img.updated_at = NULL;
                Containerd__Services__Images__V1__CreateImageRequest cr =
                    CONTAINERD__SERVICES__IMAGES__V1__CREATE_IMAGE_REQUEST__INIT;
                cr.image = &img;
                r = grpc_client_unary(c, IMAGES_PATH("Create"), cli_lease_md(&lease), &cr.base,
                                      &containerd__services__images__v1__create_image_response__descriptor, &resp,
                                      &err);
                if (r == -EEXIST && force) {
                        error_free(&err);
                        r = delete_image(c, argv[i], false, &err);
                        if (r >= 0)
                                r = grpc_client_unary(
                                    c, IMAGES_PATH("Create"), cli_lease_md(&lease), &cr.base,
                                    &containerd__services__images__v1__create_image_response__descriptor, &resp, &err);
                }
                if (r < 0)
                        goto out;
                protobuf_c_message_free_unpacked(resp, NULL);
                printf("%s\n", argv[i]);
        }
        r = 0;
out:
        if (gr)
                protobuf_c_message_free_unpacked(&gr->base, NULL);
        if (lease.id) {
                struct error *e2 = NULL;
                cli_lease_delete(c, &lease, false, &e2);
                error_free(&e2);
        }
        grpc_client_free(c);
        return r < 0 ? cli_fail(g, err) : 0;
}

static int run_unpack(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        _cleanup_error_ struct error *err = NULL;
        const char *snapshotter = NULL;
        const struct cli_flag flags[] = {{"snapshotter", 0, true, NULL, &snapshotter}, {NULL, 0, false, NULL, NULL}};
        struct grpc_client *c = NULL;
        Containerd__Services__Images__V1__GetImageResponse *gr = NULL;
        int optind_;
        int r = cli_parse_flags(g, cmd, "krill images unpack", flags, argc, argv, &optind_);
        if (r != 0)
                return r < 0 ? 1 : 0;
        if (optind_ >= argc)
                return cli_failf(g, "please provide an image reference to unpack");
        if (cli_connect(g, &c) < 0)
                return 1;
        r = get_image(c, argv[optind_], &gr, &err);
        if (r >= 0) {
                Descriptor *t = gr->image->target;
                printf("unpacking %s (%s)...", gr->image->name, t->digest);
                fflush(stdout);
                r = cli_images_unpack(c, g, gr->image->name, t->media_type, t->digest, t->size, snapshotter, &err);
                if (r >= 0)
                        printf("done\n");
                protobuf_c_message_free_unpacked(&gr->base, NULL);
        }
        grpc_client_free(c);
        return r < 0 ? cli_fail(g, err) : 0;
}

/* --- export --- */

struct export_blob {
        char *digest;
        int64_t size;
};

static void add_blob(struct export_blob **v, size_t *n, const struct cli_desc *d)
{
        for (size_t i = 0; i < *n; i++)
                if (strcmp((*v)[i].digest, d->digest) == 0)
                        return;
        *v = xrealloc(*v, (*n + 1) * sizeof(**v));
        (*v)[*n].digest = xstrdup(d->digest);
        (*v)[*n].size = d->size;
        (*n)++;
}

/* Collects the blobs below d (platform-filtered unless m is NULL); missing non-manifest blobs are an error. */
static int collect(struct grpc_client *c, const struct image_platform_matcher *m, const struct cli_desc *d, int depth,
                   struct export_blob **v, size_t *n, struct error **err)
{
        if (depth > MAX_DEPTH)
                return error_set(err, ELOOP, "nesting too deep");
        if (digest_validate(d->digest, NULL) < 0 || !str_startswith(d->digest, "sha256:"))
                return error_set(err, EINVAL, "unsupported digest %s", d->digest);
        add_blob(v, n, d);
        if (!cli_mt_is_index(d->media_type) && !cli_mt_is_manifest(d->media_type))
                return 0;
        struct cli_desc *ch = NULL;
        size_t nch = 0;
        int r = cli_desc_children(c, NULL, d, &ch, &nch, err);
        for (size_t i = 0; r >= 0 && i < nch; i++)
                if (desc_matches(m, &ch[i]))
                        r = collect(c, m, &ch[i], depth + 1, v, n, err);
        cli_descs_free(ch, nch);
        return r;
}

static int export_blob(struct grpc_client *c, struct cli_archive_writer *w, const struct export_blob *b,
                       struct error **err);

struct export_sink {
        struct cli_archive_writer *w;
};

static int run_export(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        _cleanup_error_ struct error *err = NULL;
        bool skip_manifest_json = false, skip_nondist = false, all_platforms = false;
        const char *platform = NULL;
        const struct cli_flag flags[] = {
            {"skip-manifest-json", 0, false, &skip_manifest_json, NULL},
            {"skip-non-distributable", 0, false, &skip_nondist, NULL},
            {"platform", 0, true, NULL, &platform},
            {"all-platforms", 0, false, &all_platforms, NULL},
            {NULL, 0, false, NULL, NULL},
        };
        int optind_;
        int r = cli_parse_flags(g, cmd, "krill images export", flags, argc, argv, &optind_);
        if (r != 0)
                return r < 0 ? 1 : 0;
        if (argc - optind_ < 2)
                return cli_failf(g, "please provide both an output filename and an image reference to export");
        const char *out = argv[optind_];
        _cleanup_(image_platform_matcher_freep) struct image_platform_matcher *m = NULL;
        if (platform) {
                struct image_platform p = {0};
                if (image_platform_parse(platform, &p, &err) < 0)
                        return cli_fail(g, err);
                m = image_platform_matcher_new_only(&p);
                image_platform_clear(&p);
        } else if (!all_platforms) {
                m = cli_default_platform_matcher();
        }
        struct grpc_client *c = NULL;
        if (cli_connect(g, &c) < 0)
                return 1;

        struct export_blob *blobs = NULL;
        _cleanup_free_ char *itext = NULL;
        size_t nblobs = 0;
        struct cli_archive_writer *w = NULL;
        int fd = -1;
        _cleanup_json_ json_t *index = json_object();
        _cleanup_json_ json_t *dmanifest = json_array();
        json_object_set_new(index, "schemaVersion", json_integer(2));
        json_t *manifests = json_array();
        json_object_set_new(index, "manifests", manifests);
        for (int i = optind_ + 1; i < argc; i++) {
                Containerd__Services__Images__V1__GetImageResponse *gr = NULL;
                r = get_image(c, argv[i], &gr, &err);
                if (r < 0)
                        goto done;
                struct cli_desc t = cli_desc_from_proto(gr->image->target);
                protobuf_c_message_free_unpacked(&gr->base, NULL);
                r = collect(c, m, &t, 0, &blobs, &nblobs, &err);
                if (r >= 0) {
                        json_t *jd = json_object();
                        json_object_set_new(jd, "mediaType", json_string(t.media_type));
                        json_object_set_new(jd, "digest", json_string(t.digest));
                        json_object_set_new(jd, "size", json_integer(t.size));
                        json_t *ann = json_object();
                        json_object_set_new(ann, "io.containerd.image.name", json_string(argv[i]));
                        const char *colon = strrchr(argv[i], ':');
                        if (colon && !strchr(colon, '/'))
                                json_object_set_new(ann, "org.opencontainers.image.ref.name", json_string(colon + 1));
                        json_object_set_new(jd, "annotations", ann);
                        json_array_append_new(manifests, jd);
                        if (!skip_manifest_json) {
                                /* Docker's manifest.json for the platform manifest, so `docker load` works */
                                struct cli_desc md_ = {0};
                                _cleanup_(image_platform_matcher_freep) struct image_platform_matcher *dm =
                                    cli_default_platform_matcher();
                                if (cli_resolve_manifest(c, NULL, m ? m : dm, &t, 0, &md_, NULL) == 0) {
                                        struct cli_desc *ch = NULL;
                                        size_t nch = 0;
                                        if (cli_desc_children(c, NULL, &md_, &ch, &nch, NULL) == 0 && nch > 0) {
                                                json_t *e = json_object();
                                                json_object_set_new(
                                                    e, "Config",
                                                    json_sprintf("blobs/sha256/%s", digest_hex(ch[0].digest)));
                                                json_t *tags = json_array();
                                                json_array_append_new(tags, json_string(argv[i]));
                                                json_object_set_new(e, "RepoTags", tags);
                                                json_t *ls = json_array();
                                                for (size_t k = 1; k < nch; k++)
                                                        json_array_append_new(
                                                            ls,
                                                            json_sprintf("blobs/sha256/%s", digest_hex(ch[k].digest)));
                                                json_object_set_new(e, "Layers", ls);
                                                json_array_append_new(dmanifest, e);
                                        }
                                        cli_descs_free(ch, nch);
                                }
                                cli_desc_clear(&md_);
                        }
                }
                cli_desc_clear(&t);
                if (r < 0)
                        goto done;
        }
        fd = strcmp(out, "-") == 0 ? dup(STDOUT_FILENO) : open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
                r = error_set(&err, errno, "open %s", out);
                goto done;
        }
        r = cli_archive_writer_open(fd, &w, &err);
        if (r < 0)
                goto done;
        r = cli_archive_writer_add_dir(w, "blobs/", &err);
        if (r >= 0)
                r = cli_archive_writer_add_dir(w, "blobs/sha256/", &err);
        for (size_t i = 0; r >= 0 && i < nblobs; i++)
                r = export_blob(c, w, &blobs[i], &err);
        const char *oci_layout = "{\"imageLayoutVersion\":\"1.0.0\"}";
        if (r >= 0)
                r = cli_archive_writer_add(w, "oci-layout", (int64_t)strlen(oci_layout), &err);
        if (r >= 0)
                r = cli_archive_writer_data(w, oci_layout, strlen(oci_layout), &err);
        itext = json_dump_compact(index);
        if (r >= 0)
                r = cli_archive_writer_add(w, "index.json", (int64_t)strlen(itext), &err);
        if (r >= 0)
                r = cli_archive_writer_data(w, itext, strlen(itext), &err);
        if (r >= 0 && !skip_manifest_json && json_array_size(dmanifest) > 0) {
                _cleanup_free_ char *mtext = json_dump_compact(dmanifest);
                r = cli_archive_writer_add(w, "manifest.json", (int64_t)strlen(mtext), &err);
                if (r >= 0)
                        r = cli_archive_writer_data(w, mtext, strlen(mtext), &err);
        }
        if (r >= 0)
                r = cli_archive_writer_close(w, &err);
done:
        cli_archive_writer_free(w);
        if (fd >= 0)
                close(fd);
        for (size_t i = 0; i < nblobs; i++)
                free(blobs[i].digest);
        free(blobs);
        grpc_client_free(c);
        return r < 0 ? cli_fail(g, err) : 0;
}

static int export_data(void *ud, const void *data, size_t len, struct error **err);

static int export_blob(struct grpc_client *c, struct cli_archive_writer *w, const struct export_blob *b,
                       struct error **err)
{
        _cleanup_free_ char *name = xasprintf("blobs/sha256/%s", digest_hex(b->digest));
        int64_t size = 0;
        int r = cli_content_info(c, NULL, b->digest, &size, NULL, err);
        if (r < 0)
                return error_wrap(err, "content %s", b->digest);
        if (size != b->size)
                return error_set(err, EINVAL, "content %s: size %lld, descriptor says %lld", b->digest, (long long)size,
                                 (long long)b->size);
        r = cli_archive_writer_add(w, name, size, err);
        if (r < 0)
                return r;
        /* stream through a pipe-less fd is not possible with the writer, so read in chunks via a sink */
        struct export_sink s = {w};
        return cli_content_read_sink(c, NULL, b->digest, export_data, &s, err);
}

static int export_data(void *ud, const void *data, size_t len, struct error **err)
{
        struct export_sink *s = ud;
        return cli_archive_writer_data(s->w, data, len, err);
}

/* --- check --- */

/* image.IsUnpacked: the chain ID of the config's diff IDs exists in the snapshotter. */
static int is_unpacked(struct grpc_client *c, const char *sn, const struct cli_desc *config, bool *ret,
                       struct error **err)
{
        _cleanup_json_ json_t *cfg = NULL;
        int r = cli_content_read_json(c, NULL, config->digest, &cfg, err);
        if (r < 0)
                return r;
        json_t *ids = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
        _cleanup_free_ char *chain = NULL;
        size_t i;
        json_t *v;
        json_array_foreach(ids, i, v)
        {
                const char *d = json_string_value(v);
                if (!d || digest_validate(d, NULL) < 0)
                        return error_set(err, EINVAL, "invalid diff id in image config");
                char *next;
                if (!chain) {
                        next = xstrdup(d);
                } else {
                        _cleanup_free_ char *t = xasprintf("%s %s", chain, d);
                        next = digest_from_buf(t, strlen(t));
                }
                free(chain);
                chain = next;
        }
        *ret = false;
        if (!chain)
                return 0;
        ProtobufCMessage *resp = NULL;
        Containerd__Services__Snapshots__V1__StatSnapshotRequest st =
            CONTAINERD__SERVICES__SNAPSHOTS__V1__STAT_SNAPSHOT_REQUEST__INIT;
        st.snapshotter = (char *)sn;
        st.key = chain;
        r = grpc_client_unary(c, SNAPSHOTS_PATH("Stat"), NULL, &st.base,
                              &containerd__services__snapshots__v1__stat_snapshot_response__descriptor, &resp, err);
        if (r == -ENOENT) {
                error_free(err);
                return 0;
        }
        if (r < 0)
                return r;
        protobuf_c_message_free_unpacked(resp, NULL);
        *ret = true;
        return 0;
}

static int run_check(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        _cleanup_error_ struct error *err = NULL;
        _cleanup_free_ char *exit_err = NULL;
        bool quiet = false;
        const char *snapshotter = NULL;
        const struct cli_flag flags[] = {{"quiet", 'q', false, &quiet, NULL},
                                         {"snapshotter", 0, true, NULL, &snapshotter},
                                         {NULL, 0, false, NULL, NULL}};
        struct grpc_client *c = NULL;
        Containerd__Services__Images__V1__ListImagesResponse *list = NULL;
        int optind_;
        int r = cli_begin(g, cmd, "krill images check", flags, argc, argv, &optind_, &c);
        if (r != CLI_GO)
                return r;
        r = list_images(c, argc - optind_, argv + optind_, &list, &err);
        if (r < 0) {
                grpc_client_free(c);
                return cli_fail(g, err);
        }
        _cleanup_(image_platform_matcher_freep) struct image_platform_matcher *m = cli_default_platform_matcher();
        _cleanup_free_ char *sn = cli_images_resolve_snapshotter(c, g, snapshotter);
        struct cli_tabwriter *tw = cli_tabwriter_new(stdout, 1, 8, 1, ' ');
        if (!quiet)
                cli_tabwriter_write(tw, "REF\tTYPE\tDIGEST\tSTATUS\tSIZE\tUNPACKED\t\n");
        for (size_t i = 0; i < list->n_images; i++) {
                Image *img = list->images[i];
                Descriptor empty = CONTAINERD__TYPES__DESCRIPTOR__INIT;
                struct cli_desc target = cli_desc_from_proto(img->target ? img->target : &empty);
                struct cli_desc manifest = {0};
                struct cli_desc *ch = NULL;
                size_t n = 0, present = 0;
                int64_t req_size = 0, present_size = 0;
                bool complete = true, unpacked = false;
                _cleanup_free_ char *status = NULL, *size = NULL;
                struct error *e = NULL;
                char a[32], b[32];
                r = cli_resolve_manifest(c, NULL, m, &target, 0, &manifest, &e);
                if (r >= 0)
                        r = cli_desc_children(c, NULL, &manifest, &ch, &n, &e);
                if (r == -ENOENT) {
                        /* images.Check: the manifest itself is missing */
                        error_free(&e);
                        cli_format_bytes(0, a, sizeof(a));
                        status = xstrdup("unavailable (0/?)");
                        size = xasprintf("%s/?", a);
                        complete = false;
                } else if (r < 0) {
                        _cleanup_free_ char *msg = error_message(e);
                        const struct log_field f[] = {{"error", msg}, {NULL, NULL}};
                        log_fields(LOG_LEVEL_ERROR, f, "unable to check %s", img->name);
                        if (!exit_err)
                                exit_err = xasprintf("unable to check %s: %s", img->name, msg);
                        error_free(&e);
                        status = xstrdup("error");
                        size = xstrdup("-");
                        complete = false;
                } else {
                        for (size_t j = 0; j < n; j++) {
                                req_size += ch[j].size;
                                if (cli_content_info(c, NULL, ch[j].digest, NULL, NULL, NULL) == 0) {
                                        present++;
                                        present_size += ch[j].size;
                                } else {
                                        complete = false;
                                }
                        }
                        cli_format_bytes(present_size, a, sizeof(a));
                        cli_format_bytes(req_size, b, sizeof(b));
                        status = xasprintf("%s (%zu/%zu)", complete ? "complete" : "incomplete", present, n);
                        size = xasprintf("%s/%s", a, b);
                        if (n > 0 && cli_mt_is_config(ch[0].media_type) &&
                            is_unpacked(c, sn, &ch[0], &unpacked, &e) < 0) {
                                _cleanup_free_ char *msg = error_message(e);
                                if (!exit_err)
                                        exit_err = xasprintf("unable to check unpack for %s: %s", img->name, msg);
                                error_free(&e);
                        }
                }
                if (!quiet)
                        cli_tabwriter_printf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", img->name, target.media_type,
                                             target.digest, status, size, unpacked ? "true" : "false");
                else if (complete)
                        printf("%s\n", img->name);
                cli_descs_free(ch, n);
                cli_desc_clear(&manifest);
                cli_desc_clear(&target);
        }
        if (!quiet)
                cli_tabwriter_flush(tw);
        cli_tabwriter_free(tw);
        protobuf_c_message_free_unpacked(&list->base, NULL);
        grpc_client_free(c);
        return exit_err ? cli_failf(g, "%s", exit_err) : 0;
}

/* --- label --- */

static int run_label(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        typedef Containerd__Services__Images__V1__Image__LabelsEntry Entry;
        _cleanup_error_ struct error *err = NULL;
        _cleanup_strv_free_ char **labels = NULL;
        bool replace_all = false;
        const struct cli_flag flags[] = {{"replace-all", 'r', false, &replace_all, NULL}, {NULL, 0, false, NULL, NULL}};
        struct grpc_client *c = NULL;
        ProtobufCMessage *resp = NULL;
        const char *name;
        int optind_;
        int r = cli_parse_flags(g, cmd, "krill images label", flags, argc, argv, &optind_);
        if (r != 0)
                return r < 0 ? 1 : 0;
        cli_object_with_labels(argc - optind_, argv + optind_, &name, &labels);
        if (cli_connect(g, &c) < 0)
                return 1;
        if (name[0] == '\0') {
                grpc_client_free(c);
                return cli_failf(g, "please specify an image");
        }
        size_t n = 0;
        while (labels && labels[2 * n])
                n++;
        _cleanup_free_ Entry *entries = xcalloc(n + 1, sizeof(*entries));
        _cleanup_free_ Entry **ptrs = xcalloc(n + 1, sizeof(*ptrs));
        _cleanup_strv_free_ char **paths = NULL;
        for (size_t i = 0; i < n; i++) {
                containerd__services__images__v1__image__labels_entry__init(&entries[i]);
                entries[i].key = labels[2 * i];
                entries[i].value = labels[2 * i + 1];
                ptrs[i] = &entries[i];
                if (replace_all)
                        strv_extend(&paths, "labels");
                else
                        strv_extendf(&paths, "labels.%s", labels[2 * i]);
        }
        Image img = CONTAINERD__SERVICES__IMAGES__V1__IMAGE__INIT;
        img.name = (char *)name;
        img.n_labels = n;
        img.labels = ptrs;
        Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
        mask.n_paths = n;
        mask.paths = paths;
        Containerd__Services__Images__V1__UpdateImageRequest req =
            CONTAINERD__SERVICES__IMAGES__V1__UPDATE_IMAGE_REQUEST__INIT;
        req.image = &img;
        req.update_mask = n ? &mask : NULL;
        r = grpc_client_unary(c, IMAGES_PATH("Update"), NULL, &req.base,
                              &containerd__services__images__v1__update_image_response__descriptor, &resp, &err);
        grpc_client_free(c);
        if (r < 0)
                return cli_fail(g, err);
        Image *up = ((Containerd__Services__Images__V1__UpdateImageResponse *)resp)->image;
        _cleanup_strv_free_ char **kv = NULL;
        for (size_t i = 0; up && i < up->n_labels; i++)
                strv_extendf(&kv, "%s=%s", up->labels[i]->key, up->labels[i]->value);
        strv_sort(kv);
        _cleanup_free_ char *line = kv ? strv_join(kv, ",") : xstrdup("");
        printf("%s\n", line);
        protobuf_c_message_free_unpacked(resp, NULL);
        return 0;
}

static const struct cli_command label_command = {
    .name = "label",
    .usage = "set and clear labels for an image",
    .args_usage = "[flags] <name> [<key>=<value>, ...]",
    .flags_help = "   --replace-all, -r  replace all labels\n",
    .run = run_label,
};

/* --- command table --- */

static const struct cli_command check_command = {
    .name = "check",
    .usage = "check existing images to ensure all content is available locally",
    .args_usage = "[flags] [<filter>, ...]",
    .flags_help = "   --quiet, -q          print only the ready image refs (fully downloaded and unpacked)\n"
                  "   --snapshotter value  snapshotter name. Empty value stands for the default value. "
                  "[$CONTAINERD_SNAPSHOTTER]\n",
    .run = run_check,
};

static const struct cli_command import_command = {
    .name = "import",
    .usage = "import images",
    .args_usage = "[flags] <in>",
    .flags_help =
        "   --snapshotter value            snapshotter name. Empty value stands for the default value. "
        "[$CONTAINERD_SNAPSHOTTER]\n"
        "   --label value                  labels to attach to the image\n"
        "   --base-name value              base image name for added images, when provided only images with this name "
        "prefix are imported\n"
        "   --digests                      whether to create digest images (default: false)\n"
        "   --skip-digest-for-named        skip applying --digests option to images named in the importing tar (use it "
        "in conjunction with --digests)\n"
        "   --index-name value             image name to keep index as, by default index is discarded\n"
        "   --all-platforms                imports content for all platforms, false by default\n"
        "   --platform value               imports content for specific platform\n"
        "   --no-unpack                    skip unpacking the images, false by default\n"
        "   --compress-blobs               compress uncompressed blobs when creating manifest (Docker format only)\n",
    .run = run_import,
};

static const struct cli_command export_command = {
    .name = "export",
    .usage = "export images",
    .args_usage = "[flags] <out> <image> ...",
    .flags_help = "   --skip-manifest-json      do not add Docker compatible manifest.json to archive\n"
                  "   --skip-non-distributable  do not add non-distributable blobs such as Windows layers to archive\n"
                  "   --platform value          Pull content from a specific platform\n"
                  "   --all-platforms           exports content from all platforms\n",
    .run = run_export,
};

static const struct cli_command list_command = {
    .name = "list",
    .aliases = (const char *const[]){"ls", NULL},
    .usage = "list images known to containerd",
    .args_usage = "[flags] [<filter>, ...]",
    .flags_help = "   --quiet, -q  print only the image refs\n",
    .run = run_list,
};

static const struct cli_command delete_command = {
    .name = "delete",
    .aliases = (const char *const[]){"del", "remove", "rm", NULL},
    .usage = "remove one or more images by reference",
    .args_usage = "[flags] <ref> [<ref>, ...]",
    .flags_help = "   --sync  Synchronously remove image and all associated resources\n",
    .run = run_delete,
};

static const struct cli_command tag_command = {
    .name = "tag",
    .usage = "tag an image",
    .args_usage = "[flags] <source_ref> <target_ref> [<target_ref>, ...]",
    .flags_help = "   --force  force target_ref to be created, regardless if it already exists\n",
    .run = run_tag,
};

static const struct cli_command unpack_command = {
    .name = "unpack",
    .usage = "unpack an image into a snapshotter",
    .args_usage = "[flags] <ref>",
    .flags_help = "   --snapshotter value  snapshotter name. Empty value stands for the default value.\n",
    .run = run_unpack,
};

const struct cli_command cli_images_command = {
    .name = "images",
    .aliases = (const char *const[]){"image", "i", NULL},
    .usage = "manage images",
    .subcommands =
        (const struct cli_command *const[]){&check_command, &export_command, &import_command, &list_command,
                                            &delete_command, &tag_command, &label_command, &unpack_command,
                                            &cli_images_pull_command, NULL},
};

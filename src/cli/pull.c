/* krill images pull: ctr's client-side pull. The CLI talks to the registry itself (src/image resolver on a
 * private libuv loop) and writes every blob into krilld through the content service (Content.Write with
 * `expected` and `total`, so the ingest shows in ListStatuses), sets containerd's GC labels, creates or
 * updates the image record, then unpacks through cli_images_unpack (Snapshots.Prepare, Diff.Apply,
 * Snapshots.Commit per layer). Everything is written under a temporary lease deleted at the end.
 * The pull library's image_pull writes to a local content store, so it is not used here; layers are
 * fetched one at a time (--max-concurrent-downloads is accepted but not yet honoured). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "cli/cli.h"
#include "cli/content_client.h"
#include "cli/image_client.h"
#include "cli/images.h"
#include "cli/progress.h"
#include "github.com/containerd/containerd/api/services/images/v1/images.pb-c.h"
#include "image/manifest.h"
#include "image/platform.h"
#include "image/ref.h"
#include "image/registry.h"
#include "image/resolver.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/strv.h"

#define IMAGES_PATH(m) "/containerd.services.images.v1.Images/" m

struct pull_ctx {
        uv_loop_t loop;
        struct image_resolver *res;
        struct grpc_client *c;
        const struct grpc_metadata *md;
        struct cli_progress *prog;
        char *source_key, *source_val; /* containerd.io/distribution.source.<host>, <repo> */
        int64_t fetched;
        /* one pending operation */
        bool done;
        struct error *err;
        struct image_descriptor desc;
        char *buf;
        size_t len;
        struct cli_content_writer *w;
        const char *ref;
        int64_t offset;
        struct image_descriptor unpack; /* the selected platform's manifest (set for an index) */
};

static const char *user_pass; /* --user as given */

static int creds_cb(const char *host, char **ret_user, char **ret_secret, void *userdata)
{
        (void)host;
        (void)userdata;
        if (!user_pass)
                return -ENOENT;
        const char *colon = strchr(user_pass, ':');
        if (colon) {
                *ret_user = xstrndup(user_pass, (size_t)(colon - user_pass));
                *ret_secret = xstrdup(colon + 1);
        } else {
                *ret_user = xstrdup(user_pass);
                *ret_secret = xstrdup("");
        }
        return 0;
}

static void run_until_done(struct pull_ctx *p)
{
        while (!p->done)
                uv_run(&p->loop, UV_RUN_ONCE);
}

static void on_resolved(const struct image_descriptor *desc, const struct error *err, void *ud)
{
        struct pull_ctx *p = ud;
        if (err)
                error_set_literal(&p->err, err->code, error_str(err));
        else
                image_descriptor_copy(&p->desc, desc);
        p->done = true;
}

static void on_fetched(const char *buf, size_t len, const struct error *err, void *ud)
{
        struct pull_ctx *p = ud;
        if (err) {
                if (!p->err)
                        error_set_literal(&p->err, err->code, error_str(err));
        } else if (buf) {
                p->buf = xmalloc(len + 1);
                memcpy(p->buf, buf, len);
                p->buf[len] = '\0';
                p->len = len;
        }
        p->done = true;
}

static int on_data(const void *data, size_t n, void *ud, struct error **err)
{
        struct pull_ctx *p = ud;
        int r = cli_content_writer_write(p->w, data, n, err);
        if (r < 0)
                return r;
        p->offset += (int64_t)n;
        p->fetched += (int64_t)n;
        cli_progress_update(p->prog, p->ref, "downloading", p->offset, p->desc.size);
        cli_progress_flush(p->prog);
        return 0;
}

static char *blob_ref(const char *kind, const char *digest)
{
        return xasprintf("%s-%s", kind, digest);
}

/* Fetches a small blob (manifest, index, config) into memory, verified by the resolver. */
static int fetch_small(struct pull_ctx *p, const struct image_descriptor *d, char **ret, size_t *ret_len,
                       struct error **err)
{
        p->done = false;
        p->buf = NULL;
        int r = image_resolver_fetch(p->res, d, 0, NULL, on_fetched, p, NULL, err);
        if (r < 0)
                return r;
        run_until_done(p);
        if (p->err) {
                *err = p->err;
                p->err = NULL;
                return -(*err)->code;
        }
        *ret = p->buf;
        *ret_len = p->len;
        p->buf = NULL;
        return 0;
}

/* Writes a blob into krilld (unless present) and sets labels (strv pairs, may be NULL). data NULL: stream it
 * from the registry. */
static int store_blob(struct pull_ctx *p, const char *kind, const struct image_descriptor *d, const char *data,
                      size_t len, char **labels, struct error **err)
{
        _cleanup_free_ char *ref = blob_ref(kind, d->digest);
        _cleanup_strv_free_ char **all = NULL;
        int64_t size;
        int r;

        strv_extend(&all, p->source_key);
        strv_extend(&all, p->source_val);
        for (size_t i = 0; labels && labels[i] && labels[i + 1]; i += 2) {
                strv_extend(&all, labels[i]);
                strv_extend(&all, labels[i + 1]);
        }
        r = cli_content_info(p->c, p->md, d->digest, &size, NULL, err);
        if (r == 0) {
                cli_progress_update(p->prog, ref, "exists", d->size, d->size);
                return cli_content_set_labels(p->c, p->md, d->digest, all, err);
        }
        if (r != -ENOENT)
                return r;
        error_free(err);

        r = cli_content_writer_open(p->c, p->md, ref, d->size, d->digest, &p->w, err);
        if (r < 0)
                return r;
        if (data) {
                r = cli_content_writer_write(p->w, data, len, err);
        } else {
                image_descriptor_clear(&p->desc);
                image_descriptor_copy(&p->desc, d);
                p->ref = ref;
                p->offset = 0;
                p->done = false;
                cli_progress_update(p->prog, ref, "downloading", 0, d->size);
                r = image_resolver_fetch(p->res, d, 0, on_data, on_fetched, p, NULL, err);
                if (r >= 0) {
                        run_until_done(p);
                        if (p->err) {
                                *err = p->err;
                                p->err = NULL;
                                r = -(*err)->code;
                        }
                }
        }
        if (r >= 0)
                r = cli_content_writer_commit(p->w, d->digest, all, NULL, err);
        cli_content_writer_free(p->w);
        p->w = NULL;
        if (r < 0)
                return error_wrap(err, "failed to commit %s", ref);
        cli_progress_update(p->prog, ref, "done", d->size, d->size);
        return 0;
}

static int put_image(struct grpc_client *c, const struct grpc_metadata *md, const char *name,
                     const struct image_descriptor *d, struct error **err)
{
        Containerd__Types__Descriptor pd = CONTAINERD__TYPES__DESCRIPTOR__INIT;
        pd.media_type = d->media_type;
        pd.digest = d->digest;
        pd.size = d->size;
        Containerd__Services__Images__V1__Image img = CONTAINERD__SERVICES__IMAGES__V1__IMAGE__INIT;
        img.name = (char *)name;
        img.target = &pd;
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

/* Manifest -> config + layers, with the manifest's gc.ref labels. */
static int pull_manifest(struct pull_ctx *p, const struct image_descriptor *m, struct error **err)
{
        _cleanup_free_ char *buf = NULL, *cfgbuf = NULL;
        size_t len, cfglen;
        struct image_descriptor cfg = {0}, *layers = NULL;
        size_t n = 0;
        _cleanup_strv_free_ char **labels = NULL;
        int r;

        r = fetch_small(p, m, &buf, &len, err);
        if (r < 0)
                return r;
        r = image_manifest_parse(buf, len, &cfg, &layers, &n, err);
        if (r < 0)
                return r;
        r = fetch_small(p, &cfg, &cfgbuf, &cfglen, err);
        if (r >= 0)
                r = store_blob(p, "config", &cfg, cfgbuf, cfglen, NULL, err);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                _cleanup_free_ char *ref = blob_ref("layer", layers[i].digest);
                cli_progress_update(p->prog, ref, "waiting", 0, layers[i].size);
        }
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = store_blob(p, "layer", &layers[i], NULL, 0, NULL, err);
        if (r >= 0) {
                strv_extend(&labels, "containerd.io/gc.ref.content.config");
                strv_extend(&labels, cfg.digest);
                for (size_t i = 0; i < n; i++) {
                        strv_extendf(&labels, "containerd.io/gc.ref.content.l.%zu", i);
                        strv_extend(&labels, layers[i].digest);
                }
                r = store_blob(p, "manifest", m, buf, len, labels, err);
        }
        image_descriptor_clear(&cfg);
        image_descriptors_free(layers, n);
        return r;
}

static int do_pull(struct pull_ctx *p, const char *refstr, const struct image_resolver_options *ro,
                   const char *platform, bool all_platforms, struct image_descriptor *ret_target, char **ret_name,
                   struct error **err)
{
        _cleanup_(image_platform_matcher_freep) struct image_platform_matcher *m = NULL;
        struct image_platform pl = {0};
        struct image_registry_client *rc = NULL;
        _cleanup_free_ char *buf = NULL;
        size_t len;
        int r;

        if (all_platforms) {
                m = image_platform_matcher_new_all();
        } else {
                if (platform) {
                        r = image_platform_parse(platform, &pl, err);
                        if (r < 0)
                                return r;
                } else {
                        image_platform_default(&pl);
                }
                m = image_platform_matcher_new_only(&pl);
                image_platform_clear(&pl);
        }
        r = image_registry_client_new(&p->loop, creds_cb, NULL, "krill", &rc, err);
        if (r < 0)
                return r;
        r = image_resolver_new(rc, ro, refstr, &p->res, err);
        if (r < 0)
                goto out;
        const struct image_ref *ir = image_resolver_ref(p->res);
        p->source_key = xasprintf("containerd.io/distribution.source.%s", ir->domain);
        p->source_val = xstrdup(ir->path);
        p->done = false;
        r = image_resolver_resolve(p->res, on_resolved, p, err);
        if (r < 0)
                goto out;
        run_until_done(p);
        if (p->err) {
                *err = p->err;
                p->err = NULL;
                r = error_wrap(err, "failed to resolve reference \"%s\"", image_resolver_name(p->res));
                goto out;
        }
        struct image_descriptor root = {0};
        image_descriptor_copy(&root, &p->desc);
        if (image_manifest_kind(root.media_type, NULL, 0) == IMAGE_MANIFEST_KIND_INDEX) {
                struct image_descriptor *ms = NULL;
                size_t n = 0;
                r = fetch_small(p, &root, &buf, &len, err);
                if (r >= 0)
                        r = image_index_parse(buf, len, &ms, &n, err);
                _cleanup_strv_free_ char **labels = NULL;
                size_t best = SIZE_MAX, k = 0;
                for (size_t i = 0; r >= 0 && i < n; i++) {
                        if (!ms[i].has_platform || !image_platform_match(m, &ms[i].platform))
                                continue;
                        if (!all_platforms) {
                                if (best == SIZE_MAX || image_platform_less(m, &ms[i].platform, &ms[best].platform))
                                        best = i;
                                continue;
                        }
                        r = pull_manifest(p, &ms[i], err);
                        strv_extendf(&labels, "containerd.io/gc.ref.content.m.%zu", k++);
                        strv_extend(&labels, ms[i].digest);
                }
                if (r >= 0 && !all_platforms) {
                        if (best == SIZE_MAX) {
                                r = error_set(err, ENOENT, "no match for platform in manifest");
                        } else {
                                r = pull_manifest(p, &ms[best], err);
                                image_descriptor_copy(&p->unpack, &ms[best]);
                                strv_extend(&labels, "containerd.io/gc.ref.content.m.0");
                                strv_extend(&labels, ms[best].digest);
                        }
                }
                if (r >= 0)
                        r = store_blob(p, "index", &root, buf, len, labels, err);
                image_descriptors_free(ms, n);
        } else {
                r = pull_manifest(p, &root, err);
        }
        if (r >= 0) {
                *ret_target = root;
                *ret_name = xstrdup(image_resolver_name(p->res));
        } else {
                image_descriptor_clear(&root);
        }
out:
        p->res = image_resolver_free(p->res);
        image_registry_client_free(rc);
        uv_run(&p->loop, UV_RUN_DEFAULT);
        return r;
}

static int run_pull(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        _cleanup_error_ struct error *err = NULL;
        bool plain_http = false, skip_verify = false, all_platforms = false, print_chainid = false, quiet = false;
        const char *user = NULL, *hosts_dir = NULL, *platform = NULL, *snapshotter = NULL, *max_conc = NULL;
        const struct cli_flag flags[] = {
            {"plain-http", 0, false, &plain_http, NULL},
            {"skip-verify", 'k', false, &skip_verify, NULL},
            {"user", 'u', true, NULL, &user},
            {"hosts-dir", 0, true, NULL, &hosts_dir},
            {"platform", 0, true, NULL, &platform},
            {"all-platforms", 0, false, &all_platforms, NULL},
            {"snapshotter", 0, true, NULL, &snapshotter},
            {"print-chainid", 0, false, &print_chainid, NULL},
            {"max-concurrent-downloads", 0, true, NULL, &max_conc},
            {"quiet", 'q', false, &quiet, NULL},
            {0},
        };
        int optind_, r;
        r = cli_parse_flags(g, cmd, "krill images pull", flags, argc, argv, &optind_);
        if (r != 0)
                return r < 0 ? 1 : 0;
        if (argc - optind_ != 1)
                return cli_failf(g, "please provide an image reference to pull");
        const char *ref = argv[optind_];

        _cleanup_free_ char *up = NULL;
        if (user && !strchr(user, ':') && isatty(STDIN_FILENO)) {
                char *pw = getpass("Password: ");
                up = xasprintf("%s:%s", user, pw ? pw : "");
                user = up;
        }
        user_pass = user;

        struct grpc_client *c = NULL;
        if (cli_connect(g, &c) < 0)
                return 1;
        struct cli_lease lease = {0};
        struct pull_ctx p = {0};
        struct image_descriptor target = {0};
        _cleanup_free_ char *name = NULL;
        uv_loop_init(&p.loop);
        p.c = c;
        p.prog = cli_progress_new(stdout, isatty(STDOUT_FILENO), quiet);

        r = cli_lease_create_temporary(c, &lease, &err);
        if (r >= 0) {
                p.md = cli_lease_md(&lease);
                struct image_resolver_options ro = {.hosts_dir = hosts_dir, .plain_http = plain_http,
                                                    .skip_verify = skip_verify};
                r = do_pull(&p, ref, &ro, platform, all_platforms, &target, &name, &err);
        }
        if (r >= 0) {
                cli_progress_finish(p.prog, p.fetched);
                r = put_image(c, p.md, name, &target, &err);
        }
        if (r >= 0) {
                if (!quiet) {
                        printf("unpacking %s...\n", target.digest);
                        fflush(stdout);
                }
                /* the platform pulled, not the host's: unpack from its manifest (ctr unpacks --platform's) */
                const struct image_descriptor *u = p.unpack.digest ? &p.unpack : &target;
                r = cli_images_unpack(c, g, name, u->media_type, u->digest, u->size, snapshotter, &err);
        }
        if (r >= 0 && print_chainid) {
                struct cli_image img = {0};
                r = cli_image_resolve(c, name, all_platforms ? NULL : platform, &img, &err);
                if (r >= 0)
                        printf("image chain ID: %s\n", img.chain_id);
                cli_image_done(&img);
        }
        if (r >= 0 && !quiet)
                printf("done\n");
        {
                struct error *e2 = NULL;
                cli_lease_delete(c, &lease, false, &e2);
                error_free(&e2);
        }
        (void)max_conc;
        image_descriptor_clear(&target);
        image_descriptor_clear(&p.desc);
        image_descriptor_clear(&p.unpack);
        free(p.source_key);
        free(p.source_val);
        error_free(&p.err);
        cli_progress_free(p.prog);
        uv_loop_close(&p.loop);
        grpc_client_free(c);
        if (r < 0)
                return cli_fail(g, err);
        return 0;
}

const struct cli_command cli_images_pull_command = {
    .name = "pull",
    .usage = "pull an image from a remote",
    .args_usage = "[flags] <ref>",
    .flags_help = "   --skip-verify, -k               allow connections to SSL registry without certs\n"
                  "   --plain-http                    allow connections to registries over http\n"
                  "   --user value, -u value          user[:password] Registry user and password\n"
                  "   --hosts-dir value               Custom hosts configuration directory\n"
                  "   --snapshotter value             snapshotter name. Empty value stands for the default value.\n"
                  "   --platform value                Pull content from a specific platform\n"
                  "   --all-platforms                 pull content and metadata from all platforms\n"
                  "   --print-chainid                 Print the resulting image's chain ID\n"
                  "   --max-concurrent-downloads value  Set the max concurrent downloads for each pull (default: 0)\n"
                  "   --quiet, -q                     print nothing but errors\n",
    .run = run_pull,
};

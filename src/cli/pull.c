/* krill images pull: ctr's client-side pull, driven by the same pipeline as the daemon's (src/image/pull.c):
 * the CLI talks to the registry itself and hands the pipeline a sink that writes into krilld like ctr does:
 * blobs through Content.Write (STAT gives the ingest's offset, so an interrupted pull resumes there with a
 * Range request; WRITEs are pipelined; COMMIT with the expected digest, verified by krilld), labels through
 * Content.Update, the image record through Images.Update/Create, all under a temporary lease. Layers download
 * concurrently (--max-concurrent-downloads, default 3) and each is unpacked (Snapshots.Prepare, Diff.Apply,
 * Snapshots.Commit) as soon as it and the layers below it are in, on a second connection, while later layers
 * still download. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/content_client.h"
#include "cli/image_client.h"
#include "cli/images.h"
#include "cli/progress.h"
#include "github.com/containerd/containerd/api/services/content/v1/content.pb-c.h"
#include "github.com/containerd/containerd/api/services/images/v1/images.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "image/pull.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/strv.h"

#define IMAGES_PATH(m) "/containerd.services.images.v1.Images/" m
#define PROGRESS_INTERVAL_NS (100 * 1000 * 1000)

/* ---- the gRPC sink: krilld's content and images services ---- */

struct grpc_sink {
        struct grpc_client *c;
        const struct grpc_metadata *md; /* the lease */
};

static int sink_has(void *sd, const char *digest, struct error **err)
{
        struct grpc_sink *s = sd;
        struct error *e = NULL;
        int64_t size = 0;
        int r = cli_content_info(s->c, s->md, digest, &size, NULL, &e);

        if (r == -ENOENT) {
                error_free(&e);
                return r;
        }
        if (r < 0) {
                if (err)
                        *err = e;
                else
                        error_free(&e);
        }
        return r;
}

static int sink_add_labels(void *sd, const char *digest, char *const *labels, struct error **err)
{
        struct grpc_sink *s = sd;

        return cli_content_set_labels(s->c, s->md, digest, labels, err);
}

static int sink_read(void *sd, const char *digest, int64_t size, char **ret, size_t *ret_n, struct error **err)
{
        struct grpc_sink *s = sd;

        if (size < 0 || size > (int64_t)CLI_MAX_MANIFEST)
                return error_set(err, EFBIG, "%s: too large", digest);
        return cli_content_read_all(s->c, s->md, digest, (size_t)size, ret, ret_n, err);
}

static int sink_open(void *sd, const char *ref, int64_t total, const char *expected, const char *lease,
                     void **ret_writer, int64_t *ret_offset, struct error **err)
{
        struct grpc_sink *s = sd;
        struct cli_content_writer *w = NULL;
        int r;

        (void)lease; /* in s->md */
        r = cli_content_writer_resume(s->c, s->md, ref, total, expected, &w, ret_offset, err);
        if (r == -EAGAIN && err && *err) {
                /* Unavailable is a locked ref (the pipeline waits and retries) or a lost connection (it must not) */
                _cleanup_free_ char *m = error_message(*err);
                if (!strstr(m, "locked"))
                        r = -ECONNRESET;
        }
        if (r < 0)
                return r;
        *ret_writer = w;
        return 0;
}

static int sink_write(void *writer, const void *data, size_t n, struct error **err)
{
        return cli_content_writer_write(writer, data, n, err);
}

static int sink_truncate(void *writer, struct error **err)
{
        return cli_content_writer_truncate(writer, err);
}

static int sink_commit(void *writer, int64_t size, const char *expected, char *const *labels, struct error **err)
{
        (void)size; /* the total given at open, checked by the writer and krilld */
        return cli_content_writer_commit(writer, expected, labels, NULL, err);
}

static void sink_close(void *writer)
{
        cli_content_writer_free(writer);
}

static int sink_abort(void *sd, const char *ref, struct error **err)
{
        struct grpc_sink *s = sd;
        Containerd__Services__Content__V1__AbortRequest req = CONTAINERD__SERVICES__CONTENT__V1__ABORT_REQUEST__INIT;
        ProtobufCMessage *resp = NULL;
        int r;

        req.ref = (char *)ref;
        r = grpc_client_unary(s->c, "/containerd.services.content.v1.Content/Abort", s->md, &req.base,
                              &google__protobuf__empty__descriptor, &resp, err);
        if (resp)
                protobuf_c_message_free_unpacked(resp, NULL);
        return r;
}

static int sink_image_put(void *sd, const char *name, const struct image_descriptor *d, struct error **err)
{
        struct grpc_sink *s = sd;
        Containerd__Types__Descriptor pd = CONTAINERD__TYPES__DESCRIPTOR__INIT;
        Containerd__Services__Images__V1__Image img = CONTAINERD__SERVICES__IMAGES__V1__IMAGE__INIT;
        Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
        Containerd__Services__Images__V1__UpdateImageRequest ur =
            CONTAINERD__SERVICES__IMAGES__V1__UPDATE_IMAGE_REQUEST__INIT;
        char *paths[] = {(char *)"target"};
        ProtobufCMessage *resp = NULL;
        int r;

        pd.media_type = d->media_type;
        pd.digest = d->digest;
        pd.size = d->size;
        img.name = (char *)name;
        img.target = &pd;
        mask.n_paths = 1;
        mask.paths = paths;
        ur.image = &img;
        ur.update_mask = &mask;
        r = grpc_client_unary(s->c, IMAGES_PATH("Update"), s->md, &ur.base,
                              &containerd__services__images__v1__update_image_response__descriptor, &resp, err);
        if (r == -ENOENT) {
                Containerd__Services__Images__V1__CreateImageRequest cr =
                    CONTAINERD__SERVICES__IMAGES__V1__CREATE_IMAGE_REQUEST__INIT;
                error_free(err);
                cr.image = &img;
                r = grpc_client_unary(s->c, IMAGES_PATH("Create"), s->md, &cr.base,
                                      &containerd__services__images__v1__create_image_response__descriptor, &resp, err);
        }
        if (r < 0)
                return r;
        protobuf_c_message_free_unpacked(resp, NULL);
        return 0;
}

static const struct image_pull_sink grpc_sink_ops = {
    .has = sink_has,
    .add_labels = sink_add_labels,
    .read = sink_read,
    .open = sink_open,
    .write = sink_write,
    .truncate = sink_truncate,
    .commit = sink_commit,
    .close = sink_close,
    .abort = sink_abort,
    .image_put = sink_image_put,
};

/* ---- unpack: on the pipeline's unpack thread, over a connection of its own ---- */

struct unpack_ctx {
        struct grpc_client *c;
        const char *snapshotter;
        size_t done; /* layers already unpacked by earlier calls (the pipeline passes growing prefixes) */
};

static int unpack_hook(const struct image_pull_layer *l, size_t n, const char *lease, char **ret_chain, void *ud,
                       struct error **err)
{
        struct unpack_ctx *u = ud;
        const struct grpc_metadata md[] = {{"containerd-lease", lease}, {NULL, NULL}};
        _cleanup_strv_free_ char **layers = strv_new_empty();
        _cleanup_strv_free_ char **diff_ids = strv_new_empty();
        int r;

        for (size_t i = 0; i < n; i++) {
                int64_t size = 0;
                if (i >= u->done) {
                        r = cli_content_info(u->c, md, l[i].digest, &size, NULL, err);
                        if (r < 0)
                                return r;
                }
                strv_extendf(&layers, "%s %s %lld", l[i].media_type, l[i].digest, (long long)size);
                strv_extend(&diff_ids, l[i].diff_id);
        }
        r = cli_image_unpack_layers(u->c, u->snapshotter, lease, layers, diff_ids, n, u->done, ret_chain, err);
        if (r >= 0)
                u->done = n;
        return r;
}

/* ---- progress ---- */

struct progress_ctx {
        struct cli_progress *p;
        struct timespec last;
};

static void on_progress(const char *ref, const struct image_descriptor *d, enum image_pull_status st, int64_t off,
                        void *ud)
{
        static const char *const names[] = {
            [IMAGE_PULL_WAITING] = "waiting",     [IMAGE_PULL_DOWNLOADING] = "downloading",
            [IMAGE_PULL_EXISTS] = "exists",       [IMAGE_PULL_DONE] = "done",
            [IMAGE_PULL_UNPACKING] = "unpacking", [IMAGE_PULL_UNPACKED] = "unpacked",
        };
        struct progress_ctx *pc = ud;
        struct timespec now;
        int64_t ns;

        cli_progress_update(pc->p, ref, (size_t)st < ELEMENTSOF(names) ? names[st] : "?", off, d->size);
        /* a redraw per received chunk would cost more than the download: at most every 100 ms, and at every
         * status change */
        clock_gettime(CLOCK_MONOTONIC, &now);
        ns = (int64_t)(now.tv_sec - pc->last.tv_sec) * 1000000000LL + (now.tv_nsec - pc->last.tv_nsec);
        if (st != IMAGE_PULL_DOWNLOADING || ns >= PROGRESS_INTERVAL_NS) {
                cli_progress_flush(pc->p);
                pc->last = now;
        }
}

/* ---- command ---- */

static const char *user_pass; /* --user as given */

static int creds_cb(const char *host, char **ret_user, char **ret_secret, void *userdata)
{
        const char *colon;

        (void)host;
        (void)userdata;
        if (!user_pass)
                return -ENOENT;
        colon = strchr(user_pass, ':');
        if (colon) {
                *ret_user = xstrndup(user_pass, (size_t)(colon - user_pass));
                *ret_secret = xstrdup(colon + 1);
        } else {
                *ret_user = xstrdup(user_pass);
                *ret_secret = xstrdup("");
        }
        return 0;
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
        struct grpc_client *c = NULL, *c2 = NULL;
        struct cli_lease lease = {0};
        struct image_pull_result res = {0};
        _cleanup_free_ char *up = NULL, *sn = NULL;
        unsigned conc = 0;
        int optind_, r;

        r = cli_parse_flags(g, cmd, "krill images pull", flags, argc, argv, &optind_);
        if (r != 0)
                return r < 0 ? 1 : 0;
        if (argc - optind_ != 1)
                return cli_failf(g, "please provide an image reference to pull");
        if (max_conc) {
                char *end = NULL;
                long v = strtol(max_conc, &end, 10);
                if (!end || *end || v < 0 || v > 1024)
                        return cli_failf(g, "invalid value \"%s\" for flag -max-concurrent-downloads", max_conc);
                conc = (unsigned)v;
        }
        if (user && !strchr(user, ':') && isatty(STDIN_FILENO)) {
                char *pw = getpass("Password: ");
                up = xasprintf("%s:%s", user, pw ? pw : "");
                user = up;
        }
        user_pass = user;

        if (cli_connect(g, &c) < 0)
                return 1;
        /* the unpack steps run on their own thread: a client is single-threaded, so they get a connection */
        if (cli_connect(g, &c2) < 0) {
                grpc_client_free(c);
                return 1;
        }
        sn = cli_images_resolve_snapshotter(c, g, snapshotter);
        r = cli_lease_create_temporary(c, &lease, &err);
        if (r >= 0) {
                struct grpc_sink sink = {.c = c, .md = cli_lease_md(&lease)};
                struct unpack_ctx u = {.c = c2, .snapshotter = sn};
                struct progress_ctx pc = {.p = cli_progress_new(stdout, isatty(STDOUT_FILENO), quiet)};
                struct image_pull_options o = {
                    .ref = argv[optind_],
                    .ns = g->namespace_,
                    .sink = &grpc_sink_ops,
                    .sink_data = &sink,
                    .lease = lease.id,
                    .resolver = {.hosts_dir = hosts_dir, .plain_http = plain_http, .skip_verify = skip_verify},
                    .creds = creds_cb,
                    .platform = all_platforms ? NULL : platform,
                    .all_platforms = all_platforms,
                    .max_concurrent_downloads = conc,
                    .unpack = unpack_hook,
                    .unpack_userdata = &u,
                    .snapshotter = sn,
                    .progress = on_progress,
                    .progress_userdata = &pc,
                    .user_agent = "krill",
                };
                r = image_pull(&o, &res, &err);
                if (r >= 0)
                        cli_progress_finish(pc.p, res.bytes_fetched);
                else
                        cli_progress_flush(pc.p);
                cli_progress_free(pc.p);
        }
        if (r >= 0 && print_chainid)
                printf("image chain ID: %s\n", res.chain_id ? res.chain_id : "");
        if (r >= 0 && !quiet)
                printf("done\n");
        if (lease.id) {
                struct error *e2 = NULL;
                cli_lease_delete(c, &lease, false, &e2);
                error_free(&e2);
        }
        image_pull_result_clear(&res);
        grpc_client_free(c2);
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
                  "   --max-concurrent-downloads value  Set the max concurrent downloads for each pull (default: 3)\n"
                  "   --quiet, -q                     print nothing but errors\n",
    .run = run_pull,
};

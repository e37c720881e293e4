/* krill-image-pull-tool: drives image_pull from the command line for the integration tests (the CLI and
 * daemon wiring belong to other modules). Layout under --root: content/, meta/, rootfs/ (all layers applied
 * in order into one directory, with a marker per chain ID so that a re-run skips applied layers).
 * Prints one JSON line on success; `error: <message>` on stderr and exit status 1 on failure. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "image/apply.h"
#include "image/pull.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/digest.h"

struct tool {
        char *root;
        char *rootfs;
        struct content_store *cs;
        char *user, *pass;
        bool verbose;
};

static int unpack(const struct image_pull_layer *layers, size_t n, const char *lease _unused_, char **ret_chain,
                  void *ud, struct error **err)
{
        struct tool *t = ud;
        _cleanup_free_ char *chain = NULL;

        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *next = NULL, *mark = NULL;

                if (!chain) {
                        next = xstrdup(layers[i].diff_id);
                } else {
                        _cleanup_free_ char *s = xasprintf("%s %s", chain, layers[i].diff_id);
                        next = digest_from_buf(s, strlen(s));
                }
                mark = xasprintf("%s/chain-%s", t->root, digest_hex(next));
                if (access(mark, F_OK) < 0) {
                        _cleanup_close_ int fd = -1;
                        int64_t size;
                        struct image_apply_result res;
                        struct image_apply_options o = {.no_same_owner = geteuid() != 0};
                        int k = content_blob_open(t->cs, layers[i].digest, &fd, &size, err);
                        if (k < 0)
                                return k;
                        k = image_apply_layer_path(t->rootfs, fd, &o, &res, err);
                        if (k < 0)
                                return k;
                        if (strcmp(res.diff_id, layers[i].diff_id) != 0)
                                return error_set(err, EINVAL, "wrong diff id calculated on extraction \"%s\"",
                                                 layers[i].diff_id);
                        close(open(mark, O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
                }
                free(chain);
                chain = TAKE_PTR(next);
        }
        *ret_chain = TAKE_PTR(chain);
        return 0;
}

static int creds(const char *host _unused_, char **u, char **p, void *ud)
{
        struct tool *t = ud;

        if (!t->user)
                return -ENOENT;
        *u = xstrdup(t->user);
        *p = xstrdup(t->pass);
        return 0;
}

static void on_progress(const char *ref, const struct image_descriptor *d, enum image_pull_status st, int64_t off,
                        void *ud)
{
        static const char *const names[] = {"waiting", "downloading", "exists", "done", "unpacking", "unpacked"};
        struct tool *t = ud;

        if (t->verbose || st != IMAGE_PULL_DOWNLOADING)
                fprintf(stderr, "%s %s %lld/%lld\n", names[st], ref, (long long)off, (long long)d->size);
}

int main(int argc, char **argv)
{
        static const struct option lo[] = {
            {"root", required_argument, NULL, 'r'},
            {"ns", required_argument, NULL, 'n'},
            {"plain-http", no_argument, NULL, 'H'},
            {"skip-verify", no_argument, NULL, 'k'},
            {"hosts-dir", required_argument, NULL, 'd'},
            {"user", required_argument, NULL, 'u'},
            {"platform", required_argument, NULL, 'p'},
            {"all-platforms", no_argument, NULL, 'a'},
            {"no-unpack", no_argument, NULL, 'N'},
            {"concurrency", required_argument, NULL, 'c'},
            {"lease", required_argument, NULL, 'l'},
            {"verbose", no_argument, NULL, 'v'},
            {NULL, 0, NULL, 0},
        };
        struct tool t = {0};
        struct image_pull_options o = {.ns = "default", .snapshotter = "overlayfs"};
        struct image_pull_result res = {0};
        struct metadata_db *db = NULL;
        struct error *err = NULL;
        _cleanup_free_ char *md = NULL, *cd = NULL;
        bool no_unpack = false;
        int c, k;

        while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
                switch (c) {
                case 'r':
                        t.root = optarg;
                        break;
                case 'n':
                        o.ns = optarg;
                        break;
                case 'H':
                        o.resolver.plain_http = true;
                        break;
                case 'k':
                        o.resolver.skip_verify = true;
                        break;
                case 'd':
                        o.resolver.hosts_dir = optarg;
                        break;
                case 'u': {
                        char *colon = strchr(optarg, ':');
                        t.user = colon ? xstrndup(optarg, (size_t)(colon - optarg)) : xstrdup(optarg);
                        t.pass = xstrdup(colon ? colon + 1 : "");
                        break;
                }
                case 'p':
                        o.platform = optarg;
                        break;
                case 'a':
                        o.all_platforms = true;
                        break;
                case 'N':
                        no_unpack = true;
                        break;
                case 'c':
                        o.max_concurrent_downloads = (unsigned)atoi(optarg);
                        break;
                case 'l':
                        o.lease = optarg;
                        break;
                case 'v':
                        t.verbose = true;
                        break;
                default:
                        return 2;
                }
        }
        if (!t.root || optind != argc - 1) {
                fprintf(stderr, "usage: %s --root DIR [options] REF\n", argv[0]);
                return 2;
        }
        md = xasprintf("%s/meta", t.root);
        cd = xasprintf("%s/content", t.root);
        t.rootfs = xasprintf("%s/rootfs", t.root);
        (void)mkdir(t.root, 0755);
        (void)mkdir(t.rootfs, 0755);
        if (metadata_db_open(md, &db, &err) < 0 || content_store_open(cd, &t.cs, &err) < 0) {
                fprintf(stderr, "error: %s\n", error_str(err));
                return 1;
        }
        o.ref = argv[optind];
        o.db = db;
        o.cs = t.cs;
        o.creds = creds;
        o.creds_userdata = &t;
        o.progress = on_progress;
        o.progress_userdata = &t;
        if (!no_unpack) {
                o.unpack = unpack;
                o.unpack_userdata = &t;
        }
        k = image_pull(&o, &res, &err);
        if (k < 0) {
                fprintf(stderr, "error: %s\n", error_str(err));
        } else {
                json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:s?, s:I}", "name", res.name, "digest", res.target.digest,
                                      "media_type", res.target.media_type, "size", (json_int_t)res.target.size,
                                      "chain_id", res.chain_id, "bytes", (json_int_t)res.bytes_fetched);
                char *s = json_dumps(j, JSON_COMPACT);
                printf("%s\n", s);
                free(s);
                json_decref(j);
        }
        error_free(&err);
        image_pull_result_clear(&res);
        content_store_free(t.cs);
        metadata_db_close(db);
        free(t.rootfs);
        free(t.user);
        free(t.pass);
        return k < 0 ? 1 : 0;
}

/* Resolver: registry hosts for a reference (containerd's hosts.toml `config_path` layout, or the simple
 * plain-http/skip-verify options), resolution of a tag or digest to a descriptor (HEAD, then GET when the
 * registry does not tell the digest), and fetches of manifests and blobs, each tried over the hosts in
 * order with fallback to the next host on failure (containerd remotes/docker resolver.go + config/hosts.go).
 *
 * hosts.toml (<hosts_dir>/<host[:port]>/hosts.toml, else <hosts_dir>/_default/hosts.toml):
 *   server = "https://registry.example"          (the upstream, tried last)
 *   [host."http://mirror:5000"]                   (mirrors, tried first, in file order)
 *     capabilities = ["pull", "resolve"]          (default pull, resolve, push)
 *     skip_verify = true
 *     ca = "/path/ca.pem"  or ["/a.pem"]          (first one is used)
 *     client = "/cert.pem" or [["/cert.pem", "/key.pem"]]
 *     override_path = true                        (path is the API root instead of <path>/v2)
 * An http:// scheme means plain HTTP. Relative ca/client paths are relative to the hosts.toml directory.
 *
 * Loop thread only (see registry.h); the host configuration read is a small synchronous file read. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "image/manifest.h"
#include "image/ref.h"
#include "image/registry.h"

enum {
        IMAGE_HOST_CAP_PULL = 1 << 0,
        IMAGE_HOST_CAP_RESOLVE = 1 << 1,
        IMAGE_HOST_CAP_PUSH = 1 << 2,
};

struct image_host {
        char *scheme; /* "https" or "http" */
        char *host;   /* "registry-1.docker.io", "127.0.0.1:5000" */
        char *path;   /* API root, "/v2" */
        unsigned caps;
        bool skip_verify;
        char *ca_file, *client_cert, *client_key;
};

struct image_resolver_options {
        const char *hosts_dir; /* NULL: no hosts.toml */
        bool plain_http;       /* default host over http:// */
        bool skip_verify;      /* default host without TLS verification */
};

void image_hosts_free(struct image_host *h, size_t n);
/* Hosts for a registry domain ("docker.io" -> registry-1.docker.io). -EINVAL for a malformed hosts.toml
 * (with the file and key in the message). */
int image_hosts_config(const struct image_resolver_options *o, const char *domain, struct image_host **ret,
                       size_t *ret_n, struct error **err);

struct image_resolver;

/* client borrowed (must outlive the resolver). ref is parsed with image_ref_parse_docker. */
int image_resolver_new(struct image_registry_client *client, const struct image_resolver_options *o, const char *ref,
                       struct image_resolver **ret, struct error **err);
struct image_resolver *image_resolver_free(struct image_resolver *r);
const struct image_ref *image_resolver_ref(const struct image_resolver *r);
/* Normalised reference string ("docker.io/library/busybox:latest"). */
const char *image_resolver_name(const struct image_resolver *r);

/* Resolution result: desc (borrowed for the call) or err
 * (`docker.io/library/x:1: not found`, `unexpected status from HEAD request to URL: 401 Unauthorized`, ...). */
typedef void (*image_resolve_fn)(const struct image_descriptor *desc, const struct error *err, void *userdata);
int image_resolver_resolve(struct image_resolver *r, image_resolve_fn cb, void *userdata, struct error **err);

/* Fetch of a manifest or blob by descriptor. With on_data NULL the body is buffered (bounded by
 * IMAGE_MANIFEST_MAX_BYTES) and verified against desc (size and sha256) before on_done gets it; with on_data
 * the body streams from offset (Range) and the caller verifies. on_done's buf/len are only for buffered
 * fetches; err on failure (the last host's error). */
typedef void (*image_fetch_done_fn)(const char *buf, size_t len, const struct error *err, void *userdata);
struct image_fetch;
/* *ret_fetch (may be NULL) is valid until on_done returns. The data callback must not return an error
 * it wants retried on another host: a data callback error ends the fetch. */
int image_resolver_fetch(struct image_resolver *r, const struct image_descriptor *desc, int64_t offset,
                         image_registry_data_fn on_data, image_fetch_done_fn on_done, void *userdata,
                         struct image_fetch **ret_fetch, struct error **err);
/* on_done runs later with ECANCELED. */
void image_fetch_cancel(struct image_fetch *f);
static inline void image_resolver_freep(struct image_resolver **r)
{
        image_resolver_free(*r);
}

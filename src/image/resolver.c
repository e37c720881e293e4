#include "image/resolver.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/strv.h"
#include "util/toml.h"

/* Copies e into *dst (first error wins) without error_str's per-thread buffer, which a pull thread would
 * leak when it exits. */
static void copy_err(struct error **dst, const struct error *e)
{
        _cleanup_free_ char *m = error_message(e);

        error_set_literal(dst, e->code, m);
}

struct image_resolver {
        struct image_registry_client *client;
        struct image_ref ref;
        char *name;  /* normalised string */
        char *scope; /* "repository:<path>:pull" */
        struct image_host *hosts;
        size_t n_hosts;
};

void image_hosts_free(struct image_host *h, size_t n)
{
        for (size_t i = 0; h && i < n; i++) {
                free(h[i].scheme);
                free(h[i].host);
                free(h[i].path);
                free(h[i].ca_file);
                free(h[i].client_cert);
                free(h[i].client_key);
        }
        free(h);
}

static void host_push(struct image_host **v, size_t *n, const char *scheme, const char *host, const char *path,
                      unsigned caps)
{
        struct image_host *h;

        *v = xrealloc(*v, (*n + 1) * sizeof(**v));
        h = &(*v)[(*n)++];
        *h = (struct image_host){.scheme = xstrdup(scheme), .host = xstrdup(host), .path = xstrdup(path), .caps = caps};
}

static const char *default_host(const char *domain)
{
        return !strcmp(domain, "docker.io") ? "registry-1.docker.io" : domain;
}

static char *abs_path(const char *dir, const char *p)
{
        return p[0] == '/' ? xstrdup(p) : xasprintf("%s/%s", dir, p);
}

/* Splits "scheme://host[/path]"; -EINVAL unless scheme is http or https and host non-empty. */
static int split_url(const char *url, char **scheme, char **host, char **path, struct error **err)
{
        const char *sep = strstr(url, "://"), *h, *sl;

        if (!sep || !((sep - url == 4 && !strncmp(url, "http", 4)) || (sep - url == 5 && !strncmp(url, "https", 5))))
                return error_set(err, EINVAL, "unsupported scheme in host URL \"%s\"", url);
        h = sep + 3;
        sl = strchr(h, '/');
        if ((sl ? (size_t)(sl - h) : strlen(h)) == 0)
                return error_set(err, EINVAL, "no host in URL \"%s\"", url);
        *scheme = xstrndup(url, (size_t)(sep - url));
        *host = sl ? xstrndup(h, (size_t)(sl - h)) : xstrdup(h);
        *path = xstrdup(sl ?: "");
        return 0;
}

static char *api_path(const char *path, bool override)
{
        size_t n = strlen(path);

        while (n > 0 && path[n - 1] == '/')
                n--;
        if (override)
                return xstrndup(path, n);
        if (n >= 3 && !strncmp(path + n - 3, "/v2", 3))
                return xstrndup(path, n);
        return xasprintf("%.*s/v2", (int)n, path);
}

static int parse_host_table(struct toml_value *t, const char *dir, const char *url, struct image_host *h,
                            struct error **err)
{
        struct toml_value *v;
        _cleanup_free_ char *scheme = NULL, *host = NULL, *path = NULL;
        bool override = false;
        int k;

        k = split_url(url, &scheme, &host, &path, err);
        if (k < 0)
                return k;
        *h = (struct image_host){.caps = IMAGE_HOST_CAP_PULL | IMAGE_HOST_CAP_RESOLVE | IMAGE_HOST_CAP_PUSH};
        if (t) {
                if ((v = toml_table_get(t, "capabilities"))) {
                        if (toml_type(v) != TOML_ARRAY)
                                return error_set(err, EINVAL, "capabilities must be an array");
                        h->caps = 0;
                        for (size_t i = 0; i < toml_array_size(v); i++) {
                                const char *c = toml_string(toml_array_get(v, i));
                                if (!c)
                                        return error_set(err, EINVAL, "capabilities must be strings");
                                if (!strcmp(c, "pull"))
                                        h->caps |= IMAGE_HOST_CAP_PULL;
                                else if (!strcmp(c, "resolve"))
                                        h->caps |= IMAGE_HOST_CAP_RESOLVE;
                                else if (!strcmp(c, "push"))
                                        h->caps |= IMAGE_HOST_CAP_PUSH;
                                else
                                        return error_set(err, EINVAL, "unknown capability %s", c);
                        }
                }
                if ((v = toml_table_get(t, "skip_verify")))
                        h->skip_verify = toml_boolean(v);
                if ((v = toml_table_get(t, "override_path")))
                        override = toml_boolean(v);
                if ((v = toml_table_get(t, "ca"))) {
                        const char *ca =
                            toml_type(v) == TOML_ARRAY ? toml_string(toml_array_get(v, 0)) : toml_string(v);
                        if (ca)
                                h->ca_file = abs_path(dir, ca);
                }
                if ((v = toml_table_get(t, "client"))) {
                        const char *cert = NULL, *key = NULL;
                        if (toml_type(v) == TOML_STRING) {
                                cert = toml_string(v);
                        } else if (toml_type(v) == TOML_ARRAY && toml_array_size(v) > 0) {
                                struct toml_value *e = toml_array_get(v, 0);
                                if (toml_type(e) == TOML_STRING) {
                                        cert = toml_string(e);
                                } else if (toml_type(e) == TOML_ARRAY) {
                                        cert = toml_string(toml_array_get(e, 0));
                                        key = toml_array_size(e) > 1 ? toml_string(toml_array_get(e, 1)) : NULL;
                                }
                        }
                        if (cert)
                                h->client_cert = abs_path(dir, cert);
                        if (key)
                                h->client_key = abs_path(dir, key);
                }
        }
        h->scheme = TAKE_PTR(scheme);
        h->host = TAKE_PTR(host);
        h->path = api_path(path, override);
        return 0;
}

static int load_hosts_toml(const char *dir, const char *domain, const struct image_resolver_options *o,
                           struct image_host **ret, size_t *ret_n, bool *found, struct error **err)
{
        _cleanup_(toml_freep) struct toml_value *root = NULL;
        _cleanup_free_ char *hostdir = xasprintf("%s/%s", dir, domain);
        _cleanup_free_ char *file = NULL;
        struct image_host *v = NULL;
        size_t n = 0;
        struct toml_value *hosts, *server;
        int k;

        *found = false;
        file = xasprintf("%s/hosts.toml", hostdir);
        if (access(file, F_OK) < 0) {
                free(hostdir);
                hostdir = xasprintf("%s/_default", dir);
                free(file);
                file = xasprintf("%s/hosts.toml", hostdir);
                if (access(file, F_OK) < 0)
                        return 0;
        }
        *found = true;
        k = toml_parse_file(AT_FDCWD, file, &root, err);
        if (k < 0)
                return error_wrap(err, "failed to load hosts from %s", file);
        hosts = toml_table_get(root, "host");
        for (size_t i = 0; hosts && toml_type(hosts) == TOML_TABLE && i < toml_table_size(hosts); i++) {
                struct image_host h;

                k = parse_host_table(toml_table_value(hosts, i), hostdir, toml_table_key(hosts, i), &h, err);
                if (k < 0) {
                        image_hosts_free(v, n);
                        return error_wrap(err, "%s: host \"%s\"", file, toml_table_key(hosts, i));
                }
                v = xrealloc(v, (n + 1) * sizeof(*v));
                v[n++] = h;
        }
        server = toml_table_get(root, "server");
        if (server && toml_string(server)) {
                struct image_host h;

                /* the top-level table carries the server's own settings */
                k = parse_host_table(root, hostdir, toml_string(server), &h, err);
                if (k < 0) {
                        image_hosts_free(v, n);
                        return error_wrap(err, "%s: server", file);
                }
                if (!toml_table_get(root, "capabilities"))
                        h.caps = IMAGE_HOST_CAP_PULL | IMAGE_HOST_CAP_RESOLVE | IMAGE_HOST_CAP_PUSH;
                v = xrealloc(v, (n + 1) * sizeof(*v));
                v[n++] = h;
        } else {
                /* no server: the default upstream comes last, as containerd does */
                host_push(&v, &n, o->plain_http ? "http" : "https", default_host(domain), "/v2",
                          IMAGE_HOST_CAP_PULL | IMAGE_HOST_CAP_RESOLVE | IMAGE_HOST_CAP_PUSH);
                v[n - 1].skip_verify = o->skip_verify;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

int image_hosts_config(const struct image_resolver_options *o, const char *domain, struct image_host **ret,
                       size_t *ret_n, struct error **err)
{
        struct image_host *v = NULL;
        size_t n = 0;
        bool found = false;
        int k;

        if (o->hosts_dir && *o->hosts_dir) {
                k = load_hosts_toml(o->hosts_dir, domain, o, &v, &n, &found, err);
                if (k < 0)
                        return k;
        }
        if (!found) {
                host_push(&v, &n, o->plain_http ? "http" : "https", default_host(domain), "/v2",
                          IMAGE_HOST_CAP_PULL | IMAGE_HOST_CAP_RESOLVE | IMAGE_HOST_CAP_PUSH);
                v[0].skip_verify = o->skip_verify;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

int image_resolver_new(struct image_registry_client *client, const struct image_resolver_options *o, const char *ref,
                       struct image_resolver **ret, struct error **err)
{
        struct image_resolver *r = xcalloc(1, sizeof(*r));
        int k;

        r->client = client;
        k = image_ref_parse_docker(ref, &r->ref, err);
        if (k < 0)
                goto fail;
        k = image_hosts_config(o, r->ref.domain, &r->hosts, &r->n_hosts, err);
        if (k < 0)
                goto fail;
        r->name = image_ref_string(&r->ref);
        r->scope = xasprintf("repository:%s:pull", r->ref.path);
        *ret = r;
        return 0;
fail:
        image_resolver_free(r);
        return k;
}

struct image_resolver *image_resolver_free(struct image_resolver *r)
{
        if (!r)
                return NULL;
        image_ref_clear(&r->ref);
        image_hosts_free(r->hosts, r->n_hosts);
        free(r->name);
        free(r->scope);
        free(r);
        return NULL;
}

const struct image_ref *image_resolver_ref(const struct image_resolver *r)
{
        return &r->ref;
}

const char *image_resolver_name(const struct image_resolver *r)
{
        return r->name;
}

static char *host_url(const struct image_resolver *r, const struct image_host *h, const char *kind, const char *obj)
{
        return xasprintf("%s://%s%s/%s/%s/%s", h->scheme, h->host, h->path, r->ref.path, kind, obj);
}

static void spec_init(struct image_registry_request_spec *s, const struct image_resolver *r, const struct image_host *h)
{
        *s = (struct image_registry_request_spec){0};
        s->host = h->host;
        s->scope = r->scope;
        s->tls = (struct image_registry_tls){h->skip_verify, h->ca_file, h->client_cert, h->client_key};
}

/* ---- resolve ---- */

struct resolve_op {
        struct image_resolver *r;
        image_resolve_fn cb;
        void *ud;
        size_t host; /* index being tried */
        bool get;    /* second phase: GET because HEAD lacked the digest */
        bool blobs;  /* digest refs fall back to /blobs/ as containerd does */
        struct error *first_err;
};

static void resolve_next(struct resolve_op *op);

static void resolve_finish(struct resolve_op *op, const struct image_descriptor *d, const struct error *e)
{
        op->cb(d, e, op->ud);
        error_free(&op->first_err);
        free(op);
}

static void resolve_done(struct image_registry_request *req _unused_, const struct image_registry_response *resp,
                         const struct error *e, void *ud)
{
        struct resolve_op *op = ud;
        const char *method = op->get ? "GET" : "HEAD";

        if (e) {
                if (!op->first_err)
                        copy_err(&op->first_err, e);
                op->get = false;
                op->host++;
                resolve_next(op);
                return;
        }
        if (resp->status == 404) {
                if (op->r->ref.digest && !op->blobs) {
                        op->blobs = true;
                        op->get = false;
                        resolve_next(op);
                        return;
                }
                op->blobs = false;
                op->get = false;
                op->host++;
                resolve_next(op);
                return;
        }
        if (resp->status < 200 || resp->status > 299) {
                if (!op->first_err)
                        image_registry_status_error(method, resp, &op->first_err);
                op->get = false;
                op->blobs = false;
                op->host++;
                resolve_next(op);
                return;
        }
        {
                struct image_descriptor d = {0};
                _cleanup_free_ char *computed = NULL;
                const char *dg = op->r->ref.digest ?: resp->docker_content_digest;
                struct error *ve = NULL;

                if (op->get) {
                        computed = digest_from_buf(resp->body ?: "", resp->body_len);
                        if (op->r->ref.digest && strcmp(computed, op->r->ref.digest) != 0) {
                                error_set(&ve, EINVAL, "digest mismatch for %s: got %s", op->r->name, computed);
                                resolve_finish(op, NULL, ve);
                                error_free(&ve);
                                return;
                        }
                        dg = computed;
                }
                if (!dg || image_ref_digest_validate(dg, NULL) < 0 || resp->content_length < 0 || !resp->content_type) {
                        if (!op->get) {
                                /* the registry did not say: fetch the manifest and compute it */
                                op->get = true;
                                resolve_next(op);
                                return;
                        }
                }
                if (!dg) {
                        error_set(&ve, EPROTO, "%s: no digest for manifest", op->r->name);
                        resolve_finish(op, NULL, ve);
                        error_free(&ve);
                        return;
                }
                d.digest = (char *)dg;
                d.size = op->get ? (int64_t)resp->body_len : resp->content_length;
                d.media_type = resp->content_type ? resp->content_type : (char *)"";
                /* strip parameters such as "; charset=utf-8" */
                {
                        _cleanup_free_ char *mt = xstrndup(d.media_type, strcspn(d.media_type, "; "));
                        if (op->get && (!*mt || !strcmp(mt, "application/json") || !strcmp(mt, "text/plain"))) {
                                enum image_manifest_kind kd = image_manifest_kind(NULL, resp->body, resp->body_len);
                                free(mt);
                                mt = xstrdup(kd == IMAGE_MANIFEST_KIND_INDEX ? IMAGE_MT_OCI_INDEX
                                                                             : IMAGE_MT_OCI_MANIFEST);
                                /* a document's own mediaType wins */
                        }
                        d.media_type = mt;
                        resolve_finish(op, &d, NULL);
                }
        }
}

static void resolve_next(struct resolve_op *op)
{
        struct image_resolver *r = op->r;

        while (op->host < r->n_hosts && !(r->hosts[op->host].caps & IMAGE_HOST_CAP_RESOLVE))
                op->host++;
        if (op->host >= r->n_hosts) {
                struct error *e = NULL;
                if (op->first_err)
                        e = TAKE_PTR(op->first_err);
                else
                        error_set(&e, ENOENT, "%s", r->name);
                resolve_finish(op, NULL, e);
                error_free(&e);
                return;
        }
        {
                const struct image_host *h = &r->hosts[op->host];
                _cleanup_free_ char *url =
                    host_url(r, h, op->blobs ? "blobs" : "manifests", r->ref.digest ?: r->ref.tag);
                char *hdrs[] = {(char *)IMAGE_MANIFEST_ACCEPT, NULL};
                struct image_registry_request_spec s;
                struct error *e = NULL;

                spec_init(&s, r, h);
                s.method = op->get ? "GET" : "HEAD";
                s.url = url;
                s.headers = hdrs;
                s.on_done = resolve_done;
                s.userdata = op;
                if (image_registry_request_start(r->client, &s, NULL, &e) < 0) {
                        resolve_finish(op, NULL, e);
                        error_free(&e);
                }
        }
}

int image_resolver_resolve(struct image_resolver *r, image_resolve_fn cb, void *userdata, struct error **err _unused_)
{
        struct resolve_op *op = xcalloc(1, sizeof(*op));

        op->r = r;
        op->cb = cb;
        op->ud = userdata;
        resolve_next(op);
        return 0;
}

/* ---- fetch ---- */

struct image_fetch {
        struct image_resolver *r;
        struct image_descriptor desc;
        bool manifest;
        int64_t offset;
        image_registry_data_fn on_data;
        image_fetch_done_fn on_done;
        void *ud;
        size_t host;
        struct image_registry_request *req;
        struct error *first_err;
        bool cancelled;
        bool got_data;
};

static void fetch_next(struct image_fetch *f);

static void fetch_finish(struct image_fetch *f, const char *buf, size_t len, const struct error *e)
{
        f->on_done(buf, len, e, f->ud);
        image_descriptor_clear(&f->desc);
        error_free(&f->first_err);
        free(f);
}

static int fetch_data(const void *data, size_t n, void *ud, struct error **err)
{
        struct image_fetch *f = ud;

        f->got_data = true;
        return f->on_data(data, n, f->ud, err);
}

static void fetch_done(struct image_registry_request *req _unused_, const struct image_registry_response *resp,
                       const struct error *e, void *ud)
{
        struct image_fetch *f = ud;

        f->req = NULL;
        if (f->cancelled) {
                struct error *ce = NULL;
                error_set(&ce, ECANCELED, "fetch %s: context canceled", f->desc.digest);
                fetch_finish(f, NULL, 0, ce);
                error_free(&ce);
                return;
        }
        if (e) {
                /* a failure after data went to the caller cannot move to another host */
                if (f->got_data || e->code == ECANCELED) {
                        fetch_finish(f, NULL, 0, e);
                        return;
                }
                if (!f->first_err)
                        copy_err(&f->first_err, e);
                f->host++;
                fetch_next(f);
                return;
        }
        if (resp->status < 200 || resp->status > 299 || (f->offset > 0 && f->on_data && resp->status != 206)) {
                if (f->offset > 0 && resp->status == 200) {
                        /* server ignored Range: only reachable if no data was delivered (streaming is
                         * enabled for 2xx), so signal the caller to restart from 0 */
                        struct error *re = NULL;
                        error_set(&re, ERANGE, "registry ignored the range request for %s", f->desc.digest);
                        fetch_finish(f, NULL, 0, re);
                        error_free(&re);
                        return;
                }
                if (!f->first_err || f->first_err->code == ENOENT) {
                        error_free(&f->first_err);
                        image_registry_status_error("GET", resp, &f->first_err);
                }
                f->host++;
                fetch_next(f);
                return;
        }
        if (!f->on_data) {
                _cleanup_free_ char *dg = digest_from_buf(resp->body ?: "", resp->body_len);
                struct error *ve = NULL;

                if ((int64_t)resp->body_len != f->desc.size || strcmp(dg, f->desc.digest) != 0) {
                        error_set(&ve, EINVAL, "digest mismatch for %s: got %s with size %zu, expected size %lld",
                                  f->desc.digest, dg, resp->body_len, (long long)f->desc.size);
                        fetch_finish(f, NULL, 0, ve);
                        error_free(&ve);
                        return;
                }
                fetch_finish(f, resp->body ?: "", resp->body_len, NULL);
                return;
        }
        fetch_finish(f, NULL, 0, NULL);
}

static void fetch_next(struct image_fetch *f)
{
        struct image_resolver *r = f->r;

        while (f->host < r->n_hosts && !(r->hosts[f->host].caps & IMAGE_HOST_CAP_PULL))
                f->host++;
        if (f->host >= r->n_hosts) {
                struct error *e = NULL;
                if (f->first_err)
                        e = TAKE_PTR(f->first_err);
                else
                        error_set(&e, ENOENT, "%s", f->desc.digest);
                fetch_finish(f, NULL, 0, e);
                error_free(&e);
                return;
        }
        {
                const struct image_host *h = &r->hosts[f->host];
                _cleanup_free_ char *url = host_url(r, h, f->manifest ? "manifests" : "blobs", f->desc.digest);
                char *hdrs[] = {(char *)IMAGE_MANIFEST_ACCEPT, NULL};
                struct image_registry_request_spec s;
                struct error *e = NULL;

                spec_init(&s, r, h);
                s.method = "GET";
                s.url = url;
                s.headers = f->manifest ? hdrs : NULL;
                s.range_start = f->on_data ? f->offset : 0;
                s.on_data = f->on_data ? fetch_data : NULL;
                s.on_done = fetch_done;
                s.userdata = f;
                if (image_registry_request_start(r->client, &s, &f->req, &e) < 0) {
                        fetch_finish(f, NULL, 0, e);
                        error_free(&e);
                }
        }
}

int image_resolver_fetch(struct image_resolver *r, const struct image_descriptor *desc, int64_t offset,
                         image_registry_data_fn on_data, image_fetch_done_fn on_done, void *userdata,
                         struct image_fetch **ret_fetch, struct error **err)
{
        struct image_fetch *f;
        enum image_manifest_kind kind = image_manifest_kind(desc->media_type, NULL, 0);

        if (!on_data && desc->size > (int64_t)IMAGE_MANIFEST_MAX_BYTES)
                return error_set(err, EFBIG, "%s: size %lld exceeds the limit of %u bytes", desc->digest,
                                 (long long)desc->size, IMAGE_MANIFEST_MAX_BYTES);
        f = xcalloc(1, sizeof(*f));
        f->r = r;
        image_descriptor_copy(&f->desc, desc);
        f->manifest = kind != IMAGE_MANIFEST_KIND_UNKNOWN;
        f->offset = offset;
        f->on_data = on_data;
        f->on_done = on_done;
        f->ud = userdata;
        if (ret_fetch)
                *ret_fetch = f;
        fetch_next(f);
        return 0;
}

void image_fetch_cancel(struct image_fetch *f)
{
        f->cancelled = true;
        if (f->req)
                image_registry_request_cancel(f->req);
}

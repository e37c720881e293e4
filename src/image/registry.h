/* Registry HTTP client on libcurl: ONE curl multi handle driven by a libuv loop (curl_multi_socket_action
 * with uv_poll_t per socket and one uv_timer_t), so requests never block the loop. HTTP/1.1 or HTTP/2 (curl
 * negotiates h2 over TLS), keep-alive through the multi handle's connection cache, redirects followed (blob
 * storage), proxies from the environment (curl's default).
 *
 * Authentication as containerd's docker authorizer: a 401 carrying `WWW-Authenticate: Bearer realm=..,
 * service=.., scope=..` fetches a token from the realm (GET with Basic credentials when the credentials
 * callback gives some, anonymous otherwise), caches it per host+scope until it expires, and retries the
 * request once; `WWW-Authenticate: Basic` retries with the credentials.
 *
 * Threading: every function must be called on the loop's thread. Callbacks run on the loop. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util/error.h"

#define IMAGE_REGISTRY_MAX_BODY (4u << 20) /* buffered bodies (manifests, indexes, configs, errors, tokens) */

struct image_registry_client;
struct image_registry_request;

/* Per-endpoint TLS settings (hosts.toml). All strings borrowed for the request's life. */
struct image_registry_tls {
        bool skip_verify;
        const char *ca_file;     /* NULL: system CAs */
        const char *client_cert; /* PEM file, NULL for none */
        const char *client_key;
};

/* Gives credentials for host ("127.0.0.1:5000", "docker.io"). Return 0 with *ret_user and *ret_secret set to new
 * strings (an empty user with a secret means an identity token), or -ENOENT for anonymous. */
typedef int (*image_registry_credentials_fn)(const char *host, char **ret_user, char **ret_secret, void *userdata);

struct image_registry_response {
        long status; /* HTTP status of the final response */
        char *content_type;
        char *docker_content_digest;
        int64_t content_length; /* -1 unknown */
        char *url;              /* effective URL after redirects */
        char *body;             /* buffered body (when no data callback, or for non-2xx), NUL-terminated */
        size_t body_len;
};

/* Streaming body for 2xx responses: return < 0 (with err set) to abort the request with that error. */
typedef int (*image_registry_data_fn)(const void *data, size_t n, void *userdata, struct error **err);
/* Completion: err is NULL when a response was received (any status; check resp->status), else the transport
 * error (ECONNREFUSED `connection refused`, EHOSTUNREACH unknown host, ETIMEDOUT, ECANCELED ...) or the data
 * callback's error. resp and err are borrowed for the call. */
typedef void (*image_registry_done_fn)(struct image_registry_request *req, const struct image_registry_response *resp,
                                       const struct error *err, void *userdata);

struct image_registry_request_spec {
        const char *method;   /* "GET", "HEAD" or "POST" (with body) */
        const char *body;     /* POST body (NUL-terminated, copied), or NULL */
        const char *url;      /* full URL */
        const char *host;     /* credential/token cache key, e.g. "127.0.0.1:5000" */
        const char *scope;    /* default token scope, e.g. "repository:test/busybox:pull"; may be NULL */
        char *const *headers; /* extra "Name: value" lines, NULL-terminated, may be NULL */
        int64_t range_start;  /* > 0: `Range: bytes=N-` */
        struct image_registry_tls tls;
        image_registry_data_fn on_data; /* NULL: buffer the body (bounded by IMAGE_REGISTRY_MAX_BODY) */
        image_registry_done_fn on_done; /* required */
        void *userdata;
};

/* loop borrowed (must outlive the client). creds may be NULL (anonymous). user_agent may be NULL. */
int image_registry_client_new(uv_loop_t *loop, image_registry_credentials_fn creds, void *creds_userdata,
                              const char *user_agent, struct image_registry_client **ret, struct error **err);
/* Cancels outstanding requests (their on_done runs with ECANCELED) and frees the client once its handles
 * are closed; the loop must keep running until then. NULL-safe. */
void image_registry_client_free(struct image_registry_client *c);

/* Starts a request; spec strings are copied. The request frees itself after on_done returns. */
int image_registry_request_start(struct image_registry_client *c, const struct image_registry_request_spec *spec,
                                 struct image_registry_request **ret, struct error **err);
/* Aborts: on_done runs (from the loop, later) with ECANCELED. */
void image_registry_request_cancel(struct image_registry_request *r);

/* Builds the containerd-style error for an unexpected status:
 * `unexpected status from GET request to URL: 401 Unauthorized` plus the registry's error message
 * (`: unauthorized: authentication required`) when the body is a v2 error document. code from the status:
 * 401 EACCES... (401/403 EPERM/EACCES, 404 ENOENT, 429/5xx EAGAIN, other EIO). Returns -code. */
int image_registry_status_error(const char *method, const struct image_registry_response *resp, struct error **err);

/* Parses a WWW-Authenticate value. Returns the scheme ("bearer"/"basic", lower case, new string) and the
 * parameters as a key/value vector (new strvs, keys lower case). -EINVAL when unparsable. Exposed for tests. */
int image_registry_parse_challenge(const char *header, char **ret_scheme, char ***ret_params, struct error **err);

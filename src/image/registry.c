/* libcurl multi + libuv: the socket callback maps curl's interest in a socket onto a uv_poll_t, the timer
 * callback onto one uv_timer_t, and both uv callbacks hand readiness back with curl_multi_socket_action
 * (the pattern of curl's docs/examples/multi-uv.c). Completed transfers are read with curl_multi_info_read
 * outside curl's callbacks, which is where retries (auth) and frees happen. */
#include "image/registry.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "util/alloc.h"
#include "util/digest.h"
#include "util/cleanup.h"
#include "util/json.h"
#include "util/strv.h"

struct token {
        struct token *next;
        char *key; /* host "|" scope */
        char *value;
        uint64_t expires; /* uv_now ms */
};

struct image_registry_client {
        uv_loop_t *loop;
        CURLM *multi;
        uv_timer_t timer;
        image_registry_credentials_fn creds;
        void *creds_ud;
        char *user_agent;
        struct token *tokens;
        struct image_registry_request *reqs; /* doubly linked */
        bool freeing;
};

struct sock_ctx {
        uv_poll_t poll;
        curl_socket_t fd;
        struct image_registry_client *c;
};

struct image_registry_request {
        struct image_registry_client *c;
        struct image_registry_request *prev, *next;
        CURL *easy;
        struct curl_slist *hdrs;
        char *method, *url, *host, *scope, *ca, *cert, *key;
        char **extra_headers;
        int64_t range_start;
        bool skip_verify;
        image_registry_data_fn on_data;
        image_registry_done_fn on_done;
        void *ud;
        char *auth; /* "Authorization: ..." */
        bool auth_retried;
        bool cancelled;
        bool streaming; /* 2xx body is going to on_data */
        bool status_checked;
        struct image_registry_response resp;
        char *reason; /* status line reason phrase */
        char *www_auth;
        size_t body_cap;
        struct error *data_err;
        char errbuf[CURL_ERROR_SIZE];
        struct image_registry_request *parent; /* token request: the request waiting for it */
        char *token_key;
        char *post_body;
        /* a waiter whose token comes from an OAuth POST: the GET it falls back to (containerd does) */
        bool oauth;
        bool oauth_has_user;
        bool token_creds; /* the token request carries credentials: "oauth" in errors, else "anonymous" */
        char *token_get_url;
        char *token_get_auth;
};

static void check_multi_info(struct image_registry_client *c);

static void response_clear(struct image_registry_response *r)
{
        free(r->content_type);
        free(r->docker_content_digest);
        free(r->url);
        free(r->body);
        *r = (struct image_registry_response){.content_length = -1};
}

/* ---- uv <-> curl glue ---- */

static void sock_close_cb(uv_handle_t *h)
{
        free(h->data);
}

static void poll_cb(uv_poll_t *p, int status, int events)
{
        struct sock_ctx *s = p->data;
        struct image_registry_client *c = s->c;
        int flags = 0, running;

        if (status < 0)
                flags = CURL_CSELECT_ERR;
        if (events & UV_READABLE)
                flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
                flags |= CURL_CSELECT_OUT;
        curl_multi_socket_action(c->multi, s->fd, flags, &running);
        check_multi_info(c);
}

static int socket_cb(CURL *e _unused_, curl_socket_t fd, int what, void *userp, void *socketp)
{
        struct image_registry_client *c = userp;
        struct sock_ctx *s = socketp;
        int events = 0;

        if (what == CURL_POLL_REMOVE) {
                if (s) {
                        uv_poll_stop(&s->poll);
                        uv_close((uv_handle_t *)&s->poll, sock_close_cb);
                        curl_multi_assign(c->multi, fd, NULL);
                }
                return 0;
        }
        if (!s) {
                s = xcalloc(1, sizeof(*s));
                s->fd = fd;
                s->c = c;
                if (uv_poll_init_socket(c->loop, &s->poll, fd) < 0) {
                        free(s);
                        return -1;
                }
                s->poll.data = s;
                curl_multi_assign(c->multi, fd, s);
        }
        if (what & CURL_POLL_IN)
                events |= UV_READABLE;
        if (what & CURL_POLL_OUT)
                events |= UV_WRITABLE;
        uv_poll_start(&s->poll, events, poll_cb);
        return 0;
}

static void timer_cb(uv_timer_t *t)
{
        struct image_registry_client *c = t->data;
        int running;

        curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        check_multi_info(c);
}

static int timer_fn(CURLM *m _unused_, long timeout_ms, void *userp)
{
        struct image_registry_client *c = userp;

        if (timeout_ms < 0)
                uv_timer_stop(&c->timer);
        else
                uv_timer_start(&c->timer, timer_cb, (uint64_t)timeout_ms, 0);
        return 0;
}

int image_registry_client_new(uv_loop_t *loop, image_registry_credentials_fn creds, void *creds_userdata,
                              const char *user_agent, struct image_registry_client **ret, struct error **err)
{
        struct image_registry_client *c;

        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return error_set(err, EIO, "curl global init failed");
        c = xcalloc(1, sizeof(*c));
        c->loop = loop;
        c->multi = curl_multi_init();
        if (!c->multi) {
                free(c);
                return error_set(err, ENOMEM, "curl multi init");
        }
        uv_timer_init(loop, &c->timer);
        c->timer.data = c;
        c->creds = creds;
        c->creds_ud = creds_userdata;
        c->user_agent = xstrdup(user_agent ?: "containerd/krill");
        curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
        curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
        curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_fn);
        curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
        curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
        *ret = c;
        return 0;
}

static void client_close_cb(uv_handle_t *h)
{
        struct image_registry_client *c = h->data;
        struct token *t;

        while ((t = c->tokens)) {
                c->tokens = t->next;
                free(t->key);
                free(t->value);
                free(t);
        }
        free(c->user_agent);
        free(c);
}

static void request_free(struct image_registry_request *r);
static void request_finish(struct image_registry_request *r, const struct error *e);

void image_registry_client_free(struct image_registry_client *c)
{
        if (!c)
                return;
        c->freeing = true;
        while (c->reqs) {
                struct error *e = NULL;
                struct image_registry_request *r = c->reqs;

                error_set(&e, ECANCELED, "request canceled");
                /* detach token waiters first so finishing the token request does not restart them */
                request_finish(r, e);
                error_free(&e);
        }
        curl_multi_cleanup(c->multi);
        c->multi = NULL;
        uv_timer_stop(&c->timer);
        uv_close((uv_handle_t *)&c->timer, client_close_cb);
}

/* ---- requests ---- */

static const char *reason_text(long status)
{
        switch (status) {
        case 200:
                return "OK";
        case 206:
                return "Partial Content";
        case 301:
                return "Moved Permanently";
        case 307:
                return "Temporary Redirect";
        case 400:
                return "Bad Request";
        case 401:
                return "Unauthorized";
        case 403:
                return "Forbidden";
        case 404:
                return "Not Found";
        case 405:
                return "Method Not Allowed";
        case 416:
                return "Requested Range Not Satisfiable";
        case 429:
                return "Too Many Requests";
        case 500:
                return "Internal Server Error";
        case 502:
                return "Bad Gateway";
        case 503:
                return "Service Unavailable";
        default:
                return "";
        }
}

static char *trim_dup(const char *s, size_t n)
{
        while (n > 0 && (*s == ' ' || *s == '\t')) {
                s++;
                n--;
        }
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
                n--;
        return xstrndup(s, n);
}

static size_t header_cb(char *buf, size_t size, size_t nitems, void *ud)
{
        struct image_registry_request *r = ud;
        size_t n = size * nitems;
        const char *colon;

        if (n >= 5 && !strncmp(buf, "HTTP/", 5)) {
                /* a new response (redirect, 100-continue): forget the previous headers */
                const char *sp = memchr(buf, ' ', n);
                free(r->resp.content_type);
                free(r->resp.docker_content_digest);
                free(r->www_auth);
                free(r->reason);
                r->resp.content_type = r->resp.docker_content_digest = r->www_auth = r->reason = NULL;
                r->resp.content_length = -1;
                if (sp) {
                        const char *sp2 = memchr(sp + 1, ' ', n - (size_t)(sp + 1 - buf));
                        if (sp2)
                                r->reason = trim_dup(sp2 + 1, n - (size_t)(sp2 + 1 - buf));
                }
                return n;
        }
        colon = memchr(buf, ':', n);
        if (!colon)
                return n;
#define HDR(name) ((size_t)(colon - buf) == strlen(name) && !strncasecmp(buf, name, strlen(name)))
        if (HDR("content-type")) {
                free(r->resp.content_type);
                r->resp.content_type = trim_dup(colon + 1, n - (size_t)(colon + 1 - buf));
        } else if (HDR("docker-content-digest")) {
                free(r->resp.docker_content_digest);
                r->resp.docker_content_digest = trim_dup(colon + 1, n - (size_t)(colon + 1 - buf));
        } else if (HDR("www-authenticate")) {
                if (!r->www_auth)
                        r->www_auth = trim_dup(colon + 1, n - (size_t)(colon + 1 - buf));
        } else if (HDR("content-length")) {
                _cleanup_free_ char *v = trim_dup(colon + 1, n - (size_t)(colon + 1 - buf));
                char *end;
                long long l = strtoll(v, &end, 10);
                if (*v && !*end && l >= 0)
                        r->resp.content_length = l;
        }
#undef HDR
        return n;
}

static size_t write_cb(char *buf, size_t size, size_t nitems, void *ud)
{
        struct image_registry_request *r = ud;
        size_t n = size * nitems;

        if (r->cancelled)
                return 0;
        if (!r->status_checked) {
                long st = 0;
                curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &st);
                r->streaming = r->on_data && st >= 200 && st < 300;
                r->status_checked = true;
        }
        if (r->streaming) {
                if (r->on_data(buf, n, r->ud, &r->data_err) < 0)
                        return 0;
                return n;
        }
        if (r->resp.body_len + n > IMAGE_REGISTRY_MAX_BODY) {
                error_set(&r->data_err, EFBIG, "response body of %s exceeds %u bytes", r->url, IMAGE_REGISTRY_MAX_BODY);
                return 0;
        }
        if (r->resp.body_len + n + 1 > r->body_cap) {
                r->body_cap = (r->resp.body_len + n + 1) * 2;
                r->resp.body = xrealloc(r->resp.body, r->body_cap);
        }
        memcpy(r->resp.body + r->resp.body_len, buf, n);
        r->resp.body_len += n;
        r->resp.body[r->resp.body_len] = 0;
        return n;
}

static int xferinfo_cb(void *ud, curl_off_t a _unused_, curl_off_t b _unused_, curl_off_t c _unused_,
                       curl_off_t d _unused_)
{
        struct image_registry_request *r = ud;

        return r->cancelled ? 1 : 0;
}

static const char *go_method(const char *m)
{
        return !strcmp(m, "HEAD") ? "Head" : !strcmp(m, "GET") ? "Get" : m;
}

static struct token *token_find(struct image_registry_client *c, const char *key)
{
        uint64_t now = uv_now(c->loop);

        for (struct token *t = c->tokens; t; t = t->next)
                if (!strcmp(t->key, key) && t->expires > now)
                        return t;
        return NULL;
}

static char *token_key(const char *host, const char *scope)
{
        return xasprintf("%s|%s", host ?: "", scope ?: "");
}

static int easy_setup(struct image_registry_request *r, struct error **err)
{
        CURL *e = curl_easy_init();

        if (!e)
                return error_set(err, ENOMEM, "curl easy init");
        r->easy = e;
        curl_slist_free_all(r->hdrs);
        r->hdrs = NULL;
        for (char **h = r->extra_headers; h && *h; h++)
                r->hdrs = curl_slist_append(r->hdrs, *h);
        if (!r->auth && r->host) {
                _cleanup_free_ char *k = token_key(r->host, r->scope);
                struct token *t = token_find(r->c, k);
                if (t)
                        r->auth = xasprintf("Authorization: Bearer %s", t->value);
        }
        if (r->auth)
                r->hdrs = curl_slist_append(r->hdrs, r->auth);
        if (r->range_start > 0) {
                _cleanup_free_ char *rg = xasprintf("Range: bytes=%lld-", (long long)r->range_start);
                r->hdrs = curl_slist_append(r->hdrs, rg);
        }
        curl_easy_setopt(e, CURLOPT_URL, r->url);
        curl_easy_setopt(e, CURLOPT_PRIVATE, r);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
        curl_easy_setopt(e, CURLOPT_USERAGENT, r->c->user_agent);
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
        /* Redirects to blob storage must not carry the registry's credentials (containerd drops them too) */
        curl_easy_setopt(e, CURLOPT_UNRESTRICTED_AUTH, 0L);
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
        /* layers stream through write_cb into a sink: 256 KiB per call instead of curl's 16 KiB */
        curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 256L * 1024);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
        curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
        curl_easy_setopt(e, CURLOPT_XFERINFODATA, r);
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 30L);
        /* abort a stalled transfer: under 1 byte/s for 60 s */
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, 60L);
        curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, NULL);
        if (!strcmp(r->method, "HEAD"))
                curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
        if (r->post_body)
                curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, r->post_body);
        if (r->skip_verify) {
                curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
                curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
        }
        if (r->ca)
                curl_easy_setopt(e, CURLOPT_CAINFO, r->ca);
        if (r->cert)
                curl_easy_setopt(e, CURLOPT_SSLCERT, r->cert);
        if (r->key)
                curl_easy_setopt(e, CURLOPT_SSLKEY, r->key);
        response_clear(&r->resp);
        r->body_cap = 0;
        r->status_checked = r->streaming = false;
        r->errbuf[0] = 0;
        if (curl_multi_add_handle(r->c->multi, e) != CURLM_OK)
                return error_set(err, EIO, "curl multi add handle");
        return 0;
}

int image_registry_request_start(struct image_registry_client *c, const struct image_registry_request_spec *spec,
                                 struct image_registry_request **ret, struct error **err)
{
        struct image_registry_request *r;
        int k;

        if (c->freeing)
                return error_set(err, ECANCELED, "registry client closing");
        r = xcalloc(1, sizeof(*r));
        r->c = c;
        r->method = xstrdup(spec->method ?: "GET");
        r->url = xstrdup(spec->url);
        r->host = xstrdup(spec->host);
        r->scope = xstrdup(spec->scope);
        r->extra_headers = strv_copy(spec->headers);
        r->post_body = xstrdup(spec->body);
        r->range_start = spec->range_start;
        r->skip_verify = spec->tls.skip_verify;
        r->ca = xstrdup(spec->tls.ca_file);
        r->cert = xstrdup(spec->tls.client_cert);
        r->key = xstrdup(spec->tls.client_key);
        r->on_data = spec->on_data;
        r->on_done = spec->on_done;
        r->ud = spec->userdata;
        r->resp.content_length = -1;
        r->next = c->reqs;
        if (c->reqs)
                c->reqs->prev = r;
        c->reqs = r;
        k = easy_setup(r, err);
        if (k < 0) {
                request_free(r);
                return k;
        }
        if (ret)
                *ret = r;
        return 0;
}

void image_registry_request_cancel(struct image_registry_request *r)
{
        r->cancelled = true;
}

static void request_free(struct image_registry_request *r)
{
        struct image_registry_client *c = r->c;

        if (r->easy) {
                if (c->multi)
                        curl_multi_remove_handle(c->multi, r->easy);
                curl_easy_cleanup(r->easy);
        }
        if (r->prev)
                r->prev->next = r->next;
        else if (c->reqs == r)
                c->reqs = r->next;
        if (r->next)
                r->next->prev = r->prev;
        /* a token request's waiter, or a waiter's token request, loses its partner */
        for (struct image_registry_request *o = c->reqs; o; o = o->next)
                if (o->parent == r)
                        o->parent = NULL;
        curl_slist_free_all(r->hdrs);
        free(r->method);
        free(r->url);
        free(r->host);
        free(r->scope);
        free(r->ca);
        free(r->cert);
        free(r->key);
        strv_free(r->extra_headers);
        free(r->auth);
        free(r->reason);
        free(r->www_auth);
        free(r->token_key);
        free(r->post_body);
        free(r->token_get_url);
        free(r->token_get_auth);
        response_clear(&r->resp);
        error_free(&r->data_err);
        free(r);
}

static void request_finish(struct image_registry_request *r, const struct error *e)
{
        if (r->on_done)
                r->on_done(r, e ? NULL : &r->resp, e, r->ud);
        request_free(r);
}

/* ---- WWW-Authenticate ---- */

int image_registry_parse_challenge(const char *h, char **ret_scheme, char ***ret_params, struct error **err)
{
        _cleanup_strv_free_ char **params = strv_new_empty();
        _cleanup_free_ char *scheme = NULL;
        const char *p = h;
        size_t n;

        while (*p == ' ')
                p++;
        n = strcspn(p, " ");
        if (n == 0)
                return error_set(err, EINVAL, "invalid WWW-Authenticate header %s", h);
        scheme = xstrndup(p, n);
        for (char *s = scheme; *s; s++)
                *s = (char)tolower((unsigned char)*s);
        p += n;
        for (;;) {
                _cleanup_free_ char *key = NULL;
                char *val;
                size_t cap = 0, len = 0;

                while (*p == ' ' || *p == ',')
                        p++;
                if (!*p)
                        break;
                n = strcspn(p, "=, ");
                if (n == 0 || p[n] != '=')
                        return error_set(err, EINVAL, "invalid WWW-Authenticate header %s", h);
                key = xstrndup(p, n);
                for (char *s = key; *s; s++)
                        *s = (char)tolower((unsigned char)*s);
                p += n + 1;
                val = xmalloc(strlen(p) + 1);
                cap = strlen(p) + 1;
                if (*p == '"') {
                        p++;
                        while (*p && *p != '"') {
                                if (*p == '\\' && p[1])
                                        p++;
                                val[len++] = *p++;
                        }
                        if (*p != '"') {
                                free(val);
                                return error_set(err, EINVAL, "invalid WWW-Authenticate header %s", h);
                        }
                        p++;
                } else {
                        while (*p && *p != ',' && *p != ' ')
                                val[len++] = *p++;
                }
                (void)cap;
                val[len] = 0;
                strv_push(&params, TAKE_PTR(key));
                strv_push(&params, val);
        }
        *ret_scheme = TAKE_PTR(scheme);
        *ret_params = TAKE_PTR(params);
        return 0;
}

static const char *kv_get(char *const *kv, const char *k)
{
        for (size_t i = 0; kv && kv[i] && kv[i + 1]; i += 2)
                if (!strcmp(kv[i], k))
                        return kv[i + 1];
        return NULL;
}

static char *basic_header(const char *user, const char *secret)
{
        _cleanup_free_ char *plain = xasprintf("%s:%s", user, secret);
        _cleanup_free_ char *b64 = base64_encode_new(plain, strlen(plain));
        return xasprintf("Authorization: Basic %s", b64);
}

static void token_done(struct image_registry_request *tr, const struct image_registry_response *resp,
                       const struct error *e, void *ud _unused_);

static void restart(struct image_registry_request *r)
{
        struct error *e = NULL;

        curl_multi_remove_handle(r->c->multi, r->easy);
        curl_easy_cleanup(r->easy);
        r->easy = NULL;
        if (easy_setup(r, &e) < 0) {
                request_finish(r, e);
                error_free(&e);
        }
}

/* Starts the token request r waits for (GET with optional Basic, or the OAuth POST with a form) and parks r:
 * its easy handle is removed until the token arrives. */
static bool start_token_request(struct image_registry_request *r, const char *url, const char *auth, const char *form)
{
        char *hdrs[3] = {NULL, NULL, NULL};
        struct image_registry_request_spec spec = {0};
        struct image_registry_request *tr = NULL;
        size_t n = 0;

        if (auth)
                hdrs[n++] = (char *)auth;
        if (form)
                hdrs[n++] = (char *)"Content-Type: application/x-www-form-urlencoded; charset=utf-8";
        spec.method = form ? "POST" : "GET";
        spec.url = url;
        spec.body = form;
        spec.headers = hdrs;
        spec.tls = (struct image_registry_tls){r->skip_verify, r->ca, r->cert, r->key};
        spec.on_done = token_done;
        spec.userdata = r;
        if (image_registry_request_start(r->c, &spec, &tr, NULL) < 0)
                return false;
        tr->parent = r;
        free(r->token_key);
        r->token_key = token_key(r->host, r->scope);
        if (r->easy) {
                curl_multi_remove_handle(r->c->multi, r->easy);
                curl_easy_cleanup(r->easy);
                r->easy = NULL;
        }
        return true;
}

/* application/x-www-form-urlencoded value */
static char *form_escape(const char *v)
{
        CURL *e = curl_easy_init();
        char *x = e ? curl_easy_escape(e, v, 0) : NULL;
        char *ret = xstrdup(x ?: "");

        curl_free(x);
        if (e)
                curl_easy_cleanup(e);
        return ret;
}

/* containerd's FetchTokenWithOAuth form, keys sorted as Go's url.Values.Encode() sorts them */
static char *oauth_form(const char *service, const char *scope, const char *user, const char *secret)
{
        _cleanup_free_ char *es = form_escape(service ?: ""), *esc = form_escape(scope ?: "");
        _cleanup_free_ char *eu = form_escape(user), *ep = form_escape(secret);

        if (!user[0])
                return xasprintf("client_id=containerd-client&grant_type=refresh_token&refresh_token=%s%s%s&service=%s",
                                 ep, scope ? "&scope=" : "", scope ? esc : "", es);
        return xasprintf("client_id=containerd-client&grant_type=password&password=%s%s%s&service=%s&username=%s", ep,
                         scope ? "&scope=" : "", scope ? esc : "", es, eu);
}

/* A 401 with a challenge: returns true when a retry (or token fetch) was started. */
static bool handle_auth(struct image_registry_request *r)
{
        _cleanup_free_ char *scheme = NULL;
        _cleanup_strv_free_ char **params = NULL;
        _cleanup_free_ char *user = NULL, *secret = NULL;
        bool have_creds = false;

        if (r->auth_retried || !r->www_auth)
                return false;
        if (image_registry_parse_challenge(r->www_auth, &scheme, &params, NULL) < 0)
                return false;
        r->auth_retried = true;
        if (r->c->creds && r->c->creds(r->host ?: "", &user, &secret, r->c->creds_ud) == 0)
                have_creds = true;
        if (!strcmp(scheme, "basic")) {
                if (!have_creds)
                        return false;
                free(r->auth);
                r->auth = basic_header(user, secret);
                restart(r);
                return true;
        }
        if (!strcmp(scheme, "bearer")) {
                const char *realm = kv_get(params, "realm"), *service = kv_get(params, "service");
                const char *scope = kv_get(params, "scope") ?: r->scope;
                _cleanup_free_ char *url = NULL, *auth = NULL, *form = NULL;
                CURL *esc = curl_easy_init();
                char *es = NULL, *ec = NULL;

                if (!realm || !esc) {
                        if (esc)
                                curl_easy_cleanup(esc);
                        return false;
                }
                if (service)
                        es = curl_easy_escape(esc, service, 0);
                if (scope)
                        ec = curl_easy_escape(esc, scope, 0);
                url = xasprintf("%s%s%s%s%s%s", realm, strchr(realm, '?') ? "&" : "?", es ? "service=" : "", es ?: "",
                                ec ? (es ? "&scope=" : "scope=") : "", ec ?: "");
                curl_free(es);
                curl_free(ec);
                curl_easy_cleanup(esc);
                if (have_creds)
                        auth = basic_header(user, secret);
                r->token_creds = have_creds;
                if (have_creds && secret[0]) {
                        /* credentials: the OAuth POST first, the GET if the realm does not take it (containerd's
                         * authorizer, doBearerAuth) */
                        form = oauth_form(service, scope, user, secret);
                        r->oauth = true;
                        r->oauth_has_user = user[0] != 0;
                        free(r->token_get_url);
                        free(r->token_get_auth);
                        r->token_get_url = xstrdup(url);
                        r->token_get_auth = user[0] ? xstrdup(auth) : NULL;
                        return start_token_request(r, realm, NULL, form);
                }
                return start_token_request(r, url, auth, NULL);
        }
        return false;
}

static void token_done(struct image_registry_request *tr, const struct image_registry_response *resp,
                       const struct error *e, void *ud _unused_)
{
        struct image_registry_request *r = tr->parent;
        struct error *ee = NULL;
        _cleanup_(json_decrefp) json_t *j = NULL;
        const char *tok = NULL;
        int64_t expires = 0;

        if (!r)
                return;
        tr->parent = NULL;
        if (e) {
                _cleanup_free_ char *m = error_message(e);
                error_set(&ee, e->code, "failed to fetch %s token: %s", r->token_creds ? "oauth" : "anonymous", m);
                goto fail;
        }
        if (r->oauth && (resp->status == 404 || resp->status == 401 || resp->status == 400 ||
                         (resp->status == 405 && r->oauth_has_user))) {
                /* registries without the POST endpoint (GCR 404, Artifactory 401, ACR 400) */
                _cleanup_free_ char *url = TAKE_PTR(r->token_get_url);
                _cleanup_free_ char *auth = TAKE_PTR(r->token_get_auth);
                r->oauth = false;
                if (start_token_request(r, url, auth, NULL))
                        return;
                error_set(&ee, EIO, "failed to start the token request");
                goto fail;
        }
        if (resp->status < 200 || resp->status >= 300) {
                image_registry_status_error(r->oauth ? "POST" : "GET", resp, &ee);
                error_wrap(&ee, "failed to fetch %s token", r->token_creds ? "oauth" : "anonymous");
                goto fail;
        }
        if (json_load_bounded(resp->body ?: "", resp->body_len, IMAGE_REGISTRY_MAX_BODY, 16, &j, &ee) < 0 ||
            !json_is_object(j))
                goto badjson;
        (void)json_get_string_opt(j, "token", &tok, NULL);
        if (!tok || !*tok)
                (void)json_get_string_opt(j, "access_token", &tok, NULL);
        if (!tok || !*tok)
                goto badjson;
        (void)json_get_int_opt(j, "expires_in", &expires, NULL);
        if (expires <= 0 || expires > 86400)
                expires = 60;
        {
                struct token *t = xcalloc(1, sizeof(*t));
                t->key = xstrdup(r->token_key);
                t->value = xstrdup(tok);
                t->expires = uv_now(r->c->loop) + (uint64_t)expires * 1000u;
                t->next = r->c->tokens;
                r->c->tokens = t;
                free(r->auth);
                r->auth = xasprintf("Authorization: Bearer %s", tok);
        }
        if (easy_setup(r, &ee) < 0)
                goto fail;
        return;
badjson:
        error_free(&ee);
        error_set(&ee, EPROTO, "failed to decode token response from %s", tr->url);
fail:
        request_finish(r, ee);
        error_free(&ee);
}

/* ---- completion ---- */

static int curl_errno(CURLcode rc)
{
        switch (rc) {
        case CURLE_COULDNT_CONNECT:
                return ECONNREFUSED;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
                return EHOSTUNREACH;
        case CURLE_OPERATION_TIMEDOUT:
                return ETIMEDOUT;
        case CURLE_ABORTED_BY_CALLBACK:
                return ECANCELED;
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CACERT_BADFILE:
                return EPROTO;
        default:
                return EIO;
        }
}

static void check_multi_info(struct image_registry_client *c)
{
        CURLMsg *m;
        int left;

        while ((m = curl_multi_info_read(c->multi, &left))) {
                struct image_registry_request *r = NULL;
                struct error *e = NULL;
                CURLcode rc;
                char *eff = NULL;

                if (m->msg != CURLMSG_DONE)
                        continue;
                rc = m->data.result;
                curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
                curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->resp.status);
                curl_easy_getinfo(r->easy, CURLINFO_EFFECTIVE_URL, &eff);
                free(r->resp.url);
                r->resp.url = xstrdup(eff ?: r->url);
                if (r->cancelled) {
                        error_set(&e, ECANCELED, "%s %s: context canceled", r->method, r->url);
                } else if (r->data_err) {
                        e = TAKE_PTR(r->data_err);
                } else if (rc != CURLE_OK) {
                        int code = curl_errno(rc);
                        _cleanup_free_ char *msg =
                            xasprintf("failed to do request: %s \"%s\": %s%s%s", go_method(r->method), r->url,
                                      curl_easy_strerror(rc), r->errbuf[0] ? ": " : "", r->errbuf);
                        if (code == ECONNREFUSED) {
                                free(msg);
                                msg = xasprintf("failed to do request: %s \"%s\": connect: connection refused",
                                                go_method(r->method), r->url);
                        }
                        error_set_literal(&e, code, msg);
                } else if (r->resp.status == 401 && handle_auth(r)) {
                        continue;
                }
                request_finish(r, e);
                error_free(&e);
        }
}

int image_registry_status_error(const char *method, const struct image_registry_response *resp, struct error **err)
{
        int code;
        _cleanup_free_ char *detail = NULL, *msg = NULL;
        const char *reason = reason_text(resp->status);

        switch (resp->status) {
        case 401:
                code = EACCES;
                break;
        case 403:
                code = EPERM;
                break;
        case 404:
                code = ENOENT;
                break;
        case 429:
        case 502:
        case 503:
                code = EAGAIN;
                break;
        default:
                code = EIO;
        }
        if (resp->body_len > 0) {
                _cleanup_(json_decrefp) json_t *j = NULL;
                json_t *errs;

                if (json_load_bounded(resp->body, resp->body_len, IMAGE_REGISTRY_MAX_BODY, 16, &j, NULL) == 0 &&
                    json_is_object(j) && (errs = json_object_get(j, "errors")) && json_is_array(errs) &&
                    json_array_size(errs) > 0) {
                        json_t *e0 = json_array_get(errs, 0);
                        const char *ecode = json_string_value(json_object_get(e0, "code"));
                        const char *emsg = json_string_value(json_object_get(e0, "message"));
                        _cleanup_free_ char *lc = xstrdup(ecode ?: "unknown");
                        for (char *s = lc; *s; s++)
                                *s = *s == '_' ? ' ' : (char)tolower((unsigned char)*s);
                        detail = xasprintf("%s: %s", lc, emsg ?: "");
                }
        }
        msg = xasprintf("unexpected status from %s request to %s: %ld %s%s%s", method, resp->url, resp->status, reason,
                        detail ? ": " : "", detail ?: "");
        return error_set_literal(err, code, msg);
}

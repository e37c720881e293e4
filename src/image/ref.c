/* Image reference grammar, hand-written instead of regexps so that parsing is linear in the input (the
 * fuzz target feeds arbitrary bytes). Each matcher below accepts exactly the language of the corresponding
 * regexp in docker/distribution reference/regexp.go; the tests pin the behaviour case by case. */
#include "image/ref.h"

#include <errno.h>
#include <string.h>

#include "util/alloc.h"
#include "util/cleanup.h"

#define ERR_INVALID_FORMAT "invalid reference format"
#define ERR_UPPERCASE "repository name must be lowercase"
#define ERR_NAME_EMPTY "repository name must have at least one component"
#define ERR_NAME_TOO_LONG "repository name must not be more than 255 characters"

void image_ref_clear(struct image_ref *r)
{
        if (!r)
                return;
        free(r->domain);
        free(r->path);
        free(r->tag);
        free(r->digest);
        *r = (struct image_ref){0};
}

static bool is_lower_alnum(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
        return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static bool is_word(char c)
{
        return is_alnum(c) || c == '_';
}

static bool is_xdigit_c(char c)
{
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* nameComponentRegexp: alnum runs joined by ".", "_", "__" or one or more "-". */
static bool component_valid(const char *s, size_t n)
{
        size_t i = 0;

        if (n == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
                return false;
        while (i < n) {
                size_t start;

                while (i < n && is_lower_alnum(s[i]))
                        i++;
                if (i == n)
                        break;
                start = i;
                while (i < n && !is_lower_alnum(s[i]))
                        i++;
                /* separator s[start, i) */
                if (i - start == 1 && (s[start] == '.' || s[start] == '_' || s[start] == '-'))
                        continue;
                if (i - start == 2 && s[start] == '_' && s[start + 1] == '_')
                        continue;
                for (size_t k = start; k < i; k++)
                        if (s[k] != '-')
                                return false;
        }
        return true;
}

/* domainComponentRegexp: [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9] */
static bool domain_component_valid(const char *s, size_t n)
{
        if (n == 0 || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!is_alnum(s[i]) && s[i] != '-')
                        return false;
        return true;
}

bool image_ref_domain_valid(const char *s, size_t n)
{
        const char *colon = memchr(s, ':', n);
        size_t host_n = colon ? (size_t)(colon - s) : n;
        size_t start = 0;

        if (colon) {
                size_t pn = n - host_n - 1;
                if (pn == 0)
                        return false;
                for (size_t i = host_n + 1; i < n; i++)
                        if (s[i] < '0' || s[i] > '9')
                                return false;
        }
        for (size_t i = 0; i <= host_n; i++) {
                if (i == host_n || s[i] == '.') {
                        if (!domain_component_valid(s + start, i - start))
                                return false;
                        start = i + 1;
                }
        }
        return true;
}

static bool tag_valid_n(const char *s, size_t n)
{
        if (n == 0 || n > 128 || !is_word(s[0]))
                return false;
        for (size_t i = 1; i < n; i++)
                if (!is_word(s[i]) && s[i] != '.' && s[i] != '-')
                        return false;
        return true;
}

bool image_ref_tag_valid(const char *s)
{
        return s && tag_valid_n(s, strlen(s));
}

/* DigestRegexp: [A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][[:xdigit:]]{32,} */
static bool digest_syntax_valid(const char *s, size_t n)
{
        size_t i = 0;

        for (;;) {
                if (i >= n || !((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
                        return false;
                i++;
                while (i < n && is_alnum(s[i]))
                        i++;
                if (i < n && (s[i] == '-' || s[i] == '_' || s[i] == '+' || s[i] == '.')) {
                        i++;
                        continue;
                }
                break;
        }
        if (i >= n || s[i] != ':')
                return false;
        i++;
        if (n - i < 32)
                return false;
        for (; i < n; i++)
                if (!is_xdigit_c(s[i]))
                        return false;
        return true;
}

/* go-digest's DigestRegexpAnchored: [a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+ */
static bool go_digest_regexp(const char *s)
{
        size_t i = 0;

        for (;;) {
                size_t st = i;
                while (is_lower_alnum(s[i]))
                        i++;
                if (i == st)
                        return false;
                if (s[i] == '.' || s[i] == '+' || s[i] == '_' || s[i] == '-') {
                        i++;
                        continue;
                }
                break;
        }
        if (s[i] != ':' || !s[i + 1])
                return false;
        for (i++; s[i]; i++)
                if (!is_alnum(s[i]) && s[i] != '=' && s[i] != '_' && s[i] != '-')
                        return false;
        return true;
}

int image_ref_digest_validate(const char *s, struct error **err)
{
        const char *colon = strchr(s, ':');
        size_t alg_n, want;
        const char *enc;

        if (!colon || colon == s || colon[1] == '\0')
                return error_set_literal(err, EINVAL, "invalid checksum digest format");
        alg_n = (size_t)(colon - s);
        enc = colon + 1;
        if (alg_n == 6 && !strncmp(s, "sha256", 6))
                want = 64;
        else if (alg_n == 6 && !strncmp(s, "sha384", 6))
                want = 96;
        else if (alg_n == 6 && !strncmp(s, "sha512", 6))
                want = 128;
        else
                return error_set_literal(err, EINVAL,
                                         go_digest_regexp(s) ? "unsupported digest algorithm"
                                                             : "invalid checksum digest format");
        if (strlen(enc) != want)
                return error_set_literal(err, EINVAL, "invalid checksum digest length");
        for (size_t i = 0; i < want; i++)
                if (!((enc[i] >= '0' && enc[i] <= '9') || (enc[i] >= 'a' && enc[i] <= 'f')))
                        return error_set_literal(err, EINVAL, "invalid checksum digest format");
        return 0;
}

/* Splits s (length n) as ReferenceRegexp does. On a match fills the spans and returns true. The name may
 * be split as domain "/" path when the first element is a valid domain and the rest are components
 * (Go's leftmost-first prefers taking the domain), otherwise all elements must be components. */
struct spans {
        size_t name_n;   /* name is s[0, name_n) */
        size_t domain_n; /* 0: no domain; else domain is s[0, domain_n), path starts at domain_n + 1 */
        const char *tag;
        size_t tag_n;
        const char *digest;
        size_t digest_n;
};

static bool path_valid(const char *s, size_t n)
{
        size_t start = 0;

        for (size_t i = 0; i <= n; i++) {
                if (i == n || s[i] == '/') {
                        if (!component_valid(s + start, i - start))
                                return false;
                        start = i + 1;
                }
        }
        return true;
}

static bool reference_match(const char *s, size_t n, struct spans *sp)
{
        const char *at = memchr(s, '@', n);
        size_t left = at ? (size_t)(at - s) : n;
        const char *slash, *colon = NULL;

        *sp = (struct spans){0};
        if (at) {
                sp->digest = at + 1;
                sp->digest_n = n - left - 1;
                if (!digest_syntax_valid(sp->digest, sp->digest_n))
                        return false;
        }
        /* The tag separator is the last ':' with no '/' after it (a tag has no '/', a port is followed
         * by one). */
        for (size_t i = left; i > 0; i--) {
                if (s[i - 1] == '/')
                        break;
                if (s[i - 1] == ':') {
                        colon = s + i - 1;
                        break;
                }
        }
        sp->name_n = colon ? (size_t)(colon - s) : left;
        if (colon) {
                sp->tag = colon + 1;
                sp->tag_n = left - sp->name_n - 1;
                if (!tag_valid_n(sp->tag, sp->tag_n))
                        return false;
        }
        slash = memchr(s, '/', sp->name_n);
        if (slash && image_ref_domain_valid(s, (size_t)(slash - s)) &&
            path_valid(slash + 1, sp->name_n - (size_t)(slash - s) - 1)) {
                sp->domain_n = (size_t)(slash - s);
                return true;
        }
        return path_valid(s, sp->name_n);
}

int image_ref_parse(const char *s, struct image_ref *ret, struct error **err)
{
        size_t n = strlen(s);
        struct spans sp;
        struct image_ref r = {0};
        int k;

        if (n > IMAGE_REF_INPUT_MAX)
                return error_set_literal(err, EINVAL, ERR_INVALID_FORMAT);
        if (!reference_match(s, n, &sp)) {
                _cleanup_free_ char *lower = NULL;

                if (n == 0)
                        return error_set_literal(err, EINVAL, ERR_NAME_EMPTY);
                lower = xstrdup(s);
                for (char *p = lower; *p; p++)
                        if (*p >= 'A' && *p <= 'Z')
                                *p = (char)(*p - 'A' + 'a');
                if (reference_match(lower, n, &sp))
                        return error_set_literal(err, EINVAL, ERR_UPPERCASE);
                return error_set_literal(err, EINVAL, ERR_INVALID_FORMAT);
        }
        if (sp.name_n > IMAGE_REF_NAME_MAX)
                return error_set_literal(err, EINVAL, ERR_NAME_TOO_LONG);
        if (sp.digest) {
                _cleanup_free_ char *d = xstrndup(sp.digest, sp.digest_n);

                k = image_ref_digest_validate(d, err);
                if (k < 0)
                        return k;
                r.digest = TAKE_PTR(d);
        }
        if (sp.domain_n) {
                r.domain = xstrndup(s, sp.domain_n);
                r.path = xstrndup(s + sp.domain_n + 1, sp.name_n - sp.domain_n - 1);
        } else {
                r.path = xstrndup(s, sp.name_n);
        }
        if (sp.tag)
                r.tag = xstrndup(sp.tag, sp.tag_n);
        *ret = r;
        return 0;
}

static bool is_hex64(const char *s)
{
        size_t n = strlen(s);

        if (n != 64)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return true;
}

int image_ref_parse_normalized_named(const char *s, struct image_ref *ret, struct error **err)
{
        _cleanup_free_ char *full = NULL;
        const char *slash = strchr(s, '/');
        const char *domain, *rem, *tagsep;
        _cleanup_free_ char *dom_own = NULL;
        size_t remote_n;
        struct image_ref r = {0};
        int k;

        if (strlen(s) > IMAGE_REF_INPUT_MAX)
                return error_set_literal(err, EINVAL, ERR_INVALID_FORMAT);
        if (is_hex64(s)) {
                _cleanup_free_ char *m =
                    xasprintf("invalid repository name (%s), cannot specify 64-byte hexadecimal strings", s);
                return error_set_literal(err, EINVAL, m);
        }
        if (!slash || (!memchr(s, '.', (size_t)(slash - s)) && !memchr(s, ':', (size_t)(slash - s)) &&
                       !((size_t)(slash - s) == 9 && !strncmp(s, "localhost", 9)))) {
                domain = IMAGE_REF_DEFAULT_DOMAIN;
                rem = s;
        } else {
                dom_own = xstrndup(s, (size_t)(slash - s));
                domain = dom_own;
                rem = slash + 1;
        }
        if (!strcmp(domain, "index.docker.io"))
                domain = IMAGE_REF_DEFAULT_DOMAIN;
        tagsep = strchr(rem, ':');
        remote_n = tagsep ? (size_t)(tagsep - rem) : strlen(rem);
        for (size_t i = 0; i < remote_n; i++)
                if (rem[i] >= 'A' && rem[i] <= 'Z')
                        return error_set_literal(err, EINVAL, "invalid reference format: " ERR_UPPERCASE);
        if (!strcmp(domain, IMAGE_REF_DEFAULT_DOMAIN) && !strchr(rem, '/'))
                full = xasprintf("%s/library/%s", domain, rem);
        else
                full = xasprintf("%s/%s", domain, rem);
        k = image_ref_parse(full, &r, err);
        if (k < 0)
                return k;
        if (!r.domain) {
                /* e.g. "docker.io/library/x" always splits; a domain that is not a valid domain ends up
                 * here only if the whole thing parsed as path components, which Parse accepts. */
                char *p = r.path;
                char *sl = strchr(p, '/');
                r.domain = xstrndup(p, (size_t)(sl - p));
                r.path = xstrdup(sl + 1);
                free(p);
        }
        *ret = r;
        return 0;
}

int image_ref_parse_docker(const char *s, struct image_ref *ret, struct error **err)
{
        struct image_ref r = {0};
        int k;

        k = image_ref_parse_normalized_named(s, &r, err);
        if (k < 0)
                return k;
        if (r.digest && r.tag) {
                free(r.tag);
                r.tag = NULL;
        } else if (!r.digest && !r.tag)
                r.tag = xstrdup(IMAGE_REF_DEFAULT_TAG);
        *ret = r;
        return 0;
}

char *image_ref_name(const struct image_ref *r)
{
        return r->domain ? xasprintf("%s/%s", r->domain, r->path) : xstrdup(r->path);
}

char *image_ref_string(const struct image_ref *r)
{
        _cleanup_free_ char *name = image_ref_name(r);

        return xasprintf("%s%s%s%s%s", name, r->tag ? ":" : "", r->tag ?: "", r->digest ? "@" : "", r->digest ?: "");
}

char *image_ref_familiar_string(const struct image_ref *r)
{
        const char *path = r->path;
        _cleanup_free_ char *name = NULL;

        if (r->domain && !strcmp(r->domain, IMAGE_REF_DEFAULT_DOMAIN)) {
                if (!strncmp(path, "library/", 8) && !strchr(path + 8, '/'))
                        path += 8;
                name = xstrdup(path);
        } else {
                name = image_ref_name(r);
        }
        return xasprintf("%s%s%s%s%s", name, r->tag ? ":" : "", r->tag ?: "", r->digest ? "@" : "", r->digest ?: "");
}

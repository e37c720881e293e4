/* A small bounded JSON reader for the few documents the shim reads (config.json annotations, options.json,
 * the runtime's JSON log lines, `runc ps --format json`), so the shim does not link jansson (issue 5: a
 * small static binary). shim_json_parse() validates a whole document (RFC 8259 grammar, nesting at most
 * SHIM_JSON_MAX_DEPTH); the accessors then walk the validated text without allocating. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shim/shim.h"
#include "util/alloc.h"

static const char *skip_ws(const char *p, const char *end)
{
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
                p++;
        return p;
}

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* p at the opening quote; returns the position after the closing quote, or NULL. */
static const char *scan_string(const char *p, const char *end)
{
        for (p++; p < end; p++) {
                unsigned char c = (unsigned char)*p;
                if (c == '"')
                        return p + 1;
                if (c < 0x20)
                        return NULL;
                if (c != '\\')
                        continue;
                if (++p >= end)
                        return NULL;
                switch (*p) {
                case '"':
                case '\\':
                case '/':
                case 'b':
                case 'f':
                case 'n':
                case 'r':
                case 't':
                        break;
                case 'u':
                        if (end - p < 5)
                                return NULL;
                        for (int i = 1; i <= 4; i++)
                                if (hexval(p[i]) < 0)
                                        return NULL;
                        p += 4;
                        break;
                default:
                        return NULL;
                }
        }
        return NULL;
}

static const char *scan_digits(const char *p, const char *end)
{
        const char *s = p;

        while (p < end && *p >= '0' && *p <= '9')
                p++;
        return p > s ? p : NULL;
}

static const char *scan_number(const char *p, const char *end)
{
        if (p < end && *p == '-')
                p++;
        if (p < end && *p == '0')
                p++;
        else if (!(p = scan_digits(p, end)))
                return NULL;
        if (p < end && *p == '.' && !(p = scan_digits(p + 1, end)))
                return NULL;
        if (p < end && (*p == 'e' || *p == 'E')) {
                p++;
                if (p < end && (*p == '+' || *p == '-'))
                        p++;
                if (!(p = scan_digits(p, end)))
                        return NULL;
        }
        return p;
}

static const char *scan_literal(const char *p, const char *end, const char *lit)
{
        size_t n = strlen(lit);

        return (size_t)(end - p) >= n && memcmp(p, lit, n) == 0 ? p + n : NULL;
}

/* Scans one value at p (no leading whitespace). Returns the position after it, or NULL if malformed. */
static const char *scan_value(const char *p, const char *end, int depth, enum shim_json_type *type)
{
        enum shim_json_type dummy;
        bool first = true;
        char close;

        if (!type)
                type = &dummy;
        if (p >= end)
                return NULL;
        switch (*p) {
        case '"':
                *type = SHIM_JSON_STRING;
                return scan_string(p, end);
        case 't':
                *type = SHIM_JSON_TRUE;
                return scan_literal(p, end, "true");
        case 'f':
                *type = SHIM_JSON_FALSE;
                return scan_literal(p, end, "false");
        case 'n':
                *type = SHIM_JSON_NULL;
                return scan_literal(p, end, "null");
        case '{':
        case '[':
                break;
        default:
                *type = SHIM_JSON_NUMBER;
                return scan_number(p, end);
        }
        if (depth >= SHIM_JSON_MAX_DEPTH)
                return NULL;
        *type = *p == '{' ? SHIM_JSON_OBJECT : SHIM_JSON_ARRAY;
        close = *p == '{' ? '}' : ']';
        for (p = skip_ws(p + 1, end);; first = false) {
                if (p >= end)
                        return NULL;
                if (*p == close)
                        return p + 1;
                if (!first) {
                        if (*p != ',')
                                return NULL;
                        p = skip_ws(p + 1, end);
                }
                if (close == '}') {
                        if (p >= end || *p != '"' || !(p = scan_string(p, end)))
                                return NULL;
                        p = skip_ws(p, end);
                        if (p >= end || *p != ':')
                                return NULL;
                        p = skip_ws(p + 1, end);
                }
                if (!(p = scan_value(p, end, depth + 1, NULL)))
                        return NULL;
                p = skip_ws(p, end);
        }
}

int shim_json_parse(const char *buf, size_t len, struct shim_json *out)
{
        const char *end = buf + len, *p = skip_ws(buf, end), *v;

        v = p;
        p = scan_value(p, end, 0, &out->type);
        if (!p || skip_ws(p, end) != end)
                return -EINVAL;
        out->p = v;
        out->len = (size_t)(p - v);
        return 0;
}

/* Within a validated object or array: the next member after *pos (key may be NULL for arrays). */
static bool next_member(const struct shim_json *c, const char **pos, struct shim_json *key, struct shim_json *val)
{
        const char *end = c->p + c->len - 1, *p = *pos; /* end: the closing bracket */

        p = skip_ws(p ? p : c->p + 1, end);
        if (p < end && *p == ',')
                p = skip_ws(p + 1, end);
        if (p >= end)
                return false;
        if (c->type == SHIM_JSON_OBJECT) {
                const char *k = p;
                p = scan_string(p, end);
                key->type = SHIM_JSON_STRING;
                key->p = k;
                key->len = (size_t)(p - k);
                p = skip_ws(skip_ws(p, end) + 1, end); /* ':' */
        }
        val->p = p;
        p = scan_value(p, end, 0, &val->type);
        val->len = (size_t)(p - val->p);
        *pos = p;
        return true;
}

/* Compares a raw string token with key, decoding escapes. */
static bool string_equals(const struct shim_json *s, const char *key)
{
        char *d = shim_json_strdup(s);
        bool eq = d && strcmp(d, key) == 0;

        free(d);
        return eq;
}

int shim_json_member(const struct shim_json *obj, const char *key, struct shim_json *out)
{
        const char *pos = NULL;
        struct shim_json k, v;
        bool found = false;

        if (!obj || obj->type != SHIM_JSON_OBJECT)
                return -EINVAL;
        /* the last duplicate wins, as with Go's encoding/json and jansson */
        while (next_member(obj, &pos, &k, &v))
                if (memchr(k.p, '\\', k.len) ? string_equals(&k, key)
                                             : k.len == strlen(key) + 2 && memcmp(k.p + 1, key, k.len - 2) == 0) {
                        *out = v;
                        found = true;
                }
        return found ? 0 : -ENOENT;
}

bool shim_json_next(const struct shim_json *c, const char **pos, struct shim_json *out)
{
        struct shim_json key;

        if (!c || (c->type != SHIM_JSON_ARRAY && c->type != SHIM_JSON_OBJECT))
                return false;
        return next_member(c, pos, &key, out);
}

static void put_utf8(char **o, unsigned cp)
{
        char *d = *o;

        if (cp < 0x80) {
                *d++ = (char)cp;
        } else if (cp < 0x800) {
                *d++ = (char)(0xc0 | cp >> 6);
                *d++ = (char)(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
                *d++ = (char)(0xe0 | cp >> 12);
                *d++ = (char)(0x80 | ((cp >> 6) & 0x3f));
                *d++ = (char)(0x80 | (cp & 0x3f));
        } else {
                *d++ = (char)(0xf0 | cp >> 18);
                *d++ = (char)(0x80 | ((cp >> 12) & 0x3f));
                *d++ = (char)(0x80 | ((cp >> 6) & 0x3f));
                *d++ = (char)(0x80 | (cp & 0x3f));
        }
        *o = d;
}

static unsigned hex4(const char *p)
{
        return (unsigned)(hexval(p[0]) << 12 | hexval(p[1]) << 8 | hexval(p[2]) << 4 | hexval(p[3]));
}

char *shim_json_strdup(const struct shim_json *v)
{
        const char *p, *end;
        char *out, *o;

        if (!v || v->type != SHIM_JSON_STRING || v->len < 2)
                return NULL;
        p = v->p + 1;
        end = v->p + v->len - 1;
        /* every escape decodes to at most as many bytes as it takes (\uXXXX: 6 -> 3, a pair: 12 -> 4) */
        o = out = xmalloc(v->len);
        while (p < end) {
                unsigned cp;
                if (*p != '\\') {
                        *o++ = *p++;
                        continue;
                }
                p++;
                switch (*p) {
                case 'b':
                        *o++ = '\b';
                        break;
                case 'f':
                        *o++ = '\f';
                        break;
                case 'n':
                        *o++ = '\n';
                        break;
                case 'r':
                        *o++ = '\r';
                        break;
                case 't':
                        *o++ = '\t';
                        break;
                case 'u':
                        cp = hex4(p + 1);
                        p += 4;
                        if (cp >= 0xd800 && cp < 0xdc00 && end - p > 6 && p[1] == '\\' && p[2] == 'u') {
                                unsigned lo = hex4(p + 3);
                                if (lo >= 0xdc00 && lo < 0xe000) {
                                        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                                        p += 6;
                                }
                        }
                        if (cp == 0) {
                                /* a NUL cannot be represented in a C string */
                                free(out);
                                return NULL;
                        }
                        if (cp >= 0xd800 && cp < 0xe000)
                                cp = 0xfffd; /* lone surrogate */
                        put_utf8(&o, cp);
                        break;
                default:
                        *o++ = *p;
                        break; /* " \ / */
                }
                p++;
        }
        *o = '\0';
        return out;
}

bool shim_json_int64(const struct shim_json *v, int64_t *ret)
{
        const char *p, *end;
        bool neg = false;
        uint64_t n = 0;

        if (!v || v->type != SHIM_JSON_NUMBER)
                return false;
        p = v->p;
        end = v->p + v->len;
        if (*p == '-') {
                neg = true;
                p++;
        }
        for (; p < end; p++) {
                if (*p < '0' || *p > '9')
                        return false; /* a fraction or an exponent */
                if (n > (UINT64_C(1) << 63) / 10)
                        return false;
                n = n * 10 + (uint64_t)(*p - '0');
        }
        if (n > (uint64_t)INT64_MAX + (neg ? 1 : 0))
                return false;
        *ret = neg ? (int64_t)(0 - n) : (int64_t)n;
        return true;
}

char *shim_json_string_member(const char *buf, size_t len, const char *key)
{
        struct shim_json doc, v;

        if (!buf || shim_json_parse(buf, len, &doc) < 0 || shim_json_member(&doc, key, &v) < 0)
                return NULL;
        return shim_json_strdup(&v);
}

void shim_json_quote(struct shim_buf *b, const char *s)
{
        shim_buf_putc(b, '"');
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;
                if (c == '"' || c == '\\') {
                        shim_buf_putc(b, '\\');
                        shim_buf_putc(b, (char)c);
                } else if (c < 0x20) {
                        shim_buf_puts(b, "\\u00");
                        shim_buf_putc(b, "0123456789abcdef"[c >> 4]);
                        shim_buf_putc(b, "0123456789abcdef"[c & 15]);
                } else {
                        shim_buf_putc(b, (char)c);
                }
        }
        shim_buf_putc(b, '"');
}

void shim_buf_putc(struct shim_buf *b, char c)
{
        if (b->len + 2 > b->cap) {
                b->cap = b->cap ? b->cap * 2 : 128;
                b->s = xrealloc(b->s, b->cap);
        }
        b->s[b->len++] = c;
        b->s[b->len] = '\0';
}

void shim_buf_puts(struct shim_buf *b, const char *s)
{
        while (*s)
                shim_buf_putc(b, *s++);
}

#include "util/toml.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/strv.h"
#include "util/toml-internal.h"

struct parser {
        const char *start, *p, *end;
        const char *counted; /* line counting has covered [start, counted) */
        unsigned line;
        const char *line_start;
        struct toml_value *root, *cur;
        struct error **err;
};

/* ---- tree primitives ---- */

static uint32_t hash_key(const char *s)
{
        uint32_t h = 2166136261u;
        for (; *s; s++)
                h = (h ^ (uint8_t)*s) * 16777619u;
        return h;
}

static void index_rebuild(struct toml_value *t)
{
        size_t cap = 64;
        while (cap < t->tab.n * 2)
                cap *= 2;
        free(t->tab.idx);
        t->tab.idx = xcalloc(cap, sizeof(uint32_t));
        t->tab.idxcap = cap;
        for (size_t i = 0; i < t->tab.n; i++) {
                size_t s = hash_key(t->tab.kv[i].key) & (cap - 1);
                while (t->tab.idx[s])
                        s = (s + 1) & (cap - 1);
                t->tab.idx[s] = (uint32_t)(i + 1);
        }
}

struct toml_value *toml_table_get(const struct toml_value *t, const char *key)
{
        if (!t || t->type != TOML_TABLE || !key)
                return NULL;
        if (t->tab.idx) {
                size_t s = hash_key(key) & (t->tab.idxcap - 1);
                while (t->tab.idx[s]) {
                        struct kv *kv = &t->tab.kv[t->tab.idx[s] - 1];
                        if (strcmp(kv->key, key) == 0)
                                return kv->val;
                        s = (s + 1) & (t->tab.idxcap - 1);
                }
                return NULL;
        }
        for (size_t i = 0; i < t->tab.n; i++)
                if (strcmp(t->tab.kv[i].key, key) == 0)
                        return t->tab.kv[i].val;
        return NULL;
}

static struct toml_value *value_new(enum toml_type type, unsigned line, unsigned col)
{
        struct toml_value *v = xcalloc(1, sizeof(*v));
        v->type = type;
        v->line = line;
        v->col = col;
        return v;
}

/* Takes ownership of key and val. The caller has checked that key is absent. */
static void table_insert(struct toml_value *t, char *key, struct toml_value *val)
{
        if (t->tab.n == t->tab.cap) {
                t->tab.cap = t->tab.cap ? t->tab.cap * 2 : 8;
                t->tab.kv = xreallocarray(t->tab.kv, t->tab.cap, sizeof(struct kv));
        }
        t->tab.kv[t->tab.n].key = key;
        t->tab.kv[t->tab.n].val = val;
        t->tab.n++;
        val->parent = t;
        val->key = key;
        val->depth = t->depth + 1;
        if (t->tab.n >= INDEX_MIN) {
                if (!t->tab.idx || t->tab.n * 2 > t->tab.idxcap)
                        index_rebuild(t);
                else {
                        size_t s = hash_key(key) & (t->tab.idxcap - 1);
                        while (t->tab.idx[s])
                                s = (s + 1) & (t->tab.idxcap - 1);
                        t->tab.idx[s] = (uint32_t)t->tab.n;
                }
        }
}

static void array_append(struct toml_value *a, struct toml_value *val)
{
        if (a->arr.n == a->arr.cap) {
                a->arr.cap = a->arr.cap ? a->arr.cap * 2 : 4;
                a->arr.v = xreallocarray(a->arr.v, a->arr.cap, sizeof(struct toml_value *));
        }
        a->arr.v[a->arr.n++] = val;
        val->parent = a;
        val->key = NULL;
        val->depth = a->depth + 1;
}

struct toml_value *toml_free(struct toml_value *v)
{
        if (!v)
                return NULL;
        switch (v->type) {
        case TOML_STRING:
        case TOML_DATETIME:
                free(v->str.s);
                break;
        case TOML_ARRAY:
                for (size_t i = 0; i < v->arr.n; i++)
                        toml_free(v->arr.v[i]);
                free(v->arr.v);
                break;
        case TOML_TABLE:
                for (size_t i = 0; i < v->tab.n; i++) {
                        toml_free(v->tab.kv[i].val);
                        free(v->tab.kv[i].key);
                }
                free(v->tab.kv);
                free(v->tab.idx);
                break;
        default:
                break;
        }
        free(v);
        return NULL;
}

/* ---- positions and errors ---- */

static void count_lines(struct parser *ps, const char *upto)
{
        if (upto > ps->end)
                upto = ps->end;
        for (const char *q = ps->counted; q < upto; q++)
                if (*q == '\n') {
                        ps->line++;
                        ps->line_start = q + 1;
                }
        if (upto > ps->counted)
                ps->counted = upto;
}

static void pos_at(struct parser *ps, const char *at, unsigned *line, unsigned *col)
{
        if (at < ps->line_start) {
                /* Asked about a point before the counted position: count back (rare; errors only). */
                unsigned l = ps->line;
                const char *ls = at;
                for (const char *q = at; q < ps->line_start; q++)
                        if (*q == '\n')
                                l--;
                while (ls > ps->start && ls[-1] != '\n')
                        ls--;
                *line = l;
                *col = (unsigned)(at - ls) + 1;
                return;
        }
        count_lines(ps, at);
        *line = ps->line;
        *col = (unsigned)(at - ps->line_start) + 1;
}

static int perr_at(struct parser *ps, const char *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int perr_at(struct parser *ps, const char *at, const char *fmt, ...)
{
        unsigned line, col;
        va_list ap;
        pos_at(ps, at, &line, &col);
        va_start(ap, fmt);
        _cleanup_free_ char *msg = xvasprintf(fmt, ap);
        va_end(ap);
        return error_set(ps->err, EINVAL, "toml: line %u column %u: %s", line, col, msg);
}

#define perr(ps, ...) perr_at((ps), (ps)->p, __VA_ARGS__)

static struct toml_value *value_here(struct parser *ps, enum toml_type type, const char *at)
{
        unsigned line, col;
        pos_at(ps, at, &line, &col);
        return value_new(type, line, col);
}

/* ---- lexical helpers ---- */

static bool at_end(const struct parser *ps)
{
        return ps->p >= ps->end;
}

static char peek(const struct parser *ps, size_t off)
{
        return ps->p + off < ps->end ? ps->p[off] : '\0';
}


static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

static void skip_ws(struct parser *ps)
{
        while (!at_end(ps) && (*ps->p == ' ' || *ps->p == '\t'))
                ps->p++;
}

/* Comments may hold any character but the controls other than tab (TOML 1.0 "Comment"). */
static int skip_comment(struct parser *ps)
{
        if (at_end(ps) || *ps->p != '#')
                return 0;
        for (ps->p++; !at_end(ps) && *ps->p != '\n'; ps->p++) {
                unsigned char c = (unsigned char)*ps->p;
                if (c == '\r' && peek(ps, 1) == '\n')
                        continue;
                if ((c < 0x20 && c != '\t') || c == 0x7f)
                        return perr(ps, "control character in comment");
        }
        return 0;
}

/* Consumes one newline (LF or CRLF); returns true if there was one. */
static bool eat_newline(struct parser *ps)
{
        if (peek(ps, 0) == '\n') {
                ps->p++;
                return true;
        }
        if (peek(ps, 0) == '\r' && peek(ps, 1) == '\n') {
                ps->p += 2;
                return true;
        }
        return false;
}

/* Whitespace, newlines and comments (inside arrays). */
static int skip_ws_nl(struct parser *ps)
{
        for (;;) {
                skip_ws(ps);
                int r = skip_comment(ps);
                if (r < 0)
                        return r;
                if (!eat_newline(ps))
                        return 0;
        }
}

static int expect_eol(struct parser *ps)
{
        skip_ws(ps);
        int r = skip_comment(ps);
        if (r < 0)
                return r;
        if (at_end(ps) || eat_newline(ps))
                return 0;
        return perr(ps, "expected a newline after the value, found '%c'", *ps->p);
}

/* Validates that the whole input is UTF-8 without overlongs or surrogates (TOML documents must be). */
static int check_utf8(struct parser *ps)
{
        const unsigned char *p = (const unsigned char *)ps->start, *e = (const unsigned char *)ps->end;
        while (p < e) {
                unsigned char c = *p;
                size_t n;
                if (c < 0x80) {
                        p++;
                        continue;
                }
                if (c >= 0xc2 && c <= 0xdf)
                        n = 2;
                else if (c >= 0xe0 && c <= 0xef)
                        n = 3;
                else if (c >= 0xf0 && c <= 0xf4)
                        n = 4;
                else
                        return perr_at(ps, (const char *)p, "invalid UTF-8");
                if ((size_t)(e - p) < n)
                        return perr_at(ps, (const char *)p, "invalid UTF-8");
                for (size_t i = 1; i < n; i++)
                        if ((p[i] & 0xc0) != 0x80)
                                return perr_at(ps, (const char *)p, "invalid UTF-8");
                if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0) || (c == 0xf0 && p[1] < 0x90) ||
                    (c == 0xf4 && p[1] >= 0x90))
                        return perr_at(ps, (const char *)p, "invalid UTF-8");
                p += n;
        }
        return 0;
}

/* ---- strings ---- */

static void sb_utf8(struct sbuf *b, uint32_t cp)
{
        char o[4];
        size_t n;
        if (cp < 0x80) {
                o[0] = (char)cp;
                n = 1;
        } else if (cp < 0x800) {
                o[0] = (char)(0xc0 | (cp >> 6));
                o[1] = (char)(0x80 | (cp & 0x3f));
                n = 2;
        } else if (cp < 0x10000) {
                o[0] = (char)(0xe0 | (cp >> 12));
                o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
                o[2] = (char)(0x80 | (cp & 0x3f));
                n = 3;
        } else {
                o[0] = (char)(0xf0 | (cp >> 18));
                o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
                o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
                o[3] = (char)(0x80 | (cp & 0x3f));
                n = 4;
        }
        sb_putn(b, o, n);
}

static bool is_bad_control(unsigned char c)
{
        return (c < 0x20 && c != '\t') || c == 0x7f;
}

/* At a backslash inside a basic string: appends the escaped character. */
static int parse_escape(struct parser *ps, struct sbuf *b)
{
        const char *at = ps->p;
        char c = peek(ps, 1);
        ps->p += 2;
        switch (c) {
        case 'b': sb_putc(b, '\b'); return 0;
        case 't': sb_putc(b, '\t'); return 0;
        case 'n': sb_putc(b, '\n'); return 0;
        case 'f': sb_putc(b, '\f'); return 0;
        case 'r': sb_putc(b, '\r'); return 0;
        case '"': sb_putc(b, '"'); return 0;
        case '\\': sb_putc(b, '\\'); return 0;
        case 'u':
        case 'U': {
                int n = c == 'u' ? 4 : 8;
                uint32_t cp = 0;
                for (int i = 0; i < n; i++) {
                        char h = peek(ps, (size_t)i);
                        int d = is_digit(h) ? h - '0' : (h >= 'a' && h <= 'f') ? h - 'a' + 10 : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
                        if (d < 0)
                                return perr_at(ps, at, "invalid \\%c escape", c);
                        cp = cp << 4 | (uint32_t)d;
                }
                ps->p += n;
                if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                        return perr_at(ps, at, "escape is not a Unicode scalar value");
                sb_utf8(b, cp);
                return 0;
        }
        default:
                return perr_at(ps, at, "invalid escape sequence");
        }
}

static int parse_basic_string(struct parser *ps, struct sbuf *b)
{
        ps->p++; /* opening quote */
        for (;;) {
                if (at_end(ps))
                        return perr(ps, "unterminated string");
                unsigned char c = (unsigned char)*ps->p;
                if (c == '"') {
                        ps->p++;
                        return 0;
                }
                if (c == '\\') {
                        int r = parse_escape(ps, b);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (c == '\n' || c == '\r')
                        return perr(ps, "newline in a single-line string");
                if (is_bad_control(c))
                        return perr(ps, "control character in string");
                sb_putc(b, (char)c);
                ps->p++;
        }
}

static int parse_literal_string(struct parser *ps, struct sbuf *b)
{
        ps->p++;
        for (;;) {
                if (at_end(ps))
                        return perr(ps, "unterminated string");
                unsigned char c = (unsigned char)*ps->p;
                if (c == '\'') {
                        ps->p++;
                        return 0;
                }
                if (c == '\n' || c == '\r')
                        return perr(ps, "newline in a single-line string");
                if (is_bad_control(c))
                        return perr(ps, "control character in string");
                sb_putc(b, (char)c);
                ps->p++;
        }
}

/* Multi-line strings: q is '"' (basic, escapes) or '\'' (literal). */
static int parse_multiline_string(struct parser *ps, char q, struct sbuf *b)
{
        ps->p += 3;
        eat_newline(ps); /* a newline right after the opening delimiter is trimmed */
        for (;;) {
                if (at_end(ps))
                        return perr(ps, "unterminated multi-line string");
                unsigned char c = (unsigned char)*ps->p;
                if (c == (unsigned char)q && peek(ps, 1) == q && peek(ps, 2) == q) {
                        /* Up to two extra quotes just before the closing delimiter belong to the content. */
                        size_t n = 3;
                        while (peek(ps, n) == q)
                                n++;
                        if (n > 5)
                                return perr(ps, "too many quotes at the end of a multi-line string");
                        for (size_t i = 3; i < n; i++)
                                sb_putc(b, q);
                        ps->p += n;
                        return 0;
                }
                if (q == '"' && c == '\\') {
                        /* A line-ending backslash trims the newline and all whitespace after it. */
                        const char *save = ps->p;
                        ps->p++;
                        skip_ws(ps);
                        if (peek(ps, 0) == '\n' || (peek(ps, 0) == '\r' && peek(ps, 1) == '\n')) {
                                for (;;) {
                                        skip_ws(ps);
                                        if (!eat_newline(ps))
                                                break;
                                }
                                continue;
                        }
                        ps->p = save;
                        int r = parse_escape(ps, b);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (c == '\r') {
                        if (peek(ps, 1) != '\n')
                                return perr(ps, "carriage return without newline");
                        ps->p++;
                        continue;
                }
                if (c != '\n' && is_bad_control(c))
                        return perr(ps, "control character in string");
                sb_putc(b, (char)c);
                ps->p++;
        }
}

/* ---- keys ---- */

/* Parses one simple key into a new string. */
static int parse_simple_key(struct parser *ps, char **ret)
{
        struct sbuf b = {0};
        const char *at = ps->p;
        int r = 0;
        char c = peek(ps, 0);
        if (c == '"') {
                if (peek(ps, 1) == '"' && peek(ps, 2) == '"')
                        return perr(ps, "multi-line strings are not valid keys");
                sb_puts(&b, "");
                r = parse_basic_string(ps, &b);
        } else if (c == '\'') {
                if (peek(ps, 1) == '\'' && peek(ps, 2) == '\'')
                        return perr(ps, "multi-line strings are not valid keys");
                sb_puts(&b, "");
                r = parse_literal_string(ps, &b);
        } else {
                while (!at_end(ps) && toml_is_bare_char(*ps->p))
                        ps->p++;
                if (ps->p == at)
                        return c ? perr(ps, "invalid key character '%c'", c) : perr(ps, "expected a key");
                sb_putn(&b, at, (size_t)(ps->p - at));
        }
        if (r < 0) {
                free(b.s);
                return r;
        }
        if (strlen(b.s) != b.n) {
                free(b.s);
                return perr_at(ps, at, "keys must not contain NUL");
        }
        *ret = b.s;
        return 0;
}

/* Parses a possibly dotted key into a new strv. */
static int parse_key(struct parser *ps, char ***ret)
{
        _cleanup_strv_free_ char **keys = NULL;
        unsigned n = 0;
        for (;;) {
                char *k = NULL;
                skip_ws(ps);
                int r = parse_simple_key(ps, &k);
                if (r < 0)
                        return r;
                strv_push(&keys, k);
                if (++n > TOML_MAX_DEPTH)
                        return perr(ps, "key has too many parts");
                skip_ws(ps);
                if (peek(ps, 0) != '.')
                        break;
                ps->p++;
        }
        *ret = TAKE_PTR(keys);
        return 0;
}

static char *keys_path(char **keys, size_t n)
{
        struct sbuf b = {0};
        sb_puts(&b, "");
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *k = toml_format_key(keys[i]);
                if (i)
                        sb_putc(&b, '.');
                sb_puts(&b, k);
        }
        return b.s;
}

/* ---- values ---- */

static int parse_value(struct parser *ps, struct toml_value *parent, struct toml_value **ret);

static bool is_value_end(char c)
{
        return c == '\0' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '#' || c == ',' || c == ']' ||
               c == '}';
}

static int check_depth(struct parser *ps, const struct toml_value *parent)
{
        if (parent->depth + 1 > TOML_MAX_DEPTH)
                return perr(ps, "nesting too deep");
        return 0;
}

static bool digits_n(const char *s, int n)
{
        for (int i = 0; i < n; i++)
                if (!is_digit(s[i]))
                        return false;
        return true;
}

static int num2(const char *s)
{
        return (s[0] - '0') * 10 + (s[1] - '0');
}

/* Validates a partial-time HH:MM:SS[.frac] at s; returns its length or 0. */
static size_t scan_time(const char *s, const char *end)
{
        if (end - s < 8 || !digits_n(s, 2) || s[2] != ':' || !digits_n(s + 3, 2) || s[5] != ':' || !digits_n(s + 6, 2))
                return 0;
        if (num2(s) > 23 || num2(s + 3) > 59 || num2(s + 6) > 60)
                return 0;
        size_t n = 8;
        if (s + n < end && s[n] == '.') {
                size_t d = 0;
                while (s + n + 1 + d < end && is_digit(s[n + 1 + d]))
                        d++;
                if (d == 0)
                        return 0;
                n += 1 + d;
        }
        return n;
}

static int parse_datetime(struct parser *ps, struct toml_value *v)
{
        static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        const char *s = ps->p, *end = ps->end;
        size_t n = 0;
        if (end - s >= 10 && digits_n(s, 4) && s[4] == '-' && digits_n(s + 5, 2) && s[7] == '-' && digits_n(s + 8, 2)) {
                int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + num2(s + 2), m = num2(s + 5), d = num2(s + 8);
                bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
                if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1] + (m == 2 && leap))
                        return perr(ps, "invalid date");
                n = 10;
                v->dt = TOML_DATE_LOCAL;
                /* A space separates date and time only when a time follows (RFC 3339 section 5.6 note). */
                if (s + n < end && (s[n] == 'T' || s[n] == 't' || (s[n] == ' ' && s + n + 1 < end && is_digit(s[n + 1])))) {
                        size_t t = scan_time(s + n + 1, end);
                        if (t == 0) {
                                if (s[n] == ' ')
                                        goto done; /* a date followed by a comment or such */
                                return perr(ps, "invalid time");
                        }
                        n += 1 + t;
                        v->dt = TOML_DATETIME_LOCAL;
                        if (s + n < end && (s[n] == 'Z' || s[n] == 'z')) {
                                n++;
                                v->dt = TOML_DATETIME_OFFSET;
                        } else if (s + n < end && (s[n] == '+' || s[n] == '-')) {
                                if (end - (s + n) < 6 || !digits_n(s + n + 1, 2) || s[n + 3] != ':' ||
                                    !digits_n(s + n + 4, 2) || num2(s + n + 1) > 23 || num2(s + n + 4) > 59)
                                        return perr(ps, "invalid time offset");
                                n += 6;
                                v->dt = TOML_DATETIME_OFFSET;
                        }
                }
        } else {
                n = scan_time(s, end);
                if (n == 0)
                        return perr(ps, "invalid time");
                v->dt = TOML_TIME_LOCAL;
        }
done:
        if (!is_value_end(s + n < end ? s[n] : '\0'))
                return perr_at(ps, s + n, "invalid date-time");
        v->str.s = xstrndup(s, n);
        v->str.len = n;
        ps->p += n;
        return 0;
}

/* Copies digits with TOML's underscore rule (each '_' between two digits of the given base) into out.
 * Returns the number of characters consumed, or -1. */
static int scan_digits(const char *s, const char *end, int base, struct sbuf *out)
{
        const char *p = s;
        bool prev_digit = false;
        for (; p < end; p++) {
                char c = *p;
                bool dig = base == 16 ? (is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))
                           : base == 8 ? (c >= '0' && c <= '7')
                           : base == 2 ? (c == '0' || c == '1')
                                       : is_digit(c);
                if (dig) {
                        sb_putc(out, c);
                        prev_digit = true;
                } else if (c == '_') {
                        if (!prev_digit || p + 1 >= end)
                                return -1;
                        char nx = p[1];
                        bool nd = base == 16 ? (is_digit(nx) || (nx >= 'a' && nx <= 'f') || (nx >= 'A' && nx <= 'F'))
                                  : base == 8 ? (nx >= '0' && nx <= '7')
                                  : base == 2 ? (nx == '0' || nx == '1')
                                              : is_digit(nx);
                        if (!nd)
                                return -1;
                        prev_digit = false;
                } else
                        break;
        }
        if (p == s)
                return -1;
        return (int)(p - s);
}

static int parse_number(struct parser *ps, struct toml_value *v)
{
        const char *s = ps->p, *end = ps->end, *p = s;
        struct sbuf b = {0};
        bool neg = false, has_sign = false, is_float = false;
        int n, r = 0;

        if (*p == '+' || *p == '-') {
                neg = *p == '-';
                has_sign = true;
                p++;
        }
        if (end - p >= 3 && (memcmp(p, "inf", 3) == 0 || memcmp(p, "nan", 3) == 0) &&
            is_value_end(p + 3 < end ? p[3] : '\0')) {
                v->type = TOML_FLOAT;
                v->f = p[0] == 'i' ? INFINITY : NAN;
                if (neg)
                        v->f = -v->f;
                ps->p = p + 3;
                return 0;
        }
        if (p + 1 < end && p[0] == '0' && (p[1] == 'x' || p[1] == 'o' || p[1] == 'b')) {
                int base = p[1] == 'x' ? 16 : p[1] == 'o' ? 8 : 2;
                if (has_sign) {
                        r = perr(ps, "a sign is not allowed on a hex, octal or binary integer");
                        goto out;
                }
                n = scan_digits(p + 2, end, base, &b);
                if (n < 0 || !is_value_end(p + 2 + n < end ? p[2 + n] : '\0')) {
                        r = perr(ps, "invalid integer");
                        goto out;
                }
                errno = 0;
                unsigned long long u = strtoull(b.s, NULL, base);
                if (errno == ERANGE || u > INT64_MAX) {
                        r = perr(ps, "integer out of range");
                        goto out;
                }
                v->type = TOML_INTEGER;
                v->i = (int64_t)u;
                ps->p = p + 2 + n;
                goto out;
        }
        if (neg)
                sb_putc(&b, '-');
        n = scan_digits(p, end, 10, &b);
        if (n < 0) {
                r = perr(ps, "invalid number");
                goto out;
        }
        if (n > 1 && p[0] == '0') {
                r = perr(ps, "leading zeros are not allowed");
                goto out;
        }
        p += n;
        if (p < end && *p == '.') {
                is_float = true;
                sb_putc(&b, '.');
                n = scan_digits(p + 1, end, 10, &b);
                if (n < 0) {
                        r = perr(ps, "invalid float: digits must follow the decimal point");
                        goto out;
                }
                p += 1 + n;
        }
        if (p < end && (*p == 'e' || *p == 'E')) {
                is_float = true;
                sb_putc(&b, 'e');
                p++;
                if (p < end && (*p == '+' || *p == '-'))
                        sb_putc(&b, *p++);
                n = scan_digits(p, end, 10, &b);
                if (n < 0) {
                        r = perr(ps, "invalid float exponent");
                        goto out;
                }
                p += n;
        }
        if (!is_value_end(p < end ? *p : '\0')) {
                r = perr_at(ps, p, "invalid number");
                goto out;
        }
        errno = 0;
        if (is_float) {
                v->type = TOML_FLOAT;
                v->f = strtod(b.s, NULL);
        } else {
                v->type = TOML_INTEGER;
                v->i = strtoll(b.s, NULL, 10);
                if (errno == ERANGE) {
                        r = perr(ps, "integer out of range");
                        goto out;
                }
        }
        ps->p = p;
out:
        free(b.s);
        return r;
}

static int parse_array(struct parser *ps, struct toml_value *a)
{
        int r;
        ps->p++;
        for (;;) {
                r = skip_ws_nl(ps);
                if (r < 0)
                        return r;
                if (peek(ps, 0) == ']') {
                        ps->p++;
                        return 0;
                }
                if (at_end(ps))
                        return perr(ps, "unterminated array");
                struct toml_value *e = NULL;
                r = parse_value(ps, a, &e);
                if (r < 0)
                        return r;
                array_append(a, e);
                r = skip_ws_nl(ps);
                if (r < 0)
                        return r;
                if (peek(ps, 0) == ',') {
                        ps->p++;
                        continue;
                }
                if (peek(ps, 0) == ']') {
                        ps->p++;
                        return 0;
                }
                return at_end(ps) ? perr(ps, "unterminated array") : perr(ps, "expected ',' or ']' in array");
        }
}

static void seal(struct toml_value *t)
{
        if (t->type == TOML_TABLE) {
                t->flags |= T_INLINE;
                for (size_t i = 0; i < t->tab.n; i++)
                        seal(t->tab.kv[i].val);
        }
}

static int parse_keyval(struct parser *ps, struct toml_value *table);

static int parse_inline_table(struct parser *ps, struct toml_value *t)
{
        int r;
        ps->p++;
        skip_ws(ps);
        if (peek(ps, 0) == '}') {
                ps->p++;
                seal(t);
                return 0;
        }
        for (;;) {
                r = parse_keyval(ps, t);
                if (r < 0)
                        return r;
                skip_ws(ps);
                if (peek(ps, 0) == ',') {
                        ps->p++;
                        skip_ws(ps);
                        if (peek(ps, 0) == '}')
                                return perr(ps, "trailing comma in inline table");
                        continue;
                }
                if (peek(ps, 0) == '}') {
                        ps->p++;
                        seal(t);
                        return 0;
                }
                if (at_end(ps) || peek(ps, 0) == '\n' || peek(ps, 0) == '\r')
                        return perr(ps, "unterminated inline table (newlines are not allowed inside)");
                return perr(ps, "expected ',' or '}' in inline table");
        }
}

/* Parses a value whose container will be parent (for the depth check). *ret is new on success. */
static int parse_value(struct parser *ps, struct toml_value *parent, struct toml_value **ret)
{
        const char *at = ps->p;
        char c = peek(ps, 0);
        unsigned line, col;
        int r;

        pos_at(ps, at, &line, &col);
        r = check_depth(ps, parent);
        if (r < 0)
                return r;
        if (c == '"' || c == '\'') {
                struct sbuf b = {0};
                sb_puts(&b, "");
                if (peek(ps, 1) == c && peek(ps, 2) == c)
                        r = parse_multiline_string(ps, c, &b);
                else
                        r = c == '"' ? parse_basic_string(ps, &b) : parse_literal_string(ps, &b);
                if (r < 0) {
                        free(b.s);
                        return r;
                }
                struct toml_value *v = value_new(TOML_STRING, line, col);
                v->str.s = b.s;
                v->str.len = b.n;
                *ret = v;
                return 0;
        }
        if (c == 't' || c == 'f') {
                size_t n = c == 't' ? 4 : 5;
                if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, c == 't' ? "true" : "false", n) != 0 ||
                    !is_value_end(peek(ps, n)))
                        return perr(ps, "invalid value");
                struct toml_value *v = value_here(ps, TOML_BOOLEAN, at);
                v->b = c == 't';
                ps->p += n;
                *ret = v;
                return 0;
        }
        if (c == '[' || c == '{') {
                struct toml_value *v = value_here(ps, c == '[' ? TOML_ARRAY : TOML_TABLE, at);
                v->depth = parent->depth + 1; /* provisional, for nested depth checks before insertion */
                r = c == '[' ? parse_array(ps, v) : parse_inline_table(ps, v);
                if (r < 0) {
                        toml_free(v);
                        return r;
                }
                *ret = v;
                return 0;
        }
        if (is_digit(c) || c == '+' || c == '-' || c == 'i' || c == 'n') {
                struct toml_value *v = value_here(ps, TOML_INTEGER, at);
                bool date = (ps->end - ps->p >= 5 && digits_n(ps->p, 4) && ps->p[4] == '-') ||
                            (ps->end - ps->p >= 3 && digits_n(ps->p, 2) && ps->p[2] == ':');
                if (date) {
                        v->type = TOML_DATETIME;
                        r = parse_datetime(ps, v);
                } else
                        r = parse_number(ps, v);
                if (r < 0) {
                        toml_free(v);
                        return r;
                }
                *ret = v;
                return 0;
        }
        if (c == '\0' || c == '\n' || c == '\r' || c == '#')
                return perr(ps, "expected a value");
        return perr(ps, "invalid value");
}

/* key = value, inserted into table (the current table, or an inline table being parsed). */
static int parse_keyval(struct parser *ps, struct toml_value *table)
{
        _cleanup_strv_free_ char **keys = NULL;
        const char *at;
        int r;

        skip_ws(ps);
        at = ps->p;
        r = parse_key(ps, &keys);
        if (r < 0)
                return r;
        size_t n = strv_length(keys);
        skip_ws(ps);
        if (peek(ps, 0) != '=')
                return perr(ps, "expected '=' after a key");
        ps->p++;
        skip_ws(ps);

        struct toml_value *t = table;
        for (size_t i = 0; i + 1 < n; i++) {
                struct toml_value *sub = toml_table_get(t, keys[i]);
                if (!sub) {
                        r = check_depth(ps, t);
                        if (r < 0)
                                return r;
                        sub = value_here(ps, TOML_TABLE, at);
                        sub->flags = T_DOTTED;
                        table_insert(t, xstrdup(keys[i]), sub);
                } else if (sub->type != TOML_TABLE || !(sub->flags & T_DOTTED) || (sub->flags & T_INLINE)) {
                        _cleanup_free_ char *path = keys_path(keys, i + 1);
                        return perr_at(ps, at, "duplicate key %s: cannot add keys to it here", path);
                }
                t = sub;
        }
        if (toml_table_get(t, keys[n - 1])) {
                _cleanup_free_ char *path = keys_path(keys, n);
                return perr_at(ps, at, "duplicate key %s", path);
        }
        struct toml_value *v = NULL;
        r = parse_value(ps, t, &v);
        if (r < 0)
                return r;
        table_insert(t, TAKE_PTR(keys[n - 1]), v);
        return 0;
}

static int parse_header(struct parser *ps)
{
        _cleanup_strv_free_ char **keys = NULL;
        const char *at = ps->p;
        bool aot = peek(ps, 1) == '[';
        int r;

        ps->p += aot ? 2 : 1;
        r = parse_key(ps, &keys);
        if (r < 0)
                return r;
        skip_ws(ps);
        if (peek(ps, 0) != ']' || (aot && peek(ps, 1) != ']'))
                return perr(ps, aot ? "expected ']]' after the table name" : "expected ']' after the table name");
        ps->p += aot ? 2 : 1;
        r = expect_eol(ps);
        if (r < 0)
                return r;

        size_t n = strv_length(keys);
        struct toml_value *t = ps->root;
        for (size_t i = 0; i + 1 < n; i++) {
                struct toml_value *sub = toml_table_get(t, keys[i]);
                if (!sub) {
                        r = check_depth(ps, t);
                        if (r < 0)
                                return r;
                        sub = value_here(ps, TOML_TABLE, at);
                        table_insert(t, xstrdup(keys[i]), sub);
                } else if (sub->type == TOML_ARRAY && (sub->flags & A_TABLES)) {
                        sub = sub->arr.v[sub->arr.n - 1];
                } else if (sub->type != TOML_TABLE || (sub->flags & T_INLINE)) {
                        _cleanup_free_ char *path = keys_path(keys, i + 1);
                        return perr_at(ps, at, "key %s is already defined as a %s", path,
                                       sub->type == TOML_TABLE ? "inline table" : toml_type_name(sub->type));
                }
                t = sub;
        }
        struct toml_value *last = toml_table_get(t, keys[n - 1]);
        _cleanup_free_ char *path = keys_path(keys, n);
        r = check_depth(ps, t);
        if (r < 0)
                return r;
        if (aot) {
                if (!last) {
                        last = value_here(ps, TOML_ARRAY, at);
                        last->flags = A_TABLES;
                        table_insert(t, xstrdup(keys[n - 1]), last);
                } else if (last->type != TOML_ARRAY || !(last->flags & A_TABLES))
                        return perr_at(ps, at, "duplicate key %s: not an array of tables", path);
                r = check_depth(ps, last);
                if (r < 0)
                        return r;
                struct toml_value *e = value_here(ps, TOML_TABLE, at);
                e->flags = T_EXPLICIT;
                array_append(last, e);
                ps->cur = e;
                return 0;
        }
        if (!last) {
                last = value_here(ps, TOML_TABLE, at);
                table_insert(t, xstrdup(keys[n - 1]), last);
        } else if (last->type != TOML_TABLE || (last->flags & (T_EXPLICIT | T_DOTTED | T_INLINE)))
                return perr_at(ps, at, "duplicate table %s", path);
        last->flags |= T_EXPLICIT;
        ps->cur = last;
        return 0;
}

int toml_parse(const char *buf, size_t len, struct toml_value **ret_root, struct error **err)
{
        struct parser ps = {
                .start = buf, .p = buf, .end = buf + len, .counted = buf, .line = 1, .line_start = buf, .err = err,
        };
        int r;

        if (len > TOML_MAX_INPUT)
                return error_set(err, EINVAL, "toml: input too large (%zu bytes, limit %u)", len, TOML_MAX_INPUT);
        r = check_utf8(&ps);
        if (r < 0)
                return r;
        if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
                ps.p += 3;
        ps.root = value_new(TOML_TABLE, 1, 1);
        ps.root->flags = T_EXPLICIT;
        ps.root->used = true;
        ps.cur = ps.root;
        while (!at_end(&ps)) {
                skip_ws(&ps);
                r = skip_comment(&ps);
                if (r < 0)
                        goto fail;
                if (at_end(&ps) || eat_newline(&ps))
                        continue;
                if (*ps.p == '[')
                        r = parse_header(&ps);
                else {
                        r = parse_keyval(&ps, ps.cur);
                        if (r >= 0)
                                r = expect_eol(&ps);
                }
                if (r < 0)
                        goto fail;
        }
        *ret_root = ps.root;
        return 0;
fail:
        toml_free(ps.root);
        return r;
}

int toml_parse_file(int dirfd, const char *path, struct toml_value **ret_root, struct error **err)
{
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        int r = fs_read_file(dirfd, path, TOML_MAX_INPUT, &data, &len, err);
        if (r < 0)
                return r;
        r = toml_parse(data, len, ret_root, err);
        if (r < 0)
                return error_wrap(err, "%s", path);
        return 0;
}

struct toml_value *toml_get_path(const struct toml_value *t, const char *dotted)
{
        struct parser ps = {
                .start = dotted, .p = dotted, .end = dotted + strlen(dotted), .counted = dotted, .line = 1,
                .line_start = dotted, .err = NULL,
        };
        _cleanup_strv_free_ char **keys = NULL;
        if (parse_key(&ps, &keys) < 0 || !at_end(&ps))
                return NULL;
        struct toml_value *v = (struct toml_value *)t;
        for (char **k = keys; *k && v; k++)
                v = toml_table_get(v, *k);
        return v;
}


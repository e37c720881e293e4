/* containerd filters/{scanner,parser,quote,filter}.go. Shared by metadata (list filters) and events
 * (subscription filters); field lookup, including events' `event.<path>`, is the caller's callback. */
#include "util/filters.h"

#include <ctype.h>
#include <errno.h>
#include <regex.h>
#include <stdarg.h>
#include <string.h>

#include "util/alloc.h"
#include "util/cleanup.h"

enum op { OP_PRESENT, OP_EQ, OP_NE, OP_MATCH };

struct selector {
        char **path;
        size_t npath;
        enum op op;
        char *value;
        regex_t re;
        bool re_ok;
};

struct conj {
        struct selector *sel;
        size_t n;
};

struct filter {
        struct conj *any; /* OR of conjunctions; n == 0 matches everything */
        size_t n;
        bool always;
};

/* --- scanner (mirrors filters/scanner.go, bytes instead of runes) --- */

enum tok {
        TOK_EOF = -1,
        TOK_QUOTED = -2,
        TOK_VALUE = -3,
        TOK_FIELD = -4,
        TOK_SEPARATOR = -5,
        TOK_OPERATOR = -6,
        TOK_ILLEGAL = -7,
};

struct scanner {
        const char *in;
        size_t len;
        size_t pos, ppos;
        bool value;
        const char *err;
};

static int sc_next(struct scanner *s)
{
        if (s->pos >= s->len)
                return TOK_EOF;
        s->pos = s->ppos;
        if (s->ppos >= s->len)
                return TOK_EOF;
        unsigned char c = (unsigned char)s->in[s->ppos++];
        if (c == 0) {
                if (!s->err)
                        s->err = "unexpected null";
                return TOK_ILLEGAL;
        }
        return c;
}

static int sc_peek(struct scanner *s)
{
        size_t pos = s->pos, ppos = s->ppos;
        int c = sc_next(s);
        s->pos = pos;
        s->ppos = ppos;
        return c;
}

static bool is_field(int c)
{
        return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}
static bool is_quote(int c)
{
        return c == '/' || c == '|' || c == '"';
}
static bool is_space(int c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}
static bool is_value(int c)
{
        return c >= 0 && c != ',' && !is_space(c) && (c > 0x20 && c != 0x7f);
}
static int digit_val(int c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return 16;
}

static bool sc_digits(struct scanner *s, int *ch, int base, int n)
{
        while (n > 0 && digit_val(*ch) < base) {
                *ch = sc_next(s);
                n--;
        }
        if (n > 0) {
                if (!s->err)
                        s->err = "illegal numeric escape sequence";
                return false;
        }
        return true;
}

static bool sc_quoted(struct scanner *s, int quote)
{
        bool illegal = false;
        int ch = sc_next(s);
        while (ch != quote) {
                if (ch == '\n' || ch < 0) {
                        if (!s->err)
                                s->err = "quoted literal not terminated";
                        return false;
                }
                if (ch == '\\') {
                        ch = sc_next(s);
                        switch (ch) {
                        case 'a':
                        case 'b':
                        case 'f':
                        case 'n':
                        case 'r':
                        case 't':
                        case 'v':
                        case '\\':
                                ch = sc_next(s);
                                break;
                        case '0':
                        case '1':
                        case '2':
                        case '3':
                        case '4':
                        case '5':
                        case '6':
                        case '7':
                                if (!sc_digits(s, &ch, 8, 3))
                                        illegal = true;
                                break;
                        case 'x':
                                ch = sc_next(s);
                                if (!sc_digits(s, &ch, 16, 2))
                                        illegal = true;
                                break;
                        case 'u':
                                ch = sc_next(s);
                                if (!sc_digits(s, &ch, 16, 4))
                                        illegal = true;
                                break;
                        case 'U':
                                ch = sc_next(s);
                                if (!sc_digits(s, &ch, 16, 8))
                                        illegal = true;
                                break;
                        default:
                                if (ch == quote) {
                                        ch = sc_next(s);
                                        break;
                                }
                                if (!s->err)
                                        s->err = "illegal escape sequence";
                                illegal = true;
                                /* Go leaves ch as the bad rune and loops on it. */
                                if (ch < 0)
                                        return false;
                                break;
                        }
                } else {
                        ch = sc_next(s);
                }
        }
        return !illegal;
}

/* Returns the token; *ret_pos and the text [*ret_start, s->ppos) describe it. */
static int sc_scan(struct scanner *s, size_t *ret_pos)
{
        int ch = sc_next(s);
        size_t pos = s->pos;
        for (;;) {
                *ret_pos = pos;
                if (ch == TOK_EOF || ch == TOK_ILLEGAL) {
                        *ret_pos = s->pos;
                        return ch;
                }
                if (is_quote(ch))
                        return sc_quoted(s, ch) ? TOK_QUOTED : TOK_ILLEGAL;
                if (ch == ',' || ch == '.') {
                        s->value = false;
                        return TOK_SEPARATOR;
                }
                if (ch == '=' || ch == '!' || ch == '~') {
                        for (int c = sc_peek(s); c == '=' || c == '!' || c == '~'; c = sc_peek(s))
                                sc_next(s);
                        s->value = true;
                        return TOK_OPERATOR;
                }
                if (is_space(ch)) {
                        ch = sc_next(s);
                        pos = s->pos;
                        continue;
                }
                if (s->value) {
                        while (is_value(sc_peek(s)))
                                sc_next(s);
                        s->value = false;
                        return TOK_VALUE;
                }
                if (is_field(ch)) {
                        while (is_field(sc_peek(s)))
                                sc_next(s);
                        return TOK_FIELD;
                }
                *ret_pos = s->pos;
                return ch;
        }
}

/* --- unquote (filters/quote.go) --- */

static void put_utf8(char **o, unsigned long r)
{
        char *p = *o;
        if (r > 0x10ffff || (r >= 0xd800 && r <= 0xdfff))
                r = 0xfffd;
        if (r < 0x80) {
                *p++ = (char)r;
        } else if (r < 0x800) {
                *p++ = (char)(0xc0 | (r >> 6));
                *p++ = (char)(0x80 | (r & 0x3f));
        } else if (r < 0x10000) {
                *p++ = (char)(0xe0 | (r >> 12));
                *p++ = (char)(0x80 | ((r >> 6) & 0x3f));
                *p++ = (char)(0x80 | (r & 0x3f));
        } else {
                *p++ = (char)(0xf0 | (r >> 18));
                *p++ = (char)(0x80 | ((r >> 12) & 0x3f));
                *p++ = (char)(0x80 | ((r >> 6) & 0x3f));
                *p++ = (char)(0x80 | (r & 0x3f));
        }
        *o = p;
}

/* s includes the quotes. Returns a new string or NULL on a syntax error. */
static char *unquote(const char *s, size_t n)
{
        if (n < 2 || s[0] != s[n - 1])
                return NULL;
        char quote = s[0];
        const char *p = s + 1, *end = s + n - 1;
        char *out = xmalloc(4 * n + 1), *o = out;
        while (p < end) {
                unsigned char c = (unsigned char)*p;
                if (c == (unsigned char)quote)
                        goto bad;
                if (c != '\\') {
                        *o++ = (char)c;
                        p++;
                        continue;
                }
                if (end - p < 2)
                        goto bad;
                c = (unsigned char)p[1];
                p += 2;
                switch (c) {
                case 'a':
                        *o++ = '\a';
                        break;
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
                case 'v':
                        *o++ = '\v';
                        break;
                case '\\':
                        *o++ = '\\';
                        break;
                case 'x':
                case 'u':
                case 'U': {
                        int k = c == 'x' ? 2 : c == 'u' ? 4 : 8;
                        unsigned long v = 0;
                        if (end - p < k)
                                goto bad;
                        for (int i = 0; i < k; i++) {
                                int d = digit_val((unsigned char)p[i]);
                                if (d >= 16)
                                        goto bad;
                                v = v * 16 + (unsigned long)d;
                        }
                        p += k;
                        if (c == 'x')
                                *o++ = (char)v;
                        else {
                                if (v > 0x10ffff)
                                        goto bad;
                                put_utf8(&o, v);
                        }
                        break;
                }
                case '0':
                case '1':
                case '2':
                case '3':
                case '4':
                case '5':
                case '6':
                case '7': {
                        unsigned v = (unsigned)(c - '0');
                        if (end - p < 2)
                                goto bad;
                        for (int i = 0; i < 2; i++) {
                                int d = (unsigned char)p[i] - '0';
                                if (d < 0 || d > 7)
                                        goto bad;
                                v = v * 8 + (unsigned)d;
                        }
                        if (v > 255)
                                goto bad;
                        p += 2;
                        *o++ = (char)v;
                        break;
                }
                default:
                        if (c == (unsigned char)quote || c == '\'' || c == '"') {
                                if (c != (unsigned char)quote && quote != '"' && quote != '\'')
                                        goto bad;
                                if (c == '\'' && quote == '"')
                                        goto bad;
                                *o++ = (char)c;
                                break;
                        }
                        goto bad;
                }
        }
        *o = '\0';
        return out;
bad:
        free(out);
        return NULL;
}

/* glibc's regcomp copies the operand of a bounded repetition n times and of stacked quantifiers ("a++++")
 * exponentially, so a client's ~= value (a list filter or an event subscription) could make the daemon
 * allocate gigabytes. RE2, which containerd uses, rejects stacked quantifiers and counts over 1000 outright;
 * we refuse those too, plus anything whose estimated expansion passes REGEX_MAX_EXPANSION, and such a
 * selector never matches (as containerd's does when its regexp fails to compile). */
#define REGEX_MAX_LEN 1024
#define REGEX_MAX_EXPANSION 20000ul
#define REGEX_MAX_DEPTH 32

static bool regex_acceptable(const char *re)
{
        unsigned long seq[REGEX_MAX_DEPTH + 1] = {0}, last[REGEX_MAX_DEPTH + 1] = {0};
        size_t len = strlen(re), i = 0;
        bool quantified = false;
        int d = 0;

        if (len > REGEX_MAX_LEN)
                return false;
        while (i < len) {
                char c = re[i];
                unsigned long atom = 1;

                if (c == '*' || c == '+' || c == '?') {
                        if (quantified)
                                return false;
                        quantified = true;
                        i++;
                        continue;
                }
                if (c == '{' && i + 1 < len && isdigit((unsigned char)re[i + 1])) {
                        unsigned long n = 0, m;
                        i++;
                        while (i < len && isdigit((unsigned char)re[i]) && n <= 1000)
                                n = n * 10 + (unsigned long)(re[i++] - '0');
                        m = n;
                        if (i < len && re[i] == ',') {
                                i++;
                                m = n + 1;
                                if (i < len && isdigit((unsigned char)re[i])) {
                                        m = 0;
                                        while (i < len && isdigit((unsigned char)re[i]) && m <= 1000)
                                                m = m * 10 + (unsigned long)(re[i++] - '0');
                                }
                        }
                        if (i < len && re[i] == '}')
                                i++;
                        if (quantified || n > 1000 || m > 1000)
                                return false;
                        if (m < 1)
                                m = 1;
                        seq[d] += last[d] * (m - 1);
                        last[d] *= m;
                        if (seq[d] > REGEX_MAX_EXPANSION)
                                return false;
                        quantified = true;
                        continue;
                }
                quantified = false;
                if (c == '(') {
                        if (d == REGEX_MAX_DEPTH)
                                return false;
                        d++;
                        seq[d] = last[d] = 0;
                        i++;
                        continue;
                }
                if (c == ')' && d > 0) {
                        atom = seq[d] ? seq[d] : 1;
                        d--;
                        i++;
                } else if (c == '|') {
                        last[d] = 0;
                        i++;
                        continue;
                } else if (c == '\\') {
                        i += 2;
                } else if (c == '[') {
                        /* A bracket expression is one position; skip it, including [:class:] items. */
                        i++;
                        if (i < len && re[i] == '^')
                                i++;
                        if (i < len && re[i] == ']')
                                i++;
                        while (i < len && re[i] != ']') {
                                if (re[i] == '[' && i + 1 < len && strchr(":.=", re[i + 1])) {
                                        const char *end = strstr(re + i + 2, (char[]){re[i + 1], ']', 0});
                                        i = end ? (size_t)(end - re) + 2 : len;
                                        continue;
                                }
                                i++;
                        }
                        i++;
                } else {
                        i++;
                }
                seq[d] += atom;
                last[d] = atom;
                if (seq[d] > REGEX_MAX_EXPANSION)
                        return false;
        }
        return true;
}

/* --- parser --- */

struct parser {
        struct scanner sc;
        const char *input;
        struct error **err;
};

static int mkerr(struct parser *p, size_t pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int mkerr(struct parser *p, size_t pos, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *msg = xvasprintf(fmt, ap);
        va_end(ap);
        size_t len = strlen(p->input);
        if (pos < len)
                return error_set(p->err, EINVAL, "filters: parse error: [%.*s >|%c|< %s]: %s", (int)pos, p->input,
                                 p->input[pos], p->input + pos + 1, msg);
        return error_set(p->err, EINVAL, "filters: parse error: [%s]: %s", p->input, msg);
}

static int parse_field(struct parser *p, char **ret)
{
        size_t pos;
        size_t start;
        int t = sc_scan(&p->sc, &pos);
        start = pos;
        switch (t) {
        case TOK_FIELD:
                *ret = xstrndup(p->input + start, p->sc.ppos - start);
                return 0;
        case TOK_QUOTED:
                if (p->input[start] != '"' && p->input[start] != '\'')
                        return mkerr(p, pos, "invalid quote encountered");
                *ret = unquote(p->input + start, p->sc.ppos - start);
                if (!*ret)
                        return mkerr(p, pos, "unquoting failed: invalid syntax");
                return 0;
        case TOK_ILLEGAL:
                return mkerr(p, pos, "%s", p->sc.err ? p->sc.err : "illegal token");
        }
        return mkerr(p, pos, "expected field or quoted");
}

static int parse_selector(struct parser *p, struct selector *sel)
{
        int r;
        char *f = NULL;
        r = parse_field(p, &f);
        if (r < 0)
                return r;
        sel->path = xcalloc(2, sizeof(char *));
        sel->path[sel->npath++] = f;
        while (sc_peek(&p->sc) == '.') {
                size_t pos;
                sc_scan(&p->sc, &pos);
                r = parse_field(p, &f);
                if (r < 0)
                        return r;
                sel->path = xreallocarray(sel->path, sel->npath + 2, sizeof(char *));
                sel->path[sel->npath++] = f;
                sel->path[sel->npath] = NULL;
        }
        int c = sc_peek(&p->sc);
        if (c == ',' || c == TOK_EOF) {
                sel->op = OP_PRESENT;
                return 0;
        }
        size_t pos;
        int t = sc_scan(&p->sc, &pos);
        if (t == TOK_OPERATOR) {
                size_t n = p->sc.ppos - pos;
                const char *o = p->input + pos;
                if (n == 2 && memcmp(o, "==", 2) == 0)
                        sel->op = OP_EQ;
                else if (n == 2 && memcmp(o, "!=", 2) == 0)
                        sel->op = OP_NE;
                else if (n == 2 && memcmp(o, "~=", 2) == 0)
                        sel->op = OP_MATCH;
                else
                        return mkerr(p, pos, "unsupported operator \"%.*s\"", (int)n, o);
        } else if (t == TOK_ILLEGAL) {
                return mkerr(p, pos, "%s", p->sc.err ? p->sc.err : "illegal token");
        } else {
                return mkerr(p, pos, "expected an operator (\"==\"|\"!=\"|\"~=\")");
        }
        t = sc_scan(&p->sc, &pos);
        switch (t) {
        case TOK_VALUE:
        case TOK_FIELD:
                sel->value = xstrndup(p->input + pos, p->sc.ppos - pos);
                break;
        case TOK_QUOTED:
                if (sel->op != OP_MATCH && p->input[pos] != '"' && p->input[pos] != '\'')
                        return mkerr(p, pos, "invalid quote encountered");
                sel->value = unquote(p->input + pos, p->sc.ppos - pos);
                if (!sel->value)
                        return mkerr(p, pos, "unquoting failed: invalid syntax");
                break;
        case TOK_ILLEGAL:
                return mkerr(p, pos, "%s", p->sc.err ? p->sc.err : "illegal token");
        default:
                return mkerr(p, pos, "expected value or quoted");
        }
        if (sel->op == OP_MATCH) {
                /* containerd compiles lazily: a bad regexp matches nothing rather than failing the call. */
                sel->re_ok =
                    regex_acceptable(sel->value) && regcomp(&sel->re, sel->value, REG_EXTENDED | REG_NOSUB) == 0;
        }
        return 0;
}

static void selector_clear(struct selector *s)
{
        for (size_t i = 0; i < s->npath; i++)
                free(s->path[i]);
        free(s->path);
        free(s->value);
        if (s->re_ok)
                regfree(&s->re);
}

static int parse_one(const char *input, struct conj *c, struct error **err)
{
        struct parser p = {.sc = {.in = input, .len = strlen(input)}, .input = input, .err = err};
        for (;;) {
                c->sel = xreallocarray(c->sel, c->n + 1, sizeof(*c->sel));
                memset(&c->sel[c->n], 0, sizeof(*c->sel));
                c->n++;
                int r = parse_selector(&p, &c->sel[c->n - 1]);
                if (r < 0)
                        return r;
                int t = sc_peek(&p.sc);
                if (t == TOK_EOF)
                        return 0;
                if (t == ',') {
                        size_t pos;
                        sc_scan(&p.sc, &pos);
                        continue;
                }
                return mkerr(&p, p.sc.ppos, "unexpected input: %c", t >= 0 ? t : '?');
        }
}

int filter_parse(char *const *strs, size_t n, struct filter **ret, struct error **err)
{
        struct filter *f = xcalloc(1, sizeof(*f));
        if (n == 0)
                f->always = true;
        for (size_t i = 0; i < n; i++) {
                f->any = xreallocarray(f->any, f->n + 1, sizeof(*f->any));
                memset(&f->any[f->n], 0, sizeof(*f->any));
                f->n++;
                if (!strs[i] || !strs[i][0])
                        continue; /* empty string: Always */
                int r = parse_one(strs[i], &f->any[f->n - 1], err);
                if (r < 0) {
                        filter_free(f);
                        return r;
                }
        }
        *ret = f;
        return 0;
}

static bool selector_match(const struct selector *s, filter_field_fn lookup, void *ud)
{
        const char *v = NULL;
        bool present = lookup((const char *const *)s->path, s->npath, &v, ud);
        if (!present)
                v = "";
        switch (s->op) {
        case OP_PRESENT:
                return present;
        case OP_EQ:
                return present && strcmp(v, s->value) == 0;
        case OP_NE:
                return strcmp(v, s->value) != 0;
        case OP_MATCH:
                return s->re_ok && regexec(&s->re, v, 0, NULL, 0) == 0;
        }
        return false;
}

bool filter_match(const struct filter *f, filter_field_fn lookup, void *userdata)
{
        if (!f || f->always)
                return true;
        for (size_t i = 0; i < f->n; i++) {
                bool all = true;
                for (size_t j = 0; j < f->any[i].n && all; j++)
                        all = selector_match(&f->any[i].sel[j], lookup, userdata);
                if (all)
                        return true;
        }
        return false;
}

void filter_free(struct filter *f)
{
        if (!f)
                return;
        for (size_t i = 0; i < f->n; i++) {
                for (size_t j = 0; j < f->any[i].n; j++)
                        selector_clear(&f->any[i].sel[j]);
                free(f->any[i].sel);
        }
        free(f->any);
        free(f);
}

bool filter_lookup_common(const char *const *path, size_t npath, const char **ret_value, char *const *labels,
                          const char *const *names, const char *const *values, size_t nfields)
{
        if (npath == 0)
                return false;
        if (strcmp(path[0], "labels") == 0) {
                if (npath < 2)
                        return false;
                /* containerd joins the rest with "." (labels.a.b means key "a.b"). */
                _cleanup_free_ char *key = xstrdup(path[1]);
                for (size_t i = 2; i < npath; i++) {
                        char *k = xasprintf("%s.%s", key, path[i]);
                        free(key);
                        key = k;
                }
                for (size_t i = 0; labels && labels[i]; i += 2)
                        if (strcmp(labels[i], key) == 0) {
                                *ret_value = labels[i + 1];
                                return true;
                        }
                return false;
        }
        if (npath != 1)
                return false;
        for (size_t i = 0; i < nfields; i++)
                if (strcmp(path[0], names[i]) == 0) {
                        if (!values[i] || !values[i][0])
                                return false;
                        *ret_value = values[i];
                        return true;
                }
        return false;
}

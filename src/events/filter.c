/* containerd's filter syntax (filters/{scanner,parser,quote,filter}.go), just enough for event subscriptions.
 * Mirrors the scanner's quirks: a value starting with '/', '|' or '"' is a quoted literal, and only ~= accepts
 * /.../ and |...| quoting, so `topic==/tasks/exit` is a parse error in containerd too (write
 * `topic=="/tasks/exit"`). See events-internal.h for why this is not src/metadata/filters.c. */
#include <ctype.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "events/events-internal.h"
#include "util/alloc.h"
#include "util/cleanup.h"

enum op {
        OP_PRESENT,
        OP_EQUAL,
        OP_NOT_EQUAL,
        OP_MATCHES,
};

struct selector {
        char **path;
        size_t npath;
        enum op op;
        char *value;
        regex_t re;
        bool re_ok;
};

struct conjunction {
        struct selector *sel;
        size_t n; /* 0 = always */
};

struct events_filter {
        struct conjunction *any;
        size_t n; /* 0 = always */
};

enum tok {
        TOK_EOF,
        TOK_FIELD,
        TOK_QUOTED,
        TOK_VALUE,
        TOK_SEPARATOR,
        TOK_OPERATOR,
        TOK_ILLEGAL,
        TOK_OTHER,
};

struct scanner {
        const char *in;
        size_t len;
        size_t pos;
        bool value;
        const char *err;
};

static bool is_field_char(char c)
{
        return c == '_' || isalnum((unsigned char)c);
}

static bool is_quote_char(char c)
{
        return c == '/' || c == '|' || c == '"';
}

static bool is_op_char(char c)
{
        return c == '=' || c == '!' || c == '~';
}

static int peek(const struct scanner *s)
{
        return s->pos < s->len ? (unsigned char)s->in[s->pos] : -1;
}

static enum tok scan(struct scanner *s, size_t *ret_start)
{
        char c;

        while (s->pos < s->len && isspace((unsigned char)s->in[s->pos]))
                s->pos++;
        *ret_start = s->pos;
        if (s->pos >= s->len)
                return TOK_EOF;
        c = s->in[s->pos++];
        if (is_quote_char(c)) {
                while (s->pos < s->len && s->in[s->pos] != c && s->in[s->pos] != '\n') {
                        if (s->in[s->pos] == '\\' && s->pos + 1 < s->len)
                                s->pos++;
                        s->pos++;
                }
                if (s->pos >= s->len || s->in[s->pos] != c) {
                        s->err = "quoted literal not terminated";
                        return TOK_ILLEGAL;
                }
                s->pos++;
                return TOK_QUOTED;
        }
        if (c == ',' || c == '.') {
                s->value = false;
                return TOK_SEPARATOR;
        }
        if (is_op_char(c)) {
                while (s->pos < s->len && is_op_char(s->in[s->pos]))
                        s->pos++;
                s->value = true;
                return TOK_OPERATOR;
        }
        if (s->value) {
                while (s->pos < s->len && s->in[s->pos] != ',' && !isspace((unsigned char)s->in[s->pos]))
                        s->pos++;
                s->value = false;
                return TOK_VALUE;
        }
        if (is_field_char(c)) {
                while (s->pos < s->len && is_field_char(s->in[s->pos]))
                        s->pos++;
                return TOK_FIELD;
        }
        return TOK_OTHER;
}

/* filters/parser.go mkerr: "filters: parse error: [before >|c|< after]: msg", or "[input]: msg" at the end. */
static int mkerr(const struct scanner *s, size_t pos, struct error **err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int mkerr(const struct scanner *s, size_t pos, struct error **err, const char *fmt, ...)
{
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        va_start(ap, fmt);
        msg = xvasprintf(fmt, ap);
        va_end(ap);
        if (pos < s->len)
                return error_set(err, EINVAL, "filters: parse error: [%.*s >|%c|< %s]: %s", (int)pos, s->in, s->in[pos],
                                 s->in + pos + 1, msg);
        return error_set(err, EINVAL, "filters: parse error: [%s]: %s", s->in, msg);
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

static size_t utf8_encode(uint32_t cp, char *out)
{
        if (cp < 0x80) {
                out[0] = (char)cp;
                return 1;
        }
        if (cp < 0x800) {
                out[0] = (char)(0xc0 | cp >> 6);
                out[1] = (char)(0x80 | (cp & 0x3f));
                return 2;
        }
        if (cp < 0x10000) {
                out[0] = (char)(0xe0 | cp >> 12);
                out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
                out[2] = (char)(0x80 | (cp & 0x3f));
                return 3;
        }
        out[0] = (char)(0xf0 | cp >> 18);
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[3] = (char)(0x80 | (cp & 0x3f));
        return 4;
}

/* Go string-literal unquoting, with '/' and '|' also accepted as double quotes (filters/quote.go). Returns a
 * new string or NULL on a syntax error. */
static char *unquote(const char *q, size_t n)
{
        _cleanup_free_ char *out = NULL;
        char quote;
        size_t o = 0;

        if (n < 2 || q[0] != q[n - 1])
                return NULL;
        quote = q[0];
        out = xmalloc(4 * n + 1);
        for (size_t i = 1; i < n - 1;) {
                char c = q[i++];
                uint32_t v = 0;
                int digits = 0;

                if (c == quote || c == '\n')
                        return NULL;
                if (c != '\\') {
                        out[o++] = c;
                        continue;
                }
                if (i >= n - 1)
                        return NULL;
                c = q[i++];
                switch (c) {
                case 'a':
                        out[o++] = '\a';
                        continue;
                case 'b':
                        out[o++] = '\b';
                        continue;
                case 'f':
                        out[o++] = '\f';
                        continue;
                case 'n':
                        out[o++] = '\n';
                        continue;
                case 'r':
                        out[o++] = '\r';
                        continue;
                case 't':
                        out[o++] = '\t';
                        continue;
                case 'v':
                        out[o++] = '\v';
                        continue;
                case '\\':
                        out[o++] = '\\';
                        continue;
                case '\'':
                case '"':
                case '|':
                case '/':
                        if (c != quote)
                                return NULL;
                        out[o++] = c;
                        continue;
                case 'x':
                        digits = 2;
                        break;
                case 'u':
                        digits = 4;
                        break;
                case 'U':
                        digits = 8;
                        break;
                default:
                        if (c < '0' || c > '7' || i + 2 > n - 1)
                                return NULL;
                        v = (uint32_t)(c - '0');
                        for (int j = 0; j < 2; j++, i++) {
                                if (q[i] < '0' || q[i] > '7')
                                        return NULL;
                                v = v << 3 | (uint32_t)(q[i] - '0');
                        }
                        if (v > 255)
                                return NULL;
                        out[o++] = (char)v;
                        continue;
                }
                if (i + (size_t)digits > n - 1)
                        return NULL;
                for (int j = 0; j < digits; j++, i++) {
                        int h = hexval(q[i]);
                        if (h < 0)
                                return NULL;
                        v = v << 4 | (uint32_t)h;
                }
                if (c == 'x')
                        out[o++] = (char)v;
                else if (v > 0x10ffff || v == 0)
                        return NULL;
                else
                        o += utf8_encode(v, out + o);
        }
        out[o] = 0;
        return TAKE_PTR(out);
}

/* glibc's regcomp copies the operand of a bounded repetition n times and of stacked quantifiers ("a++++")
 * exponentially, so a subscriber's ~= value could make the daemon allocate gigabytes. RE2, which containerd
 * uses, rejects stacked quantifiers and counts over 1000 outright; we refuse those too, plus anything whose
 * estimated expansion passes REGEX_MAX_EXPANSION, and such a selector never matches (as containerd's does when
 * its regexp fails to compile). */
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

static int parse_quoted(struct scanner *s, size_t start, bool allow_alt, char **ret, struct error **err)
{
        char *v;

        if (!allow_alt && s->in[start] != '"' && s->in[start] != '\'')
                return mkerr(s, start, err, "invalid quote encountered");
        v = unquote(s->in + start, s->pos - start);
        if (!v)
                return mkerr(s, start, err, "unquoting failed: invalid syntax");
        *ret = v;
        return 0;
}

static int parse_field(struct scanner *s, char **ret, struct error **err)
{
        size_t start;

        switch (scan(s, &start)) {
        case TOK_FIELD:
                *ret = xstrndup(s->in + start, s->pos - start);
                return 0;
        case TOK_QUOTED:
                return parse_quoted(s, start, false, ret, err);
        case TOK_ILLEGAL:
                return mkerr(s, start, err, "%s", s->err);
        default:
                return mkerr(s, start, err, "expected field or quoted");
        }
}

static void selector_done(struct selector *sel)
{
        for (size_t i = 0; i < sel->npath; i++)
                free(sel->path[i]);
        free(sel->path);
        free(sel->value);
        if (sel->re_ok)
                regfree(&sel->re);
}

static int parse_selector(struct scanner *s, struct selector *sel, struct error **err)
{
        size_t start;
        char *f = NULL;
        enum tok t;
        int r, c;

        for (;;) {
                r = parse_field(s, &f, err);
                if (r < 0)
                        return r;
                sel->path = xreallocarray(sel->path, sel->npath + 1, sizeof(char *));
                sel->path[sel->npath++] = f;
                if (peek(s) != '.')
                        break;
                (void)scan(s, &start);
        }

        c = peek(s);
        if (c == ',' || c == -1) {
                sel->op = OP_PRESENT;
                return 0;
        }
        t = scan(s, &start);
        if (t == TOK_ILLEGAL)
                return mkerr(s, start, err, "%s", s->err);
        if (t != TOK_OPERATOR)
                return mkerr(s, start, err, "expected an operator (\"==\"|\"!=\"|\"~=\")");
        if (s->pos - start == 2 && strncmp(s->in + start, "==", 2) == 0)
                sel->op = OP_EQUAL;
        else if (s->pos - start == 2 && strncmp(s->in + start, "!=", 2) == 0)
                sel->op = OP_NOT_EQUAL;
        else if (s->pos - start == 2 && strncmp(s->in + start, "~=", 2) == 0)
                sel->op = OP_MATCHES;
        else
                return mkerr(s, start, err, "unsupported operator \"%.*s\"", (int)(s->pos - start), s->in + start);

        t = scan(s, &start);
        switch (t) {
        case TOK_VALUE:
        case TOK_FIELD:
                sel->value = xstrndup(s->in + start, s->pos - start);
                break;
        case TOK_QUOTED:
                r = parse_quoted(s, start, sel->op == OP_MATCHES, &sel->value, err);
                if (r < 0)
                        return r;
                break;
        case TOK_ILLEGAL:
                return mkerr(s, start, err, "%s", s->err);
        default:
                return mkerr(s, start, err, "expected value or quoted");
        }
        if (sel->op == OP_MATCHES)
                /* containerd logs a bad regexp and never matches; do the same (no error at parse time). */
                sel->re_ok =
                    regex_acceptable(sel->value) && regcomp(&sel->re, sel->value, REG_EXTENDED | REG_NOSUB) == 0;
        return 0;
}

static int parse_one(const char *str, struct conjunction *conj, struct error **err)
{
        struct scanner s = {.in = str, .len = strlen(str)};
        int r, c;

        if (s.len == 0)
                return 0;
        for (;;) {
                conj->sel = xreallocarray(conj->sel, conj->n + 1, sizeof(*conj->sel));
                memset(&conj->sel[conj->n], 0, sizeof(conj->sel[0]));
                r = parse_selector(&s, &conj->sel[conj->n++], err);
                if (r < 0)
                        return r;
                c = peek(&s);
                if (c == -1)
                        return 0;
                if (c != ',')
                        return mkerr(&s, s.pos, err, "unexpected input: %c", c);
                s.pos++;
                s.value = false;
        }
}

int events_filter_parse(char *const *strs, size_t n, struct events_filter **ret, struct error **err)
{
        struct events_filter *f = xcalloc(1, sizeof(*f));
        int r;

        if (n > 0)
                f->any = xcalloc(n, sizeof(*f->any));
        for (size_t i = 0; i < n; i++) {
                f->n++;
                r = parse_one(strs[i] ? strs[i] : "", &f->any[i], err);
                if (r < 0) {
                        events_filter_free(f);
                        return r;
                }
                if (f->any[i].n == 0) {
                        /* An empty string matches everything, so the whole OR does. */
                        events_filter_free(f);
                        f = xcalloc(1, sizeof(*f));
                        break;
                }
        }
        *ret = f;
        return 0;
}

static bool selector_match(const struct selector *sel, events_field_fn lookup, void *userdata)
{
        const char *v = NULL;
        bool present = lookup((const char *const *)sel->path, sel->npath, &v, userdata);

        if (!present)
                v = "";
        switch (sel->op) {
        case OP_PRESENT:
                return present;
        case OP_EQUAL:
                return present && strcmp(v, sel->value) == 0;
        case OP_NOT_EQUAL:
                return strcmp(v, sel->value) != 0;
        case OP_MATCHES:
                return sel->re_ok && regexec(&sel->re, v, 0, NULL, 0) == 0;
        }
        return false;
}

bool events_filter_match(const struct events_filter *f, events_field_fn lookup, void *userdata)
{
        if (!f || f->n == 0)
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

void events_filter_free(struct events_filter *f)
{
        if (!f)
                return;
        for (size_t i = 0; i < f->n; i++) {
                for (size_t j = 0; j < f->any[i].n; j++)
                        selector_done(&f->any[i].sel[j]);
                free(f->any[i].sel);
        }
        free(f->any);
        free(f);
}

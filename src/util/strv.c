#include "util/strv.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

size_t strv_length(char *const *v)
{
        size_t n = 0;
        if (!v)
                return 0;
        while (v[n])
                n++;
        return n;
}

void strv_push(char ***v, char *s)
{
        size_t n = strv_length(*v);
        char **nv = xreallocarray(*v, n + 2, sizeof(char *));
        nv[n] = s;
        nv[n + 1] = NULL;
        *v = nv;
}

void strv_extend(char ***v, const char *s)
{
        strv_push(v, xstrdup(s));
}

void strv_extendf(char ***v, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        char *s = xvasprintf(fmt, ap);
        va_end(ap);
        strv_push(v, s);
}

void strv_extend_strv(char ***v, char *const *other)
{
        size_t n = strv_length(*v), m = strv_length(other);
        char **nv = xreallocarray(*v, n + m + 1, sizeof(char *));
        for (size_t i = 0; i < m; i++)
                nv[n + i] = xstrdup(other[i]);
        nv[n + m] = NULL;
        *v = nv;
}

char **strv_new_empty(void)
{
        return xcalloc(1, sizeof(char *));
}

char **strv_copy(char *const *v)
{
        char **c = strv_new_empty();
        strv_extend_strv(&c, v);
        return c;
}

long strv_find(char *const *v, const char *s)
{
        if (!v || !s)
                return -1;
        for (long i = 0; v[i]; i++)
                if (strcmp(v[i], s) == 0)
                        return i;
        return -1;
}

bool strv_contains(char *const *v, const char *s)
{
        return strv_find(v, s) >= 0;
}

size_t strv_remove(char **v, const char *s)
{
        size_t removed = 0, w = 0;
        if (!v)
                return 0;
        for (size_t r = 0; v[r]; r++) {
                if (strcmp(v[r], s) == 0) {
                        free(v[r]);
                        removed++;
                } else
                        v[w++] = v[r];
        }
        v[w] = NULL;
        return removed;
}

char *strv_join(char *const *v, const char *sep)
{
        size_t n = strv_length(v), seplen = strlen(sep), total = 1;
        for (size_t i = 0; i < n; i++)
                total += strlen(v[i]) + (i ? seplen : 0);
        char *out = xmalloc(total), *p = out;
        for (size_t i = 0; i < n; i++) {
                if (i) {
                        memcpy(p, sep, seplen);
                        p += seplen;
                }
                size_t l = strlen(v[i]);
                memcpy(p, v[i], l);
                p += l;
        }
        *p = '\0';
        return out;
}

char **strv_split(const char *s, const char *sep)
{
        char **v = strv_new_empty();
        size_t seplen = strlen(sep);
        if (!s || !*s || seplen == 0)
                return v;
        for (;;) {
                const char *e = strstr(s, sep);
                if (!e) {
                        strv_extend(&v, s);
                        break;
                }
                strv_push(&v, xstrndup(s, (size_t)(e - s)));
                s = e + seplen;
        }
        return v;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

void strv_sort(char **v)
{
        size_t n = strv_length(v);
        if (n > 1)
                qsort(v, n, sizeof(char *), cmp_str);
}

void strv_uniq(char **v)
{
        if (!v || !v[0])
                return;
        size_t w = 1;
        for (size_t r = 1; v[r]; r++) {
                if (strcmp(v[r], v[w - 1]) == 0)
                        free(v[r]);
                else
                        v[w++] = v[r];
        }
        v[w] = NULL;
}

bool strv_equal(char *const *a, char *const *b)
{
        size_t n = strv_length(a);
        if (n != strv_length(b))
                return false;
        for (size_t i = 0; i < n; i++)
                if (strcmp(a[i], b[i]) != 0)
                        return false;
        return true;
}

bool str_startswith(const char *s, const char *prefix)
{
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool str_endswith(const char *s, const char *suffix)
{
        size_t n = strlen(s), m = strlen(suffix);
        return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

/* Length of a valid UTF-8 sequence at p (1..4), or 0 if invalid. Rejects overlongs and surrogates like Go. */
static size_t utf8_seq(const unsigned char *p)
{
        if (p[0] < 0x80)
                return 1;
        if (p[0] >= 0xc2 && p[0] <= 0xdf)
                return (p[1] & 0xc0) == 0x80 ? 2 : 0;
        if (p[0] >= 0xe0 && p[0] <= 0xef) {
                if ((p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
                        return 0;
                if (p[0] == 0xe0 && p[1] < 0xa0)
                        return 0;
                if (p[0] == 0xed && p[1] >= 0xa0)
                        return 0;
                return 3;
        }
        if (p[0] >= 0xf0 && p[0] <= 0xf4) {
                if ((p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80)
                        return 0;
                if (p[0] == 0xf0 && p[1] < 0x90)
                        return 0;
                if (p[0] == 0xf4 && p[1] >= 0x90)
                        return 0;
                return 4;
        }
        return 0;
}

char *str_go_quote(const char *s)
{
        static const char hex[] = "0123456789abcdef";
        const unsigned char *p = (const unsigned char *)s;
        size_t cap = strlen(s) * 4 + 3;
        char *out = xmalloc(cap), *o = out;
        *o++ = '"';
        while (*p) {
                unsigned char c = *p;
                if (c >= 0x80) {
                        size_t n = utf8_seq(p);
                        if (n == 0) {
                                *o++ = '\\';
                                *o++ = 'x';
                                *o++ = hex[c >> 4];
                                *o++ = hex[c & 0xf];
                                p++;
                        } else {
                                memcpy(o, p, n);
                                o += n;
                                p += n;
                        }
                        continue;
                }
                p++;
                switch (c) {
                case '"':
                case '\\':
                        *o++ = '\\';
                        *o++ = (char)c;
                        break;
                case '\a': *o++ = '\\'; *o++ = 'a'; break;
                case '\b': *o++ = '\\'; *o++ = 'b'; break;
                case '\f': *o++ = '\\'; *o++ = 'f'; break;
                case '\n': *o++ = '\\'; *o++ = 'n'; break;
                case '\r': *o++ = '\\'; *o++ = 'r'; break;
                case '\t': *o++ = '\\'; *o++ = 't'; break;
                case '\v': *o++ = '\\'; *o++ = 'v'; break;
                default:
                        if (c < 0x20 || c == 0x7f) {
                                *o++ = '\\';
                                *o++ = 'x';
                                *o++ = hex[c >> 4];
                                *o++ = hex[c & 0xf];
                        } else
                                *o++ = (char)c;
                }
        }
        *o++ = '"';
        *o = '\0';
        return out;
}

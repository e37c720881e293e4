#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"

static enum log_level g_level = LOG_LEVEL_INFO;
static enum log_format g_format = LOG_FORMAT_TEXT;
static int g_fd = 2;

static const char *const level_names[_LOG_LEVEL_MAX] = {
        [LOG_LEVEL_PANIC] = "panic", [LOG_LEVEL_FATAL] = "fatal", [LOG_LEVEL_ERROR] = "error",
        [LOG_LEVEL_WARN] = "warning", [LOG_LEVEL_INFO] = "info",   [LOG_LEVEL_DEBUG] = "debug",
        [LOG_LEVEL_TRACE] = "trace",
};

enum log_level log_level_from_string(const char *s)
{
        if (!s)
                return _LOG_LEVEL_INVALID;
        if (strcasecmp(s, "warn") == 0)
                return LOG_LEVEL_WARN;
        for (int i = 0; i < _LOG_LEVEL_MAX; i++)
                if (strcasecmp(s, level_names[i]) == 0)
                        return (enum log_level)i;
        return _LOG_LEVEL_INVALID;
}

const char *log_level_to_string(enum log_level l)
{
        if (l < 0 || l >= _LOG_LEVEL_MAX)
                return "unknown";
        return level_names[l];
}

void log_set_level(enum log_level l)
{
        g_level = l;
}

enum log_level log_get_level(void)
{
        return g_level;
}

void log_set_format(enum log_format f)
{
        g_format = f;
}

void log_set_fd(int fd)
{
        g_fd = fd;
}

struct sbuf {
        char *p;
        size_t len, cap;
};

static void sb_putn(struct sbuf *b, const char *s, size_t n)
{
        if (b->len + n + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 128;
                while (cap < b->len + n + 1)
                        cap *= 2;
                b->p = xrealloc(b->p, cap);
                b->cap = cap;
        }
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = 0;
}

static void sb_puts(struct sbuf *b, const char *s)
{
        sb_putn(b, s, strlen(s));
}

static void sb_putc(struct sbuf *b, char c)
{
        sb_putn(b, &c, 1);
}

/* logrus TextFormatter.needsQuoting: bare only if every byte is in [A-Za-z0-9-._/@^+]. */
static int needs_quoting(const char *s)
{
        if (!*s)
                return 0;
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                unsigned char c = *p;
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                      c == '.' || c == '_' || c == '/' || c == '@' || c == '^' || c == '+'))
                        return 1;
        }
        return 0;
}

/* Decodes one UTF-8 sequence; returns its length, or 0 if invalid (then the byte is escaped as \xNN). */
static size_t utf8_len(const unsigned char *p, unsigned *ret_cp)
{
        unsigned c = p[0];
        size_t n;
        unsigned cp;
        if (c < 0x80) {
                *ret_cp = c;
                return 1;
        } else if ((c & 0xe0) == 0xc0) {
                n = 2;
                cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
                n = 3;
                cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
                n = 4;
                cp = c & 0x07;
        } else
                return 0;
        for (size_t i = 1; i < n; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (p[i] & 0x3f);
        }
        if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        *ret_cp = cp;
        return n;
}

/* Go's strconv.Quote: printable runes as is, \a\b\f\n\r\t\v\\\" escapes, \xNN for invalid bytes and
 * other control bytes < 0x80, \u/\U for non-printable runes. We treat every rune >= 0xa0 as printable
 * except U+2028/U+2029 style separators, which is what Go does for the common cases. */
static void sb_quote(struct sbuf *b, const char *s)
{
        static const char hex[] = "0123456789abcdef";
        sb_putc(b, '"');
        const unsigned char *p = (const unsigned char *)s;
        while (*p) {
                unsigned cp;
                size_t n = utf8_len(p, &cp);
                if (n == 0) {
                        char e[4] = {'\\', 'x', hex[*p >> 4], hex[*p & 15]};
                        sb_putn(b, e, 4);
                        p++;
                        continue;
                }
                if (n == 1) {
                        switch (cp) {
                        case '\a': sb_puts(b, "\\a"); break;
                        case '\b': sb_puts(b, "\\b"); break;
                        case '\f': sb_puts(b, "\\f"); break;
                        case '\n': sb_puts(b, "\\n"); break;
                        case '\r': sb_puts(b, "\\r"); break;
                        case '\t': sb_puts(b, "\\t"); break;
                        case '\v': sb_puts(b, "\\v"); break;
                        case '\\': sb_puts(b, "\\\\"); break;
                        case '"': sb_puts(b, "\\\""); break;
                        default:
                                if (cp < 0x20 || cp == 0x7f) {
                                        char e[4] = {'\\', 'x', hex[cp >> 4], hex[cp & 15]};
                                        sb_putn(b, e, 4);
                                } else
                                        sb_putc(b, (char)cp);
                        }
                } else if (cp < 0xa0 || cp == 0xad || cp == 0x2028 || cp == 0x2029 || cp == 0xfeff) {
                        char e[12];
                        if (cp < 0x10000)
                                snprintf(e, sizeof(e), "\\u%04x", cp);
                        else
                                snprintf(e, sizeof(e), "\\U%08x", cp);
                        sb_puts(b, e);
                } else
                        sb_putn(b, (const char *)p, n);
                p += n;
        }
        sb_putc(b, '"');
}

/* JSON string escaping as Go's encoding/json does (with HTML-safe escapes for <, >, &). */
static void sb_json(struct sbuf *b, const char *s)
{
        static const char hex[] = "0123456789abcdef";
        sb_putc(b, '"');
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                unsigned char c = *p;
                switch (c) {
                case '"': sb_puts(b, "\\\""); break;
                case '\\': sb_puts(b, "\\\\"); break;
                case '\n': sb_puts(b, "\\n"); break;
                case '\r': sb_puts(b, "\\r"); break;
                case '\t': sb_puts(b, "\\t"); break;
                default:
                        if (c < 0x20 || c == '<' || c == '>' || c == '&') {
                                char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                                sb_putn(b, e, 6);
                        } else
                                sb_putc(b, (char)c);
                }
        }
        sb_putc(b, '"');
}

char *log_append_value(char *buf, const char *value)
{
        struct sbuf b = {.p = buf, .len = buf ? strlen(buf) : 0, .cap = buf ? strlen(buf) + 1 : 0};
        if (needs_quoting(value))
                sb_quote(&b, value);
        else
                sb_puts(&b, value);
        if (!b.p)
                b.p = xstrdup("");
        return b.p;
}

static void format_time(char *out, size_t outsz, long long ts_ns, int off)
{
        time_t secs = (time_t)(ts_ns / 1000000000LL);
        long nsec = (long)(ts_ns % 1000000000LL);
        if (nsec < 0) {
                nsec += 1000000000L;
                secs--;
        }
        time_t local = secs + off;
        struct tm tm;
        gmtime_r(&local, &tm);
        char zone[16];
        if (off == 0)
                snprintf(zone, sizeof(zone), "Z");
        else {
                int a = off < 0 ? -off : off;
                snprintf(zone, sizeof(zone), "%c%02d:%02d", off < 0 ? '-' : '+', (a / 3600) % 100, (a / 60) % 60);
        }
        snprintf(out, outsz, "%04d-%02d-%02dT%02d:%02d:%02d.%09ld%s", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                 tm.tm_hour, tm.tm_min, tm.tm_sec, nsec, zone);
}

static int cmp_field(const void *a, const void *b)
{
        const struct log_field *x = a, *y = b;
        return strcmp(x->key, y->key);
}

char *log_format_line(enum log_format fmt, long long ts_ns, int utc_offset_sec, enum log_level level,
                      const struct log_field *fields, const char *msg)
{
        struct sbuf b = {0};
        char ts[128];
        format_time(ts, sizeof(ts), ts_ns, utc_offset_sec);

        size_t nf = 0;
        if (fields)
                while (fields[nf].key)
                        nf++;
        struct log_field *sorted = NULL;
        if (nf) {
                sorted = xmalloc(nf * sizeof(*sorted));
                memcpy(sorted, fields, nf * sizeof(*sorted));
                qsort(sorted, nf, sizeof(*sorted), cmp_field);
        }

        if (fmt == LOG_FORMAT_JSON) {
                /* logrus JSONFormatter: keys sorted alphabetically (Go map marshalling), level/msg/time included. */
                size_t total = nf + 3;
                struct log_field *all = xmalloc(total * sizeof(*all));
                size_t k = 0;
                for (size_t i = 0; i < nf; i++)
                        all[k++] = sorted[i];
                all[k++] = (struct log_field){"level", log_level_to_string(level)};
                all[k++] = (struct log_field){"msg", msg ? msg : ""};
                all[k++] = (struct log_field){"time", ts};
                qsort(all, k, sizeof(*all), cmp_field);
                sb_putc(&b, '{');
                for (size_t i = 0; i < k; i++) {
                        if (i)
                                sb_putc(&b, ',');
                        sb_json(&b, all[i].key);
                        sb_putc(&b, ':');
                        sb_json(&b, all[i].value ? all[i].value : "");
                }
                sb_puts(&b, "}\n");
                free(all);
        } else {
                sb_puts(&b, "time=\"");
                sb_puts(&b, ts);
                sb_puts(&b, "\" level=");
                sb_puts(&b, log_level_to_string(level));
                if (msg && *msg) {
                        sb_puts(&b, " msg=");
                        if (needs_quoting(msg))
                                sb_quote(&b, msg);
                        else
                                sb_puts(&b, msg);
                }
                for (size_t i = 0; i < nf; i++) {
                        const char *v = sorted[i].value ? sorted[i].value : "<nil>";
                        sb_putc(&b, ' ');
                        sb_puts(&b, sorted[i].key);
                        sb_putc(&b, '=');
                        if (needs_quoting(v))
                                sb_quote(&b, v);
                        else
                                sb_puts(&b, v);
                }
                sb_putc(&b, '\n');
        }
        free(sorted);
        return b.p;
}

void log_fieldsv(enum log_level level, const struct log_field *fields, const char *fmt, va_list ap)
{
        if (!log_enabled(level))
                return;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        time_t now = ts.tv_sec;
        localtime_r(&now, &tm);
        char *msg = fmt ? xvasprintf(fmt, ap) : NULL;
        char *line = log_format_line(g_format, (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec, (int)tm.tm_gmtoff,
                                     level, fields, msg);
        size_t len = strlen(line), off = 0;
        while (off < len) {
                ssize_t n = write(g_fd, line + off, len - off);
                if (n <= 0)
                        break;
                off += (size_t)n;
        }
        free(line);
        free(msg);
}

void log_fields(enum log_level level, const struct log_field *fields, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        log_fieldsv(level, fields, fmt, ap);
        va_end(ap);
}

#include "util/time.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util/alloc.h"
#include "util/strv.h"
#include "util/cleanup.h"

static char *format(int64_t sec, int32_t nsec, int off, bool fixed)
{
        struct tm tm;
        time_t t = (time_t)(sec + off);
        char frac[16] = "";
        char zone[8] = "Z";
        if (!gmtime_r(&t, &tm))
                memset(&tm, 0, sizeof(tm));
        if (nsec < 0 || nsec >= NSEC_PER_SEC)
                nsec = 0;
        if (fixed || nsec) {
                snprintf(frac, sizeof(frac), ".%09d", (int)nsec);
                if (!fixed) {
                        size_t l = strlen(frac);
                        while (frac[l - 1] == '0')
                                frac[--l] = '\0';
                }
        }
        if (off != 0) {
                int a = off < 0 ? -off : off;
                snprintf(zone, sizeof(zone), "%c%02d:%02d", off < 0 ? '-' : '+', (a / 3600) % 100, (a / 60) % 60);
        }
        return xasprintf("%04d-%02d-%02dT%02d:%02d:%02d%s%s", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                         tm.tm_hour, tm.tm_min, tm.tm_sec, frac, zone);
}

char *time_format_rfc3339nano(int64_t sec, int32_t nsec, int utc_offset_sec)
{
        return format(sec, nsec, utc_offset_sec, false);
}

char *time_format_rfc3339nano_fixed(int64_t sec, int32_t nsec, int utc_offset_sec)
{
        return format(sec, nsec, utc_offset_sec, true);
}

static bool digits(const char *s, int n, int *ret)
{
        int v = 0;
        for (int i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return false;
                v = v * 10 + (s[i] - '0');
        }
        *ret = v;
        return true;
}

static bool is_leap(long y)
{
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
        y -= m <= 2;
        int64_t era = (y >= 0 ? y : y - 399) / 400;
        int64_t yoe = y - era * 400;
        int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}

int time_parse_rfc3339(const char *s, int64_t *ret_sec, int32_t *ret_nsec, struct error **err)
{
        static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        int Y, M, D, h, m, sec, nsec = 0, off = 0;
        const char *p = s;
        if (!s || strlen(s) < 20)
                goto bad;
        if (!digits(p, 4, &Y) || p[4] != '-' || !digits(p + 5, 2, &M) || p[7] != '-' || !digits(p + 8, 2, &D) ||
            p[10] != 'T' || !digits(p + 11, 2, &h) || p[13] != ':' || !digits(p + 14, 2, &m) || p[16] != ':' ||
            !digits(p + 17, 2, &sec))
                goto bad;
        p += 19;
        if (M < 1 || M > 12 || D < 1 || h > 23 || m > 59 || sec > 59)
                goto bad;
        if (D > mdays[M - 1] + (M == 2 && is_leap(Y)))
                goto bad;
        if (*p == '.') {
                int n = 0;
                p++;
                while (p[n] >= '0' && p[n] <= '9')
                        n++;
                if (n == 0 || n > 9)
                        goto bad;
                digits(p, n, &nsec);
                for (int i = n; i < 9; i++)
                        nsec *= 10;
                p += n;
        }
        if (*p == 'Z') {
                p++;
        } else if (*p == '+' || *p == '-') {
                int oh, om;
                if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) || oh > 23 || om > 59)
                        goto bad;
                off = (oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
                p += 6;
        } else
                goto bad;
        if (*p)
                goto bad;
        *ret_sec = days_from_civil(Y, M, D) * 86400 + h * 3600 + m * 60 + sec - off;
        *ret_nsec = nsec;
        return 0;
bad:;
        _cleanup_free_ char *q = str_go_quote(s ? s : "");
        return error_set(err, EINVAL, "parsing time %s as RFC3339", q);
}

void time_pb_from_ns(int64_t ns, int64_t *ret_seconds, int32_t *ret_nanos)
{
        int64_t s = ns / NSEC_PER_SEC, r = ns % NSEC_PER_SEC;
        if (r < 0) {
                r += NSEC_PER_SEC;
                s--;
        }
        *ret_seconds = s;
        *ret_nanos = (int32_t)r;
}

int64_t time_pb_to_ns(int64_t seconds, int32_t nanos)
{
        if (seconds > INT64_MAX / NSEC_PER_SEC - 1)
                return INT64_MAX;
        if (seconds < INT64_MIN / NSEC_PER_SEC + 1)
                return INT64_MIN;
        return seconds * NSEC_PER_SEC + nanos;
}

void time_now(int64_t *ret_sec, int32_t *ret_nsec)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        *ret_sec = ts.tv_sec;
        *ret_nsec = (int32_t)ts.tv_nsec;
}

int64_t time_now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

uint64_t time_monotonic_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

uint64_t time_monotonic_ms(void)
{
        return time_monotonic_ns() / 1000000ULL;
}

static bool add_overflows(int64_t a, int64_t b)
{
        return b > 0 && a > INT64_MAX - b;
}

int time_parse_duration(const char *s, int64_t *ret_ns, struct error **err)
{
        static const struct {
                const char *name;
                int64_t ns;
        } units[] = {
                {"ns", 1},           {"us", 1000},          {"\xc2\xb5s", 1000}, {"\xce\xbcs", 1000},
                {"ms", 1000000},     {"s", NSEC_PER_SEC},   {"m", 60 * NSEC_PER_SEC}, {"h", 3600 * NSEC_PER_SEC},
        };
        const char *p = s;
        bool neg = false;
        int64_t total = 0;

        if (!s)
                goto bad;
        if (*p == '-' || *p == '+') {
                neg = *p == '-';
                p++;
        }
        if (strcmp(p, "0") == 0) {
                *ret_ns = 0;
                return 0;
        }
        if (!*p)
                goto bad;
        while (*p) {
                uint64_t whole = 0;
                double frac = 0, scale = 1;
                bool digits = false;
                while (*p >= '0' && *p <= '9') {
                        if (whole > (UINT64_MAX - 9) / 10)
                                goto bad;
                        whole = whole * 10 + (uint64_t)(*p++ - '0');
                        digits = true;
                }
                if (*p == '.') {
                        p++;
                        while (*p >= '0' && *p <= '9') {
                                scale /= 10;
                                frac += (*p++ - '0') * scale;
                                digits = true;
                        }
                }
                if (!digits)
                        goto bad;
                const char *u = p;
                while (*p && !(*p >= '0' && *p <= '9') && *p != '.')
                        p++;
                size_t ulen = (size_t)(p - u);
                int64_t unit = 0;
                for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
                        if (strlen(units[i].name) == ulen && memcmp(units[i].name, u, ulen) == 0)
                                unit = units[i].ns;
                if (unit == 0)
                        goto bad; /* missing or unknown unit */
                if (whole > (uint64_t)(INT64_MAX / unit))
                        goto bad;
                int64_t v = (int64_t)whole * unit;
                int64_t f = (int64_t)(frac * (double)unit + 0.5);
                if (add_overflows(v, f) || add_overflows(total, v + f))
                        goto bad;
                total += v + f;
        }
        *ret_ns = neg ? -total : total;
        return 0;
bad:;
        _cleanup_free_ char *q = str_go_quote(s ? s : "");
        return error_set(err, EINVAL, "time: invalid duration %s", q);
}

char *time_format_duration(int64_t ns)
{
        /* Go's Duration.String(): sub-second values use the largest unit that keeps an integer part. */
        bool neg = ns < 0;
        uint64_t u = neg ? (uint64_t)(-(ns + 1)) + 1 : (uint64_t)ns;
        char frac[16] = "";
        if (u == 0)
                return xstrdup("0s");
        if (u < (uint64_t)NSEC_PER_SEC) {
                const char *unit;
                uint64_t div;
                if (u < 1000) {
                        return xasprintf("%s%lluns", neg ? "-" : "", (unsigned long long)u);
                } else if (u < 1000000) {
                        unit = "\xc2\xb5s";
                        div = 1000;
                } else {
                        unit = "ms";
                        div = 1000000;
                }
                uint64_t rem = u % div;
                if (rem) {
                        int digits = div == 1000 ? 3 : 6;
                        snprintf(frac, sizeof(frac), ".%0*llu", digits, (unsigned long long)rem);
                        size_t l = strlen(frac);
                        while (frac[l - 1] == '0')
                                frac[--l] = '\0';
                }
                return xasprintf("%s%llu%s%s", neg ? "-" : "", (unsigned long long)(u / div), frac, unit);
        }
        uint64_t secs = u / (uint64_t)NSEC_PER_SEC, rem = u % (uint64_t)NSEC_PER_SEC;
        if (rem) {
                snprintf(frac, sizeof(frac), ".%09llu", (unsigned long long)rem);
                size_t l = strlen(frac);
                while (frac[l - 1] == '0')
                        frac[--l] = '\0';
        }
        uint64_t h = secs / 3600, m = (secs / 60) % 60, s = secs % 60;
        if (h)
                return xasprintf("%s%lluh%llum%llu%ss", neg ? "-" : "", (unsigned long long)h, (unsigned long long)m,
                                 (unsigned long long)s, frac);
        if (m)
                return xasprintf("%s%llum%llu%ss", neg ? "-" : "", (unsigned long long)m, (unsigned long long)s, frac);
        return xasprintf("%s%llu%ss", neg ? "-" : "", (unsigned long long)s, frac);
}

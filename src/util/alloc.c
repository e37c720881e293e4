#include "alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void __attribute__((noreturn)) oom(void)
{
        static const char msg[] = "krill: out of memory\n";
        (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
        abort();
}

void *xmalloc(size_t n)
{
        void *p = malloc(n ? n : 1);
        if (!p)
                oom();
        return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
        void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
        if (!p)
                oom();
        return p;
}

void *xrealloc(void *p, size_t n)
{
        void *q = realloc(p, n ? n : 1);
        if (!q)
                oom();
        return q;
}

void *xreallocarray(void *p, size_t nmemb, size_t size)
{
        size_t n;
        if (__builtin_mul_overflow(nmemb, size, &n))
                oom();
        return xrealloc(p, n);
}

char *xstrdup(const char *s)
{
        if (!s)
                return NULL;
        char *r = strdup(s);
        if (!r)
                oom();
        return r;
}

char *xstrndup(const char *s, size_t n)
{
        if (!s)
                return NULL;
        char *r = strndup(s, n);
        if (!r)
                oom();
        return r;
}

void *xmemdup(const void *p, size_t n)
{
        void *r = xmalloc(n);
        if (n)
                memcpy(r, p, n);
        return r;
}

char *xvasprintf(const char *fmt, va_list ap)
{
        char *r = NULL;
        if (vasprintf(&r, fmt, ap) < 0)
                oom();
        return r;
}

char *xasprintf(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        char *r = xvasprintf(fmt, ap);
        va_end(ap);
        return r;
}

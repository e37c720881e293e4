/* Allocation that cannot fail: on OOM the process prints a message and aborts (STYLE.md section 5). */
#pragma once

#include <stddef.h>
#include <stdarg.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
/* Like reallocarray: aborts on overflow of nmemb*size. */
void *xreallocarray(void *p, size_t nmemb, size_t size);
char *xstrdup(const char *s);  /* NULL-safe: returns NULL for NULL */
char *xstrndup(const char *s, size_t n);
void *xmemdup(const void *p, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

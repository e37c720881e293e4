/* libcurl, loaded on first use. Only pulls talk HTTP, but linking libcurl makes every run of a program load it and
 * the 28 libraries it needs (TLS, Kerberos, LDAP, SSH, IDN...): about 10 ms of dynamic loading on each `krill run`.
 * So the binaries that may pull link this file instead of -lcurl: each curl function used in krill is defined here
 * and forwards to libcurl.so.4, opened with dlopen the first time one is called. These definitions are not exported
 * (the executables are not linked with -rdynamic), so libcurl's own internal calls never come back here.
 *
 * curl_easy_setopt, curl_easy_getinfo and curl_multi_setopt are variadic with exactly one argument after the
 * option: a long, a pointer, a function pointer or a curl_off_t (libcurl's documented contract). On the LP64 ABIs
 * krill builds for (x86-64, aarch64), each of these travels in one 64-bit integer slot, so the argument is taken
 * as a 64-bit integer and passed on unchanged. */
#define CURL_DISABLE_TYPECHECK 1 /* the type-checking macros would rename our definitions */
#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

_Static_assert(sizeof(long) == 8 && sizeof(void *) == 8 && sizeof(curl_off_t) == 8,
               "curl_lazy.c forwards variadic curl options as one 64-bit integer");

static void *lib;
static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

static void lib_open(void)
{
        lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
}

static void *sym(const char *name)
{
        pthread_once(&lib_once, lib_open);
        void *p = lib ? dlsym(lib, name) : NULL;
        if (!p) {
                /* the package dependency makes this unreachable; if libcurl is gone, say so plainly */
                fprintf(stderr, "krill: cannot use libcurl.so.4 (%s): %s\n", name, dlerror());
                abort();
        }
        return p;
}

/* Resolves the function once per call site; the pointer store is a single word, racing first calls agree. */
#define REAL(type, name)                                                                                               \
        static __typeof__(type) real_;                                                                                 \
        if (!__atomic_load_n(&real_, __ATOMIC_ACQUIRE))                                                               \
                __atomic_store_n(&real_, (type)sym(name), __ATOMIC_RELEASE);

CURLcode curl_global_init(long flags)
{
        REAL(CURLcode(*)(long), "curl_global_init");
        return real_(flags);
}

CURL *curl_easy_init(void)
{
        REAL(CURL * (*)(void), "curl_easy_init");
        return real_();
}

void curl_easy_cleanup(CURL *h)
{
        REAL(void (*)(CURL *), "curl_easy_cleanup");
        real_(h);
}

CURLcode curl_easy_setopt(CURL *h, CURLoption option, ...)
{
        REAL(CURLcode(*)(CURL *, CURLoption, ...), "curl_easy_setopt");
        va_list ap;
        va_start(ap, option);
        uint64_t v = va_arg(ap, uint64_t);
        va_end(ap);
        return real_(h, option, v);
}

CURLcode curl_easy_getinfo(CURL *h, CURLINFO info, ...)
{
        REAL(CURLcode(*)(CURL *, CURLINFO, ...), "curl_easy_getinfo");
        va_list ap;
        va_start(ap, info);
        void *p = va_arg(ap, void *); /* always a pointer to the result */
        va_end(ap);
        return real_(h, info, p);
}

const char *curl_easy_strerror(CURLcode c)
{
        REAL(const char *(*)(CURLcode), "curl_easy_strerror");
        return real_(c);
}

char *curl_easy_escape(CURL *h, const char *s, int len)
{
        REAL(char *(*)(CURL *, const char *, int), "curl_easy_escape");
        return real_(h, s, len);
}

void curl_free(void *p)
{
        REAL(void (*)(void *), "curl_free");
        real_(p);
}

struct curl_slist *curl_slist_append(struct curl_slist *l, const char *s)
{
        REAL(struct curl_slist * (*)(struct curl_slist *, const char *), "curl_slist_append");
        return real_(l, s);
}

void curl_slist_free_all(struct curl_slist *l)
{
        REAL(void (*)(struct curl_slist *), "curl_slist_free_all");
        real_(l);
}

CURLM *curl_multi_init(void)
{
        REAL(CURLM * (*)(void), "curl_multi_init");
        return real_();
}

CURLMcode curl_multi_cleanup(CURLM *m)
{
        REAL(CURLMcode(*)(CURLM *), "curl_multi_cleanup");
        return real_(m);
}

CURLMcode curl_multi_setopt(CURLM *m, CURLMoption option, ...)
{
        REAL(CURLMcode(*)(CURLM *, CURLMoption, ...), "curl_multi_setopt");
        va_list ap;
        va_start(ap, option);
        uint64_t v = va_arg(ap, uint64_t);
        va_end(ap);
        return real_(m, option, v);
}

CURLMcode curl_multi_add_handle(CURLM *m, CURL *h)
{
        REAL(CURLMcode(*)(CURLM *, CURL *), "curl_multi_add_handle");
        return real_(m, h);
}

CURLMcode curl_multi_remove_handle(CURLM *m, CURL *h)
{
        REAL(CURLMcode(*)(CURLM *, CURL *), "curl_multi_remove_handle");
        return real_(m, h);
}

CURLMcode curl_multi_assign(CURLM *m, curl_socket_t s, void *p)
{
        REAL(CURLMcode(*)(CURLM *, curl_socket_t, void *), "curl_multi_assign");
        return real_(m, s, p);
}

CURLMsg *curl_multi_info_read(CURLM *m, int *left)
{
        REAL(CURLMsg * (*)(CURLM *, int *), "curl_multi_info_read");
        return real_(m, left);
}

CURLMcode curl_multi_socket_action(CURLM *m, curl_socket_t s, int ev_bitmask, int *running)
{
        REAL(CURLMcode(*)(CURLM *, curl_socket_t, int, int *), "curl_multi_socket_action");
        return real_(m, s, ev_bitmask, running);
}

#include "image/platform.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "util/alloc.h"
#include "util/cleanup.h"

struct image_platform_matcher {
        bool all;
        size_t n;
        struct image_platform *v; /* the preference vector, normalised */
};

void image_platform_clear(struct image_platform *p)
{
        if (!p)
                return;
        free(p->os);
        free(p->arch);
        free(p->variant);
        *p = (struct image_platform){0};
}

void image_platform_copy(struct image_platform *dst, const struct image_platform *src)
{
        dst->os = xstrdup(src->os);
        dst->arch = xstrdup(src->arch);
        dst->variant = xstrdup(src->variant);
}

static void set(char **field, const char *v)
{
        char *n = xstrdup(v);

        free(*field);
        *field = n;
}

static void lower(char *s)
{
        for (; s && *s; s++)
                if (*s >= 'A' && *s <= 'Z')
                        *s = (char)(*s - 'A' + 'a');
}

static bool eq(const char *a, const char *b)
{
        return !strcmp(a ?: "", b ?: "");
}

static void normalize_os(char **os)
{
        if (!*os || !**os) {
                set(os, "linux");
                return;
        }
        lower(*os);
        if (!strcmp(*os, "macos"))
                set(os, "darwin");
}

static void normalize_arch(char **arch, char **variant)
{
        const char *a;
        const char *v;

        if (!*arch)
                *arch = xstrdup("");
        if (!*variant)
                *variant = xstrdup("");
        lower(*arch);
        lower(*variant);
        a = *arch;
        v = *variant;
        if (!strcmp(a, "i386")) {
                set(arch, "386");
                set(variant, "");
        } else if (!strcmp(a, "x86_64") || !strcmp(a, "x86-64") || !strcmp(a, "amd64")) {
                set(arch, "amd64");
                if (!strcmp(v, "v1"))
                        set(variant, "");
        } else if (!strcmp(a, "aarch64") || !strcmp(a, "arm64")) {
                set(arch, "arm64");
                if (!strcmp(v, "8") || !strcmp(v, "v8"))
                        set(variant, "");
        } else if (!strcmp(a, "armhf")) {
                set(arch, "arm");
                set(variant, "v7");
        } else if (!strcmp(a, "armel")) {
                set(arch, "arm");
                set(variant, "v6");
        } else if (!strcmp(a, "arm")) {
                if (!strcmp(v, "") || !strcmp(v, "7"))
                        set(variant, "v7");
                else if (!strcmp(v, "5") || !strcmp(v, "6") || !strcmp(v, "8")) {
                        _cleanup_free_ char *nv = xasprintf("v%s", v);
                        set(variant, nv);
                }
        }
}

void image_platform_normalize(struct image_platform *p)
{
        normalize_os(&p->os);
        normalize_arch(&p->arch, &p->variant);
}

static bool known_os(const char *os)
{
        static const char *const t[] = {"aix",     "android", "darwin",  "dragonfly", "freebsd", "hurd",
                                        "illumos", "ios",     "js",      "linux",     "nacl",    "netbsd",
                                        "openbsd", "plan9",   "solaris", "windows",   "zos"};
        for (size_t i = 0; i < ELEMENTSOF(t); i++)
                if (!strcmp(os, t[i]))
                        return true;
        return false;
}

static bool known_arch(const char *a)
{
        static const char *const t[] = {"386",     "amd64",    "amd64p32",  "arm",         "armbe",   "arm64",
                                        "arm64be", "ppc64",    "ppc64le",   "loong64",     "mips",    "mipsle",
                                        "mips64",  "mips64le", "mips64p32", "mips64p32le", "ppc",     "riscv",
                                        "riscv64", "s390",     "s390x",     "sparc",       "sparc64", "wasm"};
        for (size_t i = 0; i < ELEMENTSOF(t); i++)
                if (!strcmp(a, t[i]))
                        return true;
        return false;
}

static bool component_ok(const char *s, size_t n)
{
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                      c == '-'))
                        return false;
        }
        return true;
}

void image_platform_default(struct image_platform *ret)
{
        struct image_platform p = {0};
        struct utsname u;

        if (uname(&u) < 0)
                strcpy(u.machine, "x86_64");
        p.os = xstrdup("linux");
        p.arch = xstrdup(u.machine);
        p.variant = xstrdup("");
        if (!strncmp(u.machine, "armv", 4)) {
                /* "armv7l" -> arm v7, as containerd's cpuVariant derives it from the CPU architecture */
                char v[3] = {'v', u.machine[4], 0};
                set(&p.arch, "arm");
                set(&p.variant, v);
        } else if (!strcmp(u.machine, "ppc64le") || !strcmp(u.machine, "s390x") || !strcmp(u.machine, "riscv64")) {
                /* already Go names */
        }
        image_platform_normalize(&p);
        *ret = p;
}

int image_platform_parse(const char *spec, struct image_platform *ret, struct error **err)
{
        struct image_platform p = {0};
        const char *parts[3];
        size_t lens[3];
        size_t n = 0;
        const char *s = spec;

        if (strchr(spec, '*'))
                return error_set(err, EINVAL, "\"%s\": wildcards not yet supported", spec);
        for (;;) {
                const char *sl = strchr(s, '/');
                size_t len = sl ? (size_t)(sl - s) : strlen(s);

                if (!component_ok(s, len)) {
                        _cleanup_free_ char *c = xstrndup(s, len);
                        return error_set(err, EINVAL,
                                         "\"%s\" is an invalid component of \"%s\": platform specifier component "
                                         "must match \"^[A-Za-z0-9_-]+$\"",
                                         c, spec);
                }
                if (n == 3)
                        return error_set(err, EINVAL, "\"%s\": cannot parse platform specifier", spec);
                parts[n] = s;
                lens[n] = len;
                n++;
                if (!sl)
                        break;
                s = sl + 1;
        }
        if (n == 1) {
                struct image_platform def = {0};

                p.os = xstrndup(parts[0], lens[0]);
                normalize_os(&p.os);
                if (known_os(p.os)) {
                        image_platform_default(&def);
                        p.arch = TAKE_PTR(def.arch);
                        p.variant = TAKE_PTR(def.variant);
                        /* containerd keeps the arm variant only when it is not the v7 default */
                        if (!strcmp(p.arch, "arm") && !strcmp(p.variant, "v7"))
                                set(&p.variant, "");
                        image_platform_clear(&def);
                        *ret = p;
                        return 0;
                }
                free(p.os);
                p.os = NULL;
                p.arch = xstrndup(parts[0], lens[0]);
                normalize_arch(&p.arch, &p.variant);
                if (!strcmp(p.arch, "arm") && !strcmp(p.variant, "v7"))
                        set(&p.variant, "");
                if (known_arch(p.arch)) {
                        p.os = xstrdup("linux");
                        *ret = p;
                        return 0;
                }
                image_platform_clear(&p);
                return error_set(err, EINVAL, "\"%s\": unknown operating system or architecture", spec);
        }
        p.os = xstrndup(parts[0], lens[0]);
        normalize_os(&p.os);
        p.arch = xstrndup(parts[1], lens[1]);
        p.variant = n == 3 ? xstrndup(parts[2], lens[2]) : NULL;
        normalize_arch(&p.arch, &p.variant);
        if (n == 2 && !strcmp(p.arch, "arm") && !strcmp(p.variant, "v7"))
                set(&p.variant, "");
        if (n == 3 && !strcmp(p.arch, "arm64") && !strcmp(p.variant, ""))
                set(&p.variant, "v8");
        *ret = p;
        return 0;
}

char *image_platform_format(const struct image_platform *p)
{
        if (!p->os || !*p->os)
                return xstrdup("unknown");
        if (p->variant && *p->variant)
                return xasprintf("%s/%s/%s", p->os, p->arch ?: "", p->variant);
        if (p->arch && *p->arch)
                return xasprintf("%s/%s", p->os, p->arch);
        return xstrdup(p->os);
}

static void vec_push(struct image_platform_matcher *m, const char *os, const char *arch, const char *variant)
{
        struct image_platform *p;

        m->v = xrealloc(m->v, (m->n + 1) * sizeof(*m->v));
        p = &m->v[m->n++];
        p->os = xstrdup(os);
        p->arch = xstrdup(arch);
        p->variant = xstrdup(variant ?: "");
        image_platform_normalize(p);
}

/* containerd platformVector */
static void vector(struct image_platform_matcher *m, const char *os, const char *arch, const char *variant)
{
        long ver;
        char vbuf[24];

        vec_push(m, os, arch, variant);
        if (!strcmp(arch, "amd64")) {
                ver = (variant && variant[0] == 'v') ? strtol(variant + 1, NULL, 10) : strtol(variant ?: "", NULL, 10);
                for (ver--; ver >= 1 && ver < 100; ver--) {
                        snprintf(vbuf, sizeof(vbuf), "v%ld", ver);
                        vec_push(m, os, arch, vbuf);
                }
                vec_push(m, os, "386", "");
        } else if (!strcmp(arch, "arm")) {
                ver = (variant && variant[0] == 'v') ? strtol(variant + 1, NULL, 10) : strtol(variant ?: "", NULL, 10);
                if (ver > 5 && ver < 100)
                        for (ver--; ver >= 5; ver--) {
                                snprintf(vbuf, sizeof(vbuf), "v%ld", ver);
                                vec_push(m, os, arch, vbuf);
                        }
        } else if (!strcmp(arch, "arm64")) {
                vector(m, os, "arm", variant && *variant ? variant : "v8");
        }
}

struct image_platform_matcher *image_platform_matcher_new_only(const struct image_platform *p)
{
        struct image_platform_matcher *m = xcalloc(1, sizeof(*m));
        struct image_platform n = {0};

        image_platform_copy(&n, p);
        image_platform_normalize(&n);
        vector(m, n.os, n.arch, n.variant);
        image_platform_clear(&n);
        return m;
}

struct image_platform_matcher *image_platform_matcher_new_all(void)
{
        struct image_platform_matcher *m = xcalloc(1, sizeof(*m));

        m->all = true;
        return m;
}

struct image_platform_matcher *image_platform_matcher_free(struct image_platform_matcher *m)
{
        if (!m)
                return NULL;
        for (size_t i = 0; i < m->n; i++)
                image_platform_clear(&m->v[i]);
        free(m->v);
        free(m);
        return NULL;
}

int image_platform_rank(const struct image_platform_matcher *m, const struct image_platform *p)
{
        struct image_platform n = {0};
        int rank = -1;

        if (m->all)
                return 0;
        image_platform_copy(&n, p);
        image_platform_normalize(&n);
        for (size_t i = 0; i < m->n; i++) {
                if (eq(m->v[i].os, n.os) && eq(m->v[i].arch, n.arch) && eq(m->v[i].variant, n.variant)) {
                        rank = (int)i;
                        break;
                }
        }
        image_platform_clear(&n);
        return rank;
}

bool image_platform_match(const struct image_platform_matcher *m, const struct image_platform *p)
{
        return image_platform_rank(m, p) >= 0;
}

bool image_platform_less(const struct image_platform_matcher *m, const struct image_platform *a,
                         const struct image_platform *b)
{
        int ra = image_platform_rank(m, a), rb = image_platform_rank(m, b);

        if (ra < 0)
                return false;
        return rb < 0 || ra < rb;
}

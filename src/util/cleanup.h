/* Cleanup attributes and ownership transfer, systemd/crun style (STYLE.md section 5). */
#pragma once

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <dirent.h>

#define _unused_ __attribute__((unused))
#define _cleanup_(f) __attribute__((cleanup(f)))
#define _likely_(x) __builtin_expect(!!(x), 1)
#define _unlikely_(x) __builtin_expect(!!(x), 0)
#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

/* Returns the pointer and sets the variable to NULL: ownership moves to the caller. */
#define TAKE_PTR(p)                                                                                                    \
        ({                                                                                                             \
                typeof(p) _tp = (p);                                                                                   \
                (p) = NULL;                                                                                            \
                _tp;                                                                                                   \
        })
/* Returns the fd and sets the variable to -1. */
#define TAKE_FD(fd)                                                                                                    \
        ({                                                                                                             \
                int _tf = (fd);                                                                                        \
                (fd) = -1;                                                                                             \
                _tf;                                                                                                   \
        })

static inline void freep(void *p)
{
        free(*(void **)p);
}

static inline void closep(int *fd)
{
        if (*fd >= 0) {
                int saved = errno;
                (void)close(*fd);
                errno = saved;
        }
}

static inline void fclosep(FILE **f)
{
        if (*f)
                (void)fclose(*f);
}

static inline void closedirp(DIR **d)
{
        if (*d)
                (void)closedir(*d);
}

/* Frees a NULL-terminated array of strings and the array. */
static inline void strv_free(char **v)
{
        if (!v)
                return;
        for (char **i = v; *i; i++)
                free(*i);
        free(v);
}

static inline void strv_freep(char ***v)
{
        strv_free(*v);
}

#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)
#define _cleanup_closedir_ _cleanup_(closedirp)
#define _cleanup_strv_free_ _cleanup_(strv_freep)

/* Defines name##p(type *p) calling fn(*p) when *p is not NULL. */
#define DEFINE_CLEANUP_FUNC(type, fn)                                                                                  \
        static inline void fn##p(type *p)                                                                              \
        {                                                                                                              \
                if (*p)                                                                                                \
                        fn(*p);                                                                                        \
        }

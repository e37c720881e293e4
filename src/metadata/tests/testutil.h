/* Helpers shared by the metadata unit tests (header-only, static). */
#pragma once

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <ftw.h>

#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/error.h"

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
        (void)sb;
        (void)flag;
        (void)ftw;
        return remove(p);
}

static inline char *tu_mkdtemp(void)
{
        char *t = xstrdup("/tmp/krill-meta-test-XXXXXX");
        assert_non_null(mkdtemp(t));
        return t;
}

static inline void tu_rmrf(char *dir)
{
        if (dir)
                (void)nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
        free(dir);
}

/* Asserts r == expect and, when failing, the rendered message equals msg (if msg not NULL). */
#define assert_err(r, e, expect, msg)                                                                                  \
        do {                                                                                                           \
                assert_int_equal((r), (expect));                                                                       \
                if ((expect) < 0) {                                                                                    \
                        assert_non_null(e);                                                                            \
                        if (msg) {                                                                                     \
                                _cleanup_free_ char *_m = error_message(e);                                            \
                                assert_string_equal(_m, (const char *)(msg));                                          \
                        }                                                                                              \
                }                                                                                                      \
                error_free(&(e));                                                                                      \
        } while (0)

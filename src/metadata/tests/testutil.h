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

#include "content/store.h"
#include "metadata/db.h"

struct tu_fx {
        char *dir;
        struct metadata_db *db;
        struct content_store *cs;
};

static inline int tu_setup(void **state)
{
        struct tu_fx *f = xcalloc(1, sizeof(*f));
        struct error *e = NULL;
        f->dir = tu_mkdtemp();
        _cleanup_free_ char *p = xasprintf("%s/io.containerd.metadata.v1.lmdb", f->dir);
        _cleanup_free_ char *c = xasprintf("%s/io.containerd.content.v1.content", f->dir);
        assert_int_equal(metadata_db_open(p, &f->db, &e), 0);
        assert_int_equal(content_store_open(c, &f->cs, &e), 0);
        *state = f;
        return 0;
}

static inline int tu_teardown(void **state)
{
        struct tu_fx *f = *state;
        metadata_db_close(f->db);
        content_store_free(f->cs);
        tu_rmrf(f->dir);
        free(f);
        return 0;
}

/* sha256 of "hello world" and of "hello" */
#define TU_HELLO_WORLD "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
#define TU_HELLO "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"

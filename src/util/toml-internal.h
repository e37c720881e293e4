/* Shared between toml.c (parser) and toml-tree.c (accessors, used-key tracking, writer). Not for use
 * outside src/util. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "util/alloc.h"
#include "util/toml.h"

/* Table flags: how a table came to exist decides whether it may be defined or extended again
 * (TOML 1.0 "Table" and "Inline Table" sections). */
#define T_EXPLICIT 0x01 /* defined by a [header] or [[header]] */
#define T_DOTTED 0x02   /* created by a dotted key: key/value pairs may add to it, a header may not define it */
#define T_INLINE 0x04   /* an inline table (or created inside one): sealed once parsed */
#define A_TABLES 0x08   /* an array of tables made by [[header]]: more elements may be appended */

/* Tables with at least this many keys get a hash index so that lookups stay O(1) on big inputs. */
#define INDEX_MIN 16

struct kv {
        char *key;
        struct toml_value *val;
};

struct toml_value {
        enum toml_type type;
        enum toml_datetime_kind dt;
        unsigned line, col;
        unsigned depth;
        uint8_t flags;
        bool used;
        struct toml_value *parent;
        const char *key; /* borrowed from the parent's kv; NULL for the root and array elements */
        union {
                struct {
                        char *s;
                        size_t len;
                } str;
                int64_t i;
                double f;
                bool b;
                struct {
                        struct toml_value **v;
                        size_t n, cap;
                } arr;
                struct {
                        struct kv *kv;
                        size_t n, cap;
                        uint32_t *idx; /* slot -> kv index + 1, 0 = empty */
                        size_t idxcap;
                } tab;
        };
};

struct sbuf {
        char *s;
        size_t n, cap;
};

static inline void sb_putn(struct sbuf *b, const char *s, size_t n)
{
        if (b->n + n + 1 > b->cap) {
                while (b->n + n + 1 > b->cap)
                        b->cap = b->cap ? b->cap * 2 : 32;
                b->s = xrealloc(b->s, b->cap);
        }
        memcpy(b->s + b->n, s, n);
        b->n += n;
        b->s[b->n] = '\0';
}

static inline void sb_putc(struct sbuf *b, char c)
{
        sb_putn(b, &c, 1);
}

static inline void sb_puts(struct sbuf *b, const char *s)
{
        sb_putn(b, s, strlen(s));
}


static inline bool toml_is_bare_char(char c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/strv.h"
#include "util/toml-internal.h"

/* ---- inspection ---- */

enum toml_type toml_type(const struct toml_value *v)
{
        return v->type;
}

const char *toml_type_name(enum toml_type t)
{
        static const char *const names[] = {"string", "integer", "float", "boolean", "datetime", "array", "table"};
        return (unsigned)t < ELEMENTSOF(names) ? names[t] : "unknown";
}

unsigned toml_line(const struct toml_value *v)
{
        return v->line;
}

unsigned toml_column(const struct toml_value *v)
{
        return v->col;
}

const char *toml_string(const struct toml_value *v)
{
        return v && (v->type == TOML_STRING || v->type == TOML_DATETIME) ? v->str.s : NULL;
}

size_t toml_string_len(const struct toml_value *v)
{
        return v && (v->type == TOML_STRING || v->type == TOML_DATETIME) ? v->str.len : 0;
}

int64_t toml_integer(const struct toml_value *v)
{
        return v && v->type == TOML_INTEGER ? v->i : 0;
}

double toml_float(const struct toml_value *v)
{
        if (!v)
                return 0;
        return v->type == TOML_FLOAT ? v->f : v->type == TOML_INTEGER ? (double)v->i : 0;
}

bool toml_boolean(const struct toml_value *v)
{
        return v && v->type == TOML_BOOLEAN && v->b;
}

enum toml_datetime_kind toml_datetime_kind(const struct toml_value *v)
{
        return v->dt;
}

size_t toml_table_size(const struct toml_value *t)
{
        return t && t->type == TOML_TABLE ? t->tab.n : 0;
}

const char *toml_table_key(const struct toml_value *t, size_t i)
{
        return i < toml_table_size(t) ? t->tab.kv[i].key : NULL;
}

struct toml_value *toml_table_value(const struct toml_value *t, size_t i)
{
        return i < toml_table_size(t) ? t->tab.kv[i].val : NULL;
}

struct toml_value *toml_parent(const struct toml_value *v)
{
        return v ? v->parent : NULL;
}

size_t toml_array_size(const struct toml_value *a)
{
        return a && a->type == TOML_ARRAY ? a->arr.n : 0;
}

struct toml_value *toml_array_get(const struct toml_value *a, size_t i)
{
        return i < toml_array_size(a) ? a->arr.v[i] : NULL;
}

char *toml_value_path(const struct toml_value *v)
{
        _cleanup_strv_free_ char **parts = NULL;
        for (; v && v->parent; v = v->parent)
                if (v->key)
                        strv_push(&parts, toml_format_key(v->key));
        size_t n = strv_length(parts);
        for (size_t i = 0; i < n / 2; i++) {
                char *tmp = parts[i];
                parts[i] = parts[n - 1 - i];
                parts[n - 1 - i] = tmp;
        }
        return strv_join(parts, ".");
}

/* ---- used keys ---- */

void toml_mark_used(struct toml_value *v, bool recursive)
{
        if (!v)
                return;
        v->used = true;
        if (!recursive)
                return;
        if (v->type == TOML_TABLE)
                for (size_t i = 0; i < v->tab.n; i++)
                        toml_mark_used(v->tab.kv[i].val, true);
        else if (v->type == TOML_ARRAY)
                for (size_t i = 0; i < v->arr.n; i++)
                        toml_mark_used(v->arr.v[i], true);
}

bool toml_is_used(const struct toml_value *v)
{
        return v && v->used;
}

static void collect_unused(const struct toml_value *v, char ***out)
{
        if (v->type == TOML_TABLE) {
                for (size_t i = 0; i < v->tab.n; i++) {
                        const struct toml_value *c = v->tab.kv[i].val;
                        if (!c->used)
                                strv_push(out, toml_value_path(c));
                        else
                                collect_unused(c, out);
                }
        } else if (v->type == TOML_ARRAY) {
                /* Elements of a used array count as used themselves; only their keys are checked. */
                for (size_t i = 0; i < v->arr.n; i++)
                        collect_unused(v->arr.v[i], out);
        }
}

char **toml_unused_keys(const struct toml_value *root)
{
        char **out = strv_new_empty();
        if (root)
                collect_unused(root, &out);
        return out;
}

/* ---- typed getters ---- */

static struct toml_value *get_typed(struct toml_value *t, const char *key, enum toml_type want, int *r,
                                    struct error **err)
{
        struct toml_value *v = toml_table_get(t, key);
        *r = 0;
        if (!v)
                return NULL;
        if (v->type != want && !(want == TOML_FLOAT && v->type == TOML_INTEGER)) {
                _cleanup_free_ char *path = toml_value_path(v);
                *r = error_set(err, EINVAL, "toml: line %u column %u: %s: expected %s, got %s", v->line, v->col,
                               path, toml_type_name(want), toml_type_name(v->type));
                return NULL;
        }
        v->used = true;
        *r = 1;
        return v;
}

int toml_get_string(struct toml_value *t, const char *key, const char **ret, struct error **err)
{
        int r;
        struct toml_value *v = get_typed(t, key, TOML_STRING, &r, err);
        if (v)
                *ret = v->str.s;
        return r;
}

int toml_get_int(struct toml_value *t, const char *key, int64_t *ret, struct error **err)
{
        int r;
        struct toml_value *v = get_typed(t, key, TOML_INTEGER, &r, err);
        if (v)
                *ret = v->i;
        return r;
}

int toml_get_int_range(struct toml_value *t, const char *key, int64_t min, int64_t max, int64_t *ret,
                       struct error **err)
{
        int r;
        struct toml_value *v = get_typed(t, key, TOML_INTEGER, &r, err);
        if (!v)
                return r;
        if (v->i < min || v->i > max) {
                _cleanup_free_ char *path = toml_value_path(v);
                return error_set(err, EINVAL, "toml: line %u column %u: %s: value %lld out of range", v->line,
                                 v->col, path, (long long)v->i);
        }
        *ret = v->i;
        return 1;
}

int toml_get_float(struct toml_value *t, const char *key, double *ret, struct error **err)
{
        int r;
        struct toml_value *v = get_typed(t, key, TOML_FLOAT, &r, err);
        if (v)
                *ret = toml_float(v);
        return r;
}

int toml_get_bool(struct toml_value *t, const char *key, bool *ret, struct error **err)
{
        int r;
        struct toml_value *v = get_typed(t, key, TOML_BOOLEAN, &r, err);
        if (v)
                *ret = v->b;
        return r;
}

int toml_get_table(struct toml_value *t, const char *key, struct toml_value **ret, struct error **err)
{
        int r;
        struct toml_value *v = get_typed(t, key, TOML_TABLE, &r, err);
        if (v)
                *ret = v;
        return r;
}

int toml_get_array(struct toml_value *t, const char *key, struct toml_value **ret, struct error **err)
{
        int r;
        struct toml_value *v = get_typed(t, key, TOML_ARRAY, &r, err);
        if (v)
                *ret = v;
        return r;
}

int toml_get_string_array(struct toml_value *t, const char *key, char ***ret, struct error **err)
{
        int r;
        struct toml_value *a = get_typed(t, key, TOML_ARRAY, &r, err);
        if (!a)
                return r;
        _cleanup_strv_free_ char **v = strv_new_empty();
        for (size_t i = 0; i < a->arr.n; i++) {
                struct toml_value *e = a->arr.v[i];
                if (e->type != TOML_STRING) {
                        _cleanup_free_ char *path = toml_value_path(a);
                        return error_set(err, EINVAL, "toml: line %u column %u: %s: expected string, got %s",
                                         e->line, e->col, path, toml_type_name(e->type));
                }
                e->used = true;
                strv_extend(&v, e->str.s);
        }
        *ret = TAKE_PTR(v);
        return 1;
}

/* ---- writing ---- */

char *toml_format_key(const char *key)
{
        bool bare = *key != '\0';
        for (const char *p = key; *p; p++)
                if (!toml_is_bare_char(*p))
                        bare = false;
        return bare ? xstrdup(key) : toml_format_string(key, strlen(key));
}

char *toml_format_string(const char *s, size_t len)
{
        struct sbuf b = {0};
        sb_putc(&b, '"');
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)s[i];
                switch (c) {
                case '"': sb_puts(&b, "\\\""); break;
                case '\\': sb_puts(&b, "\\\\"); break;
                case '\b': sb_puts(&b, "\\b"); break;
                case '\t': sb_puts(&b, "\\t"); break;
                case '\n': sb_puts(&b, "\\n"); break;
                case '\f': sb_puts(&b, "\\f"); break;
                case '\r': sb_puts(&b, "\\r"); break;
                default:
                        if (c < 0x20 || c == 0x7f) {
                                char esc[8];
                                snprintf(esc, sizeof(esc), "\\u%04X", c);
                                sb_puts(&b, esc);
                        } else
                                sb_putc(&b, (char)c);
                }
        }
        sb_putc(&b, '"');
        return b.s;
}

static void dump_value(struct sbuf *b, const struct toml_value *v)
{
        char num[64];
        switch (v->type) {
        case TOML_STRING: {
                _cleanup_free_ char *s = toml_format_string(v->str.s, v->str.len);
                sb_puts(b, s);
                break;
        }
        case TOML_DATETIME:
                sb_puts(b, v->str.s);
                break;
        case TOML_INTEGER:
                snprintf(num, sizeof(num), "%lld", (long long)v->i);
                sb_puts(b, num);
                break;
        case TOML_FLOAT:
                if (isnan(v->f))
                        sb_puts(b, signbit(v->f) ? "-nan" : "nan");
                else if (isinf(v->f))
                        sb_puts(b, v->f < 0 ? "-inf" : "inf");
                else {
                        snprintf(num, sizeof(num), "%.17g", v->f);
                        sb_puts(b, num);
                        if (!strpbrk(num, ".e"))
                                sb_puts(b, ".0");
                }
                break;
        case TOML_BOOLEAN:
                sb_puts(b, v->b ? "true" : "false");
                break;
        case TOML_ARRAY:
                sb_putc(b, '[');
                for (size_t i = 0; i < v->arr.n; i++) {
                        if (i)
                                sb_puts(b, ", ");
                        dump_value(b, v->arr.v[i]);
                }
                sb_putc(b, ']');
                break;
        case TOML_TABLE:
                sb_putc(b, '{');
                for (size_t i = 0; i < v->tab.n; i++) {
                        _cleanup_free_ char *k = toml_format_key(v->tab.kv[i].key);
                        sb_puts(b, i ? ", " : "");
                        sb_puts(b, k);
                        sb_puts(b, " = ");
                        dump_value(b, v->tab.kv[i].val);
                }
                sb_putc(b, '}');
                break;
        }
}

char *toml_dump(const struct toml_value *root)
{
        struct sbuf b = {0};
        sb_puts(&b, "");
        for (size_t i = 0; i < toml_table_size(root); i++) {
                _cleanup_free_ char *k = toml_format_key(root->tab.kv[i].key);
                sb_puts(&b, k);
                sb_puts(&b, " = ");
                dump_value(&b, root->tab.kv[i].val);
                sb_putc(&b, '\n');
        }
        return b.s;
}

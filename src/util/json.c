#include "util/json.h"

#include <errno.h>
#include <string.h>

#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/strv.h"

int json_check_depth(const char *buf, size_t len, unsigned max_depth, struct error **err)
{
        /* Brackets inside strings do not count; escapes inside strings are skipped pairwise. */
        unsigned depth = 0;
        bool in_str = false;
        for (size_t i = 0; i < len; i++) {
                char c = buf[i];
                if (in_str) {
                        if (c == '\\')
                                i++;
                        else if (c == '"')
                                in_str = false;
                        continue;
                }
                if (c == '"')
                        in_str = true;
                else if (c == '[' || c == '{') {
                        if (++depth > max_depth)
                                return error_set(err, EINVAL, "json: too deep");
                } else if ((c == ']' || c == '}') && depth > 0)
                        depth--;
        }
        return 0;
}

int json_load_bounded(const char *buf, size_t len, size_t max_bytes, unsigned max_depth, json_t **ret,
                      struct error **err)
{
        json_error_t jerr;
        if (len > max_bytes)
                return error_set(err, EINVAL, "json: too large (%zu bytes, limit %zu)", len, max_bytes);
        int r = json_check_depth(buf, len, max_depth, err);
        if (r < 0)
                return r;
        json_t *j = json_loadb(buf, len, JSON_DECODE_ANY, &jerr);
        if (!j)
                return error_set(err, EINVAL, "json: %s at line %d column %d", jerr.text, jerr.line, jerr.column);
        *ret = j;
        return 0;
}

int json_load(const char *buf, size_t len, json_t **ret, struct error **err)
{
        return json_load_bounded(buf, len, JSON_DEFAULT_MAX_BYTES, JSON_DEFAULT_MAX_DEPTH, ret, err);
}

static const char *type_name(json_type t)
{
        switch (t) {
        case JSON_OBJECT:
                return "object";
        case JSON_ARRAY:
                return "array";
        case JSON_STRING:
                return "string";
        case JSON_INTEGER:
                return "integer";
        case JSON_REAL:
                return "number";
        case JSON_TRUE:
        case JSON_FALSE:
                return "boolean";
        default:
                return "null";
        }
}

/* Returns the member, NULL with *r = 0 when missing (or null and optional), NULL with *r < 0 on error. */
static json_t *member(const json_t *obj, const char *key, json_type want, bool optional, int *r,
                      struct error **err)
{
        *r = 0;
        if (!json_is_object(obj)) {
                *r = error_set(err, EINVAL, "json: \"%s\": parent is not an object", key);
                return NULL;
        }
        json_t *v = json_object_get(obj, key);
        if (!v || (optional && json_is_null(v))) {
                if (!optional)
                        *r = error_set(err, ENOENT, "json: \"%s\"", key);
                return NULL;
        }
        json_type t = json_typeof(v);
        bool ok = t == want || (want == JSON_TRUE && t == JSON_FALSE);
        if (!ok) {
                *r = error_set(err, EINVAL, "json: \"%s\": expected %s, got %s", key, type_name(want), type_name(t));
                return NULL;
        }
        return v;
}

static int get_string(const json_t *obj, const char *key, const char **ret, bool opt, struct error **err)
{
        int r;
        json_t *v = member(obj, key, JSON_STRING, opt, &r, err);
        if (v)
                *ret = json_string_value(v);
        return r;
}

int json_get_string(const json_t *obj, const char *key, const char **ret, struct error **err)
{
        return get_string(obj, key, ret, false, err);
}

int json_get_string_opt(const json_t *obj, const char *key, const char **ret, struct error **err)
{
        return get_string(obj, key, ret, true, err);
}

static int get_int(const json_t *obj, const char *key, int64_t *ret, bool opt, struct error **err)
{
        int r;
        json_t *v = member(obj, key, JSON_INTEGER, opt, &r, err);
        if (v)
                *ret = (int64_t)json_integer_value(v);
        return r;
}

int json_get_int(const json_t *obj, const char *key, int64_t *ret, struct error **err)
{
        return get_int(obj, key, ret, false, err);
}

int json_get_int_opt(const json_t *obj, const char *key, int64_t *ret, struct error **err)
{
        return get_int(obj, key, ret, true, err);
}

int json_get_uint(const json_t *obj, const char *key, uint64_t *ret, struct error **err)
{
        int64_t v = 0;
        int r = json_get_int(obj, key, &v, err);
        if (r < 0)
                return r;
        if (v < 0)
                return error_set(err, EINVAL, "json: \"%s\": must not be negative", key);
        *ret = (uint64_t)v;
        return 0;
}

static int get_bool(const json_t *obj, const char *key, bool *ret, bool opt, struct error **err)
{
        int r;
        json_t *v = member(obj, key, JSON_TRUE, opt, &r, err);
        if (v)
                *ret = json_is_true(v);
        return r;
}

int json_get_bool(const json_t *obj, const char *key, bool *ret, struct error **err)
{
        return get_bool(obj, key, ret, false, err);
}

int json_get_bool_opt(const json_t *obj, const char *key, bool *ret, struct error **err)
{
        return get_bool(obj, key, ret, true, err);
}

int json_get_object(const json_t *obj, const char *key, json_t **ret, struct error **err)
{
        int r;
        json_t *v = member(obj, key, JSON_OBJECT, false, &r, err);
        if (v)
                *ret = v;
        return r;
}

int json_get_array(const json_t *obj, const char *key, json_t **ret, struct error **err)
{
        int r;
        json_t *v = member(obj, key, JSON_ARRAY, false, &r, err);
        if (v)
                *ret = v;
        return r;
}

int json_get_string_map(const json_t *obj, const char *key, char ***ret_kv, struct error **err)
{
        int r;
        json_t *m = member(obj, key, JSON_OBJECT, true, &r, err);
        if (r < 0)
                return r;
        _cleanup_strv_free_ char **kv = strv_new_empty();
        if (m) {
                const char *k;
                json_t *v;
                json_object_foreach(m, k, v) {
                        if (!json_is_string(v))
                                return error_set(err, EINVAL, "json: \"%s\": \"%s\": expected string", key, k);
                        strv_extend(&kv, k);
                        strv_extend(&kv, json_string_value(v));
                }
        }
        *ret_kv = TAKE_PTR(kv);
        return 0;
}

int json_get_string_array(const json_t *obj, const char *key, char ***ret, struct error **err)
{
        int r;
        json_t *a = member(obj, key, JSON_ARRAY, true, &r, err);
        if (r < 0)
                return r;
        _cleanup_strv_free_ char **v = strv_new_empty();
        if (a) {
                size_t i;
                json_t *e;
                json_array_foreach(a, i, e) {
                        if (!json_is_string(e))
                                return error_set(err, EINVAL, "json: \"%s\"[%zu]: expected string", key, i);
                        strv_extend(&v, json_string_value(e));
                }
        }
        *ret = TAKE_PTR(v);
        return 0;
}

char *json_dump_compact(const json_t *j)
{
        char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!s)
                return xstrdup("null");
        return s; /* jansson's default allocator is malloc, so free() releases it */
}

/* Streaming tar reader for image layers (see tar.h). The behaviour follows Go's archive/tar, which wrote nearly every
 * layer there is: a '\0' typeflag with a trailing slash is a directory, header-only types carry no data whatever
 * their size field says, pax records override the header, global pax headers are read and ignored, GNU long
 * names and links apply to the next header, and one zero block (or EOF at a block boundary) ends the archive. */
#include "image/tar.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/cleanup.h"

#define BLOCK 512

struct pax {
        char *path, *linkpath;
        bool has_size, has_uid, has_gid, has_mtime, has_atime;
        int64_t size, uid, gid, mtime_sec, atime_sec;
        long mtime_nsec, atime_nsec;
        struct tar_xattr *xattrs;
        size_t nxattrs;
};

struct tar_reader {
        tar_source_fn source;
        void *userdata;
        const uint8_t *chunk; /* unconsumed bytes of the source's current piece */
        size_t chunk_len;
        bool eof;
        uint64_t data_left; /* of the current entry */
        uint64_t pad_left;
        bool done;
        struct tar_entry e;
        char *long_name, *long_link; /* GNU 'L' / 'K' for the next header */
        struct pax pax;              /* 'x' for the next header */
};

static void xattrs_free(struct tar_xattr *x, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(x[i].name);
                free(x[i].value);
        }
        free(x);
}

static void pax_clear(struct pax *p)
{
        free(p->path);
        free(p->linkpath);
        xattrs_free(p->xattrs, p->nxattrs);
        *p = (struct pax){0};
}

static void entry_clear(struct tar_entry *e)
{
        free(e->path);
        free(e->linkname);
        xattrs_free(e->xattrs, e->nxattrs);
        *e = (struct tar_entry){0};
}

struct tar_reader *tar_reader_new(tar_source_fn source, void *userdata)
{
        struct tar_reader *r = xcalloc(1, sizeof(*r));
        r->source = source;
        r->userdata = userdata;
        return r;
}

void tar_reader_free(struct tar_reader *r)
{
        if (!r)
                return;
        entry_clear(&r->e);
        free(r->long_name);
        free(r->long_link);
        pax_clear(&r->pax);
        free(r);
}

/* Makes sure some bytes are buffered unless the stream ended: 0, or the source's -errno. */
static int fill(struct tar_reader *r)
{
        while (r->chunk_len == 0 && !r->eof) {
                const void *p;
                ssize_t n = r->source(r->userdata, &p);
                if (n < 0)
                        return (int)n;
                if (n == 0)
                        r->eof = true;
                r->chunk = p;
                r->chunk_len = (size_t)n;
        }
        return 0;
}

/* Copies up to n bytes; *got says how many (fewer only at the end of the stream). */
static int read_full(struct tar_reader *r, void *out, size_t n, size_t *got)
{
        uint8_t *o = out;
        *got = 0;
        while (*got < n) {
                int k = fill(r);
                if (k < 0)
                        return k;
                if (r->chunk_len == 0)
                        break;
                size_t take = n - *got < r->chunk_len ? n - *got : r->chunk_len;
                memcpy(o + *got, r->chunk, take);
                r->chunk += take;
                r->chunk_len -= take;
                *got += take;
        }
        return 0;
}

static int skip(struct tar_reader *r, uint64_t n, struct error **err)
{
        while (n > 0) {
                int k = fill(r);
                if (k < 0)
                        return k;
                if (r->chunk_len == 0)
                        return error_set(err, EINVAL, "unexpected end of tar stream");
                size_t take = n < r->chunk_len ? (size_t)n : r->chunk_len;
                r->chunk += take;
                r->chunk_len -= take;
                n -= take;
        }
        return 0;
}

static uint64_t padding(uint64_t size)
{
        return (BLOCK - size % BLOCK) % BLOCK;
}

/* A numeric header field: octal text (leading spaces/NULs, ended by a space or NUL), or GNU base-256 when the top
 * bit of the first byte is set. Negative base-256 values are refused: no field we use can be negative. */
static int parse_num(const uint8_t *f, size_t n, int64_t *ret)
{
        uint64_t v = 0;
        if (f[0] & 0x80) {
                if (f[0] & 0x40)
                        return -EINVAL;
                v = f[0] & 0x3f;
                for (size_t i = 1; i < n; i++) {
                        if (v >> 55)
                                return -EOVERFLOW;
                        v = v << 8 | f[i];
                }
                if (v > INT64_MAX)
                        return -EOVERFLOW;
                *ret = (int64_t)v;
                return 0;
        }
        size_t i = 0;
        while (i < n && (f[i] == ' ' || f[i] == '\0'))
                i++;
        for (; i < n && f[i] != ' ' && f[i] != '\0'; i++) {
                if (f[i] < '0' || f[i] > '7')
                        return -EINVAL;
                if (v >> 60)
                        return -EOVERFLOW;
                v = v << 3 | (uint64_t)(f[i] - '0');
        }
        for (; i < n; i++) /* only terminators may follow */
                if (f[i] != ' ' && f[i] != '\0')
                        return -EINVAL;
        *ret = (int64_t)v;
        return 0;
}

static char *field_str(const uint8_t *f, size_t n)
{
        size_t len = strnlen((const char *)f, n);
        return xstrndup((const char *)f, len);
}

static bool checksum_ok(const uint8_t *h)
{
        int64_t want;
        if (parse_num(h + 148, 8, &want) < 0)
                return false;
        int64_t us = 0, sg = 0;
        for (int i = 0; i < BLOCK; i++) {
                uint8_t c = i >= 148 && i < 156 ? ' ' : h[i];
                us += c;
                sg += (int8_t)c;
        }
        return want == us || want == sg; /* some old writers summed signed chars */
}

/* "[-]sec[.frac]" as pax writes times. */
static int parse_pax_time(const char *s, int64_t *sec, long *nsec)
{
        bool neg = *s == '-';
        const char *p = s + neg;
        int64_t v = 0;
        long ns = 0;
        if (*p < '0' || *p > '9')
                return -EINVAL;
        for (; *p >= '0' && *p <= '9'; p++) {
                if (v > (INT64_MAX - 9) / 10)
                        return -EOVERFLOW;
                v = v * 10 + (*p - '0');
        }
        if (*p == '.') {
                int digits = 0;
                for (p++; *p >= '0' && *p <= '9'; p++)
                        if (digits++ < 9)
                                ns = ns * 10 + (*p - '0');
                for (; digits < 9; digits++)
                        ns *= 10;
        }
        if (*p)
                return -EINVAL;
        if (neg && ns) { /* -1.5 s is -2 s + 0.5e9 ns */
                v += 1;
                ns = 1000000000L - ns;
        }
        *sec = neg ? -v : v;
        *nsec = ns;
        return 0;
}

static int parse_pax_uint(const char *s, int64_t *ret)
{
        int64_t v = 0;
        if (!*s)
                return -EINVAL;
        for (; *s; s++) {
                if (*s < '0' || *s > '9' || v > (INT64_MAX - 9) / 10)
                        return -EINVAL;
                v = v * 10 + (*s - '0');
        }
        *ret = v;
        return 0;
}

/* Records "LEN KEY=VALUE\n", LEN counting the whole record. A key given an empty value is unset again. */
static int parse_pax(struct pax *px, const uint8_t *d, size_t n, struct error **err)
{
        size_t off = 0;
        while (off < n) {
                size_t len = 0, i = off;
                while (i < n && d[i] >= '0' && d[i] <= '9' && i - off < 8)
                        len = len * 10 + (size_t)(d[i++] - '0');
                if (i == off || i >= n || d[i] != ' ' || len <= i - off + 1 || len > n - off || d[off + len - 1] != '\n')
                        return error_set(err, EINVAL, "invalid pax record");
                const uint8_t *kv = d + i + 1, *end = d + off + len - 1;
                const uint8_t *eq = memchr(kv, '=', (size_t)(end - kv));
                if (!eq || eq == kv)
                        return error_set(err, EINVAL, "invalid pax record");
                _cleanup_free_ char *key = xstrndup((const char *)kv, (size_t)(eq - kv));
                const uint8_t *val = eq + 1;
                size_t vlen = (size_t)(end - val);
                off += len;
                if (strncmp(key, "SCHILY.xattr.", 13) == 0 && key[13]) {
                        if (px->nxattrs >= TAR_MAX_XATTRS)
                                return error_set(err, E2BIG, "more than %u extended attributes on one tar entry",
                                                 TAR_MAX_XATTRS);
                        px->xattrs = xreallocarray(px->xattrs, px->nxattrs + 1, sizeof(*px->xattrs));
                        struct tar_xattr *x = &px->xattrs[px->nxattrs++];
                        x->name = xstrdup(key + 13);
                        x->value = xmalloc(vlen ? vlen : 1);
                        memcpy(x->value, val, vlen);
                        x->len = vlen;
                        continue;
                }
                if (strncmp(key, "GNU.sparse.", 11) == 0)
                        return error_set(err, EINVAL, "sparse tar entries are not supported");
                if (memchr(val, '\0', vlen))
                        return error_set(err, EINVAL, "invalid pax record \"%s\"", key);
                _cleanup_free_ char *v = xstrndup((const char *)val, vlen);
                int r = 0;
                if (strcmp(key, "path") == 0) {
                        free(px->path);
                        px->path = vlen ? TAKE_PTR(v) : NULL;
                } else if (strcmp(key, "linkpath") == 0) {
                        free(px->linkpath);
                        px->linkpath = vlen ? TAKE_PTR(v) : NULL;
                } else if (strcmp(key, "size") == 0) {
                        px->has_size = vlen && (r = parse_pax_uint(v, &px->size)) == 0;
                } else if (strcmp(key, "uid") == 0) {
                        px->has_uid = vlen && (r = parse_pax_uint(v, &px->uid)) == 0;
                } else if (strcmp(key, "gid") == 0) {
                        px->has_gid = vlen && (r = parse_pax_uint(v, &px->gid)) == 0;
                } else if (strcmp(key, "mtime") == 0) {
                        px->has_mtime = vlen && (r = parse_pax_time(v, &px->mtime_sec, &px->mtime_nsec)) == 0;
                } else if (strcmp(key, "atime") == 0) {
                        px->has_atime = vlen && (r = parse_pax_time(v, &px->atime_sec, &px->atime_nsec)) == 0;
                }
                if (r < 0)
                        return error_set(err, EINVAL, "invalid pax record \"%s\"", key);
        }
        return 0;
}

/* Reads the data of a special header (pax, GNU long name) whose size is bounded by max. */
static int read_special(struct tar_reader *r, int64_t size, size_t max, uint8_t **ret, struct error **err)
{
        if (size < 0 || (uint64_t)size > max)
                return error_set(err, E2BIG, "tar special header of %lld bytes exceeds the limit of %zu",
                                 (long long)size, max);
        _cleanup_free_ uint8_t *d = xmalloc((size_t)size + 1);
        size_t got;
        int k = read_full(r, d, (size_t)size, &got);
        if (k < 0)
                return k;
        if (got < (size_t)size)
                return error_set(err, EINVAL, "unexpected end of tar stream");
        d[size] = '\0';
        k = skip(r, padding((uint64_t)size), err);
        if (k < 0)
                return k;
        *ret = TAKE_PTR(d);
        return 0;
}

static bool all_zero(const uint8_t *h)
{
        for (int i = 0; i < BLOCK; i++)
                if (h[i])
                        return false;
        return true;
}

/* Fills r->e from a regular header h plus the pending long names and pax records. */
static int build_entry(struct tar_reader *r, const uint8_t *h, struct error **err)
{
        struct tar_entry *e = &r->e;
        int64_t mode, size, mtime, major = 0, minor = 0;
        if (parse_num(h + 100, 8, &mode) < 0 || parse_num(h + 108, 8, &e->uid) < 0 ||
            parse_num(h + 116, 8, &e->gid) < 0 || parse_num(h + 124, 12, &size) < 0 ||
            parse_num(h + 136, 12, &mtime) < 0)
                return error_set(err, EINVAL, "invalid tar header");
        bool posix = memcmp(h + 257, "ustar\0", 6) == 0, gnu = memcmp(h + 257, "ustar ", 6) == 0;
        if ((posix || gnu) && (parse_num(h + 329, 8, &major) < 0 || parse_num(h + 337, 8, &minor) < 0))
                return error_set(err, EINVAL, "invalid tar header");
        e->mode = (uint32_t)mode & 07777;
        e->mtime_sec = mtime;
        e->devmajor = (uint32_t)major;
        e->devminor = (uint32_t)minor;

        if (r->pax.path)
                e->path = TAKE_PTR(r->pax.path);
        else if (r->long_name)
                e->path = TAKE_PTR(r->long_name);
        else if (posix && h[345]) { /* ustar prefix; GNU headers keep atime/ctime there instead */
                _cleanup_free_ char *prefix = field_str(h + 345, 155), *name = field_str(h + 0, 100);
                e->path = xasprintf("%s/%s", prefix, name);
        } else
                e->path = field_str(h + 0, 100);
        if (r->pax.linkpath)
                e->linkname = TAKE_PTR(r->pax.linkpath);
        else if (r->long_link)
                e->linkname = TAKE_PTR(r->long_link);
        else
                e->linkname = field_str(h + 157, 100);

        if (r->pax.has_size)
                size = r->pax.size;
        if (r->pax.has_uid)
                e->uid = r->pax.uid;
        if (r->pax.has_gid)
                e->gid = r->pax.gid;
        if (r->pax.has_mtime) {
                e->mtime_sec = r->pax.mtime_sec;
                e->mtime_nsec = r->pax.mtime_nsec;
        }
        if (r->pax.has_atime) {
                e->atime_set = true;
                e->atime_sec = r->pax.atime_sec;
                e->atime_nsec = r->pax.atime_nsec;
        }
        e->xattrs = TAKE_PTR(r->pax.xattrs);
        e->nxattrs = r->pax.nxattrs;
        r->pax.nxattrs = 0;

        uint8_t flag = h[156];
        size_t plen = strlen(e->path);
        switch (flag) {
        case '\0':
                e->type = plen && e->path[plen - 1] == '/' ? TAR_DIR : TAR_REG; /* pre-POSIX directories */
                break;
        case '0':
        case '7':
                e->type = TAR_REG;
                break;
        case '1':
                e->type = TAR_HARDLINK;
                break;
        case '2':
                e->type = TAR_SYMLINK;
                break;
        case '3':
                e->type = TAR_CHR;
                break;
        case '4':
                e->type = TAR_BLK;
                break;
        case '5':
                e->type = TAR_DIR;
                break;
        case '6':
                e->type = TAR_FIFO;
                break;
        default:
                /* containerd's archive.createTarFile: "unhandled tar header type" (sparse, volume, ...) */
                return error_set(err, EINVAL, "unhandled tar header type %d for \"%s\"", flag, e->path);
        }
        if (e->type != TAR_HARDLINK && e->type != TAR_SYMLINK) {
                free(e->linkname);
                e->linkname = NULL;
        } else if (!e->linkname[0]) {
                return error_set(err, EINVAL, "tar link \"%s\" without a target", e->path);
        }
        if (!e->path[0])
                return error_set(err, EINVAL, "tar entry without a name");
        if (size < 0)
                return error_set(err, EINVAL, "tar entry \"%s\" with a negative size", e->path);
        /* header-only types carry no data whatever their size field says */
        e->size = e->type == TAR_REG ? size : 0;
        r->data_left = (uint64_t)e->size;
        r->pad_left = padding((uint64_t)e->size);
        return 0;
}

int tar_reader_next(struct tar_reader *r, const struct tar_entry **ret, struct error **err)
{
        uint8_t h[BLOCK];
        int k;
        *ret = NULL;
        if (r->done)
                return 0;
        k = skip(r, r->data_left + r->pad_left, err);
        if (k < 0)
                return k;
        r->data_left = r->pad_left = 0;
        entry_clear(&r->e);
        for (;;) {
                size_t got;
                k = read_full(r, h, BLOCK, &got);
                if (k < 0)
                        return k;
                if (got == 0 || (got == BLOCK && all_zero(h))) {
                        /* The end. Anything pending (a pax header or long name with no entry) is dropped, as Go
                         * ends with io.EOF there too. */
                        r->done = true;
                        return 0;
                }
                if (got < BLOCK)
                        return error_set(err, EINVAL, "unexpected end of tar stream");
                if (!checksum_ok(h))
                        return error_set(err, EINVAL, "invalid tar header checksum");
                uint8_t flag = h[156];
                if (flag == 'x' || flag == 'g' || flag == 'L' || flag == 'K') {
                        int64_t size;
                        _cleanup_free_ uint8_t *d = NULL;
                        if (parse_num(h + 124, 12, &size) < 0)
                                return error_set(err, EINVAL, "invalid tar header");
                        k = read_special(r, size, flag == 'x' || flag == 'g' ? TAR_MAX_PAX_SIZE : TAR_MAX_LONGNAME,
                                         &d, err);
                        if (k < 0)
                                return k;
                        if (flag == 'x') {
                                k = parse_pax(&r->pax, d, (size_t)size, err);
                                if (k < 0)
                                        return k;
                        } else if (flag == 'L' || flag == 'K') {
                                char **dst = flag == 'L' ? &r->long_name : &r->long_link;
                                free(*dst);
                                *dst = xstrdup((const char *)d); /* ends at the first NUL */
                        }
                        continue; /* global pax headers are read and ignored, as containerd ignores them */
                }
                k = build_entry(r, h, err);
                pax_clear(&r->pax);
                free(r->long_name);
                free(r->long_link);
                r->long_name = r->long_link = NULL;
                if (k < 0)
                        return k;
                *ret = &r->e;
                return 0;
        }
}

ssize_t tar_reader_data(struct tar_reader *r, const void **buf, struct error **err)
{
        if (r->data_left == 0)
                return 0;
        int k = fill(r);
        if (k < 0)
                return k;
        if (r->chunk_len == 0)
                return error_set(err, EINVAL, "unexpected end of tar stream in \"%s\"", r->e.path);
        size_t take = r->data_left < r->chunk_len ? (size_t)r->data_left : r->chunk_len;
        *buf = r->chunk;
        r->chunk += take;
        r->chunk_len -= take;
        r->data_left -= take;
        return (ssize_t)take;
}

/* --- writer --- */

#define WBUF (64u << 10)

struct tar_writer {
        tar_sink_fn sink;
        void *userdata;
        uint8_t *buf;
        size_t used;
        uint64_t data_left, pad;
};

struct tar_writer *tar_writer_new(tar_sink_fn sink, void *userdata)
{
        struct tar_writer *w = xcalloc(1, sizeof(*w));
        w->sink = sink;
        w->userdata = userdata;
        w->buf = xmalloc(WBUF);
        return w;
}

void tar_writer_free(struct tar_writer *w)
{
        if (!w)
                return;
        free(w->buf);
        free(w);
}

static int w_flush(struct tar_writer *w)
{
        if (w->used == 0)
                return 0;
        int r = w->sink(w->userdata, w->buf, w->used);
        w->used = 0;
        return r;
}

static int w_put(struct tar_writer *w, const void *p, size_t n)
{
        const uint8_t *s = p;
        if (n >= WBUF) { /* large data goes straight through */
                int r = w_flush(w);
                return r < 0 ? r : w->sink(w->userdata, s, n);
        }
        while (n > 0) {
                size_t take = WBUF - w->used < n ? WBUF - w->used : n;
                memcpy(w->buf + w->used, s, take);
                w->used += take;
                s += take;
                n -= take;
                if (w->used == WBUF) {
                        int r = w_flush(w);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int w_zeros(struct tar_writer *w, size_t n)
{
        static const uint8_t zero[BLOCK];
        while (n > 0) {
                size_t take = n < BLOCK ? n : BLOCK;
                int r = w_put(w, zero, take);
                if (r < 0)
                        return r;
                n -= take;
        }
        return 0;
}

/* n-1 octal digits and a NUL; false when v does not fit. */
static bool put_octal(uint8_t *f, size_t n, uint64_t v)
{
        f[n - 1] = '\0';
        for (size_t i = n - 1; i-- > 0; v >>= 3)
                f[i] = (uint8_t)('0' + (v & 7));
        return v == 0;
}

static void put_checksum(uint8_t *h)
{
        unsigned sum = 0;
        memset(h + 148, ' ', 8);
        for (int i = 0; i < BLOCK; i++)
                sum += h[i];
        put_octal(h + 148, 7, sum); /* six digits, NUL, then the space already there */
}

/* Appends "LEN key=value\n", LEN counting the whole record including its own digits. */
static void pax_add(char **recs, size_t *len, const char *key, const void *val, size_t vlen)
{
        size_t base = strlen(key) + vlen + 3, digits = 1;
        while (1) {
                size_t total = base + digits, d = 1;
                for (size_t t = total; t >= 10; t /= 10)
                        d++;
                if (d == digits)
                        break;
                digits = d;
        }
        size_t total = base + digits;
        *recs = xrealloc(*recs, *len + total + 1);
        int k = snprintf(*recs + *len, total + 1, "%zu %s=", total, key);
        memcpy(*recs + *len + k, val, vlen);
        (*recs)[*len + total - 1] = '\n';
        *len += total;
}

static void pax_add_str(char **recs, size_t *len, const char *key, const char *val)
{
        pax_add(recs, len, key, val, strlen(val));
}

static void pax_add_num(char **recs, size_t *len, const char *key, int64_t v)
{
        char s[32];
        snprintf(s, sizeof(s), "%lld", (long long)v);
        pax_add_str(recs, len, key, s);
}

static int w_block_header(struct tar_writer *w, uint8_t *h)
{
        put_checksum(h);
        return w_put(w, h, BLOCK);
}

int tar_writer_header(struct tar_writer *w, const struct tar_entry *e, struct error **err)
{
        static const char flags[] = {[TAR_REG] = '0', [TAR_HARDLINK] = '1', [TAR_SYMLINK] = '2', [TAR_CHR] = '3',
                                     [TAR_BLK] = '4', [TAR_DIR] = '5', [TAR_FIFO] = '6'};
        uint8_t h[BLOCK];
        _cleanup_free_ char *recs = NULL;
        size_t rlen = 0;
        int r;

        if (w->data_left)
                return error_set(err, EBUSY, "tar entry data incomplete");
        r = w_zeros(w, w->pad);
        if (r < 0)
                return r;
        w->pad = 0;
        if (!e->path || !e->path[0] || (unsigned)e->type > TAR_FIFO || e->size < 0 || e->uid < 0 || e->gid < 0 ||
            ((e->type == TAR_HARDLINK || e->type == TAR_SYMLINK) && (!e->linkname || !e->linkname[0])))
                return error_set(err, EINVAL, "invalid tar entry \"%s\"", e->path ? e->path : "");
        int64_t size = e->type == TAR_REG ? e->size : 0;

        memset(h, 0, sizeof(h));
        size_t plen = strlen(e->path);
        if (plen <= 100)
                memcpy(h, e->path, plen);
        else
                pax_add_str(&recs, &rlen, "path", e->path);
        put_octal(h + 100, 8, e->mode & 07777);
        if (!put_octal(h + 108, 8, (uint64_t)e->uid)) {
                put_octal(h + 108, 8, 0);
                pax_add_num(&recs, &rlen, "uid", e->uid);
        }
        if (!put_octal(h + 116, 8, (uint64_t)e->gid)) {
                put_octal(h + 116, 8, 0);
                pax_add_num(&recs, &rlen, "gid", e->gid);
        }
        if (!put_octal(h + 124, 12, (uint64_t)size)) {
                put_octal(h + 124, 12, 0);
                pax_add_num(&recs, &rlen, "size", size);
        }
        if (e->mtime_sec < 0 || !put_octal(h + 136, 12, (uint64_t)e->mtime_sec)) {
                put_octal(h + 136, 12, 0);
                pax_add_num(&recs, &rlen, "mtime", e->mtime_sec);
        }
        h[156] = (uint8_t)flags[e->type];
        if (e->type == TAR_HARDLINK || e->type == TAR_SYMLINK) {
                size_t llen = strlen(e->linkname);
                if (llen <= 100)
                        memcpy(h + 157, e->linkname, llen);
                else
                        pax_add_str(&recs, &rlen, "linkpath", e->linkname);
        }
        memcpy(h + 257, "ustar\0" "00", 8);
        put_octal(h + 329, 8, 0);
        put_octal(h + 337, 8, 0);
        if ((e->type == TAR_CHR || e->type == TAR_BLK) &&
            (!put_octal(h + 329, 8, e->devmajor) || !put_octal(h + 337, 8, e->devminor)))
                return error_set(err, EINVAL, "device numbers of \"%s\" too large for tar", e->path);
        for (size_t i = 0; i < e->nxattrs; i++) {
                _cleanup_free_ char *key = xasprintf("SCHILY.xattr.%s", e->xattrs[i].name);
                pax_add(&recs, &rlen, key, e->xattrs[i].value, e->xattrs[i].len);
        }
        if (rlen > TAR_MAX_PAX_SIZE)
                return error_set(err, E2BIG, "pax header of \"%s\" too large", e->path);

        if (rlen) {
                /* Go names it <dir>/PaxHeaders.0/<base>; readers ignore the name */
                uint8_t x[BLOCK];
                const char *base = strrchr(e->path, '/');
                base = base && base[1] ? base + 1 : e->path;
                memset(x, 0, sizeof(x));
                snprintf((char *)x, 100, "PaxHeaders.0/%.80s", base);
                put_octal(x + 100, 8, 0644);
                put_octal(x + 108, 8, 0);
                put_octal(x + 116, 8, 0);
                put_octal(x + 124, 12, rlen);
                put_octal(x + 136, 12, 0);
                x[156] = 'x';
                memcpy(x + 257, "ustar\0" "00", 8);
                r = w_block_header(w, x);
                if (r == 0)
                        r = w_put(w, recs, rlen);
                if (r == 0)
                        r = w_zeros(w, padding(rlen));
                if (r < 0)
                        return r;
        }
        r = w_block_header(w, h);
        if (r < 0)
                return r;
        w->data_left = (uint64_t)size;
        w->pad = padding((uint64_t)size);
        return 0;
}

int tar_writer_data(struct tar_writer *w, const void *buf, size_t len, struct error **err)
{
        if (len > w->data_left)
                return error_set(err, EINVAL, "more tar data than the entry's size");
        w->data_left -= len;
        return w_put(w, buf, len);
}

int tar_writer_close(struct tar_writer *w, struct error **err)
{
        if (w->data_left)
                return error_set(err, EBUSY, "tar entry data incomplete");
        int r = w_zeros(w, w->pad + 2 * BLOCK);
        w->pad = 0;
        return r < 0 ? r : w_flush(w);
}

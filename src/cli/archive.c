/* OCI layout and Docker save archives for `krill images import/export`; see archive.h. */
#include "cli/archive.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/decompress.h"
#include "image/platform.h"
#include "image/ref.h"
#include "image/tar.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/json.h"
#include "util/strv.h"

#define READ_CHUNK (1u << 20)
#define MAX_KEPT_JSON_TOTAL (64u << 20) /* all small JSON members kept for the Docker conversion */
#define MAX_DOCKER_IMAGES 1024

void cli_format_bytes(int64_t n, char *buf, size_t len)
{
        static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"};
        double size = (double)n;
        size_t i = 0;
        while (size >= 1024.0 && i < sizeof(units) / sizeof(units[0]) - 1) {
                size /= 1024.0;
                i++;
        }
        snprintf(buf, len, "%02.1f %s", size, units[i]);
}

char *cli_archive_clean_name(const char *name)
{
        if (!name || name[0] == '\0' || name[0] == '/' || strlen(name) > CLI_ARCHIVE_MAX_NAME)
                return NULL;
        _cleanup_strv_free_ char **parts = strv_split(name, "/");
        _cleanup_free_ char **out = xcalloc(strv_length(parts) + 1, sizeof(char *));
        size_t n = 0;
        for (size_t i = 0; parts && parts[i]; i++) {
                if (parts[i][0] == '\0' || strcmp(parts[i], ".") == 0)
                        continue;
                if (strcmp(parts[i], "..") == 0)
                        return NULL; /* never let a member climb, even if it would come back down */
                out[n++] = parts[i];
        }
        if (n == 0)
                return NULL;
        out[n] = NULL;
        return strv_join(out, "/");
}

void cli_archive_index_done(struct cli_archive_index *idx)
{
        free(idx->media_type);
        free(idx->digest);
        for (size_t i = 0; i < idx->n_extra; i++) {
                free(idx->extra[i].ref);
                free(idx->extra[i].digest);
                free(idx->extra[i].data);
        }
        free(idx->extra);
        memset(idx, 0, sizeof(*idx));
}

struct member {
        char *name;
        char *digest;
        int64_t size;
        unsigned char magic[4];
        size_t magic_len;
        char *json; /* kept when small and named *.json */
        size_t json_len;
};

struct reader {
        struct member *members;
        size_t n_members;
        char **symlinks; /* pairs: name, cleaned target */
        size_t kept_json;
        char *layout; /* oci-layout */
        size_t layout_len;
        char *manifest; /* manifest.json */
        size_t manifest_len;
};

static void reader_done(struct reader *r)
{
        for (size_t i = 0; i < r->n_members; i++) {
                free(r->members[i].name);
                free(r->members[i].digest);
                free(r->members[i].json);
        }
        free(r->members);
        strv_free(r->symlinks);
        free(r->layout);
        free(r->manifest);
}

static const struct member *find_member(const struct reader *r, const char *name)
{
        for (int depth = 0; depth < 16; depth++) {
                const char *next = NULL;
                for (size_t i = 0; i < r->n_members; i++)
                        if (strcmp(r->members[i].name, name) == 0)
                                return &r->members[i];
                for (size_t i = 0; r->symlinks && r->symlinks[i]; i += 2)
                        if (strcmp(r->symlinks[i], name) == 0)
                                next = r->symlinks[i + 1];
                if (!next)
                        return NULL;
                name = next;
        }
        return NULL;
}

/* Reading the archive: a tar (plain, gzip or zstd, detected by image/decompress) through image/tar. */
struct tar_in {
        struct image_decompressor *dec;
        uint8_t *buf;
        struct error *err; /* of a failed read, handed to the caller */
};

static ssize_t tar_in_next(void *ud, const void **buf)
{
        struct tar_in *in = ud;
        ssize_t n = image_decompressor_read(in->dec, in->buf, READ_CHUNK, &in->err);
        *buf = in->buf;
        return n;
}

/* An error of the tar reader: the decompressor's when the stream failed, else the reader's, prefixed. */
static int tar_fail(struct tar_in *in, int r, const char *what, struct error **err)
{
        if (in->err) {
                if (err && !*err)
                        *err = TAKE_PTR(in->err);
                return r;
        }
        if (err && *err)
                return error_wrap(err, "%s", what);
        return error_set(err, -r, "%s", what);
}

static int read_small(struct tar_reader *a, struct tar_in *in, const char *name, int64_t size, char **ret,
                      size_t *ret_len, struct error **err)
{
        if (size < 0 || (uint64_t)size > CLI_ARCHIVE_MAX_JSON)
                return error_set(err, EFBIG, "%s: %lld bytes is too large", name, (long long)size);
        char *buf = xmalloc((size_t)size + 1);
        size_t got = 0;
        for (;;) {
                const void *p;
                ssize_t n = tar_reader_data(a, &p, err);
                if (n < 0) {
                        free(buf);
                        _cleanup_free_ char *what = xasprintf("read %s", name);
                        return tar_fail(in, (int)n, what, err);
                }
                if (n == 0)
                        break;
                memcpy(buf + got, p, (size_t)n); /* the reader hands out at most the entry's size */
                got += (size_t)n;
        }
        if (got != (size_t)size) {
                free(buf);
                return error_set(err, EIO, "read %s: unexpected end of archive", name);
        }
        buf[got] = '\0';
        *ret = buf;
        *ret_len = got;
        return 0;
}

/* blobs/<alg>/<hex> -> "<alg>:<hex>" when it is a valid digest, else NULL. */
static char *blob_digest_of(const char *name)
{
        if (!str_startswith(name, "blobs/"))
                return NULL;
        const char *alg = name + strlen("blobs/");
        const char *slash = strchr(alg, '/');
        if (!slash || strchr(slash + 1, '/'))
                return NULL;
        char *d = xasprintf("%.*s:%s", (int)(slash - alg), alg, slash + 1);
        if (digest_validate(d, NULL) < 0) {
                free(d);
                return NULL;
        }
        return d;
}

static int stream_member(struct tar_reader *a, struct tar_in *in, struct reader *rd, const char *name, int64_t size,
                         const struct cli_archive_sink *sink, struct error **err)
{
        _cleanup_free_ char *expected = blob_digest_of(name);
        _cleanup_(digester_freep) struct digester *d = digester_new();
        struct member m = {.name = xstrdup(name), .size = size};
        bool keep_json = str_endswith(name, ".json") && (uint64_t)size <= CLI_ARCHIVE_MAX_JSON &&
                         rd->kept_json + (size_t)size <= MAX_KEPT_JSON_TOTAL;
        int64_t got = 0;
        int r;

        if (size < 0 || (uint64_t)size > CLI_ARCHIVE_MAX_BLOB) {
                free(m.name);
                return error_set(err, EFBIG, "%s: %lld bytes is too large", name, (long long)size);
        }
        r = sink->begin(sink->userdata, name, size, expected, err);
        if (r < 0)
                goto fail;
        if (keep_json) {
                m.json = xmalloc((size_t)size + 1);
                rd->kept_json += (size_t)size;
        }
        for (;;) {
                const void *data;
                ssize_t n = tar_reader_data(a, &data, err);
                const unsigned char *buf = data;
                if (n < 0) {
                        _cleanup_free_ char *what = xasprintf("read %s", name);
                        r = tar_fail(in, (int)n, what, err);
                        goto fail;
                }
                if (n == 0)
                        break;
                if ((int64_t)n > size - got) {
                        r = error_set(err, EIO, "read %s: more data than its header says", name);
                        goto fail;
                }
                if (m.magic_len < sizeof(m.magic)) {
                        size_t k = sizeof(m.magic) - m.magic_len;
                        if (k > (size_t)n)
                                k = (size_t)n;
                        memcpy(m.magic + m.magic_len, buf, k);
                        m.magic_len += k;
                }
                if (m.json)
                        memcpy(m.json + got, buf, (size_t)n);
                digester_update(d, buf, (size_t)n);
                r = sink->data(sink->userdata, buf, (size_t)n, err);
                if (r < 0)
                        goto fail;
                got += n;
        }
        if (got != size) {
                r = error_set(err, EIO, "read %s: unexpected end of archive", name);
                goto fail;
        }
        m.digest = digester_digest(d);
        if (expected && !digest_equal(expected, m.digest)) {
                r = error_set(err, EINVAL, "blob %s: digest mismatch (content is %s)", name, m.digest);
                goto fail;
        }
        if (m.json) {
                m.json[size] = '\0';
                m.json_len = (size_t)size;
        }
        r = sink->end(sink->userdata, m.digest, err);
        if (r < 0)
                goto fail;
        rd->members = xrealloc(rd->members, (rd->n_members + 1) * sizeof(*rd->members));
        rd->members[rd->n_members++] = m;
        return 0;
fail:
        free(m.name);
        free(m.digest);
        free(m.json);
        return r;
}

/* path.Join(path.Dir(name), link), resolved lexically; NULL if it leaves the archive root. */
static char *symlink_target(const char *name, const char *link)
{
        if (!link || link[0] == '/' || strlen(link) > CLI_ARCHIVE_MAX_NAME)
                return NULL;
        const char *slash = strrchr(name, '/');
        _cleanup_free_ char *joined = slash ? xasprintf("%.*s/%s", (int)(slash - name), name, link) : xstrdup(link);
        _cleanup_strv_free_ char **parts = strv_split(joined, "/");
        _cleanup_free_ char **out = xcalloc(strv_length(parts) + 1, sizeof(char *));
        size_t n = 0;
        for (size_t i = 0; parts && parts[i]; i++) {
                if (parts[i][0] == '\0' || strcmp(parts[i], ".") == 0)
                        continue;
                if (strcmp(parts[i], "..") == 0) {
                        if (n == 0)
                                return NULL;
                        n--;
                        continue;
                }
                out[n++] = parts[i];
        }
        if (n == 0)
                return NULL;
        out[n] = NULL;
        return strv_join(out, "/");
}

static int read_tar(int fd, struct reader *rd, const struct cli_archive_sink *sink, struct error **err)
{
        struct tar_in in = {0};
        const struct tar_entry *e;
        size_t entries = 0;
        int r = image_decompressor_new(fd, 0, &in.dec, err);
        if (r < 0)
                return error_wrap(err, "open archive");
        in.buf = xmalloc(READ_CHUNK);
        struct tar_reader *a = tar_reader_new(tar_in_next, &in);
        for (;;) {
                r = tar_reader_next(a, &e, err);
                if (r < 0) {
                        r = tar_fail(&in, r, "read archive", err);
                        break;
                }
                if (!e)
                        break;
                if (++entries > CLI_ARCHIVE_MAX_ENTRIES) {
                        r = error_set(err, E2BIG, "archive has more than %d entries", CLI_ARCHIVE_MAX_ENTRIES);
                        break;
                }
                const char *raw = e->path;
                if (e->type == TAR_DIR)
                        continue;
                _cleanup_free_ char *name = cli_archive_clean_name(raw);
                if (!name) {
                        r = error_set(err, EINVAL, "archive member \"%s\": invalid path", raw ? raw : "");
                        break;
                }
                if (e->type == TAR_SYMLINK) {
                        char *t = symlink_target(name, e->linkname);
                        if (!t) {
                                r = error_set(err, EINVAL, "archive member \"%s\": invalid symlink target", name);
                                break;
                        }
                        strv_extend(&rd->symlinks, name);
                        strv_push(&rd->symlinks, t);
                        continue;
                }
                if (e->type != TAR_REG)
                        continue; /* like ctr: only regular files carry data */
                int64_t size = e->size;
                if (strcmp(name, "oci-layout") == 0) {
                        free(rd->layout);
                        rd->layout = NULL;
                        r = read_small(a, &in, name, size, &rd->layout, &rd->layout_len, err);
                } else if (strcmp(name, "manifest.json") == 0) {
                        free(rd->manifest);
                        rd->manifest = NULL;
                        r = read_small(a, &in, name, size, &rd->manifest, &rd->manifest_len, err);
                } else {
                        r = stream_member(a, &in, rd, name, size, sink, err);
                }
                if (r < 0)
                        break;
        }
        tar_reader_free(a);
        image_decompressor_free(in.dec);
        error_free(&in.err);
        free(in.buf);
        return r;
}

static json_t *descriptor_json(const char *media_type, const char *digest, int64_t size)
{
        json_t *j = json_object();
        json_object_set_new(j, "mediaType", json_string(media_type));
        json_object_set_new(j, "digest", json_string(digest));
        json_object_set_new(j, "size", json_integer(size));
        return j;
}

static void add_extra(struct cli_archive_index *idx, json_t *doc, const char **ret_digest, size_t *ret_len)
{
        char *text = json_dump_compact(doc);
        struct cli_archive_extra x = {.data = text, .len = strlen(text)};
        x.digest = digest_from_buf(x.data, x.len);
        x.ref = xasprintf("manifest-%s", x.digest);
        idx->extra = xrealloc(idx->extra, (idx->n_extra + 1) * sizeof(*idx->extra));
        idx->extra[idx->n_extra++] = x;
        *ret_digest = x.digest;
        *ret_len = x.len;
}

static bool is_gzip(const struct member *m)
{
        return m->magic_len >= 2 && m->magic[0] == 0x1f && m->magic[1] == 0x8b;
}

static bool is_zstd(const struct member *m)
{
        return m->magic_len >= 4 && m->magic[0] == 0x28 && m->magic[1] == 0xb5 && m->magic[2] == 0x2f &&
               m->magic[3] == 0xfd;
}

/* One Docker manifest.json entry -> a schema2 manifest blob; appends its descriptor(s) to manifests. */
static int docker_image(const struct reader *rd, json_t *entry, json_t *manifests, struct cli_archive_index *idx,
                        struct error **err)
{
        const char *config_name = json_string_value(json_object_get(entry, "Config"));
        json_t *layers = json_object_get(entry, "Layers");
        json_t *tags = json_object_get(entry, "RepoTags");
        if (!config_name)
                return error_set(err, EINVAL, "manifest.json: image without Config");
        _cleanup_free_ char *cname = cli_archive_clean_name(config_name);
        const struct member *cfg = cname ? find_member(rd, cname) : NULL;
        if (!cfg)
                return error_set(err, ENOENT, "image config \"%s\" not found", config_name);
        if (layers && !json_is_array(layers))
                return error_set(err, EINVAL, "manifest.json: Layers must be an array");

        _cleanup_json_ json_t *m = json_object();
        json_object_set_new(m, "schemaVersion", json_integer(2));
        json_object_set_new(m, "mediaType", json_string(CLI_MT_DOCKER_MANIFEST));
        json_object_set_new(m, "config", descriptor_json(CLI_MT_DOCKER_CONFIG, cfg->digest, cfg->size));
        json_t *ls = json_array();
        json_object_set_new(m, "layers", ls);
        size_t i;
        json_t *v;
        json_array_foreach(layers, i, v)
        {
                const char *ln = json_string_value(v);
                _cleanup_free_ char *clean = ln ? cli_archive_clean_name(ln) : NULL;
                const struct member *l = clean ? find_member(rd, clean) : NULL;
                if (!l)
                        return error_set(err, ENOENT, "failed to resolve layers: layer \"%s\" not found", ln ? ln : "");
                /* containerd only knows uncompressed and gzip here; zstd keeps the gzip type like its
                 * DecompressStream check (anything compressed) */
                json_array_append_new(
                    ls, descriptor_json(is_gzip(l) || is_zstd(l) ? CLI_MT_DOCKER_LAYER_GZIP : CLI_MT_DOCKER_LAYER,
                                        l->digest, l->size));
        }
        const char *mdigest;
        size_t mlen;
        add_extra(idx, m, &mdigest, &mlen);

        json_t *platform = NULL;
        if (cfg->json) {
                json_t *cj = NULL;
                if (json_load_bounded(cfg->json, cfg->json_len, CLI_ARCHIVE_MAX_JSON, 64, &cj, NULL) == 0) {
                        const char *os = json_string_value(json_object_get(cj, "os"));
                        const char *arch = json_string_value(json_object_get(cj, "architecture"));
                        struct image_platform p = {.os = xstrdup(os ? os : ""), .arch = xstrdup(arch ? arch : "")};
                        image_platform_normalize(&p);
                        platform = json_object();
                        json_object_set_new(platform, "architecture", json_string(p.arch));
                        json_object_set_new(platform, "os", json_string(p.os));
                        if (p.variant && p.variant[0])
                                json_object_set_new(platform, "variant", json_string(p.variant));
                        image_platform_clear(&p);
                        json_decref(cj);
                }
        }
        size_t ntags = json_is_array(tags) ? json_array_size(tags) : 0;
        if (ntags == 0) {
                json_t *desc = descriptor_json(CLI_MT_DOCKER_MANIFEST, mdigest, (int64_t)mlen);
                if (platform)
                        json_object_set(desc, "platform", platform);
                json_array_append_new(manifests, desc);
        }
        json_array_foreach(tags, i, v)
        {
                const char *tag = json_string_value(v);
                _cleanup_(image_ref_clearp) struct image_ref ref = {0};
                struct error *e = NULL;
                if (!tag || image_ref_parse_docker(tag, &ref, &e) < 0) {
                        _cleanup_free_ char *msg = e ? error_message(e) : xstrdup("invalid");
                        int rr = error_set(err, EINVAL, "normalize image ref \"%s\": %s", tag ? tag : "", msg);
                        error_free(&e);
                        json_decref(platform);
                        return rr;
                }
                _cleanup_free_ char *full = image_ref_string(&ref);
                _cleanup_free_ char *object = NULL;
                if (ref.tag && ref.digest)
                        object = xasprintf("%s@%s", ref.tag, ref.digest);
                else if (ref.digest)
                        object = xasprintf("@%s", ref.digest);
                else
                        object = xstrdup(ref.tag ? ref.tag : "");
                json_t *desc = descriptor_json(CLI_MT_DOCKER_MANIFEST, mdigest, (int64_t)mlen);
                json_t *ann = json_object();
                json_object_set_new(ann, "io.containerd.image.name", json_string(full));
                json_object_set_new(ann, "org.opencontainers.image.ref.name", json_string(object));
                json_object_set_new(desc, "annotations", ann);
                if (platform)
                        json_object_set(desc, "platform", platform);
                json_array_append_new(manifests, desc);
        }
        json_decref(platform);
        return 0;
}

static int docker_index(const struct reader *rd, struct cli_archive_index *idx, struct error **err)
{
        _cleanup_json_ json_t *mj = NULL;
        int r = json_load_bounded(rd->manifest, rd->manifest_len, CLI_ARCHIVE_MAX_JSON, 16, &mj, err);
        if (r < 0)
                return error_wrap(err, "untar manifest \"manifest.json\"");
        if (!json_is_array(mj))
                return error_set(err, EINVAL, "untar manifest \"manifest.json\": expected an array");
        if (json_array_size(mj) > MAX_DOCKER_IMAGES)
                return error_set(err, E2BIG, "manifest.json: too many images");
        _cleanup_json_ json_t *index = json_object();
        json_object_set_new(index, "schemaVersion", json_integer(2));
        json_t *manifests = json_array();
        json_object_set_new(index, "manifests", manifests);
        size_t i;
        json_t *entry;
        json_array_foreach(mj, i, entry)
        {
                if (!json_is_object(entry))
                        return error_set(err, EINVAL, "manifest.json: expected objects");
                r = docker_image(rd, entry, manifests, idx, err);
                if (r < 0)
                        return r;
        }
        const char *d;
        size_t len;
        add_extra(idx, index, &d, &len);
        idx->digest = xstrdup(d);
        idx->size = (int64_t)len;
        idx->media_type = xstrdup(CLI_MT_OCI_INDEX);
        return 0;
}

int cli_archive_import(int fd, const struct cli_archive_sink *sink, struct cli_archive_index *ret, struct error **err)
{
        struct reader rd = {0};
        struct cli_archive_index idx = {0};
        int r = read_tar(fd, &rd, sink, err);
        if (r < 0)
                goto out;
        if (rd.layout) {
                _cleanup_json_ json_t *lj = NULL;
                const char *version = NULL;
                r = json_load_bounded(rd.layout, rd.layout_len, CLI_ARCHIVE_MAX_JSON, 4, &lj, err);
                if (r < 0) {
                        error_wrap(err, "untar oci layout \"oci-layout\"");
                        goto out;
                }
                version = json_string_value(json_object_get(lj, "imageLayoutVersion"));
                if (version && version[0]) {
                        if (strcmp(version, "1.0.0") != 0) {
                                r = error_set(err, EINVAL, "unsupported OCI version %s", version);
                                goto out;
                        }
                        const struct member *m = find_member(&rd, "index.json");
                        if (!m) {
                                r = error_set(err, ENOENT, "missing index.json in OCI layout 1.0.0");
                                goto out;
                        }
                        idx.media_type = xstrdup(CLI_MT_OCI_INDEX);
                        idx.digest = xstrdup(m->digest);
                        idx.size = m->size;
                        goto done;
                }
        }
        if (!rd.manifest) {
                r = error_set(err, EINVAL, "unrecognized image format");
                goto out;
        }
        r = docker_index(&rd, &idx, err);
        if (r < 0)
                goto out;
done:
        *ret = idx;
        memset(&idx, 0, sizeof(idx));
        r = 0;
out:
        cli_archive_index_done(&idx);
        reader_done(&rd);
        return r;
}

struct cli_archive_writer {
        struct tar_writer *tw;
        int fd;
        int write_errno;
};

static int fd_sink(void *ud, const void *buf, size_t len)
{
        struct cli_archive_writer *w = ud;
        const uint8_t *p = buf;
        while (len > 0) {
                ssize_t n = write(w->fd, p, len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        w->write_errno = errno;
                        return -errno;
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

/* Errors of the fd sink carry no text of their own. */
static int writer_fail(struct cli_archive_writer *w, int r, struct error **err)
{
        if (r < 0 && w->write_errno && !(err && *err))
                return error_set(err, w->write_errno, "write archive");
        return r;
}

int cli_archive_writer_open(int fd, struct cli_archive_writer **ret, struct error **err)
{
        (void)err;
        struct cli_archive_writer *w = xcalloc(1, sizeof(*w));
        w->fd = fd;
        w->tw = tar_writer_new(fd_sink, w);
        *ret = w;
        return 0;
}

int cli_archive_writer_add(struct cli_archive_writer *w, const char *name, int64_t size, struct error **err)
{
        struct tar_entry e = {.type = TAR_REG, .path = (char *)name, .mode = 0444, .size = size};
        return writer_fail(w, tar_writer_header(w->tw, &e, err), err);
}

int cli_archive_writer_data(struct cli_archive_writer *w, const void *buf, size_t len, struct error **err)
{
        return writer_fail(w, tar_writer_data(w->tw, buf, len, err), err);
}

int cli_archive_writer_add_dir(struct cli_archive_writer *w, const char *name, struct error **err)
{
        struct tar_entry e = {.type = TAR_DIR, .path = (char *)name, .mode = 0755};
        return writer_fail(w, tar_writer_header(w->tw, &e, err), err);
}

int cli_archive_writer_close(struct cli_archive_writer *w, struct error **err)
{
        return writer_fail(w, tar_writer_close(w->tw, err), err);
}

void cli_archive_writer_free(struct cli_archive_writer *w)
{
        if (!w)
                return;
        tar_writer_free(w->tw);
        free(w);
}

/* Content, lease helpers for the CLI; see content_client.h. */
#include "cli/content_client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "github.com/containerd/containerd/api/services/content/v1/content.pb-c.h"
#include "github.com/containerd/containerd/api/services/leases/v1/leases.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "cli/archive.h"
#include "util/digest.h"
#include "util/json.h"
#include "util/strv.h"

#define CONTENT_PATH(m) "/containerd.services.content.v1.Content/" m
#define LEASES_PATH(m) "/containerd.services.leases.v1.Leases/" m
#define MAX_DEPTH 8
#define MAX_CHILDREN 4096

typedef Containerd__Types__Descriptor Descriptor;

typedef Containerd__Services__Content__V1__WriteContentRequest WriteReq;
typedef Containerd__Services__Content__V1__WriteContentResponse WriteResp;
typedef Containerd__Services__Content__V1__WriteContentRequest__LabelsEntry WriteLabel;

static void lease_set_md(struct cli_lease *l)
{
        l->md[0].key = "containerd-lease";
        l->md[0].value = l->id;
        l->md[1].key = NULL;
        l->md[1].value = NULL;
}

int cli_lease_create(struct grpc_client *c, const char *id, char *const *labels, struct cli_lease *ret,
                     struct error **err)
{
        typedef Containerd__Services__Leases__V1__CreateRequest__LabelsEntry Entry;
        ProtobufCMessage *resp = NULL;
        _cleanup_free_ char *gen = NULL;
        _cleanup_free_ char *expire = NULL;

        memset(ret, 0, sizeof(*ret));
        if (!id) {
                /* the containerd client's lease ids are "<nanoseconds>-<4 random base64url chars>", but a trailing '-'
                 * or
                 * '_' fails the daemon's identifier check (ctr itself hits that now and then): alphanumerics only */
                static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789Aa";
                struct timespec ts;
                unsigned char rnd[3] = {0};
                clock_gettime(CLOCK_REALTIME, &ts);
                if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
                        memcpy(rnd, &ts.tv_nsec, sizeof(rnd));
                uint32_t v = (uint32_t)rnd[0] << 16 | (uint32_t)rnd[1] << 8 | rnd[2];
                gen = xasprintf("%ld-%c%c%c%c", ts.tv_nsec, b64[(v >> 18) & 63], b64[(v >> 12) & 63],
                                b64[(v >> 6) & 63], b64[v & 63]);
                id = gen;
        }
        size_t n = 0;
        while (labels && labels[2 * n])
                n++;
        _cleanup_free_ Entry *entries = xcalloc(n + 1, sizeof(*entries));
        _cleanup_free_ Entry **ptrs = xcalloc(n + 1, sizeof(*ptrs));
        for (size_t i = 0; i < n; i++) {
                containerd__services__leases__v1__create_request__labels_entry__init(&entries[i]);
                entries[i].key = labels[2 * i];
                entries[i].value = labels[2 * i + 1];
                ptrs[i] = &entries[i];
        }
        Containerd__Services__Leases__V1__CreateRequest req = CONTAINERD__SERVICES__LEASES__V1__CREATE_REQUEST__INIT;
        req.id = (char *)id;
        req.n_labels = n;
        req.labels = ptrs;
        int r = grpc_client_unary(c, LEASES_PATH("Create"), NULL, &req.base,
                                  &containerd__services__leases__v1__create_response__descriptor, &resp, err);
        if (r < 0)
                return r;
        Containerd__Services__Leases__V1__CreateResponse *cr = (void *)resp;
        ret->id = xstrdup(cr->lease && cr->lease->id && cr->lease->id[0] ? cr->lease->id : id);
        protobuf_c_message_free_unpacked(resp, NULL);
        lease_set_md(ret);
        return 0;
}

int cli_lease_create_temporary(struct grpc_client *c, struct cli_lease *ret, struct error **err)
{
        time_t t = time(NULL) + 24 * 3600;
        struct tm tm;
        char buf[64];
        gmtime_r(&t, &tm);
        strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
        char *labels[] = {(char *)"containerd.io/gc.expire", buf, NULL};
        return cli_lease_create(c, NULL, labels, ret, err);
}

void cli_lease_done(struct cli_lease *l)
{
        free(l->id);
        memset(l, 0, sizeof(*l));
}

int cli_lease_delete(struct grpc_client *c, struct cli_lease *l, bool sync, struct error **err)
{
        ProtobufCMessage *resp = NULL;
        if (!l->id)
                return 0;
        Containerd__Services__Leases__V1__DeleteRequest req = CONTAINERD__SERVICES__LEASES__V1__DELETE_REQUEST__INIT;
        req.id = l->id;
        req.sync = sync;
        int r = grpc_client_unary(c, LEASES_PATH("Delete"), NULL, &req.base, &google__protobuf__empty__descriptor,
                                  &resp, err);
        if (resp)
                protobuf_c_message_free_unpacked(resp, NULL);
        cli_lease_done(l);
        return r < 0 ? r : 0;
}

const struct grpc_metadata *cli_lease_md(const struct cli_lease *l)
{
        return l && l->id ? l->md : NULL;
}

/* WRITE messages sent before waiting for their replies: the stream keeps moving while krilld writes and
 * hashes (ctr waits for every reply, one round trip per MiB); krilld queues at most 64 MiB per stream. */
#define WRITE_INFLIGHT 8

struct cli_content_writer {
        struct grpc_stream *s;
        struct digester *d; /* NULL for a resumed ingest: krilld verifies at COMMIT */
        int64_t offset;     /* bytes sent */
        int64_t total;
        size_t buf_len;
        unsigned char *buf;
        bool exists;        /* the server already has the blob */
        bool restart;       /* the next WRITE goes at offset 0 (truncates the ingest) */
        int64_t acked[WRITE_INFLIGHT + 1]; /* offsets the replies in flight must report, oldest first */
        unsigned inflight, head;
};

/* Receives the reply of the oldest WRITE in flight and checks its offset. */
static int writer_reap(struct cli_content_writer *w, struct error **err)
{
        ProtobufCMessage *m = NULL;
        int r = grpc_stream_recv(w->s, 0, &m, err);
        if (r < 0)
                return r;
        if (r == 0)
                return error_set(err, EPROTO, "content write: stream ended early");
        int64_t want = w->acked[w->head];
        int64_t off = ((WriteResp *)m)->offset;
        protobuf_c_message_free_unpacked(m, NULL);
        w->head = (w->head + 1) % (WRITE_INFLIGHT + 1);
        w->inflight--;
        if (off != want)
                return error_set(err, EPROTO, "content write: server at offset %lld, expected %lld", (long long)off,
                                 (long long)want);
        return 0;
}

static int writer_drain(struct cli_content_writer *w, struct error **err)
{
        while (w->inflight > 0) {
                int r = writer_reap(w, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Sends one request and waits for its reply (after the replies of the WRITEs in flight). */
static int writer_roundtrip(struct cli_content_writer *w, const WriteReq *req, WriteResp **ret, struct error **err)
{
        ProtobufCMessage *m = NULL;
        int r = grpc_stream_send(w->s, &req->base, err);
        if (r < 0)
                return r;
        r = writer_drain(w, err);
        if (r < 0)
                return r;
        r = grpc_stream_recv(w->s, 0, &m, err);
        if (r < 0)
                return r;
        if (r == 0)
                return error_set(err, EPROTO, "content write: stream ended early");
        if (ret)
                *ret = (WriteResp *)m;
        else
                protobuf_c_message_free_unpacked(m, NULL);
        return 0;
}

int cli_content_writer_open(struct grpc_client *c, const struct grpc_metadata *md, const char *ref, int64_t total,
                            const char *expected, struct cli_content_writer **ret, struct error **err)
{
        struct cli_content_writer *w = xcalloc(1, sizeof(*w));
        w->total = total;
        w->d = digester_new();
        int r =
            grpc_client_stream_open(c, CONTENT_PATH("Write"), md,
                                    &containerd__services__content__v1__write_content_response__descriptor, &w->s, err);
        if (r < 0) {
                cli_content_writer_free(w);
                return r;
        }
        WriteReq req = CONTAINERD__SERVICES__CONTENT__V1__WRITE_CONTENT_REQUEST__INIT;
        req.action = CONTAINERD__SERVICES__CONTENT__V1__WRITE_ACTION__STAT;
        req.ref = (char *)ref;
        req.total = total;
        req.expected = (char *)(expected ? expected : "");
        WriteResp *resp = NULL;
        r = writer_roundtrip(w, &req, &resp, err);
        if (r == -EEXIST) {
                /* containerd answers the STAT itself with AlreadyExists when expected is present */
                error_free(err);
                w->exists = true;
                *ret = w;
                return 0;
        }
        if (r < 0) {
                cli_content_writer_free(w);
                return r;
        }
        if (resp->offset != 0) {
                /* a resumable ingest: we restart from scratch, so the offset must be 0; truncate by aborting */
                protobuf_c_message_free_unpacked(&resp->base, NULL);
                cli_content_writer_free(w);
                Containerd__Services__Content__V1__AbortRequest ab =
                    CONTAINERD__SERVICES__CONTENT__V1__ABORT_REQUEST__INIT;
                ProtobufCMessage *ar = NULL;
                ab.ref = (char *)ref;
                r = grpc_client_unary(c, CONTENT_PATH("Abort"), md, &ab.base, &google__protobuf__empty__descriptor, &ar,
                                      err);
                if (ar)
                        protobuf_c_message_free_unpacked(ar, NULL);
                if (r < 0)
                        return r;
                return cli_content_writer_open(c, md, ref, total, expected, ret, err);
        }
        protobuf_c_message_free_unpacked(&resp->base, NULL);
        w->buf = xmalloc(CLI_CONTENT_CHUNK);
        *ret = w;
        return 0;
}

static int writer_flush(struct cli_content_writer *w, struct error **err)
{
        if (w->buf_len == 0)
                return 0;
        WriteReq req = CONTAINERD__SERVICES__CONTENT__V1__WRITE_CONTENT_REQUEST__INIT;
        req.action = CONTAINERD__SERVICES__CONTENT__V1__WRITE_ACTION__WRITE;
        req.offset = w->restart ? 0 : w->offset;
        req.data.data = w->buf;
        req.data.len = w->buf_len;
        int r = grpc_stream_send(w->s, &req.base, err);
        if (r < 0)
                return r;
        w->restart = false;
        w->offset += (int64_t)w->buf_len;
        w->buf_len = 0;
        w->acked[(w->head + w->inflight) % (WRITE_INFLIGHT + 1)] = w->offset;
        w->inflight++;
        if (w->inflight > WRITE_INFLIGHT)
                return writer_reap(w, err);
        return 0;
}

int cli_content_writer_write(struct cli_content_writer *w, const void *data, size_t len, struct error **err)
{
        const unsigned char *p = data;
        if (w->d)
                digester_update(w->d, data, len);
        if (w->exists)
                return 0;
        while (len > 0) {
                size_t n = CLI_CONTENT_CHUNK - w->buf_len;
                if (n > len)
                        n = len;
                memcpy(w->buf + w->buf_len, p, n);
                w->buf_len += n;
                p += n;
                len -= n;
                if (w->buf_len == CLI_CONTENT_CHUNK) {
                        int r = writer_flush(w, err);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

int cli_content_writer_commit(struct cli_content_writer *w, const char *expected, char *const *labels,
                              char **ret_digest, struct error **err)
{
        _cleanup_free_ char *dg = w->d ? digester_digest(w->d) : xstrdup(expected ? expected : "");
        int64_t size = w->d ? (int64_t)digester_size(w->d) : w->offset + (int64_t)w->buf_len;
        int r;

        if (!w->d && !expected)
                return error_set(err, EINVAL, "content write: a resumed ingest needs the expected digest");
        if (expected && !digest_equal(expected, dg))
                return error_set(err, EINVAL, "unexpected commit digest %s, expected %s", dg, expected);
        if (w->total > 0 && size != w->total)
                return error_set(err, EINVAL, "unexpected commit size %lld, expected %lld", (long long)size,
                                 (long long)w->total);
        if (!w->exists) {
                r = writer_flush(w, err);
                if (r < 0)
                        return r;
                size_t n = 0;
                while (labels && labels[2 * n])
                        n++;
                _cleanup_free_ WriteLabel *entries = xcalloc(n + 1, sizeof(*entries));
                _cleanup_free_ WriteLabel **ptrs = xcalloc(n + 1, sizeof(*ptrs));
                for (size_t i = 0; i < n; i++) {
                        containerd__services__content__v1__write_content_request__labels_entry__init(&entries[i]);
                        entries[i].key = labels[2 * i];
                        entries[i].value = labels[2 * i + 1];
                        ptrs[i] = &entries[i];
                }
                WriteReq req = CONTAINERD__SERVICES__CONTENT__V1__WRITE_CONTENT_REQUEST__INIT;
                req.action = CONTAINERD__SERVICES__CONTENT__V1__WRITE_ACTION__COMMIT;
                req.total = size;
                req.offset = w->offset;
                req.expected = dg;
                req.n_labels = n;
                req.labels = ptrs;
                r = writer_roundtrip(w, &req, NULL, err);
                if (r == -EEXIST) {
                        error_free(err);
                        r = 0;
                }
                if (r < 0)
                        return r;
        }
        if (ret_digest)
                *ret_digest = TAKE_PTR(dg);
        return 0;
}

int cli_content_writer_resume(struct grpc_client *c, const struct grpc_metadata *md, const char *ref, int64_t total,
                              const char *expected, struct cli_content_writer **ret, int64_t *ret_offset,
                              struct error **err)
{
        struct cli_content_writer *w = xcalloc(1, sizeof(*w));
        w->total = total;
        int r =
            grpc_client_stream_open(c, CONTENT_PATH("Write"), md,
                                    &containerd__services__content__v1__write_content_response__descriptor, &w->s, err);
        if (r < 0) {
                cli_content_writer_free(w);
                return r;
        }
        WriteReq req = CONTAINERD__SERVICES__CONTENT__V1__WRITE_CONTENT_REQUEST__INIT;
        req.action = CONTAINERD__SERVICES__CONTENT__V1__WRITE_ACTION__STAT;
        req.ref = (char *)ref;
        req.total = total;
        req.expected = (char *)expected;
        WriteResp *resp = NULL;
        r = writer_roundtrip(w, &req, &resp, err);
        if (r < 0) {
                cli_content_writer_free(w);
                return r;
        }
        w->offset = resp->offset;
        protobuf_c_message_free_unpacked(&resp->base, NULL);
        if (w->offset < 0 || (total > 0 && w->offset > total)) {
                /* not this blob's ingest: start over */
                w->offset = 0;
                w->restart = true;
        }
        w->buf = xmalloc(CLI_CONTENT_CHUNK);
        *ret_offset = w->offset;
        *ret = w;
        return 0;
}

int cli_content_writer_truncate(struct cli_content_writer *w, struct error **err)
{
        int r = writer_drain(w, err);
        if (r < 0)
                return r;
        w->buf_len = 0;
        w->offset = 0;
        w->restart = true;
        if (w->d) {
                digester_free(w->d);
                w->d = digester_new();
        }
        return 0;
}

int64_t cli_content_writer_offset(const struct cli_content_writer *w)
{
        return w->offset + (int64_t)w->buf_len;
}

void cli_content_writer_free(struct cli_content_writer *w)
{
        if (!w)
                return;
        if (w->s)
                grpc_stream_free(w->s);
        digester_free(w->d);
        free(w->buf);
        free(w);
}

int cli_content_write_blob(struct grpc_client *c, const struct grpc_metadata *md, const char *ref, const void *data,
                           size_t len, char **ret_digest, struct error **err)
{
        struct cli_content_writer *w = NULL;
        _cleanup_free_ char *dg = digest_from_buf(data, len);
        int r = cli_content_writer_open(c, md, ref, (int64_t)len, dg, &w, err);
        if (r < 0)
                return r;
        r = cli_content_writer_write(w, data, len, err);
        if (r >= 0)
                r = cli_content_writer_commit(w, dg, NULL, NULL, err);
        cli_content_writer_free(w);
        if (r < 0)
                return r;
        if (ret_digest)
                *ret_digest = TAKE_PTR(dg);
        return 0;
}

int cli_content_read_sink(struct grpc_client *c, const struct grpc_metadata *md, const char *digest,
                          cli_content_sink_fn sink, void *ud, struct error **err)
{
        struct grpc_stream *s = NULL;
        Containerd__Services__Content__V1__ReadContentRequest req =
            CONTAINERD__SERVICES__CONTENT__V1__READ_CONTENT_REQUEST__INIT;
        req.digest = (char *)digest;
        int r = grpc_client_stream_open(c, CONTENT_PATH("Read"), md,
                                        &containerd__services__content__v1__read_content_response__descriptor, &s, err);
        if (r < 0)
                return r;
        r = grpc_stream_send(s, &req.base, err);
        if (r >= 0)
                r = grpc_stream_close_send(s, err);
        while (r >= 0) {
                ProtobufCMessage *m = NULL;
                r = grpc_stream_recv(s, 0, &m, err);
                if (r <= 0)
                        break;
                Containerd__Services__Content__V1__ReadContentResponse *rr = (void *)m;
                r = sink(ud, rr->data.data, rr->data.len, err);
                protobuf_c_message_free_unpacked(m, NULL);
        }
        grpc_stream_free(s);
        return r < 0 ? r : 0;
}

struct mem_sink {
        char *buf;
        size_t len, max;
        const char *digest;
};

static int mem_sink_fn(void *ud, const void *data, size_t len, struct error **err)
{
        struct mem_sink *m = ud;
        if (len > m->max - m->len)
                return error_set(err, EFBIG, "blob %s is larger than %zu bytes", m->digest, m->max);
        m->buf = xrealloc(m->buf, m->len + len + 1);
        memcpy(m->buf + m->len, data, len);
        m->len += len;
        return 0;
}

int cli_content_read_all(struct grpc_client *c, const struct grpc_metadata *md, const char *digest, size_t max,
                         char **ret, size_t *ret_len, struct error **err)
{
        struct mem_sink m = {.max = max, .digest = digest};
        int r = cli_content_read_sink(c, md, digest, mem_sink_fn, &m, err);
        if (r < 0) {
                free(m.buf);
                return r;
        }
        if (!m.buf)
                m.buf = xmalloc(1);
        m.buf[m.len] = '\0';
        *ret = m.buf;
        if (ret_len)
                *ret_len = m.len;
        return 0;
}

static int fd_sink_fn(void *ud, const void *data, size_t len, struct error **err)
{
        int fd = *(int *)ud;
        const char *p = data;
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return error_set(err, errno, "write");
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

int cli_content_read_to_fd(struct grpc_client *c, const struct grpc_metadata *md, const char *digest, int fd,
                           struct error **err)
{
        return cli_content_read_sink(c, md, digest, fd_sink_fn, &fd, err);
}

int cli_content_info(struct grpc_client *c, const struct grpc_metadata *md, const char *digest, int64_t *ret_size,
                     char ***ret_labels, struct error **err)
{
        ProtobufCMessage *resp = NULL;
        Containerd__Services__Content__V1__InfoRequest req = CONTAINERD__SERVICES__CONTENT__V1__INFO_REQUEST__INIT;
        req.digest = (char *)digest;
        int r = grpc_client_unary(c, CONTENT_PATH("Info"), md, &req.base,
                                  &containerd__services__content__v1__info_response__descriptor, &resp, err);
        if (r < 0)
                return r;
        Containerd__Services__Content__V1__InfoResponse *ir = (void *)resp;
        if (ret_size)
                *ret_size = ir->info ? ir->info->size : 0;
        if (ret_labels) {
                char **l = xcalloc(1, sizeof(char *));
                size_t n = 0;
                for (size_t i = 0; ir->info && i < ir->info->n_labels; i++) {
                        l = xrealloc(l, (n + 3) * sizeof(char *));
                        l[n++] = xstrdup(ir->info->labels[i]->key);
                        l[n++] = xstrdup(ir->info->labels[i]->value);
                        l[n] = NULL;
                }
                *ret_labels = l;
        }
        protobuf_c_message_free_unpacked(resp, NULL);
        return 0;
}

int cli_content_set_labels(struct grpc_client *c, const struct grpc_metadata *md, const char *digest,
                           char *const *labels, struct error **err)
{
        typedef Containerd__Services__Content__V1__Info__LabelsEntry Entry;
        ProtobufCMessage *resp = NULL;
        size_t n = 0;
        while (labels && labels[2 * n])
                n++;
        _cleanup_free_ Entry *entries = xcalloc(n + 1, sizeof(*entries));
        _cleanup_free_ Entry **ptrs = xcalloc(n + 1, sizeof(*ptrs));
        _cleanup_free_ char **paths = xcalloc(n + 1, sizeof(char *));
        size_t np = 0;
        for (size_t i = 0; i < n; i++) {
                containerd__services__content__v1__info__labels_entry__init(&entries[np]);
                paths[i] = xasprintf("labels.%s", labels[2 * i]);
                if (labels[2 * i + 1][0] == '\0')
                        continue; /* clearing: in the mask, absent from the map */
                entries[np].key = labels[2 * i];
                entries[np].value = labels[2 * i + 1];
                ptrs[np] = &entries[np];
                np++;
        }
        Containerd__Services__Content__V1__Info info = CONTAINERD__SERVICES__CONTENT__V1__INFO__INIT;
        info.digest = (char *)digest;
        info.n_labels = np;
        info.labels = ptrs;
        Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
        mask.n_paths = n;
        mask.paths = paths;
        Containerd__Services__Content__V1__UpdateRequest req = CONTAINERD__SERVICES__CONTENT__V1__UPDATE_REQUEST__INIT;
        req.info = &info;
        req.update_mask = &mask;
        int r = grpc_client_unary(c, CONTENT_PATH("Update"), md, &req.base,
                                  &containerd__services__content__v1__update_response__descriptor, &resp, err);
        for (size_t i = 0; i < n; i++)
                free(paths[i]);
        if (r < 0)
                return r;
        protobuf_c_message_free_unpacked(resp, NULL);
        return 0;
}

/* --- descriptors and manifest walking (shared by the image commands) --- */

void cli_desc_clear(struct cli_desc *d)
{
        free(d->media_type);
        free(d->digest);
        image_platform_clear(&d->platform);
        strv_free(d->annotations);
        memset(d, 0, sizeof(*d));
}

void cli_descs_free(struct cli_desc *v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                cli_desc_clear(&v[i]);
        free(v);
}

int cli_desc_from_json(const json_t *j, struct cli_desc *ret, struct error **err)
{
        const char *mt = json_string_value(json_object_get(j, "mediaType"));
        const char *dg = json_string_value(json_object_get(j, "digest"));
        json_t *sz = json_object_get(j, "size");
        if (!dg || digest_validate(dg, NULL) < 0)
                return error_set(err, EINVAL, "invalid descriptor digest");
        if (!json_is_integer(sz) || json_integer_value(sz) < 0)
                return error_set(err, EINVAL, "invalid size in descriptor %s", dg);
        memset(ret, 0, sizeof(*ret));
        ret->media_type = xstrdup(mt ? mt : "");
        ret->digest = xstrdup(dg);
        ret->size = json_integer_value(sz);
        json_t *p = json_object_get(j, "platform");
        if (json_is_object(p)) {
                const char *os = json_string_value(json_object_get(p, "os"));
                const char *arch = json_string_value(json_object_get(p, "architecture"));
                const char *var = json_string_value(json_object_get(p, "variant"));
                ret->has_platform = true;
                ret->platform.os = xstrdup(os ? os : "");
                ret->platform.arch = xstrdup(arch ? arch : "");
                ret->platform.variant = var ? xstrdup(var) : NULL;
        }
        json_t *ann = json_object_get(j, "annotations");
        const char *k;
        json_t *v;
        json_object_foreach(ann, k, v)
        {
                if (json_is_string(v)) {
                        strv_extend(&ret->annotations, k);
                        strv_extend(&ret->annotations, json_string_value(v));
                }
        }
        return 0;
}

const char *cli_desc_annotation(const struct cli_desc *d, const char *key)
{
        for (size_t i = 0; d->annotations && d->annotations[i]; i += 2)
                if (strcmp(d->annotations[i], key) == 0)
                        return d->annotations[i + 1];
        return NULL;
}

bool cli_mt_is_index(const char *mt)
{
        return strcmp(mt, CLI_MT_OCI_INDEX) == 0 || strcmp(mt, CLI_MT_DOCKER_LIST) == 0;
}

bool cli_mt_is_manifest(const char *mt)
{
        return strcmp(mt, CLI_MT_OCI_MANIFEST) == 0 || strcmp(mt, CLI_MT_DOCKER_MANIFEST) == 0;
}

bool cli_mt_is_config(const char *mt)
{
        return strcmp(mt, CLI_MT_OCI_CONFIG) == 0 || strcmp(mt, CLI_MT_DOCKER_CONFIG) == 0;
}

int cli_content_read_json(struct grpc_client *c, const struct grpc_metadata *md, const char *digest, json_t **ret,
                          struct error **err)
{
        _cleanup_free_ char *buf = NULL;
        size_t len;
        int r = cli_content_read_all(c, md, digest, CLI_MAX_MANIFEST, &buf, &len, err);
        if (r < 0)
                return r;
        return json_load_bounded(buf, len, CLI_MAX_MANIFEST, 64, ret, err);
}

/* The children of an index or manifest (images.Children): manifests of an index; config then layers of a
 * manifest; nothing for anything else. */
int cli_desc_children(struct grpc_client *c, const struct grpc_metadata *md, const struct cli_desc *d,
                      struct cli_desc **ret, size_t *ret_n, struct error **err)
{
        *ret = NULL;
        *ret_n = 0;
        if (!cli_mt_is_index(d->media_type) && !cli_mt_is_manifest(d->media_type))
                return 0;
        _cleanup_json_ json_t *j = NULL;
        int r = cli_content_read_json(c, md, d->digest, &j, err);
        if (r < 0)
                return r;
        json_t *list[2] = {NULL, NULL};
        json_t *cfg = NULL;
        if (cli_mt_is_index(d->media_type)) {
                list[0] = json_object_get(j, "manifests");
        } else {
                cfg = json_object_get(j, "config");
                list[0] = json_object_get(j, "layers");
        }
        size_t total = (cfg ? 1 : 0) + json_array_size(list[0]);
        if (total > MAX_CHILDREN)
                return error_set(err, E2BIG, "%s: too many children", d->digest);
        struct cli_desc *v = xcalloc(total + 1, sizeof(*v));
        size_t n = 0;
        if (cfg) {
                r = cli_desc_from_json(cfg, &v[n], err);
                if (r < 0)
                        goto fail;
                n++;
        }
        size_t i;
        json_t *e;
        json_array_foreach(list[0], i, e)
        {
                r = cli_desc_from_json(e, &v[n], err);
                if (r < 0)
                        goto fail;
                n++;
        }
        *ret = v;
        *ret_n = n;
        return 0;
fail:
        cli_descs_free(v, n);
        return error_wrap(err, "%s", d->digest);
}

struct cli_desc cli_desc_from_proto(const Descriptor *p)
{
        struct cli_desc d = {0};
        d.media_type = xstrdup(p->media_type ? p->media_type : "");
        d.digest = xstrdup(p->digest ? p->digest : "");
        d.size = p->size;
        for (size_t i = 0; i < p->n_annotations; i++) {
                strv_extend(&d.annotations, p->annotations[i]->key);
                strv_extend(&d.annotations, p->annotations[i]->value);
        }
        return d;
}

/* The platform of a manifest from its config (images.Platforms for a manifest without platform). */
int cli_config_platform(struct grpc_client *c, const struct grpc_metadata *md, const struct cli_desc *cfg,
                        struct image_platform *ret, struct error **err)
{
        _cleanup_json_ json_t *j = NULL;
        int r = cli_content_read_json(c, md, cfg->digest, &j, err);
        if (r < 0)
                return r;
        const char *os = json_string_value(json_object_get(j, "os"));
        const char *arch = json_string_value(json_object_get(j, "architecture"));
        ret->os = xstrdup(os ? os : "");
        ret->arch = xstrdup(arch ? arch : "");
        ret->variant = NULL;
        image_platform_normalize(ret);
        return 0;
}

/* Resolves the manifest for the matcher (images.Manifest): in an index, the best-ranked match (a descriptor
 * without platform takes its config's). */
int cli_resolve_manifest(struct grpc_client *c, const struct grpc_metadata *md, const struct image_platform_matcher *m,
                         const struct cli_desc *target, int depth, struct cli_desc *ret, struct error **err)
{
        if (depth > MAX_DEPTH)
                return error_set(err, ELOOP, "%s: index nesting too deep", target->digest);
        if (cli_mt_is_manifest(target->media_type)) {
                *ret = cli_desc_from_proto(
                    &(Descriptor){.media_type = target->media_type, .digest = target->digest, .size = target->size});
                return 0;
        }
        if (!cli_mt_is_index(target->media_type))
                return error_set(err, EINVAL, "unexpected media type %s for %s", target->media_type, target->digest);
        struct cli_desc *ch = NULL;
        size_t n = 0;
        int r = cli_desc_children(c, md, target, &ch, &n, err);
        if (r < 0)
                return r;
        int best = -1, best_rank = 0;
        struct cli_desc found = {0};
        for (size_t i = 0; i < n; i++) {
                int rank;
                if (ch[i].has_platform) {
                        rank = image_platform_rank(m, &ch[i].platform);
                } else if (cli_mt_is_manifest(ch[i].media_type)) {
                        rank = 0; /* resolved below through its config */
                        struct cli_desc *mc = NULL;
                        size_t mn = 0;
                        struct image_platform p = {0};
                        if (cli_desc_children(c, md, &ch[i], &mc, &mn, NULL) == 0 && mn > 0 &&
                            cli_config_platform(c, md, &mc[0], &p, NULL) == 0)
                                rank = image_platform_rank(m, &p);
                        image_platform_clear(&p);
                        cli_descs_free(mc, mn);
                } else {
                        rank = 0;
                }
                if (rank < 0)
                        continue;
                if (best < 0 || rank < best_rank) {
                        best = (int)i;
                        best_rank = rank;
                }
        }
        if (best < 0) {
                cli_descs_free(ch, n);
                return error_set(err, ENOENT, "manifest %s: no match for platform in manifest", target->digest);
        }
        r = cli_resolve_manifest(c, md, m, &ch[best], depth + 1, &found, err);
        cli_descs_free(ch, n);
        if (r < 0)
                return r;
        *ret = found;
        return 0;
}

struct image_platform_matcher *cli_default_platform_matcher(void)
{
        struct image_platform p = {0};
        image_platform_default(&p);
        struct image_platform_matcher *m = image_platform_matcher_new_only(&p);
        image_platform_clear(&p);
        return m;
}

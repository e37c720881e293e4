/* images.v1 gRPC adapter: Get and List read inline (LMDB readers never block); Create, Update and Delete run
 * on the worker pool. */
#include <errno.h>
#include <string.h>

#include "github.com/containerd/containerd/api/services/images/v1/images.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "metadata/filters.h"
#include "metadata/images.h"
#include "services/content.h"
#include "services/images.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/log.h"

#define SVC "/containerd.services.images.v1.Images/"

typedef Containerd__Services__Images__V1__Image Image;
typedef Containerd__Services__Images__V1__Image__LabelsEntry ImageLabel;
typedef Containerd__Types__Descriptor Descriptor;
typedef Containerd__Types__Descriptor__AnnotationsEntry Annotation;
typedef Google__Protobuf__Timestamp Timestamp;

struct image_msg {
        Image m;
        Descriptor target;
        Timestamp created, updated;
        ImageLabel *labels;
        ImageLabel **lptrs;
        Annotation *annots;
        Annotation **aptrs;
};

static void ts_fill(Timestamp *ts, int64_t ns)
{
        google__protobuf__timestamp__init(ts);
        ts->seconds = ns / 1000000000LL;
        ts->nanos = (int32_t)(ns % 1000000000LL);
}

static void image_msg_fill(struct image_msg *im, const struct metadata_image *img)
{
        containerd__services__images__v1__image__init(&im->m);
        containerd__types__descriptor__init(&im->target);
        im->m.name = img->name;
        size_t n = metadata_labels_count(img->labels);
        im->labels = xcalloc(n + 1, sizeof(*im->labels));
        im->lptrs = xcalloc(n + 1, sizeof(*im->lptrs));
        for (size_t i = 0; i < n; i++) {
                containerd__services__images__v1__image__labels_entry__init(&im->labels[i]);
                im->labels[i].key = img->labels[2 * i];
                im->labels[i].value = img->labels[2 * i + 1];
                im->lptrs[i] = &im->labels[i];
        }
        im->m.n_labels = n;
        im->m.labels = im->lptrs;
        im->target.media_type = img->target.media_type ? img->target.media_type : "";
        im->target.digest = img->target.digest ? img->target.digest : "";
        im->target.size = img->target.size;
        size_t na = metadata_labels_count(img->target.annotations);
        im->annots = xcalloc(na + 1, sizeof(*im->annots));
        im->aptrs = xcalloc(na + 1, sizeof(*im->aptrs));
        for (size_t i = 0; i < na; i++) {
                containerd__types__descriptor__annotations_entry__init(&im->annots[i]);
                im->annots[i].key = img->target.annotations[2 * i];
                im->annots[i].value = img->target.annotations[2 * i + 1];
                im->aptrs[i] = &im->annots[i];
        }
        im->target.n_annotations = na;
        im->target.annotations = im->aptrs;
        im->m.target = &im->target;
        ts_fill(&im->created, img->created_at);
        ts_fill(&im->updated, img->updated_at);
        im->m.created_at = &im->created;
        im->m.updated_at = &im->updated;
}

static void image_msg_free(struct image_msg *im)
{
        free(im->labels);
        free(im->lptrs);
        free(im->annots);
        free(im->aptrs);
}

/* Copies a request image into a metadata record (new strings). */
static void image_from_msg(struct metadata_image *img, const Image *m)
{
        memset(img, 0, sizeof(*img));
        if (!m)
                return;
        img->name = xstrdup(m->name ? m->name : "");
        for (size_t i = 0; i < m->n_labels; i++)
                metadata_labels_set(&img->labels, m->labels[i]->key ? m->labels[i]->key : "",
                                    m->labels[i]->value ? m->labels[i]->value : "");
        if (m->target) {
                img->target.media_type = xstrdup(m->target->media_type);
                img->target.digest = xstrdup(m->target->digest);
                img->target.size = m->target->size;
                for (size_t i = 0; i < m->target->n_annotations; i++)
                        metadata_labels_set(&img->target.annotations,
                                            m->target->annotations[i]->key ? m->target->annotations[i]->key : "",
                                            m->target->annotations[i]->value ? m->target->annotations[i]->value : "");
        }
}

static void on_get(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Images__V1__GetImageRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        _cleanup_error_ struct error *err = NULL;
        struct metadata_image img = {0};
        const char *ns;
        if (!services_call_db_ns(call, ctx, &ns))
                return;
        int r = metadata_image_get(ctx->db, ns, in->name ? in->name : "", &img, &err);
        if (r < 0) {
                grpc_call_fail(call, r, err);
                return;
        }
        struct image_msg im;
        image_msg_fill(&im, &img);
        Containerd__Services__Images__V1__GetImageResponse resp =
            CONTAINERD__SERVICES__IMAGES__V1__GET_IMAGE_RESPONSE__INIT;
        resp.image = &im.m;
        grpc_call_reply(call, &resp.base);
        image_msg_free(&im);
        metadata_image_clear(&img);
}

static void on_list(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Images__V1__ListImagesRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        _cleanup_error_ struct error *err = NULL;
        _cleanup_(filter_freep) struct filter *f = NULL;
        struct metadata_image *list = NULL;
        size_t n = 0;
        const char *ns;
        if (!services_call_db_ns(call, ctx, &ns))
                return;
        int r = filter_parse(in->filters, in->n_filters, &f, &err);
        if (r == 0)
                r = metadata_image_list(ctx->db, ns, f, &list, &n, &err);
        if (r < 0) {
                grpc_call_fail(call, r, err);
                return;
        }
        _cleanup_free_ struct image_msg *ims = xcalloc(n + 1, sizeof(*ims));
        _cleanup_free_ Image **ptrs = xcalloc(n + 1, sizeof(*ptrs));
        for (size_t i = 0; i < n; i++) {
                image_msg_fill(&ims[i], &list[i]);
                ptrs[i] = &ims[i].m;
        }
        Containerd__Services__Images__V1__ListImagesResponse resp =
            CONTAINERD__SERVICES__IMAGES__V1__LIST_IMAGES_RESPONSE__INIT;
        resp.n_images = n;
        resp.images = ptrs;
        grpc_call_reply(call, &resp.base);
        for (size_t i = 0; i < n; i++)
                image_msg_free(&ims[i]);
        metadata_image_list_free(list, n);
}

enum op { OP_CREATE, OP_UPDATE, OP_DELETE };

struct job {
        struct services_job base;
        enum op op;
        struct metadata_image img; /* request, then result */
        char **paths;
        size_t npaths;
};

static void job_free(struct services_job *b)
{
        struct job *j = (struct job *)b;
        metadata_image_clear(&j->img);
        strv_free(j->paths);
        free(j);
}

static void job_run(struct services_job *b)
{
        struct job *j = (struct job *)b;
        struct metadata_db *db = b->ctx->db;
        struct metadata_image out = {0};
        switch (j->op) {
        case OP_CREATE:
                b->r = metadata_image_create(db, b->ns, &j->img, &out, &b->err);
                break;
        case OP_UPDATE:
                b->r = metadata_image_update(db, b->ns, &j->img, j->paths, j->npaths, &out, &b->err);
                break;
        case OP_DELETE:
                b->r = metadata_image_delete(db, b->ns, j->img.name, &b->err);
                return;
        }
        if (b->r == 0) {
                metadata_image_clear(&j->img);
                j->img = out;
        }
}

static int job_publish(struct services_job *b, struct error **err)
{
        struct job *j = (struct job *)b;
        static const char *const topics[] = {"/images/create", "/images/update", "/images/delete"};
        (void)err;
        services_images_publish(b->ctx, b->ns, topics[j->op], j->img.name, j->img.labels);
        return 0;
}

static void job_reply(struct services_job *b)
{
        struct job *j = (struct job *)b;
        struct image_msg im;
        image_msg_fill(&im, &j->img);
        if (j->op == OP_CREATE) {
                Containerd__Services__Images__V1__CreateImageResponse resp =
                    CONTAINERD__SERVICES__IMAGES__V1__CREATE_IMAGE_RESPONSE__INIT;
                resp.image = &im.m;
                grpc_call_reply(b->call, &resp.base);
        } else {
                Containerd__Services__Images__V1__UpdateImageResponse resp =
                    CONTAINERD__SERVICES__IMAGES__V1__UPDATE_IMAGE_RESPONSE__INIT;
                resp.image = &im.m;
                grpc_call_reply(b->call, &resp.base);
        }
        image_msg_free(&im);
}

static struct job *job_new(enum op op)
{
        struct job *j = xcalloc(1, sizeof(*j));
        j->op = op;
        j->base.run = job_run;
        j->base.publish = job_publish;
        j->base.reply = op == OP_DELETE ? NULL : job_reply;
        j->base.free = job_free;
        j->base.collect = op == OP_DELETE;
        return j;
}

static void on_create(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Images__V1__CreateImageRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        const char *ns;
        if (!services_call_db_ns(call, ctx, &ns))
                return;
        struct job *j = job_new(OP_CREATE);
        image_from_msg(&j->img, in->image);
        services_job_start(&j->base, call, ctx, ns);
}

static void on_update(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Images__V1__UpdateImageRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        const char *ns;
        if (!services_call_db_ns(call, ctx, &ns))
                return;
        struct job *j = job_new(OP_UPDATE);
        image_from_msg(&j->img, in->image);
        if (in->update_mask && in->update_mask->n_paths) {
                j->npaths = in->update_mask->n_paths;
                j->paths = xcalloc(j->npaths + 1, sizeof(char *));
                for (size_t i = 0; i < j->npaths; i++)
                        j->paths[i] = xstrdup(in->update_mask->paths[i]);
        }
        services_job_start(&j->base, call, ctx, ns);
}

static void on_delete(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Images__V1__DeleteImageRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        const char *ns;
        if (!services_call_db_ns(call, ctx, &ns))
                return;
        struct job *j = job_new(OP_DELETE);
        j->img.name = xstrdup(in->name ? in->name : "");
        j->base.sync = in->sync;
        services_job_start(&j->base, call, ctx, ns);
}

void services_images_register(struct grpc_server *s, struct services_ctx *ctx)
{
        const struct grpc_method methods[] = {
            {SVC "Get", GRPC_METHOD_UNARY, &containerd__services__images__v1__get_image_request__descriptor, on_get,
             NULL, ctx},
            {SVC "List", GRPC_METHOD_UNARY, &containerd__services__images__v1__list_images_request__descriptor, on_list,
             NULL, ctx},
            {SVC "Create", GRPC_METHOD_UNARY, &containerd__services__images__v1__create_image_request__descriptor,
             on_create, NULL, ctx},
            {SVC "Update", GRPC_METHOD_UNARY, &containerd__services__images__v1__update_image_request__descriptor,
             on_update, NULL, ctx},
            {SVC "Delete", GRPC_METHOD_UNARY, &containerd__services__images__v1__delete_image_request__descriptor,
             on_delete, NULL, ctx},
        };
        for (size_t i = 0; i < ELEMENTSOF(methods); i++)
                if (grpc_server_add_method(s, &methods[i]) < 0)
                        log_warn("images: method %s registered twice", methods[i].path);
}

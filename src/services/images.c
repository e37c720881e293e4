/* images.v1 logic shared with CRI: event publishing. */
#include "services/images.h"

#include <string.h>

#include "events/exchange.h"
#include "github.com/containerd/containerd/api/events/image.pb-c.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/log.h"

typedef Containerd__Services__Images__V1__ImageCreate__LabelsEntry CreateLabel;
typedef Containerd__Services__Images__V1__ImageUpdate__LabelsEntry UpdateLabel;

void services_images_publish(struct services_ctx *ctx, const char *ns, const char *topic, const char *name,
                             char *const *labels)
{
        _cleanup_error_ struct error *e = NULL;
        size_t n = metadata_labels_count(labels);
        int r;
        if (!ctx->events)
                return;
        if (strcmp(topic, "/images/create") == 0) {
                _cleanup_free_ CreateLabel *ent = xcalloc(n + 1, sizeof(*ent));
                _cleanup_free_ CreateLabel **ptr = xcalloc(n + 1, sizeof(*ptr));
                Containerd__Services__Images__V1__ImageCreate ev = CONTAINERD__SERVICES__IMAGES__V1__IMAGE_CREATE__INIT;
                for (size_t i = 0; i < n; i++) {
                        containerd__services__images__v1__image_create__labels_entry__init(&ent[i]);
                        ent[i].key = labels[2 * i];
                        ent[i].value = labels[2 * i + 1];
                        ptr[i] = &ent[i];
                }
                ev.name = (char *)name;
                ev.n_labels = n;
                ev.labels = ptr;
                r = events_publish(ctx->events, ns, topic, &ev.base, &e);
        } else if (strcmp(topic, "/images/update") == 0) {
                _cleanup_free_ UpdateLabel *ent = xcalloc(n + 1, sizeof(*ent));
                _cleanup_free_ UpdateLabel **ptr = xcalloc(n + 1, sizeof(*ptr));
                Containerd__Services__Images__V1__ImageUpdate ev = CONTAINERD__SERVICES__IMAGES__V1__IMAGE_UPDATE__INIT;
                for (size_t i = 0; i < n; i++) {
                        containerd__services__images__v1__image_update__labels_entry__init(&ent[i]);
                        ent[i].key = labels[2 * i];
                        ent[i].value = labels[2 * i + 1];
                        ptr[i] = &ent[i];
                }
                ev.name = (char *)name;
                ev.n_labels = n;
                ev.labels = ptr;
                r = events_publish(ctx->events, ns, topic, &ev.base, &e);
        } else {
                Containerd__Services__Images__V1__ImageDelete ev = CONTAINERD__SERVICES__IMAGES__V1__IMAGE_DELETE__INIT;
                ev.name = (char *)name;
                r = events_publish(ctx->events, ns, topic, &ev.base, &e);
        }
        if (r < 0)
                log_warn("publish %s: %s", topic, error_str(e));
}

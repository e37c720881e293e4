/* events.v1 logic (containerd services/events/service.go): thin, the exchange does the work. */
#include <errno.h>

#include "services/events.h"

static int need_exchange(struct events_exchange *ex, struct error **err)
{
        if (!ex)
                return error_set(err, EAGAIN, "event exchange is not available");
        return 0;
}

int services_events_publish(struct events_exchange *ex, const char *ns,
                            const Containerd__Services__Events__V1__PublishRequest *req, struct error **err)
{
        int r = need_exchange(ex, err);

        if (r < 0)
                return r;
        /* typeurl.MarshalAny returns an Any unchanged, so the caller's Any is what subscribers see. */
        return events_publish_any(ex, ns, req->topic, req->event, err);
}

int services_events_forward(struct events_exchange *ex, const Containerd__Services__Events__V1__Envelope *env,
                            struct error **err)
{
        int r = need_exchange(ex, err);

        if (r < 0)
                return r;
        return events_forward(ex, env, err);
}

int services_events_forward_ttrpc(struct events_exchange *ex,
                                  const Containerd__Services__Events__Ttrpc__V1__Envelope *env, struct error **err)
{
        int r = need_exchange(ex, err);

        if (r < 0)
                return r;
        return events_forward_ttrpc(ex, env, err);
}

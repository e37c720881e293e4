/* The daemon's event exchange (containerd events/exchange): publishers and forwarders put Envelopes in, every
 * matching subscriber gets them out, in publish order, from the loop.
 *
 * Threading: everything runs on the loop thread the exchange was created with. Delivery is asynchronous: the
 * subscriber callbacks run from the loop after publish returns, never inside events_publish/events_forward.
 *
 * Backpressure: each subscription has a bounded queue (EVENTS_QUEUE_MAX envelopes or EVENTS_QUEUE_MAX_BYTES).
 * A subscriber that cannot take more (e.g. a gRPC stream whose peer does not read) pauses itself with
 * events_subscription_set_ready(false); while paused its envelopes queue up, and beyond the bound new ones are
 * dropped for that subscriber only, with a logged warning. The daemon never stalls on a slow subscriber.
 * (The bound also applies to a burst published within one loop iteration, before any delivery.) */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>
#include <uv.h>

#include "github.com/containerd/containerd/api/services/events/v1/events.pb-c.h"
#include "github.com/containerd/containerd/api/services/ttrpc/events/v1/events.pb-c.h"
#include "util/error.h"

#define EVENTS_QUEUE_MAX 1024
#define EVENTS_QUEUE_MAX_BYTES (16u << 20)

struct events_exchange;
struct events_subscription;

typedef Containerd__Services__Events__V1__Envelope events_envelope;

/* env is borrowed for the duration of the callback (copy or pack what must outlive it). The callback may call
 * events_subscription_free(sub) or events_subscription_set_ready(sub, false), and may publish. */
typedef void (*events_subscriber_fn)(struct events_subscription *sub, const events_envelope *env, void *userdata);

/* Never fails (allocation aborts). */
struct events_exchange *events_exchange_new(uv_loop_t *loop);
/* Drops queued envelopes and detaches every subscription (their callbacks are not called again; the handles
 * stay valid until events_subscription_free()). Not from inside a subscriber callback. The loop must run afterwards to
 * close the exchange's timer. NULL-safe. Returns NULL. */
struct events_exchange *events_exchange_free(struct events_exchange *ex);

/* Packs event into an Any whose type_url is the message's full name with no "type.googleapis.com/" prefix
 * (containerd's typeurl, e.g. "containerd.events.TaskCreate"), stamps the time (UTC) and queues it.
 * ns must be a valid identifier (missing: -EBUSY `namespace is required`, FailedPrecondition as containerd);
 * topic must start with '/' and every component be an identifier (-EINVAL `envelope topic "x": ...`). */
int events_publish(struct events_exchange *ex, const char *ns, const char *topic, const ProtobufCMessage *event,
                   struct error **err);
/* Same, with an already packed Any (events.v1 Publish carries one). The Any is copied. */
int events_publish_any(struct events_exchange *ex, const char *ns, const char *topic,
                       const Google__Protobuf__Any *event, struct error **err);
/* Forwards an envelope as is (events.v1 Forward, a shim's ttrpc Forward): namespace, topic and timestamp
 * are validated like containerd's validateEnvelope, then it is copied and queued. */
int events_forward(struct events_exchange *ex, const events_envelope *env, struct error **err);
int events_forward_ttrpc(struct events_exchange *ex, const Containerd__Services__Events__Ttrpc__V1__Envelope *env,
                         struct error **err);

/* Subscribes with containerd filter strings (OR between strings, "," = AND inside one; no strings = all).
 * Fields: `topic`, `namespace`, and `event.<field>` of containerd's own event types (e.g.
 * `event.container_id==abc`, `event.labels."k"==v`), with containerd's fieldpath rules (strings present when
 * non-empty, bools, nested messages, labels maps; numbers and timestamps are never present).
 * -EINVAL with containerd's message for a bad filter. *ret is owned by the caller until
 * events_subscription_free(). */
int events_subscribe(struct events_exchange *ex, char *const *filters, size_t n_filters, events_subscriber_fn fn,
                     void *userdata, struct events_subscription **ret, struct error **err);
/* Pauses (false) or resumes (true) delivery; resuming schedules delivery of what was queued. */
void events_subscription_set_ready(struct events_subscription *sub, bool ready);
/* Envelopes dropped for this subscriber because its queue was full. */
size_t events_subscription_dropped(const struct events_subscription *sub);
/* Unsubscribes and frees; safe inside the subscriber's own callback. NULL-safe. */
void events_subscription_free(struct events_subscription *sub);

/* Validates a topic like containerd's validateTopic; -EINVAL with its message. */
int events_validate_topic(const char *topic, struct error **err);

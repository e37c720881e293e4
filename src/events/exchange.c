/* Event exchange (containerd events/exchange/exchange.go) on the daemon loop: a broadcast to every
 * subscription whose filter matches, through a bounded per-subscription queue drained from a zero-delay
 * timer. Envelopes are stored once and shared by reference between the queues. */
#include <assert.h>
#include <string.h>
#include <time.h>

#include "events/events-internal.h"
#include "events/exchange.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/filters.h"
#include "util/identifiers.h"
#include "util/log.h"

struct entry {
        unsigned refs;
        size_t size; /* approximate bytes held, for the byte bound */
        events_envelope env;
        Google__Protobuf__Timestamp ts;
        Google__Protobuf__Any any;
};

struct qnode {
        struct qnode *next;
        struct entry *e;
};

struct events_subscription {
        unsigned refs;
        struct events_exchange *ex; /* NULL once unsubscribed */
        struct events_subscription *prev, *next;
        struct filter *filter;
        events_subscriber_fn fn;
        void *userdata;
        bool ready;
        struct qnode *head, *tail;
        size_t queued;
        size_t queued_bytes;
        size_t dropped;
        size_t dropped_unlogged;
};

struct events_exchange {
        uv_loop_t *loop;
        uv_timer_t flush;
        struct events_subscription *subs;
};

static struct entry *entry_ref(struct entry *e)
{
        e->refs++;
        return e;
}

static void entry_unref(struct entry *e)
{
        assert(e->refs > 0);
        if (--e->refs > 0)
                return;
        free(e->env.namespace_);
        free(e->env.topic);
        free(e->any.type_url);
        free(e->any.value.data);
        free(e);
}

/* Builds an entry owning copies of everything. */
static struct entry *entry_new(const char *ns, const char *topic, int64_t sec, int32_t nsec, const char *type_url,
                               const uint8_t *value, size_t value_len)
{
        struct entry *e = xcalloc(1, sizeof(*e));

        e->refs = 1;
        containerd__services__events__v1__envelope__init(&e->env);
        google__protobuf__timestamp__init(&e->ts);
        google__protobuf__any__init(&e->any);
        e->ts.seconds = sec;
        e->ts.nanos = nsec;
        e->env.timestamp = &e->ts;
        e->env.namespace_ = xstrdup(ns);
        e->env.topic = xstrdup(topic);
        e->any.type_url = xstrdup(type_url ? type_url : "");
        if (value_len > 0)
                e->any.value.data = xmemdup(value, value_len);
        e->any.value.len = value_len;
        e->env.event = &e->any;
        e->size = sizeof(*e) + strlen(ns) + strlen(topic) + strlen(e->any.type_url) + value_len;
        return e;
}

/* --- validation (containerd validateTopic / validateEnvelope) --- */

int events_validate_topic(const char *topic, struct error **err)
{
        _cleanup_free_ char *copy = NULL;
        char *comp, *save = NULL;

        if (!topic || !topic[0])
                return error_set(err, EINVAL, "must not be empty");
        if (topic[0] != '/')
                return error_set(err, EINVAL, "must start with '/'");
        if (!topic[1])
                return error_set(err, EINVAL, "must have at least one component");
        copy = xstrdup(topic + 1);
        /* strtok_r would merge empty components ("//"), which containerd rejects as empty identifiers. */
        for (comp = copy;; comp = save + 1) {
                save = strchr(comp, '/');
                if (save)
                        *save = '\0';
                if (!identifier_is_valid(comp)) {
                        struct error *inner = NULL;
                        (void)identifier_validate(comp, &inner);
                        _cleanup_free_ char *m = error_message(inner);
                        size_t ml = strlen(m), cl = strlen(": invalid argument");
                        error_free(&inner);
                        if (ml >= cl && strcmp(m + ml - cl, ": invalid argument") == 0)
                                m[ml - cl] = '\0';
                        return error_set(err, EINVAL, "failed validation on component \"%s\": %s", comp, m);
                }
                if (!save)
                        break;
        }
        return 0;
}

static int validate_topic_wrapped(const char *topic, struct error **err)
{
        int r = events_validate_topic(topic, err);

        if (r < 0)
                return error_wrap(err, "envelope topic \"%s\"", topic ? topic : "");
        return 0;
}

/* --- delivery --- */

static void on_flush(uv_timer_t *t);

static void schedule_flush(struct events_exchange *ex)
{
        if (!uv_is_active((uv_handle_t *)&ex->flush))
                (void)uv_timer_start(&ex->flush, on_flush, 0, 0);
}

static void sub_ref(struct events_subscription *sub)
{
        sub->refs++;
}

static void sub_clear_queue(struct events_subscription *sub)
{
        struct qnode *n;

        while ((n = sub->head)) {
                sub->head = n->next;
                entry_unref(n->e);
                free(n);
        }
        sub->tail = NULL;
        sub->queued = 0;
        sub->queued_bytes = 0;
}

static void sub_unref(struct events_subscription *sub)
{
        assert(sub->refs > 0);
        if (--sub->refs > 0)
                return;
        sub_clear_queue(sub);
        filter_free(sub->filter);
        free(sub);
}

/* What a filter sees of one envelope: containerd's Envelope.Field. The event is decoded at most once per
 * broadcast, and only if some filter asks for an `event.` path. */
struct match_ctx {
        const events_envelope *env;
        ProtobufCMessage *event;
        bool decoded;
};

static bool envelope_field(const char *const *path, size_t npath, const char **ret_value, void *userdata)
{
        struct match_ctx *mc = userdata;
        const events_envelope *env = mc->env;
        const char *v = NULL;

        if (npath == 0)
                return false;
        if (strcmp(path[0], "event") == 0) {
                if (!mc->decoded) {
                        mc->decoded = true;
                        mc->event = events_decode_any(env->event);
                }
                return mc->event && events_message_field(mc->event, path + 1, npath - 1, ret_value);
        }
        if (npath != 1)
                return false;
        if (strcmp(path[0], "namespace") == 0)
                v = env->namespace_;
        else if (strcmp(path[0], "topic") == 0)
                v = env->topic;
        if (!v || !v[0])
                return false;
        *ret_value = v;
        return true;
}

static void sub_enqueue(struct events_subscription *sub, struct entry *e)
{
        struct qnode *n;

        if (sub->queued >= EVENTS_QUEUE_MAX || sub->queued_bytes + e->size > EVENTS_QUEUE_MAX_BYTES) {
                sub->dropped++;
                sub->dropped_unlogged++;
                return;
        }
        n = xmalloc(sizeof(*n));
        n->next = NULL;
        n->e = entry_ref(e);
        if (sub->tail)
                sub->tail->next = n;
        else
                sub->head = n;
        sub->tail = n;
        sub->queued++;
        sub->queued_bytes += e->size;
}

/* Takes ownership of e. */
static void exchange_broadcast(struct events_exchange *ex, struct entry *e)
{
        struct match_ctx mc = {.env = &e->env};
        bool any = false;

        for (struct events_subscription *sub = ex->subs; sub; sub = sub->next) {
                if (!filter_match(sub->filter, envelope_field, &mc))
                        continue;
                sub_enqueue(sub, e);
                any = true;
        }
        if (mc.event)
                protobuf_c_message_free_unpacked(mc.event, NULL);
        if (any)
                schedule_flush(ex);
        entry_unref(e);
}

static void sub_log_drops(struct events_subscription *sub)
{
        char n[32];

        if (!sub->dropped_unlogged)
                return;
        snprintf(n, sizeof(n), "%zu", sub->dropped_unlogged);
        const struct log_field fields[] = {{"dropped", n}, {NULL, NULL}};
        log_fields(LOG_LEVEL_WARN, fields, "event subscriber too slow, events dropped");
        sub->dropped_unlogged = 0;
}

static void on_flush(uv_timer_t *t)
{
        struct events_exchange *ex = t->data;
        _cleanup_free_ struct events_subscription **snap = NULL;
        size_t n = 0, cap = 0;

        /* Snapshot with references: a callback may free any subscription, or subscribe new ones. */
        for (struct events_subscription *sub = ex->subs; sub; sub = sub->next) {
                if (!sub->head && !sub->dropped_unlogged)
                        continue;
                if (n == cap) {
                        cap = cap ? 2 * cap : 8;
                        snap = xreallocarray(snap, cap, sizeof(*snap));
                }
                sub_ref(sub);
                snap[n++] = sub;
        }
        for (size_t i = 0; i < n; i++) {
                struct events_subscription *sub = snap[i];

                sub_log_drops(sub);
                while (sub->ex && sub->ready && sub->head) {
                        struct qnode *q = sub->head;
                        sub->head = q->next;
                        if (!sub->head)
                                sub->tail = NULL;
                        sub->queued--;
                        sub->queued_bytes -= q->e->size;
                        sub->fn(sub, &q->e->env, sub->userdata);
                        entry_unref(q->e);
                        free(q);
                }
                sub_unref(sub);
        }
}

/* --- public API --- */

struct events_exchange *events_exchange_new(uv_loop_t *loop)
{
        struct events_exchange *ex = xcalloc(1, sizeof(*ex));

        ex->loop = loop;
        (void)uv_timer_init(loop, &ex->flush);
        ex->flush.data = ex;
        return ex;
}

static void on_exchange_closed(uv_handle_t *h)
{
        free(h->data);
}

struct events_exchange *events_exchange_free(struct events_exchange *ex)
{
        if (!ex)
                return NULL;
        while (ex->subs) {
                struct events_subscription *sub = ex->subs;
                ex->subs = sub->next;
                sub->prev = sub->next = NULL;
                sub->ex = NULL;
                sub_clear_queue(sub);
                /* The handle stays the caller's: it still owns the reference, freed by
                 * events_subscription_free(), which is then a plain free. */
        }
        uv_close((uv_handle_t *)&ex->flush, on_exchange_closed);
        return NULL;
}

static void now_utc(int64_t *sec, int32_t *nsec)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        *sec = ts.tv_sec;
        *nsec = (int32_t)ts.tv_nsec;
}

static int validate_publish(const char *ns, const char *topic, struct error **err)
{
        int r;

        /* namespaces.NamespaceRequired, then validateTopic, as Exchange.Publish does. */
        if (!ns || !ns[0])
                return error_set(err, EBUSY, "failed publishing event: namespace is required");
        r = identifier_validate(ns, err);
        if (r < 0)
                return error_wrap(err, "failed publishing event: namespace validation");
        return validate_topic_wrapped(topic, err);
}

int events_publish_any(struct events_exchange *ex, const char *ns, const char *topic,
                       const Google__Protobuf__Any *event, struct error **err)
{
        int64_t sec;
        int32_t nsec;
        int r;

        r = validate_publish(ns, topic, err);
        if (r < 0)
                return r;
        now_utc(&sec, &nsec);
        exchange_broadcast(ex, entry_new(ns, topic, sec, nsec, event ? event->type_url : "",
                                         event ? event->value.data : NULL, event ? event->value.len : 0));
        log_debug("event published: topic=%s ns=%s", topic, ns);
        return 0;
}

int events_publish(struct events_exchange *ex, const char *ns, const char *topic, const ProtobufCMessage *event,
                   struct error **err)
{
        _cleanup_free_ uint8_t *buf = NULL;
        Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
        size_t len;

        assert(event);
        len = protobuf_c_message_get_packed_size(event);
        buf = xmalloc(len ? len : 1);
        (void)protobuf_c_message_pack(event, buf);
        /* containerd's typeurl registers event types by full proto name without the googleapis prefix. */
        any.type_url = (char *)event->descriptor->name;
        any.value.data = buf;
        any.value.len = len;
        return events_publish_any(ex, ns, topic, &any, err);
}

int events_forward(struct events_exchange *ex, const events_envelope *env, struct error **err)
{
        const char *ns = env ? env->namespace_ : NULL;
        int r;

        if (!env)
                return error_set(err, EINVAL, "envelope must be set");
        r = identifier_validate(ns ? ns : "", err);
        if (r < 0)
                return error_wrap(err, "event envelope has invalid namespace");
        r = validate_topic_wrapped(env->topic, err);
        if (r < 0)
                return r;
        if (!env->timestamp || (env->timestamp->seconds == 0 && env->timestamp->nanos == 0))
                return error_set(err, EINVAL, "timestamp must be set on forwarded event");
        exchange_broadcast(ex,
                           entry_new(ns, env->topic, env->timestamp->seconds, env->timestamp->nanos,
                                     env->event ? env->event->type_url : "", env->event ? env->event->value.data : NULL,
                                     env->event ? env->event->value.len : 0));
        log_debug("event forwarded: topic=%s ns=%s", env->topic, ns);
        return 0;
}

int events_forward_ttrpc(struct events_exchange *ex, const Containerd__Services__Events__Ttrpc__V1__Envelope *env,
                         struct error **err)
{
        events_envelope v1 = CONTAINERD__SERVICES__EVENTS__V1__ENVELOPE__INIT;

        if (!env)
                return events_forward(ex, NULL, err);
        /* Same fields and numbers as events.v1.Envelope; only the generated type differs. */
        v1.timestamp = env->timestamp;
        v1.namespace_ = env->namespace_;
        v1.topic = env->topic;
        v1.event = env->event;
        return events_forward(ex, &v1, err);
}

int events_subscribe(struct events_exchange *ex, char *const *filters, size_t n_filters, events_subscriber_fn fn,
                     void *userdata, struct events_subscription **ret, struct error **err)
{
        struct filter *f = NULL;
        struct events_subscription *sub;
        int r;

        assert(fn);
        r = filter_parse(filters, n_filters, &f, err);
        if (r < 0)
                return error_wrap(err, "failed parsing subscription filters");
        sub = xcalloc(1, sizeof(*sub));
        sub->refs = 1; /* the caller's handle */
        sub->ex = ex;
        sub->filter = f;
        sub->fn = fn;
        sub->userdata = userdata;
        sub->ready = true;
        sub->next = ex->subs;
        if (ex->subs)
                ex->subs->prev = sub;
        ex->subs = sub;
        *ret = sub;
        return 0;
}

void events_subscription_set_ready(struct events_subscription *sub, bool ready)
{
        sub->ready = ready;
        if (ready && sub->ex && sub->head)
                schedule_flush(sub->ex);
}

size_t events_subscription_dropped(const struct events_subscription *sub)
{
        return sub->dropped;
}

void events_subscription_free(struct events_subscription *sub)
{
        struct events_exchange *ex;

        if (!sub)
                return;
        ex = sub->ex;
        if (ex) {
                if (sub->prev)
                        sub->prev->next = sub->next;
                else
                        ex->subs = sub->next;
                if (sub->next)
                        sub->next->prev = sub->prev;
                sub->prev = sub->next = NULL;
                sub->ex = NULL;
        }
        sub_clear_queue(sub);
        sub_unref(sub);
}

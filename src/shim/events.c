/* Task events forwarded to the daemon: ttrpc containerd.services.events.ttrpc.v1.Events/Forward on
 * $TTRPC_ADDRESS, dialled lazily, one call in flight so that /tasks/exit always precedes /tasks/delete,
 * 5 s per call, up to 5 attempts with 1 s * n back-off (PROTOCOLS.md 3.4). */
#include <string.h>
#include <time.h>

#include "shim/server.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/log.h"

#define EVENTS_MAX_ATTEMPTS 5
#define EVENTS_TIMEOUT_MS 5000
#define EVENTS_MAX_QUEUED 4096

struct ev_item {
        struct ev_item *next;
        char *topic;
        char *type_url;
        uint8_t *data;
        size_t len;
        int64_t sec;
        int32_t nsec;
        int attempts;
};

struct shim_events {
        uv_loop_t *loop;
        char *address;
        char *ns;
        struct ttrpc_client *client;
        bool connecting, in_flight, reset_client;
        struct ev_item *head, **tail;
        size_t queued;
        uv_timer_t retry;
        bool closing;
};

static void kick(struct shim_events *ev);

static void item_free(struct ev_item *it)
{
        free(it->topic);
        free(it->type_url);
        free(it->data);
        free(it);
}

static void pop(struct shim_events *ev)
{
        struct ev_item *it = ev->head;

        ev->head = it->next;
        if (!ev->head)
                ev->tail = &ev->head;
        ev->queued--;
        item_free(it);
}

static void on_retry(uv_timer_t *t)
{
        struct shim_events *ev = t->data;

        if (ev->reset_client && ev->client) {
                ttrpc_client_free(ev->client);
                ev->client = NULL;
        }
        ev->reset_client = false;
        kick(ev);
}

static void schedule_retry(struct shim_events *ev, bool reset)
{
        struct ev_item *it = ev->head;

        ev->reset_client = ev->reset_client || reset;
        if (it && ++it->attempts >= EVENTS_MAX_ATTEMPTS) {
                log_fields(LOG_LEVEL_ERROR, (const struct log_field[]){{"topic", it->topic}, {NULL, NULL}},
                           "post event");
                pop(ev);
        }
        uv_timer_start(&ev->retry, on_retry, ev->head ? 1000u * (uint64_t)ev->head->attempts : 0, 0);
}

static void on_reply(int r, ProtobufCMessage *resp, const struct error *e, void *userdata)
{
        struct shim_events *ev = userdata;

        ev->in_flight = false;
        if (resp)
                protobuf_c_message_free_unpacked(resp, NULL);
        if (ev->closing)
                return;
        if (r < 0) {
                log_fields(LOG_LEVEL_DEBUG, NULL, "forward event: %s", e ? error_str(e) : "failed");
                schedule_retry(ev,
                               r == -ECONNRESET || r == -EPIPE || r == -ECANCELED || r == -ENOTCONN || r == -ETIMEDOUT);
                return;
        }
        pop(ev);
        kick(ev);
}

static void send_head(struct shim_events *ev)
{
        struct ev_item *it = ev->head;
        Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
        Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
        Containerd__Services__Events__Ttrpc__V1__Envelope env = CONTAINERD__SERVICES__EVENTS__TTRPC__V1__ENVELOPE__INIT;
        Containerd__Services__Events__Ttrpc__V1__ForwardRequest req =
            CONTAINERD__SERVICES__EVENTS__TTRPC__V1__FORWARD_REQUEST__INIT;
        const char *md[] = {"containerd-namespace-ttrpc", ev->ns, NULL};
        int r;

        ts.seconds = it->sec;
        ts.nanos = it->nsec;
        any.type_url = it->type_url;
        any.value.data = it->data;
        any.value.len = it->len;
        env.timestamp = &ts;
        env.namespace_ = ev->ns;
        env.topic = it->topic;
        env.event = &any;
        req.envelope = &env;
        r = ttrpc_client_call(ev->client, "containerd.services.events.ttrpc.v1.Events", "Forward", &req.base, NULL, md,
                              EVENTS_TIMEOUT_MS, on_reply, ev);
        if (r < 0) {
                schedule_retry(ev, true);
                return;
        }
        ev->in_flight = true;
}

static void on_connect(struct ttrpc_client *c, int r, void *data)
{
        struct shim_events *ev = data;

        (void)c;
        ev->connecting = false;
        if (ev->closing)
                return;
        if (r < 0) {
                log_debug("connect %s: %s", ev->address, strerror(-r));
                schedule_retry(ev, true);
                return;
        }
        kick(ev);
}

static void kick(struct shim_events *ev)
{
        _cleanup_error_ struct error *e = NULL;

        if (ev->closing || ev->in_flight || ev->connecting || !ev->head || uv_is_active((uv_handle_t *)&ev->retry))
                return;
        if (ev->client && !ttrpc_client_connected(ev->client)) {
                ttrpc_client_free(ev->client);
                ev->client = NULL;
        }
        if (!ev->client) {
                ev->connecting = true;
                if (ttrpc_client_connect(ev->loop, ev->address, on_connect, ev, &ev->client, &e) < 0) {
                        ev->connecting = false;
                        ev->client = NULL;
                        log_debug("connect %s: %s", ev->address, error_str(e));
                        schedule_retry(ev, false);
                }
                return;
        }
        send_head(ev);
}

struct shim_events *shim_events_new(uv_loop_t *loop, const char *address, const char *ns)
{
        struct shim_events *ev = xcalloc(1, sizeof(*ev));

        ev->loop = loop;
        ev->address = xstrdup(address);
        ev->ns = xstrdup(ns);
        ev->tail = &ev->head;
        uv_timer_init(loop, &ev->retry);
        ev->retry.data = ev;
        return ev;
}

void shim_events_publish(struct shim_events *ev, const char *topic, const ProtobufCMessage *event)
{
        struct ev_item *it;
        struct timespec now;

        if (!ev->address || !*ev->address)
                return;
        if (ev->queued >= EVENTS_MAX_QUEUED) {
                log_warn("event queue full, dropping %s", topic);
                return;
        }
        clock_gettime(CLOCK_REALTIME, &now);
        it = xcalloc(1, sizeof(*it));
        it->topic = xstrdup(topic);
        /* containerd's typeurl for its own events is the bare proto name, e.g. containerd.events.TaskExit */
        it->type_url = xstrdup(event->descriptor->name);
        it->len = protobuf_c_message_get_packed_size(event);
        it->data = xmalloc(it->len ? it->len : 1);
        protobuf_c_message_pack(event, it->data);
        it->sec = now.tv_sec;
        it->nsec = (int32_t)now.tv_nsec;
        *ev->tail = it;
        ev->tail = &it->next;
        ev->queued++;
        kick(ev);
}

bool shim_events_idle(const struct shim_events *ev)
{
        return !ev->head && !ev->in_flight;
}

static void free_after_close(uv_handle_t *h)
{
        free(h->data);
}

void shim_events_free(struct shim_events *ev)
{
        if (!ev)
                return;
        ev->closing = true;
        if (ev->client)
                ttrpc_client_free(ev->client);
        while (ev->head)
                pop(ev);
        free(ev->address);
        free(ev->ns);
        uv_close((uv_handle_t *)&ev->retry, free_after_close);
}

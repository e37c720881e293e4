/* Task events forwarded to the daemon: ttrpc containerd.services.events.ttrpc.v1.Events/Forward on
 * $TTRPC_ADDRESS, dialled lazily, one call in flight so that /tasks/exit always precedes /tasks/delete,
 * 5 s per call, up to 5 attempts with 1 s * n back-off (PROTOCOLS.md 3.4). */
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
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
        struct shim_loop *loop;
        char *address;
        char *ns;
        struct shim_watch w; /* the connection, fd -1 when not connected */
        struct shim_frame_reader rd;
        struct shim_wqueue wq;
        uint32_t stream_id;
        bool in_flight;
        struct ev_item *head, **tail;
        size_t queued;
        struct shim_timer retry, timeout;
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

static void disconnect(struct shim_events *ev)
{
        if (ev->w.fd < 0)
                return;
        shim_watch_stop(&ev->w);
        close(ev->w.fd);
        ev->w.fd = -1;
        shim_frame_reader_done(&ev->rd);
        shim_wqueue_clear(&ev->wq);
}

static void on_retry(struct shim_timer *t)
{
        kick(t->data);
}

static void schedule_retry(struct shim_events *ev, bool reset)
{
        struct ev_item *it = ev->head;

        ev->in_flight = false;
        shim_timer_stop(&ev->timeout);
        if (reset)
                disconnect(ev);
        if (it && ++it->attempts >= EVENTS_MAX_ATTEMPTS) {
                log_fields(LOG_LEVEL_ERROR, (const struct log_field[]){{"topic", it->topic}, {NULL, NULL}},
                           "post event");
                pop(ev);
        }
        shim_timer_start(&ev->retry, ev->head ? 1000u * (uint64_t)ev->head->attempts : 0);
}

static void on_timeout(struct shim_timer *t)
{
        struct shim_events *ev = t->data;

        log_fields(LOG_LEVEL_DEBUG, NULL, "forward event: timed out");
        schedule_retry(ev, true);
}

/* A Response for the call in flight: success pops the event, a status retries it on the same connection. */
static bool on_frame(void *data, uint32_t stream_id, uint8_t type, const uint8_t *payload, size_t len, bool oversize)
{
        struct shim_events *ev = data;
        Ttrpc__Response *resp;
        int code = 0;

        if (type != SHIM_RPC_RESPONSE || stream_id != ev->stream_id || !ev->in_flight)
                return true;
        if (oversize)
                code = GRPC_RESOURCE_EXHAUSTED;
        else if (!(resp = ttrpc__response__unpack(NULL, len, payload)))
                code = GRPC_INTERNAL;
        else {
                if (resp->status && resp->status->code != 0) {
                        code = resp->status->code;
                        log_fields(LOG_LEVEL_DEBUG, NULL, "forward event: %s",
                                   resp->status->message ? resp->status->message : "failed");
                }
                ttrpc__response__free_unpacked(resp, NULL);
        }
        ev->in_flight = false;
        shim_timer_stop(&ev->timeout);
        if (code != 0) {
                schedule_retry(ev, false);
                return true;
        }
        pop(ev);
        kick(ev);
        return true;
}

static void on_conn(struct shim_watch *w, uint32_t events)
{
        struct shim_events *ev = w->data;
        uint8_t buf[1024];

        if (events & EPOLLOUT) {
                int r = shim_wqueue_flush(&ev->wq, w->fd);
                if (r < 0) {
                        schedule_retry(ev, true);
                        return;
                }
                (void)shim_watch_set(w, r == 0 ? EPOLLIN | EPOLLOUT : EPOLLIN);
        }
        if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                ssize_t n = read(w->fd, buf, sizeof(buf));
                if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                        /* the daemon went away: the event in flight (if any) is sent again */
                        if (ev->in_flight)
                                schedule_retry(ev, true);
                        else
                                disconnect(ev);
                        return;
                }
                if (n > 0)
                        (void)shim_frame_feed(&ev->rd, buf, (size_t)n, on_frame, ev);
        }
}

static int dial(struct shim_events *ev)
{
        const char *p = strncmp(ev->address, "unix://", 7) == 0 ? ev->address + 7 : ev->address;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd, r;

        if (p[0] != '/' || strlen(p) >= sizeof(sa.sun_path))
                return -EINVAL;
        strcpy(sa.sun_path, p);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        /* a unix socket connects at once or fails (EAGAIN when the backlog is full: retried later) */
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        shim_watch_init(ev->loop, &ev->w, fd, on_conn, ev);
        if (shim_watch_set(&ev->w, EPOLLIN) < 0) {
                close(fd);
                ev->w.fd = -1;
                return -EIO;
        }
        ev->stream_id = 1;
        return 0;
}

static void send_head(struct shim_events *ev)
{
        struct ev_item *it = ev->head;
        Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
        Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
        Containerd__Services__Events__Ttrpc__V1__Envelope env = CONTAINERD__SERVICES__EVENTS__TTRPC__V1__ENVELOPE__INIT;
        Containerd__Services__Events__Ttrpc__V1__ForwardRequest fwd =
            CONTAINERD__SERVICES__EVENTS__TTRPC__V1__FORWARD_REQUEST__INIT;
        Ttrpc__KeyValue kv = TTRPC__KEY_VALUE__INIT, *md[1] = {&kv};
        Ttrpc__Request req = TTRPC__REQUEST__INIT;
        _cleanup_free_ uint8_t *payload = NULL;
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
        fwd.envelope = &env;
        req.payload.len = protobuf_c_message_get_packed_size(&fwd.base);
        payload = xmalloc(req.payload.len ? req.payload.len : 1);
        protobuf_c_message_pack(&fwd.base, payload);
        req.payload.data = payload;
        req.service = (char *)"containerd.services.events.ttrpc.v1.Events";
        req.method = (char *)"Forward";
        req.timeout_nano = (int64_t)EVENTS_TIMEOUT_MS * 1000000;
        kv.key = (char *)"containerd-namespace-ttrpc";
        kv.value = ev->ns;
        req.metadata = md;
        req.n_metadata = 1;
        ev->stream_id += 2;
        shim_wqueue_frame(&ev->wq, ev->stream_id, SHIM_RPC_REQUEST, &req.base);
        r = shim_wqueue_flush(&ev->wq, ev->w.fd);
        if (r < 0) {
                schedule_retry(ev, true);
                return;
        }
        if (r == 0)
                (void)shim_watch_set(&ev->w, EPOLLIN | EPOLLOUT);
        ev->in_flight = true;
        shim_timer_start(&ev->timeout, EVENTS_TIMEOUT_MS);
}

static void kick(struct shim_events *ev)
{
        int r;

        if (ev->closing || ev->in_flight || !ev->head || ev->retry.active)
                return;
        if (ev->w.fd < 0) {
                r = dial(ev);
                if (r < 0) {
                        log_debug("connect %s: %s", ev->address, strerror(-r));
                        schedule_retry(ev, false);
                        return;
                }
        }
        send_head(ev);
}

struct shim_events *shim_events_new(struct shim_loop *loop, const char *address, const char *ns)
{
        struct shim_events *ev = xcalloc(1, sizeof(*ev));

        ev->loop = loop;
        ev->address = xstrdup(address);
        ev->ns = xstrdup(ns);
        ev->tail = &ev->head;
        ev->w.fd = -1;
        shim_wqueue_init(&ev->wq);
        shim_timer_init(loop, &ev->retry, on_retry, ev);
        shim_timer_init(loop, &ev->timeout, on_timeout, ev);
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

void shim_events_free(struct shim_events *ev)
{
        if (!ev)
                return;
        ev->closing = true;
        shim_timer_stop(&ev->retry);
        shim_timer_stop(&ev->timeout);
        disconnect(ev);
        while (ev->head)
                pop(ev);
        free(ev->address);
        free(ev->ns);
        free(ev);
}

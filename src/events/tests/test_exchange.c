/* Event exchange: Any packing, topic/envelope validation, in-order delivery, filters, bounded queues. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <string.h>

#include "events/events-internal.h"
#include "events/exchange.h"
#include "github.com/containerd/containerd/api/events/container.pb-c.h"
#include "github.com/containerd/containerd/api/events/task.pb-c.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/filters.h"
#include "util/log.h"

struct got {
        size_t n;
        char *topics[2048];
        char *nss[2048];
        struct events_subscription *free_self_after; /* frees its own subscription after this many */
        size_t free_after;
        struct events_exchange *ex;
        bool republish; /* publishes /chained once from inside the callback */
        Containerd__Events__TaskCreate *last_create;
        int64_t last_sec;
        int32_t last_nsec;
        char *last_type;
};

struct fx {
        uv_loop_t loop;
        struct events_exchange *ex;
};

static void on_event(struct events_subscription *sub, const events_envelope *env, void *userdata)
{
        struct got *g = userdata;

        assert_true(g->n < 2048);
        g->topics[g->n] = xstrdup(env->topic);
        g->nss[g->n] = xstrdup(env->namespace_);
        g->n++;
        assert_non_null(env->timestamp);
        g->last_sec = env->timestamp->seconds;
        g->last_nsec = env->timestamp->nanos;
        free(g->last_type);
        g->last_type = xstrdup(env->event ? env->event->type_url : NULL);
        if (env->event && strcmp(env->event->type_url, "containerd.events.TaskCreate") == 0) {
                if (g->last_create)
                        containerd__events__task_create__free_unpacked(g->last_create, NULL);
                g->last_create =
                    containerd__events__task_create__unpack(NULL, env->event->value.len, env->event->value.data);
                assert_non_null(g->last_create);
        }
        if (g->republish) {
                Containerd__Events__TaskExit ev = CONTAINERD__EVENTS__TASK_EXIT__INIT;
                g->republish = false;
                assert_int_equal(events_publish(g->ex, "ns1", "/chained", &ev.base, NULL), 0);
        }
        if (g->free_self_after && g->n == g->free_after) {
                assert_ptr_equal(sub, g->free_self_after);
                events_subscription_free(TAKE_PTR(g->free_self_after));
        }
}

static void got_clear(struct got *g)
{
        for (size_t i = 0; i < g->n; i++) {
                free(g->topics[i]);
                free(g->nss[i]);
        }
        if (g->last_create)
                containerd__events__task_create__free_unpacked(g->last_create, NULL);
        free(g->last_type);
        memset(g, 0, sizeof(*g));
}

static int setup(void **state)
{
        struct fx *f = xcalloc(1, sizeof(*f));

        assert_int_equal(uv_loop_init(&f->loop), 0);
        f->ex = events_exchange_new(&f->loop);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fx *f = *state;

        f->ex = events_exchange_free(f->ex);
        assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
        assert_int_equal(uv_loop_close(&f->loop), 0);
        free(f);
        return 0;
}

static void drain(struct fx *f)
{
        (void)uv_run(&f->loop, UV_RUN_DEFAULT);
}

static int publish_exit(struct fx *f, const char *ns, const char *topic, struct error **err)
{
        Containerd__Events__TaskExit ev = CONTAINERD__EVENTS__TASK_EXIT__INIT;

        ev.container_id = (char *)"c1";
        ev.exit_status = 3;
        return events_publish(f->ex, ns, topic, &ev.base, err);
}

static int publish_exit_c2(struct fx *f, const char *ns, const char *topic)
{
        Containerd__Events__TaskExit ev = CONTAINERD__EVENTS__TASK_EXIT__INIT;

        ev.container_id = (char *)"c2";
        ev.exit_status = 3;
        return events_publish(f->ex, ns, topic, &ev.base, NULL);
}

static int publish_container_c2(struct fx *f, const char *ns, const char *topic)
{
        Containerd__Events__ContainerUpdate ev = CONTAINERD__EVENTS__CONTAINER_UPDATE__INIT;
        Containerd__Events__ContainerUpdate__LabelsEntry l1 = CONTAINERD__EVENTS__CONTAINER_UPDATE__LABELS_ENTRY__INIT;
        Containerd__Events__ContainerUpdate__LabelsEntry *labels[] = {&l1};

        ev.id = (char *)"c2";
        l1.key = (char *)"io.k";
        l1.value = (char *)"v";
        ev.labels = labels;
        ev.n_labels = 1;
        return events_publish(f->ex, ns, topic, &ev.base, NULL);
}

static void test_events_topic_validation(void **state _unused_)
{
        _cleanup_error_ struct error *e = NULL;

        assert_int_equal(events_validate_topic("/tasks/exit", NULL), 0);
        assert_int_equal(events_validate_topic("/tasks/exec-added", NULL), 0);
        assert_int_equal(events_validate_topic("/a", NULL), 0);
        assert_int_equal(events_validate_topic("", &e), -EINVAL);
        assert_string_equal(error_str(e), "must not be empty: invalid argument");
        error_free(&e);
        assert_int_equal(events_validate_topic("tasks/exit", &e), -EINVAL);
        assert_string_equal(error_str(e), "must start with '/': invalid argument");
        error_free(&e);
        assert_int_equal(events_validate_topic("/", &e), -EINVAL);
        assert_string_equal(error_str(e), "must have at least one component: invalid argument");
        error_free(&e);
        assert_int_equal(events_validate_topic("/tasks//exit", &e), -EINVAL);
        assert_string_equal(error_str(e),
                            "failed validation on component \"\": identifier must not be empty: invalid argument");
        error_free(&e);
        assert_int_equal(events_validate_topic("/tasks/ex it", &e), -EINVAL);
        assert_non_null(
            strstr(error_str(e), "failed validation on component \"ex it\": identifier \"ex it\" must match"));
        error_free(&e);
        assert_int_equal(events_validate_topic("/tasks/exit/", &e), -EINVAL);
}

static void test_events_publish_packs_any(void **state)
{
        struct fx *f = *state;
        struct events_subscription *sub = NULL;
        struct got g = {0};
        _cleanup_error_ struct error *e = NULL;
        Containerd__Events__TaskCreate ev = CONTAINERD__EVENTS__TASK_CREATE__INIT;

        assert_int_equal(events_subscribe(f->ex, NULL, 0, on_event, &g, &sub, &e), 0);
        ev.container_id = (char *)"t3";
        ev.bundle = (char *)"/run/b/t3";
        ev.pid = 1234;
        assert_int_equal(events_publish(f->ex, "protons", "/tasks/create", &ev.base, &e), 0);
        assert_int_equal(g.n, 0); /* delivery is asynchronous */
        drain(f);
        assert_int_equal(g.n, 1);
        assert_string_equal(g.topics[0], "/tasks/create");
        assert_string_equal(g.nss[0], "protons");
        /* containerd's typeurl: full message name, no type.googleapis.com/ prefix */
        assert_string_equal(g.last_type, "containerd.events.TaskCreate");
        assert_non_null(g.last_create);
        assert_string_equal(g.last_create->container_id, "t3");
        assert_string_equal(g.last_create->bundle, "/run/b/t3");
        assert_int_equal(g.last_create->pid, 1234);
        assert_true(g.last_sec > 1600000000);

        /* Publish errors, as containerd words them. */
        assert_int_equal(publish_exit(f, "", "/tasks/exit", &e), -EBUSY);
        assert_string_equal(error_str(e), "failed publishing event: namespace is required: failed precondition");
        error_free(&e);
        assert_int_equal(publish_exit(f, "bad ns", "/tasks/exit", &e), -EINVAL);
        error_free(&e);
        assert_int_equal(publish_exit(f, "ns", "tasks", &e), -EINVAL);
        assert_string_equal(error_str(e), "envelope topic \"tasks\": must start with '/': invalid argument");
        error_free(&e);
        drain(f);
        assert_int_equal(g.n, 1);
        events_subscription_free(sub);
        got_clear(&g);
}

static void test_events_order_to_every_subscriber(void **state)
{
        struct fx *f = *state;
        struct events_subscription *s1 = NULL, *s2 = NULL;
        struct got g1 = {0}, g2 = {0};
        char topic[32];

        assert_int_equal(events_subscribe(f->ex, NULL, 0, on_event, &g1, &s1, NULL), 0);
        assert_int_equal(events_subscribe(f->ex, NULL, 0, on_event, &g2, &s2, NULL), 0);
        for (int i = 0; i < 300; i++) {
                snprintf(topic, sizeof(topic), "/t/e%d", i);
                assert_int_equal(publish_exit(f, "ns1", topic, NULL), 0);
                if (i == 100)
                        drain(f); /* deliveries interleaved with publishing keep the order too */
        }
        drain(f);
        assert_int_equal(g1.n, 300);
        assert_int_equal(g2.n, 300);
        for (int i = 0; i < 300; i++) {
                snprintf(topic, sizeof(topic), "/t/e%d", i);
                assert_string_equal(g1.topics[i], topic);
                assert_string_equal(g2.topics[i], topic);
        }
        events_subscription_free(s1);
        events_subscription_free(s2);
        got_clear(&g1);
        got_clear(&g2);
}

static void test_events_filters(void **state)
{
        struct fx *f = *state;
        struct events_subscription *sa = NULL, *sb = NULL, *sc = NULL, *sd = NULL, *se = NULL, *sf = NULL, *sg = NULL;
        struct got ga = {0}, gb = {0}, gc = {0}, gd = {0}, ge = {0}, gf = {0}, gg = {0};
        char *ff[] = {(char *)"event.container_id==c2"};
        char *fg[] = {(char *)"event.labels.\"io.k\"==v,event.id==c2"};
        _cleanup_error_ struct error *e = NULL;
        char *fa[] = {(char *)"topic==\"/tasks/exit\""};
        char *fb[] = {(char *)"namespace==ns1"};
        char *fc[] = {(char *)"topic~=|^/containers/|", (char *)"namespace==other"};
        char *fd[] = {(char *)"topic==\"/tasks/exit\",namespace==ns2"};
        char *fe[] = {(char *)"event.container_id==c2,event.exit_status"}; /* numbers are never present */

        assert_int_equal(events_subscribe(f->ex, fa, 1, on_event, &ga, &sa, &e), 0);
        assert_int_equal(events_subscribe(f->ex, fb, 1, on_event, &gb, &sb, &e), 0);
        assert_int_equal(events_subscribe(f->ex, fc, 2, on_event, &gc, &sc, &e), 0);
        assert_int_equal(events_subscribe(f->ex, fd, 1, on_event, &gd, &sd, &e), 0);
        assert_int_equal(events_subscribe(f->ex, fe, 1, on_event, &ge, &se, &e), 0);
        assert_int_equal(events_subscribe(f->ex, ff, 1, on_event, &gf, &sf, &e), 0);
        assert_int_equal(events_subscribe(f->ex, fg, 1, on_event, &gg, &sg, &e), 0);

        assert_int_equal(publish_exit(f, "ns1", "/tasks/exit", NULL), 0);
        assert_int_equal(publish_exit_c2(f, "ns2", "/tasks/exit"), 0);
        assert_int_equal(publish_container_c2(f, "ns1", "/containers/create"), 0);
        assert_int_equal(publish_exit(f, "other", "/snapshot/prepare", NULL), 0);
        assert_int_equal(publish_exit(f, "ns2", "/tasks/start", NULL), 0);
        drain(f);

        assert_int_equal(ga.n, 2);
        assert_string_equal(ga.nss[0], "ns1");
        assert_string_equal(ga.nss[1], "ns2");
        assert_int_equal(gb.n, 2);
        assert_string_equal(gb.topics[0], "/tasks/exit");
        assert_string_equal(gb.topics[1], "/containers/create");
        assert_int_equal(gc.n, 2); /* /containers/create (regexp) OR namespace other */
        assert_string_equal(gc.topics[0], "/containers/create");
        assert_string_equal(gc.topics[1], "/snapshot/prepare");
        assert_int_equal(gd.n, 1);
        assert_string_equal(gd.nss[0], "ns2");
        assert_int_equal(ge.n, 0);
        assert_int_equal(gf.n, 1); /* event.container_id==c2: the TaskExit of c2 (ContainerUpdate has no such field) */
        assert_string_equal(gf.topics[0], "/tasks/exit");
        assert_string_equal(gf.nss[0], "ns2");
        assert_int_equal(gg.n, 1);
        assert_string_equal(gg.topics[0], "/containers/create");

        events_subscription_free(sa);
        events_subscription_free(sb);
        events_subscription_free(sc);
        events_subscription_free(sd);
        events_subscription_free(se);
        events_subscription_free(sf);
        events_subscription_free(sg);
        got_clear(&gf);
        got_clear(&gg);
        got_clear(&ga);
        got_clear(&gb);
        got_clear(&gc);
        got_clear(&gd);
        got_clear(&ge);
}

static bool lookup_map(const char *const *path, size_t npath, const char **ret_value, void *userdata)
{
        const char *const *kv = userdata;

        if (npath == 2 && strcmp(path[0], "labels") == 0) {
                for (size_t i = 0; kv[i]; i += 2)
                        if (strcmp(kv[i], path[1]) == 0) {
                                *ret_value = kv[i + 1];
                                return true;
                        }
                return false;
        }
        if (npath != 1)
                return false;
        for (size_t i = 0; kv[i]; i += 2)
                if (strcmp(kv[i], path[0]) == 0) {
                        *ret_value = kv[i + 1];
                        return true;
                }
        return false;
}

static bool match1(const char *filter, const char *const *kv)
{
        struct filter *flt = NULL;
        char *fs[] = {(char *)filter};
        bool m;

        assert_int_equal(filter_parse(fs, 1, &flt, NULL), 0);
        m = filter_match(flt, lookup_map, (void *)kv);
        filter_free(flt);
        return m;
}

static void test_events_filter_syntax(void **state _unused_)
{
        const char *const obj[] = {"topic", "/tasks/exit", "namespace", "default", "labels",
                                   "x",     "a.b",         "dotted",    NULL};
        const char *const lab[] = {"k.1", "v 1", NULL};
        struct filter *flt = NULL;
        _cleanup_error_ struct error *e = NULL;
        char *bad1[] = {(char *)"topic==/tasks/exit"};
        char *bad2[] = {(char *)"topic=="};
        char *bad3[] = {(char *)"topic<>x"};
        char *bad4[] = {(char *)"topic==\"unterminated"};
        char *empty[] = {(char *)""};

        assert_true(match1("topic==\"/tasks/exit\"", obj));
        assert_true(match1("topic == \"/tasks/exit\"", obj));
        assert_false(match1("topic!=\"/tasks/exit\"", obj));
        assert_true(match1("topic~=/^\\/tasks\\//", obj));
        assert_true(match1("topic~=\"exit$\"", obj));
        assert_false(match1("topic~=\"^exit\"", obj));
        assert_true(match1("namespace", obj)); /* presence */
        assert_false(match1("missing", obj));
        assert_true(match1("missing!=x", obj)); /* absent reads as "" for != */
        assert_true(match1("namespace==default,topic~=tasks", obj));
        assert_false(match1("namespace==default,topic~=images", obj));
        assert_true(match1("\"a.b\"==dotted", obj)); /* quoted field with a dot */
        assert_true(match1("labels.\"k.1\"==\"v 1\"", lab));
        assert_true(match1("namespace==\"def\\x61ult\"", obj));
        assert_true(match1("topic~=\"^/tasks/(exit|start)$\"", obj));
        assert_true(match1("topic~=\"^/t[[:alpha:]]{4}/e.{2,3}$\"", obj));
        /* Regexps glibc would blow up on never match (RE2 rejects them; containerd then never matches). */
        assert_false(match1("topic~=\"/tasks/exit++++++\"", obj));
        assert_false(match1("topic~=\"((x{100}){100}){10}|exit\"", obj));
        assert_false(match1("topic~=\"x{1001}|exit\"", obj));
        assert_true(match1("topic~=\"(x{100}){100}|exit\"", obj));

        /* containerd rejects an unquoted value starting with '/' after == (only ~= takes /re/). */
        assert_int_equal(filter_parse(bad1, 1, &flt, &e), -EINVAL);
        assert_string_equal(
            error_str(e),
            "filters: parse error: [topic== >|/|< tasks/exit]: invalid quote encountered: invalid argument");
        error_free(&e);
        assert_int_equal(filter_parse(bad2, 1, &flt, &e), -EINVAL);
        assert_string_equal(error_str(e),
                            "filters: parse error: [topic==]: expected value or quoted: invalid argument");
        error_free(&e);
        assert_int_equal(filter_parse(bad3, 1, &flt, &e), -EINVAL);
        error_free(&e);
        assert_int_equal(filter_parse(bad4, 1, &flt, &e), -EINVAL);
        assert_non_null(strstr(error_str(e), "quoted literal not terminated"));
        error_free(&e);

        /* An empty string matches everything. */
        assert_int_equal(filter_parse(empty, 1, &flt, &e), 0);
        assert_true(filter_match(flt, lookup_map, (void *)lab));
        filter_free(flt);
}

static void test_events_subscribe_bad_filter(void **state)
{
        struct fx *f = *state;
        struct events_subscription *sub = NULL;
        _cleanup_error_ struct error *e = NULL;
        char *bad[] = {(char *)"topic==/tasks/exit"};

        assert_int_equal(events_subscribe(f->ex, bad, 1, on_event, NULL, &sub, &e), -EINVAL);
        assert_null(sub);
        assert_true(strncmp(error_str(e), "failed parsing subscription filters: filters: parse error:", 58) == 0);
}

static void test_events_slow_subscriber_drops(void **state)
{
        struct fx *f = *state;
        struct events_subscription *slow = NULL, *fast = NULL;
        struct got gs = {0}, gf = {0};
        char path[] = "/tmp/krill-events-log-XXXXXX";
        _cleanup_close_ int fd = mkstemp(path);
        char topic[32], buf[4096];
        ssize_t n;

        assert_true(fd >= 0);
        log_set_fd(fd);
        assert_int_equal(events_subscribe(f->ex, NULL, 0, on_event, &gs, &slow, NULL), 0);
        assert_int_equal(events_subscribe(f->ex, NULL, 0, on_event, &gf, &fast, NULL), 0);
        events_subscription_set_ready(slow, false);
        for (int i = 0; i < EVENTS_QUEUE_MAX + 6; i++) {
                snprintf(topic, sizeof(topic), "/t/e%d", i);
                assert_int_equal(publish_exit(f, "ns1", topic, NULL), 0);
                if (i % 100 == 99)
                        drain(f); /* the loop turns between bursts, as in the daemon */
        }
        drain(f);
        /* The fast subscriber is not held back by the slow one. */
        assert_int_equal(gf.n, EVENTS_QUEUE_MAX + 6);
        assert_int_equal(gs.n, 0);
        assert_int_equal(events_subscription_dropped(slow), 6);
        assert_int_equal(events_subscription_dropped(fast), 0);

        events_subscription_set_ready(slow, true);
        drain(f);
        assert_int_equal(gs.n, EVENTS_QUEUE_MAX);
        for (int i = 0; i < EVENTS_QUEUE_MAX; i++) {
                snprintf(topic, sizeof(topic), "/t/e%d", i);
                assert_string_equal(gs.topics[i], topic); /* the oldest kept, in order; the newest dropped */
        }
        log_set_fd(2);
        n = pread(fd, buf, sizeof(buf) - 1, 0);
        assert_true(n > 0);
        buf[n] = 0;
        assert_non_null(strstr(buf, "level=warning msg=\"event subscriber too slow, events dropped\" dropped=6"));
        unlink(path);
        events_subscription_free(slow);
        events_subscription_free(fast);
        got_clear(&gs);
        got_clear(&gf);
}

static void test_events_forward_as_is(void **state)
{
        struct fx *f = *state;
        struct events_subscription *sub = NULL;
        struct got g = {0};
        _cleanup_error_ struct error *e = NULL;
        Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
        Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
        Containerd__Services__Events__Ttrpc__V1__Envelope tenv =
            CONTAINERD__SERVICES__EVENTS__TTRPC__V1__ENVELOPE__INIT;
        events_envelope env = CONTAINERD__SERVICES__EVENTS__V1__ENVELOPE__INIT;

        assert_int_equal(events_subscribe(f->ex, NULL, 0, on_event, &g, &sub, NULL), 0);
        ts.seconds = 1700000000;
        ts.nanos = 123;
        any.type_url = (char *)"containerd.events.TaskExecAdded";
        any.value.data = (uint8_t *)"\n\002t3\022\002e4";
        any.value.len = 8;
        tenv.timestamp = &ts;
        tenv.namespace_ = (char *)"protons";
        tenv.topic = (char *)"/tasks/exec-added";
        tenv.event = &any;
        assert_int_equal(events_forward_ttrpc(f->ex, &tenv, &e), 0);
        drain(f);
        assert_int_equal(g.n, 1);
        assert_string_equal(g.topics[0], "/tasks/exec-added");
        assert_string_equal(g.nss[0], "protons");
        assert_string_equal(g.last_type, "containerd.events.TaskExecAdded");
        assert_int_equal(g.last_sec, 1700000000); /* the shim's timestamp, not ours */
        assert_int_equal(g.last_nsec, 123);

        env.timestamp = &ts;
        env.namespace_ = (char *)"bad ns";
        env.topic = (char *)"/tasks/exit";
        assert_int_equal(events_forward(f->ex, &env, &e), -EINVAL);
        assert_true(strncmp(error_str(e), "event envelope has invalid namespace: identifier \"bad ns\"", 57) == 0);
        error_free(&e);
        env.namespace_ = (char *)"ns";
        env.timestamp = NULL;
        assert_int_equal(events_forward(f->ex, &env, &e), -EINVAL);
        assert_string_equal(error_str(e), "timestamp must be set on forwarded event: invalid argument");
        error_free(&e);
        env.timestamp = &ts;
        env.topic = (char *)"/tasks/";
        assert_int_equal(events_forward(f->ex, &env, &e), -EINVAL);
        error_free(&e);
        drain(f);
        assert_int_equal(g.n, 1);
        events_subscription_free(sub);
        got_clear(&g);
}

static void test_events_reentrancy(void **state)
{
        struct fx *f = *state;
        struct events_subscription *s1 = NULL, *s2 = NULL;
        struct got g1 = {0}, g2 = {0};

        assert_int_equal(events_subscribe(f->ex, NULL, 0, on_event, &g1, &s1, NULL), 0);
        assert_int_equal(events_subscribe(f->ex, NULL, 0, on_event, &g2, &s2, NULL), 0);
        g1.ex = f->ex;
        g1.republish = true;
        g2.free_self_after = s2;
        g2.free_after = 2;
        assert_int_equal(publish_exit(f, "ns1", "/a", NULL), 0);
        assert_int_equal(publish_exit(f, "ns1", "/b", NULL), 0);
        assert_int_equal(publish_exit(f, "ns1", "/c", NULL), 0);
        drain(f);
        /* s1 saw its own publish after what was already queued; s2 stopped after freeing itself. */
        assert_int_equal(g1.n, 4);
        assert_string_equal(g1.topics[0], "/a");
        assert_string_equal(g1.topics[2], "/c");
        assert_string_equal(g1.topics[3], "/chained");
        assert_int_equal(g2.n, 2);
        assert_null(g2.free_self_after);
        events_subscription_free(s1);
        got_clear(&g1);
        got_clear(&g2);
}

static void test_events_exchange_free_with_subscribers(void **state _unused_)
{
        uv_loop_t loop;
        struct events_exchange *ex;
        struct events_subscription *sub = NULL;
        struct got g = {0};

        assert_int_equal(uv_loop_init(&loop), 0);
        ex = events_exchange_new(&loop);
        assert_int_equal(events_subscribe(ex, NULL, 0, on_event, &g, &sub, NULL), 0);
        assert_int_equal(events_publish(ex, "ns", "/x",
                                        &(Containerd__Events__TaskExit)CONTAINERD__EVENTS__TASK_EXIT__INIT.base, NULL),
                         0);
        ex = events_exchange_free(ex);
        assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
        assert_int_equal(g.n, 0); /* queued envelopes were dropped, not delivered */
        events_subscription_free(sub);
        assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_events_topic_validation),
            cmocka_unit_test_setup_teardown(test_events_publish_packs_any, setup, teardown),
            cmocka_unit_test_setup_teardown(test_events_order_to_every_subscriber, setup, teardown),
            cmocka_unit_test_setup_teardown(test_events_filters, setup, teardown),
            cmocka_unit_test(test_events_filter_syntax),
            cmocka_unit_test_setup_teardown(test_events_subscribe_bad_filter, setup, teardown),
            cmocka_unit_test_setup_teardown(test_events_slow_subscriber_drops, setup, teardown),
            cmocka_unit_test_setup_teardown(test_events_forward_as_is, setup, teardown),
            cmocka_unit_test_setup_teardown(test_events_reentrancy, setup, teardown),
            cmocka_unit_test(test_events_exchange_free_with_subscribers),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}

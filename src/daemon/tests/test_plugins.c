/* The plugin table mechanics: containerd's dependency order, failures recorded for introspection, and
 * dependents of a failed plugin failing with its error. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/daemon.h"
#include "util/cleanup.h"
#include "util/log.h"

static int calls;
static char order_seen[16][64];

static int init_ok(struct daemon *d, struct plugin_info *self, struct error **err)
{
        (void)d;
        (void)err;
        snprintf(order_seen[calls++], sizeof(order_seen[0]), "%s", self->id);
        return 0;
}

static int init_fail(struct daemon *d, struct plugin_info *self, struct error **err)
{
        (void)d;
        snprintf(order_seen[calls++], sizeof(order_seen[0]), "%s", self->id);
        return error_set(err, ENOENT, "devmapper not configured");
}

/* A dependent that asks for its dependency the way builtins.c does. */
static int init_dependent(struct daemon *d, struct plugin_info *self, struct error **err)
{
        snprintf(order_seen[calls++], sizeof(order_seen[0]), "%s", self->id);
        const struct plugin_info *p = daemon_plugin_find(d, "t.snap", NULL);
        if (!p)
                return error_set(err, ENOENT, "no plugins registered for t.snap");
        if (p->init_err < 0)
                return error_set_literal(err, -p->init_err, p->init_msg);
        return 0;
}

static const char *const req_meta[] = {"t.meta", NULL};
static const char *const req_content_snap[] = {"t.content", "t.snap", NULL};
static const char *const req_service[] = {"t.service", NULL};
static const char *const req_all[] = {"*", NULL};

static void test_plugins_dependency_order(void **state)
{
        (void)state;
        /* deliberately listed backwards: dependents before what they need */
        const struct daemon_plugin table[] = {
                {"t.grpc", "version", NULL, false, init_ok},
                {"t.grpc", "ns", req_service, false, init_ok},
                {"t.service", "ns-service", req_meta, false, init_ok},
                {"t.meta", "lmdb", req_content_snap, false, init_ok},
                {"t.snap", "overlay", NULL, true, init_ok},
                {"t.content", "content", NULL, false, init_ok},
                {"t.last", "everything", req_all, false, init_ok},
        };
        size_t *order = NULL;
        daemon_plugins_order(table, ELEMENTSOF(table), &order);
        const char *expect[] = {"version", "content", "overlay", "lmdb", "ns-service", "ns", "everything"};
        for (size_t i = 0; i < ELEMENTSOF(expect); i++)
                assert_string_equal(table[order[i]].id, expect[i]);
        free(order);
}

static void test_plugins_failure_is_recorded(void **state)
{
        (void)state;
        const struct daemon_plugin table[] = {
                {"t.snap", "devmapper", NULL, true, init_fail},
                {"t.service", "needs-snap", (const char *const[]){"t.snap", NULL}, false, init_dependent},
                {"t.grpc", "version", NULL, false, init_ok},
        };
        struct daemon d = {0};
        calls = 0;
        log_set_level(LOG_LEVEL_PANIC); /* keep the test output clean */
        _cleanup_error_ struct error *err = NULL;
        assert_int_equal(daemon_plugins_init(&d, table, ELEMENTSOF(table), &err), 0);
        assert_int_equal(calls, 3);
        assert_int_equal(d.registry.n, 3);

        const struct plugin_info *p = daemon_plugin_find(&d, "t.snap", "devmapper");
        assert_non_null(p);
        assert_int_equal(p->init_err, -ENOENT);
        assert_string_equal(p->init_msg, "devmapper not configured: not found");
        assert_true(p->has_platform);

        p = daemon_plugin_find(&d, "t.service", "needs-snap");
        assert_non_null(p);
        assert_int_equal(p->init_err, -ENOENT);
        assert_string_equal(p->init_msg, "devmapper not configured: not found");
        assert_string_equal(p->requires[0], "t.snap");
        assert_null(p->requires[1]);

        assert_false(daemon_plugin_type_ready(&d, "t.snap"));
        assert_true(daemon_plugin_type_ready(&d, "t.grpc"));
        assert_null(daemon_plugin_find(&d, "t.nothing", NULL));
        services_plugin_registry_clear(&d.registry);
}

static void test_plugins_builtins_are_ordered(void **state)
{
        (void)state;
        /* every plugin of the real table comes after every plugin of each type it requires */
        size_t *order = NULL;
        daemon_plugins_order(daemon_builtins, daemon_builtins_count, &order);
        size_t pos[64];
        assert_true(daemon_builtins_count < ELEMENTSOF(pos));
        for (size_t k = 0; k < daemon_builtins_count; k++)
                pos[order[k]] = k;
        for (size_t i = 0; i < daemon_builtins_count; i++)
                for (size_t r = 0; daemon_builtins[i].requires && daemon_builtins[i].requires[r]; r++)
                        for (size_t j = 0; j < daemon_builtins_count; j++)
                                if (j != i && strcmp(daemon_builtins[j].type, daemon_builtins[i].requires[r]) == 0)
                                        assert_true(pos[j] < pos[i]);
        free(order);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_plugins_dependency_order),
                cmocka_unit_test(test_plugins_failure_is_recorded),
                cmocka_unit_test(test_plugins_builtins_are_ordered),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

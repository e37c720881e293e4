/* Pure parts of krill run/tasks/events: event JSON as ctr prints it, Go time strings, the metrics table,
 * signal names, --env-file, chain IDs. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/events.h"
#include "cli/image_client.h"
#include "cli/run.h"
#include "cli/tasks.h"
#include "github.com/containerd/cgroups/stats/v1/metrics.pb-c.h"
#include "github.com/containerd/containerd/api/events/image.pb-c.h"
#include "github.com/containerd/containerd/api/events/task.pb-c.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/strv.h"

static char *packed_json(const ProtobufCMessage *m)
{
        size_t n = protobuf_c_message_get_packed_size(m);
        uint8_t *buf = xmalloc(n + 1);
        protobuf_c_message_pack(m, buf);
        char *s = cli_event_json(m->descriptor->name, buf, n);
        free(buf);
        return s;
}

static void test_event_json(void **state)
{
        (void)state;
        Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
        ts.seconds = 1700000000;
        ts.nanos = 5000;
        Containerd__Events__TaskExit ex = CONTAINERD__EVENTS__TASK_EXIT__INIT;
        ex.container_id = (char *)"c";
        ex.id = (char *)"c";
        ex.pid = 42;
        ex.exited_at = &ts;
        _cleanup_free_ char *j = packed_json(&ex.base);
        assert_string_equal(j, "{\"container_id\":\"c\",\"id\":\"c\",\"pid\":42,\"exited_at\":\"2023-11-14T22:13:20.000005Z\"}");

        /* a non-nullable stdtime field is printed even when unset */
        Containerd__Events__TaskDelete del = CONTAINERD__EVENTS__TASK_DELETE__INIT;
        del.container_id = (char *)"d";
        del.exit_status = 137;
        _cleanup_free_ char *j2 = packed_json(&del.base);
        assert_string_equal(j2, "{\"container_id\":\"d\",\"exit_status\":137,\"exited_at\":\"0001-01-01T00:00:00Z\"}");

        /* maps become objects with sorted keys */
        Containerd__Services__Images__V1__ImageCreate__LabelsEntry e1 =
                CONTAINERD__SERVICES__IMAGES__V1__IMAGE_CREATE__LABELS_ENTRY__INIT,
                                                                      e2 = e1;
        e1.key = (char *)"b";
        e1.value = (char *)"2";
        e2.key = (char *)"a";
        e2.value = (char *)"1";
        Containerd__Services__Images__V1__ImageCreate__LabelsEntry *ents[] = {&e1, &e2};
        Containerd__Services__Images__V1__ImageCreate ic = CONTAINERD__SERVICES__IMAGES__V1__IMAGE_CREATE__INIT;
        ic.name = (char *)"x";
        ic.labels = ents;
        ic.n_labels = 2;
        _cleanup_free_ char *j3 = packed_json(&ic.base);
        assert_string_equal(j3, "{\"name\":\"x\",\"labels\":{\"a\":\"1\",\"b\":\"2\"}}");

        assert_null(cli_event_json("containerd.events.NoSuch", (const uint8_t *)"", 0));
        assert_null(cli_event_json("containerd.events.TaskExit", (const uint8_t *)"\xff\xff", 2));
}

static void test_event_line(void **state)
{
        (void)state;
        Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
        ts.seconds = 1700000000;
        ts.nanos = 120000000;
        Containerd__Events__TaskStart st = CONTAINERD__EVENTS__TASK_START__INIT;
        st.container_id = (char *)"t1";
        st.pid = 7;
        uint8_t buf[64];
        size_t n = protobuf_c_message_pack(&st.base, buf);
        Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
        any.type_url = (char *)"containerd.events.TaskStart";
        any.value.data = buf;
        any.value.len = n;
        Containerd__Services__Events__V1__Envelope e = CONTAINERD__SERVICES__EVENTS__V1__ENVELOPE__INIT;
        e.timestamp = &ts;
        e.namespace_ = (char *)"default";
        e.topic = (char *)"/tasks/start";
        e.event = &any;
        _cleanup_free_ char *line = cli_event_line(&e);
        assert_string_equal(line, "2023-11-14 22:13:20.12 +0000 UTC default /tasks/start {\"container_id\":\"t1\",\"pid\":7}");

        char t[96];
        cli_go_time_string(0, 0, t, sizeof(t));
        assert_string_equal(t, "1970-01-01 00:00:00 +0000 UTC");
        cli_go_time_string(1, 999999999, t, sizeof(t));
        assert_string_equal(t, "1970-01-01 00:00:01.999999999 +0000 UTC");
}

static void test_metrics_table(void **state)
{
        (void)state;
        Io__Containerd__Cgroups__V1__MemoryEntry usage = IO__CONTAINERD__CGROUPS__V1__MEMORY_ENTRY__INIT;
        usage.usage = 774144;
        usage.limit = 9223372036854771712ULL;
        Io__Containerd__Cgroups__V1__MemoryStat mem = IO__CONTAINERD__CGROUPS__V1__MEMORY_STAT__INIT;
        mem.usage = &usage;
        mem.cache = 40960;
        uint64_t per_cpu[] = {1586927, 108981200};
        Io__Containerd__Cgroups__V1__CPUUsage cu = IO__CONTAINERD__CGROUPS__V1__CPUUSAGE__INIT;
        cu.total = 110568127;
        cu.per_cpu = per_cpu;
        cu.n_per_cpu = 2;
        Io__Containerd__Cgroups__V1__CPUStat cpu = IO__CONTAINERD__CGROUPS__V1__CPUSTAT__INIT;
        cpu.usage = &cu;
        Io__Containerd__Cgroups__V1__PidsStat pids = IO__CONTAINERD__CGROUPS__V1__PIDS_STAT__INIT;
        pids.current = 1;
        Io__Containerd__Cgroups__V1__Metrics m = IO__CONTAINERD__CGROUPS__V1__METRICS__INIT;
        m.memory = &mem;
        m.cpu = &cpu;
        m.pids = &pids;
        uint8_t buf[512];
        size_t n = protobuf_c_message_pack(&m.base, buf);
        Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
        any.type_url = (char *)"io.containerd.cgroups.v1.Metrics";
        any.value.data = buf;
        any.value.len = n;
        Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
        ts.seconds = 1700000000;
        ts.nanos = 968316451;
        Containerd__Types__Metric metric = CONTAINERD__TYPES__METRIC__INIT;
        metric.id = (char *)"t3";
        metric.timestamp = &ts;
        metric.data = &any;

        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        assert_int_equal(cli_tasks_print_metrics(f, &metric, NULL), 0);
        fclose(f);
        assert_string_equal(out, "ID    TIMESTAMP                                  \n"
                                 "t3    2023-11-14 22:13:20.968316451 +0000 UTC    \n"
                                 "\n"
                                 "METRIC                   VALUE                  \n"
                                 "memory.usage_in_bytes    774144                 \n"
                                 "memory.limit_in_bytes    9223372036854771712    \n"
                                 "memory.stat.cache        40960                  \n"
                                 "cpuacct.usage            110568127              \n"
                                 "cpuacct.usage_percpu     [1586927 108981200]    \n"
                                 "pids.current             1                      \n"
                                 "pids.limit               0                      \n");
        free(out);

        struct error *err = NULL;
        any.type_url = (char *)"io.containerd.cgroups.v2.Metrics";
        f = open_memstream(&out, &len);
        assert_int_equal(cli_tasks_print_metrics(f, &metric, &err), -ENOTSUP);
        fclose(f);
        free(out);
        error_free(&err);
}

static void test_signals(void **state)
{
        (void)state;
        assert_int_equal(cli_parse_signal("9"), SIGKILL);
        assert_int_equal(cli_parse_signal("SIGKILL"), SIGKILL);
        assert_int_equal(cli_parse_signal("term"), SIGTERM);
        assert_int_equal(cli_parse_signal("SIGRTMAX+1"), -EINVAL);
        assert_int_equal(cli_parse_signal("0"), -EINVAL);
        assert_int_equal(cli_parse_signal("65"), -EINVAL);
        assert_int_equal(cli_parse_signal(""), -EINVAL);
        assert_string_equal(cli_task_status_name(2), "RUNNING");
        assert_string_equal(cli_task_status_name(3), "STOPPED");
        assert_string_equal(cli_task_status_name(99), "UNKNOWN");
}

static void test_env_file_and_chain(void **state)
{
        (void)state;
        char path[] = "/tmp/test-run-env-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        const char *text = "# comment\nA=1\n\nB=two words\r\nC\n";
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
        char **env = NULL;
        assert_int_equal(cli_run_read_env_file(path, &env, NULL), 0);
        assert_int_equal(strv_length(env), 3);
        assert_string_equal(env[0], "A=1");
        assert_string_equal(env[1], "B=two words");
        assert_string_equal(env[2], "C");
        strv_free(env);
        unlink(path);
        struct error *err = NULL;
        env = NULL;
        assert_int_equal(cli_run_read_env_file(path, &env, &err), -ENOENT);
        error_free(&err);

        /* identity chain IDs (image-spec): one layer is its diff ID */
        char *one[] = {(char *)"sha256:aa", NULL};
        _cleanup_free_ char *c1 = cli_image_chain_id(one);
        assert_string_equal(c1, "sha256:aa");
        char *two[] = {(char *)"sha256:aa", (char *)"sha256:bb", NULL};
        _cleanup_free_ char *c2 = cli_image_chain_id(two);
        /* sha256("sha256:aa sha256:bb") */
        assert_string_equal(c2, "sha256:b68ad689d6d1ec110ea1c13617437ad6f3766d4b3b309f6a603a222e07a0164f");
        assert_null(cli_image_chain_id(NULL));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_event_json),   cmocka_unit_test(test_event_line),
                cmocka_unit_test(test_metrics_table), cmocka_unit_test(test_signals),
                cmocka_unit_test(test_env_file_and_chain),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Drives the task manager against Debian's real containerd-shim-runc-v2 and runc: create, start, wait,
 * delete, a failing create, and restart recovery (Connect on a fresh manager). The runc shim hard-codes
 * /run/containerd/s, so the test moves itself into a private mount namespace with a tmpfs on /run first
 * (DESIGN.md section 8). Skips (77) when not root or when the shim or runc is missing. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "github.com/containerd/containerd/api/services/ttrpc/events/v1/events.pb-c.h"
#include "github.com/containerd/containerd/runtime/v2/task/shim.pb-c.h"
#include "oci/spec.h"
#include "runtime/task_manager.h"
#include "util/alloc.h"
#include "util/fs.h"

static char *tmp;
static uv_loop_t loop;
static struct ttrpc_server *events_server;
static int forwarded_events;
static const char *runtime_name;
static char *shim_dir;

/* The daemon's events endpoint (Events/Forward over ttrpc). Without it the runc shim retries publishing for
 * ~15 s before it exits; with it, shims leave as soon as they are shut down. */
static void on_forward(struct ttrpc_call *c, const ProtobufCMessage *req, void *data)
{
        (void)req;
        (void)data;
        forwarded_events++;
        ttrpc_call_reply(c, NULL);
}

struct result {
        bool done;
        int r;
        uint32_t pid;
        uint32_t exit_status;
        char *msg;
        ProtobufCMessage *resp;
        int adopted, cleaned;
};

static void run_until(struct result *res)
{
        while (!res->done)
                uv_run(&loop, UV_RUN_ONCE);
}

static void on_create(int r, uint32_t pid, const struct error *e, void *data)
{
        struct result *res = data;
        res->done = true;
        res->r = r;
        res->pid = pid;
        if (e)
                res->msg = xstrdup(error_str(e));
}

static void on_reply(int r, ProtobufCMessage *resp, const struct error *e, void *data)
{
        struct result *res = data;
        res->done = true;
        res->r = r;
        res->resp = resp;
        if (e)
                res->msg = xstrdup(error_str(e));
}

static void on_delete(int r, const struct task_delete_result *d, const struct error *e, void *data)
{
        struct result *res = data;
        res->done = true;
        res->r = r;
        if (d) {
                res->pid = d->pid;
                res->exit_status = d->exit_status;
        }
        if (e)
                res->msg = xstrdup(error_str(e));
}

static void on_recover(int adopted, int cleaned, void *data)
{
        struct result *res = data;
        res->done = true;
        res->adopted = adopted;
        res->cleaned = cleaned;
}

static void result_reset(struct result *res)
{
        if (res->resp)
                protobuf_c_message_free_unpacked(res->resp, NULL);
        free(res->msg);
        memset(res, 0, sizeof(*res));
}

static struct task_manager *manager_new(void)
{
        char *state = xasprintf("%s/state", tmp), *root = xasprintf("%s/root", tmp);
        char *addr = xasprintf("%s/krill.sock", tmp), *taddr = xasprintf("%s/krill.sock.ttrpc", tmp);
        struct task_manager_config cfg = {.state_dir = state, .root_dir = root, .address = addr,
                                          .ttrpc_address = taddr, .publish_binary = "/bin/true", .self_dir = shim_dir};
        struct task_manager *tm = task_manager_new(&loop, &cfg);
        free(state);
        free(root);
        free(addr);
        free(taddr);
        return tm;
}

static int create_task(struct task_manager *tm, const char *id, char *const *args, struct result *res)
{
        json_t *spec = oci_spec_new_default("testns", id);
        oci_spec_set_args(spec, args);
        char *specs = oci_spec_dump(spec);
        json_decref(spec);
        char *rootfs = xasprintf("%s/rootfs", tmp);
        char *out = xasprintf("file://%s/%s.out", tmp, id);
        Containerd__Types__Mount m = CONTAINERD__TYPES__MOUNT__INIT;
        char *opts[] = {"rbind", "ro"};
        m.type = "bind";
        m.source = rootfs;
        m.n_options = 2;
        m.options = opts;
        Containerd__Types__Mount *mounts[] = {&m};
        Containerd__Task__V2__CreateTaskRequest req = CONTAINERD__TASK__V2__CREATE_TASK_REQUEST__INIT;
        req.n_rootfs = 1;
        req.rootfs = mounts;
        req.stdout = out;
        req.stderr = out;
        struct task_create_params p = {.ns = "testns", .id = id, .runtime = runtime_name,
                                       .spec = (const uint8_t *)specs, .spec_len = strlen(specs),
                                       .create_req = &req.base};
        struct error *e = NULL;
        int r = task_manager_create(tm, &p, on_create, res, &e);
        if (r < 0) {
                fprintf(stderr, "create: %s\n", error_str(e));
                error_free(&e);
        }
        free(specs);
        free(rootfs);
        free(out);
        return r;
}

/* True when path has no entries (or does not exist). */
static bool dir_empty(const char *path)
{
        DIR *d = opendir(path);
        if (!d)
                return errno == ENOENT;
        struct dirent *de;
        int n = 0;
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        n++;
        closedir(d);
        return n == 0;
}

static void call(struct task_manager *tm, const char *id, const char *method, const ProtobufCMessage *req,
                 const ProtobufCMessageDescriptor *desc, struct result *res)
{
        struct error *e = NULL;
        int r = task_manager_call(tm, "testns", id, method, req, desc, 0, on_reply, res, &e);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", method, error_str(e));
                error_free(&e);
                res->done = true;
                res->r = r;
                return;
        }
        run_until(res);
}

static void test_task_manager_run_wait_delete(void **s)
{
        (void)s;
        struct task_manager *tm = manager_new();
        struct result res = {0};
        char *args[] = {"/bin/busybox", "sh", "-c", "echo hello from runc; exit 3", NULL};
        assert_int_equal(create_task(tm, "t1", args, &res), 0);
        run_until(&res);
        if (res.r < 0)
                fprintf(stderr, "create failed: %s\n", res.msg);
        assert_int_equal(res.r, 0);
        assert_true(res.pid > 0);
        assert_true(task_manager_exists(tm, "testns", "t1"));
        result_reset(&res);

        /* Wait first, then Start, on the same shim connection: both must complete. */
        struct result wres = {0};
        Containerd__Task__V2__WaitRequest wr = CONTAINERD__TASK__V2__WAIT_REQUEST__INIT;
        wr.id = "t1";
        struct error *e = NULL;
        assert_int_equal(task_manager_call(tm, "testns", "t1", "Wait", &wr.base,
                                           &containerd__task__v2__wait_response__descriptor, 0, on_reply, &wres, &e),
                         0);
        Containerd__Task__V2__StartRequest sr = CONTAINERD__TASK__V2__START_REQUEST__INIT;
        sr.id = "t1";
        call(tm, "t1", "Start", &sr.base, &containerd__task__v2__start_response__descriptor, &res);
        assert_int_equal(res.r, 0);
        result_reset(&res);
        run_until(&wres);
        assert_int_equal(wres.r, 0);
        assert_int_equal(((Containerd__Task__V2__WaitResponse *)wres.resp)->exit_status, 3);
        result_reset(&wres);

        char *outp = xasprintf("%s/t1.out", tmp);
        char *data = NULL;
        assert_int_equal(fs_read_file(AT_FDCWD, outp, 4096, &data, NULL, NULL), 0);
        assert_string_equal(data, "hello from runc\n");
        free(data);
        free(outp);

        assert_int_equal(task_manager_delete(tm, "testns", "t1", on_delete, &res, NULL), 0);
        run_until(&res);
        assert_int_equal(res.r, 0);
        assert_int_equal(res.exit_status, 3);
        assert_false(task_manager_exists(tm, "testns", "t1"));
        assert_true(forwarded_events >= 3); /* /tasks/create, /tasks/start, /tasks/exit at least */
        char *bundle = xasprintf("%s/state/io.containerd.runtime.v2.task/testns/t1", tmp);
        assert_int_equal(access(bundle, F_OK), -1);
        free(bundle);
        result_reset(&res);

        /* The same id again at once: Delete answered before the old shim exited, so this create waits for
         * that exit (the shim socket name derives from ns/id) and then gets a fresh shim. */
        char *args2[] = {"/bin/busybox", "true", NULL};
        assert_int_equal(create_task(tm, "t1", args2, &res), 0);
        run_until(&res);
        assert_int_equal(res.r, 0);
        assert_true(task_manager_exists(tm, "testns", "t1"));
        result_reset(&res);
        assert_int_equal(task_manager_delete(tm, "testns", "t1", on_delete, &res, NULL), 0);
        run_until(&res);
        assert_int_equal(res.r, 0);
        result_reset(&res);
        /* The bundles were moved to the trash and are removed in the background. */
        char *trash = xasprintf("%s/state/io.containerd.runtime.v2.task/.trash", tmp);
        char *wtrash = xasprintf("%s/root/io.containerd.runtime.v2.task/.trash", tmp);
        for (int i = 0; i < 400 && !(dir_empty(trash) && dir_empty(wtrash)); i++)
                uv_run(&loop, UV_RUN_ONCE); /* each trash removal is a worker job: its completion wakes us */
        assert_true(dir_empty(trash));
        assert_true(dir_empty(wtrash));
        free(trash);
        free(wtrash);

        /* Unknown task. */
        assert_int_equal(task_manager_call(tm, "testns", "nope", "State", &sr.base, NULL, 0, on_reply, &res, &e),
                         -ENOENT);
        error_free(&e);
        task_manager_free(tm);
        uv_run(&loop, UV_RUN_NOWAIT);
}

static void test_task_manager_create_failure_cleans_up(void **s)
{
        (void)s;
        struct task_manager *tm = manager_new();
        struct result res = {0};
        char *args[] = {"/no/such/binary", NULL};
        assert_int_equal(create_task(tm, "bad", args, &res), 0);
        run_until(&res);
        assert_true(res.r < 0);
        assert_non_null(res.msg);
        assert_false(task_manager_exists(tm, "testns", "bad"));
        result_reset(&res);
        /* Let the cleanup worker finish, then the bundle must be gone. */
        for (int i = 0; i < 200; i++) {
                char *bundle = xasprintf("%s/state/io.containerd.runtime.v2.task/testns/bad", tmp);
                int gone = access(bundle, F_OK) < 0;
                free(bundle);
                if (gone)
                        break;
                uv_run(&loop, UV_RUN_ONCE);
        }
        char *bundle = xasprintf("%s/state/io.containerd.runtime.v2.task/testns/bad", tmp);
        assert_int_equal(access(bundle, F_OK), -1);
        free(bundle);
        task_manager_free(tm);
        uv_run(&loop, UV_RUN_NOWAIT);
}

static void test_task_manager_recover_running_task(void **s)
{
        (void)s;
        struct task_manager *tm = manager_new();
        struct result res = {0};
        char *args[] = {"/bin/busybox", "sleep", "60", NULL};
        assert_int_equal(create_task(tm, "long", args, &res), 0);
        run_until(&res);
        assert_int_equal(res.r, 0);
        uint32_t pid = res.pid;
        result_reset(&res);
        Containerd__Task__V2__StartRequest sr = CONTAINERD__TASK__V2__START_REQUEST__INIT;
        sr.id = "long";
        call(tm, "long", "Start", &sr.base, &containerd__task__v2__start_response__descriptor, &res);
        assert_int_equal(res.r, 0);
        result_reset(&res);
        /* The daemon goes away: connections close, the shim and the container keep running. */
        task_manager_free(tm);
        uv_run(&loop, UV_RUN_NOWAIT);

        tm = manager_new();
        task_manager_recover(tm, on_recover, &res);
        run_until(&res);
        assert_int_equal(res.adopted, 1);
        assert_int_equal(res.cleaned, 0);
        result_reset(&res);
        assert_true(task_manager_exists(tm, "testns", "long"));

        Containerd__Task__V2__StateRequest st = CONTAINERD__TASK__V2__STATE_REQUEST__INIT;
        st.id = "long";
        call(tm, "long", "State", &st.base, &containerd__task__v2__state_response__descriptor, &res);
        assert_int_equal(res.r, 0);
        Containerd__Task__V2__StateResponse *state = (void *)res.resp;
        assert_int_equal(state->pid, pid);
        assert_int_equal(state->status, CONTAINERD__V1__TYPES__STATUS__RUNNING);
        result_reset(&res);

        Containerd__Task__V2__KillRequest kr = CONTAINERD__TASK__V2__KILL_REQUEST__INIT;
        kr.id = "long";
        kr.signal = 9;
        call(tm, "long", "Kill", &kr.base, NULL, &res);
        assert_int_equal(res.r, 0);
        result_reset(&res);
        Containerd__Task__V2__WaitRequest wr = CONTAINERD__TASK__V2__WAIT_REQUEST__INIT;
        wr.id = "long";
        call(tm, "long", "Wait", &wr.base, &containerd__task__v2__wait_response__descriptor, &res);
        assert_int_equal(res.r, 0);
        assert_int_equal(((Containerd__Task__V2__WaitResponse *)res.resp)->exit_status, 137);
        result_reset(&res);
        assert_int_equal(task_manager_delete(tm, "testns", "long", on_delete, &res, NULL), 0);
        run_until(&res);
        assert_int_equal(res.r, 0);
        result_reset(&res);
        task_manager_free(tm);
        uv_run(&loop, UV_RUN_NOWAIT);
}

static int setup(void **s)
{
        (void)s;
        tmp = xstrdup("/tmp/krill-tm-test-XXXXXX");
        assert_non_null(mkdtemp(tmp));
        char *bin = xasprintf("%s/rootfs/bin", tmp);
        assert_int_equal(fs_mkdir_p(AT_FDCWD, bin, 0755, NULL), 0);
        /* Mount points runc needs in a read-only rootfs. */
        char *cmd = xasprintf("cp /bin/busybox %s/busybox && mkdir -p %s/../proc %s/../dev %s/../sys %s/../run %s/../tmp",
                              bin, bin, bin, bin, bin, bin);
        assert_int_equal(system(cmd), 0);
        free(cmd);
        free(bin);
        assert_int_equal(uv_loop_init(&loop), 0);
        events_server = ttrpc_server_new(&loop);
        struct ttrpc_method m = {.service = "containerd.services.events.ttrpc.v1.Events", .method = "Forward",
                                 .input = &containerd__services__events__ttrpc__v1__forward_request__descriptor,
                                 .handler = on_forward};
        assert_int_equal(ttrpc_server_add_method(events_server, &m), 0);
        char *taddr = xasprintf("%s/krill.sock.ttrpc", tmp);
        assert_int_equal(ttrpc_server_listen_unix(events_server, taddr, true, NULL), 0);
        free(taddr);
        return 0;
}

/* runc removes each container's cgroup but not the "/testns" parent the spec's cgroupsPath created: remove
 * it from every hierarchy (rmdir only succeeds on an empty cgroup, so nothing else is touched). */
static void remove_test_cgroups(void)
{
        DIR *d = opendir("/sys/fs/cgroup");
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                char *p = xasprintf("/sys/fs/cgroup/%s/testns", de->d_name);
                (void)rmdir(p);
                free(p);
        }
        closedir(d);
        (void)rmdir("/sys/fs/cgroup/testns"); /* cgroup v2 only */
}

static int teardown(void **s)
{
        (void)s;
        remove_test_cgroups();
        ttrpc_server_close(events_server, NULL, NULL);
        /* Until nothing is left: the manager finishes background work (trashed bundles, shim exits) after
         * task_manager_free() has returned. */
        uv_run(&loop, UV_RUN_DEFAULT);
        ttrpc_server_free(events_server);
        (void)uv_loop_close(&loop);
        char *cmd = xasprintf("rm -rf '%s'", tmp);
        if (system(cmd) != 0)
                fprintf(stderr, "cleanup of %s failed\n", tmp);
        free(cmd);
        free(tmp);
        return 0;
}

int main(void)
{
        if (geteuid() != 0) {
                printf("skip: needs root (runc)\n");
                return 77;
        }
        if (access("/usr/bin/containerd-shim-runc-v2", X_OK) < 0 || access("/bin/busybox", X_OK) < 0) {
                printf("skip: containerd-shim-runc-v2 or busybox not installed\n");
                return 77;
        }
        /* Private mount namespace with our own /run: the runc shim uses /run/containerd/s and /run/containerd/runc. */
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
            mount("tmpfs", "/run", "tmpfs", 0, "mode=0755") < 0) {
                printf("skip: cannot create a private mount namespace: %s\n", strerror(errno));
                return 77;
        }
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_task_manager_run_wait_delete),
                cmocka_unit_test(test_task_manager_create_failure_cleans_up),
                cmocka_unit_test(test_task_manager_recover_running_task),
        };
        /* The same scenarios with both shims: Debian's runc shim and ours (built next to this test). */
        runtime_name = "io.containerd.runc.v2";
        int failed = cmocka_run_group_tests_name("runc-shim", tests, setup, teardown);
        shim_dir = xstrdup(SHIM_BUILD_DIR);
        runtime_name = "io.containerd.krill.v2";
        char *ours = xasprintf("%s/containerd-shim-krill-v2", shim_dir);
        if (access(ours, X_OK) == 0)
                failed += cmocka_run_group_tests_name("krill-shim", tests, setup, teardown);
        else {
                printf("krill shim not built at %s\n", ours);
                failed++;
        }
        free(ours);
        free(shim_dir);
        return failed;
}

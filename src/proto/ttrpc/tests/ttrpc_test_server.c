/* A tiny ttrpc server on the krill library for wire-compatibility checks with an independent client
 * (tests/integration/test_ttrpc_interop.py drives it with /work/shared/tools/ttrpc_client.py).
 * Usage: ttrpc_test_server SOCKET_PATH. Serves containerd.task.v2.Task Connect, State (answers NotFound, like a
 * shim before Create) and Shutdown (Empty, then exits). Prints "ready" on stdout once listening. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "github.com/containerd/containerd/runtime/v2/task/shim.pb-c.h"
#include "proto/ttrpc/ttrpc.h"
#include "util/cleanup.h"

#define TASK "containerd.task.v2.Task"

static void h_connect(struct ttrpc_call *call, const ProtobufCMessage *req _unused_, void *userdata _unused_)
{
        Containerd__Task__V2__ConnectResponse out = CONTAINERD__TASK__V2__CONNECT_RESPONSE__INIT;
        const char *ns = ttrpc_call_metadata(call, "containerd-namespace-ttrpc");

        out.shim_pid = (uint32_t)getpid();
        /* Echo whether the metadata arrived, so the test can see it on the wire. */
        out.task_pid = ns && strcmp(ns, "protons") == 0 ? 1 : 0;
        out.version = (char *)(ttrpc_call_timeout_nano(call) > 0 ? "timeout" : "none");
        ttrpc_call_reply(call, &out.base);
}

static void h_state(struct ttrpc_call *call, const ProtobufCMessage *req _unused_, void *userdata _unused_)
{
        ttrpc_call_fail_status(call, GRPC_NOT_FOUND, "container not created: not found");
}

static void h_shutdown(struct ttrpc_call *call, const ProtobufCMessage *req _unused_, void *userdata)
{
        struct ttrpc_server *s = userdata;

        ttrpc_call_reply(call, NULL);
        /* Let the reply drain before the connection goes: close once the write queue is flushed by the loop. */
        ttrpc_server_set_idle_cb(s, NULL, NULL);
        ttrpc_server_close(s, NULL, NULL);
}

int main(int argc, char **argv)
{
        _cleanup_error_ struct error *e = NULL;
        struct ttrpc_server *s;
        uv_loop_t *loop = uv_default_loop();

        if (argc != 2) {
                fprintf(stderr, "usage: %s SOCKET\n", argv[0]);
                return 2;
        }
        signal(SIGPIPE, SIG_IGN);
        s = ttrpc_server_new(loop);
        const struct ttrpc_method m[] = {
            {TASK, "Connect", &containerd__task__v2__connect_request__descriptor, h_connect, s},
            {TASK, "State", &containerd__task__v2__state_request__descriptor, h_state, s},
            {TASK, "Shutdown", &containerd__task__v2__shutdown_request__descriptor, h_shutdown, s},
        };
        for (size_t i = 0; i < ELEMENTSOF(m); i++)
                (void)ttrpc_server_add_method(s, &m[i]);
        if (ttrpc_server_listen_unix(s, argv[1], true, &e) < 0) {
                fprintf(stderr, "listen: %s\n", error_str(e));
                return 1;
        }
        printf("ready\n");
        fflush(stdout);
        uv_run(loop, UV_RUN_DEFAULT);
        ttrpc_server_free(s);
        uv_run(loop, UV_RUN_DEFAULT);
        (void)uv_loop_close(loop);
        return 0;
}

/* Feeds arbitrary bytes into a ttrpc server connection's input path (frame reader, Request decoding, stream
 * id checks, method lookup, payload decoding with a real shim.proto input type, replies). The connection has
 * no socket: replies are built and dropped. The first byte picks how the input is split into reads. */
#include <stddef.h>
#include <stdint.h>

#include "github.com/containerd/containerd/runtime/v2/task/shim.pb-c.h"
#include "proto/ttrpc/ttrpc-internal.h"
#include "util/cleanup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void h_state(struct ttrpc_call *call, const ProtobufCMessage *req, void *userdata _unused_)
{
        const Containerd__Task__V2__StateRequest *in = (const Containerd__Task__V2__StateRequest *)req;
        Containerd__Task__V2__StateResponse out = CONTAINERD__TASK__V2__STATE_RESPONSE__INIT;

        out.id = in->id;
        out.exec_id = in->exec_id;
        out.bundle = (char *)ttrpc_call_metadata(call, "containerd-namespace-ttrpc");
        ttrpc_call_reply(call, &out.base);
}

static void h_kill(struct ttrpc_call *call, const ProtobufCMessage *req _unused_, void *userdata _unused_)
{
        ttrpc_call_fail_status(call, GRPC_NOT_FOUND, "process not found: not found");
}

static void h_wait(struct ttrpc_call *call _unused_, const ProtobufCMessage *req _unused_, void *userdata _unused_)
{
        /* Not answered: the server replies Internal when the last reference goes. */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        uv_loop_t loop;
        struct ttrpc_server *s;
        struct ttrpc_conn *conn;
        size_t chunk;

        if (size < 1)
                return 0;
        chunk = (size_t)data[0] + 1;
        data++;
        size--;
        if (uv_loop_init(&loop) < 0)
                return 0;
        s = ttrpc_server_new(&loop);
        const struct ttrpc_method m[] = {
            {"containerd.task.v2.Task", "State", &containerd__task__v2__state_request__descriptor, h_state, NULL},
            {"containerd.task.v2.Task", "Kill", &containerd__task__v2__kill_request__descriptor, h_kill, NULL},
            {"containerd.task.v2.Task", "Wait", &containerd__task__v2__wait_request__descriptor, h_wait, NULL},
        };
        for (size_t i = 0; i < ELEMENTSOF(m); i++)
                (void)ttrpc_server_add_method(s, &m[i]);
        conn = ttrpc_server_conn_new_detached(s);
        for (size_t off = 0; off < size; off += chunk)
                ttrpc_conn_feed(conn, data + off, size - off < chunk ? size - off : chunk);
        ttrpc_conn_release(conn);
        ttrpc_server_free(s);
        (void)uv_run(&loop, UV_RUN_DEFAULT);
        (void)uv_loop_close(&loop);
        return 0;
}

/* Fuzzes the shim's ttrpc server (src/shim/rpc.c) as a peer would drive it: the input is the byte stream a
 * client sends on one connection (frames, Request envelopes, every Task method's request payload). Handlers
 * answer at once, late (referenced past the handler) or never, as the real ones can. The stream ends with
 * EOF; the loop stops once the server has closed its end, so no timing is involved. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "krill-api.h"
#include "shim/rpc.h"
#include "util/cleanup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fz {
        struct shim_call *held[8];
        int n_held;
};

static void h_any(struct shim_call *call, const ProtobufCMessage *req, void *userdata)
{
        struct fz *f = userdata;
        size_t len = protobuf_c_message_get_packed_size(req);

        /* vary the answer with the request so every path is reachable from the input */
        switch (len % 4) {
        case 0:
                shim_call_reply(call, req); /* echo: a reply with payload */
                break;
        case 1:
                shim_call_fail_status(call, GRPC_NOT_FOUND, "not found");
                break;
        case 2:
                if (f->n_held < 8)
                        f->held[f->n_held++] = shim_call_ref(call);
                break;
        default:
                break; /* no answer: the server fails the call */
        }
}

static const struct shim_method methods[] = {
    {"State", &containerd__task__v2__state_request__descriptor, h_any},
    {"Create", &containerd__task__v2__create_task_request__descriptor, h_any},
    {"Start", &containerd__task__v2__start_request__descriptor, h_any},
    {"Delete", &containerd__task__v2__delete_request__descriptor, h_any},
    {"Pids", &containerd__task__v2__pids_request__descriptor, h_any},
    {"Pause", &containerd__task__v2__pause_request__descriptor, h_any},
    {"Resume", &containerd__task__v2__resume_request__descriptor, h_any},
    {"Checkpoint", &containerd__task__v2__checkpoint_task_request__descriptor, h_any},
    {"Kill", &containerd__task__v2__kill_request__descriptor, h_any},
    {"Exec", &containerd__task__v2__exec_process_request__descriptor, h_any},
    {"ResizePty", &containerd__task__v2__resize_pty_request__descriptor, h_any},
    {"CloseIO", &containerd__task__v2__close_iorequest__descriptor, h_any},
    {"Update", &containerd__task__v2__update_task_request__descriptor, h_any},
    {"Wait", &containerd__task__v2__wait_request__descriptor, h_any},
    {"Stats", &containerd__task__v2__stats_request__descriptor, h_any},
    {"Connect", &containerd__task__v2__connect_request__descriptor, h_any},
    {"Shutdown", &containerd__task__v2__shutdown_request__descriptor, h_any},
};

/* The client end: drain replies; the server closing its end (read 0) ends the run. */
static void on_peer(struct shim_watch *w, uint32_t events)
{
        uint8_t buf[4096];
        ssize_t n;

        (void)events;
        while ((n = read(w->fd, buf, sizeof(buf))) > 0)
                ;
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                shim_loop_stop(w->loop);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct shim_loop loop;
        struct shim_watch peer;
        struct shim_rpc *rpc;
        struct fz f = {0};
        int sv[2];

        if (size > 65536 || shim_loop_init(&loop) < 0)
                return 0;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
                shim_loop_close(&loop);
                return 0;
        }
        rpc = shim_rpc_new(&loop, -1, "containerd.task.v2.Task", methods, ELEMENTSOF(methods), &f);
        shim_rpc_adopt(rpc, sv[0]);
        /* the socket buffer (>= 200 KB) takes the whole input before the loop runs */
        if (size > 0 && write(sv[1], data, size) != (ssize_t)size)
                abort();
        (void)shutdown(sv[1], SHUT_WR);
        shim_watch_init(&loop, &peer, sv[1], on_peer, NULL);
        (void)shim_watch_set(&peer, EPOLLIN | EPOLLRDHUP);
        (void)shim_loop_run(&loop);
        /* late answers after the connection is gone go into the void */
        for (int i = 0; i < f.n_held; i++) {
                shim_call_reply(f.held[i], NULL);
                shim_call_unref(f.held[i]);
        }
        shim_watch_stop(&peer);
        close(sv[1]);
        shim_rpc_free(rpc);
        shim_loop_close(&loop);
        return 0;
}

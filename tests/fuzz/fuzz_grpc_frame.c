/* Fuzzes the gRPC server's input path: arbitrary bytes arrive as one client connection (over a socketpair)
 * into a server with unary, server-, client- and bidi-streaming methods registered. Checks that nothing
 * crashes or leaks and that shutdown always completes (every call and handle is released). */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "github.com/containerd/containerd/api/services/content/v1/content.pb-c.h"
#include "proto/grpc/grpc.h"

typedef Containerd__Services__Content__V1__WriteContentRequest Req;
typedef Containerd__Services__Content__V1__WriteContentResponse Resp;

static void reply_one(struct grpc_call *call, const ProtobufCMessage *req)
{
        Resp resp = CONTAINERD__SERVICES__CONTENT__V1__WRITE_CONTENT_RESPONSE__INIT;
        resp.offset = ((const Req *)req)->offset;
        resp.total = (int64_t)((const Req *)req)->data.len;
        (void)grpc_call_send(call, &resp.base);
}

static void on_unary(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        (void)userdata;
        if (((const Req *)req)->action == CONTAINERD__SERVICES__CONTENT__V1__WRITE_ACTION__COMMIT) {
                grpc_call_finish(call, GRPC_ALREADY_EXISTS, "fuzz: already\n%exists");
                return;
        }
        Resp resp = CONTAINERD__SERVICES__CONTENT__V1__WRITE_CONTENT_RESPONSE__INIT;
        grpc_call_reply(call, &resp.base);
}

static void on_server_stream(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        (void)userdata;
        for (int i = 0; i < 3; i++)
                reply_one(call, req);
        grpc_call_finish(call, GRPC_OK, NULL);
}

static void on_bidi(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        (void)userdata;
        if (((const Req *)req)->action == CONTAINERD__SERVICES__CONTENT__V1__WRITE_ACTION__COMMIT)
                grpc_call_finish(call, GRPC_OK, NULL); /* early close before the client's END_STREAM */
        else
                reply_one(call, req);
}

/* Client stream: never answers before the half-close, and holds a reference meanwhile, so cancellation
 * paths (RST_STREAM, connection close, shutdown) must release it through the cancel callback. */
static void on_cs_cancel(struct grpc_call *call, void *userdata)
{
        (void)userdata;
        grpc_call_unref(call);
}

static void on_client_stream(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        (void)req;
        (void)userdata;
        if (!grpc_call_get_data(call)) {
                grpc_call_set_data(call, call);
                grpc_call_ref(call);
                grpc_call_set_cancel_cb(call, on_cs_cancel, NULL);
        }
}

static void on_client_stream_done(struct grpc_call *call, void *userdata)
{
        (void)userdata;
        Resp resp = CONTAINERD__SERVICES__CONTENT__V1__WRITE_CONTENT_RESPONSE__INIT;
        grpc_call_reply(call, &resp.base);
        if (grpc_call_get_data(call))
                grpc_call_unref(call);
}

static void drain(int fd)
{
        uint8_t buf[65536];
        while (read(fd, buf, sizeof(buf)) > 0)
                ;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size > 1 << 20)
                return 0;
        /* libuv writes with write(2): a process serving sockets ignores SIGPIPE (the daemon does too). */
        signal(SIGPIPE, SIG_IGN);
        uv_loop_t loop;
        if (uv_loop_init(&loop) != 0)
                abort();
        /* Small limits so that size checks are reachable with small inputs. */
        struct grpc_server_options o = {.max_recv_msg = 4096, .max_send_msg = 4096, .max_streams = 8};
        struct grpc_server *s = grpc_server_new(&loop, &o);
        const ProtobufCMessageDescriptor *in = &containerd__services__content__v1__write_content_request__descriptor;
        const struct grpc_method methods[] = {
            {"/fuzz.Echo/Unary", GRPC_METHOD_UNARY, in, on_unary, NULL, NULL},
            {"/fuzz.Echo/ServerStream", GRPC_METHOD_SERVER_STREAM, in, on_server_stream, NULL, NULL},
            {"/fuzz.Echo/ClientStream", GRPC_METHOD_CLIENT_STREAM, in, on_client_stream, on_client_stream_done, NULL},
            {"/fuzz.Echo/Bidi", GRPC_METHOD_BIDI_STREAM, in, on_bidi, NULL, NULL},
        };
        for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
                if (grpc_server_add_method(s, &methods[i]) != 0)
                        abort();

        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
                abort();
        if (grpc_server_add_connection(s, sv[0], NULL) < 0)
                abort();
        size_t off = 0;
        for (int spins = 0; off < size && spins < 100000; spins++) {
                size_t n = size - off < 4096 ? size - off : 4096;
                ssize_t w = send(sv[1], data + off, n, MSG_NOSIGNAL);
                if (w > 0)
                        off += (size_t)w;
                else if (w < 0 && errno != EAGAIN)
                        break; /* the server closed the connection (malformed input) */
                uv_run(&loop, UV_RUN_NOWAIT);
                drain(sv[1]);
        }
        /* Let the server see everything and answer, then end the connection. */
        for (int i = 0; i < 8; i++) {
                uv_run(&loop, UV_RUN_NOWAIT);
                drain(sv[1]);
        }
        (void)shutdown(sv[1], SHUT_WR);
        for (int i = 0; i < 4; i++) {
                uv_run(&loop, UV_RUN_NOWAIT);
                drain(sv[1]);
        }
        /* Gone peer: shutdown must not wait for it to read the GOAWAY. */
        close(sv[1]);
        grpc_server_shutdown(s, NULL, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        grpc_server_free(s);
        if (uv_loop_close(&loop) != 0)
                abort(); /* a handle (timer, connection) leaked */
        return 0;
}

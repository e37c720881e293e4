/* Fuzzes the blocking gRPC client's response parsing: arbitrary bytes play the server side of a socketpair.
 * Input layout: 2 bytes big-endian split point k, then the server byte stream. data[0..k) is available
 * during the handshake (it should carry SETTINGS), the rest arrives after the client opened three streams
 * (ids 1, 3, 5: two unary-style, one server stream). Checks for crashes, leaks and hangs. Seeds: server
 * bytes captured through a relay from tests/tools/grpc_echo_server (Version, Version or an unknown method,
 * Content.Read), plus truncated and garbage variants. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "github.com/containerd/containerd/api/services/content/v1/content.pb-c.h"
#include "github.com/containerd/containerd/api/services/version/v1/version.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "proto/grpc/grpc-internal.h"
#include "proto/grpc/grpc.h"

static void push(int fd, const uint8_t *p, size_t n)
{
        while (n > 0) {
                ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (w <= 0)
                        return; /* the socket buffer is full: the rest is dropped */
                p += w;
                n -= (size_t)w;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 2 || size > 64 * 1024)
                return 0;
        signal(SIGPIPE, SIG_IGN);
        size_t k = ((size_t)data[0] << 8) | data[1];
        data += 2;
        size -= 2;
        if (k > size)
                k = size;
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
                abort();
        push(sv[1], data, k);
        if (k == size)
                (void)shutdown(sv[1], SHUT_WR);
        struct grpc_client *c = NULL;
        if (grpc_client_from_fd(sv[0], "fuzz", 10, &c, NULL) < 0) {
                close(sv[1]);
                return 0;
        }
        static const struct grpc_metadata md[] = {{"containerd-namespace", "fuzz"}, {NULL, NULL}};
        grpc_client_set_default_metadata(c, md);
        /* The seeds are captured from tests/tools/grpc_echo_server: Version, Version, Content.Read. */
        const ProtobufCMessageDescriptor *resp[3] = {
            &containerd__services__version__v1__version_response__descriptor,
            &containerd__services__version__v1__version_response__descriptor,
            &containerd__services__content__v1__read_content_response__descriptor,
        };
        Google__Protobuf__Empty empty = GOOGLE__PROTOBUF__EMPTY__INIT;
        struct grpc_stream *s[3] = {NULL, NULL, NULL};
        for (int i = 0; i < 3; i++) {
                if (grpc_client_stream_open(c, i == 2 ? "/fuzz.S/Stream" : "/fuzz.S/Unary", NULL, resp[i], &s[i],
                                            NULL) < 0)
                        break;
                (void)grpc_stream_send(s[i], &empty.base, NULL);
                (void)grpc_stream_close_send(s[i], NULL);
        }
        push(sv[1], data + k, size - k);
        (void)shutdown(sv[1], SHUT_WR);
        for (int i = 2; i >= 0; i--) {
                if (!s[i])
                        continue;
                for (int n = 0; n < 64; n++) {
                        ProtobufCMessage *m = NULL;
                        struct error *e = NULL;
                        int r = grpc_stream_recv(s[i], 1000, &m, &e);
                        error_free(&e);
                        if (r != 1)
                                break;
                        protobuf_c_message_free_unpacked(m, NULL);
                }
                grpc_stream_free(s[i]);
        }
        grpc_client_free(c);
        close(sv[1]);
        return 0;
}

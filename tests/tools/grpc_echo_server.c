/* Test tool: a minimal gRPC server on the krill transport, for interop checks with real clients
 * (`ctr --address SOCK version`, python3-grpcio). Not part of the daemon.
 *   grpc_echo_server SOCKET
 * Methods:
 *   /containerd.services.version.v1.Version/Version      -> {version: "krill-echo", revision: <namespace or "">}
 *   /containerd.services.namespaces.v1.Namespaces/Get    -> echoes the name; "sleep:N" answers after N ms
 *                                                           (from a uv timer); "missing" -> NotFound
 *   /containerd.services.content.v1.Content/Info         -> any digest exists, size BLOB_SIZE
 *   /containerd.services.content.v1.Content/Read         -> digest "sha256:...": blob bytes (i % 251) from offset,
 *                                                           size bytes (0: to the end) in <= 1 MiB messages, as
 *                                                           `ctr content get` expects; otherwise offset = message
 *                                                           count, size = bytes per message
 * SIGINT/SIGTERM shut it down gracefully. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "github.com/containerd/containerd/api/services/content/v1/content.pb-c.h"
#include "github.com/containerd/containerd/api/services/namespaces/v1/namespace.pb-c.h"
#include "github.com/containerd/containerd/api/services/version/v1/version.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "proto/grpc/grpc.h"
#include "util/alloc.h"
#include "util/log.h"

struct sleeper {
        uv_timer_t timer;
        struct grpc_call *call;
        char *name;
};

static void on_version(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        (void)req;
        (void)userdata;
        Containerd__Services__Version__V1__VersionResponse resp =
            CONTAINERD__SERVICES__VERSION__V1__VERSION_RESPONSE__INIT;
        const char *ns = grpc_call_metadata(call, "containerd-namespace");
        resp.version = (char *)"krill-echo";
        resp.revision = (char *)(ns ? ns : "");
        grpc_call_reply(call, &resp.base);
}

static void ns_reply(struct grpc_call *call, const char *name)
{
        Containerd__Services__Namespaces__V1__Namespace ns = CONTAINERD__SERVICES__NAMESPACES__V1__NAMESPACE__INIT;
        Containerd__Services__Namespaces__V1__GetNamespaceResponse resp =
            CONTAINERD__SERVICES__NAMESPACES__V1__GET_NAMESPACE_RESPONSE__INIT;
        ns.name = (char *)name;
        resp.namespace_ = &ns;
        grpc_call_reply(call, &resp.base);
}

static void sleeper_closed(uv_handle_t *h)
{
        struct sleeper *s = h->data;
        grpc_call_unref(s->call);
        free(s->name);
        free(s);
}

static void sleeper_fire(uv_timer_t *t)
{
        struct sleeper *s = t->data;
        ns_reply(s->call, s->name);
        uv_close((uv_handle_t *)t, sleeper_closed);
}

static void sleeper_cancel(struct grpc_call *call, void *userdata)
{
        (void)call;
        struct sleeper *s = userdata;
        if (!uv_is_closing((uv_handle_t *)&s->timer))
                uv_close((uv_handle_t *)&s->timer, sleeper_closed);
}

static void on_ns_get(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        uv_loop_t *loop = userdata;
        const Containerd__Services__Namespaces__V1__GetNamespaceRequest *r = (const void *)req;
        if (strcmp(r->name, "missing") == 0) {
                struct error *e = NULL;
                int rc = error_set(&e, ENOENT, "namespace \"%s\"", r->name);
                grpc_call_fail(call, rc, e);
                error_free(&e);
                return;
        }
        if (strncmp(r->name, "sleep:", 6) == 0) {
                struct sleeper *s = xcalloc(1, sizeof(*s));
                s->call = grpc_call_ref(call);
                s->name = xstrdup(r->name);
                uv_timer_init(loop, &s->timer);
                s->timer.data = s;
                uv_timer_start(&s->timer, sleeper_fire, strtoull(r->name + 6, NULL, 10), 0);
                grpc_call_set_cancel_cb(call, sleeper_cancel, s);
                return;
        }
        ns_reply(call, r->name);
}

#define BLOB_SIZE (5 * 1024 * 1024 + 123)

struct reader {
        long long left;
        size_t size;
        uint8_t *buf;
        bool blob;
        long long pos, end;
};

static void on_info(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        (void)userdata;
        const Containerd__Services__Content__V1__InfoRequest *r = (const void *)req;
        Containerd__Services__Content__V1__Info info = CONTAINERD__SERVICES__CONTENT__V1__INFO__INIT;
        Containerd__Services__Content__V1__InfoResponse resp = CONTAINERD__SERVICES__CONTENT__V1__INFO_RESPONSE__INIT;
        info.digest = r->digest;
        info.size = BLOB_SIZE;
        resp.info = &info;
        grpc_call_reply(call, &resp.base);
}

static void reader_free(struct grpc_call *call, void *userdata)
{
        (void)userdata;
        struct reader *rd = grpc_call_get_data(call);
        grpc_call_set_data(call, NULL);
        free(rd->buf);
        free(rd);
        grpc_call_unref(call);
}

static void reader_produce(struct grpc_call *call, void *userdata)
{
        struct reader *rd = grpc_call_get_data(call);
        while (rd->left > 0 && grpc_call_pending_bytes(call) < 2 * rd->size + 1) {
                Containerd__Services__Content__V1__ReadContentResponse resp =
                    CONTAINERD__SERVICES__CONTENT__V1__READ_CONTENT_RESPONSE__INIT;
                resp.data.data = rd->buf;
                resp.data.len = rd->size;
                if (rd->blob) {
                        size_t n = rd->end - rd->pos < (long long)rd->size ? (size_t)(rd->end - rd->pos) : rd->size;
                        for (size_t i = 0; i < n; i++)
                                rd->buf[i] = (uint8_t)((rd->pos + (long long)i) % 251);
                        resp.offset = rd->pos;
                        resp.data.len = n;
                        rd->pos += (long long)n;
                        if (rd->pos >= rd->end)
                                rd->left = 1;
                }
                if (grpc_call_send(call, &resp.base) < 0)
                        break;
                rd->left--;
        }
        if (rd->left == 0) {
                grpc_call_finish(call, GRPC_OK, NULL);
                reader_free(call, userdata);
                return;
        }
        grpc_call_set_writable_cb(call, rd->size + 1, reader_produce, userdata);
}

static void on_read(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Content__V1__ReadContentRequest *r = (const void *)req;
        struct reader *rd = xcalloc(1, sizeof(*rd));
        rd->left = r->offset;
        rd->size = r->size > 0 && r->size <= 4 << 20 ? (size_t)r->size : 1024;
        if (strncmp(r->digest, "sha256:", 7) == 0) {
                if (r->offset < 0 || r->offset > BLOB_SIZE || r->size < 0) {
                        grpc_call_finish(call, GRPC_OUT_OF_RANGE, "read out of range");
                        free(rd);
                        return;
                }
                rd->blob = true;
                rd->pos = r->offset;
                rd->end = r->size > 0 && r->offset + r->size < BLOB_SIZE ? r->offset + r->size : BLOB_SIZE;
                rd->size = 1024 * 1024;
                rd->left = rd->end > rd->pos ? 1 << 30 : 0;
        }
        rd->buf = xcalloc(1, rd->size);
        grpc_call_set_data(call, rd);
        grpc_call_ref(call);
        grpc_call_set_cancel_cb(call, reader_free, NULL);
        reader_produce(call, userdata);
}

static struct grpc_server *server;
static uv_signal_t sigint, sigterm;

static void shutdown_done(void *data)
{
        (void)data;
        uv_close((uv_handle_t *)&sigint, NULL);
        uv_close((uv_handle_t *)&sigterm, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
        (void)h;
        (void)signum;
        uv_signal_stop(&sigint);
        uv_signal_stop(&sigterm);
        grpc_server_shutdown(server, shutdown_done, NULL);
}

int main(int argc, char **argv)
{
        if (argc != 2) {
                fprintf(stderr, "usage: %s SOCKET\n", argv[0]);
                return 2;
        }
        if (getenv("KRILL_GRPC_DEBUG"))
                log_set_level(LOG_LEVEL_DEBUG);
        signal(SIGPIPE, SIG_IGN);
        uv_loop_t *loop = uv_default_loop();
        struct grpc_server_options o = {.log_calls = true};
        server = grpc_server_new(loop, &o);
        const struct grpc_method methods[] = {
            {"/containerd.services.version.v1.Version/Version", GRPC_METHOD_UNARY, &google__protobuf__empty__descriptor,
             on_version, NULL, loop},
            {"/containerd.services.namespaces.v1.Namespaces/Get", GRPC_METHOD_UNARY,
             &containerd__services__namespaces__v1__get_namespace_request__descriptor, on_ns_get, NULL, loop},
            {"/containerd.services.content.v1.Content/Info", GRPC_METHOD_UNARY,
             &containerd__services__content__v1__info_request__descriptor, on_info, NULL, loop},
            {"/containerd.services.content.v1.Content/Read", GRPC_METHOD_SERVER_STREAM,
             &containerd__services__content__v1__read_content_request__descriptor, on_read, NULL, loop},
        };
        for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
                (void)grpc_server_add_method(server, &methods[i]);
        struct error *e = NULL;
        if (grpc_server_listen_unix(server, argv[1], &e) < 0) {
                fprintf(stderr, "%s\n", error_str(e));
                error_free(&e);
                return 1;
        }
        uv_signal_init(loop, &sigint);
        uv_signal_init(loop, &sigterm);
        uv_signal_start(&sigint, on_signal, SIGINT);
        uv_signal_start(&sigterm, on_signal, SIGTERM);
        printf("ready\n");
        fflush(stdout);
        uv_run(loop, UV_RUN_DEFAULT);
        grpc_server_free(server);
        (void)uv_loop_close(loop);
        return 0;
}

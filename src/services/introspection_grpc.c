/* introspection.v1 gRPC adapter: decode, call the local functions, encode. */
#include <errno.h>
#include <string.h>

#include "github.com/containerd/containerd/api/services/introspection/v1/introspection.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "services/introspection.h"
#include "util/alloc.h"
#include "util/cleanup.h"

typedef Containerd__Services__Introspection__V1__Plugin Plugin;
typedef Containerd__Services__Introspection__V1__Plugin__ExportsEntry ExportsEntry;

static size_t strv_len(char **v)
{
        size_t n = 0;
        while (v && v[n])
                n++;
        return n;
}

/* Fills a Plugin message whose strings borrow from p; release with plugin_msg_done. */
static void plugin_msg_fill(Plugin *m, const struct plugin_info *p, Containerd__Types__Platform *platform,
                            Containerd__Types__Platform **platforms, Google__Rpc__Status *st)
{
        containerd__services__introspection__v1__plugin__init(m);
        m->type = p->type;
        m->id = p->id;
        m->n_requires = strv_len(p->requires);
        m->requires = p->requires;
        if (p->has_platform) {
                platforms[0] = platform;
                m->n_platforms = 1;
                m->platforms = platforms;
        }
        size_t ne = strv_len(p->exports) / 2;
        if (ne > 0) {
                m->exports = xcalloc(ne, sizeof(ExportsEntry *));
                for (size_t i = 0; i < ne; i++) {
                        ExportsEntry *e = xmalloc(sizeof(*e));
                        containerd__services__introspection__v1__plugin__exports_entry__init(e);
                        e->key = p->exports[2 * i];
                        e->value = p->exports[2 * i + 1];
                        m->exports[i] = e;
                }
                m->n_exports = ne;
        }
        m->n_capabilities = strv_len(p->capabilities);
        m->capabilities = p->capabilities;
        if (p->init_err < 0) {
                google__rpc__status__init(st);
                st->code = (int32_t)status_from_errno(p->init_err);
                st->message = p->init_msg ? p->init_msg : (char *)"";
                m->init_err = st;
        }
}

static void plugin_msg_done(Plugin *m)
{
        for (size_t i = 0; i < m->n_exports; i++)
                free(m->exports[i]);
        free(m->exports);
}

static void on_plugins(struct grpc_call *call, const ProtobufCMessage *req, void *userdata)
{
        const Containerd__Services__Introspection__V1__PluginsRequest *in = (const void *)req;
        struct services_ctx *ctx = userdata;
        static const struct plugin_registry empty;
        const struct plugin_registry *reg = ctx->plugins ? ctx->plugins : &empty;
        _cleanup_error_ struct error *err = NULL;
        _cleanup_free_ const struct plugin_info **list = NULL;
        size_t n = 0;

        int r = services_introspection_plugins(reg, (const char *const *)in->filters, in->n_filters, &list, &n, &err);
        if (r < 0) {
                grpc_call_fail(call, r, err);
                return;
        }

        Containerd__Types__Platform platform = CONTAINERD__TYPES__PLATFORM__INIT;
        const char *os, *arch, *variant;
        services_introspection_platform(&os, &arch, &variant);
        platform.os = (char *)os;
        platform.architecture = (char *)arch;
        platform.variant = (char *)variant;

        _cleanup_free_ Plugin *msgs = xcalloc(n ? n : 1, sizeof(Plugin));
        _cleanup_free_ Plugin **ptrs = xcalloc(n ? n : 1, sizeof(Plugin *));
        _cleanup_free_ Containerd__Types__Platform **plats = xcalloc(n ? n : 1, sizeof(void *));
        _cleanup_free_ Google__Rpc__Status *sts = xcalloc(n ? n : 1, sizeof(Google__Rpc__Status));
        for (size_t i = 0; i < n; i++) {
                plugin_msg_fill(&msgs[i], list[i], &platform, &plats[i], &sts[i]);
                ptrs[i] = &msgs[i];
        }

        Containerd__Services__Introspection__V1__PluginsResponse resp =
                CONTAINERD__SERVICES__INTROSPECTION__V1__PLUGINS_RESPONSE__INIT;
        resp.n_plugins = n;
        resp.plugins = ptrs;
        grpc_call_reply(call, &resp.base);
        for (size_t i = 0; i < n; i++)
                plugin_msg_done(&msgs[i]);
}

static void on_server(struct grpc_call *call, _unused_ const ProtobufCMessage *req, void *userdata)
{
        struct services_ctx *ctx = userdata;

        if (!ctx->uuid) {
                grpc_call_finish(call, GRPC_UNKNOWN, "server uuid is not available");
                return;
        }
        Containerd__Services__Introspection__V1__ServerResponse resp =
                CONTAINERD__SERVICES__INTROSPECTION__V1__SERVER_RESPONSE__INIT;
        resp.uuid = (char *)ctx->uuid;
        grpc_call_reply(call, &resp.base);
}

void services_introspection_register(struct grpc_server *s, struct services_ctx *ctx)
{
        const struct grpc_method methods[] = {
                {
                        .path = "/containerd.services.introspection.v1.Introspection/Plugins",
                        .kind = GRPC_METHOD_UNARY,
                        .input = &containerd__services__introspection__v1__plugins_request__descriptor,
                        .on_message = on_plugins,
                        .userdata = ctx,
                },
                {
                        .path = "/containerd.services.introspection.v1.Introspection/Server",
                        .kind = GRPC_METHOD_UNARY,
                        .input = &google__protobuf__empty__descriptor,
                        .on_message = on_server,
                        .userdata = ctx,
                },
        };
        for (size_t i = 0; i < ELEMENTSOF(methods); i++)
                (void)grpc_server_add_method(s, &methods[i]);
}

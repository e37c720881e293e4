/* krill version: client and server versions, the server's UUID (ctr version's layout). */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "github.com/containerd/containerd/api/services/introspection/v1/introspection.pb-c.h"
#include "github.com/containerd/containerd/api/services/version/v1/version.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "util/cleanup.h"

#ifndef KRILL_VERSION
#error "KRILL_VERSION must be defined by the build"
#endif

static int run_version(const struct cli_global *g, const struct cli_command *cmd, int argc, char **argv)
{
        _cleanup_error_ struct error *err = NULL;
        struct grpc_client *c = NULL;
        ProtobufCMessage *resp = NULL;
        int optind_ = 0;

        int r = cli_parse_flags(g, cmd, "krill version", NULL, argc, argv, &optind_);
        if (r != 0)
                return r < 0 ? 1 : 0;

        printf("Client:\n");
        printf("  Version:  %s\n", KRILL_VERSION);
        printf("  Revision: %s\n", KRILL_REVISION);
        printf("\n");
        fflush(stdout);

        if (cli_connect(g, &c) < 0)
                return 1;
        Google__Protobuf__Empty empty = GOOGLE__PROTOBUF__EMPTY__INIT;
        r = grpc_client_unary(c, "/containerd.services.version.v1.Version/Version", NULL, &empty.base,
                              &containerd__services__version__v1__version_response__descriptor, &resp, &err);
        if (r < 0) {
                grpc_client_free(c);
                return cli_fail(g, err);
        }
        Containerd__Services__Version__V1__VersionResponse *v = (void *)resp;
        printf("Server:\n");
        printf("  Version:  %s\n", v->version);
        printf("  Revision: %s\n", v->revision);
        fflush(stdout);
        bool version_differs = strcmp(v->version, KRILL_VERSION) != 0;
        bool revision_differs = strcmp(v->revision, KRILL_REVISION) != 0;
        protobuf_c_message_free_unpacked(resp, NULL);
        resp = NULL;

        r = grpc_client_unary(c, "/containerd.services.introspection.v1.Introspection/Server", NULL, &empty.base,
                              &containerd__services__introspection__v1__server_response__descriptor, &resp, &err);
        grpc_client_free(c);
        if (r < 0)
                return cli_fail(g, err);
        printf("  UUID: %s\n", ((Containerd__Services__Introspection__V1__ServerResponse *)resp)->uuid);
        protobuf_c_message_free_unpacked(resp, NULL);
        fflush(stdout);
        if (version_differs)
                fprintf(stderr, "WARNING: version mismatch\n");
        if (revision_differs)
                fprintf(stderr, "WARNING: revision mismatch\n");
        return 0;
}

const struct cli_command cli_version_command = {
        .name = "version",
        .usage = "print the client and server versions",
        .run = run_version,
};

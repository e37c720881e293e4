/* Helpers shared by every service adapter: the namespace and lease a call runs in. */
#include <errno.h>

#include "services/services.h"
#include "metadata/db.h"

int services_call_namespace(const struct grpc_call *call, const char **ret_ns, struct error **err)
{
        const char *ns = grpc_call_metadata(call, "containerd-namespace");
        int r;

        /* containerd's namespaces.NamespaceRequired: missing or empty is FailedPrecondition */
        if (!ns || ns[0] == '\0')
                return error_set(err, EBUSY, "namespace is required");
        r = metadata_validate_identifier(ns, err);
        if (r < 0)
                return error_wrap(err, "namespace validation");
        *ret_ns = ns;
        return 0;
}

const char *services_call_lease(const struct grpc_call *call)
{
        const char *lease = grpc_call_metadata(call, "containerd-lease");
        return lease && lease[0] ? lease : NULL;
}

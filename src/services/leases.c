/* leases.v1 logic lives in metadata/leases.c; this file keeps the service's one policy: deleting a lease
 * may free resources, so it schedules a collection (see leases_grpc.c). Nothing else to share with CRI. */
#include "services/leases.h"

/* grpc.health.v1 logic: "" is SERVING until shutdown begins,
 * any other service name is unknown, as with grpc-go's health server that containerd registers. */
#include "services/health.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "health.pb-c.h"

/* One daemon per process; only the loop thread touches it. */
static bool shutting_down;

int services_health_status(const char *service)
{
        if (service && service[0] != '\0')
                return -ENOENT;
        return shutting_down ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING
                        : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
}

void services_health_set_shutting_down(void)
{
        shutting_down = true;
}

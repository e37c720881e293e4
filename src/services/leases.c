/* leases.v1 logic beyond the metadata store: containerd's server-side random lease IDs. */
#include "services/leases.h"

#include <stdint.h>
#include <sys/random.h>
#include <time.h>

#include "util/alloc.h"

char *services_leases_random_id(void)
{
        /* containerd leases.WithRandomID: "<nanoseconds of now>-<base64url of 3 random bytes>" */
        static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        uint8_t b[3] = {0};
        struct timespec ts;
        char enc[5];
        if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
                /* getrandom on a 3-byte buffer does not fail once the pool is initialised; fall back to time */
                clock_gettime(CLOCK_MONOTONIC, &ts);
                b[0] = (uint8_t)ts.tv_nsec;
                b[1] = (uint8_t)(ts.tv_nsec >> 8);
                b[2] = (uint8_t)(ts.tv_nsec >> 16);
        }
        enc[0] = b64[b[0] >> 2];
        enc[1] = b64[((b[0] & 3) << 4) | (b[1] >> 4)];
        enc[2] = b64[((b[1] & 15) << 2) | (b[2] >> 6)];
        enc[3] = b64[b[2] & 63];
        enc[4] = '\0';
        clock_gettime(CLOCK_REALTIME, &ts);
        return xasprintf("%ld-%s", (long)ts.tv_nsec, enc);
}

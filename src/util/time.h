/* Time helpers: Go-compatible RFC 3339 formatting/parsing, protobuf Timestamp conventions, clocks.
 * Thread-safe. Named util/time.h; include it as "util/time.h" (never <time.h> from src/util itself). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"

/* Go's zero time.Time (January 1, year 1, 00:00:00 UTC) in Unix seconds. containerd's gogo stdtime
 * Timestamps encode an unset time.Time as {seconds: -62135596800, nanos: 0}. */
#define TIME_GO_ZERO_UNIX_SEC (-62135596800LL)

#define NSEC_PER_SEC 1000000000LL

/* Returns a new string as Go prints t.Format(time.RFC3339Nano): "2006-01-02T15:04:05.999999999Z07:00",
 * fraction trailing zeros trimmed (no '.' if zero), "Z" when utc_offset_sec is 0, else "+hh:mm".
 * nsec must be in [0, 1e9). */
char *time_format_rfc3339nano(int64_t sec, int32_t nsec, int utc_offset_sec);
/* Same with always 9 fraction digits (containerd's log.RFC3339NanoFixed). */
char *time_format_rfc3339nano_fixed(int64_t sec, int32_t nsec, int utc_offset_sec);
/* Parses RFC 3339 as Go's time.Parse(time.RFC3339Nano, s) accepts it: "YYYY-MM-DDTHH:MM:SS[.frac](Z|±hh:mm)",
 * fraction 1..9 digits. Returns 0 with the UTC instant, or -EINVAL with `parsing time "s"` in err. */
int time_parse_rfc3339(const char *s, int64_t *ret_sec, int32_t *ret_nsec, struct error **err);

/* Parses a Go duration string as time.ParseDuration does ("300ms", "-1.5h", "4h0m0s", "0"; units ns, us,
 * µs, ms, s, m, h). Returns 0 with nanoseconds, or -EINVAL with `time: invalid duration "x"` (Go's text). */
int time_parse_duration(const char *s, int64_t *ret_ns, struct error **err);
/* Returns a new string formatted as Go's Duration.String(): "4h0m0s", "100ms", "1.5s", "0s". */
char *time_format_duration(int64_t ns);

/* protobuf google.protobuf.Timestamp conventions (util cannot see generated types: pass the fields).
 * Unset means Go's zero time; an absent message should be treated the same by the caller. */
static inline bool time_pb_is_unset(int64_t seconds, int32_t nanos)
{
        return seconds == TIME_GO_ZERO_UNIX_SEC && nanos == 0;
}
/* Fills seconds/nanos for Go's zero time (what containerd sends for "never", e.g. an unexited task). */
static inline void time_pb_set_unset(int64_t *seconds, int32_t *nanos)
{
        *seconds = TIME_GO_ZERO_UNIX_SEC;
        *nanos = 0;
}
/* Converts nanoseconds since the epoch to seconds/nanos (floor division, nanos in [0,1e9)). */
void time_pb_from_ns(int64_t ns, int64_t *ret_seconds, int32_t *ret_nanos);
/* Inverse of time_pb_from_ns; saturates at INT64_MIN/MAX. */
int64_t time_pb_to_ns(int64_t seconds, int32_t nanos);

/* CLOCK_REALTIME now. */
void time_now(int64_t *ret_sec, int32_t *ret_nsec);
int64_t time_now_ns(void);
/* CLOCK_MONOTONIC in milliseconds / nanoseconds (for deadlines and timeouts). */
uint64_t time_monotonic_ms(void);
uint64_t time_monotonic_ns(void);

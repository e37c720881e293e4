/* Event rendering for krill events (pure, unit-tested). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "github.com/containerd/containerd/api/services/events/v1/events.pb-c.h"

/* Go's time.Time.String() for a UTC time: "2006-01-02 15:04:05.999999999 +0000 UTC". */
void cli_go_time_string(int64_t seconds, int32_t nanos, char *buf, size_t size);
/* The event payload as Go's json.Marshal renders containerd's event struct; NULL for an unknown type_url or
 * undecodable data. New string. */
char *cli_event_json(const char *type_url, const uint8_t *data, size_t len);
/* ctr events' line "TIMESTAMP NAMESPACE TOPIC JSON" (no newline); NULL if the payload is unknown. */
char *cli_event_line(const Containerd__Services__Events__V1__Envelope *e);

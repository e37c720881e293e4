/* Logging in containerd's logrus text format (STYLE.md section 6):
 *   time="2025-01-02T03:04:05.123456789Z" level=info msg="loading plugin" id=io.containerd.content.v1.content
 * Order: time, level, msg (left out when empty), then the fields sorted by key. One write(2) per line.
 * Not thread-safe to reconfigure; safe to log from any thread once configured. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

enum log_level {
        LOG_LEVEL_PANIC,
        LOG_LEVEL_FATAL,
        LOG_LEVEL_ERROR,
        LOG_LEVEL_WARN,
        LOG_LEVEL_INFO,
        LOG_LEVEL_DEBUG,
        LOG_LEVEL_TRACE,
        _LOG_LEVEL_MAX,
        _LOG_LEVEL_INVALID = -22,
};

enum log_format {
        LOG_FORMAT_TEXT,
        LOG_FORMAT_JSON,
};

struct log_field {
        const char *key;
        const char *value;
};

/* Parses "trace|debug|info|warn|warning|error|fatal|panic"; returns _LOG_LEVEL_INVALID otherwise. */
enum log_level log_level_from_string(const char *s);
const char *log_level_to_string(enum log_level l); /* "warning" for LOG_LEVEL_WARN, as logrus prints */
void log_set_level(enum log_level l);
enum log_level log_get_level(void);
void log_set_format(enum log_format f);
void log_set_fd(int fd); /* default: 2 */
static inline bool log_enabled(enum log_level l)
{
        return l <= log_get_level();
}

/* fields: array terminated by {NULL, NULL}; may be NULL. fmt may be NULL for no msg. */
void log_fields(enum log_level level, const struct log_field *fields, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
void log_fieldsv(enum log_level level, const struct log_field *fields, const char *fmt, va_list ap)
        __attribute__((format(printf, 3, 0)));

#define log_trace(...) log_fields(LOG_LEVEL_TRACE, NULL, __VA_ARGS__)
#define log_debug(...) log_fields(LOG_LEVEL_DEBUG, NULL, __VA_ARGS__)
#define log_info(...) log_fields(LOG_LEVEL_INFO, NULL, __VA_ARGS__)
#define log_warn(...) log_fields(LOG_LEVEL_WARN, NULL, __VA_ARGS__)
#define log_error(...) log_fields(LOG_LEVEL_ERROR, NULL, __VA_ARGS__)

/* Formats one line into a new string (with the trailing newline). ts_ns is nanoseconds since the epoch;
 * utc_offset_sec is the local offset to print (0 prints "Z"). Exposed for golden tests. */
char *log_format_line(enum log_format fmt, long long ts_ns, int utc_offset_sec, enum log_level level,
                      const struct log_field *fields, const char *msg);
/* Appends a logrus text value (bare or Go %q-quoted) to buf; returns the new string (takes buf). */
char *log_append_value(char *buf, const char *value);

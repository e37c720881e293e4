/* Errors: functions return >= 0 on success and exactly -errno on failure, and may fill an optional
 * struct error ** with the code and a message (STYLE.md section 4).
 *
 * The stored message is the context only (`container "abc"`); error_message() renders it the way
 * containerd does, with the class text for the code appended (`container "abc": not found`). */
#pragma once

#include <stdarg.h>

struct error {
        int code;  /* positive errno */
        char *msg; /* owned; context text without the class suffix, may be empty */
};

/* Sets *err (if err is not NULL and *err is NULL) and returns -code. code must be > 0.
 * If *err is already set it is left alone (the first error wins) and -code is returned. */
int error_set(struct error **err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int error_setv(struct error **err, int code, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));
/* Like error_set, but the message is final: error_message() will not append the class text.
 * For messages that come from elsewhere (an OCI runtime's own error, a registry's reply). */
int error_set_literal(struct error **err, int code, const char *msg);
/* Prefixes context to an existing error: "context: old". Returns -(*err)->code.
 * If err or *err is NULL, returns -EIO (a programming error is asserted in debug builds). */
int error_wrap(struct error **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Releases *err and sets it to NULL. NULL-safe. */
void error_free(struct error **err);
static inline void error_freep(struct error **err)
{
        error_free(err);
}
#define _cleanup_error_ __attribute__((cleanup(error_freep)))

/* Class text for an errno as containerd prints it: ENOENT "not found", EEXIST "already exists", ...;
 * for other codes Go's lowercase syscall text ("permission denied"). Never NULL. */
const char *error_class_text(int code);
/* Returns a new string: the rendered message (context + ": " + class text), or the class text alone. */
char *error_message(const struct error *e);
/* Rendered message kept in a static per-thread buffer for logging convenience; valid until the next call. */
const char *error_str(const struct error *e);

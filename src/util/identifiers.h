/* containerd identifiers (identifiers/validate.go): namespaces, containers, snapshots, leases and
 * content ingest refs that become path components must match
 *   ^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$
 * and be at most 76 characters. */
#pragma once

#include <stdbool.h>

#include "util/error.h"

#define IDENTIFIER_MAX_LENGTH 76

/* Returns 0 or -EINVAL with err set to containerd's text:
 *   `identifier must not be empty`
 *   `identifier "x" greater than maximum length (76 characters)`
 *   `identifier "x" must match ^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$`
 * (error_message() appends ": invalid argument", as containerd's %w of ErrInvalidArgument does). */
int identifier_validate(const char *s, struct error **err);
bool identifier_is_valid(const char *s);

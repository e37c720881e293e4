/* Pull progress like ctr's: one line per blob "REF: status |++++----| size/total". On a TTY the table is
 * redrawn in place (cursor up); otherwise a plain line is printed when a blob's status changes. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct cli_progress;

/* out borrowed; tty selects the redrawn table; quiet prints nothing. */
struct cli_progress *cli_progress_new(FILE *out, bool tty, bool quiet);
void cli_progress_free(struct cli_progress *p);
/* Sets a blob's status ("waiting", "downloading", "exists", "done", ...), offset and total. */
void cli_progress_update(struct cli_progress *p, const char *ref, const char *status, int64_t offset, int64_t total);
/* Redraws (TTY) now. */
void cli_progress_flush(struct cli_progress *p);
/* "elapsed: 1.2 s  total: 2.0 MiB (1.6 MiB/s)". */
void cli_progress_finish(struct cli_progress *p, int64_t bytes);
/* Renders the bar for offset/total into buf (width characters + the two '|'). */
void cli_progress_bar(char *buf, size_t size, int64_t offset, int64_t total, int width);
/* Human size like go-units' HumanSize ("1.2 MiB"). */
void cli_progress_size(char *buf, size_t size, double bytes);

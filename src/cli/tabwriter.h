/* Go's text/tabwriter (flags 0, the way ctr uses it), so that tables print byte for byte like ctr's:
 * cells are tab-terminated, a column block is a run of lines that have that column, each column is as wide as
 * its widest cell plus padding (at least minwidth), and a line without tabs ends every block.
 * Not thread-safe; one writer per output. */
#pragma once

#include <stdio.h>

struct cli_tabwriter;

/* ctr's tables: namespaces ls is (1, 8, 1, ' '), plugins ls (4, 8, 4, ' '). out is borrowed. */
struct cli_tabwriter *cli_tabwriter_new(FILE *out, int minwidth, int tabwidth, int padding, char padchar);
void cli_tabwriter_write(struct cli_tabwriter *tw, const char *text);
void cli_tabwriter_printf(struct cli_tabwriter *tw, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Formats and writes everything buffered. Returns 0 or -errno from the stream. */
int cli_tabwriter_flush(struct cli_tabwriter *tw);
/* Does not flush; NULL-safe. */
void cli_tabwriter_free(struct cli_tabwriter *tw);

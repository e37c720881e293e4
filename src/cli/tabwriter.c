/* A port of the algorithm of Go's text/tabwriter (format/writeLines) for the flags ctr uses (none). */
#include "cli/tabwriter.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/cleanup.h"

struct cell {
        char *text;
        size_t width; /* in runes, as Go counts with utf8.RuneCount */
};

struct line {
        struct cell *cells;
        size_t n;
        size_t cap;
};

struct cli_tabwriter {
        FILE *out;
        size_t minwidth;
        size_t tabwidth;
        size_t padding;
        char padchar;

        struct line *lines; /* the last one is the line being built */
        size_t n_lines;
        size_t cap_lines;

        char *cell; /* current cell text */
        size_t cell_len;
        size_t cell_cap;

        size_t *widths; /* column widths of the enclosing blocks while formatting */
        size_t n_widths;
        size_t cap_widths;
};

static size_t rune_count(const char *s, size_t n)
{
        size_t c = 0;
        for (size_t i = 0; i < n; i++)
                if (((unsigned char)s[i] & 0xc0) != 0x80)
                        c++;
        return c;
}

static void add_line(struct cli_tabwriter *tw)
{
        if (tw->n_lines == tw->cap_lines) {
                tw->cap_lines = tw->cap_lines ? tw->cap_lines * 2 : 16;
                tw->lines = xreallocarray(tw->lines, tw->cap_lines, sizeof(struct line));
        }
        memset(&tw->lines[tw->n_lines++], 0, sizeof(struct line));
}

static void reset(struct cli_tabwriter *tw)
{
        for (size_t i = 0; i < tw->n_lines; i++) {
                for (size_t j = 0; j < tw->lines[i].n; j++)
                        free(tw->lines[i].cells[j].text);
                free(tw->lines[i].cells);
        }
        tw->n_lines = 0;
        tw->cell_len = 0;
        add_line(tw);
}

/* Ends the current cell; returns the number of cells in the current line. */
static size_t terminate_cell(struct cli_tabwriter *tw)
{
        struct line *l = &tw->lines[tw->n_lines - 1];
        if (l->n == l->cap) {
                l->cap = l->cap ? l->cap * 2 : 8;
                l->cells = xreallocarray(l->cells, l->cap, sizeof(struct cell));
        }
        l->cells[l->n].text = xstrndup(tw->cell ? tw->cell : "", tw->cell_len);
        l->cells[l->n].width = rune_count(tw->cell ? tw->cell : "", tw->cell_len);
        l->n++;
        tw->cell_len = 0;
        return l->n;
}

struct cli_tabwriter *cli_tabwriter_new(FILE *out, int minwidth, int tabwidth, int padding, char padchar)
{
        struct cli_tabwriter *tw = xcalloc(1, sizeof(*tw));
        tw->out = out;
        tw->minwidth = minwidth > 0 ? (size_t)minwidth : 0;
        tw->tabwidth = tabwidth > 0 ? (size_t)tabwidth : 0;
        tw->padding = padding > 0 ? (size_t)padding : 0;
        tw->padchar = padchar;
        reset(tw);
        return tw;
}

static void write_padding(struct cli_tabwriter *tw, size_t textw, size_t cellw)
{
        if (tw->padchar == '\t') {
                if (tw->tabwidth == 0)
                        return;
                cellw = (cellw + tw->tabwidth - 1) / tw->tabwidth * tw->tabwidth;
                size_t n = cellw > textw ? cellw - textw : 0;
                for (size_t i = 0; i < (n + tw->tabwidth - 1) / tw->tabwidth; i++)
                        fputc('\t', tw->out);
                return;
        }
        for (size_t i = textw; i < cellw; i++)
                fputc(tw->padchar, tw->out);
}

static void write_lines(struct cli_tabwriter *tw, size_t line0, size_t line1)
{
        for (size_t i = line0; i < line1; i++) {
                const struct line *l = &tw->lines[i];
                for (size_t j = 0; j < l->n; j++) {
                        const struct cell *c = &l->cells[j];
                        if (c->text[0] != '\0')
                                fputs(c->text, tw->out);
                        if (j < tw->n_widths)
                                write_padding(tw, c->width, tw->widths[j]);
                }
                if (i + 1 < tw->n_lines)
                        fputc('\n', tw->out);
        }
}

static void push_width(struct cli_tabwriter *tw, size_t w)
{
        if (tw->n_widths == tw->cap_widths) {
                tw->cap_widths = tw->cap_widths ? tw->cap_widths * 2 : 8;
                tw->widths = xreallocarray(tw->widths, tw->cap_widths, sizeof(size_t));
        }
        tw->widths[tw->n_widths++] = w;
}

/* Go's Writer.format: find the blocks of lines that have column len(widths), size the column, recurse. */
static void format(struct cli_tabwriter *tw, size_t line0, size_t line1)
{
        size_t column = tw->n_widths;

        for (size_t this = line0; this < line1; this++) {
                if (column + 1 >= tw->lines[this].n)
                        continue;
                write_lines(tw, line0, this);
                line0 = this;

                size_t width = tw->minwidth;
                for (; this < line1; this++) {
                        const struct line *l = &tw->lines[this];
                        if (column + 1 >= l->n)
                                break;
                        size_t w = l->cells[column].width + tw->padding;
                        if (w > width)
                                width = w;
                }
                push_width(tw, width);
                format(tw, line0, this);
                tw->n_widths--;
                /* as in Go, the loop's increment then skips the line that ended the block: it lacks the column */
                line0 = this;
        }
        write_lines(tw, line0, line1);
}

static int flush_all(struct cli_tabwriter *tw)
{
        if (tw->cell_len > 0)
                terminate_cell(tw);
        format(tw, 0, tw->n_lines);
        reset(tw);
        return ferror(tw->out) ? -EIO : 0;
}

void cli_tabwriter_write(struct cli_tabwriter *tw, const char *text)
{
        for (const char *p = text; *p; p++) {
                char ch = *p;
                if (ch == '\t' || ch == '\v') {
                        terminate_cell(tw);
                } else if (ch == '\n' || ch == '\f') {
                        size_t ncells = terminate_cell(tw);
                        add_line(tw);
                        if (ch == '\f' || ncells == 1)
                                (void)flush_all(tw);
                } else {
                        if (tw->cell_len + 1 >= tw->cell_cap) {
                                tw->cell_cap = tw->cell_cap ? tw->cell_cap * 2 : 64;
                                tw->cell = xrealloc(tw->cell, tw->cell_cap);
                        }
                        tw->cell[tw->cell_len++] = ch;
                }
        }
}

void cli_tabwriter_printf(struct cli_tabwriter *tw, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *s = xvasprintf(fmt, ap);
        va_end(ap);
        cli_tabwriter_write(tw, s);
}

int cli_tabwriter_flush(struct cli_tabwriter *tw)
{
        int r = flush_all(tw);
        if (fflush(tw->out) != 0)
                return -errno;
        return r;
}

void cli_tabwriter_free(struct cli_tabwriter *tw)
{
        if (!tw)
                return;
        reset(tw);
        free(tw->lines[0].cells);
        free(tw->lines);
        free(tw->cell);
        free(tw->widths);
        free(tw);
}

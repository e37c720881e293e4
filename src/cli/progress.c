#include "cli/progress.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/alloc.h"

struct entry {
        char *ref;
        char status[24];
        int64_t offset, total;
};

struct cli_progress {
        FILE *out;
        bool tty, quiet;
        struct entry *v;
        size_t n;
        int drawn; /* lines drawn last time (TTY) */
        struct timespec start;
};

static double now_s(const struct timespec *since)
{
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)(t.tv_sec - since->tv_sec) + (double)(t.tv_nsec - since->tv_nsec) / 1e9;
}

struct cli_progress *cli_progress_new(FILE *out, bool tty, bool quiet)
{
        struct cli_progress *p = xcalloc(1, sizeof(*p));
        p->out = out;
        p->tty = tty;
        p->quiet = quiet;
        clock_gettime(CLOCK_MONOTONIC, &p->start);
        return p;
}

void cli_progress_free(struct cli_progress *p)
{
        if (!p)
                return;
        for (size_t i = 0; i < p->n; i++)
                free(p->v[i].ref);
        free(p->v);
        free(p);
}

void cli_progress_size(char *buf, size_t size, double bytes)
{
        static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
        size_t u = 0;
        while (bytes >= 1024.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
                bytes /= 1024.0;
                u++;
        }
        snprintf(buf, size, "%.1f %s", bytes, units[u]);
}

void cli_progress_bar(char *buf, size_t size, int64_t offset, int64_t total, int width)
{
        if (size < 3 || width < 1) {
                if (size)
                        buf[0] = '\0';
                return;
        }
        if ((size_t)width + 3 > size)
                width = (int)size - 3;
        int full = 0;
        if (total > 0 && offset > 0)
                full = offset >= total ? width : (int)((double)offset / (double)total * width);
        buf[0] = '|';
        for (int i = 0; i < width; i++)
                buf[1 + i] = i < full ? '+' : '-';
        buf[1 + width] = '|';
        buf[2 + width] = '\0';
}

static void print_entry(struct cli_progress *p, const struct entry *e)
{
        char bar[64], a[32], b[32];
        cli_progress_bar(bar, sizeof(bar), e->offset, e->total, 40);
        cli_progress_size(a, sizeof(a), (double)e->offset);
        cli_progress_size(b, sizeof(b), (double)e->total);
        fprintf(p->out, "%s:\t%s\t%s\t%s/%s\n", e->ref, e->status, bar, a, b);
}

void cli_progress_update(struct cli_progress *p, const char *ref, const char *status, int64_t offset, int64_t total)
{
        if (!p || p->quiet)
                return;
        struct entry *e = NULL;
        for (size_t i = 0; i < p->n; i++)
                if (strcmp(p->v[i].ref, ref) == 0)
                        e = &p->v[i];
        bool changed = true;
        if (!e) {
                p->v = xreallocarray(p->v, p->n + 1, sizeof(*p->v));
                e = &p->v[p->n++];
                memset(e, 0, sizeof(*e));
                e->ref = xstrdup(ref);
        } else {
                changed = strcmp(e->status, status) != 0;
        }
        snprintf(e->status, sizeof(e->status), "%s", status);
        e->offset = offset;
        e->total = total;
        if (!p->tty && changed)
                print_entry(p, e);
}

void cli_progress_flush(struct cli_progress *p)
{
        if (!p || p->quiet || !p->tty)
                return;
        if (p->drawn > 0)
                fprintf(p->out, "\033[%dA", p->drawn);
        for (size_t i = 0; i < p->n; i++) {
                fputs("\033[2K", p->out);
                print_entry(p, &p->v[i]);
        }
        p->drawn = (int)p->n;
        fflush(p->out);
}

void cli_progress_finish(struct cli_progress *p, int64_t bytes)
{
        if (!p || p->quiet)
                return;
        cli_progress_flush(p);
        double el = now_s(&p->start);
        char t[32], r[32];
        cli_progress_size(t, sizeof(t), (double)bytes);
        cli_progress_size(r, sizeof(r), el > 0 ? (double)bytes / el : 0);
        fprintf(p->out, "elapsed: %.1f s\ttotal: %s\t(%s/s)\n", el, t, r);
        fflush(p->out);
}

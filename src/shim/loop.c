/* The shim's event loop: one epoll set, level-triggered fd watches and a sorted list of one-shot timers
 * whose earliest deadline is the epoll_wait timeout. Everything runs on the one thread (DESIGN.md section 5);
 * the shim needs no more than this, and it keeps the binary small (issue 5's memory target). */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "shim/loop.h"

#define LOOP_MAX_EVENTS 16

uint64_t shim_loop_now(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int shim_loop_init(struct shim_loop *l)
{
        *l = (struct shim_loop){0};
        l->epfd = epoll_create1(EPOLL_CLOEXEC);
        return l->epfd < 0 ? -errno : 0;
}

void shim_loop_close(struct shim_loop *l)
{
        if (l->epfd >= 0)
                close(l->epfd);
        l->epfd = -1;
        l->timers = NULL;
}

void shim_loop_stop(struct shim_loop *l)
{
        l->stop = true;
}

void shim_watch_init(struct shim_loop *l, struct shim_watch *w, int fd, shim_watch_fn cb, void *data)
{
        *w = (struct shim_watch){.loop = l, .fd = fd, .cb = cb, .data = data};
}

/* Drops events already fetched for w, so a watch stopped (and maybe freed) by an earlier callback of the same
 * batch is never called. */
static void forget_pending(struct shim_loop *l, const struct shim_watch *w)
{
        for (int i = l->next_pending; i < l->n_pending; i++)
                if (l->pending[i].data.ptr == w)
                        l->pending[i].data.ptr = NULL;
}

int shim_watch_set(struct shim_watch *w, uint32_t events)
{
        struct epoll_event ev = {.events = events, .data.ptr = w};
        int op;

        if (!w->loop)
                return -EINVAL;
        if (events == w->events)
                return 0;
        if (events == 0) {
                (void)epoll_ctl(w->loop->epfd, EPOLL_CTL_DEL, w->fd, NULL);
                w->events = 0;
                forget_pending(w->loop, w);
                return 0;
        }
        op = w->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
        if (epoll_ctl(w->loop->epfd, op, w->fd, &ev) < 0)
                return -errno; /* EPERM: a regular file, which never blocks */
        w->events = events;
        return 0;
}

void shim_watch_stop(struct shim_watch *w)
{
        (void)shim_watch_set(w, 0);
}

void shim_timer_init(struct shim_loop *l, struct shim_timer *t, shim_timer_fn cb, void *data)
{
        *t = (struct shim_timer){.loop = l, .cb = cb, .data = data};
}

void shim_timer_stop(struct shim_timer *t)
{
        if (!t->active)
                return;
        for (struct shim_timer **pp = &t->loop->timers; *pp; pp = &(*pp)->next)
                if (*pp == t) {
                        *pp = t->next;
                        break;
                }
        t->active = false;
        t->next = NULL;
}

void shim_timer_start(struct shim_timer *t, uint64_t ms)
{
        struct shim_timer **pp;

        shim_timer_stop(t);
        t->due = shim_loop_now() + ms;
        for (pp = &t->loop->timers; *pp && (*pp)->due <= t->due; pp = &(*pp)->next)
                ;
        t->next = *pp;
        *pp = t;
        t->active = true;
}

static void run_timers(struct shim_loop *l)
{
        uint64_t now = shim_loop_now();

        /* one at a time: a callback may stop or restart any timer, including itself */
        while (l->timers && l->timers->due <= now && !l->stop) {
                struct shim_timer *t = l->timers;
                l->timers = t->next;
                t->next = NULL;
                t->active = false;
                t->cb(t);
        }
}

int shim_loop_run(struct shim_loop *l)
{
        struct epoll_event evs[LOOP_MAX_EVENTS];

        l->stop = false;
        while (!l->stop) {
                int timeout = -1, n;

                run_timers(l);
                if (l->stop)
                        break;
                if (l->timers) {
                        uint64_t now = shim_loop_now();
                        timeout = l->timers->due > now ? (int)(l->timers->due - now) : 0;
                }
                n = epoll_wait(l->epfd, evs, LOOP_MAX_EVENTS, timeout);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                l->pending = evs;
                l->n_pending = n;
                for (l->next_pending = 0; l->next_pending < l->n_pending && !l->stop;) {
                        struct epoll_event *e = &evs[l->next_pending++];
                        struct shim_watch *w = e->data.ptr;
                        if (w)
                                w->cb(w, e->events);
                }
                l->pending = NULL;
                l->n_pending = l->next_pending = 0;
        }
        return 0;
}

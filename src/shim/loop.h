/* The shim's own single-threaded event loop on epoll (loop.c) and its ttrpc server (rpc.c). Internal to
 * src/shim; no libuv, so the shim can be linked statically against musl (issue 5). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

struct shim_loop {
        int epfd;
        bool stop;
        struct shim_timer *timers; /* sorted by due */
        struct epoll_event *pending;
        int n_pending, next_pending;
};

struct shim_watch;
typedef void (*shim_watch_fn)(struct shim_watch *w, uint32_t events);

/* A level-triggered watch on one fd. One watch per fd (epoll refuses a second: use a dup). */
struct shim_watch {
        struct shim_loop *loop;
        int fd;
        uint32_t events; /* registered events, 0 = not in the epoll set */
        shim_watch_fn cb;
        void *data;
};

struct shim_timer;
typedef void (*shim_timer_fn)(struct shim_timer *t);

/* A one-shot timer; restart it from its callback for a periodic one. */
struct shim_timer {
        struct shim_loop *loop;
        struct shim_timer *next;
        uint64_t due;
        bool active;
        shim_timer_fn cb;
        void *data;
};

int shim_loop_init(struct shim_loop *l);
/* Runs until shim_loop_stop(). Returns 0 or -errno if epoll_wait failed. */
int shim_loop_run(struct shim_loop *l);
void shim_loop_stop(struct shim_loop *l);
void shim_loop_close(struct shim_loop *l);
/* CLOCK_MONOTONIC in milliseconds. */
uint64_t shim_loop_now(void);

void shim_watch_init(struct shim_loop *l, struct shim_watch *w, int fd, shim_watch_fn cb, void *data);
/* Registers events (EPOLLIN, EPOLLOUT, EPOLLRDHUP), changes them, or removes the fd with 0. Stop a watch
 * before closing its fd or freeing it. Returns -EPERM for a regular file (which never blocks). */
int shim_watch_set(struct shim_watch *w, uint32_t events);
void shim_watch_stop(struct shim_watch *w);

void shim_timer_init(struct shim_loop *l, struct shim_timer *t, shim_timer_fn cb, void *data);
void shim_timer_start(struct shim_timer *t, uint64_t ms);
void shim_timer_stop(struct shim_timer *t);

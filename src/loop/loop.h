/* loop.h - epoll event loop with timers (see loop-t.h). */
#pragma once
#include <stddef.h>
#include <sys/epoll.h>
#include "loop/loop-t.h"

/* Returns 0 or -errno. */
int loop_init(struct loop *loop);
void loop_release(struct loop *loop);
/* Move socket I/O (sock.h) to an io_uring: the loop then waits in
 * io_uring_enter, with the epoll fd watched from the ring.  Call before any
 * loop_sock_open().  Returns 0, or -errno with the reason in why (the loop
 * stays on epoll). */
int loop_uring_enable(struct loop *loop, char *why, size_t len);

/* Register fd with the given epoll events (EPOLLET is the rule on the hot
 * path).  io must stay valid until loop_del().  Returns 0 or -errno. */
int loop_add(struct loop *loop, struct loop_io *io, int fd, uint32_t events, loop_io_cb cb);
int loop_mod(struct loop *loop, struct loop_io *io, uint32_t events);
/* Unregister (closing the fd also does it; call this before close when the
 * fd might be shared).  Accepts an io that is not registered. */
void loop_del(struct loop *loop, struct loop_io *io);

/* Arm or re-arm timer to fire at deadline_ms (monotonic ms). */
void loop_timer_set(struct loop *loop, struct loop_timer *timer, uint64_t deadline_ms, loop_timer_cb cb);
/* Disarm and take out of the heap: required before the timer's memory is
 * freed.  Safe on a disarmed timer. */
void loop_timer_cancel(struct loop *loop, struct loop_timer *timer);
/* Disarm lazily, O(1): the heap entry stays and is dropped when its key
 * comes up, or reused by the next loop_timer_set.  The timer must stay
 * allocated (call loop_timer_cancel before freeing it). */
static inline void loop_timer_disarm(struct loop_timer *timer) { timer->deadline_ms = 0; }

/* Run until loop->stop is set.  Returns 0 or -errno (epoll failure). */
int loop_run(struct loop *loop);

/* loop.h - epoll event loop with timers (see loop-t.h). */
#pragma once
#include <sys/epoll.h>
#include "loop/loop-t.h"

/* Returns 0 or -errno. */
int loop_init(struct loop *loop);
void loop_release(struct loop *loop);

/* Register fd with the given epoll events (EPOLLET is the rule on the hot
 * path).  io must stay valid until loop_del().  Returns 0 or -errno. */
int loop_add(struct loop *loop, struct loop_io *io, int fd, uint32_t events, loop_io_cb cb);
int loop_mod(struct loop *loop, struct loop_io *io, uint32_t events);
/* Unregister (closing the fd also does it; call this before close when the
 * fd might be shared).  Accepts an io that is not registered. */
void loop_del(struct loop *loop, struct loop_io *io);

/* Arm or re-arm timer to fire at deadline_ms (monotonic ms). */
void loop_timer_set(struct loop *loop, struct loop_timer *timer, uint64_t deadline_ms, loop_timer_cb cb);
/* Disarm.  Safe on a disarmed timer. */
void loop_timer_cancel(struct loop *loop, struct loop_timer *timer);

/* Run until loop->stop is set.  Returns 0 or -errno (epoll failure). */
int loop_run(struct loop *loop);

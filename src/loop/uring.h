/* uring.h - the loop's io_uring (internal to src/loop; see uring.c). */
#pragma once
#include <sys/epoll.h>
#include "loop/loop-t.h"

/* One wait of the loop: submit what is queued, wait up to timeout_ms for a
 * completion, handle the completions (socket callbacks run from here) and
 * return the epoll events that are ready meanwhile, as epoll_wait() would. */
int uring_wait(struct loop *loop, struct epoll_event *events, int max, int timeout_ms);
/* Send what closed sockets still hold (up to linger_ms), then free it all. */
void uring_release(struct loop *loop, unsigned linger_ms);
/* loop.c's: the iteration's clock, which uring_wait reads before its callbacks. */
void loop_clock_update(struct loop *loop);

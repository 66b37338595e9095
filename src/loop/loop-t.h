/* loop-t.h - types of the event loop: epoll descriptors, timers, deferred work.
 *
 * One struct loop per thread.  Nothing in it is shared between threads, so
 * N workers (SO_REUSEPORT) can later each run their own loop.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>

struct loop;
struct loop_io;
struct loop_timer;
struct loop_uring;
struct usock;

/* Called with the epoll event mask (EPOLLIN, EPOLLOUT, EPOLLERR, ...). */
typedef void (*loop_io_cb)(struct loop *loop, struct loop_io *io, uint32_t events);
typedef void (*loop_timer_cb)(struct loop *loop, struct loop_timer *timer);

struct loop_io {
	int fd;
	loop_io_cb cb;
	struct usock *us;       /* io_uring state of a socket (sock.h); NULL on epoll */
};

/* A one-shot timer.  Deadlines are lazy: moving a deadline later is O(1)
 * (the heap entry keeps its old key and is re-filed when it comes up);
 * moving it earlier re-files it at once. */
struct loop_timer {
	uint64_t deadline_ms;   /* when it should fire; 0 = disarmed */
	uint64_t key_ms;        /* position in the heap (<= deadline) */
	uint32_t heap_index;    /* valid while in_heap */
	bool in_heap;
	loop_timer_cb cb;
};

struct loop {
	int epfd;
	struct loop_uring *uring; /* socket I/O through io_uring (uring.c); NULL: epoll only */
	bool stop;
	bool immediate;         /* work is pending: poll without sleeping once */
	uint64_t now_ms;        /* cached monotonic time of this iteration */
	uint64_t now_ns;        /* the same, in nanoseconds */
	struct loop_timer **heap;
	uint32_t nheap, capheap;
	/* Called once at the end of every iteration (deferred frees). */
	void (*on_iteration_end)(struct loop *loop, void *data);
	void *data;
};

/* loop.c - the event loop: epoll_wait (or io_uring_enter, see uring.c), a
 * binary heap of timers, and an end-of-iteration hook where objects closed
 * during the iteration are freed (no object is freed from inside its own
 * callback).
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include "base/util.h"
#include "loop/loop.h"
#include "loop/uring.h"

#define LOOP_MAX_EVENTS 256

/* The iteration's clock, read once per wait before any callback runs. */
void loop_clock_update(struct loop *loop)
{
	loop->now_ns = time_now_ns();
	loop->now_ms = loop->now_ns / 1000000u;
}

int loop_init(struct loop *loop)
{
	int fd = epoll_create1(EPOLL_CLOEXEC);

	if (fd < 0)
		return -errno;
	*loop = (struct loop){ .epfd = fd };
	loop_clock_update(loop);
	return 0;
}

void loop_release(struct loop *loop)
{
	uring_release(loop, 2000);
	if (loop->epfd >= 0)
		close(loop->epfd);
	loop->epfd = -1;
	free(loop->heap);
	loop->heap = NULL;
	loop->nheap = loop->capheap = 0;
}

int loop_add(struct loop *loop, struct loop_io *io, int fd, uint32_t events, loop_io_cb cb)
{
	struct epoll_event ev = { .events = events, .data.ptr = io };

	io->fd = fd;
	io->cb = cb;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	return 0;
}

int loop_mod(struct loop *loop, struct loop_io *io, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = io };

	if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, io->fd, &ev) < 0)
		return -errno;
	return 0;
}

void loop_del(struct loop *loop, struct loop_io *io)
{
	if (io->fd >= 0)
		epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
}

/* --- timer heap (min-heap on key_ms) --- */

static void heap_swap(struct loop *loop, uint32_t a, uint32_t b)
{
	struct loop_timer *t = loop->heap[a];

	loop->heap[a] = loop->heap[b];
	loop->heap[b] = t;
	loop->heap[a]->heap_index = a;
	loop->heap[b]->heap_index = b;
}

static void heap_up(struct loop *loop, uint32_t i)
{
	while (i > 0) {
		uint32_t parent = (i - 1) / 2;
		if (loop->heap[parent]->key_ms <= loop->heap[i]->key_ms)
			break;
		heap_swap(loop, i, parent);
		i = parent;
	}
}

static void heap_down(struct loop *loop, uint32_t i)
{
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < loop->nheap && loop->heap[l]->key_ms < loop->heap[m]->key_ms)
			m = l;
		if (r < loop->nheap && loop->heap[r]->key_ms < loop->heap[m]->key_ms)
			m = r;
		if (m == i)
			break;
		heap_swap(loop, i, m);
		i = m;
	}
}

static void heap_remove(struct loop *loop, struct loop_timer *t)
{
	uint32_t i = t->heap_index, last = --loop->nheap;

	t->in_heap = false;
	if (i == last)
		return;
	loop->heap[i] = loop->heap[last];
	loop->heap[i]->heap_index = i;
	heap_down(loop, i);
	heap_up(loop, i);
}

static int heap_insert(struct loop *loop, struct loop_timer *t)
{
	if (loop->nheap == loop->capheap) {
		uint32_t cap = loop->capheap ? loop->capheap * 2 : 64;
		struct loop_timer **h = realloc(loop->heap, cap * sizeof(*h));
		if (!h)
			return -ENOMEM;
		loop->heap = h;
		loop->capheap = cap;
	}
	t->key_ms = t->deadline_ms;
	t->heap_index = loop->nheap;
	loop->heap[loop->nheap++] = t;
	t->in_heap = true;
	heap_up(loop, t->heap_index);
	return 0;
}

void loop_timer_set(struct loop *loop, struct loop_timer *timer, uint64_t deadline_ms, loop_timer_cb cb)
{
	timer->cb = cb;
	if (deadline_ms == 0)
		deadline_ms = 1;
	timer->deadline_ms = deadline_ms;
	if (timer->in_heap) {
		if (deadline_ms >= timer->key_ms)
			return; /* lazy: re-filed when the old key comes up */
		heap_remove(loop, timer);
	}
	if (heap_insert(loop, timer) < 0)
		abort(); /* out of memory for a few pointers: nothing sane to do */
}

void loop_timer_cancel(struct loop *loop, struct loop_timer *timer)
{
	timer->deadline_ms = 0;
	if (timer->in_heap)
		heap_remove(loop, timer);
}

static void run_timers(struct loop *loop)
{
	while (loop->nheap && loop->heap[0]->key_ms <= loop->now_ms) {
		struct loop_timer *t = loop->heap[0];
		heap_remove(loop, t);
		if (t->deadline_ms == 0)
			continue;
		if (t->deadline_ms != t->key_ms) {
			/* moved later meanwhile: re-file at its real deadline, so that
			 * overdue timers still fire in deadline order */
			heap_insert(loop, t);
			continue;
		}
		t->deadline_ms = 0;
		t->cb(loop, t);
	}
}

static int next_timeout(struct loop *loop)
{
	uint64_t d;

	if (loop->immediate) {
		loop->immediate = false;
		return 0;
	}
	if (!loop->nheap)
		return 1000;
	if (loop->heap[0]->key_ms <= loop->now_ms)
		return 0;
	d = loop->heap[0]->key_ms - loop->now_ms;
	return d > 1000 ? 1000 : (int)d;
}

int loop_run(struct loop *loop)
{
	struct epoll_event events[LOOP_MAX_EVENTS];

	while (!loop->stop) {
		int n = loop->uring ? uring_wait(loop, events, LOOP_MAX_EVENTS, next_timeout(loop))
				    : epoll_wait(loop->epfd, events, LOOP_MAX_EVENTS, next_timeout(loop));
		if (n < 0) {
			if (loop->uring)
				return n;
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (!loop->uring) /* uring_wait did it, before its callbacks */
			loop_clock_update(loop);
		for (int i = 0; i < n; i++) {
			struct loop_io *io = events[i].data.ptr;
			io->cb(loop, io, events[i].events);
		}
		run_timers(loop);
		if (loop->on_iteration_end)
			loop->on_iteration_end(loop, loop->data);
	}
	return 0;
}

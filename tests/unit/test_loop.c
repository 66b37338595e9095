/* test_loop.c - unit tests of the epoll event loop and its timer heap,
 * and of the table of listening sockets handed to the daemon (inherit.c).
 *
 * The loop reads the real monotonic clock, so the tests use short real
 * deadlines (a few ms past "base", the clock when the scenario starts) and
 * stop the loop from a callback.  Every run also arms a guard timer that
 * stops it after GUARD_MS and fails the test, so nothing can hang; the whole
 * program takes well under 2 s.
 *
 * Timer scenarios are a table of operations (set / cancel / sleep) and the
 * fire order they must produce; a last timer 'Z', later than all the others,
 * stops the loop, so a timer that should not fire has had every chance to.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <inttypes.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <cmocka.h>

#include "base/util.h"
#include "loop/inherit.h"
#include "loop/loop.h"
#include "unit.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))
#define GUARD_MS 1500

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* --- guard: stops a run that would otherwise hang --- */

/* Run the loop, stopping it after limit_ms whatever happens.  Returns 0, or
 * 1 (after saying why) if it failed or had to be stopped by the guard, so
 * that callers can release everything before asserting. */
static int run_guarded(struct loop *loop, uint64_t limit_ms)
{
	struct run_guard g = { 0 };
	int ret;

	loop->stop = false;
	loop_timer_set(loop, &g.timer, time_now_ms() + limit_ms, run_guard_cb);
	ret = loop_run(loop);
	loop_timer_cancel(loop, &g.timer);
	if (ret != 0)
		print_error("loop_run returned %d, want 0\n", ret);
	if (g.fired)
		print_error("loop still running after %" PRIu64 " ms: stopped by the guard\n", limit_ms);
	return ret != 0 || g.fired;
}

/* --- timer scenarios --- */

enum op_kind { OP_END = 0, OP_SET, OP_CANCEL, OP_SLEEP };

struct op {
	enum op_kind kind;
	char timer;      /* 'A'..'D', or 'Z' (stops the loop) */
	unsigned ms;     /* SET: deadline = base + ms; SLEEP: how long, before the loop runs */
};

struct scenario {
	const char *name;
	struct op ops[8];
	const char *order; /* the timers that fire, in order, 'Z' last */
};

struct ttimer {
	struct loop_timer timer;
	char name;
	uint64_t deadline; /* last deadline set */
	uint64_t fired_at; /* loop->now_ms in the callback */
	int fired;
	struct run *run;
};

struct run {
	struct ttimer t[5]; /* A B C D Z */
	char order[32];
	size_t norder;
};

static struct ttimer *timer_of(struct run *r, char name)
{
	return &r->t[name == 'Z' ? 4 : name - 'A'];
}

static void scenario_cb(struct loop *loop, struct loop_timer *lt)
{
	struct ttimer *t = container_of(lt, struct ttimer, timer);

	t->fired++;
	t->fired_at = loop->now_ms;
	if (t->run->norder < sizeof(t->run->order) - 1)
		t->run->order[t->run->norder++] = t->name;
	if (t->name == 'Z')
		loop->stop = true;
}

/* Run one scenario; print and count what differs from the table. */
static int run_scenario(const struct scenario *s)
{
	struct loop loop;
	struct run r;
	uint64_t base;
	int failures = 0;

	memset(&r, 0, sizeof(r));
	for (int i = 0; i < 5; i++) {
		r.t[i].name = i == 4 ? 'Z' : (char)('A' + i);
		r.t[i].run = &r;
	}
	assert_int_equal(loop_init(&loop), 0);
	base = loop.now_ms = time_now_ms();
	for (const struct op *op = s->ops; op->kind != OP_END; op++) {
		/* SLEEP names no timer: only look one up for SET and CANCEL */
		struct ttimer *t = op->kind == OP_SLEEP ? NULL : timer_of(&r, op->timer);
		switch (op->kind) {
		case OP_SET:
			t->deadline = base + op->ms;
			loop_timer_set(&loop, &t->timer, t->deadline, scenario_cb);
			break;
		case OP_CANCEL:
			loop_timer_cancel(&loop, &t->timer);
			t->deadline = 0;
			break;
		case OP_SLEEP:
			sleep_ms(op->ms);
			break;
		case OP_END:
			break;
		}
	}
	failures += run_guarded(&loop, GUARD_MS);
	loop_release(&loop);

	if (strcmp(r.order, s->order)) {
		print_error("%s: fired \"%s\", want \"%s\"\n", s->name, r.order, s->order);
		failures++;
	}
	for (int i = 0; i < 5; i++) {
		struct ttimer *t = &r.t[i];
		if (t->fired > 1) {
			print_error("%s: timer %c fired %d times\n", s->name, t->name, t->fired);
			failures++;
		}
		if (t->fired && t->fired_at < t->deadline) {
			print_error("%s: timer %c fired at base+%" PRIu64 " ms, before its deadline base+%" PRIu64 "\n",
				    s->name, t->name, t->fired_at - base, t->deadline - base);
			failures++;
		}
	}
	return failures;
}

#define SET(t, ms) { OP_SET, t, ms }
#define CANCEL(t) { OP_CANCEL, t, 0 }
#define SLEEP(ms) { OP_SLEEP, 0, ms }

static const struct scenario scenarios[] = {
	{ "deadline order", { SET('A', 30), SET('B', 10), SET('C', 20), SET('D', 5), SET('Z', 45) }, "DBCAZ" },
	{ "one timer", { SET('A', 3), SET('Z', 10) }, "AZ" },
	{ "re-arm later (lazy): fires at the new deadline",
	  { SET('A', 5), SET('B', 15), SET('A', 30), SET('Z', 45) }, "BAZ" },
	{ "re-arm later twice", { SET('A', 5), SET('A', 20), SET('A', 40), SET('B', 30), SET('Z', 50) }, "BAZ" },
	{ "re-arm later, then earlier but after the first deadline",
	  { SET('A', 5), SET('A', 40), SET('A', 20), SET('B', 30), SET('Z', 50) }, "ABZ" },
	{ "re-arm later, then earlier than the first deadline",
	  { SET('A', 20), SET('A', 40), SET('A', 5), SET('B', 10), SET('Z', 50) }, "ABZ" },
	{ "re-arm earlier: fires earlier", { SET('A', 40), SET('B', 20), SET('A', 5), SET('Z', 45) }, "ABZ" },
	{ "re-arm to the same deadline", { SET('A', 10), SET('A', 10), SET('B', 5), SET('Z', 20) }, "BAZ" },
	{ "cancel prevents firing", { SET('A', 5), CANCEL('A'), SET('B', 10), SET('Z', 30) }, "BZ" },
	{ "cancel after a lazy re-arm", { SET('A', 5), SET('A', 25), CANCEL('A'), SET('B', 10), SET('Z', 40) }, "BZ" },
	{ "cancel twice, cancel never armed", { SET('A', 5), CANCEL('A'), CANCEL('A'), CANCEL('C'), SET('Z', 20) }, "Z" },
	{ "cancel then re-arm", { SET('A', 5), CANCEL('A'), SET('A', 20), SET('B', 10), SET('Z', 30) }, "BAZ" },
	{ "overdue timers fire in deadline order",
	  { SET('A', 20), SET('B', 10), SET('C', 2), SLEEP(30), SET('Z', 40) }, "CBAZ" },
};

/* A timer moved later keeps its old heap key.  When the loop wakes after
 * both the old key and the new deadline have passed (a long iteration, a
 * busy host), the timer must still fire after timers whose deadlines come
 * before its new one. */
static const struct scenario lazy_overdue_scenarios[] = {
	{ "overdue after a lazy re-arm",
	  { SET('A', 2), SET('A', 20), SET('B', 10), SLEEP(30), SET('Z', 40) }, "BAZ" },
	{ "overdue after a lazy re-arm, three timers",
	  { SET('A', 1), SET('B', 3), SET('A', 25), SET('C', 12), SLEEP(30), SET('Z', 40) }, "BCAZ" },
};

static void test_timer_scenarios(void **state)
{
	(void)state;
	int failures = 0;

	for (size_t i = 0; i < N(scenarios); i++)
		failures += run_scenario(&scenarios[i]);
	assert_int_equal(failures, 0);
}

static void test_timer_lazy_overdue_order(void **state)
{
	(void)state;
	int failures = 0;

	for (size_t i = 0; i < N(lazy_overdue_scenarios); i++)
		failures += run_scenario(&lazy_overdue_scenarios[i]);
	assert_int_equal(failures, 0);
}

/* --- 10,000 random timers --- */

#define NRANDOM 10000

struct rtimer {
	struct loop_timer timer;
	uint64_t deadline;   /* 0: cancelled */
	int fired;
	uint64_t fired_at;
};

struct rrun {
	struct rtimer *t;
	size_t expected, nfired;
	uint64_t last_deadline;
	int out_of_order, early, twice, cancelled_fired;
};

static struct rrun *rrun_current;

static void random_cb(struct loop *loop, struct loop_timer *lt)
{
	struct rtimer *t = container_of(lt, struct rtimer, timer);
	struct rrun *rr = rrun_current;

	if (t->fired++)
		rr->twice++;
	if (!t->deadline)
		rr->cancelled_fired++;
	t->fired_at = loop->now_ms;
	if (loop->now_ms < t->deadline)
		rr->early++;
	if (t->deadline < rr->last_deadline)
		rr->out_of_order++;
	if (t->deadline > rr->last_deadline)
		rr->last_deadline = t->deadline;
	if (++rr->nfired == rr->expected)
		loop->stop = true;
}

/* xorshift: deterministic and independent of libc's rand() */
static uint32_t rnd_state = 0x12345678u;
static uint32_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 17;
	rnd_state ^= rnd_state << 5;
	return rnd_state;
}

/* 10,000 timers at random deadlines within 60 ms, then 10,000 random
 * operations: cancel, re-arm strictly earlier (re-filed at once), re-arm a
 * cancelled timer, and with lazy also re-arm later (the O(1) lazy path).
 * Every live timer must fire exactly once, not before its deadline, and in
 * deadline order; no cancelled timer may fire.  Arming 10,000 timers takes a
 * few ms, so the loop starts late and many timers are overdue together. */
static void random_timers(bool lazy)
{
	struct rrun rr = { 0 };
	struct loop loop;
	uint64_t base, t0 = time_now_ms();

	rr.t = calloc(NRANDOM, sizeof(*rr.t));
	assert_non_null(rr.t);
	rrun_current = &rr;
	assert_int_equal(loop_init(&loop), 0);
	base = loop.now_ms = time_now_ms();
	for (size_t i = 0; i < NRANDOM; i++) {
		rr.t[i].deadline = base + 1 + rnd() % 60;
		loop_timer_set(&loop, &rr.t[i].timer, rr.t[i].deadline, random_cb);
	}
	for (size_t i = 0; i < NRANDOM; i++) {
		struct rtimer *t = &rr.t[rnd() % NRANDOM];
		uint32_t what = rnd() % 10;
		if (what == 0) {                         /* cancel */
			loop_timer_cancel(&loop, &t->timer);
			t->deadline = 0;
		} else if (what <= 2 && !t->deadline) {  /* re-arm a cancelled timer */
			t->deadline = base + 1 + rnd() % 60;
			loop_timer_set(&loop, &t->timer, t->deadline, random_cb);
		} else if (what <= 2 && t->deadline > base + 1) { /* re-arm earlier */
			t->deadline = base + 1 + rnd() % (t->deadline - base - 1);
			loop_timer_set(&loop, &t->timer, t->deadline, random_cb);
		} else if (what <= 4 && lazy && t->deadline) { /* re-arm later */
			t->deadline += 1 + rnd() % 40;
			loop_timer_set(&loop, &t->timer, t->deadline, random_cb);
		}
	}
	for (size_t i = 0; i < NRANDOM; i++)
		rr.expected += rr.t[i].deadline != 0;
	assert_true(rr.expected > NRANDOM / 2);
	int hung = run_guarded(&loop, GUARD_MS);
	uint32_t left_in_heap = loop.nheap;
	loop_release(&loop);

	int wrong_count = 0;
	for (size_t i = 0; i < NRANDOM; i++) {
		if (rr.t[i].fired != (rr.t[i].deadline != 0) && wrong_count++ < 10)
			print_error("timer %zu (deadline base+%" PRIu64 "): fired %d times\n", i,
				    rr.t[i].deadline ? rr.t[i].deadline - base : 0, rr.t[i].fired);
	}
	free(rr.t);
	uint64_t elapsed = time_now_ms() - t0;

	if (rr.twice || rr.cancelled_fired || rr.early || rr.out_of_order)
		print_error("%s: %zu of %zu fired; %d twice, %d cancelled ones, %d early, %d after a later deadline\n",
			    lazy ? "with lazy re-arms" : "without lazy re-arms", rr.nfired, rr.expected, rr.twice,
			    rr.cancelled_fired, rr.early, rr.out_of_order);
	assert_int_equal(hung, 0);
	assert_int_equal(rr.nfired, rr.expected);
	assert_int_equal(rr.twice, 0);
	assert_int_equal(rr.cancelled_fired, 0);
	assert_int_equal(rr.early, 0);
	assert_int_equal(rr.out_of_order, 0);
	assert_int_equal(wrong_count, 0);
	assert_int_equal(left_in_heap, 0);
	assert_in_range(elapsed, 0, 1000);
}

static void test_random_timers(void **state)
{
	(void)state;
	random_timers(false);
}

static void test_random_timers_lazy(void **state)
{
	(void)state;
	random_timers(true);
}

/* --- fd events --- */

struct pipe_io {
	struct loop_io io;
	int calls;
	uint32_t events;
	char byte;
	int hook_at_call; /* iterations completed when the callback ran */
	int *iterations;
};

static void pipe_cb(struct loop *loop, struct loop_io *io, uint32_t events)
{
	struct pipe_io *p = container_of(io, struct pipe_io, io);

	p->calls++;
	p->events = events;
	if (p->iterations)
		p->hook_at_call = *p->iterations;
	assert_int_equal(read(io->fd, &p->byte, 1), 1);
	loop->stop = true;
}

struct writer {
	struct loop_timer timer;
	int fd;
};

static void writer_cb(struct loop *loop, struct loop_timer *t)
{
	struct writer *w = container_of(t, struct writer, timer);
	(void)loop;
	assert_int_equal(write(w->fd, "x", 1), 1);
}

static void test_fd_event(void **state)
{
	(void)state;
	struct pipe_io p = { 0 };
	struct writer w = { 0 };
	struct loop loop;
	int fds[2];

	assert_int_equal(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
	assert_int_equal(loop_init(&loop), 0);
	assert_int_equal(loop_add(&loop, &p.io, fds[0], EPOLLIN, pipe_cb), 0);
	assert_int_equal(p.io.fd, fds[0]);

	/* the loop sleeps in epoll_wait and wakes for the byte written at +5 ms */
	w.fd = fds[1];
	loop_timer_set(&loop, &w.timer, time_now_ms() + 5, writer_cb);
	assert_int_equal(run_guarded(&loop, GUARD_MS), 0);
	assert_int_equal(p.calls, 1);
	assert_true(p.events & EPOLLIN);
	assert_int_equal(p.byte, 'x');

	/* after loop_del the callback is no longer called */
	loop_del(&loop, &p.io);
	assert_int_equal(write(fds[1], "y", 1), 1);
	struct run_guard stop = { 0 };
	loop.stop = false;
	loop_timer_set(&loop, &stop.timer, time_now_ms() + 10, run_guard_cb);
	assert_int_equal(loop_run(&loop), 0);
	assert_true(stop.fired);
	assert_int_equal(p.calls, 1);

	loop_release(&loop);
	close(fds[0]);
	close(fds[1]);
}

static void test_fd_event_already_readable(void **state)
{
	(void)state;
	struct pipe_io p = { 0 };
	struct loop loop;
	int fds[2];

	assert_int_equal(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
	assert_int_equal(write(fds[1], "z", 1), 1);
	assert_int_equal(loop_init(&loop), 0);
	assert_int_equal(loop_add(&loop, &p.io, fds[0], EPOLLIN | EPOLLET, pipe_cb), 0);
	assert_int_equal(run_guarded(&loop, GUARD_MS), 0);
	assert_int_equal(p.calls, 1);
	assert_true(p.events & EPOLLIN);
	assert_int_equal(p.byte, 'z');
	loop_release(&loop);
	close(fds[0]);
	close(fds[1]);
}

/* --- on_iteration_end and immediate --- */

struct hook_state {
	int calls;
	int stop_after;
	bool keep_immediate;
	bool immediate_seen;  /* loop->immediate when the hook ran */
	void *data_seen;
};

static void hook(struct loop *loop, void *data)
{
	struct hook_state *h = data;

	h->calls++;
	h->data_seen = data;
	h->immediate_seen = loop->immediate;
	if (h->keep_immediate)
		loop->immediate = true;
	if (h->calls == h->stop_after)
		loop->stop = true;
}

/* Iterations that do nothing (immediate: epoll_wait does not sleep) still
 * call the hook, once each. */
static void test_iteration_end_idle(void **state)
{
	(void)state;
	struct hook_state h = { .stop_after = 5, .keep_immediate = true };
	struct loop loop;
	uint64_t t0;

	assert_int_equal(loop_init(&loop), 0);
	loop.on_iteration_end = hook;
	loop.data = &h;
	loop.immediate = true;
	t0 = time_now_ms();
	assert_int_equal(run_guarded(&loop, GUARD_MS), 0);
	assert_int_equal(h.calls, 5);
	assert_ptr_equal(h.data_seen, &h);
	assert_in_range(time_now_ms() - t0, 0, 200);
	loop_release(&loop);
}

struct hook_timer {
	struct loop_timer timer;
	int *iterations;
	int hook_at_call;
	int calls;
};

static void hook_timer_cb(struct loop *loop, struct loop_timer *lt)
{
	struct hook_timer *t = container_of(lt, struct hook_timer, timer);
	(void)loop;
	t->calls++;
	t->hook_at_call = *t->iterations;
}

/* An fd event and a due timer in the same iteration: one hook call, after
 * both callbacks. */
static void test_iteration_end_once_per_iteration(void **state)
{
	(void)state;
	struct hook_state h = { .stop_after = 1 };
	struct pipe_io p = { .iterations = &h.calls, .hook_at_call = -1 };
	struct hook_timer t = { .iterations = &h.calls, .hook_at_call = -1 };
	struct loop loop;
	int fds[2];

	assert_int_equal(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
	assert_int_equal(write(fds[1], "x", 1), 1);
	assert_int_equal(loop_init(&loop), 0);
	loop.on_iteration_end = hook;
	loop.data = &h;
	assert_int_equal(loop_add(&loop, &p.io, fds[0], EPOLLIN, pipe_cb), 0);
	loop_timer_set(&loop, &t.timer, loop.now_ms, hook_timer_cb); /* already due */
	assert_int_equal(run_guarded(&loop, GUARD_MS), 0);
	assert_int_equal(p.calls, 1);
	assert_int_equal(t.calls, 1);
	assert_int_equal(p.hook_at_call, 0);
	assert_int_equal(t.hook_at_call, 0);
	assert_int_equal(h.calls, 1);
	loop_release(&loop);
	close(fds[0]);
	close(fds[1]);
}

/* Timers on separate iterations: the hook runs between them. */
static void test_iteration_end_between_timers(void **state)
{
	(void)state;
	struct hook_state h = { .stop_after = -1 };
	struct hook_timer a = { .iterations = &h.calls }, b = { .iterations = &h.calls };
	struct run_guard z = { 0 };
	struct loop loop;
	uint64_t base;

	assert_int_equal(loop_init(&loop), 0);
	loop.on_iteration_end = hook;
	loop.data = &h;
	base = time_now_ms();
	loop_timer_set(&loop, &a.timer, base + 5, hook_timer_cb);
	loop_timer_set(&loop, &b.timer, base + 25, hook_timer_cb);
	loop_timer_set(&loop, &z.timer, base + 45, run_guard_cb);
	assert_int_equal(loop_run(&loop), 0);
	assert_true(z.fired);
	assert_int_equal(a.calls, 1);
	assert_int_equal(b.calls, 1);
	assert_true(b.hook_at_call > a.hook_at_call);
	assert_true(h.calls > b.hook_at_call); /* the iteration that fired b ended too */
	loop_release(&loop);
}

/* immediate: the next epoll_wait does not sleep, once; the flag is consumed. */
static void test_immediate(void **state)
{
	(void)state;
	struct hook_state h = { .stop_after = 1 };
	struct hook_timer far = { .iterations = &h.calls };
	struct loop loop;
	uint64_t t0;

	assert_int_equal(loop_init(&loop), 0);
	loop.on_iteration_end = hook;
	loop.data = &h;
	loop_timer_set(&loop, &far.timer, time_now_ms() + 800, hook_timer_cb);
	loop.immediate = true;
	t0 = time_now_ms();
	assert_int_equal(loop_run(&loop), 0);
	assert_in_range(time_now_ms() - t0, 0, 200); /* did not wait for the 800 ms timer */
	assert_int_equal(h.calls, 1);
	assert_false(h.immediate_seen);
	assert_int_equal(far.calls, 0);
	loop_release(&loop);
}

/* ------------------------------------------------------------------ */
/* inherit.c: sockets from systemd or the previous daemon              */

/* A listening TCP socket on 127.0.0.1 (a port the kernel picks), its
 * address in *sin. */
static int tcp_listener(struct sockaddr_in *sin)
{
	socklen_t len = sizeof(*sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)sin, sizeof(*sin)), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)sin, &len), 0);
	return fd;
}

static int unix_listener(const char *path, bool listening)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	unlink(path);
	strcpy(sun.sun_path, path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	if (listening)
		assert_int_equal(listen(fd, 8), 0);
	return fd;
}

static bool fd_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

/* What inherited_add() refuses: each is closed. */
static void test_inherited_add_refuses(void **state)
{
	(void)state;
	struct inherited h = { 0 };
	char path[64];
	int p[2], before = count_fds(), fd;

	snprintf(path, sizeof(path), "/tmp/cutover-test-inherit-%d.sock", (int)getpid());
	assert_int_equal(pipe(p), 0);
	close(p[1]);
	assert_int_equal(inherited_add(&h, p[0], "pipe"), -ENOTSOCK);
	assert_false(fd_open(p[0]));
	fd = unix_listener(path, false); /* bound, not listening */
	assert_int_equal(inherited_add(&h, fd, NULL), -EINVAL);
	assert_false(fd_open(fd));
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_int_equal(inherited_add(&h, fd, NULL), -EINVAL);
	assert_false(fd_open(fd));
	assert_int_equal(h.n, 0);
	inherited_release(&h);
	unlink(path);
	assert_int_equal(count_fds(), before);
}

/* Taken by address; the Unix socket's path is known before it is taken
 * (the daemon then keeps its file); what nobody took is closed. */
static void test_inherited_take_by_address(void **state)
{
	(void)state;
	struct inherited h = { .from = "systemd" };
	struct sockaddr_in sin, other;
	char path[64], longpath[200];
	int before = count_fds(), tcp, tcp2, ux;

	snprintf(path, sizeof(path), "/tmp/cutover-test-inherit-%d.sock", (int)getpid());
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = 0;
	tcp = tcp_listener(&sin);
	tcp2 = tcp_listener(&other);
	ux = unix_listener(path, true);
	assert_int_equal(inherited_add(&h, tcp, "proxy"), 0);
	assert_int_equal(inherited_add(&h, ux, "admin"), 0);
	assert_int_equal(inherited_add(&h, tcp2, NULL), 0);
	assert_int_equal(h.n, 3);
	assert_string_equal(h.socks[0].name, "proxy");
	assert_string_equal(h.socks[2].name, "");
	assert_true(fcntl(tcp, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(tcp, F_GETFD) & FD_CLOEXEC);

	const struct {
		const char *path;
		bool has;
	} unix_cases[] = {
		{ path, true }, { "/tmp/cutover-test-inherit-none.sock", false }, { "", false }, { longpath, false },
		{ NULL, false },
	};
	for (size_t i = 0; i < N(unix_cases); i++)
		assert_int_equal(inherited_has_unix(&h, unix_cases[i].path), unix_cases[i].has);
	assert_false(inherited_has_unix(NULL, path));

	/* the same port on another address is another socket */
	struct sockaddr_in any = sin;
	any.sin_addr.s_addr = htonl(INADDR_ANY);
	assert_int_equal(inherited_take(&h, (struct sockaddr *)&any, sizeof(any)), -1);
	assert_int_equal(inherited_take(&h, (struct sockaddr *)&sin, sizeof(sin)), tcp);
	assert_int_equal(inherited_take(&h, (struct sockaddr *)&sin, sizeof(sin)), -1); /* taken */
	assert_int_equal(inherited_take_unix(&h, path), ux);
	assert_false(inherited_has_unix(&h, path));
	assert_int_equal(inherited_take(NULL, (struct sockaddr *)&sin, sizeof(sin)), -1);

	char what[128];
	inherited_describe(&h.socks[1], what, sizeof(what));
	assert_string_equal(what, path);
	/* the one nobody took (tcp2) is closed; the taken ones are the caller's */
	inherited_release(&h);
	assert_null(h.socks);
	assert_false(fd_open(tcp2));
	assert_true(fd_open(tcp) && fd_open(ux));
	close(tcp);
	close(ux);
	unlink(path);
	assert_int_equal(count_fds(), before);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timer_scenarios),
		cmocka_unit_test(test_timer_lazy_overdue_order),
		cmocka_unit_test(test_random_timers),
		cmocka_unit_test(test_random_timers_lazy),
		cmocka_unit_test(test_fd_event),
		cmocka_unit_test(test_fd_event_already_readable),
		cmocka_unit_test(test_iteration_end_idle),
		cmocka_unit_test(test_iteration_end_once_per_iteration),
		cmocka_unit_test(test_iteration_end_between_timers),
		cmocka_unit_test(test_immediate),
		cmocka_unit_test(test_inherited_add_refuses),
		cmocka_unit_test(test_inherited_take_by_address),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

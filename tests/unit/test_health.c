/* test_health.c - unit tests of the active HTTP health checker.
 *
 * Each test runs a real struct loop with a tiny HTTP server on 127.0.0.1
 * registered on the same loop (single thread, no sleeps).  The server answers connection number i according to
 * script[i % strlen(script)]:
 *   '+' 200   '3' 301   '4' 404   '-' 503   'i' 100 Continue then 200
 *   's' silent (reads the request, never answers: the probe times out)
 *   'c' closes at once   'g' garbage   't' truncated head   'b' head > 8 KiB
 * A NULL script means nobody listens on the port (connection refused).
 *
 * Outcome scenarios are a table: script, thresholds, timings, how many
 * probes to run, and the transitions expected, each with the probe count at
 * which it must happen.  Every test checks that the server received the
 * exact request bytes, that the checker is freed (ASan / valgrind) and that
 * no file descriptor is left open.  Every run is bounded by a guard timer;
 * the whole program takes a few seconds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <inttypes.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "base/list.h"
#include "base/util.h"
#include "deploy/health.h"
#include "loop/loop.h"
#include "unit.h"

#define GUARD_MS 2500
#define MAX_CONNS 32
#define MAX_TRANSITIONS 32

static const char EXPECTED_REQUEST[] = "GET /health HTTP/1.1\r\n"
				       "Host: shop.test\r\n"
				       "User-Agent: cutover-health\r\n"
				       "Connection: close\r\n"
				       "\r\n";

/* --- the test server ------------------------------------------------------ */

struct server;

struct sconn {
	struct loop_io io;          /* io.fd -1: free slot */
	struct server *srv;
	char mode;
	char req[512];
	size_t len;
	bool answered;
};

struct server {
	struct loop *loop;
	struct loop_io listen_io;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	const char *script;
	unsigned accepted;
	unsigned requests;          /* complete requests read */
	unsigned bad_requests;      /* requests that differ from EXPECTED_REQUEST */
	struct sconn conns[MAX_CONNS];
};

static void sconn_close(struct sconn *sc)
{
	loop_del(sc->srv->loop, &sc->io);
	close(sc->io.fd);
	sc->io.fd = -1;
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		assert_true(w > 0); /* small responses fit in a loopback socket buffer */
		p += w;
		n -= (size_t)w;
	}
}

/* Answer a complete request according to the connection's mode. */
static void sconn_answer(struct sconn *sc)
{
	static const char *const canned[] = {
		['+'] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		['3'] = "HTTP/1.1 301 Moved Permanently\r\nLocation: /\r\nContent-Length: 0\r\n\r\n",
		['4'] = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
		['-'] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
		['i'] = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		['g'] = "NOT HTTP AT ALL\r\n\r\n",
		['t'] = "HTTP/1.1 200 OK\r\nContent-",
	};

	sc->answered = true;
	if (sc->mode == 's')
		return;
	if (sc->mode == 'b') {
		static char big[HEALTH_HEAD_MAX + 1024];
		memset(big, 'a', sizeof(big));
		memcpy(big, "HTTP/1.1 200 OK\r\nX-Pad: ", 24);
		write_all(sc->io.fd, big, sizeof(big));
	} else {
		assert_true((unsigned char)sc->mode < ARRAY_SIZE(canned) && canned[(unsigned char)sc->mode]);
		write_all(sc->io.fd, canned[(unsigned char)sc->mode], strlen(canned[(unsigned char)sc->mode]));
	}
	sconn_close(sc);
}

static void sconn_cb(struct loop *loop UNUSED, struct loop_io *io, uint32_t events UNUSED)
{
	struct sconn *sc = container_of(io, struct sconn, io);

	for (;;) {
		ssize_t n = read(io->fd, sc->req + sc->len, sizeof(sc->req) - 1 - sc->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0 || sc->len + (size_t)n >= sizeof(sc->req) - 1) {
			sconn_close(sc); /* the checker closed (timeout), or too much */
			return;
		}
		sc->len += (size_t)n;
		sc->req[sc->len] = '\0';
		if (!sc->answered && strstr(sc->req, "\r\n\r\n")) {
			sc->srv->requests++;
			if (strcmp(sc->req, EXPECTED_REQUEST)) {
				sc->srv->bad_requests++;
				print_error("request was \"%s\"\n", sc->req);
			}
			sconn_answer(sc);
			if (sc->io.fd < 0)
				return;
		}
	}
}

static void server_accept_cb(struct loop *loop, struct loop_io *io, uint32_t events UNUSED)
{
	struct server *srv = container_of(io, struct server, listen_io);

	for (;;) {
		struct sconn *sc = NULL;
		int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			assert_true(errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
			if (errno == EINTR)
				continue;
			return;
		}
		for (size_t i = 0; i < MAX_CONNS && !sc; i++)
			if (srv->conns[i].io.fd < 0)
				sc = &srv->conns[i];
		assert_non_null(sc);
		*sc = (struct sconn){ .io.fd = -1, .srv = srv, .mode = srv->script[srv->accepted % strlen(srv->script)] };
		srv->accepted++;
		if (sc->mode == 'c') {
			close(fd);
			continue;
		}
		assert_int_equal(loop_add(loop, &sc->io, fd, EPOLLIN | EPOLLRDHUP | EPOLLET, sconn_cb), 0);
	}
}

/* Listen on 127.0.0.1, port chosen by the kernel.  With a NULL script the
 * socket is closed again: the port then refuses connections. */
static void server_start(struct server *srv, struct loop *loop, const char *script)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd;

	memset(srv, 0, sizeof(*srv));
	srv->loop = loop;
	srv->script = script;
	srv->listen_io.fd = -1;
	for (size_t i = 0; i < MAX_CONNS; i++)
		srv->conns[i].io.fd = -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	srv->addr_len = sizeof(srv->addr);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&srv->addr, &srv->addr_len), 0);
	if (!script) {
		close(fd);
		return;
	}
	assert_int_equal(listen(fd, 64), 0);
	assert_int_equal(loop_add(loop, &srv->listen_io, fd, EPOLLIN | EPOLLET, server_accept_cb), 0);
}

static void server_stop(struct server *srv)
{
	for (size_t i = 0; i < MAX_CONNS; i++)
		if (srv->conns[i].io.fd >= 0)
			sconn_close(&srv->conns[i]);
	if (srv->listen_io.fd >= 0) {
		loop_del(srv->loop, &srv->listen_io);
		close(srv->listen_io.fd);
		srv->listen_io.fd = -1;
	}
}

/* --- the test context: loop, server, checker, recorded transitions -------- */

struct transition {
	enum health_state state;
	uint64_t probes;            /* completed probes when it happened */
	uint64_t at_ms;             /* since health_start */
	char reason[HEALTH_REASON_MAX];
};

struct ctx {
	struct loop loop;
	struct server srv;
	struct health_check *hc;
	struct health_stats last_stats; /* copied at each callback and before stopping */
	struct transition tr[MAX_TRANSITIONS];
	unsigned ntr;
	int stop_in_cb;             /* health_stop() calls made from the callback */
	uint64_t start_ms;
	int fds_before;
	/* run_loop */
	bool (*until)(struct ctx *c);
	uint64_t until_probes;
	struct loop_timer poll_timer, guard_timer;
	bool guard_fired;
};

static uint64_t completed(const struct health_stats *st)
{
	return st->successes + st->failures;
}

static void record_cb(struct health_check *hc, enum health_state state, const char *reason, void *data)
{
	struct ctx *c = data;
	struct transition *t;

	assert_ptr_equal(hc, c->hc);
	assert_int_equal(health_state(hc), state);
	assert_non_null(reason);
	c->last_stats = *health_stats(hc);
	assert_true(c->ntr < MAX_TRANSITIONS);
	t = &c->tr[c->ntr++];
	t->state = state;
	t->probes = completed(health_stats(hc));
	t->at_ms = time_now_ms() - c->start_ms;
	snprintf(t->reason, sizeof(t->reason), "%s", reason);
	for (int i = 0; i < c->stop_in_cb; i++)
		health_stop(hc); /* the second call must be a no-op */
	if (c->stop_in_cb)
		c->hc = NULL;
}

static void ctx_init(struct ctx *c, const char *script)
{
	memset(c, 0, sizeof(*c));
	c->fds_before = count_fds();
	assert_int_equal(loop_init(&c->loop), 0);
	server_start(&c->srv, &c->loop, script);
}

static struct health_spec spec_default(const struct ctx *c)
{
	return (struct health_spec){
		.addr = c->srv.addr,
		.addr_len = c->srv.addr_len,
		.path = "/health",
		.host = "shop.test",
		.interval_ms = 25,
		.timeout_ms = 20,
		.healthy_threshold = 1,
		.unhealthy_threshold = 1,
		.start_grace_ms = 0,
	};
}

static void ctx_start(struct ctx *c, const struct health_spec *spec)
{
	c->start_ms = time_now_ms();
	assert_int_equal(health_start(&c->loop, spec, record_cb, c, &c->hc), 0);
	assert_non_null(c->hc);
	assert_int_equal(health_state(c->hc), HEALTH_UNKNOWN);
}

/* Free everything and check that nothing is left: no fd, no loop timer. */
static void ctx_release(struct ctx *c)
{
	if (c->hc)
		c->last_stats = *health_stats(c->hc);
	c->hc = health_free(c->hc);
	assert_null(c->hc);
	server_stop(&c->srv);
	assert_int_equal(c->loop.nheap, 0);
	loop_release(&c->loop);
	assert_int_equal(c->srv.bad_requests, 0);
	assert_int_equal(count_fds(), c->fds_before);
}

static void poll_cb(struct loop *loop, struct loop_timer *t)
{
	struct ctx *c = container_of(t, struct ctx, poll_timer);

	if (c->until(c)) {
		loop->stop = true;
		return;
	}
	loop_timer_set(loop, t, loop->now_ms + 1, poll_cb);
}

static void guard_cb(struct loop *loop, struct loop_timer *t)
{
	container_of(t, struct ctx, guard_timer)->guard_fired = true;
	loop->stop = true;
}

/* Run until c->until(c) holds (checked every ms) or limit_ms has passed.
 * Returns true when until held. */
static bool run_loop(struct ctx *c, bool (*until)(struct ctx *c), uint64_t limit_ms)
{
	c->until = until;
	c->guard_fired = false;
	c->loop.stop = false;
	loop_timer_set(&c->loop, &c->guard_timer, time_now_ms() + limit_ms, guard_cb);
	if (until)
		loop_timer_set(&c->loop, &c->poll_timer, time_now_ms(), poll_cb);
	assert_int_equal(loop_run(&c->loop), 0);
	loop_timer_cancel(&c->loop, &c->guard_timer);
	loop_timer_cancel(&c->loop, &c->poll_timer);
	return !c->guard_fired;
}

static bool probes_done(struct ctx *c)
{
	return c->hc && completed(health_stats(c->hc)) >= c->until_probes;
}

/* --- outcome scenarios ----------------------------------------------------- */

struct expect {
	char state;                 /* 'H' healthy, 'U' unhealthy, 0 ends the list */
	unsigned at;                /* completed probes at the time; 0: not checked */
};

struct scenario {
	const char *name;
	const char *script;         /* NULL: connection refused */
	uint32_t healthy, unhealthy;
	uint64_t interval_ms, timeout_ms; /* 0: 25 ms and 20 ms */
	uint64_t grace_ms;
	unsigned probes;            /* run until this many probes completed */
	struct expect expect[8];    /* the transitions, in order */
	const char *fail_reason;    /* reason of every UNHEALTHY transition, and last_error */
	const char *ok_reason;      /* reason of every HEALTHY transition (NULL: "status 200") */
	uint64_t min_ms, max_ms;    /* bounds on the first transition's time (0: unchecked);
				     * timers have 1 ms granularity, hence 2 ms of slack */
};

static const struct scenario scenarios[] = {
	{ "200 with healthy_threshold 2", "+", .healthy = 2, .unhealthy = 2, .probes = 4,
	  .expect = { { 'H', 2 } } },
	{ "301 is a success", "3", .healthy = 1, .unhealthy = 1, .probes = 2,
	  .expect = { { 'H', 1 } }, .ok_reason = "status 301" },
	{ "100 Continue, then 200", "i", .healthy = 1, .unhealthy = 1, .probes = 2,
	  .expect = { { 'H', 1 } } },
	{ "503 with unhealthy_threshold 3", "-", .healthy = 2, .unhealthy = 3, .probes = 5,
	  .expect = { { 'U', 3 } }, .fail_reason = "status 503" },
	{ "404 is a failure", "4", .healthy = 1, .unhealthy = 1, .probes = 2,
	  .expect = { { 'U', 1 } }, .fail_reason = "status 404" },
	{ "closed port", NULL, .healthy = 1, .unhealthy = 2, .probes = 3,
	  .expect = { { 'U', 2 } }, .fail_reason = "connection refused" },
	{ "never answers", "s", .healthy = 1, .unhealthy = 2, .interval_ms = 60, .timeout_ms = 25,
	  .probes = 2, .expect = { { 'U', 2 } }, .fail_reason = "timeout",
	  .min_ms = 60 + 25 - 2, .max_ms = 60 + 25 + 100 },
	{ "garbage", "g", .healthy = 1, .unhealthy = 1, .probes = 2,
	  .expect = { { 'U', 1 } }, .fail_reason = "invalid response" },
	{ "truncated head", "t", .healthy = 1, .unhealthy = 1, .probes = 2,
	  .expect = { { 'U', 1 } }, .fail_reason = "invalid response" },
	{ "head over 8 KiB", "b", .healthy = 1, .unhealthy = 1, .probes = 2,
	  .expect = { { 'U', 1 } }, .fail_reason = "invalid response" },
	{ "closes at once", "c", .healthy = 1, .unhealthy = 1, .probes = 2,
	  .expect = { { 'U', 1 } }, .fail_reason = "connection closed" },
	{ "flapping, thresholds 1", "+-", .healthy = 1, .unhealthy = 1, .probes = 6,
	  .expect = { { 'H', 1 }, { 'U', 2 }, { 'H', 3 }, { 'U', 4 }, { 'H', 5 }, { 'U', 6 } },
	  .fail_reason = "status 503" },
	{ "flapping, thresholds 2: no change", "+-", .healthy = 2, .unhealthy = 2, .probes = 8,
	  .fail_reason = "status 503" },
	{ "down, up, down", "+--+++---", .healthy = 2, .unhealthy = 2, .probes = 9,
	  .expect = { { 'U', 3 }, { 'H', 5 }, { 'U', 8 } }, .fail_reason = "status 503" },
	{ "grace: failures before the first success do not count", "---++--", .healthy = 2,
	  .unhealthy = 2, .grace_ms = 2000, .probes = 7, .expect = { { 'H', 5 }, { 'U', 7 } },
	  .fail_reason = "status 503" },
	{ "grace: over without a success -> unhealthy at its end", "-", .healthy = 1,
	  .unhealthy = 100, .interval_ms = 30, .timeout_ms = 15, .grace_ms = 150, .probes = 10,
	  .expect = { { 'U', 0 } }, .fail_reason = "status 503", .min_ms = 150 - 2, .max_ms = 150 + 100 },
	{ "grace: over before the first probe ended -> its failure is enough", "s", .healthy = 1,
	  .unhealthy = 3, .interval_ms = 100, .timeout_ms = 80, .grace_ms = 40, .probes = 1,
	  .expect = { { 'U', 1 } }, .fail_reason = "timeout", .min_ms = 80 - 2, .max_ms = 80 + 100 },
	{ "grace 0: the threshold applies from the first probe", "-", .healthy = 1,
	  .unhealthy = 2, .probes = 3, .expect = { { 'U', 2 } }, .fail_reason = "status 503" },
};

static void run_outcome_scenario(const struct scenario *s)
{
	struct ctx c;
	struct health_spec spec;
	unsigned nexpect = 0;
	bool done;

	ctx_init(&c, s->script);
	spec = spec_default(&c);
	spec.healthy_threshold = s->healthy;
	spec.unhealthy_threshold = s->unhealthy;
	if (s->interval_ms) {
		spec.interval_ms = s->interval_ms;
		spec.timeout_ms = s->timeout_ms;
	}
	spec.start_grace_ms = s->grace_ms;
	ctx_start(&c, &spec);
	c.until_probes = s->probes;
	done = run_loop(&c, probes_done, GUARD_MS);
	ctx_release(&c);

	if (!done)
		fail_msg("%s: %u probes not completed within %d ms", s->name, s->probes, GUARD_MS);
	while (s->expect[nexpect].state)
		nexpect++;
	if (c.ntr != nexpect) {
		for (unsigned i = 0; i < c.ntr; i++)
			print_error("%s: got %s at probe %" PRIu64 " (%s)\n", s->name,
				    health_state_name(c.tr[i].state), c.tr[i].probes, c.tr[i].reason);
		fail_msg("%s: %u transitions, want %u", s->name, c.ntr, nexpect);
	}
	for (unsigned i = 0; i < nexpect; i++) {
		const struct expect *e = &s->expect[i];
		const struct transition *t = &c.tr[i];
		enum health_state want = e->state == 'H' ? HEALTH_HEALTHY : HEALTH_UNHEALTHY;

		if (t->state != want || (e->at && t->probes != e->at))
			fail_msg("%s: transition %u is %s at probe %" PRIu64 ", want %s at probe %u", s->name, i,
				 health_state_name(t->state), t->probes, health_state_name(want), e->at);
		assert_string_equal(t->reason, want == HEALTH_HEALTHY ? (s->ok_reason ? s->ok_reason : "status 200")
								       : s->fail_reason);
	}
	if (nexpect && s->min_ms && (c.tr[0].at_ms < s->min_ms || c.tr[0].at_ms > s->max_ms))
		fail_msg("%s: first transition after %" PRIu64 " ms, want %" PRIu64 "..%" PRIu64, s->name,
			 c.tr[0].at_ms, s->min_ms, s->max_ms);
	assert_string_equal(c.last_stats.last_error, s->fail_reason ? s->fail_reason : "");
	if (s->script && !strchr(s->script, 'c'))
		assert_true(c.srv.requests > 0);
}

/* One cmocka test per scenario: state is the scenario. */
static void test_outcome_scenario(void **state)
{
	run_outcome_scenario(*state);
}

/* --- pacing ----------------------------------------------------------------- */

/* Interval 50 ms over 500 ms: 10 or 11 probes; allow 8..12.  The interval
 * runs from probe start to probe start: probes that each take the whole
 * 40 ms timeout keep the same pace (from their end, it would be ~6). */
static void test_interval_pacing(void **state UNUSED)
{
	static const struct {
		const char *script;
		enum health_state state;
	} cases[] = {
		{ "+", HEALTH_HEALTHY },
		{ "s", HEALTH_UNHEALTHY },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct ctx c;
		struct health_spec spec;
		const struct health_stats *st = &c.last_stats;

		ctx_init(&c, cases[i].script);
		spec = spec_default(&c);
		spec.interval_ms = 50;
		spec.timeout_ms = 40;
		ctx_start(&c, &spec);
		assert_false(run_loop(&c, NULL, 500));
		assert_int_equal(health_state(c.hc), cases[i].state);
		ctx_release(&c);
		if (st->probes < 8 || st->probes > 12)
			fail_msg("script \"%s\": %" PRIu64 " probes in 500 ms at a 50 ms interval, want 8..12",
				 cases[i].script, st->probes);
		assert_true(completed(st) >= st->probes - 1);
		if (cases[i].state == HEALTH_HEALTHY) {
			assert_int_equal(st->failures, 0);
			assert_true(st->last_latency_us > 0 && st->last_latency_us < 40000);
			assert_string_equal(st->last_error, "");
		} else {
			assert_int_equal(st->successes, 0);
			assert_string_equal(st->last_error, "timeout");
		}
	}
}

/* --- lifetime ---------------------------------------------------------------- */

struct stop_case {
	const char *name;
	const char *script;
	uint32_t unhealthy;
	uint64_t interval_ms, timeout_ms, grace_ms;
	const char *reason;
};

/* health_stop() from the callback, on each path that calls it: a socket
 * event, the timeout timer, a connect refused at once, the grace timer. */
static void test_stop_in_callback(void **state UNUSED)
{
	static const struct stop_case cases[] = {
		{ "socket event", "+", 1, 25, 20, 0, "status 200" },
		{ "timeout timer", "s", 1, 40, 20, 0, "timeout" },
		{ "connect refused", NULL, 1, 25, 20, 0, "connection refused" },
		{ "grace timer", "-", 100, 25, 20, 70, "status 503" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct stop_case *k = &cases[i];
		struct ctx c;
		struct health_spec spec;

		ctx_init(&c, k->script);
		spec = spec_default(&c);
		spec.unhealthy_threshold = k->unhealthy;
		spec.interval_ms = k->interval_ms;
		spec.timeout_ms = k->timeout_ms;
		spec.start_grace_ms = k->grace_ms;
		c.stop_in_cb = 2;
		ctx_start(&c, &spec);
		/* run on well past the stop: no callback, no probe may follow */
		assert_false(run_loop(&c, NULL, 250));
		assert_null(c.hc);
		if (c.ntr != 1)
			fail_msg("%s: %u callbacks, want 1", k->name, c.ntr);
		assert_string_equal(c.tr[0].reason, k->reason);
		ctx_release(&c);
	}
}

/* A probe whose socket event is queued in the same epoll batch as an event
 * whose handler stops the check: the queued event must not reach freed
 * memory (ASan / valgrind catch it if it does). */
struct stopper {
	struct loop_io io;
	struct ctx *c;
	int pipe[2];
};

static void stopper_cb(struct loop *loop, struct loop_io *io, uint32_t events UNUSED)
{
	struct stopper *s = container_of(io, struct stopper, io);

	health_stop(s->c->hc);
	s->c->hc = NULL;
	loop->stop = true;
}

struct trigger {
	struct loop_timer timer;
	struct ctx *c;
	struct stopper *stopper;
};

/* Make the stopper readable first, then the probe's socket. */
static void trigger_cb(struct loop *loop UNUSED, struct loop_timer *t)
{
	struct trigger *tr = container_of(t, struct trigger, timer);
	struct server *srv = &tr->c->srv;

	write_all(tr->stopper->pipe[1], "x", 1);
	for (size_t i = 0; i < MAX_CONNS; i++) {
		struct sconn *sc = &srv->conns[i];
		if (sc->io.fd >= 0 && sc->answered) {
			sc->mode = '+';
			sconn_answer(sc);
		}
	}
}

static void test_stop_with_event_queued(void **state UNUSED)
{
	struct ctx c;
	struct health_spec spec;
	struct stopper s = { 0 };
	struct trigger tr = { 0 };

	ctx_init(&c, "s");
	assert_int_equal(pipe2(s.pipe, O_NONBLOCK | O_CLOEXEC), 0);
	s.c = &c;
	assert_int_equal(loop_add(&c.loop, &s.io, s.pipe[0], EPOLLIN | EPOLLET, stopper_cb), 0);
	spec = spec_default(&c);
	spec.interval_ms = 200;
	spec.timeout_ms = 150;
	ctx_start(&c, &spec);
	tr.c = &c;
	tr.stopper = &s;
	loop_timer_set(&c.loop, &tr.timer, c.start_ms + 30, trigger_cb);
	assert_true(run_loop(&c, NULL, 1000)); /* stopped by stopper_cb */
	assert_null(c.hc);
	assert_int_equal(c.ntr, 0);
	assert_int_equal(c.srv.requests, 1);
	loop_timer_cancel(&c.loop, &tr.timer);
	loop_del(&c.loop, &s.io);
	close(s.pipe[0]);
	close(s.pipe[1]);
	/* one more iteration: the reaper is due at once */
	assert_false(run_loop(&c, NULL, 5));
	ctx_release(&c);
}

/* health_free() with a probe in flight closes its socket. */
static void test_free_with_probe_in_flight(void **state UNUSED)
{
	struct ctx c;
	struct health_spec spec;

	ctx_init(&c, "s");
	spec = spec_default(&c);
	spec.interval_ms = 200;
	spec.timeout_ms = 150;
	ctx_start(&c, &spec);
	assert_false(run_loop(&c, NULL, 30));
	assert_int_equal(c.srv.requests, 1);
	assert_int_equal(health_stats(c.hc)->probes, 1);
	assert_int_equal(completed(health_stats(c.hc)), 0);
	ctx_release(&c); /* checks the fd count */
	assert_null(health_free(NULL));
	health_stop(NULL);
}

/* --- validation ----------------------------------------------------------- */

static void test_invalid_spec(void **state UNUSED)
{
	struct ctx c;
	struct health_check *sentinel = (struct health_check *)&c, *hc = sentinel;

	ctx_init(&c, "+");
	for (int i = 0;; i++) {
		struct health_spec spec = spec_default(&c);
		switch (i) {
		case 0: spec.path = NULL; break;
		case 1: spec.path = "health"; break;
		case 2: spec.path = ""; break;
		case 3: spec.path = "/a b"; break;
		case 4: spec.path = "/a\r\nX-Injected: 1"; break;
		case 5: spec.host = NULL; break;
		case 6: spec.host = ""; break;
		case 7: spec.host = "shop\r\nX: y"; break;
		case 8: spec.interval_ms = 0; break;
		case 9: spec.timeout_ms = 0; break;
		case 10: spec.timeout_ms = spec.interval_ms; break;
		case 11: spec.healthy_threshold = 0; break;
		case 12: spec.unhealthy_threshold = 0; break;
		case 13: spec.addr_len = 0; break;
		case 14: spec.addr.ss_family = AF_UNIX; break;
		case 15: spec.addr_len = sizeof(spec.addr) + 1; break;
		default: goto out;
		}
		if (health_start(&c.loop, &spec, record_cb, &c, &hc) != -EINVAL)
			fail_msg("invalid spec %d accepted", i);
		assert_ptr_equal(hc, sentinel); /* untouched on failure */
	}
out:
	{
		struct health_spec spec = spec_default(&c);
		assert_int_equal(health_start(NULL, &spec, NULL, NULL, &hc), -EINVAL);
		assert_int_equal(health_start(&c.loop, NULL, NULL, NULL, &hc), -EINVAL);
		assert_int_equal(health_start(&c.loop, &spec, NULL, NULL, NULL), -EINVAL);
		assert_ptr_equal(hc, sentinel);
	}
	ctx_release(&c);
}

static void test_state_names(void **state UNUSED)
{
	assert_string_equal(health_state_name(HEALTH_UNKNOWN), "unknown");
	assert_string_equal(health_state_name(HEALTH_HEALTHY), "healthy");
	assert_string_equal(health_state_name(HEALTH_UNHEALTHY), "unhealthy");
}

int main(void)
{
	static const struct CMUnitTest others[] = {
		cmocka_unit_test(test_interval_pacing),
		cmocka_unit_test(test_stop_in_callback),
		cmocka_unit_test(test_stop_with_event_queued),
		cmocka_unit_test(test_free_with_probe_in_flight),
		cmocka_unit_test(test_invalid_spec),
		cmocka_unit_test(test_state_names),
	};
	struct CMUnitTest tests[ARRAY_SIZE(scenarios) + ARRAY_SIZE(others)];
	size_t n = 0;

	for (size_t i = 0; i < ARRAY_SIZE(scenarios); i++)
		tests[n++] = (struct CMUnitTest){ .name = scenarios[i].name, .test_func = test_outcome_scenario,
						  .initial_state = (void *)&scenarios[i] };
	for (size_t i = 0; i < ARRAY_SIZE(others); i++)
		tests[n++] = others[i];
	return cmocka_run_group_tests(tests, NULL, NULL);
}

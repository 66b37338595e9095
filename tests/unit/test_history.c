/* test_history.c - unit tests for the status page's short history
 * (src/metrics/history.c) and the per-service outcomes it reads
 * (metrics_outcomes_*): the numbers of each point, a point only while a
 * version runs, counters that start again, the ring's bound, and the
 * minutes handed out for the uptime.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/history.h"
#include "metrics/metrics.h"

#define T0 1700000000000LL /* a wall clock, Unix ms */

static bool none_in_use(const struct metrics_upstream *u, void *data)
{
	(void)u;
	(void)data;
	return false;
}

static const struct metrics_history_series *series(const struct metrics_history *h, const char *service,
						  const char *version)
{
	for (uint32_t i = 0; i < h->nseries; i++) {
		const struct metrics_history_series *s = h->series[i];
		if (!strcmp(s->service, service) &&
		    ((!version && !s->version) || (version && s->version && !strcmp(version, s->version))))
			return s;
	}
	return NULL;
}

static const struct metrics_history_point *last_point(const struct metrics_history_series *s)
{
	assert_non_null(s);
	assert_true(s->n > 0);
	return metrics_history_point(s, s->n - 1);
}

/* n requests answered STATUS in LATENCY_US at u */
static void observe(struct metrics_upstream *u, unsigned n, int status, uint64_t latency_us)
{
	for (unsigned i = 0; i < n; i++)
		metrics_upstream_observe(u, HTTP_METHOD_GET, status, latency_us);
}

static void test_points_of_two_versions(void **state)
{
	struct metrics m;
	struct metrics_history h;
	struct metrics_upstream *a1, *a2, *b;
	const struct metrics_history_point *p;

	metrics_init(&m);
	metrics_history_init(&h);
	a1 = metrics_upstream_get(&m, "shop", "127.0.0.1:9001", "1.0.0");
	a2 = metrics_upstream_get(&m, "shop", "127.0.0.1:9002", "1.0.0");
	b = metrics_upstream_get(&m, "shop", "127.0.0.1:9003", "1.1.0");
	assert_non_null(metrics_upstream_get(&m, "api", "127.0.0.1:9100", NULL));
	/* 1.0.0: 100 requests over two instances, 98 at 1 ms and 2 at 200 ms, one 5xx */
	observe(a1, 49, 200, 1000);
	observe(a2, 48, 200, 1000);
	observe(a2, 1, 503, 1000);
	observe(a1, 2, 200, 200000);
	/* 1.1.0: 9 answered at 10 ms, and a failed connect */
	observe(b, 9, 200, 10000);
	b->counts.connect_failures++;
	assert_int_equal(metrics_history_sample(&h, &m, T0, 1000), 0);
	assert_int_equal(h.nseries, 3);

	p = last_point(series(&h, "shop", "1.0.0"));
	assert_int_equal(p->t_ms, T0);
	assert_int_equal(p->interval_ms, METRICS_HISTORY_INTERVAL_MS); /* the first sample */
	assert_int_equal(p->requests, 100);
	assert_int_equal(p->errors, 1);
	assert_true(p->has_latency);
	assert_true(p->p50_us >= 968 && p->p50_us <= 1032);          /* within a bucket of 1 ms */
	assert_true(p->p99_us >= 190000 && p->p99_us <= 210000);     /* the slow 2 % */
	p = last_point(series(&h, "shop", "1.1.0"));
	assert_int_equal(p->requests, 10);                           /* a failed connect is a request... */
	assert_int_equal(p->errors, 1);                              /* ...that failed */
	p = last_point(series(&h, "api", NULL));
	assert_int_equal(p->requests, 0);                            /* it ran: a point, with nothing in it */
	assert_false(p->has_latency);

	/* the next point holds only what came after */
	observe(a1, 20, 200, 3000);
	assert_int_equal(metrics_history_sample(&h, &m, T0 + 5000, 6100), 0);
	p = last_point(series(&h, "shop", "1.0.0"));
	assert_int_equal(p->interval_ms, 5100);
	assert_int_equal(p->requests, 20);
	assert_int_equal(p->errors, 0);
	assert_true(p->p99_us >= 2900 && p->p99_us <= 3100);
	assert_int_equal(series(&h, "shop", "1.0.0")->n, 2);
	assert_int_equal(last_point(series(&h, "shop", "1.1.0"))->requests, 0);
	assert_int_equal(metrics_history_requests_since(series(&h, "shop", "1.0.0"), T0 - 1), 120);
	assert_int_equal(metrics_history_requests_since(series(&h, "shop", "1.0.0"), T0), 20);

	metrics_history_release(&h);
	metrics_release(&m);
}

static void test_a_point_only_while_it_runs(void **state)
{
	struct metrics m;
	struct metrics_history h;
	struct metrics_upstream *old, *keep;
	const struct metrics_history_series *s;

	metrics_init(&m);
	metrics_history_init(&h);
	old = metrics_upstream_get(&m, "shop", "127.0.0.1:9001", "1.0.0");
	keep = metrics_upstream_get(&m, "shop", "127.0.0.1:9002", "1.1.0");
	observe(old, 7, 200, 1000);
	assert_int_equal(metrics_history_sample(&h, &m, T0, 0), 0);
	/* 1.0.0's only instance stops and is swept: no point from then on */
	metrics_upstream_retire(&m, "shop", "127.0.0.1:9001");
	assert_int_equal(metrics_sweep(&m, none_in_use, NULL), 1);
	observe(keep, 3, 200, 1000);
	assert_int_equal(metrics_history_sample(&h, &m, T0 + 5000, 5000), 0);
	s = series(&h, "shop", "1.0.0");
	assert_non_null(s);
	assert_false(s->running);
	assert_int_equal(s->n, 1);
	assert_int_equal(series(&h, "shop", "1.1.0")->n, 2);

	/* 1.0.0 again (a rollback to it): its counters start again from zero,
	 * and its first point holds all of them */
	old = metrics_upstream_get(&m, "shop", "127.0.0.1:9005", "1.0.0");
	observe(old, 4, 200, 1000);
	assert_int_equal(metrics_history_sample(&h, &m, T0 + 10000, 10000), 0);
	s = series(&h, "shop", "1.0.0");
	assert_int_equal(s->n, 2);
	assert_int_equal(last_point(s)->requests, 4);
	assert_int_equal(metrics_history_point(s, 0)->t_ms, T0); /* no point for the interval it did not run */

	/* gone again, and 15 minutes pass: the series goes */
	metrics_upstream_retire(&m, "shop", "127.0.0.1:9005");
	metrics_sweep(&m, none_in_use, NULL);
	assert_int_equal(metrics_history_sample(&h, &m, T0 + 10000 + 15 * 60000 - 1, 20000), 0);
	assert_non_null(series(&h, "shop", "1.0.0"));
	assert_int_equal(metrics_history_sample(&h, &m, T0 + 10000 + 15 * 60000, 25000), 0);
	assert_null(series(&h, "shop", "1.0.0"));
	assert_non_null(series(&h, "shop", "1.1.0"));

	metrics_history_release(&h);
	metrics_release(&m);
}

static void test_counters_going_back(void **state)
{
	struct metrics m;
	struct metrics_history h;
	struct metrics_upstream *u;

	metrics_init(&m);
	metrics_history_init(&h);
	u = metrics_upstream_get(&m, "shop", "127.0.0.1:9001", "2.0.0");
	observe(u, 50, 200, 1000);
	assert_int_equal(metrics_history_sample(&h, &m, T0, 0), 0);
	/* swept and back between two samples: fewer than before, all new */
	metrics_upstream_retire(&m, "shop", "127.0.0.1:9001");
	metrics_sweep(&m, none_in_use, NULL);
	u = metrics_upstream_get(&m, "shop", "127.0.0.1:9002", "2.0.0");
	observe(u, 6, 500, 1000);
	assert_int_equal(metrics_history_sample(&h, &m, T0 + 5000, 5000), 0);
	assert_int_equal(last_point(series(&h, "shop", "2.0.0"))->requests, 6);
	assert_int_equal(last_point(series(&h, "shop", "2.0.0"))->errors, 6);
	metrics_history_release(&h);
	metrics_release(&m);
}

static void test_ring_is_bounded(void **state)
{
	struct metrics m;
	struct metrics_history h;
	struct metrics_upstream *u;
	const struct metrics_history_series *s;

	metrics_init(&m);
	metrics_history_init(&h);
	u = metrics_upstream_get(&m, "shop", "127.0.0.1:9001", "1.0.0");
	for (int i = 0; i < 200; i++) {
		observe(u, (unsigned)i, 200, 1000);
		assert_int_equal(metrics_history_sample(&h, &m, T0 + i * 5000LL, (uint64_t)i * 5000), 0);
	}
	s = series(&h, "shop", "1.0.0");
	assert_int_equal(s->n, METRICS_HISTORY_POINTS);
	/* the oldest kept is sample 20, the newest 199, in order */
	assert_int_equal(metrics_history_point(s, 0)->t_ms, T0 + 20 * 5000LL);
	assert_int_equal(metrics_history_point(s, 0)->requests, 20);
	for (uint32_t i = 1; i < s->n; i++)
		assert_true(metrics_history_point(s, i)->t_ms > metrics_history_point(s, i - 1)->t_ms);
	assert_int_equal(last_point(s)->requests, 199);
	/* the last 30 s: the 6 newest points */
	assert_int_equal(metrics_history_requests_since(s, T0 + 199 * 5000LL - 30000 + 2500),
			 199 + 198 + 197 + 196 + 195 + 194);
	metrics_history_release(&h);
	metrics_release(&m);
}

static void test_outcomes(void **state)
{
	struct metrics m;
	struct metrics_outcomes *o;
	static const struct {
		int status;
		bool failed;
	} cases[] = {
		{ 200, false }, { 204, false }, { 301, false }, { 404, false }, { 499, false },
		{ 500, true },  { 502, true },  { 503, true },  { 504, true },  { 0, true }, /* no answer sent */
	};
	uint64_t failed = 0;

	metrics_init(&m);
	o = metrics_outcomes_get(&m, "shop");
	assert_non_null(o);
	assert_ptr_equal(metrics_outcomes_get(&m, "shop"), o);
	/* stable pointers: other services do not move it */
	for (int i = 0; i < 40; i++) {
		char name[16];
		snprintf(name, sizeof(name), "svc%d", i);
		assert_non_null(metrics_outcomes_get(&m, name));
	}
	assert_ptr_equal(metrics_outcomes_get(&m, "shop"), o);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		metrics_outcomes_observe(o, cases[i].status);
		failed += cases[i].failed;
		assert_int_equal(o->requests, i + 1);
		assert_int_equal(o->failed, failed);
	}
	metrics_outcomes_observe(NULL, 500); /* nothing to count into: nothing happens */
	metrics_release(&m);
}

static void test_uptime_minutes(void **state)
{
	struct metrics m;
	struct metrics_uptime u;
	struct metrics_outcomes *shop, *api;
	struct metrics_minute *rows = NULL;
	int64_t minute = 0;
	uint64_t req = 0, failed = 0;

	metrics_init(&m);
	metrics_uptime_init(&u);
	shop = metrics_outcomes_get(&m, "shop");
	api = metrics_outcomes_get(&m, "api");
	assert_false(metrics_uptime_pending(&u, "shop", &minute, &req, &failed));
	for (int i = 0; i < 10; i++)
		metrics_outcomes_observe(shop, i < 2 ? 502 : 200);
	assert_int_equal(metrics_uptime_sample(&u, &m, 100, &rows), 0);
	assert_null(rows);
	metrics_outcomes_observe(shop, 200);
	assert_int_equal(metrics_uptime_sample(&u, &m, 100, &rows), 0);
	assert_true(metrics_uptime_pending(&u, "shop", &minute, &req, &failed));
	assert_int_equal(minute, 100);
	assert_int_equal(req, 11);
	assert_int_equal(failed, 2);

	/* minute 101 starts: 100 is handed out, api (no request) gives no row */
	metrics_outcomes_observe(shop, 500);
	assert_int_equal(metrics_uptime_sample(&u, &m, 101, &rows), 1);
	assert_string_equal(rows[0].service, "shop");
	assert_int_equal(rows[0].minute, 100);
	assert_int_equal(rows[0].requests, 11);
	assert_int_equal(rows[0].failed, 2);
	metrics_minutes_free(rows, 1);
	assert_true(metrics_uptime_pending(&u, "shop", &minute, &req, &failed));
	assert_int_equal(minute, 101);
	assert_int_equal(req, 1);
	assert_int_equal(failed, 1);

	/* the daemon stops: what is counted goes out, the minute included */
	metrics_outcomes_observe(api, 200);
	assert_int_equal(metrics_uptime_sample(&u, &m, 101, &rows), 0);
	assert_int_equal(metrics_uptime_take(&u, &rows), 2);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(rows[i].minute, 101);
		assert_int_equal(rows[i].requests, 1);
		assert_int_equal(rows[i].failed, !strcmp(rows[i].service, "shop") ? 1 : 0);
	}
	metrics_minutes_free(rows, 2);
	/* taken: nothing is handed out twice */
	assert_int_equal(metrics_uptime_take(&u, &rows), 0);
	assert_int_equal(metrics_uptime_sample(&u, &m, 102, &rows), 0);
	assert_true(metrics_uptime_pending(&u, "shop", &minute, &req, &failed));
	assert_int_equal(minute, 102);
	assert_int_equal(req, 0);
	metrics_uptime_release(&u);
	metrics_release(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_points_of_two_versions),
		cmocka_unit_test(test_a_point_only_while_it_runs),
		cmocka_unit_test(test_counters_going_back),
		cmocka_unit_test(test_ring_is_bounded),
		cmocka_unit_test(test_outcomes),
		cmocka_unit_test(test_uptime_minutes),
	};

	return cmocka_run_group_tests_name("history", tests, NULL, NULL);
}

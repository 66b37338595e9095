/* test_metrics.c - unit tests of the metrics registry and its exposition.
 *
 * Covers the registry (find-or-create, growth, owned strings), counting
 * (method and status mapping, invalid input ignored), the latency histogram
 * (inclusive bucket bounds, cumulative rendering), counts as values (sums,
 * windows, totals, quantiles from the fine histogram) and the text format
 * (exact lines for a small registry, label escaping).  When promtool is on PATH the
 * rendered text is also checked by Prometheus' own linter.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "metrics/metrics.h"

/* Render m, check the reported length, and return the text (caller frees). */
static char *render(const struct metrics *m)
{
	size_t len = 0;
	char *s = metrics_render(m, &len);
	assert_non_null(s);
	assert_int_equal(len, strlen(s));
	return s;
}

/* Assert that text begins with expected; on mismatch cmocka prints both. */
static void assert_prefix(const char *text, const char *expected)
{
	size_t n = strlen(expected);
	char *head = strndup(text, n);
	assert_non_null(head);
	assert_string_equal(head, expected);
	free(head);
}

/* Value (after the last space) of the line that starts with prefix, which
 * must occur exactly once. */
static uint64_t line_value(const char *text, const char *prefix)
{
	const char *hit = NULL;
	size_t n = strlen(prefix);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, prefix, n) == 0) {
			assert_null(hit);
			hit = p;
		}
	}
	assert_non_null(hit);
	const char *eol = strchr(hit, '\n');
	assert_non_null(eol);
	const char *sp = eol;
	while (sp > hit && sp[-1] != ' ')
		sp--;
	return strtoull(sp, NULL, 10);
}

static void test_method_index(void **state)
{
	static const struct { enum http_method method; unsigned index; } cases[] = {
		{ HTTP_METHOD_GET, 0 },     { HTTP_METHOD_HEAD, 1 },   { HTTP_METHOD_POST, 2 },
		{ HTTP_METHOD_PUT, 3 },     { HTTP_METHOD_DELETE, 4 }, { HTTP_METHOD_PATCH, 5 },
		{ HTTP_METHOD_OPTIONS, 6 }, { HTTP_METHOD_OTHER, 7 },  { HTTP_METHOD_CONNECT, 7 },
		{ HTTP_METHOD_TRACE, 7 },   { HTTP_METHOD__COUNT, 7 }, { (enum http_method)999, 7 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(metrics_method_index(cases[i].method), cases[i].index);
}

/* The fine histogram: every latency lands in the bucket whose range holds
 * it, ranges are contiguous, and no bucket is wider than 6.25 %. */
static void test_fine_histogram(void **state)
{
	(void)state;
	assert_int_equal(metrics_fine_index(0), 0);
	assert_int_equal(metrics_fine_index(15), 15);
	assert_int_equal(metrics_fine_index(16), 16);
	assert_int_equal(metrics_fine_lower_us(16), 16);
	for (unsigned i = 1; i < METRICS_FINE_BUCKETS; i++) {
		uint64_t lo = metrics_fine_lower_us(i), prev = metrics_fine_lower_us(i - 1);
		assert_true(lo > prev);
		assert_int_equal(metrics_fine_index(lo), i);
		assert_int_equal(metrics_fine_index(lo - 1), i - 1);
		if (prev >= 16)
			assert_true((lo - prev) * 16 <= prev); /* width <= 1/16 of the lower bound */
	}
	/* 406 ms (the faulty shop) is told apart from 300 ms */
	assert_true(metrics_fine_lower_us(metrics_fine_index(406000)) > 380000);
	assert_true(metrics_fine_lower_us(metrics_fine_index(406000)) <= 406000);
	/* beyond 2^36 us: the last bucket */
	assert_int_equal(metrics_fine_index(UINT64_MAX), METRICS_FINE_BUCKETS - 1);
	{
		struct metrics m;
		struct metrics_upstream *u;
		metrics_init(&m);
		u = metrics_upstream_get(&m, "shop", "127.0.0.1:1", NULL);
		assert_non_null(u);
		metrics_upstream_observe(u, HTTP_METHOD_GET, 200, 406000);
		assert_int_equal(u->counts.fine[metrics_fine_index(406000)], 1);
		metrics_release(&m);
	}
}

/* Upper bounds: inclusive, contiguous with the next bucket's lower bound,
 * and the last bucket reaches UINT64_MAX. */
static void test_fine_upper(void **state)
{
	(void)state;
	for (unsigned i = 0; i + 1 < METRICS_FINE_BUCKETS; i++) {
		uint64_t up = metrics_fine_upper_us(i);
		assert_int_equal(up + 1, metrics_fine_lower_us(i + 1));
		assert_true(up >= metrics_fine_lower_us(i));
		assert_int_equal(metrics_fine_index(up), i);
	}
	assert_int_equal(metrics_fine_upper_us(0), 0);
	assert_int_equal(metrics_fine_upper_us(15), 15);
	assert_int_equal(metrics_fine_upper_us(16), 16);
	assert_int_equal(metrics_fine_upper_us(METRICS_FINE_BUCKETS - 1), UINT64_MAX);
	assert_int_equal(metrics_fine_upper_us(METRICS_FINE_BUCKETS + 7), UINT64_MAX);
}

/* One observation to replay into a struct metrics_counts. */
struct obs {
	enum http_method method;
	int status;
	uint64_t us;
};

static void observe_all(struct metrics_counts *c, const struct obs *o, size_t n)
{
	for (size_t i = 0; i < n; i++)
		metrics_counts_observe(c, o[i].method, o[i].status, o[i].us);
}

static const struct obs obs_first[] = {
	{ HTTP_METHOD_GET, 200, 1500 },   { HTTP_METHOD_GET, 503, 300000 }, { HTTP_METHOD_POST, 201, 12 },
	{ HTTP_METHOD_PUT, 404, 2600000 }, { HTTP_METHOD_TRACE, 599, 20000000 },
};
static const struct obs obs_second[] = {
	{ HTTP_METHOD_GET, 200, 1500 }, { HTTP_METHOD_DELETE, 500, 406000 }, { HTTP_METHOD_GET, 302, 0 },
	{ HTTP_METHOD_HEAD, 100, UINT64_MAX / 4 }, { HTTP_METHOD_GET, 42, 10 }, /* ignored */
};

/* a + b equals the counts of all their observations made in one place;
 * adding to itself doubles. */
static void test_counts_add(void **state)
{
	struct metrics_counts a = { 0 }, b = { 0 }, all = { 0 }, twice;

	(void)state;
	observe_all(&a, obs_first, sizeof(obs_first) / sizeof(obs_first[0]));
	a.connect_failures = 3;
	a.retries = 1;
	a.shielded = 4;
	observe_all(&b, obs_second, sizeof(obs_second) / sizeof(obs_second[0]));
	b.connect_failures = 2;
	b.retries = 5;
	b.shielded = 1;
	observe_all(&all, obs_first, sizeof(obs_first) / sizeof(obs_first[0]));
	observe_all(&all, obs_second, sizeof(obs_second) / sizeof(obs_second[0]));
	all.connect_failures = 5;
	all.retries = 6;
	all.shielded = 5;

	metrics_counts_add(&a, &b);
	assert_memory_equal(&a, &all, sizeof(all));
	twice = all;
	metrics_counts_add(&twice, &twice);
	assert_int_equal(twice.latency.count, 2 * all.latency.count);
	assert_int_equal(twice.latency.sum_us, 2 * all.latency.sum_us);
	assert_int_equal(twice.requests[0][1], 2 * all.requests[0][1]);
	assert_int_equal(twice.fine[metrics_fine_index(1500)], 4);
	assert_int_equal(twice.connect_failures, 10);
	assert_int_equal(twice.retries, 12);
	assert_int_equal(twice.shielded, 10);
}

/* The window between two snapshots of an upstream is exactly what was
 * counted in between; before + window = now; out may alias an input; a
 * "before" above "now" gives zeros, not wrapped counters. */
static void test_counts_window(void **state)
{
	struct metrics m;
	struct metrics_upstream *u;
	struct metrics_counts before, now, win, expect = { 0 }, sum, zero = { 0 };

	(void)state;
	metrics_init(&m);
	u = metrics_upstream_get(&m, "shop", "127.0.0.1:1", NULL);
	assert_non_null(u);
	for (size_t i = 0; i < sizeof(obs_first) / sizeof(obs_first[0]); i++)
		metrics_upstream_observe(u, obs_first[i].method, obs_first[i].status, obs_first[i].us);
	u->counts.connect_failures = 4;
	before = u->counts;
	for (size_t i = 0; i < sizeof(obs_second) / sizeof(obs_second[0]); i++)
		metrics_upstream_observe(u, obs_second[i].method, obs_second[i].status, obs_second[i].us);
	u->counts.connect_failures += 2;
	u->counts.retries += 1;
	u->counts.shielded += 3;
	now = u->counts;
	observe_all(&expect, obs_second, sizeof(obs_second) / sizeof(obs_second[0]));
	expect.connect_failures = 2;
	expect.retries = 1;
	expect.shielded = 3;

	metrics_counts_window(&win, &now, &before);
	assert_memory_equal(&win, &expect, sizeof(expect));
	sum = before;
	metrics_counts_add(&sum, &win);
	assert_memory_equal(&sum, &now, sizeof(now));
	/* out aliasing now, then before */
	sum = now;
	metrics_counts_window(&sum, &sum, &before);
	assert_memory_equal(&sum, &expect, sizeof(expect));
	sum = before;
	metrics_counts_window(&sum, &now, &sum);
	assert_memory_equal(&sum, &expect, sizeof(expect));
	/* the wrong way round: nothing happened, rather than 2^64 - n */
	metrics_counts_window(&win, &before, &now);
	assert_memory_equal(&win, &zero, sizeof(zero));
	/* a window of a window: counts since a snapshot taken from zero */
	metrics_counts_window(&win, &now, &zero);
	assert_memory_equal(&win, &now, sizeof(now));
	metrics_release(&m);
}

static void test_counts_totals(void **state)
{
	static const struct {
		struct obs o[4];
		size_t n;
		uint64_t connect_failures, requests, errors;
	} cases[] = {
		{ { { 0 } }, 0, 0, 0, 0 },
		{ { { HTTP_METHOD_GET, 200, 1 } }, 1, 0, 1, 0 },
		{ { { HTTP_METHOD_GET, 500, 1 }, { HTTP_METHOD_POST, 599, 1 } }, 2, 0, 2, 2 },
		{ { { HTTP_METHOD_GET, 499, 1 }, { HTTP_METHOD_OTHER, 503, 1 }, { HTTP_METHOD_HEAD, 100, 1 } },
		  3, 0, 3, 1 },
		/* failed connects are neither requests nor 5xx here (analysis adds them) */
		{ { { HTTP_METHOD_GET, 200, 1 }, { HTTP_METHOD_GET, 502, 1 } }, 2, 7, 2, 1 },
		/* an invalid status counts nothing */
		{ { { HTTP_METHOD_GET, 600, 1 }, { HTTP_METHOD_GET, 99, 1 } }, 2, 0, 0, 0 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct metrics_counts c = { 0 };
		uint64_t requests = 99, errors = 99;
		observe_all(&c, cases[i].o, cases[i].n);
		c.connect_failures = cases[i].connect_failures;
		metrics_counts_totals(&c, &requests, &errors);
		if (requests != cases[i].requests || errors != cases[i].errors)
			fail_msg("case %zu: %" PRIu64 " requests, %" PRIu64 " errors; expected %" PRIu64 ", %" PRIu64,
				 i, requests, errors, cases[i].requests, cases[i].errors);
	}
}

/* A quantile case: N latencies of US each (up to three groups), asked for
 * PERMILLE; expect the bucket of EXPECT_US, or the error RET. */
static void test_counts_quantile(void **state)
{
	static const struct {
		struct { uint64_t n, us; } g[3];
		unsigned permille;
		int ret;
		uint64_t expect_us;
	} cases[] = {
		{ { { 0, 0 } }, 990, -ENODATA, 0 },
		{ { { 1, 1000 } }, 1001, -EINVAL, 0 },
		{ { { 1, 406000 } }, 990, 0, 406000 },
		/* the p99 of 100 is the 99th: one slow request is not the p99, two are */
		{ { { 99, 1000 }, { 1, 600000 } }, 990, 0, 1000 },
		{ { { 98, 1000 }, { 2, 600000 } }, 990, 0, 600000 },
		{ { { 99, 1000 }, { 1, 600000 } }, 1000, 0, 600000 },
		/* of 200, the 198th */
		{ { { 198, 1000 }, { 2, 600000 } }, 990, 0, 1000 },
		{ { { 197, 1000 }, { 3, 600000 } }, 990, 0, 600000 },
		/* of 101, the 100th (ceil(99.99)) */
		{ { { 100, 1000 }, { 1, 600000 } }, 990, 0, 1000 },
		{ { { 99, 1000 }, { 2, 600000 } }, 990, 0, 600000 },
		/* p50 and the smallest */
		{ { { 5, 7 }, { 5, 9 } }, 500, 0, 7 },
		{ { { 5, 7 }, { 6, 9 } }, 500, 0, 9 },
		{ { { 3, 300 }, { 1, 500 } }, 0, 0, 300 },
		{ { { 1, 300 }, { 1, 2000 }, { 1, 90000 } }, 1, 0, 300 },
		/* beyond 2^36 us: the last bucket, open-ended */
		{ { { 1, UINT64_MAX } }, 990, 0, UINT64_MAX },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct metrics_counts c = { 0 };
		uint64_t lo = 12345, up = 67890;
		for (unsigned g = 0; g < 3; g++)
			for (uint64_t k = 0; k < cases[i].g[g].n; k++)
				metrics_counts_observe(&c, HTTP_METHOD_GET, 200, cases[i].g[g].us);
		int r = metrics_counts_quantile(&c, cases[i].permille, &lo, &up);
		if (r != cases[i].ret)
			fail_msg("case %zu: returned %d, expected %d", i, r, cases[i].ret);
		if (r < 0) {
			assert_int_equal(lo, 12345); /* untouched */
			assert_int_equal(up, 67890);
			continue;
		}
		unsigned b = metrics_fine_index(cases[i].expect_us);
		if (lo != metrics_fine_lower_us(b) || up != metrics_fine_upper_us(b))
			fail_msg("case %zu: [%" PRIu64 ", %" PRIu64 "], expected the bucket of %" PRIu64, i, lo, up,
				 cases[i].expect_us);
	}
}

/* Counts too large to multiply by 1000 still give the right rank. */
static void test_counts_quantile_huge(void **state)
{
	struct metrics_counts c = { 0 };
	uint64_t lo, up;

	(void)state;
	c.fine[10] = 1ull << 62;
	c.fine[20] = 1ull << 62;
	assert_int_equal(metrics_counts_quantile(&c, 500, &lo, &up), 0);
	assert_int_equal(lo, metrics_fine_lower_us(10));
	assert_int_equal(metrics_counts_quantile(&c, 501, &lo, &up), 0);
	assert_int_equal(lo, metrics_fine_lower_us(20));
}

/* The p99's rank is the one the watch used before this function existed
 * ((n * 99 + 99) / 100): r - 1 fast and the rest slow gives the slow bucket,
 * r fast gives the fast one. */
static void test_counts_quantile_rank(void **state)
{
	(void)state;
	for (uint64_t n = 1; n <= 3000; n++) {
		uint64_t r = (n * 99 + 99) / 100, lo, up;
		struct metrics_counts c = { 0 };
		c.fine[3] = r - 1;
		c.fine[40] = n - (r - 1);
		assert_int_equal(metrics_counts_quantile(&c, 990, &lo, &up), 0);
		if (lo != metrics_fine_lower_us(40))
			fail_msg("n %" PRIu64 ": %" PRIu64 " fast of rank %" PRIu64 " gave bucket at %" PRIu64, n,
				 r - 1, r, lo);
		c.fine[3] = r;
		c.fine[40] = n - r;
		assert_int_equal(metrics_counts_quantile(&c, 990, &lo, &up), 0);
		assert_int_equal(lo, 3);
	}
}

/* Random latencies: the true quantile (sorting them all) lies within the
 * bounds returned, for several quantiles. */
static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void test_counts_quantile_random(void **state)
{
	enum { N = 4999 };
	static uint64_t v[N];
	static const unsigned qs[] = { 0, 1, 100, 500, 900, 950, 990, 999, 1000 };
	struct metrics_counts c = { 0 };
	uint64_t x = 88172645463325252ull;

	(void)state;
	for (unsigned i = 0; i < N; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		v[i] = (x % 8) ? x % 400000 : x % 4000000000ull;
		metrics_counts_observe(&c, HTTP_METHOD_GET, 200, v[i]);
	}
	qsort(v, N, sizeof(v[0]), cmp_u64);
	assert_int_equal(metrics_counts_responses(&c), N);
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		uint64_t rank = ((uint64_t)N * qs[i] + 999) / 1000, lo, up;
		uint64_t truth = v[(rank ? rank : 1) - 1];
		assert_int_equal(metrics_counts_quantile(&c, qs[i], &lo, &up), 0);
		if (truth < lo || truth > up)
			fail_msg("q %u: true value %" PRIu64 " outside [%" PRIu64 ", %" PRIu64 "]", qs[i], truth,
				 lo, up);
	}
}

static bool used_flag(const struct metrics_upstream *u, void *data)
{
	return u == data;
}

/* Retired entries go at the sweep once unused; a get takes one back. */
static void test_retire_and_sweep(void **state)
{
	struct metrics m;
	struct metrics_upstream *a, *b;

	(void)state;
	metrics_init(&m);
	a = metrics_upstream_get(&m, "shop", "127.0.0.1:1", NULL);
	b = metrics_upstream_get(&m, "shop", "127.0.0.1:2", NULL);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(metrics_sweep(&m, used_flag, NULL), 0); /* nothing retired */
	metrics_upstream_retire(&m, "shop", "127.0.0.1:1");
	metrics_upstream_retire(&m, "shop", "127.0.0.1:2");
	assert_ptr_equal(metrics_upstream_get(&m, "shop", "127.0.0.1:2", NULL), b); /* taken back */
	assert_int_equal(metrics_sweep(&m, used_flag, a), 0);                  /* a still in use */
	assert_int_equal(m.nupstreams, 2);
	assert_int_equal(metrics_sweep(&m, used_flag, NULL), 1);               /* a goes, b stays */
	assert_int_equal(m.nupstreams, 1);
	assert_ptr_equal(m.upstreams[0], b);
	metrics_release(&m);
}

static void test_init_release(void **state)
{
	struct metrics m;
	(void)state;
	metrics_init(&m);
	assert_int_equal(m.nupstreams, 0);
	assert_null(m.upstreams);
	assert_true(m.start_time_unix > 1600000000u);
	metrics_release(&m);
	metrics_release(&m); /* released registry is empty: releasing again is harmless */
	metrics_release(NULL);
}

static void test_upstream_get(void **state)
{
	struct metrics m;
	char service[16] = "web", target[32] = "127.0.0.1:9001";
	(void)state;
	metrics_init(&m);

	struct metrics_upstream *a = metrics_upstream_get(&m, service, target, NULL);
	assert_non_null(a);
	/* The registry owns copies: the caller's buffers may change. */
	assert_ptr_not_equal(a->service, service);
	assert_ptr_not_equal(a->target, target);
	strcpy(service, "api");
	assert_string_equal(a->service, "web");

	struct metrics_upstream *b = metrics_upstream_get(&m, "api", "127.0.0.1:9001", NULL);
	struct metrics_upstream *c = metrics_upstream_get(&m, "web", "127.0.0.1:9002", NULL);
	assert_non_null(b);
	assert_non_null(c);
	assert_ptr_not_equal(a, b);
	assert_ptr_not_equal(a, c);
	assert_ptr_equal(metrics_upstream_get(&m, "web", "127.0.0.1:9001", NULL), a);
	assert_ptr_equal(metrics_upstream_get(&m, "api", "127.0.0.1:9001", NULL), b);
	assert_int_equal(m.nupstreams, 3);
	metrics_release(&m);
}

static void test_many_upstreams(void **state)
{
	enum { N = 1000 };
	struct metrics m;
	struct metrics_upstream *seen[N];
	char target[32];
	(void)state;
	metrics_init(&m);

	for (unsigned i = 0; i < N; i++) {
		snprintf(target, sizeof(target), "10.0.%u.%u:80", i / 256, i % 256);
		seen[i] = metrics_upstream_get(&m, i % 2 ? "odd" : "even", target, NULL);
		assert_non_null(seen[i]);
		seen[i]->counts.retries = i;
		assert_int_equal(m.nupstreams, i + 1);
		assert_true(m.capupstreams >= m.nupstreams);
		/* capacity only ever doubles */
		assert_int_equal(m.capupstreams & (m.capupstreams - 1), 0);
	}
	/* Pointers stay valid across growth and lookups find the same entry. */
	for (unsigned i = 0; i < N; i++) {
		snprintf(target, sizeof(target), "10.0.%u.%u:80", i / 256, i % 256);
		assert_ptr_equal(metrics_upstream_get(&m, i % 2 ? "odd" : "even", target, NULL), seen[i]);
		assert_int_equal(seen[i]->counts.retries, i);
	}
	assert_int_equal(m.nupstreams, N);

	char *text = render(&m);
	assert_int_equal(line_value(text, "cutover_upstream_retries_total{service=\"odd\",target=\"10.0.3.231:80\"}"), 999);
	free(text);
	metrics_release(&m);
}

static void test_observe_counts(void **state)
{
	struct metrics m;
	(void)state;
	metrics_init(&m);
	struct metrics_upstream *u = metrics_upstream_get(&m, "web", "t", NULL);
	assert_non_null(u);

	metrics_upstream_observe(u, HTTP_METHOD_GET, 200, 10);
	metrics_upstream_observe(u, HTTP_METHOD_GET, 299, 10);
	metrics_upstream_observe(u, HTTP_METHOD_POST, 100, 10);
	metrics_upstream_observe(u, HTTP_METHOD_PUT, 399, 10);
	metrics_upstream_observe(u, HTTP_METHOD_DELETE, 404, 10);
	metrics_upstream_observe(u, HTTP_METHOD_CONNECT, 599, 10);
	metrics_upstream_observe(u, HTTP_METHOD_OPTIONS, 500, 10);
	/* Invalid statuses are ignored entirely. */
	metrics_upstream_observe(u, HTTP_METHOD_GET, 99, 10);
	metrics_upstream_observe(u, HTTP_METHOD_GET, 600, 10);
	metrics_upstream_observe(u, HTTP_METHOD_GET, 0, 10);
	metrics_upstream_observe(u, HTTP_METHOD_GET, -200, 10);
	metrics_upstream_observe(NULL, HTTP_METHOD_GET, 200, 10);

	assert_int_equal(u->counts.requests[0][1], 2); /* GET 2xx */
	assert_int_equal(u->counts.requests[2][0], 1); /* POST 1xx */
	assert_int_equal(u->counts.requests[3][2], 1); /* PUT 3xx */
	assert_int_equal(u->counts.requests[4][3], 1); /* DELETE 4xx */
	assert_int_equal(u->counts.requests[7][4], 1); /* CONNECT counts as OTHER 5xx */
	assert_int_equal(u->counts.requests[6][4], 1); /* OPTIONS 5xx */
	uint64_t total = 0;
	for (unsigned i = 0; i < METRICS_METHODS; i++)
		for (unsigned j = 0; j < METRICS_STATUS_CLASSES; j++)
			total += u->counts.requests[i][j];
	assert_int_equal(total, 7);
	assert_int_equal(u->counts.latency.count, 7);
	assert_int_equal(u->counts.latency.sum_us, 70);

	metrics_local_response(&m, 404);
	metrics_local_response(&m, 404);
	metrics_local_response(&m, 100);
	metrics_local_response(&m, 599);
	metrics_local_response(&m, 99);
	metrics_local_response(&m, 600);
	metrics_local_response(&m, -1);
	metrics_local_response(NULL, 404);
	assert_int_equal(m.local_responses[404], 2);
	assert_int_equal(m.local_responses[100], 1);
	assert_int_equal(m.local_responses[599], 1);
	assert_int_equal(m.local_responses[99], 0);
	metrics_release(&m);
}

static void test_bucket_boundaries(void **state)
{
	/* le is inclusive: a value equal to a bound lands in that bucket. */
	static const struct { uint64_t us; unsigned bucket; } cases[] = {
		{ 0, 0 },             { 1, 0 },             { 1000, 0 },
		{ 1001, 1 },          { 2500, 1 },          { 2501, 2 },
		{ 5000, 2 },          { 5001, 3 },          { 10000, 3 },
		{ 10001, 4 },         { 25000, 4 },         { 25001, 5 },
		{ 50000, 5 },         { 50001, 6 },         { 100000, 6 },
		{ 100001, 7 },        { 250000, 7 },        { 250001, 8 },
		{ 500000, 8 },        { 500001, 9 },        { 1000000, 9 },
		{ 1000001, 10 },      { 2500000, 10 },      { 2500001, 11 },
		{ 5000000, 11 },      { 5000001, 12 },      { 10000000, 12 },
		{ 10000001, 13 },     { 3600000000u, 13 },  { UINT64_MAX, 13 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct metrics_histogram h = { 0 };
		metrics_histogram_observe(&h, cases[i].us);
		for (unsigned b = 0; b <= METRICS_LATENCY_BUCKETS; b++) {
			if (h.buckets[b] != (b == cases[i].bucket ? 1u : 0u))
				fail_msg("%" PRIu64 "us: bucket %u holds %" PRIu64 ", expected bucket %u",
					 cases[i].us, b, h.buckets[b], cases[i].bucket);
		}
		assert_int_equal(h.count, 1);
		assert_int_equal(h.sum_us, cases[i].us);
	}
}

static void test_render_exact(void **state)
{
	struct metrics m;
	(void)state;
	metrics_init(&m);
	m.start_time_unix = 1700000000;

	struct metrics_upstream *u = metrics_upstream_get(&m, "web", "127.0.0.1:9001", NULL);
	assert_non_null(u);
	metrics_upstream_observe(u, HTTP_METHOD_GET, 200, 1500);    /* 0.0025 */
	metrics_upstream_observe(u, HTTP_METHOD_GET, 204, 1000);    /* 0.001 */
	metrics_upstream_observe(u, HTTP_METHOD_POST, 503, 2000000); /* 2.5 */
	metrics_upstream_observe(u, HTTP_METHOD_TRACE, 404, 20000000); /* +Inf */
	u->counts.connect_failures = 2;
	u->counts.retries = 1;
	u->open_connections = 3;
	u->idle_connections = 1;
	m.in_flight = 4;
	m.client_connections = 5;
	m.client_connections_total = 6;
	metrics_local_response(&m, 404);
	metrics_local_response(&m, 404);
	metrics_local_response(&m, 503);
	m.config_reloads = 1;

	static const char expected[] =
		"# HELP cutover_requests_total Requests proxied to an upstream target (a managed service: to a version), by method and status class.\n"
		"# TYPE cutover_requests_total counter\n"
		"cutover_requests_total{service=\"web\",target=\"127.0.0.1:9001\",method=\"GET\",status=\"2xx\"} 2\n"
		"cutover_requests_total{service=\"web\",target=\"127.0.0.1:9001\",method=\"POST\",status=\"5xx\"} 1\n"
		"cutover_requests_total{service=\"web\",target=\"127.0.0.1:9001\",method=\"OTHER\",status=\"4xx\"} 1\n"
		"# HELP cutover_request_duration_seconds Time from the start of a request to the end of its response.\n"
		"# TYPE cutover_request_duration_seconds histogram\n"
		"cutover_request_duration_seconds_bucket{service=\"web\",target=\"127.0.0.1:9001\",le=\"0.001\"} 1\n"
		"cutover_request_duration_seconds_bucket{service=\"web\",target=\"127.0.0.1:9001\",le=\"0.0025\"} 2\n"
		"cutover_request_duration_seconds_bucket{service=\"web\",target=\"127.0.0.1:9001\",le=\"0.005\"} 2\n"
		"cutover_request_duration_seconds_bucket{service=\"web\",target=\"127.0.0.1:9001\",le=\"0.01\"} 2\n"
		"cutover_request_duration_seconds_bucket{service=\"web\",target=\"127.0.0.1:9001\",le=\"0.025\"} 2\n"
		"cutover_request_duration_seconds_bucket{service=\"web\",target=\"127.0.0.1:9001\",le=\"0.05\"} 2\n"
		"cutover_request_duration_seconds_bucket{service=\"web\",target=\"127.0.0.1:9001\",le=\"0.1\"} 2\n"
		"cutover_request_duration_seconds_bucket{service=\"web\",target=\"127.0.0.1:9001\",le=\"0.25\"} 2\n"
		"cutover_request_duration_seconds_bucket{service=\"web\",target=\"127.0.0.1:9001\",le=\"0.5\"} 2\n"
		"cutover_request_duration_seconds_bucket{service=\"web\",target=\"127.0.0.1:9001\",le=\"1\"} 2\n"
		"cutover_request_duration_seconds_bucket{service=\"web\",target=\"127.0.0.1:9001\",le=\"2.5\"} 3\n"
		"cutover_request_duration_seconds_bucket{service=\"web\",target=\"127.0.0.1:9001\",le=\"5\"} 3\n"
		"cutover_request_duration_seconds_bucket{service=\"web\",target=\"127.0.0.1:9001\",le=\"10\"} 3\n"
		"cutover_request_duration_seconds_bucket{service=\"web\",target=\"127.0.0.1:9001\",le=\"+Inf\"} 4\n"
		"cutover_request_duration_seconds_sum{service=\"web\",target=\"127.0.0.1:9001\"} 22.0025\n"
		"cutover_request_duration_seconds_count{service=\"web\",target=\"127.0.0.1:9001\"} 4\n"
		"# HELP cutover_upstream_connect_failures_total Failed connection attempts to an upstream target (refused, unreachable, timed out).\n"
		"# TYPE cutover_upstream_connect_failures_total counter\n"
		"cutover_upstream_connect_failures_total{service=\"web\",target=\"127.0.0.1:9001\"} 2\n"
		"# HELP cutover_upstream_retries_total Requests moved to another target after a failure at this target.\n"
		"# TYPE cutover_upstream_retries_total counter\n"
		"cutover_upstream_retries_total{service=\"web\",target=\"127.0.0.1:9001\"} 1\n"
		"# HELP cutover_upstream_connections Open connections to an upstream target, busy and idle.\n"
		"# TYPE cutover_upstream_connections gauge\n"
		"cutover_upstream_connections{service=\"web\",target=\"127.0.0.1:9001\"} 3\n"
		"# HELP cutover_upstream_idle_connections Idle connections to an upstream target kept in the pool.\n"
		"# TYPE cutover_upstream_idle_connections gauge\n"
		"cutover_upstream_idle_connections{service=\"web\",target=\"127.0.0.1:9001\"} 1\n"
		"# HELP cutover_requests_retried_on_stable_total Safe requests that failed on a canary version and were retried on the stable version.\n"
		"# TYPE cutover_requests_retried_on_stable_total counter\n"
		"cutover_requests_retried_on_stable_total{service=\"web\"} 0\n"
		"# HELP cutover_requests_in_flight Requests accepted and not yet finished.\n"
		"# TYPE cutover_requests_in_flight gauge\n"
		"cutover_requests_in_flight 4\n"
		"# HELP cutover_client_connections Open client connections.\n"
		"# TYPE cutover_client_connections gauge\n"
		"cutover_client_connections 5\n"
		"# HELP cutover_client_connections_accepted_total Client connections accepted since start.\n"
		"# TYPE cutover_client_connections_accepted_total counter\n"
		"cutover_client_connections_accepted_total 6\n"
		"# HELP cutover_local_responses_total Responses the proxy produced itself, without an upstream, by status code.\n"
		"# TYPE cutover_local_responses_total counter\n"
		"cutover_local_responses_total{status=\"404\"} 2\n"
		"cutover_local_responses_total{status=\"503\"} 1\n"
		"# HELP cutover_config_reloads_total Configuration reloads, by result.\n"
		"# TYPE cutover_config_reloads_total counter\n"
		"cutover_config_reloads_total{result=\"success\"} 1\n"
		"cutover_config_reloads_total{result=\"failure\"} 0\n"
		"# HELP cutover_process_start_time_seconds Start time of the process since the Unix epoch, in seconds.\n"
		"# TYPE cutover_process_start_time_seconds gauge\n"
		"cutover_process_start_time_seconds 1700000000\n";

	char *text = render(&m);
	assert_prefix(text, expected);

	/* The rest is process metrics read live: check shape and sanity. */
	const char *rest = text + strlen(expected);
	assert_non_null(strstr(rest, "# TYPE cutover_process_resident_memory_bytes gauge\n"));
	assert_non_null(strstr(rest, "# TYPE cutover_process_cpu_seconds_total counter\n"));
	assert_non_null(strstr(rest, "# TYPE cutover_process_open_fds gauge\n"));
	assert_true(line_value(rest, "cutover_process_resident_memory_bytes ") > 0);
	/* stdin, stdout and stderr at least */
	assert_true(line_value(rest, "cutover_process_open_fds ") >= 3);
	assert_non_null(strstr(rest, "\ncutover_process_cpu_seconds_total "));
	assert_int_equal(text[strlen(text) - 1], '\n');
	free(text);
	metrics_release(&m);
}

static void test_render_empty(void **state)
{
	struct metrics m;
	(void)state;
	metrics_init(&m);
	char *text = render(&m);
	/* HELP and TYPE always appear, even without series. */
	assert_non_null(strstr(text, "# TYPE cutover_requests_total counter\n# HELP cutover_request_duration_seconds"));
	assert_non_null(strstr(text, "# TYPE cutover_local_responses_total counter\n# HELP cutover_config_reloads_total"));
	assert_null(strstr(text, "cutover_requests_total{"));
	assert_null(strstr(text, "cutover_local_responses_total{"));
	assert_non_null(strstr(text, "\ncutover_config_reloads_total{result=\"failure\"} 0\n"));
	free(text);
	metrics_release(&m);
}

static void test_label_escaping(void **state)
{
	struct metrics m;
	(void)state;
	metrics_init(&m);
	struct metrics_upstream *u = metrics_upstream_get(&m, "we\"b\\", "line\none", NULL);
	assert_non_null(u);
	u->counts.retries = 7;
	metrics_upstream_observe(u, HTTP_METHOD_GET, 200, 1);
	char *text = render(&m);
	assert_non_null(strstr(text,
		"\ncutover_upstream_retries_total{service=\"we\\\"b\\\\\",target=\"line\\none\"} 7\n"));
	assert_non_null(strstr(text,
		"\ncutover_requests_total{service=\"we\\\"b\\\\\",target=\"line\\none\",method=\"GET\",status=\"2xx\"} 1\n"));
	/* No raw newline may leak into a label value. */
	assert_null(strstr(text, "line\none"));
	free(text);
	metrics_release(&m);
}

static void test_cumulative_buckets(void **state)
{
	struct metrics m;
	uint64_t x = 88172645463325252ull, sum = 0;
	(void)state;
	metrics_init(&m);
	struct metrics_upstream *u = metrics_upstream_get(&m, "web", "t", NULL);
	assert_non_null(u);
	for (unsigned i = 0; i < 5000; i++) {
		/* xorshift: spread over 0..~16s so every bucket gets hits */
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		uint64_t us = (x % 24) < 12 ? x % 20000 : x % 16000000;
		sum += us;
		metrics_upstream_observe(u, HTTP_METHOD_GET, 200, us);
	}

	char *text = render(&m);
	const char *prefix = "cutover_request_duration_seconds_bucket{";
	uint64_t prev = 0;
	unsigned nbuckets = 0;
	for (const char *p = strstr(text, prefix); p; p = strstr(p + 1, prefix)) {
		const char *eol = strchr(p, '\n');
		const char *sp = eol;
		while (sp[-1] != ' ')
			sp--;
		uint64_t v = strtoull(sp, NULL, 10);
		assert_true(v >= prev);
		prev = v;
		nbuckets++;
	}
	assert_int_equal(nbuckets, METRICS_LATENCY_BUCKETS + 1);
	assert_int_equal(prev, 5000);
	assert_int_equal(line_value(text, "cutover_request_duration_seconds_bucket{service=\"web\",target=\"t\",le=\"+Inf\"}"), 5000);
	assert_int_equal(line_value(text, "cutover_request_duration_seconds_count{"), 5000);
	assert_int_equal(u->counts.latency.sum_us, sum);
	free(text);
	metrics_release(&m);
}

/* True if an executable named name is found on PATH. */
static int on_path(const char *name)
{
	const char *path = getenv("PATH");
	if (!path)
		return 0;
	char *copy = strdup(path), *save = NULL;
	int found = 0;
	assert_non_null(copy);
	for (char *dir = strtok_r(copy, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save)) {
		char full[4096];
		snprintf(full, sizeof(full), "%s/%s", *dir ? dir : ".", name);
		found = access(full, X_OK) == 0;
	}
	free(copy);
	return found;
}

static bool never_in_use(const struct metrics_upstream *u, void *data)
{
	(void)u;
	(void)data;
	return false;
}

static bool has_line(const char *text, const char *line)
{
	const char *p = strstr(text, line);
	size_t n = strlen(line);

	return p && (p == text || p[-1] == '\n') && p[n] == '\n';
}

/* A managed service's requests and latencies are one series per version,
 * summed over its instances, and stay whole while instances come and go;
 * the per-target families name the version too. */
static void test_version_series(void **state)
{
	(void)state;
	struct metrics m;
	metrics_init(&m);
	struct metrics_upstream *a = metrics_upstream_get(&m, "shop", "127.0.0.1:9001", "1.0.0");
	struct metrics_upstream *b = metrics_upstream_get(&m, "shop", "127.0.0.1:9002", "1.0.0");
	struct metrics_upstream *c = metrics_upstream_get(&m, "shop", "127.0.0.1:9003", "1.1.0");
	struct metrics_upstream *w = metrics_upstream_get(&m, "web", "127.0.0.1:8001", NULL);
	assert_true(a && b && c && w && a != b);
	/* the same address under another version is another entry (a port reused) */
	assert_ptr_not_equal(metrics_upstream_get(&m, "shop", "127.0.0.1:9001", "1.1.0"), a);
	metrics_upstream_retire(&m, "shop", "127.0.0.1:9001"); /* retires both entries of that port */
	a->retired = false;
	metrics_sweep(&m, never_in_use, NULL);
	metrics_upstream_observe(a, HTTP_METHOD_GET, 200, 1000);
	metrics_upstream_observe(a, HTTP_METHOD_GET, 200, 3000);
	metrics_upstream_observe(b, HTTP_METHOD_GET, 503, 2000);
	metrics_upstream_observe(c, HTTP_METHOD_GET, 200, 500);
	metrics_upstream_observe(w, HTTP_METHOD_GET, 200, 500);
	b->counts.connect_failures = 1;

	char *text = metrics_render(&m, NULL);
	assert_non_null(text);
	assert_true(has_line(text, "cutover_requests_total{service=\"shop\",version=\"1.0.0\",method=\"GET\",status=\"2xx\"} 2"));
	assert_true(has_line(text, "cutover_requests_total{service=\"shop\",version=\"1.0.0\",method=\"GET\",status=\"5xx\"} 1"));
	assert_true(has_line(text, "cutover_requests_total{service=\"shop\",version=\"1.1.0\",method=\"GET\",status=\"2xx\"} 1"));
	assert_true(has_line(text, "cutover_requests_total{service=\"web\",target=\"127.0.0.1:8001\",method=\"GET\",status=\"2xx\"} 1"));
	assert_true(has_line(text, "cutover_request_duration_seconds_count{service=\"shop\",version=\"1.0.0\"} 3"));
	assert_true(has_line(text, "cutover_request_duration_seconds_sum{service=\"shop\",version=\"1.0.0\"} 0.006"));
	assert_true(has_line(text, "cutover_upstream_connect_failures_total{service=\"shop\",version=\"1.0.0\",target=\"127.0.0.1:9002\"} 1"));
	assert_null(strstr(text, "requests_total{service=\"shop\",target="));
	/* one series per version, not per instance */
	const char *first = strstr(text, "request_duration_seconds_count{service=\"shop\",version=\"1.0.0\"}");
	assert_null(strstr(first + 1, "request_duration_seconds_count{service=\"shop\",version=\"1.0.0\"}"));
	free(text);

	/* one instance of 1.0.0 goes: the version's counts do not go backwards */
	metrics_upstream_retire(&m, "shop", "127.0.0.1:9002");
	assert_int_equal(metrics_sweep(&m, never_in_use, NULL), 1);
	text = metrics_render(&m, NULL);
	assert_true(has_line(text, "cutover_requests_total{service=\"shop\",version=\"1.0.0\",method=\"GET\",status=\"5xx\"} 1"));
	assert_true(has_line(text, "cutover_request_duration_seconds_count{service=\"shop\",version=\"1.0.0\"} 3"));
	assert_null(strstr(text, "target=\"127.0.0.1:9002\""));
	free(text);

	/* its last instance goes: the version's series leave */
	metrics_upstream_retire(&m, "shop", "127.0.0.1:9001");
	assert_int_equal(metrics_sweep(&m, never_in_use, NULL), 1);
	/* left: 1.1.0's (the swept entry of the reused port) */
	assert_int_equal(m.nversions, 1);
	assert_string_equal(m.versions[0]->version, "1.1.0");
	text = metrics_render(&m, NULL);
	assert_null(strstr(text, "version=\"1.0.0\""));
	assert_true(has_line(text, "cutover_requests_total{service=\"shop\",version=\"1.1.0\",method=\"GET\",status=\"2xx\"} 1"));
	free(text);
	metrics_release(&m);
}

/* Route class counts: created by name on first use, found again by name
 * whatever the order of use, kept apart from each other and from the
 * upstream's own counts, bounded, and freed with the upstream. */
static void test_route_classes(void **state)
{
	struct metrics m;
	struct metrics_upstream *u, *v;
	struct metrics_counts *checkout, *cart, *c;
	char name[32];
	uint64_t requests, errors;

	(void)state;
	metrics_init(&m);
	u = metrics_upstream_get(&m, "shop", "127.0.0.1:9001", "1.0.0");
	v = metrics_upstream_get(&m, "shop", "127.0.0.1:9002", "1.0.0");
	assert_true(u && v);
	assert_null(metrics_upstream_class(u, "POST /api/checkout")); /* nothing counted yet */
	assert_null(metrics_upstream_class_get(NULL, "x"));
	assert_null(metrics_upstream_class_get(u, NULL));
	checkout = metrics_upstream_class_get(u, "POST /api/checkout");
	cart = metrics_upstream_class_get(u, "/api/cart");
	assert_true(checkout && cart && checkout != cart);
	/* the same name, another order: the same counts (a reload reordering classes) */
	assert_ptr_equal(metrics_upstream_class_get(u, "/api/cart"), cart);
	assert_ptr_equal(metrics_upstream_class_get(u, "POST /api/checkout"), checkout);
	metrics_counts_observe(checkout, HTTP_METHOD_POST, 503, 1000);
	metrics_counts_observe(checkout, HTTP_METHOD_POST, 200, 1000);
	metrics_counts_observe(cart, HTTP_METHOD_GET, 200, 1000);
	checkout->connect_failures++;
	assert_ptr_equal(metrics_upstream_class(u, "POST /api/checkout"), checkout);
	metrics_counts_totals(metrics_upstream_class(u, "POST /api/checkout"), &requests, &errors);
	assert_int_equal(requests, 2);
	assert_int_equal(errors, 1);
	assert_int_equal(metrics_upstream_class(u, "POST /api/checkout")->connect_failures, 1);
	metrics_counts_totals(metrics_upstream_class(u, "/api/cart"), &requests, &errors);
	assert_int_equal(requests, 1);
	assert_int_equal(errors, 0);
	/* apart from the upstream's own counts and from the other upstreams' */
	metrics_counts_totals(&u->counts, &requests, &errors);
	assert_int_equal(requests, 0);
	assert_null(metrics_upstream_class(v, "POST /api/checkout"));
	/* a name differing in case is another class */
	assert_null(metrics_upstream_class(u, "post /api/checkout"));
	/* bounded: names beyond METRICS_ROUTE_CLASSES_MAX are not counted */
	for (unsigned i = 2; i < METRICS_ROUTE_CLASSES_MAX; i++) {
		snprintf(name, sizeof(name), "/c%u", i);
		assert_non_null(metrics_upstream_class_get(u, name));
	}
	assert_int_equal(u->nclasses, METRICS_ROUTE_CLASSES_MAX);
	assert_null(metrics_upstream_class_get(u, "/one-too-many"));
	c = metrics_upstream_class_get(u, "/c2");
	assert_non_null(c); /* known names still are */
	assert_ptr_equal(metrics_upstream_class_get(u, "POST /api/checkout"), checkout); /* did not move */
	/* a swept instance takes its classes with it (ASan / valgrind: no leak) */
	metrics_upstream_retire(&m, "shop", "127.0.0.1:9001");
	assert_int_equal(metrics_sweep(&m, never_in_use, NULL), 1);
	metrics_release(&m);
}

/* cutover_requests_retried_on_stable_total: per service, the sum over its
 * upstreams (versions and targets alike), never going backwards when
 * instances are swept, even once their version is entirely gone. */
static void test_retried_on_stable(void **state)
{
	struct metrics m;
	struct metrics_upstream *a, *b, *c, *w;
	char *text;

	(void)state;
	metrics_init(&m);
	a = metrics_upstream_get(&m, "shop", "127.0.0.1:9001", "1.0.0");
	b = metrics_upstream_get(&m, "shop", "127.0.0.1:9002", "1.1.0");
	w = metrics_upstream_get(&m, "web", "127.0.0.1:8001", NULL);
	assert_true(a && b && w);
	a->counts.shielded = 2;
	b->counts.shielded = 5;
	text = metrics_render(&m, NULL);
	assert_true(has_line(text, "cutover_requests_retried_on_stable_total{service=\"shop\"} 7"));
	assert_true(has_line(text, "cutover_requests_retried_on_stable_total{service=\"web\"} 0"));
	/* one series per service */
	assert_null(strstr(strstr(text, "retried_on_stable_total{service=\"shop\"}") + 1,
			   "retried_on_stable_total{service=\"shop\"}"));
	free(text);

	/* 1.1.0 (the canary) is stopped and swept: its version's series go,
	 * the service's total stays */
	metrics_upstream_retire(&m, "shop", "127.0.0.1:9002");
	assert_int_equal(metrics_sweep(&m, never_in_use, NULL), 1);
	text = metrics_render(&m, NULL);
	assert_null(strstr(text, "version=\"1.1.0\""));
	assert_true(has_line(text, "cutover_requests_retried_on_stable_total{service=\"shop\"} 7"));
	free(text);

	/* every instance of the service gone: still there, from the totals */
	metrics_upstream_retire(&m, "shop", "127.0.0.1:9001");
	assert_int_equal(metrics_sweep(&m, never_in_use, NULL), 1);
	text = metrics_render(&m, NULL);
	assert_true(has_line(text, "cutover_requests_retried_on_stable_total{service=\"shop\"} 7"));
	free(text);

	/* a new instance adds to it */
	c = metrics_upstream_get(&m, "shop", "127.0.0.1:9003", "1.2.0");
	assert_non_null(c);
	c->counts.shielded = 1;
	text = metrics_render(&m, NULL);
	assert_true(has_line(text, "cutover_requests_retried_on_stable_total{service=\"shop\"} 8"));
	assert_null(strstr(strstr(text, "retried_on_stable_total{service=\"shop\"}") + 1,
			   "retried_on_stable_total{service=\"shop\"}"));
	free(text);
	metrics_release(&m);
}

/* Spans: each bucket's bound is inclusive (5 s is in le="5"), beyond
 * the last bound is +Inf; the buckets are written cumulative, the sum in
 * seconds to the millisecond. */
static void test_span_histogram(void **state)
{
	static const struct {
		uint64_t ms;
		unsigned bucket;
	} cases[] = {
		{ 0, 0 },          { 4999, 0 },       { 5000, 0 },       { 5001, 1 },    { 10000, 1 },
		{ 10001, 2 },      { 59999, 3 },      { 60000, 3 },      { 300000, 5 },  { 1800000, 8 },
		{ 1800001, 9 },    { 3600000, 9 },    { 3600001, 10 },   { UINT64_MAX / 2, 10 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct metrics_span_histogram h = { 0 };
		metrics_span_observe(&h, cases[i].ms);
		for (unsigned b = 0; b <= METRICS_SPAN_BUCKETS; b++)
			if (h.buckets[b] != (b == cases[i].bucket))
				fail_msg("%" PRIu64 " ms: bucket %u holds %" PRIu64 ", want it in bucket %u", cases[i].ms, b,
					 h.buckets[b], cases[i].bucket);
		assert_int_equal(h.count, 1);
		assert_int_equal(h.sum_ms, cases[i].ms);
	}

	struct metrics_span_histogram h = { 0 };
	metrics_span_observe(&h, 1500);
	metrics_span_observe(&h, 61000);
	metrics_span_observe(&h, 7200000);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	assert_non_null(f);
	assert_int_equal(metrics_span_write(f, "cutover_deploy_duration_seconds", "service=\"shop\"", &h), 0);
	assert_int_equal(metrics_span_write(f, "x", "", &(struct metrics_span_histogram){ 0 }), 0);
	assert_int_equal(fclose(f), 0);
	assert_string_equal(text,
			    "cutover_deploy_duration_seconds_bucket{service=\"shop\",le=\"5\"} 1\n"
			    "cutover_deploy_duration_seconds_bucket{service=\"shop\",le=\"10\"} 1\n"
			    "cutover_deploy_duration_seconds_bucket{service=\"shop\",le=\"30\"} 1\n"
			    "cutover_deploy_duration_seconds_bucket{service=\"shop\",le=\"60\"} 1\n"
			    "cutover_deploy_duration_seconds_bucket{service=\"shop\",le=\"120\"} 2\n"
			    "cutover_deploy_duration_seconds_bucket{service=\"shop\",le=\"300\"} 2\n"
			    "cutover_deploy_duration_seconds_bucket{service=\"shop\",le=\"600\"} 2\n"
			    "cutover_deploy_duration_seconds_bucket{service=\"shop\",le=\"1200\"} 2\n"
			    "cutover_deploy_duration_seconds_bucket{service=\"shop\",le=\"1800\"} 2\n"
			    "cutover_deploy_duration_seconds_bucket{service=\"shop\",le=\"3600\"} 2\n"
			    "cutover_deploy_duration_seconds_bucket{service=\"shop\",le=\"+Inf\"} 3\n"
			    "cutover_deploy_duration_seconds_sum{service=\"shop\"} 7262.5\n"
			    "cutover_deploy_duration_seconds_count{service=\"shop\"} 3\n"
			    "x_bucket{le=\"5\"} 0\n"
			    "x_bucket{le=\"10\"} 0\n"
			    "x_bucket{le=\"30\"} 0\n"
			    "x_bucket{le=\"60\"} 0\n"
			    "x_bucket{le=\"120\"} 0\n"
			    "x_bucket{le=\"300\"} 0\n"
			    "x_bucket{le=\"600\"} 0\n"
			    "x_bucket{le=\"1200\"} 0\n"
			    "x_bucket{le=\"1800\"} 0\n"
			    "x_bucket{le=\"3600\"} 0\n"
			    "x_bucket{le=\"+Inf\"} 0\n"
			    "x_sum{} 0\n"
			    "x_count{} 0\n");
	free(text);
}

static const struct metrics_disk host_disks[] = {
	{ "state", 123456789, 987654321 },
	{ "store", 0, 1ull << 40 },
};
static const struct metrics_alert_limits host_limits[] = {
	{ "shop", 50, 1000 },
	{ "api", 5, 250 },
	{ "quiet", UINT32_MAX, 0 },        /* both off: no series */
	{ "strict", 0, 3600000 },
	{ "we\"ird\\", 1000, 1 },
};

/* The daemon's families, exactly: every HELP and TYPE even without series,
 * ratios and seconds as exact decimals, an off limit left out, the secrets
 * gauge only when secrets are configured. */
static void test_host_render(void **state)
{
	struct metrics_host h = { .version = "1.2.3", .disks = host_disks, .ndisks = 2, .identity_readable = 1,
				  .limits = host_limits, .nlimits = 5 };
	size_t len = 0;
	char *text = metrics_host_render(&h, &len);
	(void)state;

	assert_non_null(text);
	assert_int_equal(len, strlen(text));
	assert_string_equal(text,
		"# HELP cutover_build_info Always 1; the version of the cutover binary that runs, in its label.\n"
		"# TYPE cutover_build_info gauge\n"
		"cutover_build_info{version=\"1.2.3\"} 1\n"
		"# HELP cutover_disk_free_bytes Bytes free for the daemon on the file system of the state directory "
		"(dir=\"state\") and of the release store (dir=\"store\").\n"
		"# TYPE cutover_disk_free_bytes gauge\n"
		"cutover_disk_free_bytes{dir=\"state\"} 123456789\n"
		"cutover_disk_free_bytes{dir=\"store\"} 0\n"
		"# HELP cutover_disk_size_bytes Size of the same file systems, in bytes.\n"
		"# TYPE cutover_disk_size_bytes gauge\n"
		"cutover_disk_size_bytes{dir=\"state\"} 987654321\n"
		"cutover_disk_size_bytes{dir=\"store\"} 1099511627776\n"
		"# HELP cutover_secrets_identity_readable 1 when the daemon can read its secrets identity (a key, mode "
		"0600), 0 when it cannot; only when secrets are configured.\n"
		"# TYPE cutover_secrets_identity_readable gauge\n"
		"cutover_secrets_identity_readable 1\n"
		"# HELP cutover_alert_max_error_rate The error rate above which a service's alert fires "
		"(services.NAME.alerts.max_error_rate), as a ratio.\n"
		"# TYPE cutover_alert_max_error_rate gauge\n"
		"cutover_alert_max_error_rate{service=\"shop\"} 0.05\n"
		"cutover_alert_max_error_rate{service=\"api\"} 0.005\n"
		"cutover_alert_max_error_rate{service=\"strict\"} 0\n"
		"cutover_alert_max_error_rate{service=\"we\\\"ird\\\\\"} 1\n"
		"# HELP cutover_alert_max_p99_seconds The p99 latency above which a service's alert fires "
		"(services.NAME.alerts.max_p99), in seconds.\n"
		"# TYPE cutover_alert_max_p99_seconds gauge\n"
		"cutover_alert_max_p99_seconds{service=\"shop\"} 1\n"
		"cutover_alert_max_p99_seconds{service=\"api\"} 0.25\n"
		"cutover_alert_max_p99_seconds{service=\"strict\"} 3600\n"
		"cutover_alert_max_p99_seconds{service=\"we\\\"ird\\\\\"} 0.001\n");
	free(text);

	/* nothing measured, no secrets, no service: the families alone */
	h = (struct metrics_host){ .version = NULL, .identity_readable = -1 };
	text = metrics_host_render(&h, &len);
	assert_non_null(text);
	assert_non_null(strstr(text, "cutover_build_info{version=\"unknown\"} 1\n"));
	assert_null(strstr(text, "\ncutover_secrets_identity_readable "));
	assert_null(strstr(text, "cutover_disk_free_bytes{"));
	assert_null(strstr(text, "cutover_alert_max_error_rate{"));
	assert_non_null(strstr(text, "# TYPE cutover_alert_max_p99_seconds gauge\n"));
	free(text);

	h.identity_readable = 0;
	text = metrics_host_render(&h, &len);
	assert_non_null(strstr(text, "\ncutover_secrets_identity_readable 0\n"));
	free(text);
}

static void test_promtool(void **state)
{
	(void)state;
	if (!on_path("promtool")) {
		print_message("promtool not on PATH: skipping the exposition lint (Debian package 'prometheus')\n");
		skip();
	}

	struct metrics m;
	metrics_init(&m);
	struct metrics_upstream *a = metrics_upstream_get(&m, "web", "127.0.0.1:9001", NULL);
	struct metrics_upstream *b = metrics_upstream_get(&m, "we\"ird\\ one\n", "[::1]:9002", NULL);
	struct metrics_upstream *v1 = metrics_upstream_get(&m, "shop", "127.0.0.1:9101", "1.0.0");
	struct metrics_upstream *v2 = metrics_upstream_get(&m, "shop", "127.0.0.1:9102", "1.0.0+build.7");
	assert_non_null(a);
	assert_non_null(b);
	assert_true(v1 && v2);
	metrics_upstream_observe(v1, HTTP_METHOD_GET, 200, 1500);
	metrics_upstream_observe(v2, HTTP_METHOD_POST, 502, 25000);
	for (unsigned i = 0; i < 200; i++) {
		metrics_upstream_observe(a, (enum http_method)(i % HTTP_METHOD__COUNT), 100 + (int)(i % 500), i * 997);
		metrics_upstream_observe(b, HTTP_METHOD_GET, 200, i * 50000);
	}
	a->counts.connect_failures = 3;
	b->open_connections = 2;
	m.in_flight = 1;
	metrics_local_response(&m, 404);
	metrics_local_response(&m, 431);
	m.config_reload_failures = 2;

	/* the registry's families, then the daemon's and a span histogram, as /metrics has them */
	struct metrics_host host = { .version = "0.1.0", .disks = host_disks, .ndisks = 2, .identity_readable = 0,
				     .limits = host_limits, .nlimits = 5 };
	struct metrics_span_histogram span = { 0 };
	char *base = metrics_render(&m, NULL), *more = metrics_host_render(&host, NULL), *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_true(base && more && f);
	metrics_span_observe(&span, 42000);
	fputs(base, f);
	fputs(more, f);
	fputs("# HELP cutover_deploy_duration_seconds Spans.\n# TYPE cutover_deploy_duration_seconds histogram\n", f);
	assert_int_equal(metrics_span_write(f, "cutover_deploy_duration_seconds", "service=\"shop\"", &span), 0);
	assert_int_equal(fclose(f), 0);
	free(base);
	free(more);

	char path[] = "/tmp/test_metrics_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);

	char cmd[256];
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", path);
	int status = system(cmd);
	unlink(path);
	free(text);
	metrics_release(&m);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_method_index),
		cmocka_unit_test(test_init_release),
		cmocka_unit_test(test_fine_histogram),
		cmocka_unit_test(test_fine_upper),
		cmocka_unit_test(test_counts_add),
		cmocka_unit_test(test_counts_window),
		cmocka_unit_test(test_counts_totals),
		cmocka_unit_test(test_counts_quantile),
		cmocka_unit_test(test_counts_quantile_huge),
		cmocka_unit_test(test_counts_quantile_rank),
		cmocka_unit_test(test_counts_quantile_random),
		cmocka_unit_test(test_retire_and_sweep),
		cmocka_unit_test(test_upstream_get),
		cmocka_unit_test(test_many_upstreams),
		cmocka_unit_test(test_observe_counts),
		cmocka_unit_test(test_bucket_boundaries),
		cmocka_unit_test(test_render_exact),
		cmocka_unit_test(test_render_empty),
		cmocka_unit_test(test_label_escaping),
		cmocka_unit_test(test_cumulative_buckets),
		cmocka_unit_test(test_version_series),
		cmocka_unit_test(test_route_classes),
		cmocka_unit_test(test_retried_on_stable),
		cmocka_unit_test(test_span_histogram),
		cmocka_unit_test(test_host_render),
		cmocka_unit_test(test_promtool),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

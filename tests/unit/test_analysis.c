/* test_analysis.c - unit tests of the deploy analysis (src/deploy/analysis.c).
 *
 * First the statistics against values worked out by hand (Python's
 * math.lgamma, the same formulas).  Then one table of cases, each a window
 * of counts described as groups of requests (how many, which status, how
 * long) plus failed connects, optionally a baseline, with the rules, the
 * expected result and the exact sentence.  Then the properties issue 10
 * asks for, on simulated traffic from a fixed-seed generator (deterministic,
 * so a regression fails every time): two errors in thirty never fail, a
 * burst is caught within the first second, a route class failing one
 * checkout in four is caught, a 3x p99 is caught, and a good canary judged
 * every ten requests is failed less often than 1 - confidence.  The figures
 * they print are the ones quoted in docs/internals/analysis.md.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <errno.h>

#include "config/config.h"
#include "deploy/analysis.h"
#include "metrics/metrics.h"

#define MS 1000u

/* n requests answered with status after us microseconds */
struct group {
	uint64_t n;
	int status;
	uint64_t us;
};

struct window {
	struct group g[3];
	uint64_t connect_failures;
};

static void fill(struct metrics_counts *c, const struct window *w)
{
	memset(c, 0, sizeof(*c));
	for (unsigned i = 0; i < 3; i++)
		for (uint64_t k = 0; k < w->g[i].n; k++)
			metrics_counts_observe(c, HTTP_METHOD_GET, w->g[i].status, w->g[i].us);
	c->connect_failures = w->connect_failures;
}

/* The rules a service gets when its configuration says nothing. */
static struct analysis_rules default_rules(void)
{
	struct config_service svc;
	struct analysis_rules r;

	memset(&svc, 0, sizeof(svc));
	assert_int_equal(config_service_defaults(&svc), 0);
	r = (struct analysis_rules){
		.max_error_rate_permille = svc.deploy.max_error_rate_permille,
		.max_error_rate_increase_permille = svc.deploy.max_error_rate_increase_permille,
		.max_p50_ms = svc.deploy.max_p50_ms,
		.max_p99_ms = svc.deploy.max_p99_ms,
		.max_p50_ratio_percent = svc.deploy.max_p50_ratio_percent,
		.max_p99_ratio_percent = svc.deploy.max_p99_ratio_percent,
		.latency_margin_ms = svc.deploy.latency_margin_ms,
		.min_requests = svc.deploy.min_requests,
		.confidence_bp = svc.deploy.confidence_bp,
	};
	free(svc.health.path);
	free(svc.changelog);
	return r;
}

/*
 * The statistics.
 */

static void assert_close(double got, double want, double rel, const char *what)
{
	if (!(fabs(got - want) <= rel * fabs(want)))
		fail_msg("%s: got %.10g, expected %.10g", what, got, want);
}

static void test_statistics(void **state)
{
	/* log Lambda: from Python, lgamma(k+1)+lgamma(n-k+1)-lgamma(n+2) - k log p0 - (n-k) log1p(-p0) */
	static const struct {
		uint64_t k, n;
		double p0, log_lambda;
	} lambdas[] = {
		{ 10, 40, 0.05, 7.224558708 },     /* 25 % of 40 against 5 %: p = 0.00073 */
		{ 9, 40, 0.05, 5.411521840 },      /* p = 0.0045 */
		{ 2, 30, 0.05, -2.081656446 },     /* two in thirty: far from failing */
		{ 0, 100, 0.05, 0.514208922 },  /* nothing bad: k/n <= p0, never fails */
		{ 70, 100, 0.5, 6.057501898 },  /* p = 0.0023 */
		{ 10, 100, 0.01, 11.858788208 },
	};
	/* one-sided Wilson upper bound at 99 %, z = 2.3263479 */
	static const struct {
		uint64_t k, n;
		uint32_t bp;
		double upper;
	} wilsons[] = {
		{ 8, 1930, 9900, 0.0092010945272 }, /* the stable version of the issue: 0.4 % over 1,930 */
		{ 0, 1930, 9900, 0.00279624944263 },
		{ 0, 0, 9900, 1.0 },
		{ 50, 100, 9500, 0.581152203887 }, /* z = 1.6448536 */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(lambdas) / sizeof(lambdas[0]); i++)
		assert_close(analysis_log_lambda(lambdas[i].k, lambdas[i].n, lambdas[i].p0), lambdas[i].log_lambda,
			     1e-8, "log lambda");
	for (size_t i = 0; i < sizeof(wilsons) / sizeof(wilsons[0]); i++)
		assert_close(analysis_wilson_upper(wilsons[i].k, wilsons[i].n, wilsons[i].bp), wilsons[i].upper, 1e-7,
			     "wilson");
	/* the data rule p0 out */
	assert_true(isinf(analysis_log_lambda(1, 50, 0.0)));
	assert_true(isinf(analysis_log_lambda(49, 50, 1.0)));
	assert_false(isnan(analysis_log_lambda(0, 50, 0.0)));
}

/* Upper bounds of a quantile: 536 responses bound a p99 at 99 %, 535 do
 * not; 6 a median. */
static void test_quantile_upper(void **state)
{
	static const struct {
		uint64_t n;
		unsigned permille;
		uint32_t bp;
		int ret;
	} bounds[] = {
		{ 536, 990, 9900, 0 }, { 535, 990, 9900, -ENODATA }, { 6, 500, 9900, 0 }, { 5, 500, 9900, -ENODATA },
		{ 268, 990, 9500, 0 }, { 267, 990, 9500, -ENODATA }, { 1, 990, 5000, 0 } /* z = 0 */,
		{ 0, 500, 9900, -ENODATA },
		{ 1000, 0, 9900, -EINVAL }, { 1000, 1000, 9900, -EINVAL },
	};
	struct metrics_counts c;
	uint64_t low, up;

	(void)state;
	for (size_t i = 0; i < sizeof(bounds) / sizeof(bounds[0]); i++) {
		memset(&c, 0, sizeof(c));
		for (uint64_t k = 0; k < bounds[i].n; k++)
			metrics_counts_observe(&c, HTTP_METHOD_GET, 200, 10 * MS);
		up = 7;
		if (analysis_quantile_upper(&c, bounds[i].permille, bounds[i].bp, &up) != bounds[i].ret)
			fail_msg("case %zu: %" PRIu64 " responses, quantile %u at %u: not %d", i, bounds[i].n,
				 bounds[i].permille, bounds[i].bp, bounds[i].ret);
		assert_int_equal(up, bounds[i].ret ? 7 : metrics_fine_upper_us(metrics_fine_index(10 * MS)));
	}
	/* 10,000 at 10 ms, 50 at 20 ms and 50 at 40 ms: the p99 lies in the 10 ms bucket, but the
	 * 99 % upper bound of it in the 20 ms one (99.0 % at or below 10 ms could be chance, 99.5 %
	 * at or below 20 ms is not); with a tenth of the sample, it is the largest (40 ms) */
	memset(&c, 0, sizeof(c));
	for (unsigned k = 0; k < 10100; k++)
		metrics_counts_observe(&c, HTTP_METHOD_GET, 200, k < 10000 ? 10 * MS : k < 10050 ? 20 * MS : 40 * MS);
	assert_int_equal(metrics_counts_quantile(&c, 990, &low, &up), 0);
	assert_int_equal(up, metrics_fine_upper_us(metrics_fine_index(10 * MS)));
	assert_int_equal(analysis_quantile_upper(&c, 990, 9900, &up), 0);
	assert_int_equal(up, metrics_fine_upper_us(metrics_fine_index(20 * MS)));
	memset(&c, 0, sizeof(c));
	for (unsigned k = 0; k < 1010; k++)
		metrics_counts_observe(&c, HTTP_METHOD_GET, 200, k < 1000 ? 10 * MS : k < 1005 ? 20 * MS : 40 * MS);
	assert_int_equal(analysis_quantile_upper(&c, 990, 9900, &up), 0);
	assert_int_equal(up, metrics_fine_upper_us(metrics_fine_index(40 * MS)));
}

/*
 * The table.
 */

/* a window: CF failed connects, then up to three groups */
#define W(cf, ...) { .connect_failures = (cf), .g = { __VA_ARGS__ } }
/* absolute limits only */
#define RULES(permille, p99_ms, min) { .max_error_rate_permille = (permille), .max_p99_ms = (p99_ms), \
				       .min_requests = (min), .confidence_bp = 9900 }
/* the defaults: 5 %, no increase, 2x the p50 and the p99 (+10 ms), 20 requests, 99 % */
#define DEFAULTS { .max_error_rate_permille = 50, .max_p50_ratio_percent = 200, .max_p99_ratio_percent = 200, \
		   .latency_margin_ms = 10, .min_requests = 20, .confidence_bp = 9900 }

/* stable versions */
static const struct window stable_issue = W(0, { 1922, 200, 10 * MS }, { 8, 500, 10 * MS }); /* 0.4 % over 1,930 */
static const struct window stable_tail = W(0, { 900, 200, 10 * MS }, { 100, 200, 40 * MS }); /* p99 in 38..41 ms */
static const struct window stable_fast = W(0, { 1000, 200, 2 * MS });                        /* 1.9..3 ms */
static const struct window stable_small = W(0, { 10, 200, 10 * MS });
static const struct window stable_300 = W(0, { 300, 200, 10 * MS });                         /* too few for a p99 */

static const struct {
	const char *name;
	struct analysis_rules rules;
	struct window w;
	const struct window *baseline;
	const char *scope, *baseline_name;
	enum analysis_result result;
	const char *reason;
} cases[] = {
	/* the absolute error rate */
	{ "pass", RULES(50, 0, 20), W(0, { 50, 200, 10 * MS }), NULL, NULL, NULL,
	  ANALYSIS_PASS, "1 check passed: error rate 0.0% over 50 requests, p50 11 ms or less, p99 11 ms or less" },
	{ "25% of 40 against 5%", RULES(50, 0, 20), W(0, { 30, 200, 10 * MS }, { 10, 500, 10 * MS }), NULL, NULL, NULL,
	  ANALYSIS_FAIL, "error rate 25.0% over 40 requests, above the 5.0% limit, p < 0.001" },
	{ "22.5% of 40: p rounded up", RULES(50, 0, 20), W(0, { 31, 200, 10 * MS }, { 9, 500, 10 * MS }), NULL, NULL,
	  NULL, ANALYSIS_FAIL, "error rate 22.5% over 40 requests, above the 5.0% limit, p = 0.005" },
	{ "20% of 40 is not proof yet", RULES(50, 0, 20), W(0, { 32, 200, 10 * MS }, { 8, 500, 10 * MS }), NULL, NULL,
	  NULL, ANALYSIS_PASS,
	  "1 check passed: error rate 20.0% over 40 requests, p50 11 ms or less, p99 11 ms or less" },
	{ "two in thirty against 5%", RULES(50, 0, 20), W(0, { 28, 200, 10 * MS }, { 2, 500, 10 * MS }), NULL, NULL,
	  NULL, ANALYSIS_PASS,
	  "1 check passed: error rate 6.7% over 30 requests, p50 11 ms or less, p99 11 ms or less" },
	{ "at the limit", RULES(50, 0, 20), W(0, { 57, 200, 10 * MS }, { 3, 503, 10 * MS }), NULL, NULL, NULL,
	  ANALYSIS_PASS, "1 check passed: error rate 5.0% over 60 requests, p50 11 ms or less, p99 11 ms or less" },
	{ "4xx are not errors", RULES(50, 0, 20), W(0, { 50, 404, 10 * MS }), NULL, NULL, NULL,
	  ANALYSIS_PASS, "1 check passed: error rate 0.0% over 50 requests, p50 11 ms or less, p99 11 ms or less" },
	{ "limit 0%: one error is proof", RULES(0, 0, 20), W(0, { 49, 200, 10 * MS }, { 1, 500, 10 * MS }), NULL, NULL,
	  NULL, ANALYSIS_FAIL, "error rate 2.0% over 50 requests, above the 0.0% limit, p < 0.001" },
	{ "limit 100%: never fails", RULES(1000, 0, 20), W(0, { 50, 599, 10 * MS }), NULL, NULL, NULL,
	  ANALYSIS_PASS, "1 check passed: error rate 100.0% over 50 requests, p50 11 ms or less, p99 11 ms or less" },
	{ "connect failures are errors", RULES(50, 0, 20), W(15, { 35, 200, 10 * MS }), NULL, NULL, NULL,
	  ANALYSIS_FAIL, "error rate 30.0% over 50 requests, above the 5.0% limit, p < 0.001" },
	{ "only connect failures", RULES(50, 500, 20), W(30, { 0 }), NULL, NULL, NULL,
	  ANALYSIS_FAIL, "error rate 100.0% over 30 requests, above the 5.0% limit, p < 0.001" },
	{ "one request, min_requests 0 (read as 1)", RULES(0, 0, 0), W(0, { 1, 500, 10 * MS }), NULL, NULL, NULL,
	  ANALYSIS_FAIL, "error rate 100.0% over 1 request, above the 0.0% limit, p < 0.001" },
	/* the minimum sample */
	{ "below min_requests, even all failing", RULES(50, 500, 20), W(0, { 12, 500, 900 * MS }), NULL, NULL, NULL,
	  ANALYSIS_INCONCLUSIVE, "too few requests to judge: 12 of the 20 needed" },
	{ "zero requests", RULES(50, 500, 20), W(0, { 0 }), NULL, NULL, NULL,
	  ANALYSIS_INCONCLUSIVE, "too few requests to judge: 0 of the 20 needed" },
	{ "zero requests, min_requests 0", RULES(50, 500, 0), W(0, { 0 }), NULL, NULL, NULL,
	  ANALYSIS_INCONCLUSIVE, "too few requests to judge: 0 of the 1 needed" },
	{ "connect failures have no latency", RULES(500, 500, 25), W(10, { 20, 200, 900 * MS }), NULL, NULL, NULL,
	  ANALYSIS_INCONCLUSIVE, "too few responses to judge the latency: 20 of the 25 needed" },
	{ "low traffic below the minimum, 2,000 needed", RULES(50, 0, 2000), W(0, { 1999, 200, 10 * MS }), NULL,
	  NULL, NULL, ANALYSIS_INCONCLUSIVE, "too few requests to judge: 1,999 of the 2,000 needed" },
	/* the absolute p99 */
	{ "p99: 10 of 100 slower than the limit", RULES(50, 500, 20), W(0, { 90, 200, 10 * MS }, { 10, 200, 612 * MS }),
	  NULL, NULL, NULL, ANALYSIS_FAIL,
	  "p99 latency 589 ms or more over 100 responses, above the 500 ms limit, p < 0.001" },
	{ "p99: 2 of 100 is not proof", RULES(50, 500, 20), W(0, { 98, 200, 10 * MS }, { 2, 200, 612 * MS }),
	  NULL, NULL, NULL, ANALYSIS_PASS,
	  "2 checks passed: error rate 0.0% over 100 requests, p50 11 ms or less, p99 623 ms or less" },
	{ "p99: a bucket straddling the limit is not counted", RULES(50, 500, 20),
	  W(0, { 50, 200, 10 * MS }, { 50, 200, 505 * MS }), NULL, NULL, NULL, ANALYSIS_PASS,
	  "2 checks passed: error rate 0.0% over 100 requests, p50 11 ms or less, p99 508 ms or less" },
	{ "p99: a bucket wholly above it is", RULES(50, 500, 20), W(0, { 50, 200, 10 * MS }, { 50, 200, 510 * MS }),
	  NULL, NULL, NULL, ANALYSIS_FAIL,
	  "p99 latency 507 ms or more over 100 responses, above the 500 ms limit, p < 0.001" },
	{ "p99: a huge limit does not overflow", RULES(50, UINT64_MAX, 20), W(0, { 50, 200, 2000 * MS }), NULL, NULL,
	  NULL, ANALYSIS_PASS, "2 checks passed: error rate 0.0% over 50 requests, p50 2032 ms or less, "
				"p99 2032 ms or less" },
	{ "p50: 70 of 100 slower than the limit", { .max_error_rate_permille = 50, .max_p50_ms = 100,
						   .min_requests = 20, .confidence_bp = 9900 },
	  W(0, { 30, 200, 10 * MS }, { 70, 200, 150 * MS }), NULL, NULL, NULL, ANALYSIS_FAIL,
	  "p50 latency 147 ms or more over 100 responses, above the 100 ms limit, p = 0.003" },
	{ "both broken: the error rate is named", RULES(50, 500, 20),
	  W(0, { 40, 200, 900 * MS }, { 10, 500, 900 * MS }), NULL, NULL, NULL,
	  ANALYSIS_FAIL, "error rate 20.0% over 50 requests, above the 5.0% limit, p = 0.007" },
	/* comparisons with the stable version */
	{ "the issue's abort", DEFAULTS, W(0, { 180, 200, 10 * MS }, { 40, 500, 10 * MS }), &stable_issue, NULL,
	  "1.1.0", ANALYSIS_FAIL, "error rate 18.2% over 220 requests against 0.4% over 1,930 on 1.1.0, p < 0.001" },
	{ "two in thirty against 0.4% over 1,930", DEFAULTS, W(0, { 28, 200, 10 * MS }, { 2, 500, 10 * MS }),
	  &stable_issue, NULL, "1.1.0", ANALYSIS_PASS,
	  "4 checks passed: error rate 6.7% over 30 requests, p50 11 ms or less, p99 11 ms or less" },
	{ "three in thirty against 0.4% over 1,930", DEFAULTS, W(0, { 27, 200, 10 * MS }, { 3, 500, 10 * MS }),
	  &stable_issue, NULL, "1.1.0", ANALYSIS_PASS,
	  "4 checks passed: error rate 10.0% over 30 requests, p50 11 ms or less, p99 11 ms or less" },
	{ "four in thirty against 0.4% over 1,930", DEFAULTS, W(0, { 26, 200, 10 * MS }, { 4, 500, 10 * MS }),
	  &stable_issue, NULL, "1.1.0", ANALYSIS_FAIL,
	  "error rate 13.3% over 30 requests against 0.4% over 1,930 on 1.1.0, p = 0.005" },
	{ "an increase allowed", { .max_error_rate_permille = 1000, .max_error_rate_increase_permille = 20,
				   .min_requests = 20, .confidence_bp = 9900 },
	  W(0, { 450, 200, 10 * MS }, { 50, 500, 10 * MS }), &stable_issue, NULL, "1.1.0", ANALYSIS_FAIL,
	  "error rate 10.0% over 500 requests against 0.4% over 1,930 on 1.1.0 (+2.0 points allowed), p < 0.001" },
	{ "no name for the stable version", DEFAULTS, W(0, { 180, 200, 10 * MS }, { 40, 500, 10 * MS }),
	  &stable_issue, NULL, NULL, ANALYSIS_FAIL,
	  "error rate 18.2% over 220 requests against 0.4% over 1,930 on the stable version, p < 0.001" },
	{ "a stable version too small to compare with", DEFAULTS, W(0, { 50, 200, 10 * MS }), &stable_small, NULL,
	  "1.1.0", ANALYSIS_PASS, "1 check passed: error rate 0.0% over 50 requests, p50 11 ms or less, "
				  "p99 11 ms or less; 3 not judged (1.1.0 too small to compare)" },
	{ "below min_requests against a stable version", DEFAULTS, W(0, { 12, 500, 10 * MS }), &stable_issue, NULL,
	  "1.1.0", ANALYSIS_INCONCLUSIVE, "too few requests to judge: 12 of the 20 needed" },
	{ "p99 3x the stable one's", DEFAULTS, W(0, { 150, 200, 10 * MS }, { 50, 200, 120 * MS }), &stable_tail, NULL,
	  "1.1.0", ANALYSIS_FAIL,
	  "p99 latency 118 ms or more over 200 responses, above 2x 1.1.0's 41 ms (+10 ms), p < 0.001" },
	{ "p99 within 2x", DEFAULTS, W(0, { 150, 200, 10 * MS }, { 50, 200, 75 * MS }), &stable_tail, NULL,
	  "1.1.0", ANALYSIS_PASS,
	  "4 checks passed: error rate 0.0% over 200 requests, p50 11 ms or less, p99 78 ms or less" },
	{ "a p99 from too few responses is not compared", DEFAULTS, W(0, { 190, 200, 10 * MS }, { 10, 200, 300 * MS }),
	  &stable_300, NULL, "1.1.0", ANALYSIS_PASS,
	  "3 checks passed: error rate 0.0% over 200 requests, p50 11 ms or less, p99 312 ms or less; "
	  "1 not judged (1.1.0 too small to compare)" },
	{ "the margin: 19 ms against 3 ms fails", DEFAULTS, W(0, { 100, 200, 20 * MS }), &stable_fast, NULL, "1.1.0",
	  ANALYSIS_FAIL, "p50 latency 19 ms or more over 100 responses, above 1.1.0's 3 ms + 10 ms, p < 0.001" },
	{ "the margin: 11 ms against 3 ms passes", DEFAULTS, W(0, { 100, 200, 11 * MS }), &stable_fast, NULL,
	  "1.1.0", ANALYSIS_PASS,
	  "4 checks passed: error rate 0.0% over 100 requests, p50 12 ms or less, p99 12 ms or less" },
	{ "the error rate before the latency", DEFAULTS, W(0, { 150, 200, 120 * MS }, { 50, 500, 120 * MS }),
	  &stable_tail, NULL, "1.1.0", ANALYSIS_FAIL,
	  "error rate 25.0% over 200 requests against 0.0% over 1,000 on 1.1.0, p < 0.001" },
	/* a route class */
	{ "a route class fails", RULES(50, 0, 20), W(0, { 30, 200, 10 * MS }, { 10, 500, 10 * MS }), NULL,
	  "POST /api/checkout", NULL, ANALYSIS_FAIL,
	  "POST /api/checkout: error rate 25.0% over 40 requests, above the 5.0% limit, p < 0.001" },
	{ "a route class is too small", DEFAULTS, W(0, { 12, 200, 10 * MS }), &stable_issue, "POST /api/checkout",
	  "1.1.0", ANALYSIS_INCONCLUSIVE, "POST /api/checkout: too few requests to judge: 12 of the 20 needed" },
	{ "a route class passes", DEFAULTS, W(0, { 40, 200, 10 * MS }), &stable_issue, "POST /api/checkout", "1.1.0",
	  ANALYSIS_PASS, "POST /api/checkout: 4 checks passed: error rate 0.0% over 40 requests, "
			 "p50 11 ms or less, p99 11 ms or less" },
};

static void test_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct metrics_counts cand, base;
		struct analysis_input in = { .scope = cases[i].scope, .baseline_name = cases[i].baseline_name,
					     .candidate = &cand, .baseline = cases[i].baseline ? &base : NULL };
		struct analysis_verdict v;
		enum analysis_result r;
		size_t failed = 0;

		fill(&cand, &cases[i].w);
		if (cases[i].baseline)
			fill(&base, cases[i].baseline);
		memset(&v, 0x5a, sizeof(v)); /* every field must be set */
		r = analysis_judge(&cases[i].rules, &in, &v);
		if (r != v.result)
			fail_msg("%s: returned %d, verdict says %d", cases[i].name, r, v.result);
		if (r != cases[i].result || strcmp(v.reason, cases[i].reason) != 0)
			fail_msg("%s:\n  got      %s: \"%s\"\n  expected %s: \"%s\"", cases[i].name,
				 analysis_result_name(r), v.reason, analysis_result_name(cases[i].result),
				 cases[i].reason);
		assert_int_equal(v.has_baseline, cases[i].baseline != NULL);
		assert_true(v.nchecks >= 1 && v.nchecks <= ANALYSIS_CHECKS_MAX);
		for (size_t c = 0; c < v.nchecks; c++) {
			failed += v.checks[c].result == ANALYSIS_FAIL;
			assert_true(v.checks[c].name[0] && v.checks[c].condition[0] && v.checks[c].value[0]);
			if (cases[i].scope)
				assert_memory_equal(v.checks[c].name, cases[i].scope, strlen(cases[i].scope));
		}
		/* a failure comes from a failed check, and gives its p-value */
		assert_int_equal(failed > 0, r == ANALYSIS_FAIL);
		assert_true(r == ANALYSIS_FAIL ? v.p_value <= 0.01 : v.p_value == 1.0);
	}
}

/* What `cutover status` shows: each check with its condition and value. */
static void test_checks(void **state)
{
	static const struct analysis_rules rules = { .max_error_rate_permille = 50, .max_p50_ms = 100,
						     .max_p99_ms = 500, .max_p50_ratio_percent = 150,
						     .max_p99_ratio_percent = 200, .latency_margin_ms = 10,
						     .min_requests = 20, .confidence_bp = 9990 };
	static const struct {
		const char *name, *condition, *value;
		enum analysis_result result;
	} want[] = {
		{ "GET /: error rate", "at most 5.0%", "1.5% (3 of 200)", ANALYSIS_PASS },
		{ "GET /: error rate vs 1.1.0", "not above 1.1.0's 0.4% (+0.0 points), 99.9% confidence",
		  "1.5% (3 of 200) against 0.4% (8 of 1,930)", ANALYSIS_PASS },
		{ "GET /: p50", "at most 100 ms", "p50 9 to 11 ms (6 of 197 above 100 ms)", ANALYSIS_PASS },
		{ "GET /: p50 vs 1.1.0", "at most 1.5x 1.1.0's p50 (+10 ms): 20 ms",
		  "p50 9 to 11 ms (7 of 197 above 20 ms)", ANALYSIS_PASS },
		{ "GET /: p99", "at most 500 ms", "p99 589 to 623 ms (6 of 197 above 500 ms)", ANALYSIS_PASS },
		{ "GET /: p99 vs 1.1.0", "at most 2x 1.1.0's p99 (+10 ms): 20 ms",
		  "p99 589 to 623 ms (7 of 197 above 20 ms)", ANALYSIS_PASS },
	};
	static const struct window w = W(3, { 190, 200, 10 * MS }, { 1, 200, 40 * MS }, { 6, 200, 600 * MS });
	struct metrics_counts cand, base;
	struct analysis_input in = { .scope = "GET /", .baseline_name = "1.1.0", .candidate = &cand,
				     .baseline = &base };
	struct analysis_verdict v;

	(void)state;
	fill(&cand, &w);
	fill(&base, &stable_issue);
	analysis_judge(&rules, &in, &v);
	for (size_t i = 0; i < v.nchecks; i++)
		print_message("  %-28s %-58s %-44s %s\n", v.checks[i].name, v.checks[i].condition, v.checks[i].value,
			      analysis_result_name(v.checks[i].result));
	assert_int_equal(v.nchecks, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < v.nchecks; i++) {
		assert_string_equal(v.checks[i].name, want[i].name);
		assert_string_equal(v.checks[i].condition, want[i].condition);
		assert_string_equal(v.checks[i].value, want[i].value);
		assert_int_equal(v.checks[i].result, want[i].result);
		assert_true(v.checks[i].counted);
	}

	/* a stable version too small: its comparisons are listed, not counted */
	fill(&base, &stable_small);
	analysis_judge(&rules, &in, &v);
	assert_int_equal(v.nchecks, 6);
	assert_string_equal(v.checks[1].value, "not judged: baseline too small (10 of the 20 requests needed)");
	assert_false(v.checks[1].counted);
	assert_false(v.checks[3].counted);
	assert_false(v.checks[5].counted);
	assert_true(v.checks[0].counted && v.checks[2].counted && v.checks[4].counted);

	/* without a baseline: no comparison listed */
	in.baseline = NULL;
	analysis_judge(&rules, &in, &v);
	assert_int_equal(v.nchecks, 3);
}

/* The figures of the candidate and of the baseline; zeros without one. */
static void test_figures(void **state)
{
	static const struct window w = W(2, { 90, 200, 10 * MS }, { 8, 500, 300 * MS }, { 2, 200, 612 * MS });
	static const struct analysis_rules rules = RULES(50, 500, 20);
	struct metrics_counts cand, base;
	struct analysis_input in = { .candidate = &cand };
	struct analysis_verdict v;
	struct analysis_figures zero = { 0 }, empty;
	unsigned b10 = metrics_fine_index(10 * MS), b612 = metrics_fine_index(612 * MS);

	(void)state;
	fill(&cand, &w);
	analysis_judge(&rules, &in, &v);
	/* 9.8 % over 102 is no proof of more than 5 %, nor 2 slow in 100 of a p99 */
	assert_int_equal(v.result, ANALYSIS_PASS);
	assert_int_equal(v.candidate.requests, 102);
	assert_int_equal(v.candidate.errors, 10);
	assert_true(v.candidate.error_rate > 10.0 / 102 - 1e-12 && v.candidate.error_rate < 10.0 / 102 + 1e-12);
	assert_int_equal(v.candidate.responses, 100);
	assert_int_equal(v.candidate.p50_lower_us, metrics_fine_lower_us(b10));
	assert_int_equal(v.candidate.p50_upper_us, metrics_fine_upper_us(b10));
	assert_int_equal(v.candidate.p99_lower_us, metrics_fine_lower_us(b612));
	assert_int_equal(v.candidate.p99_upper_us, metrics_fine_upper_us(b612));
	assert_false(v.has_baseline);
	assert_memory_equal(&v.baseline, &zero, sizeof(zero));

	/* the same counts as the baseline: the same figures */
	base = cand;
	in.baseline = &base;
	analysis_judge(&rules, &in, &v);
	assert_true(v.has_baseline);
	assert_memory_equal(&v.baseline, &v.candidate, sizeof(v.candidate));

	/* nothing counted: all zeros */
	memset(&cand, 0, sizeof(cand));
	memset(&empty, 0x5a, sizeof(empty));
	analysis_measure(&cand, &empty);
	assert_memory_equal(&empty, &zero, sizeof(zero));
}

/* What the engine does: judge only the window since the weights were set.
 * A version that failed before (its counters came along) and is clean
 * since passes; one clean before and failing since fails. */
static void test_window_since_switch(void **state)
{
	static const struct analysis_rules rules = RULES(50, 500, 20);
	struct metrics m;
	struct metrics_upstream *u;
	struct metrics_counts at_switch, win;
	struct analysis_input in = { .candidate = &win };
	struct analysis_verdict v;

	(void)state;
	metrics_init(&m);
	u = metrics_upstream_get(&m, "shop", "127.0.0.1:9001", NULL);
	assert_non_null(u);
	for (unsigned i = 0; i < 100; i++)
		metrics_upstream_observe(u, HTTP_METHOD_GET, 503, 900 * MS);
	u->counts.connect_failures += 7;
	at_switch = u->counts;
	for (unsigned i = 0; i < 40; i++)
		metrics_upstream_observe(u, HTTP_METHOD_GET, 200, 20 * MS);
	metrics_counts_window(&win, &u->counts, &at_switch);
	assert_int_equal(analysis_judge(&rules, &in, &v), ANALYSIS_PASS);
	assert_string_equal(v.reason, "2 checks passed: error rate 0.0% over 40 requests, p50 21 ms or less, "
				      "p99 21 ms or less");
	/* the whole history would fail */
	in.candidate = &u->counts;
	assert_int_equal(analysis_judge(&rules, &in, &v), ANALYSIS_FAIL);

	at_switch = u->counts;
	for (unsigned i = 0; i < 30; i++)
		metrics_upstream_observe(u, HTTP_METHOD_POST, i % 3 ? 200 : 502, 20 * MS);
	metrics_counts_window(&win, &u->counts, &at_switch);
	in.candidate = &win;
	assert_int_equal(analysis_judge(&rules, &in, &v), ANALYSIS_FAIL);
	assert_string_equal(v.reason, "error rate 33.3% over 30 requests, above the 5.0% limit, p < 0.001");
	metrics_release(&m);
}

/*
 * Simulated traffic.
 */

/* splitmix64: a fixed seed gives the same traffic on every run */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* uniform in [0, 1) */
static double rng_unit(uint64_t *s)
{
	return (double)(rng_next(s) >> 11) * 0x1.0p-53;
}

/* a latency around median_us, log-normal with sigma 0.47 (the p99 is about
 * 3x the median, as for a web service), in microseconds */
static uint64_t rng_latency(uint64_t *s, double median_us)
{
	double u1 = rng_unit(s), u2 = rng_unit(s);
	double z = sqrt(-2.0 * log(1.0 - u1)) * cos(2.0 * M_PI * u2);

	return (uint64_t)(median_us * exp(0.47 * z));
}

/* One request of a version with ERROR_RATE and a latency around MEDIAN_US
 * into c. */
static void sim_request(uint64_t *s, struct metrics_counts *c, double error_rate, double median_us)
{
	bool error = rng_unit(s) < error_rate;

	metrics_counts_observe(c, HTTP_METHOD_GET, error ? 503 : 200, rng_latency(s, median_us));
}

/* A canary in a service: the stable version takes STABLE_PER_CANARY
 * requests for each of the canary's. */
struct canary_sim {
	double canary_errors, stable_errors;
	double canary_median_us, stable_median_us;
	unsigned stable_per_canary;
	double tail_share, tail_median_us; /* this share of the canary's requests is this slow instead */
};

/* Has the check named CHECK failed (NULL: the verdict)? */
static bool sim_failed(const struct analysis_verdict *v, const char *check)
{
	if (!check)
		return v->result == ANALYSIS_FAIL;
	for (size_t i = 0; i < v->nchecks; i++)
		if (!strcmp(v->checks[i].name, check))
			return v->checks[i].result == ANALYSIS_FAIL;
	return false;
}

/* Run SIM with SEED, judging the canary by RULES after every STEP of its
 * requests, up to MAX: the number of its requests when CHECK first failed
 * (NULL: the verdict; 0: never failed).  With compare false, no baseline
 * is given. */
static uint64_t sim_run(const struct canary_sim *sim, const struct analysis_rules *rules, bool compare,
			const char *check, uint64_t seed, unsigned step, unsigned max)
{
	static struct metrics_counts cand, base;
	struct analysis_input in = { .baseline_name = "1.1.0", .candidate = &cand, .baseline = compare ? &base : NULL };
	struct analysis_verdict v;
	uint64_t s = seed;

	memset(&cand, 0, sizeof(cand));
	memset(&base, 0, sizeof(base));
	for (unsigned n = 1; n <= max; n++) {
		bool tail = sim->tail_share > 0 && rng_unit(&s) < sim->tail_share;
		sim_request(&s, &cand, sim->canary_errors, tail ? sim->tail_median_us : sim->canary_median_us);
		for (unsigned i = 0; i < sim->stable_per_canary; i++)
			sim_request(&s, &base, sim->stable_errors, sim->stable_median_us);
		if (n % step == 0) {
			analysis_judge(rules, &in, &v);
			if (sim_failed(&v, check))
				return n;
		}
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Of RUNS simulated canaries: how many failed by MAX, and the median and
 * the largest number of requests it took. */
struct sim_summary {
	unsigned failed;
	uint64_t median, p95, largest;
};

static struct sim_summary sim_many(const struct canary_sim *sim, const struct analysis_rules *rules, bool compare,
				   const char *check, unsigned runs, unsigned step, unsigned max, uint64_t seed)
{
	uint64_t *at = calloc(runs, sizeof(*at));
	struct sim_summary sum = { 0 };

	assert_non_null(at);
	for (unsigned r = 0; r < runs; r++) {
		uint64_t n = sim_run(sim, rules, compare, check, seed + r * 7919, step, max);
		if (n)
			at[sum.failed++] = n;
	}
	qsort(at, sum.failed, sizeof(*at), cmp_u64);
	if (sum.failed) {
		sum.median = at[sum.failed / 2];
		sum.p95 = at[sum.failed * 95 / 100];
		sum.largest = at[sum.failed - 1];
	}
	free(at);
	return sum;
}

/* Two errors in thirty never fail: against the issue's stable version, and
 * against the 5 % limit, wherever the two errors fall among the thirty. */
static void test_two_in_thirty(void **state)
{
	struct analysis_rules rules = default_rules();
	struct metrics_counts cand, base;
	struct analysis_input in = { .baseline_name = "1.1.0", .candidate = &cand, .baseline = &base };
	struct analysis_verdict v;

	(void)state;
	fill(&base, &stable_issue);
	for (unsigned a = 0; a < 30; a++)
		for (unsigned b = a + 1; b < 30; b++) {
			/* judged after every request, as the errors come */
			memset(&cand, 0, sizeof(cand));
			for (unsigned i = 0; i < 30; i++) {
				metrics_counts_observe(&cand, HTTP_METHOD_GET, i == a || i == b ? 500 : 200, 10 * MS);
				in.baseline = &base;
				assert_int_not_equal(analysis_judge(&rules, &in, &v), ANALYSIS_FAIL);
				in.baseline = NULL;
				assert_int_not_equal(analysis_judge(&rules, &in, &v), ANALYSIS_FAIL);
			}
			assert_int_equal(v.result, ANALYSIS_PASS);
		}
}

/* A burst: 20 % errors on a canary at 10 % of 1,000 requests/s (100 a
 * second), the stable version at 0.5 %.  The engine judges once a second:
 * the canary must fail by its first 100 requests. */
static void test_burst(void **state)
{
	static const struct canary_sim burst = { 0.20, 0.005, 20 * MS, 20 * MS, 9, 0, 0 };
	struct analysis_rules rules = default_rules();
	struct sim_summary vs = sim_many(&burst, &rules, true, NULL, 200, 1, 1000, 1);
	struct sim_summary alone = sim_many(&burst, &rules, false, NULL, 200, 1, 1000, 1);

	(void)state;
	print_message("  burst, 200 runs judged every request: against the stable version all %u failed, "
		      "median %" PRIu64 " requests, at most %" PRIu64 "; absolute 5%% only: %u failed, median %" PRIu64
		      ", at most %" PRIu64 "\n", vs.failed, vs.median, vs.largest, alone.failed, alone.median,
		      alone.largest);
	assert_int_equal(vs.failed, 200);
	assert_true(vs.largest <= 100);
	assert_int_equal(alone.failed, 200);
	assert_true(alone.median <= 100 && alone.largest <= 200);
}

/* Issue 10's release: it fails one checkout in four and nothing else;
 * checkouts are 6 % of its traffic, so its service-wide error rate is
 * 1.5 %, under the 5 % limit.  The stable version fails nothing and takes
 * 9 requests for each of the canary's.  With the default checks, the
 * checkout class fails its absolute limit (5 %) and the service fails its
 * comparison; the service's absolute limit never fails. */
static void test_route_class(void **state)
{
	enum { RUNS = 200, STEP = 10, MAX = 5000 };
	struct analysis_rules rules = default_rules();
	static struct metrics_counts cand, base, cand_class, base_class;
	/* canary requests when the class's verdict, its absolute limit, the service's verdict failed */
	uint64_t at[3][RUNS];
	unsigned service_absolute = 0;

	(void)state;
	for (unsigned r = 0; r < RUNS; r++) {
		uint64_t s = 1000 + r * 7919, *class_at = &at[0][r], *limit_at = &at[1][r], *service_at = &at[2][r];
		struct analysis_input service = { .baseline_name = "1.1.0", .candidate = &cand, .baseline = &base };
		struct analysis_input class = { .scope = "POST /api/checkout", .baseline_name = "1.1.0",
						.candidate = &cand_class, .baseline = &base_class };
		struct analysis_verdict v;

		memset(&cand, 0, sizeof(cand));
		memset(&base, 0, sizeof(base));
		memset(&cand_class, 0, sizeof(cand_class));
		memset(&base_class, 0, sizeof(base_class));
		*class_at = *limit_at = *service_at = 0;
		for (unsigned n = 1; n <= MAX && (!*limit_at || !*service_at); n++) {
			bool checkout = rng_unit(&s) < 0.06;
			int status = checkout && rng_unit(&s) < 0.25 ? 500 : 200;
			metrics_counts_observe(&cand, HTTP_METHOD_POST, status, 20 * MS);
			if (checkout)
				metrics_counts_observe(&cand_class, HTTP_METHOD_POST, status, 20 * MS);
			for (unsigned i = 0; i < 9; i++) {
				metrics_counts_observe(&base, HTTP_METHOD_POST, 200, 20 * MS);
				if (rng_unit(&s) < 0.06)
					metrics_counts_observe(&base_class, HTTP_METHOD_POST, 200, 20 * MS);
			}
			if (n % STEP)
				continue;
			if (analysis_judge(&rules, &class, &v) == ANALYSIS_FAIL) {
				assert_memory_equal(v.reason, "POST /api/checkout: error rate ", 31);
				*class_at = *class_at ? *class_at : n;
				assert_string_equal(v.checks[0].name, "POST /api/checkout: error rate");
				if (!*limit_at && v.checks[0].result == ANALYSIS_FAIL)
					*limit_at = n;
			}
			if (!*service_at && analysis_judge(&rules, &service, &v) == ANALYSIS_FAIL) {
				*service_at = n;
				assert_string_equal(v.checks[0].name, "error rate");
				service_absolute += v.checks[0].result == ANALYSIS_FAIL;
				assert_int_equal(v.checks[1].result, ANALYSIS_FAIL);
			}
		}
		if (!*limit_at || !*service_at)
			fail_msg("run %u: not caught by %u requests (class at %" PRIu64 ", service at %" PRIu64 ")", r,
				 MAX, *limit_at, *service_at);
	}
	for (unsigned i = 0; i < 3; i++)
		qsort(at[i], RUNS, sizeof(at[i][0]), cmp_u64);
	print_message("  one checkout in four, 200 runs judged every 10 requests, canary requests until a failure, "
		      "median (95th percentile, largest):\n");
	for (unsigned i = 0; i < 3; i++) {
		static const char *const what[] = { "the class's verdict", "the class's 5% limit",
						    "the service's comparison" };
		print_message("    %-34s %5" PRIu64 " (%" PRIu64 ", %" PRIu64 ")\n", what[i], at[i][RUNS / 2],
			      at[i][RUNS * 95 / 100], at[i][RUNS - 1]);
	}
	assert_int_equal(service_absolute, 0);
	for (unsigned i = 0; i < 3; i++)
		assert_true(at[i][RUNS / 2] <= 1000 && at[i][RUNS - 1] <= 2500);
}

/* Latency 3x the stable version's: the whole distribution (the p50 and
 * the p99 comparisons both catch it), or only a slow tail, 5 % of the
 * requests around 3x the stable p99 (only the p99 comparison can). */
static void test_latency(void **state)
{
	/* stable: median 20 ms, p99 about 60 ms */
	static const struct canary_sim slower = { 0.0, 0.0, 60 * MS, 20 * MS, 9, 0, 0 };
	static const struct canary_sim tail = { 0.0, 0.0, 20 * MS, 20 * MS, 9, 0.05, 180 * MS };
	struct analysis_rules rules = default_rules();
	struct sim_summary all = sim_many(&slower, &rules, true, NULL, 200, 1, 2000, 7);
	struct sim_summary p99 = sim_many(&slower, &rules, true, "p99 vs 1.1.0", 200, 1, 2000, 7);
	struct sim_summary tail99 = sim_many(&tail, &rules, true, "p99 vs 1.1.0", 200, 1, 2000, 7);

	(void)state;
	print_message("  3x slower, 200 runs judged every response: the verdict failed after a median of %" PRIu64
		      " (95th percentile %" PRIu64 ", at most %" PRIu64 "), the p99 comparison after %" PRIu64
		      " (%" PRIu64 ", %" PRIu64 "); a 3x tail on 5%%: %u of 200 failed the p99 comparison, after %"
		      PRIu64 " (%" PRIu64 ", %" PRIu64 ")\n", all.median, all.p95, all.largest, p99.median, p99.p95,
		      p99.largest, tail99.failed, tail99.median, tail99.p95, tail99.largest);
	assert_int_equal(all.failed, 200);
	assert_true(all.median <= 100 && all.p95 <= 200);
	assert_int_equal(p99.failed, 200);
	assert_true(p99.median <= 300 && p99.p95 <= 600);
	assert_int_equal(tail99.failed, 200);
	assert_true(tail99.median <= 500);
}

/* False alarms: 1,000 canaries of a good version, both versions failing
 * 0.5 % of their requests with the same latencies, the stable one taking 9x
 * the traffic, judged with the defaults after every 10 canary requests up
 * to 2,000.  Each look is a chance to fail it wrongly: the sequential tests
 * keep the share of canaries ever failed under 1 - confidence (1 %). */
static void test_false_alarms(void **state)
{
	static const struct canary_sim good = { 0.005, 0.005, 20 * MS, 20 * MS, 9, 0, 0 };
	struct analysis_rules rules = default_rules();
	struct sim_summary sum = sim_many(&good, &rules, true, NULL, 1000, 10, 2000, 42);

	(void)state;
	print_message("  good canaries, 1000 runs judged every 10 requests up to 2000: %u failed\n", sum.failed);
	assert_true(sum.failed < 10);
}

/* The same traffic as sim_run (without a baseline nor a tail) judged by a
 * fixed-sample test looked at after every request from MIN on: the
 * one-sided score test of "the rate is at most P0" at Z.  How many of RUNS
 * it fails by MAX. */
static unsigned naive_failures(double rate, double p0, double z, unsigned runs, unsigned min, unsigned max,
			       uint64_t seed)
{
	unsigned failed = 0;

	for (unsigned r = 0; r < runs; r++) {
		uint64_t s = seed + r * 7919, k = 0;
		for (unsigned n = 1; n <= max; n++) {
			k += rng_unit(&s) < rate;
			(void)rng_latency(&s, 20 * MS); /* the draws sim_request makes */
			if (n >= min && (double)k - n * p0 > z * sqrt(n * p0 * (1 - p0))) {
				failed++;
				break;
			}
		}
	}
	return failed;
}

/* The worst case for the sequential test: a version whose error rate is
 * exactly the limit, 5 %, judged after every request up to 1,000, by the
 * absolute check alone.  Ville's inequality bounds the share ever failed by
 * 1 - confidence.  A fixed-sample test looked at as often fails far more of
 * the same versions: that is why the analysis does not use one. */
static void test_false_alarms_at_the_limit(void **state)
{
	static const struct canary_sim at_limit = { 0.05, 0.0, 20 * MS, 20 * MS, 0, 0, 0 };
	struct analysis_rules rules = default_rules();
	struct sim_summary at99, at90;
	unsigned naive99 = naive_failures(0.05, 0.05, 2.3263479, 1000, rules.min_requests, 1000, 2024);
	unsigned naive90 = naive_failures(0.05, 0.05, 1.2815516, 1000, rules.min_requests, 1000, 2024);

	(void)state;
	at99 = sim_many(&at_limit, &rules, false, NULL, 1000, 1, 1000, 2024);
	rules.confidence_bp = 9000;
	at90 = sim_many(&at_limit, &rules, false, NULL, 1000, 1, 1000, 2024);
	print_message("  at the 5%% limit, 1000 runs judged every request up to 1000: %u failed at 99%% confidence "
		      "(a fixed-sample test: %u), %u at 90%% (%u)\n", at99.failed, naive99, at90.failed, naive90);
	assert_true(at99.failed < 10);
	assert_true(at90.failed < 100);
	assert_true(naive99 > 3 * at99.failed && naive90 > 3 * at90.failed);
}

/* Power: a canary failing 2 % against a stable version failing 0.5 % is
 * caught, and 1 % against 0.5 % sometimes. */
static void test_power(void **state)
{
	static const struct canary_sim twice = { 0.02, 0.005, 20 * MS, 20 * MS, 9, 0, 0 };
	static const struct canary_sim double_rate = { 0.01, 0.005, 20 * MS, 20 * MS, 9, 0, 0 };
	struct analysis_rules rules = default_rules();
	struct sim_summary four = sim_many(&twice, &rules, true, NULL, 200, 10, 5000, 99);
	struct sim_summary two = sim_many(&double_rate, &rules, true, NULL, 200, 10, 5000, 99);

	(void)state;
	print_message("  2%% against 0.5%%, 200 runs judged every 10 requests up to 5000: %u caught, median %" PRIu64
		      ", at most %" PRIu64 "; 1%% against 0.5%%: %u caught, median %" PRIu64 "\n", four.failed,
		      four.median, four.largest, two.failed, two.median);
	assert_true(four.failed >= 190);
	assert_true(four.median <= 1500);
}

static void test_result_names(void **state)
{
	(void)state;
	assert_string_equal(analysis_result_name(ANALYSIS_PASS), "pass");
	assert_string_equal(analysis_result_name(ANALYSIS_FAIL), "fail");
	assert_string_equal(analysis_result_name(ANALYSIS_INCONCLUSIVE), "inconclusive");
	assert_string_equal(analysis_result_name((enum analysis_result)42), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_statistics),
		cmocka_unit_test(test_quantile_upper),
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_checks),
		cmocka_unit_test(test_figures),
		cmocka_unit_test(test_window_since_switch),
		cmocka_unit_test(test_two_in_thirty),
		cmocka_unit_test(test_burst),
		cmocka_unit_test(test_route_class),
		cmocka_unit_test(test_latency),
		cmocka_unit_test(test_false_alarms),
		cmocka_unit_test(test_false_alarms_at_the_limit),
		cmocka_unit_test(test_power),
		cmocka_unit_test(test_result_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

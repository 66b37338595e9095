/* test_analysis.c - unit tests of the deploy analysis (src/deploy/analysis.c).
 *
 * One table of cases, each a window of counts described as groups of
 * requests (how many, which status, how long) plus failed connects, with the
 * rules, the expected result and the exact sentence.  Every case is judged
 * three times, without a baseline and against a good and a bad one: today's
 * rules ignore the baseline, so the verdict must not move.  Then the
 * figures, a window taken across a switch, and the result names.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "deploy/analysis.h"
#include "metrics/metrics.h"

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

#define MS 1000u
/* a window: CF failed connects, then up to three groups */
#define W(cf, ...) { .connect_failures = (cf), .g = { __VA_ARGS__ } }
#define RULES(permille, p99_ms, min) { .max_error_rate_permille = (permille), .max_p99_ms = (p99_ms), \
				       .min_requests = (min) }

static const struct {
	const char *name;
	struct analysis_rules rules;
	struct window w;
	enum analysis_result result;
	const char *reason;
} cases[] = {
	{ "pass", RULES(50, 0, 20), W(0, { 50, 200, 10 * MS }),
	  ANALYSIS_PASS, "error rate 0.0% (0 of 50 requests) within 5.0%" },
	{ "pass, p99 within its limit", RULES(50, 500, 20), W(0, { 50, 200, 10 * MS }),
	  ANALYSIS_PASS, "error rate 0.0% (0 of 50 requests) within 5.0%; "
			 "p99 latency 11 ms or less, within the 500 ms limit" },
	{ "fail by error rate", RULES(50, 0, 20), W(0, { 44, 200, 10 * MS }, { 6, 500, 10 * MS }),
	  ANALYSIS_FAIL, "error rate 12.0% (6 of 50 requests) above 5.0%" },
	{ "error rate at the limit passes", RULES(50, 0, 20), W(0, { 57, 200, 10 * MS }, { 3, 503, 10 * MS }),
	  ANALYSIS_PASS, "error rate 5.0% (3 of 60 requests) within 5.0%" },
	{ "one error more fails", RULES(50, 0, 20), W(0, { 56, 200, 10 * MS }, { 4, 503, 10 * MS }),
	  ANALYSIS_FAIL, "error rate 6.7% (4 of 60 requests) above 5.0%" },
	{ "4xx are not errors", RULES(50, 0, 20), W(0, { 50, 404, 10 * MS }),
	  ANALYSIS_PASS, "error rate 0.0% (0 of 50 requests) within 5.0%" },
	{ "max error rate 0: any error fails", RULES(0, 0, 20), W(0, { 49, 200, 10 * MS }, { 1, 500, 10 * MS }),
	  ANALYSIS_FAIL, "error rate 2.0% (1 of 50 requests) above 0.0%" },
	{ "max error rate 100%: never fails", RULES(1000, 0, 20), W(0, { 50, 599, 10 * MS }),
	  ANALYSIS_PASS, "error rate 100.0% (50 of 50 requests) within 100.0%" },
	{ "fail by p99", RULES(50, 500, 20), W(0, { 98, 200, 10 * MS }, { 2, 200, 612 * MS }),
	  ANALYSIS_FAIL, "p99 latency 590 ms or more, above the 500 ms limit (100 requests)" },
	{ "one slow request in 100 is not the p99", RULES(50, 500, 20),
	  W(0, { 99, 200, 10 * MS }, { 1, 200, 612 * MS }),
	  ANALYSIS_PASS, "error rate 0.0% (0 of 100 requests) within 5.0%; "
			 "p99 latency 11 ms or less, within the 500 ms limit" },
	{ "p99 bucket straddling the limit does not fail", RULES(50, 500, 20),
	  W(0, { 98, 200, 10 * MS }, { 2, 200, 505 * MS }),
	  ANALYSIS_PASS,
	  "error rate 0.0% (0 of 100 requests) within 5.0%; "
	  "p99 latency 491 to 508 ms, not wholly above the 500 ms limit" },
	{ "p99 bucket wholly above the limit fails", RULES(50, 500, 20),
	  W(0, { 98, 200, 10 * MS }, { 2, 200, 510 * MS }),
	  ANALYSIS_FAIL, "p99 latency 508 ms or more, above the 500 ms limit (100 requests)" },
	{ "max_p99 off", RULES(50, 0, 20), W(0, { 100, 200, 2000 * MS }),
	  ANALYSIS_PASS, "error rate 0.0% (0 of 100 requests) within 5.0%" },
	{ "below min_requests: inconclusive, even all failing", RULES(50, 500, 20), W(0, { 12, 500, 900 * MS }),
	  ANALYSIS_INCONCLUSIVE, "too few requests to judge: 12 of the 20 needed" },
	{ "exactly min_requests is judged", RULES(50, 0, 20), W(0, { 18, 200, 10 * MS }, { 2, 500, 10 * MS }),
	  ANALYSIS_FAIL, "error rate 10.0% (2 of 20 requests) above 5.0%" },
	{ "zero requests", RULES(50, 500, 20), W(0, { 0 }),
	  ANALYSIS_INCONCLUSIVE, "too few requests to judge: 0 of the 20 needed" },
	{ "zero requests, min_requests 0", RULES(50, 500, 0), W(0, { 0 }),
	  ANALYSIS_INCONCLUSIVE, "too few requests to judge: 0 of the 1 needed" },
	{ "min_requests 0 judges from the first request", RULES(50, 0, 0), W(0, { 1, 500, 10 * MS }),
	  ANALYSIS_FAIL, "error rate 100.0% (1 of 1 requests) above 5.0%" },
	{ "connect failures are errors", RULES(50, 0, 20), W(5, { 45, 200, 10 * MS }),
	  ANALYSIS_FAIL, "error rate 10.0% (5 of 50 requests) above 5.0%" },
	{ "connect failures count toward min_requests", RULES(500, 0, 20), W(5, { 15, 200, 10 * MS }),
	  ANALYSIS_PASS, "error rate 25.0% (5 of 20 requests) within 50.0%" },
	{ "only connect failures", RULES(50, 500, 20), W(30, { 0 }),
	  ANALYSIS_FAIL, "error rate 100.0% (30 of 30 requests) above 5.0%" },
	{ "connect failures have no latency: p99 not judged yet", RULES(500, 500, 25),
	  W(10, { 20, 200, 900 * MS }),
	  ANALYSIS_INCONCLUSIVE, "too few responses to judge the p99: 20 of the 25 needed" },
	{ "both broken: the error rate is named", RULES(50, 500, 20),
	  W(0, { 40, 200, 900 * MS }, { 10, 500, 900 * MS }),
	  ANALYSIS_FAIL, "error rate 20.0% (10 of 50 requests) above 5.0%" },
	{ "a huge p99 limit does not overflow", RULES(50, UINT64_MAX, 20), W(0, { 50, 200, 2000 * MS }),
	  ANALYSIS_PASS,
	  "error rate 0.0% (0 of 50 requests) within 5.0%; "
	  "p99 latency 2032 ms or less, within the 18446744073709551615 ms limit" },
	{ "sub-millisecond p99, rounded up", RULES(50, 1, 20), W(0, { 50, 200, 300 }),
	  ANALYSIS_PASS, "error rate 0.0% (0 of 50 requests) within 5.0%; "
			 "p99 latency 1 ms or less, within the 1 ms limit" },
};

/* baselines the candidate is judged against: none, a good one, a bad one */
static const struct window baseline_good = W(0, { 1000, 200, 1 * MS });
static const struct window baseline_bad = W(40, { 50, 500, 2000 * MS }, { 50, 200, 3000 * MS });

static void test_cases(void **state)
{
	const struct window *baselines[] = { NULL, &baseline_good, &baseline_bad };

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct metrics_counts cand, base;
		fill(&cand, &cases[i].w);
		for (size_t b = 0; b < sizeof(baselines) / sizeof(baselines[0]); b++) {
			struct analysis_verdict v;
			enum analysis_result r;
			memset(&v, 0x5a, sizeof(v)); /* every field must be set */
			if (baselines[b])
				fill(&base, baselines[b]);
			r = analysis_judge(&cases[i].rules, &cand, baselines[b] ? &base : NULL, &v);
			if (r != v.result)
				fail_msg("%s: returned %d, verdict says %d", cases[i].name, r, v.result);
			if (r != cases[i].result || strcmp(v.reason, cases[i].reason) != 0)
				fail_msg("%s (baseline %zu):\n  got      %s: \"%s\"\n  expected %s: \"%s\"",
					 cases[i].name, b, analysis_result_name(r), v.reason,
					 analysis_result_name(cases[i].result), cases[i].reason);
			assert_int_equal(v.has_baseline, baselines[b] != NULL);
		}
	}
}

/* The figures of the candidate and of the baseline; zeros without one. */
static void test_figures(void **state)
{
	static const struct window w = W(2, { 90, 200, 10 * MS }, { 8, 500, 300 * MS }, { 2, 200, 612 * MS });
	static const struct analysis_rules rules = RULES(50, 500, 20);
	struct metrics_counts cand, base;
	struct analysis_verdict v;
	struct analysis_figures zero = { 0 }, empty;
	unsigned b10 = metrics_fine_index(10 * MS), b612 = metrics_fine_index(612 * MS);

	(void)state;
	fill(&cand, &w);
	analysis_judge(&rules, &cand, NULL, &v);
	assert_int_equal(v.result, ANALYSIS_FAIL);
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
	analysis_judge(&rules, &cand, &base, &v);
	assert_true(v.has_baseline);
	assert_memory_equal(&v.baseline, &v.candidate, sizeof(v.candidate));

	/* nothing counted: all zeros */
	memset(&cand, 0, sizeof(cand));
	memset(&empty, 0x5a, sizeof(empty));
	analysis_measure(&cand, &empty);
	assert_memory_equal(&empty, &zero, sizeof(zero));
}

/* What the watch does: judge only the window since the switch.  A version
 * that failed before the switch (its counters came along) and is clean
 * since passes; one clean before and failing since fails. */
static void test_window_since_switch(void **state)
{
	static const struct analysis_rules rules = RULES(50, 500, 20);
	struct metrics m;
	struct metrics_upstream *u;
	struct metrics_counts at_switch, win;
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
	assert_int_equal(analysis_judge(&rules, &win, NULL, &v), ANALYSIS_PASS);
	assert_string_equal(v.reason,
			    "error rate 0.0% (0 of 40 requests) within 5.0%; "
			    "p99 latency 21 ms or less, within the 500 ms limit");
	/* the whole history would fail */
	assert_int_equal(analysis_judge(&rules, &u->counts, NULL, &v), ANALYSIS_FAIL);

	at_switch = u->counts;
	for (unsigned i = 0; i < 30; i++)
		metrics_upstream_observe(u, HTTP_METHOD_POST, i % 3 ? 200 : 502, 20 * MS);
	metrics_counts_window(&win, &u->counts, &at_switch);
	assert_int_equal(analysis_judge(&rules, &win, NULL, &v), ANALYSIS_FAIL);
	assert_string_equal(v.reason, "error rate 33.3% (10 of 30 requests) above 5.0%");
	metrics_release(&m);
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
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_figures),
		cmocka_unit_test(test_window_since_switch),
		cmocka_unit_test(test_result_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* analysis.c - the deploy analysis: pass, fail or inconclusive, from windows
 * of counters.
 *
 * The watch after a switch (and, later, each step of a plan) hands this file
 * the new version's counts since the switch and, when there is one, the
 * baseline's over the same time, with the rules from the configuration.  It
 * answers with a verdict and a sentence a person can read; it does nothing
 * else (no I/O, no loop, no logging), so that every rule is tested with
 * tables of cases in tests/unit/test_analysis.c.  The rules are the ones the
 * watch applied inline before this file existed, and its rollback reasons
 * keep their wording.  Design notes: docs/internals/analysis.md.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "deploy/analysis.h"
#include "metrics/metrics.h"

void analysis_measure(const struct metrics_counts *c, struct analysis_figures *out)
{
	struct analysis_figures f = { 0 };
	uint64_t answered, errors_5xx;

	metrics_counts_totals(c, &answered, &errors_5xx);
	f.requests = answered + c->connect_failures;
	f.errors = errors_5xx + c->connect_failures;
	f.error_rate = f.requests ? (double)f.errors / (double)f.requests : 0.0;
	f.responses = metrics_counts_responses(c);
	/* without responses both fail with -ENODATA and leave the zeros */
	(void)metrics_counts_quantile(c, 500, &f.p50_lower_us, &f.p50_upper_us);
	(void)metrics_counts_quantile(c, 990, &f.p99_lower_us, &f.p99_upper_us);
	*out = f;
}

/* The limit in microseconds, saturated rather than wrapped. */
static uint64_t limit_us(uint64_t ms)
{
	return ms > UINT64_MAX / 1000 ? UINT64_MAX : ms * 1000;
}

/* Microseconds as whole milliseconds, rounded down or up (a bound stays a
 * bound once printed). */
static unsigned long long ms_floor(uint64_t us)
{
	return (unsigned long long)(us / 1000);
}

static unsigned long long ms_ceil(uint64_t us)
{
	return (unsigned long long)(us / 1000 + (us % 1000 != 0));
}

/* The sentence of a pass: the error rate, and where the p99 stands against
 * its limit when there is one. */
static void pass_reason(struct analysis_verdict *v, const struct analysis_rules *rules)
{
	const struct analysis_figures *f = &v->candidate;
	int n = snprintf(v->reason, sizeof(v->reason), "error rate %.1f%% (%llu of %llu requests) within %.1f%%",
			 100.0 * f->error_rate, (unsigned long long)f->errors, (unsigned long long)f->requests,
			 rules->max_error_rate_permille / 10.0);
	size_t used = n < 0 ? 0 : (size_t)n < sizeof(v->reason) ? (size_t)n : sizeof(v->reason) - 1;

	if (!rules->max_p99_ms)
		return;
	if (f->p99_upper_us <= limit_us(rules->max_p99_ms))
		snprintf(v->reason + used, sizeof(v->reason) - used,
			 "; p99 latency %llu ms or less, within the %llu ms limit",
			 ms_ceil(f->p99_upper_us), (unsigned long long)rules->max_p99_ms);
	else
		snprintf(v->reason + used, sizeof(v->reason) - used,
			 "; p99 latency %llu to %llu ms, not wholly above the %llu ms limit", ms_floor(f->p99_lower_us),
			 ms_ceil(f->p99_upper_us), (unsigned long long)rules->max_p99_ms);
}

enum analysis_result analysis_judge(const struct analysis_rules *rules, const struct metrics_counts *candidate,
				    const struct metrics_counts *baseline, struct analysis_verdict *out)
{
	struct analysis_verdict v = { .result = ANALYSIS_PASS };
	const struct analysis_figures *f = &v.candidate;
	uint64_t need;
	bool judge_p99;

	assert(rules && candidate && out);
	/* no rule is judged on nothing, even with min_requests 0 */
	need = rules->min_requests ? rules->min_requests : 1;
	judge_p99 = rules->max_p99_ms != 0;
	analysis_measure(candidate, &v.candidate);
	if (baseline) {
		analysis_measure(baseline, &v.baseline);
		v.has_baseline = true;
	}

	if (f->requests >= need && f->errors * 1000 > (uint64_t)rules->max_error_rate_permille * f->requests) {
		v.result = ANALYSIS_FAIL;
		snprintf(v.reason, sizeof(v.reason), "error rate %.1f%% (%llu of %llu requests) above %.1f%%",
			 100.0 * f->error_rate, (unsigned long long)f->errors, (unsigned long long)f->requests,
			 rules->max_error_rate_permille / 10.0);
	} else if (judge_p99 && f->responses >= need && f->p99_lower_us > limit_us(rules->max_p99_ms)) {
		/* the p99 is at least its bucket's lower bound: certainly over */
		v.result = ANALYSIS_FAIL;
		snprintf(v.reason, sizeof(v.reason),
			 "p99 latency %.0f ms or more, above the %llu ms limit (%llu requests)",
			 (double)f->p99_lower_us / 1000.0, (unsigned long long)rules->max_p99_ms,
			 (unsigned long long)f->responses);
	} else if (f->requests < need) {
		v.result = ANALYSIS_INCONCLUSIVE;
		snprintf(v.reason, sizeof(v.reason), "too few requests to judge: %llu of the %llu needed",
			 (unsigned long long)f->requests, (unsigned long long)need);
	} else if (judge_p99 && f->responses < need) {
		/* enough requests, but failed connects have no latency */
		v.result = ANALYSIS_INCONCLUSIVE;
		snprintf(v.reason, sizeof(v.reason), "too few responses to judge the p99: %llu of the %llu needed",
			 (unsigned long long)f->responses, (unsigned long long)need);
	} else {
		pass_reason(&v, rules);
	}
	*out = v;
	return v.result;
}

const char *analysis_result_name(enum analysis_result result)
{
	switch (result) {
	case ANALYSIS_PASS: return "pass";
	case ANALYSIS_FAIL: return "fail";
	case ANALYSIS_INCONCLUSIVE: return "inconclusive";
	}
	return "?";
}

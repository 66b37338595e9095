/* analysis.h - judge a new version from windows of its counters, against
 * absolute limits and against the stable version.
 *
 * Pure functions: no I/O, no loop, no logging, no allocation.  The caller
 * takes the windows (metrics_counts_window of the counts since the weights
 * were set), calls analysis_judge on every tick, once for the service and
 * once per route class, and acts on the verdict.  The tests are sequential
 * (always valid): judging on every tick does not raise the false-failure
 * rate above 1 - confidence.  Method: docs/internals/analysis.md.
 */
#pragma once
#include "deploy/analysis-t.h"

/* Measure the figures of one window C into *out (every field set). */
void analysis_measure(const struct metrics_counts *c, struct analysis_figures *out);

/* Judge IN->candidate by RULES, against IN->baseline when it is not NULL.
 * Each check asks "k bad events among n: is their rate above p0?" and
 * fails when k/n > p0 and the mixture SPRT's Lambda >= 1 / (1 - confidence).
 * They are listed in this order, each when it is on:
 *   - error rate: k = 5xx + failed connects, n = requests,
 *     p0 = max_error_rate (always listed; 1000 permille never fails);
 *   - error rate vs the baseline (with a baseline): p0 = the upper bound of
 *     the baseline's rate (Wilson, one-sided, at the same confidence) +
 *     max_error_rate_increase; listed only, counting neither way, while the
 *     baseline has < min_requests requests;
 *   - p50 (when max_p50_ms > 0): k = responses wholly above the limit,
 *     p0 = 0.5; p50 vs the baseline (when max_p50_ratio_percent > 0 and
 *     there is a baseline): the same above the larger of ratio x and
 *     + latency_margin the baseline's p50, taken as its upper confidence
 *     bound (analysis_quantile_upper); listed only while the baseline has
 *     too few responses to bound it (< min_requests, or < 536 for a p99
 *     at 99 %);
 *   - p99, p99 vs the baseline: the same with p0 = 0.01.
 * An error check is inconclusive while the candidate has < min_requests
 * requests, a latency check while it has < min_requests responses.  The
 * result: fail when a check fails, else inconclusive when a counted check
 * is, else pass.  The reason of a failure names the error rate before the
 * p50 before the p99, and for each the comparison before the limit.
 * Sets every field of *out and returns out->result.  Nothing is kept. */
enum analysis_result analysis_judge(const struct analysis_rules *rules, const struct analysis_input *in,
				    struct analysis_verdict *out);

/* The statistics behind the checks, for the tests and the benchmarks. */
/* log Lambda of the mixture SPRT of "K of N events, at a rate at most P0"
 * with a uniform prior on the rate: log(B(K+1, N-K+1) / (P0^K (1-P0)^(N-K))).
 * +inf when the data rule P0 out (P0 = 0 with K > 0, P0 = 1 with K < N).
 * K <= N; P0 in [0, 1]. */
double analysis_log_lambda(uint64_t k, uint64_t n, double p0);
/* The one-sided upper bound of Wilson's score interval of the rate K / N
 * at CONFIDENCE_BP (9900 = 99 %; read within 5000..9999): 1 when N is 0. */
double analysis_wilson_upper(uint64_t k, uint64_t n, uint32_t confidence_bp);

/* An upper bound of C's PERMILLE quantile (1..999) at CONFIDENCE_BP, from
 * its fine histogram: the upper bound of the first bucket where Wilson's
 * lower bound of the share of responses at or below it reaches the
 * quantile.  Returns 0 and sets *upper_us; -ENODATA when C has too few
 * responses to bound it (fewer than z^2 q / (1 - q): 536 for the p99 at
 * 99 %), -EINVAL for a PERMILLE out of range; *upper_us untouched then. */
int analysis_quantile_upper(const struct metrics_counts *c, unsigned permille, uint32_t confidence_bp,
			    uint64_t *upper_us);

/* "pass", "fail", "inconclusive" ("?" for a value out of range). */
const char *analysis_result_name(enum analysis_result result);

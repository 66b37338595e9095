/* analysis.h - judge a new version from windows of its counters.
 *
 * Pure functions: no I/O, no loop, no logging, no allocation.  The caller
 * takes the windows (metrics_counts_window of the counts since the switch),
 * calls analysis_judge on each tick and acts on the verdict.
 */
#pragma once
#include "deploy/analysis-t.h"

/* Measure the figures of one window C into *out (every field set). */
void analysis_measure(const struct metrics_counts *c, struct analysis_figures *out);

/* Judge CANDIDATE, the new version's window, by RULES.  BASELINE is the
 * version it replaces over the same time, or NULL; today's rules do not
 * compare against it (its figures are measured into the verdict for the
 * caller to show).  The rules, in order:
 *   - error rate: with at least max(min_requests, 1) requests, fail when
 *     errors * 1000 > max_error_rate_permille * requests;
 *   - p99 (when max_p99_ms > 0): with at least max(min_requests, 1)
 *     responses, fail when the p99's fine bucket lies wholly above
 *     max_p99_ms (a bucket straddling the limit does not fail);
 *   - inconclusive when a rule could not be judged yet, pass otherwise.
 * Sets every field of *out and returns out->result.  Nothing is kept. */
enum analysis_result analysis_judge(const struct analysis_rules *rules, const struct metrics_counts *candidate,
				    const struct metrics_counts *baseline, struct analysis_verdict *out);

/* "pass", "fail", "inconclusive" ("?" for a value out of range). */
const char *analysis_result_name(enum analysis_result result);

/* analysis-t.h - types of the deploy analysis: the rules a new version is
 * held to, what it is judged on (its window, and the stable version's),
 * the figures measured on a window, each check and the verdict.
 *
 * See analysis.h for the functions and docs/internals/analysis.md for the
 * method (sequential tests, why they may be looked at every second).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "metrics/metrics-t.h"

enum analysis_result {
	ANALYSIS_PASS,                  /* every check judged, none failed */
	ANALYSIS_FAIL,                  /* a check failed at the confidence asked: the reason says which */
	ANALYSIS_INCONCLUSIVE,          /* too few requests to judge a check yet, none failed */
};

/* What a version is held to (services.NAME.deploy).  Every statistical
 * test is one-sided at confidence_bp: a check fails only when the data
 * show the rule broken with that confidence, however often it is judged. */
struct analysis_rules {
	uint32_t max_error_rate_permille;          /* absolute limit on (5xx + failed connects) / requests;
						    * 1000: never */
	uint32_t max_error_rate_increase_permille; /* comparison: margin above the baseline's rate */
	uint64_t max_p50_ms, max_p99_ms;           /* absolute limits; 0: off */
	uint32_t max_p50_ratio_percent, max_p99_ratio_percent; /* comparison with the baseline; 0: off (200 = 2x) */
	uint64_t latency_margin_ms;                /* a latency within this of the baseline's never fails a ratio */
	uint32_t min_requests;                     /* minimum sample (0 is read as 1) */
	uint32_t confidence_bp;                    /* 9900 = 99 %: of every statistical test (0 is read as 9900) */
};

/* What is judged: the new version's window and, to compare with, the
 * stable version's.  Nothing is kept after analysis_judge returns. */
struct analysis_input {
	const char *scope;          /* NULL: the whole service; else a route class ("POST /api/checkout"),
				     * which prefixes the reason and the check names */
	const char *baseline_name;  /* the stable version ("1.1.0") for the sentences; NULL: "the stable version" */
	const struct metrics_counts *candidate;  /* the new version's window */
	const struct metrics_counts *baseline;   /* the stable version over the same window (canary), or the
						  * previous version's window just before the switch
						  * (blue-green); NULL: no comparison */
};

/* What a window of counts shows.  A failed connect is a request that
 * failed: it is in requests and in errors, not in responses. */
struct analysis_figures {
	uint64_t requests;              /* answered (any status) + failed connects */
	uint64_t errors;                /* 5xx + failed connects */
	double error_rate;              /* errors / requests, 0..1; 0 without requests */
	uint64_t responses;             /* answered: latencies in the fine histogram */
	uint64_t p50_lower_us, p50_upper_us; /* the bucket holding the median (inclusive); 0 without responses */
	uint64_t p99_lower_us, p99_upper_us; /* the bucket holding the p99 */
};

#define ANALYSIS_REASON_MAX 256
#define ANALYSIS_CHECKS_MAX 6

/* One check, for `cutover status` and the event stream.  Listed in this
 * order, each only when it is on: error rate, error rate vs the baseline,
 * p50, p50 vs the baseline, p99, p99 vs the baseline. */
struct analysis_check {
	char name[64];          /* "error rate", "error rate vs 1.1.0", "p99 vs 1.1.0", prefixed by the scope */
	char condition[128];    /* "at most 5.0%", "not above 1.1.0's 0.4% (+0.0 points), 99% confidence", ... */
	char value[128];        /* "1.5% (3 of 200)", "p99 38 to 40 ms (0 of 200 above 500 ms)", ... */
	enum analysis_result result;
	bool counted;           /* false: listed only ("not judged: baseline too small"), counts neither way */
	double p_value;         /* of its test when it failed: min(1, 1/Lambda); 1 otherwise */
};

struct analysis_verdict {
	enum analysis_result result;
	char reason[ANALYSIS_REASON_MAX];  /* one sentence with the figures, for a person; never empty */
	struct analysis_figures candidate; /* the new version's window */
	struct analysis_figures baseline;  /* the baseline's window; zeros when there was none */
	bool has_baseline;
	struct analysis_check checks[ANALYSIS_CHECKS_MAX];
	size_t nchecks;
	double p_value;                    /* of the failing check that gave the reason (1 when none) */
};

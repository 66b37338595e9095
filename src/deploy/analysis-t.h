/* analysis-t.h - types of the deploy analysis: the rules a new version is
 * held to, the figures measured on a window of its counts, and the verdict.
 *
 * See analysis.h for the functions and docs/internals/analysis.md for the
 * rules themselves.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "metrics/metrics-t.h"

enum analysis_result {
	ANALYSIS_PASS,                  /* every rule judged, none broken */
	ANALYSIS_FAIL,                  /* a rule broken for certain: reason says which */
	ANALYSIS_INCONCLUSIVE,          /* too few requests to judge a rule yet, none broken */
};

/* What a version is held to (today: services.NAME.deploy). */
struct analysis_rules {
	uint32_t max_error_rate_permille; /* fail above (5xx + failed connects) / requests; 1000: never */
	uint64_t max_p99_ms;            /* fail when the p99 is certainly above; 0 = not judged */
	uint32_t min_requests;          /* a rule is judged from this many requests on (and at least 1) */
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

struct analysis_verdict {
	enum analysis_result result;
	char reason[ANALYSIS_REASON_MAX]; /* one sentence with the figures, for a person; never empty */
	struct analysis_figures candidate; /* the new version's window */
	struct analysis_figures baseline;  /* the baseline's window; zeros when there was none */
	bool has_baseline;
};

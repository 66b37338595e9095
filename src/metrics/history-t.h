/* history-t.h - types of the short history the status page draws
 * (history.h): a ring of points per (service, version) taken from the
 * registry every few seconds, and the per-minute counts of what each
 * service's clients saw, on their way to the state (uptime).
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "metrics/metrics-t.h"

#define METRICS_HISTORY_INTERVAL_MS 5000   /* one point per series every 5 s */
#define METRICS_HISTORY_POINTS 180         /* 15 minutes of them */
#define METRICS_HISTORY_SERIES_MAX 256     /* (service, version) pairs followed at most */
#define METRICS_UPTIME_SERVICES_MAX 256    /* services whose minutes are counted at most */

/* What one version did over one interval.  Latencies are the middle of the
 * fine-histogram bucket holding the quantile (within 3.2 %). */
struct metrics_history_point {
	int64_t t_ms;                      /* wall clock (Unix ms) at the end of the interval */
	uint32_t interval_ms;              /* its length */
	bool has_latency;                  /* a response was timed: p50_us and p99_us are set */
	uint64_t requests;                 /* answered + failed connects (as the deploy analysis counts) */
	uint64_t errors;                   /* answered 5xx + failed connects */
	uint64_t p50_us, p99_us;
};

/* The points of one (service, version): version NULL for the configured
 * targets of an unmanaged service. */
struct metrics_history_series {
	char *service;
	char *version;
	bool running;                      /* the version had an entry in the registry at the last sample */
	bool visited;                      /* (during a sample: has its point already) */
	struct metrics_counts last;        /* its counts at the last sample (zero when it was not running) */
	uint32_t first, n;                 /* the ring: points[first], ... n of them, oldest first */
	struct metrics_history_point points[METRICS_HISTORY_POINTS];
};

struct metrics_history {
	struct metrics_history_series **series;
	uint32_t nseries, capseries;
	int64_t last_ms;                   /* wall clock of the last sample (0: none yet) */
	uint64_t last_mono_ms;             /* monotonic clock of the last sample */
};

/* One service and minute, as the state stores it (traffic_minutes). */
struct metrics_minute {
	char *service;                     /* malloc'd */
	int64_t minute;                    /* Unix minute (Unix seconds / 60) */
	uint64_t requests, failed;
};

/* The minute being counted for one service. */
struct metrics_uptime_service {
	char *service;
	uint64_t seen_requests, seen_failed; /* its outcome counters at the last sample */
	int64_t minute;                    /* the minute counted now (0: none yet) */
	uint64_t requests, failed;         /* ... in it, not yet handed out to be stored */
};

struct metrics_uptime {
	struct metrics_uptime_service *services;
	uint32_t nservices, capservices;
};

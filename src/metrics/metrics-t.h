/* metrics-t.h - types of the in-process metrics.
 *
 * Hot-path metrics are plain integers bumped by the single event-loop
 * thread; formatting happens only when /metrics is scraped.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>

/* Latency buckets (seconds): 1ms 2.5ms 5ms 10ms 25ms 50ms 100ms 250ms 500ms 1s 2.5s 5s 10s, +Inf. */
#define METRICS_LATENCY_BUCKETS 13

/* A fine latency histogram, for judging a new version's p99 during its
 * watch window (the exposed one is too coarse: 250 to 500 ms is one
 * bucket).  Microseconds; 0..15 exact, then each power of two split into
 * 16 linear steps (at most 6.25 % wide), up to 2^36 us (19 h); beyond, the
 * last bucket.  See metrics_fine_index(). */
#define METRICS_FINE_SUB 16
#define METRICS_FINE_BUCKETS (METRICS_FINE_SUB + 32 * METRICS_FINE_SUB)

/* Spans of minutes rather than milliseconds (a deploy, from its start to
 * its result), in seconds: 5 10 30 60 120 300 600 1200 1800 3600, +Inf. */
#define METRICS_SPAN_BUCKETS 10

struct metrics_span_histogram {
	uint64_t buckets[METRICS_SPAN_BUCKETS + 1];    /* non-cumulative; last is +Inf */
	uint64_t count;
	uint64_t sum_ms;                               /* sum of observations, milliseconds */
};

/* Method label values, in this order: GET HEAD POST PUT DELETE PATCH OPTIONS OTHER. */
#define METRICS_METHODS 8
/* Status class label values: 1xx 2xx 3xx 4xx 5xx. */
#define METRICS_STATUS_CLASSES 5

struct metrics_histogram {
	uint64_t buckets[METRICS_LATENCY_BUCKETS + 1]; /* non-cumulative; last is +Inf */
	uint64_t count;
	uint64_t sum_us;                               /* sum of observations, microseconds */
};

/* The counters of one upstream, as a plain value: every field only grows,
 * so two of them add up (metrics_counts_add: counts kept apart, e.g. per
 * event loop, summed when read) and a later snapshot minus an earlier one is
 * exactly what happened in between (metrics_counts_window: what analysis
 * judges).  Gauges are not here: a window of a gauge means nothing. */
struct metrics_counts {
	uint64_t requests[METRICS_METHODS][METRICS_STATUS_CLASSES];
	struct metrics_histogram latency;               /* request start to response end */
	uint64_t fine[METRICS_FINE_BUCKETS];            /* the same, finer (not exposed) */
	uint64_t connect_failures;                      /* refused, unreachable, timed out */
	uint64_t retries;                               /* requests moved to another target after a failure here */
	uint64_t shielded;                              /* safe requests that failed here, on a canary, and were
							 * retried on the stable version (also in retries) */
};

/* The counts of one route class (a method and path prefix the
 * configuration names, e.g. "POST /api/checkout") at one upstream, for the
 * deploy analysis; not exposed.  Keyed by the class's name, so that a
 * reload that renames, adds or reorders classes never mixes them up. */
#define METRICS_ROUTE_CLASSES_MAX 16                    /* names per upstream, over reloads (a config has at most 8) */
struct metrics_route_class {
	char *name;
	struct metrics_counts counts;
};

/* Everything counted for one (service, target) pair.  Stays allocated for
 * the life of the process (it survives target-set swaps and reloads so that
 * counters never go backwards), except for a stopped managed instance:
 * retired, then swept once nothing points to it (metrics_sweep()). */
struct metrics_upstream {
	char *service;
	char *target;                                   /* "127.0.0.1:9001" */
	char *version;                                  /* a managed instance's version; NULL: an unmanaged target */
	struct metrics_counts counts;
	struct metrics_route_class **classes;           /* per route class, allocated when first counted */
	uint32_t nclasses;
	bool retired;                                   /* its instance is gone: drop once unused */
	int64_t open_connections;                       /* upstream sockets open (busy + idle) */
	int64_t idle_connections;                       /* of which idle in the pool */
};

/* What the swept instances of a managed version had counted: a version's
 * series are the sum over its instances, and must not go backwards when
 * one of them goes while others of the same version remain.  Dropped with
 * the version's last instance (its series leave the exposition). */
struct metrics_version {
	char *service;
	char *version;
	struct metrics_counts gone;
};

/* What the swept upstreams of a service had counted in the per-service
 * families (requests retried on stable): kept for the process's life, so
 * that those never go backwards, whatever versions come and go. */
struct metrics_service {
	char *service;
	uint64_t shielded;
};

/* What the clients of one service saw, for its uptime (the status page):
 * every request routed to it, and of those the ones answered 5xx, by the
 * service or by the proxy for it (a failed connect that no retry saved, no
 * instance, a timeout).  One outcome per request, whatever the retries.
 * Kept for the process's life: they only grow. */
struct metrics_outcomes {
	char *service;
	uint64_t requests;
	uint64_t failed;
};

/* Responses the proxy produced itself without a service (400, 404, 408,
 * 414, 431, 503 when draining...), by status code. */
#define METRICS_LOCAL_STATUS_MAX 600

struct metrics {
	struct metrics_upstream **upstreams;
	uint32_t nupstreams;
	uint32_t capupstreams;
	struct metrics_version **versions;
	uint32_t nversions;
	uint32_t capversions;
	struct metrics_service *services;               /* swept upstreams' totals, by service */
	uint32_t nservices;
	uint32_t capservices;
	struct metrics_outcomes **outcomes;             /* by service, each allocated once (stable pointers) */
	uint32_t noutcomes;
	uint32_t capoutcomes;
	int64_t in_flight;                              /* requests accepted and not finished */
	int64_t client_connections;                     /* open client connections */
	uint64_t client_connections_total;              /* accepted since start */
	uint64_t local_responses[METRICS_LOCAL_STATUS_MAX]; /* by status code */
	uint64_t config_reloads;                        /* successful */
	uint64_t config_reload_failures;
	uint64_t start_time_unix;                       /* process start, seconds */
};

/* What the daemon tells of its host and its configuration at a scrape
 * (metrics_host_render): filled by the daemon then, every pointer
 * borrowed for the call. */
struct metrics_disk {
	const char *dir;                                /* the dir label: "state", "store" */
	uint64_t free_bytes;                            /* available to the daemon (statvfs f_bavail) */
	uint64_t size_bytes;
};

struct metrics_alert_limits {
	const char *service;
	uint32_t max_error_rate_permille;               /* UINT32_MAX: off (no series) */
	uint64_t max_p99_ms;                            /* 0: off (no series) */
};

struct metrics_host {
	const char *version;                            /* cutover_build_info{version} */
	const struct metrics_disk *disks;               /* those that could be measured */
	size_t ndisks;
	int identity_readable;                          /* 1, 0; -1: no secrets configured (no series) */
	const struct metrics_alert_limits *limits;
	size_t nlimits;
};

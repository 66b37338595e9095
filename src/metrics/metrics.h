/* metrics.h - counters and histograms, Prometheus text exposition. */
#pragma once
#include <stddef.h>
#include "metrics/metrics-t.h"
#include "http/parser-t.h"

/* Initialise an empty registry (start_time_unix set to now). */
void metrics_init(struct metrics *m);
/* Free everything the registry owns.  Accepts NULL. */
void metrics_release(struct metrics *m);

/* Find or create the entry for (service, target).  Returns NULL only on
 * allocation failure.  The pointer stays valid until metrics_release(). */
struct metrics_upstream *metrics_upstream_get(struct metrics *m, const char *service, const char *target);
/* The instance behind (service, target) is gone for good (a stopped
 * version: every deploy has new ports): its series may go.  A later
 * metrics_upstream_get() of the same pair takes it back. */
void metrics_upstream_retire(struct metrics *m, const char *service, const char *target);
/* Free the retired entries IN_USE says nobody points to any more (their
 * series leave the exposition).  Returns how many went. */
unsigned metrics_sweep(struct metrics *m, bool (*in_use)(const struct metrics_upstream *u, void *data),
		       void *data);

/* Map a parsed method to its label index 0..METRICS_METHODS-1. */
unsigned metrics_method_index(enum http_method method);
/* Count one finished request: status 100..599, latency in microseconds. */
void metrics_upstream_observe(struct metrics_upstream *u, enum http_method method, int status, uint64_t latency_us);
void metrics_histogram_observe(struct metrics_histogram *h, uint64_t latency_us);
/* Requests answered by u over all methods and status classes, and of those
 * the 5xx: *requests and *errors_5xx are set (not added to). */
/* Bucket of the fine histogram for latency_us, and the smallest latency
 * that bucket holds. */
unsigned metrics_fine_index(uint64_t latency_us);
uint64_t metrics_fine_lower_us(unsigned index);
void metrics_upstream_totals(const struct metrics_upstream *u, uint64_t *requests, uint64_t *errors_5xx);
/* Count a response the proxy produced itself (status 100..599). */
void metrics_local_response(struct metrics *m, int status);

/* Render the whole registry in the Prometheus text format (version 0.0.4),
 * with HELP and TYPE lines, metric names prefixed "cutover_".  Returns a
 * malloc'd NUL-terminated string (caller frees) and its length in *len, or
 * NULL on allocation failure. */
char *metrics_render(const struct metrics *m, size_t *len);

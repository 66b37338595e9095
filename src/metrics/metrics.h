/* metrics.h - counters and histograms, Prometheus text exposition. */
#pragma once
#include <stddef.h>
#include <stdio.h>
#include "metrics/metrics-t.h"
#include "http/parser-t.h"

/* Initialise an empty registry (start_time_unix set to now). */
void metrics_init(struct metrics *m);
/* Free everything the registry owns.  Accepts NULL. */
void metrics_release(struct metrics *m);

/* Find or create the entry for (service, target, version): version is a
 * managed instance's (its requests and latencies are exposed per version,
 * summed over the version's instances), NULL for an unmanaged target
 * (exposed per target).  Returns NULL only on allocation failure.  The
 * pointer stays valid until metrics_release() or a sweep that frees it. */
struct metrics_upstream *metrics_upstream_get(struct metrics *m, const char *service, const char *target,
					      const char *version);
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
/* Count one finished request: status 100..599, latency in microseconds.
 * An invalid status (or a NULL u) counts nothing. */
void metrics_upstream_observe(struct metrics_upstream *u, enum http_method method, int status, uint64_t latency_us);
/* The counts of route class CLASS_NAME at u, created at zero the first
 * time (the name is copied).  The pointer stays valid as long as u.
 * Returns NULL (nothing to count into) when u or class_name is NULL, when
 * u holds METRICS_ROUTE_CLASSES_MAX names already, or when out of memory. */
struct metrics_counts *metrics_upstream_class_get(struct metrics_upstream *u, const char *class_name);
/* What was counted for route class CLASS_NAME at u (the deployer sums
 * these over a version's instances, as it does u->counts), or NULL when
 * nothing was counted for it yet.  Valid as long as u. */
const struct metrics_counts *metrics_upstream_class(const struct metrics_upstream *u, const char *class_name);
/* The same on a plain set of counts (c may be NULL: nothing counted). */
void metrics_counts_observe(struct metrics_counts *c, enum http_method method, int status, uint64_t latency_us);
void metrics_histogram_observe(struct metrics_histogram *h, uint64_t latency_us);

/* Bucket of the fine histogram for latency_us; the smallest and the
 * largest latency a bucket holds (both inclusive: the last bucket's largest
 * is UINT64_MAX).  An index past the end is read as the last bucket. */
unsigned metrics_fine_index(uint64_t latency_us);
uint64_t metrics_fine_lower_us(unsigned index);
uint64_t metrics_fine_upper_us(unsigned index);

/* dst += src, field by field (dst and src may be the same). */
void metrics_counts_add(struct metrics_counts *dst, const struct metrics_counts *src);
/* *out = now - before, field by field: what was counted between two
 * snapshots of the same counters.  A field of before above the one of now
 * (not the same counters) gives 0 rather than wrapping.  out may be now or
 * before. */
void metrics_counts_window(struct metrics_counts *out, const struct metrics_counts *now,
			   const struct metrics_counts *before);
/* Requests answered over all methods and status classes, and of those the
 * 5xx (failed connects are not in either): *requests and *errors_5xx are set
 * (not added to). */
void metrics_counts_totals(const struct metrics_counts *c, uint64_t *requests, uint64_t *errors_5xx);
/* Latencies observed in the fine histogram (the answered requests). */
uint64_t metrics_counts_responses(const struct metrics_counts *c);
/* The PERMILLE quantile (990: the p99; 0: the smallest) of the fine
 * histogram: of the n latencies in increasing order, the one of rank
 * ceil(n * permille / 1000) (at least 1).  It lies in one bucket, whose
 * bounds are stored in *lower_us and *upper_us (inclusive; the true value is
 * within them, which lets a caller judge conservatively).  Returns 0; -ENODATA when nothing was observed or
 * -EINVAL when permille > 1000, outputs untouched. */
int metrics_counts_quantile(const struct metrics_counts *c, unsigned permille, uint64_t *lower_us,
			    uint64_t *upper_us);

/* Everything counted for SERVICE at VERSION (NULL: every version and
 * unmanaged target of it) so far, over its instances, swept ones
 * included while the version has one left: *out is set (not added to).
 * For a window, take two and metrics_counts_window() them. */
void metrics_version_counts(const struct metrics *m, const char *service, const char *version,
			    struct metrics_counts *out);

/* The outcomes of SERVICE (metrics-t.h), created at zero the first time.
 * The pointer stays valid until metrics_release().  NULL when out of
 * memory. */
struct metrics_outcomes *metrics_outcomes_get(struct metrics *m, const char *service);
/* Count one request's final answer (STATUS; 0: none was sent, counted as
 * 502 like an upstream's).  o may be NULL (nothing counted). */
static inline void metrics_outcomes_observe(struct metrics_outcomes *o, int status)
{
	if (!o)
		return;
	o->requests++;
	if (!status || status >= 500)
		o->failed++;
}

/* Count a response the proxy produced itself (status 100..599). */
void metrics_local_response(struct metrics *m, int status);

/* Render the whole registry in the Prometheus text format (version 0.0.4),
 * with HELP and TYPE lines, metric names prefixed "cutover_".  Returns a
 * malloc'd NUL-terminated string (caller frees) and its length in *len, or
 * NULL on allocation failure. */
char *metrics_render(const struct metrics *m, size_t *len);

/* Count one span of ms milliseconds into h. */
void metrics_span_observe(struct metrics_span_histogram *h, uint64_t ms);
/* Write h as the series NAME_bucket{LABELS,le="..."} (cumulative, up to
 * le="+Inf"), NAME_sum{LABELS} (seconds) and NAME_count{LABELS} to f;
 * labels is the text between the braces (e.g. service="shop", escaped by
 * the caller; "" for none).  Returns 0, or -EIO when f failed. */
int metrics_span_write(FILE *f, const char *name, const char *labels, const struct metrics_span_histogram *h);

/* The daemon's own families (build, disks, secrets identity, alert limits
 * of the services) in the text format, each with its HELP and TYPE lines
 * also when it has no series.  Returns a malloc'd NUL-terminated string
 * (caller frees) and its length in *len (len may be NULL), or NULL on
 * allocation failure. */
char *metrics_host_render(const struct metrics_host *h, size_t *len);

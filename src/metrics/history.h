/* history.h - the status page's short history of the proxy's own counts
 * (types in history-t.h).
 *
 * Nothing here runs by itself: the admin listener's timer samples the
 * registry every METRICS_HISTORY_INTERVAL_MS on the loop thread, keeps the
 * points for the charts and hands the finished minutes to the state
 * worker.  No I/O, no clock: the caller passes the times.
 */
#pragma once
#include <stdbool.h>
#include <sys/types.h>
#include "metrics/history-t.h"

/* ---- the ring of points per (service, version) ---- */

void metrics_history_init(struct metrics_history *h);
/* Free every series.  Accepts a zeroed h. */
void metrics_history_release(struct metrics_history *h);
/* Take one sample of m: each (service, version) that has an entry in the
 * registry now gets a point for what it counted since the previous sample
 * (a version seen for the first time: since its counters started; counters
 * that went back, a version that came again after its last instance was
 * swept: since they started again).  NOW_MS is the wall clock (Unix ms,
 * the points' time), MONO_MS a monotonic clock (the interval's length).
 * Series with no point newer than 15 minutes and no entry are dropped.
 * Returns 0, or -ENOMEM when a new series could not be made (or
 * METRICS_HISTORY_SERIES_MAX are followed already): it gets no point. */
int metrics_history_sample(struct metrics_history *h, const struct metrics *m, int64_t now_ms, uint64_t mono_ms);
/* Point I (0: the oldest) of s; I < s->n. */
const struct metrics_history_point *metrics_history_point(const struct metrics_history_series *s, uint32_t i);
/* Requests counted in the points of s newer than SINCE_MS (wall clock). */
uint64_t metrics_history_requests_since(const struct metrics_history_series *s, int64_t since_ms);

/* ---- per service and minute, for the uptime ---- */

void metrics_uptime_init(struct metrics_uptime *u);
void metrics_uptime_release(struct metrics_uptime *u);
/* Add what each service's clients saw since the previous call
 * (m->outcomes) to minute MINUTE (Unix minute; a sample taken right at the
 * end of a minute passes that minute).  A service whose counted minute is
 * before MINUTE hands it out: *ret_rows (malloc'd, free with
 * metrics_minutes_free) gets one row per such minute that had a request.
 * Returns the number of rows (0: *ret_rows is NULL), or -ENOMEM with
 * nothing changed (the next call counts it all). */
ssize_t metrics_uptime_sample(struct metrics_uptime *u, const struct metrics *m, int64_t minute,
			      struct metrics_minute **ret_rows);
/* Hand out what every service counted and did not hand out yet, its minute
 * included (a daemon that stops: what is stored is added to, so the next
 * daemon's counts of the same minute are not lost).  Returns as
 * metrics_uptime_sample(). */
ssize_t metrics_uptime_take(struct metrics_uptime *u, struct metrics_minute **ret_rows);
/* What SERVICE counted and did not hand out yet: its minute and counts.
 * False (outputs untouched) when it counted nothing yet. */
bool metrics_uptime_pending(const struct metrics_uptime *u, const char *service, int64_t *minute,
			    uint64_t *requests, uint64_t *failed);
/* Free rows[0..n).  Accepts NULL. */
void metrics_minutes_free(struct metrics_minute *rows, size_t n);

/* history.c - the status page's short history (contract in history.h).
 *
 * Every sample reads the registry of metrics.c as it is: for each
 * (service, version) with an entry, the sum of its instances' counts (those
 * swept included, as the exposition does), minus the sum at the previous
 * sample, is one point of its ring.  The counts are plain values, so the
 * window is metrics_counts_window() and the quantiles come from its fine
 * histogram, exactly as the deploy analysis reads them.
 *
 * The uptime side reads the per-service outcomes (struct metrics_outcomes):
 * one count per request, whatever its retries, so that "failed" is what
 * clients saw.  Minutes are handed out whole to the caller, who stores them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "metrics/history.h"
#include "metrics/metrics.h"

#define HISTORY_SPAN_MS ((int64_t)METRICS_HISTORY_POINTS * METRICS_HISTORY_INTERVAL_MS)

static bool same_version(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

void metrics_history_init(struct metrics_history *h)
{
	memset(h, 0, sizeof(*h));
}

static void series_free(struct metrics_history_series *s)
{
	free(s->service);
	free(s->version);
	free(s);
}

void metrics_history_release(struct metrics_history *h)
{
	for (uint32_t i = 0; i < h->nseries; i++)
		series_free(h->series[i]);
	free(h->series);
	memset(h, 0, sizeof(*h));
}

const struct metrics_history_point *metrics_history_point(const struct metrics_history_series *s, uint32_t i)
{
	return &s->points[(s->first + i) % METRICS_HISTORY_POINTS];
}

uint64_t metrics_history_requests_since(const struct metrics_history_series *s, int64_t since_ms)
{
	uint64_t n = 0;

	for (uint32_t i = s->n; i > 0; i--) {
		const struct metrics_history_point *p = metrics_history_point(s, i - 1);
		if (p->t_ms <= since_ms)
			break;
		n += p->requests;
	}
	return n;
}

/* The series of (service, version), created if needed; NULL when out of
 * memory or when there are too many. */
static struct metrics_history_series *series_get(struct metrics_history *h, const char *service, const char *version)
{
	struct metrics_history_series *s;

	for (uint32_t i = 0; i < h->nseries; i++)
		if (!strcmp(h->series[i]->service, service) && same_version(h->series[i]->version, version))
			return h->series[i];
	if (h->nseries >= METRICS_HISTORY_SERIES_MAX)
		return NULL;
	if (h->nseries == h->capseries) {
		uint32_t cap = h->capseries ? h->capseries * 2 : 8;
		struct metrics_history_series **n = realloc(h->series, (size_t)cap * sizeof(*n));
		if (!n)
			return NULL;
		h->series = n;
		h->capseries = cap;
	}
	s = calloc(1, sizeof(*s));
	if (!s || !(s->service = strdup(service)) || (version && !(s->version = strdup(version)))) {
		if (s)
			series_free(s);
		return NULL;
	}
	h->series[h->nseries++] = s;
	return s;
}

/* Everything counted for (service, version) now, version NULL meaning the
 * unmanaged targets only (unlike metrics_version_counts). */
static void counts_of(const struct metrics *m, const char *service, const char *version, struct metrics_counts *out)
{
	memset(out, 0, sizeof(*out));
	for (uint32_t i = 0; i < m->nupstreams; i++) {
		const struct metrics_upstream *u = m->upstreams[i];
		if (!strcmp(u->service, service) && same_version(u->version, version))
			metrics_counts_add(out, &u->counts);
	}
	for (uint32_t i = 0; version && i < m->nversions; i++) {
		const struct metrics_version *v = m->versions[i];
		if (!strcmp(v->service, service) && !strcmp(v->version, version))
			metrics_counts_add(out, &v->gone);
	}
}

/* Requests and errors the way the deploy analysis counts them: a failed
 * connect is a request that failed. */
static void counts_requests(const struct metrics_counts *c, uint64_t *requests, uint64_t *errors)
{
	uint64_t answered, errors_5xx;

	metrics_counts_totals(c, &answered, &errors_5xx);
	*requests = answered + c->connect_failures;
	*errors = errors_5xx + c->connect_failures;
}

static uint64_t quantile_us(const struct metrics_counts *c, unsigned permille)
{
	uint64_t lo = 0, hi = 0;

	if (metrics_counts_quantile(c, permille, &lo, &hi) < 0)
		return 0;
	return hi == UINT64_MAX ? lo : lo + (hi - lo + 1) / 2;
}

/* The point of s for this sample: its counts now minus at the last one. */
static void series_sample(struct metrics_history_series *s, const struct metrics *m, int64_t now_ms,
			  uint32_t interval_ms)
{
	struct metrics_history_point *p;
	struct metrics_counts *now = malloc(sizeof(*now));
	uint64_t before_requests, before_errors, now_requests, now_errors;

	if (!now)
		return;
	counts_of(m, s->service, s->version, now);
	counts_requests(&s->last, &before_requests, &before_errors);
	counts_requests(now, &now_requests, &now_errors);
	/* counters that went back are new ones (a version whose last
	 * instance was swept, come again): all they hold is new */
	if (now_requests < before_requests || metrics_counts_responses(now) < metrics_counts_responses(&s->last))
		memset(&s->last, 0, sizeof(s->last));
	metrics_counts_window(&s->last, now, &s->last); /* s->last is the window now */
	if (s->n == METRICS_HISTORY_POINTS)
		s->first = (s->first + 1) % METRICS_HISTORY_POINTS;
	else
		s->n++;
	p = &s->points[(s->first + s->n - 1) % METRICS_HISTORY_POINTS];
	*p = (struct metrics_history_point){ .t_ms = now_ms, .interval_ms = interval_ms };
	counts_requests(&s->last, &p->requests, &p->errors);
	p->has_latency = metrics_counts_responses(&s->last) > 0;
	p->p50_us = quantile_us(&s->last, 500);
	p->p99_us = quantile_us(&s->last, 990);
	s->last = *now;
	s->running = true;
	free(now);
}

/* Give (service, version) its point, once per sample.  Returns 0 or
 * -ENOMEM. */
static int history_visit(struct metrics_history *h, const struct metrics *m, const char *service,
			 const char *version, int64_t now_ms, uint32_t interval_ms)
{
	struct metrics_history_series *s = series_get(h, service, version);

	if (!s)
		return -ENOMEM;
	if (!s->visited) {
		s->visited = true;
		series_sample(s, m, now_ms, interval_ms);
	}
	return 0;
}

int metrics_history_sample(struct metrics_history *h, const struct metrics *m, int64_t now_ms, uint64_t mono_ms)
{
	uint32_t interval_ms = METRICS_HISTORY_INTERVAL_MS;
	int rc = 0;

	if (h->last_ms && mono_ms > h->last_mono_ms)
		interval_ms = (uint32_t)(mono_ms - h->last_mono_ms < UINT32_MAX ? mono_ms - h->last_mono_ms : UINT32_MAX);
	for (uint32_t i = 0; i < h->nseries; i++)
		h->series[i]->visited = false;
	for (uint32_t i = 0; i < m->nupstreams; i++)
		if (history_visit(h, m, m->upstreams[i]->service, m->upstreams[i]->version, now_ms, interval_ms) < 0)
			rc = -ENOMEM;
	for (uint32_t i = 0; i < m->nversions; i++)
		if (history_visit(h, m, m->versions[i]->service, m->versions[i]->version, now_ms, interval_ms) < 0)
			rc = -ENOMEM;
	/* the versions that did not run: no point; gone once their last
	 * point left the 15 minutes */
	for (uint32_t i = 0; i < h->nseries;) {
		struct metrics_history_series *s = h->series[i];
		if (!s->visited) {
			s->running = false;
			memset(&s->last, 0, sizeof(s->last));
			if (!s->n || metrics_history_point(s, s->n - 1)->t_ms <= now_ms - HISTORY_SPAN_MS) {
				series_free(s);
				memmove(&h->series[i], &h->series[i + 1], (h->nseries - i - 1) * sizeof(h->series[0]));
				h->nseries--;
				continue;
			}
		}
		i++;
	}
	h->last_ms = now_ms;
	h->last_mono_ms = mono_ms;
	return rc;
}

/* ---- uptime ---- */

void metrics_uptime_init(struct metrics_uptime *u)
{
	memset(u, 0, sizeof(*u));
}

void metrics_uptime_release(struct metrics_uptime *u)
{
	for (uint32_t i = 0; i < u->nservices; i++)
		free(u->services[i].service);
	free(u->services);
	memset(u, 0, sizeof(*u));
}

void metrics_minutes_free(struct metrics_minute *rows, size_t n)
{
	for (size_t i = 0; rows && i < n; i++)
		free(rows[i].service);
	free(rows);
}

static struct metrics_uptime_service *uptime_find(const struct metrics_uptime *u, const char *service)
{
	for (uint32_t i = 0; i < u->nservices; i++)
		if (!strcmp(u->services[i].service, service))
			return &u->services[i];
	return NULL;
}

/* Room for every service of m, so that a sample never stops half-way. */
static int uptime_reserve(struct metrics_uptime *u, const struct metrics *m)
{
	uint32_t want = m->noutcomes < METRICS_UPTIME_SERVICES_MAX ? m->noutcomes : METRICS_UPTIME_SERVICES_MAX;

	if (want > u->capservices) {
		struct metrics_uptime_service *n = realloc(u->services, (size_t)want * sizeof(*n));
		if (!n)
			return -ENOMEM;
		u->services = n;
		u->capservices = want;
	}
	for (uint32_t i = 0; i < m->noutcomes && u->nservices < u->capservices; i++) {
		if (uptime_find(u, m->outcomes[i]->service))
			continue;
		u->services[u->nservices] = (struct metrics_uptime_service){ .service = strdup(m->outcomes[i]->service) };
		if (!u->services[u->nservices].service)
			return -ENOMEM;
		u->nservices++;
	}
	return 0;
}

/* Hand out e's minute as row r (its name copied).  Returns 0 or -ENOMEM. */
static int uptime_row(const struct metrics_uptime_service *e, struct metrics_minute *r)
{
	*r = (struct metrics_minute){ .service = strdup(e->service), .minute = e->minute,
				      .requests = e->requests, .failed = e->failed };
	return r->service ? 0 : -ENOMEM;
}

ssize_t metrics_uptime_sample(struct metrics_uptime *u, const struct metrics *m, int64_t minute,
			      struct metrics_minute **ret_rows)
{
	struct metrics_minute *rows = NULL;
	size_t n = 0;

	*ret_rows = NULL;
	if (uptime_reserve(u, m) < 0 || (u->nservices && !(rows = calloc(u->nservices, sizeof(*rows)))))
		return -ENOMEM;
	for (uint32_t i = 0; i < u->nservices; i++) {
		struct metrics_uptime_service *e = &u->services[i];
		if (e->minute && e->minute != minute && e->requests && uptime_row(e, &rows[n++]) < 0) {
			metrics_minutes_free(rows, n);
			return -ENOMEM;
		}
	}
	/* nothing can fail from here on */
	for (uint32_t i = 0; i < u->nservices; i++) {
		struct metrics_uptime_service *e = &u->services[i];
		const struct metrics_outcomes *o = NULL;
		for (uint32_t k = 0; k < m->noutcomes && !o; k++)
			if (!strcmp(m->outcomes[k]->service, e->service))
				o = m->outcomes[k];
		if (e->minute != minute)
			e->requests = e->failed = 0;
		e->minute = minute;
		if (!o)
			continue;
		e->requests += o->requests - e->seen_requests;
		e->failed += o->failed - e->seen_failed;
		e->seen_requests = o->requests;
		e->seen_failed = o->failed;
	}
	if (!n) {
		free(rows);
		return 0;
	}
	*ret_rows = rows;
	return (ssize_t)n;
}

ssize_t metrics_uptime_take(struct metrics_uptime *u, struct metrics_minute **ret_rows)
{
	struct metrics_minute *rows;
	size_t n = 0;

	*ret_rows = NULL;
	if (!u->nservices)
		return 0;
	rows = calloc(u->nservices, sizeof(*rows));
	if (!rows)
		return -ENOMEM;
	for (uint32_t i = 0; i < u->nservices; i++) {
		if (u->services[i].requests && uptime_row(&u->services[i], &rows[n++]) < 0) {
			metrics_minutes_free(rows, n);
			return -ENOMEM;
		}
	}
	for (uint32_t i = 0; i < u->nservices; i++)
		u->services[i].requests = u->services[i].failed = 0;
	if (!n) {
		free(rows);
		return 0;
	}
	*ret_rows = rows;
	return (ssize_t)n;
}

bool metrics_uptime_pending(const struct metrics_uptime *u, const char *service, int64_t *minute,
			    uint64_t *requests, uint64_t *failed)
{
	const struct metrics_uptime_service *e = uptime_find(u, service);

	if (!e || !e->minute)
		return false;
	*minute = e->minute;
	*requests = e->requests;
	*failed = e->failed;
	return true;
}

/* metrics.c - the metrics registry (its Prometheus text exposition:
 * render.c).
 *
 * The proxy bumps plain integers in struct metrics / struct metrics_upstream
 * on the event-loop thread; nothing here allocates or formats on that path
 * except metrics_upstream_get() the first time a (service, target) pair is
 * seen.
 *
 * An upstream's counters are a plain struct metrics_counts: the functions in
 * the middle of this file add two of them, take the window between two
 * snapshots and read totals and quantiles from one, with no registry and no
 * I/O, for the deploy analysis (src/deploy/analysis.c).
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "metrics/metrics-internal.h"
#include "metrics/metrics.h"

/* Upper bounds of the latency buckets in microseconds (their "le" labels:
 * render.c). */
static const uint64_t latency_bounds_us[METRICS_LATENCY_BUCKETS] = {
	1000, 2500, 5000, 10000, 25000, 50000, 100000,
	250000, 500000, 1000000, 2500000, 5000000, 10000000,
};
#define METRICS_INITIAL_UPSTREAMS 8

void metrics_init(struct metrics *m)
{
	memset(m, 0, sizeof(*m));
	m->start_time_unix = (uint64_t)time(NULL);
}

static bool same_version(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

static void version_free(struct metrics_version *v)
{
	free(v->service);
	free(v->version);
	free(v);
}

static void upstream_free(struct metrics_upstream *u)
{
	for (uint32_t i = 0; i < u->nclasses; i++) {
		free(u->classes[i]->name);
		free(u->classes[i]);
	}
	free(u->classes);
	free(u->service);
	free(u->target);
	free(u->version);
	free(u);
}

void metrics_release(struct metrics *m)
{
	if (!m)
		return;
	for (uint32_t i = 0; i < m->nupstreams; i++)
		upstream_free(m->upstreams[i]);
	free(m->upstreams);
	for (uint32_t i = 0; i < m->nversions; i++)
		version_free(m->versions[i]);
	free(m->versions);
	for (uint32_t i = 0; i < m->nservices; i++)
		free(m->services[i].service);
	free(m->services);
	for (uint32_t i = 0; i < m->noutcomes; i++) {
		free(m->outcomes[i]->service);
		free(m->outcomes[i]);
	}
	free(m->outcomes);
	memset(m, 0, sizeof(*m));
}

/* Make room for one more upstream pointer, doubling the array.  Returns 0,
 * or -1 on allocation failure or overflow (the registry is unchanged). */
static int upstreams_reserve(struct metrics *m)
{
	if (m->nupstreams < m->capupstreams)
		return 0;
	if (m->capupstreams > UINT32_MAX / 2)
		return -1;
	uint32_t cap = m->capupstreams ? m->capupstreams * 2 : METRICS_INITIAL_UPSTREAMS;
	struct metrics_upstream **p = realloc(m->upstreams, (size_t)cap * sizeof(*p));
	if (!p)
		return -1;
	m->upstreams = p;
	m->capupstreams = cap;
	return 0;
}

struct metrics_upstream *metrics_upstream_get(struct metrics *m, const char *service, const char *target,
					      const char *version)
{
	assert(m && service && target);

	for (uint32_t i = 0; i < m->nupstreams; i++) {
		struct metrics_upstream *u = m->upstreams[i];
		if (strcmp(u->service, service) == 0 && strcmp(u->target, target) == 0 &&
		    same_version(u->version, version)) {
			u->retired = false;
			return u;
		}
	}

	struct metrics_upstream *u = NULL;
	if (upstreams_reserve(m) < 0)
		goto fail;
	u = calloc(1, sizeof(*u));
	if (!u)
		goto fail;
	u->service = strdup(service);
	u->target = strdup(target);
	u->version = version ? strdup(version) : NULL;
	if (!u->service || !u->target || (version && !u->version))
		goto fail;
	m->upstreams[m->nupstreams++] = u;
	return u;

fail:
	if (u)
		upstream_free(u);
	return NULL;
}

unsigned metrics_method_index(enum http_method method)
{
	switch (method) {
	case HTTP_METHOD_GET: return 0;
	case HTTP_METHOD_HEAD: return 1;
	case HTTP_METHOD_POST: return 2;
	case HTTP_METHOD_PUT: return 3;
	case HTTP_METHOD_DELETE: return 4;
	case HTTP_METHOD_PATCH: return 5;
	case HTTP_METHOD_OPTIONS: return 6;
	default: return METRICS_METHODS - 1; /* OTHER, CONNECT, TRACE, out of range */
	}
}

/* Status code -> class index 0..4, or -1 if outside 100..599. */
static int status_class_index(int status)
{
	if (status < 100 || status > 599)
		return -1;
	return status / 100 - 1;
}

void metrics_histogram_observe(struct metrics_histogram *h, uint64_t latency_us)
{
	/* Bounds are inclusive ("le"): an observation equal to a bound belongs
	 * to that bucket.  Thirteen comparisons at most, no floating point. */
	unsigned i = 0;
	while (i < METRICS_LATENCY_BUCKETS && latency_us > latency_bounds_us[i])
		i++;
	h->buckets[i]++;
	h->count++;
	h->sum_us += latency_us;
}

/* An invalid status is ignored entirely (neither the request counter nor the
 * histograms move) so that the histogram counts always equal the sum of the
 * request counters. */
void metrics_counts_observe(struct metrics_counts *c, enum http_method method, int status, uint64_t latency_us)
{
	int class = status_class_index(status);
	if (!c || class < 0)
		return;
	c->requests[metrics_method_index(method)][class]++;
	metrics_histogram_observe(&c->latency, latency_us);
	c->fine[metrics_fine_index(latency_us)]++;
}

void metrics_upstream_observe(struct metrics_upstream *u, enum http_method method, int status, uint64_t latency_us)
{
	if (u)
		metrics_counts_observe(&u->counts, method, status, latency_us);
}

const struct metrics_counts *metrics_upstream_class(const struct metrics_upstream *u, const char *class_name)
{
	for (uint32_t i = 0; u && class_name && i < u->nclasses; i++)
		if (!strcmp(u->classes[i]->name, class_name))
			return &u->classes[i]->counts;
	return NULL;
}

struct metrics_counts *metrics_upstream_class_get(struct metrics_upstream *u, const char *class_name)
{
	struct metrics_route_class *c, **v;

	if (!u || !class_name)
		return NULL;
	for (uint32_t i = 0; i < u->nclasses; i++)
		if (!strcmp(u->classes[i]->name, class_name))
			return &u->classes[i]->counts;
	if (u->nclasses >= METRICS_ROUTE_CLASSES_MAX)
		return NULL;
	/* the first request of this class here: one allocation per class, so
	 * that the counts do not move when another class is added */
	v = realloc(u->classes, (u->nclasses + 1) * sizeof(*v));
	if (!v)
		return NULL;
	u->classes = v;
	c = calloc(1, sizeof(*c));
	if (!c || !(c->name = strdup(class_name))) {
		free(c);
		return NULL;
	}
	u->classes[u->nclasses++] = c;
	return &c->counts;
}

unsigned metrics_fine_index(uint64_t us)
{
	unsigned e;

	if (us < METRICS_FINE_SUB)
		return (unsigned)us;
	e = 63u - (unsigned)__builtin_clzll(us); /* floor(log2 us), >= 4 */
	if (e > 35)
		return METRICS_FINE_BUCKETS - 1;
	/* the 4 bits after the leading one pick the step within the octave */
	return METRICS_FINE_SUB + (e - 4) * METRICS_FINE_SUB + (unsigned)((us >> (e - 4)) & (METRICS_FINE_SUB - 1));
}

uint64_t metrics_fine_lower_us(unsigned index)
{
	unsigned e, step;

	if (index < METRICS_FINE_SUB)
		return index;
	if (index >= METRICS_FINE_BUCKETS)
		index = METRICS_FINE_BUCKETS - 1;
	e = (index - METRICS_FINE_SUB) / METRICS_FINE_SUB + 4;
	step = (index - METRICS_FINE_SUB) % METRICS_FINE_SUB;
	return (uint64_t)(METRICS_FINE_SUB + step) << (e - 4);
}

uint64_t metrics_fine_upper_us(unsigned index)
{
	if (index >= METRICS_FINE_BUCKETS - 1)
		return UINT64_MAX;
	return metrics_fine_lower_us(index + 1) - 1;
}

/*
 * Counts as values: sums, windows, totals, quantiles.
 */

/* a - b, or 0 when b is above a */
static uint64_t minus(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

void metrics_counts_add(struct metrics_counts *dst, const struct metrics_counts *src)
{
	for (unsigned m = 0; m < METRICS_METHODS; m++)
		for (unsigned c = 0; c < METRICS_STATUS_CLASSES; c++)
			dst->requests[m][c] += src->requests[m][c];
	for (unsigned b = 0; b <= METRICS_LATENCY_BUCKETS; b++)
		dst->latency.buckets[b] += src->latency.buckets[b];
	dst->latency.count += src->latency.count;
	dst->latency.sum_us += src->latency.sum_us;
	for (unsigned b = 0; b < METRICS_FINE_BUCKETS; b++)
		dst->fine[b] += src->fine[b];
	dst->connect_failures += src->connect_failures;
	dst->retries += src->retries;
	dst->shielded += src->shielded;
}

void metrics_counts_window(struct metrics_counts *out, const struct metrics_counts *now,
			   const struct metrics_counts *before)
{
	/* element by element, each read before its own write: out may alias */
	for (unsigned m = 0; m < METRICS_METHODS; m++)
		for (unsigned c = 0; c < METRICS_STATUS_CLASSES; c++)
			out->requests[m][c] = minus(now->requests[m][c], before->requests[m][c]);
	for (unsigned b = 0; b <= METRICS_LATENCY_BUCKETS; b++)
		out->latency.buckets[b] = minus(now->latency.buckets[b], before->latency.buckets[b]);
	out->latency.count = minus(now->latency.count, before->latency.count);
	out->latency.sum_us = minus(now->latency.sum_us, before->latency.sum_us);
	for (unsigned b = 0; b < METRICS_FINE_BUCKETS; b++)
		out->fine[b] = minus(now->fine[b], before->fine[b]);
	out->connect_failures = minus(now->connect_failures, before->connect_failures);
	out->retries = minus(now->retries, before->retries);
	out->shielded = minus(now->shielded, before->shielded);
}

void metrics_counts_totals(const struct metrics_counts *c, uint64_t *requests, uint64_t *errors_5xx)
{
	uint64_t total = 0, errors = 0;

	for (unsigned m = 0; m < METRICS_METHODS; m++) {
		for (unsigned k = 0; k < METRICS_STATUS_CLASSES; k++)
			total += c->requests[m][k];
		errors += c->requests[m][METRICS_STATUS_CLASSES - 1];
	}
	*requests = total;
	*errors_5xx = errors;
}

uint64_t metrics_counts_responses(const struct metrics_counts *c)
{
	uint64_t n = 0;

	for (unsigned b = 0; b < METRICS_FINE_BUCKETS; b++)
		n += c->fine[b];
	return n;
}

int metrics_counts_quantile(const struct metrics_counts *c, unsigned permille, uint64_t *lower_us,
			    uint64_t *upper_us)
{
	uint64_t n = metrics_counts_responses(c), rank, seen = 0;
	unsigned b;

	if (permille > 1000)
		return -EINVAL;
	if (n == 0)
		return -ENODATA;
	/* ceil(n * permille / 1000) without overflowing n * permille */
	rank = n / 1000 * permille + ((n % 1000) * permille + 999) / 1000;
	if (rank == 0)
		rank = 1;
	for (b = 0; b < METRICS_FINE_BUCKETS - 1; b++) {
		seen += c->fine[b];
		if (seen >= rank)
			break;
	}
	*lower_us = metrics_fine_lower_us(b);
	*upper_us = metrics_fine_upper_us(b);
	return 0;
}

void metrics_upstream_retire(struct metrics *m, const char *service, const char *target)
{
	for (uint32_t i = 0; i < m->nupstreams; i++) {
		struct metrics_upstream *u = m->upstreams[i];
		if (strcmp(u->service, service) == 0 && strcmp(u->target, target) == 0)
			u->retired = true;
	}
}

struct metrics_version *version_find(const struct metrics *m, const char *service, const char *version)
{
	for (uint32_t i = 0; i < m->nversions; i++)
		if (!strcmp(m->versions[i]->service, service) && !strcmp(m->versions[i]->version, version))
			return m->versions[i];
	return NULL;
}

/* Keep what u counted in its version's accumulator.  Returns 0 or -1 (no
 * memory: u must stay, or its version's series would go backwards). */
static int version_keep(struct metrics *m, const struct metrics_upstream *u)
{
	struct metrics_version *v = version_find(m, u->service, u->version);

	if (!v) {
		if (m->nversions == m->capversions) {
			uint32_t cap = m->capversions ? m->capversions * 2 : 8;
			struct metrics_version **n = realloc(m->versions, (size_t)cap * sizeof(*n));
			if (!n)
				return -1;
			m->versions = n;
			m->capversions = cap;
		}
		v = calloc(1, sizeof(*v));
		if (!v || !(v->service = strdup(u->service)) || !(v->version = strdup(u->version))) {
			if (v)
				version_free(v);
			return -1;
		}
		m->versions[m->nversions++] = v;
	}
	metrics_counts_add(&v->gone, &u->counts);
	return 0;
}

struct metrics_service *service_find(const struct metrics *m, const char *service)
{
	for (uint32_t i = 0; i < m->nservices; i++)
		if (!strcmp(m->services[i].service, service))
			return &m->services[i];
	return NULL;
}

/* The entry of SERVICE among the swept upstreams' totals, created (at
 * zero) if needed.  NULL when out of memory. */
static struct metrics_service *service_get(struct metrics *m, const char *service)
{
	struct metrics_service *s = service_find(m, service);

	if (s)
		return s;
	if (m->nservices == m->capservices) {
		uint32_t cap = m->capservices ? m->capservices * 2 : 8;
		struct metrics_service *n = realloc(m->services, (size_t)cap * sizeof(*n));
		if (!n)
			return NULL;
		m->services = n;
		m->capservices = cap;
	}
	s = &m->services[m->nservices];
	*s = (struct metrics_service){ .service = strdup(service) };
	if (!s->service)
		return NULL;
	m->nservices++;
	return s;
}

static bool version_has_upstream(const struct metrics *m, const struct metrics_version *v)
{
	for (uint32_t i = 0; i < m->nupstreams; i++)
		if (m->upstreams[i]->version && !strcmp(m->upstreams[i]->service, v->service) &&
		    !strcmp(m->upstreams[i]->version, v->version))
			return true;
	return false;
}

unsigned metrics_sweep(struct metrics *m, bool (*in_use)(const struct metrics_upstream *u, void *data), void *data)
{
	unsigned gone = 0;

	for (uint32_t i = 0; i < m->nupstreams;) {
		struct metrics_upstream *u = m->upstreams[i];
		struct metrics_service *ms = NULL;

		/* u stays (and is tried again) unless what it counted is kept
		 * whole: its version's series and its service's totals */
		if (!u->retired || in_use(u, data) || (u->counts.shielded && !(ms = service_get(m, u->service))) ||
		    (u->version && version_keep(m, u) < 0)) {
			i++;
			continue;
		}
		if (ms)
			ms->shielded += u->counts.shielded;
		/* its route classes' counts go: the analysis reads live instances only */
		m->upstreams[i] = m->upstreams[--m->nupstreams]; /* order does not matter */
		upstream_free(u);
		gone++;
	}
	/* a version whose last instance went: its series go too */
	for (uint32_t i = 0; i < m->nversions;) {
		if (version_has_upstream(m, m->versions[i])) {
			i++;
			continue;
		}
		version_free(m->versions[i]);
		m->versions[i] = m->versions[--m->nversions];
	}
	return gone;
}

struct metrics_outcomes *metrics_outcomes_get(struct metrics *m, const char *service)
{
	struct metrics_outcomes *o;

	for (uint32_t i = 0; i < m->noutcomes; i++)
		if (!strcmp(m->outcomes[i]->service, service))
			return m->outcomes[i];
	if (m->noutcomes == m->capoutcomes) {
		uint32_t cap = m->capoutcomes ? m->capoutcomes * 2 : 8;
		struct metrics_outcomes **n = realloc(m->outcomes, (size_t)cap * sizeof(*n));
		if (!n)
			return NULL;
		m->outcomes = n;
		m->capoutcomes = cap;
	}
	o = calloc(1, sizeof(*o));
	if (!o || !(o->service = strdup(service))) {
		free(o);
		return NULL;
	}
	m->outcomes[m->noutcomes++] = o;
	return o;
}

void metrics_local_response(struct metrics *m, int status)
{
	if (!m || status < 100 || status > 599)
		return;
	m->local_responses[status]++;
}


void metrics_version_counts(const struct metrics *m, const char *service, const char *version,
			    struct metrics_counts *out)
{
	memset(out, 0, sizeof(*out));
	for (uint32_t i = 0; i < m->nupstreams; i++) {
		const struct metrics_upstream *u = m->upstreams[i];

		if (!strcmp(u->service, service) && (!version || (u->version && !strcmp(u->version, version))))
			metrics_counts_add(out, &u->counts);
	}
	for (uint32_t i = 0; i < m->nversions; i++) {
		const struct metrics_version *v = m->versions[i];

		if (!strcmp(v->service, service) && (!version || !strcmp(v->version, version)))
			metrics_counts_add(out, &v->gone);
	}
}

/* metrics.c - the metrics registry and its Prometheus text exposition.
 *
 * The proxy bumps plain integers in struct metrics / struct metrics_upstream
 * on the event-loop thread; nothing here allocates or formats on that path
 * except metrics_upstream_get() the first time a (service, target) pair is
 * seen.  metrics_render() runs only when /metrics is scraped: it walks the
 * registry and writes the text format (version 0.0.4) into a growable buffer
 * private to this file, one family at a time, so that every family appears
 * exactly once with all its series together.  Process metrics (memory, CPU,
 * open descriptors) are read from /proc and getrusage() at that moment.
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

#include "metrics/metrics.h"

/* Upper bounds of the latency buckets in microseconds, and the same bounds
 * as they appear in the "le" label (seconds).  Kept as text so that the
 * exposition is exact and does not depend on floating-point formatting. */
static const uint64_t latency_bounds_us[METRICS_LATENCY_BUCKETS] = {
	1000, 2500, 5000, 10000, 25000, 50000, 100000,
	250000, 500000, 1000000, 2500000, 5000000, 10000000,
};
static const char *const latency_bounds_label[METRICS_LATENCY_BUCKETS] = {
	"0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
	"0.25", "0.5", "1", "2.5", "5", "10",
};

static const char *const method_labels[METRICS_METHODS] = {
	"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "OTHER",
};
static const char *const status_class_labels[METRICS_STATUS_CLASSES] = {
	"1xx", "2xx", "3xx", "4xx", "5xx",
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

static struct metrics_version *version_find(const struct metrics *m, const char *service, const char *version)
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

static struct metrics_service *service_find(const struct metrics *m, const char *service)
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

void metrics_local_response(struct metrics *m, int status)
{
	if (!m || status < 100 || status > 599)
		return;
	m->local_responses[status]++;
}

/*
 * Rendering.
 */

/* Growable output buffer.  Appends after a failed allocation are no-ops;
 * the failure is reported once, by out_finish(). */
struct out {
	char *data;
	size_t len;
	size_t cap;
	bool failed;
};

/* Ensure room for n more bytes plus a terminating NUL. */
static bool out_reserve(struct out *o, size_t n)
{
	if (o->failed)
		return false;
	if (n < o->cap - o->len)
		return true;
	size_t cap = o->cap ? o->cap : 4096;
	while (n >= cap - o->len) {
		if (cap > SIZE_MAX / 2)
			goto fail;
		cap *= 2;
	}
	char *p = realloc(o->data, cap);
	if (!p)
		goto fail;
	o->data = p;
	o->cap = cap;
	return true;
fail:
	o->failed = true;
	return false;
}

static void out_append(struct out *o, const char *s, size_t n)
{
	if (!out_reserve(o, n))
		return;
	memcpy(o->data + o->len, s, n);
	o->len += n;
	o->data[o->len] = '\0';
}

static void out_puts(struct out *o, const char *s)
{
	out_append(o, s, strlen(s));
}

static void out_printf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_printf(struct out *o, const char *fmt, ...)
{
	va_list ap;
	char small[256];

	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		o->failed = true;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		out_append(o, small, (size_t)n);
		return;
	}
	if (!out_reserve(o, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(o->data + o->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	o->len += (size_t)n;
}

/* Append a label value escaped per the text format: backslash, double
 * quote and line feed become \\, \" and \n. */
static void out_label_value(struct out *o, const char *s)
{
	const char *run = s;
	for (; *s; s++) {
		const char *esc;
		switch (*s) {
		case '\\': esc = "\\\\"; break;
		case '"': esc = "\\\""; break;
		case '\n': esc = "\\n"; break;
		default: continue;
		}
		out_append(o, run, (size_t)(s - run));
		out_append(o, esc, 2);
		run = s + 1;
	}
	out_append(o, run, (size_t)(s - run));
}

/* Append a duration given in microseconds as exact decimal seconds, without
 * trailing zeros ("0", "0.0015", "12.25"). */
static void out_seconds_us(struct out *o, uint64_t us)
{
	uint64_t whole = us / 1000000, frac = us % 1000000;
	if (frac == 0) {
		out_printf(o, "%" PRIu64, whole);
		return;
	}
	char digits[8];
	snprintf(digits, sizeof(digits), "%06" PRIu64, frac);
	size_t n = 6;
	while (digits[n - 1] == '0')
		n--;
	digits[n] = '\0';
	out_printf(o, "%" PRIu64 ".%s", whole, digits);
}

static void out_family(struct out *o, const char *name, const char *type, const char *help)
{
	out_printf(o, "# HELP cutover_%s %s\n# TYPE cutover_%s %s\n", name, help, name, type);
}

/* Append `cutover_<name>{service="...",target="..."` (no closing brace) so
 * that callers can add more labels; a managed instance also gets
 * version="..." before its target. */
static void out_upstream_labels_open(struct out *o, const char *name, const struct metrics_upstream *u)
{
	out_printf(o, "cutover_%s{service=\"", name);
	out_label_value(o, u->service);
	if (u->version) {
		out_puts(o, "\",version=\"");
		out_label_value(o, u->version);
	}
	out_puts(o, "\",target=\"");
	out_label_value(o, u->target);
	out_puts(o, "\"");
}

/* One series of requests and latencies: an unmanaged target, or a managed
 * version with its instances summed. */
struct request_series {
	const char *service;
	const char *label;                              /* "target" or "version" */
	const char *value;
	struct metrics_counts counts;
};

/* The request series of upstream i, or false when it belongs to a
 * version whose series an earlier upstream gives (each version once, its
 * instances summed, with what its swept instances had counted). */
static bool request_series_of(const struct metrics *m, uint32_t i, struct request_series *rs)
{
	const struct metrics_upstream *u = m->upstreams[i];
	const struct metrics_version *v;

	rs->service = u->service;
	if (!u->version) {
		rs->label = "target";
		rs->value = u->target;
		rs->counts = u->counts;
		return true;
	}
	for (uint32_t j = 0; j < i; j++)
		if (m->upstreams[j]->version && !strcmp(m->upstreams[j]->service, u->service) &&
		    !strcmp(m->upstreams[j]->version, u->version))
			return false;
	rs->label = "version";
	rs->value = u->version;
	v = version_find(m, u->service, u->version);
	if (v)
		rs->counts = v->gone;
	else
		memset(&rs->counts, 0, sizeof(rs->counts));
	for (uint32_t j = i; j < m->nupstreams; j++)
		if (m->upstreams[j]->version && !strcmp(m->upstreams[j]->service, u->service) &&
		    !strcmp(m->upstreams[j]->version, u->version))
			metrics_counts_add(&rs->counts, &m->upstreams[j]->counts);
	return true;
}

static void out_series_open(struct out *o, const char *name, const struct request_series *rs)
{
	out_printf(o, "cutover_%s{service=\"", name);
	out_label_value(o, rs->service);
	out_printf(o, "\",%s=\"", rs->label);
	out_label_value(o, rs->value);
	out_puts(o, "\"");
}

static void out_upstream_u64(struct out *o, const char *name, const struct metrics_upstream *u, uint64_t v)
{
	out_upstream_labels_open(o, name, u);
	out_printf(o, "} %" PRIu64 "\n", v);
}

static void out_upstream_i64(struct out *o, const char *name, const struct metrics_upstream *u, int64_t v)
{
	out_upstream_labels_open(o, name, u);
	out_printf(o, "} %" PRId64 "\n", v);
}

static void render_requests(struct out *o, const struct metrics *m, struct request_series *rs)
{
	out_family(o, "requests_total", "counter",
		   "Requests proxied to an upstream target (a managed service: to a version), by method and status class.");
	for (uint32_t i = 0; i < m->nupstreams; i++) {
		if (!request_series_of(m, i, rs))
			continue;
		for (unsigned me = 0; me < METRICS_METHODS; me++)
			for (unsigned c = 0; c < METRICS_STATUS_CLASSES; c++) {
				if (!rs->counts.requests[me][c])
					continue;
				out_series_open(o, "requests_total", rs);
				out_printf(o, ",method=\"%s\",status=\"%s\"} %" PRIu64 "\n",
					   method_labels[me], status_class_labels[c], rs->counts.requests[me][c]);
			}
	}
}

static void render_latency(struct out *o, const struct metrics *m, struct request_series *rs)
{
	out_family(o, "request_duration_seconds", "histogram",
		   "Time from the start of a request to the end of its response.");
	for (uint32_t i = 0; i < m->nupstreams; i++) {
		if (!request_series_of(m, i, rs))
			continue;
		const struct metrics_histogram *h = &rs->counts.latency;
		uint64_t cumulative = 0;
		for (unsigned b = 0; b <= METRICS_LATENCY_BUCKETS; b++) {
			cumulative += h->buckets[b];
			out_series_open(o, "request_duration_seconds_bucket", rs);
			out_printf(o, ",le=\"%s\"} %" PRIu64 "\n",
				   b < METRICS_LATENCY_BUCKETS ? latency_bounds_label[b] : "+Inf", cumulative);
		}
		out_series_open(o, "request_duration_seconds_sum", rs);
		out_puts(o, "} ");
		out_seconds_us(o, h->sum_us);
		out_puts(o, "\n");
		/* The +Inf bucket and _count must agree; both come from the
		 * buckets, which observe() keeps equal to h->count. */
		out_series_open(o, "request_duration_seconds_count", rs);
		out_printf(o, "} %" PRIu64 "\n", cumulative);
	}
}

static void render_upstreams(struct out *o, const struct metrics *m)
{
	out_family(o, "upstream_connect_failures_total", "counter",
		   "Failed connection attempts to an upstream target (refused, unreachable, timed out).");
	for (uint32_t i = 0; i < m->nupstreams; i++)
		out_upstream_u64(o, "upstream_connect_failures_total", m->upstreams[i],
				 m->upstreams[i]->counts.connect_failures);

	out_family(o, "upstream_retries_total", "counter",
		   "Requests moved to another target after a failure at this target.");
	for (uint32_t i = 0; i < m->nupstreams; i++)
		out_upstream_u64(o, "upstream_retries_total", m->upstreams[i], m->upstreams[i]->counts.retries);

	out_family(o, "upstream_connections", "gauge",
		   "Open connections to an upstream target, busy and idle.");
	for (uint32_t i = 0; i < m->nupstreams; i++)
		out_upstream_i64(o, "upstream_connections", m->upstreams[i], m->upstreams[i]->open_connections);

	out_family(o, "upstream_idle_connections", "gauge",
		   "Idle connections to an upstream target kept in the pool.");
	for (uint32_t i = 0; i < m->nupstreams; i++)
		out_upstream_i64(o, "upstream_idle_connections", m->upstreams[i], m->upstreams[i]->idle_connections);
}

static void out_service_u64(struct out *o, const char *name, const char *service, uint64_t v)
{
	out_printf(o, "cutover_%s{service=\"", name);
	out_label_value(o, service);
	out_printf(o, "\"} %" PRIu64 "\n", v);
}

/* The families summed per service: one series for each service with a
 * known upstream or a swept one's totals, its upstreams' counts plus what
 * the swept ones had counted. */
static void render_services(struct out *o, const struct metrics *m)
{
	out_family(o, "requests_retried_on_stable_total", "counter",
		   "Safe requests that failed on a canary version and were retried on the stable version.");
	for (uint32_t i = 0; i < m->nupstreams; i++) {
		const char *service = m->upstreams[i]->service;
		const struct metrics_service *gone = service_find(m, service);
		uint64_t total = gone ? gone->shielded : 0;
		bool first = true;

		for (uint32_t j = 0; j < i && first; j++)
			first = strcmp(m->upstreams[j]->service, service) != 0;
		if (!first)
			continue;
		for (uint32_t j = i; j < m->nupstreams; j++)
			if (!strcmp(m->upstreams[j]->service, service))
				total += m->upstreams[j]->counts.shielded;
		out_service_u64(o, "requests_retried_on_stable_total", service, total);
	}
	for (uint32_t i = 0; i < m->nservices; i++) {
		bool live = false;

		for (uint32_t j = 0; j < m->nupstreams && !live; j++)
			live = !strcmp(m->upstreams[j]->service, m->services[i].service);
		if (!live)
			out_service_u64(o, "requests_retried_on_stable_total", m->services[i].service,
					m->services[i].shielded);
	}
}

static void render_proxy(struct out *o, const struct metrics *m)
{
	out_family(o, "requests_in_flight", "gauge", "Requests accepted and not yet finished.");
	out_printf(o, "cutover_requests_in_flight %" PRId64 "\n", m->in_flight);

	out_family(o, "client_connections", "gauge", "Open client connections.");
	out_printf(o, "cutover_client_connections %" PRId64 "\n", m->client_connections);

	out_family(o, "client_connections_accepted_total", "counter", "Client connections accepted since start.");
	out_printf(o, "cutover_client_connections_accepted_total %" PRIu64 "\n", m->client_connections_total);

	out_family(o, "local_responses_total", "counter",
		   "Responses the proxy produced itself, without an upstream, by status code.");
	for (int s = 100; s < METRICS_LOCAL_STATUS_MAX; s++)
		if (m->local_responses[s])
			out_printf(o, "cutover_local_responses_total{status=\"%d\"} %" PRIu64 "\n",
				   s, m->local_responses[s]);

	out_family(o, "config_reloads_total", "counter", "Configuration reloads, by result.");
	out_printf(o, "cutover_config_reloads_total{result=\"success\"} %" PRIu64 "\n", m->config_reloads);
	out_printf(o, "cutover_config_reloads_total{result=\"failure\"} %" PRIu64 "\n", m->config_reload_failures);
}

/* Resident set size in bytes from /proc/self/statm.  Returns 0 or -1. */
static int read_resident_bytes(uint64_t *ret)
{
	unsigned long long size, resident;
	long page = sysconf(_SC_PAGESIZE);
	FILE *f = fopen("/proc/self/statm", "re");
	int r = -1;

	if (!f)
		return -1;
	if (page > 0 && fscanf(f, "%llu %llu", &size, &resident) == 2) {
		*ret = (uint64_t)resident * (uint64_t)page;
		r = 0;
	}
	fclose(f);
	return r;
}

/* Number of open file descriptors, not counting the one used to list them.
 * Returns 0 or -1. */
static int count_open_fds(uint64_t *ret)
{
	DIR *d = opendir("/proc/self/fd");
	uint64_t n = 0;
	struct dirent *e;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	*ret = n ? n - 1 : 0;
	return 0;
}

/* Families that cannot be read on this system are left out entirely. */
static void render_process(struct out *o, const struct metrics *m)
{
	uint64_t v;
	struct rusage ru;

	out_family(o, "process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch, in seconds.");
	out_printf(o, "cutover_process_start_time_seconds %" PRIu64 "\n", m->start_time_unix);

	if (read_resident_bytes(&v) == 0) {
		out_family(o, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
		out_printf(o, "cutover_process_resident_memory_bytes %" PRIu64 "\n", v);
	}

	if (getrusage(RUSAGE_SELF, &ru) == 0) {
		uint64_t us = (uint64_t)ru.ru_utime.tv_sec * 1000000 + (uint64_t)ru.ru_utime.tv_usec
			    + (uint64_t)ru.ru_stime.tv_sec * 1000000 + (uint64_t)ru.ru_stime.tv_usec;
		out_family(o, "process_cpu_seconds_total", "counter", "User and system CPU time spent, in seconds.");
		out_puts(o, "cutover_process_cpu_seconds_total ");
		out_seconds_us(o, us);
		out_puts(o, "\n");
	}

	if (count_open_fds(&v) == 0) {
		out_family(o, "process_open_fds", "gauge", "Open file descriptors.");
		out_printf(o, "cutover_process_open_fds %" PRIu64 "\n", v);
	}
}

char *metrics_render(const struct metrics *m, size_t *len)
{
	struct out o = { 0 };
	struct request_series *rs = malloc(sizeof(*rs)); /* 4 KiB of counts: not on the stack */

	if (!rs)
		return NULL;
	render_requests(&o, m, rs);
	render_latency(&o, m, rs);
	free(rs);
	render_upstreams(&o, m);
	render_services(&o, m);
	render_proxy(&o, m);
	render_process(&o, m);

	if (o.failed) {
		free(o.data);
		return NULL;
	}
	if (len)
		*len = o.len;
	return o.data;
}

/* render.c - the Prometheus text exposition of the metrics registry.
 *
 * metrics_render() runs only when /metrics is scraped: it walks the
 * registry and writes the text format (version 0.0.4) into a growable
 * buffer private to this file, one family at a time, so that every family
 * appears exactly once with all its series together.  Process metrics
 * (memory, CPU, open descriptors) are read from /proc and getrusage() at
 * that moment.
 */
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

/* The latency buckets' upper bounds as they appear in the "le" label
 * (seconds).  Kept as text so that the exposition is exact and does not
 * depend on floating-point formatting. */
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

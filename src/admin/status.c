/* status.c - the status page's data: GET /v1/history, /v1/uptime and
 * /v1/deployments (docs/api.md), and the timer that feeds the first two.
 *
 * Every METRICS_HISTORY_INTERVAL_MS, on wall-clock multiples of it, the
 * timer samples the proxy's own counters (metrics/history.h): one point per
 * running version for the charts, and each service's requests and failures
 * into its current minute.  A minute that is over goes to the state worker,
 * which adds it to traffic_minutes and deletes what is older than eight
 * days; the daemon hands the minute in progress over too before it stops
 * (admin_status_flush), so a restart loses nothing it counted.
 *
 * /v1/history is answered from memory.  /v1/uptime and /v1/deployments
 * read SQLite, so a job on the state worker answers them: the connection
 * waits (c->waiting: admin_reap keeps it) until the job's done() runs on
 * the loop.  Jobs run in order, so the minutes queued before a read are
 * stored before it reads, and what the read adds from memory (the minute
 * counted and not queued yet) is never counted twice.  Without a state
 * (no managed service, `cutover proxy`) the uptime is what the proxy
 * counted since it started, and there are no deployments.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "admin/admin-internal.h"
#include "admin/admin.h"
#include "base/list.h"
#include "base/log.h"
#include "base/util.h"
#include "loop/loop.h"
#include "loop/worker.h"
#include "metrics/history.h"
#include "metrics/metrics.h"
#include "proxy/proxy-t.h"
#include "state/state.h"

#define MINUTE_MS 60000
#define KEEP_MINUTES (8 * 24 * 60)          /* traffic_minutes: eight days */
#define SPLIT_WINDOW_MS 30000               /* "measured": the share over the last 30 s */
#define DEPLOYMENTS_DEFAULT 20
#define DEPLOYMENTS_MAX 200

static const struct {
	const char *name;
	int64_t minutes;
} windows[] = { { "24h", 24 * 60 }, { "7d", 7 * 24 * 60 } };
#define NWINDOWS (sizeof(windows) / sizeof(windows[0]))

/* ---- storing the minutes ---------------------------------------------------- */

struct flush_job {
	struct admin *a;
	struct state *st;
	struct metrics_minute *rows;
	size_t n;
	int64_t keep_from;
	int rc;
};

static void flush_work(void *data)
{
	struct flush_job *j = data;
	struct state_traffic_minute *rows = calloc(j->n ? j->n : 1, sizeof(*rows));

	if (!rows) {
		j->rc = -ENOMEM;
		return;
	}
	for (size_t i = 0; i < j->n; i++)
		rows[i] = (struct state_traffic_minute){ j->rows[i].service, j->rows[i].minute, j->rows[i].requests,
							 j->rows[i].failed };
	j->rc = state_traffic_add(j->st, rows, j->n, j->keep_from);
	free(rows);
}

static void flush_done(void *data)
{
	struct flush_job *j = data;

	/* said once, then again only after it worked in between */
	if (j->rc < 0 && !j->a->flush_failed)
		log_warn("cannot store the traffic of the last minute (uptime figures): %s; it is missing from them",
			 strerror(-j->rc));
	j->a->flush_failed = j->rc < 0;
	metrics_minutes_free(j->rows, j->n);
	free(j);
}

/* Queue ROWS[0..n) (taken) for the state; dropped when there is none. */
static void flush_rows(struct admin *a, struct metrics_minute *rows, size_t n, int64_t minute)
{
	struct flush_job *j;

	if (!n)
		return;
	if (!a->worker || !(j = calloc(1, sizeof(*j)))) {
		metrics_minutes_free(rows, n);
		return;
	}
	*j = (struct flush_job){ .a = a, .st = a->state, .rows = rows, .n = n, .keep_from = minute - KEEP_MINUTES };
	if (worker_submit(a->worker, flush_work, flush_done, j) < 0) {
		metrics_minutes_free(rows, n);
		free(j);
	}
}

void admin_status_flush(struct admin *a)
{
	struct metrics_minute *rows = NULL;
	int64_t minute = state_now_ms() / MINUTE_MS;
	ssize_t n;

	if (!a->worker)
		return;
	/* the minutes over, then the one in progress */
	n = metrics_uptime_sample(&a->uptime, &a->proxy->metrics, minute, &rows);
	if (n > 0)
		flush_rows(a, rows, (size_t)n, minute);
	n = metrics_uptime_take(&a->uptime, &rows);
	if (n > 0)
		flush_rows(a, rows, (size_t)n, minute);
}

/* ---- the timer ---------------------------------------------------------------- */

/* The loop's deadline of the first wall-clock multiple of the interval
 * after AFTER (Unix ms). */
static uint64_t next_tick(int64_t after)
{
	int64_t target = (after / METRICS_HISTORY_INTERVAL_MS + 1) * METRICS_HISTORY_INTERVAL_MS, now = state_now_ms();

	return time_now_ms() + (uint64_t)(target > now ? target - now : 0);
}

static void status_tick(struct loop *loop, struct loop_timer *t)
{
	struct admin *a = container_of(t, struct admin, status_timer);
	int64_t now = state_now_ms(), at = (now + METRICS_HISTORY_INTERVAL_MS / 2) / METRICS_HISTORY_INTERVAL_MS *
				       METRICS_HISTORY_INTERVAL_MS;
	/* the interval that ends at AT belongs to the minute it lies in */
	int64_t minute = (at - 1) / MINUTE_MS;
	struct metrics_minute *rows = NULL;
	ssize_t n;

	if (at > a->history.last_ms) { /* (once per interval, early timer or not) */
		metrics_history_sample(&a->history, &a->proxy->metrics, at, time_now_ms());
		n = metrics_uptime_sample(&a->uptime, &a->proxy->metrics, minute, &rows);
		if (n > 0)
			flush_rows(a, rows, (size_t)n, minute);
	}
	loop_timer_set(loop, t, next_tick(at > now ? at : now), status_tick);
}

void admin_status_start(struct admin *a)
{
	metrics_history_init(&a->history);
	metrics_uptime_init(&a->uptime);
	loop_timer_set(a->loop, &a->status_timer, next_tick(state_now_ms()), status_tick);
}

void admin_status_release(struct admin *a)
{
	loop_timer_cancel(a->loop, &a->status_timer);
	metrics_history_release(&a->history);
	metrics_uptime_release(&a->uptime);
}

/* ---- GET /v1/history ---------------------------------------------------------- */

static json_t *ms_or_null(bool has, uint64_t us)
{
	return has ? json_real((double)us / 1000.0) : json_null();
}

static json_t *point_json(const struct metrics_history_point *p)
{
	double seconds = p->interval_ms ? p->interval_ms / 1000.0 : METRICS_HISTORY_INTERVAL_MS / 1000.0;

	return json_pack("{s:I, s:f, s:o, s:o, s:o, s:I, s:I}", "t", (json_int_t)p->t_ms, "rps",
			 (double)p->requests / seconds, "error_rate",
			 p->requests ? json_real((double)p->errors / (double)p->requests) : json_null(), "p50_ms",
			 ms_or_null(p->has_latency, p->p50_us), "p99_ms", ms_or_null(p->has_latency, p->p99_us),
			 "requests", (json_int_t)p->requests, "errors", (json_int_t)p->errors);
}

static bool same_version(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

/* Requests of SERVICE's version VERSION (any version: ALL) in the last 30 s. */
static uint64_t recent_requests(const struct metrics_history *h, const char *service, const char *version, bool all)
{
	/* the points of the last 30 s: their ends after (last sample - 30 s),
	 * with half an interval to spare for a late timer */
	int64_t since = h->last_ms - SPLIT_WINDOW_MS + METRICS_HISTORY_INTERVAL_MS / 2;
	uint64_t n = 0;

	for (uint32_t i = 0; i < h->nseries; i++) {
		const struct metrics_history_series *s = h->series[i];
		if (!strcmp(s->service, service) && (all || same_version(s->version, version)))
			n += metrics_history_requests_since(s, since);
	}
	return n;
}

static json_t *split_entry(const struct metrics_history *h, const char *service, const char *version, double set)
{
	uint64_t total = recent_requests(h, service, NULL, true), mine = recent_requests(h, service, version, false);

	return json_pack("{s:s, s:s?, s:f, s:o}", "service", service, "version", version, "set", set, "measured",
			 total ? json_real(100.0 * (double)mine / (double)total) : json_null());
}

/* Per service of the routing table, each version group with the share of
 * new requests it is set to get, and the share it got over the last 30 s;
 * then the versions that got requests without being in the table any more
 * (an old version finishing its requests): set 0. */
static json_t *split_json(const struct admin *a)
{
	const struct route_table *rt = a->proxy->routes;
	const struct metrics_history *h = &a->history;
	json_t *split = json_array();

	for (size_t i = 0; rt && i < rt->nservices; i++) {
		const struct route_service *s = rt->services[i];
		for (uint32_t g = 0; g < s->ngroups; g++)
			json_array_append_new(split, split_entry(h, s->name, s->groups[g].version,
								 s->total_weight ? 100.0 * s->groups[g].weight /
											 s->total_weight
										 : 0.0));
		for (uint32_t k = 0; k < h->nseries; k++) {
			const struct metrics_history_series *hs = h->series[k];
			bool listed = false;
			if (strcmp(hs->service, s->name))
				continue;
			for (uint32_t g = 0; g < s->ngroups && !listed; g++)
				listed = same_version(s->groups[g].version, hs->version);
			if (!listed && recent_requests(h, s->name, hs->version, false))
				json_array_append_new(split, split_entry(h, s->name, hs->version, 0.0));
		}
	}
	return split;
}

static void history_answer(struct admin_conn *c, const char *query)
{
	const struct metrics_history *h = &c->admin->history;
	json_t *series = json_array();
	char value[32], *end;
	long long since = 0;

	if (admin_query_param(query, "since", value, sizeof(value))) {
		since = strtoll(value, &end, 10);
		if (*end || end == value || since < 0) {
			admin_conn_respond_json(c, 400, json_pack("{s:s}", "error",
								  "since: expected a time in Unix milliseconds"));
			json_decref(series);
			return;
		}
	}
	for (uint32_t i = 0; i < h->nseries; i++) {
		const struct metrics_history_series *s = h->series[i];
		json_t *points = json_array();
		for (uint32_t k = 0; k < s->n; k++) {
			const struct metrics_history_point *p = metrics_history_point(s, k);
			if (p->t_ms > since)
				json_array_append_new(points, point_json(p));
		}
		json_array_append_new(series, json_pack("{s:s, s:s?, s:o}", "service", s->service, "version",
							s->version, "points", points));
	}
	admin_conn_respond_json(c, 200, json_pack("{s:i, s:I, s:o, s:o}", "interval_s",
						  METRICS_HISTORY_INTERVAL_MS / 1000, "now", (json_int_t)state_now_ms(),
						  "series", series, "split", split_json(c->admin)));
}

/* ---- GET /v1/uptime ------------------------------------------------------------- */

struct uptime_service {
	char *name;
	int64_t pending_minute;            /* what memory holds and the state does not (0: none) */
	uint64_t pending_requests, pending_failed;
	uint64_t requests[NWINDOWS], failed[NWINDOWS];
};

struct read_job {
	struct admin_conn *c;
	struct state *st;
	int64_t minute;                    /* uptime: now */
	struct uptime_service *services;
	size_t n;
	struct state_log_filter filter;    /* deployments */
	char service[128];
	json_t *result;
	int rc;
};

static void read_job_free(struct read_job *j)
{
	for (size_t i = 0; i < j->n; i++)
		free(j->services[i].name);
	free(j->services);
	json_decref(j->result);
	free(j);
}

static void uptime_work(void *data)
{
	struct read_job *j = data;

	for (size_t i = 0; i < j->n && j->rc == 0; i++)
		for (size_t w = 0; w < NWINDOWS && j->rc == 0; w++)
			j->rc = state_traffic_sum(j->st, j->services[i].name, j->minute - windows[w].minutes + 1,
						  j->minute, &j->services[i].requests[w], &j->services[i].failed[w]);
}

static json_t *uptime_json(const struct read_job *j)
{
	json_t *services = json_array();

	for (size_t i = 0; i < j->n; i++) {
		const struct uptime_service *s = &j->services[i];
		json_t *list = json_array();
		for (size_t w = 0; w < NWINDOWS; w++) {
			uint64_t requests = s->requests[w], failed = s->failed[w];
			if (s->pending_minute > j->minute - windows[w].minutes) {
				requests += s->pending_requests;
				failed += s->pending_failed;
			}
			json_array_append_new(list, json_pack("{s:s, s:I, s:I, s:o}", "window", windows[w].name,
							      "requests", (json_int_t)requests, "failed",
							      (json_int_t)failed, "availability",
							      requests ? json_real(1.0 - (double)failed / (double)requests)
								       : json_null()));
		}
		json_array_append_new(services, json_pack("{s:s, s:o}", "service", s->name, "windows", list));
	}
	return json_pack("{s:o}", "services", services);
}

static void read_done(void *data)
{
	struct read_job *j = data;
	struct admin_conn *c = j->c;

	c->waiting = false;
	if (!c->closed) {
		if (j->rc < 0)
			admin_conn_respond_json(c, 500, json_pack("{s:s, s:s}", "error", "the state cannot be read",
								  "cause", strerror(-j->rc)));
		else if (j->services || !j->result)
			admin_conn_respond_json(c, 200, uptime_json(j));
		else
			admin_conn_respond_json(c, 200, json_incref(j->result));
		admin_conn_flush(c);
	}
	read_job_free(j);
}

/* Queue J for the worker (WORK, then read_done on the loop); the answer
 * waits for it.  Returns false (J freed) when it cannot be queued. */
static bool read_submit(struct admin_conn *c, struct read_job *j, void (*work)(void *))
{
	j->c = c;
	j->st = c->admin->state;
	if (worker_submit(c->admin->worker, work, read_done, j) < 0) {
		read_job_free(j);
		return false;
	}
	c->waiting = true;
	c->answered = true;
	return true;
}

static void uptime_answer(struct admin_conn *c)
{
	struct admin *a = c->admin;
	const struct route_table *rt = a->proxy->routes;
	size_t n = rt ? rt->nservices : 0;
	struct read_job *j = calloc(1, sizeof(*j));

	if (!j || !(j->services = calloc(n ? n : 1, sizeof(*j->services)))) {
		free(j);
		admin_conn_respond_json(c, 500, json_pack("{s:s}", "error", "out of memory"));
		return;
	}
	j->minute = state_now_ms() / MINUTE_MS;
	for (size_t i = 0; i < n; i++) {
		struct uptime_service *s = &j->services[j->n];
		const struct metrics_outcomes *o = rt->services[i]->outcomes;
		if (!(s->name = strdup(rt->services[i]->name)))
			continue;
		j->n++;
		if (!a->worker) { /* no state: what the proxy counted since it started */
			s->pending_minute = j->minute;
			s->pending_requests = o ? o->requests : 0;
			s->pending_failed = o ? o->failed : 0;
			continue;
		}
		if (!metrics_uptime_pending(&a->uptime, s->name, &s->pending_minute, &s->pending_requests,
					    &s->pending_failed))
			s->pending_minute = 0;
		/* what the proxy counted since the last sample: in no minute yet */
		if (o && o->requests) {
			const struct metrics_uptime_service *e = NULL;
			for (uint32_t k = 0; k < a->uptime.nservices && !e; k++)
				if (!strcmp(a->uptime.services[k].service, s->name))
					e = &a->uptime.services[k];
			s->pending_requests += o->requests - (e ? e->seen_requests : 0);
			s->pending_failed += o->failed - (e ? e->seen_failed : 0);
			if (!s->pending_minute)
				s->pending_minute = j->minute;
		}
	}
	if (!a->worker) {
		j->c = c;
		c->waiting = true;
		read_done(j);
		return;
	}
	if (!read_submit(c, j, uptime_work))
		admin_conn_respond_json(c, 503, json_pack("{s:s}", "error", "the state worker cannot take the read"));
}

/* ---- GET /v1/deployments --------------------------------------------------------- */

/* A deployment as state_history() gives it, in the status page's shape:
 * its phases with how long each lasted (the last one of a deployment in
 * flight: so far; of a finished one: 0). */
static json_t *deployment_json(json_t *d, int64_t now)
{
	json_t *events = json_object_get(d, "events"), *phases = json_array();
	bool finished = !json_is_null(json_object_get(d, "finished_at"));
	size_t n = json_array_size(events);

	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(events, i);
		int64_t at = json_integer_value(json_object_get(e, "at"));
		int64_t next = i + 1 < n ? json_integer_value(json_object_get(json_array_get(events, i + 1), "at"))
					 : finished ? at : now;
		json_array_append_new(phases, json_pack("{s:O, s:I, s:I, s:O}", "phase", json_object_get(e, "to_state"),
							"at", (json_int_t)at, "duration_ms",
							(json_int_t)(next > at ? next - at : 0), "detail",
							json_object_get(e, "detail")));
	}
	return json_pack("{s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:o}", "id",
			 json_object_get(d, "id"), "service", json_object_get(d, "service"), "from",
			 json_object_get(d, "from_version"), "to", json_object_get(d, "to_version"), "kind",
			 json_object_get(d, "kind"), "strategy", json_object_get(d, "strategy"), "state",
			 json_object_get(d, "state"), "reason", json_object_get(d, "reason"), "started_at",
			 json_object_get(d, "started_at"), "finished_at", json_object_get(d, "finished_at"),
			 "duration_ms", json_object_get(d, "duration_ms"), "release_id",
			 json_object_get(d, "release_id"), "phases", phases);
}

static void deployments_work(void *data)
{
	struct read_job *j = data;
	json_t *rows = NULL, *list;
	int64_t now = state_now_ms();

	j->rc = state_history(j->st, &j->filter, &rows);
	if (j->rc < 0)
		return;
	list = json_array();
	for (size_t i = 0; list && i < json_array_size(rows); i++) {
		json_t *d = deployment_json(json_array_get(rows, i), now);
		if (!d || json_array_append_new(list, d) < 0) {
			json_decref(list);
			list = NULL;
		}
	}
	json_decref(rows);
	j->result = list ? json_pack("{s:o}", "deployments", list) : NULL;
	if (!j->result)
		j->rc = -ENOMEM;
}

static void deployments_answer(struct admin_conn *c, const char *query)
{
	char value[32], *end;
	long limit = DEPLOYMENTS_DEFAULT;
	struct read_job *j;

	if (admin_query_param(query, "limit", value, sizeof(value))) {
		limit = strtol(value, &end, 10);
		if (*end || end == value || limit < 1 || limit > DEPLOYMENTS_MAX) {
			admin_conn_respond_json(c, 400, json_pack("{s:s}", "error", "limit: expected an integer 1..200"));
			return;
		}
	}
	if (!c->admin->worker) {
		admin_conn_respond_json(c, 200, json_pack("{s:[]}", "deployments"));
		return;
	}
	if (!(j = calloc(1, sizeof(*j)))) {
		admin_conn_respond_json(c, 500, json_pack("{s:s}", "error", "out of memory"));
		return;
	}
	j->filter.limit = (size_t)limit;
	if (admin_query_param(query, "service", j->service, sizeof(j->service)))
		j->filter.service = j->service;
	if (!read_submit(c, j, deployments_work))
		admin_conn_respond_json(c, 503, json_pack("{s:s}", "error", "the state worker cannot take the read"));
}

bool admin_status_route(struct admin_conn *c, const char *path, size_t path_len, const char *query)
{
#define IS(lit) (path_len == sizeof(lit) - 1 && !memcmp(path, lit, path_len))
	if (IS("/v1/history"))
		history_answer(c, query);
	else if (IS("/v1/uptime"))
		uptime_answer(c);
	else if (IS("/v1/deployments"))
		deployments_answer(c, query);
	else
		return false;
	return true;
#undef IS
}

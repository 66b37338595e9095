/* run-gates.c - the quality gates of a release as it runs, and the
 * requests each service and version answered during it.
 *
 * A gate runs at its point (before the groups, after a group, after the
 * last one), one at a time.  A command gate runs as a supervised one-shot
 * process in the release file's directory, its output in
 * STATE_DIR/releases/ID/gate-NAME.log, then gate_judge_command() reads
 * what it left.  A metric gate reads the proxy's own counters: over a
 * window from the gate's start (two snapshots, per version), or,
 * `during: canary`, what the version answered during this release.  A
 * failed gate rolls the release back; every result goes to the report
 * with its figures.
 *
 * The traffic is sampled every second: per service of the release and per
 * version seen, what its counters gained since the last sample.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/log.h"
#include "deploy/deploy.h"
#include "loop/loop.h"
#include "loop/worker.h"
#include "metrics/metrics.h"
#include "proxy/proxy-t.h"
#include "release/gate.h"
#include "release/release-internal.h"
#include "state/state.h"
#include "supervisor/supervisor.h"

static const char *point_name(const struct run *run, enum release_gate_when when, char *buf, size_t len)
{
	if (when == GATE_BEFORE)
		return "before";
	if (when == GATE_AFTER)
		return "after";
	snprintf(buf, len, "after group %zu", run->group + 1);
	return buf;
}

/* Does gate g run at point `when` (for the group that just ended)? */
static bool gate_here(const struct run *run, const struct release_gate *g, enum release_gate_when when)
{
	const struct release_plan *p = run->plan;

	if (when != GATE_AFTER_GROUP)
		return g->when == when;
	if (g->when == GATE_BETWEEN)
		return run->group + 1 < p->ngroups;
	if (g->when != GATE_AFTER_GROUP)
		return false;
	for (size_t k = p->group_start[run->group]; k < p->group_start[run->group + 1]; k++)
		if (!strcmp(p->file->items[p->order[k]].name, g->after))
			return true;
	return false;
}

/* The gate that just ended: recorded, then on, or the rollback. */
static void gate_end(struct run *run, enum release_gate_when when)
{
	const struct release_gate *g = &run->plan->file->gates[run->gate];
	struct gate_result *r = &run->gate_result;
	json_t *j = gate_result_json(g, r);
	char buf[32];
	const char *point = point_name(run, when, buf, sizeof(buf));

	if (j) {
		json_object_set_new(j, "point", json_string(point));
		json_array_append_new(run->gates, j);
	}
	run_log(run, "gate %s (%s) %s: %s", g->name, point, r->passed ? "passed" : "failed", r->reason);
	run_emit(run, "step", r->reason, NULL);
	run->next_gate = run->gate + 1;
	run->gate = SIZE_MAX;
	if (!r->passed) {
		run_rollback(run, "gate %s failed: %s", g->name, r->reason);
		return;
	}
	run_persist(run);
	run_advance(run);
}

/* ---- command gates -------------------------------------------------------------------- */

static enum release_gate_when gate_point(const struct run *run)
{
	return run->phase == PHASE_BEFORE ? GATE_BEFORE : run->phase == PHASE_AFTER ? GATE_AFTER : GATE_AFTER_GROUP;
}

/* Reading what a gate's command left may mean megabytes of output or
 * XML: done on the state worker, never on the loop.  The job owns copies
 * of what it reads; its end finds the run by id (an abort may have ended
 * it meanwhile: then the verdict is dropped). */
struct judge_job {
	struct release_runner *rr;
	int64_t run_id;
	struct release_gate g;        /* strings copied */
	char *dir, *log_path;
	struct gate_result r;
};

static void judge_job_free(struct judge_job *j)
{
	free(j->g.name);
	free(j->g.run);
	free(j->g.file);
	free(j->dir);
	free(j->log_path);
	free(j);
}

static void judge_work(void *data)
{
	struct judge_job *j = data;

	gate_judge_command(&j->g, j->dir, j->log_path ? j->log_path : "/dev/null", &j->r);
}

static void judge_done(void *data)
{
	struct judge_job *j = data;
	struct run *run = NULL;

	for (struct list_head *pos = j->rr->runs.next; pos != &j->rr->runs; pos = pos->next)
		if (container_of(pos, struct run, node)->id == j->run_id)
			run = container_of(pos, struct run, node);
	if (run && run->gate_judging) {
		run->gate_judging = false;
		run->gate_result = j->r;
		if (run->state == STATE_RELEASE_RUNNING)
			gate_end(run, gate_point(run));
	}
	judge_job_free(j);
}

static void gate_exit(struct sup_instance *inst, const struct sup_exit *e, void *data)
{
	struct run *run = data;
	const struct release_gate *g = &run->plan->file->gates[run->gate];
	struct gate_result *r = &run->gate_result;
	struct judge_job *j;
	char name[96];

	loop_timer_cancel(run->rr->p->loop, &run->gate_timer);
	run->gate_proc = NULL;
	sup_instance_free(inst);
	r->finished_ms = state_now_ms();
	r->ran = e->known && !e->spawn_error;
	r->exit_code = e->known && !e->signal ? e->code : -1;
	r->signal = e->signal;
	r->timed_out = run->gate_timed_out;
	if (run->state != STATE_RELEASE_RUNNING)
		return;
	if (e->spawn_error) {
		r->passed = false;
		snprintf(r->reason, sizeof(r->reason), "`%s` could not run (%s: %s)", g->run,
			 e->spawn_stage ? e->spawn_stage : "spawn", strerror(e->spawn_error));
		gate_end(run, gate_point(run));
		return;
	}
	snprintf(name, sizeof(name), "gate-%s", g->name);
	j = calloc(1, sizeof(*j));
	if (j) {
		j->rr = run->rr;
		j->run_id = run->id;
		j->g = *g;
		j->g.after = j->g.service = j->g.version = NULL;
		j->g.name = strdup(g->name);
		j->g.run = g->run ? strdup(g->run) : NULL;
		j->g.file = g->file ? strdup(g->file) : NULL;
		j->dir = strdup(run->plan->file->dir);
		j->log_path = run_log_path(run, name);
		j->r = *r;
	}
	if (!j || !j->g.name || !j->dir || worker_submit(run->rr->w, judge_work, judge_done, j) < 0) {
		if (j)
			judge_job_free(j);
		r->passed = false;
		snprintf(r->reason, sizeof(r->reason), "out of memory: the gate's output could not be read");
		gate_end(run, gate_point(run));
		return;
	}
	run->gate_judging = true;
}

static void gate_stopped(struct sup_instance *inst, const struct sup_exit *e, void *data)
{
	gate_exit(inst, e, data);
}

static void gate_timeout(struct loop *loop, struct loop_timer *t)
{
	struct run *run = container_of(t, struct run, gate_timer);

	(void)loop;
	run->gate_timed_out = true;
	if (run->gate_proc && sup_instance_stop(run->gate_proc, gate_stopped) < 0)
		run->gate_proc = sup_instance_free(run->gate_proc);
}

static int command_gate_start(struct run *run, const struct release_gate *g)
{
	struct sup_callbacks cb = { .on_give_up = gate_exit };
	char name[96];
	int r;

	snprintf(name, sizeof(name), "gate-%s", g->name);
	run->gate_timed_out = false;
	r = run_command_start(run, name, g->run, &cb, run, &run->gate_proc);
	if (r < 0)
		return r;
	loop_timer_set(run->rr->p->loop, &run->gate_timer, run->rr->p->loop->now_ms + g->timeout_ms, gate_timeout);
	return 0;
}

/* ---- metric gates ----------------------------------------------------------------------- */

/* The figure g asks for, from counts c, into r. */
static void measure(const struct release_gate *g, const struct metrics_counts *c, struct gate_result *r)
{
	uint64_t answered = 0, errors = 0, lower = 0, upper = 0;

	metrics_counts_totals(c, &answered, &errors);
	r->requests = answered + c->connect_failures;
	r->errors_5xx = errors + c->connect_failures;
	r->has_metric = true;
	if (g->metric == METRIC_ERROR_RATE) {
		r->value = r->requests ? 100.0 * (double)r->errors_5xx / (double)r->requests : 0.0;
		return;
	}
	/* the upper bound of the quantile's bucket: never better than it was */
	if (metrics_counts_quantile(c, g->metric == METRIC_P50 ? 500 : 990, &lower, &upper) < 0) {
		r->has_metric = r->requests == 0; /* no latency without a response */
		r->value = 0;
		return;
	}
	r->value = (double)upper / 1000.0;
}

/* Add counts c of version (NULL: "") to the snapshot *list of *n entries.
 * Returns 0 or -ENOMEM (the list unchanged). */
static int snapshot_add(struct gate_snapshot **list, size_t *n, const char *version, const struct metrics_counts *c)
{
	struct gate_snapshot *e = NULL, *grown;

	version = version ? version : "";
	for (size_t k = 0; k < *n && !e; k++)
		if (!strcmp((*list)[k].version, version))
			e = &(*list)[k];
	if (!e) {
		grown = realloc(*list, (*n + 1) * sizeof(**list));
		if (!grown)
			return -ENOMEM;
		*list = grown;
		e = &grown[(*n)++];
		memset(e, 0, sizeof(*e));
		snprintf(e->version, sizeof(e->version), "%s", version);
	}
	metrics_counts_add(&e->counts, c);
	return 0;
}

/* The counts of service now, per version: its instances' and those its
 * swept instances left.  Per version, because a version's counts leave
 * with its last instance: the service's sum goes backwards then, and a
 * window over the sum would lose (or, saturated, zero) what others
 * answered.  Returns 0 with *ret (malloc'd, *n entries; may be NULL), or
 * -ENOMEM. */
static int snapshot_versions(const struct metrics *m, const char *service, struct gate_snapshot **ret, size_t *n)
{
	struct gate_snapshot *list = NULL;
	size_t count = 0;
	int r = 0;

	for (uint32_t i = 0; r >= 0 && i < m->nupstreams; i++)
		if (!strcmp(m->upstreams[i]->service, service))
			r = snapshot_add(&list, &count, m->upstreams[i]->version, &m->upstreams[i]->counts);
	for (uint32_t i = 0; r >= 0 && i < m->nversions; i++)
		if (!strcmp(m->versions[i]->service, service))
			r = snapshot_add(&list, &count, m->versions[i]->version, &m->versions[i]->gone);
	if (r < 0) {
		free(list);
		return r;
	}
	*ret = list;
	*n = count;
	return 0;
}

static void metric_window_end(struct loop *loop, struct loop_timer *t)
{
	struct run *run = container_of(t, struct run, gate_timer);
	const struct release_gate *g = &run->plan->file->gates[run->gate];
	struct gate_snapshot *now = NULL;
	struct metrics_counts window = { 0 }, gained;
	size_t n = 0;

	(void)loop;
	if (snapshot_versions(&run->rr->p->metrics, g->service, &now, &n) < 0) {
		snprintf(run->gate_result.reason, sizeof(run->gate_result.reason), "out of memory reading the counters");
		n = 0;
	}
	/* what each version gained; one gone since the start adds nothing */
	for (size_t k = 0; k < n; k++) {
		const struct gate_snapshot *before = NULL;

		if (g->version && strcmp(now[k].version, g->version))
			continue;
		for (size_t b = 0; b < run->ngate_before && !before; b++)
			if (!strcmp(run->gate_before[b].version, now[k].version))
				before = &run->gate_before[b];
		if (before)
			metrics_counts_window(&gained, &now[k].counts, &before->counts);
		else
			gained = now[k].counts;
		metrics_counts_add(&window, &gained);
	}
	free(now);
	free(run->gate_before);
	run->gate_before = NULL;
	run->ngate_before = 0;
	if (!run->gate_result.reason[0])
		measure(g, &window, &run->gate_result);
	run->gate_result.finished_ms = state_now_ms();
	gate_judge_metric(g, &run->gate_result);
	gate_end(run, gate_point(run));
}

/* Starts the gate (or judges it at once).  Returns true when it ended already. */
static bool metric_gate_start(struct run *run, const struct release_gate *g)
{
	struct gate_result *r = &run->gate_result;

	if (!g->during_canary) {
		free(run->gate_before);
		run->gate_before = NULL;
		run->ngate_before = 0;
		if (snapshot_versions(&run->rr->p->metrics, g->service, &run->gate_before, &run->ngate_before) < 0) {
			snprintf(r->reason, sizeof(r->reason), "out of memory reading the counters");
			r->finished_ms = state_now_ms();
			gate_judge_metric(g, r);
			return true;
		}
		loop_timer_set(run->rr->p->loop, &run->gate_timer, run->rr->p->loop->now_ms + g->window_ms,
			       metric_window_end);
		return false;
	}
	traffic_sample(run);
	for (size_t i = 0; i < run->ntraffic; i++)
		if (!strcmp(run->traffic[i].service, g->service) && !strcmp(run->traffic[i].version, g->version))
			measure(g, &run->traffic[i].total, r);
	if (!r->has_metric)
		snprintf(r->reason, sizeof(r->reason), "%s %s answered nothing during this release: no canary figures to read",
			 g->service, g->version);
	r->finished_ms = state_now_ms();
	gate_judge_metric(g, r);
	return true;
}

bool gates_run(struct run *run, enum release_gate_when when)
{
	const struct release_file *f = run->plan->file;

	if (run->gate != SIZE_MAX && (run->gate_proc || run->gate_timer.deadline_ms || run->gate_judging))
		return false; /* one is running, or being judged */
	for (size_t i = run->next_gate; i < f->ngates; i++) {
		const struct release_gate *g = &f->gates[i];
		char point[32];

		if (!gate_here(run, g, when))
			continue;
		run->gate = i;
		memset(&run->gate_result, 0, sizeof(run->gate_result));
		run->gate_result.started_ms = state_now_ms();
		run_log(run, "gate %s (%s): %s", g->name, point_name(run, when, point, sizeof(point)),
			g->run ? g->run : "the daemon's counters");
		if (g->read == GATE_READ_METRIC) {
			if (metric_gate_start(run, g))
				gate_end(run, when);
			return false;
		}
		if (command_gate_start(run, g) < 0) {
			run->gate_result.passed = false;
			snprintf(run->gate_result.reason, sizeof(run->gate_result.reason), "`%s` could not start",
				 g->run);
			gate_end(run, when);
		}
		return false;
	}
	run->next_gate = 0;
	run->gate = SIZE_MAX;
	return true;
}

void gates_stop(struct run *run)
{
	run->gate_judging = false;    /* a verdict still coming is dropped */
	loop_timer_cancel(run->rr->p->loop, &run->gate_timer);
	free(run->gate_before);
	run->gate_before = NULL;
	run->ngate_before = 0;
	if (run->gate_proc) {
		/* a gate is not undone: signal it and forget it */
		sup_instance_stop(run->gate_proc, NULL);
		run->gate_proc = sup_instance_free(run->gate_proc);
	}
	run->gate = SIZE_MAX;
}

/* ---- traffic ------------------------------------------------------------------------------- */

static struct traffic *traffic_get(struct run *run, const char *service, const char *version)
{
	struct traffic *t;

	for (size_t i = 0; i < run->ntraffic; i++)
		if (!strcmp(run->traffic[i].service, service) && !strcmp(run->traffic[i].version, version))
			return &run->traffic[i];
	t = realloc(run->traffic, (run->ntraffic + 1) * sizeof(*t));
	if (!t)
		return NULL;
	run->traffic = t;
	t = &t[run->ntraffic++];
	memset(t, 0, sizeof(*t));
	snprintf(t->service, sizeof(t->service), "%s", service);
	snprintf(t->version, sizeof(t->version), "%s", version);
	/* counted from now on */
	metrics_version_counts(&run->rr->p->metrics, service, version, &t->last);
	return t;
}

static void sample_one(struct run *run, const char *service, const char *version)
{
	struct traffic *t;
	struct metrics_counts now, gained;
	bool is_new = true;

	if (!version || !version[0])
		return;
	for (size_t i = 0; i < run->ntraffic; i++)
		is_new &= strcmp(run->traffic[i].service, service) || strcmp(run->traffic[i].version, version);
	t = traffic_get(run, service, version);
	if (!t || is_new)
		return;
	metrics_version_counts(&run->rr->p->metrics, service, version, &now);
	metrics_counts_window(&gained, &now, &t->last);
	metrics_counts_add(&t->total, &gained);
	t->last = now;
}

void traffic_sample(struct run *run)
{
	const struct release_file *f = run->plan->file;

	for (size_t i = 0; i < f->nitems; i++) {
		struct deployer_versions v;

		if (f->items[i].kind != RELEASE_SERVICE)
			continue;
		sample_one(run, f->items[i].name, run->plan->from_versions[i]);
		sample_one(run, f->items[i].name, f->items[i].version);
		if (deployer_versions(run->rr->d, f->items[i].name, &v) == 0) {
			sample_one(run, f->items[i].name, v.live);
			sample_one(run, f->items[i].name, v.previous);
		}
	}
}

json_t *traffic_json(const struct run *run)
{
	json_t *services = json_object();
	uint64_t all = 0, all_failed = 0, all_shielded = 0;

	for (size_t i = 0; services && i < run->ntraffic; i++) {
		const struct traffic *t = &run->traffic[i];
		uint64_t answered = 0, errors = 0, requests, failed;
		json_t *svc = json_object_get(services, t->service);

		metrics_counts_totals(&t->total, &answered, &errors);
		requests = answered + t->total.connect_failures;
		failed = errors + t->total.connect_failures;
		all += requests;
		all_failed += failed;
		all_shielded += t->total.shielded;
		if (!svc) {
			svc = json_object();
			json_object_set_new(services, t->service, svc);
		}
		/* retried_on_stable: failures of a canary its clients never saw */
		json_object_set_new(svc, t->version, json_pack("{sI sI sI}", "requests", (json_int_t)requests, "failed",
							       (json_int_t)failed, "retried_on_stable",
							       (json_int_t)t->total.shielded));
	}
	return json_pack("{sI sI sI so}", "requests", (json_int_t)all, "failed", (json_int_t)all_failed,
			 "retried_on_stable", (json_int_t)all_shielded, "services", services ? services : json_object());
}

/* watch.c - holding a step: the new version judged during every hold
 * (a canary's steps, a rolling deploy's batches, the watch after a
 * switch) from the proxy's own counters, the extension of a step that has
 * too few requests to judge, and the snapshots the judgement compares
 * with (the rules themselves: analysis.c, docs/internals/analysis.md).
 *
 * Windows.  While the old version still takes a share, the new one is
 * compared with it over the same window: both are snapshotted when the
 * step's weights are set.  Once the new version has all the traffic
 * (blue-green's switch, a canary's last step), the comparison is with
 * the old version's window just before the switch: its counts of the
 * last BASELINE_RING snapshots (one every BASELINE_EVERY_MS) kept for
 * every live version.  Each window is judged for the whole service and
 * for each of its route classes; a class can fail a step, but too few
 * requests in a class alone does not hold it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/log.h"
#include "base/util.h"
#include "deploy/analysis.h"
#include "deploy/deploy-internal.h"
#include "loop/loop.h"
#include "metrics/metrics.h"
#include "proxy/proxy-t.h"

/* ------------------------------------------------------------------ */
/* sets of counts: a version's, and its route classes'                 */

struct counts_set *counts_set_new(const struct config_service *cs)
{
	size_t n = cs ? cs->nroute_classes : 0;
	struct counts_set *s = calloc(1, sizeof(*s) + (n + 1) * sizeof(s->c[0]));

	if (!s)
		return NULL;
	s->nclasses = n;
	for (size_t i = 0; i < n; i++)
		snprintf(s->names[i], sizeof(s->names[i]), "%s", cs->route_classes[i].name);
	return s;
}

void counts_set_read(struct group *g, struct counts_set *out)
{
	group_counts(g, &out->c[0]);
	for (size_t i = 0; i < out->nclasses; i++)
		group_class_counts(g, out->names[i], &out->c[i + 1]);
}

/* The counts in s of the scope of like->c[i] (0: all; else the class of
 * that name), or NULL: s is NULL or has no such class. */
static const struct metrics_counts *counts_set_scope(const struct counts_set *s, const struct counts_set *like,
						     size_t i)
{
	if (!s || i == 0)
		return s ? &s->c[0] : NULL;
	for (size_t k = 0; k < s->nclasses; k++)
		if (!strcmp(s->names[k], like->names[i - 1]))
			return &s->c[k + 1];
	return NULL;
}

/* out = now - before, class by class (before may be NULL: from zero; a
 * class that before does not have: from zero). */
static void counts_set_window(struct counts_set *out, const struct counts_set *now, const struct counts_set *before)
{
	static const struct metrics_counts zero;

	for (size_t i = 0; i <= out->nclasses; i++) {
		const struct metrics_counts *b = counts_set_scope(before, out, i);
		metrics_counts_window(&out->c[i], &now->c[i], b ? b : &zero);
	}
}

/* ------------------------------------------------------------------ */
/* the live version's recent past                                      */

/* Every BASELINE_EVERY_MS: a snapshot of each live version, so that a
 * switch can be judged against the version's window just before it. */
static void baseline_tick(struct loop *loop, struct loop_timer *t)
{
	struct deployer *d = container_of(t, struct deployer, baseline_timer);
	struct list_head *pos;

	for (pos = d->services.next; pos != &d->services; pos = pos->next) {
		struct managed *m = container_of(pos, struct managed, node);
		struct baseline_snap *snap = &m->ring[m->ring_next];
		const struct config_service *cs = deployer_config(d, m->name);
		if (!m->live || !m->live->n)
			continue;
		if (!snap->counts || snap->counts->nclasses != (cs ? cs->nroute_classes : 0)) {
			free(snap->counts);
			snap->counts = counts_set_new(cs);
			if (!snap->counts)
				continue;
		}
		counts_set_read(m->live, snap->counts);
		snprintf(snap->version, sizeof(snap->version), "%s", m->live->version);
		snap->at_ms = loop->now_ms;
		m->ring_next = (m->ring_next + 1) % BASELINE_RING;
	}
	loop_timer_set(loop, t, loop->now_ms + BASELINE_EVERY_MS, baseline_tick);
}

void watch_start_baselines(struct deployer *d)
{
	loop_timer_set(d->p->loop, &d->baseline_timer, d->p->loop->now_ms + BASELINE_EVERY_MS, baseline_tick);
}

/* The start of version's baseline window in m's ring: its newest snapshot
 * at least BASELINE_WINDOW_MS old, or NULL (the version has been live for
 * less than that: its whole counted past is the window). */
static const struct baseline_snap *ring_window_start(const struct managed *m, const char *version, uint64_t now_ms)
{
	const struct baseline_snap *best = NULL;

	for (size_t i = 0; i < BASELINE_RING; i++) {
		const struct baseline_snap *s = &m->ring[i];
		if (s->counts && !strcmp(s->version, version) && s->at_ms + BASELINE_WINDOW_MS <= now_ms &&
		    (!best || s->at_ms > best->at_ms))
			best = s;
	}
	return best;
}

void ring_free(struct managed *m)
{
	for (size_t i = 0; i < BASELINE_RING; i++) {
		free(m->ring[i].counts);
		m->ring[i].counts = NULL;
	}
}

/* ------------------------------------------------------------------ */
/* the deployment's snapshots                                          */

int watch_begin(struct deployment *dep, const struct config_service *cs)
{
	struct watch *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	w->new_at_hold = counts_set_new(cs);
	w->old_at_hold = counts_set_new(cs);
	w->baseline = counts_set_new(cs);
	w->scratch_new = counts_set_new(cs);
	w->scratch_old = counts_set_new(cs);
	if (!w->new_at_hold || !w->old_at_hold || !w->baseline || !w->scratch_new || !w->scratch_old) {
		watch_free(w);
		return -ENOMEM;
	}
	dep->watch = w;
	return 0;
}

void watch_free(struct watch *w)
{
	if (!w)
		return;
	free(w->new_at_hold);
	free(w->old_at_hold);
	free(w->baseline);
	free(w->scratch_new);
	free(w->scratch_old);
	free(w);
}

void watch_baseline(struct deployment *dep, bool refresh)
{
	struct watch *w = dep->watch;
	struct managed *m = dep->m;
	const struct baseline_snap *snap;

	if (!w || (w->has_baseline && !refresh) || !m->live || !m->live->n)
		return;
	/* the last minute or so of the version losing its traffic; a version
	 * younger than that, from zero */
	snap = ring_window_start(m, m->live->version, dep->d->p->loop->now_ms);
	counts_set_read(m->live, w->scratch_old);
	counts_set_window(w->baseline, w->scratch_old, snap ? snap->counts : NULL);
	snprintf(w->baseline_version, sizeof(w->baseline_version), "%s", m->live->version);
	w->baseline_ms = snap ? dep->d->p->loop->now_ms - snap->at_ms : 0;
	w->has_baseline = true;
}

/* ------------------------------------------------------------------ */
/* judging                                                             */

void watch_rules(const struct config_service *cs, struct analysis_rules *r)
{
	const struct config_deploy *d = &cs->deploy;

	*r = (struct analysis_rules){
		.max_error_rate_permille = d->max_error_rate_permille,
		.max_error_rate_increase_permille = d->max_error_rate_increase_permille,
		.max_p50_ms = d->max_p50_ms,
		.max_p99_ms = d->max_p99_ms,
		.max_p50_ratio_percent = d->max_p50_ratio_percent,
		.max_p99_ratio_percent = d->max_p99_ratio_percent,
		.latency_margin_ms = d->latency_margin_ms,
		.min_requests = d->min_requests,
		.confidence_bp = d->confidence_bp,
	};
}

/* Whether the old version shares this step with the new one (a canary
 * step, a rolling batch): compared over the same window. */
static bool step_shared(const struct deployment *dep)
{
	return dep->m->live && dep->m->live != dep->watched && dep->m->live->weight > 0 && dep->m->live->n;
}

/* Judge the new version's window since the weights were set, for the
 * service and each route class, into w->verdicts.  Returns the verdict
 * that decides: the first failure (the service's, then the classes'), else
 * the service's. */
static const struct analysis_verdict *watch_judge(struct deployment *dep, const struct config_service *cs)
{
	struct watch *w = dep->watch;
	struct analysis_rules rules;
	const struct counts_set *base = NULL;
	const char *base_name = NULL;

	watch_rules(cs, &rules);
	counts_set_read(dep->watched, w->scratch_new);
	counts_set_window(w->scratch_new, w->scratch_new, w->new_at_hold);
	if (step_shared(dep)) {
		counts_set_read(dep->m->live, w->scratch_old);
		counts_set_window(w->scratch_old, w->scratch_old, w->old_at_hold);
		base = w->scratch_old;
		base_name = dep->m->live->version;
	} else if (w->has_baseline) {
		base = w->baseline;
		base_name = w->baseline_version;
	}
	w->nverdicts = 0;
	for (size_t i = 0; i <= w->scratch_new->nclasses && i < WATCH_SCOPES_MAX; i++) {
		const struct metrics_counts *b = counts_set_scope(base, w->scratch_new, i);
		struct analysis_input in = { .scope = i ? w->scratch_new->names[i - 1] : NULL,
					     .baseline_name = base_name,
					     .candidate = &w->scratch_new->c[i],
					     .baseline = b };
		analysis_judge(&rules, &in, &w->verdicts[w->nverdicts++]);
	}
	for (size_t i = 0; i < w->nverdicts; i++)
		if (w->verdicts[i].result == ANALYSIS_FAIL)
			return &w->verdicts[i];
	return &w->verdicts[0];
}

/* A step's decision, counted by result (cutover_analysis_verdicts_total)
 * and told on the event stream with the checks behind it. */
static void watch_decided(struct deployment *dep, const struct analysis_verdict *v, const char *what)
{
	char detail[ANALYSIS_REASON_MAX + 256];

	dep->m->verdicts[v->result]++;
	snprintf(detail, sizeof(detail), "%s: %s", what, v->reason);
	dep_event_as(dep, "analysis", detail);
}

/* The end of a hold whose verdict is inconclusive: extend it, up to
 * deploy.max_extension; then pause or abort (deploy.on_inconclusive).
 * A final watch (the new version has all the traffic already) ends: its
 * verdict is told, the version stays. */
static void watch_inconclusive(struct deployment *dep, const struct config_service *cs,
			       const struct analysis_verdict *v)
{
	struct loop *loop = dep->d->p->loop;
	const struct plan_step *st = &dep->plan.steps[dep->step];
	char what[200];

	if (st->final_watch) {
		watch_decided(dep, v, "watch over, inconclusive");
		step_next(dep);
		return;
	}
	if (!dep->extending) {
		dep->extending = true;
		snprintf(what, sizeof(what), "step %zu of %zu (%u %%) extended by up to %s", dep->step + 1,
			 dep->plan.nsteps, st->new_weight, DURATION_TEXT(cs->deploy.max_extension_ms));
		dep_event_as(dep, "extended", what);
	}
	if (loop->now_ms < dep->hold_until_ms + cs->deploy.max_extension_ms)
		return;
	dep->extending = false;
	snprintf(what, sizeof(what), "step %zu of %zu (%u %%) inconclusive after its extension", dep->step + 1,
		 dep->plan.nsteps, st->new_weight);
	watch_decided(dep, v, what);
	if (cs->deploy.on_inconclusive == CONFIG_INCONCLUSIVE_ABORT) {
		char why[ANALYSIS_REASON_MAX + 280];
		snprintf(why, sizeof(why), "%s (on_inconclusive: abort): %s", what, v->reason);
		engine_abort(dep, why);
		return;
	}
	dep->paused = true;
	dep->paused_inconclusive = true;
	snprintf(dep->pause_reason, sizeof(dep->pause_reason), "%s: %s", what, v->reason);
	dep_event_as(dep, "paused", dep->pause_reason);
}

static void watch_tick(struct loop *loop, struct loop_timer *t)
{
	struct deployment *dep = container_of(t, struct deployment, timer);
	const struct config_service *cs = deployer_config(dep->d, dep->service);
	const struct analysis_verdict *v;

	if (!cs || !dep->watched || !dep->watch) {
		dep_finish(dep, PH_DONE, NULL);
		return;
	}
	v = watch_judge(dep, cs);
	if (v->result == ANALYSIS_FAIL) {
		watch_decided(dep, v, "failed");
		engine_abort(dep, v->reason);
		return;
	}
	if (!dep->paused && dep->promoted && !dep->plan.steps[dep->step].final_watch) {
		step_next(dep);
		return;
	}
	if (!dep->paused && loop->now_ms >= dep->hold_until_ms) {
		if (v->result == ANALYSIS_PASS) {
			dep->extending = false;
			watch_decided(dep, v, dep->plan.steps[dep->step].final_watch ? "watch passed" : "step passed");
			step_next(dep);
			return;
		}
		watch_inconclusive(dep, cs, v);
		if (dep->phase >= PH_DONE)
			return;
	}
	loop_timer_set(loop, t, loop->now_ms + WATCH_TICK_MS, watch_tick);
}

/* The end of a hold that does not analyse. */
static void hold_over(struct loop *loop, struct loop_timer *t)
{
	struct deployment *dep = container_of(t, struct deployment, timer);

	if (dep->paused) { /* resume goes on */
		loop_timer_set(loop, t, loop->now_ms + WATCH_TICK_MS, hold_over);
		return;
	}
	step_next(dep);
}

void step_hold(struct deployment *dep, struct group *g)
{
	const struct plan_step *st = &dep->plan.steps[dep->step];
	struct loop *loop = dep->d->p->loop;
	struct watch *w = dep->watch;

	dep->watched = g;
	dep->extending = false;
	if (!st->hold_ms || (dep->promoted && !st->final_watch)) {
		if (dep->paused)
			loop_timer_set(loop, &dep->timer, loop->now_ms + WATCH_TICK_MS, hold_over);
		else
			step_next(dep);
		return;
	}
	if (w) {
		counts_set_read(g, w->new_at_hold);
		if (step_shared(dep))
			counts_set_read(dep->m->live, w->old_at_hold);
		w->nverdicts = 0;
	}
	dep->hold_started_ms = loop->now_ms;
	dep->hold_until_ms = loop->now_ms + st->hold_ms;
	if (st->analyse && w)
		loop_timer_set(loop, &dep->timer, loop->now_ms + WATCH_TICK_MS, watch_tick);
	else
		loop_timer_set(loop, &dep->timer, dep->hold_until_ms, hold_over);
}

/* ------------------------------------------------------------------ */
/* what `cutover status` shows of it                                   */

static json_t *figures_json(const char *version, const char *role, const struct analysis_figures *f)
{
	json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:f, s:I}", "version", version, "role", role, "requests",
			      (json_int_t)f->requests, "errors", (json_int_t)f->errors, "error_rate", f->error_rate,
			      "responses", (json_int_t)f->responses);

	if (j && f->responses) {
		json_object_set_new(j, "p50_ms", json_pack("[f, f]", (double)f->p50_lower_us / 1000.0,
							   (double)f->p50_upper_us / 1000.0));
		json_object_set_new(j, "p99_ms", json_pack("[f, f]", (double)f->p99_lower_us / 1000.0,
							   (double)f->p99_upper_us / 1000.0));
	}
	return j;
}

static json_t *checks_json(const struct watch *w)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < w->nverdicts; i++) {
		const struct analysis_verdict *v = &w->verdicts[i];
		for (size_t k = 0; k < v->nchecks; k++) {
			const struct analysis_check *c = &v->checks[k];
			json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:b}", "name", c->name, "condition",
							     c->condition, "value", c->value, "result",
							     c->counted ? analysis_result_name(c->result) : "not judged",
							     "counted", c->counted));
		}
	}
	return arr;
}

json_t *watch_json(struct deployment *dep)
{
	const struct plan_step *st = &dep->plan.steps[dep->step < dep->plan.nsteps ? dep->step : dep->plan.nsteps - 1];
	const struct watch *w = dep->watch;
	uint64_t now = dep->d->p->loop->now_ms;
	const struct config_service *cs = deployer_config(dep->d, dep->service);
	json_t *j, *next = json_null();

	if (dep->phase == PH_WATCH && !dep->paused && dep->hold_until_ms) {
		uint64_t at = dep->hold_until_ms + (dep->extending && cs ? cs->deploy.max_extension_ms : 0);
		next = json_integer(at > now ? (json_int_t)(at - now) : 0);
	}
	j = json_pack("{s:I, s:I, s:i, s:i, s:b, s:s?, s:b, s:b, s:o}", "step", (json_int_t)dep->step + 1, "steps",
		      (json_int_t)dep->plan.nsteps, "new_weight", (int)st->new_weight, "old_weight", (int)st->old_weight,
		      "paused", dep->paused, "pause_reason", dep->paused ? dep->pause_reason : NULL, "promoted",
		      dep->promoted, "extending", dep->extending, "next_decision_ms", next);
	if (!j || !w || !w->nverdicts || dep->phase != PH_WATCH)
		return j;
	const struct analysis_verdict *v = &w->verdicts[0];
	json_t *versions = json_array();
	uint64_t total = v->candidate.requests + (v->has_baseline && step_shared(dep) ? v->baseline.requests : 0);
	json_array_append_new(versions, figures_json(dep->version, "new", &v->candidate));
	if (v->has_baseline)
		json_array_append_new(versions, figures_json(w->baseline_version[0] && !step_shared(dep)
								     ? w->baseline_version
								     : (dep->m->live ? dep->m->live->version : "-"),
							     step_shared(dep) ? "stable" : "before the switch", &v->baseline));
	json_object_set_new(j, "window_ms", json_integer((json_int_t)(now - dep->hold_started_ms)));
	json_object_set_new(j, "measured_new_percent",
			    total ? json_real(100.0 * (double)v->candidate.requests / (double)total) : json_null());
	json_object_set_new(j, "versions", versions);
	json_object_set_new(j, "verdict", json_string(analysis_result_name(v->result)));
	json_object_set_new(j, "reason", json_string(v->reason));
	json_object_set_new(j, "checks", checks_json(w));
	return j;
}

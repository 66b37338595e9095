/* run-steps.c - a release's groups, its deploys and command steps, and
 * the rollback in reverse order (docs/internals/releases.md).
 *
 * run_advance() is the runner's one driver: every event (a deployment's
 * end, a command's exit, a gate's verdict) calls it, and it moves the run
 * as far as it can: the gates of the current point, then the items of
 * the group (at most `concurrency` at once), then the next point.  A
 * failure of a critical item calls run_rollback(), after which
 * run_advance() drives the undo walk instead: wait for what is in flight
 * to end (deploys are aborted, commands stopped), then undo every changed
 * item from the last started to the first, one at a time.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/log.h"
#include "deploy/deploy.h"
#include "loop/loop.h"
#include "proxy/proxy-t.h"
#include "release/gate.h"
#include "release/release-internal.h"
#include "state/state.h"
#include "supervisor/supervisor.h"

static void rollback_advance(struct run *run);

static const struct release_item *item_of(const struct step *s)
{
	return &s->run->plan->file->items[s->item];
}

static void step_end(struct step *s, enum step_state state)
{
	s->state = state;
	s->finished_at = state_now_ms();
}

/* A step failed: the release rolls back, unless it is not critical. */
static void step_failed(struct step *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void step_failed(struct step *s, const char *fmt, ...)
{
	struct run *run = s->run;
	const struct release_item *it = item_of(s);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->reason, sizeof(s->reason), fmt, ap);
	va_end(ap);
	step_end(s, STEP_FAILED);
	run_log(run, "%s failed: %s%s", it->name, s->reason, it->critical ? "" : " (critical: false: the release goes on)");
	run_emit(run, "step", s->reason, s);
	if (run->state != STATE_RELEASE_RUNNING)
		return;
	if (it->critical) {
		run_rollback(run, "%s: %s", it->name, s->reason);
		return;
	}
	run->failed_noncritical = true;
	run_persist(run);
}

/* ---- command steps ------------------------------------------------------------------ */

static void command_exit(struct sup_instance *inst, const struct sup_exit *e, void *data);

static void command_stopped(struct sup_instance *inst, const struct sup_exit *e, void *data)
{
	command_exit(inst, e, data);
}

static void command_timeout(struct loop *loop, struct loop_timer *t)
{
	struct step *s = container_of(t, struct step, timer);

	(void)loop;
	s->timed_out = true;
	if (s->proc && sup_instance_stop(s->proc, command_stopped) < 0)
		s->proc = sup_instance_free(s->proc);
}

/* Start `run` (or, undoing, `undo`) of command step s.  Returns 0 or -errno. */
static int command_start(struct step *s, bool undo)
{
	struct run *run = s->run;
	const struct release_item *it = item_of(s);
	struct sup_callbacks cb = { .on_give_up = command_exit };
	char name[96];
	int r;

	snprintf(name, sizeof(name), "%s%s", it->name, undo ? ".undo" : "");
	s->undoing = undo;
	s->timed_out = false;
	r = run_command_start(run, name, undo ? it->undo : it->run, &cb, s, &s->proc);
	if (r < 0)
		return r;
	loop_timer_set(run->rr->p->loop, &s->timer, run->rr->p->loop->now_ms + it->timeout_ms, command_timeout);
	return 0;
}

static void exit_text(const struct step *s, const struct sup_exit *e, char *out, size_t len)
{
	if (s->timed_out)
		snprintf(out, len, "still running after its timeout: stopped");
	else if (!e->known)
		snprintf(out, len, "ended with an unknown status");
	else if (e->spawn_error)
		snprintf(out, len, "could not run (%s: %s)", e->spawn_stage ? e->spawn_stage : "spawn",
			 strerror(e->spawn_error));
	else if (e->signal)
		snprintf(out, len, "killed by signal %d", e->signal);
	else
		snprintf(out, len, "exited with status %d", e->code);
}

static void command_exit(struct sup_instance *inst, const struct sup_exit *e, void *data)
{
	struct step *s = data;
	struct run *run = s->run;
	const struct release_item *it = item_of(s);
	bool ok = e->known && !e->spawn_error && !e->signal && e->code == 0 && !s->timed_out;
	char how[160];

	loop_timer_cancel(run->rr->p->loop, &s->timer);
	if (s->proc == inst)
		s->proc = NULL;
	sup_instance_free(inst);
	exit_text(s, e, how, sizeof(how));
	if (s->undoing) {
		s->undo_exit_code = e->known && !e->signal ? e->code : -1;
		step_end(s, ok ? STEP_UNDONE : STEP_UNDO_FAILED);
		json_array_append_new(run->rollbacks,
				      json_pack("{ss ss sI ss ss}", "name", it->name, "kind", "command", "at",
						(json_int_t)state_now_ms(), "result", ok ? "ok" : "failed", "detail", how));
		run_log(run, "%s undone: `%s` %s", it->name, it->undo, ok ? "succeeded" : how);
		if (!ok)
			snprintf(s->reason, sizeof(s->reason), "its undo %s", how);
		run_emit(run, "step", how, s);
		run_persist(run);
		run_advance(run);
		return;
	}
	s->exit_code = e->known && !e->signal ? e->code : -1;
	if (ok) {
		step_end(s, STEP_DONE);
		run_log(run, "%s done: `%s` succeeded", it->name, it->run);
		run_emit(run, "step", NULL, s);
		run_persist(run);
	} else if (run->state == STATE_RELEASE_RUNNING) {
		step_failed(s, "`%s` %s", it->run, how);
	} else {
		/* stopped by the rollback: it may have done part of its work */
		snprintf(s->reason, sizeof(s->reason), "stopped by the rollback (%s)", how);
		step_end(s, STEP_FAILED);
	}
	run_advance(run);
}

/* ---- deploys ---------------------------------------------------------------------------- */

static void deploy_start(struct step *s)
{
	struct run *run = s->run;
	const struct release_item *it = item_of(s);
	char err[512], why[160];
	struct deploy_request req = { .service = it->name, .version = it->version,
				      .digest = run->plan->digests[s->item], .who = run->who,
				      .release_id = run->id, .why = why };
	int64_t id;

	snprintf(why, sizeof(why), "release %lld (%s), group %zu", (long long)run->id, run->plan->file->name,
		 s->group + 1);
	id = deployer_deploy(run->rr->d, &req, err, sizeof(err));
	if (id == -EALREADY) {
		step_end(s, STEP_DONE);
		snprintf(s->reason, sizeof(s->reason), "already runs %s: nothing to do", it->version);
		run_log(run, "%s already runs %s", it->name, it->version);
		return;
	}
	if (id < 0) {
		step_failed(s, "the deploy was refused: %s", err);
		return;
	}
	s->deployment_id = id;
	s->changed = true;
	run_log(run, "%s %s → %s: deployment %lld (%s)", it->name,
		run->plan->from_versions[s->item][0] ? run->plan->from_versions[s->item] : "(none)", it->version,
		(long long)id, run->plan->strategies[s->item]);
}

static void step_start(struct step *s)
{
	struct run *run = s->run;
	const struct release_item *it = item_of(s);
	int r;

	s->state = STEP_RUNNING;
	s->started_at = state_now_ms();
	run->started[run->nstarted++] = s->item;
	run_emit(run, "step", "started", s);
	if (it->kind == RELEASE_SERVICE) {
		deploy_start(s);
		return;
	}
	s->changed = true;
	run_log(run, "%s: running `%s`", it->name, it->run);
	r = command_start(s, false);
	if (r < 0)
		step_failed(s, "`%s` could not start: %s", it->run, strerror(-r));
}

/* The group's items, started as the concurrency allows.  Returns true
 * once every one of them ended and its services are healthy. */
static bool group_advance(struct run *run)
{
	const struct release_plan *p = run->plan;
	size_t g = run->group, running = 0;
	bool all_ended = true, started = false;

	for (size_t k = p->group_start[g]; k < p->group_start[g + 1]; k++)
		running += run->steps[p->order[k]].state == STEP_RUNNING;
	for (size_t k = p->group_start[g]; k < p->group_start[g + 1] && running < p->concurrency; k++) {
		struct step *s = &run->steps[p->order[k]];

		if (s->state != STEP_PENDING)
			continue;
		step_start(s);
		if (run->state != STATE_RELEASE_RUNNING)
			return false;
		running += s->state == STEP_RUNNING;
		started = true;
	}
	if (started)          /* on record before a crash could lose it: recovery undoes them */
		run_persist(run);
	for (size_t k = p->group_start[g]; k < p->group_start[g + 1]; k++)
		all_ended &= run->steps[p->order[k]].state != STEP_PENDING &&
			     run->steps[p->order[k]].state != STEP_RUNNING;
	if (!all_ended)
		return false;
	/* done and healthy: the next group builds on them */
	for (size_t k = p->group_start[g]; k < p->group_start[g + 1]; k++) {
		struct step *s = &run->steps[p->order[k]];
		const struct release_item *it = item_of(s);
		struct deployer_versions v;

		if (it->kind != RELEASE_SERVICE || s->state != STEP_DONE)
			continue;
		if (deployer_versions(run->rr->d, it->name, &v) < 0 || strcmp(v.live, it->version) || !v.healthy) {
			step_failed(s, "not healthy on %s after its deploy (live: %s)", it->version,
				    v.live[0] ? v.live : "none");
			if (run->state != STATE_RELEASE_RUNNING)
				return false;
		}
	}
	run_log(run, "group %zu of %zu done", g + 1, p->ngroups);
	run_persist(run);
	return true;
}

void run_advance(struct run *run)
{
	const struct release_plan *p = run->plan;

	for (;;) {
		if (run->state == STATE_RELEASE_ROLLING_BACK) {
			rollback_advance(run);
			return;
		}
		if (run->state != STATE_RELEASE_RUNNING)
			return;
		switch (run->phase) {
		case PHASE_BEFORE:
			if (!gates_run(run, GATE_BEFORE))
				return;
			run->phase = PHASE_GROUP;
			run->group = 0;
			break;
		case PHASE_GROUP:
			if (!group_advance(run))
				return;
			run->phase = PHASE_AFTER_GROUP;
			break;
		case PHASE_AFTER_GROUP:
			if (!gates_run(run, GATE_AFTER_GROUP))
				return;
			run->group++;
			run->phase = run->group < p->ngroups ? PHASE_GROUP : PHASE_AFTER;
			break;
		case PHASE_AFTER:
			if (!gates_run(run, GATE_AFTER))
				return;
			run_finish(run, run->failed_noncritical ? STATE_RELEASE_DEGRADED : STATE_RELEASE_SUCCEEDED,
				   run->failed_noncritical ? "a service marked critical: false failed (see its step)"
							   : NULL);
			return;
		default:
			return;
		}
	}
}

/* ---- deployment events --------------------------------------------------------------------- */

void steps_deployment_event(struct run *run, const json_t *ev)
{
	int64_t id = json_integer_value(json_object_get(ev, "id"));
	const char *result = json_string_value(json_object_get(ev, "result"));
	const char *reason = json_string_value(json_object_get(ev, "reason"));
	const char *detail = json_string_value(json_object_get(ev, "detail"));

	for (size_t i = 0; id > 0 && i < run->plan->file->nitems; i++) {
		struct step *s = &run->steps[i];
		const struct release_item *it = item_of(s);
		bool rollback = s->rollback_id == id;

		if (s->deployment_id != id && !rollback)
			continue;
		/* counted at every phase: a canary aborted within a second is
		 * gone (with its counters) before the next periodic sample */
		traffic_sample(run);
		json_array_append_new(s->phases, json_pack("{ss sI ss* sb}", "phase",
							   json_string_value(json_object_get(ev, "phase")) ?: "?",
							   "at", (json_int_t)state_now_ms(), "detail", detail, "rollback",
							   rollback));
		if (!result)
			return;
		/* a result once: the real event after the poll's (steps_poll) is dropped */
		if (rollback ? s->state != STEP_ROLLING_BACK : s->state != STEP_RUNNING)
			return;
		if (rollback) {
			bool ok = !strcmp(result, "done");
			char text[640];

			snprintf(text, sizeof(text), "back to %s (deployment %lld)%s%s",
				 run->plan->from_versions[i], (long long)id, ok ? "" : ": ", ok ? "" : reason ? reason : result);
			step_end(s, ok ? STEP_ROLLED_BACK : STEP_UNDO_FAILED);
			if (!ok)
				snprintf(s->reason, sizeof(s->reason), "its rollback ended %s: %s", result, reason ? reason : "");
			json_array_append_new(run->rollbacks,
					      json_pack("{ss ss sI ss ss}", "name", it->name, "kind", "service", "at",
							(json_int_t)state_now_ms(), "result", ok ? "ok" : "failed", "detail",
							text));
			run_log(run, "%s rolled back: %s", it->name, text);
			run_emit(run, "step", text, s);
			run_persist(run);
			run_advance(run);
			return;
		}
		if (!strcmp(result, "done")) {
			step_end(s, STEP_DONE);
			run_log(run, "%s %s done in %.1f s", it->name, it->version,
				(double)(s->finished_at - s->started_at) / 1000.0);
			run_emit(run, "step", NULL, s);
			run_persist(run);
		} else if (run->state == STATE_RELEASE_RUNNING) {
			step_failed(s, "its deploy ended %s: %s", result, reason ? reason : "(no reason given)");
		} else {
			/* aborted by the rollback: its traffic is back on the version before */
			step_end(s, STEP_ROLLED_BACK);
			snprintf(s->reason, sizeof(s->reason), "its deploy ended %s: %s", result, reason ? reason : "");
			json_array_append_new(run->rollbacks,
					      json_pack("{ss ss sI ss ss}", "name", it->name, "kind", "service", "at",
							(json_int_t)state_now_ms(), "result", "ok", "detail", s->reason));
			run_log(run, "%s: %s", it->name, s->reason);
		}
		run_advance(run);
		return;
	}
}

/* ---- the rollback ------------------------------------------------------------------------------ */

void run_rollback(struct run *run, const char *fmt, ...)
{
	const struct release_file *f = run->plan->file;
	char err[256];
	va_list ap;

	if (run->state != STATE_RELEASE_RUNNING)
		return;
	va_start(ap, fmt);
	vsnprintf(run->reason, sizeof(run->reason), fmt, ap);
	va_end(ap);
	run->state = STATE_RELEASE_ROLLING_BACK;
	run->phase = PHASE_ROLLBACK;
	run->undo_cursor = run->nstarted;
	run_log(run, "rolling back: %s", run->reason);
	run_emit(run, "rolling-back", run->reason, NULL);
	gates_stop(run);
	/* what is in flight ends first: deploys aborted (traffic back on the
	 * version before), commands stopped */
	for (size_t i = 0; i < f->nitems; i++) {
		struct step *s = &run->steps[i];

		if (s->state != STEP_RUNNING)
			continue;
		if (f->items[i].kind == RELEASE_SERVICE && s->deployment_id > 0 &&
		    deployer_control(run->rr->d, f->items[i].name, DEPLOY_ABORT, DEPLOY_BY_DAEMON, err, sizeof(err)) < 0)
			log_info("release %lld: abort of %s: %s", (long long)run->id, f->items[i].name, err);
		if (f->items[i].kind == RELEASE_COMMAND && s->proc && sup_instance_stop(s->proc, command_stopped) < 0)
			s->proc = sup_instance_free(s->proc);
	}
	run_persist(run);
	run_advance(run);
}

/* Undo service step s: back to the version it had before the release. */
static void undo_service(struct step *s)
{
	struct run *run = s->run;
	const struct release_item *it = item_of(s);
	const char *from = run->plan->from_versions[s->item];
	struct deployer_versions v;
	char err[512];
	int64_t id;

	if (!from[0]) {
		step_end(s, STEP_KEPT);
		snprintf(s->reason, sizeof(s->reason), "nothing ran before it: left on %s", it->version);
		run_log(run, "%s: %s", it->name, s->reason);
		return;
	}
	if (deployer_versions(run->rr->d, it->name, &v) == 0 && !strcmp(v.live, from) && !v.in_flight) {
		step_end(s, STEP_ROLLED_BACK);
		if (!s->reason[0])
			snprintf(s->reason, sizeof(s->reason), "already back on %s", from);
		run_log(run, "%s is back on %s (%s)", it->name, from, s->reason);
		return;
	}
	if (!strcmp(v.previous, from)) {
		id = deployer_rollback(run->rr->d, it->name, DEPLOY_BY_DAEMON, err, sizeof(err));
	} else {
		struct deploy_request req = { .service = it->name, .version = from, .who = DEPLOY_BY_DAEMON,
					      .release_id = run->id, .why = "release rollback" };

		id = deployer_deploy(run->rr->d, &req, err, sizeof(err));
	}
	if (id < 0) {
		step_end(s, STEP_UNDO_FAILED);
		snprintf(s->reason, sizeof(s->reason), "cannot go back to %s: %.400s", from, err);
		json_array_append_new(run->rollbacks, json_pack("{ss ss sI ss ss}", "name", it->name, "kind", "service", "at",
								(json_int_t)state_now_ms(), "result", "failed", "detail",
								s->reason));
		run_log(run, "%s: %s", it->name, s->reason);
		return;
	}
	s->state = STEP_ROLLING_BACK;
	s->rollback_id = id;
	run_log(run, "%s: back to %s (deployment %lld)", it->name, from, (long long)id);
}

/* Undo command step s, or keep it. */
static void undo_command(struct step *s)
{
	struct run *run = s->run;
	const struct release_item *it = item_of(s);
	int r;

	if (!it->undo) {
		step_end(s, STEP_KEPT);
		snprintf(s->reason, sizeof(s->reason), "no undo command: what it did stays");
		run_log(run, "%s: %s", it->name, s->reason);
		return;
	}
	s->state = STEP_ROLLING_BACK;
	run_log(run, "%s: undoing with `%s`", it->name, it->undo);
	r = command_start(s, true);
	if (r < 0) {
		step_end(s, STEP_UNDO_FAILED);
		snprintf(s->reason, sizeof(s->reason), "its undo could not start: %s", strerror(-r));
	}
}

static void rollback_advance(struct run *run)
{
	const struct release_file *f = run->plan->file;
	bool failed = false, past_no_return = false;

	for (size_t i = 0; i < f->nitems; i++)
		if (run->steps[i].state == STEP_RUNNING || run->steps[i].state == STEP_ROLLING_BACK)
			return;       /* one thing at a time, and only once nothing else runs */
	while (run->undo_cursor > 0) {
		struct step *s = &run->steps[run->started[run->undo_cursor - 1]];
		const struct release_item *it = item_of(s);

		if (!s->changed || (s->state != STEP_DONE && s->state != STEP_FAILED)) {
			run->undo_cursor--;
			continue;
		}
		if (it->kind == RELEASE_COMMAND && it->point_of_no_return && s->state == STEP_DONE) {
			snprintf(run->reason + strlen(run->reason), sizeof(run->reason) - strlen(run->reason),
				 "; past the point of no return %s: what ran before it is kept", it->name);
			step_end(s, STEP_KEPT);
			snprintf(s->reason, sizeof(s->reason), "a point of no return");
			for (size_t k = 0; k + 1 < run->undo_cursor; k++) {
				struct step *before = &run->steps[run->started[k]];

				if (before->changed && (before->state == STEP_DONE || before->state == STEP_FAILED)) {
					step_end(before, STEP_KEPT);
					snprintf(before->reason, sizeof(before->reason), "before the point of no return %s",
						 it->name);
				}
			}
			run_log(run, "%s is a point of no return: the steps before it are kept", it->name);
			run->undo_cursor = 0;
			break;
		}
		run->undo_cursor--;
		if (it->kind == RELEASE_SERVICE)
			undo_service(s);
		else
			undo_command(s);
		run_persist(run);
		if (s->state == STEP_ROLLING_BACK)
			return;       /* its end comes as an event */
	}
	for (size_t i = 0; i < f->nitems; i++) {
		failed |= run->steps[i].state == STEP_UNDO_FAILED;
		past_no_return |= f->items[i].kind == RELEASE_COMMAND && f->items[i].point_of_no_return &&
				  run->steps[i].state == STEP_KEPT;
	}
	run_finish(run, failed || past_no_return ? STATE_RELEASE_FAILED : STATE_RELEASE_ROLLED_BACK, NULL);
}

/* A safety net: a deploy of a step that has finished for two ticks
 * without its result event reaching the runner is taken as the deployer
 * tells it now (its record keeps the last 64). */
void steps_poll(struct run *run)
{
	for (size_t i = 0; i < run->plan->file->nitems; i++) {
		struct step *s = &run->steps[i];
		int64_t id = s->state == STEP_RUNNING ? s->deployment_id : s->state == STEP_ROLLING_BACK ? s->rollback_id : 0;
		json_t *dep, *ev;

		if (id <= 0 || run->plan->file->items[i].kind != RELEASE_SERVICE)
			continue;
		dep = deployer_deployment_json(run->rr->d, id);
		if (!dep || !json_is_true(json_object_get(dep, "finished"))) {
			s->missed = 0;
			json_decref(dep);
			continue;
		}
		if (++s->missed < 2) {
			json_decref(dep);
			continue;
		}
		log_warn("release %lld: deployment %lld of %s finished without its result reaching the release: read "
			 "from the deployer", (long long)run->id, (long long)id, run->plan->file->items[i].name);
		ev = json_pack("{sI ss sO? sO?}", "id", (json_int_t)id, "phase", "result", "result",
			       json_object_get(dep, "phase"), "reason", json_object_get(dep, "reason"));
		json_decref(dep);
		if (ev)
			steps_deployment_event(run, ev);
		json_decref(ev);
		return;       /* the run may have moved on (or ended): one at a time */
	}
}

void steps_stop(struct run *run)
{
	for (size_t i = 0; run->steps && i < run->plan->file->nitems; i++) {
		if (!run->steps[i].proc)
			continue;
		sup_instance_stop(run->steps[i].proc, NULL);
		run->steps[i].proc = sup_instance_free(run->steps[i].proc);
	}
}

json_t *step_json(const struct run *run, const struct step *s)
{
	const struct release_item *it = &run->plan->file->items[s->item];
	json_t *o = json_pack("{ss ss si sb ss sb}", "name", it->name, "kind",
			      it->kind == RELEASE_SERVICE ? "service" : "command", "group", (int)s->group + 1, "critical",
			      it->critical, "state", step_state_name(s->state), "changed", s->changed);

	if (!o)
		return NULL;
	json_object_set_new(o, "started_at", s->started_at ? json_integer(s->started_at) : json_null());
	json_object_set_new(o, "finished_at", s->finished_at ? json_integer(s->finished_at) : json_null());
	json_object_set_new(o, "duration_ms",
			    s->started_at && s->finished_at ? json_integer(s->finished_at - s->started_at) : json_null());
	json_object_set_new(o, "reason", s->reason[0] ? json_string(s->reason) : json_null());
	if (it->kind == RELEASE_SERVICE) {
		json_object_set_new(o, "version", json_string(it->version));
		json_object_set_new(o, "from_version", run->plan->from_versions[s->item][0]
							       ? json_string(run->plan->from_versions[s->item])
							       : json_null());
		json_object_set_new(o, "digest", json_string(run->plan->digests[s->item]));
		json_object_set_new(o, "strategy", json_string(run->plan->strategies[s->item]));
		json_object_set_new(o, "deployment_id", s->deployment_id ? json_integer(s->deployment_id) : json_null());
		json_object_set_new(o, "rollback_deployment_id", s->rollback_id ? json_integer(s->rollback_id) : json_null());
		json_object_set_new(o, "phases", json_deep_copy(s->phases));
	} else {
		char path[4200];

		snprintf(path, sizeof(path), "%s/releases/%lld/%s.log", run_config(run)->state_dir, (long long)run->id,
			 it->name);
		json_object_set_new(o, "run", json_string(it->run));
		json_object_set_new(o, "undo", it->undo ? json_string(it->undo) : json_null());
		json_object_set_new(o, "point_of_no_return", json_boolean(it->point_of_no_return));
		json_object_set_new(o, "exit_code", s->changed && s->state != STEP_RUNNING ? json_integer(s->exit_code)
										   : json_null());
		json_object_set_new(o, "output", s->changed ? json_string(path) : json_null());
		if (s->state == STEP_UNDONE || s->state == STEP_UNDO_FAILED) {
			json_object_set_new(o, "undo_exit_code", json_integer(s->undo_exit_code));
			snprintf(path, sizeof(path), "%s/releases/%lld/%s.undo.log", run_config(run)->state_dir,
				 (long long)run->id, it->name);
			json_object_set_new(o, "undo_output", json_string(path));
		}
	}
	return o;
}

/* run-recover.c - the runs found unfinished when the daemon starts
 * (docs/internals/releases.md, "The daemon killed during a release"): each
 * is read back from its report in release_runs; one awaiting approval
 * waits again (its timeout still counting), a running one is rolled back
 * once the loop runs, from where the deployer's own recovery left each
 * service.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/log.h"
#include "deploy/deploy.h"
#include "loop/loop.h"
#include "proxy/proxy-t.h"
#include "release/release-internal.h"
#include "state/state.h"

/* The steps' states as the report had them. */
static void restore_steps(struct run *run, const json_t *report)
{
	const json_t *steps = json_object_get(report, "steps"), *s;
	size_t k;

	json_array_foreach(steps, k, s) {
		const char *name = json_string_value(json_object_get(s, "name"));
		const char *state = json_string_value(json_object_get(s, "state"));

		for (size_t i = 0; name && state && i < run->plan->file->nitems; i++) {
			struct step *st = &run->steps[i];

			if (strcmp(run->plan->file->items[i].name, name))
				continue;
			if (step_state_parse(state) >= 0)
				st->state = (enum step_state)step_state_parse(state);
			st->changed = json_is_true(json_object_get(s, "changed")) || st->state == STEP_RUNNING ||
				      st->state == STEP_DONE;
			if (json_string_value(json_object_get(s, "reason")))
				snprintf(st->reason, sizeof(st->reason), "%s", json_string_value(json_object_get(s, "reason")));
			/* what was in flight died with the daemon (its deploy was
			 * aborted by the deployer's recovery, its command killed):
			 * the rollback walk judges it again */
			if (st->state == STEP_RUNNING || st->state == STEP_ROLLING_BACK) {
				st->state = STEP_FAILED;
				snprintf(st->reason, sizeof(st->reason), "cut short: the daemon stopped");
			}
			st->deployment_id = json_integer_value(json_object_get(s, "deployment_id"));
			st->rollback_id = json_integer_value(json_object_get(s, "rollback_deployment_id"));
			st->started_at = json_integer_value(json_object_get(s, "started_at"));
			st->finished_at = json_integer_value(json_object_get(s, "finished_at"));
			if (json_is_array(json_object_get(s, "phases"))) {
				json_decref(st->phases);
				st->phases = json_deep_copy(json_object_get(s, "phases"));
			}
			if (st->changed)
				run->started[run->nstarted++] = i;
		}
	}
}

/* A run found unfinished: back in memory as its report says. */
static int recover_one(struct release_runner *rr, const json_t *row)
{
	const json_t *report = json_object_get(row, "report");
	struct release_plan *plan = NULL;
	struct run *run;
	char err[256];
	const char *s;

	if (release_plan_from_json(json_object_get(report, "plan"), &plan, err, sizeof(err)) < 0) {
		log_error("release %lld: its record cannot be read back (%s): left as it is",
			  (long long)json_integer_value(json_object_get(row, "id")), err);
		return 0;
	}
	run = run_new(rr, plan);
	if (!run) {
		release_plan_free(plan);
		return -ENOMEM;
	}
	run->recovered = true;
	run->id = json_integer_value(json_object_get(row, "id"));
	run->who = (uid_t)json_integer_value(json_object_get(row, "started_uid"));
	snprintf(run->started_by, sizeof(run->started_by), "%s",
		 (s = json_string_value(json_object_get(row, "started_by"))) ? s : "?");
	snprintf(run->env, sizeof(run->env), "%s", (s = json_string_value(json_object_get(row, "env"))) ? s : "");
	run->requested_at = json_integer_value(json_object_get(row, "started_at"));
	run->started_at = json_integer_value(json_object_get(report, "started_at"));
	run->expires_at = json_integer_value(json_object_get(report, "expires_at"));
	if ((s = json_string_value(json_object_get(report, "approved_by"))))
		snprintf(run->approved_by, sizeof(run->approved_by), "%s", s);
	run->approved_uid = (uid_t)json_integer_value(json_object_get(report, "approved_uid"));
	json_decref(run->gates);
	json_decref(run->timeline);
	json_decref(run->rollbacks);
	run->gates = json_is_array(json_object_get(report, "gates")) ? json_deep_copy(json_object_get(report, "gates"))
								    : json_array();
	run->timeline = json_is_array(json_object_get(report, "timeline"))
				? json_deep_copy(json_object_get(report, "timeline"))
				: json_array();
	run->rollbacks = json_is_array(json_object_get(report, "rollbacks"))
				 ? json_deep_copy(json_object_get(report, "rollbacks"))
				 : json_array();
	restore_steps(run, report);
	if (json_string_value(json_object_get(report, "reason")))
		snprintf(run->reason, sizeof(run->reason), "%s", json_string_value(json_object_get(report, "reason")));
	run->state = state_release_run_state_parse(json_string_value(json_object_get(row, "state"))) ==
			     STATE_RELEASE_AWAITING_APPROVAL
			     ? STATE_RELEASE_AWAITING_APPROVAL
			     : STATE_RELEASE_RUNNING;
	list_add_tail(&rr->runs, &run->node);
	if (rr->next_id <= run->id)
		rr->next_id = run->id + 1;
	return 0;
}

/* A service the record does not show as changed but that runs the
 * release's version (its deploy ended after the last record): changed. */
static void adopt_changes(struct run *run)
{
	const struct release_plan *p = run->plan;

	for (size_t k = 0; k < p->file->nitems; k++) {
		size_t i = p->order[k];
		struct step *s = &run->steps[i];
		const struct release_item *it = &p->file->items[i];
		struct deployer_versions v;

		if (s->changed || it->kind != RELEASE_SERVICE || !strcmp(p->from_versions[i], it->version) ||
		    deployer_versions(run->rr->d, it->name, &v) < 0 || strcmp(v.live, it->version))
			continue;
		s->changed = true;
		s->state = STEP_DONE;
		run->started[run->nstarted++] = i;
		run_log(run, "%s runs %s, which its record had not caught up with", it->name, it->version);
	}
}

/* Once the loop runs: recovered runs wait again, or roll back. */
static void kick(struct loop *loop, struct loop_timer *t)
{
	struct release_runner *rr = container_of(t, struct release_runner, kick);

	for (struct list_head *pos = rr->runs.next; pos != &rr->runs;) {
		struct run *run = container_of(pos, struct run, node);

		pos = pos->next;
		if (!run->recovered)
			continue;
		run->recovered = false;
		if (run->state == STATE_RELEASE_AWAITING_APPROVAL) {
			int64_t left = run->expires_at - state_now_ms();

			run_log(run, "still awaits approval after the daemon restarted");
			loop_timer_set(loop, &run->tick, loop->now_ms + (left > 0 ? (uint64_t)left : 0), run_expire_tick);
			continue;
		}
		adopt_changes(run);
		run_log(run, "the daemon stopped during the release: rolling it back (docs/internals/releases.md)");
		loop_timer_set(loop, &run->tick, loop->now_ms + 1000, run_sample_tick);
		if (run->reason[0]) {
			char was[sizeof(run->reason)];

			/* it was rolling back already: its cause stays first */
			snprintf(was, sizeof(was), "%s", run->reason);
			run_rollback(run, "%s; the daemon stopped while it rolled back", was);
		} else {
			run_rollback(run, "the daemon stopped during the release");
		}
	}
}

int release_runner_recover(struct release_runner *rr)
{
	struct state_release_run_filter f = { .in_flight = true, .with_report = true };
	json_t *rows = NULL, *row;
	int64_t next = 1;
	size_t i;
	int r;

	r = state_release_run_next_id(rr->st, &next);
	if (r < 0)
		return r;
	rr->next_id = next;
	r = state_release_run_list(rr->st, &f, &rows);
	if (r < 0)
		return r;
	json_array_foreach(rows, i, row) {
		r = recover_one(rr, row);
		if (r < 0)
			break;
	}
	json_decref(rows);
	if (!list_empty(&rr->runs))
		loop_timer_set(rr->p->loop, &rr->kick, rr->p->loop->now_ms, kick);
	return r < 0 ? r : 0;
}


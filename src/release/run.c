/* run.c - the daemon's release runner: runs of release files, their
 * records, approvals, aborts and recovery (docs/internals/releases.md).
 *
 * Everything runs on the loop thread.  A run's report is rebuilt as JSON
 * at every step and written whole to release_runs through the state
 * worker (jobs run in order, so the row always holds the latest report);
 * SQLite is never touched on the loop.  The steps themselves are in
 * run-steps.c, the gates and the traffic counts in run-gates.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/log.h"
#include "base/util.h"
#include "deploy/deploy.h"
#include "loop/loop.h"
#include "loop/worker.h"
#include "proxy/proxy-t.h"
#include "release/gate.h"
#include "release/release-internal.h"
#include "secrets/redact.h"
#include "state/state.h"
#include "supervisor/supervisor.h"

static const char *const step_state_names[STEP__COUNT] = {
	[STEP_PENDING] = "pending",	      [STEP_RUNNING] = "running",	 [STEP_DONE] = "done",
	[STEP_FAILED] = "failed",	      [STEP_SKIPPED] = "skipped",	 [STEP_ROLLING_BACK] = "rolling-back",
	[STEP_ROLLED_BACK] = "rolled-back", [STEP_UNDONE] = "undone",	 [STEP_KEPT] = "kept",
	[STEP_UNDO_FAILED] = "undo-failed",
};

const char *step_state_name(enum step_state s)
{
	return (unsigned)s < STEP__COUNT ? step_state_names[s] : "unknown";
}

int step_state_parse(const char *name)
{
	for (int v = 0; name && v < STEP__COUNT; v++)
		if (!strcmp(step_state_names[v], name))
			return v;
	return -1;
}

const struct config *run_config(const struct run *run)
{
	return run->rr->p->cfg;
}

/* ---- the record ---------------------------------------------------------------- */

static json_t *report_json(const struct run *run)
{
	const struct release_file *f = run->plan->file;
	json_t *steps = json_array(), *o;

	for (size_t k = 0; steps && k < f->nitems; k++)
		json_array_append_new(steps, step_json(run, &run->steps[run->plan->order[k]]));
	o = json_pack("{sI ss so ss ss so so so sI so sI si}", "id", (json_int_t)run->id, "name", f->name, "env",
		      release_json_string(run->env), "file", f->path, "dir", f->dir, "state",
		      json_string(state_release_run_state_name(run->state)), "reason", release_json_string(run->reason),
		      "started_by", json_string(run->started_by), "started_uid", (json_int_t)run->who, "approved_by",
		      release_json_string(run->approved_by), "requested_at", (json_int_t)run->requested_at, "concurrency",
		      (int)run->plan->concurrency);
	if (!o) {
		json_decref(steps);
		return NULL;
	}
	json_object_set_new(o, "approved_uid", run->approved_by[0] ? json_integer(run->approved_uid) : json_null());
	json_object_set_new(o, "started_at", run->started_at ? json_integer(run->started_at) : json_null());
	json_object_set_new(o, "finished_at", run->finished_at ? json_integer(run->finished_at) : json_null());
	json_object_set_new(o, "duration_ms",
			    run->started_at ? json_integer((run->finished_at ? run->finished_at : state_now_ms()) -
							   run->started_at)
					    : json_null());
	json_object_set_new(o, "expires_at", run->expires_at ? json_integer(run->expires_at) : json_null());
	json_object_set_new(o, "plan", release_plan_json(run->plan));
	json_object_set_new(o, "gates", json_deep_copy(run->gates));
	json_object_set_new(o, "steps", steps ? steps : json_array());
	json_object_set_new(o, "rollbacks", json_deep_copy(run->rollbacks));
	json_object_set_new(o, "traffic", traffic_json(run));
	json_object_set_new(o, "timeline", json_deep_copy(run->timeline));
	return o;
}

/* A write of the run's row, on the worker. */
struct persist_job {
	struct release_runner *rr;
	struct state_release_run row;
	bool first;
	int64_t id, finished_at;
	char *report;
	char name[RELEASE_NAME_MAX + 1], env[64], user[64];
	char resolved[64];            /* the user's name, looked up here (NSS may block) */
};

static void persist_work(void *data)
{
	struct persist_job *j = data;
	struct state *st = j->rr->st;
	int r;

	state_actor_name((unsigned)j->row.started_uid, false, j->resolved, sizeof(j->resolved));
	if (j->first) {
		j->row.name = j->name;
		j->row.env = j->env[0] ? j->env : NULL;
		j->row.started_by = strncmp(j->resolved, "uid ", 4) ? j->resolved : j->user;
		j->row.report = j->report;
		j->row.want_id = j->id;
		r = state_release_run_begin(st, &j->row, NULL);
	} else {
		r = state_release_run_update(st, j->id, j->row.state, j->finished_at, j->report);
	}
	if (r < 0)
		log_error("state: cannot record release %lld: %s", (long long)j->id, state_errmsg(st));
}

static void persist_done(void *data)
{
	struct persist_job *j = data;

	/* the name for the next writes and the reports */
	for (struct list_head *pos = j->rr->runs.next; j->resolved[0] && pos != &j->rr->runs; pos = pos->next) {
		struct run *run = container_of(pos, struct run, node);

		if (run->id == j->id && !strncmp(run->started_by, "uid ", 4))
			snprintf(run->started_by, sizeof(run->started_by), "%s", j->resolved);
	}
	free(j->report);
	free(j);
}

/* Write the run's row: the first time an insert, then updates. */
static void persist(struct run *run, bool first)
{
	struct persist_job *j = calloc(1, sizeof(*j));
	json_t *report = report_json(run);

	if (!j || !report || !(j->report = json_dumps(report, JSON_COMPACT))) {
		log_error("release %lld: out of memory writing its record", (long long)run->id);
		json_decref(report);
		free(j);
		return;
	}
	json_decref(report);
	j->rr = run->rr;
	j->id = run->id;
	j->first = first;
	j->row.state = run->state;
	j->row.started_uid = run->who;
	j->row.started_at = run->requested_at;
	j->finished_at = run->finished_at;
	snprintf(j->name, sizeof(j->name), "%s", run->plan->file->name);
	snprintf(j->env, sizeof(j->env), "%s", run->env);
	snprintf(j->user, sizeof(j->user), "%s", run->started_by);
	if (worker_submit(run->rr->w, persist_work, persist_done, j) < 0) {
		free(j->report);
		free(j);
	}
}

void run_persist(struct run *run)
{
	persist(run, false);
}

/* An audit row, on the worker. */
struct audit_job {
	struct release_runner *rr;
	uid_t who;
	int64_t release_id;
	char action[32], target[96], result[16], env[64], detail[512];
};

static void audit_work(void *data)
{
	struct audit_job *j = data;
	char actor[96];
	struct state_audit_entry e = { .actor = actor, .actor_uid = (unsigned)j->who, .action = j->action,
				       .target = j->target, .result = j->result, .detail = j->detail[0] ? j->detail : NULL,
				       .env = j->env[0] ? j->env : NULL, .release_id = j->release_id };

	state_actor_name((unsigned)j->who, j->who == DEPLOY_BY_DAEMON, actor, sizeof(actor));
	if (state_audit_add(j->rr->st, &e, NULL) < 0)
		log_error("state: cannot write an audit row: %s", state_errmsg(j->rr->st));
}

static void audit_done(void *data)
{
	free(data);
}

static void run_audit(struct run *run, uid_t who, const char *action, const char *result, const char *detail)
{
	struct audit_job *j = calloc(1, sizeof(*j));

	if (!j)
		return;
	j->rr = run->rr;
	j->who = who;
	j->release_id = run->id;
	snprintf(j->action, sizeof(j->action), "%s", action);
	snprintf(j->target, sizeof(j->target), "release %lld (%s)", (long long)run->id, run->plan->file->name);
	snprintf(j->result, sizeof(j->result), "%s", result);
	snprintf(j->env, sizeof(j->env), "%s", run->env);
	snprintf(j->detail, sizeof(j->detail), "%s", detail ? detail : "");
	if (worker_submit(run->rr->w, audit_work, audit_done, j) < 0)
		free(j);
}

/* ---- events and the timeline ------------------------------------------------------------ */

void run_log(struct run *run, const char *fmt, ...)
{
	char raw[768], *tofree = NULL;
	const char *text;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	text = redact_global_str(raw, &tofree);
	json_array_append_new(run->timeline, json_pack("{sI ss}", "at", (json_int_t)state_now_ms(), "text", text));
	log_info("release %lld (%s): %s", (long long)run->id, run->plan->file->name, text);
	free(tofree);
}

void run_emit(struct run *run, const char *phase, const char *detail, const struct step *s)
{
	json_t *ev;

	if (!run->rr->on_event)
		return;
	ev = json_pack("{sI ss so ss ss* sI}", "id", (json_int_t)run->id, "name", run->plan->file->name, "env",
		       release_json_string(run->env), "phase", phase, "detail", detail, "at_ms", (json_int_t)state_now_ms());
	if (ev && s) {
		const struct release_item *it = &run->plan->file->items[s->item];

		json_object_set_new(ev, "step", json_string(it->name));
		json_object_set_new(ev, "step_state", json_string(step_state_name(s->state)));
		if (it->kind == RELEASE_SERVICE) {
			json_object_set_new(ev, "service", json_string(it->name));
			json_object_set_new(ev, "version", json_string(it->version));
			json_object_set_new(ev, "from_version", release_json_string(run->plan->from_versions[s->item]));
		}
	}
	if (ev)
		run->rr->on_event(run->rr->event_data, ev);
	json_decref(ev);
}

/* ---- files and commands ------------------------------------------------------------------ */

char *run_log_path(struct run *run, const char *name)
{
	char dir[4096], *path = NULL;

	snprintf(dir, sizeof(dir), "%s/releases/%lld", run_config(run)->state_dir, (long long)run->id);
	if (make_dirs(dir, 0700) < 0)
		return NULL;
	if (asprintf(&path, "%s/%s.log", dir, name) < 0)
		return NULL;
	return path;
}

static void command_env_free(struct run *run)
{
	for (int i = 0; i < 6; i++) {
		free(run->command_env[i]);
		run->command_env[i] = NULL;
	}
}

/* A "NAME=value" string, or NULL when out of memory. */
static char *env_entry(const char *name, const char *value)
{
	char *e = NULL;

	return asprintf(&e, "%s=%s", name, value) < 0 ? NULL : e;
}

/* The environment of a gate's or step's command (NULL-terminated): the
 * daemon's PATH, HOME and LANG and the release's id, name and environment,
 * built at the first call, owned by the run; NULL when out of memory. */
static char **run_command_env(struct run *run)
{
	const char *home = getenv("HOME"), *lang = getenv("LANG"), *path = getenv("PATH");
	char id[24];

	if (run->command_env[0])
		return run->command_env;
	/* whole values, however long: a PATH cut short finds no `rm` */
	snprintf(id, sizeof(id), "%lld", (long long)run->id);
	run->command_env[0] = env_entry("PATH", path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
	run->command_env[1] = env_entry("HOME", home ? home : "/");
	run->command_env[2] = env_entry("LANG", lang ? lang : "C.UTF-8");
	run->command_env[3] = env_entry("CUTOVER_ENV", run->env);
	run->command_env[4] = env_entry("CUTOVER_RELEASE_ID", id);
	run->command_env[5] = env_entry("CUTOVER_RELEASE", run->plan->file->name);
	run->command_env[6] = NULL;
	for (int i = 0; i < 6; i++)
		if (!run->command_env[i]) {
			command_env_free(run);
			return NULL;
		}
	return run->command_env;
}

int run_command_start(struct run *run, const char *name, const char *command, const struct sup_callbacks *cb,
		      void *data, struct sup_instance **ret)
{
	struct sup_spec spec;
	struct redactor *hide = NULL;
	char id[96], *log_path = run_log_path(run, name);
	int r;

	if (!log_path)
		return -ENOMEM;
	/* each start reads alone (a gate runs between every group) */
	if (truncate(log_path, 0) < 0 && errno != ENOENT)
		log_warn("cannot empty %s: %s", log_path, strerror(errno));
	r = redact_global_copy(&hide);
	snprintf(id, sizeof(id), "release-%lld-%.40s", (long long)run->id, name);
	sup_spec_init(&spec);
	spec.id = id;
	spec.command = command;
	spec.env = run_command_env(run);
	spec.cwd = run->plan->file->dir;
	spec.log_path = log_path;
	spec.redact = hide;           /* the secrets' values hidden from the log (a relay) */
	spec.restart.max_restarts = 0;
	spec.die_with_daemon = true;  /* nothing would adopt it after a crash */
	if (r >= 0 && !spec.env)
		r = -ENOMEM;
	if (r >= 0)
		r = sup_instance_start(run->rr->sup, &spec, cb, data, ret);
	redactor_free(hide);
	free(log_path);
	return r < 0 ? r : 0;
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

static void run_free(struct run *run)
{
	struct loop *loop = run->rr->p->loop;

	gates_stop(run);
	steps_stop(run);
	loop_timer_cancel(loop, &run->tick);
	loop_timer_cancel(loop, &run->gate_timer);
	for (size_t i = 0; run->steps && i < run->plan->file->nitems; i++) {
		loop_timer_cancel(loop, &run->steps[i].timer);
		json_decref(run->steps[i].phases);
	}
	free(run->steps);
	free(run->started);
	free(run->traffic);
	command_env_free(run);
	json_decref(run->gates);
	json_decref(run->rollbacks);
	json_decref(run->timeline);
	release_plan_free(run->plan);
	free(run);
}

/* Freed once the loop is out of the callbacks that may still hold it. */
static void reap_tick(struct loop *loop, struct loop_timer *t)
{
	struct run *run = container_of(t, struct run, tick);

	(void)loop;
	run_free(run);
}

void run_finish(struct run *run, enum state_release_run_state s, const char *reason)
{
	static const char *const phase[] = {
		[STATE_RELEASE_SUCCEEDED] = "succeeded", [STATE_RELEASE_DEGRADED] = "degraded",
		[STATE_RELEASE_ROLLED_BACK] = "rolled-back", [STATE_RELEASE_FAILED] = "failed",
		[STATE_RELEASE_REJECTED] = "rejected", [STATE_RELEASE_EXPIRED] = "expired",
	};

	if (state_release_run_state_terminal(run->state))
		return;
	traffic_sample(run);
	run->state = s;
	run->phase = PHASE_END;
	run->finished_at = state_now_ms();
	if (reason && !run->reason[0])
		snprintf(run->reason, sizeof(run->reason), "%s", reason);
	for (size_t i = 0; i < run->plan->file->nitems; i++)
		if (run->steps[i].state == STEP_PENDING)
			run->steps[i].state = STEP_SKIPPED;
	run_log(run, "release %s%s%s", state_release_run_state_name(s), run->reason[0] ? ": " : "", run->reason);
	run_persist(run);
	run_audit(run, DEPLOY_BY_DAEMON, "release.end", state_release_run_state_name(s), run->reason);
	run_emit(run, (unsigned)s < sizeof(phase) / sizeof(phase[0]) && phase[s] ? phase[s] : "failed", run->reason,
		 NULL);
	list_del(&run->node);
	loop_timer_cancel(run->rr->p->loop, &run->tick);
	loop_timer_set(run->rr->p->loop, &run->tick, run->rr->p->loop->now_ms, reap_tick);
}

/* Traffic every second while running; nothing else on the tick. */
void run_sample_tick(struct loop *loop, struct loop_timer *t)
{
	struct run *run = container_of(t, struct run, tick);

	traffic_sample(run);
	loop_timer_set(loop, t, loop->now_ms + 1000, run_sample_tick);
	steps_poll(run);      /* last: it may end the run */
}

static void start_running(struct run *run)
{
	run->state = STATE_RELEASE_RUNNING;
	run->phase = PHASE_BEFORE;
	run->started_at = state_now_ms();
	run->expires_at = 0;
	traffic_sample(run);
	run_log(run, "started: %zu groups, at most %u deploys at once", run->plan->ngroups, run->plan->concurrency);
	run_emit(run, "started", NULL, NULL);
	loop_timer_cancel(run->rr->p->loop, &run->tick);
	loop_timer_set(run->rr->p->loop, &run->tick, run->rr->p->loop->now_ms + 1000, run_sample_tick);
	run_advance(run);
}

void run_expire_tick(struct loop *loop, struct loop_timer *t)
{
	struct run *run = container_of(t, struct run, tick);

	(void)loop;
	run_audit(run, DEPLOY_BY_DAEMON, "release.expire", "ok", NULL);
	run_finish(run, STATE_RELEASE_EXPIRED, "nobody approved it in time");
}

struct run *run_new(struct release_runner *rr, struct release_plan *plan)
{
	struct run *run = calloc(1, sizeof(*run));
	size_t n = plan->file->nitems;

	if (!run)
		return NULL;
	run->rr = rr;
	run->plan = plan;
	run->gate = SIZE_MAX;
	run->steps = calloc(n, sizeof(*run->steps));
	run->started = calloc(n, sizeof(*run->started));
	run->gates = json_array();
	run->rollbacks = json_array();
	run->timeline = json_array();
	if (!run->steps || !run->started || !run->gates || !run->rollbacks || !run->timeline) {
		run->plan = NULL;
		run_free(run);
		return NULL;
	}
	for (size_t g = 0; g < plan->ngroups; g++)
		for (size_t k = plan->group_start[g]; k < plan->group_start[g + 1]; k++) {
			struct step *s = &run->steps[plan->order[k]];

			s->run = run;
			s->item = plan->order[k];
			s->group = g;
			s->phases = json_array();
		}
	return run;
}

static struct run *find_run(struct release_runner *rr, int64_t id)
{
	for (struct list_head *pos = rr->runs.next; pos != &rr->runs; pos = pos->next) {
		struct run *run = container_of(pos, struct run, node);

		if (run->id == id)
			return run;
	}
	return NULL;
}

/* A service of plan in another active run, or deploying now: its name. */
static const char *busy_service(struct release_runner *rr, const struct release_plan *plan)
{
	for (size_t i = 0; i < plan->file->nitems; i++) {
		const struct release_item *it = &plan->file->items[i];
		struct deployer_versions v;

		if (it->kind != RELEASE_SERVICE)
			continue;
		if (deployer_versions(rr->d, it->name, &v) == 0 && v.in_flight)
			return it->name;
		for (struct list_head *pos = rr->runs.next; pos != &rr->runs; pos = pos->next) {
			const struct run *other = container_of(pos, struct run, node);

			for (size_t j = 0; j < other->plan->file->nitems; j++)
				if (!strcmp(other->plan->file->items[j].name, it->name))
					return it->name;
		}
	}
	return NULL;
}

static bool managed_service(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nservices; i++)
		if (!strcmp(cfg->services[i].name, name))
			return cfg->services[i].run != NULL;
	return false;
}

int64_t release_runner_start(struct release_runner *rr, const json_t *plan_json, uid_t who, char *err,
			     size_t errlen)
{
	const struct config *cfg = rr->p->cfg;
	struct release_plan *plan = NULL;
	const char *busy;
	struct run *run;

	if (release_plan_from_json(plan_json, &plan, err, errlen) < 0)
		return -EINVAL;
	for (size_t i = 0; i < plan->file->nitems; i++) {
		const struct release_item *it = &plan->file->items[i];

		if (it->kind == RELEASE_SERVICE && !managed_service(cfg, it->name)) {
			snprintf(err, errlen, "%s is not a service this daemon runs%s%s", it->name,
				 cfg->env ? " in " : "", cfg->env ? cfg->env : "");
			release_plan_free(plan);
			return -EINVAL;
		}
	}
	if ((busy = busy_service(rr, plan))) {
		snprintf(err, errlen, "%s is being deployed or is part of another release that runs now", busy);
		release_plan_free(plan);
		return -EBUSY;
	}
	run = run_new(rr, plan);
	if (!run) {
		release_plan_free(plan);
		return -ENOMEM;
	}
	run->id = rr->next_id++;
	run->who = who;
	snprintf(run->started_by, sizeof(run->started_by), "uid %u", (unsigned)who);
	snprintf(run->env, sizeof(run->env), "%s", cfg->env ? cfg->env : "");
	run->requested_at = state_now_ms();
	list_add_tail(&rr->runs, &run->node);
	run_audit(run, who, "release.run", "ok", NULL);
	if (cfg->approval.required) {
		run->state = STATE_RELEASE_AWAITING_APPROVAL;
		run->expires_at = run->requested_at + (int64_t)cfg->approval.timeout_ms;
		run_log(run, "awaits approval: cutover release approve %lld%s%s", (long long)run->id,
			run->env[0] ? " --env " : "", run->env);
		persist(run, true);
		run_emit(run, "awaiting-approval", NULL, NULL);
		loop_timer_set(rr->p->loop, &run->tick, rr->p->loop->now_ms + cfg->approval.timeout_ms, run_expire_tick);
		return run->id;
	}
	run->state = STATE_RELEASE_RUNNING;
	persist(run, true);
	start_running(run);
	return run->id;
}

/* The login name of WHO, else "uid N", into buf.  A lookup on the loop,
 * but only for a person's decision (abort, approve, reject): rare, and
 * local users come from /etc/passwd. */
static const char *user_name(uid_t who, char *buf, size_t len)
{
	state_actor_name((unsigned)who, false, buf, len);
	return buf;
}

int64_t release_runner_abort(struct release_runner *rr, int64_t id, uid_t who, const char *reason, char *err,
			     size_t errlen)
{
	struct run *run = find_run(rr, id);
	char why[300], name[64];

	if (!run) {
		snprintf(err, errlen, "release %lld is not running (cutover release list)", (long long)id);
		return -ENOENT;
	}
	if (run->state == STATE_RELEASE_AWAITING_APPROVAL)
		return release_runner_reject(rr, id, who, reason ? reason : "withdrawn (abort)", err, errlen);
	if (run->state == STATE_RELEASE_ROLLING_BACK) {
		snprintf(err, errlen, "release %lld is already rolling back", (long long)id);
		run_audit(run, who, "release.abort", "refused", err);
		return -EALREADY;
	}
	snprintf(why, sizeof(why), "aborted by %s%s%s", user_name(who, name, sizeof(name)), reason ? ": " : "",
		 reason ? reason : "");
	run_audit(run, who, "release.abort", "ok", reason);
	run_rollback(run, "%s", why);
	return id;
}

int64_t release_runner_approve(struct release_runner *rr, int64_t id, uid_t who, char *err, size_t errlen)
{
	struct run *run = find_run(rr, id);

	if (!run || run->state != STATE_RELEASE_AWAITING_APPROVAL) {
		snprintf(err, errlen, "release %lld does not await approval", (long long)id);
		return run ? -EALREADY : -ENOENT;
	}
	if (rr->p->cfg->approval.distinct && who == run->who) {
		snprintf(err, errlen, "approval.distinct: who asked for release %lld cannot approve it", (long long)id);
		run_audit(run, who, "release.approve", "refused", err);
		return -EPERM;
	}
	run->approved_uid = who;
	user_name(who, run->approved_by, sizeof(run->approved_by));
	run_audit(run, who, "release.approve", "ok", NULL);
	run_log(run, "approved by %s", run->approved_by);
	loop_timer_cancel(rr->p->loop, &run->tick);
	start_running(run);
	return id;
}

int64_t release_runner_reject(struct release_runner *rr, int64_t id, uid_t who, const char *reason, char *err,
			      size_t errlen)
{
	struct run *run = find_run(rr, id);
	char why[300], name[64];

	if (!run || run->state != STATE_RELEASE_AWAITING_APPROVAL) {
		snprintf(err, errlen, "release %lld does not await approval", (long long)id);
		return run ? -EALREADY : -ENOENT;
	}
	run_audit(run, who, "release.reject", "ok", reason);
	snprintf(why, sizeof(why), "rejected by %s%s%s", user_name(who, name, sizeof(name)), reason ? ": " : "",
		 reason ? reason : "");
	run_finish(run, STATE_RELEASE_REJECTED, why);
	return id;
}

json_t *release_runner_get(struct release_runner *rr, int64_t id)
{
	struct run *run = find_run(rr, id);
	json_t *o;

	if (!run)
		return NULL;
	o = json_pack("{sI ss so ss ss sI so}", "id", (json_int_t)run->id, "name", run->plan->file->name, "env",
		      release_json_string(run->env), "state", state_release_run_state_name(run->state), "started_by",
		      run->started_by, "started_at", (json_int_t)run->requested_at, "report", report_json(run));
	return o;
}

json_t *release_runner_status(struct release_runner *rr)
{
	json_t *arr = json_array();

	for (struct list_head *pos = rr->runs.next; arr && pos != &rr->runs; pos = pos->next) {
		const struct run *run = container_of(pos, struct run, node);

		json_array_append_new(arr, json_pack("{sI ss ss si si}", "id", (json_int_t)run->id, "name",
						     run->plan->file->name, "state",
						     state_release_run_state_name(run->state), "group",
						     (int)run->group + 1, "groups", (int)run->plan->ngroups));
	}
	return arr;
}

bool release_runner_busy(struct release_runner *rr, char *what, size_t len)
{
	for (struct list_head *pos = rr->runs.next; pos != &rr->runs; pos = pos->next) {
		const struct run *run = container_of(pos, struct run, node);

		if (run->state == STATE_RELEASE_AWAITING_APPROVAL)
			continue;
		if (what)
			snprintf(what, len, "release %lld (%s)", (long long)run->id, run->plan->file->name);
		return true;
	}
	return false;
}

void release_runner_deployment_event(struct release_runner *rr, const json_t *event)
{
	json_int_t rid = json_integer_value(json_object_get(event, "release_id"));
	json_int_t id = json_integer_value(json_object_get(event, "id"));

	for (struct list_head *pos = rr->runs.next; pos != &rr->runs;) {
		struct run *run = container_of(pos, struct run, node);

		pos = pos->next;      /* the run may finish (and leave the list) below */
		if (rid == run->id || id > 0)
			steps_deployment_event(run, event);
	}
}

void release_runner_observe(struct release_runner *rr, release_event_fn fn, void *data)
{
	rr->on_event = fn;
	rr->event_data = data;
}

/* ---- start and recovery ------------------------------------------------------------------ */

int release_runner_new(struct proxy *p, struct supervisor *sup, struct deployer *d, struct worker *w,
		       struct state *st, struct release_runner **ret)
{
	struct release_runner *rr = calloc(1, sizeof(*rr));

	if (!rr)
		return -ENOMEM;
	rr->p = p;
	rr->sup = sup;
	rr->d = d;
	rr->w = w;
	rr->st = st;
	rr->next_id = 1;
	list_init(&rr->runs);
	*ret = rr;
	return 0;
}

void release_runner_free(struct release_runner *rr)
{
	if (!rr)
		return;
	loop_timer_cancel(rr->p->loop, &rr->kick);
	while (!list_empty(&rr->runs)) {
		struct run *run = container_of(rr->runs.next, struct run, node);

		list_del(&run->node);
		run_free(run);
	}
	free(rr);
}

/* engine.c - the deployment state machine: a deploy or a rollback from
 * its start to its result, and the entry points deployer_deploy() and
 * deployer_rollback() (declarations in deploy-internal.h).
 *
 *   starting -> health-checking -> (smoke-testing) -> switched -> done
 *                                                        `-> rolled-back
 *   failed: before the switch (traffic never left the old version)
 *
 * Each phase is recorded (record.c) before the engine acts on the next
 * one, and told to the observer as it happens.  The instances themselves
 * are slots.c's.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/list.h"
#include "base/log.h"
#include "base/util.h"
#include "deploy/analysis.h"
#include "deploy/deploy-internal.h"
#include "deploy/health.h"
#include "loop/loop.h"
#include "loop/worker.h"
#include "metrics/metrics.h"
#include "proxy/proxy-t.h"
#include "state/state.h"
#include "store/store.h"
#include "supervisor/supervisor.h"

/* ------------------------------------------------------------------ */
/* events of a deployment                                              */

/* Record an event under the name of the current phase, or `label`. */
static void dep_event_as(struct deployment *dep, const char *label, const char *detail)
{
	json_t *ev = json_pack("{s:s, s:I, s:I, s:s?}", "phase", label, "at_ms", (json_int_t)deploy_wall_ms(), "elapsed_ms",
			       (json_int_t)(time_now_ms() - dep->t_start_ms), "detail", detail);

	json_array_append(dep->events, ev);
	if (dep->d->on_event) {
		json_t *out = json_deep_copy(ev);
		json_object_set_new(out, "id", json_integer(dep->id));
		json_object_set_new(out, "service", json_string(dep->service));
		json_object_set_new(out, "version", json_string(dep->version));
		json_object_set_new(out, "from_version", dep->from_version[0] ? json_string(dep->from_version) : json_null());
		json_object_set_new(out, "kind", json_string(dep->is_rollback ? "rollback" : "deploy"));
		if (dep->phase >= PH_DONE) {
			json_object_set_new(out, "result", json_string(phase_names[dep->phase]));
			json_object_set_new(out, "reason", json_string(dep->reason));
		}
		deployer_emit(dep->d, "deployment", out);
	}
	json_decref(ev);
	log_info("%s %s %s: %s%s%s", dep->is_rollback ? "rollback of" : "deploy", dep->service, dep->version, label,
		 detail ? ": " : "", detail ? detail : "");
}

static void dep_event(struct deployment *dep, const char *detail)
{
	dep_event_as(dep, phase_names[dep->phase], detail);
}

static void smoke_stopped(struct sup_instance *inst, const struct sup_exit *last, void *data)
{
	sup_instance_free(inst);
}

/* ------------------------------------------------------------------ */
/* the deployment state machine                                        */

void dep_finish(struct deployment *dep, enum phase result, const char *fmt, ...)
{
	struct managed *m = dep->m;
	va_list ap;

	if (dep->phase >= PH_DONE)
		return;
	dep->reason[0] = 0;
	if (fmt) { /* NULL: finished with nothing to explain (done) */
		va_start(ap, fmt);
		vsnprintf(dep->reason, sizeof(dep->reason), fmt, ap);
		va_end(ap);
	}
	dep->phase = result;
	dep->t_end_ms = time_now_ms();
	loop_timer_cancel(dep->d->p->loop, &dep->timer);
	free(dep->watch);
	dep->watch = NULL;
	dep->watched = NULL;
	if (dep->smoke) {
		if (sup_instance_stop(dep->smoke, smoke_stopped) < 0)
			sup_instance_free(dep->smoke);
		dep->smoke = NULL;
	}
	if (result == PH_FAILED && dep->green) {
		/* traffic never left the old version */
		slot_stop(dep->green);
		dep->green = NULL;
	}
	dep_event(dep, dep->reason[0] ? dep->reason : NULL);
	enum state_deployment_state to = result == PH_DONE	     ? STATE_DEPLOYMENT_DONE
					 : result == PH_ROLLED_BACK ? STATE_DEPLOYMENT_ROLLED_BACK
								    : STATE_DEPLOYMENT_FAILED;
	/* the result, the routing it left (after a rollback) and the audit
	 * row: one transaction, so a crash cannot keep one without the others */
	record_result(dep, to, dep->reason[0] ? dep->reason : NULL, dep->routed_back);
	dep->routed_back = NULL;
	if (m->dep == dep)
		m->dep = NULL;
}

/* Move traffic back to the warm previous version now.  Returns false (and
 * fails the deployment in flight, traffic untouched) if there is none that
 * runs and is not failing its health check.  Without a deployment in flight (a live version
 * crash-looping) the routing and the audit row are written together. */
bool rollback_now(struct managed *m, const char *why)
{
	struct deployment *dep = m->dep;
	struct slot *bad = m->live, *back = m->prev;
	uint64_t t0 = time_now_ns();

	/* (unknown health: just re-adopted after a restart, its checks restarting) */
	if (!back || back->crashed || back->health == HEALTH_UNHEALTHY || route_to(m, back) < 0) {
		if (dep)
			dep_finish(dep, PH_FAILED, "%s; %s", why,
				   !back ? "no warm previous version to roll back to: traffic stays"
					 : "the previous version is not healthy: traffic stays");
		return false;
	}
	double rollback_ms = (double)(time_now_ns() - t0) / 1e6; /* the switch back, at the proxy */

	m->live = back;
	m->prev = NULL;
	m->prev_version[0] = 0; /* nothing to go back to from here */
	loop_timer_cancel(m->d->p->loop, &m->prev_timer);
	record_instance_state(m->d, back->ref, STATE_INSTANCE_HEALTHY);
	log_warn("rolled %s back to %s in %.3f ms: %s", m->name, back->version, rollback_ms, why);
	if (!dep)
		record_routing_audit(m->d, back, DEPLOY_BY_DAEMON, "rollback", bad ? bad->version : NULL, "rolled-back",
				     why);
	if (dep) {
		dep->green = NULL;
		dep->routed_back = back;
		dep_finish(dep, PH_ROLLED_BACK, "%s; traffic back on %s in %.3f ms", why, back->version, rollback_ms);
		json_object_set_new(json_array_get(dep->events, json_array_size(dep->events) - 1), "rollback_ms",
				    json_real(rollback_ms));
	}
	slot_retire(bad); /* requests in flight on it finish first */
	return true;
}

/* Every WATCH_TICK_MS after the switch: judge the new version. */
static void watch_tick(struct loop *loop, struct loop_timer *t)
{
	struct deployment *dep = container_of(t, struct deployment, timer);
	const struct config_service *cs = deployer_config(dep->d, dep->service);
	const struct metrics_upstream *mu = dep->watched;
	struct watch *w = dep->watch;
	struct metrics_counts window;
	struct analysis_verdict v;

	if (!cs || !mu || !w) {
		dep_finish(dep, PH_DONE, NULL);
		return;
	}
	/* the new version since the switch, against the old one before it */
	struct analysis_rules rules = { .max_error_rate_permille = cs->deploy.max_error_rate_permille,
					.max_p99_ms = cs->deploy.max_p99_ms,
					.min_requests = cs->deploy.min_requests };
	metrics_counts_window(&window, &mu->counts, &w->new_at_switch);
	if (analysis_judge(&rules, &window, w->has_baseline ? &w->baseline : NULL, &v) == ANALYSIS_FAIL) {
		rollback_now(dep->m, v.reason);
		return;
	}
	if (loop->now_ms >= dep->watch_until_ms) {
		dep_finish(dep, PH_DONE, NULL);
		return;
	}
	loop_timer_set(loop, t, loop->now_ms + WATCH_TICK_MS, watch_tick);
}

static void dep_switch(struct deployment *dep)
{
	struct managed *m = dep->m;
	struct deployer *d = dep->d;
	const struct config_service *cs = deployer_config(d, dep->service);
	struct slot *green = dep->green;
	uint64_t t0 = time_now_ns();
	char detail[320];

	if (route_to(m, green) < 0) {
		dep_finish(dep, PH_FAILED, "cannot route %s to %s", m->name, green->addr);
		return;
	}
	/* the switch at the proxy, measured as the rollback is: the route alone */
	double switch_ms = (double)(time_now_ns() - t0) / 1e6;
	dep->t_switched_ms = time_now_ms();
	struct slot *old_live = m->live;
	/* the old live version stays warm for the rollback window; one older
	 * than that is stopped now.  With nothing live (a version restarted
	 * after its instance was lost), a warm one stays what it was. */
	if (m->live) {
		slot_stop(m->prev);
		m->prev = m->live;
		snprintf(m->prev_version, sizeof(m->prev_version), "%s", m->prev->version);
	} else if (!m->prev && dep->from_version[0]) {
		snprintf(m->prev_version, sizeof(m->prev_version), "%s", dep->from_version);
	}
	m->live = green;
	dep->green = NULL;
	if (dep->is_rollback) {
		/* a rollback started the old version again: the version it
		 * replaces is the one being rolled back, not a fallback */
		slot_retire(m->prev);
		m->prev = NULL;
		m->prev_version[0] = 0;
	}
	/* "draining": out of traffic, kept warm for the rollback window (the
	 * next daemon re-adopts it as such after a restart) */
	if (m->prev && m->prev == old_live) {
		record_instance_state(d, m->prev->ref, STATE_INSTANCE_DRAINING);
		loop_timer_set(d->p->loop, &m->prev_timer, d->p->loop->now_ms + cs->deploy.rollback_window_ms,
			       prev_window_over);
	}
	dep->phase = PH_WATCH;
	snprintf(detail, sizeof(detail), "traffic on %s (%s), switch took %.3f ms at the proxy", green->version,
		 green->addr, switch_ms);
	if (!dep->is_rollback)
		snprintf(detail + strlen(detail), sizeof(detail) - strlen(detail), "; watching for %llu s",
			 (unsigned long long)(cs->deploy.watch_ms / 1000));
	dep_event(dep, detail);
	json_object_set_new(json_array_get(dep->events, json_array_size(dep->events) - 1), "switch_ms",
			    json_real(switch_ms));
	record_route(dep, STATE_DEPLOYMENT_SWITCHED, detail, green);
	if (dep->is_rollback || cs->deploy.watch_ms == 0) {
		/* a rollback has nothing older to fall back to; watch: 0s is no watch */
		dep_finish(dep, PH_DONE, NULL);
		return;
	}
	dep->watched = slot_metrics(m, m->live);
	if (dep->watched && dep->watch) {
		struct watch *w = dep->watch;
		const struct metrics_upstream *old = w->has_baseline ? slot_metrics(m, m->prev) : NULL;
		w->new_at_switch = dep->watched->counts;
		/* the old version's window, from the start of the deploy to the switch */
		if (old)
			metrics_counts_window(&w->baseline, &old->counts, &w->old_at_start);
		w->has_baseline = old != NULL;
	}
	dep->watch_until_ms = d->p->loop->now_ms + cs->deploy.watch_ms;
	loop_timer_set(d->p->loop, &dep->timer, d->p->loop->now_ms + WATCH_TICK_MS, watch_tick);
}

static void smoke_exit(struct sup_instance *inst, const struct sup_exit *e, void *data)
{
	struct deployment *dep = data;

	dep->smoke = NULL;
	sup_instance_free(inst);
	if (dep->phase != PH_SMOKE)
		return;
	if (e->known && e->code == 0) {
		dep_switch(dep);
		return;
	}
	if (e->spawn_error)
		dep_finish(dep, PH_FAILED, "smoke command could not run (%s)", strerror(e->spawn_error));
	else if (e->signal)
		dep_finish(dep, PH_FAILED, "smoke command killed by signal %d", e->signal);
	else
		dep_finish(dep, PH_FAILED, "smoke command failed with status %d", e->code);
}

static void smoke_timeout(struct loop *loop, struct loop_timer *t)
{
	struct deployment *dep = container_of(t, struct deployment, timer);
	const struct config_service *cs = deployer_config(dep->d, dep->service);

	dep_finish(dep, PH_FAILED, "smoke command still running after %llu s (the deploy timeout): stopped",
		   (unsigned long long)(cs ? cs->deploy.timeout_ms / 1000 : 0));
}

void dep_healthy(struct deployment *dep)
{
	const struct config_service *cs = deployer_config(dep->d, dep->service);
	char detail[96];

	dep->t_healthy_ms = time_now_ms();
	snprintf(detail, sizeof(detail), "%s healthy after %.2f s", dep->green->addr,
		 (double)(dep->t_healthy_ms - dep->t_start_ms) / 1000.0);
	dep_event_as(dep, "healthy", detail);
	record_phase(dep, STATE_DEPLOYMENT_HEALTH_CHECKING, detail, false); /* the same phase: an event in the history */
	loop_timer_cancel(dep->d->p->loop, &dep->timer);
	if (cs && cs->deploy.smoke) {
		struct sup_spec spec;
		struct sup_callbacks cb = { .on_give_up = smoke_exit };
		char url[64], port[8], id[96], log_path[4200];
		char *env[] = { "PATH=/usr/local/bin:/usr/bin:/bin", NULL, NULL };
		char urlvar[80];
		char *cmd;
		snprintf(port, sizeof(port), "%u", dep->green->port);
		snprintf(url, sizeof(url), "http://%s", dep->green->addr);
		snprintf(urlvar, sizeof(urlvar), "URL=%s", url);
		env[1] = urlvar;
		cmd = deploy_exec_simple(deploy_substitute(cs->deploy.smoke, port, dep->version, dep->service,
						   dep->green->release_dir, url));
		snprintf(id, sizeof(id), "smoke-%s-%lld", dep->service, (long long)dep->id);
		snprintf(log_path, sizeof(log_path), "%s/logs/%s/smoke.log", dep->d->p->cfg->state_dir, dep->service);
		sup_spec_init(&spec);
		spec.id = id;
		spec.command = cmd;
		spec.env = env;
		spec.cwd = dep->green->release_dir;
		spec.log_path = log_path;
		spec.restart.max_restarts = 0;
		spec.die_with_daemon = true; /* nothing would adopt it after a crash */
		dep->phase = PH_SMOKE;
		dep_event(dep, cs->deploy.smoke);
		record_phase(dep, STATE_DEPLOYMENT_SMOKE_TESTING, cs->deploy.smoke, false);
		if (!cmd || sup_instance_start(dep->d->sup, &spec, &cb, dep, &dep->smoke) < 0)
			dep_finish(dep, PH_FAILED, "smoke command could not start");
		else /* a smoke test that hangs must not hold the service's deploys for ever */
			loop_timer_set(dep->d->p->loop, &dep->timer, dep->d->p->loop->now_ms + cs->deploy.timeout_ms,
				       smoke_timeout);
		free(cmd);
		return;
	}
	dep_switch(dep);
}

static void dep_timeout(struct loop *loop, struct loop_timer *t)
{
	struct deployment *dep = container_of(t, struct deployment, timer);
	const struct health_stats *hs = dep->green && dep->green->hc ? health_stats(dep->green->hc) : NULL;

	dep_finish(dep, PH_FAILED, "%s %s not healthy within the deploy timeout%s%s", dep->service, dep->version,
		   hs && hs->last_error[0] ? "; last health check: " : "", hs ? hs->last_error : "");
}

/* The release was looked up on the worker: start green. */
struct begin_job {
	struct deployment *dep;
	struct state_release rel;
	int rc;
	char err[256];
	char from[65];
};

static void begin_work(void *data)
{
	struct begin_job *j = data;
	struct deployment *dep = j->dep;

	const char *from = dep->from_version[0] ? dep->from_version : NULL;
	const char *detail = dep->is_rollback ? "rollback" : NULL;
	/* "rollback": the recovery must not take its from_version (the version
	 * rolled back from) for a version to keep warm or to roll back to */
	const char *strategy = dep->is_rollback ? "rollback" : "blue-green";

	/* recorded first, under the id the CLI was given: a deploy refused for
	 * a missing release is in the history too */
	state_service_ensure(dep->d->st, dep->service);
	record_crash_point(dep->d, false, STATE_DEPLOYMENT_STARTING, dep->version);
	if (state_deployment_begin_as(dep->d->st, dep->id, dep->service, from, dep->version, strategy, detail,
				      &dep->db->id) == -EEXIST)
		state_deployment_begin(dep->d->st, dep->service, from, dep->version, strategy, detail, &dep->db->id);
	record_crash_point(dep->d, true, STATE_DEPLOYMENT_STARTING, dep->version);
	j->rc = state_release_get(dep->d->st, dep->service, dep->version, &j->rel);
	if (j->rc < 0)
		snprintf(j->err, sizeof(j->err),
			 j->rc == -ENOENT ? "no release %s %s in the store (add it with `cutover release add %s %s PATH`)"
					  : "cannot read the release %s %s: %s",
			 dep->service, dep->version, dep->service, j->rc == -ENOENT ? dep->version : strerror(-j->rc));
}

static void begin_done(void *data)
{
	struct begin_job *j = data;
	struct deployment *dep = j->dep;
	struct managed *m = dep->m;
	const struct config_service *cs = deployer_config(dep->d, dep->service);
	char err[256];

	dep->pending_db = false;
	if (dep->phase >= PH_DONE)
		goto out; /* finished meanwhile (a warm rollback needs no new process) */
	if (dep->d->shutting_down) {
		dep_finish(dep, PH_FAILED, "the daemon is shutting down");
		goto out;
	}
	if (j->rc < 0) {
		dep_finish(dep, PH_FAILED, "%s", j->err);
		goto out;
	}
	if (!cs || !cs->run) {
		dep_finish(dep, PH_FAILED, "service %s is no longer managed (configuration reloaded)", dep->service);
		goto out;
	}
	dep->green = slot_start(m, cs, dep->version, j->rel.path, NULL, err, sizeof(err));
	if (!dep->green) {
		dep_finish(dep, PH_FAILED, "%s", err);
		goto out;
	}
	if (sup_instance_warning(dep->green->inst)) /* e.g. cgroup limits not applied: say it where it is seen */
		dep_event_as(dep, "warning", sup_instance_warning(dep->green->inst));
	dep->phase = PH_HEALTH;
	dep_event(dep, dep->green->addr);
	record_phase(dep, STATE_DEPLOYMENT_HEALTH_CHECKING, dep->green->addr, false);
	loop_timer_set(dep->d->p->loop, &dep->timer, dep->d->p->loop->now_ms + cs->deploy.timeout_ms, dep_timeout);
out:
	state_release_clear(&j->rel);
	free(j);
}

/* ------------------------------------------------------------------ */
/* public entry points                                                 */

static void deployments_trim(struct deployer *d)
{
	struct list_head *pos, *tmp;

	for (pos = d->deployments.next, tmp = pos->next; pos != &d->deployments && d->ndeployments > DEPLOYMENTS_KEPT;
	     pos = tmp, tmp = pos->next) {
		struct deployment *dep = container_of(pos, struct deployment, node);
		if (dep->phase < PH_DONE || dep->pending_db)
			continue;
		list_del(&dep->node);
		json_decref(dep->events);
		dbref_put(dep->db);
		free(dep);
		d->ndeployments--;
	}
}

int64_t deployer_deploy(struct deployer *d, const char *service, const char *version, uid_t who, char *err,
			size_t errlen)
{
	int64_t id = dep_create(d, service, version, false, who, err, errlen);

	if (id < 0)
		record_audit(d, who, "deploy", service, version, "refused", err);
	return id;
}

int64_t dep_create(struct deployer *d, const char *service, const char *version, bool is_rollback, uid_t who,
		   char *err, size_t errlen)
{
	const struct config_service *cs = deployer_config(d, service);
	struct managed *m;
	struct deployment *dep;
	struct begin_job *j;

	if (!cs) {
		snprintf(err, errlen, "unknown service '%s'", service);
		return -ENOENT;
	}
	if (!cs->run) {
		snprintf(err, errlen, "service '%s' is not managed by cutover (it has targets, no `run`)", service);
		return -ENOENT;
	}
	if (store_check_names(service, version, err, errlen) < 0)
		return -EINVAL; /* a version no release can have */
	m = managed_get(d, service, true);
	if (!m) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (m->dep) {
		snprintf(err, errlen, "a deploy of %s to %s is in progress (deployment %lld)", service, m->dep->version,
			 (long long)m->dep->id);
		return -EBUSY;
	}
	if (m->live && !strcmp(m->live->version, version) && !m->live->crashed) {
		snprintf(err, errlen, "%s already runs %s", service, version);
		return -EALREADY;
	}
	dep = calloc(1, sizeof(*dep));
	j = calloc(1, sizeof(*j));
	if (!dep || !j || !(dep->events = json_array()) || !(dep->db = dbref_new()) ||
	    !(dep->watch = calloc(1, sizeof(*dep->watch)))) {
		if (dep) {
			json_decref(dep->events);
			dbref_put(dep->db);
			free(dep->watch);
		}
		free(dep);
		free(j);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	dep->d = d;
	dep->m = m;
	if (m->live && slot_metrics(m, m->live)) {
		/* the baseline of the watch: the live version from now to the switch */
		dep->watch->old_at_start = slot_metrics(m, m->live)->counts;
		dep->watch->has_baseline = true;
	}
	dep->is_rollback = is_rollback; /* read by the worker: set before queueing */
	dep->who = who;
	dep->id = ++d->next_id;
	snprintf(dep->service, sizeof(dep->service), "%s", service);
	snprintf(dep->version, sizeof(dep->version), "%s", version);
	snprintf(dep->from_version, sizeof(dep->from_version), "%s", m->live ? m->live->version : "");
	dep->t_start_ms = time_now_ms();
	dep->started_at = deploy_wall_ms();
	dep->phase = PH_STARTING;
	dep->pending_db = true;
	list_add_tail(&d->deployments, &dep->node);
	d->ndeployments++;
	deployments_trim(d);
	m->dep = dep;
	char first[160];
	snprintf(first, sizeof(first), "%s%s", is_rollback ? "back from " : "",
		 m->live ? m->live->version : "first version");
	dep_event(dep, first);
	j->dep = dep;
	if (worker_submit(d->w, begin_work, begin_done, j) < 0) {
		free(j);
		dep->pending_db = false;
		dep_finish(dep, PH_FAILED, "out of memory");
	}
	return dep->id;
}

int64_t deployer_rollback(struct deployer *d, const char *service, uid_t who, char *err, size_t errlen)
{
	const struct config_service *cs = deployer_config(d, service);
	struct managed *m = managed_get(d, service, false);
	struct deployment *dep;
	char why[160];
	int64_t id;

	if (!cs || !cs->run) {
		snprintf(err, errlen, cs ? "service '%s' is not managed by cutover (it has targets, no `run`)"
					 : "unknown service '%s'",
			 service);
		return -ENOENT;
	}
	if (m && m->dep && m->dep->phase == PH_WATCH) {
		/* the deploy being watched: its rollback is the answer */
		dep = m->dep;
		snprintf(why, sizeof(why), "rolled back by hand (cutover rollback)");
		char from[STATE_VERSION_MAX + 1];
		snprintf(from, sizeof(from), "%s", m->live ? m->live->version : "");
		bool ok = rollback_now(m, why); /* may free the slot left */
		record_audit(d, who, "rollback", service, from, ok ? "rolled-back" : "failed",
			     ok ? NULL : dep->reason);
		return dep->id;
	}
	if (m && m->dep) {
		snprintf(err, errlen, "a deploy of %s to %s is in progress: wait for it or let it fail", service,
			 m->dep->version);
		id = -EBUSY;
	} else if (m && m->prev && !m->prev->crashed && m->prev->health != HEALTH_UNHEALTHY) {
		/* instant: the previous version is warm, runs and is healthy:
		 * no start, just the switch back */
		id = dep_create(d, service, m->prev->version, true, who, err, errlen);
		if (id > 0) {
			snprintf(why, sizeof(why), "manual rollback to warm %s", m->prev->version);
			rollback_now(m, why);
		}
	} else if (m && m->prev_version[0]) {
		/* the rollback window is over: start the previous version from
		 * the release store, health-check it, then switch */
		id = dep_create(d, service, m->prev_version, true, who, err, errlen);
	} else {
		snprintf(err, errlen, "%s has no previous version to roll back to (nothing was deployed before %s)",
			 service, m && m->live ? m->live->version : "it");
		id = -ESRCH;
	}
	if (id < 0)
		record_audit(d, who, "rollback", service, NULL, "refused", err);
	return id;
}

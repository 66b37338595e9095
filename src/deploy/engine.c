/* engine.c - the plan runner: a deployment from its first step to its
 * result (declarations in deploy-internal.h; the plans come from
 * strategy.c, the deployments from deployments.c).
 *
 * Each step of the plan: the old version's instances down to the step's
 * count (stopping: they drain, stop, and the engine waits until they are
 * gone), the new version's up to its count (starting, health-checking,
 * until all are healthy), the smoke command (smoke-testing), then the
 * step's weights at the proxy (switched, when the new version takes all
 * the traffic: it becomes live and the old one stays warm), held for the
 * step's time while the watch judges the new version; then the next step,
 * and done.  Anything that goes wrong before the weights fails the
 * deployment, the old version untouched; after them it aborts back to the
 * safe state: all traffic on the version that was live (rolled-back).
 *
 * Each phase is recorded (record.c) before the engine acts on the next
 * one, and told to the observer as it happens.
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
#include "deploy/plan.h"
#include "loop/loop.h"
#include "metrics/metrics.h"
#include "proxy/proxy-t.h"
#include "state/state.h"
#include "supervisor/supervisor.h"

static void step_begin(struct deployment *dep);
static void step_start_new(struct deployment *dep);

/* ------------------------------------------------------------------ */
/* events of a deployment                                              */

/* Append an event to dep's record and log it; returns the copy for the
 * event streams (NULL when nobody observes). */
static json_t *dep_event_build(struct deployment *dep, const char *label, const char *detail)
{
	json_t *ev = json_pack("{s:s, s:I, s:I, s:s?}", "phase", label, "at_ms", (json_int_t)deploy_wall_ms(),
			       "elapsed_ms", (json_int_t)(time_now_ms() - dep->t_start_ms), "detail", detail);
	json_t *out = NULL;

	json_array_append(dep->events, ev);
	if (dep->d->on_event) {
		out = json_deep_copy(ev);
		json_object_set_new(out, "id", json_integer(dep->id));
		json_object_set_new(out, "service", json_string(dep->service));
		json_object_set_new(out, "version", json_string(dep->version));
		json_object_set_new(out, "from_version",
				    dep->from_version[0] ? json_string(dep->from_version) : json_null());
		json_object_set_new(out, "kind", json_string(dep_kind(dep)));
		json_object_set_new(out, "strategy", json_string(dep->plan.strategy));
		if (dep->release_id > 0)
			json_object_set_new(out, "release_id", json_integer(dep->release_id));
		if (dep->phase >= PH_DONE) {
			json_object_set_new(out, "result", json_string(phase_names[dep->phase]));
			json_object_set_new(out, "reason", json_string(dep->reason));
		}
	}
	json_decref(ev);
	log_fields(LOG_LEVEL_INFO,
		   LOG_FIELDS(LOG_STR("service", dep->service), LOG_STR("version", dep->version),
			      LOG_INT("deployment_id", dep->id), LOG_STR("phase", label),
			      LOG_STR("from_version", dep->from_version[0] ? dep->from_version : NULL)),
		   "%s %s %s: %s%s%s", dep->is_rollback ? "rollback of" : "deploy", dep->service, dep->version, label,
		   detail ? ": " : "", detail ? detail : "");
	return out;
}

void dep_event_as(struct deployment *dep, const char *label, const char *detail)
{
	deployer_emit(dep->d, "deployment", dep_event_build(dep, label, detail));
}

void dep_event(struct deployment *dep, const char *detail)
{
	dep->phase_since_ms = time_now_ms(); /* a new phase, or a new step of it */
	dep_event_as(dep, phase_names[dep->phase], detail);
}

/* Set a figure (e.g. switch_ms) on the last event of dep. */
static void dep_event_figure(struct deployment *dep, const char *name, double value)
{
	json_object_set_new(json_array_get(dep->events, json_array_size(dep->events) - 1), name, json_real(value));
}

/* ------------------------------------------------------------------ */
/* the end of a deployment                                             */

static void smoke_stopped(struct sup_instance *inst, const struct sup_exit *last, void *data)
{
	sup_instance_free(inst);
}

/* Whether dep, ending without success, leaves its service without the
 * version that was live because its plan stopped it: the safe state is that
 * version serving, so it is started again (a rollback by cutover, in the
 * history on its own; not for a rollback itself, nor while the daemon
 * stops). */
static bool must_restart_old(const struct deployment *dep)
{
	const struct group *live = dep->m->live;

	return dep->old_stopped && !dep->is_rollback && !dep->d->shutting_down && dep->from_version[0] &&
	       !(live && !strcmp(live->version, dep->from_version));
}

static void restart_old(struct deployment *dep)
{
	char err[256], why[400];
	struct dep_ask ask = { .service = dep->service, .version = dep->from_version, .from = dep->version,
			       .why = why, .is_rollback = true, .who = DEPLOY_BY_DAEMON };

	snprintf(why, sizeof(why), "back from %s, which did not make it: %s had been stopped first (%s)", dep->version,
		 dep->from_version, dep->plan.strategy);
	if (dep_create(dep->d, &ask, err, sizeof(err)) < 0)
		log_error("%s: cannot start %s again: %s", dep->service, dep->from_version, err);
}

/* The counters of /metrics for dep, finishing as result: its result, its
 * duration if it ran, and a rollback if traffic went back (a deploy rolled
 * back; a rollback done): a person's (`cutover rollback`, `cutover abort`)
 * or cutover's own (the analysis, a crash, a release going back). */
static void count_result(struct deployment *dep, enum phase result)
{
	static const enum deploy_result results[] = { [PH_DONE] = RESULT_DONE, [PH_ROLLED_BACK] = RESULT_ROLLED_BACK,
						      [PH_FAILED] = RESULT_FAILED, [PH_REJECTED] = RESULT_REJECTED,
						      [PH_EXPIRED] = RESULT_EXPIRED };
	struct managed *m = dep->m;
	bool manual;

	if (result < PH_DONE || result > PH_EXPIRED)
		return;
	m->deploys[results[result]]++;
	if (result != PH_REJECTED && result != PH_EXPIRED && dep->t_start_ms)
		metrics_span_observe(&m->durations, dep->t_end_ms - dep->t_start_ms);
	if (result == PH_ROLLED_BACK)
		manual = dep->aborted_by_person;
	else if (result == PH_DONE && dep->is_rollback)
		manual = dep->who != DEPLOY_BY_DAEMON;
	else
		return;
	m->rollbacks[manual ? TRIGGER_MANUAL : TRIGGER_AUTOMATIC]++;
}

void dep_finish(struct deployment *dep, enum phase result, const char *fmt, ...)
{
	struct managed *m = dep->m;
	struct group *green = dep->green;
	va_list ap;

	if (dep->phase >= PH_DONE)
		return;
	if (dep->plan.rolling && result == PH_FAILED && green && green->weight) {
		/* the new version has instances in traffic and the old one has
		 * fewer: the old one comes back first (an abort already does) */
		if (!dep->aborting) {
			char why[sizeof(dep->reason)] = "";
			va_start(ap, fmt);
			vsnprintf(why, sizeof(why), fmt, ap);
			va_end(ap);
			rolling_abort(dep, why);
		}
		return;
	}
	dep->reason[0] = 0;
	if (fmt) { /* NULL: finished with nothing to explain (done) */
		va_start(ap, fmt);
		vsnprintf(dep->reason, sizeof(dep->reason), fmt, ap);
		va_end(ap);
	}
	if (result != PH_DONE && must_restart_old(dep))
		snprintf(dep->reason + strlen(dep->reason), sizeof(dep->reason) - strlen(dep->reason),
			 "; %s was stopped first (%s): starting it again", dep->from_version, dep->plan.strategy);
	dep->phase = result;
	dep->t_end_ms = time_now_ms();
	loop_timer_cancel(dep->d->p->loop, &dep->timer);
	watch_free(dep->watch);
	dep->watch = NULL;
	dep->watched = NULL;
	if (dep->smoke) {
		if (sup_instance_stop(dep->smoke, smoke_stopped) < 0)
			sup_instance_free(dep->smoke);
		dep->smoke = NULL;
	}
	if (result == PH_FAILED && green) {
		/* the new version never got all the traffic: the old one has it */
		dep->green = NULL;
		if (green->weight) {
			if (m->live)
				m->live->weight = 100;
			route_publish(m);
		}
		group_stop(green);
	}
	/* the result is announced once it is written: whoever hears "done"
	 * (cutover deploy exits) finds it in the history, even after a kill -9 */
	json_t *result_event = dep_event_build(dep, phase_names[dep->phase], dep->reason[0] ? dep->reason : NULL);
	enum state_deployment_state to = result == PH_DONE	     ? STATE_DEPLOYMENT_DONE
					 : result == PH_ROLLED_BACK ? STATE_DEPLOYMENT_ROLLED_BACK
					 : result == PH_REJECTED    ? STATE_DEPLOYMENT_REJECTED
					 : result == PH_EXPIRED	    ? STATE_DEPLOYMENT_EXPIRED
								    : STATE_DEPLOYMENT_FAILED;
	count_result(dep, result);
	/* known-good from now on: what a proof of the live version says
	 * (promotion.c); the same rule as state_deployment_last_done() */
	if (result == PH_DONE && m->live && !strcmp(m->live->version, dep->version))
		m->live->live_since = deploy_wall_ms();
	/* the result, the routing it left (after a rollback) and the audit
	 * row: one transaction, so a crash cannot keep one without the others */
	record_result(dep, to, dep->reason[0] ? dep->reason : NULL, dep->routed_back, result_event);
	dep_lineage_apply(dep, to);
	dep->routed_back = NULL;
	if (m->dep == dep)
		m->dep = NULL;
	if (result != PH_DONE && must_restart_old(dep))
		restart_old(dep);
}

/* Move traffic back to the warm previous version now.  Returns false (and
 * fails the deployment in flight, traffic untouched) if there is none that
 * runs and is not failing its health check.  Without a deployment in
 * flight (a live version crash-looping) the routing and the audit row are
 * written together. */
bool rollback_now(struct managed *m, const char *why)
{
	struct deployment *dep = m->dep;
	struct group *bad = m->live, *back = m->prev;
	uint64_t t0 = time_now_ns();

	/* (unknown health: just re-adopted after a restart, its checks restarting) */
	if (back && group_usable(back, false)) {
		back->weight = 100;
		m->live = back;
		m->prev = NULL;
		if (route_publish(m) < 0) {
			back->weight = 0;
			m->live = bad;
			m->prev = back;
			back = NULL;
		}
	} else {
		back = NULL;
	}
	if (!back) {
		if (dep)
			dep_finish(dep, PH_FAILED, "%s%s%s", why, dep->old_stopped ? "" : "; ",
				   dep->old_stopped ? ""
				   : !m->prev	    ? "no warm previous version to roll back to: traffic stays"
						    : "the previous version is not healthy: traffic stays");
		return false;
	}
	double rollback_ms = (double)(time_now_ns() - t0) / 1e6; /* the switch back, at the proxy */

	loop_timer_cancel(m->d->p->loop, &m->prev_timer);
	for (size_t i = 0; i < back->n; i++)
		record_instance_state(m->d, back->slots[i]->ref, STATE_INSTANCE_HEALTHY);
	log_fields(LOG_LEVEL_WARN,
		   LOG_FIELDS(LOG_STR("service", m->name), LOG_STR("version", back->version),
			      LOG_STR("from_version", bad ? bad->version : NULL),
			      dep ? LOG_INT("deployment_id", dep->id) : LOG_STR("deployment_id", NULL)),
		   "rolled %s back to %s in %.3f ms: %s", m->name, back->version, rollback_ms, why);
	if (!dep) {
		m->rollbacks[TRIGGER_AUTOMATIC]++; /* a crash-looping live version (no deployment counts it) */
		record_routing(m->d, back, DEPLOY_BY_DAEMON, "rollback", bad ? bad->version : NULL, "done", why);
	}
	if (dep) {
		/* a rollback deployment is done; a deploy is rolled back */
		dep->routed_back = back;
		dep_finish(dep, dep->is_rollback ? PH_DONE : PH_ROLLED_BACK, "%s; traffic back on %s in %.3f ms", why,
			   back->version, rollback_ms);
		dep_event_figure(dep, "rollback_ms", rollback_ms);
	}
	group_retire(bad); /* requests in flight on it finish first */
	return true;
}

bool engine_abort(struct deployment *dep, const char *why)
{
	struct managed *m = dep->m;
	struct group *green = dep->green;

	if (!green) /* it had all the traffic: it is live, the old one warm */
		return rollback_now(m, why);
	if (dep->plan.rolling && green->weight)
		return rolling_abort(dep, why);
	/* a share only: the old version is still live */
	uint64_t t0 = time_now_ns();
	dep->green = NULL;
	if (m->live)
		m->live->weight = 100;
	route_publish(m);
	double rollback_ms = (double)(time_now_ns() - t0) / 1e6; /* all traffic back, at the proxy */
	if (!m->live) {
		dep_finish(dep, PH_FAILED, "%s", why);
	} else {
		dep->routed_back = m->live;
		dep_finish(dep, PH_ROLLED_BACK, "%s; traffic back on %s in %.3f ms", why, m->live->version, rollback_ms);
		dep_event_figure(dep, "rollback_ms", rollback_ms);
	}
	group_retire(green);
	return m->live != NULL;
}

/* ------------------------------------------------------------------ */
/* from step to step                                                   */

void step_next(struct deployment *dep)
{
	loop_timer_cancel(dep->d->p->loop, &dep->timer);
	/* promoted: a canary goes to its last step at once (a rolling deploy
	 * still replaces its instances batch by batch, without the holds) */
	if (dep->promoted && !dep->plan.rolling && dep->step + 1 < dep->plan.nsteps)
		dep->step = dep->plan.nsteps - 1;
	else
		dep->step++;
	if (dep->step < dep->plan.nsteps)
		step_begin(dep);
	else
		dep_finish(dep, PH_DONE, NULL);
}

/* ------------------------------------------------------------------ */
/* the weights of a step                                               */

/* The new version takes all the traffic: it becomes live; the old live
 * one stays warm (plan.keep_old_warm) or is retired; one older than that is
 * stopped.  Returns 0, or -errno with nothing changed. */
static int step_switch(struct deployment *dep)
{
	struct managed *m = dep->m;
	struct deployer *d = dep->d;
	const struct config_service *cs = deployer_config(d, dep->service);
	struct group *old_live = m->live, *old_prev = m->prev, *green = dep->green;
	bool warm = dep->plan.keep_old_warm && old_live;

	green->weight = 100;
	m->live = green;
	dep->green = NULL;
	/* with nothing live (a version restarted after its instances were
	 * lost), a warm one stays what it was */
	if (old_live) {
		old_live->weight = 0;
		m->prev = warm ? old_live : NULL;
	}
	if (route_publish(m) < 0) {
		green->weight = 0;
		m->live = old_live;
		m->prev = old_prev;
		dep->green = green;
		if (old_live)
			old_live->weight = 100;
		return -ENOMEM;
	}
	if (old_live) {
		group_stop(old_prev);
		if (!warm)
			group_retire(old_live);
	}
	if (warm) {
		/* "draining": out of traffic, kept warm for the rollback window (the
		 * next daemon re-adopts it as such after a restart) */
		for (size_t i = 0; i < old_live->n; i++)
			record_instance_state(d, old_live->slots[i]->ref, STATE_INSTANCE_DRAINING);
		loop_timer_set(d->p->loop, &m->prev_timer, d->p->loop->now_ms + (cs ? cs->deploy.rollback_window_ms : 0),
			       prev_window_over);
	}
	return 0;
}

/* The new version takes a share of the traffic only (the old one stays
 * live).  Returns 0, or -errno with nothing changed. */
static int step_share(struct deployment *dep, const struct plan_step *st)
{
	struct managed *m = dep->m;
	uint32_t old_weight = m->live ? m->live->weight : 0, new_weight = dep->green->weight;

	if (m->live)
		m->live->weight = st->old_weight;
	dep->green->weight = st->new_weight;
	if (route_publish(m) < 0) {
		if (m->live)
			m->live->weight = old_weight;
		dep->green->weight = new_weight;
		return -ENOMEM;
	}
	return 0;
}

/* Set the step's weights at the proxy, record them, then hold. */
static void step_weights(struct deployment *dep)
{
	const struct plan_step *st = &dep->plan.steps[dep->step];
	const struct config_service *cs = deployer_config(dep->d, dep->service);
	struct managed *m = dep->m;
	struct group *green = dep->green;
	bool all = st->new_weight >= 100;
	uint64_t t0 = time_now_ns();
	char where[640], detail[1200];

	group_addrs(green, where, sizeof(where));
	watch_baseline(dep, all && !dep->plan.rolling);
	if ((all ? step_switch(dep) : step_share(dep, st)) < 0) {
		dep_finish(dep, PH_FAILED, "cannot route %s to %s", m->name, where);
		return;
	}
	/* the switch at the proxy, measured as the rollback is: the route alone */
	double switch_ms = (double)(time_now_ns() - t0) / 1e6;
	dep->t_switched_ms = time_now_ms();
	dep->phase = PH_WATCH;
	if (all)
		snprintf(detail, sizeof(detail), "traffic on %s (%s), switch took %.3f ms at the proxy", green->version,
			 where, switch_ms);
	else
		snprintf(detail, sizeof(detail), "%s %zu of %zu: %u %% of new requests on %s (%s), %u %% on %s; took %.3f ms",
			 dep->plan.rolling ? "batch" : "step", dep->step + 1, dep->plan.nsteps, st->new_weight,
			 green->version, where, st->old_weight, m->live ? m->live->version : "-", switch_ms);
	if (!dep->is_rollback && st->hold_ms && !(dep->promoted && !st->final_watch))
		snprintf(detail + strlen(detail), sizeof(detail) - strlen(detail), "; %s for %s",
			 st->analyse ? "watching" : "holding", DURATION_TEXT(st->hold_ms));
	dep_event(dep, detail);
	dep_event_figure(dep, "switch_ms", switch_ms);
	if (all)
		record_route(dep, STATE_DEPLOYMENT_SWITCHED, detail, green);
	else /* not known-good: the routing row keeps naming the old version */
		record_phase(dep, STATE_DEPLOYMENT_SWITCHING, detail, false);
	if (!cs) {
		dep_finish(dep, PH_DONE, NULL);
		return;
	}
	step_hold(dep, green);
}

/* ------------------------------------------------------------------ */
/* the smoke test                                                      */

static void smoke_exit(struct sup_instance *inst, const struct sup_exit *e, void *data)
{
	struct deployment *dep = data;

	dep->smoke = NULL;
	sup_instance_free(inst);
	if (dep->phase != PH_SMOKE)
		return;
	if (e->known && e->code == 0) {
		dep->smoked = true;
		step_weights(dep);
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

/* Run the smoke command against the new version's first instance. */
static void step_smoke(struct deployment *dep, const struct config_service *cs)
{
	const struct slot *s = dep->green->slots[0];
	struct sup_spec spec;
	struct sup_callbacks cb = { .on_give_up = smoke_exit };
	char url[64], port[8], id[96], log_path[4200];
	char *env[] = { "PATH=/usr/local/bin:/usr/bin:/bin", NULL, NULL };
	char urlvar[80];
	char *cmd;

	snprintf(port, sizeof(port), "%u", s->port);
	snprintf(url, sizeof(url), "http://%s", s->addr);
	snprintf(urlvar, sizeof(urlvar), "URL=%s", url);
	env[1] = urlvar;
	cmd = deploy_exec_simple(
		deploy_substitute(cs->deploy.smoke, port, dep->version, dep->service, dep->green->release_dir, url));
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
}

/* ------------------------------------------------------------------ */
/* the instances of a step                                             */

/* Every new instance of the step is healthy (started: some were started
 * in this step): smoke test, or the weights. */
static void step_healthy(struct deployment *dep, bool started)
{
	char where[640], detail[720];

	loop_timer_cancel(dep->d->p->loop, &dep->timer);
	if (started) {
		dep->t_healthy_ms = time_now_ms();
		group_addrs(dep->green, where, sizeof(where));
		if (dep->green->n == 1)
			snprintf(detail, sizeof(detail), "%s healthy after %.2f s", where,
				 (double)(dep->t_healthy_ms - dep->t_start_ms) / 1000.0);
		else
			snprintf(detail, sizeof(detail), "%zu instances healthy after %.2f s: %s", dep->green->n,
				 (double)(dep->t_healthy_ms - dep->t_start_ms) / 1000.0, where);
		dep_event_as(dep, "healthy", detail);
		/* the same phase: an event in the history */
		record_phase(dep, STATE_DEPLOYMENT_HEALTH_CHECKING, detail, false);
	}
	if (!rolling_wait_ready(dep))
		step_ready(dep);
}

void step_ready(struct deployment *dep)
{
	const struct plan_step *st = &dep->plan.steps[dep->step];
	const struct config_service *cs = deployer_config(dep->d, dep->service);

	if (st->smoke && !dep->smoked && cs && cs->deploy.smoke) {
		step_smoke(dep, cs);
		return;
	}
	step_weights(dep);
}

static void dep_timeout(struct loop *loop, struct loop_timer *t)
{
	struct deployment *dep = container_of(t, struct deployment, timer);
	const struct group *g = dep->green;
	const struct health_stats *hs = NULL;
	char count[64] = "";

	for (size_t i = 0; g && i < g->n && !hs; i++)
		if (g->slots[i]->health != HEALTH_HEALTHY && g->slots[i]->hc)
			hs = health_stats(g->slots[i]->hc);
	if (g && g->n > 1)
		snprintf(count, sizeof(count), " (%zu of %zu instances healthy)", group_healthy(g), g->n);
	dep_finish(dep, PH_FAILED, "%s %s not healthy within the deploy timeout%s%s%s", dep->service, dep->version,
		   count, hs && hs->last_error[0] ? "; last health check: " : "", hs ? hs->last_error : "");
}

/* Start the new version's instances up to the step's count, then wait
 * until they are all healthy. */
static void step_start_new(struct deployment *dep)
{
	const struct plan_step *st = &dep->plan.steps[dep->step];
	const struct config_service *cs = deployer_config(dep->d, dep->service);
	struct group *green = dep->green;
	size_t before = green->n;
	char err[256], where[640];

	if (!cs || !cs->run) {
		dep_finish(dep, PH_FAILED, "service %s is no longer managed (configuration reloaded)", dep->service);
		return;
	}
	if (green->n >= st->new_instances) {
		step_healthy(dep, false);
		return;
	}
	if (group_start(green, cs, st->new_instances, err, sizeof(err)) < 0) {
		dep_finish(dep, PH_FAILED, "%s", err);
		return;
	}
	for (size_t i = before; i < green->n; i++) {
		const char *warning = sup_instance_warning(green->slots[i]->inst);
		if (warning) { /* e.g. cgroup limits not applied: say it where it is seen */
			dep_event_as(dep, "warning", warning);
			break;
		}
	}
	dep->phase = PH_HEALTH;
	group_addrs(green, where, sizeof(where));
	dep_event(dep, where);
	record_phase(dep, STATE_DEPLOYMENT_HEALTH_CHECKING, where, false);
	loop_timer_set(dep->d->p->loop, &dep->timer, dep->d->p->loop->now_ms + cs->deploy.timeout_ms, dep_timeout);
}

/* Take out of g its instances beyond keep, into leaving[*n], each one
 * awaited (the step goes on once they are all gone). */
static void take_out(struct group *g, size_t keep, struct slot **leaving, size_t *n)
{
	while (g && g->n > keep) {
		struct slot *s = g->slots[--g->n];
		s->g = NULL;
		s->awaited = true;
		g->m->awaiting++;
		leaving[(*n)++] = s;
	}
}

/* Take the live version's instances down to keep: out of the routing
 * table first, then drained and stopped; the step goes on once they are
 * gone (engine_slot_gone).  With keep 0, a warm older version goes too. */
static void step_stop_old(struct deployment *dep, uint32_t keep)
{
	struct managed *m = dep->m;
	struct group *old = m->live, *prev = NULL;
	struct slot *leaving[2 * DEPLOY_INSTANCES_MAX];
	size_t n = 0;
	char detail[400];

	dep->phase = PH_STOPPING;
	watch_baseline(dep, false);
	if (dep->plan.rolling)
		snprintf(detail, sizeof(detail), "batch %zu of %zu: %zu instance%s of %s stop%s, %u left", dep->step + 1,
			 dep->plan.nsteps, old->n - keep, old->n - keep == 1 ? "" : "s", old->version,
			 old->n - keep == 1 ? "s" : "", keep);
	else
		snprintf(detail, sizeof(detail), "%zu instance%s of %s stop before %s starts (%s)%s", old->n - keep,
			 old->n - keep == 1 ? "" : "s", old->version, dep->version, dep->plan.strategy,
			 keep ? "" : ": requests fail until it is healthy");
	dep_event(dep, detail);
	record_phase(dep, STATE_DEPLOYMENT_STARTING, detail, false); /* no state of its own in the record */
	take_out(old, keep, leaving, &n);
	if (dep->plan.rolling && dep->green && dep->green->weight) {
		/* the shares follow the instances that take requests, so that the
		 * old ones left do not carry those that stop */
		uint32_t fresh = (uint32_t)group_routed(dep->green);
		if (keep + fresh) {
			old->weight = (uint32_t)((100ull * keep + (keep + fresh) / 2) / (keep + fresh));
			dep->green->weight = 100 - old->weight;
		}
	}
	if (!keep && dep->plan.rolling) {
		/* its group stays live, empty, until the switch; an abort fills
		 * it again, a failure after the switch starts it again */
		dep->old_stopped = true;
	} else if (!keep) {
		/* nothing of the old version runs from here: a failure must start
		 * it again; and no older version stays warm beside the new one */
		dep->old_stopped = true;
		m->live = NULL;
		prev = m->prev;
		m->prev = NULL;
		loop_timer_cancel(dep->d->p->loop, &m->prev_timer);
		take_out(prev, 0, leaving, &n);
	}
	route_publish(m); /* out of the routing table before they drain */
	if (!keep && !dep->plan.rolling) {
		group_stop(old); /* empty: freed */
		group_stop(prev);
	}
	for (size_t i = 0; i < n; i++)
		slot_retire(leaving[i]);
	if (!m->awaiting && dep->phase == PH_STOPPING)
		step_start_new(dep);
}

void engine_slot_gone(struct managed *m)
{
	struct deployment *dep = m->dep;

	if (dep && dep->phase == PH_STOPPING)
		step_start_new(dep);
}

/* The start of a step: stop what the step does not keep of the old
 * version, start what it needs of the new one. */
static void step_begin(struct deployment *dep)
{
	const struct plan_step *st = &dep->plan.steps[dep->step];
	struct managed *m = dep->m;

	if (st->old_instances != PLAN_KEEP && m->live && m->live->n > st->old_instances)
		step_stop_old(dep, st->old_instances);
	else
		step_start_new(dep);
}

void engine_run(struct deployment *dep, const char *release_dir)
{
	dep->green = group_new(dep->m, dep->version, release_dir);
	if (!dep->green) {
		dep_finish(dep, PH_FAILED, "out of memory");
		return;
	}
	dep->step = 0;
	step_begin(dep);
}

/* ------------------------------------------------------------------ */
/* what the instances tell                                             */

bool engine_slot_crashed(struct slot *s, const char *why)
{
	struct managed *m = s->m;
	struct deployment *dep = m->dep;
	struct group *g = s->g;

	if (!g)
		return false;
	if (dep && g == dep->green && dep->phase < PH_WATCH) {
		dep_finish(dep, PH_FAILED, "%s before it became healthy", why);
		return true;
	}
	if (dep && dep->phase == PH_WATCH && (g == m->live || g == dep->green)) {
		engine_abort(dep, why);
		return true;
	}
	if (!dep && g == m->live && m->prev && group_usable(m->prev, true) && s->inst &&
	    sup_instance_streak(s->inst) >= LIVE_CRASHES_BEFORE_ROLLBACK) {
		/* crash-looping after its watch window, the previous version warm */
		char loop_why[400];
		char err[256];
		snprintf(loop_why, sizeof(loop_why), "%s (%u crashes in a row)", why, sup_instance_streak(s->inst));
		struct dep_ask ask = { .service = m->name, .version = m->prev->version, .why = loop_why,
				       .is_rollback = true, .who = DEPLOY_BY_DAEMON };
		/* a deployment of the warm version, as for `cutover rollback`: it is
		 * in the history with its reason (rollback_now finishes it) */
		if (dep_create(m->d, &ask, err, sizeof(err)) < 0)
			log_warn("%s: cannot record the rollback as a deployment: %s", m->name, err);
		if (rollback_now(m, loop_why))
			return true;
	}
	return false;
}

bool engine_slot_health(struct slot *s, enum health_state state, const char *reason)
{
	struct managed *m = s->m;
	struct deployment *dep = m->dep;
	struct group *g = s->g;
	bool newly_ready = state == HEALTH_HEALTHY && !s->ready;

	if (state == HEALTH_HEALTHY && !rolling_holds_ready(dep, s))
		s->ready = true;
	if (!g)
		return false;
	if (dep && g == dep->green && dep->phase == PH_HEALTH && state == HEALTH_HEALTHY) {
		if (group_healthy(g) == g->n && g->n >= dep->plan.steps[dep->step].new_instances)
			step_healthy(dep, true);
		return true;
	}
	if (state == HEALTH_UNHEALTHY && dep && dep->phase == PH_WATCH && (g == m->live || g == dep->green)) {
		char why[400];
		snprintf(why, sizeof(why), "%s %s failed its health check (%s)", m->name, s->version, reason);
		engine_abort(dep, why);
		return true;
	}
	if (newly_ready && g == m->live) {
		/* an instance started to make up the live version's count (after a
		 * restart of the daemon): it takes its share now */
		if (route_publish(m) == 0)
			record_routing(m->d, g, DEPLOY_BY_DAEMON, NULL, NULL, NULL, NULL);
		log_info("%s %s on port %u healthy: serving beside the other %zu", m->name, s->version, s->port,
			 g->n - 1);
		if (dep && dep->aborting)
			rolling_abort_check(dep);
	}
	return false;
}

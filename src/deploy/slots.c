/* slots.c - instances: one supervised process of a version on a port
 * cutover chose, with its health check (struct slot, declarations in
 * deploy-internal.h).
 *
 * A slot is started (or adopted from the previous daemon), health-checked,
 * restarted by the supervisor when it crashes, and at the end stopped
 * (signal, grace, SIGKILL) or retired: stopped once the proxy has no
 * request in flight to it.  What a crash or a health change means for a
 * deployment in flight is decided here with the engine (engine.c).  The
 * routing of a service to a slot is here too.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/list.h"
#include "base/log.h"
#include "base/util.h"
#include "deploy/deploy-internal.h"
#include "deploy/health.h"
#include "loop/loop.h"
#include "metrics/metrics.h"
#include "proxy/proxy.h"
#include "supervisor/supervisor.h"

/* Tell the observer of an instance change. */
void slot_emit(struct slot *s, const char *state, const char *detail)
{
	struct deployer *d = s->m->d;

	if (!d->on_event)
		return;
	deployer_emit(d, "instance",
	     json_pack("{s:s, s:s, s:i, s:I, s:s, s:I, s:s?}", "service", s->m->name, "version", s->version, "port",
		       (int)s->port, "pid", (json_int_t)(s->inst ? sup_instance_pid(s->inst) : 0), "state", state,
		       "at_ms", (json_int_t)deploy_wall_ms(), "detail", detail));
}

void slot_free(struct slot *s)
{
	struct deployer *d;

	if (!s)
		return;
	d = s->m->d;
	if (!s->inst || sup_instance_state(s->inst) != SUP_RUNNING)
		/* its process is gone (not merely forgotten at exit, for the next daemon) */
		metrics_upstream_retire(&d->p->metrics, s->m->name, s->addr);
	if (s->counted && d->stopping && --d->stopping == 0)
		d->p->loop->stop = true; /* deployer_stop_all: the last one is gone */
	loop_timer_cancel(d->p->loop, &s->drain_timer);
	list_del(&s->retiring);
	if (s->hc)
		health_stop(s->hc);
	sup_instance_free(s->inst);
	dbref_put(s->ref);
	free(s->log_path);
	free(s->release_dir);
	free(s);
}

static void slot_stopped(struct sup_instance *inst, const struct sup_exit *last, void *data)
{
	struct slot *s = data;
	struct deployer *d = s->m->d;

	log_info("%s %s on port %u stopped%s", s->m->name, s->version, s->port,
		 last && last->signal == SIGKILL ? " (killed after the stop grace)" : "");
	s->inst = NULL;
	sup_instance_free(inst);
	record_instance_state(d, s->ref, STATE_INSTANCE_STOPPED);
	slot_emit(s, "stopped", last && last->signal == SIGKILL ? "killed after the stop grace" : NULL);
	slot_free(s);
}

/* Stop the process (signal, grace, SIGKILL) and free the slot when reaped. */
void slot_stop(struct slot *s)
{
	if (!s || s->stopping)
		return;
	s->stopping = true;
	if (list_empty(&s->retiring)) /* out of service: deployer_stop_all finds it there */
		list_add_tail(&s->m->d->retiring, &s->retiring);
	if (s->hc) {
		health_stop(s->hc);
		s->hc = NULL;
	}
	if (!s->inst || sup_instance_stop(s->inst, slot_stopped) < 0)
		slot_free(s);
}

static void drain_tick(struct loop *loop, struct loop_timer *t)
{
	struct slot *s = container_of(t, struct slot, drain_timer);
	const struct metrics_upstream *mu = slot_metrics(s->m, s);
	int64_t busy = mu ? mu->open_connections - mu->idle_connections : 0;

	if (busy > 0 && loop->now_ms < s->drain_until_ms) {
		loop_timer_set(loop, t, loop->now_ms + 50, drain_tick);
		return;
	}
	if (busy > 0)
		log_warn("%s %s: %lld requests still in flight after the drain timeout: stopping it anyway",
			 s->m->name, s->version, (long long)busy);
	slot_stop(s);
}

/* Stop a slot that had traffic until now: once the proxy has no request in
 * flight to it (its idle connections were closed by the switch), or after
 * the service's deploy.drain, whichever comes first.  Then slot_stop(). */
void slot_retire(struct slot *s)
{
	const struct config_service *cs;

	if (!s || s->stopping)
		return;
	cs = deployer_config(s->m->d, s->m->name);
	s->drain_until_ms = s->m->d->p->loop->now_ms + (cs ? cs->deploy.drain_ms : 0);
	list_add_tail(&s->m->d->retiring, &s->retiring);
	drain_tick(s->m->d->p->loop, &s->drain_timer);
}

static void slot_crashed(struct slot *s, const struct sup_exit *e, bool gave_up)
{
	struct managed *m = s->m;
	struct deployment *dep = m->dep;
	char why[320];

	s->crashed = true;
	record_instance_state(m->d, s->ref, STATE_INSTANCE_CRASHED);
	if (e->spawn_error)
		snprintf(why, sizeof(why), "%s %s could not start (%s: %s)", m->name, s->version,
			 e->spawn_stage ? e->spawn_stage : "spawn", strerror(e->spawn_error));
	else if (e->signal)
		snprintf(why, sizeof(why), "%s %s was killed by signal %d%s", m->name, s->version, e->signal,
			 gave_up ? " (crash loop: gave up)" : "");
	else
		snprintf(why, sizeof(why), "%s %s exited with status %d%s", m->name, s->version, e->code,
			 gave_up ? " (crash loop: gave up)" : "");
	log_warn("%s", why);
	slot_emit(s, "crashed", why);
	if (dep && dep->green == s && dep->phase < PH_WATCH) {
		dep_finish(dep, PH_FAILED, "%s before it became healthy", why);
		return;
	}
	if (dep && dep->phase == PH_WATCH && m->live == s) {
		rollback_now(m, why);
		return;
	}
	if (!dep && m->live == s && m->prev && !m->prev->crashed && m->prev->health == HEALTH_HEALTHY &&
	    s->inst && sup_instance_streak(s->inst) >= LIVE_CRASHES_BEFORE_ROLLBACK) {
		/* crash-looping after its watch window, the previous version warm */
		char loop_why[400];
		char err[256];
		snprintf(loop_why, sizeof(loop_why), "%s (%u crashes in a row)", why, sup_instance_streak(s->inst));
		/* a deployment of the warm version, as for `cutover rollback`: it is
		 * in the history with its reason (rollback_now finishes it) */
		if (dep_create(m->d, m->name, m->prev->version, true, DEPLOY_BY_DAEMON, err, sizeof(err)) < 0)
			log_warn("%s: cannot record the rollback as a deployment: %s", m->name, err);
		if (rollback_now(m, loop_why))
			return;
	}
	if (e->restart_in_ms)
		log_warn("%s %s: restart %u in %llu ms", m->name, s->version,
			 s->inst ? sup_instance_restarts(s->inst) + 1 : 0, (unsigned long long)e->restart_in_ms);
}

static void slot_on_exit(struct sup_instance *inst, const struct sup_exit *e, void *data)
{
	slot_crashed(data, e, false);
}

static void slot_on_give_up(struct sup_instance *inst, const struct sup_exit *e, void *data)
{
	slot_crashed(data, e, true);
}

static void slot_on_restart(struct sup_instance *inst, void *data)
{
	struct slot *s = data;

	s->crashed = false;
	record_instance(s->m->d, s, false); /* new pid and start time, for adoption */
	slot_emit(s, "restarted", NULL);
}

static void slot_health(struct health_check *hc, enum health_state state, const char *reason, void *data)
{
	struct slot *s = data;
	struct managed *m = s->m;
	struct deployment *dep = m->dep;

	s->health = state;
	slot_emit(s, state == HEALTH_HEALTHY ? "healthy" : "unhealthy", state == HEALTH_HEALTHY ? NULL : reason);
	if (s != m->prev) /* the warm previous version stays "draining" in the record */
		record_instance_state(m->d, s->ref,
				      state == HEALTH_HEALTHY ? STATE_INSTANCE_HEALTHY : STATE_INSTANCE_UNHEALTHY);
	if (dep && dep->green == s && state == HEALTH_HEALTHY && dep->phase == PH_HEALTH) {
		dep_healthy(dep);
		return;
	}
	if (state == HEALTH_UNHEALTHY && dep && dep->phase == PH_WATCH && m->live == s) {
		char why[160];
		snprintf(why, sizeof(why), "%s %s failed its health check (%s)", m->name, s->version, reason);
		rollback_now(m, why);
		return;
	}
	if (state == HEALTH_UNHEALTHY)
		log_warn("%s %s on port %u is unhealthy: %s", m->name, s->version, s->port, reason);
}

/* Start VERSION of m from release_dir, or, with adopt, take over the
 * process a previous daemon started (same pid and start time).  Returns
 * the slot or NULL (err). */
struct slot *slot_start(struct managed *m, const struct config_service *cs, const char *version,
		const char *release_dir, const struct state_instance *adopt, char *err, size_t errlen)
{
	struct deployer *d = m->d;
	struct slot *s = calloc(1, sizeof(*s));
	struct sup_spec spec;
	struct sup_callbacks cb = { .on_exit = slot_on_exit, .on_give_up = slot_on_give_up,
				    .on_restart = slot_on_restart };
	struct health_spec hs = { 0 };
	char port[8], id[96], log_path[4200], logdir[4096];
	char *command = NULL, **env = NULL;
	size_t nenv = 0;
	int rc;

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->m = m; /* before any goto fail: slot_free uses it */
	list_init(&s->retiring);
	if (!(s->release_dir = strdup(release_dir)) || !(s->ref = dbref_new())) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	snprintf(s->version, sizeof(s->version), "%s", version);
	if (adopt) {
		s->port = (uint16_t)adopt->port;
		s->ref->id = adopt->id; /* no job is queued for it yet */
	} else if (sup_free_port(&s->port) < 0) {
		snprintf(err, errlen, "no free port on 127.0.0.1");
		goto fail;
	}
	snprintf(port, sizeof(port), "%u", s->port);
	snprintf(s->addr, sizeof(s->addr), "127.0.0.1:%u", s->port);
	/* at most 64 characters (the supervisor's limit): the port makes it unique */
	snprintf(id, sizeof(id), "%.30s-%.24s-%u", m->name, version, s->port);
	for (char *c = id; *c; c++)
		if (*c == '+')
			*c = '_';
	snprintf(logdir, sizeof(logdir), "%s/logs/%s", d->p->cfg->state_dir, m->name);
	make_dirs(logdir, 0750); /* a failure shows as the instance's "open log" spawn error */
	snprintf(log_path, sizeof(log_path), "%s/%s.log", logdir, version);
	command = deploy_exec_simple(deploy_substitute(cs->run, port, version, m->name, release_dir, NULL));
	env = calloc(cs->nenv + 6, sizeof(char *));
	if (!command || !env) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (asprintf(&env[nenv++], "PATH=/usr/local/bin:/usr/bin:/bin") < 0 ||
	    asprintf(&env[nenv++], "PORT=%s", port) < 0 || asprintf(&env[nenv++], "CUTOVER_SERVICE=%s", m->name) < 0 ||
	    asprintf(&env[nenv++], "CUTOVER_VERSION=%s", version) < 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < cs->nenv; i++) {
		char *v = deploy_substitute(cs->env[i].value, port, version, m->name, release_dir, NULL);
		if (!v || asprintf(&env[nenv++], "%s=%s", cs->env[i].name, v) < 0) {
			free(v);
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		free(v);
	}
	sup_spec_init(&spec);
	spec.id = id;
	spec.command = command;
	spec.env = env;
	spec.cwd = cs->workdir ? cs->workdir : release_dir;
	spec.log_path = log_path;
	spec.stop_signal = cs->stop_signal;
	spec.stop_grace_ms = cs->stop_grace_ms;
	spec.rlimits.nofile = cs->limits.nofile;
	spec.rlimits.nproc = cs->limits.nproc;
	spec.rlimits.core = cs->limits.core;
	spec.cgroup.memory_max = cs->limits.memory_max;
	spec.cgroup.cpu_max_percent = cs->limits.cpu_max_percent;
	/* a crashed instance is restarted for as long as it takes, at most
	 * every backoff_max_ms: a live version that gave up would leave its
	 * service answering 502 (a green that exits fails its deploy at once) */
	spec.restart.max_restarts = UINT32_MAX;
	s->log_path = strdup(log_path);
	rc = adopt ? sup_instance_adopt(d->sup, adopt->pid, adopt->start_time_ticks, &spec, &cb, s, &s->inst)
		   : sup_instance_start(d->sup, &spec, &cb, s, &s->inst);
	if (rc < 0) {
		snprintf(err, errlen, "cannot %s %s %s: %s", adopt ? "adopt" : "start", m->name, version,
			 strerror(-rc));
		goto fail;
	}
	if (!adopt)
		record_instance(d, s, true);
	slot_emit(s, adopt ? "adopted" : "started", NULL);
	if (sup_instance_warning(s->inst))
		log_warn("%s %s: %s", m->name, version, sup_instance_warning(s->inst));
	parse_sockaddr(s->addr, &hs.addr, &hs.addr_len);
	hs.path = cs->health.path ? cs->health.path : "/health";
	hs.host = cs->health.host ? cs->health.host : m->name;
	hs.interval_ms = cs->health.interval_ms;
	hs.timeout_ms = cs->health.timeout_ms;
	hs.healthy_threshold = cs->health.healthy_threshold;
	hs.unhealthy_threshold = cs->health.unhealthy_threshold;
	hs.start_grace_ms = cs->health.start_grace_ms;
	rc = health_start(d->p->loop, &hs, slot_health, s, &s->hc);
	if (rc < 0) {
		snprintf(err, errlen, "cannot health-check %s %s: %s", m->name, version, strerror(-rc));
		sup_instance_stop(s->inst, slot_stopped);
		s = NULL; /* freed when reaped */
		goto out;
	}
	log_info("%s %s %s on port %u (pid %d), log %s", adopt ? "adopted" : "started", m->name, version, s->port,
		 (int)sup_instance_pid(s->inst), log_path);
	goto out;
fail:
	slot_free(s);
	s = NULL;
out:
	for (size_t i = 0; env && i < nenv; i++)
		free(env[i]);
	free(env);
	free(command);
	return s;
}

/* ------------------------------------------------------------------ */
/* switching traffic                                                   */

/* Route all of m's new requests to slot s (one pointer store). */
int route_to(struct managed *m, struct slot *s)
{
	struct config_target t = { .weight = 1 };
	struct proxy_group g = { .version = s->version, .weight = 1, .targets = &t, .ntargets = 1 };

	t.addr.text = s->addr;
	parse_sockaddr(s->addr, &t.addr.sa, &t.addr.salen);
	return proxy_set_groups(m->d->p, m->name, &g, 1);
}

/* The request counters of slot s (by service and address: they outlive the
 * slot's place in the target set, so a warm version keeps its figures). */
struct metrics_upstream *slot_metrics(struct managed *m, struct slot *s)
{
	return metrics_upstream_get(&m->d->p->metrics, m->name, s->addr, s->version);
}

/* Share of m's new requests that slot s gets now, in percent. */
int slot_traffic_percent(struct managed *m, struct slot *s)
{
	const struct route_service *rs = proxy_route_service(m->d->p, m->name);

	for (uint32_t g = 0; rs && rs->total_weight && g < rs->ngroups; g++) {
		const struct route_group *grp = &rs->groups[g];
		for (uint32_t i = 0; grp->total_weight && i < grp->n; i++)
			if (!strcmp(grp->slots[i].target->addr_text, s->addr))
				return (int)((int64_t)grp->weight * grp->slots[i].weight * 100 /
					     ((int64_t)rs->total_weight * grp->total_weight));
	}
	return 0;
}

void prev_window_over(struct loop *loop, struct loop_timer *t)
{
	struct managed *m = container_of(t, struct managed, prev_timer);

	if (m->prev) {
		log_info("rollback window of %s over: stopping %s", m->name, m->prev->version);
		slot_retire(m->prev);
		m->prev = NULL;
	}
}


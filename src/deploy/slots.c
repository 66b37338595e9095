/* slots.c - instances: one supervised process of a version on a port
 * cutover chose, with its health check (struct slot, declarations in
 * deploy-internal.h; the versions they make up are groups.c's).
 *
 * A slot is started (or adopted from the previous daemon), health-checked,
 * restarted by the supervisor when it crashes, and at the end stopped
 * (signal, grace, SIGKILL) or retired: stopped once the proxy has no
 * request in flight to it.  What a crash or a health change means for a
 * deployment in flight is the engine's to decide (engine_slot_crashed,
 * engine_slot_health).
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

/* The error log's fields of slot s (docs/logs.md) for every message logged
 * in the enclosing block, down any call chain (a crash that rolls back). */
#define SLOT_LOG_SCOPE(s)                                                                                     \
	LOG_SCOPE(LOG_STR("service", (s)->m->name), LOG_STR("version", (s)->version),                     \
		  LOG_STR("instance", (s)->addr),                                                           \
		  (s)->inst ? LOG_INT("pid", sup_instance_pid((s)->inst)) : LOG_STR("pid", NULL))

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

/* Take s out of its group (if any). */
static void slot_leave(struct slot *s)
{
	struct group *g = s->g;

	if (!g)
		return;
	for (size_t i = 0; i < g->n; i++) {
		if (g->slots[i] == s) {
			memmove(&g->slots[i], &g->slots[i + 1], (g->n - i - 1) * sizeof(g->slots[0]));
			g->n--;
			break;
		}
	}
	s->g = NULL;
}

void slot_free(struct slot *s)
{
	struct deployer *d;

	if (!s)
		return;
	d = s->m->d;
	slot_leave(s);
	if (!s->inst || sup_instance_state(s->inst) != SUP_RUNNING) {
		/* its process is gone (not merely forgotten at exit, for the next daemon) */
		metrics_upstream_retire(&d->p->metrics, s->m->name, s->addr);
		if (s->id[0])
			slot_secrets_remove(d, s->id);
	}
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
	if (s->awaited && s->m->awaiting && --s->m->awaiting == 0)
		engine_slot_gone(s->m);
	free(s);
}

static void slot_stopped(struct sup_instance *inst, const struct sup_exit *last, void *data)
{
	struct slot *s = data;
	struct deployer *d = s->m->d;
	SLOT_LOG_SCOPE(s);

	log_info("%s %s on port %u stopped%s", s->m->name, s->version, s->port,
		 last && last->signal == SIGKILL ? " (killed after the stop grace)" : "");
	s->inst = NULL;
	sup_instance_free(inst);
	record_instance_state(d, s->ref, STATE_INSTANCE_STOPPED);
	slot_emit(s, "stopped", last && last->signal == SIGKILL ? "killed after the stop grace" : NULL);
	slot_free(s);
}

void slot_stop(struct slot *s)
{
	if (!s || s->stopping)
		return;
	slot_leave(s);
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
	SLOT_LOG_SCOPE(s);

	if (busy > 0 && loop->now_ms < s->drain_until_ms) {
		loop_timer_set(loop, t, loop->now_ms + 50, drain_tick);
		return;
	}
	if (busy > 0)
		log_warn("%s %s: %lld requests still in flight after the drain timeout: stopping it anyway",
			 s->m->name, s->version, (long long)busy);
	slot_stop(s);
}

/* Once the proxy has no request in flight to it (its idle connections were
 * closed when it left the routing table), or after the service's
 * deploy.drain, whichever comes first: slot_stop(). */
void slot_retire(struct slot *s)
{
	const struct config_service *cs;

	if (!s || s->stopping)
		return;
	slot_leave(s);
	cs = deployer_config(s->m->d, s->m->name);
	s->drain_until_ms = s->m->d->p->loop->now_ms + (cs ? cs->deploy.drain_ms : 0);
	list_add_tail(&s->m->d->retiring, &s->retiring);
	drain_tick(s->m->d->p->loop, &s->drain_timer);
}

static void slot_crashed(struct slot *s, const struct sup_exit *e, bool gave_up)
{
	struct managed *m = s->m;
	char why[320];
	SLOT_LOG_SCOPE(s);

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
	if (engine_slot_crashed(s, why))
		return;
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
	s->m->restarts++;
	record_instance(s->m->d, s, false); /* new pid and start time, for adoption */
	slot_emit(s, "restarted", NULL);
}

static void slot_health(struct health_check *hc, enum health_state state, const char *reason, void *data)
{
	struct slot *s = data;
	struct managed *m = s->m;
	SLOT_LOG_SCOPE(s);

	s->health = state;
	slot_emit(s, state == HEALTH_HEALTHY ? "healthy" : "unhealthy", state == HEALTH_HEALTHY ? NULL : reason);
	if (!s->g || s->g != m->prev) /* the warm previous version stays "draining" in the record */
		record_instance_state(m->d, s->ref,
				      state == HEALTH_HEALTHY ? STATE_INSTANCE_HEALTHY : STATE_INSTANCE_UNHEALTHY);
	if (engine_slot_health(s, state, reason))
		return;
	if (state == HEALTH_UNHEALTHY)
		log_warn("%s %s on port %u is unhealthy: %s", m->name, s->version, s->port, reason);
}

/* The environment of an instance: PATH, PORT, CUTOVER_SERVICE,
 * CUTOVER_VERSION, then the service's env: (substituted).  Returns a
 * NULL-terminated malloc'd array of malloc'd strings, or NULL. */
static char **instance_env(const struct config_service *cs, const char *service, const char *port,
			   const char *version, const char *release_dir)
{
	const char *fixed[][2] = { { "PATH", "/usr/local/bin:/usr/bin:/bin" },
				   { "PORT", port },
				   { "CUTOVER_SERVICE", service },
				   { "CUTOVER_VERSION", version } };
	size_t nfixed = sizeof(fixed) / sizeof(fixed[0]), n = 0;
	char **env = calloc(nfixed + cs->nenv + 1, sizeof(char *));

	if (!env)
		return NULL;
	for (size_t i = 0; i < nfixed + cs->nenv; i++) {
		char *v = i < nfixed ? strdup(fixed[i][1])
				     : deploy_substitute(cs->env[i - nfixed].value, port, version, service, release_dir,
							 NULL);
		int r = v ? asprintf(&env[n], "%s=%s", i < nfixed ? fixed[i][0] : cs->env[i - nfixed].name, v) : -1;
		free(v);
		if (r < 0) {
			env[n] = NULL; /* asprintf leaves it undefined on failure */
			for (size_t k = 0; k < n; k++)
				free(env[k]);
			free(env);
			return NULL;
		}
		n++;
	}
	return env;
}

struct slot *slot_start(struct managed *m, const struct config_service *cs, const char *version,
		const char *release_dir, const struct state_instance *adopt, char *err, size_t errlen)
{
	struct deployer *d = m->d;
	struct slot *s = calloc(1, sizeof(*s));
	struct sup_spec spec;
	struct sup_callbacks cb = { .on_exit = slot_on_exit, .on_give_up = slot_on_give_up,
				    .on_restart = slot_on_restart };
	struct health_spec hs = { 0 };
	struct slot_secrets ss = { 0 };
	char port[8], id[96], log_path[4200], logdir[4096], why[512];
	char *command = NULL, **env = NULL;
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
	snprintf(s->id, sizeof(s->id), "%s", id);
	rc = slot_secrets_prepare(d, cs, id, &ss, why, sizeof(why));
	if (rc < 0 && !adopt) {
		snprintf(err, errlen, "cannot start %s %s: %s", m->name, version, why);
		goto fail;
	}
	if (rc < 0) /* it runs with what it was given; only a restart would lack them */
		log_error("%s %s on port %u: %s; adopted anyway, but if it crashes it restarts without its secrets",
			  m->name, version, (unsigned)s->port, why);
	snprintf(logdir, sizeof(logdir), "%s/logs/%s", d->p->cfg->state_dir, m->name);
	make_dirs(logdir, 0750); /* a failure shows as the instance's "open log" spawn error */
	snprintf(log_path, sizeof(log_path), "%s/%s.log", logdir, version);
	command = deploy_exec_simple(deploy_substitute(cs->run, port, version, m->name, release_dir, NULL));
	env = instance_env(cs, m->name, port, version, release_dir);
	if (!command || !env) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	sup_spec_init(&spec);
	spec.id = id;
	spec.command = command;
	spec.env = env;
	spec.cwd = cs->workdir ? cs->workdir : release_dir;
	spec.log_path = log_path;
	spec.secret_env = ss.env;
	spec.redact = ss.redact;
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
	s->ready = adopt != NULL; /* it served before the restart */
	rc = health_start(d->p->loop, &hs, slot_health, s, &s->hc);
	if (rc < 0) {
		snprintf(err, errlen, "cannot health-check %s %s: %s", m->name, version, strerror(-rc));
		sup_instance_stop(s->inst, slot_stopped);
		s = NULL; /* freed when reaped */
		goto out;
	}
	{
		SLOT_LOG_SCOPE(s);
		log_info("%s %s %s on port %u (pid %d), log %s", adopt ? "adopted" : "started", m->name, version,
			 s->port, (int)sup_instance_pid(s->inst), log_path);
	}
	goto out;
fail:
	slot_free(s);
	s = NULL;
out:
	slot_secrets_release(&ss); /* the supervisor keeps its own copy */
	for (size_t i = 0; env && env[i]; i++)
		free(env[i]);
	free(env);
	free(command);
	return s;
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

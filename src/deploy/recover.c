/* recover.c - deployer_recover(): what a daemon does at start, before its
 * listeners serve, after the previous one died (kill -9, a crash): re-adopt
 * the instances that still run, put traffic on the last known-good
 * version, keep the previous version warm while its rollback window lasts,
 * stop the rest, abort the deployment in flight with its reason, and start
 * again a version to serve whose instances are all gone.  The rules are in
 * docs/internals/deploy.md (After kill -9 of the daemon).
 *
 * The state worker is still idle here: SQLite is used directly.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/list.h"
#include "base/log.h"
#include "base/util.h"
#include "deploy/deploy-internal.h"
#include "loop/loop.h"
#include "proxy/proxy-t.h"
#include "state/state.h"

struct recovery {
	int adopted, stopped, gone, aborted, restarted;
	uint32_t filled;                   /* instances started to make up a live version's count */
};

/* When did deployment ID switch traffic (Unix ms; 0: unknown)? */
static int64_t switched_at(struct state *st, int64_t id)
{
	struct state_deployment_event *ev = NULL;
	size_t n = 0;
	int64_t at = 0;

	if (state_deployment_events(st, id, &ev, &n) < 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (ev[i].to_state == STATE_DEPLOYMENT_SWITCHED)
			at = ev[i].at;
	state_deployment_event_array_free(ev, n);
	return at;
}

enum role { ROLE_STOP = 0, ROLE_LIVE, ROLE_WARM };

/* Give role to up to want instances of VERSION that still run and have no
 * role yet: those the routing row names first, then the newest (by id).
 * Returns how many got it. */
static size_t pick_instances(const struct state_instance *in, const bool *alive, enum role *roles, size_t n,
			     const char *version, const struct state_routing *routing, enum role role, size_t want)
{
	size_t got = 0;

	if (!version || !*version)
		return 0;
	for (size_t k = 0; k < n && got < want; k++) {
		bool routed = false;
		if (!alive[k] || roles[k] != ROLE_STOP || strcmp(in[k].version, version))
			continue;
		for (size_t r = 0; routing && r < routing->ninstance_ids; r++)
			routed |= routing->instance_ids[r] == in[k].id;
		if (routed) {
			roles[k] = role;
			got++;
		}
	}
	for (size_t k = n; k-- > 0 && got < want;) {
		if (!alive[k] || roles[k] != ROLE_STOP || strcmp(in[k].version, version))
			continue;
		roles[k] = role;
		got++;
	}
	return got;
}

static struct slot *adopt(struct managed *m, const struct config_service *cs, const struct state_instance *in)
{
	struct state_release rel = { 0 };
	struct slot *slot;
	char err[256];

	if (state_release_get(m->d->st, cs->name, in->version, &rel) < 0) {
		log_warn("instance %lld of %s %s runs (pid %d) but its release is gone: left alone", (long long)in->id,
			 cs->name, in->version, in->pid);
		return NULL;
	}
	if (!in->release_id) {
		/* a row an older cutover wrote without its release */
		struct state_instance linked = *in;
		linked.release_id = rel.id;
		state_instance_update(m->d->st, &linked);
	}
	slot = slot_start(m, cs, in->version, rel.path, in, err, sizeof(err));
	state_release_clear(&rel);
	if (!slot)
		log_warn("cannot adopt %s %s (pid %d): %s", cs->name, in->version, in->pid, err);
	return slot;
}

/* What the state says of one managed service, and what recovery decided
 * from it (recover_read, then recover_decide). */
struct service_record {
	struct state_routing routing;
	bool have_routing;
	struct state_deployment *deps;     /* newest first */
	size_t ndeps;
	struct state_instance *in;         /* its live rows */
	size_t nin;
	bool *alive;                       /* in[k]'s process still runs */
	enum role *roles;                  /* what in[k] becomes, if it runs */
	const struct state_deployment *inflight, *last_done;
	bool inflight_switched;            /* the deploy in flight had moved traffic */
	const char *keep, *warm;           /* versions: to serve; to keep warm (NULL: none) */
	int64_t warm_until;                /* Unix ms: end of warm's rollback window */
	size_t nkeep;                      /* instances with ROLE_LIVE */
	char why[400];                     /* why the version served is not the one expected */
};

static void service_record_clear(struct service_record *r)
{
	free(r->alive);
	free(r->roles);
	state_deployment_array_free(r->deps, r->ndeps);
	state_instance_array_free(r->in, r->nin);
	if (r->have_routing)
		state_routing_clear(&r->routing);
}

/* Read the routing, the last deployments and the live instance rows of
 * service cs into r (marking the instances whose process is gone as
 * stopped).  Returns 0 or -ENOMEM; r is to be cleared either way. */
static int recover_read(struct state *st, const struct config_service *cs, struct service_record *r,
			struct recovery *rc)
{
	r->have_routing = state_routing_get(st, cs->name, &r->routing) == 0;
	if (state_deployment_list(st, cs->name, 16, &r->deps, &r->ndeps) < 0)
		r->ndeps = 0;
	if (state_instance_list_live(st, cs->name, &r->in, &r->nin) < 0)
		r->nin = 0;
	r->alive = calloc(r->nin + 1, sizeof(*r->alive));
	r->roles = calloc(r->nin + 1, sizeof(*r->roles));
	if (!r->alive || !r->roles)
		return -ENOMEM;
	/* newest first: the deployment in flight (if any), then the last one
	 * that moved traffic (failed and aborted ones did not) */
	for (size_t i = 0; i < r->ndeps; i++) {
		const struct state_deployment *dep = &r->deps[i];
		if (dep->state == STATE_DEPLOYMENT_AWAITING_APPROVAL)
			continue; /* never started: it waits again (approval_recover) */
		if (!dep->finished_at) {
			if (!r->inflight)
				r->inflight = dep;
			continue;
		}
		if (dep->state == STATE_DEPLOYMENT_FAILED || dep->state == STATE_DEPLOYMENT_ABORTED)
			continue;
		if (dep->state == STATE_DEPLOYMENT_DONE && strcmp(dep->strategy, "rollback"))
			r->last_done = dep;
		break;
	}
	for (size_t k = 0; k < r->nin; k++) {
		r->alive[k] = state_instance_process_alive(&r->in[k]);
		if (!r->alive[k]) {
			state_instance_set_state(st, r->in[k].id, STATE_INSTANCE_STOPPED);
			rc->gone++;
		}
	}
	return 0;
}

/* Decide, from r as read, the version to serve and its instances, and the
 * version to keep warm and its instances, up to services.NAME.instances
 * each (see docs/internals/deploy.md). */
static void recover_decide(struct state *st, const struct config_service *cs, struct managed *m,
			   struct service_record *r)
{
	const struct state_deployment *inflight = r->inflight, *last_done = r->last_done;
	const struct state_routing *routing = r->have_routing ? &r->routing : NULL;
	size_t want = cs->instances ? cs->instances : 1;

	/* Where traffic goes: the last known-good version.  A deploy that had
	 * switched but not finished its watch window is not known-good: back to
	 * the version it replaced.  One that had not switched never moved
	 * traffic: routing already names the old version. */
	r->keep = routing ? routing->version : NULL;
	r->inflight_switched = inflight && (inflight->state == STATE_DEPLOYMENT_SWITCHING ||
					    inflight->state == STATE_DEPLOYMENT_SWITCHED ||
					    inflight->state == STATE_DEPLOYMENT_DRAINING);
	/* (a rollback that had switched went back to a version known good
	 * before: it keeps the traffic, as the routing row says) */
	if (r->inflight_switched && inflight->from_version[0] && strcmp(inflight->strategy, "rollback"))
		r->keep = inflight->from_version;
	/* the version kept warm for an instant rollback, while its window lasts
	 * (not after a restart: it replaced nothing) */
	if (!r->inflight_switched && last_done && last_done->from_version[0] && r->keep &&
	    !strcmp(r->keep, last_done->to_version) && strcmp(last_done->from_version, last_done->to_version)) {
		int64_t at = switched_at(st, last_done->id);
		if (at && at + (int64_t)cs->deploy.rollback_window_ms > deploy_wall_ms()) {
			r->warm = last_done->from_version;
			r->warm_until = at + (int64_t)cs->deploy.rollback_window_ms;
		}
	}

	r->nkeep = pick_instances(r->in, r->alive, r->roles, r->nin, r->keep, routing, ROLE_LIVE, want);
	if (!r->nkeep && r->inflight_switched && routing) {
		/* the old version is gone too: the new one serves, better than nothing */
		r->nkeep = pick_instances(r->in, r->alive, r->roles, r->nin, routing->version, routing, ROLE_LIVE, want);
		if (r->nkeep) {
			snprintf(r->why, sizeof(r->why), "%s no longer runs: traffic stays on %s", r->keep,
				 routing->version);
			r->keep = routing->version;
		}
	}
	pick_instances(r->in, r->alive, r->roles, r->nin, r->warm, NULL, ROLE_WARM, want);
}

/* Put adopted slot s into *g (a new group of its version on the first). */
static int join(struct managed *m, struct group **g, struct slot *s)
{
	if (!*g && !(*g = group_new(m, s->version, s->release_dir)))
		return -ENOMEM;
	return group_add(*g, s);
}

/* The adopted live version takes the traffic, as the routing row says
 * (recorded again if it said otherwise). */
static void recover_route(struct state *st, const struct config_service *cs, struct managed *m,
			  const struct service_record *r)
{
	struct group *g = m->live;
	int64_t ids[DEPLOY_INSTANCES_MAX];
	bool same = r->have_routing && !strcmp(r->routing.version, g->version) && r->routing.ninstance_ids == g->n;

	g->weight = 100;
	if (route_publish(m) < 0) {
		log_error("%s: cannot route to %s (out of memory)", cs->name, g->version);
		return;
	}
	for (size_t i = 0; i < g->n; i++) {
		ids[i] = g->slots[i]->ref->id;
		same = same && r->routing.instance_ids[i] == ids[i];
		state_instance_set_state(st, ids[i], STATE_INSTANCE_HEALTHY);
	}
	if (!same)
		state_routing_set(st, cs->name, g->version, ids, g->n);
	log_info("%s: traffic on %s (%zu instance%s: %s)%s", cs->name, g->version, g->n, g->n == 1 ? "" : "s",
		 group_addrs(g, (char[400]){ 0 }, 400),
		 r->inflight_switched ? ", the last known-good version" : ", as routed before the restart");
}

/* Adopt every instance of r that still runs: those of the version to
 * serve get the traffic, those of the warm one the rest of its rollback
 * window, the others are stopped. */
static void recover_adopt(struct deployer *d, const struct config_service *cs, struct managed *m,
			  const struct service_record *r, struct recovery *rc)
{
	struct state *st = d->st;

	for (size_t k = 0; k < r->nin; k++) {
		const struct state_instance *in = &r->in[k];
		struct slot *slot;
		if (!r->alive[k])
			continue;
		slot = adopt(m, cs, in);
		if (!slot)
			continue;
		rc->adopted++;
		if (r->roles[k] == ROLE_LIVE && join(m, &m->live, slot) == 0)
			continue;
		if (r->roles[k] == ROLE_WARM && join(m, &m->prev, slot) == 0) {
			state_instance_set_state(st, in->id, STATE_INSTANCE_DRAINING);
			continue;
		}
		/* the green of an aborted deploy, a version out of its rollback
		 * window, one more than the service runs */
		slot_stop(slot);
		rc->stopped++;
	}
	if (m->live)
		recover_route(st, cs, m, r);
	if (m->prev) {
		int64_t left = r->warm_until - deploy_wall_ms();
		loop_timer_set(d->p->loop, &m->prev_timer, d->p->loop->now_ms + (uint64_t)(left > 0 ? left : 0),
			       prev_window_over);
		route_publish(m);
		log_info("%s: %s stays warm for an instant rollback (%lld s left of the rollback window)", cs->name,
			 m->prev->version, (long long)(left / 1000));
	}
	if (m->live && m->live->n < (cs->instances ? cs->instances : 1))
		m->fill = (cs->instances ? cs->instances : 1) - (uint32_t)m->live->n;
}

/* Why the deployment in flight ends (aborted), once the instances are
 * adopted: into reason[len]. */
static void abort_reason(const struct managed *m, const struct service_record *r, char *reason, size_t len)
{
	const struct state_deployment *inflight = r->inflight;
	const char *state_name = state_deployment_state_name(inflight->state);
	bool to_runs = m->live && !strcmp(m->live->version, inflight->to_version);

	if (to_runs)
		snprintf(reason, len, "the daemon restarted during %s; %s serves%s%s", state_name, inflight->to_version,
			 r->why[0] ? ": " : "", r->why);
	else if (r->inflight_switched && m->live && strcmp(m->live->version, inflight->to_version))
		snprintf(reason, len,
			 "the daemon restarted during %s (%s): traffic back on %s, the last known-good version; %s "
			 "stopped",
			 state_name,
			 inflight->state == STATE_DEPLOYMENT_SWITCHING ? "it had a share of the traffic, not all of it"
								       : "watch window not finished",
			 m->live->version, inflight->to_version);
	else if (r->why[0])
		snprintf(reason, len, "the daemon restarted during %s; %s", state_name, r->why);
	else if (m->live)
		snprintf(reason, len, "the daemon restarted during %s: traffic stays on %s; %s stopped", state_name,
			 m->live->version, inflight->to_version);
	else
		snprintf(reason, len, "the daemon restarted during %s; %s stopped", state_name, inflight->to_version);
}

/* Finish the deployments left unfinished: the one in flight as aborted,
 * with its reason and an audit row by cutover (recovery); older ones (their
 * service was unmanaged meanwhile) as superseded. */
static void recover_abort(struct state *st, const struct config_service *cs, struct managed *m,
			  const struct service_record *r, struct recovery *rc)
{
	const struct state_deployment *inflight = r->inflight;
	char reason[600], target[160];

	for (size_t i = 0; i < r->ndeps; i++) {
		if (r->deps[i].finished_at || &r->deps[i] == inflight ||
		    r->deps[i].state == STATE_DEPLOYMENT_AWAITING_APPROVAL)
			continue;
		if (state_deployment_finish(st, r->deps[i].id, STATE_DEPLOYMENT_ABORTED,
					    "the daemon restarted; a later deployment superseded it") == 0)
			rc->aborted++;
	}
	if (!inflight)
		return;
	abort_reason(m, r, reason, sizeof(reason));
	if (state_deployment_finish(st, inflight->id, STATE_DEPLOYMENT_ABORTED, reason) == 0) {
		rc->aborted++;
		m->deploys[RESULT_ABORTED]++; /* this daemon's count: the one that found it unfinished */
	}
	snprintf(target, sizeof(target), "%s@%s", cs->name, inflight->to_version);
	struct state_audit_entry e = { .actor = "cutover (recovery)",
				       .actor_uid = (unsigned)getuid(),
				       .action = "deploy",
				       .target = target,
				       .result = "aborted",
				       .detail = reason,
				       .env = m->d->p->cfg->env };
	state_audit_add(st, &e, NULL);
	log_warn("deployment %lld of %s to %s aborted: %s", (long long)inflight->id, cs->name, inflight->to_version,
		 reason);
}

/* Since when the version that serves has been known-good: the last
 * deployment that finished done, if it is this version's (what a proof of
 * it says: promotion.c; engine.c's dep_finish keeps it up to date). */
static void recover_live_since(struct state *st, struct managed *m)
{
	struct state_deployment last = { 0 };

	if (m->live && state_deployment_last_done(st, m->name, &last) == 0 &&
	    !strcmp(last.to_version, m->live->version))
		m->live->live_since = last.finished_at;
	state_deployment_clear(&last);
}

/* One managed service after a restart: see deployer_recover() and
 * docs/internals/deploy.md (After kill -9 of the daemon).  Returns 0 or
 * -ENOMEM. */
static int recover_service(struct deployer *d, const struct config_service *cs, struct recovery *rc)
{
	struct managed *m = managed_get(d, cs->name, true);
	struct service_record r = { 0 };
	int ret = -ENOMEM;

	if (!m)
		return -ENOMEM;
	if (recover_read(d->st, cs, &r, rc) < 0)
		goto out;
	/* what `cutover rollback` goes back to, as every deployment so far says */
	if (state_lineage_read(d->st, cs->name, &m->lineage) < 0)
		log_error("%s: cannot read its past deployments (%s): `cutover rollback` has nothing to go back to",
			  cs->name, state_errmsg(d->st));
	recover_decide(d->st, cs, m, &r);
	recover_adopt(d, cs, m, &r, rc);
	recover_live_since(d->st, m);
	recover_abort(d->st, cs, m, &r, rc);
	if (r.keep && !m->live) /* started by deployer_recover() once every service is recovered */
		snprintf(m->restart_version, sizeof(m->restart_version), "%s", r.keep);
	ret = 0;
out:
	service_record_clear(&r);
	return ret;
}

/* Start the instances the live version of m lacks (some did not survive
 * the restart): each takes traffic once healthy (engine_slot_health). */
static void recover_fill(struct managed *m, struct recovery *rc)
{
	const struct config_service *cs = deployer_config(m->d, m->name);
	char err[256];

	if (!m->fill || !m->live || !cs)
		return;
	log_warn("%s: %u instance%s of %s did not survive the restart; starting %s again", m->name, m->fill,
		 m->fill == 1 ? "" : "s", m->live->version, m->fill == 1 ? "it" : "them");
	if (group_start(m->live, cs, (uint32_t)m->live->n + m->fill, err, sizeof(err)) < 0)
		log_error("%s: %s", m->name, err);
	rc->filled += m->fill;
	m->fill = 0;
}

int deployer_recover(struct deployer *d)
{
	struct recovery rc = { 0 };
	int64_t next = 1;

	/* before any instance is adopted or started: they may need them */
	deployer_secrets_startup(d);
	/* go on numbering where the recorded deployments end */
	if (state_deployment_next_id(d->st, &next) == 0 && next - 1 > d->next_id)
		d->next_id = next - 1;

	for (size_t i = 0; i < d->p->cfg->nservices; i++) {
		const struct config_service *cs = &d->p->cfg->services[i];
		if (cs->run && recover_service(d, cs, &rc) < 0)
			return -ENOMEM;
	}
	/* the requests that await approval wait again (SQLite read first, then
	 * an overdue one expires through the worker) */
	approval_recover(d);
	/* only now: a deploy queues work on the state thread, which must not
	 * use the database while this thread still does */
	for (struct list_head *pos = d->services.next; pos != &d->services; pos = pos->next) {
		struct managed *m = container_of(pos, struct managed, node);
		char err[256];
		char why[300];
		/* a restart: from the version routed before to the same one */
		struct dep_ask ask = { .service = m->name, .version = m->restart_version, .from = m->restart_version,
				       .why = why, .who = DEPLOY_BY_DAEMON };
		if (!m->restart_version[0])
			continue;
		snprintf(why, sizeof(why), "restart of %s: none of its instances survived the restart of the daemon",
			 m->restart_version);
		log_warn("%s: no instance of %s survived the restart; starting it again", m->name, m->restart_version);
		if (dep_create(d, &ask, err, sizeof(err)) < 0) {
			log_error("%s: cannot restart %s: %s", m->name, m->restart_version, err);
			record_audit(d, DEPLOY_BY_DAEMON, "deploy", m->name, m->restart_version, "refused", err);
		} else {
			rc.restarted++;
		}
		m->restart_version[0] = 0;
	}
	for (struct list_head *pos = d->services.next; pos != &d->services; pos = pos->next)
		recover_fill(container_of(pos, struct managed, node), &rc);
	if (rc.adopted || rc.gone || rc.aborted || rc.restarted)
		log_info("recovered: %d instances adopted, %d stopped, %d were gone, %d deployments aborted, "
			 "%d versions restarted, %u instances started again",
			 rc.adopted, rc.stopped, rc.gone, rc.aborted, rc.restarted, rc.filled);
	return 0;
}


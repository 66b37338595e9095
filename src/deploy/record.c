/* record.c - recording to the state: every phase of a deployment, every
 * instance (pid, start time, port, state), the routing and the audit rows,
 * as fire-and-forget jobs on the state worker (declarations in
 * deploy-internal.h).
 *
 * Jobs run in the order they were queued, so a phase is committed before
 * the next one is; jobs chained with `next` run in one transaction (a
 * phase and the routing it set, a result and its audit row): after a crash
 * they are all there or none is.  The loop thread builds a job and queues
 * it; only the worker touches SQLite and the ids of the rows (struct
 * dbref).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/log.h"
#include "deploy/deploy-internal.h"
#include "loop/worker.h"
#include "proxy/proxy-t.h"
#include "state/state.h"
#include "supervisor/supervisor.h"

struct dbref *dbref_new(void)
{
	struct dbref *r = calloc(1, sizeof(*r));

	if (r)
		r->refs = 1;
	return r;
}

struct dbref *dbref_get(struct dbref *r)
{
	if (r)
		r->refs++;
	return r;
}

void dbref_put(struct dbref *r)
{
	if (r && --r->refs == 0)
		free(r);
}

enum job_kind { JOB_TRANSITION, JOB_FINISH, JOB_ROUTE, JOB_ROUTING, JOB_AUDIT, JOB_INSTANCE_ADD,
		JOB_INSTANCE_STATE, JOB_INSTANCE_PROC };

struct job {
	struct deployer *d;
	enum job_kind kind;
	struct deployment *dep;            /* for the db id (resolved on the worker: begin came first) */
	enum state_deployment_state to;
	char service[STATE_SERVICE_MAX + STATE_VERSION_MAX + 2], version[STATE_VERSION_MAX + 1], action[32], result[24];
	char env[STATE_ENV_MAX + 1];       /* audit: the daemon's environment ("": none), copied on the loop */
	int64_t release_id;                /* audit: the release run of the deployment (0: none) */
	char *detail;
	struct dbref *dep_db;              /* phase jobs: the deployment's row (reference held) */
	struct dbref *ref;                 /* instance jobs (reference held) */
	struct dbref *routed[DEPLOY_INSTANCES_MAX]; /* routing: the instances (references held) */
	size_t nrouted;
	struct state_instance inst;        /* JOB_INSTANCE_ADD / _PROC */
	enum state_instance_state istate;  /* JOB_INSTANCE_STATE */
	uid_t who;                         /* JOB_AUDIT */
	char dep_version[STATE_VERSION_MAX + 1];            /* phase jobs: the version deployed (for record_crash_point) */
	json_t *announce;                  /* emitted on the loop once the job ran (owned) */
	struct job *next;                  /* runs in the same transaction (owned) */
};

/* Test hook for the kill -9 recovery tests: with CUTOVER_TEST_CRASH_AT set
 * to "before:PHASE@VERSION" or "after:PHASE@VERSION" (a deployment state
 * name and the version deployed, e.g. after:switched@1.1.0), the daemon
 * SIGKILLs itself on the state thread just before or just after the
 * transaction recording that phase commits: the crash lands exactly at that
 * boundary, which no outside kill can aim at. */
void record_crash_point(struct deployer *d, bool after, enum state_deployment_state phase, const char *version)
{
	const char *want = d->crash_at;
	char here[200];

	if (!want)
		return;
	snprintf(here, sizeof(here), "%s:%s@%s", after ? "after" : "before", state_deployment_state_name(phase),
		 version);
	if (strcmp(want, here))
		return;
	log_warn("CUTOVER_TEST_CRASH_AT=%s: killing the daemon now (test hook)", want);
	raise(SIGKILL);
}

static bool is_phase_job(const struct job *j)
{
	return j->kind == JOB_TRANSITION || j->kind == JOB_FINISH || j->kind == JOB_ROUTE;
}

/* Returns 0 or the -errno of the state call. */
static int job_run(struct job *j)
{
	struct state *st = j->d->st;
	int64_t id = j->dep_db ? j->dep_db->id : 0;
	int64_t ids[DEPLOY_INSTANCES_MAX];
	int r = 0;

	for (size_t i = 0; i < j->nrouted; i++)
		ids[i] = j->routed[i]->id;

	switch (j->kind) {
	case JOB_TRANSITION:
		if (id > 0)
			r = state_deployment_transition(st, id, j->to, j->detail);
		break;
	case JOB_FINISH:
		if (id > 0)
			r = state_deployment_finish(st, id, j->to, j->detail);
		break;
	case JOB_ROUTE:
		/* the phase and where traffic goes, in one transaction */
		if (id > 0)
			r = state_deployment_route(st, id, j->to, j->detail, j->version, ids, j->nrouted);
		else /* no deployment row (its begin failed): at least the routing */
			r = state_routing_set(st, j->service, j->version, ids, j->nrouted);
		break;
	case JOB_ROUTING:
		r = state_routing_set(st, j->service, j->version, ids, j->nrouted);
		break;
	case JOB_INSTANCE_ADD:
		state_instance_add(st, &j->inst, &j->ref->id);
		break;
	case JOB_INSTANCE_STATE:
		if (j->ref->id > 0)
			state_instance_set_state(st, j->ref->id, j->istate);
		break;
	case JOB_INSTANCE_PROC:
		if (j->ref->id > 0) {
			struct state_instance cur = { 0 };
			if (state_instance_get(st, j->ref->id, &cur) == 0) {
				cur.pid = j->inst.pid;
				cur.pgid = j->inst.pid;
				cur.start_time_ticks = j->inst.start_time_ticks;
				cur.restarts = j->inst.restarts;
				state_instance_update(st, &cur);
				state_instance_clear(&cur);
			}
		}
		break;
	case JOB_AUDIT: {
		/* who asked: the user at the other end of the admin socket (kernel
		 * credentials), or cutover itself (automatic rollback, recovery).
		 * The name lookup may block on NSS: here, never on the loop. */
		bool daemon = j->who == DEPLOY_BY_DAEMON;
		uid_t uid = daemon ? getuid() : j->who;
		char actor[96];
		state_actor_name((unsigned)uid, daemon, actor, sizeof(actor));
		struct state_audit_entry e = { .actor = actor,
					       .actor_uid = (unsigned)uid,
					       .action = j->action,
					       .target = j->service,
					       .result = j->result,
					       .detail = j->detail,
					       .env = j->env,
					       .release_id = j->release_id };
		r = state_audit_add(st, &e, NULL);
		break;
	}
	}
	return r;
}

/* On the state worker: the job, and those chained to it in one transaction. */
static void job_work(void *data)
{
	struct job *j = data;
	struct state *st = j->d->st;

	if (is_phase_job(j))
		record_crash_point(j->d, false, j->to, j->dep_version);
	if (!j->next) {
		if (job_run(j) < 0)
			log_error("state: cannot record (%s)", state_errmsg(st));
	} else if (state_tx_begin(st) == 0) {
		int r = 0;
		/* all or nothing: the first failure ends the chain */
		for (struct job *k = j; k && r == 0; k = k->next)
			r = job_run(k);
		if (r == 0)
			r = state_tx_commit(st);
		if (r < 0) {
			log_error("state: cannot record (%s); nothing of it was written", state_errmsg(st));
			state_tx_rollback(st);
		}
	} else {
		log_error("state: cannot begin a transaction (%s)", state_errmsg(st));
	}
	if (is_phase_job(j))
		record_crash_point(j->d, true, j->to, j->dep_version);
}

static void job_done(void *data)
{
	struct job *j = data, *next;

	for (; j; j = next) {
		next = j->next;
		if (j->announce) /* the result, now recorded (or its failure logged) */
			deployer_emit(j->d, "deployment", j->announce);
		dbref_put(j->ref);
		for (size_t i = 0; i < j->nrouted; i++)
			dbref_put(j->routed[i]);
		dbref_put(j->dep_db);
		free(j->inst.log_path);
		free(j->detail);
		free(j);
	}
}

/* Queue j (and its chain) on the state worker.  NULL (out of memory when it
 * was built) is logged and dropped. */
static void job_submit(struct deployer *d, struct job *j)
{
	if (!j) {
		log_error("state: out of memory; the deployment record may be incomplete");
		return;
	}
	for (struct job *k = j; k; k = k->next) {
		k->d = d;
		/* (the configuration is the loop's: read here, not on the worker) */
		if (k->kind == JOB_AUDIT && d->p && d->p->cfg && d->p->cfg->env)
			snprintf(k->env, sizeof(k->env), "%s", d->p->cfg->env);
	}
	if (worker_submit(d->w, job_work, job_done, j) < 0) {
		log_error("state: cannot queue a write (out of memory); the deployment record may be incomplete");
		job_done(j);
	}
}

static struct job *phase_job(struct deployment *dep, enum state_deployment_state to, const char *detail, bool final)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->kind = final ? JOB_FINISH : JOB_TRANSITION;
	j->dep_db = dbref_get(dep->db); /* its id is read on the worker, after the begin job set it */
	snprintf(j->dep_version, sizeof(j->dep_version), "%s", dep->version);
	j->to = to;
	j->detail = detail ? strdup(detail) : NULL;
	return j;
}

void record_phase(struct deployment *dep, enum state_deployment_state to, const char *detail, bool final)
{
	job_submit(dep->d, phase_job(dep, to, detail, final));
}

static struct job *audit_job(uid_t who, const char *action, const char *service, const char *version,
			     const char *result, const char *detail)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->kind = JOB_AUDIT;
	j->who = who;
	snprintf(j->action, sizeof(j->action), "%s", action);
	snprintf(j->service, sizeof(j->service), "%s%s%s", service, version ? "@" : "", version ? version : "");
	snprintf(j->result, sizeof(j->result), "%s", result);
	j->detail = detail ? strdup(detail) : NULL;
	return j;
}

void record_audit(struct deployer *d, uid_t who, const char *action, const char *service,
			 const char *version, const char *result, const char *detail)
{
	job_submit(d, audit_job(who, action, service, version, result, detail));
}

/* Take references to the rows of g's instances that take requests, for
 * the routing row. */
static void job_route_to(struct job *j, struct group *g)
{
	snprintf(j->version, sizeof(j->version), "%s", g->version);
	for (size_t i = 0; i < g->n; i++)
		if (slot_routed(g->slots[i]))
			j->routed[j->nrouted++] = dbref_get(g->slots[i]->ref);
}

static struct job *routing_job(struct group *g)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->kind = JOB_ROUTING;
	snprintf(j->service, sizeof(j->service), "%s", g->m->name);
	job_route_to(j, g);
	return j;
}

/* The deployment's new phase and its service's routing (to group g), in
 * one transaction. */
static struct job *route_job(struct deployment *dep, enum state_deployment_state to, const char *detail,
			     struct group *g)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->kind = JOB_ROUTE;
	j->dep_db = dbref_get(dep->db);
	snprintf(j->dep_version, sizeof(j->dep_version), "%s", dep->version);
	j->to = to;
	j->detail = detail ? strdup(detail) : NULL;
	snprintf(j->service, sizeof(j->service), "%s", dep->service);
	job_route_to(j, g);
	return j;
}

void record_route(struct deployment *dep, enum state_deployment_state to, const char *detail, struct group *g)
{
	job_submit(dep->d, route_job(dep, to, detail, g));
}

void record_instance_state(struct deployer *d, struct dbref *ref, enum state_instance_state st)
{
	struct job *j = ref ? calloc(1, sizeof(*j)) : NULL;

	if (!j)
		return;
	j->kind = JOB_INSTANCE_STATE;
	j->ref = dbref_get(ref);
	j->istate = st;
	job_submit(d, j);
}

/* A new row for a started instance (pid, start time and port identify it
 * for adoption by the next daemon), or new process facts after a restart. */
void record_instance(struct deployer *d, struct slot *s, bool add)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return;
	j->kind = add ? JOB_INSTANCE_ADD : JOB_INSTANCE_PROC;
	j->ref = dbref_get(s->ref);
	snprintf(j->inst.service, sizeof(j->inst.service), "%s", s->m->name);
	snprintf(j->inst.version, sizeof(j->inst.version), "%s", s->version);
	j->inst.pid = (int)sup_instance_pid(s->inst);
	j->inst.pgid = j->inst.pid;
	j->inst.port = s->port;
	j->inst.start_time_ticks = sup_instance_starttime(s->inst);
	j->inst.restarts = (int)sup_instance_restarts(s->inst);
	j->inst.state = STATE_INSTANCE_STARTING;
	j->inst.log_path = s->log_path ? strdup(s->log_path) : NULL;
	job_submit(d, j);
}


void record_result(struct deployment *dep, enum state_deployment_state to, const char *why,
		   struct group *routed_back, json_t *announce)
{
	struct job *j = routed_back ? route_job(dep, to, why, routed_back) : phase_job(dep, to, why, true);

	if (!j) { /* not recorded (logged by job_submit): announced all the same */
		deployer_emit(dep->d, "deployment", announce);
		announce = NULL;
	} else {
		j->announce = announce;
		j->d = dep->d;
	}
	if (j && !(j->next = audit_job(dep->who, dep_action(dep), dep->service, dep->version,
				       state_deployment_state_name(to), why))) {
		job_done(j);
		j = NULL;
	}
	if (j)
		j->next->release_id = dep->release_id; /* a deploy of a release: its row names the run */
	job_submit(dep->d, j);
}

void record_routing(struct deployer *d, struct group *g, uid_t who, const char *action, const char *audit_version,
		    const char *result, const char *detail)
{
	struct job *j = routing_job(g);

	if (j && action && !(j->next = audit_job(who, action, g->m->name, audit_version, result, detail))) {
		job_done(j);
		j = NULL;
	}
	job_submit(d, j);
}

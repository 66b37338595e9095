/* deploy.c - blue-green deploys and rollbacks (contract in deploy.h, plan in
 * docs/internals/deploy.md).
 *
 * A managed service has at most three versions at once: `live` (receiving
 * traffic), `prev` (the version before, kept warm for an instant rollback
 * until the rollback window ends) and the `green` of a deploy in flight.
 * Each is a slot: one supervised process on a port cutover chose, with its
 * health check.  Everything here runs on the loop thread; SQLite writes go
 * through the state worker as fire-and-forget jobs, in order.
 */
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "base/list.h"
#include "base/log.h"
#include "base/util.h"
#include "config/config-t.h"
#include "deploy/deploy.h"
#include "deploy/health.h"
#include "loop/loop.h"
#include "metrics/metrics.h"
#include "proxy/proxy.h"
#include "store/store.h"

#define WATCH_TICK_MS 250
#define LIVE_CRASHES_BEFORE_ROLLBACK 3 /* live crash loop with a warm previous version: roll back */
#define DEPLOYMENTS_KEPT 64

enum phase { PH_STARTING, PH_HEALTH, PH_SMOKE, PH_WATCH, PH_DONE, PH_ROLLED_BACK, PH_FAILED };
static const char *const phase_names[] = { "starting", "health-checking", "smoke-testing", "switched",
					   "done", "rolled-back", "failed" };

struct managed;

/* The SQLite id of an instance row.  Written and read only on the state
 * worker (jobs run in order there); the refcount is touched only on the
 * loop thread (taken when a job is queued, dropped in its done), so a slot
 * freed while its jobs are queued leaves them a valid id to use. */
struct dbref {
	int64_t id;
	unsigned refs;
};

static struct dbref *dbref_new(void)
{
	struct dbref *r = calloc(1, sizeof(*r));

	if (r)
		r->refs = 1;
	return r;
}

static struct dbref *dbref_get(struct dbref *r)
{
	if (r)
		r->refs++;
	return r;
}

static void dbref_put(struct dbref *r)
{
	if (r && --r->refs == 0)
		free(r);
}

/* One running version of a service. */
struct slot {
	struct managed *m;
	struct dbref *ref;                 /* its row in `instances` */
	char version[STATE_VERSION_MAX + 1];
	char *release_dir;
	char *log_path;
	uint16_t port;
	char addr[32];
	struct sup_instance *inst;
	struct health_check *hc;
	enum health_state health;
	bool crashed;
	bool stopping;
	bool counted;                      /* deployer_stop_all waits for it (d->stopping) */
	struct loop_timer drain_timer;     /* slot_retire: waiting for in-flight requests */
	uint64_t drain_until_ms;
	struct list_head retiring;         /* in deployer.retiring once out of service (draining, stopping) */
};

struct deployment {
	struct list_head node;             /* in deployer.deployments, newest last */
	struct deployer *d;
	struct managed *m;
	int64_t id;
	struct dbref *db;                  /* its row in `deployments` (set by the begin job) */
	char service[STATE_SERVICE_MAX + 1], version[STATE_VERSION_MAX + 1], from_version[STATE_VERSION_MAX + 1];
	bool is_rollback;
	enum phase phase;
	struct slot *green;
	struct sup_instance *smoke;
	json_t *events;                    /* [{phase, at_ms, detail}] */
	char reason[320];
	uint64_t t_start_ms, t_healthy_ms, t_switched_ms, t_end_ms; /* monotonic */
	int64_t started_at;                /* wall clock, Unix ms */
	struct loop_timer timer;           /* deploy timeout, then watch ticks */
	uint64_t watch_until_ms;
	uint64_t base_requests, base_errors;
	uint64_t base_fine[METRICS_FINE_BUCKETS];  /* the watched version's latencies before the switch */
	struct metrics_upstream *watched;
	struct slot *routed_back;          /* set by rollback_now: dep_finish records the routing with the result */
	uid_t who;                         /* asked by this user (DEPLOY_BY_DAEMON: cutover itself) */
	bool pending_db;                   /* the begin job has not come back yet */
};

struct managed {
	struct list_head node;
	struct deployer *d;
	char *name;
	struct slot *live, *prev;
	char prev_version[STATE_VERSION_MAX + 1]; /* what `cutover rollback` goes back to ("": nothing) */
	char restart_version[STATE_VERSION_MAX + 1]; /* recovery: to start again once all is recovered */
	struct loop_timer prev_timer;      /* end of the rollback window */
	struct deployment *dep;            /* in flight */
};

struct deployer {
	unsigned stopping;                 /* slots still being stopped by deployer_stop_all */
	bool shutting_down;                /* deployer_stop_all ran: start nothing new */
	struct proxy *p;
	struct supervisor *sup;
	struct worker *w;
	struct state *st;
	struct list_head services;
	struct list_head retiring;         /* slots out of service: draining, then stopping until reaped */
	struct list_head deployments;
	size_t ndeployments;
	int64_t next_id;
	const char *crash_at;              /* test hook CUTOVER_TEST_CRASH_AT: see crash_point() */
	deployer_event_fn on_event;        /* the observer (deployer_observe) */
	void *on_event_data;
};

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const struct config_service *service_config(struct deployer *d, const char *name)
{
	for (size_t i = 0; i < d->p->cfg->nservices; i++)
		if (!strcmp(d->p->cfg->services[i].name, name))
			return &d->p->cfg->services[i];
	return NULL;
}

static struct managed *managed_get(struct deployer *d, const char *name, bool create)
{
	struct list_head *pos;
	struct managed *m;

	for (pos = d->services.next; pos != &d->services; pos = pos->next) {
		m = container_of(pos, struct managed, node);
		if (!strcmp(m->name, name))
			return m;
	}
	if (!create)
		return NULL;
	m = calloc(1, sizeof(*m));
	if (!m || !(m->name = strdup(name))) {
		free(m);
		return NULL;
	}
	m->d = d;
	list_add_tail(&d->services, &m->node);
	return m;
}

/* Replace ${PORT}, ${VERSION}, ${SERVICE}, ${RELEASE_DIR} and ${URL} in
 * text.  Returns a malloc'd string or NULL. */
static char *substitute(const char *text, const char *port, const char *version, const char *service,
			const char *release_dir, const char *url)
{
	static const char *const names[] = { "PORT", "VERSION", "SERVICE", "RELEASE_DIR", "URL" };
	const char *const vals[] = { port, version, service, release_dir, url };

	return substitute_vars(text, names, vals, 5);
}

/* A simple command (no shell syntax beyond words) gets `exec` in front, so
 * that the supervised pid is the program itself, not a shell: "stopped"
 * then means its in-flight work is done, not that the shell in front of it
 * died.  Takes and returns a malloc'd string (NULL stays NULL). */
static char *exec_simple(char *command)
{
	char *e = NULL;

	if (command && !strpbrk(command, ";&|\n()`") && asprintf(&e, "exec %s", command) >= 0) {
		free(command);
		return e;
	}
	return command;
}

/* ------------------------------------------------------------------ */
/* persistence: fire-and-forget jobs on the state worker               */

enum job_kind { JOB_TRANSITION, JOB_FINISH, JOB_ROUTE, JOB_ROUTING, JOB_AUDIT, JOB_INSTANCE_ADD,
		JOB_INSTANCE_STATE, JOB_INSTANCE_PROC };

struct job {
	struct deployer *d;
	enum job_kind kind;
	struct deployment *dep;            /* for the db id (resolved on the worker: begin came first) */
	enum state_deployment_state to;
	char service[STATE_SERVICE_MAX + STATE_VERSION_MAX + 2], version[STATE_VERSION_MAX + 1], action[32], result[16];
	char *detail;
	struct dbref *dep_db;              /* phase jobs: the deployment's row (reference held) */
	struct dbref *ref;                 /* instance jobs and routing (reference held) */
	struct state_instance inst;        /* JOB_INSTANCE_ADD / _PROC */
	enum state_instance_state istate;  /* JOB_INSTANCE_STATE */
	uid_t who;                         /* JOB_AUDIT */
	char dep_version[STATE_VERSION_MAX + 1];            /* phase jobs: the version deployed (for crash_point) */
	struct job *next;                  /* runs in the same transaction (owned) */
};

/* Test hook for the kill -9 recovery tests: with CUTOVER_TEST_CRASH_AT set
 * to "before:PHASE@VERSION" or "after:PHASE@VERSION" (a deployment state
 * name and the version deployed, e.g. after:switched@1.1.0), the daemon
 * SIGKILLs itself on the state thread just before or just after the
 * transaction recording that phase commits: the crash lands exactly at that
 * boundary, which no outside kill can aim at. */
static void crash_point(struct deployer *d, bool after, enum state_deployment_state phase, const char *version)
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

	int r = 0;

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
			r = state_deployment_route(st, id, j->to, j->detail, j->version, &j->ref->id, 1);
		else /* no deployment row (its begin failed): at least the routing */
			r = state_routing_set(st, j->service, j->version, &j->ref->id, 1);
		break;
	case JOB_ROUTING:
		r = state_routing_set(st, j->service, j->version, j->ref ? &j->ref->id : NULL, j->ref ? 1 : 0);
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
		 * getpwuid may block on NSS: here, never on the loop. */
		bool daemon = j->who == DEPLOY_BY_DAEMON;
		uid_t uid = daemon ? getuid() : j->who;
		struct passwd *pw = getpwuid(uid);
		char actor[96];
		if (daemon)
			snprintf(actor, sizeof(actor), "cutover (automatic)");
		else if (pw)
			snprintf(actor, sizeof(actor), "%s", pw->pw_name);
		else
			snprintf(actor, sizeof(actor), "uid %u", (unsigned)uid);
		struct state_audit_entry e = { .actor = actor,
					       .actor_uid = (unsigned)uid,
					       .action = j->action,
					       .target = j->service,
					       .result = j->result,
					       .detail = j->detail };
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
		crash_point(j->d, false, j->to, j->dep_version);
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
		crash_point(j->d, true, j->to, j->dep_version);
}

static void job_done(void *data)
{
	struct job *j = data, *next;

	for (; j; j = next) {
		next = j->next;
		dbref_put(j->ref);
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
	for (struct job *k = j; k; k = k->next)
		k->d = d;
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

static void record_phase(struct deployment *dep, enum state_deployment_state to, const char *detail, bool final)
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

static void record_audit(struct deployer *d, uid_t who, const char *action, const char *service,
			 const char *version, const char *result, const char *detail)
{
	job_submit(d, audit_job(who, action, service, version, result, detail));
}

static struct job *routing_job(const char *service, const char *version, struct dbref *ref)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->kind = JOB_ROUTING;
	snprintf(j->service, sizeof(j->service), "%s", service);
	snprintf(j->version, sizeof(j->version), "%s", version);
	j->ref = dbref_get(ref);
	return j;
}

/* The deployment's new phase and its service's routing (to slot s), in one
 * transaction: after a crash they never disagree. */
static struct job *route_job(struct deployment *dep, enum state_deployment_state to, const char *detail,
			     struct slot *s)
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
	snprintf(j->version, sizeof(j->version), "%s", s->version);
	j->ref = dbref_get(s->ref);
	return j;
}

static void record_route(struct deployment *dep, enum state_deployment_state to, const char *detail, struct slot *s)
{
	job_submit(dep->d, route_job(dep, to, detail, s));
}

static void record_instance_state(struct deployer *d, struct dbref *ref, enum state_instance_state st)
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
static void record_instance(struct deployer *d, struct slot *s, bool add)
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

/* ------------------------------------------------------------------ */
/* events of a deployment                                              */

void deployer_observe(struct deployer *d, deployer_event_fn fn, void *data)
{
	d->on_event = fn;
	d->on_event_data = data;
}

/* Tell the observer: ev is consumed. */
static void emit(struct deployer *d, const char *kind, json_t *ev)
{
	if (d->on_event && ev)
		d->on_event(d->on_event_data, kind, ev);
	json_decref(ev);
}

static void emit_instance(struct slot *s, const char *state, const char *detail)
{
	struct deployer *d = s->m->d;

	if (!d->on_event)
		return;
	emit(d, "instance",
	     json_pack("{s:s, s:s, s:i, s:I, s:s, s:I, s:s?}", "service", s->m->name, "version", s->version, "port",
		       (int)s->port, "pid", (json_int_t)(s->inst ? sup_instance_pid(s->inst) : 0), "state", state,
		       "at_ms", (json_int_t)wall_ms(), "detail", detail));
}

/* Record an event under the name of the current phase, or `label`. */
static void dep_event_as(struct deployment *dep, const char *label, const char *detail)
{
	json_t *ev = json_pack("{s:s, s:I, s:I, s:s?}", "phase", label, "at_ms", (json_int_t)wall_ms(), "elapsed_ms",
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
		emit(dep->d, "deployment", out);
	}
	json_decref(ev);
	log_info("%s %s %s: %s%s%s", dep->is_rollback ? "rollback of" : "deploy", dep->service, dep->version, label,
		 detail ? ": " : "", detail ? detail : "");
}

static void dep_event(struct deployment *dep, const char *detail)
{
	dep_event_as(dep, phase_names[dep->phase], detail);
}

static void slot_stop(struct slot *s);

static void smoke_stopped(struct sup_instance *inst, const struct sup_exit *last, void *data)
{
	sup_instance_free(inst);
}

static void dep_finish(struct deployment *dep, enum phase result, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------------ */
/* slots: one supervised process + its health check                    */

static void slot_free(struct slot *s)
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
	emit_instance(s, "stopped", last && last->signal == SIGKILL ? "killed after the stop grace" : NULL);
	slot_free(s);
}

/* Stop the process (signal, grace, SIGKILL) and free the slot when reaped. */
static void slot_stop(struct slot *s)
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

static struct metrics_upstream *slot_metrics(struct managed *m, struct slot *s);

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
static void slot_retire(struct slot *s)
{
	const struct config_service *cs;

	if (!s || s->stopping)
		return;
	cs = service_config(s->m->d, s->m->name);
	s->drain_until_ms = s->m->d->p->loop->now_ms + (cs ? cs->deploy.drain_ms : 0);
	list_add_tail(&s->m->d->retiring, &s->retiring);
	drain_tick(s->m->d->p->loop, &s->drain_timer);
}

static bool rollback_now(struct managed *m, const char *why);
static int64_t dep_create(struct deployer *d, const char *service, const char *version, bool is_rollback,
			  uid_t who, char *err, size_t errlen);

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
	emit_instance(s, "crashed", why);
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
	emit_instance(s, "restarted", NULL);
}

static void dep_healthy(struct deployment *dep);

static void slot_health(struct health_check *hc, enum health_state state, const char *reason, void *data)
{
	struct slot *s = data;
	struct managed *m = s->m;
	struct deployment *dep = m->dep;

	s->health = state;
	emit_instance(s, state == HEALTH_HEALTHY ? "healthy" : "unhealthy", state == HEALTH_HEALTHY ? NULL : reason);
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

/* Start VERSION of m from release_dir.  Returns the slot or NULL (err). */
/* Start VERSION of m from release_dir, or, with adopt, take over the
 * process a previous daemon started (same pid and start time).  Returns
 * the slot or NULL (err). */
static struct slot *slot_start(struct managed *m, const struct config_service *cs, const char *version,
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
	command = exec_simple(substitute(cs->run, port, version, m->name, release_dir, NULL));
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
		char *v = substitute(cs->env[i].value, port, version, m->name, release_dir, NULL);
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
	emit_instance(s, adopt ? "adopted" : "started", NULL);
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
static int route_to(struct managed *m, struct slot *s)
{
	struct config_target t = { .weight = 1 };
	struct proxy_group g = { .version = s->version, .weight = 1, .targets = &t, .ntargets = 1 };

	t.addr.text = s->addr;
	parse_sockaddr(s->addr, &t.addr.sa, &t.addr.salen);
	return proxy_set_groups(m->d->p, m->name, &g, 1);
}

/* The request counters of slot s (by service and address: they outlive the
 * slot's place in the target set, so a warm version keeps its figures). */
static struct metrics_upstream *slot_metrics(struct managed *m, struct slot *s)
{
	return metrics_upstream_get(&m->d->p->metrics, m->name, s->addr, s->version);
}

/* Share of m's new requests that slot s gets now, in percent. */
static int slot_traffic_percent(struct managed *m, struct slot *s)
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

static void prev_window_over(struct loop *loop, struct loop_timer *t)
{
	struct managed *m = container_of(t, struct managed, prev_timer);

	if (m->prev) {
		log_info("rollback window of %s over: stopping %s", m->name, m->prev->version);
		slot_retire(m->prev);
		m->prev = NULL;
	}
}

/* ------------------------------------------------------------------ */
/* the deployment state machine                                        */

static void dep_finish(struct deployment *dep, enum phase result, const char *fmt, ...)
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
	const char *why = dep->reason[0] ? dep->reason : NULL;
	struct job *j = dep->routed_back ? route_job(dep, to, why, dep->routed_back) : phase_job(dep, to, why, true);
	if (j && !(j->next = audit_job(dep->who, dep->is_rollback ? "rollback" : "deploy", dep->service,
				       dep->version, phase_names[result], why))) {
		job_done(j);
		j = NULL;
	}
	job_submit(dep->d, j);
	dep->routed_back = NULL;
	if (m->dep == dep)
		m->dep = NULL;
}

/* Move traffic back to the warm previous version now. */
/* Move traffic back to the warm previous version now.  Returns false (and
 * fails the deployment in flight, traffic untouched) if there is none that
 * runs and is not failing its health check.  Without a deployment in flight (a live version
 * crash-looping) the routing and the audit row are written together. */
static bool rollback_now(struct managed *m, const char *why)
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
	if (!dep) {
		struct job *j = routing_job(m->name, back->version, back->ref);
		if (j && !(j->next = audit_job(DEPLOY_BY_DAEMON, "rollback", m->name, bad ? bad->version : NULL,
					       "rolled-back", why))) {
			job_done(j);
			j = NULL;
		}
		job_submit(m->d, j);
	}
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
	const struct config_service *cs = service_config(dep->d, dep->service);
	const struct metrics_upstream *mu = dep->watched;
	uint64_t requests = 0, errors = 0, count = 0;

	if (!cs || !mu) {
		dep_finish(dep, PH_DONE, NULL);
		return;
	}
	metrics_counts_totals(&mu->counts, &requests, &errors);
	/* a failed connect is a request that failed */
	errors += mu->counts.connect_failures;
	requests += mu->counts.connect_failures;
	requests -= dep->base_requests;
	errors -= dep->base_errors;
	for (unsigned b = 0; b < METRICS_FINE_BUCKETS; b++)
		count += mu->counts.fine[b] - dep->base_fine[b];
	if (requests >= cs->deploy.min_requests && requests > 0 &&
	    errors * 1000 > (uint64_t)cs->deploy.max_error_rate_permille * requests) {
		char why[200];
		snprintf(why, sizeof(why), "error rate %.1f%% (%llu of %llu requests) above %.1f%%",
			 100.0 * (double)errors / (double)requests, (unsigned long long)errors,
			 (unsigned long long)requests, cs->deploy.max_error_rate_permille / 10.0);
		rollback_now(dep->m, why);
		return;
	}
	if (cs->deploy.max_p99_ms && count >= cs->deploy.min_requests && count > 0) {
		uint64_t need = (count * 99 + 99) / 100, seen = 0;
		unsigned b;
		for (b = 0; b < METRICS_FINE_BUCKETS - 1; b++) {
			seen += mu->counts.fine[b] - dep->base_fine[b];
			if (seen >= need)
				break;
		}
		/* the p99 is in bucket b: at least its lower bound, at most 6.25 %
		 * above it.  Roll back only when certain: the lower bound is over
		 * the limit. */
		uint64_t p99_floor_us = metrics_fine_lower_us(b);
		if (p99_floor_us > cs->deploy.max_p99_ms * 1000) {
			char why[200];
			snprintf(why, sizeof(why), "p99 latency %.0f ms or more, above the %llu ms limit (%llu requests)",
				 (double)p99_floor_us / 1000.0, (unsigned long long)cs->deploy.max_p99_ms,
				 (unsigned long long)count);
			rollback_now(dep->m, why);
			return;
		}
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
	const struct config_service *cs = service_config(d, dep->service);
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
	if (dep->watched) {
		metrics_counts_totals(&dep->watched->counts, &dep->base_requests, &dep->base_errors);
		dep->base_errors += dep->watched->counts.connect_failures;
		dep->base_requests += dep->watched->counts.connect_failures;
		memcpy(dep->base_fine, dep->watched->counts.fine, sizeof(dep->base_fine));
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
	const struct config_service *cs = service_config(dep->d, dep->service);

	dep_finish(dep, PH_FAILED, "smoke command still running after %llu s (the deploy timeout): stopped",
		   (unsigned long long)(cs ? cs->deploy.timeout_ms / 1000 : 0));
}

static void dep_healthy(struct deployment *dep)
{
	const struct config_service *cs = service_config(dep->d, dep->service);
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
		cmd = exec_simple(substitute(cs->deploy.smoke, port, dep->version, dep->service,
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
	crash_point(dep->d, false, STATE_DEPLOYMENT_STARTING, dep->version);
	if (state_deployment_begin_as(dep->d->st, dep->id, dep->service, from, dep->version, strategy, detail,
				      &dep->db->id) == -EEXIST)
		state_deployment_begin(dep->d->st, dep->service, from, dep->version, strategy, detail, &dep->db->id);
	crash_point(dep->d, true, STATE_DEPLOYMENT_STARTING, dep->version);
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
	const struct config_service *cs = service_config(dep->d, dep->service);
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

static int64_t dep_create(struct deployer *d, const char *service, const char *version, bool is_rollback,
			  uid_t who, char *err, size_t errlen);


int64_t deployer_deploy(struct deployer *d, const char *service, const char *version, uid_t who, char *err,
			size_t errlen)
{
	int64_t id = dep_create(d, service, version, false, who, err, errlen);

	if (id < 0)
		record_audit(d, who, "deploy", service, version, "refused", err);
	return id;
}

static int64_t dep_create(struct deployer *d, const char *service, const char *version, bool is_rollback,
			  uid_t who, char *err, size_t errlen)
{
	const struct config_service *cs = service_config(d, service);
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
	if (!dep || !j || !(dep->events = json_array()) || !(dep->db = dbref_new())) {
		if (dep) {
			json_decref(dep->events);
			dbref_put(dep->db);
		}
		free(dep);
		free(j);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	dep->d = d;
	dep->m = m;
	dep->is_rollback = is_rollback; /* read by the worker: set before queueing */
	dep->who = who;
	dep->id = ++d->next_id;
	snprintf(dep->service, sizeof(dep->service), "%s", service);
	snprintf(dep->version, sizeof(dep->version), "%s", version);
	snprintf(dep->from_version, sizeof(dep->from_version), "%s", m->live ? m->live->version : "");
	dep->t_start_ms = time_now_ms();
	dep->started_at = wall_ms();
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
	const struct config_service *cs = service_config(d, service);
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

static const char *slot_state(struct slot *s)
{
	if (s->stopping)
		return "stopping";
	switch (s->inst ? sup_instance_state(s->inst) : SUP_STOPPED) {
	case SUP_RUNNING: return "running";
	case SUP_BACKOFF: return "restarting";
	case SUP_STOPPING: return "stopping";
	case SUP_FAILED: return "failed";
	default: return "stopped";
	}
}

static json_t *slot_json(struct slot *s, const char *role)
{
	struct managed *m;
	struct metrics_upstream *mu;
	uint64_t requests = 0, errors = 0;
	json_t *j;

	if (!s)
		return json_null();
	m = s->m;
	mu = slot_metrics(m, s);
	if (mu)
		metrics_counts_totals(&mu->counts, &requests, &errors);
	j = json_pack("{s:s, s:s, s:s, s:i, s:i, s:s, s:s, s:b, s:i, s:i, s:I, s:I}", "role", role, "version",
		      s->version, "address", s->addr, "port", s->port, "pid",
		      s->inst && sup_instance_state(s->inst) == SUP_RUNNING ? (int)sup_instance_pid(s->inst) : 0,
		      "state", slot_state(s), "health", health_state_name(s->health), "crashed", s->crashed,
		      "restarts", s->inst ? (int)sup_instance_restarts(s->inst) : 0, "traffic_percent",
		      slot_traffic_percent(m, s), "requests", (json_int_t)requests, "errors_5xx",
		      (json_int_t)errors);
	if (j && s->inst && sup_instance_warning(s->inst))
		json_object_set_new(j, "warning", json_string(sup_instance_warning(s->inst)));
	if (j && s == m->prev && m->prev_timer.deadline_ms) {
		uint64_t now = m->d->p->loop->now_ms, end = m->prev_timer.deadline_ms;
		json_object_set_new(j, "warm_for_s", json_integer(end > now ? (json_int_t)((end - now) / 1000) : 0));
	}
	return j;
}

json_t *deployer_deployment_json(struct deployer *d, int64_t id)
{
	struct list_head *pos;

	for (pos = d->deployments.next; pos != &d->deployments; pos = pos->next) {
		struct deployment *dep = container_of(pos, struct deployment, node);
		if (dep->id != id)
			continue;
		return json_pack("{s:I, s:s, s:s, s:s?, s:s, s:b, s:b, s:s?, s:I, s:O}", "id", (json_int_t)dep->id,
				 "service", dep->service, "version", dep->version, "from_version",
				 dep->from_version[0] ? dep->from_version : NULL, "phase", phase_names[dep->phase],
				 "finished", dep->phase >= PH_DONE, "rollback", dep->is_rollback, "reason",
				 dep->reason[0] ? dep->reason : NULL, "started_at_ms", (json_int_t)dep->started_at,
				 "events", dep->events);
	}
	return NULL;
}

json_t *deployer_status_json(struct deployer *d)
{
	json_t *arr = json_array();
	struct list_head *pos;

	for (pos = d->services.next; pos != &d->services; pos = pos->next) {
		struct managed *m = container_of(pos, struct managed, node);
		struct deployment *dep = m->dep;
		json_array_append_new(
			arr,
			json_pack("{s:s, s:o, s:o, s:o, s:o, s:s?}", "name", m->name, "live", slot_json(m->live, "live"),
				  "previous", slot_json(m->prev, "warm"), "green",
				  slot_json(dep ? dep->green : NULL, "green"), "deploying",
				  dep ? json_pack("{s:I, s:s, s:s, s:I}", "id", (json_int_t)dep->id, "version",
						  dep->version, "phase", phase_names[dep->phase], "elapsed_ms",
						  (json_int_t)(time_now_ms() - dep->t_start_ms))
				      : json_null(),
				  "rollback_to", m->prev_version[0] ? m->prev_version : NULL));
	}
	return arr;
}

/* ------------------------------------------------------------------ */
/* after a restart (kill -9, crash, reboot of the daemon only)         */

struct recovery {
	int adopted, stopped, gone, aborted, restarted;
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

/* The newest live instance of VERSION that still runs, preferring one the
 * routing row names; -1 if none.  Skips index `not`. */
static ssize_t pick_instance(const struct state_instance *in, const bool *alive, size_t n, const char *version,
			     const struct state_routing *routing, ssize_t not)
{
	ssize_t best = -1;

	if (!version || !*version)
		return -1;
	for (size_t k = 0; k < n; k++) {
		bool routed = false;
		if (!alive[k] || (ssize_t)k == not || strcmp(in[k].version, version))
			continue;
		for (size_t r = 0; routing && r < routing->ninstance_ids; r++)
			routed |= routing->instance_ids[r] == in[k].id;
		if (routed)
			return (ssize_t)k;
		best = (ssize_t)k; /* by id: the newest wins */
	}
	return best;
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
	slot = slot_start(m, cs, in->version, rel.path, in, err, sizeof(err));
	state_release_clear(&rel);
	if (!slot)
		log_warn("cannot adopt %s %s (pid %d): %s", cs->name, in->version, in->pid, err);
	return slot;
}

/* One managed service after a restart: see deployer_recover() and
 * docs/internals/deploy.md (Recovery). */
static int recover_service(struct deployer *d, const struct config_service *cs, struct recovery *rc)
{
	struct state *st = d->st;
	struct managed *m = managed_get(d, cs->name, true);
	struct state_routing routing = { 0 };
	struct state_deployment *deps = NULL;
	struct state_instance *in = NULL;
	size_t ndeps = 0, nin = 0;
	bool *alive = NULL, have_routing;
	const struct state_deployment *inflight = NULL, *last_done = NULL;
	const char *keep = NULL, *warm = NULL;
	int64_t warm_until = 0;
	ssize_t keep_i, warm_i;
	char why[400] = "";

	if (!m)
		return -ENOMEM;
	have_routing = state_routing_get(st, cs->name, &routing) == 0;
	if (state_deployment_list(st, cs->name, 16, &deps, &ndeps) < 0)
		ndeps = 0;
	if (state_instance_list_live(st, cs->name, &in, &nin) < 0)
		nin = 0;
	alive = calloc(nin + 1, sizeof(*alive));
	if (!alive) {
		state_deployment_array_free(deps, ndeps);
		state_instance_array_free(in, nin);
		state_routing_clear(&routing);
		return -ENOMEM;
	}
	/* newest first: the deployment in flight (if any), then the last one
	 * that moved traffic (failed and aborted ones did not) */
	for (size_t i = 0; i < ndeps; i++) {
		if (!deps[i].finished_at) {
			if (!inflight)
				inflight = &deps[i];
			continue;
		}
		if (deps[i].state == STATE_DEPLOYMENT_FAILED || deps[i].state == STATE_DEPLOYMENT_ABORTED)
			continue;
		if (deps[i].state == STATE_DEPLOYMENT_DONE && strcmp(deps[i].strategy, "rollback"))
			last_done = &deps[i];
		break;
	}
	for (size_t k = 0; k < nin; k++) {
		alive[k] = state_instance_process_alive(&in[k]);
		if (!alive[k]) {
			state_instance_set_state(st, in[k].id, STATE_INSTANCE_STOPPED);
			rc->gone++;
		}
	}

	/* Where traffic goes: the last known-good version.  A deploy that had
	 * switched but not finished its watch window is not known-good: back to
	 * the version it replaced.  One that had not switched never moved
	 * traffic: routing already names the old version. */
	keep = have_routing ? routing.version : NULL;
	bool inflight_switched = inflight && (inflight->state == STATE_DEPLOYMENT_SWITCHING ||
					      inflight->state == STATE_DEPLOYMENT_SWITCHED ||
					      inflight->state == STATE_DEPLOYMENT_DRAINING);
	/* (a rollback that had switched went back to a version known good
	 * before: it keeps the traffic, as the routing row says) */
	if (inflight_switched && inflight->from_version[0] && strcmp(inflight->strategy, "rollback"))
		keep = inflight->from_version;
	/* the version kept warm for an instant rollback, while its window lasts */
	if (!inflight_switched && last_done && last_done->from_version[0] && keep &&
	    !strcmp(keep, last_done->to_version)) {
		int64_t at = switched_at(st, last_done->id);
		snprintf(m->prev_version, sizeof(m->prev_version), "%s", last_done->from_version);
		if (at && at + (int64_t)cs->deploy.rollback_window_ms > wall_ms()) {
			warm = last_done->from_version;
			warm_until = at + (int64_t)cs->deploy.rollback_window_ms;
		}
	}

	keep_i = pick_instance(in, alive, nin, keep, have_routing ? &routing : NULL, -1);
	if (keep_i < 0 && inflight_switched && have_routing) {
		/* the old version is gone too: the new one serves, better than nothing */
		keep_i = pick_instance(in, alive, nin, routing.version, &routing, -1);
		if (keep_i >= 0) {
			snprintf(why, sizeof(why), "%s no longer runs: traffic stays on %s", keep, routing.version);
			keep = routing.version;
		}
	}
	warm_i = pick_instance(in, alive, nin, warm, NULL, keep_i);

	for (size_t k = 0; k < nin; k++) {
		struct slot *slot;
		if (!alive[k])
			continue;
		slot = adopt(m, cs, &in[k]);
		if (!slot)
			continue;
		rc->adopted++;
		if ((ssize_t)k == keep_i && route_to(m, slot) == 0) {
			m->live = slot;
			log_info("%s: traffic on %s (pid %d, port %u)%s", cs->name, slot->version, in[k].pid, slot->port,
				 inflight_switched ? ", the last known-good version" : ", as routed before the restart");
			if (!have_routing || strcmp(routing.version, slot->version) || routing.ninstance_ids != 1 ||
			    routing.instance_ids[0] != in[k].id)
				state_routing_set(st, cs->name, slot->version, &in[k].id, 1);
			state_instance_set_state(st, in[k].id, STATE_INSTANCE_HEALTHY);
		} else if ((ssize_t)k == warm_i) {
			int64_t left = warm_until - wall_ms();
			m->prev = slot;
			loop_timer_set(d->p->loop, &m->prev_timer, d->p->loop->now_ms + (uint64_t)(left > 0 ? left : 0),
				       prev_window_over);
			state_instance_set_state(st, in[k].id, STATE_INSTANCE_DRAINING);
			log_info("%s: %s stays warm for an instant rollback (%lld s left of the rollback window)",
				 cs->name, slot->version, (long long)(left / 1000));
		} else {
			/* the green of an aborted deploy, a version out of its
			 * rollback window, a duplicate */
			slot_stop(slot);
			rc->stopped++;
		}
	}

	for (size_t i = 0; i < ndeps; i++) {
		if (deps[i].finished_at || &deps[i] == inflight)
			continue;
		/* an older row never finished (its service was unmanaged meanwhile) */
		if (state_deployment_finish(st, deps[i].id, STATE_DEPLOYMENT_ABORTED,
					    "the daemon restarted; a later deployment superseded it") == 0)
			rc->aborted++;
	}
	if (inflight) {
		char reason[600];
		const char *state_name = state_deployment_state_name(inflight->state);
		bool to_runs = m->live && !strcmp(m->live->version, inflight->to_version);
		if (to_runs)
			snprintf(reason, sizeof(reason), "the daemon restarted during %s; %s serves%s%s", state_name,
				 inflight->to_version, why[0] ? ": " : "", why);
		else if (inflight_switched && m->live && strcmp(m->live->version, inflight->to_version))
			snprintf(reason, sizeof(reason),
				 "the daemon restarted during %s (watch window not finished): traffic back on %s, the last "
				 "known-good version; %s stopped",
				 state_name, m->live->version, inflight->to_version);
		else if (why[0])
			snprintf(reason, sizeof(reason), "the daemon restarted during %s; %s", state_name, why);
		else if (m->live)
			snprintf(reason, sizeof(reason), "the daemon restarted during %s: traffic stays on %s; %s stopped",
				 state_name, m->live->version, inflight->to_version);
		else
			snprintf(reason, sizeof(reason), "the daemon restarted during %s; %s stopped", state_name,
				 inflight->to_version);
		if (state_deployment_finish(st, inflight->id, STATE_DEPLOYMENT_ABORTED, reason) == 0)
			rc->aborted++;
		struct state_audit_entry e = { .actor = "cutover (recovery)",
					       .actor_uid = (unsigned)getuid(),
					       .action = "deploy",
					       .result = "aborted",
					       .detail = reason };
		char target[160];
		snprintf(target, sizeof(target), "%s@%s", cs->name, inflight->to_version);
		e.target = target;
		state_audit_add(st, &e, NULL);
		log_warn("deployment %lld of %s to %s aborted: %s", (long long)inflight->id, cs->name,
			 inflight->to_version, reason);
	}
	if (keep && !m->live) /* started by deployer_recover() once every service is recovered */
		snprintf(m->restart_version, sizeof(m->restart_version), "%s", keep);
	free(alive);
	state_deployment_array_free(deps, ndeps);
	state_instance_array_free(in, nin);
	if (have_routing)
		state_routing_clear(&routing);
	return 0;
}

int deployer_recover(struct deployer *d)
{
	struct recovery rc = { 0 };
	int64_t next = 1;

	/* go on numbering where the recorded deployments end */
	if (state_deployment_next_id(d->st, &next) == 0 && next - 1 > d->next_id)
		d->next_id = next - 1;

	for (size_t i = 0; i < d->p->cfg->nservices; i++) {
		const struct config_service *cs = &d->p->cfg->services[i];
		if (cs->run && recover_service(d, cs, &rc) < 0)
			return -ENOMEM;
	}
	/* only now: a deploy queues work on the state thread, which must not
	 * use the database while this thread still does */
	for (struct list_head *pos = d->services.next; pos != &d->services; pos = pos->next) {
		struct managed *m = container_of(pos, struct managed, node);
		char err[256];
		if (!m->restart_version[0])
			continue;
		log_warn("%s: no instance of %s survived the restart; starting it again", m->name, m->restart_version);
		if (deployer_deploy(d, m->name, m->restart_version, DEPLOY_BY_DAEMON, err, sizeof(err)) < 0)
			log_error("%s: cannot restart %s: %s", m->name, m->restart_version, err);
		else
			rc.restarted++;
		m->restart_version[0] = 0;
	}
	if (rc.adopted || rc.gone || rc.aborted || rc.restarted)
		log_info("recovered: %d instances adopted, %d stopped, %d were gone, %d deployments aborted, "
			 "%d versions restarted",
			 rc.adopted, rc.stopped, rc.gone, rc.aborted, rc.restarted);
	return 0;
}

static bool stop_all_timed_out;

static void stop_all_timeout(struct loop *loop, struct loop_timer *t)
{
	stop_all_timed_out = true;
	loop->stop = true;
}

void deployer_stop_all(struct deployer *d)
{
	struct list_head *pos, *tmp;
	struct loop_timer guard = { 0 };
	uint64_t grace = 0;

	d->shutting_down = true;
	for (pos = d->services.next; pos != &d->services; pos = pos->next) {
		struct managed *m = container_of(pos, struct managed, node);
		const struct config_service *cs = service_config(d, m->name);
		struct slot *slots[3] = { m->live, m->prev, m->dep ? m->dep->green : NULL };
		/* counted before dep_finish, which stops a green itself */
		for (int i = 0; i < 3; i++) {
			if (!slots[i] || slots[i]->stopping)
				continue;
			slots[i]->counted = true;
			d->stopping++;
		}
		struct deployment *dep = m->dep;
		if (m->dep && m->dep->phase == PH_WATCH && m->prev) {
			/* not through its watch window: the version to serve after a
			 * restart is the one before it (recorded with the result) */
			m->dep->routed_back = m->prev;
			dep_finish(m->dep, PH_FAILED,
				   "the daemon was stopped during the watch window: %s, the last known-good version, "
				   "serves when it starts again",
				   m->prev->version);
		} else if (m->dep && m->dep->phase < PH_DONE) {
			dep_finish(m->dep, PH_FAILED, "the daemon is shutting down");
		}
		if (dep && !dep->green)
			slots[2] = NULL; /* dep_finish stopped it (it may be freed already) */
		for (int i = 0; i < 3; i++)
			if (slots[i] && slots[i]->counted && !slots[i]->stopping)
				slot_stop(slots[i]);
		m->live = m->prev = NULL;
		loop_timer_cancel(d->p->loop, &m->prev_timer);
		if (cs && cs->stop_grace_ms > grace)
			grace = cs->stop_grace_ms;
	}
	/* out of service: draining (the proxy has drained by now: stop it) or
	 * already stopping; wait for those too, or they would outlive us */
	list_for_each_safe(pos, tmp, &d->retiring) {
		struct slot *s = container_of(pos, struct slot, retiring);
		loop_timer_cancel(d->p->loop, &s->drain_timer);
		if (!s->counted) {
			s->counted = true;
			d->stopping++;
		}
		slot_stop(s); /* no-op if stopping; may free s */
	}
	if (!d->stopping)
		return;
	log_info("stopping %u instances (grace %llu ms)", d->stopping, (unsigned long long)grace);
	stop_all_timed_out = false;
	loop_timer_set(d->p->loop, &guard, d->p->loop->now_ms + grace + 2000, stop_all_timeout);
	/* other hooks (the drained proxy) may stop each iteration: go on until
	 * every instance is reaped or the guard fires */
	while (d->stopping && !stop_all_timed_out) {
		d->p->loop->stop = false;
		if (loop_run(d->p->loop) < 0)
			break;
	}
	loop_timer_cancel(d->p->loop, &guard);
	if (d->stopping)
		log_warn("%u instances not reaped after the stop grace", d->stopping);
	d->stopping = 0;
}

int deployer_new(struct proxy *p, struct supervisor *sup, struct worker *w, struct state *st,
		 struct deployer **ret)
{
	struct deployer *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	d->p = p;
	d->sup = sup;
	d->w = w;
	d->st = st;
	list_init(&d->services);
	list_init(&d->retiring);
	list_init(&d->deployments);
	d->crash_at = getenv("CUTOVER_TEST_CRASH_AT");
	if (d->crash_at && !*d->crash_at)
		d->crash_at = NULL;
	if (d->crash_at)
		log_warn("CUTOVER_TEST_CRASH_AT=%s is set: this daemon will kill itself there (a test hook)", d->crash_at);
	*ret = d;
	return 0;
}

void deployer_free(struct deployer *d)
{
	struct list_head *pos, *tmp;

	if (!d)
		return;
	list_for_each_safe(pos, tmp, &d->deployments) {
		struct deployment *dep = container_of(pos, struct deployment, node);
		loop_timer_cancel(d->p->loop, &dep->timer);
		json_decref(dep->events);
		dbref_put(dep->db);
		free(dep);
	}
	list_for_each_safe(pos, tmp, &d->retiring)
		slot_free(container_of(pos, struct slot, retiring));
	list_for_each_safe(pos, tmp, &d->services) {
		struct managed *m = container_of(pos, struct managed, node);
		loop_timer_cancel(d->p->loop, &m->prev_timer);
		/* instances keep running: a restarted daemon adopts them */
		if (m->live)
			slot_free(m->live);
		if (m->prev)
			slot_free(m->prev);
		free(m->name);
		free(m);
	}
	free(d);
}

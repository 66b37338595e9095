/* deploy-internal.h - what the files of the deploy engine share (the
 * public contract is deploy.h; the design is docs/internals/deploy.md).
 *
 *   deploy.c       the deployer object: new, free, stop_all, the observer, helpers
 *   deployments.c  deployments: deployer_deploy, deployer_rollback, their begin job
 *   strategy.c     strategies: a deploy's plan (plan.h, plan-t.h)
 *   engine.c       the plan runner: steps, smoke, weights, finish, abort
 *   watch.c        holding a step: the analysis, extensions, the baselines it compares with
 *   control.c      pause, resume, promote and abort of a deployment in flight
 *   approval.c     deploys that await a person's approval: request, approve, reject, expire
 *   promotion.c    proofs of what runs here, and promotions checked against another's proof
 *   groups.c       a version's instances, its weight; the routing at the proxy
 *   slots.c        instances: start or adopt, health, crash, stop, drain, retire
 *   record.c       recording to the state: fire-and-forget jobs on the state worker
 *   recover.c      deployer_recover(): after a restart of the daemon
 *   status.c       deployments and services as JSON; the families of /metrics
 *
 * Everything here runs on the loop thread, except the jobs of record.c
 * (and the begin job of deployments.c), which run on the state worker.
 */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "base/list.h"
#include "config/config-t.h"
#include "deploy/analysis-t.h"
#include "deploy/plan-t.h"
#include "deploy/deploy.h"
#include "deploy/health-t.h"
#include "loop/loop-t.h"
#include "metrics/metrics-t.h"
#include "secrets/secrets-t.h"
#include "state/proof-t.h"
#include "state/state-t.h"

#define WATCH_TICK_MS 250
#define LIVE_CRASHES_BEFORE_ROLLBACK 3 /* live crash loop with a warm previous version: roll back */
#define DEPLOYMENTS_KEPT 64
#define DEPLOY_INSTANCES_MAX 64        /* services.NAME.instances is 1..64 (src/config) */

/* PH_AWAITING: requested, not started until a person approves it (never a
 * service's deployment in flight, managed.dep).  From PH_DONE on: finished. */
enum phase { PH_AWAITING, PH_STARTING, PH_STOPPING, PH_HEALTH, PH_SMOKE, PH_WATCH, PH_DONE, PH_ROLLED_BACK,
	     PH_FAILED, PH_REJECTED, PH_EXPIRED };
/* The names of enum phase, as the API and the history show them. */
extern const char *const phase_names[];

/* What cutover_deploys_total counts a finished deployment as (its result
 * label: deploy_result_names): the results of enum phase, and a deployment
 * in flight when the daemon stopped, which the next one finishes. */
enum deploy_result { RESULT_DONE, RESULT_ROLLED_BACK, RESULT_FAILED, RESULT_ABORTED, RESULT_REJECTED,
		     RESULT_EXPIRED, RESULT_COUNT };
extern const char *const deploy_result_names[RESULT_COUNT];
/* What made a rollback (cutover_rollbacks_total's trigger label). */
enum rollback_trigger { TRIGGER_AUTOMATIC, TRIGGER_MANUAL, TRIGGER_COUNT };

struct managed;
struct group;

/* The SQLite id of an instance row.  Written and read only on the state
 * worker (jobs run in order there); the refcount is touched only on the
 * loop thread (taken when a job is queued, dropped in its done), so a slot
 * freed while its jobs are queued leaves them a valid id to use. */
struct dbref {
	int64_t id;
	unsigned refs;
};

/* One instance of a version: one supervised process on a port cutover
 * chose, with its health check. */
struct slot {
	struct managed *m;
	char id[96];                       /* the supervisor's instance id (names its secrets directory) */
	struct group *g;                   /* the version it is an instance of; NULL once out of it */
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
	bool ready;                        /* healthy once (or adopted): the proxy may send it requests */
	bool counted;                      /* deployer_stop_all waits for it (d->stopping) */
	bool awaited;                      /* a deployment waits until it is gone (managed.awaiting) */
	struct loop_timer drain_timer;     /* slot_retire: waiting for in-flight requests */
	uint64_t drain_until_ms;
	struct list_head retiring;         /* in deployer.retiring once out of service (draining, stopping) */
};

/* The instances of one version of a managed service, and its share of the
 * service's new requests.  A slot that leaves it (stopped, retired) is
 * taken out of slots[] at once. */
struct group {
	struct managed *m;
	char version[STATE_VERSION_MAX + 1];
	char *release_dir;
	uint32_t weight;                   /* percent; 0: no new requests (warm, or not switched to yet) */
	int64_t live_since;                /* Unix ms: its deployment finished done (known-good since); 0: not yet */
	size_t n;
	struct slot *slots[DEPLOY_INSTANCES_MAX];
};

/* The counts of a version as the analysis reads them: c[0] all its
 * requests, c[1 + i] those of route class names[i] of its service. */
struct counts_set {
	size_t nclasses;
	char names[CONFIG_ROUTE_CLASSES_MAX][64];
	struct metrics_counts c[];
};

/* A snapshot of a live version (watch.c: the baseline of a switch). */
#define BASELINE_RING 7
#define BASELINE_EVERY_MS 10000
#define BASELINE_WINDOW_MS 60000           /* the baseline: the last minute (to 70 s) before the switch */
struct baseline_snap {
	struct counts_set *counts;         /* NULL: none yet */
	char version[STATE_VERSION_MAX + 1];
	uint64_t at_ms;
};

/* What the analysis compares, while a deployment is in flight (freed
 * when it ends). */
#define WATCH_SCOPES_MAX (1 + CONFIG_ROUTE_CLASSES_MAX)
struct watch {
	struct counts_set *new_at_hold;    /* the new version when the step's weights were set */
	struct counts_set *old_at_hold;    /* the old one then (a step it shares) */
	struct counts_set *baseline;       /* the old version's window just before the switch */
	struct counts_set *scratch_new, *scratch_old; /* the windows judged on a tick */
	char baseline_version[STATE_VERSION_MAX + 1];
	uint64_t baseline_ms;              /* the baseline window's length (0: since the version started) */
	bool has_baseline;
	struct analysis_verdict verdicts[WATCH_SCOPES_MAX]; /* the last tick's: the service, then each class */
	size_t nverdicts;
};

struct deployment {
	struct list_head node;             /* in deployer.deployments, newest last */
	struct deployer *d;
	struct managed *m;
	int64_t id;
	struct dbref *db;                  /* its row in `deployments` (set by the begin job) */
	char service[STATE_SERVICE_MAX + 1], version[STATE_VERSION_MAX + 1], from_version[STATE_VERSION_MAX + 1];
	bool is_rollback;
	bool is_restart;                   /* `cutover restart`: the live version again, by hand */
	char first[200];                   /* the detail of its first event (what it is, why) */
	char why[200];                     /* what the request said it is (a promotion); "": nothing */
	char digest[STATE_DIGEST_HEX + 1]; /* the release asked for ("": the store's), then the one run */
	char promoted_from[STATE_ENV_MAX + 1]; /* a promotion: the environment of its proof */
	int64_t release_id;                /* the release run it is part of (0: none) */
	char env[STATE_ENV_MAX + 1];       /* the environment of the daemon (""): recorded with it */
	bool awaited;                      /* its row was recorded awaiting approval: starting updates it */
	int64_t expires_at;                /* awaiting approval: then it expires (Unix ms) */
	char requested_by[48];             /* awaiting approval: "alice" (who asked) */
	enum phase phase;
	struct plan plan;                  /* what it runs (strategy.c) */
	size_t step;                       /* the step it is at */
	bool smoked;                       /* the smoke command passed */
	bool old_stopped;                  /* the plan stopped the old version: an abort starts it again */
	struct group *green;               /* the new version, until it is live */
	struct sup_instance *smoke;
	json_t *events;                    /* [{phase, at_ms, detail}] */
	char reason[320];
	uint64_t t_start_ms, t_healthy_ms, t_switched_ms, t_end_ms; /* monotonic */
	int64_t started_at;                /* wall clock, Unix ms */
	struct loop_timer timer;           /* deploy timeout, then the hold (watch ticks) */
	uint64_t hold_started_ms, hold_until_ms;
	uint64_t phase_since_ms;           /* monotonic: its phase (or step) began, or it resumed (for /metrics) */
	struct group *watched;             /* the version judged during the hold */
	struct watch *watch;               /* the analysis' snapshots, while in flight (owned) */
	bool extending;                    /* its hold is over, its verdict inconclusive: up to max_extension more */
	bool paused;                       /* held at this step: `cutover resume` (or promote, abort) goes on */
	bool paused_inconclusive;          /* ... because the step stayed inconclusive: resume moves on */
	char pause_reason[ANALYSIS_REASON_MAX + 256];
	bool promoted;                     /* `cutover promote`: the remaining steps are skipped */
	bool aborting;                     /* rolling: aborted, the old instances starting again first */
	bool aborted_by_person;            /* `cutover abort` by a person (not a release): a manual rollback */
	char abort_why[320];               /* ... why */
	uint64_t ready_at_ms;              /* rolling: the step's new instances take traffic from then (min_ready) */
	struct group *routed_back;         /* set by rollback_now: dep_finish records the routing with the result */
	uid_t who;                         /* asked by this user (DEPLOY_BY_DAEMON: cutover itself) */
	bool pending_db;                   /* the begin job has not come back yet */
	bool pending_request;              /* approval.c: the job recording the request has not come back yet */
};

struct managed {
	struct list_head node;
	struct deployer *d;
	char *name;
	struct group *live, *prev;
	struct state_lineage lineage;      /* the versions that served: what `cutover rollback` goes back to */
	char restart_version[STATE_VERSION_MAX + 1]; /* recovery: to start again once all is recovered */
	uint32_t fill;                     /* recovery: live instances to start to have cs->instances */
	struct loop_timer prev_timer;      /* end of the rollback window */
	struct deployment *dep;            /* in flight */
	unsigned awaiting;                 /* slots the deployment in flight waits to see gone */
	struct baseline_snap ring[BASELINE_RING]; /* the live version's recent counts (watch.c) */
	size_t ring_next;
	uint64_t verdicts[3];              /* analysis decisions by enum analysis_result (for /metrics) */
	/* for /metrics, over every version since the daemon started */
	uint64_t restarts;                 /* instances restarted by the supervisor after a crash */
	uint64_t deploys[RESULT_COUNT];    /* finished deployments, by result */
	uint64_t rollbacks[TRIGGER_COUNT]; /* traffic put back on a previous version, by trigger */
	struct metrics_span_histogram durations; /* deployments that ran, from start to result */
};

#define DEPLOY_SECRETS_KEPT 8 /* secrets files read before, still hidden by the redactor */

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
	const char *crash_at;              /* test hook CUTOVER_TEST_CRASH_AT: see record_crash_point() */
	deployer_event_fn on_event;        /* the observer (deployer_observe) */
	void *on_event_data;
	struct loop_timer baseline_timer;  /* watch.c: snapshots of the live versions */
	struct secrets *secrets;           /* secrets.c: the environment's secrets as last read, or NULL */
	struct secrets *secrets_before[DEPLOY_SECRETS_KEPT]; /* those read before it, newest first */
	struct proof_signer *signer;       /* promotion.c: signs proofs of what runs here (NULL: none) */
	char signer_error[320];            /* ... why there is none */
};

/* --- secrets.c: what instances receive --- */
/* Reading the secrets file for a deployment (on the state worker) or at
 * start. */
struct secret_load {
	bool wanted;                       /* false: the service needs none, nothing is read */
	char *identity, *file, *env;       /* copied from the configuration ("" env: none) */
	char **names;                      /* the secrets the service lists */
	size_t nnames;
	struct secrets *out;               /* the file, once read and complete */
	int rc;                            /* 0, or -errno with err */
	char err[768];
};
/* On the loop: copy what secret_load_run() needs from cfg and cs (NULL:
 * the whole file, no names required).  Returns 0 or -ENOMEM. */
int secret_load_prepare(struct secret_load *sl, const struct config *cfg, const struct config_service *cs);
/* Anywhere but the loop: read the identity and the file, check the names.
 * Sets sl->out, or sl->rc and sl->err (naming the secret and the environment). */
void secret_load_run(struct secret_load *sl);
void secret_load_release(struct secret_load *sl);
/* On the loop: sl->out becomes d->secrets (taken from sl) and the
 * process-wide redactor hides its values and those of the files before. */
void deployer_secrets_adopt(struct deployer *d, struct secret_load *sl);
/* At start, before recovery: read the file if there is one (errors logged). */
void deployer_secrets_startup(struct deployer *d);
/* At the end: wipe everything. */
void deployer_secrets_release(struct deployer *d);
/* What one instance receives. */
struct slot_secrets {
	char **env;                        /* NULL-terminated "NAME=VALUE" in sodium memory, or NULL */
	struct redactor *redact;           /* its values, for its log relay, or NULL */
};
/* Build ss for an instance of cs with supervisor id ID: the variables, and
 * the files written in RUNTIME_DIR/ID.  Returns 0 (nothing when cs lists
 * no secret), or -errno with err. */
int slot_secrets_prepare(const struct deployer *d, const struct config_service *cs, const char *id,
			 struct slot_secrets *ss, char *err, size_t errlen);
void slot_secrets_release(struct slot_secrets *ss);
/* Remove RUNTIME_DIR/ID and its files (the instance's process is gone). */
void slot_secrets_remove(const struct deployer *d, const char *id);

/* --- deploy.c: helpers --- */
/* The wall clock, Unix ms. */
int64_t deploy_wall_ms(void);
/* A span of ms for people: "3m12s", "1h05m", "12s" (whole seconds, rounded
 * up with up, else down), into buf; returns buf. */
const char *deploy_span(int64_t ms, bool up, char *buf, size_t len);
#define DEPLOY_SPAN(ms, up) deploy_span((ms), (up), (char[32]){ 0 }, 32)
/* The configuration of service NAME (borrowed from the proxy's current
 * configuration), or NULL. */
const struct config_service *deployer_config(struct deployer *d, const char *name);
/* The managed service NAME; with create, a new one if there is none.
 * NULL: none (or out of memory). */
struct managed *managed_get(struct deployer *d, const char *name, bool create);
/* Replace ${PORT}, ${VERSION}, ${SERVICE}, ${RELEASE_DIR} and ${URL} in
 * text.  Returns a malloc'd string or NULL. */
char *deploy_substitute(const char *text, const char *port, const char *version, const char *service,
			const char *release_dir, const char *url);
/* `exec` in front of a simple command (see deploy.c).  Takes and returns a
 * malloc'd string (NULL stays NULL). */
char *deploy_exec_simple(char *command);
/* Tell the observer (deployer_observe) of event ev of KIND: ev is consumed. */
void deployer_emit(struct deployer *d, const char *kind, json_t *ev);

/* --- record.c: recording to the state, in order, on the state worker --- */
struct dbref *dbref_new(void);
struct dbref *dbref_get(struct dbref *r);
void dbref_put(struct dbref *r);
/* The test hook CUTOVER_TEST_CRASH_AT (see record.c).  On the state worker. */
void record_crash_point(struct deployer *d, bool after, enum state_deployment_state phase, const char *version);
/* The deployment's new phase (final: a terminal one, with detail as its reason). */
void record_phase(struct deployment *dep, enum state_deployment_state to, const char *detail, bool final);
/* The deployment's new phase and its service's routing (to the instances
 * of g), in one transaction: after a crash they never disagree. */
void record_route(struct deployment *dep, enum state_deployment_state to, const char *detail, struct group *g);
/* The deployment's result TO with its reason WHY (may be NULL), the routing
 * it left (routed_back: the version traffic went back to; NULL: unchanged)
 * and its audit row, in one transaction.  announce (owned; may be NULL) is
 * the result's event, emitted on the loop once the transaction is over. */
void record_result(struct deployment *dep, enum state_deployment_state to, const char *why,
		   struct group *routed_back, json_t *announce);
/* An audit row: action on service@version (version may be NULL). */
void record_audit(struct deployer *d, uid_t who, const char *action, const char *service, const char *version,
		  const char *result, const char *detail);
/* The service's routing (to the instances of g) and, if action is not
 * NULL, an audit row of an act without a deployment (a crash-looping live
 * version rolled back), in one transaction. */
void record_routing(struct deployer *d, struct group *g, uid_t who, const char *action, const char *audit_version,
		    const char *result, const char *detail);
void record_instance_state(struct deployer *d, struct dbref *ref, enum state_instance_state st);
/* A new row for a started instance (add), or new process facts after a restart. */
void record_instance(struct deployer *d, struct slot *s, bool add);

/* --- slots.c: instances and versions --- */
/* Start VERSION of m from release_dir, or, with adopt, take over the
 * process a previous daemon started (same pid and start time).  Returns
 * the slot (in no group yet) or NULL (a sentence in err). */
struct slot *slot_start(struct managed *m, const struct config_service *cs, const char *version,
			const char *release_dir, const struct state_instance *adopt, char *err, size_t errlen);
/* Stop the process (signal, grace, SIGKILL) and free the slot when reaped.
 * The slot leaves its group. */
void slot_stop(struct slot *s);
/* Stop a slot that had traffic until now, once its requests in flight are
 * done or after deploy.drain.  The slot leaves its group.  NULL is ignored. */
void slot_retire(struct slot *s);
/* Free a slot whose process is gone or forgotten (the daemon exits). */
void slot_free(struct slot *s);
/* Tell the observer of an instance change (see deployer_observe). */
void slot_emit(struct slot *s, const char *state, const char *detail);
/* The request counters of slot s (they outlive the slot's place in the
 * routing table), or NULL. */
struct metrics_upstream *slot_metrics(struct managed *m, struct slot *s);
/* Share of m's new requests that slot s gets now, in percent. */
int slot_traffic_percent(struct managed *m, struct slot *s);

/* A new, empty version group of m.  NULL: out of memory. */
struct group *group_new(struct managed *m, const char *version, const char *release_dir);
/* Add slot s to g.  Returns 0, or -ENOSPC (g is full). */
int group_add(struct group *g, struct slot *s);
/* Start instances of g's version until it has `want`.  Returns 0, or
 * -errno with a sentence in err (the instances started so far stay). */
int group_start(struct group *g, const struct config_service *cs, uint32_t want, char *err, size_t errlen);
/* Stop (group_stop) or retire (group_retire) every instance of g, and free
 * g.  NULL is ignored.  The caller drops its pointers to g first. */
void group_stop(struct group *g);
void group_retire(struct group *g);
/* Forget g and its instances (they keep running: deployer_free). */
void group_free(struct group *g);
/* Whether s takes requests: healthy once (or adopted), not stopping.
 * route_publish() routes exactly these. */
static inline bool slot_routed(const struct slot *s)
{
	return s->ready && !s->stopping;
}
/* Instances of g that take requests (slot_routed). */
size_t group_routed(const struct group *g);
/* Instances of g that are healthy now. */
size_t group_healthy(const struct group *g);
/* Whether every instance of g runs and none fails its health check
 * (strict: every one is known healthy). */
bool group_usable(const struct group *g, bool strict);
/* Whether an instance of g has crashed (and not yet been restarted). */
bool group_crashed(const struct group *g);
/* The addresses of g's instances, ", " between them, into out. */
char *group_addrs(const struct group *g, char *out, size_t len);
/* The sum of the counters of g's instances into *out. */
void group_counts(struct group *g, struct metrics_counts *out);
/* The same for route class NAME of g's service (zeros: nothing counted;
 * NULL: all its requests, as group_counts). */
void group_class_counts(struct group *g, const char *name, struct metrics_counts *out);
/* Publish m's versions at the proxy: live, the warm previous one and the
 * new one of the deployment in flight, each with its weight and its
 * instances that are ready.  One pointer store.  Returns 0 or -errno
 * (nothing changed). */
int route_publish(struct managed *m);
/* The rollback window of m's previous version is over: retire it. */
void prev_window_over(struct loop *loop, struct loop_timer *t);

/* --- engine.c: deployments --- */
/* Finish dep as result (PH_DONE, PH_ROLLED_BACK, PH_FAILED) with the
 * reason fmt (NULL: nothing to explain); records and audits it.  When the
 * plan had stopped the old version, it is started again (a rollback by
 * cutover). */
void dep_finish(struct deployment *dep, enum phase result, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* What a new deployment is asked to do (dep_create). */
struct dep_ask {
	const char *service, *version;
	const char *from;                  /* the version it replaces (NULL: the live one) */
	const char *why;                   /* the detail of its first event (NULL: where it comes from) */
	bool is_rollback;
	bool is_restart;                   /* the live version again, by hand (cutover restart) */
	uid_t who;                         /* DEPLOY_BY_DAEMON: cutover itself */
	const char *digest;                /* the release must have this digest (NULL: any) */
	const char *promoted_from;         /* a promotion: the environment proven in (NULL: none) */
	int64_t release_id;                /* part of this release run (0: none) */
};
/* A new deployment as ask says (borrowed): its id, or -errno with a
 * sentence in err. */
int64_t dep_create(struct deployer *d, const struct dep_ask *ask, char *err, size_t errlen);
/* A new deployment object as ask says, not started nor listed yet (the
 * caller lists it, or frees it with dep_free()).  NULL: out of memory. */
struct deployment *dep_new(struct deployer *d, const struct dep_ask *ask);
void dep_free(struct deployment *dep);
/* Give dep (new, or awaiting approval) an id and a place in the list of
 * deployments, unless it has them. */
void dep_list(struct deployment *dep);
/* Start dep (new, or awaiting approval): refused as a deploy of its
 * service is (busy, already there, unknown), else its plan, m->dep, the
 * begin job.  APPROVED (may be NULL) is the detail of an "approved" event
 * told just before it starts.  Returns 0, or -errno with a sentence in err
 * and dep untouched. */
int dep_start(struct deployment *dep, const char *approved, char *err, size_t errlen);
/* Refuse ask for the service's state (unknown, unmanaged, invalid names,
 * busy unless awaiting, already there): -errno with a sentence, or 0 with
 * *ret_m (created if new). */
int dep_refuse(struct deployer *d, const struct dep_ask *ask, bool awaiting, struct managed **ret_m, char *err,
	       size_t errlen);
/* The audit action of dep: "rollback", "promote" or "deploy". */
const char *dep_action(const struct deployment *dep);
/* The deployment ID this daemon holds (the last DEPLOYMENTS_KEPT), or NULL. */
struct deployment *dep_find(struct deployer *d, int64_t id);
/* The digest of g's release (its directory STORE/SERVICE/DIGEST), or "". */
const char *group_digest(const struct group *g);
/* "by alice" / "by uid 1001" / "by cutover" into out (control.c). */
void deploy_who_text(uid_t who, char *out, size_t len);

/* --- approval.c --- */
/* A deploy ask that awaits approval: recorded, told, expiring after
 * approval.timeout.  Its id, or -errno with a sentence in err. */
int64_t approval_request(struct deployer *d, const struct dep_ask *ask, char *err, size_t errlen);
/* At start (deployer_recover, SQLite used directly): the requests that
 * still await approval wait again, those past their time expire. */
void approval_recover(struct deployer *d);
/* What dep is: "deploy", "rollback" or "restart" (the version it replaces
 * again, e.g. none of its instances runs), as state_deployment_kind() says
 * of its row. */
const char *dep_kind(const struct deployment *dep);
/* Bring m's lineage up to date with dep, which just finished as TO (as
 * recorded: the lineage read at the next start agrees). */
void dep_lineage_apply(struct deployment *dep, enum state_deployment_state to);
/* Move traffic back to the warm previous version now (see engine.c). */
bool rollback_now(struct managed *m, const char *why);
/* Run dep's plan, the new version's release being in release_dir. */
void engine_run(struct deployment *dep, const char *release_dir);
/* The new version of dep, whose weights are held, must go: back to the
 * plan's safe state.  Returns whether traffic is back on the old version. */
bool engine_abort(struct deployment *dep, const char *why);
/* Go on with the next step of dep's plan (or finish it: done). */
void step_next(struct deployment *dep);
/* The step's new instances take traffic: its smoke test, or its weights. */
void step_ready(struct deployment *dep);

/* --- rolling.c --- */
/* With min_ready, wait until the step's new instances stayed healthy that
 * long, then step_ready: returns true (false: nothing to wait for). */
bool rolling_wait_ready(struct deployment *dep);
/* Whether s, just healthy, must not take traffic yet (min_ready). */
bool rolling_holds_ready(const struct deployment *dep, const struct slot *s);
/* Abort dep, a rolling deploy with new instances routed: the old version's
 * instances start again and take the traffic back once at least
 * plan.min_available of them are healthy.  Returns true. */
bool rolling_abort(struct deployment *dep, const char *why);
/* An instance of the old version became healthy: an abort may go on. */
void rolling_abort_check(struct deployment *dep);

/* --- watch.c: holding a step, the analysis --- */
/* A set of counts for cs's route classes (cs may be NULL: none).  NULL: out of memory. */
struct counts_set *counts_set_new(const struct config_service *cs);
/* The counts of g now, for out's classes. */
void counts_set_read(struct group *g, struct counts_set *out);
/* dep's snapshots (dep->watch).  Returns 0 or -ENOMEM. */
int watch_begin(struct deployment *dep, const struct config_service *cs);
void watch_free(struct watch *w);
/* The old version is about to lose traffic (a share, a switch, its
 * instances stop): its window just before is the baseline of the watch
 * after the switch.  Taken once, or again with refresh (a canary's switch,
 * its old version intact: its last minute rather than the one before the
 * first step). */
void watch_baseline(struct deployment *dep, bool refresh);
/* The analysis rules of cs. */
void watch_rules(const struct config_service *cs, struct analysis_rules *r);
/* Hold dep's step with g (the new version) judged; then step_next. */
void step_hold(struct deployment *dep, struct group *g);
/* Snapshot the live versions every BASELINE_EVERY_MS from now on. */
void watch_start_baselines(struct deployer *d);
/* Free m's snapshots. */
void ring_free(struct managed *m);
/* dep's step, its weights, pause, the next decision and the last tick's
 * analysis (figures per version, each check) as JSON. */
json_t *watch_json(struct deployment *dep);

/* Record an event of dep under the name of its phase (dep_event) or label,
 * and tell the observer. */
void dep_event(struct deployment *dep, const char *detail);
void dep_event_as(struct deployment *dep, const char *label, const char *detail);
/* What an instance's crash (why: the sentence) or health change means for
 * the deployment in flight and the live version.  Returns true when it
 * ended or moved a deployment (nothing more to say of it). */
bool engine_slot_crashed(struct slot *s, const char *why);
bool engine_slot_health(struct slot *s, enum health_state state, const char *reason);
/* A slot the deployment in flight waited for is gone (managed.awaiting). */
void engine_slot_gone(struct managed *m);

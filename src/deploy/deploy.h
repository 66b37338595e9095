/* deploy.h - the deploy engine: blue-green deploys and rollbacks of managed
 * services (design: docs/internals/deploy.md).
 *
 * Runs on the loop thread.  Processes come from the supervisor, health from
 * health checks, the switch is service_set_targets() on the proxy; every
 * phase transition is written to SQLite through the state worker, in order.
 */
#pragma once
#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>
#include "loop/worker.h"
#include "proxy/proxy-t.h"
#include "state/state.h"
#include "supervisor/supervisor.h"

struct deployer;

/* `who` of a deploy or rollback: the uid of the user who asked (from the
 * admin socket's peer credentials), or this for cutover itself. */
#define DEPLOY_BY_DAEMON ((uid_t)-1)

/* Returns 0 or -errno (*ret untouched).  st is used only on the worker. */
int deployer_new(struct proxy *p, struct supervisor *sup, struct worker *w, struct state *st,
		 struct deployer **ret);
/* At start, before the loop runs (SQLite is used directly: the worker is
 * still idle), per managed service: traffic goes back to the last
 * known-good version (the routed one; or, if a deploy had switched but not
 * finished its watch window, the version it replaced), re-adopting its
 * instance (same pid and start time); the previous version stays warm if
 * its rollback window is not over; every other live instance is stopped; a
 * deployment in flight is aborted with the reason recorded; a version to
 * serve whose instance is gone is started again.  Returns 0 or -ENOMEM. */
int deployer_recover(struct deployer *d);
/* Clean shutdown (SIGTERM): stop every instance (signal, grace, SIGKILL)
 * and run the loop until they are reaped.  After a crash or kill -9 this
 * never runs: the instances keep serving and the next daemon adopts them. */
void deployer_stop_all(struct deployer *d);
/* Stop following instances (still running ones keep running) and free. */
void deployer_free(struct deployer *d);
/* How many managed services have no version serving but one starting (a
 * restart whose instances did not survive; a first deploy); their names,
 * comma-separated, into names[len] (may be NULL). */
size_t deployer_starting(struct deployer *d, char *names, size_t len);
/* The first deployment in flight, as "deployment 12 (shop to 1.2.0)" into
 * what[len]: returns true, or false when none is. */
bool deployer_busy(struct deployer *d, char *what, size_t len);

/* What happens, as it happens, for a live view (the admin API's event
 * stream): kind "deployment" (a phase of a deploy or rollback: id, service,
 * version, from_version, kind, phase, at_ms, elapsed_ms, detail, and
 * result + reason once it ended) or "instance" (service, version, port,
 * pid, state: started / healthy / unhealthy / crashed / restarted /
 * stopped, detail).  The event is borrowed: fn takes its own reference to
 * keep it.  One observer; fn NULL removes it.  Called on the loop thread. */
typedef void (*deployer_event_fn)(void *data, const char *kind, json_t *event);
void deployer_observe(struct deployer *d, deployer_event_fn fn, void *data);

/* What a deploy asks (deployer_deploy). */
struct deploy_request {
	const char *service, *version;
	const char *digest;           /* the release must have this digest (64 hex digits); NULL: whatever
				       * the store holds under version */
	const char *promoted_from;    /* a promotion (deployer_promote): the environment proven in */
	const char *why;              /* the detail of its first event; NULL: the version it replaces */
	uid_t who;
	int64_t release_id;           /* > 0: a deploy of this release run, recorded with it; approval.required
				       * does not hold it (the release was approved as a whole) */
};
/* Start a deploy of req->service to req->version, or, when the environment
 * requires approval (approval.required), record it as awaiting approval
 * (phase "awaiting-approval": deployer_approve starts it).  A digest that
 * does not match the store's release fails the deployment, saying so.
 * Returns the deployment id (> 0), or -errno with a sentence in err (and
 * an audit row): -ENOENT unknown or unmanaged service, -EINVAL an invalid
 * version or digest, -EBUSY a deploy of it is in flight, -EALREADY it
 * already runs VERSION. */
int64_t deployer_deploy(struct deployer *d, const struct deploy_request *req, char *err, size_t errlen);
/* A person's decision on deployment ID, awaiting approval (approval.c):
 * approve starts it as a deploy does; with approval.distinct, WHO must not
 * be who asked (-EPERM).  Reject ends it "rejected" with REASON (may be
 * NULL).  Both audited, refusals too.  Returns ID, or -errno with a sentence
 * in err: -ENOENT no such deployment, -EALREADY it does not await approval,
 * -EPERM approval.distinct, or what starting it was refused for (-EBUSY a
 * deploy in flight, -EALREADY the version already runs: it still awaits). */
int64_t deployer_approve(struct deployer *d, int64_t id, uid_t who, char *err, size_t errlen);
int64_t deployer_reject(struct deployer *d, int64_t id, uid_t who, const char *reason, char *err, size_t errlen);

/* Promotions (promotion.c; docs/internals/promotion.md).  At start, before
 * the loop runs: load this state's proof key (STATE_DIR/proof.key, created
 * if missing); a key others can read is refused (logged; proofs are then
 * refused, saying why). */
void deployer_load_signer(struct deployer *d, const char *state_dir);
/* A signed proof of what runs here of SERVICE (proof.h: its version and
 * digest, whether every instance is healthy, since when it has been live
 * after its analysis, 0 if not yet), as JSON into *ret.  Returns 0, or
 * -errno with a sentence in err: -ENOENT unknown or unmanaged service,
 * -ESRCH nothing of it runs, -EACCES no proof key. */
int deployer_proof(struct deployer *d, const char *service, json_t **ret, char *err, size_t errlen);
/* What a promotion asks (deployer_promote). */
struct promote_request {
	const char *service;
	const char *from;             /* the environment the proof must come from */
	const json_t *proof;          /* as deployer_proof gave it there (borrowed) */
	const char *local_key;        /* the source state's public key, read on this machine by the CLI
				       * (trusted as promotion.trust is); NULL: none */
	uid_t who;
};
/* Deploy exactly the digest req->proof proves in req->from: the signature
 * verifies, its key is trusted, it is of this service, from that
 * environment (and promotion.from), healthy, through its analysis, and
 * live there for at least promotion.soak; then deployer_deploy() by
 * digest (approval as for any deploy).  Returns the deployment id, or
 * -errno with a sentence in err (and an audit row): -EINVAL not a proof or
 * not the one asked for, -EBADMSG tampered, -EPERM an untrusted key or
 * environment, -EAGAIN not proven enough (unhealthy, not through its
 * analysis, soak not reached: the sentence says how long is left). */
int64_t deployer_promote(struct deployer *d, const struct promote_request *req, char *err, size_t errlen);
/* Back to the previous version: instant while it is warm, else a deploy of
 * it (start, health, switch; no watch).  Same returns as deployer_deploy,
 * and -ESRCH when there is no previous version.  Refusals are audited too. */
int64_t deployer_rollback(struct deployer *d, const char *service, uid_t who, char *err, size_t errlen);
/* Restart SERVICE: new instances of its live version replace the running
 * ones (with the secrets as they are now) without a failed request: the
 * service's plan when it is rolling, else blue-green (a canary or a
 * recreate restart would be slow or leave a gap); analysed like a deploy,
 * so new instances that misbehave are rolled back to the old ones.  Same
 * returns as deployer_deploy, and -ESRCH when no version runs. */
int64_t deployer_restart(struct deployer *d, const char *service, uid_t who, char *err, size_t errlen);
/* A person's hand on the deployment in flight of SERVICE (control.c):
 * pause it at its step (its analysis goes on: a failure still aborts it),
 * resume it, promote it (the remaining steps skipped) or abort it (all
 * traffic back on the stable version now, the new instances stopped).
 * Audited with who asked.  Returns the deployment's id, or -errno with a
 * sentence in err: -ENOENT unknown service, -ESRCH none in flight,
 * -EALREADY nothing to do (already paused, not paused, promoted, being
 * aborted), -EINVAL a rollback (only abort applies). */
enum deploy_control { DEPLOY_PAUSE, DEPLOY_RESUME, DEPLOY_PROMOTE, DEPLOY_ABORT };
int64_t deployer_control(struct deployer *d, const char *service, enum deploy_control what, uid_t who, char *err,
			 size_t errlen);
/* "pause", "resume", "promote", "abort". */
const char *deploy_control_name(enum deploy_control what);
/* The deployment as JSON (phases with times, result, reason, figures), or NULL. */
json_t *deployer_deployment_json(struct deployer *d, int64_t id);
/* The deploy series of /metrics (step, weights, pause, analysis verdicts
 * per service) in the Prometheus text format, HELP and TYPE lines
 * included.  Returns a malloc'd string (its length in *len) or NULL. */
char *deployer_metrics(struct deployer *d, size_t *len);
/* What runs of SERVICE now (for the release runner): the live version
 * ("" none), the previous one kept warm ("" none), the deployment in
 * flight (0: none), and whether every live instance is healthy. */
struct deployer_versions {
	char live[STATE_VERSION_MAX + 1], previous[STATE_VERSION_MAX + 1];
	int64_t in_flight;
	bool healthy;
};
/* Returns 0, or -ENOENT for a service the deployer does not manage. */
int deployer_versions(struct deployer *d, const char *service, struct deployer_versions *ret);
/* Managed services: versions live / previous / in flight, instances, health. */
json_t *deployer_status_json(struct deployer *d);

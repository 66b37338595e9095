/* release.h - multi-service releases (docs/internals/releases.md).
 *
 * file.c reads a release file; plan.c checks it against the configuration
 * and the release store and orders it in dependency groups (the CLI does
 * this for `release plan` and before `release run`, with nothing changed);
 * run.c is the daemon's runner: gates, groups deployed in parallel with a
 * concurrency limit, command steps, and on a failure every change undone
 * in reverse order; its record is a JSON report in SQLite.
 */
#pragma once
#include <jansson.h>
#include <sys/types.h>
#include "config/config-t.h"
#include "release/release-t.h"
#include "state/state.h"

/* ---- the release file (file.c) ------------------------------------------- */

/* Read release file PATH whole.  Returns 0 with *ret (free with
 * release_file_free), or -errno with "FILE:LINE:COLUMN: FIELD: reason" in
 * err.  Checks the shape only (names, semver, digests, commands,
 * thresholds); the plan checks the rest. */
int release_file_load(const char *path, struct release_file **ret, char *err, size_t errlen);
struct release_file *release_file_free(struct release_file *f);

/* ---- the plan (plan.c) ----------------------------------------------------- */

/* What the plan needs to know of the release store and of what runs: the
 * digest the store holds for SERVICE@VERSION (0, -ENOENT: not in the
 * store) and the version live now (0, -ENOENT: none). */
struct release_lookup {
	void *data;
	int (*digest)(void *data, const char *service, const char *version, char digest[65]);
	int (*live)(void *data, const char *service, char version[64]);
};
/* Check f against cfg and lk, before anything changes: every service is a
 * managed service of cfg; every artifact is in the store with its digest
 * (the expected one when the file gives it); every dependency is known (an
 * item, or a configured service not in the release, which must be live);
 * no cycle (refused with its path, "order -> payment -> order"); every
 * gate's `after` names an item.  Dependencies: the item's depends_on and
 * services.NAME.depends_on of cfg.  Takes f (freed on failure too).
 * Returns 0 with *ret, or -errno with every problem found, one per line,
 * in err ("FILE:LINE: ..."). */
int release_plan_make(struct release_file *f, const struct config *cfg, const struct release_lookup *lk,
		      struct release_plan **ret, char *err, size_t errlen);
struct release_plan *release_plan_free(struct release_plan *p);
/* The plan as JSON: {name, file, dir, concurrency, groups: [[{kind, name,
 * version, from_version, digest, critical, depends_on, run, undo,
 * point_of_no_return, timeout_ms}]], gates: [{...}]} - what `release plan
 * --json` prints and what `release run` sends to the daemon. */
json_t *release_plan_json(const struct release_plan *p);
/* Rebuild a plan from that JSON (the daemon's side of POST /v1/releases):
 * the shape is checked again, never trusted.  Returns 0 or -EINVAL with a
 * sentence in err. */
int release_plan_from_json(const json_t *j, struct release_plan **ret, char *err, size_t errlen);
/* A gate as the plan's JSON holds it. */
json_t *release_gate_json(const struct release_gate *g);
/* The dependency graph in Graphviz dot (`release plan --dot`), malloc'd. */
char *release_plan_dot(const struct release_plan *p);
/* The plan for a terminal (`release plan`), malloc'd. */
char *release_plan_text(const struct release_plan *p);

/* ---- the runner (run.c; the daemon's) --------------------------------------- */

struct release_runner;
struct proxy;
struct supervisor;
struct deployer;
struct worker;

/* kind "release": {id, name, env, phase (started, step, succeeded,
 * degraded, rolling-back, rolled-back, failed, awaiting-approval,
 * rejected, expired), detail, at_ms, and for a step service, version,
 * from_version, step}.  Borrowed: fn takes its own reference to keep it. */
typedef void (*release_event_fn)(void *data, json_t *event);

/* Returns 0 or -errno.  st is used on the worker (and by recover). */
int release_runner_new(struct proxy *p, struct supervisor *sup, struct deployer *d, struct worker *w,
		       struct state *st, struct release_runner **ret);
/* At start, after deployer_recover() and before the loop runs (SQLite
 * directly): the next id; every run not finished is taken back: one
 * awaiting approval waits again, a running one is rolled back (the rule
 * of docs/internals/releases.md) once the loop runs.  Returns 0 or -errno. */
int release_runner_recover(struct release_runner *rr);
void release_runner_observe(struct release_runner *rr, release_event_fn fn, void *data);
/* Every "deployment" event of the deployer (the daemon forwards them). */
void release_runner_deployment_event(struct release_runner *rr, const json_t *event);
/* Start a run of PLAN (the JSON of release_plan_json, checked again) asked
 * by WHO; awaiting approval when the configuration requires it.  Returns
 * the run's id, or -errno with a sentence in err: -EINVAL a bad plan,
 * -EBUSY a service of it is in another active run or deploying. */
int64_t release_runner_start(struct release_runner *rr, const json_t *plan, uid_t who, char *err, size_t errlen);
/* Abort run ID (roll it back; one awaiting approval is withdrawn),
 * approve it, or reject it.  Audited.  Returns ID or -errno with a
 * sentence in err: -ENOENT not an active run, -EALREADY nothing to do,
 * -EPERM approval.distinct. */
int64_t release_runner_abort(struct release_runner *rr, int64_t id, uid_t who, const char *reason, char *err,
			     size_t errlen);
int64_t release_runner_approve(struct release_runner *rr, int64_t id, uid_t who, char *err, size_t errlen);
int64_t release_runner_reject(struct release_runner *rr, int64_t id, uid_t who, const char *reason, char *err,
			      size_t errlen);
/* An active run as {id, name, env, state, started_by, started_at,
 * finished_at, report}, or NULL when ID is not active (finished: read
 * the state). */
json_t *release_runner_get(struct release_runner *rr, int64_t id);
/* A run in flight (not one awaiting approval), as "release 3 (spring)"
 * into what[len]: true, or false when none is. */
bool release_runner_busy(struct release_runner *rr, char *what, size_t len);
/* The active runs, in short, for status. */
json_t *release_runner_status(struct release_runner *rr);
/* Stop the processes of active runs (shutdown) and free. */
void release_runner_free(struct release_runner *rr);

/* state.h - cutover's durable state: SQLite in WAL mode under the state dir.
 *
 * Every function here is synchronous and may block on disk (fsync) or on
 * another process's write lock (up to the 5 s busy timeout).  The daemon
 * therefore calls it only from its dedicated state thread, never from the
 * event loop; the CLI calls it directly.  A struct state is one SQLite
 * connection and must be used by one thread at a time.
 *
 * Results: rows the daemon acts on (releases, instances, deployments,
 * routing) come back as the plain structs of state-t.h; rows that are only
 * shown to people (audit, history) come back as jansson arrays of objects,
 * ready for `--json` or for a table.
 *
 * Errors: a negative errno.  -ENOENT: no such row; -EEXIST: a unique key is
 * taken; -EINVAL: a bad argument (unknown state name, a transition out of a
 * terminal state, a string longer than its column allows); -EBUSY: another
 * writer held the lock beyond the busy timeout; -EIO: anything else SQLite
 * reported.  state_errmsg() then says what SQLite said.  Output parameters
 * are untouched on failure.  Nothing here logs.
 *
 * Schema, durability settings and crash recovery: docs/internals/state.md.
 */
#pragma once
#include <jansson.h>
#include "state/state-t.h"

/* Open (creating if needed) DIR/state.db; DIR is created with mode 0700 if
 * missing.  The connection holds DIR/state.lock shared for its life (a
 * restore, which takes it exclusive, is refused meanwhile; while one runs,
 * this waits for it up to 30 s, then -EBUSY).  Sets WAL, synchronous=FULL,
 * foreign keys and a 5 s busy timeout, then applies the schema migrations
 * this build knows, each in its own transaction.  A database from a newer
 * schema is refused.  On success *ret
 * owns the connection (close with state_close()).  On failure returns
 * -errno, leaves *ret untouched and writes a sentence naming the file and
 * the cause to err (if errlen > 0). */
int state_open(const char *dir, struct state **ret, char *err, size_t errlen);
/* The same for a database that must exist already: nothing is created (for
 * the CLI's read-only verbs, which must not leave an empty state behind a
 * wrong path).  -ENOENT (err names the missing DIR/state.db) if there is
 * none; otherwise as state_open() (an older schema is still migrated). */
int state_open_existing(const char *dir, struct state **ret, char *err, size_t errlen);
/* Close the connection (NULL is fine).  Returns NULL. */
struct state *state_close(struct state *st);
/* SQLite's message for the last failure on this connection. */
const char *state_errmsg(const struct state *st);
/* PRAGMA user_version of the open database. */
int state_schema_version(struct state *st);
/* Unix time in milliseconds (wall clock), as stored in every time column. */
int64_t state_now_ms(void);
/* Render ms (Unix ms) as ISO-8601 UTC "2026-11-22T04:48:54.123Z" into out
 * (at least 32 bytes).  0 renders as "-". */
void state_format_time(int64_t ms, char *out, size_t outlen);

/* Names <-> enums.  The names are the ones stored in the database and shown
 * to users: "starting", "health-checking", "rolled-back", ... */
const char *state_instance_state_name(enum state_instance_state s);
int state_instance_state_parse(const char *name);   /* enum, or -EINVAL */
const char *state_deployment_state_name(enum state_deployment_state s);
int state_deployment_state_parse(const char *name); /* enum, or -EINVAL */
bool state_deployment_state_terminal(enum state_deployment_state s);

/* Group several of the calls below into one transaction: each of them is
 * then a savepoint inside it, and nothing is durable before
 * state_tx_commit().  On any failure, call state_tx_rollback(). */
int state_tx_begin(struct state *st);
int state_tx_commit(struct state *st);
void state_tx_rollback(struct state *st);

/* ---- services ----------------------------------------------------------- */

/* Record service NAME if it is not known yet.  Returns 0 (also when it was
 * already there). */
int state_service_ensure(struct state *st, const char *name);

/* 1 if service NAME was ever recorded (a release added, a deployment or an
 * instance), 0 if not, or -errno.  Reads only. */
int state_service_known(struct state *st, const char *name);

/* ---- releases ----------------------------------------------------------- */

/* Insert a release (service, version, digest, path, size_bytes from *rel;
 * created_at = now unless rel->created_at is set), recording the service
 * too.  On success sets *ret_id (may be NULL).  -EEXIST if the service
 * already has this version. */
int state_release_add(struct state *st, const struct state_release *rel, int64_t *ret_id);
/* Fill *ret with release SERVICE@VERSION; release it with
 * state_release_clear().  -ENOENT if there is none. */
int state_release_get(struct state *st, const char *service, const char *version,
		      struct state_release *ret);
/* All releases of SERVICE, oldest first (created_at, then id).  On success
 * *ret_items (free with state_release_array_free) and *ret_n are set; an
 * unknown service gives 0 rows. */
int state_release_list(struct state *st, const char *service, struct state_release **ret_items,
		       size_t *ret_n);
/* Delete release row ID.  Returns the number of releases still recorded with
 * the same path (other versions with the same digest), or -ENOENT. */
int state_release_delete(struct state *st, int64_t id);
void state_release_clear(struct state_release *rel);
void state_release_array_free(struct state_release *items, size_t n);

/* ---- instances ---------------------------------------------------------- */

/* Insert *inst (its id is ignored; started_at = now unless set; a
 * release_id of 0 is the release row of inst->service@inst->version, NULL
 * if there is none); sets *ret_id. */
int state_instance_add(struct state *st, const struct state_instance *inst, int64_t *ret_id);
/* Write every mutable field of *inst (release_id, pid, pgid, port,
 * start_time_ticks, started_at, state, restarts, log_path) to row inst->id.
 * -ENOENT if there is no such row. */
int state_instance_update(struct state *st, const struct state_instance *inst);
/* Set only the state of instance ID. */
int state_instance_set_state(struct state *st, int64_t id, enum state_instance_state s);
int state_instance_get(struct state *st, int64_t id, struct state_instance *ret);
/* Instances of SERVICE (NULL: all services) whose state is not "stopped",
 * by id: what the daemon must re-adopt or restart after a restart. */
int state_instance_list_live(struct state *st, const char *service, struct state_instance **ret_items,
			     size_t *ret_n);
void state_instance_clear(struct state_instance *inst);
void state_instance_array_free(struct state_instance *items, size_t n);
/* Read the start time (field 22, clock ticks since boot) of process PID
 * from /proc/PID/stat.  -ENOENT if there is no such process, -ESRCH if it
 * has exited and waits to be reaped (a zombie). */
int state_process_start_time(int pid, uint64_t *ret_ticks);
/* True if the process recorded in *inst still runs: same pid and same start
 * time (so a recycled pid is not mistaken for our instance). */
bool state_instance_process_alive(const struct state_instance *inst);

/* ---- deployments -------------------------------------------------------- */

/* Start a deployment of SERVICE from FROM_VERSION (NULL or "": nothing was
 * running) to TO_VERSION with STRATEGY, in state "starting", and record its
 * first event (from none to "starting", with DETAIL, may be NULL).  Sets
 * *ret_id. */
int state_deployment_begin(struct state *st, const char *service, const char *from_version,
			   const char *to_version, const char *strategy, const char *detail,
			   int64_t *ret_id);
/* The same with the id chosen by the caller (WANT_ID > 0; 0: the next
 * one): the daemon numbers deployments itself, before the row is written,
 * and `cutover history` shows the same numbers.  -EEXIST if it is taken. */
int state_deployment_begin_as(struct state *st, int64_t want_id, const char *service, const char *from_version,
			      const char *to_version, const char *strategy, const char *detail, int64_t *ret_id);
/* The same with every column of a new row: N->state is starting, or
 * awaiting-approval (a request that starts only once approved:
 * state_deployment_start()); a digest must be 64 lower-case hex digits.
 * -EINVAL for anything else. */
int state_deployment_insert(struct state *st, const struct state_deployment_new *n, int64_t *ret_id);
/* Deployment ID, awaiting approval, was approved: it starts now, from
 * FROM_VERSION (the version live now) with STRATEGY and the release DIGEST
 * (NULL: keep the one recorded), recorded as the event to "starting" with
 * DETAIL, atomically.  -EINVAL if it is not awaiting approval, -ENOENT if
 * there is no such deployment. */
int state_deployment_start(struct state *st, int64_t id, const char *from_version, const char *strategy,
			   const char *digest, const char *detail);
/* The newest deployment of SERVICE that finished done (the version it
 * deployed or went back to was then known-good), into *ret (clear it with
 * state_deployment_clear()).  -ENOENT if there is none. */
int state_deployment_last_done(struct state *st, const char *service, struct state_deployment *ret);
/* One more than the highest deployment id recorded (1 for none). */
int state_deployment_next_id(struct state *st, int64_t *ret);
/* Move deployment ID to the non-terminal state TO and record the event
 * (with DETAIL, may be NULL), atomically.  The same state again is allowed
 * (e.g. one event per traffic step).  -EINVAL if TO is terminal (use
 * state_deployment_finish) or if the deployment has already finished;
 * -ENOENT if there is no such deployment. */
int state_deployment_transition(struct state *st, int64_t id, enum state_deployment_state to,
				const char *detail);
/* Finish deployment ID in the terminal state TO (done, rolled-back, failed,
 * aborted) with REASON (may be NULL for done): sets finished_at and records
 * the event, atomically.  -EINVAL if TO is not terminal or the deployment
 * has already finished. */
int state_deployment_finish(struct state *st, int64_t id, enum state_deployment_state to,
			    const char *reason);
/* Move deployment ID to state TO (terminal or not; TEXT is the event's
 * detail, and the reason when TO is terminal) and record that its service's
 * traffic now goes to VERSION on instances IDS, in one transaction: after a
 * crash, the routing row and the deployment's phase never disagree.  Use it
 * for the switch (to "switched") and for a rollback (to "rolled-back", with
 * the old version).  Errors as state_deployment_transition(). */
int state_deployment_route(struct state *st, int64_t id, enum state_deployment_state to, const char *text,
			   const char *version, const int64_t *ids, size_t nids);
int state_deployment_get(struct state *st, int64_t id, struct state_deployment *ret);
/* Deployments of SERVICE (NULL: all), newest first, at most LIMIT (0: no
 * limit). */
int state_deployment_list(struct state *st, const char *service, size_t limit,
			  struct state_deployment **ret_items, size_t *ret_n);
/* Deployments not in a terminal state (what a restarted daemon must resume
 * or abort), oldest first; SERVICE NULL for all. */
int state_deployment_list_in_flight(struct state *st, const char *service,
				    struct state_deployment **ret_items, size_t *ret_n);
/* Events of deployment ID in the order they happened. */
int state_deployment_events(struct state *st, int64_t id, struct state_deployment_event **ret_items,
			    size_t *ret_n);
void state_deployment_clear(struct state_deployment *d);
void state_deployment_array_free(struct state_deployment *items, size_t n);
void state_deployment_event_array_free(struct state_deployment_event *items, size_t n);

/* What a deployment row is, for people: "rollback" (its strategy is
 * "rollback"), "restart" (from and to the same version: started again, e.g.
 * by the daemon after none of its instances survived a restart) or
 * "deploy". */
const char *state_deployment_kind(const struct state_deployment *d);
/* The state S of a row recorded with STRATEGY as it is read: a rollback an
 * older cutover recorded as 'rolled-back' had succeeded, and reads as
 * 'done' (the name it is recorded with now).  Every row read here comes
 * through it. */
enum state_deployment_state state_deployment_state_as_read(const char *strategy, enum state_deployment_state s);

/* ---- lineage: what `cutover rollback` goes back to ---------------------- */

/* Apply one finished deployment D (deployments are applied in the order they
 * were recorded) to L: a deploy (or restart) `done` puts its to_version on
 * top (unless it is there already); a rollback `done` drops the versions
 * above the last time its to_version was on top (or puts it on top if it was
 * forgotten); anything else (failed, aborted, rolled back, unfinished)
 * changes nothing: it never served as known-good.  Pure. */
void state_lineage_apply(struct state_lineage *l, const struct state_deployment *d);
/* What `cutover rollback` goes back to from LIVE (the version serving; NULL:
 * none): the newest version below the last time LIVE was on top that is not
 * LIVE itself (LIVE not in L: the version on top).  NULL: there is none.
 * Borrowed from L.  Pure. */
const char *state_lineage_rollback_target(const struct state_lineage *l, const char *live);
/* Why SERVICE can or cannot roll back from LIVE, as a sentence into out
 * ("shop has no previous version to roll back to: 1.0.0 is the first
 * version it ran; ...").  Pure. */
void state_lineage_explain(const struct state_lineage *l, const char *service, const char *live, char *out,
			   size_t len);
/* The lineage of SERVICE from its deployments recorded so far, into *ret
 * (untouched on failure).  Reads only. */
int state_lineage_read(struct state *st, const char *service, struct state_lineage *ret);

/* For `cutover history`: a new JSON array (caller owns it) of the
 * deployments F selects (NULL: all), newest first, each an object {id,
 * service, from_version (null if none), to_version, kind
 * (state_deployment_kind), strategy, state, reason, started_at,
 * finished_at (Unix ms or null), duration_ms, digest (the release's, or
 * null), promoted_from (null but for a promotion), release_id (the release
 * run it was part of, or null), env (the environment of the daemon that
 * made it; else its release run's; or null), expires_at (only while
 * awaiting approval), events: [{at, from_state, to_state, detail}]}.
 * F->env keeps the deployments made in that environment. */
int state_history(struct state *st, const struct state_log_filter *f, json_t **ret);

/* ---- audit -------------------------------------------------------------- */

/* Append one audit row (at = now).  args is serialized compactly; the
 * caller must never put secrets in it.  Sets *ret_id (may be NULL). */
int state_audit_add(struct state *st, const struct state_audit_entry *e, int64_t *ret_id);
/* The actor of an audit row for user UID: "cutover (automatic)" when
 * AUTOMATIC (the daemon acting by itself), else the login name, else
 * "uid N".  Looks the name up through NSS (getpwuid_r), which may block:
 * call it off the event loop, or only for a person's rare decision. */
void state_actor_name(unsigned uid, bool automatic, char *out, size_t len);
/* A new JSON array (caller owns it), newest first, of the audit rows F
 * selects (NULL: all), each {id, at, actor, actor_uid, action, target, args
 * (JSON value or null), result, detail, env (null: none), release_id (null:
 * none)}. */
int state_audit_list(struct state *st, const struct state_log_filter *f, json_t **ret);

/* ---- routing ------------------------------------------------------------ */

/* Record that SERVICE's traffic now goes to VERSION on instances IDS (the
 * last known-good routing, restored after a daemon restart). */
int state_routing_set(struct state *st, const char *service, const char *version,
		      const int64_t *ids, size_t nids);
/* -ENOENT if SERVICE has no routing recorded.  Clear with
 * state_routing_clear(). */
int state_routing_get(struct state *st, const char *service, struct state_routing *ret);
/* Every service's routing, by service name. */
int state_routing_list(struct state *st, struct state_routing **ret_items, size_t *ret_n);
void state_routing_clear(struct state_routing *r);
void state_routing_array_free(struct state_routing *items, size_t n);

/* ---- release runs (releases.c) ------------------------------------------ */

/* Names <-> enums: "awaiting-approval", "running", "rolled-back", ... */
const char *state_release_run_state_name(enum state_release_run_state s);
int state_release_run_state_parse(const char *name);        /* enum, or -EINVAL */
bool state_release_run_state_terminal(enum state_release_run_state s);
/* Insert a run (its report a JSON text).  Sets *ret_id (may be NULL).
 * -EEXIST if want_id is taken, -EINVAL a missing name, user or report. */
int state_release_run_begin(struct state *st, const struct state_release_run *run, int64_t *ret_id);
/* Its state, finished_at (0: not finished) and whole report.  -ENOENT. */
int state_release_run_update(struct state *st, int64_t id, enum state_release_run_state s, int64_t finished_at,
			     const char *report);
/* Run ID as {id, name, env, state, started_by, started_uid, started_at,
 * finished_at, report}.  -ENOENT if there is none. */
int state_release_run_get(struct state *st, int64_t id, json_t **ret);
/* Runs, newest first, as above (report only with f->with_report).  f may be NULL. */
struct state_release_run_filter {
	const char *env;              /* NULL: every environment */
	int64_t since_ms, until_ms;   /* started in [since, until); 0: open */
	bool in_flight;               /* only those not finished */
	bool with_report;
	size_t limit;                 /* 0: all */
};
int state_release_run_list(struct state *st, const struct state_release_run_filter *f, json_t **ret);
/* The id the next run would get (max + 1). */
int state_release_run_next_id(struct state *st, int64_t *ret);

/* ---- traffic per service and minute (traffic.c) -------------------------- */

/* Add ROWS[0..n) to the minutes stored (a minute already stored for the
 * same service is added to: two daemons, one after the other, counted
 * parts of it) and delete every minute before KEEP_FROM (Unix minute; 0:
 * delete nothing), in one transaction.  -EINVAL for a row without a
 * service or with more failed than requests (nothing written). */
int state_traffic_add(struct state *st, const struct state_traffic_minute *rows, size_t n, int64_t keep_from);
/* The sums of SERVICE's minutes in [FROM, TO] (Unix minutes) into
 * *ret_requests and *ret_failed (0 and 0 when none is stored).  Reads
 * only. */
int state_traffic_sum(struct state *st, const char *service, int64_t from, int64_t to, uint64_t *ret_requests,
		      uint64_t *ret_failed);

/* ---- maintenance (maintenance.c) ---------------------------------------- */

/* Record that M->service is in maintenance (insert, or replace the row
 * with the same service).  -EINVAL: a bad name, a page over
 * STATE_MAINTENANCE_PAGE_MAX bytes, retry_after outside 1..86400. */
int state_maintenance_set(struct state *st, const struct state_maintenance *m);
/* SERVICE is out of maintenance: its row goes.  -ENOENT if it had none. */
int state_maintenance_delete(struct state *st, const char *service);
/* Every service in maintenance, by name.  Free with
 * state_maintenance_array_free(). */
int state_maintenance_list(struct state *st, struct state_maintenance **ret_items, size_t *ret_n);
void state_maintenance_clear(struct state_maintenance *m);
void state_maintenance_array_free(struct state_maintenance *items, size_t n);

/* ---- backup, restore and checks (backup.c, check.c) --------------------- */

/* An online, consistent copy of the state in DIR (SQLite's backup API, in
 * one read transaction: the daemon writes on meanwhile) into FILE: written
 * to a temporary file beside FILE, checked (integrity_check), fsynced, then
 * renamed into place, so FILE is never half-written.  FILE is one
 * self-contained SQLite database (rollback journal, no -wal beside it).
 * Without OVERWRITE an existing FILE is refused (-EEXIST, also if it
 * appears meanwhile).  *ret describes what was saved.  Returns 0 or -errno
 * with a sentence in err; nothing is left behind on failure. */
int state_backup(const char *dir, const char *file, bool overwrite, struct state_file_info *ret, char *err,
		 size_t errlen);

/* Whether FILE can be restored: -EINVAL if it is not a SQLite database,
 * or one without cutover's tables; -EPROTO if its schema is newer than
 * this build knows (an older one is accepted: it is migrated when it is
 * next opened); -EIO if integrity_check or foreign_key_check find a fault.
 * *ret (may be NULL) describes it.  Reads only. */
int state_file_inspect(const char *file, struct state_file_info *ret, char *err, size_t errlen);

/* Put FILE back as DIR/state.db, while no process has the state open
 * (-EBUSY otherwise: every connection holds DIR/state.lock shared, the
 * restore takes it exclusive and keeps it to the end).  FILE is copied
 * beside the database, inspected as state_file_inspect() does, an audit
 * row (action "state-restore", by ACTOR with uid ACTOR_UID, in env ENV)
 * added to the copy, and the copy renamed over state.db; the previous
 * state.db (and its -wal, -shm) are kept as state.db.before-restore-STAMP
 * (STAMP: UTC, e.g. 20261122T044854Z), whose path goes to before (may be
 * NULL; "" when there was none).  Returns 0 or -errno with a sentence in
 * err; the state directory is as it was on failure. */
struct state_restore_request {
	const char *dir;
	const char *file;
	const char *actor;
	unsigned actor_uid;
	const char *env;              /* NULL: none */
};
int state_restore(const struct state_restore_request *req, struct state_file_info *ret, char *before,
		  size_t beforelen, char *err, size_t errlen);
/* Carry the present of OLD_DB (the state a restore replaces) into the open
 * copy st: the releases it lacks, the instances of OLD_DB whose processes
 * still run (same pid and start time), and each service's routing whose
 * instances still run (ids mapped to the copy's), in one transaction
 * (state/present.c).  A missing
 * OLD_DB carries nothing.  Returns 0 with *ret set, or -EIO with err (the
 * copy unchanged). */
int state_carry_present(struct state *st, const char *old_db, struct state_present *ret, char *err, size_t errlen);

/* Open DIR/state.db to look at it without changing it (no migration, no
 * journal mode change; writes refused): for `cutover state check` beside a
 * running daemon.  -ENOENT if there is none. */
int state_open_check(const char *dir, struct state **ret, char *err, size_t errlen);

/* Run SQLite's checks (integrity_check, foreign_key_check) and cutover's
 * own invariants on ST: a new JSON array (caller owns it) of
 * {"check": NAME, "ok": bool, "detail": TEXT, "problems": [TEXT, ...]}
 * (problems: at most 20, "count" says how many there were), in a fixed
 * order.  A check that cannot run (a table missing, the file unreadable)
 * is not ok and says why.  Returns 0, or -ENOMEM. */
int state_check(struct state *st, json_t **ret);

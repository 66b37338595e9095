/* release-internal.h - what the files of the release runner share
 * (run.c: runs, their records and the API; run-steps.c: groups, deploys,
 * command steps and the rollback; run-gates.c: gates and the traffic
 * counted during a run).  Not for use outside src/release.
 */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "base/list.h"
#include "loop/loop-t.h"
#include "metrics/metrics-t.h"
#include "release/release.h"
#include "state/state-t.h"

struct deployer;
struct supervisor;
struct sup_instance;
struct sup_callbacks;
struct worker;
struct proxy;

enum step_state {
	STEP_PENDING = 0,
	STEP_RUNNING,
	STEP_DONE,
	STEP_FAILED,
	STEP_SKIPPED,
	STEP_ROLLING_BACK,
	STEP_ROLLED_BACK,
	STEP_UNDONE,
	STEP_KEPT,
	STEP_UNDO_FAILED,
	STEP__COUNT
};

/* One item of the plan as it runs (index: the item's in plan->file). */
struct step {
	struct run *run;
	size_t item;
	size_t group;
	enum step_state state;
	bool changed;                 /* the release changed it (a deploy started, a command ran) */
	int64_t deployment_id;        /* its deploy */
	int64_t rollback_id;          /* the deploy or rollback that took it back */
	int64_t started_at, finished_at;
	json_t *phases;               /* [{phase, at, detail}] of its deployment */
	char reason[512];
	/* command steps */
	struct sup_instance *proc;    /* run or undo in flight */
	bool undoing;
	bool timed_out;
	int exit_code, undo_exit_code;
	struct loop_timer timer;      /* its timeout */
	unsigned missed;              /* ticks its deploy has been finished without its result event */
};

/* The requests one version of a service answered during the run. */
struct traffic {
	char service[64], version[STATE_VERSION_MAX + 1];
	struct metrics_counts total;  /* counted during the run */
	struct metrics_counts last;   /* the counters at the last sample */
};

/* A metric gate's service: one version's counts (version "": the targets
 * of a service cutover does not run). */
struct gate_snapshot {
	char version[STATE_VERSION_MAX + 1];
	struct metrics_counts counts;
};

enum run_phase { PHASE_BEFORE = 0, PHASE_GROUP, PHASE_AFTER_GROUP, PHASE_AFTER, PHASE_ROLLBACK, PHASE_END };

struct run {
	struct list_head node;
	struct release_runner *rr;
	int64_t id;
	struct release_plan *plan;
	char env[64];
	enum state_release_run_state state;
	enum run_phase phase;
	uid_t who, approved_uid;
	char started_by[64], approved_by[64];
	int64_t requested_at, started_at, finished_at, expires_at;
	size_t group;                 /* the group running (PHASE_GROUP, PHASE_AFTER_GROUP) */
	size_t next_gate;             /* the next gate to consider at this point */
	struct step *steps;           /* one per item */
	size_t *started;              /* items in the order they started (reversed by the rollback) */
	size_t nstarted;
	size_t undo_cursor;           /* the rollback walks started[] down from here */
	bool failed_noncritical;
	char reason[512];
	/* the gate running */
	struct sup_instance *gate_proc;
	size_t gate;
	struct gate_result gate_result;
	struct gate_snapshot *gate_before; /* metric gates: each version's counts at the window's start */
	size_t ngate_before;
	struct loop_timer gate_timer;
	bool gate_timed_out;
	bool gate_judging;            /* its output is being read on the worker */
	json_t *gates;                /* results, in the order they ran */
	json_t *rollbacks;
	json_t *timeline;
	struct traffic *traffic;
	size_t ntraffic;
	struct loop_timer tick;       /* traffic samples; approval expiry */
	bool recovered;               /* found unfinished after a restart */
	char *command_env[7];         /* run_command_env(), NULL-terminated */
};

struct release_runner {
	struct proxy *p;              /* the loop, the current configuration, the metrics */
	struct supervisor *sup;
	struct deployer *d;
	struct worker *w;
	struct state *st;             /* only on the worker (or before the loop runs) */
	struct list_head runs;        /* active: not finished */
	int64_t next_id;
	release_event_fn on_event;
	void *event_data;
	struct loop_timer kick;       /* recovered runs start rolling back once the loop runs */
};

/* run.c */
struct run *run_new(struct release_runner *rr, struct release_plan *plan);
/* The run's tick: traffic sampled every second (and the steps polled). */
void run_sample_tick(struct loop *loop, struct loop_timer *t);
/* The tick of a run awaiting approval: its timeout. */
void run_expire_tick(struct loop *loop, struct loop_timer *t);
int step_state_parse(const char *name);         /* enum step_state, or -1 */
void run_log(struct run *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void run_emit(struct run *run, const char *phase, const char *detail, const struct step *s);
void run_persist(struct run *run);
void run_finish(struct run *run, enum state_release_run_state s, const char *reason);
/* The deploys' configuration now. */
const struct config *run_config(const struct run *run);
/* STATE_DIR/releases/ID/NAME.log (made); NULL on failure. */
char *run_log_path(struct run *run, const char *name);
/* Start COMMAND of a gate or step (NAME: "gate-unit", "cdn", "cdn.undo")
 * as a one-shot process in the release file's directory, with a small
 * environment (the daemon's PATH, HOME and LANG, CUTOVER_RELEASE,
 * CUTOVER_RELEASE_ID, CUTOVER_ENV), its output in
 * STATE_DIR/releases/ID/NAME.log (emptied first) with every secret value
 * hidden.  cb and data as sup_instance_start().  Returns 0 with *ret, or
 * -errno. */
int run_command_start(struct run *run, const char *name, const char *command, const struct sup_callbacks *cb,
		      void *data, struct sup_instance **ret);
const char *step_state_name(enum step_state s);

/* run-steps.c */
void run_advance(struct run *run);
void run_rollback(struct run *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void steps_deployment_event(struct run *run, const json_t *event);
void steps_stop(struct run *run);
void steps_poll(struct run *run);
json_t *step_json(const struct run *run, const struct step *s);

/* run-gates.c: the gates of the current point, one after the other; true
 * once none is left to run (the caller goes on), false while one runs. */
bool gates_run(struct run *run, enum release_gate_when when);
void gates_stop(struct run *run);
void traffic_sample(struct run *run);
json_t *traffic_json(const struct run *run);

/* plan-io.c: a new JSON string of S, or JSON null when S is NULL or "". */
json_t *release_json_string(const char *s);

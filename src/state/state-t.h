/* state-t.h - the rows of cutover's durable state (SQLite, see state.h and
 * docs/internals/state.md), as C types.
 *
 * Short identifiers (service names, versions, digests, state names) are
 * held inline in fixed arrays, bounded by the validators that let them in;
 * free-form text (paths, reasons, details) is heap-allocated and owned by the
 * row.  A row filled by a state_*_get() is released with its _clear()
 * function, an array filled by a state_*_list() with its _array_free().
 * Times are Unix milliseconds (wall clock); 0 means "not set".
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STATE_SERVICE_MAX 63          /* [a-z0-9][a-z0-9_-]{0,62} */
#define STATE_VERSION_MAX 127         /* semver text, bounded by store_version_valid() */
#define STATE_DIGEST_HEX 64           /* SHA-256 in lower-case hex */
#define STATE_STRATEGY_MAX 31         /* "blue-green", "canary", ... */
#define STATE_ENV_MAX 32              /* an environment's name: [a-z0-9][a-z0-9_-]{0,31} */

/* The schema version this build writes (PRAGMA user_version).  A database
 * with a higher number was written by a newer cutover and is refused. */
#define STATE_SCHEMA_VERSION 5

struct state;                         /* one SQLite connection; opaque */

enum state_instance_state {
	STATE_INSTANCE_STARTING = 0,
	STATE_INSTANCE_HEALTHY,
	STATE_INSTANCE_UNHEALTHY,
	STATE_INSTANCE_DRAINING,
	STATE_INSTANCE_STOPPING,
	STATE_INSTANCE_STOPPED,       /* the only state that is not "live" */
	STATE_INSTANCE_CRASHED,       /* exited unexpectedly; restart pending or given up */
	STATE_INSTANCE__COUNT,
};

enum state_deployment_state {
	STATE_DEPLOYMENT_STARTING = 0,
	STATE_DEPLOYMENT_HEALTH_CHECKING,
	STATE_DEPLOYMENT_SMOKE_TESTING,   /* schema 2 */
	STATE_DEPLOYMENT_SWITCHING,
	STATE_DEPLOYMENT_SWITCHED,
	STATE_DEPLOYMENT_DRAINING,
	STATE_DEPLOYMENT_AWAITING_APPROVAL, /* schema 3: requested, not started until approved */
	STATE_DEPLOYMENT_DONE,        /* terminal states from here on */
	STATE_DEPLOYMENT_ROLLED_BACK,
	STATE_DEPLOYMENT_FAILED,
	STATE_DEPLOYMENT_ABORTED,
	STATE_DEPLOYMENT_REJECTED,    /* schema 3: its approval was refused */
	STATE_DEPLOYMENT_EXPIRED,     /* schema 3: nobody approved it within the timeout */
	STATE_DEPLOYMENT__COUNT,
};

/* releases: one immutable artifact of a service version. */
struct state_release {
	int64_t id;
	char service[STATE_SERVICE_MAX + 1];
	char version[STATE_VERSION_MAX + 1];
	char digest[STATE_DIGEST_HEX + 1];
	char *path;                   /* absolute: STORE/SERVICE/DIGEST (the release dir) */
	uint64_t size_bytes;          /* sum of the regular files' sizes */
	int64_t created_at;
};

/* instances: one supervised process.  pid + start_time_ticks identify the
 * process across a daemon restart (a recycled pid has another start time). */
struct state_instance {
	int64_t id;
	char service[STATE_SERVICE_MAX + 1];
	char version[STATE_VERSION_MAX + 1];
	int64_t release_id;           /* 0: none (or the release was pruned since) */
	int pid;                      /* 0: not running */
	int pgid;
	int port;
	uint64_t start_time_ticks;    /* field 22 of /proc/PID/stat */
	int64_t started_at;
	enum state_instance_state state;
	int restarts;
	char *log_path;               /* NULL: none */
};

/* deployments: one run of the deploy state machine for a service. */
struct state_deployment {
	int64_t id;
	char service[STATE_SERVICE_MAX + 1];
	char from_version[STATE_VERSION_MAX + 1]; /* "": nothing was running */
	char to_version[STATE_VERSION_MAX + 1];
	char strategy[STATE_STRATEGY_MAX + 1];
	enum state_deployment_state state;
	char *reason;                 /* NULL until finished (and optional for "done") */
	int64_t started_at;
	int64_t finished_at;          /* 0 while in flight */
	/* schema 3 (rows before it have none of these) */
	char digest[STATE_DIGEST_HEX + 1]; /* the release deployed (or asked for); "": unknown */
	int64_t requested_uid;        /* who asked, when it awaits or awaited approval; -1: not recorded */
	int64_t expires_at;           /* awaiting approval: when it expires (Unix ms); 0: none */
	char promoted_from[STATE_ENV_MAX + 1]; /* a promotion: the environment the proof came from; "": none */
};

/* A new deployments row (state_deployment_insert). */
struct state_deployment_new {
	int64_t want_id;              /* > 0: this id (the daemon numbers its deployments); 0: the next */
	const char *service;
	const char *from_version;     /* NULL or "": nothing was running */
	const char *to_version;
	const char *strategy;
	enum state_deployment_state state; /* starting, or awaiting-approval */
	const char *detail;           /* of the first event (may be NULL) */
	const char *digest;           /* NULL: unknown */
	int64_t requested_uid;        /* -1: not recorded */
	int64_t expires_at;           /* 0: none */
	const char *promoted_from;    /* NULL: not a promotion */
	int64_t release_id;           /* the release run it belongs to, 0: none */
	const char *env;              /* the environment of the daemon that made it (NULL: none) */
};

/* deployment_events: one phase transition of a deployment. */
struct state_deployment_event {
	int64_t id;
	int64_t deployment_id;
	int64_t at;
	int from_state;               /* enum state_deployment_state, -1 for the first event */
	enum state_deployment_state to_state;
	char *detail;                 /* NULL: none */
};

/* audit: who did what, when, with what result.  Used as input only;
 * state_audit_list() returns JSON. */
struct state_audit_entry {
	const char *actor;            /* user name (getpwuid), or "uid N" */
	unsigned actor_uid;
	const char *action;           /* "release.add", "deploy", ... */
	const char *target;           /* "shop@1.2.0", ... (may be NULL) */
	const void *args;             /* json_t * (borrowed; may be NULL); never secrets */
	const char *result;           /* "ok", "failed", "refused", ... */
	const char *detail;           /* may be NULL */
	const char *env;              /* the environment (config env), NULL: none */
	int64_t release_id;           /* the release run it belongs to, 0: none */
};

/* Which rows `cutover history` and `cutover audit` read (state_history,
 * state_audit_list).  Every field narrows; NULL or 0: not at all. */
struct state_log_filter {
	const char *service;          /* deployments of SERVICE; audit rows whose target is SERVICE or SERVICE@... */
	const char *env;              /* audit rows written in environment ENV; deployments: see state_history() */
	int64_t release_id;           /* rows of this release run */
	int64_t since_ms, until_ms;   /* at (audit) or started_at (deployments) in [since, until) */
	size_t limit;                 /* at most this many, the newest */
};

/* The versions of one service that served, in the order they took over
 * (oldest first), as its finished deployments tell (state_lineage_*): what
 * `cutover rollback` steps back through.  At most STATE_LINEAGE_MAX; the
 * oldest are forgotten beyond. */
#define STATE_LINEAGE_MAX 64
struct state_lineage {
	size_t n;
	bool forgot;                  /* older versions were dropped to make room */
	char versions[STATE_LINEAGE_MAX][STATE_VERSION_MAX + 1];
};

/* routing: the last known-good routing of a service. */
struct state_routing {
	char service[STATE_SERVICE_MAX + 1];
	char version[STATE_VERSION_MAX + 1];
	int64_t *instance_ids;        /* owned */
	size_t ninstance_ids;
	int64_t updated_at;
};

/* release_runs: one run of a release file (state/releases.c).  Its report
 * is a JSON document (docs/internals/releases.md) the daemon rewrites
 * whole at every step. */
enum state_release_run_state {
	STATE_RELEASE_AWAITING_APPROVAL = 0,
	STATE_RELEASE_RUNNING,
	STATE_RELEASE_ROLLING_BACK,
	STATE_RELEASE_SUCCEEDED,      /* every step done */
	STATE_RELEASE_DEGRADED,       /* done, but a service marked critical: false failed */
	STATE_RELEASE_ROLLED_BACK,    /* something failed (or an abort): every change undone */
	STATE_RELEASE_FAILED,         /* failed and not wholly undone (an undo failed, or past a point of no return) */
	STATE_RELEASE_REJECTED,
	STATE_RELEASE_EXPIRED,
	STATE_RELEASE__COUNT
};

struct state_release_run {
	int64_t want_id;              /* > 0: this id; 0: the next */
	const char *name;
	const char *env;              /* NULL: none */
	enum state_release_run_state state;
	const char *started_by;       /* user name */
	int64_t started_uid;
	int64_t started_at;           /* 0: now */
	const char *report;           /* JSON text */
};

/* traffic_minutes: what the proxy answered for one service in one minute
 * (state/traffic.c), the uptime figures of the status page. */
struct state_traffic_minute {
	const char *service;
	int64_t minute;               /* Unix minute: Unix seconds / 60 */
	uint64_t requests;            /* requests routed to the service */
	uint64_t failed;              /* of those, answered 5xx (by it, or by the proxy for it) */
};

/* maintenance: a service the proxy answers with 503 until an operator
 * turns it off (`cutover maintenance on`), state/maintenance.c. */
#define STATE_MAINTENANCE_PAGE_MAX (64 * 1024) /* bytes of a custom page */
#define STATE_MAINTENANCE_RETRY_MAX 86400      /* Retry-After, seconds */
#define STATE_ACTOR_MAX 95                     /* a user name, or "uid N" */
struct state_maintenance {
	char service[STATE_SERVICE_MAX + 1];
	int64_t since;                /* Unix ms: when it was turned on */
	char started_by[STATE_ACTOR_MAX + 1];
	char *page;                   /* the HTML answered (owned); NULL: the built-in page */
	unsigned retry_after;         /* seconds, 1..STATE_MAINTENANCE_RETRY_MAX */
};

/* What `cutover state backup` saved and `cutover state restore` put back
 * (state/backup.c): the file, its schema and its rows. */
#define STATE_TABLES_MAX 16
/* What a restore kept of the state it replaced (state/present.c). */
#define STATE_PRESENT_ROUTING_MAX 32
struct state_present_routing {
	char service[STATE_SERVICE_MAX + 1];
	char version[STATE_VERSION_MAX + 1];        /* the version that served, kept */
	char backup_version[STATE_VERSION_MAX + 1]; /* what the backup routed ("": nothing) */
};
struct state_present {
	int releases;                 /* release rows the backup lacked */
	int instances;                /* running instances the backup did not know */
	size_t nrouting;              /* services whose routed version the backup had otherwise */
	struct state_present_routing routing[STATE_PRESENT_ROUTING_MAX];
};

struct state_file_info {
	int schema_version;           /* PRAGMA user_version */
	uint64_t size_bytes;
	size_t ntables;
	struct {
		const char *name;         /* static */
		int64_t rows;             /* -1: the table is not in this schema */
	} tables[STATE_TABLES_MAX];
	/* a restore: what it kept of the state it replaced; present_error is
	 * "" unless that state could not be read (then nothing was kept) */
	struct state_present present;
	char present_error[256];
};

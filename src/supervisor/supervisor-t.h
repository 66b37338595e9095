/* supervisor-t.h - types of the process supervisor: what to run (sup_spec),
 * how a process ended (sup_exit) and the events an instance reports.
 *
 * A spec is decoupled from the config module: the caller (the daemon) turns a
 * config_service plus a release into a sup_spec, with ${PORT} and friends
 * already substituted and the complete environment built.  The supervisor
 * copies the spec, so the caller may free its own as soon as a call returns.
 * Design notes: docs/internals/supervisor.md.
 */
#pragma once

struct redactor; /* secrets/redact.h */
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct supervisor;
struct sup_instance;

/* Per-process resource limits, set in the child before exec (soft and hard
 * limit both).  0 = not set (inherited from the daemon). */
struct sup_rlimits {
	uint64_t nofile;              /* RLIMIT_NOFILE */
	uint64_t nproc;               /* RLIMIT_NPROC */
	uint64_t core;                /* RLIMIT_CORE, bytes */
};

/* cgroup v2 limits of the instance's own cgroup.  0 = not set.  When one is
 * set and cgroups cannot be used, the instance still starts and
 * sup_instance_warning() says why the limits were not applied. */
struct sup_cgroup_limits {
	uint64_t memory_max;          /* memory.max, bytes */
	uint32_t cpu_max_percent;     /* cpu.max, percent of one CPU (1..100000) */
};

/* What happens when a process exits without being asked to. */
struct sup_restart {
	uint32_t max_restarts;        /* consecutive restarts before giving up (0: never restart) */
	uint64_t backoff_initial_ms;  /* first delay, doubled on each consecutive crash; 0: 100 ms */
	uint64_t backoff_max_ms;      /* cap of the delay; 0: 10 s */
	uint64_t stable_ms;           /* a process up this long resets the backoff and the
	                               * consecutive count; 0: 10 s */
};

/* How to run one instance.  Strings and arrays are copied. */
struct sup_spec {
	const char *id;               /* unique instance id, [A-Za-z0-9._-]{1,64} (not "." or "..");
	                               * names the cgroup /sys/fs/cgroup/cutover/ID */
	char *const *argv;            /* NULL-terminated; argv[0] is a path, or a name looked up in
	                               * the PATH of env (default /usr/local/bin:/usr/bin:/bin) */
	const char *command;          /* or (exactly one of the two): run as /bin/sh -c COMMAND */
	char *const *env;             /* NULL-terminated "NAME=VALUE": the child's complete
	                               * environment, nothing inherited; NULL: empty */
	const char *cwd;              /* working directory; NULL: "/" */
	const char *log_path;         /* stdout and stderr are appended to this file (created 0640);
	                               * NULL: /dev/null */
	uint64_t log_max_bytes;       /* rotate when the log reaches this size; 0: 10 MiB */
	uint32_t log_keep;            /* rotated files kept, LOG.1 (newest) .. LOG.N (0..100);
	                               * 0: the log is emptied when full */
	int stop_signal;              /* sent to the process group by sup_instance_stop; 0: SIGTERM */
	uint64_t stop_grace_ms;       /* then SIGKILL to the group; 0: 10 s */
	struct sup_rlimits rlimits;
	struct sup_cgroup_limits cgroup;
	struct sup_restart restart;
	bool die_with_daemon;         /* killed (SIGKILL, the leader only) if the daemon dies: for
	                               * short-lived jobs such as smoke tests, never for instances */
	char *const *secret_env;      /* NULL-terminated "NAME=VALUE" added to env at every spawn (a
	                               * restart too); the supervisor keeps its copy in sodium_malloc
	                               * memory and wipes it when the instance is freed; NULL: none */
	const struct redactor *redact; /* non-NULL: stdout and stderr go through a log relay, a process
	                               * of their own that outlives the daemon, which appends them to
	                               * log_path with these values hidden (secrets/redact.h; copied) */
};

enum sup_state {
	SUP_RUNNING,                  /* a process is running */
	SUP_BACKOFF,                  /* it exited unasked; a restart is scheduled */
	SUP_STOPPING,                 /* stop signal sent; waiting for the exit (SIGKILL after the grace) */
	SUP_STOPPED,                  /* stopped on request: no process left */
	SUP_FAILED,                   /* gave up (crash loop): no process left */
};

/* How a process of an instance ended. */
struct sup_exit {
	pid_t pid;
	bool known;                   /* false: the status is unknown (an adopted process that is not
	                               * our child was reaped by its real parent, usually init) */
	int code;                     /* exit status if it exited, else -1 */
	int signal;                   /* terminating signal if killed, else 0 */
	bool requested;               /* it ended after sup_instance_stop */
	uint64_t uptime_ms;           /* how long it ran (approximate for adopted processes) */
	int spawn_error;              /* > 0: it never ran the program; errno of spawn_stage */
	const char *spawn_stage;      /* "fork", "exec", "chdir", "open log", "setrlimit", ... or NULL */
	uint64_t restart_in_ms;       /* on_exit only: the restart is due in this many ms */
};

/* Events of an instance.  Each process end produces exactly one of on_exit
 * (a restart is scheduled), on_give_up, or the done callback of
 * sup_instance_stop.  After on_give_up and done, the instance has no process
 * and the callback may free it; on_exit may stop or free it.  Any may be NULL. */
struct sup_callbacks {
	/* The process exited unasked; a restart follows in exit->restart_in_ms. */
	void (*on_exit)(struct sup_instance *inst, const struct sup_exit *exit, void *data);
	/* A new process replaced a crashed one: its pid and start time changed (persist them for
	 * adoption); sup_instance_restarts() counts it. */
	void (*on_restart)(struct sup_instance *inst, void *data);
	/* Crash loop: more than max_restarts consecutive unasked exits.  State SUP_FAILED. */
	void (*on_give_up)(struct sup_instance *inst, const struct sup_exit *last, void *data);
};

/* Called once the stopped process has been reaped (or at once, from the loop,
 * if there was none).  last is how the last process ended. */
typedef void (*sup_done_cb)(struct sup_instance *inst, const struct sup_exit *last, void *data);

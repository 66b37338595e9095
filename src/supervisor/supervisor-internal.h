/* supervisor-internal.h - private declarations shared by the supervisor's
 * files: the instance and supervisor structures, the child side of a spawn
 * (spawn.c), cgroups (cgroup.c) and the log rotation thread (logs.c).
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "base/list-t.h"
#include "loop/loop-t.h"
#include "supervisor/supervisor-t.h"

#define SUP_ID_MAX 64
#define SUP_LOG_KEEP_MAX 100

/* --- logs.c: a thread that keeps log files under their size cap --- */

struct sup_logs;
struct sup_log;

/* Start the thread (all signals blocked in it).  Returns 0 or -errno. */
int sup_logs_start(struct sup_logs **ret);
/* Stop and join the thread, close every log.  Accepts NULL. */
void sup_logs_stop(struct sup_logs *logs);
/* Watch path (written by a child through O_APPEND) and rotate it when it
 * reaches max_bytes, keeping `keep` rotated files.  Returns the handle, or
 * NULL on allocation failure. */
struct sup_log *sup_logs_add(struct sup_logs *logs, const char *path, uint64_t max_bytes, uint32_t keep);
/* Stop watching (after one last size check on the thread).  Never fails;
 * accepts NULL. */
void sup_logs_remove(struct sup_logs *logs, struct sup_log *log);

/* --- cgroup.c: one cgroup v2 directory per instance --- */

/* Create ROOT/ID, enable the controllers the limits need and write them.
 * Returns 0 with *ret_dir, the cgroup to put the process in (malloc'd; NULL
 * when no limit is set or none could be applied), and *ret_warning, why
 * some or all limits were not applied (malloc'd message for the user, or
 * NULL).  Returns -ENOMEM (outputs untouched) only on allocation failure. */
int sup_cgroup_create(const char *root, const char *id, const struct sup_cgroup_limits *limits,
		      char **ret_dir, char **ret_warning);
/* Move pid into dir (cgroup.procs).  Returns 0 or -errno. */
int sup_cgroup_attach(const char *dir, pid_t pid);
/* Kill whatever is left in dir (cgroup.kill) and remove it.  Returns 0 or
 * -errno (-EBUSY while killed processes are still leaving). */
int sup_cgroup_remove(const char *dir);

/* --- spawn.c: fork and exec --- */

/* Where a child failed before exec, sent to the parent over a pipe. */
enum sup_stage {
	SUP_STAGE_NONE = 0,
	SUP_STAGE_SIGNALS, SUP_STAGE_SETSID, SUP_STAGE_HOLD, SUP_STAGE_STDIN, SUP_STAGE_LOG,
	SUP_STAGE_CHDIR, SUP_STAGE_RLIMIT, SUP_STAGE_EXEC, SUP_STAGE_RELAY,
};
const char *sup_stage_name(int stage);

struct sup_child_report {
	int32_t stage;
	int32_t error;
};

/* What every spawn of an instance adds to its spec, prepared once by
 * supervisor.c (the spec's secret_env and redact are not kept). */
struct sup_spawn_extra {
	char *const *envp;            /* spec.env plus the secrets (sodium_malloc'd), or NULL: spec.env */
	const uint8_t *redact_blob;   /* the serialized redactor (sodium_malloc'd): stdout and stderr
	                               * go through a log relay; NULL: straight into the log */
	size_t redact_blob_len;
};

/* A started child: what the parent keeps. */
struct sup_spawned {
	pid_t pid;
	int pidfd;
	int status_fd;    /* read end of the report pipe (non-blocking, close-on-exec) */
	uint64_t starttime;
	char *warning;    /* the cgroup could not be joined (malloc'd) or NULL */
	/* with a log relay: the process that started it (our child, exiting at once; reap it with
	 * sup_relay_starter_watch) and the read end (non-blocking) of the pipe it sends the relay's
	 * pid on; -1 when none */
	pid_t relay_starter;
	int relay_starter_pidfd;
	int relay_pid_fd;
};

/* Fork a child running spec (argv already resolved to the exec form: argv
 * or /bin/sh -c), placed in cgroup_dir when not NULL, with extra (NULL:
 * none).  With a redact blob, a log relay is started first (spawn.c says
 * how).  Returns 0 and *ret, or -errno with nothing left behind (a relay
 * already started sees EOF and exits). */
int sup_spawn(const struct sup_spec *spec, const char *cgroup_dir, const struct sup_spawn_extra *extra,
	      struct sup_spawned *ret);
/* Close sp's relay descriptors and reap its relay starter with a blocking wait (it exits at
 * once): for failure paths.  Accepts a spawn with none. */
void sup_spawned_relay_release(struct sup_spawned *sp);

/* --- relay.c: the log relay, `cutover log-relay ID` (sup_relay_main) --- */

#define SUP_RELAY_VERB "log-relay"
/* Its descriptors when it starts (spawn.c sets them up, nothing else is open). */
enum {
	SUP_RELAY_FD_IN = 0,          /* read end of the instance's stdout and stderr pipe */
	SUP_RELAY_FD_LOG = 1,         /* the log file, O_APPEND (also fd 2, for its own messages) */
	SUP_RELAY_FD_BLOB = 3,        /* the serialized redactor, read to EOF (a pipe or a memfd) */
	SUP_RELAY_FD_READY = 4,       /* write end of the ready pipe: a sup_child_report, stage 0
	                               * once it runs; the instance's child waits for it */
	SUP_RELAY_FD_PID = 5,         /* write end of the pipe the starter sends the relay's pid on */
	SUP_RELAY_FDS = 6,
};
#define SUP_RELAY_BLOB_MAX (64u << 20)

/* Reap a relay's starter (our child, exiting at once) from the loop: takes pidfd.  Returns 0,
 * or -errno after a blocking wait for it. */
int sup_relay_starter_watch(struct supervisor *sup, pid_t pid, int pidfd);
/* Reap every starter still watched, waiting for each (supervisor_free). */
void sup_relay_starters_reap(struct supervisor *sup);

/* --- supervisor.c --- */

struct supervisor {
	struct loop *loop;
	struct sup_logs *logs;
	char *cgroup_root;
	struct list_head instances;
	struct list_head dead;            /* freed instances, released by reap_timer */
	struct loop_timer reap_timer;
	struct list_head relay_starters;  /* relay.c: relay starters to reap */
};

struct sup_instance {
	struct supervisor *sup;
	struct list_head link;            /* in sup->instances */
	struct sup_spec spec;             /* deep copy (strings below are owned) */
	struct sup_callbacks cb;
	void *data;
	enum sup_state state;

	pid_t pid;                        /* current or last process */
	uint64_t starttime;
	bool own_group;                   /* pgid == pid: signals go to the group */
	struct loop_io pidfd_io;          /* fd -1 when no process */
	struct loop_io status_io;         /* the child's pre-exec report pipe; fd -1 once read */
	struct sup_child_report report;   /* what it said (stage 0: nothing) */
	uint64_t started_ms;              /* monotonic */

	uint32_t restarts;                /* total, reported */
	uint32_t streak;                  /* consecutive quick crashes: backoff and give-up */
	struct loop_timer restart_timer;
	struct loop_timer grace_timer;
	struct loop_timer done_timer;     /* deferred done of a stop with no process */
	sup_done_cb done;
	struct sup_exit last_exit;

	char *cgroup_dir;                 /* NULL: no cgroup */
	char *warning;
	struct sup_log *log;

	struct sup_spawn_extra extra;     /* secrets and redaction, prepared once (wiped by free) */
	void *secret_block;               /* sodium_malloc'd: extra.envp and the secret strings */
	uint8_t *redact_blob;             /* sodium_malloc'd: extra.redact_blob */
	pid_t relay_pid;                  /* the current process's log relay, or 0 (none, not known yet) */
	int relay_pid_fd;                 /* where its pid comes from until known, or -1 */
};

/* supervisor.h - run service instances as native processes, driven by the
 * event loop (types in supervisor-t.h, design in docs/internals/supervisor.md).
 *
 * Every function here is called on the loop thread and never blocks it:
 * exits are noticed through pidfds registered on the loop, timers drive the
 * backoff and the stop grace, and log rotation happens on a thread of the
 * supervisor's own.
 */
#pragma once
#include <stdint.h>
#include "loop/loop-t.h"
#include "supervisor/supervisor-t.h"

/* Create a supervisor on loop and start its log thread.  cgroup_root is the
 * delegated cgroup v2 directory instances get their cgroup in (NULL:
 * "/sys/fs/cgroup/cutover"; it is created on first use).  Returns 0 or
 * -errno (*ret untouched). */
int supervisor_new(struct loop *loop, const char *cgroup_root, struct supervisor **ret);
/* Free every instance left (as sup_instance_free does: running processes
 * are left running, unsupervised), stop and join the log thread.  Accepts
 * NULL; returns NULL. */
struct supervisor *supervisor_free(struct supervisor *sup);

/* Fill spec with the defaults: SIGTERM with a 10 s grace, logs capped at
 * 10 MiB with 5 rotated files, 5 restarts with a backoff from 100 ms to 10 s
 * that resets after 10 s up.  The caller then sets id, argv or command, env,
 * cwd and log_path. */
void sup_spec_init(struct sup_spec *spec);

/* Start a process for spec: its own session and process group, exactly
 * spec->env, spec->cwd, the rlimits, stdin from /dev/null, stdout and stderr
 * appended to spec->log_path, and the cgroup limits where cgroup v2 can be
 * used (see sup_instance_warning).  Returns 0 and *ret, the instance in
 * SUP_RUNNING, or -EINVAL (bad spec), -EEXIST (id in use), -ENOMEM, or the
 * -errno of pipe/fork/pidfd_open; nothing is left then (*ret untouched).
 * Failures in the child before exec (no such program, bad cwd, unwritable
 * log) are reported as an exit with spawn_error set.  The process is not
 * tied to the daemon (no PR_SET_PDEATHSIG): it survives a daemon crash and
 * can be adopted by the next daemon. */
int sup_instance_start(struct supervisor *sup, const struct sup_spec *spec,
		       const struct sup_callbacks *cb, void *data, struct sup_instance **ret);

/* Take over a process a previous daemon started for spec (pid and the start
 * time it recorded from sup_instance_starttime()).  It is verified to be the
 * same process: a pidfd is opened, then /proc/PID/stat must show the same
 * start time.  From then on it is supervised as if started here (restarts use
 * spec; its log keeps being written by the process itself and rotated here).
 * Returns 0 and *ret in SUP_RUNNING, -ESRCH (no such process), -ESTALE
 * (that pid is now another process), -EINVAL, -EEXIST or -ENOMEM (*ret
 * untouched). */
int sup_instance_adopt(struct supervisor *sup, pid_t pid, uint64_t starttime, const struct sup_spec *spec,
		       const struct sup_callbacks *cb, void *data, struct sup_instance **ret);

/* Stop: send the stop signal to the process group, SIGKILL the group when
 * the grace expires, call done once the process is reaped.  An instance with
 * no process (waiting for a restart, failed, stopped) is stopped at once and
 * done is called from the loop (never from inside this call).  Returns 0, or
 * -EALREADY if a stop is in progress. */
int sup_instance_stop(struct sup_instance *inst, sup_done_cb done);

/* Release inst.  Meant for after done or on_give_up; an instance that still
 * has a process is forgotten without signalling it (the process keeps
 * running, in its cgroup, and can be adopted again).  Accepts NULL; returns
 * NULL.  May be called from inst's callbacks. */
struct sup_instance *sup_instance_free(struct sup_instance *inst);

enum sup_state sup_instance_state(const struct sup_instance *inst);
const char *sup_instance_id(const struct sup_instance *inst);
/* Pid of the current or last process (0 if none ever ran). */
pid_t sup_instance_pid(const struct sup_instance *inst);
/* Pid of the log relay started with the current or last process (spec.redact), or 0: none
 * (no redaction, or an adopted process whose relay an earlier daemon started) or not known
 * yet (it is, at the latest, once the process has exec'd: the process waits for its relay;
 * this reads the pid if it has arrived, without blocking).  Not our child: it ends by
 * itself once the process and everything that inherited its output are gone. */
pid_t sup_instance_relay_pid(struct sup_instance *inst);
/* Start time of the current process, in clock ticks after boot (the 22nd
 * field of /proc/PID/stat): record it with the pid for sup_instance_adopt. */
uint64_t sup_instance_starttime(const struct sup_instance *inst);
/* Restarts after crashes since start or adoption (never reset). */
uint32_t sup_instance_restarts(const struct sup_instance *inst);
/* Consecutive crashes (reset once a process stays up restart.stable_ms). */
uint32_t sup_instance_streak(const struct sup_instance *inst);
/* Why the requested cgroup limits were not (all) applied, or NULL. */
const char *sup_instance_warning(const struct sup_instance *inst);

/* Start time of pid in clock ticks after boot, from /proc/PID/stat.
 * Returns 0, -ESRCH (no such process) or -EIO (unparsable); ret untouched
 * on failure. */
int sup_pid_starttime(pid_t pid, uint64_t *ret);

/* The log relay's process (`cutover log-relay ID`, a hidden verb): copies the instance's
 * output from fd 0 to the log file at fd 1 through redaction with the redactor read from fd
 * 3, until EOF or SIGTERM (docs/internals/redaction.md).  Started only by sup_spawn, never
 * by hand.  Returns the exit status. */
int sup_relay_main(int argc, char **argv);

/* A TCP port that is free on 127.0.0.1 right now: bind port 0, read the
 * port, close.  Another process may take it before the instance binds it;
 * callers health-check the instance anyway and retry with a new port.
 * Returns 0 or -errno (ret untouched). */
int sup_free_port(uint16_t *ret);

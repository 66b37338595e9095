/* supervisor.c - the life of an instance on the event loop.
 *
 *   start/adopt -> RUNNING --exit, unasked--> BACKOFF --timer--> RUNNING (restarts++)
 *                     |                           \--too many in a row--> FAILED
 *                     \--sup_instance_stop--> STOPPING --exit--> STOPPED
 *                                               (SIGKILL to the group after the grace)
 *
 * A process is watched through a pidfd registered on the loop; when it is
 * readable, waitid(P_PIDFD, WNOHANG) reaps it, so nothing ever waits on the
 * loop thread.  A second descriptor, the child's report pipe, tells why a
 * child failed before exec.  Timers drive the backoff, the stop grace and
 * the deferred completion of a stop with no process.  Spawning is in
 * spawn.c, cgroups in cgroup.c, log rotation in logs.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>
#include "base/list.h"
#include "base/util.h"
#include "loop/loop.h"
#include "secrets/redact.h"
#include "supervisor/supervisor.h"
#include "supervisor/supervisor-internal.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define DEFAULT_CGROUP_ROOT "/sys/fs/cgroup/cutover"
#define DEFAULT_LOG_MAX_BYTES (10u << 20)
#define DEFAULT_LOG_KEEP 5
#define DEFAULT_STOP_GRACE_MS 10000
#define DEFAULT_MAX_RESTARTS 5
#define DEFAULT_BACKOFF_INITIAL_MS 100
#define DEFAULT_BACKOFF_MAX_MS 10000
#define DEFAULT_STABLE_MS 10000

/* --- specs --- */

void sup_spec_init(struct sup_spec *spec)
{
	*spec = (struct sup_spec){
		.log_max_bytes = DEFAULT_LOG_MAX_BYTES,
		.log_keep = DEFAULT_LOG_KEEP,
		.stop_signal = SIGTERM,
		.stop_grace_ms = DEFAULT_STOP_GRACE_MS,
		.restart = {
			.max_restarts = DEFAULT_MAX_RESTARTS,
			.backoff_initial_ms = DEFAULT_BACKOFF_INITIAL_MS,
			.backoff_max_ms = DEFAULT_BACKOFF_MAX_MS,
			.stable_ms = DEFAULT_STABLE_MS,
		},
	};
}

static bool id_valid(const char *id)
{
	size_t len;

	if (!id || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
		return false;
	len = strlen(id);
	if (len == 0 || len > SUP_ID_MAX)
		return false;
	for (const char *p = id; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '.' || *p == '_' || *p == '-'))
			return false;
	return true;
}

/* Every entry is NAME=VALUE with a non-empty NAME. */
static bool env_valid(char *const *env)
{
	for (; env && *env; env++) {
		const char *eq = strchr(*env, '=');
		if (!eq || eq == *env)
			return false;
	}
	return true;
}

static bool spec_valid(const struct sup_spec *spec)
{
	bool has_argv = spec->argv && spec->argv[0] && spec->argv[0][0];

	return id_valid(spec->id) && has_argv != (spec->command != NULL) && env_valid(spec->secret_env) &&
	       spec->stop_signal >= 0 && spec->stop_signal < NSIG && spec->log_keep <= SUP_LOG_KEEP_MAX &&
	       spec->cgroup.cpu_max_percent <= 100000;
}

static char **strv_free(char **v)
{
	if (v)
		for (char **p = v; *p; p++)
			free(*p);
	free(v);
	return NULL;
}

static char **strv_copy(char *const *v)
{
	size_t n = 0;
	char **copy;

	while (v[n])
		n++;
	copy = calloc(n + 1, sizeof(*copy));
	if (!copy)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!(copy[i] = strdup(v[i])))
			return strv_free(copy);
	return copy;
}

static char *strdup_or_null(const char *s, bool *failed)
{
	char *copy;

	if (!s)
		return NULL;
	copy = strdup(s);
	if (!copy)
		*failed = true;
	return copy;
}

static void spec_release(struct sup_spec *spec)
{
	free((char *)spec->id);
	free((char *)spec->command);
	free((char *)spec->cwd);
	free((char *)spec->log_path);
	strv_free((char **)spec->argv);
	strv_free((char **)spec->env);
	*spec = (struct sup_spec){ 0 };
}

/* Deep-copy src into dst with defaults filled in; a shell command becomes
 * the argv /bin/sh -c COMMAND.  Returns 0 or -ENOMEM (dst released). */
static int spec_copy(struct sup_spec *dst, const struct sup_spec *src)
{
	char *const shell[] = { "/bin/sh", "-c", (char *)src->command, NULL };
	bool failed = false;

	*dst = *src;
	dst->id = strdup_or_null(src->id, &failed);
	dst->command = strdup_or_null(src->command, &failed);
	dst->cwd = strdup_or_null(src->cwd, &failed);
	dst->log_path = strdup_or_null(src->log_path, &failed);
	dst->argv = strv_copy(src->command ? shell : src->argv);
	dst->env = src->env ? strv_copy(src->env) : NULL;
	dst->secret_env = NULL; /* kept in sodium memory by the instance (secrets_copy) */
	dst->redact = NULL;
	if (failed || !dst->argv || (src->env && !dst->env)) {
		spec_release(dst);
		return -ENOMEM;
	}
	if (!dst->log_max_bytes)
		dst->log_max_bytes = DEFAULT_LOG_MAX_BYTES;
	if (!dst->stop_signal)
		dst->stop_signal = SIGTERM;
	if (!dst->stop_grace_ms)
		dst->stop_grace_ms = DEFAULT_STOP_GRACE_MS;
	if (!dst->restart.backoff_initial_ms)
		dst->restart.backoff_initial_ms = DEFAULT_BACKOFF_INITIAL_MS;
	if (!dst->restart.backoff_max_ms)
		dst->restart.backoff_max_ms = DEFAULT_BACKOFF_MAX_MS;
	if (dst->restart.backoff_max_ms < dst->restart.backoff_initial_ms)
		dst->restart.backoff_max_ms = dst->restart.backoff_initial_ms;
	if (!dst->restart.stable_ms)
		dst->restart.stable_ms = DEFAULT_STABLE_MS;
	return 0;
}

/* --- secrets: the secret environment and the relay's redactor --- */

/* Does env entry e set the variable that NAME=... entry s sets? */
static bool same_name(const char *e, const char *s)
{
	size_t n = (size_t)(strchr(s, '=') - s);

	return strncmp(e, s, n) == 0 && e[n] == '=';
}

/* Build inst->extra.envp: inst->spec.env without the variables secret_env
 * sets, then secret_env, in one sodium_malloc block (the pointer array,
 * then the secret strings).  Returns 0 or -ENOMEM. */
static int secret_env_copy(struct sup_instance *inst, char *const *secret_env)
{
	size_t nenv = 0, nsec = 0, strings = 0, size, k = 0;
	char **envp, *p;

	for (char *const *e = inst->spec.env; e && *e; e++)
		nenv++;
	for (char *const *e = secret_env; *e; e++, nsec++)
		strings += strlen(*e) + 1;
	/* a multiple of 16: sodium_malloc puts the block at the end of its
	 * pages, so only then is the pointer array aligned */
	size = ((nenv + nsec + 1) * sizeof(char *) + strings + 15) & ~(size_t)15;
	envp = sodium_malloc(size);
	if (!envp)
		return -ENOMEM;
	p = (char *)(envp + nenv + nsec + 1);
	for (size_t i = 0; i < nenv; i++) {
		bool shadowed = false;
		for (char *const *e = secret_env; *e && !shadowed; e++)
			shadowed = same_name(inst->spec.env[i], *e);
		if (!shadowed)
			envp[k++] = inst->spec.env[i];
	}
	for (char *const *e = secret_env; *e; e++) {
		size_t len = strlen(*e) + 1;
		memcpy(p, *e, len);
		envp[k++] = p;
		p += len;
	}
	envp[k] = NULL;
	inst->secret_block = envp;
	inst->extra.envp = envp;
	return 0;
}

/* Keep what every spawn adds from src: the secret environment and, when
 * the output is redacted into a log file, the serialized redactor for the
 * relay (an empty redactor needs no relay).  Returns 0 or -ENOMEM. */
static int secrets_copy(struct sup_instance *inst, const struct sup_spec *src)
{
	int r;

	if ((src->secret_env || src->redact) && sodium_init() < 0)
		return -ENOMEM;
	if (src->secret_env && src->secret_env[0] && (r = secret_env_copy(inst, src->secret_env)) < 0)
		return r;
	if (src->redact && redactor_count(src->redact) > 0 && src->log_path) {
		r = redactor_serialize(src->redact, &inst->redact_blob, &inst->extra.redact_blob_len);
		if (r < 0)
			return r;
		inst->extra.redact_blob = inst->redact_blob;
	}
	return 0;
}

/* Wipe and free what secrets_copy kept. */
static void secrets_release(struct sup_instance *inst)
{
	sodium_free(inst->secret_block);
	sodium_free(inst->redact_blob);
	inst->secret_block = NULL;
	inst->redact_blob = NULL;
	inst->extra = (struct sup_spawn_extra){ 0 };
}

/* --- the supervisor --- */

int supervisor_new(struct loop *loop, const char *cgroup_root, struct supervisor **ret)
{
	struct supervisor *sup = calloc(1, sizeof(*sup));
	int r = -ENOMEM;

	if (!sup)
		return -ENOMEM;
	sup->loop = loop;
	list_init(&sup->instances);
	list_init(&sup->dead);
	list_init(&sup->relay_starters);
	sup->cgroup_root = strdup(cgroup_root ? cgroup_root : DEFAULT_CGROUP_ROOT);
	if (!sup->cgroup_root)
		goto fail;
	r = sup_logs_start(&sup->logs);
	if (r < 0)
		goto fail;
	*ret = sup;
	return 0;

fail:
	free(sup->cgroup_root);
	free(sup);
	return r;
}

static void reap(struct supervisor *sup)
{
	struct list_head *pos, *tmp;

	list_for_each_safe(pos, tmp, &sup->dead) {
		struct sup_instance *inst = container_of(pos, struct sup_instance, link);
		list_del(&inst->link);
		free(inst);
	}
}

static void on_reap_timer(struct loop *loop UNUSED, struct loop_timer *t)
{
	reap(container_of(t, struct supervisor, reap_timer));
}

struct supervisor *supervisor_free(struct supervisor *sup)
{
	struct list_head *pos, *tmp;

	if (!sup)
		return NULL;
	list_for_each_safe(pos, tmp, &sup->instances)
		sup_instance_free(container_of(pos, struct sup_instance, link));
	loop_timer_cancel(sup->loop, &sup->reap_timer);
	reap(sup);
	sup_relay_starters_reap(sup);
	sup_logs_stop(sup->logs);
	free(sup->cgroup_root);
	free(sup);
	return NULL;
}

/* --- processes --- */

static void on_pidfd(struct loop *loop, struct loop_io *io, uint32_t events);
static void on_report(struct loop *loop, struct loop_io *io, uint32_t events);

static void close_io(struct loop *loop, struct loop_io *io)
{
	if (io->fd < 0)
		return;
	loop_del(loop, io);
	close(io->fd);
	io->fd = -1;
}

/* Read the child's report if it has sent one; close the pipe once the
 * child has exec'd or failed (EOF or a report). */
static void read_report(struct sup_instance *inst)
{
	struct sup_child_report r;
	ssize_t n;

	if (inst->status_io.fd < 0)
		return;
	do
		n = read(inst->status_io.fd, &r, sizeof(r));
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return;
	if (n == (ssize_t)sizeof(r))
		inst->report = r;
	close_io(inst->sup->loop, &inst->status_io);
}

static void on_report(struct loop *loop UNUSED, struct loop_io *io, uint32_t events UNUSED)
{
	read_report(container_of(io, struct sup_instance, status_io));
}

/* Take over a freshly spawned or adopted process.  Returns 0 or -errno
 * (the caller still owns sp's descriptors then). */
static int watch_process(struct sup_instance *inst, const struct sup_spawned *sp)
{
	struct loop *loop = inst->sup->loop;
	int r = loop_add(loop, &inst->pidfd_io, sp->pidfd, EPOLLIN, on_pidfd);

	if (r < 0) {
		inst->pidfd_io.fd = -1;
		return r;
	}
	inst->status_io.fd = -1;
	if (sp->status_fd >= 0 && loop_add(loop, &inst->status_io, sp->status_fd, EPOLLIN, on_report) < 0) {
		/* without it an early failure is only seen as exit status 127 */
		inst->status_io.fd = -1;
		close(sp->status_fd);
	}
	inst->pid = sp->pid;
	inst->starttime = sp->starttime;
	inst->report = (struct sup_child_report){ 0 };
	inst->started_ms = time_now_ms();
	inst->state = SUP_RUNNING;
	return 0;
}

/* Signal one process through its pidfd (immune to pid reuse); plain kill()
 * where pidfd_send_signal is missing (valgrind 3.24 does not know it). */
static void pidfd_kill(int pidfd, pid_t pid, int sig)
{
	if (pidfd_send_signal(pidfd, sig, NULL, 0) < 0 && errno == ENOSYS)
		kill(pid, sig);
}

/* The relay's pid, if its starter has sent it since (a non-blocking
 * read); EOF or an error: it will not come. */
static void relay_pid_read(struct sup_instance *inst)
{
	int32_t v;
	ssize_t n;

	if (inst->relay_pid_fd < 0)
		return;
	do
		n = read(inst->relay_pid_fd, &v, sizeof(v));
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return;
	if (n == (ssize_t)sizeof(v) && v > 0)
		inst->relay_pid = (pid_t)v;
	close(inst->relay_pid_fd);
	inst->relay_pid_fd = -1;
}

/* Fork a new process for inst.  Returns 0 or -errno (no process then). */
static int spawn_process(struct sup_instance *inst)
{
	struct sup_spawned sp;
	int r = sup_spawn(&inst->spec, inst->cgroup_dir, &inst->extra, &sp);

	if (r < 0)
		return r;
	if (sp.relay_starter_pidfd >= 0) {
		/* our child, exiting at once: reaped from the loop */
		sup_relay_starter_watch(inst->sup, sp.relay_starter, sp.relay_starter_pidfd);
		sp.relay_starter_pidfd = -1;
		sp.relay_starter = 0;
	}
	if (sp.warning) {
		free(inst->warning);
		inst->warning = sp.warning;
	}
	r = watch_process(inst, &sp);
	if (r < 0) {
		/* cannot watch it: do not leave it unsupervised.  A SIGKILLed
		 * child is reaped within microseconds. */
		pidfd_kill(sp.pidfd, sp.pid, SIGKILL);
		while (waitid(P_PIDFD, (id_t)sp.pidfd, &(siginfo_t){ 0 }, WEXITED) < 0 && errno == EINTR)
			;
		close(sp.pidfd);
		close(sp.status_fd);
		sup_spawned_relay_release(&sp);
		return r;
	}
	inst->own_group = true; /* the child calls setsid() */
	if (inst->relay_pid_fd >= 0)
		close(inst->relay_pid_fd);
	inst->relay_pid_fd = sp.relay_pid_fd;
	inst->relay_pid = 0;
	return 0;
}

/* Send sig to the instance's process group (or to the process alone when
 * it does not lead a group yet, or at all). */
static void signal_process(struct sup_instance *inst, int sig)
{
	if (inst->own_group && kill(-inst->pid, sig) == 0)
		return;
	if (inst->pidfd_io.fd >= 0)
		pidfd_kill(inst->pidfd_io.fd, inst->pid, sig);
}

/* The instance is over for good: stop rotating its log, remove its cgroup
 * (kept for sup_instance_free to retry while killed processes leave it). */
static void finish(struct sup_instance *inst)
{
	sup_logs_remove(inst->sup->logs, inst->log);
	inst->log = NULL;
	if (inst->cgroup_dir && sup_cgroup_remove(inst->cgroup_dir) == 0) {
		free(inst->cgroup_dir);
		inst->cgroup_dir = NULL;
	}
}

static uint64_t backoff_ms(const struct sup_instance *inst)
{
	uint64_t d = inst->spec.restart.backoff_initial_ms, max = inst->spec.restart.backoff_max_ms;

	for (uint32_t i = 1; i < inst->streak && d < max; i++)
		d *= 2;
	return d < max ? d : max;
}

static void on_restart_timer(struct loop *loop, struct loop_timer *t);

/* A process ended (or could not be started) without being asked to:
 * schedule a restart, or give up.  Calls back last (may free inst). */
static void crashed(struct sup_instance *inst, struct sup_exit *exit)
{
	struct sup_exit last;

	if (exit->uptime_ms >= inst->spec.restart.stable_ms)
		inst->streak = 0;
	inst->streak++;
	if (inst->streak > inst->spec.restart.max_restarts) {
		inst->state = SUP_FAILED;
		inst->last_exit = *exit;
		finish(inst);
		last = *exit;
		if (inst->cb.on_give_up)
			inst->cb.on_give_up(inst, &last, inst->data);
		return;
	}
	exit->restart_in_ms = backoff_ms(inst);
	inst->state = SUP_BACKOFF;
	inst->last_exit = *exit;
	loop_timer_set(inst->sup->loop, &inst->restart_timer, time_now_ms() + exit->restart_in_ms, on_restart_timer);
	last = *exit;
	if (inst->cb.on_exit)
		inst->cb.on_exit(inst, &last, inst->data);
}

static void on_restart_timer(struct loop *loop UNUSED, struct loop_timer *t)
{
	struct sup_instance *inst = container_of(t, struct sup_instance, restart_timer);
	int r = spawn_process(inst);

	if (r < 0) {
		struct sup_exit exit = { .code = -1, .spawn_error = -r, .spawn_stage = "fork" };
		crashed(inst, &exit);
		return;
	}
	inst->restarts++;
	if (inst->cb.on_restart)
		inst->cb.on_restart(inst, inst->data);
}

static void on_pidfd(struct loop *loop, struct loop_io *io, uint32_t events UNUSED)
{
	struct sup_instance *inst = container_of(io, struct sup_instance, pidfd_io);
	struct sup_exit exit = { .pid = inst->pid, .code = -1 };
	siginfo_t si = { 0 };
	sup_done_cb done;

	if (io->fd < 0)
		return; /* closed earlier in this iteration, event already fetched */
	/* Peek first (WNOWAIT): while our child is an unreaped zombie its pid,
	 * hence its process group id, cannot be reused, so whatever it left
	 * in its group (background workers that would hold its port) can be
	 * killed safely before the reap. */
	if (waitid(P_PIDFD, (id_t)io->fd, &si, WEXITED | WNOHANG | WNOWAIT) == 0) {
		if (si.si_pid == 0)
			return; /* not exited yet */
		if (inst->own_group)
			kill(-inst->pid, SIGKILL);
		while (waitid(P_PIDFD, (id_t)io->fd, &si, WEXITED | WNOHANG) < 0 && errno == EINTR)
			;
		exit.known = true;
		if (si.si_code == CLD_EXITED)
			exit.code = si.si_status;
		else
			exit.signal = si.si_status;
	} else if (errno == EINTR) {
		return; /* level-triggered: back at the next iteration */
	} else if (inst->own_group) {
		/* ECHILD: an adopted process, reaped by its parent (init).  Its
		 * group id stays taken while members are left; reuse would need
		 * the pid space to wrap around since it exited. */
		kill(-inst->pid, SIGKILL);
	}

	read_report(inst);
	relay_pid_read(inst); /* a process that ran had a ready relay, whose pid was sent first */
	if (inst->report.stage != SUP_STAGE_NONE) {
		exit.spawn_error = inst->report.error;
		exit.spawn_stage = sup_stage_name(inst->report.stage);
	}
	close_io(loop, &inst->status_io);
	close_io(loop, &inst->pidfd_io);
	loop_timer_cancel(loop, &inst->grace_timer);
	exit.uptime_ms = time_now_ms() - inst->started_ms;

	if (inst->state != SUP_STOPPING) {
		crashed(inst, &exit);
		return;
	}
	exit.requested = true;
	inst->state = SUP_STOPPED;
	inst->last_exit = exit;
	finish(inst);
	done = inst->done;
	inst->done = NULL;
	if (done)
		done(inst, &exit, inst->data);
}

/* --- instances --- */

static struct sup_instance *find(struct supervisor *sup, const char *id)
{
	struct list_head *pos, *tmp;

	list_for_each_safe(pos, tmp, &sup->instances) {
		struct sup_instance *inst = container_of(pos, struct sup_instance, link);
		if (strcmp(inst->spec.id, id) == 0)
			return inst;
	}
	return NULL;
}

/* A new instance with no process, its log watched and its cgroup made. */
static int instance_new(struct supervisor *sup, const struct sup_spec *spec, const struct sup_callbacks *cb,
			void *data, struct sup_instance **ret)
{
	struct sup_instance *inst;
	int r;

	if (!spec_valid(spec))
		return -EINVAL;
	if (find(sup, spec->id))
		return -EEXIST;
	inst = calloc(1, sizeof(*inst));
	if (!inst)
		return -ENOMEM;
	inst->sup = sup;
	list_init(&inst->link);
	inst->pidfd_io.fd = inst->status_io.fd = -1;
	inst->relay_pid_fd = -1;
	inst->state = SUP_STOPPED;
	if (cb)
		inst->cb = *cb;
	inst->data = data;
	r = spec_copy(&inst->spec, spec);
	if (r < 0)
		goto fail;
	r = secrets_copy(inst, spec);
	if (r < 0)
		goto fail;
	r = -ENOMEM;
	if (inst->spec.log_path) {
		inst->log = sup_logs_add(sup->logs, inst->spec.log_path, inst->spec.log_max_bytes, inst->spec.log_keep);
		if (!inst->log)
			goto fail;
	}
	r = sup_cgroup_create(sup->cgroup_root, inst->spec.id, &inst->spec.cgroup, &inst->cgroup_dir, &inst->warning);
	if (r < 0)
		goto fail;
	*ret = inst;
	return 0;

fail:
	sup_logs_remove(sup->logs, inst->log);
	secrets_release(inst);
	spec_release(&inst->spec);
	free(inst);
	return r;
}

int sup_instance_start(struct supervisor *sup, const struct sup_spec *spec,
		       const struct sup_callbacks *cb, void *data, struct sup_instance **ret)
{
	struct sup_instance *inst;
	int r = instance_new(sup, spec, cb, data, &inst);

	if (r < 0)
		return r;
	r = spawn_process(inst);
	if (r < 0) {
		inst->state = SUP_STOPPED;
		sup_instance_free(inst);
		return r;
	}
	list_add_tail(&sup->instances, &inst->link);
	*ret = inst;
	return 0;
}

/* Milliseconds since a process started, from its start time in ticks
 * after boot. */
static uint64_t uptime_from_starttime(uint64_t starttime)
{
	struct timespec now;
	long hz = sysconf(_SC_CLK_TCK);
	uint64_t now_ms, start_ms;

	if (hz <= 0 || clock_gettime(CLOCK_BOOTTIME, &now) < 0)
		return 0;
	now_ms = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
	start_ms = starttime * 1000 / (uint64_t)hz;
	return now_ms > start_ms ? now_ms - start_ms : 0;
}

int sup_instance_adopt(struct supervisor *sup, pid_t pid, uint64_t starttime, const struct sup_spec *spec,
		       const struct sup_callbacks *cb, void *data, struct sup_instance **ret)
{
	struct sup_spawned sp = { .pid = pid, .pidfd = -1, .status_fd = -1, .starttime = starttime };
	struct sup_instance *inst = NULL;
	uint64_t actual, uptime;
	int r;

	if (pid <= 0)
		return -ESRCH;
	if (!spec_valid(spec))
		return -EINVAL;
	/* The pidfd first: if the pid is recycled after this, the start time
	 * read next belongs to the newcomer and does not match. */
	sp.pidfd = pidfd_open(pid, 0);
	if (sp.pidfd < 0)
		return -errno;
	r = sup_pid_starttime(pid, &actual);
	if (r < 0)
		goto out;
	if (actual != starttime) {
		r = -ESTALE;
		goto out;
	}
	r = instance_new(sup, spec, cb, data, &inst);
	if (r < 0)
		goto out;
	r = watch_process(inst, &sp);
	if (r < 0) {
		inst->state = SUP_RUNNING; /* forget it; its cgroup stays with it */
		inst = sup_instance_free(inst);
		goto out;
	}
	sp.pidfd = -1; /* the instance owns it */
	uptime = uptime_from_starttime(starttime);
	inst->started_ms -= uptime < inst->started_ms ? uptime : inst->started_ms;
	inst->own_group = getpgid(pid) == pid;
	list_add_tail(&sup->instances, &inst->link);
	*ret = inst;
	r = 0;
out:
	if (sp.pidfd >= 0)
		close(sp.pidfd);
	return r;
}

static void on_grace_timer(struct loop *loop UNUSED, struct loop_timer *t)
{
	signal_process(container_of(t, struct sup_instance, grace_timer), SIGKILL);
}

static void on_done_timer(struct loop *loop UNUSED, struct loop_timer *t)
{
	struct sup_instance *inst = container_of(t, struct sup_instance, done_timer);
	struct sup_exit last = inst->last_exit;
	sup_done_cb done = inst->done;

	inst->done = NULL;
	if (done)
		done(inst, &last, inst->data);
}

int sup_instance_stop(struct sup_instance *inst, sup_done_cb done)
{
	struct loop *loop = inst->sup->loop;

	if (inst->state == SUP_STOPPING)
		return -EALREADY;
	inst->done = done;
	if (inst->state == SUP_RUNNING) {
		inst->state = SUP_STOPPING;
		signal_process(inst, inst->spec.stop_signal);
		loop_timer_set(loop, &inst->grace_timer, time_now_ms() + inst->spec.stop_grace_ms, on_grace_timer);
		return 0;
	}
	loop_timer_cancel(loop, &inst->restart_timer);
	if (inst->state == SUP_BACKOFF)
		finish(inst);
	inst->state = SUP_STOPPED;
	loop_timer_set(loop, &inst->done_timer, time_now_ms(), on_done_timer);
	return 0;
}

struct sup_instance *sup_instance_free(struct sup_instance *inst)
{
	struct loop *loop;
	bool alive;

	if (!inst)
		return NULL;
	loop = inst->sup->loop;
	alive = inst->state == SUP_RUNNING || inst->state == SUP_STOPPING;
	loop_timer_cancel(loop, &inst->restart_timer);
	loop_timer_cancel(loop, &inst->grace_timer);
	loop_timer_cancel(loop, &inst->done_timer);
	/* A live process is only forgotten: closing its pidfd does not touch it. */
	close_io(loop, &inst->status_io);
	close_io(loop, &inst->pidfd_io);
	sup_logs_remove(inst->sup->logs, inst->log);
	if (inst->cgroup_dir && !alive)
		sup_cgroup_remove(inst->cgroup_dir);
	secrets_release(inst);
	spec_release(&inst->spec);
	if (inst->relay_pid_fd >= 0)
		close(inst->relay_pid_fd);
	inst->relay_pid_fd = -1;
	free(inst->cgroup_dir);
	inst->cgroup_dir = NULL;
	free(inst->warning);
	inst->warning = NULL;
	/* Events fetched in this loop iteration may still point into inst:
	 * the memory goes at the end of the iteration (its descriptors are
	 * closed, so those events are ignored). */
	list_del(&inst->link);
	list_add_tail(&inst->sup->dead, &inst->link);
	loop_timer_set(loop, &inst->sup->reap_timer, time_now_ms(), on_reap_timer);
	return NULL;
}

enum sup_state sup_instance_state(const struct sup_instance *inst) { return inst->state; }
const char *sup_instance_id(const struct sup_instance *inst) { return inst->spec.id; }
pid_t sup_instance_pid(const struct sup_instance *inst) { return inst->pid; }
pid_t sup_instance_relay_pid(struct sup_instance *inst)
{
	relay_pid_read(inst);
	return inst->relay_pid;
}
uint64_t sup_instance_starttime(const struct sup_instance *inst) { return inst->starttime; }
uint32_t sup_instance_restarts(const struct sup_instance *inst) { return inst->restarts; }
uint32_t sup_instance_streak(const struct sup_instance *inst) { return inst->streak; }
const char *sup_instance_warning(const struct sup_instance *inst) { return inst->warning; }

/* --- helpers --- */

int sup_pid_starttime(pid_t pid, uint64_t *ret)
{
	char path[64], buf[2048], *p, *end;
	unsigned long long ticks;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	do
		n = read(fd, buf, sizeof(buf) - 1);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n <= 0)
		return n < 0 && errno == ESRCH ? -ESRCH : -EIO;
	buf[n] = '\0';
	/* "PID (COMM) STATE ...": comm may hold spaces and parentheses, so
	 * count fields from the last ')'.  starttime is field 22, STATE is 3. */
	p = strrchr(buf, ')');
	if (!p)
		return -EIO;
	p++;
	for (int field = 3; field < 22; field++) {
		while (*p == ' ')
			p++;
		while (*p && *p != ' ')
			p++;
	}
	while (*p == ' ')
		p++;
	errno = 0;
	ticks = strtoull(p, &end, 10);
	if (errno || end == p)
		return -EIO;
	*ret = ticks;
	return 0;
}

int sup_free_port(uint16_t *ret)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), r = 0;

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		r = -errno;
	else
		*ret = ntohs(sa.sin_port);
	close(fd);
	return r;
}

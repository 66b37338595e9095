/* spawn.c - fork and exec one instance process.
 *
 * The daemon is multi-threaded (the log thread, the worker), so between fork
 * and exec the child only makes async-signal-safe system calls: everything it
 * needs (argv, envp, the PATH to search, paths, limits) is prepared by the
 * parent before fork, and the child allocates nothing.  It reports a failure
 * before exec as {stage, errno} on a close-on-exec pipe and exits 127; the
 * parent reads the pipe from the loop (EOF means the exec happened).
 *
 * When the instance has a cgroup, the child waits on a second pipe until the
 * parent has written its pid to cgroup.procs, so the program never runs
 * outside its limits.
 *
 * With redaction (docs/internals/redaction.md), a log relay is started
 * first: a pipe becomes the instance's stdout and stderr, and
 * /proc/self/exe is run as `cutover log-relay ID` with posix_spawn
 * (CLONE_VFORK: no copy of the daemon's page tables), in a session of its
 * own, with the pipe's read end, the log file, the serialized redactor (a
 * pipe, or a memfd when it is too big for one) and two more pipes.  That
 * process, the starter, forks the relay itself and exits at once, so the
 * relay is not our child and outlives us; the starter is reaped from the
 * loop (relay.c) and sends the relay's pid on one of the pipes.  The
 * instance's child waits, before exec, until the relay says on the other
 * that it is ready (or why it could not start).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include "supervisor/supervisor.h"
#include "supervisor/supervisor-internal.h"

#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"
#define CHILD_PATH_MAX 4096

const char *sup_stage_name(int stage)
{
	switch (stage) {
	case SUP_STAGE_SIGNALS: return "signals";
	case SUP_STAGE_SETSID: return "setsid";
	case SUP_STAGE_HOLD: return "cgroup hold";
	case SUP_STAGE_STDIN: return "open /dev/null";
	case SUP_STAGE_LOG: return "open log";
	case SUP_STAGE_CHDIR: return "chdir";
	case SUP_STAGE_RLIMIT: return "setrlimit";
	case SUP_STAGE_EXEC: return "exec";
	case SUP_STAGE_RELAY: return "log relay";
	default: return NULL;
	}
}

/* Everything the child needs, prepared before fork. */
struct child_args {
	char *const *argv;
	char *const *envp;
	const char *search_path;  /* PATH to search argv[0] in, or NULL: exec argv[0] as is */
	const char *cwd;
	const char *log_path;
	int out_fd;               /* stdout and stderr (the relay's pipe), or -1: open log_path */
	int relay_ready_fd;       /* read end of the relay's ready pipe, or -1 */
	int relay_error;          /* > 0: the relay could not be started (errno) */
	struct { int resource; rlim_t value; } rlimits[3];
	int nrlimits;
	int report_fd;            /* write end of the report pipe */
	int report_parent_fd;     /* its read end, the parent's */
	int hold_fd;              /* read end of the hold pipe, or -1 */
	int hold_parent_fd;       /* its write end, the parent's: the child must close its copy
	                           * or it would wait for its own EOF forever */
	pid_t die_with;           /* > 0: SIGKILL the child when this parent dies (short-lived jobs) */
};

static _Noreturn void child_fail(int report_fd, int stage, int error)
{
	struct sup_child_report r = { .stage = stage, .error = error };

	if (write(report_fd, &r, sizeof(r)) < 0) {
		/* the parent learns of the failure from exit status 127 alone */
	}
	_exit(127);
}

/* Make fd the descriptor `target`, inherited by exec. */
static int child_move_fd(int fd, int target)
{
	if (fd == target)
		return fcntl(fd, F_SETFD, 0);
	if (dup2(fd, target) < 0)
		return -1;
	close(fd);
	return 0;
}

/* Keep a descriptor out of 0..2, which are about to be replaced. */
static int child_lift_fd(int fd)
{
	int nfd;

	if (fd < 0 || fd > 2)
		return fd;
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	return nfd;
}

/* Mark every descriptor from `from` up close-on-exec. */
static void child_mark_cloexec(int from)
{
	struct rlimit rl;
	long max = 65536;

	if (close_range((unsigned)from, ~0u, CLOSE_RANGE_CLOEXEC) == 0)
		return;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && (long)rl.rlim_cur < max)
		max = (long)rl.rlim_cur;
	for (int fd = from; fd < max; fd++)
		fcntl(fd, F_SETFD, FD_CLOEXEC);
}

/* Default dispositions and no blocked signal: the daemon ignores SIGPIPE
 * and blocks the signals it reads from a signalfd; exec keeps both. */
static int child_reset_signals(void)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t none;

	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &dfl, NULL); /* EINVAL for libc-reserved ones */
	sigemptyset(&none);
	return sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Wait until the log relay is ready.  Returns 0 or the errno of its
 * failure (EPIPE: it died without a word). */
static int child_wait_relay(int fd)
{
	struct sup_child_report r;
	ssize_t n;

	do
		n = read(fd, &r, sizeof(r));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno;
	close(fd);
	if (n != (ssize_t)sizeof(r))
		return EPIPE;
	return r.stage == SUP_STAGE_NONE ? 0 : (r.error > 0 ? r.error : EIO);
}

/* Exec name in each directory of search_path, as execvp does but with the
 * child's own PATH.  Returns the most telling errno (EACCES over ENOENT). */
static int child_exec_search(const struct child_args *a)
{
	const char *name = a->argv[0], *p = a->search_path;
	size_t namelen = strlen(name);
	char buf[CHILD_PATH_MAX];
	int error = ENOENT;

	for (;;) {
		const char *end = strchr(p, ':');
		size_t dirlen = end ? (size_t)(end - p) : strlen(p);

		if (dirlen == 0) {
			buf[0] = '.';
			dirlen = 1;
		} else if (dirlen < sizeof(buf)) {
			memcpy(buf, p, dirlen);
		}
		if (dirlen + 1 + namelen + 1 <= sizeof(buf)) {
			buf[dirlen] = '/';
			memcpy(buf + dirlen + 1, name, namelen + 1);
			execve(buf, a->argv, a->envp);
			if (errno == EACCES)
				error = EACCES;
			else if (errno != ENOENT && errno != ENOTDIR && error != EACCES)
				error = errno;
		}
		if (!end)
			break;
		p = end + 1;
	}
	return error;
}

static _Noreturn void child_run(const struct child_args *a)
{
	int report = child_lift_fd(a->report_fd), hold = child_lift_fd(a->hold_fd), fd, error;
	int out = child_lift_fd(a->out_fd), ready = child_lift_fd(a->relay_ready_fd);

	if (report < 0)
		_exit(127);
	close(a->report_parent_fd);
	if (a->hold_parent_fd >= 0)
		close(a->hold_parent_fd);
	/* Own session, hence own process group: the daemon's terminal signals
	 * do not reach it, and stop signals the whole group. */
	if (setsid() < 0)
		child_fail(report, SUP_STAGE_SETSID, errno);
	/* a job of the daemon (a smoke test) ends with it: nobody would
	 * adopt it.  The forking thread is the loop thread, which lives as long
	 * as the process; a parent that died before the prctl is seen by getppid. */
	if (a->die_with > 0 && (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != a->die_with))
		_exit(127);
	if (child_reset_signals() < 0)
		child_fail(report, SUP_STAGE_SIGNALS, errno);
	if (hold >= 0) {
		char c;
		ssize_t n;
		do
			n = read(hold, &c, 1); /* EOF: the parent has placed us in the cgroup */
		while (n < 0 && errno == EINTR);
		if (n < 0)
			child_fail(report, SUP_STAGE_HOLD, errno);
		close(hold);
	}
	if (a->relay_error)
		child_fail(report, SUP_STAGE_RELAY, a->relay_error);
	if (a->relay_ready_fd >= 0 && (ready < 0 || (error = child_wait_relay(ready)) != 0))
		child_fail(report, SUP_STAGE_RELAY, ready < 0 ? errno : error);
	child_mark_cloexec(3);

	fd = open("/dev/null", O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || child_move_fd(fd, 0) < 0)
		child_fail(report, SUP_STAGE_STDIN, errno);
	if (a->out_fd >= 0)
		fd = out;
	else
		fd = open(a->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
	if (fd < 0 || child_move_fd(fd, 1) < 0 || dup2(1, 2) < 0)
		child_fail(report, SUP_STAGE_LOG, errno);

	if (chdir(a->cwd) < 0)
		child_fail(report, SUP_STAGE_CHDIR, errno);
	for (int i = 0; i < a->nrlimits; i++) {
		struct rlimit rl = { .rlim_cur = a->rlimits[i].value, .rlim_max = a->rlimits[i].value };
		if (setrlimit(a->rlimits[i].resource, &rl) < 0)
			child_fail(report, SUP_STAGE_RLIMIT, errno);
	}
	if (a->search_path)
		child_fail(report, SUP_STAGE_EXEC, child_exec_search(a));
	execve(a->argv[0], a->argv, a->envp);
	child_fail(report, SUP_STAGE_EXEC, errno);
}

static const char *env_path(char *const *envp)
{
	for (; envp && *envp; envp++)
		if (strncmp(*envp, "PATH=", 5) == 0)
			return *envp + 5;
	return DEFAULT_PATH;
}

static void add_rlimit(struct child_args *a, int resource, uint64_t value)
{
	if (!value)
		return;
	a->rlimits[a->nrlimits].resource = resource;
	a->rlimits[a->nrlimits].value = value >= RLIM_INFINITY ? RLIM_INFINITY : (rlim_t)value;
	a->nrlimits++;
}

static void close_pair(int p[2])
{
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	p[0] = p[1] = -1;
}

/* --- the log relay --- */

/* Give fd a number >= min (close-on-exec), closing the old one, so that
 * the dup2s of a spawn never overwrite one another's source.  Returns the
 * descriptor or -errno (fd closed). */
static int fd_at_least(int fd, int min)
{
	int nfd;

	if (fd >= min)
		return fd;
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, min);
	close(fd);
	return nfd < 0 ? -errno : nfd;
}

/* A descriptor holding blob, read to its end from offset 0: a pipe when
 * it fits in one (kernel memory, never swapped), else a memfd.  Returns
 * the descriptor (close-on-exec) or -errno. */
static int blob_fd(const uint8_t *blob, size_t len)
{
	int p[2], fd;
	size_t off = 0;

	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0) {
		if (len > 65536 && fcntl(p[1], F_SETPIPE_SZ, (int)(len < INT_MAX ? len : INT_MAX)) < 0) {
			/* too big for a pipe: the write below falls short */
		}
		while (off < len) {
			ssize_t n = write(p[1], blob + off, len - off);
			if (n <= 0)
				break;
			off += (size_t)n;
		}
		close(p[1]);
		if (off == len && fcntl(p[0], F_SETFL, 0) == 0)
			return p[0];
		close(p[0]);
	}
	fd = memfd_create("cutover-redact", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (off = 0; off < len;) {
		ssize_t n = write(fd, blob + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			close(fd);
			return n < 0 ? -errno : -EIO;
		}
		off += (size_t)n;
	}
	if (lseek(fd, 0, SEEK_SET) < 0) {
		close(fd);
		return -errno;
	}
	return fd;
}

/* posix_spawn the relay's starter: `/proc/self/exe log-relay ID` in a
 * session of its own, default signals, an empty environment, "/" as its
 * directory, and exactly the descriptors SUP_RELAY_FD_* (fds[] holds their
 * sources, all above them).  Returns 0 with *ret_pid, or a positive errno
 * (that of the exec, of opening the log, ...). */
static int relay_exec(const struct sup_spec *spec, const int fds[SUP_RELAY_FDS], pid_t *ret_pid)
{
	static char *const empty_env[] = { NULL };
	char *const argv[] = { "cutover", SUP_RELAY_VERB, (char *)spec->id, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t all, none;
	int error;

	sigfillset(&all);
	sigemptyset(&none);
	if ((error = posix_spawn_file_actions_init(&fa)) != 0)
		return error;
	if ((error = posix_spawnattr_init(&attr)) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return error;
	}
	error = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
	if (!error)
		error = posix_spawnattr_setsigdefault(&attr, &all);
	if (!error)
		error = posix_spawnattr_setsigmask(&attr, &none);
	for (int fd = 0; fd < SUP_RELAY_FDS && !error; fd++) {
		if (fd == SUP_RELAY_FD_LOG)
			error = posix_spawn_file_actions_addopen(&fa, fd, spec->log_path,
								 O_WRONLY | O_APPEND | O_CREAT | O_NOCTTY, 0640);
		else if (fd == 2)
			error = posix_spawn_file_actions_adddup2(&fa, SUP_RELAY_FD_LOG, 2);
		else
			error = posix_spawn_file_actions_adddup2(&fa, fds[fd], fd);
	}
	if (!error)
		error = posix_spawn_file_actions_addclosefrom_np(&fa, SUP_RELAY_FDS);
	if (!error)
		error = posix_spawn_file_actions_addchdir_np(&fa, "/");
	if (!error) /* CLONE_VFORK: no copy of our memory, we wait only for the exec */
		error = posix_spawn(ret_pid, "/proc/self/exe", &fa, &attr, argv, empty_env);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	return error;
}

/* Start the relay for spec.  On success *ret_out is the write end of the
 * pipe to give the instance as stdout and stderr, *ret_ready the read end
 * of the ready pipe its child waits on, and ret the starter (our child, to
 * reap) with the read end of the pipe it sends the relay's pid on.  Returns
 * 0, a positive errno for the instance's child to report (the relay could
 * not be started: stage "log relay"), or -errno (nothing left behind). */
static int relay_start(const struct sup_spec *spec, const struct sup_spawn_extra *x, int *ret_out,
		       int *ret_ready, struct sup_spawned *ret)
{
	int out[2] = { -1, -1 }, ready[2] = { -1, -1 }, pidp[2] = { -1, -1 }, fds[SUP_RELAY_FDS];
	int blob = blob_fd(x->redact_blob, x->redact_blob_len), r = 0;
	pid_t starter;

	if (blob < 0)
		return blob;
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(ready, O_CLOEXEC) < 0 || pipe2(pidp, O_CLOEXEC | O_NONBLOCK) < 0) {
		r = -errno;
		goto out;
	}
	fds[SUP_RELAY_FD_IN] = out[0] = fd_at_least(out[0], SUP_RELAY_FDS);
	fds[SUP_RELAY_FD_BLOB] = blob = fd_at_least(blob, SUP_RELAY_FDS);
	fds[SUP_RELAY_FD_READY] = ready[1] = fd_at_least(ready[1], SUP_RELAY_FDS);
	fds[SUP_RELAY_FD_PID] = pidp[1] = fd_at_least(pidp[1], SUP_RELAY_FDS);
	if (out[0] < 0 || blob < 0 || ready[1] < 0 || pidp[1] < 0) {
		r = -EMFILE;
		goto out;
	}
	r = relay_exec(spec, fds, &starter);
	if (r > 0)
		goto out; /* for the instance's child to report */
	ret->relay_starter_pidfd = pidfd_open(starter, 0);
	if (ret->relay_starter_pidfd < 0) {
		/* cannot watch it: wait for it here, it exits at once */
		while (waitpid(starter, NULL, 0) < 0 && errno == EINTR)
			;
		starter = 0;
	}
	ret->relay_starter = starter;
	ret->relay_pid_fd = pidp[0];
	*ret_out = out[1];
	*ret_ready = ready[0];
	out[1] = ready[0] = pidp[0] = -1;
out:
	close_pair(out);
	close_pair(ready);
	close_pair(pidp);
	if (blob >= 0)
		close(blob);
	return r;
}

void sup_spawned_relay_release(struct sup_spawned *sp)
{
	if (sp->relay_pid_fd >= 0)
		close(sp->relay_pid_fd);
	if (sp->relay_starter > 0)
		while (waitpid(sp->relay_starter, NULL, 0) < 0 && errno == EINTR)
			;
	if (sp->relay_starter_pidfd >= 0)
		close(sp->relay_starter_pidfd);
	sp->relay_pid_fd = sp->relay_starter_pidfd = -1;
	sp->relay_starter = 0;
}

int sup_spawn(const struct sup_spec *spec, const char *cgroup_dir, const struct sup_spawn_extra *x,
	      struct sup_spawned *ret)
{
	static char *const empty_env[] = { NULL };
	struct child_args a = {
		.argv = spec->argv,
		.envp = x && x->envp ? x->envp : spec->env ? spec->env : empty_env,
		.cwd = spec->cwd ? spec->cwd : "/",
		.log_path = spec->log_path ? spec->log_path : "/dev/null",
		.out_fd = -1,
		.relay_ready_fd = -1,
		.die_with = spec->die_with_daemon ? getpid() : 0,
	};
	int report[2] = { -1, -1 }, hold[2] = { -1, -1 }, relay[2] = { -1, -1 }, pidfd, r;
	struct sup_spawned relay_out = { .relay_starter_pidfd = -1, .relay_pid_fd = -1 };
	char *warning = NULL;
	uint64_t starttime = 0;
	pid_t pid;

	if (!strchr(spec->argv[0], '/'))
		a.search_path = env_path(a.envp);
	add_rlimit(&a, RLIMIT_NOFILE, spec->rlimits.nofile);
	add_rlimit(&a, RLIMIT_NPROC, spec->rlimits.nproc);
	add_rlimit(&a, RLIMIT_CORE, spec->rlimits.core);

	if (pipe2(report, O_CLOEXEC) < 0 || (cgroup_dir && pipe2(hold, O_CLOEXEC) < 0)) {
		r = -errno;
		goto fail;
	}
	a.report_fd = report[1];
	a.report_parent_fd = report[0];
	a.hold_fd = hold[0];
	a.hold_parent_fd = hold[1];
	if (x && x->redact_blob && spec->log_path) {
		r = relay_start(spec, x, &relay[1], &relay[0], &relay_out);
		if (r < 0)
			goto fail;
		a.relay_error = r;
		a.out_fd = relay[1];
		a.relay_ready_fd = relay[0];
	}

	pid = fork();
	if (pid < 0) {
		r = -errno;
		goto fail;
	}
	if (pid == 0)
		child_run(&a);

	close_pair(relay); /* the child's now: the relay sees EOF when it and its own are gone */
	close(report[1]);
	report[1] = -1;
	if (hold[0] >= 0)
		close(hold[0]);
	hold[0] = -1;

	/* Our unreaped child: its pid cannot be reused, so this is race-free. */
	pidfd = pidfd_open(pid, 0);
	if (pidfd < 0) {
		r = -errno;
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		goto fail;
	}
	(void)sup_pid_starttime(pid, &starttime);
	if (cgroup_dir) {
		r = sup_cgroup_attach(cgroup_dir, pid);
		if (r < 0 && asprintf(&warning, "cgroup v2 limits not applied: cannot move pid %d into %s (%s)",
				      (int)pid, cgroup_dir, strerrordesc_np(-r)) < 0)
			warning = NULL;
		close(hold[1]); /* let the child go on */
		hold[1] = -1;
	}
	if (fcntl(report[0], F_SETFL, O_NONBLOCK) < 0) {
		/* cannot fail on a pipe we own; a blocking read would still only
		 * happen after EPOLLIN or EPOLLHUP */
	}
	*ret = (struct sup_spawned){
		.pid = pid, .pidfd = pidfd, .status_fd = report[0], .starttime = starttime, .warning = warning,
		.relay_starter = relay_out.relay_starter,
		.relay_starter_pidfd = relay_out.relay_starter_pidfd,
		.relay_pid_fd = relay_out.relay_pid_fd,
	};
	return 0;

fail:
	close_pair(report);
	close_pair(hold);
	close_pair(relay);
	sup_spawned_relay_release(&relay_out);
	return r;
}

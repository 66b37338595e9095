/* test_supervisor.c - unit tests of the process supervisor, with real child
 * processes (/bin/sh, sleep, env, pwd) on a real event loop.
 *
 * Every scenario runs the loop until a condition holds (polled every few ms)
 * under a guard that fails the test after a few seconds, so nothing hangs;
 * the whole program takes a few seconds.  Each test gets a fresh loop,
 * supervisor and temporary directory; the teardown checks that no child of
 * ours is left (alive or zombie) and that no descriptor leaked, then kills by
 * pid whatever a failed test left behind.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <inttypes.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <linux/magic.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/util.h"
#include "loop/loop.h"
#include "supervisor/supervisor.h"
#include "supervisor/supervisor-internal.h"
#include "unit.h"
#include "supervisor_fixture.h"

/* --- tests --- */

/* An exit code and a signal are reported; with max_restarts 0 the first
 * unasked exit gives up at once. */
static void test_exit_status(void **state)
{
	struct fixture *f = *state;
	struct events ev1 = { 0 }, ev2 = { 0 };
	struct sup_instance *a, *b;
	struct sup_spec spec;

	spec_for(f, &spec, "exit3", "exit 3", NULL, 0);
	spec.restart.max_restarts = 0;
	assert_int_equal(start(f, &spec, &ev1, &a), 0);
	assert_int_equal(sup_instance_state(a), SUP_RUNNING);
	assert_true(sup_instance_pid(a) > 0);
	assert_true(sup_instance_starttime(a) > 0);
	spec_for(f, &spec, "killed", "kill -9 $$", NULL, 0);
	spec.restart.max_restarts = 0;
	assert_int_equal(start(f, &spec, &ev2, &b), 0);
	assert_true(run_until(f, gave_up, &ev1, GUARD_MS));
	assert_true(run_until(f, gave_up, &ev2, GUARD_MS));

	assert_int_equal(ev1.exits, 0);
	assert_true(ev1.give_up.known);
	assert_int_equal(ev1.give_up.code, 3);
	assert_int_equal(ev1.give_up.signal, 0);
	assert_false(ev1.give_up.requested);
	assert_int_equal(ev1.give_up.spawn_error, 0);
	assert_int_equal(ev1.give_up.pid, sup_instance_pid(a));
	assert_int_equal(sup_instance_state(a), SUP_FAILED);
	assert_int_equal(sup_instance_restarts(a), 0);

	assert_int_equal(ev2.give_up.code, -1);
	assert_int_equal(ev2.give_up.signal, SIGKILL);
	assert_null(sup_instance_warning(b));
	sup_instance_free(a);
	sup_instance_free(b);
}

/* The child gets exactly the given environment and working directory; a
 * bare program name is searched in that environment's PATH. */
static void test_env_and_cwd(void **state)
{
	struct fixture *f = *state;
	char *const env[] = { "FOO=bar baz", "CUTOVER_TEST=1", "PATH=/nonexistent:/usr/bin:/bin", NULL };
	char *const env_argv[] = { "/usr/bin/env", NULL }, *const pwd_argv[] = { "pwd", NULL };
	char cwd[PATH_MAX + 16], real[PATH_MAX], log1[PATH_MAX], log2[PATH_MAX], want[PATH_MAX + 2], *s;
	struct events ev1 = { 0 }, ev2 = { 0 };
	struct sup_instance *a, *b;
	struct sup_spec spec;

	snprintf(cwd, sizeof(cwd), "%s/work dir", f->dir);
	assert_int_equal(mkdir(cwd, 0755), 0);
	assert_non_null(realpath(cwd, real));

	spec_for(f, &spec, "env", NULL, log1, sizeof(log1));
	spec.argv = env_argv;
	spec.env = env;
	spec.cwd = cwd;
	spec.restart.max_restarts = 0;
	assert_int_equal(start(f, &spec, &ev1, &a), 0);
	spec_for(f, &spec, "pwd", NULL, log2, sizeof(log2));
	spec.argv = pwd_argv;
	spec.env = env;
	spec.cwd = cwd;
	spec.restart.max_restarts = 0;
	assert_int_equal(start(f, &spec, &ev2, &b), 0);
	assert_true(run_until(f, gave_up, &ev1, GUARD_MS));
	assert_true(run_until(f, gave_up, &ev2, GUARD_MS));
	assert_int_equal(ev1.give_up.code, 0);
	assert_int_equal(ev2.give_up.code, 0);

	s = slurp(log1);
	assert_non_null(s);
	assert_string_equal(s, "FOO=bar baz\nCUTOVER_TEST=1\nPATH=/nonexistent:/usr/bin:/bin\n");
	free(s);
	s = slurp(log2);
	assert_non_null(s);
	snprintf(want, sizeof(want), "%s\n", real);
	assert_string_equal(s, want);
	free(s);
	sup_instance_free(a);
	sup_instance_free(b);
}

/* Own session and process group, rlimits, stdin from /dev/null, none of the
 * daemon's descriptors; a plain stop ends it with the stop signal. */
static void test_group_rlimits_fds(void **state)
{
	struct fixture *f = *state;
	char log[PATH_MAX], *s;
	struct events ev = { 0 };
	struct sup_instance *inst;
	struct sup_spec spec;
	struct file_has ready = { log, "ready\n" };
	int leak = open("/dev/null", O_RDONLY); /* no O_CLOEXEC: must not reach the child */
	pid_t pid;

	assert_true(leak >= 0);
	assert_int_equal(dup2(leak, 200), 200);
	close(leak);
	spec_for(f, &spec, "group",
		 "ulimit -n; ulimit -p; ulimit -c; readlink /proc/$$/fd/0; "
		 "if [ -e /proc/$$/fd/200 ]; then echo leaked; else echo clean; fi; echo to-stderr >&2; echo ready; "
		 "exec sleep 30",
		 log, sizeof(log));
	/* valgrind keeps descriptors of its own at the top and refuses a lower
	 * RLIMIT_NOFILE in the child it runs until exec */
	spec.rlimits.nofile = under_valgrind() ? 0 : 77;
	spec.rlimits.nproc = 4321;
	spec.rlimits.core = 1 << 20; /* dash prints 512-byte blocks */
	leak = start(f, &spec, &ev, &inst);
	close(200);
	assert_int_equal(leak, 0);
	pid = sup_instance_pid(inst);
	wait_for_text(f, &ready);
	assert_int_equal(getpgid(pid), pid);
	assert_int_equal(getsid(pid), pid);
	s = slurp(log);
	assert_non_null(s);
	assert_non_null(strchr(s, '\n'));
	assert_string_equal(strchr(s, '\n') + 1, "4321\n2048\n/dev/null\nclean\nto-stderr\nready\n");
	if (!under_valgrind() && strncmp(s, "77\n", 3) != 0)
		fail_msg("ulimit -n printed \"%.10s\", want 77", s);
	free(s);

	assert_int_equal(sup_instance_stop(inst, on_done_cb), 0);
	assert_int_equal(sup_instance_state(inst), SUP_STOPPING);
	assert_int_equal(sup_instance_stop(inst, on_done_cb), -EALREADY);
	assert_true(run_until(f, stopped, &ev, GUARD_MS));
	assert_int_equal(ev.dones, 1);
	assert_true(ev.done.requested);
	assert_true(ev.done.known);
	assert_int_equal(ev.done.signal, SIGTERM);
	assert_int_equal(sup_instance_state(inst), SUP_STOPPED);
	assert_int_equal(ev.exits, 0);
	sup_instance_free(inst);
}

static bool gone_or_zombie(void *arg)
{
	char path[64], *s, *p;
	bool gone;

	snprintf(path, sizeof(path), "/proc/%d/stat", *(pid_t *)arg);
	s = slurp(path);
	p = s ? strrchr(s, ')') : NULL;
	gone = !p || p[2] == 'Z';
	free(s);
	return gone;
}

/* What the process leaves in its group when it exits (a background worker
 * that would keep its port) is killed with it. */
static void test_group_killed_with_leader(void **state)
{
	struct fixture *f = *state;
	char log[PATH_MAX], *s;
	struct events ev = { 0 };
	struct sup_instance *inst;
	struct sup_spec spec;
	pid_t worker;

	spec_for(f, &spec, "leaver", "sleep 30 & echo $!; sleep 0.1; exit 4", log, sizeof(log));
	spec.restart.max_restarts = 0;
	assert_int_equal(start(f, &spec, &ev, &inst), 0);
	assert_true(run_until(f, gave_up, &ev, GUARD_MS));
	assert_int_equal(ev.give_up.code, 4);
	s = slurp(log);
	assert_non_null(s);
	worker = atoi(s);
	free(s);
	assert_true(worker > 0);
	track(worker);
	assert_true(run_until(f, gone_or_zombie, &worker, GUARD_MS));
	sup_instance_free(inst);
}

/* A program that exits at once is restarted after 40, 80, 100, 100 ms
 * (doubling, capped), then given up on; every restart is reported. */
static void test_crash_loop(void **state)
{
	struct fixture *f = *state;
	static const uint64_t want[] = { 40, 80, 100, 100 };
	struct events ev = { 0 };
	struct sup_instance *inst;
	struct sup_spec spec;

	spec_for(f, &spec, "crash", "exit 1", NULL, 0);
	spec.restart.max_restarts = 4;
	spec.restart.backoff_initial_ms = 40;
	spec.restart.backoff_max_ms = 100;
	assert_int_equal(start(f, &spec, &ev, &inst), 0);
	assert_true(run_until(f, gave_up, &ev, GUARD_MS));

	assert_int_equal(ev.exits, 4);
	assert_int_equal(ev.restarts, 4);
	assert_int_equal(ev.give_ups, 1);
	assert_int_equal(sup_instance_restarts(inst), 4);
	for (int i = 0; i < 4; i++) {
		uint64_t waited = ev.restart_ms[i] - ev.exit_ms[i];
		assert_int_equal(ev.exit[i].code, 1);
		assert_false(ev.exit[i].requested);
		assert_int_equal(ev.exit[i].restart_in_ms, want[i]);
		if (waited + 2 < want[i]) /* timers have ms resolution */
			fail_msg("restart %d came after %" PRIu64 " ms, want >= %" PRIu64, i, waited, want[i]);
	}
	assert_int_equal(ev.give_up.code, 1);
	assert_int_equal(sup_instance_state(inst), SUP_FAILED);

	/* Stopping a failed instance completes from the loop, not inside stop. */
	assert_int_equal(sup_instance_stop(inst, on_done_cb), 0);
	assert_int_equal(ev.dones, 0);
	assert_true(run_until(f, stopped, &ev, GUARD_MS));
	assert_int_equal(sup_instance_state(inst), SUP_STOPPED);
	sup_instance_free(inst);
}

static bool one_exit(void *arg) { return ((struct events *)arg)->exits >= 1; }
static bool three_exits(void *arg) { return ((struct events *)arg)->exits >= 3; }

/* A process that stayed up for stable_ms resets the backoff and the count
 * of consecutive crashes: it is restarted after the initial delay forever. */
static void test_backoff_resets(void **state)
{
	struct fixture *f = *state;
	struct events ev = { 0 };
	struct sup_instance *inst;
	struct sup_spec spec;

	spec_for(f, &spec, "stable", "sleep 0.15; exit 1", NULL, 0);
	spec.restart.max_restarts = 1;
	spec.restart.backoff_initial_ms = 20;
	spec.restart.stable_ms = 100;
	assert_int_equal(start(f, &spec, &ev, &inst), 0);
	assert_true(run_until(f, three_exits, &ev, GUARD_MS));
	assert_int_equal(ev.give_ups, 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(ev.exit[i].restart_in_ms, 20);
		assert_true(ev.exit[i].uptime_ms >= 100);
	}
	/* Stop it wherever it is (running or waiting to restart). */
	assert_int_equal(sup_instance_stop(inst, on_done_cb), 0);
	assert_true(run_until(f, stopped, &ev, GUARD_MS));
	assert_int_equal(sup_instance_state(inst), SUP_STOPPED);
	sup_instance_free(inst);
}

/* A group that ignores SIGTERM is SIGKILLed when the grace expires; the
 * done callback may free the instance. */
static void test_stop_escalates(void **state)
{
	struct fixture *f = *state;
	char log[PATH_MAX];
	struct events ev = { .free_in_done = true };
	struct sup_instance *inst;
	struct sup_spec spec;
	struct file_has ready = { log, "ready\n" };
	uint64_t t0;

	spec_for(f, &spec, "stubborn", "trap '' TERM; echo ready; while :; do sleep 0.05; done", log, sizeof(log));
	spec.stop_grace_ms = 300;
	assert_int_equal(start(f, &spec, &ev, &inst), 0);
	wait_for_text(f, &ready);
	t0 = time_now_ms();
	assert_int_equal(sup_instance_stop(inst, on_done_cb), 0);
	assert_true(run_until(f, stopped, &ev, GUARD_MS));
	assert_int_equal(ev.done.signal, SIGKILL);
	assert_true(ev.done.requested);
	if (ev.done_ms - t0 < 295 || ev.done_ms - t0 > 2000)
		fail_msg("stopped after %" PRIu64 " ms, want about 300", ev.done_ms - t0);
	assert_int_equal(ev.exits, 0);
}

/* Stopping an instance that waits for its restart cancels the restart and
 * completes from the loop. */
static void test_stop_during_backoff(void **state)
{
	struct fixture *f = *state;
	struct events ev = { 0 };
	struct sup_instance *inst;
	struct sup_spec spec;

	spec_for(f, &spec, "waiting", "exit 2", NULL, 0);
	spec.restart.backoff_initial_ms = 3000;
	assert_int_equal(start(f, &spec, &ev, &inst), 0);
	assert_true(run_until(f, one_exit, &ev, GUARD_MS));
	run_for(f, 50);
	assert_int_equal(ev.exits, 1);
	assert_int_equal(sup_instance_state(inst), SUP_BACKOFF);
	assert_int_equal(ev.exit[0].restart_in_ms, 3000);
	assert_int_equal(sup_instance_stop(inst, on_done_cb), 0);
	assert_int_equal(ev.dones, 0);
	assert_int_equal(sup_instance_state(inst), SUP_STOPPED);
	assert_true(run_until(f, stopped, &ev, GUARD_MS));
	assert_int_equal(ev.done.code, 2); /* the last exit */
	assert_int_equal(ev.restarts, 0);
	sup_instance_free(inst);
}

struct rotation {
	char log[PATH_MAX];
	pid_t pid;
};

/* The chatty part is over (the shell exec'd sleep) and the log thread has
 * brought the log back under its cap. */
static bool rotation_settled(void *arg)
{
	struct rotation *rot = arg;
	char path[64], *comm;
	bool done;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)rot->pid);
	comm = slurp(path);
	done = comm && strcmp(comm, "sleep\n") == 0;
	free(comm);
	return done && file_size(rot->log) >= 0 && file_size(rot->log) < 4096;
}

/* Every line of s is "line N ..." with N increasing, or "done"; returns the
 * last N (-1 if none) and checks N > after. */
static int check_lines(const char *s, int after)
{
	int last = after;

	for (const char *p = s; *p;) {
		const char *nl = strchr(p, '\n');
		int n;
		if (!nl)
			fail_msg("partial line at the end: \"%.40s\"", p);
		if (strncmp(p, "done\n", 5) != 0) {
			if (sscanf(p, "line %d ", &n) != 1 || nl - p != 59)
				fail_msg("bad line \"%.*s\"", (int)(nl - p), p);
			if (n <= last)
				fail_msg("line %d after line %d", n, last);
			last = n;
		}
		p = nl + 1;
	}
	return last;
}

/* A chatty child (about 100 KB in bursts) with a 4 KiB cap and 2 files
 * kept: LOG, LOG.1, LOG.2 hold whole lines in order, nothing beyond LOG.2. */
static void test_log_rotation(void **state)
{
	struct fixture *f = *state;
	struct rotation rot;
	char path[PATH_MAX + 8], *s;
	struct events ev = { 0 };
	struct sup_instance *inst;
	struct sup_spec spec;
	int last;

	/* 40 bursts of 40 lines of 60 bytes (with the newline) */
	spec_for(f, &spec, "chatty",
		 "i=0; while [ $i -lt 1600 ]; do "
		 "printf 'line %05d %048d\\n' $i 0; i=$((i+1)); "
		 "if [ $((i % 40)) -eq 0 ]; then sleep 0.01; fi; done; echo done; exec sleep 30",
		 rot.log, sizeof(rot.log));
	spec.log_max_bytes = 4096;
	spec.log_keep = 2;
	assert_int_equal(start(f, &spec, &ev, &inst), 0);
	rot.pid = sup_instance_pid(inst);
	assert_true(run_until(f, rotation_settled, &rot, GUARD_MS));

	snprintf(path, sizeof(path), "%s.3", rot.log);
	assert_int_equal(file_size(path), -1);
	last = -1;
	for (int i = 2; i >= 0; i--) {
		off_t size;
		if (i)
			snprintf(path, sizeof(path), "%s.%d", rot.log, i);
		else
			snprintf(path, sizeof(path), "%s", rot.log);
		size = file_size(path);
		if (i && (size < 4096 || size > 32768))
			fail_msg("%s: %lld bytes, want 4096..32768 (rotated at the cap)", path, (long long)size);
		s = slurp(path);
		assert_non_null(s);
		last = check_lines(s, last);
		free(s);
	}
	assert_true(last >= 1500); /* the newest lines are in the newest files */

	assert_int_equal(sup_instance_stop(inst, on_done_cb), 0);
	assert_true(run_until(f, stopped, &ev, GUARD_MS));
	sup_instance_free(inst);
}

/* Start `sleep 30` the way an earlier daemon would have, in its own session,
 * and let it be reparented to init (double fork), so that it is not our
 * child, as after a daemon crash.  Returns its pid. */
static pid_t start_orphan(const char *log)
{
	int p[2];
	pid_t pid, grandchild = -1;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		pid_t g = fork();
		if (g == 0) {
			int fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
			setsid();
			if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
				_exit(127);
			execl("/bin/sh", "sh", "-c", "echo adopted-before; exec sleep 30", (char *)NULL);
			_exit(127);
		}
		if (write(p[1], &g, sizeof(g)) != sizeof(g))
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	if (pid > 0) {
		if (read(p[0], &grandchild, sizeof(grandchild)) != sizeof(grandchild))
			grandchild = -1;
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	close(p[0]);
	return grandchild;
}

static pid_t getppid_of(pid_t pid)
{
	char path[64], *s, *p;
	int ppid = -1;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	s = slurp(path);
	p = s ? strrchr(s, ')') : NULL;
	if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
		ppid = -1;
	free(s);
	return ppid;
}

static bool one_restart(void *arg) { return ((struct events *)arg)->restarts >= 1; }

/* Adoption checks the start time, then supervises the process: it is
 * restarted from the spec when it dies and stopped like any other. */
static void test_adopt(void **state)
{
	struct fixture *f = *state;
	char log[PATH_MAX];
	struct events ev = { 0 };
	struct sup_instance *inst = NULL;
	struct sup_spec spec;
	struct file_has before = { log, "adopted-before\n" }, after = { log, "adopted-after\n" };
	uint64_t starttime;
	pid_t pid, gone, pid2;
	bool ours;

	spec_for(f, &spec, "adoptee", "echo adopted-after; exec sleep 30", log, sizeof(log));
	pid = start_orphan(log);
	assert_true(pid > 0);
	track(pid);
	wait_for_text(f, &before);
	assert_int_equal(sup_pid_starttime(pid, &starttime), 0);
	ours = getppid_of(pid) == getpid(); /* only if we are a child subreaper */

	assert_int_equal(sup_instance_adopt(f->sup, pid, starttime + 1, &spec, &callbacks, &ev, &inst), -ESTALE);
	assert_null(inst);
	gone = fork();
	if (gone == 0)
		_exit(0);
	while (waitpid(gone, NULL, 0) < 0 && errno == EINTR)
		;
	assert_int_equal(sup_instance_adopt(f->sup, gone, starttime, &spec, &callbacks, &ev, &inst), -ESRCH);
	assert_int_equal(sup_instance_adopt(f->sup, pid, starttime, &spec, &callbacks, &ev, &inst), 0);
	assert_int_equal(sup_instance_state(inst), SUP_RUNNING);
	assert_int_equal(sup_instance_pid(inst), pid);
	assert_int_equal(sup_instance_starttime(inst), starttime);

	/* It dies: not our child, so its status is unknown; restarted from spec. */
	kill(pid, SIGKILL);
	assert_true(run_until(f, one_restart, &ev, GUARD_MS));
	assert_int_equal(ev.exits, 1);
	assert_int_equal(ev.exit[0].known, ours);
	assert_int_equal(ev.exit[0].pid, pid);
	pid2 = sup_instance_pid(inst);
	assert_true(pid2 != pid);
	wait_for_text(f, &after);
	assert_int_equal(getpgid(pid2), pid2);

	assert_int_equal(sup_instance_stop(inst, on_done_cb), 0);
	assert_true(run_until(f, stopped, &ev, GUARD_MS));
	assert_true(ev.done.known);
	assert_int_equal(ev.done.signal, SIGTERM);
	sup_instance_free(inst);
}

/* Freeing an instance with a live process leaves the process running (as a
 * daemon re-exec would); it can be adopted again and stopped. */
static void test_free_then_adopt(void **state)
{
	struct fixture *f = *state;
	struct events ev = { 0 };
	struct sup_instance *inst;
	struct sup_spec spec;
	uint64_t starttime;
	pid_t pid;

	spec_for(f, &spec, "survivor", "exec sleep 30", NULL, 0);
	assert_int_equal(start(f, &spec, &ev, &inst), 0);
	pid = sup_instance_pid(inst);
	starttime = sup_instance_starttime(inst);
	sup_instance_free(inst);
	run_for(f, 20); /* the loop releases the memory; the process lives on */
	assert_int_equal(kill(pid, 0), 0);
	assert_int_equal(sup_instance_adopt(f->sup, pid, starttime, &spec, &callbacks, &ev, &inst), 0);
	assert_int_equal(sup_instance_stop(inst, on_done_cb), 0);
	assert_true(run_until(f, stopped, &ev, GUARD_MS));
	assert_int_equal(ev.done.pid, pid);
	assert_int_equal(ev.done.signal, SIGTERM);
	assert_int_equal(ev.exits, 0);
	sup_instance_free(inst);
}

/* Failures in the child before exec are reported with their stage. */
static void test_spawn_failures(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *id, *program, *cwd, *log, *stage;
		int error;
	} cases[] = {
		{ "noexec", "/nonexistent/program", NULL, NULL, "exec", ENOENT },
		{ "nopath", "no-such-program-xyz", NULL, NULL, "exec", ENOENT },
		{ "nocwd", "/bin/true", "/nonexistent/dir", NULL, "chdir", ENOENT },
		{ "nolog", "/bin/true", NULL, "/nonexistent/dir/log", "open log", ENOENT },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *const argv[] = { (char *)cases[i].program, NULL };
		struct events ev = { 0 };
		struct sup_instance *inst;
		struct sup_spec spec;

		spec_for(f, &spec, cases[i].id, NULL, NULL, 0);
		spec.argv = argv;
		spec.cwd = cases[i].cwd;
		spec.log_path = cases[i].log;
		spec.restart.max_restarts = 0;
		assert_int_equal(start(f, &spec, &ev, &inst), 0);
		assert_true(run_until(f, gave_up, &ev, GUARD_MS));
		assert_int_equal(ev.give_up.code, 127);
		assert_int_equal(ev.give_up.spawn_error, cases[i].error);
		assert_non_null(ev.give_up.spawn_stage);
		assert_string_equal(ev.give_up.spawn_stage, cases[i].stage);
		sup_instance_free(inst);
	}
}

/* Specs that cannot be run are refused before anything is started. */
static void test_invalid_specs(void **state)
{
	struct fixture *f = *state;
	char *const argv[] = { "/bin/true", NULL }, *const empty[] = { NULL };
	struct events ev = { 0 };
	struct sup_instance *inst = NULL, *dup = NULL;
	struct sup_spec spec;

	spec_for(f, &spec, "bad", NULL, NULL, 0);
	assert_int_equal(sup_instance_start(f->sup, &spec, &callbacks, &ev, &inst), -EINVAL); /* neither */
	spec.command = "true";
	spec.argv = argv;
	assert_int_equal(sup_instance_start(f->sup, &spec, &callbacks, &ev, &inst), -EINVAL); /* both */
	spec.command = NULL;
	spec.argv = empty;
	assert_int_equal(sup_instance_start(f->sup, &spec, &callbacks, &ev, &inst), -EINVAL);
	spec.argv = argv;
	spec.id = "../escape";
	assert_int_equal(sup_instance_start(f->sup, &spec, &callbacks, &ev, &inst), -EINVAL);
	spec.id = "..";
	assert_int_equal(sup_instance_start(f->sup, &spec, &callbacks, &ev, &inst), -EINVAL);
	spec.id = "";
	assert_int_equal(sup_instance_start(f->sup, &spec, &callbacks, &ev, &inst), -EINVAL);
	spec.id = "ok";
	spec.log_keep = 101;
	assert_int_equal(sup_instance_start(f->sup, &spec, &callbacks, &ev, &inst), -EINVAL);
	assert_null(inst);

	spec_for(f, &spec, "twice", "exec sleep 30", NULL, 0);
	assert_int_equal(start(f, &spec, &ev, &inst), 0);
	assert_int_equal(sup_instance_start(f->sup, &spec, &callbacks, &ev, &dup), -EEXIST);
	assert_null(dup);
	assert_int_equal(sup_instance_stop(inst, on_done_cb), 0);
	assert_true(run_until(f, stopped, &ev, GUARD_MS));
	sup_instance_free(inst);
}

/* The child is moved into its cgroup before it execs (held on a pipe until
 * the parent has written cgroup.procs), whatever controllers the tree has. */
static void test_cgroup_placement(struct fixture *f, const char *mount)
{
	char root[PATH_MAX], dir[PATH_MAX + 16], log[PATH_MAX + 16], want[PATH_MAX + 16], *s;
	char *const argv[] = { "/bin/sh", "-c", "cat /proc/$$/cgroup", NULL };
	struct sup_spec spec;
	struct sup_spawned sp;
	siginfo_t si = { 0 };

	snprintf(root, sizeof(root), "%s/cutover-test-%d", mount, (int)getpid());
	snprintf(f->cgroup_root, sizeof(f->cgroup_root), "%s", root);
	snprintf(dir, sizeof(dir), "%s/placed", root);
	snprintf(log, sizeof(log), "%s/placed.log", f->dir);
	assert_int_equal(mkdir(root, 0755), 0);
	assert_int_equal(mkdir(dir, 0755), 0);
	sup_spec_init(&spec);
	spec.id = "placed";
	spec.argv = argv;
	spec.log_path = log;
	assert_int_equal(sup_spawn(&spec, dir, NULL, &sp), 0);
	track(sp.pid);
	assert_null(sp.warning);
	if (poll(&(struct pollfd){ .fd = sp.pidfd, .events = POLLIN }, 1, GUARD_MS) != 1) {
		kill(sp.pid, SIGKILL); /* reaped by the teardown */
		fail_msg("the child held for its cgroup did not finish");
	}
	assert_int_equal(waitid(P_PIDFD, (id_t)sp.pidfd, &si, WEXITED), 0);
	assert_int_equal(si.si_code, CLD_EXITED);
	assert_int_equal(si.si_status, 0);
	close(sp.pidfd);
	close(sp.status_fd);
	s = slurp(log);
	assert_non_null(s);
	snprintf(want, sizeof(want), "0::/cutover-test-%d/placed\n", (int)getpid());
	if (!strstr(s, want))
		fail_msg("/proc/PID/cgroup of the child: %s, want a line %s", s, want);
	free(s);
	assert_int_equal(sup_cgroup_remove(dir), 0);
	assert_int_equal(rmdir(root), 0);
}

/* cgroup limits that cannot be applied do not fail the start; a message
 * says why.  Where a cgroup v2 tree is writable (root on a cgroup2 host),
 * the process is really placed in its cgroup, which goes with it. */
static void test_cgroup(void **state)
{
	struct fixture *f = *state;
	char root[PATH_MAX + 16], dir[PATH_MAX + 32], path[PATH_MAX + 48], want[64], *s;
	struct events ev = { 0 };
	struct sup_instance *inst;
	struct sup_spec spec;
	const char *warning, *mounts[] = { "/sys/fs/cgroup", "/sys/fs/cgroup/unified" };
	struct statfs fs;

	/* A root whose parent is not a cgroup2 mount. */
	snprintf(root, sizeof(root), "%s/cg/cutover", f->dir);
	assert_int_equal(supervisor_new(&f->loop, root, &f->sup2), 0);
	spec_for(f, &spec, "limited", "exit 0", NULL, 0);
	spec.restart.max_restarts = 0;
	spec.cgroup.memory_max = 64u << 20;
	spec.cgroup.cpu_max_percent = 50;
	assert_int_equal(sup_instance_start(f->sup2, &spec, &callbacks, &ev, &inst), 0);
	track(sup_instance_pid(inst));
	warning = sup_instance_warning(inst);
	assert_non_null(warning);
	if (!strstr(warning, "cgroup v2 memory/cpu limits not applied: ") ||
	    !strstr(warning, "/cg is not a cgroup2 mount"))
		fail_msg("warning: %s", warning);
	assert_true(run_until(f, gave_up, &ev, GUARD_MS));
	sup_instance_free(inst);
	f->sup2 = supervisor_free(f->sup2);

	/* The real thing, where possible. */
	for (size_t i = 0; i < sizeof(mounts) / sizeof(mounts[0]); i++) {
		struct events ev2 = { 0 };
		struct stat st;

		if (statfs(mounts[i], &fs) < 0 || fs.f_type != CGROUP2_SUPER_MAGIC || access(mounts[i], W_OK) < 0)
			continue;
		snprintf(root, sizeof(root), "%s/cutover-test-%d", mounts[i], (int)getpid());
		snprintf(f->cgroup_root, sizeof(f->cgroup_root), "%s", root);
		assert_int_equal(supervisor_new(&f->loop, root, &f->sup2), 0);
		spec_for(f, &spec, "limited", "exec sleep 30", NULL, 0);
		spec.cgroup.memory_max = 64u << 20;
		assert_int_equal(sup_instance_start(f->sup2, &spec, &callbacks, &ev2, &inst), 0);
		track(sup_instance_pid(inst));
		warning = sup_instance_warning(inst);
		snprintf(dir, sizeof(dir), "%s/limited", root);
		if (warning) {
			if (!strstr(warning, "cgroup v2 memory limit not applied: "))
				fail_msg("warning: %s", warning);
			assert_int_equal(stat(dir, &st), -1);
		} else {
			snprintf(path, sizeof(path), "%s/memory.max", dir);
			s = slurp(path);
			assert_non_null(s);
			assert_string_equal(s, "67108864\n");
			free(s);
			snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
			s = slurp(path);
			assert_non_null(s);
			snprintf(want, sizeof(want), "%d\n", (int)sup_instance_pid(inst));
			assert_string_equal(s, want);
			free(s);
		}
		assert_int_equal(sup_instance_stop(inst, on_done_cb), 0);
		assert_true(run_until(f, stopped, &ev2, GUARD_MS));
		sup_instance_free(inst);
		f->sup2 = supervisor_free(f->sup2);
		assert_int_equal(stat(dir, &st), -1); /* removed with the instance */
		rmdir(root);
		test_cgroup_placement(f, mounts[i]);
	}
}

static void test_helpers(void **state)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	uint64_t a = 0, b = 0;
	uint16_t port = 0;
	int fd;

	(void)state;
	assert_int_equal(sup_free_port(&port), 0);
	assert_true(port > 0);
	sa.sin_port = htons(port);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);

	assert_int_equal(sup_pid_starttime(getpid(), &a), 0);
	assert_int_equal(sup_pid_starttime(getpid(), &b), 0);
	assert_true(a > 0);
	assert_int_equal(a, b);
	b = 12345;
	assert_int_equal(sup_pid_starttime(-5, &b), -ESRCH);
	assert_int_equal(b, 12345);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_exit_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_and_cwd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_rlimits_fds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_killed_with_leader, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backoff_resets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_escalates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_during_backoff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_rotation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_adopt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_then_adopt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spawn_failures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_specs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cgroup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_helpers, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

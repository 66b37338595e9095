/* test_relay.c - unit tests of the supervisor's secrets: the secret
 * environment and the log relay (src/supervisor/relay.c, spawn.c), with
 * real processes on a real loop (fixture in supervisor_fixture.h).
 *
 * The relay is /proc/self/exe run as `... log-relay ID`: here that is
 * this program, whose main() runs sup_relay_main() for that verb as
 * cutover's does.  The instances print their secrets from their
 * environment, split across writes with a pause between, on stdout and
 * stderr; the log files must hold only [redacted:NAME].  The relay's
 * cmdline and environment must hold no value, it must not be our child,
 * it must end when the instance is stopped, a restart must get a new one,
 * it must go on logging when the supervisor is gone, ignore SIGHUP and
 * SIGINT, and flush what it held back on SIGTERM.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <poll.h>
#include <sys/pidfd.h>
#include <cmocka.h>
#include <sodium.h>

#include "loop/loop.h"
#include "secrets/redact.h"
#include "supervisor/supervisor.h"
#include "supervisor/supervisor-internal.h"
#include "unit.h"
#include "supervisor_fixture.h"

#define TOKEN "tok-0123456789abcdef"
#define QUOTED "pa\"ss"

static struct redactor *redactor_of(const char *name, const char *value, ...)
{
	struct redactor *r;
	va_list ap;

	assert_int_equal(redactor_new(&r), 0);
	va_start(ap, value);
	while (name) {
		assert_int_equal(redactor_add(r, name, (const uint8_t *)value, strlen(value)), 0);
		name = va_arg(ap, const char *);
		if (name)
			value = va_arg(ap, const char *);
	}
	va_end(ap);
	return r;
}

/* /proc/PID/FILE (cmdline, environ) read whole; NULL if unreadable. */
static char *proc_file(pid_t pid, const char *file, size_t *ret_len)
{
	char path[64], *buf = malloc(65536);
	ssize_t n;
	int fd;

	assert_non_null(buf);
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = fd < 0 ? -1 : read(fd, buf, 65535);
	if (fd >= 0)
		close(fd);
	if (n < 0) {
		free(buf);
		return NULL;
	}
	*ret_len = (size_t)n;
	return buf;
}

static bool holds(const char *buf, size_t len, const char *needle)
{
	return memmem(buf, len, needle, strlen(needle)) != NULL;
}

/* The relay pid holds no value in its cmdline or environment, runs
 * `log-relay ID`, leads its own session and is not our child. */
static void check_relay_process(pid_t relay, const char *id)
{
	char want[128], *s;
	size_t len;
	int ppid = -1;

	assert_true(relay > 0);
	s = proc_file(relay, "cmdline", &len);
	assert_non_null(s);
	snprintf(want, sizeof(want), "cutover%clog-relay%c%s", 0, 0, id);
	assert_int_equal(len, strlen("cutover") + strlen("log-relay") + strlen(id) + 3);
	assert_memory_equal(s, want, len - 1);
	free(s);
	s = proc_file(relay, "environ", &len);
	if (s) { /* unreadable is no leak either */
		assert_int_equal(len, 0);
		free(s);
	}
	assert_int_equal(getsid(relay), relay);
	s = proc_file(relay, "stat", &len);
	assert_non_null(s);
	s[len] = '\0';
	assert_int_equal(sscanf(strrchr(s, ')') + 1, " %*c %d", &ppid), 1);
	assert_int_not_equal(ppid, getpid());
	free(s);
}

struct gone {
	int pidfd;
};

static bool process_gone(void *arg)
{
	struct gone *g = arg;

	return poll(&(struct pollfd){ .fd = g->pidfd, .events = POLLIN }, 1, 0) == 1;
}

/* Run the loop until the relay pid has exited. */
static void wait_relay_gone(struct fixture *f, pid_t relay)
{
	struct gone g = { .pidfd = pidfd_open(relay, 0) };

	if (g.pidfd < 0) {
		assert_int_equal(errno, ESRCH); /* already gone */
		return;
	}
	if (!run_until(f, process_gone, &g, GUARD_MS))
		fail_msg("the relay %d is still running", (int)relay);
	close(g.pidfd);
}

static bool relay_known(void *arg)
{
	return sup_instance_relay_pid(arg) > 0;
}

/* Run the loop until inst's relay pid is known (it comes from the relay
 * itself, once it runs); returns it. */
static pid_t wait_relay_pid(struct fixture *f, struct sup_instance *inst)
{
	if (!run_until(f, relay_known, inst, GUARD_MS))
		fail_msg("the relay of %s never sent its pid", sup_instance_id(inst));
	return sup_instance_relay_pid(inst);
}

/* Stop inst, wait for done, free it. */
static void stop_and_free(struct fixture *f, struct sup_instance *inst, struct events *ev)
{
	assert_int_equal(sup_instance_stop(inst, on_done_cb), 0);
	assert_true(run_until(f, stopped, ev, GUARD_MS));
	sup_instance_free(inst);
}

/* The log at path holds no value (raw or as the instance escaped it). */
static void check_no_value(const char *path)
{
	char *s = slurp(path);

	assert_non_null(s);
	if (strstr(s, TOKEN) || strstr(s, QUOTED) || strstr(s, "pa\\\"ss") || strstr(s, "0123456789"))
		fail_msg("%s holds a value: \"%s\"", path, s);
	free(s);
}

/* --- tests --- */

/* secret_env is added to env (a secret wins over a variable of the same
 * name), at the first start and at a restart, from the supervisor's own
 * copy; without redact there is no relay and the log holds the values. */
static void test_secret_env(void **state)
{
	struct fixture *f = *state;
	char log[PATH_MAX], secret_x[] = "X=" TOKEN, *s;
	char *env[] = { "PATH=/usr/bin:/bin", "X=plain", "PLAIN=p", NULL };
	char *secret_env[] = { secret_x, "Y=" QUOTED, NULL }, *bad[] = { "NOEQUALS", NULL };
	struct file_has fh = { log, "X=" TOKEN " Y=" QUOTED " PLAIN=p\nX=" TOKEN };
	struct events ev = { 0 };
	struct sup_instance *inst;
	struct sup_spec spec;

	spec_for(f, &spec, "env", "echo \"X=$X Y=$Y PLAIN=$PLAIN\"; exit 1", log, sizeof(log));
	spec.env = env;
	spec.secret_env = secret_env;
	spec.restart.max_restarts = 1;
	spec.restart.backoff_initial_ms = 10;
	assert_int_equal(start(f, &spec, &ev, &inst), 0);
	sodium_memzero(secret_x, sizeof(secret_x)); /* the caller's copy may go at once */
	assert_int_equal(sup_instance_relay_pid(inst), 0);
	assert_true(run_until(f, gave_up, &ev, GUARD_MS));
	wait_for_text(f, &fh);
	s = slurp(log);
	assert_null(strstr(s, "X=plain"));
	free(s);
	sup_instance_free(inst);

	spec_for(f, &spec, "bad", "true", NULL, 0);
	spec.secret_env = bad;
	assert_int_equal(sup_instance_start(f->sup, &spec, &callbacks, &ev, &inst), -EINVAL);
	bad[0] = "=value";
	assert_int_equal(sup_instance_start(f->sup, &spec, &callbacks, &ev, &inst), -EINVAL);
}

/* A value split across writes, on stdout and stderr, raw and escaped,
 * leaves only [redacted:NAME] in the log; the relay holds no value in
 * its cmdline or environment, and ends when the instance is stopped. */
static void test_relay_redacts(void **state)
{
	struct fixture *f = *state;
	char log[PATH_MAX], *s, *secret_env[] = { "TOKEN=" TOKEN, "Q=" QUOTED, NULL };
	struct file_has fh = { log, "done\n" };
	struct events ev = { 0 };
	struct sup_instance *inst;
	struct sup_spec spec;
	size_t len;
	pid_t relay;

	spec_for(f, &spec, "redacted",
		 "printf 'out %s' \"${TOKEN%????????}\"; sleep 0.1; printf '%s\\n' \"${TOKEN#????????????}\"; "
		 "printf 'err %s' \"${TOKEN%??????????????}\" >&2; sleep 0.1; printf '%s\\n' \"${TOKEN#??????}\" >&2; "
		 "printf '{\"q\":\"pa\\\\'; sleep 0.1; printf '\"ss\"}\\n'; "
		 "printf 'not a token: tok-0123\\n'; echo done; exec sleep 30",
		 log, sizeof(log));
	spec.secret_env = secret_env;
	spec.redact = redactor_of("TOKEN", TOKEN, "Q", QUOTED, NULL);
	assert_int_equal(start(f, &spec, &ev, &inst), 0);
	redactor_free((struct redactor *)spec.redact); /* copied */
	wait_for_text(f, &fh); /* the instance runs once the relay is ready */
	relay = sup_instance_relay_pid(inst); /* known by then: sent before ready */
	check_relay_process(relay, "redacted");
	s = proc_file(sup_instance_pid(inst), "cmdline", &len);
	assert_non_null(s);
	assert_false(holds(s, len, TOKEN));
	free(s);
	s = slurp(log);
	assert_string_equal(s, "out [redacted:TOKEN]\nerr [redacted:TOKEN]\n{\"q\":\"[redacted:Q]\"}\n"
			       "not a token: tok-0123\ndone\n");
	free(s);
	stop_and_free(f, inst, &ev);
	wait_relay_gone(f, relay);
	check_no_value(log);
}

struct relays {
	struct events ev;
	pid_t pid[8];
	int n;
};

/* The relay of the process that just ended: known, since it ran. */
static void record_relay(struct sup_instance *inst, struct relays *rs)
{
	if (rs->n < 8)
		rs->pid[rs->n++] = sup_instance_relay_pid(inst);
}

static void on_restart_relay(struct sup_instance *inst, void *data)
{
	on_restart_cb(inst, &((struct relays *)data)->ev);
}

static void on_exit_relay(struct sup_instance *inst, const struct sup_exit *exit, void *data)
{
	record_relay(inst, data);
	on_exit_cb(inst, exit, &((struct relays *)data)->ev);
}

static void on_give_up_relay(struct sup_instance *inst, const struct sup_exit *last, void *data)
{
	record_relay(inst, data);
	on_give_up_cb(inst, last, &((struct relays *)data)->ev);
}

/* Each restart of a crashing instance goes through a relay of its own;
 * each ends with its process. */
static void test_relay_restart(void **state)
{
	static const struct sup_callbacks cbs = {
		.on_exit = on_exit_relay, .on_restart = on_restart_relay, .on_give_up = on_give_up_relay,
	};
	struct fixture *f = *state;
	char log[PATH_MAX], *s, *secret_env[] = { "TOKEN=" TOKEN, NULL };
	struct relays rs = { 0 };
	struct sup_instance *inst;
	struct sup_spec spec;
	const char *p;
	int lines = 0;

	spec_for(f, &spec, "crashing", "printf 'crash %s' \"${TOKEN%??????????}\"; sleep 0.05; "
					"printf '%s\\n' \"${TOKEN#??????????}\"; exit 3", log, sizeof(log));
	spec.secret_env = secret_env;
	spec.redact = redactor_of("TOKEN", TOKEN, NULL);
	spec.restart.max_restarts = 2;
	spec.restart.backoff_initial_ms = 10;
	assert_int_equal(sup_instance_start(f->sup, &spec, &cbs, &rs, &inst), 0);
	redactor_free((struct redactor *)spec.redact);
	track(sup_instance_pid(inst));
	assert_true(run_until(f, gave_up, &rs.ev, GUARD_MS));
	assert_int_equal(rs.ev.restarts, 2);
	assert_int_equal(rs.n, 3);
	for (int i = 0; i < rs.n; i++) {
		assert_true(rs.pid[i] > 0);
		for (int j = 0; j < i; j++)
			assert_int_not_equal(rs.pid[i], rs.pid[j]);
		wait_relay_gone(f, rs.pid[i]);
	}
	s = slurp(log);
	for (p = s; (p = strstr(p, "crash [redacted:TOKEN]\n")); p++)
		lines++;
	if (lines != 3)
		fail_msg("the log holds \"%s\", want 3 redacted crashes", s);
	free(s);
	check_no_value(log);
	sup_instance_free(inst);
}

static bool log_has_lines(void *arg)
{
	struct file_has *fh = arg;
	char *s = slurp(fh->path);
	int n = 0;

	for (const char *p = s; p && (p = strstr(p, fh->needle)); p++)
		n++;
	free(s);
	return n >= 3;
}

/* With the supervisor gone (as after a daemon crash), the instance and its
 * relay go on logging, redacted; the relay ignores SIGHUP and SIGINT, and
 * SIGTERM ends it after it wrote out what it held back. */
static void test_relay_outlives(void **state)
{
	struct fixture *f = *state;
	char log[PATH_MAX], *s, *secret_env[] = { "TOKEN=" TOKEN, NULL };
	struct file_has fh = { log, "tick [redacted:TOKEN]\n" };
	struct events ev = { 0 };
	struct sup_instance *inst;
	struct sup_spec spec;
	pid_t pid, relay;
	off_t size;

	spec_for(f, &spec, "outlives", "trap '' PIPE; while :; do printf 'tick %s\\n' \"$TOKEN\"; sleep 0.05; done",
		 log, sizeof(log));
	spec.secret_env = secret_env;
	spec.redact = redactor_of("TOKEN", TOKEN, NULL);
	assert_int_equal(start(f, &spec, &ev, &inst), 0);
	redactor_free((struct redactor *)spec.redact);
	pid = sup_instance_pid(inst);
	relay = wait_relay_pid(f, inst);
	sup_instance_free(inst);
	f->sup = supervisor_free(f->sup);
	assert_int_equal(truncate(log, 0), 0);
	assert_true(run_until(f, log_has_lines, &fh, GUARD_MS));
	check_no_value(log);

	/* hang-ups and interrupts do not cut the log short */
	assert_int_equal(kill(relay, SIGHUP), 0);
	assert_int_equal(kill(relay, SIGINT), 0);
	assert_int_equal(kill(relay, SIGPIPE), 0);
	size = file_size(log);
	run_for(f, 150);
	assert_true(file_size(log) > size);
	check_relay_process(relay, "outlives");

	/* SIGTERM: the relay ends; the instance (our child, unsupervised now)
	 * is ended by hand */
	assert_int_equal(kill(relay, SIGTERM), 0);
	wait_relay_gone(f, relay);
	kill(-pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	s = slurp(log);
	assert_non_null(strstr(s, "tick [redacted:TOKEN]\n"));
	free(s);
	check_no_value(log);
}

/* The "daemon": a child of ours with a loop and a supervisor of its own
 * that starts a redacted instance, sends its pid and its relay's on fd,
 * and waits to be killed. */
static _Noreturn void daemon_run(const char *dir, int fd)
{
	char log[PATH_MAX + 16], *secret_env[] = { "TOKEN=" TOKEN, NULL };
	struct supervisor *sup;
	struct sup_instance *inst;
	struct sup_spec spec;
	struct loop loop;
	pid_t pids[2];

	snprintf(log, sizeof(log), "%s/killed.log", dir);
	sup_spec_init(&spec);
	spec.id = "killed";
	spec.command = "while :; do printf 'tick %s\\n' \"$TOKEN\"; sleep 0.05; done";
	spec.log_path = log;
	spec.secret_env = secret_env;
	spec.redact = redactor_of("TOKEN", TOKEN, NULL);
	if (loop_init(&loop) < 0 || supervisor_new(&loop, NULL, &sup) < 0 ||
	    sup_instance_start(sup, &spec, NULL, NULL, &inst) < 0)
		_exit(1);
	pids[0] = sup_instance_pid(inst);
	while (!(pids[1] = sup_instance_relay_pid(inst)))
		usleep(1000);
	if (write(fd, pids, sizeof(pids)) != sizeof(pids))
		_exit(1);
	for (;;)
		pause();
}

/* kill -9 of the process that runs the supervisor: the instance and its
 * relay keep running and logging, redacted. */
static void test_relay_daemon_killed(void **state)
{
	struct fixture *f = *state;
	char log[PATH_MAX + 16];
	struct file_has fh = { log, "tick [redacted:TOKEN]\n" };
	pid_t pids[2], daemon;
	int p[2];

	snprintf(log, sizeof(log), "%s/killed.log", f->dir);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	daemon = fork();
	assert_true(daemon >= 0);
	if (daemon == 0)
		daemon_run(f->dir, p[1]);
	close(p[1]);
	track(daemon);
	assert_int_equal(read(p[0], pids, sizeof(pids)), sizeof(pids));
	close(p[0]);
	track(pids[0]);
	assert_true(pids[1] > 0);
	assert_int_equal(kill(daemon, SIGKILL), 0);
	assert_int_equal(waitpid(daemon, NULL, 0), daemon);

	assert_int_equal(truncate(log, 0), 0);
	assert_true(run_until(f, log_has_lines, &fh, GUARD_MS));
	check_no_value(log);
	check_relay_process(pids[1], "killed");
	assert_int_equal(kill(pids[0], 0), 0);

	/* the instance gone (its group: the shell and its sleep), the relay ends */
	assert_int_equal(kill(-pids[0], SIGKILL), 0);
	wait_relay_gone(f, pids[1]);
	check_no_value(log);
}

/* SIGTERM flushes what the relay held back (a value's beginning, which
 * alone is no value); so does EOF. */
static void test_relay_flush(void **state)
{
	struct fixture *f = *state;
	char log[PATH_MAX], *s, *secret_env[] = { "TOKEN=" TOKEN, NULL };
	struct events ev = { 0 };
	struct sup_instance *inst;
	struct sup_spec spec;
	pid_t relay;

	spec_for(f, &spec, "flush", "printf 'held tok-0123'; exec sleep 30", log, sizeof(log));
	spec.secret_env = secret_env;
	spec.redact = redactor_of("TOKEN", TOKEN, NULL);
	assert_int_equal(start(f, &spec, &ev, &inst), 0);
	redactor_free((struct redactor *)spec.redact);
	relay = wait_relay_pid(f, inst);
	wait_for_text(f, &(struct file_has){ log, "held " });
	run_for(f, 100);
	s = slurp(log);
	assert_string_equal(s, "held "); /* "tok-0123" may begin the value: held */
	free(s);
	assert_int_equal(kill(relay, SIGTERM), 0);
	wait_relay_gone(f, relay);
	s = slurp(log);
	assert_string_equal(s, "held tok-0123");
	free(s);
	stop_and_free(f, inst, &ev);

	/* at EOF too */
	ev = (struct events){ 0 };
	unlink(log);
	spec_for(f, &spec, "flush2", "printf 'end tok-0123'", log, sizeof(log));
	spec.redact = redactor_of("TOKEN", TOKEN, NULL);
	spec.restart.max_restarts = 0;
	assert_int_equal(start(f, &spec, &ev, &inst), 0);
	redactor_free((struct redactor *)spec.redact);
	assert_true(run_until(f, gave_up, &ev, GUARD_MS));
	relay = sup_instance_relay_pid(inst);
	wait_relay_gone(f, relay);
	s = slurp(log);
	assert_string_equal(s, "end tok-0123");
	free(s);
	sup_instance_free(inst);
}

/* A redactor too big for a pipe's default size (40 values of 64 KiB: a
 * pipe grown with F_SETPIPE_SZ, or a memfd past the pipe limit) reaches
 * the relay whole: the last value is hidden. */
static void test_relay_big_redactor(void **state)
{
	struct fixture *f = *state;
	char log[PATH_MAX], name[16], *s, *secret_env[] = { NULL, NULL };
	struct events ev = { 0 };
	struct sup_instance *inst;
	struct redactor *r;
	struct sup_spec spec;
	uint8_t *value = malloc(SECRET_VALUE_MAX + 1);
	pid_t relay;

	assert_non_null(value);
	assert_int_equal(redactor_new(&r), 0);
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "BIG%02d", i);
		memset(value, 'a' + i % 26, SECRET_VALUE_MAX);
		memcpy(value, name, strlen(name));
		assert_int_equal(redactor_add(r, name, value, SECRET_VALUE_MAX), 0);
	}
	free(value);
	/* and a small one, which the instance prints */
	assert_int_equal(redactor_add(r, "LAST", (const uint8_t *)TOKEN, strlen(TOKEN)), 0);
	secret_env[0] = "TOKEN=" TOKEN;
	spec_for(f, &spec, "big", "printf '%s\\n' \"$TOKEN\"; echo done; exec sleep 30", log, sizeof(log));
	spec.secret_env = secret_env;
	spec.redact = r;
	assert_int_equal(start(f, &spec, &ev, &inst), 0);
	redactor_free(r);
	wait_for_text(f, &(struct file_has){ log, "done\n" });
	s = slurp(log);
	assert_string_equal(s, "[redacted:LAST]\ndone\n");
	free(s);
	relay = sup_instance_relay_pid(inst);
	stop_and_free(f, inst, &ev);
	wait_relay_gone(f, relay);
}

/* A relay that cannot start (its log cannot be opened) fails the spawn
 * with stage "log relay" before the program runs; an empty redactor or
 * no log file needs no relay. */
static void test_relay_failures(void **state)
{
	struct fixture *f = *state;
	char log[PATH_MAX + 16];
	struct events ev = { 0 };
	struct sup_instance *inst;
	struct sup_spec spec;

	spec_for(f, &spec, "nolog", "echo ran", NULL, 0);
	snprintf(log, sizeof(log), "%s/missing/dir.log", f->dir);
	spec.log_path = log;
	spec.redact = redactor_of("TOKEN", TOKEN, NULL);
	spec.restart.max_restarts = 0;
	assert_int_equal(start(f, &spec, &ev, &inst), 0);
	redactor_free((struct redactor *)spec.redact);
	assert_true(run_until(f, gave_up, &ev, GUARD_MS));
	assert_int_equal(ev.give_up.spawn_error, ENOENT);
	assert_non_null(ev.give_up.spawn_stage);
	assert_string_equal(ev.give_up.spawn_stage, "log relay");
	assert_int_equal(ev.give_up.code, 127);
	sup_instance_free(inst);

	/* no log file: no relay */
	ev = (struct events){ 0 };
	spec_for(f, &spec, "devnull", "exit 0", NULL, 0);
	spec.redact = redactor_of("TOKEN", TOKEN, NULL);
	spec.restart.max_restarts = 0;
	assert_int_equal(start(f, &spec, &ev, &inst), 0);
	assert_int_equal(sup_instance_relay_pid(inst), 0);
	assert_true(run_until(f, gave_up, &ev, GUARD_MS));
	sup_instance_free(inst);
	redactor_free((struct redactor *)spec.redact);

	/* an empty redactor: no relay */
	ev = (struct events){ 0 };
	spec_for(f, &spec, "empty", "echo plain", log, sizeof(log));
	spec.redact = redactor_of(NULL, NULL);
	spec.restart.max_restarts = 0;
	assert_int_equal(start(f, &spec, &ev, &inst), 0);
	assert_int_equal(sup_instance_relay_pid(inst), 0);
	assert_true(run_until(f, gave_up, &ev, GUARD_MS));
	wait_for_text(f, &(struct file_has){ log, "plain\n" });
	sup_instance_free(inst);
	redactor_free((struct redactor *)spec.redact);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_secret_env, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relay_redacts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relay_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relay_outlives, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relay_daemon_killed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relay_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relay_big_redactor, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relay_failures, setup, teardown),
	};

	/* the relays the tests start run this program as cutover runs itself */
	if (argc > 1 && strcmp(argv[1], SUP_RELAY_VERB) == 0)
		return sup_relay_main(argc - 1, argv + 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

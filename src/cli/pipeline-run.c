/* pipeline-run.c - the stages of `cutover pipeline run` as processes
 * (pipeline.c is the verb around them).
 *
 * A run: stage is `/bin/sh -ec COMMAND` in the directory of cutover.yml,
 * ${ENV} replaced by the environment's name.  A deploy:, promote: or
 * release: stage is this same binary (/proc/self/exe) with the verb, the
 * configuration (--config, absolute) and the environment it acts on (--env).
 * Every stage gets CUTOVER (this binary), CUTOVER_CONFIG, CUTOVER_STAGE
 * and, when there is one, CUTOVER_ENV, plus its own env:; stdin is
 * /dev/null; stdout and stderr share one pipe, read here line by line, each
 * line printed with the stage's name in front and flushed at once.
 *
 * Each stage leads its own process group.  A stage that outlives its
 * timeout, or a SIGINT / SIGTERM to the pipeline, ends that group (SIGTERM,
 * or the SIGINT received, then SIGKILL after 5 s).  A stage ends when its
 * process does: what it left running in the background is left alone (its
 * output is read while there is some, not until the pipe closes).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "base/util.h"
#include "cli/pipeline-internal.h"

#define LINE_BYTES 4096               /* a longer line is cut into lines of this size */
#define KILL_GRACE_MS 5000            /* SIGTERM (or SIGINT), then SIGKILL after this */
#define DRAIN_MAX_BYTES (1u << 20)    /* read after the stage's process ended, at most */

extern char **environ;

const char *const pipeline_status_words[STATUS_NCODES] = {
	[STATUS_NOT_RUN] = "not run", [STATUS_OK] = "ok", [STATUS_FAILED] = "failed",
	[STATUS_TIMED_OUT] = "timed out", [STATUS_INTERRUPTED] = "interrupted",
	[STATUS_AWAITING] = "awaiting approval", [STATUS_SKIPPED] = "skipped",
};

const char *const pipeline_kind_words[4] = {
	[CONFIG_STAGE_RUN] = "run", [CONFIG_STAGE_DEPLOY] = "deploy", [CONFIG_STAGE_PROMOTE] = "promote",
	[CONFIG_STAGE_RELEASE] = "release",
};

struct watch {
	pid_t pid;
	int fd;                       /* read end of its output pipe, -1 once at its end */
	int status;                   /* waitpid()'s, once reaped */
	bool reaped;
	bool stopping;                /* SIGTERM/SIGINT sent to its group */
	bool killed;                  /* SIGKILL sent */
	uint64_t kill_at;             /* when stopping: SIGKILL then */
	bool timed_out;
	int interrupted;              /* the signal the pipeline received, or 0 */
	char line[LINE_BYTES];        /* a line not complete yet */
	size_t len;
};

static volatile sig_atomic_t stop_signal; /* SIGINT or SIGTERM received */

static void on_signal(int signo)
{
	if (signo == SIGINT || signo == SIGTERM)
		stop_signal = signo;
	/* SIGCHLD: only to wake ppoll() */
}

/* "2.3s", "4m05s", "1h02m". */
const char *pipeline_elapsed(uint64_t ms, char *buf, size_t size)
{
	if (ms < 60 * 1000)
		snprintf(buf, size, "%.1fs", (double)ms / 1000.0);
	else if (ms < 3600 * 1000)
		snprintf(buf, size, "%llum%02llus", (unsigned long long)(ms / 60000), (unsigned long long)(ms / 1000 % 60));
	else
		snprintf(buf, size, "%lluh%02llum", (unsigned long long)(ms / 3600000),
			 (unsigned long long)(ms / 60000 % 60));
	return buf;
}

/* The environment a stage's verb acts on: its own, else the pipeline's
 * (NULL: none). */
const char *pipeline_stage_env(const struct run *R, const struct config_stage *st)
{
	return st->target_env ? st->target_env : R->c->env;
}

/* ---- what a stage runs ---------------------------------------------------- */

/* (pipeline-internal.h) */
int pipeline_stage_argv(const struct run *R, const struct config_stage *st, const char **argv, char **ret_owned,
			char *timeout, size_t timeout_size)
{
	const char *env = pipeline_stage_env(R, st);
	const char *names[1] = { "ENV" }, *vals[1] = { R->c->env };
	size_t n = 0;

	*ret_owned = NULL;
	snprintf(timeout, timeout_size, "%llus", (unsigned long long)((st->timeout_ms + 999) / 1000));
	if (st->kind == CONFIG_STAGE_RUN) {
		*ret_owned = substitute_vars(st->run, names, vals, 1);
		if (!*ret_owned)
			return -ENOMEM;
		argv[n++] = "/bin/sh";
		argv[n++] = "-ec";
		argv[n++] = *ret_owned;
		argv[n] = NULL;
		return 0;
	}
	argv[n++] = R->self;
	argv[n++] = pipeline_kind_words[st->kind];
	if (st->kind == CONFIG_STAGE_RELEASE) {
		argv[n++] = "run";
		argv[n++] = st->file;
	} else {
		argv[n++] = st->service;
	}
	if (st->kind == CONFIG_STAGE_DEPLOY)
		argv[n++] = st->version;
	if (st->kind == CONFIG_STAGE_PROMOTE) {
		argv[n++] = "--from";
		argv[n++] = st->from;
		argv[n++] = "--to";
		argv[n++] = env;
	}
	if (env) {
		argv[n++] = "--env";
		argv[n++] = env;
	}
	argv[n++] = "--config";
	argv[n++] = R->config_path;
	if (st->kind != CONFIG_STAGE_RELEASE) {
		argv[n++] = "--timeout";
		argv[n++] = timeout;
	}
	if (st->wait)
		argv[n++] = "--wait";
	argv[n] = NULL;
	return 0;
}

/* What stage st does, for a person, into buf: the command (its first line)
 * or the verb ("cutover deploy shop 1.2.0 --env staging"). */
void pipeline_stage_summary(const struct run *R, const struct config_stage *st, char *buf, size_t size)
{
	const char *env = pipeline_stage_env(R, st), *nl;

	if (st->kind == CONFIG_STAGE_RUN) {
		nl = strchr(st->run, '\n');
		if (nl && nl[1])
			snprintf(buf, size, "%.*s ...", (int)(nl - st->run), st->run);
		else
			snprintf(buf, size, "%.*s", (int)(nl ? (size_t)(nl - st->run) : strlen(st->run)), st->run);
	} else if (st->kind == CONFIG_STAGE_DEPLOY) {
		snprintf(buf, size, "cutover deploy %s %s%s%s%s", st->service, st->version, env ? " --env " : "",
			 env ? env : "", st->wait ? " --wait" : "");
	} else if (st->kind == CONFIG_STAGE_PROMOTE) {
		snprintf(buf, size, "cutover promote %s --from %s --to %s%s", st->service, st->from, env ? env : "?",
			 st->wait ? " --wait" : "");
	} else {
		snprintf(buf, size, "cutover release run %s%s%s%s", st->file, env ? " --env " : "", env ? env : "",
			 st->wait ? " --wait" : "");
	}
}

static bool env_overridden(const char *entry, const struct config_stage *st)
{
	static const char *const ours[] = { "CUTOVER", "CUTOVER_ENV", "CUTOVER_CONFIG", "CUTOVER_STAGE" };
	size_t len = strcspn(entry, "=");

	for (size_t i = 0; i < ARRAY_SIZE(ours); i++)
		if (strlen(ours[i]) == len && !strncmp(entry, ours[i], len))
			return true;
	for (size_t i = 0; i < st->nenv; i++)
		if (strlen(st->env[i].name) == len && !strncmp(entry, st->env[i].name, len))
			return true;
	return false;
}

/* Append "NAME=VALUE" to envp at *n.  Returns false when out of memory
 * (envp unchanged). */
static bool add_variable(char **envp, size_t *n, const char *name, const char *value)
{
	char *entry;

	if (asprintf(&entry, "%s=%s", name, value) < 0)
		return false;
	envp[(*n)++] = entry;
	return true;
}

static void free_strings(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* The environment of stage st: ours without what the stage sets, then
 * CUTOVER..., then the stage's env: (${ENV} substituted).  Returns a
 * malloc'd NULL-terminated array whose strings are malloc'd too (free with
 * free_strings), or NULL when out of memory. */
static char **stage_envp(const struct run *R, const struct config_stage *st)
{
	const char *env = st->kind == CONFIG_STAGE_RUN ? R->c->env : pipeline_stage_env(R, st);
	const char *names[1] = { "ENV" }, *vals[1] = { R->c->env };
	size_t n = 0, count = 0, i;
	char **envp, *value;
	bool ok = true;

	while (environ[count])
		count++;
	envp = calloc(count + st->nenv + 5, sizeof(*envp));
	if (!envp)
		return NULL;
	for (i = 0; ok && i < count; i++)
		if (!env_overridden(environ[i], st))
			ok = (envp[n++] = strdup(environ[i])) != NULL;
	ok = ok && add_variable(envp, &n, "CUTOVER", R->self) && add_variable(envp, &n, "CUTOVER_CONFIG", R->config_path) &&
	     add_variable(envp, &n, "CUTOVER_STAGE", st->name) && (!env || add_variable(envp, &n, "CUTOVER_ENV", env));
	for (i = 0; ok && i < st->nenv; i++) {
		value = substitute_vars(st->env[i].value, names, vals, 1);
		ok = value && add_variable(envp, &n, st->env[i].name, value);
		free(value);
	}
	if (!ok) {
		free_strings(envp); /* the entries so far, up to the first NULL */
		return NULL;
	}
	return envp;
}

/* In the child: become the leader of a new process group, take /dev/null
 * as stdin and the pipe as stdout and stderr, go to the configuration's
 * directory, and exec.  Never returns. */
static void child(const struct run *R, int out, const char *const *argv, char **envp)
{
	sigset_t none;
	int null;

	sigemptyset(&none);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	sigprocmask(SIG_SETMASK, &none, NULL);
	setpgid(0, 0);
	null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 || dup2(out, STDERR_FILENO) < 0)
		_exit(127);
	if (chdir(R->dir) < 0) {
		dprintf(STDERR_FILENO, "cutover pipeline: cannot enter %s: %s\n", R->dir, strerror(errno));
		_exit(127);
	}
	execve(argv[0], (char *const *)argv, envp);
	dprintf(STDERR_FILENO, "cutover pipeline: cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* Start argv with envp; w gets the process and the read end of its
 * output.  Returns 0 or -errno. */
static int spawn(const struct run *R, const char *const *argv, char **envp, struct watch *w)
{
	int fds[2], r;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		r = -errno;
		close(fds[0]);
		close(fds[1]);
		return r;
	}
	if (pid == 0)
		child(R, fds[1], argv, envp);
	setpgid(pid, pid); /* also here: the group exists before we may kill it */
	close(fds[1]);
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	w->pid = pid;
	w->fd = fds[0];
	return 0;
}

/* ---- streaming ------------------------------------------------------------ */

static void print_line(const struct run *R, const char *name, const char *p, size_t len)
{
	if (len && p[len - 1] == '\r')
		len--;
	fprintf(R->out, "%-*s | %.*s\n", R->width, name, (int)len, p);
}

/* Print the complete lines of data (the rest is kept in w->line). */
static void feed(const struct run *R, const char *name, struct watch *w, const char *data, size_t n)
{
	while (n) {
		size_t take = n < sizeof(w->line) - w->len ? n : sizeof(w->line) - w->len;
		char *nl;

		memcpy(w->line + w->len, data, take);
		w->len += take;
		data += take;
		n -= take;
		while ((nl = memchr(w->line, '\n', w->len))) {
			size_t used = (size_t)(nl - w->line) + 1;

			print_line(R, name, w->line, used - 1);
			memmove(w->line, w->line + used, w->len - used);
			w->len -= used;
		}
		if (w->len == sizeof(w->line)) { /* a very long line: in pieces */
			print_line(R, name, w->line, w->len);
			w->len = 0;
		}
	}
}

/* Read what the pipe holds (at most max bytes).  Returns 1 while it stays
 * open, 0 at its end (closed then). */
static int pump(const struct run *R, const char *name, struct watch *w, size_t max)
{
	char chunk[4096];
	size_t total = 0;
	int r = 1;

	while (w->fd >= 0 && total < max) {
		ssize_t n = read(w->fd, chunk, sizeof(chunk));

		if (n > 0) {
			feed(R, name, w, chunk, (size_t)n);
			total += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		close(w->fd); /* the end, or an error reading: nothing more to show */
		w->fd = -1;
		r = 0;
	}
	fflush(R->out);
	return r;
}

/* Send signo to the stage's process group; SIGKILL follows after the grace. */
static void stop_group(struct watch *w, int signo)
{
	kill(-w->pid, signo);
	w->stopping = true;
	w->kill_at = time_now_ms() + KILL_GRACE_MS;
}

/* Follow the stage's process to its end, its output printed as it comes,
 * its timeout and the pipeline's signals applied. */
static void watch_stage(const struct run *R, const struct config_stage *st, struct watch *w, uint64_t deadline)
{
	for (;;) {
		uint64_t now = time_now_ms(), until = UINT64_MAX;
		struct pollfd pfd = { .fd = w->fd, .events = POLLIN };
		struct timespec ts;

		if (!w->stopping && stop_signal) {
			w->interrupted = stop_signal;
			stop_group(w, stop_signal);
		} else if (!w->stopping && now >= deadline) {
			w->timed_out = true;
			stop_group(w, SIGTERM);
		} else if (w->stopping && !w->killed && now >= w->kill_at) {
			kill(-w->pid, SIGKILL);
			w->killed = true;
		}
		if (!w->reaped && waitpid(w->pid, &w->status, WNOHANG) == w->pid)
			w->reaped = true;
		if (w->reaped)
			break;
		if (!w->stopping)
			until = deadline;
		else if (!w->killed)
			until = w->kill_at;
		if (until != UINT64_MAX) {
			uint64_t left = until > now ? until - now : 0;

			ts.tv_sec = (time_t)(left / 1000);
			ts.tv_nsec = (long)(left % 1000) * 1000000;
		}
		if (ppoll(&pfd, w->fd >= 0 ? 1 : 0, until == UINT64_MAX ? NULL : &ts, &R->wait_mask) > 0)
			pump(R, st->name, w, DRAIN_MAX_BYTES);
	}
	/* what it wrote before it ended (a process it left behind may hold the
	 * pipe open: read what is there, not until it closes) */
	pump(R, st->name, w, DRAIN_MAX_BYTES);
	if (w->len)
		print_line(R, st->name, w->line, w->len);
	w->len = 0;
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	if (w->stopping)
		kill(-w->pid, SIGKILL); /* what is left of its group */
	fflush(R->out);
}

/* ---- running the stages --------------------------------------------------- */

/* The result of the ended stage from w, and its line ("✓ build 2.3s"). */
static void judge(const struct run *R, const struct config_stage *st, const struct watch *w,
		  struct stage_result *res)
{
	char how[96] = "";
	const char *d = ELAPSED(res->duration_ms);

	res->exit_code = WIFEXITED(w->status) ? WEXITSTATUS(w->status) : -1;
	res->signo = WIFSIGNALED(w->status) ? WTERMSIG(w->status) : 0;
	if (w->interrupted) {
		res->status = STATUS_INTERRUPTED;
		fprintf(R->out, "✗ %s interrupted (%s) after %s: its processes were stopped\n", st->name,
			w->interrupted == SIGINT ? "SIGINT" : "SIGTERM", d);
	} else if (w->timed_out) {
		res->status = STATUS_TIMED_OUT;
		fprintf(R->out, "✗ %s timed out after %s (timeout: %s): its processes were stopped\n", st->name, d,
			DURATION_TEXT(st->timeout_ms));
	} else if (res->exit_code == 0) {
		res->status = STATUS_OK;
		fprintf(R->out, "✓ %s %s\n", st->name, d);
	} else if (res->exit_code == EXIT_AWAITING && !st->wait && st->kind != CONFIG_STAGE_RUN) {
		res->status = STATUS_AWAITING;
		fprintf(R->out, "⏸ %s awaits approval after %s: approve it as shown above (it then starts in the "
			"daemon); the pipeline stops here (wait: true in the stage waits instead)\n", st->name, d);
	} else {
		res->status = STATUS_FAILED;
		if (res->signo)
			snprintf(how, sizeof(how), "killed by signal %d, %s", res->signo, strsignal(res->signo));
		else
			snprintf(how, sizeof(how), "exit %d", res->exit_code);
		fprintf(R->out, "✗ %s failed (%s) after %s\n", st->name, how, d);
	}
	fflush(R->out);
}

/* Run stage i; its result into R->results[i]. */
static void run_stage(struct run *R, size_t i)
{
	const struct config_stage *st = &R->cfg->pipeline.stages[i];
	struct stage_result *res = &R->results[i];
	struct watch w = { .fd = -1 };
	const char *argv[ARGV_MAX];
	char *owned = NULL, **envp = NULL, timeout[32], what[512];
	uint64_t t0 = time_now_ms();
	int r;

	pipeline_stage_summary(R, st, what, sizeof(what));
	fprintf(R->out, "▶ %s (%zu/%zu): %s\n", st->name, i + 1, R->cfg->pipeline.nstages, what);
	fflush(R->out);
	r = pipeline_stage_argv(R, st, argv, &owned, timeout, sizeof(timeout));
	if (r >= 0 && !(envp = stage_envp(R, st)))
		r = -ENOMEM;
	if (r >= 0)
		r = spawn(R, argv, envp, &w);
	free(owned);
	free_strings(envp);
	if (r < 0) {
		res->status = STATUS_FAILED;
		res->exit_code = -1;
		fprintf(R->out, "✗ %s could not start: %s\n", st->name, strerror(-r));
		fflush(R->out);
		return;
	}
	watch_stage(R, st, &w, t0 + st->timeout_ms);
	res->duration_ms = time_now_ms() - t0;
	judge(R, st, &w, res);
}

/* The selected stages, in order, each run or skipped.  Returns the exit
 * code. */
int pipeline_run_stages(struct run *R)
{
	const struct config_pipeline *p = &R->cfg->pipeline;
	size_t first_failed = SIZE_MAX;
	bool awaiting = false, stopped = false;
	int interrupted = 0;

	for (size_t i = 0; i < p->nstages; i++) {
		struct stage_result *res = &R->results[i];

		if (!res->selected)
			continue;
		if (interrupted || stop_signal) {
			interrupted = interrupted ? interrupted : stop_signal;
			continue; /* not run */
		}
		if (stopped && p->stages[i].when != CONFIG_STAGE_ALWAYS) {
			res->status = STATUS_SKIPPED;
			fprintf(R->out, "- %s skipped (after %s)\n", p->stages[i].name,
				first_failed != SIZE_MAX ? "a failure" : "the approval stop");
			continue;
		}
		run_stage(R, i);
		if (res->status == STATUS_INTERRUPTED)
			interrupted = stop_signal ? stop_signal : SIGINT;
		else if (res->status == STATUS_AWAITING)
			awaiting = stopped = true;
		else if (res->status != STATUS_OK) {
			stopped = true;
			if (first_failed == SIZE_MAX)
				first_failed = i;
		}
	}
	fflush(R->out);
	if (interrupted)
		return 128 + interrupted;
	if (first_failed != SIZE_MAX)
		return EXIT_STAGE_BASE + (int)first_failed + 1;
	return awaiting ? EXIT_AWAITING : EXIT_OK;
}

/* Signals: SIGINT and SIGTERM stop the stage in progress, SIGCHLD wakes
 * the wait; all three blocked except while waiting (no race between a
 * check and the wait). */
void pipeline_signals_setup(struct run *R)
{
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t block;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGCHLD);
	sigprocmask(SIG_BLOCK, &block, &R->wait_mask);
	sigdelset(&R->wait_mask, SIGINT);
	sigdelset(&R->wait_mask, SIGTERM);
	sigdelset(&R->wait_mask, SIGCHLD);
}


/* supervisor_fixture.h - the fixture of the supervisor's test programs
 * (test_supervisor.c, test_relay.c): a fresh loop, supervisor and temporary
 * directory per test; a teardown that checks that no child of ours is left
 * (alive or zombie) and that no descriptor leaked, then kills by pid what a
 * failed test left; running the loop until a condition holds under a
 * guard; recording an instance's events; reading files.
 *
 * Include after <cmocka.h> and its prerequisites, "loop/loop.h",
 * "supervisor/supervisor.h" and "unit.h".
 */
#pragma once
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "base/util.h"

#define GUARD_MS 4000
#define POLL_MS 5
#define MAX_TRACKED 64

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* --- fixture --- */

struct fixture {
	struct loop loop;
	struct supervisor *sup;
	struct supervisor *sup2;      /* a test's own, with another cgroup root */
	char cgroup_root[PATH_MAX + 16]; /* a real cgroup tree a test made, or "" */
	char dir[PATH_MAX];
	int nfds;
	pid_t tracked[MAX_TRACKED];
	int ntracked;
};

static struct fixture *current; /* for the callbacks' pid tracking */

static UNUSED bool under_valgrind(void)
{
	const char *preload = getenv("LD_PRELOAD");

	return preload && strstr(preload, "vgpreload");
}

/* Our children, alive or zombie, listed from /proc. */
static UNUSED int count_children(pid_t *first)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d))) {
		char path[300], buf[1024], *p;
		int fd, ppid;
		ssize_t len;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		buf[len] = '\0';
		p = strrchr(buf, ')');
		if (p && sscanf(p + 1, " %*c %d", &ppid) == 1 && ppid == getpid()) {
			if (n++ == 0 && first)
				*first = atoi(e->d_name);
		}
	}
	closedir(d);
	return n;
}

static UNUSED void track(pid_t pid)
{
	struct fixture *f = current;

	if (pid <= 0 || !f)
		return;
	for (int i = 0; i < f->ntracked; i++)
		if (f->tracked[i] == pid)
			return;
	if (f->ntracked < MAX_TRACKED)
		f->tracked[f->ntracked++] = pid;
}

static UNUSED void remove_tree(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;

	if (d) {
		while ((e = readdir(d))) {
			char sub[PATH_MAX];
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
			remove_tree(sub);
		}
		closedir(d);
		rmdir(path);
	} else {
		unlink(path);
	}
}

static UNUSED int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->nfds = count_fds();
	strcpy(f->dir, "/tmp/cutover-sup-XXXXXX");
	if (!mkdtemp(f->dir) || loop_init(&f->loop) < 0 || supervisor_new(&f->loop, NULL, &f->sup) < 0)
		return -1;
	current = f;
	*state = f;
	return 0;
}

static UNUSED int teardown(void **state)
{
	struct fixture *f = *state;
	pid_t child = 0;
	int children, nfds, failed = 0;

	f->sup = supervisor_free(f->sup);
	f->sup2 = supervisor_free(f->sup2);
	loop_release(&f->loop);
	children = count_children(&child);
	if (children != 0) {
		print_error("%d child process(es) left (first: %d)\n", children, (int)child);
		failed = 1;
	}
	/* Clean up by pid whatever a failed test left. */
	for (int i = 0; i < f->ntracked; i++) {
		kill(-f->tracked[i], SIGKILL);
		kill(f->tracked[i], SIGKILL);
		while (waitpid(f->tracked[i], NULL, 0) < 0 && errno == EINTR)
			;
	}
	nfds = count_fds();
	if (nfds != f->nfds) {
		print_error("%d descriptors open after the test, %d before\n", nfds, f->nfds);
		failed = 1;
	}
	remove_tree(f->dir);
	if (f->cgroup_root[0]) { /* a failed cgroup test: empty directories only */
		char sub[PATH_MAX + 32];
		snprintf(sub, sizeof(sub), "%s/limited", f->cgroup_root);
		rmdir(sub);
		snprintf(sub, sizeof(sub), "%s/placed", f->cgroup_root);
		rmdir(sub);
		rmdir(f->cgroup_root);
	}
	current = NULL;
	free(f);
	return failed ? -1 : 0;
}

/* --- running the loop --- */

typedef bool (*pred_fn)(void *arg);

struct runner {
	struct loop_timer poll, guard;
	pred_fn pred;
	void *arg;
	bool done, expired;
};

static UNUSED void poll_cb(struct loop *loop, struct loop_timer *t)
{
	struct runner *r = (struct runner *)((char *)t - offsetof(struct runner, poll));

	if (r->pred(r->arg)) {
		r->done = true;
		loop->stop = true;
		return;
	}
	loop_timer_set(loop, t, time_now_ms() + POLL_MS, poll_cb);
}

static UNUSED void guard_cb(struct loop *loop, struct loop_timer *t)
{
	struct runner *r = (struct runner *)((char *)t - offsetof(struct runner, guard));

	r->expired = true;
	loop->stop = true;
}

static UNUSED bool never(void *arg) { (void)arg; return false; }

/* Run the loop until pred(arg) holds; false (after saying so) if the guard
 * expired first. */
static UNUSED bool run_until(struct fixture *f, pred_fn pred, void *arg, uint64_t limit_ms)
{
	struct runner r = { .pred = pred, .arg = arg };
	int ret;

	f->loop.stop = false;
	loop_timer_set(&f->loop, &r.poll, time_now_ms() + 1, poll_cb);
	loop_timer_set(&f->loop, &r.guard, time_now_ms() + limit_ms, guard_cb);
	ret = loop_run(&f->loop);
	loop_timer_cancel(&f->loop, &r.poll);
	loop_timer_cancel(&f->loop, &r.guard);
	if (ret != 0)
		print_error("loop_run returned %d\n", ret);
	if (!r.done && pred != never)
		print_error("condition still false after %" PRIu64 " ms\n", limit_ms);
	return ret == 0 && r.done;
}

/* Run the loop for ms, whatever happens. */
static UNUSED void run_for(struct fixture *f, uint64_t ms)
{
	run_until(f, never, NULL, ms);
}

/* --- recording an instance's events --- */

#define MAX_EVENTS 16

struct events {
	int exits, restarts, give_ups, dones;
	struct sup_exit exit[MAX_EVENTS], give_up, done;
	uint64_t exit_ms[MAX_EVENTS], restart_ms[MAX_EVENTS], done_ms;
	bool free_in_done;
};

static UNUSED void on_exit_cb(struct sup_instance *inst, const struct sup_exit *exit, void *data)
{
	struct events *ev = data;

	if (ev->exits < MAX_EVENTS) {
		ev->exit[ev->exits] = *exit;
		ev->exit_ms[ev->exits] = time_now_ms();
	}
	ev->exits++;
	track(exit->pid);
	(void)inst;
}

static UNUSED void on_restart_cb(struct sup_instance *inst, void *data)
{
	struct events *ev = data;

	if (ev->restarts < MAX_EVENTS)
		ev->restart_ms[ev->restarts] = time_now_ms();
	ev->restarts++;
	track(sup_instance_pid(inst));
}

static UNUSED void on_give_up_cb(struct sup_instance *inst, const struct sup_exit *last, void *data)
{
	struct events *ev = data;

	ev->give_ups++;
	ev->give_up = *last;
	(void)inst;
}

static UNUSED void on_done_cb(struct sup_instance *inst, const struct sup_exit *last, void *data)
{
	struct events *ev = data;

	ev->dones++;
	ev->done = *last;
	ev->done_ms = time_now_ms();
	if (ev->free_in_done)
		sup_instance_free(inst);
}

static const struct sup_callbacks callbacks = {
	.on_exit = on_exit_cb, .on_restart = on_restart_cb, .on_give_up = on_give_up_cb,
};

static UNUSED bool gave_up(void *arg) { return ((struct events *)arg)->give_ups > 0; }
static UNUSED bool stopped(void *arg) { return ((struct events *)arg)->dones > 0; }

static UNUSED int start(struct fixture *f, struct sup_spec *spec, struct events *ev, struct sup_instance **ret)
{
	int r = sup_instance_start(f->sup, spec, &callbacks, ev, ret);

	if (r == 0)
		track(sup_instance_pid(*ret));
	return r;
}

static UNUSED void spec_for(struct fixture *f, struct sup_spec *spec, const char *id, const char *command, char *log,
		     size_t logsize)
{
	sup_spec_init(spec);
	spec->id = id;
	spec->command = command;
	if (log) {
		if ((size_t)snprintf(log, logsize, "%s/%s.log", f->dir, id) >= logsize)
			fail_msg("log path too long");
		spec->log_path = log;
	}
}

/* The whole file as a NUL-terminated string (caller frees), or NULL. */
static UNUSED char *slurp(const char *path)
{
	FILE *fp = fopen(path, "re");
	char *buf = NULL;
	size_t cap = 0, len = 0, n;

	if (!fp)
		return NULL;
	for (;;) {
		if (len + 4097 > cap) {
			char *nbuf = realloc(buf, cap = cap * 2 + 8192);
			if (!nbuf)
				break;
			buf = nbuf;
		}
		n = fread(buf + len, 1, cap - len - 1, fp);
		if (n == 0)
			break;
		len += n;
	}
	fclose(fp);
	if (buf)
		buf[len] = '\0';
	return buf;
}

struct file_has {
	const char *path, *needle;
};

static UNUSED bool file_contains(void *arg)
{
	struct file_has *fh = arg;
	char *s = slurp(fh->path);
	bool found = s && strstr(s, fh->needle);

	free(s);
	return found;
}

/* Run the loop until the file holds the text; fail, showing the file, if
 * it does not within GUARD_MS. */
static UNUSED void wait_for_text(struct fixture *f, struct file_has *fh)
{
	char shown[512], *s;

	if (run_until(f, file_contains, fh, GUARD_MS))
		return;
	s = slurp(fh->path);
	snprintf(shown, sizeof(shown), "%s", s ? s : "(nothing)");
	free(s);
	fail_msg("no \"%s\" in %s, which holds: \"%s\"", fh->needle, fh->path, shown);
}

static UNUSED off_t file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_size : -1;
}

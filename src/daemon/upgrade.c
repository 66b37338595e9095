/* upgrade.c - `cutover upgrade` (and SIGUSR2): a new binary takes over the
 * listening sockets without refusing a connection.
 *
 * The old daemon (O) and the new one (N), in order:
 *   1. O refuses new deploys, lets go of its deploy side (the instances
 *      keep running, unsupervised for a moment) and closes the state;
 *   2. O starts N with its own arguments and CUTOVER_UPGRADE_FD, the end of
 *      a SOCK_SEQPACKET socket pair, and sends over it every listening
 *      socket: the proxy's, the admin address and the admin Unix socket
 *      (SCM_RIGHTS).  The sockets are the same kernel objects, so the
 *      connections waiting in their accept queues stay there;
 *   3. N takes the sockets by address instead of binding, re-adopts the
 *      instances from the state (as after kill -9), puts traffic where it
 *      was, then sends "ready PID";
 *   4. only then does O stop accepting, drain its connections and exit,
 *      leaving the instances and the Unix socket file to N.
 * If N exits, closes the socket or is not ready within timeouts.upgrade,
 * O kills what is left of it, takes its deploy side back (recovery
 * re-adopts the instances) and goes on serving; GET /v1/upgrade says why.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "admin/admin.h"
#include "base/list.h"
#include "base/log.h"
#include "daemon/daemon-internal.h"
#include "deploy/deploy.h"
#include "release/release.h"
#include "loop/inherit.h"
#include "loop/loop.h"
#include "proxy/proxy.h"

#define MAX_FDS 250 /* SCM_RIGHTS carries at most 253 */
#define HELLO "cutover-upgrade 1"

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *state_name(enum upgrade_state s)
{
	static const char *const names[] = { "none", "running", "done", "failed" };
	return names[s];
}

json_t *upgrade_json(struct daemon *d)
{
	struct upgrade *u = &d->upgrade;
	json_t *j = json_pack("{s:s, s:i}", "state", state_name(u->state), "pid", (int)getpid());

	if (u->state != UPGRADE_NONE) {
		json_object_set_new(j, "binary", json_string(u->binary));
		json_object_set_new(j, "new_pid", json_integer(u->pid));
		json_object_set_new(j, "started_ms", json_integer(u->started_ms));
		if (u->finished_ms)
			json_object_set_new(j, "finished_ms", json_integer(u->finished_ms));
		if (u->error[0])
			json_object_set_new(j, "error", json_string(u->error));
	}
	if (u->from_pid)
		json_object_set_new(j, "upgraded_from_pid", json_integer(u->from_pid));
	return j;
}

/* Every listening socket this daemon has, into fds[MAX_FDS]. */
static size_t collect_fds(struct daemon *d, int *fds)
{
	size_t n = 0;

	for (size_t i = 0; i < d->proxy.nlisteners && n < MAX_FDS; i++)
		if (d->proxy.listeners[i].io.fd >= 0)
			fds[n++] = d->proxy.listeners[i].io.fd;
	if (d->admin.tcp.io.fd >= 0 && n < MAX_FDS)
		fds[n++] = d->admin.tcp.io.fd;
	if (d->admin.unix_api.io.fd >= 0 && n < MAX_FDS)
		fds[n++] = d->admin.unix_api.io.fd;
	return n;
}

static int send_fds(int sock, const int *fds, size_t n)
{
	char hello[] = HELLO;
	struct iovec iov = { hello, sizeof(hello) };
	union {
		char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
		struct cmsghdr align;
	} u;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;

	memset(&u, 0, sizeof(u));
	if (n) {
		msg.msg_control = u.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * n);
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * n);
	}
	return sendmsg(sock, &msg, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

/* The child: the new binary with this daemon's arguments.  Only
 * async-signal-safe calls until exec (the daemon has no other thread now,
 * but keep to the rule). */
static void exec_child(struct daemon *d, const char *binary, int sock)
{
	char fdtext[16], pidtext[16], **argv;
	size_t argc = 0;
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	while (d->argv[argc])
		argc++;
	/* d->argv is the verb's: "daemon", "--config", FILE */
	argv = calloc(argc + 2, sizeof(*argv));
	if (!argv)
		_exit(127);
	argv[0] = (char *)binary;
	for (size_t i = 0; i < argc; i++)
		argv[i + 1] = d->argv[i];
	/* the hand-off socket survives exec, nothing else does */
	fcntl(sock, F_SETFD, 0);
	snprintf(fdtext, sizeof(fdtext), "%d", sock);
	snprintf(pidtext, sizeof(pidtext), "%d", (int)getpid());
	setenv("CUTOVER_UPGRADE_FD", fdtext, 1);
	/* the sockets are a socket unit's: the new daemon's close is not their last */
	if (d->systemd.activated)
		setenv("CUTOVER_UPGRADE_ACTIVATED", "1", 1);
	if (getenv("WATCHDOG_USEC"))
		setenv("WATCHDOG_PID", pidtext, 1);
	execv(binary, argv);
	dprintf(sock, "exec %s: %s", binary, strerror(errno));
	_exit(127);
}

static void upgrade_stop_watching(struct daemon *d)
{
	struct upgrade *u = &d->upgrade;

	loop_timer_cancel(&d->loop, &u->timer);
	if (u->pid_io.fd >= 0) {
		loop_del(&d->loop, &u->pid_io);
		close(u->pid_io.fd);
		u->pid_io.fd = -1;
	}
	if (u->sock_io.fd >= 0) {
		loop_del(&d->loop, &u->sock_io);
		close(u->sock_io.fd);
		u->sock_io.fd = -1;
	}
}

/* The new binary did not make it: kill what is left of it, take the deploy
 * side back, serve on. */
static void upgrade_end(struct daemon *d, bool resume, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void upgrade_end(struct daemon *d, bool resume, const char *fmt, ...)
{
	struct upgrade *u = &d->upgrade;
	va_list ap;
	int status = 0;

	va_start(ap, fmt);
	vsnprintf(u->error, sizeof(u->error), fmt, ap);
	va_end(ap);
	upgrade_stop_watching(d);
	/* the new daemon may have told systemd it is the main process (it
	 * does so just before it tells us): take that back before it dies */
	if (resume)
		systemd_notify(d, "MAINPID=%d\nSTATUS=upgrade failed: %s", (int)getpid(), u->error);
	if (u->pid > 0) {
		kill(u->pid, SIGKILL);
		waitpid(u->pid, &status, 0);
	}
	u->state = UPGRADE_FAILED;
	u->finished_ms = wall_ms();
	if (!resume) {
		log_error("upgrade to %s abandoned: %s", u->binary, u->error);
		return;
	}
	log_error("upgrade to %s failed: %s; this daemon (pid %d) keeps serving", u->binary, u->error, (int)getpid());
	d->admin.refusing = NULL;
	if (daemon_has_managed(d) && deploy_side_start(d) < 0)
		log_error("after the failed upgrade the deploy engine could not start again: restart the daemon");
}

static void upgrade_timeout(struct loop *loop, struct loop_timer *timer)
{
	struct daemon *d = container_of(timer, struct daemon, upgrade.timer);

	upgrade_end(d, true, "the new daemon (pid %d) was not ready after %llu ms (timeouts.upgrade)", d->upgrade.pid,
		       (unsigned long long)d->cfg->timeouts.upgrade);
}

static void upgrade_exited(struct loop *loop, struct loop_io *io, uint32_t events)
{
	struct daemon *d = container_of(io, struct daemon, upgrade.pid_io);
	struct upgrade *u = &d->upgrade;
	siginfo_t si = { 0 };
	char why[64];

	if (waitid(P_PID, (id_t)u->pid, &si, WEXITED | WNOHANG) < 0 || !si.si_pid)
		return;
	u->pid = 0; /* reaped */
	if (si.si_code == CLD_EXITED)
		snprintf(why, sizeof(why), "exited with status %d", si.si_status);
	else
		snprintf(why, sizeof(why), "was killed by signal %d", si.si_status);
	upgrade_end(d, true, "the new daemon (pid %d) %s before it was ready (its error log says why)", si.si_pid, why);
}

/* "ready PID": hand over.  Anything else (an exec error, EOF): failed. */
static void upgrade_message(struct loop *loop, struct loop_io *io, uint32_t events)
{
	struct daemon *d = container_of(io, struct daemon, upgrade.sock_io);
	struct upgrade *u = &d->upgrade;
	char msg[600];
	ssize_t n = recv(io->fd, msg, sizeof(msg) - 1, MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0 && !strncmp(msg, "ready ", 6)) {
		msg[n] = 0;
		upgrade_stop_watching(d);
		u->state = UPGRADE_DONE;
		u->finished_ms = wall_ms();
		log_info("upgrade: the new daemon (pid %d, %s) is ready on the same sockets after %lld ms; this one "
			 "(pid %d) stops accepting, drains and exits",
			 u->pid, u->binary, (long long)(u->finished_ms - u->started_ms), (int)getpid());
		/* the socket file is the new daemon's now, and so is systemd's
		 * service: no STOPPING=1 (systemd would stop the service, new
		 * daemon and all), no more watchdog pets for a process it no
		 * longer watches */
		d->admin.keep_socket_file = true;
		systemd_handed_over(d);
		daemon_shutdown(d, false, "upgraded");
		return;
	}
	if (n > 0) {
		msg[n] = 0;
		upgrade_end(d, true, "%s", msg);
		return;
	}
	/* EOF: it closed the socket (exited, most likely: let the pidfd say
	 * how, unless it is still running) */
	loop_del(loop, io);
	close(io->fd);
	io->fd = -1;
}

int upgrade_start(struct daemon *d, const char *binary, uid_t who, char *err, size_t errlen)
{
	struct upgrade *u = &d->upgrade;
	int fds[MAX_FDS], sv[2], rc;
	size_t nfds;
	pid_t pid;

	if (u->state == UPGRADE_RUNNING) {
		snprintf(err, errlen, "an upgrade is already running (pid %d, %s)", u->pid, u->binary);
		return -EBUSY;
	}
	if (d->shutting_down) {
		snprintf(err, errlen, "shutting down");
		return -ESHUTDOWN;
	}
	if (!binary || !*binary)
		binary = d->self;
	if (access(binary, X_OK) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot run %s: %s", binary, strerror(errno));
		return rc;
	}
	if ((d->deployer && deployer_busy(d->deployer, err, errlen)) ||
	    (d->releases && release_runner_busy(d->releases, err, errlen))) {
		size_t l = strlen(err);
		snprintf(err + l, errlen - l, " is in progress: upgrade once it has ended");
		return -EBUSY;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		rc = -errno;
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		return rc;
	}
	memset(u, 0, offsetof(struct upgrade, from_pid));
	u->pid_io.fd = u->sock_io.fd = -1;
	snprintf(u->binary, sizeof(u->binary), "%s", binary);
	u->who = who;
	u->started_ms = wall_ms();
	/* let go of the instances and the state: the new daemon takes them */
	d->admin.refusing = "cutover is being upgraded";
	deploy_side_stop(d, false);
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		close(sv[0]);
		close(sv[1]);
		snprintf(err, errlen, "fork: %s", strerror(-rc));
		d->admin.refusing = NULL;
		if (daemon_has_managed(d))
			deploy_side_start(d);
		return rc;
	}
	if (pid == 0) {
		close(sv[0]);
		exec_child(d, binary, sv[1]);
	}
	close(sv[1]);
	u->pid = pid;
	u->state = UPGRADE_RUNNING;
	nfds = collect_fds(d, fds);
	rc = send_fds(sv[0], fds, nfds);
	u->pid_io.fd = pidfd_open(pid, 0);
	if (u->pid_io.fd >= 0)
		loop_add(&d->loop, &u->pid_io, u->pid_io.fd, EPOLLIN, upgrade_exited);
	loop_add(&d->loop, &u->sock_io, sv[0], EPOLLIN, upgrade_message);
	loop_timer_set(&d->loop, &u->timer, d->loop.now_ms + d->cfg->timeouts.upgrade, upgrade_timeout);
	log_info("upgrade: started %s (pid %d) and handed it %zu listening socket%s; waiting for it to be ready", binary,
		 (int)pid, nfds, nfds == 1 ? "" : "s");
	/* a peer gone already (EPIPE, ECONNRESET) exited or closed its end:
	 * its pidfd (how it exited) or the timeout says the rest */
	if (rc < 0 && rc != -EPIPE && rc != -ECONNRESET)
		upgrade_end(d, true, "cannot hand the sockets to the new daemon: %s", strerror(-rc));
	return 0;
}

int upgrade_receive(struct daemon *d)
{
	const char *text = getenv("CUTOVER_UPGRADE_FD");
	union {
		char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
		struct cmsghdr align;
	} u;
	char hello[64];
	struct iovec iov = { hello, sizeof(hello) - 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	struct timeval tv = { .tv_sec = 10 };
	struct cmsghdr *cm;
	char *end;
	long fd;
	ssize_t n;
	int rc = 0;

	d->upgrade.from_fd = -1;
	if (getenv("CUTOVER_UPGRADE_ACTIVATED"))
		d->systemd.activated = text != NULL;
	unsetenv("CUTOVER_UPGRADE_ACTIVATED");
	if (!text)
		return 0;
	fd = strtol(text, &end, 10);
	unsetenv("CUTOVER_UPGRADE_FD");
	if (*end || fd < 3 || fcntl((int)fd, F_GETFD) < 0) {
		log_error("CUTOVER_UPGRADE_FD=%s is not an open descriptor: not started by `cutover upgrade`", text);
		return -EBADF;
	}
	fcntl((int)fd, F_SETFD, FD_CLOEXEC);
	setsockopt((int)fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	n = recvmsg((int)fd, &msg, MSG_CMSG_CLOEXEC);
	if (n <= 0 || (size_t)n < sizeof(HELLO) || memcmp(hello, HELLO, sizeof(HELLO))) {
		log_error("upgrade: no sockets from the previous daemon (%s)", n < 0 ? strerror(errno) : "bad message");
		close((int)fd);
		return n < 0 ? -errno : -EPROTO;
	}
	d->upgrade.from_fd = (int)fd;
	d->upgrade.from_pid = getppid();
	d->inherited.from = "the previous daemon";
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		size_t nfds;
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		nfds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < nfds; i++) {
			int one;
			memcpy(&one, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (inherited_add(&d->inherited, one, NULL) < 0 && !rc)
				rc = -EPROTO;
		}
	}
	if (rc < 0)
		log_error("upgrade: a descriptor from the previous daemon is not a listening socket");
	else
		log_info("upgrade: taking over from pid %d with %zu listening socket%s", (int)d->upgrade.from_pid,
			 d->inherited.n, d->inherited.n == 1 ? "" : "s");
	return rc;
}

bool upgrade_ready(struct daemon *d)
{
	char msg[32];
	int n;

	if (d->upgrade.from_fd < 0)
		return false;
	/* under systemd the service's main process is this one from now on.
	 * Said before the previous daemon hears it: once told, it drains and
	 * exits, and systemd must know the new main pid by then (or it takes
	 * that exit for the end of the service) */
	systemd_notify(d, "MAINPID=%d\nREADY=1\nSTATUS=serving (upgraded from pid %d)", (int)getpid(),
		       (int)d->upgrade.from_pid);
	n = snprintf(msg, sizeof(msg), "ready %d", (int)getpid());
	if (send(d->upgrade.from_fd, msg, (size_t)n, MSG_NOSIGNAL) < 0)
		log_warn("upgrade: cannot tell the previous daemon we are ready: %s", strerror(errno));
	close(d->upgrade.from_fd);
	d->upgrade.from_fd = -1;
	return true;
}

void upgrade_release(struct daemon *d)
{
	struct upgrade *u = &d->upgrade;

	if (u->state == UPGRADE_RUNNING) {
		/* shutting down before it was ready: it goes down with us */
		upgrade_end(d, false, "the old daemon stopped first");
	}
	upgrade_stop_watching(d);
	if (u->from_fd >= 0) {
		close(u->from_fd);
		u->from_fd = -1;
	}
}

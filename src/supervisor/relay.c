/* relay.c - the log relay: one small process per redacted instance that
 * copies the instance's stdout and stderr into its log file with every
 * secret value replaced by [redacted:NAME] (docs/internals/redaction.md).
 *
 * spawn.c starts it as `cutover log-relay ID` with its descriptors in
 * place (SUP_RELAY_FD_*): the instance's output pipe, the log file opened
 * O_APPEND (so the log thread's copy-and-truncate rotation goes on as
 * for an instance that writes its log itself), the serialized redactor,
 * the ready pipe the instance's child waits on before its exec, and the
 * pipe for its pid.  That first process, the starter, only forks the
 * relay and exits, so the relay is not the daemon's child; the daemon
 * reaps the starter from its loop (the functions at the end of this file).
 * The relay, in a session of its own, sends its pid, reads the redactor
 * into sodium memory, says it is ready, then copies pipe -> redact_stream
 * -> log until EOF, which comes when the instance and everything that
 * inherited its output are gone.  It does not
 * depend on the daemon at all: a daemon killed with SIGKILL leaves the
 * instance and its relay running, and logging, redacted.
 *
 * Signals that could cut a log short (SIGHUP, SIGINT, SIGQUIT, SIGPIPE,
 * ...) are ignored; SIGTERM ends it after it has copied what is in the
 * pipe and flushed what it held back.  No value ever appears in its argv
 * or its environment (which is empty); it is not dumpable (no core file
 * with values, no ptrace by other processes of the same user).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
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

#define RELAY_CHUNK 65536
#define RELAY_DRAIN_MAX (16 * RELAY_CHUNK) /* read after SIGTERM, at most: a pipe's worth, and more */

struct relay {
	const char *id;             /* for messages */
	struct redactor *redactor;
	struct redact_stream *stream;
	char *in;                   /* sodium_malloc'd: the raw output holds values */
	char out[RELAY_CHUNK];      /* redacted, waiting for write() */
	size_t out_len;
	bool write_failed;          /* said once */
};

/* Say something about the relay itself: on fd 2, the log file. */
static void relay_say(const struct relay *rl, const char *what, int error)
{
	dprintf(2, "cutover log-relay %s: %s%s%s\n", rl->id, what, error ? ": " : "", error ? strerror(error) : "");
}

/* Write out what is buffered.  A failing write (a full disk) loses those
 * bytes rather than stopping the copy: the instance must never block on a
 * pipe nobody reads. */
static void relay_flush(struct relay *rl)
{
	size_t off = 0;

	while (off < rl->out_len) {
		ssize_t n = write(SUP_RELAY_FD_LOG, rl->out + off, rl->out_len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (!rl->write_failed)
				relay_say(rl, "cannot write the log, output lost", n < 0 ? errno : EIO);
			rl->write_failed = true;
			break;
		}
		off += (size_t)n;
	}
	rl->out_len = 0;
}

/* The stream's emit: buffer, so that a read gives one write(). */
static int relay_emit(void *ctx, const char *data, size_t len)
{
	struct relay *rl = ctx;

	while (len > 0) {
		size_t n = sizeof(rl->out) - rl->out_len < len ? sizeof(rl->out) - rl->out_len : len;
		memcpy(rl->out + rl->out_len, data, n);
		rl->out_len += n;
		data += n;
		len -= n;
		if (rl->out_len == sizeof(rl->out))
			relay_flush(rl);
	}
	return 0;
}

/* Read the serialized redactor from SUP_RELAY_FD_BLOB to its end into
 * sodium memory, empty it (a memfd) and close it.  Returns 0 with
 * rl->redactor, or -errno (-EBADMSG: not a redactor). */
static int relay_load(struct relay *rl)
{
	size_t cap = 4096, len = 0;
	uint8_t *blob = sodium_malloc(cap);
	int r = 0;

	if (!blob)
		return -ENOMEM;
	for (;;) {
		ssize_t n;
		if (len == cap) {
			uint8_t *bigger = cap * 2 <= SUP_RELAY_BLOB_MAX ? sodium_malloc(cap * 2) : NULL;
			if (!bigger) {
				r = cap * 2 > SUP_RELAY_BLOB_MAX ? -EFBIG : -ENOMEM;
				break;
			}
			memcpy(bigger, blob, len);
			sodium_free(blob);
			blob = bigger;
			cap *= 2;
		}
		n = read(SUP_RELAY_FD_BLOB, blob + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : 0;
			break;
		}
		len += (size_t)n;
	}
	if (ftruncate(SUP_RELAY_FD_BLOB, 0) < 0) {
		/* a pipe: nothing to empty */
	}
	close(SUP_RELAY_FD_BLOB);
	if (r == 0)
		r = redactor_deserialize(blob, len, &rl->redactor);
	sodium_free(blob);
	return r;
}

/* Tell the instance's child waiting on SUP_RELAY_FD_READY how it went
 * (error 0: ready), and close it. */
static void relay_ready(int error)
{
	struct sup_child_report report = { .stage = error ? SUP_STAGE_RELAY : SUP_STAGE_NONE, .error = error };

	if (write(SUP_RELAY_FD_READY, &report, sizeof(report)) < 0) {
		/* the child is gone (its spawn failed): EOF on our input follows */
	}
	close(SUP_RELAY_FD_READY);
}

/* Ignore what could cut the log short; take SIGTERM through a signalfd.
 * Returns the signalfd or -errno. */
static int relay_signals(void)
{
	static const int ignored[] = { SIGHUP, SIGINT, SIGQUIT, SIGPIPE, SIGUSR1, SIGUSR2, SIGALRM,
				       SIGTSTP, SIGTTIN, SIGTTOU, SIGXFSZ };
	struct sigaction ign = { .sa_handler = SIG_IGN };
	sigset_t term;
	int fd;

	for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
		sigaction(ignored[i], &ign, NULL);
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &term, NULL) < 0)
		return -errno;
	fd = signalfd(-1, &term, SFD_CLOEXEC | SFD_NONBLOCK);
	return fd < 0 ? -errno : fd;
}

/* Copy what one read gives through the stream.  Returns > 0 (copied), 0
 * (EOF), or -errno (-EAGAIN: nothing there now, non-blocking). */
static int relay_copy_once(struct relay *rl)
{
	ssize_t n;

	do
		n = read(SUP_RELAY_FD_IN, rl->in, RELAY_CHUNK);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n < 0 ? -errno : 0;
	redact_stream_feed(rl->stream, rl->in, (size_t)n); /* relay_emit never fails */
	relay_flush(rl);
	return 1;
}

/* Copy until EOF, or until SIGTERM and then what the pipe holds. */
static void relay_copy(struct relay *rl, int sigfd)
{
	struct pollfd fds[2] = { { .fd = SUP_RELAY_FD_IN, .events = POLLIN }, { .fd = sigfd, .events = POLLIN } };

	for (;;) {
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			relay_say(rl, "poll", errno);
			return;
		}
		if (fds[1].revents & POLLIN) {
			/* SIGTERM: what the instance has written so far, then stop */
			if (fcntl(SUP_RELAY_FD_IN, F_SETFL, O_NONBLOCK) < 0)
				return;
			for (int i = 0; i < RELAY_DRAIN_MAX / RELAY_CHUNK && relay_copy_once(rl) > 0; i++)
				;
			return;
		}
		if (fds[0].revents && relay_copy_once(rl) <= 0)
			return; /* EOF, or a read error that will not go away */
	}
}

/* Leave the daemon: fork, the parent (the starter, the daemon's child)
 * exits, the child goes on in a session of its own and sends its pid
 * first (before it says it is ready).  Returns 0 in the relay, or -errno
 * (the fork failed). */
static int relay_detach(void)
{
	int32_t pid;
	pid_t child = fork();

	if (child < 0)
		return -errno;
	if (child > 0)
		_exit(0);
	setsid(); /* not a group leader: the starter led it */
	pid = (int32_t)getpid();
	if (write(SUP_RELAY_FD_PID, &pid, sizeof(pid)) < 0) {
		/* the daemon does not learn it; nothing else depends on it */
	}
	close(SUP_RELAY_FD_PID);
	return 0;
}

int sup_relay_main(int argc, char **argv)
{
	struct relay *rl = calloc(1, sizeof(*rl));
	int sigfd = -1, r;

	if (!rl)
		return 1;
	rl->id = argc > 1 ? argv[1] : "?";
	if ((r = relay_detach()) < 0) {
		relay_say(rl, "cannot fork", -r);
		relay_ready(-r);
		free(rl);
		return 1;
	}
	prctl(PR_SET_DUMPABLE, 0);
	sigfd = relay_signals();
	if (sigfd < 0 || sodium_init() < 0) {
		r = sigfd < 0 ? sigfd : -ENOMEM;
		relay_say(rl, "cannot start", -r);
		relay_ready(-r);
		goto out;
	}
	r = relay_load(rl);
	if (r == 0 && !(rl->in = sodium_malloc(RELAY_CHUNK)))
		r = -ENOMEM;
	if (r == 0)
		r = redact_stream_new(rl->redactor, relay_emit, rl, &rl->stream);
	if (r < 0) {
		relay_say(rl, r == -EBADMSG ? "the redactor it was given is malformed" : "cannot load the redactor",
			  -r);
		relay_ready(-r);
		goto out;
	}
	relay_ready(0);
	relay_copy(rl, sigfd);
	redact_stream_finish(rl->stream);
	relay_flush(rl);
out:
	redact_stream_free(rl->stream);
	sodium_free(rl->in);
	redactor_free(rl->redactor);
	if (sigfd >= 0)
		close(sigfd);
	free(rl);
	return r < 0 ? 1 : 0;
}

/* --- the daemon's side: reaping the starters --- */

struct relay_starter {
	struct list_head link;      /* in sup->relay_starters */
	struct supervisor *sup;
	struct loop_io io;          /* its pidfd */
};

static void starter_free(struct relay_starter *st, bool wait)
{
	siginfo_t si;

	while (waitid(P_PIDFD, (id_t)st->io.fd, &si, WEXITED | (wait ? 0 : WNOHANG)) < 0 && errno == EINTR)
		;
	loop_del(st->sup->loop, &st->io);
	close(st->io.fd);
	list_del(&st->link);
	free(st);
}

/* The starter exited (it does right after its fork).  Freed here: it has
 * one descriptor, so no other event of this iteration points to it, and
 * nothing else frees it but supervisor_free. */
static void on_starter(struct loop *loop UNUSED, struct loop_io *io, uint32_t events UNUSED)
{
	struct relay_starter *st = container_of(io, struct relay_starter, io);
	siginfo_t si = { 0 };

	if (waitid(P_PIDFD, (id_t)io->fd, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == 0)
		return; /* not yet */
	starter_free(st, false);
}

int sup_relay_starter_watch(struct supervisor *sup, pid_t pid, int pidfd)
{
	struct relay_starter *st = calloc(1, sizeof(*st));
	int r = -ENOMEM;

	if (st) {
		st->sup = sup;
		r = loop_add(sup->loop, &st->io, pidfd, EPOLLIN, on_starter);
	}
	if (r < 0) {
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		close(pidfd);
		free(st);
		return r;
	}
	list_add_tail(&sup->relay_starters, &st->link);
	return 0;
}

void sup_relay_starters_reap(struct supervisor *sup)
{
	struct list_head *pos, *tmp;

	list_for_each_safe(pos, tmp, &sup->relay_starters)
		starter_free(container_of(pos, struct relay_starter, link), true);
}

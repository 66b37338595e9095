/* logs.c - the log thread: keeps each instance's log file under its size cap.
 *
 * Instances write their stdout and stderr straight into their log file
 * (O_APPEND), so they keep logging when the daemon is gone (see
 * docs/internals/supervisor.md).  This thread, with an epoll of its own,
 * notices growth through inotify (IN_MODIFY) plus a 1 s sweep, and rotates a
 * full log by copy-and-truncate: LOG.N-1 -> LOG.N ... LOG.1 -> LOG.2, LOG is
 * copied to LOG.1, then LOG is truncated; the writer's O_APPEND makes its
 * next write land at the new end.  The loop thread only queues commands
 * (add, remove, quit) under a mutex and pokes an eventfd; it never touches a
 * log file.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include "base/list.h"
#include "supervisor/supervisor-internal.h"

#define SWEEP_INTERVAL_S 1
#define COPY_CHUNK (1u << 20)

enum log_cmd { LOG_CMD_NONE, LOG_CMD_ADD, LOG_CMD_REMOVE };

struct sup_log {
	struct list_head cmd;     /* in logs->cmds while a command is queued (under lock) */
	enum log_cmd pending;     /* under lock */
	struct list_head node;    /* thread only: in logs->active */
	char *path;
	uint64_t max_bytes;
	uint32_t keep;
	int fd;                   /* thread only: O_RDWR on the log, -1 if it could not be opened */
	int wd;                   /* thread only: inotify watch, -1 if none */
	bool dirty;               /* thread only: modified since the last check */
};

struct sup_logs {
	pthread_t thread;
	int epfd, eventfd, inotify_fd, timerfd;
	pthread_mutex_t lock;
	struct list_head cmds;    /* under lock */
	bool quit;                /* under lock */
	struct list_head active;  /* thread only */
};

static void log_free(struct sup_log *log)
{
	free(log->path);
	free(log);
}

/* Copy everything in log->fd to LOG.1 (replacing it).  Returns 0 or -errno. */
static int copy_to_first(struct sup_log *log, const char *dst_path)
{
	int dst = open(dst_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0640), r = 0;
	off_t in = 0;

	if (dst < 0)
		return -errno;
	for (;;) {
		ssize_t n = copy_file_range(log->fd, &in, dst, NULL, COPY_CHUNK, 0);
		if (n > 0)
			continue;
		if (n == 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP) {
			r = -errno;
			break;
		}
		/* no in-kernel copy between these files: plain reads and writes */
		for (;;) {
			char buf[65536];
			ssize_t got = pread(log->fd, buf, sizeof(buf), in), off = 0;
			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0) {
				r = got < 0 ? -errno : 0;
				break;
			}
			while (off < got) {
				ssize_t w = write(dst, buf + off, (size_t)(got - off));
				if (w < 0 && errno == EINTR)
					continue;
				if (w < 0) {
					r = -errno;
					break;
				}
				off += w;
			}
			if (r < 0)
				break;
			in += got;
		}
		break;
	}
	if (close(dst) < 0 && r == 0)
		r = -errno;
	return r;
}

/* Rotate log: shift the kept files, copy the log into LOG.1, truncate it.
 * Whatever the instance writes between the end of the copy and the truncate
 * is lost (a few system calls' worth), the price of copy-and-truncate. */
static void rotate(struct sup_log *log)
{
	char from[PATH_MAX], to[PATH_MAX];

	for (uint32_t i = log->keep; i > 1; i--) {
		if ((size_t)snprintf(from, sizeof(from), "%s.%u", log->path, i - 1) >= sizeof(from) ||
		    (size_t)snprintf(to, sizeof(to), "%s.%u", log->path, i) >= sizeof(to))
			return;
		rename(from, to); /* ENOENT until that many rotations happened */
	}
	if (log->keep > 0) {
		if ((size_t)snprintf(to, sizeof(to), "%s.1", log->path) >= sizeof(to))
			return;
		if (copy_to_first(log, to) < 0)
			return; /* no room for LOG.1: keep the log rather than lose it */
	}
	if (ftruncate(log->fd, 0) < 0) {
		/* retried at the next change or sweep */
	}
}

static void check(struct sup_log *log)
{
	struct stat st;

	log->dirty = false;
	if (log->fd < 0)
		return;
	if (fstat(log->fd, &st) == 0 && (uint64_t)st.st_size >= log->max_bytes)
		rotate(log);
}

static void log_open(struct sup_logs *logs, struct sup_log *log)
{
	log->fd = open(log->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
	log->wd = -1;
	if (log->fd < 0)
		return; /* the child reports an unwritable log itself */
	if (logs->inotify_fd >= 0)
		log->wd = inotify_add_watch(logs->inotify_fd, log->path, IN_MODIFY);
	list_add_tail(&logs->active, &log->node);
	check(log);
}

static void log_close(struct sup_logs *logs, struct sup_log *log)
{
	struct list_head *pos, *tmp;
	bool shared = false;

	if (log->fd < 0)
		return;
	check(log);
	list_del(&log->node);
	/* Watches are per inode: two logs on one file share one. */
	list_for_each_safe(pos, tmp, &logs->active)
		if (container_of(pos, struct sup_log, node)->wd == log->wd)
			shared = true;
	if (log->wd >= 0 && !shared)
		inotify_rm_watch(logs->inotify_fd, log->wd);
	close(log->fd);
	log->fd = -1;
}

/* Take the queued commands one at a time, so that sup_logs_remove() always
 * sees a log either queued or owned by the thread.  Returns true on quit. */
static bool run_commands(struct sup_logs *logs)
{
	uint64_t count;

	if (read(logs->eventfd, &count, sizeof(count)) < 0) {
		/* EAGAIN: a poke already consumed */
	}
	for (;;) {
		struct sup_log *log;
		enum log_cmd cmd;
		bool quit;

		pthread_mutex_lock(&logs->lock);
		quit = logs->quit;
		if (list_empty(&logs->cmds)) {
			pthread_mutex_unlock(&logs->lock);
			return quit;
		}
		log = container_of(logs->cmds.next, struct sup_log, cmd);
		list_del(&log->cmd);
		cmd = log->pending;
		log->pending = LOG_CMD_NONE;
		pthread_mutex_unlock(&logs->lock);

		if (cmd == LOG_CMD_ADD) {
			log_open(logs, log);
		} else {
			log_close(logs, log);
			log_free(log);
		}
	}
}

static void on_inotify(struct sup_logs *logs)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	struct list_head *pos, *tmp;
	bool all = false;
	ssize_t n;

	while ((n = read(logs->inotify_fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			if (ev->mask & IN_Q_OVERFLOW)
				all = true;
			list_for_each_safe(pos, tmp, &logs->active) {
				struct sup_log *log = container_of(pos, struct sup_log, node);
				if (log->wd == ev->wd)
					log->dirty = true;
			}
			p += sizeof(*ev) + ev->len;
		}
	}
	list_for_each_safe(pos, tmp, &logs->active) {
		struct sup_log *log = container_of(pos, struct sup_log, node);
		if (log->dirty || all)
			check(log);
	}
}

static void sweep(struct sup_logs *logs)
{
	struct list_head *pos, *tmp;
	uint64_t count;

	if (read(logs->timerfd, &count, sizeof(count)) < 0) {
		/* EAGAIN: nothing expired after all */
	}
	list_for_each_safe(pos, tmp, &logs->active)
		check(container_of(pos, struct sup_log, node));
}

static void *logs_main(void *arg)
{
	struct sup_logs *logs = arg;
	struct list_head *pos, *tmp;

	for (;;) {
		struct epoll_event ev[4];
		bool quit = false;
		int n = epoll_wait(logs->epfd, ev, 4, -1);

		if (n < 0 && errno != EINTR)
			break; /* cannot happen with a valid epfd; quit rather than spin */
		for (int i = 0; i < n; i++) {
			if (ev[i].data.fd == logs->eventfd)
				quit = run_commands(logs) || quit;
			else if (ev[i].data.fd == logs->inotify_fd)
				on_inotify(logs);
			else
				sweep(logs);
		}
		if (quit)
			break;
	}
	list_for_each_safe(pos, tmp, &logs->active) {
		struct sup_log *log = container_of(pos, struct sup_log, node);
		log_close(logs, log);
		log_free(log);
	}
	return NULL;
}

static int watch(struct sup_logs *logs, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	if (epoll_ctl(logs->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	return 0;
}

static void close_fds(struct sup_logs *logs)
{
	int *fds[] = { &logs->epfd, &logs->eventfd, &logs->inotify_fd, &logs->timerfd };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

int sup_logs_start(struct sup_logs **ret)
{
	struct itimerspec every = { .it_interval = { SWEEP_INTERVAL_S, 0 }, .it_value = { SWEEP_INTERVAL_S, 0 } };
	struct sup_logs *logs = calloc(1, sizeof(*logs));
	sigset_t all, old;
	int r;

	if (!logs)
		return -ENOMEM;
	list_init(&logs->cmds);
	list_init(&logs->active);
	logs->epfd = epoll_create1(EPOLL_CLOEXEC);
	logs->eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	logs->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	/* Without inotify (limit reached), the sweep alone keeps the caps. */
	logs->inotify_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (logs->epfd < 0 || logs->eventfd < 0 || logs->timerfd < 0) {
		r = -errno;
		goto fail_fds;
	}
	if (timerfd_settime(logs->timerfd, 0, &every, NULL) < 0) {
		r = -errno;
		goto fail_fds;
	}
	if ((r = watch(logs, logs->eventfd)) < 0 || (r = watch(logs, logs->timerfd)) < 0 ||
	    (logs->inotify_fd >= 0 && (r = watch(logs, logs->inotify_fd)) < 0))
		goto fail_fds;
	r = -pthread_mutex_init(&logs->lock, NULL);
	if (r < 0)
		goto fail_fds;
	/* The thread must not take the process-directed signals the daemon
	 * reads from its signalfd: block everything while creating it. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = -pthread_create(&logs->thread, NULL, logs_main, logs);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0)
		goto fail_lock;
	*ret = logs;
	return 0;

fail_lock:
	pthread_mutex_destroy(&logs->lock);
fail_fds:
	close_fds(logs);
	free(logs);
	return r;
}

static void poke(struct sup_logs *logs)
{
	uint64_t one = 1;

	if (write(logs->eventfd, &one, sizeof(one)) < 0) {
		/* EAGAIN only if the counter is near 2^64: the thread is awake anyway */
	}
}

void sup_logs_stop(struct sup_logs *logs)
{
	if (!logs)
		return;
	pthread_mutex_lock(&logs->lock);
	logs->quit = true;
	pthread_mutex_unlock(&logs->lock);
	poke(logs);
	pthread_join(logs->thread, NULL);
	/* The thread ran every queued command before quitting; a command
	 * queued after that cannot exist (callers are stopped first). */
	while (!list_empty(&logs->cmds)) {
		struct sup_log *log = container_of(logs->cmds.next, struct sup_log, cmd);
		list_del(&log->cmd);
		log_free(log);
	}
	pthread_mutex_destroy(&logs->lock);
	close_fds(logs);
	free(logs);
}

struct sup_log *sup_logs_add(struct sup_logs *logs, const char *path, uint64_t max_bytes, uint32_t keep)
{
	struct sup_log *log = calloc(1, sizeof(*log));

	if (!log)
		return NULL;
	log->path = strdup(path);
	if (!log->path) {
		free(log);
		return NULL;
	}
	log->max_bytes = max_bytes;
	log->keep = keep;
	log->fd = log->wd = -1;
	list_init(&log->node);
	pthread_mutex_lock(&logs->lock);
	log->pending = LOG_CMD_ADD;
	list_add_tail(&logs->cmds, &log->cmd);
	pthread_mutex_unlock(&logs->lock);
	poke(logs);
	return log;
}

void sup_logs_remove(struct sup_logs *logs, struct sup_log *log)
{
	bool unused;

	if (!log)
		return;
	pthread_mutex_lock(&logs->lock);
	unused = log->pending == LOG_CMD_ADD; /* the thread has not seen it yet */
	if (unused) {
		list_del(&log->cmd);
	} else {
		log->pending = LOG_CMD_REMOVE;
		list_add_tail(&logs->cmds, &log->cmd);
	}
	pthread_mutex_unlock(&logs->lock);
	if (unused)
		log_free(log);
	else
		poke(logs);
}

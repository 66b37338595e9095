/* systemd.c - the daemon's side of systemd's protocols, written from their
 * documentation (sd_notify(3), sd_listen_fds(3), systemd.service(5)); no
 * libsystemd.
 *
 *   notify      Type=notify: "READY=1" once listening and recovered,
 *               "RELOADING=1" ... "READY=1" around a SIGHUP, "STOPPING=1"
 *               when draining, and "STATUS=" lines for `systemctl status`.
 *               An upgrade hands the service over: the new daemon sends
 *               "MAINPID=" (itself) with its "READY=1" before the old one
 *               learns it is ready, and the old one says nothing more (a
 *               "STOPPING=1" would make systemd stop the whole service;
 *               NotifyAccess=all lets either send).  Datagrams to the Unix
 *               socket in NOTIFY_SOCKET ('@': the abstract namespace).
 *   watchdog    WatchdogSec: WATCHDOG_USEC (for us if WATCHDOG_PID is our
 *               pid or unset); "WATCHDOG=1" every half of it from a loop
 *               timer, so a loop that is stuck stops petting and systemd
 *               restarts the daemon.
 *   activation  a socket unit: LISTEN_PID (our pid), LISTEN_FDS (count, from
 *               fd 3), LISTEN_FDNAMES (colon-separated).  The sockets are
 *               systemd's and outlive every restart of the daemon, so a
 *               restart refuses no connection: they wait in the accept queue.
 *
 * LISTEN_* are removed from the environment once read (they describe this
 * process only).  NOTIFY_SOCKET stays for a new binary started by an upgrade.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "base/list.h"
#include "base/log.h"
#include "daemon/daemon-internal.h"
#include "loop/inherit.h"
#include "loop/loop.h"

#define LISTEN_FDS_START 3

/* A decimal number that fills s; false otherwise. */
static bool parse_ulong(const char *s, unsigned long long *ret)
{
	char *end;

	if (!s || !*s || *s == '-')
		return false;
	errno = 0;
	*ret = strtoull(s, &end, 10);
	return !errno && !*end;
}

static int listen_fds(struct daemon *d)
{
	const char *pid_text = getenv("LISTEN_PID"), *fds_text = getenv("LISTEN_FDS");
	char *names = getenv("LISTEN_FDNAMES") ? strdup(getenv("LISTEN_FDNAMES")) : NULL, *save = NULL, *name;
	unsigned long long pid, n;
	int rc = 0;

	if (!fds_text)
		goto out;
	if (!parse_ulong(pid_text, &pid) || !parse_ulong(fds_text, &n) || n > 1024) {
		log_error("socket activation: LISTEN_PID=%s LISTEN_FDS=%s are not numbers; ignored",
			  pid_text ? pid_text : "(unset)", fds_text);
		goto out;
	}
	if (pid != (unsigned long long)getpid()) {
		log_warn("socket activation: LISTEN_PID=%llu is not this process (%d); the sockets are not ours", pid,
			 (int)getpid());
		goto out;
	}
	d->inherited.from = "systemd";
	name = names ? strtok_r(names, ":", &save) : NULL;
	for (unsigned long long i = 0; i < n; i++) {
		int fd = LISTEN_FDS_START + (int)i;
		rc = inherited_add(&d->inherited, fd, name);
		if (rc < 0) {
			log_error("socket activation: fd %d%s%s is not a listening stream socket: %s", fd,
				  name ? " named " : "", name ? name : "", strerror(-rc));
			break;
		}
		name = name ? strtok_r(NULL, ":", &save) : NULL;
	}
	if (rc == 0)
		log_info("socket activation: %llu socket%s from systemd", n, n == 1 ? "" : "s");
	d->systemd.activated = rc == 0 && n > 0;
out:
	free(names);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return rc;
}

int systemd_init(struct daemon *d)
{
	const char *notify = getenv("NOTIFY_SOCKET"), *usec = getenv("WATCHDOG_USEC"), *wpid = getenv("WATCHDOG_PID");
	unsigned long long v, pid;

	if (notify && (notify[0] == '/' || notify[0] == '@') && strlen(notify) < sizeof(d->systemd.notify_path))
		strcpy(d->systemd.notify_path, notify);
	else if (notify)
		log_warn("NOTIFY_SOCKET=%s is not a Unix socket path: systemd will not be told we are ready", notify);
	if (usec && parse_ulong(usec, &v) && v && (!wpid || (parse_ulong(wpid, &pid) && pid == (unsigned long long)getpid())))
		d->systemd.watchdog_ms = v / 2000 ? v / 2000 : 1;
	return listen_fds(d);
}

void systemd_notify(struct daemon *d, const char *fmt, ...)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	socklen_t len;
	char msg[512];
	va_list ap;
	int fd, n;

	if (!d->systemd.notify_path[0])
		return;
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(msg))
		return;
	strcpy(sun.sun_path, d->systemd.notify_path);
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(sun.sun_path));
	if (sun.sun_path[0] == '@')
		sun.sun_path[0] = 0; /* abstract: no terminating NUL counted */
	else
		len++;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, msg, (size_t)n, MSG_NOSIGNAL, (struct sockaddr *)&sun, len) < 0)
		log_debug("notify %s: %s", d->systemd.notify_path, strerror(errno));
	close(fd);
}

static void watchdog_fired(struct loop *loop, struct loop_timer *timer)
{
	struct daemon *d = container_of(timer, struct daemon, systemd.watchdog);

	systemd_notify(d, "WATCHDOG=1");
	loop_timer_set(loop, timer, loop->now_ms + d->systemd.watchdog_ms, watchdog_fired);
}

void systemd_watchdog_start(struct daemon *d)
{
	if (!d->systemd.watchdog_ms || !d->systemd.notify_path[0])
		return;
	log_info("systemd watchdog: petting every %llu ms", (unsigned long long)d->systemd.watchdog_ms);
	watchdog_fired(&d->loop, &d->systemd.watchdog);
}

void systemd_handed_over(struct daemon *d)
{
	loop_timer_cancel(&d->loop, &d->systemd.watchdog);
	d->systemd.watchdog_ms = 0;
	d->systemd.notify_path[0] = 0;
}

void systemd_release(struct daemon *d)
{
	loop_timer_cancel(&d->loop, &d->systemd.watchdog);
}

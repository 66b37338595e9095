/* health.c - active HTTP health checks, driven by the event loop.
 *
 * A tick timer starts one probe every interval, measured from one probe's
 * start to the next; as the timeout is shorter than the interval, a probe
 * has always ended when the next one is due.  A probe is a non-blocking
 * connect, one small GET with "Connection: close", and reading the response
 * head into a fixed buffer until http_response_parse() accepts or rejects
 * it; a timeout timer bounds the whole probe.  The socket is closed as soon as the head is
 * judged: the body is never read.  Each outcome feeds a small state machine
 * (UNKNOWN / HEALTHY / UNHEALTHY with consecutive thresholds and a start
 * grace), and only changes of state reach the owner's callback.
 *
 * The callback is always the last thing a handler does, so the owner may
 * call health_stop() from it; the memory is then reclaimed by a zero-delay
 * timer (see health.h for the lifetime rules).
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>
#include "base/list.h"
#include "base/util.h"
#include "deploy/health.h"
#include "http/parser.h"
#include "loop/loop.h"

#define STARTUP_PROBE_MS 50 /* probe period until the first success, within the start grace */

static const char USER_AGENT[] = "cutover-health";

static void tick_cb(struct loop *loop, struct loop_timer *timer);
static void io_cb(struct loop *loop, struct loop_io *io, uint32_t events);

/* --- validation ---------------------------------------------------------- */

/* Visible ASCII only: no space, CR, LF or other control characters can
 * reach the request line or the Host field. */
static bool visible_ascii(const char *s, size_t max)
{
	size_t n = 0;

	for (; *s; s++, n++)
		if (n >= max || (unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return n > 0;
}

static bool spec_valid(const struct health_spec *spec)
{
	const struct sockaddr *sa = (const struct sockaddr *)&spec->addr;

	if (!spec->path || spec->path[0] != '/' || !visible_ascii(spec->path, HEALTH_PATH_MAX - 1))
		return false;
	if (!spec->host || !visible_ascii(spec->host, HEALTH_HOST_MAX - 1))
		return false;
	if (spec->interval_ms == 0 || spec->timeout_ms == 0 || spec->timeout_ms >= spec->interval_ms)
		return false;
	if (spec->healthy_threshold == 0 || spec->unhealthy_threshold == 0)
		return false;
	if (spec->addr_len > sizeof(spec->addr))
		return false;
	if (sa->sa_family == AF_INET)
		return spec->addr_len >= sizeof(struct sockaddr_in);
	if (sa->sa_family == AF_INET6)
		return spec->addr_len >= sizeof(struct sockaddr_in6);
	return false;
}

/* --- state machine --------------------------------------------------------- */

/* Count one outcome and return the state it leads to.
 * Failures before the first success do not count while the start grace
 * runs; once it is over without any success, one more failure is enough
 * (the instance had the whole grace to come up). */
static enum health_state judge(struct health_check *hc, bool ok)
{
	if (ok) {
		hc->stats.successes++;
		hc->seen_success = true;
		hc->consecutive_failures = 0;
		if (hc->consecutive_successes < UINT32_MAX)
			hc->consecutive_successes++;
		if (hc->state != HEALTH_HEALTHY && hc->consecutive_successes >= hc->spec.healthy_threshold)
			return HEALTH_HEALTHY;
		return hc->state;
	}
	hc->stats.failures++;
	snprintf(hc->stats.last_error, sizeof(hc->stats.last_error), "%s", hc->reason);
	hc->consecutive_successes = 0;
	if (!hc->seen_success && !hc->grace_over)
		return hc->state;
	if (hc->consecutive_failures < UINT32_MAX)
		hc->consecutive_failures++;
	if (hc->state != HEALTH_UNHEALTHY &&
	    (hc->consecutive_failures >= hc->spec.unhealthy_threshold ||
	     (!hc->seen_success && hc->spec.start_grace_ms > 0)))
		return HEALTH_UNHEALTHY;
	return hc->state;
}

/* Enter state and tell the owner.  Callers return right after: the
 * callback may have stopped the check. */
static void notify(struct health_check *hc, enum health_state state, const char *reason)
{
	hc->state = state;
	if (hc->cb)
		hc->cb(hc, state, reason, hc->data);
}

static void grace_cb(struct loop *loop UNUSED, struct loop_timer *timer)
{
	struct health_check *hc = container_of(timer, struct health_check, grace_timer);

	hc->grace_over = true;
	if (hc->state == HEALTH_UNKNOWN && !hc->seen_success && hc->stats.failures > 0)
		notify(hc, HEALTH_UNHEALTHY, hc->stats.last_error);
}

/* --- one probe ----------------------------------------------------------- */

static void probe_close(struct health_check *hc)
{
	if (hc->io.fd >= 0) {
		loop_del(hc->loop, &hc->io);
		close(hc->io.fd);
		hc->io.fd = -1;
	}
	hc->phase = HEALTH_PROBE_IDLE;
}

/* End the probe in flight with its outcome.  reason is a static string, or
 * NULL when status (100..599) says it all. */
static void probe_done(struct health_check *hc, const char *reason, unsigned status)
{
	enum health_state next;
	bool ok = !reason && status >= 200 && status < 400;

	probe_close(hc);
	loop_timer_disarm(&hc->timeout_timer);
	if (reason) {
		snprintf(hc->reason, sizeof(hc->reason), "%s", reason);
	} else {
		snprintf(hc->reason, sizeof(hc->reason), "status %u", status);
		hc->stats.last_latency_us = (time_now_ns() - hc->probe_start_ns) / 1000u;
	}
	bool first_success = ok && !hc->seen_success;
	next = judge(hc, ok);
	if (first_success)
		/* out of the fast start-up probing: the next probe one interval
		 * after this one started, so that healthy_threshold successes are
		 * spread over the interval as configured */
		loop_timer_set(hc->loop, &hc->tick_timer, hc->probe_start_ns / 1000000u + hc->spec.interval_ms, tick_cb);
	if (next != hc->state)
		notify(hc, next, hc->reason);
}

static void tick_cb(struct loop *loop, struct loop_timer *timer);

static void timeout_cb(struct loop *loop UNUSED, struct loop_timer *timer)
{
	probe_done(container_of(timer, struct health_check, timeout_timer), "timeout", 0);
}

static void probe_start(struct health_check *hc)
{
	const struct sockaddr *sa = (const struct sockaddr *)&hc->spec.addr;
	int fd, r;

	hc->stats.probes++;
	hc->probe_start_ns = time_now_ns();
	hc->sent = hc->received = hc->head_off = 0;
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		probe_done(hc, "connect failed", 0);
		return;
	}
	r = connect(fd, sa, hc->spec.addr_len);
	if (r < 0 && errno != EINPROGRESS) {
		int err = errno;
		close(fd);
		probe_done(hc, err == ECONNREFUSED ? "connection refused" : "connect failed", 0);
		return;
	}
	hc->phase = r == 0 ? HEALTH_PROBE_SENDING : HEALTH_PROBE_CONNECTING;
	/* edge-triggered: registering a writable socket reports it at once */
	if (loop_add(hc->loop, &hc->io, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, io_cb) < 0) {
		close(fd);
		hc->io.fd = -1;
		probe_done(hc, "connect failed", 0);
		return;
	}
	/* from the real start: the loop's cached time may be a busy iteration old */
	loop_timer_set(hc->loop, &hc->timeout_timer, hc->probe_start_ns / 1000000u + hc->spec.timeout_ms,
		       timeout_cb);
}

/* Read until the socket would block, the head is judged, or it fails. */
static void probe_read(struct health_check *hc)
{
	static const struct http_limits limits = { .max_head_bytes = HEALTH_HEAD_MAX };
	struct http_response resp;
	struct http_error err;

	for (;;) {
		ssize_t n;

		if (hc->received == sizeof(hc->head_buf)) {
			probe_done(hc, "invalid response", 0); /* head too large */
			return;
		}
		n = read(hc->io.fd, hc->head_buf + hc->received, sizeof(hc->head_buf) - hc->received);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				probe_done(hc, "connection closed", 0); /* reset */
			return;
		}
		if (n == 0) {
			probe_done(hc, hc->received > hc->head_off ? "invalid response" : "connection closed", 0);
			return;
		}
		hc->received += (size_t)n;
		for (;;) {
			int r = http_response_parse(hc->head_buf + hc->head_off, hc->received - hc->head_off,
						    &limits, HTTP_METHOD_GET, &resp, &err);
			if (r == 0)
				break;
			if (r < 0 || resp.status == 101) { /* 101 without an Upgrade request */
				probe_done(hc, "invalid response", 0);
				return;
			}
			if (resp.status >= 200) {
				probe_done(hc, NULL, resp.status);
				return;
			}
			hc->head_off += (size_t)r; /* interim 1xx: the final head follows */
		}
	}
}

static void io_cb(struct loop *loop UNUSED, struct loop_io *io, uint32_t events)
{
	struct health_check *hc = container_of(io, struct health_check, io);

	if (hc->closing || hc->phase == HEALTH_PROBE_IDLE)
		return; /* stale event queued before the socket was closed */
	if (hc->phase == HEALTH_PROBE_CONNECTING) {
		int soerr = 0;
		socklen_t len = sizeof(soerr);

		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		if (getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
			soerr = errno;
		if (soerr) {
			probe_done(hc, soerr == ECONNREFUSED ? "connection refused" : "connect failed", 0);
			return;
		}
		hc->phase = HEALTH_PROBE_SENDING;
	}
	if (hc->phase == HEALTH_PROBE_SENDING) {
		while (hc->sent < hc->request_len) {
			ssize_t n = send(io->fd, hc->request + hc->sent, hc->request_len - hc->sent,
					 MSG_NOSIGNAL);
			if (n >= 0) {
				hc->sent += (size_t)n;
			} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
				return; /* EPOLLOUT will come */
			} else if (errno != EINTR) {
				probe_done(hc, "connection closed", 0);
				return;
			}
		}
		hc->phase = HEALTH_PROBE_READING;
	}
	probe_read(hc);
}

/* --- scheduling and lifetime --------------------------------------------- */

static void tick_cb(struct loop *loop, struct loop_timer *timer)
{
	struct health_check *hc = container_of(timer, struct health_check, tick_timer);

	/* from this probe's start, not its end, so that a slow instance is not
	 * probed less often; real time, as for the probe's timeout, so that the
	 * timeout always comes first.  While a new instance comes up (start
	 * grace, no success yet) probes are at most STARTUP_PROBE_MS apart: a
	 * version that starts in 10 ms is not kept waiting a whole interval for
	 * its first success (its failures do not count then anyway). */
	uint64_t every = hc->spec.interval_ms;
	if (!hc->seen_success && !hc->grace_over && hc->spec.start_grace_ms > 0 && every > STARTUP_PROBE_MS)
		every = STARTUP_PROBE_MS;
	loop_timer_set(loop, &hc->tick_timer, time_now_ms() + every, tick_cb);
	if (hc->phase != HEALTH_PROBE_IDLE)
		return; /* never two at once (only a 1 ms rounding edge gets here) */
	probe_start(hc);
}

static void release(struct health_check *hc)
{
	probe_close(hc);
	loop_timer_cancel(hc->loop, &hc->tick_timer);
	loop_timer_cancel(hc->loop, &hc->timeout_timer);
	loop_timer_cancel(hc->loop, &hc->grace_timer);
	loop_timer_cancel(hc->loop, &hc->reap_timer);
	free(hc->request);
	free(hc);
}

static void reap_cb(struct loop *loop UNUSED, struct loop_timer *timer)
{
	release(container_of(timer, struct health_check, reap_timer));
}

int health_start(struct loop *loop, const struct health_spec *spec, health_cb cb, void *data,
		 struct health_check **ret)
{
	static const char fmt[] = "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\nConnection: close\r\n\r\n";
	struct health_check *hc;
	size_t path_len, host_len;
	int n;

	if (!loop || !spec || !ret || !spec_valid(spec))
		return -EINVAL;
	path_len = strlen(spec->path);
	host_len = strlen(spec->host);
	hc = calloc(1, sizeof(*hc));
	if (!hc)
		return -ENOMEM;
	n = snprintf(NULL, 0, fmt, spec->path, spec->host, USER_AGENT);
	hc->request = malloc((size_t)n + 1 + path_len + 1 + host_len + 1);
	if (!hc->request) {
		free(hc);
		return -ENOMEM;
	}
	snprintf(hc->request, (size_t)n + 1, fmt, spec->path, spec->host, USER_AGENT);
	hc->request_len = (size_t)n;
	hc->spec = *spec;
	hc->spec.path = memcpy(hc->request + n + 1, spec->path, path_len + 1);
	hc->spec.host = memcpy(hc->request + n + 1 + path_len + 1, spec->host, host_len + 1);
	hc->loop = loop;
	hc->cb = cb;
	hc->data = data;
	hc->io.fd = -1;
	hc->grace_over = spec->start_grace_ms == 0;
	if (!hc->grace_over)
		loop_timer_set(loop, &hc->grace_timer, time_now_ms() + spec->start_grace_ms, grace_cb);
	/* the cached loop time: due at once even if the loop has not run lately */
	loop_timer_set(loop, &hc->tick_timer, loop->now_ms, tick_cb);
	*ret = hc;
	return 0;
}

void health_stop(struct health_check *hc)
{
	if (!hc || hc->closing)
		return;
	hc->closing = true;
	probe_close(hc);
	loop_timer_cancel(hc->loop, &hc->tick_timer);
	loop_timer_cancel(hc->loop, &hc->timeout_timer);
	loop_timer_cancel(hc->loop, &hc->grace_timer);
	/* timers run after every io event of the iteration: no event queued
	 * for the socket can reach freed memory */
	loop_timer_set(hc->loop, &hc->reap_timer, hc->loop->now_ms, reap_cb);
}

struct health_check *health_free(struct health_check *hc)
{
	if (hc)
		release(hc);
	return NULL;
}

enum health_state health_state(const struct health_check *hc)
{
	return hc->state;
}

const struct health_stats *health_stats(const struct health_check *hc)
{
	return &hc->stats;
}

const char *health_state_name(enum health_state state)
{
	switch (state) {
	case HEALTH_HEALTHY:
		return "healthy";
	case HEALTH_UNHEALTHY:
		return "unhealthy";
	case HEALTH_UNKNOWN:
		break;
	}
	return "unknown";
}

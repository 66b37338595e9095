/* health-t.h - types of the active HTTP health checker (see health.h).
 *
 * One struct health_check probes one service instance: every interval it
 * opens a TCP connection, sends a GET, reads the response head and judges
 * it.  Consecutive outcomes move the instance between UNKNOWN, HEALTHY and
 * UNHEALTHY; the owner (the deploy controller) is told of every change.
 * Everything runs on the event loop: non-blocking sockets and loop timers.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "loop/loop-t.h"

/* The response head must fit here, interim (1xx) heads included. */
#define HEALTH_HEAD_MAX 8192
/* Bounds on what a configuration puts into the request line and Host. */
#define HEALTH_PATH_MAX 1024
#define HEALTH_HOST_MAX 255
/* Longest reason text, NUL included ("connection refused", "status 503"). */
#define HEALTH_REASON_MAX 24

enum health_state {
	HEALTH_UNKNOWN = 0,   /* not judged yet */
	HEALTH_HEALTHY,
	HEALTH_UNHEALTHY,
};

/* What to probe and how to judge it (a copy is kept; the caller's strings
 * may be freed once health_start() returns). */
struct health_spec {
	struct sockaddr_storage addr;   /* numeric, usually 127.0.0.1:PORT */
	socklen_t addr_len;
	const char *path;               /* starts with '/', visible ASCII, < HEALTH_PATH_MAX */
	const char *host;               /* Host header value, visible ASCII, < HEALTH_HOST_MAX */
	uint64_t interval_ms;           /* from one probe start to the next (> 0) */
	uint64_t timeout_ms;            /* whole probe: connect to response head (0 < timeout < interval) */
	uint32_t healthy_threshold;     /* consecutive successes to become HEALTHY (>= 1) */
	uint32_t unhealthy_threshold;   /* consecutive failures to become UNHEALTHY (>= 1) */
	uint64_t start_grace_ms;        /* failures before the first success within it don't
					 * count; at its end without a success: UNHEALTHY */
};

/* Counters, for status output and metrics. */
struct health_stats {
	uint64_t probes;                /* started */
	uint64_t successes;
	uint64_t failures;
	uint64_t last_latency_us;       /* start to response head, last probe that got one */
	char last_error[HEALTH_REASON_MAX]; /* reason of the last failure, "" if none */
};

struct health_check;

/* Called on every change of state (never for a probe that changes nothing).
 * reason is the outcome of the probe that caused it ("status 200",
 * "timeout", "connection refused", ...; at the end of the start grace, the
 * last failure); it is only valid during the call.
 * The callback may call health_stop(hc). */
typedef void (*health_cb)(struct health_check *hc, enum health_state state, const char *reason,
			  void *data);

/* Where the probe in flight is. */
enum health_probe_phase {
	HEALTH_PROBE_IDLE = 0,
	HEALTH_PROBE_CONNECTING,
	HEALTH_PROBE_SENDING,
	HEALTH_PROBE_READING,
};

/* Private to health.c; use the functions of health.h. */
struct health_check {
	struct loop *loop;
	struct health_spec spec;        /* path and host point into copies after request */
	health_cb cb;
	void *data;
	enum health_state state;
	bool closing;                   /* health_stop() called: reap_timer frees it */
	bool seen_success;              /* at least one probe succeeded */
	bool grace_over;
	uint32_t consecutive_successes;
	uint32_t consecutive_failures;  /* only those that count (see start_grace_ms) */

	/* the probe in flight */
	enum health_probe_phase phase;
	struct loop_io io;              /* io.fd is -1 while idle */
	uint64_t probe_start_ns;
	size_t sent;                    /* bytes of request written */
	size_t received;                /* bytes in head_buf */
	size_t head_off;                /* start of the head being parsed (after 1xx heads) */

	struct loop_timer tick_timer;   /* next probe start: interval after this one's */
	struct loop_timer timeout_timer;/* deadline of the probe in flight */
	struct loop_timer grace_timer;  /* end of start_grace_ms */
	struct loop_timer reap_timer;   /* frees the check after health_stop() */

	struct health_stats stats;
	char reason[HEALTH_REASON_MAX]; /* outcome of the last probe */
	char *request;                  /* the whole GET request, built once, then path\0host\0 */
	size_t request_len;
	char head_buf[HEALTH_HEAD_MAX];
};

/* admin-t.h - types of the admin listeners (admin.h): a TCP address
 * (loopback, or any with admin_token) for the status page, /metrics and
 * /healthz, and the Unix socket of the JSON API that the CLI talks to. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "base/list-t.h"
#include "config/config-t.h"
#include "loop/loop-t.h"
#include "metrics/history-t.h"

struct proxy;
struct proxy_maintenance;
struct deployer;
struct release_runner;
struct notifier;
struct admin;
struct inherited;
struct json_t;
struct worker;
struct state;

/* What the API asks of the daemon above it (admin knows nothing of it):
 * set by the daemon, each may be NULL (the endpoint then answers 409). */
struct admin_hooks {
	void *data;
	/* POST /v1/shutdown: drain and exit; stop_services: stop every instance
	 * first.  Returns 0 or -errno with a sentence in err. */
	int (*shutdown)(void *data, bool stop_services, uid_t who, char *err, size_t errlen);
	/* POST /v1/upgrade: start binary (NULL: the running one's path) to take
	 * over.  Returns 0 once it is started (its outcome: upgrade_status), or
	 * -errno with a sentence in err. */
	int (*upgrade)(void *data, const char *binary, uid_t who, char *err, size_t errlen);
	/* GET /v1/upgrade: the last upgrade this daemon started or came from. */
	struct json_t *(*upgrade_status)(void *data);
	/* GET /metrics: the daemon's own families (its host, its configuration),
	 * written after the others: malloc'd text and its length in *len, or
	 * NULL (then left out). */
	char *(*metrics)(void *data, size_t *len);
	/* POST /v1/services/NAME/maintenance: the proxy's maintenance of
	 * SERVICE changed (m: as it is now; NULL: off) at the request of WHO:
	 * record it in the state and the audit log, tell the event streams.
	 * Returns 0, or -errno with a sentence in err (nothing recorded; the
	 * API answers 500).  NULL: this process keeps no state (`cutover
	 * proxy`), the endpoint answers 409. */
	int (*maintenance)(void *data, const char *service, const struct proxy_maintenance *m, uid_t who, char *err,
			   size_t errlen);
};

struct admin_listener {
	struct loop_io io;
	struct admin *admin;
	char *text;                        /* address or socket path as configured; NULL when closed */
	bool api;                          /* the Unix socket: the JSON API too */
};

/* Owned by the daemon, which fills the borrowed pointers. */
struct admin {
	struct loop *loop;
	const struct config *cfg;          /* the daemon's current configuration (borrowed) */
	struct proxy *proxy;               /* what /metrics, /healthz and the API read (borrowed) */
	struct deployer *deployer;         /* NULL for `cutover proxy`: the API then refuses deploys */
	struct release_runner *releases;   /* multi-service releases; NULL like deployer */
	struct notifier *notifier;         /* the webhooks, for /metrics (NULL: none) */
	struct admin_hooks hooks;
	const char *refusing;              /* non-NULL: why deploys, rollbacks and upgrades are refused now
					    * ("shutting down"): answered 503 */
	struct inherited *inherited;       /* sockets handed over, taken by address (borrowed; NULL: none) */
	bool keep_socket_file;             /* the Unix socket was handed on: do not unlink it when closing */
	struct admin_listener tcp;         /* io.fd < 0 when there is none */
	struct admin_listener unix_api;
	struct list_head conns;            /* struct admin_conn */
	struct list_head streams;          /* the conns that are event streams (GET /v1/events) */
	struct loop_timer keepalive;       /* a comment line on the streams now and then */
	uint64_t event_seq;                /* events published so far: the next one's id - 1 */
	/* the status page (status.c) */
	struct worker *worker;             /* the state thread (borrowed; NULL: no state, nothing stored) */
	struct state *state;               /* used on the worker thread only (borrowed) */
	struct metrics_history history;    /* 15 minutes of points per version */
	struct metrics_uptime uptime;      /* each service's minute, until the worker stores it */
	struct loop_timer status_timer;    /* samples both every METRICS_HISTORY_INTERVAL_MS */
	bool flush_failed;                 /* the last minutes could not be stored (said once in the log) */
	/* admin_token (web.c): the TCP listener wants it on every request but /healthz */
	bool token_set;
	unsigned char token_hash[32];      /* BLAKE2b-256 of the token (the token itself is not kept) */
	char token_cookie[65];             /* the cookie's value: a hash keyed by the token, in hex */
};

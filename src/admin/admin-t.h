/* admin-t.h - types of the admin listeners (admin.h): a TCP address on
 * loopback for /metrics and /healthz, and the Unix socket of the JSON API
 * that the CLI talks to. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "base/list-t.h"
#include "config/config-t.h"
#include "loop/loop-t.h"

struct proxy;
struct deployer;
struct admin;

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
	struct admin_listener tcp;         /* io.fd < 0 when there is none */
	struct admin_listener unix_api;
	struct list_head conns;            /* struct admin_conn */
	struct list_head streams;          /* the conns that are event streams (GET /v1/events) */
	struct loop_timer keepalive;       /* a comment line on the streams now and then */
	uint64_t event_seq;                /* events published so far: the next one's id - 1 */
};

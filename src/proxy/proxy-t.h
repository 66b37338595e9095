/* proxy-t.h - types of the reverse proxy: services and their targets, client
 * and upstream connections, the exchange of one request and its response.
 *
 * Ownership, in one picture:
 *
 *   struct proxy ── route_table (refcounted, immutable, swapped with one pointer store)
 *        │              ├─ router_shared (refcounted)
 *        │              └─ route_service (refcounted, shared between tables) ── route_group[] (a version each)
 *        │                                                                       └─ target (refcounted) ── idle pool
 *        ├─ listeners[]
 *        └─ clients (list) ── exchange (one at a time; pipelined requests wait in client.in)
 *                                └─ upstream conn (busy, owned by the exchange until done)
 *
 * The loop thread is the only thread: no locks.  Closed connections are
 * marked and freed at the end of the loop iteration.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include "base/buf-t.h"
#include "base/list-t.h"
#include "config/config-t.h"
#include "http/parser-t.h"
#include "loop/loop-t.h"
#include "metrics/metrics-t.h"
#include "proxy/router-t.h"

struct inherited;

/* The longest X-Request-Id kept from a client (docs/logs.md). */
#define PROXY_REQUEST_ID_MAX 128

struct proxy;
struct exchange;

/* One backend address of one service: an instance of a version, or a
 * configured target of an unmanaged service.  Keyed by (service name,
 * address) for the proxy's life: a target present in the old and the new
 * routing table is the same object, so its pool and counters carry over. */
struct target {
	unsigned refcount;
	char *addr_text;
	char *service;                     /* the service's name */
	struct sockaddr_storage sa;
	socklen_t salen;
	struct proxy *proxy;
	struct metrics_upstream *metrics;
	struct list_head idle;             /* idle upstream conns (struct upstream.pool_node) */
	uint32_t nidle;
	bool removed;                      /* in no group of its service any more: don't pool */
};

struct target_slot {
	struct target *target;             /* reference held */
	int weight;
	int current;                       /* smooth weighted round-robin state (see route_group) */
};

/* One version of a service: its instances and its share of the traffic.
 * An unmanaged service has one group, without a version, holding the
 * configured targets. */
struct route_group {
	char *version;                     /* NULL: an unmanaged service's only group */
	uint32_t weight;                   /* share against the service's other groups; 0: no new requests */
	bool canary;                       /* the new version of a deploy sharing traffic: shoppers whose cohort
					    * is below its share go to it; the others are its stable version */
	int current;                       /* smooth weighted round-robin state among the groups */
	int total_weight;                  /* of its slots */
	uint32_t n;
	struct target_slot *slots;
};

/* A service as the proxy routes it.  Immutable once published, except the
 * round-robin cursors (`current`), which only the loop thread writes: with
 * several loops they become per-loop state.  Replaced as a whole, never
 * edited, so a request that holds a routing table sees one consistent
 * service from its first pick to its last retry. */
struct route_service {
	unsigned refcount;
	char *name;
	bool managed;                      /* `run:`: its groups come from the deployer, not the config */
	bool steer;                        /* a canary split or several versions: cohorts and overrides
					    * are read (cohort.c); false: plain round-robin, nothing read */
	int8_t canary;                     /* the canary group while it shares traffic (0 < weight < total),
					    * else -1 */
	uint8_t canary_share;              /* cohorts 0..canary_share-1 go to it */
	int total_weight;                  /* of its groups */
	uint32_t ngroups;
	struct route_group *groups;
	struct metrics_outcomes *outcomes; /* what its clients saw (uptime): in the proxy's registry */
};

/* The routing table: the router (Host + path -> service index) and the
 * services.  One immutable snapshot, published with one pointer store
 * (p->routes); an exchange holds a reference to the one it started with,
 * and the table is freed when the last holder lets go.  Tables built one
 * after the other share the services that did not change. */
struct route_table {
	unsigned refcount;
	struct router_shared *router;
	struct route_service **services;
	size_t nservices;
};

/* The router of a configuration, shared by the tables built from it. */
struct router_shared {
	unsigned refcount;
	struct router router;
};

/* A stratified deck of the cohorts 0..99 (cohort.c): a random
 * permutation dealt in order and shuffled again once dealt out, so that
 * any 100 new shoppers in a row hold nearly every number once. */
struct cohort_deck {
	uint64_t rng;                      /* splitmix64 state, seeded from getrandom() */
	uint8_t cards[100];
	uint8_t next;                      /* cards dealt from this shuffle; 100: shuffle first */
};

/* What a pick may look at (the request, while its head is readable) and
 * what it decided beyond the group (route_choose). */
struct route_request {
	const struct http_request *req;
	const char *base;                  /* the buffer the request's slices point into */
	const struct config_cohorts *cohorts; /* cookie and header names */
	struct cohort_deck *deck;          /* new shoppers' cohorts */
	/* out */
	int8_t cohort;                     /* the shopper's cohort, -1 if none was needed */
	bool set_cookie;                   /* new cohort: the response gives it to the client */
	bool forced;                       /* an override named the version */
};

enum upstream_state {
	UPSTREAM_CONNECTING = 0,
	UPSTREAM_BUSY,                     /* owned by an exchange */
	UPSTREAM_IDLE,                     /* in its target's pool */
	UPSTREAM_CLOSED,
};

struct upstream {
	struct loop_io io;
	struct loop_timer timer;
	struct proxy *proxy;
	struct target *target;             /* reference held */
	enum upstream_state state;
	struct list_head pool_node;        /* in target->idle while IDLE */
	struct list_head closed_node;      /* in proxy->closed_upstreams once closed */
	struct buf in;                     /* response bytes from the target */
	struct exchange *ex;               /* while BUSY */
	uint32_t requests;                 /* served on this connection */
	uint64_t idle_since_ms;            /* when it went back to the pool */
	bool can_read, can_write;
	bool eof;                          /* the target closed its side (read returned 0) */
	bool peer_shut;                    /* epoll saw RDHUP/HUP: read on until the EOF */
};

enum client_state {
	CLIENT_IDLE = 0,                   /* between requests (keep-alive) */
	CLIENT_HEAD,                       /* reading a request head */
	CLIENT_EXCHANGE,                   /* a request is being served */
	CLIENT_TUNNEL,                     /* after 101: raw bytes both ways */
	CLIENT_FLUSH_CLOSE,                /* write what is left, then close */
	CLIENT_LINGER,                     /* response sent, write side shut: discard input until EOF */
	CLIENT_CLOSED,
};

struct client {
	struct loop_io io;
	struct loop_timer timer;
	struct proxy *proxy;
	struct list_head node;             /* in proxy->clients, or proxy->closed_clients */
	struct list_head pending_node;     /* in proxy->pending while it has work left */
	enum client_state state;
	struct buf in;                     /* request bytes; released while idle */
	struct buf out;                    /* heads and proxy-made bytes; released while idle */
	struct exchange *ex;
	char peer[64];                     /* client IP, no port */
	uint32_t requests;
	bool can_read, can_write;
	bool eof;                          /* the client closed its sending side */
	bool reset;                        /* the connection failed (write error, reset) */
	bool peer_shut;                    /* epoll saw RDHUP/HUP: read on until the EOF */
	bool close_after;                  /* close once the current response is written */
	bool head_started;                 /* bytes of a head received (408 vs silent close) */
};

/* One request and its response. */
struct exchange {
	struct client *client;
	struct route_table *routes;        /* reference held: the routing snapshot it started with */
	struct route_service *service;     /* in routes (no reference of its own); NULL if no route */
	struct target *target;             /* reference held; NULL before selection */
	struct upstream *upstream;
	struct http_request req;           /* slices valid only until the head is consumed */
	struct http_response resp;
	struct http_body req_body;
	struct http_body resp_body;
	struct buf uhead;                  /* request head as sent upstream (kept for retries) */
	size_t uhead_sent;
	size_t req_fwd;                    /* validated request body bytes at client.in head, not yet written */
	size_t resp_fwd;                   /* validated response bytes at upstream.in head, not yet written */
	uint64_t req_body_sent;            /* body bytes written upstream */
	uint64_t resp_bytes;               /* bytes written to the client for this response */
	uint64_t start_ns;
	enum http_method method;
	uint8_t client_minor;              /* client's HTTP/1.x */
	uint8_t tries;                     /* failed attempts */
	uint8_t retries;                   /* attempts made again after a failure */
	int8_t group;                      /* index of the version group chosen; -1 none */
	int8_t cohort;                     /* the shopper's cohort (route_request), -1 none */
	bool cohort_cookie;                /* ... new: Set-Cookie on the response head */
	bool version_forced;               /* an override header or cookie chose the group */
	struct target *tried[12];          /* targets whose connect failed (references held); > max_retries */
	int status;                        /* status sent to the client, 0 until known */
	const char *error;                 /* why the proxy answered or cut (access log) */
	bool head_done;                    /* request head consumed from client.in */
	bool req_done;                     /* request body entirely forwarded */
	bool resp_head_done;               /* final response head parsed and queued */
	bool resp_done;                    /* response body entirely forwarded */
	bool dechunk;                      /* HTTP/1.0 client and chunked response */
	bool upgrade;                      /* request asked for an upgrade */
	bool reused;                       /* upstream came from the pool */
	bool local;                        /* the proxy answered itself */
	bool close_sent;                   /* the response head said "Connection: close" */
	bool retry_after;                  /* ... a 503 to try again later (startup.retry_after) */
	bool aborted;                      /* cut short (client gone, truncated upstream) */
	bool shielded;                     /* the canary failed it: retried on a stable group (once) */
	bool class_known;                  /* route_class was looked up (in routes) */
	const char *route_class;           /* its route class's name (in routes->router); NULL: none */
	bool counted;                      /* counted in metrics.in_flight */
	bool header_deadline_set;
	bool tunnel_client_shut;
	bool tunnel_done;
	bool maintenance;                  /* answered 503 because its service is in maintenance */
	struct proxy_page *page;           /* the body the proxy answers with (reference held); NULL: none */
	size_t page_off;                   /* ... bytes of it written */
	char request_id[PROXY_REQUEST_ID_MAX + 1]; /* the client's X-Request-Id if sane, else ours */
	char method_text[16];
	char path[256];
	char host[128];
};

/* A body the proxy answers with itself (maintenance.c): refcounted, so a
 * response still being written keeps its page when maintenance is turned
 * off or the page replaced. */
struct proxy_page {
	unsigned refcount;
	size_t len;
	char bytes[];
};

/* A service in maintenance (`cutover maintenance on`): every request routed
 * to it is answered 503 with Retry-After and the page, its instances and
 * their health checks untouched.  Kept by service name, apart from the
 * routing table: a reload, which builds a new table, does not end it. */
struct proxy_maintenance {
	char *service;
	int64_t since_ms;                  /* Unix ms: when it was turned on */
	char *by;                          /* who turned it on (a user name) */
	uint32_t retry_after_s;
	bool custom_page;                  /* the operator's page, else the built-in one */
	struct proxy_page *page;           /* reference held */
};

struct listener {
	struct loop_io io;
	struct proxy *proxy;
	struct config_addr addr;           /* copy of the text + sockaddr */
	bool fresh;                        /* opened by this apply (not carried over) */
};

struct proxy {
	struct loop *loop;
	const struct config *cfg;          /* current configuration (the daemon's: borrowed) */
	struct route_table *routes;        /* current routing snapshot (reference held) */
	struct listener *listeners;
	size_t nlisteners;
	struct metrics metrics;
	struct list_head clients;
	struct list_head closed_clients;
	struct list_head closed_upstreams;
	struct target **targets;           /* every live target (for pools and metrics) */
	size_t ntargets, captargets;
	struct loop_timer drain_timer;
	struct loop_timer settle_timer;    /* drain: listeners close once handshakes in flight are done */
	struct loop_timer flush_timer;
	struct accesslog *accesslog;
	struct list_head pending;          /* clients with work left after a bounded pump */
	void **free_bufs;                  /* recycled I/O buffers of buf_size bytes */
	size_t nfree_bufs;
	size_t buf_size;
	uint64_t bufs_freed;               /* returned to malloc since the last trim */
	struct cohort_deck deck;           /* cohorts of new shoppers (cohort.c) */
	struct proxy_maintenance *maintenance; /* services in maintenance (maintenance.c) */
	size_t nmaintenance;
	struct exchange *free_exchanges;   /* recycled exchanges (singly linked via .client) */
	size_t nfree_exchanges;
	size_t nclients;
	bool accept_paused;                /* max_connections reached */
	uint64_t request_seq;
	uint32_t id_prefix;
	char request_id_text[25];          /* the last request id (see proxy_request_id) */
	uint64_t reqlog_second;            /* lines about requests in the error log (exchange_log): */
	uint32_t reqlog_lines;             /* ... written in that second of the loop's clock */
	uint32_t reqlog_suppressed;        /* ... left out since the last one written */
	bool holding;                      /* proxy_hold(): connections wait in the accept queue */
	struct inherited *inherited;       /* sockets handed over, taken by address (borrowed; NULL: none) */
	bool draining;                     /* proxy_drain() ran: not accepting */
	bool settling;                     /* ... its listeners drop new SYNs until settle_timer closes them */
	bool drained;                      /* ... and every client connection is gone */
	int exit_code;
};

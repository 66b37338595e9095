/* proxy-t.h - types of the reverse proxy: services and their targets, client
 * and upstream connections, the exchange of one request and its response.
 *
 * Ownership, in one picture:
 *
 *   struct proxy ── runtime (refcounted: router + services[])
 *        │              └─ service (refcounted) ── target_set (swapped atomically)
 *        │                                            └─ target (refcounted) ── idle pool of upstream conns
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

struct proxy;
struct exchange;
struct deployer;

/* One backend address of one service. */
struct target {
	unsigned refcount;
	char *addr_text;
	struct sockaddr_storage sa;
	socklen_t salen;
	struct proxy *proxy;
	struct proxy_service *service;     /* weak: compare only, may be gone once removed */
	struct metrics_upstream *metrics;
	struct list_head idle;             /* idle upstream conns (struct upstream.pool_node) */
	uint32_t nidle;
	bool removed;                      /* no longer in any target set: don't pool */
};

struct target_slot {
	struct target *target;
	int weight;
	int current;                       /* smooth weighted round-robin state */
};

/* The targets of a service.  Replaced as a whole (proxy_service_set_targets);
 * exchanges hold references to targets, never to the set. */
struct target_set {
	uint32_t n;
	int total_weight;
	struct target_slot slots[];
};

struct proxy_service {
	unsigned refcount;
	char *name;
	struct target_set *set;
	struct proxy *proxy;
};

/* The routing state, rebuilt on reload and swapped as one pointer. */
struct runtime {
	unsigned refcount;
	struct router router;
	struct proxy_service **services;
	size_t nservices;
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
	struct runtime *runtime;           /* reference held (routing snapshot) */
	struct proxy_service *service;     /* reference held; NULL if no route */
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
	bool aborted;                      /* cut short (client gone, truncated upstream) */
	bool counted;                      /* counted in metrics.in_flight */
	bool request_id_from_client;
	bool header_deadline_set;
	bool tunnel_client_shut;
	bool tunnel_done;
	char request_id[33];
	char method_text[16];
	char path[256];
	char host[128];
};

struct listener {
	struct loop_io io;
	struct proxy *proxy;
	struct config_addr addr;           /* copy of the text + sockaddr */
	bool fresh;                        /* opened by this apply (not carried over) */
};

struct proxy {
	struct loop *loop;
	struct config *cfg;                /* current configuration (owned) */
	struct runtime *runtime;           /* current routing (reference held) */
	struct listener *listeners;
	size_t nlisteners;
	struct listener admin;             /* TCP /metrics listener; io.fd < 0 if none */
	struct listener admin_unix;        /* Unix-socket API (addr.text = path); io.fd < 0 if none */
	struct metrics metrics;
	struct list_head clients;
	struct list_head closed_clients;
	struct list_head closed_upstreams;
	struct list_head admin_conns;
	struct target **targets;           /* every live target (for pools and metrics) */
	size_t ntargets, captargets;
	struct loop_io signal_io;
	struct loop_timer drain_timer;
	struct loop_timer flush_timer;
	struct accesslog *accesslog;
	struct deployer *deployer;         /* the deploy engine (daemon only; NULL for `cutover proxy`) */
	struct list_head pending;          /* clients with work left after a bounded pump */
	void **free_bufs;                  /* recycled I/O buffers of buf_size bytes */
	size_t nfree_bufs;
	size_t buf_size;
	uint64_t bufs_freed;               /* returned to malloc since the last trim */
	struct exchange *free_exchanges;   /* recycled exchanges (singly linked via .client) */
	size_t nfree_exchanges;
	size_t nclients;
	bool accept_paused;                /* max_connections reached */
	uint64_t request_seq;
	uint32_t id_prefix;
	char request_id_text[25];          /* the last request id (see proxy_request_id) */
	bool draining;
	int exit_code;
};

/* config-t.h - typed configuration, as read from cutover.yml.
 *
 * A struct config is built whole by config_load(), validated, and only then
 * handed to the daemon, which swaps it in atomically (on SIGHUP too).  It
 * owns all its strings and arrays; config_free() releases everything.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum config_log_format { CONFIG_LOG_LOGFMT = 0, CONFIG_LOG_JSON };

struct config_addr {
	char *text;                   /* as written, e.g. "127.0.0.1:8080" */
	struct sockaddr_storage sa;
	socklen_t salen;
};

struct config_target {
	struct config_addr addr;
	uint32_t weight;              /* 1..1000, default 1 */
};

struct config_route {
	char *host;                   /* NULL: any host; "*.example.com": wildcard; else exact (lower-case) */
	char *path_prefix;            /* always starts with '/'; default "/" */
	size_t service;               /* index into config.services */
	int line;                     /* where it was declared (for messages) */
};

struct config_service {
	char *name;                   /* [a-z0-9][a-z0-9_-]*, unique */
	struct config_target *targets;
	size_t ntargets;              /* >= 1 */
};

struct config_timeouts {              /* all in milliseconds */
	uint64_t client_header;       /* default 10s: whole request head must arrive -> 408 */
	uint64_t client_idle;         /* default 60s: keep-alive idle between requests -> close */
	uint64_t client_body;         /* default 60s: idle while reading a request body -> 408 */
	uint64_t upstream_connect;    /* default 5s -> retry elsewhere, then 504 */
	uint64_t upstream_header;     /* default 60s: response head after request sent -> 504 */
	uint64_t upstream_body;       /* default 60s: idle while streaming response body -> close */
	uint64_t upstream_idle;       /* default 30s: pooled idle upstream connection lifetime */
	uint64_t drain;               /* default 30s: SIGTERM grace for in-flight requests */
};

struct config_limits {
	uint32_t max_header_bytes;    /* default 16k (431 beyond) */
	uint32_t max_uri_bytes;       /* default 8k (414 beyond) */
	uint32_t buffer_bytes;        /* default 16k: per-direction streaming buffer */
	uint32_t max_connections;     /* default 20000 client connections */
	uint32_t upstream_idle_per_target; /* default 64 pooled idle connections per target */
	uint32_t max_retries;         /* default 2: other targets tried after a refused connect */
};

struct config_log {
	char *access;                 /* path, "-" for stdout, NULL for off */
	enum config_log_format access_format;
	char *error;                  /* path, NULL/"-" for stderr */
	int level;                    /* enum log_level */
};

struct config {
	char *path;                   /* file it was read from */
	struct config_addr *listen;   /* proxy listeners, >= 1 */
	size_t nlisten;
	struct config_addr admin;     /* admin listener (loopback only); text NULL if none */
	struct config_service *services;
	size_t nservices;
	struct config_route *routes;  /* in declaration order */
	size_t nroutes;
	struct config_timeouts timeouts;
	struct config_limits limits;
	struct config_log log;
};

/* Where and why loading failed.  message is a full sentence for a human:
 * "cutover.yml:12:5: services.shop.targets[0].weight: must be 1..1000, got \"0\"". */
struct config_error {
	char file[256];
	int line;                     /* 1-based, 0 if not tied to a place */
	int column;                   /* 1-based */
	char field[128];              /* dotted path, e.g. services.shop.targets[0].weight */
	char message[512];            /* complete message as above */
};

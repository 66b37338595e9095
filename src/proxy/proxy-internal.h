/* proxy-internal.h - functions shared between the files of src/proxy only,
 * and the small hot helpers of client.c and exchange.c (static inline, so
 * that splitting the hot path across two files keeps them inlined). */
#pragma once
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "base/log.h"
#include "loop/loop.h"
#include "proxy/proxy-t.h"

/* Buffers of p->buf_size bytes, recycled through a bounded free list.
 * get: 0 or -ENOMEM (b untouched); a buffer that already has storage is kept.
 * put: accepts a buffer without storage. */
int proxy_buf_get(struct proxy *p, struct buf *b);
void proxy_buf_put(struct proxy *p, struct buf *b);

/* routes.c: smooth weighted round-robin over s's groups that take traffic
 * (a weight and an instance), except group skip (-1: none).  Returns the
 * group's index, or -1 when none does. */
int route_choose_wrr(struct route_service *s, int skip);

void upstream_set_deadline(struct upstream *u, uint64_t timeout_ms);
/* Close t's pooled connections idle for max_idle_ms or more (called once a
 * second, so idle expiry is accurate to a second). */
void upstream_expire_idle(struct target *t, uint64_t now_ms, uint64_t max_idle_ms);

/* Access log (accesslog.c). */
struct accesslog;
int accesslog_open(const char *path, int format, struct accesslog **ret);
void accesslog_write(struct accesslog *al, const struct exchange *ex, uint64_t now_ns);
void accesslog_flush(struct accesslog *al);
struct accesslog *accesslog_close(struct accesslog *al);

/* --- maintenance.c --- */

/* Answer ex (its head consumed, req_done set as far as it goes) with M's
 * 503, Retry-After and page (none for HEAD); the page is written from
 * ex->page by client.c as the client takes it. */
void exchange_maintenance_response(struct exchange *ex, const struct proxy_maintenance *m);
/* Drop a reference (NULL is fine).  Returns NULL. */
struct proxy_page *proxy_page_unref(struct proxy_page *pg);
/* Bytes of ex's page not written yet. */
static inline size_t exchange_page_left(const struct exchange *ex)
{
	return ex->page ? ex->page->len - ex->page_off : 0;
}

/* --- client.c: the client connection --- */

/* Close now: abort its exchange (status 499 if none was set), stop the
 * timer and the socket; the loop frees it at the end of the iteration. */
void client_close(struct client *c);
/* The client's timer callback (header, body, idle, write and linger timeouts). */
void client_on_timer(struct loop *loop, struct loop_timer *timer);

/* (Re)arm the client's one timer to fire timeout_ms from this iteration's
 * clock.  Inline: it runs on every pump round with progress. */
static inline void client_set_deadline(struct client *c, uint64_t timeout_ms)
{
	loop_timer_set(c->proxy->loop, &c->timer, c->proxy->loop->now_ms + timeout_ms, client_on_timer);
}

/* Our own bytes first, then bytes passed through, in one writev.
 * Returns the bytes written split into *head and *body, 0 when there was
 * nothing to write or the socket is full (*can_write cleared), or -errno
 * when the socket failed (*can_write cleared).  A short write clears
 * *can_write: the next EPOLLOUT edge sets it again. */
ssize_t proxy_write_pair(struct loop_io *io, bool *can_write, const char *head, size_t head_len, const char *body,
			 size_t body_len, size_t *head_done, size_t *body_done);

/* --- exchange.c: one request and its response --- */

/* A cleared exchange for c, from the proxy's free list or malloc.  Returns
 * NULL when out of memory.  The caller owns it until exchange_free (or
 * exchange_finish once it is c->ex).  Inline: once per request, called
 * from client.c. */
static inline struct exchange *exchange_new(struct client *c)
{
	struct proxy *p = c->proxy;
	struct exchange *ex = p->free_exchanges;

	if (ex) {
		p->free_exchanges = (struct exchange *)ex->client;
		p->nfree_exchanges--;
	} else {
		ex = malloc(sizeof(*ex));
		if (!ex)
			return NULL;
	}
	/* clear only the bookkeeping; req/resp are written by the parser */
	memset(ex, 0, offsetof(struct exchange, req));
	memset(&ex->req_body, 0, sizeof(*ex) - offsetof(struct exchange, req_body));
	ex->client = c;
	/* latencies run from the loop wake-up that brought the request to the
	 * one that finished the response: one clock read per iteration */
	ex->start_ns = c->proxy->loop->now_ns;
	return ex;
}

/* Give ex back to the free list, dropping its references and its head buffer. */
void exchange_free(struct exchange *ex);
/* The head of ex->req is complete at the start of c->in: route it,
 * serialize it for the upstream and connect, or answer locally.  ex is
 * c->ex already. */
void exchange_begin(struct client *c, struct exchange *ex);
/* Answer the current request ourselves (400, 404, 502, 504...); when the
 * response has already started, cut the connection instead. */
void exchange_local_response(struct exchange *ex, int status, const char *reason);
/* One round of the exchange state machine.  Returns true on progress. */
bool exchange_step(struct exchange *ex);
/* Raw bytes both ways after 101 Switching Protocols.  Returns true on progress. */
bool exchange_tunnel_step(struct client *c);
/* Count, log, release the upstream connection (pooled if reusable), clear
 * c->ex and free ex. */
void exchange_finish(struct exchange *ex);
/* The version of ex->target in ex->service, or NULL (no target yet, or an
 * unmanaged service's target). */
const char *exchange_version(const struct exchange *ex);
/* A line in the error log about ex's request (a failed attempt, a retry,
 * a 502 or 504 of the proxy's), with its fields: request_id, service,
 * version and target when known, status when > 0.  At most
 * REQUEST_LOG_PER_SECOND such lines a second are written; the next one
 * written after some were left out says how many ("suppressed"). */
void exchange_log(struct exchange *ex, enum log_level level, int status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
#define REQUEST_LOG_PER_SECOND 100

/* --- retry.c: connecting, upstream failures, retries, the shield --- */

enum upstream_failure {
	FAIL_CONNECT,          /* refused / unreachable: the request never left */
	FAIL_CONNECT_TIMEOUT,
	FAIL_CLOSED,           /* closed or reset before any response byte */
	FAIL_CLOSED_MID_HEAD,  /* closed after part of the response head */
	FAIL_BAD_RESPONSE,
	FAIL_HEADER_TIMEOUT,
	FAIL_SERVER_ERROR,     /* a 5xx head from a canary, which the shield retries on stable */
};

/* Pick a target for ex (its group, skipping those that failed) and get a
 * connection to it: pooled for a first attempt, new for a retry.  On
 * failure the proxy answers (or another attempt is made). */
void exchange_connect(struct exchange *ex);
/* The attempt of ex at ex->target failed (WHY; err: -errno or 0): its
 * upstream connection is closed, then another attempt is made (the shield,
 * or a plain retry) or the proxy answers with a 502 or a 504. */
void exchange_upstream_failed(struct exchange *ex, enum upstream_failure why, int err);
/* The stable group the shield would retry ex on after WHY at its target,
 * or -1 when the shield does not apply (see retry.c). */
int exchange_shield_group(const struct exchange *ex, enum upstream_failure why);
/* Count the outcome of ex at target t: STATUS (100..599) and the latency
 * from its start to now_ns, in t's counts and its route class's. */
void exchange_observe(struct exchange *ex, struct target *t, int status, uint64_t now_ns);
/* An upstream timer fired for the exchange that owns the connection. */
void exchange_upstream_timeout(struct exchange *ex);

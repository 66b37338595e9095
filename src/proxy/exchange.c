/* exchange.c - one request and its response: the exchange.
 *
 * An exchange starts when client.c has parsed a complete request head
 * (exchange_begin): route it, re-serialize the head for the upstream, pick
 * a target and get a connection.  exchange_step then moves the request body
 * up and the response head and body down, validating the bytes as they
 * pass; upstream failures end in a retry or an answer made by the proxy
 * (retry.c, exchange_local_response).  After a 101, exchange_tunnel_step relays raw
 * bytes both ways.  exchange_finish counts, logs and releases the upstream
 * connection.  The client connection around it (reading heads, the pump,
 * timers, linger, close) is client.c; both are the hot path.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "base/buf.h"
#include "base/log.h"
#include "base/util.h"
#include "http/parser.h"
#include "loop/loop.h"
#include "loop/sock.h"
#include "metrics/metrics.h"
#include "proxy/cohort.h"
#include "proxy/proxy.h"
#include "proxy/proxy-internal.h"
#include "proxy/router.h"

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

static void slice_copy(char *dst, size_t cap, const char *base, struct http_slice s)
{
	size_t n = s.len < cap - 1 ? s.len : cap - 1;

	memcpy(dst, base + s.off, n);
	dst[n] = 0;
}

static int append_slice(struct buf *b, const char *base, struct http_slice s)
{
	return buf_append(b, base + s.off, s.len);
}

/* ------------------------------------------------------------------ */
/* exchange lifetime (exchange_new is in proxy-internal.h)             */

void exchange_free(struct exchange *ex)
{
	struct proxy *p = ex->client->proxy;

	for (unsigned i = 0; i < ex->tries && i < ARRAY_SIZE(ex->tried); i++)
		if (ex->tried[i])
			target_unref(ex->tried[i]);
	target_unref(ex->target);
	proxy_page_unref(ex->page);
	route_table_unref(ex->routes);
	proxy_buf_put(p, &ex->uhead);
	if (p->nfree_exchanges < 64) {
		ex->client = (struct client *)p->free_exchanges;
		p->free_exchanges = ex;
		p->nfree_exchanges++;
	} else {
		free(ex);
	}
}

/* Copy the field lines of a parsed head, except those with a flag in
 * skip, as the raw bytes they arrived as (validated by the parser: no bare
 * CR or LF, no obs-fold), in as few copies as there are runs of kept lines.
 * head_end is where the last field line ends (the final CRLF's offset). */
static int append_fields(struct buf *b, const char *base, const struct http_header *h, uint32_t n,
			 uint32_t head_end, uint32_t skip)
{
	uint32_t run = 0, i;
	bool in_run = false;
	int rc = 0;

	for (i = 0; i < n; i++) {
		bool keep = !(h[i].flags & skip);
		if (keep && !in_run) {
			run = h[i].name.off;
			in_run = true;
		} else if (!keep && in_run) {
			rc |= buf_append(b, base + run, h[i].name.off - run);
			in_run = false;
		}
	}
	if (in_run)
		rc |= buf_append(b, base + run, head_end - run);
	return rc;
}

/* ------------------------------------------------------------------ */
/* serialization                                                       */

static int serialize_request(struct client *c, struct exchange *ex, const char *base)
{
	const struct http_request *r = &ex->req;
	struct buf *b = &ex->uhead;
	int rc = 0;

	/* a pooled buffer: buf_size leaves 4 KiB above the largest head */
	if (proxy_buf_get(c->proxy, b) < 0)
		return -ENOMEM;
	rc |= append_slice(b, base, r->method);
	rc |= buf_append(b, " ", 1);
	rc |= append_slice(b, base, r->target);
	rc |= buf_append_str(b, " HTTP/1.1\r\n");
	if (!r->host.len)
		rc |= buf_appendf(b, "Host: %s\r\n", ex->service->name);
	/* the client's X-Request-Id fields are dropped: exactly one goes up,
	 * the request's id (the client's if it was sane: exchange_begin) */
	rc |= append_fields(b, base, r->headers, r->nheaders, r->head_len - 2,
			    HTTP_HDR_HOP | HTTP_HDR_XFF | HTTP_HDR_XF_OTHER | HTTP_HDR_REQUEST_ID);
	if (r->framing == HTTP_FRAMING_CHUNKED)
		rc |= buf_append_str(b, "Transfer-Encoding: chunked\r\n");
	if (ex->upgrade) {
		for (uint32_t i = 0; i < r->nheaders; i++) {
			if (r->headers[i].flags & HTTP_HDR_UPGRADE) {
				rc |= buf_append_str(b, "Connection: upgrade\r\nUpgrade: ");
				rc |= append_slice(b, base, r->headers[i].value);
				rc |= buf_append(b, "\r\n", 2);
				break;
			}
		}
	}
	rc |= buf_append_str(b, "X-Forwarded-For: ");
	for (uint32_t i = 0; i < r->nheaders; i++) {
		const struct http_header *h = &r->headers[i];
		if (!(h->flags & HTTP_HDR_XFF) || !h->value.len)
			continue;
		rc |= append_slice(b, base, h->value);
		rc |= buf_append(b, ", ", 2);
	}
	rc |= buf_append_str(b, c->peer);
	rc |= buf_append_str(b, "\r\nX-Forwarded-Proto: http\r\n");
	if (r->host.len) {
		rc |= buf_append_str(b, "X-Forwarded-Host: ");
		rc |= append_slice(b, base, r->host);
		rc |= buf_append(b, "\r\n", 2);
	}
	rc |= buf_append_str(b, "X-Request-Id: ");
	rc |= buf_append_str(b, ex->request_id);
	rc |= buf_append(b, "\r\n\r\n", 4);
	return rc ? -ENOSPC : 0;
}

/* Response head for the client.  A final one carries the request's id in
 * X-Request-Id (the service's own X-Request-Id fields are dropped: one
 * id per request, the one in the logs); an interim one goes as it came.
 * Returns 0 or -ENOSPC. */
static int serialize_response(struct client *c, struct exchange *ex, const struct http_response *r,
			      const char *base, bool interim)
{
	struct buf *b = &c->out;
	int rc = 0;
	char status_line[13] = "HTTP/1.1 000 ";

	status_line[9] = (char)('0' + r->status / 100 % 10);
	status_line[10] = (char)('0' + r->status / 10 % 10);
	status_line[11] = (char)('0' + r->status % 10);
	rc |= buf_append(b, status_line, sizeof(status_line));
	rc |= append_slice(b, base, r->reason);
	rc |= buf_append(b, "\r\n", 2);
	rc |= append_fields(b, base, r->headers, r->nheaders, r->head_len - 2,
			    HTTP_HDR_HOP | (interim ? 0 : HTTP_HDR_REQUEST_ID));
	if (!interim) {
		rc |= buf_append_str(b, "X-Request-Id: ");
		rc |= buf_append_str(b, ex->request_id);
		rc |= buf_append(b, "\r\n", 2);
	}
	if (r->status == 101) {
		for (uint32_t i = 0; i < r->nheaders; i++) {
			if (r->headers[i].flags & HTTP_HDR_UPGRADE) {
				rc |= buf_append_str(b, "Connection: upgrade\r\nUpgrade: ");
				rc |= append_slice(b, base, r->headers[i].value);
				rc |= buf_append(b, "\r\n", 2);
				break;
			}
		}
	} else if (!interim) {
		if (r->framing == HTTP_FRAMING_CHUNKED && !ex->dechunk)
			rc |= buf_append_str(b, "Transfer-Encoding: chunked\r\n");
		if (c->close_after) {
			rc |= buf_append_str(b, "Connection: close\r\n");
			ex->close_sent = true;
		} else if (ex->client_minor == 0) {
			rc |= buf_append_str(b, "Connection: keep-alive\r\n");
		}
	}
	if (!interim && ex->cohort_cookie) /* a new shopper's cohort (cohort.c) */
		rc |= cohort_cookie_append(b, &c->proxy->cfg->cohorts, ex->cohort);
	rc |= buf_append(b, "\r\n", 2);
	return rc ? -ENOSPC : 0;
}

/* ------------------------------------------------------------------ */
/* answers made by the proxy                                           */

/* Answer the current request ourselves (400, 404, 502, 504...).  If the
 * response to the client has already started, the only honest signal left
 * is to cut the connection. */
void exchange_local_response(struct exchange *ex, int status, const char *reason)
{
	struct client *c = ex->client;
	struct proxy *p = c->proxy;
	char body[160], retry[40] = "";
	int n;

	if (ex->upstream) {
		upstream_close(ex->upstream);
		ex->upstream = NULL;
	}
	ex->error = reason;
	if ((status == 502 || status == 504) && ex->service) {
		if (ex->resp_head_done || c->state == CLIENT_TUNNEL)
			exchange_log(ex, LOG_LEVEL_WARN, 0, "response cut short: %s", reason);
		else
			exchange_log(ex, LOG_LEVEL_WARN, status, "answered %d: %s", status, reason);
	}
	if (ex->resp_head_done || c->state == CLIENT_TUNNEL) {
		/* the status line is gone already: truncate */
		if (!ex->status)
			ex->status = status;
		ex->aborted = true;
		exchange_finish(ex);
		client_close(c);
		return;
	}
	ex->status = status;
	ex->local = true;
	metrics_local_response(&p->metrics, status);
	/* the connection stays usable only if the request was read entirely */
	if (!ex->head_done || !ex->req_done || !(ex->req.flags & HTTP_MSG_KEEP_ALIVE) || status == 400 ||
	    status == 408 || status == 414 || status == 431 || p->draining)
		c->close_after = true;
	if (!ex->head_done)
		ex->req_done = true; /* nothing more will be read for it */
	n = snprintf(body, sizeof(body), "%d %s: %s\n", status, http_status_reason(status), reason);
	if (ex->retry_after)
		snprintf(retry, sizeof(retry), "Retry-After: %llu\r\n",
			 (unsigned long long)(p->cfg->startup.retry_after_ms + 999) / 1000);
	if (buf_appendf(&c->out,
			"HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n"
			"Cache-Control: no-store\r\nX-Request-Id: %s\r\n%s%s\r\n%s",
			status, http_status_reason(status), n, ex->request_id, retry,
			c->close_after ? "Connection: close\r\n" : "", body) < 0) {
		c->close_after = true;
	}
	ex->close_sent = c->close_after;
	ex->resp_head_done = true;
	ex->resp_done = true;
	ex->resp_bytes = buf_len(&c->out);
}

/* ------------------------------------------------------------------ */
/* starting an exchange                                                */

/* A client's X-Request-Id is kept when it is 1..PROXY_REQUEST_ID_MAX
 * visible ASCII characters other than '"' and '\\' (a UUID, a trace id,
 * base64...): nothing a log line or a header would have to escape. */
static bool request_id_valid(const char *v, size_t n)
{
	if (n == 0 || n > PROXY_REQUEST_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)v[i];
		if (ch <= 0x20 || ch >= 0x7f || ch == '"' || ch == '\\')
			return false;
	}
	return true;
}

/* The head of ex->req is complete at the start of c->in. */
void exchange_begin(struct client *c, struct exchange *ex)
{
	struct proxy *p = c->proxy;
	const struct http_request *r = &ex->req;
	const char *base = buf_start(&c->in);
	struct route_request rq;
	long idx;

	ex->method = r->method_id;
	ex->client_minor = r->version_minor;
	slice_copy(ex->method_text, sizeof(ex->method_text), base, r->method);
	slice_copy(ex->path, sizeof(ex->path), base, r->target);
	slice_copy(ex->host, sizeof(ex->host), base, r->host);
	/* the first sane X-Request-Id of the client's, else one of ours */
	for (uint32_t i = 0; i < r->nheaders && !ex->request_id[0]; i++) {
		const struct http_header *h = &r->headers[i];
		if ((h->flags & HTTP_HDR_REQUEST_ID) && request_id_valid(base + h->value.off, h->value.len))
			slice_copy(ex->request_id, sizeof(ex->request_id), base, h->value);
	}
	if (!ex->request_id[0])
		proxy_request_id(p, ex->request_id);
	if (!(r->flags & HTTP_MSG_KEEP_ALIVE) || p->draining)
		c->close_after = true;
	ex->routes = route_table_ref(p->routes);
	ex->group = -1;
	ex->cohort = COHORT_NONE;
	p->metrics.in_flight++;
	ex->counted = true;

	if (r->method_id == HTTP_METHOD_CONNECT) {
		exchange_local_response(ex, 405, "CONNECT is not supported");
		return;
	}
	idx = router_match(&ex->routes->router->router, base + r->host.off, r->host.len, base + r->target.off,
			   r->target.len);
	if (idx < 0) {
		ex->req_done = r->framing == HTTP_FRAMING_NONE;
		ex->head_done = true;
		buf_consume(&c->in, r->head_len);
		exchange_local_response(ex, 404, "no route for this host and path");
		return;
	}
	ex->service = ex->routes->services[idx];
	if (p->nmaintenance) {
		const struct proxy_maintenance *m = proxy_maintenance_find(p, ex->service->name);
		if (m) {
			ex->req_done = r->framing == HTTP_FRAMING_NONE;
			ex->head_done = true;
			buf_consume(&c->in, r->head_len);
			exchange_maintenance_response(ex, m);
			return;
		}
	}
	/* the version group, while the head (cookies, headers) is readable */
	rq = (struct route_request){
		.req = r, .base = base, .cohorts = &p->cfg->cohorts, .deck = &p->deck, .cohort = COHORT_NONE
	};
	ex->group = (int8_t)route_choose(ex->service, &rq);
	ex->cohort = rq.cohort;
	ex->cohort_cookie = rq.set_cookie;
	ex->version_forced = rq.forced;
	ex->upgrade = (r->flags & HTTP_MSG_UPGRADE) && r->method_id == HTTP_METHOD_GET && r->version_minor == 1;
	if (serialize_request(c, ex, base) < 0) {
		ex->head_done = true;
		buf_consume(&c->in, r->head_len);
		exchange_local_response(ex, 431, "request head too large to forward");
		return;
	}
	http_body_init_request(&ex->req_body, r, p->cfg->limits.max_header_bytes);
	ex->req_done = ex->req_body.done;
	buf_consume(&c->in, r->head_len);
	ex->head_done = true;
	exchange_connect(ex);
}

/* ------------------------------------------------------------------ */
/* moving bytes                                                        */

static bool upstream_read(struct upstream *u)
{
	ssize_t n;
	size_t room;

	if (!u->can_read || u->eof || u->state != UPSTREAM_BUSY)
		return false;
	if (buf_room(&u->in) == 0)
		buf_compact(&u->in);
	room = buf_room(&u->in);
	if (room == 0)
		return false;
	n = loop_sock_read(&u->io, buf_end(&u->in), room);
	if (n > 0) {
		u->in.tail += (size_t)n;
		if ((size_t)n < room && !u->peer_shut)
			u->can_read = false; /* see client_read() */
		return true;
	}
	u->can_read = false;
	if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
		u->eof = true;
		return true;
	}
	return false;
}

/* Send the request head and validated body bytes upstream (one writev). */
static bool upstream_write(struct exchange *ex)
{
	struct client *c = ex->client;
	struct upstream *u = ex->upstream;
	size_t head_done, body_done;
	ssize_t n;

	if (!u->can_write)
		return false;
	n = proxy_write_pair(&u->io, &u->can_write, ex->uhead.data + ex->uhead_sent,
			     buf_len(&ex->uhead) - ex->uhead_sent, buf_start(&c->in), ex->req_fwd,
			     &head_done, &body_done);
	if (n == 0)
		return false;
	if (n < 0) {
		exchange_upstream_failed(ex, FAIL_CLOSED, (int)n);
		return true;
	}
	ex->uhead_sent += head_done;
	buf_consume(&c->in, body_done);
	ex->req_fwd -= body_done;
	ex->req_body_sent += body_done;
	return true;
}

/* Validate more request body bytes from c->in (pass-through). */
static bool request_body_feed(struct exchange *ex)
{
	struct client *c = ex->client;
	size_t doff, dlen;
	struct http_error err;
	ssize_t n;

	if (ex->req_done || ex->req_fwd || buf_empty(&c->in))
		return false;
	n = http_body_feed(&ex->req_body, buf_start(&c->in), buf_len(&c->in), &doff, &dlen, &err);
	if (n < 0) {
		exchange_local_response(ex, 400, err.reason);
		return true;
	}
	ex->req_fwd = (size_t)n;
	return n > 0 || ex->req_body.done;
}

/* Parse the response head in u->in.  Returns true on progress. */
static bool response_head(struct exchange *ex)
{
	struct client *c = ex->client;
	struct upstream *u = ex->upstream;
	struct proxy *p = c->proxy;
	struct http_limits lim = { .max_head_bytes = p->cfg->limits.max_header_bytes,
				   .max_target_bytes = p->cfg->limits.max_uri_bytes };
	struct http_error err;
	struct http_response *r = &ex->resp;
	int rc;

	if (buf_empty(&u->in)) {
		if (u->eof)
			exchange_upstream_failed(ex, FAIL_CLOSED, 0);
		return u->eof;
	}
	rc = http_response_parse(buf_start(&u->in), buf_len(&u->in), &lim, ex->method, r, &err);
	if (rc == 0) {
		if (u->eof)
			exchange_upstream_failed(ex, FAIL_CLOSED_MID_HEAD, 0);
		return u->eof;
	}
	if (rc < 0) {
		exchange_log(ex, LOG_LEVEL_WARN, 0, "invalid response from upstream: %s", err.reason);
		exchange_upstream_failed(ex, FAIL_BAD_RESPONSE, 0);
		return true;
	}
	if (r->status < 200 && r->status != 101) {
		/* interim (100 Continue, 103 Early Hints): forward to 1.1 clients */
		if (ex->client_minor == 1 && serialize_response(c, ex, r, buf_start(&u->in), true) < 0) {
			exchange_local_response(ex, 502, "interim response too large");
			return true;
		}
		buf_consume(&u->in, (size_t)rc);
		return true;
	}
	if (r->status == 101 && !ex->upgrade) {
		exchange_upstream_failed(ex, FAIL_BAD_RESPONSE, 0);
		return true;
	}
	if (r->status >= 500 && exchange_shield_group(ex, FAIL_SERVER_ERROR) >= 0) {
		/* nothing of a canary's 5xx reaches the shopper: its connection
		 * closes (not drained) and the request goes to stable */
		exchange_upstream_failed(ex, FAIL_SERVER_ERROR, 0);
		return true;
	}
	ex->status = r->status;
	ex->dechunk = r->framing == HTTP_FRAMING_CHUNKED && ex->client_minor == 0;
	if (r->framing == HTTP_FRAMING_CLOSE || ex->dechunk || !ex->req_done)
		c->close_after = true;
	if (r->status == 101)
		c->close_after = false;
	if (serialize_response(c, ex, r, buf_start(&u->in), false) < 0) {
		exchange_local_response(ex, 502, "response head too large to forward");
		return true;
	}
	http_body_init_response(&ex->resp_body, r, p->cfg->limits.max_header_bytes);
	buf_consume(&u->in, (size_t)rc);
	ex->resp_head_done = true;
	if (r->status == 101) {
		c->state = CLIENT_TUNNEL;
		ex->resp_done = true;
		return true;
	}
	ex->resp_done = ex->resp_body.done;
	return true;
}

/* Validate more response body bytes (pass-through, or de-chunk for 1.0). */
static bool response_body(struct exchange *ex)
{
	struct client *c = ex->client;
	struct upstream *u = ex->upstream;
	size_t doff, dlen, len = buf_len(&u->in);
	struct http_error err;
	ssize_t n;

	if (ex->resp_done || ex->resp_fwd)
		return false;
	if (ex->resp_body.done) {
		ex->resp_done = true; /* everything validated has been written */
		return true;
	}
	if (!len) {
		if (!u->eof)
			return false;
		if (ex->resp_body.framing == HTTP_FRAMING_CLOSE) {
			ex->resp_done = true; /* the end of the body is the close */
			return true;
		}
		exchange_local_response(ex, 502, "upstream closed the connection mid-body");
		return true;
	}
	if (ex->dechunk) {
		size_t room = buf_room(&c->out) + c->out.head;
		if (room == 0)
			return false;
		if (len > room)
			len = room;
	}
	n = http_body_feed(&ex->resp_body, buf_start(&u->in), len, &doff, &dlen, &err);
	if (n < 0) {
		exchange_log(ex, LOG_LEVEL_WARN, 0, "invalid response body from upstream: %s", err.reason);
		exchange_local_response(ex, 502, "invalid response body from upstream");
		return true;
	}
	if (ex->dechunk) {
		buf_append(&c->out, buf_start(&u->in) + doff, dlen);
		buf_consume(&u->in, (size_t)n);
	} else {
		ex->resp_fwd = (size_t)n;
	}
	if (ex->resp_body.done && !ex->resp_fwd)
		ex->resp_done = true;
	return n > 0 || ex->resp_done;
}

/* One round of the exchange state machine.  Returns true on progress. */
bool exchange_step(struct exchange *ex)
{
	struct client *c = ex->client;
	struct proxy *p = c->proxy;
	struct upstream *u = ex->upstream;
	bool progress = false;

	if (u && u->state == UPSTREAM_CONNECTING) {
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		if (!u->can_write && !u->can_read)
			return false;
		getsockopt(u->io.fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
		if (soerr) {
			exchange_upstream_failed(ex, FAIL_CONNECT, -soerr);
			return true;
		}
		if (!u->can_write)
			return false;
		u->state = UPSTREAM_BUSY;
		upstream_set_deadline(u, p->cfg->timeouts.upstream_body);
		progress = true;
	}
	if (!u || ex->resp_done)
		return progress;
	/* request */
	if (!ex->req_done) {
		progress |= request_body_feed(ex);
		if (c->ex != ex || ex->upstream != u)
			return true;
	}
	if (buf_len(&ex->uhead) > ex->uhead_sent || ex->req_fwd) {
		progress |= upstream_write(ex);
		if (c->ex != ex || ex->upstream != u)
			return true;
	}
	if (!ex->req_done && ex->req_body.done && !ex->req_fwd && ex->uhead_sent == buf_len(&ex->uhead)) {
		ex->req_done = true;
		progress = true;
	}
	/* response */
	progress |= upstream_read(u);
	if (!ex->resp_head_done) {
		if (buf_len(&c->out) > p->buf_size / 2)
			return progress; /* let interim responses drain first */
		progress |= response_head(ex);
		if (c->ex != ex || ex->upstream != u || c->state == CLIENT_TUNNEL)
			return true;
	}
	if (ex->resp_head_done && !ex->resp_done) {
		progress |= response_body(ex);
		if (c->ex != ex || ex->upstream != u)
			return true;
	}
	if (progress && u->state == UPSTREAM_BUSY) {
		/* the response-head timeout runs from the end of the request and is
		 * not extended by trickling bytes; the others are idle timeouts */
		if (ex->req_done && !ex->resp_head_done && ex->uhead_sent == buf_len(&ex->uhead)) {
			if (!ex->header_deadline_set) {
				ex->header_deadline_set = true;
				upstream_set_deadline(u, p->cfg->timeouts.upstream_header);
			}
		} else {
			upstream_set_deadline(u, p->cfg->timeouts.upstream_body);
		}
	}
	return progress;
}

/* Raw bytes both ways after 101 Switching Protocols. */
bool exchange_tunnel_step(struct client *c)
{
	struct exchange *ex = c->ex;
	struct upstream *u = ex->upstream;
	bool progress = false;
	ssize_t n;

	if (!u)
		return false;
	/* client -> upstream */
	if (!buf_empty(&c->in) && u->can_write) {
		n = loop_sock_write(&u->io, buf_start(&c->in), buf_len(&c->in));
		if (n > 0) {
			buf_consume(&c->in, (size_t)n);
			progress = true;
		} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			u->eof = true;
		} else {
			u->can_write = false;
		}
	}
	progress |= upstream_read(u);
	/* upstream -> client through resp_fwd */
	if (!ex->resp_fwd && !buf_empty(&u->in)) {
		ex->resp_fwd = buf_len(&u->in);
		progress = true;
	}
	if (c->eof && buf_empty(&c->in) && !ex->tunnel_client_shut) {
		loop_sock_shutdown_wr(&u->io);
		ex->tunnel_client_shut = true;
		progress = true;
	}
	if ((u->eof && buf_empty(&u->in) && !ex->resp_fwd && buf_empty(&c->out)) ||
	    (c->eof && u->eof)) {
		ex->resp_done = true;
		ex->tunnel_done = true;
		progress = true;
	}
	if (progress && ex->upstream) {
		/* a tunnel has one idle timeout, whichever side speaks */
		client_set_deadline(c, c->proxy->cfg->timeouts.client_idle);
		upstream_set_deadline(u, c->proxy->cfg->timeouts.client_idle);
	}
	return progress;
}

/* ------------------------------------------------------------------ */
/* the error log                                                       */

const char *exchange_version(const struct exchange *ex)
{
	int g;

	if (!ex->service || !ex->target)
		return NULL;
	g = route_target_group(ex->service, ex->target);
	return g >= 0 ? ex->service->groups[g].version : NULL;
}

void exchange_log(struct exchange *ex, enum log_level level, int status, const char *fmt, ...)
{
	struct proxy *p = ex->client->proxy;
	uint64_t second = p->loop->now_ns / 1000000000u;
	uint32_t suppressed;
	va_list ap;

	if (!log_enabled(level))
		return;
	/* a failing version under load must not turn the error log into a
	 * second access log, nor cost a write(2) per request */
	if (second != p->reqlog_second) {
		p->reqlog_second = second;
		p->reqlog_lines = 0;
	}
	if (p->reqlog_lines >= REQUEST_LOG_PER_SECOND) {
		p->reqlog_suppressed++;
		return;
	}
	p->reqlog_lines++;
	suppressed = p->reqlog_suppressed;
	p->reqlog_suppressed = 0;
	{
		const struct log_field fields[] = {
			LOG_STR("request_id", ex->request_id),
			LOG_STR("service", ex->service ? ex->service->name : NULL),
			LOG_STR("version", exchange_version(ex)),
			LOG_STR("target", ex->target ? ex->target->addr_text : NULL),
			status > 0 ? LOG_INT("status", status) : LOG_STR("status", NULL),
			suppressed ? LOG_INT("suppressed", suppressed) : LOG_STR("suppressed", NULL),
		};
		va_start(ap, fmt);
		log_vfields(level, fields, ARRAY_SIZE(fields), fmt, ap);
		va_end(ap);
	}
}

/* ------------------------------------------------------------------ */
/* finishing                                                           */

void exchange_finish(struct exchange *ex)
{
	struct client *c = ex->client;
	struct proxy *p = c->proxy;
	struct upstream *u = ex->upstream;
	uint64_t now = p->loop->now_ns;

	if (u) {
		bool reusable = ex->resp_done && ex->req_done && !ex->aborted && !ex->resp_fwd &&
				(ex->resp.flags & HTTP_MSG_KEEP_ALIVE) && c->state != CLIENT_TUNNEL &&
				ex->resp.status != 101;
		upstream_release(u, reusable);
		ex->upstream = NULL;
	}
	if (ex->counted) {
		p->metrics.in_flight--;
		if (ex->target && !ex->local)
			exchange_observe(ex, ex->target, ex->status ? ex->status : 502, now);
		/* one outcome per request routed to a service, retries or not */
		if (ex->service)
			metrics_outcomes_observe(ex->service->outcomes, ex->status);
	}
	if (p->accesslog && (ex->head_done || ex->status))
		accesslog_write(p->accesslog, ex, now);
	c->ex = NULL;
	c->requests++;
	exchange_free(ex);
}

/* client.c - client connections: the hot path's outer loop.
 *
 * Every event on a client socket or on the upstream socket serving it calls
 * client_pump(), which moves bytes as far as they can go right now:
 *
 *   client.in --(request head, re-serialized; body validated, passed through)--> upstream
 *   upstream.in --(response head, re-serialized; body validated, passed through)--> client
 *
 * This file holds the client side: accept, reading into client.in, parsing
 * request heads, writing client.out, the pump, timers, linger, drain and
 * close.  One request and its response (the exchange: serializing heads,
 * talking to the upstream, bodies, tunnels) is exchange.c; connecting,
 * failures and retries are retry.c.
 *
 * Sockets are edge-triggered; can_read/can_write remember readiness, so a
 * buffer that fills up simply stops the reads on that side (backpressure)
 * and memory never grows with the body size.  One exchange runs at a time
 * per client: pipelined requests wait in client.in, so responses go out in
 * order.  A pump does a bounded amount of work; a client with work left is
 * queued on proxy->pending and pumped again after the other events.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include "base/buf.h"
#include "base/list.h"
#include "base/util.h"
#include "http/parser.h"
#include "loop/loop.h"
#include "loop/sock.h"
#include "proxy/proxy.h"
#include "proxy/proxy-internal.h"

#define PUMP_ROUNDS 16
#define CLIENT_LINGER_MS 2000

static void client_linger(struct client *c);

static inline const struct config *cfg_of(const struct client *c) { return c->proxy->cfg; }

/* ------------------------------------------------------------------ */
/* moving bytes                                                        */

/* Read from the client into c->in.  Returns true on progress. */
static bool client_read(struct client *c)
{
	ssize_t n;
	size_t room;

	if (!c->can_read || c->eof || c->state == CLIENT_CLOSED || c->state == CLIENT_FLUSH_CLOSE)
		return false;
	if (proxy_buf_get(c->proxy, &c->in) < 0)
		return false;
	if (buf_room(&c->in) == 0)
		buf_compact(&c->in);
	room = buf_room(&c->in);
	if (room == 0)
		return false; /* backpressure: wait until the upstream takes bytes */
	n = loop_sock_read(&c->io, buf_end(&c->in), room);
	if (n > 0) {
		c->in.tail += (size_t)n;
		/* drained: the next edge will tell; unless the edge we had also
		 * carried the peer's FIN, which no later edge will repeat */
		if ((size_t)n < room && !c->peer_shut)
			c->can_read = false;
		return true;
	}
	c->can_read = false;
	if (n == 0) {
		c->eof = true;
		return true;
	}
	if (errno == EAGAIN || errno == EINTR)
		return false;
	c->eof = true;
	c->reset = true;
	return true;
}

/* Our own bytes first, then bytes passed through, in one writev.
 * Returns the bytes written split into *head and *body, 0 when there was
 * nothing to write or the socket is full (*can_write cleared), or -errno
 * when the socket failed (*can_write cleared).  A short write clears
 * *can_write: the next EPOLLOUT edge sets it again.  Used by both directions
 * (client_write here, upstream_write in exchange.c). */
ssize_t proxy_write_pair(struct loop_io *io, bool *can_write, const char *head, size_t head_len, const char *body,
			 size_t body_len, size_t *head_done, size_t *body_done)
{
	struct iovec iov[2];
	int niov = 0;
	ssize_t n;

	if (head_len)
		iov[niov++] = (struct iovec){ (void *)head, head_len };
	if (body_len)
		iov[niov++] = (struct iovec){ (void *)body, body_len };
	if (!niov)
		return 0;
	n = loop_sock_writev(io, iov, niov);
	if (n < 0) {
		*can_write = false;
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	}
	if ((size_t)n < head_len + body_len)
		*can_write = false;
	*head_done = (size_t)n < head_len ? (size_t)n : head_len;
	*body_done = (size_t)n - *head_done;
	return n;
}

/* Write pending bytes to the client: our own bytes (c->out) first, then the
 * validated response body bytes waiting in the upstream buffer, or the
 * page the proxy answers with (maintenance.c).  Returns true on progress;
 * a dead client is closed. */
static bool client_write(struct client *c)
{
	struct exchange *ex = c->ex;
	bool body = ex && ex->upstream && ex->resp_fwd;
	size_t page = !body && ex ? exchange_page_left(ex) : 0;
	size_t head_done, body_done;
	ssize_t n;

	if (!c->can_write || c->state == CLIENT_CLOSED)
		return false;
	n = proxy_write_pair(&c->io, &c->can_write, buf_start(&c->out), buf_len(&c->out),
			     body ? buf_start(&ex->upstream->in) : page ? ex->page->bytes + ex->page_off : NULL,
			     body ? ex->resp_fwd : page, &head_done, &body_done);
	if (n == 0)
		return false;
	if (n < 0) {
		c->reset = true;
		if (ex) {
			ex->error = "client closed the connection";
			ex->aborted = true;
			if (!ex->status)
				ex->status = 499;
			exchange_finish(ex);
		}
		client_close(c);
		return true;
	}
	buf_consume(&c->out, head_done);
	if (body_done && page) {
		ex->page_off += body_done;
	} else if (body_done) {
		buf_consume(&ex->upstream->in, body_done);
		ex->resp_fwd -= body_done;
	}
	if (ex)
		ex->resp_bytes += (size_t)n;
	return true;
}

/* The response is complete on the wire side of the proxy: finish and move on. */
static bool exchange_maybe_done(struct client *c)
{
	struct exchange *ex = c->ex;
	bool drain_only;

	if (!ex || !ex->resp_done || ex->resp_fwd || !buf_empty(&c->out) || exchange_page_left(ex))
		return false;
	if (c->state == CLIENT_TUNNEL && !ex->tunnel_done)
		return false;
	if (!ex->req_done)
		c->close_after = true; /* unread request body: the connection is out of step */
	/* The drain began after this response's head went out without
	 * "Connection: close": the client takes the connection as reusable and
	 * may be sending its next request right now.  Closing would race with
	 * it (a reset); treat the connection as one idle on drain instead. */
	drain_only = c->close_after && !ex->close_sent && ex->req_done && c->proxy->draining;
	exchange_finish(ex);
	if (c->state == CLIENT_TUNNEL) {
		client_close(c);
		return true;
	}
	if (c->close_after && !drain_only) {
		client_linger(c);
		return true;
	}
	c->state = buf_empty(&c->in) ? CLIENT_IDLE : CLIENT_HEAD;
	c->head_started = !buf_empty(&c->in);
	client_set_deadline(c, c->head_started ? cfg_of(c)->timeouts.client_header : cfg_of(c)->timeouts.client_idle);
	if (drain_only)
		client_drain(c);
	return true;
}

/* ------------------------------------------------------------------ */
/* request heads                                                       */

static bool client_parse_head(struct client *c)
{
	struct proxy *p = c->proxy;
	const struct config_limits *lim = &p->cfg->limits;
	struct http_limits hl = { .max_head_bytes = lim->max_header_bytes,
				  .max_target_bytes = lim->max_uri_bytes,
				  .require_host = true };
	struct http_error err;
	struct exchange *ex;
	int rc;

	if (buf_empty(&c->in))
		return false;
	if (c->state == CLIENT_IDLE) {
		c->state = CLIENT_HEAD;
		c->head_started = true;
		client_set_deadline(c, p->cfg->timeouts.client_header);
	}
	if (c->in.head && buf_room(&c->in) < lim->max_header_bytes)
		buf_compact(&c->in);
	ex = exchange_new(c);
	if (!ex) {
		client_close(c);
		return true;
	}
	rc = http_request_parse(buf_start(&c->in), buf_len(&c->in), &hl, &ex->req, &err);
	if (rc == 0) {
		exchange_free(ex);
		if (c->eof) {
			client_close(c); /* gave up half-way through a head */
			return true;
		}
		return false;
	}
	c->ex = ex;
	c->state = CLIENT_EXCHANGE;
	if (rc < 0) {
		proxy_request_id(p, ex->request_id);
		ex->head_done = false;
		ex->counted = false;
		snprintf(ex->method_text, sizeof(ex->method_text), "-");
		exchange_local_response(ex, err.status, err.reason);
		buf_consume(&c->in, buf_len(&c->in)); /* never read past a bad head */
		return true;
	}
	client_set_deadline(c, p->cfg->timeouts.client_body);
	exchange_begin(c, ex);
	return true;
}

/* ------------------------------------------------------------------ */
/* the pump                                                            */

static void client_release_idle_buffers(struct client *c)
{
	if (buf_empty(&c->in))
		proxy_buf_put(c->proxy, &c->in);
	if (buf_empty(&c->out))
		proxy_buf_put(c->proxy, &c->out);
}

void client_pump(struct client *c)
{
	struct proxy *p = c->proxy;
	int round;

	for (round = 0; round < PUMP_ROUNDS; round++) {
		bool progress = false;

		if (c->state == CLIENT_CLOSED || c->state == CLIENT_LINGER)
			return;
		if (proxy_buf_get(p, &c->out) < 0) {
			client_close(c);
			return;
		}
		progress |= client_read(c);
		switch (c->state) {
		case CLIENT_IDLE:
		case CLIENT_HEAD:
			if (c->eof && buf_empty(&c->in)) {
				client_close(c);
				return;
			}
			progress |= client_parse_head(c);
			break;
		case CLIENT_EXCHANGE:
			if (c->eof && !c->ex->req_done && buf_empty(&c->in) && !c->ex->local) {
				/* the client went away before sending its whole request */
				c->ex->error = "client closed the connection";
				c->ex->status = c->ex->status ? c->ex->status : 499;
				c->ex->aborted = true;
				exchange_finish(c->ex);
				client_close(c);
				return;
			}
			progress |= exchange_step(c->ex);
			break;
		case CLIENT_TUNNEL:
			progress |= exchange_tunnel_step(c);
			break;
		default:
			break;
		}
		if (c->state == CLIENT_CLOSED)
			return;
		progress |= client_write(c);
		if (c->state == CLIENT_CLOSED)
			return;
		if (c->reset && c->ex) {
			c->ex->error = "client reset the connection";
			c->ex->status = c->ex->status ? c->ex->status : 499;
			c->ex->aborted = true;
			exchange_finish(c->ex);
			client_close(c);
			return;
		}
		if (progress && c->state == CLIENT_EXCHANGE)
			client_set_deadline(c, p->cfg->timeouts.client_body); /* idle timeout */
		progress |= exchange_maybe_done(c);
		if (c->state == CLIENT_CLOSED)
			return;
		if (c->state == CLIENT_FLUSH_CLOSE && buf_empty(&c->out)) {
			client_linger(c);
			return;
		}
		if (c->state == CLIENT_LINGER)
			return;
		if (!progress)
			break;
	}
	if (round == PUMP_ROUNDS && list_empty(&c->pending_node)) {
		list_add_tail(&p->pending, &c->pending_node); /* more to do: after the others */
		p->loop->immediate = true;
	}
	if (c->state == CLIENT_IDLE && !c->ex)
		client_release_idle_buffers(c);
}

void client_on_timer(struct loop *loop, struct loop_timer *timer)
{
	struct client *c = container_of(timer, struct client, timer);
	struct exchange *ex = c->ex;

	switch (c->state) {
	case CLIENT_IDLE:
		client_close(c); /* keep-alive idle: close quietly */
		return;
	case CLIENT_HEAD:
		ex = exchange_new(c);
		if (!ex) {
			client_close(c);
			return;
		}
		c->ex = ex;
		c->state = CLIENT_EXCHANGE;
		proxy_request_id(c->proxy, ex->request_id);
		snprintf(ex->method_text, sizeof(ex->method_text), "-");
		exchange_local_response(ex, 408, "request header timeout");
		buf_consume(&c->in, buf_len(&c->in));
		break;
	case CLIENT_EXCHANGE:
		if (ex && !ex->req_done && !ex->resp_head_done) {
			exchange_local_response(ex, 408, "request body timeout");
		} else if (ex && (!buf_empty(&c->out) || ex->resp_fwd || exchange_page_left(ex))) {
			/* the client does not read its response */
			ex->error = "client write timeout";
			ex->aborted = true;
			exchange_finish(ex);
			client_close(c);
			return;
		} else {
			client_set_deadline(c, c->proxy->cfg->timeouts.client_body);
			return;
		}
		break;
	case CLIENT_TUNNEL:
		if (ex) {
			ex->error = "tunnel idle timeout";
			exchange_finish(ex);
		}
		client_close(c);
		return;
	case CLIENT_LINGER:
	case CLIENT_FLUSH_CLOSE:
	default:
		client_close(c);
		return;
	}
	client_pump(c);
}

/* Read and drop whatever the client still sends after our last response;
 * close at its EOF.  Returns true if the client was closed. */
static bool client_linger_read(struct client *c)
{
	char scratch[4096];

	for (int i = 0; i < 64; i++) {
		ssize_t n = loop_sock_read(&c->io, scratch, sizeof(scratch));
		if (n > 0)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return false;
		break;
	}
	client_close(c);
	return true;
}

/* Close after a complete response.  Closing a socket with unread input
 * makes the kernel send RST, which can destroy the response still in
 * flight to the client (an early 413 during an upload, a 400 followed by
 * more pipelined bytes).  So: shut our write side, discard what arrives
 * until the client closes, and give up after a short grace. */
static void client_linger(struct client *c)
{
	struct proxy *p = c->proxy;

	if (c->eof || c->reset || c->io.fd < 0) {
		client_close(c);
		return;
	}
	if (c->ex)
		exchange_finish(c->ex);
	loop_sock_shutdown_wr(&c->io);
	c->state = CLIENT_LINGER;
	list_del(&c->pending_node);
	proxy_buf_put(p, &c->in);
	proxy_buf_put(p, &c->out);
	client_set_deadline(c, CLIENT_LINGER_MS);
	client_linger_read(c);
}

static void client_on_event(struct loop *loop, struct loop_io *io, uint32_t events)
{
	struct client *c = container_of(io, struct client, io);

	if (c->state == CLIENT_CLOSED)
		return;
	if (c->state == CLIENT_LINGER) {
		client_linger_read(c);
		return;
	}
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->can_read = true;
	if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->peer_shut = true;
	if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		c->can_write = true;
	client_pump(c);
}

/* ------------------------------------------------------------------ */
/* accept and close                                                    */

void client_accept(struct proxy *p, int fd, const struct sockaddr *sa)
{
	struct client *c = calloc(1, sizeof(*c));
	int one = 1;

	if (!c) {
		close(fd);
		return;
	}
	c->proxy = p;
	list_init(&c->pending_node);
	if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) {
		char tmp[64], *colon;
		format_sockaddr(sa, tmp, sizeof(tmp));
		colon = strrchr(tmp, ':');
		if (colon)
			*colon = 0;
		if (tmp[0] == '[') {
			size_t n = strlen(tmp);
			memmove(tmp, tmp + 1, n);
			if (n >= 2)
				tmp[n - 2] = 0;
		}
		snprintf(c->peer, sizeof(c->peer), "%s", tmp);
	} else {
		snprintf(c->peer, sizeof(c->peer), "unix");
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (loop_sock_open(p->loop, &c->io, fd, 0, client_on_event) < 0) {
		close(fd);
		free(c);
		return;
	}
	list_add_tail(&p->clients, &c->node);
	p->nclients++;
	p->metrics.client_connections++;
	p->metrics.client_connections_total++;
	c->state = CLIENT_IDLE;
	c->can_write = true;
	client_set_deadline(c, p->cfg->timeouts.client_header);
	if (p->draining)
		client_drain(c); /* accepted as the listener closes: one answer, within the grace */
}

void client_close(struct client *c)
{
	struct proxy *p = c->proxy;

	if (c->state == CLIENT_CLOSED)
		return;
	if (c->ex) {
		if (!c->ex->status)
			c->ex->status = 499;
		c->ex->aborted = true;
		exchange_finish(c->ex);
	}
	c->state = CLIENT_CLOSED;
	loop_timer_cancel(p->loop, &c->timer);
	loop_sock_close(p->loop, &c->io);
	list_del(&c->node);
	list_del(&c->pending_node);
	list_add_tail(&p->closed_clients, &c->node);
	p->nclients--;
	p->metrics.client_connections--;
}

/* How long an idle keep-alive connection stays open once draining starts.
 * Closing it at once races with a request the client is sending on it
 * right then (it would see a reset); a client that uses the connection
 * sends its next request within this and gets it answered with
 * "Connection: close"; one that does not is closed quietly. */
#define DRAIN_IDLE_GRACE_MS 1000

void client_drain(struct client *c)
{
	uint64_t idle = cfg_of(c)->timeouts.client_idle;

	c->close_after = true;
	if (c->state == CLIENT_IDLE && buf_empty(&c->in) && !c->ex)
		client_set_deadline(c, idle < DRAIN_IDLE_GRACE_MS ? idle : DRAIN_IDLE_GRACE_MS);
}

void client_free_later(struct client *c)
{
	client_close(c);
}

void client_free(struct client *c)
{
	list_del(&c->node);
	proxy_buf_put(c->proxy, &c->in);
	proxy_buf_put(c->proxy, &c->out);
	free(c);
}

/* upstream.c - connections from the proxy to targets, and their pools.
 *
 * A connection is created by a non-blocking connect, belongs to one exchange
 * while it carries a request (BUSY), and afterwards goes back to its
 * target's pool of idle keep-alive connections (most recently used first) or
 * is closed.  An idle connection that becomes readable was closed by the
 * target (or sent bytes nobody asked for): it is closed, never reused.
 * Closed connections are freed at the end of the loop iteration.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include "base/buf.h"
#include "base/list.h"
#include "loop/loop.h"
#include "loop/sock.h"
#include "proxy/proxy.h"
#include "proxy/proxy-internal.h"

static void upstream_on_timer(struct loop *loop, struct loop_timer *timer)
{
	struct upstream *u = container_of(timer, struct upstream, timer);

	if (u->state == UPSTREAM_IDLE)
		upstream_close(u);
	else if (u->ex)
		exchange_upstream_timeout(u->ex);
}

static void upstream_on_event(struct loop *loop, struct loop_io *io, uint32_t events)
{
	struct upstream *u = container_of(io, struct upstream, io);

	if (u->state == UPSTREAM_CLOSED)
		return;
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		u->can_read = true;
	if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		u->peer_shut = true;
	if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		u->can_write = true;
	if (u->state == UPSTREAM_IDLE) {
		if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			upstream_close(u);
		return;
	}
	if (u->ex)
		client_pump(u->ex->client);
}

struct upstream *upstream_get(struct proxy *p, struct target *t, bool fresh, bool *reused, int *err)
{
	struct upstream *u;
	int fd, one = 1;

	while (!fresh && !list_empty(&t->idle)) {
		u = container_of(t->idle.next, struct upstream, pool_node);
		list_del(&u->pool_node);
		t->nidle--;
		t->metrics->idle_connections--;
		if (proxy_buf_get(p, &u->in) < 0) {
			upstream_close(u);
			break;
		}
		u->state = UPSTREAM_BUSY;
		*reused = true;
		return u;
	}
	fd = socket(t->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*err = -errno;
		return NULL;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&t->sa, t->salen) < 0 && errno != EINPROGRESS) {
		*err = -errno;
		close(fd);
		return NULL;
	}
	u = calloc(1, sizeof(*u));
	if (!u || proxy_buf_get(p, &u->in) < 0) {
		free(u);
		close(fd);
		*err = -ENOMEM;
		return NULL;
	}
	u->proxy = p;
	u->target = target_ref(t);
	u->state = UPSTREAM_CONNECTING;
	list_init(&u->pool_node);
	list_init(&u->closed_node);
	if ((*err = loop_sock_open(p->loop, &u->io, fd, LOOP_SOCK_CONNECTING, upstream_on_event)) < 0) {
		close(fd);
		u->io.fd = -1;
		u->state = UPSTREAM_CLOSED;
		list_add_tail(&p->closed_upstreams, &u->closed_node);
		return NULL;
	}
	t->metrics->open_connections++;
	*reused = false;
	return u;
}

void upstream_release(struct upstream *u, bool reusable)
{
	struct proxy *p = u->proxy;
	struct target *t = u->target;

	u->ex = NULL;
	if (!reusable || u->eof || u->peer_shut || !buf_empty(&u->in) || t->removed || p->draining ||
	    t->nidle >= p->cfg->limits.upstream_idle_per_target) {
		upstream_close(u);
		return;
	}
	u->state = UPSTREAM_IDLE;
	u->requests++;
	proxy_buf_put(p, &u->in);
	list_add_head(&t->idle, &u->pool_node);
	t->nidle++;
	t->metrics->idle_connections++;
	/* expiry is upstream_expire_idle()'s job: no heap work per request */
	u->idle_since_ms = p->loop->now_ms;
	loop_timer_disarm(&u->timer);
}

void upstream_expire_idle(struct target *t, uint64_t now_ms, uint64_t max_idle_ms)
{
	/* most recently used first: the oldest are at the tail */
	while (!list_empty(&t->idle)) {
		struct upstream *u = container_of(t->idle.prev, struct upstream, pool_node);
		if (now_ms - u->idle_since_ms < max_idle_ms)
			break;
		upstream_close(u);
	}
}

void upstream_close(struct upstream *u)
{
	struct proxy *p = u->proxy;

	if (u->state == UPSTREAM_CLOSED)
		return;
	if (u->state == UPSTREAM_IDLE) {
		list_del(&u->pool_node);
		u->target->nidle--;
		u->target->metrics->idle_connections--;
	}
	loop_timer_cancel(p->loop, &u->timer);
	u->state = UPSTREAM_CLOSED;
	u->ex = NULL;
	if (u->io.fd >= 0) {
		loop_sock_close(p->loop, &u->io);
		u->target->metrics->open_connections--;
	}
	list_add_tail(&p->closed_upstreams, &u->closed_node);
}

void upstream_free(struct upstream *u)
{
	list_del(&u->closed_node);
	proxy_buf_put(u->proxy, &u->in);
	target_unref(u->target);
	free(u);
}

void target_close_idle(struct target *t)
{
	while (!list_empty(&t->idle))
		upstream_close(container_of(t->idle.next, struct upstream, pool_node));
}

/* Set the connection's timer for the phase its exchange is in. */
void upstream_set_deadline(struct upstream *u, uint64_t timeout_ms)
{
	loop_timer_set(u->proxy->loop, &u->timer, u->proxy->loop->now_ms + timeout_ms, upstream_on_timer);
}

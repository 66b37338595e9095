/* proxy.c - the proxy's lifetime: listeners, applying a configuration,
 * draining, and the work left at the end of each loop iteration.
 *
 * The proxy owns no configuration and knows no signal: the daemon
 * (src/daemon/) loads a configuration, hands it over with proxy_apply()
 * (which builds a complete routing snapshot and opens every new listener
 * before it swaps anything; on error the old one stays in force), and
 * calls proxy_drain() on SIGTERM.  Draining stops accepting, closes idle
 * keep-alive connections and lets in-flight requests finish for up to
 * timeouts.drain; proxy_iteration_end() then reports that it is done.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <malloc.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>
#include "base/buf.h"
#include "base/list.h"
#include "base/log.h"
#include "base/util.h"
#include "config/config.h"
#include "loop/inherit.h"
#include "loop/loop.h"
#include "metrics/metrics.h"
#include "proxy/cohort.h"
#include "proxy/proxy.h"
#include "proxy/proxy-internal.h"

#define FREE_BUFS_MAX 64

int proxy_buf_get(struct proxy *p, struct buf *b)
{
	if (b->data)
		return 0;
	if (p->nfree_bufs) {
		b->data = p->free_bufs[--p->nfree_bufs];
		b->cap = p->buf_size;
		b->head = b->tail = 0;
		return 0;
	}
	return buf_init(b, p->buf_size);
}

void proxy_buf_put(struct proxy *p, struct buf *b)
{
	if (!b->data)
		return;
	if (b->cap == p->buf_size && p->nfree_bufs < FREE_BUFS_MAX) {
		p->free_bufs[p->nfree_bufs++] = b->data;
		b->data = NULL;
		b->cap = b->head = b->tail = 0;
		return;
	}
	buf_release(b);
	p->bufs_freed++;
}

static size_t buf_size_for(const struct config *cfg)
{
	size_t n = cfg->limits.buffer_bytes;

	if (n < cfg->limits.max_header_bytes + 1u)
		n = cfg->limits.max_header_bytes + 1u;
	return n + 4096; /* room for our own header lines on top of a full head */
}

/* Request ids are 8 hex digits of a random per-process prefix and 16 of a
 * counter.  The text is kept and its counter digits incremented in place
 * (an odometer): a copy per request, no formatting. */
void proxy_request_id(struct proxy *p, char *out)
{
	static const char hex[] = "0123456789abcdef";
	char *id = p->request_id_text;

	if (!id[0]) {
		uint32_t prefix = p->id_prefix;
		for (int i = 7; i >= 0; i--, prefix >>= 4)
			id[i] = hex[prefix & 15];
		memset(id + 8, '0', 16);
		id[24] = 0;
	}
	for (int i = 23; i >= 8; i--) {
		if (id[i] == 'f') {
			id[i] = '0';
			continue;
		}
		id[i] = id[i] == '9' ? 'a' : (char)(id[i] + 1);
		break;
	}
	p->request_seq++;
	memcpy(out, id, 25);
}

/* ------------------------------------------------------------------ */
/* listeners                                                           */

/* A listening socket on a: the one handed over for that address if there
 * is one (systemd, the previous daemon), else a new one.  No SO_REUSEPORT:
 * a second daemon on the same address must fail (EADDRINUSE), not quietly
 * take half of the new connections. */
static int listen_socket(struct proxy *p, const struct config_addr *a, int backlog)
{
	int fd = inherited_take(p->inherited, (const struct sockaddr *)&a->sa, a->salen), one = 1, err;

	if (fd >= 0) {
		log_info("listening on %s: socket from %s", a->text, p->inherited->from);
		return fd;
	}
	fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (a->sa.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&a->sa, a->salen) < 0 || listen(fd, backlog) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static void accept_all(struct proxy *p, struct listener *l)
{
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd;

		if (p->nclients >= p->cfg->limits.max_connections) {
			p->accept_paused = true;
			return;
		}
		fd = accept4(l->io.fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE) {
				log_error("cannot accept on %s: %s", l->addr.text, strerror(errno));
				p->accept_paused = true;
			}
			return; /* EAGAIN, or a transient error: the next edge retries */
		}
		client_accept(p, fd, (struct sockaddr *)&ss);
	}
}

static void listener_on_event(struct loop *loop, struct loop_io *io, uint32_t events)
{
	struct listener *l = container_of(io, struct listener, io);

	/* settling: a drain's last handshakes complete, take them at once */
	if (io->fd >= 0 && (!l->proxy->draining || l->proxy->settling) && !l->proxy->holding)
		accept_all(l->proxy, l);
}

static void listener_close(struct proxy *p, struct listener *l)
{
	if (l->io.fd >= 0) {
		loop_del(p->loop, &l->io);
		close(l->io.fd);
		l->io.fd = -1;
	}
	free(l->addr.text);
	l->addr.text = NULL;
}

/* Open the listeners of cfg, reusing the already open ones with the same
 * address.  On success the old array is replaced; on failure nothing
 * changes and the cause is logged. */
static int listeners_apply(struct proxy *p, const struct config *cfg)
{
	struct listener *nl = calloc(cfg->nlisten, sizeof(*nl));
	size_t i, j;
	int rc = 0;

	if (!nl)
		return -ENOMEM;
	for (i = 0; i < cfg->nlisten; i++) {
		nl[i].io.fd = -1;
		nl[i].proxy = p;
		nl[i].addr = cfg->listen[i];
		nl[i].addr.text = strdup(cfg->listen[i].text);
		if (!nl[i].addr.text) {
			rc = -ENOMEM;
			goto fail;
		}
		for (j = 0; j < p->nlisteners; j++) {
			if (p->listeners[j].io.fd >= 0 && !strcmp(p->listeners[j].addr.text, cfg->listen[i].text)) {
				nl[i].io.fd = p->listeners[j].io.fd; /* carried over below */
				break;
			}
		}
		if (nl[i].io.fd >= 0)
			continue;
		rc = listen_socket(p, &cfg->listen[i], 4096);
		if (rc < 0) {
			log_error("cannot listen on %s: %s%s", cfg->listen[i].text, strerror(-rc),
				  rc == -EADDRINUSE ? " (another cutover daemon, or another program, listens there)" : "");
			goto fail;
		}
		nl[i].io.fd = rc;
		nl[i].fresh = true;
		rc = 0;
	}
	/* commit: register the new ones, drop the old ones not carried over */
	for (j = 0; j < p->nlisteners; j++) {
		bool kept = false;
		for (i = 0; i < cfg->nlisten; i++)
			kept |= nl[i].io.fd == p->listeners[j].io.fd;
		if (kept) {
			loop_del(p->loop, &p->listeners[j].io);
			p->listeners[j].io.fd = -1;
		}
		listener_close(p, &p->listeners[j]);
	}
	free(p->listeners);
	p->listeners = nl;
	p->nlisteners = cfg->nlisten;
	for (i = 0; i < cfg->nlisten; i++) {
		loop_add(p->loop, &nl[i].io, nl[i].io.fd, EPOLLIN | EPOLLET, listener_on_event);
		if (!nl[i].fresh && !p->holding)
			accept_all(p, &nl[i]); /* connections queued while it was unregistered */
		nl[i].fresh = false;
	}
	return 0;
fail:
	for (i = 0; i < cfg->nlisten; i++) {
		if (nl[i].fresh && nl[i].io.fd >= 0)
			close(nl[i].io.fd);
		free(nl[i].addr.text);
	}
	free(nl);
	return rc;
}

/* ------------------------------------------------------------------ */
/* iteration end: deferred frees, pending pumps, drain completion      */

bool proxy_iteration_end(struct proxy *p)
{
	struct list_head *pos, *tmp, batch;

	/* clients with work left from a bounded pump */
	list_init(&batch);
	while (!list_empty(&p->pending)) {
		pos = p->pending.next;
		list_del(pos);
		list_add_tail(&batch, pos);
	}
	while (!list_empty(&batch)) {
		struct client *c = container_of(batch.next, struct client, pending_node);
		list_del(&c->pending_node);
		client_pump(c);
	}
	list_for_each_safe(pos, tmp, &p->closed_clients)
		client_free(container_of(pos, struct client, node));
	list_for_each_safe(pos, tmp, &p->closed_upstreams)
		upstream_free(container_of(pos, struct upstream, closed_node));
	if (p->accept_paused && p->nclients < p->cfg->limits.max_connections && !p->draining && !p->holding) {
		p->accept_paused = false;
		for (size_t i = 0; i < p->nlisteners; i++)
			accept_all(p, &p->listeners[i]);
	}
	if (p->draining && !p->drained && !p->settling && list_empty(&p->clients)) {
		log_info("drained: all connections closed");
		p->drained = true;
	}
	return p->drained;
}

/* ------------------------------------------------------------------ */
/* holding and draining                                                */

void proxy_hold(struct proxy *p, bool hold)
{
	if (p->holding == hold)
		return;
	p->holding = hold;
	if (hold || p->draining)
		return;
	/* what waited in the accept queue meanwhile */
	for (size_t i = 0; i < p->nlisteners; i++)
		if (p->listeners[i].io.fd >= 0)
			accept_all(p, &p->listeners[i]);
}

static void drain_timer_fired(struct loop *loop, struct loop_timer *timer)
{
	struct proxy *p = container_of(timer, struct proxy, drain_timer);
	struct list_head *pos, *tmp;
	size_t n = 0;

	list_for_each_safe(pos, tmp, &p->clients) {
		struct client *c = container_of(pos, struct client, node);
		if (c->ex)
			c->ex->error = "drain timeout";
		client_free_later(c);
		n++;
	}
	log_warn("drain timeout: closed %zu connections still busy", n);
}

/* How long a listener this process closes for good drops new connection
 * attempts before it closes: long enough for the handshakes already in
 * flight (a SYN answered, its ACK still travelling: about a round trip) to
 * complete into the accept queue, where the close finds them accepted. */
#define DRAIN_SYN_SETTLE_MS 50

/* From now on drop a bare SYN (a new connection attempt) on the listening
 * socket fd; the ACKs that complete handshakes in flight still pass.  The
 * clients whose SYN is dropped send it again a second later, to whoever
 * listens then.  A classic BPF socket filter: a TCP socket's filter sees the
 * segment from its TCP header on, byte 13 holds the flags. */
static void listener_drop_syns(int fd)
{
	static struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 13),
		BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x12),           /* SYN | ACK */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x02, 0, 1),    /* SYN alone */
		BPF_STMT(BPF_RET | BPF_K, 0),
		BPF_STMT(BPF_RET | BPF_K, 0xffffffff),
	};
	struct sock_fprog prog = { .len = ARRAY_SIZE(code), .filter = code };

	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0)
		log_debug("SO_ATTACH_FILTER on a listener: %s", strerror(errno));
}

/* Close the listeners for the drain.  Connections the kernel completed but
 * nobody accepted yet would be reset by the close: take them first, they
 * get their answer with "Connection: close".  The SYN filter goes before
 * the close: a socket this process thought its own may live on elsewhere
 * (systemd's, handed over by the daemon before us), and the next daemon
 * must not inherit a socket that drops every new connection. */
static void listeners_close_for_drain(struct proxy *p)
{
	int none = 0;

	for (size_t i = 0; i < p->nlisteners; i++) {
		if (p->listeners[i].io.fd < 0)
			continue;
		if (p->settling)
			setsockopt(p->listeners[i].io.fd, SOL_SOCKET, SO_DETACH_FILTER, &none, sizeof(none));
		if (!p->holding)
			accept_all(p, &p->listeners[i]);
		loop_del(p->loop, &p->listeners[i].io);
		close(p->listeners[i].io.fd);
		p->listeners[i].io.fd = -1;
	}
	p->settling = false;
}

static void settle_timer_fired(struct loop *loop, struct loop_timer *timer)
{
	listeners_close_for_drain(container_of(timer, struct proxy, settle_timer));
}

void proxy_drain(struct proxy *p, bool handed_over)
{
	struct list_head *pos, *tmp;
	size_t open = 0;

	if (p->draining)
		return;
	p->draining = true;
	for (size_t i = 0; i < p->nlisteners; i++)
		open += p->listeners[i].io.fd >= 0;
	if (open && !handed_over) {
		/* our close is the socket's last: handshakes in flight at that
		 * instant would be reset.  Let them complete first. */
		for (size_t i = 0; i < p->nlisteners; i++)
			if (p->listeners[i].io.fd >= 0)
				listener_drop_syns(p->listeners[i].io.fd);
		p->settling = true;
		loop_timer_set(p->loop, &p->settle_timer, p->loop->now_ms + DRAIN_SYN_SETTLE_MS, settle_timer_fired);
	} else {
		listeners_close_for_drain(p);
	}
	for (size_t i = 0; i < p->ntargets; i++)
		target_close_idle(p->targets[i]);
	if (p->settling)
		log_info("draining: stopped accepting, %zu connections open; new connections are dropped for %d ms "
			 "before the listeners close (none in a handshake is reset)", p->nclients, DRAIN_SYN_SETTLE_MS);
	else
		log_info("draining: stopped accepting, %zu connections open", p->nclients);
	list_for_each_safe(pos, tmp, &p->clients)
		client_drain(container_of(pos, struct client, node));
	loop_timer_set(p->loop, &p->drain_timer, p->loop->now_ms + p->cfg->timeouts.drain, drain_timer_fired);
}

/* ------------------------------------------------------------------ */
/* configuration                                                       */

int proxy_apply(struct proxy *p, const struct config *cfg)
{
	struct accesslog *al = NULL;
	int rc;

	if (cfg->log.access) {
		rc = accesslog_open(cfg->log.access, cfg->log.access_format, &al);
		if (rc < 0) {
			log_error("cannot open the access log %s: %s", cfg->log.access, strerror(-rc));
			return rc;
		}
	}
	rc = listeners_apply(p, cfg);
	if (rc < 0) {
		log_error("the listeners could not be opened");
		goto fail;
	}
	rc = proxy_routes_apply(p, cfg);
	if (rc < 0) {
		log_error("out of memory building the routing table");
		goto fail;
	}
	p->cfg = cfg;
	p->buf_size = buf_size_for(cfg);
	if (p->accesslog) {
		accesslog_flush(p->accesslog);
		accesslog_close(p->accesslog);
	}
	p->accesslog = al;
	return 0;
fail:
	accesslog_close(al);
	return rc;
}

static bool metrics_in_use(const struct metrics_upstream *u, void *data)
{
	const struct proxy *p = data;

	for (size_t i = 0; i < p->ntargets; i++)
		if (p->targets[i]->metrics == u)
			return true;
	return false;
}

static void flush_timer_fired(struct loop *loop, struct loop_timer *timer)
{
	struct proxy *p = container_of(timer, struct proxy, flush_timer);

	if (p->accesslog)
		accesslog_flush(p->accesslog);
	for (size_t i = 0; i < p->ntargets; i++)
		upstream_expire_idle(p->targets[i], loop->now_ms, p->cfg->timeouts.upstream_idle);
	/* the series of stopped instances, once no target (pool, request in
	 * flight) points to them: every deploy adds ports, this keeps the
	 * exposition to the instances that exist */
	metrics_sweep(&p->metrics, metrics_in_use, p);
	/* After a burst (thousands of connections busy at once, then idle),
	 * glibc keeps the freed buffers' pages resident: give them back. */
	if (p->bufs_freed >= 64) {
		p->bufs_freed = 0;
		malloc_trim(0);
	}
	loop_timer_set(loop, timer, loop->now_ms + 1000, flush_timer_fired);
}

int proxy_start(struct proxy *p, struct loop *loop, const struct config *cfg, struct inherited *inherited,
		bool hold)
{
	int rc;

	memset(p, 0, sizeof(*p));
	p->loop = loop;
	p->inherited = inherited;
	p->holding = hold;
	list_init(&p->clients);
	list_init(&p->closed_clients);
	list_init(&p->closed_upstreams);
	list_init(&p->pending);
	metrics_init(&p->metrics);
	p->free_bufs = calloc(FREE_BUFS_MAX, sizeof(void *));
	if (getrandom(&p->id_prefix, sizeof(p->id_prefix), 0) != sizeof(p->id_prefix))
		p->id_prefix = (uint32_t)getpid();
	cohort_deck_init(&p->deck, cohort_seed());
	if (!p->free_bufs) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = proxy_apply(p, cfg);
	p->inherited = NULL; /* a reload binds what it needs */
	if (rc < 0)
		goto fail;
	loop_timer_set(loop, &p->flush_timer, loop->now_ms + 1000, flush_timer_fired);
	for (size_t i = 0; i < p->nlisteners; i++)
		log_info("listening on %s", p->listeners[i].addr.text);
	return 0;
fail:
	proxy_release(p);
	return rc;
}

void proxy_release(struct proxy *p)
{
	struct list_head *pos, *tmp;

	list_for_each_safe(pos, tmp, &p->clients)
		client_free_later(container_of(pos, struct client, node));
	for (size_t i = 0; i < p->nlisteners; i++)
		listener_close(p, &p->listeners[i]);
	free(p->listeners);
	p->listeners = NULL;
	p->nlisteners = 0;
	p->routes = route_table_unref(p->routes);
	proxy_maintenance_release(p);
	for (size_t i = 0; i < p->ntargets; i++)
		target_close_idle(p->targets[i]);
	list_for_each_safe(pos, tmp, &p->closed_clients)
		client_free(container_of(pos, struct client, node));
	list_for_each_safe(pos, tmp, &p->closed_upstreams)
		upstream_free(container_of(pos, struct upstream, closed_node));
	if (p->loop) {
		loop_timer_cancel(p->loop, &p->drain_timer);
		loop_timer_cancel(p->loop, &p->settle_timer);
		loop_timer_cancel(p->loop, &p->flush_timer);
	}
	if (p->accesslog) {
		accesslog_flush(p->accesslog);
		p->accesslog = accesslog_close(p->accesslog);
	}
	while (p->free_exchanges) {
		struct exchange *ex = p->free_exchanges;
		p->free_exchanges = (struct exchange *)ex->client;
		free(ex);
	}
	for (size_t i = 0; i < p->nfree_bufs; i++)
		free(p->free_bufs[i]);
	free(p->free_bufs);
	p->free_bufs = NULL;
	free(p->targets);
	p->targets = NULL;
	metrics_release(&p->metrics);
	p->cfg = NULL;
}

/* proxy.c - the proxy's lifetime: listeners, signals, reload and drain.
 *
 * SIGHUP builds a complete new configuration and routing snapshot, checks
 * that every new listener can be opened, and only then swaps them in; on
 * any error the old configuration stays in force and the reason is logged.
 * SIGTERM/SIGINT stop accepting, close idle keep-alive connections, let
 * in-flight requests finish for up to timeouts.drain, then stop the loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include "admin/admin.h"
#include "base/buf.h"
#include "base/list.h"
#include "base/log.h"
#include "base/util.h"
#include "config/config.h"
#include "loop/loop.h"
#include "metrics/metrics.h"
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

static int listen_socket(const struct config_addr *a, int backlog)
{
	int fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1, err;

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* SO_REUSEPORT: N worker processes or threads can share the port later */
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
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

	if (io->fd >= 0 && !l->proxy->draining)
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
		rc = listen_socket(&cfg->listen[i], 4096);
		if (rc < 0) {
			log_error("cannot listen on %s: %s", cfg->listen[i].text, strerror(-rc));
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
		if (!nl[i].fresh)
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

static void proxy_iteration_end(struct loop *loop, void *data)
{
	struct proxy *p = data;
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
	admin_reap(p);
	if (p->accept_paused && p->nclients < p->cfg->limits.max_connections && !p->draining) {
		p->accept_paused = false;
		for (size_t i = 0; i < p->nlisteners; i++)
			accept_all(p, &p->listeners[i]);
	}
	if (p->draining && list_empty(&p->clients)) {
		log_info("drained: all connections closed");
		loop->stop = true;
	}
}

/* ------------------------------------------------------------------ */
/* signals                                                             */

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
	loop->stop = true;
}

void proxy_drain(struct proxy *p)
{
	struct list_head *pos, *tmp;

	if (p->draining)
		return;
	p->draining = true;
	log_info("draining: stopped accepting, %zu connections open", p->nclients);
	for (size_t i = 0; i < p->nlisteners; i++) {
		if (p->listeners[i].io.fd >= 0) {
			loop_del(p->loop, &p->listeners[i].io);
			close(p->listeners[i].io.fd);
			p->listeners[i].io.fd = -1;
		}
	}
	for (size_t i = 0; i < p->ntargets; i++)
		target_close_idle(p->targets[i]);
	list_for_each_safe(pos, tmp, &p->clients)
		client_drain(container_of(pos, struct client, node));
	loop_timer_set(p->loop, &p->drain_timer, p->loop->now_ms + p->cfg->timeouts.drain, drain_timer_fired);
}

int proxy_reload(struct proxy *p, const char *path)
{
	struct config *cfg = NULL;
	struct config_error err;
	struct runtime *rt;
	struct accesslog *al = NULL;
	int rc;

	rc = config_load(path, &cfg, &err);
	if (rc < 0) {
		log_error("reload failed, keeping the running configuration: %s", err.message);
		p->metrics.config_reload_failures++;
		return rc;
	}
	if ((cfg->state_dir || p->cfg->state_dir) &&
	    (!cfg->state_dir || !p->cfg->state_dir || strcmp(cfg->state_dir, p->cfg->state_dir))) {
		/* the SQLite state, releases and instance logs live there */
		log_error("reload failed, keeping the running configuration: state_dir cannot change on reload "
			  "(%s -> %s); restart the daemon to move it",
			  p->cfg->state_dir ? p->cfg->state_dir : "(none)", cfg->state_dir ? cfg->state_dir : "(none)");
		rc = -EINVAL;
		goto fail;
	}
	if (cfg->log.access) {
		rc = accesslog_open(cfg->log.access, cfg->log.access_format, &al);
		if (rc < 0) {
			log_error("reload failed, keeping the running configuration: cannot open access log %s: %s",
				  cfg->log.access, strerror(-rc));
			goto fail;
		}
	}
	rc = listeners_apply(p, cfg);
	if (rc < 0) {
		log_error("reload failed, keeping the running configuration: listeners could not be opened");
		goto fail;
	}
	rt = runtime_build(p, cfg);
	if (!rt) {
		rc = -ENOMEM;
		log_error("reload failed: out of memory");
		goto fail;
	}
	runtime_unref(p->runtime);
	p->runtime = rt;
	config_free(p->cfg);
	p->cfg = cfg;
	p->buf_size = buf_size_for(cfg);
	if (p->accesslog)
		accesslog_close(p->accesslog);
	p->accesslog = al;
	log_open(cfg->log.error);
	log_set_level(cfg->log.level);
	admin_apply(p);
	p->metrics.config_reloads++;
	/* not `path`: on SIGHUP it pointed into the configuration just freed */
	log_info("configuration reloaded from %s: %zu services, %zu routes", cfg->path, cfg->nservices,
		 cfg->nroutes);
	return 0;
fail:
	accesslog_close(al);
	config_free(cfg);
	p->metrics.config_reload_failures++;
	return rc;
}

static void signal_on_event(struct loop *loop, struct loop_io *io, uint32_t events)
{
	struct proxy *p = container_of(io, struct proxy, signal_io);
	struct signalfd_siginfo si;

	while (read(io->fd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			log_info("received %s", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
			proxy_drain(p);
			break;
		case SIGHUP:
			if (p->cfg->path)
				proxy_reload(p, p->cfg->path);
			else
				log_warn("SIGHUP ignored: running without a configuration file");
			break;
		}
	}
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

int proxy_start(struct proxy *p, struct loop *loop, struct config *cfg)
{
	sigset_t mask;
	int rc, fd;

	memset(p, 0, sizeof(*p));
	p->loop = loop;
	p->cfg = cfg;
	p->admin.io.fd = -1;
	p->admin_unix.io.fd = -1;
	list_init(&p->clients);
	list_init(&p->closed_clients);
	list_init(&p->closed_upstreams);
	list_init(&p->admin_conns);
	list_init(&p->pending);
	metrics_init(&p->metrics);
	p->buf_size = buf_size_for(cfg);
	p->free_bufs = calloc(FREE_BUFS_MAX, sizeof(void *));
	if (getrandom(&p->id_prefix, sizeof(p->id_prefix), 0) != sizeof(p->id_prefix))
		p->id_prefix = (uint32_t)getpid();
	if (!p->free_bufs) {
		rc = -ENOMEM;
		goto fail;
	}
	if (cfg->log.access) {
		rc = accesslog_open(cfg->log.access, cfg->log.access_format, &p->accesslog);
		if (rc < 0) {
			log_error("cannot open access log %s: %s", cfg->log.access, strerror(-rc));
			goto fail;
		}
	}
	p->runtime = runtime_build(p, cfg);
	if (!p->runtime) {
		rc = -ENOMEM;
		goto fail;
	}
	/* admin first: once the public port answers, /metrics and the admin
	 * socket do too (and a second daemon on the same socket stops here) */
	rc = admin_apply(p);
	if (rc < 0)
		goto fail;
	rc = listeners_apply(p, cfg);
	if (rc < 0)
		goto fail;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0 || loop_add(loop, &p->signal_io, fd, EPOLLIN, signal_on_event) < 0) {
		rc = -errno;
		goto fail;
	}
	loop->on_iteration_end = proxy_iteration_end;
	loop->data = p;
	loop_timer_set(loop, &p->flush_timer, loop->now_ms + 1000, flush_timer_fired);
	for (size_t i = 0; i < p->nlisteners; i++)
		log_info("listening on %s", p->listeners[i].addr.text);
	return 0;
fail:
	p->cfg = NULL; /* not taken */
	proxy_release(p);
	return rc;
}

void proxy_release(struct proxy *p)
{
	struct list_head *pos, *tmp;

	list_for_each_safe(pos, tmp, &p->clients)
		client_free_later(container_of(pos, struct client, node));
	admin_close(p);
	for (size_t i = 0; i < p->nlisteners; i++)
		listener_close(p, &p->listeners[i]);
	free(p->listeners);
	p->listeners = NULL;
	p->nlisteners = 0;
	runtime_unref(p->runtime);
	p->runtime = NULL;
	for (size_t i = 0; i < p->ntargets; i++)
		target_close_idle(p->targets[i]);
	list_for_each_safe(pos, tmp, &p->closed_clients)
		client_free(container_of(pos, struct client, node));
	list_for_each_safe(pos, tmp, &p->closed_upstreams)
		upstream_free(container_of(pos, struct upstream, closed_node));
	if (p->signal_io.fd > 0) {
		close(p->signal_io.fd);
		p->signal_io.fd = -1;
	}
	if (p->loop) {
		loop_timer_cancel(p->loop, &p->drain_timer);
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
	config_free(p->cfg);
	p->cfg = NULL;
}

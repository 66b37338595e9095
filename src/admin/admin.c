/* admin.c - the admin listeners and their connections (contract in
 * admin.h).
 *
 * One request per connection, answered then closed, except GET /v1/events,
 * which turns its connection into an event stream (events.c).  The metrics
 * text is rendered only here, never on the proxy's hot path.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/un.h>
#include "admin/admin-internal.h"
#include "base/util.h"
#include "admin/admin.h"
#include "admin/api.h"
#include "base/buf.h"
#include "base/list.h"
#include "base/log.h"
#include "deploy/deploy.h"
#include "http/parser.h"
#include "loop/inherit.h"
#include "loop/loop.h"
#include "metrics/metrics.h"
#include "proxy/proxy.h"
#include "notify/notify.h"
#include "secrets/redact.h"
#include "proxy/proxy-t.h"


void admin_conn_close(struct admin_conn *a)
{
	if (a->closed)
		return;
	a->closed = true;
	loop_timer_cancel(a->admin->loop, &a->timer);
	if (a->stream)
		list_del(&a->stream_node);
	if (a->io.fd >= 0) {
		/* out of epoll first: a child forked a moment ago may still hold
		 * a copy of the socket until it execs, and close() alone would
		 * leave it registered, with events for a connection freed at the
		 * end of this iteration */
		loop_del(a->admin->loop, &a->io);
		close(a->io.fd);
		a->io.fd = -1;
	}
}

int admin_conn_queue(struct admin_conn *a, const char *data, size_t len)
{
	if (a->out_off == a->out_len)
		a->out_off = a->out_len = 0;
	if (a->out_len + len > a->out_cap) {
		size_t cap = a->out_cap ? a->out_cap : 4096;
		char *n;
		while (cap < a->out_len + len)
			cap *= 2;
		if (a->stream && cap > ADMIN_STREAM_MAX)
			return -ENOBUFS; /* a reader that stopped reading */
		n = realloc(a->out, cap);
		if (!n)
			return -ENOMEM;
		a->out = n;
		a->out_cap = cap;
	}
	memcpy(a->out + a->out_len, data, len);
	a->out_len += len;
	return 0;
}

void admin_conn_flush(struct admin_conn *a)
{
	while (!a->closed && a->out_off < a->out_len) {
		ssize_t n = send(a->io.fd, a->out + a->out_off, a->out_len - a->out_off, MSG_NOSIGNAL);
		if (n > 0) {
			a->out_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EAGAIN)
			return;
		admin_conn_close(a);
	}
	if (!a->closed && !a->stream && !a->waiting && a->answered && a->out_off == a->out_len) {
		shutdown(a->io.fd, SHUT_WR);
		admin_conn_close(a);
	}
}

/* Every answer of the admin listeners (status, deployments, /metrics, the
 * API's errors) goes out here, with secret values hidden
 * (secrets/redact.h): whatever put one in the text (an instance's reply
 * quoted in a reason, a version string), nobody reads it here.  Only the
 * embedded files of the status page skip that (ADMIN_REPLY_STATIC). */
void admin_conn_respond(struct admin_conn *a, int status, const char *ctype, const char *headers, const char *body,
			size_t len, unsigned flags)
{
	char head[1024], *hidden = NULL;
	size_t hlen;
	int n;

	if (!(flags & ADMIN_REPLY_STATIC) && redact_global_text(body, len, &hidden, &hlen) == 1) {
		body = hidden;
		len = hlen;
	}
	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nCache-Control: %s\r\n"
		     "X-Content-Type-Options: nosniff\r\n%sConnection: close\r\n\r\n",
		     status, http_status_reason(status), ctype, len,
		     flags & ADMIN_REPLY_STATIC ? "no-cache" : "no-store", headers ? headers : "");
	a->answered = true;
	if (n < 0 || (size_t)n >= sizeof(head) || admin_conn_queue(a, head, (size_t)n) < 0 ||
	    (!a->head_only && status != 304 && admin_conn_queue(a, body, len) < 0))
		admin_conn_close(a);
	free(hidden);
}

void admin_conn_respond_json(struct admin_conn *a, int status, json_t *obj)
{
	struct admin_reply reply;
	size_t n;

	api_reply_json(&reply, status, obj);
	n = strlen(reply.body);
	reply.body[n] = '\n'; /* replaces the NUL: the length is explicit */
	admin_conn_respond(a, reply.status, "application/json", NULL, reply.body, n + 1, 0);
	free(reply.body);
}

static void admin_respond(struct admin_conn *a, int status, const char *ctype, const char *body, size_t len)
{
	admin_conn_respond(a, status, ctype, NULL, body, len, 0);
}

/* Append MORE (MLEN bytes, NUL-terminated; freed here) to *text (*len
 * bytes): *text stays as it was if MORE is NULL or the memory runs out. */
static void metrics_append(char **text, size_t *len, char *more, size_t mlen)
{
	char *all = more ? realloc(*text, *len + mlen + 1) : NULL;

	if (all) {
		memcpy(all + *len, more, mlen + 1);
		*len += mlen;
		*text = all;
	}
	free(more);
}

/* GET /metrics: the proxy's series, then the deploy engine's, the
 * webhooks', and the daemon's own (disks, build, alert limits). */
static void admin_metrics(struct admin_conn *a)
{
	struct admin *adm = a->admin;
	size_t len, more_len = 0;
	char *text = proxy_metrics_render(adm->proxy, &len), *more; /* the proxy's families, maintenance too */

	if (text && adm->deployer) {
		more = deployer_metrics(adm->deployer, &more_len);
		metrics_append(&text, &len, more, more_len);
	}
	if (text && adm->notifier) {
		more = notifier_metrics(adm->notifier, &more_len);
		metrics_append(&text, &len, more, more_len);
	}
	if (text && adm->hooks.metrics) {
		more = adm->hooks.metrics(adm->hooks.data, &more_len);
		metrics_append(&text, &len, more, more_len);
	}
	if (text)
		admin_respond(a, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
	else
		admin_respond(a, 500, "text/plain", "out of memory\n", 14);
	free(text);
}

/* A request for the JSON API (api.c) as METHOD: every request on the Unix
 * socket that is not answered here, and GET /v1/status and /v1/events on
 * the TCP listener. */
static void admin_api_call(struct admin_conn *a, const char *method, const char *base, const struct http_request *req,
			   int head_len)
{
	struct admin_reply reply;
	struct api_call call = {
		.peer_uid = a->peer_uid,
		.method = method,
		.path = base + req->target.off,
		.path_len = req->target.len,
		.body = base + head_len,
		.body_len = (size_t)req->content_length,
	};

	admin_api_handle(a->admin, &call, &reply);
	if (reply.stream && a->head_only) {
		admin_respond(a, 200, "text/event-stream", "", 0);
	} else if (reply.stream) {
		a->answered = true;
		admin_stream_start(a);
	} else if (reply.body) {
		size_t n = strlen(reply.body);
		reply.body[n] = '\n'; /* replaces the NUL: the length is explicit */
		admin_respond(a, reply.status, "application/json", reply.body, n + 1);
	} else {
		admin_conn_close(a);
	}
	free(reply.body);
}

/* Answer a complete request: the TCP listener is read-only (GET and
 * HEAD) and may want the token; the Unix socket is the whole API. */
static void admin_route(struct admin_conn *a, const char *base, const struct http_request *req, int head_len)
{
	const char *path = base + req->target.off, *mark = memchr(path, '?', req->target.len);
	size_t plen = mark ? (size_t)(mark - path) : req->target.len;
	bool get = req->method_id == HTTP_METHOD_GET || req->method_id == HTTP_METHOD_HEAD;
	char method[16], query[2048];
	size_t mlen = req->method.len < sizeof(method) - 1 ? req->method.len : sizeof(method) - 1;
	size_t qlen = mark ? req->target.len - plen - 1 : 0;

	memcpy(method, base + req->method.off, mlen);
	method[mlen] = 0;
	if (qlen >= sizeof(query))
		qlen = sizeof(query) - 1; /* cannot happen: targets are at most 2048 bytes */
	memcpy(query, mark ? mark + 1 : "", qlen);
	query[qlen] = 0;
	a->head_only = req->method_id == HTTP_METHOD_HEAD;
#define PATH_IS(lit) (plen == sizeof(lit) - 1 && !memcmp(path, lit, plen))
	if (!a->api && !admin_web_allowed(a, base, req, path, plen, query))
		return;
	if (!a->api && !get) {
		/* changes go through the Unix socket only: whoever reaches this
		 * address may look, never act */
		static const char msg[] = "read-only: this address answers GET and HEAD; changes go through the "
					  "admin socket (the cutover CLI)\n";
		admin_conn_respond(a, 405, "text/plain", "Allow: GET, HEAD\r\n", msg, sizeof(msg) - 1, 0);
	} else if (PATH_IS("/metrics") || PATH_IS("/healthz")) {
		if (!get)
			admin_respond(a, 405, "text/plain", "only GET\n", 9);
		else if (PATH_IS("/metrics"))
			admin_metrics(a);
		else if (a->admin->proxy->draining)
			admin_respond(a, 503, "text/plain", "draining\n", 9);
		else
			admin_respond(a, 200, "text/plain", "ok\n", 3);
	} else if (get && admin_status_route(a, path, plen, query)) {
		/* answered, now or by the state worker */
	} else if (a->api) {
		admin_api_call(a, method, base, req, head_len);
	} else if (admin_web_route(a, base, req, path, plen)) {
		/* a file of the status page */
	} else if (PATH_IS("/v1/status") || PATH_IS("/v1/events")) {
		admin_api_call(a, "GET", base, req, head_len);
	} else {
		static const char msg[] = "not found: this address serves /, /static/*, /v1/status, /v1/events, "
					  "/v1/history, /v1/uptime, /v1/deployments, /metrics and /healthz\n";
		admin_respond(a, 404, "text/plain", msg, sizeof(msg) - 1);
	}
#undef PATH_IS
}

static void admin_handle(struct admin_conn *a)
{
	struct http_limits lim = { .max_head_bytes = ADMIN_IN - 1, .max_target_bytes = 2048 };
	struct http_request *req = malloc(sizeof(*req));
	struct http_error err;
	const char *base = buf_start(&a->in);
	int rc;

	if (!req) {
		admin_conn_close(a);
		return;
	}
	rc = http_request_parse(base, buf_len(&a->in), &lim, req, &err);
	if (rc == 0) {
		free(req);
		return;
	}
	if (rc > 0 && req->framing == HTTP_FRAMING_CHUNKED) {
		static const char msg[] = "{\"error\": \"send the body with Content-Length\"}\n";
		admin_respond(a, 411, "application/json", msg, sizeof(msg) - 1);
		free(req);
		return;
	}
	if (rc > 0 && req->framing == HTTP_FRAMING_LENGTH && buf_len(&a->in) < (size_t)rc + req->content_length) {
		free(req);
		return; /* the body is still arriving (bounded by the buffer) */
	}
	if (rc < 0) {
		char msg[160];
		int n = snprintf(msg, sizeof(msg), "%s\n", err.reason);
		admin_respond(a, err.status, "text/plain", msg, (size_t)n);
	} else {
		admin_route(a, base, req, rc);
	}
	free(req);
}

static void admin_conn_on_event(struct loop *loop, struct loop_io *io, uint32_t events)
{
	struct admin_conn *a = container_of(io, struct admin_conn, io);
	char sink[512];

	if (a->closed)
		return;
	while (a->stream) {
		/* a stream reads nothing more: only its end */
		ssize_t n = read(a->io.fd, sink, sizeof(sink));
		if (n > 0)
			continue;
		if (n == 0 || errno != EAGAIN)
			admin_conn_close(a);
		break;
	}
	while (!a->answered && !a->closed && buf_room(&a->in)) {
		ssize_t n = read(a->io.fd, buf_end(&a->in), buf_room(&a->in));
		if (n > 0) {
			a->in.tail += (size_t)n;
			admin_handle(a);
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != ECONNRESET)
			log_warn("admin connection (fd %d): read failed: %s", a->io.fd, strerror(errno));
		if (n == 0 || errno != EAGAIN)
			admin_conn_close(a);
		break;
	}
	if (!a->closed && !a->answered && !buf_room(&a->in))
		admin_respond(a, 431, "text/plain", "request too large\n", 18);
	if (!a->closed)
		admin_conn_flush(a);
}

static void admin_conn_timeout(struct loop *loop, struct loop_timer *timer)
{
	admin_conn_close(container_of(timer, struct admin_conn, timer));
}

static void admin_on_accept(struct loop *loop, struct loop_io *io, uint32_t events)
{
	struct admin_listener *l = container_of(io, struct admin_listener, io);
	struct admin *adm = l->admin;

	for (;;) {
		int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct admin_conn *a;

		if (fd < 0)
			return;
		a = calloc(1, sizeof(*a));
		if (!a || buf_init(&a->in, l->api ? ADMIN_API_IN : ADMIN_IN) < 0) {
			free(a);
			close(fd);
			continue;
		}
		a->admin = adm;
		a->api = l->api;
		if (l->api) {
			struct ucred cred;
			socklen_t len = sizeof(cred);
			/* the kernel's word for who is at the other end; unknown is
			 * recorded as the daemon's own user (the socket is 0600) */
			a->peer_uid = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 ? cred.uid : getuid();
		}
		list_add_tail(&adm->conns, &a->node);
		if (loop_add(loop, &a->io, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, admin_conn_on_event) < 0) {
			close(fd);
			a->io.fd = -1;
			a->closed = true;
			continue;
		}
		loop_timer_set(loop, &a->timer, loop->now_ms + 10000, admin_conn_timeout);
	}
}

/* Open the Unix-socket API at path: its directory is created 0700 if
 * missing, a live daemon already answering there is an error (two daemons
 * must never share a state directory), a stale socket file is replaced, and
 * the socket is made 0600.  Returns the listening fd or -errno (logged). */
static int unix_listen(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char dir[sizeof(sun.sun_path)];
	char *slash;
	int fd, err;
	mode_t old;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_error("admin socket path too long (max %zu bytes): %s", sizeof(sun.sun_path) - 1, path);
		return -ENAMETOOLONG;
	}
	strcpy(sun.sun_path, path);
	strcpy(dir, path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		err = make_dirs(dir, 0700);   /* its parents too (a state_dir under a new directory) */
		if (err < 0) {
			log_error("cannot create the directory of the admin socket %s: %s", dir, strerror(-err));
			return err;
		}
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		close(fd);
		log_error("another cutover daemon is already running on %s", path);
		return -EADDRINUSE;
	}
	close(fd);
	unlink(path); /* stale: nobody answers */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	old = umask(0177);
	err = bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ? -errno : 0;
	umask(old);
	if (!err && chmod(path, 0600) < 0)
		err = -errno;
	if (!err && listen(fd, 64) < 0)
		err = -errno;
	if (err) {
		log_error("cannot listen on the admin socket %s: %s", path, strerror(-err));
		close(fd);
		return err;
	}
	return fd;
}

static void listener_close(struct admin *a, struct admin_listener *l)
{
	if (l->io.fd >= 0) {
		loop_del(a->loop, &l->io);
		close(l->io.fd);
		l->io.fd = -1;
		/* not when it was handed on: the next daemon listens on it */
		if (l->api && l->text && !a->keep_socket_file)
			unlink(l->text);
	}
	free(l->text);
	l->text = NULL;
}

static int admin_unix_apply(struct admin *a, const char *want)
{
	struct admin_listener *l = &a->unix_api;
	int fd = -1;

	if (l->io.fd >= 0 && want && l->text && !strcmp(want, l->text))
		return 0;
	if (want) {
		fd = inherited_take_unix(a->inherited, want);
		if (fd >= 0)
			log_info("admin API on %s: socket from %s", want, a->inherited->from);
		else
			fd = unix_listen(want);
		if (fd < 0)
			return fd;
	}
	listener_close(a, l);
	if (!want)
		return 0;
	l->text = strdup(want);
	loop_add(a->loop, &l->io, fd, EPOLLIN | EPOLLET, admin_on_accept);
	log_info("admin API on %s (mode 0600)", want);
	return 0;
}

static int admin_tcp_apply(struct admin *a, const struct config_addr *want)
{
	struct admin_listener *l = &a->tcp;
	int fd, one = 1;

	if (l->io.fd >= 0 && want->text && l->text && !strcmp(want->text, l->text))
		return 0;
	if (!want->text) {
		listener_close(a, l);
		return 0;
	}
	/* the new address first: if it cannot be had, the old one stays */
	fd = inherited_take(a->inherited, (const struct sockaddr *)&want->sa, want->salen);
	if (fd >= 0)
		goto got;
	fd = socket(want->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&want->sa, want->salen) < 0 || listen(fd, 64) < 0) {
		int err = -errno;
		log_error("cannot listen on admin address %s: %s%s%s%s", want->text, strerror(-err),
			  err == -EADDRINUSE ? " (another cutover daemon, or another program, listens there)" : "",
			  l->text ? "; still on " : "", l->text ? l->text : "");
		close(fd);
		return err;
	}
got:
	listener_close(a, l);
	l->text = strdup(want->text);
	loop_add(a->loop, &l->io, fd, EPOLLIN | EPOLLET, admin_on_accept);
	log_info("admin listening on %s (status page, /metrics, /healthz; read-only%s)", want->text,
		 a->token_set ? ", admin_token required" : "");
	return 0;
}

void admin_init(struct admin *a, struct loop *loop, struct proxy *proxy, struct deployer *deployer)
{
	memset(a, 0, sizeof(*a));
	a->loop = loop;
	a->proxy = proxy;
	a->deployer = deployer;
	a->tcp.io.fd = -1;
	a->tcp.admin = a;
	a->unix_api.io.fd = -1;
	a->unix_api.admin = a;
	a->unix_api.api = true;
	list_init(&a->conns);
	list_init(&a->streams);
	admin_status_start(a);
}

int admin_apply(struct admin *a, const struct config *cfg)
{
	int rc;

	/* the configuration in force, even if a listener cannot move: the
	 * old one is freed once the daemon has swapped */
	a->cfg = cfg;
	rc = admin_unix_apply(a, cfg->admin_socket);
	if (rc < 0)
		return rc;
	return admin_tcp_apply(a, &cfg->admin);
}

void admin_reap(struct admin *a)
{
	struct list_head *pos, *tmp;

	list_for_each_safe(pos, tmp, &a->conns) {
		struct admin_conn *c = container_of(pos, struct admin_conn, node);
		if (!c->closed || c->waiting)
			continue;
		list_del(&c->node);
		buf_release(&c->in);
		free(c->out);
		free(c);
	}
}

void admin_stop_listening(struct admin *a)
{
	listener_close(a, &a->tcp);
	listener_close(a, &a->unix_api);
}

void admin_close(struct admin *a)
{
	struct list_head *pos, *tmp;

	list_for_each_safe(pos, tmp, &a->conns)
		admin_conn_close(container_of(pos, struct admin_conn, node));
	admin_reap(a);
	loop_timer_cancel(a->loop, &a->keepalive);
	admin_status_release(a);
	listener_close(a, &a->tcp);
	listener_close(a, &a->unix_api);
}

/* test_proxy.c - unit tests of the proxy's exchange: the shield (a safe
 * request that the canary failed is retried once on the stable version)
 * and the per route class counts.
 *
 * Each test runs the real proxy (proxy_start) on a real struct loop, with a
 * service whose two version groups are set by proxy_set_groups(), as the
 * deployer sets them: the stable version and the canary.  The two backends
 * are tiny HTTP servers on 127.0.0.1, registered on the same loop; each
 * answers every request according to its mode:
 *   '2' 200        '5' 503        'c' closes without answering
 *   'r' resets (SO_LINGER 0)      'x' nobody listens (connection refused)
 * and names itself in an X-Backend header (and the body of a GET).  A
 * client thread sends the requests (a connection each, blocking sockets)
 * and records what it got; the loop runs until it is done.
 *
 * Which group a request goes to first is the router's choice (weights 3:1
 * for the canary): the checks do not depend on it.  They count the requests
 * that went to the canary (its backend's count, or its failed connects) and
 * check, for each case, what the client saw for those and for the others,
 * and what was counted: the canary's failures in its own counts, the
 * shielded requests, and that none was retried twice.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "base/list.h"
#include "base/log.h"
#include "base/util.h"
#include "config/config.h"
#include "loop/loop.h"
#include "metrics/metrics.h"
#include "proxy/proxy.h"
#include "unit.h"

#define MAX_CONNS 64
#define MAX_REQUESTS 40
#define GUARD_MS 10000

/* --- the backends ---------------------------------------------------------- */

struct backend;

struct bconn {
	struct loop_io io;          /* io.fd -1: free slot */
	struct backend *be;
	char buf[4096];
	size_t len;
};

struct backend {
	const char *name;           /* "stable" or "canary" */
	char mode;
	struct loop *loop;
	struct loop_io listen_io;
	struct config_target target;
	char addr[32];
	unsigned requests;          /* complete requests read */
	struct bconn conns[MAX_CONNS];
};

static void bconn_close(struct bconn *bc, bool reset)
{
	if (reset) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };
		setsockopt(bc->io.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	loop_del(bc->be->loop, &bc->io);
	close(bc->io.fd);
	bc->io.fd = -1;
}

/* Bytes of the request at the start of bc->buf, once complete (head and
 * Content-Length body); 0 until then. */
static size_t request_size(const struct bconn *bc)
{
	const char *end = strstr(bc->buf, "\r\n\r\n"), *cl;
	size_t head, body = 0;

	if (!end)
		return 0;
	head = (size_t)(end - bc->buf) + 4;
	cl = strcasestr(bc->buf, "\r\nContent-Length:");
	if (cl && cl < end)
		body = strtoul(cl + 17, NULL, 10);
	return bc->len >= head + body ? head + body : 0;
}

/* Answer the complete request of n bytes at the start of bc->buf.  Returns
 * false when the connection was closed. */
static bool bconn_answer(struct bconn *bc, size_t n)
{
	struct backend *be = bc->be;
	bool head = !strncmp(bc->buf, "HEAD ", 5);
	char out[256];
	int len;

	be->requests++;
	memmove(bc->buf, bc->buf + n, bc->len - n);
	bc->len -= n;
	bc->buf[bc->len] = 0;
	if (be->mode == 'c' || be->mode == 'r') {
		bconn_close(bc, be->mode == 'r');
		return false;
	}
	len = snprintf(out, sizeof(out), "HTTP/1.1 %s\r\nX-Backend: %s\r\nContent-Length: %zu\r\n\r\n%s",
		       be->mode == '5' ? "503 Service Unavailable" : "200 OK", be->name, strlen(be->name),
		       head ? "" : be->name);
	assert_int_equal(write(bc->io.fd, out, (size_t)len), len); /* small: fits a loopback buffer */
	return true;
}

static void bconn_cb(struct loop *loop, struct loop_io *io, uint32_t events)
{
	struct bconn *bc = container_of(io, struct bconn, io);
	size_t n;

	(void)loop;
	(void)events;
	for (;;) {
		ssize_t r = read(io->fd, bc->buf + bc->len, sizeof(bc->buf) - 1 - bc->len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (r <= 0 || bc->len + (size_t)r >= sizeof(bc->buf) - 1) {
			bconn_close(bc, false);
			return;
		}
		bc->len += (size_t)r;
		bc->buf[bc->len] = 0;
		while ((n = request_size(bc)))
			if (!bconn_answer(bc, n))
				return;
	}
}

static void backend_accept_cb(struct loop *loop, struct loop_io *io, uint32_t events)
{
	struct backend *be = container_of(io, struct backend, listen_io);

	(void)events;
	for (;;) {
		struct bconn *bc = NULL;
		int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		for (size_t i = 0; i < MAX_CONNS && !bc; i++)
			if (be->conns[i].io.fd < 0)
				bc = &be->conns[i];
		assert_non_null(bc);
		*bc = (struct bconn){ .io.fd = -1, .be = be };
		assert_int_equal(loop_add(loop, &bc->io, fd, EPOLLIN | EPOLLRDHUP | EPOLLET, bconn_cb), 0);
	}
}

/* Listen on 127.0.0.1 (a port the kernel picks); mode 'x': the port is
 * closed again, so that connecting to it is refused. */
static void backend_start(struct backend *be, struct loop *loop, const char *name, char mode)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int fd;

	memset(be, 0, sizeof(*be));
	be->name = name;
	be->mode = mode;
	be->loop = loop;
	be->listen_io.fd = -1;
	for (size_t i = 0; i < MAX_CONNS; i++)
		be->conns[i].io.fd = -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	snprintf(be->addr, sizeof(be->addr), "127.0.0.1:%u", ntohs(sin.sin_port));
	memcpy(&be->target.addr.sa, &sin, sizeof(sin));
	be->target.addr.salen = sizeof(sin);
	be->target.addr.text = be->addr;
	be->target.weight = 1;
	if (mode == 'x') {
		close(fd);
		return;
	}
	assert_int_equal(listen(fd, 64), 0);
	assert_int_equal(loop_add(loop, &be->listen_io, fd, EPOLLIN, backend_accept_cb), 0);
}

static void backend_stop(struct backend *be)
{
	for (size_t i = 0; i < MAX_CONNS; i++)
		if (be->conns[i].io.fd >= 0)
			bconn_close(&be->conns[i], false);
	if (be->listen_io.fd >= 0) {
		loop_del(be->loop, &be->listen_io);
		close(be->listen_io.fd);
		be->listen_io.fd = -1;
	}
}

/* --- the client thread ----------------------------------------------------- */

struct request {
	const char *method;
	const char *target;
	const char *body;           /* NULL: none */
};

struct answer {
	int status;                 /* 0: no response */
	char backend[16];           /* X-Backend, "" if none (the proxy answered) */
};

struct client_run {
	int port;
	int done_fd;                /* eventfd: written once every answer is in */
	const struct request *requests;
	size_t n;
	struct answer answers[MAX_REQUESTS];
};

static void client_one(int port, const struct request *rq, struct answer *a)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				   .sin_port = htons((uint16_t)port) };
	struct timeval tv = { .tv_sec = 5 };
	char req[512], resp[4096];
	size_t len = 0;
	const char *h;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), n;

	memset(a, 0, sizeof(*a));
	if (fd < 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		goto out;
	if (rq->body)
		n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n"
			     "Content-Length: %zu\r\n\r\n%s", rq->method, rq->target, strlen(rq->body), rq->body);
	else
		n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n",
			     rq->method, rq->target);
	if (write(fd, req, (size_t)n) != n)
		goto out;
	for (;;) { /* Connection: close: the response ends with the connection */
		ssize_t r = read(fd, resp + len, sizeof(resp) - 1 - len);
		if (r <= 0)
			break;
		len += (size_t)r;
		if (len == sizeof(resp) - 1)
			break;
	}
	resp[len] = 0;
	if (sscanf(resp, "HTTP/1.1 %d", &a->status) != 1)
		a->status = 0;
	if ((h = strcasestr(resp, "\r\nX-Backend: ")))
		sscanf(h + 13, "%15[a-z]", a->backend);
out:
	close(fd);
}

static void *client_main(void *arg)
{
	struct client_run *run = arg;
	uint64_t one = 1;

	for (size_t i = 0; i < run->n; i++)
		client_one(run->port, &run->requests[i], &run->answers[i]);
	if (write(run->done_fd, &one, sizeof(one)) != sizeof(one))
		abort();
	return NULL;
}

/* --- the proxy around them ------------------------------------------------- */

struct ctx {
	struct loop loop;
	struct proxy p;
	struct config *cfg;
	struct backend stable, canary;
	struct loop_io done_io;
	struct run_guard guard;
	bool proxy_released;
	char listen[32];            /* the proxy's address */
	char log_path[64];
	int fds_before;
};

static void iteration_end(struct loop *loop, void *data)
{
	(void)loop;
	proxy_iteration_end(data);
}

static void done_cb(struct loop *loop, struct loop_io *io, uint32_t events)
{
	(void)io;
	(void)events;
	loop->stop = true;
}

/* A port free on 127.0.0.1 now (the kernel's pick; the configuration
 * wants a port). */
static unsigned free_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

/* YAML of the service shop, then its groups: the stable version 1.0.0 and
 * the canary 1.1.0, weights 1 and 3. */
static void ctx_start(struct ctx *c, char stable_mode, char canary_mode, const char *service_extra)
{
	char yaml[1024];
	struct config_error err;
	int fd;

	memset(c, 0, sizeof(*c));
	c->fds_before = count_fds();
	strcpy(c->log_path, "/tmp/cutover-test-proxy-XXXXXX");
	fd = mkstemp(c->log_path);
	assert_true(fd >= 0);
	close(fd);
	snprintf(c->listen, sizeof(c->listen), "127.0.0.1:%u", free_port());
	snprintf(yaml, sizeof(yaml),
		 "listen: %s\n"
		 "log:\n  access: %s\n  format: logfmt\n  level: error\n"
		 "services:\n  shop:\n    run: ./shop --port ${PORT}\n%s"
		 "    routes:\n      - path: /\n", c->listen, c->log_path, service_extra);
	if (config_load_string("test.yml", yaml, strlen(yaml), &c->cfg, &err) < 0)
		fail_msg("config: %s", err.message);
	log_set_level(LOG_LEVEL_ERROR);
	assert_int_equal(loop_init(&c->loop), 0);
	backend_start(&c->stable, &c->loop, "stable", stable_mode);
	backend_start(&c->canary, &c->loop, "canary", canary_mode);
	assert_int_equal(proxy_start(&c->p, &c->loop, c->cfg, NULL, false), 0);
	c->loop.on_iteration_end = iteration_end;
	c->loop.data = &c->p;
	const struct proxy_group groups[] = {
		{ .version = "1.0.0", .weight = 1, .targets = &c->stable.target, .ntargets = 1 },
		{ .version = "1.1.0", .weight = 3, .canary = true, .targets = &c->canary.target, .ntargets = 1 },
	};
	assert_int_equal(proxy_set_groups(&c->p, "shop", groups, ARRAY_SIZE(groups)), 0);
}

static int proxy_port(const struct ctx *c)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	assert_int_equal(c->p.nlisteners, 1);
	assert_int_equal(getsockname(c->p.listeners[0].io.fd, (struct sockaddr *)&sin, &len), 0);
	return ntohs(sin.sin_port);
}

/* Send the n requests from a client thread and run the loop until every
 * answer is in. */
static void ctx_run(struct ctx *c, struct client_run *run, const struct request *requests, size_t n)
{
	pthread_t th;
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

	assert_true(n <= MAX_REQUESTS && efd >= 0);
	memset(run, 0, sizeof(*run));
	run->port = proxy_port(c);
	run->done_fd = efd;
	run->requests = requests;
	run->n = n;
	assert_int_equal(loop_add(&c->loop, &c->done_io, efd, EPOLLIN, done_cb), 0);
	loop_timer_set(&c->loop, &c->guard.timer, c->loop.now_ms + GUARD_MS, run_guard_cb);
	assert_int_equal(pthread_create(&th, NULL, client_main, run), 0);
	c->loop.stop = false;
	assert_int_equal(loop_run(&c->loop), 0);
	assert_false(c->guard.fired);
	pthread_join(th, NULL);
	loop_timer_cancel(&c->loop, &c->guard.timer);
	loop_del(&c->loop, &c->done_io);
	close(efd);
}

static struct metrics_upstream *upstream_of(struct ctx *c, const struct backend *be)
{
	struct metrics_upstream *u = metrics_upstream_get(&c->p.metrics, "shop", be->addr,
							  be == &c->stable ? "1.0.0" : "1.1.0");
	assert_non_null(u);
	return u;
}

/* Requests answered by the 5xx class and all classes in c. */
static uint64_t count_5xx(const struct metrics_counts *c)
{
	uint64_t requests, errors;

	metrics_counts_totals(c, &requests, &errors);
	return errors;
}

static uint64_t count_all(const struct metrics_counts *c)
{
	uint64_t requests, errors;

	metrics_counts_totals(c, &requests, &errors);
	return requests;
}

/* Lines of the access log holding needle. */
static unsigned log_lines_with(const struct ctx *c, const char *needle)
{
	FILE *f = fopen(c->log_path, "r");
	char line[2048];
	unsigned n = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

static void ctx_release(struct ctx *c)
{
	if (!c->proxy_released)
		proxy_release(&c->p);
	backend_stop(&c->stable);
	backend_stop(&c->canary);
	loop_release(&c->loop);
	c->cfg = config_free(c->cfg);
	unlink(c->log_path);
	assert_int_equal(count_fds(), c->fds_before);
}

/* --- the shield ------------------------------------------------------------ */

struct shield_case {
	const char *name;
	char stable_mode, canary_mode;
	const char *service_extra;  /* YAML lines of the service (deploy:) */
	struct request request;
	bool shielded;              /* what the canary failed is retried on stable */
	int canary_status;          /* else: what the client sees when the canary had it */
};

static const struct shield_case shield_cases[] = {
	{ "GET, canary 503", '2', '5', "", { "GET", "/api/cart", NULL }, true, 0 },
	{ "HEAD, canary 503", '2', '5', "", { "HEAD", "/", NULL }, true, 0 },
	{ "GET, canary closes", '2', 'c', "", { "GET", "/", NULL }, true, 0 },
	{ "GET, canary resets", '2', 'r', "", { "GET", "/", NULL }, true, 0 },
	{ "GET, canary refuses", '2', 'x', "", { "GET", "/", NULL }, true, 0 },
	{ "GET, canary healthy", '2', '2', "", { "GET", "/", NULL }, false, 200 },
	{ "POST, canary 503", '2', '5', "", { "POST", "/api/cart", NULL }, false, 503 },
	{ "POST, canary closes", '2', 'c', "", { "POST", "/", "{}" }, false, 502 },
	{ "GET with a body, canary 503", '2', '5', "", { "GET", "/", "abc" }, false, 503 },
	{ "OPTIONS, canary 503", '2', '5', "", { "OPTIONS", "/", NULL }, false, 503 },
	{ "retry_on_stable off, canary 503", '2', '5', "    deploy:\n      retry_on_stable: off\n",
	  { "GET", "/", NULL }, false, 503 },
	{ "retry_on_stable off, canary closes", '2', 'c', "    deploy:\n      retry_on_stable: off\n",
	  { "GET", "/", NULL }, false, 502 },
};

/* Requests that went to the canary first, from what its side saw. */
static unsigned canary_attempts(struct ctx *c, char mode)
{
	return mode == 'x' ? (unsigned)upstream_of(c, &c->canary)->counts.connect_failures : c->canary.requests;
}

static void test_shield_case(const struct shield_case *sc)
{
	struct request requests[24];
	struct client_run run;
	struct ctx c;
	struct metrics_upstream *cu, *su;
	unsigned attempts, from_stable = 0, from_canary = 0, other = 0;
	const size_t n = ARRAY_SIZE(requests);

	for (size_t i = 0; i < n; i++)
		requests[i] = sc->request;
	ctx_start(&c, sc->stable_mode, sc->canary_mode, sc->service_extra);
	ctx_run(&c, &run, requests, n);
	cu = upstream_of(&c, &c.canary);
	su = upstream_of(&c, &c.stable);
	attempts = canary_attempts(&c, sc->canary_mode);
	if (!attempts)
		fail_msg("%s: no request of %zu went to the canary", sc->name, n);
	for (size_t i = 0; i < n; i++) {
		const struct answer *a = &run.answers[i];
		if (a->status == 200 && !strcmp(a->backend, "stable"))
			from_stable++;
		else if (a->status == sc->canary_status &&
			 (!strcmp(a->backend, "canary") || (!a->backend[0] && sc->canary_status == 502)))
			from_canary++;
		else
			other++;
	}
	if (sc->shielded) {
		/* every shopper got the stable version's answer; each request the
		 * canary had was retried there once, and counted against it */
		if (from_stable != n || c.stable.requests != n)
			fail_msg("%s: %u of %zu answered by stable (%u requests there), %u other", sc->name,
				 from_stable, n, c.stable.requests, other);
		assert_int_equal(cu->counts.shielded, attempts);
		assert_int_equal(cu->counts.retries, attempts);
		assert_int_equal(su->counts.shielded, 0);
		if (sc->canary_mode == 'x') {
			assert_int_equal(count_all(&cu->counts), 0);
		} else {
			assert_int_equal(count_5xx(&cu->counts), attempts);
			assert_int_equal(count_all(&cu->counts), attempts);
		}
		assert_int_equal(count_all(&su->counts), n);
		assert_int_equal(count_5xx(&su->counts), 0);
	} else {
		if (from_canary != attempts || from_stable != n - attempts || other)
			fail_msg("%s: %u from the canary (%u attempts), %u from stable, %u other, of %zu", sc->name,
				 from_canary, attempts, from_stable, other, n);
		assert_int_equal(cu->counts.shielded, 0);
		assert_int_equal(c.stable.requests, n - attempts);
	}
	proxy_release(&c.p); /* flushes the access log */
	c.proxy_released = true;
	assert_int_equal(log_lines_with(&c, "retried_on_stable=true"), sc->shielded ? attempts : 0);
	assert_int_equal(log_lines_with(&c, "retried_on_stable=true retries=1"), 0); /* the order of the fields */
	assert_int_equal(log_lines_with(&c, "retries=1 retried_on_stable=true"), sc->shielded ? attempts : 0);
	assert_int_equal(log_lines_with(&c, "retries=2"), 0);
	ctx_release(&c);
}

static void test_shield(void **state)
{
	test_shield_case(*state);
}

/* The stable version fails too: its answer is what the shopper gets; a
 * request retried on stable is never retried again. */
static void test_shield_once(void **state)
{
	struct request requests[16];
	struct client_run run;
	struct ctx c;
	unsigned attempts;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(requests); i++)
		requests[i] = (struct request){ "GET", "/", NULL };
	ctx_start(&c, '5', '5', "");
	ctx_run(&c, &run, requests, ARRAY_SIZE(requests));
	attempts = c.canary.requests;
	assert_true(attempts > 0);
	for (size_t i = 0; i < ARRAY_SIZE(requests); i++) {
		assert_int_equal(run.answers[i].status, 503);
		assert_string_equal(run.answers[i].backend, "stable");
	}
	assert_int_equal(c.stable.requests, ARRAY_SIZE(requests));
	assert_int_equal(upstream_of(&c, &c.canary)->counts.shielded, attempts);
	assert_int_equal(upstream_of(&c, &c.stable)->counts.shielded, 0);
	assert_int_equal(upstream_of(&c, &c.stable)->counts.retries, 0);
	ctx_release(&c);
}

/* Stable refuses connections and the canary fails: the plain retry rules
 * still hold around the shield.  A request the canary had first is
 * retried on stable (the shield), refused there, and with no target left
 * that has not failed it gets a 502.  A request that went to stable first
 * is refused, moves to the canary (another target, within max_retries),
 * and the canary's 503 is forwarded: no stable target is left to shield
 * it with. */
static void test_shield_then_refused(void **state)
{
	struct request requests[12];
	struct client_run run;
	struct ctx c;
	unsigned refused = 0, from_canary = 0;
	const unsigned n = ARRAY_SIZE(requests);

	(void)state;
	for (size_t i = 0; i < n; i++)
		requests[i] = (struct request){ "GET", "/", NULL };
	ctx_start(&c, 'x', '5', "");
	ctx_run(&c, &run, requests, n);
	for (size_t i = 0; i < n; i++) {
		const struct answer *a = &run.answers[i];
		refused += a->status == 502 && !a->backend[0];
		from_canary += a->status == 503 && !strcmp(a->backend, "canary");
	}
	assert_int_equal(refused + from_canary, n);
	assert_true(refused > 0);
	assert_int_equal(upstream_of(&c, &c.canary)->counts.shielded, refused);
	assert_int_equal(c.canary.requests, n);                               /* each once */
	assert_int_equal(upstream_of(&c, &c.stable)->counts.connect_failures, n); /* each once */
	assert_int_equal(upstream_of(&c, &c.stable)->counts.retries, from_canary);
	ctx_release(&c);
}

/* --- route classes --------------------------------------------------------- */

static uint64_t class_requests(struct ctx *c, const struct backend *be, const char *name)
{
	const struct metrics_counts *k = metrics_upstream_class(upstream_of(c, be), name);

	return k ? count_all(k) : 0;
}

/* Each request counts in its class at the target that answered it; one
 * that matches none in no class; a reload that reorders and renames classes
 * keeps each name's counts. */
static void test_route_classes(void **state)
{
	static const struct request requests[] = {
		{ "POST", "/api/checkout", "{}" }, { "POST", "/api/checkout?step=2", "{}" },
		{ "GET", "/api/checkout", NULL }, { "GET", "/api/cart/3", NULL }, { "GET", "/", NULL },
		{ "GET", "/apix", NULL }, { "POST", "http://shop.test/api/checkout", "{}" },
	};
	struct client_run run;
	struct ctx c;
	struct config *cfg2;
	struct config_error err;
	char yaml2[512];

	(void)state;
	ctx_start(&c, '2', '2', "    route_classes: [POST /api/checkout, /api]\n");
	ctx_run(&c, &run, requests, ARRAY_SIZE(requests));
	for (size_t i = 0; i < ARRAY_SIZE(requests); i++)
		assert_int_equal(run.answers[i].status, 200);
	assert_int_equal(class_requests(&c, &c.stable, "POST /api/checkout") +
				 class_requests(&c, &c.canary, "POST /api/checkout"), 3);
	assert_int_equal(class_requests(&c, &c.stable, "/api") + class_requests(&c, &c.canary, "/api"), 2);
	assert_int_equal(count_all(&upstream_of(&c, &c.stable)->counts) +
				 count_all(&upstream_of(&c, &c.canary)->counts), ARRAY_SIZE(requests));
	assert_null(metrics_upstream_class(upstream_of(&c, &c.stable), "/"));

	/* reload: "/api" first and renamed "GET /api", the checkout class
	 * kept: its counts carry on, the new name starts from zero */
	snprintf(yaml2, sizeof(yaml2),
		 "listen: %s\n"
		 "services:\n  shop:\n    run: ./shop --port ${PORT}\n"
		 "    route_classes: [GET /api, POST /api/checkout]\n"
		 "    routes:\n      - path: /\n", c.listen);
	assert_int_equal(config_load_string("test.yml", yaml2, strlen(yaml2), &cfg2, &err), 0);
	assert_int_equal(proxy_apply(&c.p, cfg2), 0); /* the listener, the same text, is kept */
	c.cfg = config_free(c.cfg);
	c.cfg = cfg2;
	ctx_run(&c, &run, requests, ARRAY_SIZE(requests));
	assert_int_equal(class_requests(&c, &c.stable, "POST /api/checkout") +
				 class_requests(&c, &c.canary, "POST /api/checkout"), 6);
	assert_int_equal(class_requests(&c, &c.stable, "/api") + class_requests(&c, &c.canary, "/api"), 2);
	/* GET /api/checkout, GET /api/cart/3 */
	assert_int_equal(class_requests(&c, &c.stable, "GET /api") + class_requests(&c, &c.canary, "GET /api"), 2);
	ctx_release(&c);
}

/* A canary's failures shielded from a request of a class count in that
 * class at the canary (the analysis judges classes apart). */
static void test_route_class_shielded(void **state)
{
	struct request requests[16];
	struct client_run run;
	struct ctx c;
	const struct metrics_counts *k;
	unsigned attempts;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(requests); i++)
		requests[i] = (struct request){ "GET", "/api/cart", NULL };
	ctx_start(&c, '2', '5', "    route_classes: [/api/cart]\n");
	ctx_run(&c, &run, requests, ARRAY_SIZE(requests));
	attempts = c.canary.requests;
	assert_true(attempts > 0);
	k = metrics_upstream_class(upstream_of(&c, &c.canary), "/api/cart");
	assert_non_null(k);
	assert_int_equal(count_5xx(k), attempts);
	assert_int_equal(k->shielded, attempts);
	assert_int_equal(count_all(metrics_upstream_class(upstream_of(&c, &c.stable), "/api/cart")),
			 ARRAY_SIZE(requests));
	ctx_release(&c);
}


/* --- maintenance ------------------------------------------------------------ */

/* One GET with a response of up to 128 KiB read whole: the raw bytes. */
struct big_get {
	int port;
	int done_fd;
	char resp[128 * 1024];
	size_t len;
};

static void *big_get_main(void *arg)
{
	struct big_get *g = arg;
	static const char req[] = "GET /big HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n";
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				   .sin_port = htons((uint16_t)g->port) };
	struct timeval tv = { .tv_sec = 5 };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	uint64_t one = 1;
	int rcv = 4096;

	/* a small receive buffer: the page goes out in several writes */
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 && write(fd, req, sizeof(req) - 1) > 0) {
		for (;;) {
			ssize_t r;
			usleep(g->len < 20000 ? 2000 : 0); /* read slowly at first */
			r = read(fd, g->resp + g->len, sizeof(g->resp) - 1 - g->len);
			if (r <= 0)
				break;
			g->len += (size_t)r;
		}
	}
	g->resp[g->len] = 0;
	close(fd);
	if (write(g->done_fd, &one, sizeof(one)) != sizeof(one))
		abort();
	return NULL;
}

/* A service in maintenance: every request is answered 503 with
 * Retry-After and the page by the proxy (none reaches an instance, none
 * counts against a version), a reload keeps it, the metric says so; off,
 * the versions answer again. */
static void test_maintenance(void **state)
{
	static const struct request requests[] = {
		{ "GET", "/", NULL }, { "HEAD", "/", NULL }, { "POST", "/api/cart", "{\"sku\": 3}" }, { "GET", "/x", NULL },
	};
	struct proxy_maintenance_spec spec = { .service = "shop", .since_ms = 1000, .by = "alice",
					       .retry_after_s = 120 };
	const struct proxy_maintenance *m;
	struct client_run run;
	struct config *cfg2;
	struct config_error err;
	struct ctx c;
	char *text, yaml2[512];
	size_t len;

	(void)state;
	ctx_start(&c, '2', '2', "");
	assert_int_equal(proxy_maintenance_set(&c.p, &spec), 0);
	m = proxy_maintenance_find(&c.p, "shop");
	assert_non_null(m);
	assert_false(m->custom_page);
	assert_non_null(memmem(m->page->bytes, m->page->len, "in about 2 minutes", 18));
	ctx_run(&c, &run, requests, ARRAY_SIZE(requests));
	for (size_t i = 0; i < ARRAY_SIZE(requests); i++) {
		assert_int_equal(run.answers[i].status, 503);
		assert_string_equal(run.answers[i].backend, "");
	}
	assert_int_equal(c.stable.requests + c.canary.requests, 0);
	assert_int_equal(c.p.metrics.local_responses[503], ARRAY_SIZE(requests));
	assert_int_equal(count_all(&upstream_of(&c, &c.stable)->counts) + count_all(&upstream_of(&c, &c.canary)->counts),
			 0);
	/* on again: the new Retry-After and page, since kept */
	spec.since_ms = 5000;
	spec.retry_after_s = 30;
	spec.page = "<h1>back soon</h1>";
	spec.page_len = strlen(spec.page);
	assert_int_equal(proxy_maintenance_set(&c.p, &spec), 0);
	m = proxy_maintenance_find(&c.p, "shop");
	assert_int_equal(m->since_ms, 1000);
	assert_int_equal(m->retry_after_s, 30);
	assert_true(m->custom_page);
	assert_int_equal(c.p.nmaintenance, 1);
	/* refused: no Retry-After, a page too large */
	spec.retry_after_s = 0;
	assert_int_equal(proxy_maintenance_set(&c.p, &spec), -EINVAL);
	spec.retry_after_s = 30;
	spec.page_len = PROXY_PAGE_MAX + 1;
	assert_int_equal(proxy_maintenance_set(&c.p, &spec), -EINVAL);

	/* a reload builds a new routing table: still in maintenance */
	snprintf(yaml2, sizeof(yaml2),
		 "listen: %s\nservices:\n  shop:\n    run: ./shop --port ${PORT}\n    routes:\n      - path: /\n",
		 c.listen);
	assert_int_equal(config_load_string("test.yml", yaml2, strlen(yaml2), &cfg2, &err), 0);
	assert_int_equal(proxy_apply(&c.p, cfg2), 0);
	c.cfg = config_free(c.cfg);
	c.cfg = cfg2;
	text = proxy_metrics_render(&c.p, &len);
	assert_non_null(text);
	assert_non_null(strstr(text, "# TYPE cutover_maintenance gauge\ncutover_maintenance{service=\"shop\"} 1\n"));
	assert_int_equal(strlen(text), len);
	free(text);
	ctx_run(&c, &run, requests, 1);
	assert_int_equal(run.answers[0].status, 503);

	/* off: the versions answer again */
	assert_true(proxy_maintenance_clear(&c.p, "shop"));
	assert_false(proxy_maintenance_clear(&c.p, "shop"));
	ctx_run(&c, &run, requests, ARRAY_SIZE(requests));
	for (size_t i = 0; i < ARRAY_SIZE(requests); i++)
		assert_int_equal(run.answers[i].status, 200);
	text = proxy_metrics_render(&c.p, &len);
	assert_non_null(strstr(text, "cutover_maintenance{service=\"shop\"} 0\n"));
	free(text);
	proxy_release(&c.p); /* flushes the access log */
	c.proxy_released = true;
	/* the reloaded configuration has no access log: the first four only */
	assert_int_equal(log_lines_with(&c, "service in maintenance"), ARRAY_SIZE(requests));
	ctx_release(&c);
}

/* Replaces the page of rp->spec's service once a response has started. */
struct replacer {
	struct loop_timer timer;
	struct proxy *p;
	struct proxy_maintenance_spec *spec;
	bool done;
};

static void replace_page(struct loop *loop, struct loop_timer *t)
{
	struct replacer *rp = container_of(t, struct replacer, timer);

	if (rp->p->metrics.local_responses[503] == 0) {
		loop_timer_set(loop, t, loop->now_ms + 1, replace_page);
		return;
	}
	rp->spec->page = "short";
	rp->spec->page_len = 5;
	assert_int_equal(proxy_maintenance_set(rp->p, rp->spec), 0);
	rp->done = true;
}

/* A page larger than the connection's buffer goes out whole, as the client
 * takes it; replacing the page meanwhile does not touch the response being
 * written. */
static void test_maintenance_large_page(void **state)
{
	struct proxy_maintenance_spec spec = { .service = "shop", .by = "bob", .retry_after_s = 600 };
	char *page = malloc(PROXY_PAGE_MAX), *body;
	struct big_get *g = calloc(1, sizeof(*g));
	pthread_t th;
	struct ctx c;
	int efd;

	(void)state;
	for (size_t i = 0; i < PROXY_PAGE_MAX; i++)
		page[i] = (char)('a' + i % 26);
	spec.page = page;
	spec.page_len = PROXY_PAGE_MAX;
	ctx_start(&c, '2', '2', "");
	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_int_equal(proxy_maintenance_set(&c.p, &spec), 0);
	g->port = proxy_port(&c);
	g->done_fd = efd;
	assert_int_equal(loop_add(&c.loop, &c.done_io, efd, EPOLLIN, done_cb), 0);
	loop_timer_set(&c.loop, &c.guard.timer, c.loop.now_ms + GUARD_MS, run_guard_cb);
	assert_int_equal(pthread_create(&th, NULL, big_get_main, g), 0);
	/* once the response has started, the page is replaced */
	struct replacer rp = { .p = &c.p, .spec = &spec };
	spec.page = page;
	loop_timer_set(&c.loop, &rp.timer, c.loop.now_ms + 1, replace_page);
	c.loop.stop = false;
	assert_int_equal(loop_run(&c.loop), 0);
	assert_false(c.guard.fired);
	pthread_join(th, NULL);
	loop_timer_cancel(&c.loop, &c.guard.timer);
	loop_timer_cancel(&c.loop, &rp.timer);
	loop_del(&c.loop, &c.done_io);
	close(efd);
	assert_true(rp.done);
	assert_non_null(strstr(g->resp, "HTTP/1.1 503 "));
	assert_non_null(strstr(g->resp, "\r\nRetry-After: 600\r\n"));
	assert_non_null(strstr(g->resp, "\r\nContent-Type: text/html; charset=utf-8\r\n"));
	assert_non_null(strstr(g->resp, "\r\nContent-Length: 65536\r\n"));
	body = strstr(g->resp, "\r\n\r\n");
	assert_non_null(body);
	body += 4;
	assert_int_equal(g->len - (size_t)(body - g->resp), PROXY_PAGE_MAX);
	assert_memory_equal(body, page, PROXY_PAGE_MAX);
	free(page);
	free(g);
	ctx_release(&c);
}

int main(void)
{
	struct CMUnitTest tests[ARRAY_SIZE(shield_cases) + 6];
	size_t n = 0;

	for (size_t i = 0; i < ARRAY_SIZE(shield_cases); i++)
		tests[n++] = (struct CMUnitTest){ shield_cases[i].name, test_shield, NULL, NULL,
						  (void *)&shield_cases[i] };
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_shield_once);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_shield_then_refused);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_route_classes);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_route_class_shielded);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_maintenance);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_maintenance_large_page);
	return _cmocka_run_group_tests("proxy", tests, n, NULL, NULL);
}

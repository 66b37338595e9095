/* canary_release - a release for bench/canary: a small HTTP/1.1 server whose
 * behaviour (the share of requests it answers 500, its latency distribution)
 * is read from a file, so that each behaviour is one release in cutover's
 * store and `cutover deploy` picks a behaviour by picking a version.
 *
 *   canary_release --port P --version V --behaviour FILE [--out DIR] [--max-s N]
 *
 * Every request except GET /health (always 200 at once: the health checks
 * must not fail) is answered after a delay drawn from the behaviour, with a
 * 500 for the configured share.  Responses carry `X-Release: V`.  The
 * behaviour file holds `key value` lines (`#` starts a comment):
 *
 *   errors 20        percent of requests answered 500 (0..100, decimals allowed)
 *   median_ms 10     log-normal latency: median ...
 *   sigma 0.47       ... and the sigma of its logarithm (0: always median_ms)
 *   tail 5           percent of requests delayed tail_ms instead (a slow tail)
 *   tail_ms 90
 *   scale 1          every delay multiplied by this (3: everything 3x slower)
 *   seed 1
 *
 * With --out DIR it writes DIR/V-PID.jsonl, one JSON line per event, at the
 * moment it happens (CLOCK_REALTIME in microseconds, the clock of the
 * daemon's event times): `start`, `first_request` (the first request other
 * than /health: the release takes traffic), `first_error` (the first 500 it
 * sends), and `exit` with its counts on SIGTERM/SIGINT or at --max-s.
 *
 * One thread, epoll, a timerfd for the delayed responses.  Bounded: at most
 * MAX_CONNS connections, REQ_MAX bytes of request head, HEAP_MAX delayed
 * responses (beyond that a 503 at once, counted), and it exits by itself
 * after --max-s seconds (default 3600).  Listens on 127.0.0.1 only.
 *
 * Build: cc -O2 -o canary_release bench/canary_release.c -lm
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 4096
#define REQ_MAX 8192
#define OUT_MAX 512
#define HEAP_MAX 65536
#define EVENTS 256

struct behaviour {
	double errors;    /* percent */
	double median_ms;
	double sigma;
	double tail;      /* percent */
	double tail_ms;
	double scale;
	uint64_t seed;
};

struct conn {
	int fd;           /* -1: free */
	uint32_t gen;     /* bumped on close: a delayed response for an old connection is dropped */
	bool busy;        /* a request waits for its response */
	bool close_after;
	size_t inlen;
	uint64_t body_left;
	size_t outlen, outoff;
	char in[REQ_MAX];
	char out[OUT_MAX];
};

struct pending {
	uint64_t due_ns;
	int fd;
	uint32_t gen;
	int status;
	bool post;
};

struct counts {
	uint64_t requests, errors, get, post, other, post_errors, health, overflow, bad;
	uint64_t max_delay_us;
};

static struct conn *conns;
static struct pending heap[HEAP_MAX];
static size_t nheap;
static struct counts counts;
static struct behaviour beh = { .scale = 1.0, .seed = 1 };
static const char *version = "0.0.0";
static int out_fd = -1, epfd = -1, tfd = -1;
static uint64_t rng_state;
static bool seen_request, seen_error;

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* splitmix64: returns a uniform double in (0, 1).  (xorshift64* seeded
 * from the pid gave 73 errors in 20 x 25 first requests at 20 %: its first
 * draws carry the seed's pattern.) */
static double uniform(void)
{
	uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	z ^= z >> 31;
	return ((double)(z >> 11) + 0.5) / 9007199254740992.0;
}

/* A standard normal draw (Box-Muller). */
static double normal(void)
{
	return sqrt(-2.0 * log(uniform())) * cos(2.0 * M_PI * uniform());
}

/* Append one JSON line to the out file (if any), printf-style.  A short
 * write is retried; an error is ignored (the bench then sees a missing line). */
static void record(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	if (out_fd < 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	for (int off = 0; off < n;) {
		ssize_t w = write(out_fd, line + off, (size_t)(n - off));
		if (w <= 0)
			return;
		off += (int)w;
	}
}

/* Read the behaviour file.  Returns 0, or -1 with a message on stderr. */
static int behaviour_load(const char *path)
{
	char line[256], key[64];
	double value;
	int lineno = 0;
	FILE *f = fopen(path, "r");

	if (!f) {
		fprintf(stderr, "canary_release: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *hash = strchr(line, '#');
		lineno++;
		if (hash)
			*hash = 0;
		if (sscanf(line, " %63s", key) != 1)
			continue;
		if (sscanf(line, " %63s %lf", key, &value) != 2 || value < 0) {
			fprintf(stderr, "canary_release: %s:%d: expected \"KEY NUMBER\" (>= 0)\n", path, lineno);
			fclose(f);
			return -1;
		}
		if (!strcmp(key, "errors") && value <= 100)
			beh.errors = value;
		else if (!strcmp(key, "median_ms"))
			beh.median_ms = value;
		else if (!strcmp(key, "sigma"))
			beh.sigma = value;
		else if (!strcmp(key, "tail") && value <= 100)
			beh.tail = value;
		else if (!strcmp(key, "tail_ms"))
			beh.tail_ms = value;
		else if (!strcmp(key, "scale"))
			beh.scale = value;
		else if (!strcmp(key, "seed"))
			beh.seed = (uint64_t)value;
		else {
			fprintf(stderr, "canary_release: %s:%d: unknown key or value out of range: %s\n", path, lineno,
				key);
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	return 0;
}

/* The delay of one request, in nanoseconds, drawn from the behaviour. */
static uint64_t draw_delay_ns(void)
{
	double ms;

	if (beh.tail > 0 && uniform() * 100.0 < beh.tail)
		ms = beh.tail_ms;
	else if (beh.sigma > 0)
		ms = beh.median_ms * exp(beh.sigma * normal());
	else
		ms = beh.median_ms;
	ms *= beh.scale;
	if (ms > 60000)
		ms = 60000;
	return (uint64_t)(ms * 1e6);
}

/* ------------------------------------------------------------ the heap */

static void heap_swap(size_t a, size_t b)
{
	struct pending t = heap[a];

	heap[a] = heap[b];
	heap[b] = t;
}

static void heap_push(struct pending p)
{
	size_t i = nheap++;

	heap[i] = p;
	while (i > 0 && heap[(i - 1) / 2].due_ns > heap[i].due_ns) {
		heap_swap(i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static struct pending heap_pop(void)
{
	struct pending top = heap[0];
	size_t i = 0;

	heap[0] = heap[--nheap];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < nheap && heap[l].due_ns < heap[m].due_ns)
			m = l;
		if (r < nheap && heap[r].due_ns < heap[m].due_ns)
			m = r;
		if (m == i)
			break;
		heap_swap(i, m);
		i = m;
	}
	return top;
}

/* Arm the timerfd for the earliest delayed response (or disarm it). */
static void timer_arm(void)
{
	struct itimerspec its = { 0 };

	if (nheap) {
		uint64_t due = heap[0].due_ns ? heap[0].due_ns : 1;
		its.it_value.tv_sec = (time_t)(due / 1000000000ull);
		its.it_value.tv_nsec = (long)(due % 1000000000ull);
	}
	timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* ------------------------------------------------------- connections */

static void conn_close(struct conn *c)
{
	epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	c->gen++;
	c->busy = false;
}

/* Send what is left of c->out.  Returns 0 when all is sent (or the
 * connection was closed), 1 when the rest waits for EPOLLOUT. */
static int conn_flush(struct conn *c)
{
	while (c->outoff < c->outlen) {
		ssize_t w = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
		if (w < 0 && errno == EAGAIN) {
			struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.fd = c->fd };
			epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
			return 1;
		}
		if (w <= 0) {
			conn_close(c);
			return 0;
		}
		c->outoff += (size_t)w;
	}
	c->outlen = c->outoff = 0;
	c->busy = false;
	if (c->close_after)
		conn_close(c);
	return 0;
}

/* Write the response of the request c waits on (the rest, if the socket
 * is full, on EPOLLOUT).  The caller goes on with what the client sent
 * after it (conn_process). */
static void conn_respond(struct conn *c, int status)
{
	const char *text = status == 200 ? "OK" : status == 500 ? "Internal Server Error"
					  : status == 503 ? "Service Unavailable" : "Bad Request";
	char body[96];
	int blen = snprintf(body, sizeof(body), "%d %s\n", status, version);
	int n = snprintf(c->out, sizeof(c->out),
			 "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nX-Release: %s\r\n%s\r\n%s",
			 status, text, blen, version, c->close_after ? "Connection: close\r\n" : "", body);

	c->outlen = n > 0 && (size_t)n < sizeof(c->out) ? (size_t)n : 0;
	c->outoff = 0;
	conn_flush(c);
}

/* The value of header NAME in the head [p, end), or NULL. */
static const char *header_value(const char *p, const char *end, const char *name, size_t *len)
{
	size_t nlen = strlen(name);

	while (p < end) {
		const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		if (!eol)
			eol = end;
		if ((size_t)(eol - p) > nlen && p[nlen] == ':' && !strncasecmp(p, name, nlen)) {
			const char *v = p + nlen + 1;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			*len = (size_t)(eol - v);
			return v;
		}
		p = eol + 2;
	}
	return NULL;
}

/* Take one request off c->in, if a whole head is there, and answer it now
 * (/health) or schedule its answer. */
static void conn_process(struct conn *c)
{
	while (!c->busy && c->fd >= 0) {
		if (c->body_left) {
			size_t take = c->inlen < c->body_left ? c->inlen : (size_t)c->body_left;
			memmove(c->in, c->in + take, c->inlen - take);
			c->inlen -= take;
			c->body_left -= take;
			if (c->body_left)
				return;
		}
		char *end = memmem(c->in, c->inlen, "\r\n\r\n", 4);
		if (!end) {
			if (c->inlen == sizeof(c->in)) {
				counts.bad++;
				c->close_after = true;
				c->busy = true;
				conn_respond(c, 400);
			}
			return;
		}
		size_t head = (size_t)(end - c->in) + 4, vlen = 0;
		const char *sp = memchr(c->in, ' ', head);
		const char *path = sp ? sp + 1 : c->in;
		bool is_get = sp && sp - c->in == 3 && !memcmp(c->in, "GET", 3);
		bool is_post = sp && sp - c->in == 4 && !memcmp(c->in, "POST", 4);
		bool health = is_get && !strncmp(path, "/health ", 8);
		const char *cl = header_value(c->in, end, "content-length", &vlen);
		const char *te = header_value(c->in, end, "transfer-encoding", &vlen);
		const char *conn_hdr = header_value(c->in, end, "connection", &vlen);

		c->body_left = cl ? strtoull(cl, NULL, 10) : 0;
		c->close_after = conn_hdr && vlen >= 5 && !strncasecmp(conn_hdr, "close", 5);
		memmove(c->in, c->in + head, c->inlen - head);
		c->inlen -= head;
		c->busy = true;
		if (!sp || te) { /* no chunked bodies here: the bench does not send them */
			counts.bad++;
			c->close_after = true;
			conn_respond(c, 400);
			return;
		}
		if (health) {
			counts.health++;
			conn_respond(c, 200);
			continue;
		}
		bool fail = beh.errors > 0 && uniform() * 100.0 < beh.errors;
		uint64_t delay = draw_delay_ns();
		counts.requests++;
		counts.get += is_get;
		counts.post += is_post;
		counts.other += !is_get && !is_post;
		if (delay / 1000 > counts.max_delay_us)
			counts.max_delay_us = delay / 1000;
		if (!seen_request) {
			seen_request = true;
			record("{\"event\": \"first_request\", \"wall_us\": %llu, \"mono_us\": %llu}",
			       (unsigned long long)(now_ns(CLOCK_REALTIME) / 1000),
			       (unsigned long long)(now_ns(CLOCK_MONOTONIC) / 1000));
		}
		if (nheap == HEAP_MAX) {
			counts.overflow++;
			conn_respond(c, 503);
			continue;
		}
		heap_push((struct pending){ .due_ns = now_ns(CLOCK_MONOTONIC) + delay, .fd = c->fd, .gen = c->gen,
					    .status = fail ? 500 : 200, .post = is_post });
		if (heap[0].fd == c->fd && heap[0].gen == c->gen)
			timer_arm(); /* the new response is the first one due */
	}
}

/* A due delayed response: counted when it is sent (an error only counts
 * once a client could see it). */
static void pending_fire(struct pending p)
{
	struct conn *c = &conns[p.fd];

	if (c->fd != p.fd || c->gen != p.gen || !c->busy)
		return; /* the connection closed meanwhile */
	if (p.status == 500) {
		counts.errors++;
		counts.post_errors += p.post;
		if (!seen_error) {
			seen_error = true;
			record("{\"event\": \"first_error\", \"wall_us\": %llu, \"mono_us\": %llu, \"request\": %llu}",
			       (unsigned long long)(now_ns(CLOCK_REALTIME) / 1000),
			       (unsigned long long)(now_ns(CLOCK_MONOTONIC) / 1000), (unsigned long long)counts.requests);
		}
	}
	conn_respond(c, p.status);
	conn_process(c);
}

static void conn_readable(struct conn *c)
{
	for (int i = 0; i < 64 && c->fd >= 0; i++) {
		if (c->inlen == sizeof(c->in)) {
			conn_process(c);
			if (c->busy || c->inlen == sizeof(c->in))
				return; /* read more once this request is answered */
			continue;
		}
		ssize_t r = recv(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen, 0);
		if (r < 0 && errno == EAGAIN)
			break;
		if (r <= 0) {
			conn_close(c);
			return;
		}
		c->inlen += (size_t)r;
	}
	conn_process(c);
}

static void accept_all(int lfd)
{
	for (int i = 0; i < 256; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		if (fd >= MAX_CONNS) {
			close(fd);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct conn *c = &conns[fd];
		c->fd = fd;
		c->busy = c->close_after = false;
		c->inlen = c->outlen = c->outoff = 0;
		c->body_left = 0;
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
		epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
	}
}

static int listen_on(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 1024) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void usage(void)
{
	fprintf(stderr, "usage: canary_release --port P --version V --behaviour FILE [--out DIR] [--max-s N]\n");
	exit(2);
}

/* Serve until SIGTERM/SIGINT or max_s; returns the exit status. */
static int serve(int lfd, int sfd, uint64_t max_s)
{
	uint64_t until = now_ns(CLOCK_MONOTONIC) + max_s * 1000000000ull;
	struct epoll_event evs[EVENTS];

	while (now_ns(CLOCK_MONOTONIC) < until) {
		int n = epoll_wait(epfd, evs, EVENTS, 1000);
		if (n < 0 && errno != EINTR)
			return 1;
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == lfd) {
				accept_all(lfd);
			} else if (fd == sfd) {
				return 0;
			} else if (fd == tfd) {
				uint64_t ticks, now = now_ns(CLOCK_MONOTONIC);
				if (read(tfd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
					return 1;
				while (nheap && heap[0].due_ns <= now)
					pending_fire(heap_pop());
				timer_arm();
			} else if (conns[fd].fd == fd) {
				if ((evs[i].events & EPOLLOUT) && conns[fd].outlen) {
					if (conn_flush(&conns[fd]) == 0 && conns[fd].fd >= 0) {
						struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
						epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
						conn_process(&conns[fd]);
					}
				}
				if ((evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && conns[fd].fd == fd &&
				    !conns[fd].outlen)
					conn_readable(&conns[fd]);
			}
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	int port = 0, lfd, sfd, rc;
	uint64_t max_s = 3600;
	const char *bpath = NULL, *out_dir = NULL;
	sigset_t mask;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--port"))
			port = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--version"))
			version = argv[i + 1];
		else if (!strcmp(argv[i], "--behaviour"))
			bpath = argv[i + 1];
		else if (!strcmp(argv[i], "--out"))
			out_dir = argv[i + 1];
		else if (!strcmp(argv[i], "--max-s"))
			max_s = strtoull(argv[i + 1], NULL, 10);
		else
			usage();
	}
	if (argc % 2 != 1 || port <= 0 || port > 65535 || !bpath || max_s == 0 || strlen(version) > 64)
		usage();
	if (behaviour_load(bpath) < 0)
		return 2;
	rng_state = beh.seed ^ ((uint64_t)getpid() << 32) ^ ((uint64_t)port << 16) ^ now_ns(CLOCK_MONOTONIC);
	conns = calloc(MAX_CONNS, sizeof(*conns));
	if (!conns)
		return 1;
	for (int i = 0; i < MAX_CONNS; i++)
		conns[i].fd = -1;
	if (out_dir) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s-%d.jsonl", out_dir, version, (int)getpid());
		out_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (out_fd < 0)
			fprintf(stderr, "canary_release: %s: %s\n", path, strerror(errno));
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	lfd = listen_on(port);
	if (sfd < 0 || tfd < 0 || epfd < 0 || lfd < 0) {
		fprintf(stderr, "canary_release: cannot listen on 127.0.0.1:%d: %s\n", port, strerror(errno));
		return 1;
	}
	struct epoll_event ev = { .events = EPOLLIN };
	ev.data.fd = lfd;
	epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev);
	ev.data.fd = sfd;
	epoll_ctl(epfd, EPOLL_CTL_ADD, sfd, &ev);
	ev.data.fd = tfd;
	epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &ev);
	record("{\"event\": \"start\", \"version\": \"%s\", \"port\": %d, \"pid\": %d, \"wall_us\": %llu, "
	       "\"errors\": %g, \"median_ms\": %g, \"sigma\": %g, \"tail\": %g, \"tail_ms\": %g, \"scale\": %g}",
	       version, port, (int)getpid(), (unsigned long long)(now_ns(CLOCK_REALTIME) / 1000), beh.errors,
	       beh.median_ms, beh.sigma, beh.tail, beh.tail_ms, beh.scale);
	rc = serve(lfd, sfd, max_s);
	record("{\"event\": \"exit\", \"wall_us\": %llu, \"requests\": %llu, \"errors\": %llu, \"post_errors\": %llu, "
	       "\"get\": %llu, \"post\": %llu, \"other\": %llu, \"health\": %llu, \"overflow\": %llu, \"bad\": %llu, "
	       "\"max_delay_us\": %llu, \"pending\": %zu}",
	       (unsigned long long)(now_ns(CLOCK_REALTIME) / 1000), (unsigned long long)counts.requests,
	       (unsigned long long)counts.errors, (unsigned long long)counts.post_errors,
	       (unsigned long long)counts.get, (unsigned long long)counts.post,
	       (unsigned long long)counts.other, (unsigned long long)counts.health,
	       (unsigned long long)counts.overflow, (unsigned long long)counts.bad,
	       (unsigned long long)counts.max_delay_us, nheap);
	return rc;
}

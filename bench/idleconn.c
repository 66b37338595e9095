/* idleconn - hold many idle keep-alive HTTP/1.1 client connections.
 *
 * Opens N TCP connections to HOST:PORT (at most CONC connecting/awaiting a
 * response at once), sends one "GET / HTTP/1.1" on each, reads the complete
 * response, then keeps every successful connection open and idle for HOLD
 * seconds.  Single process, epoll, bounded in count and time: it always stops
 * by itself after at most RAMP_TIMEOUT + HOLD seconds.
 *
 *   idleconn [-a HOST] [-p PORT] [-n N] [-t HOLD_S] [-c CONC] [-T RAMP_TIMEOUT_S]
 *
 * Output (stdout, line-buffered):
 *   READY n=.. ok=.. failed=.. ramp_ms=..      all requests answered; hold starts
 *   DONE n=.. ok=.. held=.. closed_by_peer=.. failed=..
 * Exit status 0 iff every connection got a 200 and stayed open for the hold.
 *
 * Build: cc -O2 -o idleconn bench/idleconn.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { ST_FREE, ST_CONNECTING, ST_READING, ST_IDLE, ST_DONE };
#define BUFSZ 2048

struct conn {
	int fd;
	int state;
	int len;
	char *buf;
};

static const char REQ[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

static void usage(void)
{
	fprintf(stderr, "usage: idleconn [-a HOST] [-p PORT] [-n N] [-t HOLD_S] [-c CONC] [-T RAMP_TIMEOUT_S]\n");
	exit(2);
}

/* 1 = complete 200 keep-alive response, 0 = need more, -1 = bad response. */
static int parse(const char *b, int len)
{
	const char *end = memmem(b, len, "\r\n\r\n", 4);
	if (!end)
		return len >= BUFSZ - 1 ? -1 : 0;
	int hlen = (int)(end - b) + 4;
	if (len < 12 || memcmp(b, "HTTP/1.1 200", 12) != 0)
		return -1;
	long cl = -1;
	int chunked = 0;
	for (const char *l = memchr(b, '\n', hlen); l && l < end; l = memchr(l, '\n', end - l)) {
		l++;
		const char *e = memchr(l, '\r', end + 2 - l);
		if (!e)
			break;
		if (!strncasecmp(l, "content-length:", 15))
			cl = strtol(l + 15, NULL, 10);
		else if (!strncasecmp(l, "transfer-encoding:", 18) && memmem(l, e - l, "chunked", 7))
			chunked = 1;
		else if (!strncasecmp(l, "connection:", 11) && memmem(l, e - l, "close", 5))
			return -1; /* server will not keep the connection */
	}
	if (chunked) {
		/* The bodies here are tiny: wait for the last-chunk marker. */
		return memmem(b + hlen, len - hlen, "0\r\n\r\n", 5) ? 1 : (len >= BUFSZ - 1 ? -1 : 0);
	}
	if (cl < 0)
		return -1; /* close-delimited body: not keep-alive */
	if (len > hlen + cl)
		return -1;
	return len == hlen + cl;
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1";
	int port = 0, n = 10000, hold = 10, conc = 256, ramp_timeout = 60, opt;

	while ((opt = getopt(argc, argv, "a:p:n:t:c:T:")) != -1) {
		switch (opt) {
		case 'a': host = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'n': n = atoi(optarg); break;
		case 't': hold = atoi(optarg); break;
		case 'c': conc = atoi(optarg); break;
		case 'T': ramp_timeout = atoi(optarg); break;
		default: usage();
		}
	}
	if (port <= 0 || port > 65535 || n <= 0 || n > 1000000 || hold < 0 || hold > 3600 || conc <= 0 ||
	    ramp_timeout <= 0 || ramp_timeout > 3600)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);

	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 16) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur < (rlim_t)n + 16) {
			fprintf(stderr, "idleconn: RLIMIT_NOFILE %lu too low for %d connections\n",
				(unsigned long)rl.rlim_cur, n);
			return 2;
		}
	}

	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		fprintf(stderr, "idleconn: bad IPv4 address %s\n", host);
		return 2;
	}

	struct conn *c = calloc(n, sizeof(*c));
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event *evs = calloc(1024, sizeof(*evs));
	if (!c || ep < 0 || !evs) {
		perror("idleconn: setup");
		return 2;
	}

	int started = 0, inflight = 0, ok = 0, failed = 0, closed = 0, first_err = 0;
	long t0 = now_ms(), ramp_deadline = t0 + ramp_timeout * 1000L;

#define FAIL(i, err)                                                     \
	do {                                                             \
		if (!first_err)                                          \
			first_err = (err);                               \
		close(c[i].fd);                                          \
		c[i].fd = -1;                                            \
		free(c[i].buf);                                          \
		c[i].buf = NULL;                                         \
		c[i].state = ST_DONE;                                    \
		inflight--;                                              \
		failed++;                                                \
	} while (0)

	/* Phase 1: ramp - connect, request, read the response. */
	while (ok + failed < n && now_ms() < ramp_deadline) {
		while (inflight < conc && started < n) {
			int i = started++;
			int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
			c[i].fd = fd;
			inflight++;
			if (fd < 0) {
				c[i].fd = -1;
				if (!first_err)
					first_err = errno;
				c[i].state = ST_DONE;
				inflight--;
				failed++;
				continue;
			}
			int one = 1;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			c[i].buf = malloc(BUFSZ);
			c[i].state = ST_CONNECTING;
			struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN | EPOLLRDHUP, .data.u32 = i };
			if (!c[i].buf || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
				FAIL(i, errno);
				continue;
			}
			if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS)
				FAIL(i, errno);
		}
		long left = ramp_deadline - now_ms();
		int k = epoll_wait(ep, evs, 1024, left > 100 ? 100 : (int)(left > 0 ? left : 0));
		if (k < 0 && errno != EINTR) {
			perror("idleconn: epoll_wait");
			return 2;
		}
		for (int e = 0; e < k; e++) {
			int i = evs[e].data.u32;
			struct conn *x = &c[i];
			if (x->state == ST_CONNECTING) {
				int err = 0;
				socklen_t el = sizeof(err);
				if (!(evs[e].events & EPOLLOUT) && !(evs[e].events & (EPOLLERR | EPOLLHUP)))
					continue;
				getsockopt(x->fd, SOL_SOCKET, SO_ERROR, &err, &el);
				if (err || (evs[e].events & (EPOLLERR | EPOLLHUP))) {
					FAIL(i, err ? err : ECONNRESET);
					continue;
				}
				if (write(x->fd, REQ, sizeof(REQ) - 1) != (ssize_t)(sizeof(REQ) - 1)) {
					FAIL(i, errno ? errno : EIO);
					continue;
				}
				struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.u32 = i };
				epoll_ctl(ep, EPOLL_CTL_MOD, x->fd, &ev);
				x->state = ST_READING;
			} else if (x->state == ST_READING) {
				ssize_t r = read(x->fd, x->buf + x->len, BUFSZ - 1 - x->len);
				if (r < 0 && (errno == EAGAIN || errno == EINTR))
					continue;
				if (r <= 0) {
					FAIL(i, r < 0 ? errno : ECONNRESET);
					continue;
				}
				x->len += r;
				x->buf[x->len] = '\0';
				int p = parse(x->buf, x->len);
				if (p < 0) {
					FAIL(i, EPROTO);
				} else if (p > 0) {
					free(x->buf);
					x->buf = NULL;
					x->state = ST_IDLE;
					inflight--;
					ok++;
				}
			} else if (x->state == ST_IDLE) {
				char tmp[256];
				ssize_t r = read(x->fd, tmp, sizeof(tmp));
				if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
					epoll_ctl(ep, EPOLL_CTL_DEL, x->fd, NULL);
					close(x->fd);
					x->fd = -1;
					x->state = ST_DONE;
					closed++;
				}
			}
		}
	}
	/* Whatever did not finish in time counts as failed. */
	for (int i = 0; i < started; i++)
		if (c[i].state == ST_CONNECTING || c[i].state == ST_READING)
			FAIL(i, ETIMEDOUT);
	failed += n - started;
	long ramp_ms = now_ms() - t0;
	printf("READY n=%d ok=%d failed=%d ramp_ms=%ld\n", n, ok, failed, ramp_ms);
	if (first_err)
		fprintf(stderr, "idleconn: first error: %s\n", strerror(first_err));

	/* Phase 2: hold - stay idle, only notice connections the peer closes. */
	long hold_end = now_ms() + hold * 1000L;
	for (long left; (left = hold_end - now_ms()) > 0;) {
		int k = epoll_wait(ep, evs, 1024, left > 1000 ? 1000 : (int)left);
		for (int e = 0; e < k; e++) {
			struct conn *x = &c[evs[e].data.u32];
			if (x->state != ST_IDLE)
				continue;
			char tmp[256];
			ssize_t r = read(x->fd, tmp, sizeof(tmp));
			if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
				epoll_ctl(ep, EPOLL_CTL_DEL, x->fd, NULL);
				close(x->fd);
				x->fd = -1;
				x->state = ST_DONE;
				closed++;
			}
		}
	}
	int held = 0;
	for (int i = 0; i < n; i++)
		if (c[i].state == ST_IDLE) {
			held++;
			close(c[i].fd);
		}
	printf("DONE n=%d ok=%d held=%d closed_by_peer=%d failed=%d\n", n, ok, held, closed, failed);
	return held == n ? 0 : 1;
}

/* relay.c - the floor for a single-threaded proxy: bytes copied both ways, nothing else.
 *
 *   relay LISTEN_PORT TARGET_PORT        (both on 127.0.0.1)
 *
 * Each accepted client gets its own connection to the target, and whatever arrives
 * on one side is sent to the other: no parsing, no pooling, no headers, no logs, no
 * metrics.  It does its socket I/O the way cutover does: one io_uring, one
 * io_uring_enter per loop iteration, a recv posted per socket (POLL_FIRST after the
 * first) and posted again with the send of what it brought, sends with MSG_DONTWAIT
 * that complete inside the io_uring_enter that submits them (in order, so a side's
 * two buffers take turns safely), and a wait for one completion more than the sends.  So its CPU per request is what the ring, the
 * TCP stack and the wake-ups cost on this machine, and bench/placement shows it
 * next to cutover, nginx and HAProxy.  A bench tool, not part of cutover: a send
 * that comes back short is finished with a blocking send, and an error or EOF on
 * either side ends the pair.  Runs until killed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF 16384

struct pair;

struct side {
	int fd;
	struct pair *pair;
	struct side *peer;
	unsigned next;             /* the buffer the next recv fills */
	int pending[2];            /* bytes of each buffer being sent to the peer */
	char buf[2][BUF];
};

/* Both fds close together, once nothing of the pair is queued or in flight, so
 * neither number is reused while a queued operation may still name it. */
struct pair {
	struct side c, u;
	unsigned ops;
	int ended;
};

/* user_data: the side, with the operation and the buffer in the low bits */
enum { OP_ACCEPT = 1, OP_RECV = 2, OP_SEND = 4, OP_MASK = 7 };

static struct io_uring ring;
static unsigned nsends;           /* sends submitted by the next io_uring_enter */

static struct io_uring_sqe *sqe_get(void)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

	while (!sqe) {
		io_uring_submit(&ring);
		nsends = 0; /* those complete now; the wait counts only the ones after */
		sqe = io_uring_get_sqe(&ring);
	}
	return sqe;
}

static void post_recv(struct side *s, unsigned poll_first)
{
	struct io_uring_sqe *sqe = sqe_get();

	io_uring_prep_recv(sqe, s->fd, s->buf[s->next], BUF, 0);
	sqe->ioprio |= poll_first ? IORING_RECVSEND_POLL_FIRST : 0;
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)s | OP_RECV);
	s->pair->ops++;
}

/* the bytes that buf[b] of s brought, to the peer */
static void post_send(struct side *s, unsigned b, int len)
{
	struct io_uring_sqe *sqe = sqe_get();

	io_uring_prep_send(sqe, s->peer->fd, s->buf[b], (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)s | OP_SEND | b);
	s->pending[b] = len;
	s->pair->ops++;
	nsends++;
}

static void post_accept(int lfd)
{
	struct io_uring_sqe *sqe = sqe_get();

	io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, 0);
	io_uring_sqe_set_data64(sqe, OP_ACCEPT);
}

static int tcp_nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static void pair_new(int cfd, const struct sockaddr_in *target)
{
	struct pair *p = calloc(1, sizeof(*p));
	int ufd = socket(AF_INET, SOCK_STREAM, 0);

	if (!p || ufd < 0 || connect(ufd, (const struct sockaddr *)target, sizeof(*target)) < 0) {
		perror("relay: connect to target");
		close(cfd);
		if (ufd >= 0)
			close(ufd);
		free(p);
		return;
	}
	p->c.fd = tcp_nodelay(cfd);
	p->u.fd = tcp_nodelay(ufd);
	p->c.pair = p->u.pair = p;
	p->c.peer = &p->u;
	p->u.peer = &p->c;
	post_recv(&p->c, 0);
	post_recv(&p->u, 0);
}

/* EOF or an error on either side ends both: what is in flight fails, then they close */
static void pair_end(struct pair *p)
{
	if (!p->ended) {
		p->ended = 1;
		shutdown(p->c.fd, SHUT_RDWR);
		shutdown(p->u.fd, SHUT_RDWR);
	}
}

static void pair_done_op(struct pair *p)
{
	if (--p->ops == 0 && p->ended) {
		close(p->c.fd);
		close(p->u.fd);
		free(p);
	}
}

static void on_recv(struct side *s, int res)
{
	struct pair *p = s->pair;

	if (!p->ended) {
		if (res <= 0) {
			pair_end(p);
		} else {
			post_send(s, s->next, res);
			s->next ^= 1;
			post_recv(s, 1);
		}
	}
	pair_done_op(p);
}

/* A send completed within the io_uring_enter that submitted it (MSG_DONTWAIT), before the
 * recv posted with it could: a short one is finished here, before that recv's bytes go. */
static void on_send(struct side *s, unsigned b, int res, int len)
{
	struct pair *p = s->pair;
	int off = res > 0 ? res : 0;

	if (!p->ended && res < 0 && res != -EAGAIN)
		pair_end(p);
	while (!p->ended && off < len) {
		int n = (int)send(s->peer->fd, s->buf[b] + off, (size_t)(len - off), MSG_NOSIGNAL);
		if (n <= 0)
			pair_end(p);
		else
			off += n;
	}
	pair_done_op(p);
}

int main(int argc, char **argv)
{
	struct sockaddr_in la = { .sin_family = AF_INET }, ta = { .sin_family = AF_INET };
	struct io_uring_params params = { .flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN };
	int lfd, one = 1, rc;

	if (argc != 3) {
		fprintf(stderr, "usage: relay LISTEN_PORT TARGET_PORT (127.0.0.1)\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	la.sin_port = htons((uint16_t)atoi(argv[1]));
	ta.sin_port = htons((uint16_t)atoi(argv[2]));
	la.sin_addr.s_addr = ta.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&la, sizeof(la)) < 0 || listen(lfd, 4096) < 0) {
		perror("relay: listen");
		return 1;
	}
	rc = io_uring_queue_init_params(1024, &ring, &params);
	if (rc < 0) {
		fprintf(stderr, "relay: io_uring_setup: %s\n", strerror(-rc));
		return 1;
	}
	io_uring_register_ring_fd(&ring);
	post_accept(lfd);
	for (;;) {
		struct io_uring_cqe *cqe;
		unsigned want = nsends + 1;

		nsends = 0;
		io_uring_submit_and_wait(&ring, want);
		while (io_uring_peek_cqe(&ring, &cqe) == 0) {
			uint64_t data = cqe->user_data;
			int res = cqe->res;
			uint32_t flags = cqe->flags;
			struct side *s = (struct side *)(uintptr_t)(data & ~(uint64_t)OP_MASK);

			io_uring_cqe_seen(&ring, cqe);
			if (data == OP_ACCEPT) {
				if (res >= 0)
					pair_new(res, &ta);
				if (!(flags & IORING_CQE_F_MORE))
					post_accept(lfd);
			} else if (data & OP_SEND) {
				on_send(s, (unsigned)(data & 1), res, s->pending[data & 1]);
			} else {
				on_recv(s, res);
			}
		}
	}
}

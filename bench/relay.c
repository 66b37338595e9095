/* relay.c - the floor for a single-threaded proxy: bytes copied both ways, nothing else.
 *
 *   relay LISTEN_PORT TARGET_PORT        (both on 127.0.0.1)
 *
 * Each accepted client gets its own connection to the target, and whatever arrives
 * on one side is sent to the other: no parsing, no pooling, no headers, no logs, no
 * metrics.  It does its socket I/O the way cutover does: one io_uring, one
 * io_uring_enter per loop iteration, a recv posted per socket (POLL_FIRST after the
 * first), sends with MSG_DONTWAIT that complete inside the io_uring_enter that
 * submits them, and a wait for one completion more than the sends.  So its CPU per request is what the ring, the
 * TCP stack and the wake-ups cost on this machine, and bench/placement shows it
 * next to cutover, nginx and HAProxy.  A bench tool, not part of cutover: a send
 * that comes back short is finished with a blocking send, and an error or EOF on
 * either side ends the pair.  Runs until killed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF 16384

struct side {
	int fd;
	struct side *peer;
	int pending;               /* bytes of buf being sent to the peer */
	char buf[BUF];
};

enum { OP_ACCEPT = 1, OP_RECV = 2, OP_SEND = 3 };

static struct io_uring ring;
static unsigned nsends;           /* sends submitted by the next io_uring_enter */

static struct io_uring_sqe *sqe_get(void)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

	while (!sqe) {
		io_uring_submit(&ring);
		sqe = io_uring_get_sqe(&ring);
	}
	return sqe;
}

static void post_recv(struct side *s, unsigned poll_first)
{
	struct io_uring_sqe *sqe = sqe_get();

	io_uring_prep_recv(sqe, s->fd, s->buf, BUF, 0);
	sqe->ioprio |= poll_first ? IORING_RECVSEND_POLL_FIRST : 0;
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)s | OP_RECV);
}

static void post_send(struct side *s, int len)
{
	struct io_uring_sqe *sqe = sqe_get();

	io_uring_prep_send(sqe, s->peer->fd, s->buf, (size_t)len, MSG_DONTWAIT);
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)s | OP_SEND);
	s->pending = len;
	nsends++;
}

static void post_accept(int lfd)
{
	struct io_uring_sqe *sqe = sqe_get();

	io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, 0);
	io_uring_sqe_set_data64(sqe, OP_ACCEPT);
}

static int tcp_socket(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static void pair_new(int cfd, const struct sockaddr_in *target)
{
	struct side *c = calloc(1, sizeof(*c)), *u = calloc(1, sizeof(*u));
	int ufd = tcp_socket(socket(AF_INET, SOCK_STREAM, 0));

	if (!c || !u || ufd < 0 || connect(ufd, (const struct sockaddr *)target, sizeof(*target)) < 0) {
		perror("relay: connect to target");
		close(cfd);
		if (ufd >= 0)
			close(ufd);
		free(c);
		free(u);
		return;
	}
	c->fd = tcp_socket(cfd);
	u->fd = ufd;
	c->peer = u;
	u->peer = c;
	post_recv(c, 0);
	post_recv(u, 0);
}

/* the pair's other side still has a recv in flight: it fails once its fd is shut down */
static void side_end(struct side *s)
{
	if (s->peer) {
		shutdown(s->peer->fd, SHUT_RDWR);
		s->peer->peer = NULL;
	}
	close(s->fd);
	free(s);
}

static void on_recv(struct side *s, int res)
{
	if (res <= 0 || !s->peer) {
		side_end(s);
		return;
	}
	post_send(s, res);
}

/* s's bytes went to its peer; then s may receive again */
static void on_send(struct side *s, int res)
{
	int off = res > 0 ? res : 0;

	if (!s->peer) {
		side_end(s);
		return;
	}
	while (off < s->pending) {
		int n = (int)send(s->peer->fd, s->buf + off, (size_t)(s->pending - off), 0);
		if (n <= 0) {
			side_end(s);
			return;
		}
		off += n;
	}
	post_recv(s, 1);
}

int main(int argc, char **argv)
{
	struct sockaddr_in la = { .sin_family = AF_INET }, ta = { .sin_family = AF_INET };
	struct io_uring_params p = { .flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN };
	int lfd, one = 1, rc;

	if (argc != 3) {
		fprintf(stderr, "usage: relay LISTEN_PORT TARGET_PORT (127.0.0.1)\n");
		return 2;
	}
	la.sin_port = htons((uint16_t)atoi(argv[1]));
	ta.sin_port = htons((uint16_t)atoi(argv[2]));
	la.sin_addr.s_addr = ta.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&la, sizeof(la)) < 0 || listen(lfd, 4096) < 0) {
		perror("relay: listen");
		return 1;
	}
	rc = io_uring_queue_init_params(1024, &ring, &p);
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

			io_uring_cqe_seen(&ring, cqe);
			if (data == OP_ACCEPT) {
				if (res >= 0)
					pair_new(res, &ta);
				if (!(flags & IORING_CQE_F_MORE))
					post_accept(lfd);
			} else if ((data & 7) == OP_RECV) {
				on_recv((struct side *)(uintptr_t)(data & ~(uint64_t)7), res);
			} else {
				on_send((struct side *)(uintptr_t)(data & ~(uint64_t)7), res);
			}
		}
	}
}

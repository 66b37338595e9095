/* uring.c - socket reads and writes of the loop through io_uring.
 *
 * Why: on a loopback proxy most of the CPU is system calls, two reads and
 * two writes per request plus the waits.  With a ring, one io_uring_enter
 * per loop iteration submits every send queued during the iteration, waits,
 * and brings back every receive that completed meanwhile.
 *
 * What stays on epoll: everything that is not a proxied connection
 * (listeners, signals, the admin API, health checks, child processes).  The
 * epoll fd itself is watched by a multishot poll on the ring, so the loop
 * still waits in one place; when it fires, epoll_wait(0) collects the
 * events and loop.c dispatches them as before.
 *
 * A socket (struct usock) keeps the read()/writev() semantics its owner was
 * written for (sock.h):
 *   - receive: one recv is posted while the owner has read everything.  The
 *     kernel takes a buffer from a shared pool of provided buffers only when
 *     bytes arrive, so an idle keep-alive connection holds none.  The owner
 *     reads from it in its callback; what it leaves unread (backpressure)
 *     is copied to a buffer of the socket's own and the pool buffer goes
 *     back at once, so no owner can hold the pool.  The next recv is posted
 *     once the owner has read everything: meanwhile the rest stays in the
 *     kernel's socket buffer, as with epoll.  (A multishot recv would save
 *     re-posting, but it drains a socket into as many buffers as it finds,
 *     whatever the owner does.)  ENOBUFS means many sockets received in the
 *     same wait: the recv is posted again, the buffers are back by then.
 *   - send: usock_writev() copies into the socket's send buffer (TX_SIZE)
 *     and returns at once, as writev() into the kernel's buffer would.  At
 *     the end of the iteration one send per socket carries all of it
 *     (uring_flush).  A full buffer is EAGAIN; EPOLLOUT follows when a send
 *     made room.  A failed send fails the next write and reports EPOLLERR.
 *     Sends use MSG_DONTWAIT, so each has completed when the io_uring_enter
 *     that submits it returns; a short one gets a POLLOUT poll for the rest.
 *     The wait therefore need not wake up for a send's completion, and
 *     counts it in (see uring_flush for when it does not, and uring_wait).
 *   - close: the fd is closed only when nothing of the socket is in flight,
 *     so its number is never reused under a queued operation.  Bytes still
 *     to send go out first (like close(2)), for at most CLOSE_LINGER_MS; a
 *     peer that does not take them by then gets a reset, not a response
 *     that looks complete.
 *
 * The ring is single-issuer with deferred task work: completions are
 * processed only inside our io_uring_enter, on the loop thread.
 */
#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "base/list.h"
#include "base/util.h"
#include "loop/loop.h"
#include "loop/sock.h"
#include "loop/uring.h"

#define SQ_ENTRIES 1024
#define CQ_ENTRIES 8192
#define RX_COUNT 256          /* provided receive buffers (a power of two) */
#define RX_SIZE 16384
#define RX_GROUP 7
#define TX_SIZE 16384
#define TX_FREE_MAX 64
#define CLOSE_LINGER_MS 60000
#define SEND_CHECK_MS 50      /* the longest wait while a send counted in may have come back short
				 * (a 1 ms cap cost a third more CPU per request at 1 connection here) */

/* user_data: a struct usock pointer (8-byte aligned) with the operation in
 * the low bits; EPOLL_TAG alone for the poll on the epoll fd; 0 for cancels.
 * OP_POLL waits for a connect, OP_WPOLL for room in a full send buffer. */
enum { OP_RECV = 1, OP_SEND = 2, OP_POLL = 3, OP_WPOLL = 4, OP_MASK = 7 };
#define EPOLL_TAG ((uint64_t)OP_MASK)

struct usock {
	struct loop_uring *ur;
	struct loop_io *owner;     /* NULL once closed: no more callbacks */
	int fd;
	uint8_t ops;               /* operations prepared or in flight */
	bool recv_posted, send_posted, poll_posted, wpoll_posted;
	bool dirty;                /* on ur->dirty: a send to prepare */
	bool closed;
	bool shut_wr;              /* shutdown(SHUT_WR) once the send buffer is empty */
	bool want_out;             /* a write was cut short: EPOLLOUT when room comes back */
	bool blocked;              /* the last send was short: the peer reads slowly */
	int rx_end;                /* 1: EOF received; -errno: receive failed */
	int tx_err;                /* -errno: a send failed */
	char *rx;                  /* received bytes not read yet: a pool buffer
				    * (rx_bid) during the owner's callback, else
				    * a copy of the rest (rx_bid -1); NULL: none */
	uint32_t rx_len, rx_off;
	int rx_bid;
	char *tx;                  /* bytes to send, TX_SIZE; NULL while empty */
	uint32_t tx_len;
	uint32_t tx_sending;       /* of which the send in flight carries these */
	struct usock *next_dirty;
	struct list_head node;     /* ur->socks */
	struct loop_timer linger;  /* closed with bytes still to send */
};

struct loop_uring {
	struct io_uring ring;
	struct loop *loop;
	struct io_uring_buf_ring *br;
	size_t br_bytes;
	char *rx_mem;              /* RX_COUNT buffers of RX_SIZE */
	struct usock *dirty;
	struct list_head socks;
	char *tx_free[TX_FREE_MAX];
	unsigned ntx_free;
	unsigned nsends;           /* sends prepared since the last wait (each completes in it) */
	bool epoll_armed;
	bool epoll_check;          /* the epoll fd fired, or may still hold events */
};

/* ------------------------------------------------------------------ */
/* submission helpers                                                  */

static struct io_uring_sqe *get_sqe(struct loop_uring *ur)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ur->ring);

	while (!sqe) {
		/* the submission queue is full: hand it to the kernel now */
		io_uring_submit(&ur->ring);
		sqe = io_uring_get_sqe(&ur->ring);
	}
	return sqe;
}

static void arm_epoll(struct loop_uring *ur)
{
	struct io_uring_sqe *sqe = get_sqe(ur);

	io_uring_prep_poll_multishot(sqe, ur->loop->epfd, POLLIN);
	io_uring_sqe_set_data64(sqe, EPOLL_TAG);
	ur->epoll_armed = true;
}

/* poll_first: the socket was just drained, so the first attempt would only
 * find it empty; wait for bytes before trying (IORING_RECVSEND_POLL_FIRST) */
static void post_recv(struct usock *s, bool poll_first)
{
	struct io_uring_sqe *sqe;

	if (s->recv_posted || s->rx || s->rx_end || s->closed)
		return;
	sqe = get_sqe(s->ur);
	io_uring_prep_recv(sqe, s->fd, NULL, RX_SIZE, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = RX_GROUP;
	if (poll_first)
		sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)s | OP_RECV);
	s->recv_posted = true;
	s->ops++;
}

/* A POLLOUT poll: the end of a connect (OP_POLL) or room to send (OP_WPOLL). */
static void post_pollout(struct usock *s, unsigned op)
{
	struct io_uring_sqe *sqe = get_sqe(s->ur);

	io_uring_prep_poll_add(sqe, s->fd, POLLOUT);
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)s | op);
	if (op == OP_POLL)
		s->poll_posted = true;
	else
		s->wpoll_posted = true;
	s->ops++;
}

static void cancel_op(struct usock *s, unsigned op)
{
	struct io_uring_sqe *sqe = get_sqe(s->ur);

	io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)s | op, 0);
	io_uring_sqe_set_data64(sqe, 0);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

static void mark_dirty(struct usock *s)
{
	if (s->dirty || s->send_posted || s->wpoll_posted || !s->tx_len)
		return;
	s->dirty = true;
	s->next_dirty = s->ur->dirty;
	s->ur->dirty = s;
}

/* ------------------------------------------------------------------ */
/* buffers                                                             */

static char *rx_buf(struct loop_uring *ur, unsigned bid)
{
	return ur->rx_mem + (size_t)bid * RX_SIZE;
}

static void rx_give_back(struct loop_uring *ur, unsigned bid)
{
	io_uring_buf_ring_add(ur->br, rx_buf(ur, bid), RX_SIZE, (unsigned short)bid, io_uring_buf_ring_mask(RX_COUNT), 0);
	io_uring_buf_ring_advance(ur->br, 1);
}

/* Done with the received bytes (read, or dropped at close). */
static void rx_release(struct usock *s)
{
	if (!s->rx)
		return;
	if (s->rx_bid >= 0)
		rx_give_back(s->ur, (unsigned)s->rx_bid);
	else
		free(s->rx);
	s->rx = NULL;
}

static char *tx_get(struct loop_uring *ur)
{
	if (ur->ntx_free)
		return ur->tx_free[--ur->ntx_free];
	return malloc(TX_SIZE);
}

static void tx_put(struct loop_uring *ur, char **tx)
{
	if (!*tx)
		return;
	if (ur->ntx_free < TX_FREE_MAX)
		ur->tx_free[ur->ntx_free++] = *tx;
	else
		free(*tx);
	*tx = NULL;
}

/* ------------------------------------------------------------------ */
/* sockets                                                             */

static void usock_free(struct usock *s)
{
	struct loop_uring *ur = s->ur;

	rx_release(s);
	tx_put(ur, &s->tx);
	loop_timer_cancel(ur->loop, &s->linger);
	list_del(&s->node);
	if (s->tx_err == -ETIMEDOUT) {
		/* bytes left that the peer never took: make the loss visible
		 * (a reset) rather than end a response that looks complete */
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };
		setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(s->fd);
	free(s);
}

/* A closed socket goes once nothing of it is queued or in flight. */
static bool maybe_free(struct usock *s)
{
	if (!s->closed || s->ops || s->dirty || (s->tx_len && !s->tx_err))
		return false;
	usock_free(s);
	return true;
}

static void deliver(struct usock *s, uint32_t events)
{
	if (s->owner)
		s->owner->cb(s->ur->loop, s->owner, events);
}

static void linger_expired(struct loop *loop, struct loop_timer *timer)
{
	struct usock *s = container_of(timer, struct usock, linger);

	/* the peer does not take what is left: drop it (usock_free resets) */
	s->tx_err = -ETIMEDOUT;
	s->tx_len = 0;
	if (s->send_posted)
		cancel_op(s, OP_SEND);
	if (s->wpoll_posted)
		cancel_op(s, OP_WPOLL);
	maybe_free(s);
}

static void closed_cb(struct loop *loop, struct loop_io *io, uint32_t events)
{
}

int loop_sock_open(struct loop *loop, struct loop_io *io, int fd, unsigned flags, loop_io_cb cb)
{
	struct loop_uring *ur = loop->uring;
	struct usock *s;

	if (!ur) {
		io->us = NULL;
		return loop_add(loop, io, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, cb);
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->ur = ur;
	s->owner = io;
	s->fd = fd;
	list_add_tail(&ur->socks, &s->node);
	io->fd = fd;
	io->cb = cb;
	io->us = s;
	if (flags & LOOP_SOCK_CONNECTING) {
		post_pollout(s, OP_POLL);
	} else {
		post_recv(s, false);
	}
	return 0;
}

void loop_sock_close(struct loop *loop, struct loop_io *io)
{
	struct usock *s = io->us;

	if (io->fd < 0)
		return;
	if (!s) {
		/* out of epoll first: close() alone leaves the registration while
		 * a child forked a moment ago still holds a copy of the socket */
		loop_del(loop, io);
		close(io->fd);
		io->fd = -1;
		io->cb = closed_cb; /* events already fetched in this iteration */
		return;
	}
	io->us = NULL;
	io->fd = -1;
	s->owner = NULL;
	s->closed = true;
	rx_release(s);
	if (s->recv_posted)
		cancel_op(s, OP_RECV);
	if (s->poll_posted)
		cancel_op(s, OP_POLL);
	if (maybe_free(s))
		return;
	if (s->tx_len && !s->tx_err)
		loop_timer_set(loop, &s->linger, loop->now_ms + CLOSE_LINGER_MS, linger_expired);
}

int loop_sock_shutdown_wr(struct loop_io *io)
{
	struct usock *s = io->us;

	if (!s)
		return shutdown(io->fd, SHUT_WR) < 0 ? -errno : 0;
	if (s->tx_len || s->send_posted) {
		s->shut_wr = true;
		return 0;
	}
	return shutdown(s->fd, SHUT_WR) < 0 ? -errno : 0;
}

ssize_t usock_read(struct usock *s, void *buf, size_t len)
{
	if (!len)
		return 0;
	if (s->rx) {
		size_t n = s->rx_len - s->rx_off;
		if (n > len)
			n = len;
		memcpy(buf, s->rx + s->rx_off, n);
		s->rx_off += (uint32_t)n;
		if (s->rx_off == s->rx_len) {
			rx_release(s);
			post_recv(s, true);
		}
		return (ssize_t)n;
	}
	if (s->rx_end > 0)
		return 0;
	if (s->rx_end < 0) {
		errno = -s->rx_end;
		return -1;
	}
	post_recv(s, true);
	errno = EAGAIN;
	return -1;
}

ssize_t usock_writev(struct usock *s, const struct iovec *iov, int niov)
{
	size_t total = 0, n = 0;

	if (s->tx_err) {
		errno = -s->tx_err;
		return -1;
	}
	for (int i = 0; i < niov; i++)
		total += iov[i].iov_len;
	if (!total)
		return 0;
	if (!s->tx) {
		s->tx = tx_get(s->ur);
		if (!s->tx) {
			errno = ENOMEM;
			return -1;
		}
	}
	for (int i = 0; i < niov && s->tx_len < TX_SIZE; i++) {
		size_t k = iov[i].iov_len;
		if (k > TX_SIZE - s->tx_len)
			k = TX_SIZE - s->tx_len;
		memcpy(s->tx + s->tx_len, iov[i].iov_base, k);
		s->tx_len += (uint32_t)k;
		n += k;
	}
	if (n < total)
		s->want_out = true;
	if (!n) {
		errno = EAGAIN;
		return -1;
	}
	mark_dirty(s);
	return (ssize_t)n;
}

/* Prepare one send per socket with bytes queued and none in flight. */
static void uring_flush(struct loop_uring *ur)
{
	while (ur->dirty) {
		struct usock *s = ur->dirty;
		ur->dirty = s->next_dirty;
		s->dirty = false;
		if (s->send_posted || s->wpoll_posted || !s->tx_len || s->tx_err) {
			maybe_free(s);
			continue;
		}
		/* MSG_DONTWAIT: the send never waits inside the ring, so it has
		 * completed (maybe in part, maybe EAGAIN) when io_uring_enter
		 * returns.  uring_wait() need not wake up for it, unless its
		 * completion lets something go on at once: an owner waiting for
		 * room, a shutdown or a close that waits for the last bytes, or
		 * a peer that reads slowly (the send may be short, and the rest
		 * needs a POLLOUT poll before the loop sleeps). */
		struct io_uring_sqe *sqe = get_sqe(ur);
		io_uring_prep_send(sqe, s->fd, s->tx, s->tx_len, MSG_NOSIGNAL | MSG_DONTWAIT);
		io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)s | OP_SEND);
		s->send_posted = true;
		s->tx_sending = s->tx_len;
		s->ops++;
		if (!s->want_out && !s->shut_wr && !s->closed && !s->blocked)
			ur->nsends++;
	}
}

/* ------------------------------------------------------------------ */
/* completions                                                         */

static void on_recv(struct usock *s, int res, uint32_t flags)
{
	struct loop_uring *ur = s->ur;
	uint32_t events;

	s->recv_posted = false;
	s->ops--;
	if (s->closed) {
		if (flags & IORING_CQE_F_BUFFER)
			rx_give_back(ur, flags >> IORING_CQE_BUFFER_SHIFT);
		maybe_free(s);
		return;
	}
	if (res > 0 && (flags & IORING_CQE_F_BUFFER)) {
		s->rx_bid = (int)(flags >> IORING_CQE_BUFFER_SHIFT);
		s->rx = rx_buf(ur, (unsigned)s->rx_bid);
		s->rx_len = (uint32_t)res;
		s->rx_off = 0;
		/* held across the callback, which may close the socket */
		s->ops++;
		deliver(s, EPOLLIN);
		s->ops--;
		if (s->closed) {
			maybe_free(s);
			return;
		}
		if (s->rx && s->rx_bid >= 0) {
			/* left unread: keep a copy, give the pool buffer back */
			char *copy = malloc(s->rx_len - s->rx_off);
			if (copy) {
				memcpy(copy, s->rx + s->rx_off, s->rx_len - s->rx_off);
				rx_give_back(ur, (unsigned)s->rx_bid);
				s->rx = copy;
				s->rx_len -= s->rx_off;
				s->rx_off = 0;
				s->rx_bid = -1;
			}
		}
		post_recv(s, true); /* if it read everything */
		return;
	}
	if (flags & IORING_CQE_F_BUFFER)
		rx_give_back(ur, flags >> IORING_CQE_BUFFER_SHIFT);
	switch (res) {
	case -ENOBUFS:
		/* the pool ran out in this wait; reap gives the buffers back */
	case -EINTR:
	case -EAGAIN:
	case -ECANCELED:
		post_recv(s, false);
		return;
	case 0:
		s->rx_end = 1;
		events = EPOLLIN | EPOLLRDHUP;
		break;
	default:
		s->rx_end = res < 0 ? res : -EIO;
		events = EPOLLIN | EPOLLERR | EPOLLHUP;
		break;
	}
	deliver(s, events);
}

static void on_send(struct usock *s, int res)
{
	bool full = res == -EAGAIN || (res >= 0 && (uint32_t)res < s->tx_sending);

	s->send_posted = false;
	s->ops--;
	if (s->tx_err) {
		maybe_free(s); /* given up on meanwhile (linger_expired) */
		return;
	}
	s->blocked = full;
	if (res < 0 && res != -EINTR && res != -EAGAIN) {
		s->tx_err = res;
		s->tx_len = 0;
		tx_put(s->ur, &s->tx);
		if (!maybe_free(s))
			deliver(s, EPOLLOUT | EPOLLERR | EPOLLHUP);
		return;
	}
	if (res > 0) {
		s->tx_len -= (uint32_t)res;
		if (s->tx_len)
			memmove(s->tx, s->tx + res, s->tx_len);
	}
	if (s->tx_len) {
		if (full)
			post_pollout(s, OP_WPOLL); /* the socket's buffer is full: wait for room */
		else
			mark_dirty(s);
	} else {
		tx_put(s->ur, &s->tx);
		if (s->shut_wr) {
			s->shut_wr = false;
			shutdown(s->fd, SHUT_WR);
		}
		if (maybe_free(s))
			return;
	}
	if (s->want_out && s->tx_len < TX_SIZE) {
		s->want_out = false;
		deliver(s, EPOLLOUT);
	}
}

static void on_poll(struct usock *s, int res)
{
	s->poll_posted = false;
	s->ops--;
	if (maybe_free(s) || s->closed)
		return;
	if (res == -ECANCELED)
		return;
	post_recv(s, true);
	deliver(s, res < 0 ? EPOLLOUT | EPOLLERR : (uint32_t)res | EPOLLOUT);
}

static void on_wpoll(struct usock *s, int res)
{
	s->wpoll_posted = false;
	s->ops--;
	if (res == -ECANCELED && s->closed)
		s->tx_len = 0; /* given up on (linger_expired) */
	if (maybe_free(s))
		return;
	mark_dirty(s); /* room again, or an error the next send reports */
}

static void on_cqe(struct loop_uring *ur, uint64_t data, int res, uint32_t flags)
{
	struct usock *s = (struct usock *)(uintptr_t)(data & ~(uint64_t)OP_MASK);

	if (data == EPOLL_TAG) {
		ur->epoll_check = true;
		if (!(flags & IORING_CQE_F_MORE))
			ur->epoll_armed = false; /* re-armed before the next wait */
		return;
	}
	if (!s)
		return; /* a cancel */
	switch (data & OP_MASK) {
	case OP_RECV:
		on_recv(s, res, flags);
		break;
	case OP_SEND:
		on_send(s, res);
		break;
	case OP_POLL:
		on_poll(s, res);
		break;
	case OP_WPOLL:
		on_wpoll(s, res);
		break;
	default:
		break;
	}
}

static void reap(struct loop_uring *ur)
{
	struct io_uring_cqe *cqe;

	/* one at a time: a callback may queue work, even submit */
	while (io_uring_peek_cqe(&ur->ring, &cqe) == 0) {
		uint64_t data = cqe->user_data;
		int res = cqe->res;
		uint32_t flags = cqe->flags;
		io_uring_cqe_seen(&ur->ring, cqe);
		on_cqe(ur, data, res, flags);
	}
}

int uring_wait(struct loop *loop, struct epoll_event *events, int max, int timeout_ms)
{
	struct loop_uring *ur = loop->uring;
	int n = 0, rc;

	if (!ur->epoll_armed)
		arm_epoll(ur);
	uring_flush(ur);
	if (ur->epoll_check) {
		/* level-triggered fds may still be ready: look before sleeping */
		n = epoll_wait(loop->epfd, events, max, 0);
		if (n > 0)
			timeout_ms = 0;
		else if (n == 0)
			ur->epoll_check = false;
	}
	if (ur->nsends && (timeout_ms < 0 || timeout_ms > SEND_CHECK_MS))
		timeout_ms = SEND_CHECK_MS; /* a send counted in may have come back short */
	if (timeout_ms == 0) {
		rc = io_uring_submit_and_get_events(&ur->ring);
	} else {
		struct __kernel_timespec ts = { .tv_sec = timeout_ms / 1000, .tv_nsec = (timeout_ms % 1000) * 1000000L };
		struct io_uring_cqe *cqe;
		/* the sends complete during the call: wait for one more */
		rc = io_uring_submit_and_wait_timeout(&ur->ring, &cqe, ur->nsends + 1, &ts, NULL);
	}
	ur->nsends = 0;
	if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
		return rc;
	loop_clock_update(loop);
	reap(ur);
	if (n <= 0 && ur->epoll_check) {
		n = epoll_wait(loop->epfd, events, max, 0);
		if (n == 0)
			ur->epoll_check = false;
	}
	return n < 0 ? 0 : n;
}

/* ------------------------------------------------------------------ */
/* setup and teardown                                                  */

int loop_uring_enable(struct loop *loop, char *why, size_t len)
{
	struct io_uring_params params = {
		.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE |
			 IORING_SETUP_SUBMIT_ALL,
		.cq_entries = CQ_ENTRIES,
	};
	struct io_uring_buf_reg reg = { 0 };
	struct loop_uring *ur;
	int rc;

	ur = calloc(1, sizeof(*ur));
	if (!ur) {
		snprintf(why, len, "out of memory");
		return -ENOMEM;
	}
	rc = io_uring_queue_init_params(SQ_ENTRIES, &ur->ring, &params);
	if (rc < 0) {
		snprintf(why, len, "io_uring_setup: %s", strerror(-rc));
		free(ur);
		return rc;
	}
	ur->br_bytes = RX_COUNT * sizeof(struct io_uring_buf);
	ur->br = mmap(NULL, ur->br_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ur->rx_mem = mmap(NULL, (size_t)RX_COUNT * RX_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ur->br == MAP_FAILED || ur->rx_mem == MAP_FAILED) {
		rc = -ENOMEM;
		snprintf(why, len, "cannot map the receive buffers");
		goto fail;
	}
	io_uring_buf_ring_init(ur->br);
	reg.ring_addr = (uint64_t)(uintptr_t)ur->br;
	reg.ring_entries = RX_COUNT;
	reg.bgid = RX_GROUP;
	rc = io_uring_register_buf_ring(&ur->ring, &reg, 0);
	if (rc < 0) {
		snprintf(why, len, "provided buffer ring: %s", strerror(-rc));
		goto fail;
	}
	for (unsigned i = 0; i < RX_COUNT; i++)
		io_uring_buf_ring_add(ur->br, rx_buf(ur, i), RX_SIZE, (unsigned short)i, io_uring_buf_ring_mask(RX_COUNT),
				      (int)i);
	io_uring_buf_ring_advance(ur->br, RX_COUNT);
	/* saves looking the ring's fd up on every io_uring_enter */
	io_uring_register_ring_fd(&ur->ring);
	ur->loop = loop;
	list_init(&ur->socks);
	loop->uring = ur;
	return 0;
fail:
	io_uring_queue_exit(&ur->ring);
	if (ur->br && ur->br != MAP_FAILED)
		munmap(ur->br, ur->br_bytes);
	if (ur->rx_mem && ur->rx_mem != MAP_FAILED)
		munmap(ur->rx_mem, (size_t)RX_COUNT * RX_SIZE);
	free(ur);
	return rc;
}

static bool sends_pending(struct loop_uring *ur)
{
	struct list_head *pos, *tmp;

	list_for_each_safe(pos, tmp, &ur->socks) {
		struct usock *s = container_of(pos, struct usock, node);
		if ((s->tx_len && !s->tx_err) || s->send_posted || s->wpoll_posted)
			return true;
	}
	return false;
}

void uring_release(struct loop *loop, unsigned linger_ms)
{
	struct loop_uring *ur = loop->uring;
	struct list_head *pos, *tmp;
	uint64_t deadline;

	if (!ur)
		return;
	/* no callbacks from here on: owners are being torn down */
	list_for_each_safe(pos, tmp, &ur->socks) {
		struct usock *s = container_of(pos, struct usock, node);
		if (s->owner) {
			s->owner->us = NULL;
			s->owner->fd = -1;
			s->owner = NULL;
		}
	}
	/* what closed connections still have to send (a last response) */
	deadline = time_now_ms() + linger_ms;
	while (sends_pending(ur) && time_now_ms() < deadline) {
		struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = 50 * 1000000L };
		struct io_uring_cqe *cqe;
		uring_flush(ur);
		io_uring_submit_and_wait_timeout(&ur->ring, &cqe, ur->nsends + 1, &ts, NULL);
		ur->nsends = 0;
		reap(ur);
	}
	list_for_each_safe(pos, tmp, &ur->socks) {
		struct usock *s = container_of(pos, struct usock, node);
		s->ops = 0;
		s->dirty = false;
		if (s->tx_len && !s->tx_err)
			s->tx_err = -ETIMEDOUT; /* usock_free resets the connection */
		s->closed = true;
		usock_free(s);
	}
	io_uring_queue_exit(&ur->ring);
	munmap(ur->br, ur->br_bytes);
	munmap(ur->rx_mem, (size_t)RX_COUNT * RX_SIZE);
	while (ur->ntx_free)
		free(ur->tx_free[--ur->ntx_free]);
	free(ur);
	loop->uring = NULL;
}

/* sock.h - reads and writes of the proxy's connections, through the loop.
 *
 * The same calls work on both of the loop's I/O modes:
 *
 *   epoll     the socket is registered edge-triggered and these are plain
 *             read(2), writev(2), shutdown(2) and close(2);
 *   io_uring  (loop_uring_enable) nothing is registered with epoll: a receive
 *             is kept posted on the loop's ring and sends are queued there, so
 *             the reads and writes of a whole loop iteration cost one system
 *             call (see uring.c).
 *
 * In both, the owner's callback gets epoll-style events: EPOLLIN when bytes
 * (or the end, or an error) can be read, EPOLLOUT when a write that was
 * refused (EAGAIN) can be tried again or a connect finished, EPOLLRDHUP /
 * EPOLLHUP / EPOLLERR as epoll reports them.  Reads and writes keep the
 * semantics of read(2) and writev(2) on a non-blocking socket: a return of
 * -1 with errno EAGAIN means "wait for the next event".
 */
#pragma once
#include <errno.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>
#include "loop/loop-t.h"

/* loop_sock_open() flags */
#define LOOP_SOCK_CONNECTING 1u /* a non-blocking connect is in progress: EPOLLOUT when it ends */

struct usock;

/* Start socket I/O on fd (non-blocking).  Returns 0 or -errno; on failure
 * the fd is still the caller's to close. */
int loop_sock_open(struct loop *loop, struct loop_io *io, int fd, unsigned flags, loop_io_cb cb);
/* Close: no callback is made for io afterwards.  Bytes already written are
 * still sent (as close(2) would) unless the socket failed. */
void loop_sock_close(struct loop *loop, struct loop_io *io);
/* shutdown(SHUT_WR) once every byte written so far is sent.  Returns 0 or
 * -errno. */
int loop_sock_shutdown_wr(struct loop_io *io);

ssize_t usock_read(struct usock *s, void *buf, size_t len);
ssize_t usock_writev(struct usock *s, const struct iovec *iov, int niov);

static inline ssize_t loop_sock_read(struct loop_io *io, void *buf, size_t len)
{
	if (!io->us)
		return read(io->fd, buf, len);
	return usock_read(io->us, buf, len);
}

static inline ssize_t loop_sock_writev(struct loop_io *io, const struct iovec *iov, int niov)
{
	if (!io->us)
		return writev(io->fd, iov, niov);
	return usock_writev(io->us, iov, niov);
}

static inline ssize_t loop_sock_write(struct loop_io *io, const void *buf, size_t len)
{
	struct iovec iov = { (void *)buf, len };

	return loop_sock_writev(io, &iov, 1);
}

/* inherit.h - listening sockets this process did not open itself.
 *
 * Two givers hand a daemon its listening sockets instead of letting it bind
 * them: systemd under socket activation (LISTEN_FDS; the sockets outlive
 * every restart) and the previous daemon during `cutover upgrade` (over a
 * Unix socket with SCM_RIGHTS).  Either way the connections that wait in
 * the kernel's accept queue are never refused.  The daemon collects them
 * here; the proxy and the admin listeners then take the socket bound to
 * each configured address instead of binding a new one, and the daemon
 * closes whatever nobody took.
 */
#pragma once
#include <stdbool.h>
#include "loop/inherit-t.h"

/* Add fd (now owned by h): it must be a listening stream socket; it is
 * made non-blocking and close-on-exec.  name may be NULL.  Returns 0, or
 * -ENOTSOCK / -EINVAL (not a listening stream socket: fd is closed) or
 * -ENOMEM (fd is closed). */
int inherited_add(struct inherited *h, int fd, const char *name);
/* Take the socket bound to sa (TCP: same family, address and port; Unix:
 * same path): returns its fd, now the caller's, or -1 when none is.  h may
 * be NULL. */
int inherited_take(struct inherited *h, const struct sockaddr *sa, socklen_t salen);
/* The same for a Unix socket path. */
int inherited_take_unix(struct inherited *h, const char *path);
/* Whether h (may be NULL) holds a socket not taken yet that is bound to
 * the Unix socket path. */
bool inherited_has_unix(const struct inherited *h, const char *path);
/* Format what sock is bound to ("127.0.0.1:8080", "[::1]:8080", a path)
 * into out[len]. */
void inherited_describe(const struct inherited_sock *sock, char *out, size_t len);
/* Close the sockets nobody took (each is logged: the configuration does
 * not name its address) and free h's array.  h may be NULL. */
void inherited_release(struct inherited *h);

/* inherit.c - listening sockets handed to this process (contract in
 * inherit.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>
#include "base/log.h"
#include "loop/inherit.h"

int inherited_add(struct inherited *h, int fd, const char *name)
{
	struct inherited_sock *v, *s;
	int type = 0, listening = 0, flags;
	socklen_t len = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) {
		int err = errno == ENOTSOCK ? -ENOTSOCK : -errno;
		close(fd);
		return err;
	}
	len = sizeof(listening);
	if (type != SOCK_STREAM || getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 || !listening) {
		close(fd);
		return -EINVAL;
	}
	v = realloc(h->socks, (h->n + 1) * sizeof(*v));
	if (!v) {
		close(fd);
		return -ENOMEM;
	}
	h->socks = v;
	s = &v[h->n];
	memset(s, 0, sizeof(*s));
	s->salen = sizeof(s->sa);
	if (getsockname(fd, (struct sockaddr *)&s->sa, &s->salen) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	flags = fcntl(fd, F_GETFL);
	if (flags >= 0)
		fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	s->fd = fd;
	snprintf(s->name, sizeof(s->name), "%s", name ? name : "");
	h->n++;
	return 0;
}

static bool same_address(const struct sockaddr_storage *a, const struct sockaddr *b)
{
	if (a->ss_family != b->sa_family)
		return false;
	if (b->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (b->sa_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
		return x->sin6_port == y->sin6_port && !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) &&
		       x->sin6_scope_id == y->sin6_scope_id;
	}
	if (b->sa_family == AF_UNIX) {
		const struct sockaddr_un *x = (const void *)a, *y = (const void *)b;
		return !strncmp(x->sun_path, y->sun_path, sizeof(x->sun_path));
	}
	return false;
}

int inherited_take(struct inherited *h, const struct sockaddr *sa, socklen_t salen)
{
	for (size_t i = 0; h && i < h->n; i++) {
		int fd = h->socks[i].fd;
		if (fd < 0 || !same_address(&h->socks[i].sa, sa))
			continue;
		h->socks[i].fd = -1;
		return fd;
	}
	return -1;
}

int inherited_take_unix(struct inherited *h, const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	if (!path || strlen(path) >= sizeof(sun.sun_path))
		return -1;
	strcpy(sun.sun_path, path);
	return inherited_take(h, (struct sockaddr *)&sun, sizeof(sun));
}

bool inherited_has_unix(const struct inherited *h, const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	if (!path || strlen(path) >= sizeof(sun.sun_path))
		return false;
	strcpy(sun.sun_path, path);
	for (size_t i = 0; h && i < h->n; i++)
		if (h->socks[i].fd >= 0 && same_address(&h->socks[i].sa, (struct sockaddr *)&sun))
			return true;
	return false;
}

void inherited_describe(const struct inherited_sock *s, char *out, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (s->sa.ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)&s->sa;
		inet_ntop(AF_INET, &x->sin_addr, ip, sizeof(ip));
		snprintf(out, len, "%s:%u", ip, ntohs(x->sin_port));
	} else if (s->sa.ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)&s->sa;
		inet_ntop(AF_INET6, &x->sin6_addr, ip, sizeof(ip));
		snprintf(out, len, "[%s]:%u", ip, ntohs(x->sin6_port));
	} else if (s->sa.ss_family == AF_UNIX) {
		const struct sockaddr_un *x = (const void *)&s->sa;
		snprintf(out, len, "%s", x->sun_path[0] ? x->sun_path : "(unnamed unix socket)");
	} else {
		snprintf(out, len, "(address family %d)", s->sa.ss_family);
	}
}

void inherited_release(struct inherited *h)
{
	char what[128];

	if (!h)
		return;
	for (size_t i = 0; i < h->n; i++) {
		if (h->socks[i].fd < 0)
			continue;
		inherited_describe(&h->socks[i], what, sizeof(what));
		log_warn("socket %s%s%s%s from %s: the configuration does not listen there; closed", what,
			 h->socks[i].name[0] ? " (" : "", h->socks[i].name, h->socks[i].name[0] ? ")" : "",
			 h->from ? h->from : "the parent");
		close(h->socks[i].fd);
		h->socks[i].fd = -1;
	}
	free(h->socks);
	h->socks = NULL;
	h->n = 0;
}

/* inherit-t.h - listening sockets handed to this process (inherit.h). */
#pragma once
#include <stddef.h>
#include <sys/socket.h>

struct inherited_sock {
	int fd;                            /* -1 once taken or closed */
	struct sockaddr_storage sa;        /* what it is bound to (getsockname) */
	socklen_t salen;
	char name[64];                     /* its name from the giver (LISTEN_FDNAMES); may be "" */
};

/* The sockets a previous daemon (upgrade) or systemd (socket activation)
 * handed over, until the proxy and the admin listeners take theirs. */
struct inherited {
	struct inherited_sock *socks;
	size_t n;
	const char *from;                  /* "systemd", "the previous daemon": for messages (static) */
};

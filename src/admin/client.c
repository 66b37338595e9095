/* client.c - blocking admin API client used by CLI verbs: one request and its
 * answer, or the event stream (see client.h). */
#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>
#include "admin/client.h"
#include "http/parser.h"

#define MAX_ANSWER (4 * 1024 * 1024)

/* The connect() failure as a sentence.  EACCES is not "the daemon is down":
 * the socket (mode 0600 in a 0700 directory) is the daemon's user's alone. */
static void connect_error(const char *socket_path, int errnum, char *err, size_t errlen)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)], owner[160] = "";
	struct stat st;
	char *slash;

	if (errnum != EACCES && errnum != EPERM) {
		snprintf(err, errlen, "cannot reach the cutover daemon at %s: %s (is `cutover daemon` running? "
				      "--socket, $CUTOVER_SOCKET or --config tell where it listens)",
			 socket_path, strerror(errnum));
		return;
	}
	/* the socket's owner, else its directory's: the user the daemon runs as */
	snprintf(dir, sizeof(dir), "%s", socket_path);
	slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = 0;
	if (stat(socket_path, &st) == 0 || (slash && stat(dir, &st) == 0)) {
		struct passwd *pw = getpwuid(st.st_uid);
		if (pw)
			snprintf(owner, sizeof(owner), "%s, e.g. `sudo -u %s cutover ...`", pw->pw_name, pw->pw_name);
		else
			snprintf(owner, sizeof(owner), "uid %u", (unsigned)st.st_uid);
	}
	snprintf(err, errlen, "permission denied on the admin socket %s: it is only for the user the daemon runs as "
			      "(mode 0600): run this as that user%s%s",
		 socket_path, owner[0] ? ", " : "", owner);
}

/* A connected socket to the daemon at socket_path, or -errno with a
 * sentence in err. */
static int daemon_connect(const char *socket_path, char *err, size_t errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd, rc;

	if (strlen(socket_path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "admin socket path too long: %s", socket_path);
		return -ENAMETOOLONG;
	}
	strcpy(sun.sun_path, socket_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return rc;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		rc = -errno;
		connect_error(socket_path, errno, err, errlen);
		close(fd);
		return rc;
	}
	return fd;
}

int admin_client_call(const char *socket_path, const char *method, const char *path, const char *body,
		      int *status, char **ret_body, char *err, size_t errlen)
{
	struct timeval tv = { .tv_sec = 5 };
	struct http_response *resp = NULL;
	struct http_error herr;
	size_t blen = body ? strlen(body) : 0, len = 0, cap = 65536;
	char *buf = NULL, head[512];
	int fd = -1, rc, n;

	fd = daemon_connect(socket_path, err, errlen);
	if (fd < 0)
		return fd;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	n = snprintf(head, sizeof(head),
		     "%s %s HTTP/1.1\r\nHost: cutover\r\nUser-Agent: cutover-cli\r\nContent-Type: application/json\r\n"
		     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
		     method, path, blen);
	if (send(fd, head, (size_t)n, MSG_NOSIGNAL) != n || (blen && send(fd, body, blen, MSG_NOSIGNAL) != (ssize_t)blen)) {
		rc = -EIO;
		snprintf(err, errlen, "cannot send the request to %s: %s", socket_path, strerror(errno));
		goto out;
	}
	buf = malloc(cap + 1);
	if (!buf) {
		rc = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (;;) {
		ssize_t r;
		if (len == cap) {
			char *nb;
			if (cap >= MAX_ANSWER) {
				rc = -EMSGSIZE;
				snprintf(err, errlen, "the daemon's answer is larger than %d bytes", MAX_ANSWER);
				goto out;
			}
			nb = realloc(buf, cap * 2 + 1);
			if (!nb) {
				rc = -ENOMEM;
				snprintf(err, errlen, "out of memory");
				goto out;
			}
			buf = nb;
			cap *= 2;
		}
		r = read(fd, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			snprintf(err, errlen, "no answer from the daemon at %s to %s %s: %s", socket_path, method, path,
				 errno == EAGAIN ? "timed out after 5 s" : strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	resp = malloc(sizeof(*resp));
	if (!resp) {
		rc = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	rc = http_response_parse(buf, len, NULL, HTTP_METHOD_GET, resp, &herr);
	if (rc <= 0) {
		rc = -EPROTO;
		snprintf(err, errlen, "invalid answer from the daemon at %s", socket_path);
		goto out;
	}
	memmove(buf, buf + rc, len - (size_t)rc);
	buf[len - (size_t)rc] = 0;
	*status = resp->status;
	*ret_body = buf;
	buf = NULL;
	rc = 0;
out:
	free(resp);
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* ------------------------------------------------------------------ */
/* the event stream                                                    */

#define STREAM_MAX (1024 * 1024) /* one event larger than this: not ours */

/* Read what the socket has (waiting up to timeout_ms).  Returns > 0 bytes
 * added, 0 on timeout, -EPIPE at the end of the stream, -errno. */
static int stream_fill(struct admin_stream *s, int timeout_ms)
{
	struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
	ssize_t r;
	int n;

	if (s->len == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8192;
		char *nb;
		if (cap > STREAM_MAX)
			return -EMSGSIZE;
		nb = realloc(s->buf, cap + 1);
		if (!nb)
			return -ENOMEM;
		s->buf = nb;
		s->cap = cap;
	}
	n = poll(&pfd, 1, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	if (n == 0)
		return 0;
	r = read(s->fd, s->buf + s->len, s->cap - s->len);
	if (r < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : -errno;
	if (r == 0)
		return -EPIPE;
	s->len += (size_t)r;
	s->buf[s->len] = 0;
	return (int)r;
}

int admin_client_stream_open(const char *socket_path, struct admin_stream *s, char *err, size_t errlen)
{
	static const char req[] = "GET /v1/events HTTP/1.1\r\nHost: cutover\r\nUser-Agent: cutover-cli\r\n\r\n";
	char *end;
	int rc;

	memset(s, 0, sizeof(*s));
	s->fd = daemon_connect(socket_path, err, errlen);
	if (s->fd < 0) {
		rc = s->fd;
		goto fail;
	}
	if (send(s->fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(req) - 1) {
		rc = -EIO;
		snprintf(err, errlen, "cannot send the request to %s: %s", socket_path, strerror(errno));
		goto fail;
	}
	while (!s->buf || !(end = strstr(s->buf, "\r\n\r\n"))) {
		rc = stream_fill(s, 5000);
		if (rc <= 0) {
			rc = rc ? rc : -ETIMEDOUT;
			snprintf(err, errlen, "no event stream from the daemon at %s: %s", socket_path, strerror(-rc));
			goto fail;
		}
	}
	if (strncmp(s->buf, "HTTP/1.1 200", 12) != 0) {
		rc = -EPROTO;
		snprintf(err, errlen, "the daemon at %s has no event stream (an older cutover?)", socket_path);
		goto fail;
	}
	end += 4;
	s->len -= (size_t)(end - s->buf);
	memmove(s->buf, end, s->len + 1);
	return 0;
fail:
	admin_client_stream_close(s);
	return rc;
}

int admin_client_stream_next(struct admin_stream *s, int timeout_ms, char **ret_kind, char **ret_data)
{
	for (;;) {
		char *block_end = s->buf ? strstr(s->buf, "\n\n") : NULL;
		if (block_end) {
			char *kind = NULL, *data = NULL, *line = s->buf;
			*block_end = 0;
			while (line && *line) {
				char *next = strchr(line, '\n');
				if (next)
					*next++ = 0;
				if (!strncmp(line, "event: ", 7))
					kind = line + 7;
				else if (!strncmp(line, "data: ", 6))
					data = line + 6;
				line = next;
			}
			kind = kind && data ? strdup(kind) : NULL;
			data = kind ? strdup(data) : NULL;
			s->len -= (size_t)(block_end + 2 - s->buf);
			memmove(s->buf, block_end + 2, s->len + 1);
			if (kind && data) {
				*ret_kind = kind;
				*ret_data = data;
				return 1;
			}
			free(kind);
			free(data);
			continue; /* a comment (keepalive) */
		}
		int rc = stream_fill(s, timeout_ms);
		if (rc <= 0)
			return rc;
	}
}

void admin_client_stream_close(struct admin_stream *s)
{
	if (s->fd >= 0)
		close(s->fd);
	free(s->buf);
	memset(s, 0, sizeof(*s));
	s->fd = -1;
}

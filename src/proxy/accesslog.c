/* accesslog.c - one line per request, logfmt or JSON.
 *
 * Lines are gathered in a 64 KiB buffer and written when it is nearly full
 * or once a second (flush timer in proxy.c), so the per-request cost is a
 * formatted copy, not a system call.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "base/util.h"
#include "config/config-t.h"
#include "proxy/proxy.h"
#include "secrets/redact.h"
#include "proxy/proxy-internal.h"

#define ACCESSLOG_BUF (64 * 1024)
#define ACCESSLOG_LINE_MAX 2048

struct accesslog {
	int fd;
	bool owned;
	int format;
	size_t len;
	char buf[ACCESSLOG_BUF];
};

int accesslog_open(const char *path, int format, struct accesslog **ret)
{
	struct accesslog *al = calloc(1, sizeof(*al));
	int fd;

	if (!al)
		return -ENOMEM;
	if (!strcmp(path, "-") || !strcmp(path, "stdout")) {
		fd = 1;
	} else {
		fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
		if (fd < 0) {
			int err = -errno;
			free(al);
			return err;
		}
		al->owned = true;
	}
	al->fd = fd;
	al->format = format;
	*ret = al;
	return 0;
}

void accesslog_flush(struct accesslog *al)
{
	size_t off = 0;

	while (off < al->len) {
		ssize_t n = write(al->fd, al->buf + off, al->len - off);
		if (n <= 0)
			break; /* a full disk must not stop the proxy: drop the lines */
		off += (size_t)n;
	}
	al->len = 0;
}

struct accesslog *accesslog_close(struct accesslog *al)
{
	if (!al)
		return NULL;
	accesslog_flush(al);
	if (al->owned)
		close(al->fd);
	free(al);
	return NULL;
}

/* Copy s as a quoted string value: JSON escapes (also valid logfmt). */
static size_t put_quoted(char *out, size_t cap, const char *s)
{
	size_t n = 0;

	if (cap < 3)
		return 0;
	out[n++] = '"';
	for (; *s && n + 7 < cap; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\') {
			out[n++] = '\\';
			out[n++] = (char)ch;
		} else if (ch < 0x20 || ch == 0x7f) {
			n += (size_t)snprintf(out + n, cap - n, "\\u%04x", ch);
		} else {
			out[n++] = (char)ch;
		}
	}
	out[n++] = '"';
	return n;
}

/* A request could carry a secret value (a client that knows one, a
 * redirect a service built with one): hidden in place (secrets/redact.h).
 * Returns the new length; a line grown past cap is cut, its newline kept. */
static size_t hide_secrets(char *line, size_t len, size_t cap)
{
	char *hidden = NULL;
	size_t hlen = 0;

	if (redact_global_text(line, len, &hidden, &hlen) != 1)
		return len;
	if (hlen >= cap) {
		hlen = cap - 1;
		hidden[hlen - 1] = '\n';
	}
	memcpy(line, hidden, hlen);
	free(hidden);
	return hlen;
}

void accesslog_write(struct accesslog *al, const struct exchange *ex, uint64_t now_ns)
{
	char line[ACCESSLOG_LINE_MAX], method[48], path[300], host[160], err[160];
	struct timespec ts;
	struct tm tm;
	int n;
	bool json = al->format == CONFIG_LOG_JSON;
	const char *service = ex->service ? ex->service->name : "-";
	const char *target = ex->target ? ex->target->addr_text : "-";
	double ms = (double)(now_ns - ex->start_ns) / 1e6;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	method[put_quoted(method, sizeof(method), ex->method_text)] = 0;
	path[put_quoted(path, sizeof(path), ex->path)] = 0;
	host[put_quoted(host, sizeof(host), ex->host)] = 0;
	err[put_quoted(err, sizeof(err), ex->error ? ex->error : "")] = 0;
	if (json)
		n = snprintf(line, sizeof(line),
			     "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"request_id\":\"%s\",\"client\":\"%s\","
			     "\"method\":%s,\"host\":%s,\"path\":%s,\"status\":%d,\"service\":\"%s\",\"target\":\"%s\","
			     "\"duration_ms\":%.3f,\"bytes_out\":%llu,\"retries\":%u,%s\"error\":%s}\n",
			     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			     ts.tv_nsec / 1000000, ex->request_id, ex->client->peer, method, host, path, ex->status,
			     service, target, ms, (unsigned long long)ex->resp_bytes, ex->retries,
			     ex->shielded ? "\"retried_on_stable\":true," : "", err);
	else
		n = snprintf(line, sizeof(line),
			     "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ request_id=%s client=%s method=%s host=%s path=%s "
			     "status=%d service=%s target=%s duration_ms=%.3f bytes_out=%llu retries=%u%s%s%s\n",
			     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			     ts.tv_nsec / 1000000, ex->request_id, ex->client->peer, method, host, path, ex->status,
			     service, target, ms, (unsigned long long)ex->resp_bytes, ex->retries,
			     ex->shielded ? " retried_on_stable=true" : "", ex->error ? " error=" : "", ex->error ? err : "");
	if (n <= 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	n = (int)hide_secrets(line, (size_t)n, sizeof(line));
	if (al->len + (size_t)n > sizeof(al->buf))
		accesslog_flush(al);
	memcpy(al->buf + al->len, line, (size_t)n);
	al->len += (size_t)n;
}

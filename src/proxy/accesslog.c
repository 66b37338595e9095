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
#include "base/escape.h"
#include "base/util.h"
#include "config/config-t.h"
#include "proxy/proxy.h"
#include "secrets/redact.h"
#include "proxy/proxy-internal.h"

#define ACCESSLOG_BUF (64 * 1024)
#define ACCESSLOG_LINE_MAX 4096

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

/* A line being written: at most cap bytes, the newline included. */
struct line {
	char *b;
	size_t n, cap;
};

static void put(struct line *l, const char *s, size_t len)
{
	if (len > l->cap - 1 - l->n)
		len = l->cap - 1 - l->n;
	memcpy(l->b + l->n, s, len);
	l->n += len;
}

static void put_str(struct line *l, const char *s) { put(l, s, strlen(s)); }

/* s as a quoted string, its escaping at most max bytes (whole characters):
 * JSON's escapes, valid in logfmt too (docs/logs.md). */
static void put_quoted(struct line *l, const char *s, size_t max)
{
	size_t room = l->cap - 1 - l->n;

	if (room < 2)
		return;
	if (max > room - 2)
		max = room - 2;
	l->b[l->n++] = '"';
	l->n += escape_json(l->b + l->n, max, s, strlen(s), NULL);
	l->b[l->n++] = '"';
}

/* A value that is usually a bare word (an id, a name, an address): bare
 * in logfmt when it can be, else quoted; always quoted in JSON. */
static void put_word(struct line *l, const char *s, bool json)
{
	if (!json && escape_logfmt_bare(s, strlen(s)))
		put_str(l, s);
	else
		put_quoted(l, s, 6 * PROXY_REQUEST_ID_MAX);
}

/* The key before a value: `"key":` after a comma, or ` key=`. */
static void put_key(struct line *l, const char *key, bool json)
{
	put_str(l, json ? ",\"" : " ");
	put_str(l, key);
	put_str(l, json ? "\":" : "=");
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

/* The fields, in this order, are documented in docs/logs.md: a change is
 * a change of a format that others parse. */
void accesslog_write(struct accesslog *al, const struct exchange *ex, uint64_t now_ns)
{
	char buf[ACCESSLOG_LINE_MAX], ts[64], num[32];
	struct line l = { .b = buf, .cap = sizeof(buf) };
	struct timespec now;
	struct tm tm;
	bool json = al->format == CONFIG_LOG_JSON;
	const char *version = exchange_version(ex);

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);
	put_str(&l, json ? "{\"ts\":\"" : "ts=");
	put_str(&l, ts);
	if (json)
		put_str(&l, "\"");
	put_key(&l, "request_id", json);
	put_word(&l, ex->request_id, json);
	put_key(&l, "client", json);
	put_word(&l, ex->client->peer, json);
	put_key(&l, "method", json);
	put_quoted(&l, ex->method_text, 64);
	put_key(&l, "host", json);
	put_quoted(&l, ex->host, 512);
	put_key(&l, "path", json);
	put_quoted(&l, ex->path, 1024);
	put_key(&l, "status", json);
	snprintf(num, sizeof(num), "%d", ex->status);
	put_str(&l, num);
	put_key(&l, "service", json);
	put_word(&l, ex->service ? ex->service->name : "-", json);
	put_key(&l, "version", json);
	put_word(&l, version ? version : "-", json);
	put_key(&l, "target", json);
	put_word(&l, ex->target ? ex->target->addr_text : "-", json);
	put_key(&l, "duration_ms", json);
	snprintf(num, sizeof(num), "%.3f", (double)(now_ns - ex->start_ns) / 1e6);
	put_str(&l, num);
	put_key(&l, "bytes_out", json);
	snprintf(num, sizeof(num), "%llu", (unsigned long long)ex->resp_bytes);
	put_str(&l, num);
	put_key(&l, "retries", json);
	snprintf(num, sizeof(num), "%u", ex->retries);
	put_str(&l, num);
	if (ex->shielded) {
		put_key(&l, "retried_on_stable", json);
		put_str(&l, "true");
	}
	if (json || ex->error) {
		put_key(&l, "error", json);
		put_quoted(&l, ex->error ? ex->error : "", 256);
	}
	put_str(&l, json ? "}\n" : "\n");
	if (l.b[l.n - 1] != '\n') /* cut: the line still ends (the cap keeps a byte for it) */
		l.b[l.n++] = '\n';
	l.n = hide_secrets(buf, l.n, sizeof(buf));
	if (al->len + l.n > sizeof(al->buf))
		accesslog_flush(al);
	memcpy(al->buf + al->len, buf, l.n);
	al->len += l.n;
}

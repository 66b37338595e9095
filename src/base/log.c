/* log.c - the error log: logfmt or JSON lines, with fields, to stderr or
 * a file (base/log.h; the fields and formats are in docs/logs.md).
 *
 * A line is built in a buffer on the stack and written with one write(2),
 * unbuffered, so that lines from a crashing process are not lost and
 * lines from two threads (or two daemons during an upgrade) never
 * interleave: a line is at most LOG_LINE_MAX (PIPE_BUF) bytes.  The error
 * log is not on the per-request path; the proxy logs a failed request at
 * most at a bounded rate (proxy.c).
 *
 * Scope fields live in a per-thread table: LOG_SCOPE copies its values
 * there, and the cleanup attribute takes them off at the end of the block,
 * so an early return cannot leave a scope open.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "base/escape.h"
#include "base/log.h"

#define LOG_LINE_MAX 4096
#define LOG_MSG_MAX 1024
/* room kept at the end of a line for what closes it: "}\n" */
#define LOG_TAIL 2

static int log_fd = 2;
static enum log_level log_min = LOG_LEVEL_INFO;
static enum log_format log_format = LOG_FORMAT_LOGFMT;
static bool log_format_pinned;
static const char *const level_names[] = { "debug", "info", "warn", "error" };
static log_filter_fn log_filter;

struct scope_field {
	const char *key;
	bool is_num;
	long long num;
	char str[LOG_SCOPE_VALUE_MAX];
};

static _Thread_local struct scope_field scope[LOG_SCOPE_MAX];
static _Thread_local unsigned nscope;

void log_set_filter(log_filter_fn fn) { log_filter = fn; }

int log_open(const char *path)
{
	int fd;

	if (!path || !strcmp(path, "-") || !strcmp(path, "stderr")) {
		log_close();
		return 0;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (fd < 0)
		return -errno;
	log_close();
	log_fd = fd;
	return 0;
}

void log_set_level(enum log_level level) { log_min = level; }

bool log_enabled(enum log_level level) { return level >= log_min; }

void log_set_format(enum log_format format)
{
	log_format = format;
	log_format_pinned = true;
}

void log_config_format(enum log_format format)
{
	if (!log_format_pinned)
		log_format = format;
}

enum log_format log_get_format(void) { return log_format; }

void log_close(void)
{
	if (log_fd > 2)
		close(log_fd);
	log_fd = 2;
}

/* ---- scopes ------------------------------------------------------------- */

unsigned log_scope_begin(const struct log_field *fields, size_t n)
{
	unsigned mark = nscope;

	for (size_t i = 0; i < n && nscope < LOG_SCOPE_MAX; i++) {
		struct scope_field *f = &scope[nscope];
		if (!fields[i].is_num && !fields[i].str)
			continue;
		f->key = fields[i].key;
		f->is_num = fields[i].is_num;
		f->num = fields[i].num;
		if (!f->is_num)
			snprintf(f->str, sizeof(f->str), "%s", fields[i].str);
		nscope++;
	}
	return mark;
}

void log_scope_end(const unsigned *mark)
{
	if (*mark <= nscope)
		nscope = *mark;
}

/* ---- writing a line ----------------------------------------------------- */

struct line {
	char buf[LOG_LINE_MAX];
	size_t n;
	bool json;
};

static size_t room(const struct line *l) { return sizeof(l->buf) - LOG_TAIL - l->n; }

static void put_raw(struct line *l, const char *s, size_t len)
{
	if (len > room(l))
		len = room(l);
	memcpy(l->buf + l->n, s, len);
	l->n += len;
}

/* A quoted string: "escaped".  Cut (whole characters) if the line is full;
 * the closing quote always fits once the opening one did. */
static void put_quoted(struct line *l, const char *s)
{
	if (room(l) < 2)
		return;
	l->buf[l->n++] = '"';
	l->n += escape_json(l->buf + l->n, room(l) - 1, s, strlen(s), NULL);
	l->buf[l->n++] = '"';
}

/* One field: `,"key":value` or ` key=value`.  A field that does not fit
 * whole with at least 16 bytes of its value is left out.  String values
 * go through the filter first. */
static void put_field(struct line *l, const char *key, const char *str, bool is_num, long long num)
{
	char *filtered = NULL, digits[24];
	const char *v = str;
	size_t klen = strlen(key);

	if (is_num) {
		snprintf(digits, sizeof(digits), "%lld", num);
		v = digits;
	} else if (log_filter) {
		v = log_filter(str, &filtered);
	}
	/* a number fits whole or not at all (a cut number is a wrong one) */
	if (room(l) < klen + 4 + (is_num ? strlen(v) : 2 + 16))
		goto out;
	if (l->json) {
		put_raw(l, ",\"", 2);
		put_raw(l, key, klen);
		put_raw(l, "\":", 2);
	} else {
		put_raw(l, " ", 1);
		put_raw(l, key, klen);
		put_raw(l, "=", 1);
	}
	if (is_num || (!l->json && escape_logfmt_bare(v, strlen(v))))
		put_raw(l, v, strlen(v));
	else
		put_quoted(l, v);
out:
	free(filtered);
}

static bool key_reserved(const char *key)
{
	return !strcmp(key, "ts") || !strcmp(key, "level") || !strcmp(key, "msg");
}

/* Whether key is given again after position i: the scope's fields
 * (0..nscope) then the call's (nscope..nscope+n); the later one wins. */
static bool key_later(const char *key, size_t i, const struct log_field *fields, size_t n)
{
	for (size_t j = i + 1; j < nscope + n; j++) {
		const struct log_field *f = j >= nscope ? &fields[j - nscope] : NULL;
		const char *other = f ? f->key : scope[j].key;
		if (f && !f->is_num && !f->str)
			continue;
		if (!strcmp(other, key))
			return true;
	}
	return false;
}

static void put_fields(struct line *l, const struct log_field *fields, size_t n)
{
	for (size_t i = 0; i < nscope + n; i++) {
		const struct log_field *f = i >= nscope ? &fields[i - nscope] : NULL;
		const struct scope_field *s = f ? NULL : &scope[i];
		const char *key = f ? f->key : s->key;

		if ((f && !f->is_num && !f->str) || key_reserved(key) || key_later(key, i, fields, n))
			continue;
		if (f)
			put_field(l, key, f->str, f->is_num, f->num);
		else
			put_field(l, key, s->str, s->is_num, s->num);
	}
}

/* A message cut by its buffer's size may end inside a UTF-8 sequence:
 * the partial sequence goes (it would be written as U+FFFD otherwise). */
static void cut_partial_utf8(char *msg)
{
	size_t n = strlen(msg), k = 0;
	unsigned char lead;

	while (k < 3 && k < n && ((unsigned char)msg[n - 1 - k] & 0xc0) == 0x80)
		k++;
	if (k == n)
		return;
	lead = (unsigned char)msg[n - 1 - k];
	if (lead < 0xc0)
		return; /* ASCII, or continuation bytes without a lead: escape_json's business */
	if (k + 1 < (lead >= 0xf0 ? 4u : lead >= 0xe0 ? 3u : 2u))
		msg[n - 1 - k] = 0;
}

void log_vfields(enum log_level level, const struct log_field *fields, size_t n, const char *fmt, va_list ap)
{
	char msg[LOG_MSG_MAX], *filtered = NULL;
	const char *text = msg;
	struct line l;
	struct timespec ts;
	struct tm tm;
	int len;

	if (level < log_min)
		return;
	len = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (len >= (int)sizeof(msg))
		cut_partial_utf8(msg);
	if (log_filter)
		text = log_filter(msg, &filtered);
	l.json = log_format == LOG_FORMAT_JSON;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	len = snprintf(l.buf, sizeof(l.buf),
		       l.json ? "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\",\"msg\":"
			      : "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s msg=",
		       tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		       ts.tv_nsec / 1000000, level_names[level]);
	l.n = (size_t)len;
	put_quoted(&l, text);
	free(filtered);
	put_fields(&l, fields, n);
	if (l.json)
		l.buf[l.n++] = '}';
	l.buf[l.n++] = '\n';
	if (write(log_fd, l.buf, l.n) < 0) {
		/* nowhere left to report it */
	}
}

void log_fields(enum log_level level, const struct log_field *fields, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vfields(level, fields, n, fmt, ap);
	va_end(ap);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vfields(level, NULL, 0, fmt, ap);
	va_end(ap);
}

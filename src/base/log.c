/* log.c - the error log: logfmt (or JSON) lines to stderr or a file.
 *
 * Writes are unbuffered single write(2) calls so that lines from a crashing
 * process are not lost; the error log is not on the per-request path.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "base/log.h"

static int log_fd = 2;
static enum log_level log_min = LOG_LEVEL_INFO;
static enum log_format log_format = LOG_FORMAT_LOGFMT;
static const char *const level_names[] = { "debug", "info", "warn", "error" };
static log_filter_fn log_filter;

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

void log_set_format(enum log_format format) { log_format = format; }

void log_close(void)
{
	if (log_fd > 2)
		close(log_fd);
	log_fd = 2;
}

/* Append msg to line[n..size) quoted for the current format, keeping room
 * for the closing quote, brace and newline.  Returns the new length.
 * logfmt: \" and \\, control characters become spaces (one line per
 * event).  JSON: the escapes of RFC 8259; bytes >= 0x80 are copied (the
 * messages are UTF-8) but a multi-byte sequence is never cut in two. */
static size_t quote(char *line, size_t n, size_t size, const char *msg)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; msg[i] && n < size - 9; i++) {
		unsigned char c = (unsigned char)msg[i];
		if (c == '"' || c == '\\') {
			line[n++] = '\\';
			line[n++] = (char)c;
		} else if (c >= 0xc0) {
			size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2, k;
			for (k = 1; k < len && ((unsigned char)msg[i + k] & 0xc0) == 0x80; k++)
				;
			if (k < len || n + len >= size - 9)
				break; /* cut by vsnprintf, or no room left: end here */
			memcpy(line + n, msg + i, len);
			n += len;
			i += len - 1;
		} else if (c >= 0x80 && log_format == LOG_FORMAT_JSON) {
			line[n++] = '?'; /* a stray continuation byte: not UTF-8 */
		} else if (c >= 0x20 && c != 0x7f) {
			line[n++] = (char)c;
		} else if (log_format == LOG_FORMAT_LOGFMT) {
			line[n++] = ' ';
		} else if (c == '\n' || c == '\t') {
			line[n++] = '\\';
			line[n++] = c == '\n' ? 'n' : 't';
		} else {
			n += (size_t)snprintf(line + n, size - n, "\\u00%c%c", hex[c >> 4], hex[c & 15]);
		}
	}
	return n;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char msg[1024], line[1400], *filtered = NULL;
	const char *text = msg;
	struct timespec ts;
	struct tm tm;
	va_list ap;
	bool json = log_format == LOG_FORMAT_JSON;
	size_t n;
	int len;

	if (level < log_min)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (log_filter)
		text = log_filter(msg, &filtered);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	len = snprintf(line, sizeof(line),
		       json ? "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\",\"msg\":\""
			    : "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s msg=\"",
		       tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		       ts.tv_nsec / 1000000, level_names[level]);
	n = quote(line, (size_t)len, sizeof(line), text);
	free(filtered);
	line[n++] = '"';
	if (json)
		line[n++] = '}';
	line[n++] = '\n';
	if (write(log_fd, line, n) < 0) {
		/* nowhere left to report it */
	}
}

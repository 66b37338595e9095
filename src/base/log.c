/* log.c - the error log: logfmt lines to stderr or a file.
 *
 * Writes are unbuffered single write(2) calls so that lines from a crashing
 * process are not lost; the error log is not on the per-request path.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "base/log.h"

static int log_fd = 2;
static enum log_level log_min = LOG_LEVEL_INFO;
static const char *const level_names[] = { "debug", "info", "warn", "error" };

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

void log_close(void)
{
	if (log_fd > 2)
		close(log_fd);
	log_fd = 2;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char msg[1024], line[1400];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	size_t i, n;
	int len;

	if (level < log_min)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	len = snprintf(line, sizeof(line), "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s msg=\"",
		       tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		       ts.tv_nsec / 1000000, level_names[level]);
	n = (size_t)len;
	for (i = 0; msg[i] && n < sizeof(line) - 3; i++) {
		unsigned char c = (unsigned char)msg[i];
		if (c == '"' || c == '\\') {
			line[n++] = '\\';
			line[n++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			line[n++] = ' ';
		} else {
			line[n++] = (char)c;
		}
	}
	line[n++] = '"';
	line[n++] = '\n';
	if (write(log_fd, line, n) < 0) {
		/* nowhere left to report it */
	}
}

/* log.h - the error log.
 *
 * One line per event, logfmt: `ts=... level=... msg="..." key=value`, or,
 * after log_set_format(LOG_FORMAT_JSON), one JSON object per line:
 * {"ts":"...","level":"...","msg":"..."} (`cutover daemon --json`).
 * Libraries do not log; the caller that decides what to do logs once.
 * The access log (one line per request) lives in proxy/accesslog.c.
 */
#pragma once
#include <stdarg.h>

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };
enum log_format { LOG_FORMAT_LOGFMT = 0, LOG_FORMAT_JSON };

/* Send the error log to path ("-" or NULL: stderr).  Returns 0 or -errno. */
int log_open(const char *path);
void log_set_level(enum log_level level);
/* Line format of every later message (default logfmt). */
void log_set_format(enum log_format format);
void log_close(void);
/* A filter every message goes through before it is written (the daemon
 * hides secret values with it): returns msg itself, or a malloc'd
 * replacement stored in *tofree too.  Set once at start, before any other
 * thread logs; NULL: none. */
typedef const char *(*log_filter_fn)(const char *msg, char **tofree);
void log_set_filter(log_filter_fn fn);
/* fmt produces the message text; it is quoted for logfmt or JSON. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)

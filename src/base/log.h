/* log.h - the error log (the daemon's own log).
 *
 * One line per event, logfmt: `ts=... level=... msg="..." key=value ...`,
 * or, in JSON, one object per line: {"ts":"...","level":"...","msg":"...",
 * "key":"value",...} (`cutover daemon --json`, or `log.error_format: json`).
 * docs/logs.md lists the fields.  Besides its text, a message may carry
 * fields: its own (log_fields) and those of the scope it is logged in
 * (LOG_SCOPE): code that handles one instance or one deployment opens a
 * scope with its service, version, instance..., and every message logged
 * inside it, down any call chain, carries them.
 *
 * Libraries do not log; the caller that decides what to do logs once.
 * The access log (one line per request) lives in proxy/accesslog.c.
 */
#pragma once
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };
enum log_format { LOG_FORMAT_LOGFMT = 0, LOG_FORMAT_JSON };

/* A field of a message: a key and a string or an integer.  key is a
 * string literal of [a-z_] (not ts, level or msg: those are skipped); a
 * string value NULL leaves the field out. */
struct log_field {
	const char *key;
	const char *str;
	long long num;
	bool is_num;
};

#define LOG_STR(k, v) ((struct log_field){ .key = (k), .str = (v) })
#define LOG_INT(k, v) ((struct log_field){ .key = (k), .num = (long long)(v), .is_num = true })
/* An array of fields and its length, as two arguments:
 * log_fields(LOG_LEVEL_WARN, LOG_FIELDS(LOG_STR("service", name), LOG_INT("pid", pid)), "fmt", ...) */
#define LOG_FIELDS(...)                                                                                      \
	((const struct log_field[]){ __VA_ARGS__ }),                                                         \
		(sizeof((const struct log_field[]){ __VA_ARGS__ }) / sizeof(struct log_field))

/* At most this many scope fields are held per thread (more are dropped),
 * and a scope field's string value is cut to LOG_SCOPE_VALUE_MAX - 1 bytes. */
#define LOG_SCOPE_MAX 12
#define LOG_SCOPE_VALUE_MAX 128

/* Send the error log to path ("-" or NULL: stderr).  Returns 0 or -errno. */
int log_open(const char *path);
void log_set_level(enum log_level level);
/* The format chosen on the command line (--json): every later message
 * uses it, and log_config_format() does not change it any more. */
void log_set_format(enum log_format format);
/* The format the configuration asks for (log.error_format): taken unless
 * the command line chose one.  Default logfmt. */
void log_config_format(enum log_format format);
enum log_format log_get_format(void);
/* Whether a message of this level is written (the least severe level). */
bool log_enabled(enum log_level level);
void log_close(void);
/* A filter every message and every string field value goes through before
 * it is written (the daemon hides secret values with it): returns msg
 * itself, or a malloc'd replacement stored in *tofree too.  Set once at
 * start, before any other thread logs; NULL: none. */
typedef const char *(*log_filter_fn)(const char *msg, char **tofree);
void log_set_filter(log_filter_fn fn);

/* fmt produces the message text; it is quoted for logfmt or JSON. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same with fields of its own (n of them), written after the scope's;
 * one of its own replaces a scope field of the same key. */
void log_fields(enum log_level level, const struct log_field *fields, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void log_vfields(enum log_level level, const struct log_field *fields, size_t n, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));

/* Open a scope on this thread: the n fields (values copied) are added to
 * every message the thread logs until log_scope_end(mark).  Scopes nest;
 * an inner field replaces an outer one of the same key.  Returns the mark.
 * Use LOG_SCOPE, which ends the scope with the enclosing block. */
unsigned log_scope_begin(const struct log_field *fields, size_t n);
void log_scope_end(const unsigned *mark);

#define LOG_SCOPE_NAME2(line) log_scope_mark_##line
#define LOG_SCOPE_NAME(line) LOG_SCOPE_NAME2(line)
#define LOG_SCOPE(...)                                                                                       \
	const unsigned LOG_SCOPE_NAME(__LINE__) __attribute__((cleanup(log_scope_end), unused)) =           \
		log_scope_begin(LOG_FIELDS(__VA_ARGS__))

#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)

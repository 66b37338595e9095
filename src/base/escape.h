/* escape.h - text as the inside of a JSON string, and logfmt values.
 *
 * The two logs (base/log.c, proxy/accesslog.c) write values that come from
 * outside: a client's path and Host, an instance's error text, a file
 * name.  Each is written through escape_json(), so that a line is always
 * one valid JSON (or logfmt) line whatever the bytes were.
 *
 * The escaping is jansson's (what json_dumps() writes by default, and what
 * secrets/redact.c expects a JSON-escaped secret value to look like): \" \\
 * \b \f \n \r \t, other control characters as \u00XX (upper-case hex),
 * everything else as it is, DEL and valid UTF-8 included.  Bytes that are
 * not valid UTF-8 (a stray continuation byte, a truncated or overlong
 * sequence, a surrogate, a code point past U+10FFFF) become \ufffd, one
 * per byte, so the output is always valid UTF-8.  Pure; no allocation.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>

/* Room escape_json() needs at most for one input byte (\u00XX). */
#define ESCAPE_JSON_MAX_PER_BYTE 6

/* Write the JSON escaping of s (len bytes; NUL is an ordinary byte here)
 * into out, which has room for cap bytes; no quotes around it, no NUL
 * after it.  Stops before a character that would not fit whole (an escape
 * or a UTF-8 sequence is never cut).  Returns the bytes written; *used
 * (when not NULL) is set to the input bytes consumed, len when all of s
 * was written. */
size_t escape_json(char *out, size_t cap, const char *s, size_t len, size_t *used);

/* Whether s can be a logfmt value as it is, unquoted: not empty, and only
 * printable ASCII other than space, '=' and '"'. */
bool escape_logfmt_bare(const char *s, size_t len);

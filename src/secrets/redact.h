/* redact.h - hide secret values in text: "[redacted:NAME]" wherever a
 * value appears, in one piece of text (a log line, a JSON reply, an event)
 * or in a stream whose writes may split a value (an instance's output,
 * through its log relay).
 *
 * A redactor holds the values (in sodium_malloc memory, wiped when freed)
 * and, for each, the forms it may take in cutover's own output: the raw
 * bytes and, when different, their JSON string escaping (a value with a
 * quote, a backslash or a control character is written escaped in JSON
 * replies, events and SQLite's JSON columns).  Matching is exact and
 * byte-wise; at one position the longest value wins.  Values shorter than
 * SECRET_VALUE_MIN are refused (they would hide ordinary text).
 *
 * Speed: a 64 Ki-bit table of the first two bytes of every form lets a
 * scan skip a position with one lookup, so text without secrets costs one
 * table probe per byte (the access log runs it on every line).
 *
 * The process-wide redactor (redact_global_*) is what the daemon's sinks
 * use: set by the daemon when it loads its secrets, read by any thread.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "secrets/secrets-t.h"

struct redactor;
struct redact_stream;

/* A new empty redactor (it hides nothing).  Returns 0 or -ENOMEM. */
int redactor_new(struct redactor **ret);
/* Hide value (len bytes, copied) as "[redacted:NAME]".  The same value
 * twice keeps the first name.  Returns 0, -EINVAL (bad name, len <
 * SECRET_VALUE_MIN or > SECRET_VALUE_MAX), -ENOSPC (more than 4 *
 * SECRETS_MAX forms) or -ENOMEM. */
int redactor_add(struct redactor *r, const char *name, const uint8_t *value, size_t len);
/* Add every secret of s.  Returns as redactor_add. */
int redactor_add_secrets(struct redactor *r, const struct secrets *s);
/* How many values it hides (not counting their escaped forms). */
size_t redactor_count(const struct redactor *r);
/* Wipe and free.  Accepts NULL; returns NULL. */
struct redactor *redactor_free(struct redactor *r);

/* Serialize r (names and values) for another process (the log relay):
 * *ret is sodium_malloc'd (free with sodium_free), *ret_len its length.
 * Returns 0 or -ENOMEM. */
int redactor_serialize(const struct redactor *r, uint8_t **ret, size_t *ret_len);
/* The redactor serialized in blob.  Returns 0, -EBADMSG or -ENOMEM. */
int redactor_deserialize(const uint8_t *blob, size_t len, struct redactor **ret);

/* Redact text (len bytes).  Returns 0 when nothing matched (*ret
 * untouched), 1 with *ret (malloc'd, NUL-terminated) and *ret_len, or
 * -ENOMEM.  r may be NULL (nothing to hide). */
int redact_text(const struct redactor *r, const char *text, size_t len, char **ret, size_t *ret_len);

/* A stream: redact_stream_feed() writes through emit what is certainly
 * not part of a value and holds back at most (longest form - 1) bytes
 * that might begin one, until the next feed or redact_stream_finish().
 * emit returns 0 or a negative errno (which the call returns). */
typedef int (*redact_emit_fn)(void *ctx, const char *data, size_t len);
int redact_stream_new(const struct redactor *r, redact_emit_fn emit, void *ctx, struct redact_stream **ret);
int redact_stream_feed(struct redact_stream *s, const char *data, size_t len);
/* Emit what is held back (the end of the stream).  Returns 0 or emit's error. */
int redact_stream_finish(struct redact_stream *s);
/* Bytes held back now. */
size_t redact_stream_pending(const struct redact_stream *s);
/* Free (held-back bytes are wiped, not emitted).  Accepts NULL; returns NULL. */
struct redact_stream *redact_stream_free(struct redact_stream *s);

/* ---- the process-wide redactor ---- */

/* Replace the process-wide redactor by r (owned from now; NULL: hide
 * nothing).  The previous one is freed once no reader holds it. */
void redact_global_set(struct redactor *r);
/* redact_text() with the process-wide redactor.  Thread-safe. */
int redact_global_text(const char *text, size_t len, char **ret, size_t *ret_len);
/* For a NUL-terminated string: returns text itself when nothing matched,
 * else a redacted malloc'd copy stored in *tofree (free it; NULL when
 * text is returned).  On -ENOMEM returns a fixed "[redacted: out of
 * memory]" rather than the unredacted text. */
const char *redact_global_str(const char *text, char **tofree);
/* A copy of the process-wide redactor's values, for a relay.  Returns 0
 * with *ret (NULL when it is empty), or -ENOMEM. */
int redact_global_copy(struct redactor **ret);

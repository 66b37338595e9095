/* http-internal.h - shared by the files of src/http, not part of the API
 * (that is parser.h): the byte classes that head.c and body.c test on every
 * byte, as static inline helpers so that their hot loops keep them inlined,
 * and the table of methods that head.c looks the request method up in
 * (names.c holds both tables).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/parser-t.h"

/* ---- character classes ------------------------------------------------ */

enum {
	C_TCHAR = 1u << 0, /* token character (RFC 9110 5.6.2) */
	C_VCHAR = 1u << 1, /* 0x21-0x7e: request-target bytes */
	C_FIELD = 1u << 2, /* field-value / reason-phrase byte: HTAB SP VCHAR obs-text */
	C_HEX = 1u << 3,
	C_DIGIT = 1u << 4,
	C_HOST = 1u << 5,   /* reg-name: unreserved / sub-delims (pct-encoding apart) */
	C_QDTEXT = 1u << 6, /* quoted-string text, without '"' and '\' */
};

#define CC_ALPHA(c) (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z'))
#define CC_DIGIT(c) ((c) >= '0' && (c) <= '9')

/* The C_* classes of each byte (names.c).  Hidden: the table is only ever
 * read from inside the binary, so the hot loops address it directly. */
extern const uint8_t http_char_class[256] __attribute__((visibility("hidden")));

static inline bool is_class(unsigned char c, uint8_t cls)
{
	return (http_char_class[c] & cls) != 0;
}

/* The value of a hex digit c (one that is_class(c, C_HEX)). */
static inline unsigned hex_value(unsigned char c)
{
	if (c <= '9')
		return c - '0';
	return (unsigned)(c | 0x20) - 'a' + 10;
}

static inline bool is_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* Case-insensitive comparison of s[0..n) with the NUL-terminated literal
 * lit, which must be lower-case letters, digits and '-' (all our field
 * names, codings and tokens).  `| 0x20` folds only A-Z onto a-z among the
 * bytes a validated field name or value can hold, so no libc call. */
static inline bool bytes_eq_nocase(const char *s, size_t n, const char *lit)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!lit[i] || (unsigned char)(s[i] | 0x20) != (unsigned char)lit[i])
			return false;
	return lit[i] == 0;
}

/* ---- methods ------------------------------------------------------------ */

/* The longest method name http_method_lookup() knows: a longer method token
 * is refused before it ends. */
#define HTTP_MAX_METHOD_LEN 17u

/* Methods are case-sensitive (RFC 9110 9.1).  Accepts s[0..n), any bytes.
 * Returns true and sets *id (HTTP_METHOD_OTHER for a known method without
 * an id of its own) when s[0..n) is a method we accept; false, *id
 * untouched, for any other. */
bool http_method_lookup(const char *s, size_t n, enum http_method *id);

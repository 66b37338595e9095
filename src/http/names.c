/* names.c - the tables the files of the HTTP parser share, and the name
 * helpers of parser.h.
 *
 * The byte classes that head.c and body.c test each byte against are one
 * table, computed at compile time (the inline tests on it are in
 * http-internal.h); so is the list of methods the request line accepts.
 * http_method_name(), http_status_reason() and http_slice_eq() are lookups
 * for the parser's callers (the proxy, the admin API).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "http/http-internal.h"
#include "http/parser.h"

/* ---- character classes ------------------------------------------------ */

/* CC_ALPHA and CC_DIGIT are in http-internal.h: head.c uses them too. */
#define CC_HEX(c) (CC_DIGIT(c) || ((c) >= 'a' && (c) <= 'f') || ((c) >= 'A' && (c) <= 'F'))
#define CC_VCHAR(c) ((c) >= 0x21 && (c) <= 0x7e)
#define CC_TSPECIAL_OK(c)                                                                            \
	((c) == '!' || (c) == '#' || (c) == '$' || (c) == '%' || (c) == '&' || (c) == '\'' ||         \
	 (c) == '*' || (c) == '+' || (c) == '-' || (c) == '.' || (c) == '^' || (c) == '_' ||          \
	 (c) == '`' || (c) == '|' || (c) == '~')
#define CC_TCHAR(c) (CC_ALPHA(c) || CC_DIGIT(c) || CC_TSPECIAL_OK(c))
#define CC_FIELD(c) ((c) == '\t' || ((c) >= 0x20 && (c) != 0x7f))
#define CC_SUBDELIM(c)                                                                               \
	((c) == '!' || (c) == '$' || (c) == '&' || (c) == '\'' || (c) == '(' || (c) == ')' ||         \
	 (c) == '*' || (c) == '+' || (c) == ',' || (c) == ';' || (c) == '=')
#define CC_UNRESERVED(c) (CC_ALPHA(c) || CC_DIGIT(c) || (c) == '-' || (c) == '.' || (c) == '_' || (c) == '~')
#define CC_HOST(c) (CC_UNRESERVED(c) || CC_SUBDELIM(c))
#define CC_QDTEXT(c) ((c) == '\t' || (c) == ' ' || (c) == 0x21 || ((c) >= 0x23 && (c) <= 0x5b) || \
		      ((c) >= 0x5d && (c) <= 0x7e) || (c) >= 0x80)

#define CC(c)                                                                                        \
	(uint8_t)((CC_TCHAR(c) ? C_TCHAR : 0) | (CC_VCHAR(c) ? C_VCHAR : 0) |                         \
		  (CC_FIELD(c) ? C_FIELD : 0) | (CC_HEX(c) ? C_HEX : 0) | (CC_DIGIT(c) ? C_DIGIT : 0) | \
		  (CC_HOST(c) ? C_HOST : 0) | (CC_QDTEXT(c) ? C_QDTEXT : 0))
#define CC_ROW(b)                                                                                    \
	CC((b) + 0), CC((b) + 1), CC((b) + 2), CC((b) + 3), CC((b) + 4), CC((b) + 5), CC((b) + 6),    \
		CC((b) + 7), CC((b) + 8), CC((b) + 9), CC((b) + 10), CC((b) + 11), CC((b) + 12),      \
		CC((b) + 13), CC((b) + 14), CC((b) + 15)

const uint8_t http_char_class[256] = {
	CC_ROW(0x00), CC_ROW(0x10), CC_ROW(0x20), CC_ROW(0x30), CC_ROW(0x40), CC_ROW(0x50),
	CC_ROW(0x60), CC_ROW(0x70), CC_ROW(0x80), CC_ROW(0x90), CC_ROW(0xa0), CC_ROW(0xb0),
	CC_ROW(0xc0), CC_ROW(0xd0), CC_ROW(0xe0), CC_ROW(0xf0),
};

/* ---- methods ------------------------------------------------------------ */

/* Registered methods (IANA HTTP Method Registry) plus the few unregistered
 * ones proxies commonly see.  Anything else is answered 501 (RFC 9110 9.1):
 * an unknown token cannot be routed meaningfully and only widens what a
 * backend may interpret differently. */
#define KNOWN(name, id) { name, sizeof(name) - 1, id }
static const struct {
	const char *name;
	size_t len;
	enum http_method id;
} known_methods[] = {
	KNOWN("GET", HTTP_METHOD_GET),
	KNOWN("HEAD", HTTP_METHOD_HEAD),
	KNOWN("POST", HTTP_METHOD_POST),
	KNOWN("PUT", HTTP_METHOD_PUT),
	KNOWN("DELETE", HTTP_METHOD_DELETE),
	KNOWN("PATCH", HTTP_METHOD_PATCH),
	KNOWN("OPTIONS", HTTP_METHOD_OPTIONS),
	KNOWN("CONNECT", HTTP_METHOD_CONNECT),
	KNOWN("TRACE", HTTP_METHOD_TRACE),
	KNOWN("ACL", HTTP_METHOD_OTHER),
	KNOWN("BASELINE-CONTROL", HTTP_METHOD_OTHER),
	KNOWN("BIND", HTTP_METHOD_OTHER),
	KNOWN("CHECKIN", HTTP_METHOD_OTHER),
	KNOWN("CHECKOUT", HTTP_METHOD_OTHER),
	KNOWN("COPY", HTTP_METHOD_OTHER),
	KNOWN("LABEL", HTTP_METHOD_OTHER),
	KNOWN("LINK", HTTP_METHOD_OTHER),
	KNOWN("LOCK", HTTP_METHOD_OTHER),
	KNOWN("MERGE", HTTP_METHOD_OTHER),
	KNOWN("MKACTIVITY", HTTP_METHOD_OTHER),
	KNOWN("MKCALENDAR", HTTP_METHOD_OTHER),
	KNOWN("MKCOL", HTTP_METHOD_OTHER),
	KNOWN("MKREDIRECTREF", HTTP_METHOD_OTHER),
	KNOWN("MKWORKSPACE", HTTP_METHOD_OTHER),
	KNOWN("MOVE", HTTP_METHOD_OTHER),
	KNOWN("ORDERPATCH", HTTP_METHOD_OTHER),
	KNOWN("PROPFIND", HTTP_METHOD_OTHER),
	KNOWN("PROPPATCH", HTTP_METHOD_OTHER),
	KNOWN("QUERY", HTTP_METHOD_OTHER),
	KNOWN("REBIND", HTTP_METHOD_OTHER),
	KNOWN("REPORT", HTTP_METHOD_OTHER),
	KNOWN("SEARCH", HTTP_METHOD_OTHER),
	KNOWN("UNBIND", HTTP_METHOD_OTHER),
	KNOWN("UNCHECKOUT", HTTP_METHOD_OTHER),
	KNOWN("UNLINK", HTTP_METHOD_OTHER),
	KNOWN("UNLOCK", HTTP_METHOD_OTHER),
	KNOWN("UPDATE", HTTP_METHOD_OTHER),
	KNOWN("UPDATEREDIRECTREF", HTTP_METHOD_OTHER),
	KNOWN("VERSION-CONTROL", HTTP_METHOD_OTHER),
	/* unregistered but common */
	KNOWN("PURGE", HTTP_METHOD_OTHER),
	KNOWN("NOTIFY", HTTP_METHOD_OTHER),
	KNOWN("SUBSCRIBE", HTTP_METHOD_OTHER),
	KNOWN("UNSUBSCRIBE", HTTP_METHOD_OTHER),
	KNOWN("SOURCE", HTTP_METHOD_OTHER),
};

static const char *const method_names[HTTP_METHOD__COUNT] = {
	[HTTP_METHOD_OTHER] = "OTHER",     [HTTP_METHOD_GET] = "GET",
	[HTTP_METHOD_HEAD] = "HEAD",       [HTTP_METHOD_POST] = "POST",
	[HTTP_METHOD_PUT] = "PUT",         [HTTP_METHOD_DELETE] = "DELETE",
	[HTTP_METHOD_PATCH] = "PATCH",     [HTTP_METHOD_OPTIONS] = "OPTIONS",
	[HTTP_METHOD_CONNECT] = "CONNECT", [HTTP_METHOD_TRACE] = "TRACE",
};

/* See http-internal.h. */
bool http_method_lookup(const char *s, size_t n, enum http_method *id)
{
	for (size_t i = 0; i < sizeof(known_methods) / sizeof(known_methods[0]); i++) {
		if (known_methods[i].len == n && memcmp(known_methods[i].name, s, n) == 0) {
			*id = known_methods[i].id;
			return true;
		}
	}
	return false;
}

/* ---- helpers ------------------------------------------------------------ */

/* See parser.h. */
const char *http_method_name(enum http_method m)
{
	if ((unsigned)m >= HTTP_METHOD__COUNT)
		return "OTHER";
	return method_names[m];
}

/* See parser.h. */
const char *http_status_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 103: return "Early Hints";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 203: return "Non-Authoritative Information";
	case 204: return "No Content";
	case 205: return "Reset Content";
	case 206: return "Partial Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 305: return "Use Proxy";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 402: return "Payment Required";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 407: return "Proxy Authentication Required";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 416: return "Range Not Satisfiable";
	case 417: return "Expectation Failed";
	case 421: return "Misdirected Request";
	case 422: return "Unprocessable Content";
	case 425: return "Too Early";
	case 426: return "Upgrade Required";
	case 428: return "Precondition Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

/* Returns 1 when equal (ASCII case-insensitive), else 0. */
int http_slice_eq(const char *buf, struct http_slice s, const char *str)
{
	return bytes_eq_nocase(buf + s.off, s.len, str) ? 1 : 0;
}

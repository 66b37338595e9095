/* parser.c - strict HTTP/1.1 message parser (RFC 9112, RFC 9110).
 *
 * Bytes from clients and upstreams are interpreted here.  Heads are parsed
 * in one pass over the caller's buffer, line by line: each complete line is
 * checked at once (characters, then the meaning of the field it holds), so
 * a bad or oversized head is refused while it is still arriving, and an
 * incomplete head costs one linear re-scan per call.  Nothing is copied or allocated;
 * results are offsets into the buffer.  Bodies are framed by a byte-at-a-time
 * state machine (struct http_body) that never consumes a byte it has not
 * validated and never reads past the end of the message.
 *
 * Policy: anything two implementations could read differently is rejected,
 * never repaired.  Beyond RFC 9112 we also refuse: unregistered methods
 * (501), Content-Length lists and duplicates even when equal, any transfer
 * coding other than a single "chunked" (a lone unknown coding in a request
 * is 501, everything else 400), Transfer-Encoding in HTTP/1.0 messages,
 * content in CONNECT requests, asterisk-form except with OPTIONS, a
 * Connection header that names Content-Length or Host, whitespace anywhere
 * in a chunk-size line outside quoted strings, and trailer fields that
 * would change framing or routing (Content-Length, Transfer-Encoding, Host,
 * and the connection-level fields).  Errors in a response head or body
 * carry status 502.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "http/parser.h"

/* Used when limits is NULL or a limit is 0. */
#define HTTP_DEFAULT_MAX_HEAD_BYTES 32768u
#define HTTP_DEFAULT_MAX_TARGET_BYTES 8192u
/* A chunk-size line, extensions included. */
#define HTTP_MAX_CHUNK_LINE 4096u
/* Hex digits in a chunk-size: 16 fill a uint64_t. */
#define HTTP_MAX_CHUNK_DIGITS 16u

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

static const uint8_t char_class[256] = {
	CC_ROW(0x00), CC_ROW(0x10), CC_ROW(0x20), CC_ROW(0x30), CC_ROW(0x40), CC_ROW(0x50),
	CC_ROW(0x60), CC_ROW(0x70), CC_ROW(0x80), CC_ROW(0x90), CC_ROW(0xa0), CC_ROW(0xb0),
	CC_ROW(0xc0), CC_ROW(0xd0), CC_ROW(0xe0), CC_ROW(0xf0),
};

static inline bool is_class(unsigned char c, uint8_t cls)
{
	return (char_class[c] & cls) != 0;
}

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

/* Whether any of the 8 bytes of w is < 0x20 or is 0x7f: the bytes that end
 * or may invalidate a field value (CR, LF, HTAB, NUL, other controls, DEL).
 * The classic "has byte less than" and "has zero byte" bit tricks. */
static inline bool word_has_ctl(uint64_t w)
{
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	uint64_t x = w ^ (0x7f * ones);

	return (((w - 0x20 * ones) & ~w) | ((x - ones) & ~x)) & highs;
}

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
/* Longest name above: a longer method token is refused before it ends. */
#define HTTP_MAX_METHOD_LEN 17u

static const char *const method_names[HTTP_METHOD__COUNT] = {
	[HTTP_METHOD_OTHER] = "OTHER",     [HTTP_METHOD_GET] = "GET",
	[HTTP_METHOD_HEAD] = "HEAD",       [HTTP_METHOD_POST] = "POST",
	[HTTP_METHOD_PUT] = "PUT",         [HTTP_METHOD_DELETE] = "DELETE",
	[HTTP_METHOD_PATCH] = "PATCH",     [HTTP_METHOD_OPTIONS] = "OPTIONS",
	[HTTP_METHOD_CONNECT] = "CONNECT", [HTTP_METHOD_TRACE] = "TRACE",
};

/* Methods are case-sensitive (RFC 9110 9.1).  Returns true and *id when
 * s[0..n) is a known method. */
static bool method_lookup(const char *s, size_t n, enum http_method *id)
{
	for (size_t i = 0; i < sizeof(known_methods) / sizeof(known_methods[0]); i++) {
		if (known_methods[i].len == n && memcmp(known_methods[i].name, s, n) == 0) {
			*id = known_methods[i].id;
			return true;
		}
	}
	return false;
}

/* ---- shared head state ------------------------------------------------- */

/* Field names the parser gives a meaning to. */
enum field_kind {
	F_OTHER,
	F_HOST,
	F_CONTENT_LENGTH,
	F_TRANSFER_ENCODING,
	F_CONNECTION,
	F_HOP,     /* Keep-Alive, TE, Trailer, Proxy-Connection */
	F_UPGRADE,
	F_EXPECT,
	F_XFF,
	F_XF_OTHER,
	F_REQUEST_ID,
};

/* bytes_eq_nocase() for a field name (n == strlen(lit) checked by the
 * caller's switch), 8 bytes at a time: OR-ing 0x20 into a tchar folds A-Z
 * onto a-z and turns only '^' and '_' into '~' and DEL, which no literal
 * holds, so a match is exact. */
static inline bool name_eq(const char *s, size_t n, const char *lit)
{
	const uint64_t fold = 0x2020202020202020ull;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t a, b;
		memcpy(&a, s + i, 8);
		memcpy(&b, lit + i, 8);
		if ((a | fold) != b)
			return false;
	}
	for (; i < n; i++)
		if ((unsigned char)(s[i] | 0x20) != (unsigned char)lit[i])
			return false;
	return true;
}

static enum field_kind field_kind(const char *name, size_t n)
{
	switch (n) {
	case 2:
		if (name_eq(name, n, "te"))
			return F_HOP;
		break;
	case 4:
		if (name_eq(name, n, "host"))
			return F_HOST;
		break;
	case 6:
		if (name_eq(name, n, "expect"))
			return F_EXPECT;
		break;
	case 7:
		if (name_eq(name, n, "trailer"))
			return F_HOP;
		if (name_eq(name, n, "upgrade"))
			return F_UPGRADE;
		break;
	case 10:
		if (name_eq(name, n, "connection"))
			return F_CONNECTION;
		if (name_eq(name, n, "keep-alive"))
			return F_HOP;
		break;
	case 12:
		if (name_eq(name, n, "x-request-id"))
			return F_REQUEST_ID;
		break;
	case 14:
		if (name_eq(name, n, "content-length"))
			return F_CONTENT_LENGTH;
		break;
	case 15:
		if (name_eq(name, n, "x-forwarded-for"))
			return F_XFF;
		break;
	case 16:
		if (name_eq(name, n, "proxy-connection"))
			return F_HOP;
		if (name_eq(name, n, "x-forwarded-host"))
			return F_XF_OTHER;
		break;
	case 17:
		if (name_eq(name, n, "transfer-encoding"))
			return F_TRANSFER_ENCODING;
		if (name_eq(name, n, "x-forwarded-proto"))
			return F_XF_OTHER;
		break;
	default:
		break;
	}
	return F_OTHER;
}

enum head_phase {
	PH_LEADING, /* empty lines before the start line */
	PH_START,   /* request-line / status-line */
	PH_FIELDS,
};

struct head {
	const char *buf;
	size_t end;           /* scan limit: min(len, max_head_bytes) */
	bool over_limit;      /* len > max_head_bytes: an incomplete head is too large */
	bool is_request;
	uint8_t version_minor;
	enum http_method method_id;
	enum head_phase phase;
	struct http_header *headers;
	uint32_t nheaders;
	/* what the fields said so far */
	int cl_index, te_index, host_index;
	uint64_t content_length;
	bool te_chunked;
	bool conn_close, conn_keep_alive, conn_upgrade;
	bool has_connection, has_upgrade, expect_continue;
	bool conn_names_fields; /* a Connection token other than close/keep-alive/upgrade */
	struct http_error *err;
};

static int head_fail(struct head *h, uint16_t status, const char *reason, size_t offset)
{
	if (h->err) {
		h->err->status = status;
		h->err->reason = reason;
		h->err->offset = offset;
	}
	return -EBADMSG;
}

/* The head could not be completed within buf[0..end).  Returns 0 when more
 * bytes may complete it, or the size error when the limit is the cause: 414
 * while the request line is still unfinished, else 431. */
static int head_incomplete(struct head *h)
{
	if (!h->over_limit)
		return 0;
	if (h->is_request && h->phase == PH_START)
		return head_fail(h, 414, "request line longer than the head limit", h->end);
	return head_fail(h, 431, "header section too large", h->end);
}

/* Skip the empty lines RFC 9112 2.2 allows before a start line.
 * Returns 1 (*pos at the start line), 0 (incomplete) or -EBADMSG. */
static int skip_leading_lines(struct head *h, size_t *pos)
{
	size_t p = *pos;
	for (;;) {
		if (p >= h->end)
			return 0;
		if (h->buf[p] == '\n')
			return head_fail(h, 400, "bare LF before the start line", p);
		if (h->buf[p] != '\r')
			break;
		if (p + 1 >= h->end)
			return 0;
		if (h->buf[p + 1] != '\n')
			return head_fail(h, 400, "bare CR before the start line", p);
		p += 2;
	}
	*pos = p;
	return 1;
}

/* Match "HTTP/" DIGIT "." DIGIT at *pos, byte by byte so that a wrong
 * version is refused before it is complete.  Returns 1 (*pos after it),
 * 0 (incomplete) or -EBADMSG (400, or 505 for a well-formed version other
 * than 1.0 / 1.1). */
static int parse_version(struct head *h, size_t *pos)
{
	static const char pattern[] = "HTTP/0.0";
	size_t p = *pos;
	for (size_t i = 0; i < 8; i++) {
		if (p + i >= h->end)
			return 0;
		unsigned char c = (unsigned char)h->buf[p + i];
		bool ok = pattern[i] == '0' ? is_class(c, C_DIGIT) : c == (unsigned char)pattern[i];
		if (!ok)
			return head_fail(h, 400, "malformed HTTP version", p + i);
	}
	if (h->buf[p + 5] != '1' || (h->buf[p + 7] != '0' && h->buf[p + 7] != '1'))
		return head_fail(h, 505, "unsupported HTTP version", p);
	h->version_minor = (uint8_t)(h->buf[p + 7] - '0');
	*pos = p + 8;
	return 1;
}

/* Expect CRLF at *pos.  Returns 1 (*pos after it), 0 or -EBADMSG. */
static int parse_crlf(struct head *h, size_t *pos, const char *reason)
{
	size_t p = *pos;
	if (p >= h->end)
		return 0;
	if (h->buf[p] != '\r')
		return head_fail(h, 400, reason, p);
	if (p + 1 >= h->end)
		return 0;
	if (h->buf[p + 1] != '\n')
		return head_fail(h, 400, "bare CR", p);
	*pos = p + 2;
	return 1;
}

/* uri-host [ ":" port ] (RFC 9110 7.2, RFC 3986 3.2.2).  Stricter than the
 * RFC: the host must not be empty, and a port, when its colon is present,
 * must be 1 to 5 digits up to 65535.  With need_port (CONNECT's
 * authority-form) the port is required. */
static bool authority_valid(const char *s, size_t n, bool need_port)
{
	size_t i = 0;
	if (n == 0)
		return false;
	if (s[0] == '[') {
		/* IP-literal: IPv6address or IPvFuture; checked for its alphabet only */
		for (i = 1; i < n && s[i] != ']'; i++) {
			unsigned char c = (unsigned char)s[i];
			if (!is_class(c, C_HOST) && c != ':')
				return false;
		}
		if (i >= n || i == 1)
			return false;
		i++;
	} else {
		while (i < n && s[i] != ':') {
			unsigned char c = (unsigned char)s[i];
			if (c == '%') {
				if (i + 2 >= n || !is_class((unsigned char)s[i + 1], C_HEX) ||
				    !is_class((unsigned char)s[i + 2], C_HEX))
					return false;
				i += 3;
				continue;
			}
			if (!is_class(c, C_HOST))
				return false;
			i++;
		}
		if (i == 0)
			return false;
	}
	if (i == n)
		return !need_port;
	if (s[i] != ':')
		return false;
	i++;
	size_t digits = n - i;
	if (digits == 0 || digits > 5)
		return false;
	uint32_t port = 0;
	for (; i < n; i++) {
		if (!is_class((unsigned char)s[i], C_DIGIT))
			return false;
		port = port * 10 + (uint32_t)(s[i] - '0');
	}
	return port <= 65535;
}

/* The request-target's form must suit the method (RFC 9112 3.2):
 * authority-form for CONNECT only, asterisk-form for OPTIONS only,
 * otherwise origin-form ("/...") or absolute-form ("scheme:..."). */
static bool target_form_valid(const char *t, size_t n, enum http_method m)
{
	if (m == HTTP_METHOD_CONNECT)
		return authority_valid(t, n, true);
	if (t[0] == '/')
		return true;
	if (n == 1 && t[0] == '*')
		return m == HTTP_METHOD_OPTIONS;
	if (!CC_ALPHA(t[0]))
		return false;
	for (size_t i = 1; i < n; i++) {
		unsigned char c = (unsigned char)t[i];
		if (c == ':')
			return true;
		if (!CC_ALPHA(c) && !CC_DIGIT(c) && c != '+' && c != '-' && c != '.')
			return false;
	}
	return false;
}

/* RFC 9112 3.2.2: with an absolute-form target ("http://host/path") the
 * authority, not the Host field, names the host.  Rather than choose
 * between two hosts, refuse a request whose Host differs from it: a proxy
 * must never route by one and let the backend see the other.  Only the
 * http and https schemes are accepted in absolute form. */
static int absolute_form_check(struct head *h, const struct http_request *req)
{
	const char *t = h->buf + req->target.off, *a, *end = t + req->target.len;
	size_t alen;

	if (req->target.len == 0 || t[0] == '/' || h->method_id == HTTP_METHOD_CONNECT ||
	    (req->target.len == 1 && t[0] == '*'))
		return 0;
	if (req->target.len > 7 && bytes_eq_nocase(t, 7, "http://"))
		a = t + 7;
	else if (req->target.len > 8 && bytes_eq_nocase(t, 8, "https://"))
		a = t + 8;
	else
		return head_fail(h, 400, "absolute-form target with a scheme other than http(s)", req->target.off);
	for (alen = 0; a + alen < end && a[alen] != '/' && a[alen] != '?' && a[alen] != '#'; alen++)
		;
	if (memchr(a, '@', alen))
		return head_fail(h, 400, "userinfo in the request-target", req->target.off);
	if (!authority_valid(a, alen, false))
		return head_fail(h, 400, "invalid authority in the request-target", req->target.off);
	if (h->host_index >= 0) {
		const struct http_header *hf = &h->headers[h->host_index];
		if (hf->value.len != alen || strncasecmp(h->buf + hf->value.off, a, alen) != 0)
			return head_fail(h, 400, "Host differs from the request-target authority", hf->value.off);
	}
	return 0;
}

/* method SP request-target SP HTTP-version CRLF.
 * Returns 1 (*pos after the CRLF), 0 (incomplete) or -EBADMSG. */
static int parse_request_line(struct head *h, size_t *pos, const struct http_limits *limits,
			      struct http_request *req)
{
	const char *b = h->buf;
	size_t p = *pos;
	size_t m = p;
	int r;

	while (p < h->end && is_class((unsigned char)b[p], C_TCHAR)) {
		p++;
		if (p - m > HTTP_MAX_METHOD_LEN)
			return head_fail(h, 501, "method not implemented", m);
	}
	if (p >= h->end)
		return 0;
	if (b[p] != ' ')
		return head_fail(h, 400, p == m ? "malformed request line" : "invalid character in method", p);
	if (p == m)
		return head_fail(h, 400, "empty method", p);
	if (!method_lookup(b + m, p - m, &h->method_id))
		return head_fail(h, 501, "method not implemented", m);
	req->method = (struct http_slice){ (uint32_t)m, (uint32_t)(p - m) };
	req->method_id = h->method_id;
	p++;

	size_t t = p;
	while (p < h->end && is_class((unsigned char)b[p], C_VCHAR)) {
		p++;
		if (p - t > limits->max_target_bytes)
			return head_fail(h, 414, "request-target too long", t);
	}
	if (p >= h->end)
		return 0;
	if (b[p] != ' ')
		return head_fail(h, 400, p == t ? "empty request-target" : "invalid character in request-target", p);
	if (p == t)
		return head_fail(h, 400, "empty request-target", p);
	if (!target_form_valid(b + t, p - t, h->method_id))
		return head_fail(h, 400, "request-target form not allowed", t);
	req->target = (struct http_slice){ (uint32_t)t, (uint32_t)(p - t) };
	p++;

	r = parse_version(h, &p);
	if (r <= 0)
		return r;
	r = parse_crlf(h, &p, "expected CRLF after the HTTP version");
	if (r <= 0)
		return r;
	*pos = p;
	return 1;
}

/* HTTP-version SP 3DIGIT [ SP reason-phrase ] CRLF.  The space before an
 * empty reason phrase may be missing: harmless, and common.
 * Returns 1 (*pos after the CRLF), 0 (incomplete) or -EBADMSG. */
static int parse_status_line(struct head *h, size_t *pos, struct http_response *resp)
{
	const char *b = h->buf;
	size_t p = *pos;
	int r = parse_version(h, &p);
	if (r <= 0)
		return r;
	if (p >= h->end)
		return 0;
	if (b[p] != ' ')
		return head_fail(h, 400, "expected SP after the HTTP version", p);
	p++;
	unsigned status = 0;
	for (int i = 0; i < 3; i++, p++) {
		if (p >= h->end)
			return 0;
		if (!is_class((unsigned char)b[p], C_DIGIT))
			return head_fail(h, 400, "malformed status code", p);
		status = status * 10 + (unsigned)(b[p] - '0');
	}
	if (status < 100 || status > 599)
		return head_fail(h, 400, "status code out of range", p - 3);
	resp->status = (uint16_t)status;
	if (p >= h->end)
		return 0;
	size_t rs = p;
	if (b[p] == ' ') {
		rs = ++p;
		for (;;) {
			if (p >= h->end)
				return 0;
			unsigned char c = (unsigned char)b[p];
			if (c == '\r')
				break;
			if (!is_class(c, C_FIELD))
				return head_fail(h, 400, c == '\n' ? "bare LF" : "invalid character in reason phrase", p);
			p++;
		}
	}
	resp->reason = (struct http_slice){ (uint32_t)rs, (uint32_t)(p - rs) };
	r = parse_crlf(h, &p, "expected CRLF after the status line");
	if (r <= 0)
		return r;
	*pos = p;
	return 1;
}

/* Content-Length = 1*DIGIT: no sign, no list, no whitespace inside. */
static int content_length_value(struct head *h, const struct http_header *f)
{
	const char *v = h->buf + f->value.off;
	uint64_t n = 0;
	if (f->value.len == 0)
		return head_fail(h, 400, "empty Content-Length", f->value.off);
	for (uint32_t i = 0; i < f->value.len; i++) {
		unsigned char c = (unsigned char)v[i];
		if (!is_class(c, C_DIGIT))
			return head_fail(h, 400, "invalid Content-Length", f->value.off + i);
		if (n > (UINT64_MAX - 9) / 10)
			return head_fail(h, 400, "Content-Length overflow", f->value.off + i);
		n = n * 10 + (c - '0');
	}
	h->content_length = n;
	return 0;
}

/* Is the (OWS-stripped) value a single token? */
static bool value_is_token(const char *v, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_class((unsigned char)v[i], C_TCHAR))
			return false;
	return true;
}

/* Walk the elements of a comma-separated list of tokens ("#token").
 * Empty elements are skipped (RFC 9110 5.6.1.2); anything else that is not
 * a token fails.  On success returns 1 and the next token in *tok / *tok_len,
 * 0 at the end, -1 on a malformed list; *i is the cursor. */
static int list_next_token(const char *v, size_t n, size_t *i, size_t *tok, size_t *tok_len)
{
	size_t p = *i;
	for (;;) {
		while (p < n && is_ows((unsigned char)v[p]))
			p++;
		if (p >= n) {
			*i = p;
			return 0;
		}
		if (v[p] == ',') {
			p++;
			continue;
		}
		size_t s = p;
		while (p < n && is_class((unsigned char)v[p], C_TCHAR))
			p++;
		if (p == s)
			return -1;
		size_t e = p;
		while (p < n && is_ows((unsigned char)v[p]))
			p++;
		if (p < n && v[p] != ',')
			return -1;
		if (p < n)
			p++;
		*tok = s;
		*tok_len = e - s;
		*i = p;
		return 1;
	}
}

/* Give meaning to field f as soon as its line is complete, so that
 * conflicts are caught while the head is still arriving. */
static int field_complete(struct head *h, struct http_header *f, int index)
{
	const char *name = h->buf + f->name.off;
	const char *v = h->buf + f->value.off;
	size_t vlen = f->value.len;
	int r;

	switch (field_kind(name, f->name.len)) {
	case F_HOST:
		f->flags |= HTTP_HDR_HOST;
		if (!h->is_request)
			break;
		if (h->host_index >= 0)
			return head_fail(h, 400, "more than one Host", f->name.off);
		if (!authority_valid(v, vlen, false))
			return head_fail(h, 400, "invalid Host", f->value.off);
		h->host_index = index;
		break;
	case F_CONTENT_LENGTH:
		f->flags |= HTTP_HDR_CL;
		if (h->cl_index >= 0)
			return head_fail(h, 400, "more than one Content-Length", f->name.off);
		if (h->te_index >= 0)
			return head_fail(h, 400, "both Content-Length and Transfer-Encoding", f->name.off);
		r = content_length_value(h, f);
		if (r < 0)
			return r;
		h->cl_index = index;
		break;
	case F_TRANSFER_ENCODING:
		f->flags |= HTTP_HDR_TE | HTTP_HDR_HOP;
		if (h->te_index >= 0)
			return head_fail(h, 400, "more than one Transfer-Encoding", f->name.off);
		if (h->cl_index >= 0)
			return head_fail(h, 400, "both Content-Length and Transfer-Encoding", f->name.off);
		if (h->version_minor == 0)
			return head_fail(h, 400, "Transfer-Encoding in an HTTP/1.0 message", f->name.off);
		if (!bytes_eq_nocase(v, vlen, "chunked")) {
			if (h->is_request && value_is_token(v, vlen))
				return head_fail(h, 501, "transfer coding not implemented", f->value.off);
			return head_fail(h, 400, "Transfer-Encoding is not exactly chunked", f->value.off);
		}
		h->te_index = index;
		h->te_chunked = true;
		break;
	case F_CONNECTION: {
		size_t i = 0, tok, tok_len;
		f->flags |= HTTP_HDR_HOP;
		h->has_connection = true;
		while ((r = list_next_token(v, vlen, &i, &tok, &tok_len)) > 0) {
			const char *t = v + tok;
			if (bytes_eq_nocase(t, tok_len, "close"))
				h->conn_close = true;
			else if (bytes_eq_nocase(t, tok_len, "keep-alive"))
				h->conn_keep_alive = true;
			else if (bytes_eq_nocase(t, tok_len, "upgrade"))
				h->conn_upgrade = true;
			else if (bytes_eq_nocase(t, tok_len, "content-length") || bytes_eq_nocase(t, tok_len, "host"))
				return head_fail(h, 400, "Connection names an end-to-end field", f->value.off + tok);
			else
				h->conn_names_fields = true;
		}
		if (r < 0)
			return head_fail(h, 400, "invalid Connection", f->value.off);
		break;
	}
	case F_HOP:
		f->flags |= HTTP_HDR_HOP;
		break;
	case F_UPGRADE:
		f->flags |= HTTP_HDR_UPGRADE | HTTP_HDR_HOP;
		h->has_upgrade = true;
		break;
	case F_EXPECT:
		f->flags |= HTTP_HDR_EXPECT;
		if (bytes_eq_nocase(v, vlen, "100-continue"))
			h->expect_continue = true;
		break;
	case F_XFF:
		f->flags |= HTTP_HDR_XFF;
		break;
	case F_XF_OTHER:
		f->flags |= HTTP_HDR_XF_OTHER;
		break;
	case F_REQUEST_ID:
		f->flags |= HTTP_HDR_REQUEST_ID;
		break;
	case F_OTHER:
		break;
	}
	return 0;
}

/* Header field lines up to and including the empty line (RFC 9112 5).
 * Returns 1 (*pos after the empty line), 0 (incomplete) or -EBADMSG. */
static int parse_fields(struct head *h, size_t *pos)
{
	const char *b = h->buf;
	size_t p = *pos;
	int r;

	for (;;) {
		if (p >= h->end)
			return 0;
		unsigned char c = (unsigned char)b[p];
		if (c == '\r') {
			if (p + 1 >= h->end)
				return 0;
			if (b[p + 1] != '\n')
				return head_fail(h, 400, "bare CR", p);
			*pos = p + 2;
			return 1;
		}
		if (c == '\n')
			return head_fail(h, 400, "bare LF", p);
		if (is_ows(c))
			return head_fail(h, 400, "obs-fold or whitespace at the start of a field line", p);
		if (h->nheaders >= HTTP_MAX_HEADERS)
			return head_fail(h, 431, "too many header fields", p);

		size_t name = p;
		while (p < h->end && is_class((unsigned char)b[p], C_TCHAR))
			p++;
		if (p >= h->end)
			return 0;
		if (b[p] != ':') {
			if (is_ows((unsigned char)b[p]))
				return head_fail(h, 400, "whitespace before the colon", p);
			return head_fail(h, 400, "invalid character in field name", p);
		}
		if (p == name)
			return head_fail(h, 400, "empty field name", p);
		size_t name_len = p - name;
		p++;
		while (p < h->end && is_ows((unsigned char)b[p]))
			p++;
		size_t vs = p, ve;
		for (;;) {
			/* 8 bytes at a time while none can be special: printable
			 * ASCII and obs-text are always valid value bytes */
			while (p + 8 <= h->end) {
				uint64_t w;
				memcpy(&w, b + p, 8);
				if (word_has_ctl(w))
					break;
				p += 8;
			}
			if (p >= h->end)
				return 0;
			c = (unsigned char)b[p];
			if (c == '\r')
				break;
			if (!is_class(c, C_FIELD))
				return head_fail(h, 400, c == '\n' ? "bare LF" : "invalid character in field value", p);
			p++;
		}
		/* the value ends before trailing OWS */
		ve = p;
		while (ve > vs && is_ows((unsigned char)b[ve - 1]))
			ve--;
		if (p + 1 >= h->end)
			return 0;
		if (b[p + 1] != '\n')
			return head_fail(h, 400, "bare CR", p);
		p += 2;

		struct http_header *f = &h->headers[h->nheaders];
		f->name = (struct http_slice){ (uint32_t)name, (uint32_t)name_len };
		f->value = (struct http_slice){ (uint32_t)vs, (uint32_t)(ve - vs) };
		f->flags = 0;
		r = field_complete(h, f, (int)h->nheaders);
		if (r < 0)
			return r;
		h->nheaders++;
	}
}

/* Flag as hop-by-hop every field that a Connection field names
 * (RFC 9110 7.6.1).  Runs once, on a complete head. */
static void flag_connection_options(struct head *h)
{
	/* close, keep-alive and upgrade name no field that is not already
	 * hop-by-hop: only other tokens need the scan */
	if (!h->conn_names_fields)
		return;
	for (uint32_t c = 0; c < h->nheaders; c++) {
		const struct http_header *cf = &h->headers[c];
		if (field_kind(h->buf + cf->name.off, cf->name.len) != F_CONNECTION)
			continue;
		const char *v = h->buf + cf->value.off;
		size_t i = 0, tok, tok_len;
		while (list_next_token(v, cf->value.len, &i, &tok, &tok_len) > 0) {
			for (uint32_t j = 0; j < h->nheaders; j++) {
				struct http_header *f = &h->headers[j];
				if (f->name.len == tok_len && !(f->flags & HTTP_HDR_HOP) &&
				    strncasecmp(h->buf + f->name.off, v + tok, tok_len) == 0)
					f->flags |= HTTP_HDR_HOP;
			}
		}
	}
}

static void head_init(struct head *h, const char *buf, size_t len, uint32_t max_head, bool is_request,
		      struct http_header *headers, struct http_error *err)
{
	memset(h, 0, sizeof(*h));
	h->buf = buf;
	h->end = len < max_head ? len : max_head;
	h->over_limit = len > max_head;
	h->is_request = is_request;
	h->headers = headers;
	h->cl_index = h->te_index = h->host_index = -1;
	h->err = err;
}

static void limits_resolve(const struct http_limits *in, struct http_limits *out)
{
	out->max_head_bytes = in && in->max_head_bytes ? in->max_head_bytes : HTTP_DEFAULT_MAX_HEAD_BYTES;
	if (out->max_head_bytes > INT32_MAX) /* the head length is returned as an int */
		out->max_head_bytes = INT32_MAX;
	out->max_target_bytes = in && in->max_target_bytes ? in->max_target_bytes : HTTP_DEFAULT_MAX_TARGET_BYTES;
	out->require_host = in ? in->require_host : true;
}

/* Keep-alive after this message (RFC 9112 9.3): HTTP/1.1 unless "close",
 * HTTP/1.0 only with "keep-alive" and without "close". */
static uint32_t connection_flags(const struct head *h)
{
	uint32_t flags = 0;
	if (h->conn_close)
		flags |= HTTP_MSG_CONN_CLOSE;
	if (!h->conn_close && (h->version_minor == 1 || h->conn_keep_alive))
		flags |= HTTP_MSG_KEEP_ALIVE;
	return flags;
}

/* A NULL limits or a 0 limit takes the default (32 KiB head, 8 KiB target,
 * Host required).  See parser.h for the contract. */
int http_request_parse(const char *buf, size_t len, const struct http_limits *limits,
		       struct http_request *req, struct http_error *err)
{
	struct http_limits lim;
	struct head h;
	size_t p = 0;
	int r;

	limits_resolve(limits, &lim);
	head_init(&h, buf, len, lim.max_head_bytes, true, req->headers, err);
	req->nheaders = 0;

	h.phase = PH_LEADING;
	r = skip_leading_lines(&h, &p);
	if (r <= 0)
		return r < 0 ? r : head_incomplete(&h);
	h.phase = PH_START;
	r = parse_request_line(&h, &p, &lim, req);
	if (r <= 0)
		return r < 0 ? r : head_incomplete(&h);
	h.phase = PH_FIELDS;
	r = parse_fields(&h, &p);
	req->nheaders = h.nheaders;
	if (r <= 0)
		return r < 0 ? r : head_incomplete(&h);

	if (h.version_minor == 1 && lim.require_host && h.host_index < 0)
		return head_fail(&h, 400, "missing Host", p);
	if (h.method_id == HTTP_METHOD_CONNECT && (h.cl_index >= 0 || h.te_index >= 0))
		return head_fail(&h, 400, "CONNECT with content", p);
	r = absolute_form_check(&h, req);
	if (r < 0)
		return r;
	flag_connection_options(&h);

	req->version_minor = h.version_minor;
	req->host = h.host_index >= 0 ? req->headers[h.host_index].value : (struct http_slice){ 0, 0 };
	req->flags = connection_flags(&h);
	if (h.expect_continue && h.version_minor == 1)
		req->flags |= HTTP_MSG_EXPECT_CONTINUE;
	if (h.has_upgrade && h.conn_upgrade && h.version_minor == 1)
		req->flags |= HTTP_MSG_UPGRADE;
	req->content_length = 0;
	if (h.te_chunked) {
		req->framing = HTTP_FRAMING_CHUNKED;
	} else if (h.cl_index >= 0) {
		req->content_length = h.content_length;
		req->framing = h.content_length ? HTTP_FRAMING_LENGTH : HTTP_FRAMING_NONE;
	} else {
		req->framing = HTTP_FRAMING_NONE;
	}
	req->head_len = (uint32_t)p;
	return (int)p;
}

/* Every error in a response is the upstream's fault: 502. */
static int response_fail(int r, struct http_error *err)
{
	if (r < 0 && err)
		err->status = 502;
	return r;
}

int http_response_parse(const char *buf, size_t len, const struct http_limits *limits,
			enum http_method request_method, struct http_response *resp,
			struct http_error *err)
{
	struct http_limits lim;
	struct head h;
	size_t p = 0;
	int r;

	limits_resolve(limits, &lim);
	head_init(&h, buf, len, lim.max_head_bytes, false, resp->headers, err);
	resp->nheaders = 0;

	h.phase = PH_LEADING;
	r = skip_leading_lines(&h, &p);
	if (r <= 0)
		return response_fail(r < 0 ? r : head_incomplete(&h), err);
	h.phase = PH_START;
	r = parse_status_line(&h, &p, resp);
	if (r <= 0)
		return response_fail(r < 0 ? r : head_incomplete(&h), err);
	h.phase = PH_FIELDS;
	r = parse_fields(&h, &p);
	resp->nheaders = h.nheaders;
	if (r <= 0)
		return response_fail(r < 0 ? r : head_incomplete(&h), err);
	flag_connection_options(&h);

	unsigned status = resp->status;
	resp->version_minor = h.version_minor;
	resp->flags = connection_flags(&h);
	if (status == 101 && h.has_upgrade && h.conn_upgrade)
		resp->flags |= HTTP_MSG_UPGRADE;
	resp->content_length = 0;
	/* RFC 9112 6.3, in order */
	if (request_method == HTTP_METHOD_HEAD || status < 200 || status == 204 || status == 304 ||
	    (request_method == HTTP_METHOD_CONNECT && status < 300)) {
		resp->framing = HTTP_FRAMING_NONE;
	} else if (h.te_chunked) {
		resp->framing = HTTP_FRAMING_CHUNKED;
	} else if (h.cl_index >= 0) {
		resp->content_length = h.content_length;
		resp->framing = h.content_length ? HTTP_FRAMING_LENGTH : HTTP_FRAMING_NONE;
	} else {
		resp->framing = HTTP_FRAMING_CLOSE;
		resp->flags &= ~(uint32_t)HTTP_MSG_KEEP_ALIVE;
	}
	resp->head_len = (uint32_t)p;
	return (int)p;
}

/* ---- bodies ------------------------------------------------------------- */

enum body_state {
	B_SIZE_FIRST,      /* first hex digit of a chunk-size */
	B_SIZE,            /* more hex digits, ';' or CR */
	B_EXT_NAME_FIRST,  /* after ';' */
	B_EXT_NAME,
	B_EXT_VALUE_FIRST, /* after '=' */
	B_EXT_VALUE_TOKEN,
	B_EXT_QUOTED,
	B_EXT_QUOTED_PAIR, /* after '\' inside quotes */
	B_EXT_QUOTED_END,  /* after the closing '"' */
	B_SIZE_LF,
	B_DATA,
	B_DATA_CR,
	B_DATA_LF,
	B_TRAILER_START,   /* start of a trailer line, or the final CRLF */
	B_TRAILER_NAME,
	B_TRAILER_VALUE,
	B_TRAILER_LF,
	B_FINAL_LF,
	B_DONE,
	B_ERROR,
};
/* body->state holds the decoder state in its low byte; this bit marks a
 * response body, whose errors are the upstream's (502). */
#define B_STATE_MASK 0xffu
#define B_RESPONSE 0x100u
#define B_MATCH_SHIFT 16

static inline enum body_state body_state(const struct http_body *body)
{
	return (enum body_state)(body->state & B_STATE_MASK);
}

static inline void body_set_state(struct http_body *body, enum body_state s)
{
	body->state = (body->state & ~B_STATE_MASK) | (uint32_t)s;
}

/* Trailer fields that would change how the message is framed, routed or
 * how the connection is managed if a recipient merged them into the head
 * (RFC 9110 6.5.1): refused outright.  Matched while the name streams in;
 * the bits from B_MATCH_SHIFT of body->state hold the names still matching. */
static const char *const forbidden_trailers[] = {
	"content-length", "transfer-encoding", "host", "connection", "keep-alive",
	"te", "trailer", "upgrade", "proxy-connection",
};
#define N_FORBIDDEN_TRAILERS (sizeof(forbidden_trailers) / sizeof(forbidden_trailers[0]))
_Static_assert(B_MATCH_SHIFT + N_FORBIDDEN_TRAILERS <= 32, "trailer matcher bits fit in body->state");

static void body_init(struct http_body *body, enum http_framing framing, uint64_t length,
		      uint32_t max_trailer_bytes, bool response)
{
	memset(body, 0, sizeof(*body));
	body->framing = framing;
	body->state = response ? B_RESPONSE : 0;
	body->max_trailer_bytes = max_trailer_bytes;
	switch (framing) {
	case HTTP_FRAMING_LENGTH:
		body->remaining = length;
		body->done = length == 0;
		break;
	case HTTP_FRAMING_CHUNKED:
		body_set_state(body, B_SIZE_FIRST);
		break;
	case HTTP_FRAMING_CLOSE:
		break;
	case HTTP_FRAMING_NONE:
	default:
		body->framing = HTTP_FRAMING_NONE;
		body->done = true;
		break;
	}
}

/* max_trailer_bytes bounds the bytes of trailer field lines (0: no trailer
 * field is accepted; the final CRLF is not counted). */
void http_body_init_request(struct http_body *body, const struct http_request *req, uint32_t max_trailer_bytes)
{
	body_init(body, req->framing, req->content_length, max_trailer_bytes, false);
}

void http_body_init_response(struct http_body *body, const struct http_response *resp, uint32_t max_trailer_bytes)
{
	body_init(body, resp->framing, resp->content_length, max_trailer_bytes, true);
}

static ssize_t body_fail(struct http_body *body, struct http_error *err, const char *reason, size_t offset)
{
	body_set_state(body, B_ERROR);
	if (err) {
		err->status = body->state & B_RESPONSE ? 502 : 400;
		err->reason = reason;
		err->offset = offset;
	}
	return -EBADMSG;
}

/* One more byte of a chunk-size line; false when the line is too long. */
static inline bool size_line_byte(struct http_body *body)
{
	return ++body->line_len <= HTTP_MAX_CHUNK_LINE;
}

/* One more byte of trailer field lines; false beyond the limit. */
static inline bool trailer_byte(struct http_body *body)
{
	return ++body->trailer_bytes <= body->max_trailer_bytes;
}

/* Advance the forbidden-trailer matcher with name byte c at position pos. */
static void trailer_name_match(struct http_body *body, unsigned char c, uint32_t pos)
{
	unsigned char lc = (unsigned char)(c >= 'A' && c <= 'Z' ? c | 0x20 : c);
	for (size_t k = 0; k < N_FORBIDDEN_TRAILERS; k++) {
		const char *name = forbidden_trailers[k];
		uint32_t bit = 1u << (B_MATCH_SHIFT + k);
		if ((body->state & bit) && (pos >= strlen(name) || (unsigned char)name[pos] != lc))
			body->state &= ~bit;
	}
}

static bool trailer_name_forbidden(const struct http_body *body, uint32_t name_len)
{
	for (size_t k = 0; k < N_FORBIDDEN_TRAILERS; k++)
		if ((body->state & (1u << (B_MATCH_SHIFT + k))) && strlen(forbidden_trailers[k]) == name_len)
			return true;
	return false;
}

/* The chunked decoder (RFC 9112 7.1).  See http_body_feed(). */
static ssize_t chunked_feed(struct http_body *body, const char *p, size_t n, size_t *data_off,
			    size_t *data_len, struct http_error *err)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = (unsigned char)p[i];
		switch (body_state(body)) {
		case B_DATA: {
			uint64_t left = body->remaining;
			size_t take = (uint64_t)(n - i) < left ? n - i : (size_t)left;
			*data_off = i;
			*data_len = take;
			body->remaining -= take;
			if (body->remaining == 0)
				body_set_state(body, B_DATA_CR);
			return (ssize_t)(i + take);
		}
		case B_SIZE_FIRST:
			if (!is_class(c, C_HEX))
				return body_fail(body, err, "invalid chunk size", i);
			body->remaining = hex_value(c);
			body->line_len = 1;
			body_set_state(body, B_SIZE);
			break;
		case B_SIZE:
			if (is_class(c, C_HEX)) {
				if (body->line_len >= HTTP_MAX_CHUNK_DIGITS)
					return body_fail(body, err, "chunk size too large", i);
				body->remaining = body->remaining << 4 | hex_value(c);
				body->line_len++;
			} else if (c == ';') {
				body->line_len++;
				body_set_state(body, B_EXT_NAME_FIRST);
			} else if (c == '\r') {
				body_set_state(body, B_SIZE_LF);
			} else {
				return body_fail(body, err, "invalid character in chunk size", i);
			}
			break;
		case B_EXT_NAME_FIRST:
			if (!is_class(c, C_TCHAR))
				return body_fail(body, err, "invalid chunk extension", i);
			if (!size_line_byte(body))
				return body_fail(body, err, "chunk extensions too long", i);
			body_set_state(body, B_EXT_NAME);
			break;
		case B_EXT_NAME:
		case B_EXT_VALUE_TOKEN:
		case B_EXT_QUOTED_END:
			if (is_class(c, C_TCHAR) && body_state(body) != B_EXT_QUOTED_END) {
				/* name or token value continues */
			} else if (c == ';') {
				body_set_state(body, B_EXT_NAME_FIRST);
			} else if (c == '=' && body_state(body) == B_EXT_NAME) {
				body_set_state(body, B_EXT_VALUE_FIRST);
			} else if (c == '\r') {
				body_set_state(body, B_SIZE_LF);
				break;
			} else {
				return body_fail(body, err, "invalid chunk extension", i);
			}
			if (!size_line_byte(body))
				return body_fail(body, err, "chunk extensions too long", i);
			break;
		case B_EXT_VALUE_FIRST:
			if (c == '"')
				body_set_state(body, B_EXT_QUOTED);
			else if (is_class(c, C_TCHAR))
				body_set_state(body, B_EXT_VALUE_TOKEN);
			else
				return body_fail(body, err, "invalid chunk extension value", i);
			if (!size_line_byte(body))
				return body_fail(body, err, "chunk extensions too long", i);
			break;
		case B_EXT_QUOTED:
			if (c == '"')
				body_set_state(body, B_EXT_QUOTED_END);
			else if (c == '\\')
				body_set_state(body, B_EXT_QUOTED_PAIR);
			else if (!is_class(c, C_QDTEXT))
				return body_fail(body, err, "invalid character in quoted chunk extension", i);
			if (!size_line_byte(body))
				return body_fail(body, err, "chunk extensions too long", i);
			break;
		case B_EXT_QUOTED_PAIR:
			/* quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text ) */
			if (!is_class(c, C_FIELD))
				return body_fail(body, err, "invalid quoted-pair in chunk extension", i);
			body_set_state(body, B_EXT_QUOTED);
			if (!size_line_byte(body))
				return body_fail(body, err, "chunk extensions too long", i);
			break;
		case B_SIZE_LF:
			if (c != '\n')
				return body_fail(body, err, "bare CR in chunk size line", i);
			body->line_len = 0;
			if (body->remaining == 0) {
				body->trailer_bytes = 0;
				body_set_state(body, B_TRAILER_START);
			} else {
				body_set_state(body, B_DATA);
			}
			break;
		case B_DATA_CR:
			if (c != '\r')
				return body_fail(body, err, "missing CRLF after chunk data", i);
			body_set_state(body, B_DATA_LF);
			break;
		case B_DATA_LF:
			if (c != '\n')
				return body_fail(body, err, "missing CRLF after chunk data", i);
			body->remaining = 0;
			body->line_len = 0;
			body_set_state(body, B_SIZE_FIRST);
			break;
		case B_TRAILER_START:
			if (c == '\r') {
				body_set_state(body, B_FINAL_LF);
				break;
			}
			if (is_ows(c))
				return body_fail(body, err, "obs-fold in trailer section", i);
			if (!is_class(c, C_TCHAR))
				return body_fail(body, err, "invalid character in trailer field name", i);
			if (!trailer_byte(body))
				return body_fail(body, err, "trailer section too large", i);
			body->state |= ((1u << N_FORBIDDEN_TRAILERS) - 1) << B_MATCH_SHIFT;
			trailer_name_match(body, c, 0);
			body->line_len = 1;
			body_set_state(body, B_TRAILER_NAME);
			break;
		case B_TRAILER_NAME:
			if (!trailer_byte(body))
				return body_fail(body, err, "trailer section too large", i);
			if (c == ':') {
				if (trailer_name_forbidden(body, body->line_len))
					return body_fail(body, err, "trailer field not allowed", i);
				body_set_state(body, B_TRAILER_VALUE);
			} else if (is_class(c, C_TCHAR)) {
				trailer_name_match(body, c, body->line_len);
				body->line_len++;
			} else {
				return body_fail(body, err, is_ows(c) ? "whitespace before the colon in trailer"
								    : "invalid character in trailer field name",
						 i);
			}
			break;
		case B_TRAILER_VALUE:
			if (!trailer_byte(body))
				return body_fail(body, err, "trailer section too large", i);
			if (c == '\r')
				body_set_state(body, B_TRAILER_LF);
			else if (!is_class(c, C_FIELD))
				return body_fail(body, err, "invalid character in trailer field value", i);
			break;
		case B_TRAILER_LF:
			if (!trailer_byte(body))
				return body_fail(body, err, "trailer section too large", i);
			if (c != '\n')
				return body_fail(body, err, "bare CR in trailer section", i);
			body_set_state(body, B_TRAILER_START);
			break;
		case B_FINAL_LF:
			if (c != '\n')
				return body_fail(body, err, "bare CR after the trailer section", i);
			body_set_state(body, B_DONE);
			body->done = true;
			return (ssize_t)(i + 1);
		case B_DONE:
			return (ssize_t)i;
		case B_ERROR:
		default:
			return body_fail(body, err, "body already failed", i);
		}
		i++;
	}
	return (ssize_t)i;
}

/* See parser.h.  err->offset is relative to p; err->status is 400 for a
 * request body and 502 for a response body.  After an error every further
 * call fails again. */
ssize_t http_body_feed(struct http_body *body, const char *p, size_t n, size_t *data_off, size_t *data_len,
		       struct http_error *err)
{
	*data_off = 0;
	*data_len = 0;
	if (body->done)
		return 0;
	switch (body->framing) {
	case HTTP_FRAMING_LENGTH: {
		size_t take = (uint64_t)n < body->remaining ? n : (size_t)body->remaining;
		body->remaining -= take;
		body->done = body->remaining == 0;
		*data_len = take;
		return (ssize_t)take;
	}
	case HTTP_FRAMING_CHUNKED:
		if (body_state(body) == B_ERROR)
			return body_fail(body, err, "body already failed", 0);
		return chunked_feed(body, p, n, data_off, data_len, err);
	case HTTP_FRAMING_CLOSE:
		*data_len = n;
		return (ssize_t)n;
	case HTTP_FRAMING_NONE:
	default:
		return 0;
	}
}

/* ---- helpers ------------------------------------------------------------ */

const char *http_method_name(enum http_method m)
{
	if ((unsigned)m >= HTTP_METHOD__COUNT)
		return "OTHER";
	return method_names[m];
}

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

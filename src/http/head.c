/* head.c - the message head of the strict HTTP/1.1 parser (RFC 9112,
 * RFC 9110): request line, status line and header fields.
 *
 * Heads are parsed in one pass over the caller's buffer, line by line: each
 * complete line is checked at once (characters, then the meaning of the
 * field it holds), so a bad or oversized head is refused while it is still
 * arriving, and an incomplete head costs one linear re-scan per call.
 * Nothing is copied or allocated; results are offsets into the buffer.  The
 * framing decided here (struct http_request / http_response) is what
 * body.c then follows.
 *
 * Policy: anything two implementations could read differently is rejected,
 * never repaired.  Beyond RFC 9112 a head is also refused for: an
 * unregistered method (501), Content-Length lists and duplicates even when
 * equal, any transfer coding other than a single "chunked" (a lone unknown
 * coding in a request is 501, everything else 400), Transfer-Encoding in an
 * HTTP/1.0 message, content in a CONNECT request, asterisk-form except with
 * OPTIONS, and a Connection header that names Content-Length or Host.
 * body.c lists what a body is refused for.  Errors in a response head carry
 * status 502.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "http/http-internal.h"
#include "http/parser.h"

/* Used when limits is NULL or a limit is 0. */
#define HTTP_DEFAULT_MAX_HEAD_BYTES 32768u
#define HTTP_DEFAULT_MAX_TARGET_BYTES 8192u

/* Whether any of the 8 bytes of w is < 0x20 or is 0x7f: the bytes that end
 * or may invalidate a field value (CR, LF, HTAB, NUL, other controls, DEL).
 * The classic "has byte less than" and "has zero byte" bit tricks. */
static inline bool word_has_ctl(uint64_t w)
{
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	uint64_t x = w ^ (0x7f * ones);

	return (((w - 0x20 * ones) & ~w) | ((x - ones) & ~x)) & highs;
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
	if (!http_method_lookup(b + m, p - m, &h->method_id))
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

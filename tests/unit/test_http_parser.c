/* test_http_parser.c - unit tests of the strict HTTP/1.1 parser.
 *
 * Three parts.  First, a replay of the public llhttp vectors in
 * $CUTOVER_SHARED/http-vectors/llhttp (JSON lines, read with jansson): a
 * "reject" case must never be accepted, an "accept" case must be accepted
 * with the expected method, target, headers and body unless it is in
 * knowingly_rejected[] below (each with the reason we are stricter), and the
 * lenient and finish modes must simply not crash.  Second, tables of
 * malformed and edge-case messages, one row per rule in src/http/head.c and
 * body.c.  Third, request-smuggling shapes (CL.TE, TE.CL, TE.TE
 * obfuscations).
 *
 * Every message is run through replay(): heads and bodies in sequence, the
 * way the proxy consumes a connection, stopping at an error, at the end of
 * the bytes, after a message that does not keep the connection alive, or at
 * an upgrade.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "http/parser.h"

/* ---- replay engine ------------------------------------------------------ */

#define REPLAY_MAX_MESSAGES 8

struct replay_msg {
	struct http_request req;
	struct http_response resp;
	const char *head;       /* start of this message's head in the input */
	char *body;             /* de-chunked payload (malloc'd, input length) */
	size_t body_len;
	const char *trailers;   /* trailer section (field lines), NULL if none */
	size_t trailers_len;
};

enum replay_end {
	END_INPUT,      /* all bytes consumed, last message complete */
	END_INCOMPLETE, /* the last head or body needs more bytes */
	END_ERROR,      /* the parser refused something */
	END_STOP,       /* stopped after a non-persistent or upgraded message */
};

struct replay {
	enum replay_end end;
	struct http_error err;
	int complete;                    /* messages fully consumed */
	int nmsgs;                       /* heads parsed */
	struct replay_msg msgs[REPLAY_MAX_MESSAGES];
};

struct replay_opts {
	bool is_request;
	struct http_limits limits;
	enum http_method request_method; /* responses: what the request was */
	bool skip_body;                  /* llhttp's skipBody: ignore framing */
	uint32_t max_trailer_bytes;
	size_t feed_step;                /* body bytes per http_body_feed call; 0: all */
};

static void replay_free(struct replay *r)
{
	if (!r)
		return;
	for (int i = 0; i < r->nmsgs; i++)
		free(r->msgs[i].body);
	free(r);
}

/* Locate the trailer field lines of a complete chunked body b[0..n) whose
 * last data span ended at last_data_end (0 if it had none). */
static void find_trailers(const char *b, size_t n, size_t last_data_end, bool had_data, struct replay_msg *m)
{
	size_t p = last_data_end + (had_data ? 2 : 0); /* CRLF after the data */
	const char *lf = memchr(b + p, '\n', n - p);  /* end of the last-chunk line */
	assert_non_null(lf);
	p = (size_t)(lf - b) + 1;
	assert_true(n >= p + 2);
	m->trailers = b + p;
	m->trailers_len = n - p - 2; /* without the final CRLF */
}

/* Run heads and bodies over raw[0..len) like a proxy would. */
static struct replay *replay(const char *raw, size_t len, const struct replay_opts *o)
{
	struct replay *r = calloc(1, sizeof(*r));
	size_t pos = 0;
	assert_non_null(r);

	for (;;) {
		if (pos == len) {
			r->end = END_INPUT;
			break;
		}
		if (r->nmsgs == REPLAY_MAX_MESSAGES) {
			r->end = END_STOP;
			break;
		}
		struct replay_msg *m = &r->msgs[r->nmsgs];
		struct http_body body;
		int hl;
		m->head = raw + pos;
		if (o->is_request)
			hl = http_request_parse(raw + pos, len - pos, &o->limits, &m->req, &r->err);
		else
			hl = http_response_parse(raw + pos, len - pos, &o->limits, o->request_method, &m->resp, &r->err);
		if (hl < 0) {
			assert_int_equal(hl, -EBADMSG);
			r->end = END_ERROR;
			break;
		}
		if (hl == 0) {
			r->end = END_INCOMPLETE;
			break;
		}
		r->nmsgs++;
		m->body = malloc(len + 1);
		assert_non_null(m->body);
		if (o->is_request) {
			assert_int_equal(m->req.head_len, (uint32_t)hl);
			http_body_init_request(&body, &m->req, o->max_trailer_bytes);
		} else {
			assert_int_equal(m->resp.head_len, (uint32_t)hl);
			http_body_init_response(&body, &m->resp, o->max_trailer_bytes);
		}
		if (o->skip_body)
			body.done = true;
		pos += (size_t)hl;

		size_t body_start = pos, last_data_end = 0;
		bool had_data = false, failed = false;
		while (!body.done && pos < len) {
			size_t avail = len - pos, off, dlen;
			if (o->feed_step && avail > o->feed_step)
				avail = o->feed_step;
			ssize_t c = http_body_feed(&body, raw + pos, avail, &off, &dlen, &r->err);
			if (c < 0) {
				assert_int_equal(c, -EBADMSG);
				failed = true;
				break;
			}
			assert_true((size_t)c <= avail);
			assert_true(off + dlen <= (size_t)c);
			if (dlen) {
				memcpy(m->body + m->body_len, raw + pos + off, dlen);
				m->body_len += dlen;
				last_data_end = pos + off + dlen - body_start;
				had_data = true;
			}
			pos += (size_t)c;
			if (c == 0 && !body.done)
				fail_msg("http_body_feed consumed nothing and is not done");
		}
		if (failed) {
			r->end = END_ERROR;
			break;
		}
		if (!body.done) {
			r->end = END_INCOMPLETE;
			break;
		}
		if (body.framing == HTTP_FRAMING_CHUNKED)
			find_trailers(raw + body_start, pos - body_start, last_data_end, had_data, m);
		r->complete++;

		uint32_t flags = o->is_request ? m->req.flags : m->resp.flags;
		bool upgrade = o->is_request ? (flags & HTTP_MSG_UPGRADE) || m->req.method_id == HTTP_METHOD_CONNECT
					     : m->resp.status == 101;
		if (upgrade || !(flags & HTTP_MSG_KEEP_ALIVE)) {
			r->end = END_STOP;
			break;
		}
	}
	return r;
}

static struct replay_opts request_opts(void)
{
	return (struct replay_opts){
		.is_request = true,
		.limits = { .max_head_bytes = 8192, .max_target_bytes = 2048, .require_host = true },
		.max_trailer_bytes = 1024,
	};
}

static struct replay_opts response_opts(void)
{
	return (struct replay_opts){
		.is_request = false,
		.limits = { .max_head_bytes = 8192, .max_target_bytes = 2048 },
		.request_method = HTTP_METHOD_GET,
		.max_trailer_bytes = 1024,
	};
}

/* Assert that the bytes are refused somewhere, with this status. */
static void expect_refused(const char *what, const char *raw, size_t len, const struct replay_opts *o,
			   uint16_t status)
{
	struct replay *r = replay(raw, len, o);
	if (r->end != END_ERROR)
		fail_msg("%s: accepted (end %d, %d messages)", what, (int)r->end, r->complete);
	if (r->err.status != status)
		fail_msg("%s: status %u (%s), want %u", what, r->err.status, r->err.reason, status);
	assert_non_null(r->err.reason);
	replay_free(r);
}

/* Assert that the bytes hold exactly one complete message and nothing else. */
static struct replay *expect_one(const char *what, const char *raw, size_t len, const struct replay_opts *o)
{
	struct replay *r = replay(raw, len, o);
	if (r->end == END_ERROR)
		fail_msg("%s: refused: %u %s at %zu", what, r->err.status, r->err.reason, r->err.offset);
	if (r->complete != 1)
		fail_msg("%s: %d complete messages (end %d)", what, r->complete, (int)r->end);
	return r;
}

#define S(lit) lit, sizeof(lit) - 1

/* ---- vector replay ------------------------------------------------------ */

/* Strict accept vectors we refuse on purpose. */
static const struct {
	const char *id;
	const char *why;
} knowingly_rejected[] = {
	{ "llhttp/request/method:96", "CONNECT with Content-Length: a CONNECT request has no content" },
	{ "llhttp/request/uri:222", "userinfo in an http URI must be treated as an error (RFC 9110 4.2.4)" },
	{ "llhttp/request/method:135", "M-SEARCH is SSDP (UDP), not an HTTP method: 501" },
	{ "llhttp/request/method:372", "ICE/1.0 is not HTTP" },
	{ "llhttp/request/method:400", "RTSP/1.0 is not HTTP" },
	{ "llhttp/request/method:430", "RTSP/1.0 is not HTTP (and ANNOUNCE is RTSP-only)" },
	{ "llhttp/request/method:458", "PRI is the HTTP/2 preface, not an HTTP/1.1 method: 501" },
	{ "llhttp/request/sample:314", "HTTP/0.9 request line without a version" },
	{ "llhttp/request/transfer-encoding:751", "Transfer-Encoding other than exactly one chunked" },
	{ "llhttp/request/transfer-encoding:793", "more than one Transfer-Encoding field" },
	{ "llhttp/response/sample:40", "RTSP/1.1 status line is not HTTP" },
	{ "llhttp/response/sample:60", "ICE/1.1 status line is not HTTP" },
	{ "llhttp/response/sample:645", "HTTP/0.9 is not supported" },
	{ "llhttp/response/transfer-encoding:43", "response Transfer-Encoding not ending in chunked: refused, not read to close" },
	{ "llhttp/response/transfer-encoding:74", "more than one Transfer-Encoding field" },
	{ "llhttp/response/transfer-encoding:110", "Transfer-Encoding 'chunkedchunked' is not chunked" },
};

static const char *knowingly_rejected_why(const char *id)
{
	for (size_t i = 0; i < sizeof(knowingly_rejected) / sizeof(knowingly_rejected[0]); i++)
		if (strcmp(knowingly_rejected[i].id, id) == 0)
			return knowingly_rejected[i].why;
	return NULL;
}

/* Vectors whose "body" field lost bytes that their expected_log shows. */
static const struct {
	const char *id;
	const char *body;
} body_errata[] = {
	{ "llhttp/response/sample:196", "\n" }, /* log: span[body]=lf */
};

static const char *body_erratum(const char *id)
{
	for (size_t i = 0; i < sizeof(body_errata) / sizeof(body_errata[0]); i++)
		if (strcmp(body_errata[i].id, id) == 0)
			return body_errata[i].body;
	return NULL;
}

static int b64_value(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decode standard base64 (padding optional).  Returns a malloc'd buffer. */
static char *b64_decode(const char *in, size_t *out_len)
{
	size_t n = strlen(in), o = 0;
	char *out = malloc(n / 4 * 3 + 3);
	uint32_t acc = 0;
	int bits = 0;
	assert_non_null(out);
	for (size_t i = 0; i < n; i++) {
		if (in[i] == '=')
			break;
		int v = b64_value((unsigned char)in[i]);
		assert_true(v >= 0);
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	*out_len = o;
	return out;
}

/* The vectors hold strings as JSON text whose code points are the original
 * bytes (latin-1).  Convert back into buf (at least strlen(s)+1 bytes). */
static size_t utf8_to_latin1(const char *s, char *buf)
{
	size_t o = 0;
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		if (*p < 0x80) {
			buf[o++] = (char)*p++;
		} else {
			assert_true((p[0] & 0xe0) == 0xc0 && (p[1] & 0xc0) == 0x80);
			unsigned cp = (unsigned)(p[0] & 0x1f) << 6 | (p[1] & 0x3f);
			assert_true(cp <= 0xff);
			buf[o++] = (char)cp;
			p += 2;
		}
	}
	buf[o] = 0;
	return o;
}

/* Expected header values are llhttp's logs: "\t" and "\f" escaped, and the
 * trailing whitespace that we strip as OWS left in. */
static size_t expected_field_value(const char *s, char *buf)
{
	size_t n = utf8_to_latin1(s, buf), o = 0;
	for (size_t i = 0; i < n; i++) {
		if (buf[i] == '\\' && i + 1 < n && (buf[i + 1] == 't' || buf[i + 1] == 'f')) {
			buf[o++] = buf[i + 1] == 't' ? '\t' : '\f';
			i++;
		} else {
			buf[o++] = buf[i];
		}
	}
	while (o > 0 && (buf[o - 1] == ' ' || buf[o - 1] == '\t'))
		o--;
	size_t s0 = 0;
	while (s0 < o && (buf[s0] == ' ' || buf[s0] == '\t'))
		s0++;
	memmove(buf, buf + s0, o - s0);
	buf[o - s0] = 0;
	return o - s0;
}

static bool slice_is(const char *base, struct http_slice s, const char *want, size_t want_len)
{
	return s.len == want_len && memcmp(base + s.off, want, want_len) == 0;
}

/* Compare a parsed message with the vector's expectation.  Returns NULL or
 * a description of the first difference (static buffer). */
static const char *message_mismatch(const struct replay_msg *m, bool is_request, json_t *exp,
				    const char *body_override)
{
	static char why[256];
	char *buf = malloc(65536);
	const char *ret = NULL;
	size_t n;
	assert_non_null(buf);

	const char *version = json_string_value(json_object_get(exp, "version"));
	uint8_t minor = is_request ? m->req.version_minor : m->resp.version_minor;
	if (!version || strlen(version) != 3 || version[0] != '1' || version[2] - '0' != minor) {
		snprintf(why, sizeof(why), "version %s vs 1.%u", version ? version : "?", minor);
		ret = why;
		goto out;
	}
	if (is_request) {
		n = utf8_to_latin1(json_string_value(json_object_get(exp, "method")), buf);
		if (!slice_is(m->head, m->req.method, buf, n)) {
			ret = "method";
			goto out;
		}
		n = utf8_to_latin1(json_string_value(json_object_get(exp, "url")), buf);
		if (!slice_is(m->head, m->req.target, buf, n)) {
			ret = "url";
			goto out;
		}
	} else {
		n = utf8_to_latin1(json_string_value(json_object_get(exp, "status")), buf);
		if (!slice_is(m->head, m->resp.reason, buf, n)) {
			ret = "reason phrase";
			goto out;
		}
	}

	/* headers: the head's fields, then the trailer fields */
	json_t *headers = json_object_get(exp, "headers");
	uint32_t nh = is_request ? m->req.nheaders : m->resp.nheaders;
	const struct http_header *hs = is_request ? m->req.headers : m->resp.headers;
	size_t idx;
	json_t *pair;
	const char *t = m->trailers, *tend = m->trailers ? m->trailers + m->trailers_len : NULL;
	json_array_foreach(headers, idx, pair) {
		const char *name = json_string_value(json_array_get(pair, 0));
		const char *value = json_string_value(json_array_get(pair, 1));
		char *vbuf = buf + 32768;
		size_t nl = utf8_to_latin1(name, buf);
		size_t vl = expected_field_value(value, vbuf);
		if (idx < nh) {
			if (!slice_is(m->head, hs[idx].name, buf, nl) || !slice_is(m->head, hs[idx].value, vbuf, vl)) {
				snprintf(why, sizeof(why), "header %zu (%s)", idx, name);
				ret = why;
				goto out;
			}
			continue;
		}
		/* trailer line "name:" OWS value OWS CRLF */
		if (!t || t >= tend) {
			snprintf(why, sizeof(why), "missing trailer %s", name);
			ret = why;
			goto out;
		}
		const char *eol = memchr(t, '\r', (size_t)(tend - t) + 1);
		const char *colon = memchr(t, ':', (size_t)(eol - t));
		const char *vs = colon + 1, *ve = eol;
		while (vs < ve && (*vs == ' ' || *vs == '\t'))
			vs++;
		while (ve > vs && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		if ((size_t)(colon - t) != nl || memcmp(t, buf, nl) != 0 || (size_t)(ve - vs) != vl ||
		    memcmp(vs, vbuf, vl) != 0) {
			snprintf(why, sizeof(why), "trailer %s", name);
			ret = why;
			goto out;
		}
		t = eol + 2;
	}
	if (json_array_size(headers) < nh) {
		ret = "extra headers";
		goto out;
	}
	n = utf8_to_latin1(body_override ? body_override : json_string_value(json_object_get(exp, "body")), buf);
	if (n != m->body_len || memcmp(buf, m->body, n) != 0)
		ret = "body";
out:
	free(buf);
	return ret;
}

struct vector_stats {
	int strict, strict_ok;
	int accept, accepted, knowingly;
	int reject, rejected;
	int lenient;
};

/* Replay one vector; returns false (after printing why) on a failure. */
static bool vector_run(json_t *v, bool is_request, struct vector_stats *st)
{
	const char *id = json_string_value(json_object_get(v, "id"));
	const char *mode = json_string_value(json_object_get(v, "mode"));
	const char *expect = json_string_value(json_object_get(v, "expect"));
	json_t *meta = json_object_get(v, "llhttp_meta");
	size_t len;
	char *raw = b64_decode(json_string_value(json_object_get(v, "raw_b64")), &len);
	struct replay_opts o = is_request ? request_opts() : response_opts();
	bool ok = true, strict = false;

	o.limits.require_host = json_is_true(json_object_get(v, "has_host_header"));
	o.skip_body = json_is_true(json_object_get(meta, "skipBody"));
	struct replay *r = replay(raw, len, &o);

	if (strcmp(mode, is_request ? "request" : "response") != 0) {
		/* lenient and finish modes: only "no crash" (ASan/UBSan) */
		st->lenient++;
		goto out;
	}
	st->strict++;
	strict = true;
	if (strcmp(expect, "reject") == 0) {
		st->reject++;
		if (r->end == END_ERROR) {
			st->rejected++;
		} else {
			printf("FAIL %s: reject vector not refused (end %d, %d messages)\n", id, (int)r->end, r->complete);
			ok = false;
		}
		goto out;
	}
	st->accept++;
	const char *why = knowingly_rejected_why(id);
	if (why) {
		st->knowingly++;
		if (r->end != END_ERROR) {
			printf("FAIL %s: listed as knowingly rejected but accepted\n", id);
			ok = false;
		}
		goto out;
	}
	if (r->end == END_ERROR) {
		printf("FAIL %s: refused: %u %s at %zu\n", id, r->err.status, r->err.reason, r->err.offset);
		ok = false;
		goto out;
	}
	json_t *msgs = json_object_get(v, "messages");
	int want = (int)json_integer_value(json_object_get(v, "messages_complete"));
	if (r->complete != want) {
		printf("FAIL %s: %d complete messages, want %d\n", id, r->complete, want);
		ok = false;
		goto out;
	}
	for (int i = 0; i < r->complete && i < (int)json_array_size(msgs); i++) {
		const char *mis = message_mismatch(&r->msgs[i], is_request, json_array_get(msgs, (size_t)i),
						   i == 0 ? body_erratum(id) : NULL);
		if (mis) {
			printf("FAIL %s: message %d: %s differs\n", id, i, mis);
			ok = false;
			goto out;
		}
	}
	st->accepted++;
out:
	if (ok && strict)
		st->strict_ok++;
	replay_free(r);
	free(raw);
	return ok;
}

static FILE *open_vectors(const char *name)
{
	char path[4096];
	const char *shared = getenv("CUTOVER_SHARED");
	const char *source = getenv("CUTOVER_SOURCE");
	if (shared)
		snprintf(path, sizeof(path), "%s/http-vectors/llhttp/%s", shared, name);
	else if (source)
		snprintf(path, sizeof(path), "%s/../shared/http-vectors/llhttp/%s", source, name);
	else
		snprintf(path, sizeof(path), "../shared/http-vectors/llhttp/%s", name);
	return fopen(path, "r");
}

static bool replay_file(const char *name, bool is_request, struct vector_stats *st)
{
	FILE *f = open_vectors(name);
	char *line = NULL;
	size_t cap = 0;
	bool ok = true;
	if (!f)
		return false;
	while (getline(&line, &cap, f) > 0) {
		json_error_t jerr;
		json_t *v = json_loads(line, 0, &jerr);
		if (!v)
			fail_msg("%s: bad JSON line %d: %s", name, jerr.line, jerr.text);
		if (!vector_run(v, is_request, st))
			ok = false;
		json_decref(v);
	}
	free(line);
	fclose(f);
	return ok;
}

static void test_vectors(void **state)
{
	struct vector_stats rq = { 0 }, rs = { 0 };
	(void)state;
	FILE *probe = open_vectors("requests.jsonl");
	if (!probe) {
		printf("vectors: not found (set CUTOVER_SHARED)\n");
		skip();
	}
	fclose(probe);
	bool ok = replay_file("requests.jsonl", true, &rq);
	ok = replay_file("responses.jsonl", false, &rs) && ok;
	printf("vectors: requests %d/%d strict cases ok (reject %d/%d refused, accept %d/%d accepted, "
	       "%d knowingly refused), %d lenient/finish run\n",
	       rq.strict_ok, rq.strict, rq.rejected, rq.reject, rq.accepted, rq.accept - rq.knowingly, rq.knowingly,
	       rq.lenient);
	printf("vectors: responses %d/%d strict cases ok (reject %d/%d refused, accept %d/%d accepted, "
	       "%d knowingly refused), %d lenient/finish run\n",
	       rs.strict_ok, rs.strict, rs.rejected, rs.reject, rs.accepted, rs.accept - rs.knowingly, rs.knowingly,
	       rs.lenient);
	assert_true(rq.strict > 100 && rs.strict > 50);
	assert_true(ok);
}

/* ---- table of refused requests ------------------------------------------ */

struct refusal {
	const char *name;
	const char *raw;
	size_t len;
	uint16_t status;
};

#define HOST "Host: example.com\r\n"
#define POST "POST / HTTP/1.1\r\n" HOST
#define CHUNKED_POST POST "Transfer-Encoding: chunked\r\n\r\n"
#define R(name, lit, status) { name, lit, sizeof(lit) - 1, status }

static const struct refusal request_refusals[] = {
	/* framing */
	R("CL and TE", POST "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
	R("TE and CL", POST "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400),
	R("two differing CL", POST "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
	R("two equal CL", POST "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400),
	R("CL list", POST "Content-Length: 5, 5\r\n\r\nhello", 400),
	R("CL plus sign", POST "Content-Length: +5\r\n\r\nhello", 400),
	R("CL negative", POST "Content-Length: -1\r\n\r\n", 400),
	R("CL inner space", POST "Content-Length: 1 2\r\n\r\n", 400),
	R("CL hex", POST "Content-Length: 0x5\r\n\r\nhello", 400),
	R("CL empty", POST "Content-Length:\r\n\r\n", 400),
	R("CL overflow", POST "Content-Length: 99999999999999999999999\r\n\r\n", 400),
	R("CL 2^64", POST "Content-Length: 18446744073709551616\r\n\r\n", 400),
	R("TE gzip, chunked", POST "Transfer-Encoding: gzip, chunked\r\n\r\n", 400),
	R("TE chunked, identity", POST "Transfer-Encoding: chunked, identity\r\n\r\n", 400),
	R("TE chunked, chunked", POST "Transfer-Encoding: chunked, chunked\r\n\r\n", 400),
	R("TE gzip alone", POST "Transfer-Encoding: gzip\r\n\r\n", 501),
	R("TE xchunked", POST "Transfer-Encoding: xchunked\r\n\r\n", 501),
	R("TE chunked with parameter", POST "Transfer-Encoding: chunked;q=1\r\n\r\n", 400),
	R("TE empty", POST "Transfer-Encoding:\r\n\r\n", 400),
	R("TE inner space", POST "Transfer-Encoding: chun ked\r\n\r\n", 400),
	R("two TE", POST "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
	R("TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
	R("CONNECT with CL", "CONNECT example.com:443 HTTP/1.1\r\n" HOST "Content-Length: 0\r\n\r\n", 400),
	/* line structure */
	R("obs-fold", "GET / HTTP/1.1\r\n" HOST "X-A: a\r\n b\r\n\r\n", 400),
	R("obs-fold with tab", "GET / HTTP/1.1\r\n" HOST "X-A: a\r\n\tb\r\n\r\n", 400),
	R("space before first field", "GET / HTTP/1.1\r\n " HOST "\r\n", 400),
	R("bare CR in value", "GET / HTTP/1.1\r\n" HOST "X-A: a\rb\r\n\r\n", 400),
	R("bare CR ends field", "GET / HTTP/1.1\r\n" HOST "X-A: a\rX-B: b\r\n\r\n", 400),
	R("bare LF ends field", "GET / HTTP/1.1\r\n" HOST "X-A: a\nX-B: b\r\n\r\n", 400),
	R("bare LF request line", "GET / HTTP/1.1\n" HOST "\r\n", 400),
	R("bare CR request line", "GET / HTTP/1.1\r" HOST "\r\n", 400),
	R("LF-only head", "GET / HTTP/1.1\nHost: example.com\n\n", 400),
	R("bare CR final line", "GET / HTTP/1.1\r\n" HOST "\rX", 400),
	R("bare LF final line", "GET / HTTP/1.1\r\n" HOST "\n", 400),
	R("bare LF before request line", "\nGET / HTTP/1.1\r\n" HOST "\r\n", 400),
	R("NUL in value", "GET / HTTP/1.1\r\n" HOST "X-A: a\0b\r\n\r\n", 400),
	R("DEL in value", "GET / HTTP/1.1\r\n" HOST "X-A: a\x7f\r\n\r\n", 400),
	R("VT in value", "GET / HTTP/1.1\r\n" HOST "X-A: a\x0b\r\n\r\n", 400),
	R("ESC in value", "GET / HTTP/1.1\r\n" HOST "X-A: \x1b[31m\r\n\r\n", 400),
	/* tokens */
	R("@ in method", "G@T / HTTP/1.1\r\n" HOST "\r\n", 400),
	R("( in method", "GE(T / HTTP/1.1\r\n" HOST "\r\n", 400),
	R("tab after method", "GET\t/ HTTP/1.1\r\n" HOST "\r\n", 400),
	R("two spaces after method", "GET  / HTTP/1.1\r\n" HOST "\r\n", 400),
	R("empty method", " / HTTP/1.1\r\n" HOST "\r\n", 400),
	R("lowercase method", "get / HTTP/1.1\r\n" HOST "\r\n", 501),
	R("unknown method", "MKCOLA / HTTP/1.1\r\n" HOST "\r\n", 501),
	R("overlong method", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 501),
	R("@ in field name", "GET / HTTP/1.1\r\n" HOST "Fo@: x\r\n\r\n", 400),
	R("space in field name", "GET / HTTP/1.1\r\n" HOST "Foo Bar: x\r\n\r\n", 400),
	R("space before colon", "GET / HTTP/1.1\r\n" HOST "Foo : x\r\n\r\n", 400),
	R("tab before colon", "GET / HTTP/1.1\r\n" HOST "Foo\t: x\r\n\r\n", 400),
	R("empty field name", "GET / HTTP/1.1\r\n" HOST ": x\r\n\r\n", 400),
	R("control in field name", "GET / HTTP/1.1\r\n" HOST "Fo\x01o: x\r\n\r\n", 400),
	R("8-bit in field name", "GET / HTTP/1.1\r\n" HOST "Fo\xc3\xa9: x\r\n\r\n", 400),
	R("field line without colon", "GET / HTTP/1.1\r\n" HOST "Foo\r\n\r\n", 400),
	/* request-target */
	R("space in target", "GET /a b HTTP/1.1\r\n" HOST "\r\n", 400),
	R("tab in target", "GET /a\tb HTTP/1.1\r\n" HOST "\r\n", 400),
	R("8-bit in target", "GET /caf\xc3\xa9 HTTP/1.1\r\n" HOST "\r\n", 400),
	R("control in target", "GET /a\x01 HTTP/1.1\r\n" HOST "\r\n", 400),
	R("asterisk with GET", "GET * HTTP/1.1\r\n" HOST "\r\n", 400),
	R("relative target", "GET foo HTTP/1.1\r\n" HOST "\r\n", 400),
	R("CONNECT origin-form", "CONNECT / HTTP/1.1\r\n" HOST "\r\n", 400),
	R("CONNECT without port", "CONNECT example.com HTTP/1.1\r\n" HOST "\r\n", 400),
	R("HTTP/0.9", "GET /\r\n\r\n", 400),
	/* version */
	R("HTTP/2.0", "GET / HTTP/2.0\r\n" HOST "\r\n", 505),
	R("HTTP/0.9 version", "GET / HTTP/0.9\r\n" HOST "\r\n", 505),
	R("HTTP/1.2", "GET / HTTP/1.2\r\n" HOST "\r\n", 505),
	R("HTTP/5.6 incomplete", "GET / HTTP/5.6", 505),
	R("HTTP/1.10", "GET / HTTP/1.10\r\n" HOST "\r\n", 400),
	R("lowercase http", "GET / http/1.1\r\n" HOST "\r\n", 400),
	R("HTTP/1.1 trailing space", "GET / HTTP/1.1 \r\n" HOST "\r\n", 400),
	R("HTTP/11.1", "GET / HTTP/11.1\r\n" HOST "\r\n", 400),
	R("ICE/1.0", "SOURCE / ICE/1.0\r\n" HOST "\r\n", 400),
	/* Host */
	R("missing Host", "GET / HTTP/1.1\r\n\r\n", 400),
	R("two Hosts", "GET / HTTP/1.1\r\n" HOST HOST "\r\n", 400),
	R("two Hosts, 1.0", "GET / HTTP/1.0\r\n" HOST HOST "\r\n", 400),
	R("Host with space", "GET / HTTP/1.1\r\nHost: exa mple.com\r\n\r\n", 400),
	R("Host with @", "GET / HTTP/1.1\r\nHost: user@example.com\r\n\r\n", 400),
	R("Host with /", "GET / HTTP/1.1\r\nHost: example.com/a\r\n\r\n", 400),
	R("absolute-form authority differs from Host", "GET http://admin.test/x HTTP/1.1\r\nHost: shop.test\r\n\r\n", 400),
	R("absolute-form port differs from Host", "GET http://a.test:81/ HTTP/1.1\r\nHost: a.test\r\n\r\n", 400),
	R("absolute-form with userinfo", "GET http://u:p@a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n", 400),
	R("absolute-form with another scheme", "GET ftp://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n", 400),
	R("Host empty", "GET / HTTP/1.1\r\nHost:\r\n\r\n", 400),
	R("Host empty port", "GET / HTTP/1.1\r\nHost: example.com:\r\n\r\n", 400),
	R("Host port too big", "GET / HTTP/1.1\r\nHost: example.com:65536\r\n\r\n", 400),
	R("Host port not a number", "GET / HTTP/1.1\r\nHost: example.com:8o\r\n\r\n", 400),
	R("Host unclosed IPv6", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400),
	R("Host bad pct-encoding", "GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", 400),
	R("Host 8-bit", "GET / HTTP/1.1\r\nHost: caf\xc3\xa9\r\n\r\n", 400),
	/* Connection */
	R("Connection names Content-Length", POST "Connection: close, Content-Length\r\nContent-Length: 1\r\n\r\nx", 400),
	R("Connection names Host", "GET / HTTP/1.1\r\n" HOST "Connection: host\r\n\r\n", 400),
	R("Connection bad token", "GET / HTTP/1.1\r\n" HOST "Connection: keep alive\r\n\r\n", 400),
	R("Connection quoted", "GET / HTTP/1.1\r\n" HOST "Connection: \"close\"\r\n\r\n", 400),
	/* chunked bodies */
	R("chunk size 0x5", CHUNKED_POST "0x5\r\nhello\r\n0\r\n\r\n", 400),
	R("chunk size -1", CHUNKED_POST "-1\r\n\r\n", 400),
	R("chunk size leading space", CHUNKED_POST " 5\r\nhello\r\n0\r\n\r\n", 400),
	R("chunk size trailing space", CHUNKED_POST "5 \r\nhello\r\n0\r\n\r\n", 400),
	R("chunk size trailing tab", CHUNKED_POST "5\t\r\nhello\r\n0\r\n\r\n", 400),
	R("chunk size empty", CHUNKED_POST "\r\nhello\r\n0\r\n\r\n", 400),
	R("chunk size 17 hex digits", CHUNKED_POST "00000000000000005\r\nhello\r\n0\r\n\r\n", 400),
	R("chunk size overflow", CHUNKED_POST "fffffffffffffffff\r\n", 400),
	R("chunk size +5", CHUNKED_POST "+5\r\nhello\r\n0\r\n\r\n", 400),
	R("chunk size g", CHUNKED_POST "g\r\n", 400),
	R("ext empty", CHUNKED_POST "5;\r\nhello\r\n0\r\n\r\n", 400),
	R("ext no name", CHUNKED_POST "5;=x\r\nhello\r\n0\r\n\r\n", 400),
	R("ext space after ;", CHUNKED_POST "5; a\r\nhello\r\n0\r\n\r\n", 400),
	R("ext space before ;", CHUNKED_POST "5 ;a\r\nhello\r\n0\r\n\r\n", 400),
	R("ext empty value", CHUNKED_POST "5;a=\r\nhello\r\n0\r\n\r\n", 400),
	R("ext value with space", CHUNKED_POST "5;a=b c\r\nhello\r\n0\r\n\r\n", 400),
	R("ext unterminated quote", CHUNKED_POST "5;a=\"b\r\nhello\r\n0\r\n\r\n", 400),
	R("ext junk after quote", CHUNKED_POST "5;a=\"b\"c\r\nhello\r\n0\r\n\r\n", 400),
	R("ext control in quote", CHUNKED_POST "5;a=\"b\x01\"\r\nhello\r\n0\r\n\r\n", 400),
	R("ext two =", CHUNKED_POST "5;a=b=c\r\nhello\r\n0\r\n\r\n", 400),
	R("ext bare LF", CHUNKED_POST "5;a\nhello\r\n0\r\n\r\n", 400),
	R("size line bare LF", CHUNKED_POST "5\nhello\r\n0\r\n\r\n", 400),
	R("size line bare CR", CHUNKED_POST "5\rhello\r\n0\r\n\r\n", 400),
	R("no CRLF after data", CHUNKED_POST "5\r\nhelloX\r\n0\r\n\r\n", 400),
	R("LF only after data", CHUNKED_POST "5\r\nhello\n0\r\n\r\n", 400),
	R("CR only after data", CHUNKED_POST "5\r\nhello\r0\r\n\r\n", 400),
	R("data longer than size", CHUNKED_POST "3\r\nhello\r\n0\r\n\r\n", 400),
	R("LF-only last chunk", CHUNKED_POST "0\n\n", 400),
	R("trailer space in name", CHUNKED_POST "0\r\nBad Field: x\r\n\r\n", 400),
	R("trailer space before colon", CHUNKED_POST "0\r\nFoo : x\r\n\r\n", 400),
	R("trailer no colon", CHUNKED_POST "0\r\nFoo\r\n\r\n", 400),
	R("trailer obs-fold", CHUNKED_POST "0\r\nFoo: a\r\n b\r\n\r\n", 400),
	R("trailer NUL", CHUNKED_POST "0\r\nFoo: a\0b\r\n\r\n", 400),
	R("trailer bare LF", CHUNKED_POST "0\r\nFoo: a\nBar: b\r\n\r\n", 400),
	R("trailer bare CR", CHUNKED_POST "0\r\nFoo: a\rBar: b\r\n\r\n", 400),
	R("final bare CR", CHUNKED_POST "0\r\n\rX", 400),
	R("trailer Content-Length", CHUNKED_POST "0\r\nContent-Length: 5\r\n\r\n", 400),
	R("trailer Transfer-Encoding", CHUNKED_POST "0\r\ntransfer-encoding: chunked\r\n\r\n", 400),
	R("trailer Host", CHUNKED_POST "0\r\nHOST: evil\r\n\r\n", 400),
	R("trailer too large", CHUNKED_POST "0\r\nX-Big: "
		"0123456789012345678901234567890123456789012345678901234567890123456789"
		"0123456789012345678901234567890123456789012345678901234567890123456789\r\n\r\n", 400),
};

static void run_refusals(const struct refusal *t, size_t n, const struct replay_opts *o)
{
	for (size_t i = 0; i < n; i++)
		expect_refused(t[i].name, t[i].raw, t[i].len, o, t[i].status);
}

static void test_request_refusals(void **state)
{
	struct replay_opts o = request_opts();
	(void)state;
	o.max_trailer_bytes = 100;
	run_refusals(request_refusals, sizeof(request_refusals) / sizeof(request_refusals[0]), &o);
}

/* A trailer section that fits max_trailer_bytes exactly is accepted; one
 * byte more is refused; 0 accepts the empty trailer section only. */
static void test_trailer_limit(void **state)
{
	static const char msg[] = CHUNKED_POST "0\r\nX-A: 12345\r\n\r\n"; /* 12 bytes of field line */
	struct replay_opts o = request_opts();
	(void)state;
	o.max_trailer_bytes = 12;
	replay_free(expect_one("trailers at the limit", S(msg), &o));
	o.max_trailer_bytes = 11;
	expect_refused("trailers over the limit", S(msg), &o, 400);
	o.max_trailer_bytes = 0;
	replay_free(expect_one("no trailers, limit 0", S(CHUNKED_POST "0\r\n\r\n"), &o));
	/* names that only start like a refused one are fine */
	o.max_trailer_bytes = 1024;
	replay_free(expect_one("look-alike trailers",
			       S(CHUNKED_POST "0\r\nHostname: a\r\nContent-Lengthy: 1\r\nT: x\r\nTex: 1\r\n"
					      "Hos: 1\r\nX-Host: 1\r\n\r\n"),
			       &o));
}

/* ---- limits: 414 and 431, also while the head is incomplete ------------- */

static void test_limits(void **state)
{
	struct http_limits lim = { .max_head_bytes = 1024, .max_target_bytes = 64, .require_host = true };
	struct http_request *req = malloc(sizeof(*req));
	struct http_error err = { 0 };
	char buf[8192];
	int n;
	(void)state;
	assert_non_null(req);

	/* a target of exactly the limit passes, one more byte is 414 */
	n = snprintf(buf, sizeof(buf), "GET /%063d HTTP/1.1\r\nHost: a\r\n\r\n", 0);
	assert_int_equal(http_request_parse(buf, (size_t)n, &lim, req, &err), n);
	n = snprintf(buf, sizeof(buf), "GET /%064d HTTP/1.1\r\nHost: a\r\n\r\n", 0);
	assert_int_equal(http_request_parse(buf, (size_t)n, &lim, req, &err), -EBADMSG);
	assert_int_equal(err.status, 414);

	/* an endless URI is cut off as soon as it passes the limit */
	memset(buf, 'a', sizeof(buf));
	memcpy(buf, "GET /", 5);
	assert_int_equal(http_request_parse(buf, 5 + 63, &lim, req, &err), 0);
	assert_int_equal(http_request_parse(buf, 5 + 64, &lim, req, &err), -EBADMSG);
	assert_int_equal(err.status, 414);

	/* request line longer than the head limit (target limit larger): 414 */
	struct http_limits big_target = { .max_head_bytes = 256, .max_target_bytes = 4096, .require_host = true };
	assert_int_equal(http_request_parse(buf, 256, &big_target, req, &err), 0);
	assert_int_equal(http_request_parse(buf, 257, &big_target, req, &err), -EBADMSG);
	assert_int_equal(err.status, 414);

	/* head too large: 431, complete or not */
	n = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\nX-Big: %01000d\r\n\r\n", 0);
	assert_true(n > 1024);
	assert_int_equal(http_request_parse(buf, (size_t)n, &lim, req, &err), -EBADMSG);
	assert_int_equal(err.status, 431);
	assert_int_equal(http_request_parse(buf, 1024, &lim, req, &err), 0);
	assert_int_equal(http_request_parse(buf, 1025, &lim, req, &err), -EBADMSG);
	assert_int_equal(err.status, 431);

	/* a head of exactly max_head_bytes passes */
	struct http_limits exact = { .max_head_bytes = (uint32_t)n, .max_target_bytes = 64, .require_host = true };
	assert_int_equal(http_request_parse(buf, (size_t)n, &exact, req, &err), n);

	/* leading empty lines count in the head */
	memset(buf, 0, sizeof(buf));
	for (int i = 0; i < 600; i++)
		memcpy(buf + 2 * i, "\r\n", 2);
	assert_int_equal(http_request_parse(buf, 1200, &lim, req, &err), -EBADMSG);
	assert_int_equal(err.status, 431);

	/* more than HTTP_MAX_HEADERS fields: 431 */
	struct http_limits roomy = { .max_head_bytes = 8192, .max_target_bytes = 64, .require_host = true };
	size_t o = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\n");
	for (int i = 1; i < HTTP_MAX_HEADERS; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "X-%d: v\r\n", i);
	memcpy(buf + o, "\r\n", 2);
	assert_int_equal(http_request_parse(buf, o + 2, &roomy, req, &err), (int)(o + 2));
	assert_int_equal(req->nheaders, HTTP_MAX_HEADERS);
	o += (size_t)snprintf(buf + o, sizeof(buf) - o, "X-last: v\r\n");
	assert_int_equal(http_request_parse(buf, o, &roomy, req, &err), -EBADMSG); /* still incomplete */
	assert_int_equal(err.status, 431);

	/* NULL limits: the defaults */
	n = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_int_equal(http_request_parse(buf, (size_t)n, NULL, req, &err), n);
	n = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\n\r\n");
	assert_int_equal(http_request_parse(buf, (size_t)n, NULL, req, &err), -EBADMSG);
	free(req);
}

/* Invalid bytes are reported before the head is complete. */
static void test_early_errors(void **state)
{
	static const char *const partial[] = {
		"GET / HTTP/1.1\r\nHost: a\r\nX: a\0",
		"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb",
		"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b",
		"GET / HTTP/1.1\r\nHost: a\r\nFoo :",
		"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n",
		"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n",
		"GET /a\x01",
		"GET / HTTX",
		"G\x01",
	};
	struct http_request *req = malloc(sizeof(*req));
	struct http_error err;
	(void)state;
	assert_non_null(req);
	for (size_t i = 0; i < sizeof(partial) / sizeof(partial[0]); i++) {
		size_t len = strlen(partial[i]);
		if (i == 0)
			len += 1; /* the NUL itself */
		if (http_request_parse(partial[i], len, NULL, req, &err) != -EBADMSG)
			fail_msg("partial head %zu not refused early", i);
	}
	free(req);
}

/* Every proper prefix of a valid head is "incomplete", never an error. */
static void test_incremental_head(void **state)
{
	static const char msg[] = "\r\nPOST /upload?x=1 HTTP/1.1\r\n" HOST
				  "Content-Type: text/plain\r\nX-Empty:\r\nConnection: keep-alive, X-Trace\r\n"
				  "X-Trace: 1\r\nContent-Length: 3\r\n\r\nabc";
	size_t head = sizeof(msg) - 1 - 3;
	struct http_request *req = malloc(sizeof(*req));
	struct http_error err;
	(void)state;
	assert_non_null(req);
	for (size_t i = 0; i < head; i++)
		if (http_request_parse(msg, i, NULL, req, &err) != 0)
			fail_msg("prefix of %zu bytes: not incomplete", i);
	assert_int_equal(http_request_parse(msg, head, NULL, req, &err), (int)head);
	assert_int_equal(http_request_parse(msg, sizeof(msg) - 1, NULL, req, &err), (int)head);
	assert_int_equal(req->head_len, head);
	assert_int_equal(req->framing, HTTP_FRAMING_LENGTH);
	assert_int_equal(req->content_length, 3);
	assert_int_equal(req->method_id, HTTP_METHOD_POST);
	assert_true(http_slice_eq(msg, req->target, "/upload?x=1"));
	assert_true(http_slice_eq(msg, req->host, "example.com"));
	assert_int_equal(req->nheaders, 6);
	assert_true(http_slice_eq(msg, req->headers[2].name, "x-empty"));
	assert_int_equal(req->headers[2].value.len, 0);
	free(req);
}

/* ---- accepted requests -------------------------------------------------- */

static void test_request_fields(void **state)
{
	static const char msg[] = "GET http://example.com:8080/a HTTP/1.1\r\n"
				  "Host: example.com:8080\r\n"
				  "Connection: Keep-Alive, X-Secret ,, upgrade\r\n"
				  "x-secret:  \t hidden\t \r\n"
				  "Keep-Alive: timeout=5\r\n"
				  "Upgrade: websocket\r\n"
				  "TE: trailers\r\n"
				  "Trailer: X-Checksum\r\n"
				  "Proxy-Connection: keep-alive\r\n"
				  "X-Forwarded-For: 10.0.0.1\r\n"
				  "X-Forwarded-Proto: https\r\n"
				  "X-Forwarded-Host: a\r\n"
				  "X-Request-Id: 42\r\n"
				  "Expect: 100-CONTINUE\r\n"
				  "Accept: \xe9t\xe9\r\n"
				  "\r\n";
	struct replay_opts o = request_opts();
	struct replay *r;
	(void)state;
	r = expect_one("fields", S(msg), &o);
	const struct http_request *q = &r->msgs[0].req;
	static const uint32_t want[] = {
		HTTP_HDR_HOST,
		HTTP_HDR_HOP,
		HTTP_HDR_HOP,
		HTTP_HDR_HOP,
		HTTP_HDR_HOP | HTTP_HDR_UPGRADE,
		HTTP_HDR_HOP,
		HTTP_HDR_HOP,
		HTTP_HDR_HOP,
		HTTP_HDR_XFF,
		HTTP_HDR_XF_OTHER,
		HTTP_HDR_XF_OTHER,
		HTTP_HDR_REQUEST_ID,
		HTTP_HDR_EXPECT,
		0,
	};
	assert_int_equal(q->nheaders, sizeof(want) / sizeof(want[0]));
	for (uint32_t i = 0; i < q->nheaders; i++)
		if (q->headers[i].flags != want[i])
			fail_msg("header %u flags %#x, want %#x", i, q->headers[i].flags, want[i]);
	assert_true(http_slice_eq(msg, q->headers[2].value, "hidden"));
	assert_true(http_slice_eq(msg, q->headers[13].value, "\xe9t\xe9"));
	assert_true(http_slice_eq(msg, q->host, "example.com:8080"));
	assert_int_equal(q->flags, HTTP_MSG_KEEP_ALIVE | HTTP_MSG_UPGRADE | HTTP_MSG_EXPECT_CONTINUE);
	assert_int_equal(q->framing, HTTP_FRAMING_NONE);
	assert_int_equal(q->version_minor, 1);
	replay_free(r);
}

static uint32_t request_flags(const char *raw, size_t len)
{
	struct replay_opts o = request_opts();
	struct replay *r = expect_one(raw, raw, len, &o);
	uint32_t f = r->msgs[0].req.flags;
	replay_free(r);
	return f;
}

static void test_keep_alive(void **state)
{
	(void)state;
	assert_int_equal(request_flags(S("GET / HTTP/1.1\r\n" HOST "\r\n")), HTTP_MSG_KEEP_ALIVE);
	assert_int_equal(request_flags(S("GET / HTTP/1.1\r\n" HOST "Connection: close\r\n\r\n")),
			 HTTP_MSG_CONN_CLOSE);
	assert_int_equal(request_flags(S("GET / HTTP/1.1\r\n" HOST "Connection: CLOSE, keep-alive\r\n\r\n")),
			 HTTP_MSG_CONN_CLOSE);
	assert_int_equal(request_flags(S("GET / HTTP/1.1\r\n" HOST "Connection: x\r\nConnection: close\r\n\r\n")),
			 HTTP_MSG_CONN_CLOSE);
	assert_int_equal(request_flags(S("GET / HTTP/1.0\r\n\r\n")), 0);
	assert_int_equal(request_flags(S("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")), HTTP_MSG_KEEP_ALIVE);
	assert_int_equal(request_flags(S("GET / HTTP/1.0\r\nConnection: Keep-Alive, close\r\n\r\n")),
			 HTTP_MSG_CONN_CLOSE);
	/* Upgrade needs both fields, and HTTP/1.1; 100-continue needs 1.1 */
	assert_int_equal(request_flags(S("GET / HTTP/1.1\r\n" HOST "Upgrade: ws\r\n\r\n")), HTTP_MSG_KEEP_ALIVE);
	assert_int_equal(request_flags(S("GET / HTTP/1.1\r\n" HOST "Connection: upgrade\r\n\r\n")),
			 HTTP_MSG_KEEP_ALIVE);
	assert_int_equal(request_flags(S("GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: ws\r\n\r\n")), 0);
	assert_int_equal(request_flags(S("GET / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n")), 0);
	assert_int_equal(request_flags(S("GET / HTTP/1.1\r\n" HOST "Expect: 100-continuex\r\n\r\n")),
			 HTTP_MSG_KEEP_ALIVE);
}

static void test_request_forms(void **state)
{
	static const struct {
		const char *raw;
		enum http_method id;
		const char *name;
	} ok[] = {
		{ "OPTIONS * HTTP/1.1\r\n" HOST "\r\n", HTTP_METHOD_OPTIONS, "OPTIONS" },
		{ "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", HTTP_METHOD_CONNECT, "CONNECT" },
		{ "CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n", HTTP_METHOD_CONNECT, "CONNECT" },
		{ "DELETE /x HTTP/1.1\r\n" HOST "\r\n", HTTP_METHOD_DELETE, "DELETE" },
		{ "PATCH /x HTTP/1.1\r\n" HOST "\r\n", HTTP_METHOD_PATCH, "PATCH" },
		{ "TRACE /x HTTP/1.1\r\n" HOST "\r\n", HTTP_METHOD_TRACE, "TRACE" },
		{ "PUT /x HTTP/1.1\r\n" HOST "\r\n", HTTP_METHOD_PUT, "PUT" },
		{ "HEAD /x HTTP/1.1\r\n" HOST "\r\n", HTTP_METHOD_HEAD, "HEAD" },
		{ "PROPFIND /x HTTP/1.1\r\n" HOST "\r\n", HTTP_METHOD_OTHER, "OTHER" },
		{ "GET https://example.com/x HTTP/1.1\r\n" HOST "\r\n", HTTP_METHOD_GET, "GET" },
		{ "GET /%7e?q=\"|\\^` HTTP/1.1\r\n" HOST "\r\n", HTTP_METHOD_GET, "GET" },
		{ "GET / HTTP/1.1\r\nHost: 127.0.0.1:65535\r\n\r\n", HTTP_METHOD_GET, "GET" },
		{ "GET / HTTP/1.1\r\nHost: a%41b-c_d~e!$&'()*+,;=\r\n\r\n", HTTP_METHOD_GET, "GET" },
		{ "GET / HTTP/1.1\r\nHost: [v1.fe80::a+en1]\r\n\r\n", HTTP_METHOD_GET, "GET" },
		{ "GET / HTTP/1.0\r\n\r\n", HTTP_METHOD_GET, "GET" },
		{ "\r\n\r\nGET / HTTP/1.1\r\n" HOST "\r\n", HTTP_METHOD_GET, "GET" },
	};
	struct replay_opts o = request_opts();
	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct replay *r = expect_one(ok[i].raw, ok[i].raw, strlen(ok[i].raw), &o);
		assert_int_equal(r->msgs[0].req.method_id, ok[i].id);
		assert_string_equal(http_method_name(r->msgs[0].req.method_id), ok[i].name);
		replay_free(r);
	}
	/* require_host = false: a 1.1 request without Host is fine */
	o.limits.require_host = false;
	replay_free(expect_one("no Host", S("GET / HTTP/1.1\r\n\r\n"), &o));
	expect_refused("no Host, still one at most", S("GET / HTTP/1.1\r\n" HOST HOST "\r\n"), &o, 400);
}

/* Pipelined requests: a body never consumes the next request's bytes. */
static void test_pipelining(void **state)
{
	static const char msg[] = POST "Content-Length: 5\r\n\r\nhello"
				       "POST /2 HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n"
				       "3;x=\"y\"\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"
				       "GET /3 HTTP/1.1\r\n" HOST "\r\n"
				       "GET /4 HTTP/1.1\r\n" HOST "Connection: close\r\n\r\n"
				       "GET /never HTTP/1.1\r\n" HOST "\r\n";
	struct replay_opts o = request_opts();
	struct replay *r;
	(void)state;
	for (size_t step = 0; step <= 3; step++) {
		o.feed_step = step;
		r = replay(S(msg), &o);
		assert_int_equal(r->end, END_STOP);
		assert_int_equal(r->complete, 4);
		assert_int_equal(r->msgs[0].body_len, 5);
		assert_memory_equal(r->msgs[0].body, "hello", 5);
		assert_int_equal(r->msgs[1].body_len, 3);
		assert_memory_equal(r->msgs[1].body, "abc", 3);
		assert_int_equal(r->msgs[1].trailers_len, 8);
		assert_memory_equal(r->msgs[1].trailers, "X-T: 1\r\n", 8);
		assert_true(http_slice_eq(r->msgs[2].head, r->msgs[2].req.target, "/3"));
		assert_int_equal(r->msgs[2].req.framing, HTTP_FRAMING_NONE);
		assert_int_equal(r->msgs[3].req.flags, HTTP_MSG_CONN_CLOSE);
		replay_free(r);
	}
}

/* The chunked decoder: exact consumption, data spans, one byte at a time. */
static void test_chunked_exact(void **state)
{
	static const char body[] = "5;a=b;c=\"d\\\"; e\"\r\nhello\r\n"
				   "A\r\n0123456789\r\n"
				   "000010\r\nABCDEFGHIJKLMNOP\r\n"
				   "0;last\r\nX-Checksum: abc\r\nX-Empty:\r\n\r\n"
				   "NEXT";
	const size_t body_len = sizeof(body) - 1 - 4;
	static const char want[] = "hello0123456789ABCDEFGHIJKLMNOP";
	struct http_request req = { .framing = HTTP_FRAMING_CHUNKED };
	struct http_error err;
	(void)state;

	for (size_t step = 1; step <= sizeof(body); step++) {
		struct http_body b;
		char out[64];
		size_t pos = 0, outn = 0, calls = 0;
		http_body_init_request(&b, &req, 64);
		assert_false(b.done);
		while (!b.done) {
			size_t n = sizeof(body) - 1 - pos, off, dl;
			if (n > step)
				n = step;
			ssize_t c = http_body_feed(&b, body + pos, n, &off, &dl, &err);
			if (c < 0)
				fail_msg("step %zu: error %s at %zu+%zu", step, err.reason, pos, err.offset);
			assert_true(off + dl <= (size_t)c);
			memcpy(out + outn, body + pos + off, dl);
			outn += dl;
			pos += (size_t)c;
			assert_true(++calls < 1000);
		}
		assert_int_equal(pos, body_len);
		assert_int_equal(outn, sizeof(want) - 1);
		assert_memory_equal(out, want, outn);
		/* done: nothing more is consumed */
		size_t off, dl;
		assert_int_equal(http_body_feed(&b, "NEXT", 4, &off, &dl, &err), 0);
		assert_int_equal(dl, 0);
	}
}

/* The call stops right after a data span. */
static void test_chunked_spans(void **state)
{
	static const char body[] = "2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n";
	struct http_request req = { .framing = HTTP_FRAMING_CHUNKED };
	struct http_body b;
	struct http_error err;
	size_t off, dl;
	(void)state;
	http_body_init_request(&b, &req, 0);
	assert_int_equal(http_body_feed(&b, body, sizeof(body) - 1, &off, &dl, &err), 5);
	assert_int_equal(off, 3);
	assert_int_equal(dl, 2);
	assert_int_equal(http_body_feed(&b, body + 5, sizeof(body) - 6, &off, &dl, &err), 8);
	assert_int_equal(off, 5);
	assert_int_equal(dl, 3);
	assert_int_equal(http_body_feed(&b, body + 13, sizeof(body) - 14, &off, &dl, &err), 7);
	assert_int_equal(dl, 0);
	assert_true(b.done);

	/* an error sticks */
	http_body_init_request(&b, &req, 0);
	assert_int_equal(http_body_feed(&b, "x", 1, &off, &dl, &err), -EBADMSG);
	assert_int_equal(err.status, 400);
	assert_int_equal(http_body_feed(&b, "0\r\n\r\n", 5, &off, &dl, &err), -EBADMSG);

	/* a 16-digit size is the largest accepted */
	http_body_init_request(&b, &req, 0);
	assert_int_equal(http_body_feed(&b, "ffffffffffffffff\r\nab", 20, &off, &dl, &err), 20);
	assert_int_equal(dl, 2);
	assert_int_equal(b.remaining, UINT64_MAX - 2);

	/* Content-Length and NONE framing */
	struct http_request lreq = { .framing = HTTP_FRAMING_LENGTH, .content_length = 3 };
	http_body_init_request(&b, &lreq, 0);
	assert_int_equal(http_body_feed(&b, "ab", 2, &off, &dl, &err), 2);
	assert_int_equal(http_body_feed(&b, "cdef", 4, &off, &dl, &err), 1);
	assert_int_equal(off, 0);
	assert_int_equal(dl, 1);
	assert_true(b.done);
	struct http_request nreq = { .framing = HTTP_FRAMING_NONE };
	http_body_init_request(&b, &nreq, 0);
	assert_true(b.done);
	assert_int_equal(http_body_feed(&b, "ab", 2, &off, &dl, &err), 0);
}

/* A size line longer than the bound is refused even with valid extensions. */
static void test_chunk_line_bound(void **state)
{
	struct http_request req = { .framing = HTTP_FRAMING_CHUNKED };
	struct http_body b;
	struct http_error err;
	char line[8192];
	size_t off, dl, n = 0;
	(void)state;
	line[n++] = '1';
	while (n < sizeof(line) - 8) {
		memcpy(line + n, ";ab=cd", 6);
		n += 6;
	}
	http_body_init_request(&b, &req, 0);
	assert_int_equal(http_body_feed(&b, line, n, &off, &dl, &err), -EBADMSG);
	assert_true(err.offset > 4000 && err.offset < 4200);
}

/* ---- responses ---------------------------------------------------------- */

static const struct refusal response_refusals[] = {
	R("CL and TE", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 502),
	R("two CL", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 502),
	R("CL list", "HTTP/1.1 200 OK\r\nContent-Length: 5,5\r\n\r\nhello", 502),
	R("TE gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 502),
	R("TE chunked, gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 502),
	R("two TE", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 502),
	R("TE in 1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 502),
	R("CL and TE in 304", "HTTP/1.1 304 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 502),
	R("two-digit status", "HTTP/1.1 20 OK\r\n\r\n", 502),
	R("status 099", "HTTP/1.1 099 X\r\n\r\n", 502),
	R("status 600", "HTTP/1.1 600 X\r\n\r\n", 502),
	R("four-digit status", "HTTP/1.1 2000 OK\r\n\r\n", 502),
	R("two spaces before status", "HTTP/1.1  200 OK\r\n\r\n", 502),
	R("tab before status", "HTTP/1.1\t200 OK\r\n\r\n", 502),
	R("HTTP/2", "HTTP/2 200 OK\r\n\r\n", 502),
	R("HTTP/1.2", "HTTP/1.2 200 OK\r\n\r\n", 502),
	R("bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", 502),
	R("bare CR", "HTTP/1.1 200 OK\rContent-Length: 0\r\n\r\n", 502),
	R("control in reason", "HTTP/1.1 200 O\x01K\r\n\r\n", 502),
	R("obs-fold", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n", 502),
	R("bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n", 502),
	R("too many fields",
	  "HTTP/1.1 200 OK\r\n"
	  "A:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\n"
	  "A:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\n"
	  "A:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\n"
	  "A:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\n"
	  "A:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\n"
	  "A:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\n"
	  "A:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\n"
	  "A:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\nA:1\r\n"
	  "A:1\r\n\r\n",
	  502),
};

static void test_response_refusals(void **state)
{
	struct replay_opts o = response_opts();
	(void)state;
	run_refusals(response_refusals, sizeof(response_refusals) / sizeof(response_refusals[0]), &o);
}

static struct replay *response_one(const char *raw, size_t len, enum http_method m)
{
	struct replay_opts o = response_opts();
	o.request_method = m;
	return replay(raw, len, &o);
}

static void test_response_framing(void **state)
{
	static const struct {
		const char *raw;
		enum http_method method;
		enum http_framing framing;
		uint32_t flags;
	} t[] = {
		{ "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", HTTP_METHOD_HEAD, HTTP_FRAMING_NONE, HTTP_MSG_KEEP_ALIVE },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP_METHOD_HEAD, HTTP_FRAMING_NONE,
		  HTTP_MSG_KEEP_ALIVE },
		{ "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", HTTP_METHOD_GET, HTTP_FRAMING_NONE,
		  HTTP_MSG_KEEP_ALIVE },
		{ "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP_METHOD_GET, HTTP_FRAMING_NONE,
		  HTTP_MSG_KEEP_ALIVE },
		{ "HTTP/1.1 100 Continue\r\n\r\n", HTTP_METHOD_POST, HTTP_FRAMING_NONE, HTTP_MSG_KEEP_ALIVE },
		{ "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", HTTP_METHOD_GET, HTTP_FRAMING_NONE, HTTP_MSG_KEEP_ALIVE },
		{ "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
		  HTTP_METHOD_GET, HTTP_FRAMING_NONE, HTTP_MSG_KEEP_ALIVE | HTTP_MSG_UPGRADE },
		{ "HTTP/1.1 200 Connection established\r\n\r\n", HTTP_METHOD_CONNECT, HTTP_FRAMING_NONE,
		  HTTP_MSG_KEEP_ALIVE },
		{ "HTTP/1.1 407 Auth\r\nContent-Length: 2\r\n\r\n", HTTP_METHOD_CONNECT, HTTP_FRAMING_LENGTH,
		  HTTP_MSG_KEEP_ALIVE },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n", HTTP_METHOD_GET, HTTP_FRAMING_CHUNKED,
		  HTTP_MSG_KEEP_ALIVE },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", HTTP_METHOD_GET, HTTP_FRAMING_NONE, HTTP_MSG_KEEP_ALIVE },
		{ "HTTP/1.1 200 OK\r\n\r\n", HTTP_METHOD_GET, HTTP_FRAMING_CLOSE, 0 },
		{ "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n", HTTP_METHOD_GET, HTTP_FRAMING_CLOSE, 0 },
		{ "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n", HTTP_METHOD_GET,
		  HTTP_FRAMING_LENGTH, HTTP_MSG_KEEP_ALIVE },
		{ "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", HTTP_METHOD_GET, HTTP_FRAMING_LENGTH, 0 },
		{ "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n", HTTP_METHOD_GET,
		  HTTP_FRAMING_LENGTH, HTTP_MSG_CONN_CLOSE },
		{ "HTTP/1.1 301\r\nContent-Length: 0\r\n\r\n", HTTP_METHOD_GET, HTTP_FRAMING_NONE, HTTP_MSG_KEEP_ALIVE },
		{ "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", HTTP_METHOD_GET, HTTP_FRAMING_NONE, HTTP_MSG_KEEP_ALIVE },
	};
	struct http_response *resp = malloc(sizeof(*resp));
	struct http_error err;
	(void)state;
	assert_non_null(resp);
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		size_t len = strlen(t[i].raw);
		int r = http_response_parse(t[i].raw, len, NULL, t[i].method, resp, &err);
		if (r != (int)len)
			fail_msg("response %zu: %d (%s)", i, r, r < 0 ? err.reason : "");
		if (resp->framing != t[i].framing || resp->flags != t[i].flags)
			fail_msg("response %zu: framing %d flags %#x, want %d %#x", i, resp->framing, resp->flags,
				 t[i].framing, t[i].flags);
	}
	/* 1xx then the final response; the reason phrase keeps 8-bit bytes */
	static const char seq[] = "HTTP/1.1 100 Continue\r\n\r\n\r\nHTTP/1.1 500 Ori\xebnt\r\nContent-Length: 2\r\n\r\nok";
	struct replay *r = response_one(S(seq), HTTP_METHOD_POST);
	assert_int_equal(r->end, END_INPUT);
	assert_int_equal(r->complete, 2);
	assert_int_equal(r->msgs[1].resp.status, 500);
	assert_true(http_slice_eq(r->msgs[1].head, r->msgs[1].resp.reason, "ori\xebnt"));
	replay_free(r);
	/* close-delimited: everything is data */
	struct http_body b;
	size_t off, dl;
	assert_int_equal(http_response_parse(S("HTTP/1.1 200 OK\r\n\r\n"), NULL, HTTP_METHOD_GET, resp, &err), 19);
	http_body_init_response(&b, resp, 0);
	assert_int_equal(http_body_feed(&b, "HTTP/1.1 200 OK\r\n", 17, &off, &dl, &err), 17);
	assert_int_equal(dl, 17);
	assert_false(b.done);
	free(resp);
}

/* ---- smuggling shapes ---------------------------------------------------- */

static const struct refusal smuggling[] = {
	R("CL.TE", POST "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG", 400),
	R("TE.CL", POST "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n", 400),
	R("TE.TE space before colon", POST "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400),
	R("TE.TE second bogus TE", POST "Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\n", 400),
	R("TE.TE trailing comma", POST "Transfer-Encoding: chunked, \r\n\r\n0\r\n\r\n", 400),
	R("TE.TE leading comma", POST "Transfer-Encoding: , chunked\r\n\r\n0\r\n\r\n", 400),
	R("TE.TE vertical tab", POST "Transfer-Encoding:\x0b" "chunked\r\n\r\n0\r\n\r\n", 400),
	R("TE.TE trailing vertical tab", POST "Transfer-Encoding: chunked\x0b\r\n\r\n0\r\n\r\n", 400),
	R("TE.TE form feed", POST "Transfer-Encoding: \x0c" "chunked\r\n\r\n0\r\n\r\n", 400),
	R("TE.TE quoted", POST "Transfer-Encoding: \"chunked\"\r\n\r\n0\r\n\r\n", 400),
	R("TE.TE obs-fold", POST "X: y\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
	R("TE.TE folded value", POST "Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", 400),
	R("TE.TE NUL", POST "Transfer-Encoding: chunked\0\r\n\r\n0\r\n\r\n", 400),
	R("TE.TE 8-bit", POST "Transfer-Encoding: chunk\xc4\xb1" "d\r\n\r\n0\r\n\r\n", 400),
	R("TE.TE bare LF", POST "X: y\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
	R("TE.TE in 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc", 400),
	R("CL.CL", POST "Content-Length: 0\r\nContent-Length: 0\r\n\r\n", 400),
	R("CL with space inside", POST "Content-Length: 1 0\r\n\r\n", 400),
	R("chunk size overflow to 0", CHUNKED_POST "10000000000000000\r\n\r\n", 400),
	R("LF-terminated chunk", CHUNKED_POST "3\r\nabc\n0\r\n\r\n", 400),
	R("CRCR", POST "Content-Length: 0\r\n\r\r\n", 400),
	R("Host.Host", "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400),
	R("Connection strips Content-Length",
	  POST "Connection: Content-Length\r\nContent-Length: 30\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n", 400),
};

static void test_smuggling(void **state)
{
	struct replay_opts o = request_opts();
	struct replay *r;
	(void)state;
	run_refusals(smuggling, sizeof(smuggling) / sizeof(smuggling[0]), &o);

	/* genuinely legal shapes */
	static const char *const chunked_ok[] = {
		POST "Transfer-Encoding:\tchunked\r\n\r\n0\r\n\r\n",
		POST "Transfer-Encoding:chunked\r\n\r\n0\r\n\r\n",
		POST "Transfer-Encoding: chunked \r\n\r\n0\r\n\r\n",
		POST "Transfer-Encoding:  chunked\t \r\n\r\n0\r\n\r\n",
		POST "transfer-encoding: CHUNKED\r\n\r\n0\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(chunked_ok) / sizeof(chunked_ok[0]); i++) {
		r = expect_one(chunked_ok[i], chunked_ok[i], strlen(chunked_ok[i]), &o);
		assert_int_equal(r->msgs[0].req.framing, HTTP_FRAMING_CHUNKED);
		replay_free(r);
	}
	/* a look-alike name is just another field: no body */
	r = replay(S(POST "Transfer_Encoding: chunked\r\n\r\n"), &o);
	assert_int_equal(r->end, END_INPUT);
	assert_int_equal(r->msgs[0].req.framing, HTTP_FRAMING_NONE);
	replay_free(r);
	/* Content-Length with leading zeros is one number */
	r = expect_one("CL 007", S(POST "Content-Length: 007\r\n\r\nabcdefg"), &o);
	assert_int_equal(r->msgs[0].req.content_length, 7);
	replay_free(r);
}

/* ---- helpers -------------------------------------------------------------- */

static void test_helpers(void **state)
{
	static const int codes[] = { 100, 101, 200, 201, 202, 203, 204, 205, 206, 301, 302, 303, 304, 305, 307, 308,
				     400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415,
				     416, 417, 421, 422, 426, 428, 429, 431, 500, 501, 502, 503, 504, 505 };
	(void)state;
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (strcmp(http_status_reason(codes[i]), "Unknown") == 0)
			fail_msg("no reason for %d", codes[i]);
	assert_string_equal(http_status_reason(431), "Request Header Fields Too Large");
	assert_string_equal(http_status_reason(999), "Unknown");
	assert_string_equal(http_status_reason(-1), "Unknown");
	assert_string_equal(http_method_name(HTTP_METHOD_GET), "GET");
	assert_string_equal(http_method_name(HTTP_METHOD_OTHER), "OTHER");
	assert_string_equal(http_method_name(HTTP_METHOD__COUNT), "OTHER");
	assert_string_equal(http_method_name((enum http_method)-1), "OTHER");
	struct http_slice s = { 2, 4 };
	assert_true(http_slice_eq("xxHoStyy", s, "host"));
	assert_false(http_slice_eq("xxHoStyy", s, "hos"));
	assert_false(http_slice_eq("xxHoStyy", s, "hosts"));
	assert_true(http_slice_eq("", (struct http_slice){ 0, 0 }, ""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_request_refusals),
		cmocka_unit_test(test_trailer_limit),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_early_errors),
		cmocka_unit_test(test_incremental_head),
		cmocka_unit_test(test_request_fields),
		cmocka_unit_test(test_keep_alive),
		cmocka_unit_test(test_request_forms),
		cmocka_unit_test(test_pipelining),
		cmocka_unit_test(test_chunked_exact),
		cmocka_unit_test(test_chunked_spans),
		cmocka_unit_test(test_chunk_line_bound),
		cmocka_unit_test(test_response_refusals),
		cmocka_unit_test(test_response_framing),
		cmocka_unit_test(test_smuggling),
		cmocka_unit_test(test_helpers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

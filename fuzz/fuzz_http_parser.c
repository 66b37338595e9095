/* fuzz_http_parser.c - libFuzzer target for the strict HTTP/1.1 parser.
 *
 * The first input byte picks the configuration, the rest is the bytes of a
 * connection:
 *   bit 0      0 = requests, 1 = responses
 *   bits 1-2   limits: 0 = 8192/2048 with Host required, 1 = tiny (256/64),
 *              2 = 1024/128 without Host, 3 = NULL (the defaults)
 *   bits 3-4   responses: method of the request (GET, HEAD, CONNECT, POST)
 *   bits 5-7   body feed step: 0 = all at once, n = 2^(n-1) bytes per call
 * Messages are parsed in sequence, heads then bodies, like the proxy does.
 * Beyond memory safety (ASan/UBSan) the target checks the parser's
 * contracts and aborts when one breaks: results lie inside the buffer,
 * slices hold only the bytes the grammar allows, a valid head is
 * "incomplete" at every shorter length and independent of what follows it,
 * framing agrees with the fields, and a body decodes to the same bytes,
 * the same end and the same error offset whatever the feed sizes.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/parser.h"

#define MAX_MESSAGES 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                   \
	do {                                                                                          \
		if (!(cond)) {                                                                        \
			fprintf(stderr, "%s:%d: contract broken: %s\n", __FILE__, __LINE__, #cond);   \
			abort();                                                                      \
		}                                                                                     \
	} while (0)

static bool is_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool is_value_byte(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static void check_slice(struct http_slice s, size_t head_len)
{
	CHECK((size_t)s.off + s.len <= head_len);
}

static void check_fields(const char *b, const struct http_header *h, uint32_t n, size_t head_len)
{
	CHECK(n <= HTTP_MAX_HEADERS);
	for (uint32_t i = 0; i < n; i++) {
		check_slice(h[i].name, head_len);
		check_slice(h[i].value, head_len);
		CHECK(h[i].name.len > 0);
		for (uint32_t j = 0; j < h[i].name.len; j++)
			CHECK(is_tchar((unsigned char)b[h[i].name.off + j]));
		CHECK(b[h[i].name.off + h[i].name.len] == ':');
		for (uint32_t j = 0; j < h[i].value.len; j++)
			CHECK(is_value_byte((unsigned char)b[h[i].value.off + j]));
		if (h[i].value.len) {
			unsigned char first = (unsigned char)b[h[i].value.off];
			unsigned char last = (unsigned char)b[h[i].value.off + h[i].value.len - 1];
			CHECK(first != ' ' && first != '\t' && last != ' ' && last != '\t');
		}
	}
}

/* Count the fields carrying flag. */
static unsigned count_flag(const struct http_header *h, uint32_t n, uint32_t flag)
{
	unsigned c = 0;
	for (uint32_t i = 0; i < n; i++)
		c += (h[i].flags & flag) != 0;
	return c;
}

static struct http_request req_a, req_b;
static struct http_response resp_a, resp_b;

/* Parse a head at b[0..len) into the "a" or "b" struct. */
static int parse(bool response, const char *b, size_t len, const struct http_limits *lim, enum http_method m,
		 bool second, struct http_error *err)
{
	if (response)
		return http_response_parse(b, len, lim, m, second ? &resp_b : &resp_a, err);
	return http_request_parse(b, len, lim, second ? &req_b : &req_a, err);
}

/* Check one head; returns its length, or 0 when the connection ends here. */
static size_t check_head(bool response, const char *b, size_t len, const struct http_limits *lim,
			 enum http_method m)
{
	uint32_t max_head = lim && lim->max_head_bytes ? lim->max_head_bytes : 32768;
	uint32_t max_target = lim && lim->max_target_bytes ? lim->max_target_bytes : 8192;
	bool require_host = lim ? lim->require_host : true;
	struct http_error err = { 0 };
	int r = parse(response, b, len, lim, m, false, &err);

	if (r < 0) {
		CHECK(r == -EBADMSG);
		CHECK(err.reason != NULL);
		CHECK(err.offset <= len);
		if (response)
			CHECK(err.status == 502);
		else
			CHECK(err.status == 400 || err.status == 414 || err.status == 431 || err.status == 501 ||
			      err.status == 505);
		/* a shorter input never holds a complete head */
		if (len > 0)
			CHECK(parse(response, b, len - 1, lim, m, true, &err) <= 0);
		return 0;
	}
	if (r == 0) {
		CHECK(len <= max_head);
		if (len > 0)
			CHECK(parse(response, b, len - 1, lim, m, true, &err) == 0);
		return 0;
	}

	size_t hl = (size_t)r;
	CHECK(hl <= len && hl <= max_head);
	CHECK(b[hl - 2] == '\r' && b[hl - 1] == '\n');
	/* independent of what follows; incomplete at every shorter length */
	CHECK(parse(response, b, hl, lim, m, true, &err) == r);
	CHECK(parse(response, b, hl - 1, lim, m, true, &err) == 0);
	CHECK(parse(response, b, hl / 2, lim, m, true, &err) == 0);
	CHECK(parse(response, b, 0, lim, m, true, &err) == 0);

	if (response) {
		const struct http_response *q = &resp_a;
		CHECK(q->head_len == hl);
		CHECK(q->status >= 100 && q->status <= 599);
		CHECK(q->version_minor <= 1);
		check_slice(q->reason, hl);
		check_fields(b, q->headers, q->nheaders, hl);
		CHECK(count_flag(q->headers, q->nheaders, HTTP_HDR_CL) <= 1);
		CHECK(count_flag(q->headers, q->nheaders, HTTP_HDR_TE) <= 1);
		CHECK(!(count_flag(q->headers, q->nheaders, HTTP_HDR_CL) && count_flag(q->headers, q->nheaders, HTTP_HDR_TE)));
		if (q->framing == HTTP_FRAMING_CLOSE)
			CHECK(!(q->flags & HTTP_MSG_KEEP_ALIVE));
		if (q->framing == HTTP_FRAMING_LENGTH)
			CHECK(q->content_length > 0);
		if (q->framing == HTTP_FRAMING_CHUNKED)
			CHECK(q->version_minor == 1 && count_flag(q->headers, q->nheaders, HTTP_HDR_TE) == 1);
		if (m == HTTP_METHOD_HEAD || q->status < 200 || q->status == 204 || q->status == 304)
			CHECK(q->framing == HTTP_FRAMING_NONE);
	} else {
		const struct http_request *q = &req_a;
		CHECK(q->head_len == hl);
		CHECK(q->version_minor <= 1);
		CHECK((unsigned)q->method_id < HTTP_METHOD__COUNT);
		check_slice(q->method, hl);
		check_slice(q->target, hl);
		check_slice(q->host, hl);
		CHECK(q->method.len > 0 && q->target.len > 0 && q->target.len <= max_target);
		for (uint32_t j = 0; j < q->method.len; j++)
			CHECK(is_tchar((unsigned char)b[q->method.off + j]));
		for (uint32_t j = 0; j < q->target.len; j++)
			CHECK(b[q->target.off + j] > 0x20 && b[q->target.off + j] < 0x7f);
		CHECK(strncmp(http_method_name(q->method_id), "", 1) != 0);
		check_fields(b, q->headers, q->nheaders, hl);
		unsigned hosts = count_flag(q->headers, q->nheaders, HTTP_HDR_HOST);
		CHECK(hosts <= 1);
		if (q->version_minor == 1 && require_host)
			CHECK(hosts == 1);
		if (hosts == 0)
			CHECK(q->host.len == 0);
		CHECK(count_flag(q->headers, q->nheaders, HTTP_HDR_CL) <= 1);
		CHECK(count_flag(q->headers, q->nheaders, HTTP_HDR_TE) <= 1);
		CHECK(!(count_flag(q->headers, q->nheaders, HTTP_HDR_CL) && count_flag(q->headers, q->nheaders, HTTP_HDR_TE)));
		CHECK(q->framing != HTTP_FRAMING_CLOSE);
		if (q->framing == HTTP_FRAMING_LENGTH)
			CHECK(q->content_length > 0);
		if (q->framing == HTTP_FRAMING_CHUNKED)
			CHECK(q->version_minor == 1 && count_flag(q->headers, q->nheaders, HTTP_HDR_TE) == 1);
		if (q->method_id == HTTP_METHOD_CONNECT)
			CHECK(q->framing == HTTP_FRAMING_NONE);
		if (q->flags & HTTP_MSG_UPGRADE)
			CHECK(count_flag(q->headers, q->nheaders, HTTP_HDR_UPGRADE) > 0);
	}
	return hl;
}

struct body_run {
	ssize_t consumed;   /* total consumed, or -1 on error */
	size_t error_at;    /* absolute offset of the error */
	bool done;
	size_t data_len;
	char *data;
};

/* Decode the body at b[0..len) feeding step bytes per call (0: all). */
static void run_body(const struct http_body *init, const char *b, size_t len, size_t step, struct body_run *out)
{
	struct http_body body = *init;
	size_t pos = 0;
	out->data_len = 0;
	out->done = body.done;
	out->consumed = 0;
	while (!body.done && pos < len) {
		size_t avail = len - pos, off = 99, dl = 99;
		struct http_error err = { 0 };
		if (step && avail > step)
			avail = step;
		ssize_t c = http_body_feed(&body, b + pos, avail, &off, &dl, &err);
		if (c < 0) {
			CHECK(c == -EBADMSG);
			CHECK(err.reason != NULL && err.offset < avail);
			CHECK(err.status == 400 || err.status == 502);
			out->consumed = -1;
			out->error_at = pos + err.offset;
			/* errors stick */
			CHECK(http_body_feed(&body, b + pos, avail, &off, &dl, &err) == -EBADMSG);
			return;
		}
		CHECK((size_t)c <= avail);
		CHECK(off + dl <= (size_t)c);
		CHECK(c > 0 || body.done);
		memcpy(out->data + out->data_len, b + pos + off, dl);
		out->data_len += dl;
		pos += (size_t)c;
	}
	out->done = body.done;
	out->consumed = (ssize_t)pos;
	if (body.done) {
		size_t off, dl;
		struct http_error err;
		CHECK(http_body_feed(&body, b, len, &off, &dl, &err) == 0 && dl == 0);
	}
}

static void same_run(const struct body_run *x, const struct body_run *y)
{
	CHECK(x->consumed == y->consumed);
	if (x->consumed < 0) {
		CHECK(x->error_at == y->error_at);
		return;
	}
	CHECK(x->done == y->done);
	CHECK(x->data_len == y->data_len);
	CHECK(memcmp(x->data, y->data, x->data_len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum http_method methods[4] = { HTTP_METHOD_GET, HTTP_METHOD_HEAD, HTTP_METHOD_CONNECT,
						     HTTP_METHOD_POST };
	static const struct http_limits limits[3] = {
		{ .max_head_bytes = 8192, .max_target_bytes = 2048, .require_host = true },
		{ .max_head_bytes = 256, .max_target_bytes = 64, .require_host = true },
		{ .max_head_bytes = 1024, .max_target_bytes = 128, .require_host = false },
	};
	if (size < 1)
		return 0;
	uint8_t mode = data[0];
	bool response = mode & 1;
	unsigned li = (mode >> 1) & 3;
	const struct http_limits *lim = li == 3 ? NULL : &limits[li];
	enum http_method m = methods[(mode >> 3) & 3];
	unsigned st = (mode >> 5) & 7;
	size_t step = st ? (size_t)1 << (st - 1) : 0;

	/* an exact-size copy so that ASan sees any read past the end */
	size_t len = size - 1;
	char *buf = malloc(len ? len : 1);
	struct body_run runs[3];
	if (!buf)
		return 0;
	memcpy(buf, data + 1, len);
	for (int i = 0; i < 3; i++) {
		runs[i].data = malloc(len ? len : 1);
		if (!runs[i].data)
			abort();
	}

	size_t pos = 0;
	for (int msg = 0; msg < MAX_MESSAGES && pos < len; msg++) {
		size_t hl = check_head(response, buf + pos, len - pos, lim, m);
		if (hl == 0)
			break;
		struct http_body body;
		uint32_t flags;
		bool upgrade;
		if (response) {
			http_body_init_response(&body, &resp_a, 64);
			flags = resp_a.flags;
			upgrade = resp_a.status == 101 || (m == HTTP_METHOD_CONNECT && resp_a.status / 100 == 2);
		} else {
			http_body_init_request(&body, &req_a, 64);
			flags = req_a.flags;
			upgrade = (req_a.flags & HTTP_MSG_UPGRADE) || req_a.method_id == HTTP_METHOD_CONNECT;
		}
		pos += hl;
		run_body(&body, buf + pos, len - pos, 0, &runs[0]);
		run_body(&body, buf + pos, len - pos, 1, &runs[1]);
		run_body(&body, buf + pos, len - pos, step, &runs[2]);
		same_run(&runs[0], &runs[1]);
		same_run(&runs[0], &runs[2]);
		if (runs[0].consumed < 0 || !runs[0].done)
			break;
		pos += (size_t)runs[0].consumed;
		if (upgrade || !(flags & HTTP_MSG_KEEP_ALIVE))
			break;
	}

	for (int i = 0; i < 3; i++)
		free(runs[i].data);
	free(buf);
	return 0;
}

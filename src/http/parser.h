/* parser.h - strict HTTP/1.1 message parser (RFC 9112), no I/O.
 *
 * Heads:   http_request_parse() / http_response_parse() parse a complete head
 *          from the start of a buffer.
 * Bodies:  http_body_init_*() then http_body_feed() on each new range of bytes.
 *
 * Everything ambiguous is rejected, never "fixed": both Content-Length and
 * Transfer-Encoding, differing or malformed Content-Length, transfer codings
 * other than a single final "chunked", obs-fold, bare CR or LF, NUL and other
 * control characters, bad token characters, bad chunk sizes or extensions,
 * a 1.1 request without exactly one Host (when limits->require_host).
 */
#pragma once
#include <sys/types.h>
#include "http/parser-t.h"

/* Parse a request head at buf[0..len).
 * Returns > 0: the head is complete and valid; the value is its length
 *              (also in req->head_len); req is filled, slices point into buf.
 *         0:   the head is incomplete and nothing seen so far is invalid:
 *              call again with more bytes (same start, longer len).
 *         < 0: -EBADMSG, *err says why (status 400, 414, 431, 501, 505);
 *              req content unspecified.
 * Leading empty lines (CRLF) before the request line are skipped as RFC 9112
 * section 2.2 allows; they count in head_len. */
int http_request_parse(const char *buf, size_t len, const struct http_limits *limits,
		       struct http_request *req, struct http_error *err);

/* Parse a response head at buf[0..len).  request_method is the method of the
 * request it answers (HEAD changes the framing; CONNECT 2xx is a tunnel).
 * Same return convention as http_request_parse (err->status is 502 for a
 * bad response).  1xx responses are returned like any other; the caller
 * forwards them and parses again for the final response. */
int http_response_parse(const char *buf, size_t len, const struct http_limits *limits,
			enum http_method request_method, struct http_response *resp,
			struct http_error *err);

/* Prepare body framing for a parsed message. */
void http_body_init_request(struct http_body *body, const struct http_request *req, uint32_t max_trailer_bytes);
void http_body_init_response(struct http_body *body, const struct http_response *resp, uint32_t max_trailer_bytes);

/* Feed body bytes p[0..n).
 * Returns >= 0: the number of bytes consumed (<= n).  Every consumed byte is
 *               valid framing or data of this body; bytes after the end of
 *               the body are never consumed (body->done is then true).
 *               *data_off / *data_len give the one span of payload data inside
 *               the consumed range (len 0 if none): the call stops after a
 *               data span, so callers loop until done or all is consumed.
 *               A proxy forwards p[0..consumed) unchanged (pass-through), or
 *               only the data span to de-chunk.
 *         < 0:  -EBADMSG, *err says why (invalid chunk size, extension,
 *               missing CRLF, bad trailer field, trailers too large).
 * For HTTP_FRAMING_CLOSE everything is data and done never becomes true; for
 * HTTP_FRAMING_NONE done is true from the start and nothing is consumed. */
ssize_t http_body_feed(struct http_body *body, const char *p, size_t n, size_t *data_off, size_t *data_len,
		       struct http_error *err);

/* Helpers for callers. */
const char *http_method_name(enum http_method m); /* "GET" ..., "OTHER" */
const char *http_status_reason(int status);        /* "Bad Request" ... or "Unknown" */
/* Case-insensitive compare of a slice of buf with a NUL-terminated string. */
int http_slice_eq(const char *buf, struct http_slice s, const char *str);

/* parser-t.h - types of the strict HTTP/1.1 message parser (RFC 9112).
 *
 * The parser does no I/O and allocates nothing: it reads a byte range and
 * fills these structs with offsets into that range.  A message head is
 * parsed in one call once it is complete; bodies are framed incrementally
 * by struct http_body.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_HEADERS 128

/* A byte range inside the buffer that was parsed. */
struct http_slice {
	uint32_t off;
	uint32_t len;
};

/* Per-header flags set by the parser. */
enum {
	HTTP_HDR_HOP = 1u << 0,      /* hop-by-hop: never forwarded as is (Connection, Keep-Alive,
				      * TE, Trailer, Upgrade, Proxy-Connection, Transfer-Encoding,
				      * and every field named in Connection) */
	HTTP_HDR_HOST = 1u << 1,     /* the Host field */
	HTTP_HDR_CL = 1u << 2,       /* Content-Length */
	HTTP_HDR_TE = 1u << 3,       /* Transfer-Encoding */
	HTTP_HDR_XFF = 1u << 4,      /* X-Forwarded-For */
	HTTP_HDR_XF_OTHER = 1u << 5, /* X-Forwarded-Proto / X-Forwarded-Host: replaced by the proxy */
	HTTP_HDR_REQUEST_ID = 1u << 6, /* X-Request-Id */
	HTTP_HDR_EXPECT = 1u << 7,   /* Expect */
	HTTP_HDR_UPGRADE = 1u << 8,  /* Upgrade */
};

struct http_header {
	struct http_slice name;
	struct http_slice value; /* leading/trailing OWS stripped */
	uint32_t flags;          /* HTTP_HDR_* */
};

enum http_method {
	HTTP_METHOD_OTHER = 0,
	HTTP_METHOD_GET,
	HTTP_METHOD_HEAD,
	HTTP_METHOD_POST,
	HTTP_METHOD_PUT,
	HTTP_METHOD_DELETE,
	HTTP_METHOD_PATCH,
	HTTP_METHOD_OPTIONS,
	HTTP_METHOD_CONNECT,
	HTTP_METHOD_TRACE,
	HTTP_METHOD__COUNT,
};

/* How the body that follows a head is delimited. */
enum http_framing {
	HTTP_FRAMING_NONE = 0,   /* no body */
	HTTP_FRAMING_LENGTH,     /* Content-Length bytes */
	HTTP_FRAMING_CHUNKED,    /* chunked, ending with the last chunk and trailers */
	HTTP_FRAMING_CLOSE,      /* responses only: until the connection closes */
};

/* Message-level flags. */
enum {
	HTTP_MSG_KEEP_ALIVE = 1u << 0,  /* persistent after this message (version + Connection) */
	HTTP_MSG_EXPECT_CONTINUE = 1u << 1, /* request: Expect: 100-continue */
	HTTP_MSG_UPGRADE = 1u << 2,     /* request: Upgrade present and Connection names upgrade */
	HTTP_MSG_CONN_CLOSE = 1u << 3,  /* Connection: close was present */
};

struct http_request {
	struct http_slice method;
	struct http_slice target;   /* request-target as sent */
	struct http_slice host;     /* value of the single Host field (len 0 if absent) */
	enum http_method method_id;
	uint8_t version_minor;      /* HTTP/1.<minor>: 0 or 1 */
	uint32_t flags;             /* HTTP_MSG_* */
	enum http_framing framing;
	uint64_t content_length;    /* when framing == HTTP_FRAMING_LENGTH */
	uint32_t head_len;          /* bytes of the head, final CRLF included */
	uint32_t nheaders;
	struct http_header headers[HTTP_MAX_HEADERS];
};

struct http_response {
	uint16_t status;
	uint8_t version_minor;
	uint32_t flags;             /* HTTP_MSG_* (KEEP_ALIVE, CONN_CLOSE) */
	struct http_slice reason;
	enum http_framing framing;  /* already accounts for HEAD, 1xx, 204 and 304 */
	uint64_t content_length;
	uint32_t head_len;
	uint32_t nheaders;
	struct http_header headers[HTTP_MAX_HEADERS];
};

/* Limits applied while parsing a head. */
struct http_limits {
	uint32_t max_head_bytes;    /* whole head; beyond: 431 (request) / error (response) */
	uint32_t max_target_bytes;  /* request-target; beyond: 414 */
	bool require_host;          /* HTTP/1.1 requests must carry exactly one Host (400) */
};

/* Why a message was rejected.  status is the HTTP status a server should
 * answer with (400, 414, 431, 501 for an unsupported transfer coding, 505 for
 * an unsupported version); reason is a short static English phrase such as
 * "both Content-Length and Transfer-Encoding"; offset is where it was found. */
struct http_error {
	uint16_t status;
	const char *reason;
	size_t offset;
};

/* Body framing state: Content-Length countdown or the chunked decoder. */
struct http_body {
	enum http_framing framing;
	uint64_t remaining;   /* LENGTH: bytes left; CHUNKED: bytes left in the current chunk */
	uint32_t state;       /* chunked decoder state (private) */
	uint32_t line_len;    /* bytes in the current size / trailer line (bounded) */
	uint32_t trailer_bytes; /* total trailer bytes so far (bounded by max_head_bytes) */
	uint32_t max_trailer_bytes;
	bool done;            /* the whole body, trailers included, has been consumed */
};

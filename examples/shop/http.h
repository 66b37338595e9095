/* http.h - the shop's small HTTP/1.1 server side: one connection per thread,
 * keep-alive, Content-Length bodies, requests answered in order. */
#ifndef SHOP_HTTP_H
#define SHOP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_HEAD_MAX (16 * 1024)       /* request line and fields */
#define HTTP_BODY_MAX (1024 * 1024)     /* request body */

struct http_request {
    const char *method;
    const char *target;         /* as received (for the log) */
    const char *path;           /* target without the query */
    const char *query;          /* after '?', or "" */
    const char *body;
    size_t body_len;
    bool head;                  /* HEAD: same answer as GET, without the body */
};

struct http_response {
    int status;
    const char *content_type;   /* static string */
    char *body;                 /* malloc'd (freed by the server), or NULL */
    size_t body_len;
    const char *allow;          /* Allow field of a 405, static */
    char location[96];          /* Location field when not empty */
    int64_t stream_len;         /* >= 0: the body is the download pattern, this long */
};

struct api_ctx;

/* Serve connection `fd` until the client leaves, an error, or shutdown;
 * closes fd. */
void http_serve(int fd, struct api_ctx *ctx);

/* Fill `p` (n bytes, a multiple of 16) with the download pattern starting at
 * offset `off` (a multiple of 16): 16-byte records, each the record's own
 * offset in 15 lower-case hex digits and a newline. */
void http_pattern(char *p, uint64_t off, size_t n);

#endif

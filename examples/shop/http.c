/* http.c - the shop's HTTP/1.1 server side.
 *
 * One thread per connection (see main.c), blocking sockets.  Requests are
 * read into one buffer and answered strictly in order, so pipelined requests
 * are fine.  Bodies are Content-Length only (Transfer-Encoding gets 411).
 * A malformed request gets 400 and the connection is closed after a short
 * lingering read, so that the client sees the answer rather than a reset.
 *
 * Shutdown: once shop_stopping is set, an idle keep-alive connection is
 * closed at once; a request already (partly) received is finished and
 * answered with "Connection: close"; a connection accepted but still silent
 * gets FRESH_GRACE_MS to send its first request. */
#include "http.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "shop.h"

#define IDLE_TIMEOUT_MS 60000   /* keep-alive connection with nothing to do */
#define READ_TIMEOUT_MS 30000   /* rest of a request that has started */
#define FRESH_GRACE_MS 1000     /* first request of a connection accepted before shutdown */
#define LINGER_MS 500           /* reading what the client still sends after our last answer */
#define READ_CHUNK (16 * 1024)
#define PIECE (64 * 1024)       /* download write size */
#define MAX_FIELDS 100

/* ------------------------------------------------------------ buffer */

struct rbuf {
    char *p;
    size_t len, cap;
};

static bool rbuf_reserve(struct rbuf *b, size_t need)
{
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : READ_CHUNK;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return false;
    b->p = p;
    b->cap = cap;
    return true;
}

static void rbuf_consume(struct rbuf *b, size_t n)
{
    if (n == 0)
        return;
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

/* ------------------------------------------------------------ socket */

enum wait_rc { W_READY, W_TIMEOUT, W_STOP, W_ERR };

/* Wait until fd is readable (or at EOF/error), the timeout passes, or, with
 * watch_stop, shutdown starts. */
static enum wait_rc wait_readable(int fd, int timeout_ms, bool watch_stop)
{
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = shop_wake_fd, .events = POLLIN}};
    double end = shop_now_ms() + timeout_ms;
    for (;;) {
        int left = (int)(end - shop_now_ms());
        int n = poll(p, watch_stop ? 2 : 1, left > 0 ? left : 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return W_ERR;
        if (n == 0)
            return W_TIMEOUT;
        return p[0].revents ? W_READY : W_STOP;
    }
}

/* Read what is there (at least one byte, blocking) into the buffer: bytes
 * read, 0 at EOF, -1 on error. */
static ssize_t read_more(int fd, struct rbuf *b, size_t chunk)
{
    if (!rbuf_reserve(b, b->len + chunk))
        return -1;
    for (;;) {
        ssize_t n = recv(fd, b->p + b->len, chunk, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n > 0)
            b->len += (size_t)n;
        return n;
    }
}

static bool send_all(int fd, struct iovec *iov, int cnt)
{
    while (cnt > 0) {
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
        ssize_t n = sendmsg(fd, &m, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return false;       /* gone, reset, or SO_SNDTIMEO passed */
        while (cnt > 0 && (size_t)n >= iov->iov_len) {
            n -= (ssize_t)iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + n;
            iov->iov_len -= (size_t)n;
        }
    }
    return true;
}

/* Half-close, then read and drop whatever the client still sends for a
 * moment, so that our last answer is not destroyed by a reset. */
static void lingering_close(int fd)
{
    char junk[4096];
    shutdown(fd, SHUT_WR);
    double end = shop_now_ms() + LINGER_MS;
    for (;;) {
        int left = (int)(end - shop_now_ms());
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0)
            break;
        int r = poll(&p, 1, left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || recv(fd, junk, sizeof junk, 0) <= 0)
            break;
    }
    close(fd);
}

/* ------------------------------------------------------------ parsing */

struct parsed {
    size_t method_off, target_off;      /* NUL-terminated, in the buffer */
    int minor;                          /* HTTP/1.minor */
    long long content_length;           /* -1: none */
    bool te, conn_close, conn_keep_alive, expect_continue, keep_alive;
};

static bool tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
        || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Is `tok` one of the comma-separated tokens of v[0..n)? */
static bool has_token(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok);
    const char *e = v + n;
    while (v < e) {
        while (v < e && (*v == ' ' || *v == '\t' || *v == ','))
            v++;
        const char *s = v;
        while (v < e && *v != ',')
            v++;
        const char *t = v;
        while (t > s && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if ((size_t)(t - s) == tl && strncasecmp(s, tok, tl) == 0)
            return true;
    }
    return false;
}

/* Parse the head h[0..n) (it ends with CRLF CRLF): 0, or the status to
 * refuse it with. */
static int parse_head(char *h, size_t n, struct parsed *p)
{
    *p = (struct parsed){.content_length = -1};
    char *end = h + n - 2;      /* the CRLF of the empty line */
    char *eol = memmem(h, n, "\r\n", 2);

    char *sp1 = memchr(h, ' ', (size_t)(eol - h));
    if (!sp1 || sp1 == h || sp1 - h > 15)
        return 400;
    for (char *c = h; c < sp1; c++)
        if (!tchar((unsigned char)*c))
            return 400;
    char *t = sp1 + 1;
    char *sp2 = memchr(t, ' ', (size_t)(eol - t));
    if (!sp2 || sp2 == t)
        return 400;
    for (char *c = t; c < sp2; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
            return 400;
    size_t vl = (size_t)(eol - sp2 - 1);
    if (vl == 8 && memcmp(sp2 + 1, "HTTP/1.1", 8) == 0)
        p->minor = 1;
    else if (vl == 8 && memcmp(sp2 + 1, "HTTP/1.0", 8) == 0)
        p->minor = 0;
    else
        return vl >= 5 && memcmp(sp2 + 1, "HTTP/", 5) == 0 ? 505 : 400;
    *sp1 = *sp2 = '\0';
    p->method_off = 0;
    p->target_off = (size_t)(t - h);

    int fields = 0;
    for (char *line = eol + 2; line < end; line = eol + 2) {
        eol = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
        if (++fields > MAX_FIELDS)
            return 431;
        char *colon = memchr(line, ':', (size_t)(eol - line));
        if (!colon || colon == line)
            return 400;         /* also catches obs-fold: it starts with SP or HT */
        for (char *c = line; c < colon; c++)
            if (!tchar((unsigned char)*c))
                return 400;
        char *v = colon + 1, *ve = eol;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        for (char *c = v; c < ve; c++) {
            unsigned char u = (unsigned char)*c;
            if ((u < 0x20 && u != '\t') || u == 0x7f)
                return 400;
        }
        size_t nl = (size_t)(colon - line), vlen = (size_t)(ve - v);
        if (nl == 14 && strncasecmp(line, "content-length", nl) == 0) {
            long long x = 0;
            if (vlen == 0 || vlen > 15)
                return 400;
            for (char *c = v; c < ve; c++) {
                if (*c < '0' || *c > '9')
                    return 400;
                x = x * 10 + (*c - '0');
            }
            if (p->content_length >= 0 && p->content_length != x)
                return 400;
            p->content_length = x;
        } else if (nl == 17 && strncasecmp(line, "transfer-encoding", nl) == 0) {
            p->te = true;
        } else if (nl == 10 && strncasecmp(line, "connection", nl) == 0) {
            p->conn_close |= has_token(v, vlen, "close");
            p->conn_keep_alive |= has_token(v, vlen, "keep-alive");
        } else if (nl == 6 && strncasecmp(line, "expect", nl) == 0) {
            p->expect_continue |= vlen == 12 && strncasecmp(v, "100-continue", 12) == 0;
        }
    }
    p->keep_alive = !p->conn_close && (p->minor == 1 || p->conn_keep_alive);
    return 0;
}

/* ------------------------------------------------------------ answers */

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

void http_pattern(char *p, uint64_t off, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i += 16, off += 16) {
        uint64_t v = off;
        for (int k = 14; k >= 0; k--, v >>= 4)
            p[i + (size_t)k] = hex[v & 15];
        p[i + 15] = '\n';
    }
}

static bool stream_pattern(int fd, int64_t len)
{
    char *buf = malloc(PIECE);
    if (!buf)
        return false;
    bool ok = true;
    for (int64_t off = 0; ok && off < len; off += PIECE) {
        size_t n = len - off < PIECE ? (size_t)(len - off) : PIECE;
        http_pattern(buf, (uint64_t)off, n);
        struct iovec v = {buf, n};
        ok = send_all(fd, &v, 1);
    }
    free(buf);
    return ok;
}

/* Send an answer; false if the client is gone. */
static bool respond(int fd, bool head_only, const struct http_response *rs, bool keep)
{
    char head[1024], date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    bool streamed = rs->stream_len >= 0;
    long long len = streamed ? (long long)rs->stream_len : (long long)rs->body_len;
    int n = snprintf(head, sizeof head,
        "HTTP/1.1 %d %s\r\nDate: %s\r\nServer: shop/" SHOP_VERSION "\r\nX-Shop-Version: " SHOP_VERSION "\r\n"
        "Content-Type: %s\r\nContent-Length: %lld\r\nCache-Control: no-store\r\n%s%s%s%s%s%s%sConnection: %s\r\n\r\n",
        rs->status, reason(rs->status), date, rs->content_type ? rs->content_type : "application/json", len,
        rs->allow ? "Allow: " : "", rs->allow ? rs->allow : "", rs->allow ? "\r\n" : "",
        rs->location[0] ? "Location: " : "", rs->location, rs->location[0] ? "\r\n" : "",
        rs->status == 503 ? "Retry-After: 1\r\n" : "", keep ? "keep-alive" : "close");
    struct iovec iov[2] = {{head, (size_t)n}, {rs->body, rs->body_len}};
    bool body = !head_only && !streamed && rs->body_len > 0;
    if (!send_all(fd, iov, body ? 2 : 1))
        return false;
    return head_only || !streamed || stream_pattern(fd, rs->stream_len);
}

/* Refuse a request that cannot be served, and log it. */
static void refuse(int fd, int status, const char *msg, double t0)
{
    struct http_response rs = {.status = status, .stream_len = -1};
    char body[160];
    int n = snprintf(body, sizeof body, "{\"error\":\"%s\"}", msg);
    rs.body = body;
    rs.body_len = (size_t)n;
    respond(fd, false, &rs, false);
    shop_log("- - %d %.1fms (%s)", status, shop_now_ms() - t0, msg);
}

/* ------------------------------------------------------------ the connection */

void http_serve(int fd, struct api_ctx *ctx)
{
    struct rbuf b = {0};
    bool fresh = true, linger = false;
    double t0 = shop_now_ms();

    for (;;) {
        size_t skip = 0;        /* stray CRLFs between requests */
        while (skip < b.len && (b.p[skip] == '\r' || b.p[skip] == '\n'))
            skip++;
        rbuf_consume(&b, skip);
        char *end = b.len >= 4 ? memmem(b.p, b.len, "\r\n\r\n", 4) : NULL;
        size_t head_len = end ? (size_t)(end - b.p) + 4 : 0;
        if (head_len > HTTP_HEAD_MAX || (!end && b.len >= HTTP_HEAD_MAX)) {
            refuse(fd, 431, "request head too large", t0);
            linger = true;
            break;
        }
        if (!end) {
            bool idle = b.len == 0, watch = false;
            int timeout = READ_TIMEOUT_MS;
            if (idle) {
                bool stop = atomic_load(&shop_stopping);
                if (stop && !fresh)
                    break;
                timeout = stop ? FRESH_GRACE_MS : IDLE_TIMEOUT_MS;
                watch = !stop;
                t0 = shop_now_ms();
            }
            enum wait_rc w = wait_readable(fd, timeout, watch);
            if (w == W_STOP)
                continue;
            if (w == W_TIMEOUT && !idle) {
                refuse(fd, 408, "request timeout", t0);
                linger = true;
            }
            if (w != W_READY || read_more(fd, &b, READ_CHUNK) <= 0)
                break;
            continue;
        }

        fresh = false;
        struct parsed p;
        int bad = parse_head(b.p, head_len, &p);
        if (!bad && p.te)
            bad = 411;
        if (!bad && p.content_length > HTTP_BODY_MAX)
            bad = 413;
        if (bad) {
            refuse(fd, bad, bad == 411 ? "Content-Length bodies only" : bad == 413 ? "body too large"
                            : bad == 431 ? "too many header fields" : "bad request", t0);
            linger = true;
            break;
        }
        size_t body_len = p.content_length > 0 ? (size_t)p.content_length : 0, used = head_len + body_len;
        if (b.len < used && p.expect_continue && p.minor == 1) {
            struct iovec v = {"HTTP/1.1 100 Continue\r\n\r\n", 25};
            if (!send_all(fd, &v, 1))
                break;
        }
        bool gone = false;
        while (b.len < used && !gone) {
            enum wait_rc w = wait_readable(fd, READ_TIMEOUT_MS, false);
            if (w == W_TIMEOUT) {
                refuse(fd, 408, "request timeout", t0);
                linger = true;
            }
            gone = w != W_READY || read_more(fd, &b, used - b.len > READ_CHUNK ? used - b.len : READ_CHUNK) <= 0;
        }
        if (gone)
            break;

        char *target = b.p + p.target_off;
        char *path = strdup(target);
        if (!path)
            break;
        char *q = strchr(path, '?');
        if (q)
            *q++ = '\0';
        /* absolute-form (http://host/path): keep the path */
        char *pp = path;
        if (strncasecmp(pp, "http://", 7) == 0 || strncasecmp(pp, "https://", 8) == 0) {
            char *slash = strchr(strstr(pp, "//") + 2, '/');
            pp = slash ? slash : "/";
        }
        struct http_request rq = {
            .method = b.p + p.method_off, .target = target, .path = pp, .query = q ? q : "",
            .body = b.p + head_len, .body_len = body_len, .head = strcmp(b.p + p.method_off, "HEAD") == 0,
        };
        struct http_response rs = {.status = 500, .stream_len = -1};
        api_handle(ctx, &rq, &rs);

        /* Shutting down: answer what is already here, then close. */
        bool keep = p.keep_alive && !(atomic_load(&shop_stopping) && b.len == used);
        bool ok = respond(fd, rq.head, &rs, keep);
        shop_log("%s %.300s %d %.1fms%s", rq.method, target, rs.status, shop_now_ms() - t0,
                 ok ? "" : " (client gone)");
        free(rs.body);
        free(path);
        rbuf_consume(&b, used);
        t0 = shop_now_ms();
        if (!ok)
            break;
        if (!keep) {
            linger = true;
            break;
        }
    }
    free(b.p);
    if (linger)
        lingering_close(fd);
    else
        close(fd);
}

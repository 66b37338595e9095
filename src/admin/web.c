/* web.c - the status page's files and the admin token, on the TCP admin
 * listener (contracts in admin-internal.h and admin.h).
 *
 * The files of web/ are compiled in (scripts/embed-web.py writes the
 * table): GET / is index.html, GET /static/NAME any of them, with the
 * content type of its extension, an ETag that is a hash of its bytes and
 * Cache-Control: no-cache, so a browser asks again and gets a 304 until
 * the binary changes.
 *
 * admin_token: when set (it must be on an address that is not loopback),
 * every request but /healthz carries it, as `Authorization: Bearer TOKEN`
 * (curl, Prometheus) or as the cookie that `GET /?token=TOKEN` sets before
 * it redirects to / (a browser, whose EventSource sends cookies but no
 * header).  Only hashes of the token are kept: BLAKE2b of it, compared in
 * constant time with the BLAKE2b of what a request carries (so neither the
 * bytes nor the length leak through timing), and the cookie's value, a
 * BLAKE2b keyed by the token (the cookie is not the token).  Nothing here
 * logs a token or says which part of a refused one was wrong.
 */
#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include "admin/admin-internal.h"
#include "admin/admin.h"
#include "http/parser.h"

#define COOKIE_NAME "cutover_admin_token"

static const char cookie_context[] = "cutover admin cookie v1";

void admin_set_token(struct admin *a, const char *token, size_t len)
{
	unsigned char mac[32];

	sodium_memzero(a->token_hash, sizeof(a->token_hash));
	sodium_memzero(a->token_cookie, sizeof(a->token_cookie));
	a->token_set = token != NULL;
	if (!token || sodium_init() < 0) /* (done already by whoever read the secrets) */
		return;
	crypto_generichash(a->token_hash, sizeof(a->token_hash), (const unsigned char *)token, len, NULL, 0);
	/* the cookie: keyed by the token (at most crypto_generichash_KEYBYTES_MAX of it
	 * as the key; the whole token is in the hash above) */
	crypto_generichash(mac, sizeof(mac), (const unsigned char *)cookie_context, sizeof(cookie_context) - 1,
			   (const unsigned char *)token,
			   len < crypto_generichash_KEYBYTES_MAX ? len : crypto_generichash_KEYBYTES_MAX);
	if (len > crypto_generichash_KEYBYTES_MAX) /* a longer token: its whole hash in the MAC too */
		crypto_generichash(mac, sizeof(mac), a->token_hash, sizeof(a->token_hash), mac, sizeof(mac));
	sodium_bin2hex(a->token_cookie, sizeof(a->token_cookie), mac, sizeof(mac));
	sodium_memzero(mac, sizeof(mac));
}

/* Whether TEXT[0..len) is the token: hashed, then compared in constant time. */
static bool token_matches(const struct admin *a, const char *text, size_t len)
{
	unsigned char h[32];
	bool ok;

	crypto_generichash(h, sizeof(h), (const unsigned char *)text, len, NULL, 0);
	ok = sodium_memcmp(h, a->token_hash, sizeof(h)) == 0;
	sodium_memzero(h, sizeof(h));
	return ok;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

bool admin_query_param(const char *query, const char *name, char *out, size_t size)
{
	size_t nlen = strlen(name);

	for (const char *p = query; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
		size_t n = 0;
		if (strncmp(p, name, nlen) || p[nlen] != '=')
			continue;
		for (p += nlen + 1; *p && *p != '&'; p++) {
			int c = (unsigned char)*p;
			if (c == '%') {
				int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);
				if (lo < 0 || (hi == 0 && lo == 0))
					return false;
				c = hi * 16 + lo;
				p += 2;
			}
			if (n + 1 >= size)
				return false;
			out[n++] = (char)c;
		}
		out[n] = 0;
		return true;
	}
	return false;
}

/* The value of header NAME in req, or NULL (*len set). */
static const char *header_value(const char *base, const struct http_request *req, const char *name, size_t *len)
{
	size_t nlen = strlen(name);

	for (uint32_t i = 0; i < req->nheaders; i++) {
		const struct http_header *h = &req->headers[i];
		if (h->name.len == nlen && !strncasecmp(base + h->name.off, name, nlen)) {
			*len = h->value.len;
			return base + h->value.off;
		}
	}
	return NULL;
}

/* Whether the request carries the token: a Bearer credential, or our
 * cookie among its cookies. */
static bool request_has_token(const struct admin *a, const char *base, const struct http_request *req)
{
	size_t len = 0;
	const char *v = header_value(base, req, "Authorization", &len);

	if (v && len > 7 && !strncasecmp(v, "Bearer ", 7)) {
		for (v += 7, len -= 7; len && *v == ' '; v++, len--)
			;
		if (token_matches(a, v, len))
			return true;
	}
	for (uint32_t i = 0; i < req->nheaders; i++) {
		const struct http_header *h = &req->headers[i];
		const char *p, *end;
		if (h->name.len != 6 || strncasecmp(base + h->name.off, "Cookie", 6))
			continue;
		p = base + h->value.off;
		end = p + h->value.len;
		while (p < end) {
			const char *semi = memchr(p, ';', (size_t)(end - p)), *stop = semi ? semi : end;
			while (p < stop && *p == ' ')
				p++;
			if ((size_t)(stop - p) == sizeof(COOKIE_NAME) + 64 && !memcmp(p, COOKIE_NAME "=", sizeof(COOKIE_NAME)) &&
			    sodium_memcmp(p + sizeof(COOKIE_NAME), a->token_cookie, 64) == 0)
				return true;
			p = stop + 1;
		}
	}
	return false;
}

bool admin_web_allowed(struct admin_conn *c, const char *base, const struct http_request *req, const char *path,
		       size_t path_len, const char *query)
{
	static const char refused[] = "401 Unauthorized: this admin address wants its admin_token, as "
				      "`Authorization: Bearer TOKEN`, or open /?token=TOKEN once in a browser\n";
	const struct admin *a = c->admin;
	char token[1024], headers[256];
	bool asked = path_len == 1 && path[0] == '/' && admin_query_param(query, "token", token, sizeof(token));

	if (path_len == 8 && !memcmp(path, "/healthz", 8)) /* for load balancers and systemd: no token */
		return true;
	if (asked && (!a->token_set || token_matches(a, token, strlen(token)))) {
		/* into a cookie, and the token out of the address bar */
		if (a->token_set)
			snprintf(headers, sizeof(headers),
				 "Location: /\r\nSet-Cookie: " COOKIE_NAME "=%s; Path=/; HttpOnly; SameSite=Strict\r\n",
				 a->token_cookie);
		else
			snprintf(headers, sizeof(headers), "Location: /\r\n");
		sodium_memzero(token, sizeof(token));
		admin_conn_respond(c, 303, "text/plain", headers, "see /\n", 6, 0);
		return false;
	}
	if (asked)
		sodium_memzero(token, sizeof(token));
	if (!a->token_set || (!asked && request_has_token(a, base, req)))
		return true;
	admin_conn_respond(c, 401, "text/plain", "WWW-Authenticate: Bearer realm=\"cutover\"\r\n", refused,
			   sizeof(refused) - 1, 0);
	return false;
}

static const struct admin_web_file *web_file(const char *name, size_t len)
{
	for (size_t i = 0; i < admin_web_nfiles; i++)
		if (strlen(admin_web_files[i].name) == len && !memcmp(admin_web_files[i].name, name, len))
			return &admin_web_files[i];
	return NULL;
}

bool admin_web_route(struct admin_conn *c, const char *base, const struct http_request *req, const char *path,
		     size_t path_len)
{
	static const char prefix[] = "/static/";
	const struct admin_web_file *f;
	char headers[128];
	const char *tag;
	size_t tlen = 0;

	if (path_len == 1 && path[0] == '/')
		f = web_file("index.html", 10);
	else if (path_len > sizeof(prefix) - 1 && !memcmp(path, prefix, sizeof(prefix) - 1))
		f = web_file(path + sizeof(prefix) - 1, path_len - (sizeof(prefix) - 1));
	else
		return false;
	if (!f) {
		static const char msg[] = "not found: no such file in the status page\n";
		admin_conn_respond(c, 404, "text/plain", NULL, msg, sizeof(msg) - 1, 0);
		return true;
	}
	snprintf(headers, sizeof(headers), "ETag: %s\r\n", f->etag);
	tag = header_value(base, req, "If-None-Match", &tlen);
	/* a 304 has the 200's Content-Length and no body (RFC 9110 8.6) */
	admin_conn_respond(c, tag && tlen == strlen(f->etag) && !memcmp(tag, f->etag, tlen) ? 304 : 200,
			   f->content_type, headers, (const char *)f->bytes, f->length, ADMIN_REPLY_STATIC);
	return true;
}

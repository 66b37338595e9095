/* router.c - Host + path-prefix routing (contract in router.h).
 *
 * A linear scan over the routes keeps the best match.  Shops have a handful
 * of routes, so this is a few dozen comparisons per request and needs no
 * index; the match is case-insensitive on the host and exact on the path.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "proxy/router.h"

int router_build(struct router *r, const struct config *cfg)
{
	struct router_route *routes = calloc(cfg->nroutes ? cfg->nroutes : 1, sizeof(*routes));
	size_t i;

	if (!routes)
		return -ENOMEM;
	for (i = 0; i < cfg->nroutes; i++) {
		const struct config_route *cr = &cfg->routes[i];
		struct router_route *rr = &routes[i];
		const char *host = cr->host;

		if (!host) {
			rr->host_kind = ROUTER_HOST_ANY;
		} else if (host[0] == '*' && host[1] == '.') {
			rr->host_kind = ROUTER_HOST_WILDCARD;
			host++; /* keep ".example.com" */
		} else {
			rr->host_kind = ROUTER_HOST_EXACT;
		}
		rr->host = host ? strdup(host) : NULL;
		rr->path = strdup(cr->path_prefix ? cr->path_prefix : "/");
		if ((host && !rr->host) || !rr->path) {
			struct router tmp = { routes, i + 1 };
			router_release(&tmp);
			return -ENOMEM;
		}
		rr->host_len = host ? strlen(host) : 0;
		rr->path_len = strlen(rr->path);
		rr->service = cr->service;
	}
	r->routes = routes;
	r->nroutes = cfg->nroutes;
	return 0;
}

void router_release(struct router *r)
{
	for (size_t i = 0; i < r->nroutes; i++) {
		free(r->routes[i].host);
		free(r->routes[i].path);
	}
	free(r->routes);
	r->routes = NULL;
	r->nroutes = 0;
}

/* Strip ":port" from a Host value ("[::1]:80" keeps its brackets). */
static size_t host_without_port(const char *host, size_t len)
{
	size_t i = len;

	while (i > 0 && host[i - 1] >= '0' && host[i - 1] <= '9')
		i--;
	if (i > 0 && i < len && host[i - 1] == ':')
		return i - 1;
	if (i > 0 && i == len && host[i - 1] == ':')
		return i - 1;
	return len;
}

/* Host score: 0 no match; ANY 1; WILDCARD 2 + suffix length; EXACT highest. */
static size_t host_score(const struct router_route *rr, const char *host, size_t len)
{
	switch (rr->host_kind) {
	case ROUTER_HOST_ANY:
		return 1;
	case ROUTER_HOST_EXACT:
		if (len == rr->host_len && !strncasecmp(host, rr->host, len))
			return (size_t)-1;
		return 0;
	case ROUTER_HOST_WILDCARD:
		/* ".example.com" matches "a.example.com", not "example.com" */
		if (len > rr->host_len && !strncasecmp(host + len - rr->host_len, rr->host, rr->host_len))
			return 2 + rr->host_len;
		return 0;
	}
	return 0;
}

static bool path_matches(const struct router_route *rr, const char *target, size_t len)
{
	size_t n = rr->path_len;

	if (len < n || memcmp(target, rr->path, n) != 0)
		return false;
	if (rr->path[n - 1] == '/' || len == n)
		return true;
	return target[n] == '/' || target[n] == '?' || target[n] == '#';
}

long router_match(const struct router *r, const char *host, size_t host_len, const char *target, size_t target_len)
{
	size_t best_host = 0, best_path = 0, hlen = host ? host_without_port(host, host_len) : 0;
	long best = -1;

	/* absolute-form "http://host[:port][/path][?query]": route on its path,
	 * which is "/" when the authority is followed by nothing, '?' or '#' */
	if (target_len && target[0] != '/') {
		const char *p = memchr(target, '/', target_len);
		if (p && p + 1 < target + target_len && p[1] == '/') {
			const char *a = p + 2, *end = target + target_len;
			while (a < end && *a != '/' && *a != '?' && *a != '#')
				a++;
			if (a < end && *a == '/') {
				target_len = (size_t)(end - a);
				target = a;
			} else {
				target = "/";
				target_len = 1;
			}
		}
	}
	for (size_t i = 0; i < r->nroutes; i++) {
		const struct router_route *rr = &r->routes[i];
		size_t hs = host_score(rr, host, hlen);
		if (!hs || !path_matches(rr, target, target_len))
			continue;
		if (hs > best_host || (hs == best_host && rr->path_len > best_path)) {
			best_host = hs;
			best_path = rr->path_len;
			best = (long)rr->service;
		}
	}
	return best;
}

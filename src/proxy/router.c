/* router.c - Host + path-prefix routing, and the route classes of the
 * services (contract in router.h).
 *
 * A linear scan over the routes (or a service's classes) keeps the best match.  Shops have a handful
 * of routes, so this is a few dozen comparisons per request and needs no
 * index; the match is case-insensitive on the host and exact on the path.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "proxy/router.h"

static void classes_release(struct router_classes *c, size_t nservices)
{
	for (size_t i = 0; c && i < nservices; i++) {
		for (size_t j = 0; j < c[i].n; j++) {
			free(c[i].v[j].name);
			free(c[i].v[j].method);
			free(c[i].v[j].path);
		}
		free(c[i].v);
	}
	free(c);
}

/* The route classes of cfg's services into *ret (NULL when no service has
 * any).  Returns 0 or -ENOMEM (nothing allocated). */
static int classes_build(const struct config *cfg, struct router_classes **ret)
{
	struct router_classes *c = NULL;
	size_t i;

	for (i = 0; cfg->services && i < cfg->nservices; i++)
		if (cfg->services[i].nroute_classes)
			break;
	if (!cfg->services || i == cfg->nservices) {
		*ret = NULL;
		return 0;
	}
	c = calloc(cfg->nservices, sizeof(*c));
	if (!c)
		return -ENOMEM;
	for (i = 0; i < cfg->nservices; i++) {
		const struct config_service *cs = &cfg->services[i];
		if (!cs->nroute_classes)
			continue;
		c[i].v = calloc(cs->nroute_classes, sizeof(*c[i].v));
		if (!c[i].v)
			goto fail;
		for (size_t j = 0; j < cs->nroute_classes; j++) {
			const struct config_route_class *cc = &cs->route_classes[j];
			struct router_class *rc = &c[i].v[c[i].n++];
			rc->name = strdup(cc->name);
			rc->method = cc->method ? strdup(cc->method) : NULL;
			rc->path = strdup(cc->path_prefix);
			if (!rc->name || (cc->method && !rc->method) || !rc->path)
				goto fail;
			rc->path_len = strlen(rc->path);
		}
	}
	*ret = c;
	return 0;
fail:
	classes_release(c, cfg->nservices);
	return -ENOMEM;
}

int router_build(struct router *r, const struct config *cfg)
{
	struct router_route *routes = calloc(cfg->nroutes ? cfg->nroutes : 1, sizeof(*routes));
	struct router_classes *classes;
	size_t i;

	if (!routes)
		return -ENOMEM;
	if (classes_build(cfg, &classes) < 0) {
		free(routes);
		return -ENOMEM;
	}
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
			struct router tmp = { routes, i + 1, classes, cfg->nservices };
			router_release(&tmp);
			return -ENOMEM;
		}
		rr->host_len = host ? strlen(host) : 0;
		rr->path_len = strlen(rr->path);
		rr->service = cr->service;
	}
	r->routes = routes;
	r->nroutes = cfg->nroutes;
	r->classes = classes;
	r->nservices = classes ? cfg->nservices : 0;
	return 0;
}

void router_release(struct router *r)
{
	for (size_t i = 0; i < r->nroutes; i++) {
		free(r->routes[i].host);
		free(r->routes[i].path);
	}
	free(r->routes);
	classes_release(r->classes, r->nservices);
	r->routes = NULL;
	r->nroutes = 0;
	r->classes = NULL;
	r->nservices = 0;
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

/* Whether prefix (n bytes, starting with '/') matches target at a segment
 * boundary. */
static bool path_matches(const char *prefix, size_t n, const char *target, size_t len)
{
	if (len < n || memcmp(target, prefix, n) != 0)
		return false;
	if (prefix[n - 1] == '/' || len == n)
		return true;
	return target[n] == '/' || target[n] == '?' || target[n] == '#';
}

/* The path of an absolute-form target "http://host[:port][/path][?query]",
 * which is "/" when the authority is followed by nothing, '?' or '#'; an
 * origin-form target is its own path. */
static void target_path(const char **target, size_t *target_len)
{
	const char *t = *target, *p;

	if (!*target_len || t[0] == '/')
		return;
	p = memchr(t, '/', *target_len);
	if (p && p + 1 < t + *target_len && p[1] == '/') {
		const char *a = p + 2, *end = t + *target_len;
		while (a < end && *a != '/' && *a != '?' && *a != '#')
			a++;
		if (a < end && *a == '/') {
			*target_len = (size_t)(end - a);
			*target = a;
		} else {
			*target = "/";
			*target_len = 1;
		}
	}
}

long router_match(const struct router *r, const char *host, size_t host_len, const char *target, size_t target_len)
{
	size_t best_host = 0, best_path = 0, hlen = host ? host_without_port(host, host_len) : 0;
	long best = -1;

	target_path(&target, &target_len);
	for (size_t i = 0; i < r->nroutes; i++) {
		const struct router_route *rr = &r->routes[i];
		size_t hs = host_score(rr, host, hlen);
		if (!hs || !path_matches(rr->path, rr->path_len, target, target_len))
			continue;
		if (hs > best_host || (hs == best_host && rr->path_len > best_path)) {
			best_host = hs;
			best_path = rr->path_len;
			best = (long)rr->service;
		}
	}
	return best;
}

long router_class_match(const struct router *r, size_t service, const char *method, const char *target,
			size_t target_len)
{
	const struct router_classes *c;
	size_t best_len = 0;
	bool best_method = false;
	long best = -1;

	if (!r->classes || service >= r->nservices)
		return -1;
	c = &r->classes[service];
	target_path(&target, &target_len);
	for (size_t i = 0; i < c->n; i++) {
		const struct router_class *rc = &c->v[i];
		if (rc->method && strcmp(rc->method, method))
			continue;
		if (!path_matches(rc->path, rc->path_len, target, target_len))
			continue;
		if (best < 0 || rc->path_len > best_len || (rc->path_len == best_len && rc->method && !best_method)) {
			best = (long)i;
			best_len = rc->path_len;
			best_method = rc->method != NULL;
		}
	}
	return best;
}

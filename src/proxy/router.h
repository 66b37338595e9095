/* router.h - pick the service for a request from its Host and path.
 *
 * Precedence: an exact host beats a wildcard, a longer wildcard suffix beats
 * a shorter one, any host comes last; within the same host match, the
 * longest path prefix wins.  A prefix matches at segment boundaries: "/api"
 * matches "/api", "/api/x" and "/api?q", not "/apix"; "/api/" matches only
 * below "/api/".  The route classes of a service match the same way, on
 * the method too (router_class_match).
 */
#pragma once
#include <stdbool.h>
#include "config/config-t.h"
#include "proxy/router-t.h"

/* Build from cfg->routes, and from the route classes of cfg->services
 * (copies: r does not point into cfg).  Returns 0 or -ENOMEM (r untouched). */
int router_build(struct router *r, const struct config *cfg);
void router_release(struct router *r);

/* host: the Host field value (may carry ":port", any case); target: the
 * request-target.  Returns the service index, or -1 when nothing matches. */
long router_match(const struct router *r, const char *host, size_t host_len, const char *target, size_t target_len);

/* The route class of a request to the service of index `service`: of its
 * classes whose method is `method` (or any) and whose path prefix matches
 * target as a route's does, the one with the longest prefix, and on a tie
 * the one that names a method.  method is the request's method token (NUL
 * terminated); target the request-target (origin or absolute form).
 * Returns the class's index, or -1 when none matches (or the service has
 * no class). */
long router_class_match(const struct router *r, size_t service, const char *method, const char *target,
			size_t target_len);
/* Whether any service of r has a route class (the proxy looks no further
 * when none does). */
static inline bool router_has_classes(const struct router *r)
{
	return r->classes != NULL;
}

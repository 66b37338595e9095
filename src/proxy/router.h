/* router.h - pick the service for a request from its Host and path.
 *
 * Precedence: an exact host beats a wildcard, a longer wildcard suffix beats
 * a shorter one, any host comes last; within the same host match, the
 * longest path prefix wins.  A prefix matches at segment boundaries: "/api"
 * matches "/api", "/api/x" and "/api?q", not "/apix"; "/api/" matches only
 * below "/api/".
 */
#pragma once
#include <stdbool.h>
#include "config/config-t.h"
#include "proxy/router-t.h"

/* Build from cfg->routes.  Returns 0 or -ENOMEM (r untouched). */
int router_build(struct router *r, const struct config *cfg);
void router_release(struct router *r);

/* host: the Host field value (may carry ":port", any case); target: the
 * request-target.  Returns the service index, or -1 when nothing matches. */
long router_match(const struct router *r, const char *host, size_t host_len, const char *target, size_t target_len);

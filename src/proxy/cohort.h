/* cohort.h - sticky shopper cohorts and QA overrides (cohort.c; types in
 * proxy-t.h).  Private to src/proxy: routes.c steers with it, exchange.c
 * writes the cookie; the pure parts are public for the unit tests and the
 * fuzz target.  Design: docs/internals/proxy.md, "Cohorts". */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/buf-t.h"
#include "config/config-t.h"
#include "proxy/proxy-t.h"

#define COHORT_NONE (-1)
#define COHORT_VERSION_MAX 127         /* longer override values name no version */

/* What the cookies and headers of one request say. */
struct cohort_found {
	int cohort;                        /* the first valid cohort cookie, 0..99; COHORT_NONE */
	/* the overrides (NULL: none; else 1..COHORT_VERSION_MAX bytes inside
	 * the scanned request): the header is tried first */
	const char *header_version, *cookie_version;
	size_t header_version_len, cookie_version_len;
};

/* ---- pure ---- */

/* The cohort a cookie value names: "0".."99" (one or two digits), else
 * COHORT_NONE. */
int cohort_parse(const char *value, size_t len);
/* Scan one Cookie field value (RFC 6265 cookie-string; lenient: spaces
 * and empty pairs are skipped, a quoted value is unquoted) for the
 * cookies named cohort_name and override_name (exact, case-sensitive;
 * either may be NULL), updating what f does not hold yet: the first
 * valid cohort, the first non-empty override cookie of at most
 * COHORT_VERSION_MAX bytes.  Linear in len, allocates nothing;
 * f->cookie_version points into value. */
void cohort_cookies_scan(const char *value, size_t len, const char *cohort_name, const char *override_name,
			 struct cohort_found *f);
/* The cohorts that go to a canary of canary_weight out of total_weight
 * (the weights of the groups taking traffic): cohorts below the result.
 * 0..100; 0 when total_weight is 0. */
unsigned cohort_share(uint32_t canary_weight, uint32_t total_weight);
/* A deck seeded with seed (any value); the first deal shuffles it. */
void cohort_deck_init(struct cohort_deck *d, uint64_t seed);
/* The next cohort of d, 0..99; a fresh shuffle after every 100th. */
int cohort_deal(struct cohort_deck *d);
/* A seed from getrandom() (or the clock and pid if it fails). */
uint64_t cohort_seed(void);

/* ---- steering ---- */

/* Set s->steer, s->canary and s->canary_share from its groups (after a
 * build: the service is immutable afterwards). */
void cohort_service_prepare(struct route_service *s);
/* The group of s for rq when s->steer: the version the override header
 * names if it has instances, else the one the override cookie names if
 * it has (rq->forced), else under a canary split the cohort rule
 * (rq->cohort; a new one dealt from rq->deck sets rq->set_cookie), else
 * weighted round-robin.  Returns the group's index, or -1. */
int cohort_choose(struct route_service *s, struct route_request *rq);
/* The group of s for a cohort under its canary split (the canary below
 * the share, else the others by weighted round-robin), or -1 when s has
 * no split or cohort is COHORT_NONE. */
int cohort_follow(struct route_service *s, int cohort);
/* Append "Set-Cookie: NAME=COHORT; Path=/; Max-Age=...; SameSite=Lax;
 * HttpOnly\r\n" to b (one copy, no allocation).  Returns 0, or -ENOSPC
 * with b unchanged. */
int cohort_cookie_append(struct buf *b, const struct config_cohorts *cfg, int cohort);

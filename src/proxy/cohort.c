/* cohort.c - sticky shopper cohorts and the QA overrides: which version
 * group a request goes to while a canary shares the traffic.
 *
 * A shopper's cohort is a number 0..99 kept in a first-party cookie.
 * While a service has a canary group with a share of the traffic (weight
 * w out of a total t, 0 < w < t), cohorts below w * 100 / t go to the
 * canary and the others to the remaining groups.  The weights only grow
 * during a deploy, so a shopper moves from stable to canary at most once
 * and never back.  A request without a valid cohort gets a new one, dealt
 * from a per-proxy deck (a random permutation of 0..99 dealt in order and
 * shuffled again when dealt out), and the cookie with its response: among
 * n new shoppers each number is dealt n/100 times, give or take one, so
 * the share of shoppers on each version is exact, not just right on
 * average.  A client that never sends cookies gets a new cohort for each
 * request: assigned per request, by weight.
 *
 * An override header or cookie naming a version sends the request to that
 * version's group if it has instances, whatever its weight (QA testing a
 * version before it gets traffic), and sets no cookie.
 *
 * Outside a split nothing here runs unless the service has several
 * versions (only overrides are read then), and a service with one group
 * costs one test of s->steer (routes.c).  The scan of the request reads
 * each header name once and each Cookie value once, allocating nothing.
 * Design notes: docs/internals/proxy.md, "Cohorts".
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include "base/buf.h"
#include "proxy/cohort.h"
#include "proxy/proxy-internal.h"

/* ------------------------------------------------------------------ */
/* cookies                                                             */

int cohort_parse(const char *value, size_t len)
{
	int c = 0;

	if (len < 1 || len > 2)
		return COHORT_NONE;
	for (size_t i = 0; i < len; i++) {
		if (value[i] < '0' || value[i] > '9')
			return COHORT_NONE;
		c = c * 10 + (value[i] - '0');
	}
	return c;
}

static bool is_space(char ch)
{
	return ch == ' ' || ch == '\t';
}

static bool name_is(const char *s, size_t len, const char *name, size_t name_len)
{
	return name && len == name_len && !memcmp(s, name, len);
}

void cohort_cookies_scan(const char *value, size_t len, const char *cohort_name, const char *override_name,
			 struct cohort_found *f)
{
	const char *p = value, *end = value + len;
	size_t cohort_len = cohort_name ? strlen(cohort_name) : 0;
	size_t override_len = override_name ? strlen(override_name) : 0;

	while (p < end) {
		const char *pair_end = memchr(p, ';', (size_t)(end - p));
		const char *s = p, *e, *eq, *n_end, *v;
		size_t vlen;

		if (!pair_end)
			pair_end = end;
		p = pair_end < end ? pair_end + 1 : end;
		e = pair_end;
		while (s < e && is_space(*s))
			s++;
		while (e > s && is_space(e[-1]))
			e--;
		eq = memchr(s, '=', (size_t)(e - s));
		if (!eq)
			continue; /* no name=value: not ours */
		for (n_end = eq; n_end > s && is_space(n_end[-1]); n_end--)
			;
		for (v = eq + 1; v < e && is_space(*v); v++)
			;
		vlen = (size_t)(e - v);
		if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') {
			v++;
			vlen -= 2;
		}
		if (f->cohort == COHORT_NONE && name_is(s, (size_t)(n_end - s), cohort_name, cohort_len))
			f->cohort = cohort_parse(v, vlen);
		if (!f->cookie_version && vlen >= 1 && vlen <= COHORT_VERSION_MAX &&
		    name_is(s, (size_t)(n_end - s), override_name, override_len)) {
			f->cookie_version = v;
			f->cookie_version_len = vlen;
		}
	}
}

/* The cohorts, cookies and override header of rq's request, into f. */
static void request_scan(const struct route_request *rq, struct cohort_found *f)
{
	const struct http_request *r = rq->req;
	const struct config_cohorts *cc = rq->cohorts;
	size_t header_len = strlen(cc->override_header);

	for (uint32_t i = 0; i < r->nheaders; i++) {
		const struct http_header *h = &r->headers[i];
		const char *name = rq->base + h->name.off, *value = rq->base + h->value.off;

		if (h->name.len == 6 && !strncasecmp(name, "cookie", 6))
			cohort_cookies_scan(value, h->value.len, cc->cookie, cc->override_cookie, f);
		else if (h->name.len == header_len && !f->header_version && h->value.len >= 1 &&
			 h->value.len <= COHORT_VERSION_MAX && !strncasecmp(name, cc->override_header, header_len)) {
			f->header_version = value;
			f->header_version_len = h->value.len;
		}
	}
}

int cohort_cookie_append(struct buf *b, const struct config_cohorts *cfg, int cohort)
{
	char line[256];
	int n = snprintf(line, sizeof(line), "Set-Cookie: %s=%d; Path=/; Max-Age=%llu; SameSite=Lax; HttpOnly\r\n",
			 cfg->cookie, cohort, (unsigned long long)(cfg->max_age_ms / 1000));

	if (n < 0 || (size_t)n >= sizeof(line))
		return -ENOSPC; /* the configuration bounds the name well below */
	return buf_append(b, line, (size_t)n) < 0 ? -ENOSPC : 0;
}

/* ------------------------------------------------------------------ */
/* the deck                                                            */

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, n), n >= 1, without modulo bias (Lemire's method). */
static uint32_t uniform_below(uint64_t *state, uint32_t n)
{
	uint64_t m = (uint64_t)(uint32_t)splitmix64(state) * n;

	if ((uint32_t)m < n) {
		uint32_t threshold = (uint32_t)-n % n;
		while ((uint32_t)m < threshold)
			m = (uint64_t)(uint32_t)splitmix64(state) * n;
	}
	return (uint32_t)(m >> 32);
}

void cohort_deck_init(struct cohort_deck *d, uint64_t seed)
{
	d->rng = seed;
	for (unsigned i = 0; i < 100; i++)
		d->cards[i] = (uint8_t)i;
	d->next = 100;
}

int cohort_deal(struct cohort_deck *d)
{
	if (d->next >= 100) {
		/* Fisher-Yates: each of the 100! orders equally likely */
		for (uint32_t i = 99; i > 0; i--) {
			uint32_t j = uniform_below(&d->rng, i + 1);
			uint8_t t = d->cards[i];
			d->cards[i] = d->cards[j];
			d->cards[j] = t;
		}
		d->next = 0;
	}
	return d->cards[d->next++];
}

uint64_t cohort_seed(void)
{
	uint64_t seed;
	struct timespec ts;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == (ssize_t)sizeof(seed))
		return seed;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
}

/* ------------------------------------------------------------------ */
/* steering                                                            */

unsigned cohort_share(uint32_t canary_weight, uint32_t total_weight)
{
	if (!total_weight)
		return 0;
	if (canary_weight >= total_weight)
		return 100;
	return (unsigned)((uint64_t)canary_weight * 100 / total_weight);
}

void cohort_service_prepare(struct route_service *s)
{
	uint32_t total = 0, versions = 0;
	int canary = -1;

	for (uint32_t i = 0; i < s->ngroups && i < INT8_MAX; i++) {
		const struct route_group *g = &s->groups[i];
		if (!g->n)
			continue;
		versions++;
		if (!g->weight)
			continue;
		total += g->weight;
		if (g->canary && canary < 0)
			canary = (int)i;
	}
	s->canary = -1;
	s->canary_share = 0;
	if (canary >= 0 && s->groups[canary].weight < total) {
		s->canary = (int8_t)canary;
		s->canary_share = (uint8_t)cohort_share(s->groups[canary].weight, total);
	}
	s->steer = s->canary >= 0 || versions > 1;
}

/* The cohort rule under s's split (s->canary >= 0). */
static int split_pick(struct route_service *s, int cohort)
{
	int g;

	if (cohort < s->canary_share)
		return s->canary;
	g = route_choose_wrr(s, s->canary);
	return g >= 0 ? g : s->canary;
}

int cohort_follow(struct route_service *s, int cohort)
{
	if (s->canary < 0 || cohort < 0)
		return -1;
	return split_pick(s, cohort);
}

/* The group of version (len bytes) if it has instances, else -1. */
static int version_group(const struct route_service *s, const char *version, size_t len)
{
	for (uint32_t i = 0; version && i < s->ngroups && i < INT8_MAX; i++) {
		const struct route_group *g = &s->groups[i];
		if (g->n && g->version && strlen(g->version) == len && !memcmp(g->version, version, len))
			return (int)i;
	}
	return -1;
}

int cohort_choose(struct route_service *s, struct route_request *rq)
{
	struct cohort_found f = { .cohort = COHORT_NONE };
	int g, cohort;

	request_scan(rq, &f);
	g = version_group(s, f.header_version, f.header_version_len);
	if (g < 0)
		g = version_group(s, f.cookie_version, f.cookie_version_len);
	if (g >= 0) {
		rq->forced = true;
		return g;
	}
	if (s->canary < 0)
		return route_choose_wrr(s, -1);
	cohort = f.cohort;
	if (cohort == COHORT_NONE) {
		cohort = cohort_deal(rq->deck);
		rq->set_cookie = true;
	}
	rq->cohort = (int8_t)cohort;
	return split_pick(s, cohort);
}

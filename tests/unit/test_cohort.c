/* test_cohort.c - unit tests of the shopper cohorts (src/proxy/cohort.c):
 * the Cookie value scan, the cohort values, the share rule, the deck, and
 * the steering of route_choose()/route_follow() on hand-built services.
 *
 * Requests are real heads parsed by the HTTP parser, so the header scan
 * sees what the proxy sees.  A service is built by hand (its groups with
 * one slot each, no targets: choosing a group never touches a target) and
 * prepared with cohort_service_prepare() as routes.c does after a build.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/buf.h"
#include "base/util.h"
#include "http/parser.h"
#include "proxy/cohort.h"
#include "proxy/proxy.h"

static const struct config_cohorts names = {
	.cookie = "cutover_cohort",
	.max_age_ms = 30ull * 86400 * 1000,
	.override_cookie = "cutover_version",
	.override_header = "X-Cutover-Version",
};

/* ---- pure parts ---------------------------------------------------------- */

static void test_parse(void **state UNUSED)
{
	static const struct {
		const char *value;
		int want;
	} cases[] = {
		{ "0", 0 },	      { "7", 7 },	     { "07", 7 },	   { "42", 42 },
		{ "99", 99 },	      { "100", COHORT_NONE }, { "", COHORT_NONE }, { "-1", COHORT_NONE },
		{ "+5", COHORT_NONE }, { "5 ", COHORT_NONE }, { "4x", COHORT_NONE }, { "x", COHORT_NONE },
		{ "0x1", COHORT_NONE }, { "1.5", COHORT_NONE }, { "099", COHORT_NONE },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		if (cohort_parse(cases[i].value, strlen(cases[i].value)) != cases[i].want)
			fail_msg("cohort_parse(\"%s\") = %d, want %d", cases[i].value,
				 cohort_parse(cases[i].value, strlen(cases[i].value)), cases[i].want);
}

/* the longest version an override can name (127 bytes), and one more */
#define VERSION_127                                                           \
	"1.0.0-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" \
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define LONG_VERSION VERSION_127 "a"

static void test_cookie_scan(void **state UNUSED)
{
	static const struct {
		const char *header;
		int cohort;
		const char *version; /* NULL: none */
	} cases[] = {
		{ "cutover_cohort=42", 42, NULL },
		{ "a=1; cutover_cohort=7; b=2", 7, NULL },
		{ "a=1;cutover_cohort=7;cutover_version=1.3.0", 7, "1.3.0" },
		{ "cutover_cohort=5\t;\tcutover_version=2.0.0", 5, "2.0.0" },
		{ "cutover_cohort = 5", 5, NULL },             /* lenient about spaces */
		{ "cutover_cohort=\"9\"", 9, NULL },           /* a quoted value */
		{ ";;; cutover_cohort=3;;", 3, NULL },
		{ "", COHORT_NONE, NULL },
		{ ";", COHORT_NONE, NULL },
		{ "=", COHORT_NONE, NULL },
		{ "=5", COHORT_NONE, NULL },
		{ "cutover_cohort", COHORT_NONE, NULL },       /* no value */
		{ "cutover_cohort=", COHORT_NONE, NULL },
		{ "cutover_cohort=100", COHORT_NONE, NULL },
		{ "cutover_cohort=-1", COHORT_NONE, NULL },
		{ "cutover_cohort=4x", COHORT_NONE, NULL },
		{ "cutover_cohort=\"\"", COHORT_NONE, NULL },
		{ "cutover_cohort=\"", COHORT_NONE, NULL },
		{ "xcutover_cohort=3", COHORT_NONE, NULL },    /* names match whole ... */
		{ "cutover_cohortx=3", COHORT_NONE, NULL },
		{ "Cutover_Cohort=3", COHORT_NONE, NULL },     /* ... and case-sensitively */
		{ "cutover_cohort=abc; cutover_cohort=12", 12, NULL }, /* the first valid one */
		{ "cutover_cohort=12; cutover_cohort=13", 12, NULL },
		{ "cutover_version=1.2.0", COHORT_NONE, "1.2.0" },
		{ "cutover_version=; cutover_version=1.2.0", COHORT_NONE, "1.2.0" }, /* the first non-empty */
		{ "cutover_version=1.2.0; cutover_version=1.3.0", COHORT_NONE, "1.2.0" },
		{ "cutover_version=\"1.2.0\"", COHORT_NONE, "1.2.0" },
		{ "cutover_version=a=b", COHORT_NONE, "a=b" },
		{ "cutover_version=" VERSION_127, COHORT_NONE, VERSION_127 },
		{ "cutover_version=" LONG_VERSION, COHORT_NONE, NULL }, /* too long to name a version */
		{ "cutover_version=" LONG_VERSION "; cutover_version=1.0.0", COHORT_NONE, "1.0.0" },
		{ "cutover_cohort=cutover_version=1", COHORT_NONE, NULL },
	};

	assert_int_equal(strlen(VERSION_127), COHORT_VERSION_MAX);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct cohort_found f = { .cohort = COHORT_NONE };
		const char *h = cases[i].header;
		bool version_ok;

		cohort_cookies_scan(h, strlen(h), names.cookie, names.override_cookie, &f);
		version_ok = cases[i].version ? f.cookie_version && f.cookie_version_len == strlen(cases[i].version) &&
							!memcmp(f.cookie_version, cases[i].version, f.cookie_version_len)
					      : !f.cookie_version;
		if (f.cohort != cases[i].cohort || !version_ok || f.header_version)
			fail_msg("scan of \"%s\": cohort %d (want %d), version \"%.*s\" (want \"%s\")", h, f.cohort,
				 cases[i].cohort, f.cookie_version ? (int)f.cookie_version_len : 6,
				 f.cookie_version ? f.cookie_version : "(none)",
				 cases[i].version ? cases[i].version : "(none)");
	}
}

/* Several Cookie fields: what the first one found stays. */
static void test_cookie_scan_fields(void **state UNUSED)
{
	struct cohort_found f = { .cohort = COHORT_NONE };
	const char *a = "cutover_cohort=x; cutover_version=1.0.0", *b = "cutover_cohort=8; cutover_version=2.0.0";
	const char *c = "cutover_cohort=9";

	cohort_cookies_scan(a, strlen(a), names.cookie, names.override_cookie, &f);
	assert_int_equal(f.cohort, COHORT_NONE);
	cohort_cookies_scan(b, strlen(b), names.cookie, names.override_cookie, &f);
	cohort_cookies_scan(c, strlen(c), names.cookie, names.override_cookie, &f);
	assert_int_equal(f.cohort, 8);
	assert_int_equal(f.cookie_version_len, 5);
	assert_memory_equal(f.cookie_version, "1.0.0", 5);
	/* the scan stays inside the bytes it is given */
	f = (struct cohort_found){ .cohort = COHORT_NONE };
	cohort_cookies_scan("cutover_cohort=42", strlen("cutover_cohort=4"), names.cookie, NULL, &f);
	assert_int_equal(f.cohort, 4);
}

static void test_share(void **state UNUSED)
{
	static const struct {
		uint32_t canary, total;
		unsigned want;
	} cases[] = {
		{ 1, 20, 5 },  /* 5 % and 95 % reduced by their gcd: 1 and 19 */
		{ 1, 4, 25 }, { 1, 2, 50 }, { 3, 4, 75 }, { 1, 3, 33 }, { 2, 3, 66 }, { 1, 1000, 0 },
		{ 999, 1000, 99 }, { 5, 100, 5 }, { 0, 10, 0 }, { 10, 10, 100 }, { 1, 0, 0 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		if (cohort_share(cases[i].canary, cases[i].total) != cases[i].want)
			fail_msg("cohort_share(%u, %u) = %u, want %u", cases[i].canary, cases[i].total,
				 cohort_share(cases[i].canary, cases[i].total), cases[i].want);
}

static void test_set_cookie(void **state UNUSED)
{
	struct buf b = { 0 };
	const char *want = "Set-Cookie: cutover_cohort=7; Path=/; Max-Age=2592000; SameSite=Lax; HttpOnly\r\n";

	assert_int_equal(buf_init(&b, 256), 0);
	assert_int_equal(cohort_cookie_append(&b, &names, 7), 0);
	assert_int_equal(buf_len(&b), strlen(want));
	assert_memory_equal(buf_start(&b), want, strlen(want));
	buf_release(&b);
	assert_int_equal(buf_init(&b, 40), 0);
	assert_int_equal(cohort_cookie_append(&b, &names, 7), -ENOSPC);
	buf_release(&b);
}

/* ---- the deck ------------------------------------------------------------ */

/* Each aligned run of 100 deals is a permutation of 0..99, and two decks
 * in a row are not dealt in the same order. */
static void test_deck_permutations(void **state UNUSED)
{
	struct cohort_deck d;
	int first[100], second[100];

	cohort_deck_init(&d, 12345);
	for (int round = 0; round < 50; round++) {
		int seen[100] = { 0 };
		for (int i = 0; i < 100; i++) {
			int c = cohort_deal(&d);
			assert_in_range(c, 0, 99);
			seen[c]++;
			if (round == 0)
				first[i] = c;
			else if (round == 1)
				second[i] = c;
		}
		for (int c = 0; c < 100; c++)
			if (seen[c] != 1)
				fail_msg("round %d: %d dealt %d times", round, c, seen[c]);
	}
	assert_memory_not_equal(first, second, sizeof(first));
	/* another seed, another order */
	cohort_deck_init(&d, 54321);
	for (int i = 0; i < 100; i++)
		second[i] = cohort_deal(&d);
	assert_memory_not_equal(first, second, sizeof(first));
}

/* 1,000 new shoppers dealt from any point of the deck (a proxy has dealt
 * to others before): for 5, 25 and 50 % the share below the weight stays
 * within 2 points.  Over 2,000 seeds and starting points, the largest
 * miss is printed; plain random draws for comparison. */
static void test_deck_shares(void **state UNUSED)
{
	static const unsigned weights[] = { 5, 25, 50 };
	int worst[3] = { 0 }, random_misses = 0;
	uint64_t lcg = 88172645463325252ull;

	for (unsigned seed = 1; seed <= 2000; seed++) {
		struct cohort_deck d;
		int below[3] = { 0 }, rbelow = 0;

		cohort_deck_init(&d, seed * 0x9e3779b97f4a7c15ull);
		for (unsigned skip = seed % 100; skip; skip--)
			cohort_deal(&d);
		for (int i = 0; i < 1000; i++) {
			int c = cohort_deal(&d);
			for (int w = 0; w < 3; w++)
				below[w] += c < (int)weights[w];
			lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
			rbelow += (int)((lcg >> 33) % 100) < 50;
		}
		for (int w = 0; w < 3; w++) {
			int miss = abs(below[w] - (int)weights[w] * 10);
			if (miss > worst[w])
				worst[w] = miss;
		}
		random_misses += abs(rbelow - 500) > 20;
	}
	print_message("deck, 1,000 shoppers x 2,000 runs: largest miss %d, %d, %d shoppers at 5/25/50 %% "
		      "(the limit is 20); plain random at 50 %%: %d runs of 2,000 missed by more than 20\n",
		      worst[0], worst[1], worst[2], random_misses);
	for (int w = 0; w < 3; w++)
		assert_true(worst[w] <= 20);
}

/* ---- steering ------------------------------------------------------------ */

struct svc {
	struct route_service s;
	struct route_group g[3];
};

/* A service with groups "version:weight[:canary]" (a weight of 0 still has
 * an instance; a negative one has none), prepared as routes.c does. */
static void svc_set(struct svc *v, size_t n, const char *const *versions, const int *weights, int canary)
{
	memset(v, 0, sizeof(*v));
	v->s.groups = v->g;
	v->s.ngroups = (uint32_t)n;
	for (size_t i = 0; i < n; i++) {
		v->g[i].version = (char *)versions[i];
		v->g[i].weight = weights[i] > 0 ? (uint32_t)weights[i] : 0;
		v->g[i].n = weights[i] >= 0;
		v->g[i].canary = (int)i == canary;
		v->s.total_weight += (int)v->g[i].weight;
	}
	cohort_service_prepare(&v->s);
}

static const char *const two[] = { "1.0.0", "1.1.0" };

/* A request with the given extra header lines (each ending in CRLF)
 * parsed into *req; buf must outlive the use of req. */
static void request(char *buf, size_t size, const char *lines, struct http_request *req)
{
	struct http_error err;
	struct http_limits lim = { .max_head_bytes = 16384, .max_target_bytes = 8192 };
	int n = snprintf(buf, size, "GET / HTTP/1.1\r\nHost: shop.test\r\n%s\r\n", lines);

	assert_true(n > 0 && (size_t)n < size);
	assert_int_equal(http_request_parse(buf, (size_t)n, &lim, req, &err), n);
}

struct choice {
	int group;
	int cohort;
	bool set_cookie, forced;
};

static struct choice choose(struct svc *v, struct cohort_deck *deck, const char *lines)
{
	static struct http_request req;
	char buf[2048];
	struct route_request rq = { .cohorts = &names, .deck = deck, .cohort = COHORT_NONE };

	request(buf, sizeof(buf), lines, &req);
	rq.req = &req;
	rq.base = buf;
	return (struct choice){ route_choose(&v->s, &rq), rq.cohort, rq.set_cookie, rq.forced };
}

static void test_prepare(void **state UNUSED)
{
	static const struct {
		const char *name;
		size_t n;
		int weights[3];
		int canary;
		bool steer;
		int want_canary;
		unsigned share;
	} cases[] = {
		{ "one version", 1, { 1 }, -1, false, -1, 0 },
		{ "one version flagged canary, all the traffic", 1, { 1 }, 0, false, -1, 0 },
		{ "5 % canary", 2, { 19, 1 }, 1, true, 1, 5 },
		{ "25 % canary", 2, { 3, 1 }, 1, true, 1, 25 },
		{ "50 % canary first", 2, { 1, 1 }, 0, true, 0, 50 },
		{ "canary without a weight yet", 2, { 1, 0 }, 1, true, -1, 0 },
		{ "canary with all the weight", 2, { 0, 1 }, 1, true, -1, 0 },
		{ "canary without instances", 2, { 1, -1 }, 1, false, -1, 0 },
		{ "blue-green: live and warm previous", 2, { 1, 0 }, -1, true, -1, 0 },
		{ "stable, warm previous and a 25 % canary", 3, { 3, 0, 1 }, 2, true, 2, 25 },
	};
	static const char *const versions[] = { "1.0.0", "1.1.0", "1.2.0" };

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct svc v;
		svc_set(&v, cases[i].n, versions, cases[i].weights, cases[i].canary);
		if (v.s.steer != cases[i].steer || v.s.canary != cases[i].want_canary ||
		    v.s.canary_share != cases[i].share)
			fail_msg("%s: steer %d canary %d share %u, want %d %d %u", cases[i].name, v.s.steer,
				 v.s.canary, v.s.canary_share, cases[i].steer, cases[i].want_canary, cases[i].share);
	}
}

/* Outside a deploy: round-robin, no cookie read or set. */
static void test_no_split(void **state UNUSED)
{
	struct cohort_deck deck;
	struct svc v;
	struct choice ch;

	cohort_deck_init(&deck, 1);
	svc_set(&v, 1, two, (int[]){ 1 }, -1);
	ch = choose(&v, &deck, "Cookie: cutover_cohort=3\r\n");
	assert_int_equal(ch.group, 0);
	assert_int_equal(ch.cohort, COHORT_NONE);
	assert_false(ch.set_cookie);
	/* live + warm previous (blue-green's rollback window) */
	svc_set(&v, 2, two, (int[]){ 1, 0 }, -1);
	for (int i = 0; i < 10; i++) {
		ch = choose(&v, &deck, i % 2 ? "" : "Cookie: cutover_cohort=3\r\n");
		assert_int_equal(ch.group, 0);
		assert_false(ch.set_cookie);
		assert_int_equal(ch.cohort, COHORT_NONE);
	}
	/* ... where an override reaches the warm one */
	ch = choose(&v, &deck, "X-Cutover-Version: 1.1.0\r\n");
	assert_int_equal(ch.group, 1);
	assert_true(ch.forced);
	/* two versions that share the traffic without a canary: by weight */
	svc_set(&v, 2, two, (int[]){ 1, 1 }, -1);
	assert_int_not_equal(choose(&v, &deck, "").group, choose(&v, &deck, "").group);
	assert_false(choose(&v, &deck, "").set_cookie);
}

static void test_split(void **state UNUSED)
{
	struct cohort_deck deck;
	struct svc v;
	struct choice ch;
	int on[3] = { 0 };

	cohort_deck_init(&deck, 2);
	svc_set(&v, 2, two, (int[]){ 19, 1 }, 1);
	for (int i = 0; i < 200; i++) {
		ch = choose(&v, &deck, "Cookie: other=1\r\n");
		assert_true(ch.set_cookie);
		assert_in_range(ch.cohort, 0, 99);
		assert_int_equal(ch.group, ch.cohort < 5 ? 1 : 0);
		assert_false(ch.forced);
	}
	ch = choose(&v, &deck, "Cookie: cutover_cohort=4\r\n");
	assert_int_equal(ch.group, 1);
	assert_int_equal(ch.cohort, 4);
	assert_false(ch.set_cookie);
	ch = choose(&v, &deck, "Cookie: cutover_cohort=5\r\n");
	assert_int_equal(ch.group, 0);
	assert_false(ch.set_cookie);
	/* the field name in any case; a second Cookie field is read too */
	ch = choose(&v, &deck, "COOKIE: a=b\r\ncookie: cutover_cohort=0\r\n");
	assert_int_equal(ch.group, 1);
	assert_false(ch.set_cookie);
	/* an invalid cohort is no cohort: a new one, and its cookie */
	ch = choose(&v, &deck, "Cookie: cutover_cohort=250\r\n");
	assert_true(ch.set_cookie);
	assert_in_range(ch.cohort, 0, 99);
	/* a stable version of two groups (a warm previous one and the live
	 * one) shares its cohorts by weight among them */
	svc_set(&v, 3, (const char *const[]){ "1.0.0", "1.1.0", "1.2.0" }, (int[]){ 1, 1, 2 }, 2);
	assert_int_equal(v.s.canary_share, 50);
	for (int i = 0; i < 100; i++)
		on[choose(&v, &deck, "Cookie: cutover_cohort=77\r\n").group]++;
	assert_int_equal(on[2], 0);
	assert_int_equal(on[0], 50);
	assert_int_equal(on[1], 50);
}

static void test_overrides(void **state UNUSED)
{
	struct cohort_deck deck;
	struct svc v;
	struct choice ch;

	cohort_deck_init(&deck, 3);
	svc_set(&v, 2, two, (int[]){ 19, 1 }, 1);
	ch = choose(&v, &deck, "X-Cutover-Version: 1.1.0\r\n");
	assert_int_equal(ch.group, 1);
	assert_true(ch.forced);
	assert_false(ch.set_cookie);
	ch = choose(&v, &deck, "x-cutover-version: 1.0.0\r\nCookie: cutover_cohort=1\r\n");
	assert_int_equal(ch.group, 0);
	assert_true(ch.forced);
	/* the header wins over the cookie */
	ch = choose(&v, &deck, "Cookie: cutover_version=1.0.0\r\nX-Cutover-Version: 1.1.0\r\n");
	assert_int_equal(ch.group, 1);
	ch = choose(&v, &deck, "Cookie: cutover_cohort=50; cutover_version=1.1.0\r\n");
	assert_int_equal(ch.group, 1);
	assert_true(ch.forced);
	assert_false(ch.set_cookie);
	/* a version the service does not run: ignored (then the cookie's) */
	ch = choose(&v, &deck, "X-Cutover-Version: 9.9.9\r\nCookie: cutover_cohort=50\r\n");
	assert_int_equal(ch.group, 0);
	assert_false(ch.forced);
	assert_int_equal(ch.cohort, 50);
	ch = choose(&v, &deck, "X-Cutover-Version: 9.9.9\r\nCookie: cutover_version=1.1.0; cutover_cohort=50\r\n");
	assert_int_equal(ch.group, 1);
	assert_true(ch.forced);
	ch = choose(&v, &deck, "X-Cutover-Version: 1.1\r\n");
	assert_false(ch.forced);
	assert_true(ch.set_cookie);
	/* a version with instances but no weight yet */
	svc_set(&v, 2, two, (int[]){ 1, 0 }, 1);
	ch = choose(&v, &deck, "X-Cutover-Version: 1.1.0\r\n");
	assert_int_equal(ch.group, 1);
	assert_true(ch.forced);
	/* ... but not one without instances */
	svc_set(&v, 2, two, (int[]){ 1, -1 }, 1);
	ch = choose(&v, &deck, "X-Cutover-Version: 1.1.0\r\n");
	assert_int_equal(ch.group, 0);
	assert_false(ch.forced);
}

/* Issue 10's stickiness: 1,000 shoppers, each with a cookie jar, through
 * 5 -> 25 -> 50 -> 100 %: each moves at most once, never back, and the
 * shares stay within 2 points (here: exact). */
static void test_stickiness(void **state UNUSED)
{
	static const struct {
		int weights[2];
		int canary;
		int want; /* shoppers on the canary */
	} steps[] = {
		{ { 19, 1 }, 1, 50 }, { { 3, 1 }, 1, 250 }, { { 1, 1 }, 1, 500 },
		{ { 0, 1 }, -1, 1000 }, /* promoted: the old version warm, no canary */
	};
	static int jar[1000], on[1000], moves[1000];
	struct cohort_deck deck;
	struct svc v;
	char lines[64];

	cohort_deck_init(&deck, 4);
	for (int i = 0; i < 1000; i++)
		jar[i] = COHORT_NONE;
	for (size_t s = 0; s < ARRAY_SIZE(steps); s++) {
		int canary = 0, cookies = 0;
		svc_set(&v, 2, two, steps[s].weights, steps[s].canary);
		for (int i = 0; i < 1000; i++) {
			struct choice ch;
			if (jar[i] == COHORT_NONE)
				lines[0] = 0;
			else
				snprintf(lines, sizeof(lines), "Cookie: session=abc; cutover_cohort=%d\r\n", jar[i]);
			ch = choose(&v, &deck, lines);
			if (ch.set_cookie) {
				jar[i] = ch.cohort;
				cookies++;
			}
			if (s && ch.group != on[i]) {
				assert_int_equal(ch.group, 1); /* never back to stable */
				moves[i]++;
			}
			on[i] = ch.group;
			canary += ch.group == 1;
		}
		print_message("step %zu: %d of 1,000 shoppers on the canary (want %d), %d cookies set\n", s + 1,
			      canary, steps[s].want, cookies);
		assert_true(abs(canary - steps[s].want) <= 20);
		assert_int_equal(cookies, s == 0 ? 1000 : 0);
	}
	for (int i = 0; i < 1000; i++)
		assert_true(moves[i] <= 1);
}

/* A client without cookies: a new cohort per request, so by weight. */
static void test_cookieless(void **state UNUSED)
{
	struct cohort_deck deck;
	struct svc v;
	int canary = 0;

	cohort_deck_init(&deck, 5);
	svc_set(&v, 2, two, (int[]){ 3, 1 }, 1);
	for (int i = 0; i < 1000; i++) {
		struct choice ch = choose(&v, &deck, "");
		assert_true(ch.set_cookie);
		canary += ch.group == 1;
	}
	assert_int_equal(canary, 250);
}

/* A retry that follows a new table keeps its version if it can, else the
 * group its cohort has there. */
static void test_follow(void **state UNUSED)
{
	struct svc v;

	svc_set(&v, 2, two, (int[]){ 3, 1 }, 1);
	assert_int_equal(route_follow(&v.s, "1.1.0", 80, false), 1); /* its version still shares */
	assert_int_equal(route_follow(&v.s, "1.0.0", 10, false), 0);
	assert_int_equal(route_follow(&v.s, "0.9.0", 10, false), 1);   /* gone: the cohort's group */
	assert_int_equal(route_follow(&v.s, "0.9.0", 80, false), 0);
	assert_int_equal(route_follow(&v.s, NULL, 10, false), 1);
	svc_set(&v, 2, two, (int[]){ 1, 0 }, -1);                      /* aborted: stable only */
	assert_int_equal(route_follow(&v.s, "1.1.0", 10, false), 0);
	assert_int_equal(route_follow(&v.s, "1.1.0", COHORT_NONE, true), 1); /* forced: kept while it runs */
	svc_set(&v, 2, two, (int[]){ 1, -1 }, -1);
	assert_int_equal(route_follow(&v.s, "1.1.0", COHORT_NONE, true), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),		  cmocka_unit_test(test_cookie_scan),
		cmocka_unit_test(test_cookie_scan_fields), cmocka_unit_test(test_share),
		cmocka_unit_test(test_set_cookie),	  cmocka_unit_test(test_deck_permutations),
		cmocka_unit_test(test_deck_shares),	  cmocka_unit_test(test_prepare),
		cmocka_unit_test(test_no_split),	  cmocka_unit_test(test_split),
		cmocka_unit_test(test_overrides),	  cmocka_unit_test(test_stickiness),
		cmocka_unit_test(test_cookieless),	  cmocka_unit_test(test_follow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

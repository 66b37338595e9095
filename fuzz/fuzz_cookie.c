/* fuzz_cookie.c - libFuzzer target for the Cookie scan of the shopper
 * cohorts (cohort_cookies_scan in src/proxy/cohort.c), which reads bytes
 * every client controls.
 *
 * The first input byte picks the cookie names: bit 0 the proxy's defaults
 * (cutover_cohort, cutover_version) or the short "c" and "v" (so that the
 * fuzzer finds them), bit 1 whether the override name is given at all.
 * The rest is one Cookie field value.  Beyond memory safety (ASan/UBSan)
 * the target aborts when a contract breaks:
 *   - the cohort is COHORT_NONE or 0..99; an override lies inside the
 *     input and has 1..COHORT_VERSION_MAX bytes;
 *   - the result equals that of a plain reference scan written here
 *     (split on ';', trim, split at the first '=', unquote);
 *   - the value scanned in two calls, split after any ';', gives the same
 *     result as one call (pairs are independent; the first one wins).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/cohort.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                 \
	do {                                                                                        \
		if (!(cond)) {                                                                      \
			fprintf(stderr, "%s:%d: contract broken: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                                    \
		}                                                                                   \
	} while (0)

static bool blank(char c)
{
	return c == ' ' || c == '\t';
}

/* The reference: one pair at a time, by indexes. */
static void reference(const char *s, size_t n, const char *cname, const char *vname, struct cohort_found *f)
{
	size_t i = 0;

	while (i < n) {
		size_t start = i, end, eq, ns, ne, vs, ve;
		while (i < n && s[i] != ';')
			i++;
		end = i++;
		while (start < end && blank(s[start]))
			start++;
		while (end > start && blank(s[end - 1]))
			end--;
		for (eq = start; eq < end && s[eq] != '='; eq++)
			;
		if (eq == end)
			continue;
		ns = start;
		ne = eq;
		while (ne > ns && blank(s[ne - 1]))
			ne--;
		vs = eq + 1;
		ve = end;
		while (vs < ve && blank(s[vs]))
			vs++;
		if (ve - vs >= 2 && s[vs] == '"' && s[ve - 1] == '"') {
			vs++;
			ve--;
		}
		if (f->cohort == COHORT_NONE && ne - ns == strlen(cname) && !memcmp(s + ns, cname, ne - ns)) {
			int c = COHORT_NONE;
			if (ve - vs == 1 && s[vs] >= '0' && s[vs] <= '9')
				c = s[vs] - '0';
			else if (ve - vs == 2 && s[vs] >= '0' && s[vs] <= '9' && s[vs + 1] >= '0' && s[vs + 1] <= '9')
				c = (s[vs] - '0') * 10 + (s[vs + 1] - '0');
			f->cohort = c;
		}
		if (vname && !f->cookie_version && ve > vs && ve - vs <= COHORT_VERSION_MAX &&
		    ne - ns == strlen(vname) && !memcmp(s + ns, vname, ne - ns)) {
			f->cookie_version = s + vs;
			f->cookie_version_len = ve - vs;
		}
	}
}

static bool same(const struct cohort_found *a, const struct cohort_found *b)
{
	return a->cohort == b->cohort && a->cookie_version == b->cookie_version &&
	       a->cookie_version_len == b->cookie_version_len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data + 1, *cname, *vname;
	struct cohort_found got = { .cohort = COHORT_NONE }, want = { .cohort = COHORT_NONE },
			    split = { .cohort = COHORT_NONE };
	size_t n, cut;

	if (size < 1)
		return 0;
	n = size - 1;
	cname = data[0] & 1 ? "c" : "cutover_cohort";
	vname = data[0] & 2 ? NULL : data[0] & 1 ? "v" : "cutover_version";

	cohort_cookies_scan(s, n, cname, vname, &got);
	CHECK(got.cohort == COHORT_NONE || (got.cohort >= 0 && got.cohort <= 99));
	CHECK(!got.header_version);
	if (got.cookie_version) {
		CHECK(vname);
		CHECK(got.cookie_version >= s && got.cookie_version + got.cookie_version_len <= s + n);
		CHECK(got.cookie_version_len >= 1 && got.cookie_version_len <= COHORT_VERSION_MAX);
	}

	reference(s, n, cname, vname, &want);
	CHECK(same(&got, &want));

	/* split after a ';' picked by the input's length */
	cut = n ? n * 7 / 13 : 0;
	while (cut < n && s[cut] != ';')
		cut++;
	if (cut < n) {
		cohort_cookies_scan(s, cut + 1, cname, vname, &split);
		cohort_cookies_scan(s + cut + 1, n - cut - 1, cname, vname, &split);
		CHECK(same(&got, &split));
	}
	return 0;
}

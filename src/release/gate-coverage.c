/* gate-coverage.c - coverage figures as a coverage gate reads them: gcovr's
 * JSON summary (gate_read_gcovr) and lcov's tracefile (gate_read_lcov),
 * both declared in gate.h.
 *
 * gcovr --json-summary writes the totals at the top level (line_covered,
 * line_total, branch_*, function_*), so they are taken as they stand; a
 * pair that is absent is "not reported" (total 0), half a pair or a covered
 * count above its total is refused.  An lcov tracefile is a list of records,
 * one per source file, from SF: to end_of_record; lcov's own tools end each
 * with its totals (LF/LH, BRF/BRH, FNF/FNH) but geninfo's capture may not,
 * so where a record lacks a pair its DA, BRDA and FN/FNDA lines are counted
 * instead (a line or function with a count above 0 is covered, a branch
 * taken "-" is not).  Records are summed as they stand: a tracefile that
 * names one source file in two records (two captures concatenated, not
 * merged with lcov -a) counts it twice.  Pure: no I/O.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "release/gate.h"

/*
 * gcovr
 */

/* Reads top-level pair NAME_covered / NAME_total into *covered, *total
 * (both 0 when both are absent).  Returns 0, or -EINVAL with err. */
static int gcovr_pair(json_t *root, const char *name, uint64_t *covered, uint64_t *total, char *err,
		      size_t errlen)
{
	char kc[32], kt[32];
	json_t *c, *t;

	snprintf(kc, sizeof(kc), "%s_covered", name);
	snprintf(kt, sizeof(kt), "%s_total", name);
	c = json_object_get(root, kc);
	t = json_object_get(root, kt);
	if (!c && !t) {
		*covered = *total = 0;
		return 0;
	}
	if (!c || !t) {
		snprintf(err, errlen, "%s without %s", c ? kc : kt, c ? kt : kc);
		return -EINVAL;
	}
	if (!json_is_integer(c) || json_integer_value(c) < 0 || !json_is_integer(t) || json_integer_value(t) < 0) {
		snprintf(err, errlen, "%s and %s must be whole numbers, 0 or more", kc, kt);
		return -EINVAL;
	}
	*covered = (uint64_t)json_integer_value(c);
	*total = (uint64_t)json_integer_value(t);
	if (*covered > *total) {
		snprintf(err, errlen, "%s %" PRIu64 " is more than %s %" PRIu64, kc, *covered, kt, *total);
		return -EINVAL;
	}
	return 0;
}

int gate_read_gcovr(const char *json, size_t len, struct gate_coverage *ret, char *err, size_t errlen)
{
	struct gate_coverage c;
	json_error_t e;
	json_t *root;
	int r = -EINVAL;

	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &e);
	if (!root) {
		snprintf(err, errlen, "not JSON: line %d: %s", e.line, e.text);
		return -EINVAL;
	}
	if (!json_is_object(root)) {
		snprintf(err, errlen, "not a gcovr JSON summary: the top level is not an object");
		goto out;
	}
	if (!json_object_get(root, "line_total") && !json_object_get(root, "line_covered")) {
		snprintf(err, errlen, "not a gcovr JSON summary: no line_total at the top level%s",
			 json_object_get(root, "files") ? " (is it `gcovr --json` rather than `--json-summary`?)" : "");
		goto out;
	}
	if (gcovr_pair(root, "line", &c.lines_covered, &c.lines_total, err, errlen) < 0 ||
	    gcovr_pair(root, "branch", &c.branches_covered, &c.branches_total, err, errlen) < 0 ||
	    gcovr_pair(root, "function", &c.functions_covered, &c.functions_total, err, errlen) < 0)
		goto out;
	*ret = c;
	r = 0;
out:
	json_decref(root);
	return r;
}

/*
 * lcov
 */

/* One record's figures: the totals it states (has_*) and what its lines
 * count. */
struct lcov_record {
	bool open;
	int line;                     /* where SF: was */
	bool has_lf, has_lh, has_brf, has_brh, has_fnf, has_fnh;
	uint64_t lf, lh, brf, brh, fnf, fnh;
	uint64_t da, da_hit, brda, brda_hit, fn, fnda, fnda_hit;
};

/* The largest sum a report can hold (a JSON integer is an int64_t). */
#define LCOV_SUM_MAX ((uint64_t)INT64_MAX)

/* A whole number 0..LCOV_SUM_MAX from s[0..n).  Returns 0 or -EINVAL. */
static int lcov_number(const char *s, size_t n, uint64_t *ret)
{
	uint64_t v = 0;

	if (n == 0 || n > 18)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*ret = v;
	return 0;
}

/* Whether the execution count in s[0..n) is above 0: "-" (a branch in a
 * block never run) and negative counts (gcov's, from races in a
 * multi-threaded program) are not.  Any number of digits: only whether one
 * is not 0 matters.  Returns 1, 0, or -EINVAL. */
static int lcov_hit(const char *s, size_t n)
{
	bool negative = n && s[0] == '-', nonzero = false;

	if (n == 1 && negative)
		return 0;
	if (n == 0 || n > 40)
		return -EINVAL;
	for (size_t i = negative; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		nonzero |= s[i] != '0';
	}
	return nonzero && !negative;
}

/* Whether s[0..n) is a line number. */
static bool lcov_line_number(const char *s, size_t n)
{
	uint64_t v;

	return lcov_number(s, n, &v) == 0;
}

/* Field k (0-based, comma-separated) of v[0..n) into *f, *flen.  Returns
 * 0 or -EINVAL (fewer fields). */
static int lcov_field(const char *v, size_t n, unsigned k, const char **f, size_t *flen)
{
	size_t i = 0;
	const char *c;

	for (unsigned j = 0; j < k; j++) {
		if (!(c = memchr(v + i, ',', n - i)))
			return -EINVAL;
		i = (size_t)(c - v) + 1;
	}
	c = memchr(v + i, ',', n - i);
	*f = v + i;
	*flen = (c ? (size_t)(c - v) : n) - i;
	return 0;
}

/* The last field of v[0..n), which has at least min + 1 fields (lcov 2
 * may write a branch as an expression holding commas: the count is last). */
static int lcov_field_last(const char *v, size_t n, unsigned min, const char **f, size_t *flen)
{
	const char *c = memrchr(v, ',', n);
	unsigned commas = 0;

	for (size_t i = 0; i < n; i++)
		commas += v[i] == ',';
	if (!c || commas < min)
		return -EINVAL;
	*f = c + 1;
	*flen = n - (size_t)(c + 1 - v);
	return 0;
}

static int add(uint64_t *sum, uint64_t v)
{
	if (v > LCOV_SUM_MAX - *sum)
		return -EINVAL;
	*sum += v;
	return 0;
}

/* Adds record rec to *c: its stated totals, or the counts of its lines
 * where it states none.  Returns 0 or -EINVAL with err. */
static int lcov_close(struct lcov_record *rec, struct gate_coverage *c, char *err, size_t errlen)
{
	uint64_t lt = rec->has_lf && rec->has_lh ? rec->lf : rec->da;
	uint64_t lc = rec->has_lf && rec->has_lh ? rec->lh : rec->da_hit;
	uint64_t bt = rec->has_brf && rec->has_brh ? rec->brf : rec->brda;
	uint64_t bc = rec->has_brf && rec->has_brh ? rec->brh : rec->brda_hit;
	uint64_t ft = rec->has_fnf && rec->has_fnh ? rec->fnf : rec->fn ? rec->fn : rec->fnda;
	uint64_t fc = rec->has_fnf && rec->has_fnh ? rec->fnh : rec->fnda_hit;

	if (lc > lt || bc > bt || fc > ft) {
		snprintf(err, errlen, "the record from line %d counts more covered than found (%s)", rec->line,
			 lc > lt ? "lines" : bc > bt ? "branches" : "functions");
		return -EINVAL;
	}
	if (add(&c->lines_total, lt) < 0 || add(&c->lines_covered, lc) < 0 || add(&c->branches_total, bt) < 0 ||
	    add(&c->branches_covered, bc) < 0 || add(&c->functions_total, ft) < 0 ||
	    add(&c->functions_covered, fc) < 0) {
		snprintf(err, errlen, "the totals overflow at the record from line %d", rec->line);
		return -EINVAL;
	}
	*rec = (struct lcov_record){ 0 };
	return 0;
}

/* A stated total "KEY:N" into *v, *has.  Returns 0 or -EINVAL. */
static int lcov_total(const char *v, size_t n, uint64_t *ret, bool *has)
{
	if (lcov_number(v, n, ret) < 0)
		return -EINVAL;
	*has = true;
	return 0;
}

/* One line "KEY:VALUE" of a record.  Returns 0 or -EINVAL (a malformed
 * line). */
static int lcov_line(struct lcov_record *rec, const char *key, size_t klen, const char *v, size_t n)
{
	const char *f;
	size_t flen;
	int hit;

#define KEY(k) (klen == sizeof(k) - 1 && !memcmp(key, k, klen))
	if (KEY("LF"))
		return lcov_total(v, n, &rec->lf, &rec->has_lf);
	if (KEY("LH"))
		return lcov_total(v, n, &rec->lh, &rec->has_lh);
	if (KEY("BRF"))
		return lcov_total(v, n, &rec->brf, &rec->has_brf);
	if (KEY("BRH"))
		return lcov_total(v, n, &rec->brh, &rec->has_brh);
	if (KEY("FNF"))
		return lcov_total(v, n, &rec->fnf, &rec->has_fnf);
	if (KEY("FNH"))
		return lcov_total(v, n, &rec->fnh, &rec->has_fnh);
	if (KEY("DA")) {          /* DA:line,count[,checksum] */
		if (lcov_field(v, n, 0, &f, &flen) < 0 || !lcov_line_number(f, flen) ||
		    lcov_field(v, n, 1, &f, &flen) < 0 || (hit = lcov_hit(f, flen)) < 0)
			return -EINVAL;
		rec->da++;
		rec->da_hit += (uint64_t)hit;
	} else if (KEY("BRDA")) { /* BRDA:line,block,branch,taken */
		if (lcov_field(v, n, 0, &f, &flen) < 0 || !lcov_line_number(f, flen) ||
		    lcov_field_last(v, n, 3, &f, &flen) < 0 || (hit = lcov_hit(f, flen)) < 0)
			return -EINVAL;
		rec->brda++;
		rec->brda_hit += (uint64_t)hit;
	} else if (KEY("FN")) {   /* FN:line,name (lcov 2: FN:line,end,name) */
		rec->fn++;
	} else if (KEY("FNDA")) { /* FNDA:count,name */
		if (lcov_field(v, n, 0, &f, &flen) < 0 || (hit = lcov_hit(f, flen)) < 0)
			return -EINVAL;
		rec->fnda++;
		rec->fnda_hit += (uint64_t)hit;
	} else if (KEY("FNA")) {  /* lcov 2.2: FNA:index,count,name (FNL:index,line[,end] declares) */
		if (lcov_field(v, n, 1, &f, &flen) < 0 || (hit = lcov_hit(f, flen)) < 0)
			return -EINVAL;
		rec->fn++;
		rec->fnda_hit += (uint64_t)hit;
	}
	/* SF, TN, VER, FNL, LN and other keys say nothing about the totals */
	return 0;
#undef KEY
}

int gate_read_lcov(const char *text, size_t len, struct gate_coverage *ret, char *err, size_t errlen)
{
	struct gate_coverage c = { 0 };
	struct lcov_record rec = { 0 };
	size_t i = 0, records = 0;
	int line = 0;

	while (i < len) {
		const char *s = text + i, *nl = memchr(s, '\n', len - i), *colon;
		size_t n = nl ? (size_t)(nl - s) : len - i, klen;

		i += n + (nl ? 1 : 0);
		line++;
		if (n && s[n - 1] == '\r')
			n--;
		while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
			n--;
		if (n == 0)
			continue;
		if (n == 13 && !memcmp(s, "end_of_record", 13)) {
			if (!rec.open) {
				snprintf(err, errlen, "line %d: end_of_record without SF: before it", line);
				return -EINVAL;
			}
			if (lcov_close(&rec, &c, err, errlen) < 0)
				return -EINVAL;
			records++;
			continue;
		}
		colon = memchr(s, ':', n);
		for (klen = 0; colon && s + klen < colon; klen++)
			if (!((s[klen] >= 'A' && s[klen] <= 'Z') || (s[klen] >= 'a' && s[klen] <= 'z') || s[klen] == '_'))
				break;
		if (!colon || klen == 0 || s + klen != colon) {
			snprintf(err, errlen, "line %d: not lcov tracefile data (KEY:VALUE or end_of_record)", line);
			return -EINVAL;
		}
		if (klen == 2 && !memcmp(s, "SF", 2)) {
			if (rec.open) {
				snprintf(err, errlen, "line %d: SF: inside the record from line %d (no end_of_record)",
					 line, rec.line);
				return -EINVAL;
			}
			rec.open = true;
			rec.line = line;
			continue;
		}
		if (!rec.open) {
			if ((klen == 2 && !memcmp(s, "TN", 2)) || (klen == 3 && !memcmp(s, "VER", 3)))
				continue;
			snprintf(err, errlen, "line %d: %.*s: outside a record (SF: ... end_of_record)", line,
				 (int)klen, s);
			return -EINVAL;
		}
		if (lcov_line(&rec, s, klen, colon + 1, n - klen - 1) < 0) {
			snprintf(err, errlen, "line %d: malformed %.*s: line", line, (int)klen, s);
			return -EINVAL;
		}
	}
	if (rec.open) {
		snprintf(err, errlen, "the record from line %d has no end_of_record (is the file cut short?)", rec.line);
		return -EINVAL;
	}
	if (records == 0) {
		snprintf(err, errlen, "no record (SF: ... end_of_record) in it: not an lcov tracefile");
		return -EINVAL;
	}
	*ret = c;
	return 0;
}

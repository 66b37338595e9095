/* analysis.c - the deploy analysis: pass, fail or inconclusive, from windows
 * of counters, by sequential tests that stay valid when judged every second.
 *
 * The engine hands this file, on every tick of a hold, the new version's
 * counts since the weights were set and, when there is one, the stable
 * version's over the same time (a canary) or just before the switch
 * (blue-green), with the rules from the configuration; once for the whole
 * service and once per route class.  Every check asks the same question,
 * "k bad events among n: is their rate above p0?" (errors among requests,
 * responses slower than a threshold among responses), and answers it with a
 * mixture sequential probability ratio test, so that looking again on every
 * tick does not raise the chance of failing a good version above
 * 1 - confidence.  It answers with a verdict, each check for `cutover
 * status`, and a sentence a person can read; it does nothing else (no I/O,
 * no loop, no logging), so that tests/unit/test_analysis.c can test every
 * check with tables of cases and simulate thousands of canaries.  The method
 * and its justification: docs/internals/analysis.md.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "deploy/analysis.h"
#include "metrics/metrics.h"

void analysis_measure(const struct metrics_counts *c, struct analysis_figures *out)
{
	struct analysis_figures f = { 0 };
	uint64_t answered, errors_5xx;

	metrics_counts_totals(c, &answered, &errors_5xx);
	f.requests = answered + c->connect_failures;
	f.errors = errors_5xx + c->connect_failures;
	f.error_rate = f.requests ? (double)f.errors / (double)f.requests : 0.0;
	f.responses = metrics_counts_responses(c);
	/* without responses both fail with -ENODATA and leave the zeros */
	(void)metrics_counts_quantile(c, 500, &f.p50_lower_us, &f.p50_upper_us);
	(void)metrics_counts_quantile(c, 990, &f.p99_lower_us, &f.p99_upper_us);
	*out = f;
}

/*
 * Statistics.
 */

/* The confidence in basis points, within what the configuration accepts. */
static uint32_t confidence_clamp(uint32_t bp)
{
	return bp < 5000 ? (bp ? 5000 : 9900) : bp > 9999 ? 9999 : bp;
}

/* z such that P(Z <= z) = c for a standard normal Z, c in [0.5, 1):
 * Abramowitz and Stegun 26.2.23 (within 4.5e-4), then Newton's method on
 * erfc, which doubles the correct digits at each step: three reach the
 * double's precision. */
static double normal_quantile(double c)
{
	double t = sqrt(-2.0 * log(1.0 - c));
	double z = t - (2.515517 + 0.802853 * t + 0.010328 * t * t) /
			       (1.0 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t * t * t);

	for (int i = 0; i < 3; i++) {
		double cdf = 0.5 * erfc(-z / M_SQRT2), density = exp(-z * z / 2) / sqrt(2 * M_PI);
		z -= (cdf - c) / density;
	}
	return z;
}

/* Wilson's upper bound of K / N with the normal quantile Z. */
static double wilson_upper(uint64_t k, uint64_t n, double z)
{
	double z2 = z * z, nn = (double)n, p, up;

	if (n == 0)
		return 1.0;
	p = (double)k / nn;
	up = (p + z2 / (2 * nn) + z * sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn))) / (1 + z2 / nn);
	return up > 1.0 ? 1.0 : up;
}

double analysis_wilson_upper(uint64_t k, uint64_t n, uint32_t confidence_bp)
{
	return wilson_upper(k, n, normal_quantile(confidence_clamp(confidence_bp) / 10000.0));
}

/* Is the share of N responses at or below a value, K of them, at least Q
 * for certain (Wilson's lower bound, by symmetry from the upper one)? */
static bool share_at_least(uint64_t k, uint64_t n, double q, double z)
{
	return n && 1.0 - wilson_upper(n - k, n, z) >= q;
}

/* The fewest responses whose largest can bound the Q quantile from above
 * with the normal quantile Z: n / (n + z^2) >= Q. */
static uint64_t quantile_sample_needed(double q, double z)
{
	uint64_t n = (uint64_t)floor(z * z * q / (1 - q));

	while (!share_at_least(n, n, q, z))
		n++;
	return n ? n : 1;
}

/* An upper confidence bound of C's Q quantile (N its responses): the upper
 * bound of the first fine bucket where the lower bound of the share of
 * responses at or below it reaches Q.  False when N is too small for any
 * to (quantile_sample_needed). */
static bool quantile_upper(const struct metrics_counts *c, uint64_t n, double q, double z, uint64_t *upper_us)
{
	uint64_t seen = 0;

	for (unsigned b = 0; b < METRICS_FINE_BUCKETS && seen < n; b++) {
		if (!c->fine[b])
			continue;
		seen += c->fine[b];
		if (share_at_least(seen, n, q, z)) {
			*upper_us = metrics_fine_upper_us(b);
			return true;
		}
	}
	return false;
}

int analysis_quantile_upper(const struct metrics_counts *c, unsigned permille, uint32_t confidence_bp,
			    uint64_t *upper_us)
{
	double z = normal_quantile(confidence_clamp(confidence_bp) / 10000.0);

	if (permille == 0 || permille >= 1000)
		return -EINVAL;
	if (!quantile_upper(c, metrics_counts_responses(c), permille / 1000.0, z, upper_us))
		return -ENODATA;
	return 0;
}

double analysis_log_lambda(uint64_t k, uint64_t n, double p0)
{
	double kk = (double)k, rest = (double)(n - k);
	int sign; /* lgamma_r: lgamma's sign in a global is not for threads; all are positive here */
	double log_marginal = lgamma_r(kk + 1, &sign) + lgamma_r(rest + 1, &sign) - lgamma_r((double)n + 2, &sign);
	double log_null = (k ? kk * log(p0) : 0.0) + (n > k ? rest * log1p(-p0) : 0.0);

	return log_marginal - log_null;
}

/* Do K of N show a rate above P0, at level ALPHA?  True when K / N > P0 and
 * Lambda >= 1 / ALPHA; *p is then min(1, 1 / Lambda) (else 1).  By Ville's
 * inequality a version whose rate is at most P0 is failed with a chance of
 * at most ALPHA, however often this is asked as N grows. */
static bool rate_above(uint64_t k, uint64_t n, double p0, double alpha, double *p)
{
	double log_lambda;

	*p = 1.0;
	if (n == 0 || (double)k <= p0 * (double)n)
		return false;
	log_lambda = analysis_log_lambda(k, n, p0);
	if (log_lambda < -log(alpha))
		return false;
	*p = log_lambda > 0 ? exp(-log_lambda) : 1.0;
	return true;
}

/* Responses whose fine bucket lies wholly above T_US: certainly slower. */
static uint64_t responses_above(const struct metrics_counts *c, uint64_t t_us)
{
	uint64_t k = 0;

	for (unsigned b = METRICS_FINE_BUCKETS; b-- > 0 && metrics_fine_lower_us(b) > t_us;)
		k += c->fine[b];
	return k;
}

/*
 * Words and figures.
 */

/* Microseconds from milliseconds, saturated rather than wrapped. */
static uint64_t limit_us(uint64_t ms)
{
	return ms > UINT64_MAX / 1000 ? UINT64_MAX : ms * 1000;
}

/* Microseconds as whole milliseconds, rounded down or up (a bound stays a
 * bound once printed). */
static unsigned long long ms_floor(uint64_t us)
{
	return (unsigned long long)(us / 1000);
}

static unsigned long long ms_ceil(uint64_t us)
{
	return (unsigned long long)(us / 1000 + (us % 1000 != 0));
}

/* A count with thousands separators ("1,930") into buf (32 bytes). */
static const char *count_str(uint64_t v, char *buf)
{
	char digits[24];
	int n = snprintf(digits, sizeof(digits), "%" PRIu64, v);
	size_t o = 0;

	for (int i = 0; i < n; i++) {
		if (i && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = '\0';
	return buf;
}

/* A count and its noun, plural unless 1 ("1 request", "1,930 requests"),
 * into buf (48 bytes). */
static const char *noun_str(uint64_t v, const char *noun, char *buf)
{
	char n[32];

	snprintf(buf, 48, "%s %s%s", count_str(v, n), noun, v == 1 ? "" : "s");
	return buf;
}

/* A p-value as the sentences show it: "p < 0.001", else rounded up to
 * three decimals ("p = 0.004"), so that what is printed still bounds it. */
static const char *p_str(double p, char *buf, size_t len)
{
	if (p < 0.001)
		snprintf(buf, len, "p < 0.001");
	else
		snprintf(buf, len, "p = %.3f", ceil(p * 1000 - 1e-9) / 1000);
	return buf;
}

/* HUNDREDTHS as a number without trailing zeros: 200 "2", 150 "1.5",
 * 9990 "99.9" (ratios in percent, confidences in basis points). */
static const char *hundredths_str(uint32_t v, char *buf, size_t len)
{
	if (v % 100 == 0)
		snprintf(buf, len, "%u", v / 100);
	else if (v % 10 == 0)
		snprintf(buf, len, "%u.%u", v / 100, v / 10 % 10);
	else
		snprintf(buf, len, "%u.%02u", v / 100, v % 100);
	return buf;
}

/*
 * The checks.
 */

/* What judging one window needs, and the verdict it fills. */
struct judge {
	const struct analysis_rules *rules;
	const struct analysis_input *in;
	struct analysis_verdict *v;
	uint64_t need;                  /* min_requests, at least 1 */
	double alpha;                   /* 1 - confidence */
	double z;                       /* the standard normal's quantile at the confidence */
	const char *base;               /* the baseline's name in sentences */
	const char *prefix, *sep;       /* "POST /api/checkout", ": " or "", "" */
	bool failed;                    /* a check failed: the reason is written */
	unsigned fail_rank;             /* the rank of the check that wrote it */
};

/* Which failure gives the reason: the error rate before the p50 before the
 * p99, and for each the comparison before the absolute limit (its sentence
 * also shows the stable version's figure).  The lower rank wins. */
enum {
	RANK_ERROR_VS, RANK_ERROR, RANK_P50_VS, RANK_P50, RANK_P99_VS, RANK_P99,
};

/* A new check named "SCOPE: NAME", passing until judged otherwise. */
static struct analysis_check *check_add(struct judge *j, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static struct analysis_check *check_add(struct judge *j, const char *fmt, ...)
{
	struct analysis_check *c;
	char name[sizeof(c->name)];
	va_list ap;

	assert(j->v->nchecks < ANALYSIS_CHECKS_MAX);
	c = &j->v->checks[j->v->nchecks++];
	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	snprintf(c->name, sizeof(c->name), "%s%s%s", j->prefix, j->sep, name);
	c->result = ANALYSIS_PASS;
	c->counted = true;
	c->p_value = 1.0;
	return c;
}

/* Append to the verdict's reason, truncating at its end. */
static void reason_add(struct analysis_verdict *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void reason_add(struct analysis_verdict *v, const char *fmt, ...)
{
	size_t used = strlen(v->reason);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v->reason + used, sizeof(v->reason) - used, fmt, ap);
	va_end(ap);
}

/* The verdict's reason starts over, with "SCOPE: " when there is one. */
static void reason_start(struct judge *j)
{
	snprintf(j->v->reason, sizeof(j->v->reason), "%s%s", j->prefix, j->sep);
}

/* C failed: the failure of the lowest RANK writes the verdict's reason
 * ("SCOPE: " and the sentence, ending with the p-value). */
static void check_fail(struct judge *j, struct analysis_check *c, unsigned rank, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void check_fail(struct judge *j, struct analysis_check *c, unsigned rank, const char *fmt, ...)
{
	size_t used;
	char p[32];
	va_list ap;

	c->result = ANALYSIS_FAIL;
	if (j->failed && j->fail_rank <= rank)
		return;
	j->failed = true;
	j->fail_rank = rank;
	reason_start(j);
	used = strlen(j->v->reason);
	va_start(ap, fmt);
	vsnprintf(j->v->reason + used, sizeof(j->v->reason) - used, fmt, ap);
	va_end(ap);
	reason_add(j->v, ", %s", p_str(c->p_value, p, sizeof(p)));
	j->v->p_value = c->p_value;
}

/* The baseline is too small to compare with: listed, counting neither way. */
static void check_not_judged(struct analysis_check *c, uint64_t have, uint64_t need, const char *what)
{
	char a[32], b[32];

	c->result = ANALYSIS_INCONCLUSIVE;
	c->counted = false;
	snprintf(c->value, sizeof(c->value), "not judged: baseline too small (%s of the %s %s needed)",
		 count_str(have, a), count_str(need, b), what);
}

/* 1. The error rate against its absolute limit. */
static void check_error_limit(struct judge *j)
{
	const struct analysis_figures *f = &j->v->candidate;
	uint32_t limit = j->rules->max_error_rate_permille;
	struct analysis_check *c = check_add(j, "error rate");
	char e[32], r[32], w[48];

	snprintf(c->condition, sizeof(c->condition), "at most %.1f%%", limit / 10.0);
	snprintf(c->value, sizeof(c->value), "%.1f%% (%s of %s)", 100.0 * f->error_rate, count_str(f->errors, e),
		 count_str(f->requests, r));
	if (f->requests < j->need)
		c->result = ANALYSIS_INCONCLUSIVE;
	else if (rate_above(f->errors, f->requests, limit / 1000.0, j->alpha, &c->p_value))
		check_fail(j, c, RANK_ERROR, "error rate %.1f%% over %s, above the %.1f%% limit", 100.0 * f->error_rate,
			   noun_str(f->requests, "request", w), limit / 10.0);
}

/* 2. The error rate against the baseline's: above the upper confidence
 * bound of the baseline's rate plus the margin allowed. */
static void check_error_baseline(struct judge *j)
{
	const struct analysis_figures *f = &j->v->candidate, *b = &j->v->baseline;
	uint32_t margin = j->rules->max_error_rate_increase_permille;
	struct analysis_check *c = check_add(j, "error rate vs %s", j->base);
	char conf[16], e[32], r[32], be[32], br[32], w[48];
	double p0;

	snprintf(c->condition, sizeof(c->condition), "not above %s's %.1f%% (+%.1f points), %s%% confidence",
		 j->base, 100.0 * b->error_rate, margin / 10.0,
		 hundredths_str(confidence_clamp(j->rules->confidence_bp), conf, sizeof(conf)));
	if (b->requests < j->need) {
		check_not_judged(c, b->requests, j->need, "requests");
		return;
	}
	snprintf(c->value, sizeof(c->value), "%.1f%% (%s of %s) against %.1f%% (%s of %s)", 100.0 * f->error_rate,
		 count_str(f->errors, e), count_str(f->requests, r), 100.0 * b->error_rate, count_str(b->errors, be),
		 count_str(b->requests, br));
	p0 = wilson_upper(b->errors, b->requests, j->z) + margin / 1000.0;
	if (f->requests < j->need)
		c->result = ANALYSIS_INCONCLUSIVE;
	else if (!rate_above(f->errors, f->requests, p0 > 1.0 ? 1.0 : p0, j->alpha, &c->p_value))
		return;
	else if (!margin)
		check_fail(j, c, RANK_ERROR_VS, "error rate %.1f%% over %s against %.1f%% over %s on %s",
			   100.0 * f->error_rate, noun_str(f->requests, "request", w), 100.0 * b->error_rate, br,
			   j->base);
	else
		check_fail(j, c, RANK_ERROR_VS,
			   "error rate %.1f%% over %s against %.1f%% over %s on %s (+%.1f points allowed)",
			   100.0 * f->error_rate, noun_str(f->requests, "request", w), 100.0 * b->error_rate, br,
			   j->base, margin / 10.0);
}

/* A latency quantile as the checks see it. */
struct quantile {
	const char *label;              /* "p50", "p99" */
	double p0;                      /* the share of responses allowed above it: 0.5, 0.01 */
	uint64_t limit_ms;              /* absolute limit; 0: off */
	uint32_t ratio_percent;         /* against the baseline; 0: off */
	uint64_t lower_us, upper_us;    /* the candidate's bucket */
	double q;                       /* 0.5, 0.99 */
	unsigned rank;                  /* of its absolute check; its comparison's is one less */
};

/* The candidate's quantile and how many responses lie above T_US, for a
 * check's value: "p99 38 to 40 ms (3 of 400 above 500 ms)". */
static void latency_value(struct analysis_check *c, const struct quantile *q, uint64_t k, uint64_t n,
			  uint64_t t_us)
{
	char a[32], b[32];

	if (!n)
		snprintf(c->value, sizeof(c->value), "no responses");
	else
		snprintf(c->value, sizeof(c->value), "%s %llu to %llu ms (%s of %s above %llu ms)", q->label,
			 ms_floor(q->lower_us), ms_ceil(q->upper_us), count_str(k, a), count_str(n, b),
			 ms_floor(t_us));
}

/* 3, 4. A quantile against its absolute limit: fails when more than the
 * quantile's share of responses is certainly slower than the limit. */
static void check_latency_limit(struct judge *j, const struct quantile *q)
{
	const struct metrics_counts *cand = j->in->candidate;
	uint64_t n = j->v->candidate.responses, t = limit_us(q->limit_ms), k = responses_above(cand, t);
	struct analysis_check *c = check_add(j, "%s", q->label);
	char w[48];

	snprintf(c->condition, sizeof(c->condition), "at most %llu ms", (unsigned long long)q->limit_ms);
	latency_value(c, q, k, n, t);
	if (n < j->need)
		c->result = ANALYSIS_INCONCLUSIVE;
	else if (rate_above(k, n, q->p0, j->alpha, &c->p_value))
		check_fail(j, c, q->rank, "%s latency %llu ms or more over %s, above the %llu ms limit", q->label,
			   ms_floor(q->lower_us), noun_str(n, "response", w), (unsigned long long)q->limit_ms);
}

/* The threshold of a comparison: the larger of ratio x and + margin the
 * upper bound BU of the baseline's quantile; *by_ratio tells which. */
static uint64_t comparison_threshold(uint64_t bu, uint32_t ratio_percent, uint64_t margin_us, bool *by_ratio)
{
	uint64_t scaled = bu > UINT64_MAX / ratio_percent ? UINT64_MAX : bu * ratio_percent / 100;
	uint64_t added = bu > UINT64_MAX - margin_us ? UINT64_MAX : bu + margin_us;

	*by_ratio = scaled >= added;
	return scaled >= added ? scaled : added;
}

/* 5, 6. A quantile against the baseline's: the threshold is the larger of
 * ratio x and + margin an upper confidence bound of the baseline's
 * quantile, which a baseline of too few responses does not give. */
static void check_latency_baseline(struct judge *j, const struct quantile *q)
{
	const struct metrics_counts *cand = j->in->candidate;
	uint64_t n = j->v->candidate.responses, nb = j->v->baseline.responses, bu, t, k;
	uint64_t needed = quantile_sample_needed(q->q, j->z);
	struct analysis_check *c = check_add(j, "%s vs %s", q->label, j->base);
	unsigned long long margin = (unsigned long long)j->rules->latency_margin_ms;
	char x[16], w[48];
	bool by_ratio;

	hundredths_str(q->ratio_percent, x, sizeof(x));
	if (needed < j->need)
		needed = j->need;
	if (nb < needed || !quantile_upper(j->in->baseline, nb, q->q, j->z, &bu)) {
		snprintf(c->condition, sizeof(c->condition), "at most %sx %s's %s (+%llu ms)", x, j->base, q->label,
			 margin);
		check_not_judged(c, nb, needed, "responses");
		return;
	}
	t = comparison_threshold(bu, q->ratio_percent, limit_us(j->rules->latency_margin_ms), &by_ratio);
	snprintf(c->condition, sizeof(c->condition), "at most %sx %s's %s (+%llu ms): %llu ms", x, j->base, q->label,
		 margin, ms_floor(t));
	k = responses_above(cand, t);
	latency_value(c, q, k, n, t);
	if (n < j->need)
		c->result = ANALYSIS_INCONCLUSIVE;
	else if (!rate_above(k, n, q->p0, j->alpha, &c->p_value))
		return;
	else if (by_ratio)
		check_fail(j, c, q->rank - 1, "%s latency %llu ms or more over %s, above %sx %s's %llu ms (+%llu ms)",
			   q->label, ms_floor(q->lower_us), noun_str(n, "response", w), x, j->base, ms_ceil(bu),
			   margin);
	else
		check_fail(j, c, q->rank - 1, "%s latency %llu ms or more over %s, above %s's %llu ms + %llu ms",
			   q->label, ms_floor(q->lower_us), noun_str(n, "response", w), j->base, ms_ceil(bu), margin);
}

/*
 * The verdict.
 */

/* The sentence of an inconclusive verdict: the first counted check that
 * lacks its sample says which sample. */
static void inconclusive_reason(struct judge *j)
{
	const struct analysis_figures *f = &j->v->candidate;
	char have[32], need[32];

	count_str(j->need, need);
	reason_start(j);
	if (f->requests < j->need)
		reason_add(j->v, "too few requests to judge: %s of the %s needed", count_str(f->requests, have), need);
	else
		reason_add(j->v, "too few responses to judge the latency: %s of the %s needed",
			   count_str(f->responses, have), need);
}

/* The sentence of a pass: how many checks, the error rate and the latency
 * bounds, and the comparisons left out for a too small baseline. */
static void pass_reason(struct judge *j)
{
	const struct analysis_figures *f = &j->v->candidate;
	size_t passed = 0, listed = 0;
	char w[48];

	for (size_t i = 0; i < j->v->nchecks; i++) {
		passed += j->v->checks[i].counted;
		listed += !j->v->checks[i].counted;
	}
	reason_start(j);
	reason_add(j->v, "%zu check%s passed: error rate %.1f%% over %s", passed, passed == 1 ? "" : "s",
		   100.0 * f->error_rate, noun_str(f->requests, "request", w));
	if (f->responses)
		reason_add(j->v, ", p50 %llu ms or less, p99 %llu ms or less", ms_ceil(f->p50_upper_us),
			   ms_ceil(f->p99_upper_us));
	if (listed)
		reason_add(j->v, "; %zu not judged (%s too small to compare)", listed, j->base);
}

/* Run the checks that are on, in the order of analysis.h. */
static void judge_checks(struct judge *j)
{
	const struct analysis_rules *rules = j->rules;
	const struct analysis_figures *f = &j->v->candidate;
	struct quantile q[2] = {
		{ "p50", 0.5, rules->max_p50_ms, rules->max_p50_ratio_percent, f->p50_lower_us, f->p50_upper_us, 0.5,
		  RANK_P50 },
		{ "p99", 0.01, rules->max_p99_ms, rules->max_p99_ratio_percent, f->p99_lower_us, f->p99_upper_us, 0.99,
		  RANK_P99 },
	};

	check_error_limit(j);
	if (j->v->has_baseline)
		check_error_baseline(j);
	for (unsigned i = 0; i < 2; i++) {
		if (q[i].limit_ms)
			check_latency_limit(j, &q[i]);
		if (q[i].ratio_percent && j->v->has_baseline)
			check_latency_baseline(j, &q[i]);
	}
}

enum analysis_result analysis_judge(const struct analysis_rules *rules, const struct analysis_input *in,
				    struct analysis_verdict *out)
{
	struct analysis_verdict v;
	struct judge j = { .rules = rules, .in = in, .v = &v };
	bool inconclusive = false;

	assert(rules && in && in->candidate && out);
	memset(&v, 0, sizeof(v));
	v.result = ANALYSIS_PASS;
	v.p_value = 1.0;
	/* no check is judged on nothing, even with min_requests 0 */
	j.need = rules->min_requests ? rules->min_requests : 1;
	j.alpha = 1.0 - confidence_clamp(rules->confidence_bp) / 10000.0;
	j.z = normal_quantile(1.0 - j.alpha);
	j.base = in->baseline_name && in->baseline_name[0] ? in->baseline_name : "the stable version";
	j.prefix = in->scope && in->scope[0] ? in->scope : "";
	j.sep = j.prefix[0] ? ": " : "";
	analysis_measure(in->candidate, &v.candidate);
	if (in->baseline) {
		analysis_measure(in->baseline, &v.baseline);
		v.has_baseline = true;
	}

	judge_checks(&j);
	for (size_t i = 0; i < v.nchecks; i++)
		inconclusive |= v.checks[i].counted && v.checks[i].result == ANALYSIS_INCONCLUSIVE;
	if (j.failed)
		v.result = ANALYSIS_FAIL;
	else if (inconclusive)
		v.result = ANALYSIS_INCONCLUSIVE;
	if (v.result == ANALYSIS_INCONCLUSIVE)
		inconclusive_reason(&j);
	else if (v.result == ANALYSIS_PASS)
		pass_reason(&j);
	*out = v;
	return v.result;
}

const char *analysis_result_name(enum analysis_result result)
{
	switch (result) {
	case ANALYSIS_PASS: return "pass";
	case ANALYSIS_FAIL: return "fail";
	case ANALYSIS_INCONCLUSIVE: return "inconclusive";
	}
	return "?";
}

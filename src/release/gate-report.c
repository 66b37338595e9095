/* gate-report.c - a quality gate and its result as a release report shows
 * them (gate_result_json), the names of the gates' enums, and the cleaning
 * that keeps a reason printable UTF-8 (gate_text_clean): a reason may quote
 * bytes of the file a gate read, and a report is JSON, shown on terminals.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "release/gate.h"

/*
 * Names.
 */

const char *gate_read_name(enum release_gate_read r)
{
	static const char *const names[] = { "exit", "summary", "junit", "coverage", "metric" };

	return (unsigned)r < ARRAY_SIZE(names) ? names[r] : "unknown";
}

const char *gate_when_name(enum release_gate_when w)
{
	static const char *const names[] = { "before", "between", "after-group", "after" };

	return (unsigned)w < ARRAY_SIZE(names) ? names[w] : "unknown";
}

const char *gate_coverage_name(enum release_coverage_kind k)
{
	static const char *const names[] = { "lines", "branches", "functions" };

	return (unsigned)k < ARRAY_SIZE(names) ? names[k] : "unknown";
}

const char *gate_metric_name(enum release_metric m)
{
	static const char *const names[] = { "error_rate", "p50", "p99" };

	return (unsigned)m < ARRAY_SIZE(names) ? names[m] : "unknown";
}

/*
 * Text.
 */

void gate_text_clean(char *s)
{
	unsigned char *p = (unsigned char *)s;

	while (*p) {
		size_t n = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 : (*p & 0xf8) == 0xf0 ? 4 : 0;
		size_t k;

		for (k = 1; k < n && (p[k] & 0xc0) == 0x80; k++)
			;
		if (n == 0 || k < n || (n == 1 && (*p < 0x20 || *p == 0x7f)) || (n == 2 && *p < 0xc2) ||
		    (n == 3 && *p == 0xe0 && p[1] < 0xa0) || (n == 3 && *p == 0xed && p[1] >= 0xa0) ||
		    (n == 4 && ((*p == 0xf0 && p[1] < 0x90) || *p > 0xf4 || (*p == 0xf4 && p[1] >= 0x90)))) {
			*p++ = '?';
			continue;
		}
		p += n;
	}
}

/*
 * The report.
 */

/* A count as a JSON integer (an int64_t holds every count a reader gives). */
static json_t *count_json(uint64_t v)
{
	return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v);
}

/* Sets o[key] = v (stolen); returns -1 when v is NULL or out of memory. */
static int put(json_t *o, const char *key, json_t *v)
{
	return v ? json_object_set_new(o, key, v) : -1;
}

/* s as a JSON string, made valid UTF-8 first if it is not. */
static json_t *text_json(const char *s)
{
	json_t *j = json_string(s);
	char *copy;

	if (j || !(copy = strdup(s)))
		return j;
	gate_text_clean(copy);
	j = json_string(copy);
	free(copy);
	return j;
}

static json_t *threshold_json(const struct release_gate *g)
{
	json_t *t = json_object();
	int bad = 0;

	if (!t)
		return NULL;
	switch (g->read) {
	case GATE_READ_EXIT:
		bad |= put(t, "expect_exit", json_integer(g->expect_exit));
		break;
	case GATE_READ_SUMMARY:
	case GATE_READ_JUNIT:
		bad |= put(t, "min_tests", count_json(g->min_tests));
		bad |= put(t, "max_failed", count_json(g->max_failed));
		bad |= put(t, "min_pass_rate_percent", json_real(g->min_pass_rate_bp / 100.0));
		break;
	case GATE_READ_COVERAGE:
		bad |= put(t, "coverage", json_string(gate_coverage_name(g->coverage)));
		bad |= put(t, "min_coverage_percent", json_real(g->min_coverage_bp / 100.0));
		break;
	case GATE_READ_METRIC:
		bad |= put(t, "service", text_json(g->service ? g->service : ""));
		if (g->version)
			bad |= put(t, "version", text_json(g->version));
		bad |= put(t, "metric", json_string(gate_metric_name(g->metric)));
		bad |= put(t, "during_canary", json_boolean(g->during_canary));
		if (!g->during_canary)
			bad |= put(t, "window_ms", count_json(g->window_ms));
		if (g->metric == METRIC_ERROR_RATE)
			bad |= put(t, "max_error_rate_percent", json_real(g->max_value / 100.0));
		else
			bad |= put(t, "max_ms", count_json(g->max_value));
		bad |= put(t, "min_requests", count_json(g->min_requests));
		break;
	}
	if (bad) {
		json_decref(t);
		return NULL;
	}
	return t;
}

/* The figures that were read: tests, coverage, metric (each only when
 * read).  Returns 0 or -1 (out of memory). */
static int figures_json(json_t *o, const struct release_gate *g, const struct gate_result *r)
{
	json_t *f;
	int bad = 0;

	if (r->has_tests) {
		uint64_t ran = r->tests - r->skipped;
		if (put(o, "tests", f = json_object()) < 0)
			return -1;
		bad |= put(f, "tests", count_json(r->tests));
		bad |= put(f, "passed", count_json(r->passed_tests));
		bad |= put(f, "failed", count_json(r->failed));
		bad |= put(f, "errors", count_json(r->errors));
		bad |= put(f, "skipped", count_json(r->skipped));
		if (ran)
			bad |= put(f, "pass_rate_percent", json_real((double)r->passed_tests * 100.0 / (double)ran));
	}
	if (r->has_coverage) {
		if (put(o, "coverage", f = json_object()) < 0)
			return -1;
		bad |= put(f, "kind", json_string(gate_coverage_name(g->coverage)));
		bad |= put(f, "covered", count_json(r->covered));
		bad |= put(f, "total", count_json(r->total));
		bad |= put(f, "percent", json_real(r->coverage_percent));
	}
	if (r->has_metric) {
		if (put(o, "metric", f = json_object()) < 0)
			return -1;
		bad |= put(f, "requests", count_json(r->requests));
		bad |= put(f, "errors_5xx", count_json(r->errors_5xx));
		bad |= put(f, "value", json_real(r->value));
		bad |= put(f, "unit", json_string(g->metric == METRIC_ERROR_RATE ? "percent" : "ms"));
	}
	return bad ? -1 : 0;
}

json_t *gate_result_json(const struct release_gate *g, const struct gate_result *r)
{
	json_t *o = json_object();
	int bad = 0;

	if (!o)
		return NULL;
	bad |= put(o, "name", text_json(g->name ? g->name : ""));
	bad |= put(o, "read", json_string(gate_read_name(g->read)));
	bad |= put(o, "when", json_string(gate_when_name(g->when)));
	if (g->when == GATE_AFTER_GROUP && g->after)
		bad |= put(o, "after", text_json(g->after));
	if (g->run)
		bad |= put(o, "command", text_json(g->run));
	if (g->file)
		bad |= put(o, "file", text_json(g->file));
	bad |= put(o, "threshold", threshold_json(g));
	bad |= put(o, "passed", json_boolean(r->passed));
	bad |= put(o, "reason", text_json(r->reason));
	if (r->ran) {
		bad |= put(o, "exit_code", json_integer(r->exit_code));
		bad |= put(o, "signal", json_integer(r->signal));
		bad |= put(o, "timed_out", json_boolean(r->timed_out));
	}
	if (r->started_ms > 0) {
		bad |= put(o, "started_at", json_integer(r->started_ms));
		if (r->finished_ms >= r->started_ms) {
			bad |= put(o, "finished_at", json_integer(r->finished_ms));
			bad |= put(o, "duration_ms", json_integer(r->finished_ms - r->started_ms));
		}
	}
	bad |= figures_json(o, g, r);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* fuzz_gate.c - libFuzzer target for the quality gates' readers
 * (src/release/gate-summary.c, gate-junit.c, gate-coverage.c) and their
 * judge (src/release/gate.c): what a gate reads is written by whatever
 * command the gate ran.
 *
 * Input layout:
 *   byte 0     bits 0-1 the reader: 0 summary line, 1 JUnit XML,
 *              2 gcovr JSON, 3 lcov tracefile; bit 7: also judge it as a
 *              gate would (the rest written to a memfd that the judge
 *              reads by its /proc path), with thresholds picked by bits
 *              2-4
 *   the rest   the text
 *
 * Beyond memory safety (ASan/UBSan), the target aborts when a contract
 * breaks:
 *   - a reader returns 0, -EINVAL (-ENOENT for the summary, -ENOMEM for
 *     JUnit); on failure its output is untouched and err holds a sentence;
 *   - counts add up: failed + errors + skipped <= tests, covered <= total,
 *     and each fits a JSON integer;
 *   - the summary: a line without counts added after the text changes
 *     nothing; a line "1 passed, 0 failed" added after it wins;
 *   - lcov: the text read twice (records summed) gives twice the figures;
 *   - the judge: it passes exactly when the figures it read meet the
 *     thresholds (recomputed here), never without figures, and its reason
 *     is non-empty printable UTF-8 that gate_result_json holds.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "release/gate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                 \
	do {                                                                                        \
		if (!(cond)) {                                                                      \
			fprintf(stderr, "%s:%d: contract broken: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                                    \
		}                                                                                   \
	} while (0)

#define SENTINEL 0xdeadbeefu

static bool tests_sane(const struct gate_tests *t)
{
	return t->tests <= INT64_MAX && t->failed <= t->tests && t->errors <= t->tests && t->skipped <= t->tests &&
	       t->failed + t->errors + t->skipped <= t->tests;
}

static bool coverage_sane(const struct gate_coverage *c)
{
	return c->lines_covered <= c->lines_total && c->branches_covered <= c->branches_total &&
	       c->functions_covered <= c->functions_total && c->lines_total <= INT64_MAX &&
	       c->branches_total <= INT64_MAX && c->functions_total <= INT64_MAX;
}

static bool same_tests(const struct gate_tests *a, const struct gate_tests *b)
{
	return a->tests == b->tests && a->failed == b->failed && a->errors == b->errors && a->skipped == b->skipped;
}

static void fuzz_summary(const char *s, size_t n)
{
	struct gate_tests t = { .tests = SENTINEL }, again, last;
	char err[128] = "", *more = malloc(n + 64);
	int rc = gate_read_summary(s, n, &t, err, sizeof(err));

	CHECK(rc == 0 || rc == -ENOENT);
	if (rc < 0) {
		CHECK(t.tests == SENTINEL && err[0]);
	} else {
		CHECK(tests_sane(&t));
		/* a line without counts after it changes nothing */
		CHECK(more);
		memcpy(more, s, n);
		memcpy(more + n, "\nall done in 2 s\n", 17);
		CHECK(gate_read_summary(more, n + 17, &again, err, sizeof(err)) == 0);
		CHECK(same_tests(&t, &again));
	}
	/* a summary line after it wins */
	CHECK(more);
	memcpy(more, s, n);
	memcpy(more + n, "\n1 passed, 0 failed\n", 20);
	CHECK(gate_read_summary(more, n + 20, &last, err, sizeof(err)) == 0);
	CHECK(last.tests == 1 && last.failed == 0 && last.errors == 0 && last.skipped == 0);
	free(more);
}

static void fuzz_coverage(const char *s, size_t n, bool lcov)
{
	struct gate_coverage c = { .lines_total = SENTINEL }, twice;
	char err[256] = "", *two;
	int rc = lcov ? gate_read_lcov(s, n, &c, err, sizeof(err)) : gate_read_gcovr(s, n, &c, err, sizeof(err));

	CHECK(rc == 0 || rc == -EINVAL);
	if (rc < 0) {
		CHECK(c.lines_total == SENTINEL && err[0]);
		return;
	}
	CHECK(coverage_sane(&c));
	if (!lcov || n == 0 || s[n - 1] != '\n')
		return;
	/* records are summed: the text twice gives twice the figures (or an overflow) */
	two = malloc(2 * n);
	CHECK(two);
	memcpy(two, s, n);
	memcpy(two + n, s, n);
	rc = gate_read_lcov(two, 2 * n, &twice, err, sizeof(err));
	if (rc == 0)
		CHECK(twice.lines_total == 2 * c.lines_total && twice.lines_covered == 2 * c.lines_covered &&
		      twice.branches_total == 2 * c.branches_total && twice.branches_covered == 2 * c.branches_covered &&
		      twice.functions_total == 2 * c.functions_total &&
		      twice.functions_covered == 2 * c.functions_covered);
	else
		CHECK(strstr(err, "overflow"));
	free(two);
}

/* Whether s is printable UTF-8 (what the judges promise of a reason). */
static bool printable_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		size_t len = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 : (*p & 0xf8) == 0xf0 ? 4 : 0;
		if (len == 0 || (len == 1 && (*p < 0x20 || *p == 0x7f)))
			return false;
		for (size_t k = 1; k < len; k++)
			if ((p[k] & 0xc0) != 0x80)
				return false;
		p += len;
	}
	return true;
}

/* Judges s as the gate's output (summary) or file (the others). */
static void fuzz_judge(const char *s, size_t n, unsigned sel)
{
	static int fd = -1;
	static const struct {
		uint64_t min_tests, max_failed;
		uint32_t rate_bp, coverage_bp;
		enum release_coverage_kind kind;
		int exit_code;
	} th[8] = {
		{ 1, 0, 10000, 8000, COVERAGE_LINES, 0 },   { 0, 0, 0, 0, COVERAGE_BRANCHES, 0 },
		{ 5, 2, 9000, 5000, COVERAGE_FUNCTIONS, 1 }, { 1, 1000, 1, 1, COVERAGE_LINES, 2 },
		{ 100, 0, 9999, 10000, COVERAGE_BRANCHES, 0 }, { 0, 5, 5000, 3333, COVERAGE_FUNCTIONS, 0 },
		{ 2, 0, 10000, 9999, COVERAGE_LINES, 1 },   { 1, 1, 6666, 6666, COVERAGE_BRANCHES, 0 },
	};
	static const enum release_gate_read reads[4] = { GATE_READ_SUMMARY, GATE_READ_JUNIT, GATE_READ_COVERAGE,
							 GATE_READ_COVERAGE };
	unsigned k = (sel >> 2) & 7;
	struct release_gate g = {
		.name = "g",
		.read = reads[sel & 3],
		.run = "make check",
		.min_tests = th[k].min_tests,
		.max_failed = th[k].max_failed,
		.min_pass_rate_bp = th[k].rate_bp,
		.coverage = th[k].kind,
		.min_coverage_bp = th[k].coverage_bp,
	};
	struct gate_result r = { .ran = true, .exit_code = th[k].exit_code, .has_metric = true };
	char path[64];
	json_t *j;

	if (fd < 0)
		fd = memfd_create("fuzz_gate", MFD_CLOEXEC);
	CHECK(fd >= 0);
	CHECK(ftruncate(fd, 0) == 0);
	CHECK(pwrite(fd, s, n, 0) == (ssize_t)n);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	g.file = path;
	gate_judge_command(&g, "/nonexistent", path, &r);

	CHECK(r.reason[0] && printable_utf8(r.reason));
	CHECK(!r.has_metric);
	if (g.read == GATE_READ_COVERAGE) {
		CHECK(!r.has_tests);
		if (r.has_coverage) {
			bool ok = (unsigned __int128)r.covered * 10000 >= (unsigned __int128)g.min_coverage_bp * r.total;
			CHECK(r.total > 0 && r.covered <= r.total);
			CHECK(r.passed == ok);
		} else {
			CHECK(!r.passed);
		}
	} else {
		CHECK(!r.has_coverage);
		if (r.has_tests) {
			uint64_t ran = r.tests - r.skipped, bad = r.failed + r.errors;
			bool ok = ran >= g.min_tests && bad <= g.max_failed &&
				  (ran ? (unsigned __int128)r.passed_tests * 10000 >= (unsigned __int128)g.min_pass_rate_bp * ran
				       : g.min_pass_rate_bp == 0);
			CHECK(r.passed_tests + bad + r.skipped == r.tests);
			CHECK(r.passed == ok);
		} else {
			CHECK(!r.passed);
		}
	}
	if (th[k].exit_code)
		CHECK(strstr(r.reason, "; the command exited with status"));
	j = gate_result_json(&g, &r);
	CHECK(j);
	CHECK(!strcmp(json_string_value(json_object_get(j, "reason")), r.reason));
	json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data + 1;
	size_t n;

	if (size < 1)
		return 0;
	n = size - 1;
	switch (data[0] & 3) {
	case 0:
		fuzz_summary(s, n);
		break;
	case 1: {
		struct gate_tests t = { .tests = SENTINEL };
		char err[256] = "";
		int rc = gate_read_junit(s, n, &t, err, sizeof(err));
		CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
		if (rc < 0)
			CHECK(t.tests == SENTINEL && err[0]);
		else
			CHECK(tests_sane(&t) && t.tests > 0);
		break;
	}
	case 2:
		fuzz_coverage(s, n, false);
		break;
	case 3:
		fuzz_coverage(s, n, true);
		break;
	}
	if (data[0] & 0x80)
		fuzz_judge(s, n, data[0]);
	return 0;
}

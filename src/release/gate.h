/* gate.h - quality gates: reading what a gate's command left (its output,
 * a JUnit XML file, a gcovr JSON summary or an lcov .info file) and
 * judging it against the gate's thresholds.
 *
 * Nothing here runs a process or talks to the daemon: the runner runs the
 * command (or counts the requests of a metric gate), then hands what it got
 * to gate_judge_*().  A result is never invented or defaulted: output that
 * cannot be read fails the gate, and the reason says what was missing
 * where.  The readers are exposed for the unit tests and the fuzzers.
 */
#pragma once
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include "release/release-t.h"

/* The most of a JUnit XML or coverage file a gate reads: a larger file
 * fails the gate.  A summary gate reads the last GATE_OUTPUT_TAIL bytes of
 * its command's output (the totals are at the end). */
#define GATE_FILE_MAX (64u << 20)
#define GATE_OUTPUT_TAIL (1u << 20)

/* Test counts as a report states them; passed = tests - failed - errors -
 * skipped. */
struct gate_tests {
	uint64_t tests;               /* every test case, skipped ones included */
	uint64_t failed;              /* failures (assertions) */
	uint64_t errors;              /* errors (the test could not run to its end) */
	uint64_t skipped;
};

/* Coverage as a report states it; *_total 0: not reported. */
struct gate_coverage {
	uint64_t lines_covered, lines_total;
	uint64_t branches_covered, branches_total;
	uint64_t functions_covered, functions_total;
};

/* The last line of text holding "N passed, M failed" (as this project's
 * own suite and many runners print it; "N passed" alone, pytest's
 * "N passed, M failed, K skipped in 1.2s" and "N failed, M passed" are read
 * too; "N error(s)", "N skipped", "N xfailed" (skipped), "N xpassed"
 * (passed) and cargo's "N ignored" (skipped) on the same line count).
 * Returns 0 with *ret (tests = passed + failed + errors + skipped), or
 * -ENOENT when no such line is there, with a sentence in err. */
int gate_read_summary(const char *text, size_t len, struct gate_tests *ret, char *err, size_t errlen);
/* A JUnit XML report (<testsuites> or <testsuite> at the root; cmocka's,
 * pytest's, Maven Surefire's): counted from its <testcase> elements and
 * their <failure>, <error> and <skipped> children.  Returns 0 with *ret,
 * or -EINVAL (not XML, not JUnit, a DOCTYPE, no test case, larger than
 * GATE_FILE_MAX) or -ENOMEM, with a sentence in err. */
int gate_read_junit(const char *xml, size_t len, struct gate_tests *ret, char *err, size_t errlen);
/* gcovr's JSON summary (`gcovr --json-summary`): line_covered/line_total,
 * branch_*, function_*.  Returns 0 or -EINVAL with a sentence in err. */
int gate_read_gcovr(const char *json, size_t len, struct gate_coverage *ret, char *err, size_t errlen);
/* An lcov tracefile (.info): the LF/LH, BRF/BRH, FNF/FNH of every record
 * summed (or counted from DA/BRDA/FNDA lines where a record lacks them).
 * Returns 0 or -EINVAL with a sentence in err. */
int gate_read_lcov(const char *text, size_t len, struct gate_coverage *ret, char *err, size_t errlen);

/* Judge gate g once its command ran: r->ran, exit_code, signal, timed_out
 * and the times are filled by the runner; output_path is the file holding
 * its stdout and stderr; g->file is read relative to dir.  Fills the
 * figures, r->passed and r->reason.  A command that timed out, was killed
 * or (for a file-reading gate) left no readable file fails, saying so. */
void gate_judge_command(const struct release_gate *g, const char *dir, const char *output_path,
			struct gate_result *r);
/* Judge metric gate g: the runner filled r->requests, errors_5xx and value
 * (has_metric), or left has_metric false with r->reason saying why there
 * is nothing to read.  Fills r->passed and completes r->reason. */
void gate_judge_metric(const struct release_gate *g, struct gate_result *r);
/* The gate and its result for a report: {name, read, when, command, file,
 * threshold: {...}, passed, reason, exit_code, signal, timed_out,
 * started_at, finished_at, duration_ms, tests: {...}, coverage: {...},
 * metric: {...}}; the parts that were not read are left out.  NULL when
 * out of memory. */
json_t *gate_result_json(const struct release_gate *g, const struct gate_result *r);
/* Makes s printable and valid UTF-8 in place: control characters and bytes
 * that do not form a UTF-8 sequence (what a reader quoted from a file, a
 * sentence cut at its size) become '?'.  The judges do it to r->reason. */
void gate_text_clean(char *s);
/* "exit", "summary", "junit", "coverage", "metric"; "before", "between",
 * "after-group", "after"; "lines", "branches", "functions"; "error_rate",
 * "p50", "p99". */
const char *gate_read_name(enum release_gate_read r);
const char *gate_when_name(enum release_gate_when w);
const char *gate_coverage_name(enum release_coverage_kind k);
const char *gate_metric_name(enum release_metric m);

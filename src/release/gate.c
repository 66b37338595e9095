/* gate.c - judging a quality gate: what its command left (the exit status,
 * the output, a JUnit XML or coverage file) or what the daemon counted (a
 * metric gate), against the gate's thresholds.  gate-report.c shows the
 * gate with its result in a report.
 *
 * The release runner runs the command (or counts the requests) and hands
 * over a struct gate_result holding what happened; this file reads the
 * files with the readers of gate-summary.c, gate-junit.c and
 * gate-coverage.c and writes the verdict and one sentence giving the real
 * figures against the threshold, or saying what could not be read where.
 * Nothing is ever assumed: a command that timed out or was killed fails, a
 * file that is missing, unreadable, too large or not in its format fails,
 * a figure that cannot be computed (coverage of a report with no branches,
 * a pass rate when every test was skipped) fails.  For the gates that read
 * a result, a non-zero exit status is reported but the figures decide
 * (pytest exits 1 when a test failed, and a gate may allow one).  No
 * process, no loop, no logging: tests/unit/test_gate.c drives it with
 * tables.  docs/internals/gates.md says how each result is read.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "release/gate.h"

/*
 * Sentences and figures.
 */

/* Appends to r->reason (a sentence cut at its size stays a string). */
__attribute__((format(printf, 2, 3))) static void say(struct gate_result *r, const char *fmt, ...)
{
	size_t n = strlen(r->reason);
	va_list ap;

	if (n + 1 >= sizeof(r->reason))
		return;
	va_start(ap, fmt);
	vsnprintf(r->reason + n, sizeof(r->reason) - n, fmt, ap);
	va_end(ap);
}

/* num / den in basis points, rounded down (so that a figure shown is never
 * above the real one: 99.999% shows as 99.99%, not as 100.00%); den > 0. */
static uint64_t ratio_bp(uint64_t num, uint64_t den)
{
	return (uint64_t)((unsigned __int128)num * 10000 / den);
}

/* Whether num / den >= bp / 10000, exactly. */
static bool ratio_at_least(uint64_t num, uint64_t den, uint64_t bp)
{
	return (unsigned __int128)num * 10000 >= (unsigned __int128)bp * den;
}

/* Basis points as a percentage with two decimals: "81.25%". */
static const char *bp_text(uint64_t bp, char *buf, size_t size)
{
	snprintf(buf, size, "%" PRIu64 ".%02" PRIu64 "%%", bp / 100, bp % 100);
	return buf;
}
#define BP_TEXT(bp) bp_text((bp), (char[32]){ 0 }, 32)

static const char *plural(uint64_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

/*
 * Files.
 */

/* DIR/FILE, or FILE when it is absolute or there is no DIR.  Malloc'd;
 * NULL when out of memory. */
static char *join_path(const char *dir, const char *file)
{
	char *p;

	if (file[0] == '/' || !dir || !dir[0])
		return strdup(file);
	if (asprintf(&p, "%s/%s", dir, file) < 0)
		return NULL;
	return p;
}

/* Reads the regular file at path: all of it (-EFBIG when it holds more than
 * max bytes) or, with tail, its last max bytes, less the piece of a line
 * they start with (when the file is longer: *ret_cut).  Returns 0 with
 * *ret (a malloc'd copy with a NUL after it, the caller frees), *ret_len,
 * *ret_mtime_ms and *ret_cut; or -errno (-EINVAL: not a regular file),
 * outputs untouched. */
static int read_file(const char *path, size_t max, bool tail, char **ret, size_t *ret_len, int64_t *ret_mtime_ms,
		     bool *ret_cut)
{
	struct stat st;
	size_t want, got = 0;
	off_t offset = 0;
	char *buf = NULL;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		goto out;
	}
	if ((uint64_t)st.st_size > max && !tail) {
		r = -EFBIG;
		goto out;
	}
	want = (uint64_t)st.st_size > max ? max : (size_t)st.st_size;
	if (tail)
		offset = st.st_size - (off_t)want;
	buf = malloc(want + 1);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	while (got < want) {
		ssize_t n = pread(fd, buf + got, want - got, offset + (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto out;
		}
		if (n == 0)
			break;          /* it shrank meanwhile: what is there */
		got += (size_t)n;
	}
	buf[got] = '\0';
	if (offset > 0) {
		/* the tail starts inside a line: "12 passed" cut to "2 passed"
		 * must not be read, so the first line goes */
		char *nl = memchr(buf, '\n', got);
		size_t drop = nl ? (size_t)(nl - buf) + 1 : got;
		memmove(buf, buf + drop, got - drop + 1);
		got -= drop;
	}
	*ret = buf;
	*ret_len = got;
	*ret_cut = offset > 0;
	*ret_mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
	buf = NULL;
	r = 0;
out:
	free(buf);
	close(fd);
	return r;
}

_Static_assert(GATE_FILE_MAX == 64u << 20, "read_error() names the size");

/* Why read_file failed, for a sentence. */
static const char *read_error(int r)
{
	switch (r) {
	case -EINVAL:
		return "not a regular file";
	case -EFBIG:
		return "larger than the 64 MiB a gate reads";
	default:
		return strerror(-r);
	}
}

/*
 * Judging figures.
 */

/* Judges test counts t, read from where, against g's thresholds. */
static void judge_tests(const struct release_gate *g, const struct gate_tests *t, struct gate_result *r)
{
	uint64_t bad = t->failed + t->errors, passed, ran;
	bool ok_rate, ok_tests, ok_failed;

	/* the readers give bad + skipped <= tests */
	passed = t->tests >= bad + t->skipped ? t->tests - bad - t->skipped : 0;
	ran = t->tests >= t->skipped ? t->tests - t->skipped : 0;
	r->has_tests = true;
	r->tests = t->tests;
	r->passed_tests = passed;
	r->failed = t->failed;
	r->errors = t->errors;
	r->skipped = t->skipped;

	say(r, "%" PRIu64 " passed, %" PRIu64 " failed", passed, t->failed);
	if (t->errors)
		say(r, ", %" PRIu64 " %s", t->errors, plural(t->errors, "error", "errors"));
	if (t->skipped)
		say(r, ", %" PRIu64 " skipped", t->skipped);
	say(r, " (%" PRIu64 " %s", t->tests, plural(t->tests, "test", "tests"));
	if (t->skipped && ran)
		say(r, ", %" PRIu64 " ran", ran);
	if (ran) {
		ok_rate = ratio_at_least(passed, ran, g->min_pass_rate_bp);
		say(r, ", pass rate %s %s %s", BP_TEXT(ratio_bp(passed, ran)), ok_rate ? ">=" : "<",
		    BP_TEXT(g->min_pass_rate_bp));
	} else {
		ok_rate = g->min_pass_rate_bp == 0;
		say(r, ", none ran: no pass rate%s", ok_rate ? "" : " to judge");
	}
	ok_tests = ran >= g->min_tests;
	if (!ok_tests)
		say(r, "; %" PRIu64 " ran < %" PRIu64 " required", ran, g->min_tests);
	ok_failed = bad <= g->max_failed;
	if (!ok_failed)
		say(r, "; %" PRIu64 " failed%s > %" PRIu64 " allowed", bad, t->errors ? " or errored" : "",
		    g->max_failed);
	say(r, ")");
	r->passed = ok_rate && ok_tests && ok_failed;
}

/* Judges coverage c, read from file, against g's threshold. */
static void judge_coverage(const struct release_gate *g, const struct gate_coverage *c, const char *file,
			   struct gate_result *r)
{
	static const char *const what[] = { "line", "branch", "function" };
	static const char *const whats[] = { "lines", "branches", "functions" };
	unsigned k = (unsigned)g->coverage < ARRAY_SIZE(what) ? (unsigned)g->coverage : 0;
	uint64_t covered = k == 0 ? c->lines_covered : k == 1 ? c->branches_covered : c->functions_covered;
	uint64_t total = k == 0 ? c->lines_total : k == 1 ? c->branches_total : c->functions_total;
	bool ok;

	if (total == 0) {
		say(r, "%s reports no %s, so its %s coverage cannot be judged: the gate fails "
		    "(a result is never assumed)", file, whats[k], what[k]);
		return;
	}
	r->has_coverage = true;
	r->covered = covered;
	r->total = total;
	r->coverage_percent = (double)covered * 100.0 / (double)total;
	ok = ratio_at_least(covered, total, g->min_coverage_bp);
	say(r, "%s coverage %s (%" PRIu64 "/%" PRIu64 ") %s %s", what[k], BP_TEXT(ratio_bp(covered, total)), covered,
	    total, ok ? ">=" : "<", BP_TEXT(g->min_coverage_bp));
	r->passed = ok;
}

/* Reads the gate's file (junit or coverage) relative to dir and judges it;
 * when it cannot be read, r->reason says why and the gate fails. */
static void judge_file(const struct release_gate *g, const char *dir, struct gate_result *r)
{
	const char *kind = g->read == GATE_READ_JUNIT ? "JUnit XML" : "coverage report";
	char err[256] = "", *path = NULL, *text = NULL;
	struct gate_coverage cov;
	struct gate_tests t;
	int64_t mtime_ms = 0;
	size_t len = 0;
	bool cut;
	int rc;

	if (!g->file || !g->file[0]) {
		say(r, "the gate names no file to read: the gate fails (a result is never assumed)");
		return;
	}
	path = join_path(dir, g->file);
	if (!path) {
		say(r, "out of memory reading %s: the gate fails", g->file);
		return;
	}
	rc = read_file(path, GATE_FILE_MAX, false, &text, &len, &mtime_ms, &cut);
	if (rc == -ENOENT) {
		say(r, "no %s at %s: %s: the gate fails (a result is never assumed)", kind, g->file, strerror(ENOENT));
		goto out;
	}
	if (rc < 0) {
		say(r, "the %s at %s cannot be read: %s: the gate fails (a result is never assumed)", kind, g->file,
		    read_error(rc));
		goto out;
	}
	if (g->read == GATE_READ_JUNIT) {
		rc = gate_read_junit(text, len, &t, err, sizeof(err));
	} else {
		/* by content: gcovr's JSON opens with '{' (after a BOM, blanks) */
		size_t bom = len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3) ? 3 : 0, i = bom;
		bool json;

		while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r'))
			i++;
		json = i < len && text[i] == '{';
		kind = json ? "gcovr JSON summary" : "lcov tracefile";
		rc = json ? gate_read_gcovr(text + bom, len - bom, &cov, err, sizeof(err))
			  : gate_read_lcov(text + bom, len - bom, &cov, err, sizeof(err));
	}
	if (rc < 0) {
		say(r, "the %s at %s cannot be read: %s: the gate fails (a result is never assumed)", kind, g->file,
		    err);
		goto out;
	}
	if (g->read == GATE_READ_JUNIT)
		judge_tests(g, &t, r);
	else
		judge_coverage(g, &cov, g->file, r);
	/* a file older than the command is a result of an earlier run; it is
	 * what the gate names, so it is judged, but the report says so (1 s
	 * of slack for coarse file system clocks) */
	if (r->started_ms > 0 && mtime_ms + 1000 < r->started_ms)
		say(r, "; note: %s was last written before the command started", g->file);
out:
	free(text);
	free(path);
}

/* Reads the end of the command's output and judges its summary line. */
static void judge_summary(const struct release_gate *g, const char *output_path, struct gate_result *r)
{
	char err[128] = "", *text = NULL;
	struct gate_tests t;
	int64_t mtime_ms;
	size_t len;
	bool cut;
	int rc;

	if (!output_path) {
		say(r, "the command's output was not kept: the gate fails (a result is never assumed)");
		return;
	}
	rc = read_file(output_path, GATE_OUTPUT_TAIL, true, &text, &len, &mtime_ms, &cut);
	if (rc < 0) {
		say(r, "the command's output cannot be read: %s: the gate fails (a result is never assumed)",
		    read_error(rc));
		return;
	}
	if (cut && len == 0)
		say(r, "the command's output cannot be read: its last %u MiB hold no whole line: the gate fails "
		    "(a result is never assumed)", GATE_OUTPUT_TAIL >> 20);
	else if (gate_read_summary(text, len, &t, err, sizeof(err)) < 0)
		say(r, "the command's output cannot be read: %s: the gate fails (a result is never assumed)", err);
	else
		judge_tests(g, &t, r);
	free(text);
}

static void judge_command(const struct release_gate *g, const char *dir, const char *output_path,
			  struct gate_result *r)
{
	r->passed = false;
	r->has_tests = r->has_coverage = r->has_metric = false;
	if (!r->ran) {
		/* the runner says why it could not start the command */
		if (!r->reason[0])
			say(r, "the command did not run: the gate fails");
		return;
	}
	r->reason[0] = '\0';
	if (r->timed_out) {
		say(r, "the command timed out after %s: the gate fails",
		    g->timeout_ms ? DURATION_TEXT(g->timeout_ms)
				  : DURATION_TEXT((uint64_t)(r->finished_ms > r->started_ms ? r->finished_ms - r->started_ms : 0)));
		return;
	}
	if (r->signal || r->exit_code < 0) {
		const char *name = r->signal ? sigabbrev_np(r->signal) : NULL;
		if (name)
			say(r, "the command was killed by SIG%s: the gate fails", name);
		else
			say(r, "the command was killed (signal %d): the gate fails", r->signal);
		return;
	}
	switch (g->read) {
	case GATE_READ_EXIT:
		r->passed = r->exit_code == g->expect_exit;
		if (r->passed)
			say(r, "exit status %d, as expected", r->exit_code);
		else
			say(r, "exit status %d, expected %d", r->exit_code, g->expect_exit);
		return;
	case GATE_READ_SUMMARY:
		judge_summary(g, output_path, r);
		break;
	case GATE_READ_JUNIT:
	case GATE_READ_COVERAGE:
		judge_file(g, dir, r);
		break;
	default:
		say(r, "a %s gate is not judged by its command: the gate fails", gate_read_name(g->read));
		return;
	}
	if (r->exit_code != 0)
		say(r, "; the command exited with status %d", r->exit_code);
}

void gate_judge_command(const struct release_gate *g, const char *dir, const char *output_path,
			struct gate_result *r)
{
	judge_command(g, dir, output_path, r);
	gate_text_clean(r->reason);
}

/* "error rate of payment 1.2.0 during its canary", "p99 of payment over 1m". */
static void metric_subject(const struct release_gate *g, struct gate_result *r)
{
	say(r, "%s of %s", g->metric == METRIC_ERROR_RATE ? "error rate" : gate_metric_name(g->metric),
	    g->service ? g->service : "?");
	if (g->version)
		say(r, " %s", g->version);
	if (g->during_canary)
		say(r, " during its canary");
	else
		say(r, " over %s", DURATION_TEXT(g->window_ms));
}

static void judge_metric(const struct release_gate *g, struct gate_result *r)
{
	char value[48];
	bool ok;

	r->passed = false;
	if (!r->has_metric) {
		if (!r->reason[0]) {
			metric_subject(g, r);
			say(r, ": no figures to read: the gate fails (a result is never assumed)");
		}
		return;
	}
	r->reason[0] = '\0';
	metric_subject(g, r);
	if (r->requests < g->min_requests || r->requests == 0) {
		say(r, ": too few requests (%" PRIu64 " < %" PRIu64 ") to judge: the gate fails", r->requests,
		    g->min_requests ? g->min_requests : 1);
		return;
	}
	if (g->metric == METRIC_ERROR_RATE) {
		/* the threshold is in basis points, the figure in percent */
		ok = r->value * 100.0 <= (double)g->max_value + 1e-6;
		snprintf(value, sizeof(value), "%.2f%%", r->value);
		if (!ok && !strcmp(value, BP_TEXT(g->max_value)))
			snprintf(value, sizeof(value), "%.4f%%", r->value);
		say(r, ": %s (%" PRIu64 " of %" PRIu64 " requests) %s %s", value, r->errors_5xx, r->requests,
		    ok ? "<=" : ">", BP_TEXT(g->max_value));
	} else {
		ok = r->value <= (double)g->max_value + 1e-9;
		snprintf(value, sizeof(value), ok || r->value >= (double)g->max_value + 0.05 ? "%.1f" : "%.3f",
			 r->value);
		say(r, ": %s ms (%" PRIu64 " requests) %s %" PRIu64 " ms", value, r->requests, ok ? "<=" : ">",
		    g->max_value);
	}
	r->passed = ok;
}

void gate_judge_metric(const struct release_gate *g, struct gate_result *r)
{
	judge_metric(g, r);
	gate_text_clean(r->reason);
}

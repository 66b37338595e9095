/* test_gate.c - unit tests of the quality gates' readers and judges
 * (src/release/gate*.c).
 *
 * Tables of cases for each reader (summary lines, JUnit XML, gcovr JSON,
 * lcov tracefiles), for the judges (a gate, what its command did, what it
 * left in a file, and the exact verdict and sentence) and for the report.
 * Then real outputs: the samples in tests/unit/gate/ (made by
 * make-samples.sh there with the real tools), and the tools run live, in a
 * temporary directory: a cmocka group of this program (re-executed with
 * CMOCKA_MESSAGE_OUTPUT=xml), the project's own test_base, pytest on a
 * generated test file, and gcc --coverage + gcovr + lcov on a generated C
 * file, each read back and checked against the counts the tool prints
 * itself or that the generated tests make certain.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "release/gate.h"

/*
 * Helpers.
 */

static char *tmpdir_make(void)
{
	char *d = strdup("/tmp/cutover-test-gate.XXXXXX");

	assert_non_null(d);
	assert_non_null(mkdtemp(d));
	return d;
}

static void tmpdir_remove(char *d)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
	assert_int_equal(system(cmd), 0);
	free(d);
}

static void write_file(const char *dir, const char *name, const char *data, size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void write_text(const char *dir, const char *name, const char *text)
{
	write_file(dir, name, text, strlen(text));
}

/* The whole file at path (malloc'd, NUL after it); fails the test if absent. */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f)
		fail_msg("cannot open %s: %s", path, strerror(errno));
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* Runs a shell command; returns its exit status (-1 when killed). */
static int sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	assert_true(st != -1);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A gate with the loader's defaults for read. */
static struct release_gate gate_of(enum release_gate_read read)
{
	return (struct release_gate){
		.name = "g",
		.read = read,
		.run = "true",
		.min_tests = 1,
		.max_failed = 0,
		.min_pass_rate_bp = 10000,
		.min_requests = 20,
		.window_ms = 60000,
	};
}

static void assert_tests(const struct gate_tests *t, uint64_t tests, uint64_t failed, uint64_t errors,
			 uint64_t skipped, const char *what)
{
	if (t->tests != tests || t->failed != failed || t->errors != errors || t->skipped != skipped)
		fail_msg("%s: got tests %" PRIu64 " failed %" PRIu64 " errors %" PRIu64 " skipped %" PRIu64
			 ", want %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64,
			 what, t->tests, t->failed, t->errors, t->skipped, tests, failed, errors, skipped);
}

static void assert_pair(uint64_t covered, uint64_t total, uint64_t want_covered, uint64_t want_total, const char *what)
{
	if (covered != want_covered || total != want_total)
		fail_msg("%s: got %" PRIu64 "/%" PRIu64 ", want %" PRIu64 "/%" PRIu64, what, covered, total,
			 want_covered, want_total);
}

/*
 * The summary line.
 */

struct summary_case {
	const char *text;
	int rc;
	uint64_t tests, failed, errors, skipped;
};

static void test_summary_table(void **state)
{
	static const struct summary_case cases[] = {
		{ "12 passed, 0 failed\n", 0, 12, 0, 0, 0 },
		{ "3 passed", 0, 3, 0, 0, 0 },
		{ "2 failed, 5 passed\n", 0, 7, 2, 0, 0 },
		{ "=== 3 failed in 0.10s ===", 0, 3, 3, 0, 0 },
		{ "===== 1 failed, 1 passed, 1 skipped, 1 error in 0.02s =====\n", 0, 4, 1, 1, 1 },
		{ "== 2 passed, 3 errors, 1 warning in 1.0s ==", 0, 5, 0, 3, 0 },
		/* scripts/test: phase lines, the summary table, then the total */
		{ "<== unit: 24 passed, 0 failed (12s)\n  unit      12s   24 passed, 0 failed\n"
		  "  logs: /tmp/x\n130 passed, 1 failed\n", 0, 131, 1, 0, 0 },
		/* a phase line of scripts/test inside a longer line */
		{ "<== integration: 120 passed, 2 failed (45s)\n", 0, 122, 2, 0, 0 },
		/* the last line wins, lines after it that hold no count do not matter */
		{ "10 passed, 0 failed\nthen 3 passed, 2 failed\nbye\n\n", 0, 5, 2, 0, 0 },
		{ "4 passed, 1 failed\r\n", 0, 5, 1, 0, 0 },
		/* a progress line redrawn with \r */
		{ "1 passed\r2 passed, 1 failed", 0, 3, 1, 0, 0 },
		/* pytest on a terminal: each count in its colour */
		{ "\x1b[31m=== \x1b[31m\x1b[1m1 failed\x1b[0m, \x1b[32m2 passed\x1b[0m\x1b[31m in 0.02s\x1b[0m ===\x1b[0m\n",
		  0, 3, 1, 0, 0 },
		/* cargo test */
		{ "test result: FAILED. 3 passed; 1 failed; 2 ignored; 0 measured; 0 filtered out; finished in 0.00s",
		  0, 6, 1, 0, 2 },
		/* jest: the total is not a count the reader adds */
		{ "Tests:       1 failed, 1 skipped, 5 passed, 7 total", 0, 7, 1, 0, 1 },
		{ "=== 1 passed, 3 xfailed, 2 xpassed in 0.1s ===", 0, 6, 0, 0, 3 },
		{ "5 PASSED, 0 FAILED", 0, 5, 0, 0, 0 },
		{ "123456789012345678 passed", 0, 123456789012345678ull, 0, 0, 0 },
		/* an ambiguous line is passed over for the one before it */
		{ "4 passed, 0 failed\n1 passed, 2 passed\n", 0, 4, 0, 0, 0 },
		{ "4 passed, 0 failed\n1 error, 2 errors, 3 passed\n", 0, 4, 0, 0, 0 },
		/* not counts */
		{ "", -ENOENT, 0, 0, 0, 0 },
		{ "all good\nno tests ran in 0.01s\n", -ENOENT, 0, 0, 0, 0 },
		{ "1.5 passed", -ENOENT, 0, 0, 0, 0 },
		{ "x2 passed", -ENOENT, 0, 0, 0, 0 },
		{ "2passed", -ENOENT, 0, 0, 0, 0 },
		{ "2 passedx", -ENOENT, 0, 0, 0, 0 },
		{ "2 passed_x", -ENOENT, 0, 0, 0, 0 },
		{ "1234567890123456789 passed", -ENOENT, 0, 0, 0, 0 },
		{ "3 errors, 1 skipped", -ENOENT, 0, 0, 0, 0 },
		{ "[  PASSED  ] 11 test(s).", -ENOENT, 0, 0, 0, 0 },
		{ "1 passed, 1 passed", -ENOENT, 0, 0, 0, 0 },
		{ "\x1b[", -ENOENT, 0, 0, 0, 0 },
		{ "3 \x1b[1", -ENOENT, 0, 0, 0, 0 },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct summary_case *c = &cases[i];
		struct gate_tests t = { 99, 99, 99, 99 };
		char err[128] = "";
		int rc = gate_read_summary(c->text, strlen(c->text), &t, err, sizeof(err));

		if (rc != c->rc)
			fail_msg("case %zu (%s): rc %d, want %d (%s)", i, c->text, rc, c->rc, err);
		if (rc == 0) {
			assert_tests(&t, c->tests, c->failed, c->errors, c->skipped, c->text);
		} else {
			assert_int_equal(t.tests, 99); /* untouched */
			assert_string_equal(err, c->text[0] ? "no \"N passed, N failed\" line in it" : "it is empty");
		}
	}
}

/* Bytes that are not text: a NUL, and a count at the very end. */
static void test_summary_bytes(void **state)
{
	static const char text[] = "junk\0 7 passed, 1 failed";
	struct gate_tests t;
	char err[64];

	(void)state;
	assert_int_equal(gate_read_summary(text, sizeof(text) - 1, &t, err, sizeof(err)), 0);
	assert_tests(&t, 8, 1, 0, 0, "NUL in the line");
	/* the length bounds the read: the count is cut off */
	assert_int_equal(gate_read_summary(text, 7, &t, err, sizeof(err)), -ENOENT);
}

/*
 * JUnit XML.
 */

struct junit_case {
	const char *what, *xml;
	int rc;
	uint64_t tests, failed, errors, skipped;
	const char *err;              /* a part of the sentence */
};

static void test_junit_table(void **state)
{
	static const struct junit_case cases[] = {
		{ "a testsuite", "<testsuite><testcase name=\"a\"/><testcase name=\"b\"></testcase></testsuite>", 0, 2, 0,
		  0, 0, NULL },
		{ "testsuites, nested suites (Surefire's shape)",
		  "<?xml version=\"1.0\"?>\n<testsuites><testsuite name=\"x\"><testsuite name=\"y\">"
		  "<testcase classname=\"C\" name=\"a\"><failure message=\"m\" type=\"AssertionError\">trace</failure>"
		  "<system-out>out</system-out></testcase>"
		  "<testcase name=\"b\"><error type=\"NPE\"/></testcase>"
		  "<testcase name=\"c\"><skipped/></testcase><testcase name=\"d\"/>"
		  "<testcase name=\"e\"><flakyFailure message=\"once\"/><rerunFailure/></testcase>"
		  "</testsuite></testsuite></testsuites>",
		  0, 5, 1, 1, 1, NULL },
		{ "failure and error in one case count once, as failed",
		  "<testsuite><testcase><error/><failure/><skipped/></testcase></testsuite>", 0, 1, 1, 0, 0, NULL },
		{ "a failure deeper than the case's children is not its verdict",
		  "<testsuite><testcase><system-out><failure/></system-out></testcase></testsuite>", 0, 1, 0, 0, 0, NULL },
		{ "a test case inside a test case is not another test",
		  "<testsuite><testcase><testcase><failure/></testcase></testcase></testsuite>", 0, 1, 0, 0, 0, NULL },
		{ "comments, CDATA, entities, a PI",
		  "<?xml version=\"1.0\" encoding=\"UTF-8\"?><!-- c --><?pi x?><testsuites><testsuite name=\"&lt;&amp;&gt;\">"
		  "<testcase name=\"&#233;\"><failure><![CDATA[<testcase/> is text]]></failure></testcase>"
		  "</testsuite></testsuites>",
		  0, 1, 1, 0, 0, NULL },
		{ "ISO-8859-1", "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><testsuite name=\"caf\xe9\"><testcase/></testsuite>",
		  0, 1, 0, 0, 0, NULL },
		{ "a namespace", "<t:testsuite xmlns:t=\"urn:x\"><t:testcase/><t:testcase><t:skipped/></t:testcase></t:testsuite>",
		  0, 2, 0, 0, 1, NULL },
		/* cmocka 1.1.5 writes a group's name unescaped: "<&>" makes its XML broken */
		{ "cmocka's unescaped group name",
		  "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<testsuites>\n  <testsuite name=\"demo <&>\" tests=\"1\" >\n"
		  "    <testcase name=\"ok\" time=\"0.000\" >\n    </testcase>\n  </testsuite>\n</testsuites>\n",
		  -EINVAL, 0, 0, 0, 0, "not well-formed XML: line 3: " },
		{ "not XML", "hello", -EINVAL, 0, 0, 0, 0, "not XML: it does not start with '<'" },
		{ "JSON", "\n {\"tests\": 3}", -EINVAL, 0, 0, 0, 0, "not XML: it does not start with '<'" },
		{ "not UTF-8", "<testsuite name=\"\xff\"><testcase/></testsuite>", -EINVAL, 0, 0, 0, 0,
		  "not well-formed XML: line 1: Input is not proper UTF-8, indicate encoding ! Bytes: 0xFF 0x22 0x3E 0x3C" },
		{ "an encoding libxml2 does not know", "<?xml version=\"1.0\" encoding=\"X-NONE\"?><testsuite/>", -EINVAL,
		  0, 0, 0, 0, "not well-formed XML: line 1: Unsupported encoding X-NONE" },
		{ "cut short", "<testsuite><testcase/><testcase>", -EINVAL, 0, 0, 0, 0, "not well-formed XML" },
		{ "an undefined entity", "<testsuite><testcase name=\"&x;\"/></testsuite>", -EINVAL, 0, 0, 0, 0,
		  "not well-formed XML" },
		{ "another root", "<html><testcase/></html>", -EINVAL, 0, 0, 0, 0,
		  "not a JUnit report: the root element is <html>, not <testsuites> or <testsuite>" },
		{ "no test case", "<testsuites><testsuite tests=\"3\"/></testsuites>", -EINVAL, 0, 0, 0, 0,
		  "no <testcase> in it" },
		{ "an entity bomb",
		  "<?xml version=\"1.0\"?><!DOCTYPE t [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;\">"
		  "<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;\">]><testsuite><testcase name=\"&c;\"/></testsuite>",
		  -EINVAL, 0, 0, 0, 0, "not a JUnit report: it has a DOCTYPE" },
		{ "an external entity",
		  "<!DOCTYPE t SYSTEM \"http://127.0.0.1:9/x.dtd\"><testsuite><testcase>&e;</testcase></testsuite>",
		  -EINVAL, 0, 0, 0, 0, "not a JUnit report: it has a DOCTYPE" },
		{ "empty", "", -EINVAL, 0, 0, 0, 0, "it is empty" },
		{ "two roots", "<testsuite><testcase/></testsuite><testsuite/>", -EINVAL, 0, 0, 0, 0,
		  "not well-formed XML" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct junit_case *c = &cases[i];
		struct gate_tests t = { 99, 99, 99, 99 };
		char err[256] = "";
		int rc = gate_read_junit(c->xml, strlen(c->xml), &t, err, sizeof(err));

		if (rc != c->rc)
			fail_msg("%s: rc %d, want %d (%s)", c->what, rc, c->rc, err);
		if (rc == 0) {
			assert_tests(&t, c->tests, c->failed, c->errors, c->skipped, c->what);
		} else {
			assert_int_equal(t.tests, 99);
			if (!strstr(err, c->err))
				fail_msg("%s: \"%s\" does not hold \"%s\"", c->what, err, c->err);
		}
	}
}

/* Encodings and limits the table cannot write as C strings. */
static void test_junit_bytes(void **state)
{
	const char *ascii = "<testsuite><testcase/><testcase><failure/></testcase></testsuite>";
	size_t n = strlen(ascii), depth = 100000;
	char *utf16 = malloc(2 * n + 2), *deep;
	struct gate_tests t;
	char err[256];
	size_t len = 0;

	(void)state;
	/* UTF-16LE with a BOM */
	assert_non_null(utf16);
	utf16[0] = (char)0xff;
	utf16[1] = (char)0xfe;
	for (size_t i = 0; i < n; i++) {
		utf16[2 + 2 * i] = ascii[i];
		utf16[3 + 2 * i] = 0;
	}
	assert_int_equal(gate_read_junit(utf16, 2 * n + 2, &t, err, sizeof(err)), 0);
	assert_tests(&t, 2, 1, 0, 0, "UTF-16LE");
	free(utf16);

	/* libxml2's push parser keeps its element stack on the heap: a deep
	 * document costs memory in proportion to its size, not stack */
	deep = malloc(depth * 8 + 64);
	assert_non_null(deep);
	len += (size_t)sprintf(deep, "<testsuite><testcase/>");
	for (size_t i = 0; i < depth; i++)
		len += (size_t)sprintf(deep + len, "<a>");
	for (size_t i = 0; i < depth; i++)
		len += (size_t)sprintf(deep + len, "</a>");
	len += (size_t)sprintf(deep + len, "</testsuite>");
	assert_int_equal(gate_read_junit(deep, len, &t, err, sizeof(err)), 0);
	assert_tests(&t, 1, 0, 0, 0, "deep");
	free(deep);

	/* larger than a gate reads: refused before parsing */
	assert_int_equal(gate_read_junit(ascii, (size_t)GATE_FILE_MAX + 1, &t, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "larger than 64 MiB");
}

/*
 * Coverage.
 */

struct coverage_case {
	const char *what, *text;
	int rc;
	uint64_t lc, lt, bc, bt, fc, ft;
	const char *err;
};

static void run_coverage_table(const struct coverage_case *cases, size_t n,
			       int (*reader)(const char *, size_t, struct gate_coverage *, char *, size_t))
{
	for (size_t i = 0; i < n; i++) {
		const struct coverage_case *c = &cases[i];
		struct gate_coverage cov = { .lines_total = 99 };
		char err[256] = "";
		int rc = reader(c->text, strlen(c->text), &cov, err, sizeof(err));

		if (rc != c->rc)
			fail_msg("%s: rc %d, want %d (%s)", c->what, rc, c->rc, err);
		if (rc == 0) {
			assert_pair(cov.lines_covered, cov.lines_total, c->lc, c->lt, c->what);
			assert_pair(cov.branches_covered, cov.branches_total, c->bc, c->bt, c->what);
			assert_pair(cov.functions_covered, cov.functions_total, c->fc, c->ft, c->what);
		} else {
			assert_int_equal(cov.lines_total, 99);
			if (strcmp(err, c->err))
				fail_msg("%s: \"%s\", want \"%s\"", c->what, err, c->err);
		}
	}
}

static void test_gcovr_table(void **state)
{
	static const struct coverage_case cases[] = {
		{ "gcovr 5.2", "{\"branch_covered\": 2, \"branch_percent\": 33.3, \"branch_total\": 6, \"files\": [], "
			       "\"function_covered\": 2, \"function_percent\": 66.7, \"function_total\": 3, "
			       "\"gcovr/summary_format_version\": \"0.5\", \"line_covered\": 7, \"line_percent\": 53.8, "
			       "\"line_total\": 13, \"root\": \".\"}",
		  0, 7, 13, 2, 6, 2, 3, NULL },
		{ "no function figures (gcovr 4)", "{\"line_covered\": 130, \"line_total\": 160, \"branch_covered\": 0, "
						   "\"branch_total\": 0}",
		  0, 130, 160, 0, 0, 0, 0, NULL },
		{ "half a pair", "{\"line_covered\": 1, \"line_total\": 2, \"branch_total\": 4}", -EINVAL, 0, 0, 0, 0, 0, 0,
		  "branch_total without branch_covered" },
		{ "more covered than total", "{\"line_covered\": 3, \"line_total\": 2}", -EINVAL, 0, 0, 0, 0, 0, 0,
		  "line_covered 3 is more than line_total 2" },
		{ "negative", "{\"line_covered\": -1, \"line_total\": 2}", -EINVAL, 0, 0, 0, 0, 0, 0,
		  "line_covered and line_total must be whole numbers, 0 or more" },
		{ "a real number", "{\"line_covered\": 1.0, \"line_total\": 2}", -EINVAL, 0, 0, 0, 0, 0, 0,
		  "line_covered and line_total must be whole numbers, 0 or more" },
		{ "a string", "{\"line_covered\": \"1\", \"line_total\": 2}", -EINVAL, 0, 0, 0, 0, 0, 0,
		  "line_covered and line_total must be whole numbers, 0 or more" },
		{ "gcovr --json", "{\"files\": [{\"file\": \"a.c\", \"lines\": []}], \"gcovr/format_version\": \"0.3\"}",
		  -EINVAL, 0, 0, 0, 0, 0, 0,
		  "not a gcovr JSON summary: no line_total at the top level (is it `gcovr --json` rather than "
		  "`--json-summary`?)" },
		{ "an array", "[1, 2]", -EINVAL, 0, 0, 0, 0, 0, 0, "not a gcovr JSON summary: the top level is not an object" },
		{ "a key twice", "{\"line_covered\": 1, \"line_total\": 2, \"line_total\": 200}", -EINVAL, 0, 0, 0, 0, 0, 0,
		  "not JSON: line 1: duplicate object key near '\"line_total\"'" },
		{ "not JSON", "TN:\nSF:a.c\n", -EINVAL, 0, 0, 0, 0, 0, 0, "not JSON: line 1: '[' or '{' expected near 'TN'" },
		{ "cut short", "{\"line_covered\": 1, \"line_total\"", -EINVAL, 0, 0, 0, 0, 0, 0,
		  "not JSON: line 1: ':' expected near end of file" },
		{ "trailing bytes", "{\"line_covered\": 1, \"line_total\": 2} x", -EINVAL, 0, 0, 0, 0, 0, 0,
		  "not JSON: line 1: end of file expected near 'x'" },
	};

	(void)state;
	run_coverage_table(cases, ARRAY_SIZE(cases), gate_read_gcovr);
}

static void test_lcov_table(void **state)
{
	static const struct coverage_case cases[] = {
		{ "geninfo's capture: counted from the lines",
		  "TN:\nSF:tiny.c\nFN:2,sign\nFNDA:1,sign\nFN:10,twice\nFNDA:0,twice\nFN:14,main\nFNDA:1,main\n"
		  "DA:2,1\nDA:4,1\nBRDA:4,0,0,1\nBRDA:4,0,1,0\nDA:6,0\nBRDA:6,0,0,-\nBRDA:6,0,1,-\nDA:7,0\n"
		  "end_of_record\n",
		  0, 2, 4, 1, 4, 2, 3, NULL },
		{ "stated totals win over the lines",
		  "SF:a.c\nDA:1,1\nDA:2,0\nLF:10\nLH:5\nBRF:4\nBRH:4\nFNF:2\nFNH:0\nend_of_record\n", 0, 5, 10, 4, 4, 0, 2,
		  NULL },
		{ "records are summed",
		  "TN:t\nSF:a.c\nLF:10\nLH:5\nend_of_record\nSF:b.c\nDA:1,3\nDA:2,0\nDA:3,0,abcdef\nend_of_record\n", 0, 6,
		  13, 0, 0, 0, 0, NULL },
		{ "half a pair: the lines count",
		  "SF:a.c\nDA:1,1\nDA:2,0\nLF:10\nend_of_record\n", 0, 1, 2, 0, 0, 0, 0, NULL },
		{ "negative and huge counts",
		  "SF:a.c\nDA:1,-5\nDA:2,123456789012345678901234567890\nDA:3,0\nend_of_record\n", 0, 1, 3, 0, 0, 0, 0,
		  NULL },
		{ "lcov 2.2 functions (FNL/FNA) and a branch expression with commas",
		  "VER:1\nSF:a.c\nFNL:0,2,9\nFNA:0,4,f\nFNL:1,10,12\nFNA:1,0,g\nBRDA:3,0,(a, b) == 1,2\nend_of_record\n", 0,
		  0, 0, 1, 1, 1, 2, NULL },
		{ "FNDA without FN", "SF:a.c\nFNDA:1,f\nFNDA:0,g\nend_of_record\n", 0, 0, 0, 0, 0, 1, 2, NULL },
		{ "CRLF and blanks", "SF:a.c\r\nDA:1,1\r\n\r\nend_of_record  \r\n", 0, 1, 1, 0, 0, 0, 0, NULL },
		{ "empty", "", -EINVAL, 0, 0, 0, 0, 0, 0, "no record (SF: ... end_of_record) in it: not an lcov tracefile" },
		{ "only a test name", "TN:x\n", -EINVAL, 0, 0, 0, 0, 0, 0,
		  "no record (SF: ... end_of_record) in it: not an lcov tracefile" },
		{ "cut short", "SF:a.c\nDA:1,1\n", -EINVAL, 0, 0, 0, 0, 0, 0,
		  "the record from line 1 has no end_of_record (is the file cut short?)" },
		{ "a record in a record", "SF:a.c\nSF:b.c\nend_of_record\n", -EINVAL, 0, 0, 0, 0, 0, 0,
		  "line 2: SF: inside the record from line 1 (no end_of_record)" },
		{ "end without start", "TN:\nend_of_record\n", -EINVAL, 0, 0, 0, 0, 0, 0,
		  "line 2: end_of_record without SF: before it" },
		{ "data outside a record", "DA:1,1\n", -EINVAL, 0, 0, 0, 0, 0, 0,
		  "line 1: DA: outside a record (SF: ... end_of_record)" },
		{ "not lcov", "SF:a.c\nhello world\nend_of_record\n", -EINVAL, 0, 0, 0, 0, 0, 0,
		  "line 2: not lcov tracefile data (KEY:VALUE or end_of_record)" },
		{ "a key with digits", "SF:a.c\nD4:1\nend_of_record\n", -EINVAL, 0, 0, 0, 0, 0, 0,
		  "line 2: not lcov tracefile data (KEY:VALUE or end_of_record)" },
		{ "a count that is not a number", "SF:a.c\nDA:1,x\nend_of_record\n", -EINVAL, 0, 0, 0, 0, 0, 0,
		  "line 2: malformed DA: line" },
		{ "a count missing", "SF:a.c\nDA:1\nend_of_record\n", -EINVAL, 0, 0, 0, 0, 0, 0, "line 2: malformed DA: line" },
		{ "a line number that is not one", "SF:a.c\nDA:x,1\nend_of_record\n", -EINVAL, 0, 0, 0, 0, 0, 0,
		  "line 2: malformed DA: line" },
		{ "a short BRDA", "SF:a.c\nBRDA:1,0,1\nend_of_record\n", -EINVAL, 0, 0, 0, 0, 0, 0,
		  "line 2: malformed BRDA: line" },
		{ "a total that is not a number", "SF:a.c\nLF:-1\nend_of_record\n", -EINVAL, 0, 0, 0, 0, 0, 0,
		  "line 2: malformed LF: line" },
		{ "more hit than found", "SF:a.c\nLF:1\nLH:2\nend_of_record\n", -EINVAL, 0, 0, 0, 0, 0, 0,
		  "the record from line 1 counts more covered than found (lines)" },
		{ "totals that overflow",
		  "SF:a\nLF:900000000000000000\nLH:0\nend_of_record\nSF:b\nLF:900000000000000000\nLH:0\nend_of_record\n"
		  "SF:c\nLF:900000000000000000\nLH:0\nend_of_record\nSF:d\nLF:900000000000000000\nLH:0\nend_of_record\n"
		  "SF:e\nLF:900000000000000000\nLH:0\nend_of_record\nSF:f\nLF:900000000000000000\nLH:0\nend_of_record\n"
		  "SF:g\nLF:900000000000000000\nLH:0\nend_of_record\nSF:h\nLF:900000000000000000\nLH:0\nend_of_record\n"
		  "SF:i\nLF:900000000000000000\nLH:0\nend_of_record\nSF:j\nLF:900000000000000000\nLH:0\nend_of_record\n"
		  "SF:k\nLF:900000000000000000\nLH:0\nend_of_record\n",
		  -EINVAL, 0, 0, 0, 0, 0, 0, "the totals overflow at the record from line 41" },
	};

	(void)state;
	run_coverage_table(cases, ARRAY_SIZE(cases), gate_read_lcov);
}

/*
 * The judges.
 */

enum file_kind { NO_FILE = 0, OUTPUT, GATE_FILE };

struct judge_case {
	const char *what;
	struct release_gate g;
	const char *content;          /* written as the output or as g.file */
	enum file_kind where;
	struct gate_result r;         /* what the runner filled */
	bool passed;
	const char *reason;           /* exact, or a prefix when prefix is set */
	bool prefix;
};

#define EXACT(s) s, false
#define PREFIX(s) s, true

/* A gate with the loader's defaults, some overridden: the later
 * initializer wins, as C says, on purpose. */
#pragma GCC diagnostic push
#if defined(__clang__)
#pragma clang diagnostic ignored "-Winitializer-overrides"
#else
#pragma GCC diagnostic ignored "-Woverride-init"
#endif
#define G(read_, ...) { .name = "g", .read = read_, .run = "make check", .min_tests = 1, .max_failed = 0, \
			.min_pass_rate_bp = 10000, __VA_ARGS__ }
#define RAN(code) { .ran = true, .exit_code = (code) }

static const struct judge_case judge_cases[] = {
	{ "exit 0", G(GATE_READ_EXIT), NULL, NO_FILE, RAN(0), true, EXACT("exit status 0, as expected") },
	{ "exit 1", G(GATE_READ_EXIT), NULL, NO_FILE, RAN(1), false, EXACT("exit status 1, expected 0") },
	{ "exit 3 expected", G(GATE_READ_EXIT, .expect_exit = 3), NULL, NO_FILE, RAN(3), true,
	  EXACT("exit status 3, as expected") },
	{ "timed out", G(GATE_READ_EXIT, .timeout_ms = 600000), NULL, NO_FILE,
	  { .ran = true, .exit_code = -1, .signal = 9, .timed_out = true }, false,
	  EXACT("the command timed out after 10m: the gate fails") },
	{ "timed out, the timeout resolved by the runner", G(GATE_READ_EXIT), NULL, NO_FILE,
	  { .ran = true, .exit_code = -1, .signal = 9, .timed_out = true, .started_ms = 1000, .finished_ms = 31000 },
	  false, EXACT("the command timed out after 30s: the gate fails") },
	{ "killed", G(GATE_READ_EXIT), NULL, NO_FILE, { .ran = true, .exit_code = -1, .signal = 9 }, false,
	  EXACT("the command was killed by SIGKILL: the gate fails") },
	{ "killed after printing a passing summary", G(GATE_READ_SUMMARY), "5 passed, 0 failed\n", OUTPUT,
	  { .ran = true, .exit_code = -1, .signal = 15 }, false, EXACT("the command was killed by SIGTERM: the gate fails") },
	{ "not started: the runner's reason stays", G(GATE_READ_EXIT), NULL, NO_FILE,
	  { .ran = false, .reason = "cannot run sh: No such file or directory" }, false,
	  EXACT("cannot run sh: No such file or directory") },
	{ "not started, no reason", G(GATE_READ_EXIT), NULL, NO_FILE, { .ran = false }, false,
	  EXACT("the command did not run: the gate fails") },
	{ "summary passes", G(GATE_READ_SUMMARY), "build ok\n41 passed, 0 failed\n", OUTPUT, RAN(0), true,
	  EXACT("41 passed, 0 failed (41 tests, pass rate 100.00% >= 100.00%)") },
	{ "summary with a failure", G(GATE_READ_SUMMARY), "40 passed, 1 failed\n", OUTPUT, RAN(1), false,
	  EXACT("40 passed, 1 failed (41 tests, pass rate 97.56% < 100.00%; 1 failed > 0 allowed); "
	  "the command exited with status 1") },
	{ "summary: a failure allowed, exit 1 reported", G(GATE_READ_SUMMARY, .max_failed = 1,
							    .min_pass_rate_bp = 9500),
	  "=== 40 passed, 1 failed, 2 skipped in 3.1s ===\n", OUTPUT, RAN(1), true,
	  EXACT("40 passed, 1 failed, 2 skipped (43 tests, 41 ran, pass rate 97.56% >= 95.00%); "
	  "the command exited with status 1") },
	{ "summary: errors", G(GATE_READ_SUMMARY), "1 passed, 2 errors\n", OUTPUT, RAN(1), false,
	  EXACT("1 passed, 0 failed, 2 errors (3 tests, pass rate 33.33% < 100.00%; 2 failed or errored > 0 allowed); "
	  "the command exited with status 1") },
	{ "summary: the rate is rounded down", G(GATE_READ_SUMMARY, .max_failed = 1), "99999 passed, 1 failed\n",
	  OUTPUT, RAN(0), false, EXACT("99999 passed, 1 failed (100000 tests, pass rate 99.99% < 100.00%)") },
	{ "summary: all skipped", G(GATE_READ_SUMMARY), "3 passed, 0 failed, 3 skipped", OUTPUT, RAN(0), true,
	  EXACT("3 passed, 0 failed, 3 skipped (6 tests, 3 ran, pass rate 100.00% >= 100.00%)") },
	{ "summary: nothing ran", G(GATE_READ_SUMMARY), "0 passed, 0 failed, 3 skipped", OUTPUT, RAN(0), false,
	  EXACT("0 passed, 0 failed, 3 skipped (3 tests, none ran: no pass rate to judge; 0 ran < 1 required)") },
	{ "summary: nothing ran, nothing required",
	  G(GATE_READ_SUMMARY, .min_tests = 0, .min_pass_rate_bp = 0), "0 passed, 0 failed", OUTPUT, RAN(0),
	  true, EXACT("0 passed, 0 failed (0 tests, none ran: no pass rate)") },
	{ "summary: too few tests", G(GATE_READ_SUMMARY, .min_tests = 10), "5 passed, 0 failed", OUTPUT, RAN(0),
	  false, EXACT("5 passed, 0 failed (5 tests, pass rate 100.00% >= 100.00%; 5 ran < 10 required)") },
	{ "summary: no line", G(GATE_READ_SUMMARY), "Segmentation fault\n", OUTPUT, RAN(139), false,
	  EXACT("the command's output cannot be read: no \"N passed, N failed\" line in it: the gate fails "
	  "(a result is never assumed); the command exited with status 139") },
	{ "summary: empty output", G(GATE_READ_SUMMARY), "", OUTPUT, RAN(0), false,
	  EXACT("the command's output cannot be read: it is empty: the gate fails (a result is never assumed)") },
	{ "summary: output not kept", G(GATE_READ_SUMMARY), NULL, NO_FILE, RAN(0), false,
	  EXACT("the command's output was not kept: the gate fails (a result is never assumed)") },
	{ "junit passes", G(GATE_READ_JUNIT, .file = "build/junit.xml"),
	  "<testsuite><testcase/><testcase/></testsuite>", GATE_FILE, RAN(0), true,
	  EXACT("2 passed, 0 failed (2 tests, pass rate 100.00% >= 100.00%)") },
	{ "junit: pytest exits 1, one failure allowed",
	  G(GATE_READ_JUNIT, .file = "build/junit.xml", .max_failed = 1, .min_pass_rate_bp = 5000),
	  "<testsuite><testcase/><testcase><failure/></testcase><testcase><skipped/></testcase></testsuite>",
	  GATE_FILE, RAN(1), true,
	  EXACT("1 passed, 1 failed, 1 skipped (3 tests, 2 ran, pass rate 50.00% >= 50.00%); "
	  "the command exited with status 1") },
	{ "junit: no file", G(GATE_READ_JUNIT, .file = "build/junit.xml"), NULL, NO_FILE, RAN(2), false,
	  EXACT("no JUnit XML at build/junit.xml: No such file or directory: the gate fails (a result is never assumed); "
	  "the command exited with status 2") },
	{ "junit: not XML", G(GATE_READ_JUNIT, .file = "build/junit.xml"), "<testsuite><testcase>",
	  GATE_FILE, RAN(0), false, PREFIX("the JUnit XML at build/junit.xml cannot be read: not well-formed XML: line 1: ") },
	{ "junit: a traceback", G(GATE_READ_JUNIT, .file = "build/junit.xml"), "Traceback (most recent call last):",
	  GATE_FILE, RAN(1), false, EXACT("the JUnit XML at build/junit.xml cannot be read: not XML: it does not start "
					  "with '<': the gate fails (a result is never assumed); the command exited "
					  "with status 1") },
	{ "junit: no file named", G(GATE_READ_JUNIT), NULL, NO_FILE, RAN(0), false,
	  EXACT("the gate names no file to read: the gate fails (a result is never assumed)") },
	{ "junit: a directory", G(GATE_READ_JUNIT, .file = "build"), NULL, NO_FILE, RAN(0), false,
	  EXACT("the JUnit XML at build cannot be read: not a regular file: the gate fails (a result is never assumed)") },
	{ "coverage: gcovr, lines below", G(GATE_READ_COVERAGE, .file = "build/coverage.json", .min_coverage_bp = 8500),
	  "{\"line_covered\": 130, \"line_total\": 160, \"branch_covered\": 0, \"branch_total\": 0}", GATE_FILE,
	  RAN(0), false, EXACT("line coverage 81.25% (130/160) < 85.00%") },
	{ "coverage: gcovr, lines at", G(GATE_READ_COVERAGE, .file = "build/coverage.json", .min_coverage_bp = 8125),
	  "\xef\xbb\xbf\n {\"line_covered\": 130, \"line_total\": 160}", GATE_FILE, RAN(0), true,
	  EXACT("line coverage 81.25% (130/160) >= 81.25%") },
	{ "coverage: gcovr, no branches", G(GATE_READ_COVERAGE, .file = "build/coverage.json",
					     .coverage = COVERAGE_BRANCHES),
	  "{\"line_covered\": 130, \"line_total\": 160, \"branch_covered\": 0, \"branch_total\": 0}", GATE_FILE,
	  RAN(0), false,
	  EXACT("build/coverage.json reports no branches, so its branch coverage cannot be judged: the gate fails "
	  "(a result is never assumed)") },
	{ "coverage: lcov, functions", G(GATE_READ_COVERAGE, .file = "build/cov.info", .coverage = COVERAGE_FUNCTIONS,
					 .min_coverage_bp = 6000),
	  "SF:a.c\nFNF:3\nFNH:2\nend_of_record\n", GATE_FILE, RAN(0), true,
	  EXACT("function coverage 66.66% (2/3) >= 60.00%") },
	{ "coverage: lcov, branches, exit 1", G(GATE_READ_COVERAGE, .file = "build/cov.info",
						.coverage = COVERAGE_BRANCHES, .min_coverage_bp = 5000),
	  "SF:a.c\nBRDA:1,0,0,1\nBRDA:1,0,1,0\nBRDA:2,0,0,-\nend_of_record\n", GATE_FILE, RAN(1), false,
	  EXACT("branch coverage 33.33% (1/3) < 50.00%; the command exited with status 1") },
	{ "coverage: not a report", G(GATE_READ_COVERAGE, .file = "build/cov.info"), "<html>\n", GATE_FILE, RAN(0),
	  false,
	  EXACT("the lcov tracefile at build/cov.info cannot be read: line 1: not lcov tracefile data (KEY:VALUE or "
	  "end_of_record): the gate fails (a result is never assumed)") },
	{ "coverage: broken JSON", G(GATE_READ_COVERAGE, .file = "build/cov.json"), "{\"line_covered\": ", GATE_FILE,
	  RAN(0), false,
	  PREFIX("the gcovr JSON summary at build/cov.json cannot be read: not JSON: line 1: ") },
	{ "coverage: empty", G(GATE_READ_COVERAGE, .file = "build/cov.info"), "", GATE_FILE, RAN(0), false,
	  EXACT("the lcov tracefile at build/cov.info cannot be read: no record (SF: ... end_of_record) in it: not an lcov "
	  "tracefile: the gate fails (a result is never assumed)") },
	{ "a metric gate is not a command", G(GATE_READ_METRIC), NULL, NO_FILE, RAN(0), false,
	  EXACT("a metric gate is not judged by its command: the gate fails") },
};
#pragma GCC diagnostic pop

static void test_judge_command_table(void **state)
{
	char *dir = tmpdir_make();

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(judge_cases); i++) {
		const struct judge_case *c = &judge_cases[i];
		struct gate_result r = c->r;
		char out[600], sub[600];

		assert_int_equal(sh("rm -rf '%s'/* && mkdir -p '%s'/build", dir, dir), 0);
		snprintf(out, sizeof(out), "%s/output", dir);
		if (c->where == OUTPUT)
			write_text(dir, "output", c->content);
		if (c->where == GATE_FILE)
			write_text(dir, c->g.file, c->content);
		/* a figure left by a run before must not survive */
		r.has_tests = r.has_coverage = r.has_metric = true;
		gate_judge_command(&c->g, dir, c->where == OUTPUT ? out : NULL, &r);
		if (r.passed != c->passed)
			fail_msg("%s: passed %d, want %d (%s)", c->what, r.passed, c->passed, r.reason);
		snprintf(sub, sizeof(sub), "%.*s", c->prefix ? (int)strlen(c->reason) : (int)sizeof(r.reason), r.reason);
		if (strcmp(sub, c->reason))
			fail_msg("%s:\n got  \"%s\"\n want \"%s\"", c->what, r.reason, c->reason);
		assert_int_equal(r.has_metric, false);
		if (!r.has_tests && !r.has_coverage)
			assert_false(r.passed && c->g.read != GATE_READ_EXIT);
	}
	tmpdir_remove(dir);
}

/* The figures the judge fills, beside the sentence. */
static void test_judge_figures(void **state)
{
	struct release_gate g = gate_of(GATE_READ_COVERAGE);
	struct gate_result r = RAN(0);
	char *dir = tmpdir_make();

	(void)state;
	g.file = "cov.info";
	g.min_coverage_bp = 5000;
	write_text(dir, "cov.info", "SF:a\nLF:160\nLH:130\nend_of_record\n");
	gate_judge_command(&g, dir, NULL, &r);
	assert_true(r.passed);
	assert_true(r.has_coverage);
	assert_false(r.has_tests);
	assert_int_equal(r.covered, 130);
	assert_int_equal(r.total, 160);
	assert_true(r.coverage_percent > 81.2499 && r.coverage_percent < 81.2501);

	g = gate_of(GATE_READ_SUMMARY);
	r = (struct gate_result)RAN(1);
	write_text(dir, "out", "7 passed, 2 failed, 1 error, 3 skipped");
	{
		char out[600];
		snprintf(out, sizeof(out), "%s/out", dir);
		gate_judge_command(&g, dir, out, &r);
	}
	assert_false(r.passed);
	assert_true(r.has_tests);
	assert_false(r.has_coverage);
	assert_int_equal(r.tests, 13);
	assert_int_equal(r.passed_tests, 7);
	assert_int_equal(r.failed, 2);
	assert_int_equal(r.errors, 1);
	assert_int_equal(r.skipped, 3);
	tmpdir_remove(dir);
}

/* A summary gate reads the end of a long output; a file gate notes a file
 * older than its command. */
static void test_judge_files(void **state)
{
	struct release_gate g = gate_of(GATE_READ_SUMMARY);
	struct gate_result r = RAN(0);
	size_t big = GATE_OUTPUT_TAIL + 4096;
	char *dir = tmpdir_make(), *text = malloc(big + 64), out[600];
	struct timespec now;

	(void)state;
	/* "1 passed, 1 failed" beyond the tail is not read, "3 passed, 0 failed" at the end is */
	assert_non_null(text);
	memset(text, 'x', big);
	memcpy(text, "1 passed, 1 failed\n", 19);
	text[big - 1] = '\n';
	strcpy(text + big, "3 passed, 0 failed\n");
	write_file(dir, "out", text, strlen(text));
	snprintf(out, sizeof(out), "%s/out", dir);
	gate_judge_command(&g, dir, out, &r);
	assert_string_equal(r.reason, "3 passed, 0 failed (3 tests, pass rate 100.00% >= 100.00%)");
	/* the same with the total at the start only: not found in the tail */
	memset(text, 'x', big);
	memcpy(text, "1 passed, 1 failed\n", 19);
	write_file(dir, "out", text, big);
	r = (struct gate_result)RAN(0);
	gate_judge_command(&g, dir, out, &r);
	assert_false(r.passed);
	assert_string_equal(r.reason, "the command's output cannot be read: its last 1 MiB hold no whole line: "
				      "the gate fails (a result is never assumed)");
	/* the tail starting inside "12 passed, 0 failed": the piece is not read as "2 passed" */
	memset(text, 'x', big);
	memcpy(text, "12 passed, 0 failed\n", 20);
	for (size_t i = 100; i < GATE_OUTPUT_TAIL; i += 100)
		text[i] = '\n';
	write_file(dir, "out", text, GATE_OUTPUT_TAIL + 1);
	r = (struct gate_result)RAN(0);
	gate_judge_command(&g, dir, out, &r);
	assert_false(r.passed);
	assert_string_equal(r.reason, "the command's output cannot be read: no \"N passed, N failed\" line in it: "
				      "the gate fails (a result is never assumed)");
	/* and the whole file, one byte shorter, is read from its start */
	write_file(dir, "out", text, GATE_OUTPUT_TAIL);
	r = (struct gate_result)RAN(0);
	gate_judge_command(&g, dir, out, &r);
	assert_string_equal(r.reason, "12 passed, 0 failed (12 tests, pass rate 100.00% >= 100.00%)");
	free(text);

	/* a JUnit file from before the command started */
	g = gate_of(GATE_READ_JUNIT);
	g.file = "junit.xml";
	write_text(dir, "junit.xml", "<testsuite><testcase/></testsuite>");
	clock_gettime(CLOCK_REALTIME, &now);
	r = (struct gate_result){ .ran = true, .started_ms = (int64_t)now.tv_sec * 1000 + 60000 };
	gate_judge_command(&g, dir, NULL, &r);
	assert_true(r.passed);
	assert_string_equal(r.reason, "1 passed, 0 failed (1 test, pass rate 100.00% >= 100.00%); "
				      "note: junit.xml was last written before the command started");
	r = (struct gate_result){ .ran = true, .started_ms = (int64_t)now.tv_sec * 1000 - 60000 };
	gate_judge_command(&g, dir, NULL, &r);
	assert_string_equal(r.reason, "1 passed, 0 failed (1 test, pass rate 100.00% >= 100.00%)");

	/* an absolute path is read as it is */
	snprintf(out, sizeof(out), "%s/junit.xml", dir);
	g.file = out;
	r = (struct gate_result)RAN(0);
	gate_judge_command(&g, "/nonexistent", NULL, &r);
	assert_true(r.passed);
	tmpdir_remove(dir);
}

struct metric_case {
	const char *what;
	enum release_metric metric;
	const char *version;
	bool during_canary;
	uint64_t max_value, min_requests;
	struct gate_result r;
	bool passed;
	const char *reason;
};

static void test_judge_metric_table(void **state)
{
	static const struct metric_case cases[] = {
		{ "no figures: the runner's reason", METRIC_ERROR_RATE, NULL, false, 100, 20,
		  { .reason = "payment has no deployment of 1.2.0" }, false, "payment has no deployment of 1.2.0" },
		{ "no figures, no reason", METRIC_P99, "1.2.0", true, 100, 20, { 0 }, false,
		  "p99 of payment 1.2.0 during its canary: no figures to read: the gate fails (a result is never assumed)" },
		{ "too few requests", METRIC_ERROR_RATE, NULL, false, 100, 20,
		  { .has_metric = true, .requests = 12, .value = 0.0 }, false,
		  "error rate of payment over 1m: too few requests (12 < 20) to judge: the gate fails" },
		{ "no request at all, none required", METRIC_ERROR_RATE, NULL, false, 100, 0,
		  { .has_metric = true, .requests = 0 }, false,
		  "error rate of payment over 1m: too few requests (0 < 1) to judge: the gate fails" },
		{ "error rate below", METRIC_ERROR_RATE, "1.2.0", true, 100, 20,
		  { .has_metric = true, .requests = 1200, .errors_5xx = 3, .value = 0.25 }, true,
		  "error rate of payment 1.2.0 during its canary: 0.25% (3 of 1200 requests) <= 1.00%" },
		{ "error rate at the threshold", METRIC_ERROR_RATE, NULL, false, 30, 20,
		  { .has_metric = true, .requests = 1000, .errors_5xx = 3, .value = 3.0 / 1000.0 * 100.0 }, true,
		  "error rate of payment over 1m: 0.30% (3 of 1000 requests) <= 0.30%" },
		{ "error rate just above", METRIC_ERROR_RATE, NULL, false, 100, 20,
		  { .has_metric = true, .requests = 1000, .errors_5xx = 10, .value = 1.004 }, false,
		  "error rate of payment over 1m: 1.0040% (10 of 1000 requests) > 1.00%" },
		{ "error rate above", METRIC_ERROR_RATE, NULL, false, 100, 20,
		  { .has_metric = true, .requests = 100, .errors_5xx = 5, .value = 5.0 }, false,
		  "error rate of payment over 1m: 5.00% (5 of 100 requests) > 1.00%" },
		{ "p99 below", METRIC_P99, NULL, false, 200, 20, { .has_metric = true, .requests = 500, .value = 180.5 }, true,
		  "p99 of payment over 1m: 180.5 ms (500 requests) <= 200 ms" },
		{ "p99 just above", METRIC_P99, NULL, false, 200, 20, { .has_metric = true, .requests = 500, .value = 200.01 },
		  false, "p99 of payment over 1m: 200.010 ms (500 requests) > 200 ms" },
		{ "p50 above", METRIC_P50, NULL, false, 20, 20, { .has_metric = true, .requests = 500, .value = 35 }, false,
		  "p50 of payment over 1m: 35.0 ms (500 requests) > 20 ms" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct metric_case *c = &cases[i];
		struct release_gate g = gate_of(GATE_READ_METRIC);
		struct gate_result r = c->r;

		g.run = NULL;
		g.service = "payment";
		g.version = (char *)c->version;
		g.metric = c->metric;
		g.during_canary = c->during_canary;
		g.max_value = c->max_value;
		g.min_requests = c->min_requests;
		gate_judge_metric(&g, &r);
		if (r.passed != c->passed || strcmp(r.reason, c->reason))
			fail_msg("%s: passed %d \"%s\", want %d \"%s\"", c->what, r.passed, r.reason, c->passed, c->reason);
	}
}

/*
 * The report.
 */

static void test_result_json(void **state)
{
	struct release_gate g = gate_of(GATE_READ_JUNIT);
	struct gate_result r = { .ran = true, .exit_code = 1, .started_ms = 1000, .finished_ms = 3500 };
	char *dir = tmpdir_make();
	json_t *j, *t;

	(void)state;
	g.file = "junit.xml";
	g.max_failed = 1;
	g.min_pass_rate_bp = 5000;
	write_text(dir, "junit.xml", "<testsuite><testcase/><testcase><failure/></testcase></testsuite>");
	gate_judge_command(&g, dir, NULL, &r);
	assert_true(r.passed);
	j = gate_result_json(&g, &r);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "name")), "g");
	assert_string_equal(json_string_value(json_object_get(j, "read")), "junit");
	assert_string_equal(json_string_value(json_object_get(j, "when")), "before");
	assert_string_equal(json_string_value(json_object_get(j, "command")), "true");
	assert_string_equal(json_string_value(json_object_get(j, "file")), "junit.xml");
	assert_true(json_is_true(json_object_get(j, "passed")));
	assert_string_equal(json_string_value(json_object_get(j, "reason")), r.reason);
	assert_int_equal(json_integer_value(json_object_get(j, "exit_code")), 1);
	assert_int_equal(json_integer_value(json_object_get(j, "signal")), 0);
	assert_true(json_is_false(json_object_get(j, "timed_out")));
	assert_int_equal(json_integer_value(json_object_get(j, "started_at")), 1000);
	assert_int_equal(json_integer_value(json_object_get(j, "finished_at")), 3500);
	assert_int_equal(json_integer_value(json_object_get(j, "duration_ms")), 2500);
	t = json_object_get(j, "threshold");
	assert_int_equal(json_integer_value(json_object_get(t, "min_tests")), 1);
	assert_int_equal(json_integer_value(json_object_get(t, "max_failed")), 1);
	assert_true(json_real_value(json_object_get(t, "min_pass_rate_percent")) == 50.0);
	t = json_object_get(j, "tests");
	assert_int_equal(json_integer_value(json_object_get(t, "tests")), 2);
	assert_int_equal(json_integer_value(json_object_get(t, "passed")), 1);
	assert_int_equal(json_integer_value(json_object_get(t, "failed")), 1);
	assert_int_equal(json_integer_value(json_object_get(t, "errors")), 0);
	assert_int_equal(json_integer_value(json_object_get(t, "skipped")), 0);
	assert_true(json_real_value(json_object_get(t, "pass_rate_percent")) == 50.0);
	/* what was not read is left out */
	assert_null(json_object_get(j, "coverage"));
	assert_null(json_object_get(j, "metric"));
	assert_null(json_object_get(j, "after"));
	json_decref(j);
	tmpdir_remove(dir);

	/* a metric gate: no command, its figures */
	g = gate_of(GATE_READ_METRIC);
	g.run = NULL;
	g.when = GATE_AFTER_GROUP;
	g.after = "order";
	g.service = "order";
	g.version = "2.0.0";
	g.during_canary = true;
	g.max_value = 100;
	r = (struct gate_result){ .has_metric = true, .requests = 400, .errors_5xx = 2, .value = 0.5 };
	gate_judge_metric(&g, &r);
	j = gate_result_json(&g, &r);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "when")), "after-group");
	assert_string_equal(json_string_value(json_object_get(j, "after")), "order");
	assert_null(json_object_get(j, "command"));
	assert_null(json_object_get(j, "exit_code"));
	assert_null(json_object_get(j, "started_at"));
	assert_null(json_object_get(j, "tests"));
	t = json_object_get(j, "threshold");
	assert_string_equal(json_string_value(json_object_get(t, "service")), "order");
	assert_string_equal(json_string_value(json_object_get(t, "version")), "2.0.0");
	assert_string_equal(json_string_value(json_object_get(t, "metric")), "error_rate");
	assert_true(json_is_true(json_object_get(t, "during_canary")));
	assert_null(json_object_get(t, "window_ms"));
	assert_true(json_real_value(json_object_get(t, "max_error_rate_percent")) == 1.0);
	t = json_object_get(j, "metric");
	assert_int_equal(json_integer_value(json_object_get(t, "requests")), 400);
	assert_int_equal(json_integer_value(json_object_get(t, "errors_5xx")), 2);
	assert_true(json_real_value(json_object_get(t, "value")) == 0.5);
	assert_string_equal(json_string_value(json_object_get(t, "unit")), "percent");
	json_decref(j);

	/* a reason quoting bytes that are not UTF-8 stays valid JSON */
	g = gate_of(GATE_READ_EXIT);
	r = (struct gate_result){ .ran = false };
	strcpy(r.reason, "cannot run \xff\xfe\x1b[31m caf\xc3\xa9");
	j = gate_result_json(&g, &r);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "reason")), "cannot run ???[31m caf\xc3\xa9");
	json_decref(j);
	/* and the judges clean it in place */
	gate_judge_command(&g, NULL, NULL, &r);
	assert_string_equal(r.reason, "cannot run ???[31m caf\xc3\xa9");
}

static void test_text_clean(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "plain text, 100%", "plain text, 100%" },
		{ "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80" },
		{ "tab\tnew\nline\x7f", "tab?new?line?" },
		{ "\x1b[31mred", "?[31mred" },
		{ "overlong \xc0\xaf", "overlong ??" },
		{ "surrogate \xed\xa0\x80", "surrogate ???" },
		{ "beyond U+10FFFF \xf4\x90\x80\x80", "beyond U+10FFFF ????" },
		{ "overlong 3 \xe0\x80\xaf", "overlong 3 ???" },
		{ "cut \xe2\x82", "cut ??" },
		{ "lone \x80 continuation", "lone ? continuation" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char buf[128];
		snprintf(buf, sizeof(buf), "%s", cases[i].in);
		gate_text_clean(buf);
		if (strcmp(buf, cases[i].out))
			fail_msg("case %zu: \"%s\", want \"%s\"", i, buf, cases[i].out);
	}
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(gate_read_name(GATE_READ_EXIT), "exit");
	assert_string_equal(gate_read_name(GATE_READ_SUMMARY), "summary");
	assert_string_equal(gate_read_name(GATE_READ_JUNIT), "junit");
	assert_string_equal(gate_read_name(GATE_READ_COVERAGE), "coverage");
	assert_string_equal(gate_read_name(GATE_READ_METRIC), "metric");
	assert_string_equal(gate_read_name((enum release_gate_read)99), "unknown");
	assert_string_equal(gate_when_name(GATE_BEFORE), "before");
	assert_string_equal(gate_when_name(GATE_BETWEEN), "between");
	assert_string_equal(gate_when_name(GATE_AFTER_GROUP), "after-group");
	assert_string_equal(gate_when_name(GATE_AFTER), "after");
	assert_string_equal(gate_coverage_name(COVERAGE_LINES), "lines");
	assert_string_equal(gate_coverage_name(COVERAGE_BRANCHES), "branches");
	assert_string_equal(gate_coverage_name(COVERAGE_FUNCTIONS), "functions");
	assert_string_equal(gate_metric_name(METRIC_ERROR_RATE), "error_rate");
	assert_string_equal(gate_metric_name(METRIC_P50), "p50");
	assert_string_equal(gate_metric_name(METRIC_P99), "p99");
}

/*
 * Real outputs.
 */

/* A sample of tests/unit/gate/ (fails the test when absent). */
static char *sample(const char *name, size_t *len)
{
	const char *root = getenv("CUTOVER_SOURCE");
	char path[1024];

	assert_non_null(root);
	snprintf(path, sizeof(path), "%s/tests/unit/gate/%s", root, name);
	return slurp(path, len);
}

static void test_samples(void **state)
{
	struct gate_tests t;
	struct gate_coverage c;
	char err[256], *s;
	size_t len;

	(void)state;
	s = sample("cmocka.xml", &len);
	assert_int_equal(gate_read_junit(s, len, &t, err, sizeof(err)), 0);
	assert_tests(&t, 3, 1, 0, 1, "cmocka.xml");
	free(s);
	s = sample("pytest.xml", &len);
	assert_int_equal(gate_read_junit(s, len, &t, err, sizeof(err)), 0);
	assert_tests(&t, 4, 1, 1, 1, "pytest.xml");
	free(s);
	s = sample("pytest.txt", &len);
	assert_int_equal(gate_read_summary(s, len, &t, err, sizeof(err)), 0);
	assert_tests(&t, 4, 1, 1, 1, "pytest.txt");
	free(s);
	s = sample("pytest-color.txt", &len);
	assert_int_equal(gate_read_summary(s, len, &t, err, sizeof(err)), 0);
	assert_tests(&t, 4, 1, 1, 1, "pytest-color.txt");
	free(s);
	s = sample("tiny.gcovr.json", &len);
	assert_int_equal(gate_read_gcovr(s, len, &c, err, sizeof(err)), 0);
	assert_pair(c.lines_covered, c.lines_total, 7, 13, "gcovr lines");
	assert_pair(c.branches_covered, c.branches_total, 2, 6, "gcovr branches");
	assert_pair(c.functions_covered, c.functions_total, 2, 3, "gcovr functions");
	free(s);
	for (int i = 0; i < 2; i++) {
		const char *name = i ? "tiny.info" : "tiny-capture.info";
		s = sample(name, &len);
		if (gate_read_lcov(s, len, &c, err, sizeof(err)) < 0)
			fail_msg("%s: %s", name, err);
		assert_pair(c.lines_covered, c.lines_total, 7, 13, name);
		assert_pair(c.branches_covered, c.branches_total, 2, 6, name);
		assert_pair(c.functions_covered, c.functions_total, 2, 3, name);
		free(s);
	}
	/* the capture has no totals, the merged file has them: both are read, differently */
	s = sample("tiny-capture.info", &len);
	assert_null(strstr(s, "LF:"));
	free(s);
	s = sample("tiny.info", &len);
	assert_non_null(strstr(s, "LF:13"));
	free(s);
}

/* The cmocka group this program runs when re-executed with
 * TEST_GATE_CMOCKA_GROUP set: 2 pass, 1 fails, 1 is skipped. */
static void demo_pass(void **state)
{
	(void)state;
	assert_int_equal(1, 1);
}

static void demo_fail(void **state)
{
	(void)state;
	assert_int_equal(1, 2);
}

static void demo_skip(void **state)
{
	(void)state;
	skip();
}

static int run_demo_group(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(demo_pass),
		cmocka_unit_test(demo_fail),
		cmocka_unit_test(demo_skip),
		cmocka_unit_test(demo_pass),
	};
	return cmocka_run_group_tests_name("demo", tests, NULL, NULL);
}

/* JUnit XML from real cmocka runs: a group of this program, then the
 * project's own test_base, whose count comes from its plain output. */
static void test_live_cmocka(void **state)
{
	struct release_gate g = gate_of(GATE_READ_JUNIT);
	struct gate_result r = RAN(1);
	const char *build = getenv("CUTOVER_BUILD");
	char *dir = tmpdir_make(), *s, err[256], exe[512];
	struct gate_tests t;
	unsigned long n = 0;
	size_t len;
	ssize_t el;

	(void)state;
	el = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(el > 0);
	exe[el] = '\0';
	assert_int_equal(sh("cd '%s' && TEST_GATE_CMOCKA_GROUP=1 CMOCKA_MESSAGE_OUTPUT=xml CMOCKA_XML_FILE=demo.xml "
			    "'%s' >demo.log 2>&1", dir, exe), 1);
	g.file = "demo.xml";
	gate_judge_command(&g, dir, NULL, &r);
	assert_false(r.passed);
	assert_string_equal(r.reason, "2 passed, 1 failed, 1 skipped (4 tests, 3 ran, pass rate 66.66% < 100.00%; "
				      "1 failed > 0 allowed); the command exited with status 1");

	assert_non_null(build);
	assert_int_equal(sh("cd '%s' && CMOCKA_MESSAGE_OUTPUT=xml CMOCKA_XML_FILE=base.xml '%s/tests/unit/test_base' "
			    ">/dev/null 2>&1 && '%s/tests/unit/test_base' >base.log 2>&1",
			    dir, build, build), 0);
	snprintf(exe, sizeof(exe), "%s/base.log", dir);
	s = slurp(exe, &len);
	{
		const char *p = strstr(s, "[  PASSED  ] ");
		assert_non_null(p);
		assert_int_equal(sscanf(p, "[  PASSED  ] %lu test(s).", &n), 1);
	}
	free(s);
	assert_true(n >= 5);
	snprintf(exe, sizeof(exe), "%s/base.xml", dir);
	s = slurp(exe, &len);
	assert_int_equal(gate_read_junit(s, len, &t, err, sizeof(err)), 0);
	assert_tests(&t, n, 0, 0, 0, "test_base's JUnit XML");
	free(s);
	tmpdir_remove(dir);
}

/* pytest: its JUnit XML and its summary line, plain and in colour, from a
 * generated test file whose counts are certain. */
static void test_live_pytest(void **state)
{
	static const char tests[] = "import pytest\n"
				    "def test_ok(): assert 1 == 1\n"
				    "def test_ok_too(): assert 2 == 2\n"
				    "def test_bad(): assert 1 == 2\n"
				    "@pytest.mark.skip(reason='not today')\n"
				    "def test_later(): pass\n"
				    "@pytest.fixture\n"
				    "def broken(): raise RuntimeError('broken')\n"
				    "def test_error(broken): pass\n";
	struct release_gate g = gate_of(GATE_READ_SUMMARY);
	char *dir = tmpdir_make(), path[600];
	struct gate_result r;
	int rc;

	(void)state;
	write_file(dir, "test_tiny.py", tests, sizeof(tests) - 1);
	rc = sh("cd '%s' && p=$(command -v pytest-3 || echo 'python3 -m pytest') && "
		"$p -p no:cacheprovider --junitxml=junit.xml test_tiny.py >out.txt 2>&1; s=$?; "
		"$p -p no:cacheprovider --color=yes test_tiny.py >color.txt 2>&1; exit $s", dir);
	if (rc != 1)
		fail_msg("pytest exited with %d, want 1 (a failing test); is python3-pytest installed "
			 "(scripts/bootstrap)?", rc);
	for (int i = 0; i < 2; i++) {
		r = (struct gate_result)RAN(1);
		snprintf(path, sizeof(path), "%s/%s", dir, i ? "color.txt" : "out.txt");
		gate_judge_command(&g, dir, path, &r);
		assert_string_equal(r.reason, "2 passed, 1 failed, 1 error, 1 skipped (5 tests, 4 ran, pass rate 50.00% < "
					      "100.00%; 2 failed or errored > 0 allowed); the command exited with status 1");
	}
	g = gate_of(GATE_READ_JUNIT);
	g.file = "junit.xml";
	g.max_failed = 2;
	g.min_pass_rate_bp = 5000;
	r = (struct gate_result)RAN(1);
	gate_judge_command(&g, dir, NULL, &r);
	assert_true(r.passed);
	assert_string_equal(r.reason, "2 passed, 1 failed, 1 error, 1 skipped (5 tests, 4 ran, pass rate 50.00% >= "
				      "50.00%); the command exited with status 1");
	tmpdir_remove(dir);
}

/* gcovr and lcov on a real coverage build of a generated C file: both tools
 * and all three files agree, and the functions are what the program makes
 * certain (two of three ran). */
static void test_live_coverage(void **state)
{
	static const char prog[] = "#include <stdio.h>\n"
				   "static int sign(int x)\n{\n\tif (x > 0)\n\t\treturn 1;\n\tif (x < 0)\n\t\treturn -1;\n"
				   "\treturn 0;\n}\n"
				   "static int twice(int x)\n{\n\treturn x * 2;\n}\n"
				   "int main(int argc, char **argv)\n{\n\t(void)argv;\n\tprintf(\"%d\\n\", sign(argc));\n"
				   "\tif (argc > 5)\n\t\tprintf(\"%d\\n\", twice(argc));\n\treturn 0;\n}\n";
	static const char *const files[] = { "cov.json", "capture.info", "merged.info" };
	struct gate_coverage c[3];
	char *dir = tmpdir_make(), path[600], err[256], *s;
	size_t len;

	(void)state;
	write_file(dir, "tiny.c", prog, sizeof(prog) - 1);
	if (sh("cd '%s' && gcc --coverage -O0 -o tiny tiny.c && ./tiny >/dev/null && "
	       "gcovr -r . --json-summary cov.json && "
	       "lcov -q --rc lcov_branch_coverage=1 --capture --directory . --output-file capture.info 2>>lcov.log && "
	       "lcov -q --rc lcov_branch_coverage=1 -a capture.info --output-file merged.info 2>>lcov.log",
	       dir) != 0)
		fail_msg("the coverage build failed in %s: are gcc, gcovr and lcov installed (scripts/bootstrap)?", dir);
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		s = slurp(path, &len);
		if ((i ? gate_read_lcov(s, len, &c[i], err, sizeof(err)) : gate_read_gcovr(s, len, &c[i], err, sizeof(err))) <
		    0)
			fail_msg("%s: %s", files[i], err);
		free(s);
		assert_pair(c[i].functions_covered, c[i].functions_total, 2, 3, files[i]);
		assert_true(c[i].lines_covered > 0 && c[i].lines_covered < c[i].lines_total);
		assert_true(c[i].branches_covered > 0 && c[i].branches_covered < c[i].branches_total);
		assert_pair(c[i].lines_covered, c[i].lines_total, c[0].lines_covered, c[0].lines_total, files[i]);
		assert_pair(c[i].branches_covered, c[i].branches_total, c[0].branches_covered, c[0].branches_total,
			    files[i]);
	}
	tmpdir_remove(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_summary_table),
		cmocka_unit_test(test_summary_bytes),
		cmocka_unit_test(test_junit_table),
		cmocka_unit_test(test_junit_bytes),
		cmocka_unit_test(test_gcovr_table),
		cmocka_unit_test(test_lcov_table),
		cmocka_unit_test(test_judge_command_table),
		cmocka_unit_test(test_judge_figures),
		cmocka_unit_test(test_judge_files),
		cmocka_unit_test(test_judge_metric_table),
		cmocka_unit_test(test_result_json),
		cmocka_unit_test(test_text_clean),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_samples),
		cmocka_unit_test(test_live_cmocka),
		cmocka_unit_test(test_live_pytest),
		cmocka_unit_test(test_live_coverage),
	};

	if (getenv("TEST_GATE_CMOCKA_GROUP"))
		return run_demo_group();
	return cmocka_run_group_tests(tests, NULL, NULL);
}

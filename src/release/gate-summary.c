/* gate-summary.c - the "N passed, M failed" line of a test run's output, as
 * a summary gate reads it (gate_read_summary, declared in gate.h).
 *
 * Runners print their totals on one line near the end: this project's own
 * scripts/test and tests/integration/run.py ("12 passed, 0 failed"),
 * pytest ("===== 1 failed, 3 passed, 1 skipped, 1 error in 0.12s ====="),
 * cargo ("test result: ok. 3 passed; 0 failed; 1 ignored; ...").  The
 * reader takes the LAST line holding a count of passed or failed tests, so
 * that the totals win over anything a test printed before them.  A count is
 * a number standing on its own (not the end of "1.5" or "x2") followed by
 * blanks and one of the words below; ANSI colour sequences are skipped
 * (pytest colours each count on a terminal).  A line naming one word twice
 * ("1 passed, 2 passed") says nothing for sure and is passed over.  Pure: no
 * allocation, no I/O.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "release/gate.h"

enum field { F_PASSED, F_FAILED, F_ERRORS, F_SKIPPED };

/* The words a count may carry, and what each adds to.  An xpassed test (a
 * test expected to fail that passed) passed; an xfailed one is counted as
 * skipped, as pytest's own JUnit report counts it. */
static const struct {
	const char *word;
	enum field field;
	bool plural;                  /* "errors" too */
} words[] = {
	{ "passed", F_PASSED, false }, { "xpassed", F_PASSED, false }, { "failed", F_FAILED, false },
	{ "error", F_ERRORS, true },   { "skipped", F_SKIPPED, false }, { "xfailed", F_SKIPPED, false },
	{ "ignored", F_SKIPPED, false },
};
#define NWORDS (sizeof(words) / sizeof(words[0]))

/* Counts have at most this many digits: four of them add up without
 * overflowing an int64_t (what a JSON report can hold). */
#define COUNT_DIGITS_MAX 18

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Index past an ANSI escape sequence starting at s[i] (ESC), within n. */
static size_t skip_escape(const char *s, size_t n, size_t i)
{
	i++;
	if (i < n && s[i] == '[') {
		/* CSI: parameter and intermediate bytes, then one final byte 0x40..0x7e */
		for (i++; i < n; i++)
			if ((unsigned char)s[i] >= 0x40 && (unsigned char)s[i] <= 0x7e)
				return i + 1;
		return n;
	}
	return i < n ? i + 1 : n;
}

/* Index past blanks and escape sequences from i. */
static size_t skip_blanks(const char *s, size_t n, size_t i)
{
	while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == 0x1b))
		i = s[i] == 0x1b ? skip_escape(s, n, i) : i + 1;
	return i;
}

/* One line, s[0..n): 1 and *t if it holds a count of passed or failed
 * tests (and no word twice), else 0 (*t untouched). */
static int scan_line(const char *s, size_t n, struct gate_tests *t)
{
	uint64_t count[4] = { 0 };
	bool seen[NWORDS] = { false }, found = false;
	char prev = ' ';
	size_t i = 0;

	while (i < n) {
		size_t start, digits, w, wlen;
		uint64_t v = 0;

		if (s[i] == 0x1b) {
			/* escape sequences are transparent: prev stays */
			i = skip_escape(s, n, i);
			continue;
		}
		if (!is_digit(s[i]) || is_alpha(prev) || is_digit(prev) || prev == '.' || prev == ',') {
			prev = s[i++];
			continue;
		}
		for (start = i; i < n && is_digit(s[i]); i++)
			if (i - start < COUNT_DIGITS_MAX)
				v = v * 10 + (uint64_t)(s[i] - '0');
		digits = i - start;
		prev = s[i - 1];
		if (digits > COUNT_DIGITS_MAX || i >= n || (s[i] != ' ' && s[i] != '\t' && s[i] != 0x1b))
			continue;
		w = skip_blanks(s, n, i);
		for (wlen = 0; w + wlen < n && is_alpha(s[w + wlen]); wlen++)
			;
		if (wlen == 0 || (w + wlen < n && (is_digit(s[w + wlen]) || s[w + wlen] == '_')))
			continue;
		for (size_t k = 0; k < NWORDS; k++) {
			size_t l = strlen(words[k].word);
			if (!(wlen == l || (words[k].plural && wlen == l + 1 && (s[w + l] | 0x20) == 's')) ||
			    strncasecmp(words[k].word, s + w, l))
				continue;
			if (seen[k])
				return 0;
			seen[k] = true;
			count[words[k].field] += v;
			if (words[k].field == F_PASSED || words[k].field == F_FAILED)
				found = true;
		}
		i = w + wlen;
		prev = s[i - 1];
	}
	if (!found)
		return 0;
	*t = (struct gate_tests){
		.tests = count[F_PASSED] + count[F_FAILED] + count[F_ERRORS] + count[F_SKIPPED],
		.failed = count[F_FAILED],
		.errors = count[F_ERRORS],
		.skipped = count[F_SKIPPED],
	};
	return 1;
}

int gate_read_summary(const char *text, size_t len, struct gate_tests *ret, char *err, size_t errlen)
{
	size_t end = len;

	/* from the last line up; '\r' ends a line too (progress lines redraw) */
	while (end > 0) {
		size_t start = end;
		while (start > 0 && text[start - 1] != '\n' && text[start - 1] != '\r')
			start--;
		if (scan_line(text + start, end - start, ret))
			return 0;
		end = start ? start - 1 : 0;
	}
	snprintf(err, errlen, len ? "no \"N passed, N failed\" line in it" : "it is empty");
	return -ENOENT;
}

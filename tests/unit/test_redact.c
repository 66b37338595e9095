/* test_redact.c - unit tests of the redaction engine (src/secrets/redact.c).
 *
 * One-shot redaction is table-driven: values and a text in, the exact text
 * out.  The JSON forms are checked against jansson itself (json_dumps of
 * the value, and of that JSON inside a JSON string), which is what the
 * daemon's JSON sinks write.  Streaming is checked against one-shot
 * redaction of the same text, over every split point, every pair of split
 * points, one byte per write and seeded random splits, and after each
 * write what is held back must be a proper prefix of a form and short
 * enough.  Then adding (bad names, sizes, duplicates, the form limit),
 * serialization (round trip, every truncation, malformed blobs) and the
 * process-wide redactor set from one thread while others read it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "base/util.h"
#include "secrets/redact.h"

#define MAX_VALUES 6

struct value {
	const char *name;
	const char *bytes;
	size_t len; /* 0: strlen(bytes) */
};

struct text_case {
	struct value values[MAX_VALUES]; /* ends at a NULL name */
	const char *text;
	const char *want; /* NULL: nothing matches (redact_text returns 0) */
};

#define V(name, bytes) { (name), (bytes), 0 }
#define VL(name, bytes, len) { (name), (bytes), (len) }
#define VEND { NULL, NULL, 0 }

static size_t value_len(const struct value *v)
{
	return v->len ? v->len : strlen(v->bytes);
}

static struct redactor *build(const struct value *values)
{
	struct redactor *r;

	assert_int_equal(redactor_new(&r), 0);
	for (const struct value *v = values; v->name; v++)
		assert_int_equal(redactor_add(r, v->name, (const uint8_t *)v->bytes, value_len(v)), 0);
	return r;
}

/* The value as jansson writes it inside a JSON string (no quotes), and
 * once more inside another JSON string.  Caller frees. */
static char *json_form(const char *bytes, size_t len)
{
	json_t *s = json_stringn_nocheck(bytes, len);
	char *out = json_dumps(s, JSON_ENCODE_ANY), *inner;

	json_decref(s);
	assert_non_null(out);
	inner = strndup(out + 1, strlen(out) - 2);
	free(out);
	return inner;
}

/* --- one-shot --- */

#define ESCAPED "pa\"ss\\w\nrd\x01\x1b/\xc3\xa9"

static const struct text_case text_cases[] = {
	/* nothing to hide */
	{ { V("T", "abcd1234") }, "hello world", NULL },
	{ { V("T", "abcd1234") }, "", NULL },
	{ { V("T", "abcd1234") }, "abcd123", NULL },
	{ { V("T", "abcd1234") }, "abcd123 bcd1234 ABCD1234", NULL },
	/* one value: inside, at the start, at the end, the whole text, twice, adjacent */
	{ { V("T", "abcd1234") }, "token=abcd1234;", "token=[redacted:T];" },
	{ { V("T", "abcd1234") }, "abcd1234 first", "[redacted:T] first" },
	{ { V("T", "abcd1234") }, "last abcd1234", "last [redacted:T]" },
	{ { V("T", "abcd1234") }, "abcd1234", "[redacted:T]" },
	{ { V("T", "abcd1234") }, "abcd1234abcd1234", "[redacted:T][redacted:T]" },
	{ { V("T", "abcd1234") }, "aabcd1234abcd12345", "a[redacted:T][redacted:T]5" },
	{ { V("T", "aaaa") }, "aaaaaaaaa", "[redacted:T][redacted:T]a" },
	/* several values */
	{ { V("A", "alpha-secret"), V("B", "bravo-secret") },
	  "a=alpha-secret b=bravo-secret", "a=[redacted:A] b=[redacted:B]" },
	/* one value inside another: the longest at a position wins */
	{ { V("SHORT", "abcdef"), V("LONG", "abcdefgh") }, "xabcdefghy", "x[redacted:LONG]y" },
	{ { V("SHORT", "abcdef"), V("LONG", "abcdefgh") }, "xabcdefgy", "x[redacted:SHORT]gy" },
	{ { V("LONG", "abcdefgh"), V("SHORT", "abcdef") }, "xabcdefghy", "x[redacted:LONG]y" },
	{ { V("PW", "pass"), V("URL", "db://u:pass@host") }, "db://u:pass@host pass",
	  "[redacted:URL] [redacted:PW]" },
	{ { V("INNER", "cdef"), V("OUTER", "abcdefgh") }, "abcdefgh cdef", "[redacted:OUTER] [redacted:INNER]" },
	/* values that overlap: the leftmost wins, the other's tail stays
	 * (docs/internals/redaction.md, "Limits") */
	{ { V("A", "abcdef"), V("B", "defghi") }, "abcdefghi", "[redacted:A]ghi" },
	{ { V("A", "abcdef"), V("B", "defghi") }, "xxdefghi", "xx[redacted:B]" },
	/* the same value twice: the first name */
	{ { V("FIRST", "same-value"), V("SECOND", "same-value") }, "same-value", "[redacted:FIRST]" },
	/* binary and UTF-8 values */
	{ { VL("BIN", "a\0b\0c", 5) }, "x a\0b\0c x", NULL /* checked by length below */ },
	{ { V("UTF", "p\xc3\xa4ssw\xc3\xb6rd") }, "pw=p\xc3\xa4ssw\xc3\xb6rd", "pw=[redacted:UTF]" },
	/* escaped forms: as jansson writes them, and escaped twice */
	{ { V("Q", "pa\"ss") }, "{\"v\":\"pa\\\"ss\"}", "{\"v\":\"[redacted:Q]\"}" },
	{ { V("Q", "pa\"ss") }, "{\"m\":\"{\\\"v\\\":\\\"pa\\\\\\\"ss\\\"}\"}",
	  "{\"m\":\"{\\\"v\\\":\\\"[redacted:Q]\\\"}\"}" },
	{ { V("NL", "one\ntwo") }, "raw one\ntwo json one\\ntwo twice one\\\\ntwo",
	  "raw [redacted:NL] json [redacted:NL] twice [redacted:NL]" },
	{ { V("CTL", "ab\x01\x1b" "cd") }, "ab\\u0001\\u001Bcd", "[redacted:CTL]" },
	{ { V("CTL", "ab\x01\x1b" "cd") }, "ab\\u0001\\u001bcd", NULL /* jansson writes upper case */ },
	{ { V("SL", "a/b/c/d") }, "a/b/c/d a\\/b\\/c\\/d", "[redacted:SL] a\\/b\\/c\\/d" /* '/' is not escaped */ },
	{ { V("E", ESCAPED) }, "x" ESCAPED "x", "x[redacted:E]x" },
};

static void check_text_case(size_t i, const struct text_case *c)
{
	struct redactor *r = build(c->values);
	size_t len = c->values[0].len && c->values[0].bytes ? 9 : strlen(c->text), got_len = 12345;
	char *got = (char *)"untouched";
	int rc = redact_text(r, c->text, len, &got, &got_len);

	if (c->values[0].len) { /* the binary value */
		assert_int_equal(rc, 1);
		assert_int_equal(got_len, strlen("x [redacted:BIN] x"));
		assert_memory_equal(got, "x [redacted:BIN] x", got_len);
		free(got);
	} else if (!c->want) {
		if (rc != 0)
			fail_msg("case %zu: \"%s\": got %d \"%s\", want no match", i, c->text, rc, rc > 0 ? got : "");
		assert_string_equal(got, "untouched");
		assert_int_equal(got_len, 12345);
	} else {
		if (rc != 1 || strcmp(got, c->want) != 0)
			fail_msg("case %zu: \"%s\": got %d \"%s\", want \"%s\"", i, c->text, rc, rc > 0 ? got : "",
				 c->want);
		assert_int_equal(got_len, strlen(c->want));
		free(got);
	}
	redactor_free(r);
}

static void test_text(void **state UNUSED)
{
	for (size_t i = 0; i < ARRAY_SIZE(text_cases); i++)
		check_text_case(i, &text_cases[i]);
}

/* Values written by jansson, once and twice escaped, are hidden, and no
 * byte sequence of the value or its forms is left. */
static void test_json_forms(void **state UNUSED)
{
	static const char *values[] = {
		"plain-value", ESCAPED, "tab\there", "quote\"quote", "back\\slash", "\x7f\x7f\x7f\x7f",
		"\x1f\x1e\x1d\x1c", "\r\n\r\n", "\b\f\b\f",
	};

	for (size_t i = 0; i < ARRAY_SIZE(values); i++) {
		struct redactor *r;
		json_t *doc = json_pack("{ss}", "v", values[i]);
		char *once = json_dumps(doc, JSON_COMPACT), *twice, *got, *json1, *json2;
		json_t *outer = json_pack("{ss}", "m", once);
		size_t len;

		twice = json_dumps(outer, JSON_COMPACT);
		assert_int_equal(redactor_new(&r), 0);
		assert_int_equal(redactor_add(r, "V", (const uint8_t *)values[i], strlen(values[i])), 0);
		assert_int_equal(redact_text(r, once, strlen(once), &got, &len), 1);
		assert_string_equal(got, "{\"v\":\"[redacted:V]\"}");
		free(got);
		assert_int_equal(redact_text(r, twice, strlen(twice), &got, &len), 1);
		assert_string_equal(got, "{\"m\":\"{\\\"v\\\":\\\"[redacted:V]\\\"}\"}");
		json1 = json_form(values[i], strlen(values[i]));
		json2 = json_form(json1, strlen(json1));
		assert_null(strstr(got, values[i]));
		assert_null(strstr(got, json1));
		assert_null(strstr(got, json2));
		free(got);
		free(json1);
		free(json2);
		free(once);
		free(twice);
		json_decref(doc);
		json_decref(outer);
		redactor_free(r);
	}
}

/* --- streams --- */

struct collect {
	char *buf;
	size_t len, cap;
	int fail_with; /* != 0: the emit fails */
};

static int collect_emit(void *ctx, const char *data, size_t len)
{
	struct collect *c = ctx;

	if (c->fail_with)
		return c->fail_with;
	assert_true(len > 0);
	if (c->len + len + 1 > c->cap) {
		c->cap = (c->len + len + 1) * 2;
		c->buf = realloc(c->buf, c->cap);
		assert_non_null(c->buf);
	}
	memcpy(c->buf + c->len, data, len);
	c->len += len;
	c->buf[c->len] = '\0';
	return 0;
}

/* A stream and what it emitted, reused over the splits of one case (a
 * stream is as new after finish), and the forms of the case's values. */
struct splitter {
	struct redact_stream *s;
	struct collect c;
	char *forms[3 * MAX_VALUES];
	size_t lens[3 * MAX_VALUES];
	int nforms;
	size_t max;               /* longest form */
};

static void splitter_init(struct splitter *sp, const struct redactor *r, const struct value *values)
{
	*sp = (struct splitter){ 0 };
	assert_int_equal(redact_stream_new(r, collect_emit, &sp->c, &sp->s), 0);
	for (const struct value *v = values; v->name; v++) {
		char *j1 = json_form(v->bytes, value_len(v));
		char *raw = malloc(value_len(v));

		assert_non_null(raw);
		memcpy(raw, v->bytes, value_len(v));
		sp->forms[sp->nforms] = raw;
		sp->lens[sp->nforms++] = value_len(v);
		sp->forms[sp->nforms] = json_form(j1, strlen(j1));
		sp->lens[sp->nforms] = strlen(sp->forms[sp->nforms]);
		sp->nforms++;
		sp->forms[sp->nforms] = j1;
		sp->lens[sp->nforms] = strlen(j1);
		sp->nforms++;
	}
	for (int k = 0; k < sp->nforms; k++)
		sp->max = sp->lens[k] > sp->max ? sp->lens[k] : sp->max;
}

static void splitter_release(struct splitter *sp)
{
	redact_stream_free(sp->s);
	free(sp->c.buf);
	for (int k = 0; k < sp->nforms; k++)
		free(sp->forms[k]);
}

/* Is p (n bytes) a proper prefix of some form? */
static bool proper_prefix_of_a_form(const struct splitter *sp, const char *p, size_t n)
{
	for (int k = 0; k < sp->nforms; k++)
		if (n < sp->lens[k] && memcmp(sp->forms[k], p, n) == 0)
			return true;
	return false;
}

/* Feed text cut at the cuts (ascending offsets, n of them) and compare with
 * want; after each write what is out must be a prefix of want, and what is
 * held a proper prefix of a form (checked when check_held). */
static void check_split(struct splitter *sp, const char *text, size_t len, const size_t *cuts, size_t n,
			const char *want, size_t want_len, bool check_held)
{
	struct collect *c = &sp->c;
	size_t from = 0;

	c->len = 0;
	for (size_t k = 0; k <= n; k++) {
		size_t to = k < n ? cuts[k] : len;
		size_t held;

		assert_int_equal(redact_stream_feed(sp->s, text + from, to - from), 0);
		from = to;
		held = redact_stream_pending(sp->s);
		assert_true(held < sp->max);
		/* what is out is final: a prefix of the one-shot result */
		if (c->len > want_len || (c->len && memcmp(c->buf, want, c->len) != 0))
			fail_msg("\"%s\" after byte %zu: emitted \"%s\", not a prefix of \"%.*s\"", text, from,
				 c->buf, (int)want_len, want);
		if (check_held && held > 0 && !proper_prefix_of_a_form(sp, text + from - held, held))
			fail_msg("holds %zu bytes \"%.*s\" after byte %zu of \"%s\": not a prefix of a form", held,
				 (int)held, text + from - held, from, text);
	}
	assert_int_equal(redact_stream_finish(sp->s), 0);
	assert_int_equal(redact_stream_pending(sp->s), 0);
	if (c->len != want_len || (want_len && memcmp(c->buf, want, want_len) != 0))
		fail_msg("\"%s\" cut in %zu pieces (first cut %zu): got \"%.*s\", want \"%.*s\"", text, n + 1,
			 n ? cuts[0] : len, (int)c->len, c->buf ? c->buf : "", (int)want_len, want);
}

static void check_stream_case(const struct text_case *tc, unsigned *seed)
{
	size_t len = strlen(tc->text), want_len, cuts[64] = { 0 };
	struct splitter sp;
	struct redactor *r;
	char *got = NULL;
	const char *want;

	if (tc->values[0].len)
		return; /* the binary case: texts here are strings */
	r = build(tc->values);
	if (redact_text(r, tc->text, len, &got, &want_len) == 1) {
		want = got;
	} else {
		want = tc->text;
		want_len = len;
	}
	splitter_init(&sp, r, tc->values);
	/* whole; every split point; every pair of split points */
	check_split(&sp, tc->text, len, cuts, 0, want, want_len, true);
	for (size_t a = 0; a <= len; a++) {
		cuts[0] = a;
		check_split(&sp, tc->text, len, cuts, 1, want, want_len, true);
		for (size_t b = a; b <= len && len <= 80; b++) {
			cuts[1] = b;
			check_split(&sp, tc->text, len, cuts, 2, want, want_len, false);
		}
	}
	/* one byte per write */
	if (len > 0 && len <= 64) {
		for (size_t k = 0; k + 1 < len; k++)
			cuts[k] = k + 1;
		check_split(&sp, tc->text, len, cuts, len - 1, want, want_len, true);
	}
	/* random splits */
	for (int round = 0; round < 50 && len > 1; round++) {
		size_t n = (size_t)rand_r(seed) % (len < 64 ? len : 64);
		for (size_t k = 0; k < n; k++)
			cuts[k] = (size_t)rand_r(seed) % (len + 1);
		for (size_t k = 1; k < n; k++) /* insertion sort */
			for (size_t m = k; m > 0 && cuts[m - 1] > cuts[m]; m--) {
				size_t t = cuts[m];
				cuts[m] = cuts[m - 1];
				cuts[m - 1] = t;
			}
		check_split(&sp, tc->text, len, cuts, n, want, want_len, true);
	}
	splitter_release(&sp);
	free(got);
	redactor_free(r);
}

/* Every text case, streamed in every way, gives the one-shot result. */
static void test_stream_splits(void **state UNUSED)
{
	static const struct text_case more[] = {
		{ { V("A", "abcdef"), V("B", "abcdefgh"), V("C", "xyzw") },
		  "abcdeabcdefgabcdefghabcdefgxyzabcdefghxyzwxyz", NULL },
		{ { V("A", "aaaa"), V("B", "aaab") }, "aaaaaaabaaabaaaaaaa", NULL },
		{ { V("J", "j\"s\\n") }, "j\"s\\n j\\\"s\\\\n j\\\\\\\"s\\\\\\\\n j\\\"s\\", NULL },
		{ { V("T", "token-0123456789") }, "log line token-012345678 token-0123456789 token-", NULL },
	};
	unsigned seed = 11;

	for (size_t i = 0; i < ARRAY_SIZE(text_cases); i++)
		check_stream_case(&text_cases[i], &seed);
	for (size_t i = 0; i < ARRAY_SIZE(more); i++)
		check_stream_case(&more[i], &seed);
}

/* Large writes (beyond the stream's buffer) with values across the
 * buffer's edges, against one-shot redaction. */
static void test_stream_large(void **state UNUSED)
{
	static const struct value values[] = { V("K", "key-ABCDEFGHIJKLMNOP"), V("Q", "q\"uoted"), VEND };
	struct redactor *r = build(values);
	size_t len = 300000, want_len, cuts[8];
	struct splitter sp;
	char *text = malloc(len + 1), *want;
	unsigned seed = 7;

	assert_non_null(text);
	for (size_t i = 0; i < len; i++)
		text[i] = (char)('a' + rand_r(&seed) % 26);
	for (size_t at = 100; at + 40 < len; at += 997 + rand_r(&seed) % 5000) {
		const char *v = rand_r(&seed) % 2 ? "key-ABCDEFGHIJKLMNOP" : "q\\\"uoted";
		memcpy(text + at, v, strlen(v));
	}
	text[len] = '\0';
	assert_int_equal(redact_text(r, text, len, &want, &want_len), 1);
	splitter_init(&sp, r, values);
	for (int round = 0; round < 20; round++) {
		for (size_t k = 0; k < ARRAY_SIZE(cuts); k++)
			cuts[k] = (size_t)rand_r(&seed) % (len + 1);
		for (size_t k = 1; k < ARRAY_SIZE(cuts); k++)
			for (size_t m = k; m > 0 && cuts[m - 1] > cuts[m]; m--) {
				size_t t = cuts[m];
				cuts[m] = cuts[m - 1];
				cuts[m - 1] = t;
			}
		check_split(&sp, text, len, cuts, ARRAY_SIZE(cuts), want, want_len, false);
	}
	splitter_release(&sp);
	assert_null(strstr(want, "key-ABCDEFGHIJKLMNOP"));
	free(want);
	free(text);
	redactor_free(r);
}

/* What is held back is bounded by the longest form, released by finish
 * as it is, and errors of emit come back. */
static void test_stream_pending(void **state UNUSED)
{
	static const struct value values[] = { V("S", "0123456789"), VEND };
	struct redactor *r = build(values);
	struct collect c = { 0 };
	struct redact_stream *s;

	assert_int_equal(redact_stream_new(r, collect_emit, &c, &s), 0);
	assert_int_equal(redact_stream_feed(s, "abc 012345678", 13), 0);
	assert_int_equal(redact_stream_pending(s), 9);
	assert_string_equal(c.buf, "abc ");
	assert_int_equal(redact_stream_feed(s, "", 0), 0);
	assert_int_equal(redact_stream_pending(s), 9);
	assert_int_equal(redact_stream_feed(s, "0", 1), 0); /* "0123456780": not the value */
	assert_int_equal(redact_stream_pending(s), 1);
	assert_string_equal(c.buf, "abc 012345678");
	assert_int_equal(redact_stream_finish(s), 0);
	assert_string_equal(c.buf, "abc 0123456780");
	assert_int_equal(redact_stream_finish(s), 0); /* nothing left */
	assert_string_equal(c.buf, "abc 0123456780");

	/* the emit's error is returned */
	c.fail_with = -EIO;
	assert_int_equal(redact_stream_feed(s, "x 0123456789 y", 14), -EIO);
	redact_stream_free(s);

	/* held bytes are dropped by free, not emitted */
	c.fail_with = 0;
	c.len = 0;
	assert_int_equal(redact_stream_new(r, collect_emit, &c, &s), 0);
	assert_int_equal(redact_stream_feed(s, "01234", 5), 0);
	assert_int_equal(c.len, 0);
	redact_stream_free(s);
	assert_int_equal(c.len, 0);

	/* no redactor: everything goes through at once */
	assert_int_equal(redact_stream_new(NULL, collect_emit, &c, &s), 0);
	assert_int_equal(redact_stream_feed(s, "0123456789", 10), 0);
	assert_int_equal(redact_stream_pending(s), 0);
	assert_int_equal(c.len, 10);
	redact_stream_free(s);
	free(c.buf);
	redactor_free(r);
	assert_null(redact_stream_free(NULL));
}

/* --- adding --- */

static void test_add(void **state UNUSED)
{
	static const char *bad_names[] = {
		"", "1ABC", "A-B", "A B", "A.B", "\xc3\xa9",
		"A2345678901234567890123456789012345678901234567890123456789012345", /* 65 */
	};
	char name64[SECRET_NAME_MAX + 1], name[16];
	uint8_t *big = calloc(1, SECRET_VALUE_MAX + 1);
	struct redactor *r;

	assert_non_null(big);
	assert_int_equal(redactor_new(&r), 0);
	assert_int_equal(redactor_count(r), 0);
	for (size_t i = 0; i < ARRAY_SIZE(bad_names); i++)
		if (redactor_add(r, bad_names[i], (const uint8_t *)"value", 5) != -EINVAL)
			fail_msg("name \"%s\" accepted", bad_names[i]);
	assert_int_equal(redactor_add(r, NULL, (const uint8_t *)"value", 5), -EINVAL);
	memset(name64, 'N', SECRET_NAME_MAX);
	name64[SECRET_NAME_MAX] = '\0';
	assert_int_equal(redactor_add(r, name64, (const uint8_t *)"value", 5), 0);
	assert_int_equal(redactor_add(r, "_x9", (const uint8_t *)"other", 5), 0);
	assert_int_equal(redactor_add(r, "SHORT", (const uint8_t *)"abc", SECRET_VALUE_MIN - 1), -EINVAL);
	assert_int_equal(redactor_add(r, "SHORT", (const uint8_t *)"abcd", SECRET_VALUE_MIN), 0);
	assert_int_equal(redactor_add(r, "BIG", big, SECRET_VALUE_MAX + 1), -EINVAL);
	memset(big, 'z', SECRET_VALUE_MAX);
	assert_int_equal(redactor_add(r, "BIG", big, SECRET_VALUE_MAX), 0);
	assert_int_equal(redactor_add(r, "AGAIN", (const uint8_t *)"value", 5), 0); /* kept as name64 */
	assert_int_equal(redactor_count(r), 4);
	redactor_free(r);
	assert_null(redactor_free(NULL));
	assert_int_equal(redactor_count(NULL), 0);

	/* the limit on forms: a value with a quote takes three */
	assert_int_equal(redactor_new(&r), 0);
	for (int i = 0;; i++) {
		char v[32];
		int rc;

		snprintf(name, sizeof(name), "S%d", i);
		snprintf(v, sizeof(v), "\"quoted %d\"", i);
		rc = redactor_add(r, name, (const uint8_t *)v, strlen(v));
		if (rc == -ENOSPC) {
			assert_int_equal(i, 4 * SECRETS_MAX / 3);
			break;
		}
		assert_int_equal(rc, 0);
	}
	/* a plain value takes one form: one still fits, then none */
	assert_int_equal(redactor_add(r, "PLAIN", (const uint8_t *)"plain1", 6), 0);
	assert_int_equal(redactor_add(r, "PLAIN2", (const uint8_t *)"plain2", 6), -ENOSPC);
	assert_int_equal(redactor_count(r), 4 * SECRETS_MAX / 3 + 1);
	{
		char *got;
		size_t len;
		assert_int_equal(redact_text(r, "\"quoted 7\" plain1 plain2", 24, &got, &len), 1);
		assert_string_equal(got, "[redacted:S7] [redacted:PLAIN] plain2");
		free(got);
	}
	redactor_free(r);
	free(big);
}

/* redactor_add_secrets takes a decrypted secrets file's values. */
static void test_add_secrets(void **state UNUSED)
{
	struct secret items[2] = { { .name = "DB_PASSWORD" }, { .name = "API_KEY" } };
	struct secrets s = { .items = items, .n = 2 };
	struct redactor *r;
	char *got;
	size_t len;

	items[0].value = (uint8_t *)"hunter22";
	items[0].len = 8;
	items[1].value = (uint8_t *)"sk_live_123";
	items[1].len = 11;
	assert_int_equal(redactor_new(&r), 0);
	assert_int_equal(redactor_add_secrets(r, &s), 0);
	assert_int_equal(redactor_count(r), 2);
	assert_int_equal(redact_text(r, "db=hunter22 key=sk_live_123", 27, &got, &len), 1);
	assert_string_equal(got, "db=[redacted:DB_PASSWORD] key=[redacted:API_KEY]");
	free(got);
	items[1].len = 2;
	assert_int_equal(redactor_add_secrets(r, &s), -EINVAL);
	redactor_free(r);
}

/* --- serialization --- */

static void test_serialize(void **state UNUSED)
{
	static const struct value values[] = {
		V("A", "alpha-secret"), V("E", ESCAPED), VL("BIN", "\0\0\0\0\xff", 5), V("U", "\xc3\xa9\xc3\xa9"),
		VEND,
	};
	static const char text[] = "alpha-secret " ESCAPED " \\\"ss\\\\w" " \xc3\xa9\xc3\xa9";
	struct redactor *r = build(values), *copy;
	uint8_t *blob, *bad;
	size_t len, want_len, got_len;
	char *want, *got;

	assert_int_equal(redactor_serialize(r, &blob, &len), 0);
	assert_int_equal(redactor_deserialize(blob, len, &copy), 0);
	assert_int_equal(redactor_count(copy), 4);
	assert_int_equal(redact_text(r, text, sizeof(text) - 1, &want, &want_len), 1);
	assert_int_equal(redact_text(copy, text, sizeof(text) - 1, &got, &got_len), 1);
	assert_int_equal(got_len, want_len);
	assert_memory_equal(got, want, want_len);
	free(got);
	free(want);
	redactor_free(copy);

	/* every truncation is refused, and so is anything appended */
	for (size_t n = 0; n < len; n++) {
		copy = (struct redactor *)1;
		if (redactor_deserialize(blob, n, &copy) != -EBADMSG)
			fail_msg("a blob cut to %zu of %zu bytes was accepted", n, len);
		assert_ptr_equal(copy, (struct redactor *)1);
	}
	bad = malloc(len + 1);
	assert_non_null(bad);
	memcpy(bad, blob, len);
	bad[len] = 0;
	assert_int_equal(redactor_deserialize(bad, len + 1, &copy), -EBADMSG);
	/* a bad magic; a count too high; a name with a bad character, a NUL,
	 * length 0; a value too short */
	struct { size_t at; uint8_t byte; } edits[] = {
		{ 0, 'X' }, { 4, 5 }, { 7, 1 }, { 9, '-' }, { 9, 0 }, { 8, 0 }, { 10, 3 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(edits); i++) {
		memcpy(bad, blob, len);
		bad[edits[i].at] = edits[i].byte;
		if (redactor_deserialize(bad, len, &copy) != -EBADMSG)
			fail_msg("edit %zu (byte %zu = %u) accepted", i, edits[i].at, edits[i].byte);
	}
	assert_int_equal(redactor_deserialize(NULL, 0, &copy), -EBADMSG);
	free(bad);
	sodium_free(blob);

	/* an empty redactor, and none at all */
	redactor_free(r);
	assert_int_equal(redactor_new(&r), 0);
	assert_int_equal(redactor_serialize(r, &blob, &len), 0);
	assert_int_equal(len, 8);
	assert_int_equal(redactor_deserialize(blob, len, &copy), 0);
	assert_int_equal(redactor_count(copy), 0);
	assert_int_equal(redact_text(copy, "anything", 8, &got, &got_len), 0);
	redactor_free(copy);
	sodium_free(blob);
	redactor_free(r);
	assert_int_equal(redactor_serialize(NULL, &blob, &len), 0);
	assert_int_equal(len, 8);
	sodium_free(blob);
	assert_int_equal(redact_text(NULL, "anything", 8, &got, &got_len), 0);
}

/* --- the process-wide redactor --- */

#define GLOBAL_TEXT "user=alice pw=first-secret key=second-secret"

static atomic_bool readers_stop;
static atomic_int reads;

static void *reader(void *arg)
{
	(void)arg;
	while (!atomic_load(&readers_stop)) {
		char *got = NULL, *tofree;
		size_t len;
		const char *s;
		int rc = redact_global_text(GLOBAL_TEXT, strlen(GLOBAL_TEXT), &got, &len);

		/* one of the redactors the setter installs, or none */
		if (rc < 0 || (rc == 1 && strcmp(got, "user=alice pw=[redacted:ONE] key=second-secret") != 0 &&
			       strcmp(got, "user=alice pw=first-secret key=[redacted:TWO]") != 0 &&
			       strcmp(got, "user=alice pw=[redacted:ONE] key=[redacted:TWO]") != 0)) {
			fprintf(stderr, "reader: %d %s\n", rc, got ? got : "");
			abort();
		}
		free(got);
		s = redact_global_str(GLOBAL_TEXT, &tofree);
		if (!s || (tofree && s != tofree) || (!tofree && s != (const char *)GLOBAL_TEXT))
			abort();
		free(tofree);
		atomic_fetch_add(&reads, 1);
	}
	return NULL;
}

static struct redactor *global_with(const char *name, const char *value)
{
	struct redactor *r;

	assert_int_equal(redactor_new(&r), 0);
	if (name)
		assert_int_equal(redactor_add(r, name, (const uint8_t *)value, strlen(value)), 0);
	return r;
}

static void test_global(void **state UNUSED)
{
	pthread_t threads[3];
	struct redactor *copy;
	uint64_t until;
	char *tofree, *got;
	size_t len;
	int sets = 0;

	/* none set */
	assert_int_equal(redact_global_text(GLOBAL_TEXT, strlen(GLOBAL_TEXT), &got, &len), 0);
	assert_ptr_equal(redact_global_str(GLOBAL_TEXT, &tofree), GLOBAL_TEXT);
	assert_null(tofree);
	copy = (struct redactor *)1;
	assert_int_equal(redact_global_copy(&copy), 0);
	assert_null(copy);

	/* set while three threads read, for 300 ms */
	atomic_store(&readers_stop, false);
	atomic_store(&reads, 0);
	for (size_t i = 0; i < ARRAY_SIZE(threads); i++)
		assert_int_equal(pthread_create(&threads[i], NULL, reader, NULL), 0);
	until = time_now_ms() + 300;
	while (time_now_ms() < until) {
		switch (sets++ % 4) {
		case 0: redact_global_set(global_with("ONE", "first-secret")); break;
		case 1: redact_global_set(global_with("TWO", "second-secret")); break;
		case 2: {
			struct redactor *r = global_with("ONE", "first-secret");
			assert_int_equal(redactor_add(r, "TWO", (const uint8_t *)"second-secret", 13), 0);
			redact_global_set(r);
			break;
		}
		default: redact_global_set(sets % 8 == 3 ? NULL : global_with(NULL, NULL)); break;
		}
		if (sets % 16 == 0) {
			assert_int_equal(redact_global_copy(&copy), 0);
			redactor_free(copy);
		}
	}
	atomic_store(&readers_stop, true);
	for (size_t i = 0; i < ARRAY_SIZE(threads); i++)
		assert_int_equal(pthread_join(threads[i], NULL), 0);
	assert_true(sets > 10);
	assert_true(atomic_load(&reads) > 10);

	/* the last one stays; its copy hides the same */
	redact_global_set(global_with("TWO", "second-secret"));
	assert_int_equal(redact_global_copy(&copy), 0);
	assert_non_null(copy);
	assert_int_equal(redactor_count(copy), 1);
	assert_int_equal(redact_text(copy, GLOBAL_TEXT, strlen(GLOBAL_TEXT), &got, &len), 1);
	assert_string_equal(got, "user=alice pw=first-secret key=[redacted:TWO]");
	free(got);
	redactor_free(copy);
	assert_string_equal(redact_global_str(GLOBAL_TEXT, &tofree), "user=alice pw=first-secret key=[redacted:TWO]");
	free(tofree);
	redact_global_set(NULL);
	assert_ptr_equal(redact_global_str(GLOBAL_TEXT, &tofree), GLOBAL_TEXT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text),	      cmocka_unit_test(test_json_forms),
		cmocka_unit_test(test_stream_splits), cmocka_unit_test(test_stream_large),
		cmocka_unit_test(test_stream_pending), cmocka_unit_test(test_add),
		cmocka_unit_test(test_add_secrets),   cmocka_unit_test(test_serialize),
		cmocka_unit_test(test_global),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}

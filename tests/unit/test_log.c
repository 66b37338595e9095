/* test_log.c - unit tests of the error log (src/base/log.c) and of the
 * escaping both logs use (src/base/escape.c).
 *
 * escape_json and escape_logfmt_bare are table-driven: each row gives the
 * input bytes, the room, and the exact output and bytes consumed; each
 * mismatch is printed with the row's name.  The log tests write to a
 * temporary file and read back what one call wrote: every JSON line must
 * parse (jansson) and hold exactly the documented keys with the expected
 * values; logfmt lines are compared as text.  The fields come from the
 * call (log_fields) and from scopes (LOG_SCOPE), and the filter (the
 * daemon's redactor) must reach the message and every string value.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include "base/escape.h"
#include "base/log.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- escape_json ---------------------------------------------------------- */

struct escape_case {
	const char *name;
	const char *in;
	size_t len;          /* 0: strlen(in) */
	size_t cap;          /* 0: plenty */
	const char *want;
	size_t used;         /* 0: all of in */
};

static const struct escape_case escape_cases[] = {
	{ "plain ASCII", "GET /shop?id=42", 0, 0, "GET /shop?id=42", 0 },
	{ "empty", "", 0, 0, "", 0 },
	{ "quote and backslash", "a\"b\\c", 0, 0, "a\\\"b\\\\c", 0 },
	{ "short escapes", "\b\f\n\r\t", 0, 0, "\\b\\f\\n\\r\\t", 0 },
	{ "other control characters, upper-case hex", "\x01\x1f\x1b", 0, 0, "\\u0001\\u001F\\u001B", 0 },
	{ "NUL inside the length", "a\0b", 3, 0, "a\\u0000b", 0 },
	{ "DEL as it is (as jansson writes it)", "a\x7f", 0, 0, "a\x7f", 0 },
	{ "slash as it is", "a/b", 0, 0, "a/b", 0 },
	{ "valid UTF-8: 2, 3 and 4 bytes", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 0, 0,
	  "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 0 },
	{ "U+FFFF and U+10FFFF", "\xef\xbf\xbf\xf4\x8f\xbf\xbf", 0, 0, "\xef\xbf\xbf\xf4\x8f\xbf\xbf", 0 },
	{ "a stray continuation byte", "a\x80z", 0, 0, "a\\ufffdz", 0 },
	{ "0xff", "\xff", 0, 0, "\\ufffd", 0 },
	{ "overlong 2-byte (C0 AF)", "\xc0\xaf", 0, 0, "\\ufffd\\ufffd", 0 },
	{ "overlong 3-byte (E0 80 AF)", "\xe0\x80\xaf", 0, 0, "\\ufffd\\ufffd\\ufffd", 0 },
	{ "overlong 4-byte (F0 80 80 AF)", "\xf0\x80\x80\xaf", 0, 0, "\\ufffd\\ufffd\\ufffd\\ufffd", 0 },
	{ "a surrogate (ED A0 80)", "\xed\xa0\x80", 0, 0, "\\ufffd\\ufffd\\ufffd", 0 },
	{ "past U+10FFFF (F4 90 80 80)", "\xf4\x90\x80\x80", 0, 0, "\\ufffd\\ufffd\\ufffd\\ufffd", 0 },
	{ "F5 lead byte", "\xf5\x80\x80\x80", 0, 0, "\\ufffd\\ufffd\\ufffd\\ufffd", 0 },
	{ "a sequence cut by the end", "ok\xe2\x82", 0, 0, "ok\\ufffd\\ufffd", 0 },
	{ "a sequence cut by ASCII", "\xc3(", 0, 0, "\\ufffd(", 0 },
	{ "a quote after an invalid lead byte", "\xc3\"", 0, 0, "\\ufffd\\\"", 0 },
	{ "room: plain cut", "abcdef", 0, 3, "abc", 3 },
	{ "room: an escape is not cut", "a\"b", 0, 2, "a", 1 },
	{ "room: \\u00XX is not cut", "a\x01", 0, 6, "a", 1 },
	{ "room: exactly a \\u00XX", "\x01", 0, 6, "\\u0001", 0 },
	{ "room: a UTF-8 sequence is not cut", "a\xe2\x82\xac", 0, 3, "a", 1 },
	{ "room: U+FFFD escape is not cut", "ab\x80", 0, 7, "ab", 2 },
};

static void test_escape_json(void **state)
{
	char out[256];
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < N(escape_cases); i++) {
		const struct escape_case *c = &escape_cases[i];
		size_t len = c->len ? c->len : strlen(c->in), cap = c->cap ? c->cap : sizeof(out);
		size_t used = 12345, want_used = c->used ? c->used : len;
		size_t n;

		memset(out, '#', sizeof(out));
		n = escape_json(out, cap, c->in, len, &used);
		if (n != strlen(c->want) || memcmp(out, c->want, n) || used != want_used ||
		    (n < sizeof(out) && out[n] != '#')) {
			print_error("escape_json: %s: got %zu bytes \"%.*s\" used %zu, want \"%s\" used %zu\n", c->name,
				    n, (int)n, out, used, c->want, want_used);
			bad++;
		}
	}
	/* the output of every row is valid inside a JSON string */
	for (size_t i = 0; i < N(escape_cases); i++) {
		const struct escape_case *c = &escape_cases[i];
		char doc[300];
		size_t n;
		json_t *j;

		doc[0] = '"';
		n = escape_json(doc + 1, sizeof(doc) - 3, c->in, c->len ? c->len : strlen(c->in), NULL);
		doc[n + 1] = '"';
		doc[n + 2] = 0;
		j = json_loads(doc, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
		if (!j) {
			print_error("escape_json: %s: not a JSON string: %s\n", c->name, doc);
			bad++;
		}
		json_decref(j);
	}
	assert_int_equal(bad, 0);
	/* NULL used is allowed */
	assert_int_equal(escape_json(out, sizeof(out), "x", 1, NULL), 1);
}

/* Every byte value alone and after 'a' round-trips through jansson as
 * itself (ASCII, DEL) or as U+FFFD (a byte >= 0x80 alone is never UTF-8). */
static void test_escape_json_every_byte(void **state)
{
	(void)state;
	for (int b = 0; b < 256; b++) {
		char in[2] = { 'a', (char)b }, doc[16];
		size_t n;
		json_t *j;

		doc[0] = '"';
		n = escape_json(doc + 1, sizeof(doc) - 3, in, 2, NULL);
		doc[n + 1] = '"';
		doc[n + 2] = 0;
		j = json_loads(doc, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
		assert_non_null(j);
		if (b < 0x80) {
			assert_int_equal(json_string_length(j), 2);
			assert_int_equal((unsigned char)json_string_value(j)[1], b);
		} else {
			assert_string_equal(json_string_value(j), "a\xef\xbf\xbd");
		}
		json_decref(j);
	}
}

struct bare_case {
	const char *in;
	bool bare;
};

static void test_escape_logfmt_bare(void **state)
{
	static const struct bare_case cases[] = {
		{ "shop", true },        { "1.2.0-rc.1+b7", true }, { "127.0.0.1:8080", true },
		{ "a/b?c&d", true },     { "", false },             { "a b", false },
		{ "a=b", false },        { "a\"b", false },         { "a\tb", false },
		{ "caf\xc3\xa9", false }, { "a\x7f", false },        { "back\\slash", true },
	};
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		if (escape_logfmt_bare(cases[i].in, strlen(cases[i].in)) != cases[i].bare) {
			print_error("escape_logfmt_bare(\"%s\"): got %d\n", cases[i].in, !cases[i].bare);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

/* ---- the log lines --------------------------------------------------------- */

static char log_path[64];
static long log_read_at;

static int setup_log(void **state)
{
	int fd;

	(void)state;
	snprintf(log_path, sizeof(log_path), "/tmp/cutover-test-log-XXXXXX");
	fd = mkstemp(log_path);
	if (fd < 0)
		return -1;
	close(fd);
	log_read_at = 0;
	log_set_level(LOG_LEVEL_INFO);
	log_set_filter(NULL);
	return log_open(log_path);
}

static int teardown_log(void **state)
{
	(void)state;
	log_close();
	log_set_filter(NULL);
	log_config_format(LOG_FORMAT_LOGFMT);
	unlink(log_path);
	return 0;
}

/* What was written since the last call (malloc'd, NUL-terminated). */
static char *log_take(void)
{
	FILE *f = fopen(log_path, "r");
	char *text;
	long end;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	end = ftell(f);
	text = calloc(1, (size_t)(end - log_read_at) + 1);
	assert_non_null(text);
	fseek(f, log_read_at, SEEK_SET);
	assert_int_equal(fread(text, 1, (size_t)(end - log_read_at), f), (size_t)(end - log_read_at));
	fclose(f);
	log_read_at = end;
	return text;
}

/* The one JSON line written since the last call, parsed; its ts and
 * level are checked here (RFC 3339, UTC, milliseconds). */
static json_t *log_take_json(const char *level)
{
	char *text = log_take();
	size_t len = strlen(text);
	json_error_t err;
	json_t *j;
	regex_t re;

	assert_true(len > 0 && len <= 4096);
	assert_int_equal(text[len - 1], '\n');
	assert_null(memchr(text, '\n', len - 1)); /* one line */
	j = json_loads(text, 0, &err);
	if (!j)
		print_error("not JSON (%s): %s", err.text, text);
	assert_non_null(j);
	assert_int_equal(regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$",
				 REG_EXTENDED | REG_NOSUB), 0);
	assert_true(json_is_string(json_object_get(j, "ts")));
	assert_int_equal(regexec(&re, json_string_value(json_object_get(j, "ts")), 0, NULL, 0), 0);
	regfree(&re);
	assert_string_equal(json_string_value(json_object_get(j, "level")), level);
	assert_true(json_is_string(json_object_get(j, "msg")));
	free(text);
	return j;
}

/* The keys of j other than ts, level and msg, in order, comma-separated. */
static void keys_of(json_t *j, char *out, size_t size)
{
	const char *key;
	json_t *v;

	out[0] = 0;
	json_object_foreach(j, key, v) {
		if (!strcmp(key, "ts") || !strcmp(key, "level") || !strcmp(key, "msg"))
			continue;
		snprintf(out + strlen(out), size - strlen(out), "%s%s", out[0] ? "," : "", key);
	}
}

static void test_log_json_message(void **state)
{
	json_t *j;

	(void)state;
	log_config_format(LOG_FORMAT_JSON);
	log_info("plain %d", 42);
	j = log_take_json("info");
	assert_string_equal(json_string_value(json_object_get(j, "msg")), "plain 42");
	assert_int_equal(json_object_size(j), 3);
	json_decref(j);

	log_warn("quote \" backslash \\ newline \n tab \t ctl \x01 bad \xff end");
	j = log_take_json("warn");
	assert_string_equal(json_string_value(json_object_get(j, "msg")),
			    "quote \" backslash \\ newline \n tab \t ctl \x01 bad \xef\xbf\xbd end");
	json_decref(j);

	log_error("caf\xc3\xa9 \xe2\x82\xac");
	j = log_take_json("error");
	assert_string_equal(json_string_value(json_object_get(j, "msg")), "caf\xc3\xa9 \xe2\x82\xac");
	json_decref(j);

	log_debug("below the level");
	{
		char *text = log_take();
		assert_string_equal(text, "");
		free(text);
	}
	assert_false(log_enabled(LOG_LEVEL_DEBUG));
	assert_true(log_enabled(LOG_LEVEL_WARN));
}

static void test_log_json_long(void **state)
{
	char big[3000];
	json_t *j;

	(void)state;
	log_config_format(LOG_FORMAT_JSON);
	/* each '"' doubles: the message (cut at 1023 bytes) escapes past the
	 * line; the line stays one valid JSON object of at most 4096 bytes */
	memset(big, '"', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	log_fields(LOG_LEVEL_INFO, LOG_FIELDS(LOG_STR("service", big), LOG_STR("version", big), LOG_INT("pid", 7)),
		   "%s", big);
	j = log_take_json("info");
	assert_true(strlen(json_string_value(json_object_get(j, "msg"))) > 0);
	json_decref(j);
	/* a multi-byte character cut by the message's size is left out whole,
	 * not written as U+FFFD; one that fits stays */
	memset(big, 'x', sizeof(big));
	memcpy(big + 1022, "\xe2\x82\xac", 4);
	log_info("%s", big);
	j = log_take_json("info");
	assert_int_equal(strlen(json_string_value(json_object_get(j, "msg"))), 1022);
	json_decref(j);
	memcpy(big + 1020, "\xe2\x82\xac", 4);
	log_info("%s", big);
	j = log_take_json("info");
	assert_string_equal(json_string_value(json_object_get(j, "msg")) + 1020, "\xe2\x82\xac");
	json_decref(j);
}

struct field_case {
	const char *name;
	const char *keys;    /* the extra keys in order */
	const char *check;   /* key=value pairs (JSON values as text), ';'-separated */
};

/* Check each "key=value" of c->check against j (a number is compared as
 * its decimal text, a string as itself). */
static int check_fields(const struct field_case *c, json_t *j)
{
	char keys[256], pairs[512], *save = NULL;
	int bad = 0;

	keys_of(j, keys, sizeof(keys));
	if (strcmp(keys, c->keys)) {
		print_error("%s: keys %s, want %s\n", c->name, keys, c->keys);
		bad++;
	}
	snprintf(pairs, sizeof(pairs), "%s", c->check);
	for (char *p = strtok_r(pairs, ";", &save); p; p = strtok_r(NULL, ";", &save)) {
		char *eq = strchr(p, '='), got[200];
		json_t *v;

		*eq = 0;
		v = json_object_get(j, p);
		if (json_is_integer(v))
			snprintf(got, sizeof(got), "%lld", (long long)json_integer_value(v));
		else
			snprintf(got, sizeof(got), "%s", v ? json_string_value(v) : "(none)");
		if (strcmp(got, eq + 1)) {
			print_error("%s: %s is %s, want %s\n", c->name, p, got, eq + 1);
			bad++;
		}
	}
	return bad;
}

static void log_in_scope(void)
{
	LOG_SCOPE(LOG_STR("instance", "127.0.0.1:4001"), LOG_INT("pid", 4242), LOG_STR("version", "2.0.0"));

	log_info("inner");
}

static void test_log_fields(void **state)
{
	static const struct field_case cases[] = {
		{ "call fields", "service,version,deployment_id", "service=shop;version=1.2.0;deployment_id=17" },
		{ "a NULL string is left out", "service", "service=shop" },
		{ "reserved keys are skipped", "service", "service=shop" },
		{ "scope fields", "service,deployment_id", "service=shop;deployment_id=3" },
		{ "nested scope: the inner replaces", "service,deployment_id,instance,pid,version",
		  "service=shop;deployment_id=3;instance=127.0.0.1:4001;pid=4242;version=2.0.0" },
		{ "after the inner scope ended", "service,deployment_id", "service=shop;deployment_id=3" },
		{ "a call field replaces a scope field", "deployment_id,service", "deployment_id=3;service=cart" },
		{ "escaped values", "service,path", "service=a\"b\\c\nd;path=\xef\xbf\xbd" },
		{ "negative and large numbers", "a,b", "a=-5;b=9223372036854775807" },
		{ "every scope ended", "", "" },
	};
	json_t *j;
	int bad = 0;

	(void)state;
	log_config_format(LOG_FORMAT_JSON);
	log_fields(LOG_LEVEL_INFO,
		   LOG_FIELDS(LOG_STR("service", "shop"), LOG_STR("version", "1.2.0"), LOG_INT("deployment_id", 17)),
		   "m");
	j = log_take_json("info");
	bad += check_fields(&cases[0], j);
	json_decref(j);
	log_fields(LOG_LEVEL_WARN, LOG_FIELDS(LOG_STR("service", "shop"), LOG_STR("version", NULL)), "m");
	j = log_take_json("warn");
	bad += check_fields(&cases[1], j);
	json_decref(j);
	log_fields(LOG_LEVEL_INFO, LOG_FIELDS(LOG_STR("msg", "x"), LOG_STR("ts", "x"), LOG_STR("level", "x"),
					      LOG_STR("service", "shop")), "m");
	j = log_take_json("info");
	bad += check_fields(&cases[2], j);
	assert_string_equal(json_string_value(json_object_get(j, "msg")), "m");
	json_decref(j);
	{
		LOG_SCOPE(LOG_STR("service", "shop"), LOG_INT("deployment_id", 3), LOG_STR("unset", NULL));

		log_info("outer");
		j = log_take_json("info");
		bad += check_fields(&cases[3], j);
		json_decref(j);
		log_in_scope();
		j = log_take_json("info");
		bad += check_fields(&cases[4], j);
		json_decref(j);
		log_info("outer again");
		j = log_take_json("info");
		bad += check_fields(&cases[5], j);
		json_decref(j);
		log_fields(LOG_LEVEL_INFO, LOG_FIELDS(LOG_STR("service", "cart")), "m");
		j = log_take_json("info");
		bad += check_fields(&cases[6], j);
		json_decref(j);
	}
	log_fields(LOG_LEVEL_INFO, LOG_FIELDS(LOG_STR("service", "a\"b\\c\nd"), LOG_STR("path", "\x80")), "m");
	j = log_take_json("info");
	bad += check_fields(&cases[7], j);
	json_decref(j);
	log_fields(LOG_LEVEL_INFO, LOG_FIELDS(LOG_INT("a", -5), LOG_INT("b", 9223372036854775807LL)), "m");
	j = log_take_json("info");
	bad += check_fields(&cases[8], j);
	json_decref(j);
	log_info("no scope");
	j = log_take_json("info");
	bad += check_fields(&cases[9], j);
	json_decref(j);
	assert_int_equal(bad, 0);
}

static void test_log_scope_overflow(void **state)
{
	char key[LOG_SCOPE_MAX + 4][8];
	unsigned marks[LOG_SCOPE_MAX + 4];
	json_t *j;

	(void)state;
	log_config_format(LOG_FORMAT_JSON);
	for (int i = 0; i < LOG_SCOPE_MAX + 4; i++) {
		snprintf(key[i], sizeof(key[i]), "k%d", i);
		marks[i] = log_scope_begin(LOG_FIELDS(LOG_INT(key[i], i)));
	}
	log_info("full");
	j = log_take_json("info");
	assert_int_equal(json_object_size(j), 3 + LOG_SCOPE_MAX); /* the extra ones are dropped */
	json_decref(j);
	for (int i = LOG_SCOPE_MAX + 3; i >= 0; i--)
		log_scope_end(&marks[i]);
	log_info("empty");
	j = log_take_json("info");
	assert_int_equal(json_object_size(j), 3);
	json_decref(j);
	/* a long scope value is cut to LOG_SCOPE_VALUE_MAX - 1 bytes */
	{
		char big[400];
		memset(big, 'v', sizeof(big) - 1);
		big[sizeof(big) - 1] = 0;
		LOG_SCOPE(LOG_STR("service", big));
		log_info("long");
		j = log_take_json("info");
		assert_int_equal(strlen(json_string_value(json_object_get(j, "service"))), LOG_SCOPE_VALUE_MAX - 1);
		json_decref(j);
	}
}

static const char *hide_hunter(const char *msg, char **tofree)
{
	const char *at = strstr(msg, "hunter2-secret");
	char *out;

	if (!at)
		return msg;
	out = malloc(strlen(msg) + 32);
	sprintf(out, "%.*s[redacted:PW]%s", (int)(at - msg), msg, at + strlen("hunter2-secret"));
	*tofree = out;
	return out;
}

static void test_log_filter(void **state)
{
	json_t *j;
	char *text;

	(void)state;
	log_set_filter(hide_hunter);
	log_config_format(LOG_FORMAT_JSON);
	{
		LOG_SCOPE(LOG_STR("instance", "x hunter2-secret y"));
		log_fields(LOG_LEVEL_WARN, LOG_FIELDS(LOG_STR("request_id", "hunter2-secret"), LOG_INT("pid", 1)),
			   "the password is hunter2-secret");
	}
	text = log_take();
	assert_null(strstr(text, "hunter2"));
	j = json_loads(text, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "msg")), "the password is [redacted:PW]");
	assert_string_equal(json_string_value(json_object_get(j, "request_id")), "[redacted:PW]");
	assert_string_equal(json_string_value(json_object_get(j, "instance")), "x [redacted:PW] y");
	json_decref(j);
	free(text);
	log_config_format(LOG_FORMAT_LOGFMT);
	log_fields(LOG_LEVEL_WARN, LOG_FIELDS(LOG_STR("request_id", "hunter2-secret")), "hunter2-secret");
	text = log_take();
	assert_null(strstr(text, "hunter2"));
	free(text);
}

struct logfmt_case {
	const char *name;
	const char *value;
	const char *want; /* what follows "k=" */
};

static void test_log_logfmt(void **state)
{
	static const struct logfmt_case cases[] = {
		{ "a word", "shop", "shop" },
		{ "a space", "a b", "\"a b\"" },
		{ "an equals sign", "a=b", "\"a=b\"" },
		{ "a quote", "a\"b", "\"a\\\"b\"" },
		{ "empty", "", "\"\"" },
		{ "a newline", "a\nb", "\"a\\nb\"" },
		{ "invalid UTF-8", "\xff", "\"\\ufffd\"" },
	};
	char *text, want[128];
	int bad = 0;

	(void)state;
	log_config_format(LOG_FORMAT_LOGFMT);
	log_fields(LOG_LEVEL_INFO, LOG_FIELDS(LOG_INT("pid", 12)), "say \"hi\"\nbye");
	text = log_take();
	/* ts=... level=info msg="..." pid=12 */
	assert_int_equal(strncmp(text, "ts=", 3), 0);
	assert_non_null(strstr(text, " level=info msg=\"say \\\"hi\\\"\\nbye\" pid=12\n"));
	free(text);
	for (size_t i = 0; i < N(cases); i++) {
		log_fields(LOG_LEVEL_INFO, LOG_FIELDS(LOG_STR("k", cases[i].value)), "m");
		text = log_take();
		snprintf(want, sizeof(want), " msg=\"m\" k=%s\n", cases[i].want);
		if (!strstr(text, want)) {
			print_error("logfmt %s: got %s want ...%s", cases[i].name, text, want);
			bad++;
		}
		free(text);
	}
	assert_int_equal(bad, 0);
}

/* The command line's format wins over the configuration's; runs last (a
 * pinned format stays pinned for the process). */
static void test_log_format_pinned(void **state)
{
	char *text;

	(void)state;
	log_config_format(LOG_FORMAT_JSON);
	assert_int_equal(log_get_format(), LOG_FORMAT_JSON);
	log_config_format(LOG_FORMAT_LOGFMT);
	assert_int_equal(log_get_format(), LOG_FORMAT_LOGFMT);
	log_set_format(LOG_FORMAT_JSON);
	log_config_format(LOG_FORMAT_LOGFMT); /* a reload with error_format: logfmt */
	assert_int_equal(log_get_format(), LOG_FORMAT_JSON);
	log_info("pinned");
	text = log_take();
	assert_int_equal(text[0], '{');
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape_json),
		cmocka_unit_test(test_escape_json_every_byte),
		cmocka_unit_test(test_escape_logfmt_bare),
		cmocka_unit_test_setup_teardown(test_log_json_message, setup_log, teardown_log),
		cmocka_unit_test_setup_teardown(test_log_json_long, setup_log, teardown_log),
		cmocka_unit_test_setup_teardown(test_log_fields, setup_log, teardown_log),
		cmocka_unit_test_setup_teardown(test_log_scope_overflow, setup_log, teardown_log),
		cmocka_unit_test_setup_teardown(test_log_filter, setup_log, teardown_log),
		cmocka_unit_test_setup_teardown(test_log_logfmt, setup_log, teardown_log),
		cmocka_unit_test_setup_teardown(test_log_format_pinned, setup_log, teardown_log),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

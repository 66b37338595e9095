/* test_cli.c - unit tests of the pure parts of src/cli: the time
 * arguments (cli_parse_time, when.c), the template language of release
 * notes (template.c) and the changelog sections (release-notes.c).
 *
 * Each is a table: every row is checked, a mismatch is printed with its
 * input, what came out and what was wanted, and the test fails once at the
 * end with the count.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "cli/cli.h"
#include "cli/report.h"
#include "cli/template.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define NOW INT64_C(1796464800000)    /* 2026-12-05T10:00:00Z */
#define DAY0 INT64_C(1796428800000)   /* 2026-12-05T00:00:00Z */
#define H INT64_C(3600000)
#define UNTOUCHED INT64_C(-424242)

/* ---- cli_parse_time ---------------------------------------------------------------- */

static void test_parse_time(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		int ret;
		int64_t want;
	} cases[] = {
		{ "now", 0, NOW },
		/* ago */
		{ "2h", 0, NOW - 2 * H },
		{ "30m", 0, NOW - 30 * 60000 },
		{ "45s", 0, NOW - 45000 },
		{ "3d", 0, NOW - 72 * H },
		{ "1w", 0, NOW - 168 * H },
		{ "1d12h", 0, NOW - 36 * H },
		{ "0s", 0, NOW },
		/* ISO, UTC unless said */
		{ "2026-12-05", 0, DAY0 },
		{ "2026-12-05T10:00", 0, DAY0 + 10 * H },
		{ "2026-12-05t10:00", 0, DAY0 + 10 * H },
		{ "2026-12-05 10:00", 0, DAY0 + 10 * H },
		{ "2026-12-05T10:00:30", 0, DAY0 + 10 * H + 30000 },
		{ "2026-12-05T10:00:30.250Z", 0, DAY0 + 10 * H + 30250 },
		{ "2026-12-05T10:00:30.5", 0, DAY0 + 10 * H + 30500 },
		{ "2026-12-05T10:00:00.123Z", 0, DAY0 + 10 * H + 123 }, /* as `cutover audit` prints it */
		{ "2026-12-05T10:00Z", 0, DAY0 + 10 * H },
		{ "2026-12-05T10:00+01:00", 0, DAY0 + 9 * H },
		{ "2026-12-05T10:00-0230", 0, DAY0 + 12 * H + 30 * 60000 },
		{ "1970-01-01", 0, 0 },
		{ "2024-02-29T23:59:59", 0, INT64_C(1709251199000) },
		{ "2000-03-01", 0, INT64_C(951868800000) },
		/* refused */
		{ NULL, -EINVAL, 0 },
		{ "", -EINVAL, 0 },
		{ "yesterday", -EINVAL, 0 },
		{ "2h ago", -EINVAL, 0 },
		{ "2", -EINVAL, 0 },
		{ "h", -EINVAL, 0 },
		{ "-2h", -EINVAL, 0 },
		{ "2x", -EINVAL, 0 },
		{ "2.5h", -EINVAL, 0 },
		{ "2h3", -EINVAL, 0 },
		{ "99999999999d", -EINVAL, 0 },
		{ "2026-13-01", -EINVAL, 0 },
		{ "2026-00-10", -EINVAL, 0 },
		{ "2025-02-29", -EINVAL, 0 },
		{ "2026-04-31", -EINVAL, 0 },
		{ "2026-12-5", -EINVAL, 0 },
		{ "26-12-05", -EINVAL, 0 },
		{ "1969-12-31", -EINVAL, 0 },
		{ "2026-12-05T24:00", -EINVAL, 0 },
		{ "2026-12-05T10:60", -EINVAL, 0 },
		{ "2026-12-05T10", -EINVAL, 0 },
		{ "2026-12-05T10:00:61", -EINVAL, 0 },
		{ "2026-12-05T10:00.5", -EINVAL, 0 },
		{ "2026-12-05T10:00:00.", -EINVAL, 0 },
		{ "2026-12-05T10:00+1", -EINVAL, 0 },
		{ "2026-12-05T10:00+25:00", -EINVAL, 0 },
		{ "2026-12-05T10:00Zjunk", -EINVAL, 0 },
		{ "2026-12-05x", -EINVAL, 0 },
		{ " 2026-12-05", -EINVAL, 0 },
	};
	int failures = 0;

	for (size_t i = 0; i < N(cases); i++) {
		int64_t v = UNTOUCHED;
		int ret = cli_parse_time(cases[i].in, NOW, &v);
		int64_t want = cases[i].ret == 0 ? cases[i].want : UNTOUCHED;

		if (ret != cases[i].ret || v != want) {
			print_error("cli_parse_time(%s): got %d %lld, want %d %lld\n", cases[i].in ? cases[i].in : "NULL",
				    ret, (long long)v, cases[i].ret, (long long)want);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

/* ---- the template language ---------------------------------------------------------- */

static const struct tpl_field item_fields[] = {
	{ "name", NULL }, { "version", NULL }, { "note", NULL }, { NULL, NULL },
};
static const struct tpl_field schema[] = {
	{ "title", NULL }, { "env", NULL }, { "count", NULL }, { "ok", NULL }, { "none", NULL }, { "ratio", NULL },
	{ "items", item_fields }, { "empty", item_fields }, { NULL, NULL },
};

static const char data_text[] =
	"{\"title\": \"spring | sale\", \"env\": \"prod\", \"count\": 2, \"ok\": true, \"none\": null,"
	" \"ratio\": 0.5, \"items\": [{\"name\": \"auth\", \"version\": \"1.1.0\", \"note\": \"\"},"
	" {\"name\": \"order\", \"version\": \"2.0.0\", \"note\": \"big\"}], \"empty\": []}";

static void test_template_render(void **state)
{
	(void)state;
	static const struct {
		const char *tpl, *want;
	} cases[] = {
		{ "plain text\n", "plain text\n" },
		{ "{{title}}", "spring | sale" },
		{ "{{ title }}/{{env}}", "spring | sale/prod" },
		{ "{{count}} {{ok}} {{ratio}} [{{none}}]", "2 true 0.5 []" },
		{ "{{#items}}{{name}}@{{version}},{{/items}}", "auth@1.1.0,order@2.0.0," },
		/* outer names are in scope inside a list */
		{ "{{#items}}{{name}} in {{env}};{{/items}}", "auth in prod;order in prod;" },
		{ "{{#items}}{{name}}{{#note}} ({{note}}){{/note}};{{/items}}", "auth;order (big);" },
		{ "{{#items}}{{name}}{{^note}} (-){{/note}};{{/items}}", "auth (-);order;" },
		{ "{{#empty}}x{{/empty}}{{^empty}}no items{{/empty}}", "no items" },
		{ "{{#ok}}yes{{/ok}}{{^ok}}no{{/ok}}", "yes" },
		{ "{{#none}}yes{{/none}}{{^none}}no{{/none}}", "no" },
		{ "{{#count}}{{count}} of them{{/count}}", "2 of them" },
		{ "a{{! a comment }}b", "ab" },
		{ "\\{{title}}", "{{title}}" },
		/* a line holding only a section tag or a comment is left out whole */
		{ "list:\n{{#items}}\n- {{name}}\n{{/items}}\nend\n", "list:\n- auth\n- order\nend\n" },
		{ "  {{#ok}}  \nshown\n\t{{/ok}}\nend", "shown\nend" },
		{ "{{! note }}\nbody\n", "body\n" },
		{ "{{#empty}}\nnever\n{{/empty}}\n", "" },
		/* not alone on its line: kept */
		{ "x {{#ok}}\ny\n{{/ok}} z\n", "x \ny\n z\n" },
		{ "{{title}}\n", "spring | sale\n" },
		{ "", "" },
	};
	json_t *data = json_loads(data_text, 0, NULL);
	int failures = 0;

	assert_non_null(data);
	for (size_t i = 0; i < N(cases); i++) {
		struct tpl *t = NULL;
		char err[512], *out = NULL;
		int r = tpl_compile(cases[i].tpl, strlen(cases[i].tpl), "t.md", schema, &t, err, sizeof(err));

		if (r == 0)
			r = tpl_render(t, data, &out);
		if (r != 0 || strcmp(out, cases[i].want)) {
			print_error("template %zu \"%s\": got %d \"%s\" (%s), want \"%s\"\n", i, cases[i].tpl, r,
				    out ? out : "", r ? err : "", cases[i].want);
			failures++;
		}
		free(out);
		tpl_free(t);
	}
	json_decref(data);
	assert_int_equal(failures, 0);
}

static void test_template_errors(void **state)
{
	(void)state;
	static const struct {
		const char *tpl, *want; /* the message */
	} cases[] = {
		{ "a\nb {{nmae}}\n", "notes.md:2: unknown placeholder {{nmae}} (known here: title, env, count, ok, none, "
				     "ratio, items, empty)" },
		{ "{{#items}}\n{{name}}\n{{titel}}\n{{/items}}", "notes.md:3: unknown placeholder {{titel}} (known here: "
								 "name, version, note, title, env, count, ok, none, "
								 "ratio, items, empty)" },
		/* a list's fields are not in scope outside it */
		{ "{{#items}}{{/items}}\n{{version}}", "notes.md:2: unknown placeholder {{version}} (known here: title, "
						       "env, count, ok, none, ratio, items, empty)" },
		/* also in a section that would render nothing */
		{ "{{#empty}}\n{{nope}}\n{{/empty}}", "notes.md:2: unknown placeholder {{nope}} (known here: name, "
						      "version, note, title, env, count, ok, none, ratio, items, empty)" },
		{ "{{#nope}}x{{/nope}}", "notes.md:1: unknown placeholder {{#nope}} (known here: title, env, count, ok, "
					 "none, ratio, items, empty)" },
		{ "x\n{{#items}}\ny\n", "notes.md:2: {{#items}} is not closed (expected {{/items}})" },
		{ "{{#ok}}{{/items}}", "notes.md:1: {{/items}} closes {{#ok}} opened at line 1" },
		{ "\n\n{{/ok}}", "notes.md:3: {{/ok}} closes no section" },
		{ "{{items}}", "notes.md:1: {{items}} is a list: use {{#items}}...{{/items}}" },
		{ "a {{title", "notes.md:1: \"{{\" without \"}}\" on the same line (a literal one is written \\{{)" },
		{ "{{title\n}}", "notes.md:1: \"{{\" without \"}}\" on the same line (a literal one is written \\{{)" },
		{ "{{}}", "notes.md:1: empty placeholder {{}}" },
		{ "{{Title}}", "notes.md:1: invalid placeholder {{Title}} (names are a-z, 0-9 and _)" },
		{ "{{{title}}}", "notes.md:1: invalid placeholder {{{title}} (names are a-z, 0-9 and _)" },
	};
	int failures = 0;

	for (size_t i = 0; i < N(cases); i++) {
		struct tpl *t = (struct tpl *)&failures; /* untouched on failure */
		char err[512];
		int r = tpl_compile(cases[i].tpl, strlen(cases[i].tpl), "notes.md", schema, &t, err, sizeof(err));

		if (r != -EINVAL || strcmp(err, cases[i].want) || t != (struct tpl *)&failures) {
			print_error("template %zu \"%s\": got %d \"%s\", want \"%s\"\n", i, cases[i].tpl, r, r ? err : "",
				    cases[i].want);
			failures++;
			if (r == 0)
				tpl_free(t);
		}
	}
	assert_int_equal(failures, 0);
}

/* The built-in notes template compiles against the notes schema. */
static void test_default_template(void **state)
{
	(void)state;
	struct tpl *t = NULL;
	char err[512] = "";

	assert_int_equal(tpl_compile(notes_default_template, strlen(notes_default_template), "(built-in)",
				     notes_schema, &t, err, sizeof(err)), 0);
	tpl_free(t);
}

/* ---- changelog sections ------------------------------------------------------------- */

static const char changelog_text[] =
	"# Changelog\n"
	"\n"
	"## [Unreleased]\n"
	"- nothing yet\n"
	"\n"
	"## [1.2.0] - 2026-12-01\n"
	"\n"
	"### Added\n"
	"- refunds\n"
	"```\n"
	"## 1.1.0 inside a code block is no heading\n"
	"```\n"
	"\n"
	"## 1.1.0\n"
	"- fixed totals\n"
	"## v1.0.0 (2026-01-01)\n"
	"- first\n"
	"# 1.0.0-rc.1\n"
	"- candidate\n";

static void test_changelog_section(void **state)
{
	(void)state;
	static const struct {
		const char *version, *want; /* NULL: no section */
	} cases[] = {
		{ "1.2.0", "### Added\n- refunds\n```\n## 1.1.0 inside a code block is no heading\n```" },
		{ "1.1.0", "- fixed totals" },
		{ "1.0.0", "- first" },            /* "v" prefix, a date after it */
		{ "1.0.0-rc.1", "- candidate" },   /* to the end of the file */
		{ "1.2", NULL },                   /* a prefix of 1.2.0 is not 1.2.0 */
		{ "2.0.0", NULL },
		{ "Unreleased", "- nothing yet" },
	};
	int failures = 0;

	for (size_t i = 0; i < N(cases); i++) {
		size_t start = 0, len = 0;
		bool found = notes_changelog_section(changelog_text, strlen(changelog_text), cases[i].version, &start,
						     &len);

		if (found != (cases[i].want != NULL) ||
		    (found && (len != strlen(cases[i].want) || memcmp(changelog_text + start, cases[i].want, len)))) {
			print_error("section %s: got %s \"%.*s\", want \"%s\"\n", cases[i].version,
				    found ? "found" : "none", (int)len, changelog_text + start,
				    cases[i].want ? cases[i].want : "(none)");
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_time),
		cmocka_unit_test(test_template_render),
		cmocka_unit_test(test_template_errors),
		cmocka_unit_test(test_default_template),
		cmocka_unit_test(test_changelog_section),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

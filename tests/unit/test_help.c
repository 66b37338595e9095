/* test_help.c - unit tests of the help (src/cli/help.c, verbs.c and the
 * help table generated from docs/cli.md): that the verbs main() dispatches
 * and the sections of docs/cli.md match, both ways, action by action; that
 * every text keeps to its shape (usage first, 80 columns); the lookups that
 * --help goes through; and which argument --help takes as the action
 * (cli_first_operand).
 *
 * Tables of cases: every row is checked, each mismatch printed, and the
 * test fails once at the end with the count.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cli/cli.h"
#include "cli/help.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Verbs whose sections docs/cli.md already holds, written from the plan of
 * issue 13 while their code is on another branch (opsstate: `cutover state`,
 * `cutover maintenance`).  When a verb here is dispatched (src/cli/verbs.c),
 * test_pending_not_dispatched fails: take it out of this list (which may be
 * left as { NULL }). */
static const char *const pending[] = { NULL };

static bool is_pending(const char *verb)
{
	for (size_t i = 0; pending[i]; i++)
		if (!strcmp(pending[i], verb))
			return true;
	return false;
}

/* Columns of a line of UTF-8 text: its code points (the texts hold no
 * wide or combining characters). */
static size_t columns(const char *s, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		n += ((unsigned char)s[i] & 0xC0) != 0x80;
	return n;
}

/* Every line of TEXT is at most 80 columns; returns the number that are
 * not, printing them. */
static int too_wide(const char *what, const char *text)
{
	int bad = 0;

	for (const char *p = text; *p;) {
		size_t len = strcspn(p, "\n");

		if (columns(p, len) > 80) {
			printf("  %s: a line of %zu columns: %.*s\n", what, columns(p, len), (int)len, p);
			bad++;
		}
		p += len + (p[len] == '\n');
	}
	return bad;
}

/* ---- the verbs and the sections, both ways --------------------------------------- */

static void test_every_verb_has_its_help(void **state)
{
	(void)state;
	int bad = 0;

	for (size_t i = 0; i < cli_nverbs; i++) {
		const struct cli_verb *v = &cli_verbs[i];
		char name[96];

		if (v->hidden) {
			if (cli_help_find(v->name)) {
				printf("  the hidden verb %s has a section in docs/cli.md\n", v->name);
				bad++;
			}
			continue;
		}
		if (!cli_help_find(v->name)) {
			printf("  cutover %s is dispatched but docs/cli.md has no `## cutover %s`\n", v->name, v->name);
			bad++;
		}
		for (const char *const *a = v->actions; a && *a; a++) {
			snprintf(name, sizeof(name), "%s %s", v->name, *a);
			if (!cli_help_find(name)) {
				printf("  cutover %s is an action but docs/cli.md has no `## cutover %s`\n", name, name);
				bad++;
			}
		}
	}
	if (bad)
		fail_msg("%d verbs or actions without help", bad);
}

static void test_every_section_is_dispatched(void **state)
{
	(void)state;
	int bad = 0;

	assert_non_null(cli_help_find(""));
	for (size_t i = 0; i < cli_help_count; i++) {
		const char *name = cli_help_table[i].name;
		size_t len = strcspn(name, " ");
		char verb[64];
		const struct cli_verb *v;

		if (!*name)
			continue;
		snprintf(verb, sizeof(verb), "%.*s", (int)len, name);
		v = cli_verb_find(verb);
		if (!v && is_pending(verb))
			continue;
		if (!v || v->hidden) {
			printf("  docs/cli.md has `## cutover %s` but no verb %s is dispatched (src/cli/verbs.c)\n", name,
			       verb);
			bad++;
		} else if (name[len] && !cli_verb_has_action(v, name + len + 1)) {
			printf("  docs/cli.md has `## cutover %s` but %s is not an action of %s in src/cli/verbs.c\n",
			       name, name + len + 1, verb);
			bad++;
		}
	}
	if (bad)
		fail_msg("%d sections of docs/cli.md for nothing that runs", bad);
}

static void test_pending_not_dispatched(void **state)
{
	(void)state;
	for (size_t i = 0; pending[i]; i++) {
		if (cli_verb_find(pending[i]))
			fail_msg("cutover %s is dispatched now: take it out of pending[] in tests/unit/test_help.c",
				 pending[i]);
		if (!cli_help_find(pending[i]))
			fail_msg("pending[] names %s, which docs/cli.md has no section for", pending[i]);
	}
}

/* ---- the shape of every text ----------------------------------------------------- */

static void test_texts(void **state)
{
	(void)state;
	int bad = 0;

	for (size_t i = 0; i < cli_help_count; i++) {
		const struct cli_help *h = &cli_help_table[i];
		char usage[128];
		size_t len = strlen(h->text);

		snprintf(usage, sizeof(usage), "usage: cutover %s%s", h->name, *h->name ? " " : "");
		if (strncmp(h->text, usage, strlen(usage))) {
			printf("  %s: does not start with \"%s\"\n", h->name, usage);
			bad++;
		}
		if (!len || h->text[len - 1] != '\n' || strstr(h->text, "\n\n\n")) {
			printf("  %s: not whole lines, or two blank lines in a row\n", h->name);
			bad++;
		}
		if (h->list_at == 0 || h->list_at >= len || h->text[h->list_at - 1] != '\n' ||
		    h->text[h->list_at] != '\n') {
			printf("  %s: list_at %zu is not at the blank line after the description\n", h->name,
			       h->list_at);
			bad++;
		}
		if (!*h->summary || h->summary[strlen(h->summary) - 1] == '.' || strchr(h->summary, '\n')) {
			printf("  %s: summary \"%s\" is not one line without a final period\n", h->name, h->summary);
			bad++;
		}
		if (!strstr(h->text, "\nExit codes:\n") || !strstr(h->text, "\nExamples:\n")) {
			printf("  %s: lacks its exit codes or its examples\n", h->name);
			bad++;
		}
		bad += too_wide(h->name, h->text);
	}
	if (bad)
		fail_msg("%d texts out of shape", bad);
}

static void test_overview(void **state)
{
	(void)state;
	char *out = NULL, line[64];
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	const struct cli_help *top = cli_help_find("");
	int bad = 0;

	assert_non_null(f);
	cli_help_overview(f);
	assert_int_equal(fclose(f), 0);
	assert_non_null(top);
	/* the program's text, the verbs inserted after its description */
	assert_memory_equal(out, top->text, top->list_at);
	assert_string_equal(out + len - strlen(top->text + top->list_at), top->text + top->list_at);
	assert_non_null(strstr(out, "\nVerbs:\n"));
	for (size_t i = 0; i < cli_nverbs; i++) {
		snprintf(line, sizeof(line), "\n  %s ", cli_verbs[i].name);
		if (!strstr(out, line) != cli_verbs[i].hidden) {
			printf("  cutover %s is %slisted\n", cli_verbs[i].name, cli_verbs[i].hidden ? "" : "not ");
			bad++;
		}
	}
	for (size_t i = 0; pending[i]; i++) {
		snprintf(line, sizeof(line), "\n  %s ", pending[i]);
		if (strstr(out, line)) {
			printf("  %s is listed before it is dispatched\n", pending[i]);
			bad++;
		}
	}
	bad += too_wide("cutover help", out);
	free(out);
	if (bad)
		fail_msg("%d problems with the overview", bad);
}

/* ---- the lookups ----------------------------------------------------------------- */

static void test_lookup(void **state)
{
	(void)state;
	static const struct {
		const char *verb, *action, *want; /* want NULL: no entry */
	} cases[] = {
		{ "deploy", NULL, "deploy" },
		{ "deploy", "shop", "deploy" },          /* an argument, not an action */
		{ "release", "add", "release add" },
		{ "release", NULL, "release" },
		{ "release", "frobnicate", "release" },  /* an unknown action: the verb's overview */
		{ "release add", "add", "release add" }, /* c->verb already names the action */
		{ "release plan", "plan", "release plan" },
		{ "secrets", "set", "secrets set" },
		{ "config", "show", "config show" },
		{ "pipeline", "list", "pipeline list" },
		{ "promote", "shop", "promote" },
		{ "help", "release", "help" },
		{ "", NULL, "" },
		{ "nosuchverb", NULL, NULL },
		{ "nosuchverb", "add", NULL },
		{ "log-relay", NULL, NULL },
	};
	int bad = 0;

	for (size_t i = 0; i < N(cases); i++) {
		const struct cli_help *h = cli_help_lookup(cases[i].verb, cases[i].action);
		const char *got = h ? h->name : NULL;

		if (!got != !cases[i].want || (got && strcmp(got, cases[i].want))) {
			printf("  lookup(\"%s\", %s): got %s, want %s\n", cases[i].verb,
			       cases[i].action ? cases[i].action : "NULL", got ? got : "NULL",
			       cases[i].want ? cases[i].want : "NULL");
			bad++;
		}
	}
	assert_null(cli_help_find("release add prune"));
	assert_null(cli_help_find("deploy "));
	if (bad)
		fail_msg("%d lookups wrong", bad);
}

static void test_verb_find(void **state)
{
	(void)state;
	const struct cli_verb *v = cli_verb_find("release");

	assert_non_null(v);
	assert_true(cli_verb_has_action(v, "add"));
	assert_true(cli_verb_has_action(v, "notes"));
	assert_false(cli_verb_has_action(v, "releases"));
	assert_false(cli_verb_has_action(v, ""));
	assert_false(cli_verb_has_action(cli_verb_find("deploy"), "add"));
	assert_true(cli_verb_find("log-relay")->hidden);
	assert_null(cli_verb_find("nosuchverb"));
	assert_null(cli_verb_find(""));
}

/* ---- which argument is the action ------------------------------------------------ */

static void test_first_operand(void **state)
{
	(void)state;
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },     { "help", no_argument, NULL, 'h' },
		{ "env", required_argument, NULL, 1 },  { "state-dir", required_argument, NULL, 'd' },
		{ "keep", required_argument, NULL, 'k' }, { "keep-all", no_argument, NULL, 2 },
		{ "identity", required_argument, NULL, 'i' }, { "level", optional_argument, NULL, 'l' },
		{ 0 },
	};
	static const char shortopts[] = ":jhd:i:nl::";
	static const struct {
		const char *argv[8];
		const char *want;
	} cases[] = {
		{ { "release", "add", "--help" }, "add" },
		{ { "release", "--help", "add" }, "add" },
		{ { "release", "--state-dir", "/x", "add", "--help" }, "add" },
		{ { "release", "--state-dir=/x", "add" }, "add" },
		{ { "release", "--sta", "/x", "prune" }, "prune" },       /* a unique prefix */
		{ { "release", "--keep", "3", "prune" }, "prune" },       /* exact beats the prefix of keep-all */
		{ { "release", "--keep-all", "prune" }, "prune" },
		{ { "release", "--ke", "prune" }, "prune" },              /* ambiguous: no value taken */
		{ { "release", "--env", "prod", "list" }, "list" },
		{ { "secrets", "-i", "key", "set", "X" }, "set" },
		{ { "secrets", "-ikey", "set" }, "set" },                 /* the value attached */
		{ { "secrets", "-ni", "key", "rm" }, "rm" },              /* a cluster: i takes the next */
		{ { "secrets", "-nikey", "rm" }, "rm" },
		{ { "x", "-l", "list" }, "list" },                        /* an optional value: attached only */
		{ { "x", "--level", "list" }, "list" },
		{ { "x", "--json", "--", "--help" }, "--help" },
		{ { "x", "--", "add" }, "add" },
		{ { "x", "-", "add" }, "-" },                             /* "-" is an argument */
		{ { "x", "--json", "--help" }, NULL },
		{ { "x", "--env", "prod" }, NULL },
		{ { "x" }, NULL },
	};
	int bad = 0;

	for (size_t i = 0; i < N(cases); i++) {
		int argc = 0;
		const char *got;

		while (argc < (int)N(cases[i].argv) && cases[i].argv[argc])
			argc++;
		got = cli_first_operand(argc, (char **)cases[i].argv, opts, shortopts);
		if (!got != !cases[i].want || (got && strcmp(got, cases[i].want))) {
			printf("  case %zu (%s %s %s ...): got %s, want %s\n", i, cases[i].argv[0],
			       cases[i].argv[1] ? cases[i].argv[1] : "", argc > 2 ? cases[i].argv[2] : "",
			       got ? got : "NULL", cases[i].want ? cases[i].want : "NULL");
			bad++;
		}
	}
	/* without the option table an unknown long option takes no value */
	assert_string_equal(cli_first_operand(3, (char *[]){ "x", "--state-dir", "/x", NULL }, NULL, NULL), "/x");
	if (bad)
		fail_msg("%d of %zu cases wrong", bad, N(cases));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_verb_has_its_help),
		cmocka_unit_test(test_every_section_is_dispatched),
		cmocka_unit_test(test_pending_not_dispatched),
		cmocka_unit_test(test_texts),
		cmocka_unit_test(test_overview),
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_verb_find),
		cmocka_unit_test(test_first_operand),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

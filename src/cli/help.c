/* help.c - `cutover help [VERB [ACTION]]`, and the lookups that
 * `cutover VERB --help` (options.c) and `cutover` alone (main.c) print
 * through.  The texts are docs/cli.md's, rendered at build time
 * (help-table.c); only the list of verbs is put together here, from the
 * verbs main() dispatches (verbs.c), so that `cutover help` lists exactly
 * what runs.
 */
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"
#include "cli/help.h"

#define WIDTH 80 /* as the generated texts */

const struct cli_help *cli_help_find(const char *name)
{
	for (size_t i = 0; i < cli_help_count; i++)
		if (!strcmp(cli_help_table[i].name, name))
			return &cli_help_table[i];
	return NULL;
}

const struct cli_help *cli_help_lookup(const char *verb, const char *action)
{
	const struct cli_help *h = NULL;
	char name[96];

	if (action && (size_t)snprintf(name, sizeof(name), "%s %s", verb, action) < sizeof(name))
		h = cli_help_find(name);
	return h ? h : cli_help_find(verb);
}

/* TERM at column 2, then TEXT from column COL, filled to WIDTH columns
 * (a word longer than a line gets one of its own). */
static void print_item(FILE *f, const char *term, const char *text, int col)
{
	int at = fprintf(f, "  %s", term);

	while (*text) {
		size_t word = strcspn(text, " ");

		if (at < col) {
			at += fprintf(f, "%*s", col - at, "");
		} else if (at + 1 + (int)word > WIDTH) {
			at = fprintf(f, "\n%*s", col, "") - 1;
		} else {
			at += fprintf(f, " ");
		}
		at += fprintf(f, "%.*s", (int)word, text);
		text += word;
		text += strspn(text, " ");
	}
	fputc('\n', f);
}

void cli_help_overview(FILE *f)
{
	const struct cli_help *top = cli_help_find("");
	int col = 0;

	if (!top) { /* the generator refuses a docs/cli.md without it */
		fputs("usage: cutover VERB [ACTION] [OPTIONS]\n", f);
		return;
	}
	for (size_t i = 0; i < cli_nverbs; i++)
		if (!cli_verbs[i].hidden && (int)strlen(cli_verbs[i].name) > col)
			col = (int)strlen(cli_verbs[i].name);
	col += 4;
	fwrite(top->text, 1, top->list_at, f);
	fputs("\nVerbs:\n", f);
	for (size_t i = 0; i < cli_nverbs; i++) {
		const struct cli_help *h = cli_help_find(cli_verbs[i].name);

		if (!cli_verbs[i].hidden)
			print_item(f, cli_verbs[i].name, h ? h->summary : "", col);
	}
	fputs(top->text + top->list_at, f);
}

/* {"verbs": [{"name", "summary", "actions": [...]}...]}: the listing of
 * `cutover help --json`. */
static json_t *overview_json(void)
{
	json_t *verbs = json_array();

	for (size_t i = 0; verbs && i < cli_nverbs; i++) {
		const struct cli_help *h = cli_help_find(cli_verbs[i].name);
		json_t *actions;

		if (cli_verbs[i].hidden)
			continue;
		actions = json_array();
		for (const char *const *a = cli_verbs[i].actions; a && *a; a++)
			json_array_append_new(actions, json_string(*a));
		json_array_append_new(verbs, json_pack("{ss ss so}", "name", cli_verbs[i].name, "summary",
						       h ? h->summary : "", "actions", actions));
	}
	return verbs ? json_pack("{so}", "verbs", verbs) : NULL;
}

/* "add, prune or verify" into OUT: the actions of V, for a message. */
static void action_list(const struct cli_verb *v, char *out, size_t outlen)
{
	size_t n = 0, off = 0;

	out[0] = 0;
	while (v->actions && v->actions[n])
		n++;
	for (size_t i = 0; i < n && off < outlen; i++)
		off += (size_t)snprintf(out + off, outlen - off, "%s%s", i == 0 ? "" : i + 1 == n ? " or " : ", ",
					v->actions[i]);
}

int cli_help(int argc, char **argv)
{
	struct cli c = {
		.verb = "help",
		.synopsis = "[VERB [ACTION]]",
		.max_args = 2,
	};
	const struct cli_verb *v;
	const struct cli_help *h;
	char name[96], actions[256];
	int rc = cli_parse(&c, argc, argv);

	if (rc >= 0)
		return rc;
	if (!c.nargs) {
		if (c.json)
			cli_print_json(overview_json());
		else
			cli_help_overview(stdout);
		return EXIT_OK;
	}
	v = cli_verb_find(c.args[0]);
	if (!v || v->hidden)
		return cli_fail(&c, EXIT_USAGE, NULL, "unknown verb '%s' (cutover help lists them)", c.args[0]);
	if (c.nargs == 2 && !cli_verb_has_action(v, c.args[1])) {
		action_list(v, actions, sizeof(actions));
		return cli_fail(&c, EXIT_USAGE, NULL, "cutover %s has no action '%s' (%s%s)", v->name, c.args[1],
				v->actions ? "its actions: " : "it takes none", actions);
	}
	snprintf(name, sizeof(name), "%s%s%s", v->name, c.nargs == 2 ? " " : "", c.nargs == 2 ? c.args[1] : "");
	h = cli_help_find(name);
	if (!h) /* tests/unit/test_help.c keeps this from happening */
		return cli_fail(&c, EXIT_FAILED, NULL, "no help for cutover %s in this build (docs/cli.md lacks it)",
				name);
	if (c.json)
		cli_print_json(json_pack("{ss ss ss}", "name", h->name, "summary", h->summary, "text", h->text));
	else
		fputs(h->text, stdout);
	return EXIT_OK;
}

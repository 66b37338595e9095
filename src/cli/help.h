/* help.h - the help of every verb and action, from one source.
 *
 * docs/cli.md holds a section per verb and per action of a verb; at build
 * time scripts/clihelp.py renders each as terminal text (wrapped at 80
 * columns) into help-table.c in the build directory (the table below), and
 * the whole file into the manual page cutover.1.  `cutover help VERB
 * [ACTION]` and `cutover VERB [ACTION] --help` print the same entry;
 * `cutover help` prints the program's entry with the verbs that main()
 * dispatches (cli_verbs, cli.h) listed in it.
 */
#pragma once
#include <stddef.h>
#include <stdio.h>

/* One section of docs/cli.md, rendered (help-table.c). */
struct cli_help {
	const char *name;    /* "" (the program), "deploy", "release add" */
	const char *summary; /* one line, for the listing of `cutover help` */
	const char *text;    /* what --help prints: lines of at most 80 columns, ending in "\n" */
	size_t list_at;      /* offset in text after the description (and a verb's list of
			      * actions): where `cutover help` lists the verbs */
};

extern const struct cli_help cli_help_table[];
extern const size_t cli_help_count;

/* The entry of NAME ("" for the program, "deploy", "release add"), or
 * NULL.  Pure. */
const struct cli_help *cli_help_find(const char *name);

/* The entry of VERB's ACTION when ACTION is one of its actions (not NULL
 * and VERB ACTION has an entry), else that of VERB, else NULL.  Pure. */
const struct cli_help *cli_help_lookup(const char *verb, const char *action);

/* Print the program's entry to F with the verbs main() dispatches (not the
 * hidden ones) listed after its description, each with its summary: what
 * `cutover help` prints, and `cutover` alone (on stderr). */
void cli_help_overview(FILE *f);

/* `cutover help [VERB [ACTION]]`: the verb (help.c). */
int cli_help(int argc, char **argv);

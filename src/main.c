/* main.c - entry point: `cutover VERB [options]`.
 *
 * The daemon and every CLI verb live in one binary; each verb is one file
 * in src/cli/, and src/cli/verbs.c lists them.  `cutover` alone, `--help`
 * and an unknown verb print the overview of docs/cli.md (src/cli/help.h).
 */
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"
#include "cli/help.h"

int main(int argc, char **argv)
{
	const struct cli_verb *v;

	if (argc < 2) {
		cli_help_overview(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		cli_help_overview(stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "--version"))
		return cli_version(argc - 1, argv + 1);
	v = cli_verb_find(argv[1]);
	if (v)
		return v->run(argc - 1, argv + 1);
	fprintf(stderr, "cutover: unknown verb '%s' (the verbs are below)\n\n", argv[1]);
	cli_help_overview(stderr);
	return EXIT_USAGE;
}

/* release-report.c - `cutover release list|show|notes`: the stored runs
 * of release files, as a table, JSON or Markdown, and their release notes.
 * (Being written: see docs/internals/releases.md for the report.)
 */
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"

bool cli_release_is_report(const char *action)
{
	return !strcmp(action, "list") || !strcmp(action, "show") || !strcmp(action, "notes");
}

int cli_release_report(int argc, char **argv, const char *action)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "cutover release %s: not available yet\n", action);
	return 1;
}

/* version.c - `cutover version [--json]` (and `cutover --version`): the
 * version this binary was built as (CUTOVER_VERSION, from meson.build). */
#include <stdio.h>
#include "cli/cli.h"

int cli_version(int argc, char **argv)
{
	struct cli c = { .verb = "version" };
	int rc = cli_parse(&c, argc, argv);

	if (rc >= 0)
		return rc;
	if (c.json)
		cli_print_json(json_pack("{ss}", "version", CUTOVER_VERSION));
	else
		printf("cutover %s\n", CUTOVER_VERSION);
	return EXIT_OK;
}

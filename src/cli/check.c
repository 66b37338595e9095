/* check.c - `cutover check --config FILE`: validate only, apply nothing. */
#include <stdio.h>
#include "cli/cli.h"
#include "config/config.h"

int cli_check(int argc, char **argv)
{
	struct cli c = {
		.verb = "check",
		.help = "usage: cutover check [--config FILE] [--json]\n"
			"Validate FILE (default ./cutover.yml); exit 0 if valid, 2 if not.  --json prints\n"
			"{\"ok\": true, \"file\", \"listeners\", \"services\", \"routes\"}, or the error with its\n"
			"file, line, column, field and reason.\n",
		.flags = CLI_CONFIG,
	};
	struct config *cfg = NULL;
	const char *path;
	int rc = cli_parse(&c, argc, argv);

	if (rc >= 0)
		return rc;
	path = c.config ? c.config : "cutover.yml";
	rc = cli_load_config(&c, path, &cfg);
	if (rc)
		return rc;
	if (c.json)
		cli_print_json(json_pack("{sb ss sI sI sI}", "ok", 1, "file", path, "listeners", (json_int_t)cfg->nlisten,
					 "services", (json_int_t)cfg->nservices, "routes", (json_int_t)cfg->nroutes));
	else
		printf("%s: ok (%zu listeners, %zu services, %zu routes)\n", path, cfg->nlisten, cfg->nservices,
		       cfg->nroutes);
	config_free(cfg);
	return EXIT_OK;
}

/* check.c - `cutover check --config FILE`: validate only, apply nothing. */
#include <stdio.h>
#include "admin/cli/cli.h"
#include "config/config.h"

int cli_check(int argc, char **argv)
{
	const char *path;
	struct config *cfg = NULL;
	struct config_error err;
	int rc = cli_config_option(argc, argv,
				   "usage: cutover check [--config FILE]\nValidate FILE; exit 0 if valid, 2 if not.\n",
				   &path);

	if (rc >= 0)
		return rc;
	if (config_load(path, &cfg, &err) < 0) {
		fprintf(stderr, "cutover: %s\n", err.message);
		return EXIT_USAGE;
	}
	printf("%s: ok (%zu listeners, %zu services, %zu routes)\n", path, cfg->nlisten, cfg->nservices,
	       cfg->nroutes);
	config_free(cfg);
	return EXIT_OK;
}

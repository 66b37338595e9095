/* check.c - `cutover check [--config FILE] [--env ENV]`: validate only,
 * apply nothing.  It names the files it read, so a person sees which
 * environment was checked ("cutover.yml + cutover.prod.yml (env prod)"). */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include "cli/cli.h"
#include "config/config.h"

int cli_check(int argc, char **argv)
{
	struct cli c = {
		.verb = "check",
		.flags = CLI_CONFIG,
	};
	struct config *cfg = NULL;
	struct config_error err;
	char *token = NULL;
	size_t token_len = 0;
	const char *path;
	char what[600];
	int rc = cli_parse(&c, argc, argv);

	if (rc >= 0)
		return rc;
	path = c.config ? c.config : "cutover.yml";
	rc = cli_load_config(&c, path, &cfg);
	if (rc)
		return rc;
	/* an admin address open to the network needs admin_token: read it as
	 * the daemon would ($CUTOVER_IDENTITY, else secrets.identity) */
	if ((rc = config_admin_token(cfg, getenv("CUTOVER_IDENTITY"), &token, &token_len, &err)) < 0) {
		config_free(cfg);
		return cli_fail(&c, EXIT_USAGE, json_pack("{ss ss}", "file", err.file, "reason", err.message), "%s",
				err.message);
	}
	sodium_free(token);
	if (c.json)
		cli_print_json(json_pack("{sb ss ss? ss? sI sI sI}", "ok", 1, "file", path, "env", cfg->env, "overlay",
					 cfg->overlay, "listeners", (json_int_t)cfg->nlisten, "services",
					 (json_int_t)cfg->nservices, "routes", (json_int_t)cfg->nroutes));
	else
		printf("%s: ok (%zu listeners, %zu services, %zu routes)\n", config_describe(cfg, what, sizeof(what)),
		       cfg->nlisten, cfg->nservices, cfg->nroutes);
	config_free(cfg);
	return EXIT_OK;
}

/* config.c - `cutover config show [--env ENV] [--config FILE]`: the
 * effective configuration of an environment, each value with the file and
 * line it came from, or "default" (src/config/show.c).  It reads the files
 * only: no daemon is asked, so it shows what a daemon started (or reloaded)
 * now would run with. */
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"
#include "config/config.h"
#include "config/show.h"

int cli_config(int argc, char **argv)
{
	struct cli c = {
		.verb = "config",
		.flags = CLI_CONFIG,
		.synopsis = "an action (show)",
		.min_args = 1,
		.max_args = 1,
	};
	struct config *cfg = NULL;
	struct ynode *tree = NULL;
	json_t *doc;
	int rc = cli_parse(&c, argc, argv);

	if (rc >= 0)
		return rc;
	if (strcmp(c.args[0], "show"))
		return cli_fail(&c, EXIT_USAGE, NULL, "unknown action '%s': expected show (see --help)", c.args[0]);
	rc = cli_load_config_tree(&c, c.config ? c.config : "cutover.yml", &cfg, &tree);
	if (rc)
		return rc;
	if (c.json) {
		doc = config_show_json(cfg, tree);
		rc = doc ? EXIT_OK : cli_fail(&c, EXIT_FAILED, NULL, "out of memory");
		cli_print_json(doc);
	} else if (config_show_text(cfg, tree, stdout) < 0) {
		rc = cli_fail(&c, EXIT_FAILED, NULL, "cannot print the configuration: out of memory or a failed write");
	}
	ynode_free(tree);
	config_free(cfg);
	return rc;
}

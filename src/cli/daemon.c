/* daemon.c - `cutover daemon --config FILE`: the verb.  The daemon itself
 * (what it owns, start-up and shutdown order) is src/daemon/; `cutover
 * proxy` runs it too, on a configuration made from flags. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "base/log.h"
#include "config/config.h"
#include "daemon/daemon.h"

int cli_run_proxy(const struct cli *c, struct config *cfg, char **argv)
{
	int rc = daemon_run(cfg, argv);

	if (rc < 0)
		return cli_fail(c, EXIT_FAILED, NULL, "the daemon stopped: %s (see the error log)", strerror(-rc));
	log_info("stopped");
	log_close();
	return EXIT_OK;
}

int cli_daemon(int argc, char **argv)
{
	struct cli c = {
		.verb = "daemon",
		.flags = CLI_CONFIG,
		.error_log = true,
	};
	struct config *cfg = NULL;
	int rc = cli_parse(&c, argc, argv);

	if (rc >= 0)
		return rc;
	rc = cli_load_config(&c, c.config ? c.config : "cutover.yml", &cfg);
	if (rc)
		return rc;
	return cli_run_proxy(&c, cfg, argv);
}

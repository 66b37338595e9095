/* daemon.c - `cutover daemon --config FILE`: the long-running proxy, and
 * the loop runner shared with `cutover proxy`. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "admin/cli/cli.h"
#include "base/log.h"
#include "config/config.h"
#include "loop/loop.h"
#include "proxy/proxy.h"

int cli_run_proxy(struct config *cfg)
{
	struct loop loop;
	struct proxy proxy;
	int rc;

	log_open(cfg->log.error);
	log_set_level(cfg->log.level);
	rc = loop_init(&loop);
	if (rc < 0) {
		fprintf(stderr, "cutover: cannot create the event loop: %s\n", strerror(-rc));
		config_free(cfg);
		return EXIT_FAILED;
	}
	rc = proxy_start(&proxy, &loop, cfg);
	if (rc < 0) {
		fprintf(stderr, "cutover: cannot start the proxy: %s\n", strerror(-rc));
		config_free(cfg);
		loop_release(&loop);
		return EXIT_FAILED;
	}
	rc = loop_run(&loop);
	if (rc < 0)
		log_error("event loop failed: %s", strerror(-rc));
	proxy_release(&proxy);
	loop_release(&loop);
	log_info("stopped");
	log_close();
	return rc < 0 ? EXIT_FAILED : EXIT_OK;
}

int cli_daemon(int argc, char **argv)
{
	const char *path;
	struct config *cfg = NULL;
	struct config_error err;
	int rc = cli_config_option(argc, argv,
				   "usage: cutover daemon [--config FILE]\n"
				   "Run the proxy from FILE (default ./cutover.yml).\n"
				   "SIGHUP reloads FILE atomically; SIGTERM drains in-flight requests and exits 0.\n",
				   &path);

	if (rc >= 0)
		return rc;
	if (config_load(path, &cfg, &err) < 0) {
		fprintf(stderr, "cutover: %s\n", err.message);
		return EXIT_USAGE;
	}
	return cli_run_proxy(cfg);
}

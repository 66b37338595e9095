/* daemon.c - `cutover daemon --config FILE`: the long-running proxy, and
 * the loop runner shared with `cutover proxy`. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "admin/cli/cli.h"
#include "base/log.h"
#include "config/config.h"
#include "deploy/deploy.h"
#include "loop/worker.h"
#include "state/state.h"
#include "supervisor/supervisor.h"
#include "loop/loop.h"
#include "proxy/proxy.h"

/* The deploy side of the daemon: state, its worker, the supervisor and the
 * deploy engine.  Returns 0 or -errno (logged); on failure nothing is left. */
static int daemon_start_deployer(struct proxy *p, struct state **st, struct worker **w, struct supervisor **sup)
{
	char err[512];
	int rc;

	/* before the loop runs: opening SQLite here blocks nothing */
	rc = state_open(p->cfg->state_dir, st, err, sizeof(err));
	if (rc < 0) {
		log_error("cannot open the state in %s: %s", p->cfg->state_dir, err);
		return rc;
	}
	rc = worker_start(p->loop, w);
	if (rc < 0)
		goto fail;
	rc = supervisor_new(p->loop, NULL, sup);
	if (rc < 0)
		goto fail;
	rc = deployer_new(p, *sup, *w, *st, &p->deployer);
	if (rc < 0)
		goto fail;
	/* before the loop serves a request: traffic goes where it went before */
	rc = deployer_recover(p->deployer);
	if (rc < 0)
		goto fail;
	return 0;
fail:
	log_error("cannot start the deploy engine: %s", strerror(-rc));
	/* in this order: the worker's last done callbacks use the deployer,
	 * whose slots use the supervisor */
	worker_stop(*w);
	*w = NULL;
	deployer_free(p->deployer);
	p->deployer = NULL;
	*sup = supervisor_free(*sup);
	*st = state_close(*st);
	return rc;
}

/* Socket I/O through io_uring unless CUTOVER_IO=epoll or the kernel has
 * none (then epoll, said once in the log). */
static void cli_choose_io(struct loop *loop)
{
	const char *io = getenv("CUTOVER_IO");
	char why[160];

	if (io && !strcmp(io, "epoll")) {
		log_info("socket I/O: epoll (CUTOVER_IO=epoll)");
		return;
	}
	if (loop_uring_enable(loop, why, sizeof(why)) < 0)
		log_info("socket I/O: epoll (io_uring unavailable: %s)", why);
	else
		log_info("socket I/O: io_uring");
}

int cli_run_proxy(const struct cli *c, struct config *cfg)
{
	struct loop loop;
	struct proxy proxy;
	struct state *st = NULL;
	struct worker *w = NULL;
	struct supervisor *sup = NULL;
	bool managed = false;
	int rc;

	for (size_t i = 0; i < cfg->nservices; i++)
		managed |= cfg->services[i].run != NULL;

	log_open(cfg->log.error);
	log_set_level(cfg->log.level);
	rc = loop_init(&loop);
	if (rc < 0) {
		config_free(cfg);
		return cli_fail(c, EXIT_FAILED, NULL, "cannot create the event loop: %s", strerror(-rc));
	}
	cli_choose_io(&loop);
	rc = proxy_start(&proxy, &loop, cfg);
	if (rc < 0) {
		config_free(cfg);
		loop_release(&loop);
		return cli_fail(c, EXIT_FAILED, NULL, "cannot start the proxy: %s", strerror(-rc));
	}
	if (managed && daemon_start_deployer(&proxy, &st, &w, &sup) < 0) {
		proxy_release(&proxy);
		loop_release(&loop);
		return cli_fail(c, EXIT_FAILED, NULL, "cannot start the deploy engine (see the error log)");
	}
	rc = loop_run(&loop);
	if (rc < 0)
		log_error("event loop failed: %s", strerror(-rc));
	if (proxy.deployer) {
		/* order matters: stop the instances; let the state writes still
		 * queued finish (their completions use the deployer); only then
		 * free the deployer, the supervisor and the state */
		deployer_stop_all(proxy.deployer);
		worker_stop(w);
		deployer_free(proxy.deployer);
		proxy.deployer = NULL;
		supervisor_free(sup);
		state_close(st);
	}
	proxy_release(&proxy);
	loop_release(&loop);
	log_info("stopped");
	log_close();
	return rc < 0 ? EXIT_FAILED : EXIT_OK;
}

int cli_daemon(int argc, char **argv)
{
	struct cli c = {
		.verb = "daemon",
		.help = "usage: cutover daemon [--config FILE] [--json]\n"
			"Run the proxy from FILE (default ./cutover.yml).\n"
			"SIGHUP reloads FILE atomically; SIGTERM drains in-flight requests and exits 0.\n"
			"--json: the error log is JSON lines {\"ts\", \"level\", \"msg\"} instead of logfmt, and\n"
			"a failure to start is one JSON object on stdout {\"error\", \"exit_code\", ...}.\n",
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
	return cli_run_proxy(&c, cfg);
}

/* daemon.c - the composition root (contract in daemon.h).
 *
 * Start-up order: the loop; the proxy (its listeners are open but the loop
 * does not run yet, so nothing is served); the deploy side, whose recovery
 * puts traffic back on the last known-good versions before the first
 * request; then the admin listeners (the Unix socket first: a second
 * daemon on the same state directory stops there); then signals.  Shutdown
 * is the reverse, after the proxy has drained: stop the instances, let the
 * state writes still queued finish, free the deployer, the supervisor and
 * the state, then the admin listeners and the proxy.
 *
 * A reload (SIGHUP) loads and validates a complete new configuration, then
 * hands it to each part; the proxy swaps it in only when everything it
 * needs could be built, else the old configuration stays in force.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include "admin/admin.h"
#include "base/list.h"
#include "base/log.h"
#include "config/config.h"
#include "daemon/daemon.h"
#include "deploy/deploy.h"
#include "loop/loop.h"
#include "loop/worker.h"
#include "proxy/proxy.h"
#include "state/state.h"
#include "supervisor/supervisor.h"

static bool config_has_managed(const struct config *cfg)
{
	for (size_t i = 0; i < cfg->nservices; i++)
		if (cfg->services[i].run)
			return true;
	return false;
}

/* Socket I/O through io_uring unless CUTOVER_IO=epoll or the kernel has
 * none (then epoll, said once in the log). */
static void choose_io(struct loop *loop)
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

/* Stop and free the deploy side, in this order: the instances are stopped
 * (the loop runs until they are reaped); the state writes still queued
 * finish (their completions use the deployer); then the deployer, the
 * supervisor and the state.  stop_instances false: they keep running for a
 * daemon that will adopt them (a failed start). */
static void deploy_side_stop(struct daemon *d, bool stop_instances)
{
	if (!d->state)
		return;
	if (d->deployer && stop_instances)
		deployer_stop_all(d->deployer);
	worker_stop(d->worker);
	d->worker = NULL;
	deployer_free(d->deployer);
	d->deployer = NULL;
	d->admin.deployer = NULL;
	d->sup = supervisor_free(d->sup);
	d->state = state_close(d->state);
}

/* The deployer's events go to the admin API's event streams. */
static void daemon_event(void *data, const char *kind, json_t *event)
{
	admin_event(data, kind, event);
}

/* The state, its worker, the supervisor and the deployer; then recovery,
 * before the loop serves a request: traffic goes where it went before.
 * Returns 0 or -errno (logged); on failure nothing is left. */
static int deploy_side_start(struct daemon *d)
{
	char err[512];
	int rc;

	/* before the loop runs: opening SQLite here blocks nothing */
	rc = state_open(d->cfg->state_dir, &d->state, err, sizeof(err));
	if (rc < 0) {
		log_error("cannot open the state in %s: %s", d->cfg->state_dir, err);
		return rc;
	}
	rc = worker_start(&d->loop, &d->worker);
	if (rc < 0)
		goto fail;
	rc = supervisor_new(&d->loop, NULL, &d->sup);
	if (rc < 0)
		goto fail;
	rc = deployer_new(&d->proxy, d->sup, d->worker, d->state, &d->deployer);
	if (rc < 0)
		goto fail;
	rc = deployer_recover(d->deployer);
	if (rc < 0)
		goto fail;
	d->admin.deployer = d->deployer;
	deployer_observe(d->deployer, daemon_event, &d->admin);
	return 0;
fail:
	log_error("cannot start the deploy engine: %s", strerror(-rc));
	deploy_side_stop(d, false);
	return rc;
}

/* SIGHUP: a complete new configuration, or the old one stays. */
static void daemon_reload(struct daemon *d)
{
	struct config *cfg = NULL;
	struct config_error err;
	const char *why = NULL;
	int rc;

	if (!d->cfg->path) {
		log_warn("SIGHUP ignored: running without a configuration file");
		return;
	}
	rc = config_load(d->cfg->path, &cfg, &err);
	if (rc < 0) {
		log_error("reload failed, keeping the running configuration: %s", err.message);
		goto fail;
	}
	if ((cfg->state_dir || d->cfg->state_dir) &&
	    (!cfg->state_dir || !d->cfg->state_dir || strcmp(cfg->state_dir, d->cfg->state_dir))) {
		/* the SQLite state, releases and instance logs live there */
		log_error("reload failed, keeping the running configuration: state_dir cannot change on reload "
			  "(%s -> %s); restart the daemon to move it",
			  d->cfg->state_dir ? d->cfg->state_dir : "(none)", cfg->state_dir ? cfg->state_dir : "(none)");
		goto fail;
	}
	if (!d->deployer && config_has_managed(cfg))
		why = "managed services (run:) need a restart of the daemon the first time";
	if (why) {
		log_error("reload failed, keeping the running configuration: %s", why);
		goto fail;
	}
	if (proxy_apply(&d->proxy, cfg) < 0) {
		log_error("reload failed, keeping the running configuration (see above)");
		goto fail;
	}
	/* from here on the new configuration is in force: the admin listeners
	 * follow it as far as they can (a failure is logged, the old ones stay) */
	admin_apply(&d->admin, cfg);
	config_free(d->cfg);
	d->cfg = cfg;
	log_open(cfg->log.error);
	log_set_level(cfg->log.level);
	d->proxy.metrics.config_reloads++;
	log_info("configuration reloaded from %s: %zu services, %zu routes", cfg->path, cfg->nservices,
		 cfg->nroutes);
	return;
fail:
	config_free(cfg);
	d->proxy.metrics.config_reload_failures++;
}

static void signal_on_event(struct loop *loop, struct loop_io *io, uint32_t events)
{
	struct daemon *d = container_of(io, struct daemon, signal_io);
	struct signalfd_siginfo si;

	while (read(io->fd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			log_info("received %s", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
			proxy_drain(&d->proxy);
			break;
		case SIGHUP:
			daemon_reload(d);
			break;
		}
	}
}

static int signals_start(struct daemon *d)
{
	sigset_t mask;
	int fd;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (loop_add(&d->loop, &d->signal_io, fd, EPOLLIN, signal_on_event) < 0) {
		int rc = -errno;
		close(fd);
		d->signal_io.fd = -1;
		return rc;
	}
	return 0;
}

static void daemon_iteration_end(struct loop *loop, void *data)
{
	struct daemon *d = data;

	/* the loop stops once, when the drain completes; the shutdown that
	 * follows runs the loop again to reap the instances */
	if (proxy_iteration_end(&d->proxy) && !d->drained) {
		d->drained = true;
		loop->stop = true;
	}
	admin_reap(&d->admin);
}

int daemon_run(struct config *cfg)
{
	struct daemon *d = calloc(1, sizeof(*d));
	int rc;

	if (!d) {
		config_free(cfg);
		return -ENOMEM;
	}
	d->cfg = cfg;
	d->signal_io.fd = -1;
	log_open(cfg->log.error);
	log_set_level(cfg->log.level);
	rc = loop_init(&d->loop);
	if (rc < 0) {
		log_error("cannot create the event loop: %s", strerror(-rc));
		goto out_cfg;
	}
	choose_io(&d->loop);
	/* signals are blocked from here on: a SIGTERM during recovery waits
	 * until the loop runs, then drains */
	rc = signals_start(d);
	if (rc < 0) {
		log_error("cannot handle signals: %s", strerror(-rc));
		goto out_loop;
	}
	/* the admin socket first: a second daemon on the same state directory
	 * stops here, before it opens a listener or touches an instance */
	admin_init(&d->admin, &d->loop, &d->proxy, NULL);
	rc = admin_apply(&d->admin, cfg);
	if (rc < 0)
		goto out_loop;
	rc = proxy_start(&d->proxy, &d->loop, cfg);
	if (rc < 0) {
		log_error("cannot start the proxy: %s", strerror(-rc));
		goto out_loop;
	}
	if (config_has_managed(cfg)) {
		rc = deploy_side_start(d);
		if (rc < 0)
			goto out_proxy;
	}
	d->loop.on_iteration_end = daemon_iteration_end;
	d->loop.data = d;
	rc = loop_run(&d->loop);
	if (rc < 0)
		log_error("event loop failed: %s", strerror(-rc));
	/* after running, a stop stops the instances (a start that failed
	 * above left them running for the next daemon to adopt) */
	deploy_side_stop(d, true);
out_proxy:
	proxy_release(&d->proxy);
out_loop:
	admin_close(&d->admin);
	if (d->signal_io.fd >= 0) {
		loop_del(&d->loop, &d->signal_io);
		close(d->signal_io.fd);
	}
	loop_release(&d->loop);
out_cfg:
	config_free(d->cfg);
	free(d);
	return rc;
}

/* daemon.c - the composition root (contract in daemon.h).
 *
 * Start-up order: the loop and the signals; the sockets handed over by
 * systemd (socket activation) or by the previous daemon (`cutover upgrade`,
 * upgrade.c); the admin listeners (the Unix socket first: a second daemon on
 * the same state directory stops there); the proxy, whose listeners are
 * open (or taken over) while the loop does not run yet, so connections wait
 * in the accept queue; the deploy side, whose recovery re-adopts the
 * instances that outlived the previous daemon and puts traffic back on the
 * last known-good versions before the first request is accepted.  Then
 * READY (systemd, and the previous daemon of an upgrade) and the loop.
 *
 * Shutdown (SIGTERM, POST /v1/shutdown) refuses new deploys, drains the
 * proxy and exits, leaving the instances running and recorded for the next
 * daemon; only `cutover shutdown --stop-services` stops them first.
 *
 * A reload (SIGHUP) loads and validates a complete new configuration, then
 * hands it to each part; the proxy swaps it in only when everything it
 * needs could be built, else the old configuration stays in force.
 */
#include <errno.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include "admin/admin.h"
#include "base/list.h"
#include "base/log.h"
#include "base/util.h"
#include "config/config.h"
#include "daemon/daemon.h"
#include "daemon/daemon-internal.h"
#include "deploy/deploy.h"
#include "release/release.h"
#include "loop/inherit.h"
#include "loop/loop.h"
#include "loop/worker.h"
#include "notify/notify.h"
#include "proxy/proxy.h"
#include "secrets/redact.h"
#include "state/state.h"
#include "supervisor/supervisor.h"

static bool config_has_managed(const struct config *cfg)
{
	for (size_t i = 0; i < cfg->nservices; i++)
		if (cfg->services[i].run)
			return true;
	return false;
}

bool daemon_has_managed(const struct daemon *d)
{
	return config_has_managed(d->cfg);
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
 * if asked (the loop runs until they are reaped); the state writes still
 * queued finish (their completions use the deployer); then the deployer,
 * the supervisor and the state.  stop_instances false: they keep running
 * for the daemon that adopts them. */
void deploy_side_stop(struct daemon *d, bool stop_instances)
{
	if (!d->state)
		return;
	if (d->deployer && stop_instances)
		deployer_stop_all(d->deployer);
	/* the uptime's minute in progress, stored before the worker stops */
	admin_status_flush(&d->admin);
	worker_stop(d->worker);
	d->worker = NULL;
	d->admin.worker = NULL;
	d->admin.state = NULL;
	/* after the worker: its last completions may still name a release */
	release_runner_free(d->releases);
	d->releases = NULL;
	d->admin.releases = NULL;
	deployer_free(d->deployer);
	d->deployer = NULL;
	d->admin.deployer = NULL;
	d->sup = supervisor_free(d->sup);
	d->state = state_close(d->state);
}

/* The deployer's events go to the admin API's event streams, to the
 * release runner (a release waits for its deploys) and to the webhooks;
 * the runner's own to the streams and the webhooks. */
static void daemon_event(void *data, const char *kind, json_t *event)
{
	struct daemon *d = data;

	admin_event(&d->admin, kind, event);
	if (d->releases && !strcmp(kind, "deployment"))
		release_runner_deployment_event(d->releases, event);
	notifier_event(d->notifier, kind, event);
}

static void daemon_release_event(void *data, json_t *event)
{
	struct daemon *d = data;

	admin_event(&d->admin, "release", event);
	notifier_event(d->notifier, "release", event);
}

/* The state, its worker, the supervisor and the deployer; then recovery,
 * before the loop serves a request: traffic goes where it went before.
 * Returns 0 or -errno (logged); on failure nothing is left. */
int deploy_side_start(struct daemon *d)
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
	/* the key that signs proofs of what runs here (promotions): read or
	 * created now, before the loop runs */
	deployer_load_signer(d->deployer, d->cfg->state_dir);
	d->admin.deployer = d->deployer;
	deployer_observe(d->deployer, daemon_event, d);
	/* releases after the deploys: a release cut short is rolled back from
	 * where recovery left each service */
	rc = release_runner_new(&d->proxy, d->sup, d->deployer, d->worker, d->state, &d->releases);
	if (rc < 0)
		goto fail;
	rc = release_runner_recover(d->releases);
	if (rc < 0)
		goto fail;
	release_runner_observe(d->releases, daemon_release_event, d);
	d->admin.releases = d->releases;
	/* the status page's uptime minutes and deploy history */
	d->admin.worker = d->worker;
	d->admin.state = d->state;
	return 0;
fail:
	log_error("cannot start the deploy engine: %s", strerror(-rc));
	deploy_side_stop(d, false);
	return rc;
}

/* The admin token cfg asks for (config_admin_token), read from the
 * secrets file now: *token (sodium_malloc'd, NULL: none) and *len.
 * Returns 0 or -errno (logged: an admin address open to the network
 * without a token). */
static int admin_token_read(const struct config *cfg, char **token, size_t *len)
{
	struct config_error err;
	int rc = config_admin_token(cfg, NULL, token, len, &err);

	if (rc < 0)
		log_error("%s", err.message);
	else if (err.message[0])
		log_warn("%s", err.message);
	return rc;
}

/* SIGHUP: a complete new configuration, or the old one stays. */
static void daemon_reload(struct daemon *d)
{
	struct config *cfg = NULL;
	struct config_error err;
	const char *why = NULL;
	char what[600], *token = NULL;
	size_t token_len = 0;
	int rc;

	if (!d->cfg->path) {
		log_warn("SIGHUP ignored: running without a configuration file");
		return;
	}
	/* MONOTONIC_USEC: systemd >= 253 (Type=notify-reload) pairs the
	 * RELOADING=1 with the SIGHUP it sent by that time */
	systemd_notify(d, "RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long)(time_now_ns() / 1000));
	rc = config_load_env(d->cfg->path, d->cfg->env, &cfg, &err);
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
	if (admin_token_read(cfg, &token, &token_len) < 0) {
		log_error("reload failed, keeping the running configuration (see above)");
		goto fail;
	}
	if (proxy_apply(&d->proxy, cfg) < 0) {
		log_error("reload failed, keeping the running configuration (see above)");
		goto fail;
	}
	/* from here on the new configuration is in force: the admin listeners
	 * follow it as far as they can (a failure is logged, the old ones stay) */
	admin_set_token(&d->admin, token, token_len);
	admin_apply(&d->admin, cfg);
	notifier_configure(d->notifier, cfg);
	config_free(d->cfg);
	d->cfg = cfg;
	log_open(cfg->log.error);
	log_set_level(cfg->log.level);
	log_config_format(cfg->log.error_format == CONFIG_LOG_JSON ? LOG_FORMAT_JSON : LOG_FORMAT_LOGFMT);
	d->proxy.metrics.config_reloads++;
	log_info("configuration reloaded from %s: %zu services, %zu routes",
		 config_describe(cfg, what, sizeof(what)), cfg->nservices, cfg->nroutes);
	systemd_notify(d, "READY=1\nSTATUS=serving (configuration reloaded)");
	sodium_free(token);
	return;
fail:
	sodium_free(token);
	config_free(cfg);
	d->proxy.metrics.config_reload_failures++;
	systemd_notify(d, "READY=1\nSTATUS=serving (the last reload failed: see the error log)");
}

void daemon_shutdown(struct daemon *d, bool stop_services, const char *why)
{
	d->stop_services |= stop_services;
	if (d->shutting_down)
		return;
	d->shutting_down = true;
	/* nothing new starts from here on: it would be cut off */
	d->admin.refusing = "shutting down";
	systemd_notify(d, "STOPPING=1\nSTATUS=draining (%s)", why);
	log_info("shutting down (%s): draining; the service instances %s", why,
		 d->stop_services ? "will be stopped" : "keep running for the next daemon");
	/* an upgrade: the new daemon accepts on the same sockets, and the API
	 * socket is its own now */
	if (d->upgrade.state == UPGRADE_DONE)
		admin_stop_listening(&d->admin);
	/* the listening sockets outlive our close (the new daemon, systemd's
	 * socket unit), or our close is their last */
	proxy_drain(&d->proxy, d->upgrade.state == UPGRADE_DONE || d->systemd.activated);
}

/* The admin API's hooks into the daemon. */
static int hook_shutdown(void *data, bool stop_services, uid_t who, char *err, size_t errlen)
{
	struct daemon *d = data;

	if (d->upgrade.state == UPGRADE_RUNNING) {
		snprintf(err, errlen, "an upgrade is running (pid %d): wait for it to end", (int)d->upgrade.pid);
		return -EBUSY;
	}
	daemon_shutdown(d, stop_services, stop_services ? "cutover shutdown --stop-services" : "cutover shutdown");
	return 0;
}

static int hook_upgrade(void *data, const char *binary, uid_t who, char *err, size_t errlen)
{
	return upgrade_start(data, binary, who, err, errlen);
}

static json_t *hook_upgrade_status(void *data)
{
	return upgrade_json(data);
}

static void signal_on_event(struct loop *loop, struct loop_io *io, uint32_t events)
{
	struct daemon *d = container_of(io, struct daemon, signal_io);
	struct signalfd_siginfo si;
	char err[512];

	while (read(io->fd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			log_info("received %s", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
			if (d->upgrade.state == UPGRADE_RUNNING)
				log_warn("an upgrade is running: the new daemon (pid %d) is stopped with this one",
					 (int)d->upgrade.pid);
			upgrade_release(d);
			daemon_shutdown(d, false, si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
			break;
		case SIGHUP:
			daemon_reload(d);
			break;
		case SIGUSR2:
			log_info("received SIGUSR2: upgrading to %s", d->self);
			if (upgrade_start(d, NULL, (uid_t)-1, err, sizeof(err)) < 0)
				log_error("upgrade refused: %s", err);
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
	sigaddset(&mask, SIGUSR2);
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
	 * follows may run the loop again to reap the instances */
	if (proxy_iteration_end(&d->proxy) && !d->drained) {
		d->drained = true;
		loop->stop = true;
	}
	admin_reap(&d->admin);
}

/* startup.unready queue: accept once no service is starting any more, or
 * at startup.max_wait (then 503 with Retry-After for those still starting). */
static void hold_check(struct loop *loop, struct loop_timer *timer)
{
	struct daemon *d = container_of(timer, struct daemon, hold_timer);
	char names[256];
	size_t n = d->deployer ? deployer_starting(d->deployer, names, sizeof(names)) : 0;

	if (n && loop->now_ms < d->hold_until_ms) {
		loop_timer_set(loop, timer, loop->now_ms + 50, hold_check);
		return;
	}
	if (n)
		log_warn("startup.max_wait reached with %s still starting: accepting; %s answer 503 with Retry-After "
			 "until healthy", names, n == 1 ? "it" : "they");
	else
		log_info("every service has a healthy version: accepting connections");
	proxy_hold(&d->proxy, false);
}

/* After recovery: does a service start from nothing (its instances did not
 * survive)?  Then queue or answer 503, as startup.unready says. */
static void hold_start(struct daemon *d)
{
	char names[256];
	size_t n = d->deployer ? deployer_starting(d->deployer, names, sizeof(names)) : 0;

	if (!n) {
		proxy_hold(&d->proxy, false);
		return;
	}
	if (d->cfg->startup.unready == CONFIG_UNREADY_RETRY_AFTER) {
		log_warn("%s %s starting: accepting; %s answer 503 with Retry-After until healthy", names,
			 n == 1 ? "is" : "are", n == 1 ? "it" : "they");
		proxy_hold(&d->proxy, false);
		return;
	}
	log_warn("%s %s starting: new connections wait in the accept queue until %s healthy (at most %llu ms, "
		 "startup.max_wait)", names, n == 1 ? "is" : "are", n == 1 ? "it is" : "they are",
		 (unsigned long long)d->cfg->startup.max_wait_ms);
	d->hold_until_ms = d->loop.now_ms + d->cfg->startup.max_wait_ms;
	hold_check(&d->loop, &d->hold_timer);
}

static void settle_fired(struct loop *loop, struct loop_timer *timer)
{
	loop->stop = true;
}

/* Run the loop for one more millisecond: what was freed "later" (health
 * checks let go of with the deploy side are reaped by a timer, so that no
 * event already queued for their sockets reaches freed memory) is freed
 * before the loop itself goes. */
static void loop_settle(struct daemon *d)
{
	struct loop_timer t = { 0 };

	loop_timer_set(&d->loop, &t, d->loop.now_ms + 1, settle_fired);
	d->loop.stop = false;
	loop_run(&d->loop);
	loop_timer_cancel(&d->loop, &t);
}

/* This binary's path, for an upgrade to the same file (after it was
 * replaced on disk: /proc/self/exe then ends in " (deleted)"). */
static void read_self(struct daemon *d)
{
	ssize_t n = readlink("/proc/self/exe", d->self, sizeof(d->self) - 1);

	d->self[n > 0 ? n : 0] = 0;
	if (n > 10 && !strcmp(d->self + n - 10, " (deleted)"))
		d->self[n - 10] = 0;
}

int daemon_run(struct config *cfg, char **argv)
{
	struct daemon *d = calloc(1, sizeof(*d));
	char what[600], *token = NULL;
	size_t token_len = 0;
	int rc;

	if (!d) {
		config_free(cfg);
		return -ENOMEM;
	}
	d->cfg = cfg;
	d->argv = argv;
	d->signal_io.fd = -1;
	d->upgrade.pid_io.fd = d->upgrade.sock_io.fd = d->upgrade.from_fd = -1;
	read_self(d);
	log_open(cfg->log.error);
	log_set_level(cfg->log.level);
	log_config_format(cfg->log.error_format == CONFIG_LOG_JSON ? LOG_FORMAT_JSON : LOG_FORMAT_LOGFMT);
	/* secret values hidden in the error log too (the deployer reads them) */
	log_set_filter(redact_global_str);
	/* which environment this daemon serves: two may run side by side */
	if (cfg->path)
		log_fields(LOG_LEVEL_INFO,
			   LOG_FIELDS(LOG_STR("cutover_version", CUTOVER_VERSION), LOG_INT("pid", getpid())),
			   "configuration %s: %zu services, %zu routes", config_describe(cfg, what, sizeof(what)),
			   cfg->nservices, cfg->nroutes);
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
	/* sockets handed over: by systemd, or by the daemon we replace */
	rc = systemd_init(d);
	if (rc == 0)
		rc = upgrade_receive(d);
	if (rc < 0)
		goto out_loop;
	/* the admin socket first: a second daemon on the same state directory
	 * stops here, before it opens a listener or touches an instance */
	admin_init(&d->admin, &d->loop, &d->proxy, NULL);
	d->admin.inherited = &d->inherited;
	/* a socket file handed over is not ours to remove when we exit: under
	 * socket activation systemd keeps the socket and gives it to the next
	 * daemon, which clients then reach only through that path */
	d->admin.keep_socket_file = inherited_has_unix(&d->inherited, cfg->admin_socket);
	/* maintenance is recorded in the state: not by `cutover proxy`, which has none */
	d->admin.hooks = (struct admin_hooks){ d, hook_shutdown, hook_upgrade, hook_upgrade_status, daemon_metrics,
					       cfg->path ? daemon_maintenance_changed : NULL };
	/* a non-loopback admin address without admin_token stops here */
	rc = admin_token_read(cfg, &token, &token_len);
	if (rc < 0)
		goto out_loop;
	admin_set_token(&d->admin, token, token_len);
	sodium_free(token);
	rc = admin_apply(&d->admin, cfg);
	d->admin.inherited = NULL;
	if (rc < 0)
		goto out_loop;
	/* held: connections wait in the accept queue until recovery is done */
	rc = proxy_start(&d->proxy, &d->loop, cfg, &d->inherited, true);
	inherited_release(&d->inherited);
	if (rc < 0) {
		log_error("cannot start the proxy: %s", strerror(-rc));
		goto out_loop;
	}
	/* the webhooks, before the deploy side whose events they carry; the
	 * daemon runs without them if libcurl cannot start */
	rc = notifier_new(&d->loop, cfg, &d->notifier);
	if (rc < 0)
		log_error("cannot start the webhooks (notifications:): %s; none will be sent", strerror(-rc));
	d->admin.notifier = d->notifier;
	if (config_has_managed(cfg)) {
		rc = deploy_side_start(d);
		if (rc < 0)
			goto out_proxy;
	}
	/* the services in maintenance, before the first request is accepted */
	daemon_maintenance_load(d);
	d->loop.on_iteration_end = daemon_iteration_end;
	d->loop.data = d;
	hold_start(d);
	/* after an upgrade, upgrade_ready() tells systemd (MAINPID, READY) */
	if (!upgrade_ready(d))
		systemd_notify(d, "READY=1\nSTATUS=serving");
	systemd_watchdog_start(d);
	rc = loop_run(&d->loop);
	if (rc < 0)
		log_error("event loop failed: %s", strerror(-rc));
	upgrade_release(d);
	systemd_release(d);
	loop_timer_cancel(&d->loop, &d->hold_timer);
	/* the instances keep running for the next daemon to adopt, unless
	 * `cutover shutdown --stop-services` asked otherwise */
	deploy_side_stop(d, d->stop_services);
	daemon_maintenance_stop(d);
	/* what the webhooks still have to send: at most 2 s more */
	notifier_drain(d->notifier, 2000);
	loop_settle(d);
out_proxy:
	d->admin.notifier = NULL;
	d->notifier = notifier_free(d->notifier);
	proxy_release(&d->proxy);
out_loop:
	inherited_release(&d->inherited);
	upgrade_release(d);
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

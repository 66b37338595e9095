/* defaults.c - the values of everything a configuration file leaves out,
 * and config_free().
 *
 * The loader fills a zeroed struct config with these defaults before it
 * reads the file, so a key that is not written keeps its default; `cutover
 * proxy` without a file uses them directly.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include "base/log.h"
#include "config/config-internal.h"

void config_deploy_defaults(struct config_deploy *d)
{
	*d = (struct config_deploy){
		.strategy = CONFIG_STRATEGY_BLUE_GREEN,
		.timeout_ms = 60 * 1000,
		.drain_ms = 30 * 1000,
		.rollback_window_ms = 5 * 60 * 1000,
		.watch_ms = 60 * 1000,
		.max_error_rate_permille = 50,
		.max_p99_ms = 0,
		.min_requests = 20,
		.smoke = d->smoke,
		.steps = { { 10, 60 * 1000 }, { 50, 60 * 1000 }, { 100, 0 } },
		.nsteps = 3,
		.max_surge = { 25, true },
		.max_unavailable = { 0, false },
		.min_ready_ms = 5 * 1000,
		.batch_hold_ms = 30 * 1000,
		.confidence_bp = 9900,
		.max_error_rate_increase_permille = 0,
		.max_p50_ms = 0,
		.max_p50_ratio_percent = 200,
		.max_p99_ratio_percent = 200,
		.latency_margin_ms = 10,
		.max_extension_ms = 5 * 60 * 1000,
		.on_inconclusive = CONFIG_INCONCLUSIVE_PAUSE,
		.retry_on_stable = true,
	};
}

int config_service_defaults(struct config_service *svc)
{
	svc->health.interval_ms = 1000;
	svc->health.timeout_ms = 500;         /* half the interval, at most 2s */
	svc->health.healthy_threshold = 2;
	svc->health.unhealthy_threshold = 3;
	svc->health.start_grace_ms = 30 * 1000;
	svc->stop_signal = SIGTERM;
	svc->stop_grace_ms = 10 * 1000;
	svc->instances = 1;
	svc->alerts.max_error_rate_permille = 50;
	svc->alerts.max_p99_ms = 1000;
	config_deploy_defaults(&svc->deploy);
	if (!svc->health.path && !(svc->health.path = strdup("/health")))
		return -ENOMEM;
	if (!svc->changelog && !(svc->changelog = strdup("CHANGELOG.md")))
		return -ENOMEM;
	return 0;
}

int config_defaults(struct config *cfg)
{
	size_t i;
	int r;

	cfg->timeouts = (struct config_timeouts){
		.client_header = 10 * 1000,
		.client_idle = 60 * 1000,
		.client_body = 60 * 1000,
		.upstream_connect = 5 * 1000,
		.upstream_header = 60 * 1000,
		.upstream_body = 60 * 1000,
		.upstream_idle = 30 * 1000,
		.drain = 30 * 1000,
		.upgrade = 60 * 1000,
	};
	cfg->startup = (struct config_startup){
		.unready = CONFIG_UNREADY_QUEUE,
		.max_wait_ms = 30 * 1000,
		.retry_after_ms = 5 * 1000,
	};
	cfg->approval = (struct config_approval){ .required = false, .timeout_ms = 3600 * 1000, .distinct = false };
	cfg->release.concurrency = 4;
	cfg->release.gate_timeout_ms = 10 * 60 * 1000;
	cfg->cohorts.max_age_ms = 30ull * 24 * 3600 * 1000;
	if ((!cfg->cohorts.cookie && !(cfg->cohorts.cookie = strdup("cutover_cohort"))) ||
	    (!cfg->cohorts.override_cookie && !(cfg->cohorts.override_cookie = strdup("cutover_version"))) ||
	    (!cfg->cohorts.override_header && !(cfg->cohorts.override_header = strdup("X-Cutover-Version"))))
		return -ENOMEM;
	cfg->limits = (struct config_limits){
		.max_header_bytes = 16 * 1024,
		.max_uri_bytes = 8 * 1024,
		.buffer_bytes = 16 * 1024,
		.max_connections = 20000,
		.upstream_idle_per_target = 64,
		.max_retries = 2,
	};
	cfg->log.access_format = CONFIG_LOG_LOGFMT;
	cfg->log.error_format = CONFIG_LOG_LOGFMT;
	cfg->log.level = LOG_LEVEL_INFO;
	if (!cfg->state_dir && !(cfg->state_dir = strdup(CONFIG_STATE_DIR_DEFAULT)))
		return -ENOMEM;
	if (!cfg->admin_socket) {
		const char *parts[2] = { cfg->state_dir, "admin.sock" };

		cfg->admin_socket = path_join(parts, 2);
		if (!cfg->admin_socket)
			return -ENOMEM;
	}
	for (i = 0; i < cfg->nservices; i++) {
		r = config_service_defaults(&cfg->services[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

static void service_release(struct config_service *svc)
{
	size_t j;

	for (j = 0; j < svc->ntargets; j++)
		free(svc->targets[j].addr.text);
	free(svc->targets);
	free(svc->name);
	free(svc->build);
	free(svc->run);
	free(svc->workdir);
	for (j = 0; j < svc->nenv; j++) {
		free(svc->env[j].name);
		free(svc->env[j].value);
	}
	free(svc->env);
	free(svc->health.path);
	free(svc->health.host);
	free(svc->deploy.smoke);
	for (size_t k = 0; k < svc->nroute_classes; k++) {
		free(svc->route_classes[k].name);
		free(svc->route_classes[k].method);
		free(svc->route_classes[k].path_prefix);
	}
	free(svc->route_classes);
	for (size_t k = 0; k < svc->nsecrets; k++) {
		free(svc->secrets[k].name);
		free(svc->secrets[k].target);
	}
	free(svc->secrets);
	for (size_t k = 0; k < svc->ndepends_on; k++)
		free(svc->depends_on[k]);
	free(svc->depends_on);
	free(svc->changelog);
}

/* Also safe on a partly filled config, as long as each count covers only
 * zeroed or filled entries (how the loader builds it). */
struct config *config_free(struct config *cfg)
{
	size_t i;

	if (!cfg)
		return NULL;
	for (i = 0; i < cfg->nlisten; i++)
		free(cfg->listen[i].text);
	free(cfg->listen);
	free(cfg->admin.text);
	for (i = 0; i < cfg->nservices; i++)
		service_release(&cfg->services[i]);
	free(cfg->services);
	for (i = 0; i < cfg->nroutes; i++) {
		free(cfg->routes[i].host);
		free(cfg->routes[i].path_prefix);
	}
	free(cfg->routes);
	for (i = 0; i < cfg->nvariables; i++) {
		free(cfg->variables[i].name);
		free(cfg->variables[i].value);
	}
	free(cfg->variables);
	free(cfg->log.access);
	free(cfg->log.error);
	free(cfg->cohorts.cookie);
	free(cfg->cohorts.override_cookie);
	free(cfg->cohorts.override_header);
	free(cfg->secrets.file);
	free(cfg->secrets.recipients);
	free(cfg->secrets.identity);
	free(cfg->secrets.runtime_dir);
	free(cfg->promotion.from);
	free(cfg->release.notes_template);
	pipeline_release(&cfg->pipeline);
	for (i = 0; i < cfg->notifications.nwebhooks; i++) {
		free(cfg->notifications.webhooks[i].name);
		free(cfg->notifications.webhooks[i].url);
		free(cfg->notifications.webhooks[i].url_secret);
	}
	free(cfg->notifications.webhooks);
	free(cfg->state_dir);
	free(cfg->admin_socket);
	free(cfg->path);
	free(cfg->env);
	free(cfg->overlay);
	free(cfg);
	return NULL;
}

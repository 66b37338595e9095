/* test_config.c - unit tests for the cutover.yml loader (src/config).
 *
 * Valid configs are checked field by field, including every default.  Invalid
 * ones come from one table: each case states the exact line, column and field
 * the error must name, and a piece of the reason, so a message that drifts to
 * the wrong place fails here.  Every loaded config is freed; run the program
 * under valgrind or ASan to check that failures free everything as well.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "config/config.h"
#include "config/show.h"
#include "config/yaml-tree.h"

#define NAME "cutover.yml"

/* Load text that must be valid; fails the test with the message if not. */
static struct config *load_ok(const char *text)
{
	struct config_error err;
	struct config *cfg = NULL;
	int r = config_load_string(NAME, text, strlen(text), &cfg, &err);

	if (r < 0)
		fail_msg("expected a valid config, got %d: %s", r, err.message);
	assert_non_null(cfg);
	return cfg;
}

static uint16_t addr_port(const struct config_addr *a)
{
	if (a->sa.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&a->sa)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)&a->sa)->sin6_port);
}

static void assert_defaults_except_none(const struct config *cfg)
{
	assert_int_equal(cfg->timeouts.client_header, 10000);
	assert_int_equal(cfg->timeouts.client_idle, 60000);
	assert_int_equal(cfg->timeouts.client_body, 60000);
	assert_int_equal(cfg->timeouts.upstream_connect, 5000);
	assert_int_equal(cfg->timeouts.upstream_header, 60000);
	assert_int_equal(cfg->timeouts.upstream_body, 60000);
	assert_int_equal(cfg->timeouts.upstream_idle, 30000);
	assert_int_equal(cfg->timeouts.drain, 30000);
	assert_int_equal(cfg->limits.max_header_bytes, 16384);
	assert_int_equal(cfg->limits.max_uri_bytes, 8192);
	assert_int_equal(cfg->limits.buffer_bytes, 16384);
	assert_int_equal(cfg->limits.max_connections, 20000);
	assert_int_equal(cfg->limits.upstream_idle_per_target, 64);
	assert_int_equal(cfg->limits.max_retries, 2);
	assert_null(cfg->log.access);
	assert_int_equal(cfg->log.access_format, CONFIG_LOG_LOGFMT);
	assert_null(cfg->log.error);
	assert_int_equal(cfg->log.level, LOG_LEVEL_INFO);
	assert_string_equal(cfg->state_dir, "/var/lib/cutover");
	assert_string_equal(cfg->admin_socket, "/var/lib/cutover/admin.sock");
	assert_string_equal(cfg->cohorts.cookie, "cutover_cohort");
	assert_int_equal(cfg->cohorts.max_age_ms, 30ull * 24 * 3600 * 1000);
	assert_string_equal(cfg->cohorts.override_cookie, "cutover_version");
	assert_string_equal(cfg->cohorts.override_header, "X-Cutover-Version");
}

/* Every per-service default of the managed-service settings. */
static void assert_service_defaults(const struct config_service *svc)
{
	assert_null(svc->build);
	assert_null(svc->workdir);
	assert_null(svc->env);
	assert_int_equal(svc->nenv, 0);
	assert_string_equal(svc->health.path, "/health");
	assert_null(svc->health.host);
	assert_int_equal(svc->health.interval_ms, 1000);
	assert_int_equal(svc->health.timeout_ms, 500);
	assert_int_equal(svc->health.healthy_threshold, 2);
	assert_int_equal(svc->health.unhealthy_threshold, 3);
	assert_int_equal(svc->health.start_grace_ms, 30000);
	assert_int_equal(svc->stop_signal, SIGTERM);
	assert_int_equal(svc->stop_grace_ms, 10000);
	assert_int_equal(svc->instances, 1);
	assert_int_equal(svc->limits.nofile, 0);
	assert_int_equal(svc->limits.nproc, 0);
	assert_int_equal(svc->limits.core, 0);
	assert_false(svc->limits.core_set);
	assert_int_equal(svc->limits.memory_max, 0);
	assert_int_equal(svc->limits.cpu_max_percent, 0);
	assert_int_equal(svc->deploy.strategy, CONFIG_STRATEGY_BLUE_GREEN);
	assert_int_equal(svc->deploy.timeout_ms, 60000);
	assert_int_equal(svc->deploy.drain_ms, 30000);
	assert_int_equal(svc->deploy.rollback_window_ms, 300000);
	assert_int_equal(svc->deploy.watch_ms, 60000);
	assert_int_equal(svc->deploy.max_error_rate_permille, 50);
	assert_int_equal(svc->deploy.max_p99_ms, 0);
	assert_int_equal(svc->deploy.min_requests, 20);
	assert_null(svc->deploy.smoke);
	assert_null(svc->route_classes);
	assert_int_equal(svc->nroute_classes, 0);
}

/* ---- valid configs ----------------------------------------------------- */

static void test_minimal(void **state UNUSED)
{
	struct config *cfg = load_ok("listen: 127.0.0.1:8080\n"
				     "services:\n"
				     "  shop:\n"
				     "    targets:\n"
				     "      - 127.0.0.1:9001\n");

	assert_string_equal(cfg->path, NAME);
	assert_int_equal(cfg->nlisten, 1);
	assert_string_equal(cfg->listen[0].text, "127.0.0.1:8080");
	assert_int_equal(cfg->listen[0].sa.ss_family, AF_INET);
	assert_int_equal(cfg->listen[0].salen, sizeof(struct sockaddr_in));
	assert_int_equal(addr_port(&cfg->listen[0]), 8080);
	assert_null(cfg->admin.text);
	assert_int_equal(cfg->nservices, 1);
	assert_string_equal(cfg->services[0].name, "shop");
	assert_int_equal(cfg->services[0].ntargets, 1);
	assert_string_equal(cfg->services[0].targets[0].addr.text, "127.0.0.1:9001");
	assert_int_equal(cfg->services[0].targets[0].weight, 1);
	assert_int_equal(cfg->nroutes, 0);
	assert_null(cfg->routes);
	assert_null(cfg->services[0].run);
	assert_service_defaults(&cfg->services[0]);
	assert_defaults_except_none(cfg);
	config_free(cfg);
}

static void test_full(void **state UNUSED)
{
	struct config *cfg = load_ok("listen: 127.0.0.1:8080\n"
				     "admin: 127.0.0.1:9180\n"
				     "timeouts:\n"
				     "  client_header: 250ms\n"
				     "  client_idle: 2m\n"
				     "  client_body: 7\n"
				     "  upstream_connect: 1s\n"
				     "  upstream_header: 1h\n"
				     "  upstream_body: 45s\n"
				     "  upstream_idle: 3s\n"
				     "  drain: 0\n"
				     "limits:\n"
				     "  max_header_bytes: 32k\n"
				     "  max_uri_bytes: 1024\n"
				     "  buffer_bytes: 1m\n"
				     "  max_connections: 100\n"
				     "  upstream_idle_per_target: 0\n"
				     "  max_retries: 0\n"
				     "log:\n"
				     "  access: /var/log/cutover/access.log\n"
				     "  format: json\n"
				     "  error: /var/log/cutover/error.log\n"
				     "  level: debug\n"
				     "services:\n"
				     "  shop:\n"
				     "    targets:\n"
				     "      - 127.0.0.1:9001\n"
				     "    routes:\n"
				     "      - host: shop.example.com\n"
				     "        path: /\n"
				     "      - path: /api/\n"
				     "  api-v2_x:\n"
				     "    targets: [\"[::1]:9100\"]\n"
				     "    routes:\n"
				     "      - host: \"*.example.com\"\n");

	assert_string_equal(cfg->admin.text, "127.0.0.1:9180");
	assert_int_equal(addr_port(&cfg->admin), 9180);
	assert_int_equal(cfg->timeouts.client_header, 250);
	assert_int_equal(cfg->timeouts.client_idle, 120000);
	assert_int_equal(cfg->timeouts.client_body, 7000);
	assert_int_equal(cfg->timeouts.upstream_connect, 1000);
	assert_int_equal(cfg->timeouts.upstream_header, 3600000);
	assert_int_equal(cfg->timeouts.upstream_body, 45000);
	assert_int_equal(cfg->timeouts.upstream_idle, 3000);
	assert_int_equal(cfg->timeouts.drain, 0);
	assert_int_equal(cfg->limits.max_header_bytes, 32768);
	assert_int_equal(cfg->limits.max_uri_bytes, 1024);
	assert_int_equal(cfg->limits.buffer_bytes, 1048576);
	assert_int_equal(cfg->limits.max_connections, 100);
	assert_int_equal(cfg->limits.upstream_idle_per_target, 0);
	assert_int_equal(cfg->limits.max_retries, 0);
	assert_string_equal(cfg->log.access, "/var/log/cutover/access.log");
	assert_int_equal(cfg->log.access_format, CONFIG_LOG_JSON);
	assert_string_equal(cfg->log.error, "/var/log/cutover/error.log");
	assert_int_equal(cfg->log.level, LOG_LEVEL_DEBUG);

	assert_int_equal(cfg->nservices, 2);
	assert_string_equal(cfg->services[1].name, "api-v2_x");
	assert_int_equal(cfg->services[1].targets[0].addr.sa.ss_family, AF_INET6);
	assert_int_equal(addr_port(&cfg->services[1].targets[0].addr), 9100);

	assert_int_equal(cfg->nroutes, 3);
	assert_string_equal(cfg->routes[0].host, "shop.example.com");
	assert_string_equal(cfg->routes[0].path_prefix, "/");
	assert_int_equal(cfg->routes[0].service, 0);
	assert_int_equal(cfg->routes[0].line, 29);
	assert_null(cfg->routes[1].host);
	assert_string_equal(cfg->routes[1].path_prefix, "/api/");
	assert_int_equal(cfg->routes[1].service, 0);
	assert_int_equal(cfg->routes[1].line, 31);
	assert_string_equal(cfg->routes[2].host, "*.example.com");
	assert_string_equal(cfg->routes[2].path_prefix, "/");
	assert_int_equal(cfg->routes[2].service, 1);
	assert_int_equal(cfg->routes[2].line, 35);
	config_free(cfg);
}

static void test_target_forms(void **state UNUSED)
{
	struct config *cfg = load_ok("listen: 127.0.0.1:8080\n"
				     "services:\n"
				     "  shop:\n"
				     "    targets:\n"
				     "      - 127.0.0.1:9001\n"
				     "      - address: 127.0.0.1:9002\n"
				     "        weight: 3\n"
				     "      - {address: \"[::1]:9003\", weight: 1000}\n"
				     "      - address: localhost:9004\n");
	const struct config_service *svc = &cfg->services[0];

	assert_int_equal(svc->ntargets, 4);
	assert_string_equal(svc->targets[0].addr.text, "127.0.0.1:9001");
	assert_int_equal(svc->targets[0].weight, 1);
	assert_string_equal(svc->targets[1].addr.text, "127.0.0.1:9002");
	assert_int_equal(svc->targets[1].weight, 3);
	assert_int_equal(svc->targets[2].addr.sa.ss_family, AF_INET6);
	assert_int_equal(svc->targets[2].weight, 1000);
	assert_string_equal(svc->targets[3].addr.text, "localhost:9004");
	assert_int_equal(svc->targets[3].addr.sa.ss_family, AF_INET);
	assert_int_equal(addr_port(&svc->targets[3].addr), 9004);
	assert_int_equal(svc->targets[3].weight, 1);
	config_free(cfg);
}

static void test_listen_list(void **state UNUSED)
{
	struct config *cfg = load_ok("listen:\n"
				     "  - 0.0.0.0:80\n"
				     "  - \"[::]:80\"\n"
				     "  - 127.0.0.1:8080\n"
				     "admin: \"[::1]:9180\"\n"
				     "services:\n"
				     "  shop:\n"
				     "    targets: [127.0.0.1:9001]\n");

	assert_int_equal(cfg->nlisten, 3);
	assert_string_equal(cfg->listen[0].text, "0.0.0.0:80");
	assert_int_equal(cfg->listen[1].sa.ss_family, AF_INET6);
	assert_int_equal(addr_port(&cfg->listen[2]), 8080);
	assert_int_equal(cfg->admin.sa.ss_family, AF_INET6);
	assert_string_equal(cfg->admin_file, "cutover.yml");
	assert_int_equal(cfg->admin_line, 5);
	assert_int_equal(cfg->admin_column, 8);
	config_free(cfg);
}

/* An admin address open to the network loads: whether it has its token
 * is config_admin_token()'s to say (test_config_secrets). */
static void test_admin_not_loopback(void **state UNUSED)
{
	struct config *cfg = load_ok("listen: 127.0.0.1:8080\n"
				     "admin: 0.0.0.0:9180\n"
				     "services:\n"
				     "  shop:\n"
				     "    targets: [127.0.0.1:9001]\n");

	assert_string_equal(cfg->admin.text, "0.0.0.0:9180");
	assert_int_equal(cfg->admin_line, 2);
	config_free(cfg);
}

static void test_routes_valid(void **state UNUSED)
{
	struct config *cfg = load_ok("listen: 127.0.0.1:8080\n"
				     "services:\n"
				     "  web:\n"
				     "    targets: [127.0.0.1:9001]\n"
				     "    routes:\n"
				     "      - host: Shop.Example.COM\n"
				     "      - host: \"*.Example.com\"\n"
				     "        path: /static/\n"
				     "      - {}\n"
				     "  hidden:\n"
				     "    targets: [127.0.0.1:9002]\n"
				     "  api:\n"
				     "    targets: [127.0.0.1:9003]\n"
				     "    routes:\n"
				     "      - host: shop.example.com\n"
				     "        path: /api/\n"
				     "      - host: 127.0.0.1\n");

	assert_int_equal(cfg->nservices, 3);
	assert_int_equal(cfg->nroutes, 5);
	assert_string_equal(cfg->routes[0].host, "shop.example.com");
	assert_string_equal(cfg->routes[0].path_prefix, "/");
	assert_int_equal(cfg->routes[0].service, 0);
	assert_int_equal(cfg->routes[0].line, 6);
	assert_string_equal(cfg->routes[1].host, "*.example.com");
	assert_string_equal(cfg->routes[1].path_prefix, "/static/");
	assert_null(cfg->routes[2].host);
	assert_string_equal(cfg->routes[2].path_prefix, "/");
	assert_int_equal(cfg->routes[2].service, 0);
	assert_string_equal(cfg->routes[3].host, "shop.example.com");
	assert_string_equal(cfg->routes[3].path_prefix, "/api/");
	assert_int_equal(cfg->routes[3].service, 2);
	assert_int_equal(cfg->routes[3].line, 15);
	assert_string_equal(cfg->routes[4].host, "127.0.0.1");
	assert_int_equal(cfg->routes[4].service, 2);
	config_free(cfg);
}

static void test_empty_sections_and_flow_style(void **state UNUSED)
{
	struct config *cfg = load_ok("{listen: [127.0.0.1:8080], timeouts: , limits: ~, log: {},\n"
				     " services: {a: {targets: [127.0.0.1:1], routes: }}}\n");

	assert_defaults_except_none(cfg);
	assert_int_equal(cfg->nservices, 1);
	assert_int_equal(cfg->nroutes, 0);
	config_free(cfg);
}

static void test_startup_settings(void **state UNUSED)
{
	struct config *cfg = load_ok("listen: 127.0.0.1:8080\n"
				     "startup: {unready: retry-after, max_wait: 2s, retry_after: 3s}\n"
				     "timeouts: {upgrade: 90s}\n"
				     "services:\n"
				     "  a:\n"
				     "    targets: [127.0.0.1:1]\n");

	assert_int_equal(cfg->startup.unready, CONFIG_UNREADY_RETRY_AFTER);
	assert_int_equal(cfg->startup.max_wait_ms, 2000);
	assert_int_equal(cfg->startup.retry_after_ms, 3000);
	assert_int_equal(cfg->timeouts.upgrade, 90000);
	config_free(cfg);
	cfg = load_ok("listen: 127.0.0.1:8080\nservices:\n  a:\n    targets: [127.0.0.1:1]\n");
	assert_int_equal(cfg->startup.unready, CONFIG_UNREADY_QUEUE);
	assert_int_equal(cfg->startup.max_wait_ms, 30000);
	assert_int_equal(cfg->startup.retry_after_ms, 5000);
	assert_int_equal(cfg->timeouts.upgrade, 60000);
	config_free(cfg);
}

/* approval: and promotion: (src/config/promotion.c): the defaults, the
 * short form, the mapping, and an overlay that requires approval in one
 * environment only. */
static json_t *json_path(json_t *doc, const char *path);
#define TRUST_KEY "ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
static void test_approval_and_promotion(void **state UNUSED)
{
	static const char base[] = "listen: 127.0.0.1:8080\nservices:\n  shop:\n    targets: [127.0.0.1:9001]\n";
	static const char prod[] = "approval: {required: true, timeout: 30m, distinct: true}\n"
				   "promotion:\n  from: staging\n  soak: 10m\n  trust: [\"" TRUST_KEY "\"]\n";
	struct config_source sources[] = { { NAME, base, strlen(base) }, { "cutover.prod.yml", prod, strlen(prod) } };
	struct config_error err;
	struct config *cfg = load_ok(base);
	struct ynode *tree = NULL;
	json_t *doc;

	assert_false(cfg->approval.required);
	assert_int_equal(cfg->approval.timeout_ms, 3600 * 1000);
	assert_false(cfg->approval.distinct);
	assert_null(cfg->promotion.from);
	assert_int_equal(cfg->promotion.soak_ms, 0);
	assert_int_equal(cfg->promotion.ntrust, 0);
	config_free(cfg);

	cfg = load_ok("listen: 127.0.0.1:8080\napproval: required\n"
		      "services:\n  shop:\n    targets: [127.0.0.1:9001]\n");
	assert_true(cfg->approval.required);
	assert_int_equal(cfg->approval.timeout_ms, 3600 * 1000);
	assert_false(cfg->approval.distinct);
	config_free(cfg);
	cfg = load_ok("listen: 127.0.0.1:8080\napproval: none\npromotion: {}\n"
		      "services:\n  shop:\n    targets: [127.0.0.1:9001]\n");
	assert_false(cfg->approval.required);
	config_free(cfg);

	cfg = NULL;
	if (config_load_sources_tree(sources, ARRAY_SIZE(sources), &cfg, &tree, &err) < 0)
		fail_msg("%s", err.message);
	assert_true(cfg->approval.required);
	assert_int_equal(cfg->approval.timeout_ms, 30 * 60 * 1000);
	assert_true(cfg->approval.distinct);
	assert_string_equal(cfg->promotion.from, "staging");
	assert_int_equal(cfg->promotion.soak_ms, 10 * 60 * 1000);
	assert_int_equal(cfg->promotion.ntrust, 1);
	assert_string_equal(cfg->promotion.trust[0], TRUST_KEY);
	/* config show: each value and the overlay line it came from */
	doc = config_show_json(cfg, tree);
	assert_string_equal(json_string_value(json_path(doc, "config.approval.required.value")), "true");
	assert_string_equal(json_string_value(json_path(doc, "config.approval.timeout.value")), "30m");
	assert_string_equal(json_string_value(json_path(doc, "config.approval.timeout.origin.file")), "cutover.prod.yml");
	assert_int_equal(json_integer_value(json_path(doc, "config.promotion.soak.origin.line")), 4);
	assert_string_equal(json_string_value(json_path(doc, "config.promotion.trust[0].value")), TRUST_KEY);
	assert_int_equal(json_integer_value(json_path(doc, "config.promotion.trust[0].origin.line")), 5);
	json_decref(doc);
	ynode_free(tree);
	config_free(cfg);
}

static void test_cohorts_settings(void **state UNUSED)
{
	static const struct {
		const char *max_age;
		uint64_t ms;
	} ages[] = {
		{ "1m", 60000 }, { "12h", 12 * 3600000ull }, { "7d", 7 * 86400000ull },
		{ "400d", 400 * 86400000ull }, { "90000", 90000000 },
	};
	char text[512];
	struct config *cfg = load_ok("listen: 127.0.0.1:8080\n"
				     "cohorts:\n"
				     "  cookie: shop_cohort\n"
				     "  max_age: 90d\n"
				     "  override_cookie: qa-version\n"
				     "  override_header: X-Shop-Version\n"
				     "services:\n"
				     "  a:\n"
				     "    targets: [127.0.0.1:1]\n");

	assert_string_equal(cfg->cohorts.cookie, "shop_cohort");
	assert_int_equal(cfg->cohorts.max_age_ms, 90 * 86400000ull);
	assert_string_equal(cfg->cohorts.override_cookie, "qa-version");
	assert_string_equal(cfg->cohorts.override_header, "X-Shop-Version");
	config_free(cfg);
	for (size_t i = 0; i < ARRAY_SIZE(ages); i++) {
		snprintf(text, sizeof(text),
			 "listen: 127.0.0.1:8080\ncohorts: {max_age: %s}\nservices: {a: {targets: [127.0.0.1:1]}}\n",
			 ages[i].max_age);
		cfg = load_ok(text);
		assert_int_equal(cfg->cohorts.max_age_ms, ages[i].ms);
		assert_string_equal(cfg->cohorts.cookie, "cutover_cohort"); /* the others keep their defaults */
		config_free(cfg);
	}
}

static void test_log_variants(void **state UNUSED)
{
	struct config *cfg = load_ok("listen: 127.0.0.1:8080\n"
				     "log:\n"
				     "  access: off\n"
				     "  error: \"-\"\n"
				     "  level: error\n"
				     "services:\n"
				     "  a:\n"
				     "    targets: [127.0.0.1:1]\n");

	assert_null(cfg->log.access);
	assert_string_equal(cfg->log.error, "-");
	assert_int_equal(cfg->log.level, LOG_LEVEL_ERROR);
	config_free(cfg);

	cfg = load_ok("listen: 127.0.0.1:8080\n"
		      "log:\n"
		      "  access: \"-\"\n"
		      "  level: warn\n"
		      "services:\n"
		      "  a:\n"
		      "    targets: [127.0.0.1:1]\n");
	assert_string_equal(cfg->log.access, "-");
	assert_int_equal(cfg->log.access_format, CONFIG_LOG_LOGFMT);
	assert_int_equal(cfg->log.level, LOG_LEVEL_WARN);
	config_free(cfg);
}

/* max_uri_bytes left at its default shrinks to a smaller max_header_bytes. */
static void test_uri_default_follows_header(void **state UNUSED)
{
	struct config *cfg = load_ok("listen: 127.0.0.1:8080\n"
				     "limits:\n"
				     "  max_header_bytes: 4k\n"
				     "services:\n"
				     "  a:\n"
				     "    targets: [127.0.0.1:1]\n");

	assert_int_equal(cfg->limits.max_header_bytes, 4096);
	assert_int_equal(cfg->limits.max_uri_bytes, 4096);
	config_free(cfg);
}

static void test_defaults(void **state UNUSED)
{
	struct config *cfg = calloc(1, sizeof(*cfg));

	assert_non_null(cfg);
	assert_int_equal(config_defaults(cfg), 0);
	assert_defaults_except_none(cfg);
	assert_null(cfg->listen);
	config_free(cfg);
	assert_null(config_free(NULL));

	/* Strings set before are kept; services present get their defaults. */
	cfg = calloc(1, sizeof(*cfg));
	assert_non_null(cfg);
	cfg->state_dir = strdup("/srv/state");
	cfg->services = calloc(2, sizeof(*cfg->services));
	assert_non_null(cfg->services);
	cfg->nservices = 2;
	cfg->services[1].health.path = strdup("/ready");
	assert_int_equal(config_defaults(cfg), 0);
	assert_string_equal(cfg->state_dir, "/srv/state");
	assert_string_equal(cfg->admin_socket, "/srv/state/admin.sock");
	assert_service_defaults(&cfg->services[0]);
	assert_string_equal(cfg->services[1].health.path, "/ready");
	assert_int_equal(cfg->services[1].deploy.watch_ms, 60000);
	config_free(cfg);
}

/* ---- managed services (cutover runs the instances) --------------------- */

#define MANAGED "listen: 127.0.0.1:8080\nservices:\n  shop:\n    run: ./shop --port ${PORT}\n" /* 4 lines */

static void test_managed_full(void **state UNUSED)
{
	struct config *cfg = load_ok("listen: 127.0.0.1:8080\n"
				     "state_dir: /srv/cutover/state/\n"
				     "admin_socket: /run/cutover.sock\n"
				     "services:\n"
				     "  shop:\n"
				     "    build: make VERSION=${VERSION}\n"
				     "    run: ${RELEASE_DIR}/shop --port ${PORT} --name ${SERVICE}\n"
				     "    workdir: /srv/shop/\n"
				     "    env:\n"
				     "      SHOP_DB: /var/lib/shop/shop.db\n"
				     "      WORKERS: 4\n"
				     "      DEBUG: false\n"
				     "      EMPTY: \"\"\n"
				     "      APP_PORT: ${PORT}\n"
				     "      _tag: \"${VERSION}-${SERVICE} $HOME\"\n"
				     "    health:\n"
				     "      path: /health?deep=1\n"
				     "      host: shop.internal:8080\n"
				     "      interval: 3s\n"
				     "      timeout: 2s\n"
				     "      healthy_threshold: 1\n"
				     "      unhealthy_threshold: 100\n"
				     "      start_grace: 45s\n"
				     "    stop_signal: SIGQUIT\n"
				     "    stop_grace: 0\n"
				     "    limits:\n"
				     "      nofile: 65536\n"
				     "      nproc: 4096\n"
				     "      core: 0\n"
				     "      memory_max: 512m\n"
				     "      cpu_max_percent: 200\n"
				     "    deploy:\n"
				     "      strategy: blue-green\n"
				     "      timeout: 90s\n"
				     "      drain: 15s\n"
				     "      rollback_window: 10m\n"
				     "      watch: 2m\n"
				     "      max_error_rate: 5.5%\n"
				     "      max_p99: 500ms\n"
				     "      min_requests: 0\n"
				     "      smoke: curl -fsS ${URL}/health && test ${PORT} -gt 0\n"
				     "    routes:\n"
				     "      - path: /\n"
				     "  legacy:\n"
				     "    targets: [127.0.0.1:9001]\n");
	const struct config_service *svc = &cfg->services[0];

	assert_string_equal(cfg->state_dir, "/srv/cutover/state");
	assert_string_equal(cfg->admin_socket, "/run/cutover.sock");
	assert_int_equal(cfg->nservices, 2);
	assert_string_equal(svc->name, "shop");
	assert_int_equal(svc->line, 5);
	assert_null(svc->targets);
	assert_int_equal(svc->ntargets, 0);
	assert_string_equal(svc->build, "make VERSION=${VERSION}");
	assert_string_equal(svc->run, "${RELEASE_DIR}/shop --port ${PORT} --name ${SERVICE}");
	assert_string_equal(svc->workdir, "/srv/shop");
	assert_int_equal(svc->nenv, 6);
	assert_string_equal(svc->env[0].name, "SHOP_DB");
	assert_string_equal(svc->env[0].value, "/var/lib/shop/shop.db");
	assert_string_equal(svc->env[1].name, "WORKERS");
	assert_string_equal(svc->env[1].value, "4");
	assert_string_equal(svc->env[2].value, "false");
	assert_string_equal(svc->env[3].name, "EMPTY");
	assert_string_equal(svc->env[3].value, "");
	assert_string_equal(svc->env[4].value, "${PORT}");
	assert_string_equal(svc->env[5].name, "_tag");
	assert_string_equal(svc->env[5].value, "${VERSION}-${SERVICE} $HOME");
	assert_string_equal(svc->health.path, "/health?deep=1");
	assert_string_equal(svc->health.host, "shop.internal:8080");
	assert_int_equal(svc->health.interval_ms, 3000);
	assert_int_equal(svc->health.timeout_ms, 2000);
	assert_int_equal(svc->health.healthy_threshold, 1);
	assert_int_equal(svc->health.unhealthy_threshold, 100);
	assert_int_equal(svc->health.start_grace_ms, 45000);
	assert_int_equal(svc->stop_signal, SIGQUIT);
	assert_int_equal(svc->stop_grace_ms, 0);
	assert_int_equal(svc->limits.nofile, 65536);
	assert_int_equal(svc->limits.nproc, 4096);
	assert_int_equal(svc->limits.core, 0);
	assert_true(svc->limits.core_set);
	assert_int_equal(svc->limits.memory_max, 512ull << 20);
	assert_int_equal(svc->limits.cpu_max_percent, 200);
	assert_int_equal(svc->deploy.strategy, CONFIG_STRATEGY_BLUE_GREEN);
	assert_int_equal(svc->deploy.timeout_ms, 90000);
	assert_int_equal(svc->deploy.drain_ms, 15000);
	assert_int_equal(svc->deploy.rollback_window_ms, 600000);
	assert_int_equal(svc->deploy.watch_ms, 120000);
	assert_int_equal(svc->deploy.max_error_rate_permille, 55);
	assert_int_equal(svc->deploy.max_p99_ms, 500);
	assert_int_equal(svc->deploy.min_requests, 0);
	assert_string_equal(svc->deploy.smoke, "curl -fsS ${URL}/health && test ${PORT} -gt 0");
	assert_int_equal(cfg->nroutes, 1);
	assert_int_equal(cfg->routes[0].service, 0);

	/* A service at fixed targets keeps every default. */
	assert_string_equal(cfg->services[1].name, "legacy");
	assert_null(cfg->services[1].run);
	assert_service_defaults(&cfg->services[1]);
	config_free(cfg);
}

/* A managed service needs only run:; empty sections mean all defaults. */
static void test_managed_defaults(void **state UNUSED)
{
	struct config *cfg = load_ok(MANAGED);

	assert_int_equal(cfg->nservices, 1);
	assert_string_equal(cfg->services[0].run, "./shop --port ${PORT}");
	assert_int_equal(cfg->services[0].ntargets, 0);
	assert_service_defaults(&cfg->services[0]);
	assert_int_equal(cfg->nroutes, 0);
	assert_defaults_except_none(cfg);
	config_free(cfg);

	cfg = load_ok(MANAGED "    env:\n    health:\n    limits: {}\n    deploy: ~\n    routes: []\n");
	assert_service_defaults(&cfg->services[0]);
	config_free(cfg);
}

/* Load MANAGED followed by `extra` (service-level lines). */
static struct config *load_managed(const char *extra)
{
	char text[2048];

	snprintf(text, sizeof(text), MANAGED "%s", extra);
	return load_ok(text);
}

static void test_managed_values(void **state UNUSED)
{
	static const struct {
		const char *text;
		uint32_t permille;
	} rates[] = {
		{ "0", 0 }, { "0%", 0 }, { "5", 50 }, { "5%", 50 }, { "0.5%", 5 },
		{ "12.3%", 123 }, { "100%", 1000 }, { "100.0", 1000 }, { "\"7%\"", 70 },
	};
	static const struct {
		const char *text;
		int signo;
	} signals[] = {
		{ "TERM", SIGTERM }, { "SIGTERM", SIGTERM }, { "int", SIGINT }, { "QUIT", SIGQUIT },
		{ "SIGHUP", SIGHUP }, { "USR1", SIGUSR1 }, { "SigUsr2", SIGUSR2 },
	};
	static const struct {
		const char *text;
		uint64_t ms;
	} p99s[] = { { "off", 0 }, { "0", 0 }, { "0ms", 0 }, { "250ms", 250 }, { "2s", 2000 } };
	struct config *cfg;
	char extra[256];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(rates); i++) {
		snprintf(extra, sizeof(extra), "    deploy:\n      max_error_rate: %s\n", rates[i].text);
		cfg = load_managed(extra);
		if (cfg->services[0].deploy.max_error_rate_permille != rates[i].permille)
			fail_msg("max_error_rate %s: got %u permille, want %u", rates[i].text,
				 cfg->services[0].deploy.max_error_rate_permille, rates[i].permille);
		config_free(cfg);
	}
	for (i = 0; i < ARRAY_SIZE(signals); i++) {
		snprintf(extra, sizeof(extra), "    stop_signal: %s\n", signals[i].text);
		cfg = load_managed(extra);
		if (cfg->services[0].stop_signal != signals[i].signo)
			fail_msg("stop_signal %s: got %d, want %d", signals[i].text, cfg->services[0].stop_signal,
				 signals[i].signo);
		config_free(cfg);
	}
	for (i = 0; i < ARRAY_SIZE(p99s); i++) {
		snprintf(extra, sizeof(extra), "    deploy:\n      max_p99: %s\n", p99s[i].text);
		cfg = load_managed(extra);
		if (cfg->services[0].deploy.max_p99_ms != p99s[i].ms)
			fail_msg("max_p99 %s: got %llu, want %llu", p99s[i].text,
				 (unsigned long long)cfg->services[0].deploy.max_p99_ms, (unsigned long long)p99s[i].ms);
		config_free(cfg);
	}

	/* cpu_max_percent with a % sign, core with a size, memory in g. */
	cfg = load_managed("    limits:\n      cpu_max_percent: 50%\n      core: 1g\n      memory_max: 2g\n");
	assert_int_equal(cfg->services[0].limits.cpu_max_percent, 50);
	assert_int_equal(cfg->services[0].limits.core, 1ull << 30);
	assert_true(cfg->services[0].limits.core_set);
	assert_int_equal(cfg->services[0].limits.memory_max, 2ull << 30);
	config_free(cfg);

	/* A run command may span lines (block scalar); variables may repeat. */
	cfg = load_ok("listen: 127.0.0.1:8080\n"
		      "services:\n"
		      "  shop:\n"
		      "    run: |\n"
		      "      exec ./shop --port ${PORT} \\\n"
		      "        --public-port ${PORT} --version ${VERSION}\n");
	assert_string_equal(cfg->services[0].run,
			    "exec ./shop --port ${PORT} \\\n  --public-port ${PORT} --version ${VERSION}\n");
	config_free(cfg);
}

/* Without an explicit timeout, the health check timeout is half the
 * interval, at most 2s. */
#define AT_TARGETS "listen: 127.0.0.1:8080\nservices:\n  shop:\n    targets: [127.0.0.1:9001]\n"

/* services.NAME.alerts, on a service at targets and on a managed one:
 * the defaults (5 %, 1 s), values, off, and an empty mapping. */
static void test_alerts(void **state UNUSED)
{
	static const struct {
		const char *text;          /* the service's alerts: lines ("": none) */
		uint32_t permille;
		uint64_t p99_ms;
	} cases[] = {
		{ "", 50, 1000 },
		{ "    alerts:\n", 50, 1000 },
		{ "    alerts: {}\n", 50, 1000 },
		{ "    alerts:\n      max_error_rate: 1%\n", 10, 1000 },
		{ "    alerts:\n      max_error_rate: 0.5%\n      max_p99: 250ms\n", 5, 250 },
		{ "    alerts:\n      max_error_rate: 0%\n", 0, 1000 },
		{ "    alerts:\n      max_p99: 2s\n", 50, 2000 },
		{ "    alerts: {max_error_rate: off, max_p99: off}\n", CONFIG_ALERT_RATE_OFF, 0 },
		{ "    alerts:\n      max_p99: 1h\n", 50, 3600 * 1000 },
	};
	char text[1024];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		for (int managed = 0; managed < 2; managed++) {
			struct config *cfg;

			snprintf(text, sizeof(text), "%s%s", managed ? MANAGED : AT_TARGETS, cases[i].text);
			cfg = load_ok(text);
			if (cfg->services[0].alerts.max_error_rate_permille != cases[i].permille ||
			    cfg->services[0].alerts.max_p99_ms != cases[i].p99_ms)
				fail_msg("%s alerts %s: got %u permille, %llu ms; want %u, %llu",
					 managed ? "managed" : "at targets", cases[i].text,
					 cfg->services[0].alerts.max_error_rate_permille,
					 (unsigned long long)cfg->services[0].alerts.max_p99_ms, cases[i].permille,
					 (unsigned long long)cases[i].p99_ms);
			config_free(cfg);
		}
	}
}

static void test_health_timeout_follows_interval(void **state UNUSED)
{
	static const struct {
		const char *interval;
		uint64_t timeout_ms;
	} cases[] = { { "100ms", 50 }, { "300ms", 150 }, { "1s", 500 }, { "4s", 2000 }, { "1m", 2000 } };
	char extra[128];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct config *cfg;

		snprintf(extra, sizeof(extra), "    health:\n      interval: %s\n", cases[i].interval);
		cfg = load_managed(extra);
		if (cfg->services[0].health.timeout_ms != cases[i].timeout_ms)
			fail_msg("interval %s: timeout %llu ms, want %llu", cases[i].interval,
				 (unsigned long long)cfg->services[0].health.timeout_ms,
				 (unsigned long long)cases[i].timeout_ms);
		config_free(cfg);
	}
}

/* Relative paths are relative to the directory of the file. */
static void test_relative_paths(void **state UNUSED)
{
	static const struct {
		const char *name, *state_dir, *want_state, *want_socket;
	} cases[] = {
		{ "conf/cutover.yml", ".cutover-demo", "conf/.cutover-demo", "conf/.cutover-demo/admin.sock" },
		{ "conf/cutover.yml", "./state/", "conf/state", "conf/state/admin.sock" },
		{ "conf/cutover.yml", ".", "conf", "conf/admin.sock" },
		{ "/etc/cutover/cutover.yml", "state", "/etc/cutover/state", "/etc/cutover/state/admin.sock" },
		{ "/cutover.yml", "state", "/state", "/state/admin.sock" },
		{ "/etc/cutover.yml", "/var/lib/x", "/var/lib/x", "/var/lib/x/admin.sock" },
		{ "cutover.yml", "state//", "state", "state/admin.sock" },
		{ "cutover.yml", ".", ".", "./admin.sock" },
		{ "cutover.yml", "/", "/", "/admin.sock" },
	};
	char text[512];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct config_error err;
		struct config *cfg = NULL;

		snprintf(text, sizeof(text), MANAGED "    workdir: data\nstate_dir: \"%s\"\n", cases[i].state_dir);
		if (config_load_string(cases[i].name, text, strlen(text), &cfg, &err) < 0)
			fail_msg("%s", err.message);
		if (strcmp(cfg->state_dir, cases[i].want_state) || strcmp(cfg->admin_socket, cases[i].want_socket))
			fail_msg("%s, state_dir %s: got %s and %s, want %s and %s", cases[i].name, cases[i].state_dir,
				 cfg->state_dir, cfg->admin_socket, cases[i].want_state, cases[i].want_socket);
		config_free(cfg);
	}
}

/* config_load() makes relative paths absolute, from the file's directory. */
static void test_relative_paths_file(void **state UNUSED)
{
	char dir[] = "/tmp/cutover-test-config-XXXXXX", path[PATH_MAX], cwd[PATH_MAX], here[PATH_MAX];
	char want[PATH_MAX + 64];
	const char *text = MANAGED "    workdir: ./run/shop\n"
			   "state_dir: state\n"
			   "admin_socket: sockets/admin.sock\n";
	struct config_error err;
	struct config *cfg = NULL;
	int fd;

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/cutover.yml", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);

	/* Named by a relative path: the current directory goes in front. */
	assert_int_equal(chdir(dir), 0);
	assert_int_equal(chdir(".."), 0);
	assert_non_null(getcwd(here, sizeof(here)));
	if (config_load(path + strlen("/tmp/"), &cfg, &err) < 0)
		fail_msg("%s", err.message);
	assert_int_equal(chdir(cwd), 0);
	assert_string_equal(cfg->path, path + strlen("/tmp/"));
	snprintf(want, sizeof(want), "%s/%s/state", here, dir + strlen("/tmp/"));
	assert_string_equal(cfg->state_dir, want);
	snprintf(want, sizeof(want), "%s/%s/sockets/admin.sock", here, dir + strlen("/tmp/"));
	assert_string_equal(cfg->admin_socket, want);
	snprintf(want, sizeof(want), "%s/%s/run/shop", here, dir + strlen("/tmp/"));
	assert_string_equal(cfg->services[0].workdir, want);
	config_free(cfg);

	/* Named by an absolute path. */
	if (config_load(path, &cfg, &err) < 0)
		fail_msg("%s", err.message);
	snprintf(want, sizeof(want), "%s/state", dir);
	assert_string_equal(cfg->state_dir, want);
	config_free(cfg);
	unlink(path);
	rmdir(dir);
}

/* ---- invalid configs --------------------------------------------------- */

struct invalid_case {
	const char *name;
	const char *text;
	int line;
	int column;
	const char *field;
	const char *reason;           /* must appear in the message */
};

#define HEAD "listen: 127.0.0.1:8080\n"                          /* line 1 */
#define SHOP "services:\n  shop:\n    targets: [127.0.0.1:9001]\n" /* 3 lines */

static const struct invalid_case invalid_cases[] = {
	{ "unknown top-level key", HEAD "servcies:\n  shop:\n    targets: [127.0.0.1:9001]\n",
	  2, 1, "servcies", "unknown key \"servcies\" (did you mean \"services\"?)" },
	{ "unknown key without suggestion", HEAD "timeouts:\n  foo: 1s\n" SHOP,
	  3, 3, "timeouts.foo", "unknown key \"foo\"" },
	{ "unknown target key", HEAD "services:\n  shop:\n    targets:\n      - address: 127.0.0.1:9001\n"
				     "        wieght: 3\n",
	  6, 9, "services.shop.targets[0].wieght", "did you mean \"weight\"?" },
	{ "unknown route key", HEAD SHOP "    routes:\n      - hots: a.example.com\n",
	  6, 9, "services.shop.routes[0].hots", "did you mean \"host\"?" },
	{ "unknown service key", HEAD SHOP "    route: []\n",
	  5, 5, "services.shop.route", "did you mean \"routes\"?" },
	{ "bad duration", HEAD "timeouts:\n  client_header: 10x\n" SHOP,
	  3, 18, "timeouts.client_header", "must be a duration" },
	{ "startup.unready not a mode", HEAD "startup:\n  unready: wait\n" SHOP,
	  3, 12, "startup.unready", "queue or retry-after" },
	{ "startup.retry_after under a second", HEAD "startup:\n  retry_after: 500ms\n" SHOP,
	  3, 16, "startup.retry_after", "must be between 1s and 1h" },
	{ "startup unknown key", HEAD "startup:\n  max_wiat: 5s\n" SHOP,
	  3, 3, "startup.max_wiat", "did you mean \"max_wait\"?" },
	{ "cohort cookie with a space", HEAD "cohorts:\n  cookie: \"shop cohort\"\n" SHOP,
	  3, 11, "cohorts.cookie", "must be a cookie name (letters, digits and" },
	{ "cohort cookie with a semicolon", HEAD "cohorts:\n  override_cookie: a;b\n" SHOP,
	  3, 20, "cohorts.override_cookie", "must be a cookie name" },
	{ "cohort cookie empty", HEAD "cohorts:\n  cookie: \"\"\n" SHOP,
	  3, 11, "cohorts.cookie", "must be a cookie name of 1..64 characters" },
	{ "override header with a colon", HEAD "cohorts:\n  override_header: \"X-Version:\"\n" SHOP,
	  3, 20, "cohorts.override_header", "must be a header field name" },
	{ "cohort cookie too long", HEAD "cohorts:\n  cookie: "
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n" SHOP,
	  3, 11, "cohorts.cookie", "of 1..64 characters" },
	{ "cohort max_age under a minute", HEAD "cohorts:\n  max_age: 30s\n" SHOP,
	  3, 12, "cohorts.max_age", "must be between 1m and 400d, got \"30s\"" },
	{ "cohort max_age over 400 days", HEAD "cohorts:\n  max_age: 401d\n" SHOP,
	  3, 12, "cohorts.max_age", "must be between 1m and 400d, got \"401d\"" },
	{ "cohort max_age zero days", HEAD "cohorts:\n  max_age: 0d\n" SHOP,
	  3, 12, "cohorts.max_age", "must be between 1m and 400d" },
	{ "cohort max_age not a duration", HEAD "cohorts:\n  max_age: 30days\n" SHOP,
	  3, 12, "cohorts.max_age", "must be a duration (30d, 12h, 10m" },
	{ "cohort max_age a list", HEAD "cohorts:\n  max_age: [30d]\n" SHOP,
	  3, 12, "cohorts.max_age", "must be a duration like 30d" },
	{ "cohort cookies alike", HEAD "cohorts:\n  cookie: qa\n  override_cookie: qa\n" SHOP,
	  4, 20, "cohorts.override_cookie", "must have different names, got \"qa\" for both" },
	{ "cohort cookie as the default override", HEAD "cohorts:\n  cookie: cutover_version\n" SHOP,
	  3, 11, "cohorts.cookie", "must have different names" },
	{ "cohorts unknown key", HEAD "cohorts:\n  cookei: x\n" SHOP,
	  3, 3, "cohorts.cookei", "did you mean \"cookie\"?" },
	{ "cohorts a list", HEAD "cohorts: [a]\n" SHOP,
	  2, 10, "cohorts", "must be a mapping of cohort settings" },
	{ "upgrade timeout under a second", HEAD "timeouts:\n  upgrade: 10ms\n" SHOP,
	  3, 12, "timeouts.upgrade", "must be between 1s and 24h" },
	{ "negative duration", HEAD "timeouts:\n  drain: -1s\n" SHOP,
	  3, 10, "timeouts.drain", "must be a duration" },
	{ "duration out of range", HEAD "timeouts:\n  drain: 25h\n" SHOP,
	  3, 10, "timeouts.drain", "must be between 0ms and 24h, got \"25h\"" },
	{ "zero timeout", HEAD "timeouts:\n  upstream_connect: 0s\n" SHOP,
	  3, 21, "timeouts.upstream_connect", "must be between 1ms and 24h" },
	{ "bad size", HEAD "limits:\n  max_header_bytes: 16q\n" SHOP,
	  3, 21, "limits.max_header_bytes", "must be a size" },
	{ "size too small", HEAD "limits:\n  buffer_bytes: 2k\n" SHOP,
	  3, 17, "limits.buffer_bytes", "must be between 4k and 1m, got \"2k\"" },
	{ "size too large", HEAD "limits:\n  max_header_bytes: 2m\n" SHOP,
	  3, 21, "limits.max_header_bytes", "must be between 1k and 1m" },
	{ "uri larger than header", HEAD "limits:\n  max_header_bytes: 4k\n  max_uri_bytes: 8k\n" SHOP,
	  4, 18, "limits.max_uri_bytes", "must not exceed max_header_bytes (4k)" },
	{ "count out of range", HEAD "limits:\n  max_retries: 11\n" SHOP,
	  3, 16, "limits.max_retries", "must be an integer 0..10, got \"11\"" },
	{ "count not a number", HEAD "limits:\n  max_connections: 10k\n" SHOP,
	  3, 20, "limits.max_connections", "must be an integer 1..1000000" },
	{ "weight zero", HEAD "services:\n  shop:\n    targets:\n      - 127.0.0.1:9001\n"
			      "      - address: 127.0.0.1:9002\n        weight: 0\n",
	  7, 17, "services.shop.targets[1].weight", "must be an integer 1..1000, got \"0\"" },
	{ "weight fraction", HEAD "services:\n  shop:\n    targets:\n      - {address: 127.0.0.1:9002, weight: 2.5}\n",
	  5, 43, "services.shop.targets[0].weight", "must be an integer 1..1000, got \"2.5\"" },
	{ "admin same as listen", HEAD "admin: 127.0.0.1:8080\n" SHOP,
	  2, 8, "admin", "must differ from the proxy listener listen[0]" },
	{ "bad listen address", "listen: shop.internal:80\n" SHOP,
	  1, 9, "listen", "must be an address like 127.0.0.1:8080" },
	{ "bad port in listen list", "listen:\n  - 127.0.0.1:8080\n  - 127.0.0.1:99999\n" SHOP,
	  3, 5, "listen[1]", "got \"127.0.0.1:99999\"" },
	{ "listen twice", "listen:\n  - 127.0.0.1:8080\n  - localhost:8080\n" SHOP,
	  3, 5, "listen[1]", "listed twice (same as listen[0])" },
	{ "empty listen list", "listen: []\n" SHOP,
	  1, 9, "listen", "at least one address is required" },
	{ "listen without value", "listen:\n" SHOP,
	  1, 8, "listen", "must be an address or a list of addresses, got nothing" },
	{ "listen is a mapping", "listen:\n  a: b\n" SHOP,
	  2, 3, "listen", "got a mapping" },
	{ "no listen", SHOP,
	  1, 1, "listen", "is required" },
	{ "bad target address", HEAD "services:\n  shop:\n    targets: [127.0.0.1]\n",
	  4, 15, "services.shop.targets[0]", "must be an address like" },
	{ "target unspecified address", HEAD "services:\n  shop:\n    targets:\n      - address: 0.0.0.0:9001\n",
	  5, 18, "services.shop.targets[0].address", "must be an address to connect to" },
	{ "target without address", HEAD "services:\n  shop:\n    targets:\n      - weight: 2\n",
	  5, 9, "services.shop.targets[0].address", "is required" },
	{ "duplicate target", HEAD "services:\n  shop:\n    targets:\n      - 127.0.0.1:9001\n      - localhost:9001\n",
	  6, 9, "services.shop.targets[1]", "duplicate target \"localhost:9001\" (same address as targets[0])" },
	{ "no services", HEAD,
	  1, 1, "services", "is required" },
	{ "empty services", HEAD "services: {}\n",
	  2, 11, "services", "at least one service is required" },
	{ "services is a list", HEAD "services:\n  - shop\n",
	  3, 3, "services", "got a list" },
	{ "no targets", HEAD "services:\n  shop:\n    routes: []\n",
	  3, 3, "services.shop.targets", "is required" },
	{ "empty targets", HEAD "services:\n  shop:\n    targets: []\n",
	  4, 14, "services.shop.targets", "at least one target is required" },
	{ "targets is a mapping", HEAD "services:\n  shop:\n    targets:\n      a: 127.0.0.1:1\n",
	  5, 7, "services.shop.targets", "must be a list of targets, got a mapping" },
	{ "bad service name", HEAD "services:\n  Shop:\n    targets: [127.0.0.1:9001]\n",
	  3, 3, "services.Shop", "service names must match" },
	{ "duplicate service", HEAD SHOP "  shop:\n    targets: [127.0.0.1:9002]\n",
	  5, 3, "services.shop", "duplicate key \"shop\" (first at line 3)" },
	{ "duplicate top-level key", HEAD "listen: 127.0.0.1:8081\n" SHOP,
	  2, 1, "listen", "duplicate key" },
	{ "duplicate route across services",
	  HEAD SHOP "    routes:\n      - host: a.example.com\n"
		    "  api:\n    targets: [127.0.0.1:9002]\n    routes:\n      - path: /x\n      - host: A.example.com\n",
	  11, 9, "services.api.routes[1]",
	  "route (host \"a.example.com\", path \"/\") is already declared at services.shop.routes[0] (line 6)" },
	{ "duplicate route within a service",
	  HEAD SHOP "    routes:\n      - path: /api/\n      - path: /api/\n",
	  7, 9, "services.shop.routes[1]", "(host any, path \"/api/\") is already declared at services.shop.routes[0]" },
	{ "wildcard without domain", HEAD SHOP "    routes:\n      - host: \"*.\"\n",
	  6, 15, "services.shop.routes[0].host", "a wildcard needs a domain" },
	{ "star inside label", HEAD SHOP "    routes:\n      - host: a*.b\n",
	  6, 15, "services.shop.routes[0].host", "only allowed as the whole first label" },
	{ "space in host", HEAD SHOP "    routes:\n      - host: exa mple\n",
	  6, 15, "services.shop.routes[0].host", "may only contain letters" },
	{ "host with port", HEAD SHOP "    routes:\n      - host: shop.example.com:8080\n",
	  6, 15, "services.shop.routes[0].host", "without a port" },
	{ "lone star host", HEAD SHOP "    routes:\n      - host: \"*\"\n",
	  6, 15, "services.shop.routes[0].host", "leave host out" },
	{ "empty label", HEAD SHOP "    routes:\n      - host: a..b\n",
	  6, 15, "services.shop.routes[0].host", "empty label" },
	{ "path without slash", HEAD SHOP "    routes:\n      - path: api/\n",
	  6, 15, "services.shop.routes[0].path", "must start with \"/\"" },
	{ "path with query", HEAD SHOP "    routes:\n      - path: /a?b\n",
	  6, 15, "services.shop.routes[0].path", "must not contain '?'" },
	{ "route is not a mapping", HEAD SHOP "    routes:\n      - /api\n",
	  6, 9, "services.shop.routes[0]", "must be a mapping with host: and/or path:, got a single value" },
	{ "bad log level", HEAD "log:\n  level: verbose\n" SHOP,
	  3, 10, "log.level", "must be debug, info, warn or error, got \"verbose\"" },
	{ "bad log format", HEAD "log:\n  format: text\n" SHOP,
	  3, 11, "log.format", "must be logfmt or json" },
	{ "empty access path", HEAD "log:\n  access: \"\"\n" SHOP,
	  3, 11, "log.access", "must be a file path" },
	{ "timeouts is a list", HEAD "timeouts: [1s]\n" SHOP,
	  2, 11, "timeouts", "must be a mapping of durations, got a list" },
	/* syntax errors: at the line the slip is on, not where libyaml noticed it */
	{ "key without ':'", HEAD "services:\n  shop\n    targets: x\n",
	  3, 3, "", "syntax error: this key has no ':' after it (mapping values are not allowed in this context "
		    "at line 4, column 12)" },
	{ "key without ':' in a list item", HEAD SHOP "    routes:\n      - path\n        host: a\n",
	  6, 9, "", "syntax error: this key has no ':' after it" },
	{ "key without ':' before a list", HEAD SHOP "    routes\n      - path: /\n",
	  5, 5, "", "syntax error: this key has no ':' after it (could not find expected ':' at line 6" },
	{ "key without ':' before a comment", HEAD SHOP "    health\n    # the check\n",
	  5, 5, "", "syntax error: this key has no ':' after it" },
	{ "unclosed flow list", HEAD "services:\n  shop:\n    targets: [127.0.0.1:9001\n",
	  4, 14, "", "syntax error: the list '[' that starts here is not closed (did not find expected ',' or ']' "
		     "at line 5, column 1)" },
	{ "unclosed flow list, keys after it", HEAD "services:\n  shop:\n    targets: [127.0.0.1:9001\n"
						  "    routes: []\n",
	  4, 14, "", "the list '[' that starts here is not closed" },
	{ "unclosed flow mapping", HEAD "services:\n  shop:\n    targets:\n      - {address: 127.0.0.1:9001\n"
				      "    routes: []\n",
	  5, 9, "", "syntax error: the mapping '{' that starts here is not closed" },
	{ "unclosed quote at the end", HEAD SHOP "    routes:\n      - path: \"/api\n",
	  6, 15, "", "syntax error: the quoted string that starts here is not closed (found unexpected end of "
		     "stream at line 7, column 1)" },
	{ "unclosed quote, keys after it", HEAD SHOP "    routes:\n      - path: \"/api\n"
						"  api:\n    targets: [127.0.0.1:9002]\n",
	  6, 15, "", "the quoted string that starts here is not closed" },
	{ "unclosed single quote", HEAD "admin: '127.0.0.1:9180\n" SHOP,
	  2, 8, "", "the quoted string that starts here is not closed" },
	{ "bad escape in a quote", HEAD "services:\n  shop:\n    run: \"a\\q\"\n",
	  4, 12, "", "syntax error: found unknown escape character" },
	{ "tab in the indentation", HEAD "services:\n  shop:\n\ttargets: [127.0.0.1:9001]\n",
	  4, 1, "", "indent with spaces" },
	{ "tab after a value", HEAD SHOP "    routes: []\n \tfoo: 1\n",
	  6, 2, "", "indent with spaces" },
	{ "stray colon", HEAD SHOP "    routes: path: /\n",
	  5, 17, "", "syntax error: mapping values are not allowed in this context" },
	{ "bad indentation", HEAD SHOP "   routes: []\n",
	  5, 4, "", "syntax error: did not find expected key" },
	{ "missing comma in a list", HEAD "services:\n  shop:\n    targets: [\"127.0.0.1:9001\" x]\n",
	  4, 32, "", "did not find expected ',' or ']'" },
	{ "unquoted wildcard", HEAD SHOP "    routes:\n      - host: *.example.com\n",
	  6, 16, "", "quote values that start with '*'" },
	{ "unquoted IPv6", "listen: [::1]:8080\n" SHOP,
	  1, 10, "", "quote IPv6 addresses" },
	{ "alias", "listen: &l 127.0.0.1:8080\nadmin: *l\n" SHOP,
	  2, 8, "admin", "aliases (*l) are not supported" },
	{ "merge key", HEAD "services:\n  shop:\n    <<: {targets: [127.0.0.1:9001]}\n",
	  4, 5, "services.shop", "merge keys (<<) are not supported" },
	{ "two documents", HEAD SHOP "---\n" HEAD SHOP,
	  5, 1, "", "only one YAML document is allowed" },
	{ "top level is a list", "- listen\n",
	  1, 1, "", "the top level must be a mapping" },
	{ "empty file", "",
	  0, 0, "", "file is empty" },

	/* managed services */
#define SVC HEAD "services:\n  shop:\n" /* 3 lines */
#define X10 "xxxxxxxxxx"
#define X100 X10 X10 X10 X10 X10 X10 X10 X10 X10 X10
	{ "neither targets nor run", SVC "    routes: [{path: /}]\n",
	  3, 3, "services.shop.targets", "is required: at least one target (or run:" },
	{ "targets and run", MANAGED "    targets: [127.0.0.1:9001]\n",
	  5, 5, "services.shop.targets", "cannot be combined with run:" },
	{ "health without run", HEAD SHOP "    health:\n      path: /health\n",
	  5, 5, "services.shop.health", "only applies to a service that cutover runs (add run:" },
	{ "env without run", HEAD SHOP "    env: {A: b}\n",
	  5, 5, "services.shop.env", "only applies to a service that cutover runs" },
	{ "deploy without run", HEAD SHOP "    deploy: {}\n",
	  5, 5, "services.shop.deploy", "only applies to a service that cutover runs" },
	{ "service key typo", MANAGED "    stop_sigal: TERM\n",
	  5, 5, "services.shop.stop_sigal", "did you mean \"stop_signal\"?" },
	{ "run without PORT", SVC "    run: ./shop --port 8080\n",
	  4, 10, "services.shop.run", "must contain ${PORT}" },
	{ "run empty", SVC "    run: \"\"\n",
	  4, 10, "services.shop.run", "must be a shell command, got \"\"" },
	{ "run without value", SVC "    run:\n",
	  4, 9, "services.shop.run", "missing value: expected a shell command" },
	{ "run is a list", SVC "    run: [./shop]\n",
	  4, 10, "services.shop.run", "must be a shell command, got a list" },
	{ "misspelt variable in run", SVC "    run: ./shop --port ${PORT} --version ${VERISON}\n",
	  4, 10, "services.shop.run", "unknown variable ${VERISON} (did you mean ${VERSION}?)" },
	{ "shell variable in run", SVC "    run: ./shop --port ${PORT} --home ${HOME}\n",
	  4, 10, "services.shop.run",
	  "unknown variable ${HOME}: cutover substitutes only ${PORT}, ${VERSION}, ${SERVICE} and ${RELEASE_DIR}; "
	  "for a shell variable write $HOME" },
	{ "URL in run", SVC "    run: ./shop --port ${PORT} --self ${URL}\n",
	  4, 10, "services.shop.run", "${URL} is only known in deploy.smoke" },
	{ "unterminated variable", SVC "    run: ./shop --port ${PORT\n",
	  4, 10, "services.shop.run", "\"${\" without a closing \"}\"" },
	{ "bad variable name", SVC "    run: ./shop --port ${PORT} ${1x}\n",
	  4, 10, "services.shop.run", "\"${1x}\" is not a variable name" },
	{ "shell default syntax", SVC "    run: ./shop --port ${PORT:-80}\n",
	  4, 10, "services.shop.run", "\"${PORT:-80}\" is not a variable name" },
	{ "PORT in build", MANAGED "    build: make PORT=${PORT}\n",
	  5, 12, "services.shop.build", "${PORT} is not known here: the build runs once per release" },
	{ "unknown variable in build", MANAGED "    build: make ${PROFILE}\n",
	  5, 12, "services.shop.build",
	  "unknown variable ${PROFILE}: cutover substitutes only ${VERSION}, ${SERVICE} and ${RELEASE_DIR}" },
	{ "unknown variable in env", MANAGED "    env:\n      DB: ${STATE_DIR}/shop.db\n",
	  6, 11, "services.shop.env.DB",
	  "unknown variable ${STATE_DIR}: cutover substitutes only ${PORT}, ${VERSION}, ${SERVICE} and ${RELEASE_DIR}" },
	{ "URL in env", MANAGED "    env:\n      U: ${URL}\n",
	  6, 10, "services.shop.env.U", "${URL} is only known in deploy.smoke" },
	{ "unknown variable in smoke", MANAGED "    deploy:\n      smoke: curl ${URL}/x -H ${HOST}\n",
	  6, 14, "services.shop.deploy.smoke",
	  "unknown variable ${HOST}: cutover substitutes only ${PORT}, ${VERSION}, ${SERVICE}, ${RELEASE_DIR} and ${URL}" },
	{ "env name starts with a digit", MANAGED "    env:\n      1DB: x\n",
	  6, 7, "services.shop.env.1DB", "variable names must match [A-Za-z_][A-Za-z0-9_]*, got \"1DB\"" },
	{ "env name with a dash", MANAGED "    env:\n      SHOP-DB: x\n",
	  6, 7, "services.shop.env.SHOP-DB", "variable names must match" },
	{ "env PORT reserved", MANAGED "    env:\n      PORT: 80\n",
	  6, 7, "services.shop.env.PORT", "PORT is reserved" },
	{ "env without value", MANAGED "    env:\n      DB:\n",
	  6, 10, "services.shop.env.DB", "missing value: expected a value (write \"\" for an empty one)" },
	{ "env value is a list", MANAGED "    env:\n      DB: [a]\n",
	  6, 11, "services.shop.env.DB", "got a list" },
	{ "env is a list", MANAGED "    env: [A=1]\n",
	  5, 10, "services.shop.env", "must be a mapping of variable names to values, got a list" },
	{ "env name twice", MANAGED "    env:\n      A: 1\n      A: 2\n",
	  7, 7, "services.shop.env.A", "duplicate key \"A\" (first at line 6)" },
	{ "health timeout not shorter", MANAGED "    health:\n      interval: 1s\n      timeout: 2s\n",
	  7, 16, "services.shop.health.timeout", "must be shorter than interval (1s), got \"2s\"" },
	{ "health timeout vs default interval", MANAGED "    health:\n      timeout: 1s\n",
	  6, 16, "services.shop.health.timeout", "must be shorter than interval (1s, the default), got \"1s\"" },
	{ "health timeout before interval", MANAGED "    health:\n      timeout: 5s\n      interval: 5s\n",
	  6, 16, "services.shop.health.timeout", "must be shorter than interval (5s), got \"5s\"" },
	{ "rollback window shorter than the watch", MANAGED "    deploy:\n      watch: 2m\n      rollback_window: 30s\n",
	  7, 24, "services.shop.deploy.rollback_window",
	  "must be at least the watch window (2m), got 30s: the previous version has to stay warm while the new "
	  "one is watched" },
	{ "watch longer than the default rollback window", MANAGED "    deploy:\n      watch: 10m\n",
	  6, 14, "services.shop.deploy.watch",
	  "must not be longer than rollback_window (5m, the default), got 10m: the previous version has to stay "
	  "warm while the new one is watched" },
	{ "health interval too short", MANAGED "    health:\n      interval: 50ms\n",
	  6, 17, "services.shop.health.interval", "must be between 100ms and 1h, got \"50ms\"" },
	{ "healthy threshold zero", MANAGED "    health:\n      healthy_threshold: 0\n",
	  6, 26, "services.shop.health.healthy_threshold", "must be an integer 1..100, got \"0\"" },
	{ "unhealthy threshold too high", MANAGED "    health:\n      unhealthy_threshold: 101\n",
	  6, 28, "services.shop.health.unhealthy_threshold", "must be an integer 1..100, got \"101\"" },
	{ "health path without slash", MANAGED "    health:\n      path: health\n",
	  6, 13, "services.shop.health.path", "must start with \"/\", got \"health\"" },
	{ "health host with a space", MANAGED "    health:\n      host: shop internal\n",
	  6, 13, "services.shop.health.host", "may only contain letters" },
	{ "health key typo", MANAGED "    health:\n      intervall: 1s\n",
	  6, 7, "services.shop.health.intervall", "did you mean \"interval\"?" },
	{ "health is a list", MANAGED "    health: [/health]\n",
	  5, 13, "services.shop.health", "must be a mapping of health check settings, got a list" },
	{ "stop signal KILL", MANAGED "    stop_signal: KILL\n",
	  5, 18, "services.shop.stop_signal",
	  "must be TERM, INT, QUIT, HUP, USR1 or USR2 (with or without SIG), got \"KILL\"" },
	{ "stop signal number", MANAGED "    stop_signal: 15\n",
	  5, 18, "services.shop.stop_signal", "got \"15\"" },
	{ "stop grace too long", MANAGED "    stop_grace: 11m\n",
	  5, 17, "services.shop.stop_grace", "must be between 0ms and 10m, got \"11m\"" },
	{ "nofile zero", MANAGED "    limits:\n      nofile: 0\n",
	  6, 15, "services.shop.limits.nofile", "must be an integer 1..1073741824, got \"0\"" },
	{ "nproc too high", MANAGED "    limits:\n      nproc: 5000000\n",
	  6, 14, "services.shop.limits.nproc", "must be an integer 1..4194304" },
	{ "memory_max too small", MANAGED "    limits:\n      memory_max: 512k\n",
	  6, 19, "services.shop.limits.memory_max", "must be between 1m and 16384g, got \"512k\"" },
	{ "memory_max not a size", MANAGED "    limits:\n      memory_max: lots\n",
	  6, 19, "services.shop.limits.memory_max", "must be a size" },
	{ "cpu_max_percent zero", MANAGED "    limits:\n      cpu_max_percent: 0%\n",
	  6, 24, "services.shop.limits.cpu_max_percent", "must be a percentage of one CPU 1..100000" },
	{ "cpu_max_percent fraction", MANAGED "    limits:\n      cpu_max_percent: 1.5\n",
	  6, 24, "services.shop.limits.cpu_max_percent", "got \"1.5\"" },
	{ "limits key typo", MANAGED "    limits:\n      nofiles: 10\n",
	  6, 7, "services.shop.limits.nofiles", "did you mean \"nofile\"?" },
	{ "canary steps falling", MANAGED "    deploy:\n      strategy: canary\n      steps: 5% 30s, 25% 1m, 20% 1m, 100%\n",
	  7, 14, "services.shop.deploy.steps", "the weights must rise from step to step: 20% after 25%" },
	{ "canary steps not ending at 100", MANAGED "    deploy:\n      steps: [5% 30s, 50% 1m]\n",
	  6, 14, "services.shop.deploy.steps", "the last step must be 100% (the new version takes all the traffic), got 50%" },
	{ "canary step without a hold", MANAGED "    deploy:\n      steps: [5% 30s, 50%, 100%]\n",
	  6, 23, "services.shop.deploy.steps[1]", "the step at 50% needs a hold time" },
	{ "canary step weight 0", MANAGED "    deploy:\n      steps:\n        - 0% 30s\n        - 100%\n",
	  7, 11, "services.shop.deploy.steps[0]", "a step's weight must be 1%..100%" },
	{ "canary too many steps", MANAGED "    deploy:\n      steps: 1% 1s, 2% 1s, 3% 1s, 4% 1s, 5% 1s, 6% 1s, 7% 1s, 100%\n",
	  6, 14, "services.shop.deploy.steps", "at most 7 steps" },
	{ "confidence too low", MANAGED "    deploy:\n      confidence: 40%\n",
	  6, 19, "services.shop.deploy.confidence", "must be a confidence level from 50% to 99.99%" },
	{ "ratio below 1.1", MANAGED "    deploy:\n      max_p99_ratio: 1x\n",
	  6, 22, "services.shop.deploy.max_p99_ratio", "must be a ratio to the stable version from 1.1x to 100x" },
	{ "surge and unavailable both 0", MANAGED "    deploy:\n      strategy: rolling\n      max_surge: 0\n",
	  7, 18, "services.shop.deploy.max_surge", "max_surge and max_unavailable cannot both be 0" },
	{ "unavailable above 100%", MANAGED "    deploy:\n      max_unavailable: 120%\n",
	  6, 24, "services.shop.deploy.max_unavailable", "must be a number of instances (0..64) or a percentage" },
	{ "on_inconclusive unknown", MANAGED "    deploy:\n      on_inconclusive: wait\n",
	  6, 24, "services.shop.deploy.on_inconclusive", "must be pause or abort, got \"wait\"" },
	{ "strategy unknown", MANAGED "    deploy:\n      strategy: green\n",
	  6, 17, "services.shop.deploy.strategy", "must be blue-green, recreate, canary or rolling, got \"green\"" },
	{ "error rate above 100", MANAGED "    deploy:\n      max_error_rate: 101%\n",
	  6, 23, "services.shop.deploy.max_error_rate", "must be a percentage 0..100 with at most one decimal" },
	{ "error rate above 100 by a tenth", MANAGED "    deploy:\n      max_error_rate: 100.1\n",
	  6, 23, "services.shop.deploy.max_error_rate", "got \"100.1\"" },
	{ "error rate two decimals", MANAGED "    deploy:\n      max_error_rate: 5.55%\n",
	  6, 23, "services.shop.deploy.max_error_rate", "got \"5.55%\"" },
	{ "error rate negative", MANAGED "    deploy:\n      max_error_rate: -1%\n",
	  6, 23, "services.shop.deploy.max_error_rate", "got \"-1%\"" },
	{ "error rate as a fraction", MANAGED "    deploy:\n      max_error_rate: .5%\n",
	  6, 23, "services.shop.deploy.max_error_rate", "got \".5%\"" },
	{ "alerts rate above 100", HEAD SHOP "    alerts:\n      max_error_rate: 101%\n",
	  6, 23, "services.shop.alerts.max_error_rate", "must be a percentage 0..100 with at most one decimal" },
	{ "alerts p99 not a duration", HEAD SHOP "    alerts:\n      max_p99: slow\n",
	  6, 16, "services.shop.alerts.max_p99", "must be a duration" },
	{ "alerts p99 zero", HEAD SHOP "    alerts:\n      max_p99: 0s\n",
	  6, 16, "services.shop.alerts.max_p99", "must be between 1ms and 1h, got \"0s\"" },
	{ "alerts p99 above an hour", HEAD SHOP "    alerts:\n      max_p99: 2h\n",
	  6, 16, "services.shop.alerts.max_p99", "must be between 1ms and 1h" },
	{ "alerts key typo", HEAD SHOP "    alerts:\n      max_p90: 1s\n",
	  6, 7, "services.shop.alerts.max_p90", "did you mean \"max_p99\"?" },
	{ "alerts not a mapping", HEAD SHOP "    alerts: 5%\n",
	  5, 13, "services.shop.alerts", "must be a mapping with max_error_rate: and max_p99:" },
	{ "max_p99 not a duration", MANAGED "    deploy:\n      max_p99: fast\n",
	  6, 16, "services.shop.deploy.max_p99", "must be a duration" },
	{ "deploy timeout zero", MANAGED "    deploy:\n      timeout: 0s\n",
	  6, 16, "services.shop.deploy.timeout", "must be between 1s and 24h, got \"0s\"" },
	{ "min_requests negative", MANAGED "    deploy:\n      min_requests: -1\n",
	  6, 21, "services.shop.deploy.min_requests", "must be an integer 0..1000000" },
	{ "deploy key typo", MANAGED "    deploy:\n      wacth: 1m\n",
	  6, 7, "services.shop.deploy.wacth", "did you mean \"watch\"?" },
	{ "smoke empty", MANAGED "    deploy:\n      smoke: \"\"\n",
	  6, 14, "services.shop.deploy.smoke", "must be a shell command, got \"\"" },
	{ "workdir with a variable", MANAGED "    workdir: ${RELEASE_DIR}/app\n",
	  5, 14, "services.shop.workdir", "variables are not substituted in paths" },
	{ "state_dir empty", HEAD "state_dir: \"\"\n" SHOP,
	  2, 12, "state_dir", "must be a directory path, got \"\"" },
	{ "state_dir without value", HEAD "state_dir:\n" SHOP,
	  2, 11, "state_dir", "missing value: expected a directory path" },
	{ "state_dir with tilde", HEAD "state_dir: ~/cutover\n" SHOP,
	  2, 12, "state_dir", "\"~\" is not expanded" },
	{ "state_dir too long for the socket", HEAD "state_dir: /" X10 X10 X10 X10 X10 X10 X10 X10 X10 X10 "\n" SHOP,
	  2, 12, "state_dir", "is too long for the admin socket in it" },
	{ "admin_socket too long", HEAD "admin_socket: /" X10 X10 X10 X10 X10 X10 X10 X10 X10 X10 X10 "\n" SHOP,
	  2, 15, "admin_socket", "must be at most 107 characters (a Unix socket path), got 111" },
	{ "only comments", "# cutover.yml\n\n# nothing yet\n",
	  0, 0, "", "file is empty" },

	/* instances, recreate, the top-level deploy: defaults */
	{ "instances zero", MANAGED "    instances: 0\n",
	  5, 16, "services.shop.instances", "must be an integer 1..64, got \"0\"" },
	{ "instances too many", MANAGED "    instances: 65\n",
	  5, 16, "services.shop.instances", "must be an integer 1..64, got \"65\"" },
	{ "instances not a number", MANAGED "    instances: many\n",
	  5, 16, "services.shop.instances", "must be an integer 1..64" },
	{ "instances without run", HEAD SHOP "    instances: 2\n",
	  5, 5, "services.shop.instances", "only applies to a service that cutover runs" },
	{ "instances typo", MANAGED "    instance: 2\n",
	  5, 5, "services.shop.instance", "did you mean \"instances\"?" },
	{ "strategy missing", MANAGED "    deploy:\n      strategy:\n",
	  6, 16, "services.shop.deploy.strategy", "missing value: expected blue-green, recreate, canary or rolling" },
	{ "top-level deploy typo", HEAD "deploy:\n  wacth: 1m\n" SHOP,
	  3, 3, "deploy.wacth", "unknown key \"wacth\" (did you mean \"watch\"?)" },
	{ "top-level key typo near deploy", HEAD "deplyo: {}\n" SHOP,
	  2, 1, "deplyo", "did you mean \"deploy\"?" },
	{ "top-level deploy bad value", HEAD "deploy:\n  timeout: 0s\n" SHOP,
	  3, 12, "deploy.timeout", "must be between 1s and 24h, got \"0s\"" },
	{ "top-level deploy is a list", HEAD "deploy: [blue-green]\n" SHOP,
	  2, 9, "deploy", "must be a mapping of deploy settings, got a list" },
	{ "top-level deploy strategy", HEAD "deploy:\n  strategy: canery\n" SHOP,
	  3, 13, "deploy.strategy", "must be blue-green, recreate, canary or rolling, got \"canery\"" },
	{ "top-level deploy window", HEAD "deploy:\n  rollback_window: 30s\n" SHOP,
	  3, 20, "deploy.rollback_window", "must be at least the watch window (1m, the default), got 30s" },
	{ "top-level deploy smoke variable", HEAD "deploy:\n  smoke: curl ${URL}/${PATH}\n" SHOP,
	  3, 10, "deploy.smoke", "unknown variable ${PATH}" },
	{ "top-level deploy read before services", HEAD SHOP "deploy:\n  drain: forever\n",
	  6, 10, "deploy.drain", "must be a duration" },
	/* the service's rollback_window against the inherited watch: the
	 * message points at the service's value */
	{ "inherited watch against own window",
	  HEAD "deploy:\n  watch: 2m\n  rollback_window: 2m\nservices:\n  shop:\n    run: ./shop ${PORT}\n"
	  "    deploy:\n      rollback_window: 1m\n",
	  9, 24, "services.shop.deploy.rollback_window",
	  "must be at least the watch window (2m), got 1m" },
	/* the inherited watch against the service's default-free window: the
	 * message points at the top-level value it inherited */
	{ "own watch against inherited window",
	  HEAD "deploy:\n  rollback_window: 2m\nservices:\n  shop:\n    run: ./shop ${PORT}\n"
	  "    deploy:\n      watch: 3m\n",
	  3, 20, "services.shop.deploy.rollback_window",
	  "must be at least the watch window (3m), got 2m" },
	{ "duplicate key in a service deploy over defaults",
	  HEAD "deploy:\n  watch: 1m\nservices:\n  shop:\n    run: ./shop ${PORT}\n"
	  "    deploy:\n      drain: 1s\n      drain: 2s\n",
	  9, 7, "services.shop.deploy.drain", "duplicate key \"drain\" (first at line 8)" },
	/* route classes */
	{ "route class with a lower-case method", MANAGED "    route_classes:\n      - post /api/checkout\n",
	  6, 9, "services.shop.route_classes[0]", "the method must be upper case (like \"POST /api/checkout\"), got "
	  "\"post /api/checkout\"" },
	{ "route class without a slash", MANAGED "    route_classes:\n      - /api\n      - api/cart\n",
	  7, 9, "services.shop.route_classes[1]", "must be a path prefix (like \"/api/cart\"), or a method, one "
	  "space and a path prefix (like \"POST /api/checkout\"), got \"api/cart\"" },
	{ "route class method alone", MANAGED "    route_classes: [GET]\n",
	  5, 21, "services.shop.route_classes[0]", "must be a path prefix" },
	{ "route class with two spaces", MANAGED "    route_classes:\n      - \"POST  /api\"\n",
	  6, 9, "services.shop.route_classes[0]", "one space between the method and the path prefix" },
	{ "route class method then no path", MANAGED "    route_classes:\n      - \"POST \"\n",
	  6, 9, "services.shop.route_classes[0]", "the path prefix must start with \"/\", got \"POST \"" },
	{ "route class path with a query", MANAGED "    route_classes:\n      - GET /api?x=1\n",
	  6, 9, "services.shop.route_classes[0]", "the path prefix must not contain '?' or '#'" },
	{ "route class path with a space", MANAGED "    route_classes:\n      - \"/api /x\"\n",
	  6, 9, "services.shop.route_classes[0]", "the path prefix must not contain spaces" },
	{ "route class path too long", MANAGED "    route_classes:\n      - /" X10 X10 X10 X10 X10 X10 X10 X10 X10 X10
	  X10 X10 "xxxxxxxx\n",
	  6, 9, "services.shop.route_classes[0]", "the path prefix must be at most 128 characters, got 129" },
	{ "route class method too long", MANAGED "    route_classes:\n      - ABCDEFGHIJKLMNOP /x\n",
	  6, 9, "services.shop.route_classes[0]", "the method must be at most 15 characters" },
	{ "route class twice", MANAGED "    route_classes:\n      - /api\n      - GET /api\n      - /api\n",
	  8, 9, "services.shop.route_classes[2]", "\"/api\" is the same class as route_classes[0] (\"/api\", line 6)" },
	{ "route class twice with its method", MANAGED "    route_classes: [POST /a, /a, POST /a]\n",
	  5, 34, "services.shop.route_classes[2]", "the same class as route_classes[0]" },
	{ "too many route classes", MANAGED "    route_classes: [/a, /b, /c, /d, /e, /f, /g, /h, /i]\n",
	  5, 20, "services.shop.route_classes", "at most 8 route classes, got 9" },
	{ "route class a mapping", MANAGED "    route_classes:\n      - path: /api\n",
	  6, 9, "services.shop.route_classes[0]", "must be a route class like \"POST /api/checkout\" or "
	  "\"/api/cart\", got a mapping" },
	{ "route class empty", MANAGED "    route_classes:\n      -\n",
	  6, 8, "services.shop.route_classes[0]", "missing value" },
	{ "route classes a single value", MANAGED "    route_classes: /api\n",
	  5, 20, "services.shop.route_classes", "must be a list of route classes" },
	{ "route classes of an unmanaged service", HEAD SHOP "    route_classes: [/api]\n",
	  5, 5, "services.shop.route_classes", "only applies to a service that cutover runs" },
	{ "service deploy not a mapping over defaults",
	  HEAD "deploy:\n  watch: 1m\nservices:\n  shop:\n    run: ./shop ${PORT}\n    deploy: fast\n",
	  7, 13, "services.shop.deploy", "must be a mapping of deploy settings, got a single value" },
#define VARS HEAD "variables:\n  DB: /srv/db\n" /* 3 lines */
	{ "misspelt variable of variables:", VARS "services:\n  shop:\n    run: ./shop --port ${PORT} --db ${DBB}\n",
	  6, 10, "services.shop.run", "unknown variable ${DBB} (did you mean ${DB}?)" },
	{ "variable in neither", VARS "services:\n  shop:\n    run: ./shop --port ${PORT} ${CACHE}\n",
	  6, 10, "services.shop.run",
	  "unknown variable ${CACHE}: not in variables: (DB), and cutover substitutes only ${PORT}, ${VERSION}, "
	  "${SERVICE} and ${RELEASE_DIR}; for a shell variable write $CACHE" },
	{ "variable in an env value", VARS "services:\n  shop:\n    run: ./shop ${PORT}\n    env:\n      A: ${D}\n",
	  8, 10, "services.shop.env.A", "unknown variable ${D} (did you mean ${DB}?)" },
	{ "variable of variables: in build",
	  VARS "services:\n  shop:\n    run: ./shop --port ${PORT}\n    build: make DB=${DB}\n",
	  7, 12, "services.shop.build",
	  "${DB} (from variables:) is not substituted here: the build runs once per release, and the same release "
	  "runs in every environment" },
	{ "variable inside a variable", HEAD "variables:\n  DB: ${STATE}/db\n" SHOP,
	  3, 7, "variables.DB", "a variable's value is used as written: ${...} is not substituted in it" },
	{ "variable named PORT", HEAD "variables:\n  PORT: \"80\"\n" SHOP,
	  3, 3, "variables.PORT", "${PORT} is cutover's own variable" },
	{ "variable named like a path", HEAD "variables:\n  my-db: x\n" SHOP,
	  3, 3, "variables.my-db", "variable names must match [A-Za-z_][A-Za-z0-9_]*, got \"my-db\"" },
	{ "variables a list", HEAD "variables: [DB]\n" SHOP,
	  2, 12, "variables", "must be a mapping of variable names to values, got a list" },
	{ "variable a mapping", HEAD "variables:\n  DB: {a: b}\n" SHOP,
	  3, 7, "variables.DB", "must be a value (write \"\" for an empty one), got a mapping" },
	{ "cutover's variable in health.host", MANAGED "    health:\n      host: ${SERVICE}.internal\n",
	  6, 13, "services.shop.health.host",
	  "${SERVICE} is not known here: only the variables: of the configuration are substituted" },
	{ "unknown variable in health.host", MANAGED "    health:\n      host: ${NOPE}\n",
	  6, 13, "services.shop.health.host", "unknown variable ${NOPE}: variables: defines none" },
	{ "health.host too long once substituted",
	  HEAD "variables:\n  H: " X100 X100 X10 X10 X10 X10 X10 X10 X10 "\n"
	  "services:\n  shop:\n    run: ./shop ${PORT}\n    health:\n      host: ${H}\n",
	  8, 13, "services.shop.health.host", "must be at most 261 characters once its variables are substituted, got 270" },
	{ "health.host invalid once substituted",
	  HEAD "variables:\n  H: a b\n" "services:\n  shop:\n    run: ./shop ${PORT}\n    health:\n      host: ${H}\n",
	  8, 13, "services.shop.health.host", "may only contain letters, digits" },
	{ "approval not a word", HEAD "approval: yes\n" SHOP,
	  2, 11, "approval", "must be required, none, or a mapping {required, timeout, distinct}, got \"yes\"" },
	{ "approval.required not a boolean", HEAD "approval:\n  required: maybe\n" SHOP,
	  3, 13, "approval.required", "must be true or false, got \"maybe\"" },
	{ "approval.timeout too short", HEAD "approval:\n  timeout: 10ms\n" SHOP,
	  3, 12, "approval.timeout", "must be between 1s and" },
	{ "approval unknown key", HEAD "approval:\n  distinkt: true\n" SHOP,
	  3, 3, "approval.distinkt", "did you mean \"distinct\"?" },
	{ "promotion.from not an environment", HEAD "promotion:\n  from: Staging\n" SHOP,
	  3, 9, "promotion.from", "must be an environment name" },
	{ "promotion.trust not a key", HEAD "promotion:\n  trust: [abc]\n" SHOP,
	  3, 11, "promotion.trust[0]", "must be a proof key, \"ed25519:\" and its base64" },
	{ "promotion.trust key too short", HEAD "promotion:\n  trust: [\"ed25519:AAAA\"]\n" SHOP,
	  3, 11, "promotion.trust[0]", "must be \"ed25519:\" and 32 bytes in base64" },
	{ "promotion.trust key twice", HEAD "promotion:\n  trust:\n    - " TRUST_KEY "\n    - " TRUST_KEY "\n" SHOP,
	  5, 7, "promotion.trust[1]", "is listed twice (same as trust[0])" },
	{ "promotion.soak negative", HEAD "promotion:\n  soak: -1m\n" SHOP,
	  3, 9, "promotion.soak", "must be a duration" },
};

/* The message must be exactly "FILE:LINE:COLUMN: FIELD: reason" (parts left
 * out when there is no position or field), the reason containing c->reason. */
static void check_invalid(const struct invalid_case *c)
{
	struct config *sentinel = (struct config *)(uintptr_t)0x5a5a;
	struct config *cfg = sentinel;
	struct config_error err;
	char prefix[512];
	int r;

	memset(&err, 0x55, sizeof(err));
	r = config_load_string(NAME, c->text, strlen(c->text), &cfg, &err);
	if (c->line > 0 && c->field[0])
		snprintf(prefix, sizeof(prefix), NAME ":%d:%d: %s: ", c->line, c->column, c->field);
	else if (c->line > 0)
		snprintf(prefix, sizeof(prefix), NAME ":%d:%d: ", c->line, c->column);
	else
		snprintf(prefix, sizeof(prefix), NAME ": ");

	if (r != -EINVAL || cfg != sentinel || err.line != c->line || err.column != c->column ||
	    strcmp(err.field, c->field) || strcmp(err.file, NAME) ||
	    strncmp(err.message, prefix, strlen(prefix)) || !strstr(err.message + strlen(prefix), c->reason))
		fail_msg("case \"%s\":\n"
			 "  returned %d (want %d), ret %s\n"
			 "  got  %d:%d field \"%s\" message \"%s\"\n"
			 "  want %d:%d field \"%s\" message \"%s...%s...\"",
			 c->name, r, -EINVAL, cfg == sentinel ? "untouched" : "CHANGED", err.line, err.column,
			 err.field, err.message, c->line, c->column, c->field, prefix, c->reason);
}

static void test_invalid(void **state)
{
	check_invalid(*state);
}

/* ---- route classes ----------------------------------------------------- */

/* Each class as written, split into its method (NULL: any) and its path
 * prefix, in order; an empty list or none is no class. */
static void test_route_classes(void **state UNUSED)
{
	static const struct {
		const char *name, *method, *path;
	} want[] = {
		{ "POST /api/checkout", "POST", "/api/checkout" },
		{ "/api/cart", NULL, "/api/cart" },
		{ "GET /", "GET", "/" },
		{ "/api/cart/", NULL, "/api/cart/" },
		{ "M-SEARCH /x_y", "M-SEARCH", "/x_y" },
		{ "POST /api/cart", "POST", "/api/cart" }, /* another method, the same path: another class */
	};
	struct config *cfg = load_managed("    route_classes:\n"
					  "      - POST /api/checkout\n"
					  "      - /api/cart\n"
					  "      - GET /\n"
					  "      - /api/cart/\n"
					  "      - M-SEARCH /x_y\n"
					  "      - \"POST /api/cart\"\n");
	const struct config_service *svc = &cfg->services[0];

	assert_int_equal(svc->nroute_classes, ARRAY_SIZE(want));
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		assert_string_equal(svc->route_classes[i].name, want[i].name);
		if (want[i].method)
			assert_string_equal(svc->route_classes[i].method, want[i].method);
		else
			assert_null(svc->route_classes[i].method);
		assert_string_equal(svc->route_classes[i].path_prefix, want[i].path);
	}
	config_free(cfg);

	cfg = load_managed("    route_classes: [/a, /b, /c, /d, /e, /f, /g, /h]\n"); /* CONFIG_ROUTE_CLASSES_MAX */
	assert_int_equal(cfg->services[0].nroute_classes, CONFIG_ROUTE_CLASSES_MAX);
	assert_string_equal(cfg->services[0].route_classes[7].path_prefix, "/h");
	config_free(cfg);
	cfg = load_managed("    route_classes: []\n");
	assert_int_equal(cfg->services[0].nroute_classes, 0);
	assert_null(cfg->services[0].route_classes);
	config_free(cfg);
	cfg = load_managed("    route_classes:\n");
	assert_int_equal(cfg->services[0].nroute_classes, 0);
	config_free(cfg);
}

/* ---- instances, recreate, top-level deploy: defaults ------------------- */

static void test_instances_and_strategy(void **state UNUSED)
{
	static const struct {
		const char *extra;
		uint32_t instances;
		enum config_strategy strategy;
	} cases[] = {
		{ "", 1, CONFIG_STRATEGY_BLUE_GREEN },
		{ "    instances: 1\n", 1, CONFIG_STRATEGY_BLUE_GREEN },
		{ "    instances: 3\n    deploy:\n      strategy: recreate\n", 3, CONFIG_STRATEGY_RECREATE },
		{ "    instances: 64\n    deploy:\n      strategy: blue-green\n", 64, CONFIG_STRATEGY_BLUE_GREEN },
		{ "    deploy: {strategy: \"recreate\"}\n", 1, CONFIG_STRATEGY_RECREATE },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct config *cfg = load_managed(cases[i].extra);

		if (cfg->services[0].instances != cases[i].instances ||
		    cfg->services[0].deploy.strategy != cases[i].strategy)
			fail_msg("%s: instances %u strategy %d, want %u and %d", cases[i].extra,
				 cfg->services[0].instances, cfg->services[0].deploy.strategy, cases[i].instances,
				 cases[i].strategy);
		config_free(cfg);
	}
}

/* Every service inherits the top-level deploy: keys; its own keys win one
 * by one, and its null drops an inherited key back to the built-in
 * default.  The block may come after services:. */
static void test_deploy_defaults_inherited(void **state UNUSED)
{
	struct config *cfg = load_ok("listen: 127.0.0.1:8080\n"
				     "services:\n"
				     "  own:\n"
				     "    run: ./own ${PORT}\n"
				     "    deploy:\n"
				     "      watch: 10s\n"
				     "      smoke: ~\n"
				     "      max_p99: off\n"
				     "  inherits:\n"
				     "    run: ./inherits ${PORT}\n"
				     "  empty:\n"
				     "    run: ./empty ${PORT}\n"
				     "    deploy:\n"
				     "  fixed:\n"
				     "    targets: [127.0.0.1:9001]\n"
				     "deploy:\n"
				     "  strategy: recreate\n"
				     "  watch: 30s\n"
				     "  max_p99: 250ms\n"
				     "  min_requests: 5\n"
				     "  smoke: curl -fsS ${URL}/health\n");
	const struct config_deploy *own = &cfg->services[0].deploy;
	size_t i;

	assert_int_equal(cfg->nservices, 4);
	assert_int_equal(own->strategy, CONFIG_STRATEGY_RECREATE);
	assert_int_equal(own->watch_ms, 10000);
	assert_null(own->smoke);
	assert_int_equal(own->max_p99_ms, 0);
	assert_int_equal(own->min_requests, 5);
	assert_int_equal(own->drain_ms, 30000);
	assert_int_equal(own->rollback_window_ms, 300000);
	for (i = 1; i < 4; i++) {
		const struct config_deploy *d = &cfg->services[i].deploy;

		assert_int_equal(d->strategy, CONFIG_STRATEGY_RECREATE);
		assert_int_equal(d->watch_ms, 30000);
		assert_int_equal(d->max_p99_ms, 250);
		assert_int_equal(d->min_requests, 5);
		assert_string_equal(d->smoke, "curl -fsS ${URL}/health");
		assert_int_equal(d->timeout_ms, 60000);
	}
	config_free(cfg);

	/* an empty block changes nothing */
	cfg = load_ok(MANAGED "deploy:\n");
	assert_service_defaults(&cfg->services[0]);
	config_free(cfg);
}

/* ---- merging trees ----------------------------------------------------- */

/* Append the tree as text: every node with the first letter of its file
 * and its line, like {a@b1: 1@b1, l@o2: [x@o2]@o2}@b1. */
static void dump(const struct ynode *n, char *buf, size_t size)
{
	size_t i, len = strlen(buf);
	char where[32];

	snprintf(where, sizeof(where), "@%c%d", ynode_file_name(n)[0], n->line);
	switch (n->kind) {
	case YNODE_SCALAR:
	case YNODE_ALIAS:
		snprintf(buf + len, size - len, "%s%s%s", n->kind == YNODE_ALIAS ? "*" : "", n->value, where);
		return;
	case YNODE_LIST:
		snprintf(buf + len, size - len, "[");
		for (i = 0; i < n->nitems; i++) {
			if (i)
				snprintf(buf + strlen(buf), size - strlen(buf), ", ");
			dump(n->items[i], buf, size);
		}
		snprintf(buf + strlen(buf), size - strlen(buf), "]%s", where);
		return;
	case YNODE_MAP:
		snprintf(buf + len, size - len, "{");
		for (i = 0; i < ynode_map_size(n); i++) {
			if (i)
				snprintf(buf + strlen(buf), size - strlen(buf), ", ");
			dump(ynode_map_key(n, i), buf, size);
			snprintf(buf + strlen(buf), size - strlen(buf), ": ");
			dump(ynode_map_value(n, i), buf, size);
		}
		snprintf(buf + strlen(buf), size - strlen(buf), "}%s", where);
		return;
	}
}

static struct ynode *parse_ok(const char *name, const char *text)
{
	struct ynode_error err;
	struct ynode *root = NULL;

	if (ynode_parse(name, text, strlen(text), &root, &err) < 0)
		fail_msg("%s: %d:%d: %s", name, err.line, err.column, err.message);
	return root;
}

struct merge_case {
	const char *name;
	const char *base, *overlay;
	const char *want;             /* the merged tree as dump() writes it; NULL: an error */
	const char *file;             /* the error's file, position, field and message */
	int line, column;
	const char *field, *message;
};

#define MERGED(name, base, overlay, want) { (name), (base), (overlay), (want), NULL, 0, 0, NULL, NULL }

static const struct merge_case merge_cases[] = {
	MERGED("maps merge key by key", "a: 1\nb:\n  c: 2\n  d: 3\n", "b:\n  d: 4\n  e: 5\n",
	  "{a@b1: 1@b1, b@b2: {c@b3: 2@b3, d@o2: 4@o2, e@o3: 5@o3}@b3}@b1"),
	MERGED("lists replace", "l: [1, 2, 3]\nk: 1\n", "l: [4]\n",
	  "{l@o1: [4@o1]@o1, k@b2: 1@b2}@b1"),
	MERGED("lists of mappings replace whole", "l:\n  - a: 1\n  - a: 2\n", "l:\n  - b: 2\n",
	  "{l@o1: [{b@o2: 2@o2}@o2]@o2}@b1"),
	MERGED("values replace", "a: 1\nb: 2\n", "b: three\n",
	  "{a@b1: 1@b1, b@o1: three@o1}@b1"),
	MERGED("null removes a key", "a: 1\nb: 2\nc: 3\nd: 4\n", "b: ~\nc: null\nd:\n",
	  "{a@b1: 1@b1}@b1"),
	MERGED("null of a missing key adds nothing", "a: 1\n", "z:\n",
	  "{a@b1: 1@b1}@b1"),
	MERGED("null removes a nested key", "m:\n  x: 1\n  y: 2\n", "m:\n  y: ~\n",
	  "{m@b1: {x@b2: 1@b2}@b2}@b1"),
	MERGED("null removes a whole mapping", "m:\n  x: 1\nk: 2\n", "m: ~\n",
	  "{k@b3: 2@b3}@b1"),
	MERGED("quoted null is a value", "a: 1\n", "a: \"null\"\n",
	  "{a@o1: null@o1}@b1"),
	MERGED("new keys follow in overlay order", "b: 1\n", "z: 1\na: 2\n",
	  "{b@b1: 1@b1, z@o1: 1@o1, a@o2: 2@o2}@b1"),
	MERGED("a new mapping loses its nulls", "a: 1\n", "m:\n  k: v\n  n: ~\n  o:\n    p: ~\n",
	  "{a@b1: 1@b1, m@o1: {k@o2: v@o2, o@o4: {}@o5}@o2}@b1"),
	MERGED("mapping replaces a value", "m: 1\n", "m:\n  k: v\n",
	  "{m@o1: {k@o2: v@o2}@o2}@b1"),
	MERGED("value replaces a mapping", "m:\n  k: v\n", "m: [x]\n",
	  "{m@o1: [x@o1]@o1}@b1"),
	MERGED("deep merge", "s:\n  shop:\n    env:\n      A: 1\n      B: 2\n    run: x\n",
	  "s:\n  shop:\n    env:\n      B: ~\n      C: 3\n",
	  "{s@b1: {shop@b2: {env@b3: {A@b4: 1@b4, C@o5: 3@o5}@b4, run@b6: x@b6}@b3}@b2}@b1"),
	MERGED("empty overlay", "a: 1\n", "",
	  "{a@b1: 1@b1}@b1"),
	MERGED("null overlay", "a: 1\n", "~\n",
	  "{a@b1: 1@b1}@b1"),
	MERGED("overlay that is not a mapping replaces", "a: 1\n", "- 1\n",
	  "[1@o1]@o1"),
	MERGED("aliases and merge keys are left to the loader", "a: 1\n", "b: &x 1\nc: *x\n<<: {d: 1}\n",
	  "{a@b1: 1@b1, b@o1: 1@o1, c@o2: *x@o2, <<@o3: {d@o3: 1@o3}@o3}@b1"),
	{ "duplicate key in the overlay", "a: 1\n", "a: 2\na: 3\n",
	  NULL, "overlay.yml", 2, 1, "a", "duplicate key \"a\" (first at line 1)" },
	{ "duplicate nested key in the overlay", "m:\n  k: 1\n", "m:\n  j: 1\n  x: 0\n  j: 2\n",
	  NULL, "overlay.yml", 4, 3, "m.j", "duplicate key \"j\" (first at line 2)" },
	{ "duplicate key in a base mapping being merged", "m:\n  k: 1\n  k: 2\n", "m:\n  j: 1\n",
	  NULL, "base.yml", 3, 3, "m.k", "duplicate key \"k\" (first at line 2)" },
	{ "duplicate key in a new mapping", "a: 1\n", "m:\n  n:\n    k: 1\n    k: ~\n",
	  NULL, "overlay.yml", 4, 5, "m.n.k", "duplicate key \"k\" (first at line 3)" },
};

/* The merge leaves both inputs as they were, and the result stays valid
 * (file names included) after both are freed. */
static void test_merge(void **state)
{
	const struct merge_case *c = *state;
	struct ynode *base = parse_ok("base.yml", c->base), *overlay = parse_ok("overlay.yml", c->overlay);
	struct ynode *merged = (struct ynode *)(uintptr_t)0x5a5a;
	char before[1024] = "", after[1024] = "", got[1024] = "";
	struct ynode_error err;
	int r;

	dump(base, before, sizeof(before));
	if (overlay)
		dump(overlay, before, sizeof(before));
	memset(&err, 0x55, sizeof(err));
	r = ynode_merge(base, overlay, &merged, &err);
	dump(base, after, sizeof(after));
	if (overlay)
		dump(overlay, after, sizeof(after));
	assert_string_equal(before, after);
	ynode_free(base);
	ynode_free(overlay);

	if (!c->want) {
		if (r != -EINVAL || merged != (struct ynode *)(uintptr_t)0x5a5a || strcmp(err.file, c->file) ||
		    err.line != c->line || err.column != c->column || strcmp(err.field, c->field) ||
		    strcmp(err.message, c->message))
			fail_msg("case \"%s\": returned %d\n  got  %s:%d:%d field \"%s\" \"%s\"\n"
				 "  want %s:%d:%d field \"%s\" \"%s\"",
				 c->name, r, err.file, err.line, err.column, err.field, err.message, c->file, c->line,
				 c->column, c->field, c->message);
		return;
	}
	if (r < 0)
		fail_msg("case \"%s\": returned %d: %s", c->name, r, err.message);
	dump(merged, got, sizeof(got));
	ynode_free(merged);
	if (strcmp(got, c->want))
		fail_msg("case \"%s\":\n  got  %s\n  want %s", c->name, got, c->want);
}

/* ---- overlays ---------------------------------------------------------- */

static void test_overlay_valid(void **state UNUSED)
{
	static const char base[] = "listen: 127.0.0.1:8080\n"
				   "timeouts:\n"
				   "  client_header: 5s\n"
				   "  drain: 10s\n"
				   "state_dir: state\n"
				   "services:\n"
				   "  shop:\n"
				   "    run: ./shop --port ${PORT}\n"
				   "    env:\n"
				   "      A: \"1\"\n"
				   "      B: \"2\"\n"
				   "    deploy:\n"
				   "      watch: 30s\n"
				   "    routes:\n"
				   "      - path: /\n"
				   "  api:\n"
				   "    targets: [127.0.0.1:9001, 127.0.0.1:9002]\n"
				   "  old:\n"
				   "    targets: [127.0.0.1:9003]\n";
	static const char overlay[] = "listen: [127.0.0.1:9090, 127.0.0.1:9091]\n"
				      "timeouts:\n"
				      "  drain: 1s\n"
				      "state_dir: prod-state\n"
				      "deploy:\n"
				      "  strategy: recreate\n"
				      "services:\n"
				      "  shop:\n"
				      "    instances: 3\n"
				      "    env:\n"
				      "      B: ~\n"
				      "      C: \"3\"\n"
				      "    deploy:\n"
				      "      max_p99: 200ms\n"
				      "  api:\n"
				      "    targets: [127.0.0.1:9100]\n"
				      "  old: ~\n";
	struct config_source sources[] = {
		{ "conf/cutover.yml", base, strlen(base) },
		{ "env/prod.yml", overlay, strlen(overlay) },
	};
	struct config_error err;
	struct config *cfg = NULL;
	const struct config_service *shop;

	if (config_load_sources(sources, ARRAY_SIZE(sources), &cfg, &err) < 0)
		fail_msg("%s", err.message);
	assert_string_equal(cfg->path, "conf/cutover.yml");
	assert_int_equal(cfg->nlisten, 2);
	assert_int_equal(addr_port(&cfg->listen[1]), 9091);
	assert_int_equal(cfg->timeouts.client_header, 5000);
	assert_int_equal(cfg->timeouts.drain, 1000);
	/* relative to the overlay's directory, where it was written */
	assert_string_equal(cfg->state_dir, "env/prod-state");
	assert_string_equal(cfg->admin_socket, "env/prod-state/admin.sock");
	assert_int_equal(cfg->nservices, 2);
	shop = &cfg->services[0];
	assert_string_equal(shop->name, "shop");
	assert_int_equal(shop->instances, 3);
	assert_int_equal(shop->nenv, 2);
	assert_string_equal(shop->env[0].name, "A");
	assert_string_equal(shop->env[1].name, "C");
	assert_string_equal(shop->env[1].value, "3");
	assert_int_equal(shop->deploy.strategy, CONFIG_STRATEGY_RECREATE);
	assert_int_equal(shop->deploy.watch_ms, 30000);
	assert_int_equal(shop->deploy.max_p99_ms, 200);
	assert_string_equal(cfg->services[1].name, "api");
	assert_int_equal(cfg->services[1].ntargets, 1);
	assert_int_equal(addr_port(&cfg->services[1].targets[0].addr), 9100);
	assert_int_equal(cfg->nroutes, 1);
	config_free(cfg);
}

/* Overlays apply in order; empty ones change nothing; the file named in a
 * message is the one the value came from. */
static void test_overlays_in_order(void **state UNUSED)
{
	struct config_source sources[] = {
		{ "base.yml", HEAD "timeouts:\n  drain: 5s\n" SHOP, 0 },
		{ "empty.yml", "", 0 },
		{ "one.yml", "listen: 127.0.0.1:9090\ntimeouts:\n  drain: 1s\n  client_idle: 7s\n", 0 },
		{ "comments.yml", "# nothing\n", 0 },
		{ "two.yml", "timeouts:\n  drain: 2s\n", 0 },
	};
	struct config_error err;
	struct config *cfg = NULL;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(sources); i++)
		sources[i].len = strlen(sources[i].text);
	if (config_load_sources(sources, ARRAY_SIZE(sources), &cfg, &err) < 0)
		fail_msg("%s", err.message);
	assert_int_equal(addr_port(&cfg->listen[0]), 9090);
	assert_int_equal(cfg->timeouts.drain, 2000);
	assert_int_equal(cfg->timeouts.client_idle, 7000);
	config_free(cfg);

	/* a bad value set by one.yml and kept by two.yml is one.yml's */
	sources[2].text = "timeouts:\n  client_idle: 7x\n";
	sources[2].len = strlen(sources[2].text);
	assert_int_equal(config_load_sources(sources, ARRAY_SIZE(sources), &cfg, &err), -EINVAL);
	assert_string_equal(err.message, "one.yml:2:16: timeouts.client_idle: must be a duration (250ms, 10s, 5m, "
					 "1h; a bare number is seconds), got \"7x\"");
	assert_string_equal(err.file, "one.yml");

	/* a later overlay cannot bring back a service an earlier one removed */
	sources[2].text = "services:\n  shop: ~\n";
	sources[2].len = strlen(sources[2].text);
	sources[4].text = "services:\n  shop:\n    targets: [127.0.0.1:1]\n";
	sources[4].len = strlen(sources[4].text);
	assert_int_equal(config_load_sources(sources, ARRAY_SIZE(sources), &cfg, &err), -EINVAL);
	assert_string_equal(err.file, "two.yml");
	assert_string_equal(err.field, "services.shop");

	assert_int_equal(config_load_sources(sources, 0, &cfg, &err), -EINVAL);
}

struct overlay_case {
	const char *name;
	const char *base;             /* cutover.yml */
	const char *overlay;          /* overlay.yml */
	const char *file;             /* the error must name this file, place, field and reason */
	int line, column;
	const char *field;
	const char *reason;
};

#define ROUTED HEAD "services:\n  shop:\n    targets: [127.0.0.1:9001]\n    routes:\n      - host: a.example.com\n" \
	"  api:\n    targets: [127.0.0.1:9002]\n    routes:\n      - path: /api/\n"

static const struct overlay_case overlay_cases[] = {
	{ "unknown service", HEAD SHOP, "services:\n  shpo:\n    targets: [127.0.0.1:9002]\n",
	  "overlay.yml", 2, 3, "services.shpo",
	  "unknown service \"shpo\" (did you mean \"shop\"?): an overlay can change or remove the services of "
	  "cutover.yml, not add one" },
	{ "unknown service removed", HEAD SHOP, "services:\n  shop: {}\n  billing: ~\n",
	  "overlay.yml", 3, 3, "services.billing", "unknown service \"billing\": an overlay can change" },
	{ "unknown service over a base without services", "listen: 127.0.0.1:8080\n", "services:\n  shop: {}\n",
	  "overlay.yml", 2, 3, "services.shop", "unknown service \"shop\"" },
	{ "bad value in the overlay", HEAD "timeouts:\n  drain: 5s\n" SHOP, "timeouts:\n  drain: 25h\n",
	  "overlay.yml", 2, 10, "timeouts.drain", "must be between 0ms and 24h, got \"25h\"" },
	{ "bad target in the overlay", HEAD SHOP, "services:\n  shop:\n    targets: [127.0.0.1]\n",
	  "overlay.yml", 3, 15, "services.shop.targets[0]", "must be an address like" },
	{ "unknown key in the overlay", HEAD SHOP, "timeout:\n  drain: 1s\n",
	  "overlay.yml", 1, 1, "timeout", "unknown key \"timeout\" (did you mean \"timeouts\"?)" },
	{ "overlay is a list", HEAD SHOP, "- listen\n",
	  "overlay.yml", 1, 1, "", "the top level must be a mapping of settings" },
	{ "syntax error in the overlay", HEAD SHOP, "services:\n  shop\n    targets: x\n",
	  "overlay.yml", 2, 3, "", "syntax error: this key has no ':' after it" },
	{ "duplicate key in the overlay", HEAD SHOP, "listen: 127.0.0.1:1\nlisten: 127.0.0.1:2\n",
	  "overlay.yml", 2, 1, "listen", "duplicate key \"listen\" (first at line 1)" },
	{ "managed key added to a service at targets", HEAD SHOP, "services:\n  shop:\n    health: {path: /h}\n",
	  "overlay.yml", 3, 5, "services.shop.health", "only applies to a service that cutover runs" },
	{ "targets added to a managed service", MANAGED, "services:\n  shop:\n    targets: [127.0.0.1:9001]\n",
	  "overlay.yml", 3, 5, "services.shop.targets", "cannot be combined with run:" },
	{ "run without PORT from the overlay", MANAGED, "services:\n  shop:\n    run: ./shop\n",
	  "overlay.yml", 3, 10, "services.shop.run", "must contain ${PORT}" },
	{ "alias in the overlay", HEAD SHOP, "log: &l {level: info}\nadmin: *l\n",
	  "overlay.yml", 2, 8, "admin", "aliases (*l) are not supported" },
	{ "merge key in the overlay", HEAD SHOP, "services:\n  shop:\n    <<: {run: x}\n",
	  "overlay.yml", 3, 5, "services.shop", "merge keys (<<) are not supported" },
	{ "required key removed", HEAD SHOP, "listen: ~\n",
	  NAME, 1, 1, "listen", "is required" },
	{ "route repeated across files", ROUTED, "services:\n  api:\n    routes:\n      - host: a.example.com\n",
	  "overlay.yml", 4, 9, "services.api.routes[0]",
	  "route (host \"a.example.com\", path \"/\") is already declared at services.shop.routes[0] (cutover.yml:6)" },
	{ "top-level deploy in the overlay", MANAGED, "deploy:\n  timeout: 0s\n",
	  "overlay.yml", 2, 12, "deploy.timeout", "must be between 1s and 24h" },
	{ "inherited window from the overlay", MANAGED "    deploy:\n      watch: 2m\n",
	  "deploy:\n  rollback_window: 90s\n",
	  "overlay.yml", 2, 20, "services.shop.deploy.rollback_window", "must be at least the watch window (2m), got 90s" },
	{ "list as a key in the overlay", HEAD SHOP, "services:\n  [a]: 1\n",
	  "overlay.yml", 2, 3, "services", "keys must be plain names, got a list" },
	{ "services of the base not a mapping", HEAD "services: [shop]\n", "services:\n  shop: {}\n",
	  "overlay.yml", 2, 3, "services.shop", "unknown service \"shop\"" },
	{ "services replaced by a list", HEAD SHOP, "services: [shop]\n",
	  "overlay.yml", 1, 11, "services", "must be a mapping of service names to services, got a list" },
	{ "error in the base", HEAD "timeouts:\n  drain: 25h\n" SHOP, "listen: 127.0.0.1:9090\n",
	  NAME, 3, 10, "timeouts.drain", "must be between 0ms and 24h" },
	{ "base is empty", "", "listen: 127.0.0.1:9090\n",
	  NAME, 0, 0, "", "file is empty" },
	{ "variable inside a variable in the overlay", VARS SHOP, "variables:\n  DB: ${HOME}/db\n",
	  "overlay.yml", 2, 7, "variables.DB", "a variable's value is used as written" },
	{ "overlay uses a variable nobody defines", VARS "services:\n  shop:\n    run: ./shop ${PORT}\n",
	  "services:\n  shop:\n    env:\n      DB: ${DATABASE}\n",
	  "overlay.yml", 4, 11, "services.shop.env.DB", "unknown variable ${DATABASE}: not in variables: (DB)" },
	{ "overlay removes a variable still used", VARS "services:\n  shop:\n    run: ./shop ${PORT} ${DB}\n",
	  "variables:\n  DB: ~\n",
	  NAME, 6, 10, "services.shop.run", "unknown variable ${DB}: cutover substitutes only" },
};

static void test_overlay_invalid(void **state)
{
	const struct overlay_case *c = *state;
	struct config_source sources[] = {
		{ NAME, c->base, strlen(c->base) },
		{ "overlay.yml", c->overlay, strlen(c->overlay) },
	};
	struct config *sentinel = (struct config *)(uintptr_t)0x5a5a, *cfg = sentinel;
	struct config_error err;
	char prefix[512];
	int r;

	memset(&err, 0x55, sizeof(err));
	r = config_load_sources(sources, ARRAY_SIZE(sources), &cfg, &err);
	if (c->line > 0 && c->field[0])
		snprintf(prefix, sizeof(prefix), "%s:%d:%d: %s: ", c->file, c->line, c->column, c->field);
	else if (c->line > 0)
		snprintf(prefix, sizeof(prefix), "%s:%d:%d: ", c->file, c->line, c->column);
	else
		snprintf(prefix, sizeof(prefix), "%s: ", c->file);
	if (r != -EINVAL || cfg != sentinel || err.line != c->line || err.column != c->column ||
	    strcmp(err.field, c->field) || strcmp(err.file, c->file) ||
	    strncmp(err.message, prefix, strlen(prefix)) || !strstr(err.message + strlen(prefix), c->reason))
		fail_msg("case \"%s\":\n"
			 "  returned %d (want %d), ret %s\n"
			 "  got  %s:%d:%d field \"%s\" message \"%s\"\n"
			 "  want %s:%d:%d field \"%s\" message \"%s...%s...\"",
			 c->name, r, -EINVAL, cfg == sentinel ? "untouched" : "CHANGED", err.file, err.line, err.column,
			 err.field, err.message, c->file, c->line, c->column, c->field, prefix, c->reason);
}

/* Overlay files on disk: paths relative to the overlay's directory, and a
 * missing overlay named in the message. */
static void test_overlay_files(void **state UNUSED)
{
	char dir[] = "/tmp/cutover-test-config-XXXXXX", base[64], envdir[64], overlay[80], missing[80];
	char want[PATH_MAX + 64];
	const char *base_text = MANAGED "state_dir: state\n";
	const char *overlay_text = "state_dir: prod-state\nservices:\n  shop:\n    workdir: run\n";
	const char *paths[2];
	struct config_error err;
	struct config *cfg = NULL;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(base, sizeof(base), "%s/cutover.yml", dir);
	snprintf(envdir, sizeof(envdir), "%s/env", dir);
	snprintf(overlay, sizeof(overlay), "%s/prod.yml", envdir);
	snprintf(missing, sizeof(missing), "%s/staging.yml", envdir);
	assert_int_equal(mkdir(envdir, 0700), 0);
	assert_non_null(f = fopen(base, "w"));
	fputs(base_text, f);
	fclose(f);
	assert_non_null(f = fopen(overlay, "w"));
	fputs(overlay_text, f);
	fclose(f);

	paths[0] = base;
	paths[1] = overlay;
	if (config_load_files(paths, 2, &cfg, &err) < 0)
		fail_msg("%s", err.message);
	assert_string_equal(cfg->path, base);
	snprintf(want, sizeof(want), "%s/prod-state", envdir);
	assert_string_equal(cfg->state_dir, want);
	snprintf(want, sizeof(want), "%s/run", envdir);
	assert_string_equal(cfg->services[0].workdir, want);
	config_free(cfg);
	cfg = NULL;

	paths[1] = missing;
	assert_int_equal(config_load_files(paths, 2, &cfg, &err), -ENOENT);
	assert_null(cfg);
	snprintf(want, sizeof(want), "%s: cannot read: No such file or directory", missing);
	assert_string_equal(err.message, want);

	unlink(overlay);
	unlink(base);
	rmdir(envdir);
	rmdir(dir);
}

/* ---- variables and config show ------------------------------------------ */

/* variables: are substituted when the file is loaded, wherever they are
 * written (also before variables:), cutover's own ${...} are kept for the
 * launch. */
static void test_variables(void **state UNUSED)
{
	struct config *cfg = load_ok("listen: 127.0.0.1:8080\n"
				     "deploy:\n"
				     "  smoke: curl -fsS ${URL}/health?db=${DB}\n"
				     "variables:\n"
				     "  DB: /srv/shop.db\n"
				     "  HOST: shop.internal\n"
				     "  EMPTY: \"\"\n"
				     "services:\n"
				     "  shop:\n"
				     "    run: ${RELEASE_DIR}/shop --port ${PORT} --db ${DB}${EMPTY} --name ${SERVICE}\n"
				     "    env:\n"
				     "      SHOP_DB: ${DB}\n"
				     "      BOTH: ${DB}:${PORT}\n"
				     "    health:\n"
				     "      host: ${HOST}\n");
	const struct config_service *svc = &cfg->services[0];

	assert_int_equal(cfg->nvariables, 3);
	assert_string_equal(cfg->variables[0].name, "DB");
	assert_string_equal(cfg->variables[0].value, "/srv/shop.db");
	assert_string_equal(cfg->variables[2].value, "");
	assert_string_equal(svc->run, "${RELEASE_DIR}/shop --port ${PORT} --db /srv/shop.db --name ${SERVICE}");
	assert_string_equal(svc->env[0].value, "/srv/shop.db");
	assert_string_equal(svc->env[1].value, "/srv/shop.db:${PORT}");
	assert_string_equal(svc->health.host, "shop.internal");
	assert_string_equal(svc->deploy.smoke, "curl -fsS ${URL}/health?db=/srv/shop.db");
	config_free(cfg);
}

#define SHOW_BASE \
	"listen: 127.0.0.1:8080\n"                                   /*  1 */ \
	"state_dir: /srv/state\n"                                    /*  2 */ \
	"variables:\n"                                               /*  3 */ \
	"  DB: /srv/shop.db\n"                                       /*  4 */ \
	"  HOST: shop.internal\n"                                    /*  5 */ \
	"deploy:\n"                                                  /*  6 */ \
	"  watch: 10s\n"                                             /*  7 */ \
	"  max_p99: 300ms\n"                                         /*  8 */ \
	"services:\n"                                                /*  9 */ \
	"  shop:\n"                                                  /* 10 */ \
	"    run: ./shop --port ${PORT} --db ${DB}\n"                /* 11 */ \
	"    env:\n"                                                 /* 12 */ \
	"      SHOP_DB: ${DB}\n"                                     /* 13 */ \
	"      MODE: base\n"                                         /* 14 */ \
	"      GREETING: \"hi: there\"\n"                            /* 15 */ \
	"    health:\n"                                              /* 16 */ \
	"      host: ${HOST}\n"                                      /* 17 */ \
	"    deploy:\n"                                              /* 18 */ \
	"      strategy: blue-green\n"                               /* 19 */ \
	"      max_p99: ~\n"                                         /* 20 */ \
	"      steps: \"10% 1m, 100%\"\n"                            /* 21 */ \
	"    routes:\n"                                              /* 22 */ \
	"      - host: shop.test\n"                                  /* 23 */ \
	"  api:\n"                                                   /* 24 */ \
	"    targets:\n"                                             /* 25 */ \
	"      - 127.0.0.1:9001\n"                                   /* 26 */ \
	"      - address: 127.0.0.1:9002\n"                          /* 27 */ \
	"        weight: 3\n"                                        /* 28 */ \
	"    alerts:\n"                                              /* 29 */ \
	"      max_error_rate: 0.5%\n"                               /* 30 */ \
	"      max_p99: 2s\n"                                        /* 31 */
#define SHOW_OVERLAY \
	"listen: [127.0.0.1:9090, 127.0.0.1:9091]\n"                 /*  1 */ \
	"variables:\n"                                               /*  2 */ \
	"  DB: /srv/prod.db\n"                                       /*  3 */ \
	"timeouts:\n"                                                /*  4 */ \
	"  drain: 5s\n"                                              /*  5 */ \
	"services:\n"                                                /*  6 */ \
	"  shop:\n"                                                  /*  7 */ \
	"    instances: 3\n"                                         /*  8 */ \
	"    env:\n"                                                 /*  9 */ \
	"      MODE: ~\n"                                            /* 10 */ \
	"    deploy:\n"                                              /* 11 */ \
	"      strategy: canary\n"                                   /* 12 */ \
	"      steps:\n"                                             /* 13 */ \
	"        - 25% 30s\n"                                        /* 14 */ \
	"        - 100%\n"                                           /* 15 */

/* Load SHOW_BASE (cutover.yml) with SHOW_OVERLAY (cutover.prod.yml) and
 * the merged tree. */
static struct config *load_show(struct ynode **tree)
{
	static const char base[] = SHOW_BASE, overlay[] = SHOW_OVERLAY;
	struct config_source sources[] = {
		{ NAME, base, sizeof(base) - 1 },
		{ "cutover.prod.yml", overlay, sizeof(overlay) - 1 },
	};
	struct config_error err;
	struct config *cfg = NULL;

	if (config_load_sources_tree(sources, ARRAY_SIZE(sources), &cfg, tree, &err) < 0)
		fail_msg("%s", err.message);
	assert_non_null(*tree);
	return cfg;
}

/* The member at a dotted path of doc, "a.b[1].c" (NULL if none). */
static json_t *json_path(json_t *doc, const char *path)
{
	char key[64];
	size_t len;

	while (doc && *path) {
		if (*path == '[') {
			doc = json_array_get(doc, strtoul(path + 1, (char **)&path, 10));
			path += *path == ']';
		} else {
			len = strcspn(path, ".[");
			snprintf(key, sizeof(key), "%.*s", (int)len, path);
			doc = json_object_get(doc, key);
			path += len;
		}
		path += *path == '.';
	}
	return doc;
}

struct show_case {
	const char *path;             /* under "config" */
	const char *value;            /* a string value, or an integer's digits; NULL: null */
	const char *file;             /* NULL: "default" */
	int line;
};

static const struct show_case show_cases[] = {
	{ "listen[1]", "127.0.0.1:9091", "cutover.prod.yml", 1 },
	{ "admin", NULL, NULL, 0 },
	{ "state_dir", "/srv/state", NAME, 2 },
	{ "admin_socket", "/srv/state/admin.sock", NULL, 0 },
	{ "variables.DB", "/srv/prod.db", "cutover.prod.yml", 3 },
	{ "variables.HOST", "shop.internal", NAME, 5 },
	{ "timeouts.drain", "5s", "cutover.prod.yml", 5 },
	{ "timeouts.client_header", "10s", NULL, 0 },
	{ "limits.max_header_bytes", "16k", NULL, 0 },
	{ "log.access", "off", NULL, 0 },
	{ "cohorts.max_age", "30d", NULL, 0 },
	{ "services.shop.run", "./shop --port ${PORT} --db /srv/prod.db", NAME, 11 },
	{ "services.shop.env.SHOP_DB", "/srv/prod.db", NAME, 13 },
	{ "services.shop.env.GREETING", "hi: there", NAME, 15 },
	{ "services.shop.health.host", "shop.internal", NAME, 17 },
	{ "services.shop.health.timeout", "500ms", NULL, 0 },
	{ "services.shop.instances", "3", "cutover.prod.yml", 8 },
	{ "services.shop.limits.nofile", NULL, NULL, 0 },
	/* the overlay's value over the service's own */
	{ "services.shop.deploy.strategy", "canary", "cutover.prod.yml", 12 },
	/* inherited from the top-level deploy: block */
	{ "services.shop.deploy.watch", "10s", NAME, 7 },
	/* a null in the service's deploy: drops the inherited 300ms */
	{ "services.shop.deploy.max_p99", "off", NULL, 0 },
	{ "services.shop.deploy.steps[0]", "25% 30s", "cutover.prod.yml", 14 },
	{ "services.shop.deploy.steps[1]", "100%", "cutover.prod.yml", 15 },
	{ "services.shop.deploy.max_error_rate", "5%", NULL, 0 },
	{ "services.shop.deploy.confidence", "99%", NULL, 0 },
	{ "services.shop.deploy.max_p99_ratio", "2x", NULL, 0 },
	{ "services.shop.deploy.max_surge", "25%", NULL, 0 },
	{ "services.shop.deploy.retry_on_stable", "on", NULL, 0 },
	{ "services.shop.routes[0].host", "shop.test", NAME, 23 },
	{ "services.shop.routes[0].path", "/", NULL, 0 },
	{ "services.api.targets[0].address", "127.0.0.1:9001", NAME, 26 },
	{ "services.api.targets[0].weight", "1", NULL, 0 },
	{ "services.api.targets[1].weight", "3", NAME, 28 },
	{ "services.api.alerts.max_error_rate", "0.5%", NAME, 30 },
	{ "services.api.alerts.max_p99", "2s", NAME, 31 },
	{ "services.shop.alerts.max_error_rate", "5%", NULL, 0 },
	{ "services.shop.alerts.max_p99", "1s", NULL, 0 },
};

/* Every value of the table where it must be, with its value and origin;
 * a key the overlay removed is not there. */
static void test_show_json(void **state UNUSED)
{
	struct ynode *tree = NULL;
	struct config *cfg = load_show(&tree);
	json_t *doc = config_show_json(cfg, tree), *config, *leaf, *value, *origin;
	char got[64];

	assert_non_null(doc);
	config = json_object_get(doc, "config");
	assert_true(json_is_null(json_object_get(doc, "env")));
	for (size_t i = 0; i < ARRAY_SIZE(show_cases); i++) {
		const struct show_case *c = &show_cases[i];

		leaf = json_path(config, c->path);
		value = json_object_get(leaf, "value");
		origin = json_object_get(leaf, "origin");
		if (json_is_integer(value))
			snprintf(got, sizeof(got), "%lld", (long long)json_integer_value(value));
		else
			snprintf(got, sizeof(got), "%s", json_is_string(value) ? json_string_value(value) : "(null)");
		if (!leaf || !origin || (c->value ? strcmp(got, c->value) : !json_is_null(value)) ||
		    (c->file ? !json_is_object(origin) ||
				       strcmp(json_string_value(json_object_get(origin, "file")), c->file) ||
				       json_integer_value(json_object_get(origin, "line")) != c->line
			     : strcmp(json_string_value(origin) ? json_string_value(origin) : "", "default")))
			fail_msg("%s: got %s, want %s from %s:%d\n%s", c->path, leaf ? json_dumps(leaf, 0) : "nothing",
				 c->value ? c->value : "null", c->file ? c->file : "default", c->line,
				 json_dumps(json_path(config, "services.shop"), JSON_INDENT(1)));
	}
	assert_null(json_path(config, "services.shop.env.MODE"));
	assert_null(json_path(config, "services.shop.targets"));    /* managed: no targets */
	assert_null(json_path(config, "services.api.deploy"));      /* at targets: no deploy */
	json_decref(doc);
	ynode_free(tree);
	config_free(cfg);
}

/* The text: the files named first, sections in order, values as YAML
 * writes them (quoted where needed), comments in one column. */
static void test_show_text(void **state UNUSED)
{
	struct ynode *tree = NULL;
	struct config *cfg = load_show(&tree);
	char *out = NULL, *line, *save = NULL, *hash;
	size_t size = 0, column = 0, lines = 0;
	FILE *f = open_memstream(&out, &size);

	assert_non_null(f);
	assert_int_equal(config_show_text(cfg, tree, f), 0);
	fclose(f);
	assert_string_equal(strstr(out, "# " NAME "\nlisten:\n  - 127.0.0.1:9090 "), out);
	assert_non_null(strstr(out, "\ntimeouts:\n  client_header: 10s "));
	assert_non_null(strstr(out, "  GREETING: \"hi: there\" "));
	assert_non_null(strstr(out, "\nadmin: ~ "));
	assert_non_null(strstr(out, "      - 25% 30s "));
	assert_non_null(strstr(out, "    targets:\n      - address: 127.0.0.1:9001 "));
	assert_non_null(strstr(out, "        weight: 3 "));
	assert_non_null(strstr(out, "    route_classes: []\n"));
	assert_non_null(strstr(out, "    alerts:\n      max_error_rate: 0.5% "));
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (line == out || !(hash = strstr(line, "  # ")))
			continue;
		if (!column)
			column = (size_t)(hash - line);
		if ((size_t)(hash - line) != column && (size_t)(hash - line) <= 60)
			fail_msg("comment not aligned at column %zu: \"%s\"", column, line);
		if (strstr(line, "drain: 5s"))
			assert_string_equal(hash, "  # cutover.prod.yml:5");
		if (strstr(line, "watch: 10s"))
			assert_string_equal(hash, "  # cutover.yml:7");
		if (strstr(line, "max_p99: off"))
			assert_string_equal(hash, "  # default");
		lines++;
	}
	assert_true(lines > 80);
	free(out);
	ynode_free(tree);
	config_free(cfg);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* config_load_env(): the overlay cutover.ENV.yml next to the base, named in
 * cfg->env and cfg->overlay, in the description and in config show; a
 * missing overlay (or base), a bad name and an error in the overlay name
 * the file. */
static void test_env_files(void **state UNUSED)
{
	char dir[] = "/tmp/cutover-test-config-XXXXXX", base[64], staging[80], want[PATH_MAX + 64], what[600];
	struct config_error err;
	struct config *cfg = NULL;
	struct ynode *tree = NULL;
	json_t *doc;

	assert_non_null(mkdtemp(dir));
	snprintf(base, sizeof(base), "%s/cutover.yml", dir);
	snprintf(staging, sizeof(staging), "%s/cutover.staging.yml", dir);
	write_file(base, MANAGED "state_dir: state\n");
	write_file(staging, "state_dir: staging-state\nservices:\n  shop:\n    instances: 2\n");

	if (config_load_env_tree(base, "staging", &cfg, &tree, &err) < 0)
		fail_msg("%s", err.message);
	assert_string_equal(cfg->env, "staging");
	assert_string_equal(cfg->overlay, staging);
	assert_int_equal(cfg->services[0].instances, 2);
	snprintf(want, sizeof(want), "%s + cutover.staging.yml (env staging)", base);
	assert_string_equal(config_describe(cfg, what, sizeof(what)), want);
	doc = config_show_json(cfg, tree);
	assert_string_equal(json_string_value(json_object_get(doc, "env")), "staging");
	assert_string_equal(json_string_value(json_path(doc, "files[0]")), base);
	assert_string_equal(json_string_value(json_path(doc, "files[1]")), staging);
	assert_string_equal(json_string_value(json_path(doc, "config.services.shop.instances.origin.file")), staging);
	json_decref(doc);
	tree = ynode_free(tree);
	cfg = config_free(cfg);

	if (config_load_env(base, NULL, &cfg, &err) < 0)
		fail_msg("%s", err.message);
	assert_null(cfg->env);
	assert_string_equal(config_describe(cfg, what, sizeof(what)), base);
	cfg = config_free(cfg);

	snprintf(want, sizeof(want), "%s/cutover.prod.yml: environment \"prod\" has no overlay", dir);
	assert_int_equal(config_load_env(base, "prod", &cfg, &err), -ENOENT);
	assert_null(cfg);
	assert_non_null(strstr(err.message, want));
	snprintf(want, sizeof(want), "%s/none.yml: cannot read: No such file or directory", dir);
	snprintf(what, sizeof(what), "%s/none.yml", dir);
	assert_int_equal(config_load_env(what, "staging", &cfg, &err), -ENOENT);
	assert_string_equal(err.message, want);
	assert_int_equal(config_load_env(base, "Prod", &cfg, &err), -EINVAL);
	assert_non_null(strstr(err.message, "invalid environment name \"Prod\""));

	write_file(staging, "services:\n  shop:\n    instances: 0\n");
	assert_int_equal(config_load_env(base, "staging", &cfg, &err), -EINVAL);
	snprintf(want, sizeof(want), "%s:3:16: services.shop.instances: must be an integer 1..64", staging);
	assert_non_null(strstr(err.message, want));
	assert_null(cfg);

	unlink(staging);
	unlink(base);
	rmdir(dir);
}

/* ---- files ------------------------------------------------------------- */

static void test_load_file(void **state UNUSED)
{
	char path[] = "/tmp/cutover-test-config-XXXXXX";
	const char *text = "listen: 127.0.0.1:8080\nservices:\n  a:\n    targets: [127.0.0.1:1]\n";
	struct config_error err;
	struct config *cfg = NULL;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(config_load(path, &cfg, &err), 0);
	assert_non_null(cfg);
	assert_string_equal(cfg->path, path);
	assert_int_equal(cfg->nservices, 1);
	config_free(cfg);
	unlink(path);
}

static void test_missing_file(void **state UNUSED)
{
	struct config *sentinel = (struct config *)(uintptr_t)0x5a5a;
	struct config *cfg = sentinel;
	struct config_error err;

	assert_int_equal(config_load("/nonexistent/cutover.yml", &cfg, &err), -ENOENT);
	assert_ptr_equal(cfg, sentinel);
	assert_string_equal(err.file, "/nonexistent/cutover.yml");
	assert_int_equal(err.line, 0);
	assert_string_equal(err.field, "");
	assert_string_equal(err.message, "/nonexistent/cutover.yml: cannot read: No such file or directory");

	assert_int_equal(config_load("/", &cfg, &err), -EISDIR);
	assert_ptr_equal(cfg, sentinel);
	assert_string_equal(err.message, "/: cannot read: Is a directory");
}

/* A syntax error in a file names the file and the position of the slip. */
static void test_file_syntax_error(void **state UNUSED)
{
	char path[] = "/tmp/cutover-test-config-XXXXXX";
	const char *text = "listen: 127.0.0.1:8080\nservices: [\n";
	struct config_error err;
	struct config *cfg = NULL;
	char want[256];
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(config_load(path, &cfg, &err), -EINVAL);
	assert_null(cfg);
	assert_int_equal(err.line, 2); /* the '[' left open, not the end of the file */
	snprintf(want, sizeof(want), "%s:2:11: syntax error: the list '[' that starts here is not closed", path);
	assert_memory_equal(err.message, want, strlen(want));
	unlink(path);
}

/* The documented example must stay loadable.  Found through CUTOVER_SOURCE
 * (set by meson test), else relative to the current directory. */
static void test_example_file(void **state UNUSED)
{
	const char *root = getenv("CUTOVER_SOURCE");
	struct config_error err;
	struct config *cfg = NULL;
	char path[4096];

	snprintf(path, sizeof(path), "%s/examples/cutover.yml", root ? root : ".");
	if (access(path, R_OK) < 0)
		skip();
	if (config_load(path, &cfg, &err) < 0)
		fail_msg("%s", err.message);
	assert_int_equal(cfg->nlisten, 2);
	assert_non_null(cfg->admin.text);
	assert_true(cfg->nservices >= 1);
	assert_true(cfg->nroutes >= 1);
	for (size_t i = 0; i < cfg->nservices; i++)
		for (size_t j = 0; j < cfg->services[i].nenv; j++)
			assert_null(strstr(cfg->services[i].env[j].value, "${ORDERS_DB}")); /* from variables: */
	config_free(cfg);
}

/* The shop demo's config (examples/shop.yml). */
static void test_shop_example(void **state UNUSED)
{
	const char *root = getenv("CUTOVER_SOURCE");
	struct config_error err;
	struct config *cfg = NULL;
	const struct config_service *svc;
	char path[4096];
	size_t len;

	snprintf(path, sizeof(path), "%s/examples/shop.yml", root ? root : ".");
	if (access(path, R_OK) < 0)
		skip();
	if (config_load(path, &cfg, &err) < 0)
		fail_msg("%s", err.message);
	assert_string_equal(cfg->listen[0].text, "127.0.0.1:8080");
	assert_string_equal(cfg->admin.text, "127.0.0.1:9180");
	len = strlen(cfg->state_dir);
	assert_true(cfg->state_dir[0] == '/');
	assert_true(len > strlen("/examples/.cutover-demo"));
	assert_string_equal(cfg->state_dir + len - strlen("/examples/.cutover-demo"), "/examples/.cutover-demo");
	assert_int_equal(cfg->nservices, 1);
	svc = &cfg->services[0];
	assert_string_equal(svc->name, "shop");
	assert_string_equal(svc->run, "${RELEASE_DIR}/shop --port ${PORT}");
	assert_string_equal(svc->health.path, "/health");
	assert_int_equal(svc->deploy.watch_ms, 20000);
	assert_int_equal(svc->deploy.max_error_rate_permille, 50);
	assert_int_equal(svc->deploy.max_p99_ms, 300);
	assert_int_equal(cfg->nroutes, 1);
	assert_string_equal(cfg->routes[0].path_prefix, "/");
	config_free(cfg);
}

int main(void)
{
	static const struct CMUnitTest valid[] = {
		cmocka_unit_test(test_minimal),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_target_forms),
		cmocka_unit_test(test_listen_list),
		cmocka_unit_test(test_admin_not_loopback),
		cmocka_unit_test(test_routes_valid),
		cmocka_unit_test(test_empty_sections_and_flow_style),
		cmocka_unit_test(test_startup_settings),
		cmocka_unit_test(test_cohorts_settings),
		cmocka_unit_test(test_approval_and_promotion),
		cmocka_unit_test(test_log_variants),
		cmocka_unit_test(test_uri_default_follows_header),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_managed_full),
		cmocka_unit_test(test_managed_defaults),
		cmocka_unit_test(test_managed_values),
		cmocka_unit_test(test_health_timeout_follows_interval),
		cmocka_unit_test(test_alerts),
		cmocka_unit_test(test_relative_paths),
		cmocka_unit_test(test_relative_paths_file),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_file_syntax_error),
		cmocka_unit_test(test_example_file),
		cmocka_unit_test(test_shop_example),
		cmocka_unit_test(test_instances_and_strategy),
		cmocka_unit_test(test_route_classes),
		cmocka_unit_test(test_deploy_defaults_inherited),
		cmocka_unit_test(test_overlay_valid),
		cmocka_unit_test(test_overlays_in_order),
		cmocka_unit_test(test_overlay_files),
		cmocka_unit_test(test_variables),
		cmocka_unit_test(test_show_json),
		cmocka_unit_test(test_show_text),
		cmocka_unit_test(test_env_files),
	};
	/* One named test per invalid case, so every mismatch is reported. */
	struct CMUnitTest invalid[ARRAY_SIZE(invalid_cases)];
	struct CMUnitTest merges[ARRAY_SIZE(merge_cases)];
	struct CMUnitTest overlays[ARRAY_SIZE(overlay_cases)];
	size_t i;
	int failed;

	for (i = 0; i < ARRAY_SIZE(invalid_cases); i++)
		invalid[i] = (struct CMUnitTest){
			.name = invalid_cases[i].name,
			.test_func = test_invalid,
			.initial_state = (void *)&invalid_cases[i],
		};
	for (i = 0; i < ARRAY_SIZE(merge_cases); i++)
		merges[i] = (struct CMUnitTest){
			.name = merge_cases[i].name,
			.test_func = test_merge,
			.initial_state = (void *)&merge_cases[i],
		};
	for (i = 0; i < ARRAY_SIZE(overlay_cases); i++)
		overlays[i] = (struct CMUnitTest){
			.name = overlay_cases[i].name,
			.test_func = test_overlay_invalid,
			.initial_state = (void *)&overlay_cases[i],
		};
	failed = cmocka_run_group_tests_name("config valid", valid, NULL, NULL);
	failed += cmocka_run_group_tests_name("config invalid", invalid, NULL, NULL);
	failed += cmocka_run_group_tests_name("tree merge", merges, NULL, NULL);
	failed += cmocka_run_group_tests_name("config overlays", overlays, NULL, NULL);
	return failed ? 1 : 0;
}

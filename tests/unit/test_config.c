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
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "config/config.h"

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
	struct config cfg;

	memset(&cfg, 0, sizeof(cfg));
	config_defaults(&cfg);
	assert_defaults_except_none(&cfg);
	assert_null(cfg.listen);
	assert_null(config_free(NULL));
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
	{ "admin not loopback", HEAD "admin: 10.0.0.1:9180\n" SHOP,
	  2, 8, "admin", "must be a loopback address" },
	{ "admin any address", HEAD "admin: 0.0.0.0:9180\n" SHOP,
	  2, 8, "admin", "must be a loopback address" },
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
	{ "syntax error", HEAD "services:\n  shop\n    targets: x\n",
	  4, 12, "", "syntax error: mapping values are not allowed" },
	{ "unclosed flow list", HEAD "services:\n  shop:\n    targets: [127.0.0.1:9001\n",
	  5, 1, "", "syntax error: did not find expected ',' or ']'" },
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
	{ "only comments", "# cutover.yml\n\n# nothing yet\n",
	  0, 0, "", "file is empty" },
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

/* A syntax error in a file names the file and libyaml's position. */
static void test_file_syntax_error(void **state UNUSED)
{
	char path[] = "/tmp/cutover-test-config-XXXXXX";
	const char *text = "listen: 127.0.0.1:8080\nservices: [\n";
	struct config_error err;
	struct config *cfg = NULL;
	char want[128];
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(config_load(path, &cfg, &err), -EINVAL);
	assert_null(cfg);
	assert_int_equal(err.line, 3);
	snprintf(want, sizeof(want), "%s:3:1: syntax error: ", path);
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
	config_free(cfg);
}

int main(void)
{
	static const struct CMUnitTest valid[] = {
		cmocka_unit_test(test_minimal),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_target_forms),
		cmocka_unit_test(test_listen_list),
		cmocka_unit_test(test_routes_valid),
		cmocka_unit_test(test_empty_sections_and_flow_style),
		cmocka_unit_test(test_log_variants),
		cmocka_unit_test(test_uri_default_follows_header),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_file_syntax_error),
		cmocka_unit_test(test_example_file),
	};
	/* One named test per invalid case, so every mismatch is reported. */
	struct CMUnitTest invalid[ARRAY_SIZE(invalid_cases)];
	size_t i;
	int failed;

	for (i = 0; i < ARRAY_SIZE(invalid_cases); i++)
		invalid[i] = (struct CMUnitTest){
			.name = invalid_cases[i].name,
			.test_func = test_invalid,
			.initial_state = (void *)&invalid_cases[i],
		};
	failed = cmocka_run_group_tests_name("config valid", valid, NULL, NULL);
	failed += cmocka_run_group_tests_name("config invalid", invalid, NULL, NULL);
	return failed ? 1 : 0;
}

/* service.c - the services: mapping: each service's targets and routes and,
 * for a service that cutover runs, its commands, environment, health check,
 * stop settings, instance count, resource limits, deploy settings, the
 * route classes its deploys judge apart and the secrets it receives
 * (secrets.c); for any service, the limits of its alerts.
 *
 * A service either sits at fixed targets or is run by cutover (run:).  The
 * keys of a service are collected first (an unknown key fails at once),
 * then read in a fixed order: run, targets, the keys only a managed service
 * may have (in table order), alerts, routes.  Routes of all services go to one array
 * in declaration order; the same host and path may not be declared twice.
 */
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "config/config-internal.h"

/* ---- targets ----------------------------------------------------------- */

enum { TARGET_ADDRESS, TARGET_WEIGHT };

static const struct keyword target_keywords[] = {
	[TARGET_ADDRESS] = { "address", NULL, 0, 0, 0, 0 },
	[TARGET_WEIGHT] = { "weight", NULL, 0, 1, WEIGHT_MAX, 0 },
};

static const struct section target_section = SECTION("a mapping", false, target_keywords);

/* One target: "ip:port", or a mapping with address: and weight:. */
static int load_target(struct loader *L, const struct ynode *n, struct config_target *target)
{
	const struct ynode *keys[ARRAY_SIZE(target_keywords)] = { 0 }, *values[ARRAY_SIZE(target_keywords)] = { 0 };
	uint64_t w = 1;
	size_t saved;
	int r;

	if (n->kind != YNODE_MAP) {
		if (n->kind == YNODE_LIST)
			return fail(L, n, "must be an address or a mapping with address: and weight:, got a list");
		r = load_addr(L, n, &target->addr);
		if (r < 0)
			return r;
		target->weight = 1;
		return 0;
	}
	r = section_collect(L, n, &target_section, keys, values);
	if (r < 0)
		return r;
	saved = field_push_key(L, "address");
	if (!values[TARGET_ADDRESS])
		r = fail(L, n, "is required (like address: 127.0.0.1:9001)");
	else
		r = load_addr(L, values[TARGET_ADDRESS], &target->addr);
	field_pop(L, saved);
	if (r < 0)
		return r;
	if (values[TARGET_WEIGHT]) {
		saved = field_push_key(L, "weight");
		r = load_integer(L, values[TARGET_WEIGHT], 1, WEIGHT_MAX, &w);
		field_pop(L, saved);
		if (r < 0)
			return r;
	}
	target->weight = (uint32_t)w;
	return 0;
}

static int load_targets(struct loader *L, const struct ynode *n, struct config_service *svc)
{
	size_t i, j;
	int r = expect_list(L, n, true, "a list of targets");

	if (r < 0)
		return r;
	if (r > 0 || n->nitems == 0)
		return fail(L, n, "at least one target is required");
	svc->targets = calloc(n->nitems, sizeof(*svc->targets));
	if (!svc->targets)
		return fail_oom(L);
	svc->ntargets = n->nitems;
	for (i = 0; i < n->nitems; i++) {
		size_t saved = field_push_index(L, i);
		const struct ynode *at = n->items[i];

		r = load_target(L, n->items[i], &svc->targets[i]);
		if (at->kind == YNODE_MAP && ynode_map_get(at, "address")) {
			at = ynode_map_get(at, "address");
			field_push_key(L, "address");
		}
		if (r >= 0 && addr_is_unspecified(&svc->targets[i].addr))
			r = fail(L, at, "must be an address to connect to, not %s", QUOTED(at->value));
		for (j = 0; r >= 0 && j < i; j++)
			if (addr_equal(&svc->targets[i].addr, &svc->targets[j].addr))
				r = fail(L, at, "duplicate target %s (same address as targets[%zu])", QUOTED(at->value),
					 j);
		field_pop(L, saved);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- routes ------------------------------------------------------------ */

/* Index of route r among the routes of its own service (routes of one
 * service are contiguous, in declaration order). */
static size_t route_index_in_service(const struct config *cfg, size_t r)
{
	size_t first = r;

	while (first > 0 && cfg->routes[first - 1].service == cfg->routes[r].service)
		first--;
	return r - first;
}

static bool route_same(const struct config_route *a, const struct config_route *b)
{
	if ((a->host == NULL) != (b->host == NULL))
		return false;
	if (a->host && strcmp(a->host, b->host))
		return false;
	return !strcmp(a->path_prefix, b->path_prefix);
}

static int route_host(struct loader *L, const struct ynode *value, void *obj, const struct keyword *kw)
{
	struct config_route *route = obj;
	const char *reason;
	int r = expect_value(L, value, "a host name like shop.example.com or *.example.com");

	if (r >= 0)
		r = set_string(L, &route->host, value->value);
	if (r >= 0 && (reason = check_host(route->host)))
		r = fail(L, value, "%s, got %s", reason, QUOTED(value->value));
	return r;
}

static int route_path(struct loader *L, const struct ynode *value, void *obj, const struct keyword *kw)
{
	const char *reason;
	int r = expect_value(L, value, "a path prefix like /api/");

	if (r >= 0 && (reason = check_path(value->value, false)))
		r = fail(L, value, "%s, got %s", reason, QUOTED(value->value));
	if (r >= 0)
		r = set_string(L, &((struct config_route *)obj)->path_prefix, value->value);
	return r;
}

static const struct keyword route_keywords[] = {
	{ "host", route_host, 0, 0, 0, 0 },
	{ "path", route_path, 0, 0, 0, 0 },
};

static const struct section route_section = SECTION("a mapping with host: and/or path:", false, route_keywords);

/* Room for one more route (and its node); -ENOMEM with L->err filled. */
static int routes_grow(struct loader *L)
{
	struct config *cfg = L->cfg;
	size_t alloc = L->routes_alloc ? L->routes_alloc * 2 : 8;
	struct config_route *routes;
	const struct ynode **nodes;

	if (cfg->nroutes < L->routes_alloc)
		return 0;
	routes = reallocarray(cfg->routes, alloc, sizeof(*routes));
	if (!routes)
		return fail_oom(L);
	cfg->routes = routes;
	nodes = reallocarray(L->route_nodes, alloc, sizeof(*nodes));
	if (!nodes)
		return fail_oom(L);
	L->route_nodes = nodes;
	L->routes_alloc = alloc;
	return 0;
}

/* The route just added (the last) must not repeat an earlier one. */
static int route_check_unique(struct loader *L, const struct ynode *n)
{
	const struct config *cfg = L->cfg;
	const struct config_route *route = &cfg->routes[cfg->nroutes - 1];
	size_t j;

	for (j = 0; j + 1 < cfg->nroutes; j++) {
		const struct config_route *other = &cfg->routes[j];
		const struct ynode *other_node = L->route_nodes[j];
		char where[300];

		if (!route_same(route, other))
			continue;
		/* the two routes may come from different files of an overlay */
		if (other_node->file != n->file)
			snprintf(where, sizeof(where), "%s:%d", ynode_file_name(other_node), other->line);
		else
			snprintf(where, sizeof(where), "line %d", other->line);
		return fail(L, n, "route (host %s, path %s) is already declared at services.%s.routes[%zu] (%s)",
			    route->host ? QUOTED(route->host) : "any", QUOTED(route->path_prefix),
			    cfg->services[other->service].name, route_index_in_service(cfg, j), where);
	}
	return 0;
}

static int load_routes(struct loader *L, const struct ynode *n, size_t service)
{
	struct config *cfg = L->cfg;
	size_t i;
	int r = expect_list(L, n, true, "a list of routes");

	if (r != 0)
		return r < 0 ? r : 0;
	for (i = 0; i < n->nitems; i++) {
		struct config_route *route;
		size_t saved;

		r = routes_grow(L);
		if (r < 0)
			return r;
		route = &cfg->routes[cfg->nroutes];
		*route = (struct config_route){ .service = service, .line = n->items[i]->line };
		L->route_nodes[cfg->nroutes++] = n->items[i];

		saved = field_push_index(L, i);
		r = section_load(L, n->items[i], &route_section, route, NULL);
		if (r >= 0 && !route->path_prefix)
			r = set_string(L, &route->path_prefix, "/");
		if (r >= 0)
			r = route_check_unique(L, n->items[i]);
		field_pop(L, saved);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- env, health, limits ------------------------------------------------ */

static const char *service_env_reserved(const char *name)
{
	return strcmp(name, "PORT") ? NULL
				    : "is reserved: cutover sets it to the port it chose for the instance (to pass "
				      "it under another name as well, write e.g. APP_PORT: ${PORT})";
}

static int service_env(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	struct config_service *svc = obj;

	return load_env_map(L, n, VARS_INSTANCE, service_env_reserved, &svc->env, &svc->nenv, NULL);
}

/* Host header of a health check: a host name or address, optionally with
 * a port.  Returns NULL when valid, else the reason. */
static const char *check_header_host(const char *s)
{
	const unsigned char *p;

	if (!*s)
		return "must not be empty (leave host out to send the service name)";
	if (strlen(s) > HOST_MAX + 8)
		return "must be at most 261 characters";
	for (p = (const unsigned char *)s; *p; p++)
		if (!isalnum(*p) && !strchr("-_.:[]", *p))
			return "may only contain letters, digits, '-', '_', '.', ':' and '[' ']' (a host name or "
			       "address, optionally with a port)";
	return NULL;
}

static int health_path(struct loader *L, const struct ynode *value, void *obj, const struct keyword *kw)
{
	const char *reason;
	int r = expect_value(L, value, "a path like /health");

	if (r >= 0 && (reason = check_path(value->value, true)))
		r = fail(L, value, "%s, got %s", reason, QUOTED(value->value));
	if (r >= 0)
		r = set_string(L, &((struct config_health *)obj)->path, value->value);
	return r;
}

/* A host name, in which the variables: of the configuration are
 * substituted (a staging host and a production one, say). */
static int health_host(struct loader *L, const struct ynode *value, void *obj, const struct keyword *kw)
{
	char **host = &((struct config_health *)obj)->host;
	const char *reason;
	int r = expect_value(L, value, "a host name like shop.internal");

	if (r >= 0)
		r = check_variables(L, value, VAR_USER, false, NULL);
	if (r >= 0)
		r = expand_variables(L, value, HOST_MAX + 8, host);
	if (r >= 0 && (reason = check_header_host(*host)))
		r = fail(L, value, "%s, got %s", reason, QUOTED(*host));
	return r;
}

enum health_key {
	HEALTH_PATH, HEALTH_HOST, HEALTH_INTERVAL, HEALTH_TIMEOUT, HEALTH_HEALTHY, HEALTH_UNHEALTHY,
	HEALTH_START_GRACE, HEALTH_NKEYS,
};

#define HEALTH(name, load, field, min, max, flags) \
	{ #name, (load), offsetof(struct config_health, field), (min), (max), (flags) }

static const struct keyword health_keywords[HEALTH_NKEYS] = {
	[HEALTH_PATH] = HEALTH(path, health_path, path, 0, 0, 0),
	[HEALTH_HOST] = HEALTH(host, health_host, host, 0, 0, 0),
	[HEALTH_INTERVAL] = HEALTH(interval, keyword_duration, interval_ms, 100, 3600 * 1000, 0),
	[HEALTH_TIMEOUT] = HEALTH(timeout, keyword_duration, timeout_ms, 1, 3600 * 1000, 0),
	[HEALTH_HEALTHY] = HEALTH(healthy_threshold, keyword_integer, healthy_threshold, 1, 100, KEYWORD_U32),
	[HEALTH_UNHEALTHY] = HEALTH(unhealthy_threshold, keyword_integer, unhealthy_threshold, 1, 100, KEYWORD_U32),
	[HEALTH_START_GRACE] = HEALTH(start_grace, keyword_duration, start_grace_ms, 0, 3600 * 1000, 0),
};

static const struct section health_section =
	SECTION("a mapping of health check settings", true, health_keywords);

static int service_health(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	struct config_health *h = &((struct config_service *)obj)->health;
	const struct ynode *given[ARRAY_SIZE(health_keywords)] = { 0 };
	size_t saved;
	int r = section_load(L, n, &health_section, h, given);

	if (r != 0)
		return r < 0 ? r : 0;
	/* One check at a time: a check must end before the next is due.  An
	 * explicit timeout must fit; the default follows the interval. */
	if (!given[HEALTH_TIMEOUT]) {
		h->timeout_ms = h->interval_ms / 2 < 2000 ? h->interval_ms / 2 : 2000;
		return 0;
	}
	if (h->timeout_ms < h->interval_ms)
		return 0;
	saved = field_push_key(L, "timeout");
	r = fail(L, given[HEALTH_TIMEOUT], "must be shorter than interval (%s%s), got %s",
		 DURATION_TEXT(h->interval_ms), given[HEALTH_INTERVAL] ? "" : ", the default",
		 QUOTED(given[HEALTH_TIMEOUT]->value));
	field_pop(L, saved);
	return r;
}

/* An integer percentage of one CPU ("200" or "200%"). */
static int limit_cpu_percent(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	char digits[32];
	size_t len;
	uint64_t v;
	int r = expect_value(L, n, "a percentage of one CPU like 200%");

	if (r < 0)
		return r;
	len = strlen(n->value);
	if (len && n->value[len - 1] == '%')
		len--;
	if (len >= sizeof(digits) || (memcpy(digits, n->value, len), digits[len] = 0, parse_uint(digits, &v) < 0) ||
	    v < kw->min || v > kw->max)
		return fail(L, n, "must be a percentage of one CPU 1..100000 (200%% = two CPUs), got %s",
			    QUOTED(n->value));
	((struct config_proc_limits *)obj)->cpu_max_percent = (uint32_t)v;
	return 0;
}

/* A size, where 0 is a value (no core dumps), so core_set tells it is set. */
static int limit_core(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	struct config_proc_limits *lim = obj;
	int r = keyword_size(L, n, obj, kw);

	lim->core_set = r >= 0;
	return r;
}

#define PROC_LIMIT(name, load, min, max, flags) \
	{ #name, (load), offsetof(struct config_proc_limits, name), (min), (max), (flags) }

static const struct keyword proc_limit_keywords[] = {
	PROC_LIMIT(nofile, keyword_integer, 1, 1u << 30, 0),
	PROC_LIMIT(nproc, keyword_integer, 1, 4194304, 0),
	PROC_LIMIT(core, limit_core, 0, 1ull << 40, 0),
	PROC_LIMIT(memory_max, keyword_size, 1u << 20, 1ull << 44, 0),
	PROC_LIMIT(cpu_max_percent, limit_cpu_percent, 1, 100000, 0),
};

static const struct section proc_limits_section =
	SECTION("a mapping of resource limits", true, proc_limit_keywords);

static int service_limits(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	int r = section_load(L, n, &proc_limits_section, &((struct config_service *)obj)->limits, NULL);

	return r < 0 ? r : 0;
}

/* ---- the other keys of a managed service ------------------------------- */

static int service_build(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	return load_command(L, n, VARS_BUILD, &((struct config_service *)obj)->build, NULL);
}

static int service_workdir(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	return load_path(L, n, "a directory path", &((struct config_service *)obj)->workdir);
}

static const struct stop_signal {
	const char *name;
	int signo;
} stop_signals[] = {
	{ "TERM", SIGTERM }, { "INT", SIGINT }, { "QUIT", SIGQUIT },
	{ "HUP", SIGHUP },   { "USR1", SIGUSR1 }, { "USR2", SIGUSR2 },
};

const char *stop_signal_name(int signo)
{
	for (size_t i = 0; i < ARRAY_SIZE(stop_signals); i++)
		if (stop_signals[i].signo == signo)
			return stop_signals[i].name;
	return NULL;
}

static int service_stop_signal(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	const char *expected = "TERM, INT, QUIT, HUP, USR1 or USR2 (with or without SIG)";
	const char *name;
	size_t i;
	int r = expect_value(L, n, expected);

	if (r < 0)
		return r;
	name = n->value;
	if (!strncasecmp(name, "SIG", 3))
		name += 3;
	for (i = 0; i < ARRAY_SIZE(stop_signals); i++) {
		if (!strcasecmp(name, stop_signals[i].name)) {
			((struct config_service *)obj)->stop_signal = stop_signals[i].signo;
			return 0;
		}
	}
	return fail(L, n, "must be %s, got %s", expected, QUOTED(n->value));
}

static int service_deploy(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	return load_service_deploy(L, n, &((struct config_service *)obj)->deploy);
}

/* ---- route classes ------------------------------------------------------ */

/* One route class from its text: "POST /api/checkout" (an upper-case
 * method, one space, a path prefix) or "/api/cart" (any method).  The path
 * is checked as a route's, and kept short enough to be matched against the
 * part of a request's target the proxy keeps (ROUTE_CLASS_PATH_MAX). */
static int route_class_parse(struct loader *L, const struct ynode *n, struct config_route_class *rc)
{
	const char *text = n->value, *path = text, *space = strchr(text, ' '), *reason;
	size_t mlen = 0;
	int r;

	if (text[0] != '/' && !space)
		return fail(L, n, "must be a path prefix (like \"/api/cart\"), or a method, one space and a path "
			    "prefix (like \"POST /api/checkout\"), got %s", QUOTED(text));
	if (text[0] != '/') {
		mlen = (size_t)(space - text);
		for (size_t i = 0; i < mlen; i++)
			if (!(text[i] >= 'A' && text[i] <= 'Z') && text[i] != '-' && text[i] != '_')
				return fail(L, n, "the method must be upper case (like \"POST /api/checkout\"), got %s",
					    QUOTED(text));
		if (mlen > ROUTE_CLASS_METHOD_MAX)
			return fail(L, n, "the method must be at most %d characters, got %s", ROUTE_CLASS_METHOD_MAX,
				    QUOTED(text));
		if (space[1] == ' ')
			return fail(L, n, "one space between the method and the path prefix, got %s", QUOTED(text));
		path = space + 1;
	}
	if ((reason = check_path(path, false)))
		return fail(L, n, "the path prefix %s, got %s", reason, QUOTED(text));
	if (strlen(path) > ROUTE_CLASS_PATH_MAX)
		return fail(L, n, "the path prefix must be at most %d characters, got %zu", ROUTE_CLASS_PATH_MAX,
			    strlen(path));
	r = set_string(L, &rc->name, text);
	if (r >= 0 && mlen && !(rc->method = strndup(text, mlen)))
		r = fail_oom(L);
	if (r >= 0)
		r = set_string(L, &rc->path_prefix, path);
	return r;
}

static bool route_class_same(const struct config_route_class *a, const struct config_route_class *b)
{
	if ((a->method == NULL) != (b->method == NULL))
		return false;
	return (!a->method || !strcmp(a->method, b->method)) && !strcmp(a->path_prefix, b->path_prefix);
}

static int service_route_classes(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	struct config_service *svc = obj;
	int r = expect_list(L, n, true, "a list of route classes like \"POST /api/checkout\" or \"/api/cart\"");

	if (r != 0)
		return r < 0 ? r : 0;
	if (n->nitems > CONFIG_ROUTE_CLASSES_MAX)
		return fail(L, n, "at most %d route classes, got %zu", CONFIG_ROUTE_CLASSES_MAX, n->nitems);
	if (!n->nitems)
		return 0;
	svc->route_classes = calloc(n->nitems, sizeof(*svc->route_classes));
	if (!svc->route_classes)
		return fail_oom(L);
	for (size_t i = 0; i < n->nitems; i++) {
		const struct ynode *item = n->items[i];
		struct config_route_class *rc = &svc->route_classes[i];
		size_t saved = field_push_index(L, i);

		r = expect_value(L, item, "a route class like \"POST /api/checkout\" or \"/api/cart\"");
		if (r >= 0) {
			svc->nroute_classes++;
			r = route_class_parse(L, item, rc);
		}
		for (size_t j = 0; r >= 0 && j < i; j++)
			if (route_class_same(rc, &svc->route_classes[j]))
				r = fail(L, item, "%s is the same class as route_classes[%zu] (%s, line %d)",
					 QUOTED(rc->name), j, QUOTED(svc->route_classes[j].name), n->items[j]->line);
		field_pop(L, saved);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- alerts ------------------------------------------------------------ */

/* A percentage, or off (CONFIG_ALERT_RATE_OFF). */
static int alert_rate(struct loader *L, const struct ynode *value, void *obj, const struct keyword *kw)
{
	uint32_t *rate = &((struct config_alerts *)obj)->max_error_rate_permille;

	if (value->kind == YNODE_SCALAR && !strcmp(value->value, "off")) {
		*rate = CONFIG_ALERT_RATE_OFF;
		return 0;
	}
	return load_rate(L, value, rate);
}

/* A duration, or off (0). */
static int alert_p99(struct loader *L, const struct ynode *value, void *obj, const struct keyword *kw)
{
	if (value->kind == YNODE_SCALAR && !strcmp(value->value, "off")) {
		((struct config_alerts *)obj)->max_p99_ms = 0;
		return 0;
	}
	return keyword_duration(L, value, obj, kw);
}

static const struct keyword alert_keywords[] = {
	{ "max_error_rate", alert_rate, 0, 0, 0, 0 },
	{ "max_p99", alert_p99, offsetof(struct config_alerts, max_p99_ms), 1, 3600 * 1000, 0 },
};

static const struct section alert_section =
	SECTION("a mapping with max_error_rate: and max_p99:", true, alert_keywords);

/* ---- services ---------------------------------------------------------- */

enum service_key {
	SERVICE_TARGETS, SERVICE_ROUTES, SERVICE_RUN, SERVICE_BUILD, SERVICE_WORKDIR, SERVICE_ENV,
	SERVICE_HEALTH, SERVICE_STOP_SIGNAL, SERVICE_STOP_GRACE, SERVICE_LIMITS, SERVICE_DEPLOY,
	SERVICE_INSTANCES, SERVICE_ROUTE_CLASSES, SERVICE_SECRETS, SERVICE_DEPENDS_ON, SERVICE_CHANGELOG,
	SERVICE_ALERTS, SERVICE_NKEYS,
};

#define MANAGED(name, load, offset, min, max, flags) \
	{ #name, (load), (offset), (min), (max), KEYWORD_MANAGED | (flags) }

/* targets, routes, run and alerts are read by load_service() itself; the
 * keys between run and alerts only apply to a managed service, read in
 * this order. */
static const struct keyword service_keywords[SERVICE_NKEYS] = {
	[SERVICE_TARGETS] = { "targets", NULL, 0, 0, 0, 0 },
	[SERVICE_ROUTES] = { "routes", NULL, 0, 0, 0, 0 },
	[SERVICE_RUN] = { "run", NULL, 0, 0, 0, 0 },
	[SERVICE_BUILD] = MANAGED(build, service_build, 0, 0, 0, 0),
	[SERVICE_WORKDIR] = MANAGED(workdir, service_workdir, 0, 0, 0, 0),
	[SERVICE_ENV] = MANAGED(env, service_env, 0, 0, 0, 0),
	[SERVICE_HEALTH] = MANAGED(health, service_health, 0, 0, 0, 0),
	[SERVICE_STOP_SIGNAL] = MANAGED(stop_signal, service_stop_signal, 0, 0, 0, 0),
	[SERVICE_STOP_GRACE] = MANAGED(stop_grace, keyword_duration, offsetof(struct config_service, stop_grace_ms),
				       0, 10 * 60 * 1000, 0),
	[SERVICE_LIMITS] = MANAGED(limits, service_limits, 0, 0, 0, 0),
	[SERVICE_DEPLOY] = MANAGED(deploy, service_deploy, 0, 0, 0, 0),
	[SERVICE_INSTANCES] = MANAGED(instances, keyword_integer, offsetof(struct config_service, instances), 1,
				      INSTANCES_MAX, KEYWORD_U32),
	[SERVICE_ROUTE_CLASSES] = MANAGED(route_classes, service_route_classes, 0, 0, 0, 0),
	[SERVICE_SECRETS] = MANAGED(secrets, load_service_secrets, 0, 0, 0, 0),   /* after env: (no clash) */
	[SERVICE_DEPENDS_ON] = MANAGED(depends_on, service_depends_on, 0, 0, 0, 0), /* release.c */
	[SERVICE_CHANGELOG] = MANAGED(changelog, service_changelog, 0, 0, 0, 0),
	[SERVICE_ALERTS] = { "alerts", NULL, 0, 0, 0, 0 },
};

static const struct section service_section =
	SECTION("a mapping with targets: or run:, and optionally routes:", true, service_keywords);

static bool service_name_valid(const char *s)
{
	size_t i;

	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return false;
	for (i = 1; s[i]; i++) {
		if (i >= SERVICE_NAME_MAX)
			return false;
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
			return false;
	}
	return true;
}

/* Either cutover runs the service (run:, and it picks the ports), or the
 * service runs elsewhere at fixed targets. */
static int load_run_or_targets(struct loader *L, const struct ynode *key, const struct ynode *const *keys,
			       const struct ynode *const *values, struct config_service *svc)
{
	unsigned seen = 0;
	size_t saved;
	int r = 0;

	if (values[SERVICE_RUN]) {
		saved = field_push_key(L, "run");
		r = load_command(L, values[SERVICE_RUN], VARS_INSTANCE, &svc->run, &seen);
		if (r >= 0 && !(seen & VAR_PORT))
			r = fail(L, values[SERVICE_RUN], "must contain ${PORT}: the instance has to listen on the port "
				 "cutover chose for it");
		field_pop(L, saved);
		if (r < 0)
			return r;
	}
	saved = field_push_key(L, "targets");
	if (values[SERVICE_TARGETS] && values[SERVICE_RUN])
		r = fail(L, keys[SERVICE_TARGETS], "cannot be combined with run: (cutover runs the instances and "
			 "chooses their ports): keep one of them");
	else if (values[SERVICE_TARGETS])
		r = load_targets(L, values[SERVICE_TARGETS], svc);
	else if (!values[SERVICE_RUN])
		r = fail(L, key, "is required: at least one target (or run:, a command for cutover to run)");
	field_pop(L, saved);
	return r;
}

static int load_service(struct loader *L, const struct ynode *key, const struct ynode *n, size_t index)
{
	struct config_service *svc = &L->cfg->services[index];
	const struct ynode *keys[SERVICE_NKEYS] = { 0 }, *values[SERVICE_NKEYS] = { 0 };
	size_t k, saved;
	int r;

	if (!service_name_valid(key->value))
		return fail(L, key, "service names must match [a-z0-9][a-z0-9_-]{0,62}, got %s", QUOTED(key->value));
	r = set_string(L, &svc->name, key->value);
	if (r < 0)
		return r;
	svc->line = key->line;
	if (config_service_defaults(svc) < 0)
		return fail_oom(L);
	r = section_collect(L, n, &service_section, keys, values);
	if (r < 0)
		return r;
	r = load_run_or_targets(L, key, keys, values, svc);
	if (r < 0)
		return r;

	for (k = 0; k < SERVICE_NKEYS; k++) {
		const struct keyword *kw = &service_keywords[k];

		if (!(kw->flags & KEYWORD_MANAGED))
			continue;
		saved = field_push_key(L, kw->key);
		if (keys[k] && !values[SERVICE_RUN])
			r = fail(L, keys[k], "only applies to a service that cutover runs (add run:, a command with "
				 "${PORT})");
		else if (keys[k])
			r = kw->load(L, values[k], svc, kw);
		else if (k == SERVICE_DEPLOY)
			r = load_service_deploy(L, NULL, &svc->deploy);   /* the top-level defaults */
		field_pop(L, saved);
		if (r < 0)
			return r;
	}

	if (values[SERVICE_ALERTS]) {
		saved = field_push_key(L, "alerts");
		r = section_load(L, values[SERVICE_ALERTS], &alert_section, &svc->alerts, NULL);
		field_pop(L, saved);
		if (r < 0)
			return r;
	}
	if (!values[SERVICE_ROUTES])
		return 0;
	saved = field_push_key(L, "routes");
	r = load_routes(L, values[SERVICE_ROUTES], index);
	field_pop(L, saved);
	return r;
}

int load_services(struct loader *L, const struct ynode *n)
{
	struct config *cfg = L->cfg;
	size_t i;
	int r = expect_map(L, n, true, "a mapping of service names to services");

	if (r < 0)
		return r;
	if (r > 0 || ynode_map_size(n) == 0)
		return fail(L, n, "at least one service is required");
	cfg->services = calloc(ynode_map_size(n), sizeof(*cfg->services));
	if (!cfg->services)
		return fail_oom(L);
	cfg->nservices = ynode_map_size(n);
	for (i = 0; i < cfg->nservices; i++) {
		size_t saved = field_push_key(L, ynode_map_key(n, i)->value);

		r = load_service(L, ynode_map_key(n, i), ynode_map_value(n, i), i);
		field_pop(L, saved);
		if (r < 0)
			return r;
	}
	return 0;
}

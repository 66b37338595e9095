/* deploy.c - deploy settings: services.NAME.deploy and the top-level
 * deploy: block whose keys every service inherits.
 *
 * The top-level block is checked on its own first (its messages name
 * deploy.KEY), then each service's own deploy: mapping is merged onto it key
 * by key with the overlay rules (merge.c: a service's key wins, a null drops
 * the inherited key back to the built-in default) and the result is read as
 * that service's settings.  Nodes keep their place through the merge, so a
 * message about an inherited value points at the top-level block.
 */
#include <stdlib.h>
#include <string.h>
#include "config/config-internal.h"

static const char *const strategies[] = {
	[CONFIG_STRATEGY_BLUE_GREEN] = "blue-green",
	[CONFIG_STRATEGY_RECREATE] = "recreate",
};

static int deploy_strategy(struct loader *L, const struct ynode *value, void *obj, const struct keyword *kw)
{
	size_t i;
	int r = expect_value(L, value, "blue-green or recreate");

	if (r < 0)
		return r;
	if (!strcmp(value->value, "canary") || !strcmp(value->value, "rolling"))
		return fail(L, value, "%s is not supported yet (blue-green or recreate)", value->value);
	r = load_word(L, value, strategies, ARRAY_SIZE(strategies), "blue-green or recreate", &i);
	if (r >= 0)
		((struct config_deploy *)obj)->strategy = (enum config_strategy)i;
	return r;
}

static int deploy_rate(struct loader *L, const struct ynode *value, void *obj, const struct keyword *kw)
{
	return load_rate(L, value, (uint32_t *)(void *)((char *)obj + kw->offset));
}

/* A duration, or off (0). */
static int deploy_p99(struct loader *L, const struct ynode *value, void *obj, const struct keyword *kw)
{
	if (value->kind == YNODE_SCALAR && !strcmp(value->value, "off")) {
		((struct config_deploy *)obj)->max_p99_ms = 0;
		return 0;
	}
	return keyword_duration(L, value, obj, kw);
}

static int deploy_smoke(struct loader *L, const struct ynode *value, void *obj, const struct keyword *kw)
{
	return load_command(L, value, VARS_SMOKE, &((struct config_deploy *)obj)->smoke, NULL);
}

enum deploy_key {
	DEPLOY_STRATEGY, DEPLOY_TIMEOUT, DEPLOY_DRAIN, DEPLOY_ROLLBACK_WINDOW, DEPLOY_WATCH,
	DEPLOY_MAX_ERROR_RATE, DEPLOY_MAX_P99, DEPLOY_MIN_REQUESTS, DEPLOY_SMOKE, DEPLOY_NKEYS,
};

#define DEPLOY(name, load, field, min, max, flags) \
	{ #name, (load), offsetof(struct config_deploy, field), (min), (max), (flags) }

static const struct keyword deploy_keywords[DEPLOY_NKEYS] = {
	[DEPLOY_STRATEGY] = DEPLOY(strategy, deploy_strategy, strategy, 0, 0, 0),
	[DEPLOY_TIMEOUT] = DEPLOY(timeout, keyword_duration, timeout_ms, 1000, TIMEOUT_MAX_MS, 0),
	[DEPLOY_DRAIN] = DEPLOY(drain, keyword_duration, drain_ms, 0, TIMEOUT_MAX_MS, 0),
	[DEPLOY_ROLLBACK_WINDOW] =
		DEPLOY(rollback_window, keyword_duration, rollback_window_ms, 0, TIMEOUT_MAX_MS, 0),
	[DEPLOY_WATCH] = DEPLOY(watch, keyword_duration, watch_ms, 0, TIMEOUT_MAX_MS, 0),
	[DEPLOY_MAX_ERROR_RATE] = DEPLOY(max_error_rate, deploy_rate, max_error_rate_permille, 0, 0, 0),
	[DEPLOY_MAX_P99] = DEPLOY(max_p99, deploy_p99, max_p99_ms, 0, 3600 * 1000, 0),
	[DEPLOY_MIN_REQUESTS] = DEPLOY(min_requests, keyword_integer, min_requests, 0, 1000000, KEYWORD_U32),
	[DEPLOY_SMOKE] = DEPLOY(smoke, deploy_smoke, smoke, 0, 0, 0),
};

static const struct section deploy_section = SECTION("a mapping of deploy settings", true, deploy_keywords);

/* The watch window rolls back to the warm previous version: it must still
 * be warm until the watch ends. */
static int check_window(struct loader *L, const struct ynode *n, const struct ynode *const *given,
			const struct config_deploy *d)
{
	const struct ynode *window_node = given[DEPLOY_ROLLBACK_WINDOW], *watch_node = given[DEPLOY_WATCH];
	const struct ynode *at = window_node ? window_node : watch_node;
	char window[32], watch[32];
	size_t saved;
	int r;

	if (d->rollback_window_ms >= d->watch_ms)
		return 0;
	saved = field_push_key(L, window_node ? "rollback_window" : "watch");
	format_duration(d->rollback_window_ms, window, sizeof(window));
	format_duration(d->watch_ms, watch, sizeof(watch));
	if (window_node || !watch_node)
		r = fail(L, at ? at : n,
			 "must be at least the watch window (%s%s), got %s: the previous version has to stay warm "
			 "while the new one is watched",
			 watch, watch_node ? "" : ", the default", window);
	else
		r = fail(L, watch_node,
			 "must not be longer than rollback_window (%s, the default), got %s: the previous version "
			 "has to stay warm while the new one is watched",
			 window, watch);
	field_pop(L, saved);
	return r;
}

/* Read the deploy mapping n over the settings already in *d. */
static int load_deploy(struct loader *L, const struct ynode *n, struct config_deploy *d)
{
	const struct ynode *given[ARRAY_SIZE(deploy_keywords)] = { 0 };
	int r = section_load(L, n, &deploy_section, d, given);

	if (r != 0)
		return r < 0 ? r : 0;
	return check_window(L, n, given, d);
}

int load_deploy_defaults(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	struct config_deploy d = { 0 };
	int r;

	config_deploy_defaults(&d);
	r = load_deploy(L, n, &d);
	free(d.smoke);
	if (r >= 0 && n->kind == YNODE_MAP)
		L->deploy_defaults = n;
	return r;
}

int load_service_deploy(struct loader *L, const struct ynode *n, struct config_deploy *d)
{
	const struct ynode *defaults = L->deploy_defaults;
	struct ynode *merged = NULL;
	struct ynode_error yerr;
	int r;

	if (!defaults)
		return n ? load_deploy(L, n, d) : 0;
	if (!n || ynode_is_null(n))
		return load_deploy(L, defaults, d);
	if (n->kind != YNODE_MAP)
		return load_deploy(L, n, d);   /* not a mapping: says so */
	r = ynode_merge(defaults, n, &merged, &yerr);
	if (r < 0)
		return fail_tree(L, r, &yerr);
	r = load_deploy(L, merged, d);
	ynode_free(merged);
	return r;
}

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
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "config/config-internal.h"

const char *const strategy_words[4] = {
	[CONFIG_STRATEGY_BLUE_GREEN] = "blue-green",
	[CONFIG_STRATEGY_RECREATE] = "recreate",
	[CONFIG_STRATEGY_CANARY] = "canary",
	[CONFIG_STRATEGY_ROLLING] = "rolling",
};
#define STRATEGIES "blue-green, recreate, canary or rolling"

static int deploy_strategy(struct loader *L, const struct ynode *value, void *obj, const struct keyword *kw)
{
	size_t i;
	int r = load_word(L, value, strategy_words, ARRAY_SIZE(strategy_words), STRATEGIES, &i);

	if (r >= 0)
		((struct config_deploy *)obj)->strategy = (enum config_strategy)i;
	return r;
}

const char *const inconclusive_words[2] = {
	[CONFIG_INCONCLUSIVE_PAUSE] = "pause",
	[CONFIG_INCONCLUSIVE_ABORT] = "abort",
};

static int deploy_on_inconclusive(struct loader *L, const struct ynode *value, void *obj, const struct keyword *kw)
{
	size_t i;
	int r = load_word(L, value, inconclusive_words, ARRAY_SIZE(inconclusive_words), "pause or abort", &i);

	if (r >= 0)
		((struct config_deploy *)obj)->on_inconclusive = (enum config_inconclusive)i;
	return r;
}

static int deploy_switch(struct loader *L, const struct ynode *value, void *obj, const struct keyword *kw)
{
	static const char *const words[] = { "off", "on" };
	size_t i;
	int r = load_word(L, value, words, ARRAY_SIZE(words), "on or off", &i);

	if (r >= 0)
		*(bool *)(void *)((char *)obj + kw->offset) = i == 1;
	return r;
}

/* A number of at most three digits and two decimals at s, times 100, into
 * *v; returns where it stopped (s itself when there is no digit). */
static const char *hundredths(const char *s, uint64_t *v)
{
	const char *p = s;
	size_t digits = 0, decimals = 0;

	*v = 0;
	for (; *p >= '0' && *p <= '9' && digits < 3; p++, digits++)
		*v = *v * 10 + (uint64_t)(*p - '0');
	if (!digits)
		return s;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9' && decimals < 2; p++, decimals++)
			*v = *v * 10 + (uint64_t)(*p - '0');
	for (; decimals < 2; decimals++)
		*v *= 10;
	return p;
}

/* "99%", "99.9%", "99.99%": 50%..99.99%, in basis points. */
static int deploy_confidence(struct loader *L, const struct ynode *value, void *obj, const struct keyword *kw)
{
	const char *p;
	uint64_t v;
	int r = expect_value(L, value, "a confidence level like 99%");

	if (r < 0)
		return r;
	p = hundredths(value->value, &v);
	if (p == value->value || *p != '%' || p[1] || v < 5000 || v > 9999)
		return fail(L, value, "must be a confidence level from 50%% to 99.99%%, like 99%% or 99.9%%, got %s",
			    QUOTED(value->value));
	((struct config_deploy *)obj)->confidence_bp = (uint32_t)v;
	return 0;
}

/* "2x", "1.5x", "2": 1.1x..100x in percent (200), or off (0). */
static int deploy_ratio(struct loader *L, const struct ynode *value, void *obj, const struct keyword *kw)
{
	uint32_t *dst = (uint32_t *)(void *)((char *)obj + kw->offset);
	const char *p;
	uint64_t v;
	int r = expect_value(L, value, "a ratio like 2x, or off");

	if (r < 0)
		return r;
	if (!strcmp(value->value, "off")) {
		*dst = 0;
		return 0;
	}
	p = hundredths(value->value, &v);
	bool digits = p != value->value;
	if (*p == 'x')
		p++;
	if (!digits || *p || v < 110 || v > 10000)
		return fail(L, value, "must be a ratio to the stable version from 1.1x to 100x, like 2x or 1.5x, "
			    "or off, got %s", QUOTED(value->value));
	*dst = (uint32_t)v;
	return 0;
}

/* A number of instances (0..64) or a percentage of them (0%..100%). */
static int deploy_amount(struct loader *L, const struct ynode *value, void *obj, const struct keyword *kw)
{
	struct config_amount *dst = (struct config_amount *)(void *)((char *)obj + kw->offset);
	size_t len;
	uint64_t v;
	char buf[16];
	int r = expect_value(L, value, "a number of instances or a percentage");

	if (r < 0)
		return r;
	len = strlen(value->value);
	if (len && len < sizeof(buf) && value->value[len - 1] == '%') {
		memcpy(buf, value->value, len - 1);
		buf[len - 1] = 0;
		if (parse_uint(buf, &v) < 0 || v > 100)
			return fail(L, value, "must be a number of instances (0..%d) or a percentage (0%%..100%%), "
				    "got %s", INSTANCES_MAX, QUOTED(value->value));
		*dst = (struct config_amount){ (uint32_t)v, true };
		return 0;
	}
	if (parse_uint(value->value, &v) < 0 || v > INSTANCES_MAX)
		return fail(L, value, "must be a number of instances (0..%d) or a percentage (0%%..100%%), got %s",
			    INSTANCES_MAX, QUOTED(value->value));
	*dst = (struct config_amount){ (uint32_t)v, false };
	return 0;
}

/* One canary step, "25% 1m" or "100%", from text (a list item, or a part
 * of a comma-separated string) at node n. */
static int canary_step(struct loader *L, const struct ynode *n, const char *text, struct config_canary_step *st)
{
	char buf[64], *hold;
	uint64_t w;
	size_t len;
	struct ynode tmp;

	while (*text == ' ')
		text++;
	len = strlen(text);
	while (len && text[len - 1] == ' ')
		len--;
	if (!len || len >= sizeof(buf))
		return fail(L, n, "a step is a weight and a hold time, like \"25%% 1m\" (or \"100%%\" last), got %s",
			    QUOTED(text));
	memcpy(buf, text, len);
	buf[len] = 0;
	hold = strchr(buf, ' ');
	if (hold) {
		*hold++ = 0;
		while (*hold == ' ')
			hold++;
	}
	len = strlen(buf);
	if (!len || buf[len - 1] != '%')
		return fail(L, n, "a step starts with the new version's share in percent, like \"25%% 1m\", got %s",
			    QUOTED(text));
	buf[len - 1] = 0;
	if (parse_uint(buf, &w) < 0 || w < 1 || w > 100)
		return fail(L, n, "a step's weight must be 1%%..100%%, got %s", QUOTED(text));
	st->weight = (uint32_t)w;
	st->hold_ms = 0;
	if (hold && *hold) {
		tmp = *n;
		tmp.value = hold;
		if (load_duration(L, &tmp, 0, TIMEOUT_MAX_MS, &st->hold_ms) < 0)
			return -EINVAL;
	} else if (w < 100) {
		return fail(L, n, "the step at %u%% needs a hold time, like \"%u%% 1m\"", (unsigned)w, (unsigned)w);
	}
	return 0;
}

/* steps: a list ("- 5% 30s") or one string ("5% 30s, 25% 1m, 100%"):
 * weights rising, the last one 100 %. */
static int deploy_steps(struct loader *L, const struct ynode *value, void *obj, const struct keyword *kw)
{
	struct config_deploy *d = obj;
	struct config_canary_step steps[CONFIG_CANARY_STEPS_MAX];
	size_t n = 0, count;
	char *copy = NULL;
	int r;

	if (value->kind == YNODE_SCALAR) {
		char *save = NULL, *part;
		copy = strdup(value->value);
		if (!copy)
			return fail_oom(L);
		for (part = strtok_r(copy, ",", &save); part; part = strtok_r(NULL, ",", &save)) {
			if (n == CONFIG_CANARY_STEPS_MAX) {
				free(copy);
				return fail(L, value, "at most %d steps", CONFIG_CANARY_STEPS_MAX);
			}
			r = canary_step(L, value, part, &steps[n++]);
			if (r < 0) {
				free(copy);
				return r;
			}
		}
		free(copy);
	} else {
		r = expect_list(L, value, false, "a list of steps like [5% 30s, 25% 1m, 100%]");
		if (r < 0)
			return r;
		count = value->nitems;
		if (count > CONFIG_CANARY_STEPS_MAX)
			return fail(L, value, "at most %d steps, got %zu", CONFIG_CANARY_STEPS_MAX, count);
		for (n = 0; n < count; n++) {
			const struct ynode *item = value->items[n];
			size_t saved = field_push_index(L, n);
			r = expect_value(L, item, "a step like \"25% 1m\"");
			if (r >= 0)
				r = canary_step(L, item, item->value, &steps[n]);
			field_pop(L, saved);
			if (r < 0)
				return r;
		}
	}
	if (!n)
		return fail(L, value, "at least one step, ending at 100%%");
	for (size_t i = 1; i < n; i++)
		if (steps[i].weight <= steps[i - 1].weight)
			return fail(L, value, "the weights must rise from step to step: %u%% after %u%%", steps[i].weight,
				    steps[i - 1].weight);
	if (steps[n - 1].weight != 100)
		return fail(L, value, "the last step must be 100%% (the new version takes all the traffic), got %u%%",
			    steps[n - 1].weight);
	memcpy(d->steps, steps, n * sizeof(steps[0]));
	d->nsteps = n;
	return 0;
}

static int deploy_rate(struct loader *L, const struct ynode *value, void *obj, const struct keyword *kw)
{
	return load_rate(L, value, (uint32_t *)(void *)((char *)obj + kw->offset));
}

/* A duration, or off (0). */
static int deploy_p99(struct loader *L, const struct ynode *value, void *obj, const struct keyword *kw)
{
	if (value->kind == YNODE_SCALAR && !strcmp(value->value, "off")) {
		*(uint64_t *)(void *)((char *)obj + kw->offset) = 0;
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
	DEPLOY_MAX_ERROR_RATE, DEPLOY_MAX_P99, DEPLOY_MIN_REQUESTS, DEPLOY_SMOKE,
	DEPLOY_STEPS, DEPLOY_MAX_SURGE, DEPLOY_MAX_UNAVAILABLE, DEPLOY_MIN_READY, DEPLOY_BATCH_HOLD,
	DEPLOY_CONFIDENCE, DEPLOY_MAX_ERROR_RATE_INCREASE, DEPLOY_MAX_P50, DEPLOY_MAX_P50_RATIO,
	DEPLOY_MAX_P99_RATIO, DEPLOY_LATENCY_MARGIN, DEPLOY_MAX_EXTENSION, DEPLOY_ON_INCONCLUSIVE,
	DEPLOY_RETRY_ON_STABLE, DEPLOY_NKEYS,
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
	[DEPLOY_STEPS] = DEPLOY(steps, deploy_steps, steps, 0, 0, 0),
	[DEPLOY_MAX_SURGE] = DEPLOY(max_surge, deploy_amount, max_surge, 0, 0, 0),
	[DEPLOY_MAX_UNAVAILABLE] = DEPLOY(max_unavailable, deploy_amount, max_unavailable, 0, 0, 0),
	[DEPLOY_MIN_READY] = DEPLOY(min_ready, keyword_duration, min_ready_ms, 0, TIMEOUT_MAX_MS, 0),
	[DEPLOY_BATCH_HOLD] = DEPLOY(batch_hold, keyword_duration, batch_hold_ms, 0, TIMEOUT_MAX_MS, 0),
	[DEPLOY_CONFIDENCE] = DEPLOY(confidence, deploy_confidence, confidence_bp, 0, 0, 0),
	[DEPLOY_MAX_ERROR_RATE_INCREASE] =
		DEPLOY(max_error_rate_increase, deploy_rate, max_error_rate_increase_permille, 0, 0, 0),
	[DEPLOY_MAX_P50] = DEPLOY(max_p50, deploy_p99, max_p50_ms, 0, 3600 * 1000, 0),
	[DEPLOY_MAX_P50_RATIO] = DEPLOY(max_p50_ratio, deploy_ratio, max_p50_ratio_percent, 0, 0, 0),
	[DEPLOY_MAX_P99_RATIO] = DEPLOY(max_p99_ratio, deploy_ratio, max_p99_ratio_percent, 0, 0, 0),
	[DEPLOY_LATENCY_MARGIN] = DEPLOY(latency_margin, keyword_duration, latency_margin_ms, 0, 3600 * 1000, 0),
	[DEPLOY_MAX_EXTENSION] = DEPLOY(max_extension, keyword_duration, max_extension_ms, 0, TIMEOUT_MAX_MS, 0),
	[DEPLOY_ON_INCONCLUSIVE] = DEPLOY(on_inconclusive, deploy_on_inconclusive, on_inconclusive, 0, 0, 0),
	[DEPLOY_RETRY_ON_STABLE] = DEPLOY(retry_on_stable, deploy_switch, retry_on_stable, 0, 0, 0),
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
	if (!d->max_surge.value && !d->max_unavailable.value) {
		const struct ynode *at = given[DEPLOY_MAX_SURGE] ? given[DEPLOY_MAX_SURGE] : given[DEPLOY_MAX_UNAVAILABLE];
		size_t saved = field_push_key(L, given[DEPLOY_MAX_SURGE] ? "max_surge" : "max_unavailable");
		r = fail(L, at ? at : n, "max_surge and max_unavailable cannot both be 0: a rolling deploy could "
			 "neither start a new instance nor stop an old one");
		field_pop(L, saved);
		return r;
	}
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

/* show.c - the effective configuration as JSON, each value with the file
 * and line it came from (`cutover config show`), and config_describe().
 *
 * The struct config says what is in force: defaults filled in, variables
 * substituted, the top-level deploy: block inherited by each service.  The
 * merged tree it was read from says where each written value came from:
 * every node keeps its file, line and column through the merge (a value an
 * overlay replaced is the overlay's node).  So the walk goes through the
 * struct section by section, in the order of docs/config.md, and for each
 * value looks at the same path in the tree: a node there is the origin, no
 * node (or a null one) means the value is the default.  Two paths are not
 * one-to-one: a service's deploy setting that its own deploy: does not name
 * comes from the top-level deploy: block, and a list written as one string
 * (canary steps "10% 1m, 100%") gives every item the same origin.
 *
 * Values are written the way the file would write them ("1m", "16k",
 * "5%", "2x"), counts as integers, and a setting that is not set (no admin
 * listener, no build command) as null.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config/config-internal.h"
#include "config/show.h"

struct show {
	bool oom;                     /* something could not be allocated: the result is dropped */
};

/* ---- building the document ---------------------------------------------- */

/* The value node of key in map, or NULL when map is NULL or not a mapping,
 * has no such key, or holds null there (the default applies). */
static const struct ynode *at(const struct ynode *map, const char *key)
{
	const struct ynode *n = map ? ynode_map_get(map, key) : NULL;

	return n && !ynode_is_null(n) ? n : NULL;
}

/* Item i of the list n; a single value stands for a list of one (listen:
 * 127.0.0.1:80, steps: "10% 1m, 100%"), NULL for nothing. */
static const struct ynode *item(const struct ynode *n, size_t i)
{
	if (n && n->kind == YNODE_LIST)
		return i < n->nitems ? n->items[i] : NULL;
	return n;
}

static json_t *origin_of(const struct ynode *n)
{
	if (!n || ynode_is_null(n))
		return json_string("default");
	return json_pack("{s:s, s:i, s:i}", "file", ynode_file_name(n), "line", n->line, "column", n->column);
}

/* Add child (consumed; NULL: out of memory) to parent under key, or at the
 * end of parent (an array) when key is NULL.  Returns child, borrowed, or
 * NULL when it could not be added (then it is freed). */
static json_t *add(struct show *S, json_t *parent, const char *key, json_t *child)
{
	int r = !child ? -1 : key ? json_object_set_new(parent, key, child) : json_array_append_new(parent, child);

	if (r < 0) {
		S->oom = true;
		return NULL;
	}
	return child;
}

/* Add the leaf {"value": value, "origin": where at was written} (value
 * consumed; NULL: out of memory). */
static void leaf(struct show *S, json_t *parent, const char *key, json_t *value, const struct ynode *at_node)
{
	json_t *l = json_object();

	if (!l) {
		json_decref(value);
		S->oom = true;
		return;
	}
	/* json_object_set_new() consumes its value, also when it fails */
	if (json_object_set_new(l, "value", value) < 0 || json_object_set_new(l, "origin", origin_of(at_node)) < 0)
		S->oom = true;
	add(S, parent, key, l);
}

static json_t *text(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *format(const char *fmt, ...)
{
	char buf[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return json_string(buf);
}

static json_t *duration(uint64_t ms)
{
	return json_string(DURATION_TEXT(ms));
}

/* A duration where 0 means off (max_p99, max_p50). */
static json_t *duration_or_off(uint64_t ms)
{
	return ms ? duration(ms) : json_string("off");
}

static json_t *bytes(uint64_t v)
{
	return json_string(SIZE_TEXT(v));
}

/* n hundredths as "2", "1.5" or "1.25", then suffix. */
static json_t *hundredths(uint32_t n, const char *suffix)
{
	if (n % 100 == 0)
		return format("%u%s", n / 100, suffix);
	if (n % 10 == 0)
		return format("%u.%u%s", n / 100, n / 10 % 10, suffix);
	return format("%u.%02u%s", n / 100, n % 100, suffix);
}

/* A rate in permille as the file writes it: "5%", "0.5%". */
static json_t *rate(uint32_t permille)
{
	return permille % 10 ? format("%u.%u%%", permille / 10, permille % 10) : format("%u%%", permille / 10);
}

/* ---- the proxy's sections ------------------------------------------------- */

static void show_listen(struct show *S, json_t *root, const struct config *cfg, const struct ynode *tree)
{
	const struct ynode *n = at(tree, "listen");
	json_t *list = add(S, root, "listen", json_array());

	for (size_t i = 0; list && i < cfg->nlisten; i++)
		leaf(S, list, NULL, text(cfg->listen[i].text), item(n, i));
}

static void show_variables(struct show *S, json_t *root, const struct config *cfg, const struct ynode *tree)
{
	const struct ynode *n = at(tree, "variables");
	json_t *map = add(S, root, "variables", json_object());

	for (size_t i = 0; map && i < cfg->nvariables; i++)
		leaf(S, map, cfg->variables[i].name, text(cfg->variables[i].value), at(n, cfg->variables[i].name));
}

#define FIELD(type, name) { #name, offsetof(struct type, name) }

static const struct {
	const char *key;
	size_t offset;
} timeout_fields[] = {
	FIELD(config_timeouts, client_header), FIELD(config_timeouts, client_idle),
	FIELD(config_timeouts, client_body), FIELD(config_timeouts, upstream_connect),
	FIELD(config_timeouts, upstream_header), FIELD(config_timeouts, upstream_body),
	FIELD(config_timeouts, upstream_idle), FIELD(config_timeouts, drain),
	FIELD(config_timeouts, upgrade),
};

static const struct {
	const char *key;
	size_t offset;
	bool size;                    /* a size (16k), else a count */
} limit_fields[] = {
	{ "max_header_bytes", offsetof(struct config_limits, max_header_bytes), true },
	{ "max_uri_bytes", offsetof(struct config_limits, max_uri_bytes), true },
	{ "buffer_bytes", offsetof(struct config_limits, buffer_bytes), true },
	{ "max_connections", offsetof(struct config_limits, max_connections), false },
	{ "upstream_idle_per_target", offsetof(struct config_limits, upstream_idle_per_target), false },
	{ "max_retries", offsetof(struct config_limits, max_retries), false },
};

static void show_timeouts_limits(struct show *S, json_t *root, const struct config *cfg, const struct ynode *tree)
{
	const struct ynode *n = at(tree, "timeouts");
	json_t *map = add(S, root, "timeouts", json_object());
	size_t i;

	for (i = 0; map && i < ARRAY_SIZE(timeout_fields); i++) {
		uint64_t ms = *(const uint64_t *)(const void *)((const char *)&cfg->timeouts + timeout_fields[i].offset);

		leaf(S, map, timeout_fields[i].key, duration(ms), at(n, timeout_fields[i].key));
	}
	n = at(tree, "limits");
	map = add(S, root, "limits", json_object());
	for (i = 0; map && i < ARRAY_SIZE(limit_fields); i++) {
		uint32_t v = *(const uint32_t *)(const void *)((const char *)&cfg->limits + limit_fields[i].offset);

		leaf(S, map, limit_fields[i].key, limit_fields[i].size ? bytes(v) : json_integer(v),
		     at(n, limit_fields[i].key));
	}
}

static void show_log_startup(struct show *S, json_t *root, const struct config *cfg, const struct ynode *tree)
{
	const struct ynode *n = at(tree, "log");
	json_t *map = add(S, root, "log", json_object());

	if (map) {
		leaf(S, map, "access", text(cfg->log.access ? cfg->log.access : "off"), at(n, "access"));
		leaf(S, map, "format", text(log_format_words[cfg->log.access_format]), at(n, "format"));
		leaf(S, map, "error", text(cfg->log.error ? cfg->log.error : "-"), at(n, "error"));
		leaf(S, map, "error_format", text(log_format_words[cfg->log.error_format]), at(n, "error_format"));
		leaf(S, map, "level", text(log_level_words[cfg->log.level]), at(n, "level"));
	}
	n = at(tree, "startup");
	map = add(S, root, "startup", json_object());
	if (map) {
		leaf(S, map, "unready", text(unready_words[cfg->startup.unready]), at(n, "unready"));
		leaf(S, map, "max_wait", duration(cfg->startup.max_wait_ms), at(n, "max_wait"));
		leaf(S, map, "retry_after", duration(cfg->startup.retry_after_ms), at(n, "retry_after"));
	}
}

#define DAY_MS (24ull * 3600 * 1000)

static void show_cohorts_secrets(struct show *S, json_t *root, const struct config *cfg, const struct ynode *tree)
{
	const struct config_cohorts *cc = &cfg->cohorts;
	const struct config_secrets *sec = &cfg->secrets;
	const struct ynode *n = at(tree, "cohorts");
	json_t *map = add(S, root, "cohorts", json_object());

	if (map) {
		leaf(S, map, "cookie", text(cc->cookie), at(n, "cookie"));
		leaf(S, map, "max_age",
		     cc->max_age_ms % DAY_MS ? duration(cc->max_age_ms)
					     : format("%llud", (unsigned long long)(cc->max_age_ms / DAY_MS)),
		     at(n, "max_age"));
		leaf(S, map, "override_cookie", text(cc->override_cookie), at(n, "override_cookie"));
		leaf(S, map, "override_header", text(cc->override_header), at(n, "override_header"));
	}
	/* set by the secrets: section when this configuration has one */
	if (!sec->file && !sec->recipients && !sec->identity && !sec->runtime_dir)
		return;
	n = at(tree, "secrets");
	map = add(S, root, "secrets", json_object());
	if (map) {
		leaf(S, map, "file", text(sec->file), at(n, "file"));
		leaf(S, map, "recipients", text(sec->recipients), at(n, "recipients"));
		leaf(S, map, "identity", text(sec->identity), at(n, "identity"));
		leaf(S, map, "runtime_dir", text(sec->runtime_dir), at(n, "runtime_dir"));
	}
}

/* approval: and promotion: (promotion.c), what an environment's overlay
 * usually sets. */
static void show_approval_promotion(struct show *S, json_t *root, const struct config *cfg, const struct ynode *tree)
{
	const struct config_approval *a = &cfg->approval;
	const struct config_promotion *p = &cfg->promotion;
	const struct ynode *n = at(tree, "approval"), *trust;
	/* the short form `approval: required` is where all three come from */
	bool short_form = n && n->kind == YNODE_SCALAR;
	json_t *map = add(S, root, "approval", json_object()), *list;

	if (map) {
		leaf(S, map, "required", text(a->required ? "true" : "false"), short_form ? n : at(n, "required"));
		leaf(S, map, "timeout", duration(a->timeout_ms), short_form ? NULL : at(n, "timeout"));
		leaf(S, map, "distinct", text(a->distinct ? "true" : "false"), short_form ? NULL : at(n, "distinct"));
	}
	n = at(tree, "promotion");
	map = add(S, root, "promotion", json_object());
	if (!map)
		return;
	leaf(S, map, "from", text(p->from), at(n, "from"));
	leaf(S, map, "soak", duration(p->soak_ms), at(n, "soak"));
	trust = at(n, "trust");
	list = add(S, map, "trust", json_array());
	for (size_t i = 0; list && i < p->ntrust; i++)
		leaf(S, list, NULL, json_string(p->trust[i]), item(trust, i));
}

/* release: (release.c), how multi-service releases run. */
static void show_release(struct show *S, json_t *root, const struct config *cfg, const struct ynode *tree)
{
	const struct ynode *n = at(tree, "release");
	json_t *map = add(S, root, "release", json_object());

	if (!map)
		return;
	leaf(S, map, "concurrency", json_integer(cfg->release.concurrency), at(n, "concurrency"));
	leaf(S, map, "notes_template", text(cfg->release.notes_template), at(n, "notes_template"));
	leaf(S, map, "gate_timeout", duration(cfg->release.gate_timeout_ms), at(n, "gate_timeout"));
}

/* pipeline: (pipeline.c), each stage with the arguments of its verb;
 * nothing when there is no pipeline. */
static void show_pipeline(struct show *S, json_t *root, const struct config *cfg, const struct ynode *tree)
{
	static const char *const verbs[] = { "run", "deploy", "promote", "release" };
	const struct ynode *n = at(tree, "pipeline");
	json_t *list = cfg->pipeline.nstages ? add(S, root, "pipeline", json_array()) : NULL;

	for (size_t i = 0; list && i < cfg->pipeline.nstages; i++) {
		const struct config_stage *st = &cfg->pipeline.stages[i];
		const struct ynode *it = item(n, i), *v = at(it, verbs[st->kind]), *env = at(it, "env");
		bool verb_map = v && v->kind == YNODE_MAP;
		json_t *m = add(S, list, NULL, json_object()), *a, *vars;

		if (!m)
			continue;
		leaf(S, m, "name", text(st->name), at(it, "name"));
		if (st->kind == CONFIG_STAGE_RUN) {
			leaf(S, m, "run", text(st->run), v);
		} else if ((a = add(S, m, verbs[st->kind], json_object()))) {
			if (st->service)
				leaf(S, a, "service", text(st->service), at(v, "service"));
			if (st->kind == CONFIG_STAGE_DEPLOY)
				leaf(S, a, "version", text(st->version), at(v, "version"));
			if (st->kind == CONFIG_STAGE_PROMOTE)
				leaf(S, a, "from", text(st->from), at(v, "from"));
			if (st->kind == CONFIG_STAGE_RELEASE)
				leaf(S, a, "file", text(st->file), verb_map ? at(v, "file") : v);
			if (st->kind == CONFIG_STAGE_PROMOTE)
				leaf(S, a, "to", text(st->target_env), at(v, "to"));
			else
				leaf(S, a, "env", text(st->target_env), verb_map ? at(v, "env") : NULL);
			leaf(S, a, "wait", text(st->wait ? "true" : "false"), verb_map ? at(v, "wait") : NULL);
		}
		leaf(S, m, "timeout", duration(st->timeout_ms), at(it, "timeout"));
		leaf(S, m, "when", text(st->when == CONFIG_STAGE_ALWAYS ? "always" : "success"), at(it, "when"));
		vars = add(S, m, "env", json_object());
		for (size_t j = 0; vars && j < st->nenv; j++)
			leaf(S, vars, st->env[j].name, text(st->env[j].value), at(env, st->env[j].name));
	}
}

/* The item of list n whose value is word (where an event was written). */
static const struct ynode *item_valued(const struct ynode *n, const char *word)
{
	for (size_t i = 0; n && n->kind == YNODE_LIST && i < n->nitems; i++)
		if (n->items[i]->kind == YNODE_SCALAR && !strcmp(n->items[i]->value, word))
			return n->items[i];
	return NULL;
}

/* notifications: (notify.c), the webhooks. */
static void show_notifications(struct show *S, json_t *root, const struct config *cfg, const struct ynode *tree)
{
	const struct ynode *list = at(at(tree, "notifications"), "webhooks");
	json_t *map = add(S, root, "notifications", json_object()), *hooks, *events;

	hooks = map ? add(S, map, "webhooks", json_array()) : NULL;
	for (size_t i = 0; hooks && i < cfg->notifications.nwebhooks; i++) {
		const struct config_webhook *w = &cfg->notifications.webhooks[i];
		const struct ynode *n = item(list, i), *ev = at(n, "events");
		json_t *h = add(S, hooks, NULL, json_object());

		if (!h)
			return;
		leaf(S, h, "name", text(w->name), at(n, "name"));
		leaf(S, h, "url", text(w->url), at(n, "url"));
		leaf(S, h, "url_secret", text(w->url_secret), at(n, "url_secret"));
		events = add(S, h, "events", json_array());
		for (size_t k = 0; events && k < CONFIG_NOTIFY_NEVENTS; k++)
			if (w->events & (1u << k))
				leaf(S, events, NULL, json_string(config_notify_event_names[k]),
				     item_valued(ev, config_notify_event_names[k]));
		leaf(S, h, "format", text(config_webhook_format_names[w->format]), at(n, "format"));
		leaf(S, h, "timeout", duration(w->timeout_ms), at(n, "timeout"));
		leaf(S, h, "retries", json_integer(w->retries), at(n, "retries"));
		leaf(S, h, "backoff", duration(w->backoff_ms), at(n, "backoff"));
		leaf(S, h, "queue", json_integer(w->queue), at(n, "queue"));
	}
}

/* ---- services ----------------------------------------------------------- */

/* Where services.NAME.deploy.KEY was written: the service's own deploy:
 * (a null there drops back to the built-in default), else the top-level
 * deploy: block, else nowhere. */
static const struct ynode *deploy_at(const struct ynode *own, const struct ynode *top, const char *key)
{
	const struct ynode *n = own && own->kind == YNODE_MAP ? ynode_map_get(own, key) : NULL;

	if (n)
		return ynode_is_null(n) ? NULL : n;
	return at(top, key);
}

static json_t *amount(const struct config_amount *a)
{
	return format("%u%s", a->value, a->percent ? "%" : "");
}

static json_t *ratio(uint32_t percent)
{
	return percent ? hundredths(percent, "x") : json_string("off");
}

static void show_steps(struct show *S, json_t *deploy, const struct config_deploy *d, const struct ynode *n)
{
	json_t *list = add(S, deploy, "steps", json_array());

	for (size_t i = 0; list && i < d->nsteps; i++) {
		const struct config_canary_step *st = &d->steps[i];

		leaf(S, list, NULL,
		     st->hold_ms || st->weight < 100 ? format("%u%% %s", st->weight, DURATION_TEXT(st->hold_ms))
						     : format("%u%%", st->weight),
		     item(n, i));
	}
}

/* services.NAME.deploy: own is the service's deploy: node, top the
 * top-level deploy: block (either may be NULL). */
static void show_deploy(struct show *S, json_t *svc, const struct config_deploy *d, const struct ynode *own,
			const struct ynode *top)
{
	json_t *m = add(S, svc, "deploy", json_object());

#define DEPLOY_LEAF(key, value) leaf(S, m, key, (value), deploy_at(own, top, key))
	if (!m)
		return;
	DEPLOY_LEAF("strategy", text(strategy_words[d->strategy]));
	DEPLOY_LEAF("timeout", duration(d->timeout_ms));
	DEPLOY_LEAF("drain", duration(d->drain_ms));
	DEPLOY_LEAF("rollback_window", duration(d->rollback_window_ms));
	DEPLOY_LEAF("watch", duration(d->watch_ms));
	DEPLOY_LEAF("max_error_rate", rate(d->max_error_rate_permille));
	DEPLOY_LEAF("max_p99", duration_or_off(d->max_p99_ms));
	DEPLOY_LEAF("min_requests", json_integer(d->min_requests));
	DEPLOY_LEAF("smoke", text(d->smoke));
	show_steps(S, m, d, deploy_at(own, top, "steps"));
	DEPLOY_LEAF("max_surge", amount(&d->max_surge));
	DEPLOY_LEAF("max_unavailable", amount(&d->max_unavailable));
	DEPLOY_LEAF("min_ready", duration(d->min_ready_ms));
	DEPLOY_LEAF("batch_hold", duration(d->batch_hold_ms));
	DEPLOY_LEAF("confidence", hundredths(d->confidence_bp, "%"));
	DEPLOY_LEAF("max_error_rate_increase", rate(d->max_error_rate_increase_permille));
	DEPLOY_LEAF("max_p50", duration_or_off(d->max_p50_ms));
	DEPLOY_LEAF("max_p50_ratio", ratio(d->max_p50_ratio_percent));
	DEPLOY_LEAF("max_p99_ratio", ratio(d->max_p99_ratio_percent));
	DEPLOY_LEAF("latency_margin", duration(d->latency_margin_ms));
	DEPLOY_LEAF("max_extension", duration(d->max_extension_ms));
	DEPLOY_LEAF("on_inconclusive", text(inconclusive_words[d->on_inconclusive]));
	DEPLOY_LEAF("retry_on_stable", text(d->retry_on_stable ? "on" : "off"));
#undef DEPLOY_LEAF
}

static void show_health(struct show *S, json_t *svc_json, const struct config_service *svc, const struct ynode *n)
{
	const struct config_health *h = &svc->health;
	json_t *m = add(S, svc_json, "health", json_object());

	if (!m)
		return;
	leaf(S, m, "path", text(h->path), at(n, "path"));
	leaf(S, m, "host", text(h->host ? h->host : svc->name), at(n, "host"));
	leaf(S, m, "interval", duration(h->interval_ms), at(n, "interval"));
	leaf(S, m, "timeout", duration(h->timeout_ms), at(n, "timeout"));
	leaf(S, m, "healthy_threshold", json_integer(h->healthy_threshold), at(n, "healthy_threshold"));
	leaf(S, m, "unhealthy_threshold", json_integer(h->unhealthy_threshold), at(n, "unhealthy_threshold"));
	leaf(S, m, "start_grace", duration(h->start_grace_ms), at(n, "start_grace"));
}

/* A count where 0 means "not set" (null). */
static json_t *count_or_null(uint64_t v)
{
	return v ? json_integer((json_int_t)v) : json_null();
}

static void show_proc_limits(struct show *S, json_t *svc, const struct config_proc_limits *l, const struct ynode *n)
{
	json_t *m = add(S, svc, "limits", json_object());

	if (!m)
		return;
	leaf(S, m, "nofile", count_or_null(l->nofile), at(n, "nofile"));
	leaf(S, m, "nproc", count_or_null(l->nproc), at(n, "nproc"));
	leaf(S, m, "core", l->core_set ? bytes(l->core) : json_null(), at(n, "core"));
	leaf(S, m, "memory_max", l->memory_max ? bytes(l->memory_max) : json_null(), at(n, "memory_max"));
	leaf(S, m, "cpu_max_percent", l->cpu_max_percent ? format("%u%%", l->cpu_max_percent) : json_null(),
	     at(n, "cpu_max_percent"));
}

/* route_classes and secrets: the lists of a managed service. */
static void show_service_lists(struct show *S, json_t *svc_json, const struct config_service *svc,
			       const struct ynode *n)
{
	const struct ynode *classes = at(n, "route_classes"), *secrets = at(n, "secrets");
	json_t *list = add(S, svc_json, "route_classes", json_array());
	size_t i;

	for (i = 0; list && i < svc->nroute_classes; i++)
		leaf(S, list, NULL, text(svc->route_classes[i].name), item(classes, i));
	if (!svc->nsecrets)
		return;
	list = add(S, svc_json, "secrets", json_array());
	for (i = 0; list && i < svc->nsecrets; i++) {
		const struct config_service_secret *sec = &svc->secrets[i];
		const struct ynode *it = item(secrets, i);
		bool mapping = it && it->kind == YNODE_MAP;
		const char *as = sec->as == CONFIG_SECRET_FILE ? "file" : "env";
		json_t *m = add(S, list, NULL, json_object());

		if (!m)
			continue;
		leaf(S, m, "name", text(sec->name), mapping ? at(it, "name") : it);
		leaf(S, m, as, text(sec->target), mapping ? at(it, as) : NULL);
	}
}

static void show_managed(struct show *S, json_t *m, const struct config_service *svc, const struct ynode *n,
			 const struct ynode *top_deploy)
{
	const struct ynode *env = at(n, "env");
	const char *signal = stop_signal_name(svc->stop_signal);
	json_t *map;

	leaf(S, m, "run", text(svc->run), at(n, "run"));
	leaf(S, m, "build", text(svc->build), at(n, "build"));
	leaf(S, m, "workdir", text(svc->workdir), at(n, "workdir"));
	map = add(S, m, "env", json_object());
	for (size_t i = 0; map && i < svc->nenv; i++)
		leaf(S, map, svc->env[i].name, text(svc->env[i].value), at(env, svc->env[i].name));
	show_health(S, m, svc, at(n, "health"));
	leaf(S, m, "stop_signal", signal ? json_string(signal) : json_integer(svc->stop_signal), at(n, "stop_signal"));
	leaf(S, m, "stop_grace", duration(svc->stop_grace_ms), at(n, "stop_grace"));
	leaf(S, m, "instances", json_integer(svc->instances), at(n, "instances"));
	show_proc_limits(S, m, &svc->limits, at(n, "limits"));
	show_deploy(S, m, &svc->deploy, n ? ynode_map_get(n, "deploy") : NULL, top_deploy);
	show_service_lists(S, m, svc, n);
	map = add(S, m, "depends_on", json_array());
	for (size_t i = 0; map && i < svc->ndepends_on; i++)
		leaf(S, map, NULL, text(svc->depends_on[i]), item(at(n, "depends_on"), i));
	leaf(S, m, "changelog", text(svc->changelog), at(n, "changelog"));
}

static void show_targets(struct show *S, json_t *m, const struct config_service *svc, const struct ynode *n)
{
	json_t *list = add(S, m, "targets", json_array());

	for (size_t i = 0; list && i < svc->ntargets; i++) {
		const struct ynode *it = item(n, i);
		bool mapping = it && it->kind == YNODE_MAP;
		json_t *t = add(S, list, NULL, json_object());

		if (!t)
			continue;
		leaf(S, t, "address", text(svc->targets[i].addr.text), mapping ? at(it, "address") : it);
		leaf(S, t, "weight", json_integer(svc->targets[i].weight), mapping ? at(it, "weight") : NULL);
	}
}

/* services.NAME.alerts (any service). */
static void show_alerts(struct show *S, json_t *svc_json, const struct config_alerts *a, const struct ynode *n)
{
	json_t *m = add(S, svc_json, "alerts", json_object());

	if (!m)
		return;
	leaf(S, m, "max_error_rate",
	     a->max_error_rate_permille == CONFIG_ALERT_RATE_OFF ? json_string("off") : rate(a->max_error_rate_permille),
	     at(n, "max_error_rate"));
	leaf(S, m, "max_p99", duration_or_off(a->max_p99_ms), at(n, "max_p99"));
}

/* The routes of service `index` (contiguous in cfg->routes, in the order
 * written). */
static void show_routes(struct show *S, json_t *m, const struct config *cfg, size_t index, const struct ynode *n)
{
	json_t *list = add(S, m, "routes", json_array());
	size_t k = 0;

	for (size_t i = 0; list && i < cfg->nroutes; i++) {
		const struct config_route *route = &cfg->routes[i];
		const struct ynode *it;
		json_t *r;

		if (route->service != index)
			continue;
		it = item(n, k++);
		r = add(S, list, NULL, json_object());
		if (!r)
			continue;
		leaf(S, r, "host", text(route->host), at(it, "host"));
		leaf(S, r, "path", text(route->path_prefix), at(it, "path"));
	}
}

static void show_services(struct show *S, json_t *root, const struct config *cfg, const struct ynode *tree)
{
	const struct ynode *services = at(tree, "services"), *top_deploy = at(tree, "deploy");
	json_t *map = add(S, root, "services", json_object());

	for (size_t i = 0; map && i < cfg->nservices; i++) {
		const struct config_service *svc = &cfg->services[i];
		const struct ynode *n = at(services, svc->name);
		json_t *m = add(S, map, svc->name, json_object());

		if (!m)
			continue;
		if (svc->run)
			show_managed(S, m, svc, n, top_deploy);
		else
			show_targets(S, m, svc, at(n, "targets"));
		show_alerts(S, m, &svc->alerts, at(n, "alerts"));
		show_routes(S, m, cfg, i, at(n, "routes"));
	}
}

/* ---- entry points -------------------------------------------------------- */

json_t *config_show_json(const struct config *cfg, const struct ynode *tree)
{
	struct show S = { .oom = false };
	json_t *doc = json_object(), *files = json_array(), *root = json_object();
	char *overlay = cfg->env && cfg->path ? config_overlay_path(cfg->path, cfg->env) : NULL;

	if (!doc || !files || !root || (cfg->env && !overlay)) {
		S.oom = true;
		goto out;
	}
	add(&S, doc, "env", text(cfg->env));
	if (cfg->path)
		add(&S, files, NULL, json_string(cfg->path));
	if (overlay)
		add(&S, files, NULL, json_string(overlay));
	show_listen(&S, root, cfg, tree);
	leaf(&S, root, "admin", text(cfg->admin.text), at(tree, "admin"));
	leaf(&S, root, "state_dir", text(cfg->state_dir), at(tree, "state_dir"));
	leaf(&S, root, "admin_socket", text(cfg->admin_socket), at(tree, "admin_socket"));
	show_variables(&S, root, cfg, tree);
	show_timeouts_limits(&S, root, cfg, tree);
	show_log_startup(&S, root, cfg, tree);
	show_cohorts_secrets(&S, root, cfg, tree);
	show_approval_promotion(&S, root, cfg, tree);
	show_release(&S, root, cfg, tree);
	show_notifications(&S, root, cfg, tree);
	show_services(&S, root, cfg, tree);
	show_pipeline(&S, root, cfg, tree);
out:
	free(overlay);
	add(&S, doc, "files", files);
	add(&S, doc, "config", root);
	if (S.oom)
		doc = (json_decref(doc), NULL);
	return doc;
}

const char *config_describe(const struct config *cfg, char *buf, size_t size)
{
	const char *overlay = cfg->overlay ? strrchr(cfg->overlay, '/') : NULL;

	if (!cfg->path)
		snprintf(buf, size, "(no configuration file)");
	else if (cfg->env)
		snprintf(buf, size, "%s + %s (env %s)", cfg->path,
			 overlay ? overlay + 1 : cfg->overlay ? cfg->overlay : "?", cfg->env);
	else
		snprintf(buf, size, "%s", cfg->path);
	return buf;
}

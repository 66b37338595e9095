/* file.c - reading a release file (docs/internals/releases.md):
 *
 *   name: spring-sale                  # optional: the file name without .yml
 *   concurrency: 3                     # optional: release.concurrency of cutover.yml
 *   services:
 *     auth: 1.4.0                      # SERVICE: VERSION, or a mapping:
 *     payment: {version: 2.1.0, digest: sha256:..., critical: false, depends_on: [auth]}
 *   steps:                             # command steps, nodes of the graph too
 *     cdn: {run: ./publish.sh, undo: ./unpublish.sh, depends_on: [order], timeout: 2m}
 *     migrate: {run: ./migrate up, point_of_no_return: true}
 *   gates:
 *     unit: {run: make test, read: summary, when: before}
 *
 * The file is checked whole for its shape here (names, semver, digests,
 * commands, thresholds, which keys go with which `read`), each problem as
 * "FILE:LINE:COLUMN: FIELD: reason"; what depends on the configuration and
 * the release store is judged by the plan (plan.c).
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/util.h"
#include "config/yaml-tree.h"
#include "release/release.h"
#include "store/store.h"

#define FILE_MAX (1u << 20)
#define COMMAND_MAX 4096
#define TIMEOUT_MAX_MS (24ull * 3600 * 1000)

struct reader {
	const char *path;
	char *err;
	size_t errlen;
	char field[160];
};

static int fail(struct reader *R, const struct ynode *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct reader *R, const struct ynode *at, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (at)
		snprintf(R->err, R->errlen, "%s:%d:%d: %s%s%s", R->path, at->line, at->column, R->field,
			 R->field[0] ? ": " : "", msg);
	else
		snprintf(R->err, R->errlen, "%s: %s%s%s", R->path, R->field, R->field[0] ? ": " : "", msg);
	return -EINVAL;
}

static size_t push(struct reader *R, const char *key)
{
	size_t saved = strlen(R->field);

	snprintf(R->field + saved, sizeof(R->field) - saved, "%s%s", saved ? "." : "", key);
	return saved;
}

static size_t push_index(struct reader *R, size_t i)
{
	size_t saved = strlen(R->field);

	snprintf(R->field + saved, sizeof(R->field) - saved, "[%zu]", i);
	return saved;
}

static void pop(struct reader *R, size_t saved)
{
	R->field[saved] = 0;
}

/* ---- scalars ------------------------------------------------------------------ */

static bool is_value(const struct ynode *n)
{
	return n && n->kind == YNODE_SCALAR && !ynode_is_null(n);
}

static int text(struct reader *R, const struct ynode *n, size_t max, const char *what, char **dst)
{
	if (!is_value(n) || !n->value[0])
		return fail(R, n, "expected %s", what);
	if (strlen(n->value) > max)
		return fail(R, n, "must be at most %zu characters", max);
	free(*dst);
	*dst = strdup(n->value);
	return *dst ? 0 : -ENOMEM;
}

static int boolean(struct reader *R, const struct ynode *n, bool *ret)
{
	if (is_value(n) && (!strcmp(n->value, "true") || !strcmp(n->value, "on")))
		*ret = true;
	else if (is_value(n) && (!strcmp(n->value, "false") || !strcmp(n->value, "off")))
		*ret = false;
	else
		return fail(R, n, "expected true or false");
	return 0;
}

static int duration(struct reader *R, const struct ynode *n, uint64_t *ret)
{
	uint64_t v;

	if (!is_value(n) || parse_duration_ms(n->value, &v) < 0 || v == 0 || v > TIMEOUT_MAX_MS)
		return fail(R, n, "expected a duration from 1ms to 24h like 90s or 5m");
	*ret = v;
	return 0;
}

static int count(struct reader *R, const struct ynode *n, uint64_t max, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	if (!is_value(n) || n->value[0] < '0' || n->value[0] > '9')
		return fail(R, n, "expected a whole number");
	errno = 0;
	v = strtoull(n->value, &end, 10);
	if (*end || errno || v > max)
		return fail(R, n, "expected a whole number from 0 to %llu", (unsigned long long)max);
	*ret = v;
	return 0;
}

/* "85%", "99.5%", "100" (percent, at most two decimals) into basis points. */
static int percent(struct reader *R, const struct ynode *n, uint32_t *ret)
{
	const char *s = is_value(n) ? n->value : "";
	uint64_t whole = 0, frac = 0;
	int digits = 0, decimals = 0;

	for (; *s >= '0' && *s <= '9' && digits < 4; s++, digits++)
		whole = whole * 10 + (uint64_t)(*s - '0');
	if (*s == '.')
		for (s++; *s >= '0' && *s <= '9' && decimals < 2; s++, decimals++)
			frac = frac * 10 + (uint64_t)(*s - '0');
	if (decimals == 1)
		frac *= 10;
	if (*s == '%')
		s++;
	if (!digits || *s || whole > 100 || (whole == 100 && frac))
		return fail(R, n, "expected a percentage from 0%% to 100%% (at most two decimals), like 99.5%%");
	*ret = (uint32_t)(whole * 100 + frac);
	return 0;
}

/* One of words; *ret its index. */
static int word(struct reader *R, const struct ynode *n, const char *const *words, size_t nwords, int *ret)
{
	char list[200] = "";

	for (size_t i = 0; is_value(n) && i < nwords; i++)
		if (!strcmp(n->value, words[i])) {
			*ret = (int)i;
			return 0;
		}
	for (size_t i = 0; i < nwords; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? (i + 1 == nwords ? " or " : ", ") : "",
			 words[i]);
	return fail(R, n, "expected %s", list);
}

/* [a-z0-9][a-z0-9_-]*: the names of steps and gates, as those of services. */
static bool item_name_valid(const char *s)
{
	return store_service_valid(s);
}

/* The keys of map n are all in keys[] (else the first unknown one is an error). */
static int known_keys(struct reader *R, const struct ynode *n, const char *const *keys, size_t nkeys)
{
	for (size_t i = 0; i < ynode_map_size(n); i++) {
		const struct ynode *k = ynode_map_key(n, i);
		bool ok = false;

		for (size_t j = 0; j < nkeys && !ok; j++)
			ok = !strcmp(k->value, keys[j]);
		if (!ok) {
			char list[300] = "";

			for (size_t j = 0; j < nkeys; j++)
				snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", j ? ", " : "", keys[j]);
			return fail(R, k, "unknown key %s (known: %s)", k->value, list);
		}
	}
	return 0;
}

#define KNOWN_KEYS(R, n, keys) known_keys((R), (n), (keys), sizeof(keys) / sizeof((keys)[0]))

/* ---- items -------------------------------------------------------------------- */

static int depends_on(struct reader *R, const struct ynode *n, struct release_item *it)
{
	if (n->kind != YNODE_LIST)
		return fail(R, n, "expected a list of names, like [auth, payment]");
	if (n->nitems > RELEASE_DEPS_MAX)
		return fail(R, n, "at most %d dependencies", RELEASE_DEPS_MAX);
	it->depends_on = calloc(n->nitems ? n->nitems : 1, sizeof(char *));
	if (!it->depends_on)
		return -ENOMEM;
	for (size_t i = 0; i < n->nitems; i++) {
		size_t saved = push_index(R, i);
		int r = text(R, n->items[i], 64, "a service or step name", &it->depends_on[i]);

		if (r >= 0)
			it->ndeps++;
		if (r >= 0 && !strcmp(it->depends_on[i], it->name))
			r = fail(R, n->items[i], "%s cannot depend on itself", it->name);
		for (size_t j = 0; r >= 0 && j < i; j++)
			if (!strcmp(it->depends_on[j], it->depends_on[i]))
				r = fail(R, n->items[i], "%s is listed twice", it->depends_on[i]);
		pop(R, saved);
		if (r < 0)
			return r;
	}
	return 0;
}

/* "sha256:HEX" or HEX, 64 lower-case hex digits, into it->digest (HEX). */
static int digest(struct reader *R, const struct ynode *n, struct release_item *it)
{
	const char *s = is_value(n) ? n->value : "";

	if (!strncmp(s, "sha256:", 7))
		s += 7;
	if (strlen(s) != 64 || strspn(s, "0123456789abcdef") != 64)
		return fail(R, n, "expected sha256: and 64 lower-case hex digits (as `cutover release list` shows)");
	it->digest = strdup(s);
	return it->digest ? 0 : -ENOMEM;
}

static int service_item(struct reader *R, const struct ynode *key, const struct ynode *n, struct release_item *it)
{
	static const char *const keys[] = { "version", "digest", "critical", "depends_on" };
	const struct ynode *v;
	size_t saved;
	int r = 0;

	it->kind = RELEASE_SERVICE;
	it->critical = true;
	if (!store_service_valid(key->value))
		return fail(R, key, "service names match [a-z0-9][a-z0-9_-]{0,62}, got %s", key->value);
	if (n->kind == YNODE_SCALAR)
		v = n;
	else if (n->kind == YNODE_MAP) {
		r = KNOWN_KEYS(R, n, keys);
		if (r < 0)
			return r;
		v = ynode_map_get(n, "version");
		if (!v)
			return fail(R, n, "version: is required");
	} else
		return fail(R, n, "expected a version (like 1.4.0) or a mapping {version, digest, critical, depends_on}");
	saved = n->kind == YNODE_MAP ? push(R, "version") : strlen(R->field);
	r = text(R, v, 63, "a version like 1.4.0", &it->version);
	if (r >= 0 && !store_version_valid(it->version))
		r = fail(R, v, "%s is not a valid semantic version (MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD])",
			 it->version);
	pop(R, saved);
	if (r < 0 || n->kind != YNODE_MAP)
		return r;
	if ((v = ynode_map_get(n, "digest"))) {
		saved = push(R, "digest");
		r = digest(R, v, it);
		pop(R, saved);
	}
	if (r >= 0 && (v = ynode_map_get(n, "critical"))) {
		saved = push(R, "critical");
		r = boolean(R, v, &it->critical);
		pop(R, saved);
	}
	if (r >= 0 && (v = ynode_map_get(n, "depends_on"))) {
		saved = push(R, "depends_on");
		r = depends_on(R, v, it);
		pop(R, saved);
	}
	return r;
}

static int command(struct reader *R, const struct ynode *n, const char *key, char **dst)
{
	const struct ynode *v = ynode_map_get(n, key);
	size_t saved;
	int r;

	if (!v)
		return 0;
	saved = push(R, key);
	r = text(R, v, COMMAND_MAX, "a shell command", dst);
	pop(R, saved);
	return r;
}

static int command_item(struct reader *R, const struct ynode *key, const struct ynode *n, struct release_item *it)
{
	static const char *const keys[] = { "run", "undo", "depends_on", "timeout", "critical", "point_of_no_return" };
	const struct ynode *v;
	size_t saved;
	int r;

	it->kind = RELEASE_COMMAND;
	it->critical = true;
	if (!item_name_valid(key->value))
		return fail(R, key, "step names match [a-z0-9][a-z0-9_-]{0,62}, got %s", key->value);
	if (n->kind != YNODE_MAP)
		return fail(R, n, "expected a mapping {run, undo, depends_on, timeout, critical, point_of_no_return}");
	r = KNOWN_KEYS(R, n, keys);
	if (r >= 0 && !ynode_map_get(n, "run"))
		r = fail(R, n, "run: is required (the step's command)");
	if (r >= 0)
		r = command(R, n, "run", &it->run);
	if (r >= 0)
		r = command(R, n, "undo", &it->undo);
	if (r >= 0 && (v = ynode_map_get(n, "timeout"))) {
		saved = push(R, "timeout");
		r = duration(R, v, &it->timeout_ms);
		pop(R, saved);
	}
	if (r >= 0 && (v = ynode_map_get(n, "critical"))) {
		saved = push(R, "critical");
		r = boolean(R, v, &it->critical);
		pop(R, saved);
	}
	if (r >= 0 && (v = ynode_map_get(n, "point_of_no_return"))) {
		saved = push(R, "point_of_no_return");
		r = boolean(R, v, &it->point_of_no_return);
		pop(R, saved);
	}
	if (r >= 0 && it->point_of_no_return && it->undo)
		r = fail(R, ynode_map_get(n, "undo"), "a point of no return has no undo: drop one of the two");
	if (r >= 0 && (v = ynode_map_get(n, "depends_on"))) {
		saved = push(R, "depends_on");
		r = depends_on(R, v, it);
		pop(R, saved);
	}
	return r;
}

/* ---- gates -------------------------------------------------------------------- */

static const char *const read_words[] = { "exit", "summary", "junit", "coverage", "metric" };
static const char *const when_words[] = { "before", "between", "after" };
static const char *const coverage_words[] = { "lines", "branches", "functions" };
static const char *const metric_words[] = { "error_rate", "p50", "p99" };

/* Which keys go with which read (a threshold that a read never produces
 * would silently pass, so it is refused). */
static bool key_allowed(const char *key, enum release_gate_read read)
{
	static const struct {
		const char *key;
		unsigned reads;       /* bit per enum release_gate_read */
	} table[] = {
		{ "run", 0xf },       { "read", 0x1f },        { "when", 0x1f },        { "after", 0x1f },
		{ "timeout", 0xf },   { "file", 0xc },         { "expect_exit", 0x1 },  { "min_tests", 0x6 },
		{ "max_failed", 0x6 }, { "min_pass_rate", 0x6 }, { "coverage", 0x8 },   { "min_coverage", 0x8 },
		{ "service", 0x10 },  { "version", 0x10 },     { "metric", 0x10 },      { "during", 0x10 },
		{ "window", 0x10 },   { "max", 0x10 },         { "min_requests", 0x10 },
	};

	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (!strcmp(table[i].key, key))
			return table[i].reads & (1u << read);
	return false;
}

/* max: for an error rate a percentage, for a latency a duration. */
static int metric_max(struct reader *R, const struct ynode *v, struct release_gate *g)
{
	uint32_t bp;

	if (g->metric == METRIC_ERROR_RATE) {
		int r = percent(R, v, &bp);

		g->max_value = bp;
		return r;
	}
	if (!is_value(v) || parse_duration_ms(v->value, &g->max_value) < 0)
		return fail(R, v, "expected a latency like 250ms");
	return 0;
}

/* The thresholds and metric keys of a gate, each checked in its own field. */
static int gate_key(struct reader *R, const struct ynode *v, const char *key, struct release_gate *g)
{
	uint64_t u;
	int r, w;

	if (!strcmp(key, "expect_exit")) {
		r = count(R, v, 255, &u);
		g->expect_exit = (int)u;
	} else if (!strcmp(key, "min_tests"))
		r = count(R, v, UINT32_MAX, &g->min_tests);
	else if (!strcmp(key, "max_failed"))
		r = count(R, v, UINT32_MAX, &g->max_failed);
	else if (!strcmp(key, "min_pass_rate"))
		r = percent(R, v, &g->min_pass_rate_bp);
	else if (!strcmp(key, "coverage")) {
		r = word(R, v, coverage_words, 3, &w);
		g->coverage = r >= 0 ? (enum release_coverage_kind)w : COVERAGE_LINES;
	} else if (!strcmp(key, "min_coverage"))
		r = percent(R, v, &g->min_coverage_bp);
	else if (!strcmp(key, "file"))
		r = text(R, v, PATH_MAX / 2, "a file path", &g->file);
	else if (!strcmp(key, "service"))
		r = text(R, v, 64, "a service name", &g->service);
	else if (!strcmp(key, "version"))
		r = text(R, v, 63, "a version", &g->version);
	else if (!strcmp(key, "during")) {
		r = word(R, v, (const char *const[]){ "canary" }, 1, &w);
		g->during_canary = r >= 0;
	} else if (!strcmp(key, "window"))
		r = duration(R, v, &g->window_ms);
	else if (!strcmp(key, "max"))
		r = metric_max(R, v, g);
	else if (!strcmp(key, "min_requests"))
		r = count(R, v, UINT32_MAX, &g->min_requests);
	else
		r = 0;        /* read, when, after, run, timeout: read by gate() */
	return r;
}

static int gate_thresholds(struct reader *R, const struct ynode *n, struct release_gate *g)
{
	const struct ynode *m = ynode_map_get(n, "metric");
	int r = 0, w;

	if (m) {      /* first: max: is read by the metric's unit */
		size_t saved = push(R, "metric");

		r = word(R, m, metric_words, 3, &w);
		g->metric = r >= 0 ? (enum release_metric)w : METRIC_ERROR_RATE;
		pop(R, saved);
	}
	for (size_t i = 0; r >= 0 && i < ynode_map_size(n); i++) {
		const char *key = ynode_map_key(n, i)->value;
		size_t saved = push(R, key);

		r = gate_key(R, ynode_map_value(n, i), key, g);
		pop(R, saved);
	}
	return r;
}

/* What each read needs besides its thresholds. */
static int gate_complete(struct reader *R, const struct ynode *n, struct release_gate *g)
{
	if (g->read != GATE_READ_METRIC && !g->run)
		return fail(R, n, "run: is required (the command whose result the gate reads)");
	if ((g->read == GATE_READ_JUNIT || g->read == GATE_READ_COVERAGE) && !g->file)
		return fail(R, n, "file: is required with read: %s (the report the command writes)", read_words[g->read]);
	if (g->read == GATE_READ_COVERAGE && !ynode_map_get(n, "min_coverage"))
		return fail(R, n, "min_coverage: is required with read: coverage (like 80%%)");
	if (g->read != GATE_READ_METRIC)
		return 0;
	if (!g->service)
		return fail(R, n, "service: is required with read: metric");
	if (!store_service_valid(g->service))
		return fail(R, ynode_map_get(n, "service"), "not a service name: %s", g->service);
	if (g->version && !store_version_valid(g->version))
		return fail(R, ynode_map_get(n, "version"), "%s is not a valid semantic version", g->version);
	if (g->during_canary && !g->version)
		return fail(R, n, "during: canary needs version: (whose canary)");
	if (g->during_canary && ynode_map_get(n, "window"))
		return fail(R, ynode_map_get(n, "window"), "not with during: canary (the canary's own span is read)");
	if (!ynode_map_get(n, "max"))
		return fail(R, n, "max: is required with read: metric (a percentage for error_rate, a latency for p50/p99)");
	return 0;
}

/* A gate; its timeout stays 0 unless given (the plan applies
 * release.gate_timeout of cutover.yml). */
static int gate(struct reader *R, const struct ynode *key, const struct ynode *n, struct release_gate *g)
{
	const struct ynode *v;
	size_t saved;
	int r = 0, w;

	g->name = strdup(key->value);
	g->line = key->line;
	g->min_tests = 1;
	g->min_pass_rate_bp = 10000;
	g->window_ms = 60 * 1000;
	g->min_requests = 20;
	if (!g->name)
		return -ENOMEM;
	if (!item_name_valid(key->value))
		return fail(R, key, "gate names match [a-z0-9][a-z0-9_-]{0,62}, got %s", key->value);
	if (n->kind != YNODE_MAP)
		return fail(R, n, "expected a mapping {run, read, when, ...}");
	if ((v = ynode_map_get(n, "read"))) {
		saved = push(R, "read");
		r = word(R, v, read_words, 5, &w);
		pop(R, saved);
		if (r < 0)
			return r;
		g->read = w;
	}
	for (size_t i = 0; i < ynode_map_size(n); i++) {
		const struct ynode *k = ynode_map_key(n, i);

		if (!key_allowed(k->value, g->read))
			return fail(R, k, "%s does not apply to read: %s", k->value, read_words[g->read]);
	}
	if ((v = ynode_map_get(n, "when"))) {
		saved = push(R, "when");
		r = word(R, v, when_words, 3, &w);
		pop(R, saved);
		g->when = w == 0 ? GATE_BEFORE : w == 1 ? GATE_BETWEEN : GATE_AFTER;
	}
	if (r >= 0 && (v = ynode_map_get(n, "after"))) {
		saved = push(R, "after");
		r = ynode_map_get(n, "when") ? fail(R, v, "write either when: or after: (after the group of a service)")
					      : text(R, v, 64, "a service or step name", &g->after);
		pop(R, saved);
		g->when = GATE_AFTER_GROUP;
	}
	if (r >= 0)
		r = command(R, n, "run", &g->run);
	if (r >= 0 && (v = ynode_map_get(n, "timeout"))) {
		saved = push(R, "timeout");
		r = duration(R, v, &g->timeout_ms);
		pop(R, saved);
	}
	if (r >= 0)
		r = gate_thresholds(R, n, g);
	if (r >= 0)
		r = gate_complete(R, n, g);
	return r;
}

/* ---- the file ----------------------------------------------------------------- */

static int load_items(struct reader *R, const struct ynode *services, const struct ynode *steps,
		      struct release_file *f)
{
	size_t n = (services ? ynode_map_size(services) : 0) + (steps ? ynode_map_size(steps) : 0);
	int r = 0;

	if (n == 0)
		return fail(R, NULL, "services: or steps: is required: a release changes something");
	if (n > RELEASE_ITEMS_MAX)
		return fail(R, services ? services : steps, "at most %d services and steps", RELEASE_ITEMS_MAX);
	f->items = calloc(n, sizeof(*f->items));
	if (!f->items)
		return -ENOMEM;
	for (size_t i = 0; services && r >= 0 && i < ynode_map_size(services); i++) {
		const struct ynode *key = ynode_map_key(services, i);
		struct release_item *it = &f->items[f->nitems++];
		size_t saved = push(R, "services");

		push(R, key->value);
		it->name = strdup(key->value);
		it->line = key->line;
		r = it->name ? service_item(R, key, ynode_map_value(services, i), it) : -ENOMEM;
		pop(R, saved);
	}
	for (size_t i = 0; steps && r >= 0 && i < ynode_map_size(steps); i++) {
		const struct ynode *key = ynode_map_key(steps, i);
		struct release_item *it = &f->items[f->nitems++];
		size_t saved = push(R, "steps");

		push(R, key->value);
		it->name = strdup(key->value);
		it->line = key->line;
		for (size_t j = 0; it->name && services && j < ynode_map_size(services); j++)
			if (!strcmp(ynode_map_key(services, j)->value, key->value))
				r = fail(R, key, "%s is already a service of this release (services.%s, line %d)",
					 key->value, key->value, ynode_map_key(services, j)->line);
		if (r >= 0)
			r = it->name ? command_item(R, key, ynode_map_value(steps, i), it) : -ENOMEM;
		pop(R, saved);
	}
	return r;
}

static int load_gates(struct reader *R, const struct ynode *gates, struct release_file *f)
{
	size_t n = ynode_map_size(gates);
	int r = 0;

	if (n > RELEASE_GATES_MAX)
		return fail(R, gates, "at most %d gates", RELEASE_GATES_MAX);
	f->gates = calloc(n ? n : 1, sizeof(*f->gates));
	if (!f->gates)
		return -ENOMEM;
	for (size_t i = 0; r >= 0 && i < n; i++) {
		size_t saved = push(R, "gates");

		push(R, ynode_map_key(gates, i)->value);
		f->ngates++;
		r = gate(R, ynode_map_key(gates, i), ynode_map_value(gates, i), &f->gates[i]);
		pop(R, saved);
	}
	return r;
}

static int expect_map_at(struct reader *R, const struct ynode *n, const char *key, const char *what)
{
	size_t saved;
	int r = 0;

	if (!n || n->kind == YNODE_MAP)
		return 0;
	saved = push(R, key);
	r = fail(R, n, "expected %s", what);
	pop(R, saved);
	return r;
}

static int load_tree(struct reader *R, const struct ynode *root, struct release_file *f)
{
	static const char *const keys[] = { "name", "concurrency", "services", "steps", "gates" };
	const struct ynode *v, *services, *steps, *gates;
	uint64_t u;
	size_t saved;
	int r;

	if (!root || root->kind != YNODE_MAP)
		return fail(R, root, "a release file is a mapping {name, concurrency, services, steps, gates}");
	r = KNOWN_KEYS(R, root, keys);
	services = ynode_map_get(root, "services");
	steps = ynode_map_get(root, "steps");
	gates = ynode_map_get(root, "gates");
	if (r >= 0)
		r = expect_map_at(R, services, "services", "a mapping of service names to versions");
	if (r >= 0)
		r = expect_map_at(R, steps, "steps", "a mapping of step names to {run, undo, ...}");
	if (r >= 0)
		r = expect_map_at(R, gates, "gates", "a mapping of gate names to {run, read, ...}");
	if (r >= 0 && (v = ynode_map_get(root, "name"))) {
		saved = push(R, "name");
		r = text(R, v, RELEASE_NAME_MAX, "a name", &f->name);
		if (r >= 0 && strspn(f->name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
				      strlen(f->name))
			r = fail(R, v, "names are letters, digits, '.', '_' and '-', got %s", f->name);
		pop(R, saved);
	}
	if (r >= 0 && (v = ynode_map_get(root, "concurrency"))) {
		saved = push(R, "concurrency");
		r = count(R, v, 64, &u);
		if (r >= 0 && u == 0)
			r = fail(R, v, "expected 1 to 64");
		f->concurrency = (uint32_t)u;
		pop(R, saved);
	}
	if (r >= 0)
		r = load_items(R, services, steps, f);
	if (r >= 0 && gates)
		r = load_gates(R, gates, f);
	return r;
}

/* The file name without its directory and .yml / .yaml. */
static char *default_name(const char *path)
{
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	size_t n = strlen(base);

	if (n > 4 && !strcmp(base + n - 4, ".yml"))
		n -= 4;
	else if (n > 5 && !strcmp(base + n - 5, ".yaml"))
		n -= 5;
	if (n > RELEASE_NAME_MAX)
		n = RELEASE_NAME_MAX;
	return strndup(base, n);
}

static int read_whole(struct reader *R, char **ret, size_t *ret_len)
{
	FILE *fp = fopen(R->path, "re");
	char *buf;
	size_t n;

	if (!fp)
		return fail(R, NULL, "cannot open: %s", strerror(errno));
	buf = malloc(FILE_MAX + 1);
	if (!buf) {
		fclose(fp);
		return -ENOMEM;
	}
	n = fread(buf, 1, FILE_MAX + 1, fp);
	if (ferror(fp) || n > FILE_MAX) {
		int e = ferror(fp) ? errno : EFBIG;

		fclose(fp);
		free(buf);
		return fail(R, NULL, "cannot read: %s", e == EFBIG ? "larger than 1 MiB" : strerror(e));
	}
	fclose(fp);
	buf[n] = 0;
	*ret = buf;
	*ret_len = n;
	return 0;
}

int release_file_load(const char *path, struct release_file **ret, char *err, size_t errlen)
{
	struct reader R = { .path = path, .err = err, .errlen = errlen };
	struct release_file *f = calloc(1, sizeof(*f));
	struct ynode *root = NULL;
	struct ynode_error yerr;
	char *text_buf = NULL, *abs = NULL, *slash;
	size_t len = 0;
	int r;

	if (!f)
		return -ENOMEM;
	r = read_whole(&R, &text_buf, &len);
	if (r >= 0) {
		r = ynode_parse(path, text_buf, len, &root, &yerr);
		if (r < 0)
			snprintf(err, errlen, "%s:%d:%d: %s", path, yerr.line, yerr.column, yerr.message);
		else if (!root)
			r = fail(&R, NULL, "empty: a release file names services at versions");
	}
	if (r >= 0)
		r = load_tree(&R, root, f);
	if (r >= 0) {
		abs = realpath(path, NULL);
		f->path = abs;
		f->dir = abs ? strdup(abs) : NULL;
		if (!f->path || !f->dir)
			r = -ENOMEM;
		else if ((slash = strrchr(f->dir, '/')))
			slash == f->dir ? (void)(slash[1] = 0) : (void)(*slash = 0);
	}
	if (r >= 0 && !f->name && !(f->name = default_name(path)))
		r = -ENOMEM;
	ynode_free(root);
	free(text_buf);
	if (r < 0) {
		if (r == -ENOMEM)
			snprintf(err, errlen, "%s: out of memory", path);
		release_file_free(f);
		return r;
	}
	*ret = f;
	return 0;
}

static void item_clear(struct release_item *it)
{
	free(it->name);
	free(it->version);
	free(it->digest);
	free(it->run);
	free(it->undo);
	for (size_t k = 0; k < it->ndeps; k++)
		free(it->depends_on[k]);
	free(it->depends_on);
}

static void gate_clear(struct release_gate *g)
{
	free(g->name);
	free(g->after);
	free(g->run);
	free(g->file);
	free(g->service);
	free(g->version);
}

struct release_file *release_file_free(struct release_file *f)
{
	if (!f)
		return NULL;
	for (size_t i = 0; i < f->nitems; i++)
		item_clear(&f->items[i]);
	for (size_t i = 0; i < f->ngates; i++)
		gate_clear(&f->gates[i]);
	free(f->items);
	free(f->gates);
	free(f->path);
	free(f->dir);
	free(f->name);
	free(f);
	return NULL;
}

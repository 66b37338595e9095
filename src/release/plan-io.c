/* plan-io.c - a plan in the forms people and the daemon read: JSON (what
 * `release plan --json` prints and `release run` sends to the daemon,
 * which rebuilds the plan from it and checks its shape again), Graphviz
 * dot (`--dot`) and text for a terminal.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/util.h"
#include "release/gate.h"
#include "release/release-internal.h"
#include "release/release.h"
#include "store/store.h"

/* The enum value whose name (gate.h's *_name functions) is s, or -1. */
static int name_index(const char *(*name)(int), int n, const char *s)
{
	for (int i = 0; s && i < n; i++)
		if (!strcmp(name(i), s))
			return i;
	return -1;
}

static const char *read_name(int v) { return gate_read_name((enum release_gate_read)v); }
static const char *when_name(int v) { return gate_when_name((enum release_gate_when)v); }
static const char *coverage_name(int v) { return gate_coverage_name((enum release_coverage_kind)v); }
static const char *metric_name(int v) { return gate_metric_name((enum release_metric)v); }

/* ---- JSON out ------------------------------------------------------------------ */

/* A JSON string, or null for NULL or "" (release-internal.h). */
json_t *release_json_string(const char *s)
{
	return s && *s ? json_string(s) : json_null();
}

static json_t *item_json(const struct release_plan *p, size_t i, size_t group)
{
	const struct release_item *it = &p->file->items[i];
	json_t *deps = json_array(), *o;

	for (size_t k = 0; deps && k < it->ndeps; k++)
		json_array_append_new(deps, json_string(it->depends_on[k]));
	o = json_pack("{ss ss si sb so sI}", "kind", it->kind == RELEASE_SERVICE ? "service" : "command", "name",
		      it->name, "group", (int)group + 1, "critical", it->critical, "depends_on", deps ? deps : json_array(),
		      "line", (json_int_t)it->line);
	if (!o)
		return NULL;
	if (it->kind == RELEASE_SERVICE) {
		json_object_set_new(o, "version", json_string(it->version));
		json_object_set_new(o, "digest", release_json_string(p->digests[i]));
		json_object_set_new(o, "expected_digest", release_json_string(it->digest));
		json_object_set_new(o, "from_version", release_json_string(p->from_versions[i]));
		json_object_set_new(o, "strategy", release_json_string(p->strategies[i]));
	} else {
		json_object_set_new(o, "run", json_string(it->run));
		json_object_set_new(o, "undo", release_json_string(it->undo));
		json_object_set_new(o, "point_of_no_return", json_boolean(it->point_of_no_return));
		json_object_set_new(o, "timeout_ms", json_integer((json_int_t)it->timeout_ms));
	}
	return o;
}

json_t *release_gate_json(const struct release_gate *g)
{
	json_t *o = json_pack("{ss ss ss sI sI}", "name", g->name, "read", gate_read_name(g->read), "when",
			      gate_when_name(g->when), "timeout_ms", (json_int_t)g->timeout_ms, "line",
			      (json_int_t)g->line);

	if (!o)
		return NULL;
	if (g->after)
		json_object_set_new(o, "after", json_string(g->after));
	if (g->run)
		json_object_set_new(o, "run", json_string(g->run));
	if (g->file)
		json_object_set_new(o, "file", json_string(g->file));
	switch (g->read) {
	case GATE_READ_EXIT:
		json_object_set_new(o, "expect_exit", json_integer(g->expect_exit));
		break;
	case GATE_READ_SUMMARY:
	case GATE_READ_JUNIT:
		json_object_set_new(o, "min_tests", json_integer((json_int_t)g->min_tests));
		json_object_set_new(o, "max_failed", json_integer((json_int_t)g->max_failed));
		json_object_set_new(o, "min_pass_rate_bp", json_integer(g->min_pass_rate_bp));
		break;
	case GATE_READ_COVERAGE:
		json_object_set_new(o, "coverage", json_string(gate_coverage_name(g->coverage)));
		json_object_set_new(o, "min_coverage_bp", json_integer(g->min_coverage_bp));
		break;
	case GATE_READ_METRIC:
		json_object_set_new(o, "service", json_string(g->service));
		json_object_set_new(o, "version", release_json_string(g->version));
		json_object_set_new(o, "metric", json_string(gate_metric_name(g->metric)));
		json_object_set_new(o, "during_canary", json_boolean(g->during_canary));
		json_object_set_new(o, "window_ms", json_integer((json_int_t)g->window_ms));
		json_object_set_new(o, "max_value", json_integer((json_int_t)g->max_value));
		json_object_set_new(o, "min_requests", json_integer((json_int_t)g->min_requests));
		break;
	}
	return o;
}

json_t *release_plan_json(const struct release_plan *p)
{
	const struct release_file *f = p->file;
	json_t *groups = json_array(), *gates = json_array(), *o;

	for (size_t g = 0; groups && g < p->ngroups; g++) {
		json_t *group = json_array();

		for (size_t k = p->group_start[g]; group && k < p->group_start[g + 1]; k++)
			json_array_append_new(group, item_json(p, p->order[k], g));
		json_array_append_new(groups, group ? group : json_null());
	}
	for (size_t i = 0; gates && i < f->ngates; i++)
		json_array_append_new(gates, release_gate_json(&f->gates[i]));
	o = json_pack("{ss ss ss si so so}", "name", f->name, "file", f->path, "dir", f->dir, "concurrency",
		      (int)p->concurrency, "groups", groups ? groups : json_null(), "gates", gates ? gates : json_null());
	return o;
}

/* ---- JSON in ---------------------------------------------------------------------- */

static const char *get_str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static int dup_opt(const json_t *o, const char *key, size_t max, char **dst)
{
	const json_t *v = json_object_get(o, key);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v) || !json_string_length(v) || json_string_length(v) > max)
		return -EINVAL;
	*dst = strdup(json_string_value(v));
	return *dst ? 0 : -ENOMEM;
}

static int get_uint(const json_t *o, const char *key, uint64_t max, uint64_t *ret)
{
	const json_t *v = json_object_get(o, key);

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max)
		return -EINVAL;
	*ret = (uint64_t)json_integer_value(v);
	return 0;
}

static int item_from_json(const json_t *o, struct release_plan *p, size_t i)
{
	struct release_item *it = &p->file->items[i];
	const char *kind = get_str(o, "kind");
	const json_t *deps = json_object_get(o, "depends_on"), *d;
	uint64_t u = 0;
	size_t k;
	int r;

	if (!kind || !json_is_array(deps) || json_array_size(deps) > RELEASE_DEPS_MAX)
		return -EINVAL;
	it->kind = !strcmp(kind, "service") ? RELEASE_SERVICE : RELEASE_COMMAND;
	if (it->kind == RELEASE_COMMAND && strcmp(kind, "command"))
		return -EINVAL;
	it->critical = json_is_true(json_object_get(o, "critical"));
	it->point_of_no_return = json_is_true(json_object_get(o, "point_of_no_return"));
	r = dup_opt(o, "name", 64, &it->name);
	if (r >= 0 && (!it->name || !store_service_valid(it->name)))
		r = -EINVAL;
	if (r >= 0)
		r = get_uint(o, "line", 1u << 30, &u);
	it->line = (int)u;
	if (r >= 0 && it->kind == RELEASE_SERVICE) {
		const char *digest = get_str(o, "digest"), *from = get_str(o, "from_version"),
			   *strategy = get_str(o, "strategy");

		r = dup_opt(o, "version", 63, &it->version);
		if (r >= 0 && (!it->version || !store_version_valid(it->version) || !digest || strlen(digest) != 64 ||
			       (from && strlen(from) >= 64) || (strategy && strlen(strategy) >= 16)))
			r = -EINVAL;
		if (r >= 0) {
			snprintf(p->digests[i], sizeof(p->digests[i]), "%s", digest);
			snprintf(p->from_versions[i], sizeof(p->from_versions[i]), "%s", from ? from : "");
			snprintf(p->strategies[i], sizeof(p->strategies[i]), "%s", strategy ? strategy : "");
		}
		if (r >= 0)
			r = dup_opt(o, "expected_digest", 64, &it->digest);
	} else if (r >= 0) {
		r = dup_opt(o, "run", 4096, &it->run);
		if (r >= 0)
			r = dup_opt(o, "undo", 4096, &it->undo);
		if (r >= 0)
			r = get_uint(o, "timeout_ms", 24ull * 3600 * 1000, &it->timeout_ms);
		if (r >= 0 && (!it->run || !it->timeout_ms))
			r = -EINVAL;
	}
	if (r < 0)
		return r;
	it->depends_on = calloc(json_array_size(deps) + 1, sizeof(char *));
	if (!it->depends_on)
		return -ENOMEM;
	json_array_foreach(deps, k, d) {
		if (!json_is_string(d) || !(it->depends_on[k] = strdup(json_string_value(d))))
			return json_is_string(d) ? -ENOMEM : -EINVAL;
		it->ndeps++;
	}
	return 0;
}

static int gate_from_json(const json_t *o, struct release_gate *g)
{
	int read = name_index(read_name, 5, get_str(o, "read")), when = name_index(when_name, 4, get_str(o, "when"));
	uint64_t u = 0;
	int r;

	if (read < 0 || when < 0)
		return -EINVAL;
	g->read = read;
	g->when = when;
	r = dup_opt(o, "name", 64, &g->name);
	if (r >= 0)
		r = dup_opt(o, "after", 64, &g->after);
	if (r >= 0)
		r = dup_opt(o, "run", 4096, &g->run);
	if (r >= 0)
		r = dup_opt(o, "file", 2048, &g->file);
	if (r >= 0)
		r = dup_opt(o, "service", 64, &g->service);
	if (r >= 0)
		r = dup_opt(o, "version", 63, &g->version);
	if (r >= 0)
		r = get_uint(o, "line", 1u << 30, &u);
	g->line = (int)u;
	if (r >= 0)
		r = get_uint(o, "timeout_ms", 24ull * 3600 * 1000, &g->timeout_ms);
	u = 0;
	if (r >= 0)
		r = get_uint(o, "expect_exit", 255, &u);
	g->expect_exit = (int)u;
	if (r >= 0)
		r = get_uint(o, "min_tests", UINT32_MAX, &g->min_tests);
	if (r >= 0)
		r = get_uint(o, "max_failed", UINT32_MAX, &g->max_failed);
	u = 10000;
	if (r >= 0)
		r = get_uint(o, "min_pass_rate_bp", 10000, &u);
	g->min_pass_rate_bp = (uint32_t)u;
	u = 0;
	if (r >= 0)
		r = get_uint(o, "min_coverage_bp", 10000, &u);
	g->min_coverage_bp = (uint32_t)u;
	if (r >= 0 && json_object_get(o, "coverage"))
		r = (g->coverage = name_index(coverage_name, 3, get_str(o, "coverage"))) < 0 ? -EINVAL : 0;
	if (r >= 0 && json_object_get(o, "metric"))
		r = (g->metric = name_index(metric_name, 3, get_str(o, "metric"))) < 0 ? -EINVAL : 0;
	g->during_canary = json_is_true(json_object_get(o, "during_canary"));
	if (r >= 0)
		r = get_uint(o, "window_ms", 24ull * 3600 * 1000, &g->window_ms);
	if (r >= 0)
		r = get_uint(o, "max_value", UINT32_MAX, &g->max_value);
	if (r >= 0)
		r = get_uint(o, "min_requests", UINT32_MAX, &g->min_requests);
	if (r >= 0 && (!g->name || !g->timeout_ms || (read != GATE_READ_METRIC && !g->run) ||
		       (read == GATE_READ_METRIC && !g->service) || (when == GATE_AFTER_GROUP && !g->after)))
		r = -EINVAL;
	return r;
}

/* Items, group boundaries and order from the groups array. */
static int groups_from_json(const json_t *groups, struct release_plan *p, char *err, size_t errlen)
{
	struct release_file *f = p->file;
	size_t n = 0, g, k, pos = 0;
	const json_t *group, *item;
	int r;

	json_array_foreach(groups, g, group) {
		if (!json_is_array(group) || !json_array_size(group))
			return snprintf(err, errlen, "groups[%zu] is not a non-empty list", g), -EINVAL;
		n += json_array_size(group);
	}
	if (!n || n > RELEASE_ITEMS_MAX)
		return snprintf(err, errlen, "a plan holds 1 to %d items", RELEASE_ITEMS_MAX), -EINVAL;
	f->items = calloc(n, sizeof(*f->items));
	p->order = calloc(n, sizeof(*p->order));
	p->group_start = calloc(json_array_size(groups) + 1, sizeof(*p->group_start));
	p->digests = calloc(n, sizeof(*p->digests));
	p->from_versions = calloc(n, sizeof(*p->from_versions));
	p->strategies = calloc(n, sizeof(*p->strategies));
	if (!f->items || !p->order || !p->group_start || !p->digests || !p->from_versions || !p->strategies)
		return -ENOMEM;
	json_array_foreach(groups, g, group) {
		p->group_start[g] = pos;
		json_array_foreach(group, k, item) {
			f->nitems++;
			r = json_is_object(item) ? item_from_json(item, p, pos) : -EINVAL;
			if (r < 0)
				return snprintf(err, errlen, "groups[%zu][%zu] is not a valid item", g, k), r;
			p->order[pos] = pos;
			pos++;
		}
	}
	p->ngroups = json_array_size(groups);
	p->group_start[p->ngroups] = pos;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < i; j++)
			if (!strcmp(f->items[i].name, f->items[j].name))
				return snprintf(err, errlen, "%s appears twice in the plan", f->items[i].name), -EINVAL;
	/* the order is checked, not trusted: what an item needs is in an earlier group */
	for (size_t g2 = 0; g2 < p->ngroups; g2++)
		for (size_t i = p->group_start[g2]; i < p->group_start[g2 + 1]; i++)
			for (size_t d = 0; d < f->items[i].ndeps; d++) {
				size_t j = 0;

				while (j < p->group_start[g2] && strcmp(f->items[j].name, f->items[i].depends_on[d]))
					j++;
				if (j == p->group_start[g2])
					return snprintf(err, errlen, "%s needs %s, which is not in an earlier group",
							f->items[i].name, f->items[i].depends_on[d]),
					       -EINVAL;
			}
	return 0;
}

int release_plan_from_json(const json_t *j, struct release_plan **ret, char *err, size_t errlen)
{
	struct release_plan *p = calloc(1, sizeof(*p));
	const json_t *groups = json_object_get(j, "groups"), *gates = json_object_get(j, "gates"), *g;
	uint64_t conc = 0;
	size_t i;
	int r = 0;

	if (!p || !(p->file = calloc(1, sizeof(*p->file)))) {
		free(p);
		return -ENOMEM;
	}
	if (!json_is_object(j) || !json_is_array(groups) || !json_is_array(gates) ||
	    json_array_size(gates) > RELEASE_GATES_MAX) {
		snprintf(err, errlen, "a plan is {name, file, dir, concurrency, groups, gates}");
		r = -EINVAL;
		goto out;
	}
	r = dup_opt(j, "name", RELEASE_NAME_MAX, &p->file->name);
	if (r >= 0)
		r = dup_opt(j, "file", 4096, &p->file->path);
	if (r >= 0)
		r = dup_opt(j, "dir", 4096, &p->file->dir);
	if (r >= 0)
		r = get_uint(j, "concurrency", 64, &conc);
	if (r >= 0 && (!p->file->name || !p->file->path || !p->file->dir || p->file->dir[0] != '/' || !conc))
		r = -EINVAL;
	if (r < 0) {
		snprintf(err, errlen, "a plan needs a name, its file, an absolute dir and a concurrency of 1 to 64");
		goto out;
	}
	p->concurrency = p->file->concurrency = (uint32_t)conc;
	r = groups_from_json(groups, p, err, errlen);
	if (r < 0)
		goto out;
	p->file->gates = calloc(json_array_size(gates) + 1, sizeof(*p->file->gates));
	if (!p->file->gates) {
		r = -ENOMEM;
		goto out;
	}
	json_array_foreach(gates, i, g) {
		p->file->ngates++;
		r = json_is_object(g) ? gate_from_json(g, &p->file->gates[i]) : -EINVAL;
		if (r < 0) {
			snprintf(err, errlen, "gates[%zu] is not a valid gate", i);
			goto out;
		}
	}
out:
	if (r < 0) {
		release_plan_free(p);
		return r;
	}
	*ret = p;
	return 0;
}

/* ---- dot and text ------------------------------------------------------------------ */

char *release_plan_dot(const struct release_plan *p)
{
	const struct release_file *f = p->file;
	char *out = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&out, &len);

	if (!fp)
		return NULL;
	fprintf(fp, "digraph \"%s\" {\n\trankdir=BT;\n\tnode [shape=box, fontname=\"sans-serif\"];\n", f->name);
	for (size_t g = 0; g < p->ngroups; g++) {
		fprintf(fp, "\tsubgraph cluster_%zu {\n\t\tlabel=\"group %zu\";\n\t\tstyle=dashed;\n", g + 1, g + 1);
		for (size_t k = p->group_start[g]; k < p->group_start[g + 1]; k++) {
			const struct release_item *it = &f->items[p->order[k]];

			if (it->kind == RELEASE_SERVICE)
				fprintf(fp, "\t\t\"%s\" [label=\"%s\\n%s%s%s\"];\n", it->name, it->name,
					p->from_versions[p->order[k]][0] ? p->from_versions[p->order[k]] : "",
					p->from_versions[p->order[k]][0] ? " → " : "", it->version);
			else
				fprintf(fp, "\t\t\"%s\" [label=\"%s\\n(command)\", shape=ellipse];\n", it->name, it->name);
		}
		fprintf(fp, "\t}\n");
	}
	/* an edge from each item to what it needs first */
	for (size_t i = 0; i < f->nitems; i++)
		for (size_t k = 0; k < f->items[i].ndeps; k++)
			fprintf(fp, "\t\"%s\" -> \"%s\";\n", f->items[i].name, f->items[i].depends_on[k]);
	fprintf(fp, "}\n");
	if (fclose(fp) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

static void gate_line(FILE *fp, const struct release_gate *g)
{
	char t[32];

	fprintf(fp, "    gate %-16s ", g->name);
	switch (g->read) {
	case GATE_READ_EXIT:
		fprintf(fp, "exit status %d of `%s`", g->expect_exit, g->run);
		break;
	case GATE_READ_SUMMARY:
	case GATE_READ_JUNIT:
		if (g->read == GATE_READ_SUMMARY)
			fprintf(fp, "\"N passed, N failed\" of `%s`", g->run);
		else
			fprintf(fp, "JUnit %s of `%s`", g->file, g->run);
		fprintf(fp, ": >= %llu tests, <= %llu failed, pass rate >= %u.%02u%%", (unsigned long long)g->min_tests,
			(unsigned long long)g->max_failed, g->min_pass_rate_bp / 100, g->min_pass_rate_bp % 100);
		break;
	case GATE_READ_COVERAGE:
		fprintf(fp, "%s coverage in %s of `%s` >= %u.%02u%%", gate_coverage_name(g->coverage), g->file, g->run,
			g->min_coverage_bp / 100, g->min_coverage_bp % 100);
		break;
	case GATE_READ_METRIC:
		fprintf(fp, "%s of %s%s%s ", gate_metric_name(g->metric), g->service, g->version ? " " : "",
			g->version ? g->version : "");
		if (g->during_canary)
			fprintf(fp, "during its canary");
		else
			fprintf(fp, "over %s", format_duration(g->window_ms, t, sizeof(t)));
		if (g->metric == METRIC_ERROR_RATE)
			fprintf(fp, " <= %llu.%02llu%%", (unsigned long long)g->max_value / 100,
				(unsigned long long)g->max_value % 100);
		else
			fprintf(fp, " <= %llums", (unsigned long long)g->max_value);
		fprintf(fp, " (>= %llu requests)", (unsigned long long)g->min_requests);
		break;
	}
	fputc('\n', fp);
}

/* The gates that run at point `when` (and after group `group` for
 * between / after-group). */
static void gates_at(FILE *fp, const struct release_plan *p, enum release_gate_when when, size_t group)
{
	const struct release_file *f = p->file;

	for (size_t i = 0; i < f->ngates; i++) {
		const struct release_gate *g = &f->gates[i];
		bool here = g->when == when;

		if (here && when == GATE_AFTER_GROUP) {
			here = false;
			for (size_t k = p->group_start[group]; k < p->group_start[group + 1]; k++)
				here |= !strcmp(f->items[p->order[k]].name, g->after);
		}
		if (here)
			gate_line(fp, g);
	}
}

static bool any_gate(const struct release_plan *p, enum release_gate_when when)
{
	for (size_t i = 0; i < p->file->ngates; i++)
		if (p->file->gates[i].when == when)
			return true;
	return false;
}

char *release_plan_text(const struct release_plan *p)
{
	const struct release_file *f = p->file;
	size_t nservices = 0, len = 0;
	char *out = NULL, t[32];
	FILE *fp = open_memstream(&out, &len);

	if (!fp)
		return NULL;
	for (size_t i = 0; i < f->nitems; i++)
		nservices += f->items[i].kind == RELEASE_SERVICE;
	fprintf(fp, "release %s: %zu service%s, %zu command step%s, %zu group%s, at most %u deploys at once\n", f->name,
		nservices, nservices == 1 ? "" : "s", f->nitems - nservices, f->nitems - nservices == 1 ? "" : "s",
		p->ngroups, p->ngroups == 1 ? "" : "s", p->concurrency);
	if (any_gate(p, GATE_BEFORE))
		fprintf(fp, "  before\n");
	gates_at(fp, p, GATE_BEFORE, 0);
	for (size_t g = 0; g < p->ngroups; g++) {
		fprintf(fp, "  group %zu\n", g + 1);
		for (size_t k = p->group_start[g]; k < p->group_start[g + 1]; k++) {
			size_t i = p->order[k];
			const struct release_item *it = &f->items[i];

			if (it->kind == RELEASE_SERVICE)
				fprintf(fp, "    %-16s %s → %-10s %-10s sha256:%.12s%s\n", it->name,
					p->from_versions[i][0] ? p->from_versions[i] : "(none)", it->version,
					p->strategies[i], p->digests[i], it->critical ? "" : "  (critical: false)");
			else
				fprintf(fp, "    %-16s run `%s`, undo %s%s%s, timeout %s%s\n", it->name, it->run,
					it->undo ? "`" : "", it->undo ? it->undo : it->point_of_no_return ?
					"none (a point of no return)" : "none", it->undo ? "`" : "",
					format_duration(it->timeout_ms, t, sizeof(t)), it->critical ? "" : "  (critical: false)");
		}
		gates_at(fp, p, GATE_AFTER_GROUP, g);
		if (g + 1 < p->ngroups)
			gates_at(fp, p, GATE_BETWEEN, g);
	}
	if (any_gate(p, GATE_AFTER))
		fprintf(fp, "  after\n");
	gates_at(fp, p, GATE_AFTER, 0);
	if (fclose(fp) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

/* plan.c - from a release file to a plan: every check that needs the
 * configuration, the release store or what runs now, then the order.
 *
 * The graph's nodes are the release's items (services and command steps);
 * an edge A -> B says A needs B done first: B is in A's depends_on (the
 * release file's) or, for a service, in services.A.depends_on of
 * cutover.yml.  A dependency on a configured service the release does not
 * change is no edge, but that service must be live.  Groups are the
 * levels of Kahn's algorithm: group 1 holds the items with no dependency
 * in the release, group k + 1 those whose dependencies are all in groups
 * 1..k.  A cycle is found by a depth-first search and named by its path.
 * Every problem is reported, one per line, before anything changes.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "release/gate.h"
#include "release/release.h"

/* The problems found so far, one per line, in err. */
struct problems {
	char *err;
	size_t errlen, used;
	int count;
};

static void problem(struct problems *P, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(struct problems *P, const char *fmt, ...)
{
	va_list ap;
	int n;

	P->count++;
	if (P->used + 2 >= P->errlen)
		return;
	if (P->used)
		P->err[P->used++] = '\n';
	va_start(ap, fmt);
	n = vsnprintf(P->err + P->used, P->errlen - P->used, fmt, ap);
	va_end(ap);
	P->used = n < 0 ? P->used : P->used + (size_t)n >= P->errlen ? P->errlen - 1 : P->used + (size_t)n;
}

static const char *const strategy_names[] = {
	[CONFIG_STRATEGY_BLUE_GREEN] = "blue-green",
	[CONFIG_STRATEGY_RECREATE] = "recreate",
	[CONFIG_STRATEGY_CANARY] = "canary",
	[CONFIG_STRATEGY_ROLLING] = "rolling",
};

static const struct config_service *config_service(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nservices; i++)
		if (!strcmp(cfg->services[i].name, name))
			return &cfg->services[i];
	return NULL;
}

static ssize_t item_index(const struct release_file *f, const char *name)
{
	for (size_t i = 0; i < f->nitems; i++)
		if (!strcmp(f->items[i].name, name))
			return (ssize_t)i;
	return -1;
}

/* ---- the graph ------------------------------------------------------------------ */

struct graph {
	size_t n;
	bool *edge;                   /* n * n: edge[a * n + b] = a needs b first */
};

static bool needs(const struct graph *g, size_t a, size_t b)
{
	return g->edge[a * g->n + b];
}

/* A dependency of item i named dep: an edge, a live service outside the
 * release, or a problem. */
static void add_dependency(struct problems *P, const struct release_plan *plan, const struct config *cfg,
			   const struct release_lookup *lk, struct graph *g, size_t i, const char *dep,
			   const char *from)
{
	const struct release_file *f = plan->file;
	ssize_t j = item_index(f, dep);
	char live[64];

	if (j >= 0) {
		g->edge[i * g->n + (size_t)j] = true;
		return;
	}
	if (!config_service(cfg, dep)) {
		problem(P, "%s:%d: %s depends on %s (%s): no such service or step", f->path, f->items[i].line,
			f->items[i].name, dep, from);
		return;
	}
	if (lk->live(lk->data, dep, live) < 0)
		problem(P, "%s:%d: %s depends on %s (%s), which this release does not deploy and which does not run",
			f->path, f->items[i].line, f->items[i].name, dep, from);
}

/* Depth-first search from v; on a cycle, its path into P. */
static bool find_cycle(struct problems *P, const struct release_file *f, const struct graph *g, size_t v,
		       unsigned char *color, size_t *stack, size_t depth)
{
	color[v] = 1;
	stack[depth] = v;
	for (size_t w = 0; w < g->n; w++) {
		if (!needs(g, v, w))
			continue;
		if (color[w] == 1) {
			char path[1024] = "";
			size_t k = 0;

			while (stack[k] != w)
				k++;
			for (; k <= depth; k++)
				snprintf(path + strlen(path), sizeof(path) - strlen(path), "%s → ", f->items[stack[k]].name);
			snprintf(path + strlen(path), sizeof(path) - strlen(path), "%s", f->items[w].name);
			problem(P, "%s:%d: a dependency cycle: %s", f->path, f->items[w].line, path);
			return true;
		}
		if (color[w] == 0 && find_cycle(P, f, g, w, color, stack, depth + 1))
			return true;
	}
	color[v] = 2;
	return false;
}

/* Kahn's levels into plan->order and group_start. */
static int make_groups(struct release_plan *plan, const struct graph *g)
{
	size_t n = g->n, placed = 0;
	bool *done = calloc(n, sizeof(*done));
	int r = 0;

	plan->order = calloc(n, sizeof(*plan->order));
	plan->group_start = calloc(n + 1, sizeof(*plan->group_start));
	if (!done || !plan->order || !plan->group_start) {
		r = -ENOMEM;
		goto out;
	}
	while (placed < n) {
		size_t start = placed;

		plan->group_start[plan->ngroups] = placed;
		for (size_t v = 0; v < n; v++) {
			bool ready = !done[v];

			for (size_t w = 0; ready && w < n; w++)
				ready = !needs(g, v, w) || done[w];
			if (ready)
				plan->order[placed++] = v;
		}
		if (placed == start) {        /* a cycle: found before, never here */
			r = -ELOOP;
			goto out;
		}
		for (size_t k = start; k < placed; k++)
			done[plan->order[k]] = true;
		plan->ngroups++;
	}
	plan->group_start[plan->ngroups] = placed;
out:
	free(done);
	return r;
}

/* Each item's depends_on becomes the items of the release it needs first,
 * in file order, whichever file named them (what the JSON, the graph and
 * the runner show); dependencies outside the release are left out. */
static int resolve_dependencies(struct release_file *f, const struct graph *g)
{
	for (size_t i = 0; i < f->nitems; i++) {
		struct release_item *it = &f->items[i];
		char **deps = calloc(f->nitems, sizeof(*deps));
		size_t n = 0;

		if (!deps)
			return -ENOMEM;
		for (size_t j = 0; j < f->nitems; j++)
			if (needs(g, i, j) && !(deps[n++] = strdup(f->items[j].name))) {
				while (n--)
					free(deps[n]);
				free(deps);
				return -ENOMEM;
			}
		for (size_t k = 0; k < it->ndeps; k++)
			free(it->depends_on[k]);
		free(it->depends_on);
		it->depends_on = deps;
		it->ndeps = n;
	}
	return 0;
}

/* ---- checks of the items and gates ----------------------------------------------- */

static void check_service(struct problems *P, struct release_plan *plan, const struct config *cfg,
			  const struct release_lookup *lk, size_t i)
{
	const struct release_file *f = plan->file;
	const struct release_item *it = &f->items[i];
	const struct config_service *cs = config_service(cfg, it->name);
	int r;

	if (!cs) {
		problem(P, "%s:%d: services.%s: not a service of %s%s%s", f->path, it->line, it->name,
			cfg->path ? cfg->path : "the configuration", cfg->env ? " in " : "", cfg->env ? cfg->env : "");
		return;
	}
	if (!cs->run) {
		problem(P, "%s:%d: services.%s: cutover does not run it (it has targets:, no run:): it cannot be deployed",
			f->path, it->line, it->name);
		return;
	}
	r = lk->digest(lk->data, it->name, it->version, plan->digests[i]);
	if (r == -ENOENT)
		problem(P, "%s:%d: services.%s: %s %s is not in the release store (cutover release add %s %s DIR)",
			f->path, it->line, it->name, it->name, it->version, it->name, it->version);
	else if (r < 0)
		problem(P, "%s:%d: services.%s: cannot read the release store: %s", f->path, it->line, it->name,
			strerror(-r));
	else if (it->digest && strcmp(it->digest, plan->digests[i]))
		problem(P, "%s:%d: services.%s.digest: the release store holds %s %s as sha256:%s, not sha256:%s as "
			   "the release file expects",
			f->path, it->line, it->name, it->name, it->version, plan->digests[i], it->digest);
	if (lk->live(lk->data, it->name, plan->from_versions[i]) < 0)
		plan->from_versions[i][0] = 0;
	if ((unsigned)cs->deploy.strategy < sizeof(strategy_names) / sizeof(strategy_names[0]))
		snprintf(plan->strategies[i], sizeof(plan->strategies[i]), "%s", strategy_names[cs->deploy.strategy]);
}

static void check_gates(struct problems *P, const struct release_plan *plan, const struct config *cfg)
{
	const struct release_file *f = plan->file;

	for (size_t i = 0; i < f->ngates; i++) {
		struct release_gate *g = &f->gates[i];

		if (!g->timeout_ms)
			g->timeout_ms = cfg->release.gate_timeout_ms;
		if (g->when == GATE_AFTER_GROUP && item_index(f, g->after) < 0)
			problem(P, "%s:%d: gates.%s.after: %s is not a service or step of this release", f->path, g->line,
				g->name, g->after);
		if (g->read == GATE_READ_METRIC && !config_service(cfg, g->service))
			problem(P, "%s:%d: gates.%s.service: %s is not a service of the configuration", f->path, g->line,
				g->name, g->service);
	}
}

int release_plan_make(struct release_file *f, const struct config *cfg, const struct release_lookup *lk,
		      struct release_plan **ret, char *err, size_t errlen)
{
	struct problems P = { .err = err, .errlen = errlen };
	struct release_plan *plan = calloc(1, sizeof(*plan));
	struct graph g = { .n = f->nitems };
	unsigned char *color = NULL;
	size_t *stack = NULL;
	int r = 0;

	if (errlen)
		err[0] = 0;
	if (!plan) {
		release_file_free(f);
		return -ENOMEM;
	}
	plan->file = f;
	plan->concurrency = f->concurrency ? f->concurrency : cfg->release.concurrency;
	plan->digests = calloc(f->nitems, sizeof(*plan->digests));
	plan->from_versions = calloc(f->nitems, sizeof(*plan->from_versions));
	plan->strategies = calloc(f->nitems, sizeof(*plan->strategies));
	g.edge = calloc(f->nitems * f->nitems, sizeof(*g.edge));
	color = calloc(f->nitems, 1);
	stack = calloc(f->nitems, sizeof(*stack));
	if (!plan->digests || !plan->from_versions || !plan->strategies || !g.edge || !color || !stack) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < f->nitems; i++) {
		struct release_item *it = &f->items[i];
		const struct config_service *cs;

		if (it->kind == RELEASE_COMMAND && !it->timeout_ms)
			it->timeout_ms = cfg->release.gate_timeout_ms;
		if (it->kind == RELEASE_SERVICE)
			check_service(&P, plan, cfg, lk, i);
		for (size_t k = 0; k < it->ndeps; k++)
			add_dependency(&P, plan, cfg, lk, &g, i, it->depends_on[k], "the release file");
		cs = it->kind == RELEASE_SERVICE ? config_service(cfg, it->name) : NULL;
		for (size_t k = 0; cs && k < cs->ndepends_on; k++)
			add_dependency(&P, plan, cfg, lk, &g, i, cs->depends_on[k], "cutover.yml");
	}
	check_gates(&P, plan, cfg);
	for (size_t v = 0; v < g.n; v++)
		if (color[v] == 0 && find_cycle(&P, f, &g, v, color, stack, 0))
			break;
	if (P.count) {
		r = -EINVAL;
		goto out;
	}
	r = make_groups(plan, &g);
	if (r >= 0)
		r = resolve_dependencies(f, &g);
out:
	free(g.edge);
	free(color);
	free(stack);
	if (r < 0) {
		if (r == -ENOMEM)
			snprintf(err, errlen, "%s: out of memory", f->path);
		release_plan_free(plan);
		return r;
	}
	*ret = plan;
	return 0;
}

struct release_plan *release_plan_free(struct release_plan *p)
{
	if (!p)
		return NULL;
	release_file_free(p->file);
	free(p->order);
	free(p->group_start);
	free(p->digests);
	free(p->from_versions);
	free(p->strategies);
	free(p);
	return NULL;
}

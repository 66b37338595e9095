/* routes.c - the routing table: services, their version groups and
 * targets, published as immutable snapshots (types in proxy-t.h).
 *
 * A change (a reload, a deploy's new weights, a hand PUT of targets) builds
 * a complete new table beside the current one, sharing what did not
 * change, then publishes it with one pointer store on the loop thread: the
 * next request sees the new table; a request in flight keeps the table and
 * the target it started with until it ends, and the old table is freed
 * when the last of them lets go.  Nothing is half-applied: if building
 * fails, the current table stays.
 *
 * Targets are keyed by (service, address) for the proxy's life, so a
 * target present before and after a change keeps its pool of idle
 * connections, its counters and its round-robin position.  A target that
 * leaves its service is marked removed: its idle connections close at
 * once, busy ones when their exchange ends.
 *
 * A pick has two steps.  route_choose() takes the version group for a
 * request, while its head is still readable: a service with one group
 * takes it by weighted round-robin; one with a canary split or several
 * versions is steered by the request's cohort cookie and the overrides
 * (cohort.c).  route_pick() then takes a target of that group, and again
 * on a retry, skipping the targets that failed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "base/list.h"
#include "base/log.h"
#include "metrics/metrics.h"
#include "proxy/cohort.h"
#include "proxy/proxy.h"
#include "proxy/proxy-internal.h"
#include "proxy/router.h"

/* ------------------------------------------------------------------ */
/* targets                                                             */

struct target *target_ref(struct target *t)
{
	t->refcount++;
	return t;
}

static void proxy_forget_target(struct proxy *p, struct target *t)
{
	for (size_t i = 0; i < p->ntargets; i++) {
		if (p->targets[i] == t) {
			p->targets[i] = p->targets[--p->ntargets];
			return;
		}
	}
}

struct target *target_unref(struct target *t)
{
	if (!t || --t->refcount > 0)
		return NULL;
	target_close_idle(t);
	proxy_forget_target(t->proxy, t);
	free(t->addr_text);
	free(t->service);
	free(t);
	return NULL;
}

/* The target of (service, address), with a new reference; created if it
 * does not exist (or exists only as removed), counted under version (a
 * managed instance's; NULL for a configured target).  NULL on allocation
 * failure. */
static struct target *target_get(struct proxy *p, const char *service, const char *version,
				 const struct config_target *ct)
{
	struct target *t;

	for (size_t i = 0; i < p->ntargets; i++) {
		t = p->targets[i];
		if (!t->removed && !strcmp(t->addr_text, ct->addr.text) && !strcmp(t->service, service))
			return target_ref(t);
	}
	if (p->ntargets == p->captargets) {
		size_t cap = p->captargets ? p->captargets * 2 : 16;
		struct target **v = realloc(p->targets, cap * sizeof(*v));
		if (!v)
			return NULL;
		p->targets = v;
		p->captargets = cap;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->addr_text = strdup(ct->addr.text);
	t->service = strdup(service);
	t->metrics = metrics_upstream_get(&p->metrics, service, ct->addr.text, version);
	if (!t->addr_text || !t->service || !t->metrics) {
		free(t->addr_text);
		free(t->service);
		free(t);
		return NULL;
	}
	t->refcount = 1;
	t->sa = ct->addr.sa;
	t->salen = ct->addr.salen;
	t->proxy = p;
	list_init(&t->idle);
	p->targets[p->ntargets++] = t;
	return t;
}

/* ------------------------------------------------------------------ */
/* services                                                            */

struct route_service *route_service_ref(struct route_service *s)
{
	s->refcount++;
	return s;
}

static void group_release(struct route_group *g)
{
	for (uint32_t i = 0; i < g->n; i++)
		target_unref(g->slots[i].target);
	free(g->slots);
	free(g->version);
}

struct route_service *route_service_unref(struct route_service *s)
{
	if (!s || --s->refcount > 0)
		return NULL;
	for (uint32_t i = 0; i < s->ngroups; i++)
		group_release(&s->groups[i]);
	free(s->groups);
	free(s->name);
	free(s);
	return NULL;
}

static const struct route_group *group_find(const struct route_service *s, const char *version)
{
	for (uint32_t i = 0; s && i < s->ngroups; i++) {
		const char *v = s->groups[i].version;
		if ((!v && !version) || (v && version && !strcmp(v, version)))
			return &s->groups[i];
	}
	return NULL;
}

/* Fill g from spec; round-robin positions carry over from the same
 * version's group in old (may be NULL).  Returns 0 or -ENOMEM (g holds
 * what was built: group_release() it). */
static int group_build(struct proxy *p, const char *service, struct route_group *g, const struct proxy_group *spec,
		       const struct route_service *old)
{
	const struct route_group *og = group_find(old, spec->version);

	g->weight = spec->weight;
	g->canary = spec->canary;
	if (spec->version && !(g->version = strdup(spec->version)))
		return -ENOMEM;
	g->current = og ? og->current : 0;
	g->slots = calloc(spec->ntargets ? spec->ntargets : 1, sizeof(*g->slots));
	if (!g->slots)
		return -ENOMEM;
	for (size_t i = 0; i < spec->ntargets; i++) {
		struct target_slot *slot = &g->slots[i];
		slot->target = target_get(p, service, spec->version, &spec->targets[i]);
		if (!slot->target)
			return -ENOMEM;
		g->n++;
		slot->weight = (int)spec->targets[i].weight;
		g->total_weight += slot->weight;
		for (uint32_t j = 0; og && j < og->n; j++)
			if (og->slots[j].target == slot->target)
				slot->current = og->slots[j].current;
	}
	return 0;
}

/* A new service NAME with the groups of spec; positions carry over from
 * old (may be NULL).  Returns it with one reference, or NULL (ENOMEM). */
static struct route_service *service_build(struct proxy *p, const char *name, bool managed,
					   const struct proxy_group *spec, size_t n, const struct route_service *old)
{
	struct route_service *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->refcount = 1;
	s->managed = managed;
	s->name = strdup(name);
	s->groups = calloc(n ? n : 1, sizeof(*s->groups));
	s->outcomes = metrics_outcomes_get(&p->metrics, name);
	if (!s->name || !s->groups || !s->outcomes)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		s->ngroups++;
		if (group_build(p, name, &s->groups[i], &spec[i], old) < 0)
			goto fail;
		s->total_weight += (int)spec[i].weight;
	}
	cohort_service_prepare(s);
	return s;
fail:
	route_service_unref(s);
	return NULL;
}

static bool service_has(const struct route_service *s, const struct target *t)
{
	for (uint32_t i = 0; s && i < s->ngroups; i++)
		for (uint32_t j = 0; j < s->groups[i].n; j++)
			if (s->groups[i].slots[j].target == t)
				return true;
	return false;
}

/* The targets of old that are not in new left the service: in-flight
 * requests finish on them, nothing new pools. */
static void service_retire_targets(const struct route_service *old, const struct route_service *new)
{
	for (uint32_t i = 0; old && i < old->ngroups; i++) {
		for (uint32_t j = 0; j < old->groups[i].n; j++) {
			struct target *t = old->groups[i].slots[j].target;
			if (!t->removed && !service_has(new, t)) {
				t->removed = true;
				target_close_idle(t);
			}
		}
	}
}

/* ------------------------------------------------------------------ */
/* tables                                                              */

struct route_table *route_table_ref(struct route_table *rt)
{
	rt->refcount++;
	return rt;
}

struct route_table *route_table_unref(struct route_table *rt)
{
	if (!rt || --rt->refcount > 0)
		return NULL;
	for (size_t i = 0; i < rt->nservices; i++)
		route_service_unref(rt->services[i]);
	free(rt->services);
	if (rt->router && --rt->router->refcount == 0) {
		router_release(&rt->router->router);
		free(rt->router);
	}
	free(rt);
	return NULL;
}

static ssize_t table_find(const struct route_table *rt, const char *name)
{
	for (size_t i = 0; rt && i < rt->nservices; i++)
		if (!strcmp(rt->services[i]->name, name))
			return (ssize_t)i;
	return -1;
}

/* An empty table for n services sharing router (a new reference is taken;
 * NULL: none yet).  NULL on allocation failure. */
static struct route_table *table_new(size_t n, struct router_shared *router)
{
	struct route_table *rt = calloc(1, sizeof(*rt));

	if (!rt)
		return NULL;
	rt->refcount = 1;
	rt->services = calloc(n ? n : 1, sizeof(*rt->services));
	if (!rt->services) {
		free(rt);
		return NULL;
	}
	if (router) {
		router->refcount++;
		rt->router = router;
	}
	return rt;
}

/* Make nt the current table: targets that left their service are retired,
 * then one pointer store; the old table goes when its last request ends. */
static void table_publish(struct proxy *p, struct route_table *nt)
{
	struct route_table *old = p->routes;

	for (size_t i = 0; old && i < old->nservices; i++) {
		ssize_t j = table_find(nt, old->services[i]->name);
		const struct route_service *ns = j >= 0 ? nt->services[j] : NULL;
		if (ns != old->services[i])
			service_retire_targets(old->services[i], ns);
	}
	p->routes = nt; /* the switch */
	route_table_unref(old);
}

int proxy_routes_apply(struct proxy *p, const struct config *cfg)
{
	struct route_table *old = p->routes, *rt = table_new(cfg->nservices, NULL);

	if (!rt)
		return -ENOMEM;
	rt->router = calloc(1, sizeof(*rt->router));
	if (!rt->router)
		goto fail;
	rt->router->refcount = 1;
	if (router_build(&rt->router->router, cfg) < 0)
		goto fail;
	for (size_t i = 0; i < cfg->nservices; i++) {
		const struct config_service *cs = &cfg->services[i];
		ssize_t j = table_find(old, cs->name);
		struct route_service *os = j >= 0 ? old->services[j] : NULL;
		struct proxy_group spec = { .weight = 1, .targets = cs->targets, .ntargets = cs->ntargets };
		/* a managed service keeps the groups the deployer set: a reload
		 * changes neither its versions nor their weights */
		if (cs->run && os && os->managed)
			rt->services[i] = route_service_ref(os);
		else
			rt->services[i] = service_build(p, cs->name, cs->run != NULL, &spec, cs->run ? 0 : 1, os);
		if (!rt->services[i])
			goto fail;
		rt->nservices++;
	}
	table_publish(p, rt);
	return 0;
fail:
	route_table_unref(rt);
	return -ENOMEM;
}

int proxy_set_groups(struct proxy *p, const char *service, const struct proxy_group *groups, size_t n)
{
	struct route_table *old = p->routes, *rt;
	ssize_t idx = table_find(old, service);

	if (idx < 0)
		return -ENOENT;
	rt = table_new(old->nservices, old->router);
	if (!rt)
		return -ENOMEM;
	for (size_t i = 0; i < old->nservices; i++) {
		if ((ssize_t)i == idx)
			rt->services[i] = service_build(p, service, old->services[i]->managed, groups, n, old->services[i]);
		else
			rt->services[i] = route_service_ref(old->services[i]);
		if (!rt->services[i]) {
			route_table_unref(rt);
			return -ENOMEM;
		}
		rt->nservices++;
	}
	table_publish(p, rt);
	return 0;
}

struct route_service *proxy_route_service(struct proxy *p, const char *name)
{
	ssize_t i = table_find(p->routes, name);

	return i >= 0 ? p->routes->services[i] : NULL;
}

/* ------------------------------------------------------------------ */
/* picking                                                             */

int route_choose_wrr(struct route_service *s, int skip)
{
	struct route_group *best = NULL;
	int total = 0;

	for (uint32_t i = 0; i < s->ngroups; i++) {
		struct route_group *g = &s->groups[i];
		if (!g->weight || !g->n || (int)i == skip)
			continue;
		g->current += (int)g->weight;
		total += (int)g->weight;
		if (!best || g->current > best->current)
			best = g;
	}
	if (!best)
		return -1;
	best->current -= total;
	return (int)(best - s->groups);
}

int route_choose(struct route_service *s, struct route_request *rq)
{
	if (rq && s->steer) /* a canary split or several versions: nothing to read otherwise */
		return cohort_choose(s, rq);
	return route_choose_wrr(s, -1);
}

int route_follow(struct route_service *s, const char *version, int cohort, bool forced)
{
	const struct route_group *g = version ? group_find(s, version) : NULL;
	int i;

	if (g && g->n && (g->weight || forced))
		return (int)(g - s->groups);
	i = cohort_follow(s, cohort);
	return i >= 0 ? i : route_choose_wrr(s, -1);
}

static bool excluded(const struct target *t, struct target *const *exclude, size_t nexclude)
{
	for (size_t j = 0; j < nexclude; j++)
		if (exclude[j] == t)
			return true;
	return false;
}

/* Smooth weighted round-robin over g's targets not in exclude. */
static struct target *group_pick(struct route_group *g, struct target *const *exclude, size_t nexclude)
{
	struct target_slot *best = NULL;
	int total = 0;

	for (uint32_t i = 0; i < g->n; i++) {
		struct target_slot *slot = &g->slots[i];
		if (nexclude && excluded(slot->target, exclude, nexclude))
			continue;
		slot->current += slot->weight;
		total += slot->weight;
		if (!best || slot->current > best->current)
			best = slot;
	}
	if (!best)
		return NULL;
	best->current -= total;
	return target_ref(best->target);
}

struct target *route_pick(struct route_service *s, int group, struct target *const *exclude, size_t nexclude)
{
	struct target *t = NULL;

	if (group >= 0 && (uint32_t)group < s->ngroups)
		t = group_pick(&s->groups[group], exclude, nexclude);
	/* every target of the chosen group failed: another group that takes
	 * traffic, in order */
	for (uint32_t i = 0; !t && i < s->ngroups; i++)
		if ((int)i != group && s->groups[i].weight)
			t = group_pick(&s->groups[i], exclude, nexclude);
	return t;
}

bool route_has_target(const struct route_service *s, struct target *const *exclude, size_t nexclude)
{
	for (uint32_t i = 0; i < s->ngroups; i++) {
		const struct route_group *g = &s->groups[i];
		for (uint32_t j = 0; g->weight && j < g->n; j++)
			if (!excluded(g->slots[j].target, exclude, nexclude))
				return true;
	}
	return false;
}

int route_target_group(const struct route_service *s, const struct target *t)
{
	for (uint32_t i = 0; t && i < s->ngroups; i++)
		for (uint32_t j = 0; j < s->groups[i].n; j++)
			if (s->groups[i].slots[j].target == t)
				return (int)i;
	return -1;
}

int route_stable_group(const struct route_service *s, struct target *const *exclude, size_t nexclude)
{
	for (uint32_t i = 0; i < s->ngroups; i++) {
		const struct route_group *g = &s->groups[i];
		if (!g->weight || g->canary)
			continue;
		for (uint32_t j = 0; j < g->n; j++)
			if (!excluded(g->slots[j].target, exclude, nexclude))
				return (int)i;
	}
	return -1;
}

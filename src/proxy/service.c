/* service.c - services, their target sets and the routing snapshot.
 *
 * A service's target set is an immutable array replaced as a whole: the
 * swap is one pointer store on the loop thread, so the next request sees the
 * new set and a request in flight keeps the target it already holds.  This
 * is what the deploy engine uses to switch versions atomically.
 *
 * Targets are keyed by (service, address): a target present in the old and
 * the new set is the same object, so its pool of idle connections and its
 * metrics carry over.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "base/list.h"
#include "base/log.h"
#include "metrics/metrics.h"
#include "proxy/proxy.h"
#include "proxy/router.h"

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
	free(t);
	return NULL;
}

static struct target *target_find_or_new(struct proxy_service *s, const struct config_target *ct)
{
	struct proxy *p = s->proxy;
	struct target *t;

	for (size_t i = 0; i < p->ntargets; i++) {
		t = p->targets[i];
		if (t->service == s && !t->removed && !strcmp(t->addr_text, ct->addr.text))
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
	t->metrics = metrics_upstream_get(&p->metrics, s->name, ct->addr.text);
	if (!t->addr_text || !t->metrics) {
		free(t->addr_text);
		free(t);
		return NULL;
	}
	t->refcount = 1;
	t->sa = ct->addr.sa;
	t->salen = ct->addr.salen;
	t->service = s;
	t->proxy = p;
	list_init(&t->idle);
	p->targets[p->ntargets++] = t;
	return t;
}

static void target_set_free(struct target_set *set, struct target_set *keep)
{
	if (!set)
		return;
	for (uint32_t i = 0; i < set->n; i++) {
		struct target *t = set->slots[i].target;
		bool kept = false;
		for (uint32_t j = 0; keep && j < keep->n; j++)
			kept |= keep->slots[j].target == t;
		if (!kept) {
			/* gone from the service: in-flight requests finish, nothing new pools */
			t->removed = true;
			target_close_idle(t);
		}
		target_unref(t);
	}
	free(set);
}

int service_set_targets(struct proxy_service *s, const struct config_target *targets, size_t n)
{
	struct target_set *set = calloc(1, sizeof(*set) + n * sizeof(set->slots[0]));

	if (!set)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct target *t = target_find_or_new(s, &targets[i]);
		if (!t) {
			set->n = (uint32_t)i;
			target_set_free(set, s->set);
			return -ENOMEM;
		}
		set->slots[i].target = t;
		set->slots[i].weight = (int)targets[i].weight;
		set->total_weight += (int)targets[i].weight;
		/* carry the round-robin position over for targets that stay */
		for (uint32_t j = 0; s->set && j < s->set->n; j++)
			if (s->set->slots[j].target == t)
				set->slots[i].current = s->set->slots[j].current;
	}
	set->n = (uint32_t)n;
	struct target_set *old = s->set;
	s->set = set; /* the switch */
	target_set_free(old, set);
	return 0;
}

struct target *service_pick(struct proxy_service *s, struct target *const *exclude, size_t nexclude)
{
	struct target_set *set = s->set;
	struct target_slot *best = NULL;
	int total = 0;

	if (!set)
		return NULL;
	for (uint32_t i = 0; i < set->n; i++) {
		struct target_slot *slot = &set->slots[i];
		bool skip = false;
		for (size_t j = 0; j < nexclude; j++)
			skip |= exclude[j] == slot->target;
		if (skip)
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

bool service_has_target(const struct proxy_service *s, struct target *const *exclude, size_t nexclude)
{
	for (uint32_t i = 0; s->set && i < s->set->n; i++) {
		bool excluded = false;
		for (size_t j = 0; j < nexclude; j++)
			excluded |= exclude[j] == s->set->slots[i].target;
		if (!excluded)
			return true;
	}
	return false;
}

static struct proxy_service *service_new(struct proxy *p, const char *name)
{
	struct proxy_service *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->name = strdup(name);
	if (!s->name) {
		free(s);
		return NULL;
	}
	s->refcount = 1;
	s->proxy = p;
	return s;
}

struct proxy_service *service_ref(struct proxy_service *s)
{
	s->refcount++;
	return s;
}

struct proxy_service *service_unref(struct proxy_service *s)
{
	if (!s || --s->refcount > 0)
		return NULL;
	target_set_free(s->set, NULL);
	free(s->name);
	free(s);
	return NULL;
}

struct runtime *runtime_ref(struct runtime *rt)
{
	rt->refcount++;
	return rt;
}

struct runtime *runtime_unref(struct runtime *rt)
{
	if (!rt || --rt->refcount > 0)
		return NULL;
	for (size_t i = 0; i < rt->nservices; i++)
		service_unref(rt->services[i]);
	free(rt->services);
	router_release(&rt->router);
	free(rt);
	return NULL;
}

struct proxy_service *proxy_service_find(struct proxy *p, const char *name)
{
	struct runtime *rt = p->runtime;

	for (size_t i = 0; rt && i < rt->nservices; i++)
		if (!strcmp(rt->services[i]->name, name))
			return rt->services[i];
	return NULL;
}

struct runtime *runtime_build(struct proxy *p, const struct config *cfg)
{
	struct runtime *rt = calloc(1, sizeof(*rt));

	if (!rt)
		return NULL;
	rt->refcount = 1;
	rt->services = calloc(cfg->nservices ? cfg->nservices : 1, sizeof(*rt->services));
	if (!rt->services || router_build(&rt->router, cfg) < 0)
		goto fail;
	for (size_t i = 0; i < cfg->nservices; i++) {
		const struct config_service *cs = &cfg->services[i];
		/* keep the service object across reloads: its targets, pools and
		 * round-robin state carry over */
		struct proxy_service *s = proxy_service_find(p, cs->name);
		s = s ? service_ref(s) : service_new(p, cs->name);
		if (!s)
			goto fail;
		rt->services[rt->nservices++] = s;
	}
	/* targets last: nothing above can fail half-way through a swap.  A
	 * managed service (`run`) gets its targets from the deploy engine: a
	 * reload keeps whatever it routes to now. */
	for (size_t i = 0; i < cfg->nservices; i++) {
		if (cfg->services[i].run && rt->services[i]->set)
			continue;
		if (service_set_targets(rt->services[i], cfg->services[i].targets, cfg->services[i].ntargets) < 0)
			goto fail;
	}
	return rt;
fail:
	runtime_unref(rt);
	return NULL;
}

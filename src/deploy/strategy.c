/* strategy.c - the strategies: each turns a deploy (the service's
 * configuration, the version live, the version to ship) into a plan of
 * steps that the engine runs (plan.h; how to add one: the end of
 * docs/internals/deploy.md).  Pure: no I/O, no state.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "deploy/plan.h"

/* One strategy: its name in the configuration and its plan. */
struct strategy {
	enum config_strategy kind;
	const char *name;
	void (*plan)(const struct config_service *cs, bool live, struct plan *out);
};

static uint32_t instances_of(const struct config_service *cs)
{
	return cs->instances ? cs->instances : 1;
}

/* Start the new version beside the old one (all its instances healthy),
 * smoke-test it, give it all the traffic at once and watch it; the old one
 * stays warm for an instant rollback. */
static void plan_blue_green(const struct config_service *cs, bool live, struct plan *out)
{
	out->steps[0] = (struct plan_step){ .old_instances = PLAN_KEEP,
					    .new_instances = instances_of(cs),
					    .smoke = true,
					    .old_weight = 0,
					    .new_weight = 100,
					    .hold_ms = cs->deploy.watch_ms,
					    .analyse = cs->deploy.watch_ms > 0,
					    .final_watch = true };
	out->nsteps = 1;
	out->keep_old_warm = live;
}

/* Stop the old version first (requests fail until the new one is
 * healthy: for development machines), then as blue-green without the
 * warm old version.  The watch stays: a new version that fails it is
 * replaced by the old one, started again. */
static void plan_recreate(const struct config_service *cs, bool live, struct plan *out)
{
	plan_blue_green(cs, live, out);
	out->steps[0].old_instances = live ? 0 : PLAN_KEEP;
	out->keep_old_warm = false;
}

/* The new version beside the old one, all its instances healthy, then
 * its share of new requests in the configured steps, each held and
 * analysed against the old version over the same window; the last step
 * (100 %) is watched as blue-green's switch is.  A first deploy has
 * nothing to compare with: it is a blue-green one. */
static void plan_canary(const struct config_service *cs, bool live, struct plan *out)
{
	const struct config_deploy *d = &cs->deploy;

	if (!live) {
		plan_blue_green(cs, live, out);
		return;
	}
	for (size_t i = 0; i < d->nsteps && i < PLAN_STEPS_MAX; i++) {
		bool last = i + 1 == d->nsteps;
		uint64_t hold = last && !d->steps[i].hold_ms ? d->watch_ms : d->steps[i].hold_ms;
		out->steps[i] = (struct plan_step){ .old_instances = PLAN_KEEP,
						    .new_instances = instances_of(cs),
						    .smoke = i == 0,
						    .old_weight = 100 - d->steps[i].weight,
						    .new_weight = d->steps[i].weight,
						    .hold_ms = hold,
						    .analyse = hold > 0,
						    .final_watch = last };
	}
	out->nsteps = d->nsteps;
	out->keep_old_warm = true;
}

/* An amount of instances out of n: a number, or a percentage rounded up
 * (surge) or down (unavailable), as Kubernetes does. */
static uint32_t amount_of(const struct config_amount *a, uint32_t n, bool round_up)
{
	if (!a->percent)
		return a->value;
	return (uint32_t)(((uint64_t)a->value * n + (round_up ? 99 : 0)) / 100);
}

/* Batches: each first stops old instances as far as max_unavailable
 * allows (the new ones of the batches before count as available), then
 * starts new ones up to max_surge above the count, waits until they are
 * healthy (and min_ready), gives each version its share of the traffic
 * by instances, and holds (analysed) for batch_hold.  Both amounts
 * resolving to 0 (a percentage of few instances) leaves unavailable 1, as
 * Kubernetes does.  A first deploy starts every instance at once. */
static void plan_rolling(const struct config_service *cs, bool live, struct plan *out)
{
	const struct config_deploy *d = &cs->deploy;
	uint32_t n = instances_of(cs), surge = amount_of(&d->max_surge, n, true),
		 unavailable = amount_of(&d->max_unavailable, n, false), old = n, fresh = 0;

	if (!live) {
		plan_blue_green(cs, live, out);
		out->keep_old_warm = false;
		return;
	}
	if (!surge && !unavailable)
		unavailable = 1;
	if (unavailable > n)
		unavailable = n;
	out->nsteps = 0;
	while ((old > 0 || fresh < n) && out->nsteps < PLAN_STEPS_MAX) {
		uint32_t keep = fresh + unavailable >= n ? 0 : n - unavailable - fresh;
		if (keep > old)
			keep = old;
		uint32_t want = n + surge - keep < n ? n + surge - keep : n;
		if (want < fresh)
			want = fresh;
		if (keep == old && want == fresh) /* cannot move (never, with surge or unavailable > 0) */
			break;
		bool last = keep == 0 && want == n;
		uint64_t hold = last ? d->watch_ms : d->batch_hold_ms;
		size_t i = out->nsteps++;
		out->steps[i] = (struct plan_step){
			.old_instances = keep,
			.new_instances = want,
			.smoke = i == 0,
			.old_weight = 100 - (uint32_t)((100ull * want + (keep + want) / 2) / (keep + want)),
			.new_weight = (uint32_t)((100ull * want + (keep + want) / 2) / (keep + want)),
			.hold_ms = hold,
			.analyse = hold > 0,
			.final_watch = last,
		};
		old = keep;
		fresh = want;
	}
	out->keep_old_warm = false;
	out->rolling = true;
	out->min_ready_ms = d->min_ready_ms;
	out->min_available = n - unavailable;
}

static const struct strategy strategies[] = {
	{ CONFIG_STRATEGY_BLUE_GREEN, "blue-green", plan_blue_green },
	{ CONFIG_STRATEGY_RECREATE, "recreate", plan_recreate },
	{ CONFIG_STRATEGY_CANARY, "canary", plan_canary },
	{ CONFIG_STRATEGY_ROLLING, "rolling", plan_rolling },
};

int plan_check(const struct plan *p, char *err, size_t errlen)
{
	const char *strategy = p->strategy;

	if (p->nsteps < 1 || p->nsteps > PLAN_STEPS_MAX) {
		snprintf(err, errlen, "strategy %s: a plan of %zu steps (1..%d)", strategy, p->nsteps, PLAN_STEPS_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < p->nsteps; i++) {
		const struct plan_step *st = &p->steps[i];
		if (!st->new_instances || st->old_weight + st->new_weight != 100) {
			snprintf(err, errlen, "strategy %s: step %zu has %u new instances and weights %u + %u (not 100)",
				 strategy, i + 1, st->new_instances, st->old_weight, st->new_weight);
			return -EINVAL;
		}
	}
	if (p->steps[p->nsteps - 1].new_weight != 100) {
		snprintf(err, errlen, "strategy %s: the last step leaves the new version %u %% of the traffic", strategy,
			 p->steps[p->nsteps - 1].new_weight);
		return -EINVAL;
	}
	return 0;
}

int plan_build(const struct config_service *cs, const char *live, const char *version, bool rollback,
	       struct plan *out, char *err, size_t errlen)
{
	const struct strategy *s = NULL;
	struct plan p = { 0 };
	bool has_live = live && *live;

	(void)version; /* the same plan for any version, for now */
	for (size_t i = 0; i < sizeof(strategies) / sizeof(strategies[0]); i++)
		if (strategies[i].kind == cs->deploy.strategy)
			s = &strategies[i];
	if (!s) {
		snprintf(err, errlen, "service %s: deploy strategy %d has no plan", cs->name, (int)cs->deploy.strategy);
		return -EINVAL;
	}
	snprintf(p.strategy, sizeof(p.strategy), "%s", s->name);
	s->plan(cs, has_live, &p);
	if (plan_check(&p, err, errlen) < 0)
		return -EINVAL;
	if (rollback) {
		/* back to a version known good before: nothing older to watch it
		 * against, and the version left is the one rolled back from */
		for (size_t i = 0; i < p.nsteps; i++) {
			p.steps[i].hold_ms = 0;
			p.steps[i].analyse = false;
		}
		p.keep_old_warm = false;
		snprintf(p.strategy, sizeof(p.strategy), "rollback");
	}
	*out = p;
	return 0;
}

bool plan_stops_old(const struct plan *plan)
{
	for (size_t i = 0; i < plan->nsteps; i++)
		if (plan->steps[i].old_instances == 0)
			return true;
	return false;
}

const char *plan_strategy_name(enum config_strategy kind)
{
	for (size_t i = 0; i < sizeof(strategies) / sizeof(strategies[0]); i++)
		if (strategies[i].kind == kind)
			return strategies[i].name;
	return "?";
}

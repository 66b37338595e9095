/* plan.h - strategies: a deploy's plan from the service's configuration
 * (types in plan-t.h; the strategies in strategy.c).  Pure functions: no
 * I/O, no allocation, no logging.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include "config/config-t.h"
#include "deploy/plan-t.h"

/* The plan of a deploy of service cs to VERSION, LIVE being the version
 * that serves now (NULL or "": none, a first deploy).  rollback: a deploy
 * of the previous version back (cutover rollback once its window is over,
 * or cutover restarting a version): no watch (nothing older to fall back
 * to) and the version left is not kept warm.  The service's strategy
 * decides the rest (deploy.strategy).  Returns 0 with *out set, or -EINVAL
 * (a sentence in err; *out untouched) for a strategy with no plan. */
int plan_build(const struct config_service *cs, const char *live, const char *version, bool rollback,
	       struct plan *out, char *err, size_t errlen);

/* What the engine relies on in a plan: 1..PLAN_STEPS_MAX steps, each
 * with at least one instance of the new version and weights adding up to
 * 100, the last giving the new version 100.  Returns 0, or -EINVAL with a
 * sentence naming the strategy and the step in err. */
int plan_check(const struct plan *p, char *err, size_t errlen);

/* Whether a step of plan stops every instance of the old version (so that
 * an abort must start it again to get back to the safe state). */
bool plan_stops_old(const struct plan *plan);


/* The name of a strategy, as in the configuration ("?" if unknown). */
const char *plan_strategy_name(enum config_strategy kind);

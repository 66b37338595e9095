/* rolling.c - what a rolling deploy adds to the plan runner (engine.c):
 * a new instance takes traffic only once it has stayed healthy for
 * min_ready, and an abort brings the old version's instances back before
 * the new ones go, so that at no time fewer than plan.min_available
 * healthy instances take requests (docs/internals/deploy.md, "Rolling").
 */
#include <stdio.h>
#include <string.h>
#include "base/log.h"
#include "base/util.h"
#include "deploy/deploy-internal.h"
#include "deploy/health.h"
#include "loop/loop.h"
#include "proxy/proxy-t.h"

/* Instances of g that take requests now and are not failing their check. */
static size_t routed_healthy(const struct group *g)
{
	size_t n = 0;

	for (size_t i = 0; g && i < g->n; i++)
		if (slot_routed(g->slots[i]) && g->slots[i]->health != HEALTH_UNHEALTHY)
			n++;
	return n;
}

/* ------------------------------------------------------------------ */
/* min_ready                                                           */

static void min_ready_over(struct loop *loop, struct loop_timer *t)
{
	struct deployment *dep = container_of(t, struct deployment, timer);
	struct group *g = dep->green;

	for (size_t i = 0; g && i < g->n; i++) {
		struct slot *s = g->slots[i];
		if (s->health != HEALTH_HEALTHY) {
			dep_finish(dep, PH_FAILED, "%s %s on port %u did not stay healthy for min_ready (%s)", dep->service,
				   dep->version, s->port, DURATION_TEXT(dep->plan.min_ready_ms));
			return;
		}
	}
	for (size_t i = 0; g && i < g->n; i++)
		g->slots[i]->ready = true;
	dep->ready_at_ms = 0;
	step_ready(dep);
}

bool rolling_wait_ready(struct deployment *dep)
{
	struct loop *loop = dep->d->p->loop;
	struct group *g = dep->green;
	bool waiting = false;

	if (!dep->plan.rolling || !dep->plan.min_ready_ms || !g)
		return false;
	for (size_t i = 0; i < g->n; i++)
		if (!g->slots[i]->ready)
			waiting = true;
	if (!waiting)
		return false;
	dep->ready_at_ms = loop->now_ms + dep->plan.min_ready_ms;
	loop_timer_set(loop, &dep->timer, dep->ready_at_ms, min_ready_over);
	return true;
}

bool rolling_holds_ready(const struct deployment *dep, const struct slot *s)
{
	return dep && dep->plan.rolling && dep->plan.min_ready_ms && s->g == dep->green && dep->phase == PH_HEALTH;
}

/* ------------------------------------------------------------------ */
/* abort                                                               */

/* Enough of the old version takes requests again: all of them go there,
 * the new version's instances drain and stop. */
static void rolling_back(struct deployment *dep)
{
	struct managed *m = dep->m;
	struct group *green = dep->green;
	size_t n = routed_healthy(m->live);

	dep->green = NULL;
	m->live->weight = 100;
	route_publish(m);
	dep->routed_back = m->live;
	dep_finish(dep, PH_ROLLED_BACK, "%s; traffic back on %s (%zu instance%s)", dep->abort_why, m->live->version, n,
		   n == 1 ? "" : "s");
	group_retire(green);
}

void rolling_abort_check(struct deployment *dep)
{
	struct managed *m = dep->m;

	if (!dep->aborting || dep->phase >= PH_DONE || !m->live)
		return;
	if (routed_healthy(m->live) >= dep->plan.min_available || !routed_healthy(dep->green))
		rolling_back(dep);
}

static void abort_timeout(struct loop *loop, struct loop_timer *t)
{
	struct deployment *dep = container_of(t, struct deployment, timer);
	struct managed *m = dep->m;

	struct group *old = m->live, *green = dep->green;

	if (routed_healthy(old)) {
		/* some capacity back: better than a version that failed */
		rolling_back(dep);
		return;
	}
	/* nothing of the old version came back: the new one keeps serving
	 * rather than nothing */
	dep->green = NULL;
	green->weight = 100;
	m->live = green;
	route_publish(m);
	dep->routed_back = green;
	dep_finish(dep, PH_FAILED, "%s; %s could not be started again within the deploy timeout: traffic stays on %s",
		   dep->abort_why, old->version, green->version);
	group_retire(old);
}

bool rolling_abort(struct deployment *dep, const char *why)
{
	struct managed *m = dep->m;
	const struct config_service *cs = deployer_config(dep->d, dep->service);
	uint32_t want = cs && cs->instances ? cs->instances : 1;
	struct loop *loop = dep->d->p->loop;
	char err[256], detail[400];

	if (dep->aborting)
		return true;
	dep->aborting = true;
	snprintf(dep->abort_why, sizeof(dep->abort_why), "%s", why);
	loop_timer_cancel(loop, &dep->timer);
	if (routed_healthy(m->live) >= dep->plan.min_available || !routed_healthy(dep->green)) {
		rolling_back(dep);
	} else {
		snprintf(detail, sizeof(detail), "%s; %zu of %u instances of %s take requests: %s keeps its share until "
			 "%u of them are healthy again", why, routed_healthy(m->live), want, m->live->version, dep->version,
			 dep->plan.min_available);
		dep_event_as(dep, "aborting", detail);
		loop_timer_set(loop, &dep->timer, loop->now_ms + (cs ? cs->deploy.timeout_ms : 60000), abort_timeout);
	}
	/* the old version back to its count: new processes, health-checked,
	 * routed as each becomes healthy (engine_slot_health) */
	if (cs && m->live && m->live->n < want && group_start(m->live, cs, want, err, sizeof(err)) < 0)
		log_error("%s: cannot start %s again: %s", dep->service, m->live->version, err);
	return true;
}

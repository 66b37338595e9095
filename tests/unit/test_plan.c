/* test_plan.c - unit tests of the strategies (src/deploy/strategy.c): what
 * plan a deploy gets from its service's configuration, the version live
 * and whether it is a rollback.  Pure functions: tables of cases, each
 * with the whole plan expected, step by step.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "config/config-t.h"
#include "deploy/plan.h"

#define K PLAN_KEEP

struct plan_case {
	const char *name;
	/* the service */
	enum config_strategy strategy;
	uint32_t instances;             /* 0: as a configuration without the key reads (1) */
	uint64_t watch_ms;
	/* the deploy */
	const char *live;
	bool rollback;
	/* the plan expected */
	const char *want_strategy;
	bool want_keep_old_warm;
	bool want_stops_old;
	size_t want_nsteps;
	struct plan_step want[PLAN_STEPS_MAX];
};

static const struct plan_case cases[] = {
	{ "blue-green, a first deploy: nothing to keep warm",
	  CONFIG_STRATEGY_BLUE_GREEN, 1, 60000, NULL, false,
	  "blue-green", false, false, 1,
	  { { K, 1, true, 0, 100, 60000, true, true } } },
	{ "blue-green over a live version: the old one stays warm",
	  CONFIG_STRATEGY_BLUE_GREEN, 1, 60000, "1.0.0", false,
	  "blue-green", true, false, 1,
	  { { K, 1, true, 0, 100, 60000, true, true } } },
	{ "blue-green, instances missing from the configuration: one",
	  CONFIG_STRATEGY_BLUE_GREEN, 0, 3000, "1.0.0", false,
	  "blue-green", true, false, 1,
	  { { K, 1, true, 0, 100, 3000, true, true } } },
	{ "blue-green, instances: 3: all three before the switch",
	  CONFIG_STRATEGY_BLUE_GREEN, 3, 3000, "1.0.0", false,
	  "blue-green", true, false, 1,
	  { { K, 3, true, 0, 100, 3000, true, true } } },
	{ "blue-green, watch: 0s: no hold, no analysis",
	  CONFIG_STRATEGY_BLUE_GREEN, 2, 0, "1.0.0", false,
	  "blue-green", true, false, 1,
	  { { K, 2, true, 0, 100, 0, false, true } } },
	{ "blue-green rollback: no watch, the version left not kept",
	  CONFIG_STRATEGY_BLUE_GREEN, 1, 60000, "1.1.0", true,
	  "rollback", false, false, 1,
	  { { K, 1, true, 0, 100, 0, false, true } } },
	{ "blue-green rollback with instances: 4",
	  CONFIG_STRATEGY_BLUE_GREEN, 4, 60000, "1.1.0", true,
	  "rollback", false, false, 1,
	  { { K, 4, true, 0, 100, 0, false, true } } },
	{ "recreate over a live version: stopped first, nothing warm",
	  CONFIG_STRATEGY_RECREATE, 1, 60000, "1.0.0", false,
	  "recreate", false, true, 1,
	  { { 0, 1, true, 0, 100, 60000, true, true } } },
	{ "recreate, a first deploy: nothing to stop",
	  CONFIG_STRATEGY_RECREATE, 1, 60000, NULL, false,
	  "recreate", false, false, 1,
	  { { K, 1, true, 0, 100, 60000, true, true } } },
	{ "recreate, the live version given as \"\": a first deploy",
	  CONFIG_STRATEGY_RECREATE, 2, 5000, "", false,
	  "recreate", false, false, 1,
	  { { K, 2, true, 0, 100, 5000, true, true } } },
	{ "recreate, instances: 3",
	  CONFIG_STRATEGY_RECREATE, 3, 5000, "1.0.0", false,
	  "recreate", false, true, 1,
	  { { 0, 3, true, 0, 100, 5000, true, true } } },
	{ "recreate rollback: stops the version rolled back from, no watch",
	  CONFIG_STRATEGY_RECREATE, 1, 60000, "1.1.0", true,
	  "rollback", false, true, 1,
	  { { 0, 1, true, 0, 100, 0, false, true } } },
	{ "canary over a live version: the steps, the last one watched",
	  CONFIG_STRATEGY_CANARY, 2, 60000, "1.0.0", false,
	  "canary", true, false, 3,
	  { { K, 2, true, 95, 5, 30000, true, false }, { K, 2, false, 50, 50, 60000, true, false },
	    { K, 2, false, 0, 100, 60000, true, true } } },
	{ "canary, a first deploy: as blue-green",
	  CONFIG_STRATEGY_CANARY, 1, 60000, NULL, false,
	  "canary", false, false, 1,
	  { { K, 1, true, 0, 100, 60000, true, true } } },
	{ "canary rollback: one step, no hold",
	  CONFIG_STRATEGY_CANARY, 1, 60000, "1.1.0", true,
	  "rollback", false, false, 3,
	  { { K, 1, true, 95, 5, 0, false, false }, { K, 1, false, 50, 50, 0, false, false },
	    { K, 1, false, 0, 100, 0, false, true } } },
	{ "rolling, 4 instances, max_surge 25 %, max_unavailable 0: one more at a time",
	  CONFIG_STRATEGY_ROLLING, 4, 60000, "1.0.0", false,
	  "rolling", false, true, 5,
	  { { 4, 1, true, 80, 20, 30000, true, false }, { 3, 2, false, 60, 40, 30000, true, false },
	    { 2, 3, false, 40, 60, 30000, true, false }, { 1, 4, false, 20, 80, 30000, true, false },
	    { 0, 4, false, 0, 100, 60000, true, true } } },
};

static void test_plans(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct plan_case *c = &cases[i];
		struct config_service cs = { .name = "shop" };
		struct plan p;
		char err[128] = "";
		cs.deploy.strategy = c->strategy;
		cs.deploy.watch_ms = c->watch_ms;
		cs.instances = c->instances;
		cs.deploy.steps[0] = (struct config_canary_step){ 5, 30000 };
		cs.deploy.steps[1] = (struct config_canary_step){ 50, 60000 };
		cs.deploy.steps[2] = (struct config_canary_step){ 100, 0 };
		cs.deploy.nsteps = 3;
		cs.deploy.max_surge = (struct config_amount){ 25, true };
		cs.deploy.batch_hold_ms = 30000;
		memset(&p, 0xa5, sizeof(p)); /* every field must be set */
		printf("case %zu: %s\n", i, c->name);
		assert_int_equal(plan_build(&cs, c->live, "2.0.0", c->rollback, &p, err, sizeof(err)), 0);
		assert_string_equal(err, "");
		assert_string_equal(p.strategy, c->want_strategy);
		assert_int_equal(p.keep_old_warm, c->want_keep_old_warm);
		assert_int_equal(plan_stops_old(&p), c->want_stops_old);
		assert_int_equal(p.nsteps, c->want_nsteps);
		for (size_t s = 0; s < c->want_nsteps; s++) {
			const struct plan_step *got = &p.steps[s], *want = &c->want[s];
			assert_int_equal(got->old_instances, want->old_instances);
			assert_int_equal(got->new_instances, want->new_instances);
			assert_int_equal(got->smoke, want->smoke);
			assert_int_equal(got->old_weight, want->old_weight);
			assert_int_equal(got->new_weight, want->new_weight);
			assert_int_equal(got->old_weight + got->new_weight, 100);
			assert_int_equal(got->hold_ms, want->hold_ms);
			assert_int_equal(got->analyse, want->analyse);
			assert_int_equal(got->final_watch, want->final_watch);
		}
		/* the last step gives the new version all the traffic */
		assert_int_equal(p.steps[p.nsteps - 1].new_weight, 100);
	}
}

/* A strategy the configuration does not know (a newer enum value, or a
 * corrupt one): refused with a sentence, the plan untouched. */
static void test_unknown_strategy(void **state)
{
	struct config_service cs = { .name = "shop" };
	struct plan p, before;
	char err[128] = "";

	(void)state;
	cs.deploy.strategy = (enum config_strategy)77;
	memset(&p, 0x5a, sizeof(p));
	before = p;
	assert_int_equal(plan_build(&cs, "1.0.0", "2.0.0", false, &p, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "shop"));
	assert_non_null(strstr(err, "77"));
	assert_memory_equal(&p, &before, sizeof(p));
}

static void test_strategy_names(void **state)
{
	static const struct {
		enum config_strategy kind;
		const char *name;
	} names[] = {
		{ CONFIG_STRATEGY_BLUE_GREEN, "blue-green" },
		{ CONFIG_STRATEGY_RECREATE, "recreate" },
		{ (enum config_strategy)77, "?" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		assert_string_equal(plan_strategy_name(names[i].kind), names[i].name);
}

/* plan_stops_old over hand-made plans: any step with no old instance. */
static void test_stops_old(void **state)
{
	static const struct {
		uint32_t old[3];
		size_t n;
		bool want;
	} cases2[] = {
		{ { K }, 1, false },
		{ { 0 }, 1, true },
		{ { 2, 1 }, 2, false },
		{ { 2, 1, 0 }, 3, true },
		{ { K, 0, K }, 3, true },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases2) / sizeof(cases2[0]); i++) {
		struct plan p = { .nsteps = cases2[i].n };
		for (size_t s = 0; s < cases2[i].n; s++)
			p.steps[s].old_instances = cases2[i].old[s];
		assert_int_equal(plan_stops_old(&p), cases2[i].want);
	}
}

/* plan_check over hand-made plans, as a new strategy could build them. */
static void test_check(void **state)
{
	static const struct {
		const char *name;
		size_t n;
		struct plan_step steps[3];
		const char *want_err;   /* NULL: accepted */
	} checks[] = {
		{ "blue-green", 1, { { K, 1, true, 0, 100, 0, false, false } }, NULL },
		{ "a canary", 3,
		  { { K, 1, false, 95, 5, 1000, true, false }, { K, 1, false, 50, 50, 1000, true, false }, { K, 1, false, 0, 100, 0, false, false } },
		  NULL },
		{ "no step", 0, { { 0 } }, "a plan of 0 steps" },
		{ "too many steps", PLAN_STEPS_MAX + 1, { { 0 } }, "a plan of 73 steps" },
		{ "no new instance", 1, { { K, 0, false, 0, 100, 0, false, false } }, "step 1 has 0 new instances" },
		{ "weights over 100", 2, { { K, 1, false, 90, 20, 0, false, false }, { K, 1, false, 0, 100, 0, false, false } },
		  "step 1 has 1 new instances and weights 90 + 20" },
		{ "ends before 100 %", 1, { { K, 1, false, 50, 50, 0, false, false } }, "leaves the new version 50 %" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
		struct plan p = { .strategy = "test", .nsteps = checks[i].n };
		char err[160] = "";
		memcpy(p.steps, checks[i].steps, sizeof(checks[i].steps));
		printf("check %zu: %s\n", i, checks[i].name);
		if (!checks[i].want_err) {
			assert_int_equal(plan_check(&p, err, sizeof(err)), 0);
			continue;
		}
		assert_int_equal(plan_check(&p, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "strategy test"));
		assert_non_null(strstr(err, checks[i].want_err));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plans),
		cmocka_unit_test(test_unknown_strategy),
		cmocka_unit_test(test_strategy_names),
		cmocka_unit_test(test_stops_old),
		cmocka_unit_test(test_check),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* plan-t.h - a deploy plan: what a strategy (strategy.c) makes of a
 * deploy, and what the engine (engine.c) runs, step by step.
 *
 * Two versions take part: the old one (live when the deploy starts; none
 * for a first deploy) and the new one.  Each step first brings the
 * instance counts to the step's (old ones stopped first, then new ones
 * started and health-checked), runs the smoke command if the step asks,
 * then sets the weights of the two versions at the proxy, and holds them
 * for hold_ms, judging the new version all along if the step analyses.
 * A plan ends with the new version live; an abort goes back to the safe
 * state: all traffic on the old version.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PLAN_STEPS_MAX 72          /* a rolling deploy of 64 instances one at a time: 65 */
#define PLAN_KEEP UINT32_MAX            /* an instance count: as many as run now */

struct plan_step {
	uint32_t old_instances;         /* the old version's instances in this step (PLAN_KEEP: unchanged) */
	uint32_t new_instances;         /* the new version's, started and healthy before the weights */
	bool smoke;                     /* run deploy.smoke against the new version before the weights */
	uint32_t old_weight, new_weight; /* shares of new requests, in percent (they add up to 100) */
	uint64_t hold_ms;               /* how long the weights stay before the next step (0: go on) */
	bool analyse;                   /* judge the new version during the hold (deploy.max_error_rate...) */
	bool final_watch;               /* the new version alone after the switch: judged against the old one's
					 * window just before it (blue-green's watch, a canary's 100 % step) */
};

struct plan {
	char strategy[16];              /* as recorded in the history: "blue-green", "recreate", "rollback" */
	struct plan_step steps[PLAN_STEPS_MAX];
	size_t nsteps;                  /* 1..PLAN_STEPS_MAX */
	bool keep_old_warm;             /* at the end, the old version stays warm for deploy.rollback_window */
	bool rolling;                   /* instances replaced in batches: the old version's group lives on while
					 * it shrinks, an abort starts its instances again before the new ones go,
					 * and new instances take traffic after min_ready_ms */
	uint64_t min_ready_ms;          /* rolling: healthy this long before an instance takes traffic */
	uint32_t min_available;         /* rolling: healthy routed instances never fewer than this */
};

/* health.h - active HTTP health checks of one service instance (see
 * health-t.h and docs/internals/health.md).
 *
 * Lifetime: health_start() allocates a check and starts probing at once.
 * It ends in exactly one of two ways:
 *   - health_stop(hc) while the loop runs (from any loop callback, the
 *     check's own health_cb included): probing stops at once and no
 *     callback follows; the memory is freed by a zero-delay loop timer,
 *     after every event of the current iteration has been dispatched.
 *   - health_free(hc) when no loop callback is on the stack (shutdown, after
 *     loop_run() returned): everything is released before it returns.
 * In both cases hc must not be used afterwards.
 */
#pragma once
#include "deploy/health-t.h"

/* Validate spec and start checking: the first probe starts on the next loop
 * iteration, then one every spec->interval_ms.  cb (may be NULL) is called
 * on every change of state with data.
 * Returns 0 and *ret, or -EINVAL (bad spec: path, host, timings, thresholds,
 * address family) or -ENOMEM; *ret is untouched on failure. */
int health_start(struct loop *loop, const struct health_spec *spec, health_cb cb, void *data,
		 struct health_check **ret);

/* Stop from inside the loop; the memory goes at the end of this iteration
 * (see above).  Accepts NULL; a second call on the same check before it is
 * reaped is a no-op. */
void health_stop(struct health_check *hc);

/* Stop and free at once.  Must not be called from a loop callback (an event
 * for the check's socket may still be queued in the loop's current batch),
 * and must come before loop_release().  Accepts NULL, returns NULL. */
struct health_check *health_free(struct health_check *hc);

enum health_state health_state(const struct health_check *hc);
const struct health_stats *health_stats(const struct health_check *hc);

/* "unknown", "healthy", "unhealthy". */
const char *health_state_name(enum health_state state);

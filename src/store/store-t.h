/* store-t.h - types of the content-addressed release store (store.h).
 *
 * A release is recorded as a struct state_release (state-t.h): service,
 * version, SHA-256 digest, the read-only release directory
 * STORE/SERVICE/DIGEST and its size.
 */
#pragma once
#include <stdbool.h>
#include "state/state-t.h"

#define STORE_SERVICE_MAX STATE_SERVICE_MAX /* [a-z0-9][a-z0-9_-]{0,62} */
#define STORE_VERSION_MAX STATE_VERSION_MAX /* semver text up to 127 bytes */
#define STORE_DIGEST_HEX STATE_DIGEST_HEX
#define STORE_MAX_ENTRIES 1000000           /* files + directories + symlinks in one release */
#define STORE_MAX_DEPTH 128                 /* directory nesting */

/* What store_add() did. */
struct store_result {
	struct state_release release; /* the recorded row (path owned; store_result_clear) */
	bool existed;                 /* same version with the same digest was already there */
};

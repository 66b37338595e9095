/* release-t.h - types of the content-addressed release store (release.h).
 *
 * A release is recorded as a struct state_release (state-t.h): service,
 * version, SHA-256 digest, the read-only release directory
 * STORE/SERVICE/DIGEST and its size.
 */
#pragma once
#include <stdbool.h>
#include "state/state-t.h"

#define RELEASE_SERVICE_MAX STATE_SERVICE_MAX /* [a-z0-9][a-z0-9_-]{0,62} */
#define RELEASE_VERSION_MAX STATE_VERSION_MAX /* semver text up to 127 bytes */
#define RELEASE_DIGEST_HEX STATE_DIGEST_HEX
#define RELEASE_MAX_ENTRIES 1000000           /* files + directories + symlinks in one release */
#define RELEASE_MAX_DEPTH 128                 /* directory nesting */

/* What release_add() did. */
struct release_result {
	struct state_release release; /* the recorded row (path owned; release_result_clear) */
	bool existed;                 /* same version with the same digest was already there */
};

/* proof-t.h - a signed proof of what ran in an environment (proof.h): the
 * version and digest of a service live there, whether it was healthy, and
 * since when it has been live after passing its analysis, as the daemon of
 * that environment states it and signs it with its state's key.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "state/state-t.h"

#define PROOF_FORMAT "cutover-proof-v1"
#define PROOF_KEY_TEXT_MAX 64          /* "ed25519:" and 32 bytes in base64 (44 characters) */
#define PROOF_SIGNATURE_TEXT_MAX 96    /* 64 bytes in base64: 88 characters */
#define PROOF_CANONICAL_MAX 1024       /* the signed text (proof_serialize) fits in this */

struct proof {
	char env[STATE_ENV_MAX + 1];       /* the environment of the daemon that signed it; "": none */
	char service[STATE_SERVICE_MAX + 1];
	char version[STATE_VERSION_MAX + 1];
	char digest[STATE_DIGEST_HEX + 1]; /* the release live there, SHA-256 in lower-case hex */
	int64_t live_since;                /* Unix ms: live since then, its deployment done (analysis
					    * passed); 0: live but not through its analysis yet */
	bool healthy;                      /* every instance of it healthy when exported */
	int64_t exported_at;               /* Unix ms, the signer's clock (as live_since) */
	char key[PROOF_KEY_TEXT_MAX + 1];  /* the signer's public key, "ed25519:BASE64" */
	char signature[PROOF_SIGNATURE_TEXT_MAX + 1]; /* Ed25519 over proof_serialize(), base64 */
};

/* A state's signing key (STATE_DIR/proof.key); opaque, its secret half in
 * locked memory. */
struct proof_signer;

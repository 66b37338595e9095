/* proof.h - signed proofs of what ran (types in proof-t.h; the design in
 * docs/internals/promotion.md).
 *
 * A proof is signed over a canonical text, never over JSON (whose spacing
 * and key order a copy may change):
 *
 *   "cutover-proof-v1\n"
 *   "env=" ENV "\n"                   [a-z0-9][a-z0-9_-]{0,31}, or empty
 *   "service=" SERVICE "\n"           [a-z0-9][a-z0-9_-]{0,62}
 *   "version=" VERSION "\n"           [0-9A-Za-z.+-]{1,127}
 *   "digest=" DIGEST "\n"             64 lower-case hex digits
 *   "live_since=" DECIMAL "\n"        Unix ms, >= 0, not after exported_at
 *   "healthy=" ("true" | "false") "\n"
 *   "exported_at=" DECIMAL "\n"       Unix ms, > 0
 *   "key=ed25519:" BASE64 "\n"        the signer's public key
 *
 * No field can hold a newline or an '=' that would shift another, so one
 * text is one proof.  The signature is Ed25519 (libsodium's
 * crypto_sign_detached) over those bytes, in standard base64.
 *
 * A state's key is STATE_DIR/proof.key (the 32-byte seed in base64, mode
 * 0600, created at the first need; a file that others may read is refused),
 * its public half STATE_DIR/proof.pub ("ed25519:BASE64\n"), the text to put
 * into another environment's promotion.trust.
 *
 * Key files are read and written here: call proof_signer_load() and
 * proof_public_key_read() off the event loop (at start, or from the CLI).
 * Everything else is pure.  Errors: -EINVAL a field out of its form,
 * -EBADMSG a signature that does not verify, -EACCES a key file others can
 * read, other -errno from the file system; a sentence in err where there is
 * one.  Nothing logs.
 */
#pragma once
#include <jansson.h>
#include <stddef.h>
#include "state/proof-t.h"

/* The canonical text of P (without its signature) into out[outlen].
 * Returns its length, -EINVAL if a field is out of its form, -ENOSPC if it
 * does not fit. */
int proof_serialize(const struct proof *p, char *out, size_t outlen);
/* Set p->key to the signer's public key and p->signature to the signature
 * of p's canonical text.  Returns 0 or -EINVAL (a field out of its form). */
int proof_sign(struct proof *p, const struct proof_signer *s);
/* Whether p->signature is p->key's signature of p's canonical text: 0,
 * -EINVAL (a field, the key or the signature out of its form) or -EBADMSG
 * (it does not verify: a signed field or the signature changed). */
int proof_verify(const struct proof *p);
/* P as a JSON object {format, env, service, version, digest, live_since,
 * healthy, exported_at, key, signature} (new reference), or NULL. */
json_t *proof_json(const struct proof *p);
/* Read a proof object as proof_json() writes it into *ret: every member
 * present with its type, no other member, each field in its form (the
 * signature is not checked here: proof_verify).  Returns 0, or -EINVAL with
 * a sentence naming the member in err. */
int proof_parse(const json_t *j, struct proof *ret, char *err, size_t errlen);
/* Whether text is a public key as proofs and promotion.trust write it
 * ("ed25519:" and 32 bytes in base64). */
bool proof_key_valid(const char *text);

/* Load DIR/proof.key, or create it (with DIR/proof.pub) if there is none.
 * Returns 0 with *ret (proof_signer_free()), or -errno with a sentence
 * naming the file in err: -EACCES when its group or others may read it. */
int proof_signer_load(const char *dir, struct proof_signer **ret, char *err, size_t errlen);
/* The signer's public key, "ed25519:BASE64" (borrowed). */
const char *proof_signer_key(const struct proof_signer *s);
/* Wipe and free (NULL is fine).  Returns NULL. */
struct proof_signer *proof_signer_free(struct proof_signer *s);
/* The public key of the state in DIR (DIR/proof.pub) into key[keylen].
 * Returns 0, -ENOENT (no key yet: its daemon exported no proof), -EINVAL
 * (not a key), or -errno, with a sentence in err. */
int proof_public_key_read(const char *dir, char *key, size_t keylen, char *err, size_t errlen);

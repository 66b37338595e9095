/* secrets.h - encrypted secrets: the age file format (C2SP age v1, X25519
 * recipients only), its Bech32 keys, identity files, and the secrets file of
 * an environment (docs/internals/secrets.md).
 *
 * The secrets file is an age file (so `age -d -i KEY FILE` reads it and
 * `age -R RECIPIENTS` can write it) whose plaintext is a small text format:
 *
 *   cutover-secrets v1
 *   NAME CHANGED_UNIX CHANGED_BY BASE64(VALUE)
 *   ...
 *
 * one line per secret, ordered by name, fields separated by one space,
 * CHANGED_BY "-" when unknown, BASE64 the standard alphabet with padding.
 *
 * Everything here may block on files (CLI, the daemon's worker or the
 * moment a deploy is accepted, never the proxy's hot path).  Errors: a
 * negative errno and a sentence in err (errlen bytes) naming the file and
 * the cause ("secrets.prod.age: header MAC mismatch: the file was changed
 * or is not for this identity"); a value never appears in a message.
 */
#pragma once
#include <stdbool.h>
#include "secrets/secrets-t.h"

/* ---- keys (keys.c, bech32.c) ---- */

/* Parse "age1..." (Bech32, lower-case). Returns 0 or -EINVAL. */
int age_recipient_parse(const char *text, struct age_recipient *ret);
/* Format r as "age1..." into out (at least 63 bytes). */
void age_recipient_format(const struct age_recipient *r, char *out, size_t outlen);
/* Parse "AGE-SECRET-KEY-1..." (Bech32, upper-case). Returns 0 with
 * ret->key allocated (age_identity_release), or -EINVAL / -ENOMEM. */
int age_identity_parse(const char *text, struct age_identity *ret);
/* A new random identity. Returns 0 or -ENOMEM. */
int age_identity_generate(struct age_identity *ret);
/* Wipe and free ret->key. Accepts a zeroed struct. */
void age_identity_release(struct age_identity *id);
/* Read an identity file (as age-keygen writes it: "#" comment lines and
 * AGE-SECRET-KEY-1 lines; the first key is used).  The file must not be
 * readable or writable by group or others (-EPERM, the message says
 * `chmod 600 FILE`).  Returns 0 with *ret, or a negative errno. */
int age_identity_read(const char *path, struct age_identity *ret, char *err, size_t errlen);
/* Write a new identity file at path (mode 0600, created exclusively: an
 * existing file is -EEXIST) with age-keygen's comments (created, public
 * key).  Returns 0 and the public key in *ret_public, or a negative errno. */
int age_identity_write_new(const char *path, struct age_recipient *ret_public, char *err, size_t errlen);
/* Read a recipients file (age -R format: one "age1..." per line, "#"
 * comments and blank lines ignored).  A missing file is -ENOENT.  Returns
 * 0 with *ret (malloc'd) and *ret_n, or a negative errno (a bad line is
 * -EINVAL naming FILE:LINE). */
int age_recipients_read(const char *path, struct age_recipient **ret, size_t *ret_n, char *err, size_t errlen);
/* Replace the recipients file atomically (write a temporary, fsync,
 * rename), one "age1..." per line after a comment.  Returns 0 or a
 * negative errno. */
int age_recipients_write(const char *path, const struct age_recipient *r, size_t n, char *err, size_t errlen);

/* ---- the age format (age.c) ---- */

/* Encrypt plaintext (len bytes) to the recipients (n >= 1) with a fresh
 * random file key: the binary age v1 format.  Returns 0 with *ret
 * (malloc'd) and *ret_len, or a negative errno. */
int age_encrypt(const uint8_t *plaintext, size_t len, const struct age_recipient *r, size_t n, uint8_t **ret,
		size_t *ret_len);
/* Decrypt an age file (binary, or ASCII-armored) with the identity.
 * Returns 0 with *ret (sodium_malloc'd, plus one NUL byte not counted;
 * free with sodium_free) and *ret_len, or: -ENOKEY no stanza is for this
 * identity; -EBADMSG a malformed header or payload, a header MAC or chunk
 * tag mismatch, a truncated file; -ENOMEM.  err says which. */
int age_decrypt(const uint8_t *file, size_t len, const struct age_identity *id, uint8_t **ret, size_t *ret_len,
		char *err, size_t errlen);

/* ---- the secrets file of an environment (file.c) ---- */

/* Read and decrypt path with the identity.  A missing file is an empty set
 * (*ret with n = 0) only when missing_ok, else -ENOENT.  Returns 0 with
 * *ret (secrets_free), or a negative errno. */
int secrets_read(const char *path, const struct age_identity *id, bool missing_ok, struct secrets **ret,
		 char *err, size_t errlen);
/* Encrypt s to the recipients and replace path atomically (temporary file
 * mode 0600 in the same directory, fsync, rename).  Returns 0 or a
 * negative errno. */
int secrets_write(const char *path, const struct secrets *s, const struct age_recipient *r, size_t n, char *err,
		  size_t errlen);
/* The secret called name, or NULL. */
const struct secret *secrets_find(const struct secrets *s, const char *name);
/* Set name to value (len bytes, copied into sodium memory), stamped now
 * by `by` (1 to 32 visible ASCII characters, no space; NULL, "" or "-":
 * unknown).  Returns 0, -EINVAL (a bad name, a value shorter than
 * SECRET_VALUE_MIN or longer than SECRET_VALUE_MAX, a bad `by`), -ENOSPC
 * (SECRETS_MAX) or -ENOMEM. */
int secrets_set(struct secrets *s, const char *name, const uint8_t *value, size_t len, const char *by);
/* Remove name.  Returns 0 or -ENOENT. */
int secrets_remove(struct secrets *s, const char *name);
/* Is name a valid secret name? */
bool secret_name_valid(const char *name);
/* Wipe and free everything.  Accepts NULL; returns NULL. */
struct secrets *secrets_free(struct secrets *s);

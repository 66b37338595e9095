/* secrets-internal.h - what the files of src/secrets share: Bech32
 * (bech32.c), HKDF-SHA-256 and the ASCII armor (age.c, armor.c), and the
 * atomic replacement of a file (keys.c).
 *
 * Everything here is reachable from the unit tests (tests/unit/
 * test_secrets.c); nothing outside src/secrets includes it.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- Bech32 (BIP-173) ---------------------------------------------------- */

#define BECH32_MAX 90                 /* characters of a whole string */

/* Encode data (len bytes) as HRP "1" DATA CHECKSUM into out (outlen bytes,
 * NUL-terminated).  hrp is lower-case, 1..83 characters 33..126; upper
 * writes the whole string in upper case (age's secret keys).  Returns 0,
 * -EINVAL (a bad hrp) or -ENOSPC (out too small, or longer than
 * BECH32_MAX). */
int bech32_encode(const char *hrp, const uint8_t *data, size_t len, bool upper, char *out, size_t outlen);
/* Decode text: its hrp (as written: all lower or all upper case) into hrp
 * (hrplen bytes, NUL-terminated) and its data into data (at most datalen
 * bytes, *ret_len of them).  Returns 0, or -EINVAL for anything that is not
 * valid Bech32 (mixed case, a bad character, a bad checksum, bad padding,
 * too long) or does not fit.  The temporaries are wiped: data may be a
 * secret key. */
int bech32_decode(const char *text, char *hrp, size_t hrplen, uint8_t *data, size_t datalen, size_t *ret_len);

/* ---- HKDF-SHA-256 (RFC 5869) --------------------------------------------- */

/* HKDF-Extract and HKDF-Expand with HMAC-SHA-256: outlen (<= 255 * 32)
 * bytes of key from ikm, salt (may be empty) and info. */
void hkdf_sha256(uint8_t *out, size_t outlen, const uint8_t *ikm, size_t ikmlen, const uint8_t *salt,
		 size_t saltlen, const char *info);

/* ---- the ASCII armor ------------------------------------------------------ */

#define AGE_ARMOR_BEGIN "-----BEGIN AGE ENCRYPTED FILE-----"
#define AGE_ARMOR_END "-----END AGE ENCRYPTED FILE-----"

/* Is file (len bytes) armored: not the binary format, and PEM-like
 * ("-----") in its first 4 KiB? */
bool age_armor_detect(const uint8_t *file, size_t len);
/* Decode an armored age file: PEM with type "AGE ENCRYPTED FILE", lines of
 * 64 columns (the last shorter), strict base64 with padding, LF or CRLF,
 * whitespace only before and after.  Returns 0 with *ret (malloc'd, the
 * binary age file) and *ret_len, or -EBADMSG (err says why) / -ENOMEM. */
int age_armor_decode(const uint8_t *file, size_t len, uint8_t **ret, size_t *ret_len, char *err, size_t errlen);

/* ---- the plaintext of a secrets file (file.c) ------------------------------- */

/* Parse the plaintext format of secrets.h (text, len bytes) into *ret
 * (secrets_free), values in sodium memory.  Returns 0, or -EINVAL /
 * -ENOMEM with err "line N: reason" (never quoting what it read). */
struct secrets;
int secrets_parse(const uint8_t *text, size_t len, struct secrets **ret, char *err, size_t errlen);
/* The plaintext of s, every line ending with a LF, into *ret
 * (sodium_malloc'd, sodium_free it) and *ret_len.  Returns 0 or -ENOMEM. */
int secrets_format(const struct secrets *s, uint8_t **ret, size_t *ret_len);

/* ---- files ---------------------------------------------------------------- */

/* Replace path atomically with data: a temporary file in the same
 * directory (mode), written, fsync'd, renamed over path, the directory
 * fsync'd.  Returns 0 or a negative errno with err "PATH: reason"; on
 * failure path is unchanged and no temporary is left. */
int secrets_file_replace(const char *path, const void *data, size_t len, mode_t mode, char *err, size_t errlen);
/* Read the whole file at path, at most max bytes, into *ret (malloc'd, or
 * sodium_malloc'd when secret; one NUL byte added, not counted) and
 * *ret_len; *ret_st (may be NULL) gets its fstat.  Returns 0, -EFBIG, or
 * the -errno of open/read. */
struct stat;
int secrets_file_read(const char *path, size_t max, bool secret, uint8_t **ret, size_t *ret_len,
		      struct stat *ret_st);

/* printf into err (errlen bytes; NULL or 0: nothing) and return r. */
int secrets_err(char *err, size_t errlen, int r, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

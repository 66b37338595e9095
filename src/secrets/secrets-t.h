/* secrets-t.h - the types of encrypted secrets (see secrets.h).
 *
 * A secret's value is only ever held in memory from sodium_malloc() (locked,
 * guarded, wiped when freed); names and dates are not secret.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define SECRET_NAME_MAX 64        /* [A-Za-z_][A-Za-z0-9_]{0,63} */
#define SECRET_VALUE_MAX 65536    /* bytes */
#define SECRET_VALUE_MIN 4        /* shorter values could not be redacted without hiding ordinary text */
#define SECRETS_MAX 256           /* per file */

/* An X25519 key pair half as age writes it: a recipient "age1..." (public)
 * or an identity "AGE-SECRET-KEY-1..." (private, in sodium memory). */
struct age_recipient {
	uint8_t key[32];
};
struct age_identity {
	uint8_t *key;                 /* 32 bytes from sodium_malloc */
	uint8_t public_key[32];
};

/* One secret of a decrypted secrets file. */
struct secret {
	char name[SECRET_NAME_MAX + 1];
	uint8_t *value;               /* sodium_malloc'd, len bytes (+ a NUL not counted) */
	size_t len;
	int64_t changed;              /* Unix seconds of the last `secrets set` */
	char changed_by[33];          /* the user who set it ("" if unknown) */
};

/* A decrypted secrets file: all its secrets, ordered by name. */
struct secrets {
	struct secret *items;         /* sodium_malloc'd array */
	size_t n;
};

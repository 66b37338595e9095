/* fuzz_age.c - libFuzzer target for what src/secrets reads from files
 * others may have written: an age file (binary or armored: the header's
 * lines, stanzas, base64, the MAC, the payload's chunks) and, once
 * decrypted, the plaintext of a secrets file.
 *
 * The first input byte picks the mode, the rest is the data:
 *   0: age_decrypt() with a fixed identity (the C2SP test vectors' X25519
 *      key, so their files are good seeds);
 *   1: secrets_parse() of a plaintext;
 *   2: age_encrypt() of the data to the fixed identity and two others,
 *      then age_decrypt() with it.
 * Beyond memory safety (ASan/UBSan) the target aborts when a contract
 * breaks:
 *   - decrypt: success gives at most as many bytes as the file has and a
 *     NUL after them; a failure is -EBADMSG or -ENOKEY (-ENOMEM aside) with
 *     a message;
 *   - parse: success gives at most SECRETS_MAX secrets, valid names in
 *     strictly increasing order, values of SECRET_VALUE_MIN to
 *     SECRET_VALUE_MAX bytes; formatting them again gives the input (with
 *     its final newline); a failure is -EINVAL with "line N: " or "not a
 *     cutover secrets file", and quotes no field that may be a value;
 *   - encrypt: decrypting gives the data back.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "secrets/secrets.h"
#include "secrets/secrets-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                 \
	do {                                                                                        \
		if (!(cond)) {                                                                      \
			fprintf(stderr, "%s:%d: contract broken: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                                    \
		}                                                                                   \
	} while (0)

#define IDENTITY "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0"

static struct age_identity id;

static void decrypt(const uint8_t *file, size_t len)
{
	uint8_t *plain = NULL;
	size_t plain_len = 0;
	char err[512] = "";
	int r = age_decrypt(file, len, &id, &plain, &plain_len, err, sizeof(err));

	if (r == 0) {
		CHECK(plain_len <= len);
		CHECK(plain[plain_len] == 0);
		sodium_free(plain);
		return;
	}
	CHECK(r == -EBADMSG || r == -ENOKEY || r == -ENOMEM);
	CHECK(r == -ENOMEM || err[0]);
}

/* No field of the input that may be a value (any but a valid name) is in
 * the message.  Fields of 24 bytes or more: the messages' own words are
 * shorter.  The one name a message may quote ("line N: NAME: ..." or
 * "line N: NAME comes after ...") is taken out first: a value field that
 * happens to hold the same text as that name is not a leak. */
static void check_not_quoted(const uint8_t *text, size_t len, const char *error)
{
	const char *p = (const char *)text, *end = p + len, *err = error;
	char msg[512], *quoted;
	size_t k;

	snprintf(msg, sizeof(msg), "%s", error);
	quoted = strstr(msg, ": ");
	if (!strncmp(msg, "line ", 5) && quoted) {
		quoted += 2;
		k = strcspn(quoted, ": ");
		if (k <= SECRET_NAME_MAX) {
			char c = quoted[k];

			quoted[k] = 0;
			if (secret_name_valid(quoted))
				memset(quoted, '.', k);
			quoted[k] = c;
		}
	}
	err = msg;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *line_end = nl ? nl : end;
		size_t field = 0;

		while (p < line_end) {
			const char *sp = memchr(p, ' ', (size_t)(line_end - p)), *f_end = sp ? sp : line_end;
			size_t n = (size_t)(f_end - p);
			char name[SECRET_NAME_MAX + 1];

			if (field == 0 && n <= SECRET_NAME_MAX) {
				memcpy(name, p, n);
				name[n] = 0;
			}
			if (n >= 24 && !(field == 0 && n <= SECRET_NAME_MAX && strlen(name) == n &&
					 secret_name_valid(name)))
				CHECK(!memmem(err, strlen(err), p, n));
			field++;
			p = sp ? sp + 1 : line_end;
		}
		p = line_end + 1;
	}
}

static void parse(const uint8_t *text, size_t len)
{
	struct secrets *s = NULL;
	uint8_t *again = NULL;
	size_t again_len = 0;
	char err[512] = "";
	int r = secrets_parse(text, len, &s, err, sizeof(err));

	if (r < 0) {
		CHECK(r == -EINVAL || r == -ENOMEM);
		CHECK(r == -ENOMEM || !strncmp(err, "line ", 5) || strstr(err, "not a cutover secrets file"));
		check_not_quoted(text, len, err);
		return;
	}
	CHECK(s->n <= SECRETS_MAX);
	for (size_t i = 0; i < s->n; i++) {
		CHECK(secret_name_valid(s->items[i].name));
		CHECK(i == 0 || strcmp(s->items[i - 1].name, s->items[i].name) < 0);
		CHECK(s->items[i].len >= SECRET_VALUE_MIN && s->items[i].len <= SECRET_VALUE_MAX);
		CHECK(s->items[i].value[s->items[i].len] == 0);
	}
	CHECK(secrets_format(s, &again, &again_len) == 0);
	CHECK(again_len == len || (again_len == len + 1 && again[len] == '\n'));
	CHECK(!memcmp(again, text, len));
	sodium_free(again);
	secrets_free(s);
}

static void round_trip(const uint8_t *plain, size_t len)
{
	struct age_recipient r[3];
	uint8_t *file = NULL, *back = NULL;
	size_t file_len = 0, back_len = 0;
	char err[512];

	randombytes_buf(r[0].key, 32);
	memcpy(r[1].key, id.public_key, 32);
	randombytes_buf(r[2].key, 32);
	CHECK(age_encrypt(plain, len, r, 3, &file, &file_len) == 0);
	CHECK(age_decrypt(file, file_len, &id, &back, &back_len, err, sizeof(err)) == 0);
	CHECK(back_len == len && !memcmp(back, plain, len));
	sodium_free(back);
	free(file);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!id.key) {
		CHECK(sodium_init() >= 0);
		CHECK(age_identity_parse(IDENTITY, &id) == 0);
	}
	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0:
		decrypt(data + 1, size - 1);
		break;
	case 1:
		parse(data + 1, size - 1);
		break;
	default:
		round_trip(data + 1, size - 1);
		break;
	}
	return 0;
}

/* test_secrets.c - unit tests for src/secrets: Bech32, age keys and their
 * files, the age format, and the secrets file of an environment.
 *
 * Bech32 runs the valid and invalid strings of BIP-173 and round trips.
 * The age format runs every X25519 and armor vector of the Community
 * Cryptography Test Vectors ($CUTOVER_SHARED/age-vectors/testdata: each
 * must succeed exactly when it says so, with the plaintext's SHA-256, and
 * fail in the class it names; some are zlib-compressed), then round trips at the chunk boundaries
 * for one and several recipients, and a wrong key, a changed header, a
 * changed chunk and a truncated file.  The encryption direction against
 * another implementation is the integration test's (Debian's age).  The
 * files are written in a temporary directory removed at the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>
#include <zlib.h>

#include "base/util.h"
#include "secrets/secrets.h"
#include "secrets/secrets-internal.h"

static char tmpdir[] = "/tmp/cutover-test-secrets-XXXXXX";

static const char *tmp_path(const char *name, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", tmpdir, name);
	return buf;
}
#define TMP(name) tmp_path((name), (char[512]){ 0 }, 512)

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

/* ---- Bech32 -------------------------------------------------------------- */

static void test_bech32_valid(void **state UNUSED)
{
	/* BIP-173's valid strings: decode, then encode to the same text */
	static const char *const valid[] = {
		"A12UEL5L",
		"a12uel5l",
		"an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
		"abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
		"11" "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq" "c8247j",
		"split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
		"?1ezyfcl",
	};
	for (size_t i = 0; i < ARRAY_SIZE(valid); i++) {
		char hrp[100], again[100], lower[100];
		uint8_t data[64];
		size_t n = 0, k;
		bool upper = valid[i][0] >= 'A' && valid[i][0] <= 'Z';

		if (bech32_decode(valid[i], hrp, sizeof(hrp), data, sizeof(data), &n) < 0)
			fail_msg("%s: not decoded", valid[i]);
		for (k = 0; hrp[k]; k++)
			lower[k] = (char)(hrp[k] >= 'A' && hrp[k] <= 'Z' ? hrp[k] + 32 : hrp[k]);
		lower[k] = 0;
		assert_int_equal(bech32_encode(lower, data, n, upper, again, sizeof(again)), 0);
		assert_string_equal(again, valid[i]);
	}
}

static void test_bech32_invalid(void **state UNUSED)
{
	static const char *const invalid[] = {
		"\x20" "1nwldj5",          /* HRP character out of range */
		"\x7f" "1axkwrx",
		"\x80" "1eym55h",
		"an84characterslonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1569pvx",
		"pzry9x0s0muk",            /* no separator */
		"1pzry9x0s0muk",           /* empty HRP */
		"x1b4n0q5v",               /* invalid data character */
		"li1dgmt3",                /* checksum too short */
		"de1lg7wt" "\xff",         /* invalid character in the checksum */
		"A1G7SGD8",                /* checksum computed with the upper-case HRP */
		"10a06t8",                 /* empty HRP */
		"1qzzfhee",                /* empty HRP */
		"A12uEL5L",                /* mixed case */
		"a12uel5m",                /* one character changed */
		"abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxx",
		"age1",                    /* nothing after the separator */
		"",
	};
	for (size_t i = 0; i < ARRAY_SIZE(invalid); i++) {
		char hrp[100];
		uint8_t data[64];
		size_t n = 0;

		if (bech32_decode(invalid[i], hrp, sizeof(hrp), data, sizeof(data), &n) != -EINVAL)
			fail_msg("case %zu (%s) was accepted", i, invalid[i]);
	}
}

static void test_bech32_round_trips(void **state UNUSED)
{
	char text[100], hrp[100];
	uint8_t data[40], back[40];
	size_t n;

	for (size_t len = 0; len <= 40; len++) {
		randombytes_buf(data, len);
		assert_int_equal(bech32_encode("test", data, len, len % 2, text, sizeof(text)), 0);
		assert_int_equal(bech32_decode(text, hrp, sizeof(hrp), back, sizeof(back), &n), 0);
		assert_int_equal(n, len);
		assert_memory_equal(back, data, len);
		assert_string_equal(hrp, len % 2 ? "TEST" : "test");
		/* each single-character change is caught by the checksum */
		for (size_t k = 5; k < strlen(text); k++) {
			char saved = text[k];

			text[k] = text[k] == 'q' || text[k] == 'Q' ? (len % 2 ? 'P' : 'p') : (len % 2 ? 'Q' : 'q');
			if (bech32_decode(text, hrp, sizeof(hrp), back, sizeof(back), &n) != -EINVAL)
				fail_msg("a change at %zu of %s went unnoticed", k, text);
			text[k] = saved;
		}
	}
	assert_int_equal(bech32_encode("Age", data, 1, false, text, sizeof(text)), -EINVAL);
	assert_int_equal(bech32_encode("age", data, 60, false, text, sizeof(text)), -ENOSPC);    /* > 90 */
	assert_int_equal(bech32_encode("age", data, 32, false, text, 20), -ENOSPC);
	/* data that does not fit the caller's buffer */
	assert_int_equal(bech32_encode("age", data, 32, false, text, sizeof(text)), 0);
	assert_int_equal(bech32_decode(text, hrp, sizeof(hrp), back, 31, &n), -EINVAL);
}

/* ---- keys ------------------------------------------------------------------ */

#define VECTOR_IDENTITY "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0"

static void test_keys(void **state UNUSED)
{
	struct age_identity id = { 0 }, again = { 0 };
	struct age_recipient r, back;
	char text[100], lower[100];
	size_t i;

	assert_int_equal(age_identity_parse(VECTOR_IDENTITY, &id), 0);
	assert_non_null(id.key);
	memcpy(r.key, id.public_key, 32);
	age_recipient_format(&r, text, sizeof(text));
	assert_int_equal(strlen(text), 62);
	assert_memory_equal(text, "age1", 4);
	assert_int_equal(age_recipient_parse(text, &back), 0);
	assert_memory_equal(back.key, r.key, 32);
	/* the identity's text again from its key */
	assert_int_equal(bech32_encode("age-secret-key-", id.key, 32, true, text, sizeof(text)), 0);
	assert_string_equal(text, VECTOR_IDENTITY);
	age_identity_release(&id);
	assert_null(id.key);
	age_identity_release(&id);    /* twice is fine */

	/* the case is part of the type: a lower-case identity, an upper-case recipient */
	for (i = 0; VECTOR_IDENTITY[i]; i++)
		lower[i] = (char)(VECTOR_IDENTITY[i] >= 'A' && VECTOR_IDENTITY[i] <= 'Z' ? VECTOR_IDENTITY[i] + 32
											 : VECTOR_IDENTITY[i]);
	lower[i] = 0;
	assert_int_equal(age_identity_parse(lower, &id), -EINVAL);
	age_recipient_format(&r, text, sizeof(text));
	for (i = 0; text[i]; i++)
		text[i] = (char)(text[i] >= 'a' && text[i] <= 'z' ? text[i] - 32 : text[i]);
	assert_int_equal(age_recipient_parse(text, &back), -EINVAL);
	/* each kind of key is refused as the other */
	age_recipient_format(&r, text, sizeof(text));
	assert_int_equal(age_identity_parse(text, &id), -EINVAL);
	assert_int_equal(age_recipient_parse(VECTOR_IDENTITY, &back), -EINVAL);
	assert_int_equal(age_recipient_parse("age1pq1xyz", &back), -EINVAL);
	assert_null(id.key);

	assert_int_equal(age_identity_generate(&id), 0);
	assert_int_equal(age_identity_generate(&again), 0);
	assert_memory_not_equal(id.public_key, again.public_key, 32);
	age_identity_release(&id);
	age_identity_release(&again);
}

static void test_identity_files(void **state UNUSED)
{
	struct age_recipient pub, pub2;
	struct age_identity id = { 0 };
	struct stat st;
	char err[512], text[100], *content;
	const char *path = TMP("identity.key");
	FILE *f;
	long size;

	unlink(path);
	assert_int_equal(age_identity_write_new(path, &pub, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(age_identity_write_new(path, &pub2, err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, "already exists"));
	/* age-keygen's layout: two comments, then the key */
	assert_non_null(f = fopen(path, "r"));
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	rewind(f);
	content = calloc(1, (size_t)size + 1);
	assert_int_equal(fread(content, 1, (size_t)size, f), (size_t)size);
	fclose(f);
	age_recipient_format(&pub, text, sizeof(text));
	assert_memory_equal(content, "# created: ", 11);
	assert_non_null(strstr(content, "\n# public key: "));
	assert_non_null(strstr(content, text));
	assert_non_null(strstr(content, "\nAGE-SECRET-KEY-1"));
	free(content);

	assert_int_equal(age_identity_read(path, &id, err, sizeof(err)), 0);
	assert_memory_equal(id.public_key, pub.key, 32);
	age_identity_release(&id);

	/* readable or writable by others: refused, with the fix */
	static const mode_t open_modes[] = { 0640, 0620, 0604, 0602, 0644, 0666 };
	for (size_t i = 0; i < ARRAY_SIZE(open_modes); i++) {
		assert_int_equal(chmod(path, open_modes[i]), 0);
		assert_int_equal(age_identity_read(path, &id, err, sizeof(err)), -EPERM);
		assert_non_null(strstr(err, "chmod 600"));
		assert_null(id.key);
	}
	assert_int_equal(chmod(path, 0400), 0);
	assert_int_equal(age_identity_read(path, &id, err, sizeof(err)), 0);
	age_identity_release(&id);
	unlink(path);

	/* a stray line names its line and not its text */
	write_file(path, "# a comment\n\nnot-a-key-at-all\n", 30, 0600);
	assert_int_equal(age_identity_read(path, &id, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "identity.key:3:"));
	assert_null(strstr(err, "not-a-key"));
	write_file(path, "# nothing\n", 10, 0600);
	assert_int_equal(age_identity_read(path, &id, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "no AGE-SECRET-KEY-1"));
	/* a changed checksum */
	write_file(path, VECTOR_IDENTITY "\n", strlen(VECTOR_IDENTITY) + 1, 0600);
	assert_int_equal(age_identity_read(path, &id, err, sizeof(err)), 0);
	age_identity_release(&id);
	write_file(path, "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM2\n",
		   strlen(VECTOR_IDENTITY) + 1, 0600);
	assert_int_equal(age_identity_read(path, &id, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":1: not a valid age secret key"));
	assert_int_equal(age_identity_read(TMP("missing.key"), &id, err, sizeof(err)), -ENOENT);
	unlink(path);
}

static void test_recipients_files(void **state UNUSED)
{
	struct age_recipient r[3], *got = NULL;
	const char *path = TMP("team.recipients");
	char err[512], line[100], text[400];
	size_t n = 0;

	for (int i = 0; i < 3; i++)
		randombytes_buf(r[i].key, 32);
	assert_int_equal(age_recipients_read(path, &got, &n, err, sizeof(err)), -ENOENT);
	assert_int_equal(age_recipients_write(path, r, 3, err, sizeof(err)), 0);
	assert_int_equal(age_recipients_read(path, &got, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(got, r, sizeof(r));
	free(got);

	/* comments and blank lines are skipped; a bad line is named */
	age_recipient_format(&r[0], line, sizeof(line));
	snprintf(text, sizeof(text), "# alice\n%s\n\n# bob\nage1notakey\n", line);
	write_file(path, text, strlen(text), 0644);
	assert_int_equal(age_recipients_read(path, &got, &n, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "team.recipients:5: not an X25519 recipient"));
	snprintf(text, sizeof(text), "%s\n%s\n", line, line);
	write_file(path, text, strlen(text), 0644);
	assert_int_equal(age_recipients_read(path, &got, &n, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":2: the same recipient twice"));
	snprintf(text, sizeof(text), "%s\n%s\n", line, VECTOR_IDENTITY);
	write_file(path, text, strlen(text), 0644);
	assert_int_equal(age_recipients_read(path, &got, &n, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":2: a secret key in a recipients file"));
	assert_null(strstr(err, "AGE-SECRET-KEY-1E"));
	snprintf(text, sizeof(text), " %s\n", line);     /* as age -R: nothing else on the line */
	write_file(path, text, strlen(text), 0644);
	assert_int_equal(age_recipients_read(path, &got, &n, err, sizeof(err)), -EINVAL);
	write_file(path, "# nobody yet\n", 13, 0644);
	assert_int_equal(age_recipients_read(path, &got, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 0);
	free(got);
	unlink(path);
}

/* ---- the age test vectors ---------------------------------------------------- */

struct vector {
	char expect[32];
	uint8_t payload[32];
	bool has_payload, armored, passphrase, hybrid, compressed;
	char identity[128];
	const uint8_t *body;
	size_t body_len;
};

static int hex_to_bytes(const char *hex, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	return 0;
}

/* The header of a vector file ("key: value" lines, then a blank line). */
static void parse_vector(const uint8_t *data, size_t len, struct vector *v)
{
	const char *p = (const char *)data, *end = p + len;

	memset(v, 0, sizeof(*v));
	while (p < end && *p != '\n') {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		char line[256];

		assert_non_null(nl);
		snprintf(line, sizeof(line), "%.*s", (int)(nl - p), p);
		if (!strncmp(line, "expect: ", 8))
			snprintf(v->expect, sizeof(v->expect), "%.31s", line + 8);
		else if (!strncmp(line, "payload: ", 9))
			v->has_payload = hex_to_bytes(line + 9, v->payload, 32) == 0;
		else if (!strncmp(line, "armored: yes", 12))
			v->armored = true;
		else if (!strncmp(line, "compressed: zlib", 16))
			v->compressed = true;
		else if (!strncmp(line, "passphrase: ", 12))
			v->passphrase = true;
		else if (!strncmp(line, "identity: AGE-SECRET-KEY-PQ-", 28))
			v->hybrid = true;
		else if (!strncmp(line, "identity: ", 10) && !v->identity[0])
			snprintf(v->identity, sizeof(v->identity), "%.127s", line + 10);
		p = nl + 1;
	}
	assert_true(p < end);
	v->body = (const uint8_t *)p + 1;
	v->body_len = (size_t)(end - p - 1);
}

/* Inflate a zlib stream into *ret (malloc'd) and *ret_len. */
static void inflate_all(const uint8_t *in, size_t len, uint8_t **ret, size_t *ret_len)
{
	z_stream z = { 0 };
	size_t alloc = len * 4 + 1024;
	uint8_t *out = malloc(alloc);
	int r = Z_OK;

	assert_int_equal(inflateInit(&z), Z_OK);
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	while (r != Z_STREAM_END) {
		if (z.total_out == alloc) {
			alloc *= 2;
			assert_non_null(out = realloc(out, alloc));
		}
		z.next_out = out + z.total_out;
		z.avail_out = (uInt)(alloc - z.total_out);
		r = inflate(&z, Z_NO_FLUSH);
		assert_true(r == Z_OK || r == Z_STREAM_END);
	}
	*ret = out;
	*ret_len = z.total_out;
	inflateEnd(&z);
}

/* Decrypt one vector; fail the test when the outcome differs. */
static void run_vector(const char *name, const struct vector *v)
{
	struct age_identity id = { 0 };
	uint8_t *plain = NULL, digest[32];
	size_t plain_len = 0;
	char err[512] = "";
	uint8_t *inflated = NULL;
	size_t inflated_len = 0;
	int r;

	if (v->identity[0])
		assert_int_equal(age_identity_parse(v->identity, &id), 0);
	else
		assert_int_equal(age_identity_generate(&id), 0);
	if (v->compressed)
		inflate_all(v->body, v->body_len, &inflated, &inflated_len);
	r = age_decrypt(inflated ? inflated : v->body, inflated ? inflated_len : v->body_len, &id, &plain,
			&plain_len, err, sizeof(err));
	free(inflated);
	age_identity_release(&id);
	if (!strcmp(v->expect, "success")) {
		if (r < 0)
			fail_msg("vector %s: expected success, got %d: %s", name, r, err);
		crypto_hash_sha256(digest, plain, plain_len);
		if (v->has_payload && memcmp(digest, v->payload, 32))
			fail_msg("vector %s: the plaintext's SHA-256 differs", name);
		sodium_free(plain);
		return;
	}
	if (r >= 0) {
		sodium_free(plain);
		fail_msg("vector %s: expected %s, but it decrypted", name, v->expect);
	}
	if (!strcmp(v->expect, "no match") ? r != -ENOKEY : r != -EBADMSG)
		fail_msg("vector %s: expected %s, got %d: %s", name, v->expect, r, err);
	if (!strcmp(v->expect, "HMAC failure") && !strstr(err, "MAC"))
		fail_msg("vector %s: expected an HMAC failure, got: %s", name, err);
	if (!strcmp(v->expect, "armor failure") && !strstr(err, "armor"))
		fail_msg("vector %s: expected an armor failure, got: %s", name, err);
	if (!err[0])
		fail_msg("vector %s: failed without a message", name);
}

static void test_age_vectors(void **state UNUSED)
{
	const char *shared = getenv("CUTOVER_SHARED"), *source = getenv("CUTOVER_SOURCE");
	char dir[1024], path[1300];
	size_t ran = 0, skipped = 0;
	struct dirent *e;
	DIR *d;

	if (shared)
		snprintf(dir, sizeof(dir), "%s/age-vectors/testdata", shared);
	else
		snprintf(dir, sizeof(dir), "%s/../shared/age-vectors/testdata", source ? source : "..");
	d = opendir(dir);
	if (!d)
		fail_msg("the age test vectors are not at %s (set CUTOVER_SHARED)", dir);
	while ((e = readdir(d))) {
		struct vector v;
		uint8_t *data = NULL;
		size_t len = 0;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		assert_int_equal(secrets_file_read(path, 1 << 24, false, &data, &len, NULL), 0);
		parse_vector(data, len, &v);
		if (v.passphrase || v.hybrid) {
			skipped++;    /* scrypt and ML-KEM: not what cutover reads */
		} else {
			run_vector(e->d_name, &v);
			ran++;
		}
		free(data);
	}
	closedir(d);
	printf("age vectors: %zu X25519/armor run, %zu scrypt/hybrid skipped\n", ran, skipped);
	if (ran < 40)
		fail_msg("only %zu age vectors ran (expected at least 40)", ran);
}

/* ---- round trips and damage --------------------------------------------------- */

static void decrypt_ok(const uint8_t *file, size_t len, const struct age_identity *id, const uint8_t *want,
		       size_t want_len)
{
	uint8_t *plain = NULL;
	size_t plain_len = 0;
	char err[512];
	int r = age_decrypt(file, len, id, &plain, &plain_len, err, sizeof(err));

	if (r < 0)
		fail_msg("decrypting %zu bytes: %d %s", want_len, r, err);
	assert_int_equal(plain_len, want_len);
	assert_memory_equal(plain, want, want_len);
	assert_int_equal(plain[plain_len], 0);
	sodium_free(plain);
}

static void test_age_round_trips(void **state UNUSED)
{
	static const size_t sizes[] = { 0, 1, 100, 65535, 65536, 65537, 131072, 200000 };
	struct age_identity ids[3] = { 0 }, stranger = { 0 };
	struct age_recipient r[3];
	uint8_t *plain = malloc(200000), *file = NULL, *out = NULL;
	size_t len = 0, out_len;
	char err[512];

	randombytes_buf(plain, 200000);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(age_identity_generate(&ids[i]), 0);
		memcpy(r[i].key, ids[i].public_key, 32);
	}
	assert_int_equal(age_identity_generate(&stranger), 0);
	for (size_t s = 0; s < ARRAY_SIZE(sizes); s++) {
		for (size_t n = 1; n <= 3; n += 2) {
			size_t chunks = sizes[s] ? (sizes[s] + 65535) / 65536 : 1;

			assert_int_equal(age_encrypt(plain, sizes[s], r, n, &file, &len), 0);
			assert_memory_equal(file, "age-encryption.org/v1\n-> X25519 ", 32);
			/* header, nonce, the plaintext and one tag per chunk */
			assert_int_equal(len, 22 + n * 98 + 48 + 16 + sizes[s] + 16 * chunks);
			for (size_t k = 0; k < n; k++)
				decrypt_ok(file, len, &ids[k], plain, sizes[s]);
			assert_int_equal(age_decrypt(file, len, &stranger, &out, &out_len, err, sizeof(err)), -ENOKEY);
			assert_non_null(strstr(err, "not encrypted to this identity (age1"));
			free(file);
		}
	}
	/* a fresh file key each time: the same plaintext never gives the same file */
	{
		uint8_t *again = NULL;
		size_t again_len = 0;

		assert_int_equal(age_encrypt(plain, 10, r, 1, &file, &len), 0);
		assert_int_equal(age_encrypt(plain, 10, r, 1, &again, &again_len), 0);
		assert_int_equal(len, again_len);
		assert_memory_not_equal(file, again, len);
		free(file);
		free(again);
	}
	/* a low-order recipient, no recipient */
	memset(r[1].key, 0, 32);
	assert_int_equal(age_encrypt(plain, 10, r, 2, &file, &len), -EINVAL);
	assert_int_equal(age_encrypt(plain, 10, r, 0, &file, &len), -EINVAL);
	for (int i = 0; i < 3; i++)
		age_identity_release(&ids[i]);
	age_identity_release(&stranger);
	free(plain);
}

/* Each kind of damage is refused with a message that says which. */
static void test_age_damage(void **state UNUSED)
{
	struct age_identity id = { 0 };
	struct age_recipient r;
	uint8_t *plain = malloc(150000), *file = NULL, *out = NULL, *bad;
	size_t len = 0, out_len, header;
	char err[512];

	randombytes_buf(plain, 150000);
	assert_int_equal(age_identity_generate(&id), 0);
	memcpy(r.key, id.public_key, 32);
	assert_int_equal(age_encrypt(plain, 150000, &r, 1, &file, &len), 0);
	header = (size_t)((uint8_t *)memmem(file, len, "\n---", 4) - file) + 4 + 45;   /* the MAC line's end */
	bad = malloc(len);

	/* a changed byte in the MAC-covered part of the header */
	memcpy(bad, file, len);
	bad[25] ^= 1;     /* in the stanza's type: X25519 -> Y25519 */
	assert_int_equal(age_decrypt(bad, len, &id, &out, &out_len, err, sizeof(err)), -ENOKEY);
	memcpy(bad, file, len);
	bad[header - 50] ^= 1;    /* the last character of the body's line: no longer canonical or another key */
	assert_true(age_decrypt(bad, len, &id, &out, &out_len, err, sizeof(err)) < 0);
	/* the MAC itself */
	memcpy(bad, file, len);
	bad[header - 10] = bad[header - 10] == 'A' ? 'B' : 'A';
	assert_int_equal(age_decrypt(bad, len, &id, &out, &out_len, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "header MAC mismatch"));
	/* the second payload chunk */
	memcpy(bad, file, len);
	bad[header + 16 + 65536 + 16 + 100] ^= 0x40;
	assert_int_equal(age_decrypt(bad, len, &id, &out, &out_len, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "payload chunk 2 failed authentication"));
	/* truncated: inside the last chunk, at a chunk boundary, inside the nonce, inside the header */
	assert_int_equal(age_decrypt(file, len - 1, &id, &out, &out_len, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "payload chunk 3"));
	assert_int_equal(age_decrypt(file, header + 16 + 2 * (65536 + 16), &id, &out, &out_len, err, sizeof(err)),
			 -EBADMSG);
	assert_non_null(strstr(err, "payload chunk 2"));
	assert_int_equal(age_decrypt(file, header + 8, &id, &out, &out_len, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "nonce"));
	assert_int_equal(age_decrypt(file, header - 20, &id, &out, &out_len, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "header"));
	/* data after the end */
	memcpy(bad, file, len);
	assert_non_null(bad = realloc(bad, len + 1));
	bad[len] = 0;
	assert_int_equal(age_decrypt(bad, len + 1, &id, &out, &out_len, err, sizeof(err)), -EBADMSG);
	/* not an age file at all */
	assert_int_equal(age_decrypt((const uint8_t *)"hello\n", 6, &id, &out, &out_len, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "not an age v1 file"));
	free(bad);
	free(file);
	free(plain);
	age_identity_release(&id);
}

/* ---- the secrets file -------------------------------------------------------- */

static void test_secrets_set_remove(void **state UNUSED)
{
	struct secrets *s = calloc(1, sizeof(*s));
	const struct secret *it;
	char name[80];

	assert_int_equal(secrets_set(s, "DB_PASSWORD", (const uint8_t *)"hunter22", 8, "alice"), 0);
	assert_int_equal(secrets_set(s, "API_KEY", (const uint8_t *)"k3y-value", 9, NULL), 0);
	assert_int_equal(secrets_set(s, "_Z9", (const uint8_t *)"\0\1\2\3", 4, "-"), 0);
	assert_int_equal(s->n, 3);
	assert_string_equal(s->items[0].name, "API_KEY");
	assert_string_equal(s->items[1].name, "DB_PASSWORD");
	assert_string_equal(s->items[2].name, "_Z9");
	it = secrets_find(s, "DB_PASSWORD");
	assert_non_null(it);
	assert_int_equal(it->len, 8);
	assert_memory_equal(it->value, "hunter22", 9);
	assert_string_equal(it->changed_by, "alice");
	assert_true(it->changed > 1700000000);
	assert_string_equal(secrets_find(s, "_Z9")->changed_by, "");
	/* replace */
	assert_int_equal(secrets_set(s, "DB_PASSWORD", (const uint8_t *)"correct horse", 13, "bob"), 0);
	assert_int_equal(s->n, 3);
	assert_memory_equal(secrets_find(s, "DB_PASSWORD")->value, "correct horse", 13);
	assert_string_equal(secrets_find(s, "DB_PASSWORD")->changed_by, "bob");
	/* refused */
	assert_int_equal(secrets_set(s, "X", (const uint8_t *)"abc", 3, NULL), -EINVAL);
	assert_int_equal(secrets_set(s, "1X", (const uint8_t *)"abcd", 4, NULL), -EINVAL);
	assert_int_equal(secrets_set(s, "A-B", (const uint8_t *)"abcd", 4, NULL), -EINVAL);
	assert_int_equal(secrets_set(s, "", (const uint8_t *)"abcd", 4, NULL), -EINVAL);
	assert_int_equal(secrets_set(s, "X", (const uint8_t *)"abcd", 4, "a b"), -EINVAL);
	memset(name, 'A', 64);
	name[64] = 0;
	assert_true(secret_name_valid(name));
	name[64] = 'A';
	name[65] = 0;
	assert_false(secret_name_valid(name));
	/* remove */
	assert_int_equal(secrets_remove(s, "API_KEY"), 0);
	assert_int_equal(secrets_remove(s, "API_KEY"), -ENOENT);
	assert_int_equal(s->n, 2);
	assert_string_equal(s->items[0].name, "DB_PASSWORD");
	assert_null(secrets_find(s, "API_KEY"));
	/* at most SECRETS_MAX */
	while (s->n < SECRETS_MAX) {
		snprintf(name, sizeof(name), "S%zu", s->n);
		assert_int_equal(secrets_set(s, name, (const uint8_t *)"value", 5, NULL), 0);
	}
	assert_int_equal(secrets_set(s, "ONE_MORE", (const uint8_t *)"value", 5, NULL), -ENOSPC);
	assert_int_equal(secrets_set(s, "S10", (const uint8_t *)"other", 5, NULL), 0);   /* a replacement fits */
	assert_null(secrets_free(s));
	assert_null(secrets_free(NULL));
}

static void test_secrets_files(void **state UNUSED)
{
	struct age_identity a = { 0 }, b = { 0 }, c = { 0 };
	struct age_recipient r[2];
	struct secrets *s = calloc(1, sizeof(*s)), *got = NULL;
	uint8_t *big = malloc(SECRET_VALUE_MAX);
	const char *path = TMP("secrets.age");
	struct stat st;
	char err[512];

	assert_int_equal(age_identity_generate(&a), 0);
	assert_int_equal(age_identity_generate(&b), 0);
	assert_int_equal(age_identity_generate(&c), 0);
	memcpy(r[0].key, a.public_key, 32);
	memcpy(r[1].key, b.public_key, 32);
	unlink(path);
	assert_int_equal(secrets_read(path, &a, false, &got, err, sizeof(err)), -ENOENT);
	assert_int_equal(secrets_read(path, &a, true, &got, err, sizeof(err)), 0);
	assert_int_equal(got->n, 0);
	got = secrets_free(got);

	randombytes_buf(big, SECRET_VALUE_MAX);
	assert_int_equal(secrets_set(s, "BIG", big, SECRET_VALUE_MAX, "ci"), 0);
	assert_int_equal(secrets_set(s, "DB_PASSWORD", (const uint8_t *)"p4ss word\n\twith\0nul", 19, "alice"), 0);
	assert_int_equal(secrets_write(path, s, r, 2, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(secrets_write(path, s, r, 0, err, sizeof(err)), -EINVAL);

	assert_int_equal(secrets_read(path, &b, false, &got, err, sizeof(err)), 0);
	assert_int_equal(got->n, 2);
	assert_string_equal(got->items[0].name, "BIG");
	assert_int_equal(got->items[0].len, SECRET_VALUE_MAX);
	assert_memory_equal(got->items[0].value, big, SECRET_VALUE_MAX);
	assert_string_equal(got->items[0].changed_by, "ci");
	assert_int_equal(got->items[1].len, 19);
	assert_memory_equal(got->items[1].value, "p4ss word\n\twith\0nul", 19);
	assert_int_equal(got->items[1].changed, s->items[1].changed);
	got = secrets_free(got);
	assert_int_equal(secrets_read(path, &c, false, &got, err, sizeof(err)), -ENOKEY);
	assert_non_null(strstr(err, "secrets.age: not encrypted to this identity"));
	assert_null(got);

	secrets_free(s);
	free(big);
	unlink(path);
	age_identity_release(&a);
	age_identity_release(&b);
	age_identity_release(&c);
}

/* Plaintexts that are not a valid secrets file: the message names the line,
 * never the value ("c2VjcmV0IHZhbHVl" is "secret value"). */
static void test_secrets_bad_plaintexts(void **state UNUSED)
{
	static const struct {
		const char *text, *message;
	} cases[] = {
		{ "", "not a cutover secrets file" },
		{ "cutover-secrets v2\n", "not a cutover secrets file" },
		{ "cutover-secrets v1\n\n", "line 2: an empty line" },
		{ "cutover-secrets v1\nA 1 - c2VjcmV0IHZhbHVl", NULL },                     /* no final LF: fine */
		{ "cutover-secrets v1\nA 1 -  c2VjcmV0IHZhbHVl\n", "line 2: expected NAME CHANGED_UNIX" },
		{ "cutover-secrets v1\nA 1 - c2VjcmV0IHZhbHVl extra\n", "line 2: expected NAME" },
		{ "cutover-secrets v1\nc2VjcmV0IHZhbHVl\n", "line 2: expected NAME" },
		{ "cutover-secrets v1\n1A 1 - c2VjcmV0IHZhbHVl\n", "line 2: the name is not" },
		{ "cutover-secrets v1\nc2VjcmV0IHZhbHVl= 1 - c2VjcmV0IHZhbHVl\n", "line 2: the name is not" },
		{ "cutover-secrets v1\nB 1 - c2VjcmV0IHZhbHVl\nA 1 - c2VjcmV0IHZhbHVl\n",
		  "line 3: A comes after a greater name" },
		{ "cutover-secrets v1\nA 1 - c2VjcmV0IHZhbHVl\nA 1 - c2VjcmV0IHZhbHVl\n", "line 3: A appears twice" },
		{ "cutover-secrets v1\nA x - c2VjcmV0IHZhbHVl\n", "line 2: A: CHANGED_UNIX" },
		{ "cutover-secrets v1\nA 01 - c2VjcmV0IHZhbHVl\n", "line 2: A: CHANGED_UNIX" },
		{ "cutover-secrets v1\nA 1 \x01 c2VjcmV0IHZhbHVl\n", "line 2: A: CHANGED_BY" },
		{ "cutover-secrets v1\nA 1 - c2VjcmV0IHZhbHVl=\n", "line 2: A: the value is not base64" },
		{ "cutover-secrets v1\nA 1 - c2VjcmV0IHZhbHVm\n", NULL },
		{ "cutover-secrets v1\nA 1 - c2VjcmV0IHZhbHV=\n", "line 2: A: the value is not canonical base64" },
		{ "cutover-secrets v1\nA 1 - YWJj\n", "line 2: A: the value has 3 bytes" },
		/* found by fuzz_age: libsodium 1.0.18 decodes bytes >= 0x80 as letters */
		{ "cutover-secrets v1\nA 1 - \xd6\xd6\xd6\xd6\xd6\xd6iE=\n", "line 2: A: the value is not base64" },
		{ "cutover-secrets v1\nA 1 - c2VjcmV0IHZhbHVl\r\n", "line 2: A: the value is not" },
	};
	struct age_identity id = { 0 };
	struct age_recipient r;
	const char *path = TMP("bad.age");
	char err[512];

	assert_int_equal(age_identity_generate(&id), 0);
	memcpy(r.key, id.public_key, 32);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct secrets *got = NULL;
		uint8_t *file = NULL;
		size_t len = 0;
		int rc;

		assert_int_equal(age_encrypt((const uint8_t *)cases[i].text, strlen(cases[i].text), &r, 1, &file, &len),
				 0);
		write_file(path, file, len, 0600);
		free(file);
		rc = secrets_read(path, &id, false, &got, err, sizeof(err));
		if (!cases[i].message) {
			if (rc < 0)
				fail_msg("case %zu: expected valid, got %s", i, err);
			secrets_free(got);
			continue;
		}
		if (rc != -EINVAL || !strstr(err, cases[i].message))
			fail_msg("case %zu: expected \"%s\", got %d \"%s\"", i, cases[i].message, rc, err);
		if (strstr(err, "c2VjcmV0") || strstr(err, "secret value"))
			fail_msg("case %zu: the message quotes the value: %s", i, err);
		assert_non_null(strstr(err, "bad.age (decrypted): "));
		assert_null(got);
	}
	unlink(path);
	age_identity_release(&id);
}

/* ---- armor ------------------------------------------------------------------ */

/* The armor around a binary file made here, in the shapes age -a writes. */
static void test_armor_round_trip(void **state UNUSED)
{
	struct age_identity id = { 0 };
	struct age_recipient r;
	uint8_t *plain = malloc(1000), *file = NULL, *decoded = NULL;
	size_t len = 0, dlen = 0;
	char err[512];

	randombytes_buf(plain, 1000);
	assert_int_equal(age_identity_generate(&id), 0);
	memcpy(r.key, id.public_key, 32);
	for (size_t size = 0; size < 1000; size += 97) {
		char *armor;
		size_t b64, pos;

		assert_int_equal(age_encrypt(plain, size, &r, 1, &file, &len), 0);
		b64 = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
		armor = malloc(b64 + b64 / 64 + 200);
		pos = (size_t)sprintf(armor, "%s\r\n", AGE_ARMOR_BEGIN);
		for (size_t off = 0; off < len; off += 48) {
			size_t n = len - off < 48 ? len - off : 48;

			sodium_bin2base64(armor + pos, 80, file + off, n, sodium_base64_VARIANT_ORIGINAL);
			pos += strlen(armor + pos);
			pos += (size_t)sprintf(armor + pos, "\r\n");
		}
		pos += (size_t)sprintf(armor + pos, "%s\r\n  \n", AGE_ARMOR_END);
		assert_true(age_armor_detect((uint8_t *)armor, pos));
		assert_false(age_armor_detect(file, len));
		assert_int_equal(age_armor_decode((uint8_t *)armor, pos, &decoded, &dlen, err, sizeof(err)), 0);
		assert_int_equal(dlen, len);
		assert_memory_equal(decoded, file, len);
		free(decoded);
		decrypt_ok((uint8_t *)armor, pos, &id, plain, size);
		free(armor);
		free(file);
	}
	free(plain);
	age_identity_release(&id);
}

static int setup(void **state UNUSED)
{
	assert_true(sodium_init() >= 0);
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state UNUSED)
{
	return rmdir(tmpdir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bech32_valid),
		cmocka_unit_test(test_bech32_invalid),
		cmocka_unit_test(test_bech32_round_trips),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_identity_files),
		cmocka_unit_test(test_recipients_files),
		cmocka_unit_test(test_age_vectors),
		cmocka_unit_test(test_age_round_trips),
		cmocka_unit_test(test_age_damage),
		cmocka_unit_test(test_armor_round_trip),
		cmocka_unit_test(test_secrets_set_remove),
		cmocka_unit_test(test_secrets_files),
		cmocka_unit_test(test_secrets_bad_plaintexts),
	};

	return cmocka_run_group_tests_name("secrets", tests, setup, teardown);
}

/* test_proof.c - unit tests for signed proofs of what ran (src/state/proof.c).
 *
 * The canonical text is checked byte for byte; every field out of its form
 * is refused (a table); a signed proof verifies, and a change to any signed
 * field, the key or the signature does not (a table of tamperings); the
 * JSON form reads back what it wrote and refuses what is not a proof (a
 * table); the key files are created 0600 / 0644, read back to the same
 * key, derived as RFC 8032 says (its first test vector), and refused when
 * others may read them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "state/proof.h"

#define DIGEST "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
/* RFC 8032, 7.1, TEST 1: the secret key (seed) and its public key */
#define RFC_SEED_B64 "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A="
#define RFC_PUBLIC "ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="

static struct proof sample(void)
{
	struct proof p = { .env = "staging", .service = "shop", .version = "1.4.0-rc.1+b7", .digest = DIGEST,
			   .live_since = 1700000000000, .healthy = true, .exported_at = 1700000600000,
			   .key = RFC_PUBLIC };
	return p;
}

/* A directory with a key file holding the RFC 8032 seed, mode MODE. */
static void rfc_key_dir(char *dir, mode_t mode)
{
	char path[256];
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/proof.key", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("cutover-proof-key-v1\n" RFC_SEED_B64 "\n", f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static void remove_dir(const char *dir)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* ---- the canonical text ------------------------------------------------- */

static void test_canonical_text(void **state)
{
	struct proof p = sample();
	char text[PROOF_CANONICAL_MAX];
	static const char want[] = "cutover-proof-v1\n"
				   "env=staging\n"
				   "service=shop\n"
				   "version=1.4.0-rc.1+b7\n"
				   "digest=" DIGEST "\n"
				   "live_since=1700000000000\n"
				   "healthy=true\n"
				   "exported_at=1700000600000\n"
				   "key=" RFC_PUBLIC "\n";

	assert_int_equal(proof_serialize(&p, text, sizeof(text)), (int)strlen(want));
	assert_string_equal(text, want);
	/* no environment (a daemon run without --env), not healthy, not proven */
	p.env[0] = 0;
	p.healthy = false;
	p.live_since = 0;
	assert_true(proof_serialize(&p, text, sizeof(text)) > 0);
	assert_non_null(strstr(text, "\nenv=\nservice=shop\n"));
	assert_non_null(strstr(text, "\nlive_since=0\nhealthy=false\n"));
	assert_int_equal(proof_serialize(&p, text, 20), -ENOSPC);
}

struct bad_field {
	const char *name;
	void (*change)(struct proof *p);
};

static void env_upper(struct proof *p) { strcpy(p->env, "Staging"); }
static void env_newline(struct proof *p) { strcpy(p->env, "staging\nservice=x"); }
static void service_slash(struct proof *p) { strcpy(p->service, "shop/x"); }
static void service_empty(struct proof *p) { p->service[0] = 0; }
static void version_equals(struct proof *p) { strcpy(p->version, "1.0.0\nhealthy=true"); }
static void version_empty(struct proof *p) { p->version[0] = 0; }
static void digest_upper(struct proof *p) { p->digest[0] = 'A'; }
static void digest_short(struct proof *p) { p->digest[63] = 0; }
static void since_after_export(struct proof *p) { p->live_since = p->exported_at + 1; }
static void since_negative(struct proof *p) { p->live_since = -1; }
static void exported_zero(struct proof *p) { p->exported_at = 0; p->live_since = 0; }
static void key_not_ed25519(struct proof *p) { strcpy(p->key, "rsa:AAAA"); }
static void key_short(struct proof *p) { strcpy(p->key, "ed25519:AAAA"); }

static const struct bad_field bad_fields[] = {
	{ "env with upper case", env_upper },
	{ "env with a newline", env_newline },
	{ "service with a slash", service_slash },
	{ "service empty", service_empty },
	{ "version with a newline", version_equals },
	{ "version empty", version_empty },
	{ "digest in upper case", digest_upper },
	{ "digest too short", digest_short },
	{ "live_since after exported_at", since_after_export },
	{ "live_since negative", since_negative },
	{ "exported_at zero", exported_zero },
	{ "key not ed25519", key_not_ed25519 },
	{ "key too short", key_short },
};

static void test_fields_out_of_form(void **state)
{
	char text[PROOF_CANONICAL_MAX];

	for (size_t i = 0; i < ARRAY_SIZE(bad_fields); i++) {
		struct proof p = sample();
		bad_fields[i].change(&p);
		if (proof_serialize(&p, text, sizeof(text)) != -EINVAL)
			fail_msg("%s: serialized", bad_fields[i].name);
		if (proof_verify(&p) != -EINVAL)
			fail_msg("%s: not refused by proof_verify", bad_fields[i].name);
	}
}

/* ---- signing and tampering ---------------------------------------------- */

struct tampering {
	const char *name;
	void (*change)(struct proof *p);
	int want;                     /* what proof_verify says then */
};

static void flip_env(struct proof *p) { strcpy(p->env, "stagin9"); }
static void flip_service(struct proof *p) { strcpy(p->service, "shoq"); }
static void flip_version(struct proof *p) { strcpy(p->version, "1.4.1-rc.1+b7"); }
static void flip_digest(struct proof *p) { p->digest[10] = p->digest[10] == 'a' ? 'b' : 'a'; }
static void flip_since(struct proof *p) { p->live_since -= 600000; } /* ten more minutes of soak */
static void flip_healthy(struct proof *p) { p->healthy = !p->healthy; }
static void flip_exported(struct proof *p) { p->exported_at += 1; }
static void other_key(struct proof *p) { strcpy(p->key, RFC_PUBLIC); }
static void flip_signature(struct proof *p) { p->signature[5] = p->signature[5] == 'A' ? 'B' : 'A'; }
static void cut_signature(struct proof *p) { p->signature[20] = 0; }

static const struct tampering tamperings[] = {
	{ "env", flip_env, -EBADMSG },
	{ "service", flip_service, -EBADMSG },
	{ "version", flip_version, -EBADMSG },
	{ "digest", flip_digest, -EBADMSG },
	{ "live_since", flip_since, -EBADMSG },
	{ "healthy", flip_healthy, -EBADMSG },
	{ "exported_at", flip_exported, -EBADMSG },
	{ "key swapped for another", other_key, -EBADMSG },
	{ "a byte of the signature", flip_signature, -EBADMSG },
	{ "the signature cut short", cut_signature, -EINVAL },
};

static void test_sign_verify_tamper(void **state)
{
	char dir[] = "/tmp/cutover-test-proof-XXXXXX", err[512];
	struct proof_signer *s = NULL;
	struct proof p = sample(), copy;

	assert_non_null(mkdtemp(dir));
	if (proof_signer_load(dir, &s, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	assert_int_equal(proof_sign(&p, s), 0);
	assert_string_equal(p.key, proof_signer_key(s));
	assert_int_not_equal(strcmp(p.key, RFC_PUBLIC), 0); /* a fresh key, not the RFC's */
	assert_int_equal(strlen(p.signature), 88);
	assert_int_equal(proof_verify(&p), 0);
	for (size_t i = 0; i < ARRAY_SIZE(tamperings); i++) {
		copy = p;
		tamperings[i].change(&copy);
		if (proof_verify(&copy) != tamperings[i].want)
			fail_msg("tampered %s: proof_verify gave %d, want %d", tamperings[i].name, proof_verify(&copy),
				 tamperings[i].want);
	}
	/* signing again after a change gives a proof that verifies */
	copy = p;
	flip_digest(&copy);
	assert_int_equal(proof_sign(&copy, s), 0);
	assert_int_equal(proof_verify(&copy), 0);
	proof_signer_free(s);
	remove_dir(dir);
}

/* ---- JSON --------------------------------------------------------------- */

static void test_json_round_trip(void **state)
{
	struct proof p = sample(), back;
	char err[256];
	json_t *j;

	strcpy(p.signature, "c2lnbmF0dXJl");
	j = proof_json(&p);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "format")), "cutover-proof-v1");
	assert_int_equal(proof_parse(j, &back, err, sizeof(err)), 0);
	assert_memory_equal(&p, &back, sizeof(p));
	json_decref(j);
}

struct bad_json {
	const char *name;
	const char *member;           /* set to value (NULL: removed) */
	const char *value;            /* JSON text */
	const char *error;            /* must appear in the message */
};

static const struct bad_json bad_jsons[] = {
	{ "no digest", "digest", NULL, "proof: digest: missing" },
	{ "digest a number", "digest", "12", "proof: digest: must be a string" },
	{ "digest in upper case", "digest", "\"0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef\"",
	  "proof: digest: not a SHA-256 digest" },
	{ "the same digest again (a control: accepted)", "digest", "\"" DIGEST "\"", NULL },
	{ "digest short", "digest", "\"0123\"", "proof: digest: not a SHA-256 digest" },
	{ "live_since a string", "live_since", "\"yesterday\"", "proof: live_since: must be a time" },
	{ "live_since negative", "live_since", "-5", "proof: live_since: must be a time" },
	{ "healthy a string", "healthy", "\"yes\"", "proof: healthy: must be true or false" },
	{ "no signature", "signature", NULL, "proof: signature: missing" },
	{ "another format", "format", "\"cutover-proof-v9\"", "is not one this cutover reads" },
	{ "an extra member", "note", "\"trust me\"", "proof: unknown member \"note\"" },
	{ "service too long", "service",
	  "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"", "proof: service: too long" },
	{ "env not a name", "env", "\"Prod\"", "proof: env: not an environment name" },
	{ "key not a key", "key", "\"ed25519:AAAA\"", "proof: key: not a public key" },
};

static void test_json_refused(void **state)
{
	struct proof p = sample(), out;
	char err[256];

	strcpy(p.signature, "c2lnbmF0dXJl");
	for (size_t i = 0; i < ARRAY_SIZE(bad_jsons); i++) {
		const struct bad_json *c = &bad_jsons[i];
		json_t *j = proof_json(&p);
		int r;
		if (c->value)
			json_object_set_new(j, c->member, json_loads(c->value, JSON_DECODE_ANY, NULL));
		else
			json_object_del(j, c->member);
		err[0] = 0;
		r = proof_parse(j, &out, err, sizeof(err));
		json_decref(j);
		if (!c->error) {
			if (r != 0)
				fail_msg("%s: refused: %s", c->name, err);
			continue;
		}
		if (r != -EINVAL || !strstr(err, c->error))
			fail_msg("%s: got %d \"%s\", want -EINVAL \"...%s...\"", c->name, r, err, c->error);
	}
	json_t *three = json_integer(3);
	assert_int_equal(proof_parse(three, &out, err, sizeof(err)), -EINVAL);
	json_decref(three);
}

/* ---- key files ---------------------------------------------------------- */

static void test_key_files(void **state)
{
	char dir[] = "/tmp/cutover-test-proof-XXXXXX", path[256], err[512], key[PROOF_KEY_TEXT_MAX + 1];
	struct proof_signer *s = NULL, *again = NULL;
	struct stat sb;

	assert_non_null(mkdtemp(dir));
	assert_int_equal(proof_public_key_read(dir, key, sizeof(key), err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "proof.pub"));
	assert_int_equal(proof_signer_load(dir, &s, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/proof.key", dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);
	snprintf(path, sizeof(path), "%s/proof.pub", dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0644);
	assert_int_equal(proof_public_key_read(dir, key, sizeof(key), err, sizeof(err)), 0);
	assert_string_equal(key, proof_signer_key(s));
	/* loaded again: the same key, not a new one */
	assert_int_equal(proof_signer_load(dir, &again, err, sizeof(err)), 0);
	assert_string_equal(proof_signer_key(again), proof_signer_key(s));
	again = proof_signer_free(again);
	s = proof_signer_free(s);
	/* others may read it: refused, and nothing is created instead */
	snprintf(path, sizeof(path), "%s/proof.key", dir);
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(proof_signer_load(dir, &s, err, sizeof(err)), -EACCES);
	assert_null(s);
	assert_non_null(strstr(err, "proof.key: mode 0640 lets others read the proof key: refused"));
	remove_dir(dir);

	/* the seed of RFC 8032's first test vector gives its public key, and
	 * proof.pub is written from it */
	strcpy(dir, "/tmp/cutover-test-proof-XXXXXX");
	rfc_key_dir(dir, 0600);
	assert_int_equal(proof_signer_load(dir, &s, err, sizeof(err)), 0);
	assert_string_equal(proof_signer_key(s), RFC_PUBLIC);
	assert_int_equal(proof_public_key_read(dir, key, sizeof(key), err, sizeof(err)), 0);
	assert_string_equal(key, RFC_PUBLIC);
	s = proof_signer_free(s);
	remove_dir(dir);

	/* not a key file */
	strcpy(dir, "/tmp/cutover-test-proof-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/proof.key", dir);
	FILE *f = fopen(path, "w");
	fputs("hello\n", f);
	fclose(f);
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(proof_signer_load(dir, &s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a proof key"));
	remove_dir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_canonical_text),
		cmocka_unit_test(test_fields_out_of_form),
		cmocka_unit_test(test_sign_verify_tamper),
		cmocka_unit_test(test_json_round_trip),
		cmocka_unit_test(test_json_refused),
		cmocka_unit_test(test_key_files),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* proof.c - signed proofs of what ran (contract and canonical text in
 * proof.h): serializing, signing and verifying a proof, its JSON form, and
 * the state's signing key in STATE_DIR/proof.key.
 *
 * The primitives are libsodium's: Ed25519 (crypto_sign_detached /
 * crypto_sign_verify_detached) and its base64 codec.  The secret key lives
 * in sodium_malloc'd memory (locked, guarded) and is wiped when freed.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>
#include "state/proof.h"

#define KEY_PREFIX "ed25519:"
#define KEY_FILE_HEADER "cutover-proof-key-v1\n"
#define KEY_FILE_MAX 256

struct proof_signer {
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];
	unsigned char sk[crypto_sign_SECRETKEYBYTES];
	char key[PROOF_KEY_TEXT_MAX + 1];
};

/* ---- fields ------------------------------------------------------------- */

static bool in_set(const char *s, size_t min, size_t max, const char *first, const char *rest)
{
	size_t n = strlen(s);

	if (n < min || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr(i ? rest : first, c);
		if (!ok || !c)
			return false;
	}
	return true;
}

static bool env_valid(const char *s)
{
	return !*s || in_set(s, 1, STATE_ENV_MAX, "", "-_");
}

static bool service_valid(const char *s)
{
	return in_set(s, 1, STATE_SERVICE_MAX, "", "-_");
}

static bool version_valid(const char *s)
{
	return in_set(s, 1, STATE_VERSION_MAX, "ABCDEFGHIJKLMNOPQRSTUVWXYZ.+-", "ABCDEFGHIJKLMNOPQRSTUVWXYZ.+-");
}

static bool digest_valid(const char *s)
{
	if (strlen(s) != STATE_DIGEST_HEX)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

/* The raw key of text ("ed25519:BASE64") into pk: 0 or -EINVAL. */
static int key_decode(const char *text, unsigned char pk[crypto_sign_PUBLICKEYBYTES])
{
	unsigned char raw[crypto_sign_PUBLICKEYBYTES + 1];
	const char *b64 = text + strlen(KEY_PREFIX);
	size_t len = 0;

	if (strncmp(text, KEY_PREFIX, strlen(KEY_PREFIX)) || strlen(text) > PROOF_KEY_TEXT_MAX ||
	    sodium_base642bin(raw, sizeof(raw), b64, strlen(b64), NULL, &len, NULL, sodium_base64_VARIANT_ORIGINAL) ||
	    len != crypto_sign_PUBLICKEYBYTES)
		return -EINVAL;
	memcpy(pk, raw, len);
	return 0;
}

bool proof_key_valid(const char *text)
{
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];

	return text && key_decode(text, pk) == 0;
}

static void key_encode(const unsigned char pk[crypto_sign_PUBLICKEYBYTES], char *out, size_t outlen)
{
	char b64[sodium_base64_ENCODED_LEN(crypto_sign_PUBLICKEYBYTES, sodium_base64_VARIANT_ORIGINAL)];

	sodium_bin2base64(b64, sizeof(b64), pk, crypto_sign_PUBLICKEYBYTES, sodium_base64_VARIANT_ORIGINAL);
	snprintf(out, outlen, KEY_PREFIX "%s", b64);
}

/* ---- the canonical text, signing, verifying ----------------------------- */

int proof_serialize(const struct proof *p, char *out, size_t outlen)
{
	int n;

	if (!env_valid(p->env) || !service_valid(p->service) || !version_valid(p->version) ||
	    !digest_valid(p->digest) || p->live_since < 0 || p->exported_at <= 0 || p->live_since > p->exported_at ||
	    !proof_key_valid(p->key))
		return -EINVAL;
	n = snprintf(out, outlen,
		     PROOF_FORMAT "\nenv=%s\nservice=%s\nversion=%s\ndigest=%s\nlive_since=%" PRId64
				  "\nhealthy=%s\nexported_at=%" PRId64 "\nkey=%s\n",
		     p->env, p->service, p->version, p->digest, p->live_since, p->healthy ? "true" : "false",
		     p->exported_at, p->key);
	if (n < 0 || (size_t)n >= outlen)
		return -ENOSPC;
	return n;
}

int proof_sign(struct proof *p, const struct proof_signer *s)
{
	unsigned char sig[crypto_sign_BYTES];
	char text[PROOF_CANONICAL_MAX];
	int n;

	if (sodium_init() < 0)
		return -EIO;
	snprintf(p->key, sizeof(p->key), "%s", s->key); /* the key is signed too */
	n = proof_serialize(p, text, sizeof(text));
	if (n < 0)
		return n;
	crypto_sign_detached(sig, NULL, (const unsigned char *)text, (unsigned long long)n, s->sk);
	sodium_bin2base64(p->signature, sizeof(p->signature), sig, sizeof(sig), sodium_base64_VARIANT_ORIGINAL);
	return 0;
}

int proof_verify(const struct proof *p)
{
	unsigned char sig[crypto_sign_BYTES + 1], pk[crypto_sign_PUBLICKEYBYTES];
	char text[PROOF_CANONICAL_MAX];
	size_t len = 0;
	int n;

	if (sodium_init() < 0)
		return -EIO;
	n = proof_serialize(p, text, sizeof(text));
	if (n < 0)
		return n;
	if (key_decode(p->key, pk) < 0 ||
	    sodium_base642bin(sig, sizeof(sig), p->signature, strlen(p->signature), NULL, &len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) ||
	    len != crypto_sign_BYTES)
		return -EINVAL;
	if (crypto_sign_verify_detached(sig, (const unsigned char *)text, (unsigned long long)n, pk) != 0)
		return -EBADMSG;
	return 0;
}

/* ---- JSON --------------------------------------------------------------- */

json_t *proof_json(const struct proof *p)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:b, s:I, s:s, s:s}", "format", PROOF_FORMAT, "env", p->env,
			 "service", p->service, "version", p->version, "digest", p->digest, "live_since",
			 (json_int_t)p->live_since, "healthy", p->healthy, "exported_at", (json_int_t)p->exported_at,
			 "key", p->key, "signature", p->signature);
}

/* Member NAME of j, a string, copied into out[outlen] (which it must fit). */
static int member_text(const json_t *j, const char *name, char *out, size_t outlen, char *err, size_t errlen)
{
	const json_t *v = json_object_get(j, name);

	if (!json_is_string(v)) {
		snprintf(err, errlen, "proof: %s: %s", name, v ? "must be a string" : "missing");
		return -EINVAL;
	}
	if (strlen(json_string_value(v)) >= outlen || strlen(json_string_value(v)) != json_string_length(v)) {
		snprintf(err, errlen, "proof: %s: too long, or not text", name);
		return -EINVAL;
	}
	memcpy(out, json_string_value(v), strlen(json_string_value(v)) + 1);
	return 0;
}

static int member_ms(const json_t *j, const char *name, int64_t *out, char *err, size_t errlen)
{
	const json_t *v = json_object_get(j, name);

	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		snprintf(err, errlen, "proof: %s: %s", name, v ? "must be a time in Unix milliseconds" : "missing");
		return -EINVAL;
	}
	*out = (int64_t)json_integer_value(v);
	return 0;
}

static const char *const members[] = { "format", "env", "service", "version", "digest", "live_since",
					"healthy", "exported_at", "key", "signature" };

/* Whether each field of p is in its form: NULL, or the sentence. */
static const char *fields_wrong(const struct proof *p)
{
	if (!env_valid(p->env))
		return "proof: env: not an environment name";
	if (!service_valid(p->service))
		return "proof: service: not a service name";
	if (!version_valid(p->version))
		return "proof: version: not a version";
	if (!digest_valid(p->digest))
		return "proof: digest: not a SHA-256 digest (64 lower-case hex digits)";
	if (p->exported_at <= 0 || p->live_since > p->exported_at)
		return "proof: live_since must not be after exported_at";
	if (!proof_key_valid(p->key))
		return "proof: key: not a public key (\"ed25519:\" and 32 bytes in base64)";
	return NULL;
}

int proof_parse(const json_t *j, struct proof *ret, char *err, size_t errlen)
{
	struct proof p = { 0 };
	char format[32];
	const char *key, *wrong;
	const json_t *v;
	int r;

	if (!json_is_object(j)) {
		snprintf(err, errlen, "proof: must be a JSON object (as cutover export-proof writes it)");
		return -EINVAL;
	}
	json_object_foreach((json_t *)j, key, v) {
		bool known = false;
		for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++)
			known |= !strcmp(key, members[i]);
		if (!known) {
			snprintf(err, errlen, "proof: unknown member \"%.40s\"", key);
			return -EINVAL;
		}
	}
	if ((r = member_text(j, "format", format, sizeof(format), err, errlen)) < 0 ||
	    (r = member_text(j, "env", p.env, sizeof(p.env), err, errlen)) < 0 ||
	    (r = member_text(j, "service", p.service, sizeof(p.service), err, errlen)) < 0 ||
	    (r = member_text(j, "version", p.version, sizeof(p.version), err, errlen)) < 0 ||
	    (r = member_text(j, "digest", p.digest, sizeof(p.digest), err, errlen)) < 0 ||
	    (r = member_ms(j, "live_since", &p.live_since, err, errlen)) < 0 ||
	    (r = member_ms(j, "exported_at", &p.exported_at, err, errlen)) < 0 ||
	    (r = member_text(j, "key", p.key, sizeof(p.key), err, errlen)) < 0 ||
	    (r = member_text(j, "signature", p.signature, sizeof(p.signature), err, errlen)) < 0)
		return r;
	if (strcmp(format, PROOF_FORMAT)) {
		snprintf(err, errlen, "proof: format: \"%s\" is not one this cutover reads (%s)", format, PROOF_FORMAT);
		return -EINVAL;
	}
	v = json_object_get(j, "healthy");
	if (!json_is_boolean(v)) {
		snprintf(err, errlen, "proof: healthy: %s", v ? "must be true or false" : "missing");
		return -EINVAL;
	}
	p.healthy = json_is_true(v);
	wrong = fields_wrong(&p);
	if (wrong) {
		snprintf(err, errlen, "%s", wrong);
		return -EINVAL;
	}
	*ret = p;
	return 0;
}

/* ---- key files ---------------------------------------------------------- */

/* Write text to DIR/NAME with MODE through a temporary file: renamed over
 * it (replace), or linked (a file already there wins: -EEXIST). */
static int write_key_file(const char *dir, const char *name, mode_t mode, const char *text, bool replace)
{
	char path[4200], tmp[4300];
	size_t len = strlen(text), off = 0;
	int fd, r = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp-%d", dir, name, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	while (r == 0 && off < len) {
		ssize_t n = write(fd, text + off, len - off);
		if (n < 0 && errno != EINTR)
			r = -errno;
		else if (n > 0)
			off += (size_t)n;
	}
	if (r == 0 && (fchmod(fd, mode) < 0 || fsync(fd) < 0))
		r = -errno;
	close(fd);
	if (r == 0 && replace && rename(tmp, path) < 0)
		r = -errno;
	if (r == 0 && !replace && link(tmp, path) < 0)
		r = -errno;
	if (r < 0 || !replace)
		unlink(tmp);
	return r;
}

/* Read at most KEY_FILE_MAX - 1 bytes of PATH into buf; with private, the
 * file must be a regular file that neither its group nor others may read. */
static int read_key_file(const char *path, bool private, char *buf, size_t buflen, char *err, size_t errlen)
{
	struct stat sb;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), r = 0;

	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return r;
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		r = -EINVAL;
	} else if (private && (sb.st_mode & 077)) {
		snprintf(err, errlen, "%s: mode %04o lets others read the proof key: refused (chmod 600 it, and "
			 "replace it if someone else may have read it)", path, (unsigned)(sb.st_mode & 07777));
		r = -EACCES;
	} else if ((n = read(fd, buf, buflen - 1)) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
	} else {
		buf[n] = 0;
	}
	close(fd);
	return r;
}

/* A signer from its 32-byte seed (wiped by the caller). */
static struct proof_signer *signer_from_seed(const unsigned char *seed)
{
	struct proof_signer *s = sodium_malloc(sizeof(*s));

	if (!s)
		return NULL;
	crypto_sign_seed_keypair(s->pk, s->sk, seed);
	key_encode(s->pk, s->key, sizeof(s->key));
	return s;
}

/* Create DIR/proof.key (a new seed) unless one appeared meanwhile. */
static int create_key(const char *dir, char *err, size_t errlen)
{
	unsigned char seed[crypto_sign_SEEDBYTES];
	char b64[sodium_base64_ENCODED_LEN(crypto_sign_SEEDBYTES, sodium_base64_VARIANT_ORIGINAL)];
	char text[KEY_FILE_MAX];
	int r;

	randombytes_buf(seed, sizeof(seed));
	sodium_bin2base64(b64, sizeof(b64), seed, sizeof(seed), sodium_base64_VARIANT_ORIGINAL);
	snprintf(text, sizeof(text), KEY_FILE_HEADER "%s\n", b64);
	r = write_key_file(dir, "proof.key", 0600, text, false);
	sodium_memzero(seed, sizeof(seed));
	sodium_memzero(b64, sizeof(b64));
	sodium_memzero(text, sizeof(text));
	if (r == -EEXIST)
		return 0; /* another process made one first: that one it is */
	if (r < 0)
		snprintf(err, errlen, "%s/proof.key: cannot create it: %s", dir, strerror(-r));
	return r;
}

int proof_signer_load(const char *dir, struct proof_signer **ret, char *err, size_t errlen)
{
	unsigned char seed[crypto_sign_SEEDBYTES + 1];
	char path[4200], text[KEY_FILE_MAX], pub[PROOF_KEY_TEXT_MAX + 2], have[PROOF_KEY_TEXT_MAX + 2];
	char scratch[8];
	struct proof_signer *s = NULL;
	size_t len = 0;
	int r;

	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium could not be initialised");
		return -EIO;
	}
	snprintf(path, sizeof(path), "%s/proof.key", dir);
	if (access(path, F_OK) < 0 && errno == ENOENT && (r = create_key(dir, err, errlen)) < 0)
		return r;
	r = read_key_file(path, true, text, sizeof(text), err, errlen);
	if (r < 0)
		goto out;
	if (strncmp(text, KEY_FILE_HEADER, strlen(KEY_FILE_HEADER)) ||
	    sodium_base642bin(seed, sizeof(seed), text + strlen(KEY_FILE_HEADER), strlen(text + strlen(KEY_FILE_HEADER)),
			      "\n", &len, NULL, sodium_base64_VARIANT_ORIGINAL) ||
	    len != crypto_sign_SEEDBYTES) {
		snprintf(err, errlen, "%s: not a proof key (\"%s\" and a 32-byte seed in base64)", path,
			 "cutover-proof-key-v1");
		r = -EINVAL;
		goto out;
	}
	s = signer_from_seed(seed);
	if (!s) {
		snprintf(err, errlen, "out of memory");
		r = -ENOMEM;
		goto out;
	}
	/* the public half, for the environments that trust it */
	snprintf(pub, sizeof(pub), "%s\n", s->key);
	snprintf(path, sizeof(path), "%s/proof.pub", dir);
	if (read_key_file(path, false, have, sizeof(have), scratch, sizeof(scratch)) < 0 || strcmp(have, pub)) {
		r = write_key_file(dir, "proof.pub", 0644, pub, true);
		if (r < 0) {
			snprintf(err, errlen, "%s: cannot write it: %s", path, strerror(-r));
			goto out;
		}
	}
	*ret = s;
	s = NULL;
	r = 0;
out:
	sodium_memzero(seed, sizeof(seed));
	sodium_memzero(text, sizeof(text));
	proof_signer_free(s);
	return r;
}

const char *proof_signer_key(const struct proof_signer *s)
{
	return s->key;
}

struct proof_signer *proof_signer_free(struct proof_signer *s)
{
	if (s)
		sodium_free(s); /* wipes it */
	return NULL;
}

int proof_public_key_read(const char *dir, char *key, size_t keylen, char *err, size_t errlen)
{
	char path[4200], text[KEY_FILE_MAX];
	int r;

	snprintf(path, sizeof(path), "%s/proof.pub", dir);
	r = read_key_file(path, false, text, sizeof(text), err, errlen);
	if (r < 0)
		return r;
	text[strcspn(text, "\n")] = 0;
	if (!proof_key_valid(text) || strlen(text) >= keylen) {
		snprintf(err, errlen, "%s: not a proof key (\"ed25519:\" and 32 bytes in base64)", path);
		return -EINVAL;
	}
	memcpy(key, text, strlen(text) + 1);
	return 0;
}

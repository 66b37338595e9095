/* age.c - the age file format, C2SP age v1, with X25519 recipients only.
 *
 * An age file is a text header and a binary payload:
 *
 *   age-encryption.org/v1
 *   -> X25519 SHARE                 one stanza per recipient: a type and
 *   BODY                            arguments, then the body in base64
 *   --- MAC                         wrapped at 64 columns (the last line
 *   NONCE CHUNK CHUNK ...           shorter, possibly empty)
 *
 * A random 16-byte file key encrypts everything.  Each X25519 stanza wraps
 * it for one recipient: an ephemeral key pair, SHARE its public half, the
 * shared secret X25519(ephemeral, recipient) run through HKDF-SHA-256 (salt
 * SHARE || recipient, info "age-encryption.org/v1/X25519") into the key
 * that seals the file key with ChaCha20-Poly1305 (zero nonce): the body.
 * The MAC is HMAC-SHA-256 over the header up to "---", keyed by
 * HKDF(file key, "", "header").  The payload key is HKDF(file key, NONCE,
 * "payload"); the plaintext is sealed in 64 KiB chunks with
 * ChaCha20-Poly1305, nonce = an 11-byte big-endian chunk counter and a
 * byte 1 for the last chunk, else 0.  Only the last chunk may be short,
 * and it is empty only when the whole plaintext is.
 *
 * Parsing is exactly as the spec says: base64 is canonical and without
 * padding, arguments are non-empty runs of visible ASCII, every stanza
 * ends with a short body line, LF only.  Stanzas of other types are parsed
 * and skipped.  All primitives come from libsodium.  The file key, the
 * derived keys and the plaintext never leave sodium memory or a stack
 * buffer that is wiped before returning.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "secrets/secrets.h"
#include "secrets/secrets-internal.h"

#define VERSION_LINE "age-encryption.org/v1"
#define X25519_INFO "age-encryption.org/v1/X25519"
#define FILE_KEY_LEN 16
#define NONCE_LEN 16
#define CHUNK 65536
#define TAG crypto_aead_chacha20poly1305_ietf_ABYTES
#define COLUMNS 64
#define B64_32 43                     /* 32 bytes in base64 without padding */
#define B64_NOPAD sodium_base64_VARIANT_ORIGINAL_NO_PADDING

int secrets_err(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return r;
}

void hkdf_sha256(uint8_t *out, size_t outlen, const uint8_t *ikm, size_t ikmlen, const uint8_t *salt,
		 size_t saltlen, const char *info)
{
	crypto_auth_hmacsha256_state st;
	uint8_t prk[crypto_auth_hmacsha256_BYTES], t[crypto_auth_hmacsha256_BYTES];
	uint8_t counter = 1;
	size_t done = 0;

	/* extract: an empty salt is HashLen zero bytes, which HMAC pads to the same key */
	crypto_auth_hmacsha256_init(&st, saltlen ? salt : (const uint8_t *)"", saltlen);
	crypto_auth_hmacsha256_update(&st, ikm, ikmlen);
	crypto_auth_hmacsha256_final(&st, prk);
	/* expand: T(i) = HMAC(PRK, T(i-1) || info || i) */
	while (done < outlen) {
		size_t n = outlen - done < sizeof(t) ? outlen - done : sizeof(t);

		crypto_auth_hmacsha256_init(&st, prk, sizeof(prk));
		if (counter > 1)
			crypto_auth_hmacsha256_update(&st, t, sizeof(t));
		crypto_auth_hmacsha256_update(&st, (const uint8_t *)info, strlen(info));
		crypto_auth_hmacsha256_update(&st, &counter, 1);
		crypto_auth_hmacsha256_final(&st, t);
		memcpy(out + done, t, n);
		done += n;
		counter++;
	}
	sodium_memzero(&st, sizeof(st));
	sodium_memzero(prk, sizeof(prk));
	sodium_memzero(t, sizeof(t));
}

/* ---- reading the header ---------------------------------------------------- */

/* The header being read: the file and where the next line starts. */
struct header {
	const uint8_t *file;
	size_t len, pos;
	char *err;
	size_t errlen;
};

/* The next line (without its LF) in *line and *n.  Returns 0, or -EBADMSG
 * when the file ends first. */
static int next_line(struct header *h, const char **line, size_t *n)
{
	const uint8_t *lf;

	if (h->pos >= h->len)
		return secrets_err(h->err, h->errlen, -EBADMSG, "malformed header: the file ends inside it");
	lf = memchr(h->file + h->pos, '\n', h->len - h->pos);
	if (!lf)
		return secrets_err(h->err, h->errlen, -EBADMSG, "malformed header: the file ends inside it");
	*line = (const char *)h->file + h->pos;
	*n = (size_t)(lf - (h->file + h->pos));
	h->pos += *n + 1;
	return 0;
}

static bool is_base64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* Canonical base64 without padding of exactly want bytes.  Returns 0 or
 * -EBADMSG. */
static int decode_exact(const char *text, size_t n, uint8_t *out, size_t want)
{
	size_t got = 0;

	for (size_t i = 0; i < n; i++)
		if (!is_base64_char(text[i]))
			return -EBADMSG;
	if (sodium_base642bin(out, want, text, n, NULL, &got, NULL, B64_NOPAD) < 0 || got != want)
		return -EBADMSG;
	return 0;
}

/* One stanza as read: its arguments (args[0] the type) and its body. */
#define STANZA_ARGS_MAX 16
struct stanza {
	const char *args[STANZA_ARGS_MAX];
	size_t arglen[STANZA_ARGS_MAX];
	size_t nargs;
	uint8_t *body;                /* malloc'd */
	size_t bodylen;
};

/* The stanza whose "-> " line is line (n bytes): its arguments, then the
 * body lines up to the first one shorter than 64 columns. */
static int read_stanza(struct header *h, const char *line, size_t n, struct stanza *s)
{
	size_t i = 3, start, alloc = 0;
	const char *text;
	size_t tn;
	int r;

	memset(s, 0, sizeof(*s));
	while (i <= n) {
		start = i;
		while (i < n && line[i] != ' ') {
			if (line[i] < 33 || line[i] > 126)
				return secrets_err(h->err, h->errlen, -EBADMSG,
						   "malformed header: a stanza argument holds a character that is not visible ASCII");
			i++;
		}
		if (i == start)
			return secrets_err(h->err, h->errlen, -EBADMSG, "malformed header: an empty stanza argument");
		if (s->nargs == STANZA_ARGS_MAX)
			return secrets_err(h->err, h->errlen, -EBADMSG, "malformed header: a stanza with more than %d arguments",
					   STANZA_ARGS_MAX);
		s->args[s->nargs] = line + start;
		s->arglen[s->nargs++] = i - start;
		i++;          /* the space, or one past the end */
	}
	for (;;) {
		r = next_line(h, &text, &tn);
		if (r < 0)
			return r;
		if (tn > COLUMNS)
			return secrets_err(h->err, h->errlen, -EBADMSG,
					   "malformed header: a stanza body line is longer than 64 columns");
		if (s->bodylen + 48 > alloc) {
			uint8_t *grown = realloc(s->body, alloc = alloc ? alloc * 2 : 96);

			if (!grown)
				return -ENOMEM;
			s->body = grown;
		}
		/* a full line is 16 groups of 4: each line decodes on its own */
		for (i = 0; i < tn; i++)
			if (!is_base64_char(text[i]))
				return secrets_err(h->err, h->errlen, -EBADMSG,
						   "malformed header: a stanza body is not base64 (or a stanza lacks its final short line)");
		if (sodium_base642bin(s->body + s->bodylen, 48, text, tn, NULL, &i, NULL, B64_NOPAD) < 0)
			return secrets_err(h->err, h->errlen, -EBADMSG,
					   "malformed header: a stanza body is not canonical base64");
		s->bodylen += i;
		if (tn < COLUMNS)
			return 0;
	}
}

static bool arg_is(const struct stanza *s, size_t k, const char *word)
{
	return s->nargs > k && s->arglen[k] == strlen(word) && !memcmp(s->args[k], word, s->arglen[k]);
}

/* Unwrap the file key of an X25519 stanza with the identity.  Returns 1
 * with file_key filled, 0 when the stanza is for another recipient, or
 * -EBADMSG (malformed, or a low-order share). */
static int x25519_unwrap(struct header *h, const struct stanza *s, const struct age_identity *id,
			 uint8_t file_key[FILE_KEY_LEN])
{
	uint8_t share[32], shared[32], salt[64], wrap[32];
	static const uint8_t zero_nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
	int r = 0;

	if (s->nargs != 2)
		return secrets_err(h->err, h->errlen, -EBADMSG,
				   "malformed header: an X25519 stanza has %zu arguments, expected one (the share)",
				   s->nargs - 1);
	if (decode_exact(s->args[1], s->arglen[1], share, sizeof(share)) < 0)
		return secrets_err(h->err, h->errlen, -EBADMSG,
				   "malformed header: an X25519 share is not 32 bytes in canonical base64");
	if (s->bodylen != FILE_KEY_LEN + TAG)
		return secrets_err(h->err, h->errlen, -EBADMSG,
				   "malformed header: an X25519 stanza body is %zu bytes, expected %d", s->bodylen,
				   FILE_KEY_LEN + (int)TAG);
	if (!id)
		return 0;
	if (crypto_scalarmult(shared, id->key, share) < 0) {
		r = secrets_err(h->err, h->errlen, -EBADMSG,
				"malformed header: an X25519 share is a low-order point (the shared secret would be zero)");
		goto out;
	}
	memcpy(salt, share, 32);
	memcpy(salt + 32, id->public_key, 32);
	hkdf_sha256(wrap, sizeof(wrap), shared, sizeof(shared), salt, sizeof(salt), X25519_INFO);
	r = crypto_aead_chacha20poly1305_ietf_decrypt(file_key, NULL, NULL, s->body, s->bodylen, NULL, 0, zero_nonce,
						      wrap) == 0;
out:
	sodium_memzero(shared, sizeof(shared));
	sodium_memzero(wrap, sizeof(wrap));
	return r;
}

/* The MAC line: "--- " and 43 characters of base64, exactly. */
static int read_mac(struct header *h, const char *line, size_t n, uint8_t mac[32])
{
	if (n != 4 + B64_32 || line[3] != ' ' || decode_exact(line + 4, B64_32, mac, 32) < 0)
		return secrets_err(h->err, h->errlen, -EBADMSG,
				   "malformed header: the MAC line is not \"--- \" and 32 bytes in canonical base64");
	return 0;
}

/* Read the whole header, unwrapping the file key with id on the way.
 * Returns 0 with file_key, *ret_mac_end (the header's length up to and
 * including "---") and h->pos at the payload, -ENOKEY, -EBADMSG or
 * -ENOMEM. */
static int read_header(struct header *h, const struct age_identity *id, uint8_t file_key[FILE_KEY_LEN],
		       uint8_t mac[32], size_t *ret_mac_end)
{
	struct stanza s = { 0 };
	size_t n, nstanzas = 0, nscrypt = 0;
	const char *line;
	bool found = false;
	int r;

	r = next_line(h, &line, &n);
	if (r < 0)
		return secrets_err(h->err, h->errlen, -EBADMSG, "not an age file (empty, or no header line)");
	if (n != strlen(VERSION_LINE) || memcmp(line, VERSION_LINE, n))
		return secrets_err(h->err, h->errlen, -EBADMSG, "not an age v1 file: the first line is not %s",
				   VERSION_LINE);
	for (;;) {
		r = next_line(h, &line, &n);
		if (r < 0)
			return r;
		if (n >= 3 && !memcmp(line, "---", 3))
			break;
		if (n < 3 || memcmp(line, "-> ", 3))
			return secrets_err(h->err, h->errlen, -EBADMSG,
					   "malformed header: a line is neither a stanza (\"-> \") nor the MAC (\"---\")");
		r = read_stanza(h, line, n, &s);
		if (r >= 0 && arg_is(&s, 0, "X25519")) {
			r = x25519_unwrap(h, &s, found ? NULL : id, file_key);
			found |= r > 0;
		}
		nscrypt += arg_is(&s, 0, "scrypt");
		nstanzas++;
		free(s.body);
		s.body = NULL;
		if (r < 0)
			return r;
	}
	*ret_mac_end = (size_t)((const uint8_t *)line + 3 - h->file);
	r = read_mac(h, line, n, mac);
	if (r < 0)
		goto fail;
	if (nstanzas == 0) {
		r = secrets_err(h->err, h->errlen, -EBADMSG, "malformed header: no recipient stanza");
		goto fail;
	}
	if (nscrypt && nstanzas > 1) {
		r = secrets_err(h->err, h->errlen, -EBADMSG, "malformed header: a scrypt stanza must be alone");
		goto fail;
	}
	if (!found) {
		if (nscrypt)
			r = secrets_err(h->err, h->errlen, -ENOKEY,
					"encrypted with a passphrase (scrypt), which cutover does not read");
		else
			r = -ENOKEY;
		goto fail;
	}
	return 0;
fail:
	sodium_memzero(file_key, FILE_KEY_LEN);
	return r;
}

/* ---- the payload ------------------------------------------------------------- */

static void chunk_nonce(uint8_t nonce[12], uint64_t counter, bool last)
{
	memset(nonce, 0, 12);
	for (int i = 0; i < 8; i++)
		nonce[10 - i] = (uint8_t)(counter >> (8 * i));
	nonce[11] = last;
}

/* Open the chunks of payload (len bytes) with key into out (room for len
 * bytes).  Returns 0 with *ret_len, or -EBADMSG. */
static int open_payload(const uint8_t *payload, size_t len, const uint8_t key[32], uint8_t *out, size_t *ret_len,
			char *err, size_t errlen)
{
	uint8_t nonce[12];
	uint64_t counter = 0;
	size_t pos = 0, done = 0;

	if (len == 0)
		return secrets_err(err, errlen, -EBADMSG, "truncated: the payload has no chunk");
	for (;;) {
		size_t rem = len - pos, clen = rem > CHUNK + TAG ? CHUNK + TAG : rem;
		bool last = clen == rem;
		unsigned long long mlen;

		if (clen < TAG)
			return secrets_err(err, errlen, -EBADMSG,
					   "truncated: payload chunk %llu is shorter than its authentication tag",
					   (unsigned long long)counter + 1);
		if (last && clen == TAG && counter > 0)
			return secrets_err(err, errlen, -EBADMSG,
					   "malformed payload: the last chunk is empty (it may be empty only when the whole "
					   "payload is)");
		chunk_nonce(nonce, counter, last);
		if (crypto_aead_chacha20poly1305_ietf_decrypt(out + done, &mlen, NULL, payload + pos, clen, NULL, 0,
							      nonce, key) < 0)
			return secrets_err(err, errlen, -EBADMSG,
					   "payload chunk %llu failed authentication: the file was changed, truncated, "
					   "or has data after its end", (unsigned long long)counter + 1);
		done += mlen;
		pos += clen;
		counter++;
		if (last)
			break;
	}
	*ret_len = done;
	return 0;
}

static int decrypt_binary(const uint8_t *file, size_t len, const struct age_identity *id, uint8_t **ret,
			  size_t *ret_len, char *err, size_t errlen)
{
	struct header h = { .file = file, .len = len, .err = err, .errlen = errlen };
	uint8_t file_key[FILE_KEY_LEN], mac[32], want[32], key[32], *out = NULL;
	size_t mac_end = 0, plain_len = 0;
	int r;

	r = read_header(&h, id, file_key, mac, &mac_end);
	if (r == -ENOKEY && err && errlen && !err[0]) {
		char pub[64];
		struct age_recipient me;

		memcpy(me.key, id->public_key, 32);
		age_recipient_format(&me, pub, sizeof(pub));
		secrets_err(err, errlen, r, "not encrypted to this identity (%s): no recipient stanza opens with it",
			    pub);
	}
	if (r < 0)
		return r;
	hkdf_sha256(key, sizeof(key), file_key, sizeof(file_key), NULL, 0, "header");
	crypto_auth_hmacsha256(want, file, mac_end, key);
	if (crypto_verify_32(want, mac) != 0) {
		r = secrets_err(err, errlen, -EBADMSG,
				"header MAC mismatch: the header was changed after it was written");
		goto out;
	}
	if (len - h.pos < NONCE_LEN) {
		r = secrets_err(err, errlen, -EBADMSG, "truncated: the payload nonce is missing");
		goto out;
	}
	hkdf_sha256(key, sizeof(key), file_key, sizeof(file_key), file + h.pos, NONCE_LEN, "payload");
	h.pos += NONCE_LEN;
	out = sodium_malloc(len - h.pos + 1);
	if (!out) {
		r = -ENOMEM;
		goto out;
	}
	r = open_payload(file + h.pos, len - h.pos, key, out, &plain_len, err, errlen);
	if (r < 0)
		goto out;
	out[plain_len] = 0;
	*ret = out;
	*ret_len = plain_len;
	out = NULL;
out:
	sodium_free(out);
	sodium_memzero(file_key, sizeof(file_key));
	sodium_memzero(key, sizeof(key));
	return r;
}

int age_decrypt(const uint8_t *file, size_t len, const struct age_identity *id, uint8_t **ret, size_t *ret_len,
		char *err, size_t errlen)
{
	uint8_t *binary = NULL;
	size_t binary_len = 0;
	int r;

	if (err && errlen)
		err[0] = 0;
	if (sodium_init() < 0)
		return secrets_err(err, errlen, -ENOMEM, "libsodium could not be initialised");
	if (!id || !id->key)
		return secrets_err(err, errlen, -EINVAL, "no identity");
	if (!age_armor_detect(file, len))
		return decrypt_binary(file, len, id, ret, ret_len, err, errlen);
	r = age_armor_decode(file, len, &binary, &binary_len, err, errlen);
	if (r < 0)
		return r;
	r = decrypt_binary(binary, binary_len, id, ret, ret_len, err, errlen);
	free(binary);
	return r;
}

/* ---- writing ------------------------------------------------------------------ */

/* Append the stanza that wraps file_key for r to out.  Returns 0, or
 * -EINVAL for a recipient that is a low-order point. */
static int x25519_wrap(const struct age_recipient *rcpt, const uint8_t file_key[FILE_KEY_LEN], char *out,
		       size_t *pos)
{
	static const uint8_t zero_nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
	uint8_t eph[32], share[32], shared[32], salt[64], wrap[32], body[FILE_KEY_LEN + TAG];
	char b64[B64_32 + 1];
	int r = 0;

	randombytes_buf(eph, sizeof(eph));
	crypto_scalarmult_base(share, eph);
	if (crypto_scalarmult(shared, eph, rcpt->key) < 0) {
		r = -EINVAL;
		goto out;
	}
	memcpy(salt, share, 32);
	memcpy(salt + 32, rcpt->key, 32);
	hkdf_sha256(wrap, sizeof(wrap), shared, sizeof(shared), salt, sizeof(salt), X25519_INFO);
	crypto_aead_chacha20poly1305_ietf_encrypt(body, NULL, file_key, FILE_KEY_LEN, NULL, 0, NULL, zero_nonce, wrap);
	sodium_bin2base64(b64, sizeof(b64), share, sizeof(share), B64_NOPAD);
	*pos += (size_t)sprintf(out + *pos, "-> X25519 %s\n", b64);
	sodium_bin2base64(b64, sizeof(b64), body, sizeof(body), B64_NOPAD);
	*pos += (size_t)sprintf(out + *pos, "%s\n", b64);     /* 43 columns: one short line */
out:
	sodium_memzero(eph, sizeof(eph));
	sodium_memzero(shared, sizeof(shared));
	sodium_memzero(wrap, sizeof(wrap));
	return r;
}

int age_encrypt(const uint8_t *plaintext, size_t len, const struct age_recipient *r, size_t n, uint8_t **ret,
		size_t *ret_len)
{
	uint8_t file_key[FILE_KEY_LEN], key[32], mac[32], nonce[12], *out = NULL;
	size_t nchunks = len ? (len + CHUNK - 1) / CHUNK : 1, header_max, pos = 0, done = 0;
	char b64[B64_32 + 1];
	int rc = 0;

	if (n == 0 || (!plaintext && len))
		return -EINVAL;
	if (sodium_init() < 0)
		return -ENOMEM;
	if (len > SIZE_MAX / 2 || n > (SIZE_MAX / 4) / 128)
		return -EFBIG;
	header_max = sizeof(VERSION_LINE) + n * 128 + 64;
	out = malloc(header_max + NONCE_LEN + len + nchunks * TAG);
	if (!out)
		return -ENOMEM;
	randombytes_buf(file_key, sizeof(file_key));
	pos = (size_t)sprintf((char *)out, "%s\n", VERSION_LINE);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = x25519_wrap(&r[i], file_key, (char *)out, &pos);
	if (rc < 0)
		goto out;
	memcpy(out + pos, "---", 3);
	pos += 3;
	hkdf_sha256(key, sizeof(key), file_key, sizeof(file_key), NULL, 0, "header");
	crypto_auth_hmacsha256(mac, out, pos, key);
	sodium_bin2base64(b64, sizeof(b64), mac, sizeof(mac), B64_NOPAD);
	pos += (size_t)sprintf((char *)out + pos, " %s\n", b64);

	randombytes_buf(out + pos, NONCE_LEN);
	hkdf_sha256(key, sizeof(key), file_key, sizeof(file_key), out + pos, NONCE_LEN, "payload");
	pos += NONCE_LEN;
	for (uint64_t counter = 0; counter < nchunks; counter++) {
		size_t m = len - done < CHUNK ? len - done : CHUNK;

		chunk_nonce(nonce, counter, counter + 1 == nchunks);
		crypto_aead_chacha20poly1305_ietf_encrypt(out + pos, NULL, plaintext ? plaintext + done : (const uint8_t *)"", m, NULL, 0,
							  NULL, nonce, key);
		pos += m + TAG;
		done += m;
	}
	*ret = out;
	*ret_len = pos;
	out = NULL;
out:
	free(out);
	sodium_memzero(file_key, sizeof(file_key));
	sodium_memzero(key, sizeof(key));
	return rc;
}

/* file.c - the secrets file of an environment: an age file whose plaintext
 * is the small text format of secrets.h,
 *
 *   cutover-secrets v1
 *   NAME CHANGED_UNIX CHANGED_BY BASE64(VALUE)
 *
 * one line per secret, ordered by name, each ending with a LF (the last
 * one may lack it).  Parsing is strict and never quotes what it read: a
 * message names the line and what is wrong with it, and names a secret
 * only once its name was checked (a value in the wrong column must not end
 * up in a terminal or a log).  Values are decoded straight into
 * sodium_malloc memory, and the plaintext, built or decrypted, lives there
 * too; both are wiped when freed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>
#include "secrets/secrets.h"
#include "secrets/secrets-internal.h"

#define MAGIC "cutover-secrets v1"
#define B64_ALPHABET "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
#define BY_MAX 32
#define CHANGED_DIGITS_MAX 18
/* the largest plaintext: every secret at its largest, base64 and the rest */
#define LINE_MAX_LEN (SECRET_NAME_MAX + 1 + CHANGED_DIGITS_MAX + 1 + BY_MAX + 1 + (SECRET_VALUE_MAX + 2) / 3 * 4 + 1)
#define PLAINTEXT_MAX (sizeof(MAGIC) + (size_t)SECRETS_MAX * LINE_MAX_LEN)
#define SECRETS_FILE_MAX (PLAINTEXT_MAX + PLAINTEXT_MAX / 64 + 64 * 1024)   /* + chunk tags and header */

bool secret_name_valid(const char *name)
{
	size_t i;

	if (!name || !((name[0] >= 'A' && name[0] <= 'Z') || (name[0] >= 'a' && name[0] <= 'z') || name[0] == '_'))
		return false;
	for (i = 1; name[i]; i++)
		if (i >= SECRET_NAME_MAX || !((name[i] >= 'A' && name[i] <= 'Z') || (name[i] >= 'a' && name[i] <= 'z') ||
					       (name[i] >= '0' && name[i] <= '9') || name[i] == '_'))
			return false;
	return true;
}

/* Is by a valid CHANGED_BY: 1..32 visible ASCII characters? */
static bool by_valid(const char *by, size_t n)
{
	if (n < 1 || n > BY_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (by[i] < 33 || by[i] > 126)
			return false;
	return true;
}

struct secrets *secrets_free(struct secrets *s)
{
	if (!s)
		return NULL;
	for (size_t i = 0; i < s->n; i++)
		sodium_free(s->items[i].value);
	sodium_free(s->items);
	free(s);
	return NULL;
}

const struct secret *secrets_find(const struct secrets *s, const char *name)
{
	for (size_t i = 0; s && i < s->n; i++)
		if (!strcmp(s->items[i].name, name))
			return &s->items[i];
	return NULL;
}

/* Room for n + 1 items: a new array with the old ones copied, the old one
 * freed.  Returns 0 or -ENOMEM. */
static int grow(struct secrets *s)
{
	struct secret *items = sodium_malloc((s->n + 1) * sizeof(*items));

	if (!items)
		return -ENOMEM;
	if (s->n)
		memcpy(items, s->items, s->n * sizeof(*items));
	memset(&items[s->n], 0, sizeof(*items));
	sodium_free(s->items);
	s->items = items;
	return 0;
}

int secrets_set(struct secrets *s, const char *name, const uint8_t *value, size_t len, const char *by)
{
	struct secret *item = (struct secret *)secrets_find(s, name);
	uint8_t *copy;
	size_t at;

	if (!secret_name_valid(name) || len < SECRET_VALUE_MIN || len > SECRET_VALUE_MAX)
		return -EINVAL;
	if (by && by[0] && strcmp(by, "-") && !by_valid(by, strlen(by)))
		return -EINVAL;
	if (!item && s->n >= SECRETS_MAX)
		return -ENOSPC;
	if (sodium_init() < 0 || !(copy = sodium_malloc(len + 1)))
		return -ENOMEM;
	memcpy(copy, value, len);
	copy[len] = 0;
	if (!item) {
		if (grow(s) < 0) {
			sodium_free(copy);
			return -ENOMEM;
		}
		for (at = 0; at < s->n && strcmp(s->items[at].name, name) < 0; at++)
			;
		memmove(&s->items[at + 1], &s->items[at], (s->n - at) * sizeof(*item));
		item = &s->items[at];
		memset(item, 0, sizeof(*item));
		snprintf(item->name, sizeof(item->name), "%s", name);
		s->n++;
	}
	sodium_free(item->value);
	item->value = copy;
	item->len = len;
	item->changed = (int64_t)time(NULL);
	snprintf(item->changed_by, sizeof(item->changed_by), "%s", by && strcmp(by, "-") ? by : "");
	return 0;
}

int secrets_remove(struct secrets *s, const char *name)
{
	struct secret *item = (struct secret *)secrets_find(s, name);
	size_t at;

	if (!item)
		return -ENOENT;
	at = (size_t)(item - s->items);
	sodium_free(item->value);
	memmove(item, item + 1, (s->n - at - 1) * sizeof(*item));
	s->n--;
	sodium_memzero(&s->items[s->n], sizeof(*item));
	return 0;
}

/* ---- the plaintext --------------------------------------------------------- */

/* Split line (n bytes) into its 4 fields at single spaces.  Returns 0 or
 * -EINVAL. */
static int split_fields(const char *line, size_t n, const char *f[4], size_t flen[4])
{
	size_t k = 0, start = 0;

	for (size_t i = 0; i <= n; i++) {
		if (i < n && line[i] != ' ')
			continue;
		if (k == 4 || i == start)
			return -EINVAL;
		f[k] = line + start;
		flen[k++] = i - start;
		start = i + 1;
	}
	return k == 4 ? 0 : -EINVAL;
}

static int parse_changed(const char *f, size_t n, int64_t *ret)
{
	int64_t v = 0;

	if (n < 1 || n > CHANGED_DIGITS_MAX || (n > 1 && f[0] == '0'))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (f[i] < '0' || f[i] > '9')
			return -EINVAL;
		v = v * 10 + (f[i] - '0');
	}
	*ret = v;
	return 0;
}

/* One line into item (its value in sodium memory).  prev: the name of the
 * line before ("" for the first).  Returns 0 or -EINVAL / -ENOMEM with the
 * reason in err. */
static int parse_line(const char *line, size_t n, const char *prev, struct secret *item, char *err, size_t errlen)
{
	const char *f[4];
	size_t flen[4], got = 0, max;
	uint8_t *value;

	if (n == 0)
		return secrets_err(err, errlen, -EINVAL, "an empty line");
	if (split_fields(line, n, f, flen) < 0)
		return secrets_err(err, errlen, -EINVAL,
				   "expected NAME CHANGED_UNIX CHANGED_BY BASE64 separated by single spaces");
	if (flen[0] > SECRET_NAME_MAX)
		return secrets_err(err, errlen, -EINVAL, "the name is longer than %d characters", SECRET_NAME_MAX);
	memcpy(item->name, f[0], flen[0]);
	item->name[flen[0]] = 0;
	if (strlen(item->name) != flen[0] || !secret_name_valid(item->name))
		return secrets_err(err, errlen, -EINVAL, "the name is not [A-Za-z_][A-Za-z0-9_]*");
	if (prev[0] && strcmp(prev, item->name) >= 0)
		return secrets_err(err, errlen, -EINVAL, "%s %s (the names must be in order, each once)", item->name,
				   strcmp(prev, item->name) ? "comes after a greater name" : "appears twice");
	if (parse_changed(f[1], flen[1], &item->changed) < 0)
		return secrets_err(err, errlen, -EINVAL, "%s: CHANGED_UNIX is not a number of seconds", item->name);
	if (!by_valid(f[2], flen[2]))
		return secrets_err(err, errlen, -EINVAL, "%s: CHANGED_BY is not 1 to %d visible characters", item->name,
				   BY_MAX);
	if (!(flen[2] == 1 && f[2][0] == '-')) {
		memcpy(item->changed_by, f[2], flen[2]);
		item->changed_by[flen[2]] = 0;
	}
	max = flen[3] / 4 * 3;
	/* the alphabet first: libsodium 1.0.18 decodes bytes >= 0x80 as if they were letters */
	for (size_t i = 0; i < flen[3]; i++)
		if (!f[3][i] || !strchr(B64_ALPHABET "=", f[3][i]))
			return secrets_err(err, errlen, -EINVAL, "%s: the value is not base64", item->name);
	if (flen[3] % 4 || max > SECRET_VALUE_MAX + 2)
		return secrets_err(err, errlen, -EINVAL, "%s: the value is not base64 or longer than %d bytes",
				   item->name, SECRET_VALUE_MAX);
	value = sodium_malloc(max + 1);
	if (!value)
		return -ENOMEM;
	if (sodium_base642bin(value, max, f[3], flen[3], NULL, &got, NULL, sodium_base64_VARIANT_ORIGINAL) < 0) {
		sodium_free(value);
		return secrets_err(err, errlen, -EINVAL, "%s: the value is not canonical base64 (with padding)",
				   item->name);
	}
	value[got] = 0;
	item->value = value;
	item->len = got;
	if (got < SECRET_VALUE_MIN || got > SECRET_VALUE_MAX)
		return secrets_err(err, errlen, -EINVAL, "%s: the value has %zu bytes, expected %d to %d", item->name,
				   got, SECRET_VALUE_MIN, SECRET_VALUE_MAX);
	return 0;
}

int secrets_parse(const uint8_t *text, size_t len, struct secrets **ret, char *err, size_t errlen)
{
	struct secrets *s = calloc(1, sizeof(*s));
	const char *p = (const char *)text, *end = p + len, *nl;
	char reason[256];
	size_t lineno = 1;
	int r = 0;

	if (!s)
		return -ENOMEM;
	nl = memchr(p, '\n', len);
	if ((nl ? (size_t)(nl - p) : len) != strlen(MAGIC) || memcmp(p, MAGIC, strlen(MAGIC))) {
		r = secrets_err(err, errlen, -EINVAL, "not a cutover secrets file (the first line is not \"%s\")", MAGIC);
		goto fail;
	}
	for (p = nl ? nl + 1 : end; p < end; p = nl ? nl + 1 : end) {
		lineno++;
		nl = memchr(p, '\n', (size_t)(end - p));
		if (s->n == SECRETS_MAX) {
			r = secrets_err(err, errlen, -EINVAL, "line %zu: more than %d secrets", lineno, SECRETS_MAX);
			goto fail;
		}
		if ((r = grow(s)) < 0)
			goto fail;
		s->n++;       /* counted now, so that secrets_free frees a half-read value */
		r = parse_line(p, nl ? (size_t)(nl - p) : (size_t)(end - p), s->n > 1 ? s->items[s->n - 2].name : "",
			       &s->items[s->n - 1], reason, sizeof(reason));
		if (r < 0) {
			secrets_err(err, errlen, r, "line %zu: %s", lineno, r == -ENOMEM ? "out of memory" : reason);
			goto fail;
		}
	}
	*ret = s;
	return 0;
fail:
	secrets_free(s);
	return r;
}

int secrets_format(const struct secrets *s, uint8_t **ret, size_t *ret_len)
{
	size_t size = sizeof(MAGIC) + 1, pos;
	char *out;

	for (size_t i = 0; i < s->n; i++)
		size += strlen(s->items[i].name) + 1 + CHANGED_DIGITS_MAX + 1 + BY_MAX + 1 +
			sodium_base64_ENCODED_LEN(s->items[i].len, sodium_base64_VARIANT_ORIGINAL) + 1;
	if (sodium_init() < 0 || !(out = sodium_malloc(size)))
		return -ENOMEM;
	pos = (size_t)snprintf(out, size, "%s\n", MAGIC);
	for (size_t i = 0; i < s->n; i++) {
		const struct secret *it = &s->items[i];

		pos += (size_t)snprintf(out + pos, size - pos, "%s %lld %s ", it->name,
					(long long)(it->changed > 0 ? it->changed : 0),
					it->changed_by[0] ? it->changed_by : "-");
		sodium_bin2base64(out + pos, size - pos, it->value, it->len, sodium_base64_VARIANT_ORIGINAL);
		pos += strlen(out + pos);
		out[pos++] = '\n';
	}
	*ret = (uint8_t *)out;
	*ret_len = pos;
	return 0;
}

/* ---- reading and writing ------------------------------------------------------ */

int secrets_read(const char *path, const struct age_identity *id, bool missing_ok, struct secrets **ret,
		 char *err, size_t errlen)
{
	uint8_t *file = NULL, *plain = NULL;
	size_t len = 0, plain_len = 0;
	char reason[512];
	int r;

	r = secrets_file_read(path, SECRETS_FILE_MAX, false, &file, &len, NULL);
	if (r == -ENOENT && missing_ok) {
		*ret = calloc(1, sizeof(**ret));
		return *ret ? 0 : secrets_err(err, errlen, -ENOMEM, "%s: out of memory", path);
	}
	if (r == -ENOENT)
		return secrets_err(err, errlen, r, "%s: no secrets file (set a secret first)", path);
	if (r < 0)
		return secrets_err(err, errlen, r, "%s: cannot read: %s", path,
				   r == -EFBIG ? "too large for a secrets file" : strerror(-r));
	r = age_decrypt(file, len, id, &plain, &plain_len, reason, sizeof(reason));
	free(file);
	if (r < 0)
		return secrets_err(err, errlen, r, "%s: %s", path, r == -ENOMEM && !reason[0] ? "out of memory" : reason);
	r = secrets_parse(plain, plain_len, ret, reason, sizeof(reason));
	sodium_free(plain);
	if (r < 0)
		return secrets_err(err, errlen, r, "%s (decrypted): %s", path, reason);
	return 0;
}

int secrets_write(const char *path, const struct secrets *s, const struct age_recipient *r, size_t n, char *err,
		  size_t errlen)
{
	uint8_t *plain = NULL, *file = NULL;
	size_t plain_len = 0, len = 0;
	int rc;

	if (n == 0)
		return secrets_err(err, errlen, -EINVAL, "%s: no recipients: nobody could read it", path);
	rc = secrets_format(s, &plain, &plain_len);
	if (rc < 0)
		return secrets_err(err, errlen, rc, "%s: out of memory", path);
	rc = age_encrypt(plain, plain_len, r, n, &file, &len);
	sodium_free(plain);
	if (rc < 0)
		return secrets_err(err, errlen, rc, "%s: cannot encrypt: %s", path,
				   rc == -EINVAL ? "a recipient is not a valid X25519 public key" : strerror(-rc));
	rc = secrets_file_replace(path, file, len, 0600, err, errlen);
	free(file);
	return rc;
}

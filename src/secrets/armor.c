/* armor.c - the ASCII armor of age files (`age -a`), read only.
 *
 * The armor is PEM without headers: a line "-----BEGIN AGE ENCRYPTED
 * FILE-----", the binary age file in strict base64 with padding at 64
 * columns (every line full except the last, which may be full too), and
 * "-----END AGE ENCRYPTED FILE-----".  Lines end with LF or CRLF; blank
 * lines (at most 1 KiB of whitespace) may come before the first line and
 * whitespace after the last; nothing else may.  cutover writes the binary
 * form; it reads this one so that a file made with `age -a` works too.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "secrets/secrets-internal.h"

#define COLUMNS 64
#define BYTES_PER_LINE 48
#define WHITESPACE_MAX 1024

static bool is_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* The file being read and where its next line starts. */
struct lines {
	const uint8_t *file;
	size_t len, pos;
};

/* The next line without its LF and one CR before it.  Returns false at the
 * end of the file. */
static bool get_line(struct lines *l, const char **line, size_t *n)
{
	const uint8_t *start = l->file + l->pos, *lf;
	size_t k;

	if (l->pos >= l->len)
		return false;
	lf = memchr(start, '\n', l->len - l->pos);
	k = lf ? (size_t)(lf - start) : l->len - l->pos;
	l->pos += k + (lf != NULL);
	if (k && start[k - 1] == '\r')
		k--;
	*line = (const char *)start;
	*n = k;
	return true;
}

static bool line_is(const char *line, size_t n, const char *want)
{
	return n == strlen(want) && !memcmp(line, want, n);
}

static bool all_space(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_space(p[i]))
			return false;
	return true;
}

bool age_armor_detect(const uint8_t *file, size_t len)
{
	static const char binary[] = "age-encryption.org/", pem[] = "-----";

	if (len >= sizeof(binary) - 1 && !memcmp(file, binary, sizeof(binary) - 1))
		return false;
	/* a PEM-like line, also a damaged one: the armor's error says what is wrong */
	return memmem(file, len < 4 * WHITESPACE_MAX ? len : 4 * WHITESPACE_MAX, pem, sizeof(pem) - 1) != NULL;
}

/* One line of base64 (padding only at its end) into out (48 bytes of
 * room).  Returns the number of bytes, or -1. */
static int decode_line(const char *line, size_t n, uint8_t *out)
{
	size_t got = 0;

	for (size_t i = 0; i < n; i++) {
		char c = line[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
		      c == '/' || c == '='))
			return -1;
	}
	if (sodium_base642bin(out, BYTES_PER_LINE, line, n, NULL, &got, NULL, sodium_base64_VARIANT_ORIGINAL) < 0)
		return -1;
	return (int)got;
}

int age_armor_decode(const uint8_t *file, size_t len, uint8_t **ret, size_t *ret_len, char *err, size_t errlen)
{
	struct lines l = { .file = file, .len = len };
	const char *line;
	size_t n, skipped = 0, out_len = 0;
	uint8_t *out;
	int got, r = -EBADMSG;

	for (;;) {
		if (!get_line(&l, &line, &n))
			return secrets_err(err, errlen, -EBADMSG, "invalid armor: no \"%s\" line", AGE_ARMOR_BEGIN);
		if (!all_space((const uint8_t *)line, n))
			break;
		skipped += n + 1;
		if (skipped > WHITESPACE_MAX)
			return secrets_err(err, errlen, -EBADMSG, "invalid armor: too much leading whitespace");
	}
	if (!line_is(line, n, AGE_ARMOR_BEGIN))
		return secrets_err(err, errlen, -EBADMSG, "invalid armor: the first line is not \"%s\"", AGE_ARMOR_BEGIN);
	out = malloc(len / 4 * 3 + BYTES_PER_LINE);
	if (!out)
		return -ENOMEM;
	for (;;) {
		if (!get_line(&l, &line, &n)) {
			secrets_err(err, errlen, r, "invalid armor: the file ends before \"%s\"", AGE_ARMOR_END);
			goto fail;
		}
		if (line_is(line, n, AGE_ARMOR_END))
			break;
		if (n == 0 || n > COLUMNS) {
			secrets_err(err, errlen, r, "invalid armor: a line of %zu columns (1 to 64 expected)", n);
			goto fail;
		}
		got = decode_line(line, n, out + out_len);
		if (got < 0) {
			secrets_err(err, errlen, r, "invalid armor: a line is not canonical base64");
			goto fail;
		}
		out_len += (size_t)got;
		if (got == BYTES_PER_LINE)
			continue;
		/* a short line is the last one */
		if (!get_line(&l, &line, &n) || !line_is(line, n, AGE_ARMOR_END)) {
			secrets_err(err, errlen, r, "invalid armor: a short line is not followed by \"%s\"", AGE_ARMOR_END);
			goto fail;
		}
		break;
	}
	if (!all_space(file + l.pos, len - l.pos) || len - l.pos >= WHITESPACE_MAX) {
		secrets_err(err, errlen, r, "invalid armor: data after \"%s\"", AGE_ARMOR_END);
		goto fail;
	}
	*ret = out;
	*ret_len = out_len;
	return 0;
fail:
	free(out);
	return r;
}

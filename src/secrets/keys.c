/* keys.c - age's X25519 keys and the files that hold them.
 *
 * A recipient is a Curve25519 public key written "age1..." (Bech32, HRP
 * "age", lower case); an identity is the private scalar written
 * "AGE-SECRET-KEY-1..." (HRP "AGE-SECRET-KEY-", upper case).  An identity
 * lives in sodium_malloc memory (locked, guarded, wiped when freed); its
 * text form only in stack buffers that are wiped.
 *
 * Files: an identity file as age-keygen writes it (comments, then the key;
 * mode 0600 and refused when group or others may read or write it), and a
 * recipients file as `age -R` reads it (one "age1..." per line, "#"
 * comments and blank lines), replaced atomically.  The helpers that read a
 * whole file and replace one atomically are shared with file.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>
#include "secrets/secrets.h"
#include "secrets/secrets-internal.h"

#define RECIPIENT_HRP "age"
#define IDENTITY_HRP "age-secret-key-"
#define IDENTITY_PREFIX "AGE-SECRET-KEY-1"
#define IDENTITY_FILE_MAX (64 * 1024)
#define RECIPIENTS_FILE_MAX (1024 * 1024)
#define RECIPIENTS_MAX 4096

/* ---- keys ------------------------------------------------------------------- */

int age_recipient_parse(const char *text, struct age_recipient *ret)
{
	char hrp[BECH32_MAX + 1];
	uint8_t key[32];
	size_t n = 0;

	if (bech32_decode(text, hrp, sizeof(hrp), key, sizeof(key), &n) < 0 || strcmp(hrp, RECIPIENT_HRP) ||
	    n != sizeof(key))
		return -EINVAL;
	memcpy(ret->key, key, sizeof(key));
	return 0;
}

void age_recipient_format(const struct age_recipient *r, char *out, size_t outlen)
{
	if (bech32_encode(RECIPIENT_HRP, r->key, sizeof(r->key), false, out, outlen) < 0 && outlen)
		out[0] = 0;
}

/* Fill id from the 32-byte scalar key (copied into sodium memory). */
static int identity_from_key(const uint8_t key[32], struct age_identity *ret)
{
	uint8_t *copy;

	if (sodium_init() < 0)
		return -ENOMEM;
	copy = sodium_malloc(32);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, key, 32);
	crypto_scalarmult_base(ret->public_key, copy);
	ret->key = copy;
	return 0;
}

int age_identity_parse(const char *text, struct age_identity *ret)
{
	char hrp[BECH32_MAX + 1];
	uint8_t key[32];
	size_t n = 0;
	int r;

	if (bech32_decode(text, hrp, sizeof(hrp), key, sizeof(key), &n) < 0)
		return -EINVAL;
	if (strcmp(hrp, "AGE-SECRET-KEY-") || n != sizeof(key))
		r = -EINVAL;
	else
		r = identity_from_key(key, ret);
	sodium_memzero(key, sizeof(key));
	return r;
}

int age_identity_generate(struct age_identity *ret)
{
	uint8_t key[32];
	int r;

	if (sodium_init() < 0)
		return -ENOMEM;
	randombytes_buf(key, sizeof(key));
	r = identity_from_key(key, ret);
	sodium_memzero(key, sizeof(key));
	return r;
}

void age_identity_release(struct age_identity *id)
{
	if (!id)
		return;
	sodium_free(id->key);         /* wipes it */
	id->key = NULL;
	sodium_memzero(id->public_key, sizeof(id->public_key));
}

/* ---- files ------------------------------------------------------------------ */

int secrets_file_read(const char *path, size_t max, bool secret, uint8_t **ret, size_t *ret_len,
		      struct stat *ret_st)
{
	struct stat st;
	uint8_t *buf;
	size_t len = 0;
	int fd, r = 0;

	if (secret && sodium_init() < 0)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		r = -EFBIG;
		goto out;
	}
	/* the size may change while reading: read at most max + 1 bytes */
	buf = secret ? sodium_malloc(max + 1) : malloc(max + 1);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, max + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || (len += (size_t)(n > 0 ? n : 0)) > max || n == 0) {
			r = n < 0 ? -errno : len > max ? -EFBIG : 0;
			break;
		}
	}
	if (r < 0) {
		if (secret)
			sodium_free(buf);
		else
			free(buf);
		goto out;
	}
	buf[len] = 0;
	*ret = buf;
	*ret_len = len;
	if (ret_st)
		*ret_st = st;
out:
	close(fd);
	return r;
}

/* fsync the directory holding path, so that a rename in it is durable. */
static int sync_parent(const char *path)
{
	char *copy = strdup(path);
	int fd, r = 0;

	if (!copy)
		return -ENOMEM;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(copy);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

static int write_all(int fd, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int secrets_file_replace(const char *path, const void *data, size_t len, mode_t mode, char *err, size_t errlen)
{
	char *tmp = NULL;
	int fd = -1, r;

	if (asprintf(&tmp, "%s.tmp-XXXXXX", path) < 0)
		return secrets_err(err, errlen, -ENOMEM, "%s: out of memory", path);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		r = secrets_err(err, errlen, -errno, "%s: cannot create a temporary file next to it: %s", path,
				strerror(errno));
		free(tmp);
		return r;
	}
	if (fchmod(fd, mode) < 0 || (r = write_all(fd, data, len)) < 0 || fsync(fd) < 0) {
		r = -errno;
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		r = -errno;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		r = -errno;
		goto fail;
	}
	free(tmp);
	sync_parent(path);
	return 0;
fail:
	secrets_err(err, errlen, r, "%s: cannot write: %s", path, strerror(-r));
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	free(tmp);
	return r;
}

/* ---- identity files ---------------------------------------------------------- */

int age_identity_read(const char *path, struct age_identity *ret, char *err, size_t errlen)
{
	struct stat st;
	uint8_t *text = NULL;
	size_t len = 0, lineno = 0;
	char *line, *next;
	int r;

	r = secrets_file_read(path, IDENTITY_FILE_MAX, true, &text, &len, &st);
	if (r == -EFBIG)
		return secrets_err(err, errlen, r, "%s: larger than %d bytes: not an identity file", path,
				   IDENTITY_FILE_MAX);
	if (r < 0)
		return secrets_err(err, errlen, r, "%s: cannot read the identity: %s", path, strerror(-r));
	if (st.st_mode & 066) {
		r = secrets_err(err, errlen, -EPERM,
				"%s: the identity file is readable or writable by group or others (mode %04o): run "
				"`chmod 600 %s`", path, (unsigned)(st.st_mode & 07777), path);
		goto out;
	}
	r = secrets_err(err, errlen, -EINVAL, "%s: no AGE-SECRET-KEY-1... line: not an age identity file", path);
	for (line = (char *)text; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		lineno++;
		if (next && next - line >= 2 && next[-2] == '\r')
			next[-2] = 0;
		if (!line[0] || line[0] == '#')
			continue;
		if (strncmp(line, IDENTITY_PREFIX, strlen(IDENTITY_PREFIX))) {
			r = secrets_err(err, errlen, -EINVAL,
					"%s:%zu: not a comment and not an AGE-SECRET-KEY-1... line (only X25519 identities "
					"are supported)", path, lineno);
			break;
		}
		r = age_identity_parse(line, ret);
		if (r < 0)
			r = secrets_err(err, errlen, r, "%s:%zu: not a valid age secret key (a bad checksum or length)",
					path, lineno);
		break;        /* the first key is the one */
	}
out:
	sodium_free(text);
	return r;
}

/* Now as age-keygen writes it: RFC 3339 in local time ("Z" for UTC). */
static void rfc3339_now(char *out, size_t outlen)
{
	time_t now = time(NULL);
	struct tm tm;
	long off;
	size_t n;

	if (!localtime_r(&now, &tm) || !(n = strftime(out, outlen, "%Y-%m-%dT%H:%M:%S", &tm))) {
		snprintf(out, outlen, "unknown");
		return;
	}
	off = tm.tm_gmtoff;
	if (off == 0)
		snprintf(out + n, outlen - n, "Z");
	else
		snprintf(out + n, outlen - n, "%c%02ld:%02ld", off < 0 ? '-' : '+', labs(off) / 3600,
			 labs(off) % 3600 / 60);
}

int age_identity_write_new(const char *path, struct age_recipient *ret_public, char *err, size_t errlen)
{
	struct age_identity id = { 0 };
	struct age_recipient pub;
	char secret[BECH32_MAX + 1], public[BECH32_MAX + 1], created[64], text[512];
	int fd = -1, r, n;

	r = age_identity_generate(&id);
	if (r < 0)
		return secrets_err(err, errlen, r, "%s: cannot generate a key: %s", path, strerror(-r));
	memcpy(pub.key, id.public_key, sizeof(pub.key));
	age_recipient_format(&pub, public, sizeof(public));
	r = bech32_encode(IDENTITY_HRP, id.key, 32, true, secret, sizeof(secret));
	age_identity_release(&id);
	if (r < 0) {
		secrets_err(err, errlen, r, "%s: cannot encode the key", path);
		goto out;
	}
	rfc3339_now(created, sizeof(created));
	n = snprintf(text, sizeof(text), "# created: %s\n# public key: %s\n%s\n", created, public, secret);
	sodium_memzero(secret, sizeof(secret));
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		secrets_err(err, errlen, r, r == -EEXIST ? "%s: already exists: an identity is never overwritten" :
				"%s: cannot create: %s", path, strerror(-r));
		goto out;
	}
	if (fchmod(fd, 0600) < 0 || (r = write_all(fd, text, (size_t)n)) < 0 || fsync(fd) < 0) {
		r = r < 0 ? r : -errno;
		secrets_err(err, errlen, r, "%s: cannot write: %s", path, strerror(-r));
		close(fd);
		unlink(path);
		goto out;
	}
	close(fd);
	sync_parent(path);
	*ret_public = pub;
	r = 0;
out:
	sodium_memzero(text, sizeof(text));
	return r;
}

/* ---- recipients files ------------------------------------------------------- */

int age_recipients_read(const char *path, struct age_recipient **ret, size_t *ret_n, char *err, size_t errlen)
{
	struct age_recipient *list = NULL;
	uint8_t *text = NULL;
	size_t len = 0, n = 0, lineno = 0;
	char *line, *next;
	int r;

	r = secrets_file_read(path, RECIPIENTS_FILE_MAX, false, &text, &len, NULL);
	if (r == -ENOENT)
		return secrets_err(err, errlen, r, "%s: no recipients file", path);
	if (r < 0)
		return secrets_err(err, errlen, r, "%s: cannot read: %s", path, r == -EFBIG ? "larger than 1 MiB" :
				   strerror(-r));
	for (line = (char *)text; line && *line && r == 0; line = next) {
		struct age_recipient rcpt;

		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		lineno++;
		if (!line[0] || line[0] == '#')
			continue;
		if (!strncmp(line, "AGE-SECRET-KEY-", 15)) {
			r = secrets_err(err, errlen, -EINVAL,
					"%s:%zu: a secret key in a recipients file: remove it (and treat it as leaked)",
					path, lineno);
		} else if (age_recipient_parse(line, &rcpt) < 0) {
			r = secrets_err(err, errlen, -EINVAL,
					"%s:%zu: not an X25519 recipient (age1... with a valid checksum, nothing else on "
					"the line)", path, lineno);
		} else if (n == RECIPIENTS_MAX) {
			r = secrets_err(err, errlen, -EINVAL, "%s:%zu: more than %d recipients", path, lineno,
					RECIPIENTS_MAX);
		} else {
			for (size_t k = 0; k < n && r == 0; k++)
				if (!memcmp(list[k].key, rcpt.key, 32))
					r = secrets_err(err, errlen, -EINVAL, "%s:%zu: the same recipient twice", path,
							lineno);
			if (r == 0 && n % 16 == 0) {
				struct age_recipient *grown = reallocarray(list, n + 16, sizeof(*list));

				if (!grown)
					r = secrets_err(err, errlen, -ENOMEM, "%s: out of memory", path);
				else
					list = grown;
			}
			if (r == 0)
				list[n++] = rcpt;
		}
	}
	free(text);
	if (r < 0) {
		free(list);
		return r;
	}
	*ret = list;
	*ret_n = n;
	return 0;
}

int age_recipients_write(const char *path, const struct age_recipient *r, size_t n, char *err, size_t errlen)
{
	static const char head[] = "# the recipients of the secrets file (age -R format): one age1... per line\n";
	char *text, *p;
	int rc;

	text = malloc(sizeof(head) + n * 64);
	if (!text)
		return secrets_err(err, errlen, -ENOMEM, "%s: out of memory", path);
	p = text + sprintf(text, "%s", head);
	for (size_t i = 0; i < n; i++) {
		age_recipient_format(&r[i], p, 63);
		p += strlen(p);
		*p++ = '\n';
	}
	rc = secrets_file_replace(path, text, (size_t)(p - text), 0644, err, errlen);
	free(text);
	return rc;
}

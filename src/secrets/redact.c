/* redact.c - the redaction engine (secrets/redact.h): the redactor and its
 * forms, one-shot and streaming redaction, serialization for the log
 * relay, and the process-wide redactor (docs/internals/redaction.md).
 *
 * A value is stored as up to three forms, back to back in one
 * sodium_malloc block per redactor (locked, guarded, wiped when freed):
 * the raw bytes, their JSON string escaping as jansson's json_dumps writes
 * it by default, and that escaping escaped once more (a JSON document held
 * in a JSON string), each only when it differs from the previous one.
 * The forms' descriptors (offset, length, first two bytes) are sorted by
 * their first two bytes, longest first, so that the candidates at a
 * position are one binary search away; a 65,536-bit table of those first
 * two bytes lets the scan pass over a position with a single probe.
 *
 * The scan is leftmost-first, longest at a position, and never looks at a
 * replaced span again.  A stream uses the same scan and stops at the first
 * position it cannot decide yet (the bytes from there to the end are a
 * proper prefix of a longer form), so a stream fed in any pieces emits
 * exactly what one-shot redaction of the whole text returns.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "secrets/redact.h"

#define FORMS_MAX (4 * SECRETS_MAX)
#define BLOB_MAGIC "CRD1"
#define STREAM_BUF_MIN 4096
#define MARKER_PREFIX "[redacted:"

struct redact_value {
	char *marker;             /* "[redacted:NAME]" (malloc'd: names are not secret) */
	size_t marker_len;
	uint32_t raw;             /* offset of the raw form in bytes */
	uint32_t raw_len;
};

struct redact_form {
	uint32_t off;             /* in r->bytes */
	uint32_t len;
	uint32_t seq;             /* order of addition: breaks ties, the first one wins */
	uint16_t prefix;          /* first two bytes, first in the high byte */
	uint16_t value;           /* index in r->values */
};

struct redactor {
	uint8_t *bytes;           /* sodium_malloc'd: every form, back to back */
	size_t bytes_len, bytes_cap;
	struct redact_form *forms; /* sorted: prefix ascending, then length descending, then seq */
	size_t nforms;
	struct redact_value *values;
	size_t nvalues;
	size_t max_len;           /* longest form */
	atomic_uint refs;         /* readers of the process-wide redactor (redact_global_*) */
	uint64_t first[256 / 64]; /* first bytes of the forms */
	uint64_t pairs[65536 / 64]; /* first two bytes of the forms */
};

struct redact_stream {
	const struct redactor *r;
	redact_emit_fn emit;
	void *ctx;
	char *buf;                /* sodium_malloc'd: held-back bytes, then room for input */
	size_t len, cap;
};

static inline bool bit_test(const uint64_t *set, unsigned i)
{
	return set[i >> 6] & (UINT64_C(1) << (i & 63));
}

static inline void bit_set(uint64_t *set, unsigned i)
{
	set[i >> 6] |= UINT64_C(1) << (i & 63);
}

static inline uint16_t pair_of(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* --- building a redactor --- */

int redactor_new(struct redactor **ret)
{
	struct redactor *r;

	if (sodium_init() < 0)
		return -ENOMEM;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	*ret = r;
	return 0;
}

static bool name_valid(const char *name)
{
	size_t len = name ? strlen(name) : 0;

	if (len == 0 || len > SECRET_NAME_MAX || (name[0] >= '0' && name[0] <= '9'))
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return true;
}

/* Length of src (n bytes) as a JSON string's contents, escaped as
 * jansson's json_dumps() does by default. */
static size_t json_escaped_len(const uint8_t *src, size_t n)
{
	size_t len = 0;

	for (size_t i = 0; i < n; i++) {
		uint8_t c = src[i];
		if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t')
			len += 2;
		else if (c < 0x20)
			len += 6;
		else
			len += 1;
	}
	return len;
}

/* Write the escaping of src into dst (json_escaped_len() bytes). */
static void json_escape(const uint8_t *src, size_t n, uint8_t *dst)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++) {
		uint8_t c = src[i];
		char e = 0;

		switch (c) {
		case '"': e = '"'; break;
		case '\\': e = '\\'; break;
		case '\b': e = 'b'; break;
		case '\f': e = 'f'; break;
		case '\n': e = 'n'; break;
		case '\r': e = 'r'; break;
		case '\t': e = 't'; break;
		default: break;
		}
		if (e) {
			*dst++ = '\\';
			*dst++ = (uint8_t)e;
		} else if (c < 0x20) {
			memcpy(dst, "\\u00", 4);
			dst[4] = (uint8_t)hex[c >> 4];
			dst[5] = (uint8_t)hex[c & 15];
			dst += 6;
		} else {
			*dst++ = c;
		}
	}
}

/* Make room for `more` bytes in the value block: a bigger block, the old
 * one copied, then wiped and freed.  Returns 0 or -ENOMEM. */
static int bytes_reserve(struct redactor *r, size_t more)
{
	size_t need = r->bytes_len + more, cap;
	uint8_t *bytes;

	if (need <= r->bytes_cap)
		return 0;
	if (need > UINT32_MAX)
		return -ENOMEM;
	cap = r->bytes_cap ? r->bytes_cap * 2 : 4096;
	while (cap < need)
		cap *= 2;
	bytes = sodium_malloc(cap);
	if (!bytes)
		return -ENOMEM;
	if (r->bytes_len)
		memcpy(bytes, r->bytes, r->bytes_len);
	sodium_free(r->bytes);
	r->bytes = bytes;
	r->bytes_cap = cap;
	return 0;
}

/* Index of the first form whose prefix is >= prefix. */
static size_t forms_lower_bound(const struct redactor *r, uint16_t prefix)
{
	size_t lo = 0, hi = r->nforms;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r->forms[mid].prefix < prefix)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Is there a form with exactly these bytes? */
static bool form_exists(const struct redactor *r, const uint8_t *p, size_t len)
{
	uint16_t prefix = pair_of(p);

	for (size_t i = forms_lower_bound(r, prefix); i < r->nforms && r->forms[i].prefix == prefix; i++)
		if (r->forms[i].len == len && memcmp(r->bytes + r->forms[i].off, p, len) == 0)
			return true;
	return false;
}

/* Register the len bytes at r->bytes + off (already written) as a form of
 * value v.  The caller has checked that there is room and no form with the
 * same bytes. */
static void form_insert(struct redactor *r, uint32_t off, uint32_t len, uint16_t v)
{
	const uint8_t *p = r->bytes + off;
	struct redact_form f = { .off = off, .len = len, .seq = (uint32_t)r->nforms, .prefix = pair_of(p), .value = v };
	size_t at = forms_lower_bound(r, f.prefix);

	/* after the forms of the same prefix that are longer or as long
	 * (those were added first, and the first one wins a tie) */
	while (at < r->nforms && r->forms[at].prefix == f.prefix && r->forms[at].len >= len)
		at++;
	memmove(r->forms + at + 1, r->forms + at, (r->nforms - at) * sizeof(*r->forms));
	r->forms[at] = f;
	r->nforms++;
	bit_set(r->pairs, f.prefix);
	bit_set(r->first, p[0]);
	if (len > r->max_len)
		r->max_len = len;
}

/* Is there a value with these raw bytes? */
static bool value_exists(const struct redactor *r, const uint8_t *value, size_t len)
{
	for (size_t i = 0; i < r->nvalues; i++)
		if (r->values[i].raw_len == len && memcmp(r->bytes + r->values[i].raw, value, len) == 0)
			return true;
	return false;
}

/* Write value's forms at the end of the block (not yet counted in
 * bytes_len, room reserved): the raw bytes, then, when the value needs
 * escaping, its JSON escaping and that escaping escaped again.  Fills
 * off[] and len[]; returns how many forms (1 or 3). */
static int forms_write(struct redactor *r, const uint8_t *value, size_t len, uint32_t off[3], uint32_t flen[3])
{
	size_t start = r->bytes_len, esc1 = json_escaped_len(value, len), esc2;
	uint8_t *raw = r->bytes + start, *e1 = raw + len;

	memcpy(raw, value, len);
	off[0] = (uint32_t)start;
	flen[0] = (uint32_t)len;
	if (esc1 == len)
		return 1;
	json_escape(value, len, e1);
	esc2 = json_escaped_len(e1, esc1); /* > esc1: e1 holds a backslash */
	json_escape(e1, esc1, e1 + esc1);
	off[1] = (uint32_t)(start + len);
	flen[1] = (uint32_t)esc1;
	off[2] = (uint32_t)(start + len + esc1);
	flen[2] = (uint32_t)esc2;
	return 3;
}

int redactor_add(struct redactor *r, const char *name, const uint8_t *value, size_t len)
{
	struct redact_value *values, v = { 0 };
	uint32_t off[3], flen[3];
	bool fresh[3] = { false };
	size_t esc1, added = 0;
	int n;

	if (!name_valid(name) || !value || len < SECRET_VALUE_MIN || len > SECRET_VALUE_MAX)
		return -EINVAL;
	if (value_exists(r, value, len))
		return 0;
	if (r->nvalues >= UINT16_MAX)
		return -ENOSPC;
	if (!r->forms && !(r->forms = malloc(FORMS_MAX * sizeof(*r->forms))))
		return -ENOMEM;
	esc1 = json_escaped_len(value, len);
	/* the second escaping at most doubles the first (backslashes, quotes) */
	if (bytes_reserve(r, len + (esc1 == len ? 0 : 3 * esc1)) < 0)
		return -ENOMEM;
	values = realloc(r->values, (r->nvalues + 1) * sizeof(*values));
	if (!values)
		return -ENOMEM;
	r->values = values;

	n = forms_write(r, value, len, off, flen);
	for (int i = 0; i < n; i++) {
		/* a form equal to one of an earlier value (or an earlier
		 * form of this one) keeps the earlier one's name */
		fresh[i] = !form_exists(r, r->bytes + off[i], flen[i]);
		for (int j = 0; j < i && fresh[i]; j++)
			fresh[i] = !(flen[j] == flen[i] && memcmp(r->bytes + off[j], r->bytes + off[i], flen[i]) == 0);
		added += fresh[i];
	}
	if (r->nforms + added > FORMS_MAX) {
		sodium_memzero(r->bytes + r->bytes_len, off[n - 1] + flen[n - 1] - r->bytes_len);
		return -ENOSPC;
	}
	if (asprintf(&v.marker, MARKER_PREFIX "%s]", name) < 0) {
		sodium_memzero(r->bytes + r->bytes_len, off[n - 1] + flen[n - 1] - r->bytes_len);
		return -ENOMEM;
	}
	v.marker_len = strlen(v.marker);
	v.raw = off[0];
	v.raw_len = (uint32_t)len;
	r->bytes_len = off[n - 1] + flen[n - 1];
	for (int i = 0; i < n; i++)
		if (fresh[i])
			form_insert(r, off[i], flen[i], (uint16_t)r->nvalues);
	r->values[r->nvalues++] = v;
	return 0;
}

int redactor_add_secrets(struct redactor *r, const struct secrets *s)
{
	for (size_t i = 0; s && i < s->n; i++) {
		int rc = redactor_add(r, s->items[i].name, s->items[i].value, s->items[i].len);
		if (rc < 0)
			return rc;
	}
	return 0;
}

size_t redactor_count(const struct redactor *r)
{
	return r ? r->nvalues : 0;
}

struct redactor *redactor_free(struct redactor *r)
{
	if (!r)
		return NULL;
	sodium_free(r->bytes); /* wipes */
	for (size_t i = 0; i < r->nvalues; i++)
		free(r->values[i].marker);
	free(r->values);
	free(r->forms);
	free(r);
	return NULL;
}

/* --- serialization: "CRD1", u32le count, then per value u8 name length,
 * the name, u32le value length, the value --- */

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The name of value v, from its marker "[redacted:NAME]". */
static const char *value_name(const struct redact_value *v, size_t *ret_len)
{
	*ret_len = v->marker_len - strlen(MARKER_PREFIX) - 1;
	return v->marker + strlen(MARKER_PREFIX);
}

int redactor_serialize(const struct redactor *r, uint8_t **ret, size_t *ret_len)
{
	size_t len = 8, namelen, nvalues = r ? r->nvalues : 0;
	uint8_t *blob, *p;

	if (sodium_init() < 0)
		return -ENOMEM;
	for (size_t i = 0; i < nvalues; i++) {
		value_name(&r->values[i], &namelen);
		len += 1 + namelen + 4 + r->values[i].raw_len;
	}
	blob = sodium_malloc(len);
	if (!blob)
		return -ENOMEM;
	memcpy(blob, BLOB_MAGIC, 4);
	put_u32(blob + 4, (uint32_t)nvalues);
	p = blob + 8;
	for (size_t i = 0; i < nvalues; i++) {
		const struct redact_value *v = &r->values[i];
		const char *name = value_name(v, &namelen);

		*p++ = (uint8_t)namelen;
		memcpy(p, name, namelen);
		p += namelen;
		put_u32(p, v->raw_len);
		memcpy(p + 4, r->bytes + v->raw, v->raw_len);
		p += 4 + v->raw_len;
	}
	*ret = blob;
	*ret_len = len;
	return 0;
}

int redactor_deserialize(const uint8_t *blob, size_t len, struct redactor **ret)
{
	struct redactor *r = NULL;
	const uint8_t *p = blob, *end = blob + len;
	uint32_t count;
	int rc;

	if (!blob || len < 8 || memcmp(blob, BLOB_MAGIC, 4) != 0)
		return -EBADMSG;
	count = get_u32(blob + 4);
	if (count > FORMS_MAX)
		return -EBADMSG;
	rc = redactor_new(&r);
	if (rc < 0)
		return rc;
	p += 8;
	for (uint32_t i = 0; i < count; i++) {
		char name[SECRET_NAME_MAX + 1];
		size_t namelen, vlen;

		rc = -EBADMSG;
		if (end - p < 1 || (namelen = *p++) == 0 || namelen > SECRET_NAME_MAX ||
		    (size_t)(end - p) < namelen + 4)
			goto fail;
		memcpy(name, p, namelen);
		name[namelen] = '\0';
		if (strlen(name) != namelen)
			goto fail;
		p += namelen;
		vlen = get_u32(p);
		p += 4;
		if ((size_t)(end - p) < vlen)
			goto fail;
		rc = redactor_add(r, name, p, vlen);
		if (rc < 0) {
			rc = rc == -ENOMEM ? -ENOMEM : -EBADMSG;
			goto fail;
		}
		p += vlen;
	}
	rc = -EBADMSG;
	if (p != end)
		goto fail;
	*ret = r;
	return 0;

fail:
	redactor_free(r);
	return rc;
}

/* --- the scan --- */

enum match { MATCH_NONE, MATCH_FOUND, MATCH_UNDECIDED };

/* What starts at p (avail bytes to the end of what is known): the longest
 * form that matches (*ret), nothing, or, unless final, undecided (the bytes
 * are a proper prefix of a form longer than any that matches). */
static enum match match_at(const struct redactor *r, const uint8_t *p, size_t avail, bool final,
			   const struct redact_form **ret)
{
	uint16_t prefix;

	if (avail < 2)
		return !final && avail == 1 && bit_test(r->first, p[0]) ? MATCH_UNDECIDED : MATCH_NONE;
	prefix = pair_of(p);
	for (size_t i = forms_lower_bound(r, prefix); i < r->nforms && r->forms[i].prefix == prefix; i++) {
		const struct redact_form *f = &r->forms[i];
		if (f->len <= avail) {
			if (memcmp(p, r->bytes + f->off, f->len) == 0) {
				*ret = f;
				return MATCH_FOUND;
			}
		} else if (!final && memcmp(p, r->bytes + f->off, avail) == 0) {
			return MATCH_UNDECIDED;
		}
	}
	return MATCH_NONE;
}

/* Scan text (len bytes), passing out in order the runs of text to keep and
 * the markers that replace values.  Returns how many bytes were decided
 * (len when final; else less when the end is undecided), or out's error. */
static ptrdiff_t scan(const struct redactor *r, const char *text, size_t len, bool final, redact_emit_fn out,
		      void *ctx)
{
	const uint8_t *p = (const uint8_t *)text;
	const struct redact_form *f;
	size_t i = 0, run = 0;
	int rc;

	while (i < len) {
		while (i + 1 < len && !bit_test(r->pairs, pair_of(p + i)))
			i++;
		if (i + 1 >= len && (final || !bit_test(r->first, p[i]))) {
			i = len;
			break;
		}
		switch (match_at(r, p + i, len - i, final, &f)) {
		case MATCH_NONE:
			i++;
			continue;
		case MATCH_UNDECIDED:
			len = i;
			continue;
		case MATCH_FOUND:
			break;
		}
		if (i > run && (rc = out(ctx, text + run, i - run)) < 0)
			return rc;
		if ((rc = out(ctx, r->values[f->value].marker, r->values[f->value].marker_len)) < 0)
			return rc;
		i += f->len;
		run = i;
	}
	if (len > run && (rc = out(ctx, text + run, len - run)) < 0)
		return rc;
	return (ptrdiff_t)len;
}

/* --- one-shot --- */

struct text_out {
	const char *text;         /* the input */
	size_t pending;           /* bytes of text before the first marker, copied if one comes */
	bool started;             /* a marker came: buf holds the output so far */
	char *buf;
	size_t len, cap;
};

static int text_append(struct text_out *o, const char *data, size_t len)
{
	if (o->len + len + 1 > o->cap) {
		size_t cap = o->cap ? o->cap : 64;
		char *buf;

		while (cap < o->len + len + 1)
			cap *= 2;
		buf = realloc(o->buf, cap);
		if (!buf)
			return -ENOMEM;
		o->buf = buf;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, data, len);
	o->len += len;
	return 0;
}

/* The scan's output: nothing is allocated until the first marker (the
 * only run that starts at text itself is the one before it). */
static int text_put(void *ctx, const char *data, size_t len)
{
	struct text_out *o = ctx;
	int rc;

	if (!o->started) {
		if (data == o->text) {
			o->pending = len;
			return 0;
		}
		o->started = true;
		o->cap = o->pending + len + 64;
		o->buf = malloc(o->cap);
		if (!o->buf)
			return -ENOMEM;
		if ((rc = text_append(o, o->text, o->pending)) < 0)
			return rc;
	}
	return text_append(o, data, len);
}

int redact_text(const struct redactor *r, const char *text, size_t len, char **ret, size_t *ret_len)
{
	struct text_out o = { .text = text };
	ptrdiff_t rc;

	if (!r || r->nforms == 0 || len < SECRET_VALUE_MIN)
		return 0;
	rc = scan(r, text, len, true, text_put, &o);
	if (rc < 0) {
		free(o.buf);
		return (int)rc;
	}
	if (!o.started)
		return 0;
	o.buf[o.len] = '\0';
	*ret = o.buf;
	*ret_len = o.len;
	return 1;
}

/* --- streams --- */

int redact_stream_new(const struct redactor *r, redact_emit_fn emit, void *ctx, struct redact_stream **ret)
{
	struct redact_stream *s = calloc(1, sizeof(*s));
	size_t max = r ? r->max_len : 0;

	if (!s || sodium_init() < 0)
		goto fail;
	s->r = r;
	s->emit = emit;
	s->ctx = ctx;
	/* room for what is held back (< max) and as much input again */
	s->cap = 2 * max > STREAM_BUF_MIN ? 2 * max : STREAM_BUF_MIN;
	s->buf = sodium_malloc(s->cap);
	if (!s->buf)
		goto fail;
	*ret = s;
	return 0;

fail:
	free(s);
	return -ENOMEM;
}

/* Keep text[from..len) (undecided, fewer than max_len bytes) for later. */
static void hold(struct redact_stream *s, const char *text, size_t from, size_t len)
{
	memmove(s->buf, text + from, len - from);
	s->len = len - from;
}

int redact_stream_feed(struct redact_stream *s, const char *data, size_t len)
{
	ptrdiff_t done;

	if (!s->r || s->r->nforms == 0)
		return len ? s->emit(s->ctx, data, len) : 0;
	while (len > 0) {
		size_t n, total;

		if (s->len == 0) {
			/* nothing held: scan the caller's bytes in place */
			done = scan(s->r, data, len, false, s->emit, s->ctx);
			if (done < 0)
				return (int)done;
			hold(s, data, (size_t)done, len);
			return 0;
		}
		/* something held: go on from it with the next bytes appended */
		n = s->cap - s->len < len ? s->cap - s->len : len;
		memcpy(s->buf + s->len, data, n);
		data += n;
		len -= n;
		total = s->len + n;
		done = scan(s->r, s->buf, total, false, s->emit, s->ctx);
		if (done < 0)
			return (int)done;
		hold(s, s->buf, (size_t)done, total);
	}
	return 0;
}

int redact_stream_finish(struct redact_stream *s)
{
	ptrdiff_t done = 0;

	if (s->len > 0) {
		if (s->r && s->r->nforms > 0)
			done = scan(s->r, s->buf, s->len, true, s->emit, s->ctx);
		else
			done = s->emit(s->ctx, s->buf, s->len);
		sodium_memzero(s->buf, s->len);
		s->len = 0;
	}
	return done < 0 ? (int)done : 0;
}

size_t redact_stream_pending(const struct redact_stream *s)
{
	return s->len;
}

struct redact_stream *redact_stream_free(struct redact_stream *s)
{
	if (!s)
		return NULL;
	sodium_free(s->buf); /* wipes */
	free(s);
	return NULL;
}

/* --- the process-wide redactor ---
 *
 * Readers take a reference under a mutex held for a pointer copy and an
 * increment; the redaction runs outside it.  The setter swaps the pointer
 * and drops the previous redactor's reference: whoever drops the last one
 * wipes and frees it.  With none set, a reader only loads an atomic flag. */

static pthread_mutex_t global_lock = PTHREAD_MUTEX_INITIALIZER;
static struct redactor *global;          /* under global_lock */
static atomic_bool global_active;        /* global hides something */

static struct redactor *global_get(void)
{
	struct redactor *r;

	if (!atomic_load_explicit(&global_active, memory_order_acquire))
		return NULL;
	pthread_mutex_lock(&global_lock);
	r = global;
	if (r)
		atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
	pthread_mutex_unlock(&global_lock);
	return r;
}

static void global_put(struct redactor *r)
{
	if (r && atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1)
		redactor_free(r);
}

void redact_global_set(struct redactor *r)
{
	struct redactor *old;

	if (r)
		atomic_store_explicit(&r->refs, 1, memory_order_relaxed);
	pthread_mutex_lock(&global_lock);
	old = global;
	global = r;
	atomic_store_explicit(&global_active, r && r->nforms > 0, memory_order_release);
	pthread_mutex_unlock(&global_lock);
	global_put(old);
}

int redact_global_text(const char *text, size_t len, char **ret, size_t *ret_len)
{
	struct redactor *r = global_get();
	int rc;

	if (!r)
		return 0;
	rc = redact_text(r, text, len, ret, ret_len);
	global_put(r);
	return rc;
}

const char *redact_global_str(const char *text, char **tofree)
{
	size_t len;
	int rc;

	*tofree = NULL;
	if (!text)
		return text;
	rc = redact_global_text(text, strlen(text), tofree, &len);
	if (rc < 0)
		return "[redacted: out of memory]";
	return rc > 0 ? *tofree : text;
}

int redact_global_copy(struct redactor **ret)
{
	struct redactor *r = global_get(), *copy = NULL;
	uint8_t *blob;
	size_t len;
	int rc = 0;

	if (r) {
		rc = redactor_serialize(r, &blob, &len);
		if (rc == 0) {
			rc = redactor_deserialize(blob, len, &copy);
			sodium_free(blob);
		}
		global_put(r);
	}
	if (rc == 0)
		*ret = copy;
	return rc;
}

/* fuzz_redact.c - libFuzzer target for the redaction engine
 * (src/secrets/redact.c): random values, a random text that uses them,
 * random splits of that text into writes.
 *
 * Input layout:
 *   byte 0         the number of values, 1 + b % 6
 *   per value      a length byte (4 + b % 29), then that many bytes (cut
 *                  short at the end of the input; shorter than 4: dropped)
 *   one byte       the seed of the splits
 *   the rest       the text, where 0xFE B inserts form B % 3 (raw, JSON,
 *                  JSON twice) of value B / 3 % n, and 0xFD B C its first
 *                  1 + C % (length - 1) bytes (a proper prefix)
 *
 * Beyond memory safety (ASan/UBSan), the target aborts when a contract
 * breaks:
 *   - redact_text equals a naive reference written here (at each position
 *     every form of every value is tried, the longest wins, the earliest
 *     value on a tie; a replaced span is skipped), with JSON escaping of
 *     its own;
 *   - no form of a value occurs in the output except overlapping a marker;
 *   - the text fed to a stream in random pieces gives the same output, and
 *     after each write what is out is a prefix of it and what is held is
 *     shorter than the longest form;
 *   - a serialized and deserialized redactor gives the same output.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "secrets/redact.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                 \
	do {                                                                                        \
		if (!(cond)) {                                                                      \
			fprintf(stderr, "%s:%d: contract broken: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                                    \
		}                                                                                   \
	} while (0)

#define VALUES_MAX 6
#define FORM_MAX (32 * 7 * 2) /* 32 bytes, each escaped at most to 7 bytes twice over */
#define TEXT_MAX 8192

struct form {
	uint8_t bytes[FORM_MAX];
	size_t len;
};

struct value {
	char name[8];
	char marker[32];
	struct form forms[3]; /* raw, JSON, JSON twice */
	bool skip;            /* the same raw bytes as an earlier value: not added */
};

struct out {
	uint8_t *buf;
	size_t len, cap;
};

static void out_put(struct out *o, const void *p, size_t n)
{
	if (o->len + n > o->cap) {
		o->cap = (o->len + n) * 2 + 64;
		o->buf = realloc(o->buf, o->cap);
		CHECK(o->buf);
	}
	memcpy(o->buf + o->len, p, n);
	o->len += n;
}

static int out_emit(void *ctx, const char *p, size_t n)
{
	out_put(ctx, p, n);
	return 0;
}

/* JSON string escaping as jansson writes it by default, a second time. */
static void escape(const struct form *in, struct form *out)
{
	out->len = 0;
	for (size_t i = 0; i < in->len; i++) {
		uint8_t c = in->bytes[i];
		char tmp[8];
		int n;

		if (c == '"' || c == '\\')
			n = snprintf(tmp, sizeof(tmp), "\\%c", c);
		else if (c == '\n')
			n = snprintf(tmp, sizeof(tmp), "\\n");
		else if (c == '\r')
			n = snprintf(tmp, sizeof(tmp), "\\r");
		else if (c == '\t')
			n = snprintf(tmp, sizeof(tmp), "\\t");
		else if (c == '\b')
			n = snprintf(tmp, sizeof(tmp), "\\b");
		else if (c == '\f')
			n = snprintf(tmp, sizeof(tmp), "\\f");
		else if (c < 0x20)
			n = snprintf(tmp, sizeof(tmp), "\\u%04X", c);
		else
			n = snprintf(tmp, sizeof(tmp), "%c", c);
		memcpy(out->bytes + out->len, tmp, (size_t)n);
		out->len += (size_t)n;
	}
}

/* The reference: returns the output, and the marker spans in it (starts
 * and ends, at most TEXT_MAX). */
static void reference(const struct value *v, int n, const uint8_t *text, size_t len, struct out *o,
		      size_t *spans, size_t *nspans)
{
	size_t i = 0;

	*nspans = 0;
	while (i < len) {
		const struct value *best = NULL;
		size_t best_len = 0;

		for (int k = 0; k < n; k++) {
			if (v[k].skip)
				continue;
			for (int f = 0; f < 3; f++) {
				const struct form *fm = &v[k].forms[f];
				if (fm->len > best_len && fm->len <= len - i &&
				    memcmp(text + i, fm->bytes, fm->len) == 0) {
					best = &v[k];
					best_len = fm->len;
				}
			}
		}
		if (!best) {
			out_put(o, text + i, 1);
			i++;
			continue;
		}
		spans[2 * *nspans] = o->len;
		out_put(o, best->marker, strlen(best->marker));
		spans[2 * *nspans + 1] = o->len;
		(*nspans)++;
		i += best_len;
	}
}

/* Does [at, at + n) overlap a marker span? */
static bool overlaps_marker(const size_t *spans, size_t nspans, size_t at, size_t n)
{
	for (size_t s = 0; s < nspans; s++)
		if (at < spans[2 * s + 1] && spans[2 * s] < at + n)
			return true;
	return false;
}

/* Parse the values; returns how many bytes they took. */
static size_t parse_values(const uint8_t *data, size_t size, struct value *v, int *ret_n, struct redactor *r)
{
	size_t p = 1;
	int n = 0, want = 1 + data[0] % VALUES_MAX;

	for (int k = 0; k < want && p < size; k++) {
		size_t len = 4 + data[p++] % 29;
		struct value *x = &v[n];

		if (len > size - p)
			len = size - p;
		if (len < 4)
			break;
		memset(x, 0, sizeof(*x));
		snprintf(x->name, sizeof(x->name), "V%d", n);
		snprintf(x->marker, sizeof(x->marker), "[redacted:%s]", x->name);
		memcpy(x->forms[0].bytes, data + p, len);
		x->forms[0].len = len;
		escape(&x->forms[0], &x->forms[1]);
		escape(&x->forms[1], &x->forms[2]);
		for (int j = 0; j < n; j++)
			if (v[j].forms[0].len == len && memcmp(v[j].forms[0].bytes, data + p, len) == 0)
				x->skip = true;
		CHECK(redactor_add(r, x->name, data + p, len) == 0);
		p += len;
		n++;
	}
	*ret_n = n;
	return p;
}

/* Build the text from the rest of the input. */
static size_t build_text(const uint8_t *in, size_t size, const struct value *v, int n, uint8_t *text)
{
	size_t len = 0;

	for (size_t i = 0; i < size && len + FORM_MAX < TEXT_MAX; i++) {
		if ((in[i] == 0xFE || in[i] == 0xFD) && i + 1 < size && n > 0) {
			const struct form *f = &v[in[i + 1] / 3 % n].forms[in[i + 1] % 3];
			size_t take = f->len;
			if (in[i] == 0xFD && i + 2 < size) {
				take = 1 + in[i + 2] % (f->len - 1);
				i++;
			}
			memcpy(text + len, f->bytes, take);
			len += take;
			i++;
			continue;
		}
		text[len++] = in[i];
	}
	return len;
}

/* Feed text in pieces chosen by seed; check against want. */
static void check_stream(const struct redactor *r, const uint8_t *text, size_t len, const struct out *want,
			 size_t max_form, unsigned seed)
{
	struct out o = { 0 };
	struct redact_stream *s;
	size_t from = 0;

	CHECK(redact_stream_new(r, out_emit, &o, &s) == 0);
	while (from < len) {
		size_t n = (size_t)rand_r(&seed) % (seed % 7 == 0 ? 3 : 40);
		if (n > len - from)
			n = len - from;
		CHECK(redact_stream_feed(s, (const char *)text + from, n) == 0);
		from += n;
		CHECK(redact_stream_pending(s) < (max_form ? max_form : 1));
		CHECK(o.len <= want->len && (o.len == 0 || memcmp(o.buf, want->buf, o.len) == 0));
	}
	CHECK(redact_stream_finish(s) == 0);
	CHECK(o.len == want->len && (o.len == 0 || memcmp(o.buf, want->buf, o.len) == 0));
	redact_stream_free(s);
	free(o.buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t text[TEXT_MAX];
	static size_t spans[2 * TEXT_MAX];
	static struct value v[VALUES_MAX];
	struct redactor *r, *copy;
	struct out want = { 0 };
	size_t p, len, nspans, got_len, max_form = 0, blob_len, copy_len;
	uint8_t *blob;
	char *got = NULL, *copy_got = NULL;
	unsigned seed;
	int n, rc;

	if (size < 2 || sodium_init() < 0)
		return 0;
	CHECK(redactor_new(&r) == 0);
	p = parse_values(data, size, v, &n, r);
	seed = p < size ? data[p++] : 0;
	len = build_text(data + p, size - p, v, n, text);
	for (int k = 0; k < n; k++)
		for (int f = 0; f < 3; f++)
			max_form = v[k].forms[f].len > max_form ? v[k].forms[f].len : max_form;

	reference(v, n, text, len, &want, spans, &nspans);
	rc = redact_text(r, (const char *)text, len, &got, &got_len);
	CHECK(rc == 0 || rc == 1);
	CHECK((rc == 1) == (nspans > 0));
	if (rc == 1) {
		CHECK(got_len == want.len && memcmp(got, want.buf, want.len) == 0 && got[got_len] == '\0');
	} else {
		CHECK(want.len == len && (len == 0 || memcmp(want.buf, text, len) == 0));
	}
	/* no form left outside a marker */
	for (int k = 0; k < n; k++)
		for (int f = 0; f < 3; f++) {
			const struct form *fm = &v[k].forms[f];
			for (size_t at = 0; at + fm->len <= want.len; at++)
				if (memcmp(want.buf + at, fm->bytes, fm->len) == 0)
					CHECK(overlaps_marker(spans, nspans, at, fm->len));
		}

	check_stream(r, text, len, &want, max_form, seed);
	check_stream(r, text, len, &want, max_form, seed * 31 + 7);

	CHECK(redactor_serialize(r, &blob, &blob_len) == 0);
	CHECK(redactor_deserialize(blob, blob_len, &copy) == 0);
	CHECK(redactor_count(copy) == redactor_count(r));
	rc = redact_text(copy, (const char *)text, len, &copy_got, &copy_len);
	CHECK((rc == 1) == (nspans > 0));
	CHECK(rc == 0 || (copy_len == got_len && memcmp(copy_got, got, got_len) == 0));
	/* and a blob cut short is refused */
	if (blob_len > 8)
		CHECK(redactor_deserialize(blob, blob_len - 1 - seed % (blob_len - 8), &copy) == -EBADMSG ||
		      (redactor_free(copy), false));
	sodium_free(blob);
	redactor_free(copy);
	redactor_free(r);
	free(got);
	free(copy_got);
	free(want.buf);
	return 0;
}

/* walk.c - the machinery of the configuration walk: messages, field paths,
 * "did you mean", node shapes and keyword tables.
 *
 * Every problem is reported once, as "FILE:LINE:COLUMN: FIELD: reason": the
 * file and position come from the node (which remembers the file it was
 * read from, so a value merged in from an overlay names the overlay), the
 * field is the dotted path the walk is in (services.shop.targets[1].weight).
 * A section is a mapping read through a table of keywords; section_load()
 * checks the mapping's shape, rejects unknown keys with the nearest keyword
 * as a suggestion and hands each value to its keyword's loader.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "config/config-internal.h"

/* ---- messages ---------------------------------------------------------- */

void error_set(struct config_error *err, const char *file, int line, int column, const char *field,
	       const char *reason)
{
	memset(err, 0, sizeof(*err));
	snprintf(err->file, sizeof(err->file), "%s", file);
	err->line = line;
	err->column = column;
	snprintf(err->field, sizeof(err->field), "%s", field);
	if (line > 0 && field[0])
		snprintf(err->message, sizeof(err->message), "%s:%d:%d: %s: %s", err->file, line, column,
			 err->field, reason);
	else if (line > 0)
		snprintf(err->message, sizeof(err->message), "%s:%d:%d: %s", err->file, line, column, reason);
	else if (field[0])
		snprintf(err->message, sizeof(err->message), "%s: %s: %s", err->file, err->field, reason);
	else
		snprintf(err->message, sizeof(err->message), "%s: %s", err->file, reason);
}

int fail(struct loader *L, const struct ynode *at, const char *fmt, ...)
{
	const char *file = at && at->file ? at->file->name : L->name;
	char reason[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	error_set(L->err, file, at ? at->line : 0, at ? at->column : 0, L->field, reason);
	return -EINVAL;
}

int fail_oom(struct loader *L)
{
	error_set(L->err, L->name, 0, 0, "", "out of memory");
	return -ENOMEM;
}

int fail_tree(struct loader *L, int r, const struct ynode_error *yerr)
{
	size_t saved;

	if (r == -ENOMEM)
		return fail_oom(L);
	saved = yerr->field[0] ? field_push_key(L, yerr->field) : L->field_len;
	error_set(L->err, yerr->file[0] ? yerr->file : L->name, yerr->line, yerr->column, L->field, yerr->message);
	field_pop(L, saved);
	return r;
}

const char *quote(const char *s, char *buf, size_t size)
{
	size_t o = 0, shown = 0;

	buf[o++] = '"';
	for (; *s && o + 8 < size; s++) {
		unsigned char c = (unsigned char)*s;

		if (shown++ == 48) {
			o += (size_t)snprintf(buf + o, size - o, "...");
			break;
		}
		if (c == '"' || c == '\\')
			o += (size_t)snprintf(buf + o, size - o, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
		else
			buf[o++] = (char)c;
	}
	buf[o++] = '"';
	buf[o] = 0;
	return buf;
}

static size_t field_append(struct loader *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static size_t field_append(struct loader *L, const char *fmt, ...)
{
	size_t saved = L->field_len;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(L->field + saved, sizeof(L->field) - saved, fmt, ap);
	va_end(ap);
	L->field_len = n < 0 ? saved : saved + (size_t)n;
	if (L->field_len >= sizeof(L->field))
		L->field_len = sizeof(L->field) - 1;
	return saved;
}

size_t field_push_key(struct loader *L, const char *key)
{
	return field_append(L, "%s%s", L->field_len ? "." : "", key);
}

size_t field_push_index(struct loader *L, size_t index)
{
	return field_append(L, "[%zu]", index);
}

void field_pop(struct loader *L, size_t saved)
{
	L->field_len = saved;
	L->field[saved] = 0;
}

/* ---- "did you mean" ---------------------------------------------------- */

/* Capped: strings longer than 32 characters are never close to one of our
 * keys. */
size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j;
	size_t d[33][33];

	if (la > 32 || lb > 32)
		return SIZE_MAX;
	for (i = 0; i <= la; i++)
		d[i][0] = i;
	for (j = 0; j <= lb; j++)
		d[0][j] = j;
	for (i = 1; i <= la; i++) {
		for (j = 1; j <= lb; j++) {
			int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
			size_t best = d[i - 1][j - 1] + (ca != cb);

			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
			    tolower((unsigned char)a[i - 2]) == cb && d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[la][lb];
}

/* One edit away for short words, two from five characters on. */
const char *nearest_word(const char *word, const void *table, size_t n, size_t stride)
{
	const char *best = NULL;
	size_t best_distance = SIZE_MAX, i;

	for (i = 0; i < n; i++) {
		const char *candidate = *(const char *const *)(const void *)((const char *)table + i * stride);
		size_t d = edit_distance(word, candidate);
		size_t allowed = strlen(candidate) >= 5 ? 2 : 1;

		if (d <= allowed && d < best_distance) {
			best = candidate;
			best_distance = d;
		}
	}
	return best;
}

int unknown_key(struct loader *L, const struct ynode *key, const void *table, size_t n, size_t stride)
{
	const char *best = nearest_word(key->value, table, n, stride);

	if (best)
		return fail(L, key, "unknown key %s (did you mean \"%s\"?)", QUOTED(key->value), best);
	return fail(L, key, "unknown key %s", QUOTED(key->value));
}

/* ---- node shapes ------------------------------------------------------- */

const char *kind_name(const struct ynode *n)
{
	switch (n->kind) {
	case YNODE_SCALAR:
		return ynode_is_null(n) ? "nothing" : "a single value";
	case YNODE_LIST:
		return "a list";
	case YNODE_MAP:
		return "a mapping";
	case YNODE_ALIAS:
		break;
	}
	return "an alias";
}

static int fail_alias(struct loader *L, const struct ynode *n)
{
	return fail(L, n, "aliases (*%s) are not supported: write the value out in full", n->value);
}

int expect_map(struct loader *L, const struct ynode *n, bool allow_null, const char *expected)
{
	size_t i, j;

	if (n->kind == YNODE_ALIAS)
		return fail_alias(L, n);
	if (allow_null && ynode_is_null(n))
		return 1;
	if (n->kind != YNODE_MAP)
		return fail(L, n, "must be %s, got %s", expected, kind_name(n));
	for (i = 0; i < ynode_map_size(n); i++) {
		const struct ynode *key = ynode_map_key(n, i);

		if (key->kind == YNODE_ALIAS)
			return fail_alias(L, key);
		if (key->kind != YNODE_SCALAR)
			return fail(L, key, "keys must be plain names, got %s", kind_name(key));
		if (key->plain && !strcmp(key->value, "<<"))
			return fail(L, key, "merge keys (<<) are not supported: write the values out in full");
		for (j = 0; j < i; j++) {
			const struct ynode *other = ynode_map_key(n, j);

			if (!strcmp(other->value, key->value)) {
				size_t saved = field_push_key(L, key->value);
				int r = fail(L, key, "duplicate key %s (first at line %d)", QUOTED(key->value),
					     other->line);

				field_pop(L, saved);
				return r;
			}
		}
	}
	return 0;
}

int expect_list(struct loader *L, const struct ynode *n, bool allow_null, const char *expected)
{
	if (n->kind == YNODE_ALIAS)
		return fail_alias(L, n);
	if (allow_null && ynode_is_null(n))
		return 1;
	if (n->kind != YNODE_LIST)
		return fail(L, n, "must be %s, got %s", expected, kind_name(n));
	return 0;
}

int expect_value(struct loader *L, const struct ynode *n, const char *expected)
{
	if (n->kind == YNODE_ALIAS)
		return fail_alias(L, n);
	if (ynode_is_null(n))
		return fail(L, n, "missing value: expected %s", expected);
	if (n->kind != YNODE_SCALAR)
		return fail(L, n, "must be %s, got %s", expected, kind_name(n));
	return 0;
}

/* ---- keyword tables ---------------------------------------------------- */

static size_t keyword_find(const struct section *s, const char *key)
{
	size_t k;

	for (k = 0; k < s->nkeywords; k++)
		if (!strcmp(key, s->keywords[k].key))
			break;
	return k;
}

int section_load(struct loader *L, const struct ynode *n, const struct section *s, void *obj,
		 const struct ynode **given)
{
	size_t i, k;
	int r = expect_map(L, n, s->allow_null, s->expected);

	if (r != 0)
		return r;
	for (i = 0; i < ynode_map_size(n); i++) {
		const struct ynode *key = ynode_map_key(n, i), *value = ynode_map_value(n, i);
		size_t saved = field_push_key(L, key->value);

		k = keyword_find(s, key->value);
		if (k == s->nkeywords)
			r = unknown_key(L, key, s->keywords, s->nkeywords, sizeof(s->keywords[0]));
		else if (s->keywords[k].load)
			r = s->keywords[k].load(L, value, obj, &s->keywords[k]);
		field_pop(L, saved);
		if (r < 0)
			return r;
		if (given)
			given[k] = value;
	}
	return 0;
}

int section_collect(struct loader *L, const struct ynode *n, const struct section *s, const struct ynode **keys,
		    const struct ynode **values)
{
	size_t i, k;
	int r = expect_map(L, n, s->allow_null, s->expected);

	if (r != 0)
		return r;
	for (i = 0; i < ynode_map_size(n); i++) {
		const struct ynode *key = ynode_map_key(n, i);

		k = keyword_find(s, key->value);
		if (k == s->nkeywords) {
			size_t saved = field_push_key(L, key->value);

			r = unknown_key(L, key, s->keywords, s->nkeywords, sizeof(s->keywords[0]));
			field_pop(L, saved);
			return r;
		}
		keys[k] = key;
		values[k] = ynode_map_value(n, i);
	}
	return 0;
}

/* Store v in the field kw names, as the flags say. */
static void keyword_store(void *obj, const struct keyword *kw, uint64_t v)
{
	void *field = (char *)obj + kw->offset;

	if (kw->flags & KEYWORD_U32)
		*(uint32_t *)field = (uint32_t)v;
	else
		*(uint64_t *)field = v;
}

int keyword_duration(struct loader *L, const struct ynode *value, void *obj, const struct keyword *kw)
{
	uint64_t v;
	int r = load_duration(L, value, kw->min, kw->max, &v);

	if (r >= 0)
		keyword_store(obj, kw, v);
	return r;
}

int keyword_integer(struct loader *L, const struct ynode *value, void *obj, const struct keyword *kw)
{
	uint64_t v;
	int r = load_integer(L, value, kw->min, kw->max, &v);

	if (r >= 0)
		keyword_store(obj, kw, v);
	return r;
}

int keyword_size(struct loader *L, const struct ynode *value, void *obj, const struct keyword *kw)
{
	uint64_t v;
	int r = load_size(L, value, kw->min, kw->max, &v);

	if (r >= 0)
		keyword_store(obj, kw, v);
	return r;
}

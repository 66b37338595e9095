/* show-text.c - the effective configuration as YAML-like text, each value
 * followed by an aligned comment naming where it came from:
 *
 *   # cutover.yml + cutover.prod.yml (env prod)
 *   listen:
 *     - 127.0.0.1:8080               # cutover.prod.yml:2
 *   admin: ~                         # default
 *
 * It renders the JSON document of config_show_json() (show.c), so both
 * forms always say the same.  A leaf of that document is an object whose
 * "origin" is "default" or an object with a "file": no mapping of the
 * configuration can look like that (its members are all leaves or
 * containers), so leaves and mappings are told apart without a schema.
 * Values are quoted only where YAML would misread them, so the text can
 * be read back as YAML (without the defaults' meaning of null).  Lines are
 * built first and printed once the comment column is known.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "config/config-internal.h"
#include "config/show.h"

#define COMMENT_COLUMN_MAX 60         /* longer lines get their comment two spaces after them */

struct line {
	char *text;
	char *comment;                /* NULL: none */
};

struct render {
	struct line *lines;
	size_t n, alloc;
	bool oom;
};

static bool is_leaf(json_t *v)
{
	json_t *origin = json_object_get(v, "origin");

	return json_is_object(v) && (json_is_string(origin) || json_object_get(origin, "file"));
}

/* Append a line: indent spaces (the last two replaced by "- " when dash),
 * then "key: value", "key:", or "value".  comment may be NULL. */
static void emit(struct render *R, int indent, bool dash, const char *key, const char *value, const char *comment)
{
	struct line *grown, *l;
	int n;

	if (R->n == R->alloc) {
		size_t alloc = R->alloc ? 2 * R->alloc : 64;

		grown = reallocarray(R->lines, alloc, sizeof(*grown));
		if (!grown) {
			R->oom = true;
			return;
		}
		R->lines = grown;
		R->alloc = alloc;
	}
	l = &R->lines[R->n];
	n = asprintf(&l->text, "%*s%s%s%s%s%s", dash ? indent - 2 : indent, "", dash ? "- " : "", key ? key : "",
		     key ? ":" : "", key && value ? " " : "", value ? value : "");
	if (n < 0) {
		R->oom = true;
		return;
	}
	l->comment = comment ? strdup(comment) : NULL;
	if (comment && !l->comment) {
		free(l->text);
		R->oom = true;
		return;
	}
	R->n++;
}

/* Would YAML read s, written plain, as something else (null, a list, a
 * comment, a mapping...)? */
static bool needs_quotes(const char *s)
{
	size_t len = strlen(s);

	if (!len || !strcmp(s, "~") || !strcasecmp(s, "null") || strchr("-?:,[]{}#&*!|>'\"%@` ", s[0]) ||
	    s[len - 1] == ' ' || s[len - 1] == ':' || strstr(s, ": ") || strstr(s, " #"))
		return true;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* A value as text: "~" for null, digits for integers, a string plain or
 * double-quoted with escapes.  Returns a malloc'd string or NULL. */
static char *scalar_text(json_t *v)
{
	const char *s = json_string_value(v);
	char *out = NULL;
	size_t size = 0;
	FILE *f;

	if (json_is_integer(v))
		return asprintf(&out, "%lld", (long long)json_integer_value(v)) < 0 ? NULL : out;
	if (!s)
		return strdup("~");
	if (!needs_quotes(s))
		return strdup(s);
	f = open_memstream(&out, &size);
	if (!f)
		return NULL;
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

/* "cutover.prod.yml:4" (the file without its directory), or "default". */
static void origin_text(json_t *origin, char *buf, size_t size)
{
	const char *file = json_string_value(json_object_get(origin, "file")), *slash;

	if (!file) {
		snprintf(buf, size, "default");
		return;
	}
	slash = strrchr(file, '/');
	snprintf(buf, size, "%s:%lld", slash ? slash + 1 : file,
		 (long long)json_integer_value(json_object_get(origin, "line")));
}

static void render_node(struct render *R, json_t *v, int indent, bool dash, const char *key);

/* The members of a mapping at indent, the first after "- " when dash (a
 * mapping that is an item of a list). */
static void render_map(struct render *R, json_t *map, int indent, bool dash)
{
	const char *key;
	json_t *v;

	json_object_foreach(map, key, v) {
		render_node(R, v, indent, dash, key);
		dash = false;
	}
}

/* v under key (NULL: a list item, after "- " when dash). */
static void render_node(struct render *R, json_t *v, int indent, bool dash, const char *key)
{
	char where[300], *value;
	size_t i;
	json_t *x;

	if (is_leaf(v)) {
		value = scalar_text(json_object_get(v, "value"));
		origin_text(json_object_get(v, "origin"), where, sizeof(where));
		if (!value)
			R->oom = true;
		else
			emit(R, indent, dash, key, value, where);
		free(value);
	} else if (json_is_object(v) && !json_object_size(v)) {
		emit(R, indent, dash, key, "{}", NULL);
	} else if (json_is_object(v) && key) {
		emit(R, indent, dash, key, NULL, NULL);
		render_map(R, v, indent + 2, false);
	} else if (json_is_object(v)) {
		render_map(R, v, indent, dash);
	} else if (json_is_array(v) && !json_array_size(v)) {
		emit(R, indent, dash, key, "[]", NULL);
	} else if (json_is_array(v)) {
		emit(R, indent, dash, key, NULL, NULL);
		json_array_foreach(v, i, x)
			render_node(R, x, indent + 4, true, NULL);
	}
}

/* Print the lines, each comment at the column after the longest line that
 * has one (up to COMMENT_COLUMN_MAX). */
static int print_lines(const struct render *R, FILE *out)
{
	size_t column = 0, i, len;

	for (i = 0; i < R->n; i++) {
		len = strlen(R->lines[i].text);
		if (R->lines[i].comment && len <= COMMENT_COLUMN_MAX && len > column)
			column = len;
	}
	for (i = 0; i < R->n; i++) {
		const struct line *l = &R->lines[i];

		len = strlen(l->text);
		if (!l->comment)
			fprintf(out, "%s\n", l->text);
		else
			fprintf(out, "%s%*s  # %s\n", l->text, len < column ? (int)(column - len) : 0, "", l->comment);
	}
	return ferror(out) ? -EIO : 0;
}

int config_show_text(const struct config *cfg, const struct ynode *tree, FILE *out)
{
	struct render R = { 0 };
	json_t *doc = config_show_json(cfg, tree);
	char what[600];
	int r = -ENOMEM;

	if (!doc)
		return -ENOMEM;
	render_map(&R, json_object_get(doc, "config"), 0, false);
	if (!R.oom) {
		fprintf(out, "# %s\n", config_describe(cfg, what, sizeof(what)));
		r = print_lines(&R, out);
	}
	for (size_t i = 0; i < R.n; i++) {
		free(R.lines[i].text);
		free(R.lines[i].comment);
	}
	free(R.lines);
	json_decref(doc);
	return r;
}

/* template.c - the template language of release notes (template.h): a
 * template is compiled once into a flat array of nodes (text, value,
 * section) checked against a schema of the names it may use, then rendered
 * with a JSON object.  A section node knows where its block ends, so the
 * renderer walks index ranges; scopes are a small stack of JSON objects.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/template.h"

#define NAME_MAX_LEN 63
#define DEPTH_MAX 16                  /* sections nested */

enum node_kind { NODE_TEXT, NODE_VALUE, NODE_SECTION, NODE_INVERTED };

struct node {
	enum node_kind kind;
	const char *text;             /* NODE_TEXT: into the template's copy of the source */
	size_t len;
	const struct tpl_field *field; /* the others: its schema entry */
	size_t end;                   /* sections: the index of the node after the block */
};

struct tpl {
	char *src;
	struct node *nodes;
	size_t n, cap;
};

/* The compiler's state. */
struct compiler {
	struct tpl *t;
	const char *file;
	int line;
	const struct tpl_field *scopes[DEPTH_MAX + 1]; /* scopes[0]: the schema */
	size_t nscopes;
	struct {
		size_t node;          /* the section node */
		int line;
		bool scoped;          /* it pushed a scope (a list) */
	} open[DEPTH_MAX];
	size_t nopen;
	char *err;
	size_t errlen;
};

struct tpl *tpl_free(struct tpl *t)
{
	if (t) {
		free(t->src);
		free(t->nodes);
		free(t);
	}
	return NULL;
}

static int fail(struct compiler *C, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct compiler *C, int line, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(C->err, C->errlen, "%s:%d: ", C->file, line);

	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < C->errlen)
		vsnprintf(C->err + n, C->errlen - n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static struct node *push_node(struct compiler *C, enum node_kind kind)
{
	struct tpl *t = C->t;

	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 32;
		struct node *nodes = realloc(t->nodes, cap * sizeof(*nodes));
		if (!nodes)
			return NULL;
		t->nodes = nodes;
		t->cap = cap;
	}
	memset(&t->nodes[t->n], 0, sizeof(t->nodes[0]));
	t->nodes[t->n].kind = kind;
	return &t->nodes[t->n++];
}

static int push_text(struct compiler *C, const char *text, size_t len)
{
	struct node *nd;

	if (!len)
		return 0;
	if (!(nd = push_node(C, NODE_TEXT)))
		return -ENOMEM;
	nd->text = text;
	nd->len = len;
	return 0;
}

/* NAME in the scopes in force, innermost first; NULL if unknown. */
static const struct tpl_field *lookup_field(const struct compiler *C, const char *name)
{
	for (size_t i = C->nscopes; i-- > 0;)
		for (const struct tpl_field *f = C->scopes[i]; f->name; f++)
			if (!strcmp(f->name, name))
				return f;
	return NULL;
}

static int unknown_name(struct compiler *C, const char *tag)
{
	char known[1024] = "";
	size_t used = 0;

	for (size_t i = C->nscopes; i-- > 0;)
		for (const struct tpl_field *f = C->scopes[i]; f->name && used < sizeof(known) - 1; f++) {
			bool shadowed = false; /* by the same name in an inner scope: listed already */
			for (size_t k = i + 1; k < C->nscopes && !shadowed; k++)
				for (const struct tpl_field *g = C->scopes[k]; g->name && !shadowed; g++)
					shadowed = !strcmp(g->name, f->name);
			if (shadowed)
				continue;
			int w = snprintf(known + used, sizeof(known) - used, "%s%s", used ? ", " : "", f->name);
			used = w < 0 ? used : used + (size_t)w >= sizeof(known) ? sizeof(known) - 1 : used + (size_t)w;
		}
	return fail(C, C->line, "unknown placeholder {{%s}} (known here: %s)", tag, known);
}

/* The name inside a tag: blanks trimmed, [a-z0-9_] only. */
static int tag_name(struct compiler *C, const char *s, size_t len, const char *tag, char name[NAME_MAX_LEN + 1])
{
	while (len && (*s == ' ' || *s == '\t'))
		s++, len--;
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (!len)
		return fail(C, C->line, "empty placeholder {{%s}}", tag);
	if (len > NAME_MAX_LEN)
		return fail(C, C->line, "placeholder name too long in {{%s}}", tag);
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return fail(C, C->line, "invalid placeholder {{%s}} (names are a-z, 0-9 and _)", tag);
	memcpy(name, s, len);
	name[len] = 0;
	return 0;
}

static int open_section(struct compiler *C, const char *name, const char *tag, bool inverted)
{
	const struct tpl_field *f = lookup_field(C, name);
	struct node *nd;

	if (!f)
		return unknown_name(C, tag);
	if (C->nopen == DEPTH_MAX)
		return fail(C, C->line, "{{%s}}: sections nested deeper than %d", tag, DEPTH_MAX);
	if (!(nd = push_node(C, inverted ? NODE_INVERTED : NODE_SECTION)))
		return -ENOMEM;
	nd->field = f;
	C->open[C->nopen].node = C->t->n - 1;
	C->open[C->nopen].line = C->line;
	C->open[C->nopen].scoped = !inverted && f->items;
	if (C->open[C->nopen].scoped)
		C->scopes[C->nscopes++] = f->items;
	C->nopen++;
	return 0;
}

static int close_section(struct compiler *C, const char *name)
{
	const struct node *nd;

	if (!C->nopen)
		return fail(C, C->line, "{{/%s}} closes no section", name);
	nd = &C->t->nodes[C->open[C->nopen - 1].node];
	if (strcmp(nd->field->name, name))
		return fail(C, C->line, "{{/%s}} closes {{%c%s}} opened at line %d", name,
			    nd->kind == NODE_INVERTED ? '^' : '#', nd->field->name, C->open[C->nopen - 1].line);
	C->nopen--;
	if (C->open[C->nopen].scoped)
		C->nscopes--;
	C->t->nodes[C->open[C->nopen].node].end = C->t->n;
	return 0;
}

/* One tag, the text between "{{" and "}}". */
static int compile_tag(struct compiler *C, const char *inner, size_t len)
{
	char name[NAME_MAX_LEN + 1], tag[NAME_MAX_LEN + 8];
	char sigil = len ? inner[0] : 0;
	const struct tpl_field *f;
	struct node *nd;
	int r;

	snprintf(tag, sizeof(tag), "%.*s", (int)(len < NAME_MAX_LEN + 4 ? len : NAME_MAX_LEN + 4), inner);
	if (sigil == '!')
		return 0;
	if (sigil == '#' || sigil == '^' || sigil == '/') {
		if ((r = tag_name(C, inner + 1, len - 1, tag, name)) < 0)
			return r;
		return sigil == '/' ? close_section(C, name) : open_section(C, name, tag, sigil == '^');
	}
	if ((r = tag_name(C, inner, len, tag, name)) < 0)
		return r;
	if (!(f = lookup_field(C, name)))
		return unknown_name(C, tag);
	if (f->items)
		return fail(C, C->line, "{{%s}} is a list: use {{#%s}}...{{/%s}}", name, name, name);
	if (!(nd = push_node(C, NODE_VALUE)))
		return -ENOMEM;
	nd->field = f;
	return 0;
}

/* Is the tag at [start, stop) alone on its line (blanks around it)?  Then
 * *line_start is where the line begins and *next where the next one does. */
static bool standalone(const char *src, size_t len, size_t start, size_t stop, size_t *line_start, size_t *next)
{
	size_t a = start, b = stop;

	while (a > 0 && (src[a - 1] == ' ' || src[a - 1] == '\t'))
		a--;
	if (a > 0 && src[a - 1] != '\n')
		return false;
	while (b < len && (src[b] == ' ' || src[b] == '\t' || src[b] == '\r'))
		b++;
	if (b < len && src[b] != '\n')
		return false;
	*line_start = a;
	*next = b < len ? b + 1 : len;
	return true;
}

static int compile(struct compiler *C, size_t len)
{
	const char *src = C->t->src;
	size_t p = 0, text_start = 0, close, seg_end, next;
	int r;

	while (p < len) {
		if (src[p] == '\\' && src[p + 1] == '{' && src[p + 2] == '{') {
			if ((r = push_text(C, src + text_start, p - text_start)) < 0 || (r = push_text(C, src + p + 1, 2)) < 0)
				return r;
			p = text_start = p + 3;
			continue;
		}
		if (src[p] != '{' || src[p + 1] != '{') {
			C->line += src[p++] == '\n';
			continue;
		}
		for (close = p + 2; close + 1 < len && src[close] != '\n' && !(src[close] == '}' && src[close + 1] == '}');
		     close++)
			;
		if (close + 1 >= len || src[close] != '}')
			return fail(C, C->line, "\"{{\" without \"}}\" on the same line (a literal one is written \\{{)");
		seg_end = p;
		next = close + 2;
		if (src[p + 2] && strchr("#^/!", src[p + 2]))
			standalone(src, len, p, close + 2, &seg_end, &next);
		if ((r = push_text(C, src + text_start, seg_end - text_start)) < 0 ||
		    (r = compile_tag(C, src + p + 2, close - p - 2)) < 0)
			return r;
		C->line += next > close + 2 && src[next - 1] == '\n'; /* a standalone tag's line is eaten */
		p = text_start = next;
	}
	if ((r = push_text(C, src + text_start, len - text_start)) < 0)
		return r;
	if (C->nopen) {
		const struct node *nd = &C->t->nodes[C->open[C->nopen - 1].node];
		return fail(C, C->open[C->nopen - 1].line, "{{%c%s}} is not closed (expected {{/%s}})",
			    nd->kind == NODE_INVERTED ? '^' : '#', nd->field->name, nd->field->name);
	}
	return 0;
}

int tpl_compile(const char *text, size_t len, const char *file, const struct tpl_field *schema, struct tpl **ret,
		char *err, size_t errlen)
{
	struct compiler C = { .file = file, .line = 1, .scopes = { schema }, .nscopes = 1, .err = err,
			      .errlen = errlen };
	int r;

	if (errlen)
		err[0] = 0;
	if (!(C.t = calloc(1, sizeof(*C.t))) || !(C.t->src = malloc(len + 2))) {
		tpl_free(C.t);
		return -ENOMEM;
	}
	memcpy(C.t->src, text, len);
	C.t->src[len] = C.t->src[len + 1] = 0; /* the scanner may look one byte ahead */
	r = compile(&C, len);
	if (r == -ENOMEM && errlen)
		snprintf(err, errlen, "%s: out of memory", file);
	if (r < 0) {
		tpl_free(C.t);
		return r;
	}
	*ret = C.t;
	return 0;
}

/* ---- rendering ---------------------------------------------------------------- */

static json_t *lookup_value(json_t *const *ctx, size_t depth, const char *name)
{
	json_t *v;

	for (size_t i = depth; i-- > 0;)
		if (json_is_object(ctx[i]) && (v = json_object_get(ctx[i], name)))
			return v;
	return NULL;
}

static bool truthy(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_STRING:
		return json_string_length(v) > 0;
	case JSON_INTEGER:
		return json_integer_value(v) != 0;
	case JSON_REAL:
		return json_real_value(v) != 0.0;
	case JSON_TRUE:
	case JSON_OBJECT:
		return true;
	case JSON_ARRAY:
		return json_array_size(v) > 0;
	default:
		return false;
	}
}

static void write_value(FILE *out, const json_t *v)
{
	if (json_is_string(v))
		fwrite(json_string_value(v), 1, json_string_length(v), out);
	else if (json_is_integer(v))
		fprintf(out, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		fprintf(out, "%g", json_real_value(v));
	else if (json_is_boolean(v))
		fputs(json_is_true(v) ? "true" : "false", out);
}

static void render_range(const struct tpl *t, size_t from, size_t to, json_t **ctx, size_t depth, FILE *out)
{
	size_t i = from, k;
	json_t *v, *item;

	while (i < to) {
		const struct node *nd = &t->nodes[i];

		if (nd->kind == NODE_TEXT) {
			fwrite(nd->text, 1, nd->len, out);
			i++;
			continue;
		}
		v = lookup_value(ctx, depth, nd->field->name);
		if (nd->kind == NODE_VALUE) {
			write_value(out, v);
			i++;
			continue;
		}
		if (nd->kind == NODE_INVERTED) {
			if (!truthy(v))
				render_range(t, i + 1, nd->end, ctx, depth, out);
		} else if (json_is_array(v)) {
			json_array_foreach(v, k, item) {
				ctx[depth] = item;
				render_range(t, i + 1, nd->end, ctx, depth + 1, out);
			}
		} else if (json_is_object(v)) {
			ctx[depth] = v;
			render_range(t, i + 1, nd->end, ctx, depth + 1, out);
		} else if (truthy(v)) {
			render_range(t, i + 1, nd->end, ctx, depth, out);
		}
		i = nd->end;
	}
}

int tpl_render(const struct tpl *t, json_t *data, char **ret)
{
	json_t *ctx[DEPTH_MAX + 1] = { data };
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	if (!out)
		return -ENOMEM;
	render_range(t, 0, t->n, ctx, 1, out);
	if (ferror(out)) {
		fclose(out);
		free(text);
		return -ENOMEM;
	}
	if (fclose(out) != 0) {
		free(text);
		return -ENOMEM;
	}
	*ret = text;
	return 0;
}

/* yaml-tree.c - build a struct ynode tree from libyaml's event stream.
 *
 * We use the event API rather than yaml_parser_load() because the document
 * API resolves aliases silently (so they could not be rejected) and keeps
 * no trace of quoting on the nodes we want.  Nesting is bounded so that the
 * recursive walkers in the loader cannot run away on hostile input.  Every
 * node holds a reference to the name of its file (struct ynode_file).
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>
#include "config/yaml-tree.h"

#define YNODE_MAX_DEPTH 64

/* A collection under construction also needs its allocated size; keep it next
 * to the node rather than in the public struct. */
struct ynode_frame {
	struct ynode *node;
	size_t alloc;
	bool flow;                    /* written [a, b] or {a: b}: a syntax error may be its missing end */
};

static int to_position(size_t zero_based)
{
	return zero_based >= (size_t)INT_MAX - 1 ? INT_MAX : (int)zero_based + 1;
}

static int set_error(struct ynode_error *err, int line, int column, int r, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int set_error(struct ynode_error *err, int line, int column, int r, const char *fmt, ...)
{
	va_list ap;

	err->line = line;
	err->column = column;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return r;
}

/* libyaml's wording for three common slips in a config file is cryptic: an
 * unquoted "*.example.com" is scanned as an alias, an unquoted "[::1]:8080"
 * opens a flow list, and a tab in the indentation "cannot start any token".
 * Name the fix. */
static const char *syntax_hint(const yaml_parser_t *parser, const char *text, size_t len)
{
	size_t at = parser->problem_mark.index;

	if (parser->context && !strcmp(parser->context, "while scanning an alias"))
		return "; quote values that start with '*', like \"*.example.com\"";
	if (at > 0 && at < len && text[at] == ':' && text[at - 1] == '[')
		return "; quote IPv6 addresses, like \"[::1]:8080\"";
	if (at < len && text[at] == '\t')
		return "; indent with spaces: YAML does not allow tabs there";
	return "";
}

/* A construct libyaml reports where it gave up on it, which for these is
 * past the line the slip is on: an unclosed quote or bracket is noticed at
 * the next key (or at the end of the file), a key without ':' on the next
 * line.  For them the place to look is where the construct starts (libyaml's
 * context_mark); what they are called here. */
static const struct {
	const char *context;
	const char *what;
} unclosed[] = {
	{ "while scanning a quoted scalar", "the quoted string that starts here is not closed" },
	{ "while parsing a flow sequence", "the list '[' that starts here is not closed" },
	{ "while parsing a flow mapping", "the mapping '{' that starts here is not closed" },
	{ "while scanning a simple key", "this key has no ':' after it" },
};

/* What unclosed[] calls the construct libyaml's CONTEXT is about, or NULL. */
static const char *unclosed_what(const char *context)
{
	for (size_t i = 0; i < sizeof(unclosed) / sizeof(unclosed[0]); i++)
		if (!strcmp(context, unclosed[i].context))
			return unclosed[i].what;
	return NULL;
}

/* What an unclosed construct is called (see unclosed[]), when libyaml
 * noticed it on a later line than the one it starts on, with that start
 * (0-based) in *line and *column; otherwise NULL: its problem_mark is the
 * place (a bad indentation, a tab, a stray ':' are reported on their own
 * line, the context being an enclosing mapping).  open: the innermost
 * collection open when parsing failed (NULL: none), for a flow collection
 * left open at the end of the file, where libyaml's context is only "while
 * parsing a flow node" at the end. */
static const char *unclosed_construct(const yaml_parser_t *parser, const struct ynode_frame *open, size_t *line,
				      size_t *column)
{
	if (!parser->context)
		return NULL;
	if (!strcmp(parser->context, "while parsing a flow node") && open && open->flow &&
	    parser->problem_mark.line + 1 > (size_t)open->node->line) {
		*line = (size_t)open->node->line - 1;
		*column = (size_t)open->node->column - 1;
		return unclosed_what(open->node->kind == YNODE_LIST ? "while parsing a flow sequence"
								     : "while parsing a flow mapping");
	}
	if (parser->problem_mark.line <= parser->context_mark.line || !unclosed_what(parser->context))
		return NULL;
	*line = parser->context_mark.line;
	*column = parser->context_mark.column;
	return unclosed_what(parser->context);
}

/* "mapping values are not allowed" at the first ':' of a line whose
 * previous line (blank and comment lines aside) has no ':' at all: that
 * line is a key written without its ':' (libyaml read it and this line's key
 * as one value running over two lines, and failed only here).  Returns the
 * 0-based line of that key and the column where it starts in *column, or
 * -1 when the ':' is the slip itself (a second ':' on a line, say). */
static long key_without_colon(const yaml_parser_t *parser, const char *text, size_t len, size_t *column)
{
	size_t at = parser->problem_mark.index, start, prev_end, prev_start, i;
	long at_line = (long)parser->problem_mark.line;

	if (parser->context || !parser->problem ||
	    strcmp(parser->problem, "mapping values are not allowed in this context") || at >= len || text[at] != ':')
		return -1;
	for (start = at; start > 0 && text[start - 1] != '\n'; start--)
		if (text[start - 1] == ':')
			return -1; /* not the first ':' on its line */
	for (prev_end = start; prev_end > 0;) {
		size_t first;
		prev_start = prev_end - 1; /* the '\n' ending the previous line */
		while (prev_start > 0 && text[prev_start - 1] != '\n')
			prev_start--;
		at_line--;
		for (first = prev_start; first < prev_end - 1 && (text[first] == ' ' || text[first] == '\t'); first++)
			;
		if (first < prev_end - 1 && text[first] != '#' && text[first] != '\r') {
			for (i = first; i < prev_end - 1; i++)
				if (text[i] == ':')
					return -1;
			while (first + 1 < prev_end - 1 && text[first] == '-' && text[first + 1] == ' ')
				for (first++; first < prev_end - 1 && text[first] == ' '; first++)
					; /* the key of a list item: past "- " */
			*column = first - prev_start;
			return at_line;
		}
		prev_end = prev_start; /* blank or a comment: the one before */
	}
	return -1;
}

/* Translate libyaml's failure into *err, at the line the slip is on (open:
 * the innermost collection open then, or NULL).  Reader errors (bad
 * encoding, control characters) only carry a byte offset, so we count lines
 * ourselves. */
static int parser_failure(const yaml_parser_t *parser, const char *text, size_t len,
			  const struct ynode_frame *open, struct ynode_error *err)
{
	const char *problem = parser->problem ? parser->problem : "unknown error";
	const char *what;
	size_t start_line, column;
	long key_line;

	switch (parser->error) {
	case YAML_MEMORY_ERROR:
		return set_error(err, 0, 0, -ENOMEM, "out of memory");
	case YAML_READER_ERROR: {
		size_t off = parser->problem_offset < len ? parser->problem_offset : len;
		size_t line = 0, line_start = 0, i;

		for (i = 0; i < off; i++) {
			if (text[i] == '\n') {
				line++;
				line_start = i + 1;
			}
		}
		if (parser->problem_value >= 0)
			return set_error(err, to_position(line), to_position(off - line_start), -EINVAL,
					 "invalid text: %s (byte 0x%02x)", problem, parser->problem_value & 0xff);
		return set_error(err, to_position(line), to_position(off - line_start), -EINVAL,
				 "invalid text: %s", problem);
	}
	default:
		what = unclosed_construct(parser, open, &start_line, &column);
		if (what)
			return set_error(err, to_position(start_line), to_position(column), -EINVAL,
					 "syntax error: %s (%s at line %d, column %d)%s", what, problem,
					 to_position(parser->problem_mark.line),
					 to_position(parser->problem_mark.column), syntax_hint(parser, text, len));
		key_line = key_without_colon(parser, text, len, &column);
		if (key_line >= 0)
			return set_error(err, to_position((size_t)key_line), to_position(column), -EINVAL,
					 "syntax error: this key has no ':' after it (%s at line %d, column %d)",
					 problem, to_position(parser->problem_mark.line),
					 to_position(parser->problem_mark.column));
		if (parser->context)
			return set_error(err, to_position(parser->problem_mark.line),
					 to_position(parser->problem_mark.column), -EINVAL,
					 "syntax error: %s (%s at line %d, column %d)%s", problem, parser->context,
					 to_position(parser->context_mark.line),
					 to_position(parser->context_mark.column), syntax_hint(parser, text, len));
		return set_error(err, to_position(parser->problem_mark.line),
				 to_position(parser->problem_mark.column), -EINVAL, "syntax error: %s%s", problem,
				 syntax_hint(parser, text, len));
	}
}

static struct ynode *node_new(enum ynode_kind kind, const yaml_mark_t *mark, struct ynode_file *file)
{
	struct ynode *node = calloc(1, sizeof(*node));

	if (!node)
		return NULL;
	node->kind = kind;
	node->file = file;
	file->refs++;
	node->line = to_position(mark->line);
	node->column = to_position(mark->column);
	return node;
}

static char *copy_text(const unsigned char *s, size_t len)
{
	char *copy = malloc(len + 1);

	if (!copy)
		return NULL;
	memcpy(copy, s, len);
	copy[len] = 0;
	return copy;
}

/* Append child to the collection in frame.  On failure the child is not
 * owned by the frame: the caller frees it. */
static int frame_append(struct ynode_frame *frame, struct ynode *child)
{
	struct ynode *parent = frame->node;

	if (parent->nitems == frame->alloc) {
		size_t alloc = frame->alloc ? frame->alloc * 2 : 8;
		struct ynode **items;

		if (alloc > SIZE_MAX / sizeof(*items))
			return -ENOMEM;
		items = realloc(parent->items, alloc * sizeof(*items));
		if (!items)
			return -ENOMEM;
		parent->items = items;
		frame->alloc = alloc;
	}
	parent->items[parent->nitems++] = child;
	return 0;
}

static struct ynode_file *file_new(const char *name)
{
	size_t len = strlen(name);
	struct ynode_file *file = malloc(sizeof(*file) + len + 1);

	if (!file)
		return NULL;
	file->refs = 1;
	memcpy(file->name, name, len + 1);
	return file;
}

static void file_unref(struct ynode_file *file)
{
	if (file && --file->refs == 0)
		free(file);
}

struct ynode *ynode_free(struct ynode *node)
{
	size_t i;

	if (!node)
		return NULL;
	for (i = 0; i < node->nitems; i++)
		ynode_free(node->items[i]);
	free(node->items);
	free(node->value);
	file_unref(node->file);
	free(node);
	return NULL;
}

struct ynode *ynode_copy(const struct ynode *node)
{
	struct ynode *copy = calloc(1, sizeof(*copy));
	size_t i;

	if (!copy)
		return NULL;
	copy->kind = node->kind;
	copy->file = node->file;
	if (copy->file)
		copy->file->refs++;
	copy->line = node->line;
	copy->column = node->column;
	copy->plain = node->plain;
	if (node->value && !(copy->value = strdup(node->value)))
		return ynode_free(copy);
	if (node->nitems) {
		copy->items = calloc(node->nitems, sizeof(*copy->items));
		if (!copy->items)
			return ynode_free(copy);
	}
	for (i = 0; i < node->nitems; i++) {
		copy->items[i] = ynode_copy(node->items[i]);
		if (!copy->items[i])
			return ynode_free(copy);
		copy->nitems++;
	}
	return copy;
}

const struct ynode *ynode_map_get(const struct ynode *map, const char *key)
{
	size_t i;

	if (!map || map->kind != YNODE_MAP)
		return NULL;
	for (i = 0; i < ynode_map_size(map); i++) {
		const struct ynode *k = ynode_map_key(map, i);

		if (k->kind == YNODE_SCALAR && !strcmp(k->value, key))
			return ynode_map_value(map, i);
	}
	return NULL;
}

bool ynode_is_null(const struct ynode *node)
{
	if (!node || node->kind != YNODE_SCALAR || !node->plain)
		return false;
	return !node->value[0] || !strcmp(node->value, "~") || !strcmp(node->value, "null") ||
	       !strcmp(node->value, "Null") || !strcmp(node->value, "NULL");
}

/* Build the node an event opens or stands for, or NULL in *ret for events
 * that create none.  Returns 0 or a negative errno with *err filled. */
static int node_from_event(const yaml_event_t *event, struct ynode_file *file, struct ynode **ret,
			   struct ynode_error *err)
{
	struct ynode *node = NULL;

	switch (event->type) {
	case YAML_SCALAR_EVENT:
		if (memchr(event->data.scalar.value, 0, event->data.scalar.length))
			return set_error(err, to_position(event->start_mark.line),
					 to_position(event->start_mark.column), -EINVAL,
					 "invalid text: a value contains a NUL byte");
		node = node_new(YNODE_SCALAR, &event->start_mark, file);
		if (!node)
			goto oom;
		node->value = copy_text(event->data.scalar.value, event->data.scalar.length);
		if (!node->value)
			goto oom;
		node->plain = event->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
		break;
	case YAML_ALIAS_EVENT:
		node = node_new(YNODE_ALIAS, &event->start_mark, file);
		if (!node)
			goto oom;
		node->value = copy_text(event->data.alias.anchor, strlen((const char *)event->data.alias.anchor));
		if (!node->value)
			goto oom;
		break;
	case YAML_SEQUENCE_START_EVENT:
		node = node_new(YNODE_LIST, &event->start_mark, file);
		if (!node)
			goto oom;
		break;
	case YAML_MAPPING_START_EVENT:
		node = node_new(YNODE_MAP, &event->start_mark, file);
		if (!node)
			goto oom;
		break;
	default:
		break;
	}
	*ret = node;
	return 0;
oom:
	ynode_free(node);
	return set_error(err, 0, 0, -ENOMEM, "out of memory");
}

int ynode_parse(const char *name, const char *text, size_t len, struct ynode **ret, struct ynode_error *err)
{
	struct ynode_frame stack[YNODE_MAX_DEPTH];
	struct ynode *root = NULL, *node;
	struct ynode_file *file;
	yaml_parser_t parser;
	yaml_event_t event;
	bool have_event = false, done = false;
	size_t depth = 0;
	int ndocuments = 0;
	int r;

	memset(err, 0, sizeof(*err));
	snprintf(err->file, sizeof(err->file), "%s", name);
	file = file_new(name);
	if (!file)
		return set_error(err, 0, 0, -ENOMEM, "out of memory");
	if (!yaml_parser_initialize(&parser)) {
		file_unref(file);
		return set_error(err, 0, 0, -ENOMEM, "out of memory");
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);

	while (!done) {
		if (!yaml_parser_parse(&parser, &event)) {
			r = parser_failure(&parser, text, len, depth ? &stack[depth - 1] : NULL, err);
			goto out;
		}
		have_event = true;

		switch (event.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++ndocuments > 1) {
				r = set_error(err, to_position(event.start_mark.line),
					      to_position(event.start_mark.column), -EINVAL,
					      "only one YAML document is allowed per file");
				goto out;
			}
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			depth--;
			break;
		default:
			break;
		}

		node = NULL;
		r = node_from_event(&event, file, &node, err);
		if (r < 0)
			goto out;
		if (node) {
			if (depth == 0) {
				root = node;
			} else {
				r = frame_append(&stack[depth - 1], node);
				if (r < 0) {
					ynode_free(node);
					set_error(err, 0, 0, r, "out of memory");
					goto out;
				}
			}
			/* From here node belongs to the tree; opened collections
			 * also become the parent of what follows. */
			if (node->kind == YNODE_LIST || node->kind == YNODE_MAP) {
				if (depth == YNODE_MAX_DEPTH) {
					r = set_error(err, node->line, node->column, -EINVAL,
						      "nesting deeper than %d levels", YNODE_MAX_DEPTH);
					goto out;
				}
				stack[depth++] = (struct ynode_frame){
					.node = node,
					.flow = event.type == YAML_SEQUENCE_START_EVENT
							? event.data.sequence_start.style == YAML_FLOW_SEQUENCE_STYLE
							: event.data.mapping_start.style == YAML_FLOW_MAPPING_STYLE,
				};
			}
		}
		yaml_event_delete(&event);
		have_event = false;
	}

	*ret = root;
	root = NULL;
	r = 0;
out:
	if (have_event)
		yaml_event_delete(&event);
	ynode_free(root);
	yaml_parser_delete(&parser);
	file_unref(file);
	return r;
}

/* template.h - the template language of release notes (`cutover release
 * notes`, docs/releases.md "Templates"): a small subset of Mustache over a
 * JSON object, checked against a schema when it is compiled, so that a
 * misspelt placeholder is an error naming the template's file and line
 * rather than an empty string in the notes.
 *
 *   {{name}}             the value of name: text as is (no escaping: the
 *                        output is Markdown), a number, true/false; null
 *                        and a missing value are empty
 *   {{#name}}...{{/name}} a list: the block once per item, the item's
 *                        fields in scope (and the outer ones); any other
 *                        value: the block once if it is "true" (not null,
 *                        false, 0, "" or an empty list), else nothing
 *   {{^name}}...{{/name}} the block once if name is not "true"
 *   {{! comment }}       nothing
 *   \{{                  a literal "{{"
 *
 * A line holding only a section tag ({{#..}}, {{^..}}, {{/..}}) or a
 * comment, with blanks around it, is left out whole, so that a template can
 * put its tags on lines of their own.  Names are [a-z0-9_] with blanks
 * allowed inside the braces.
 */
#pragma once
#include <jansson.h>
#include <stddef.h>

/* One name a template may use.  A list has the fields of its items; a value
 * has none.  A schema is an array of them ending with { NULL }. */
struct tpl_field {
	const char *name;
	const struct tpl_field *items; /* a list: its items' fields; NULL: a value */
};

struct tpl;                           /* a compiled template; opaque */

/* Compile TEXT (LEN bytes, NUL-free), named FILE in messages, against
 * SCHEMA (borrowed: it must outlive the template).  Returns 0 and *ret
 * (tpl_free() it), or -EINVAL with "FILE:LINE: reason" in err (an unknown
 * name, with the names known there; a section not closed, or closed by
 * another name; a "{{" without "}}"; {{name}} of a list), or -ENOMEM. */
int tpl_compile(const char *text, size_t len, const char *file, const struct tpl_field *schema, struct tpl **ret,
		char *err, size_t errlen);
/* Render T with DATA (an object whose members are the schema's names;
 * borrowed).  Returns 0 and *ret (malloc'd, NUL-terminated; the caller
 * frees it), or -ENOMEM. */
int tpl_render(const struct tpl *t, json_t *data, char **ret);
/* Release T (NULL is fine).  Returns NULL. */
struct tpl *tpl_free(struct tpl *t);

/* yaml-tree.h - one YAML document as a small tree of scalars, lists and maps.
 *
 * The config loader walks this tree instead of libyaml events so that it can
 * look at a whole mapping (duplicate keys, unknown keys, required keys) and
 * report every problem at the line and column where the node was written.
 * Aliases are kept as YNODE_ALIAS leaves, never resolved: the loader rejects
 * them where it knows the field name.  Tags are ignored: every scalar is text.
 *
 * Every node remembers the file it was read from (a refcounted name shared
 * by all the nodes of that file) besides its line and column, so that a tree
 * merged from several files (merge.c) still names the right file in every
 * message.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>

enum ynode_kind { YNODE_SCALAR, YNODE_LIST, YNODE_MAP, YNODE_ALIAS };

/* The name of a file, shared by every node read from it.  Each node holds
 * one reference; the last ynode_free() of them frees it. */
struct ynode_file {
	size_t refs;
	char name[];
};

struct ynode {
	enum ynode_kind kind;
	struct ynode_file *file;      /* where the node was written */
	int line;                     /* 1-based, where the node starts */
	int column;                   /* 1-based */
	char *value;                  /* SCALAR: the text, NUL-terminated; ALIAS: the anchor name */
	bool plain;                   /* SCALAR: written without quotes (so "~", "null", "" mean null) */
	struct ynode **items;         /* LIST: the items; MAP: key, value, key, value, ... */
	size_t nitems;                /* LIST: number of items; MAP: twice the number of pairs */
};

/* Why parsing or merging failed: the file, a position (1-based, 0 if
 * unknown), the dotted path of the key concerned ("" for syntax errors) and
 * a sentence. */
struct ynode_error {
	char file[256];
	int line;
	int column;
	char field[128];
	char message[384];
};

/* Parse text[0..len), read from the file `name` (kept on every node), as a
 * single YAML document.  Returns 0 and *ret, the root (caller frees with
 * ynode_free), or *ret = NULL when the stream holds no document at all
 * (empty or only comments).  On failure returns -EINVAL (syntax error,
 * several documents, nesting deeper than 64) or -ENOMEM, with *err filled
 * and *ret untouched; nothing stays allocated. */
int ynode_parse(const char *name, const char *text, size_t len, struct ynode **ret, struct ynode_error *err);

/* Frees a node and everything below it.  Accepts NULL, returns NULL. */
struct ynode *ynode_free(struct ynode *node);

/* A deep copy of node (sharing its file names), or NULL when out of memory.
 * Caller frees with ynode_free. */
struct ynode *ynode_copy(const struct ynode *node);

/* Merge overlay onto base (merge.c).  The result, a new tree in *ret (caller
 * frees), is base changed by overlay:
 *   - two mappings merge key by key, recursively; keys only in overlay are
 *     appended in their order;
 *   - a key whose value is null in overlay removes the key (and is never
 *     added);
 *   - anything else (a list, a single value, a mapping over a value or a
 *     list) replaces what base had;
 * and every node keeps the file and position it was copied from (a merged
 * mapping: base's; a replaced value and its key: overlay's).  base is a
 * tree, not NULL; a null or NULL overlay gives a copy of it.  base and
 * overlay are not changed and stay owned by the caller.  Returns 0, -EINVAL when a mapping being merged
 * names a key twice (*err names the file, position and key path; other
 * shapes are left for the reader of the tree to judge), or -ENOMEM; *ret is
 * untouched on failure. */
int ynode_merge(const struct ynode *base, const struct ynode *overlay, struct ynode **ret,
		struct ynode_error *err);

/* Name of the file node was read from ("" if none). */
static inline const char *ynode_file_name(const struct ynode *node)
{
	return node->file ? node->file->name : "";
}

/* True for a plain scalar that YAML reads as null: empty, "~", "null". */
bool ynode_is_null(const struct ynode *node);

/* Number of pairs in a MAP node; key and value of pair i. */
static inline size_t ynode_map_size(const struct ynode *map) { return map->nitems / 2; }
static inline struct ynode *ynode_map_key(const struct ynode *map, size_t i) { return map->items[2 * i]; }
static inline struct ynode *ynode_map_value(const struct ynode *map, size_t i) { return map->items[2 * i + 1]; }

/* The value of the first plain-name (scalar) key `key` of a MAP node, or
 * NULL when map is not a mapping or has no such key. */
const struct ynode *ynode_map_get(const struct ynode *map, const char *key);

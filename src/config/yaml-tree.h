/* yaml-tree.h - one YAML document as a small tree of scalars, lists and maps.
 *
 * The config loader walks this tree instead of libyaml events so that it can
 * look at a whole mapping (duplicate keys, unknown keys, required keys) and
 * report every problem at the line and column where the node was written.
 * Aliases are kept as YNODE_ALIAS leaves, never resolved: the loader rejects
 * them where it knows the field name.  Tags are ignored: every scalar is text.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>

enum ynode_kind { YNODE_SCALAR, YNODE_LIST, YNODE_MAP, YNODE_ALIAS };

struct ynode {
	enum ynode_kind kind;
	int line;                     /* 1-based, where the node starts */
	int column;                   /* 1-based */
	char *value;                  /* SCALAR: the text, NUL-terminated; ALIAS: the anchor name */
	bool plain;                   /* SCALAR: written without quotes (so "~", "null", "" mean null) */
	struct ynode **items;         /* LIST: the items; MAP: key, value, key, value, ... */
	size_t nitems;                /* LIST: number of items; MAP: twice the number of pairs */
};

/* Why parsing failed: a position (1-based, 0 if unknown) and a sentence. */
struct ynode_error {
	int line;
	int column;
	char message[384];
};

/* Parse text[0..len) as a single YAML document.  Returns 0 and *ret, the root
 * (caller frees with ynode_free), or *ret = NULL when the stream holds no
 * document at all (empty or only comments).  On failure returns -EINVAL
 * (syntax error, several documents, nesting deeper than 64) or -ENOMEM, with
 * *err filled and *ret untouched; nothing stays allocated. */
int ynode_parse(const char *text, size_t len, struct ynode **ret, struct ynode_error *err);

/* Frees a node and everything below it.  Accepts NULL, returns NULL. */
struct ynode *ynode_free(struct ynode *node);

/* True for a plain scalar that YAML reads as null: empty, "~", "null". */
bool ynode_is_null(const struct ynode *node);

/* Number of pairs in a MAP node; key and value of pair i. */
static inline size_t ynode_map_size(const struct ynode *map) { return map->nitems / 2; }
static inline struct ynode *ynode_map_key(const struct ynode *map, size_t i) { return map->items[2 * i]; }
static inline struct ynode *ynode_map_value(const struct ynode *map, size_t i) { return map->items[2 * i + 1]; }

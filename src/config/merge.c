/* merge.c - merge an overlay tree of YAML nodes onto a base tree.
 *
 * An overlay file (an environment's changes to cutover.yml, say) is parsed
 * into its own tree and merged onto the base tree before the loader reads
 * the result, so the loader sees one tree and judges every value exactly as
 * in a single file.  The rules are those of ynode_merge() in yaml-tree.h:
 * mappings merge key by key, a null removes a key, anything else replaces.
 * The merge builds a new tree of copies: both inputs stay as they are, and
 * each copied node keeps the file, line and column it was written at, so a
 * message about a merged value names the file the value came from.
 *
 * Only what the merge itself relies on is checked here: a key written twice
 * in a mapping being merged (which of the two would win is a guess).  Other
 * shapes (aliases, non-scalar keys, merge keys) pass through unchanged, and
 * the loader rejects them at their own file and position.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config/yaml-tree.h"

#define FIELD_MAX sizeof(((struct ynode_error *)0)->field)

/* The dotted path of the key being merged, for messages. */
struct merge_path {
	char text[FIELD_MAX];
	size_t len;
};

static size_t path_push(struct merge_path *path, const char *key)
{
	size_t saved = path->len;
	int n = snprintf(path->text + saved, sizeof(path->text) - saved, "%s%s", saved ? "." : "", key);

	path->len = n < 0 ? saved : saved + (size_t)n;
	if (path->len >= sizeof(path->text))
		path->len = sizeof(path->text) - 1;
	return saved;
}

static void path_pop(struct merge_path *path, size_t saved)
{
	path->len = saved;
	path->text[saved] = 0;
}

static bool is_name(const struct ynode *key)
{
	return key->kind == YNODE_SCALAR;
}

/* Index of the first pair of map before `end` whose key is the plain name
 * `name`, or SIZE_MAX. */
static size_t find_key(const struct ynode *map, size_t end, const char *name)
{
	size_t i;

	for (i = 0; i < end; i++)
		if (is_name(ynode_map_key(map, i)) && !strcmp(ynode_map_key(map, i)->value, name))
			return i;
	return SIZE_MAX;
}

/* -EINVAL with *err filled when map names a key twice. */
static int check_unique(const struct ynode *map, struct merge_path *path, struct ynode_error *err)
{
	size_t i, first, saved;

	for (i = 1; i < ynode_map_size(map); i++) {
		const struct ynode *key = ynode_map_key(map, i);

		first = is_name(key) ? find_key(map, i, key->value) : SIZE_MAX;
		if (first == SIZE_MAX)
			continue;
		memset(err, 0, sizeof(*err));
		snprintf(err->file, sizeof(err->file), "%s", ynode_file_name(key));
		err->line = key->line;
		err->column = key->column;
		saved = path_push(path, key->value);
		memcpy(err->field, path->text, sizeof(err->field));
		path_pop(path, saved);
		snprintf(err->message, sizeof(err->message), "duplicate key \"%.64s\" (first at line %d)", key->value,
			 ynode_map_key(map, first)->line);
		return -EINVAL;
	}
	return 0;
}

static int merge_node(const struct ynode *base, const struct ynode *overlay, struct merge_path *path,
		      struct ynode **ret, struct ynode_error *err);

/* Append a copy of (key, value) to map, whose items have room. */
static int append_pair(struct ynode *map, const struct ynode *key, struct ynode *value)
{
	struct ynode *key_copy = ynode_copy(key);

	if (!key_copy) {
		ynode_free(value);
		return -ENOMEM;
	}
	map->items[map->nitems++] = key_copy;
	map->items[map->nitems++] = value;
	return 0;
}

/* Merge the overlay mapping onto the base mapping (NULL: onto an empty one)
 * into a new mapping at base's place (overlay's without a base). */
static int merge_maps(const struct ynode *base, const struct ynode *overlay, struct merge_path *path,
		      struct ynode **ret, struct ynode_error *err)
{
	const struct ynode *place = base ? base : overlay;
	size_t nbase = base ? ynode_map_size(base) : 0, i, j, saved;
	struct ynode *map, *value;
	int r;

	if ((base && (r = check_unique(base, path, err)) < 0) || (r = check_unique(overlay, path, err)) < 0)
		return r;
	map = calloc(1, sizeof(*map));
	if (!map || !(map->items = calloc(2 * (nbase + ynode_map_size(overlay)) + 1, sizeof(*map->items)))) {
		free(map);
		return -ENOMEM;
	}
	map->kind = YNODE_MAP;
	map->file = place->file;
	if (map->file)
		map->file->refs++;
	map->line = place->line;
	map->column = place->column;

	/* base's keys in their order, each changed or removed by overlay */
	for (i = 0; i < nbase; i++) {
		const struct ynode *key = ynode_map_key(base, i), *over = NULL, *over_key = key;

		j = is_name(key) ? find_key(overlay, ynode_map_size(overlay), key->value) : SIZE_MAX;
		if (j != SIZE_MAX) {
			over_key = ynode_map_key(overlay, j);
			over = ynode_map_value(overlay, j);
			if (ynode_is_null(over))
				continue;
		}
		saved = path_push(path, is_name(key) ? key->value : "?");
		r = over ? merge_node(ynode_map_value(base, i), over, path, &value, err)
			 : ((value = ynode_copy(ynode_map_value(base, i))) ? 0 : -ENOMEM);
		path_pop(path, saved);
		/* a replaced value is written under the overlay's key; two
		 * merged mappings stay where base wrote them */
		if (over && over->kind == YNODE_MAP && ynode_map_value(base, i)->kind == YNODE_MAP)
			over_key = key;
		if (r >= 0)
			r = append_pair(map, over_key, value);
		if (r < 0)
			goto fail;
	}
	/* then overlay's new keys, in their order */
	for (j = 0; j < ynode_map_size(overlay); j++) {
		const struct ynode *key = ynode_map_key(overlay, j), *over = ynode_map_value(overlay, j);

		if (ynode_is_null(over) || (base && is_name(key) && find_key(base, nbase, key->value) != SIZE_MAX))
			continue;
		saved = path_push(path, is_name(key) ? key->value : "?");
		r = merge_node(NULL, over, path, &value, err);
		path_pop(path, saved);
		if (r >= 0)
			r = append_pair(map, key, value);
		if (r < 0)
			goto fail;
	}
	*ret = map;
	return 0;
fail:
	ynode_free(map);
	return r;
}

/* overlay onto base (NULL: nothing there yet). */
static int merge_node(const struct ynode *base, const struct ynode *overlay, struct merge_path *path,
		      struct ynode **ret, struct ynode_error *err)
{
	struct ynode *copy;

	if (overlay->kind == YNODE_MAP)
		return merge_maps(base && base->kind == YNODE_MAP ? base : NULL, overlay, path, ret, err);
	copy = ynode_copy(overlay);
	if (!copy)
		return -ENOMEM;
	*ret = copy;
	return 0;
}

int ynode_merge(const struct ynode *base, const struct ynode *overlay, struct ynode **ret,
		struct ynode_error *err)
{
	struct merge_path path = { .text = "", .len = 0 };
	struct ynode *merged = NULL;
	int r;

	if (!overlay || ynode_is_null(overlay))
		r = (merged = ynode_copy(base)) ? 0 : -ENOMEM;
	else
		r = merge_node(base, overlay, &path, &merged, err);
	if (r == -ENOMEM) {
		memset(err, 0, sizeof(*err));
		snprintf(err->message, sizeof(err->message), "out of memory");
	}
	if (r < 0)
		return r;
	*ret = merged;
	return 0;
}

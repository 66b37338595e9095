/* show.h - the effective configuration with the origin of each value, for
 * `cutover config show` (show.c builds it, show-text.c renders it as text).
 *
 * Both take a loaded configuration and the merged tree it was read from
 * (config_load_env_tree()): the struct says what is in force, defaults
 * included; the tree says where each value that was written came from.
 */
#pragma once
#include <jansson.h>
#include <stdio.h>
#include "config/config-t.h"
#include "config/yaml-tree.h"

/* The configuration as a JSON document (docs/config.md, "config show"):
 *   {"env": ENV or null, "files": [BASE, OVERLAY...], "config": {...}}
 * where "config" has the sections of the file in the order of the
 * reference, mappings as objects, lists as arrays, and every value a leaf
 * {"value": V, "origin": {"file": F, "line": L, "column": C}} or
 * {"value": V, "origin": "default"}.  V is a string as the file would
 * write it ("1m", "16k", "5%"), an integer for counts, or null for a
 * setting that is not set.  tree may be NULL (every origin is then
 * "default").  Returns a new reference, or NULL when out of memory. */
json_t *config_show_json(const struct config *cfg, const struct ynode *tree);

/* The same as YAML-like text on out: a comment line naming the files
 * (config_describe), then each value followed by an aligned comment with
 * its origin ("# cutover.prod.yml:4", "# default").  Files are named
 * without their directory (the first line names them in full).  Returns 0,
 * -ENOMEM or -EIO (a failed write). */
int config_show_text(const struct config *cfg, const struct ynode *tree, FILE *out);

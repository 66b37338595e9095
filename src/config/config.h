/* config.h - load and validate cutover.yml into a struct config. */
#pragma once
#include "config/config-t.h"

/* Read and fully validate path.  Returns 0 and *ret (caller frees with
 * config_free), or a negative errno (-ENOENT, -EINVAL, ...) with *err filled
 * and *ret untouched; nothing is half-built on failure. */
int config_load(const char *path, struct config **ret, struct config_error *err);
/* Same, from a string in memory (name is used in messages).  For tests. */
int config_load_string(const char *name, const char *text, size_t len, struct config **ret,
		       struct config_error *err);
/* Fill defaults (used by config_load, and by `cutover proxy` without a file). */
void config_defaults(struct config *cfg);
/* Returns NULL. Accepts NULL. */
struct config *config_free(struct config *cfg);

/* store-internal.h - shared by the files of src/store (and its unit
 * test): the tree walker of tree.c. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "store/store.h"

/* Hash PATH in the canonical serialization of store.h (a regular file as
 * a one-entry directory, unless DIR_ONLY, which accepts only a directory).
 * When DESTFD >= 0, also copy every entry into that (empty, writable)
 * directory as it is hashed, then make the copy read-only and fsync it.
 * Everything is validated (entry kinds, symlinks) before anything is
 * copied.  Returns 0 with digest and *ret_size (may be NULL) set, or -errno
 * with a sentence in err naming the offending path. */
int store_tree_hash(const char *path, bool dir_only, int destfd, char digest[STORE_DIGEST_HEX + 1],
		      uint64_t *ret_size, char *err, size_t errlen);

/* rm -rf NAME under PARENTFD, making read-only directories writable first.
 * A missing NAME is fine.  Returns 0 or -errno. */
int store_tree_remove(int parentfd, const char *name);

/* store.h - the release store: immutable, content-addressed artifacts of
 * service versions, kept read-only under STORE/SERVICE/DIGEST/ and recorded
 * in the state database (`releases` table).
 *
 * A release is a regular file or a directory tree.  A file is stored under
 * its basename inside the release directory, so a run command names it as
 * ${RELEASE_DIR}/BASENAME; a directory's contents become the release
 * directory.  The daemon runs every version from there, so staging and
 * production run the very same bytes.
 *
 * The digest (SHA-256, lower-case hex) is computed over this canonical
 * serialization, version 1, so that it depends only on what the release
 * holds, never on mtimes, owners, permissions other than the executable bit,
 * or the order a directory lists its entries in:
 *
 *   "cutover-release-v1\n"
 *   then, for every entry in bytewise (strcmp) order of its relative path
 *   ('/'-separated, no leading "./"; the root itself is not an entry):
 *     TYPE " " MODE " " SIZE " " PATH "\0" DATA
 *   TYPE  'f' regular file, 'd' directory, 'l' symbolic link
 *   MODE  "755" for an executable file (owner x bit), "644" for any other
 *         file, "755" for a directory, "777" for a symlink
 *   SIZE  decimal length of DATA
 *   DATA  a file's bytes; nothing for a directory; a symlink's target text
 *
 * A file release is serialized as a directory holding that one file (PATH
 * is the basename): the basename is part of the content because the store
 * keeps it and run commands name it.  Hence hashing a stored release
 * directory gives its digest back, whichever kind it came from
 * (store_verify()).
 *
 * Symlinks are kept only when they point inside the release: relative,
 * never climbing above the release root, and never using ".." right after
 * a component that is itself a symlink (which could lead outside).
 * Devices, FIFOs and sockets are refused.
 *
 * Every function may block on the file system and SQLite (call it from the
 * CLI or the daemon's state thread, never the event loop).  Errors: a
 * negative errno and a sentence in err naming the argument or file and the
 * cause.  -EINVAL: an invalid service name, version, or source content
 * (the caller's input: usage error); -ENOENT: no such source / release;
 * -EEXIST: the version exists with another digest; -EBADMSG: store_verify()
 * found a different digest; other values: I/O or database failures.
 * Nothing here logs.
 */
#pragma once
#include <stddef.h>
#include "store/store-t.h"
#include "state/state-t.h"

/* [a-z0-9][a-z0-9_-]{0,62} */
bool store_service_valid(const char *name);
/* Semantic Versioning 2.0.0, strictly: MAJOR.MINOR.PATCH, numbers without
 * leading zeros, optional -PRERELEASE (dot-separated non-empty
 * [0-9A-Za-z-] identifiers, numeric ones without leading zeros) and
 * +BUILD (dot-separated non-empty [0-9A-Za-z-] identifiers); at most
 * STORE_VERSION_MAX bytes.  No "v" prefix. */
bool store_version_valid(const char *version);
/* Check SERVICE and VERSION (NULL: no version) as store_add() does.
 * Returns 0, or -EINVAL with a sentence in err naming the argument, its
 * value and the expected form. */
int store_check_names(const char *service, const char *version, char *err, size_t errlen);

/* Compute the digest of PATH (a file or a directory, as store_add() would
 * store it) into digest (65 bytes) and the total size of its files into
 * *ret_size (may be NULL).  Nothing is copied. */
int store_digest(const char *path, char digest[STORE_DIGEST_HEX + 1], uint64_t *ret_size, char *err,
		   size_t errlen);

/* Add SRC_PATH as SERVICE@VERSION: validate, copy into a temporary
 * directory of STORE_DIR/SERVICE while hashing, make it read-only (files
 * 0444, or 0555 when executable; directories 0555), fsync, and rename it to
 * STORE_DIR/SERVICE/DIGEST (a crash never leaves a partial release there);
 * then record it.  Adding the same version with the same digest again
 * succeeds (ret->existed); with another digest fails with -EEXIST ("version
 * already exists with a different digest (immutable)").  On success fills
 * *ret (clear with store_result_clear()). */
int store_add(struct state *st, const char *store_dir, const char *service, const char *version,
		const char *src_path, struct store_result *ret, char *err, size_t errlen);
void store_result_clear(struct store_result *res);

/* The releases of SERVICE, oldest first (state_release_array_free()). */
int store_list(struct state *st, const char *service, struct state_release **ret_items, size_t *ret_n);
/* SERVICE@VERSION (path and digest); -ENOENT if unknown. */
int store_get(struct state *st, const char *service, const char *version, struct state_release *ret);

/* Recompute the digest of the stored SERVICE@VERSION and compare it with
 * the recorded one.  0 if equal; -EBADMSG if not (err gives both digests),
 * or if the stored tree holds something a release may not (e.g. a symlink
 * pointing outside); -ENOENT if the release or its directory is missing. */
int store_verify(struct state *st, const char *service, const char *version, char *err, size_t errlen);

/* Delete the oldest releases of SERVICE beyond the KEEP_N newest, except
 * the versions listed in IN_USE (running or needed for a rollback; the
 * caller knows): each row is removed first, then its directory (made
 * writable again, renamed aside, removed) unless another version of the
 * service shares the same digest.  Leftovers of interrupted adds and
 * deletions (STORE/SERVICE/.tmp-* older than a day, .del-*) go too.  On
 * success *ret_deleted / *ret_n (may be NULL) list what was deleted, oldest
 * first (state_release_array_free()). */
int store_prune(struct state *st, const char *store_dir, const char *service, size_t keep_n,
		  const char *const *in_use, size_t n_in_use, struct state_release **ret_deleted, size_t *ret_n,
		  char *err, size_t errlen);

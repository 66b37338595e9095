/* store.c - the release store: adding (copy, seal, rename into place, then
 * record), looking up, verifying and pruning releases.
 *
 * Order of effects, chosen so that a crash at any point leaves nothing
 * half-visible: an add writes STORE/SERVICE/.tmp-XXXXXX, renames it to
 * STORE/SERVICE/DIGEST, and only then inserts the row; a prune deletes the
 * row first, then renames the directory to .del-... and removes it.  So a
 * recorded release always has its complete directory, and leftovers are
 * only unreferenced dot-directories that the next prune removes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "base/util.h"
#include "store/store-internal.h"
#include "state/state.h"

#define STALE_TMP_SECONDS (24 * 3600)

int store_check_names(const char *service, const char *version, char *err, size_t errlen)
{
	if (!store_service_valid(service)) {
		snprintf(err, errlen,
			 "SERVICE '%s': invalid service name (expected [a-z0-9][a-z0-9_-]{0,62}: "
			 "lower-case letters, digits, '_' and '-', starting with a letter or digit)",
			 service ? service : "");
		return -EINVAL;
	}
	if (version && !store_version_valid(version)) {
		snprintf(err, errlen,
			 "VERSION '%s': not a semantic version (expected MAJOR.MINOR.PATCH with optional "
			 "-PRERELEASE and +BUILD, no leading zeros, no 'v' prefix, e.g. 1.4.0 or 2.0.0-rc.1)",
			 version);
		return -EINVAL;
	}
	return 0;
}

/* mkdir -p DIR (0755) and return its canonical absolute path in out
 * (PATH_MAX bytes). */
static int make_store_dir(const char *dir, char *out)
{
	int r = make_dirs(dir, 0755);

	if (r < 0)
		return r;
	if (!realpath(dir, out))
		return -errno;
	return 0;
}

static int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

/* Remove PARENT/NAME: rename it aside first (so it disappears atomically
 * under its real name), then delete it. */
static int remove_aside(const char *parent, const char *name)
{
	char aside[NAME_MAX + 1];
	int dirfd, r;

	dirfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return -errno;
	if (name[0] == '.') {
		/* a leftover (.tmp-, .del-) is invisible already */
		snprintf(aside, sizeof(aside), "%s", name);
	} else {
		snprintf(aside, sizeof(aside), ".del-%.64s-%ld-%lld", name, (long)getpid(),
			 (long long)state_now_ms());
	}
	if (strcmp(aside, name) && renameat(dirfd, name, dirfd, aside) < 0) {
		r = errno == ENOENT ? 0 : -errno;
		close(dirfd);
		return r;
	}
	r = store_tree_remove(dirfd, aside);
	if (r == 0)
		fsync(dirfd);
	close(dirfd);
	return r;
}

void store_result_clear(struct store_result *res)
{
	if (res)
		state_release_clear(&res->release);
}

int store_digest(const char *path, char digest[STORE_DIGEST_HEX + 1], uint64_t *ret_size, char *err,
		   size_t errlen)
{
	return store_tree_hash(path, false, -1, digest, ret_size, err, errlen);
}

/* The version exists already: compare SRC's digest with the recorded one. */
static int add_existing(struct state_release *existing, const char *src_path, const char *version,
			struct store_result *ret, char *err, size_t errlen)
{
	char digest[STORE_DIGEST_HEX + 1];
	int r = store_tree_hash(src_path, false, -1, digest, NULL, err, errlen);

	if (r < 0)
		return r;
	if (strcmp(digest, existing->digest)) {
		snprintf(err, errlen,
			 "%s %s: version already exists with a different digest (immutable): recorded %s, "
			 "%s has %s; publish a new version instead",
			 existing->service, version, existing->digest, src_path, digest);
		return -EEXIST;
	}
	ret->release = *existing;
	ret->existed = true;
	existing->path = NULL;
	return 0;
}

/* An add under way: where its copy is, and what a failure must undo. */
struct pending_add {
	const char *service, *version, *src_path;
	char service_dir[PATH_MAX + 80]; /* STORE/SERVICE, canonical */
	char tmp[PATH_MAX + 100];        /* the temporary copy; "" when there is none to remove */
	char final[PATH_MAX + 160];      /* STORE/SERVICE/DIGEST */
	char digest[STORE_DIGEST_HEX + 1];
	uint64_t size;
	bool placed;                     /* final is this add's to remove if it fails */
};

/* Validate: SERVICE and VERSION well-formed, SRC_PATH an existing regular
 * file or directory.  Returns 0 or -errno with a sentence in err. */
static int check_add_source(const char *service, const char *version, const char *src_path, char *err,
			    size_t errlen)
{
	struct stat sb;
	int r = store_check_names(service, version, err, errlen);

	if (r < 0)
		return r;
	if (!src_path || stat(src_path, &sb) < 0) {
		r = src_path ? -errno : -EINVAL;
		snprintf(err, errlen, "PATH '%s': %s", src_path ? src_path : "", strerror(-r));
		return r;
	}
	if (!S_ISREG(sb.st_mode) && !S_ISDIR(sb.st_mode)) {
		snprintf(err, errlen, "PATH '%s': not a regular file or a directory", src_path);
		return -EINVAL;
	}
	return 0;
}

/* mkdir -p STORE_DIR/SERVICE and put its canonical path in
 * add->service_dir.  Returns 0 or -errno with a sentence in err. */
static int make_service_dir(struct pending_add *add, const char *store_dir, char *err, size_t errlen)
{
	char store[PATH_MAX];
	int r = make_store_dir(store_dir, store);

	if (r < 0) {
		snprintf(err, errlen, "release store %s: cannot create it: %s", store_dir, strerror(-r));
		return r;
	}
	snprintf(add->service_dir, sizeof(add->service_dir), "%s/%s", store, add->service);
	if (mkdir(add->service_dir, 0755) < 0 && errno != EEXIST) {
		r = -errno;
		snprintf(err, errlen, "release store %s: cannot create it: %s", add->service_dir, strerror(errno));
		return r;
	}
	return 0;
}

/* Copy the source into a new SERVICE_DIR/.tmp-XXXXXX while hashing it
 * (store_tree_hash() leaves the copy read-only and synced): sets add->tmp,
 * add->digest and add->size.  Returns 0 or -errno with a sentence in err;
 * add->tmp names whatever temporary directory was made, for the caller to
 * remove. */
static int copy_to_tmp(struct pending_add *add, char *err, size_t errlen)
{
	int destfd, r;

	snprintf(add->tmp, sizeof(add->tmp), "%s/.tmp-XXXXXX", add->service_dir);
	if (!mkdtemp(add->tmp)) {
		r = -errno;
		snprintf(err, errlen, "release store %s: cannot create a temporary directory: %s",
			 add->service_dir, strerror(errno));
		add->tmp[0] = '\0';
		return r;
	}
	destfd = open(add->tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (destfd < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", add->tmp, strerror(errno));
		return r;
	}
	r = store_tree_hash(add->src_path, false, destfd, add->digest, &add->size, err, errlen);
	close(destfd);
	return r;
}

/* Seal: rename the copy to SERVICE_DIR/DIGEST (add->final) and fsync
 * SERVICE_DIR.  When that directory exists already, the same content is
 * stored (another version, or an earlier add that crashed before recording
 * it): the copy stays in add->tmp for the caller to remove.  Sets
 * add->placed when the rename made add->final.  Returns 0 or -errno with a
 * sentence in err. */
static int place_copy(struct pending_add *add, char *err, size_t errlen)
{
	int r;

	snprintf(add->final, sizeof(add->final), "%s/%s", add->service_dir, add->digest);
	if (rename(add->tmp, add->final) == 0) {
		add->placed = true;
		add->tmp[0] = '\0';
	} else if (errno != EEXIST && errno != ENOTEMPTY) {
		r = -errno;
		snprintf(err, errlen, "release store: cannot rename %s to %s: %s", add->tmp, add->final,
			 strerror(errno));
		return r;
	}
	r = fsync_dir(add->service_dir);
	if (r < 0)
		snprintf(err, errlen, "release store %s: fsync: %s", add->service_dir, strerror(-r));
	return r;
}

/* Record the placed release in the state and fill *ret (its path
 * malloc'd).  If another add of this version won the race, the result is
 * add_existing()'s against the winner's row.  Clears add->placed when the
 * directory is now in use by a row.  Returns 0 or -errno with a sentence in
 * err (none for -ENOMEM). */
static int record_release(struct state *st, struct pending_add *add, struct store_result *ret, char *err,
			  size_t errlen)
{
	struct state_release existing = { 0 }, rel = { 0 };
	int r;

	snprintf(rel.service, sizeof(rel.service), "%s", add->service);
	snprintf(rel.version, sizeof(rel.version), "%s", add->version);
	memcpy(rel.digest, add->digest, sizeof(rel.digest));
	rel.path = add->final;
	rel.size_bytes = add->size;
	rel.created_at = state_now_ms();
	r = state_release_add(st, &rel, &rel.id);
	if (r == -EEXIST) {
		/* Another add of this version won the race. */
		r = state_release_get(st, add->service, add->version, &existing);
		if (r == 0) {
			r = add_existing(&existing, add->src_path, add->version, ret, err, errlen);
			state_release_clear(&existing);
			if (r == 0)
				add->placed = false; /* the winner's row uses it if the digest is the same */
		} else
			snprintf(err, errlen, "state database: %s", state_errmsg(st));
		return r;
	}
	if (r < 0) {
		snprintf(err, errlen, "state database: cannot record %s %s: %s", add->service, add->version,
			 state_errmsg(st));
		return r;
	}
	ret->release = rel;
	ret->release.path = strdup(add->final);
	ret->existed = false;
	if (!ret->release.path)
		return -ENOMEM;
	add->placed = false;
	return 0;
}

int store_add(struct state *st, const char *store_dir, const char *service, const char *version,
		const char *src_path, struct store_result *ret, char *err, size_t errlen)
{
	struct pending_add add = { .service = service, .version = version, .src_path = src_path };
	struct state_release existing = { 0 };
	char scratch[8];
	int r;

	if (!err || !errlen) {
		err = scratch;
		errlen = sizeof(scratch);
	}
	err[0] = '\0';
	r = check_add_source(service, version, src_path, err, errlen);
	if (r < 0)
		return r;

	/* Known version: no copy, only a comparison. */
	r = state_release_get(st, service, version, &existing);
	if (r == 0) {
		r = add_existing(&existing, src_path, version, ret, err, errlen);
		state_release_clear(&existing);
		return r;
	}
	if (r != -ENOENT) {
		snprintf(err, errlen, "state database: cannot read release %s %s: %s", service, version,
			 state_errmsg(st));
		return r;
	}

	r = make_service_dir(&add, store_dir, err, errlen);
	if (r < 0)
		return r;
	r = copy_to_tmp(&add, err, errlen);
	if (r == 0)
		r = place_copy(&add, err, errlen);
	if (r == 0)
		r = record_release(st, &add, ret, err, errlen);
	if (add.tmp[0])
		remove_aside(add.service_dir, strrchr(add.tmp, '/') + 1);
	if (r < 0 && add.placed)
		remove_aside(add.service_dir, add.digest);
	return r;
}

int store_list(struct state *st, const char *service, struct state_release **ret_items, size_t *ret_n)
{
	return state_release_list(st, service, ret_items, ret_n);
}

int store_get(struct state *st, const char *service, const char *version, struct state_release *ret)
{
	return state_release_get(st, service, version, ret);
}

int store_verify(struct state *st, const char *service, const char *version, char *err, size_t errlen)
{
	struct state_release rel = { 0 };
	char digest[STORE_DIGEST_HEX + 1], scratch[8];
	int r;

	if (!err || !errlen) {
		err = scratch;
		errlen = sizeof(scratch);
	}
	err[0] = '\0';
	r = store_check_names(service, version, err, errlen);
	if (r < 0)
		return r;
	r = state_release_get(st, service, version, &rel);
	if (r < 0) {
		if (r == -ENOENT)
			snprintf(err, errlen, "%s %s: no such release", service, version);
		else
			snprintf(err, errlen, "state database: %s", state_errmsg(st));
		return r;
	}
	r = store_tree_hash(rel.path, true, -1, digest, NULL, err, errlen);
	if (r == -EINVAL) {
		r = -EBADMSG; /* something a release may not hold: tampered with */
	} else if (r == 0 && strcmp(digest, rel.digest)) {
		snprintf(err, errlen, "%s %s: %s was modified: recorded digest %s, found %s", service, version,
			 rel.path, rel.digest, digest);
		r = -EBADMSG;
	}
	state_release_clear(&rel);
	return r;
}

/* Remove leftovers of interrupted adds and deletions in SERVICE_DIR. */
static void remove_leftovers(const char *service_dir)
{
	DIR *dir = opendir(service_dir);
	struct dirent *de;
	time_t now = time(NULL);

	if (!dir)
		return;
	while ((de = readdir(dir))) {
		struct stat sb;
		bool del = !strncmp(de->d_name, ".del-", 5), tmp = !strncmp(de->d_name, ".tmp-", 5);

		if (!del && !tmp)
			continue;
		if (tmp && (fstatat(dirfd(dir), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
			    now - sb.st_mtime < STALE_TMP_SECONDS))
			continue;
		store_tree_remove(dirfd(dir), de->d_name);
	}
	closedir(dir);
}

static bool is_in_use(const char *version, const char *const *in_use, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (in_use[i] && !strcmp(in_use[i], version))
			return true;
	return false;
}

int store_prune(struct state *st, const char *store_dir, const char *service, size_t keep_n,
		  const char *const *in_use, size_t n_in_use, struct state_release **ret_deleted, size_t *ret_n,
		  char *err, size_t errlen)
{
	struct state_release *items = NULL, *deleted = NULL;
	char store[PATH_MAX], service_dir[PATH_MAX + 80], scratch[8];
	size_t n = 0, ndeleted = 0, candidates;
	int r;

	if (!err || !errlen) {
		err = scratch;
		errlen = sizeof(scratch);
	}
	err[0] = '\0';
	r = store_check_names(service, NULL, err, errlen);
	if (r < 0)
		return r;
	if (!realpath(store_dir, store)) {
		if (errno != ENOENT) {
			r = -errno;
			snprintf(err, errlen, "release store %s: %s", store_dir, strerror(errno));
			return r;
		}
		snprintf(store, sizeof(store), "%s", store_dir);
	}
	snprintf(service_dir, sizeof(service_dir), "%s/%s", store, service);
	r = state_release_list(st, service, &items, &n);
	if (r < 0) {
		snprintf(err, errlen, "state database: cannot list the releases of %s: %s", service,
			 state_errmsg(st));
		return r;
	}
	candidates = n > keep_n ? n - keep_n : 0;
	deleted = calloc(candidates ? candidates : 1, sizeof(*deleted));
	if (!deleted) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < candidates; i++) {
		struct state_release *rel = &items[i];
		const char *slash;
		size_t dirlen = strlen(service_dir);

		if (is_in_use(rel->version, in_use, n_in_use))
			continue;
		r = state_release_delete(st, rel->id);
		if (r < 0) {
			snprintf(err, errlen, "state database: cannot delete release %s %s: %s", service,
				 rel->version, state_errmsg(st));
			goto out;
		}
		/* Only a directory this store made (SERVICE_DIR/DIGEST), and only
		 * when no other version of the service shares it. */
		slash = strrchr(rel->path, '/');
		if (r == 0 && slash && (size_t)(slash - rel->path) == dirlen &&
		    !strncmp(rel->path, service_dir, dirlen) && !strcmp(slash + 1, rel->digest)) {
			r = remove_aside(service_dir, rel->digest);
			if (r < 0) {
				snprintf(err, errlen,
					 "release %s %s: removed from the state, but its directory %s could not "
					 "be deleted: %s",
					 service, rel->version, rel->path, strerror(-r));
				goto out;
			}
		}
		deleted[ndeleted++] = *rel;
		rel->path = NULL;
	}
	remove_leftovers(service_dir);
	r = 0;
out:
	state_release_array_free(items, n);
	if (r < 0 || !ret_deleted) {
		state_release_array_free(deleted, ndeleted);
		if (r == 0 && ret_n)
			*ret_n = ndeleted;
		return r;
	}
	*ret_deleted = deleted;
	if (ret_n)
		*ret_n = ndeleted;
	return 0;
}

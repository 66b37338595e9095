/* test_release_store.c - unit tests for the release store (src/release).
 *
 * Names and versions are checked from tables.  The store tests build real
 * files and directories in a temporary directory, add them, and check what
 * landed in STORE/SERVICE/DIGEST (bytes, modes, symlinks), what the state
 * recorded, and that refused sources leave nothing behind.  The digest is
 * checked for what it must ignore (mtimes, creation order, location) and
 * what it must not (bytes, the executable bit, names).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/util.h"
#include "store/store-internal.h"
#include "state/state.h"

struct fixture {
	char root[64];
	char store[128];
	char src[128];
	struct state *st;
};

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag == FTW_DP || flag == FTW_D)
		chmod(path, 0700);
	return remove(path);
}

static void rm_rf(const char *dir)
{
	/* make read-only directories writable on the way down */
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "chmod -R u+w '%s' 2>/dev/null", dir);
	if (system(cmd) < 0)
		return;
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void write_file(const char *path, const char *content, mode_t mode)
{
	FILE *f = fopen(path, "w");

	if (!f)
		fail_msg("cannot write %s: %s", path, strerror(errno));
	fputs(content, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static void fmt(char *out, size_t len, const char *f, ...) __attribute__((format(printf, 3, 4)));
static void fmt(char *out, size_t len, const char *f, ...)
{
	va_list ap;

	va_start(ap, f);
	vsnprintf(out, len, f, ap);
	va_end(ap);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char dir[128], err[512];

	assert_non_null(f);
	snprintf(f->root, sizeof(f->root), "/tmp/cutover-release-XXXXXX");
	assert_non_null(mkdtemp(f->root));
	fmt(f->store, sizeof(f->store), "%s/state/releases", f->root);
	fmt(f->src, sizeof(f->src), "%s/src", f->root);
	assert_int_equal(mkdir(f->src, 0755), 0);
	fmt(dir, sizeof(dir), "%s/state", f->root);
	if (state_open(dir, &f->st, err, sizeof(err)) < 0)
		fail_msg("state_open: %s", err);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	state_close(f->st);
	rm_rf(f->root);
	free(f);
	return 0;
}

static void digest_of(const char *path, char digest[65])
{
	char err[512];
	int r = store_digest(path, digest, NULL, err, sizeof(err));

	if (r < 0)
		fail_msg("store_digest(%s) = %d: %s", path, r, err);
}

static void add_ok(struct fixture *f, const char *service, const char *version, const char *src,
		   struct store_result *res)
{
	char err[512];
	int r = store_add(f->st, f->store, service, version, src, res, err, sizeof(err));

	if (r < 0)
		fail_msg("store_add(%s, %s, %s) = %d: %s", service, version, src, r, err);
}

static mode_t mode_of(const char *path)
{
	struct stat sb;

	if (lstat(path, &sb) < 0)
		fail_msg("lstat %s: %s", path, strerror(errno));
	return sb.st_mode & 07777;
}

/* Number of entries in DIR other than . and .. */
static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* ---- names --------------------------------------------------------------- */

static void test_semver_table(void **state)
{
	static const char *const valid[] = {
		"0.0.0", "1.2.3", "10.20.30", "1.0.0-rc.1+build.5", "1.0.0-alpha", "1.0.0-alpha.1",
		"1.0.0-0.3.7", "1.0.0-x.7.z.92", "1.0.0-x-y-z.--", "1.0.0+20130313144700",
		"1.0.0-beta+exp.sha.5114f85", "1.0.0+21AF26D3----117B344092BD", "1.0.0-alpha0.valid",
		"1.0.0-alpha.0valid", "1.0.0+0123", "2.0.0-rc.1+build.123", "999999999.0.0",
	};
	static const char *const invalid[] = {
		"", "1", "1.2", "1.2.3-", "1.2.3+", "v1.2.3", "01.2.3", "1.02.3", "1.2.03", "1.2.3-01",
		"1.2.3-rc..1", "1.2.3-rc.1.", "1.2.3+build..1", "1.2.3.4", "1.2.3 ", " 1.2.3", "1.2.3-rc_1",
		"1.2.3+build+1", "1.2.3-αβ", "a.b.c", "1..3", "-1.2.3", "1.2.-3", "1.2.3-+x", "1.2.3/x",
		"1.2.3-rc.1+", "1.2",
	};
	char longest[STORE_VERSION_MAX + 2];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(valid); i++)
		if (!store_version_valid(valid[i]))
			fail_msg("%s should be a valid version", valid[i]);
	for (size_t i = 0; i < ARRAY_SIZE(invalid); i++)
		if (store_version_valid(invalid[i]))
			fail_msg("'%s' should be refused", invalid[i]);
	assert_false(store_version_valid(NULL));
	/* bounded length */
	memset(longest, 'a', sizeof(longest));
	memcpy(longest, "1.0.0-", 6);
	longest[STORE_VERSION_MAX] = '\0';
	assert_true(store_version_valid(longest));
	longest[STORE_VERSION_MAX] = 'a';
	longest[STORE_VERSION_MAX + 1] = '\0';
	assert_false(store_version_valid(longest));
}

static void test_service_names(void **state)
{
	static const char *const valid[] = { "shop", "a", "0", "shop-api", "cart_v2", "9lives",
					     "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij123" };
	static const char *const invalid[] = { "", "Shop", "-shop", "_shop", "shop api", "shop/x", "..",
					       "shop.api", "ß",
					       "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij1234" };

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(valid); i++)
		if (!store_service_valid(valid[i]))
			fail_msg("%s should be a valid service name", valid[i]);
	for (size_t i = 0; i < ARRAY_SIZE(invalid); i++)
		if (store_service_valid(invalid[i]))
			fail_msg("'%s' should be refused", invalid[i]);
	assert_false(store_service_valid(NULL));
}

/* ---- adding ------------------------------------------------------------- */

static void test_file_release(void **state)
{
	struct fixture *f = *state;
	struct store_result res = { 0 };
	struct state_release got = { 0 };
	char path[256], stored[512], digest[65];

	fmt(path, sizeof(path), "%s/shop.bin", f->src);
	write_file(path, "#!/bin/sh\necho shop 1.0.0\n", 0755);
	digest_of(path, digest);
	add_ok(f, "shop", "1.0.0", path, &res);
	assert_false(res.existed);
	assert_string_equal(res.release.digest, digest);
	assert_int_equal(res.release.size_bytes, strlen("#!/bin/sh\necho shop 1.0.0\n"));
	fmt(stored, sizeof(stored), "%s/shop/%s", f->store, digest);
	{
		char real[PATH_MAX];

		assert_non_null(realpath(stored, real));
		assert_string_equal(res.release.path, real);
	}
	/* the file keeps its basename, read-only and executable */
	fmt(stored, sizeof(stored), "%s/shop.bin", res.release.path);
	assert_int_equal(mode_of(stored), 0555);
	assert_int_equal(mode_of(res.release.path), 0555);
	assert_int_equal(count_entries(res.release.path), 1);
	/* the stored directory hashes back to the digest */
	digest_of(res.release.path, path);
	assert_string_equal(path, digest);
	/* recorded */
	assert_int_equal(store_get(f->st, "shop", "1.0.0", &got), 0);
	assert_string_equal(got.digest, digest);
	assert_string_equal(got.path, res.release.path);
	state_release_clear(&got);
	/* no temporary left behind */
	fmt(path, sizeof(path), "%s/shop", f->store);
	assert_int_equal(count_entries(path), 1);
	store_result_clear(&res);

	/* a plain file is 0444 */
	fmt(path, sizeof(path), "%s/config.json", f->src);
	write_file(path, "{}\n", 0644);
	add_ok(f, "shop", "1.0.1", path, &res);
	fmt(stored, sizeof(stored), "%s/config.json", res.release.path);
	assert_int_equal(mode_of(stored), 0444);
	store_result_clear(&res);
}

/* Build the same tree under DIR in one of two creation orders. */
static void build_tree(const char *dir, bool reverse)
{
	char p[512];

	assert_int_equal(mkdir(dir, 0755), 0);
	if (!reverse) {
		fmt(p, sizeof(p), "%s/bin", dir);
		assert_int_equal(mkdir(p, 0755), 0);
		fmt(p, sizeof(p), "%s/bin/app", dir);
		write_file(p, "#!/bin/sh\nexec ../lib/run\n", 0755);
		fmt(p, sizeof(p), "%s/lib", dir);
		assert_int_equal(mkdir(p, 0700), 0);
		fmt(p, sizeof(p), "%s/lib/run", dir);
		write_file(p, "run\n", 0700);
		fmt(p, sizeof(p), "%s/lib/data.txt", dir);
		write_file(p, "some data\n", 0600);
		fmt(p, sizeof(p), "%s/empty", dir);
		assert_int_equal(mkdir(p, 0755), 0);
		fmt(p, sizeof(p), "%s/bin/run", dir);
		assert_int_equal(symlink("../lib/run", p), 0);
		fmt(p, sizeof(p), "%s/current", dir);
		assert_int_equal(symlink("lib", p), 0);
	} else {
		fmt(p, sizeof(p), "%s/current", dir);
		assert_int_equal(symlink("lib", p), 0);
		fmt(p, sizeof(p), "%s/empty", dir);
		assert_int_equal(mkdir(p, 0700), 0);
		fmt(p, sizeof(p), "%s/lib", dir);
		assert_int_equal(mkdir(p, 0755), 0);
		fmt(p, sizeof(p), "%s/lib/data.txt", dir);
		write_file(p, "some data\n", 0644); /* other non-x bits: same digest */
		fmt(p, sizeof(p), "%s/lib/run", dir);
		write_file(p, "run\n", 0755);
		fmt(p, sizeof(p), "%s/bin", dir);
		assert_int_equal(mkdir(p, 0755), 0);
		fmt(p, sizeof(p), "%s/bin/run", dir);
		assert_int_equal(symlink("../lib/run", p), 0);
		fmt(p, sizeof(p), "%s/bin/app", dir);
		write_file(p, "#!/bin/sh\nexec ../lib/run\n", 0700);
		/* and other mtimes */
		struct timeval tv[2] = { { 1000000, 0 }, { 1000000, 0 } };
		assert_int_equal(utimes(p, tv), 0);
		fmt(p, sizeof(p), "%s/lib", dir);
		assert_int_equal(utimes(p, tv), 0);
	}
}

static void test_directory_release(void **state)
{
	struct fixture *f = *state;
	struct store_result res = { 0 };
	char dir[256], p[512], link[64], digest[65];
	ssize_t len;
	FILE *fp;

	fmt(dir, sizeof(dir), "%s/app", f->src);
	build_tree(dir, false);
	digest_of(dir, digest);
	add_ok(f, "shop", "2.0.0", dir, &res);
	assert_string_equal(res.release.digest, digest);
	assert_int_equal(res.release.size_bytes, strlen("#!/bin/sh\nexec ../lib/run\n") + 4 + 10);

	assert_int_equal(mode_of(res.release.path), 0555);
	fmt(p, sizeof(p), "%s/bin", res.release.path);
	assert_int_equal(mode_of(p), 0555);
	fmt(p, sizeof(p), "%s/lib", res.release.path);
	assert_int_equal(mode_of(p), 0555);
	fmt(p, sizeof(p), "%s/empty", res.release.path);
	assert_int_equal(mode_of(p), 0555);
	fmt(p, sizeof(p), "%s/bin/app", res.release.path);
	assert_int_equal(mode_of(p), 0555);
	fmt(p, sizeof(p), "%s/lib/data.txt", res.release.path);
	assert_int_equal(mode_of(p), 0444);
	fp = fopen(p, "r");
	assert_non_null(fp);
	assert_non_null(fgets(link, sizeof(link), fp));
	fclose(fp);
	assert_string_equal(link, "some data\n");
	/* symlinks stay symlinks, with the same target */
	fmt(p, sizeof(p), "%s/bin/run", res.release.path);
	len = readlink(p, link, sizeof(link) - 1);
	assert_true(len > 0);
	link[len] = '\0';
	assert_string_equal(link, "../lib/run");
	fmt(p, sizeof(p), "%s/current/run", res.release.path);
	assert_int_equal(access(p, R_OK), 0);

	/* re-hashing the store gives the digest back */
	digest_of(res.release.path, p);
	assert_string_equal(p, digest);
	store_result_clear(&res);
}

static void test_digest_stability(void **state)
{
	struct fixture *f = *state;
	char a[256], b[256], p[512], da[65], db[65], dc[65];

	fmt(a, sizeof(a), "%s/a", f->src);
	fmt(b, sizeof(b), "%s/elsewhere", f->src);
	build_tree(a, false);
	assert_int_equal(mkdir(b, 0755), 0);
	fmt(b, sizeof(b), "%s/elsewhere/b", f->src);
	build_tree(b, true);
	digest_of(a, da);
	digest_of(b, db);
	assert_string_equal(da, db); /* order, mtimes, location and non-x bits do not count */
	digest_of(a, dc);
	assert_string_equal(da, dc); /* and it is deterministic */

	/* bytes count */
	fmt(p, sizeof(p), "%s/lib/data.txt", b);
	write_file(p, "some datA\n", 0644);
	digest_of(b, db);
	assert_string_not_equal(da, db);
	write_file(p, "some data\n", 0644);
	digest_of(b, db);
	assert_string_equal(da, db);
	/* the executable bit counts */
	assert_int_equal(chmod(p, 0755), 0);
	digest_of(b, db);
	assert_string_not_equal(da, db);
	assert_int_equal(chmod(p, 0644), 0);
	/* names count */
	fmt(a, sizeof(a), "%s/lib/data.txt", b);
	fmt(p, sizeof(p), "%s/lib/data.text", b);
	assert_int_equal(rename(a, p), 0);
	digest_of(b, db);
	assert_string_not_equal(da, db);
	assert_int_equal(rename(p, a), 0);
	/* symlink targets count */
	fmt(p, sizeof(p), "%s/current", b);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(symlink("bin", p), 0);
	digest_of(b, db);
	assert_string_not_equal(da, db);
	/* an empty directory counts */
	assert_int_equal(unlink(p), 0);
	assert_int_equal(symlink("lib", p), 0);
	fmt(p, sizeof(p), "%s/empty", b);
	assert_int_equal(rmdir(p), 0);
	digest_of(b, db);
	assert_string_not_equal(da, db);

	/* a file: same name and bytes in another directory -> same digest */
	fmt(a, sizeof(a), "%s/x.bin", f->src);
	fmt(b, sizeof(b), "%s/elsewhere/x.bin", f->src);
	write_file(a, "payload", 0644);
	write_file(b, "payload", 0600);
	digest_of(a, da);
	digest_of(b, db);
	assert_string_equal(da, db);
	write_file(b, "payloaD", 0644);
	digest_of(b, db);
	assert_string_not_equal(da, db);
	/* the known answer, computed independently (Python hashlib) over
	 * "cutover-release-v1\n" "f 644 7 x.bin\0" "payload": the format never drifts */
	assert_string_equal(da, "b0f6cf9d771fb901d64cbe92f811a42c6be45826dcf8cc75995a8e66ed64775b");
}

static void test_readd_idempotent_and_conflict(void **state)
{
	struct fixture *f = *state;
	struct store_result res = { 0 }, again = { 0 };
	struct state_release *items = NULL;
	char path[256], copy[256], err[512];
	size_t n = 0;

	fmt(path, sizeof(path), "%s/app.bin", f->src);
	write_file(path, "v1", 0644);
	add_ok(f, "shop", "1.0.0", path, &res);
	/* same content from another copy: idempotent */
	assert_int_equal(mkdir(strcat(strcpy(copy, f->src), "/copy"), 0755), 0);
	strcat(copy, "/app.bin");
	write_file(copy, "v1", 0600);
	add_ok(f, "shop", "1.0.0", copy, &again);
	assert_true(again.existed);
	assert_string_equal(again.release.digest, res.release.digest);
	assert_string_equal(again.release.path, res.release.path);
	assert_int_equal(again.release.id, res.release.id);
	store_result_clear(&again);

	/* other content for the same version: refused, nothing changes */
	write_file(copy, "v2", 0644);
	assert_int_equal(store_add(f->st, f->store, "shop", "1.0.0", copy, &again, err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, "version already exists with a different digest (immutable)"));
	assert_non_null(strstr(err, res.release.digest));
	assert_int_equal(store_list(f->st, "shop", &items, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(items[0].digest, res.release.digest);
	state_release_array_free(items, n);
	fmt(path, sizeof(path), "%s/shop", f->store);
	assert_int_equal(count_entries(path), 1);

	/* the same content under a new version shares the directory */
	write_file(copy, "v1", 0644);
	add_ok(f, "shop", "1.0.1", copy, &again);
	assert_false(again.existed);
	assert_string_equal(again.release.path, res.release.path);
	assert_int_equal(count_entries(path), 1);
	store_result_clear(&again);
	store_result_clear(&res);
}

static void test_invalid_arguments(void **state)
{
	struct fixture *f = *state;
	struct store_result res = { 0 };
	char path[256], err[512];

	fmt(path, sizeof(path), "%s/app.bin", f->src);
	write_file(path, "x", 0644);
	assert_int_equal(store_add(f->st, f->store, "Shop", "1.0.0", path, &res, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "SERVICE 'Shop'"));
	assert_int_equal(store_add(f->st, f->store, "shop", "v1.0.0", path, &res, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "VERSION 'v1.0.0'"));
	assert_non_null(strstr(err, "semantic version"));
	fmt(path, sizeof(path), "%s/missing", f->src);
	assert_int_equal(store_add(f->st, f->store, "shop", "1.0.0", path, &res, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, path));
	assert_int_equal(store_add(f->st, f->store, "shop", "1.0.0", "/dev/null", &res, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "not a regular file or a directory"));
	/* nothing was created for refused arguments */
	assert_int_equal(access(f->store, F_OK), -1);
}

/* Add SRC (a directory) and expect a refusal whose message holds WANT;
 * nothing may be left in the store. */
static void expect_refused(struct fixture *f, const char *src, const char *want)
{
	struct store_result res = { 0 };
	char err[512], dir[256];
	int r = store_add(f->st, f->store, "shop", "3.0.0", src, &res, err, sizeof(err));

	if (r != -EINVAL)
		fail_msg("expected -EINVAL for %s, got %d: %s", src, r, err);
	if (!strstr(err, want))
		fail_msg("message '%s' should contain '%s'", err, want);
	fmt(dir, sizeof(dir), "%s/shop", f->store);
	assert_true(count_entries(dir) <= 0);
}

static void test_symlinks_escaping_refused(void **state)
{
	struct fixture *f = *state;
	struct store_result res = { 0 };
	char dir[256], p[512];

	fmt(dir, sizeof(dir), "%s/esc", f->src);
	assert_int_equal(mkdir(dir, 0755), 0);
	fmt(p, sizeof(p), "%s/sub", dir);
	assert_int_equal(mkdir(p, 0755), 0);
	fmt(p, sizeof(p), "%s/sub/ok", dir);
	write_file(p, "x", 0644);

	fmt(p, sizeof(p), "%s/sub/up", dir);
	assert_int_equal(symlink("../../outside", p), 0);
	expect_refused(f, dir, "esc/sub/up: symlink to '../../outside' points outside the release");
	assert_int_equal(unlink(p), 0);

	fmt(p, sizeof(p), "%s/passwd", dir);
	assert_int_equal(symlink("/etc/passwd", p), 0);
	expect_refused(f, dir, "symlink to an absolute path ('/etc/passwd')");
	assert_int_equal(unlink(p), 0);

	/* lexically inside, but ".." after a symlink climbs from its target:
	 * a/s -> ../sub (depth 1), a/t -> s/../../x: the kernel resolves
	 * a/s/.. to the root, then ".." above it. */
	fmt(p, sizeof(p), "%s/a", dir);
	assert_int_equal(mkdir(p, 0755), 0);
	fmt(p, sizeof(p), "%s/a/s", dir);
	assert_int_equal(symlink("../sub", p), 0);
	fmt(p, sizeof(p), "%s/a/t", dir);
	assert_int_equal(symlink("s/../../x", p), 0);
	expect_refused(f, dir, "climbs out of another symlink");
	assert_int_equal(unlink(p), 0);

	/* what stays inside is kept: up one level, through a symlink downwards,
	 * to the root itself */
	fmt(p, sizeof(p), "%s/a/t", dir);
	assert_int_equal(symlink("s/ok", p), 0);
	fmt(p, sizeof(p), "%s/a/root", dir);
	assert_int_equal(symlink("..", p), 0);
	fmt(p, sizeof(p), "%s/sub/dot", dir);
	assert_int_equal(symlink("./ok", p), 0);
	add_ok(f, "shop", "3.0.0", dir, &res);
	fmt(p, sizeof(p), "%s/a/t", res.release.path);
	assert_int_equal(access(p, R_OK), 0);
	store_result_clear(&res);
}

static void test_special_files_refused(void **state)
{
	struct fixture *f = *state;
	char dir[256], p[512];

	fmt(dir, sizeof(dir), "%s/fifo", f->src);
	assert_int_equal(mkdir(dir, 0755), 0);
	fmt(p, sizeof(p), "%s/pipe", dir);
	assert_int_equal(mkfifo(p, 0644), 0);
	expect_refused(f, dir, "fifo/pipe: is a FIFO; a release may hold only files, directories and symlinks");
}

/* ---- prune and verify ---------------------------------------------------- */

static void add_version(struct fixture *f, const char *version, struct store_result *res)
{
	char path[256];

	fmt(path, sizeof(path), "%s/v-%s", f->src, version);
	mkdir(path, 0755);
	strcat(path, "/app");
	write_file(path, version, 0755);
	add_ok(f, "shop", version, path, res);
}

static void test_prune(void **state)
{
	struct fixture *f = *state;
	static const char *const versions[] = { "1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0" };
	struct store_result res[5] = { 0 };
	struct state_release *items = NULL, *deleted = NULL;
	const char *in_use[] = { "1.0.0", "9.9.9" };
	char err[512], dir[256], leftover[512];
	size_t n = 0, ndeleted = 0;

	for (size_t i = 0; i < 5; i++)
		add_version(f, versions[i], &res[i]);
	/* a leftover of an interrupted deletion */
	fmt(dir, sizeof(dir), "%s/shop", f->store);
	fmt(leftover, sizeof(leftover), "%s/.del-deadbeef", dir);
	assert_int_equal(mkdir(leftover, 0555), 0);

	/* keep the 2 newest and 1.0.0 (in use): 1.1.0 and 1.2.0 go */
	assert_int_equal(store_prune(f->st, f->store, "shop", 2, in_use, 2, &deleted, &ndeleted, err, sizeof(err)),
			 0);
	assert_int_equal(ndeleted, 2);
	assert_string_equal(deleted[0].version, "1.1.0");
	assert_string_equal(deleted[1].version, "1.2.0");
	state_release_array_free(deleted, ndeleted);
	assert_int_equal(store_list(f->st, "shop", &items, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(items[0].version, "1.0.0");
	assert_string_equal(items[1].version, "1.3.0");
	assert_string_equal(items[2].version, "1.4.0");
	state_release_array_free(items, n);
	assert_int_equal(access(res[1].release.path, F_OK), -1);
	assert_int_equal(access(res[2].release.path, F_OK), -1);
	assert_int_equal(access(res[0].release.path, F_OK), 0);
	assert_int_equal(access(res[4].release.path, F_OK), 0);
	assert_int_equal(access(leftover, F_OK), -1);
	assert_int_equal(count_entries(dir), 3);

	/* nothing beyond N: nothing to do */
	assert_int_equal(store_prune(f->st, f->store, "shop", 3, NULL, 0, &deleted, &ndeleted, err, sizeof(err)), 0);
	assert_int_equal(ndeleted, 0);
	state_release_array_free(deleted, ndeleted);
	/* keep 1, nothing in use: 1.0.0 and 1.3.0 go */
	assert_int_equal(store_prune(f->st, f->store, "shop", 1, NULL, 0, NULL, &ndeleted, err, sizeof(err)), 0);
	assert_int_equal(ndeleted, 2);
	assert_int_equal(count_entries(dir), 1);
	assert_int_equal(store_verify(f->st, "shop", "1.4.0", err, sizeof(err)), 0);
	for (size_t i = 0; i < 5; i++)
		store_result_clear(&res[i]);
	assert_int_equal(store_prune(f->st, f->store, "Bad", 1, NULL, 0, NULL, NULL, err, sizeof(err)), -EINVAL);
}

static void test_prune_shared_digest(void **state)
{
	struct fixture *f = *state;
	struct store_result a = { 0 }, b = { 0 };
	char path[256], err[512];
	size_t ndeleted = 0;

	fmt(path, sizeof(path), "%s/same.bin", f->src);
	write_file(path, "same", 0644);
	add_ok(f, "shop", "1.0.0", path, &a);
	add_ok(f, "shop", "1.0.1", path, &b);
	assert_string_equal(a.release.path, b.release.path);
	assert_int_equal(store_prune(f->st, f->store, "shop", 1, NULL, 0, NULL, &ndeleted, err, sizeof(err)), 0);
	assert_int_equal(ndeleted, 1);
	/* 1.0.1 still needs the directory */
	assert_int_equal(access(b.release.path, F_OK), 0);
	assert_int_equal(store_verify(f->st, "shop", "1.0.1", err, sizeof(err)), 0);
	store_result_clear(&a);
	store_result_clear(&b);
}

static void test_verify_detects_tampering(void **state)
{
	struct fixture *f = *state;
	struct store_result res = { 0 };
	char dir[256], p[512], err[512];

	fmt(dir, sizeof(dir), "%s/app", f->src);
	build_tree(dir, false);
	add_ok(f, "shop", "1.0.0", dir, &res);
	assert_int_equal(store_verify(f->st, "shop", "1.0.0", err, sizeof(err)), 0);

	/* chmod u+w, modify: detected */
	fmt(p, sizeof(p), "%s/lib/data.txt", res.release.path);
	assert_int_equal(chmod(p, 0644), 0);
	write_file(p, "tampered\n", 0444);
	assert_int_equal(store_verify(f->st, "shop", "1.0.0", err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "was modified"));
	assert_non_null(strstr(err, res.release.digest));
	write_file(p, "some data\n", 0444);
	assert_int_equal(store_verify(f->st, "shop", "1.0.0", err, sizeof(err)), 0);

	/* a new file: detected */
	fmt(p, sizeof(p), "%s/lib", res.release.path);
	assert_int_equal(chmod(p, 0755), 0);
	fmt(p, sizeof(p), "%s/lib/extra", res.release.path);
	write_file(p, "", 0444);
	assert_int_equal(store_verify(f->st, "shop", "1.0.0", err, sizeof(err)), -EBADMSG);
	assert_int_equal(unlink(p), 0);
	/* an executable bit: detected */
	fmt(p, sizeof(p), "%s/lib/data.txt", res.release.path);
	assert_int_equal(chmod(p, 0555), 0);
	assert_int_equal(store_verify(f->st, "shop", "1.0.0", err, sizeof(err)), -EBADMSG);
	assert_int_equal(chmod(p, 0444), 0);
	/* a symlink redirected outside: detected */
	fmt(p, sizeof(p), "%s/current", res.release.path);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(symlink("/etc", p), 0);
	assert_int_equal(store_verify(f->st, "shop", "1.0.0", err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "outside"));

	assert_int_equal(store_verify(f->st, "shop", "7.0.0", err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "no such release"));
	store_result_clear(&res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_semver_table),
		cmocka_unit_test(test_service_names),
		cmocka_unit_test_setup_teardown(test_file_release, setup, teardown),
		cmocka_unit_test_setup_teardown(test_directory_release, setup, teardown),
		cmocka_unit_test_setup_teardown(test_digest_stability, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readd_idempotent_and_conflict, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_arguments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlinks_escaping_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_special_files_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prune, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prune_shared_digest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_detects_tampering, setup, teardown),
	};

	return cmocka_run_group_tests_name("release_store", tests, NULL, NULL);
}

/* tree.c - walking, hashing, copying and removing release trees.
 *
 * A tree is read in two passes: collect every entry (lstat, never following
 * symlinks below the root) and validate them all, so that nothing is
 * copied from a source that will be refused; then visit the entries in
 * canonical order, feeding the serialization documented in release.h to
 * SHA-256 and, when copying, writing each entry to the destination from the
 * very bytes that were hashed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>
#include "store/store-internal.h"

#define COPY_CHUNK 65536
#define FORMAT_HEADER "cutover-release-v1\n"

struct entry {
	char *rel;                    /* relative path, '/'-separated */
	char type;                    /* 'f', 'd', 'l' */
	bool exec;
	uint64_t size;                /* file bytes, or target length */
	char *target;                 /* symlink target */
};

struct tree {
	struct entry *items;
	size_t n, cap;
	const char *root_name;        /* for messages: the path the user gave */
	char *err;
	size_t errlen;
};

static void tree_release(struct tree *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->items[i].rel);
		free(t->items[i].target);
	}
	free(t->items);
	t->items = NULL;
	t->n = t->cap = 0;
}

static int tree_error(struct tree *t, int r, const char *rel, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int tree_error(struct tree *t, int r, const char *rel, const char *fmt, ...)
{
	va_list ap;
	char what[512];

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (rel && *rel)
		snprintf(t->err, t->errlen, "%s/%s: %s", t->root_name, rel, what);
	else
		snprintf(t->err, t->errlen, "%s: %s", t->root_name, what);
	return r;
}

static struct entry *tree_push(struct tree *t)
{
	if (t->n == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 64;
		struct entry *grown = reallocarray(t->items, ncap, sizeof(*grown));

		if (!grown)
			return NULL;
		t->items = grown;
		t->cap = ncap;
	}
	memset(&t->items[t->n], 0, sizeof(t->items[0]));
	return &t->items[t->n++];
}

static char *join(const char *prefix, const char *name)
{
	size_t a = strlen(prefix), b = strlen(name);
	char *s = malloc(a + b + 2);

	if (!s)
		return NULL;
	if (a) {
		memcpy(s, prefix, a);
		s[a++] = '/';
	}
	memcpy(s + a, name, b + 1);
	return s;
}

/* Read the symlink NAME in DIRFD into a new string. */
static int read_link(int dirfd, const char *name, size_t size_hint, char **ret)
{
	size_t cap = size_hint + 1 > 64 ? size_hint + 1 : 64;

	for (;;) {
		char *buf = malloc(cap);
		ssize_t len;

		if (!buf)
			return -ENOMEM;
		len = readlinkat(dirfd, name, buf, cap);
		if (len < 0) {
			int r = -errno;

			free(buf);
			return r;
		}
		if ((size_t)len < cap) {
			buf[len] = '\0';
			*ret = buf;
			return 0;
		}
		free(buf);
		if (cap >= 65536)
			return -ENAMETOOLONG;
		cap *= 2;
	}
}

/* Add the entries of directory DIRFD (relative path PREFIX) to T. */
static int collect_dir(struct tree *t, int dirfd, const char *prefix, int depth)
{
	DIR *dir = NULL;
	struct dirent *de;
	int r = 0, fd;

	if (depth > STORE_MAX_DEPTH)
		return tree_error(t, -EINVAL, prefix, "nested deeper than %d directories", STORE_MAX_DEPTH);
	fd = dup(dirfd);
	if (fd < 0 || !(dir = fdopendir(fd))) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		return tree_error(t, r, prefix, "cannot list: %s", strerror(-r));
	}
	rewinddir(dir);
	while ((errno = 0, de = readdir(dir))) {
		struct stat sb;
		struct entry *e;
		char *rel;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		rel = join(prefix, de->d_name);
		if (!rel) {
			r = -ENOMEM;
			break;
		}
		if (t->n >= STORE_MAX_ENTRIES) {
			free(rel);
			r = tree_error(t, -EINVAL, NULL, "more than %d entries", STORE_MAX_ENTRIES);
			break;
		}
		if (fstatat(dirfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
			r = tree_error(t, -errno, rel, "cannot stat: %s", strerror(errno));
			free(rel);
			break;
		}
		if (!S_ISREG(sb.st_mode) && !S_ISDIR(sb.st_mode) && !S_ISLNK(sb.st_mode)) {
			const char *kind = S_ISCHR(sb.st_mode) || S_ISBLK(sb.st_mode) ? "a device"
					   : S_ISFIFO(sb.st_mode)                     ? "a FIFO"
					   : S_ISSOCK(sb.st_mode)                     ? "a socket"
										      : "a special file";

			r = tree_error(t, -EINVAL, rel,
				       "is %s; a release may hold only files, directories and symlinks", kind);
			free(rel);
			break;
		}
		e = tree_push(t);
		if (!e) {
			free(rel);
			r = -ENOMEM;
			break;
		}
		e->rel = rel;
		if (S_ISREG(sb.st_mode)) {
			e->type = 'f';
			e->exec = sb.st_mode & S_IXUSR;
			e->size = (uint64_t)sb.st_size;
		} else if (S_ISLNK(sb.st_mode)) {
			e->type = 'l';
			r = read_link(dirfd, de->d_name, (size_t)sb.st_size, &e->target);
			if (r < 0) {
				r = tree_error(t, r, rel, "cannot read the symlink: %s", strerror(-r));
				break;
			}
			e->size = strlen(e->target);
		} else {
			int sub;

			e->type = 'd';
			sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0) {
				r = tree_error(t, -errno, rel, "cannot open: %s", strerror(errno));
				break;
			}
			/* e moves when the array grows; rel (owned by it) does not. */
			r = collect_dir(t, sub, rel, depth + 1);
			close(sub);
			if (r < 0)
				break;
		}
	}
	if (r == 0 && errno)
		r = tree_error(t, -errno, prefix, "cannot list: %s", strerror(errno));
	closedir(dir);
	return r;
}

/* Is the symlink at REL (target TARGET) inside the tree rooted at ROOTFD?
 * Resolves TARGET lexically from the link's directory; a ".." may not climb
 * above the root, nor follow a component that is a symlink in the tree
 * (the kernel would then climb from wherever that symlink leads). */
static int check_link(struct tree *t, int rootfd, const struct entry *e)
{
	char path[4096];
	size_t offsets[2048];
	size_t depth = 0, len = 0;
	const char *p, *slash;

	if (!*e->target)
		return tree_error(t, -EINVAL, e->rel, "symlink with an empty target");
	if (e->target[0] == '/')
		return tree_error(t, -EINVAL, e->rel,
				  "symlink to an absolute path ('%s') points outside the release", e->target);
	/* Start from the link's directory: the components of rel but the last. */
	slash = strrchr(e->rel, '/');
	if (slash) {
		len = (size_t)(slash - e->rel);
		if (len >= sizeof(path))
			return tree_error(t, -ENAMETOOLONG, e->rel, "path too long");
		memcpy(path, e->rel, len);
		path[len] = '\0';
		for (size_t i = 0; i <= len; i++)
			if (i == len || path[i] == '/')
				offsets[depth++] = i;
	}
	path[len] = '\0';
	for (p = e->target; *p;) {
		size_t clen = strcspn(p, "/");

		if (clen == 0 || (clen == 1 && p[0] == '.')) {
			/* "" or ".": stay */
		} else if (clen == 2 && p[0] == '.' && p[1] == '.') {
			struct stat sb;

			if (depth == 0)
				return tree_error(t, -EINVAL, e->rel,
						  "symlink to '%s' points outside the release", e->target);
			if (fstatat(rootfd, path, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(sb.st_mode))
				return tree_error(t, -EINVAL, e->rel,
						  "symlink to '%s' climbs out of another symlink with '..' "
						  "(it could point outside the release)", e->target);
			depth--;
			len = depth ? offsets[depth - 1] : 0;
			path[len] = '\0';
		} else {
			if (depth >= sizeof(offsets) / sizeof(offsets[0]) || len + 1 + clen >= sizeof(path))
				return tree_error(t, -ENAMETOOLONG, e->rel, "symlink target '%s' too long",
						  e->target);
			if (len)
				path[len++] = '/';
			memcpy(path + len, p, clen);
			len += clen;
			path[len] = '\0';
			offsets[depth++] = len;
		}
		p += clen;
		if (*p == '/')
			p++;
	}
	return 0;
}

static int compare_entries(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->rel, ((const struct entry *)b)->rel);
}

static void hash_record(crypto_hash_sha256_state *h, const struct entry *e)
{
	char head[64];
	int n = snprintf(head, sizeof(head), "%c %s %llu ", e->type,
			 e->type == 'l' ? "777" : e->type == 'd' || e->exec ? "755" : "644",
			 (unsigned long long)e->size);

	crypto_hash_sha256_update(h, (const unsigned char *)head, (unsigned long long)n);
	crypto_hash_sha256_update(h, (const unsigned char *)e->rel, strlen(e->rel) + 1);
}

static int write_all(int fd, const unsigned char *p, size_t len)
{
	while (len) {
		ssize_t w = write(fd, p, len);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Hash (and copy to DESTFD when >= 0) the file E.  FOLLOW: the root of a
 * file release may be a symlink the user named. */
static int visit_file(struct tree *t, int rootfd, const struct entry *e, int destfd, bool follow,
		      crypto_hash_sha256_state *h, unsigned char *buf)
{
	struct stat sb;
	uint64_t left = e->size;
	int in, out = -1, r = 0;

	in = openat(rootfd, e->rel, O_RDONLY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW));
	if (in < 0)
		return tree_error(t, -errno, e->rel, "cannot open: %s", strerror(errno));
	if (fstat(in, &sb) < 0 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size != e->size) {
		r = tree_error(t, -EAGAIN, e->rel, "changed while being read");
		goto out;
	}
	if (destfd >= 0) {
		out = openat(destfd, e->rel, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (out < 0) {
			r = -errno;
			snprintf(t->err, t->errlen, "cannot create %s in the store: %s", e->rel, strerror(errno));
			goto out;
		}
	}
	while (left) {
		ssize_t got = read(in, buf, left < COPY_CHUNK ? left : COPY_CHUNK);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = tree_error(t, -errno, e->rel, "cannot read: %s", strerror(errno));
			goto out;
		}
		if (got == 0) {
			r = tree_error(t, -EAGAIN, e->rel, "changed while being read (shorter)");
			goto out;
		}
		crypto_hash_sha256_update(h, buf, (unsigned long long)got);
		if (out >= 0 && (r = write_all(out, buf, (size_t)got)) < 0) {
			snprintf(t->err, t->errlen, "cannot write %s in the store: %s", e->rel, strerror(-r));
			goto out;
		}
		left -= (uint64_t)got;
	}
	if (read(in, buf, 1) != 0) {
		r = tree_error(t, -EAGAIN, e->rel, "changed while being read (longer)");
		goto out;
	}
	if (out >= 0 && (fchmod(out, e->exec ? 0555 : 0444) < 0 || fsync(out) < 0)) {
		r = -errno;
		snprintf(t->err, t->errlen, "cannot finish %s in the store: %s", e->rel, strerror(errno));
	}
out:
	if (out >= 0)
		close(out);
	close(in);
	return r;
}

/* Make every directory of the copy read-only and durable, deepest first
 * (reverse canonical order puts children before their parent). */
static int seal_dirs(struct tree *t, int destfd)
{
	for (size_t i = t->n; i-- > 0;) {
		const struct entry *e = &t->items[i];
		int fd;

		if (e->type != 'd')
			continue;
		fd = openat(destfd, e->rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || fchmod(fd, 0555) < 0 || fsync(fd) < 0) {
			int r = -errno;

			if (fd >= 0)
				close(fd);
			snprintf(t->err, t->errlen, "cannot seal %s in the store: %s", e->rel, strerror(-r));
			return r;
		}
		close(fd);
	}
	if (fchmod(destfd, 0555) < 0 || fsync(destfd) < 0) {
		int r = -errno;

		snprintf(t->err, t->errlen, "cannot seal the release directory: %s", strerror(-r));
		return r;
	}
	return 0;
}

static void hex_digest(const unsigned char *bin, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < crypto_hash_sha256_BYTES; i++) {
		out[2 * i] = digits[bin[i] >> 4];
		out[2 * i + 1] = digits[bin[i] & 15];
	}
	out[2 * crypto_hash_sha256_BYTES] = '\0';
}

int store_tree_hash(const char *path, bool dir_only, int destfd, char digest[STORE_DIGEST_HEX + 1],
		      uint64_t *ret_size, char *err, size_t errlen)
{
	struct tree t = { .root_name = path, .err = err, .errlen = errlen };
	unsigned char *buf = NULL, bin[crypto_hash_sha256_BYTES];
	crypto_hash_sha256_state h;
	struct stat sb;
	uint64_t size = 0;
	bool file_root = false;
	char *parent = NULL;
	int rootfd = -1, r;

	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium failed to initialize");
		return -EIO;
	}
	if (stat(path, &sb) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return r;
	}
	if (S_ISREG(sb.st_mode) && !dir_only) {
		/* A file release: the directory holding it, with one entry. */
		char *slash, *base;
		struct entry *e;

		parent = strdup(path);
		if (!parent)
			return -ENOMEM;
		slash = strrchr(parent, '/');
		base = slash ? slash + 1 : parent;
		if (slash)
			*slash = '\0';
		rootfd = open(slash == parent ? "/" : slash ? parent : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (rootfd < 0) {
			r = -errno;
			snprintf(err, errlen, "%s: cannot open its directory: %s", path, strerror(errno));
			goto out;
		}
		e = tree_push(&t);
		if (!e || !(e->rel = strdup(base))) {
			r = -ENOMEM;
			goto out;
		}
		e->type = 'f';
		e->exec = sb.st_mode & S_IXUSR;
		e->size = (uint64_t)sb.st_size;
		/* Messages name ROOT/REL: ROOT is the file's directory. */
		t.root_name = slash ? parent : ".";
		file_root = true;
	} else if (S_ISDIR(sb.st_mode)) {
		rootfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (rootfd < 0) {
			r = -errno;
			snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
			goto out;
		}
		r = collect_dir(&t, rootfd, "", 0);
		if (r < 0)
			goto out;
		qsort(t.items, t.n, sizeof(t.items[0]), compare_entries);
		for (size_t i = 0; i < t.n; i++)
			if (t.items[i].type == 'l' && (r = check_link(&t, rootfd, &t.items[i])) < 0)
				goto out;
	} else {
		snprintf(err, errlen, "%s: not %s", path, dir_only ? "a directory" : "a regular file or a directory");
		r = -EINVAL;
		goto out;
	}

	buf = malloc(COPY_CHUNK);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	crypto_hash_sha256_init(&h);
	crypto_hash_sha256_update(&h, (const unsigned char *)FORMAT_HEADER, strlen(FORMAT_HEADER));
	for (size_t i = 0; i < t.n; i++) {
		const struct entry *e = &t.items[i];

		hash_record(&h, e);
		if (e->type == 'f') {
			r = visit_file(&t, rootfd, e, destfd, file_root, &h, buf);
			if (r < 0)
				goto out;
			size += e->size;
		} else if (e->type == 'l') {
			crypto_hash_sha256_update(&h, (const unsigned char *)e->target, e->size);
			if (destfd >= 0 && symlinkat(e->target, destfd, e->rel) < 0) {
				r = -errno;
				snprintf(err, errlen, "cannot create the symlink %s in the store: %s", e->rel,
					 strerror(errno));
				goto out;
			}
		} else if (destfd >= 0 && mkdirat(destfd, e->rel, 0700) < 0) {
			r = -errno;
			snprintf(err, errlen, "cannot create %s in the store: %s", e->rel, strerror(errno));
			goto out;
		}
	}
	if (destfd >= 0) {
		r = seal_dirs(&t, destfd);
		if (r < 0)
			goto out;
	}
	crypto_hash_sha256_final(&h, bin);
	hex_digest(bin, digest);
	if (ret_size)
		*ret_size = size;
	r = 0;
out:
	free(buf);
	if (rootfd >= 0)
		close(rootfd);
	tree_release(&t);
	free(parent);
	return r;
}

int store_tree_remove(int parentfd, const char *name)
{
	struct stat sb;
	DIR *dir;
	struct dirent *de;
	int fd, r = 0;

	if (fstatat(parentfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(sb.st_mode))
		return unlinkat(parentfd, name, 0) < 0 ? -errno : 0;
	/* Read-only directories: entries can be removed only once the
	 * directory is writable again (the files' own modes do not matter). */
	if (fchmodat(parentfd, name, 0700, 0) < 0)
		return -errno;
	fd = openat(parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	dir = fdopendir(fd);
	if (!dir) {
		r = -errno;
		close(fd);
		return r;
	}
	/* Entries removed while the directory is being read may make readdir
	 * skip others on some file systems: read again until it is empty. */
	for (int pass = 0; r == 0; pass++) {
		size_t removed = 0;

		rewinddir(dir);
		while ((errno = 0, de = readdir(dir))) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			r = store_tree_remove(dirfd(dir), de->d_name);
			if (r < 0)
				break;
			removed++;
		}
		if (r == 0 && errno)
			r = -errno;
		if (r < 0 || removed == 0)
			break;
		if (pass > 16) {
			r = -ENOTEMPTY;
			break;
		}
	}
	closedir(dir);
	if (r == 0 && unlinkat(parentfd, name, AT_REMOVEDIR) < 0)
		r = -errno;
	return r;
}

/* backup.c - `cutover state backup` and `cutover state restore`: the state
 * database copied out while the daemon runs, and put back while it does
 * not (docs/internals/state.md, "Backup and restore").
 *
 * A backup is SQLite's online backup API in one step: it reads every page
 * in one read transaction of the WAL, a consistent snapshot, while the
 * daemon's writes go on.  The copy is written to a temporary file beside
 * the destination, switched to a rollback journal (one self-contained
 * file), checked, fsynced and only then renamed into place.
 *
 * A restore copies the file beside state.db the same way, inspects the copy
 * (a SQLite database, cutover's tables, a schema this build knows, no
 * fault), migrates it, records who restored it, and renames it over
 * state.db; the previous database stays as state.db.before-restore-STAMP.
 * It holds STATE_DIR/state.lock exclusive throughout, which no process that
 * has the state open lets it take (state_open() holds it shared).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "base/util.h"
#include "state/state-internal.h"

static const char sqlite_magic[16] = "SQLite format 3";

/* fsync a file or directory by path.  Returns 0 or -errno. */
static int sync_path(const char *path, bool dir)
{
	int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDWR) | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

/* The directory part of PATH into out. */
static void dir_of(const char *path, char *out, size_t outlen)
{
	char copy[4096];

	snprintf(copy, sizeof(copy), "%s", path);
	snprintf(out, outlen, "%s", dirname(copy));
}

/* Remove a temporary database and whatever SQLite left beside it. */
static void remove_temp(const char *tmp)
{
	static const char *const suffixes[] = { "", "-journal", "-wal", "-shm" };
	char path[4200];

	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", tmp, suffixes[i]);
		unlink(path);
	}
}

/* A new empty file TEMPLATE (ending in XXXXXX, replaced), mode 0600.
 * Returns 0 or -errno. */
static int make_temp(char *template)
{
	int fd = mkstemp(template);

	if (fd < 0)
		return -errno;
	fchmod(fd, 0600);
	close(fd);
	return 0;
}

/* Does FILE start like a SQLite database?  1 yes, 0 no, -errno when it
 * cannot be read. */
static int has_sqlite_magic(const char *file)
{
	char head[16];
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, head, sizeof(head));
	close(fd);
	if (n < 0)
		return -errno;
	return n == (ssize_t)sizeof(head) && !memcmp(head, sqlite_magic, sizeof(head));
}

/* The schema version and the rows of each table it has (the size is the
 * caller's to fill). */
static int describe(struct state *st, struct state_file_info *ret)
{
	struct state_file_info info = { 0 };
	char sql[160];
	int64_t v = 0, n;
	int r;

	r = state_query_int64(st, "PRAGMA user_version", &v);
	if (r < 0)
		return r;
	info.schema_version = (int)v;
	for (const struct state_table *t = state_tables; t->name && info.ntables < STATE_TABLES_MAX; t++) {
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = '%s'",
			 t->name);
		r = state_query_int64(st, sql, &n);
		if (r == 0 && n) {
			snprintf(sql, sizeof(sql), "SELECT count(*) FROM \"%s\"", t->name);
			r = state_query_int64(st, sql, &n);
		} else if (r == 0) {
			n = -1;
		}
		if (r < 0)
			return r;
		info.tables[info.ntables].name = t->name;
		info.tables[info.ntables++].rows = n;
	}
	if (ret)
		*ret = info;
	return 0;
}

/* The first row of a PRAGMA check that is not "ok" (or an empty string
 * when all is well) into out.  Returns 0, or -errno when it cannot run. */
static int first_fault(struct state *st, const char *sql, char *out, size_t outlen)
{
	sqlite3_stmt *stmt = NULL;
	int r, rc;

	out[0] = 0;
	r = state_prepare(st, sql, &stmt);
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		const char *text = (const char *)sqlite3_column_text(stmt, 0);
		if (text && strcmp(text, "ok")) {
			snprintf(out, outlen, "%s", text);
			break;
		}
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		r = state_sql_error(st, sqlite3_extended_errcode(st->db));
	sqlite3_finalize(stmt);
	return r;
}

/* Is the database open in ST (read from NAME, for messages) one to
 * restore?  See state_file_inspect().  Returns 0 or -errno with err. */
static int inspect_open(struct state *st, const char *name, struct state_file_info *ret, char *err, size_t errlen)
{
	char fault[300], sql[160];
	int64_t version = 0, n = 0;
	int r;

	r = state_query_int64(st, "PRAGMA user_version", &version);
	if (r < 0) {
		bool corrupt = (sqlite3_extended_errcode(st->db) & 0xff) == SQLITE_CORRUPT;
		snprintf(err, errlen, corrupt ? "%s is damaged: %s" : "%s: not a readable SQLite database: %s", name,
			 st->errmsg);
		return corrupt ? -EIO : r == -EIO ? -EINVAL : r;
	}
	for (const struct state_table *t = state_tables; t->name; t++) {
		if (t->min_schema > 1)
			continue;
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = '%s'",
			 t->name);
		r = state_query_int64(st, sql, &n);
		if (r < 0) {
			snprintf(err, errlen, "%s: cannot read its tables: %s", name, st->errmsg);
			return -EIO;
		}
		if (!n) {
			snprintf(err, errlen, "%s is a SQLite database, but not a cutover state (it has no table %s)",
				 name, t->name);
			return -EINVAL;
		}
	}
	if (version < 1 || version > STATE_SCHEMA_VERSION) {
		snprintf(err, errlen,
			 version > STATE_SCHEMA_VERSION
				 ? "%s: schema version %lld is newer than this cutover knows (%d): restore it with the "
				   "cutover that wrote it"
				 : "%s: schema version %lld is not one of cutover's (1 to %d)",
			 name, (long long)version, STATE_SCHEMA_VERSION);
		return version > STATE_SCHEMA_VERSION ? -EPROTO : -EINVAL;
	}
	r = first_fault(st, "PRAGMA integrity_check", fault, sizeof(fault));
	if (r == 0 && !fault[0])
		r = first_fault(st, "SELECT printf('%s row %s names a missing %s row', \"table\", ifnull(rowid, '?'), parent)"
				    " FROM pragma_foreign_key_check", fault, sizeof(fault));
	if (r < 0 || fault[0]) {
		snprintf(err, errlen, "%s is damaged: %s", name, r < 0 ? st->errmsg : fault);
		return -EIO;
	}
	r = describe(st, ret);
	if (r < 0)
		snprintf(err, errlen, "%s: cannot count its rows: %s", name, st->errmsg);
	return r;
}

/* Open FILE (which need not be ours) for reading: read-write when we may
 * (a file in WAL mode needs its shared memory), else read-only; no write
 * goes through either way. */
static int open_for_reading(const char *file, struct state **ret, char *err, size_t errlen)
{
	int r = state_open_raw(file, SQLITE_OPEN_READWRITE, ret, err, errlen);

	if (r < 0)
		r = state_open_raw(file, SQLITE_OPEN_READONLY, ret, err, errlen);
	if (r == 0)
		state_exec(*ret, "PRAGMA query_only = ON");
	return r;
}

int state_file_inspect(const char *file, struct state_file_info *ret, char *err, size_t errlen)
{
	struct state *st = NULL;
	int r = has_sqlite_magic(file);

	if (r <= 0) {
		snprintf(err, errlen, r < 0 ? "%s: %s" : "%s is not a SQLite database", file, strerror(-r));
		return r < 0 ? r : -EINVAL;
	}
	r = open_for_reading(file, &st, err, errlen);
	if (r < 0)
		return r;
	r = inspect_open(st, file, ret, err, errlen);
	if (r == 0 && ret) {
		struct stat sb;
		if (stat(file, &sb) == 0)
			ret->size_bytes = (uint64_t)sb.st_size;
	}
	state_close(st);
	return r;
}

/* Copy the database open in SRC into the file TMP with the backup API, in
 * one step (one read transaction: a consistent snapshot).  A writer
 * holding a lock it needs is waited for, up to about 10 s.  Returns 0 or
 * -errno with err. */
static int copy_into(struct state *src, const char *from, const char *tmp, char *err, size_t errlen)
{
	struct state *dst = NULL;
	sqlite3_backup *b;
	int r, rc, tries = 0;

	r = state_open_raw(tmp, SQLITE_OPEN_READWRITE, &dst, err, errlen);
	if (r < 0)
		return r;
	b = sqlite3_backup_init(dst->db, "main", src->db, "main");
	if (!b) {
		r = state_sql_error(dst, sqlite3_extended_errcode(dst->db));
		snprintf(err, errlen, "%s: cannot start the copy: %s", tmp, dst->errmsg);
		goto out;
	}
	while ((rc = sqlite3_backup_step(b, -1)) == SQLITE_BUSY || rc == SQLITE_LOCKED) {
		if (++tries > 1000)
			break;
		usleep(10 * 1000);
	}
	sqlite3_backup_finish(b);
	if (rc != SQLITE_DONE) {
		bool damaged = (rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB;
		r = damaged ? -EIO : state_sql_error(src, rc);
		snprintf(err, errlen, damaged ? "%s is damaged: %s" : "%s: cannot copy it: %s", from, sqlite3_errstr(rc));
		goto out;
	}
	/* one self-contained file: a rollback journal, nothing beside it */
	r = state_exec(dst, "PRAGMA journal_mode = DELETE");
	if (r < 0)
		snprintf(err, errlen, "%s: %s", tmp, dst->errmsg);
out:
	state_close(dst);
	return r;
}

/* Put TMP at FILE: rename over it (OVERWRITE), or link it there, which
 * fails if FILE exists, whenever it appeared.  Returns 0 or -errno. */
static int put_in_place(const char *tmp, const char *file, bool overwrite)
{
	if (overwrite)
		return rename(tmp, file) < 0 ? -errno : 0;
	if (link(tmp, file) < 0)
		return -errno;
	unlink(tmp);
	return 0;
}

int state_backup(const char *dir, const char *file, bool overwrite, struct state_file_info *ret, char *err,
		 size_t errlen)
{
	struct state *src = NULL, *copy = NULL;
	struct state_file_info info = { 0 };
	char tmp[4200], where[4096], fault[300];
	struct stat sb;
	int r;

	if (!overwrite && lstat(file, &sb) == 0) {
		snprintf(err, errlen, "%s exists: give --force to replace it", file);
		return -EEXIST;
	}
	r = state_open_check(dir, &src, err, errlen);
	if (r < 0)
		return r;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", file) >= sizeof(tmp)) {
		snprintf(err, errlen, "%s: path too long", file);
		state_close(src);
		return -ENAMETOOLONG;
	}
	r = make_temp(tmp);
	if (r < 0) {
		dir_of(file, where, sizeof(where));
		snprintf(err, errlen, "cannot create a file in %s: %s", where, strerror(-r));
		state_close(src);
		return r;
	}
	r = copy_into(src, dir, tmp, err, errlen);
	src = state_close(src);
	if (r < 0)
		goto fail;
	/* the copy is read back whole before it replaces anything */
	r = state_open_raw(tmp, SQLITE_OPEN_READWRITE, &copy, err, errlen);
	if (r == 0)
		r = first_fault(copy, "PRAGMA integrity_check", fault, sizeof(fault));
	if (r == 0 && fault[0]) {
		snprintf(err, errlen, "the copy in %s failed its integrity check: %s", tmp, fault);
		r = -EIO;
	} else if (r == 0) {
		r = describe(copy, &info);
		if (r < 0)
			snprintf(err, errlen, "%s: %s", tmp, copy->errmsg);
	} else if (copy) {
		snprintf(err, errlen, "%s: %s", tmp, copy->errmsg);
	}
	copy = state_close(copy);
	if (r < 0)
		goto fail;
	r = sync_path(tmp, false);
	if (r == 0)
		r = put_in_place(tmp, file, overwrite);
	if (r == -EEXIST)
		snprintf(err, errlen, "%s appeared meanwhile: give --force to replace it", file);
	else if (r < 0)
		snprintf(err, errlen, "%s: %s", file, strerror(-r));
	if (r < 0)
		goto fail;
	dir_of(file, where, sizeof(where));
	sync_path(where, true);
	if (stat(file, &sb) == 0)
		info.size_bytes = (uint64_t)sb.st_size;
	if (ret)
		*ret = info;
	return 0;
fail:
	remove_temp(tmp);
	return r;
}

/* Take DIR/state.lock exclusive into *ret_fd, without waiting.  Returns 0,
 * or -EBUSY (someone has the state open) or -errno, with err. */
static int lock_exclusive(const char *dir, int *ret_fd, char *err, size_t errlen)
{
	char path[4200];
	int fd;

	snprintf(path, sizeof(path), "%s/" STATE_LOCK_NAME, dir);
	fd = state_lock_open(dir, err, errlen);
	if (fd < 0)
		return fd;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int r = errno == EWOULDBLOCK ? -EBUSY : -errno;
		snprintf(err, errlen,
			 r == -EBUSY ? "the state in %s is in use (a daemon, or another cutover command, has it open): "
				       "stop the daemon first (cutover shutdown)"
				     : "%s: cannot lock it",
			 r == -EBUSY ? dir : path);
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

/* The restored copy TMP, inspected, gets the schema of this build and
 * an audit row.  Returns 0 or -errno with err. */
static int prepare_copy(const struct state_restore_request *req, const char *tmp, struct state_file_info *info,
			char *err, size_t errlen)
{
	struct state *st = NULL;
	json_t *args;
	int r;

	r = state_open_raw(tmp, SQLITE_OPEN_READWRITE, &st, err, errlen);
	if (r < 0)
		return r;
	r = inspect_open(st, req->file, info, err, errlen);
	st = state_close(st);
	if (r < 0)
		return r;
	/* an older schema is migrated now, while the old state is still in
	 * place: a migration that fails leaves everything as it was */
	r = state_open_file(tmp, false, &st, err, errlen);
	if (r < 0)
		return r;
	args = json_pack("{s:s, s:i, s:i}", "file", req->file, "schema_version", info->schema_version,
			 "schema_version_now", state_schema_version(st));
	struct state_audit_entry e = { .actor = req->actor, .actor_uid = req->actor_uid, .action = "state-restore",
				       .target = NULL, .args = args, .result = "ok", .env = req->env,
				       .detail = info->schema_version < STATE_SCHEMA_VERSION ? "migrated to this schema"
											   : NULL };
	r = state_audit_add(st, &e, NULL);
	json_decref(args);
	if (r < 0)
		snprintf(err, errlen, "%s: cannot record the restore: %s", tmp, st->errmsg);
	struct state_present present = { 0 };
	char present_error[sizeof(info->present_error)] = "";
	if (r == 0) {
		/* the present of the state replaced, if it can be read */
		char old_db[4200];
		snprintf(old_db, sizeof(old_db), "%s/state.db", req->dir);
		if (state_carry_present(st, old_db, &present, present_error, sizeof(present_error)) < 0 &&
		    !present_error[0])
			snprintf(present_error, sizeof(present_error), "unreadable");
	}
	if (r == 0)
		r = describe(st, info);
	if (r == 0) {
		info->present = present;
		memcpy(info->present_error, present_error, sizeof(present_error));
	}
	state_close(st); /* the last connection: the WAL is checkpointed and removed */
	return r;
}

/* Move DIR/state.db (with its -wal and -shm) aside as
 * state.db.before-restore-STAMP[-N], keeping state.db itself in place (a
 * hard link) until the copy is renamed over it.  Returns 0 with the new
 * name in before ("" when there was no state.db), or -errno with err. */
static int keep_previous(const char *dir, char *before, size_t beforelen, char *err, size_t errlen)
{
	char db[4200], side[4300], aside[4300], stamp[32];
	struct state *old = NULL;
	struct stat sb;
	time_t now = time(NULL);
	struct tm tm;
	int n = 1;

	before[0] = 0;
	snprintf(db, sizeof(db), "%s/state.db", dir);
	if (lstat(db, &sb) < 0)
		return errno == ENOENT ? 0 : -errno;
	/* fold its WAL into it first if it opens: one file to keep */
	if (state_open_raw(db, SQLITE_OPEN_READWRITE, &old, err, errlen) == 0) {
		state_exec(old, "PRAGMA wal_checkpoint(TRUNCATE)");
		state_close(old);
	}
	err[0] = 0;
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	snprintf(before, beforelen, "%s/state.db.before-restore-%s", dir, stamp);
	while (link(db, before) < 0) {
		if (errno != EEXIST || n > 99) {
			int r = -errno;
			snprintf(err, errlen, "cannot keep %s as %s: %s", db, before, strerror(errno));
			before[0] = 0;
			return r;
		}
		snprintf(before, beforelen, "%s/state.db.before-restore-%s-%d", dir, stamp, ++n);
	}
	for (int i = 0; i < 2; i++) {
		snprintf(side, sizeof(side), "%s%s", db, i ? "-shm" : "-wal");
		snprintf(aside, sizeof(aside), "%s%s", before, i ? "-shm" : "-wal");
		if (rename(side, aside) < 0 && errno != ENOENT) {
			int r = -errno;
			snprintf(err, errlen, "cannot move %s aside: %s", side, strerror(errno));
			/* put back what moved: the state stays as it was */
			snprintf(side, sizeof(side), "%s-wal", db);
			snprintf(aside, sizeof(aside), "%s-wal", before);
			if (i)
				rename(aside, side);
			unlink(before);
			before[0] = 0;
			return r;
		}
	}
	return 0;
}

/* The copy takes the owner of the database it replaces (a restore run as
 * root for a daemon that runs as another user). */
static void take_owner(const char *tmp, const char *dir)
{
	char db[4200];
	struct stat sb;

	snprintf(db, sizeof(db), "%s/state.db", dir);
	if (geteuid() == 0 && stat(db, &sb) == 0 && chown(tmp, sb.st_uid, sb.st_gid) < 0)
		return; /* left as root's: the daemon then says it cannot write */
}

int state_restore(const struct state_restore_request *req, struct state_file_info *ret, char *before,
		  size_t beforelen, char *err, size_t errlen)
{
	struct state_file_info info = { 0 };
	struct state *src = NULL;
	char tmp[4200], db[4200], kept[4300] = "";
	struct stat sb;
	int r, lock_fd = -1;

	r = has_sqlite_magic(req->file);
	if (r <= 0) {
		snprintf(err, errlen, r < 0 ? "%s: %s" : "%s is not a SQLite database", req->file, strerror(-r));
		return r < 0 ? r : -EINVAL;
	}
	r = make_dirs(req->dir, 0700);
	if (r < 0) {
		snprintf(err, errlen, "state directory %s: cannot create it: %s", req->dir, strerror(-r));
		return r;
	}
	r = lock_exclusive(req->dir, &lock_fd, err, errlen);
	if (r < 0)
		return r;
	snprintf(db, sizeof(db), "%s/state.db", req->dir);
	snprintf(tmp, sizeof(tmp), "%s/.state.db.restore-XXXXXX", req->dir);
	r = make_temp(tmp);
	if (r < 0) {
		snprintf(err, errlen, "cannot create a file in %s: %s", req->dir, strerror(-r));
		goto out;
	}
	r = open_for_reading(req->file, &src, err, errlen);
	if (r == 0)
		r = copy_into(src, req->file, tmp, err, errlen);
	src = state_close(src);
	if (r == 0)
		r = prepare_copy(req, tmp, &info, err, errlen);
	if (r == 0) {
		take_owner(tmp, req->dir);
		r = sync_path(tmp, false);
		if (r < 0)
			snprintf(err, errlen, "%s: %s", tmp, strerror(-r));
	}
	if (r == 0)
		r = keep_previous(req->dir, kept, sizeof(kept), err, errlen);
	if (r == 0 && rename(tmp, db) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, db, strerror(errno));
	}
	if (r < 0) {
		remove_temp(tmp);
		goto out;
	}
	sync_path(req->dir, true);
	if (stat(db, &sb) == 0)
		info.size_bytes = (uint64_t)sb.st_size;
	if (ret)
		*ret = info;
	if (before)
		snprintf(before, beforelen, "%s", kept);
out:
	close(lock_fd);
	return r;
}

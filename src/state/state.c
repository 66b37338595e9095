/* state.c - opening the state database, its schema migrations, and the
 * helpers the other files of src/state share (errors, transactions,
 * columns, times, state names).
 *
 * The schema is a list of migrations, one per PRAGMA user_version step;
 * state_open() applies the missing ones, each in its own IMMEDIATE
 * transaction that re-reads user_version under the write lock, so two
 * processes opening a fresh database at once apply each step exactly once.
 * Every connection state_open() makes holds STATE_DIR/state.lock shared,
 * so that `cutover state restore` (backup.c) never swaps the file under it.
 * Design notes: docs/internals/state.md.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "base/util.h"
#include "secrets/redact.h"
#include "state/state-internal.h"

#define BUSY_TIMEOUT_MS 5000

/* migrations[i] takes the schema from version i to i + 1. */
static const char *const migrations[] = {
	/* 0 -> 1: the first schema. */
	"CREATE TABLE IF NOT EXISTS services ("
	"  name TEXT PRIMARY KEY NOT NULL,"
	"  created_at INTEGER NOT NULL"
	");"
	"CREATE TABLE IF NOT EXISTS releases ("
	"  id INTEGER PRIMARY KEY,"
	"  service TEXT NOT NULL REFERENCES services(name),"
	"  version TEXT NOT NULL,"
	"  digest TEXT NOT NULL CHECK (length(digest) = 64),"
	"  path TEXT NOT NULL,"
	"  size_bytes INTEGER NOT NULL CHECK (size_bytes >= 0),"
	"  created_at INTEGER NOT NULL,"
	"  UNIQUE (service, version)"
	");"
	"CREATE INDEX IF NOT EXISTS releases_path ON releases(path);"
	"CREATE TABLE IF NOT EXISTS instances ("
	"  id INTEGER PRIMARY KEY,"
	"  service TEXT NOT NULL REFERENCES services(name),"
	"  version TEXT NOT NULL,"
	"  release_id INTEGER REFERENCES releases(id) ON DELETE SET NULL,"
	"  pid INTEGER NOT NULL DEFAULT 0,"
	"  pgid INTEGER NOT NULL DEFAULT 0,"
	"  port INTEGER NOT NULL DEFAULT 0,"
	"  start_time_ticks INTEGER NOT NULL DEFAULT 0,"
	"  started_at INTEGER NOT NULL,"
	"  state TEXT NOT NULL CHECK (state IN ('starting', 'healthy', 'unhealthy', 'draining',"
	"                                       'stopping', 'stopped', 'crashed')),"
	"  restarts INTEGER NOT NULL DEFAULT 0,"
	"  log_path TEXT"
	");"
	"CREATE INDEX IF NOT EXISTS instances_service_state ON instances(service, state);"
	"CREATE INDEX IF NOT EXISTS instances_release ON instances(release_id);"
	"CREATE TABLE IF NOT EXISTS deployments ("
	"  id INTEGER PRIMARY KEY,"
	"  service TEXT NOT NULL REFERENCES services(name),"
	"  from_version TEXT,"
	"  to_version TEXT NOT NULL,"
	"  strategy TEXT NOT NULL,"
	"  state TEXT NOT NULL CHECK (state IN ('starting', 'health-checking', 'switching', 'switched',"
	"                                       'draining', 'done', 'rolled-back', 'failed', 'aborted')),"
	"  reason TEXT,"
	"  started_at INTEGER NOT NULL,"
	"  finished_at INTEGER"
	");"
	"CREATE INDEX IF NOT EXISTS deployments_service ON deployments(service, id);"
	"CREATE INDEX IF NOT EXISTS deployments_in_flight ON deployments(id) WHERE finished_at IS NULL;"
	"CREATE TABLE IF NOT EXISTS deployment_events ("
	"  id INTEGER PRIMARY KEY,"
	"  deployment_id INTEGER NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,"
	"  at INTEGER NOT NULL,"
	"  from_state TEXT,"
	"  to_state TEXT NOT NULL,"
	"  detail TEXT"
	");"
	"CREATE INDEX IF NOT EXISTS deployment_events_deployment ON deployment_events(deployment_id, id);"
	"CREATE TABLE IF NOT EXISTS audit ("
	"  id INTEGER PRIMARY KEY,"
	"  at INTEGER NOT NULL,"
	"  actor TEXT NOT NULL,"
	"  actor_uid INTEGER NOT NULL,"
	"  action TEXT NOT NULL,"
	"  target TEXT,"
	"  args TEXT CHECK (args IS NULL OR json_valid(args)),"
	"  result TEXT NOT NULL,"
	"  detail TEXT"
	");"
	"CREATE INDEX IF NOT EXISTS audit_target ON audit(target, id);"
	"CREATE TABLE IF NOT EXISTS routing ("
	"  service TEXT PRIMARY KEY NOT NULL REFERENCES services(name),"
	"  version TEXT NOT NULL,"
	"  instance_ids TEXT NOT NULL CHECK (json_valid(instance_ids)),"
	"  updated_at INTEGER NOT NULL"
	");",
	/* 1 -> 2: deployments may be in state 'smoke-testing'.  SQLite cannot
	 * change a CHECK in place: the table is rebuilt and renamed (foreign
	 * keys are off while migrations run, so dropping the old table leaves
	 * deployment_events alone; they reference it by name). */
	"CREATE TABLE deployments_v2 ("
	"  id INTEGER PRIMARY KEY,"
	"  service TEXT NOT NULL REFERENCES services(name),"
	"  from_version TEXT,"
	"  to_version TEXT NOT NULL,"
	"  strategy TEXT NOT NULL,"
	"  state TEXT NOT NULL CHECK (state IN ('starting', 'health-checking', 'smoke-testing', 'switching',"
	"                                       'switched', 'draining', 'done', 'rolled-back', 'failed',"
	"                                       'aborted')),"
	"  reason TEXT,"
	"  started_at INTEGER NOT NULL,"
	"  finished_at INTEGER"
	");"
	"INSERT INTO deployments_v2 (id, service, from_version, to_version, strategy, state, reason, started_at,"
	"                            finished_at)"
	"  SELECT id, service, from_version, to_version, strategy, state, reason, started_at, finished_at"
	"  FROM deployments;"
	"DROP TABLE deployments;"
	"ALTER TABLE deployments_v2 RENAME TO deployments;"
	"CREATE INDEX deployments_service ON deployments(service, id);"
	"CREATE INDEX deployments_in_flight ON deployments(id) WHERE finished_at IS NULL;",
	/* 2 -> 3: approvals and promotions.  Deployments may await approval
	 * (and end rejected or expired), and record the digest deployed, who
	 * asked, when a request expires and the environment a promotion came
	 * from.  The table is rebuilt for its CHECK, as in 1 -> 2. */
	"CREATE TABLE deployments_v3 ("
	"  id INTEGER PRIMARY KEY,"
	"  service TEXT NOT NULL REFERENCES services(name),"
	"  from_version TEXT,"
	"  to_version TEXT NOT NULL,"
	"  strategy TEXT NOT NULL,"
	"  state TEXT NOT NULL CHECK (state IN ('awaiting-approval', 'starting', 'health-checking', 'smoke-testing',"
	"                                       'switching', 'switched', 'draining', 'done', 'rolled-back', 'failed',"
	"                                       'aborted', 'rejected', 'expired')),"
	"  reason TEXT,"
	"  started_at INTEGER NOT NULL,"
	"  finished_at INTEGER,"
	"  digest TEXT CHECK (digest IS NULL OR length(digest) = 64),"
	"  requested_uid INTEGER,"
	"  expires_at INTEGER,"
	"  promoted_from TEXT"
	");"
	"INSERT INTO deployments_v3 (id, service, from_version, to_version, strategy, state, reason, started_at,"
	"                            finished_at)"
	"  SELECT id, service, from_version, to_version, strategy, state, reason, started_at, finished_at"
	"  FROM deployments;"
	"DROP TABLE deployments;"
	"ALTER TABLE deployments_v3 RENAME TO deployments;"
	"CREATE INDEX deployments_service ON deployments(service, id);"
	"CREATE INDEX deployments_in_flight ON deployments(id) WHERE finished_at IS NULL;",
	/* 3 -> 4: multi-service releases (state/releases.c): one row per run
	 * of a release file, its whole report a JSON document rewritten at each
	 * step; deployments and audit rows say which release they belong to
	 * and in which environment they were made, for `history` and `audit` filters. */
	"CREATE TABLE release_runs ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL,"
	"  env TEXT,"
	"  state TEXT NOT NULL CHECK (state IN ('awaiting-approval', 'running', 'rolling-back', 'succeeded',"
	"                                       'degraded', 'rolled-back', 'failed', 'rejected', 'expired')),"
	"  started_by TEXT NOT NULL,"
	"  started_uid INTEGER NOT NULL,"
	"  started_at INTEGER NOT NULL,"
	"  finished_at INTEGER,"
	"  report TEXT NOT NULL CHECK (json_valid(report))"
	");"
	"CREATE INDEX release_runs_in_flight ON release_runs(id) WHERE finished_at IS NULL;"
	"ALTER TABLE deployments ADD COLUMN release_id INTEGER;"
	"ALTER TABLE deployments ADD COLUMN env TEXT;"
	"ALTER TABLE audit ADD COLUMN env TEXT;"
	"ALTER TABLE audit ADD COLUMN release_id INTEGER;"
	"CREATE INDEX audit_release ON audit(release_id, id) WHERE release_id IS NOT NULL;",
	/* 4 -> 5: observability and operations.  maintenance: the services an
	 * operator answers with 503 (`cutover maintenance on`), kept across
	 * restarts; traffic_minutes: what the proxy answered per service and
	 * minute, the uptime figures of the status page (24 h and 7 d). */
	"CREATE TABLE maintenance ("
	"  service TEXT PRIMARY KEY,"
	"  since INTEGER NOT NULL,"
	"  started_by TEXT NOT NULL,"
	"  page TEXT,"
	"  retry_after INTEGER NOT NULL DEFAULT 300"
	");"
	"CREATE TABLE traffic_minutes ("
	"  service TEXT NOT NULL,"
	"  minute INTEGER NOT NULL,"
	"  requests INTEGER NOT NULL,"
	"  failed INTEGER NOT NULL,"
	"  PRIMARY KEY (service, minute)"
	") WITHOUT ROWID;",
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == STATE_SCHEMA_VERSION,
	       "one migration per schema version");

static const char *const instance_state_names[STATE_INSTANCE__COUNT] = {
	[STATE_INSTANCE_STARTING] = "starting",   [STATE_INSTANCE_HEALTHY] = "healthy",
	[STATE_INSTANCE_UNHEALTHY] = "unhealthy", [STATE_INSTANCE_DRAINING] = "draining",
	[STATE_INSTANCE_STOPPING] = "stopping",   [STATE_INSTANCE_STOPPED] = "stopped",
	[STATE_INSTANCE_CRASHED] = "crashed",
};

static const char *const deployment_state_names[STATE_DEPLOYMENT__COUNT] = {
	[STATE_DEPLOYMENT_STARTING] = "starting",
	[STATE_DEPLOYMENT_HEALTH_CHECKING] = "health-checking",
	[STATE_DEPLOYMENT_SMOKE_TESTING] = "smoke-testing",
	[STATE_DEPLOYMENT_SWITCHING] = "switching",
	[STATE_DEPLOYMENT_SWITCHED] = "switched",
	[STATE_DEPLOYMENT_DRAINING] = "draining",
	[STATE_DEPLOYMENT_AWAITING_APPROVAL] = "awaiting-approval",
	[STATE_DEPLOYMENT_DONE] = "done",
	[STATE_DEPLOYMENT_ROLLED_BACK] = "rolled-back",
	[STATE_DEPLOYMENT_FAILED] = "failed",
	[STATE_DEPLOYMENT_ABORTED] = "aborted",
	[STATE_DEPLOYMENT_REJECTED] = "rejected",
	[STATE_DEPLOYMENT_EXPIRED] = "expired",
};

const char *state_instance_state_name(enum state_instance_state s)
{
	return (unsigned)s < STATE_INSTANCE__COUNT ? instance_state_names[s] : "unknown";
}

int state_instance_state_parse(const char *name)
{
	for (int i = 0; name && i < STATE_INSTANCE__COUNT; i++)
		if (!strcmp(name, instance_state_names[i]))
			return i;
	return -EINVAL;
}

const char *state_deployment_state_name(enum state_deployment_state s)
{
	return (unsigned)s < STATE_DEPLOYMENT__COUNT ? deployment_state_names[s] : "unknown";
}

int state_deployment_state_parse(const char *name)
{
	for (int i = 0; name && i < STATE_DEPLOYMENT__COUNT; i++)
		if (!strcmp(name, deployment_state_names[i]))
			return i;
	return -EINVAL;
}

bool state_deployment_state_terminal(enum state_deployment_state s)
{
	return s >= STATE_DEPLOYMENT_DONE && s < STATE_DEPLOYMENT__COUNT;
}

int64_t state_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void state_format_time(int64_t ms, char *out, size_t outlen)
{
	struct tm tm;
	time_t secs;
	char buf[32];

	if (!outlen)
		return;
	if (ms <= 0) {
		snprintf(out, outlen, "-");
		return;
	}
	secs = (time_t)(ms / 1000);
	if (!gmtime_r(&secs, &tm) || !strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm)) {
		snprintf(out, outlen, "%lld", (long long)ms);
		return;
	}
	snprintf(out, outlen, "%s.%03dZ", buf, (int)(ms % 1000));
}

/* ---- helpers shared by the files of src/state ---------------------------- */

int state_sql_error(struct state *st, int rc)
{
	snprintf(st->errmsg, sizeof(st->errmsg), "%s", st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_CONSTRAINT:
		if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
			return -EEXIST;
		return -EINVAL;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	default:
		return -EIO;
	}
}

int state_prepare(struct state *st, const char *sql, sqlite3_stmt **ret)
{
	int rc = sqlite3_prepare_v2(st->db, sql, -1, ret, NULL);

	return rc == SQLITE_OK ? 0 : state_sql_error(st, sqlite3_extended_errcode(st->db));
}

int state_exec(struct state *st, const char *sql)
{
	int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : state_sql_error(st, sqlite3_extended_errcode(st->db));
}

int state_step_done(struct state *st, sqlite3_stmt *stmt)
{
	int rc = sqlite3_step(stmt);

	if (rc == SQLITE_DONE || rc == SQLITE_ROW)
		return 0;
	return state_sql_error(st, sqlite3_extended_errcode(st->db));
}

/* Transactions nest: the outermost is BEGIN IMMEDIATE ... COMMIT, inner ones
 * are savepoints, so a function that is one transaction on its own becomes
 * part of its caller's (state_tx_begin). */
int state_begin(struct state *st)
{
	int r;

	if (sqlite3_get_autocommit(st->db))
		st->depth = 0; /* SQLite ended the transaction itself (FULL, IOERR...) */
	r = state_exec(st, st->depth ? "SAVEPOINT nested" : "BEGIN IMMEDIATE");

	if (r == 0)
		st->depth++;
	return r;
}

int state_commit(struct state *st)
{
	int r;

	if (st->depth > 1) {
		r = state_exec(st, "RELEASE nested");
		if (r == 0)
			st->depth--;
		return r;
	}
	r = state_exec(st, "COMMIT");
	if (r == 0)
		st->depth = 0;
	return r;
}

void state_rollback(struct state *st)
{
	if (sqlite3_get_autocommit(st->db)) {
		st->depth = 0; /* nothing open (any more) */
		return;
	}
	if (st->depth > 1) {
		sqlite3_exec(st->db, "ROLLBACK TO nested; RELEASE nested", NULL, NULL, NULL);
		st->depth--;
		return;
	}
	if (!sqlite3_get_autocommit(st->db))
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	st->depth = 0;
}

int state_tx_begin(struct state *st) { return state_begin(st); }

int state_tx_commit(struct state *st) { return state_commit(st); }

void state_tx_rollback(struct state *st) { state_rollback(st); }

int state_bind_text(sqlite3_stmt *stmt, int i, const char *s)
{
	char *tofree = NULL;
	const char *text = s ? redact_global_str(s, &tofree) : NULL;
	int rc = !text ? sqlite3_bind_null(stmt, i)
		 : tofree ? sqlite3_bind_text(stmt, i, tofree, -1, free) /* sqlite frees it */
			  : sqlite3_bind_text(stmt, i, text, -1, SQLITE_STATIC);

	return rc == SQLITE_OK ? 0 : -ENOMEM;
}

void state_column_copy(sqlite3_stmt *stmt, int i, char *out, size_t outlen)
{
	const unsigned char *s = sqlite3_column_text(stmt, i);

	snprintf(out, outlen, "%s", s ? (const char *)s : "");
}

char *state_column_dup(sqlite3_stmt *stmt, int i, bool *failed)
{
	const unsigned char *s = sqlite3_column_text(stmt, i);
	char *copy;

	if (!s)
		return NULL;
	copy = strdup((const char *)s);
	if (!copy)
		*failed = true;
	return copy;
}

int state_check_text(const char *s, size_t max, bool required)
{
	if (!s || !*s)
		return required ? -EINVAL : 0;
	return strlen(s) > max ? -EINVAL : 0;
}

void *state_array_push(void *items_ptr, size_t *n, size_t *cap, size_t sz)
{
	char *items;

	memcpy(&items, items_ptr, sizeof(items));
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 8;
		char *grown = reallocarray(items, ncap, sz);

		if (!grown)
			return NULL;
		items = grown;
		*cap = ncap;
		memcpy(items_ptr, &items, sizeof(items));
	}
	memset(items + *n * sz, 0, sz);
	return items + (*n)++ * sz;
}

int state_rows(struct state *st, sqlite3_stmt *stmt, const struct state_row_kind *kind, void *ret_items,
	       size_t *ret_n)
{
	char *items = NULL;
	size_t n = 0, cap = 0;
	int r = 0, rc;

	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		void *row = state_array_push(&items, &n, &cap, kind->size);
		if (!row) {
			r = -ENOMEM;
			break;
		}
		r = kind->read(stmt, row);
		if (r < 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = state_sql_error(st, sqlite3_extended_errcode(st->db));
	sqlite3_finalize(stmt);
	if (r < 0) {
		for (size_t i = 0; i < n; i++)
			kind->clear(items + i * kind->size);
		free(items);
		return r;
	}
	memcpy(ret_items, &items, sizeof(items));
	*ret_n = n;
	return 0;
}

int state_row(struct state *st, sqlite3_stmt *stmt, const struct state_row_kind *kind, void *ret)
{
	void *row = calloc(1, kind->size);
	int r, rc;

	if (!row) {
		sqlite3_finalize(stmt);
		return -ENOMEM;
	}
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		r = kind->read(stmt, row);
	else
		r = rc == SQLITE_DONE ? -ENOENT : state_sql_error(st, sqlite3_extended_errcode(st->db));
	sqlite3_finalize(stmt);
	if (r < 0)
		kind->clear(row);
	else
		memcpy(ret, row, kind->size);
	free(row);
	return r;
}

int state_service_insert(struct state *st, const char *name)
{
	sqlite3_stmt *stmt = NULL;
	int r;

	if (state_check_text(name, STATE_SERVICE_MAX, true) < 0)
		return -EINVAL;
	r = state_prepare(st, "INSERT OR IGNORE INTO services (name, created_at) VALUES (?1, ?2)", &stmt);
	if (r < 0)
		return r;
	sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, state_now_ms());
	r = state_step_done(st, stmt);
	sqlite3_finalize(stmt);
	return r;
}

int state_service_ensure(struct state *st, const char *name)
{
	return state_service_insert(st, name);
}

int state_service_known(struct state *st, const char *name)
{
	sqlite3_stmt *stmt = NULL;
	int r;

	r = state_prepare(st, "SELECT 1 FROM services WHERE name = ?1", &stmt);
	if (r < 0)
		return r;
	r = state_bind_text(stmt, 1, name);
	if (r == 0) {
		r = sqlite3_step(stmt);
		r = r == SQLITE_ROW ? 1 : r == SQLITE_DONE ? 0 : state_sql_error(st, sqlite3_extended_errcode(st->db));
	}
	sqlite3_finalize(stmt);
	return r;
}

const char *state_errmsg(const struct state *st)
{
	return st && st->errmsg[0] ? st->errmsg : "no error";
}

/* ---- opening and migrating ----------------------------------------------- */

int state_query_int64(struct state *st, const char *sql, int64_t *ret)
{
	sqlite3_stmt *stmt = NULL;
	int r = state_prepare(st, sql, &stmt);

	if (r < 0)
		return r;
	if (sqlite3_step(stmt) == SQLITE_ROW)
		*ret = sqlite3_column_int64(stmt, 0);
	else
		r = state_sql_error(st, sqlite3_extended_errcode(st->db));
	sqlite3_finalize(stmt);
	return r < 0 ? r : 0;
}

static int read_int_pragma(struct state *st, const char *sql, int *ret)
{
	int64_t v = 0;
	int r = state_query_int64(st, sql, &v);

	if (r == 0)
		*ret = (int)v;
	return r;
}

int state_schema_version(struct state *st)
{
	int v = -1;

	return read_int_pragma(st, "PRAGMA user_version", &v) < 0 ? -1 : v;
}

/* Apply the missing migrations, one transaction each.  Returns 0, -EPROTO
 * for a newer schema (message in err), or -errno. */
static int migrate(struct state *st, const char *file, char *err, size_t errlen)
{
	char sql[64];
	int r, version = 0;

	for (;;) {
		r = state_begin(st);
		if (r < 0)
			goto fail;
		r = read_int_pragma(st, "PRAGMA user_version", &version);
		if (r < 0)
			goto fail;
		if (version > STATE_SCHEMA_VERSION || version < 0) {
			state_rollback(st);
			snprintf(err, errlen,
				 "%s: schema version %d is newer than this cutover supports (%d): "
				 "upgrade cutover, or use the state directory this version wrote",
				 file, version, STATE_SCHEMA_VERSION);
			return -EPROTO;
		}
		if (version == STATE_SCHEMA_VERSION) {
			r = state_commit(st);
			if (r < 0)
				goto fail;
			return 0;
		}
		r = state_exec(st, migrations[version]);
		if (r < 0)
			goto fail;
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", version + 1);
		r = state_exec(st, sql);
		if (r < 0)
			goto fail;
		r = state_commit(st);
		if (r < 0)
			goto fail;
	}
fail:
	state_rollback(st);
	snprintf(err, errlen, "%s: cannot apply the schema: %s", file, st->errmsg);
	return r;
}

int state_open_raw(const char *file, int flags, struct state **ret, char *err, size_t errlen)
{
	struct state *st = calloc(1, sizeof(*st));
	int rc, r;

	if (!st) {
		snprintf(err, errlen, "%s: out of memory", file);
		return -ENOMEM;
	}
	st->lock_fd = -1;
	rc = sqlite3_open_v2(file, &st->db, flags, NULL);
	if (rc != SQLITE_OK) {
		r = state_sql_error(st, rc);
		snprintf(err, errlen, "%s: cannot open: %s", file, st->errmsg);
		state_close(st);
		return r;
	}
	sqlite3_extended_result_codes(st->db, 1);
	sqlite3_busy_timeout(st->db, BUSY_TIMEOUT_MS);
	*ret = st;
	return 0;
}

/* How long a connection waits for a restore (which holds the lock
 * exclusive for the moment of its swap) before it gives up. */
#define LOCK_WAIT_MS 30000

/* Take DIR/state.lock shared into *ret_fd (close-on-exec: the instances
 * the daemon starts must not inherit it, or it would outlive the daemon).
 * Returns 0, or -errno with a sentence in err: -EBUSY when a restore holds
 * it beyond LOCK_WAIT_MS. */
int state_lock_open(const char *dir, char *err, size_t errlen)
{
	char path[4200];
	struct stat sb;
	int fd, r;

	snprintf(path, sizeof(path), "%s/" STATE_LOCK_NAME, dir);
	/* flock needs no write access: read-only, so a file root made is
	 * still usable by the owner (below), and so is one a reader made */
	fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return r;
	}
	/* made by root (a CLI verb run as root): it belongs to the directory's
	 * owner, who runs the daemon, as SQLite does with the -wal and -shm */
	if (geteuid() == 0 && stat(dir, &sb) == 0 && fchown(fd, sb.st_uid, sb.st_gid) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: cannot give it to the owner of %s: %s", path, dir, strerror(errno));
		close(fd);
		return r;
	}
	return fd;
}

static int lock_shared(const char *dir, int *ret_fd, char *err, size_t errlen)
{
	int fd, waited = 0, r;
	char path[4200];

	snprintf(path, sizeof(path), "%s/" STATE_LOCK_NAME, dir);
	fd = state_lock_open(dir, err, errlen);
	if (fd < 0)
		return fd;
	while (flock(fd, LOCK_SH | LOCK_NB) < 0) {
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK || waited >= LOCK_WAIT_MS) {
			r = errno == EWOULDBLOCK ? -EBUSY : -errno;
			snprintf(err, errlen, "%s: %s", path,
				 r == -EBUSY ? "the state is being restored (cutover state restore holds this lock): "
					       "try again once it is done"
					     : strerror(-r));
			close(fd);
			return r;
		}
		usleep(50 * 1000);
		waited += 50;
	}
	*ret_fd = fd;
	return 0;
}

/* state_open() and state_open_existing(): CREATE says whether a missing
 * directory and database may be created. */
static int open_db(const char *dir, bool create, struct state **ret, char *err, size_t errlen)
{
	char file[4200];
	char scratch[8];
	struct state *st = NULL;
	struct stat sb;
	int r, lock_fd = -1;

	if (!err || !errlen) {
		err = scratch;
		errlen = sizeof(scratch);
	}
	err[0] = '\0';
	if (!dir || !*dir) {
		snprintf(err, errlen, "state directory: empty path");
		return -EINVAL;
	}
	if (create) {
		r = make_dirs(dir, 0700);
		if (r < 0) {
			snprintf(err, errlen, "state directory %s: cannot create it: %s", dir, strerror(-r));
			return r;
		}
	}
	if ((size_t)snprintf(file, sizeof(file), "%s/state.db", dir) >= sizeof(file)) {
		snprintf(err, errlen, "state directory %s: path too long", dir);
		return -ENAMETOOLONG;
	}
	if (!create && stat(file, &sb) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", file, strerror(errno));
		return r;
	}
	if (!create && !S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", file);
		return -EINVAL;
	}
	/* before the file is opened: a restore swaps it under this lock */
	r = lock_shared(dir, &lock_fd, err, errlen);
	if (r < 0)
		return r;
	r = state_open_file(file, create, &st, err, errlen);
	if (r < 0) {
		close(lock_fd);
		return r;
	}
	st->lock_fd = lock_fd;
	*ret = st;
	return 0;
}

int state_open_file(const char *file, bool create, struct state **ret, char *err, size_t errlen)
{
	struct state *st = NULL;
	sqlite3_stmt *stmt = NULL;
	int r;

	r = state_open_raw(file, SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0), &st, err, errlen);
	if (r < 0)
		return r;
	/* WAL: readers never block the writer and a crash of the writer leaves
	 * the database consistent (the WAL is replayed on the next open). */
	r = state_prepare(st, "PRAGMA journal_mode = WAL", &stmt);
	if (r < 0 || sqlite3_step(stmt) != SQLITE_ROW) {
		r = r < 0 ? r : state_sql_error(st, sqlite3_extended_errcode(st->db));
		snprintf(err, errlen, "%s: cannot switch to WAL: %s", file, st->errmsg);
		goto fail;
	}
	if (strcmp((const char *)sqlite3_column_text(stmt, 0), "wal")) {
		snprintf(err, errlen, "%s: the file system refused WAL mode (journal mode stays %s)", file,
			 sqlite3_column_text(stmt, 0));
		r = -ENOTSUP;
		goto fail;
	}
	sqlite3_finalize(stmt);
	stmt = NULL;
	/* FULL: each commit is fsynced, so what a commit recorded survives a
	 * power loss too, not only a kill -9 (docs/internals/state.md). */
	r = state_exec(st, "PRAGMA synchronous = FULL");
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", file, st->errmsg);
		goto fail;
	}
	/* migrations run with foreign keys off (a table rebuild must not
	 * cascade); they are on for everything after */
	r = migrate(st, file, err, errlen);
	if (r < 0)
		goto fail;
	r = state_exec(st, "PRAGMA foreign_keys = ON");
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", file, st->errmsg);
		goto fail;
	}
	*ret = st;
	return 0;
fail:
	sqlite3_finalize(stmt);
	state_close(st);
	return r;
}

int state_open_check(const char *dir, struct state **ret, char *err, size_t errlen)
{
	char file[4200];
	struct state *st = NULL;
	struct stat sb;
	int r, lock_fd = -1;

	if ((size_t)snprintf(file, sizeof(file), "%s/state.db", dir) >= sizeof(file)) {
		snprintf(err, errlen, "state directory %s: path too long", dir);
		return -ENAMETOOLONG;
	}
	if (stat(file, &sb) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", file, strerror(errno));
		return r;
	}
	if (!S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", file);
		return -EINVAL;
	}
	r = lock_shared(dir, &lock_fd, err, errlen);
	if (r < 0)
		return r;
	/* read-write for the WAL's shared memory, but no write goes through */
	r = state_open_raw(file, SQLITE_OPEN_READWRITE, &st, err, errlen);
	if (r < 0) {
		close(lock_fd);
		return r;
	}
	st->lock_fd = lock_fd;
	state_exec(st, "PRAGMA query_only = ON");
	*ret = st;
	return 0;
}

int state_open(const char *dir, struct state **ret, char *err, size_t errlen)
{
	return open_db(dir, true, ret, err, errlen);
}

int state_open_existing(const char *dir, struct state **ret, char *err, size_t errlen)
{
	return open_db(dir, false, ret, err, errlen);
}

struct state *state_close(struct state *st)
{
	if (!st)
		return NULL;
	sqlite3_close_v2(st->db);
	/* after the connection: the lock covers it to its end */
	if (st->lock_fd >= 0)
		close(st->lock_fd);
	free(st);
	return NULL;
}

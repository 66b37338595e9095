/* test_state_ops.c - unit tests for the operations on the state as a whole
 * (src/state: check.c, backup.c, maintenance.c): `cutover state check`'s
 * checks, each against a state broken on purpose in exactly one way;
 * backups taken beside an open write transaction; restores refused
 * (not a database, not cutover's, a newer schema, damaged, in use) and
 * done (the previous database kept, an older schema migrated, audited);
 * the maintenance rows.
 *
 * Each test works in its own temporary directory, removed at the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>

#include "state/state-internal.h"

#include "state-fixture.h"

static void exec_ok(struct state *st, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
}

static int64_t query_int(struct state *st, const char *sql)
{
	int64_t v = -1;

	assert_int_equal(state_query_int64(st, sql, &v), 0);
	return v;
}

/* A state as a few days of work leave it: releases, a finished deploy, a
 * rollback, a deploy in flight, routing, a release run, traffic, a
 * service in maintenance. */
static void populate(struct state *st)
{
	struct state_release rel = { .service = "shop", .path = "/srv/releases/shop/x", .size_bytes = 10 };
	struct state_instance inst = { .service = "shop", .state = STATE_INSTANCE_HEALTHY, .pid = 0 };
	struct state_release_run run = { .name = "spring", .started_by = "alice", .report = "{}" };
	struct state_maintenance m = { .service = "shop", .started_by = "alice", .retry_after = 300 };
	const char *versions[] = { "1.0.0", "1.1.0", "1.2.0" };
	int64_t id, inst1, inst2;

	for (size_t i = 0; i < 3; i++) {
		snprintf(rel.version, sizeof(rel.version), "%s", versions[i]);
		memset(rel.digest, 'a' + (int)i, STATE_DIGEST_HEX);
		rel.digest[STATE_DIGEST_HEX] = 0;
		assert_int_equal(state_release_add(st, &rel, NULL), 0);
	}
	snprintf(inst.version, sizeof(inst.version), "1.0.0");
	assert_int_equal(state_instance_add(st, &inst, &inst1), 0);
	snprintf(inst.version, sizeof(inst.version), "1.1.0");
	assert_int_equal(state_instance_add(st, &inst, &inst2), 0);
	assert_int_equal(state_deployment_begin(st, "shop", NULL, "1.0.0", "blue-green", NULL, &id), 0);
	assert_int_equal(state_deployment_route(st, id, STATE_DEPLOYMENT_SWITCHED, NULL, "1.0.0", &inst1, 1), 0);
	assert_int_equal(state_deployment_finish(st, id, STATE_DEPLOYMENT_DONE, NULL), 0);
	assert_int_equal(state_deployment_begin(st, "shop", "1.0.0", "1.1.0", "blue-green", NULL, &id), 0);
	assert_int_equal(state_deployment_route(st, id, STATE_DEPLOYMENT_SWITCHED, NULL, "1.1.0", &inst2, 1), 0);
	assert_int_equal(state_deployment_route(st, id, STATE_DEPLOYMENT_ROLLED_BACK, "p99", "1.0.0", &inst1, 1), 0);
	assert_int_equal(state_deployment_begin(st, "shop", "1.0.0", "1.2.0", "canary", NULL, &id), 0);
	assert_int_equal(state_deployment_transition(st, id, STATE_DEPLOYMENT_HEALTH_CHECKING, NULL), 0);
	assert_int_equal(state_release_run_begin(st, &run, &id), 0);
	assert_int_equal(state_release_run_update(st, id, STATE_RELEASE_SUCCEEDED, state_now_ms(), "{}"), 0);
	exec_ok(st, "INSERT INTO traffic_minutes VALUES ('shop', 29000000, 100, 2)");
	assert_int_equal(state_maintenance_set(st, &m), 0);
	struct state_audit_entry e = { .actor = "alice", .action = "deploy", .target = "shop@1.2.0", .result = "ok" };
	assert_int_equal(state_audit_add(st, &e, NULL), 0);
}

/* state_check() on ST: the names of the checks that failed, joined by
 * "|" into out (empty: all ok); checks there were at all into *n. */
static void failed_checks(struct state *st, char *out, size_t outlen, size_t *n)
{
	json_t *results = NULL, *c;
	size_t i, off = 0;

	assert_int_equal(state_check(st, &results), 0);
	out[0] = 0;
	json_array_foreach(results, i, c) {
		if (json_is_true(json_object_get(c, "ok")))
			continue;
		off += (size_t)snprintf(out + off, outlen - off, "%s%s", off ? "|" : "",
					json_string_value(json_object_get(c, "check")));
	}
	*n = json_array_size(results);
	json_decref(results);
}

/* The first problem of check NAME, or NULL. */
static char *first_problem(struct state *st, const char *name)
{
	json_t *results = NULL, *c;
	char *text = NULL;
	size_t i;

	assert_int_equal(state_check(st, &results), 0);
	json_array_foreach(results, i, c)
		if (!strcmp(json_string_value(json_object_get(c, "check")), name)) {
			const char *p = json_string_value(json_array_get(json_object_get(c, "problems"), 0));
			text = p ? strdup(p) : NULL;
		}
	json_decref(results);
	return text;
}

static void test_check_clean(void **state)
{
	struct state_fixture *f = *state;
	char failed[512];
	size_t n;

	populate(f->st);
	failed_checks(f->st, failed, sizeof(failed), &n);
	assert_string_equal(failed, "");
	assert_int_equal(n, 11); /* integrity, foreign keys, schema, eight invariants */
}

/* One way to break the state each, and the one check that must see it. */
static const struct breakage {
	const char *sql;
	const char *check;            /* the check that fails, alone */
	const char *says;             /* in its first problem */
} breakages[] = {
	{ "UPDATE deployments SET state = 'done', finished_at = started_at + 5 WHERE id = 3",
	  "deployment state = its last event", "deployment 3 (shop 1.2.0) is done, but its last event" },
	{ "DELETE FROM deployment_events WHERE deployment_id = 1", "deployment state = its last event",
	  "deployment 1 (shop 1.0.0) has no event" },
	{ "INSERT INTO deployments (service, to_version, strategy, state, started_at) VALUES ('shop', '1.1.0',"
	  " 'canary', 'starting', 1); INSERT INTO deployment_events (deployment_id, at, to_state)"
	  " VALUES (last_insert_rowid(), 1, 'starting')",
	  "one deploy in flight per service", "shop has 2 deployments in flight (ids 3, 4)" },
	{ "UPDATE deployments SET finished_at = NULL WHERE id = 1", "deployment finished_at",
	  "deployment 1 (shop 1.0.0) is done but has no finished_at" },
	{ "UPDATE deployments SET finished_at = 1 WHERE id = 3", "deployment finished_at",
	  "deployment 3 (shop 1.2.0) is health-checking but has a finished_at" },
	{ "UPDATE routing SET version = '9.9.9'", "routing names known versions",
	  "shop routes to 9.9.9, which has neither" },
	{ "UPDATE routing SET instance_ids = '[1, 99]'", "routing names known instances",
	  "shop routes to instance 99" },
	{ "UPDATE release_runs SET finished_at = NULL", "release runs finished_at",
	  "release run 1 (spring) is succeeded but has no finished_at" },
	{ "INSERT INTO traffic_minutes VALUES ('shop', 99999999999, 1, 0)", "traffic minutes", "in the future" },
	{ "UPDATE traffic_minutes SET failed = 200", "traffic minutes", "200 failed of 100 requests" },
	{ "UPDATE maintenance SET since = 99999999999999", "maintenance rows", "since a time in the future" },
	{ "UPDATE maintenance SET retry_after = 0", "maintenance rows", "shop: Retry-After 0 s" },
	{ "INSERT INTO instances (service, version, started_at, state) VALUES ('nobody', '1.0.0', 1, 'stopped')",
	  "foreign keys", "instances row 3 names a missing services row" },
	{ "DROP TABLE routing",
	  "schema|one deploy in flight per service|deployment state = its last event|deployment finished_at"
	  "|routing names known versions|routing names known instances|release runs finished_at|traffic minutes"
	  "|maintenance rows",
	  "table routing is missing" },
	{ "PRAGMA user_version = 99",
	  "schema|one deploy in flight per service|deployment state = its last event|deployment finished_at"
	  "|routing names known versions|routing names known instances|release runs finished_at|traffic minutes"
	  "|maintenance rows",
	  "schema version 99: this cutover knows 1 to 5" },
};

static void test_check_finds_each_breakage(void **state)
{
	struct state_fixture *f = *state;
	char failed[512];
	size_t n;

	for (size_t i = 0; i < sizeof(breakages) / sizeof(breakages[0]); i++) {
		const struct breakage *b = &breakages[i];
		char first[64], *problem;

		state_close(f->st);
		nftw(f->dir, state_fixture_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		f->st = state_fixture_open(f->dir);
		populate(f->st);
		exec_ok(f->st, "PRAGMA foreign_keys = OFF");
		exec_ok(f->st, b->sql);
		failed_checks(f->st, failed, sizeof(failed), &n);
		if (strcmp(failed, b->check))
			fail_msg("case %zu (%s): failed checks '%s', expected '%s'", i, b->sql, failed, b->check);
		snprintf(first, sizeof(first), "%.*s", (int)strcspn(b->check, "|"), b->check);
		problem = first_problem(f->st, first);
		if (!problem || !strstr(problem, b->says))
			fail_msg("case %zu: check '%s' says '%s', expected it to say '%s'", i, first,
				 problem ? problem : "(nothing)", b->says);
		free(problem);
	}
}

/* Bytes of a closed database overwritten, or the file cut short: the
 * integrity check says so, through the connection `state check` uses. */
static void test_check_damaged_file(void **state)
{
	struct state_fixture *f = *state;
	char db[256], err[512], failed[512];
	struct state *st = NULL;
	struct stat sb;
	size_t n;
	int fd;

	populate(f->st);
	for (int i = 0; i < 300; i++) {
		struct state_audit_entry e = { .actor = "bob", .action = "deploy", .target = "shop", .result = "ok",
					       .detail = "a detail long enough to fill pages quickly, again and again" };
		assert_int_equal(state_audit_add(f->st, &e, NULL), 0);
	}
	f->st = state_close(f->st);
	snprintf(db, sizeof(db), "%s/state.db", f->dir);
	assert_int_equal(stat(db, &sb), 0);
	assert_true(sb.st_size > 8 * 4096);
	/* garbage over page 5 and 6 */
	fd = open(db, O_WRONLY);
	assert_true(fd >= 0);
	char junk[8192];
	memset(junk, 0x5a, sizeof(junk));
	assert_int_equal(pwrite(fd, junk, sizeof(junk), 4 * 4096), (ssize_t)sizeof(junk));
	close(fd);
	assert_int_equal(state_open_check(f->dir, &st, err, sizeof(err)), 0);
	failed_checks(st, failed, sizeof(failed), &n);
	assert_non_null(strstr(failed, "integrity"));
	state_close(st);
	/* cut to half */
	assert_int_equal(truncate(db, sb.st_size / 2), 0);
	assert_int_equal(state_open_check(f->dir, &st, err, sizeof(err)), 0);
	failed_checks(st, failed, sizeof(failed), &n);
	assert_non_null(strstr(failed, "integrity"));
	state_close(st);
	f->st = NULL;
	/* teardown closes NULL */
}

/* ---- backup --------------------------------------------------------------- */

static int64_t rows_of(const struct state_file_info *info, const char *table)
{
	for (size_t i = 0; i < info->ntables; i++)
		if (!strcmp(info->tables[i].name, table))
			return info->tables[i].rows;
	fail_msg("no table %s in the info", table);
	return -2;
}

static void test_backup_online(void **state)
{
	struct state_fixture *f = *state;
	struct state_file_info info = { 0 };
	struct state *writer = NULL, *copy = NULL;
	char file[256], side[300], err[512], head[20];
	int fd;

	populate(f->st);
	/* another connection holds a write transaction open, as the daemon's
	 * worker may: the backup neither waits for it nor sees its rows */
	writer = state_fixture_open(f->dir);
	exec_ok(writer, "BEGIN IMMEDIATE; INSERT INTO services (name, created_at) VALUES ('pending', 1)");
	snprintf(file, sizeof(file), "%s/backup.db", f->root);
	assert_int_equal(state_backup(f->dir, file, false, &info, err, sizeof(err)), 0);
	exec_ok(writer, "COMMIT");
	state_close(writer);
	assert_int_equal(info.schema_version, STATE_SCHEMA_VERSION);
	assert_int_equal(rows_of(&info, "services"), 1);
	assert_int_equal(rows_of(&info, "deployments"), 3);
	assert_int_equal(rows_of(&info, "deployment_events"), 8);
	assert_int_equal(rows_of(&info, "releases"), 3);
	assert_int_equal(rows_of(&info, "maintenance"), 1);
	assert_int_equal(rows_of(&info, "release_runs"), 1);
	assert_true(info.size_bytes > 0);
	/* one self-contained file: rollback journal (header bytes 18, 19 = 1),
	 * nothing beside it, no temporary file left */
	fd = open(file, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, head, sizeof(head)), (ssize_t)sizeof(head));
	close(fd);
	assert_int_equal(head[18], 1);
	assert_int_equal(head[19], 1);
	snprintf(side, sizeof(side), "%s-wal", file);
	assert_int_equal(access(side, F_OK), -1);
	assert_int_equal(state_open_raw(file, SQLITE_OPEN_READONLY, &copy, err, sizeof(err)), 0);
	assert_int_equal(query_int(copy, "SELECT count(*) FROM services WHERE name = 'pending'"), 0);
	assert_int_equal(query_int(copy, "SELECT count(*) FROM audit"), 1);
	state_close(copy);

	/* it exists now: refused without overwrite, replaced with */
	assert_int_equal(state_backup(f->dir, file, false, &info, err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, "give --force"));
	assert_int_equal(state_backup(f->dir, file, true, &info, err, sizeof(err)), 0);
	assert_int_equal(rows_of(&info, "services"), 2);
}

static void test_backup_failures_leave_nothing(void **state)
{
	struct state_fixture *f = *state;
	char file[256], err[512], missing[256];
	DIR *d;
	struct dirent *e;
	int entries = 0;

	snprintf(file, sizeof(file), "%s/nowhere/backup.db", f->root);
	assert_true(state_backup(f->dir, file, false, NULL, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "nowhere"));
	snprintf(missing, sizeof(missing), "%s/nostate", f->root);
	snprintf(file, sizeof(file), "%s/backup.db", f->root);
	assert_int_equal(state_backup(missing, file, false, NULL, err, sizeof(err)), -ENOENT);
	d = opendir(f->root);
	while ((e = readdir(d)))
		entries += e->d_name[0] != '.';
	closedir(d);
	assert_int_equal(entries, 1); /* state/ only */
}

/* ---- inspect and restore ---------------------------------------------------- */

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

/* A backup of the fixture's state at root/NAME, then SQL applied to it. */
static void backup_then(struct state_fixture *f, const char *name, const char *sql, char *file, size_t len)
{
	struct state *st = NULL;
	char err[512];

	snprintf(file, len, "%s/%s", f->root, name);
	assert_int_equal(state_backup(f->dir, file, true, NULL, err, sizeof(err)), 0);
	if (!sql)
		return;
	assert_int_equal(state_open_raw(file, SQLITE_OPEN_READWRITE, &st, err, sizeof(err)), 0);
	exec_ok(st, sql);
	state_close(st);
}

static void test_inspect_refusals(void **state)
{
	struct state_fixture *f = *state;
	struct state_file_info info;
	struct state *st = NULL;
	char file[256], err[512];

	populate(f->st);
	snprintf(file, sizeof(file), "%s/notes.txt", f->root);
	write_file(file, "these are not the droids\n");
	assert_int_equal(state_file_inspect(file, &info, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "is not a SQLite database"));
	snprintf(file, sizeof(file), "%s/empty", f->root);
	write_file(file, "");
	assert_int_equal(state_file_inspect(file, &info, err, sizeof(err)), -EINVAL);

	snprintf(file, sizeof(file), "%s/other.db", f->root);
	assert_int_equal(state_open_raw(file, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &st, err, sizeof(err)), 0);
	exec_ok(st, "CREATE TABLE songs (title TEXT); INSERT INTO songs VALUES ('so long')");
	state_close(st);
	assert_int_equal(state_file_inspect(file, &info, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a cutover state (it has no table services)"));

	backup_then(f, "newer.db", "PRAGMA user_version = 6", file, sizeof(file));
	assert_int_equal(state_file_inspect(file, &info, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "schema version 6 is newer than this cutover knows (5)"));

	backup_then(f, "orphan.db", "INSERT INTO instances (service, version, started_at, state)"
				    " VALUES ('nobody', '1', 1, 'stopped')", file, sizeof(file));
	assert_int_equal(state_file_inspect(file, &info, err, sizeof(err)), -EIO);
	assert_non_null(strstr(err, "is damaged: instances row"));

	backup_then(f, "good.db", NULL, file, sizeof(file));
	assert_int_equal(state_file_inspect(file, &info, err, sizeof(err)), 0);
	assert_int_equal(info.schema_version, STATE_SCHEMA_VERSION);
	assert_int_equal(rows_of(&info, "deployments"), 3);
	/* the same cut short */
	struct stat sb;
	assert_int_equal(stat(file, &sb), 0);
	assert_int_equal(truncate(file, sb.st_size / 2), 0);
	assert_true(state_file_inspect(file, &info, err, sizeof(err)) < 0);
	if (!strstr(err, "damaged"))
		fail_msg("a truncated file: %s", err);
}

static void test_restore(void **state)
{
	struct state_fixture *f = *state;
	struct state_restore_request req = { .dir = f->dir, .actor = "carol", .actor_uid = 1003, .env = "prod" };
	struct state_file_info info;
	char file[256], err[512], before[512], path[600];
	json_t *rows = NULL;

	populate(f->st);
	backup_then(f, "good.db", NULL, file, sizeof(file));
	req.file = file;
	/* the state is open (as a daemon has it): refused, nothing changed */
	assert_int_equal(state_restore(&req, &info, before, sizeof(before), err, sizeof(err)), -EBUSY);
	assert_non_null(strstr(err, "is in use"));
	/* after the backup: one more deployment, which the restore undoes */
	int64_t id;
	assert_int_equal(state_deployment_finish(f->st, 3, STATE_DEPLOYMENT_ABORTED, "gone"), 0);
	assert_int_equal(state_deployment_begin(f->st, "shop", "1.0.0", "1.2.0", "canary", NULL, &id), 0);
	f->st = state_close(f->st);

	assert_int_equal(state_restore(&req, &info, before, sizeof(before), err, sizeof(err)), 0);
	assert_int_equal(info.schema_version, STATE_SCHEMA_VERSION);
	assert_int_equal(rows_of(&info, "deployments"), 3);
	assert_int_equal(rows_of(&info, "audit"), 2); /* the one recorded, and the restore's */
	assert_non_null(strstr(before, "/state.db.before-restore-"));
	assert_int_equal(access(before, F_OK), 0);
	f->st = state_fixture_open(f->dir);
	assert_int_equal(query_int(f->st, "SELECT count(*) FROM deployments"), 3);
	assert_int_equal(query_int(f->st, "SELECT count(*) FROM deployments WHERE state = 'health-checking'"), 1);
	assert_int_equal(state_audit_list(f->st, NULL, &rows), 0);
	json_t *last = json_array_get(rows, 0);
	assert_string_equal(json_string_value(json_object_get(last, "action")), "state-restore");
	assert_string_equal(json_string_value(json_object_get(last, "actor")), "carol");
	assert_string_equal(json_string_value(json_object_get(last, "env")), "prod");
	json_decref(rows);
	f->st = state_close(f->st);
	/* the previous database, whole, with the deployment the restore undid */
	struct state *old = NULL;
	assert_int_equal(state_open_raw(before, SQLITE_OPEN_READONLY, &old, err, sizeof(err)), 0);
	assert_int_equal(query_int(old, "SELECT count(*) FROM deployments"), 4);
	state_close(old);

	/* refusals leave the state as it is */
	snprintf(path, sizeof(path), "%s/notes.txt", f->root);
	write_file(path, "hello\n");
	req.file = path;
	assert_int_equal(state_restore(&req, &info, before, sizeof(before), err, sizeof(err)), -EINVAL);
	backup_then(f, "newer.db", "PRAGMA user_version = 6", path, sizeof(path));
	req.file = path;
	assert_int_equal(state_restore(&req, &info, before, sizeof(before), err, sizeof(err)), -EPROTO);
	f->st = state_fixture_open(f->dir);
	assert_int_equal(query_int(f->st, "SELECT count(*) FROM audit WHERE action = 'state-restore'"), 1);
	/* no temporary file left in the state directory */
	DIR *d = opendir(f->dir);
	struct dirent *e;
	while ((e = readdir(d)))
		if (strstr(e->d_name, ".restore-"))
			fail_msg("left behind: %s", e->d_name);
	closedir(d);
}

/* A backup of an older schema (4: no maintenance, no traffic_minutes) is
 * accepted, and migrated by the restore. */
static void test_restore_older_schema(void **state)
{
	struct state_fixture *f = *state;
	struct state_restore_request req = { .dir = f->dir, .actor = "carol" };
	struct state_file_info info;
	char file[256], err[512], before[512];

	populate(f->st);
	backup_then(f, "v4.db", "DROP TABLE maintenance; DROP TABLE traffic_minutes; PRAGMA user_version = 4", file,
		    sizeof(file));
	assert_int_equal(state_file_inspect(file, &info, err, sizeof(err)), 0);
	assert_int_equal(info.schema_version, 4);
	assert_int_equal(rows_of(&info, "maintenance"), -1);
	f->st = state_close(f->st);
	req.file = file;
	assert_int_equal(state_restore(&req, &info, before, sizeof(before), err, sizeof(err)), 0);
	assert_int_equal(info.schema_version, STATE_SCHEMA_VERSION);
	assert_int_equal(rows_of(&info, "maintenance"), 0);
	f->st = state_fixture_open(f->dir);
	assert_int_equal(query_int(f->st, "SELECT count(*) FROM audit WHERE action = 'state-restore'"
					  " AND detail = 'migrated to this schema'"), 1);
}

/* Into an empty directory (a new machine): nothing to keep aside. */
static void test_restore_fresh_dir(void **state)
{
	struct state_fixture *f = *state;
	char file[256], err[512], before[512] = "x", fresh[256];
	struct state_file_info info;

	populate(f->st);
	backup_then(f, "good.db", NULL, file, sizeof(file));
	snprintf(fresh, sizeof(fresh), "%s/new/state", f->root);
	struct state_restore_request req = { .dir = fresh, .file = file, .actor = "root" };
	assert_int_equal(state_restore(&req, &info, before, sizeof(before), err, sizeof(err)), 0);
	assert_string_equal(before, "");
	struct state *st = state_fixture_open(fresh);
	assert_int_equal(query_int(st, "SELECT count(*) FROM deployments"), 3);
	state_close(st);
}

/* ---- maintenance rows --------------------------------------------------------- */

static void test_maintenance_rows(void **state)
{
	struct state_fixture *f = *state;
	struct state_maintenance m = { .service = "shop", .since = 1000, .started_by = "alice", .retry_after = 120 };
	struct state_maintenance *rows = NULL;
	size_t n = 0;
	char *big = malloc(STATE_MAINTENANCE_PAGE_MAX + 2);

	assert_int_equal(state_maintenance_set(f->st, &m), 0);
	m.page = "<h1>back soon</h1>";
	snprintf(m.service, sizeof(m.service), "api");
	m.since = 0; /* now */
	assert_int_equal(state_maintenance_set(f->st, &m), 0);
	assert_int_equal(state_maintenance_list(f->st, &rows, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(rows[0].service, "api");
	assert_string_equal(rows[0].page, "<h1>back soon</h1>");
	assert_true(rows[0].since > 1000);
	assert_string_equal(rows[1].service, "shop");
	assert_null(rows[1].page);
	assert_int_equal(rows[1].since, 1000);
	assert_int_equal(rows[1].retry_after, 120);
	state_maintenance_array_free(rows, n);
	/* on again: replaced */
	m.retry_after = 30;
	assert_int_equal(state_maintenance_set(f->st, &m), 0);
	assert_int_equal(query_int(f->st, "SELECT retry_after FROM maintenance WHERE service = 'api'"), 30);
	/* refused */
	m.retry_after = 0;
	assert_int_equal(state_maintenance_set(f->st, &m), -EINVAL);
	m.retry_after = 86401;
	assert_int_equal(state_maintenance_set(f->st, &m), -EINVAL);
	m.retry_after = 10;
	memset(big, 'x', STATE_MAINTENANCE_PAGE_MAX + 1);
	big[STATE_MAINTENANCE_PAGE_MAX + 1] = 0;
	m.page = big;
	assert_int_equal(state_maintenance_set(f->st, &m), -EINVAL);
	big[STATE_MAINTENANCE_PAGE_MAX] = 0;
	assert_int_equal(state_maintenance_set(f->st, &m), 0);
	m.service[0] = 0;
	assert_int_equal(state_maintenance_set(f->st, &m), -EINVAL);
	free(big);
	/* off */
	assert_int_equal(state_maintenance_delete(f->st, "api"), 0);
	assert_int_equal(state_maintenance_delete(f->st, "api"), -ENOENT);
	assert_int_equal(query_int(f->st, "SELECT count(*) FROM maintenance"), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_check_clean, state_fixture_setup, state_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_check_finds_each_breakage, state_fixture_setup, state_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_check_damaged_file, state_fixture_setup, state_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_backup_online, state_fixture_setup, state_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_backup_failures_leave_nothing, state_fixture_setup, state_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_inspect_refusals, state_fixture_setup, state_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_restore, state_fixture_setup, state_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_restore_older_schema, state_fixture_setup, state_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_restore_fresh_dir, state_fixture_setup, state_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_maintenance_rows, state_fixture_setup, state_fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_state.c - unit tests for the durable state (src/state).
 *
 * Each test works in its own temporary state directory and removes it at
 * the end.  Beyond each table's queries, the tests check the properties the
 * daemon's crash recovery stands on: migrations are idempotent and refuse a
 * newer schema, the journal is WAL, a second connection's writer waits for
 * the lock instead of failing, and whatever a process committed before a
 * SIGKILL is there when the database is opened again.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

#include "base/util.h"
#include "state/state-internal.h"

#include "state-fixture.h"

static int64_t query_int(struct state *st, const char *sql)
{
	sqlite3_stmt *stmt;
	int64_t v;

	assert_int_equal(sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	v = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	return v;
}

static void query_text(struct state *st, const char *sql, char *out, size_t outlen)
{
	sqlite3_stmt *stmt;

	assert_int_equal(sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	snprintf(out, outlen, "%s", (const char *)sqlite3_column_text(stmt, 0));
	sqlite3_finalize(stmt);
}

/* ---- opening and migrations ---------------------------------------------- */

static void test_migrate_from_empty(void **state)
{
	struct state_fixture *f = *state;
	struct stat sb;
	static const char *const tables[] = { "services", "releases", "instances", "deployments",
					      "deployment_events", "audit", "routing" };
	char sql[160];

	assert_int_equal(stat(f->dir, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0700);
	assert_int_equal(state_schema_version(f->st), STATE_SCHEMA_VERSION);
	for (size_t i = 0; i < ARRAY_SIZE(tables); i++) {
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '%s'",
			 tables[i]);
		if (query_int(f->st, sql) != 1)
			fail_msg("table %s missing", tables[i]);
	}
	assert_int_equal(query_int(f->st, "PRAGMA foreign_keys"), 1);
	assert_int_equal(query_int(f->st, "PRAGMA busy_timeout"), 5000);
	assert_int_equal(query_int(f->st, "PRAGMA synchronous"), 2); /* FULL */
}

static void test_wal_mode(void **state)
{
	struct state_fixture *f = *state;
	char mode[16], path[128];

	query_text(f->st, "PRAGMA journal_mode", mode, sizeof(mode));
	assert_string_equal(mode, "wal");
	assert_int_equal(state_service_ensure(f->st, "shop"), 0);
	snprintf(path, sizeof(path), "%s/state.db-wal", f->dir);
	assert_int_equal(access(path, F_OK), 0);
}

static void test_reopen_idempotent(void **state)
{
	struct state_fixture *f = *state;
	int64_t objects;

	assert_int_equal(state_service_ensure(f->st, "shop"), 0);
	objects = query_int(f->st, "SELECT count(*) FROM sqlite_master");
	f->st = state_close(f->st);
	for (int i = 0; i < 3; i++) {
		f->st = state_fixture_open(f->dir);
		assert_int_equal(state_schema_version(f->st), STATE_SCHEMA_VERSION);
		assert_int_equal(query_int(f->st, "SELECT count(*) FROM sqlite_master"), objects);
		assert_int_equal(query_int(f->st, "SELECT count(*) FROM services"), 1);
		f->st = state_close(f->st);
	}
	f->st = state_fixture_open(f->dir);
}

static void test_newer_schema_refused(void **state)
{
	struct state_fixture *f = *state;
	struct state *st = (struct state *)0x1;
	char err[512];

	assert_int_equal(sqlite3_exec(f->st->db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	f->st = state_close(f->st);
	assert_int_equal(state_open(f->dir, &st, err, sizeof(err)), -EPROTO);
	assert_ptr_equal(st, (struct state *)0x1); /* untouched */
	assert_non_null(strstr(err, "state.db"));
	assert_non_null(strstr(err, "schema version 99 is newer"));
	assert_non_null(strstr(err, "(5)"));
	/* back to a version we know: opens again */
	{
		sqlite3 *db;
		char path[128];

		snprintf(path, sizeof(path), "%s/state.db", f->dir);
		assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
		assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 3", NULL, NULL, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_exec(db,
					      "DROP TABLE maintenance; DROP TABLE traffic_minutes;"
					      "DROP INDEX audit_release; ALTER TABLE audit DROP COLUMN env;"
					      "ALTER TABLE audit DROP COLUMN release_id; DROP TABLE release_runs;"
					      "ALTER TABLE deployments DROP COLUMN release_id; ALTER TABLE deployments DROP COLUMN env",
					      NULL, NULL, NULL),
				 SQLITE_OK);
		sqlite3_close(db);
	}
	f->st = state_fixture_open(f->dir);
}

static void test_not_a_database(void **state)
{
	struct state_fixture *f = *state;
	char dir[128], path[160], err[512];
	struct state *st = NULL;
	FILE *fp;

	snprintf(dir, sizeof(dir), "%s/junk", f->dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/state.db", dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("this is not SQLite, just text that is long enough to have a header............\n", fp);
	fclose(fp);
	assert_true(state_open(dir, &st, err, sizeof(err)) < 0);
	assert_null(st);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "not a database"));
	/* an empty path and an uncreatable directory */
	assert_int_equal(state_open("", &st, err, sizeof(err)), -EINVAL);
	assert_true(state_open("/proc/cutover-no/state", &st, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "/proc/cutover-no/state"));
}

static void test_names(void **state)
{
	(void)state;
	for (int i = 0; i < STATE_INSTANCE__COUNT; i++)
		assert_int_equal(state_instance_state_parse(state_instance_state_name(i)), i);
	for (int i = 0; i < STATE_DEPLOYMENT__COUNT; i++)
		assert_int_equal(state_deployment_state_parse(state_deployment_state_name(i)), i);
	assert_string_equal(state_deployment_state_name(STATE_DEPLOYMENT_HEALTH_CHECKING), "health-checking");
	assert_string_equal(state_deployment_state_name(STATE_DEPLOYMENT_ROLLED_BACK), "rolled-back");
	assert_int_equal(state_deployment_state_parse("rolled_back"), -EINVAL);
	assert_int_equal(state_instance_state_parse(NULL), -EINVAL);
	assert_false(state_deployment_state_terminal(STATE_DEPLOYMENT_DRAINING));
	assert_true(state_deployment_state_terminal(STATE_DEPLOYMENT_ABORTED));

	char buf[40];
	state_format_time(1795322934123, buf, sizeof(buf));
	assert_string_equal(buf, "2026-11-22T04:48:54.123Z");
	state_format_time(0, buf, sizeof(buf));
	assert_string_equal(buf, "-");
}

/* ---- releases ------------------------------------------------------------ */

static struct state_release make_release(const char *service, const char *version, char digit)
{
	struct state_release r = { 0 };

	snprintf(r.service, sizeof(r.service), "%s", service);
	snprintf(r.version, sizeof(r.version), "%s", version);
	memset(r.digest, digit, STATE_DIGEST_HEX);
	r.digest[STATE_DIGEST_HEX] = '\0';
	r.path = (char *)"/store/shop/dddd";
	r.size_bytes = 1234;
	return r;
}

static void test_releases(void **state)
{
	struct state_fixture *f = *state;
	struct state_release rel = make_release("shop", "1.0.0", 'a'), got = { 0 }, *items = NULL;
	int64_t id1 = 0, id2 = 0, id3 = 0;
	size_t n = 0;

	rel.created_at = 1000;
	assert_int_equal(state_release_add(f->st, &rel, &id1), 0);
	assert_true(id1 > 0);
	rel = make_release("shop", "1.1.0", 'b');
	rel.created_at = 2000;
	assert_int_equal(state_release_add(f->st, &rel, &id2), 0);
	rel = make_release("cart", "1.0.0", 'c');
	assert_int_equal(state_release_add(f->st, &rel, &id3), 0);
	/* (service, version) is unique */
	rel = make_release("shop", "1.0.0", 'e');
	assert_int_equal(state_release_add(f->st, &rel, NULL), -EEXIST);
	/* bad arguments never reach SQL */
	rel = make_release("shop", "2.0.0", 'e');
	rel.digest[10] = '\0';
	assert_int_equal(state_release_add(f->st, &rel, NULL), -EINVAL);

	assert_int_equal(state_release_get(f->st, "shop", "1.1.0", &got), 0);
	assert_int_equal(got.id, id2);
	assert_string_equal(got.service, "shop");
	assert_string_equal(got.version, "1.1.0");
	assert_int_equal(got.digest[0], 'b');
	assert_int_equal(strlen(got.digest), 64);
	assert_string_equal(got.path, "/store/shop/dddd");
	assert_int_equal(got.size_bytes, 1234);
	assert_int_equal(got.created_at, 2000);
	state_release_clear(&got);
	assert_int_equal(state_release_get(f->st, "shop", "9.9.9", &got), -ENOENT);

	assert_int_equal(state_release_list(f->st, "shop", &items, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(items[0].version, "1.0.0"); /* oldest first */
	assert_string_equal(items[1].version, "1.1.0");
	state_release_array_free(items, n);
	assert_int_equal(state_release_list(f->st, "nothing", &items, &n), 0);
	assert_int_equal(n, 0);
	state_release_array_free(items, n);

	/* the service rows came with the releases */
	assert_int_equal(query_int(f->st, "SELECT count(*) FROM services"), 2);
	/* delete returns how many rows still share the path: 1.1.0 and cart */
	assert_int_equal(state_release_delete(f->st, id1), 2);
	assert_int_equal(state_release_delete(f->st, id1), -ENOENT);
	assert_int_equal(state_release_get(f->st, "shop", "1.0.0", &got), -ENOENT);
}

/* ---- instances ----------------------------------------------------------- */

static void test_instances(void **state)
{
	struct state_fixture *f = *state;
	struct state_instance inst = { 0 }, got = { 0 }, *items = NULL;
	struct state_release rel = make_release("shop", "1.0.0", 'a');
	int64_t rid = 0, id1 = 0, id2 = 0, id3 = 0;
	size_t n = 0;

	assert_int_equal(state_release_add(f->st, &rel, &rid), 0);
	snprintf(inst.service, sizeof(inst.service), "shop");
	snprintf(inst.version, sizeof(inst.version), "1.0.0");
	inst.release_id = rid;
	inst.pid = 4242;
	inst.pgid = 4242;
	inst.port = 40001;
	inst.start_time_ticks = 987654321;
	inst.state = STATE_INSTANCE_STARTING;
	inst.log_path = (char *)"/var/lib/cutover/logs/shop-1.log";
	assert_int_equal(state_instance_add(f->st, &inst, &id1), 0);
	inst.pid = 4243;
	inst.port = 40002;
	inst.log_path = NULL;
	assert_int_equal(state_instance_add(f->st, &inst, &id2), 0);
	snprintf(inst.service, sizeof(inst.service), "cart");
	assert_int_equal(state_instance_add(f->st, &inst, &id3), 0);

	assert_int_equal(state_instance_get(f->st, id1, &got), 0);
	assert_int_equal(got.id, id1);
	assert_string_equal(got.service, "shop");
	assert_int_equal(got.release_id, rid);
	assert_int_equal(got.pid, 4242);
	assert_int_equal(got.pgid, 4242);
	assert_int_equal(got.port, 40001);
	assert_int_equal(got.start_time_ticks, 987654321);
	assert_true(got.started_at > 0);
	assert_int_equal(got.state, STATE_INSTANCE_STARTING);
	assert_int_equal(got.restarts, 0);
	assert_string_equal(got.log_path, "/var/lib/cutover/logs/shop-1.log");

	/* update every mutable field */
	got.state = STATE_INSTANCE_HEALTHY;
	got.restarts = 3;
	got.pid = 5000;
	got.start_time_ticks = 111;
	assert_int_equal(state_instance_update(f->st, &got), 0);
	state_instance_clear(&got);
	assert_int_equal(state_instance_get(f->st, id1, &got), 0);
	assert_int_equal(got.state, STATE_INSTANCE_HEALTHY);
	assert_int_equal(got.restarts, 3);
	assert_int_equal(got.pid, 5000);
	assert_int_equal(got.start_time_ticks, 111);
	got.id = 999999;
	assert_int_equal(state_instance_update(f->st, &got), -ENOENT);
	state_instance_clear(&got);

	assert_int_equal(state_instance_set_state(f->st, id2, STATE_INSTANCE_STOPPED), 0);
	assert_int_equal(state_instance_set_state(f->st, 999999, STATE_INSTANCE_STOPPED), -ENOENT);
	assert_int_equal(state_instance_set_state(f->st, id2, STATE_INSTANCE__COUNT), -EINVAL);

	assert_int_equal(state_instance_list_live(f->st, "shop", &items, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(items[0].id, id1);
	state_instance_array_free(items, n);
	assert_int_equal(state_instance_list_live(f->st, NULL, &items, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(items[0].id, id1);
	assert_int_equal(items[1].id, id3);
	state_instance_array_free(items, n);

	/* without a release_id: the release row of its version, if there is one */
	inst.release_id = 0;
	assert_int_equal(state_instance_add(f->st, &inst, &id3), 0); /* cart 1.0.0: no release */
	assert_int_equal(state_instance_get(f->st, id3, &got), 0);
	assert_int_equal(got.release_id, 0);
	state_instance_clear(&got);
	snprintf(inst.service, sizeof(inst.service), "shop");
	assert_int_equal(state_instance_add(f->st, &inst, &id3), 0);
	assert_int_equal(state_instance_get(f->st, id3, &got), 0);
	assert_int_equal(got.release_id, rid);
	state_instance_clear(&got);
	assert_int_equal(state_instance_set_state(f->st, id3, STATE_INSTANCE_STOPPED), 0);

	/* pruning the release keeps the instance rows, without the link */
	assert_int_equal(state_release_delete(f->st, rid), 0);
	assert_int_equal(state_instance_get(f->st, id1, &got), 0);
	assert_int_equal(got.release_id, 0);
	state_instance_clear(&got);
}

static void test_process_identity(void **state)
{
	struct state_instance self = { 0 };
	uint64_t ticks = 0, again = 0;

	(void)state;
	assert_int_equal(state_process_start_time(getpid(), &ticks), 0);
	assert_true(ticks > 0);
	assert_int_equal(state_process_start_time(getpid(), &again), 0);
	assert_int_equal(ticks, again);
	assert_int_equal(state_process_start_time(0, &ticks), -EINVAL);
	assert_int_equal(state_process_start_time(0x3fffffff, &ticks), -ENOENT);

	self.pid = getpid();
	assert_int_equal(state_process_start_time(getpid(), &self.start_time_ticks), 0);
	assert_true(state_instance_process_alive(&self));
	self.start_time_ticks++; /* a recycled pid: another start time */
	assert_false(state_instance_process_alive(&self));
	self.pid = 0;
	assert_false(state_instance_process_alive(&self));
}

/* ---- deployments ---------------------------------------------------------- */

static void test_deployments(void **state)
{
	struct state_fixture *f = *state;
	struct state_deployment d = { 0 }, *items = NULL;
	struct state_deployment_event *events = NULL;
	int64_t id = 0, id2 = 0;
	size_t n = 0;

	assert_int_equal(state_deployment_begin(f->st, "shop", "1.0.0", "1.1.0", "blue-green", "green on :40002", &id),
			 0);
	assert_int_equal(state_deployment_transition(f->st, id, STATE_DEPLOYMENT_HEALTH_CHECKING, NULL), 0);
	assert_int_equal(state_deployment_transition(f->st, id, STATE_DEPLOYMENT_SWITCHING, "100%"), 0);
	assert_int_equal(state_deployment_transition(f->st, id, STATE_DEPLOYMENT_SWITCHED, NULL), 0);
	assert_int_equal(state_deployment_transition(f->st, id, STATE_DEPLOYMENT_DRAINING, "blue"), 0);
	/* terminal states go through finish, and only once */
	assert_int_equal(state_deployment_transition(f->st, id, STATE_DEPLOYMENT_DONE, NULL), -EINVAL);
	assert_int_equal(state_deployment_finish(f->st, id, STATE_DEPLOYMENT_SWITCHED, NULL), -EINVAL);
	assert_int_equal(state_deployment_finish(f->st, id, STATE_DEPLOYMENT_DONE, NULL), 0);
	assert_int_equal(state_deployment_finish(f->st, id, STATE_DEPLOYMENT_FAILED, "again"), -EINVAL);
	assert_int_equal(state_deployment_transition(f->st, id, STATE_DEPLOYMENT_SWITCHING, NULL), -EINVAL);
	assert_int_equal(state_deployment_transition(f->st, 424242, STATE_DEPLOYMENT_SWITCHING, NULL), -ENOENT);

	assert_int_equal(state_deployment_get(f->st, id, &d), 0);
	assert_string_equal(d.service, "shop");
	assert_string_equal(d.from_version, "1.0.0");
	assert_string_equal(d.to_version, "1.1.0");
	assert_string_equal(d.strategy, "blue-green");
	assert_int_equal(d.state, STATE_DEPLOYMENT_DONE);
	assert_null(d.reason);
	assert_true(d.finished_at >= d.started_at && d.started_at > 0);
	state_deployment_clear(&d);

	/* every transition, in order */
	assert_int_equal(state_deployment_events(f->st, id, &events, &n), 0);
	assert_int_equal(n, 6);
	assert_int_equal(events[0].from_state, -1);
	assert_int_equal(events[0].to_state, STATE_DEPLOYMENT_STARTING);
	assert_string_equal(events[0].detail, "green on :40002");
	{
		static const enum state_deployment_state order[] = {
			STATE_DEPLOYMENT_STARTING, STATE_DEPLOYMENT_HEALTH_CHECKING, STATE_DEPLOYMENT_SWITCHING,
			STATE_DEPLOYMENT_SWITCHED, STATE_DEPLOYMENT_DRAINING,        STATE_DEPLOYMENT_DONE,
		};
		for (size_t i = 1; i < n; i++) {
			assert_int_equal(events[i].from_state, order[i - 1]);
			assert_int_equal(events[i].to_state, order[i]);
			assert_true(events[i].at >= events[i - 1].at);
			assert_true(events[i].id > events[i - 1].id);
		}
	}
	assert_string_equal(events[2].detail, "100%");
	assert_null(events[3].detail);
	state_deployment_event_array_free(events, n);

	/* a second one, first deploy (no from), left in flight */
	assert_int_equal(state_deployment_begin(f->st, "cart", NULL, "2.0.0", "blue-green", NULL, &id2), 0);
	assert_int_equal(state_deployment_transition(f->st, id2, STATE_DEPLOYMENT_HEALTH_CHECKING, NULL), 0);
	assert_int_equal(state_deployment_list_in_flight(f->st, NULL, &items, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(items[0].id, id2);
	assert_string_equal(items[0].from_version, "");
	assert_int_equal(items[0].state, STATE_DEPLOYMENT_HEALTH_CHECKING);
	assert_int_equal(items[0].finished_at, 0);
	state_deployment_array_free(items, n);
	assert_int_equal(state_deployment_list_in_flight(f->st, "shop", &items, &n), 0);
	assert_int_equal(n, 0);
	state_deployment_array_free(items, n);

	/* recovery aborts it with the reason */
	assert_int_equal(state_deployment_finish(f->st, id2, STATE_DEPLOYMENT_ABORTED,
						 "daemon restarted during health-checking"), 0);
	assert_int_equal(state_deployment_get(f->st, id2, &d), 0);
	assert_int_equal(d.state, STATE_DEPLOYMENT_ABORTED);
	assert_string_equal(d.reason, "daemon restarted during health-checking");
	state_deployment_clear(&d);

	assert_int_equal(state_deployment_list(f->st, NULL, 0, &items, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(items[0].id, id2); /* newest first */
	state_deployment_array_free(items, n);
	assert_int_equal(state_deployment_list(f->st, NULL, 1, &items, &n), 0);
	assert_int_equal(n, 1);
	state_deployment_array_free(items, n);

	assert_int_equal(state_deployment_begin(f->st, "shop", NULL, "", "blue-green", NULL, &id), -EINVAL);
}

static void test_history(void **state)
{
	struct state_fixture *f = *state;
	json_t *h = NULL, *e, *ev;
	int64_t id1, id2;

	assert_int_equal(state_deployment_begin(f->st, "shop", NULL, "1.0.0", "blue-green", NULL, &id1), 0);
	assert_int_equal(state_deployment_finish(f->st, id1, STATE_DEPLOYMENT_DONE, NULL), 0);
	assert_int_equal(state_deployment_begin(f->st, "shop", "1.0.0", "1.2.0", "blue-green", NULL, &id2), 0);
	assert_int_equal(state_deployment_transition(f->st, id2, STATE_DEPLOYMENT_SWITCHED, NULL), 0);
	assert_int_equal(state_deployment_finish(f->st, id2, STATE_DEPLOYMENT_ROLLED_BACK, "error rate 12% > 5%"), 0);
	assert_int_equal(state_deployment_begin(f->st, "cart", NULL, "3.0.0", "blue-green", NULL, NULL), 0);

	assert_int_equal(state_history(f->st, &(struct state_log_filter){ .service = "shop" }, &h), 0);
	assert_int_equal(json_array_size(h), 2);
	e = json_array_get(h, 0);
	assert_int_equal(json_integer_value(json_object_get(e, "id")), id2);
	assert_string_equal(json_string_value(json_object_get(e, "state")), "rolled-back");
	assert_string_equal(json_string_value(json_object_get(e, "reason")), "error rate 12% > 5%");
	assert_string_equal(json_string_value(json_object_get(e, "from_version")), "1.0.0");
	assert_true(json_is_integer(json_object_get(e, "duration_ms")));
	assert_int_equal(json_array_size(json_object_get(e, "events")), 3);
	ev = json_array_get(json_object_get(e, "events"), 2);
	assert_string_equal(json_string_value(json_object_get(ev, "from_state")), "switched");
	assert_string_equal(json_string_value(json_object_get(ev, "to_state")), "rolled-back");
	e = json_array_get(h, 1);
	assert_true(json_is_null(json_object_get(e, "from_version")));
	json_decref(h);

	assert_int_equal(state_history(f->st, &(struct state_log_filter){ .limit = 2 }, &h), 0);
	assert_int_equal(json_array_size(h), 2);
	e = json_array_get(h, 0);
	assert_string_equal(json_string_value(json_object_get(e, "service")), "cart");
	assert_true(json_is_null(json_object_get(e, "finished_at")));
	assert_true(json_is_null(json_object_get(e, "duration_ms")));
	json_decref(h);
}

/* ---- the lineage: what `cutover rollback` goes back to ------------------ */

/* A finished deployment as "KIND VERSION STATE", KIND deploy, restart (from
 * and to VERSION) or rollback. */
static void parse_row(const char *text, struct state_deployment *d)
{
	char kind[16], state_name[32];

	memset(d, 0, sizeof(*d));
	assert_int_equal(sscanf(text, "%15s %127s %31s", kind, d->to_version, state_name), 3);
	snprintf(d->strategy, sizeof(d->strategy), "%s", strcmp(kind, "rollback") ? "blue-green" : "rollback");
	if (!strcmp(kind, "restart"))
		snprintf(d->from_version, sizeof(d->from_version), "%s", d->to_version);
	assert_true(state_deployment_state_parse(state_name) >= 0);
	d->state = (enum state_deployment_state)state_deployment_state_parse(state_name);
	d->finished_at = 1;
}

static const struct lineage_case {
	const char *name;
	const char *rows[8];          /* finished deployments, oldest first */
	const char *live;             /* NULL: nothing runs */
	const char *target;           /* NULL: none */
	const char *why;              /* in the sentence of state_lineage_explain() */
} lineage_cases[] = {
	{ "nothing deployed", { NULL }, NULL, NULL, "no deploy of it has finished yet" },
	{ "one version", { "deploy 1.0.0 done" }, "1.0.0", NULL, "1.0.0 is the first version it ran" },
	{ "the version before", { "deploy 1.0.0 done", "deploy 1.1.0 done" }, "1.1.0", "1.0.0",
	  "can roll back to 1.0.0" },
	{ "a second rollback steps back again",
	  { "deploy 1.0.0 done", "deploy 1.1.0 done", "deploy 1.2.0 done", "rollback 1.1.0 done" },
	  "1.1.0", "1.0.0", "" },
	{ "a third one: nothing older",
	  { "deploy 1.0.0 done", "deploy 1.1.0 done", "deploy 1.2.0 done", "rollback 1.1.0 done",
	    "rollback 1.0.0 done" }, "1.0.0", NULL, "1.0.0 is the first version it ran" },
	{ "after an automatic rollback",
	  { "deploy 1.0.0 done", "deploy 1.1.0 done", "deploy 1.2.0 rolled-back" }, "1.1.0", "1.0.0", "" },
	{ "an instant rollback an older cutover recorded as rolled-back",
	  { "deploy 1.0.0 done", "deploy 1.1.0 done", "deploy 1.2.0 done", "rollback 1.1.0 rolled-back" },
	  "1.1.0", "1.0.0", "" },
	{ "failed and aborted deploys never served",
	  { "deploy 1.0.0 done", "deploy 1.1.0 failed", "deploy 1.2.0 aborted", "rollback 0.9.0 failed" },
	  "1.0.0", NULL, "1.0.0 is the first version it ran" },
	{ "a restart is not a version before",
	  { "deploy 1.0.0 done", "deploy 1.1.0 done", "restart 1.1.0 done" }, "1.1.0", "1.0.0", "" },
	{ "an older version deployed by name: back to the one it replaced",
	  { "deploy 1.0.0 done", "deploy 1.1.0 done", "deploy 1.0.0 done" }, "1.0.0", "1.1.0", "" },
	{ "then rolled back: the version before that",
	  { "deploy 1.0.0 done", "deploy 1.1.0 done", "deploy 1.0.0 done", "rollback 1.1.0 done" },
	  "1.1.0", "1.0.0", "" },
	{ "a recreate that failed and its old version started again",
	  { "deploy 1.0.0 done", "deploy 1.1.0 failed", "rollback 1.0.0 done" }, "1.0.0", NULL, "first version" },
	{ "the live version never finished a deploy (it survived an aborted one)",
	  { "deploy 1.0.0 done", "deploy 1.1.0 done", "deploy 1.2.0 aborted" }, "1.2.0", "1.1.0", "" },
	{ "nothing runs: the last version that served",
	  { "deploy 1.0.0 done", "deploy 1.1.0 done" }, NULL, "1.1.0", "" },
	{ "rolled back without a row (the routing alone): not forward again",
	  { "deploy 1.0.0 done", "deploy 1.1.0 done" }, "1.0.0", NULL, "first version" },
	{ "a rollback to a version forgotten serves on top",
	  { "deploy 1.0.0 done", "rollback 0.9.0 done" }, "0.9.0", "1.0.0", "" },
};

static void test_lineage(void **state UNUSED)
{
	for (size_t i = 0; i < sizeof(lineage_cases) / sizeof(lineage_cases[0]); i++) {
		const struct lineage_case *c = &lineage_cases[i];
		struct state_lineage *l = calloc(1, sizeof(*l));
		struct state_deployment d;
		const char *got;
		char why[400];

		assert_non_null(l);
		for (size_t k = 0; k < 8 && c->rows[k]; k++) {
			parse_row(c->rows[k], &d);
			state_lineage_apply(l, &d);
		}
		got = state_lineage_rollback_target(l, c->live);
		state_lineage_explain(l, "shop", c->live, why, sizeof(why));
		if ((got == NULL) != (c->target == NULL) || (got && strcmp(got, c->target)) || !strstr(why, c->why))
			fail_msg("case \"%s\": target %s (want %s), \"%s\" (want \"...%s...\")", c->name,
				 got ? got : "none", c->target ? c->target : "none", why, c->why);
		free(l);
	}
}

/* Only the last STATE_LINEAGE_MAX versions are kept: the rollbacks step
 * back through them, then say why there is nothing older. */
static void test_lineage_bounded(void **state UNUSED)
{
	struct state_lineage *l = calloc(1, sizeof(*l));
	struct state_deployment d;
	char row[64], why[400];

	assert_non_null(l);
	for (int v = 0; v < STATE_LINEAGE_MAX + 10; v++) {
		snprintf(row, sizeof(row), "deploy 1.%d.0 done", v);
		parse_row(row, &d);
		state_lineage_apply(l, &d);
	}
	assert_int_equal(l->n, STATE_LINEAGE_MAX);
	assert_true(l->forgot);
	for (int v = STATE_LINEAGE_MAX + 8; v >= 10; v--) {
		char want[32];
		snprintf(want, sizeof(want), "1.%d.0", v);
		assert_string_equal(state_lineage_rollback_target(l, l->versions[l->n - 1]), want);
		snprintf(row, sizeof(row), "rollback 1.%d.0 done", v);
		parse_row(row, &d);
		state_lineage_apply(l, &d);
	}
	assert_null(state_lineage_rollback_target(l, "1.10.0"));
	state_lineage_explain(l, "shop", "1.10.0", why, sizeof(why));
	assert_non_null(strstr(why, "remembers the last 64 versions that served, and none before 1.10.0"));
	free(l);
}

/* The lineage read from the recorded deployments is the one applied row by
 * row; rows are read as cutover records them now, with what they are. */
static void test_lineage_read_and_kinds(void **state)
{
	struct state_fixture *f = *state;
	struct state_lineage *l = calloc(1, sizeof(*l));
	struct state_deployment *items = NULL;
	json_t *h = NULL, *e;
	int64_t id;
	size_t n = 0;

	assert_non_null(l);
	assert_int_equal(state_lineage_read(f->st, "shop", l), 0);
	assert_int_equal(l->n, 0);
	assert_int_equal(state_deployment_begin(f->st, "shop", NULL, "1.0.0", "blue-green", NULL, &id), 0);
	assert_int_equal(state_deployment_finish(f->st, id, STATE_DEPLOYMENT_DONE, NULL), 0);
	assert_int_equal(state_deployment_begin(f->st, "shop", "1.0.0", "1.1.0", "blue-green", NULL, &id), 0);
	assert_int_equal(state_deployment_finish(f->st, id, STATE_DEPLOYMENT_DONE, NULL), 0);
	assert_int_equal(state_deployment_begin(f->st, "shop", "1.1.0", "1.1.0", "blue-green", "restart", &id), 0);
	assert_int_equal(state_deployment_finish(f->st, id, STATE_DEPLOYMENT_DONE, NULL), 0);
	assert_int_equal(state_deployment_begin(f->st, "shop", "1.1.0", "1.2.0", "blue-green", NULL, &id), 0);
	assert_int_equal(state_deployment_finish(f->st, id, STATE_DEPLOYMENT_DONE, NULL), 0);
	/* an instant rollback as an older cutover recorded it */
	assert_int_equal(state_deployment_begin(f->st, "shop", "1.2.0", "1.1.0", "rollback", NULL, &id), 0);
	assert_int_equal(state_deployment_transition(f->st, id, STATE_DEPLOYMENT_SWITCHED, NULL), 0);
	assert_int_equal(state_deployment_finish(f->st, id, STATE_DEPLOYMENT_ROLLED_BACK, "manual rollback"), 0);
	assert_int_equal(state_deployment_begin(f->st, "shop", "1.1.0", "1.3.0", "blue-green", NULL, &id), 0);
	assert_int_equal(state_deployment_finish(f->st, id, STATE_DEPLOYMENT_ROLLED_BACK, "p99"), 0);
	assert_int_equal(state_deployment_begin(f->st, "shop", "1.1.0", "1.4.0", "blue-green", NULL, NULL), 0);
	assert_int_equal(state_deployment_begin(f->st, "cart", NULL, "9.0.0", "blue-green", NULL, &id), 0);
	assert_int_equal(state_deployment_finish(f->st, id, STATE_DEPLOYMENT_DONE, NULL), 0);

	assert_int_equal(state_lineage_read(f->st, "shop", l), 0);
	assert_int_equal(l->n, 2);
	assert_string_equal(l->versions[0], "1.0.0");
	assert_string_equal(l->versions[1], "1.1.0");
	assert_string_equal(state_lineage_rollback_target(l, "1.1.0"), "1.0.0");

	assert_int_equal(state_deployment_list(f->st, "shop", 0, &items, &n), 0);
	assert_int_equal(n, 7);
	assert_int_equal(items[2].state, STATE_DEPLOYMENT_DONE); /* the old rollback row */
	assert_int_equal(items[1].state, STATE_DEPLOYMENT_ROLLED_BACK); /* a deploy rolled back stays so */
	state_deployment_array_free(items, n);

	assert_int_equal(state_history(f->st, &(struct state_log_filter){ .service = "shop" }, &h), 0);
	static const char *const kinds[] = { "deploy", "deploy", "rollback", "deploy", "restart", "deploy", "deploy" };
	static const char *const states[] = { "starting", "rolled-back", "done", "done", "done", "done", "done" };
	for (size_t i = 0; i < 7; i++) {
		e = json_array_get(h, i);
		assert_string_equal(json_string_value(json_object_get(e, "kind")), kinds[i]);
		assert_string_equal(json_string_value(json_object_get(e, "state")), states[i]);
	}
	e = json_object_get(json_array_get(h, 2), "events");
	assert_int_equal(json_array_size(e), 3);
	assert_string_equal(json_string_value(json_object_get(json_array_get(e, 2), "to_state")), "done");
	json_decref(h);
	free(l);
}

/* ---- audit and routing ---------------------------------------------------- */

static void test_audit(void **state)
{
	struct state_fixture *f = *state;
	json_t *args = json_pack("{ss ss}", "service", "shop", "version", "1.0.0"), *list = NULL, *row;
	struct state_audit_entry e = {
		.actor = "alice", .actor_uid = 1000, .action = "release.add", .target = "shop@1.0.0",
		.args = args, .result = "ok", .detail = NULL,
	};
	int64_t id = 0;

	assert_int_equal(state_audit_add(f->st, &e, &id), 0);
	assert_true(id > 0);
	e.target = "shop";
	e.action = "release.prune";
	e.args = NULL;
	e.result = "failed";
	e.detail = "disk full";
	assert_int_equal(state_audit_add(f->st, &e, NULL), 0);
	e.target = "shopping@1.0.0"; /* not "shop" */
	assert_int_equal(state_audit_add(f->st, &e, NULL), 0);
	e.actor = "";
	assert_int_equal(state_audit_add(f->st, &e, NULL), -EINVAL);

	assert_int_equal(state_audit_list(f->st, &(struct state_log_filter){ .service = "shop" }, &list), 0);
	assert_int_equal(json_array_size(list), 2);
	row = json_array_get(list, 0); /* newest first */
	assert_string_equal(json_string_value(json_object_get(row, "action")), "release.prune");
	assert_string_equal(json_string_value(json_object_get(row, "result")), "failed");
	assert_string_equal(json_string_value(json_object_get(row, "detail")), "disk full");
	assert_true(json_is_null(json_object_get(row, "args")));
	row = json_array_get(list, 1);
	assert_string_equal(json_string_value(json_object_get(row, "actor")), "alice");
	assert_int_equal(json_integer_value(json_object_get(row, "actor_uid")), 1000);
	assert_true(json_equal(json_object_get(row, "args"), args));
	assert_true(json_integer_value(json_object_get(row, "at")) > 0);
	json_decref(list);

	assert_int_equal(state_audit_list(f->st, &(struct state_log_filter){ .limit = 2 }, &list), 0);
	assert_int_equal(json_array_size(list), 2);
	json_decref(list);
	json_decref(args);
}

/* The ids of ROWS (a JSON array of objects with "id"), newest first, as
 * "3 2 1" into out. */
static void ids_of(json_t *rows, char *out, size_t len)
{
	json_t *row;
	size_t i, used = 0;

	out[0] = 0;
	json_array_foreach(rows, i, row)
		used += (size_t)snprintf(out + used, len - used, "%s%lld", i ? " " : "",
					 (long long)json_integer_value(json_object_get(row, "id")));
}

/* state_history and state_audit_list narrowed by service, environment,
 * release run and time (struct state_log_filter): a table of filters and
 * the rows each selects. */
static void test_log_filters(void **state)
{
	struct state_fixture *f = *state;
	struct state_release_run run = { .name = "spring", .env = "staging", .started_by = "alice", .report = "{}" };
	struct state_deployment_new n = { .service = "shop", .to_version = "1.0.0", .strategy = "blue-green",
					  .state = STATE_DEPLOYMENT_STARTING, .requested_uid = -1 };
	struct state_audit_entry e = { .actor = "alice", .action = "deploy", .target = "shop@1.0.0", .result = "ok" };
	int64_t r1, r2, id;
	/* deployments 1: shop (no release) in staging, 2: shop in release 1
	 * (staging; the row itself names no environment: its release's
	 * counts), 3: shop in release 2 in prod, 4: cart (no release) in prod;
	 * audit rows 1:
	 * shop in staging, 2: shop in prod, release 2, 3: cart without an
	 * environment, 4: cart in prod.  Row N happened at N hours. */
	static const struct {
		struct state_log_filter f;
		const char *history, *audit;
	} cases[] = {
		{ { 0 }, "4 3 2 1", "4 3 2 1" },
		{ { .service = "shop" }, "3 2 1", "2 1" },
		{ { .service = "cart" }, "4", "4 3" },
		{ { .env = "staging" }, "2 1", "1" },
		{ { .env = "prod" }, "4 3", "4 2" },
		{ { .env = "qa" }, "", "" },
		{ { .release_id = 1 }, "2", "" },
		{ { .release_id = 2 }, "3", "2" },
		{ { .release_id = 2, .env = "staging" }, "", "" },
		{ { .since_ms = 2 * 3600000 }, "4 3 2", "4 3 2" },
		{ { .until_ms = 2 * 3600000 }, "1", "1" },
		{ { .since_ms = 2 * 3600000, .until_ms = 4 * 3600000 }, "3 2", "3 2" },
		{ { .since_ms = 2 * 3600000, .service = "shop", .env = "prod" }, "3", "2" },
		{ { .limit = 2 }, "4 3", "4 3" },
	};
	int failures = 0;

	assert_int_equal(state_release_run_begin(f->st, &run, &r1), 0);
	run.env = "prod";
	assert_int_equal(state_release_run_begin(f->st, &run, &r2), 0);
	n.env = "staging";
	assert_int_equal(state_deployment_insert(f->st, &n, &id), 0);
	n.release_id = r1;
	n.env = NULL;
	assert_int_equal(state_deployment_insert(f->st, &n, &id), 0);
	n.release_id = r2;
	n.env = "prod";
	assert_int_equal(state_deployment_insert(f->st, &n, &id), 0);
	n.release_id = 0;
	n.service = "cart";
	assert_int_equal(state_deployment_insert(f->st, &n, &id), 0);
	e.env = "staging";
	assert_int_equal(state_audit_add(f->st, &e, NULL), 0);
	e.env = "prod";
	e.release_id = r2;
	assert_int_equal(state_audit_add(f->st, &e, NULL), 0);
	e.env = NULL;
	e.release_id = 0;
	e.target = "cart@2.0.0";
	assert_int_equal(state_audit_add(f->st, &e, NULL), 0);
	e.env = "prod";
	e.target = "cart";
	assert_int_equal(state_audit_add(f->st, &e, NULL), 0);
	assert_int_equal(sqlite3_exec(f->st->db, "UPDATE deployments SET started_at = id * 3600000;"
						 "UPDATE audit SET at = id * 3600000;", NULL, NULL, NULL), SQLITE_OK);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *h = NULL, *a = NULL;
		char got_h[64], got_a[64];

		assert_int_equal(state_history(f->st, &cases[i].f, &h), 0);
		assert_int_equal(state_audit_list(f->st, &cases[i].f, &a), 0);
		ids_of(h, got_h, sizeof(got_h));
		ids_of(a, got_a, sizeof(got_a));
		if (strcmp(got_h, cases[i].history) || strcmp(got_a, cases[i].audit)) {
			print_error("filter %zu: history \"%s\" (want \"%s\"), audit \"%s\" (want \"%s\")\n", i, got_h,
				    cases[i].history, got_a, cases[i].audit);
			failures++;
		}
		json_decref(h);
		json_decref(a);
	}
	assert_int_equal(failures, 0);

	/* the release run and its environment in the rows */
	json_t *h = NULL, *a = NULL;
	assert_int_equal(state_history(f->st, &(struct state_log_filter){ .release_id = r2 }, &h), 0);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(h, 0), "release_id")), r2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(h, 0), "env")), "prod");
	json_decref(h);
	assert_int_equal(state_history(f->st, &(struct state_log_filter){ .service = "cart" }, &h), 0);
	assert_true(json_is_null(json_object_get(json_array_get(h, 0), "release_id")));
	assert_string_equal(json_string_value(json_object_get(json_array_get(h, 0), "env")), "prod"); /* its own */
	json_decref(h);
	assert_int_equal(state_audit_list(f->st, NULL, &a), 0);
	assert_string_equal(json_string_value(json_object_get(json_array_get(a, 2), "env")), "prod");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(a, 2), "release_id")), r2);
	assert_true(json_is_null(json_object_get(json_array_get(a, 1), "env")));
	assert_true(json_is_null(json_object_get(json_array_get(a, 1), "release_id")));
	json_decref(a);
}

static void test_routing(void **state)
{
	struct state_fixture *f = *state;
	struct state_routing r = { 0 }, *items = NULL;
	const int64_t ids[] = { 7, 9 };
	size_t n = 0;

	assert_int_equal(state_routing_get(f->st, "shop", &r), -ENOENT);
	assert_int_equal(state_routing_set(f->st, "shop", "1.0.0", ids, 2), 0);
	assert_int_equal(state_routing_set(f->st, "cart", "2.0.0", NULL, 0), 0);
	assert_int_equal(state_routing_get(f->st, "shop", &r), 0);
	assert_string_equal(r.version, "1.0.0");
	assert_int_equal(r.ninstance_ids, 2);
	assert_int_equal(r.instance_ids[0], 7);
	assert_int_equal(r.instance_ids[1], 9);
	assert_true(r.updated_at > 0);
	state_routing_clear(&r);

	/* a switch replaces the row */
	assert_int_equal(state_routing_set(f->st, "shop", "1.1.0", ids + 1, 1), 0);
	assert_int_equal(state_routing_get(f->st, "shop", &r), 0);
	assert_string_equal(r.version, "1.1.0");
	assert_int_equal(r.ninstance_ids, 1);
	assert_int_equal(r.instance_ids[0], 9);
	state_routing_clear(&r);

	assert_int_equal(state_routing_list(f->st, &items, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(items[0].service, "cart");
	assert_int_equal(items[0].ninstance_ids, 0);
	assert_string_equal(items[1].service, "shop");
	state_routing_array_free(items, n);
	assert_int_equal(query_int(f->st, "SELECT count(*) FROM routing"), 2);
}

/* The switch and the rollback move routing and the deployment together. */
/* Schema 1 -> 2 rebuilds `deployments` (a new state in its CHECK): rows and
 * their events survive, the new state is accepted, foreign keys are back on. */
static void test_migration_keeps_deployments(void **state)
{
	struct state_fixture *f = *state;
	struct state_deployment d = { 0 };
	int64_t id;

	assert_int_equal(state_deployment_begin(f->st, "shop", "1.0.0", "1.1.0", "blue-green", "first", &id), 0);
	assert_int_equal(state_deployment_transition(f->st, id, STATE_DEPLOYMENT_HEALTH_CHECKING, NULL), 0);
	/* back to what schema 1 had: 3 -> 4 added a table and audit columns,
	 * 4 -> 5 two tables */
	assert_int_equal(sqlite3_exec(f->st->db,
				      "DROP TABLE maintenance; DROP TABLE traffic_minutes;"
				      "DROP INDEX audit_release; ALTER TABLE audit DROP COLUMN env;"
				      "ALTER TABLE audit DROP COLUMN release_id; DROP TABLE release_runs;"
				      "PRAGMA user_version = 1",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	f->st = state_close(f->st);
	f->st = state_fixture_open(f->dir);
	assert_int_equal(state_schema_version(f->st), STATE_SCHEMA_VERSION);
	assert_int_equal(state_deployment_get(f->st, id, &d), 0);
	assert_string_equal(d.to_version, "1.1.0");
	/* (2 -> 3: the new columns of the rows before are empty) */
	assert_string_equal(d.digest, "");
	assert_int_equal(d.requested_uid, -1);
	assert_int_equal(d.expires_at, 0);
	assert_string_equal(d.promoted_from, "");
	assert_int_equal(d.state, STATE_DEPLOYMENT_HEALTH_CHECKING);
	state_deployment_clear(&d);
	assert_int_equal(query_int(f->st, "SELECT count(*) FROM deployment_events"), 2);
	assert_int_equal(state_deployment_transition(f->st, id, STATE_DEPLOYMENT_SMOKE_TESTING, "smoke"), 0);
	assert_int_equal(query_int(f->st, "PRAGMA foreign_keys"), 1);
	/* an event of a deployment that does not exist is refused again */
	assert_int_not_equal(sqlite3_exec(f->st->db,
					  "INSERT INTO deployment_events (deployment_id, at, to_state) "
					  "VALUES (999, 1, 'starting')",
					  NULL, NULL, NULL),
			     SQLITE_OK);
}

#define DIGEST_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define DIGEST_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

/* Schema 3: a request awaiting approval is in flight (a restarted daemon
 * finds it), starts only through state_deployment_start(), or ends
 * rejected or expired; the digest, who asked, when it expires and where a
 * promotion came from are kept and shown by the history; the last `done`
 * deployment is what a proof of the live version stands on. */
static void test_awaiting_approval_rows(void **state)
{
	struct state_fixture *f = *state;
	struct state_deployment d = { 0 }, *items = NULL;
	struct state_deployment_new n = { .service = "shop", .from_version = "1.0.0", .to_version = "1.1.0",
					  .strategy = "blue-green", .state = STATE_DEPLOYMENT_AWAITING_APPROVAL,
					  .detail = "requested by alice", .digest = DIGEST_A, .requested_uid = 1000,
					  .expires_at = 4102444800000, .promoted_from = "staging" };
	size_t nitems = 0;
	int64_t a, b, c;
	json_t *hist = NULL, *row;

	assert_int_equal(state_deployment_last_done(f->st, "shop", &d), -ENOENT);
	assert_int_equal(state_deployment_insert(f->st, &n, &a), 0);
	n.digest = "not hex";
	assert_int_equal(state_deployment_insert(f->st, &n, &b), -EINVAL);
	n.digest = NULL;
	n.state = STATE_DEPLOYMENT_DONE;
	assert_int_equal(state_deployment_insert(f->st, &n, &b), -EINVAL);
	n.state = STATE_DEPLOYMENT_AWAITING_APPROVAL;
	n.promoted_from = NULL;
	assert_int_equal(state_deployment_insert(f->st, &n, &b), 0);
	assert_int_equal(state_deployment_insert(f->st, &n, &c), 0);

	assert_int_equal(state_deployment_get(f->st, a, &d), 0);
	assert_int_equal(d.state, STATE_DEPLOYMENT_AWAITING_APPROVAL);
	assert_false(state_deployment_state_terminal(d.state));
	assert_string_equal(d.digest, DIGEST_A);
	assert_int_equal(d.requested_uid, 1000);
	assert_int_equal(d.expires_at, 4102444800000);
	assert_string_equal(d.promoted_from, "staging");
	state_deployment_clear(&d);
	assert_int_equal(state_deployment_list_in_flight(f->st, "shop", &items, &nitems), 0);
	assert_int_equal(nitems, 3);
	state_deployment_array_free(items, nitems);

	/* approved: starts, with the version live then and the release's digest */
	assert_int_equal(state_deployment_start(f->st, a, "1.0.1", "canary", DIGEST_B, "approved by bob"), 0);
	assert_int_equal(state_deployment_get(f->st, a, &d), 0);
	assert_int_equal(d.state, STATE_DEPLOYMENT_STARTING);
	assert_string_equal(d.from_version, "1.0.1");
	assert_string_equal(d.strategy, "canary");
	assert_string_equal(d.digest, DIGEST_B);
	assert_int_equal(d.expires_at, 0);
	state_deployment_clear(&d);
	/* only once */
	assert_int_equal(state_deployment_start(f->st, a, "1.0.1", "canary", NULL, "again"), -EINVAL);
	assert_int_equal(state_deployment_start(f->st, 999, "1.0.1", "canary", NULL, "none"), -ENOENT);
	assert_int_equal(state_deployment_finish(f->st, a, STATE_DEPLOYMENT_DONE, NULL), 0);
	assert_int_equal(state_deployment_finish(f->st, b, STATE_DEPLOYMENT_REJECTED, "rejected by bob"), 0);
	assert_int_equal(state_deployment_finish(f->st, c, STATE_DEPLOYMENT_EXPIRED, "nobody approved it"), 0);
	assert_int_equal(state_deployment_start(f->st, c, "1.0.1", "canary", NULL, "too late"), -EINVAL);

	assert_int_equal(state_deployment_last_done(f->st, "shop", &d), 0);
	assert_int_equal(d.id, a);
	assert_string_equal(d.digest, DIGEST_B);
	state_deployment_clear(&d);

	assert_int_equal(state_history(f->st, &(struct state_log_filter){ .service = "shop" }, &hist), 0);
	assert_int_equal(json_array_size(hist), 3);
	row = json_array_get(hist, 0); /* newest first */
	assert_string_equal(json_string_value(json_object_get(row, "state")), "expired");
	assert_true(json_is_null(json_object_get(row, "digest")));
	row = json_array_get(hist, 2);
	assert_string_equal(json_string_value(json_object_get(row, "state")), "done");
	assert_string_equal(json_string_value(json_object_get(row, "digest")), DIGEST_B);
	assert_string_equal(json_string_value(json_object_get(row, "promoted_from")), "staging");
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(row, "events"), 0),
							      "to_state")),
			    "awaiting-approval");
	json_decref(hist);
}

static void test_deployment_begin_as(void **state)
{
	struct state_fixture *f = *state;
	int64_t id = 0, next = 0;

	assert_int_equal(state_deployment_next_id(f->st, &next), 0);
	assert_int_equal(next, 1);
	assert_int_equal(state_deployment_begin_as(f->st, 7, "shop", NULL, "1.0.0", "blue-green", NULL, &id), 0);
	assert_int_equal(id, 7);
	assert_int_equal(state_deployment_begin_as(f->st, 7, "shop", NULL, "1.1.0", "blue-green", NULL, &id), -EEXIST);
	assert_int_equal(id, 7);
	assert_int_equal(state_deployment_next_id(f->st, &next), 0);
	assert_int_equal(next, 8);
	assert_int_equal(state_deployment_begin(f->st, "shop", NULL, "1.1.0", "blue-green", NULL, &id), 0);
	assert_int_equal(id, 8);
}

static void test_deployment_route(void **state)
{
	struct state_fixture *f = *state;
	struct state_routing r = { 0 };
	struct state_deployment d = { 0 };
	const int64_t blue[] = { 1 }, green[] = { 2, 3 };
	int64_t id;

	assert_int_equal(state_routing_set(f->st, "shop", "1.0.0", blue, 1), 0);
	assert_int_equal(state_deployment_begin(f->st, "shop", "1.0.0", "1.1.0", "blue-green", NULL, &id), 0);
	assert_int_equal(state_deployment_transition(f->st, id, STATE_DEPLOYMENT_HEALTH_CHECKING, NULL), 0);
	assert_int_equal(state_deployment_route(f->st, id, STATE_DEPLOYMENT_SWITCHED, "100% to 1.1.0", "1.1.0",
						green, 2), 0);
	assert_int_equal(state_routing_get(f->st, "shop", &r), 0);
	assert_string_equal(r.version, "1.1.0");
	assert_int_equal(r.ninstance_ids, 2);
	state_routing_clear(&r);
	assert_int_equal(state_deployment_get(f->st, id, &d), 0);
	assert_int_equal(d.state, STATE_DEPLOYMENT_SWITCHED);
	state_deployment_clear(&d);

	/* rollback: back to blue, terminal, with the reason */
	assert_int_equal(state_deployment_route(f->st, id, STATE_DEPLOYMENT_ROLLED_BACK, "p99 900ms > 500ms", "1.0.0",
						blue, 1), 0);
	assert_int_equal(state_deployment_get(f->st, id, &d), 0);
	assert_int_equal(d.state, STATE_DEPLOYMENT_ROLLED_BACK);
	assert_string_equal(d.reason, "p99 900ms > 500ms");
	assert_true(d.finished_at > 0);
	state_deployment_clear(&d);

	/* refused on a finished deployment: the routing stays as it was */
	assert_int_equal(state_deployment_route(f->st, id, STATE_DEPLOYMENT_SWITCHED, NULL, "1.1.0", green, 2),
			 -EINVAL);
	assert_int_equal(state_routing_get(f->st, "shop", &r), 0);
	assert_string_equal(r.version, "1.0.0");
	assert_int_equal(r.ninstance_ids, 1);
	assert_int_equal(r.instance_ids[0], 1);
	state_routing_clear(&r);
	assert_int_equal(query_int(f->st, "SELECT count(*) FROM deployment_events WHERE deployment_id = 1"), 4);
}

/* ---- concurrency and durability -------------------------------------------- */

/* Threads do not call cmocka's assertions (they longjmp): they report. */
struct holder {
	struct state *st;
	int hold_ms;
	int result;
};

static void *hold_then_commit(void *arg)
{
	struct holder *h = arg;
	struct timespec ts = { .tv_sec = h->hold_ms / 1000, .tv_nsec = (h->hold_ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
	h->result = state_service_ensure(h->st, "held");
	if (h->result == 0)
		h->result = state_commit(h->st);
	return NULL;
}

static void test_concurrent_writer_waits(void **state)
{
	struct state_fixture *f = *state;
	struct holder h = { .st = state_fixture_open(f->dir), .hold_ms = 300 };
	struct state_audit_entry e = { .actor = "test", .action = "wait", .result = "ok" };
	pthread_t thread;
	uint64_t t0;

	/* The second connection takes the write lock and keeps it 300 ms. */
	assert_int_equal(state_begin(h.st), 0);
	assert_int_equal(pthread_create(&thread, NULL, hold_then_commit, &h), 0);
	t0 = time_now_ms();
	assert_int_equal(state_audit_add(f->st, &e, NULL), 0); /* waits, then succeeds */
	assert_true(time_now_ms() - t0 >= 200);
	assert_int_equal(pthread_join(thread, NULL), 0);
	assert_int_equal(h.result, 0);
	assert_int_equal(query_int(f->st, "SELECT count(*) FROM services WHERE name = 'held'"), 1);
	state_close(h.st);
}

struct writer {
	const char *dir;
	int rows;
	int failures;
};

static void *write_rows(void *arg)
{
	struct writer *w = arg;
	struct state *st = NULL;
	struct state_audit_entry e = { .actor = "writer", .action = "row", .result = "ok" };
	char err[256];
	int64_t id;

	if (state_open(w->dir, &st, err, sizeof(err)) < 0) {
		w->failures = w->rows;
		return NULL;
	}
	for (int i = 0; i < w->rows; i++) {
		if (state_audit_add(st, &e, NULL) < 0 ||
		    state_deployment_begin(st, "shop", NULL, "1.0.0", "blue-green", NULL, &id) < 0 ||
		    state_deployment_transition(st, id, STATE_DEPLOYMENT_SWITCHING, NULL) < 0)
			w->failures++;
	}
	state_close(st);
	return NULL;
}

static void test_concurrent_writers(void **state)
{
	struct state_fixture *f = *state;
	struct writer w[3] = { { f->dir, 60, 0 }, { f->dir, 60, 0 }, { f->dir, 60, 0 } };
	pthread_t threads[3];

	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, write_rows, &w[i]), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(pthread_join(threads[i], NULL), 0);
		assert_int_equal(w[i].failures, 0);
	}
	assert_int_equal(query_int(f->st, "SELECT count(*) FROM audit"), 180);
	assert_int_equal(query_int(f->st, "SELECT count(*) FROM deployment_events"), 360);
	assert_int_equal(query_int(f->st, "SELECT count(*) FROM deployments d WHERE state <> "
					  "(SELECT to_state FROM deployment_events WHERE deployment_id = d.id "
					  "ORDER BY id DESC LIMIT 1)"), 0);
}

static void test_durable_across_reopen(void **state)
{
	struct state_fixture *f = *state;
	struct state_deployment *items = NULL;
	struct state_routing r = { 0 };
	const int64_t ids[] = { 1 };
	int64_t id;
	size_t n;

	assert_int_equal(state_deployment_begin(f->st, "shop", "1.0.0", "1.1.0", "blue-green", NULL, &id), 0);
	assert_int_equal(state_deployment_transition(f->st, id, STATE_DEPLOYMENT_SWITCHED, NULL), 0);
	assert_int_equal(state_routing_set(f->st, "shop", "1.1.0", ids, 1), 0);
	f->st = state_close(f->st);
	f->st = state_fixture_open(f->dir);
	assert_int_equal(state_deployment_list_in_flight(f->st, NULL, &items, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(items[0].state, STATE_DEPLOYMENT_SWITCHED);
	state_deployment_array_free(items, n);
	assert_int_equal(state_routing_get(f->st, "shop", &r), 0);
	assert_string_equal(r.version, "1.1.0");
	state_routing_clear(&r);
}

/* What a process committed before it was killed with SIGKILL (no close, no
 * checkpoint) is there when the database is opened again; a transaction it
 * had open is not. */
static void test_durable_after_sigkill(void **state)
{
	struct state_fixture *f = *state;
	struct state_deployment d = { 0 };
	int status;
	pid_t pid;

	f->st = state_close(f->st);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct state *st = NULL;
		int64_t id;
		char err[256];

		if (state_open(f->dir, &st, err, sizeof(err)) < 0 ||
		    state_deployment_begin(st, "shop", "1.0.0", "1.1.0", "blue-green", NULL, &id) < 0 ||
		    state_deployment_transition(st, id, STATE_DEPLOYMENT_HEALTH_CHECKING, NULL) < 0 ||
		    state_deployment_transition(st, id, STATE_DEPLOYMENT_SWITCHING, NULL) < 0 || state_begin(st) < 0 ||
		    state_service_ensure(st, "uncommitted") < 0)
			_exit(1);
		raise(SIGKILL);
		_exit(2);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	f->st = state_fixture_open(f->dir);
	assert_int_equal(state_deployment_get(f->st, 1, &d), 0);
	assert_int_equal(d.state, STATE_DEPLOYMENT_SWITCHING);
	state_deployment_clear(&d);
	assert_int_equal(query_int(f->st, "SELECT count(*) FROM deployment_events WHERE deployment_id = 1"), 3);
	assert_int_equal(query_int(f->st, "SELECT count(*) FROM services WHERE name = 'uncommitted'"), 0);
	/* and the database is writable again (the dead writer's lock is gone) */
	assert_int_equal(state_deployment_finish(f->st, 1, STATE_DEPLOYMENT_ABORTED, "daemon killed"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_migrate_from_empty, state_fixture_setup, state_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_wal_mode, state_fixture_setup, state_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_reopen_idempotent, state_fixture_setup, state_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_newer_schema_refused, state_fixture_setup, state_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_not_a_database, state_fixture_setup, state_fixture_teardown),
		cmocka_unit_test(test_names),
		cmocka_unit_test_setup_teardown(test_releases, state_fixture_setup, state_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_instances, state_fixture_setup, state_fixture_teardown),
		cmocka_unit_test(test_process_identity),
		cmocka_unit_test_setup_teardown(test_deployments, state_fixture_setup, state_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_history, state_fixture_setup, state_fixture_teardown),
		cmocka_unit_test(test_lineage),
		cmocka_unit_test(test_lineage_bounded),
		cmocka_unit_test_setup_teardown(test_lineage_read_and_kinds, state_fixture_setup, state_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_audit, state_fixture_setup, state_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_log_filters, state_fixture_setup, state_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_routing, state_fixture_setup, state_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_migration_keeps_deployments, state_fixture_setup, state_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_awaiting_approval_rows, state_fixture_setup, state_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_deployment_begin_as, state_fixture_setup, state_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_deployment_route, state_fixture_setup, state_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_writer_waits, state_fixture_setup, state_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_writers, state_fixture_setup, state_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_durable_across_reopen, state_fixture_setup, state_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_durable_after_sigkill, state_fixture_setup, state_fixture_teardown),
	};

	return cmocka_run_group_tests_name("state", tests, NULL, NULL);
}

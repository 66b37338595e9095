/* check.c - `cutover state check`: SQLite's own checks of the file
 * (integrity_check, foreign_key_check), its schema, and the invariants
 * cutover's code keeps and its recovery relies on (one deploy in flight per
 * service, a deployment's state is its last event's, routing names versions
 * that exist, ...).
 *
 * Each invariant is one query whose rows are the violations, each row one
 * sentence for a person: a table of cases (invariants[]), so adding one is
 * a line of SQL.  Everything here only reads, so it runs beside the daemon
 * (WAL: one read transaction, which never blocks its writes).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <jansson.h>
#include "state/state-internal.h"

#define PROBLEMS_MAX 20

const struct state_table state_tables[] = {
	{ "services", 1 },       { "releases", 1 },    { "instances", 1 },     { "deployments", 1 },
	{ "deployment_events", 1 }, { "audit", 1 },    { "routing", 1 },       { "release_runs", 4 },
	{ "maintenance", 5 },    { "traffic_minutes", 5 }, { NULL, 0 },
};

#define TERMINAL_DEPLOYMENT "('done', 'rolled-back', 'failed', 'aborted', 'rejected', 'expired')"
#define TERMINAL_RELEASE "('succeeded', 'degraded', 'rolled-back', 'failed', 'rejected', 'expired')"

/* One invariant: rows of SQL (one text column; ?1 is now in Unix ms) are
 * its violations.  Run on a schema of at least min_schema. */
static const struct invariant {
	const char *name;
	const char *what;             /* the detail when it holds */
	int min_schema;
	const char *sql;
} invariants[] = {
	{ "one deploy in flight per service", "no service has two deployments in flight", 1,
	  "SELECT printf('%s has %d deployments in flight (ids %s): at most one may be', service, count(*),"
	  "              group_concat(id, ', '))"
	  " FROM deployments WHERE state NOT IN " TERMINAL_DEPLOYMENT " AND state != 'awaiting-approval'"
	  " GROUP BY service HAVING count(*) > 1 ORDER BY service" },
	{ "deployment state = its last event", "every deployment's state is the to_state of its last event", 1,
	  "SELECT CASE WHEN e.id IS NULL THEN printf('deployment %d (%s %s) has no event', d.id, d.service, d.to_version)"
	  "            ELSE printf('deployment %d (%s %s) is %s, but its last event (%d) says %s', d.id, d.service,"
	  "                        d.to_version, d.state, e.id, e.to_state) END"
	  " FROM deployments d LEFT JOIN deployment_events e"
	  "   ON e.id = (SELECT max(id) FROM deployment_events WHERE deployment_id = d.id)"
	  " WHERE e.id IS NULL OR e.to_state IS NOT d.state ORDER BY d.id" },
	{ "deployment finished_at", "finished deployments have finished_at (not before started_at), the others none", 1,
	  "SELECT printf('deployment %d (%s %s) is %s %s', id, service, to_version, state,"
	  "              CASE WHEN finished_at IS NULL THEN 'but has no finished_at'"
	  "                   WHEN state NOT IN " TERMINAL_DEPLOYMENT " THEN 'but has a finished_at'"
	  "                   ELSE 'but finished before it started' END)"
	  " FROM deployments"
	  " WHERE (state IN " TERMINAL_DEPLOYMENT " AND (finished_at IS NULL OR finished_at < started_at))"
	  "    OR (state NOT IN " TERMINAL_DEPLOYMENT " AND finished_at IS NOT NULL) ORDER BY id" },
	{ "routing names known versions", "every routing row names a version with a release or a live instance", 1,
	  "SELECT printf('%s routes to %s, which has neither a release row nor a live instance', r.service, r.version)"
	  " FROM routing r"
	  " WHERE NOT EXISTS (SELECT 1 FROM releases WHERE service = r.service AND version = r.version)"
	  "   AND NOT EXISTS (SELECT 1 FROM instances WHERE service = r.service AND version = r.version"
	  "                                            AND state != 'stopped')"
	  " ORDER BY r.service" },
	{ "routing names known instances", "every instance a routing row names is an instance of its service", 1,
	  "SELECT printf('%s routes to instance %s, which is not an instance of %s', r.service, j.value, r.service)"
	  " FROM routing r, json_each(r.instance_ids) j"
	  " WHERE NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = j.value AND i.service = r.service)"
	  " ORDER BY r.service" },
	{ "release runs finished_at", "finished release runs have finished_at, the others none", 4,
	  "SELECT printf('release run %d (%s) is %s %s', id, name, state,"
	  "              CASE WHEN finished_at IS NULL THEN 'but has no finished_at' ELSE 'but has a finished_at' END)"
	  " FROM release_runs"
	  " WHERE (state IN " TERMINAL_RELEASE ") != (finished_at IS NOT NULL) ORDER BY id" },
	{ "traffic minutes", "no traffic minute is in the future or counts more failures than requests", 5,
	  "SELECT printf('%s, minute %d: %s', service, minute,"
	  "              CASE WHEN minute > ?1 / 60000 + 1 THEN printf('in the future (now is minute %d)', ?1 / 60000)"
	  "                   ELSE printf('%d failed of %d requests', failed, requests) END)"
	  " FROM traffic_minutes"
	  " WHERE minute > ?1 / 60000 + 1 OR failed < 0 OR requests < 0 OR failed > requests"
	  " ORDER BY service, minute" },
	{ "maintenance rows", "every service in maintenance has a past start and a Retry-After of 1 s to 1 day", 5,
	  "SELECT printf('%s: %s', service,"
	  "              CASE WHEN since > ?1 + 60000 THEN 'in maintenance since a time in the future'"
	  "                   WHEN retry_after < 1 OR retry_after > 86400 THEN printf('Retry-After %d s', retry_after)"
	  "                   ELSE printf('a page of %d bytes (at most 65536)', length(CAST(page AS BLOB))) END)"
	  " FROM maintenance"
	  " WHERE since > ?1 + 60000 OR retry_after < 1 OR retry_after > 86400"
	  "    OR length(CAST(page AS BLOB)) > 65536 ORDER BY service" },
};

/* Append one check's entry: problems (may be NULL: none) is consumed;
 * count is how many there were (more than problems holds, past
 * PROBLEMS_MAX). */
static int add_result(json_t *out, const char *name, const char *detail, json_t *problems, size_t count)
{
	json_t *entry;

	if (!problems)
		problems = json_array();
	entry = json_pack("{s:s, s:b, s:s, s:I, s:o}", "check", name, "ok", count == 0, "detail", detail,
			  "count", (json_int_t)count, "problems", problems);
	return entry && !json_array_append_new(out, entry) ? 0 : -ENOMEM;
}

/* Step STMT (parameters bound) and gather the first column of each row as
 * a problem.  Returns the row count, or -errno with SQLite's message in
 * st->errmsg.  Finalizes STMT. */
static long gather(struct state *st, sqlite3_stmt *stmt, json_t *problems, bool skip_ok)
{
	long n = 0;
	int rc;

	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		const char *text = (const char *)sqlite3_column_text(stmt, 0);
		if (skip_ok && text && !strcmp(text, "ok"))
			continue;
		if (n++ < PROBLEMS_MAX)
			json_array_append_new(problems, json_string(text ? text : "(null)"));
	}
	if (rc != SQLITE_DONE) {
		int r = state_sql_error(st, sqlite3_extended_errcode(st->db));
		sqlite3_finalize(stmt);
		return r;
	}
	sqlite3_finalize(stmt);
	return n;
}

/* Run SQL (?1 = now) as a check NAME: its rows are the problems.  A query
 * that fails is a failed check that says why.  Returns 0 or -ENOMEM. */
static int run_query(struct state *st, json_t *out, const char *name, const char *what, const char *sql,
		     bool skip_ok)
{
	sqlite3_stmt *stmt = NULL;
	json_t *problems = json_array();
	char detail[400];
	long n;
	int r;

	if (!problems)
		return -ENOMEM;
	r = state_prepare(st, sql, &stmt);
	if (r == 0 && sqlite3_bind_parameter_count(stmt) >= 1)
		sqlite3_bind_int64(stmt, 1, state_now_ms());
	n = r < 0 ? r : gather(st, stmt, problems, skip_ok);
	if (n < 0) {
		json_array_clear(problems);
		json_array_append_new(problems, json_string(st->errmsg));
		snprintf(detail, sizeof(detail), "cannot run: %s", st->errmsg);
		return add_result(out, name, detail, problems, 1);
	}
	if (n)
		snprintf(detail, sizeof(detail), "%ld problem%s: %s", n, n == 1 ? "" : "s",
			 json_string_value(json_array_get(problems, 0)));
	else
		snprintf(detail, sizeof(detail), "%s", what);
	return add_result(out, name, detail, problems, (size_t)n);
}

/* The schema: its version is one this build knows, and the tables of
 * that version are there.  Sets *ret_version (-1: unreadable) and *ret_ok.
 * Returns 0 or -ENOMEM. */
static int check_schema(struct state *st, json_t *out, int *ret_version, bool *ret_ok)
{
	json_t *problems = json_array();
	int64_t version = -1, found;
	char sql[200], detail[400];
	size_t n = 0;

	if (!problems)
		return -ENOMEM;
	*ret_version = -1;
	*ret_ok = false;
	if (state_query_int64(st, "PRAGMA user_version", &version) < 0) {
		json_array_append_new(problems, json_string(st->errmsg));
		snprintf(detail, sizeof(detail), "cannot read the schema version: %s", st->errmsg);
		return add_result(out, "schema", detail, problems, 1);
	}
	*ret_version = (int)version;
	if (version < 1 || version > STATE_SCHEMA_VERSION) {
		snprintf(detail, sizeof(detail), "schema version %lld: this cutover knows 1 to %d",
			 (long long)version, STATE_SCHEMA_VERSION);
		json_array_append_new(problems, json_string(detail));
		return add_result(out, "schema", detail, problems, 1);
	}
	for (const struct state_table *t = state_tables; t->name; t++) {
		if (t->min_schema > version)
			continue;
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = '%s'",
			 t->name);
		if (state_query_int64(st, sql, &found) < 0 || !found) {
			snprintf(detail, sizeof(detail), "table %s is missing", t->name);
			json_array_append_new(problems, json_string(detail));
			n++;
		}
	}
	*ret_ok = n == 0;
	if (n)
		snprintf(detail, sizeof(detail), "schema version %lld, %zu table%s missing: %s", (long long)version, n,
			 n == 1 ? "" : "s", json_string_value(json_array_get(problems, 0)));
	else
		snprintf(detail, sizeof(detail), "schema version %lld, every table of it present", (long long)version);
	return add_result(out, "schema", detail, problems, n);
}

/* PRAGMA foreign_key_check: (table, rowid, parent, fkid) per orphan. */
static const char foreign_keys_sql[] =
	"SELECT printf('%s row %s names a missing %s row', \"table\", ifnull(rowid, '?'), parent)"
	" FROM pragma_foreign_key_check";

/* An invariant that was not run: not a pass unless it does not apply. */
static int add_skipped(json_t *out, const char *name, const char *detail, bool ok)
{
	int r = add_result(out, name, detail, NULL, 0);

	if (r == 0 && !ok)
		json_object_set_new(json_array_get(out, json_array_size(out) - 1), "ok", json_false());
	return r;
}

int state_check(struct state *st, json_t **ret)
{
	json_t *out = json_array();
	char detail[80];
	int r, version = -1;
	bool schema_ok = false;

	if (!out)
		return -ENOMEM;
	/* one read transaction: every check sees the same snapshot */
	state_exec(st, "BEGIN");
	r = run_query(st, out, "integrity", "PRAGMA integrity_check: ok", "PRAGMA integrity_check", true);
	if (r == 0)
		r = run_query(st, out, "foreign keys", "PRAGMA foreign_key_check: no row names a missing one",
			      foreign_keys_sql, false);
	if (r == 0)
		r = check_schema(st, out, &version, &schema_ok);
	for (size_t i = 0; r == 0 && i < sizeof(invariants) / sizeof(invariants[0]); i++) {
		const struct invariant *inv = &invariants[i];

		if (!schema_ok) {
			r = add_skipped(out, inv->name, "not run: the schema check failed", false);
		} else if (version < inv->min_schema) {
			snprintf(detail, sizeof(detail), "not applicable before schema %d", inv->min_schema);
			r = add_skipped(out, inv->name, detail, true);
		} else {
			r = run_query(st, out, inv->name, inv->what, inv->sql, false);
		}
	}
	state_exec(st, "COMMIT");
	if (r < 0) {
		json_decref(out);
		return r;
	}
	*ret = out;
	return 0;
}

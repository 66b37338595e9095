/* present.c - what a restore keeps of the state it replaces: the present.
 *
 * A backup is the past.  Since it was taken, releases may have been added
 * and versions deployed whose instances still run.  Restored as it is, the
 * daemon would not know those processes (they would keep running, their
 * ports taken, never stopped) and would put traffic back on the version the
 * backup routed: a silent downgrade.  So, when the state being replaced can
 * still be read, the restore carries its present over into the copy before
 * the swap: the releases the backup lacks (their trees are still in the
 * store), the instances whose processes still run (same pid and start time;
 * the daemon adopts them), and each service's routing while one of its
 * instances still runs (the version that serves).  The history (deployments, audit, releases runs, traffic) is the
 * backup's.  Nothing here is needed for the restore to succeed: a state
 * that cannot be read is left alone and the caller says so.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "state/state-internal.h"

/* True when PID runs and started at TICKS (field 22 of /proc/PID/stat):
 * the process the row recorded, not a later one with its pid. */
static bool process_is(int pid, uint64_t ticks)
{
	char path[64], buf[1024];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')'); /* the name may hold spaces and parentheses */
	if (!p)
		return false;
	/* after ')': field 3 (state) ... field 22 (starttime) */
	unsigned long long start = 0;
	char state = 0;
	int field = 2;
	for (char *tok = strtok(p + 1, " "); tok; tok = strtok(NULL, " ")) {
		field++;
		if (field == 3)
			state = tok[0];
		if (field == 22) {
			start = strtoull(tok, NULL, 10);
			break;
		}
	}
	return field == 22 && state != 'Z' && start == ticks;
}

static int exec_sql(struct state *st, const char *sql, char *err, size_t errlen)
{
	if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(st->db));
		return -EIO;
	}
	return 0;
}

/* The old instances that still run and that the copy does not hold: added
 * to it (new ids), mapped in temp.idmap.  Counts them in ret. */
static int carry_instances(struct state *st, struct state_present *ret, char *err, size_t errlen)
{
	static const char *const select_sql =
		"SELECT id, pid, start_time_ticks FROM old.instances"
		" WHERE pid > 0 AND state <> 'stopped' AND id NOT IN (SELECT old_id FROM temp.idmap)";
	static const char *const insert_sql =
		"INSERT INTO main.instances (service, version, release_id, pid, pgid, port, start_time_ticks, started_at,"
		"  state, restarts, log_path)"
		" SELECT service, version, (SELECT r.id FROM main.releases r WHERE r.service = o.service"
		"   AND r.version = o.version), pid, pgid, port, start_time_ticks, started_at, state, restarts, log_path"
		" FROM old.instances o WHERE o.id = ?1";
	sqlite3_stmt *sel = NULL, *ins = NULL, *map = NULL;
	int r = 0, rc;

	if (sqlite3_prepare_v2(st->db, select_sql, -1, &sel, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(st->db, insert_sql, -1, &ins, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(st->db, "INSERT INTO temp.idmap VALUES (?1, ?2)", -1, &map, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(st->db));
		r = -EIO;
		goto out;
	}
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(sel, 0);
		if (!process_is(sqlite3_column_int(sel, 1), (uint64_t)sqlite3_column_int64(sel, 2)))
			continue;
		sqlite3_reset(ins);
		sqlite3_bind_int64(ins, 1, id);
		if (sqlite3_step(ins) != SQLITE_DONE)
			break;
		sqlite3_reset(map);
		sqlite3_bind_int64(map, 1, id);
		sqlite3_bind_int64(map, 2, sqlite3_last_insert_rowid(st->db));
		if (sqlite3_step(map) != SQLITE_DONE)
			break;
		ret->instances++;
	}
	if (rc != SQLITE_DONE) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(st->db));
		r = -EIO;
	}
out:
	sqlite3_finalize(sel);
	sqlite3_finalize(ins);
	sqlite3_finalize(map);
	return r;
}

/* Each service's routing of the old state, its instance ids mapped to the
 * copy's, replaces the copy's where they differ.  Records the services
 * whose version changed in ret. */
static int carry_routing(struct state *st, struct state_present *ret, char *err, size_t errlen)
{
	static const char *const select_sql =
		"SELECT o.service, o.version, m.version,"
		"  (SELECT json_group_array(i.new_id) FROM json_each(o.instance_ids) j"
		"   JOIN temp.idmap i ON i.old_id = j.value),"
		"  m.instance_ids, o.updated_at"
		" FROM old.routing o LEFT JOIN main.routing m ON m.service = o.service";
	sqlite3_stmt *sel = NULL, *put = NULL;
	int r = 0, rc;

	if (sqlite3_prepare_v2(st->db, select_sql, -1, &sel, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(st->db,
			       "INSERT OR REPLACE INTO main.routing (service, version, instance_ids, updated_at)"
			       " VALUES (?1, ?2, ?3, ?4)",
			       -1, &put, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(st->db));
		r = -EIO;
		goto out;
	}
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		const char *service = (const char *)sqlite3_column_text(sel, 0);
		const char *now = (const char *)sqlite3_column_text(sel, 1);
		const char *then = (const char *)sqlite3_column_text(sel, 2);
		const char *ids = (const char *)sqlite3_column_text(sel, 3);
		const char *then_ids = (const char *)sqlite3_column_text(sel, 4);
		/* only a version that still serves is kept: with none of its
		 * instances running, the backup's routing stands */
		if (!ids || !strcmp(ids, "[]"))
			continue;
		if (then && !strcmp(now, then) && then_ids && !strcmp(ids, then_ids))
			continue;
		sqlite3_reset(put);
		sqlite3_bind_text(put, 1, service, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(put, 2, now, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(put, 3, ids, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(put, 4, sqlite3_column_int64(sel, 5));
		if (sqlite3_step(put) != SQLITE_DONE)
			break;
		if ((!then || strcmp(now, then)) && ret->nrouting < STATE_PRESENT_ROUTING_MAX) {
			struct state_present_routing *pr = &ret->routing[ret->nrouting++];
			snprintf(pr->service, sizeof(pr->service), "%s", service);
			snprintf(pr->version, sizeof(pr->version), "%s", now);
			snprintf(pr->backup_version, sizeof(pr->backup_version), "%s", then ? then : "");
		}
	}
	if (rc != SQLITE_DONE) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(st->db));
		r = -EIO;
	}
out:
	sqlite3_finalize(sel);
	sqlite3_finalize(put);
	return r;
}

int state_carry_present(struct state *st, const char *old_db, struct state_present *ret, char *err, size_t errlen)
{
	struct state_present p = { 0 };
	sqlite3_stmt *att = NULL;
	int r;

	if (access(old_db, F_OK) < 0) {
		*ret = p;
		return 0;
	}
	if (sqlite3_prepare_v2(st->db, "ATTACH DATABASE ?1 AS old", -1, &att, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(st->db));
		return -EIO;
	}
	sqlite3_bind_text(att, 1, old_db, -1, SQLITE_STATIC);
	r = sqlite3_step(att) == SQLITE_DONE ? 0 : -EIO;
	if (r < 0)
		snprintf(err, errlen, "%s: %s", old_db, sqlite3_errmsg(st->db));
	sqlite3_finalize(att);
	if (r < 0)
		return r;
	r = exec_sql(st,
		     "BEGIN IMMEDIATE;"
		     "INSERT OR IGNORE INTO main.services (name, created_at) SELECT name, created_at FROM old.services;",
		     err, errlen);
	if (r == 0)
		r = exec_sql(st,
			     "INSERT INTO main.releases (service, version, digest, path, size_bytes, created_at)"
			     " SELECT service, version, digest, path, size_bytes, created_at FROM old.releases o"
			     " WHERE NOT EXISTS (SELECT 1 FROM main.releases r WHERE r.service = o.service"
			     "   AND r.version = o.version)",
			     err, errlen);
	if (r == 0) {
		p.releases = sqlite3_changes(st->db);
		r = exec_sql(st,
			     "CREATE TEMP TABLE idmap (old_id INTEGER PRIMARY KEY, new_id INTEGER NOT NULL);"
			     "INSERT OR IGNORE INTO temp.idmap SELECT o.id, m.id FROM old.instances o"
			     " JOIN main.instances m ON m.pid = o.pid AND m.start_time_ticks = o.start_time_ticks"
			     " WHERE o.pid > 0 AND o.state <> 'stopped'",
			     err, errlen);
	}
	if (r == 0)
		r = carry_instances(st, &p, err, errlen);
	if (r == 0)
		r = carry_routing(st, &p, err, errlen);
	if (r == 0)
		r = exec_sql(st, "COMMIT", err, errlen);
	if (r < 0)
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_exec(st->db, "DROP TABLE IF EXISTS temp.idmap; DETACH DATABASE old", NULL, NULL, NULL);
	if (r == 0)
		*ret = p;
	return r;
}

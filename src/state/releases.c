/* releases.c - the runs of release files (release_runs): one row per run,
 * its state and times in columns for the lists, and the whole report as a
 * JSON document that the daemon rewrites at every step
 * (docs/internals/releases.md).  The report is bound through
 * state_bind_text(), so a secret's value never reaches the file.
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include "state/state-internal.h"

static const char *const run_state_names[STATE_RELEASE__COUNT] = {
	[STATE_RELEASE_AWAITING_APPROVAL] = "awaiting-approval",
	[STATE_RELEASE_RUNNING] = "running",
	[STATE_RELEASE_ROLLING_BACK] = "rolling-back",
	[STATE_RELEASE_SUCCEEDED] = "succeeded",
	[STATE_RELEASE_DEGRADED] = "degraded",
	[STATE_RELEASE_ROLLED_BACK] = "rolled-back",
	[STATE_RELEASE_FAILED] = "failed",
	[STATE_RELEASE_REJECTED] = "rejected",
	[STATE_RELEASE_EXPIRED] = "expired",
};

const char *state_release_run_state_name(enum state_release_run_state s)
{
	return (unsigned)s < STATE_RELEASE__COUNT ? run_state_names[s] : "unknown";
}

int state_release_run_state_parse(const char *name)
{
	for (int i = 0; name && i < STATE_RELEASE__COUNT; i++)
		if (!strcmp(name, run_state_names[i]))
			return i;
	return -EINVAL;
}

bool state_release_run_state_terminal(enum state_release_run_state s)
{
	return s >= STATE_RELEASE_SUCCEEDED && s < STATE_RELEASE__COUNT;
}

int state_release_run_begin(struct state *st, const struct state_release_run *run, int64_t *ret_id)
{
	sqlite3_stmt *stmt = NULL;
	int r;

	if (state_check_text(run->name, 256, true) < 0 || state_check_text(run->started_by, 256, true) < 0 ||
	    !run->report || (unsigned)run->state >= STATE_RELEASE__COUNT)
		return -EINVAL;
	r = state_prepare(st,
			  "INSERT INTO release_runs (id, name, env, state, started_by, started_uid, started_at, report)"
			  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
			  &stmt);
	if (r < 0)
		return r;
	if (run->want_id > 0)
		sqlite3_bind_int64(stmt, 1, run->want_id);
	else
		sqlite3_bind_null(stmt, 1);
	state_bind_text(stmt, 2, run->name);
	state_bind_text(stmt, 3, run->env && *run->env ? run->env : NULL);
	sqlite3_bind_text(stmt, 4, run_state_names[run->state], -1, SQLITE_STATIC);
	state_bind_text(stmt, 5, run->started_by);
	sqlite3_bind_int64(stmt, 6, run->started_uid);
	sqlite3_bind_int64(stmt, 7, run->started_at > 0 ? run->started_at : state_now_ms());
	state_bind_text(stmt, 8, run->report);
	r = state_step_done(st, stmt);
	if (r == 0 && ret_id)
		*ret_id = sqlite3_last_insert_rowid(st->db);
	sqlite3_finalize(stmt);
	return r;
}

int state_release_run_update(struct state *st, int64_t id, enum state_release_run_state s, int64_t finished_at,
			     const char *report)
{
	sqlite3_stmt *stmt = NULL;
	int r;

	if ((unsigned)s >= STATE_RELEASE__COUNT || !report)
		return -EINVAL;
	r = state_prepare(st,
			  "UPDATE release_runs SET state = ?2, finished_at = ?3, report = ?4 WHERE id = ?1", &stmt);
	if (r < 0)
		return r;
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_text(stmt, 2, run_state_names[s], -1, SQLITE_STATIC);
	if (finished_at > 0)
		sqlite3_bind_int64(stmt, 3, finished_at);
	else
		sqlite3_bind_null(stmt, 3);
	state_bind_text(stmt, 4, report);
	r = state_step_done(st, stmt);
	if (r == 0 && sqlite3_changes(st->db) == 0)
		r = -ENOENT;
	sqlite3_finalize(stmt);
	return r;
}

/* One row: its columns and the report parsed. */
static json_t *run_row(sqlite3_stmt *stmt, bool with_report)
{
	const char *env = (const char *)sqlite3_column_text(stmt, 2);
	const char *report_text = (const char *)sqlite3_column_text(stmt, 8);
	json_t *report = NULL, *row;

	if (with_report) {
		report = report_text ? json_loads(report_text, 0, NULL) : NULL;
		if (!report)
			report = json_object();
	}
	row = json_pack("{sI ss so ss ss sI sI so}", "id", (json_int_t)sqlite3_column_int64(stmt, 0), "name",
			(const char *)sqlite3_column_text(stmt, 1), "env", env ? json_string(env) : json_null(),
			"state", (const char *)sqlite3_column_text(stmt, 3), "started_by",
			(const char *)sqlite3_column_text(stmt, 4), "started_uid",
			(json_int_t)sqlite3_column_int64(stmt, 5), "started_at",
			(json_int_t)sqlite3_column_int64(stmt, 6), "finished_at",
			sqlite3_column_type(stmt, 7) == SQLITE_NULL ? json_null()
								     : json_integer(sqlite3_column_int64(stmt, 7)));
	if (row && report && json_object_set_new(row, "report", report) < 0) {
		json_decref(row);
		return NULL;
	}
	if (!row)
		json_decref(report);
	return row;
}

#define RUN_COLUMNS "id, name, env, state, started_by, started_uid, started_at, finished_at, report"

static int run_rows(struct state *st, sqlite3_stmt *stmt, bool with_report, json_t **ret)
{
	json_t *array = json_array(), *row;
	int rc, r = 0;

	if (!array) {
		sqlite3_finalize(stmt);
		return -ENOMEM;
	}
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		row = run_row(stmt, with_report);
		if (!row || json_array_append_new(array, row) < 0) {
			r = -ENOMEM;
			break;
		}
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = state_sql_error(st, sqlite3_extended_errcode(st->db));
	sqlite3_finalize(stmt);
	if (r < 0) {
		json_decref(array);
		return r;
	}
	*ret = array;
	return 0;
}

int state_release_run_get(struct state *st, int64_t id, json_t **ret)
{
	sqlite3_stmt *stmt = NULL;
	json_t *rows = NULL;
	int r;

	r = state_prepare(st, "SELECT " RUN_COLUMNS " FROM release_runs WHERE id = ?1", &stmt);
	if (r < 0)
		return r;
	sqlite3_bind_int64(stmt, 1, id);
	r = run_rows(st, stmt, true, &rows);
	if (r < 0)
		return r;
	if (json_array_size(rows) == 0) {
		json_decref(rows);
		return -ENOENT;
	}
	*ret = json_incref(json_array_get(rows, 0));
	json_decref(rows);
	return 0;
}

int state_release_run_list(struct state *st, const struct state_release_run_filter *f, json_t **ret)
{
	sqlite3_stmt *stmt = NULL;
	int r;

	r = state_prepare(st,
			  "SELECT " RUN_COLUMNS " FROM release_runs"
			  " WHERE (?1 IS NULL OR env = ?1) AND (?2 = 0 OR started_at >= ?2)"
			  "   AND (?3 = 0 OR started_at < ?3) AND (?4 = 0 OR finished_at IS NULL)"
			  " ORDER BY id DESC LIMIT ?5",
			  &stmt);
	if (r < 0)
		return r;
	state_bind_text(stmt, 1, f && f->env && *f->env ? f->env : NULL);
	sqlite3_bind_int64(stmt, 2, f ? f->since_ms : 0);
	sqlite3_bind_int64(stmt, 3, f ? f->until_ms : 0);
	sqlite3_bind_int(stmt, 4, f && f->in_flight);
	sqlite3_bind_int64(stmt, 5, f && f->limit ? (int64_t)f->limit : -1);
	return run_rows(st, stmt, f && f->with_report, ret);
}

int state_release_run_next_id(struct state *st, int64_t *ret)
{
	int64_t v = 0;
	int r = state_query_int64(st, "SELECT coalesce(max(id), 0) + 1 FROM release_runs", &v);

	if (r == 0)
		*ret = v;
	return r;
}

/* audit.c - the audit log: who did what, when, to what, with what result.
 * Append-only; arguments are stored as compact JSON and must never hold a
 * secret (the caller builds them from names and versions only). */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "state/state-internal.h"

int state_audit_add(struct state *st, const struct state_audit_entry *e, int64_t *ret_id)
{
	sqlite3_stmt *stmt = NULL;
	char *args = NULL;
	int r;

	if (!e->actor || !*e->actor || !e->action || !*e->action || !e->result || !*e->result)
		return -EINVAL;
	if (e->args) {
		args = json_dumps((const json_t *)e->args, JSON_COMPACT | JSON_ENCODE_ANY);
		if (!args)
			return -ENOMEM;
	}
	r = state_prepare(st,
			  "INSERT INTO audit (at, actor, actor_uid, action, target, args, result, detail, env, release_id)"
			  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
			  &stmt);
	if (r < 0)
		goto out;
	sqlite3_bind_int64(stmt, 1, state_now_ms());
	sqlite3_bind_text(stmt, 2, e->actor, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 3, e->actor_uid);
	sqlite3_bind_text(stmt, 4, e->action, -1, SQLITE_STATIC);
	state_bind_text(stmt, 5, e->target);
	state_bind_text(stmt, 6, args);
	sqlite3_bind_text(stmt, 7, e->result, -1, SQLITE_STATIC);
	state_bind_text(stmt, 8, e->detail);
	state_bind_text(stmt, 9, e->env && *e->env ? e->env : NULL);
	if (e->release_id > 0)
		sqlite3_bind_int64(stmt, 10, e->release_id);
	else
		sqlite3_bind_null(stmt, 10);
	r = state_step_done(st, stmt);
	if (r == 0 && ret_id)
		*ret_id = sqlite3_last_insert_rowid(st->db);
out:
	sqlite3_finalize(stmt);
	free(args);
	return r;
}

static json_t *column_json_text(sqlite3_stmt *stmt, int i)
{
	const char *s = (const char *)sqlite3_column_text(stmt, i);

	return s ? json_string(s) : json_null();
}

static json_t *column_json_int(sqlite3_stmt *stmt, int i)
{
	return sqlite3_column_type(stmt, i) == SQLITE_NULL ? json_null() : json_integer(sqlite3_column_int64(stmt, i));
}

int state_audit_list(struct state *st, const struct state_log_filter *f, json_t **ret)
{
	static const struct state_log_filter all = { 0 };
	sqlite3_stmt *stmt = NULL;
	json_t *array = NULL, *row, *args;
	const char *text;
	int r, rc;

	f = f ? f : &all;
	r = state_prepare(st,
			  "SELECT id, at, actor, actor_uid, action, target, args, result, detail, env, release_id FROM audit"
			  " WHERE (?1 IS NULL OR target = ?1 OR substr(target, 1, length(?1) + 1) = ?1 || '@')"
			  "   AND (?2 IS NULL OR env = ?2) AND (?3 = 0 OR release_id = ?3)"
			  "   AND (?4 = 0 OR at >= ?4) AND (?5 = 0 OR at < ?5)"
			  " ORDER BY id DESC LIMIT ?6",
			  &stmt);
	if (r < 0)
		return r;
	state_bind_text(stmt, 1, f->service);
	state_bind_text(stmt, 2, f->env && *f->env ? f->env : NULL);
	sqlite3_bind_int64(stmt, 3, f->release_id > 0 ? f->release_id : 0);
	sqlite3_bind_int64(stmt, 4, f->since_ms > 0 ? f->since_ms : 0);
	sqlite3_bind_int64(stmt, 5, f->until_ms > 0 ? f->until_ms : 0);
	sqlite3_bind_int64(stmt, 6, f->limit && f->limit <= INT64_MAX ? (int64_t)f->limit : -1);
	array = json_array();
	if (!array) {
		r = -ENOMEM;
		goto out;
	}
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		text = (const char *)sqlite3_column_text(stmt, 6);
		args = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
		row = json_pack("{sI sI so sI so so so so so so so}", "id", (json_int_t)sqlite3_column_int64(stmt, 0),
				"at", (json_int_t)sqlite3_column_int64(stmt, 1), "actor", column_json_text(stmt, 2),
				"actor_uid", (json_int_t)sqlite3_column_int64(stmt, 3),
				"action", column_json_text(stmt, 4), "target", column_json_text(stmt, 5),
				"args", args ? args : json_null(), "result", column_json_text(stmt, 7),
				"detail", column_json_text(stmt, 8), "env", column_json_text(stmt, 9),
				"release_id", column_json_int(stmt, 10));
		if (!row || json_array_append_new(array, row) < 0) {
			r = -ENOMEM;
			goto out;
		}
	}
	if (rc != SQLITE_DONE)
		r = state_sql_error(st, sqlite3_extended_errcode(st->db));
out:
	sqlite3_finalize(stmt);
	if (r < 0) {
		json_decref(array);
		return r;
	}
	*ret = array;
	return 0;
}

void state_actor_name(unsigned uid, bool automatic, char *out, size_t len)
{
	struct passwd pw, *found = NULL;
	char buf[1024];

	if (automatic)
		snprintf(out, len, "cutover (automatic)");
	else if (getpwuid_r((uid_t)uid, &pw, buf, sizeof(buf), &found) == 0 && found)
		snprintf(out, len, "%s", found->pw_name);
	else
		snprintf(out, len, "uid %u", uid);
}

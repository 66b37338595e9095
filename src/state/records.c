/* records.c - the releases, instances and routing tables: what the daemon
 * reads back after a restart to know which artifacts exist, which
 * processes it ran and where traffic went.  Every statement is prepared
 * with bound parameters; writes that touch two tables (the service row and
 * the record) run in one IMMEDIATE transaction. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "state/state-internal.h"

/* ---- releases ------------------------------------------------------------ */

#define RELEASE_COLUMNS "id, service, version, digest, path, size_bytes, created_at"

static int release_read(sqlite3_stmt *stmt, void *row)
{
	struct state_release *r = row;
	bool failed = false;

	r->id = sqlite3_column_int64(stmt, 0);
	state_column_copy(stmt, 1, r->service, sizeof(r->service));
	state_column_copy(stmt, 2, r->version, sizeof(r->version));
	state_column_copy(stmt, 3, r->digest, sizeof(r->digest));
	r->path = state_column_dup(stmt, 4, &failed);
	r->size_bytes = (uint64_t)sqlite3_column_int64(stmt, 5);
	r->created_at = sqlite3_column_int64(stmt, 6);
	return failed ? -ENOMEM : 0;
}

static void release_clear(void *row) { state_release_clear(row); }

static const struct state_row_kind release_row = { sizeof(struct state_release), release_read, release_clear };

int state_release_add(struct state *st, const struct state_release *rel, int64_t *ret_id)
{
	sqlite3_stmt *stmt = NULL;
	int r;

	if (state_check_text(rel->service, STATE_SERVICE_MAX, true) < 0 ||
	    state_check_text(rel->version, STATE_VERSION_MAX, true) < 0 ||
	    strlen(rel->digest) != STATE_DIGEST_HEX || state_check_text(rel->path, 4095, true) < 0 ||
	    rel->size_bytes > INT64_MAX)
		return -EINVAL;
	r = state_begin(st);
	if (r < 0)
		return r;
	r = state_service_insert(st, rel->service);
	if (r < 0)
		goto out;
	r = state_prepare(st,
			  "INSERT INTO releases (service, version, digest, path, size_bytes, created_at)"
			  " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
			  &stmt);
	if (r < 0)
		goto out;
	sqlite3_bind_text(stmt, 1, rel->service, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, rel->version, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, rel->digest, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, rel->path, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 5, (int64_t)rel->size_bytes);
	sqlite3_bind_int64(stmt, 6, rel->created_at ? rel->created_at : state_now_ms());
	r = state_step_done(st, stmt);
	if (r < 0)
		goto out;
	r = state_commit(st);
	if (r == 0 && ret_id)
		*ret_id = sqlite3_last_insert_rowid(st->db);
out:
	sqlite3_finalize(stmt);
	if (r < 0)
		state_rollback(st);
	return r;
}

int state_release_get(struct state *st, const char *service, const char *version,
		      struct state_release *ret)
{
	sqlite3_stmt *stmt = NULL;
	int r;

	r = state_prepare(st, "SELECT " RELEASE_COLUMNS " FROM releases WHERE service = ?1 AND version = ?2",
			  &stmt);
	if (r < 0)
		return r;
	state_bind_text(stmt, 1, service);
	state_bind_text(stmt, 2, version);
	return state_row(st, stmt, &release_row, ret);
}

int state_release_list(struct state *st, const char *service, struct state_release **ret_items,
		       size_t *ret_n)
{
	sqlite3_stmt *stmt = NULL;
	int r;

	r = state_prepare(st, "SELECT " RELEASE_COLUMNS " FROM releases WHERE service = ?1"
			      " ORDER BY created_at, id", &stmt);
	if (r < 0)
		return r;
	state_bind_text(stmt, 1, service);
	return state_rows(st, stmt, &release_row, ret_items, ret_n);
}

int state_release_delete(struct state *st, int64_t id)
{
	sqlite3_stmt *stmt = NULL;
	char *path = NULL;
	bool failed = false;
	int r, rc, remaining = 0;

	r = state_begin(st);
	if (r < 0)
		return r;
	r = state_prepare(st, "SELECT path FROM releases WHERE id = ?1", &stmt);
	if (r < 0)
		goto out;
	sqlite3_bind_int64(stmt, 1, id);
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		r = rc == SQLITE_DONE ? -ENOENT : state_sql_error(st, sqlite3_extended_errcode(st->db));
		goto out;
	}
	path = state_column_dup(stmt, 0, &failed);
	if (failed || !path) {
		r = -ENOMEM;
		goto out;
	}
	sqlite3_finalize(stmt);
	stmt = NULL;
	r = state_prepare(st, "DELETE FROM releases WHERE id = ?1", &stmt);
	if (r < 0)
		goto out;
	sqlite3_bind_int64(stmt, 1, id);
	r = state_step_done(st, stmt);
	if (r < 0)
		goto out;
	sqlite3_finalize(stmt);
	stmt = NULL;
	r = state_prepare(st, "SELECT count(*) FROM releases WHERE path = ?1", &stmt);
	if (r < 0)
		goto out;
	sqlite3_bind_text(stmt, 1, path, -1, SQLITE_STATIC);
	if (sqlite3_step(stmt) != SQLITE_ROW) {
		r = state_sql_error(st, sqlite3_extended_errcode(st->db));
		goto out;
	}
	remaining = sqlite3_column_int(stmt, 0);
	r = state_commit(st);
out:
	sqlite3_finalize(stmt);
	free(path);
	if (r < 0) {
		state_rollback(st);
		return r;
	}
	return remaining;
}

void state_release_clear(struct state_release *rel)
{
	if (!rel)
		return;
	free(rel->path);
	rel->path = NULL;
}

void state_release_array_free(struct state_release *items, size_t n)
{
	for (size_t i = 0; items && i < n; i++)
		state_release_clear(&items[i]);
	free(items);
}

/* ---- instances ----------------------------------------------------------- */

#define INSTANCE_COLUMNS \
	"id, service, version, release_id, pid, pgid, port, start_time_ticks, started_at, state, restarts, log_path"

static int instance_read(sqlite3_stmt *stmt, void *row)
{
	struct state_instance *i = row;
	bool failed = false;
	int s;

	i->id = sqlite3_column_int64(stmt, 0);
	state_column_copy(stmt, 1, i->service, sizeof(i->service));
	state_column_copy(stmt, 2, i->version, sizeof(i->version));
	i->release_id = sqlite3_column_int64(stmt, 3);
	i->pid = sqlite3_column_int(stmt, 4);
	i->pgid = sqlite3_column_int(stmt, 5);
	i->port = sqlite3_column_int(stmt, 6);
	i->start_time_ticks = (uint64_t)sqlite3_column_int64(stmt, 7);
	i->started_at = sqlite3_column_int64(stmt, 8);
	s = state_instance_state_parse((const char *)sqlite3_column_text(stmt, 9));
	i->state = s < 0 ? STATE_INSTANCE_STOPPED : (enum state_instance_state)s;
	i->restarts = sqlite3_column_int(stmt, 10);
	i->log_path = state_column_dup(stmt, 11, &failed);
	return failed ? -ENOMEM : 0;
}

static void instance_clear(void *row) { state_instance_clear(row); }

static const struct state_row_kind instance_row = { sizeof(struct state_instance), instance_read, instance_clear };

static int instance_check(const struct state_instance *inst)
{
	if (state_check_text(inst->service, STATE_SERVICE_MAX, true) < 0 ||
	    state_check_text(inst->version, STATE_VERSION_MAX, true) < 0 ||
	    (unsigned)inst->state >= STATE_INSTANCE__COUNT || inst->start_time_ticks > INT64_MAX)
		return -EINVAL;
	return 0;
}

/* Bind the mutable columns as ?3.. in INSTANCE_COLUMNS order from release_id. */
static void instance_bind(sqlite3_stmt *stmt, const struct state_instance *inst)
{
	if (inst->release_id > 0)
		sqlite3_bind_int64(stmt, 3, inst->release_id);
	else
		sqlite3_bind_null(stmt, 3);
	sqlite3_bind_int(stmt, 4, inst->pid);
	sqlite3_bind_int(stmt, 5, inst->pgid);
	sqlite3_bind_int(stmt, 6, inst->port);
	sqlite3_bind_int64(stmt, 7, (int64_t)inst->start_time_ticks);
	sqlite3_bind_int64(stmt, 8, inst->started_at ? inst->started_at : state_now_ms());
	sqlite3_bind_text(stmt, 9, state_instance_state_name(inst->state), -1, SQLITE_STATIC);
	sqlite3_bind_int(stmt, 10, inst->restarts);
	state_bind_text(stmt, 11, inst->log_path);
}

int state_instance_add(struct state *st, const struct state_instance *inst, int64_t *ret_id)
{
	sqlite3_stmt *stmt = NULL;
	int r;

	if (instance_check(inst) < 0)
		return -EINVAL;
	r = state_begin(st);
	if (r < 0)
		return r;
	r = state_service_insert(st, inst->service);
	if (r < 0)
		goto out;
	r = state_prepare(st,
			  "INSERT INTO instances (service, version, release_id, pid, pgid, port,"
			  " start_time_ticks, started_at, state, restarts, log_path)"
			  " VALUES (?1, ?2,"
			  "         coalesce(?3, (SELECT id FROM releases WHERE service = ?1 AND version = ?2)),"
			  "         ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
			  &stmt);
	if (r < 0)
		goto out;
	sqlite3_bind_text(stmt, 1, inst->service, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, inst->version, -1, SQLITE_STATIC);
	instance_bind(stmt, inst);
	r = state_step_done(st, stmt);
	if (r < 0)
		goto out;
	r = state_commit(st);
	if (r == 0 && ret_id)
		*ret_id = sqlite3_last_insert_rowid(st->db);
out:
	sqlite3_finalize(stmt);
	if (r < 0)
		state_rollback(st);
	return r;
}

int state_instance_update(struct state *st, const struct state_instance *inst)
{
	sqlite3_stmt *stmt = NULL;
	int r;

	if (instance_check(inst) < 0)
		return -EINVAL;
	r = state_prepare(st,
			  "UPDATE instances SET release_id = ?3, pid = ?4, pgid = ?5, port = ?6,"
			  " start_time_ticks = ?7, started_at = ?8, state = ?9, restarts = ?10, log_path = ?11"
			  " WHERE id = ?1",
			  &stmt);
	if (r < 0)
		return r;
	sqlite3_bind_int64(stmt, 1, inst->id);
	instance_bind(stmt, inst);
	r = state_step_done(st, stmt);
	if (r == 0 && sqlite3_changes(st->db) == 0)
		r = -ENOENT;
	sqlite3_finalize(stmt);
	return r;
}

int state_instance_set_state(struct state *st, int64_t id, enum state_instance_state s)
{
	sqlite3_stmt *stmt = NULL;
	int r;

	if ((unsigned)s >= STATE_INSTANCE__COUNT)
		return -EINVAL;
	r = state_prepare(st, "UPDATE instances SET state = ?2 WHERE id = ?1", &stmt);
	if (r < 0)
		return r;
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_text(stmt, 2, state_instance_state_name(s), -1, SQLITE_STATIC);
	r = state_step_done(st, stmt);
	if (r == 0 && sqlite3_changes(st->db) == 0)
		r = -ENOENT;
	sqlite3_finalize(stmt);
	return r;
}

int state_instance_get(struct state *st, int64_t id, struct state_instance *ret)
{
	sqlite3_stmt *stmt = NULL;
	int r;

	r = state_prepare(st, "SELECT " INSTANCE_COLUMNS " FROM instances WHERE id = ?1", &stmt);
	if (r < 0)
		return r;
	sqlite3_bind_int64(stmt, 1, id);
	return state_row(st, stmt, &instance_row, ret);
}

int state_instance_list_live(struct state *st, const char *service, struct state_instance **ret_items,
			     size_t *ret_n)
{
	sqlite3_stmt *stmt = NULL;
	int r;

	r = state_prepare(st, "SELECT " INSTANCE_COLUMNS " FROM instances"
			      " WHERE state <> 'stopped' AND (?1 IS NULL OR service = ?1) ORDER BY id", &stmt);
	if (r < 0)
		return r;
	state_bind_text(stmt, 1, service);
	return state_rows(st, stmt, &instance_row, ret_items, ret_n);
}

void state_instance_clear(struct state_instance *inst)
{
	if (!inst)
		return;
	free(inst->log_path);
	inst->log_path = NULL;
}

void state_instance_array_free(struct state_instance *items, size_t n)
{
	for (size_t i = 0; items && i < n; i++)
		state_instance_clear(&items[i]);
	free(items);
}

int state_process_start_time(int pid, uint64_t *ret_ticks)
{
	char path[64], buf[1024];
	const char *p;
	unsigned long long ticks;
	FILE *f;
	size_t len;
	int field;

	if (pid <= 0)
		return -EINVAL;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = '\0';
	/* "PID (COMM) STATE ...": COMM may hold spaces and ')', so fields are
	 * counted from the last ')'.  The start time is field 22. */
	p = strrchr(buf, ')');
	if (!p)
		return -EIO;
	/* a zombie (Z) or dead (X) process has exited: only its parent (init,
	 * after the daemon that started it died) has yet to reap it */
	if (p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'))
		return -ESRCH;
	for (field = 2; field < 22 && *p; p++)
		if (*p == ' ')
			field++;
	if (field != 22 || sscanf(p, "%llu", &ticks) != 1)
		return -EIO;
	*ret_ticks = ticks;
	return 0;
}

bool state_instance_process_alive(const struct state_instance *inst)
{
	uint64_t ticks;

	return inst->pid > 0 && state_process_start_time(inst->pid, &ticks) == 0 &&
	       ticks == inst->start_time_ticks;
}

/* ---- routing ------------------------------------------------------------- */

static int routing_read(sqlite3_stmt *stmt, void *row)
{
	struct state_routing *r = row;
	const char *text = (const char *)sqlite3_column_text(stmt, 2);
	json_t *ids = text ? json_loads(text, 0, NULL) : NULL;
	size_t i, n;
	int rc = 0;

	state_column_copy(stmt, 0, r->service, sizeof(r->service));
	state_column_copy(stmt, 1, r->version, sizeof(r->version));
	r->updated_at = sqlite3_column_int64(stmt, 3);
	r->instance_ids = NULL;
	r->ninstance_ids = 0;
	n = json_is_array(ids) ? json_array_size(ids) : 0;
	if (n) {
		r->instance_ids = calloc(n, sizeof(*r->instance_ids));
		if (!r->instance_ids) {
			rc = -ENOMEM;
			goto out;
		}
		for (i = 0; i < n; i++)
			r->instance_ids[i] = json_integer_value(json_array_get(ids, i));
		r->ninstance_ids = n;
	}
out:
	json_decref(ids);
	return rc;
}

int state_routing_write(struct state *st, const char *service, const char *version, const int64_t *ids,
			size_t nids)
{
	sqlite3_stmt *stmt = NULL;
	json_t *array;
	char *text = NULL;
	int r;

	if (state_check_text(service, STATE_SERVICE_MAX, true) < 0 ||
	    state_check_text(version, STATE_VERSION_MAX, true) < 0 || (nids && !ids))
		return -EINVAL;
	array = json_array();
	for (size_t i = 0; array && i < nids; i++)
		if (json_array_append_new(array, json_integer(ids[i])) < 0)
			break;
	text = array ? json_dumps(array, JSON_COMPACT) : NULL;
	json_decref(array);
	if (!text)
		return -ENOMEM;
	r = state_service_insert(st, service);
	if (r < 0)
		goto out;
	r = state_prepare(st,
			  "INSERT INTO routing (service, version, instance_ids, updated_at) VALUES (?1, ?2, ?3, ?4)"
			  " ON CONFLICT (service) DO UPDATE SET version = excluded.version,"
			  " instance_ids = excluded.instance_ids, updated_at = excluded.updated_at",
			  &stmt);
	if (r < 0)
		goto out;
	sqlite3_bind_text(stmt, 1, service, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, version, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, text, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 4, state_now_ms());
	r = state_step_done(st, stmt);
out:
	sqlite3_finalize(stmt);
	free(text);
	return r;
}

int state_routing_set(struct state *st, const char *service, const char *version, const int64_t *ids,
		      size_t nids)
{
	int r = state_begin(st);

	if (r < 0)
		return r;
	r = state_routing_write(st, service, version, ids, nids);
	if (r == 0)
		r = state_commit(st);
	if (r < 0)
		state_rollback(st);
	return r;
}

static void routing_clear(void *row) { state_routing_clear(row); }

static const struct state_row_kind routing_row = { sizeof(struct state_routing), routing_read, routing_clear };

int state_routing_get(struct state *st, const char *service, struct state_routing *ret)
{
	sqlite3_stmt *stmt = NULL;
	int r;

	r = state_prepare(st, "SELECT service, version, instance_ids, updated_at FROM routing WHERE service = ?1",
			  &stmt);
	if (r < 0)
		return r;
	state_bind_text(stmt, 1, service);
	return state_row(st, stmt, &routing_row, ret);
}

int state_routing_list(struct state *st, struct state_routing **ret_items, size_t *ret_n)
{
	sqlite3_stmt *stmt = NULL;
	int r;

	r = state_prepare(st, "SELECT service, version, instance_ids, updated_at FROM routing ORDER BY service",
			  &stmt);
	if (r < 0)
		return r;
	return state_rows(st, stmt, &routing_row, ret_items, ret_n);
}

void state_routing_clear(struct state_routing *r)
{
	if (!r)
		return;
	free(r->instance_ids);
	r->instance_ids = NULL;
	r->ninstance_ids = 0;
}

void state_routing_array_free(struct state_routing *items, size_t n)
{
	for (size_t i = 0; items && i < n; i++)
		state_routing_clear(&items[i]);
	free(items);
}

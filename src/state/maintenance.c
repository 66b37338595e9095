/* maintenance.c - the services in maintenance (`cutover maintenance on`):
 * one row each, what the proxy answers them with (a page, or NULL for the
 * built-in one, and the Retry-After), since when and by whom.  The daemon
 * writes a row through its state worker when an operator turns maintenance
 * on, deletes it when it goes off, and reads them all at start, so a
 * service stays in maintenance across restarts and upgrades.  The table
 * has no foreign key: an unmanaged service (static targets) is in no other
 * table.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "state/state-internal.h"

static void maintenance_clear_row(void *row)
{
	state_maintenance_clear(row);
}

static int maintenance_read(sqlite3_stmt *stmt, void *row)
{
	struct state_maintenance *m = row;
	bool failed = false;

	state_column_copy(stmt, 0, m->service, sizeof(m->service));
	m->since = sqlite3_column_int64(stmt, 1);
	state_column_copy(stmt, 2, m->started_by, sizeof(m->started_by));
	m->page = state_column_dup(stmt, 3, &failed);
	m->retry_after = (unsigned)sqlite3_column_int64(stmt, 4);
	return failed ? -ENOMEM : 0;
}

static const struct state_row_kind maintenance_row = { sizeof(struct state_maintenance), maintenance_read,
						       maintenance_clear_row };

int state_maintenance_set(struct state *st, const struct state_maintenance *m)
{
	sqlite3_stmt *stmt = NULL;
	int r;

	if (state_check_text(m->service, STATE_SERVICE_MAX, true) < 0 ||
	    state_check_text(m->started_by, STATE_ACTOR_MAX, true) < 0 ||
	    (m->page && strlen(m->page) > STATE_MAINTENANCE_PAGE_MAX) || m->retry_after < 1 ||
	    m->retry_after > STATE_MAINTENANCE_RETRY_MAX)
		return -EINVAL;
	r = state_prepare(st,
			  "INSERT OR REPLACE INTO maintenance (service, since, started_by, page, retry_after)"
			  " VALUES (?1, ?2, ?3, ?4, ?5)",
			  &stmt);
	if (r < 0)
		return r;
	sqlite3_bind_text(stmt, 1, m->service, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, m->since > 0 ? m->since : state_now_ms());
	state_bind_text(stmt, 3, m->started_by);
	r = state_bind_text(stmt, 4, m->page);
	sqlite3_bind_int64(stmt, 5, m->retry_after);
	if (r == 0)
		r = state_step_done(st, stmt);
	sqlite3_finalize(stmt);
	return r;
}

int state_maintenance_delete(struct state *st, const char *service)
{
	sqlite3_stmt *stmt = NULL;
	int r;

	r = state_prepare(st, "DELETE FROM maintenance WHERE service = ?1", &stmt);
	if (r < 0)
		return r;
	sqlite3_bind_text(stmt, 1, service ? service : "", -1, SQLITE_STATIC);
	r = state_step_done(st, stmt);
	if (r == 0 && sqlite3_changes(st->db) == 0)
		r = -ENOENT;
	sqlite3_finalize(stmt);
	return r;
}

int state_maintenance_list(struct state *st, struct state_maintenance **ret_items, size_t *ret_n)
{
	sqlite3_stmt *stmt = NULL;
	int r;

	r = state_prepare(st, "SELECT service, since, started_by, page, retry_after FROM maintenance ORDER BY service",
			  &stmt);
	if (r < 0)
		return r;
	return state_rows(st, stmt, &maintenance_row, ret_items, ret_n);
}

void state_maintenance_clear(struct state_maintenance *m)
{
	if (!m)
		return;
	free(m->page);
	m->page = NULL;
}

void state_maintenance_array_free(struct state_maintenance *items, size_t n)
{
	for (size_t i = 0; items && i < n; i++)
		state_maintenance_clear(&items[i]);
	free(items);
}

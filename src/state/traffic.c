/* traffic.c - traffic_minutes: what the proxy answered per service and
 * minute (requests, and of those the failed ones), written by the daemon's
 * state worker once a minute is over and read for the uptime figures of
 * the status page (24 h and 7 d).  A row is added to, never replaced: the
 * minute in which one daemon stops and the next starts is counted by both.
 * Eight days are kept; the daemon deletes what is older as it writes.
 */
#include <errno.h>
#include <stdint.h>
#include "state/state-internal.h"

static int traffic_row_check(const struct state_traffic_minute *r)
{
	if (state_check_text(r->service, STATE_SERVICE_MAX, true) < 0 || r->failed > r->requests ||
	    r->requests > INT64_MAX || r->minute < 0)
		return -EINVAL;
	return 0;
}

int state_traffic_add(struct state *st, const struct state_traffic_minute *rows, size_t n, int64_t keep_from)
{
	sqlite3_stmt *stmt = NULL;
	int r;

	for (size_t i = 0; i < n; i++)
		if (traffic_row_check(&rows[i]) < 0)
			return -EINVAL;
	r = state_begin(st);
	if (r < 0)
		return r;
	r = state_prepare(st,
			  "INSERT INTO traffic_minutes (service, minute, requests, failed) VALUES (?1, ?2, ?3, ?4)"
			  " ON CONFLICT (service, minute) DO UPDATE SET requests = requests + excluded.requests,"
			  " failed = failed + excluded.failed",
			  &stmt);
	for (size_t i = 0; r == 0 && i < n; i++) {
		sqlite3_reset(stmt);
		sqlite3_bind_text(stmt, 1, rows[i].service, -1, SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 2, rows[i].minute);
		sqlite3_bind_int64(stmt, 3, (int64_t)rows[i].requests);
		sqlite3_bind_int64(stmt, 4, (int64_t)rows[i].failed);
		r = state_step_done(st, stmt);
	}
	sqlite3_finalize(stmt);
	stmt = NULL;
	if (r == 0 && keep_from > 0) {
		r = state_prepare(st, "DELETE FROM traffic_minutes WHERE minute < ?1", &stmt);
		if (r == 0) {
			sqlite3_bind_int64(stmt, 1, keep_from);
			r = state_step_done(st, stmt);
		}
		sqlite3_finalize(stmt);
	}
	if (r == 0)
		r = state_commit(st);
	if (r < 0)
		state_rollback(st);
	return r;
}

int state_traffic_sum(struct state *st, const char *service, int64_t from, int64_t to, uint64_t *ret_requests,
		      uint64_t *ret_failed)
{
	sqlite3_stmt *stmt = NULL;
	int r, rc;

	if (state_check_text(service, STATE_SERVICE_MAX, true) < 0)
		return -EINVAL;
	r = state_prepare(st,
			  "SELECT coalesce(sum(requests), 0), coalesce(sum(failed), 0) FROM traffic_minutes"
			  " WHERE service = ?1 AND minute >= ?2 AND minute <= ?3",
			  &stmt);
	if (r < 0)
		return r;
	sqlite3_bind_text(stmt, 1, service, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, from);
	sqlite3_bind_int64(stmt, 3, to);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		*ret_requests = (uint64_t)sqlite3_column_int64(stmt, 0);
		*ret_failed = (uint64_t)sqlite3_column_int64(stmt, 1);
	} else {
		r = state_sql_error(st, sqlite3_extended_errcode(st->db));
	}
	sqlite3_finalize(stmt);
	return r;
}

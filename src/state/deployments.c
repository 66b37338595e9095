/* deployments.c - the deployment state machine as recorded: one row per
 * deployment and one deployment_events row per phase transition, written
 * together in one transaction so that the row's state and its last event
 * never disagree, even across a kill -9.  Also `cutover history`, which
 * reads both back as JSON (with the release run each was part of). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "state/state-internal.h"

#define DEPLOYMENT_COLUMNS \
	"id, service, from_version, to_version, strategy, state, reason, started_at, finished_at, digest," \
	" requested_uid, expires_at, promoted_from"

static int deployment_read(sqlite3_stmt *stmt, void *row)
{
	struct state_deployment *d = row;
	bool failed = false;
	int s;

	d->id = sqlite3_column_int64(stmt, 0);
	state_column_copy(stmt, 1, d->service, sizeof(d->service));
	state_column_copy(stmt, 2, d->from_version, sizeof(d->from_version));
	state_column_copy(stmt, 3, d->to_version, sizeof(d->to_version));
	state_column_copy(stmt, 4, d->strategy, sizeof(d->strategy));
	s = state_deployment_state_parse((const char *)sqlite3_column_text(stmt, 5));
	d->state = state_deployment_state_as_read(d->strategy,
						  s < 0 ? STATE_DEPLOYMENT_FAILED : (enum state_deployment_state)s);
	d->reason = state_column_dup(stmt, 6, &failed);
	d->started_at = sqlite3_column_int64(stmt, 7);
	d->finished_at = sqlite3_column_int64(stmt, 8);
	state_column_copy(stmt, 9, d->digest, sizeof(d->digest));
	d->requested_uid = sqlite3_column_type(stmt, 10) == SQLITE_NULL ? -1 : sqlite3_column_int64(stmt, 10);
	d->expires_at = sqlite3_column_int64(stmt, 11);
	state_column_copy(stmt, 12, d->promoted_from, sizeof(d->promoted_from));
	return failed ? -ENOMEM : 0;
}

static void deployment_clear(void *row) { state_deployment_clear(row); }

static const struct state_row_kind deployment_row = { sizeof(struct state_deployment), deployment_read,
						      deployment_clear };

static int event_read(sqlite3_stmt *stmt, void *row)
{
	struct state_deployment_event *e = row;
	bool failed = false;
	int to;

	e->id = sqlite3_column_int64(stmt, 0);
	e->deployment_id = sqlite3_column_int64(stmt, 1);
	e->at = sqlite3_column_int64(stmt, 2);
	e->from_state = state_deployment_state_parse((const char *)sqlite3_column_text(stmt, 3));
	if (e->from_state < 0)
		e->from_state = -1;
	to = state_deployment_state_parse((const char *)sqlite3_column_text(stmt, 4));
	e->to_state = to < 0 ? STATE_DEPLOYMENT_FAILED : (enum state_deployment_state)to;
	e->detail = state_column_dup(stmt, 5, &failed);
	return failed ? -ENOMEM : 0;
}

static void event_clear(void *row)
{
	struct state_deployment_event *e = row;

	free(e->detail);
	e->detail = NULL;
}

static const struct state_row_kind event_row = { sizeof(struct state_deployment_event), event_read, event_clear };

/* Insert an event row (inside the caller's transaction).  from < 0: none. */
static int event_insert(struct state *st, int64_t id, int from, enum state_deployment_state to,
			const char *detail, int64_t at)
{
	sqlite3_stmt *stmt = NULL;
	int r;

	r = state_prepare(st,
			  "INSERT INTO deployment_events (deployment_id, at, from_state, to_state, detail)"
			  " VALUES (?1, ?2, ?3, ?4, ?5)",
			  &stmt);
	if (r < 0)
		return r;
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_int64(stmt, 2, at);
	state_bind_text(stmt, 3, from < 0 ? NULL : state_deployment_state_name((enum state_deployment_state)from));
	sqlite3_bind_text(stmt, 4, state_deployment_state_name(to), -1, SQLITE_STATIC);
	state_bind_text(stmt, 5, detail);
	r = state_step_done(st, stmt);
	sqlite3_finalize(stmt);
	return r;
}

int state_deployment_begin(struct state *st, const char *service, const char *from_version,
			   const char *to_version, const char *strategy, const char *detail,
			   int64_t *ret_id)
{
	return state_deployment_begin_as(st, 0, service, from_version, to_version, strategy, detail, ret_id);
}

int state_deployment_next_id(struct state *st, int64_t *ret)
{
	return state_query_int64(st, "SELECT coalesce(max(id), 0) + 1 FROM deployments", ret);
}

int state_deployment_begin_as(struct state *st, int64_t want_id, const char *service, const char *from_version,
			      const char *to_version, const char *strategy, const char *detail, int64_t *ret_id)
{
	struct state_deployment_new n = { .want_id = want_id, .service = service, .from_version = from_version,
					  .to_version = to_version, .strategy = strategy, .detail = detail,
					  .state = STATE_DEPLOYMENT_STARTING, .requested_uid = -1 };

	return state_deployment_insert(st, &n, ret_id);
}

static bool digest_valid(const char *digest)
{
	if (!digest)
		return true;
	if (strlen(digest) != STATE_DIGEST_HEX)
		return false;
	for (const char *p = digest; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

int state_deployment_insert(struct state *st, const struct state_deployment_new *n, int64_t *ret_id)
{
	sqlite3_stmt *stmt = NULL;
	int64_t now = state_now_ms(), id = 0;
	int r;

	if (state_check_text(n->service, STATE_SERVICE_MAX, true) < 0 ||
	    state_check_text(n->from_version, STATE_VERSION_MAX, false) < 0 ||
	    state_check_text(n->to_version, STATE_VERSION_MAX, true) < 0 ||
	    state_check_text(n->strategy, STATE_STRATEGY_MAX, true) < 0 ||
	    state_check_text(n->promoted_from, STATE_ENV_MAX, false) < 0 || !digest_valid(n->digest) ||
	    (n->state != STATE_DEPLOYMENT_STARTING && n->state != STATE_DEPLOYMENT_AWAITING_APPROVAL))
		return -EINVAL;
	r = state_begin(st);
	if (r < 0)
		return r;
	r = state_service_insert(st, n->service);
	if (r < 0)
		goto out;
	r = state_prepare(st,
			  "INSERT INTO deployments (id, service, from_version, to_version, strategy, state, started_at,"
			  "                         digest, requested_uid, expires_at, promoted_from, release_id, env)"
			  " VALUES (?6, ?1, ?2, ?3, ?4, ?7, ?5, ?8, ?9, ?10, ?11, ?12, ?13)",
			  &stmt);
	if (r < 0)
		goto out;
	if (n->want_id > 0)
		sqlite3_bind_int64(stmt, 6, n->want_id);
	else
		sqlite3_bind_null(stmt, 6); /* the next rowid */
	sqlite3_bind_text(stmt, 1, n->service, -1, SQLITE_STATIC);
	state_bind_text(stmt, 2, n->from_version && *n->from_version ? n->from_version : NULL);
	sqlite3_bind_text(stmt, 3, n->to_version, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, n->strategy, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 5, now);
	sqlite3_bind_text(stmt, 7, state_deployment_state_name(n->state), -1, SQLITE_STATIC);
	state_bind_text(stmt, 8, n->digest && *n->digest ? n->digest : NULL);
	if (n->requested_uid >= 0)
		sqlite3_bind_int64(stmt, 9, n->requested_uid);
	else
		sqlite3_bind_null(stmt, 9);
	if (n->expires_at > 0)
		sqlite3_bind_int64(stmt, 10, n->expires_at);
	else
		sqlite3_bind_null(stmt, 10);
	state_bind_text(stmt, 11, n->promoted_from && *n->promoted_from ? n->promoted_from : NULL);
	if (n->release_id > 0)
		sqlite3_bind_int64(stmt, 12, n->release_id);
	else
		sqlite3_bind_null(stmt, 12);
	state_bind_text(stmt, 13, n->env && *n->env ? n->env : NULL);
	r = state_step_done(st, stmt);
	if (r < 0)
		goto out;
	id = sqlite3_last_insert_rowid(st->db);
	r = event_insert(st, id, -1, n->state, n->detail, now);
	if (r < 0)
		goto out;
	r = state_commit(st);
out:
	sqlite3_finalize(stmt);
	if (r < 0) {
		state_rollback(st);
		return r;
	}
	if (ret_id)
		*ret_id = id;
	return 0;
}

/* Move deployment ID to TO, with reason/finished_at when TO is terminal,
 * and, when ROUTE_VERSION is set, the service's routing, all in one
 * transaction. */
static int deployment_move(struct state *st, int64_t id, enum state_deployment_state to, const char *text,
			   const char *route_version, const int64_t *ids, size_t nids)
{
	sqlite3_stmt *stmt = NULL;
	int64_t now = state_now_ms();
	bool terminal = state_deployment_state_terminal(to);
	char service[STATE_SERVICE_MAX + 1];
	int r, rc, from;

	if ((unsigned)to >= STATE_DEPLOYMENT__COUNT)
		return -EINVAL;
	r = state_begin(st);
	if (r < 0)
		return r;
	r = state_prepare(st, "SELECT state, service FROM deployments WHERE id = ?1", &stmt);
	if (r < 0)
		goto out;
	sqlite3_bind_int64(stmt, 1, id);
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		r = rc == SQLITE_DONE ? -ENOENT : state_sql_error(st, sqlite3_extended_errcode(st->db));
		goto out;
	}
	from = state_deployment_state_parse((const char *)sqlite3_column_text(stmt, 0));
	if (from < 0 || state_deployment_state_terminal((enum state_deployment_state)from)) {
		r = -EINVAL;
		goto out;
	}
	state_column_copy(stmt, 1, service, sizeof(service));
	sqlite3_finalize(stmt);
	stmt = NULL;
	if (route_version) {
		r = state_routing_write(st, service, route_version, ids, nids);
		if (r < 0)
			goto out;
	}
	r = state_prepare(st,
			  terminal ? "UPDATE deployments SET state = ?2, reason = ?3, finished_at = ?4 WHERE id = ?1"
				   : "UPDATE deployments SET state = ?2 WHERE id = ?1",
			  &stmt);
	if (r < 0)
		goto out;
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_text(stmt, 2, state_deployment_state_name(to), -1, SQLITE_STATIC);
	if (terminal) {
		state_bind_text(stmt, 3, text);
		sqlite3_bind_int64(stmt, 4, now);
	}
	r = state_step_done(st, stmt);
	if (r < 0)
		goto out;
	r = event_insert(st, id, from, to, text, now);
	if (r < 0)
		goto out;
	r = state_commit(st);
out:
	sqlite3_finalize(stmt);
	if (r < 0)
		state_rollback(st);
	return r;
}

int state_deployment_transition(struct state *st, int64_t id, enum state_deployment_state to,
				const char *detail)
{
	if ((unsigned)to >= STATE_DEPLOYMENT__COUNT || state_deployment_state_terminal(to))
		return -EINVAL;
	return deployment_move(st, id, to, detail, NULL, NULL, 0);
}

int state_deployment_finish(struct state *st, int64_t id, enum state_deployment_state to,
			    const char *reason)
{
	if (!state_deployment_state_terminal(to))
		return -EINVAL;
	return deployment_move(st, id, to, reason, NULL, NULL, 0);
}

int state_deployment_route(struct state *st, int64_t id, enum state_deployment_state to, const char *text,
			   const char *version, const int64_t *ids, size_t nids)
{
	if ((unsigned)to >= STATE_DEPLOYMENT__COUNT || state_check_text(version, STATE_VERSION_MAX, true) < 0)
		return -EINVAL;
	return deployment_move(st, id, to, text, version, ids, nids);
}

int state_deployment_start(struct state *st, int64_t id, const char *from_version, const char *strategy,
			   const char *digest, const char *detail)
{
	struct state_deployment cur = { 0 };
	sqlite3_stmt *stmt = NULL;
	int r;

	if (state_check_text(from_version, STATE_VERSION_MAX, false) < 0 ||
	    state_check_text(strategy, STATE_STRATEGY_MAX, true) < 0 || !digest_valid(digest))
		return -EINVAL;
	r = state_begin(st);
	if (r < 0)
		return r;
	r = state_deployment_get(st, id, &cur);
	if (r == 0 && cur.state != STATE_DEPLOYMENT_AWAITING_APPROVAL)
		r = -EINVAL;
	state_deployment_clear(&cur);
	if (r < 0)
		goto out;
	r = state_prepare(st,
			  "UPDATE deployments SET from_version = ?2, strategy = ?3, digest = coalesce(?4, digest),"
			  " expires_at = NULL WHERE id = ?1",
			  &stmt);
	if (r < 0)
		goto out;
	sqlite3_bind_int64(stmt, 1, id);
	state_bind_text(stmt, 2, from_version && *from_version ? from_version : NULL);
	sqlite3_bind_text(stmt, 3, strategy, -1, SQLITE_STATIC);
	state_bind_text(stmt, 4, digest && *digest ? digest : NULL);
	r = state_step_done(st, stmt);
	if (r == 0)
		r = deployment_move(st, id, STATE_DEPLOYMENT_STARTING, detail, NULL, NULL, 0);
	if (r == 0)
		r = state_commit(st);
out:
	sqlite3_finalize(stmt);
	if (r < 0)
		state_rollback(st);
	return r;
}

int state_deployment_last_done(struct state *st, const char *service, struct state_deployment *ret)
{
	sqlite3_stmt *stmt = NULL;
	int r;

	/* (a rollback an older cutover recorded as 'rolled-back' had succeeded:
	 * state_deployment_state_as_read) */
	r = state_prepare(st, "SELECT " DEPLOYMENT_COLUMNS " FROM deployments WHERE service = ?1 AND"
			      " (state = 'done' OR (state = 'rolled-back' AND strategy = 'rollback'))"
			      " ORDER BY id DESC LIMIT 1", &stmt);
	if (r < 0)
		return r;
	state_bind_text(stmt, 1, service);
	return state_row(st, stmt, &deployment_row, ret);
}

int state_deployment_get(struct state *st, int64_t id, struct state_deployment *ret)
{
	sqlite3_stmt *stmt = NULL;
	int r;

	r = state_prepare(st, "SELECT " DEPLOYMENT_COLUMNS " FROM deployments WHERE id = ?1", &stmt);
	if (r < 0)
		return r;
	sqlite3_bind_int64(stmt, 1, id);
	return state_row(st, stmt, &deployment_row, ret);
}

int state_deployment_list(struct state *st, const char *service, size_t limit,
			  struct state_deployment **ret_items, size_t *ret_n)
{
	sqlite3_stmt *stmt = NULL;
	int r;

	r = state_prepare(st, "SELECT " DEPLOYMENT_COLUMNS " FROM deployments"
			      " WHERE (?1 IS NULL OR service = ?1) ORDER BY id DESC LIMIT ?2", &stmt);
	if (r < 0)
		return r;
	state_bind_text(stmt, 1, service);
	sqlite3_bind_int64(stmt, 2, limit && limit <= INT64_MAX ? (int64_t)limit : -1);
	return state_rows(st, stmt, &deployment_row, ret_items, ret_n);
}

int state_deployment_list_in_flight(struct state *st, const char *service,
				    struct state_deployment **ret_items, size_t *ret_n)
{
	sqlite3_stmt *stmt = NULL;
	int r;

	r = state_prepare(st, "SELECT " DEPLOYMENT_COLUMNS " FROM deployments"
			      " WHERE finished_at IS NULL AND (?1 IS NULL OR service = ?1) ORDER BY id", &stmt);
	if (r < 0)
		return r;
	state_bind_text(stmt, 1, service);
	return state_rows(st, stmt, &deployment_row, ret_items, ret_n);
}

int state_deployment_events(struct state *st, int64_t id, struct state_deployment_event **ret_items,
			    size_t *ret_n)
{
	sqlite3_stmt *stmt = NULL;
	int r;

	r = state_prepare(st, "SELECT id, deployment_id, at, from_state, to_state, detail"
			      " FROM deployment_events WHERE deployment_id = ?1 ORDER BY id", &stmt);
	if (r < 0)
		return r;
	sqlite3_bind_int64(stmt, 1, id);
	return state_rows(st, stmt, &event_row, ret_items, ret_n);
}

void state_deployment_clear(struct state_deployment *d)
{
	if (!d)
		return;
	free(d->reason);
	d->reason = NULL;
}

void state_deployment_array_free(struct state_deployment *items, size_t n)
{
	for (size_t i = 0; items && i < n; i++)
		state_deployment_clear(&items[i]);
	free(items);
}

void state_deployment_event_array_free(struct state_deployment_event *items, size_t n)
{
	for (size_t i = 0; items && i < n; i++)
		event_clear(&items[i]);
	free(items);
}

/* ---- history ------------------------------------------------------------- */

static json_t *text_or_null(const char *s)
{
	return s && *s ? json_string(s) : json_null();
}

static json_t *ms_or_null(int64_t ms)
{
	return ms ? json_integer(ms) : json_null();
}

static json_t *history_entry(struct state *st, const struct state_deployment *d, int *err)
{
	struct state_deployment_event *events = NULL;
	size_t nevents = 0;
	json_t *entry, *list;
	int r;

	entry = json_pack("{sI so so so ss so so so so so so so so}", "id", (json_int_t)d->id,
			  "service", text_or_null(d->service), "from_version", text_or_null(d->from_version),
			  "to_version", text_or_null(d->to_version), "kind", state_deployment_kind(d),
			  "strategy", text_or_null(d->strategy),
			  "state", text_or_null(state_deployment_state_name(d->state)),
			  "reason", text_or_null(d->reason), "started_at", ms_or_null(d->started_at),
			  "finished_at", ms_or_null(d->finished_at),
			  "duration_ms", d->finished_at ? json_integer(d->finished_at - d->started_at) : json_null(),
			  "digest", text_or_null(d->digest), "promoted_from", text_or_null(d->promoted_from));
	if (entry && d->state == STATE_DEPLOYMENT_AWAITING_APPROVAL)
		json_object_set_new(entry, "expires_at", ms_or_null(d->expires_at));
	if (!entry) {
		*err = -ENOMEM;
		return NULL;
	}
	r = state_deployment_events(st, d->id, &events, &nevents);
	if (r < 0) {
		*err = r;
		json_decref(entry);
		return NULL;
	}
	list = json_array();
	for (size_t i = 0; list && i < nevents; i++) {
		const struct state_deployment_event *e = &events[i];
		/* (the states as read: see state_deployment_state_as_read) */
		enum state_deployment_state to = state_deployment_state_as_read(d->strategy, e->to_state), from;
		from = state_deployment_state_as_read(d->strategy, (enum state_deployment_state)e->from_state);
		json_t *ev = json_pack("{sI so so so}", "at", (json_int_t)e->at, "from_state",
				       e->from_state < 0 ? json_null() : json_string(state_deployment_state_name(from)),
				       "to_state", json_string(state_deployment_state_name(to)),
				       "detail", text_or_null(e->detail));
		if (!ev || json_array_append_new(list, ev) < 0) {
			json_decref(list);
			list = NULL;
		}
	}
	state_deployment_event_array_free(events, nevents);
	if (!list || json_object_set_new(entry, "events", list) < 0) {
		json_decref(entry);
		*err = -ENOMEM;
		return NULL;
	}
	return entry;
}

/* The release run deployment ID was part of, and that run's environment,
 * as members release_id and env of entry (null: none). */
static int history_release(struct state *st, int64_t id, json_t *entry)
{
	sqlite3_stmt *stmt = NULL;
	const char *env;
	json_t *release = json_null(), *where = json_null();
	int r, rc;

	r = state_prepare(st, "SELECT d.release_id, coalesce(d.env, r.env) FROM deployments d"
			      " LEFT JOIN release_runs r ON r.id = d.release_id WHERE d.id = ?1", &stmt);
	if (r < 0)
		return r;
	sqlite3_bind_int64(stmt, 1, id);
	if ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (sqlite3_column_type(stmt, 0) != SQLITE_NULL)
			release = json_integer(sqlite3_column_int64(stmt, 0));
		if ((env = (const char *)sqlite3_column_text(stmt, 1)))
			where = json_string(env);
	} else if (rc != SQLITE_DONE) {
		r = state_sql_error(st, sqlite3_extended_errcode(st->db));
	}
	sqlite3_finalize(stmt);
	if (r < 0) {
		json_decref(release);
		json_decref(where);
		return r;
	}
	/* (json_object_set_new takes the value, also when it fails) */
	r = json_object_set_new(entry, "release_id", release);
	return json_object_set_new(entry, "env", where) < 0 || r < 0 ? -ENOMEM : 0;
}

/* The deployments F selects, newest first. */
static int history_rows(struct state *st, const struct state_log_filter *f, struct state_deployment **ret_items,
			size_t *ret_n)
{
	sqlite3_stmt *stmt = NULL;
	int r;

	r = state_prepare(st, "SELECT " DEPLOYMENT_COLUMNS " FROM deployments"
			      " WHERE (?1 IS NULL OR service = ?1) AND (?2 = 0 OR release_id = ?2)"
			      "   AND (?3 = 0 OR started_at >= ?3) AND (?4 = 0 OR started_at < ?4)"
			      "   AND (?5 IS NULL OR env = ?5"
			      "        OR (env IS NULL AND release_id IN (SELECT id FROM release_runs WHERE env = ?5)))"
			      " ORDER BY id DESC LIMIT ?6", &stmt);
	if (r < 0)
		return r;
	state_bind_text(stmt, 1, f->service);
	sqlite3_bind_int64(stmt, 2, f->release_id > 0 ? f->release_id : 0);
	sqlite3_bind_int64(stmt, 3, f->since_ms > 0 ? f->since_ms : 0);
	sqlite3_bind_int64(stmt, 4, f->until_ms > 0 ? f->until_ms : 0);
	state_bind_text(stmt, 5, f->env && *f->env ? f->env : NULL);
	sqlite3_bind_int64(stmt, 6, f->limit && f->limit <= INT64_MAX ? (int64_t)f->limit : -1);
	return state_rows(st, stmt, &deployment_row, ret_items, ret_n);
}

int state_history(struct state *st, const struct state_log_filter *f, json_t **ret)
{
	static const struct state_log_filter all = { 0 };
	struct state_deployment *items = NULL;
	size_t n = 0;
	json_t *array = NULL, *entry;
	int r;

	r = history_rows(st, f ? f : &all, &items, &n);
	if (r < 0)
		return r;
	array = json_array();
	if (!array) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		entry = history_entry(st, &items[i], &r);
		if (entry && (r = history_release(st, items[i].id, entry)) < 0) {
			json_decref(entry);
			goto out;
		}
		if (!entry || json_array_append_new(array, entry) < 0) {
			r = r < 0 ? r : -ENOMEM;
			goto out;
		}
	}
	*ret = array;
	array = NULL;
out:
	json_decref(array);
	state_deployment_array_free(items, n);
	return r;
}

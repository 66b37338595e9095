/* lineage.c - which versions of a service served, in order, and so what
 * `cutover rollback` goes back to, as the deployments recorded it.
 *
 * The rule (docs/internals/deploy.md, "Rollback"): a version served when a
 * deploy of it finished `done` (its watch window passed: known-good).  A
 * rollback that finished `done` went back to a version that had served: the
 * versions above it leave the lineage, so the next rollback steps back one
 * more.  A deploy that failed, was aborted or was rolled back never served
 * as known-good and changes nothing.  The rollback target is the version
 * below the one live.  The daemon reads the lineage at start and applies
 * each deployment as it finishes (the same function), so its answer
 * survives a restart; `cutover release prune` reads it to keep the
 * target's release.
 *
 * Everything but state_lineage_read() is pure and never blocks (the daemon
 * calls it on its loop thread).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "state/state-internal.h"

/* Rows an older cutover wrote: an instant rollback finished as
 * 'rolled-back' (the rollback itself, which had succeeded).  A rollback's
 * plan has no watch, so nothing else can roll one back: such a row is read
 * as 'done', as cutover records it now. */
enum state_deployment_state state_deployment_state_as_read(const char *strategy, enum state_deployment_state s)
{
	if (s == STATE_DEPLOYMENT_ROLLED_BACK && strategy && !strcmp(strategy, "rollback"))
		return STATE_DEPLOYMENT_DONE;
	return s;
}

const char *state_deployment_kind(const struct state_deployment *d)
{
	if (!strcmp(d->strategy, "rollback"))
		return "rollback";
	if (d->from_version[0] && !strcmp(d->from_version, d->to_version))
		return "restart";
	return "deploy";
}

/* Put VERSION on top, the oldest dropped when full. */
static void push(struct state_lineage *l, const char *version)
{
	if (l->n && !strcmp(l->versions[l->n - 1], version))
		return; /* a restart of the version on top: nothing new served */
	if (l->n == STATE_LINEAGE_MAX) {
		memmove(l->versions[0], l->versions[1], (STATE_LINEAGE_MAX - 1) * sizeof(l->versions[0]));
		l->n--;
		l->forgot = true;
	}
	snprintf(l->versions[l->n++], sizeof(l->versions[0]), "%s", version);
}

/* Index of the last time VERSION was on top, or -1. */
static long last_index(const struct state_lineage *l, const char *version)
{
	for (size_t i = l->n; version && i-- > 0;)
		if (!strcmp(l->versions[i], version))
			return (long)i;
	return -1;
}

void state_lineage_apply(struct state_lineage *l, const struct state_deployment *d)
{
	long at;

	if (!d->finished_at || !d->to_version[0] ||
	    state_deployment_state_as_read(d->strategy, d->state) != STATE_DEPLOYMENT_DONE)
		return;
	if (strcmp(d->strategy, "rollback")) {
		push(l, d->to_version);
		return;
	}
	at = last_index(l, d->to_version);
	if (at < 0)
		push(l, d->to_version); /* forgotten (or never seen): it serves now */
	else
		l->n = (size_t)at + 1;
}

const char *state_lineage_rollback_target(const struct state_lineage *l, const char *live)
{
	long at = last_index(l, live);
	size_t i = at < 0 ? l->n : (size_t)at;

	while (i-- > 0)
		if (!live || strcmp(l->versions[i], live))
			return l->versions[i];
	return NULL;
}

void state_lineage_explain(const struct state_lineage *l, const char *service, const char *live, char *out,
			   size_t len)
{
	if (state_lineage_rollback_target(l, live))
		snprintf(out, len, "%s can roll back to %s", service, state_lineage_rollback_target(l, live));
	else if (!l->n)
		snprintf(out, len, "%s has no previous version to roll back to: no deploy of it has finished yet",
			 service);
	else if (l->forgot)
		snprintf(out, len,
			 "%s has no previous version to roll back to: cutover remembers the last %d versions that "
			 "served, and none before %s; deploy one by name (cutover deploy %s VERSION)",
			 service, STATE_LINEAGE_MAX, l->versions[0], service);
	else
		snprintf(out, len,
			 "%s has no previous version to roll back to: %s is the first version it ran; deploy "
			 "another one by name (cutover deploy %s VERSION)",
			 service, l->versions[0], service);
}

int state_lineage_read(struct state *st, const char *service, struct state_lineage *ret)
{
	struct state_lineage *l;
	struct state_deployment d = { 0 };
	sqlite3_stmt *stmt = NULL;
	int r, rc = SQLITE_DONE;

	r = state_prepare(st,
			  "SELECT to_version, strategy, state, finished_at FROM deployments"
			  " WHERE service = ?1 AND finished_at IS NOT NULL AND state IN ('done', 'rolled-back')"
			  " ORDER BY id",
			  &stmt);
	if (r < 0)
		return r;
	l = calloc(1, sizeof(*l)); /* 8 KiB */
	r = l ? state_bind_text(stmt, 1, service) : -ENOMEM;
	while (r == 0 && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		int s = state_deployment_state_parse((const char *)sqlite3_column_text(stmt, 2));
		state_column_copy(stmt, 0, d.to_version, sizeof(d.to_version));
		state_column_copy(stmt, 1, d.strategy, sizeof(d.strategy));
		d.state = s < 0 ? STATE_DEPLOYMENT_FAILED : (enum state_deployment_state)s;
		d.finished_at = sqlite3_column_int64(stmt, 3);
		state_lineage_apply(l, &d);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = state_sql_error(st, sqlite3_extended_errcode(st->db));
	sqlite3_finalize(stmt);
	if (r == 0)
		*ret = *l;
	free(l);
	return r;
}

/* maintenance.c - the daemon's side of maintenance mode (`cutover
 * maintenance on|off SERVICE`): what the admin API changed in the proxy is
 * recorded in the state's maintenance table and the audit log, on the
 * state thread, and told to the event streams; at start the table is read
 * back into the proxy, so a service stays in maintenance across restarts
 * and upgrades (a reload never touches it: the proxy keeps it apart from
 * the configuration).
 *
 * A daemon that manages a service records through its deploy side's state
 * thread and connection.  One that only routes to static targets has none:
 * it starts a state thread of its own at the first change, which opens
 * (creates) the state on that thread, never on the loop.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "admin/admin.h"
#include "base/log.h"
#include "daemon/daemon-internal.h"
#include "loop/worker.h"
#include "proxy/proxy.h"
#include "state/state.h"

/* One change to record, owned by the job until its done() runs. */
struct maintenance_job {
	struct daemon *d;
	bool on;
	struct state_maintenance row; /* page malloc'd (NULL: the built-in one) */
	size_t page_len;
	uid_t who;
	char *env;                    /* the configuration's environment then (NULL: none) */
	char *state_dir;              /* where to open the state if it is not open yet */
	int result;
	char err[512];
};

static void job_free(struct maintenance_job *j)
{
	state_maintenance_clear(&j->row);
	free(j->env);
	free(j->state_dir);
	free(j);
}

/* The row and its audit entry, in one transaction. */
static int record(struct state *st, struct maintenance_job *j)
{
	char actor[STATE_ACTOR_MAX + 1];
	json_t *args = NULL;
	int r;

	state_actor_name((unsigned)j->who, false, actor, sizeof(actor)); /* NSS may block: here, never on the loop */
	r = state_tx_begin(st);
	if (r < 0)
		return r;
	if (j->on) {
		r = state_maintenance_set(st, &j->row);
		args = json_pack("{s:i, s:b, s:I}", "retry_after", (int)j->row.retry_after, "page", j->row.page != NULL,
				 "page_bytes", (json_int_t)j->page_len);
	} else {
		r = state_maintenance_delete(st, j->row.service);
		if (r == -ENOENT)
			r = 0; /* turned on and off before the row was written: nothing to delete */
	}
	struct state_audit_entry e = { .actor = actor,
				       .actor_uid = (unsigned)j->who,
				       .action = j->on ? "maintenance-on" : "maintenance-off",
				       .target = j->row.service,
				       .args = args,
				       .result = "ok",
				       .env = j->env };
	if (r == 0)
		r = state_audit_add(st, &e, NULL);
	json_decref(args);
	if (r == 0)
		r = state_tx_commit(st);
	if (r < 0)
		state_tx_rollback(st);
	return r;
}

/* On the state thread. */
static void maintenance_work(void *data)
{
	struct maintenance_job *j = data;
	struct daemon *d = j->d;
	struct state *st = d->state ? d->state : d->maint_state;

	j->result = 0;
	if (!st) {
		j->result = state_open(j->state_dir, &d->maint_state, j->err, sizeof(j->err));
		st = d->maint_state;
	}
	if (j->result == 0) {
		j->result = record(st, j);
		if (j->result < 0)
			snprintf(j->err, sizeof(j->err), "%s", state_errmsg(st));
	}
}

/* Back on the loop. */
static void maintenance_done(void *data)
{
	struct maintenance_job *j = data;

	if (j->result < 0)
		log_error("maintenance %s of %s is in force but not recorded in the state (it will not survive a "
			  "restart): %s", j->on ? "on" : "off", j->row.service, j->err);
	job_free(j);
}

/* The event of the change: {"service", "maintenance": null or {"since",
 * "by", "retry_after", "page"}}, as /v1/status shows it. */
static json_t *event_json(const char *service, const struct proxy_maintenance *m)
{
	json_t *state = m ? json_pack("{s:I, s:s, s:I, s:b}", "since", (json_int_t)m->since_ms, "by", m->by,
				      "retry_after", (json_int_t)m->retry_after_s, "page", m->custom_page)
			  : json_null();

	return json_pack("{s:s, s:o}", "service", service, "maintenance", state);
}

int daemon_maintenance_changed(void *data, const char *service, const struct proxy_maintenance *m, uid_t who,
			       char *err, size_t errlen)
{
	struct daemon *d = data;
	struct maintenance_job *j = calloc(1, sizeof(*j));
	struct worker *w = d->worker;
	json_t *event;
	int r = -ENOMEM;

	if (!j)
		goto fail;
	j->d = d;
	j->on = m != NULL;
	j->who = who;
	snprintf(j->row.service, sizeof(j->row.service), "%s", service);
	if (m) {
		j->row.since = m->since_ms;
		snprintf(j->row.started_by, sizeof(j->row.started_by), "%s", m->by);
		j->row.retry_after = m->retry_after_s;
		j->page_len = m->page->len;
		if (m->custom_page && !(j->row.page = strndup(m->page->bytes, m->page->len)))
			goto fail;
	}
	if ((d->cfg->env && !(j->env = strdup(d->cfg->env))) || !(j->state_dir = strdup(d->cfg->state_dir)))
		goto fail;
	if (!w && !d->maint_worker && (r = worker_start(&d->loop, &d->maint_worker)) < 0)
		goto fail;
	w = w ? w : d->maint_worker;
	r = worker_submit(w, maintenance_work, maintenance_done, j);
	if (r < 0)
		goto fail;
	log_info("%s is %s maintenance (cutover maintenance %s)", service, m ? "in" : "out of", m ? "on" : "off");
	event = event_json(service, m);
	if (event)
		admin_event(&d->admin, "maintenance", event);
	json_decref(event);
	return 0;
fail:
	snprintf(err, errlen, "cannot queue the write to the state: %s", strerror(-r));
	if (j)
		job_free(j);
	return r;
}

void daemon_maintenance_load(struct daemon *d)
{
	struct state *st = d->state, *own = NULL;
	struct state_maintenance *rows = NULL;
	char err[512], since[32];
	size_t n = 0;
	int r;

	if (!d->cfg->path)
		return; /* `cutover proxy`: no state */
	if (!st) {
		/* before the loop runs: opening SQLite here blocks nothing */
		r = state_open_existing(d->cfg->state_dir, &own, err, sizeof(err));
		if (r == -ENOENT)
			return;
		if (r < 0) {
			log_warn("cannot read which services are in maintenance: %s", err);
			return;
		}
		st = own;
	}
	r = state_maintenance_list(st, &rows, &n);
	if (r < 0)
		log_warn("cannot read which services are in maintenance: %s", state_errmsg(st));
	for (size_t i = 0; i < n; i++) {
		struct proxy_maintenance_spec spec = { .service = rows[i].service, .since_ms = rows[i].since,
						       .by = rows[i].started_by, .retry_after_s = rows[i].retry_after,
						       .page = rows[i].page,
						       .page_len = rows[i].page ? strlen(rows[i].page) : 0 };
		state_format_time(rows[i].since, since, sizeof(since));
		if (proxy_maintenance_set(&d->proxy, &spec) < 0)
			log_error("%s is in maintenance in the state, but cannot be put back in it", rows[i].service);
		else
			log_warn("%s is in maintenance since %s (by %s): its requests are answered 503 until "
				 "cutover maintenance off %s", rows[i].service, since, rows[i].started_by, rows[i].service);
	}
	state_maintenance_array_free(rows, n);
	state_close(own);
}

void daemon_maintenance_stop(struct daemon *d)
{
	worker_stop(d->maint_worker);
	d->maint_worker = NULL;
	d->maint_state = state_close(d->maint_state);
}

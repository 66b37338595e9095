/* approval.c - deploys and promotions that wait for a person's yes
 * (approval: in the environment's configuration; docs/internals/promotion.md).
 *
 * A request is a deployment in phase PH_AWAITING: numbered, listed, told
 * to the observer and recorded (state "awaiting-approval", with who asked
 * and when it expires), but not its service's deployment in flight, so it
 * holds nothing.  `cutover approve` starts it as a deploy starts
 * (dep_start: refused the same way, e.g. while another deploy runs, and
 * then it still waits); `cutover reject` ends it "rejected"; its timer ends
 * it "expired".  The person is the admin socket's peer (SO_PEERCRED); with
 * approval.distinct they must not be who asked.  Every request and
 * decision is audited, refusals too.  A restarted daemon finds the requests
 * still waiting in the state (approval_recover) and expires those whose
 * time ran out meanwhile.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/list.h"
#include "base/log.h"
#include "base/util.h"
#include "deploy/deploy-internal.h"
#include "deploy/plan.h"
#include "loop/loop.h"
#include "loop/worker.h"
#include "proxy/proxy-t.h"
#include "state/state.h"
#include "store/store.h"

/* The request recorded on the worker (with the release's digest when it
 * is in the store); back on the loop, a request for a release the store
 * does not hold ends at once. */
struct awaiting_job {
	struct deployment *dep;            /* its service, version, id, who, expiry and origin do not change */
	/* what an approval may change on the loop meanwhile, copied */
	char from[STATE_VERSION_MAX + 1], strategy[STATE_STRATEGY_MAX + 1], first[200];
	char want[STATE_DIGEST_HEX + 1];   /* the digest asked for ("": any) */
	char digest[STATE_DIGEST_HEX + 1]; /* the store's */
	int rc;                            /* of the release's lookup */
	char err[1024];
};

static void awaiting_work(void *data)
{
	struct awaiting_job *j = data;
	struct deployment *dep = j->dep;
	struct state *st = dep->d->st;
	struct state_release rel = { 0 };

	j->rc = state_release_get(st, dep->service, dep->version, &rel);
	if (j->rc == 0 && j->want[0] && strcmp(j->want, rel.digest)) {
		snprintf(j->err, sizeof(j->err),
			 "the release store holds %s %s as sha256:%.12s..., not sha256:%.12s... as asked: %s was "
			 "rebuilt with other content under the same version",
			 dep->service, dep->version, rel.digest, j->want, dep->version);
		j->rc = -EBADMSG;
	} else if (j->rc == -ENOENT) {
		snprintf(j->err, sizeof(j->err), "no release %s %s in the store (add it with `cutover release add %s %s "
			 "PATH`): nothing to approve", dep->service, dep->version, dep->service, dep->version);
	} else if (j->rc < 0) {
		snprintf(j->err, sizeof(j->err), "cannot read the release %s %s: %s", dep->service, dep->version,
			 strerror(-j->rc));
	}
	struct state_deployment_new n = {
		.want_id = dep->id, .service = dep->service, .from_version = j->from,
		.to_version = dep->version, .strategy = j->strategy, .state = STATE_DEPLOYMENT_AWAITING_APPROVAL,
		.detail = j->first, .digest = j->want[0] ? j->want : j->rc == 0 ? rel.digest : NULL,
		.requested_uid = dep->who == DEPLOY_BY_DAEMON ? -1 : (int64_t)dep->who, .expires_at = dep->expires_at,
		.promoted_from = dep->promoted_from[0] ? dep->promoted_from : NULL,
		.env = dep->env[0] ? dep->env : NULL,
	};
	if (j->rc == 0)
		snprintf(j->digest, sizeof(j->digest), "%s", rel.digest);
	if (state_deployment_insert(st, &n, &dep->db->id) < 0)
		log_error("state: cannot record deployment %lld awaiting approval (%s)", (long long)dep->id,
			  state_errmsg(st));
	state_release_clear(&rel);
}

static void awaiting_done(void *data)
{
	struct awaiting_job *j = data;
	struct deployment *dep = j->dep;

	dep->pending_request = false;
	/* approved meanwhile: its begin job may be reading dep on the worker
	 * now, and says the same of the release (and fails it) */
	if (dep->phase != PH_AWAITING) {
		free(j);
		return;
	}
	if (j->rc == 0 && !dep->digest[0])
		snprintf(dep->digest, sizeof(dep->digest), "%s", j->digest);
	if (j->rc < 0) {
		loop_timer_cancel(dep->d->p->loop, &dep->timer);
		dep_finish(dep, PH_FAILED, "%s", j->err);
	}
	free(j);
}

/* Nobody decided in time. */
static void request_expired(struct loop *loop, struct loop_timer *t)
{
	struct deployment *dep = container_of(t, struct deployment, timer);
	char at[40];

	if (dep->phase != PH_AWAITING)
		return;
	state_format_time(dep->started_at, at, sizeof(at));
	dep_finish(dep, PH_EXPIRED, "not approved within %s (requested by %s at %s)",
		   DURATION_TEXT((uint64_t)(dep->expires_at - dep->started_at)), dep->requested_by, at);
	record_audit(dep->d, DEPLOY_BY_DAEMON, "expire", dep->service, dep->version, "expired", dep->reason);
}

/* Arm dep's expiry at dep->expires_at (wall clock), now if it is past. */
static void arm_expiry(struct deployment *dep)
{
	struct loop *loop = dep->d->p->loop;
	int64_t left = dep->expires_at - deploy_wall_ms();

	loop_timer_set(loop, &dep->timer, loop->now_ms + (uint64_t)(left > 0 ? left : 0), request_expired);
}

/* "alice" (or "uid 1001", "cutover") into out. */
static void who_name(uid_t who, char *out, size_t len)
{
	char by[48];

	deploy_who_text(who, by, sizeof(by));
	snprintf(out, len, "%s", by + strlen("by "));
}

/* The text of the awaiting event: who asked, how to decide, until when. */
static void awaiting_detail(const struct deployment *dep, const char *note, char *out, size_t len)
{
	char until[40], promotion[64] = "";

	state_format_time(dep->expires_at, until, sizeof(until));
	if (dep->promoted_from[0])
		snprintf(promotion, sizeof(promotion), " (a promotion from %s)", dep->promoted_from);
	snprintf(out, len, "requested by %s%s; `cutover approve %lld` starts it, `cutover reject %lld` ends it; "
		 "expires at %s%s%s", dep->requested_by, promotion, (long long)dep->id, (long long)dep->id, until,
		 note ? "; " : "", note ? note : "");
}

int64_t approval_request(struct deployer *d, const struct dep_ask *ask, char *err, size_t errlen)
{
	const struct config_service *cs = deployer_config(d, ask->service);
	const struct config_approval *rule = &d->p->cfg->approval;
	struct managed *m = NULL;
	struct deployment *dep;
	struct awaiting_job *j;
	struct plan plan;
	char detail[600];
	int r = dep_refuse(d, ask, true, &m, err, errlen);

	if (r < 0)
		return r;
	if (plan_build(cs, m->live ? m->live->version : NULL, ask->version, false, &plan, err, errlen) < 0)
		return -EINVAL;
	dep = dep_new(d, ask);
	j = calloc(1, sizeof(*j));
	if (!dep || !j) {
		dep_free(dep);
		free(j);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	dep->m = m;
	dep->plan = plan; /* its strategy is recorded (it is planned again when approved) */
	dep->awaited = true;
	dep->phase = PH_AWAITING;
	dep->expires_at = dep->started_at + (int64_t)rule->timeout_ms;
	snprintf(dep->from_version, sizeof(dep->from_version), "%s", m->live ? m->live->version : "");
	who_name(ask->who, dep->requested_by, sizeof(dep->requested_by));
	snprintf(dep->first, sizeof(dep->first), "%s", dep->why[0] ? dep->why : *dep->from_version ? dep->from_version
												    : "first version");
	dep->pending_request = true;
	dep_list(dep);
	arm_expiry(dep);
	awaiting_detail(dep, NULL, detail, sizeof(detail));
	dep_event(dep, detail);
	j->dep = dep;
	snprintf(j->from, sizeof(j->from), "%s", dep->from_version);
	snprintf(j->strategy, sizeof(j->strategy), "%s", dep->plan.strategy);
	snprintf(j->first, sizeof(j->first), "%s", dep->first);
	snprintf(j->want, sizeof(j->want), "%s", dep->digest);
	if (worker_submit(d->w, awaiting_work, awaiting_done, j) < 0) {
		free(j);
		dep->pending_request = false;
		loop_timer_cancel(d->p->loop, &dep->timer);
		dep_finish(dep, PH_FAILED, "out of memory");
		return dep->id;
	}
	record_audit(d, ask->who, dep_action(dep), ask->service, ask->version, "awaiting-approval", detail);
	log_info("deployment %lld of %s to %s awaits approval (requested by %s)", (long long)dep->id, dep->service,
		 dep->version, dep->requested_by);
	return dep->id;
}

/* The deployment ID awaiting approval, or NULL with the sentence and errno
 * (*found: the deployment, also when it does not await: the audit names it). */
static struct deployment *awaiting(struct deployer *d, int64_t id, struct deployment **found, int *r, char *err,
				   size_t errlen)
{
	struct deployment *dep = *found = dep_find(d, id);

	if (!dep) {
		snprintf(err, errlen, "no deployment %lld awaits approval here (the daemon keeps the last %d; "
			 "`cutover history` has them all)", (long long)id, DEPLOYMENTS_KEPT);
		*r = -ENOENT;
		return NULL;
	}
	if (dep->phase != PH_AWAITING) {
		snprintf(err, errlen, "deployment %lld of %s to %s does not await approval: it is %s", (long long)id,
			 dep->service, dep->version, phase_names[dep->phase]);
		*r = -EALREADY;
		return NULL;
	}
	return dep;
}

int64_t deployer_approve(struct deployer *d, int64_t id, uid_t who, char *err, size_t errlen)
{
	struct deployment *dep, *found;
	char by[48], approved[200], why[600];
	int r = 0;

	dep = awaiting(d, id, &found, &r, err, errlen);
	if (dep && d->p->cfg->approval.distinct && who == dep->who) {
		snprintf(err, errlen, "%s asked for deployment %lld: approval.distinct wants another person to approve "
			 "it (or `cutover reject %lld` to withdraw it)", dep->requested_by, (long long)id, (long long)id);
		r = -EPERM;
	}
	if (dep && r == 0) {
		deploy_who_text(who, by, sizeof(by));
		snprintf(approved, sizeof(approved), "approved %s after %s (requested by %s)", by,
			 DEPLOY_SPAN(deploy_wall_ms() - dep->started_at, false), dep->requested_by);
		r = dep_start(dep, approved, why, sizeof(why));
		if (r < 0) /* it still waits: say why it cannot start now */
			snprintf(err, errlen, "deployment %lld cannot start now: %s; it still awaits approval", (long long)id,
				 why);
	}
	if (r < 0) {
		record_audit(d, who, "approve", found ? found->service : "-", found ? found->version : NULL, "refused",
			     err);
		return r;
	}
	loop_timer_cancel(d->p->loop, &dep->timer); /* (dep_start armed no timer of its own yet) */
	record_audit(d, who, "approve", dep->service, dep->version, "done", approved);
	log_info("deployment %lld of %s to %s %s", (long long)id, dep->service, dep->version, approved);
	return id;
}

int64_t deployer_reject(struct deployer *d, int64_t id, uid_t who, const char *reason, char *err, size_t errlen)
{
	struct deployment *dep, *found;
	char by[48];
	int r = 0;

	dep = awaiting(d, id, &found, &r, err, errlen);
	if (!dep) {
		record_audit(d, who, "reject", found ? found->service : "-", found ? found->version : NULL, "refused",
			     err);
		return r;
	}
	deploy_who_text(who, by, sizeof(by));
	loop_timer_cancel(d->p->loop, &dep->timer);
	dep_finish(dep, PH_REJECTED, "rejected %s%s%s", by, reason && *reason ? ": " : "", reason ? reason : "");
	record_audit(d, who, "reject", dep->service, dep->version, "done", dep->reason);
	log_info("deployment %lld of %s to %s %s", (long long)id, dep->service, dep->version, dep->reason);
	return id;
}

/* One request read back from the state: it waits again (its expiry is
 * armed by approval_recover).  A service no longer managed ends it. */
static void recover_request(struct deployer *d, const struct state_deployment *row)
{
	const struct config_service *cs = deployer_config(d, row->service);
	struct dep_ask ask = { .service = row->service, .version = row->to_version,
			       .who = row->requested_uid >= 0 ? (uid_t)row->requested_uid : DEPLOY_BY_DAEMON,
			       .digest = row->digest[0] ? row->digest : NULL,
			       .promoted_from = row->promoted_from[0] ? row->promoted_from : NULL };
	struct managed *m = cs && cs->run ? managed_get(d, row->service, true) : NULL;
	struct deployment *dep = m ? dep_new(d, &ask) : NULL;
	char detail[600];

	if (!dep) {
		state_deployment_finish(d->st, row->id, STATE_DEPLOYMENT_FAILED,
					cs && cs->run ? "out of memory at the restart of the daemon"
						      : "the daemon restarted and no longer manages this service");
		return;
	}
	dep->m = m;
	dep->id = row->id;
	dep->db->id = row->id;
	dep->awaited = true;
	dep->phase = PH_AWAITING;
	dep->started_at = row->started_at;
	dep->expires_at = row->expires_at;
	snprintf(dep->from_version, sizeof(dep->from_version), "%s", row->from_version);
	snprintf(dep->plan.strategy, sizeof(dep->plan.strategy), "%.*s", (int)sizeof(dep->plan.strategy) - 1,
		 row->strategy);
	snprintf(dep->first, sizeof(dep->first), "%s", *row->from_version ? row->from_version : "first version");
	who_name(ask.who, dep->requested_by, sizeof(dep->requested_by));
	list_add_tail(&d->deployments, &dep->node);
	d->ndeployments++;
	awaiting_detail(dep, "it survived a restart of the daemon", detail, sizeof(detail));
	dep_event(dep, detail);
}

void approval_recover(struct deployer *d)
{
	struct state_deployment *rows = NULL;
	size_t n = 0;
	int waiting = 0, expired = 0;

	if (state_deployment_list_in_flight(d->st, NULL, &rows, &n) < 0) {
		log_error("cannot read the deployments awaiting approval (%s)", state_errmsg(d->st));
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (rows[i].state == STATE_DEPLOYMENT_AWAITING_APPROVAL)
			recover_request(d, &rows[i]);
	/* then only (SQLite is no longer used here): expiring records through
	 * the worker */
	for (size_t i = 0; i < n; i++) {
		struct deployment *dep = rows[i].state == STATE_DEPLOYMENT_AWAITING_APPROVAL ? dep_find(d, rows[i].id)
											       : NULL;
		if (!dep || dep->phase != PH_AWAITING)
			continue;
		if (dep->expires_at <= deploy_wall_ms()) {
			expired++;
			request_expired(d->p->loop, &dep->timer);
		} else {
			waiting++;
			arm_expiry(dep);
		}
	}
	state_deployment_array_free(rows, n);
	if (waiting || expired)
		log_info("recovered: %d deployments await approval, %d expired while the daemon was down", waiting,
			 expired);
}

/* deployments.c - where deployments come from: deployer_deploy() and
 * deployer_rollback() (the admin API), cutover itself (recovery, an
 * automatic rollback); each gets its plan from its service's strategy
 * (strategy.c), is recorded on the state worker, then run by the engine
 * (engine.c).  Declarations in deploy-internal.h.
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
#include "state/state.h"
#include "store/store.h"

/* The deployment recorded and its release looked up, on the worker; then,
 * back on the loop, the plan runs. */
struct begin_job {
	struct deployment *dep;
	struct secret_load secrets;        /* the service's secrets, read before anything starts */
	struct state_release rel;
	int rc;
	char err[1024];
};

/* The release of dep, looked up on the worker into j: an error sentence in
 * j->err when there is none, or it is not the digest asked for. */
static void begin_release(struct begin_job *j)
{
	struct deployment *dep = j->dep;

	j->rc = state_release_get(dep->d->st, dep->service, dep->version, &j->rel);
	if (j->rc == -ENOENT && dep->is_rollback) /* it served: its release was in the store then */
		snprintf(j->err, sizeof(j->err),
			 "cannot roll back to %s: its release was removed from the store (cutover release prune); "
			 "add it again with `cutover release add %s %s PATH`, or deploy a version by name",
			 dep->version, dep->service, dep->version);
	else if (j->rc < 0)
		snprintf(j->err, sizeof(j->err),
			 j->rc == -ENOENT ? "no release %s %s in the store (add it with `cutover release add %s %s PATH`)"
					  : "cannot read the release %s %s: %s",
			 dep->service, dep->version, dep->service, j->rc == -ENOENT ? dep->version : strerror(-j->rc));
	else if (dep->digest[0] && strcmp(dep->digest, j->rel.digest)) {
		/* same version, other bytes: rebuilt, never what was asked for */
		snprintf(j->err, sizeof(j->err),
			 "the release store holds %s %s as sha256:%.12s..., not sha256:%.12s... as asked: %s was "
			 "rebuilt with other content under the same version; deploy the very same artifact "
			 "(or give the new one a new version)",
			 dep->service, dep->version, j->rel.digest, dep->digest, dep->version);
		j->rc = -EBADMSG;
	}
}

static void begin_work(void *data)
{
	struct begin_job *j = data;
	struct deployment *dep = j->dep;
	const char *from = dep->from_version[0] ? dep->from_version : NULL;
	const char *digest = dep->digest[0] ? dep->digest : NULL;

	/* the release first (a read): its digest is recorded with the row */
	begin_release(j);
	if (j->rc == 0)
		digest = j->rel.digest;
	if (j->rc == 0) {
		secret_load_run(&j->secrets);
		if (j->secrets.rc < 0) {
			j->rc = j->secrets.rc;
			snprintf(j->err, sizeof(j->err), "%s", j->secrets.err);
		}
	}
	/* recorded under the id the CLI was given: a deploy refused for a
	 * missing release is in the history too */
	state_service_ensure(dep->d->st, dep->service);
	record_crash_point(dep->d, false, STATE_DEPLOYMENT_STARTING, dep->version);
	if (dep->awaited) {
		/* approved: its row, awaiting until now, starts */
		if (state_deployment_start(dep->d->st, dep->db->id, from, dep->plan.strategy, digest, dep->first) < 0)
			log_error("state: cannot record the start of deployment %lld (%s)", (long long)dep->id,
				  state_errmsg(dep->d->st));
	} else {
		struct state_deployment_new n = { .want_id = dep->id, .service = dep->service, .from_version = from,
						  .to_version = dep->version, .strategy = dep->plan.strategy,
						  .state = STATE_DEPLOYMENT_STARTING, .detail = dep->first,
						  .digest = digest, .requested_uid = -1,
						  .promoted_from = dep->promoted_from[0] ? dep->promoted_from : NULL,
						  .release_id = dep->release_id,
						  .env = dep->env[0] ? dep->env : NULL };
		if (state_deployment_insert(dep->d->st, &n, &dep->db->id) == -EEXIST) {
			n.want_id = 0;
			state_deployment_insert(dep->d->st, &n, &dep->db->id);
		}
	}
	record_crash_point(dep->d, true, STATE_DEPLOYMENT_STARTING, dep->version);
}

static void begin_done(void *data)
{
	struct begin_job *j = data;
	struct deployment *dep = j->dep;
	const struct config_service *cs = deployer_config(dep->d, dep->service);

	dep->pending_db = false;
	if (j->rc == 0 && !dep->digest[0])
		snprintf(dep->digest, sizeof(dep->digest), "%s", j->rel.digest);
	if (dep->phase >= PH_DONE)
		goto out; /* finished meanwhile (a warm rollback needs no new process) */
	if (dep->d->shutting_down) {
		dep_finish(dep, PH_FAILED, "the daemon is shutting down");
		goto out;
	}
	if (j->rc < 0) {
		dep_finish(dep, PH_FAILED, "%s", j->err);
		goto out;
	}
	if (!cs || !cs->run) {
		dep_finish(dep, PH_FAILED, "service %s is no longer managed (configuration reloaded)", dep->service);
		goto out;
	}
	deployer_secrets_adopt(dep->d, &j->secrets);
	engine_run(dep, j->rel.path);
out:
	secret_load_release(&j->secrets);
	state_release_clear(&j->rel);
	free(j);
}

/* Forget the oldest finished deployments beyond DEPLOYMENTS_KEPT. */
static void deployments_trim(struct deployer *d)
{
	struct list_head *pos, *tmp;

	for (pos = d->deployments.next, tmp = pos->next; pos != &d->deployments && d->ndeployments > DEPLOYMENTS_KEPT;
	     pos = tmp, tmp = pos->next) {
		struct deployment *dep = container_of(pos, struct deployment, node);
		if (dep->phase < PH_DONE || dep->pending_db || dep->pending_request)
			continue;
		list_del(&dep->node);
		json_decref(dep->events);
		dbref_put(dep->db);
		free(dep);
		d->ndeployments--;
	}
}

/* A digest as the API may give it: 64 lower-case hex digits, or the same
 * after "sha256:".  Returns the 64 digits, or NULL. */
static const char *digest_hex(const char *digest)
{
	if (!strncmp(digest, "sha256:", 7))
		digest += 7;
	if (strlen(digest) != STATE_DIGEST_HEX)
		return NULL;
	for (const char *p = digest; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return NULL;
	return digest;
}

int64_t deployer_deploy(struct deployer *d, const struct deploy_request *req, char *err, size_t errlen)
{
	struct dep_ask ask = { .service = req->service, .version = req->version, .who = req->who, .why = req->why,
			       .promoted_from = req->promoted_from, .release_id = req->release_id };
	int64_t id;

	if (req->digest && !(ask.digest = digest_hex(req->digest))) {
		snprintf(err, errlen, "digest: expected 64 lower-case hex digits (SHA-256, as `cutover releases` shows), "
			 "got '%.80s'", req->digest);
		id = -EINVAL;
	} else if (d->p->cfg->approval.required && req->release_id <= 0) {
		/* (the deploys of a release: the release was approved as a whole) */
		id = approval_request(d, &ask, err, errlen);
	} else {
		id = dep_create(d, &ask, err, errlen);
	}
	if (id < 0)
		record_audit(d, req->who, req->promoted_from ? "promote" : "deploy", req->service, req->version,
			     "refused", err);
	return id;
}

const char *dep_action(const struct deployment *dep)
{
	return dep->is_rollback ? "rollback" : dep->is_restart ? "restart" : dep->promoted_from[0] ? "promote" : "deploy";
}

struct deployment *dep_find(struct deployer *d, int64_t id)
{
	for (struct list_head *pos = d->deployments.next; pos != &d->deployments; pos = pos->next) {
		struct deployment *dep = container_of(pos, struct deployment, node);
		if (dep->id == id)
			return dep;
	}
	return NULL;
}

const char *dep_kind(const struct deployment *dep)
{
	if (dep->is_rollback)
		return "rollback";
	return dep->from_version[0] && !strcmp(dep->from_version, dep->version) ? "restart" : "deploy";
}

void dep_lineage_apply(struct deployment *dep, enum state_deployment_state to)
{
	struct state_deployment row = { .state = to, .finished_at = deploy_wall_ms() };

	snprintf(row.from_version, sizeof(row.from_version), "%s", dep->from_version);
	snprintf(row.to_version, sizeof(row.to_version), "%s", dep->version);
	snprintf(row.strategy, sizeof(row.strategy), "%s", dep->plan.strategy);
	state_lineage_apply(&dep->m->lineage, &row);
}

int dep_refuse(struct deployer *d, const struct dep_ask *ask, bool awaiting, struct managed **ret_m, char *err,
	       size_t errlen)
{
	const struct config_service *cs = deployer_config(d, ask->service);
	struct managed *m;

	if (!cs) {
		snprintf(err, errlen, "unknown service '%s'", ask->service);
		return -ENOENT;
	}
	if (!cs->run) {
		snprintf(err, errlen, "service '%s' is not managed by cutover (it has targets, no `run`)",
			 ask->service);
		return -ENOENT;
	}
	if (store_check_names(ask->service, ask->version, err, errlen) < 0)
		return -EINVAL; /* a version no release can have */
	m = managed_get(d, ask->service, true);
	if (!m) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (m->dep && !awaiting) {
		snprintf(err, errlen, "a deploy of %s to %s is in progress (deployment %lld)", ask->service,
			 m->dep->version, (long long)m->dep->id);
		return -EBUSY;
	}
	if (m->live && !strcmp(m->live->version, ask->version) && !group_crashed(m->live) && !ask->is_restart) {
		snprintf(err, errlen, "%s already runs %s", ask->service, ask->version);
		return -EALREADY;
	}
	*ret_m = m;
	return 0;
}

struct deployment *dep_new(struct deployer *d, const struct dep_ask *ask)
{
	struct deployment *dep = calloc(1, sizeof(*dep));

	if (!dep || !(dep->events = json_array()) || !(dep->db = dbref_new())) {
		dep_free(dep);
		return NULL;
	}
	dep->d = d;
	dep->is_rollback = ask->is_rollback; /* read by the worker: set before queueing */
	dep->is_restart = ask->is_restart;
	dep->who = ask->who;
	snprintf(dep->service, sizeof(dep->service), "%s", ask->service);
	snprintf(dep->version, sizeof(dep->version), "%s", ask->version);
	snprintf(dep->why, sizeof(dep->why), "%s", ask->why ? ask->why : "");
	snprintf(dep->digest, sizeof(dep->digest), "%s", ask->digest ? ask->digest : "");
	snprintf(dep->promoted_from, sizeof(dep->promoted_from), "%s", ask->promoted_from ? ask->promoted_from : "");
	dep->release_id = ask->release_id;
	/* taken on the loop: the worker that records it must not read a configuration a reload swaps */
	snprintf(dep->env, sizeof(dep->env), "%s", d->p->cfg->env ? d->p->cfg->env : "");
	if (ask->from)
		snprintf(dep->from_version, sizeof(dep->from_version), "%s", ask->from);
	dep->started_at = deploy_wall_ms();
	dep->t_start_ms = time_now_ms();
	return dep;
}

void dep_free(struct deployment *dep)
{
	if (!dep)
		return;
	json_decref(dep->events);
	dbref_put(dep->db);
	watch_free(dep->watch);
	free(dep);
}

void dep_list(struct deployment *dep)
{
	struct deployer *d = dep->d;

	if (dep->id)
		return;
	dep->id = ++d->next_id;
	list_add_tail(&d->deployments, &dep->node);
	d->ndeployments++;
	deployments_trim(d); /* (dep itself is not finished: it stays) */
}

int dep_start(struct deployment *dep, const char *approved, char *err, size_t errlen)
{
	struct deployer *d = dep->d;
	const struct config_service *cs = deployer_config(d, dep->service);
	struct dep_ask ask = { .service = dep->service, .version = dep->version, .is_rollback = dep->is_rollback,
			       .is_restart = dep->is_restart };
	char from[STATE_VERSION_MAX + 1];
	struct managed *m = NULL;
	struct begin_job *j;
	struct plan plan;
	int r = dep_refuse(d, &ask, false, &m, err, errlen);

	if (r < 0)
		return r;
	/* an explicit from (a restart, a rollback by cutover) stays; else the
	 * version live now (an approved request: not the one when it was asked) */
	snprintf(from, sizeof(from), "%s", dep->from_version[0] && !dep->awaited ? dep->from_version
					   : m->live			    ? m->live->version
									    : "");
	if (dep->is_restart && cs->deploy.strategy != CONFIG_STRATEGY_ROLLING &&
	    cs->deploy.strategy != CONFIG_STRATEGY_BLUE_GREEN) {
		/* a canary of a version against itself is slow; recreate leaves a gap */
		struct config_service bg = *cs;
		bg.deploy.strategy = CONFIG_STRATEGY_BLUE_GREEN;
		r = plan_build(&bg, m->live->version, dep->version, false, &plan, err, errlen);
	} else {
		r = plan_build(cs, m->live ? m->live->version : NULL, dep->version, dep->is_rollback, &plan, err,
			       errlen);
	}
	if (r < 0)
		return -EINVAL;
	j = calloc(1, sizeof(*j));
	if (!j || watch_begin(dep, cs) < 0 || secret_load_prepare(&j->secrets, d->p->cfg, cs) < 0) {
		free(j);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	dep->m = m;
	dep->plan = plan; /* read by the worker (the strategy): set before queueing */
	snprintf(dep->from_version, sizeof(dep->from_version), "%s", from);
	if (dep->why[0])
		snprintf(dep->first, sizeof(dep->first), "%s", dep->why);
	else if (dep->is_rollback && *from)
		snprintf(dep->first, sizeof(dep->first), "back from %s", from);
	else if (dep->is_rollback)
		snprintf(dep->first, sizeof(dep->first), "back to %s: nothing runs", dep->version);
	else if (!strcmp(from, dep->version))
		snprintf(dep->first, sizeof(dep->first), "restart of %s", from);
	else
		snprintf(dep->first, sizeof(dep->first), "%s", *from ? from : "first version");
	dep->phase = PH_STARTING;
	dep->pending_db = true;
	dep_list(dep);
	m->dep = dep;
	if (approved)
		dep_event_as(dep, "approved", approved);
	dep_event(dep, dep->first);
	j->dep = dep;
	if (worker_submit(d->w, begin_work, begin_done, j) < 0) {
		secret_load_release(&j->secrets);
		free(j);
		dep->pending_db = false;
		dep_finish(dep, PH_FAILED, "out of memory");
	}
	return 0;
}

int64_t dep_create(struct deployer *d, const struct dep_ask *ask, char *err, size_t errlen)
{
	struct deployment *dep = dep_new(d, ask);
	int r;

	if (!dep) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r = dep_start(dep, NULL, err, errlen);
	if (r < 0) {
		dep_free(dep);
		return r;
	}
	return dep->id;
}

int64_t deployer_restart(struct deployer *d, const char *service, uid_t who, char *err, size_t errlen)
{
	const struct config_service *cs = deployer_config(d, service);
	struct managed *m = managed_get(d, service, false);
	char version[STATE_VERSION_MAX + 1], why[200];
	struct dep_ask ask = { .service = service, .version = version, .why = why, .is_restart = true, .who = who };
	int64_t id;

	if (cs && cs->run && (!m || !m->live)) {
		snprintf(err, errlen, "%s runs no version: deploy one first", service);
		id = -ESRCH;
	} else if (!cs || !cs->run) {
		id = dep_create(d, &ask, err, errlen); /* says why */
	} else {
		snprintf(version, sizeof(version), "%s", m->live->version);
		snprintf(why, sizeof(why), "restart of %s by hand: new instances, then the old ones stop", version);
		id = dep_create(d, &ask, err, errlen);
	}
	if (id < 0) /* an accepted one is audited with its result */
		record_audit(d, who, "restart", service, m && m->live ? m->live->version : NULL, "refused", err);
	return id;
}

/* `cutover rollback` with no deploy in flight: back to the version the
 * lineage names (state_lineage_rollback_target), at once if it is the warm
 * previous version, else started from the release store. */
static int64_t rollback_to_lineage(struct deployer *d, struct managed *m, const char *service, uid_t who, char *err,
				   size_t errlen)
{
	static const struct state_lineage nothing; /* a service this daemon never managed */
	const struct state_lineage *lineage = m ? &m->lineage : &nothing;
	const char *live = m && m->live ? m->live->version : NULL;
	const char *target = state_lineage_rollback_target(lineage, live);
	char version[STATE_VERSION_MAX + 1], why[200];
	struct dep_ask ask = { .service = service, .version = version, .is_rollback = true, .who = who };
	int64_t id;

	if (!target) {
		state_lineage_explain(lineage, service, live, err, errlen);
		return -ESRCH;
	}
	snprintf(version, sizeof(version), "%s", target);
	if (m->prev && !strcmp(m->prev->version, version) && group_usable(m->prev, false)) {
		/* instant: the previous version is warm, runs and is healthy:
		 * no start, just the switch back */
		id = dep_create(d, &ask, err, errlen);
		if (id > 0) {
			snprintf(why, sizeof(why), "manual rollback to warm %s", version);
			rollback_now(m, why);
		}
		return id;
	}
	/* the rollback window is over (or it was never warm): start the
	 * version from the release store, health-check it, then switch */
	return dep_create(d, &ask, err, errlen);
}

int64_t deployer_rollback(struct deployer *d, const char *service, uid_t who, char *err, size_t errlen)
{
	const struct config_service *cs = deployer_config(d, service);
	struct managed *m = managed_get(d, service, false);
	struct deployment *dep;
	char why[160];
	int64_t id;

	if (!cs || !cs->run) {
		snprintf(err, errlen, cs ? "service '%s' is not managed by cutover (it has targets, no `run`)"
					 : "unknown service '%s'",
			 service);
		return -ENOENT;
	}
	if (m && m->dep && m->dep->phase == PH_WATCH) {
		/* the deploy being watched: its rollback is the answer */
		dep = m->dep;
		snprintf(why, sizeof(why), "rolled back by hand (cutover rollback)");
		char from[STATE_VERSION_MAX + 1];
		snprintf(from, sizeof(from), "%s", m->live ? m->live->version : "");
		bool ok = engine_abort(dep, why); /* may free the version left */
		record_audit(d, who, "rollback", service, from, ok ? "done" : "failed", ok ? NULL : dep->reason);
		return dep->id;
	}
	if (m && m->dep) {
		snprintf(err, errlen, "a deploy of %s to %s is in progress: wait for it or let it fail", service,
			 m->dep->version);
		id = -EBUSY;
	} else {
		id = rollback_to_lineage(d, m, service, who, err, errlen);
	}
	if (id < 0)
		record_audit(d, who, "rollback", service, NULL, "refused", err);
	return id;
}

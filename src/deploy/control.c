/* control.c - a person's hand on the deployment in flight: pause it at
 * its step, resume it, promote it (the remaining steps skipped: the new
 * version takes all the traffic now) or abort it (all traffic back on the
 * stable version at once, the new instances stopped).  Each is audited
 * with who asked, refusals too.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include "base/log.h"
#include "base/util.h"
#include "deploy/deploy-internal.h"
#include "loop/loop.h"
#include "proxy/proxy-t.h"

static const char *const control_names[] = {
	[DEPLOY_PAUSE] = "pause",
	[DEPLOY_RESUME] = "resume",
	[DEPLOY_PROMOTE] = "promote",
	[DEPLOY_ABORT] = "abort",
};

const char *deploy_control_name(enum deploy_control what)
{
	return (unsigned)what < sizeof(control_names) / sizeof(control_names[0]) ? control_names[what] : "?";
}

/* "by alice" / "by uid 1001" / "by cutover" into out.  (The name is
 * looked up on the loop: a rare act of a person; the audit row gets it
 * on the state worker as every row does.) */
void deploy_who_text(uid_t who, char *out, size_t len)
{
	struct passwd pw, *found = NULL;
	char buf[1024];

	if (who == DEPLOY_BY_DAEMON)
		snprintf(out, len, "by cutover");
	else if (getpwuid_r(who, &pw, buf, sizeof(buf), &found) == 0 && found)
		snprintf(out, len, "by %s", found->pw_name);
	else
		snprintf(out, len, "by uid %u", (unsigned)who);
}

/* Refuse: -err with the sentence, audited. */
static int refuse(struct deployer *d, enum deploy_control what, uid_t who, const char *service, const char *version,
		  int err, char *msg)
{
	record_audit(d, who, control_names[what], service, version, "refused", msg);
	return err;
}

static int64_t pause_it(struct deployment *dep, uid_t who, char *err, size_t errlen)
{
	char by[48];

	if (dep->paused) {
		snprintf(err, errlen, "deployment %lld of %s to %s is already paused: %s", (long long)dep->id,
			 dep->service, dep->version, dep->pause_reason);
		return -EALREADY;
	}
	deploy_who_text(who, by, sizeof(by));
	dep->paused = true;
	dep->paused_inconclusive = false;
	snprintf(dep->pause_reason, sizeof(dep->pause_reason), "paused %s at %s %zu of %zu", by,
		 dep->plan.rolling ? "batch" : "step", dep->step + 1, dep->plan.nsteps);
	dep_event_as(dep, "paused", dep->pause_reason);
	return dep->id;
}

static int64_t resume_it(struct deployment *dep, uid_t who, char *err, size_t errlen)
{
	struct loop *loop = dep->d->p->loop;
	char by[48], detail[200];
	bool accept = dep->paused_inconclusive;

	if (!dep->paused) {
		snprintf(err, errlen, "deployment %lld of %s to %s is not paused", (long long)dep->id, dep->service,
			 dep->version);
		return -EALREADY;
	}
	deploy_who_text(who, by, sizeof(by));
	dep->paused = false;
	dep->paused_inconclusive = false;
	dep->pause_reason[0] = 0;
	dep->phase_since_ms = time_now_ms(); /* the time it stayed paused is not time stuck */
	snprintf(detail, sizeof(detail), "resumed %s%s", by,
		 accept ? ": the inconclusive step is accepted, on to the next" : "");
	dep_event_as(dep, "resumed", detail);
	if (accept && dep->phase == PH_WATCH)
		step_next(dep);
	else if (dep->phase == PH_WATCH && dep->timer.deadline_ms && dep->timer.cb)
		loop_timer_set(loop, &dep->timer, loop->now_ms, dep->timer.cb); /* decide now */
	return dep->id;
}

static int64_t promote_it(struct deployment *dep, uid_t who, char *err, size_t errlen)
{
	const struct plan_step *st = &dep->plan.steps[dep->step];
	char by[48], detail[200];

	if (dep->promoted) {
		snprintf(err, errlen, "deployment %lld of %s to %s is already promoted", (long long)dep->id, dep->service,
			 dep->version);
		return -EALREADY;
	}
	if (st->final_watch && dep->phase == PH_WATCH) {
		snprintf(err, errlen, "%s %s has all the traffic already (watched until its end: `cutover rollback %s` "
			 "goes back)", dep->service, dep->version, dep->service);
		return -EALREADY;
	}
	deploy_who_text(who, by, sizeof(by));
	dep->promoted = true;
	dep->paused = false;
	dep->paused_inconclusive = false;
	snprintf(detail, sizeof(detail), "promoted %s: %s", by,
		 dep->plan.rolling ? "the remaining batches go on without their holds"
				   : "the remaining steps are skipped, the new version takes all the traffic");
	dep_event_as(dep, "promoted", detail);
	if (dep->phase == PH_WATCH)
		step_next(dep);
	return dep->id;
}

static int64_t abort_it(struct deployment *dep, uid_t who)
{
	char why[96];
	int64_t id = dep->id;

	snprintf(why, sizeof(why), "aborted ");
	deploy_who_text(who, why + strlen(why), sizeof(why) - strlen(why));
	dep->aborted_by_person = who != DEPLOY_BY_DAEMON;
	if (dep->phase == PH_WATCH || (dep->plan.rolling && dep->green && dep->green->weight))
		engine_abort(dep, why);
	else
		dep_finish(dep, PH_FAILED, "%s before it took traffic", why);
	return id;
}

int64_t deployer_control(struct deployer *d, const char *service, enum deploy_control what, uid_t who, char *err,
			 size_t errlen)
{
	struct managed *m = managed_get(d, service, false);
	struct deployment *dep = m ? m->dep : NULL;
	int64_t r;

	if (!deployer_config(d, service)) {
		snprintf(err, errlen, "unknown service '%s'", service);
		return refuse(d, what, who, service, NULL, -ENOENT, err);
	}
	if (!dep || dep->phase >= PH_DONE) {
		snprintf(err, errlen, "no deploy of %s is in progress", service);
		return refuse(d, what, who, service, NULL, -ESRCH, err);
	}
	if (dep->is_rollback && what != DEPLOY_ABORT) {
		snprintf(err, errlen, "deployment %lld of %s is a rollback to %s: it cannot be paused or promoted",
			 (long long)dep->id, service, dep->version);
		return refuse(d, what, who, service, dep->version, -EINVAL, err);
	}
	if (dep->aborting) {
		snprintf(err, errlen, "deployment %lld of %s to %s is being aborted", (long long)dep->id, service,
			 dep->version);
		return refuse(d, what, who, service, dep->version, -EALREADY, err);
	}
	switch (what) {
	case DEPLOY_PAUSE: r = pause_it(dep, who, err, errlen); break;
	case DEPLOY_RESUME: r = resume_it(dep, who, err, errlen); break;
	case DEPLOY_PROMOTE: r = promote_it(dep, who, err, errlen); break;
	case DEPLOY_ABORT: r = abort_it(dep, who); break;
	default:
		snprintf(err, errlen, "unknown action");
		return -EINVAL;
	}
	if (r < 0)
		return refuse(d, what, who, service, dep->version, (int)r, err);
	record_audit(d, who, control_names[what], service, dep->version, "done", NULL);
	log_info("%s of %s to %s: %s", control_names[what], service, dep->version, "done");
	return r;
}

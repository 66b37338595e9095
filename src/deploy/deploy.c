/* deploy.c - the deployer object: its lifetime (new, stop_all, free), its
 * observer, and the helpers the other files of the engine share (contract
 * in deploy.h, the files in deploy-internal.h, the design in
 * docs/internals/deploy.md).
 *
 * A managed service has at most three versions at once: `live` (receiving
 * traffic), `prev` (the version before, kept warm for an instant rollback
 * until the rollback window ends) and the `green` of a deploy in flight.
 * Each is a group (groups.c) of instances (slots.c): supervised processes,
 * each on a port cutover chose, with its health check.  Everything here
 * runs on the loop thread; SQLite writes go through the state worker as
 * fire-and-forget jobs, in order (record.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "base/list.h"
#include "base/log.h"
#include "base/util.h"
#include "deploy/deploy-internal.h"
#include "loop/loop.h"
#include "proxy/proxy-t.h"
#include "state/proof.h"

const char *const phase_names[] = { [PH_AWAITING] = "awaiting-approval", [PH_STARTING] = "starting",
				    [PH_STOPPING] = "stopping",	 [PH_HEALTH] = "health-checking",
				    [PH_SMOKE] = "smoke-testing",	 [PH_WATCH] = "switched",
				    [PH_DONE] = "done",		 [PH_ROLLED_BACK] = "rolled-back",
				    [PH_FAILED] = "failed",		 [PH_REJECTED] = "rejected",
				    [PH_EXPIRED] = "expired" };
const char *const deploy_result_names[RESULT_COUNT] = {
	[RESULT_DONE] = "done",		  [RESULT_ROLLED_BACK] = "rolled-back", [RESULT_FAILED] = "failed",
	[RESULT_ABORTED] = "aborted", [RESULT_REJECTED] = "rejected",	      [RESULT_EXPIRED] = "expired",
};

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

const char *deploy_span(int64_t ms, bool up, char *buf, size_t len)
{
	int64_t s = ms <= 0 ? 0 : up ? (ms + 999) / 1000 : ms / 1000;

	if (s >= 3600)
		snprintf(buf, len, "%lldh%02lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
	else if (s >= 60)
		snprintf(buf, len, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
	else
		snprintf(buf, len, "%llds", (long long)s);
	return buf;
}

int64_t deploy_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const struct config_service *deployer_config(struct deployer *d, const char *name)
{
	for (size_t i = 0; i < d->p->cfg->nservices; i++)
		if (!strcmp(d->p->cfg->services[i].name, name))
			return &d->p->cfg->services[i];
	return NULL;
}

struct managed *managed_get(struct deployer *d, const char *name, bool create)
{
	struct list_head *pos;
	struct managed *m;

	for (pos = d->services.next; pos != &d->services; pos = pos->next) {
		m = container_of(pos, struct managed, node);
		if (!strcmp(m->name, name))
			return m;
	}
	if (!create)
		return NULL;
	m = calloc(1, sizeof(*m));
	if (!m || !(m->name = strdup(name))) {
		free(m);
		return NULL;
	}
	m->d = d;
	list_add_tail(&d->services, &m->node);
	return m;
}

/* Replace ${PORT}, ${VERSION}, ${SERVICE}, ${RELEASE_DIR} and ${URL} in
 * text.  Returns a malloc'd string or NULL. */
char *deploy_substitute(const char *text, const char *port, const char *version, const char *service,
			const char *release_dir, const char *url)
{
	static const char *const names[] = { "PORT", "VERSION", "SERVICE", "RELEASE_DIR", "URL" };
	const char *const vals[] = { port, version, service, release_dir, url };

	return substitute_vars(text, names, vals, 5);
}

/* A simple command (no shell syntax beyond words) gets `exec` in front, so
 * that the supervised pid is the program itself, not a shell: "stopped"
 * then means its in-flight work is done, not that the shell in front of it
 * died.  Takes and returns a malloc'd string (NULL stays NULL). */
char *deploy_exec_simple(char *command)
{
	char *e = NULL;

	if (command && !strpbrk(command, ";&|\n()`") && asprintf(&e, "exec %s", command) >= 0) {
		free(command);
		return e;
	}
	return command;
}

/* ------------------------------------------------------------------ */
/* the observer                                                        */

void deployer_observe(struct deployer *d, deployer_event_fn fn, void *data)
{
	d->on_event = fn;
	d->on_event_data = data;
}

void deployer_emit(struct deployer *d, const char *kind, json_t *ev)
{
	if (d->on_event && ev)
		d->on_event(d->on_event_data, kind, ev);
	json_decref(ev);
}

/* ------------------------------------------------------------------ */
/* lifetime                                                            */

static bool stop_all_timed_out;

static void stop_all_timeout(struct loop *loop, struct loop_timer *t)
{
	stop_all_timed_out = true;
	loop->stop = true;
}

void deployer_stop_all(struct deployer *d)
{
	struct list_head *pos, *tmp;
	struct loop_timer guard = { 0 };
	uint64_t grace = 0;

	d->shutting_down = true;
	for (pos = d->services.next; pos != &d->services; pos = pos->next) {
		struct managed *m = container_of(pos, struct managed, node);
		const struct config_service *cs = deployer_config(d, m->name);
		struct deployment *dep = m->dep;
		struct group *groups[3] = { m->live, m->prev, dep ? dep->green : NULL };
		/* counted before dep_finish, which stops a green itself */
		for (int i = 0; i < 3; i++) {
			for (size_t k = 0; groups[i] && k < groups[i]->n; k++) {
				struct slot *s = groups[i]->slots[k];
				if (s->stopping || s->counted)
					continue;
				s->counted = true;
				d->stopping++;
			}
		}
		if (dep && dep->phase == PH_WATCH && m->prev) {
			/* not through its watch window: the version to serve after a
			 * restart is the one before it (recorded with the result) */
			dep->routed_back = m->prev;
			dep_finish(dep, PH_FAILED,
				   "the daemon was stopped during the watch window: %s, the last known-good version, "
				   "serves when it starts again",
				   m->prev->version);
		} else if (dep && dep->phase < PH_DONE) {
			dep_finish(dep, PH_FAILED, "the daemon is shutting down");
		}
		if (dep && !dep->green)
			groups[2] = NULL; /* dep_finish stopped it (it may be freed already) */
		m->live = m->prev = NULL;
		loop_timer_cancel(d->p->loop, &m->prev_timer);
		for (int i = 0; i < 3; i++)
			group_stop(groups[i]);
		if (cs && cs->stop_grace_ms > grace)
			grace = cs->stop_grace_ms;
	}
	/* out of service: draining (the proxy has drained by now: stop it) or
	 * already stopping; wait for those too, or they would outlive us */
	list_for_each_safe(pos, tmp, &d->retiring) {
		struct slot *s = container_of(pos, struct slot, retiring);
		loop_timer_cancel(d->p->loop, &s->drain_timer);
		if (!s->counted) {
			s->counted = true;
			d->stopping++;
		}
		slot_stop(s); /* no-op if stopping; may free s */
	}
	if (!d->stopping)
		return;
	log_info("stopping %u instances (grace %llu ms)", d->stopping, (unsigned long long)grace);
	stop_all_timed_out = false;
	loop_timer_set(d->p->loop, &guard, d->p->loop->now_ms + grace + 2000, stop_all_timeout);
	/* other hooks (the drained proxy) may stop each iteration: go on until
	 * every instance is reaped or the guard fires */
	while (d->stopping && !stop_all_timed_out) {
		d->p->loop->stop = false;
		if (loop_run(d->p->loop) < 0)
			break;
	}
	loop_timer_cancel(d->p->loop, &guard);
	if (d->stopping)
		log_warn("%u instances not reaped after the stop grace", d->stopping);
	d->stopping = 0;
}

int deployer_new(struct proxy *p, struct supervisor *sup, struct worker *w, struct state *st,
		 struct deployer **ret)
{
	struct deployer *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	d->p = p;
	d->sup = sup;
	d->w = w;
	d->st = st;
	list_init(&d->services);
	list_init(&d->retiring);
	list_init(&d->deployments);
	d->crash_at = getenv("CUTOVER_TEST_CRASH_AT");
	if (d->crash_at && !*d->crash_at)
		d->crash_at = NULL;
	if (d->crash_at)
		log_warn("CUTOVER_TEST_CRASH_AT=%s is set: this daemon will kill itself there (a test hook)", d->crash_at);
	watch_start_baselines(d);
	*ret = d;
	return 0;
}

size_t deployer_starting(struct deployer *d, char *names, size_t len)
{
	size_t n = 0, used = 0;

	if (names && len)
		names[0] = 0;
	for (struct list_head *pos = d->services.next; pos != &d->services; pos = pos->next) {
		struct managed *m = container_of(pos, struct managed, node);
		if (m->live || !m->dep)
			continue;
		if (names && used < len)
			used += (size_t)snprintf(names + used, len - used, "%s%s", n ? ", " : "", m->name);
		n++;
	}
	return n;
}

bool deployer_busy(struct deployer *d, char *what, size_t len)
{
	for (struct list_head *pos = d->services.next; pos != &d->services; pos = pos->next) {
		struct managed *m = container_of(pos, struct managed, node);
		if (!m->dep)
			continue;
		snprintf(what, len, "deployment %lld (%s to %s)", (long long)m->dep->id, m->name, m->dep->version);
		return true;
	}
	return false;
}

void deployer_free(struct deployer *d)
{
	struct list_head *pos, *tmp;

	if (!d)
		return;
	/* no deployment follows what is freed below (engine_slot_gone) */
	for (pos = d->services.next; pos != &d->services; pos = pos->next)
		container_of(pos, struct managed, node)->dep = NULL;
	list_for_each_safe(pos, tmp, &d->deployments) {
		struct deployment *dep = container_of(pos, struct deployment, node);
		loop_timer_cancel(d->p->loop, &dep->timer);
		group_free(dep->green); /* still running ones keep running */
		watch_free(dep->watch);
		json_decref(dep->events);
		dbref_put(dep->db);
		free(dep);
	}
	loop_timer_cancel(d->p->loop, &d->baseline_timer);
	proof_signer_free(d->signer);
	list_for_each_safe(pos, tmp, &d->retiring)
		slot_free(container_of(pos, struct slot, retiring));
	list_for_each_safe(pos, tmp, &d->services) {
		struct managed *m = container_of(pos, struct managed, node);
		loop_timer_cancel(d->p->loop, &m->prev_timer);
		ring_free(m);
		/* instances keep running: a restarted daemon adopts them */
		group_free(m->live);
		if (m->prev != m->live)
			group_free(m->prev);
		free(m->name);
		free(m);
	}
	deployer_secrets_release(d);
	free(d);
}

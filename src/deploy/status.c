/* status.c - what the admin API shows of the deploy engine: a deployment
 * with its phases (deployer_deployment_json) and the managed services with
 * their instances (deployer_status_json).  Read-only; on the loop thread.
 */
#include <jansson.h>
#include <string.h>
#include "base/list.h"
#include "base/util.h"
#include "deploy/deploy-internal.h"
#include "deploy/health.h"
#include "loop/loop.h"
#include "metrics/metrics.h"
#include "proxy/proxy-t.h"
#include "supervisor/supervisor.h"


static const char *slot_state(struct slot *s)
{
	if (s->stopping)
		return "stopping";
	switch (s->inst ? sup_instance_state(s->inst) : SUP_STOPPED) {
	case SUP_RUNNING: return "running";
	case SUP_BACKOFF: return "restarting";
	case SUP_STOPPING: return "stopping";
	case SUP_FAILED: return "failed";
	default: return "stopped";
	}
}

static json_t *slot_json(struct slot *s, const char *role)
{
	struct managed *m;
	struct metrics_upstream *mu;
	uint64_t requests = 0, errors = 0;
	json_t *j;

	if (!s)
		return json_null();
	m = s->m;
	mu = slot_metrics(m, s);
	if (mu)
		metrics_counts_totals(&mu->counts, &requests, &errors);
	j = json_pack("{s:s, s:s, s:s, s:i, s:i, s:s, s:s, s:b, s:i, s:i, s:I, s:I}", "role", role, "version",
		      s->version, "address", s->addr, "port", s->port, "pid",
		      s->inst && sup_instance_state(s->inst) == SUP_RUNNING ? (int)sup_instance_pid(s->inst) : 0,
		      "state", slot_state(s), "health", health_state_name(s->health), "crashed", s->crashed,
		      "restarts", s->inst ? (int)sup_instance_restarts(s->inst) : 0, "traffic_percent",
		      slot_traffic_percent(m, s), "requests", (json_int_t)requests, "errors_5xx",
		      (json_int_t)errors);
	if (j && s->inst && sup_instance_warning(s->inst))
		json_object_set_new(j, "warning", json_string(sup_instance_warning(s->inst)));
	if (j && s == m->prev && m->prev_timer.deadline_ms) {
		uint64_t now = m->d->p->loop->now_ms, end = m->prev_timer.deadline_ms;
		json_object_set_new(j, "warm_for_s", json_integer(end > now ? (json_int_t)((end - now) / 1000) : 0));
	}
	return j;
}

json_t *deployer_deployment_json(struct deployer *d, int64_t id)
{
	struct list_head *pos;

	for (pos = d->deployments.next; pos != &d->deployments; pos = pos->next) {
		struct deployment *dep = container_of(pos, struct deployment, node);
		if (dep->id != id)
			continue;
		return json_pack("{s:I, s:s, s:s, s:s?, s:s, s:b, s:b, s:s?, s:I, s:O}", "id", (json_int_t)dep->id,
				 "service", dep->service, "version", dep->version, "from_version",
				 dep->from_version[0] ? dep->from_version : NULL, "phase", phase_names[dep->phase],
				 "finished", dep->phase >= PH_DONE, "rollback", dep->is_rollback, "reason",
				 dep->reason[0] ? dep->reason : NULL, "started_at_ms", (json_int_t)dep->started_at,
				 "events", dep->events);
	}
	return NULL;
}

json_t *deployer_status_json(struct deployer *d)
{
	json_t *arr = json_array();
	struct list_head *pos;

	for (pos = d->services.next; pos != &d->services; pos = pos->next) {
		struct managed *m = container_of(pos, struct managed, node);
		struct deployment *dep = m->dep;
		json_array_append_new(
			arr,
			json_pack("{s:s, s:o, s:o, s:o, s:o, s:s?}", "name", m->name, "live", slot_json(m->live, "live"),
				  "previous", slot_json(m->prev, "warm"), "green",
				  slot_json(dep ? dep->green : NULL, "green"), "deploying",
				  dep ? json_pack("{s:I, s:s, s:s, s:I}", "id", (json_int_t)dep->id, "version",
						  dep->version, "phase", phase_names[dep->phase], "elapsed_ms",
						  (json_int_t)(time_now_ms() - dep->t_start_ms))
				      : json_null(),
				  "rollback_to", m->prev_version[0] ? m->prev_version : NULL));
	}
	return arr;
}


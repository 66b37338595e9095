/* status.c - what the admin API shows of the deploy engine: a deployment
 * with its phases (deployer_deployment_json) and the managed services with
 * their instances (deployer_status_json), and the deploy engine's families
 * of /metrics (deployer_metrics).  Read-only; on the loop thread.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/list.h"
#include "base/util.h"
#include "deploy/analysis.h"
#include "deploy/deploy-internal.h"
#include "deploy/health.h"
#include "deploy/plan.h"
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
	if (j && s->g && s->g == m->prev && m->prev_timer.deadline_ms) {
		uint64_t now = m->d->p->loop->now_ms, end = m->prev_timer.deadline_ms;
		json_object_set_new(j, "warm_for_s", json_integer(end > now ? (json_int_t)((end - now) / 1000) : 0));
	}
	return j;
}

/* The first instance of g as JSON (null: none): the one `live`,
 * `previous` and `green` show, as before a version had several. */
static json_t *group_first_json(struct group *g, const char *role)
{
	return slot_json(g && g->n ? g->slots[0] : NULL, role);
}

/* Every instance of g, into arr. */
static void group_json(struct group *g, const char *role, json_t *arr)
{
	for (size_t i = 0; g && i < g->n; i++)
		json_array_append_new(arr, slot_json(g->slots[i], role));
}

static json_t *plan_json(const struct plan *plan)
{
	json_t *steps = json_array();

	for (size_t i = 0; i < plan->nsteps; i++) {
		const struct plan_step *st = &plan->steps[i];
		json_array_append_new(
			steps, json_pack("{s:o, s:i, s:b, s:i, s:i, s:I, s:b}", "old_instances",
					 st->old_instances == PLAN_KEEP ? json_null() : json_integer(st->old_instances),
					 "new_instances", (int)st->new_instances, "smoke", st->smoke, "old_weight",
					 (int)st->old_weight, "new_weight", (int)st->new_weight, "hold_ms",
					 (json_int_t)st->hold_ms, "analyse", st->analyse));
	}
	return json_pack("{s:s, s:o, s:b}", "strategy", plan->strategy, "steps", steps, "keep_old_warm",
			 plan->keep_old_warm);
}

/* A request's approval: who asked, until when it waits (or waited). */
static json_t *approval_json(const struct deployment *dep)
{
	return json_pack("{s:s, s:I, s:b}", "requested_by", dep->requested_by, "expires_at_ms",
			 (json_int_t)dep->expires_at, "awaiting", dep->phase == PH_AWAITING);
}

/* The requests of m's service that await approval, oldest first. */
static json_t *awaiting_json(struct deployer *d, const struct managed *m)
{
	json_t *arr = json_array();

	for (struct list_head *pos = d->deployments.next; pos != &d->deployments; pos = pos->next) {
		struct deployment *dep = container_of(pos, struct deployment, node);
		if (dep->phase != PH_AWAITING || strcmp(dep->service, m->name))
			continue;
		json_array_append_new(arr, json_pack("{s:I, s:s, s:s, s:o, s:I}", "id", (json_int_t)dep->id, "version",
						     dep->version, "requested_by", dep->requested_by, "promoted_from",
						     dep->promoted_from[0] ? json_string(dep->promoted_from)
									   : json_null(),
						     "expires_at_ms", (json_int_t)dep->expires_at));
	}
	return arr;
}

json_t *deployer_deployment_json(struct deployer *d, int64_t id)
{
	struct list_head *pos;

	for (pos = d->deployments.next; pos != &d->deployments; pos = pos->next) {
		struct deployment *dep = container_of(pos, struct deployment, node);
		json_t *j;
		if (dep->id != id)
			continue;
		j = json_pack("{s:I, s:s, s:s, s:s?, s:s, s:b, s:b, s:s?, s:I, s:O}", "id", (json_int_t)dep->id,
			      "service", dep->service, "version", dep->version, "from_version",
			      dep->from_version[0] ? dep->from_version : NULL, "phase", phase_names[dep->phase],
			      "finished", dep->phase >= PH_DONE, "rollback", dep->is_rollback, "reason",
			      dep->reason[0] ? dep->reason : NULL, "started_at_ms", (json_int_t)dep->started_at,
			      "events", dep->events);
		if (j) {
			json_object_set_new(j, "kind", json_string(dep_kind(dep)));
			json_object_set_new(j, "strategy", json_string(dep->plan.strategy));
			json_object_set_new(j, "plan", plan_json(&dep->plan));
			json_object_set_new(j, "step", json_integer((json_int_t)dep->step));
			json_object_set_new(j, "digest", dep->digest[0] ? json_string(dep->digest) : json_null());
			json_object_set_new(j, "promoted_from",
					    dep->promoted_from[0] ? json_string(dep->promoted_from) : json_null());
			if (dep->awaited)
				json_object_set_new(j, "approval", approval_json(dep));
		}
		return j;
	}
	return NULL;
}

/* What the status page shows of a deploy in flight besides its progress:
 * the version it replaces and all the steps of its plan (the progress
 * has only the current one). */
static void deploying_more(json_t *j, const struct deployment *dep)
{
	if (!j)
		return;
	json_object_set_new(j, "from_version", dep->from_version[0] ? json_string(dep->from_version) : json_null());
	json_object_set_new(j, "plan", plan_json(&dep->plan));
}

json_t *deployer_status_json(struct deployer *d)
{
	json_t *arr = json_array();
	struct list_head *pos;

	for (pos = d->services.next; pos != &d->services; pos = pos->next) {
		struct managed *m = container_of(pos, struct managed, node);
		const struct config_service *cs = deployer_config(d, m->name);
		struct deployment *dep = m->dep;
		struct group *green = dep ? dep->green : NULL;
		json_t *all = json_array();
		group_json(m->live, "live", all);
		group_json(m->prev, "warm", all);
		group_json(green, "green", all);
		json_t *svc = json_pack(
			"{s:s, s:s?, s:i, s:o, s:o, s:o, s:o, s:o, s:s?}", "name", m->name, "strategy",
			cs ? plan_strategy_name(cs->deploy.strategy) : NULL, "instances_per_version",
			cs && cs->instances ? (int)cs->instances : 1, "live", group_first_json(m->live, "live"), "previous",
			group_first_json(m->prev, "warm"), "green", group_first_json(green, "green"), "instances", all,
			"deploying",
			dep ? json_pack("{s:I, s:s, s:s, s:I, s:s, s:o}", "id", (json_int_t)dep->id, "version", dep->version,
					"phase", phase_names[dep->phase], "elapsed_ms",
					(json_int_t)(time_now_ms() - dep->t_start_ms), "strategy", dep->plan.strategy,
					"progress", watch_json(dep))
			    : json_null(),
			"rollback_to", state_lineage_rollback_target(&m->lineage, m->live ? m->live->version : NULL));
		if (svc)
			json_object_set_new(svc, "awaiting_approval", awaiting_json(d, m));
		if (svc && dep)
			deploying_more(json_object_get(svc, "deploying"), dep);
		json_array_append_new(arr, svc);
	}
	return arr;
}

/* The families of deployer_metrics, in the order they are written. */
enum family { F_STEP, F_STEPS, F_PAUSED, F_WEIGHT, F_VERDICTS, F_HEALTHY, F_RESTARTS, F_DEPLOYS, F_ROLLBACKS,
	      F_DURATION, F_PHASE, F_COUNT };

static const char *const families[F_COUNT][3] = {
	[F_STEP] = { "deploy_step", "gauge", "The step of the deploy in flight, from 1 (0: none)." },
	[F_STEPS] = { "deploy_steps", "gauge", "How many steps the deploy in flight has (0: none)." },
	[F_PAUSED] = { "deploy_paused", "gauge", "1 while the deploy in flight is paused." },
	[F_WEIGHT] = { "version_weight_percent", "gauge",
		       "Share of new requests set for each running version, in percent." },
	[F_VERDICTS] = { "analysis_verdicts_total", "counter",
			 "Decisions of the analysis (end of a step, a failure), by result." },
	[F_HEALTHY] = { "instance_healthy", "gauge",
			"1 while an instance passes its health check, 0 otherwise (starting, failing, crashed)." },
	[F_RESTARTS] = { "instance_restarts_total", "counter",
			 "Instances of the service restarted after a crash, every version." },
	[F_DEPLOYS] = { "deploys_total", "counter", "Deployments finished, by result." },
	[F_ROLLBACKS] = { "rollbacks_total", "counter",
			  "Traffic put back on a previous version, by trigger (automatic: cutover; manual: a person)." },
	[F_DURATION] = { "deploy_duration_seconds", "histogram",
			 "Time from a deployment's start to its result (those that ran)." },
	[F_PHASE] = { "deploy_phase_seconds", "gauge",
		      "Seconds the deploy in flight has been in its phase (or step), since it began or resumed." },
};

static const char *const trigger_names[TRIGGER_COUNT] = {
	[TRIGGER_AUTOMATIC] = "automatic",
	[TRIGGER_MANUAL] = "manual",
};

/* The series of the instances of m's versions: their weights and health.
 * An instance is named by its address in the label `target`, as in the
 * upstream families (`instance` is Prometheus' own: the scraped daemon). */
static void metrics_versions(FILE *f, struct managed *m, enum family k)
{
	struct deployment *dep = m->dep;
	struct group *groups[3] = { m->live, m->prev != m->live ? m->prev : NULL, dep ? dep->green : NULL };

	for (size_t i = 0; i < 3; i++) {
		struct group *g = groups[i];
		if (!g || !g->n)
			continue;
		if (k == F_WEIGHT) {
			fprintf(f, "cutover_version_weight_percent{service=\"%s\",version=\"%s\"} %u\n", m->name,
				g->version, g->weight);
			continue;
		}
		for (size_t j = 0; j < g->n; j++)
			fprintf(f, "cutover_instance_healthy{service=\"%s\",version=\"%s\",target=\"%s\"} %d\n", m->name,
				g->version, g->slots[j]->addr, g->slots[j]->health == HEALTH_HEALTHY);
	}
}

/* The deploy series of family k (deployer_metrics) for one service.
 * Names and versions need no escaping: the configuration and the store
 * allow neither quotes nor backslashes in them. */
static void metrics_service(FILE *f, struct managed *m, enum family k)
{
	struct deployment *dep = m->dep;
	char labels[96];

	switch (k) {
	case F_STEP:
		fprintf(f, "cutover_deploy_step{service=\"%s\"} %zu\n", m->name, dep ? dep->step + 1 : 0);
		break;
	case F_STEPS:
		fprintf(f, "cutover_deploy_steps{service=\"%s\"} %zu\n", m->name, dep ? dep->plan.nsteps : 0);
		break;
	case F_PAUSED:
		fprintf(f, "cutover_deploy_paused{service=\"%s\"} %d\n", m->name, dep && dep->paused ? 1 : 0);
		break;
	case F_WEIGHT:
	case F_HEALTHY:
		metrics_versions(f, m, k);
		break;
	case F_VERDICTS:
		for (int r = ANALYSIS_PASS; r <= ANALYSIS_INCONCLUSIVE; r++)
			fprintf(f, "cutover_analysis_verdicts_total{service=\"%s\",result=\"%s\"} %llu\n", m->name,
				analysis_result_name((enum analysis_result)r), (unsigned long long)m->verdicts[r]);
		break;
	case F_RESTARTS:
		fprintf(f, "cutover_instance_restarts_total{service=\"%s\"} %llu\n", m->name,
			(unsigned long long)m->restarts);
		break;
	case F_DEPLOYS:
		for (int r = 0; r < RESULT_COUNT; r++)
			fprintf(f, "cutover_deploys_total{service=\"%s\",result=\"%s\"} %llu\n", m->name,
				deploy_result_names[r], (unsigned long long)m->deploys[r]);
		break;
	case F_ROLLBACKS:
		for (int t = 0; t < TRIGGER_COUNT; t++)
			fprintf(f, "cutover_rollbacks_total{service=\"%s\",trigger=\"%s\"} %llu\n", m->name,
				trigger_names[t], (unsigned long long)m->rollbacks[t]);
		break;
	case F_DURATION:
		snprintf(labels, sizeof(labels), "service=\"%s\"", m->name);
		metrics_span_write(f, "cutover_deploy_duration_seconds", labels, &m->durations);
		break;
	case F_PHASE:
		if (dep && dep->phase < PH_DONE) {
			uint64_t now = time_now_ms(), since = dep->phase_since_ms ? dep->phase_since_ms : dep->t_start_ms;
			fprintf(f, "cutover_deploy_phase_seconds{service=\"%s\",phase=\"%s\"} %.3f\n", m->name,
				phase_names[dep->phase], now > since ? (double)(now - since) / 1000.0 : 0.0);
		}
		break;
	default:
		break;
	}
}

char *deployer_metrics(struct deployer *d, size_t *len)
{
	char *text = NULL;
	FILE *f = open_memstream(&text, len);

	if (!f)
		return NULL;
	/* the samples of a family together, after its HELP and TYPE */
	for (int k = 0; k < F_COUNT; k++) {
		fprintf(f, "# HELP cutover_%s %s\n# TYPE cutover_%s %s\n", families[k][0], families[k][2], families[k][0],
			families[k][1]);
		for (struct list_head *pos = d->services.next; pos != &d->services; pos = pos->next)
			metrics_service(f, container_of(pos, struct managed, node), (enum family)k);
	}
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

int deployer_versions(struct deployer *d, const char *service, struct deployer_versions *ret)
{
	struct managed *m = managed_get(d, service, false);

	memset(ret, 0, sizeof(*ret));
	if (!m)
		return -ENOENT;
	if (m->live)
		snprintf(ret->live, sizeof(ret->live), "%s", m->live->version);
	if (m->prev && m->prev != m->live)
		snprintf(ret->previous, sizeof(ret->previous), "%s", m->prev->version);
	ret->in_flight = m->dep ? m->dep->id : 0;
	ret->healthy = m->live && m->live->n > 0;
	for (size_t i = 0; m->live && i < m->live->n; i++)
		ret->healthy &= m->live->slots[i] && m->live->slots[i]->health == HEALTH_HEALTHY;
	return 0;
}

/* gate.c - placeholder until the gate readers land: exit-status and
 * metric gates only; every other read fails, saying so. */
#include <stdio.h>
#include <string.h>
#include "release/gate.h"

static const char *const read_names[] = { "exit", "summary", "junit", "coverage", "metric" };

void gate_judge_command(const struct release_gate *g, const char *dir, const char *output_path,
			struct gate_result *r)
{
	(void)dir;
	(void)output_path;
	if (r->timed_out || r->signal) {
		r->passed = false;
		snprintf(r->reason, sizeof(r->reason), "`%s` %s", g->run, r->timed_out ? "timed out" : "was killed");
		return;
	}
	if (g->read != GATE_READ_EXIT) {
		r->passed = false;
		snprintf(r->reason, sizeof(r->reason), "read: %s is not available in this build", read_names[g->read]);
		return;
	}
	r->passed = r->exit_code == g->expect_exit;
	snprintf(r->reason, sizeof(r->reason), "`%s` exited with status %d (%s %d)", g->run, r->exit_code,
		 r->passed ? "==" : "!=", g->expect_exit);
}

void gate_judge_metric(const struct release_gate *g, struct gate_result *r)
{
	double max = g->metric == METRIC_ERROR_RATE ? (double)g->max_value / 100.0 : (double)g->max_value;

	if (!r->has_metric) {
		r->passed = false;
		return;
	}
	if (r->requests < g->min_requests) {
		r->passed = false;
		snprintf(r->reason, sizeof(r->reason), "too few requests (%llu < %llu) to judge",
			 (unsigned long long)r->requests, (unsigned long long)g->min_requests);
		return;
	}
	r->passed = r->value <= max;
	snprintf(r->reason, sizeof(r->reason), "%.2f%s %s %.2f%s over %llu requests", r->value,
		 g->metric == METRIC_ERROR_RATE ? "%" : "ms", r->passed ? "<=" : ">", max,
		 g->metric == METRIC_ERROR_RATE ? "%" : "ms", (unsigned long long)r->requests);
}

json_t *gate_result_json(const struct release_gate *g, const struct gate_result *r)
{
	return json_pack("{ss ss sb ss si sI sI}", "name", g->name, "read", read_names[g->read], "passed", r->passed,
			 "reason", r->reason, "exit_code", r->exit_code, "started_at", (json_int_t)r->started_ms,
			 "finished_at", (json_int_t)r->finished_ms);
}

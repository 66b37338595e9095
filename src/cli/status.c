/* status.c - `cutover status`: what the daemon is serving right now. */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "state/state.h"
#include "admin/client.h"

static void print_duration(json_int_t s)
{
	if (s >= 86400)
		printf("%lldd%02lldh", (long long)(s / 86400), (long long)(s % 86400 / 3600));
	else if (s >= 3600)
		printf("%lldh%02lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
	else if (s >= 60)
		printf("%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
	else
		printf("%llds", (long long)s);
}

static json_t *managed_entry(json_t *st, const char *name)
{
	json_t *m;
	size_t i;

	json_array_foreach(json_object_get(st, "managed"), i, m)
		if (!strcmp(json_string_value(json_object_get(m, "name")), name))
			return m;
	return NULL;
}

static void routes_text(json_t *routes, char *out, size_t outlen)
{
	json_t *r;
	size_t j, off = 0;

	out[0] = 0;
	json_array_foreach(routes, j, r) {
		const char *h = json_string_value(json_object_get(r, "host"));
		off += (size_t)snprintf(out + off, off < outlen ? outlen - off : 0, "%s%s%s", j ? " " : "",
					strcmp(h, "*") ? h : "", json_string_value(json_object_get(r, "path")));
		if (off >= outlen)
			break;
	}
}

/* One line per instance of a managed service: live, warm, green. */
static void print_version(json_t *v)
{
	const char *role = json_string_value(json_object_get(v, "role"));
	const char *state = json_string_value(json_object_get(v, "state"));
	json_int_t pid = json_integer_value(json_object_get(v, "pid"));
	json_t *warm = json_object_get(v, "warm_for_s");
	char pidtext[16], note[64] = "";

	snprintf(pidtext, sizeof(pidtext), "%lld", (long long)pid);
	if (strcmp(state, "running"))
		snprintf(note, sizeof(note), "%s", state); /* restarting, failed, stopping */
	else if (json_is_integer(warm))
		snprintf(note, sizeof(note), "rollback window %llds left", (long long)json_integer_value(warm));
	printf("  %-7s %-12s %-8s %-6lld %-10s %8lld %8d%% %10lld %7lld%s%s\n", role,
	       json_string_value(json_object_get(v, "version")), pid ? pidtext : "-",
	       (long long)json_integer_value(json_object_get(v, "port")),
	       json_string_value(json_object_get(v, "health")),
	       (long long)json_integer_value(json_object_get(v, "restarts")),
	       (int)json_integer_value(json_object_get(v, "traffic_percent")),
	       (long long)json_integer_value(json_object_get(v, "requests")),
	       (long long)json_integer_value(json_object_get(v, "errors_5xx")), note[0] ? "  " : "", note);
}

/* "12.0-13.0 ms" from [lower, upper] (null: "-"). */
static const char *ms_range(json_t *pair, char *buf, size_t len)
{
	if (!json_is_array(pair)) {
		snprintf(buf, len, "-");
		return buf;
	}
	snprintf(buf, len, "%.1f-%.1f ms", json_real_value(json_array_get(pair, 0)),
		 json_real_value(json_array_get(pair, 1)));
	return buf;
}

/* The step of a deploy in flight: weights set and measured, the next
 * decision, figures per version over the step's window, each check. */
static void print_progress(json_t *p)
{
	json_t *next = json_object_get(p, "next_decision_ms"), *measured = json_object_get(p, "measured_new_percent");
	json_t *v;
	size_t i;
	char a[48], b[48];

	if (!json_is_object(p))
		return;
	printf("  step %lld of %lld: new version %lld %% (measured %s)", (long long)json_integer_value(json_object_get(p, "step")),
	       (long long)json_integer_value(json_object_get(p, "steps")),
	       (long long)json_integer_value(json_object_get(p, "new_weight")),
	       json_is_number(measured) ? (snprintf(a, sizeof(a), "%.1f %%", json_number_value(measured)), a) : "-");
	if (json_is_true(json_object_get(p, "paused")))
		printf("; PAUSED: %s\n", json_string_value(json_object_get(p, "pause_reason")));
	else if (json_is_integer(next))
		printf("; next decision in %.0fs%s%s\n", (double)json_integer_value(next) / 1000.0,
		       json_is_true(json_object_get(p, "extending")) ? " at most (extended: too few requests)" : "",
		       json_is_true(json_object_get(p, "promoted")) ? " (promoted)" : "");
	else
		printf("\n");
	if (!json_is_array(json_object_get(p, "versions")))
		return;
	printf("    %-12s %-18s %9s %8s %18s %18s\n", "VERSION", "ROLE", "REQUESTS", "ERRORS", "P50", "P99");
	json_array_foreach(json_object_get(p, "versions"), i, v)
		printf("    %-12s %-18s %9lld %7.2f%% %18s %18s\n", json_string_value(json_object_get(v, "version")),
		       json_string_value(json_object_get(v, "role")), (long long)json_integer_value(json_object_get(v, "requests")),
		       100.0 * json_real_value(json_object_get(v, "error_rate")), ms_range(json_object_get(v, "p50_ms"), a, sizeof(a)),
		       ms_range(json_object_get(v, "p99_ms"), b, sizeof(b)));
	printf("    verdict: %s: %s\n", json_string_value(json_object_get(p, "verdict")),
	       json_string_value(json_object_get(p, "reason")));
	printf("    %-12s %-36s %-44s %s\n", "CHECK", "", "VALUE", "CONDITION");
	json_array_foreach(json_object_get(p, "checks"), i, v)
		printf("    %-12s %-36s %-44s %s\n", json_string_value(json_object_get(v, "result")),
		       json_string_value(json_object_get(v, "name")), json_string_value(json_object_get(v, "value")),
		       json_string_value(json_object_get(v, "condition")));
}

/* The requests that await approval (approval: required). */
static void print_awaiting(json_t *list)
{
	size_t i;
	json_t *a;

	json_array_foreach(list, i, a) {
		const char *from = json_string_value(json_object_get(a, "promoted_from"));
		double left = (double)(json_integer_value(json_object_get(a, "expires_at_ms")) - state_now_ms()) / 1000.0;
		printf("  awaiting approval: deployment %lld to %s%s%s, requested by %s, expires in %.0fs: "
		       "cutover approve %lld (or reject)\n",
		       (long long)json_integer_value(json_object_get(a, "id")),
		       json_string_value(json_object_get(a, "version")), from ? ", promoted from " : "", from ? from : "",
		       json_string_value(json_object_get(a, "requested_by")), left > 0 ? left : 0,
		       (long long)json_integer_value(json_object_get(a, "id")));
	}
}

/* A service in maintenance: one line under its name (nothing if not). */
static void print_maintenance(json_t *svc)
{
	json_t *m = json_object_get(svc, "maintenance");
	char since[32];

	if (!json_is_object(m))
		return;
	state_format_time(json_integer_value(json_object_get(m, "since")), since, sizeof(since));
	printf("  MAINTENANCE since %s by %s: answered 503 (Retry-After: %llds) with %s; "
	       "cutover maintenance off %s\n", since, json_string_value(json_object_get(m, "by")),
	       (long long)json_integer_value(json_object_get(m, "retry_after")),
	       json_is_true(json_object_get(m, "page")) ? "its page" : "the built-in page",
	       json_string_value(json_object_get(svc, "name")));
}

static void print_managed(json_t *svc, json_t *m, const char *routes)
{
	json_t *dep = json_object_get(m, "deploying");
	const char *back = json_string_value(json_object_get(m, "rollback_to"));

	printf("%s  (managed; routes: %s)\n", json_string_value(json_object_get(svc, "name")),
	       routes[0] ? routes : "none");
	print_maintenance(svc);
	if (json_is_object(dep)) {
		printf("  deploying %s (%s): %s for %.1fs (deployment %lld)\n",
		       json_string_value(json_object_get(dep, "version")), json_string_value(json_object_get(dep, "strategy")),
		       json_string_value(json_object_get(dep, "phase")),
		       (double)json_integer_value(json_object_get(dep, "elapsed_ms")) / 1000.0,
		       (long long)json_integer_value(json_object_get(dep, "id")));
		print_progress(json_object_get(dep, "progress"));
	}
	print_awaiting(json_object_get(m, "awaiting_approval"));
	if (!json_is_object(json_object_get(m, "live")) && !json_is_object(json_object_get(m, "green"))) {
		printf("  nothing deployed yet: cutover deploy %s VERSION\n\n",
		       json_string_value(json_object_get(svc, "name")));
		return;
	}
	printf("  %-7s %-12s %-8s %-6s %-10s %8s %9s %10s %7s\n", "ROLE", "VERSION", "PID", "PORT", "HEALTH",
	       "RESTARTS", "TRAFFIC", "REQUESTS", "5XX");
	if (json_is_array(json_object_get(m, "instances"))) { /* every instance of every version */
		size_t i;
		json_t *v;
		json_array_foreach(json_object_get(m, "instances"), i, v)
			print_version(v);
	} else {
		if (json_is_object(json_object_get(m, "live")))
			print_version(json_object_get(m, "live"));
		if (json_is_object(json_object_get(m, "previous")))
			print_version(json_object_get(m, "previous"));
		if (json_is_object(json_object_get(m, "green")))
			print_version(json_object_get(m, "green"));
	}
	if (back)
		printf("  cutover rollback %s: back to %s%s\n", json_string_value(json_object_get(svc, "name")), back,
		       json_is_object(json_object_get(m, "previous")) ? " (warm: instant)"
								   : " (started and health-checked first)");
	printf("\n");
}

static void print_targets(json_t *svc, const char *routes)
{
	json_t *targets = json_object_get(svc, "targets"), *t;
	size_t j;

	printf("%s  (routes: %s)\n", json_string_value(json_object_get(svc, "name")), routes[0] ? routes : "none");
	print_maintenance(svc);
	if (!json_array_size(targets)) {
		printf("  no targets\n\n");
		return;
	}
	printf("  %-22s %6s %10s %7s %6s %5s\n", "TARGET", "WEIGHT", "REQUESTS", "5XX", "CONNS", "IDLE");
	json_array_foreach(targets, j, t) {
		printf("  %-22s %6lld %10lld %7lld %6lld %5lld\n", json_string_value(json_object_get(t, "address")),
		       (long long)json_integer_value(json_object_get(t, "weight")),
		       (long long)json_integer_value(json_object_get(t, "requests")),
		       (long long)json_integer_value(json_object_get(t, "errors_5xx")),
		       (long long)json_integer_value(json_object_get(t, "open_connections")),
		       (long long)json_integer_value(json_object_get(t, "idle_connections")));
	}
	printf("\n");
}

static void print_status(json_t *st)
{
	const char *config = json_string_value(json_object_get(st, "config"));
	const char *env = json_string_value(json_object_get(st, "env"));
	const char *overlay = json_string_value(json_object_get(st, "overlay"));
	json_t *svc;
	size_t i;

	printf("cutover %s  pid %lld  up ", json_string_value(json_object_get(st, "version")),
	       (long long)json_integer_value(json_object_get(st, "pid")));
	print_duration(json_integer_value(json_object_get(st, "uptime_s")));
	printf("%s\n", json_is_true(json_object_get(st, "draining")) ? "  DRAINING" : "");
	if (config && env && overlay)
		printf("config %s + %s (env %s)\n", config, strrchr(overlay, '/') ? strrchr(overlay, '/') + 1 : overlay,
		       env);
	else if (config)
		printf("config %s\n", config);
	printf("client connections %lld, requests in flight %lld\n",
	       (long long)json_integer_value(json_object_get(st, "client_connections")),
	       (long long)json_integer_value(json_object_get(st, "requests_in_flight")));
	json_array_foreach(json_object_get(st, "releases"), i, svc)
		printf("release %lld (%s): %s, group %lld of %lld  (cutover release show %lld)\n",
		       (long long)json_integer_value(json_object_get(svc, "id")),
		       json_string_value(json_object_get(svc, "name")), json_string_value(json_object_get(svc, "state")),
		       (long long)json_integer_value(json_object_get(svc, "group")),
		       (long long)json_integer_value(json_object_get(svc, "groups")),
		       (long long)json_integer_value(json_object_get(svc, "id")));
	putchar('\n');
	json_array_foreach(json_object_get(st, "services"), i, svc) {
		char routes[256];
		json_t *m = managed_entry(st, json_string_value(json_object_get(svc, "name")));
		routes_text(json_object_get(svc, "routes"), routes, sizeof(routes));
		if (m)
			print_managed(svc, m, routes);
		else
			print_targets(svc, routes);
	}
}

/* The daemon's answer to a refused request, for a message: its "error"
 * member, else the body itself. */
static const char *answer_error(json_t *answer, const char *body)
{
	const char *e = json_string_value(json_object_get(answer, "error"));

	return e ? e : body;
}

int cli_status(int argc, char **argv)
{
	struct cli c = {
		.verb = "status",
		.flags = CLI_CONFIG | CLI_SOCKET,
	};
	char *path = NULL, *body = NULL;
	json_t *st = NULL;
	int status, rc;

	rc = cli_parse(&c, argc, argv);
	if (rc >= 0)
		return rc;
	rc = cli_socket_path(&c, &path);
	if (rc)
		return rc;
	rc = cli_call(&c, path, "GET", "/v1/status", NULL, &status, &body);
	if (rc)
		goto out;
	st = json_loads(body, 0, NULL);
	if (status != 200 || !st) {
		rc = cli_fail(&c, EXIT_FAILED, json_pack("{si}", "status", status), "status failed (%d): %s", status,
			      answer_error(st, body));
		goto out;
	}
	if (c.json)
		fputs(body, stdout);
	else
		print_status(st);
out:
	json_decref(st);
	free(body);
	free(path);
	return rc;
}

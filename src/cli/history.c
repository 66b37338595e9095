/* history.c - `cutover history [SERVICE]`: past and current deployments
 * with their phases, and `cutover audit [SERVICE]`: who did what, when,
 * with what result; both narrowed by environment (--env), service,
 * release run and time (struct state_log_filter).  Both read the state
 * directory (SQLite in WAL mode reads safely beside a running daemon) and
 * never create it. */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "state/state.h"

static void print_history(json_t *rows, bool events)
{
	json_t *row, *ev;
	size_t i, j;

	if (!json_array_size(rows)) {
		printf("no deployments recorded\n");
		return;
	}
	printf("%-5s %-12s %-10s %-10s %-8s %-12s %-7s %9s  %-24s %s\n", "ID", "SERVICE", "FROM", "TO", "KIND",
	       "RESULT", "RELEASE", "DURATION", "STARTED", "REASON");
	json_array_foreach(rows, i, row) {
		char started[32] = "-", release[24] = "-";
		json_t *dur = json_object_get(row, "duration_ms");
		const char *from = json_string_value(json_object_get(row, "from_version"));
		const char *reason = json_string_value(json_object_get(row, "reason"));
		state_format_time(json_integer_value(json_object_get(row, "started_at")), started, sizeof(started));
		if (json_is_integer(json_object_get(row, "release_id")))
			snprintf(release, sizeof(release), "%lld",
				 (long long)json_integer_value(json_object_get(row, "release_id")));
		printf("%-5lld %-12s %-10s %-10s %-8s %-12s %-7s %8.1fs  %-24s %s\n",
		       (long long)json_integer_value(json_object_get(row, "id")),
		       json_string_value(json_object_get(row, "service")), from ? from : "-",
		       json_string_value(json_object_get(row, "to_version")),
		       json_is_string(json_object_get(row, "promoted_from")) ? "promote"
									     : json_string_value(json_object_get(row, "kind")),
		       json_string_value(json_object_get(row, "state")), release,
		       json_is_integer(dur) ? (double)json_integer_value(dur) / 1000.0 : 0.0, started,
		       reason ? reason : "");
		if (!events)
			continue;
		json_array_foreach(json_object_get(row, "events"), j, ev) {
			char at[32];
			const char *detail = json_string_value(json_object_get(ev, "detail"));
			state_format_time(json_integer_value(json_object_get(ev, "at")), at, sizeof(at));
			printf("        %s  %-16s %s\n", at, json_string_value(json_object_get(ev, "to_state")),
			       detail ? detail : "");
		}
	}
}

static void print_audit(json_t *rows)
{
	json_t *row;
	size_t i;

	if (!json_array_size(rows)) {
		printf("nothing recorded\n");
		return;
	}
	printf("%-24s %-20s %-10s %-7s %-22s %-20s %-12s %s\n", "AT", "WHO", "ENV", "RELEASE", "ACTION", "TARGET",
	       "RESULT", "DETAIL");
	json_array_foreach(rows, i, row) {
		char at[32], release[24] = "-";
		const char *target = json_string_value(json_object_get(row, "target"));
		const char *detail = json_string_value(json_object_get(row, "detail"));
		const char *env = json_string_value(json_object_get(row, "env"));
		state_format_time(json_integer_value(json_object_get(row, "at")), at, sizeof(at));
		if (json_is_integer(json_object_get(row, "release_id")))
			snprintf(release, sizeof(release), "%lld",
				 (long long)json_integer_value(json_object_get(row, "release_id")));
		printf("%-24s %-20s %-10s %-7s %-22s %-20s %-12s %s\n", at,
		       json_string_value(json_object_get(row, "actor")), env ? env : "-", release,
		       json_string_value(json_object_get(row, "action")), target ? target : "-",
		       json_string_value(json_object_get(row, "result")), detail ? detail : "");
	}
}

struct history_options {
	long limit;                   /* --limit */
	bool events;                  /* --events (history only) */
	const char *service;          /* --service */
	long long release;            /* --release ID */
	int64_t since_ms, until_ms;   /* --since, --until */
};

static int history_option(struct cli *c, int opt, const char *arg)
{
	struct history_options *o = c->data;
	char *end;

	switch (opt) {
	case 'n':
		o->limit = strtol(arg, &end, 10);
		if (o->limit <= 0 || *end)
			return cli_fail(c, EXIT_USAGE, NULL, "--limit: expected a positive number, got '%s'", arg);
		return -1;
	case 'e':
		o->events = true;
		return -1;
	case 'v':
		o->service = arg;
		return -1;
	case 'r':
		o->release = strtoll(arg, &end, 10);
		if (o->release <= 0 || *end || arg[0] < '0' || arg[0] > '9')
			return cli_fail(c, EXIT_USAGE, NULL, "--release: expected a release run id (a positive number), "
					"got '%s'", arg);
		return -1;
	case 'S':
		return cli_time_option(c, "--since", arg, &o->since_ms);
	case 'U':
		return cli_time_option(c, "--until", arg, &o->until_ms);
	}
	return EXIT_USAGE;
}

/* `cutover history` and `cutover audit`: the same options, one query. */
static int run(int argc, char **argv, bool audit)
{
	static const struct option history_opts[] = {
		{ "limit", required_argument, NULL, 'n' },
		{ "events", no_argument, NULL, 'e' },
		{ "service", required_argument, NULL, 'v' },
		{ "release", required_argument, NULL, 'r' },
		{ "since", required_argument, NULL, 'S' },
		{ "until", required_argument, NULL, 'U' },
		{ 0 },
	};
	struct history_options o = { .limit = audit ? 50 : 20 };
	struct cli c = {
		.verb = audit ? "audit" : "history",
		.flags = CLI_CONFIG | CLI_STATE_DIR,
		.synopsis = "[SERVICE]",
		.max_args = 1,
		.options = history_opts,
		.shortopts = audit ? "n:" : "n:e",
		.option = history_option,
		.data = &o,
	};
	struct state *st = NULL;
	const char *service;
	char *dir = NULL;
	json_t *rows = NULL;
	int rc, known = 1;

	rc = cli_parse(&c, argc, argv);
	if (rc >= 0)
		return rc;
	if (audit && o.events)
		return cli_fail(&c, EXIT_USAGE, NULL, "--events: only for `cutover history`");
	if (c.nargs && o.service && strcmp(c.args[0], o.service))
		return cli_fail(&c, EXIT_USAGE, NULL, "two services given: '%s' and --service %s", c.args[0], o.service);
	if (o.since_ms && o.until_ms && o.until_ms <= o.since_ms)
		return cli_fail(&c, EXIT_USAGE, NULL, "--until must come after --since");
	service = c.nargs ? c.args[0] : o.service;
	struct state_log_filter f = { .service = service, .env = c.env, .release_id = o.release,
				      .since_ms = o.since_ms, .until_ms = o.until_ms, .limit = (size_t)o.limit };
	rc = cli_open_state(&c, true, &st, &dir);
	if (rc)
		return rc;
	if (audit)
		rc = state_audit_list(st, &f, &rows);
	else
		rc = state_history(st, &f, &rows);
	if (rc == 0 && service && !json_array_size(rows))
		known = state_service_known(st, service);
	if (rc < 0 || known < 0) {
		rc = cli_fail(&c, EXIT_FAILED, NULL, "cannot read the %s in %s: %s", audit ? "audit log" : "history", dir,
			      state_errmsg(st));
		goto out;
	}
	if (!known) {
		rc = cli_fail(&c, EXIT_FAILED, json_pack("{ss}", "service", service),
			      "unknown service '%s' (no deployments / releases recorded)", service);
		goto out;
	}
	if (c.json)
		cli_print_json(json_incref(rows));
	else if (audit)
		print_audit(rows);
	else
		print_history(rows, o.events);
out:
	json_decref(rows);
	state_close(st);
	free(dir);
	return rc;
}

int cli_history(int argc, char **argv)
{
	return run(argc, argv, false);
}

int cli_audit(int argc, char **argv)
{
	return run(argc, argv, true);
}

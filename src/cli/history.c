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

#define FILTERS                                                                                                \
	"Filters: SERVICE or --service SERVICE; --release ID: of that release run (cutover\n"                    \
	"release list); --since / --until WHEN: from / before WHEN, an ISO date or time in UTC\n"                \
	"(2026-12-05, 2026-12-05T10:00, ...Z, +01:00) or a time ago (30m, 2h, 3d, 1w).\n"

#define FINDING_THE_STATE                                                                                      \
	"The state: --state-dir DIR, else state_dir of --config FILE, else $CUTOVER_STATE_DIR,\n"              \
	"else state_dir of ./cutover.yml if it exists, else /var/lib/cutover.  Nothing is\n"                   \
	"created: exit 1 if DIR holds no state.db, or if SERVICE was never recorded.\n"                          \
	"Exit codes: 0 ok, 1 failed, 2 usage or configuration error.\n"

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
		.help = audit ? "usage: cutover audit [SERVICE] [--env ENV] [--service SERVICE] [--release ID]\n"
				"                     [--since WHEN] [--until WHEN] [--limit N]\n"
				"                     [--state-dir DIR | --config FILE] [--json]\n"
				"Who did what and when, with the result, newest first: deploys, rollbacks\n"
				"(by hand or automatic), refusals, releases added and pruned, secrets changed.\n"
				"--env ENV (or $CUTOVER_ENV): only what was done in environment ENV (and ENV's\n"
				"state, through its configuration, unless --state-dir says otherwise).\n"
				FILTERS FINDING_THE_STATE
			      : "usage: cutover history [SERVICE] [--env ENV] [--service SERVICE] [--release ID]\n"
				"                       [--since WHEN] [--until WHEN] [--limit N] [--events]\n"
				"                       [--state-dir DIR | --config FILE] [--json]\n"
				"Deployments, newest first, with their result, duration and reason; --events adds\n"
				"every phase transition.  KIND: deploy, rollback, or restart (cutover started the\n"
				"version again: FROM and TO are the same).  RESULT: done (a rollback too, once\n"
				"traffic is back), rolled-back (a deploy whose new version was rolled back),\n"
				"failed (traffic never moved), aborted (the daemon restarted during it),\n"
				"awaiting-approval, rejected, expired (approval: nobody approved it in time).\n"
				"RELEASE: the release run it was part of.  --env ENV (or $CUTOVER_ENV): ENV's state\n"
				"(through its configuration), and only the deployments made in ENV.\n"
				FILTERS FINDING_THE_STATE,
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

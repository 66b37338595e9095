/* history.c - `cutover history [SERVICE]`: past and current deployments
 * with their phases, and `cutover audit [SERVICE]`: who did what, when,
 * with what result.  Both read the state directory (SQLite in WAL mode
 * reads safely beside a running daemon). */
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include "admin/cli/cli.h"
#include "state/state.h"

static void print_history(json_t *rows, bool events)
{
	json_t *row, *ev;
	size_t i, j;

	if (!json_array_size(rows)) {
		printf("no deployments recorded\n");
		return;
	}
	printf("%-5s %-12s %-10s %-10s %-12s %9s  %-20s %s\n", "ID", "SERVICE", "FROM", "TO", "RESULT", "DURATION",
	       "STARTED", "REASON");
	json_array_foreach(rows, i, row) {
		char started[32] = "-";
		json_t *dur = json_object_get(row, "duration_ms");
		const char *from = json_string_value(json_object_get(row, "from_version"));
		const char *reason = json_string_value(json_object_get(row, "reason"));
		state_format_time(json_integer_value(json_object_get(row, "started_at")), started, sizeof(started));
		printf("%-5lld %-12s %-10s %-10s %-12s %8.1fs  %-20s %s\n",
		       (long long)json_integer_value(json_object_get(row, "id")),
		       json_string_value(json_object_get(row, "service")), from ? from : "-",
		       json_string_value(json_object_get(row, "to_version")),
		       json_string_value(json_object_get(row, "state")),
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
	printf("%-24s %-20s %-14s %-20s %-12s %s\n", "AT", "WHO", "ACTION", "TARGET", "RESULT", "DETAIL");
	json_array_foreach(rows, i, row) {
		char at[32];
		const char *target = json_string_value(json_object_get(row, "target"));
		const char *detail = json_string_value(json_object_get(row, "detail"));
		state_format_time(json_integer_value(json_object_get(row, "at")), at, sizeof(at));
		printf("%-24s %-20s %-14s %-20s %-12s %s\n", at, json_string_value(json_object_get(row, "actor")),
		       json_string_value(json_object_get(row, "action")), target ? target : "-",
		       json_string_value(json_object_get(row, "result")), detail ? detail : "");
	}
}

/* `cutover history` and `cutover audit`: the same options, one query. */
static int run(int argc, char **argv, bool audit)
{
	static const struct option opts[] = {
		{ "state-dir", required_argument, NULL, 'd' }, { "limit", required_argument, NULL, 'n' },
		{ "events", no_argument, NULL, 'e' },         { "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },           { 0 },
	};
	const char *verb = audit ? "audit" : "history";
	const char *dir = NULL, *service = NULL;
	struct state *st = NULL;
	char err[1024];
	json_t *rows = NULL;
	bool json = false, events = false;
	long limit = audit ? 50 : 20;
	int c, rc;

	while ((c = getopt_long(argc, argv, audit ? "d:n:jh" : "d:n:ejh", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			dir = optarg;
			break;
		case 'n':
			limit = strtol(optarg, NULL, 10);
			if (limit <= 0) {
				fprintf(stderr, "cutover %s: --limit: expected a positive number, got '%s'\n", verb,
					optarg);
				return EXIT_USAGE;
			}
			break;
		case 'e':
			if (audit)
				return EXIT_USAGE;
			events = true;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			if (audit)
				printf("usage: cutover audit [SERVICE] [--limit N] [--state-dir DIR] [--json]\n"
				       "Who did what and when, with the result, newest first: deploys, rollbacks\n"
				       "(by hand or automatic), refusals, releases added and pruned.\n"
				       "State dir: --state-dir, $CUTOVER_STATE_DIR, /var/lib/cutover.\n");
			else
				printf("usage: cutover history [SERVICE] [--limit N] [--events] [--state-dir DIR] [--json]\n"
				       "Deployments, newest first, with their result, duration and reason; --events adds\n"
				       "every phase transition.  State dir: --state-dir, $CUTOVER_STATE_DIR,\n"
				       "/var/lib/cutover.\n");
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	if (argc - optind > 1) {
		fprintf(stderr, "usage: cutover %s [SERVICE] (see --help)\n", verb);
		return EXIT_USAGE;
	}
	if (optind < argc)
		service = argv[optind];
	if (!dir || !*dir)
		dir = getenv("CUTOVER_STATE_DIR");
	if (!dir || !*dir)
		dir = "/var/lib/cutover";
	rc = state_open(dir, &st, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "cutover: %s\n", err);
		return EXIT_FAILED;
	}
	rc = audit ? state_audit_list(st, service, (size_t)limit, &rows)
		   : state_history(st, service, (size_t)limit, &rows);
	state_close(st);
	if (rc < 0) {
		fprintf(stderr, "cutover: cannot read the %s in %s\n", audit ? "audit log" : "history", dir);
		return EXIT_FAILED;
	}
	if (json) {
		char *text = json_dumps(rows, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (text)
			puts(text);
		free(text);
	} else if (audit) {
		print_audit(rows);
	} else {
		print_history(rows, events);
	}
	json_decref(rows);
	return EXIT_OK;
}

int cli_history(int argc, char **argv)
{
	return run(argc, argv, false);
}

int cli_audit(int argc, char **argv)
{
	return run(argc, argv, true);
}

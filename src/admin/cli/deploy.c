/* deploy.c - `cutover deploy SERVICE VERSION` and `cutover rollback SERVICE`.
 *
 * Both ask the daemon to start the operation, then follow it: every phase is
 * printed as it happens, with the time since the start (plain lines; the
 * same on a terminal or in a log).  --json prints the final deployment
 * object instead.  Exit status: 0 done, 1 failed or rolled back, 2 usage,
 * 3 daemon unreachable.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "admin/cli/cli.h"
#include "admin/client.h"

static void print_events(json_t *dep, size_t *shown)
{
	json_t *events = json_object_get(dep, "events"), *e;
	size_t i;

	json_array_foreach(events, i, e) {
		const char *detail = json_string_value(json_object_get(e, "detail"));
		if (i < *shown)
			continue;
		if (detail && *detail)
			printf("  %7.2fs  %-16s %s\n", (double)json_integer_value(json_object_get(e, "elapsed_ms")) / 1000.0,
			       json_string_value(json_object_get(e, "phase")), detail);
		else
			printf("  %7.2fs  %s\n", (double)json_integer_value(json_object_get(e, "elapsed_ms")) / 1000.0,
			       json_string_value(json_object_get(e, "phase")));
		fflush(stdout);
	}
	*shown = json_array_size(events);
}

static int follow(const char *sock, const char *verb, const char *body, bool json, int timeout_s, bool rollback)
{
	char err[512], path[64], *answer = NULL;
	json_error_t jerr;
	json_t *dep;
	size_t shown = 0;
	int status, rc;
	time_t deadline = time(NULL) + timeout_s;
	int64_t id;

	rc = admin_client_call(sock, "POST", verb, body, &status, &answer, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "cutover: %s\n", err);
		return EXIT_UNREACHABLE;
	}
	dep = json_loads(answer, 0, &jerr);
	if (status != 202 || !dep) {
		json_t *e = dep ? json_object_get(dep, "error") : NULL;
		fprintf(stderr, "cutover: %s\n", e ? json_string_value(e) : answer);
		json_decref(dep);
		free(answer);
		return status == 400 ? EXIT_USAGE : EXIT_FAILED;
	}
	free(answer);
	id = json_integer_value(json_object_get(dep, "id"));
	if (!json)
		printf("deployment %lld: %s %s\n", (long long)id, json_string_value(json_object_get(dep, "service")),
		       json_string_value(json_object_get(dep, "version")));
	snprintf(path, sizeof(path), "/v1/deployments/%lld", (long long)id);
	for (;;) {
		if (!json)
			print_events(dep, &shown);
		if (json_is_true(json_object_get(dep, "finished")))
			break;
		if (time(NULL) > deadline) {
			fprintf(stderr, "cutover: still %s after %d s; follow it with `cutover status`\n",
				json_string_value(json_object_get(dep, "phase")), timeout_s);
			json_decref(dep);
			return EXIT_FAILED;
		}
		usleep(100 * 1000);
		json_decref(dep);
		rc = admin_client_call(sock, "GET", path, NULL, &status, &answer, err, sizeof(err));
		if (rc < 0) {
			fprintf(stderr, "cutover: %s\n", err);
			return EXIT_UNREACHABLE;
		}
		dep = json_loads(answer, 0, &jerr);
		free(answer);
		if (status != 200 || !dep) {
			fprintf(stderr, "cutover: lost track of deployment %lld\n", (long long)id);
			json_decref(dep);
			return EXIT_FAILED;
		}
	}
	/* a deploy succeeds when done; a rollback when it rolled back (or, the
	 * previous version no longer warm, when its redeploy is done) */
	{
		const char *phase = json_string_value(json_object_get(dep, "phase"));
		rc = !strcmp(phase, "done") || (rollback && !strcmp(phase, "rolled-back")) ? EXIT_OK : EXIT_FAILED;
	}
	if (json) {
		char *text = json_dumps(dep, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (text)
			puts(text);
		free(text);
	} else {
		const char *reason = json_string_value(json_object_get(dep, "reason"));
		printf("%s%s%s\n", json_string_value(json_object_get(dep, "phase")), reason ? ": " : "",
		       reason ? reason : "");
	}
	json_decref(dep);
	return rc;
}

static int run(int argc, char **argv, bool rollback)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' }, { "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },         { "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },         { 0 },
	};
	const char *socket_opt = NULL, *config_opt = NULL;
	char err[512], *sock, *body = NULL;
	bool json = false;
	int c, timeout_s = 600, rc;
	json_t *req;

	while ((c = getopt_long(argc, argv, "s:c:jt:h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			socket_opt = optarg;
			break;
		case 'c':
			config_opt = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 't':
			timeout_s = atoi(optarg);
			break;
		case 'h':
			printf(rollback ? "usage: cutover rollback SERVICE [--socket PATH | --config FILE] [--json]\n"
					  "Back to the previous version: instant while it is still warm.\n"
					: "usage: cutover deploy SERVICE VERSION [--socket PATH | --config FILE] [--json]\n"
					  "Blue-green: start VERSION beside the running one, health-check it, switch\n"
					  "all new requests atomically, watch it, roll back by itself if it misbehaves.\n");
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	if (argc - optind != (rollback ? 1 : 2)) {
		fprintf(stderr, rollback ? "usage: cutover rollback SERVICE (see --help)\n"
					 : "usage: cutover deploy SERVICE VERSION (see --help)\n");
		return EXIT_USAGE;
	}
	sock = admin_client_socket_path(socket_opt, config_opt, err, sizeof(err));
	if (!sock) {
		fprintf(stderr, "cutover: %s\n", err);
		return EXIT_USAGE;
	}
	req = rollback ? json_pack("{s:s}", "service", argv[optind])
		       : json_pack("{s:s, s:s}", "service", argv[optind], "version", argv[optind + 1]);
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (!body) {
		free(sock);
		return EXIT_FAILED;
	}
	rc = follow(sock, rollback ? "/v1/rollback" : "/v1/deploy", body, json, timeout_s, rollback);
	free(body);
	free(sock);
	return rc;
}

int cli_deploy(int argc, char **argv)
{
	return run(argc, argv, false);
}

int cli_rollback(int argc, char **argv)
{
	return run(argc, argv, true);
}

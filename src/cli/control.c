/* control.c - `cutover pause|resume|promote|abort SERVICE`: a person's
 * hand on the deploy in flight of SERVICE (POST /v1/services/NAME/VERB).
 * Each prints the deployment's last event, which says what happened; the
 * daemon audits it with the caller's user. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"

struct control_verb {
	const char *verb; /* also the last part of the API's path */
};

static const struct control_verb verbs[] = { { "pause" }, { "resume" }, { "promote" }, { "abort" } };

static int run(int argc, char **argv, const struct control_verb *v)
{
	struct cli c = {
		.verb = v->verb,
		.flags = CLI_CONFIG | CLI_SOCKET,
		.synopsis = "SERVICE",
		.min_args = 1,
		.max_args = 1,
	};
	char *sock = NULL, path[160], line[600];
	json_t *answer = NULL, *events;
	int rc = cli_parse(&c, argc, argv);

	if (rc >= 0)
		return rc;
	rc = cli_socket_path(&c, &sock);
	if (rc)
		return rc;
	if (strchr(c.args[0], '/') || strlen(c.args[0]) > 100) {
		rc = cli_fail(&c, EXIT_USAGE, NULL, "not a service name: %s", c.args[0]);
		goto out;
	}
	snprintf(path, sizeof(path), "/v1/services/%s/%s", c.args[0], v->verb);
	rc = cli_post_accepted(&c, sock, path, "{}", &answer);
	if (rc)
		goto out;
	if (c.json) {
		cli_print_json(json_incref(answer));
	} else {
		/* the event of this act (later ones may follow it: the next step) */
		static const char *const said[] = { "paused", "resumed", "promoted", NULL };
		json_t *e = NULL;
		size_t n;
		events = json_object_get(answer, "events");
		n = json_array_size(events);
		for (size_t i = n; i > 0 && !e && v != &verbs[3]; i--) {
			const char *phase = json_string_value(json_object_get(json_array_get(events, i - 1), "phase"));
			if (phase && !strcmp(phase, said[v - verbs]))
				e = json_array_get(events, i - 1);
		}
		cli_event_line(e ? e : json_array_get(events, n - 1), line, sizeof(line));
		printf("deployment %lld of %s to %s:\n%s\n", (long long)json_integer_value(json_object_get(answer, "id")),
		       c.args[0], json_string_value(json_object_get(answer, "version")), line);
	}
	rc = EXIT_OK;
out:
	json_decref(answer);
	free(sock);
	return rc;
}

int cli_pause(int argc, char **argv)
{
	return run(argc, argv, &verbs[0]);
}

int cli_resume(int argc, char **argv)
{
	return run(argc, argv, &verbs[1]);
}

int cli_promote(int argc, char **argv)
{
	/* `promote SERVICE --from A --to B`: the same artifact from one
	 * environment to the next (promote.c), told apart by its options */
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strncmp(argv[i], "--from", 6) || !strncmp(argv[i], "--to", 4) || !strncmp(argv[i], "--proof", 7))
			return cli_promote_env(argc, argv);
	return run(argc, argv, &verbs[2]);
}

int cli_abort(int argc, char **argv)
{
	return run(argc, argv, &verbs[3]);
}

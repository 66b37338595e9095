/* approve.c - `cutover approve DEPLOYMENT` and `cutover reject DEPLOYMENT`:
 * a person's decision on a deploy or a promotion that awaits approval
 * (approval: in the environment's configuration), through the admin socket
 * (POST /v1/deployments/ID/approve|reject).  The daemon takes the person
 * from the socket's peer credentials, checks approval.distinct, and audits
 * the decision.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"

static int reject_option(struct cli *c, int opt, const char *arg)
{
	if (opt != 'r')
		return EXIT_USAGE;
	*(const char **)c->data = arg;
	return -1;
}

static int run(int argc, char **argv, bool approve)
{
	static const struct option opts[] = {
		{ "reason", required_argument, NULL, 'r' },
		{ 0 },
	};
	const char *reason = NULL;
	struct cli c = {
		.verb = approve ? "approve" : "reject",
		.flags = CLI_CONFIG | CLI_SOCKET,
		.synopsis = "DEPLOYMENT",
		.min_args = 1,
		.max_args = 1,
		.options = approve ? NULL : opts,
		.option = approve ? NULL : reject_option,
		.data = &reason,
	};
	char *sock = NULL, *end, path[96], *body = NULL;
	json_t *answer = NULL, *events, *req;
	long long id;
	int rc = cli_parse(&c, argc, argv);

	if (rc >= 0)
		return rc;
	id = strtoll(c.args[0], &end, 10);
	if (*end || id <= 0)
		return cli_fail(&c, EXIT_USAGE, NULL, "not a deployment id: '%s' (cutover status and history show them)",
				c.args[0]);
	rc = cli_socket_path(&c, &sock);
	if (rc)
		return rc;
	req = reason ? json_pack("{s:s}", "reason", reason) : json_object();
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	snprintf(path, sizeof(path), "/v1/deployments/%lld/%s", id, approve ? "approve" : "reject");
	rc = body ? cli_post_accepted(&c, sock, path, body, &answer) : cli_fail(&c, EXIT_FAILED, NULL, "out of memory");
	if (rc)
		goto out;
	if (c.json) {
		cli_print_json(json_incref(answer));
	} else {
		const char *phase = json_string_value(json_object_get(answer, "phase"));
		const char *reason_given = json_string_value(json_object_get(answer, "reason"));
		const char *detail = NULL;
		events = json_object_get(answer, "events");
		for (size_t i = json_array_size(events); i > 0 && !detail; i--) {
			json_t *e = json_array_get(events, i - 1);
			if (approve && !strcmp(json_string_value(json_object_get(e, "phase")), "approved"))
				detail = json_string_value(json_object_get(e, "detail"));
		}
		printf("deployment %lld of %s to %s: %s\n", id, json_string_value(json_object_get(answer, "service")),
		       json_string_value(json_object_get(answer, "version")),
		       approve ? (detail ? detail : phase) : (reason_given ? reason_given : phase));
		if (approve)
			printf("  it starts now: follow it with `cutover status`, or `cutover history`\n");
	}
	rc = EXIT_OK;
out:
	free(body);
	json_decref(answer);
	free(sock);
	return rc;
}

int cli_approve(int argc, char **argv)
{
	return run(argc, argv, true);
}

int cli_reject(int argc, char **argv)
{
	return run(argc, argv, false);
}

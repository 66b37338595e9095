/* upgrade.c - `cutover upgrade [--binary PATH]`: replace the running
 * daemon with a new binary without refusing a connection.  The daemon does
 * the work (src/daemon/upgrade.c); this asks for it and follows it until
 * the new daemon is ready or the old one says why not. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "admin/client.h"
#include "base/util.h"
#include "cli/cli.h"

struct upgrade_opts {
	const char *binary;
	uint64_t timeout_ms;
};

static int upgrade_option(struct cli *c, int opt, const char *arg)
{
	struct upgrade_opts *o = c->data;

	if (opt == 'b') {
		o->binary = arg;
		return -1;
	}
	if (opt == 't') {
		if (parse_duration_ms(arg, &o->timeout_ms) < 0 || !o->timeout_ms)
			return cli_fail(c, EXIT_USAGE, NULL,
					"--timeout: expected a duration such as 90s or 5m (a bare number is seconds), "
					"more than 0, got '%s'", arg);
		return -1;
	}
	return EXIT_USAGE;
}

/* GET /v1/upgrade until it is over: 0 done (the new daemon's pid in
 * *new_pid), 1 failed (its reason in why), -1 still running at the limit. */
static int follow(const char *sock, long long old_pid, uint64_t limit_ms, long long *new_pid, char *why,
		  size_t whylen)
{
	uint64_t end = time_now_ms() + limit_ms;
	char err[256], *body = NULL;
	int status;

	while (time_now_ms() < end) {
		json_t *j = NULL;
		const char *state;
		if (admin_client_call(sock, "GET", "/v1/upgrade", NULL, &status, &body, err, sizeof(err)) == 0)
			j = json_loads(body, 0, NULL);
		free(body);
		body = NULL;
		state = json_string_value(json_object_get(j, "state"));
		if (j && json_integer_value(json_object_get(j, "upgraded_from_pid")) == old_pid) {
			/* the new daemon answered */
			*new_pid = json_integer_value(json_object_get(j, "pid"));
			json_decref(j);
			return 0;
		}
		if (state && !strcmp(state, "done")) {
			*new_pid = json_integer_value(json_object_get(j, "new_pid"));
			json_decref(j);
			return 0;
		}
		if (state && !strcmp(state, "failed")) {
			snprintf(why, whylen, "%s", json_string_value(json_object_get(j, "error")));
			json_decref(j);
			return 1;
		}
		json_decref(j);
		nanosleep(&(struct timespec){ 0, 50 * 1000 * 1000 }, NULL);
	}
	return -1;
}

int cli_upgrade(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "binary", required_argument, NULL, 'b' },
		{ "timeout", required_argument, NULL, 't' },
		{ 0 },
	};
	struct upgrade_opts o = { .timeout_ms = 120 * 1000 };
	struct cli c = {
		.verb = "upgrade",
		.flags = CLI_CONFIG | CLI_SOCKET,
		.options = opts,
		.shortopts = "b:t:",
		.option = upgrade_option,
		.data = &o,
	};
	char *path = NULL, *req = NULL, abs[PATH_MAX], why[512] = "";
	json_t *answer = NULL;
	long long old_pid, new_pid = 0;
	int rc;

	rc = cli_parse(&c, argc, argv);
	if (rc >= 0)
		return rc;
	if (o.binary && !realpath(o.binary, abs))
		return cli_fail(&c, EXIT_USAGE, NULL, "--binary %s: %s", o.binary, strerror(errno));
	rc = cli_socket_path(&c, &path);
	if (rc)
		return rc;
	if (o.binary) {
		json_t *j = json_pack("{ss}", "binary", abs);
		req = json_dumps(j, JSON_COMPACT);
		json_decref(j);
	} else {
		req = strdup("{}");
	}
	rc = cli_post_accepted(&c, path, "/v1/upgrade", req, &answer);
	if (rc)
		goto out;
	old_pid = json_integer_value(json_object_get(answer, "pid"));
	if (!c.json)
		printf("upgrading: daemon pid %lld started %s (pid %lld)\n", old_pid,
		       json_string_value(json_object_get(answer, "binary")),
		       (long long)json_integer_value(json_object_get(answer, "new_pid")));
	switch (follow(path, old_pid, o.timeout_ms, &new_pid, why, sizeof(why))) {
	case 0:
		if (c.json)
			cli_print_json(json_pack("{sb sI sI}", "ok", 1, "old_pid", (json_int_t)old_pid, "new_pid",
						 (json_int_t)new_pid));
		else
			printf("upgraded: pid %lld serves on the same sockets; pid %lld drains and exits\n", new_pid,
			       old_pid);
		rc = EXIT_OK;
		break;
	case 1:
		rc = cli_fail(&c, EXIT_FAILED, json_pack("{sI}", "old_pid", (json_int_t)old_pid),
			      "upgrade failed: %s; pid %lld keeps serving", why, old_pid);
		break;
	default:
		rc = cli_fail(&c, EXIT_FAILED, NULL, "the upgrade has not ended after --timeout; see GET /v1/upgrade");
	}
out:
	json_decref(answer);
	free(req);
	free(path);
	return rc;
}

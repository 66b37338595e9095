/* release-run.c - `cutover release plan|run|abort|approve|reject`:
 * multi-service releases from the command line
 * (docs/internals/releases.md).
 *
 * `plan FILE` reads the release file, the configuration (with --env, its
 * overlay) and the release store, checks everything and prints the groups
 * (--json: the plan, --dot: the graph); nothing changes and no daemon is
 * needed.  `run FILE` makes the same plan, sends it to the daemon
 * (POST /v1/releases), which runs it, and follows it: each step of the
 * timeline as it happens, then the outcome.  `abort ID` rolls back a
 * running release; `approve ID` / `reject ID` decide on one that awaits
 * approval.
 *
 * Exit codes: 0 the plan is valid / the release succeeded; 1 it failed or
 * was rolled back (or the daemon refused); 2 usage or an invalid release
 * (every problem printed); 3 the daemon is unreachable; 4 the release
 * awaits approval (run without --wait).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "cli/cli.h"
#include "config/config.h"
#include "config/config-t.h"
#include "release/release.h"
#include "state/state.h"

struct run_options {
	bool dot;                     /* plan --dot */
	bool detach;                  /* run --detach: do not follow */
	bool wait;                    /* run --wait: follow through an approval */
	const char *reason;           /* reject --reason, abort --reason */
};

static int run_option(struct cli *c, int opt, const char *arg)
{
	struct run_options *o = c->data;

	switch (opt) {
	case 'D':
		o->dot = true;
		return -1;
	case 'x':
		o->detach = true;
		return -1;
	case 'w':
		o->wait = true;
		return -1;
	case 'r':
		o->reason = arg;
		return -1;
	}
	return EXIT_USAGE;
}

/* ---- the plan ------------------------------------------------------------------ */

static int lookup_digest(void *data, const char *service, const char *version, char digest[65])
{
	struct state_release rel = { 0 };
	int r = state_release_get(data, service, version, &rel);

	if (r < 0)
		return r;
	snprintf(digest, 65, "%s", rel.digest);
	state_release_clear(&rel);
	return 0;
}

static int lookup_live(void *data, const char *service, char version[64])
{
	struct state_routing rt = { 0 };
	int r = state_routing_get(data, service, &rt);

	if (r < 0)
		return r;
	r = strlen(rt.version) < 64 && rt.version[0] ? 0 : -ENOENT;
	if (r == 0)
		memcpy(version, rt.version, strlen(rt.version) + 1);
	state_routing_clear(&rt);
	return r;
}

/* Read FILE and plan it against the configuration and the state.  Returns
 * 0 with *ret, or an exit code after cli_fail(). */
static int make_plan(struct cli *c, const char *file, struct config **ret_cfg, struct release_plan **ret)
{
	struct release_file *f = NULL;
	struct config *cfg = NULL;
	struct state *st = NULL;
	const char *cfg_path = cli_config_path(c);
	struct release_lookup lk = { .digest = lookup_digest, .live = lookup_live };
	char err[8192];
	int rc;

	if (!cfg_path)
		return cli_fail(c, EXIT_USAGE, NULL, "no configuration: give --config FILE (or run where cutover.yml is)");
	rc = cli_load_config(c, cfg_path, &cfg);
	if (rc)
		return rc;
	if (release_file_load(file, &f, err, sizeof(err)) < 0) {
		config_free(cfg);
		return cli_fail(c, EXIT_USAGE, NULL, "%s", err);
	}
	if (state_open_existing(cfg->state_dir, &st, err, sizeof(err)) < 0) {
		release_file_free(f);
		config_free(cfg);
		return cli_fail(c, EXIT_FAILED, NULL, "%s", err);
	}
	lk.data = st;
	rc = release_plan_make(f, cfg, &lk, ret, err, sizeof(err));
	state_close(st);
	if (rc < 0) {
		config_free(cfg);
		return cli_fail(c, rc == -EINVAL ? EXIT_USAGE : EXIT_FAILED, NULL, "the release is refused, nothing "
				"changed:\n%s", err);
	}
	*ret_cfg = cfg;
	return 0;
}

static int plan_run(struct cli *c, struct run_options *o)
{
	struct release_plan *plan = NULL;
	struct config *cfg = NULL;
	char *text;
	int rc = make_plan(c, c->args[0], &cfg, &plan);

	if (rc)
		return rc;
	if (c->json)
		cli_print_json(release_plan_json(plan));
	else {
		text = o->dot ? release_plan_dot(plan) : release_plan_text(plan);
		if (text)
			fputs(text, stdout);
		free(text);
	}
	release_plan_free(plan);
	config_free(cfg);
	return EXIT_OK;
}

/* ---- running and following ------------------------------------------------------------ */

static bool terminal(const char *state)
{
	int s = state_release_run_state_parse(state);

	return s >= 0 && state_release_run_state_terminal(s);
}

/* GET /v1/releases/ID: the daemon's live copy of the report. */
static int get_release(struct cli *c, const char *sock, long long id, json_t **ret)
{
	char path[64], *body = NULL;
	int status = 0, rc;

	snprintf(path, sizeof(path), "/v1/releases/%lld", id);
	rc = cli_call(c, sock, "GET", path, NULL, &status, &body);
	if (rc)
		return rc;
	*ret = status == 200 ? json_loads(body, 0, NULL) : NULL;
	free(body);
	if (*ret)
		return 0;
	if (status == 404) {
		/* finished: the daemon keeps only active runs, the state all */
		struct state *st = NULL;

		rc = cli_open_state(c, true, &st, NULL);
		if (rc)
			return rc;
		rc = state_release_run_get(st, id, ret);
		state_close(st);
		if (rc == 0)
			return 0;
	}
	return cli_fail(c, EXIT_FAILED, NULL, "no release %lld (HTTP %d)", id, status);
}

static void print_time(int64_t at_ms)
{
	time_t t = (time_t)(at_ms / 1000);
	struct tm tm;
	char buf[16];

	localtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%H:%M:%S", &tm);
	printf("%s  ", buf);
}

/* Print the timeline entries after the first *shown ones. */
static void print_timeline(const json_t *report, size_t *shown)
{
	const json_t *timeline = json_object_get(report, "timeline");

	for (; *shown < json_array_size(timeline); (*shown)++) {
		const json_t *e = json_array_get(timeline, *shown);

		print_time(json_integer_value(json_object_get(e, "at")));
		printf("%s\n", json_string_value(json_object_get(e, "text")));
	}
	fflush(stdout);
}

/* Follow release ID until it ends (or awaits approval, unless wait).
 * Returns EXIT_OK when it ended as wanted: succeeded or degraded, or for
 * an abort rolled back. */
static int follow(struct cli *c, const char *sock, long long id, bool wait, bool abort)
{
	json_t *run = NULL, *report;
	size_t shown = 0;
	const char *state = "";
	int rc;

	for (;;) {
		json_decref(run);
		rc = get_release(c, sock, id, &run);
		if (rc)
			return rc;
		report = json_object_get(run, "report");
		state = json_string_value(json_object_get(run, "state"));
		if (!state)
			state = "";
		if (!c->json)
			print_timeline(report, &shown);
		if (terminal(state) || (!wait && !strcmp(state, "awaiting-approval")))
			break;
		poll(NULL, 0, 250);
	}
	if (c->json)
		cli_print_json(json_incref(run));
	else if (!strcmp(state, "awaiting-approval"))
		printf("release %lld awaits approval: cutover release approve %lld%s%s\n", id, id, c->env ? " --env " : "",
		       c->env ? c->env : "");
	else
		printf("release %lld %s%s%s\n", id, state, json_string_value(json_object_get(report, "reason")) ? ": " : "",
		       json_string_value(json_object_get(report, "reason")) ? json_string_value(json_object_get(report,
													 "reason"))
										 : "");
	rc = abort ? (!strcmp(state, "rolled-back") ? EXIT_OK : EXIT_FAILED)
	     : !strcmp(state, "succeeded") || !strcmp(state, "degraded") ? EXIT_OK
	     : !strcmp(state, "awaiting-approval")			  ? EXIT_AWAITING
									  : EXIT_FAILED;
	json_decref(run);
	return rc;
}

static int release_start(struct cli *c, struct run_options *o)
{
	struct release_plan *plan = NULL;
	struct config *cfg = NULL;
	char *sock = NULL, *body = NULL, *answer_text = NULL;
	json_t *req, *answer = NULL;
	int status = 0, rc;
	long long id;

	rc = make_plan(c, c->args[0], &cfg, &plan);
	if (rc)
		return rc;
	req = json_pack("{so}", "plan", release_plan_json(plan));
	if (req && c->env)
		json_object_set_new(req, "env", json_string(c->env));
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	release_plan_free(plan);
	config_free(cfg);
	if (!body)
		return cli_fail(c, EXIT_FAILED, NULL, "out of memory");
	rc = cli_socket_path(c, &sock);
	if (!rc)
		rc = cli_call(c, sock, "POST", "/v1/releases", body, &status, &answer_text);
	free(body);
	if (rc)
		goto out;
	answer = json_loads(answer_text, 0, NULL);
	if (status != 201 && status != 202) {
		rc = cli_fail(c, EXIT_FAILED, NULL, "%s",
			      answer && json_string_value(json_object_get(answer, "error"))
				      ? json_string_value(json_object_get(answer, "error"))
				      : "the daemon refused the release");
		goto out;
	}
	id = json_integer_value(json_object_get(answer, "id"));
	if (!c->json)
		printf("release %lld (%s) started\n", id, json_string_value(json_object_get(answer, "name")));
	if (o->detach) {
		if (c->json)
			cli_print_json(json_incref(answer));
		rc = EXIT_OK;
		goto out;
	}
	rc = follow(c, sock, id, o->wait, false);
out:
	json_decref(answer);
	free(answer_text);
	free(sock);
	return rc;
}

/* abort / approve / reject: POST /v1/releases/ID/ACTION. */
static int release_decide(struct cli *c, struct run_options *o, const char *action)
{
	char *sock = NULL, *end, path[96], *answer_text = NULL, *body = NULL;
	json_t *answer = NULL, *req;
	long long id = strtoll(c->args[0], &end, 10);
	int status = 0, rc;

	if (*end || id <= 0)
		return cli_fail(c, EXIT_USAGE, NULL, "not a release id: '%s' (cutover release list shows them)",
				c->args[0]);
	req = o->reason ? json_pack("{ss}", "reason", o->reason) : json_object();
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	snprintf(path, sizeof(path), "/v1/releases/%lld/%s", id, action);
	rc = cli_socket_path(c, &sock);
	if (!rc)
		rc = cli_call(c, sock, "POST", path, body ? body : "{}", &status, &answer_text);
	free(body);
	if (rc)
		goto out;
	answer = json_loads(answer_text, 0, NULL);
	if (status != 200 && status != 202) {
		rc = cli_fail(c, EXIT_FAILED, NULL, "%s",
			      answer && json_string_value(json_object_get(answer, "error"))
				      ? json_string_value(json_object_get(answer, "error"))
				      : "refused");
		goto out;
	}
	if (strcmp(action, "reject") && !c->json) {
		printf("release %lld: %s\n", id, !strcmp(action, "abort") ? "rolling back" : "approved, starting");
		rc = follow(c, sock, id, true, !strcmp(action, "abort"));
		goto out;
	}
	if (c->json)
		cli_print_json(json_incref(answer));
	else
		printf("release %lld rejected\n", id);
	rc = EXIT_OK;
out:
	json_decref(answer);
	free(answer_text);
	free(sock);
	return rc;
}

/* ---- the verb --------------------------------------------------------------------------- */

bool cli_release_is_orchestration(const char *action)
{
	return !strcmp(action, "plan") || !strcmp(action, "run") || !strcmp(action, "abort") ||
	       !strcmp(action, "approve") || !strcmp(action, "reject");
}

int cli_release_orchestrate(int argc, char **argv, const char *action)
{
	static const struct option opts[] = {
		{ "dot", no_argument, NULL, 'D' },
		{ "detach", no_argument, NULL, 'x' },
		{ "wait", no_argument, NULL, 'w' },
		{ "reason", required_argument, NULL, 'r' },
		{ 0 },
	};
	struct run_options o = { 0 };
	char verb[32];
	struct cli c = {
		.verb = verb,
		.flags = CLI_CONFIG | CLI_SOCKET | CLI_STATE_DIR,
		.synopsis = !strcmp(action, "plan") || !strcmp(action, "run") ? "FILE" : "ID",
		.min_args = 2,
		.max_args = 2,
		.options = opts,
		.option = run_option,
		.data = &o,
	};
	int rc;

	snprintf(verb, sizeof(verb), "release %s", action);
	rc = cli_parse(&c, argc, argv);
	if (rc >= 0)
		return rc;
	c.args++;        /* the action */
	c.nargs--;
	if (o.dot && strcmp(action, "plan"))
		return cli_fail(&c, EXIT_USAGE, NULL, "--dot: only for `cutover release plan`");
	if ((o.detach || o.wait) && strcmp(action, "run"))
		return cli_fail(&c, EXIT_USAGE, NULL, "--detach and --wait: only for `cutover release run`");
	if (!strcmp(action, "plan"))
		return plan_run(&c, &o);
	if (!strcmp(action, "run"))
		return release_start(&c, &o);
	return release_decide(&c, &o, action);
}

/* deploy.c - `cutover deploy SERVICE VERSION`, `cutover rollback SERVICE` and
 * `cutover restart SERVICE`, and following a deployment (cli_follow_deploy),
 * which `cutover promote --from --to` shares.
 *
 * Both ask the daemon to start the operation, then follow it: every phase is
 * printed as it happens, with the time since the start.  Piped, these are
 * plain lines (scripts and tests parse them).  On a terminal the phase in
 * progress is also shown as a live line with the time running, rewritten in
 * place every 100 ms and replaced by the phase's plain line once the next
 * phase begins; the result line is green on success, red otherwise (unless
 * NO_COLOR is set).  --json prints the final deployment object instead, with
 * "ok" and "exit_code" (and "error" when it failed).  Exit status: 0 done,
 * 1 failed or rolled back, 2 usage (also: unknown service or invalid
 * version), 3 daemon unreachable, 4 awaiting approval (approval: required;
 * --wait follows it until a person decides).
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include "admin/client.h"
#include "base/util.h"
#include "cli/cli.h"

#define POLL_MS 100              /* without an event stream: how often to ask; on a terminal: the live line's tick */

/* One deploy or rollback being followed. */
struct follow {
	const struct cli *c;
	bool rollback;
	uint64_t timeout_ms;          /* --timeout */
	const char *timeout_text;     /* as given, for messages */
	bool wait;                    /* --wait: through an approval */
	bool tty;                     /* stdout is a terminal: live line */
	bool color;                   /* ... and NO_COLOR is not set */
	bool live;                    /* a live line is on screen, to be overwritten */
	size_t shown;                 /* events printed as plain lines */
	uint64_t t0;                  /* time_now_ms() when the daemon accepted */
};

/* One event of SERVICE's deployment. */
static void print_event(json_t *e, const char *service)
{
	const char *phase = json_string_value(json_object_get(e, "phase"));
	char line[1024];

	cli_event_line(e, line, sizeof(line));
	printf("  %s\n", line);
	if (phase && !strcmp(phase, "paused")) /* it waits for a person: say what they can do */
		printf("  %9s  %-16s cutover resume %s goes on (promote skips the remaining steps, abort goes back)\n",
		       "", "", service ? service : "SERVICE");
}

/* Erase the live line, if one is on screen. */
static void clear_live(struct follow *f)
{
	if (f->live)
		fputs("\r\033[K", stdout);
	f->live = false;
}

/* The phase in progress, with the time since the start, in place of the
 * previous live line; cut to the terminal's width so that \r can rewrite it. */
static void print_live(struct follow *f, json_t *e)
{
	const char *detail = json_string_value(json_object_get(e, "detail"));
	struct winsize ws = { 0 };
	char line[512];
	int width = ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col ? ws.ws_col : 80;

	snprintf(line, sizeof(line), "  %7.2fs  %-16s %s%s...", (double)(time_now_ms() - f->t0) / 1000.0,
		 json_string_value(json_object_get(e, "phase")), detail ? detail : "", detail && *detail ? " " : "");
	if (width > 8 && (size_t)width - 1 < strlen(line))
		memcpy(line + width - 4, "...", 4); /* one column spare: no wrap at the margin */
	clear_live(f);
	fputs(line, stdout);
	f->live = true;
}

/* Print the events not printed yet: all of them when piped or finished; on
 * a terminal the last one of an unfinished deployment is the live line. */
static void print_progress(struct follow *f, json_t *dep)
{
	json_t *events = json_object_get(dep, "events");
	bool finished = json_is_true(json_object_get(dep, "finished"));
	size_t n = json_array_size(events), upto = f->tty && !finished && n ? n - 1 : n;

	for (; f->shown < upto; f->shown++) {
		clear_live(f);
		print_event(json_array_get(events, f->shown), json_string_value(json_object_get(dep, "service")));
	}
	if (f->tty && !finished && n)
		print_live(f, json_array_get(events, n - 1));
	fflush(stdout);
}

/* The deployment's outcome: done (a deploy, or a rollback deployment,
 * warm or started again); a rollback also succeeds when what it followed is
 * the deploy being watched, which it rolled back (rolled-back). */
static int outcome(const struct follow *f, json_t *dep)
{
	const char *phase = json_string_value(json_object_get(dep, "phase"));

	return !strcmp(phase, "done") || (f->rollback && !strcmp(phase, "rolled-back")) ? EXIT_OK : EXIT_FAILED;
}

static void print_result(const struct follow *f, json_t *dep, int rc)
{
	const char *phase = json_string_value(json_object_get(dep, "phase"));
	const char *reason = json_string_value(json_object_get(dep, "reason"));

	if (f->c->json) {
		json_object_set_new(dep, "ok", json_boolean(rc == EXIT_OK));
		json_object_set_new(dep, "exit_code", json_integer(rc));
		if (rc != EXIT_OK)
			json_object_set_new(dep, "error", json_string(reason ? reason : phase));
		cli_print_json(json_incref(dep));
		return;
	}
	printf("%s%s%s%s%s\n", f->color ? (rc == EXIT_OK ? "\033[32m" : "\033[31m") : "", phase, reason ? ": " : "",
	       reason ? reason : "", f->color ? "\033[0m" : "");
}

/* Wait until deployment id may have changed: an event about it on the
 * stream (or the stream's end: then it is gone and we fall back to
 * asking every POLL_MS).  Returns true when the deployment should be read
 * again, false when only the live line's clock needs a redraw (a terminal
 * waits POLL_MS at most) or left_ms ran out. */
static bool wait_for_change(struct follow *f, struct admin_stream *es, int64_t id, uint64_t left_ms)
{
	uint64_t until = time_now_ms() + (f->tty && left_ms > POLL_MS ? POLL_MS : left_ms);

	if (es->fd < 0) {
		usleep(POLL_MS * 1000);
		return true;
	}
	for (;;) {
		uint64_t now = time_now_ms();
		char *kind = NULL, *data = NULL;
		bool ours = false;
		int rc = admin_client_stream_next(es, now < until ? (int)(until - now) : 0, &kind, &data);
		if (rc < 0) {
			admin_client_stream_close(es); /* the daemon went away: the GET says what to say */
			return true;
		}
		if (rc == 0)
			return false;
		if (!strcmp(kind, "deployment")) {
			json_t *ev = json_loads(data, 0, NULL);
			ours = json_integer_value(json_object_get(ev, "id")) == id;
			json_decref(ev);
		}
		free(kind);
		free(data);
		if (ours)
			return true;
	}
}

static int cli_follow_post(struct follow *f, const char *sock, const char *verb, const char *body, json_t **ret_dep,
			   int64_t *ret_id);

/* A deployment that awaits approval is announced, with the command that
 * approves it; without --wait it is left waiting (--json: the deployment
 * with "awaiting_approval" and exit code 4).  Returns true when the caller
 * stops there. */
static bool awaits_approval(struct follow *f, json_t *dep, int64_t id)
{
	const struct cli *c = f->c;
	const char *phase = json_string_value(json_object_get(dep, "phase"));
	char how[300] = "";

	if (!phase || strcmp(phase, "awaiting-approval"))
		return false;
	if (c->env)
		snprintf(how, sizeof(how), " --env %s", c->env);
	else if (c->socket)
		snprintf(how, sizeof(how), " --socket %s", c->socket);
	else if (c->config)
		snprintf(how, sizeof(how), " --config %s", c->config);
	if (c->json && !f->wait) {
		json_object_set_new(dep, "ok", json_false());
		json_object_set_new(dep, "awaiting_approval", json_true());
		json_object_set_new(dep, "exit_code", json_integer(EXIT_AWAITING));
		cli_print_json(json_incref(dep));
		return true;
	}
	if (!c->json) {
		printf("deployment %lld awaits approval: cutover approve %lld%s%s\n", (long long)id, (long long)id, how,
		       f->wait ? " (waiting for it: --wait)" : "");
		fflush(stdout);
	}
	return !f->wait;
}

/* Start the operation (POST VERB with BODY on SOCK) and follow it to its
 * end.  Returns the exit code. */
static int follow(struct follow *f, const char *sock, const char *verb, const char *body)
{
	const struct cli *c = f->c;
	char path[64], *answer = NULL, err[256];
	struct admin_stream es;
	json_t *dep = NULL;
	int status, rc;
	int64_t id = 0;

	/* the event stream first, so that no phase happens before we listen;
	 * a daemon without one is followed by asking every POLL_MS */
	if (admin_client_stream_open(sock, &es, err, sizeof(err)) < 0)
		es.fd = -1;
	rc = cli_follow_post(f, sock, verb, body, &dep, &id);
	if (rc == 0 && awaits_approval(f, dep, id))
		rc = EXIT_AWAITING;
	if (rc) {
		json_decref(dep);
		admin_client_stream_close(&es);
		return rc;
	}
	snprintf(path, sizeof(path), "/v1/deployments/%lld", (long long)id);
	for (;;) {
		bool changed;
		if (!c->json)
			print_progress(f, dep);
		if (json_is_true(json_object_get(dep, "finished")))
			break;
		if (time_now_ms() - f->t0 > f->timeout_ms) {
			clear_live(f);
			rc = cli_fail(c, EXIT_FAILED, json_pack("{sI ss}", "id", (json_int_t)id, "phase",
								json_string_value(json_object_get(dep, "phase"))),
				      "still %s after %s (--timeout); follow it with `cutover status`",
				      json_string_value(json_object_get(dep, "phase")), f->timeout_text);
			goto out;
		}
		changed = wait_for_change(f, &es, id, f->timeout_ms + 1 - (time_now_ms() - f->t0));
		if (!changed)
			continue;
		json_decref(dep);
		dep = NULL;
		rc = cli_call(c, sock, "GET", path, NULL, &status, &answer);
		if (rc) {
			clear_live(f);
			goto out;
		}
		dep = json_loads(answer, 0, NULL);
		free(answer);
		if (status != 200 || !dep) {
			clear_live(f);
			rc = cli_fail(c, EXIT_FAILED, json_pack("{sI}", "id", (json_int_t)id),
				      "lost track of deployment %lld", (long long)id);
			goto out;
		}
	}
	rc = outcome(f, dep);
	print_result(f, dep, rc);
out:
	json_decref(dep);
	admin_client_stream_close(&es);
	return rc;
}

/* POST VERB with BODY: the daemon accepts (202) and gives the deployment,
 * returned in *ret_dep and *ret_id; else the exit code of the refusal. */
static int cli_follow_post(struct follow *f, const char *sock, const char *verb, const char *body, json_t **ret_dep,
			   int64_t *ret_id)
{
	const struct cli *c = f->c;
	char *answer = NULL;
	json_t *dep;
	int status, rc;
	int64_t id;

	rc = cli_call(c, sock, "POST", verb, body, &status, &answer);
	if (rc)
		return rc;
	dep = json_loads(answer, 0, NULL);
	if (status != 202 || !dep) {
		const char *e = json_string_value(json_object_get(dep, "error"));

		/* 404: no such service; 400: not a version: the command line is wrong */
		/* 503: the daemon is shutting down or being upgraded */
		rc = cli_fail(c, status == 400 || status == 404 ? EXIT_USAGE : status == 503 ? EXIT_UNREACHABLE : EXIT_FAILED,
			      json_pack("{si ss}", "status", status, "service", c->args[0]), "%s", e ? e : answer);
		json_decref(dep);
		free(answer);
		return rc;
	}
	free(answer);
	f->t0 = time_now_ms();
	id = json_integer_value(json_object_get(dep, "id"));
	if (!c->json)
		printf("deployment %lld: %s %s%s%s%s\n", (long long)id, json_string_value(json_object_get(dep, "service")),
		       json_string_value(json_object_get(dep, "version")), c->env ? " (env " : "", c->env ? c->env : "",
		       c->env ? ")" : "");
	*ret_dep = dep;
	*ret_id = id;
	return 0;
}

int cli_follow_option(const struct cli *c, int opt, const char *arg, struct cli_follow *f)
{
	uint64_t ms;

	if (opt == 'w') {
		f->wait = true;
		return -1;
	}
	if (opt != 't')
		return EXIT_USAGE;
	if (parse_duration_ms(arg, &ms) < 0 || ms == 0)
		return cli_fail(c, EXIT_USAGE, NULL,
				"--timeout: expected a duration such as 90s, 10m or 1h (a bare number is seconds), "
				"more than 0, got '%s'", arg);
	f->timeout_ms = ms;
	f->timeout_text = arg;
	return -1;
}

int cli_follow_deploy(const struct cli *c, const struct cli_follow *opts, bool rollback, const char *sock,
		      const char *path, const char *body)
{
	struct follow f = {
		.c = c,
		.rollback = rollback,
		.timeout_ms = opts->timeout_ms,
		.timeout_text = opts->timeout_text,
		.wait = opts->wait,
	};

	f.tty = !c->json && isatty(STDOUT_FILENO);
	f.color = f.tty && !(getenv("NO_COLOR") && *getenv("NO_COLOR"));
	return follow(&f, sock, path, body);
}

/* The options of deploy and rollback: those of following, and deploy's
 * --digest. */
struct deploy_options {
	struct cli_follow follow;
	const char *digest;
};

static int deploy_option(struct cli *c, int opt, const char *arg)
{
	struct deploy_options *o = c->data;

	if (opt == 'D') {
		o->digest = arg;
		return -1;
	}
	return cli_follow_option(c, opt, arg, &o->follow);
}

/* deploy, rollback or restart (restart: as rollback, one argument). */
static int run(int argc, char **argv, bool rollback, bool restart)
{
	static const struct option opts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "wait", no_argument, NULL, 'w' },
		{ "digest", required_argument, NULL, 'D' },
		{ 0 },
	};
	struct deploy_options o = { .follow = CLI_FOLLOW_DEFAULTS };
	struct cli c = {
		.verb = restart ? "restart" : rollback ? "rollback" : "deploy",
		.flags = CLI_CONFIG | CLI_SOCKET,
		.synopsis = rollback || restart ? "SERVICE" : "SERVICE VERSION",
		.min_args = rollback || restart ? 1 : 2,
		.max_args = rollback || restart ? 1 : 2,
		.options = opts,
		.shortopts = "t:w",
		.option = deploy_option,
		.data = &o,
	};
	char *sock = NULL, *body = NULL;
	json_t *req;
	int rc;

	rc = cli_parse(&c, argc, argv);
	if (rc >= 0)
		return rc;
	if (rollback && o.digest)
		return cli_fail(&c, EXIT_USAGE, NULL, "--digest: a rollback goes back to a version that served");
	rc = cli_socket_path(&c, &sock);
	if (rc)
		return rc;
	req = rollback || restart ? json_pack("{s:s}", "service", c.args[0])
		       : json_pack("{s:s, s:s}", "service", c.args[0], "version", c.args[1]);
	if (req && o.digest)
		json_object_set_new(req, "digest", json_string(o.digest));
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (!body)
		rc = cli_fail(&c, EXIT_FAILED, NULL, "out of memory");
	else
		rc = cli_follow_deploy(&c, &o.follow, rollback, sock,
				       restart ? "/v1/restart" : rollback ? "/v1/rollback" : "/v1/deploy", body);
	free(body);
	free(sock);
	return rc;
}

int cli_deploy(int argc, char **argv)
{
	return run(argc, argv, false, false);
}

int cli_rollback(int argc, char **argv)
{
	return run(argc, argv, true, false);
}

int cli_restart(int argc, char **argv)
{
	return run(argc, argv, false, true);
}

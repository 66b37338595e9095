/* cli.h - one function per CLI verb (src/cli/<verb>.c), and what the
 * verbs share (options.c): option parsing, errors as text or JSON, and
 * where the state and the daemon's socket are.
 *
 * Exit codes (documented in docs/cli.md):
 *   0 ok; 1 operation failed; 2 usage or configuration error; 3 daemon unreachable
 *   (or shutting down: it refuses what would be cut off); 4 the deploy or
 *   promotion awaits approval (approval: required; `cutover approve ID`).
 */
#pragma once
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_UNREACHABLE = 3, EXIT_AWAITING = 4 };

int cli_daemon(int argc, char **argv);
int cli_proxy(int argc, char **argv);
int cli_check(int argc, char **argv);
int cli_config(int argc, char **argv);
int cli_status(int argc, char **argv);
int cli_deploy(int argc, char **argv);
int cli_rollback(int argc, char **argv);
int cli_restart(int argc, char **argv);
int cli_pause(int argc, char **argv);
int cli_resume(int argc, char **argv);
int cli_promote(int argc, char **argv);
int cli_abort(int argc, char **argv);
int cli_history(int argc, char **argv);
int cli_audit(int argc, char **argv);
int cli_demo(int argc, char **argv);
int cli_logs(int argc, char **argv);
int cli_release(int argc, char **argv);
int cli_releases(int argc, char **argv);
int cli_version(int argc, char **argv);
int cli_shutdown(int argc, char **argv);
int cli_upgrade(int argc, char **argv);
int cli_log_relay(int argc, char **argv); /* hidden: the supervisor's log relay */
int cli_secrets(int argc, char **argv);
int cli_export_proof(int argc, char **argv);
int cli_approve(int argc, char **argv);
int cli_reject(int argc, char **argv);
int cli_pipeline(int argc, char **argv);
int cli_help(int argc, char **argv);        /* help.c */
int cli_state(int argc, char **argv);
int cli_maintenance(int argc, char **argv);
/* `cutover promote SERVICE --from ENV --to ENV` (promote.c); cli_promote
 * (control.c) hands over to it when --from, --to or --proof is given. */
int cli_promote_env(int argc, char **argv);

/* The verbs main() dispatches (verbs.c), in the order `cutover help` lists
 * them.  Each one that is not hidden, and each of its actions, has a
 * section in docs/cli.md (help.h; tests/unit/test_help.c checks both
 * ways). */
struct cli_verb {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *const *actions;   /* the first arguments it takes as actions, NULL-terminated;
				       * NULL: none */
	bool hidden;                  /* not for people: no help, not listed (log-relay) */
};
extern const struct cli_verb cli_verbs[];
extern const size_t cli_nverbs;
/* The verb called NAME (hidden ones too), or NULL.  Pure. */
const struct cli_verb *cli_verb_find(const char *name);
/* Is ACTION one of V's actions?  Pure. */
bool cli_verb_has_action(const struct cli_verb *v, const char *action);

/* `cutover release ACTION`: the release store's actions (add, prune,
 * verify: release.c), multi-service releases (plan, run, abort, approve,
 * reject: release-run.c) and their reports (list, show, notes:
 * release-report.c).  The first argument of argv[1..] that is not an
 * option or an option's value (NULL if none). */
const char *cli_first_argument(int argc, char **argv);
bool cli_release_is_orchestration(const char *action);
int cli_release_orchestrate(int argc, char **argv, const char *action);
bool cli_release_is_report(const char *action);
int cli_release_report(int argc, char **argv, const char *action);

/* The shared options a verb takes besides --json and --help (which every
 * verb takes). */
enum {
	CLI_CONFIG = 1 << 0,    /* --config FILE, -c */
	CLI_SOCKET = 1 << 1,    /* --socket PATH, -s: the daemon's admin socket */
	CLI_STATE_DIR = 1 << 2, /* --state-dir DIR, -d */
};

/* One run of a verb.  The verb fills the first block, cli_parse() the
 * second. */
struct cli {
	const char *verb;             /* "deploy", "release add": prefix of messages, and the
				       * section of docs/cli.md that --help prints (help.h) */
	unsigned flags;               /* CLI_CONFIG | CLI_SOCKET | CLI_STATE_DIR */
	bool error_log;               /* daemon, proxy: with --json stderr is the error log in JSON
				       * lines, so failures are logged there, not printed */
	const char *synopsis;         /* the positional arguments, e.g. "SERVICE VERSION" */
	int min_args, max_args;       /* how many; max_args < 0: no limit */
	const struct option *options; /* the verb's own options (may be NULL), {0}-terminated */
	const char *shortopts;        /* their short forms, getopt syntax (may be NULL) */
	/* Called for each of the verb's own options.  Returns -1 to go on, or
	 * an exit code (after cli_fail()). */
	int (*option)(struct cli *c, int opt, const char *arg);
	void *data;                   /* for option() */

	bool json;                    /* --json */
	const char *env;              /* --env ENV (every verb takes it), else $CUTOVER_ENV, else NULL:
				       * the overlay cutover.ENV.yml merged onto the configuration */
	const char *config;           /* --config FILE, or NULL */
	const char *socket;           /* --socket PATH, or NULL */
	const char *state_dir;        /* --state-dir DIR, or NULL */
	char **args;                  /* the positional arguments */
	int nargs;
};

/* A time argument (--since, --until; when.c), as Unix ms into *ret:
 * "now"; a time ago, "30s", "90m", "2h", "3d", "1w" or a sum "1d12h"
 * (NOW_MS minus it); or an ISO date or time, UTC unless it says otherwise:
 * "2026-12-05" (its midnight), "2026-12-05T10:00", "2026-12-05 10:00:30",
 * "2026-12-05T10:00:30.250Z", "2026-12-05T10:00+01:00".  Returns 0, or
 * -EINVAL (ret untouched).  Pure. */
int cli_parse_time(const char *s, int64_t now_ms, int64_t *ret);
/* The same against the wall clock, for OPTION ("--since") of a verb:
 * returns -1 when *ret is set, else EXIT_USAGE after cli_fail() (the
 * forms accepted named). */
int cli_time_option(const struct cli *c, const char *option, const char *arg, int64_t *ret);

/* The user running the CLI, as audit rows name them: the login name, else
 * "uid N". */
void cli_actor_name(char *out, size_t outlen);

/* Parse argv (argv[0] is the verb): options may come anywhere, "--" ends
 * them.  --json is honoured wherever it is, also by the errors of options
 * before it.  Returns -1 to go on, or the exit code to return at once
 * (--help printed: EXIT_OK; a bad option or argument count: EXIT_USAGE,
 * message printed).  --help prints the help of c->verb, or of its action
 * when the first argument is one (`cutover release add --help`). */
int cli_parse(struct cli *c, int argc, char **argv);
/* The first argument of argv[1..] that is neither an option nor an
 * option's value, as getopt_long() would parse argv with OPTS (may be
 * NULL; {0}-terminated; unique prefixes of long names count) and
 * SHORTOPTS (getopt syntax; may be NULL), or NULL if none.  Pure. */
const char *cli_first_operand(int argc, char **argv, const struct option *opts, const char *shortopts);
/* Check c->nargs against min_args and max_args (cli_parse() does).
 * Returns -1 if it fits, else EXIT_USAGE after cli_fail(). */
int cli_check_args(const struct cli *c);

/* Tell the user about a failure and return CODE: "cutover VERB: MESSAGE"
 * on stderr (with --json and c->error_log: an error log line) and, with
 * --json, also one JSON object on stdout:
 * {"ok": false, "error": MESSAGE, "exit_code": CODE, ...the members of
 * EXTRA}.  EXTRA (may be NULL) is consumed. */
int cli_fail(const struct cli *c, int code, json_t *extra, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Print obj (consumed; NULL prints nothing) on stdout, indented, then a
 * newline. */
void cli_print_json(json_t *obj);

/* Load the configuration file PATH with the overlay of c->env, if any
 * (config_load_env).  Returns 0 and *ret (caller frees with
 * config_free), or EXIT_USAGE after cli_fail() with the loader's message
 * and, with --json, its file, line, column, field and reason. */
struct config;
int cli_load_config(const struct cli *c, const char *path, struct config **ret);
/* Same, and *ret_tree (may be NULL) gets the merged tree the configuration
 * was read from (config_load_env_tree; the caller frees it with
 * ynode_free). */
struct ynode;
int cli_load_config_tree(const struct cli *c, const char *path, struct config **ret, struct ynode **ret_tree);

/* The configuration file a state or socket verb reads when no more precise
 * option is given: --config FILE, else ./cutover.yml if it exists, else
 * NULL. */
const char *cli_config_path(const struct cli *c);

/* Where the state is: --state-dir, else state_dir of --config FILE, else
 * $CUTOVER_STATE_DIR, else state_dir of ./cutover.yml if there is one, else
 * /var/lib/cutover.  With MUST_EXIST, DIR/state.db must be there (the
 * read-only verbs never create state).  Returns 0 and *ret (malloc'd), or
 * an exit code after cli_fail(): EXIT_USAGE for an invalid configuration
 * file, EXIT_FAILED for a missing state. */
int cli_state_dir(const struct cli *c, bool must_exist, char **ret);

/* Open the state that cli_state_dir() names (creating it unless
 * MUST_EXIST).  Returns 0 with *ret_st (state_close() it) and, if ret_dir is
 * not NULL, *ret_dir (malloc'd), or an exit code after cli_fail(). */
struct state;
int cli_open_state(const struct cli *c, bool must_exist, struct state **ret_st, char **ret_dir);

/* Where the daemon listens: --socket, else admin_socket of --config FILE,
 * else $CUTOVER_SOCKET, else admin_socket of ./cutover.yml if there is
 * one, else /var/lib/cutover/admin.sock.  Returns 0 and *ret (malloc'd),
 * or EXIT_USAGE after cli_fail() (an invalid configuration file). */
int cli_socket_path(const struct cli *c, char **ret);

/* Ask the daemon at SOCKET: admin_client_call() with the errors reported
 * through cli_fail().  Returns 0 with *status and *ret_body (malloc'd; the
 * caller frees it), or EXIT_UNREACHABLE. */
int cli_call(const struct cli *c, const char *socket, const char *method, const char *path, const char *body,
	     int *status, char **ret_body);

/* POST BODY to PATH at SOCKET for an operation the daemon accepts with
 * 202 (shutdown, upgrade).  Returns 0 with *ret, the answer (caller
 * decrefs), or an exit code after cli_fail(): EXIT_UNREACHABLE when the
 * daemon cannot be reached or is shutting down (503), else EXIT_FAILED
 * with the daemon's "error". */
int cli_post_accepted(const struct cli *c, const char *socket, const char *path, const char *body, json_t **ret);

/* How a deploy (deploy, rollback, promote) is followed (deploy.c). */
struct cli_follow {
	uint64_t timeout_ms;          /* --timeout: give up following after it (default 10m) */
	const char *timeout_text;     /* ... as given */
	bool wait;                    /* --wait: one that awaits approval is followed until decided */
};
#define CLI_FOLLOW_DEFAULTS { .timeout_ms = 600 * 1000, .timeout_text = "10m" }
/* The follow options a verb passes on: 't' (--timeout DURATION) and 'w'
 * (--wait).  Returns -1 when taken, else an exit code after cli_fail(). */
int cli_follow_option(const struct cli *c, int opt, const char *arg, struct cli_follow *f);
/* POST BODY to PATH at SOCK (/v1/deploy, /v1/rollback, /v1/promote) and
 * follow the deployment it starts, printing its phases (--json: the final
 * deployment object).  One awaiting approval is announced ("deployment N
 * awaits approval: cutover approve N ...") and, without --wait, left
 * waiting: EXIT_AWAITING.  Returns the exit code: 0 done (a rollback also
 * when it rolled back what it followed), 1 failed, rolled back, rejected or
 * expired, 2 the daemon refused the request as wrong (400, 404), 3
 * unreachable, 4 awaiting approval. */
int cli_follow_deploy(const struct cli *c, const struct cli_follow *opts, bool rollback, const char *sock,
		      const char *path, const char *body);

/* One event of a deployment (as the API gives it) as a line without its
 * newline: elapsed time, phase and detail ("   0.26s  healthy  ..."). */
void cli_event_line(json_t *event, char *out, size_t outlen);

/* Run a proxy with cfg (owned) until drained; argv: the verb's arguments
 * (for an upgrade).  Returns an exit code. */
int cli_run_proxy(const struct cli *c, struct config *cfg, char **argv);

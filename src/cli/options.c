/* options.c - what the CLI verbs share: the options every verb takes
 * (--json, --help) or several do (--config, --socket, --state-dir), argument
 * counts, errors as a sentence on stderr and, with --json, as one JSON object
 * on stdout, and where the state and the daemon's admin socket are (one
 * order of precedence for every verb, see cli.h).
 */
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli/cli.h"
#include "cli/help.h"
#include "admin/client.h"
#include "base/log.h"
#include "config/config.h"
#include "state/state.h"

#define DEFAULT_STATE_DIR "/var/lib/cutover"
#define DEFAULT_SOCKET DEFAULT_STATE_DIR "/admin.sock"
#define LOCAL_CONFIG "cutover.yml"
#define MAX_OPTIONS 24
#define CLI_OPT_ENV 0x1000 /* --env: long only (no verb's short option can take its value) */

static const struct option json_help[] = {
	{ "json", no_argument, NULL, 'j' },
	{ "help", no_argument, NULL, 'h' },
	{ "env", required_argument, NULL, CLI_OPT_ENV },
};
static const struct {
	unsigned flag;
	struct option option;
} shared[] = {
	{ CLI_CONFIG, { "config", required_argument, NULL, 'c' } },
	{ CLI_SOCKET, { "socket", required_argument, NULL, 's' } },
	{ CLI_STATE_DIR, { "state-dir", required_argument, NULL, 'd' } },
};

int cli_fail(const struct cli *c, int code, json_t *extra, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->error_log && c->json)
		log_error("%s", msg);
	else
		fprintf(stderr, "cutover %s: %s\n", c->verb, msg);
	if (c->json) {
		json_t *obj = json_pack("{sb ss si}", "ok", 0, "error", msg, "exit_code", code);

		if (obj && extra)
			json_object_update_missing(obj, extra);
		if (obj) {
			json_dumpf(obj, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
			fputc('\n', stdout);
			fflush(stdout);
		}
		json_decref(obj);
	}
	json_decref(extra);
	return code;
}

void cli_print_json(json_t *obj)
{
	if (!obj)
		return;
	json_dumpf(obj, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
	fflush(stdout);
	json_decref(obj);
}

/* Does the option table know VAL (an option that exists but was misused,
 * e.g. --json=1, rather than an unknown one)? */
static bool known_option(const struct option *opts, int val)
{
	for (; opts->name; opts++)
		if (opts->val == val)
			return true;
	return false;
}

/* Does the long option NAME ("state-dir", "sta", "keep=3"; no leading
 * dashes) take the next argument as its value? */
static bool long_takes_next(const struct option *opts, const char *name)
{
	size_t len = strcspn(name, "=");
	const struct option *match = NULL;
	int n = 0;

	if (name[len] == '=')
		return false;
	for (; opts && opts->name; opts++) {
		if (strncmp(opts->name, name, len))
			continue;
		match = opts;
		n++;
		if (strlen(opts->name) == len) { /* an exact match beats the prefixes */
			n = 1;
			break;
		}
	}
	return n == 1 && match->has_arg == required_argument;
}

const char *cli_first_operand(int argc, char **argv, const struct option *opts, const char *shortopts)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--"))
			return i + 1 < argc ? argv[i + 1] : NULL;
		if (a[0] != '-' || !a[1])
			return a;
		if (a[1] == '-') {
			i += long_takes_next(opts, a + 2);
			continue;
		}
		/* a cluster of short options: the first that takes a value takes
		 * the rest of the cluster, or the next argument */
		for (const char *p = a + 1; *p; p++) {
			const char *o = *p != ':' && shortopts ? strchr(shortopts, *p) : NULL;

			if (o && o[1] == ':') {
				i += o[2] != ':' && !p[1]; /* "x::": an optional value, attached only */
				break;
			}
		}
	}
	return NULL;
}

/* --help: the help of c->verb, or of its action ACTION (may be NULL) when
 * it has one.  Returns EXIT_OK, or EXIT_FAILED when this build has none (a
 * section missing from docs/cli.md: tests/unit/test_help.c fails first). */
static int print_help(const struct cli *c, const char *action)
{
	const struct cli_help *h = cli_help_lookup(c->verb, action);

	if (!h)
		return cli_fail(c, EXIT_FAILED, NULL, "no help for cutover %s in this build (docs/cli.md lacks it)",
				c->verb);
	fputs(h->text, stdout);
	return EXIT_OK;
}

int cli_parse(struct cli *c, int argc, char **argv)
{
	struct option opts[MAX_OPTIONS + 1] = { 0 };
	char shortopts[3 * MAX_OPTIONS] = ":jh";
	const char *env, *operand;
	size_t n = 0;
	int o;

	/* --json first: the errors of the options before it are JSON too */
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "--json") || !strcmp(argv[i], "-j"))
			c->json = true;
	if (c->error_log && c->json) /* the command line's choice: log.error_format does not change it */
		log_set_format(LOG_FORMAT_JSON);
	for (size_t i = 0; i < sizeof(json_help) / sizeof(json_help[0]); i++)
		opts[n++] = json_help[i];
	for (size_t i = 0; i < sizeof(shared) / sizeof(shared[0]); i++) {
		if (!(c->flags & shared[i].flag))
			continue;
		opts[n++] = shared[i].option;
		snprintf(shortopts + strlen(shortopts), sizeof(shortopts) - strlen(shortopts), "%c:",
			 shared[i].option.val);
	}
	for (const struct option *own = c->options; own && own->name && n < MAX_OPTIONS; own++)
		opts[n++] = *own;
	if (c->shortopts)
		snprintf(shortopts + strlen(shortopts), sizeof(shortopts) - strlen(shortopts), "%s", c->shortopts);

	operand = cli_first_operand(argc, argv, opts, shortopts); /* before getopt permutes argv */
	optind = 0; /* GNU: a full restart of the scan */
	opterr = 0; /* our messages, JSON with --json */
	while ((o = getopt_long(argc, argv, shortopts, opts, NULL)) != -1) {
		const char *given = argv[optind - 1];
		int r;

		if (o == 'j') {
			c->json = true;
		} else if (o == CLI_OPT_ENV) {
			if (!config_env_name_valid(optarg))
				return cli_fail(c, EXIT_USAGE, NULL,
						"--env: invalid environment name '%s' (expected [a-z0-9][a-z0-9_-]*, "
						"at most 32 characters)", optarg);
			c->env = optarg;
		} else if (o == 'h') {
			return print_help(c, operand);
		} else if ((o == 'c' && (c->flags & CLI_CONFIG)) || (o == 's' && (c->flags & CLI_SOCKET)) ||
			   (o == 'd' && (c->flags & CLI_STATE_DIR))) {
			if (!*optarg)
				return cli_fail(c, EXIT_USAGE, NULL, "%s: empty path", given);
			*(o == 'c' ? &c->config : o == 's' ? &c->socket : &c->state_dir) = optarg;
		} else if (o == ':') {
			return cli_fail(c, EXIT_USAGE, NULL, "%s: missing its value (see --help)", given);
		} else if (o == '?') {
			if (optopt && !known_option(opts, optopt))
				return cli_fail(c, EXIT_USAGE, NULL, "unknown option '-%c' (see --help)", optopt);
			return cli_fail(c, EXIT_USAGE, NULL, "unknown option '%s' (see --help)", given);
		} else if (c->option && (r = c->option(c, o, optarg)) >= 0) {
			return r;
		}
	}
	c->args = argv + optind;
	c->nargs = argc - optind;
	if (!c->env && (env = getenv("CUTOVER_ENV")) && *env) {
		if (!config_env_name_valid(env))
			return cli_fail(c, EXIT_USAGE, NULL,
					"CUTOVER_ENV: invalid environment name '%s' (expected [a-z0-9][a-z0-9_-]*, "
					"at most 32 characters)", env);
		c->env = env;
	}
	return cli_check_args(c);
}

void cli_actor_name(char *out, size_t outlen)
{
	struct passwd *pw = getpwuid(getuid());

	if (pw && pw->pw_name)
		snprintf(out, outlen, "%s", pw->pw_name);
	else
		snprintf(out, outlen, "uid %u", (unsigned)getuid());
}

int cli_check_args(const struct cli *c)
{
	if (c->nargs >= c->min_args && (c->max_args < 0 || c->nargs <= c->max_args))
		return -1;
	if (c->max_args == 0)
		return cli_fail(c, EXIT_USAGE, NULL, "unexpected argument '%s' (see --help)", c->args[0]);
	return cli_fail(c, EXIT_USAGE, NULL, "expected %s, got %d argument%s (see --help)", c->synopsis, c->nargs,
			c->nargs == 1 ? "" : "s");
}

int cli_load_config(const struct cli *c, const char *path, struct config **ret)
{
	return cli_load_config_tree(c, path, ret, NULL);
}

int cli_load_config_tree(const struct cli *c, const char *path, struct config **ret, struct ynode **ret_tree)
{
	struct config_error err;
	char prefix[512];
	const char *reason;
	json_t *where;

	if (config_load_env_tree(path, c->env, ret, ret_tree, &err) == 0)
		return 0;
	/* the reason alone: the message without "FILE:LINE:COLUMN: FIELD: " */
	if (err.line > 0)
		snprintf(prefix, sizeof(prefix), "%s:%d:%d: %s%s", err.file, err.line, err.column, err.field,
			 err.field[0] ? ": " : "");
	else
		snprintf(prefix, sizeof(prefix), "%s: %s%s", err.file, err.field, err.field[0] ? ": " : "");
	reason = strncmp(err.message, prefix, strlen(prefix)) ? err.message : err.message + strlen(prefix);
	where = json_pack("{ss ss}", "file", err.file[0] ? err.file : path, "reason", reason);
	if (where && err.line > 0) {
		json_object_set_new(where, "line", json_integer(err.line));
		json_object_set_new(where, "column", json_integer(err.column));
	}
	if (where && err.field[0])
		json_object_set_new(where, "field", json_string(err.field));
	return cli_fail(c, EXIT_USAGE, where, "%s", err.message);
}

const char *cli_config_path(const struct cli *c)
{
	if (c->config)
		return c->config;
	return access(LOCAL_CONFIG, F_OK) == 0 ? LOCAL_CONFIG : NULL;
}

/* The state dir or the admin socket (SOCKET true) by the order of cli.h:
 * OPT, else the file of --config, else the environment variable (unless an
 * environment is chosen: its configuration names it), else ./cutover.yml,
 * else the default (unless an environment is chosen: then ./cutover.yml
 * must be there). */
static int locate(const struct cli *c, bool socket, char **ret)
{
	const char *opt = socket ? c->socket : c->state_dir;
	const char *env = getenv(socket ? "CUTOVER_SOCKET" : "CUTOVER_STATE_DIR");
	const char *path;
	struct config *cfg = NULL;
	char *found;
	int rc;

	if (opt) {
		found = strdup(opt);
	} else if (!c->config && !c->env && env && *env) {
		found = strdup(env);
	} else if (!(path = cli_config_path(c)) && !c->env) {
		found = strdup(socket ? DEFAULT_SOCKET : DEFAULT_STATE_DIR);
	} else {
		/* an environment is found through its configuration: without
		 * ./cutover.yml that is an error, not the default daemon */
		rc = cli_load_config(c, path ? path : LOCAL_CONFIG, &cfg);
		if (rc)
			return rc;
		found = strdup(socket ? cfg->admin_socket : cfg->state_dir);
		config_free(cfg);
	}
	if (!found)
		return cli_fail(c, EXIT_FAILED, NULL, "out of memory");
	*ret = found;
	return 0;
}

int cli_state_dir(const struct cli *c, bool must_exist, char **ret)
{
	char *dir = NULL, *file = NULL;
	int rc = locate(c, false, &dir);

	if (rc || !must_exist)
		goto out;
	if (asprintf(&file, "%s/state.db", dir) < 0) {
		file = NULL;
		rc = cli_fail(c, EXIT_FAILED, NULL, "out of memory");
	} else if (access(file, F_OK) < 0 && (errno == ENOENT || errno == ENOTDIR)) {
		rc = cli_fail(c, EXIT_FAILED, json_pack("{ss}", "state_dir", dir),
			      "no cutover state in %s (state.db not found): is --state-dir / state_dir right?", dir);
	} else if (access(file, R_OK) < 0) {
		rc = cli_fail(c, EXIT_FAILED, json_pack("{ss}", "state_dir", dir), "cannot read %s: %s", file,
			      strerror(errno));
	}
out:
	free(file);
	if (rc == 0)
		*ret = dir;
	else
		free(dir);
	return rc;
}

int cli_open_state(const struct cli *c, bool must_exist, struct state **ret_st, char **ret_dir)
{
	char err[1024], *dir = NULL;
	int rc = cli_state_dir(c, must_exist, &dir), r;

	if (rc)
		return rc;
	r = must_exist ? state_open_existing(dir, ret_st, err, sizeof(err)) : state_open(dir, ret_st, err, sizeof(err));
	if (r < 0)
		rc = cli_fail(c, EXIT_FAILED, json_pack("{ss}", "state_dir", dir), "%s%s", err,
			      r == -EACCES && !c->state_dir ? " (choose another one with --state-dir DIR)" : "");
	if (rc == 0 && ret_dir)
		*ret_dir = dir;
	else
		free(dir);
	return rc;
}

int cli_socket_path(const struct cli *c, char **ret)
{
	return locate(c, true, ret);
}

int cli_call(const struct cli *c, const char *socket, const char *method, const char *path, const char *body,
	     int *status, char **ret_body)
{
	char err[1024];

	if (admin_client_call(socket, method, path, body, status, ret_body, err, sizeof(err)) < 0)
		return cli_fail(c, EXIT_UNREACHABLE, json_pack("{ss}", "socket", socket), "%s", err);
	return 0;
}

int cli_post_accepted(const struct cli *c, const char *socket, const char *path, const char *body, json_t **ret)
{
	char *answer = NULL;
	json_t *j;
	int status, rc = cli_call(c, socket, "POST", path, body, &status, &answer);

	if (rc)
		return rc;
	j = json_loads(answer, 0, NULL);
	if (status != 202 || !j) {
		const char *e = json_string_value(json_object_get(j, "error"));
		/* 503: the daemon is shutting down or being upgraded */
		rc = cli_fail(c, status == 503 ? EXIT_UNREACHABLE : EXIT_FAILED, json_pack("{si}", "status", status),
			      "%s", e ? e : answer);
		json_decref(j);
		free(answer);
		return rc;
	}
	free(answer);
	*ret = j;
	return 0;
}

void cli_event_line(json_t *e, char *out, size_t outlen)
{
	const char *detail = json_string_value(json_object_get(e, "detail"));
	const char *phase = json_string_value(json_object_get(e, "phase"));
	double at = (double)json_integer_value(json_object_get(e, "elapsed_ms")) / 1000.0;

	if (detail && *detail)
		snprintf(out, outlen, "%7.2fs  %-16s %s", at, phase ? phase : "?", detail);
	else
		snprintf(out, outlen, "%7.2fs  %s", at, phase ? phase : "?");
}

const char *cli_first_argument(int argc, char **argv)
{
	/* the options of any verb that take a separate value */
	static const char *const with_value[] = {
		"-c", "--config", "-d", "--state-dir", "-s", "--socket", "--env", "--keep", "-n", "--limit",
		"--since", "--until", "--service", "--release", "--template", "-o", "--output", "--reason",
	};

	for (int i = 1; i < argc; i++) {
		bool takes = false;

		if (!strcmp(argv[i], "--"))
			return i + 1 < argc ? argv[i + 1] : NULL;
		if (argv[i][0] != '-' || !argv[i][1])
			return argv[i];
		for (size_t k = 0; k < sizeof(with_value) / sizeof(with_value[0]) && !takes; k++)
			takes = !strcmp(argv[i], with_value[k]);
		i += takes;
	}
	return NULL;
}

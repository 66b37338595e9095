/* pipeline.c - `cutover pipeline run` and `cutover pipeline list`: the
 * stages of pipeline: in cutover.yml (src/config/pipeline.c), one after the
 * other, their output streamed as it comes (the processes: pipeline-run.c).
 *
 * The first stage that fails stops the pipeline: the stages after it are
 * skipped, except those with `when: always`.  A deploy, promote or release
 * that awaits approval (exit 4 of those verbs) stops it too, with exit 4, unless
 * the stage says wait: true.  A table of the stages ends the run (--json:
 * the same as one object on stdout, the stages' output on stderr).
 *
 * Exit codes: 0 every stage succeeded; 1 the pipeline could not run at all;
 * 2 usage or configuration error; 4 a stage awaits approval; 10 + N stage
 * N (1-based, as `pipeline list` numbers them) failed; 128 + the signal
 * when interrupted.  docs/pipeline.md is the user's guide.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/util.h"
#include "cli/pipeline-internal.h"
#include "config/config.h"

/* The table of the selected stages, then the outcome; with --json the
 * same as one object on stdout. */
static void print_summary(const struct run *R, int rc, uint64_t total_ms)
{
	const struct config_pipeline *p = &R->cfg->pipeline;
	json_t *stages = R->c->json ? json_array() : NULL;
	size_t failed = SIZE_MAX;
	char status[64];

	if (rc > EXIT_STAGE_BASE && rc <= EXIT_STAGE_BASE + (int)p->nstages)
		failed = (size_t)(rc - EXIT_STAGE_BASE - 1);
	fprintf(R->out, "\n  %-*s  %-24s %9s\n", R->width, "stage", "status", "duration");
	for (size_t i = 0; i < p->nstages; i++) {
		const struct stage_result *res = &R->results[i];
		bool ran = res->status != STATUS_NOT_RUN && res->status != STATUS_SKIPPED;

		if (!res->selected)
			continue;
		if (res->status == STATUS_FAILED && res->signo)
			snprintf(status, sizeof(status), "failed (signal %d)", res->signo);
		else if (res->status == STATUS_FAILED && res->exit_code >= 0)
			snprintf(status, sizeof(status), "failed (exit %d)", res->exit_code);
		else
			snprintf(status, sizeof(status), "%s", pipeline_status_words[res->status]);
		fprintf(R->out, "  %-*s  %-24s %9s\n", R->width, p->stages[i].name, status,
			ran ? ELAPSED(res->duration_ms) : "-");
		if (stages)
			json_array_append_new(
				stages, json_pack("{ss si ss ss so so so*}", "name", p->stages[i].name, "number", (int)i + 1,
						  "kind", pipeline_kind_words[p->stages[i].kind], "status", pipeline_status_words[res->status],
						  "duration_ms", ran ? json_integer((json_int_t)res->duration_ms) : json_null(),
						  "exit_code", ran && res->exit_code >= 0 ? json_integer(res->exit_code) : json_null(),
						  "signal", res->signo ? json_integer(res->signo) : NULL));
	}
	if (rc == EXIT_OK)
		fprintf(R->out, "pipeline ok in %s\n", ELAPSED(total_ms));
	else if (failed != SIZE_MAX)
		fprintf(R->out, "pipeline failed at stage %zu (%s%s%s): exit code %d\n", failed + 1,
			p->stages[failed].name, R->results[failed].status == STATUS_FAILED ? "" : ", ",
			R->results[failed].status == STATUS_FAILED ? "" : pipeline_status_words[R->results[failed].status], rc);
	else if (rc == EXIT_AWAITING)
		fprintf(R->out, "pipeline stopped: a stage awaits approval (exit code 4)\n");
	else
		fprintf(R->out, "pipeline interrupted: exit code %d\n", rc);
	fflush(R->out);
	if (stages)
		cli_print_json(json_pack("{sb si s:s? s:s? so so}", "ok", rc == EXIT_OK, "exit_code", rc, "env", R->c->env,
					 "failed_stage", failed != SIZE_MAX ? p->stages[failed].name : NULL, "duration_ms",
					 json_integer((json_int_t)total_ms), "stages", stages));
}

/* ---- the verb ------------------------------------------------------------- */

/* The index of the stage called name, or an exit code after cli_fail()
 * (as a negative number). */
static long find_stage(const struct run *R, const char *option, const char *name)
{
	const struct config_pipeline *p = &R->cfg->pipeline;
	char names[512] = "";

	for (size_t i = 0; i < p->nstages; i++)
		if (!strcmp(p->stages[i].name, name))
			return (long)i;
	for (size_t i = 0; i < p->nstages && strlen(names) < sizeof(names) - 80; i++)
		snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", i ? ", " : "", p->stages[i].name);
	return -cli_fail(R->c, EXIT_USAGE, NULL, "%s: no stage '%s' (the stages: %s)", option, name, names);
}

/* Mark the stages --from / --only select, and check what they need that
 * only the command line gives (an environment).  Returns -1 to go on, or
 * an exit code after cli_fail(). */
static int select_stages(struct run *R)
{
	const struct config_pipeline *p = &R->cfg->pipeline;
	long from = 0, only = -1;

	if (R->o->from && R->o->only)
		return cli_fail(R->c, EXIT_USAGE, NULL, "--from and --only: give one of them");
	if (R->o->from && (from = find_stage(R, "--from", R->o->from)) < 0)
		return (int)-from;
	if (R->o->only && (only = find_stage(R, "--only", R->o->only)) < 0)
		return (int)-only;
	for (size_t i = 0; i < p->nstages; i++) {
		const struct config_stage *st = &p->stages[i];

		R->results[i].selected = only >= 0 ? (long)i == only : (long)i >= from;
		if (!R->results[i].selected)
			continue;
		if (st->uses_env && !R->c->env)
			return cli_fail(R->c, EXIT_USAGE, NULL,
					"stage %s uses ${ENV}: give --env ENV (or set CUTOVER_ENV)", st->name);
		if (st->kind == CONFIG_STAGE_PROMOTE && !pipeline_stage_env(R, st))
			return cli_fail(R->c, EXIT_USAGE, NULL,
					"stage %s promotes to the pipeline's environment (no to: given): give --env ENV",
					st->name);
	}
	return -1;
}

/* `pipeline list`: the stages, numbered as the exit codes count them. */
static int list_stages(const struct run *R)
{
	const struct config_pipeline *p = &R->cfg->pipeline;
	json_t *stages = R->c->json ? json_array() : NULL;
	char what[512];

	for (size_t i = 0; i < p->nstages; i++) {
		const struct config_stage *st = &p->stages[i];

		pipeline_stage_summary(R, st, what, sizeof(what));
		if (stages)
			json_array_append_new(stages, json_pack("{si ss ss ss ss ss}", "number", (int)i + 1, "name", st->name,
								"kind", pipeline_kind_words[st->kind], "does", what, "timeout",
								DURATION_TEXT(st->timeout_ms), "when",
								st->when == CONFIG_STAGE_ALWAYS ? "always" : "success"));
		else
			printf("%2zu  %-*s  %s%s  (timeout %s)\n", i + 1, R->width, st->name, what,
			       st->when == CONFIG_STAGE_ALWAYS ? "  [when: always]" : "", DURATION_TEXT(st->timeout_ms));
	}
	if (stages)
		cli_print_json(json_pack("{s:s? so}", "env", R->c->env, "stages", stages));
	return EXIT_OK;
}

/* " ARG", quoted for a shell when it has to be ('it'\''s'). */
static void print_quoted(FILE *out, const char *arg)
{
	if (*arg && strspn(arg, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./:=@%+,-") == strlen(arg)) {
		fprintf(out, " %s", arg);
		return;
	}
	fputs(" '", out);
	for (; *arg; arg++)
		if (*arg == '\'')
			fputs("'\\''", out);
		else
			fputc(*arg, out);
	fputc('\'', out);
}

/* --dry-run: what each selected stage would run, exactly. */
static int dry_run(const struct run *R)
{
	const struct config_pipeline *p = &R->cfg->pipeline;
	const char *argv[ARGV_MAX];
	char *owned, timeout[32];

	for (size_t i = 0; i < p->nstages; i++) {
		if (!R->results[i].selected)
			continue;
		if (pipeline_stage_argv(R, &p->stages[i], argv, &owned, timeout, sizeof(timeout)) < 0)
			return cli_fail(R->c, EXIT_FAILED, NULL, "out of memory");
		fprintf(R->out, "▶ %s (%zu/%zu):", p->stages[i].name, i + 1, p->nstages);
		for (size_t k = 0; argv[k]; k++)
			print_quoted(R->out, argv[k]);
		fprintf(R->out, "\n");
		free(owned);
	}
	fprintf(R->out, "(dry run: nothing was run, in %s)\n", R->dir);
	return EXIT_OK;
}

/* The configuration (absolute path), its directory, this binary. */
static int prepare(struct run *R)
{
	const char *path = cli_config_path(R->c);
	char *slash;
	ssize_t n;
	int rc;

	if (!path)
		return cli_fail(R->c, EXIT_USAGE, NULL, "no cutover.yml here: give --config FILE");
	R->config_path = realpath(path, NULL);
	if (!R->config_path)
		return cli_fail(R->c, EXIT_USAGE, NULL, "%s: %s", path, strerror(errno));
	rc = cli_load_config(R->c, R->config_path, &R->cfg);
	if (rc)
		return rc;
	if (!R->cfg->pipeline.nstages)
		return cli_fail(R->c, EXIT_USAGE, NULL, "%s has no pipeline: (docs/pipeline.md)", R->config_path);
	R->dir = strdup(R->config_path);
	R->results = calloc(R->cfg->pipeline.nstages, sizeof(*R->results));
	if (!R->dir || !R->results)
		return cli_fail(R->c, EXIT_FAILED, NULL, "out of memory");
	slash = strrchr(R->dir, '/');
	slash[slash == R->dir ? 1 : 0] = 0;
	n = readlink("/proc/self/exe", R->self, sizeof(R->self) - 1);
	if (n < 0)
		return cli_fail(R->c, EXIT_FAILED, NULL, "cannot find this binary (/proc/self/exe): %s", strerror(errno));
	R->self[n] = 0;
	R->width = (int)strlen("stage"); /* the summary's heading */
	for (size_t i = 0; i < R->cfg->pipeline.nstages; i++) {
		int len = (int)strlen(R->cfg->pipeline.stages[i].name);

		R->width = len > R->width ? len : R->width;
	}
	return 0;
}

static int pipeline_option(struct cli *c, int opt, const char *arg)
{
	struct pipeline_options *o = c->data;

	if (opt == 'F')
		o->from = arg;
	else if (opt == 'O')
		o->only = arg;
	else if (opt == 'n')
		o->dry_run = true;
	else
		return EXIT_USAGE;
	return -1;
}

int cli_pipeline(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "from", required_argument, NULL, 'F' },
		{ "only", required_argument, NULL, 'O' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ 0 },
	};
	struct pipeline_options o = { 0 };
	struct cli c = {
		.verb = "pipeline",
		.flags = CLI_CONFIG,
		.synopsis = "run or list",
		.min_args = 1,
		.max_args = 1,
		.options = opts,
		.shortopts = "n",
		.option = pipeline_option,
		.data = &o,
	};
	struct run R = { .c = &c, .o = &o };
	char what[600];
	uint64_t t0;
	int rc = cli_parse(&c, argc, argv);

	if (rc >= 0)
		return rc;
	if (strcmp(c.args[0], "run") && strcmp(c.args[0], "list"))
		return cli_fail(&c, EXIT_USAGE, NULL, "unknown action '%s' (run or list; see --help)", c.args[0]);
	if (!strcmp(c.args[0], "list") && (o.from || o.only || o.dry_run))
		return cli_fail(&c, EXIT_USAGE, NULL, "--from, --only and --dry-run go with run, not list");
	R.out = c.json ? stderr : stdout;
	rc = prepare(&R);
	if (rc)
		goto out;
	if (!strcmp(c.args[0], "list")) {
		rc = list_stages(&R);
		goto out;
	}
	rc = select_stages(&R);
	if (rc >= 0)
		goto out;
	if (o.dry_run) {
		rc = dry_run(&R);
		goto out;
	}
	pipeline_signals_setup(&R);
	fprintf(R.out, "pipeline: %zu stages of %s\n", R.cfg->pipeline.nstages, config_describe(R.cfg, what, sizeof(what)));
	t0 = time_now_ms();
	rc = pipeline_run_stages(&R);
	print_summary(&R, rc, time_now_ms() - t0);
out:
	config_free(R.cfg);
	free(R.config_path);
	free(R.dir);
	free(R.results);
	return rc;
}


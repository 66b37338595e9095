/* main.c - entry point: `cutover VERB [options]`.
 *
 * The daemon and every CLI verb live in one binary; each verb is one file
 * in src/cli/.
 */
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"

static const struct verb {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *help;             /* NULL: hidden from the help */
} verbs[] = {
	{ "demo", cli_demo, "the shop shipped three times under load (a canary, automatic rollback)" },
	{ "daemon", cli_daemon, "run the proxy from a configuration file" },
	{ "proxy", cli_proxy, "run the proxy from command-line flags (no file)" },
	{ "check", cli_check, "validate a configuration file" },
	{ "config", cli_config, "show the effective configuration (--env ENV) and where each value comes from" },
	{ "status", cli_status, "show what the daemon serves (services, routes, targets)" },
	{ "deploy", cli_deploy, "ship a version of a service (its strategy), with automatic rollback" },
	{ "rollback", cli_rollback, "return a service to its previous version" },
	{ "restart", cli_restart, "new instances of the live version, without a failed request (new secrets)" },
	{ "pause", cli_pause, "hold a deploy in flight at its step" },
	{ "resume", cli_resume, "go on with a paused deploy" },
	{ "promote", cli_promote, "skip a deploy's remaining steps; with --from --to: promote a release" },
	{ "abort", cli_abort, "abort a deploy in flight: all traffic back on the stable version" },
	{ "approve", cli_approve, "start a deploy or promotion that awaits approval" },
	{ "reject", cli_reject, "end a deploy or promotion that awaits approval, unstarted" },
	{ "export-proof", cli_export_proof, "the signed record of what runs of a service, for a promotion" },
	{ "history", cli_history, "past deployments with their phases and results" },
	{ "audit", cli_audit, "who did what and when (deploys, rollbacks, releases)" },
	{ "logs", cli_logs, "what a service's instances wrote (-f to follow)" },
	{ "pipeline", cli_pipeline, "run the stages of pipeline: in cutover.yml (build, test, deploy, promote...)" },
	{ "release", cli_release, "add, prune or verify a release in the store" },
	{ "releases", cli_releases, "list the releases of a service" },
	{ "secrets", cli_secrets, "an environment's encrypted secrets (keygen, set, list, rm, recipients, rotate)" },
	{ "shutdown", cli_shutdown, "stop the daemon (the instances keep running unless --stop-services)" },
	{ "upgrade", cli_upgrade, "replace the running daemon with a new binary, refusing no connection" },
	{ "version", cli_version, "print the version" },
	{ "log-relay", cli_log_relay, NULL }, /* started by the supervisor (src/supervisor/relay.c) */
};

int cli_version(int argc, char **argv)
{
	struct cli c = {
		.verb = "version",
		.help = "usage: cutover version [--json]\nPrint the version (--json: {\"version\": \"...\"}).\n",
	};
	int rc = cli_parse(&c, argc, argv);

	if (rc >= 0)
		return rc;
	if (c.json)
		cli_print_json(json_pack("{ss}", "version", CUTOVER_VERSION));
	else
		printf("cutover %s\n", CUTOVER_VERSION);
	return EXIT_OK;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: cutover VERB [options]   (cutover VERB --help for more)\n\n");
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (verbs[i].help)
			fprintf(f, "  %-12s %s\n", verbs[i].name, verbs[i].help);
	fprintf(f, "\nevery verb takes --env ENV (else $CUTOVER_ENV): cutover.yml with cutover.ENV.yml merged onto it\n"
		   "every verb takes --json: its output, and its errors, as JSON on stdout\n"
		   "exit codes: 0 ok, 1 failed, 2 usage or configuration error, 3 daemon unreachable or\n"
		   "shutting down, 4 awaiting approval (deploy, promote, pipeline); pipeline: 10+N stage N failed\n");
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	if (!strcmp(argv[1], "--version"))
		return cli_version(argc - 1, argv + 1);
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (!strcmp(argv[1], verbs[i].name))
			return verbs[i].run(argc - 1, argv + 1);
	fprintf(stderr, "cutover: unknown verb '%s'\n\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}

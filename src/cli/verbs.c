/* verbs.c - the verbs main() dispatches, in the order `cutover help` lists
 * them, with the actions of those that take one.  The help of each verb and
 * action is a section of docs/cli.md (help.h); tests/unit/test_help.c
 * checks that the two match, both ways.
 */
#include <string.h>
#include "cli/cli.h"
#include "cli/help.h"

static const char *const config_actions[] = { "show", NULL };
static const char *const pipeline_actions[] = { "run", "list", NULL };
/* release.c (add, prune, verify), release-run.c (plan, run, abort,
 * approve, reject), release-report.c (list, show, notes) */
static const char *const release_actions[] = {
	"add", "prune", "verify", "plan", "run", "abort", "approve", "reject", "list", "show", "notes", NULL,
};
static const char *const secrets_actions[] = { "keygen", "set", "list", "rm", "recipients", "rotate", NULL };
static const char *const maintenance_actions[] = { "on", "off", NULL };
static const char *const state_actions[] = { "backup", "restore", "check", NULL };

const struct cli_verb cli_verbs[] = {
	{ "demo", cli_demo, NULL, false },
	{ "daemon", cli_daemon, NULL, false },
	{ "proxy", cli_proxy, NULL, false },
	{ "check", cli_check, NULL, false },
	{ "config", cli_config, config_actions, false },
	{ "status", cli_status, NULL, false },
	{ "deploy", cli_deploy, NULL, false },
	{ "rollback", cli_rollback, NULL, false },
	{ "restart", cli_restart, NULL, false },
	{ "pause", cli_pause, NULL, false },
	{ "resume", cli_resume, NULL, false },
	{ "promote", cli_promote, NULL, false },
	{ "abort", cli_abort, NULL, false },
	{ "maintenance", cli_maintenance, maintenance_actions, false },
	{ "approve", cli_approve, NULL, false },
	{ "reject", cli_reject, NULL, false },
	{ "export-proof", cli_export_proof, NULL, false },
	{ "history", cli_history, NULL, false },
	{ "audit", cli_audit, NULL, false },
	{ "logs", cli_logs, NULL, false },
	{ "pipeline", cli_pipeline, pipeline_actions, false },
	{ "release", cli_release, release_actions, false },
	{ "releases", cli_releases, NULL, false },
	{ "secrets", cli_secrets, secrets_actions, false },
	{ "state", cli_state, state_actions, false },
	{ "shutdown", cli_shutdown, NULL, false },
	{ "upgrade", cli_upgrade, NULL, false },
	{ "version", cli_version, NULL, false },
	{ "help", cli_help, NULL, false },
	{ "log-relay", cli_log_relay, NULL, true }, /* started by the supervisor (src/supervisor/relay.c) */
};
const size_t cli_nverbs = sizeof(cli_verbs) / sizeof(cli_verbs[0]);

const struct cli_verb *cli_verb_find(const char *name)
{
	for (size_t i = 0; i < cli_nverbs; i++)
		if (!strcmp(cli_verbs[i].name, name))
			return &cli_verbs[i];
	return NULL;
}

bool cli_verb_has_action(const struct cli_verb *v, const char *action)
{
	for (const char *const *a = v->actions; a && *a; a++)
		if (!strcmp(*a, action))
			return true;
	return false;
}

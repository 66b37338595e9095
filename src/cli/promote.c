/* promote.c - `cutover promote SERVICE --from ENV --to ENV [--proof FILE]`:
 * deploy to the environment --to exactly the digest that is live, healthy
 * and through its analysis in --from (docs/internals/promotion.md).
 *
 * Both environments are read from the same configuration (cutover.yml and
 * its overlays cutover.FROM.yml, cutover.TO.yml).  On one machine the
 * proof comes from the source's daemon (GET /v1/services/NAME/proof), the
 * source state's public key is offered to the target as trusted, and a
 * release the target's store lacks is copied from the source's store
 * (store_add of the stored release: the same canonical digest, checked).
 * Across machines, --proof FILE (from `cutover export-proof`) says what
 * ran, and the target's store must already hold that digest.  Either way
 * nothing is rebuilt, and a version whose content differs from the proven
 * digest is refused.  The target's daemon then checks the proof (signature,
 * trust, environment, health, analysis, soak), audits, and deploys by
 * digest; this follows it as `cutover deploy` does.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli/cli.h"
#include "config/config.h"
#include "state/proof.h"
#include "state/state.h"
#include "store/store.h"

struct promote_options {
	struct cli_follow follow;
	const char *from, *to, *proof_file;
};

static int promote_option(struct cli *c, int opt, const char *arg)
{
	struct promote_options *o = c->data;

	switch (opt) {
	case 'F': o->from = arg; return -1;
	case 'T': o->to = arg; return -1;
	case 'P': o->proof_file = arg; return -1;
	default: return cli_follow_option(c, opt, arg, &o->follow);
	}
}

/* Everything one promotion holds; released by promotion_clear(). */
struct promotion {
	struct cli *c;
	struct promote_options *o;
	const char *service;
	struct config *to, *from;          /* from: NULL with --proof */
	json_t *proof;
	char local_key[PROOF_KEY_TEXT_MAX + 1];
	struct proof p;
	bool verified;                     /* p parsed and its signature verifies */
};

static void promotion_clear(struct promotion *pr)
{
	config_free(pr->to);
	config_free(pr->from);
	json_decref(pr->proof);
}

/* The configuration of environment ENV into *ret. */
static int load_env(struct promotion *pr, const char *path, const char *env, struct config **ret)
{
	struct cli scoped = *pr->c;

	scoped.env = env;
	return cli_load_config(&scoped, path, ret);
}

/* An audit row in the target's state, as `cutover release` writes them. */
static void audit(struct promotion *pr, struct state *st, const char *action, const char *result,
		  const char *detail)
{
	char actor[96], target[200];

	cli_actor_name(actor, sizeof(actor));
	snprintf(target, sizeof(target), "%s@%s", pr->service, pr->p.version);
	struct state_audit_entry e = { .actor = actor, .actor_uid = (unsigned)getuid(), .action = action,
				       .target = target, .result = result, .detail = detail, .env = pr->to->env };
	if (state_audit_add(st, &e, NULL) < 0)
		fprintf(stderr, "cutover promote: the audit log could not be written: %s\n", state_errmsg(st));
}

/* The proof: from --proof FILE, or asked of the source's daemon (with the
 * source state's public key, trusted on this machine). */
static int get_proof(struct promotion *pr)
{
	struct cli *c = pr->c;
	json_error_t jerr;
	char path[200], *answer = NULL, err[512];
	int status, rc;

	if (pr->o->proof_file) {
		pr->proof = json_load_file(pr->o->proof_file, 0, &jerr);
		if (!pr->proof)
			return cli_fail(c, EXIT_USAGE, NULL, "--proof %s: %s (line %d)", pr->o->proof_file, jerr.text,
					jerr.line);
		return 0;
	}
	snprintf(path, sizeof(path), "/v1/services/%s/proof", pr->service);
	rc = cli_call(c, pr->from->admin_socket, "GET", path, NULL, &status, &answer);
	if (rc)
		return rc;
	pr->proof = json_loads(answer, 0, NULL);
	if (status != 200 || !pr->proof) {
		const char *e = json_string_value(json_object_get(pr->proof, "error"));
		rc = cli_fail(c, status == 404 ? EXIT_USAGE : EXIT_FAILED, json_pack("{si}", "status", status),
			      "%s: %s", pr->o->from, e ? e : answer);
		free(answer);
		return rc;
	}
	free(answer);
	if (proof_public_key_read(pr->from->state_dir, pr->local_key, sizeof(pr->local_key), err, sizeof(err)) < 0)
		pr->local_key[0] = 0; /* the target's promotion.trust must then name it */
	return 0;
}

/* Copy SERVICE VERSION from the source's store into the target's: the
 * stored release of the source, verified, added to the target with the
 * same canonical digest.  Returns 0 or an exit code after cli_fail(). */
static int copy_release(struct promotion *pr, struct state *to_st)
{
	struct cli *c = pr->c;
	struct state *from_st = NULL;
	struct state_release rel = { 0 };
	struct store_result res = { 0 };
	char err[1024], store[4200], detail[400];
	int rc = 0, r;

	r = state_open_existing(pr->from->state_dir, &from_st, err, sizeof(err));
	if (r == 0)
		r = store_get(from_st, pr->service, pr->p.version, &rel);
	if (r < 0) {
		rc = cli_fail(c, EXIT_FAILED, NULL, "%s %s is not in the store of %s either (%s): nothing to copy",
			      pr->service, pr->p.version, pr->o->from, r == -ENOENT ? "no such release" : err);
		goto out;
	}
	if (strcmp(rel.digest, pr->p.digest)) {
		rc = cli_fail(c, EXIT_FAILED, NULL,
			      "%s's store holds %s %s as sha256:%.12s..., not the proven sha256:%.12s...: refused",
			      pr->o->from, pr->service, pr->p.version, rel.digest, pr->p.digest);
		goto out;
	}
	if (store_verify(from_st, pr->service, pr->p.version, err, sizeof(err)) < 0) {
		rc = cli_fail(c, EXIT_FAILED, NULL, "%s's release is not intact: %s", pr->o->from, err);
		goto out;
	}
	snprintf(store, sizeof(store), "%s/releases", pr->to->state_dir);
	r = store_add(to_st, store, pr->service, pr->p.version, rel.path, &res, err, sizeof(err));
	if (r < 0 || strcmp(res.release.digest, pr->p.digest)) {
		rc = cli_fail(c, EXIT_FAILED, NULL, "cannot copy %s %s into %s's store: %s", pr->service, pr->p.version,
			      pr->o->to, r < 0 ? err : "the copy has another digest");
		goto out;
	}
	snprintf(detail, sizeof(detail), "copied from the store of %s for a promotion: sha256:%s", pr->o->from,
		 pr->p.digest);
	audit(pr, to_st, "release.add", "ok", detail);
	if (!c->json)
		printf("copied %s %s (sha256:%.12s...) from %s's release store into %s's\n", pr->service, pr->p.version,
		       pr->p.digest, pr->o->from, pr->o->to);
out:
	store_result_clear(&res);
	state_release_clear(&rel);
	state_close(from_st);
	return rc;
}

/* The target's store must hold the proven digest under the proven
 * version: it does, or it is copied (one machine), or the promotion is
 * refused (another digest under that version: rebuilt; none, from a
 * file: add the very same artifact first).  Returns 0 or an exit code. */
static int target_store(struct promotion *pr)
{
	struct cli *c = pr->c;
	struct state *st = NULL;
	struct state_release rel = { 0 };
	char err[1024], why[1024];
	int rc = 0, r;

	r = state_open_existing(pr->to->state_dir, &st, err, sizeof(err));
	if (r < 0)
		return cli_fail(c, EXIT_FAILED, NULL, "%s: %s (is its daemon running?)", pr->o->to, err);
	r = store_get(st, pr->service, pr->p.version, &rel);
	if (r == 0 && strcmp(rel.digest, pr->p.digest)) {
		snprintf(why, sizeof(why),
			 "%s's store holds %s %s as sha256:%.12s..., not the sha256:%.12s... proven in %s: %s was rebuilt "
			 "under the same version; promote nothing rebuilt (give the new build a new version)",
			 pr->o->to, pr->service, pr->p.version, rel.digest, pr->p.digest, pr->o->from, pr->p.version);
		audit(pr, st, "promote", "refused", why);
		rc = cli_fail(c, EXIT_FAILED, NULL, "%s", why);
	} else if (r == -ENOENT && pr->o->proof_file) {
		snprintf(why, sizeof(why),
			 "%s %s (sha256:%.12s...) is not in %s's release store: add the very same artifact first "
			 "(`cutover release add %s %s PATH --env %s`; it must hash to sha256:%s)",
			 pr->service, pr->p.version, pr->p.digest, pr->o->to, pr->service, pr->p.version, pr->o->to,
			 pr->p.digest);
		audit(pr, st, "promote", "refused", why);
		rc = cli_fail(c, EXIT_FAILED, NULL, "%s", why);
	} else if (r == -ENOENT) {
		rc = copy_release(pr, st);
	} else if (r < 0) {
		rc = cli_fail(c, EXIT_FAILED, NULL, "%s: cannot read its release store: %s", pr->o->to, state_errmsg(st));
	}
	state_release_clear(&rel);
	state_close(st);
	return rc;
}

/* Check what can be checked here before anything is copied: a proof that
 * does not parse or verify is left to the target's daemon to refuse (and
 * audit); one of another service is a usage error. */
static int check_proof(struct promotion *pr)
{
	char err[512];

	if (proof_parse(pr->proof, &pr->p, err, sizeof(err)) < 0 || proof_verify(&pr->p) < 0)
		return 0;
	if (strcmp(pr->p.service, pr->service))
		return cli_fail(pr->c, EXIT_USAGE, NULL, "the proof is of %s, not of %s", pr->p.service, pr->service);
	pr->verified = true;
	return 0;
}

/* POST /v1/promote to the target's daemon, and follow the deployment. */
static int ask_target(struct promotion *pr)
{
	json_t *req = json_pack("{s:s, s:s, s:O}", "service", pr->service, "from", pr->o->from, "proof", pr->proof);
	char *body;
	int rc;

	if (req && pr->local_key[0])
		json_object_set_new(req, "local_key", json_string(pr->local_key));
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (!body)
		return cli_fail(pr->c, EXIT_FAILED, NULL, "out of memory");
	rc = cli_follow_deploy(pr->c, &pr->o->follow, false, pr->to->admin_socket, "/v1/promote", body);
	free(body);
	return rc;
}

int cli_promote_env(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "from", required_argument, NULL, 'F' },
		{ "to", required_argument, NULL, 'T' },
		{ "proof", required_argument, NULL, 'P' },
		{ "timeout", required_argument, NULL, 't' },
		{ "wait", no_argument, NULL, 'w' },
		{ 0 },
	};
	struct promote_options o = { .follow = CLI_FOLLOW_DEFAULTS };
	struct cli c = {
		.verb = "promote",
		.flags = CLI_CONFIG,
		.synopsis = "SERVICE",
		.min_args = 1,
		.max_args = 1,
		.options = opts,
		.shortopts = "t:w",
		.option = promote_option,
		.data = &o,
	};
	struct promotion pr = { .c = &c, .o = &o };
	const char *path;
	int rc = cli_parse(&c, argc, argv);

	if (rc >= 0)
		return rc;
	pr.service = c.args[0];
	if (!o.from || !o.to)
		return cli_fail(&c, EXIT_USAGE, NULL, "expected both --from ENV and --to ENV (see --help)");
	if (!config_env_name_valid(o.from) || !config_env_name_valid(o.to) || !strcmp(o.from, o.to))
		return cli_fail(&c, EXIT_USAGE, NULL, "--from and --to: two different environment names, got '%s' and '%s'",
				o.from, o.to);
	if (c.env && strcmp(c.env, o.to))
		return cli_fail(&c, EXIT_USAGE, NULL, "--env %s: the target is --to %s (leave --env out)", c.env, o.to);
	c.env = o.to; /* what the messages name (cutover approve ... --env TO) */
	path = cli_config_path(&c);
	if (!path)
		return cli_fail(&c, EXIT_USAGE, NULL,
				"no cutover.yml here: give --config FILE, the configuration of both environments");
	rc = load_env(&pr, path, o.to, &pr.to);
	if (!rc && !o.proof_file)
		rc = load_env(&pr, path, o.from, &pr.from);
	if (!rc)
		rc = get_proof(&pr);
	if (!rc)
		rc = check_proof(&pr);
	if (!rc && pr.verified)
		rc = target_store(&pr);
	if (!rc)
		rc = ask_target(&pr);
	promotion_clear(&pr);
	return rc;
}

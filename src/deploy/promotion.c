/* promotion.c - the same artifact from one environment to the next
 * (docs/internals/promotion.md).
 *
 * The source's side: deployer_proof() states what runs here of a service
 * (its version, the digest of its release, whether every instance is
 * healthy, since when it has been live after its deployment finished done)
 * and signs it with this state's key (state/proof.c), which
 * deployer_load_signer() loads at start.  The target's side:
 * deployer_promote() checks a proof (signature, trusted key, environment,
 * service, health, analysis passed, soak) and then deploys exactly that
 * digest, by the normal deploy path (deployer_deploy: approval, the store's
 * digest checked when the deployment begins).  The loop thread only signs
 * and verifies (microseconds); the key file is read at start.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "base/log.h"
#include "base/util.h"
#include "deploy/deploy-internal.h"
#include "proxy/proxy-t.h"
#include "state/proof.h"
#include "state/state.h"

void deployer_load_signer(struct deployer *d, const char *state_dir)
{
	char err[256];

	d->signer = proof_signer_free(d->signer);
	if (proof_signer_load(state_dir, &d->signer, err, sizeof(err)) < 0) {
		snprintf(d->signer_error, sizeof(d->signer_error), "this daemon has no proof key: %s", err);
		log_error("%s (proofs of what runs here are refused)", d->signer_error);
		return;
	}
	d->signer_error[0] = 0;
	log_info("proof key %s (%s/proof.pub)", proof_signer_key(d->signer), state_dir);
}

/* The environment's name as people read it: "staging", or a phrase for a
 * daemon run without --env. */
static const char *env_text(const char *env)
{
	return env && *env ? env : "an environment without a name (a daemon run without --env)";
}

int deployer_proof(struct deployer *d, const char *service, json_t **ret, char *err, size_t errlen)
{
	const struct config_service *cs = deployer_config(d, service);
	const struct config *cfg = d->p->cfg;
	struct managed *m = managed_get(d, service, false);
	struct group *live = m ? m->live : NULL;
	struct proof p = { 0 };
	json_t *j;

	if (!cs || !cs->run) {
		snprintf(err, errlen, cs ? "service '%s' is not managed by cutover (it has targets, no `run`)"
					 : "unknown service '%s'", service);
		return -ENOENT;
	}
	if (!live || !live->n) {
		snprintf(err, errlen, "%s has no version live in %s: nothing to prove", service, env_text(cfg->env));
		return -ESRCH;
	}
	if (!d->signer) {
		snprintf(err, errlen, "%s", d->signer_error[0] ? d->signer_error : "this daemon has no proof key");
		return -EACCES;
	}
	snprintf(p.env, sizeof(p.env), "%s", cfg->env ? cfg->env : "");
	snprintf(p.service, sizeof(p.service), "%s", service);
	snprintf(p.version, sizeof(p.version), "%s", live->version);
	snprintf(p.digest, sizeof(p.digest), "%s", group_digest(live));
	p.live_since = live->live_since;
	p.healthy = group_usable(live, true) && !group_crashed(live);
	p.exported_at = deploy_wall_ms();
	if (proof_sign(&p, d->signer) < 0) {
		snprintf(err, errlen, "cannot state what runs of %s: %s %s (release %s) is not something a proof can say",
			 service, live->version, p.digest[0] ? p.digest : "?", live->release_dir);
		return -EINVAL;
	}
	j = proof_json(&p);
	if (!j) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	*ret = j;
	return 0;
}

/* Whether p's key is one the target trusts: promotion.trust, or the key of
 * the source's state that the CLI read on this machine. */
static bool trusted(const struct config_promotion *rule, const struct proof *p, const char *local_key)
{
	for (size_t i = 0; i < rule->ntrust; i++)
		if (!strcmp(rule->trust[i], p->key))
			return true;
	return local_key && *local_key && !strcmp(local_key, p->key);
}

/* The checks of a promotion, in order; 0, or -errno with the sentence. */
static int promotion_check(struct deployer *d, const struct promote_request *req, struct proof *p, char *err,
			   size_t errlen)
{
	const struct config *cfg = d->p->cfg;
	const struct config_promotion *rule = &cfg->promotion;
	const char *here = env_text(cfg->env);
	int64_t ran;
	int r;

	if (proof_parse(req->proof, p, err, errlen) < 0)
		return -EINVAL;
	r = proof_verify(p);
	if (r < 0) {
		snprintf(err, errlen, r == -EBADMSG
			 ? "the proof does not verify: a signed field (env, service, version, digest, live_since, healthy, "
			   "exported_at, key) or the signature was changed after it was signed: refused"
			 : "the proof's signature is not an Ed25519 signature in base64: refused");
		return -EBADMSG;
	}
	if (!trusted(rule, p, req->local_key)) {
		snprintf(err, errlen, "the proof is signed by %s, which %s does not trust: add that key (the source's "
			 "STATE_DIR/proof.pub) to promotion.trust", p->key, here);
		return -EPERM;
	}
	if (!req->from || strcmp(req->from, p->env)) {
		snprintf(err, errlen, "the proof is from %s, not from %s", env_text(p->env), req->from ? req->from : "-");
		return -EINVAL;
	}
	if (rule->from && strcmp(rule->from, p->env)) {
		snprintf(err, errlen, "%s promotes from %s only (promotion.from), not from %s", here, rule->from, p->env);
		return -EPERM;
	}
	if (strcmp(p->service, req->service)) {
		snprintf(err, errlen, "the proof is of %s, not of %s", p->service, req->service);
		return -EINVAL;
	}
	if (!p->healthy) {
		snprintf(err, errlen, "%s (sha256:%.12s...) was not healthy in %s when the proof was exported: not "
			 "proven", p->version, p->digest, p->env);
		return -EAGAIN;
	}
	if (!p->live_since) {
		snprintf(err, errlen, "%s (sha256:%.12s...) has not run in %s through its analysis yet (its deployment "
			 "there is not done): not proven", p->version, p->digest, p->env);
		return -EAGAIN;
	}
	ran = p->exported_at - p->live_since;
	if (ran < (int64_t)rule->soak_ms) {
		snprintf(err, errlen, "%s (sha256:%.12s...) has run %s in %s; soak is %s: %s left", p->version, p->digest,
			 DEPLOY_SPAN(ran, false), p->env, DURATION_TEXT(rule->soak_ms), DEPLOY_SPAN((int64_t)rule->soak_ms - ran, true));
		return -EAGAIN;
	}
	return 0;
}

int64_t deployer_promote(struct deployer *d, const struct promote_request *req, char *err, size_t errlen)
{
	struct proof p = { 0 };
	char since[40], why[200];
	int r = promotion_check(d, req, &p, err, errlen);

	if (r < 0) {
		record_audit(d, req->who, "promote", req->service, p.version[0] ? p.version : NULL, "refused", err);
		return r;
	}
	state_format_time(p.live_since, since, sizeof(since));
	snprintf(why, sizeof(why), "promotion from %s: sha256:%.12s..., live there since %s (%s when proven)", p.env,
		 p.digest, since, DEPLOY_SPAN(p.exported_at - p.live_since, false));
	struct deploy_request dr = { .service = req->service, .version = p.version, .digest = p.digest,
				     .promoted_from = p.env, .why = why, .who = req->who };
	return deployer_deploy(d, &dr, err, errlen);
}

/* promotion.c - the top-level sections that govern how a release reaches
 * an environment: approval: (who must say yes before a deploy or a
 * promotion starts) and promotion: (which environment this one promotes
 * from, how long a version must have run there, and whose signed proofs
 * of what ran are trusted).
 *
 * Both are keyword_load_fns of the top-level table (load.c), usually
 * written in an environment's overlay (required only in prod).  The
 * design is in docs/internals/promotion.md.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "config/config-internal.h"

#define APPROVAL_TIMEOUT_MAX_MS (30ull * 24 * 3600 * 1000) /* 30 days */
#define SOAK_MAX_MS (365ull * 24 * 3600 * 1000)

/* true / false (also on / off) into the bool at kw->offset. */
static int load_bool(struct loader *L, const struct ynode *value, void *obj, const struct keyword *kw)
{
	static const char *const words[] = { "false", "true", "off", "on" };
	size_t i;
	int r = load_word(L, value, words, ARRAY_SIZE(words), "true or false", &i);

	if (r >= 0)
		*(bool *)(void *)((char *)obj + kw->offset) = i % 2 == 1;
	return r;
}

static const struct keyword approval_keywords[] = {
	{ "required", load_bool, offsetof(struct config_approval, required), 0, 0, 0 },
	{ "timeout", keyword_duration, offsetof(struct config_approval, timeout_ms), 1000, APPROVAL_TIMEOUT_MAX_MS, 0 },
	{ "distinct", load_bool, offsetof(struct config_approval, distinct), 0, 0, 0 },
};

static const struct section approval_section =
	SECTION("required, none, or a mapping {required, timeout, distinct}", true, approval_keywords);

int load_approval(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	struct config_approval *a = &((struct config *)obj)->approval;
	static const char *const words[] = { "none", "required" };
	size_t i;
	int r;

	if (n->kind == YNODE_SCALAR && !ynode_is_null(n)) {
		/* the short form: `approval: required` (or none) */
		r = load_word(L, n, words, ARRAY_SIZE(words), "required, none, or a mapping {required, timeout, distinct}",
			      &i);
		if (r >= 0)
			a->required = i == 1;
		return r;
	}
	r = section_load(L, n, &approval_section, a, NULL);
	return r < 0 ? r : 0;
}

/* "ed25519:" and 32 bytes in standard base64: NULL when key is one, else
 * the reason. */
static const char *check_key(const char *key)
{
	unsigned char raw[crypto_sign_PUBLICKEYBYTES + 1];
	size_t len = 0;
	const char *b64 = key + strlen("ed25519:");

	if (strncmp(key, "ed25519:", strlen("ed25519:")))
		return "must be a proof key, \"ed25519:\" and its base64 (STATE_DIR/proof.pub of the source)";
	if (strlen(key) > CONFIG_TRUST_KEY_MAX ||
	    sodium_base642bin(raw, sizeof(raw), b64, strlen(b64), NULL, &len, NULL, sodium_base64_VARIANT_ORIGINAL) ||
	    len != crypto_sign_PUBLICKEYBYTES)
		return "must be \"ed25519:\" and 32 bytes in base64 (44 characters), as STATE_DIR/proof.pub of the source "
		       "says";
	return NULL;
}

static int promotion_trust(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	struct config_promotion *p = obj;
	const char *why;
	size_t i, j, saved;
	int r = expect_list(L, n, true, "a list of proof keys (\"ed25519:...\")");

	if (r != 0)
		return r < 0 ? r : 0;
	if (n->nitems > CONFIG_TRUST_MAX)
		return fail(L, n, "at most %d keys, got %zu", CONFIG_TRUST_MAX, n->nitems);
	p->ntrust = 0;
	for (i = 0; i < n->nitems; i++) {
		const struct ynode *k = n->items[i];
		saved = field_push_index(L, i);
		r = expect_value(L, k, "a proof key (\"ed25519:...\")");
		if (r >= 0 && (why = check_key(k->value)))
			r = fail(L, k, "%s, got %s", why, QUOTED(k->value));
		for (j = 0; r >= 0 && j < p->ntrust; j++)
			if (!strcmp(p->trust[j], k->value))
				r = fail(L, k, "key %s is listed twice (same as trust[%zu])", QUOTED(k->value), j);
		field_pop(L, saved);
		if (r < 0)
			return r;
		memcpy(p->trust[p->ntrust++], k->value, strlen(k->value) + 1);
	}
	return 0;
}

static int promotion_from(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	int r = expect_value(L, n, "an environment name");

	if (r < 0)
		return r;
	if (!config_env_name_valid(n->value))
		return fail(L, n, "must be an environment name ([a-z0-9][a-z0-9_-]*, at most 32 characters), got %s",
			    QUOTED(n->value));
	return set_string(L, &((struct config_promotion *)obj)->from, n->value);
}

static const struct keyword promotion_keywords[] = {
	{ "from", promotion_from, 0, 0, 0, 0 },
	{ "soak", keyword_duration, offsetof(struct config_promotion, soak_ms), 0, SOAK_MAX_MS, 0 },
	{ "trust", promotion_trust, 0, 0, 0, 0 },
};

static const struct section promotion_section = SECTION("a mapping {from, soak, trust}", true, promotion_keywords);

int load_promotion(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	int r = section_load(L, n, &promotion_section, &((struct config *)obj)->promotion, NULL);

	return r < 0 ? r : 0;
}

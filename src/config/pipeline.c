/* pipeline.c - the top-level pipeline: section, the stages that `cutover
 * pipeline run` runs in order (src/cli/pipeline.c; docs/pipeline.md).
 *
 * pipeline: is a list; each stage is a mapping with a unique name and
 * exactly one of four actions: run (a shell command, run in the directory
 * of cutover.yml), or one of cutover's own verbs with its arguments: deploy
 * {service, version, env, wait}, promote {service, from, to, wait} and
 * release FILE (or {file, env, wait}).  Besides: timeout (default 30m), env (the
 * variables added to the stage's environment) and when (success, the
 * default, or always: also after a failure).
 *
 * As everywhere, the variables: of the configuration are substituted when
 * the file is loaded (in run, env values and the verbs' arguments); ${ENV},
 * the environment's name, is kept in run and env values for the pipeline
 * to substitute when it runs.  A keyword_load_fn of the top-level table
 * (load.c) reads the list; finish_pipeline() then checks the services the
 * verbs name against services:, which is read last.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "config/config-internal.h"

#define STAGE_NAME_MAX 63
#define STAGE_TIMEOUT_DEFAULT_MS (30ull * 60 * 1000)
#define STAGE_TIMEOUT_MAX_MS (24ull * 3600 * 1000)
#define STAGE_VALUE_MAX 1024          /* a service, version or file of a verb */

static bool stage_name_valid(const char *s)
{
	size_t i;

	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return false;
	for (i = 1; s[i]; i++)
		if (i >= STAGE_NAME_MAX ||
		    !((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
			return false;
	return true;
}

/* ---- the arguments of cutover's verbs ------------------------------------ */

/* A value with the variables: of the configuration substituted, into
 * *dst: a service name (as services: writes them) when service, else a
 * word without spaces (a version). */
static int verb_value(struct loader *L, const struct ynode *n, bool service, char **dst)
{
	int r = expect_value(L, n, service ? "a service name" : "a version");

	if (r >= 0 && !n->value[0])
		r = fail(L, n, "must not be empty");
	if (r >= 0)
		r = check_variables(L, n, VAR_USER, false, NULL);
	if (r >= 0)
		r = expand_variables(L, n, STAGE_VALUE_MAX, dst);
	if (r < 0)
		return r;
	if (service && !stage_name_valid(*dst))
		return fail(L, n, "service names match [a-z0-9][a-z0-9_-]{0,62}, got %s", QUOTED(*dst));
	if (!service && (!**dst || strpbrk(*dst, " \t\r\n")))
		return fail(L, n, "must be a version without spaces, got %s", QUOTED(*dst));
	return 0;
}

static int verb_service(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	return verb_value(L, n, true, &((struct config_stage *)obj)->service);
}

static int verb_version(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	return verb_value(L, n, false, &((struct config_stage *)obj)->version);
}

/* An environment name, into the char * at kw->offset. */
static int verb_env(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	int r = expect_value(L, n, "an environment name");

	if (r < 0)
		return r;
	if (!config_env_name_valid(n->value))
		return fail(L, n, "must be an environment name ([a-z0-9][a-z0-9_-]*, at most 32 characters), got %s",
			    QUOTED(n->value));
	return set_string(L, (char **)(void *)((char *)obj + kw->offset), n->value);
}

/* true or false into the bool at kw->offset. */
static int verb_bool(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	static const char *const words[] = { "false", "true" };
	size_t i;
	int r = load_word(L, n, words, ARRAY_SIZE(words), "true or false", &i);

	if (r >= 0)
		*(bool *)(void *)((char *)obj + kw->offset) = i == 1;
	return r;
}

/* The release file, relative to the file it is written in. */
static int verb_file(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	int r = expect_value(L, n, "the path of a release file");

	if (r >= 0 && strstr(n->value, "${"))
		return fail(L, n, "variables are not substituted in a path: write it out, got %s", QUOTED(n->value));
	if (r >= 0)
		r = load_path(L, n, "the path of a release file", &((struct config_stage *)obj)->file);
	return r;
}

#define STAGE_FIELD(key, load, field) { key, (load), offsetof(struct config_stage, field), 0, 0, 0 }

enum { VERB_SERVICE, VERB_VERSION, VERB_ENV, VERB_WAIT, VERB_FROM, VERB_TO, VERB_FILE, VERB_NKEYS };

static const struct keyword verb_keywords[VERB_NKEYS] = {
	[VERB_SERVICE] = STAGE_FIELD("service", verb_service, service),
	[VERB_VERSION] = STAGE_FIELD("version", verb_version, version),
	[VERB_ENV] = STAGE_FIELD("env", verb_env, target_env),
	[VERB_WAIT] = STAGE_FIELD("wait", verb_bool, wait),
	[VERB_FROM] = STAGE_FIELD("from", verb_env, from),
	[VERB_TO] = STAGE_FIELD("to", verb_env, target_env),
	[VERB_FILE] = STAGE_FIELD("file", verb_file, file),
};

/* What each verb takes: its keywords, those it requires (bit k for
 * verb_keywords[k]), and what it must be. */
static const struct verb {
	const char *key;
	unsigned takes, requires;
	const char *expected;
} verbs[] = {
	[CONFIG_STAGE_DEPLOY] = { "deploy", 1u << VERB_SERVICE | 1u << VERB_VERSION | 1u << VERB_ENV | 1u << VERB_WAIT,
				  1u << VERB_SERVICE | 1u << VERB_VERSION, "a mapping {service, version, env, wait}" },
	[CONFIG_STAGE_PROMOTE] = { "promote", 1u << VERB_SERVICE | 1u << VERB_FROM | 1u << VERB_TO | 1u << VERB_WAIT,
				   1u << VERB_SERVICE | 1u << VERB_FROM, "a mapping {service, from, to, wait}" },
	[CONFIG_STAGE_RELEASE] = { "release", 1u << VERB_FILE | 1u << VERB_ENV | 1u << VERB_WAIT, 1u << VERB_FILE,
				   "a release file, or a mapping {file, env, wait}" },
};

/* The mapping n of verb kind (deploy:, promote:, release:) into st. */
static int load_verb(struct loader *L, const struct ynode *n, struct config_stage *st, enum config_stage_kind kind)
{
	const struct verb *v = &verbs[kind];
	const struct ynode *keys[VERB_NKEYS] = { 0 }, *values[VERB_NKEYS] = { 0 };
	const struct section s = { v->expected, false, verb_keywords, VERB_NKEYS };
	size_t k, saved;
	int r;

	st->kind = kind;
	if (kind == CONFIG_STAGE_RELEASE && n->kind == YNODE_SCALAR && !ynode_is_null(n))
		return verb_file(L, n, st, &verb_keywords[VERB_FILE]);  /* the short form: release: FILE */
	r = section_collect(L, n, &s, keys, values);
	for (k = 0; r >= 0 && k < VERB_NKEYS; k++) {
		if (!keys[k] && !(v->requires & 1u << k))
			continue;
		saved = field_push_key(L, verb_keywords[k].key);
		if (!keys[k])
			r = fail(L, n, "is required (%s: takes %s)", v->key, v->expected);
		else if (!(v->takes & 1u << k))
			r = fail(L, keys[k], "%s: takes %s", v->key, v->expected);
		else
			r = verb_keywords[k].load(L, values[k], st, &verb_keywords[k]);
		field_pop(L, saved);
	}
	if (r >= 0 && kind == CONFIG_STAGE_PROMOTE && st->target_env && !strcmp(st->target_env, st->from)) {
		saved = field_push_key(L, "to");
		r = fail(L, values[VERB_TO], "must differ from from: (both %s)", st->from);
		field_pop(L, saved);
	}
	return r;
}

/* ---- a stage ---------------------------------------------------------------- */

static int stage_run(struct loader *L, const struct ynode *n, struct config_stage *st)
{
	unsigned seen = 0;
	int r = load_command(L, n, VAR_USER | VAR_ENV, &st->run, &seen);

	st->kind = CONFIG_STAGE_RUN;
	st->uses_env |= (seen & VAR_ENV) != 0;
	return r;
}

static const char *stage_env_reserved(const char *name)
{
	return !strcmp(name, "CUTOVER") || !strcmp(name, "CUTOVER_ENV") || !strcmp(name, "CUTOVER_CONFIG") ||
			       !strcmp(name, "CUTOVER_STAGE")
		       ? "is set by the pipeline itself (docs/pipeline.md)"
		       : NULL;
}

static int stage_env(struct loader *L, const struct ynode *n, struct config_stage *st)
{
	unsigned seen = 0;
	int r = load_env_map(L, n, VAR_USER | VAR_ENV, stage_env_reserved, &st->env, &st->nenv, &seen);

	st->uses_env |= (seen & VAR_ENV) != 0;
	return r;
}

static int stage_when(struct loader *L, const struct ynode *n, struct config_stage *st)
{
	static const char *const words[] = { [CONFIG_STAGE_ON_SUCCESS] = "success", [CONFIG_STAGE_ALWAYS] = "always" };
	size_t i;
	int r = load_word(L, n, words, ARRAY_SIZE(words), "success or always", &i);

	if (r >= 0)
		st->when = (enum config_stage_when)i;
	return r;
}

enum {
	STAGE_NAME, STAGE_RUN, STAGE_DEPLOY, STAGE_PROMOTE, STAGE_RELEASE, STAGE_TIMEOUT, STAGE_ENV, STAGE_WHEN,
	STAGE_NKEYS,
};

static const struct keyword stage_keywords[STAGE_NKEYS] = {
	[STAGE_NAME] = { "name", NULL, 0, 0, 0, 0 },
	[STAGE_RUN] = { "run", NULL, 0, 0, 0, 0 },
	[STAGE_DEPLOY] = { "deploy", NULL, 0, 0, 0, 0 },
	[STAGE_PROMOTE] = { "promote", NULL, 0, 0, 0, 0 },
	[STAGE_RELEASE] = { "release", NULL, 0, 0, 0, 0 },
	[STAGE_TIMEOUT] = { "timeout", keyword_duration, offsetof(struct config_stage, timeout_ms), 1000,
			    STAGE_TIMEOUT_MAX_MS, 0 },
	[STAGE_ENV] = { "env", NULL, 0, 0, 0, 0 },
	[STAGE_WHEN] = { "when", NULL, 0, 0, 0, 0 },
};

static const struct section stage_section =
	SECTION("a mapping {name, and one of run, deploy, promote, release}", false, stage_keywords);

/* The actions a stage may have, in the order of the table. */
static const int actions[] = { STAGE_RUN, STAGE_DEPLOY, STAGE_PROMOTE, STAGE_RELEASE };

/* Exactly one action: *ret gets its keyword. */
static int stage_action(struct loader *L, const struct ynode *n, const struct ynode *const *keys, int *ret)
{
	int found = -1;

	for (size_t i = 0; i < ARRAY_SIZE(actions); i++) {
		int k = actions[i];

		if (!keys[k])
			continue;
		if (found >= 0) {
			size_t saved = field_push_key(L, stage_keywords[k].key);
			int r = fail(L, keys[k], "a stage does one thing: %s: (line %d) and %s: are both given",
				     stage_keywords[found].key, keys[found]->line, stage_keywords[k].key);

			field_pop(L, saved);
			return r;
		}
		found = k;
	}
	if (found < 0)
		return fail(L, n, "a stage needs one of run: (a shell command), deploy:, promote: or release:");
	*ret = found;
	return 0;
}

/* Stage i: the mapping n into p->stages[i] (zeroed). */
static int load_stage(struct loader *L, const struct ynode *n, struct config_pipeline *p, size_t i)
{
	struct config_stage *st = &p->stages[i];
	const struct ynode *keys[STAGE_NKEYS] = { 0 }, *values[STAGE_NKEYS] = { 0 };
	int action = -1, r;
	size_t k, j, saved;

	st->timeout_ms = STAGE_TIMEOUT_DEFAULT_MS;
	st->line = n->line;
	r = section_collect(L, n, &stage_section, keys, values);
	if (r >= 0 && !keys[STAGE_NAME])
		r = fail(L, n, "a stage needs a name: ([a-z0-9][a-z0-9_-]*)");
	if (r >= 0)
		r = stage_action(L, n, keys, &action);
	for (k = 0; r >= 0 && k < STAGE_NKEYS; k++) {
		const struct ynode *v = values[k];

		if (!v)
			continue;
		saved = field_push_key(L, stage_keywords[k].key);
		if (k == STAGE_NAME && (r = expect_value(L, v, "a stage name")) >= 0) {
			if (!stage_name_valid(v->value))
				r = fail(L, v, "stage names must match [a-z0-9][a-z0-9_-]{0,62}, got %s", QUOTED(v->value));
			for (j = 0; r >= 0 && j < i; j++)
				if (!strcmp(p->stages[j].name, v->value))
					r = fail(L, v, "stage %s is named twice (also pipeline[%zu], line %d)",
						 QUOTED(v->value), j, p->stages[j].line);
			if (r >= 0)
				r = set_string(L, &st->name, v->value);
		} else if (k == STAGE_RUN) {
			r = stage_run(L, v, st);
		} else if (k == STAGE_DEPLOY || k == STAGE_PROMOTE || k == STAGE_RELEASE) {
			r = load_verb(L, v, st, k == STAGE_DEPLOY ? CONFIG_STAGE_DEPLOY :
				      k == STAGE_PROMOTE ? CONFIG_STAGE_PROMOTE : CONFIG_STAGE_RELEASE);
		} else if (k == STAGE_ENV) {
			r = stage_env(L, v, st);
		} else if (k == STAGE_WHEN) {
			r = stage_when(L, v, st);
		} else if (k == STAGE_TIMEOUT) {
			r = keyword_duration(L, v, st, &stage_keywords[k]);
		}
		field_pop(L, saved);
	}
	return r;
}

int load_pipeline(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	struct config_pipeline *p = &((struct config *)obj)->pipeline;
	size_t i, saved;
	int r = expect_list(L, n, true, "a list of stages, each {name, and one of run, deploy, promote, release}");

	if (r != 0)
		return r < 0 ? r : 0;
	if (n->nitems == 0)
		return fail(L, n, "at least one stage (leave pipeline: out for none)");
	if (n->nitems > CONFIG_PIPELINE_STAGES_MAX)
		return fail(L, n, "at most %d stages, got %zu", CONFIG_PIPELINE_STAGES_MAX, n->nitems);
	p->stages = calloc(n->nitems, sizeof(*p->stages));
	if (!p->stages)
		return fail_oom(L);
	for (i = 0; i < n->nitems; i++) {
		saved = field_push_index(L, i);
		p->nstages++;
		r = load_stage(L, n->items[i], p, i);
		field_pop(L, saved);
		if (r < 0)
			return r;
	}
	return 0;
}

int finish_pipeline(struct loader *L, const struct ynode *n)
{
	const struct config_pipeline *p = &L->cfg->pipeline;
	size_t i, j, saved;
	int r = 0;

	for (i = 0; r == 0 && n && n->kind == YNODE_LIST && i < p->nstages && i < n->nitems; i++) {
		const struct config_stage *st = &p->stages[i];
		const char *verb = st->kind == CONFIG_STAGE_DEPLOY ? "deploy" : "promote";
		const struct ynode *at;

		if (st->kind != CONFIG_STAGE_DEPLOY && st->kind != CONFIG_STAGE_PROMOTE)
			continue;
		for (j = 0; j < L->cfg->nservices; j++)
			if (!strcmp(L->cfg->services[j].name, st->service))
				break;
		if (j < L->cfg->nservices)
			continue;
		at = ynode_map_get(n->items[i], verb);
		at = at && at->kind == YNODE_MAP ? ynode_map_get(at, "service") : at;
		saved = field_push_key(L, "pipeline");
		field_push_index(L, i);
		field_push_key(L, verb);
		field_push_key(L, "service");
		r = fail(L, at, "unknown service %s (not in services:)", QUOTED(st->service));
		field_pop(L, saved);
	}
	return r;
}

void pipeline_release(struct config_pipeline *p)
{
	for (size_t i = 0; i < p->nstages; i++) {
		struct config_stage *st = &p->stages[i];

		free(st->name);
		free(st->run);
		free(st->service);
		free(st->version);
		free(st->file);
		free(st->from);
		free(st->target_env);
		for (size_t j = 0; j < st->nenv; j++) {
			free(st->env[j].name);
			free(st->env[j].value);
		}
		free(st->env);
	}
	free(p->stages);
	p->stages = NULL;
	p->nstages = 0;
}

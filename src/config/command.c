/* command.c - shell commands of a managed service (build, run,
 * deploy.smoke), the ${VARIABLES} cutover substitutes in them and in
 * environment values, and the configuration's own variables (variables:).
 *
 * Two kinds of ${NAME}: cutover's own (${PORT}, ${VERSION}, ...), whose
 * values are only known when an instance starts, are kept in the strings
 * and substituted at launch; those of variables: (an environment's
 * database, say, which an overlay changes) are substituted here, when the
 * file is loaded, so the rest of cutover never sees them.  A typo such as
 * ${PROT}, or a variable used where cutover has no value for it (${PORT} in
 * the build, ${URL} outside smoke, any variables: in the build, which must
 * give the same release in every environment), fails here rather than at
 * the first deploy.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config/config-internal.h"

static const struct variable {
	const char *name;
	unsigned bit;
} variables[] = {
	{ "PORT", VAR_PORT }, { "VERSION", VAR_VERSION }, { "SERVICE", VAR_SERVICE },
	{ "RELEASE_DIR", VAR_RELEASE_DIR }, { "URL", VAR_URL }, { "ENV", VAR_ENV },
};

bool env_name_valid_len(const char *s, size_t len)
{
	size_t i;

	if (!len || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (i = 1; i < len; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
			return false;
	return true;
}

/* "${PORT}, ${VERSION} and ${URL}" for the variables in `allowed`. */
static const char *variables_text(unsigned allowed, char *buf, size_t size)
{
	size_t i, count = 0, shown = 0, o = 0;

	buf[0] = 0;
	for (i = 0; i < ARRAY_SIZE(variables); i++)
		count += (allowed & variables[i].bit) != 0;
	for (i = 0; i < ARRAY_SIZE(variables) && o < size; i++) {
		if (!(allowed & variables[i].bit))
			continue;
		o += (size_t)snprintf(buf + o, size - o, "%s${%s}",
				      shown == 0 ? "" : shown + 1 == count ? " and " : ", ", variables[i].name);
		shown++;
	}
	return buf;
}

#define VARIABLES_TEXT(allowed) variables_text((allowed), (char[128]){ 0 }, 128)

/* The variable of variables: named name[0..len), or NULL. */
static const struct config_variable *user_variable(const struct loader *L, const char *name, size_t len)
{
	for (size_t i = 0; i < L->cfg->nvariables; i++)
		if (strlen(L->cfg->variables[i].name) == len && !memcmp(L->cfg->variables[i].name, name, len))
			return &L->cfg->variables[i];
	return NULL;
}

/* "DB, HOST" (the names of variables:, cut short with "..."), or "" if
 * none.  size >= 8. */
static const char *user_variables_text(const struct loader *L, char *buf, size_t size)
{
	size_t o = 0;

	buf[0] = 0;
	for (size_t i = 0; i < L->cfg->nvariables; i++) {
		int w = snprintf(buf + o, size - o, "%s%s", i ? ", " : "", L->cfg->variables[i].name);

		if (w < 0 || o + (size_t)w + 6 > size) {
			snprintf(buf + o, size - o, "%s...", i ? ", " : "");
			break;
		}
		o += (size_t)w;
	}
	return buf;
}

/* The closest name to var among cutover's `allowed` variables and, with
 * VAR_USER, those of variables:, or NULL. */
static const char *suggest_variable(const struct loader *L, const char *var, unsigned allowed)
{
	const char *suggest = NULL;
	size_t i, d, best = SIZE_MAX;

	for (i = 0; i < ARRAY_SIZE(variables); i++) {
		d = edit_distance(var, variables[i].name);
		if ((allowed & variables[i].bit) && d <= (strlen(variables[i].name) >= 5 ? 2u : 1u) && d < best) {
			best = d;
			suggest = variables[i].name;
		}
	}
	for (i = 0; (allowed & VAR_USER) && i < L->cfg->nvariables; i++) {
		const char *name = L->cfg->variables[i].name;

		d = edit_distance(var, name);
		if (d <= (strlen(name) >= 5 ? 2u : 1u) && d < best) {
			best = d;
			suggest = name;
		}
	}
	return suggest;
}

/* The message for ${name[0..len)}: one of cutover's variables that is not
 * `allowed` here, a name of variables: where they are not substituted, or
 * neither. */
static int fail_variable(struct loader *L, const struct ynode *n, const char *name, size_t len, unsigned allowed,
			 bool shell)
{
	const char *suggest;
	char var[48], names[96];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(variables); i++)
		if (strlen(variables[i].name) == len && !memcmp(variables[i].name, name, len))
			break;
	if (i < ARRAY_SIZE(variables) && !(allowed & ~VAR_USER))
		return fail(L, n, "${%s} is not known here: only the variables: of the configuration are substituted "
			    "in this field", variables[i].name);
	if (i < ARRAY_SIZE(variables) && (allowed & VAR_ENV))
		return fail(L, n, "${%s} is not known in a pipeline stage: cutover substitutes only ${ENV} (the "
			    "environment's name) and the variables: of the configuration there", variables[i].name);
	if (i < ARRAY_SIZE(variables) && variables[i].bit == VAR_URL)
		return fail(L, n, "${URL} is only known in deploy.smoke (the address of the new instance)");
	if (i < ARRAY_SIZE(variables) && variables[i].bit == VAR_ENV)
		return fail(L, n, "${ENV} is only known in the stages of pipeline: (the environment's name, --env)");
	if (i < ARRAY_SIZE(variables) && variables[i].bit == VAR_PORT)
		return fail(L, n, "${PORT} is not known here: the build runs once per release, before any "
			    "instance has a port");
	if (!env_name_valid_len(name, len) || len >= 40) {
		snprintf(var, sizeof(var), "${%.*s}", (int)(len < 40 ? len : 40), name);
		return fail(L, n, "%s is not a variable name (cutover substitutes %s)", QUOTED(var),
			    VARIABLES_TEXT(allowed));
	}
	snprintf(var, sizeof(var), "%.*s", (int)len, name);
	if (user_variable(L, name, len))
		return fail(L, n, "${%s} (from variables:) is not substituted here: the build runs once per release, "
			    "and the same release runs in every environment", var);
	if ((suggest = suggest_variable(L, var, allowed)))
		return fail(L, n, "unknown variable ${%s} (did you mean ${%s}?)", var, suggest);
	if (!(allowed & ~VAR_USER))
		return fail(L, n, "unknown variable ${%s}: variables: %s%s", var,
			    L->cfg->nvariables ? "defines only " : "defines none",
			    user_variables_text(L, names, sizeof(names)));
	if ((allowed & VAR_USER) && L->cfg->nvariables)
		return fail(L, n, "unknown variable ${%s}: not in variables: (%s), and cutover substitutes only %s%s%s",
			    var, user_variables_text(L, names, sizeof(names)), VARIABLES_TEXT(allowed),
			    shell ? "; for a shell variable write $" : "", shell ? var : "");
	return fail(L, n, "unknown variable ${%s}: cutover substitutes only %s%s%s", var, VARIABLES_TEXT(allowed),
		    shell ? "; for a shell variable write $" : "", shell ? var : "");
}

int check_variables(struct loader *L, const struct ynode *n, unsigned allowed, bool shell, unsigned *ret_seen)
{
	const char *p = n->value;
	unsigned seen = 0;

	while ((p = strstr(p, "${"))) {
		const char *name = p + 2, *end = strchr(name, '}');
		size_t len, i;

		if (!end)
			return fail(L, n, "\"${\" without a closing \"}\" (cutover variables are written like ${PORT})");
		len = (size_t)(end - name);
		for (i = 0; i < ARRAY_SIZE(variables); i++)
			if (strlen(variables[i].name) == len && !memcmp(variables[i].name, name, len))
				break;
		if (i < ARRAY_SIZE(variables) && (allowed & variables[i].bit))
			seen |= variables[i].bit;
		else if (i == ARRAY_SIZE(variables) && (allowed & VAR_USER) && user_variable(L, name, len))
			seen |= VAR_USER;
		else
			return fail_variable(L, n, name, len, allowed, shell);
		p = end + 1;
	}
	if (ret_seen)
		*ret_seen = seen;
	return 0;
}

int expand_variables(struct loader *L, const struct ynode *n, size_t max, char **dst)
{
	const char *p = n->value, *start;
	const struct config_variable *v;
	char *out = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&out, &size);

	if (!f)
		return fail_oom(L);
	while ((start = strstr(p, "${"))) {
		const char *name = start + 2, *end = strchr(name, '}');

		if (!end)
			break;          /* check_variables() refused it */
		v = user_variable(L, name, (size_t)(end - name));
		fwrite(p, 1, (size_t)((v ? start : end + 1) - p), f);
		if (v)
			fputs(v->value, f);
		p = end + 1;
	}
	fputs(p, f);
	if (fclose(f) != 0 || !out) {
		free(out);
		return fail_oom(L);
	}
	if (size > max) {
		free(out);
		return fail(L, n, "must be at most %zu characters once its variables are substituted, got %zu", max,
			    size);
	}
	free(*dst);
	*dst = out;
	return 0;
}

/* ---- variables: ---------------------------------------------------------- */

static int load_variable(struct loader *L, const struct ynode *key, const struct ynode *value,
			 struct config_variable *v)
{
	size_t len = strlen(key->value), i;
	int r;

	if (!env_name_valid_len(key->value, len))
		return fail(L, key, "variable names must match [A-Za-z_][A-Za-z0-9_]*, got %s", QUOTED(key->value));
	if (len > ENV_NAME_MAX)
		return fail(L, key, "variable names must be at most %d characters", ENV_NAME_MAX);
	for (i = 0; i < ARRAY_SIZE(variables); i++)
		if (!strcmp(key->value, variables[i].name))
			return fail(L, key, "${%s} is cutover's own variable (it substitutes ${PORT}, ${VERSION}, "
				    "${SERVICE}, ${RELEASE_DIR}, ${URL} and, in pipeline stages, ${ENV} itself): choose another "
				    "name", key->value);
	r = expect_value(L, value, "a value (write \"\" for an empty one)");
	if (r < 0)
		return r;
	if (strlen(value->value) > ENV_VALUE_MAX)
		return fail(L, value, "must be at most %d characters, got %zu", ENV_VALUE_MAX, strlen(value->value));
	if (strstr(value->value, "${"))
		return fail(L, value, "a variable's value is used as written: ${...} is not substituted in it");
	r = set_string(L, &v->name, key->value);
	if (r >= 0)
		r = set_string(L, &v->value, value->value);
	return r;
}

int load_variables(struct loader *L, const struct ynode *n)
{
	struct config *cfg = L->cfg;
	size_t i, count;
	int r = expect_map(L, n, true, "a mapping of variable names to values");

	if (r != 0)
		return r < 0 ? r : 0;
	count = ynode_map_size(n);
	if (count > ENV_MAX)
		return fail(L, n, "at most %d variables, got %zu", ENV_MAX, count);
	if (!count)
		return 0;
	cfg->variables = calloc(count, sizeof(*cfg->variables));
	if (!cfg->variables)
		return fail_oom(L);
	for (i = 0; i < count; i++) {
		size_t saved = field_push_key(L, ynode_map_key(n, i)->value);

		cfg->nvariables++;
		r = load_variable(L, ynode_map_key(n, i), ynode_map_value(n, i), &cfg->variables[i]);
		field_pop(L, saved);
		if (r < 0)
			return r;
	}
	return 0;
}

int load_command(struct loader *L, const struct ynode *n, unsigned allowed, char **dst, unsigned *ret_seen)
{
	int r = expect_value(L, n, "a shell command");

	if (r < 0)
		return r;
	if (!n->value[0])
		return fail(L, n, "must be a shell command, got \"\"");
	if (strlen(n->value) > COMMAND_MAX)
		return fail(L, n, "must be at most %d characters, got %zu", COMMAND_MAX, strlen(n->value));
	r = check_variables(L, n, allowed, true, ret_seen);
	if (r < 0)
		return r;
	return expand_variables(L, n, COMMAND_MAX, dst);
}

int load_env_map(struct loader *L, const struct ynode *n, unsigned vars, const char *(*reserved)(const char *name),
		 struct config_env **ret, size_t *ret_n, unsigned *ret_seen)
{
	struct config_env *env;
	size_t i, count;
	int r = expect_map(L, n, true, "a mapping of variable names to values");

	if (r != 0)
		return r < 0 ? r : 0;
	count = ynode_map_size(n);
	if (count > ENV_MAX)
		return fail(L, n, "at most %d variables, got %zu", ENV_MAX, count);
	if (!count)
		return 0;
	env = *ret = calloc(count, sizeof(*env));
	if (!env)
		return fail_oom(L);
	*ret_n = count;
	for (i = 0; r >= 0 && i < count; i++) {
		const struct ynode *key = ynode_map_key(n, i), *value = ynode_map_value(n, i);
		size_t saved = field_push_key(L, key->value);
		const char *why = NULL;

		if (!env_name_valid_len(key->value, strlen(key->value)))
			r = fail(L, key, "variable names must match [A-Za-z_][A-Za-z0-9_]*, got %s", QUOTED(key->value));
		else if (strlen(key->value) > ENV_NAME_MAX)
			r = fail(L, key, "variable names must be at most %d characters", ENV_NAME_MAX);
		else if (reserved && (why = reserved(key->value)))
			r = fail(L, key, "%s %s", key->value, why);
		else
			r = expect_value(L, value, "a value (write \"\" for an empty one)");
		if (r >= 0 && strlen(value->value) > ENV_VALUE_MAX)
			r = fail(L, value, "must be at most %d characters, got %zu", ENV_VALUE_MAX, strlen(value->value));
		if (r >= 0)
			r = check_variables(L, value, vars, false, ret_seen);
		if (r >= 0)
			r = set_string(L, &env[i].name, key->value);
		if (r >= 0)
			r = expand_variables(L, value, ENV_VALUE_MAX, &env[i].value);
		field_pop(L, saved);
	}
	return r;
}

/* command.c - shell commands of a managed service (build, run,
 * deploy.smoke) and the ${VARIABLES} cutover substitutes in them and in
 * environment values.
 *
 * A typo such as ${PROT}, or a variable used where cutover has no value for
 * it (${PORT} in the build, ${URL} outside smoke), fails here, when the file
 * is loaded, rather than at the first deploy.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include "config/config-internal.h"

static const struct variable {
	const char *name;
	unsigned bit;
} variables[] = {
	{ "PORT", VAR_PORT }, { "VERSION", VAR_VERSION }, { "SERVICE", VAR_SERVICE },
	{ "RELEASE_DIR", VAR_RELEASE_DIR }, { "URL", VAR_URL },
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

/* The message for ${name[0..len)}, which is not one of `allowed`. */
static int fail_variable(struct loader *L, const struct ynode *n, const char *name, size_t len, unsigned allowed,
			 bool shell)
{
	const char *suggest = NULL;
	size_t i, best = SIZE_MAX;
	char var[48];

	for (i = 0; i < ARRAY_SIZE(variables); i++)
		if (strlen(variables[i].name) == len && !memcmp(variables[i].name, name, len))
			break;
	if (i < ARRAY_SIZE(variables) && variables[i].bit == VAR_URL)
		return fail(L, n, "${URL} is only known in deploy.smoke (the address of the new instance)");
	if (i < ARRAY_SIZE(variables) && variables[i].bit == VAR_PORT)
		return fail(L, n, "${PORT} is not known here: the build runs once per release, before any "
			    "instance has a port");
	if (!env_name_valid_len(name, len) || len >= 40) {
		snprintf(var, sizeof(var), "${%.*s}", (int)(len < 40 ? len : 40), name);
		return fail(L, n, "%s is not a variable name (cutover substitutes %s)", QUOTED(var),
			    VARIABLES_TEXT(allowed));
	}
	snprintf(var, sizeof(var), "%.*s", (int)len, name);
	for (i = 0; i < ARRAY_SIZE(variables); i++) {
		size_t d = edit_distance(var, variables[i].name);

		if ((allowed & variables[i].bit) && d <= (strlen(variables[i].name) >= 5 ? 2u : 1u) && d < best) {
			best = d;
			suggest = variables[i].name;
		}
	}
	if (suggest)
		return fail(L, n, "unknown variable ${%s} (did you mean ${%s}?)", var, suggest);
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
		if (i == ARRAY_SIZE(variables) || !(allowed & variables[i].bit))
			return fail_variable(L, n, name, len, allowed, shell);
		seen |= variables[i].bit;
		p = end + 1;
	}
	if (ret_seen)
		*ret_seen = seen;
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
	return set_string(L, dst, n->value);
}

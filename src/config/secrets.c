/* secrets.c - the configuration of encrypted secrets: the top-level
 * secrets: section (the environment's secrets file, who it is encrypted
 * to, this server's identity, where instances' secret files go) and the
 * secrets: list of a service (which secrets its instances receive, as a
 * variable or as a file).
 *
 * Paths are relative to the file that wrote them, like every path of the
 * configuration.  What is not written gets its default once the whole
 * file is read (finish_secrets(), called by load.c): the secrets file sits
 * next to cutover.yml and is named after the environment (secrets.age, or
 * secrets.ENV.age with --env ENV), so each environment has its own; the
 * recipients file is named after the secrets file; the identity is in the
 * state directory.  Nothing here reads the secrets: the loader only checks
 * names, so that a typo is an error at load time and a missing secret an
 * error of the deploy that needs it.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "config/config-internal.h"
#include "secrets/secrets.h"

#define SECRET_FILE_NAME_MAX 128

/* ---- the top-level section ------------------------------------------------ */

enum { SECRETS_PATH_FILE = 0, SECRETS_PATH_DIR = 1 };

static int secrets_path(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	return load_path(L, n, kw->flags == SECRETS_PATH_DIR ? "a directory path" : "a file path",
			 (char **)(void *)((char *)obj + kw->offset));
}

#define SECRETS_KEY(name, flags) { #name, secrets_path, offsetof(struct config_secrets, name), 0, 0, (flags) }

static const struct keyword secrets_keywords[] = {
	SECRETS_KEY(file, SECRETS_PATH_FILE),
	SECRETS_KEY(recipients, SECRETS_PATH_FILE),
	SECRETS_KEY(identity, SECRETS_PATH_FILE),
	SECRETS_KEY(runtime_dir, SECRETS_PATH_DIR),
};

static const struct section secrets_section = SECTION("a mapping of secrets settings", true, secrets_keywords);

int load_secrets(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	int r = section_load(L, n, &secrets_section, &((struct config *)obj)->secrets, NULL);

	return r < 0 ? r : 0;
}

/* leaf in the directory of the base file (cutover.yml), made absolute when
 * the files were read from disk, into *dst. */
static int base_file_path(struct loader *L, const char *leaf, char **dst)
{
	const char *slash = strrchr(L->name, '/');
	const char *parts[3] = { NULL, NULL, leaf };
	char cwd[PATH_MAX], *dir = NULL;

	if (L->absolute && L->name[0] != '/') {
		if (!getcwd(cwd, sizeof(cwd)))
			return fail(L, NULL, "the current directory is unknown (%s): give the configuration's full path",
				    strerror(errno));
		parts[0] = cwd;
	}
	if (slash && !(dir = strndup(L->name, slash == L->name ? 1 : (size_t)(slash - L->name))))
		return fail_oom(L);
	parts[1] = dir;
	*dst = path_join(parts, ARRAY_SIZE(parts));
	free(dir);
	return *dst ? 0 : fail_oom(L);
}

/* Where instances' secret files go when runtime_dir is not written: a
 * tmpfs that only this user can use. */
static char *default_runtime_dir(void)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	char *dir = NULL;

	if (geteuid() == 0)
		return strdup("/run/cutover");
	if (xdg && xdg[0] == '/' && asprintf(&dir, "%s/cutover", xdg) >= 0)
		return dir;
	if (asprintf(&dir, "/dev/shm/cutover-%u", (unsigned)geteuid()) < 0)
		return NULL;
	return dir;
}

int finish_secrets(struct loader *L)
{
	struct config_secrets *s = &L->cfg->secrets;
	char leaf[64];
	size_t len;
	int r;

	if (!s->file) {
		if (L->env)
			snprintf(leaf, sizeof(leaf), "secrets.%s.age", L->env);
		else
			snprintf(leaf, sizeof(leaf), "secrets.age");
		r = base_file_path(L, leaf, &s->file);
		if (r < 0)
			return r;
	}
	if (!s->recipients) {
		len = strlen(s->file);
		if (len > 4 && !strcmp(s->file + len - 4, ".age"))
			len -= 4;
		if (asprintf(&s->recipients, "%.*s.recipients", (int)len, s->file) < 0) {
			s->recipients = NULL;
			return fail_oom(L);
		}
	}
	if (!s->identity) {
		const char *parts[2] = { L->cfg->state_dir, "identity.key" };

		if (!(s->identity = path_join(parts, 2)))
			return fail_oom(L);
	}
	if (!s->runtime_dir && !(s->runtime_dir = default_runtime_dir()))
		return fail_oom(L);
	return 0;
}

/* ---- a service's secrets ---------------------------------------------------- */

#define SECRET_FORMS "NAME, {name: NAME, env: VARIABLE} or {name: NAME, file: FILE}"

enum { SECRET_NAME, SECRET_ENV, SECRET_FILE };

static const struct keyword secret_keywords[] = {
	[SECRET_NAME] = { "name", NULL, 0, 0, 0, 0 },
	[SECRET_ENV] = { "env", NULL, 0, 0, 0, 0 },
	[SECRET_FILE] = { "file", NULL, 0, 0, 0, 0 },
};

static const struct section secret_section = SECTION("a mapping with name: and env: or file:", false,
						     secret_keywords);

static int secret_name(struct loader *L, const struct ynode *n, struct config_service_secret *sec)
{
	int r = expect_value(L, n, "a secret's name");

	if (r < 0)
		return r;
	if (!secret_name_valid(n->value))
		return fail(L, n, "secret names must match [A-Za-z_][A-Za-z0-9_]{0,63}, got %s", QUOTED(n->value));
	return set_string(L, &sec->name, n->value);
}

/* The variable a secret is passed in: a valid name, not one that cutover
 * sets, not one that env: sets. */
static int secret_env(struct loader *L, const struct ynode *n, const struct config_service *svc,
		      struct config_service_secret *sec)
{
	const char *v;
	int r = expect_value(L, n, "a variable name");

	if (r < 0)
		return r;
	v = n->value;
	if (!env_name_valid_len(v, strlen(v)) || strlen(v) > ENV_NAME_MAX)
		return fail(L, n, "variable names must match [A-Za-z_][A-Za-z0-9_]* (at most %d characters), got %s",
			    ENV_NAME_MAX, QUOTED(v));
	if (!strcmp(v, "PORT") || !strncmp(v, "CUTOVER_", 8))
		return fail(L, n, "%s is reserved: cutover sets PORT and the CUTOVER_* variables", QUOTED(v));
	for (size_t k = 0; k < svc->nenv; k++)
		if (!strcmp(svc->env[k].name, v))
			return fail(L, n, "%s is also set in env: a variable gets either a value or a secret", QUOTED(v));
	sec->as = CONFIG_SECRET_ENV;
	return set_string(L, &sec->target, v);
}

/* The file a secret is written to, in the instance's private directory. */
static int secret_file(struct loader *L, const struct ynode *n, struct config_service_secret *sec)
{
	const char *v;
	int r = expect_value(L, n, "a file name");

	if (r < 0)
		return r;
	v = n->value;
	if (!v[0] || strlen(v) > SECRET_FILE_NAME_MAX || !strcmp(v, ".") || !strcmp(v, "..") ||
	    strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != strlen(v))
		return fail(L, n, "must be a file name of 1 to %d letters, digits, '.', '_' or '-' (not \".\" or "
			    "\"..\"; the file goes in the instance's private directory), got %s",
			    SECRET_FILE_NAME_MAX, QUOTED(v));
	sec->as = CONFIG_SECRET_FILE;
	return set_string(L, &sec->target, v);
}

static int load_secret(struct loader *L, const struct ynode *n, const struct config_service *svc,
		       struct config_service_secret *sec)
{
	const struct ynode *keys[ARRAY_SIZE(secret_keywords)] = { 0 }, *values[ARRAY_SIZE(secret_keywords)] = { 0 };
	const struct ynode *file, *env;
	size_t saved;
	int r;

	sec->line = n->line;
	if (n->kind != YNODE_MAP) {
		r = expect_value(L, n, SECRET_FORMS);
		if (r >= 0)
			r = secret_name(L, n, sec);
		if (r >= 0)
			r = secret_env(L, n, svc, sec);
		return r;
	}
	r = section_collect(L, n, &secret_section, keys, values);
	if (r < 0)
		return r;
	saved = field_push_key(L, "name");
	if (!values[SECRET_NAME])
		r = fail(L, n, "is required: the secret's name in the secrets file");
	else
		r = secret_name(L, values[SECRET_NAME], sec);
	field_pop(L, saved);
	if (r < 0)
		return r;
	file = values[SECRET_FILE];
	env = values[SECRET_ENV];
	saved = field_push_key(L, file ? "file" : env ? "env" : "name");
	if (file && env)
		r = fail(L, keys[SECRET_FILE], "cannot be combined with env: a secret goes to one place (list it "
			 "twice to have both)");
	else if (file)
		r = secret_file(L, file, sec);
	else
		r = secret_env(L, env ? env : values[SECRET_NAME], svc, sec);
	field_pop(L, saved);
	return r;
}

/* The node naming where item i's target was written (for messages). */
static const struct ynode *target_node(const struct ynode *item, const char **key)
{
	const struct ynode *at;

	*key = NULL;
	if (item->kind != YNODE_MAP)
		return item;
	if ((at = ynode_map_get(item, "file")) || (at = ynode_map_get(item, "env"))) {
		*key = ynode_map_get(item, "file") ? "file" : "env";
		return at;
	}
	*key = "name";
	return ynode_map_get(item, "name");
}

int load_service_secrets(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	struct config_service *svc = obj;
	int r = expect_list(L, n, true, "a list of secrets (" SECRET_FORMS ")");

	if (r != 0)
		return r < 0 ? r : 0;
	if (n->nitems > CONFIG_SERVICE_SECRETS_MAX)
		return fail(L, n, "at most %d secrets, got %zu", CONFIG_SERVICE_SECRETS_MAX, n->nitems);
	if (!n->nitems)
		return 0;
	svc->secrets = calloc(n->nitems, sizeof(*svc->secrets));
	if (!svc->secrets)
		return fail_oom(L);
	for (size_t i = 0; i < n->nitems; i++) {
		struct config_service_secret *sec = &svc->secrets[i];
		size_t saved = field_push_index(L, i);
		const char *key;
		const struct ynode *at;

		svc->nsecrets++;
		r = load_secret(L, n->items[i], svc, sec);
		for (size_t j = 0; r >= 0 && j < i; j++) {
			const struct config_service_secret *other = &svc->secrets[j];

			if (other->as != sec->as || strcmp(other->target, sec->target))
				continue;
			at = target_node(n->items[i], &key);
			if (key)
				field_push_key(L, key);
			r = fail(L, at, "%s %s already %s by secrets[%zu] (line %d)", sec->as == CONFIG_SECRET_FILE ?
				 "the file" : "the variable", QUOTED(sec->target), sec->as == CONFIG_SECRET_FILE ?
				 "written" : "set", j, other->line);
		}
		field_pop(L, saved);
		if (r < 0)
			return r;
	}
	return 0;
}

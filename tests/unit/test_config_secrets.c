/* test_config_secrets.c - unit tests for the secrets parts of the
 * configuration loader (src/config/secrets.c): the top-level secrets:
 * section with its defaults (which follow the environment and state_dir),
 * and services.NAME.secrets.
 *
 * Kept apart from test_config.c (the rest of the loader) but written the
 * same way: valid configurations checked field by field, and one table of
 * invalid ones, each naming the exact line, column and field the message
 * must carry and a piece of its reason.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "base/util.h"
#include "config/config.h"
#include "secrets/secrets.h"

#define NAME "cutover.yml"
#define HEAD "listen: 127.0.0.1:8080\n"                                             /* line 1 */
#define MANAGED HEAD "services:\n  shop:\n    run: ./shop --port ${PORT}\n"         /* lines 2-4 */
#define SHOP HEAD "services:\n  shop:\n    targets: [127.0.0.1:9001]\n"            /* lines 2-4 */

static struct config *load_named(const char *name, const char *text)
{
	struct config_error err;
	struct config *cfg = NULL;

	if (config_load_string(name, text, strlen(text), &cfg, &err) < 0)
		fail_msg("expected a valid config, got: %s", err.message);
	return cfg;
}

/* ---- the top-level section ------------------------------------------------ */

static void test_defaults(void **state UNUSED)
{
	struct config *cfg;
	char want[64];

	setenv("XDG_RUNTIME_DIR", "/run/user/4242", 1);
	cfg = load_named(NAME, SHOP);
	assert_string_equal(cfg->secrets.file, "secrets.age");
	assert_string_equal(cfg->secrets.recipients, "secrets.recipients");
	assert_string_equal(cfg->secrets.identity, "/var/lib/cutover/identity.key");
	assert_string_equal(cfg->secrets.runtime_dir, geteuid() == 0 ? "/run/cutover" : "/run/user/4242/cutover");
	config_free(cfg);

	/* without XDG_RUNTIME_DIR (or a relative one): a directory of /dev/shm */
	setenv("XDG_RUNTIME_DIR", "relative", 1);
	cfg = load_named("conf/cutover.yml", SHOP "state_dir: /srv/state\n");
	snprintf(want, sizeof(want), "/dev/shm/cutover-%u", (unsigned)geteuid());
	assert_string_equal(cfg->secrets.runtime_dir, geteuid() == 0 ? "/run/cutover" : want);
	assert_string_equal(cfg->secrets.file, "conf/secrets.age");
	assert_string_equal(cfg->secrets.recipients, "conf/secrets.recipients");
	assert_string_equal(cfg->secrets.identity, "/srv/state/identity.key");
	config_free(cfg);
	unsetenv("XDG_RUNTIME_DIR");

	/* an empty section is all defaults */
	cfg = load_named(NAME, SHOP "secrets:\n");
	assert_string_equal(cfg->secrets.file, "secrets.age");
	config_free(cfg);
}

static void test_explicit(void **state UNUSED)
{
	struct config *cfg = load_named("conf/cutover.yml", SHOP "secrets:\n"
							      "  file: vault/prod.age\n"
							      "  recipients: ../team.txt\n"
							      "  identity: /etc/cutover/key\n"
							      "  runtime_dir: /run/shop-secrets\n");

	assert_string_equal(cfg->secrets.file, "conf/vault/prod.age");
	assert_string_equal(cfg->secrets.recipients, "conf/../team.txt");
	assert_string_equal(cfg->secrets.identity, "/etc/cutover/key");
	assert_string_equal(cfg->secrets.runtime_dir, "/run/shop-secrets");
	config_free(cfg);

	/* the recipients follow the file, with or without .age */
	cfg = load_named(NAME, SHOP "secrets:\n  file: /srv/prod.age\n");
	assert_string_equal(cfg->secrets.recipients, "/srv/prod.recipients");
	config_free(cfg);
	cfg = load_named(NAME, SHOP "secrets:\n  file: /srv/prod.secrets\n");
	assert_string_equal(cfg->secrets.recipients, "/srv/prod.secrets.recipients");
	config_free(cfg);
	cfg = load_named(NAME, SHOP "secrets:\n  file: /srv/.age\n");
	assert_string_equal(cfg->secrets.recipients, "/srv/.recipients");
	config_free(cfg);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* In an environment the secrets file is named after it, next to
 * cutover.yml; an overlay's own paths are relative to the overlay. */
static void test_environments(void **state UNUSED)
{
	char dir[] = "/tmp/cutover-test-config-secrets-XXXXXX", base[128], overlay[128], sub[128], want[PATH_MAX];
	struct config_error err;
	struct config *cfg = NULL;

	assert_non_null(mkdtemp(dir));
	snprintf(base, sizeof(base), "%s/cutover.yml", dir);
	snprintf(sub, sizeof(sub), "%s/env", dir);
	snprintf(overlay, sizeof(overlay), "%s/cutover.prod.yml", dir);
	write_text(base, SHOP "state_dir: state\n");
	write_text(overlay, "state_dir: prod-state\n");

	if (config_load_env(base, "prod", &cfg, &err) < 0)
		fail_msg("%s", err.message);
	snprintf(want, sizeof(want), "%s/secrets.prod.age", dir);
	assert_string_equal(cfg->secrets.file, want);
	snprintf(want, sizeof(want), "%s/secrets.prod.recipients", dir);
	assert_string_equal(cfg->secrets.recipients, want);
	snprintf(want, sizeof(want), "%s/prod-state/identity.key", dir);
	assert_string_equal(cfg->secrets.identity, want);
	config_free(cfg);

	/* the base alone */
	if (config_load_env(base, NULL, &cfg, &err) < 0)
		fail_msg("%s", err.message);
	snprintf(want, sizeof(want), "%s/secrets.age", dir);
	assert_string_equal(cfg->secrets.file, want);
	config_free(cfg);

	/* a file written in the overlay, relative to it; the base's identity stays */
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(overlay, sizeof(overlay), "%s/env/cutover.staging.yml", dir);
	write_text(base, SHOP "secrets:\n  identity: keys/server.key\n");
	write_text(overlay, "secrets:\n  file: staging.age\n");
	{
		const char *paths[2] = { base, overlay };

		if (config_load_files(paths, 2, &cfg, &err) < 0)
			fail_msg("%s", err.message);
	}
	snprintf(want, sizeof(want), "%s/env/staging.age", dir);
	assert_string_equal(cfg->secrets.file, want);
	snprintf(want, sizeof(want), "%s/env/staging.recipients", dir);
	assert_string_equal(cfg->secrets.recipients, want);
	snprintf(want, sizeof(want), "%s/keys/server.key", dir);
	assert_string_equal(cfg->secrets.identity, want);
	config_free(cfg);

	unlink(overlay);
	rmdir(sub);
	snprintf(overlay, sizeof(overlay), "%s/cutover.prod.yml", dir);
	unlink(overlay);
	unlink(base);
	rmdir(dir);
}

/* ---- a service's secrets ---------------------------------------------------- */

static void test_service_secrets(void **state UNUSED)
{
	static const struct {
		const char *name;
		enum config_secret_as as;
		const char *target;
		int line;
	} want[] = {
		{ "DB_PASSWORD", CONFIG_SECRET_ENV, "DB_PASSWORD", 8 },
		{ "API_KEY", CONFIG_SECRET_ENV, "SHOP_API_KEY", 9 },
		{ "TLS_KEY", CONFIG_SECRET_FILE, "tls.key", 11 },
		{ "DB_PASSWORD", CONFIG_SECRET_FILE, "db-password", 13 },
		{ "_x9", CONFIG_SECRET_ENV, "_x9", 14 },
	};
	struct config *cfg = load_named(NAME, MANAGED "    env:\n"
						      "      MODE: prod\n"
						      "    secrets:\n"
						      "      - DB_PASSWORD\n"
						      "      - name: API_KEY\n"
						      "        env: SHOP_API_KEY\n"
						      "      - name: TLS_KEY\n"
						      "        file: tls.key\n"
						      "      - {name: DB_PASSWORD, file: db-password}\n"
						      "      - name: _x9\n");
	const struct config_service *svc = &cfg->services[0];

	assert_int_equal(svc->nsecrets, ARRAY_SIZE(want));
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		assert_string_equal(svc->secrets[i].name, want[i].name);
		assert_int_equal(svc->secrets[i].as, want[i].as);
		assert_string_equal(svc->secrets[i].target, want[i].target);
		assert_int_equal(svc->secrets[i].line, want[i].line);
	}
	config_free(cfg);

	/* none, or an empty list */
	cfg = load_named(NAME, MANAGED);
	assert_null(cfg->services[0].secrets);
	assert_int_equal(cfg->services[0].nsecrets, 0);
	config_free(cfg);
	cfg = load_named(NAME, MANAGED "    secrets: []\n");
	assert_int_equal(cfg->services[0].nsecrets, 0);
	config_free(cfg);
}

/* ---- invalid configurations ------------------------------------------------- */

struct invalid_case {
	const char *name;
	const char *text;
	int line, column;
	const char *field;
	const char *reason;           /* must appear in the message */
};

#define X16 "ABCDEFGHIJKLMNOP"
#define S8 "      - A\n      - B\n      - C\n      - D\n      - E\n      - F\n      - G\n      - H\n"
#define S64 S8 S8 S8 S8 S8 S8 S8 S8

static const struct invalid_case invalid_cases[] = {
	/* the top level */
	{ "secrets a single value", SHOP "secrets: vault.age\n",
	  5, 10, "secrets", "must be a mapping of secrets settings, got a single value" },
	{ "secrets key typo", SHOP "secrets:\n  fiel: x.age\n",
	  6, 3, "secrets.fiel", "did you mean \"file\"?" },
	{ "secrets file empty", SHOP "secrets:\n  file: \"\"\n",
	  6, 9, "secrets.file", "must be a file path, got \"\"" },
	{ "secrets identity with ~", SHOP "secrets:\n  identity: ~/.cutover/key\n",
	  6, 13, "secrets.identity", "\"~\" is not expanded" },
	{ "secrets runtime_dir a list", SHOP "secrets:\n  runtime_dir: [/run]\n",
	  6, 16, "secrets.runtime_dir", "must be a directory path, got a list" },
	{ "secrets recipients with a variable", SHOP "secrets:\n  recipients: ${HOME}/r\n",
	  6, 15, "secrets.recipients", "variables are not substituted in paths" },
	/* a service's list */
	{ "service secrets of an unmanaged service", SHOP "    secrets: [A]\n",
	  5, 5, "services.shop.secrets", "only applies to a service that cutover runs" },
	{ "service secrets a single value", MANAGED "    secrets: DB_PASSWORD\n",
	  5, 14, "services.shop.secrets", "must be a list of secrets (NAME, {name: NAME, env: VARIABLE} or" },
	{ "secret name starts with a digit", MANAGED "    secrets:\n      - 1PASSWORD\n",
	  6, 9, "services.shop.secrets[0]", "secret names must match [A-Za-z_][A-Za-z0-9_]{0,63}, got \"1PASSWORD\"" },
	{ "secret name with a dash", MANAGED "    secrets: [A, DB-PASSWORD]\n",
	  5, 18, "services.shop.secrets[1]", "got \"DB-PASSWORD\"" },
	{ "secret name too long", MANAGED "    secrets: [" X16 X16 X16 X16 "X]\n",
	  5, 15, "services.shop.secrets[0]", "secret names must match" },
	{ "secret a list", MANAGED "    secrets:\n      - [A]\n",
	  6, 9, "services.shop.secrets[0]", "got a list" },
	{ "secret without a value", MANAGED "    secrets:\n      -\n",
	  6, 8, "services.shop.secrets[0]", "missing value" },
	{ "secret mapping without name", MANAGED "    secrets:\n      - env: DB\n",
	  6, 9, "services.shop.secrets[0].name", "is required: the secret's name in the secrets file" },
	{ "secret mapping key typo", MANAGED "    secrets:\n      - name: A\n        fiel: a.txt\n",
	  7, 9, "services.shop.secrets[0].fiel", "did you mean \"file\"?" },
	{ "secret name in a mapping", MANAGED "    secrets:\n      - name: a.b\n",
	  6, 15, "services.shop.secrets[0].name", "secret names must match" },
	{ "secret env and file", MANAGED "    secrets:\n      - name: A\n        env: B\n        file: c\n",
	  8, 9, "services.shop.secrets[0].file", "cannot be combined with env" },
	{ "secret env not a variable name", MANAGED "    secrets:\n      - name: A\n        env: 1B\n",
	  7, 14, "services.shop.secrets[0].env", "variable names must match [A-Za-z_][A-Za-z0-9_]*" },
	{ "secret env PORT", MANAGED "    secrets:\n      - name: A\n        env: PORT\n",
	  7, 14, "services.shop.secrets[0].env", "\"PORT\" is reserved" },
	{ "secret named like cutover's variables", MANAGED "    secrets: [CUTOVER_TOKEN]\n",
	  5, 15, "services.shop.secrets[0]", "\"CUTOVER_TOKEN\" is reserved: cutover sets PORT and the CUTOVER_*" },
	{ "secret env also in env:", MANAGED "    env:\n      DB: x\n    secrets:\n      - name: DB_PASSWORD\n"
	  "        env: DB\n",
	  9, 14, "services.shop.secrets[0].env", "\"DB\" is also set in env: a variable gets either a value or" },
	{ "secret named like an env: variable", MANAGED "    env:\n      DB: x\n    secrets: [DB]\n",
	  7, 15, "services.shop.secrets[0]", "\"DB\" is also set in env" },
	{ "secret file with a slash", MANAGED "    secrets:\n      - name: A\n        file: keys/a\n",
	  7, 15, "services.shop.secrets[0].file", "must be a file name of 1 to 128 letters" },
	{ "secret file ..", MANAGED "    secrets:\n      - name: A\n        file: ..\n",
	  7, 15, "services.shop.secrets[0].file", "got \"..\"" },
	{ "secret file empty", MANAGED "    secrets:\n      - name: A\n        file: \"\"\n",
	  7, 15, "services.shop.secrets[0].file", "must be a file name" },
	{ "same variable twice", MANAGED "    secrets:\n      - DB\n      - name: OTHER\n        env: DB\n",
	  8, 14, "services.shop.secrets[1].env", "the variable \"DB\" already set by secrets[0] (line 6)" },
	{ "same secret twice", MANAGED "    secrets:\n      - A\n      - B\n      - A\n",
	  8, 9, "services.shop.secrets[2]", "the variable \"A\" already set by secrets[0] (line 6)" },
	{ "same file twice", MANAGED "    secrets:\n      - {name: A, file: k}\n      - {name: B, file: k}\n",
	  7, 25, "services.shop.secrets[1].file", "the file \"k\" already written by secrets[0] (line 6)" },
	{ "too many secrets", MANAGED "    secrets:\n" S64 "      - Z\n",
	  6, 7, "services.shop.secrets", "at most 64 secrets, got 65" },
};

/* ---- admin_token (config/admin.c) ------------------------------------------- */

/* A secrets file at DIR/secrets.age holding admin_token = TOKEN (NULL: only
 * another secret), encrypted to the identity DIR/id.key (made once). */
static void write_secrets(const char *dir, const char *token)
{
	char id_path[256], path[256], err[512];
	struct age_recipient pub;
	struct secrets *s = NULL;

	snprintf(id_path, sizeof(id_path), "%s/id.key", dir);
	snprintf(path, sizeof(path), "%s/secrets.age", dir);
	if (access(id_path, F_OK) < 0 && age_identity_write_new(id_path, &pub, err, sizeof(err)) < 0)
		fail_msg("keygen: %s", err);
	if (access(id_path, F_OK) == 0) {
		struct age_identity id = { 0 };
		assert_int_equal(age_identity_read(id_path, &id, err, sizeof(err)), 0);
		memcpy(pub.key, id.public_key, sizeof(pub.key));
		age_identity_release(&id);
	}
	unlink(path);
	assert_int_equal(secrets_read(path, NULL, true, &s, err, sizeof(err)), 0);
	assert_int_equal(secrets_set(s, "db_password", (const uint8_t *)"hunter22", 8, "test"), 0);
	if (token)
		assert_int_equal(secrets_set(s, "admin_token", (const uint8_t *)token, strlen(token), "test"), 0);
	if (secrets_write(path, s, &pub, 1, err, sizeof(err)) < 0)
		fail_msg("secrets_write: %s", err);
	secrets_free(s);
}

static void test_admin_token(void **state UNUSED)
{
	static const char good[] = "0123456789abcdef0123456789abcdef";
	static const struct {
		const char *name;
		const char *admin;         /* the admin: line (NULL: none) */
		int secrets;               /* 0: no file, 1: without admin_token, 2: with TOKEN */
		const char *token;
		bool no_identity;
		int rc;                    /* what config_admin_token returns */
		bool got;                  /* a token comes back */
		const char *message;       /* in err.message ("" : empty) */
	} cases[] = {
		{ "no admin address", NULL, 2, good, false, 0, false, "" },
		{ "loopback, no secrets", "127.0.0.1:9180", 0, NULL, false, 0, false, "" },
		{ "loopback, no token", "127.0.0.1:9180", 1, NULL, false, 0, false, "" },
		{ "loopback with a token: required", "127.0.0.9:9180", 2, good, false, 0, true, "" },
		{ "loopback, unreadable: a warning", "\"[::1]:9180\"", 2, good, true, 0, false, "cannot be read" },
		{ "network, no secrets", "10.1.2.3:9180", 0, NULL, false, -ENOENT, false, "not a loopback address" },
		{ "network, no token", "0.0.0.0:9180", 1, NULL, false, -ENOKEY, false, "has none" },
		{ "network, unreadable", "10.1.2.3:9180", 2, good, true, -ENOENT, false, "not a loopback address" },
		{ "network, token", "10.1.2.3:9180", 2, good, false, 0, true, "" },
		{ "token too short", "10.1.2.3:9180", 2, "0123456789abcde", false, -EINVAL, false, "16 to 512" },
		{ "token with a space", "127.0.0.1:9180", 2, "0123456789 abcdef", false, -EINVAL, false, "visible" },
		{ "token with a %", "10.1.2.3:9180", 2, "0123456789%abcdef", false, -EINVAL, false, "visible" },
	};
	char dir[] = "/tmp/cutover-admintoken-XXXXXX", text[512], path[300];

	assert_non_null(mkdtemp(dir));
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct config_error err;
		struct config *cfg;
		char *token = (char *)"untouched";
		size_t len = 0;
		int r;

		snprintf(path, sizeof(path), "%s/secrets.age", dir);
		unlink(path);
		if (cases[i].secrets)
			write_secrets(dir, cases[i].secrets == 2 ? cases[i].token : NULL);
		snprintf(text, sizeof(text), "%s%s%s%ssecrets:\n  file: %s/secrets.age\n  identity: %s/%s\n", SHOP,
			 cases[i].admin ? "admin: " : "", cases[i].admin ? cases[i].admin : "", cases[i].admin ? "\n" : "",
			 dir, dir, cases[i].no_identity ? "missing.key" : "id.key");
		cfg = load_named(NAME, text);
		r = config_admin_token(cfg, NULL, &token, &len, &err);
		if (r != cases[i].rc || (r == 0 && (token != NULL) != cases[i].got) ||
		    !strstr(err.message, cases[i].message) || (!cases[i].message[0] && err.message[0]))
			fail_msg("case \"%s\": returned %d (want %d), token %s, message \"%s\"", cases[i].name, r,
				 cases[i].rc, r == 0 && token ? "set" : "none", err.message);
		if (r < 0) {
			/* it names the admin address where it is written */
			assert_int_equal(err.line, 5);
			assert_string_equal(err.field, "admin");
			assert_string_equal(token, "untouched");
		} else if (token) {
			assert_int_equal(len, strlen(cases[i].token));
			assert_string_equal(token, cases[i].token);
			sodium_free(token);
		}
		/* never the token itself in a message */
		assert_null(strstr(err.message, "0123456789"));
		config_free(cfg);
	}
	snprintf(path, sizeof(path), "%s/secrets.age", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/id.key", dir);
	unlink(path);
	rmdir(dir);
}

static void test_invalid(void **state)
{
	const struct invalid_case *c = *state;
	struct config *sentinel = (struct config *)(uintptr_t)0x5a5a, *cfg = sentinel;
	struct config_error err;
	char prefix[512];
	int r;

	memset(&err, 0x55, sizeof(err));
	r = config_load_string(NAME, c->text, strlen(c->text), &cfg, &err);
	snprintf(prefix, sizeof(prefix), NAME ":%d:%d: %s: ", c->line, c->column, c->field);
	if (r != -EINVAL || cfg != sentinel || err.line != c->line || err.column != c->column ||
	    strcmp(err.field, c->field) || strncmp(err.message, prefix, strlen(prefix)) ||
	    !strstr(err.message + strlen(prefix), c->reason))
		fail_msg("case \"%s\":\n  returned %d, ret %s\n  got  %d:%d field \"%s\" message \"%s\"\n"
			 "  want %d:%d field \"%s\" message \"%s...%s...\"",
			 c->name, r, cfg == sentinel ? "untouched" : "CHANGED", err.line, err.column, err.field,
			 err.message, c->line, c->column, c->field, prefix, c->reason);
}

int main(void)
{
	const struct CMUnitTest valid[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_explicit),
		cmocka_unit_test(test_environments),
		cmocka_unit_test(test_service_secrets),
		cmocka_unit_test(test_admin_token),
	};
	struct CMUnitTest invalid[ARRAY_SIZE(invalid_cases)];
	int failed;

	for (size_t i = 0; i < ARRAY_SIZE(invalid_cases); i++)
		invalid[i] = (struct CMUnitTest){
			.name = invalid_cases[i].name,
			.test_func = test_invalid,
			.initial_state = (void *)&invalid_cases[i],
		};
	failed = cmocka_run_group_tests_name("config secrets valid", valid, NULL, NULL);
	failed += cmocka_run_group_tests_name("config secrets invalid", invalid, NULL, NULL);
	return failed;
}

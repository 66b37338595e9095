/* admin.c - the admin address and its token (contract of
 * config_admin_token() in config.h).
 *
 * The TCP admin address serves the status page, its data and /metrics,
 * read-only.  On loopback (the default) only this machine reaches it; on
 * any other address a network does, so it answers only requests that carry
 * the secret admin_token of the environment's secrets file.  The loader
 * does not read the secrets (every CLI verb loads the configuration, most
 * without the identity): the daemon and `cutover check` call this.
 */
#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "config/config-internal.h"
#include "config/config.h"
#include "secrets/secrets.h"

#define TOKEN_NAME "admin_token"

static void admin_error(const struct config *cfg, struct config_error *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void admin_error(const struct config *cfg, struct config_error *err, const char *fmt, ...)
{
	char reason[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	error_set(err, cfg->admin_file[0] ? cfg->admin_file : cfg->path ? cfg->path : "(configuration)",
		  cfg->admin_line, cfg->admin_column, "admin", reason);
}

/* Whether the secret may be a token: it goes in a header and a URL. */
static bool token_valid(const uint8_t *v, size_t len)
{
	if (len < CONFIG_ADMIN_TOKEN_MIN || len > CONFIG_ADMIN_TOKEN_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (v[i] < 0x21 || v[i] > 0x7e || v[i] == '%' || v[i] == '&' || v[i] == '+')
			return false;
	return true;
}

/* The environment's secrets.  Returns 0 with *ret (NULL when there is no
 * secrets file), or -errno with why in why. */
static int read_secrets(const struct config *cfg, const char *identity, struct secrets **ret, char *why, size_t len)
{
	struct age_identity id = { 0 };
	int rc;

	if (!cfg->secrets.file || access(cfg->secrets.file, F_OK) < 0) {
		*ret = NULL;
		return 0;
	}
	identity = identity ? identity : cfg->secrets.identity;
	if (!identity) {
		snprintf(why, len, "no identity is configured (secrets.identity) to read %s", cfg->secrets.file);
		return -ENOKEY;
	}
	rc = age_identity_read(identity, &id, why, len);
	if (rc < 0)
		return rc;
	rc = secrets_read(cfg->secrets.file, &id, false, ret, why, len);
	age_identity_release(&id);
	return rc;
}

int config_admin_token(const struct config *cfg, const char *identity, char **ret, size_t *ret_len,
		       struct config_error *err)
{
	bool open_to_network = cfg->admin.text && !addr_is_loopback(&cfg->admin);
	struct secrets *s = NULL;
	const struct secret *tok;
	char why[400], *copy;
	bool unreadable;
	int rc;

	memset(err, 0, sizeof(*err));
	if (!cfg->admin.text) {
		*ret = NULL;
		*ret_len = 0;
		return 0;
	}
	rc = read_secrets(cfg, identity, &s, why, sizeof(why));
	unreadable = rc < 0;
	if (rc == 0 && !s) {
		snprintf(why, sizeof(why), "there is no secrets file (%s)", cfg->secrets.file ? cfg->secrets.file : "none");
		rc = -ENOENT;
	}
	if (rc < 0 && open_to_network) {
		admin_error(cfg, err, "%s is not a loopback address, so it needs the secret " TOKEN_NAME
			    " (every request but /healthz must carry it), and %s; set one with `cutover secrets set "
			    TOKEN_NAME "%s%s`", cfg->admin.text, why, cfg->env ? " --env " : "", cfg->env ? cfg->env : "");
		return rc;
	}
	if (rc < 0) {
		/* loopback: a token is optional */
		if (unreadable)
			snprintf(err->message, sizeof(err->message), "the secret " TOKEN_NAME " cannot be read (%s): the "
				 "admin address %s takes requests without a token", why, cfg->admin.text);
		*ret = NULL;
		*ret_len = 0;
		return 0;
	}
	tok = secrets_find(s, TOKEN_NAME);
	if (!tok && open_to_network) {
		admin_error(cfg, err, "%s is not a loopback address, so it needs the secret " TOKEN_NAME
			    " (every request but /healthz must carry it), and %s has none; set one with `cutover secrets "
			    "set " TOKEN_NAME "%s%s`", cfg->admin.text, cfg->secrets.file, cfg->env ? " --env " : "",
			    cfg->env ? cfg->env : "");
		secrets_free(s);
		return -ENOKEY;
	}
	if (tok && !token_valid(tok->value, tok->len)) {
		admin_error(cfg, err, "the secret " TOKEN_NAME " of %s must be %d to %d visible ASCII characters, "
			    "without space, %%, & or + (it goes in a header and in a URL), e.g. `openssl rand -hex 32`",
			    cfg->secrets.file, CONFIG_ADMIN_TOKEN_MIN, CONFIG_ADMIN_TOKEN_MAX);
		secrets_free(s);
		return -EINVAL;
	}
	copy = NULL;
	if (tok) {
		copy = sodium_malloc(tok->len + 1);
		if (!copy) {
			secrets_free(s);
			admin_error(cfg, err, "out of memory");
			return -ENOMEM;
		}
		memcpy(copy, tok->value, tok->len);
		copy[tok->len] = 0;
	}
	*ret_len = tok ? tok->len : 0;
	*ret = copy;
	secrets_free(s);
	return 0;
}

/* secrets.c - the secrets a service's instances receive (services.NAME.secrets).
 *
 * The deployer holds the environment's decrypted secrets file (d->secrets,
 * every value in sodium memory).  It is read with the server's identity:
 * once at start (deployer_secrets_startup, before recovery may restart an
 * instance) and again on the state worker by every deployment of a service
 * that needs secrets (so a changed secret takes effect at the next deploy
 * or `cutover restart`), before anything starts: a secret the service
 * lists but the file lacks fails the deployment there, naming the secret
 * and the environment.  Each load also replaces the process-wide redactor
 * (secrets/redact.h), which keeps the values it hid before: an instance
 * started earlier may still hold an older value.
 *
 * An instance gets each secret as an environment variable (through the
 * supervisor, which keeps them in locked memory) or as a file, mode 0400,
 * in a private directory RUNTIME_DIR/INSTANCE-ID (mode 0700, on tmpfs by
 * default) named by $CUTOVER_SECRETS_DIR, removed when the instance's
 * process is gone.  Its output goes through a log relay that hides the
 * values it was given (supervisor spec.redact).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/log.h"
#include "base/util.h"
#include "config/config-t.h"
#include "deploy/deploy-internal.h"
#include "secrets/redact.h"
#include "secrets/secrets.h"
#include "supervisor/supervisor-t.h"

int secret_load_prepare(struct secret_load *sl, const struct config *cfg, const struct config_service *cs)
{
	*sl = (struct secret_load){ 0 };
	if (cs && !cs->nsecrets)
		return 0; /* nothing to read */
	sl->wanted = true;
	if (!(sl->identity = strdup(cfg->secrets.identity ? cfg->secrets.identity : "")) ||
	    !(sl->file = strdup(cfg->secrets.file ? cfg->secrets.file : "")) ||
	    !(sl->env = strdup(cfg->env ? cfg->env : "")))
		goto oom;
	if (cs && !(sl->names = calloc(cs->nsecrets, sizeof(*sl->names))))
		goto oom;
	for (size_t i = 0; cs && i < cs->nsecrets; i++) {
		if (!(sl->names[i] = strdup(cs->secrets[i].name)))
			goto oom;
		sl->nnames++;
	}
	return 0;
oom:
	secret_load_release(sl);
	return -ENOMEM;
}

/* " (environment prod)" or "" */
static const char *env_words(const struct secret_load *sl, char *buf, size_t len)
{
	if (!sl->env[0])
		return "";
	snprintf(buf, len, " (environment %s)", sl->env);
	return buf;
}

void secret_load_run(struct secret_load *sl)
{
	struct age_identity id = { 0 };
	char why[400], envw[64];
	const char *flag;

	if (!sl->wanted)
		return;
	flag = sl->env[0] ? " --env " : "";
	if (!sl->identity[0] || !sl->file[0]) {
		snprintf(sl->err, sizeof(sl->err), "no secrets file is configured%s", env_words(sl, envw, sizeof(envw)));
		sl->rc = -ENOENT;
		return;
	}
	sl->rc = age_identity_read(sl->identity, &id, why, sizeof(why));
	if (sl->rc < 0) {
		snprintf(sl->err, sizeof(sl->err),
			 "cannot read the secrets of this server%s: %s (create a key with `cutover secrets keygen%s%s` "
			 "and add its public key with `cutover secrets recipients add`)",
			 env_words(sl, envw, sizeof(envw)), why, flag, sl->env);
		return;
	}
	/* no file at all: every listed secret is missing, said below by name */
	sl->rc = secrets_read(sl->file, &id, true, &sl->out, why, sizeof(why));
	age_identity_release(&id);
	if (sl->rc < 0) {
		snprintf(sl->err, sizeof(sl->err), "cannot read the secrets%s: %s", env_words(sl, envw, sizeof(envw)),
			 why);
		return;
	}
	for (size_t i = 0; i < sl->nnames; i++) {
		if (secrets_find(sl->out, sl->names[i]))
			continue;
		snprintf(sl->err, sizeof(sl->err),
			 "secret %s is missing from %s%s: set it with `cutover secrets set %s%s%s` (nothing was started)",
			 sl->names[i], sl->file, env_words(sl, envw, sizeof(envw)), sl->names[i], flag, sl->env);
		sl->rc = -ENOKEY;
		sl->out = secrets_free(sl->out);
		return;
	}
}

void secret_load_release(struct secret_load *sl)
{
	for (size_t i = 0; i < sl->nnames; i++)
		free(sl->names[i]);
	free(sl->names);
	free(sl->identity);
	free(sl->file);
	free(sl->env);
	secrets_free(sl->out);
	*sl = (struct secret_load){ 0 };
}

/* Hide every value of s (NULL: none) that can be hidden: one too short
 * for redaction is skipped (`cutover secrets set` refuses those; a file
 * written by `age` itself may hold one).  Returns 0, -ENOSPC or -ENOMEM. */
static int add_all(struct redactor *r, const struct secrets *s)
{
	for (size_t i = 0; s && i < s->n; i++) {
		int rc = redactor_add(r, s->items[i].name, s->items[i].value, s->items[i].len);
		if (rc < 0 && rc != -EINVAL)
			return rc;
	}
	return 0;
}

void deployer_secrets_adopt(struct deployer *d, struct secret_load *sl)
{
	struct redactor *r = NULL;
	size_t i;
	int rc;

	if (!sl->out)
		return;
	/* the file read before is kept a while: older instances may hold its values */
	if (d->secrets) {
		secrets_free(d->secrets_before[DEPLOY_SECRETS_KEPT - 1]);
		memmove(d->secrets_before + 1, d->secrets_before,
			(DEPLOY_SECRETS_KEPT - 1) * sizeof(d->secrets_before[0]));
		d->secrets_before[0] = d->secrets;
	}
	d->secrets = sl->out;
	sl->out = NULL;
	rc = redactor_new(&r);
	if (rc == 0)
		rc = add_all(r, d->secrets);
	for (i = 0; rc == 0 && i < DEPLOY_SECRETS_KEPT; i++)
		rc = add_all(r, d->secrets_before[i]);
	if (rc < 0 && rc != -ENOSPC) {
		log_error("cannot hide the secrets in what cutover writes (%s); keeping the previous list",
			  strerror(-rc));
		redactor_free(r);
		return;
	}
	redact_global_set(r);
}

void deployer_secrets_release(struct deployer *d)
{
	d->secrets = secrets_free(d->secrets);
	for (size_t i = 0; i < DEPLOY_SECRETS_KEPT; i++)
		d->secrets_before[i] = secrets_free(d->secrets_before[i]);
	redact_global_set(NULL);
}

void deployer_secrets_startup(struct deployer *d)
{
	const struct config *cfg = d->p->cfg;
	struct secret_load sl;
	bool needed = false;

	for (size_t i = 0; i < cfg->nservices; i++)
		needed = needed || cfg->services[i].nsecrets;
	if (!cfg->secrets.file || (access(cfg->secrets.file, F_OK) < 0 && !needed))
		return; /* no secrets here */
	if (secret_load_prepare(&sl, cfg, NULL) < 0) {
		log_error("cannot load the secrets: out of memory");
		return;
	}
	secret_load_run(&sl);
	if (sl.rc < 0)
		log_error("%s; instances that need secrets cannot start until this is fixed", sl.err);
	else
		deployer_secrets_adopt(d, &sl);
	secret_load_release(&sl);
}

/* RUNTIME_DIR/ID into out. */
static void private_dir(const struct deployer *d, const char *id, char *out, size_t len)
{
	const char *runtime = d->p->cfg->secrets.runtime_dir;

	snprintf(out, len, "%.4000s/%.96s", runtime ? runtime : "/dev/shm/cutover", id);
}

/* Write one file secret: NAME in dir, mode 0400, exclusively. */
static int write_secret_file(const char *dir, const char *name, const struct secret *sec)
{
	char path[4400];
	size_t off = 0;
	int fd, r = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	(void)unlink(path); /* left by an instance of the same id that was not cleaned up */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0400);
	if (fd < 0)
		return -errno;
	while (off < sec->len) {
		ssize_t n = write(fd, sec->value + off, sec->len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			break;
		}
		off += (size_t)n;
	}
	if (close(fd) < 0 && !r)
		r = -errno;
	return r;
}

void slot_secrets_remove(const struct deployer *d, const char *id)
{
	char dir[4200], path[4700];
	struct dirent *e;
	DIR *dh;

	private_dir(d, id, dir, sizeof(dir));
	dh = opendir(dir);
	if (!dh)
		return;
	while ((e = readdir(dh)))
		if (e->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			(void)unlink(path);
		}
	closedir(dh);
	if (rmdir(dir) < 0 && errno != ENOENT)
		log_warn("cannot remove the secrets directory %s: %s", dir, strerror(errno));
}

void slot_secrets_release(struct slot_secrets *ss)
{
	if (ss->env) {
		for (size_t i = 0; ss->env[i]; i++) {
			sodium_memzero(ss->env[i], strlen(ss->env[i]));
			sodium_free(ss->env[i]);
		}
		free(ss->env);
	}
	redactor_free(ss->redact);
	*ss = (struct slot_secrets){ 0 };
}

/* "NAME=VALUE" in sodium memory. */
static char *secret_env_entry(const char *name, const struct secret *sec)
{
	size_t nlen = strlen(name);
	char *e = sodium_malloc(nlen + 1 + sec->len + 1);

	if (!e)
		return NULL;
	memcpy(e, name, nlen);
	e[nlen] = '=';
	memcpy(e + nlen + 1, sec->value, sec->len);
	e[nlen + 1 + sec->len] = 0;
	return e;
}

int slot_secrets_prepare(const struct deployer *d, const struct config_service *cs, const char *id,
			 struct slot_secrets *ss, char *err, size_t errlen)
{
	char dir[4200];
	size_t nenv = 0;
	bool files = false;
	int r = -ENOMEM;

	*ss = (struct slot_secrets){ 0 };
	if (!cs->nsecrets)
		return 0;
	if (!d->secrets) {
		snprintf(err, errlen, "%s needs secrets but none could be read (see the error log)", cs->name);
		return -ENOKEY;
	}
	if (!(ss->env = calloc(cs->nsecrets + 2, sizeof(*ss->env))) || redactor_new(&ss->redact) < 0)
		goto fail;
	private_dir(d, id, dir, sizeof(dir));
	for (size_t i = 0; i < cs->nsecrets; i++) {
		const struct config_service_secret *want = &cs->secrets[i];
		const struct secret *sec = secrets_find(d->secrets, want->name);

		if (!sec) {
			snprintf(err, errlen, "secret %s is missing from %s%s%s", want->name,
				 d->p->cfg->secrets.file, d->p->cfg->env ? " (environment " : "",
				 d->p->cfg->env ? d->p->cfg->env : "");
			if (d->p->cfg->env)
				strncat(err, ")", errlen - strlen(err) - 1);
			r = -ENOKEY;
			goto fail;
		}
		if ((r = redactor_add(ss->redact, sec->name, sec->value, sec->len)) < 0 && r != -EINVAL)
			goto fail;
		if (want->as == CONFIG_SECRET_ENV && memchr(sec->value, 0, sec->len)) {
			snprintf(err, errlen, "secret %s holds a NUL byte: an environment variable cannot carry it; "
				 "give it as a file ({name: %s, file: NAME})", want->name, want->name);
			r = -EINVAL;
			goto fail;
		}
		if (want->as == CONFIG_SECRET_ENV) {
			if (!(ss->env[nenv] = secret_env_entry(want->target, sec))) {
				r = -ENOMEM;
				goto fail;
			}
			nenv++;
			continue;
		}
		if (!files) {
			(void)make_dirs(d->p->cfg->secrets.runtime_dir, 0700);
			if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
				r = -errno;
				snprintf(err, errlen, "cannot create the secrets directory %s: %s", dir, strerror(-r));
				goto fail;
			}
			files = true;
		}
		if ((r = write_secret_file(dir, want->target, sec)) < 0) {
			snprintf(err, errlen, "cannot write the secret file %s/%s: %s", dir, want->target, strerror(-r));
			goto fail;
		}
	}
	if (files) {
		struct secret where = { .value = (uint8_t *)dir, .len = strlen(dir) };
		if (!(ss->env[nenv++] = secret_env_entry("CUTOVER_SECRETS_DIR", &where))) {
			r = -ENOMEM;
			goto fail;
		}
	}
	return 0;
fail:
	if (r == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	if (files)
		slot_secrets_remove(d, id);
	slot_secrets_release(ss);
	return r;
}

/* secrets.c - `cutover secrets keygen|set|list|rm|recipients|rotate`: the
 * encrypted secrets file of an environment from the command line.
 *
 * These verbs work on files, without the daemon: the configuration (with
 * the overlay of --env ENV) says where the secrets file, its recipients
 * file and this machine's identity are (secrets: in cutover.yml).  A verb
 * that decrypts uses --identity FILE, else $CUTOVER_IDENTITY, else the
 * configured identity.  A change decrypts the whole file, changes it in
 * sodium memory, encrypts it again to the recipients with a new file key
 * and replaces the file atomically, under an flock of its directory so
 * that two changes at once do not lose one; then it writes an audit row
 * with the secret's name, never its value.  A value is read from standard
 * input, or from the terminal without echo (asked twice); never from the
 * command line, where any user could read it in /proc.
 *
 * Exit codes: 0 ok; 1 the operation failed (a file, a key, the
 * decryption); 2 usage or configuration error.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include <sodium.h>
#include "cli/cli.h"
#include "base/util.h"
#include "config/config.h"
#include "secrets/secrets.h"
#include "state/state.h"

struct secrets_options {
	const char *identity;         /* --identity FILE */
};

/* What one run of a verb holds; secrets_close() releases it. */
struct session {
	struct cli *c;
	const struct secrets_options *o;
	struct config *cfg;
	struct state *st;
	struct age_identity id;
	char id_path[4096];
	struct age_recipient *rcpt;
	size_t nrcpt;
	bool have_recipients;         /* the recipients file exists */
	struct secrets *s;
	int lock;                     /* the flock'd directory of the secrets file, or -1 */
};

static void session_close(struct session *S)
{
	secrets_free(S->s);
	free(S->rcpt);
	age_identity_release(&S->id);
	if (S->lock >= 0)
		close(S->lock);   /* releases the flock */
	state_close(S->st);
	config_free(S->cfg);
}

/* ---- the steps a verb is made of (each: 0 or an exit code, message printed) ---- */

static int open_config(struct session *S)
{
	const char *path = cli_config_path(S->c);

	if (!path)
		return cli_fail(S->c, EXIT_USAGE, NULL,
				"no configuration: give --config FILE or run where cutover.yml is (its secrets: says "
				"where the secrets file is)");
	return cli_load_config(S->c, path, &S->cfg);
}

static int open_state(struct session *S)
{
	return cli_open_state(S->c, false, &S->st, NULL);
}

/* Read the recipients; required: a missing or empty file is an error. */
static int load_recipients(struct session *S, bool required)
{
	const char *path = S->cfg->secrets.recipients;
	char err[1024];
	int r = age_recipients_read(path, &S->rcpt, &S->nrcpt, err, sizeof(err));

	S->have_recipients = r != -ENOENT;
	if (r == -ENOENT && !required)
		return 0;
	if (r == -ENOENT || (r == 0 && required && S->nrcpt == 0))
		return cli_fail(S->c, EXIT_FAILED, json_pack("{ss}", "recipients", path),
				"%s: no recipients: add one with `cutover secrets recipients add age1...` (the public "
				"key `cutover secrets keygen` printed)", path);
	if (r < 0)
		return cli_fail(S->c, EXIT_FAILED, json_pack("{ss}", "recipients", path), "%s", err);
	return 0;
}

/* Read this user's identity: --identity, else $CUTOVER_IDENTITY, else the
 * configuration's. */
static int load_identity(struct session *S)
{
	const char *env = getenv("CUTOVER_IDENTITY");
	const char *path = S->o->identity ? S->o->identity : env && *env ? env : S->cfg->secrets.identity;
	char err[1024];
	int r;

	snprintf(S->id_path, sizeof(S->id_path), "%s", path);
	r = age_identity_read(path, &S->id, err, sizeof(err));
	if (r == -ENOENT)
		return cli_fail(S->c, EXIT_FAILED, json_pack("{ss}", "identity", path),
				"%s: no identity there: give --identity FILE (or $CUTOVER_IDENTITY), or create one with "
				"`cutover secrets keygen`", path);
	if (r < 0)
		return cli_fail(S->c, EXIT_FAILED, json_pack("{ss}", "identity", path), "%s", err);
	return 0;
}

/* Serialize the changes of this secrets file: flock its directory. */
static int lock_file(struct session *S)
{
	char *copy = strdup(S->cfg->secrets.file);
	int r = 0;

	if (!copy)
		return cli_fail(S->c, EXIT_FAILED, NULL, "out of memory");
	S->lock = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (S->lock < 0)
		r = cli_fail(S->c, EXIT_FAILED, NULL, "%s: cannot open its directory: %s", S->cfg->secrets.file,
			     strerror(errno));
	else if (flock(S->lock, LOCK_EX) < 0)
		r = cli_fail(S->c, EXIT_FAILED, NULL, "%s: cannot lock its directory: %s", S->cfg->secrets.file,
			     strerror(errno));
	free(copy);
	return r;
}

static bool secrets_file_exists(const struct session *S)
{
	return access(S->cfg->secrets.file, F_OK) == 0;
}

/* Decrypt the secrets file (a missing one is an empty set when
 * missing_ok). */
static int load_secrets(struct session *S, bool missing_ok)
{
	char err[1024];
	int r = secrets_read(S->cfg->secrets.file, &S->id, missing_ok, &S->s, err, sizeof(err));

	if (r < 0)
		return cli_fail(S->c, EXIT_FAILED, json_pack("{ss ss}", "file", S->cfg->secrets.file, "identity",
							  S->id_path), "%s", err);
	return 0;
}

static int save_secrets(struct session *S)
{
	char err[1024];

	if (secrets_write(S->cfg->secrets.file, S->s, S->rcpt, S->nrcpt, err, sizeof(err)) < 0)
		return cli_fail(S->c, EXIT_FAILED, json_pack("{ss}", "file", S->cfg->secrets.file),
				"%s; nothing was changed", err);
	return 0;
}

/* Write the audit row (args consumed; never a value in it).  Returns 0,
 * or EXIT_FAILED after telling the user (the change itself is done). */
static int audit(struct session *S, const char *action, json_t *args, const char *detail)
{
	char actor[256];
	struct state_audit_entry e = {
		.actor = actor, .actor_uid = (unsigned)getuid(), .action = action, .target = S->cfg->env,
		.args = args, .result = "ok", .detail = detail, .env = S->cfg->env,
	};
	int r;

	cli_actor_name(actor, sizeof(actor));
	r = state_audit_add(S->st, &e, NULL);
	json_decref(args);
	if (r < 0)
		return cli_fail(S->c, EXIT_FAILED, NULL, "the change is made, but the audit log could not be written: %s",
				state_errmsg(S->st));
	return 0;
}

/* A summary of the file for JSON answers: env, file, counts. */
static json_t *file_json(const struct session *S)
{
	return json_pack("{s:s? s:s s:s s:i s:i}", "env", S->cfg->env, "file", S->cfg->secrets.file, "recipients_file",
			 S->cfg->secrets.recipients, "secrets", S->s ? (int)S->s->n : 0, "recipients", (int)S->nrcpt);
}

/* ---- reading a value --------------------------------------------------------------- */

static int tty_fd = -1;
static struct termios tty_saved;

/* Ctrl-C while the echo is off: put it back, then die of the signal. */
static void restore_tty(int sig)
{
	if (tty_fd >= 0)
		tcsetattr(tty_fd, TCSAFLUSH, &tty_saved);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* One line typed on fd without echo into buf (sodium memory, size bytes).
 * Returns its length (without the newline), or -1. */
static ssize_t read_quiet_line(int fd, const char *prompt, uint8_t *buf, size_t size)
{
	struct termios quiet = tty_saved;
	size_t len = 0;
	ssize_t n = -1;
	char c;

	/* the echo off first: the prompt tells the user to type */
	quiet.c_lflag &= (tcflag_t)~ECHO;
	if (tcsetattr(fd, TCSAFLUSH, &quiet) < 0)
		return -1;
	if (write(fd, prompt, strlen(prompt)) >= 0) {
		while ((n = read(fd, &c, 1)) == 1 && c != '\n') {
			if (len < size)
				buf[len] = (uint8_t)c;
			len++;
		}
	}
	tcsetattr(fd, TCSAFLUSH, &tty_saved);
	sodium_memzero(&c, sizeof(c));
	if (write(fd, "\n", 1) < 0 || n < 0 || len > size)
		return -1;
	return (ssize_t)len;
}

/* Ask for the value twice on the terminal. */
static int prompt_value(struct session *S, const char *name, uint8_t *buf, size_t size, size_t *ret_len)
{
	uint8_t *again = sodium_malloc(size);
	char prompt[160];
	ssize_t a = -1, b = -1;
	int rc = 0;

	if (!again)
		return cli_fail(S->c, EXIT_FAILED, NULL, "out of memory");
	tty_fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (tty_fd < 0 || tcgetattr(tty_fd, &tty_saved) < 0) {
		rc = cli_fail(S->c, EXIT_FAILED, NULL, "cannot use the terminal: %s", strerror(errno));
		goto out;
	}
	signal(SIGINT, restore_tty);
	signal(SIGTERM, restore_tty);
	signal(SIGHUP, restore_tty);
	snprintf(prompt, sizeof(prompt), "value of %s%s%s: ", name, S->cfg->env ? " in " : "",
		 S->cfg->env ? S->cfg->env : "");
	a = read_quiet_line(tty_fd, prompt, buf, size);
	if (a >= 0)
		b = read_quiet_line(tty_fd, "again: ", again, size);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	if (a < 0 || b < 0)
		rc = cli_fail(S->c, EXIT_FAILED, NULL, "cannot read the value from the terminal (at most %d bytes); "
			      "nothing was changed", SECRET_VALUE_MAX);
	else if (a != b || sodium_memcmp(buf, again, (size_t)a) != 0)
		rc = cli_fail(S->c, EXIT_FAILED, NULL, "the two values differ; nothing was changed");
	else
		*ret_len = (size_t)a;
out:
	if (tty_fd >= 0)
		close(tty_fd);
	tty_fd = -1;
	sodium_free(again);
	return rc;
}

/* The value of name: all of standard input (one trailing newline dropped)
 * or, on a terminal, typed twice.  Returns 0 with *ret (sodium memory)
 * and *ret_len, or an exit code. */
static int read_value(struct session *S, const char *name, uint8_t **ret, size_t *ret_len)
{
	size_t size = SECRET_VALUE_MAX + 2, len = 0;
	uint8_t *buf = sodium_malloc(size);
	ssize_t n = 0;
	int rc = 0;

	if (!buf)
		return cli_fail(S->c, EXIT_FAILED, NULL, "out of memory");
	if (isatty(STDIN_FILENO)) {
		rc = prompt_value(S, name, buf, SECRET_VALUE_MAX, &len);
	} else {
		while (len < size && ((n = read(STDIN_FILENO, buf + len, size - len)) > 0 || (n < 0 && errno == EINTR)))
			len += n > 0 ? (size_t)n : 0;
		if (n < 0)
			rc = cli_fail(S->c, EXIT_FAILED, NULL, "cannot read standard input: %s", strerror(errno));
		if (len && buf[len - 1] == '\n')
			len--;
	}
	if (rc == 0 && len > SECRET_VALUE_MAX)
		rc = cli_fail(S->c, EXIT_USAGE, NULL, "the value is longer than %d bytes; nothing was changed",
			      SECRET_VALUE_MAX);
	else if (rc == 0 && len == 0)
		rc = cli_fail(S->c, EXIT_USAGE, NULL, "the value is empty: give it on standard input (for example "
			      "`cutover secrets set %s < FILE`) or type it on a terminal", name);
	else if (rc == 0 && len < SECRET_VALUE_MIN)
		rc = cli_fail(S->c, EXIT_USAGE, NULL, "the value has %zu byte%s, at least %d are needed: a shorter one "
			      "could not be told apart from ordinary text when it is redacted from logs", len,
			      len == 1 ? "" : "s", SECRET_VALUE_MIN);
	if (rc) {
		sodium_free(buf);
		return rc;
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}

/* ---- the verbs ---------------------------------------------------------------------- */

static int secrets_keygen(struct session *S)
{
	const char *path = S->c->nargs ? S->c->args[0] : S->o->identity;
	struct age_recipient pub;
	char err[1024], text[100], *copy = NULL, *dir;
	int rc = 0;

	/* the configured identity: its creation is audited in the state */
	if (!path) {
		if ((rc = open_config(S)) || (rc = open_state(S)))
			return rc;
		path = S->cfg->secrets.identity;
	}
	copy = strdup(path);
	if (!copy)
		return cli_fail(S->c, EXIT_FAILED, NULL, "out of memory");
	dir = dirname(copy);
	if (access(dir, F_OK) < 0 && (rc = make_dirs(dir, 0700)) < 0)
		rc = cli_fail(S->c, EXIT_FAILED, NULL, "%s: cannot create its directory %s: %s", path, dir,
			      strerror(-rc));
	free(copy);
	if (rc)
		return rc;
	if (age_identity_write_new(path, &pub, err, sizeof(err)) < 0)
		return cli_fail(S->c, EXIT_FAILED, json_pack("{ss}", "identity", path), "%s", err);
	age_recipient_format(&pub, text, sizeof(text));
	if (S->st)
		rc = audit(S, "secrets.keygen", json_pack("{ss}", "public_key", text), path);
	if (S->c->json)
		cli_print_json(json_pack("{sb ss ss}", "ok", 1, "identity", path, "public_key", text));
	else
		printf("created %s (mode 0600)\npublic key: %s\n", path, text);
	return rc;
}

static int secrets_set_run(struct session *S)
{
	const char *name = S->c->args[0];
	uint8_t *value = NULL;
	size_t len = 0;
	char by[64], actor[256];
	int rc, r;

	if (!secret_name_valid(name))
		return cli_fail(S->c, EXIT_USAGE, NULL, "NAME '%.80s': secret names are [A-Za-z_][A-Za-z0-9_]*, at most "
				"%d characters", name, SECRET_NAME_MAX);
	if ((rc = open_config(S)) || (rc = open_state(S)) || (rc = load_recipients(S, true)) ||
	    (secrets_file_exists(S) && (rc = load_identity(S))) || (rc = read_value(S, name, &value, &len)))
		return rc;
	/* under the lock, the recipients again: a `recipients add` may have run meanwhile */
	free(S->rcpt);
	S->rcpt = NULL;
	S->nrcpt = 0;
	if ((rc = lock_file(S)) || (rc = load_recipients(S, true)) ||
	    (secrets_file_exists(S) && !S->id.key && (rc = load_identity(S))) || (rc = load_secrets(S, true)))
		goto out;
	cli_actor_name(actor, sizeof(actor));
	snprintf(by, sizeof(by), "%.32s", actor);
	for (char *p = by; *p; p++)
		if (*p <= ' ' || *p > '~')
			*p = '_';
	r = secrets_set(S->s, name, value, len, by);
	if (r < 0) {
		rc = cli_fail(S->c, EXIT_FAILED, NULL, "%s: %s", S->cfg->secrets.file,
			      r == -ENOSPC ? "it holds the most secrets it may (256)" : strerror(-r));
		goto out;
	}
	if ((rc = save_secrets(S)))
		goto out;
	rc = audit(S, "secrets.set", json_pack("{ss}", "name", name), S->cfg->secrets.file);
	if (S->c->json) {
		json_t *j = file_json(S);

		json_object_set_new(j, "name", json_string(name));
		json_object_set_new(j, "ok", json_true());
		cli_print_json(j);
	} else {
		printf("set %s in %s (%zu secret%s, %zu recipient%s)\n", name, S->cfg->secrets.file, S->s->n,
		       S->s->n == 1 ? "" : "s", S->nrcpt, S->nrcpt == 1 ? "" : "s");
	}
out:
	sodium_free(value);
	return rc;
}

static void format_time(int64_t t, char *out, size_t outlen)
{
	time_t secs = (time_t)t;
	struct tm tm;

	if (t <= 0 || !gmtime_r(&secs, &tm) || !strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, outlen, "-");
}

static int secrets_list_run(struct session *S)
{
	json_t *items;
	char when[40];
	int width = 4, rc;

	/* no file yet: nothing to decrypt, no identity needed */
	if ((rc = open_config(S)) || (secrets_file_exists(S) && (rc = load_identity(S))) ||
	    (rc = load_secrets(S, true)))
		return rc;
	if (S->c->json) {
		items = json_array();
		for (size_t i = 0; i < S->s->n; i++) {
			const struct secret *it = &S->s->items[i];

			format_time(it->changed, when, sizeof(when));
			json_array_append_new(items, json_pack("{ss ss sI s:s?}", "name", it->name, "changed", when,
							       "changed_unix", (json_int_t)it->changed, "changed_by",
							       it->changed_by[0] ? it->changed_by : NULL));
		}
		cli_print_json(json_pack("{s:s? s:s s:o}", "env", S->cfg->env, "file", S->cfg->secrets.file, "secrets",
					 items));
		return 0;
	}
	if (!S->s->n) {
		printf("no secrets in %s\n", S->cfg->secrets.file);
		return 0;
	}
	for (size_t i = 0; i < S->s->n; i++)
		if ((int)strlen(S->s->items[i].name) > width)
			width = (int)strlen(S->s->items[i].name);
	printf("%-*s  %-20s  %s\n", width, "NAME", "CHANGED", "BY");
	for (size_t i = 0; i < S->s->n; i++) {
		const struct secret *it = &S->s->items[i];

		format_time(it->changed, when, sizeof(when));
		printf("%-*s  %-20s  %s\n", width, it->name, when, it->changed_by[0] ? it->changed_by : "-");
	}
	return 0;
}

static int secrets_rm_run(struct session *S)
{
	const char *name = S->c->args[0];
	int rc;

	if (!secret_name_valid(name))
		return cli_fail(S->c, EXIT_USAGE, NULL, "NAME '%.80s': secret names are [A-Za-z_][A-Za-z0-9_]*, at most "
				"%d characters", name, SECRET_NAME_MAX);
	if ((rc = open_config(S)) || (rc = open_state(S)) || (rc = load_identity(S)) || (rc = lock_file(S)) ||
	    (rc = load_recipients(S, true)) || (rc = load_secrets(S, false)))
		return rc;
	if (secrets_remove(S->s, name) < 0)
		return cli_fail(S->c, EXIT_FAILED, json_pack("{ss}", "name", name), "no secret %s in %s", name,
				S->cfg->secrets.file);
	if ((rc = save_secrets(S)))
		return rc;
	rc = audit(S, "secrets.rm", json_pack("{ss}", "name", name), S->cfg->secrets.file);
	if (S->c->json) {
		json_t *j = file_json(S);

		json_object_set_new(j, "name", json_string(name));
		json_object_set_new(j, "ok", json_true());
		cli_print_json(j);
	} else {
		printf("removed %s from %s (%zu secret%s left)\n", name, S->cfg->secrets.file, S->s->n,
		       S->s->n == 1 ? "" : "s");
	}
	return rc;
}

static int secrets_rotate_run(struct session *S)
{
	int rc;

	if ((rc = open_config(S)) || (rc = open_state(S)) || (rc = load_identity(S)) || (rc = lock_file(S)) ||
	    (rc = load_recipients(S, true)) || (rc = load_secrets(S, false)) || (rc = save_secrets(S)))
		return rc;
	rc = audit(S, "secrets.rotate", json_pack("{si}", "recipients", (int)S->nrcpt), S->cfg->secrets.file);
	if (S->c->json) {
		json_t *j = file_json(S);

		json_object_set_new(j, "ok", json_true());
		cli_print_json(j);
	} else {
		printf("encrypted %s again with a new file key, to %zu recipient%s (%zu secret%s)\n",
		       S->cfg->secrets.file, S->nrcpt, S->nrcpt == 1 ? "" : "s", S->s->n, S->s->n == 1 ? "" : "s");
	}
	return rc;
}

/* ---- recipients ------------------------------------------------------------------------ */

static int recipients_list(struct session *S)
{
	char text[100];
	json_t *list;
	int rc;

	if ((rc = open_config(S)) || (rc = load_recipients(S, false)))
		return rc;
	if (S->c->json) {
		list = json_array();
		for (size_t i = 0; i < S->nrcpt; i++) {
			age_recipient_format(&S->rcpt[i], text, sizeof(text));
			json_array_append_new(list, json_string(text));
		}
		cli_print_json(json_pack("{s:s? s:s s:b s:o}", "env", S->cfg->env, "file", S->cfg->secrets.recipients,
					 "exists", S->have_recipients, "recipients", list));
		return 0;
	}
	if (!S->nrcpt)
		printf("no recipients in %s\n", S->cfg->secrets.recipients);
	for (size_t i = 0; i < S->nrcpt; i++) {
		age_recipient_format(&S->rcpt[i], text, sizeof(text));
		printf("%s\n", text);
	}
	return 0;
}

/* Replace the recipients file with list (n), then the secrets file (if
 * there is one) encrypted to it; when the second fails, the first is put
 * back.  Returns 0 or an exit code. */
static int recipients_apply(struct session *S, struct age_recipient *list, size_t n)
{
	const char *path = S->cfg->secrets.recipients;
	struct age_recipient *old = S->rcpt;
	size_t nold = S->nrcpt;
	char err[1024];
	int rc;

	if (age_recipients_write(path, list, n, err, sizeof(err)) < 0)
		return cli_fail(S->c, EXIT_FAILED, NULL, "%s; nothing was changed", err);
	S->rcpt = list;
	S->nrcpt = n;
	rc = S->s ? save_secrets(S) : 0;
	S->rcpt = old;
	S->nrcpt = nold;
	if (rc == 0)
		return 0;
	if (!S->have_recipients && unlink(path) < 0)
		fprintf(stderr, "cutover %s: %s could not be removed again: %s\n", S->c->verb, path, strerror(errno));
	else if (S->have_recipients && age_recipients_write(path, old, nold, err, sizeof(err)) < 0)
		fprintf(stderr, "cutover %s: the recipients could not be put back: %s\n", S->c->verb, err);
	return rc;
}

static int recipients_change(struct session *S, bool add)
{
	const char *key = S->c->args[1];
	struct age_recipient r, *list = NULL;
	size_t n = 0, at = SIZE_MAX;
	char me[100];
	int rc;

	if (age_recipient_parse(key, &r) < 0)
		return cli_fail(S->c, EXIT_USAGE, NULL, "'%.100s' is not an X25519 recipient (age1... as `cutover "
				"secrets keygen` or `age-keygen -y` prints it)", key);
	if ((rc = open_config(S)) || (rc = open_state(S)) || (rc = lock_file(S)) || (rc = load_recipients(S, false)))
		return rc;
	for (size_t i = 0; i < S->nrcpt; i++)
		if (!memcmp(S->rcpt[i].key, r.key, 32))
			at = i;
	if (add && at != SIZE_MAX) {
		if (S->c->json)
			cli_print_json(json_pack("{sb sb ss}", "ok", 1, "changed", 0, "recipient", key));
		else
			printf("%s is already a recipient of %s; nothing changed\n", key, S->cfg->secrets.file);
		return 0;
	}
	if (!add && at == SIZE_MAX)
		return cli_fail(S->c, EXIT_FAILED, NULL, "%s is not a recipient of %s (see `cutover secrets recipients`)",
				key, S->cfg->secrets.file);
	if (!add && S->nrcpt == 1)
		return cli_fail(S->c, EXIT_FAILED, NULL, "%s is the last recipient: nobody could read %s without it",
				key, S->cfg->secrets.file);
	/* the file is encrypted again: it must be readable first */
	if (secrets_file_exists(S) && ((rc = load_identity(S)) || (rc = load_secrets(S, false))))
		return rc;
	list = calloc(S->nrcpt + 1, sizeof(*list));
	if (!list)
		return cli_fail(S->c, EXIT_FAILED, NULL, "out of memory");
	for (size_t i = 0; i < S->nrcpt; i++)
		if (i != at)
			list[n++] = S->rcpt[i];
	if (add)
		list[n++] = r;
	rc = recipients_apply(S, list, n);
	free(list);
	if (rc)
		return rc;
	rc = audit(S, add ? "secrets.recipients.add" : "secrets.recipients.rm", json_pack("{ss}", "recipient", key),
		   S->cfg->secrets.recipients);
	me[0] = 0;
	if (S->id.key) {
		memcpy(r.key, S->id.public_key, 32);
		age_recipient_format(&r, me, sizeof(me));
	}
	if (S->c->json) {
		cli_print_json(json_pack("{sb sb ss si s:s? ss}", "ok", 1, "changed", 1, "recipient", key, "recipients",
					 (int)n, "env", S->cfg->env, "file", S->cfg->secrets.file));
	} else {
		printf("%s %s %s %s (%zu recipient%s)", add ? "added" : "removed", key, add ? "to" : "from",
		       S->cfg->secrets.recipients, n, n == 1 ? "" : "s");
		if (S->s)
			printf("; %s is encrypted to them with a new file key\n", S->cfg->secrets.file);
		else
			printf("; no secrets file yet\n");
		if (!add && !strcmp(me, key))
			printf("note: that was this identity's key (%s): it can no longer read the file\n", S->id_path);
	}
	return rc;
}

static int secrets_recipients_run(struct session *S)
{
	const char *action = S->c->nargs ? S->c->args[0] : "list";

	if (!strcmp(action, "list") && S->c->nargs <= 1)
		return recipients_list(S);
	if ((!strcmp(action, "add") || !strcmp(action, "rm")) && S->c->nargs == 2)
		return recipients_change(S, !strcmp(action, "add"));
	return cli_fail(S->c, EXIT_USAGE, NULL, "expected `recipients`, `recipients list`, `recipients add age1...` "
			"or `recipients rm age1...` (see --help)");
}

/* ---- entry point ------------------------------------------------------------------------ */

static int secrets_option(struct cli *c, int opt, const char *arg)
{
	struct secrets_options *o = c->data;

	if (opt != 'i')
		return EXIT_USAGE;
	if (!*arg)
		return cli_fail(c, EXIT_USAGE, NULL, "--identity: empty path");
	o->identity = arg;
	return -1;
}

int cli_secrets(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "identity", required_argument, NULL, 'i' },
		{ 0 },
	};
	static const struct {
		const char *name, *synopsis;
		int min_args, max_args;
		int (*run)(struct session *S);
	} actions[] = {
		{ "keygen", "[FILE]", 0, 1, secrets_keygen },
		{ "set", "NAME", 1, 1, secrets_set_run },
		{ "list", "nothing", 0, 0, secrets_list_run },
		{ "rm", "NAME", 1, 1, secrets_rm_run },
		{ "recipients", "[list | add age1... | rm age1...]", 0, 2, secrets_recipients_run },
		{ "rotate", "nothing", 0, 0, secrets_rotate_run },
	};
	struct secrets_options o = { 0 };
	struct cli c = {
		.verb = "secrets",
		.flags = CLI_CONFIG | CLI_STATE_DIR,
		.max_args = -1,
		.options = opts,
		.shortopts = "i:",
		.option = secrets_option,
		.data = &o,
	};
	struct session S = { .c = &c, .o = &o, .lock = -1 };
	char verb[32];
	int rc = cli_parse(&c, argc, argv);

	if (rc >= 0)
		return rc;
	if (sodium_init() < 0)
		return cli_fail(&c, EXIT_FAILED, NULL, "libsodium could not be initialised");
	if (!c.nargs)
		return cli_fail(&c, EXIT_USAGE, NULL,
				"expected an action: keygen, set, list, rm, recipients or rotate (see --help)");
	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
		if (strcmp(c.args[0], actions[i].name))
			continue;
		snprintf(verb, sizeof(verb), "secrets %s", actions[i].name);
		c.verb = verb;
		c.synopsis = actions[i].synopsis;
		c.min_args = actions[i].min_args;
		c.max_args = actions[i].max_args;
		c.args++;
		c.nargs--;
		if ((rc = cli_check_args(&c)) >= 0)
			return rc;
		rc = actions[i].run(&S);
		session_close(&S);
		return rc;
	}
	return cli_fail(&c, EXIT_USAGE, NULL, "unknown action '%s' (keygen, set, list, rm, recipients or rotate)",
			c.args[0]);
}

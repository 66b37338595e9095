/* state.c - `cutover state backup FILE`, `cutover state restore FILE` and
 * `cutover state check`: the state database as a whole (src/state/backup.c
 * and check.c do the work; docs/internals/state.md, "Backup and restore").
 *
 * backup and check read beside a running daemon (WAL); restore needs the
 * daemon stopped, which it learns from the lock every process that has the
 * state open holds (STATE_DIR/state.lock), never from the admin socket: under
 * systemd socket activation a connection there would start the daemon.
 */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cli/cli.h"
#include "state/state.h"

/* What a backup does not hold, to be kept on their own (they change
 * rarely or never); named when they are in the state directory. */
static const struct {
	const char *name;
	const char *what;
} beside[] = {
	{ "proof.key", "the key that signs the proofs of what runs here (promotions)" },
	{ "identity.key", "the age identity that decrypts the secrets" },
	{ "releases", "the release store" },
};

struct state_options {
	bool force;                   /* --force (backup) */
};

static int state_option(struct cli *c, int opt, const char *arg)
{
	struct state_options *o = c->data;

	if (opt != 'f')
		return EXIT_USAGE;
	o->force = true;
	return -1;
}

static json_t *tables_json(const struct state_file_info *info)
{
	json_t *t = json_object();

	for (size_t i = 0; i < info->ntables; i++)
		if (info->tables[i].rows >= 0)
			json_object_set_new(t, info->tables[i].name, json_integer(info->tables[i].rows));
	return t;
}

static void print_tables(const struct state_file_info *info)
{
	size_t shown = 0;

	printf("  ");
	for (size_t i = 0; i < info->ntables; i++) {
		if (info->tables[i].rows < 0)
			continue;
		printf("%s%s %lld", shown++ ? ", " : "", info->tables[i].name, (long long)info->tables[i].rows);
	}
	printf("\n");
}

static void size_text(uint64_t bytes, char *out, size_t len)
{
	if (bytes >= 10 << 20)
		snprintf(out, len, "%.1f MiB", (double)bytes / (1 << 20));
	else if (bytes >= 10 << 10)
		snprintf(out, len, "%.0f KiB", (double)bytes / 1024);
	else
		snprintf(out, len, "%llu bytes", (unsigned long long)bytes);
}

static int run_backup(struct cli *c, const struct state_options *o)
{
	struct state_file_info info = { 0 };
	char err[1024], size[32], *dir = NULL;
	json_t *missing = json_array();
	struct stat sb;
	int rc, r;

	rc = cli_state_dir(c, true, &dir);
	if (rc)
		goto out;
	r = state_backup(dir, c->args[0], o->force, &info, err, sizeof(err));
	if (r < 0) {
		rc = cli_fail(c, EXIT_FAILED, json_pack("{ss ss}", "state_dir", dir, "file", c->args[0]), "%s", err);
		goto out;
	}
	for (size_t i = 0; i < sizeof(beside) / sizeof(beside[0]); i++) {
		char path[4200];
		snprintf(path, sizeof(path), "%s/%s", dir, beside[i].name);
		if (lstat(path, &sb) == 0)
			json_array_append_new(missing, json_pack("{ss ss ss}", "name", beside[i].name, "path", path,
								 "what", beside[i].what));
	}
	if (c->json) {
		cli_print_json(json_pack("{sb ss ss sI si so sO}", "ok", 1, "file", c->args[0], "state_dir", dir,
					 "size_bytes", (json_int_t)info.size_bytes, "schema_version", info.schema_version,
					 "tables", tables_json(&info), "not_included", missing));
		goto out;
	}
	size_text(info.size_bytes, size, sizeof(size));
	printf("saved the state of %s to %s (%s, schema %d)\n", dir, c->args[0], size, info.schema_version);
	print_tables(&info);
	if (json_array_size(missing)) {
		json_t *m;
		size_t i;
		printf("not in it (back these up on their own; they do not change):\n");
		json_array_foreach(missing, i, m)
			printf("  %s: %s\n", json_string_value(json_object_get(m, "path")),
			       json_string_value(json_object_get(m, "what")));
	}
out:
	json_decref(missing);
	free(dir);
	return rc;
}

/* Who holds DIR/state.lock, from /proc/locks: "cutover daemon (pid 123)"
 * or the like, into out ("" if it cannot tell). */
static void lock_holders(const char *dir, char *out, size_t outlen)
{
	char path[4200], line[256];
	struct stat sb;
	FILE *locks;
	size_t off = 0;

	out[0] = 0;
	snprintf(path, sizeof(path), "%s/state.lock", dir);
	if (stat(path, &sb) < 0 || !(locks = fopen("/proc/locks", "re")))
		return;
	while (fgets(line, sizeof(line), locks) && off < outlen) {
		char kind[16], cmd[256] = "?";
		unsigned long long inode;
		unsigned maj, min;
		int pid, n;
		FILE *fp;

		if (sscanf(line, "%*d: %15s %*s %*s %d %x:%x:%llu", kind, &pid, &maj, &min, &inode) != 5 ||
		    strcmp(kind, "FLOCK") || inode != (unsigned long long)sb.st_ino)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
		if ((fp = fopen(path, "re"))) {
			size_t len = fread(cmd, 1, sizeof(cmd) - 1, fp);
			cmd[len] = 0;
			for (size_t i = 0; i + 1 < len; i++)
				if (!cmd[i])
					cmd[i] = ' ';
			fclose(fp);
		}
		n = snprintf(out + off, outlen - off, "%s%.60s (pid %d)", off ? ", " : "", cmd, pid);
		off += n > 0 ? (size_t)n : 0;
	}
	fclose(locks);
}

/* What the restore kept of the state it replaced (state/present.c). */
static json_t *present_json(const struct state_file_info *info)
{
	const struct state_present *p = &info->present;
	json_t *routing = json_array();

	for (size_t i = 0; i < p->nrouting; i++)
		json_array_append_new(routing, json_pack("{s:s, s:s, s:s?}", "service", p->routing[i].service, "version",
							 p->routing[i].version, "backup_version",
							 p->routing[i].backup_version[0] ? p->routing[i].backup_version : NULL));
	return json_pack("{s:i, s:i, s:o, s:s?}", "releases", p->releases, "instances", p->instances, "routing", routing,
			 "error", info->present_error[0] ? info->present_error : NULL);
}

static void print_present(const struct state_file_info *info)
{
	const struct state_present *p = &info->present;

	if (info->present_error[0]) {
		printf("warning: the state replaced could not be read (%s): processes started after the backup are\n"
		       "not known to it and keep running unadopted; list them with ps and stop them by pid\n",
		       info->present_error);
		return;
	}
	if (p->releases || p->instances)
		printf("kept from the state replaced: %d release%s added after the backup, %d running instance%s "
		       "(adopted at start)\n",
		       p->releases, p->releases == 1 ? "" : "s", p->instances, p->instances == 1 ? "" : "s");
	for (size_t i = 0; i < p->nrouting; i++)
		printf("kept: %s serves %s, as before the restore (the backup had %s)\n", p->routing[i].service,
		       p->routing[i].version, p->routing[i].backup_version[0] ? p->routing[i].backup_version : "nothing");
}

static int run_restore(struct cli *c)
{
	struct state_file_info info = { 0 };
	char err[1024], before[4400], holders[512], actor[96], key[4200], *dir = NULL;
	struct stat sb;
	int rc, r;

	rc = cli_state_dir(c, false, &dir);
	if (rc)
		return rc;
	cli_actor_name(actor, sizeof(actor));
	struct state_restore_request req = { .dir = dir, .file = c->args[0], .actor = actor,
					     .actor_uid = (unsigned)getuid(), .env = c->env };
	r = state_restore(&req, &info, before, sizeof(before), err, sizeof(err));
	if (r == -EBUSY) {
		lock_holders(dir, holders, sizeof(holders));
		rc = cli_fail(c, EXIT_FAILED, json_pack("{ss ss ss}", "state_dir", dir, "file", c->args[0], "held_by", holders),
			      "%s is in use%s%s: stop the daemon first (cutover shutdown, or systemctl stop cutover.socket "
			      "cutover.service), then restore", dir, holders[0] ? " by " : "", holders);
		goto out;
	}
	if (r < 0) {
		rc = cli_fail(c, EXIT_FAILED, json_pack("{ss ss}", "state_dir", dir, "file", c->args[0]), "%s", err);
		goto out;
	}
	snprintf(key, sizeof(key), "%s/proof.key", dir);
	bool no_key = lstat(key, &sb) < 0;
	if (c->json) {
		cli_print_json(json_pack("{s:b, s:s, s:s, s:s?, s:i, s:o, s:b, s:o}", "ok", 1, "file", c->args[0], "state_dir",
					 dir, "previous", before[0] ? before : NULL, "schema_version", info.schema_version,
					 "tables", tables_json(&info), "proof_key", !no_key, "kept", present_json(&info)));
		goto out;
	}
	printf("restored %s into %s/state.db (schema %d)\n", c->args[0], dir, info.schema_version);
	print_tables(&info);
	print_present(&info);
	if (before[0])
		printf("the previous state is kept as %s\n", before);
	if (no_key)
		printf("note: %s has no proof.key: the daemon makes a new one, and the environments that trust the old\n"
		       "proof.pub refuse its proofs; copy the old proof.key and proof.pub back first if you have them\n",
		       dir);
	printf("start the daemon: it reads this state (instances it records that still run are adopted)\n");
out:
	free(dir);
	return rc;
}

static int run_check(struct cli *c)
{
	char err[1024], *dir = NULL;
	struct state *st = NULL;
	json_t *results = NULL, *check, *p;
	size_t i, j, failed = 0;
	int rc, r;

	rc = cli_state_dir(c, true, &dir);
	if (rc)
		return rc;
	r = state_open_check(dir, &st, err, sizeof(err));
	if (r == 0)
		r = state_check(st, &results);
	if (r < 0) {
		rc = cli_fail(c, EXIT_FAILED, json_pack("{ss}", "state_dir", dir), "%s", st ? state_errmsg(st) : err);
		goto out;
	}
	json_array_foreach(results, i, check)
		failed += !json_is_true(json_object_get(check, "ok"));
	if (c->json) {
		cli_print_json(json_pack("{sb ss sI sO}", "ok", failed == 0, "state_dir", dir, "failed", (json_int_t)failed,
					 "checks", results));
	} else {
		json_array_foreach(results, i, check) {
			bool ok = json_is_true(json_object_get(check, "ok"));
			printf("%-5s %-34s %s\n", ok ? "ok" : "FAIL", json_string_value(json_object_get(check, "check")),
			       json_string_value(json_object_get(check, "detail")));
			if (ok || json_array_size(json_object_get(check, "problems")) < 2)
				continue;
			json_array_foreach(json_object_get(check, "problems"), j, p)
				printf("        %s\n", json_string_value(p));
			if (json_integer_value(json_object_get(check, "count")) > (json_int_t)j)
				printf("        ... %lld more\n",
				       (long long)(json_integer_value(json_object_get(check, "count")) - (json_int_t)j));
		}
		printf("%s: %zu checks, %zu failed\n", dir, json_array_size(results), failed);
	}
	rc = failed ? EXIT_FAILED : EXIT_OK;
out:
	json_decref(results);
	state_close(st);
	free(dir);
	return rc;
}

int cli_state(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "force", no_argument, NULL, 'f' },
		{ 0 },
	};
	struct state_options o = { 0 };
	struct cli c = {
		.verb = "state",
		.flags = CLI_CONFIG | CLI_STATE_DIR,
		.max_args = -1,
		.options = opts,
		.option = state_option,
		.data = &o,
	};
	char verb[32];
	int rc = cli_parse(&c, argc, argv);

	if (rc >= 0)
		return rc;
	if (!c.nargs)
		return cli_fail(&c, EXIT_USAGE, NULL, "expected an action: backup FILE, restore FILE or check (see --help)");
	snprintf(verb, sizeof(verb), "state %s", c.args[0]);
	if (strcmp(c.args[0], "backup") && strcmp(c.args[0], "restore") && strcmp(c.args[0], "check"))
		return cli_fail(&c, EXIT_USAGE, NULL, "unknown action '%s' (backup, restore or check)", c.args[0]);
	c.verb = verb;
	c.args++;
	c.nargs--;
	c.synopsis = strcmp(verb, "state check") ? "FILE" : "nothing";
	c.min_args = c.max_args = strcmp(verb, "state check") ? 1 : 0;
	if ((rc = cli_check_args(&c)) >= 0)
		return rc;
	if (o.force && strcmp(verb, "state backup"))
		return cli_fail(&c, EXIT_USAGE, NULL, "--force: only for cutover state backup");
	if (!strcmp(verb, "state backup"))
		return run_backup(&c, &o);
	if (!strcmp(verb, "state restore"))
		return run_restore(&c);
	return run_check(&c);
}

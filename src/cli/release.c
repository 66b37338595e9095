/* release.c - `cutover release add|prune|verify` and `cutover releases`:
 * the release store from the command line.
 *
 * These verbs work on the state directory directly, without the daemon:
 * the store is plain files plus the SQLite state, and SQLite's WAL lets
 * them write while a daemon runs.  The state directory is found as for every
 * state verb (cli_state_dir(): --state-dir, --config, $CUTOVER_STATE_DIR,
 * ./cutover.yml, /var/lib/cutover); releases live in DIR/releases.  Only
 * `release add` creates the state; the others need it to exist.
 * Every action (add, prune, verify) writes an audit row: who (user name and
 * uid), what, on what, with which result.
 *
 * Exit codes: 0 ok; 1 the operation failed (I/O, database, a version that
 * exists with another digest, a release that fails verification); 2 usage
 * or validation error (the message names the argument and why).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include "cli/cli.h"
#include "cli/help.h"
#include "base/util.h"
#include "config/config.h"
#include "config/config-t.h"
#include "store/store.h"
#include "state/state.h"

/* The options of the release verbs besides the shared ones. */
struct release_options {
	bool keep_set;                /* --keep (only for `release prune`) */
	unsigned long keep;
};

static int release_option(struct cli *c, int opt, const char *arg)
{
	struct release_options *o = c->data;
	char *end;

	if (opt != 'k')
		return EXIT_USAGE;
	errno = 0;
	o->keep = strtoul(arg, &end, 10);
	if (errno || *end || arg[0] < '0' || arg[0] > '9' || o->keep < 1 || o->keep > 100000)
		return cli_fail(c, EXIT_USAGE, NULL, "--keep: expected a whole number from 1 to 100000, got '%s'", arg);
	o->keep_set = true;
	return -1;
}

/* Open the state (creating it only for CREATE) and name its store.
 * Returns 0 or an exit code (message printed). */
static int open_state(const struct cli *c, bool create, struct state **st, char *store, size_t storelen)
{
	char *dir = NULL;
	int rc = cli_open_state(c, !create, st, &dir);

	if (rc)
		return rc;
	snprintf(store, storelen, "%s/releases", dir);
	free(dir);
	return 0;
}

/* Write the audit row of this action.  Returns 0, or EXIT_FAILED after
 * telling the user (the action itself is done). */
static int audit(const struct cli *c, struct state *st, const char *action, const char *target, json_t *args,
		 const char *result, const char *detail)
{
	char actor[256];
	struct state_audit_entry e = {
		.actor = actor, .actor_uid = (unsigned)getuid(), .action = action, .target = target,
		.args = args, .result = result, .detail = detail, .env = c->env,
	};
	int r;

	cli_actor_name(actor, sizeof(actor));
	r = state_audit_add(st, &e, NULL);
	json_decref(args);
	if (r < 0) {
		fprintf(stderr, "cutover %s: the audit log could not be written: %s\n", c->verb, state_errmsg(st));
		return EXIT_FAILED;
	}
	return 0;
}

/* "2026-11-22T04:48:54Z" */
static void iso_time(int64_t ms, char *out, size_t outlen)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;

	if (ms <= 0 || !gmtime_r(&secs, &tm) || !strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, outlen, "-");
}

static void human_size(uint64_t bytes, char *out, size_t outlen)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	int u = -1;

	if (bytes < 1024) {
		snprintf(out, outlen, "%llu B", (unsigned long long)bytes);
		return;
	}
	while (v >= 1024 && u < 3) {
		v /= 1024;
		u++;
	}
	snprintf(out, outlen, "%.1f %s", v, units[u]);
}

static json_t *release_json(const struct state_release *r)
{
	char created[40];

	iso_time(r->created_at, created, sizeof(created));
	return json_pack("{ss ss ss ss sI sI ss}", "service", r->service, "version", r->version, "digest",
			 r->digest, "path", r->path ? r->path : "", "size_bytes", (json_int_t)r->size_bytes,
			 "created_at_ms", (json_int_t)r->created_at, "created_at", created);
}

/* ---- the build command of `release add` ------------------------------------ */

/* Run argv (argv[0] a path) in CWD with ENVP, stdout and stderr appended to
 * LOG, and wait.  Returns the exit status (0..255), 256 + the signal that
 * ended it, or -errno if it could not start. */
static int run_and_wait(char *const argv[], char *const envp[], const char *cwd, const char *log)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int r, status;

	if (posix_spawn_file_actions_init(&fa))
		return -ENOMEM;
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0640);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	if (cwd)
		posix_spawn_file_actions_addchdir_np(&fa, cwd);
	r = posix_spawn(&pid, argv[0], &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	if (r)
		return -r;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 256 + WTERMSIG(status);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* The last lines of the file PATH (at most 2 KiB), for an error message. */
static void log_tail(const char *path, char *out, size_t outlen)
{
	FILE *f = fopen(path, "re");
	long size;
	size_t n = 0;

	out[0] = 0;
	if (!f)
		return;
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, size > 2048 ? size - 2048 : 0, SEEK_SET);
	n = fread(out, 1, outlen - 1, f);
	out[n] = 0;
	fclose(f);
	while (n && out[n - 1] == '\n')
		out[--n] = 0;
}

struct build {
	char dir[4500];                /* the built tree ("" if the service has no build) */
	char log[4700];
	char command[1024];
	double seconds;
};

/* If SERVICE has a `build` command in the configuration (--config FILE or
 * ./cutover.yml): copy PATH into a scratch directory of STATE_DIR/builds
 * (a file under its own name, a directory's contents), run the command
 * there with ${VERSION}, ${SERVICE} and ${RELEASE_DIR} (that directory)
 * substituted, its output in STATE_DIR/logs/SERVICE/build-VERSION.log, and
 * leave the built tree in b->dir: the release is made of it.  Returns 0
 * (b->dir empty when there is nothing to build) or an exit code after
 * cli_fail(). */
static int build_release(const struct cli *c, const char *state_dir, const char *service, const char *version,
			 const char *path, struct build *b)
{
	const char *cfgpath = cli_config_path(c);
	const struct config_service *cs = NULL;
	struct config *cfg = NULL;
	char logdir[4500], tail[2100], src[4200], *cmd = NULL, *env[6] = { 0 };
	struct stat sb;
	uint64_t t0;
	int rc = 0, r;

	memset(b, 0, sizeof(*b));
	if (!cfgpath)
		return 0;
	rc = cli_load_config(c, cfgpath, &cfg);
	if (rc)
		return rc;
	for (size_t i = 0; i < cfg->nservices; i++)
		if (!strcmp(cfg->services[i].name, service))
			cs = &cfg->services[i];
	if (!cs || !cs->build)
		goto out;
	snprintf(b->dir, sizeof(b->dir), "%s/builds/%s-%s-XXXXXX", state_dir, service, version);
	snprintf(logdir, sizeof(logdir), "%s/builds", state_dir);
	make_dirs(logdir, 0700);
	snprintf(logdir, sizeof(logdir), "%s/logs/%s", state_dir, service);
	if (make_dirs(logdir, 0750) < 0 || !mkdtemp(b->dir)) {
		rc = cli_fail(c, EXIT_FAILED, NULL, "cannot create a build directory under %s: %s", state_dir,
			      strerror(errno));
		b->dir[0] = 0;
		goto out;
	}
	snprintf(b->log, sizeof(b->log), "%s/build-%s.log", logdir, version);
	unlink(b->log);
	{
		static const char *const names[] = { "VERSION", "SERVICE", "RELEASE_DIR" };
		const char *const vals[] = { version, service, b->dir };
		cmd = substitute_vars(cs->build, names, vals, 3);
	}
	if (!cmd || asprintf(&env[0], "PATH=/usr/local/bin:/usr/bin:/bin") < 0 ||
	    asprintf(&env[1], "HOME=%s", getenv("HOME") ? getenv("HOME") : "/") < 0 ||
	    asprintf(&env[2], "CUTOVER_SERVICE=%s", service) < 0 || asprintf(&env[3], "CUTOVER_VERSION=%s", version) < 0 ||
	    asprintf(&env[4], "RELEASE_DIR=%s", b->dir) < 0) {
		rc = cli_fail(c, EXIT_FAILED, NULL, "out of memory");
		goto out;
	}
	snprintf(b->command, sizeof(b->command), "%s", cmd);
	/* the sources, copied as they are (cp -a keeps modes and links) */
	snprintf(src, sizeof(src), "%s%s", path, stat(path, &sb) == 0 && S_ISDIR(sb.st_mode) ? "/." : "");
	{
		char *cp[] = { "/bin/cp", "-a", "--", src, b->dir, NULL };
		r = run_and_wait(cp, env, NULL, b->log);
	}
	if (r != 0) {
		log_tail(b->log, tail, sizeof(tail));
		rc = cli_fail(c, EXIT_FAILED, json_pack("{ss}", "log", b->log), "cannot copy %s for the build: %s", path,
			      r < 0 ? strerror(-r) : tail);
		goto out;
	}
	if (!c->json)
		printf("building %s %s: %s\n", service, version, cmd);
	fflush(stdout);
	t0 = time_now_ms();
	{
		char *sh[] = { "/bin/sh", "-c", cmd, NULL };
		r = run_and_wait(sh, env, b->dir, b->log);
	}
	b->seconds = (double)(time_now_ms() - t0) / 1000.0;
	if (r != 0) {
		log_tail(b->log, tail, sizeof(tail));
		char how[96];
		if (r < 0)
			snprintf(how, sizeof(how), "could not start /bin/sh: %s", strerror(-r));
		else if (r >= 256)
			snprintf(how, sizeof(how), "killed by signal %d", r - 256);
		else
			snprintf(how, sizeof(how), "exit status %d", r);
		rc = cli_fail(c, EXIT_FAILED, json_pack("{ss si}", "log", b->log, "build_status", r),
			      "the build of %s %s failed (%s after %.1f s); nothing was added. %s %s%s%s", service,
			      version, how, b->seconds, tail[0] ? "Last lines of" : "It printed nothing:", b->log,
			      tail[0] ? ":\n" : "", tail);
		goto out;
	}
out:
	if (rc && b->dir[0]) {
		nftw(b->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		b->dir[0] = 0;
	}
	for (size_t i = 0; i < 5; i++)
		free(env[i]);
	free(cmd);
	config_free(cfg);
	return rc;
}

/* ---- release add ---------------------------------------------------------- */

static int release_add_run(struct cli *c)
{
	struct state *st = NULL;
	struct store_result res = { 0 };
	struct build build = { 0 };
	char store[4200], err[1024], target[256], size[32];
	const char *service, *version, *path;
	int rc, r;

	service = c->args[0];
	version = c->args[1];
	path = c->args[2];
	if (store_check_names(service, version, err, sizeof(err)) < 0)
		return cli_fail(c, EXIT_USAGE, NULL, "%s", err);
	if (access(path, F_OK) < 0)
		return cli_fail(c, EXIT_USAGE, NULL, "PATH '%s': %s", path, strerror(errno));
	rc = open_state(c, true, &st, store, sizeof(store));
	if (rc)
		return rc;
	snprintf(target, sizeof(target), "%s@%s", service, version);
	{
		char state_dir[4200];
		snprintf(state_dir, sizeof(state_dir), "%.*s", (int)(strlen(store) - strlen("/releases")), store);
		rc = build_release(c, state_dir, service, version, path, &build);
	}
	if (rc) {
		audit(c, st, "release.add", target,
		      json_pack("{ss ss ss ss}", "service", service, "version", version, "path", path, "build",
				build.command),
		      "failed", build.command[0] ? "the build failed" : "the configuration could not be read");
		goto out;
	}
	if (build.dir[0])
		path = build.dir; /* the release is what the build left there */
	r = store_add(st, store, service, version, path, &res, err, sizeof(err));
	if (r < 0) {
		rc = r == -EINVAL || r == -ENOENT ? EXIT_USAGE : EXIT_FAILED;
		audit(c, st, "release.add", target, json_pack("{ss ss ss}", "service", service, "version", version,
							       "path", path),
		      "failed", err);
		cli_fail(c, rc, NULL, "%s", err);
		goto out;
	}
	rc = audit(c, st, "release.add", target,
		   json_pack("{ss ss ss ss ss*}", "service", service, "version", version, "path", c->args[2], "digest",
			     res.release.digest, "build", build.dir[0] ? build.command : NULL),
		   "ok", res.existed ? "already present with the same digest" : NULL);
	if (c->json) {
		json_t *obj = release_json(&res.release);

		json_object_set_new(obj, "existed", json_boolean(res.existed));
		if (build.dir[0])
			json_object_set_new(obj, "build", json_pack("{ss sf ss}", "command", build.command, "seconds",
								    build.seconds, "log", build.log));
		cli_print_json(obj);
	} else {
		if (build.dir[0])
			printf("built in %.1f s (log %s)\n", build.seconds, build.log);
		human_size(res.release.size_bytes, size, sizeof(size));
		printf("%s %s %s\n", res.existed ? "already present:" : "added", service, version);
		printf("  digest  sha256:%s\n  size    %s\n  path    %s\n", res.release.digest, size,
		       res.release.path);
	}
out:
	if (build.dir[0])
		nftw(build.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); /* the store has its own copy */
	store_result_clear(&res);
	state_close(st);
	return rc;
}

/* ---- releases -------------------------------------------------------------- */

static int releases_run(struct cli *c)
{
	struct state *st = NULL;
	struct state_release *items = NULL;
	char store[4200], err[1024];
	size_t n = 0, wv = strlen("VERSION"), ws = strlen("SIZE");
	int rc, r, known = 1;

	if (store_check_names(c->args[0], NULL, err, sizeof(err)) < 0)
		return cli_fail(c, EXIT_USAGE, NULL, "%s", err);
	rc = open_state(c, false, &st, store, sizeof(store));
	if (rc)
		return rc;
	r = store_list(st, c->args[0], &items, &n);
	if (r == 0 && !n)
		r = known = state_service_known(st, c->args[0]);
	if (r < 0) {
		rc = cli_fail(c, EXIT_FAILED, NULL, "cannot list the releases of %s: %s", c->args[0], state_errmsg(st));
		goto out;
	}
	if (!known) {
		rc = cli_fail(c, EXIT_FAILED, json_pack("{ss}", "service", c->args[0]),
			      "unknown service '%s' (no deployments / releases recorded)", c->args[0]);
		goto out;
	}
	if (c->json) {
		json_t *list = json_array();

		for (size_t i = 0; i < n; i++)
			json_array_append_new(list, release_json(&items[i]));
		cli_print_json(json_pack("{ss so}", "service", c->args[0], "releases", list));
		goto out;
	}
	if (!n) {
		printf("no releases of %s\n", c->args[0]);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		char size[32];

		human_size(items[i].size_bytes, size, sizeof(size));
		wv = strlen(items[i].version) > wv ? strlen(items[i].version) : wv;
		ws = strlen(size) > ws ? strlen(size) : ws;
	}
	printf("%-*s  %-12s  %*s  %-20s  %s\n", (int)wv, "VERSION", "DIGEST", (int)ws, "SIZE", "CREATED", "PATH");
	for (size_t i = 0; i < n; i++) {
		char size[32], created[40];

		human_size(items[i].size_bytes, size, sizeof(size));
		iso_time(items[i].created_at, created, sizeof(created));
		printf("%-*s  %.12s  %*s  %-20s  %s\n", (int)wv, items[i].version, items[i].digest, (int)ws, size,
		       created, items[i].path);
	}
out:
	state_release_array_free(items, n);
	state_close(st);
	return rc;
}

/* ---- release prune --------------------------------------------------------- */

struct in_use {
	char (*versions)[STATE_VERSION_MAX + 1];
	size_t n, cap;
};

static int in_use_add(struct in_use *u, const char *version)
{
	if (!version || !*version)
		return 0;
	for (size_t i = 0; i < u->n; i++)
		if (!strcmp(u->versions[i], version))
			return 0;
	if (u->n == u->cap) {
		size_t ncap = u->cap ? u->cap * 2 : 8;
		void *grown = reallocarray(u->versions, ncap, sizeof(u->versions[0]));

		if (!grown)
			return -ENOMEM;
		u->versions = grown;
		u->cap = ncap;
	}
	snprintf(u->versions[u->n++], sizeof(u->versions[0]), "%s", version);
	return 0;
}

/* What the state says is in use: routing, live instances, deployments in
 * flight, both ends of the last deployment that finished, and the version
 * `cutover rollback` would go back to (state_lineage_rollback_target). */
static int collect_in_use(struct state *st, const char *service, struct in_use *u)
{
	struct state_routing route = { 0 };
	struct state_instance *inst = NULL;
	struct state_deployment *deps = NULL;
	struct state_lineage *lineage = calloc(1, sizeof(*lineage));
	const char *target;
	size_t n = 0;
	int r;

	r = lineage ? state_routing_get(st, service, &route) : -ENOMEM;
	if (r == 0 || r == -ENOENT)
		r = state_lineage_read(st, service, lineage);
	if (r == 0) {
		target = state_lineage_rollback_target(lineage, route.version[0] ? route.version : NULL);
		r = in_use_add(u, route.version);
		if (r == 0 && target)
			r = in_use_add(u, target);
	}
	state_routing_clear(&route);
	free(lineage);
	if (r < 0)
		return r;
	r = state_instance_list_live(st, service, &inst, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; r == 0 && i < n; i++)
		r = in_use_add(u, inst[i].version);
	state_instance_array_free(inst, n);
	if (r < 0)
		return r;
	r = state_deployment_list_in_flight(st, service, &deps, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; r == 0 && i < n; i++)
		if ((r = in_use_add(u, deps[i].from_version)) == 0)
			r = in_use_add(u, deps[i].to_version);
	state_deployment_array_free(deps, n);
	if (r < 0)
		return r;
	r = state_deployment_list(st, service, 20, &deps, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; r == 0 && i < n; i++) {
		if (!deps[i].finished_at)
			continue;
		if (deps[i].state == STATE_DEPLOYMENT_DONE) {
			if ((r = in_use_add(u, deps[i].from_version)) == 0)
				r = in_use_add(u, deps[i].to_version);
		} else {
			r = in_use_add(u, deps[i].from_version); /* rolled back / failed: still on from */
		}
		break;
	}
	state_deployment_array_free(deps, n);
	return r;
}

static int release_prune_run(struct cli *c)
{
	struct state *st = NULL;
	struct state_release *deleted = NULL, *left = NULL;
	struct in_use used = { 0 };
	const char **names = NULL;
	char store[4200], err[1024];
	size_t ndeleted = 0, nleft = 0;
	const char *service;
	const struct release_options *o = c->data;
	json_t *args;
	int rc, r;

	if (!o->keep_set)
		return cli_fail(c, EXIT_USAGE, NULL, "--keep N is required (how many of the newest releases to keep)");
	service = c->args[0];
	if (store_check_names(service, NULL, err, sizeof(err)) < 0)
		return cli_fail(c, EXIT_USAGE, NULL, "%s", err);
	rc = open_state(c, false, &st, store, sizeof(store));
	if (rc)
		return rc;
	r = collect_in_use(st, service, &used);
	if (r < 0) {
		rc = cli_fail(c, EXIT_FAILED, NULL, "cannot tell which releases of %s are in use: %s", service,
			      r == -ENOMEM ? "out of memory" : state_errmsg(st));
		goto out;
	}
	names = calloc(used.n ? used.n : 1, sizeof(*names));
	if (!names) {
		rc = cli_fail(c, EXIT_FAILED, NULL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < used.n; i++)
		names[i] = used.versions[i];
	r = store_prune(st, store, service, o->keep, names, used.n, &deleted, &ndeleted, err, sizeof(err));
	args = json_pack("{ss sI}", "service", service, "keep", (json_int_t)o->keep);
	if (r < 0) {
		audit(c, st, "release.prune", service, args, "failed", err);
		rc = cli_fail(c, EXIT_FAILED, NULL, "%s", err);
		goto out;
	}
	{
		json_t *versions = json_array();

		for (size_t i = 0; i < ndeleted; i++)
			json_array_append_new(versions, json_string(deleted[i].version));
		json_object_set_new(args, "deleted", versions);
	}
	rc = audit(c, st, "release.prune", service, args, "ok", NULL);
	if (store_list(st, service, &left, &nleft) < 0) {
		left = NULL;
		nleft = 0;
	}
	if (c->json) {
		json_t *del = json_array(), *kept = json_array(), *inuse = json_array();

		for (size_t i = 0; i < ndeleted; i++)
			json_array_append_new(del, release_json(&deleted[i]));
		for (size_t i = 0; i < nleft; i++)
			json_array_append_new(kept, json_string(left[i].version));
		for (size_t i = 0; i < used.n; i++)
			json_array_append_new(inuse, json_string(used.versions[i]));
		cli_print_json(json_pack("{ss sI so so so}", "service", service, "keep", (json_int_t)o->keep,
					 "deleted", del, "kept", kept, "in_use", inuse));
	} else {
		for (size_t i = 0; i < ndeleted; i++)
			printf("deleted %s %s (%.12s)\n", service, deleted[i].version, deleted[i].digest);
		printf("%zu release%s deleted, %zu kept", ndeleted, ndeleted == 1 ? "" : "s", nleft);
		if (used.n) {
			printf(" (in use:");
			for (size_t i = 0; i < used.n; i++)
				printf(" %s", used.versions[i]);
			printf(")");
		}
		printf("\n");
	}
out:
	free(names);
	free(used.versions);
	state_release_array_free(deleted, ndeleted);
	state_release_array_free(left, nleft);
	state_close(st);
	return rc;
}

/* ---- release verify -------------------------------------------------------- */

static int release_verify_run(struct cli *c)
{
	struct state *st = NULL;
	struct state_release rel = { 0 };
	char store[4200], err[1024], target[256];
	int rc, r;

	if (store_check_names(c->args[0], c->args[1], err, sizeof(err)) < 0)
		return cli_fail(c, EXIT_USAGE, NULL, "%s", err);
	rc = open_state(c, false, &st, store, sizeof(store));
	if (rc)
		return rc;
	snprintf(target, sizeof(target), "%s@%s", c->args[0], c->args[1]);
	r = store_verify(st, c->args[0], c->args[1], err, sizeof(err));
	audit(c, st, "release.verify", target, json_pack("{ss ss}", "service", c->args[0], "version", c->args[1]),
	      r == 0 ? "ok" : "failed", r == 0 ? NULL : err);
	if (r < 0) {
		rc = cli_fail(c, EXIT_FAILED, NULL, "%s", err);
		goto out;
	}
	if (store_get(st, c->args[0], c->args[1], &rel) < 0)
		rel.digest[0] = '\0';
	if (c->json)
		cli_print_json(json_pack("{ss ss ss sb}", "service", c->args[0], "version", c->args[1], "digest",
					 rel.digest, "ok", 1));
	else
		printf("%s %s: ok (sha256:%s)\n", c->args[0], c->args[1], rel.digest);
out:
	state_release_clear(&rel);
	state_close(st);
	return rc;
}

/* ---- entry points ---------------------------------------------------------- */

int cli_release(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "keep", required_argument, NULL, 'k' },
		{ 0 },
	};
	static const struct {
		const char *name, *synopsis;
		int nargs;
		int (*run)(struct cli *c);
	} actions[] = {
		{ "add", "SERVICE VERSION PATH", 3, release_add_run },
		{ "prune", "SERVICE", 1, release_prune_run },
		{ "verify", "SERVICE VERSION", 2, release_verify_run },
	};
	struct release_options o = { 0 };
	struct cli c = {
		.verb = "release",
		.flags = CLI_CONFIG | CLI_STATE_DIR,
		.max_args = -1,
		.options = opts,
		.option = release_option,
		.data = &o,
	};
	char verb[32];
	const char *action = cli_first_argument(argc, argv);
	int rc;

	/* multi-service releases (release-run.c) and their reports
	 * (release-report.c) parse their own options */
	if (action && cli_release_is_orchestration(action))
		return cli_release_orchestrate(argc, argv, action);
	if (action && cli_release_is_report(action))
		return cli_release_report(argc, argv, action);
	/* options may come before the action too: the action is the first
	 * argument left */
	rc = cli_parse(&c, argc, argv);
	if (rc >= 0)
		return rc;
	if (!c.nargs) {
		const struct cli_help *h = cli_help_find("release");

		if (h && !c.json)
			fputs(h->text, stderr);
		return cli_fail(&c, EXIT_USAGE, NULL, "expected an action: add, prune or verify (see --help)");
	}
	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
		if (strcmp(c.args[0], actions[i].name))
			continue;
		snprintf(verb, sizeof(verb), "release %s", actions[i].name);
		c.verb = verb;
		c.synopsis = actions[i].synopsis;
		c.min_args = c.max_args = actions[i].nargs;
		c.args++;
		c.nargs--;
		if ((rc = cli_check_args(&c)) >= 0)
			return rc;
		if (o.keep_set && actions[i].run != release_prune_run)
			return cli_fail(&c, EXIT_USAGE, NULL, "--keep: only for `cutover release prune`");
		return actions[i].run(&c);
	}
	return cli_fail(&c, EXIT_USAGE, NULL, "unknown action '%s' (add, prune or verify)", c.args[0]);
}

int cli_releases(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "keep", required_argument, NULL, 'k' },
		{ 0 },
	};
	struct release_options o = { 0 };
	struct cli c = {
		.verb = "releases",
		.flags = CLI_CONFIG | CLI_STATE_DIR,
		.synopsis = "SERVICE",
		.min_args = 1,
		.max_args = 1,
		.options = opts,
		.option = release_option,
		.data = &o,
	};
	int rc = cli_parse(&c, argc, argv);

	return rc >= 0 ? rc : releases_run(&c);
}

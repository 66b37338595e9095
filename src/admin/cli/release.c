/* release.c - `cutover release add|prune|verify` and `cutover releases`:
 * the release store from the command line.
 *
 * These verbs work on the state directory directly, without the daemon:
 * the store is plain files plus the SQLite state, and SQLite's WAL lets
 * them write while a daemon runs.  The state directory is --state-dir, else
 * $CUTOVER_STATE_DIR, else /var/lib/cutover; releases live in DIR/releases.
 * Every action (add, prune, verify) writes an audit row: who (user name and
 * uid), what, on what, with which result.
 *
 * Exit codes: 0 ok; 1 the operation failed (I/O, database, a version that
 * exists with another digest, a release that fails verification); 2 usage
 * or validation error (the message names the argument and why).
 */
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include "admin/cli/cli.h"
#include "release/release.h"
#include "state/state.h"

#define DEFAULT_STATE_DIR "/var/lib/cutover"

struct options {
	const char *verb;             /* "release add", "releases", ... for messages */
	const char *state_dir;
	bool json;
	bool keep_set;
	unsigned long keep;
	char **args;                  /* positional arguments */
	int nargs;
};

static const char release_help[] =
	"usage: cutover release add SERVICE VERSION PATH [--state-dir DIR] [--json]\n"
	"       cutover release prune SERVICE --keep N [--state-dir DIR] [--json]\n"
	"       cutover release verify SERVICE VERSION [--state-dir DIR] [--json]\n"
	"\n"
	"add     copy PATH (a file or a directory) into the read-only, content-addressed\n"
	"        store DIR/releases/SERVICE/SHA256 and record it as SERVICE VERSION.\n"
	"        VERSION is a semantic version (1.4.0, 2.0.0-rc.1+build.7). Adding the same\n"
	"        content again is fine; other content under an existing version is refused.\n"
	"prune   delete the oldest releases of SERVICE beyond the N newest, never one in\n"
	"        use: the version traffic goes to, versions with live instances, those of a\n"
	"        deployment in flight, and the previous version of the last deployment (the\n"
	"        rollback target).\n"
	"verify  recompute the digest of a stored release and compare it with the record.\n"
	"\n"
	"The state directory is --state-dir, else $CUTOVER_STATE_DIR, else " DEFAULT_STATE_DIR ".\n"
	"Exit codes: 0 ok, 1 failed, 2 usage or validation error.\n";

static const char releases_help[] =
	"usage: cutover releases SERVICE [--state-dir DIR] [--json]\n"
	"List the releases of SERVICE, oldest first: version, digest, size, when it was\n"
	"added and where it is stored.\n"
	"The state directory is --state-dir, else $CUTOVER_STATE_DIR, else " DEFAULT_STATE_DIR ".\n"
	"Exit codes: 0 ok, 1 failed, 2 usage or validation error.\n";

/* Print an error for the user: on stderr, and with --json also as one JSON
 * object on stdout.  Returns CODE. */
static int fail(const struct options *o, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(const struct options *o, int code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "cutover %s: %s\n", o->verb, msg);
	if (o->json) {
		json_t *obj = json_pack("{sb ss si}", "ok", 0, "error", msg, "exit_code", code);

		if (obj) {
			json_dumpf(obj, stdout, JSON_COMPACT);
			fputc('\n', stdout);
			json_decref(obj);
		}
	}
	return code;
}

/* Parse options anywhere among the arguments.  Returns -1 to go on, or an
 * exit code (help printed: EXIT_OK; bad option: EXIT_USAGE). */
static int parse_options(int argc, char **argv, struct options *o, const char *help, bool with_keep)
{
	static const struct option opts[] = {
		{ "state-dir", required_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },
		{ "keep", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	optind = 0; /* GNU: restart the scan (another verb may have parsed before) */
	opterr = 0;
	/* GNU getopt permutes: options may come anywhere, "--" ends them. */
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			if (!*optarg)
				return fail(o, EXIT_USAGE, "--state-dir: empty path");
			o->state_dir = optarg;
			break;
		case 'j':
			o->json = true;
			break;
		case 'k': {
			char *end;

			errno = 0;
			o->keep = strtoul(optarg, &end, 10);
			if (!with_keep)
				return fail(o, EXIT_USAGE, "--keep: only for `cutover release prune`");
			if (errno || *end || optarg[0] < '0' || optarg[0] > '9' || o->keep < 1 || o->keep > 100000)
				return fail(o, EXIT_USAGE, "--keep: expected a whole number from 1 to 100000, got '%s'",
					    optarg);
			o->keep_set = true;
			break;
		}
		case 'h':
			fputs(help, stdout);
			return EXIT_OK;
		case ':':
			return fail(o, EXIT_USAGE, "%s: missing its value", argv[optind - 1]);
		default:
			if (optopt)
				return fail(o, EXIT_USAGE, "unknown option '-%c' (see --help)", optopt);
			return fail(o, EXIT_USAGE, "unknown option '%s' (see --help)", argv[optind - 1]);
		}
	}
	o->args = argv + optind;
	o->nargs = argc - optind;
	return -1;
}

/* Open the state directory the options name.  Returns 0 or an exit code. */
static int open_state(const struct options *o, struct state **st, char *store, size_t storelen)
{
	char err[1024];
	const char *dir = o->state_dir;
	int r;

	if (!dir || !*dir)
		dir = getenv("CUTOVER_STATE_DIR");
	if (!dir || !*dir)
		dir = DEFAULT_STATE_DIR;
	r = state_open(dir, st, err, sizeof(err));
	if (r < 0)
		return fail(o, EXIT_FAILED, "%s%s", err,
			    r == -EACCES && !o->state_dir ? " (choose another one with --state-dir DIR)" : "");
	snprintf(store, storelen, "%s/releases", dir);
	return 0;
}

static void actor_name(char *out, size_t outlen)
{
	struct passwd *pw = getpwuid(getuid());

	if (pw && pw->pw_name)
		snprintf(out, outlen, "%s", pw->pw_name);
	else
		snprintf(out, outlen, "uid %u", (unsigned)getuid());
}

/* Write the audit row of this action.  Returns 0, or EXIT_FAILED after
 * telling the user (the action itself is done). */
static int audit(const struct options *o, struct state *st, const char *action, const char *target, json_t *args,
		 const char *result, const char *detail)
{
	char actor[256];
	struct state_audit_entry e = {
		.actor = actor, .actor_uid = (unsigned)getuid(), .action = action, .target = target,
		.args = args, .result = result, .detail = detail,
	};
	int r;

	actor_name(actor, sizeof(actor));
	r = state_audit_add(st, &e, NULL);
	json_decref(args);
	if (r < 0) {
		fprintf(stderr, "cutover %s: the audit log could not be written: %s\n", o->verb, state_errmsg(st));
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

static void print_json(json_t *obj)
{
	json_dumpf(obj, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
	json_decref(obj);
}

/* ---- release add ---------------------------------------------------------- */

static int release_add_run(struct options *o)
{
	struct state *st = NULL;
	struct release_result res = { 0 };
	char store[4200], err[1024], target[256], size[32];
	const char *service, *version, *path;
	int rc, r;

	if (o->nargs != 3)
		return fail(o, EXIT_USAGE, "expected SERVICE VERSION PATH, got %d argument%s (see --help)", o->nargs,
			    o->nargs == 1 ? "" : "s");
	service = o->args[0];
	version = o->args[1];
	path = o->args[2];
	if (release_check_names(service, version, err, sizeof(err)) < 0)
		return fail(o, EXIT_USAGE, "%s", err);
	if (access(path, F_OK) < 0)
		return fail(o, EXIT_USAGE, "PATH '%s': %s", path, strerror(errno));
	rc = open_state(o, &st, store, sizeof(store));
	if (rc)
		return rc;
	snprintf(target, sizeof(target), "%s@%s", service, version);
	r = release_add(st, store, service, version, path, &res, err, sizeof(err));
	if (r < 0) {
		rc = r == -EINVAL || r == -ENOENT ? EXIT_USAGE : EXIT_FAILED;
		audit(o, st, "release.add", target, json_pack("{ss ss ss}", "service", service, "version", version,
							       "path", path),
		      "failed", err);
		fail(o, rc, "%s", err);
		goto out;
	}
	rc = audit(o, st, "release.add", target,
		   json_pack("{ss ss ss ss}", "service", service, "version", version, "path", path, "digest",
			     res.release.digest),
		   "ok", res.existed ? "already present with the same digest" : NULL);
	if (o->json) {
		json_t *obj = release_json(&res.release);

		json_object_set_new(obj, "existed", json_boolean(res.existed));
		print_json(obj);
	} else {
		human_size(res.release.size_bytes, size, sizeof(size));
		printf("%s %s %s\n", res.existed ? "already present:" : "added", service, version);
		printf("  digest  sha256:%s\n  size    %s\n  path    %s\n", res.release.digest, size,
		       res.release.path);
	}
out:
	release_result_clear(&res);
	state_close(st);
	return rc;
}

/* ---- releases -------------------------------------------------------------- */

static int releases_run(struct options *o)
{
	struct state *st = NULL;
	struct state_release *items = NULL;
	char store[4200], err[1024];
	size_t n = 0, wv = strlen("VERSION"), ws = strlen("SIZE");
	int rc, r;

	if (o->nargs != 1)
		return fail(o, EXIT_USAGE, "expected SERVICE, got %d arguments (see --help)", o->nargs);
	if (release_check_names(o->args[0], NULL, err, sizeof(err)) < 0)
		return fail(o, EXIT_USAGE, "%s", err);
	rc = open_state(o, &st, store, sizeof(store));
	if (rc)
		return rc;
	r = release_list(st, o->args[0], &items, &n);
	if (r < 0) {
		rc = fail(o, EXIT_FAILED, "cannot list the releases of %s: %s", o->args[0], state_errmsg(st));
		goto out;
	}
	if (o->json) {
		json_t *list = json_array();

		for (size_t i = 0; i < n; i++)
			json_array_append_new(list, release_json(&items[i]));
		print_json(json_pack("{ss so}", "service", o->args[0], "releases", list));
		goto out;
	}
	if (!n) {
		printf("no releases of %s\n", o->args[0]);
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
 * flight, and both ends of the last deployment that finished (the current
 * version and the rollback target). */
static int collect_in_use(struct state *st, const char *service, struct in_use *u)
{
	struct state_routing route = { 0 };
	struct state_instance *inst = NULL;
	struct state_deployment *deps = NULL;
	size_t n = 0;
	int r;

	r = state_routing_get(st, service, &route);
	if (r == 0) {
		r = in_use_add(u, route.version);
		state_routing_clear(&route);
	}
	if (r < 0 && r != -ENOENT)
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

static int release_prune_run(struct options *o)
{
	struct state *st = NULL;
	struct state_release *deleted = NULL, *left = NULL;
	struct in_use used = { 0 };
	const char **names = NULL;
	char store[4200], err[1024];
	size_t ndeleted = 0, nleft = 0;
	const char *service;
	json_t *args;
	int rc, r;

	if (o->nargs != 1)
		return fail(o, EXIT_USAGE, "expected SERVICE, got %d arguments (see --help)", o->nargs);
	if (!o->keep_set)
		return fail(o, EXIT_USAGE, "--keep N is required (how many of the newest releases to keep)");
	service = o->args[0];
	if (release_check_names(service, NULL, err, sizeof(err)) < 0)
		return fail(o, EXIT_USAGE, "%s", err);
	rc = open_state(o, &st, store, sizeof(store));
	if (rc)
		return rc;
	r = collect_in_use(st, service, &used);
	if (r < 0) {
		rc = fail(o, EXIT_FAILED, "cannot tell which releases of %s are in use: %s", service,
			  r == -ENOMEM ? "out of memory" : state_errmsg(st));
		goto out;
	}
	names = calloc(used.n ? used.n : 1, sizeof(*names));
	if (!names) {
		rc = fail(o, EXIT_FAILED, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < used.n; i++)
		names[i] = used.versions[i];
	r = release_prune(st, store, service, o->keep, names, used.n, &deleted, &ndeleted, err, sizeof(err));
	args = json_pack("{ss sI}", "service", service, "keep", (json_int_t)o->keep);
	if (r < 0) {
		audit(o, st, "release.prune", service, args, "failed", err);
		rc = fail(o, EXIT_FAILED, "%s", err);
		goto out;
	}
	{
		json_t *versions = json_array();

		for (size_t i = 0; i < ndeleted; i++)
			json_array_append_new(versions, json_string(deleted[i].version));
		json_object_set_new(args, "deleted", versions);
	}
	rc = audit(o, st, "release.prune", service, args, "ok", NULL);
	if (release_list(st, service, &left, &nleft) < 0) {
		left = NULL;
		nleft = 0;
	}
	if (o->json) {
		json_t *del = json_array(), *kept = json_array(), *inuse = json_array();

		for (size_t i = 0; i < ndeleted; i++)
			json_array_append_new(del, release_json(&deleted[i]));
		for (size_t i = 0; i < nleft; i++)
			json_array_append_new(kept, json_string(left[i].version));
		for (size_t i = 0; i < used.n; i++)
			json_array_append_new(inuse, json_string(used.versions[i]));
		print_json(json_pack("{ss sI so so so}", "service", service, "keep", (json_int_t)o->keep, "deleted",
				     del, "kept", kept, "in_use", inuse));
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

static int release_verify_run(struct options *o)
{
	struct state *st = NULL;
	struct state_release rel = { 0 };
	char store[4200], err[1024], target[256];
	int rc, r;

	if (o->nargs != 2)
		return fail(o, EXIT_USAGE, "expected SERVICE VERSION, got %d argument%s (see --help)", o->nargs,
			    o->nargs == 1 ? "" : "s");
	if (release_check_names(o->args[0], o->args[1], err, sizeof(err)) < 0)
		return fail(o, EXIT_USAGE, "%s", err);
	rc = open_state(o, &st, store, sizeof(store));
	if (rc)
		return rc;
	snprintf(target, sizeof(target), "%s@%s", o->args[0], o->args[1]);
	r = release_verify(st, o->args[0], o->args[1], err, sizeof(err));
	audit(o, st, "release.verify", target, json_pack("{ss ss}", "service", o->args[0], "version", o->args[1]),
	      r == 0 ? "ok" : "failed", r == 0 ? NULL : err);
	if (r < 0) {
		rc = fail(o, EXIT_FAILED, "%s", err);
		goto out;
	}
	if (release_get(st, o->args[0], o->args[1], &rel) < 0)
		rel.digest[0] = '\0';
	if (o->json)
		print_json(json_pack("{ss ss ss sb}", "service", o->args[0], "version", o->args[1], "digest",
				     rel.digest, "ok", 1));
	else
		printf("%s %s: ok (sha256:%s)\n", o->args[0], o->args[1], rel.digest);
out:
	state_release_clear(&rel);
	state_close(st);
	return rc;
}

/* ---- entry points ---------------------------------------------------------- */

int cli_release(int argc, char **argv)
{
	struct options o = { .verb = "release" };
	char verb[32];
	int rc;

	if (argc < 2 || argv[1][0] == '-') {
		if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
			fputs(release_help, stdout);
			return EXIT_OK;
		}
		fputs(release_help, stderr);
		return EXIT_USAGE;
	}
	snprintf(verb, sizeof(verb), "release %s", argv[1]);
	o.verb = verb;
	if (strcmp(argv[1], "add") && strcmp(argv[1], "prune") && strcmp(argv[1], "verify")) {
		fprintf(stderr, "cutover release: unknown action '%s' (add, prune or verify)\n", argv[1]);
		return EXIT_USAGE;
	}
	rc = parse_options(argc - 1, argv + 1, &o, release_help, !strcmp(argv[1], "prune"));
	if (rc >= 0)
		return rc;
	if (!strcmp(argv[1], "add"))
		return release_add_run(&o);
	if (!strcmp(argv[1], "prune"))
		return release_prune_run(&o);
	return release_verify_run(&o);
}

int cli_releases(int argc, char **argv)
{
	struct options o = { .verb = "releases" };
	int rc;

	rc = parse_options(argc, argv, &o, releases_help, false);
	if (rc >= 0)
		return rc;
	return releases_run(&o);
}

/* test_release_plan.c - release files and plans (src/release/file.c,
 * plan.c, plan-io.c): what a release file may say and the message for
 * what it may not, the groups of the eight-service shop, cycles named by
 * their path, artifacts and digests checked against the store, and the
 * plan's JSON read back as the daemon reads it.
 *
 * The store and what runs are a table here (struct release_lookup is the
 * plan's only view of them); the integration tests use the real ones.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config/config.h"
#include "config/config-t.h"
#include "release/release.h"

#define DIGEST_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define DIGEST_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

/* The shop: eight services and their dependencies. */
static const char shop_config[] =
	"listen: 127.0.0.1:18080\n"
	"state_dir: /tmp/cutover-test-release-plan\n"
	"services:\n"
	"  auth: {run: \"svc ${PORT}\"}\n"
	"  payment: {run: \"svc ${PORT}\", depends_on: [auth]}\n"
	"  inventory: {run: \"svc ${PORT}\", depends_on: [auth]}\n"
	"  user: {run: \"svc ${PORT}\", depends_on: [auth]}\n"
	"  order: {run: \"svc ${PORT}\", depends_on: [auth, payment, inventory]}\n"
	"  notification: {run: \"svc ${PORT}\", depends_on: [auth]}\n"
	"  shipping: {run: \"svc ${PORT}\", depends_on: [order]}\n"
	"  analytics: {run: \"svc ${PORT}\", depends_on: [user, order]}\n"
	"  cdn-origin: {targets: [127.0.0.1:9999]}\n";

/* The store holds every service at 1.0.0 (digest A) and 1.1.0 (digest B);
 * everything runs 1.0.0 except analytics, which runs nothing. */
static int fake_digest(void *data, const char *service, const char *version, char digest[65])
{
	(void)data;
	(void)service;
	if (!strcmp(version, "1.0.0"))
		strcpy(digest, DIGEST_A);
	else if (!strcmp(version, "1.1.0"))
		strcpy(digest, DIGEST_B);
	else
		return -ENOENT;
	return 0;
}

static int fake_live(void *data, const char *service, char version[64])
{
	(void)data;
	if (!strcmp(service, "analytics"))
		return -ENOENT;
	strcpy(version, "1.0.0");
	return 0;
}

static const struct release_lookup lookup = { .digest = fake_digest, .live = fake_live };

struct fixture {
	struct config *cfg;
	char path[64];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct config_error err;

	assert_non_null(f);
	if (config_load_string("cutover.yml", shop_config, strlen(shop_config), &f->cfg, &err) < 0)
		fail_msg("the test's configuration: %s", err.message);
	snprintf(f->path, sizeof(f->path), "/tmp/cutover-release-XXXXXX");
	assert_int_not_equal(mkstemp(f->path), -1);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	unlink(f->path);
	config_free(f->cfg);
	free(f);
	return 0;
}

static void write_file(const struct fixture *f, const char *text)
{
	FILE *fp = fopen(f->path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

/* Load and plan text: 0 with *ret, or the error in err. */
static int plan_text(struct fixture *f, const char *text, struct release_plan **ret, char *err, size_t errlen)
{
	struct release_file *file = NULL;
	int r;

	write_file(f, text);
	r = release_file_load(f->path, &file, err, errlen);
	if (r < 0)
		return r;
	return release_plan_make(file, f->cfg, &lookup, ret, err, errlen);
}

/* ---- the file ------------------------------------------------------------------ */

static void test_file_errors(void **state)
{
	static const struct {
		const char *text, *message;
	} cases[] = {
		{ "", "empty" },
		{ "services: {}\n", "services: or steps: is required" },
		{ "services:\n  auth: 1.1\n", "1.1 is not a valid semantic version" },
		{ "services:\n  auth: {version: 1.1.0, colour: red}\n", "unknown key colour" },
		{ "services:\n  auth: {version: 1.1.0, digest: sha256:abc}\n", "services.auth.digest: expected sha256:" },
		{ "services:\n  Auth: 1.1.0\n", "service names match" },
		{ "services:\n  auth: {digest: sha256:" DIGEST_A "}\n", "version: is required" },
		{ "services:\n  auth: {version: 1.1.0, critical: maybe}\n", "expected true or false" },
		{ "services:\n  auth: {version: 1.1.0, depends_on: [auth]}\n", "auth cannot depend on itself" },
		{ "steps:\n  cdn: {undo: x}\n", "run: is required" },
		{ "steps:\n  cdn: {run: x, timeout: soon}\n", "steps.cdn.timeout: expected a duration" },
		{ "steps:\n  migrate: {run: x, undo: y, point_of_no_return: true}\n", "a point of no return has no undo" },
		{ "services:\n  auth: 1.1.0\nsteps:\n  auth: {run: x}\n", "auth is already a service of this release" },
		{ "services:\n  auth: 1.1.0\ngates:\n  unit: {read: exit}\n", "run: is required" },
		{ "services:\n  auth: 1.1.0\ngates:\n  unit: {run: x, read: exit, min_coverage: 80%}\n",
		  "min_coverage does not apply to read: exit" },
		{ "services:\n  auth: 1.1.0\ngates:\n  cov: {run: x, read: coverage, file: c.json}\n",
		  "min_coverage: is required" },
		{ "services:\n  auth: 1.1.0\ngates:\n  j: {run: x, read: junit}\n", "file: is required with read: junit" },
		{ "services:\n  auth: 1.1.0\ngates:\n  t: {run: x, read: summary, min_pass_rate: 120%}\n",
		  "gates.t.min_pass_rate: expected a percentage" },
		{ "services:\n  auth: 1.1.0\ngates:\n  m: {read: metric, service: auth, max: 1%}\n", NULL },
		{ "services:\n  auth: 1.1.0\ngates:\n  m: {read: metric, max: 1%}\n", "service: is required" },
		{ "services:\n  auth: 1.1.0\ngates:\n  m: {read: metric, service: auth}\n", "max: is required" },
		{ "services:\n  auth: 1.1.0\ngates:\n  m: {read: metric, service: auth, during: canary, max: 1%}\n",
		  "during: canary needs version:" },
		{ "services:\n  auth: 1.1.0\ngates:\n  m: {read: metric, service: auth, metric: p99, max: 2%}\n",
		  "expected a latency" },
		{ "services:\n  auth: 1.1.0\ngates:\n  u: {run: x, when: sometimes}\n", "expected before, between or after" },
		{ "services:\n  auth: 1.1.0\ngates:\n  u: {run: x, when: after, after: auth}\n", "write either when: or after:" },
		{ "services:\n  auth: 1.1.0\nconcurrency: 0\n", "expected 1 to 64" },
		{ "services:\n  auth: 1.1.0\ncolour: red\n", "unknown key colour" },
		{ "services: [auth]\n", "expected a mapping of service names to versions" },
	};
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct release_file *file = NULL;
		char err[1024] = "";
		int r;

		write_file(f, cases[i].text);
		r = release_file_load(f->path, &file, err, sizeof(err));
		if (!cases[i].message) {
			if (r < 0)
				fail_msg("case %zu: refused: %s", i, err);
			release_file_free(file);
			continue;
		}
		if (r != -EINVAL)
			fail_msg("case %zu (%s): accepted", i, cases[i].text);
		if (!strstr(err, cases[i].message) || strncmp(err, f->path, strlen(f->path)))
			fail_msg("case %zu: '%s' lacks the file or '%s'", i, err, cases[i].message);
	}
}

static void test_file_values(void **state)
{
	struct fixture *f = *state;
	struct release_file *file = NULL;
	char err[512];

	write_file(f, "name: spring-sale\n"
		      "concurrency: 3\n"
		      "services:\n"
		      "  auth: 1.1.0\n"
		      "  payment: {version: 1.1.0, digest: \"sha256:" DIGEST_B "\", critical: false}\n"
		      "steps:\n"
		      "  migrate: {run: ./migrate up, point_of_no_return: true, timeout: 90s}\n"
		      "gates:\n"
		      "  unit: {run: make test, read: summary, min_pass_rate: 99.5%, max_failed: 2}\n"
		      "  cov: {run: gcovr, read: coverage, file: cov.json, coverage: branches, min_coverage: 80%}\n"
		      "  errors: {read: metric, service: order, version: 2.0.0, during: canary, max: 0.5%}\n"
		      "  p99: {read: metric, service: order, metric: p99, window: 30s, max: 250ms, after: payment}\n");
	assert_int_equal(release_file_load(f->path, &file, err, sizeof(err)), 0);
	assert_string_equal(file->name, "spring-sale");
	assert_int_equal(file->concurrency, 3);
	assert_int_equal(file->nitems, 3);
	assert_string_equal(file->items[1].digest, DIGEST_B);
	assert_false(file->items[1].critical);
	assert_true(file->items[0].critical);
	assert_int_equal(file->items[2].kind, RELEASE_COMMAND);
	assert_true(file->items[2].point_of_no_return);
	assert_int_equal(file->items[2].timeout_ms, 90000);
	assert_int_equal(file->ngates, 4);
	assert_int_equal(file->gates[0].min_pass_rate_bp, 9950);
	assert_int_equal(file->gates[0].max_failed, 2);
	assert_int_equal(file->gates[0].min_tests, 1);
	assert_int_equal(file->gates[1].coverage, COVERAGE_BRANCHES);
	assert_int_equal(file->gates[1].min_coverage_bp, 8000);
	assert_true(file->gates[2].during_canary);
	assert_int_equal(file->gates[2].max_value, 50);
	assert_int_equal(file->gates[3].metric, METRIC_P99);
	assert_int_equal(file->gates[3].max_value, 250);
	assert_int_equal(file->gates[3].window_ms, 30000);
	assert_int_equal(file->gates[3].when, GATE_AFTER_GROUP);
	release_file_free(file);
}

/* ---- the plan ------------------------------------------------------------------- */

static const char eight[] = "services:\n"
			    "  analytics: 1.1.0\n"
			    "  shipping: 1.1.0\n"
			    "  order: 1.1.0\n"
			    "  notification: 1.1.0\n"
			    "  user: 1.1.0\n"
			    "  inventory: 1.1.0\n"
			    "  payment: 1.1.0\n"
			    "  auth: 1.1.0\n";

/* The names of group g, space-separated. */
static void group_names(const struct release_plan *p, size_t g, char *out, size_t len)
{
	out[0] = 0;
	for (size_t k = p->group_start[g]; k < p->group_start[g + 1]; k++)
		snprintf(out + strlen(out), len - strlen(out), "%s%s", out[0] ? " " : "",
			 p->file->items[p->order[k]].name);
}

static void test_groups_of_the_shop(void **state)
{
	static const char *const want[] = { "auth", "notification user inventory payment", "order", "analytics shipping" };
	struct fixture *f = *state;
	struct release_plan *p = NULL;
	char err[2048], names[256];

	if (plan_text(f, eight, &p, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	assert_int_equal(p->ngroups, 4);
	for (size_t g = 0; g < 4; g++) {
		group_names(p, g, names, sizeof(names));
		assert_string_equal(names, want[g]);
	}
	/* from the store and what runs */
	assert_int_equal(p->concurrency, 4);
	for (size_t i = 0; i < p->file->nitems; i++) {
		assert_string_equal(p->digests[i], DIGEST_B);
		assert_string_equal(p->from_versions[i], strcmp(p->file->items[i].name, "analytics") ? "1.0.0" : "");
	}
	release_plan_free(p);
}

static void test_plan_refusals(void **state)
{
	static const struct {
		const char *text, *messages[3];
	} cases[] = {
		/* a cycle through both files: the release adds auth -> shipping */
		{ "services:\n  auth: {version: 1.1.0, depends_on: [shipping]}\n  order: 1.1.0\n  shipping: 1.1.0\n",
		  { "a dependency cycle: auth → shipping → order → auth" } },
		{ "services:\n  auth: 1.2.0\n", { "auth 1.2.0 is not in the release store" } },
		{ "services:\n  auth: {version: 1.1.0, digest: sha256:" DIGEST_A "}\n",
		  { "holds auth 1.1.0 as sha256:" DIGEST_B ", not sha256:" DIGEST_A } },
		{ "services:\n  auth: {version: 1.1.0, depends_on: [ledger]}\n",
		  { "auth depends on ledger (the release file): no such service or step" } },
		/* analytics needs user and order: they run, fine; but analytics itself is needed by a step */
		{ "services:\n  shipping: 1.1.0\nsteps:\n  report: {run: x, depends_on: [analytics]}\n",
		  { "report depends on analytics (the release file), which this release does not deploy and which does "
		    "not run" } },
		{ "services:\n  cdn-origin: 1.1.0\n", { "cutover does not run it" } },
		{ "services:\n  billing: 1.1.0\n", { "services.billing: not a service of" } },
		{ "services:\n  auth: 1.1.0\ngates:\n  e2e: {run: x, after: order}\n",
		  { "gates.e2e.after: order is not a service or step of this release" } },
		/* every problem at once */
		{ "services:\n  auth: 1.2.0\n  user: {version: 1.1.0, depends_on: [ledger]}\n",
		  { "auth 1.2.0 is not in the release store", "user depends on ledger" } },
	};
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct release_plan *p = NULL;
		char err[4096] = "";
		int r = plan_text(f, cases[i].text, &p, err, sizeof(err));

		if (r != -EINVAL)
			fail_msg("case %zu: %d (%s)", i, r, err);
		for (size_t k = 0; k < 3 && cases[i].messages[k]; k++)
			if (!strstr(err, cases[i].messages[k]))
				fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].messages[k]);
	}
}

static void test_json_round_trip(void **state)
{
	struct fixture *f = *state;
	struct release_plan *p = NULL, *back = NULL;
	char err[2048], *a, *b;
	json_t *j, *k;

	if (plan_text(f,
		      "services:\n  auth: 1.1.0\n  order: {version: 1.1.0, critical: false}\n"
		      "steps:\n  cdn: {run: ./publish, undo: ./unpublish, depends_on: [order]}\n"
		      "gates:\n  unit: {run: make test, read: junit, file: junit.xml, max_failed: 1}\n"
		      "  canary: {read: metric, service: order, version: 1.1.0, during: canary, max: 1%}\n",
		      &p, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	j = release_plan_json(p);
	assert_non_null(j);
	assert_int_equal(release_plan_from_json(j, &back, err, sizeof(err)), 0);
	k = release_plan_json(back);
	a = json_dumps(j, JSON_SORT_KEYS);
	b = json_dumps(k, JSON_SORT_KEYS);
	assert_string_equal(a, b);
	/* a damaged plan is refused, not trusted */
	json_object_set_new(json_array_get(json_array_get(json_object_get(j, "groups"), 0), 0), "version",
			    json_string("not-semver"));
	release_plan_free(back);
	back = NULL;
	assert_int_equal(release_plan_from_json(j, &back, err, sizeof(err)), -EINVAL);
	assert_null(back);
	free(a);
	free(b);
	json_decref(j);
	json_decref(k);
	release_plan_free(p);
}

static void test_dot_and_text(void **state)
{
	struct fixture *f = *state;
	struct release_plan *p = NULL;
	char err[2048], *dot, *text;

	if (plan_text(f, eight, &p, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	dot = release_plan_dot(p);
	text = release_plan_text(p);
	assert_non_null(strstr(dot, "digraph"));
	assert_non_null(strstr(dot, "\"order\" -> \"payment\";"));
	assert_non_null(strstr(dot, "\"analytics\" -> \"user\";"));
	assert_non_null(strstr(text, "8 services, 0 command steps, 4 groups"));
	assert_non_null(strstr(text, "(none) → 1.1.0"));
	free(dot);
	free(text);
	release_plan_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_file_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_groups_of_the_shop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plan_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dot_and_text, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

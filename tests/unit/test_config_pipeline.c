/* test_config_pipeline.c - unit tests for the pipeline: section of the
 * configuration loader (src/config/pipeline.c): the stages with their
 * actions (run, deploy, promote, release), defaults, variables and ${ENV},
 * an overlay replacing the pipeline, `config show`, and one table of
 * invalid pipelines, each naming the exact line, column and field the
 * message must carry and a piece of its reason.
 *
 * Kept apart from test_config.c (the rest of the loader) but written the
 * same way.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "config/config.h"
#include "config/show.h"
#include "config/yaml-tree.h"

#define NAME "conf/cutover.yml"
/* lines 1-5, then pipeline: on line 6 and the stages from line 7 */
#define HEAD "listen: 127.0.0.1:8080\n"                                                   \
	     "variables: {V: 1.4.0, SVC: shop}\n"                                        \
	     "services:\n"                                                               \
	     "  shop:\n"                                                                 \
	     "    targets: [127.0.0.1:9001]\n"
#define PIPELINE HEAD "pipeline:\n"

static struct config *load(const char *text)
{
	struct config_error err;
	struct config *cfg = NULL;

	if (config_load_string(NAME, text, strlen(text), &cfg, &err) < 0)
		fail_msg("expected a valid config, got: %s", err.message);
	return cfg;
}

static void test_no_pipeline(void **state UNUSED)
{
	struct config *cfg = load(HEAD);

	assert_int_equal(cfg->pipeline.nstages, 0);
	assert_null(cfg->pipeline.stages);
	config_free(cfg);
	cfg = load(HEAD "pipeline: ~\n");
	assert_int_equal(cfg->pipeline.nstages, 0);
	config_free(cfg);
}

static void test_stages(void **state UNUSED)
{
	struct config *cfg = load(PIPELINE
				  "  - name: build\n"
				  "    run: make VERSION=${V} ENV=${ENV}\n"
				  "    env: {A: \"x-${ENV}\", B: \"${SVC}\"}\n"
				  "  - name: ship\n"
				  "    deploy: {service: \"${SVC}\", version: \"${V}\", env: staging, wait: true}\n"
				  "    timeout: 90s\n"
				  "  - name: promote\n"
				  "    promote: {service: shop, from: staging}\n"
				  "  - name: spring\n"
				  "    release: releases/spring.yml\n"
				  "    when: always\n"
				  "  - name: autumn_2\n"
				  "    release: {file: /srv/autumn.yml, env: prod, wait: true}\n");
	const struct config_stage *st = cfg->pipeline.stages;

	assert_int_equal(cfg->pipeline.nstages, 5);
	assert_string_equal(st[0].name, "build");
	assert_int_equal(st[0].kind, CONFIG_STAGE_RUN);
	/* variables: substituted at load, ${ENV} kept for the run */
	assert_string_equal(st[0].run, "make VERSION=1.4.0 ENV=${ENV}");
	assert_true(st[0].uses_env);
	assert_int_equal(st[0].timeout_ms, 30 * 60 * 1000);
	assert_int_equal(st[0].when, CONFIG_STAGE_ON_SUCCESS);
	assert_int_equal(st[0].nenv, 2);
	assert_string_equal(st[0].env[0].name, "A");
	assert_string_equal(st[0].env[0].value, "x-${ENV}");
	assert_string_equal(st[0].env[1].value, "shop");
	assert_int_equal(st[0].line, 7);

	assert_int_equal(st[1].kind, CONFIG_STAGE_DEPLOY);
	assert_string_equal(st[1].service, "shop");
	assert_string_equal(st[1].version, "1.4.0");
	assert_string_equal(st[1].target_env, "staging");
	assert_true(st[1].wait);
	assert_false(st[1].uses_env);
	assert_int_equal(st[1].timeout_ms, 90 * 1000);

	assert_int_equal(st[2].kind, CONFIG_STAGE_PROMOTE);
	assert_string_equal(st[2].from, "staging");
	assert_null(st[2].target_env);  /* the pipeline's --env */
	assert_false(st[2].wait);

	assert_int_equal(st[3].kind, CONFIG_STAGE_RELEASE);
	assert_string_equal(st[3].file, "conf/releases/spring.yml");  /* relative to the file */
	assert_null(st[3].target_env);
	assert_int_equal(st[3].when, CONFIG_STAGE_ALWAYS);
	assert_string_equal(st[4].file, "/srv/autumn.yml");
	assert_string_equal(st[4].target_env, "prod");
	assert_false(st[3].wait);
	assert_true(st[4].wait);
	config_free(cfg);
}

/* An overlay's pipeline: replaces the base's (a list); null removes it. */
static void test_overlay(void **state UNUSED)
{
	static const char base[] = PIPELINE "  - name: build\n    run: make\n  - name: test\n    run: make test\n";
	static const char prod[] = "variables: {V: 2.0.0}\n"
				   "pipeline:\n  - name: promote\n    promote: {service: shop, from: staging, to: prod}\n"
				   "  - name: smoke\n    run: curl ${V}\n";
	struct config_source sources[2] = {
		{ .name = "cutover.yml", .text = base, .len = strlen(base) },
		{ .name = "cutover.prod.yml", .text = prod, .len = strlen(prod) },
	};
	struct config_error err;
	struct config *cfg = NULL;
	struct ynode *tree = NULL;
	json_t *doc, *stage;

	if (config_load_sources_tree(sources, 2, &cfg, &tree, &err) < 0)
		fail_msg("%s", err.message);
	assert_int_equal(cfg->pipeline.nstages, 2);
	assert_string_equal(cfg->pipeline.stages[0].name, "promote");
	assert_string_equal(cfg->pipeline.stages[0].target_env, "prod");
	assert_string_equal(cfg->pipeline.stages[1].run, "curl 2.0.0");

	/* config show: each value with the file and line it came from */
	doc = config_show_json(cfg, tree);
	assert_non_null(doc);
	stage = json_array_get(json_object_get(json_object_get(doc, "config"), "pipeline"), 0);
	assert_string_equal(json_string_value(json_object_get(json_object_get(stage, "name"), "value")), "promote");
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(stage, "name"), "origin"),
							      "file")),
			    "cutover.prod.yml");
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(json_object_get(stage, "promote"), "to"), "value")),
			    "prod");
	assert_string_equal(json_string_value(json_object_get(json_object_get(stage, "timeout"), "value")), "30m");
	assert_string_equal(json_string_value(json_object_get(json_object_get(stage, "timeout"), "origin")), "default");
	json_decref(doc);
	ynode_free(tree);
	config_free(cfg);
}

struct invalid_case {
	const char *name;
	const char *text;
	int line, column;
	const char *field;
	const char *reason;
};

static const struct invalid_case invalid_cases[] = {
	{ "not a list", PIPELINE "  build: make\n", 7, 3, "pipeline", "must be a list of stages" },
	{ "empty list", HEAD "pipeline: []\n", 6, 11, "pipeline", "at least one stage" },
	{ "a stage not a mapping", PIPELINE "  - make\n", 7, 5, "pipeline[0]", "must be a mapping {name, and one of" },
	{ "unknown key", PIPELINE "  - name: a\n    rn: make\n", 8, 5, "pipeline[0].rn", "did you mean \"run\"?" },
	{ "no name", PIPELINE "  - run: make\n", 7, 5, "pipeline[0]", "a stage needs a name" },
	{ "name with capitals", PIPELINE "  - name: Build\n    run: make\n", 7, 11, "pipeline[0].name",
	  "stage names must match [a-z0-9][a-z0-9_-]{0,62}, got \"Build\"" },
	{ "name twice", PIPELINE "  - name: a\n    run: x\n  - name: b\n    run: y\n  - name: a\n    run: z\n", 11, 11,
	  "pipeline[2].name", "stage \"a\" is named twice (also pipeline[0], line 7)" },
	{ "no action", PIPELINE "  - name: a\n    timeout: 1m\n", 7, 5, "pipeline[0]",
	  "a stage needs one of run: (a shell command), deploy:, promote: or release:" },
	{ "two actions", PIPELINE "  - name: a\n    run: make\n    release: r.yml\n", 9, 5, "pipeline[0].release",
	  "a stage does one thing: run: (line 8) and release: are both given" },
	{ "empty command", PIPELINE "  - name: a\n    run: \"\"\n", 8, 10, "pipeline[0].run", "must be a shell command" },
	{ "${PORT} in a command", PIPELINE "  - name: a\n    run: echo ${PORT}\n", 8, 10, "pipeline[0].run",
	  "${PORT} is not known in a pipeline stage" },
	{ "unknown variable", PIPELINE "  - name: a\n    run: echo ${EVN}\n", 8, 10, "pipeline[0].run",
	  "unknown variable ${EVN} (did you mean ${ENV}?)" },
	{ "timeout too short", PIPELINE "  - name: a\n    run: x\n    timeout: 500ms\n", 9, 14, "pipeline[0].timeout",
	  "must be between 1s and 24h" },
	{ "when", PIPELINE "  - name: a\n    run: x\n    when: failure\n", 9, 11, "pipeline[0].when",
	  "must be success or always" },
	{ "env reserved", PIPELINE "  - name: a\n    run: x\n    env: {CUTOVER_ENV: x}\n", 9, 11,
	  "pipeline[0].env.CUTOVER_ENV", "CUTOVER_ENV is set by the pipeline itself" },
	{ "env bad name", PIPELINE "  - name: a\n    run: x\n    env: {1A: x}\n", 9, 11, "pipeline[0].env.1A",
	  "variable names must match" },
	{ "deploy without version", PIPELINE "  - name: a\n    deploy: {service: shop}\n", 8, 13,
	  "pipeline[0].deploy.version", "is required (deploy: takes a mapping {service, version, env, wait})" },
	{ "deploy a scalar", PIPELINE "  - name: a\n    deploy: shop\n", 8, 13, "pipeline[0].deploy",
	  "must be a mapping {service, version, env, wait}" },
	{ "deploy with from", PIPELINE "  - name: a\n    deploy: {service: shop, version: 1.0.0, from: a}\n", 8, 45,
	  "pipeline[0].deploy.from", "deploy: takes a mapping {service, version, env, wait}" },
	{ "deploy an unknown service", PIPELINE "  - name: a\n    deploy: {service: shpo, version: 1.0.0}\n", 8, 23,
	  "pipeline[0].deploy.service", "unknown service \"shpo\" (not in services:)" },
	{ "deploy a version with a space", PIPELINE "  - name: a\n    deploy: {service: shop, version: \"1 2\"}\n",
	  8, 38, "pipeline[0].deploy.version", "must be a version without spaces" },
	{ "deploy env invalid", PIPELINE "  - name: a\n    deploy: {service: shop, version: 1.0.0, env: Prod}\n", 8,
	  50, "pipeline[0].deploy.env", "must be an environment name" },
	{ "deploy ${ENV} in version", PIPELINE "  - name: a\n    deploy: {service: shop, version: \"${ENV}\"}\n", 8,
	  38, "pipeline[0].deploy.version", "${ENV} is not known here" },
	{ "wait not a bool", PIPELINE "  - name: a\n    deploy: {service: shop, version: 1.0.0, wait: yes}\n", 8, 51,
	  "pipeline[0].deploy.wait", "must be true or false" },
	{ "promote to itself", PIPELINE "  - name: a\n    promote: {service: shop, from: prod, to: prod}\n", 8, 46,
	  "pipeline[0].promote.to", "must differ from from: (both prod)" },
	{ "promote without from", PIPELINE "  - name: a\n    promote: {service: shop}\n", 8, 14,
	  "pipeline[0].promote.from", "is required" },
	{ "promote an unknown service", PIPELINE "  - name: a\n    promote: {service: web, from: staging}\n", 8, 24,
	  "pipeline[0].promote.service", "unknown service \"web\"" },
	{ "release with a variable", PIPELINE "  - name: a\n    release: \"r-${V}.yml\"\n", 8, 14, "pipeline[0].release",
	  "variables are not substituted in a path" },
	{ "release mapping without file", PIPELINE "  - name: a\n    release: {env: prod}\n", 8, 14,
	  "pipeline[0].release.file", "is required" },
	{ "variables: ENV", "variables: {ENV: prod}\n" HEAD, 1, 13, "variables.ENV",
	  "${ENV} is cutover's own variable" },
};

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

/* ${ENV} belongs to the pipeline: a service's command may not use it. */
static void test_env_only_in_pipeline(void **state UNUSED)
{
	static const char text[] = "listen: 127.0.0.1:8080\nservices:\n  shop:\n    run: ./shop --port ${PORT} --env ${ENV}\n";
	struct config_error err;
	struct config *cfg = NULL;

	assert_int_equal(config_load_string(NAME, text, strlen(text), &cfg, &err), -EINVAL);
	assert_null(cfg);
	assert_string_equal(err.field, "services.shop.run");
	assert_non_null(strstr(err.message, "${ENV} is only known in the stages of pipeline:"));
}

int main(void)
{
	const struct CMUnitTest valid[] = {
		cmocka_unit_test(test_no_pipeline),
		cmocka_unit_test(test_stages),
		cmocka_unit_test(test_overlay),
		cmocka_unit_test(test_env_only_in_pipeline),
	};
	struct CMUnitTest invalid[ARRAY_SIZE(invalid_cases)];
	int failed;

	for (size_t i = 0; i < ARRAY_SIZE(invalid_cases); i++)
		invalid[i] = (struct CMUnitTest){
			.name = invalid_cases[i].name,
			.test_func = test_invalid,
			.initial_state = (void *)&invalid_cases[i],
		};
	failed = cmocka_run_group_tests_name("config pipeline valid", valid, NULL, NULL);
	failed += cmocka_run_group_tests_name("config pipeline invalid", invalid, NULL, NULL);
	return failed;
}

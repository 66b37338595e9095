/* test_config_notify.c - unit tests for the notifications: section of the
 * configuration loader (src/config/notify.c): the webhooks with their
 * defaults, the URL rule they share with the notifier
 * (config_webhook_url_check), and one table of invalid sections, each
 * naming the exact line, column and field the message must carry and a
 * piece of its reason.  Written as test_config_secrets.c is.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "config/config.h"

#define NAME "cutover.yml"
#define SHOP "listen: 127.0.0.1:8080\nservices:\n  shop:\n    targets: [127.0.0.1:9001]\n" /* lines 1-4 */
#define ALL_EVENTS ((1u << CONFIG_NOTIFY_NEVENTS) - 1)

static struct config *load(const char *text)
{
	struct config_error err;
	struct config *cfg = NULL;

	if (config_load_string(NAME, text, strlen(text), &cfg, &err) < 0)
		fail_msg("expected a valid config, got: %s", err.message);
	return cfg;
}

static void test_none(void **state UNUSED)
{
	static const char *const texts[] = {
		SHOP,
		SHOP "notifications:\n",
		SHOP "notifications: {}\n",
		SHOP "notifications:\n  webhooks:\n",
		SHOP "notifications:\n  webhooks: []\n",
	};

	for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
		struct config *cfg = load(texts[i]);

		assert_int_equal(cfg->notifications.nwebhooks, 0);
		assert_null(cfg->notifications.webhooks);
		config_free(cfg);
	}
}

static void test_defaults_and_values(void **state UNUSED)
{
	struct config *cfg = load(SHOP "notifications:\n"
				       "  webhooks:\n"
				       "    - url: https://hooks.slack.com/services/T0/B0/XYZ\n"
				       "    - url_secret: SLACK_OPS\n"
				       "      name: ops\n"
				       "      events: [failed, rolled-back]\n"
				       "      format: json\n"
				       "      timeout: 2s\n"
				       "      retries: 0\n"
				       "      backoff: 250ms\n"
				       "      queue: 7\n");
	const struct config_webhook *w = cfg->notifications.webhooks;

	assert_int_equal(cfg->notifications.nwebhooks, 2);
	assert_string_equal(w[0].name, "0");
	assert_string_equal(w[0].url, "https://hooks.slack.com/services/T0/B0/XYZ");
	assert_null(w[0].url_secret);
	assert_int_equal(w[0].events, ALL_EVENTS);
	assert_int_equal(w[0].format, CONFIG_WEBHOOK_SLACK);
	assert_int_equal(w[0].timeout_ms, 5000);
	assert_int_equal(w[0].retries, 5);
	assert_int_equal(w[0].backoff_ms, 1000);
	assert_int_equal(w[0].queue, 100);
	assert_int_equal(w[0].line, 7);

	assert_string_equal(w[1].name, "ops");
	assert_null(w[1].url);
	assert_string_equal(w[1].url_secret, "SLACK_OPS");
	assert_int_equal(w[1].events, (1u << CONFIG_NOTIFY_FAILED) | (1u << CONFIG_NOTIFY_ROLLED_BACK));
	assert_int_equal(w[1].format, CONFIG_WEBHOOK_JSON);
	assert_int_equal(w[1].timeout_ms, 2000);
	assert_int_equal(w[1].retries, 0);
	assert_int_equal(w[1].backoff_ms, 250);
	assert_int_equal(w[1].queue, 7);
	config_free(cfg);
}

static void test_event_names(void **state UNUSED)
{
	static const char *const want[CONFIG_NOTIFY_NEVENTS] = { "started", "step", "succeeded", "rolled-back",
								 "failed", "approval-needed" };

	for (size_t i = 0; i < CONFIG_NOTIFY_NEVENTS; i++)
		assert_string_equal(config_notify_event_names[i], want[i]);
	assert_string_equal(config_webhook_format_names[CONFIG_WEBHOOK_SLACK], "slack");
	assert_string_equal(config_webhook_format_names[CONFIG_WEBHOOK_JSON], "json");
}

struct url_case {
	const char *url;
	const char *origin;           /* NULL: refused, why containing reason */
	const char *reason;
};

static const struct url_case url_cases[] = {
	{ "https://hooks.slack.com/services/T0/B0/XYZ", "https://hooks.slack.com", NULL },
	{ "http://127.0.0.1:8080/hook?x=1#y", "http://127.0.0.1:8080", NULL },
	{ "HTTPS://Example.COM", "https://Example.COM", NULL },
	{ "http://user:pw@host:81/p", "http://host:81", NULL },
	{ "http://[::1]:9000/x", "http://[::1]:9000", NULL },
	{ "http://h?q", "http://h", NULL },
	{ "ftp://host/x", NULL, "http:// or https://" },
	{ "hooks.slack.com/services/x", NULL, "http:// or https://" },
	{ "https://", NULL, "has no host" },
	{ "https:///path", NULL, "has no host" },
	{ "http://user@/x", NULL, "has no host" },
	{ "http://:80/x", NULL, "has no host" },
	{ "http://host/a b", NULL, "spaces" },
	{ "http://host/\xc3\xa9", NULL, "non-ASCII" },
	{ "http://host/\t", NULL, "control" },
};

static void test_url_check(void **state UNUSED)
{
	char long_url[CONFIG_WEBHOOK_URL_MAX + 8], origin[64];

	for (size_t i = 0; i < ARRAY_SIZE(url_cases); i++) {
		const struct url_case *c = &url_cases[i];
		const char *why;

		strcpy(origin, "untouched");
		why = config_webhook_url_check(c->url, origin, sizeof(origin));
		if (c->origin) {
			if (why)
				fail_msg("%s: refused: %s", c->url, why);
			assert_string_equal(origin, c->origin);
		} else {
			if (!why || !strstr(why, c->reason))
				fail_msg("%s: expected a reason with \"%s\", got %s", c->url, c->reason, why ? why : "none");
		}
	}
	snprintf(long_url, sizeof(long_url), "http://h/");
	memset(long_url + 9, 'a', CONFIG_WEBHOOK_URL_MAX - 9);
	long_url[CONFIG_WEBHOOK_URL_MAX] = 0;
	assert_null(config_webhook_url_check(long_url, NULL, 0));
	strcat(long_url, "a");
	assert_non_null(config_webhook_url_check(long_url, NULL, 0));
}

/* Invalid sections: the webhook's lines start at line 7. */
struct invalid_case {
	const char *section;          /* after SHOP "notifications:\n" (line 5) */
	int line, column;
	const char *field;
	const char *reason;
};

#define HOOK "  webhooks:\n    - url: http://127.0.0.1:9/h\n" /* lines 6-7 */

static const struct invalid_case invalid_cases[] = {
	{ "  webhook: []\n", 6, 3, "notifications.webhook", "unknown key \"webhook\" (did you mean \"webhooks\"?)" },
	{ "  webhooks: {url: x}\n", 6, 13, "notifications.webhooks", "a list of webhooks" },
	{ "  webhooks:\n    - https://x/\n", 7, 7, "notifications.webhooks[0]", "must be a mapping" },
	{ "  webhooks:\n    - events: [failed]\n", 7, 7, "notifications.webhooks[0].url", "is required" },
	{ "  webhooks:\n    - url: ftp://x/\n", 7, 12, "notifications.webhooks[0].url", "http:// or https://" },
	{ "  webhooks:\n    - url: http:///x\n", 7, 12, "notifications.webhooks[0].url", "has no host" },
	{ HOOK "      url_secret: S\n", 8, 19, "notifications.webhooks[0].url_secret", "cannot be combined with url" },
	{ "  webhooks:\n    - url_secret: 9lives\n", 7, 19, "notifications.webhooks[0].url_secret",
	  "secret names must match" },
	{ HOOK "      events: []\n", 8, 15, "notifications.webhooks[0].events", "at least one event" },
	{ HOOK "      events: failed\n", 8, 15, "notifications.webhooks[0].events", "a list of events" },
	{ HOOK "      events: [started, deployed]\n", 8, 25, "notifications.webhooks[0].events[1]",
	  "must be started, step, succeeded, rolled-back, failed or approval-needed, got \"deployed\"" },
	{ HOOK "      events: [step, step]\n", 8, 22, "notifications.webhooks[0].events[1]", "\"step\" is listed twice" },
	{ HOOK "      format: xml\n", 8, 15, "notifications.webhooks[0].format", "must be slack or json" },
	{ HOOK "      timeout: 10ms\n", 8, 16, "notifications.webhooks[0].timeout", "between 100ms and 5m" },
	{ HOOK "      retries: 21\n", 8, 16, "notifications.webhooks[0].retries", "0..20" },
	{ HOOK "      backoff: 2m\n", 8, 16, "notifications.webhooks[0].backoff", "between 10ms and 1m" },
	{ HOOK "      queue: 0\n", 8, 14, "notifications.webhooks[0].queue", "1..10000" },
	{ HOOK "      name: Ops\n", 8, 13, "notifications.webhooks[0].name", "lower-case letters" },
	{ HOOK "      urll: x\n", 8, 7, "notifications.webhooks[0].urll", "did you mean \"url\"?" },
	{ HOOK "      name: a\n    - url: http://h/\n      name: a\n", 10, 13, "notifications.webhooks[1].name",
	  "webhook name \"a\" is already taken by webhooks[0] (line 7)" },
	{ HOOK "    - url: http://h/\n      name: \"0\"\n", 9, 13, "notifications.webhooks[1].name",
	  "webhook name \"0\" is already taken by webhooks[0]" },
	{ "  webhooks:\n    - url: http://h/\n      name: \"1\"\n    - url: http://h/\n", 9, 7,
	  "notifications.webhooks[1].name", "the default name (the index) \"1\" is already taken" },
};

static void test_invalid(void **state UNUSED)
{
	char text[2048];

	for (size_t i = 0; i < ARRAY_SIZE(invalid_cases); i++) {
		const struct invalid_case *c = &invalid_cases[i];
		struct config_error err;
		struct config *cfg = NULL;

		snprintf(text, sizeof(text), SHOP "notifications:\n%s", c->section);
		if (config_load_string(NAME, text, strlen(text), &cfg, &err) >= 0) {
			config_free(cfg);
			fail_msg("case %zu: accepted:\n%s", i, text);
		}
		if (err.line != c->line || err.column != c->column || strcmp(err.field, c->field) ||
		    !strstr(err.message, c->reason))
			fail_msg("case %zu: expected %d:%d %s ... %s\ngot %s", i, c->line, c->column, c->field, c->reason,
				 err.message);
	}
}

static void test_webhooks_bound(void **state UNUSED)
{
	char text[8192] = SHOP "notifications:\n  webhooks:\n";
	struct config_error err;
	struct config *cfg = NULL;

	for (int i = 0; i <= CONFIG_WEBHOOKS_MAX; i++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text), "    - url: http://h/%d\n", i);
	assert_true(config_load_string(NAME, text, strlen(text), &cfg, &err) < 0);
	assert_non_null(strstr(err.message, "at most 16 webhooks, got 17"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_none),
		cmocka_unit_test(test_defaults_and_values),
		cmocka_unit_test(test_event_names),
		cmocka_unit_test(test_url_check),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_webhooks_bound),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

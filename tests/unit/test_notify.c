/* test_notify.c - unit tests of the webhooks (src/notify/).
 *
 * Pure parts by tables: which notification an event is
 * (notify_classify), the bodies (Slack's {"text", "blocks"} and the json
 * envelope), Slack's escaping, the retry delay and which failures are
 * retried.  Then the notifier itself on a real struct loop, against a
 * small HTTP server on 127.0.0.1 run by a thread of this program, which
 * answers request number i as script[i] says ('+' 200, '5' 500, '4' 404,
 * 's' silent: reads and never answers) and records each body: order and
 * retries, a refusal, a full queue, redaction, a reload, and the drain at
 * shutdown.  Every run is bounded by a guard timer, and each test checks
 * that no file descriptor is left open.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/list.h"
#include "base/util.h"
#include "config/config.h"
#include "loop/loop.h"
#include "notify/notify-internal.h"
#include "notify/notify.h"
#include "secrets/redact.h"
#include "unit.h"

/* ---- notify_classify ---------------------------------------------------------- */

struct classify_case {
	const char *kind;
	const char *event;            /* JSON */
	int what;                     /* -1: none */
};

static const struct classify_case classify_cases[] = {
	{ "deployment", "{\"phase\": \"starting\"}", CONFIG_NOTIFY_STARTED },
	{ "deployment", "{\"phase\": \"switched\"}", CONFIG_NOTIFY_STEP },
	{ "deployment", "{\"phase\": \"awaiting-approval\"}", CONFIG_NOTIFY_APPROVAL_NEEDED },
	{ "deployment", "{\"phase\": \"done\", \"result\": \"done\"}", CONFIG_NOTIFY_SUCCEEDED },
	{ "deployment", "{\"phase\": \"rolled-back\", \"result\": \"rolled-back\"}", CONFIG_NOTIFY_ROLLED_BACK },
	{ "deployment", "{\"result\": \"aborted\"}", CONFIG_NOTIFY_ROLLED_BACK },
	{ "deployment", "{\"phase\": \"failed\", \"result\": \"failed\"}", CONFIG_NOTIFY_FAILED },
	{ "deployment", "{\"phase\": \"rejected\", \"result\": \"rejected\"}", CONFIG_NOTIFY_FAILED },
	{ "deployment", "{\"phase\": \"expired\", \"result\": \"expired\"}", CONFIG_NOTIFY_FAILED },
	{ "deployment", "{\"phase\": \"health-checking\"}", -1 },
	{ "deployment", "{\"phase\": \"healthy\"}", -1 },
	{ "deployment", "{\"phase\": \"approved\"}", -1 },
	{ "deployment", "{\"phase\": \"analysis\"}", -1 },
	{ "deployment", "{\"phase\": \"starting\", \"result\": \"unknown\"}", -1 },
	{ "deployment", "{\"phase\": \"starting\", \"result\": null}", CONFIG_NOTIFY_STARTED },
	{ "deployment", "{}", -1 },
	{ "deployment", "{\"phase\": \"starting\", \"release_id\": 4}", -1 }, /* told by the release */
	{ "deployment", "{\"result\": \"done\", \"release_id\": 4}", -1 },
	{ "deployment", "{\"phase\": \"starting\", \"release_id\": null}", CONFIG_NOTIFY_STARTED },
	{ "deployment", "[]", -1 },
	{ "release", "{\"phase\": \"started\"}", CONFIG_NOTIFY_STARTED },
	{ "release", "{\"phase\": \"step\"}", CONFIG_NOTIFY_STEP },
	{ "release", "{\"phase\": \"rolling-back\"}", CONFIG_NOTIFY_STEP },
	{ "release", "{\"phase\": \"succeeded\"}", CONFIG_NOTIFY_SUCCEEDED },
	{ "release", "{\"phase\": \"degraded\"}", CONFIG_NOTIFY_SUCCEEDED },
	{ "release", "{\"phase\": \"rolled-back\"}", CONFIG_NOTIFY_ROLLED_BACK },
	{ "release", "{\"phase\": \"failed\"}", CONFIG_NOTIFY_FAILED },
	{ "release", "{\"phase\": \"rejected\"}", CONFIG_NOTIFY_FAILED },
	{ "release", "{\"phase\": \"expired\"}", CONFIG_NOTIFY_FAILED },
	{ "release", "{\"phase\": \"awaiting-approval\"}", CONFIG_NOTIFY_APPROVAL_NEEDED },
	{ "release", "{\"phase\": \"gate\"}", -1 },
	{ "instance", "{\"state\": \"crashed\", \"phase\": \"starting\"}", -1 },
};

static void test_classify(void **state UNUSED)
{
	for (size_t i = 0; i < ARRAY_SIZE(classify_cases); i++) {
		const struct classify_case *c = &classify_cases[i];
		json_t *ev = json_loads(c->event, 0, NULL);

		assert_non_null(ev);
		if (notify_classify(c->kind, ev) != c->what)
			fail_msg("case %zu (%s %s): expected %d, got %d", i, c->kind, c->event, c->what,
				 notify_classify(c->kind, ev));
		json_decref(ev);
	}
	assert_int_equal(notify_classify(NULL, NULL), -1);
}

/* ---- bodies ------------------------------------------------------------------------ */

struct body_case {
	const char *kind;
	const char *event;
	const char *env;              /* the notifier's */
	const char *text;             /* the whole "text" */
	const char *context;          /* the context block's text, NULL: none */
};

#define DEP "\"id\": 12, \"service\": \"shop\", \"version\": \"1.2.0\", \"from_version\": \"1.1.0\", " \
	    "\"kind\": \"deploy\", \"strategy\": \"canary\", "

static const struct body_case body_cases[] = {
	{ "deployment", "{" DEP "\"phase\": \"starting\", \"detail\": \"1.1.0\", \"elapsed_ms\": 0}", "prod",
	  ":rocket: deploy 12 of shop to 1.2.0 started: 1.1.0", "prod · canary · from 1.1.0" },
	{ "deployment", "{" DEP "\"phase\": \"switched\", \"detail\": \"step 1 of 3: 10 % of new requests\"}", NULL,
	  ":arrow_forward: deploy 12 of shop to 1.2.0: traffic switched: step 1 of 3: 10 % of new requests", "canary" },
	{ "deployment", "{" DEP "\"phase\": \"done\", \"result\": \"done\", \"reason\": \"\", \"elapsed_ms\": 62000}",
	  "prod", ":white_check_mark: deploy 12 of shop to 1.2.0 succeeded", "prod · canary · after 62s" },
	{ "deployment", "{" DEP "\"phase\": \"rolled-back\", \"result\": \"rolled-back\", \"detail\": \"x\", "
	  "\"reason\": \"p99 650 ms > 500 ms; traffic back on 1.1.0 in 0.02 ms\", \"elapsed_ms\": 9000}", NULL,
	  ":leftwards_arrow_with_hook: deploy 12 of shop to 1.2.0 rolled back: p99 650 ms &gt; 500 ms; traffic back on "
	  "1.1.0 in 0.02 ms", "canary · after 9s" },
	{ "deployment", "{" DEP "\"phase\": \"failed\", \"result\": \"failed\", \"reason\": \"<b> & co\"}", NULL,
	  ":x: deploy 12 of shop to 1.2.0 failed: &lt;b&gt; &amp; co", "canary" },
	{ "deployment", "{" DEP "\"phase\": \"rejected\", \"result\": \"rejected\", \"reason\": \"not today\"}", NULL,
	  ":x: deploy 12 of shop to 1.2.0 was rejected: not today", "canary" },
	{ "deployment", "{" DEP "\"result\": \"expired\"}", NULL,
	  ":x: deploy 12 of shop to 1.2.0 expired (nobody approved it in time)", "canary" },
	{ "deployment", "{\"id\": 3, \"service\": \"shop\", \"version\": \"1.1.0\", \"kind\": \"rollback\", "
	  "\"phase\": \"awaiting-approval\", \"detail\": \"`cutover approve 3` starts it\"}", "staging",
	  ":raised_hand: rollback 3 of shop to 1.1.0 awaits approval: `cutover approve 3` starts it", "staging" },
	{ "deployment", "{\"id\": 4, \"service\": \"shop\", \"version\": \"1.1.0\", \"from_version\": \"1.1.0\", "
	  "\"kind\": \"restart\", \"phase\": \"starting\"}", NULL, ":rocket: restart 4 of shop 1.1.0 started", "from 1.1.0" },
	{ "release", "{\"id\": 7, \"name\": \"spring\", \"env\": \"prod\", \"phase\": \"started\"}", "staging",
	  ":rocket: release 7 (spring) started", "prod" },
	{ "release", "{\"id\": 7, \"name\": \"spring\", \"phase\": \"step\", \"step\": \"payment\", "
	  "\"step_state\": \"running\", \"service\": \"payment\", \"version\": \"2.0.0\", \"from_version\": null, "
	  "\"detail\": \"started\"}", NULL, ":arrow_forward: release 7 (spring): payment 2.0.0: running: started", NULL },
	{ "release", "{\"id\": 7, \"name\": \"spring\", \"phase\": \"step\", \"step\": \"cdn\", "
	  "\"step_state\": \"undone\", \"detail\": \"exit 0\"}", NULL,
	  ":arrow_forward: release 7 (spring): step cdn: undone: exit 0", NULL },
	{ "release", "{\"id\": 7, \"phase\": \"step\"}", NULL, ":arrow_forward: release 7: a step", NULL },
	{ "release", "{\"id\": 7, \"name\": \"spring\", \"phase\": \"rolling-back\", "
	  "\"detail\": \"order failed: analysis abort\"}", NULL,
	  ":arrow_forward: release 7 (spring) is rolling back: order failed: analysis abort", NULL },
	{ "release", "{\"id\": 7, \"name\": \"spring\", \"phase\": \"degraded\", \"detail\": \"analytics failed\"}",
	  NULL, ":white_check_mark: release 7 (spring) succeeded, degraded (a part that is not critical failed): "
	  "analytics failed", NULL },
	{ "release", "{\"id\": 7, \"phase\": \"rejected\"}", NULL, ":x: release 7 was rejected", NULL },
	{ "release", "{\"id\": 7, \"phase\": \"expired\"}", NULL, ":x: release 7 expired (nobody approved it in time)",
	  NULL },
	{ "release", "{\"id\": 7, \"name\": \"spring\", \"phase\": \"rolled-back\", \"detail\": \"6 services back\"}",
	  "prod", ":leftwards_arrow_with_hook: release 7 (spring) rolled back: 6 services back", "prod" },
	{ "release", "{\"id\": 7, \"phase\": \"succeeded\"}", NULL, ":white_check_mark: release 7 succeeded", NULL },
	{ "release", "{\"id\": 7, \"phase\": \"failed\", \"detail\": \"gate coverage: 71 % < 80 %\"}", NULL,
	  ":x: release 7 failed: gate coverage: 71 % &lt; 80 %", NULL },
	{ "release", "{\"name\": \"spring\", \"phase\": \"awaiting-approval\"}", NULL,
	  ":raised_hand: release spring awaits approval", NULL },
};

static void test_slack_bodies(void **state UNUSED)
{
	for (size_t i = 0; i < ARRAY_SIZE(body_cases); i++) {
		const struct body_case *c = &body_cases[i];
		json_t *ev = json_loads(c->event, 0, NULL), *body, *blocks, *section;
		size_t len = 0;
		char *text;

		assert_non_null(ev);
		text = notify_body(CONFIG_WEBHOOK_SLACK, notify_classify(c->kind, ev), c->kind, ev, c->env, &len);
		assert_non_null(text);
		assert_int_equal(len, strlen(text));
		body = json_loads(text, 0, NULL);
		if (!body)
			fail_msg("case %zu: not JSON: %s", i, text);
		if (strcmp(json_string_value(json_object_get(body, "text")), c->text))
			fail_msg("case %zu: text\nexpected %s\ngot      %s", i, c->text,
				 json_string_value(json_object_get(body, "text")));
		blocks = json_object_get(body, "blocks");
		assert_int_equal(json_array_size(blocks), c->context ? 2 : 1);
		section = json_array_get(blocks, 0);
		assert_string_equal(json_string_value(json_object_get(section, "type")), "section");
		assert_string_equal(json_string_value(json_object_get(json_object_get(section, "text"), "type")),
				    "mrkdwn");
		/* the headline in bold, the emoji first */
		assert_non_null(strstr(json_string_value(json_object_get(json_object_get(section, "text"), "text")), " *"));
		if (c->context) {
			json_t *ctx = json_array_get(blocks, 1), *el = json_array_get(json_object_get(ctx, "elements"), 0);

			assert_string_equal(json_string_value(json_object_get(ctx, "type")), "context");
			if (strcmp(json_string_value(json_object_get(el, "text")), c->context))
				fail_msg("case %zu: context: expected %s, got %s", i, c->context,
					 json_string_value(json_object_get(el, "text")));
		}
		json_decref(body);
		json_decref(ev);
		free(text);
	}
}

static void test_json_body(void **state UNUSED)
{
	json_t *ev = json_loads("{" DEP "\"phase\": \"done\", \"result\": \"done\", \"n\": [1, 2]}", 0, NULL), *body;
	size_t len;
	char *text = notify_body(CONFIG_WEBHOOK_JSON, CONFIG_NOTIFY_SUCCEEDED, "deployment", ev, "prod", &len);

	assert_non_null(text);
	body = json_loads(text, 0, NULL);
	assert_non_null(body);
	assert_string_equal(json_string_value(json_object_get(body, "notification")), "succeeded");
	assert_string_equal(json_string_value(json_object_get(body, "kind")), "deployment");
	assert_string_equal(json_string_value(json_object_get(body, "env")), "prod");
	assert_true(json_equal(json_object_get(body, "event"), ev));
	json_decref(body);
	free(text);
	/* no environment: null */
	text = notify_body(CONFIG_WEBHOOK_JSON, CONFIG_NOTIFY_SUCCEEDED, "deployment", ev, NULL, &len);
	body = json_loads(text, 0, NULL);
	assert_true(json_is_null(json_object_get(body, "env")));
	json_decref(body);
	free(text);
	assert_null(notify_body(CONFIG_WEBHOOK_JSON, -1, "deployment", ev, NULL, &len));
	json_decref(ev);
}

struct escape_case {
	const char *in;
	size_t max;
	const char *out;
};

static const struct escape_case escape_cases[] = {
	{ "plain", 100, "plain" },
	{ "a<b>&c", 100, "a&lt;b&gt;&amp;c" },
	{ "&&", 1, "&amp;..." },
	{ "abcdef", 3, "abc..." },
	{ "\xc3\xa9\xc3\xa9", 3, "\xc3\xa9..." }, /* not in the middle of é */
	{ "\xe2\x86\x92x", 2, "..." },
	{ "", 10, "" },
};

static void test_slack_escape(void **state UNUSED)
{
	for (size_t i = 0; i < ARRAY_SIZE(escape_cases); i++) {
		char *out = notify_slack_escape(escape_cases[i].in, escape_cases[i].max);

		assert_non_null(out);
		assert_string_equal(out, escape_cases[i].out);
		free(out);
	}
}

/* ---- retry policy ---------------------------------------------------------------------- */

struct delay_case {
	uint64_t backoff_ms;
	unsigned retry;
	double unit;
	uint64_t retry_after_ms;
	uint64_t want;
};

static const struct delay_case delay_cases[] = {
	{ 1000, 1, 0.5, 0, 1000 },
	{ 1000, 2, 0.5, 0, 2000 },
	{ 1000, 3, 0.5, 0, 4000 },
	{ 1000, 3, 0.0, 0, 3000 },      /* 3/4 */
	{ 1000, 3, 1.0, 0, 5000 },      /* 5/4 */
	{ 1000, 3, 7.0, 0, 5000 },      /* unit clamped */
	{ 1000, 9, 0.5, 0, 256000 },
	{ 1000, 10, 0.5, 0, 300000 },   /* at most 5 minutes */
	{ 60000, 400, 0.5, 0, 300000 }, /* no overflow */
	{ 1000, 1, 0.5, 30000, 30000 }, /* Retry-After */
	{ 1000, 1, 0.5, 3600000, 300000 },
	{ 10, 1, 0.5, 0, 10 },
};

static void test_retry_delay(void **state UNUSED)
{
	for (size_t i = 0; i < ARRAY_SIZE(delay_cases); i++) {
		const struct delay_case *c = &delay_cases[i];
		uint64_t got = notify_retry_delay(c->backoff_ms, c->retry, c->unit, c->retry_after_ms);

		if (got != c->want)
			fail_msg("case %zu: expected %llu ms, got %llu", i, (unsigned long long)c->want,
				 (unsigned long long)got);
	}
}

static void test_retryable(void **state UNUSED)
{
	static const struct {
		CURLcode rc;
		long status;
		bool retry;
	} cases[] = {
		{ CURLE_COULDNT_CONNECT, 0, true },  { CURLE_OPERATION_TIMEDOUT, 0, true },
		{ CURLE_COULDNT_RESOLVE_HOST, 0, true }, { CURLE_OK, 500, true },
		{ CURLE_OK, 503, true },             { CURLE_OK, 429, true },
		{ CURLE_OK, 408, true },             { CURLE_OK, 400, false },
		{ CURLE_OK, 403, false },            { CURLE_OK, 404, false },
		{ CURLE_OK, 410, false },            { CURLE_OK, 301, false },
		{ CURLE_OK, 0, true },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		if (notify_retryable(cases[i].rc, cases[i].status) != cases[i].retry)
			fail_msg("case %zu: rc %d status %ld", i, (int)cases[i].rc, cases[i].status);
}

/* ---- the test server -------------------------------------------------------------- */

#define MAX_BODIES 32

struct server {
	int fd;
	int port;
	const char *script;
	pthread_t thread;
	pthread_mutex_t lock;
	char *bodies[MAX_BODIES];
	unsigned requests;
	volatile bool stop;
};

/* Read one request (head and Content-Length body) from c: the body,
 * malloc'd, or NULL when the client went away. */
static char *read_request(int c)
{
	char buf[16384], *end, *cl, *body;
	size_t len = 0, want;
	ssize_t n;

	for (;;) {
		n = read(c, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			return NULL;
		len += (size_t)n;
		buf[len] = 0;
		if ((end = strstr(buf, "\r\n\r\n")))
			break;
	}
	cl = strcasestr(buf, "\r\nContent-Length:");
	want = cl ? strtoul(cl + 17, NULL, 10) : 0;
	end += 4;
	while ((size_t)(buf + len - end) < want) {
		n = read(c, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			return NULL;
		len += (size_t)n;
	}
	body = strndup(end, want);
	return body;
}

static void *serve(void *arg)
{
	struct server *s = arg;

	while (!s->stop) {
		struct pollfd p = { .fd = s->fd, .events = POLLIN };
		char mode, *body, reply[200];
		int c, code;

		if (poll(&p, 1, 20) <= 0)
			continue;
		c = accept(s->fd, NULL, NULL);
		if (c < 0)
			continue;
		body = read_request(c);
		pthread_mutex_lock(&s->lock);
		mode = s->script[s->requests < strlen(s->script) ? s->requests : strlen(s->script) - 1];
		if (body && s->requests < MAX_BODIES)
			s->bodies[s->requests] = body;
		else
			free(body);
		s->requests += body ? 1 : 0;
		pthread_mutex_unlock(&s->lock);
		if (mode == 's') { /* until the client gives up */
			while (!s->stop && read(c, reply, sizeof(reply)) > 0)
				;
		} else if (body) {
			code = mode == '5' ? 500 : mode == '4' ? 404 : 200;
			snprintf(reply, sizeof(reply), "HTTP/1.1 %d X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno",
				 code);
			if (write(c, reply, strlen(reply)) < 0) {
				/* the client went away: it retries */
			}
		}
		close(c);
	}
	return NULL;
}

static void server_start(struct server *s, const char *script)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);

	memset(s, 0, sizeof(*s));
	s->script = script;
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s->fd >= 0);
	assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s->fd, 16), 0);
	assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &alen), 0);
	s->port = ntohs(a.sin_port);
	pthread_mutex_init(&s->lock, NULL);
	assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

static unsigned server_requests(struct server *s)
{
	unsigned n;

	pthread_mutex_lock(&s->lock);
	n = s->requests;
	pthread_mutex_unlock(&s->lock);
	return n;
}

static void server_stop(struct server *s)
{
	s->stop = true;
	pthread_join(s->thread, NULL);
	close(s->fd);
	for (unsigned i = 0; i < MAX_BODIES; i++)
		free(s->bodies[i]);
	pthread_mutex_destroy(&s->lock);
}

/* A port nothing listens on. */
static int closed_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

/* ---- the notifier on a loop ------------------------------------------------------------ */

static struct config *config_with(const char *webhooks)
{
	char text[4096];
	struct config_error err;
	struct config *cfg = NULL;

	snprintf(text, sizeof(text),
		 "listen: 127.0.0.1:1\nservices:\n  shop:\n    targets: [127.0.0.1:2]\nnotifications:\n  webhooks:\n%s",
		 webhooks);
	if (config_load_string("cutover.yml", text, strlen(text), &cfg, &err) < 0)
		fail_msg("config: %s", err.message);
	return cfg;
}

static void event(struct notifier *n, const char *phase, const char *result, int id, const char *detail)
{
	json_t *ev = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s*, s:s*}", "id", (json_int_t)id, "service", "shop",
			       "version", "1.2.0", "kind", "deploy", "phase", phase, "result", result, "detail", detail);

	assert_non_null(ev);
	notifier_event(n, "deployment", ev);
	json_decref(ev);
}

struct until {
	struct loop_timer timer;
	struct notifier *n;
	struct server *srv;
	unsigned requests;            /* the server got at least this many */
	bool idle;                    /* and the queues are empty */
	bool backing_off;             /* and the first webhook waits for a retry */
};

static bool queues_empty(const struct notifier *n)
{
	for (size_t i = 0; i < n->nhooks; i++)
		if (n->hooks[i]->queued)
			return false;
	return true;
}

static void until_check(struct loop *loop, struct loop_timer *t)
{
	struct until *u = container_of(t, struct until, timer);

	if ((!u->srv || server_requests(u->srv) >= u->requests) && (!u->idle || queues_empty(u->n)) &&
	    (!u->backing_off || u->n->hooks[0]->backing_off))
		loop->stop = true;
	else
		loop_timer_set(loop, t, loop->now_ms + 5, until_check);
}

/* Run the loop until u says so (or the guard fires: a failure). */
static void run_until(struct loop *loop, struct until *u, uint64_t guard_ms)
{
	struct run_guard g = { .fired = false };

	loop_timer_set(loop, &g.timer, loop->now_ms + guard_ms, run_guard_cb);
	loop_timer_set(loop, &u->timer, loop->now_ms + 1, until_check);
	loop->stop = false;
	assert_int_equal(loop_run(loop), 0);
	loop_timer_cancel(loop, &g.timer);
	loop_timer_cancel(loop, &u->timer);
	if (g.fired)
		fail_msg("the loop ran %llu ms without getting there", (unsigned long long)guard_ms);
}

/* The body of request i, parsed. */
static json_t *body(struct server *s, unsigned i)
{
	json_t *j;

	pthread_mutex_lock(&s->lock);
	j = s->bodies[i] ? json_loads(s->bodies[i], 0, NULL) : NULL;
	pthread_mutex_unlock(&s->lock);
	assert_non_null(j);
	return j;
}

static const char *notification(json_t *j)
{
	return json_string_value(json_object_get(j, "notification"));
}

static void test_order_and_retry(void **state UNUSED)
{
	int fds = count_fds();
	struct loop loop;
	struct server srv;
	struct notifier *n = NULL;
	struct config *cfg;
	char hooks[256];
	json_t *j[4];

	server_start(&srv, "5+++");
	snprintf(hooks, sizeof(hooks), "    - {url: \"http://127.0.0.1:%d/h\", format: json, backoff: 10ms}\n", srv.port);
	cfg = config_with(hooks);
	assert_int_equal(loop_init(&loop), 0);
	assert_int_equal(notifier_new(&loop, cfg, &n), 0);
	event(n, "starting", NULL, 1, "first version");
	event(n, "health-checking", NULL, 1, "not a notification");
	event(n, "switched", NULL, 1, "traffic on 1.2.0");
	event(n, "done", "done", 1, NULL);
	assert_int_equal(n->hooks[0]->queued, 3);
	run_until(&loop, &(struct until){ .n = n, .srv = &srv, .requests = 4, .idle = true }, 3000);
	for (unsigned i = 0; i < 4; i++)
		j[i] = body(&srv, i);
	/* the first one again after the 500, then the others in order */
	assert_string_equal(notification(j[0]), "started");
	assert_true(json_equal(j[0], j[1]));
	assert_string_equal(notification(j[2]), "step");
	assert_string_equal(notification(j[3]), "succeeded");
	for (unsigned i = 0; i < 4; i++)
		json_decref(j[i]);
	assert_int_equal(n->hooks[0]->ok, 3);
	assert_int_equal(n->hooks[0]->retried, 1);
	assert_int_equal(n->hooks[0]->failed, 0);
	assert_int_equal(n->hooks[0]->dropped, 0);
	notifier_free(n);
	config_free(cfg);
	loop_release(&loop);
	server_stop(&srv);
	assert_int_equal(count_fds(), fds);
}

static void test_refused_and_given_up(void **state UNUSED)
{
	int fds = count_fds();
	struct loop loop;
	struct server srv;
	struct notifier *n = NULL;
	struct config *cfg;
	char hooks[512];
	size_t len;
	char *text;

	server_start(&srv, "4+");
	snprintf(hooks, sizeof(hooks),
		 "    - {url: \"http://127.0.0.1:%d/h\", backoff: 10ms, name: refusing}\n"
		 "    - {url: \"http://127.0.0.1:%d/down\", backoff: 10ms, retries: 2, events: [started]}\n",
		 srv.port, closed_port());
	cfg = config_with(hooks);
	assert_int_equal(loop_init(&loop), 0);
	assert_int_equal(notifier_new(&loop, cfg, &n), 0);
	assert_int_equal(n->nhooks, 2);
	event(n, "starting", NULL, 1, NULL);
	event(n, "done", "done", 1, NULL);
	assert_int_equal(n->hooks[1]->queued, 1); /* only started */
	run_until(&loop, &(struct until){ .n = n, .srv = &srv, .requests = 2, .idle = true }, 3000);
	assert_int_equal(server_requests(&srv), 2); /* the 404 was not retried */
	assert_int_equal(n->hooks[0]->failed, 1);
	assert_int_equal(n->hooks[0]->ok, 1);
	assert_int_equal(n->hooks[0]->retried, 0);
	assert_int_equal(n->hooks[1]->failed, 1); /* three attempts, then given up */
	assert_int_equal(n->hooks[1]->retried, 2);
	text = notifier_metrics(n, &len);
	assert_non_null(text);
	assert_int_equal(strlen(text), len);
	assert_non_null(strstr(text, "# TYPE cutover_webhook_deliveries_total counter\n"));
	assert_non_null(strstr(text, "cutover_webhook_deliveries_total{webhook=\"refusing\",host=\"127.0.0.1:"));
	assert_non_null(strstr(text, "\",result=\"failed\"} 1\n"));
	assert_non_null(strstr(text, "cutover_webhook_retries_total{webhook=\"1\",host=\"127.0.0.1:"));
	assert_non_null(strstr(text, "\"} 2\n"));
	assert_non_null(strstr(text, "# TYPE cutover_webhook_queue_depth gauge\n"));
	assert_null(strstr(text, "/down"));
	assert_null(strstr(text, "/h\""));
	free(text);
	notifier_free(n);
	config_free(cfg);
	loop_release(&loop);
	server_stop(&srv);
	assert_int_equal(count_fds(), fds);
}

static void test_full_queue_drops_the_oldest(void **state UNUSED)
{
	int fds = count_fds();
	struct loop loop;
	struct notifier *n = NULL;
	struct config *cfg;
	char hooks[256];
	struct webhook *w;
	struct notice *last;

	snprintf(hooks, sizeof(hooks), "    - {url: \"http://127.0.0.1:%d/h\", queue: 2, format: json}\n", closed_port());
	cfg = config_with(hooks);
	assert_int_equal(loop_init(&loop), 0);
	assert_int_equal(notifier_new(&loop, cfg, &n), 0);
	w = n->hooks[0];
	for (int id = 1; id <= 5; id++)
		event(n, "starting", NULL, id, NULL);
	/* one in flight (id 1), two waiting (4 and 5): 2 and 3 dropped */
	assert_true(w->sending);
	assert_int_equal(w->queued, 3);
	assert_int_equal(w->dropped, 2);
	assert_non_null(strstr(container_of(w->queue.next, struct notice, node)->body, "\"id\":1,"));
	assert_non_null(strstr(container_of(w->queue.next->next, struct notice, node)->body, "\"id\":4,"));
	last = container_of(w->queue.prev, struct notice, node);
	assert_non_null(strstr(last->body, "\"id\":5,"));
	notifier_free(n);
	config_free(cfg);
	loop_release(&loop);
	assert_int_equal(count_fds(), fds);
}

static void test_bodies_are_redacted(void **state UNUSED)
{
	static const char secret[] = "hunter2-\"quoted\"-secret";
	int fds = count_fds();
	struct loop loop;
	struct server srv;
	struct notifier *n = NULL;
	struct redactor *r = NULL;
	struct config *cfg;
	char hooks[256], *raw;

	assert_int_equal(redactor_new(&r), 0);
	assert_int_equal(redactor_add(r, "PW", (const uint8_t *)secret, strlen(secret)), 0);
	redact_global_set(r);
	server_start(&srv, "+");
	snprintf(hooks, sizeof(hooks), "    - {url: \"http://127.0.0.1:%d/h\", events: [failed]}\n", srv.port);
	cfg = config_with(hooks);
	assert_int_equal(loop_init(&loop), 0);
	assert_int_equal(notifier_new(&loop, cfg, &n), 0);
	event(n, "rejected", "rejected", 1, NULL);
	{
		json_t *ev = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s}", "id", (json_int_t)2, "service", "shop", "version",
				       "1.2.0", "phase", "failed", "result", "failed", "reason", secret);
		notifier_event(n, "deployment", ev);
		json_decref(ev);
	}
	run_until(&loop, &(struct until){ .n = n, .srv = &srv, .requests = 2, .idle = true }, 3000);
	pthread_mutex_lock(&srv.lock);
	raw = srv.bodies[1];
	assert_non_null(strstr(raw, "failed: [redacted:PW]\""));
	assert_null(strstr(raw, "hunter2"));
	pthread_mutex_unlock(&srv.lock);
	redact_global_set(NULL);
	notifier_free(n);
	config_free(cfg);
	loop_release(&loop);
	server_stop(&srv);
	assert_int_equal(count_fds(), fds);
}

static void test_reload_keeps_a_webhook_by_url(void **state UNUSED)
{
	int fds = count_fds();
	struct loop loop;
	struct notifier *n = NULL;
	struct config *cfg, *cfg2, *cfg3;
	char hooks[512];
	int port = closed_port();
	struct webhook *kept;

	snprintf(hooks, sizeof(hooks), "    - {url: \"http://127.0.0.1:%d/a\"}\n    - {url: \"http://127.0.0.1:%d/b\"}\n",
		 port, port);
	cfg = config_with(hooks);
	snprintf(hooks, sizeof(hooks),
		 "    - {url: \"http://127.0.0.1:%d/c\"}\n    - {url: \"http://127.0.0.1:%d/b\", name: bee, retries: 0}\n",
		 port, port);
	cfg2 = config_with(hooks);
	cfg3 = config_with("    []\n");
	assert_int_equal(loop_init(&loop), 0);
	assert_int_equal(notifier_new(&loop, cfg, &n), 0);
	event(n, "starting", NULL, 1, NULL);
	kept = n->hooks[1];
	assert_int_equal(kept->queued, 1);
	assert_true(kept->sending);
	notifier_configure(n, cfg2);
	assert_int_equal(n->nhooks, 2);
	assert_ptr_equal(n->hooks[1], kept); /* its queue and its transfer stay */
	assert_string_equal(kept->name, "bee");
	assert_int_equal(kept->retries, 0);
	assert_int_equal(kept->queued, 1);
	assert_true(kept->sending);
	assert_int_equal(n->hooks[0]->queued, 0); /* a new one */
	notifier_configure(n, cfg3);
	assert_int_equal(n->nhooks, 0);
	notifier_free(n);
	config_free(cfg);
	config_free(cfg2);
	config_free(cfg3);
	loop_release(&loop);
	assert_int_equal(count_fds(), fds);
}

static void test_drain_gives_up_in_time(void **state UNUSED)
{
	int fds = count_fds();
	struct loop loop;
	struct server srv;
	struct notifier *n = NULL;
	struct config *cfg;
	char hooks[256];
	uint64_t t0;

	server_start(&srv, "s");
	snprintf(hooks, sizeof(hooks), "    - {url: \"http://127.0.0.1:%d/h\", timeout: 30s}\n", srv.port);
	cfg = config_with(hooks);
	assert_int_equal(loop_init(&loop), 0);
	assert_int_equal(notifier_new(&loop, cfg, &n), 0);
	for (int id = 1; id <= 3; id++)
		event(n, "starting", NULL, id, NULL);
	run_until(&loop, &(struct until){ .n = n, .srv = &srv, .requests = 1 }, 3000);
	/* the connection waiting for an answer: watched, and close-on-exec */
	assert_false(list_empty(&n->socks));
	for (struct list_head *p = n->socks.next; p != &n->socks; p = p->next)
		assert_true(fcntl(container_of(p, struct notify_sock, node)->io.fd, F_GETFD) & FD_CLOEXEC);
	t0 = time_now_ms();
	notifier_drain(n, 300);
	assert_true(time_now_ms() - t0 >= 290);
	assert_true(time_now_ms() - t0 < 1000);
	assert_true(loop.stop);
	assert_int_equal(n->hooks[0]->queued, 0);
	assert_int_equal(n->hooks[0]->dropped, 3);
	assert_int_equal(n->hooks[0]->failed, 0);
	notifier_drain(n, 300); /* nothing left: returns at once */
	notifier_free(n);
	config_free(cfg);
	loop_release(&loop);
	server_stop(&srv);
	assert_int_equal(count_fds(), fds);
}

static void test_drain_delivers_what_it_can(void **state UNUSED)
{
	int fds = count_fds();
	struct loop loop;
	struct server srv;
	struct notifier *n = NULL;
	struct config *cfg;
	char hooks[256];

	server_start(&srv, "5+");
	snprintf(hooks, sizeof(hooks), "    - {url: \"http://127.0.0.1:%d/h\", backoff: 1m}\n", srv.port);
	cfg = config_with(hooks);
	assert_int_equal(loop_init(&loop), 0);
	assert_int_equal(notifier_new(&loop, cfg, &n), 0);
	event(n, "done", "done", 1, NULL);
	/* the 500: a retry in a minute or so */
	run_until(&loop, &(struct until){ .n = n, .srv = &srv, .requests = 1, .backing_off = true }, 3000);
	/* the drain does not wait for the backoff: it tries now */
	notifier_drain(n, 2000);
	assert_int_equal(server_requests(&srv), 2);
	assert_int_equal(n->hooks[0]->ok, 1);
	assert_int_equal(n->hooks[0]->dropped, 0);
	notifier_free(n);
	config_free(cfg);
	loop_release(&loop);
	server_stop(&srv);
	assert_int_equal(count_fds(), fds);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_slack_bodies),
		cmocka_unit_test(test_json_body),
		cmocka_unit_test(test_slack_escape),
		cmocka_unit_test(test_retry_delay),
		cmocka_unit_test(test_retryable),
		cmocka_unit_test(test_order_and_retry),
		cmocka_unit_test(test_refused_and_given_up),
		cmocka_unit_test(test_full_queue_drops_the_oldest),
		cmocka_unit_test(test_bodies_are_redacted),
		cmocka_unit_test(test_reload_keeps_a_webhook_by_url),
		cmocka_unit_test(test_drain_gives_up_in_time),
		cmocka_unit_test(test_drain_delivers_what_it_can),
	};

	/* curl_global_init once, before the first test counts descriptors */
	struct notifier *warm = NULL;
	struct loop loop;
	struct config *cfg = config_with("    []\n");

	if (loop_init(&loop) == 0 && notifier_new(&loop, cfg, &warm) == 0)
		notifier_free(warm);
	loop_release(&loop);
	config_free(cfg);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* notify.c - the top-level notifications: section: the webhooks the
 * daemon sends on release and deploy events (src/notify/ sends them; the
 * design is in docs/internals/notify.md).
 *
 *   notifications:
 *     webhooks:
 *       - url: https://hooks.slack.com/services/...   # or url_secret: NAME
 *         events: [started, succeeded, rolled-back, failed]
 *         format: slack
 *
 * A webhook's URL is either written (url:) or kept in the environment's
 * encrypted secrets file (url_secret: NAME), since a Slack incoming
 * webhook's URL is itself the credential.  A written URL is checked here;
 * a secret one when the daemon reads it (config_webhook_url_check() is the
 * one rule for both).  Like every list of the configuration, an overlay's
 * webhooks: replaces the base's: each environment posts where it wants.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "config/config-internal.h"
#include "secrets/secrets.h"

#define WEBHOOK_TIMEOUT_MIN_MS 100
#define WEBHOOK_TIMEOUT_MAX_MS (5 * 60 * 1000)
#define WEBHOOK_RETRIES_MAX 20
#define WEBHOOK_BACKOFF_MIN_MS 10
#define WEBHOOK_BACKOFF_MAX_MS (60 * 1000)
#define WEBHOOK_QUEUE_MAX 10000

const char *const config_notify_event_names[CONFIG_NOTIFY_NEVENTS] = {
	[CONFIG_NOTIFY_STARTED] = "started",
	[CONFIG_NOTIFY_STEP] = "step",
	[CONFIG_NOTIFY_SUCCEEDED] = "succeeded",
	[CONFIG_NOTIFY_ROLLED_BACK] = "rolled-back",
	[CONFIG_NOTIFY_FAILED] = "failed",
	[CONFIG_NOTIFY_APPROVAL_NEEDED] = "approval-needed",
};

const char *const config_webhook_format_names[2] = {
	[CONFIG_WEBHOOK_SLACK] = "slack",
	[CONFIG_WEBHOOK_JSON] = "json",
};

#define EVENT_WORDS "started, step, succeeded, rolled-back, failed or approval-needed"

const char *config_webhook_url_check(const char *url, char *origin, size_t len)
{
	size_t scheme, end, at;
	const char *authority;

	if (!strncasecmp(url, "https://", 8))
		scheme = 8;
	else if (!strncasecmp(url, "http://", 7))
		scheme = 7;
	else
		return "must be an http:// or https:// URL";
	if (strlen(url) > CONFIG_WEBHOOK_URL_MAX)
		return "is too long (at most 2048 characters)";
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return "must not contain spaces, control or non-ASCII characters (percent-encode them)";
	authority = url + scheme;
	end = strcspn(authority, "/?#");
	/* user:password@ is not part of what is shown */
	for (at = end; at > 0 && authority[at - 1] != '@'; at--)
		;
	if (at == end || authority[at] == ':')
		return "has no host";
	if (origin && len)
		snprintf(origin, len, "%.*s%.*s", (int)scheme, url, (int)(end - at), authority + at);
	for (size_t i = 0; origin && i < scheme && i < len; i++)
		origin[i] = (char)tolower((unsigned char)origin[i]);
	return NULL;
}

static int webhook_name(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	const char *v;
	int r = expect_value(L, n, "a name");

	if (r < 0)
		return r;
	v = n->value;
	if (!v[0] || strlen(v) > CONFIG_WEBHOOK_NAME_MAX || !isalnum((unsigned char)v[0]) ||
	    strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789_.-") != strlen(v))
		return fail(L, n, "must be 1 to %d lower-case letters, digits, '_', '.' or '-' (starting with a letter "
			    "or a digit), got %s", CONFIG_WEBHOOK_NAME_MAX, QUOTED(v));
	return set_string(L, &((struct config_webhook *)obj)->name, v);
}

static int webhook_url(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	const char *why;
	int r = expect_value(L, n, "an http:// or https:// URL");

	if (r < 0)
		return r;
	if ((why = config_webhook_url_check(n->value, NULL, 0)))
		return fail(L, n, "%s, got %s", why, QUOTED(n->value));
	return set_string(L, &((struct config_webhook *)obj)->url, n->value);
}

static int webhook_url_secret(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	int r = expect_value(L, n, "a secret's name");

	if (r < 0)
		return r;
	if (!secret_name_valid(n->value))
		return fail(L, n, "secret names must match [A-Za-z_][A-Za-z0-9_]{0,63}, got %s", QUOTED(n->value));
	return set_string(L, &((struct config_webhook *)obj)->url_secret, n->value);
}

static int webhook_events(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	struct config_webhook *w = obj;
	uint32_t seen = 0;
	size_t i, ev;
	int r = expect_list(L, n, false, "a list of events (" EVENT_WORDS ")");

	if (r < 0)
		return r;
	if (!n->nitems)
		return fail(L, n, "must name at least one event (" EVENT_WORDS "); remove the webhook to send nothing");
	for (i = 0; i < n->nitems; i++) {
		size_t saved = field_push_index(L, i);

		r = load_word(L, n->items[i], config_notify_event_names, CONFIG_NOTIFY_NEVENTS, EVENT_WORDS, &ev);
		if (r >= 0 && seen & (1u << ev))
			r = fail(L, n->items[i], "%s is listed twice", QUOTED(n->items[i]->value));
		field_pop(L, saved);
		if (r < 0)
			return r;
		seen |= 1u << ev;
	}
	w->events = seen;
	return 0;
}

static int webhook_format(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	size_t i;
	int r = load_word(L, n, config_webhook_format_names, ARRAY_SIZE(config_webhook_format_names), "slack or json",
			  &i);

	if (r >= 0)
		((struct config_webhook *)obj)->format = (enum config_webhook_format)i;
	return r;
}

enum {
	WEBHOOK_NAME, WEBHOOK_URL, WEBHOOK_URL_SECRET, WEBHOOK_EVENTS, WEBHOOK_FORMAT, WEBHOOK_TIMEOUT,
	WEBHOOK_RETRIES, WEBHOOK_BACKOFF, WEBHOOK_QUEUE, WEBHOOK_NKEYS,
};

#define WEBHOOK_FIELD(f) offsetof(struct config_webhook, f)

static const struct keyword webhook_keywords[WEBHOOK_NKEYS] = {
	[WEBHOOK_NAME] = { "name", webhook_name, 0, 0, 0, 0 },
	[WEBHOOK_URL] = { "url", webhook_url, 0, 0, 0, 0 },
	[WEBHOOK_URL_SECRET] = { "url_secret", webhook_url_secret, 0, 0, 0, 0 },
	[WEBHOOK_EVENTS] = { "events", webhook_events, 0, 0, 0, 0 },
	[WEBHOOK_FORMAT] = { "format", webhook_format, 0, 0, 0, 0 },
	[WEBHOOK_TIMEOUT] = { "timeout", keyword_duration, WEBHOOK_FIELD(timeout_ms), WEBHOOK_TIMEOUT_MIN_MS,
			      WEBHOOK_TIMEOUT_MAX_MS, 0 },
	[WEBHOOK_RETRIES] = { "retries", keyword_integer, WEBHOOK_FIELD(retries), 0, WEBHOOK_RETRIES_MAX, KEYWORD_U32 },
	[WEBHOOK_BACKOFF] = { "backoff", keyword_duration, WEBHOOK_FIELD(backoff_ms), WEBHOOK_BACKOFF_MIN_MS,
			      WEBHOOK_BACKOFF_MAX_MS, 0 },
	[WEBHOOK_QUEUE] = { "queue", keyword_integer, WEBHOOK_FIELD(queue), 1, WEBHOOK_QUEUE_MAX, KEYWORD_U32 },
};

static const struct section webhook_section =
	SECTION("a mapping {url or url_secret, events, format, timeout, retries, backoff, queue, name}", false,
		webhook_keywords);

/* webhooks[index] from n: defaults, then what is written; url and
 * url_secret exclusive, one of them required. */
static int load_webhook(struct loader *L, const struct ynode *n, size_t index, struct config_webhook *w)
{
	const struct ynode *given[WEBHOOK_NKEYS] = { 0 };
	char name[24];
	size_t saved;
	int r;

	*w = (struct config_webhook){
		.events = (1u << CONFIG_NOTIFY_NEVENTS) - 1,
		.format = CONFIG_WEBHOOK_SLACK,
		.timeout_ms = 5000,
		.retries = 5,
		.backoff_ms = 1000,
		.queue = 100,
		.line = n->line,
	};
	r = section_load(L, n, &webhook_section, w, given);
	if (r < 0)
		return r;
	if (given[WEBHOOK_URL] && given[WEBHOOK_URL_SECRET]) {
		saved = field_push_key(L, "url_secret");
		r = fail(L, given[WEBHOOK_URL_SECRET], "cannot be combined with url: the URL is written or kept secret, "
			 "not both");
		field_pop(L, saved);
		return r;
	}
	if (!given[WEBHOOK_URL] && !given[WEBHOOK_URL_SECRET]) {
		saved = field_push_key(L, "url");
		r = fail(L, n, "is required: the URL to post to (or url_secret: the secret that holds it)");
		field_pop(L, saved);
		return r;
	}
	if (!w->name) {
		snprintf(name, sizeof(name), "%zu", index);
		return set_string(L, &w->name, name);
	}
	return 0;
}

static int load_webhooks(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	struct config_notifications *nt = obj;
	int r = expect_list(L, n, true, "a list of webhooks");

	if (r != 0)
		return r < 0 ? r : 0;
	if (n->nitems > CONFIG_WEBHOOKS_MAX)
		return fail(L, n, "at most %d webhooks, got %zu", CONFIG_WEBHOOKS_MAX, n->nitems);
	if (!n->nitems)
		return 0;
	nt->webhooks = calloc(n->nitems, sizeof(*nt->webhooks));
	if (!nt->webhooks)
		return fail_oom(L);
	for (size_t i = 0; i < n->nitems; i++) {
		struct config_webhook *w = &nt->webhooks[i];
		size_t saved = field_push_index(L, i);

		nt->nwebhooks++;
		r = load_webhook(L, n->items[i], i, w);
		for (size_t j = 0; r >= 0 && j < i; j++) {
			const struct ynode *named = ynode_map_get(n->items[i], "name");

			if (strcmp(nt->webhooks[j].name, w->name))
				continue;
			field_push_key(L, "name");
			r = fail(L, named ? named : n->items[i], "%s %s is already taken by webhooks[%zu] (line %d): names "
				 "label the metrics", named ? "webhook name" : "the default name (the index)",
				 QUOTED(w->name), j, nt->webhooks[j].line);
		}
		field_pop(L, saved);
		if (r < 0)
			return r;
	}
	return 0;
}

static const struct keyword notifications_keywords[] = {
	{ "webhooks", load_webhooks, 0, 0, 0, 0 },
};

static const struct section notifications_section =
	SECTION("a mapping {webhooks: [...]}", true, notifications_keywords);

int load_notifications(struct loader *L, const struct ynode *n, void *obj, const struct keyword *kw)
{
	int r = section_load(L, n, &notifications_section, &((struct config *)obj)->notifications, NULL);

	return r < 0 ? r : 0;
}

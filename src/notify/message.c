/* message.c - what an event the daemon publishes means for the webhooks,
 * and the bodies posted for it (contract in notify-internal.h).
 *
 * Two kinds of events are notified.  A deployment's events (the deploy
 * engine's, deployer_observe in deploy.h) carry a phase, and once it ended
 * a result: "starting" is a deploy that started, "switched" a step (a
 * canary step, a batch, the switch of a blue-green), "awaiting-approval"
 * an approval needed, and the results done, rolled-back (aborted too),
 * failed, rejected and expired end it; one that is part of a release
 * (release_id) is not told on its own, the release's events say it.  A
 * release's events (the release runner's) carry a phase: started, step and
 * rolling-back (told as steps), succeeded and degraded (succeeded, a part
 * that is not critical failed), rolled-back, failed, rejected and expired
 * (failed), awaiting-approval.
 *
 * Slack's format is {"text", "blocks"}: text is what a notification shows
 * (and what a client without blocks prints), blocks a section with the
 * headline and the detail, and a context line (environment, strategy,
 * duration).  Slack reads &, < and > as markup, so they are escaped.  The
 * json format posts the event as the event stream has it, in an envelope
 * naming the notification and the environment.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/util.h"
#include "config/config.h"
#include "notify/notify-internal.h"

#define DETAIL_MAX 2000               /* a Slack section holds 3000 characters */
#define HEADLINE_MAX 400

static const char *str(const json_t *event, const char *key)
{
	const char *s = json_string_value(json_object_get(event, key));

	return s && s[0] ? s : NULL;
}

static int word_index(const char *word, const char *const *words, const int *values, size_t n)
{
	for (size_t i = 0; word && i < n; i++)
		if (!strcmp(word, words[i]))
			return values[i];
	return -1;
}

int notify_classify(const char *kind, const json_t *event)
{
	static const char *const results[] = { "done", "rolled-back", "aborted", "failed", "rejected", "expired" };
	static const int result_events[] = { CONFIG_NOTIFY_SUCCEEDED, CONFIG_NOTIFY_ROLLED_BACK,
					     CONFIG_NOTIFY_ROLLED_BACK, CONFIG_NOTIFY_FAILED,
					     CONFIG_NOTIFY_FAILED, CONFIG_NOTIFY_FAILED };
	static const char *const phases[] = { "starting", "switched", "awaiting-approval" };
	static const int phase_events[] = { CONFIG_NOTIFY_STARTED, CONFIG_NOTIFY_STEP, CONFIG_NOTIFY_APPROVAL_NEEDED };
	static const char *const release_phases[] = { "started", "step", "rolling-back", "succeeded", "degraded",
						      "rolled-back", "failed", "rejected", "expired",
						      "awaiting-approval" };
	static const int release_events[] = { CONFIG_NOTIFY_STARTED, CONFIG_NOTIFY_STEP, CONFIG_NOTIFY_STEP,
					      CONFIG_NOTIFY_SUCCEEDED, CONFIG_NOTIFY_SUCCEEDED, CONFIG_NOTIFY_ROLLED_BACK,
					      CONFIG_NOTIFY_FAILED, CONFIG_NOTIFY_FAILED, CONFIG_NOTIFY_FAILED,
					      CONFIG_NOTIFY_APPROVAL_NEEDED };

	if (!kind || !json_is_object(event))
		return -1;
	if (!strcmp(kind, "deployment")) {
		/* a deploy of a release is told by the release's own events */
		if (json_integer_value(json_object_get(event, "release_id")) > 0)
			return -1;
		if (json_is_string(json_object_get(event, "result")))
			return word_index(str(event, "result"), results, result_events, ARRAY_SIZE(results));
		return word_index(str(event, "phase"), phases, phase_events, ARRAY_SIZE(phases));
	}
	if (!strcmp(kind, "release"))
		return word_index(str(event, "phase"), release_phases, release_events, ARRAY_SIZE(release_phases));
	return -1;
}

char *notify_slack_escape(const char *s, size_t max)
{
	size_t len = strlen(s), cut = len > max ? max : len, n = 0;
	char *out;

	/* back to the start of a UTF-8 sequence */
	while (cut < len && cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80)
		cut--;
	out = malloc(cut * 5 + 4);
	if (!out)
		return NULL;
	for (size_t i = 0; i < cut; i++) {
		const char *esc = s[i] == '&' ? "&amp;" : s[i] == '<' ? "&lt;" : s[i] == '>' ? "&gt;" : NULL;

		if (esc) {
			memcpy(out + n, esc, strlen(esc));
			n += strlen(esc);
		} else {
			out[n++] = s[i];
		}
	}
	if (cut < len) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = 0;
	return out;
}

static const char *const emoji[CONFIG_NOTIFY_NEVENTS] = {
	[CONFIG_NOTIFY_STARTED] = ":rocket:",
	[CONFIG_NOTIFY_STEP] = ":arrow_forward:",
	[CONFIG_NOTIFY_SUCCEEDED] = ":white_check_mark:",
	[CONFIG_NOTIFY_ROLLED_BACK] = ":leftwards_arrow_with_hook:",
	[CONFIG_NOTIFY_FAILED] = ":x:",
	[CONFIG_NOTIFY_APPROVAL_NEEDED] = ":raised_hand:",
};

/* What happened, for a person: the headline, the detail (may stay NULL)
 * and the context line. */
struct words {
	char headline[HEADLINE_MAX];
	const char *detail;
	char context[300];            /* environment, strategy, duration */
};

static void add_context(struct words *w, const char *part)
{
	size_t len = strlen(w->context);

	snprintf(w->context + len, sizeof(w->context) - len, "%s%s", len ? " · " : "", part);
}

static void deployment_words(int what, const json_t *ev, const char *env, struct words *w)
{
	const char *kind = str(ev, "kind") ? str(ev, "kind") : "deploy", *result = str(ev, "result");
	const char *service = str(ev, "service") ? str(ev, "service") : "?";
	const char *version = str(ev, "version") ? str(ev, "version") : "?";
	json_int_t id = json_integer_value(json_object_get(ev, "id"));
	json_t *elapsed = json_object_get(ev, "elapsed_ms");
	char subject[200], part[80];

	if (!strcmp(kind, "restart"))
		snprintf(subject, sizeof(subject), "restart %lld of %s %s", (long long)id, service, version);
	else
		snprintf(subject, sizeof(subject), "%s %lld of %s to %s", kind, (long long)id, service, version);
	w->detail = str(ev, "detail");
	switch (what) {
	case CONFIG_NOTIFY_STARTED:
		snprintf(w->headline, sizeof(w->headline), "%s started", subject);
		break;
	case CONFIG_NOTIFY_STEP:
		snprintf(w->headline, sizeof(w->headline), "%s: traffic switched", subject);
		break;
	case CONFIG_NOTIFY_APPROVAL_NEEDED:
		/* the detail says how to approve it */
		snprintf(w->headline, sizeof(w->headline), "%s awaits approval", subject);
		break;
	default:
		snprintf(w->headline, sizeof(w->headline), "%s %s", subject,
			 what == CONFIG_NOTIFY_SUCCEEDED	  ? "succeeded"
			 : what == CONFIG_NOTIFY_ROLLED_BACK ? "rolled back"
			 : result && !strcmp(result, "rejected") ? "was rejected"
			 : result && !strcmp(result, "expired")  ? "expired (nobody approved it in time)"
								 : "failed");
		if (str(ev, "reason"))
			w->detail = str(ev, "reason");
	}
	if (env)
		add_context(w, env);
	if (str(ev, "strategy"))
		add_context(w, str(ev, "strategy"));
	if (str(ev, "from_version") && what == CONFIG_NOTIFY_STARTED) {
		snprintf(part, sizeof(part), "from %s", str(ev, "from_version"));
		add_context(w, part);
	}
	if (json_is_integer(elapsed) && (what == CONFIG_NOTIFY_SUCCEEDED || what == CONFIG_NOTIFY_ROLLED_BACK ||
					 what == CONFIG_NOTIFY_FAILED)) {
		snprintf(part, sizeof(part), "after %s", DURATION_TEXT((uint64_t)json_integer_value(elapsed)));
		add_context(w, part);
	}
}

/* What a release's step is about: "payment 2.0.0" (a service), "step
 * migrate" (a command step), then ": STATE" (done, failed, rolled-back...). */
static void release_step_words(const json_t *ev, char *out, size_t len)
{
	const char *service = str(ev, "service"), *version = str(ev, "version"), *step = str(ev, "step");
	const char *state = str(ev, "step_state");

	if (service)
		snprintf(out, len, "%s%s%s", service, version ? " " : "", version ? version : "");
	else if (step)
		snprintf(out, len, "step %s", step);
	else
		out[0] = 0;
	if (state)
		snprintf(out + strlen(out), len - strlen(out), "%s%s", out[0] ? ": " : "", state);
}

static void release_words(int what, const json_t *ev, const char *env, struct words *w)
{
	const char *name = str(ev, "name"), *phase = str(ev, "phase") ? str(ev, "phase") : "";
	json_t *id = json_object_get(ev, "id");
	char subject[160], step[200];

	if (json_is_integer(id))
		snprintf(subject, sizeof(subject), "release %lld%s%s%s", (long long)json_integer_value(id),
			 name ? " (" : "", name ? name : "", name ? ")" : "");
	else
		snprintf(subject, sizeof(subject), "release %s", name ? name : "?");
	release_step_words(ev, step, sizeof(step));
	w->detail = str(ev, "detail");
	switch (what) {
	case CONFIG_NOTIFY_STARTED:
		snprintf(w->headline, sizeof(w->headline), "%s started", subject);
		break;
	case CONFIG_NOTIFY_STEP:
		if (!strcmp(phase, "rolling-back"))
			snprintf(w->headline, sizeof(w->headline), "%s is rolling back%s%s", subject, step[0] ? ": " : "",
				 step);
		else
			snprintf(w->headline, sizeof(w->headline), "%s: %s", subject, step[0] ? step : "a step");
		break;
	case CONFIG_NOTIFY_APPROVAL_NEEDED:
		snprintf(w->headline, sizeof(w->headline), "%s awaits approval", subject);
		break;
	default:
		snprintf(w->headline, sizeof(w->headline), "%s %s", subject,
			 !strcmp(phase, "degraded")	? "succeeded, degraded (a part that is not critical failed)"
			 : what == CONFIG_NOTIFY_SUCCEEDED   ? "succeeded"
			 : what == CONFIG_NOTIFY_ROLLED_BACK ? "rolled back"
			 : !strcmp(phase, "rejected")	? "was rejected"
			 : !strcmp(phase, "expired")	? "expired (nobody approved it in time)"
							: "failed");
	}
	if (env)
		add_context(w, env);
}

/* {"text": ..., "blocks": [section, context]} as compact JSON. */
static char *slack_body(int what, const struct words *w, size_t *len)
{
	char *headline = notify_slack_escape(w->headline, HEADLINE_MAX);
	char *detail = notify_slack_escape(w->detail ? w->detail : "", DETAIL_MAX);
	char *context = notify_slack_escape(w->context, sizeof(w->context));
	char *text = NULL, *section = NULL, *out = NULL;
	json_t *blocks = NULL, *body = NULL;

	if (!headline || !detail || !context)
		goto out;
	if (asprintf(&text, "%s %s%s%s", emoji[what], headline, detail[0] ? ": " : "", detail) < 0) {
		text = NULL;
		goto out;
	}
	if (asprintf(&section, "%s *%s*%s%s", emoji[what], headline, detail[0] ? "\n" : "", detail) < 0) {
		section = NULL;
		goto out;
	}
	blocks = json_pack("[{s:s, s:{s:s, s:s}}]", "type", "section", "text", "type", "mrkdwn", "text", section);
	if (blocks && context[0] &&
	    json_array_append_new(blocks, json_pack("{s:s, s:[{s:s, s:s}]}", "type", "context", "elements", "type",
						    "mrkdwn", "text", context)) < 0)
		goto out;
	body = blocks ? json_pack("{s:s, s:O}", "text", text, "blocks", blocks) : NULL;
	if (body)
		out = json_dumps(body, JSON_COMPACT);
	if (out)
		*len = strlen(out);
out:
	json_decref(body);
	json_decref(blocks);
	free(headline);
	free(detail);
	free(context);
	free(text);
	free(section);
	return out;
}

char *notify_body(enum config_webhook_format format, int what, const char *kind, const json_t *event,
		  const char *env, size_t *len)
{
	struct words w = { .detail = NULL };
	const char *event_env = str(event, "env");
	json_t *body;
	char *out;

	if (what < 0 || what >= CONFIG_NOTIFY_NEVENTS)
		return NULL;
	if (event_env)
		env = event_env;
	if (format == CONFIG_WEBHOOK_JSON) {
		body = json_pack("{s:s, s:s, s:s?, s:o}", "notification", config_notify_event_names[what], "kind", kind,
				 "env", env, "event", json_deep_copy(event));
		out = body ? json_dumps(body, JSON_COMPACT) : NULL;
		json_decref(body);
		if (out)
			*len = strlen(out);
		return out;
	}
	if (!strcmp(kind, "release"))
		release_words(what, event, env, &w);
	else
		deployment_words(what, event, env, &w);
	return slack_body(what, &w, len);
}

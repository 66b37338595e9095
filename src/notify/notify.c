/* notify.c - the notifier (contract in notify.h; design in
 * docs/internals/notify.md): its webhooks, their queues, reloads, the
 * events it is given, its metrics and the drain at shutdown.  The
 * transfers themselves are transfer.c's, the bodies message.c's.
 *
 * Each webhook has a queue of notifications, oldest first, bounded by its
 * `queue:` setting (besides the one being sent): when it is full the
 * oldest waiting one is dropped, counted and logged, never the event that
 * just happened.  Only the first one of a queue is ever in flight, so one
 * webhook receives its notifications in the order of the events; webhooks
 * do not wait for each other.  A body is redacted with the process-wide
 * redactor before it is queued: no secret value waits in memory to be
 * sent, or reaches a receiver.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/list.h"
#include "base/log.h"
#include "base/util.h"
#include "config/config.h"
#include "loop/loop.h"
#include "notify/notify-internal.h"
#include "secrets/redact.h"
#include "secrets/secrets.h"

/* ---- webhooks ------------------------------------------------------------- */

static void notice_free(struct notice *nt)
{
	list_del(&nt->node);
	free(nt->body);
	free(nt);
}

/* Notifications waiting behind the one being sent (or retried). */
static size_t waiting(const struct webhook *w)
{
	return w->queued - (w->sending || w->backing_off ? 1 : 0);
}

static struct notice *first(const struct webhook *w)
{
	return w->queued ? container_of(w->queue.next, struct notice, node) : NULL;
}

static struct webhook *webhook_free(struct webhook *w)
{
	if (!w)
		return NULL;
	transfer_stop(w);
	if (w->easy)
		curl_easy_cleanup(w->easy);
	while (w->queued) {
		notice_free(first(w));
		w->queued--;
	}
	if (w->url) {
		explicit_bzero(w->url, strlen(w->url));
		free(w->url);
	}
	free(w->name);
	free(w);
	return NULL;
}

/* Settings of cw onto w (new, or kept across a reload). */
static int webhook_set(struct webhook *w, const struct config_webhook *cw)
{
	char *name = strdup(cw->name);

	if (!name)
		return -ENOMEM;
	free(w->name);
	w->name = name;
	w->events = cw->events;
	w->format = cw->format;
	w->timeout_ms = cw->timeout_ms;
	w->backoff_ms = cw->backoff_ms;
	w->retries = cw->retries;
	w->queue_max = cw->queue;
	return 0;
}

/* A new webhook posting to url (taken: freed on failure too). */
static struct webhook *webhook_new(struct notifier *n, char *url, const char *origin)
{
	struct webhook *w = calloc(1, sizeof(*w));

	if (!w) {
		explicit_bzero(url, strlen(url));
		free(url);
		return NULL;
	}
	w->n = n;
	w->url = url;
	snprintf(w->origin, sizeof(w->origin), "%s", origin);
	w->host = strstr(w->origin, "://") ? strstr(w->origin, "://") + 3 : w->origin;
	list_init(&w->queue);
	return w;
}

void webhook_settle(struct webhook *w, enum notice_outcome outcome)
{
	struct notice *nt = first(w);

	if (!nt)
		return;
	notice_free(nt);
	w->queued--;
	if (outcome == NOTICE_OK)
		w->ok++;
	else if (outcome == NOTICE_FAILED)
		w->failed++;
	else
		w->dropped++;
	transfer_kick(w);
}

/* Queue body (copied) for w; when w is full the oldest waiting one goes. */
static void webhook_queue(struct webhook *w, int what, const char *body, size_t len)
{
	struct notice *nt = calloc(1, sizeof(*nt)), *old;

	if (!nt || !(nt->body = malloc(len + 1))) {
		free(nt);
		w->dropped++;
		log_error("webhook %s (%s): the %s notification is dropped: out of memory", w->name, w->origin,
			  config_notify_event_names[what]);
		return;
	}
	memcpy(nt->body, body, len + 1);
	nt->len = len;
	nt->what = what;
	if (waiting(w) >= w->queue_max) {
		/* the oldest one that is not in flight */
		old = container_of(w->sending || w->backing_off ? w->queue.next->next : w->queue.next, struct notice,
				   node);
		w->dropped++;
		log_warn("webhook %s (%s): its queue is full (queue: %u): the oldest notification waiting (%s) is "
			 "dropped", w->name, w->origin, w->queue_max, config_notify_event_names[old->what]);
		notice_free(old);
		w->queued--;
	}
	list_add_tail(&w->queue, &nt->node);
	w->queued++;
	transfer_kick(w);
}

/* ---- configuration -------------------------------------------------------- */

/* The environment's secrets, read once per configure when a webhook names
 * one.  Returns 0 with *ret, or -errno with why in err. */
static int read_secrets(const struct config *cfg, struct secrets **ret, char *err, size_t errlen)
{
	struct age_identity id = { 0 };
	int rc;

	if (!cfg->secrets.identity || !cfg->secrets.file) {
		snprintf(err, errlen, "no secrets file is configured");
		return -ENOENT;
	}
	rc = age_identity_read(cfg->secrets.identity, &id, err, errlen);
	if (rc < 0)
		return rc;
	rc = secrets_read(cfg->secrets.file, &id, false, ret, err, errlen);
	age_identity_release(&id);
	return rc;
}

/* The secrets file, read once per configure, the first time a webhook
 * names a secret. */
struct secret_source {
	struct secrets *secrets;
	bool read;
	int rc;
	char err[400];
};

/* cw's URL, malloc'd (from the secrets file for url_secret), or NULL
 * (logged). */
static char *webhook_url(const struct config *cfg, const struct config_webhook *cw, struct secret_source *src)
{
	const struct secret *s;
	char *url;

	if (cw->url) {
		if (!(url = strdup(cw->url)))
			log_error("webhook %s: out of memory: it sends nothing", cw->name);
		return url;
	}
	if (!src->read) {
		src->read = true;
		src->rc = read_secrets(cfg, &src->secrets, src->err, sizeof(src->err));
	}
	if (src->rc < 0) {
		log_error("webhook %s: its URL (secret %s) cannot be read: %s; it sends nothing until a reload that "
			  "can read it", cw->name, cw->url_secret, src->err);
		return NULL;
	}
	s = secrets_find(src->secrets, cw->url_secret);
	if (!s) {
		log_error("webhook %s: secret %s is missing from %s: it sends nothing until a reload that has it "
			  "(`cutover secrets set %s%s%s`)", cw->name, cw->url_secret, cfg->secrets.file, cw->url_secret,
			  cfg->env ? " --env " : "", cfg->env ? cfg->env : "");
		return NULL;
	}
	if (memchr(s->value, 0, s->len)) {
		log_error("webhook %s: secret %s is not a URL (it holds a NUL byte): it sends nothing", cw->name,
			  cw->url_secret);
		return NULL;
	}
	url = strndup((const char *)s->value, s->len);
	if (!url)
		log_error("webhook %s: out of memory: it sends nothing", cw->name);
	return url;
}

/* The webhook of old[0..nold) posting to url, taken out of old; or NULL. */
static struct webhook *take_same(struct webhook **old, size_t nold, const char *url)
{
	for (size_t i = 0; i < nold; i++) {
		struct webhook *w = old[i];

		if (w && !strcmp(w->url, url)) {
			old[i] = NULL;
			return w;
		}
	}
	return NULL;
}

/* One webhook of the new configuration: the old one with the same URL, or
 * a new one.  NULL: left out (logged). */
static struct webhook *configure_one(struct notifier *n, const struct config *cfg, const struct config_webhook *cw,
				     struct secret_source *src)
{
	char origin[NOTIFY_ORIGIN_MAX], *url = webhook_url(cfg, cw, src);
	const char *why;
	struct webhook *w;

	if (!url)
		return NULL;
	if ((why = config_webhook_url_check(url, origin, sizeof(origin)))) {
		/* a written URL was checked by the loader: this is a secret's */
		log_error("webhook %s: secret %s %s: it sends nothing until a reload that has a URL there", cw->name,
			  cw->url_secret ? cw->url_secret : "?", why);
		explicit_bzero(url, strlen(url));
		free(url);
		return NULL;
	}
	w = take_same(n->hooks, n->nhooks, url);
	if (w) {
		explicit_bzero(url, strlen(url));
		free(url);
	} else if (!(w = webhook_new(n, url, origin))) {
		log_error("webhook %s: out of memory: it sends nothing", cw->name);
		return NULL;
	}
	if (webhook_set(w, cw) < 0) {
		log_error("webhook %s: out of memory: it sends nothing", cw->name);
		return webhook_free(w);
	}
	return w;
}

void notifier_configure(struct notifier *n, const struct config *cfg)
{
	const struct config_notifications *nc = &cfg->notifications;
	struct webhook **next = nc->nwebhooks ? calloc(nc->nwebhooks, sizeof(*next)) : NULL;
	struct secret_source src = { .secrets = NULL };
	size_t count = 0;
	char *env = cfg->env ? strdup(cfg->env) : NULL;

	if (!n) {
		free(next);
		free(env);
		return;
	}
	if ((nc->nwebhooks && !next) || (cfg->env && !env)) {
		log_error("notifications: out of memory: the webhooks stay as they were");
		free(next);
		free(env);
		return;
	}
	for (size_t i = 0; i < nc->nwebhooks; i++) {
		struct webhook *w = configure_one(n, cfg, &nc->webhooks[i], &src);

		if (w)
			next[count++] = w;
	}
	secrets_free(src.secrets);
	for (size_t i = 0; i < n->nhooks; i++) {
		struct webhook *w = n->hooks[i];

		if (w && w->queued)
			log_warn("webhook %s (%s) is no longer configured: %zu notification%s not sent", w->name,
				 w->origin, w->queued, w->queued == 1 ? "" : "s");
		webhook_free(w);
	}
	free(n->hooks);
	n->hooks = next;
	n->nhooks = count;
	free(n->env);
	n->env = env;
}

/* ---- the object ----------------------------------------------------------- */

int notifier_new(struct loop *loop, const struct config *cfg, struct notifier **ret)
{
	struct notifier *n = calloc(1, sizeof(*n));
	int rc;

	if (!n)
		return -ENOMEM;
	n->loop = loop;
	list_init(&n->socks);
	list_init(&n->dead);
	rc = transfer_init(n);
	if (rc < 0) {
		transfer_release(n);
		free(n);
		return rc;
	}
	notifier_configure(n, cfg);
	*ret = n;
	return 0;
}

struct notifier *notifier_free(struct notifier *n)
{
	if (!n)
		return NULL;
	for (size_t i = 0; i < n->nhooks; i++)
		webhook_free(n->hooks[i]);
	free(n->hooks);
	transfer_release(n);
	free(n->env);
	free(n);
	return NULL;
}

/* The body of notification `what` in format, redacted, into bodies[format]
 * (built once per event and format).  Returns it or NULL (logged). */
static const char *body_for(struct notifier *n, int what, const char *kind, const json_t *event,
			    enum config_webhook_format format, char *bodies[2], size_t lens[2])
{
	char *raw, *redacted = NULL;
	size_t len = 0, rlen = 0;
	int rc;

	if (bodies[format])
		return bodies[format];
	raw = notify_body(format, what, kind, event, n->env, &len);
	if (!raw)
		return NULL;
	rc = redact_global_text(raw, len, &redacted, &rlen);
	if (rc < 0) { /* never send what could not be checked */
		explicit_bzero(raw, len);
		free(raw);
		return NULL;
	}
	if (rc > 0) {
		explicit_bzero(raw, len);
		free(raw);
		raw = redacted;
		len = rlen;
	}
	bodies[format] = raw;
	lens[format] = len;
	return raw;
}

void notifier_event(struct notifier *n, const char *kind, const json_t *event)
{
	char *bodies[2] = { NULL, NULL };
	size_t lens[2] = { 0, 0 };
	int what = n ? notify_classify(kind, event) : -1;

	if (what < 0)
		return;
	for (size_t i = 0; i < n->nhooks; i++) {
		struct webhook *w = n->hooks[i];
		const char *body;

		if (!(w->events & (1u << what)))
			continue;
		body = body_for(n, what, kind, event, w->format, bodies, lens);
		if (!body) {
			w->dropped++;
			log_error("webhook %s (%s): the %s notification is dropped: out of memory", w->name, w->origin,
				  config_notify_event_names[what]);
			continue;
		}
		webhook_queue(w, what, body, lens[w->format]);
	}
	free(bodies[0]);
	free(bodies[1]);
}

/* ---- metrics -------------------------------------------------------------- */

/* A label value as the text format wants it (\\, \" and \n escaped). */
static void label(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fputc('\\', f);
		if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

static void labels(FILE *f, const struct webhook *w)
{
	fputs("{webhook=\"", f);
	label(f, w->name);
	fputs("\",host=\"", f);
	label(f, w->host);
	fputc('"', f);
}

char *notifier_metrics(const struct notifier *n, size_t *len)
{
	static const char *const results[] = { "ok", "failed", "dropped" };
	char *text = NULL;
	FILE *f = open_memstream(&text, len);

	if (!f)
		return NULL;
	fputs("# HELP cutover_webhook_deliveries_total Notifications by outcome: ok (delivered), failed (refused, or "
	      "given up after the retries), dropped (queue full, or still queued at shutdown).\n"
	      "# TYPE cutover_webhook_deliveries_total counter\n", f);
	for (size_t i = 0; i < n->nhooks; i++) {
		const struct webhook *w = n->hooks[i];
		const uint64_t values[] = { w->ok, w->failed, w->dropped };

		for (size_t r = 0; r < ARRAY_SIZE(results); r++) {
			fputs("cutover_webhook_deliveries_total", f);
			labels(f, w);
			fprintf(f, ",result=\"%s\"} %llu\n", results[r], (unsigned long long)values[r]);
		}
	}
	fputs("# HELP cutover_webhook_retries_total Attempts that failed and were tried again later.\n"
	      "# TYPE cutover_webhook_retries_total counter\n", f);
	for (size_t i = 0; i < n->nhooks; i++) {
		fputs("cutover_webhook_retries_total", f);
		labels(f, n->hooks[i]);
		fprintf(f, "} %llu\n", (unsigned long long)n->hooks[i]->retried);
	}
	fputs("# HELP cutover_webhook_queue_depth Notifications queued, the one being sent included.\n"
	      "# TYPE cutover_webhook_queue_depth gauge\n", f);
	for (size_t i = 0; i < n->nhooks; i++) {
		fputs("cutover_webhook_queue_depth", f);
		labels(f, n->hooks[i]);
		fprintf(f, "} %zu\n", n->hooks[i]->queued);
	}
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

/* ---- shutdown ------------------------------------------------------------- */

/* Is a notification in flight or waiting for its retry?  (One left queued
 * with no time to retry before the drain ends cannot make progress.) */
static bool busy(const struct notifier *n)
{
	for (size_t i = 0; i < n->nhooks; i++)
		if (n->hooks[i]->sending || n->hooks[i]->backing_off)
			return true;
	return false;
}

static size_t queued(const struct notifier *n)
{
	size_t total = 0;

	for (size_t i = 0; i < n->nhooks; i++)
		total += n->hooks[i]->queued;
	return total;
}

static void drain_check(struct loop *loop, struct loop_timer *timer)
{
	struct notifier *n = container_of(timer, struct notifier, drain_timer);

	if (!busy(n) || loop->now_ms >= n->drain_until_ms)
		loop->stop = true;
	else
		loop_timer_set(loop, timer, loop->now_ms + 10, drain_check);
}

void notifier_drain(struct notifier *n, uint64_t max_ms)
{
	uint64_t now = time_now_ms();

	if (!n || !queued(n))
		return;
	n->draining = true;
	n->drain_until_ms = now + max_ms;
	transfer_hurry(n);
	loop_timer_set(n->loop, &n->drain_timer, now + 10, drain_check);
	n->loop->stop = false;
	loop_run(n->loop);
	n->loop->stop = true;
	loop_timer_cancel(n->loop, &n->drain_timer);
	for (size_t i = 0; i < n->nhooks; i++) {
		struct webhook *w = n->hooks[i];

		if (!w->queued)
			continue;
		transfer_stop(w);
		log_error("webhook %s (%s): %zu notification%s not delivered by shutdown: given up", w->name, w->origin,
			  w->queued, w->queued == 1 ? "" : "s");
		w->dropped += w->queued;
		while (w->queued) {
			notice_free(first(w));
			w->queued--;
		}
	}
}

/* notify.h - webhooks on release and deploy events: started, step,
 * succeeded, rolled back, failed and approval needed, posted as
 * Slack-compatible JSON (or the event itself) over HTTP or HTTPS by
 * libcurl's multi interface on the daemon's loop (docs/internals/notify.md).
 *
 * Nothing here blocks the loop or fails what it reports on: a webhook that
 * is down, slow or refusing is retried with backoff, logged once per
 * attempt, counted in the metrics, and its notifications are eventually
 * delivered, given up or dropped, never waited for by a deploy.
 */
#pragma once
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include "config/config-t.h"
#include "loop/loop-t.h"

struct notifier;

/* A notifier on loop with cfg's notifications: (cfg is read, not kept; a
 * url_secret is read from cfg's secrets file now: see
 * notifier_configure).  Returns 0 with *ret (notifier_free), or -ENOMEM /
 * -EIO (libcurl could not start) with *ret untouched. */
int notifier_new(struct loop *loop, const struct config *cfg, struct notifier **ret);
/* Take cfg's notifications: after a reload.  A webhook whose URL is the
 * same as before keeps its queue, the notification being sent and its
 * counters; one that is gone is stopped and its queue dropped; settings
 * apply from the next attempt.  A url_secret is read from the
 * environment's secrets file with the server's identity (file I/O, as the
 * reload's own): a webhook whose secret cannot be read is left out and
 * logged.  Never fails (out of memory leaves a webhook out, logged).
 * n may be NULL (nothing happens), as for notifier_event and
 * notifier_drain: a daemon whose libcurl could not start has none. */
void notifier_configure(struct notifier *n, const struct config *cfg);
/* An event the daemon publishes (kind "deployment" or "release"; others
 * are ignored), borrowed.  When it is one of the six notifications, each
 * webhook that wants it queues its body (redacted with the process-wide
 * redactor), to be sent after the ones queued before.  Never blocks. */
void notifier_event(struct notifier *n, const char *kind, const json_t *event);
/* The webhook series of /metrics (cutover_webhook_deliveries_total,
 * cutover_webhook_retries_total, cutover_webhook_queue_depth), HELP and
 * TYPE lines included.  Returns a malloc'd string (its length in *len) or
 * NULL (out of memory). */
char *notifier_metrics(const struct notifier *n, size_t *len);
/* At shutdown, the loop no longer running: run it until every queued
 * notification is delivered or given up, at most max_ms, then give up
 * what is left (counted as dropped, logged).  Stops the loop again when it
 * returns. */
void notifier_drain(struct notifier *n, uint64_t max_ms);
/* Abort what is in flight (not counted: notifier_drain does that) and
 * free.  Accepts NULL; returns NULL. */
struct notifier *notifier_free(struct notifier *n);

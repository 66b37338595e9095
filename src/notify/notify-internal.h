/* notify-internal.h - what the files of src/notify/ share:
 *
 *   message.c  what an event means (which notification) and the bodies
 *              posted for it: Slack's {"text", "blocks"} or the event in an
 *              envelope (pure: unit-tested with tables of events)
 *   notify.c   the notifier: webhooks, their queues, configure, events,
 *              metrics, drain
 *   transfer.c libcurl's multi interface on the loop: sockets, timer, one
 *              transfer per webhook at a time, retries with backoff
 */
#pragma once
#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include "base/list-t.h"
#include "config/config-t.h"
#include "loop/loop-t.h"
#include "notify/notify.h"

#define NOTIFY_RETRY_DELAY_MAX_MS (5 * 60 * 1000) /* no retry waits longer (Retry-After included) */
#define NOTIFY_RESPONSE_KEPT 160                 /* bytes of a response body kept for the log */
#define NOTIFY_ORIGIN_MAX 300                    /* "https://host:port" */

/* ---- message.c ------------------------------------------------------------ */

/* The notification event (kind "deployment" or "release", as the daemon
 * publishes them) stands for: an enum config_notify_event, or -1 when it
 * is none (an instance event, a deploy's health check...). */
int notify_classify(const char *kind, const json_t *event);
/* The body posted for notification `what` of event (kind as above) in
 * format; env (may be NULL) names the environment when the event does not.
 * Not redacted yet.  Returns a malloc'd NUL-terminated string (its length
 * in *len), or NULL (out of memory). */
char *notify_body(enum config_webhook_format format, int what, const char *kind, const json_t *event,
		  const char *env, size_t *len);
/* s with Slack's three escapes (&amp; &lt; &gt;), cut to at most max bytes
 * of the original (on a UTF-8 boundary, "..." appended).  Malloc'd or NULL. */
char *notify_slack_escape(const char *s, size_t max);

/* ---- the notifier (notify.c, transfer.c) ------------------------------------ */

/* A notification waiting, or being sent (the first of its webhook's queue). */
struct notice {
	struct list_head node;
	char *body;                   /* redacted */
	size_t len;
	int what;                     /* enum config_notify_event */
	unsigned attempts;            /* made so far */
};

struct webhook {
	struct notifier *n;
	char *name;                   /* the metrics' label */
	char *url;                    /* wiped when freed: it may be a secret */
	char origin[NOTIFY_ORIGIN_MAX]; /* scheme://host[:port]: what logs show of the URL */
	const char *host;             /* into origin, after "://": the metrics' label */
	uint32_t events;              /* 1u << enum config_notify_event */
	enum config_webhook_format format;
	uint64_t timeout_ms, backoff_ms;
	uint32_t retries, queue_max;
	struct list_head queue;       /* struct notice, oldest first; the first one may be in flight */
	size_t queued;
	CURL *easy;                   /* the transfer, created with the first attempt */
	bool sending;                 /* easy is in the multi handle, for the first notice */
	bool backing_off;             /* retry_timer is armed for the first notice */
	struct loop_timer retry_timer;
	char error[CURL_ERROR_SIZE];
	char response[NOTIFY_RESPONSE_KEPT];
	size_t response_len;
	uint64_t ok, failed, dropped, retried;
};

/* A socket libcurl asked the loop to watch. */
struct notify_sock {
	struct loop_io io;
	struct notifier *n;
	struct list_head node;        /* in n->socks, or n->dead once libcurl let go of it */
	bool dead;                    /* out of the loop; freed by the reap timer (events may be queued) */
};

struct notifier {
	struct loop *loop;
	CURLM *multi;
	struct curl_slist *headers;   /* Content-Type, no Expect: 100-continue */
	struct loop_timer timer;      /* libcurl's timeout */
	struct loop_timer reap;       /* frees the dead sockets, after the iteration's events */
	struct loop_timer drain_timer;
	struct list_head socks, dead;
	struct webhook **hooks;
	size_t nhooks;
	char *env;                    /* the environment (cfg->env), NULL if none */
	bool draining;
	uint64_t drain_until_ms;
};

/* transfer.c */
int transfer_init(struct notifier *n);
void transfer_release(struct notifier *n);
/* Send w's first notice now when w is idle (not sending, not backing off). */
void transfer_kick(struct webhook *w);
/* Stop w's transfer and its retry timer (the notice stays first in the queue). */
void transfer_stop(struct webhook *w);
/* At the start of a drain: the webhooks waiting for a retry try now. */
void transfer_hurry(struct notifier *n);
/* The delay before retry number `retry` (1 for the first) with base
 * backoff_ms: base * 2^(retry-1), from 3/4 to 5/4 of that (jitter as
 * `unit`, 0..1, says), at least retry_after_ms, at most
 * NOTIFY_RETRY_DELAY_MAX_MS. */
uint64_t notify_retry_delay(uint64_t backoff_ms, unsigned retry, double unit, uint64_t retry_after_ms);
/* Is an attempt that ended with curl result rc and HTTP status (0: none)
 * worth retrying: connection errors, timeouts, 408, 429 and 5xx are;
 * other statuses (400 invalid payload, 403, 404 gone) are refusals. */
bool notify_retryable(CURLcode rc, long status);
/* notify.c: w's first notice is done, as outcome says (counted); it leaves
 * the queue and the next one is sent. */
enum notice_outcome { NOTICE_OK, NOTICE_FAILED, NOTICE_DROPPED };
void webhook_settle(struct webhook *w, enum notice_outcome outcome);

/* transfer.c - libcurl's multi interface on the daemon's loop: the POSTs of
 * the webhooks, one at a time per webhook, and their retries (contract in
 * notify-internal.h; design in docs/internals/notify.md).
 *
 * libcurl says which sockets to watch for what (CURLMOPT_SOCKETFUNCTION:
 * loop_add / loop_mod / loop_del) and when it next needs the time
 * (CURLMOPT_TIMERFUNCTION: one loop timer); the loop calls
 * curl_multi_socket_action() back with what happened.  Nothing here
 * waits: connecting, TLS, sending and reading all advance as the sockets
 * allow, and host names are resolved by libcurl's threaded resolver, off
 * the loop thread (CURLOPT_QUICK_EXIT: giving up on a resolution does not
 * wait for it either).  A socket libcurl lets go of leaves the loop at
 * once and is freed by a timer, after every event already read for it in
 * the same iteration has been skipped.
 *
 * An attempt that fails is retried after a backoff (doubled each time,
 * with jitter, Retry-After honoured), as long as retries are left and the
 * failure is worth it: a connection error, a timeout, 408, 429 or 5xx.  A
 * 4xx is the receiver refusing this body or this URL (Slack's 400
 * invalid_payload, 403, 404 no_service): retrying would not help.
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "base/list.h"
#include "base/log.h"
#include "base/util.h"
#include "config/config.h"
#include "loop/loop.h"
#include "notify/notify-internal.h"

static void check_done(struct notifier *n);

/* ---- policy ----------------------------------------------------------------- */

uint64_t notify_retry_delay(uint64_t backoff_ms, unsigned retry, double unit, uint64_t retry_after_ms)
{
	uint64_t d = backoff_ms;

	for (unsigned i = 1; i < retry && d < NOTIFY_RETRY_DELAY_MAX_MS; i++)
		d *= 2;
	if (unit < 0)
		unit = 0;
	if (unit > 1)
		unit = 1;
	d = (uint64_t)((double)d * (0.75 + 0.5 * unit));
	if (d < retry_after_ms)
		d = retry_after_ms;
	return d > NOTIFY_RETRY_DELAY_MAX_MS ? NOTIFY_RETRY_DELAY_MAX_MS : d;
}

bool notify_retryable(CURLcode rc, long status)
{
	if (rc != CURLE_OK)
		return true;
	return status == 408 || status == 429 || status >= 500 || status < 200;
}

/* ---- libcurl's sockets and timer ---------------------------------------------- */

static void reap_fired(struct loop *loop, struct loop_timer *timer)
{
	struct notifier *n = container_of(timer, struct notifier, reap);
	struct list_head *pos, *tmp;

	list_for_each_safe(pos, tmp, &n->dead) {
		list_del(pos);
		free(container_of(pos, struct notify_sock, node));
	}
}

static void sock_event(struct loop *loop, struct loop_io *io, uint32_t events)
{
	struct notify_sock *ns = container_of(io, struct notify_sock, io);
	struct notifier *n = ns->n;
	int flags = 0, running;

	if (ns->dead)
		return; /* libcurl let go of it earlier in this iteration */
	if (events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP))
		flags |= CURL_CSELECT_IN;
	if (events & EPOLLOUT)
		flags |= CURL_CSELECT_OUT;
	if (events & EPOLLERR)
		flags |= CURL_CSELECT_ERR;
	curl_multi_socket_action(n->multi, io->fd, flags, &running);
	check_done(n);
}

static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct notifier *n = userp;
	struct notify_sock *ns = socketp;
	uint32_t events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);

	if (what == CURL_POLL_REMOVE) {
		if (ns && !ns->dead) {
			loop_del(n->loop, &ns->io);
			ns->io.fd = -1;
			ns->dead = true;
			list_del(&ns->node);
			list_add_tail(&n->dead, &ns->node);
			loop_timer_set(n->loop, &n->reap, n->loop->now_ms, reap_fired);
		}
		return 0;
	}
	if (ns)
		return loop_mod(n->loop, &ns->io, events) < 0 ? -1 : 0;
	ns = calloc(1, sizeof(*ns));
	if (!ns)
		return -1;
	/* not for a new binary of `cutover upgrade`, whose exec keeps the rest
	 * (transfer sockets are opened so already: open_socket) */
	fcntl(s, F_SETFD, FD_CLOEXEC);
	ns->n = n;
	if (loop_add(n->loop, &ns->io, s, events, sock_event) < 0) {
		free(ns);
		return -1;
	}
	list_add_tail(&n->socks, &ns->node);
	curl_multi_assign(n->multi, s, ns);
	return 0;
}

static void timer_fired(struct loop *loop, struct loop_timer *timer)
{
	struct notifier *n = container_of(timer, struct notifier, timer);
	int running;

	curl_multi_socket_action(n->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(n);
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct notifier *n = userp;

	if (timeout_ms < 0)
		loop_timer_cancel(n->loop, &n->timer);
	else /* 0: as soon as the loop gets to its timers (never from inside libcurl) */
		loop_timer_set(n->loop, &n->timer, n->loop->now_ms + (uint64_t)timeout_ms, timer_fired);
	return 0;
}

int transfer_init(struct notifier *n)
{
	static bool global;
	struct curl_slist *h;

	if (!global && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -EIO;
	global = true;
	n->multi = curl_multi_init();
	if (!n->multi)
		return -ENOMEM;
	curl_multi_setopt(n->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(n->multi, CURLMOPT_SOCKETDATA, n);
	curl_multi_setopt(n->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(n->multi, CURLMOPT_TIMERDATA, n);
	h = curl_slist_append(NULL, "Content-Type: application/json; charset=utf-8");
	n->headers = h;
	/* a body over 1 KiB would wait for "100 Continue" first */
	h = h ? curl_slist_append(h, "Expect:") : NULL;
	if (!h)
		return -ENOMEM;
	return 0;
}

void transfer_release(struct notifier *n)
{
	struct list_head *lists[] = { &n->socks, &n->dead }, *pos, *tmp;

	if (n->multi) {
		/* closing its connections must not call back into a notifier
		 * being freed */
		curl_multi_setopt(n->multi, CURLMOPT_SOCKETFUNCTION, NULL);
		curl_multi_setopt(n->multi, CURLMOPT_TIMERFUNCTION, NULL);
		curl_multi_cleanup(n->multi);
		n->multi = NULL;
	}
	curl_slist_free_all(n->headers);
	n->headers = NULL;
	loop_timer_cancel(n->loop, &n->timer);
	loop_timer_cancel(n->loop, &n->reap);
	loop_timer_cancel(n->loop, &n->drain_timer);
	for (size_t i = 0; i < ARRAY_SIZE(lists); i++) {
		list_for_each_safe(pos, tmp, lists[i]) {
			struct notify_sock *ns = container_of(pos, struct notify_sock, node);

			if (!ns->dead)
				loop_del(n->loop, &ns->io);
			list_del(pos);
			free(ns);
		}
	}
}

/* ---- attempts ------------------------------------------------------------------ */

/* libcurl's sockets are close-on-exec, as every descriptor of the daemon. */
static curl_socket_t open_socket(void *data, curlsocktype purpose, struct curl_sockaddr *a)
{
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct webhook *w = userdata;
	size_t len = size * nmemb, room = sizeof(w->response) - 1 - w->response_len;

	if (room) {
		memcpy(w->response + w->response_len, data, len < room ? len : room);
		w->response_len += len < room ? len : room;
		w->response[w->response_len] = 0;
	}
	return len; /* the rest is read and let go */
}

static struct notice *head(const struct webhook *w)
{
	return w->queued ? container_of(w->queue.next, struct notice, node) : NULL;
}

/* Why the attempt failed, for the log: libcurl's error, or the status and
 * the start of the response (printable, on one line). */
static void cause(const struct webhook *w, CURLcode rc, long status, char *out, size_t len)
{
	char body[NOTIFY_RESPONSE_KEPT];
	size_t i;

	if (rc != CURLE_OK) {
		snprintf(out, len, "%s", w->error[0] ? w->error : curl_easy_strerror(rc));
		return;
	}
	for (i = 0; i < w->response_len && i < sizeof(body) - 1; i++)
		body[i] = (unsigned char)w->response[i] < 0x20 || (unsigned char)w->response[i] == 0x7f ? ' '
												      : w->response[i];
	body[i] = 0;
	snprintf(out, len, "HTTP %ld%s%s%s", status, i ? " (" : "", body, i ? ")" : "");
}

static void retry_fired(struct loop *loop, struct loop_timer *timer)
{
	struct webhook *w = container_of(timer, struct webhook, retry_timer);

	w->backing_off = false;
	transfer_kick(w);
}

/* w's attempt ended with rc (the transfer is out of the multi handle). */
static void attempt_done(struct webhook *w, CURLcode rc)
{
	struct notice *nt = head(w);
	struct notifier *n = w->n;
	long status = 0;
	curl_off_t retry_after = 0;
	uint64_t delay;
	char why[CURL_ERROR_SIZE + NOTIFY_RESPONSE_KEPT + 32];
	bool retry;

	w->sending = false;
	curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &status);
	if (rc == CURLE_OK && status >= 200 && status < 300) {
		webhook_settle(w, NOTICE_OK);
		return;
	}
	curl_easy_getinfo(w->easy, CURLINFO_RETRY_AFTER, &retry_after);
	cause(w, rc, status, why, sizeof(why));
	retry = notify_retryable(rc, status) && nt->attempts <= w->retries;
	delay = notify_retry_delay(w->backoff_ms, nt->attempts, (double)randombytes_uniform(1u << 20) / (1u << 20),
				   retry_after > 0 ? (uint64_t)retry_after * 1000 : 0);
	if (retry && n->draining && n->loop->now_ms + delay >= n->drain_until_ms)
		retry = false; /* the daemon stops before then: said once, by notifier_drain */
	if (retry) {
		w->retried++;
		w->backing_off = true;
		loop_timer_set(n->loop, &w->retry_timer, n->loop->now_ms + delay, retry_fired);
		log_warn("webhook %s (%s): %s notification, attempt %u of %u failed: %s; next attempt in %s", w->name,
			 w->origin, config_notify_event_names[nt->what], nt->attempts, w->retries + 1, why,
			 DURATION_TEXT(delay));
		return;
	}
	if (n->draining && notify_retryable(rc, status) && nt->attempts <= w->retries) {
		log_warn("webhook %s (%s): %s notification, attempt %u of %u failed: %s; no time left to retry before "
			 "shutdown", w->name, w->origin, config_notify_event_names[nt->what], nt->attempts,
			 w->retries + 1, why);
		return; /* stays queued: given up (and counted) by notifier_drain */
	}
	log_error("webhook %s (%s): %s notification not delivered after %u attempt%s: %s%s", w->name, w->origin,
		  config_notify_event_names[nt->what], nt->attempts, nt->attempts == 1 ? "" : "s", why,
		  notify_retryable(rc, status) ? "" : " (a refusal: not retried)");
	webhook_settle(w, NOTICE_FAILED);
}

/* Set up w's transfer of its first notice.  Returns 0 or -1 (no memory,
 * or an option libcurl refused). */
static int attempt_setup(struct webhook *w, const struct notice *nt)
{
	CURL *e = w->easy;
	int bad = 0;

	curl_easy_reset(e); /* keeps the connection and DNS caches */
	bad |= curl_easy_setopt(e, CURLOPT_URL, w->url) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, nt->body) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)nt->len) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, w->n->headers) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, "cutover/" CUTOVER_VERSION) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)w->timeout_ms) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_QUICK_EXIT, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, w) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, w->error) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, w) != CURLE_OK;
	w->error[0] = 0;
	w->response[0] = 0;
	w->response_len = 0;
	return bad ? -1 : 0;
}

void transfer_kick(struct webhook *w)
{
	struct notice *nt = head(w);

	if (!nt || w->sending || w->backing_off)
		return;
	if (!w->easy && !(w->easy = curl_easy_init())) {
		log_error("webhook %s (%s): cannot start a transfer (out of memory): the %s notification is dropped",
			  w->name, w->origin, config_notify_event_names[nt->what]);
		webhook_settle(w, NOTICE_DROPPED);
		return;
	}
	nt->attempts++;
	if (attempt_setup(w, nt) < 0 || curl_multi_add_handle(w->n->multi, w->easy) != CURLM_OK) {
		snprintf(w->error, sizeof(w->error), "libcurl refused the transfer (out of memory?)");
		attempt_done(w, CURLE_FAILED_INIT);
		return;
	}
	w->sending = true;
}

void transfer_stop(struct webhook *w)
{
	if (w->sending)
		curl_multi_remove_handle(w->n->multi, w->easy);
	w->sending = false;
	if (w->backing_off)
		loop_timer_cancel(w->n->loop, &w->retry_timer);
	w->backing_off = false;
}

void transfer_hurry(struct notifier *n)
{
	for (size_t i = 0; i < n->nhooks; i++) {
		struct webhook *w = n->hooks[i];

		if (!w->backing_off)
			continue;
		loop_timer_cancel(n->loop, &w->retry_timer);
		w->backing_off = false;
		transfer_kick(w);
	}
}

/* The transfers libcurl finished: each leaves the multi handle, then its
 * webhook decides (done, retry later, give up). */
static void check_done(struct notifier *n)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(n->multi, &left))) {
		CURL *e = msg->easy_handle;
		CURLcode rc = msg->data.result;
		char *w = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, &w);
		curl_multi_remove_handle(n->multi, e);
		if (w)
			attempt_done((struct webhook *)(void *)w, rc);
	}
}

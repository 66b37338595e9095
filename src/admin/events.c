/* events.c - GET /v1/events: Server-Sent Events of what the daemon does.
 *
 * A stream is an API connection that stays open.  It starts with a
 * `hello` event (the daemon's version and pid), then gets every event the
 * daemon publishes through admin_event() as it happens: deployment phases
 * and instance changes, as `event: KIND` and `data: JSON` on one line
 * each (the JSON is compact, so it never holds a newline), in order.
 * Idle streams get a comment line every ADMIN_KEEPALIVE_MS so that a
 * reader notices a dead daemon.  A reader that stops reading is cut once
 * ADMIN_STREAM_MAX bytes wait for it: events are never dropped from the
 * middle of a stream.  The format is the WHATWG HTML "Server-sent events"
 * one; events carry an `id:` (a counter since the daemon started).
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "admin/admin-internal.h"
#include "admin/admin.h"
#include "base/list.h"
#include "loop/loop.h"
#include "secrets/redact.h"

static void keepalive_fired(struct loop *loop, struct loop_timer *t)
{
	struct admin *a = container_of(t, struct admin, keepalive);
	struct list_head *pos, *tmp;

	list_for_each_safe(pos, tmp, &a->streams) {
		struct admin_conn *c = container_of(pos, struct admin_conn, stream_node);
		static const char ping[] = ": keepalive\n\n";
		if (admin_conn_queue(c, ping, sizeof(ping) - 1) < 0)
			admin_conn_close(c);
		else
			admin_conn_flush(c);
	}
	if (!list_empty(&a->streams))
		loop_timer_set(loop, t, loop->now_ms + ADMIN_KEEPALIVE_MS, keepalive_fired);
}

/* "id: N\nevent: KIND\ndata: JSON\n\n", malloc'd, or NULL; secret
 * values hidden (secrets/redact.h). */
static char *event_text(uint64_t id, const char *kind, json_t *event, size_t *len)
{
	char *data = json_dumps(event, JSON_COMPACT | JSON_PRESERVE_ORDER), *text = NULL, *hidden = NULL;
	size_t hlen;
	int n;

	if (!data)
		return NULL;
	if (redact_global_text(data, strlen(data), &hidden, &hlen) == 1) {
		free(data);
		data = hidden;
	}
	n = asprintf(&text, "id: %llu\nevent: %s\ndata: %s\n\n", (unsigned long long)id, kind, data);
	free(data);
	if (n < 0)
		return NULL;
	*len = (size_t)n;
	return text;
}

void admin_stream_start(struct admin_conn *c)
{
	static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
				   "Connection: close\r\n\r\n";
	struct admin *a = c->admin;
	json_t *hello = json_pack("{s:s, s:i}", "version", CUTOVER_VERSION, "pid", (int)getpid());
	size_t len = 0;
	char *text = hello ? event_text(a->event_seq, "hello", hello, &len) : NULL;

	json_decref(hello);
	loop_timer_cancel(a->loop, &c->timer);
	if (!text || admin_conn_queue(c, head, sizeof(head) - 1) < 0 || admin_conn_queue(c, text, len) < 0) {
		free(text);
		admin_conn_close(c);
		return;
	}
	free(text);
	c->stream = true;
	list_add_tail(&a->streams, &c->stream_node);
	if (!a->keepalive.deadline_ms)
		loop_timer_set(a->loop, &a->keepalive, a->loop->now_ms + ADMIN_KEEPALIVE_MS, keepalive_fired);
}

void admin_event(struct admin *a, const char *kind, json_t *event)
{
	struct list_head *pos, *tmp;
	size_t len = 0;
	char *text;

	a->event_seq++;
	if (list_empty(&a->streams))
		return;
	text = event_text(a->event_seq, kind, event, &len);
	list_for_each_safe(pos, tmp, &a->streams) {
		struct admin_conn *c = container_of(pos, struct admin_conn, stream_node);
		if (!text || admin_conn_queue(c, text, len) < 0)
			admin_conn_close(c); /* a gap would lie to the reader: end its stream */
		else
			admin_conn_flush(c);
	}
	free(text);
}

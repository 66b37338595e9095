/* admin-internal.h - shared by the files of src/admin: one connection to an
 * admin listener, and the event stream (events.c). */
#pragma once
#include <stdbool.h>
#include <sys/types.h>
#include "admin/admin-t.h"
#include "base/buf-t.h"
#include "base/list-t.h"
#include "loop/loop-t.h"

#define ADMIN_IN 8192
#define ADMIN_API_IN (64 * 1024)         /* API requests carry small JSON bodies */
#define ADMIN_STREAM_MAX (1024 * 1024)   /* events queued for a stream reader that does not read: then cut */
#define ADMIN_KEEPALIVE_MS 15000         /* a comment line on idle streams, so readers see a dead daemon */

struct admin_conn {
	struct loop_io io;
	struct loop_timer timer;           /* 10 s to send a request and read the answer; none for a stream */
	struct admin *admin;
	struct list_head node;             /* in admin.conns */
	struct list_head stream_node;      /* in admin.streams while it is a stream */
	struct buf in;
	char *out;                         /* bytes to send: out[out_off..out_len) */
	size_t out_len, out_off, out_cap;
	bool closed;
	bool answered;                     /* the answer is queued: read nothing more */
	bool stream;                       /* GET /v1/events: stays open, events are pushed */
	bool api;                          /* came in on the Unix socket */
	uid_t peer_uid;                    /* its user (SO_PEERCRED): who deploys, for the audit */
};

/* Close now (freed by admin_reap at the end of the iteration). */
void admin_conn_close(struct admin_conn *c);
/* Append to what c sends.  Returns 0, -ENOMEM, or -ENOBUFS when a stream
 * would hold more than ADMIN_STREAM_MAX unsent bytes. */
int admin_conn_queue(struct admin_conn *c, const char *data, size_t len);
/* Send what the socket takes now; the rest goes on EPOLLOUT.  A finished
 * answer (not a stream) closes the connection. */
void admin_conn_flush(struct admin_conn *c);
/* Turn c into an event stream: the head, a hello event, then every event
 * admin_event() publishes (events.c). */
void admin_stream_start(struct admin_conn *c);

/* ---- the API's shared answers (api.c) ------------------------------------ */

struct admin_reply;
struct api_call;
struct json_t;
/* Answer STATUS with obj (consumed) as the body. */
void api_reply_json(struct admin_reply *out, int status, struct json_t *obj);
/* Answer STATUS with {"error": MESSAGE}. */
void api_reply_error(struct admin_reply *out, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* False (answered 503 or 409) when no deploy can start now. */
bool api_deploys_now(struct admin *a, const char *what, struct admin_reply *out);
/* The body as a JSON object, or NULL with a 400 answer set. */
struct json_t *api_body_object(const struct api_call *call, struct admin_reply *out);

/* api-releases.c: /v1/releases */
typedef void api_handler_fn(struct admin *a, const struct api_call *call, struct admin_reply *out);
api_handler_fn api_release_run, api_releases, api_release, api_release_abort, api_release_approve,
	api_release_reject;

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
#define ADMIN_API_IN (256 * 1024)        /* API requests: small JSON bodies, or a maintenance page
						  * (64 KiB of text, at most twice that as JSON) */
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
	bool head_only;                    /* HEAD: the answer's head, no body */
	bool waiting;                      /* a job on the state worker will answer it: not freed before */
	uid_t peer_uid;                    /* its user (SO_PEERCRED): who deploys, for the audit */
};

/* Close now (freed by admin_reap at the end of the iteration, or once the
 * worker's job that answers it is done). */
void admin_conn_close(struct admin_conn *c);
/* Append to what c sends.  Returns 0, -ENOMEM, or -ENOBUFS when a stream
 * would hold more than ADMIN_STREAM_MAX unsent bytes. */
int admin_conn_queue(struct admin_conn *c, const char *data, size_t len);
/* Send what the socket takes now; the rest goes on EPOLLOUT.  A finished
 * answer (not a stream) closes the connection. */
void admin_conn_flush(struct admin_conn *c);
/* How admin_conn_respond() sends a body. */
enum {
	ADMIN_REPLY_STATIC = 1u << 0,      /* an embedded file: Cache-Control: no-cache (revalidate with its
					    * ETag) instead of no-store, and no redaction (none can hold a secret) */
};
/* Queue the answer STATUS with body[0..len) (not sent for HEAD) of type
 * CTYPE and the extra head lines HEADERS (each ending in CRLF; NULL:
 * none).  Unless ADMIN_REPLY_STATIC, secret values in the body are hidden.
 * The connection closes once it is sent. */
void admin_conn_respond(struct admin_conn *c, int status, const char *ctype, const char *headers, const char *body,
			size_t len, unsigned flags);
/* The same with the JSON of obj (consumed), as the API answers. */
void admin_conn_respond_json(struct admin_conn *c, int status, struct json_t *obj);
/* Turn c into an event stream: the head, a hello event, then every event
 * admin_event() publishes (events.c). */
void admin_stream_start(struct admin_conn *c);

/* ---- the status page: its data (status.c), its files and token (web.c) --- */

/* Start sampling the history and the minutes (admin_init). */
void admin_status_start(struct admin *a);
/* Stop sampling and free what was sampled (admin_close). */
void admin_status_release(struct admin *a);
/* GET /v1/history, /v1/uptime and /v1/deployments (PATH, PATH_LEN without
 * the query; QUERY NUL-terminated, "" for none): answered (now, or by a
 * job on the state worker) and true; false when PATH is none of them. */
bool admin_status_route(struct admin_conn *c, const char *path, size_t path_len, const char *query);

/* One embedded file of web/ (the table is made by scripts/embed-web.py). */
struct admin_web_file {
	const char *name;                  /* its path under web/: "index.html", "app.js" */
	const char *content_type;
	const unsigned char *bytes;
	size_t length;
	const char *etag;                  /* a hash of the bytes, quoted */
};
extern const struct admin_web_file admin_web_files[];
extern const size_t admin_web_nfiles;

struct http_request;
/* Whether the request REQ (in BASE) may be answered on the TCP listener:
 * no token is set, it is /healthz, or it carries the token (Authorization:
 * Bearer, or the cookie that GET /?token=TOKEN sets).  Otherwise the answer
 * is queued (401; 303 to / with the cookie for a right GET /?token=) and
 * false. */
bool admin_web_allowed(struct admin_conn *c, const char *base, const struct http_request *req, const char *path,
		       size_t path_len, const char *query);
/* GET / and GET /static/NAME: answered (the file, 304, or 404) and true;
 * false when PATH is neither. */
bool admin_web_route(struct admin_conn *c, const char *base, const struct http_request *req, const char *path,
		     size_t path_len);
/* The value of query parameter NAME in QUERY (NUL-terminated, without the
 * '?'), %XX decoded, into out (size bytes, NUL-terminated).  True when it
 * is there and fits, and decodes to no NUL byte. */
bool admin_query_param(const char *query, const char *name, char *out, size_t size);

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

/* api-maintenance.c: POST /v1/services/NAME/maintenance */
struct proxy;
typedef void api_handler_fn(struct admin *a, const struct api_call *call, struct admin_reply *out);
api_handler_fn api_maintenance;
/* SERVICE's maintenance as /v1/status shows it: null, or {"since", "by",
 * "retry_after", "page": bool} (a new reference). */
struct json_t *api_maintenance_json(const struct proxy *p, const char *service);

/* api-releases.c: /v1/releases */
api_handler_fn api_release_run, api_releases, api_release, api_release_abort, api_release_approve,
	api_release_reject;

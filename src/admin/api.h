/* api.h - the admin API: JSON over HTTP/1.1 on the daemon's Unix socket.
 *
 * The endpoints are a table in api.c ({method, pattern, handler}) and are
 * documented in docs/api.md.
 *
 * The socket is mode 0600 in a 0700 directory: whoever can connect is the
 * operator.  Answers are JSON objects; errors are {"error": "..."} with a
 * 4xx/5xx status and a message that names the field and the reason.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include "admin/admin-t.h"

struct admin_reply {
	int status;
	char *body;          /* malloc'd JSON text, NUL-terminated; NULL for a stream */
	bool stream;         /* GET /v1/events: the connection becomes an event stream */
};

/* One API request, as the admin listener read it. */
struct api_call {
	uid_t peer_uid;      /* who asked (SO_PEERCRED): for the audit */
	const char *method;  /* NUL-terminated */
	const char *path;    /* the request-target, path_len bytes */
	size_t path_len;
	const char *body;
	size_t body_len;
	const char *param;   /* the pattern's {} segment, set for the handler */
};

/* Route one API request (the table is in api.c, the endpoints in
 * docs/api.md) and fill *out (caller frees out->body). */
void admin_api_handle(struct admin *a, const struct api_call *call, struct admin_reply *out);

/* api.h - the admin API: JSON over HTTP/1.1 on the daemon's Unix socket.
 *
 *   GET  /v1/status                      services, routes, targets, counters
 *   PUT  /v1/services/NAME/targets       replace a service's targets atomically
 *                                        body {"targets":[{"address":"127.0.0.1:9001","weight":1}]}
 *
 * The socket is mode 0600 in a 0700 directory: whoever can connect is the
 * operator.  Answers are JSON objects; errors are {"error": "..."} with a
 * 4xx/5xx status and a message that names the field and the reason.
 */
#pragma once
#include <stddef.h>
#include <sys/types.h>
#include "admin/admin-t.h"

struct admin_reply {
	int status;
	char *body;          /* malloc'd JSON text, NUL-terminated */
};

/* Handle one API request from user peer_uid.  Fills *out (caller frees
 * out->body). */
void admin_api_handle(struct admin *a, uid_t peer_uid, const char *method, const char *path, size_t path_len, const char *body,
		      size_t body_len, struct admin_reply *out);

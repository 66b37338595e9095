/* client.h - the CLI's side of the admin API (blocking; the CLI has no loop). */
#pragma once
#include <stddef.h>

/* Send one request and read the whole answer (5 s timeout each way).
 * Returns 0 with *status and *body (malloc'd, NUL-terminated; caller frees),
 * or -errno when the daemon cannot be reached or answers garbage, with a
 * sentence for the user in err. */
int admin_client_call(const char *socket_path, const char *method, const char *path, const char *body,
		      int *status, char **ret_body, char *err, size_t errlen);

/* An open event stream (GET /v1/events), read by admin_client_stream_next. */
struct admin_stream {
	int fd;
	char *buf;                   /* bytes read and not yet parsed */
	size_t len, cap;
};
/* Open the event stream at socket_path: connect, send the request, read the
 * answer's head.  Returns 0 with *s filled, or -errno with a sentence in err. */
int admin_client_stream_open(const char *socket_path, struct admin_stream *s, char *err, size_t errlen);
/* Wait up to timeout_ms for the next event.  Returns 1 with *ret_kind and
 * *ret_data (malloc'd, NUL-terminated: the event name and its JSON text),
 * 0 when none came in time, or -errno when the stream ended (-EPIPE) or
 * failed.  Comment lines are skipped. */
int admin_client_stream_next(struct admin_stream *s, int timeout_ms, char **ret_kind, char **ret_data);
void admin_client_stream_close(struct admin_stream *s);

/* client.h - the CLI's side of the admin API (blocking; the CLI has no loop). */
#pragma once
#include <stddef.h>

/* Send one request and read the whole answer (5 s timeout each way).
 * Returns 0 with *status and *body (malloc'd, NUL-terminated; caller frees),
 * or -errno when the daemon cannot be reached or answers garbage, with a
 * sentence for the user in err. */
int admin_client_call(const char *socket_path, const char *method, const char *path, const char *body,
		      int *status, char **ret_body, char *err, size_t errlen);

/* admin.h - the admin listeners (types in admin-t.h).
 *
 * TCP (loopback): GET /metrics (Prometheus text format) and GET /healthz.
 * Unix socket (mode 0600): the same, plus the JSON API of api.c that the
 * CLI uses.  The daemon owns the struct admin and applies each
 * configuration to it.
 */
#pragma once
#include <jansson.h>
#include "admin/admin-t.h"

/* Set up an admin with no listener open yet; proxy and deployer (may be
 * NULL) are borrowed. */
void admin_init(struct admin *a, struct loop *loop, struct proxy *proxy, struct deployer *deployer);
/* Take cfg as the configuration in force (borrowed until the next call or
 * admin_close) and open, move or close the listeners to match it.  The
 * Unix socket first: a second daemon on the same socket stops there.
 * Returns 0 or -errno (logged); a listener that cannot move stays where it
 * was. */
int admin_apply(struct admin *a, const struct config *cfg);
/* Free the connections closed during this loop iteration. */
void admin_reap(struct admin *a);
/* Close the listeners, keep the connections (an upgrade: the new daemon
 * accepts on the same sockets). */
void admin_stop_listening(struct admin *a);
/* Close the listeners and every connection. */
void admin_close(struct admin *a);
/* Publish an event to every event stream (GET /v1/events): kind is its
 * SSE event name ("deployment", "instance"), event its JSON data (borrowed).
 * A stream that cannot take it is closed, never given a gap. */
void admin_event(struct admin *a, const char *kind, json_t *event);

/* admin.h - the admin listeners (types in admin-t.h).
 *
 * TCP (loopback, or any address with admin_token): read-only, GET and
 * HEAD: the status page (/ and /static/NAME, web.c), its data (/v1/status,
 * /v1/events, /v1/history, /v1/uptime, /v1/deployments), /metrics
 * (Prometheus text format) and /healthz.  Unix socket (mode 0600): the
 * same data, /metrics and /healthz, plus the JSON API of api.c that the
 * CLI uses, deploys and every other change included.  The daemon owns the
 * struct admin and applies each configuration to it.
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
/* Require TOKEN (LEN bytes; NULL: require nothing) of every request on the
 * TCP listener but /healthz, from now on.  Only hashes of it are kept. */
void admin_set_token(struct admin *a, const char *token, size_t len);
/* Hand what the uptime counted and did not store yet (the current minute
 * included) to the state worker: before the worker stops.  Nothing when
 * there is no state. */
void admin_status_flush(struct admin *a);
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

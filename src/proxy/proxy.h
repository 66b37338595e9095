/* proxy.h - the reverse proxy (types in proxy-t.h).
 *
 * proxy_*      lifetime, listeners, reload, drain (proxy.c)
 * runtime_*, service_*, target_*   routing snapshot and target sets (service.c)
 * client_*     client connections and the request/response pump (client.c;
 *              one request and its response: exchange.c)
 * upstream_*   connections to targets and their pools (upstream.c)
 */
#pragma once
#include "proxy/proxy-t.h"

/* --- proxy.c --- */
/* Take ownership of cfg, open listeners, install signal handling.
 * Returns 0, or -errno with a message logged and cfg NOT taken. */
int proxy_start(struct proxy *p, struct loop *loop, struct config *cfg);
/* Validate and swap in a new configuration read from path (SIGHUP).
 * Returns 0, or -errno with the old configuration still in force. */
int proxy_reload(struct proxy *p, const char *path);
/* Stop accepting and finish in-flight requests (SIGTERM). */
void proxy_drain(struct proxy *p);
void proxy_release(struct proxy *p);
/* Generate the next request id into out[33]. */
void proxy_request_id(struct proxy *p, char *out);

/* --- service.c --- */
struct runtime *runtime_build(struct proxy *p, const struct config *cfg);
struct runtime *runtime_ref(struct runtime *rt);
struct runtime *runtime_unref(struct runtime *rt);
struct proxy_service *service_ref(struct proxy_service *s);
struct proxy_service *service_unref(struct proxy_service *s);
/* Replace the service's targets atomically: the next request uses the new
 * set; in-flight requests finish on the targets they have.  Pools of targets
 * present in both sets are kept.  Returns 0 or -ENOMEM (old set kept). */
int service_set_targets(struct proxy_service *s, const struct config_target *targets, size_t n);
/* Smooth weighted round-robin, skipping the targets in exclude[0..nexclude).
 * Returns a new reference, or NULL when no target is left. */
struct target *service_pick(struct proxy_service *s, struct target *const *exclude, size_t nexclude);
/* Whether the service has a target not in exclude[0..nexclude). */
bool service_has_target(const struct proxy_service *s, struct target *const *exclude, size_t nexclude);
struct target *target_ref(struct target *t);
struct target *target_unref(struct target *t);
/* Find a service by name in the current runtime (no reference taken). */
struct proxy_service *proxy_service_find(struct proxy *p, const char *name);

/* --- client.c --- */
void client_accept(struct proxy *p, int fd, const struct sockaddr *sa);
/* Drive a client's state machine until nothing more can happen now. */
void client_pump(struct client *c);
/* Close an idle keep-alive client at once; busy ones close after their response. */
void client_drain(struct client *c);
void client_free(struct client *c);
/* Close now (abort its exchange); freed at the end of the iteration. */
void client_free_later(struct client *c);

/* --- upstream.c --- */
/* Get a connection to t: an idle pooled one (*reused = true) or a new
 * non-blocking connect.  Returns NULL with -errno in *err when the connect
 * fails at once (e.g. no route). */
struct upstream *upstream_get(struct proxy *p, struct target *t, bool *reused, int *err);
/* Give a finished connection back: pooled if reusable, else closed. */
void upstream_release(struct upstream *u, bool reusable);
void upstream_close(struct upstream *u);
void upstream_free(struct upstream *u);
/* Close every idle connection of t. */
void target_close_idle(struct target *t);

/* proxy.h - the reverse proxy (types in proxy-t.h).
 *
 * proxy_*      lifetime, listeners, reload, drain (proxy.c)
 * route_*, target_*   the routing table: services, version groups, targets (routes.c)
 * client_*     client connections and the request/response pump (client.c;
 *              one request and its response: exchange.c; its failures and
 *              retries: retry.c)
 * upstream_*   connections to targets and their pools (upstream.c)
 * proxy_maintenance_*  services answered 503 with a page (maintenance.c)
 */
#pragma once
#include <stdbool.h>
#include "proxy/proxy-t.h"

/* --- proxy.c --- */
/* Set up the proxy on loop and apply cfg (proxy_apply).  cfg is borrowed:
 * it must outlive the proxy or the next proxy_apply().  A listener takes
 * its socket from inherited (may be NULL) when one is bound to its address,
 * else binds one.  hold: start held (proxy_hold).  Returns 0, or -errno
 * with a message logged and nothing left to release. */
int proxy_start(struct proxy *p, struct loop *loop, const struct config *cfg, struct inherited *inherited,
		bool hold);
/* Switch to cfg (borrowed, as above): open its new listeners, build its
 * routing snapshot and its access log, then swap them in; managed services
 * keep the version groups the deployer set.  Returns 0, or -errno (logged)
 * with the previous configuration still in force. */
int proxy_apply(struct proxy *p, const struct config *cfg);
/* hold true: accept nothing for now (new connections wait in the kernel's
 * accept queue, up to its backlog); false: accept them, and from then on. */
void proxy_hold(struct proxy *p, bool hold);
/* Stop accepting, close idle keep-alive connections after a short grace,
 * and give in-flight requests timeouts.drain to finish (SIGTERM).  The
 * listeners close without resetting a connection: what waits in the accept
 * queue is accepted first, and unless handed_over (another process holds
 * the same sockets: the new daemon of an upgrade, systemd) they drop new
 * SYNs for a moment before, so that no handshake is in flight. */
void proxy_drain(struct proxy *p, bool handed_over);
/* The loop's end-of-iteration work: bounded pumps left over, deferred
 * frees, resuming accepts.  Returns true once a drain is complete (no
 * client connection left). */
bool proxy_iteration_end(struct proxy *p);
void proxy_release(struct proxy *p);
/* Generate the next request id into out[33]. */
void proxy_request_id(struct proxy *p, char *out);

/* --- routes.c --- */
/* A version group as the deployer (or a hand PUT) sets it: targets are
 * copied, nothing is kept. */
struct proxy_group {
	const char *version;               /* NULL: an unmanaged service's group */
	uint32_t weight;                   /* share against the other groups; 0: warm, no new requests */
	bool canary;                       /* the new version of a deploy that shares traffic (cohorts steer to it) */
	const struct config_target *targets;
	size_t ntargets;
};
/* Build the routing table of cfg and publish it (a reload: managed
 * services keep the groups the deployer set; the others get one group of
 * their configured targets).  Returns 0 or -ENOMEM (the current table
 * stays). */
int proxy_routes_apply(struct proxy *p, const struct config *cfg);
/* Replace SERVICE's version groups with groups[0..n) in a new table, then
 * publish it: the next request sees them, requests in flight finish where
 * they are.  Returns 0, -ENOENT (no such service) or -ENOMEM (nothing
 * changed). */
int proxy_set_groups(struct proxy *p, const char *service, const struct proxy_group *groups, size_t n);
/* The current table's service NAME (no reference taken: valid until the
 * next change), or NULL. */
struct route_service *proxy_route_service(struct proxy *p, const char *name);
struct route_table *route_table_ref(struct route_table *rt);
struct route_table *route_table_unref(struct route_table *rt);
struct route_service *route_service_ref(struct route_service *s);
struct route_service *route_service_unref(struct route_service *s);
/* The version group for a request: rq NULL (no request to look at), or
 * a service with one version, smooth weighted round-robin over the groups
 * with a weight and an instance; else as cohort_choose() (cohort.c) says,
 * which also fills rq's outputs (set them to COHORT_NONE / false first).
 * Returns the group's index, or -1 when no group takes traffic. */
int route_choose(struct route_service *s, struct route_request *rq);
/* For a retry that follows a new table: the group of VERSION in s if it
 * still takes traffic (or, forced by an override, still has instances),
 * else the group of the request's cohort under s's canary split (cohort
 * -1: none), else route_choose(s, NULL).  version NULL: the latter two. */
int route_follow(struct route_service *s, const char *version, int cohort, bool forced);
/* A target of group (smooth weighted round-robin), skipping the targets in
 * exclude[0..nexclude); when none is left there, one of another group that
 * takes traffic.  Returns a new reference, or NULL. */
struct target *route_pick(struct route_service *s, int group, struct target *const *exclude, size_t nexclude);
/* Whether route_pick() would find a target. */
bool route_has_target(const struct route_service *s, struct target *const *exclude, size_t nexclude);
/* The index of the group of s that holds t, or -1. */
int route_target_group(const struct route_service *s, const struct target *t);
/* The first stable group of s (it takes traffic and is not the canary)
 * with a target not in exclude[0..nexclude): where the shield retries a
 * request that the canary failed.  Returns its index, or -1. */
int route_stable_group(const struct route_service *s, struct target *const *exclude, size_t nexclude);
struct target *target_ref(struct target *t);
struct target *target_unref(struct target *t);

/* --- client.c --- */
void client_accept(struct proxy *p, int fd, const struct sockaddr *sa);
/* Drive a client's state machine until nothing more can happen now. */
void client_pump(struct client *c);
/* Draining: a busy client closes after its response; an idle keep-alive
 * one (or one whose response head went out before the drain without
 * "Connection: close") after a short grace (its next request is answered,
 * then it closes). */
void client_drain(struct client *c);
void client_free(struct client *c);
/* Close now (abort its exchange); freed at the end of the iteration. */
void client_free_later(struct client *c);

/* --- upstream.c --- */
/* Get a connection to t: an idle pooled one (*reused = true) or, when the
 * pool is empty or fresh is true, a new non-blocking connect (a retry must
 * not meet another pooled connection that the target is closing).  Returns
 * NULL with -errno in *err when the connect fails at once (e.g. no route). */
struct upstream *upstream_get(struct proxy *p, struct target *t, bool fresh, bool *reused, int *err);
/* Give a finished connection back: pooled if reusable, else closed. */
void upstream_release(struct upstream *u, bool reusable);
void upstream_close(struct upstream *u);
void upstream_free(struct upstream *u);
/* Close every idle connection of t. */
void target_close_idle(struct target *t);

/* --- maintenance.c --- */
#define PROXY_PAGE_MAX (64 * 1024)         /* bytes of an operator's maintenance page */
#define PROXY_RETRY_AFTER_MAX 86400        /* seconds */
/* What proxy_maintenance_set() copies. */
struct proxy_maintenance_spec {
	const char *service;
	int64_t since_ms;                  /* Unix ms */
	const char *by;
	uint32_t retry_after_s;            /* 1..PROXY_RETRY_AFTER_MAX */
	const char *page;                  /* the HTML to answer, page_len bytes; NULL: the built-in page */
	size_t page_len;                   /* at most PROXY_PAGE_MAX */
};
/* Put spec->service in maintenance, or change its page and Retry-After if
 * it is already: the next request to it is answered 503 (responses being
 * written keep the page they started with).  The service need not be in
 * the routing table (it applies when a reload brings it).  Everything is
 * copied.  Returns 0, -EINVAL (a bad field) or -ENOMEM (nothing changed). */
int proxy_maintenance_set(struct proxy *p, const struct proxy_maintenance_spec *spec);
/* SERVICE is served again from the next request.  Returns whether it was
 * in maintenance. */
bool proxy_maintenance_clear(struct proxy *p, const char *service);
/* SERVICE's maintenance (borrowed: valid until the next set or clear), or
 * NULL when it is not in maintenance. */
const struct proxy_maintenance *proxy_maintenance_find(const struct proxy *p, const char *service);
/* Free the maintenance table (proxy_release does). */
void proxy_maintenance_release(struct proxy *p);
/* The proxy's /metrics text: metrics_render() of p->metrics, then
 * cutover_maintenance{service} (1 or 0) for every service routed.  Returns
 * a malloc'd NUL-terminated string and its length in *len, or NULL when out
 * of memory. */
char *proxy_metrics_render(struct proxy *p, size_t *len);

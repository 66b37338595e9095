/* retry.c - what happens when an attempt at an upstream fails: picking a
 * target and connecting (again), the retry rules, the shield, and the
 * counting of an exchange's outcome at a target (its route class's too).
 *
 * exchange.c moves the bytes; whenever an attempt fails (a connect refused
 * or timed out, a connection closed before the response head, an invalid
 * head, a timeout, or a canary's 5xx the shield takes) it calls
 * exchange_upstream_failed(), which either starts another attempt with
 * exchange_connect() -- always on a new connection -- or has the proxy
 * answer (exchange_local_response).  The rules, in order:
 *
 *   - the shield: a GET or HEAD without a body that a canary failed goes
 *     once to a stable group (docs/internals/proxy.md, "The shield");
 *   - a refused or timed out connect: another target that has not failed;
 *   - a pooled connection closed under an idempotent request: again;
 *   both of the latter up to limits.max_retries attempts made again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/log.h"
#include "base/util.h"
#include "http/parser.h"
#include "loop/loop.h"
#include "metrics/metrics.h"
#include "proxy/proxy.h"
#include "proxy/proxy-internal.h"
#include "proxy/router.h"

static bool method_idempotent(enum http_method m)
{
	return m == HTTP_METHOD_GET || m == HTTP_METHOD_HEAD || m == HTTP_METHOD_OPTIONS ||
	       m == HTTP_METHOD_PUT || m == HTTP_METHOD_DELETE || m == HTTP_METHOD_TRACE;
}

/* ------------------------------------------------------------------ */
/* counting                                                            */

/* The counts of ex's route class at target t, or NULL: the service has no
 * class the request matches (or no room for another).  The class is looked
 * up once per exchange, and only when the configuration has classes: a
 * service without any costs one test. */
static struct metrics_counts *exchange_class_counts(struct exchange *ex, struct target *t)
{
	const struct router *r = &ex->routes->router->router;

	if (!router_has_classes(r))
		return NULL;
	if (!ex->class_known) {
		ex->class_known = true;
		for (size_t i = 0; i < ex->routes->nservices; i++) {
			long k;
			if (ex->routes->services[i] != ex->service)
				continue;
			k = router_class_match(r, i, ex->method_text, ex->path, strlen(ex->path));
			ex->route_class = k >= 0 ? r->classes[i].v[k].name : NULL;
			break;
		}
	}
	return ex->route_class ? metrics_upstream_class_get(t->metrics, ex->route_class) : NULL;
}

/* Count the outcome of ex at target t (STATUS, latency up to now) in t's
 * counts and its route class's. */
void exchange_observe(struct exchange *ex, struct target *t, int status, uint64_t now_ns)
{
	uint64_t us = (now_ns - ex->start_ns) / 1000;

	metrics_upstream_observe(t->metrics, ex->method, status, us);
	metrics_counts_observe(exchange_class_counts(ex, t), ex->method, status, us);
}

/* ------------------------------------------------------------------ */
/* upstream failures and retries                                       */

/* Whether SERVICE's deploys retry on stable a safe request that the
 * canary failed (deploy.retry_on_stable).  Looked up by name in the
 * current configuration: the request's table may be older. */
static bool service_retry_on_stable(const struct proxy *p, const char *service)
{
	for (size_t i = 0; i < p->cfg->nservices; i++)
		if (!strcmp(p->cfg->services[i].name, service))
			return p->cfg->services[i].deploy.retry_on_stable;
	return false;
}

/* The shield: a GET or HEAD without a body that a canary failed (WHY,
 * before any byte of its response went to the client) is retried once on
 * a stable group.  Returns that group's index, or -1 when the shield does
 * not apply: another failure, an unsafe request, a target that is not a
 * canary's, retry_on_stable off, a request retried on stable already, or
 * no stable target left. */
int exchange_shield_group(const struct exchange *ex, enum upstream_failure why)
{
	const struct route_service *s = ex->service;
	int g;

	if (ex->shielded || ex->resp_head_done || ex->req_body_sent || why == FAIL_HEADER_TIMEOUT)
		return -1;
	if ((ex->method != HTTP_METHOD_GET && ex->method != HTTP_METHOD_HEAD) || ex->req.framing != HTTP_FRAMING_NONE)
		return -1;
	g = route_target_group(s, ex->target);
	if (g < 0 || !s->groups[g].canary || !service_retry_on_stable(ex->client->proxy, s->name))
		return -1;
	return route_stable_group(s, ex->tried, ex->tries < ARRAY_SIZE(ex->tried) ? ex->tries : ARRAY_SIZE(ex->tried));
}

/* Retry ex on the stable group STABLE after its canary target failed it
 * (ex->tries counts the failed attempt already).  The failure counts
 * against the canary: a failed connect as a connect failure (counted by
 * the caller), anything else as its status (502 for a closed connection or
 * an invalid response) with its latency so far. */
static void exchange_shield(struct exchange *ex, enum upstream_failure why, int stable)
{
	struct proxy *p = ex->client->proxy;
	struct target *t = ex->target;
	struct metrics_counts *c;
	unsigned last = ex->tries - 1u;

	if (why != FAIL_CONNECT && why != FAIL_CONNECT_TIMEOUT)
		exchange_observe(ex, t, why == FAIL_SERVER_ERROR ? ex->resp.status : 502, p->loop->now_ns);
	t->metrics->counts.shielded++;
	t->metrics->counts.retries++;
	if ((c = exchange_class_counts(ex, t))) {
		c->shielded++;
		c->retries++;
	}
	/* the canary target is out of the picks that may follow */
	if (last < ARRAY_SIZE(ex->tried) && !ex->tried[last])
		ex->tried[last] = target_ref(t);
	/* logged while ex->target is the canary's: its version and address */
	exchange_log(ex, LOG_LEVEL_WARN, why == FAIL_SERVER_ERROR ? ex->resp.status : 0,
		     "the canary failed the request (%s): retrying on stable",
		     why == FAIL_SERVER_ERROR ? "5xx"
		     : why == FAIL_CONNECT || why == FAIL_CONNECT_TIMEOUT ? "connect failed"
									  : "no response");
	ex->shielded = true;
	ex->retries++;
	ex->group = (int8_t)stable;
	target_unref(ex->target);
	ex->target = NULL;
	exchange_connect(ex);
}

void exchange_upstream_failed(struct exchange *ex, enum upstream_failure why, int err)
{
	struct client *c = ex->client;
	struct proxy *p = c->proxy;
	struct target *t = ex->target;
	struct metrics_counts *cc;
	bool retry = false;
	int stable;

	if (ex->upstream) {
		upstream_close(ex->upstream);
		ex->upstream = NULL;
	}
	switch (why) {
	case FAIL_CONNECT:
	case FAIL_CONNECT_TIMEOUT:
		t->metrics->counts.connect_failures++;
		if ((cc = exchange_class_counts(ex, t)))
			cc->connect_failures++;
		if (ex->tries < ARRAY_SIZE(ex->tried))
			ex->tried[ex->tries] = target_ref(t);
		/* the request never left: safe to send to another target, if
		 * there is one that has not failed yet */
		retry = ex->req_body_sent == 0 &&
			route_has_target(ex->service, ex->tried,
					 ex->tries + 1u < ARRAY_SIZE(ex->tried) ? ex->tries + 1u : ARRAY_SIZE(ex->tried));
		break;
	case FAIL_CLOSED:
		/* a pooled connection the target closed as we reused it: resend
		 * only what is safe to repeat (RFC 9110 9.2.2) */
		retry = ex->reused && method_idempotent(ex->method) && ex->req_body_sent == 0;
		break;
	default:
		break;
	}
	retry = retry && ex->tries + 1u <= p->cfg->limits.max_retries && !ex->resp_head_done;
	/* a pooled connection closing under the request is the keep-alive
	 * race, not the canary's failure: the plain retry (on a new
	 * connection) goes first, and the shield if that one fails too */
	stable = retry && why == FAIL_CLOSED && ex->reused ? -1 : exchange_shield_group(ex, why);
	ex->tries++; /* attempts made; retries made = tries - 1 */
	if (stable >= 0) {
		exchange_shield(ex, why, stable);
		return;
	}
	if (retry) {
		t->metrics->counts.retries++;
		if ((cc = exchange_class_counts(ex, t)))
			cc->retries++;
		ex->retries++;
		/* a refused connect is news; a pooled connection closing under a
		 * request is the keep-alive race, retried as designed */
		if (why == FAIL_CLOSED)
			exchange_log(ex, LOG_LEVEL_INFO, 0, "upstream closed a pooled connection%s%s; retrying",
				     err ? ": " : "", err ? strerror(-err) : "");
		else
			exchange_log(ex, LOG_LEVEL_WARN, 0, "upstream connect failed: %s; retrying on another target",
				     strerror(err ? -err : ECONNREFUSED));
		target_unref(ex->target);
		ex->target = NULL;
		exchange_connect(ex);
		return;
	}
	switch (why) {
	case FAIL_CONNECT:
		exchange_local_response(ex, 502, err == -ECONNREFUSED ? "upstream connection refused"
								      : "upstream connection failed");
		break;
	case FAIL_CONNECT_TIMEOUT:
		exchange_local_response(ex, 504, "upstream connect timeout");
		break;
	case FAIL_CLOSED:
		exchange_local_response(ex, 502, "upstream closed the connection");
		break;
	case FAIL_CLOSED_MID_HEAD:
		exchange_local_response(ex, 502, "upstream closed the connection mid-head");
		break;
	case FAIL_BAD_RESPONSE:
	case FAIL_SERVER_ERROR: /* not reached: the head is forwarded unless the shield takes it */
		exchange_local_response(ex, 502, "invalid response from upstream");
		break;
	case FAIL_HEADER_TIMEOUT:
		exchange_local_response(ex, 504, "upstream response timeout");
		break;
	}
}

/* A retry after the routing table changed (a deploy switched, a rollback
 * went back): go on with the current table's version of the service, in
 * the same version group if it is still there, so that a request whose
 * target went away finds the version that replaced it.  The service gone
 * (a reload removed it): stay on the old table. */
static void exchange_follow_routes(struct exchange *ex)
{
	struct proxy *p = ex->client->proxy;
	struct route_service *s = proxy_route_service(p, ex->service->name);
	const char *version = ex->group >= 0 ? ex->service->groups[ex->group].version : NULL;
	int group;

	if (!s)
		return;
	/* before the unref: version lives in the old table */
	group = route_follow(s, version, ex->cohort, ex->version_forced);
	route_table_unref(ex->routes);
	ex->routes = route_table_ref(p->routes);
	ex->service = s;
	ex->group = (int8_t)group;
	ex->class_known = false; /* route_class pointed into the old table */
	ex->route_class = NULL;
}

/* Pick a target and get a connection to it (retrying other targets when
 * connecting fails at once). */
void exchange_connect(struct exchange *ex)
{
	struct proxy *p = ex->client->proxy;
	struct target *t;
	struct upstream *u;
	bool reused = false;
	int err = 0;

	if (ex->tries && ex->routes != p->routes)
		exchange_follow_routes(ex);
	t = route_pick(ex->service, ex->group, ex->tried, ex->tries < ARRAY_SIZE(ex->tried) ? ex->tries : ARRAY_SIZE(ex->tried));

	if (!t && !ex->tries && ex->service->managed && !ex->service->ngroups) {
		/* a version is starting (after a restart, or its first deploy):
		 * the client may try again shortly */
		ex->retry_after = true;
		exchange_local_response(ex, 503, "service has no healthy instance yet");
		return;
	}
	if (!t) {
		exchange_local_response(ex, ex->tries ? 502 : 503,
					ex->tries ? "no upstream target could be reached" : "service has no targets");
		return;
	}
	ex->target = t;
	/* a retry connects anew: after a pooled connection closed under a
	 * request, the other pooled ones of the target (closed at the same
	 * time, their FIN not seen yet) would fail it again */
	u = upstream_get(p, t, ex->tries > 0, &reused, &err);
	if (!u) {
		/* failed at once (no route...): same path as a refused connect */
		exchange_upstream_failed(ex, FAIL_CONNECT, err);
		return;
	}
	ex->upstream = u;
	ex->reused = reused;
	ex->uhead_sent = 0;
	ex->header_deadline_set = false;
	u->ex = ex;
	upstream_set_deadline(u, u->state == UPSTREAM_CONNECTING ? p->cfg->timeouts.upstream_connect
								 : p->cfg->timeouts.upstream_body);
}

void exchange_upstream_timeout(struct exchange *ex)
{
	struct upstream *u = ex->upstream;
	struct client *c = ex->client;

	if (!u)
		return;
	if (u->state == UPSTREAM_CONNECTING)
		exchange_upstream_failed(ex, FAIL_CONNECT_TIMEOUT, -ETIMEDOUT);
	else if (!ex->resp_head_done && ex->req_done)
		exchange_upstream_failed(ex, FAIL_HEADER_TIMEOUT, -ETIMEDOUT);
	else
		exchange_local_response(ex, 504, "upstream idle timeout");
	client_pump(c);
}

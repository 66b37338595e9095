/* api.c - admin API handlers (contract in api.h).
 *
 * Runs on the loop thread: every handler only reads or swaps in-memory
 * state (no file or SQLite I/O), so an API call costs what a request does.
 */
#include <errno.h>
#include <stdbool.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "admin/admin-t.h"
#include "admin/admin-internal.h"
#include "admin/api.h"
#include "deploy/deploy.h"
#include "release/release.h"
#include "base/util.h"
#include "metrics/metrics.h"
#include "proxy/proxy.h"


void api_reply_json(struct admin_reply *out, int status, json_t *obj)
{
	out->status = status;
	out->body = json_dumps(obj, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
	json_decref(obj);
	if (!out->body) {
		out->status = 500;
		out->body = strdup("{\"error\": \"out of memory\"}");
	}
}

void api_reply_error(struct admin_reply *out, int status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	api_reply_json(out, status, json_pack("{s:s}", "error", msg));
}

static json_t *target_json(const struct target_slot *slot)
{
	const struct metrics_upstream *m = slot->target->metrics;
	uint64_t total = 0, errors = 0;

	metrics_counts_totals(&m->counts, &total, &errors);
	return json_pack("{s:s, s:i, s:I, s:I, s:I, s:I, s:I, s:I}", "address", slot->target->addr_text, "weight",
			 slot->weight, "requests", (json_int_t)total, "errors_5xx", (json_int_t)errors,
			 "connect_failures", (json_int_t)m->counts.connect_failures,
			 "retries", (json_int_t)m->counts.retries,
			 "open_connections", (json_int_t)m->open_connections, "idle_connections",
			 (json_int_t)m->idle_connections);
}

/* A service: its routes, its version groups (managed services: a group per
 * version, with its weight and share) and all its targets. */
static json_t *service_json(const struct route_table *rt, size_t idx)
{
	const struct route_service *s = rt->services[idx];
	const struct router *router = &rt->router->router;
	json_t *targets = json_array(), *routes = json_array(), *versions = json_array();

	for (uint32_t g = 0; g < s->ngroups; g++) {
		const struct route_group *grp = &s->groups[g];
		json_t *gt = json_array();
		for (uint32_t i = 0; i < grp->n; i++) {
			json_t *t = target_json(&grp->slots[i]);
			json_array_append(targets, t);
			json_array_append_new(gt, t);
		}
		if (s->managed)
			json_array_append_new(versions,
					      json_pack("{s:s?, s:I, s:f, s:o}", "version", grp->version, "weight",
							(json_int_t)grp->weight, "share_percent",
							s->total_weight ? 100.0 * grp->weight / s->total_weight : 0.0,
							"targets", gt));
		else
			json_decref(gt);
	}
	for (size_t i = 0; i < router->nroutes; i++) {
		const struct router_route *r = &router->routes[i];
		char host[300];
		if (r->service != idx)
			continue;
		if (r->host_kind == ROUTER_HOST_WILDCARD)
			snprintf(host, sizeof(host), "*%s", r->host);
		else
			snprintf(host, sizeof(host), "%s", r->host ? r->host : "*");
		json_array_append_new(routes, json_pack("{s:s, s:s}", "host", host, "path", r->path));
	}
	return json_pack("{s:s, s:b, s:o, s:o, s:o}", "name", s->name, "managed", s->managed, "routes", routes,
			 "versions", versions, "targets", targets);
}

/* "maintenance" in each entry of services (or managed) of /v1/status:
 * null, or as api_maintenance_json() says. */
static json_t *with_maintenance(const struct proxy *p, json_t *entries)
{
	json_t *e;
	size_t i;

	json_array_foreach(entries, i, e)
		json_object_set_new(e, "maintenance",
				    api_maintenance_json(p, json_string_value(json_object_get(e, "name"))));
	return entries;
}

static void api_status(struct admin *a, const struct api_call *call, struct admin_reply *out)
{
	struct proxy *p = a->proxy;
	json_t *services = json_array();
	time_t now = time(NULL);

	for (size_t i = 0; i < p->routes->nservices; i++)
		json_array_append_new(services, service_json(p->routes, i));
	with_maintenance(p, services);
	api_reply_json(out, 200,
		   json_pack("{s:s, s:i, s:I, s:s?, s:s?, s:s?, s:b, s:I, s:I, s:o, s:o, s:o}", "version", CUTOVER_VERSION,
			     "pid", (int)getpid(), "uptime_s", (json_int_t)(now - (time_t)p->metrics.start_time_unix),
			     "config", a->cfg->path, "env", a->cfg->env, "overlay", a->cfg->overlay, "draining",
			     p->draining, "client_connections",
			     (json_int_t)p->metrics.client_connections, "requests_in_flight",
			     (json_int_t)p->metrics.in_flight, "services", services, "managed",
			     with_maintenance(p, a->deployer ? deployer_status_json(a->deployer) : json_array()), "releases",
			     a->releases ? release_runner_status(a->releases) : json_array()));
}

static void api_set_targets(struct admin *a, const struct api_call *call, struct admin_reply *out)
{
	struct proxy *p = a->proxy;
	const char *name = call->param, *body = call->body;
	size_t body_len = call->body_len;
	struct route_service *s = proxy_route_service(p, name);
	struct proxy_group group = { .weight = 1 };
	struct config_target *targets = NULL;
	json_error_t jerr;
	json_t *root = NULL, *list;
	size_t n = 0, i;

	if (!s) {
		api_reply_error(out, 404, "unknown service '%s'", name);
		return;
	}
	if (s->managed) {
		/* its targets are the instances of its versions: a hand change
		 * would be undone by the next deploy, or undo a deploy in flight */
		api_reply_error(out, 409,
			    "service '%s' is managed by the deployer (it has run: in the configuration): its targets are "
			    "the instances of its versions; use cutover deploy or cutover rollback",
			    name);
		return;
	}
	root = json_loadb(body, body_len, 0, &jerr);
	if (!root) {
		api_reply_error(out, 400, "body: invalid JSON at line %d column %d: %s", jerr.line, jerr.column, jerr.text);
		return;
	}
	list = json_object_get(root, "targets");
	if (!json_is_array(list) || json_array_size(list) == 0) {
		api_reply_error(out, 400, "targets: expected a non-empty array of {\"address\", \"weight\"}");
		goto out;
	}
	n = json_array_size(list);
	targets = calloc(n, sizeof(*targets));
	if (!targets) {
		api_reply_error(out, 500, "out of memory");
		goto out;
	}
	/* validate everything first: nothing is applied unless all is valid */
	for (i = 0; i < n; i++) {
		json_t *t = json_array_get(list, i), *addr = json_object_get(t, "address"), *w = json_object_get(t, "weight");
		json_int_t weight = w ? (json_is_integer(w) ? json_integer_value(w) : -1) : 1;
		if (!json_is_string(addr) ||
		    parse_sockaddr(json_string_value(addr), &targets[i].addr.sa, &targets[i].addr.salen) < 0) {
			api_reply_error(out, 400, "targets[%zu].address: expected \"IP:PORT\" or \"[IPv6]:PORT\"", i);
			goto out;
		}
		if (weight < 1 || weight > 1000) {
			api_reply_error(out, 400, "targets[%zu].weight: must be an integer 1..1000", i);
			goto out;
		}
		for (size_t j = 0; j < i; j++) {
			if (!strcmp(targets[j].addr.text, json_string_value(addr))) {
				api_reply_error(out, 400, "targets[%zu].address: %s is listed twice", i, json_string_value(addr));
				goto out;
			}
		}
		targets[i].addr.text = (char *)json_string_value(addr); /* borrowed from root until the swap */
		targets[i].weight = (uint32_t)weight;
	}
	group.targets = targets;
	group.ntargets = n;
	if (proxy_set_groups(p, name, &group, 1) < 0) {
		api_reply_error(out, 500, "out of memory: targets unchanged");
		goto out;
	}
	for (i = 0; i < p->routes->nservices; i++)
		if (!strcmp(p->routes->services[i]->name, name))
			api_reply_json(out, 200, service_json(p->routes, i));
out:
	free(targets);
	json_decref(root);
}

/* Whether the daemon takes a deploy-like request now; else the answer is
 * set (503 while it shuts down, 409 for `cutover proxy`). */
bool api_deploys_now(struct admin *a, const char *what, struct admin_reply *out)
{
	if (a->refusing) {
		api_reply_error(out, 503, "%s: no %s starts now", a->refusing, what);
		return false;
	}
	if (!a->deployer) {
		api_reply_error(out, 409, "this process does not deploy (it is `cutover proxy`, not `cutover daemon`)");
		return false;
	}
	return true;
}

/* The body as a JSON object, or NULL with a 400 answer set. */
json_t *api_body_object(const struct api_call *call, struct admin_reply *out)
{
	json_error_t jerr;
	json_t *root = call->body_len ? json_loadb(call->body, call->body_len, 0, &jerr) : json_object();

	if (!root)
		api_reply_error(out, 400, "body: invalid JSON at line %d column %d: %s", jerr.line, jerr.column, jerr.text);
	else if (!json_is_object(root)) {
		api_reply_error(out, 400, "body: expected a JSON object");
		json_decref(root);
		root = NULL;
	}
	return root;
}

/* POST /v1/deploy {"service","version","digest"?} and POST /v1/rollback
 * {"service"}. */
static void api_deploy_or_rollback(struct admin *a, uid_t who, bool rollback, const struct api_call *call,
				   struct admin_reply *out)
{
	json_t *root, *digest;
	const char *service, *version = NULL;
	char err[1024];
	int64_t id;

	if (!api_deploys_now(a, rollback ? "rollback" : "deploy", out) || !(root = api_body_object(call, out)))
		return;
	service = json_string_value(json_object_get(root, "service"));
	if (!rollback)
		version = json_string_value(json_object_get(root, "version"));
	digest = json_object_get(root, "digest");
	if (!service || (!rollback && !version) || (digest && !json_is_string(digest)) || (rollback && digest)) {
		api_reply_error(out, 400, rollback ? "body: expected {\"service\": NAME}"
					       : "body: expected {\"service\": NAME, \"version\": VERSION, "
						 "\"digest\": SHA256 (optional)}");
		json_decref(root);
		return;
	}
	if (rollback) {
		id = deployer_rollback(a->deployer, service, who, err, sizeof(err));
	} else {
		struct deploy_request req = { .service = service, .version = version,
					      .digest = json_string_value(digest), .who = who };
		id = deployer_deploy(a->deployer, &req, err, sizeof(err));
	}
	if (id < 0)
		/* 404 unknown service, 400 a bad version: the request is wrong;
		 * 409 (busy, already there, nothing to go back to): the state is */
		api_reply_error(out, id == -ENOENT ? 404 : id == -EINVAL ? 400 : 409, "%s", err);
	else
		api_reply_json(out, 202, deployer_deployment_json(a->deployer, id));
	json_decref(root);
}

static void api_deploy(struct admin *a, const struct api_call *call, struct admin_reply *out)
{
	api_deploy_or_rollback(a, call->peer_uid, false, call, out);
}

static void api_rollback(struct admin *a, const struct api_call *call, struct admin_reply *out)
{
	api_deploy_or_rollback(a, call->peer_uid, true, call, out);
}

/* POST /v1/restart {"service"}: new instances of the live version. */
static void api_restart(struct admin *a, const struct api_call *call, struct admin_reply *out)
{
	json_t *root = NULL;
	const char *service;
	char err[512];
	int64_t id;

	if (a->refusing) {
		api_reply_error(out, 503, "%s: no restart starts now", a->refusing);
		return;
	}
	if (!a->deployer) {
		api_reply_error(out, 409, "this process does not deploy (it is `cutover proxy`, not `cutover daemon`)");
		return;
	}
	root = json_loadb(call->body, call->body_len, 0, NULL);
	service = json_string_value(json_object_get(root, "service"));
	if (!service) {
		api_reply_error(out, 400, "body: expected {\"service\": NAME}");
	} else if ((id = deployer_restart(a->deployer, service, call->peer_uid, err, sizeof(err))) < 0) {
		api_reply_error(out, id == -ENOENT ? 404 : 409, "%s", err);
	} else {
		api_reply_json(out, 202, deployer_deployment_json(a->deployer, id));
	}
	json_decref(root);
}

/* POST /v1/services/NAME/pause, resume, promote, abort: the deployment
 * in flight of NAME (202 with it as JSON). */
static void api_control(struct admin *a, const struct api_call *call, enum deploy_control what,
			struct admin_reply *out)
{
	char err[512];
	int64_t id;

	if (a->refusing && what != DEPLOY_ABORT) {
		api_reply_error(out, 503, "%s: no %s now", a->refusing, deploy_control_name(what));
		return;
	}
	if (!a->deployer) {
		api_reply_error(out, 409, "this process does not deploy (it is `cutover proxy`, not `cutover daemon`)");
		return;
	}
	id = deployer_control(a->deployer, call->param, what, call->peer_uid, err, sizeof(err));
	if (id < 0)
		api_reply_error(out, id == -ENOENT ? 404 : 409, "%s", err);
	else
		api_reply_json(out, 202, deployer_deployment_json(a->deployer, id));
}

static void api_pause(struct admin *a, const struct api_call *call, struct admin_reply *out)
{
	api_control(a, call, DEPLOY_PAUSE, out);
}

static void api_resume(struct admin *a, const struct api_call *call, struct admin_reply *out)
{
	api_control(a, call, DEPLOY_RESUME, out);
}

static void api_promote(struct admin *a, const struct api_call *call, struct admin_reply *out)
{
	api_control(a, call, DEPLOY_PROMOTE, out);
}

static void api_abort(struct admin *a, const struct api_call *call, struct admin_reply *out)
{
	api_control(a, call, DEPLOY_ABORT, out);
}

static void api_deployment(struct admin *a, const struct api_call *call, struct admin_reply *out)
{
	char *end;
	long long id = strtoll(call->param, &end, 10);
	json_t *j = NULL;

	if (*end || id <= 0) {
		api_reply_error(out, 404, "no such deployment: '%s' (ids are positive integers)", call->param);
		return;
	}
	j = a->deployer ? deployer_deployment_json(a->deployer, id) : NULL;
	if (j)
		api_reply_json(out, 200, j);
	else
		api_reply_error(out, 404, "no such deployment: %lld (the daemon keeps the last 64)", id);
}

/* POST /v1/promote {"service", "from", "proof", "local_key"?}: deploy the
 * digest the proof proves in "from" (docs/internals/promotion.md). */
static void api_promote_env(struct admin *a, const struct api_call *call, struct admin_reply *out)
{
	json_t *root, *key;
	struct promote_request req = { .who = call->peer_uid };
	char err[1024];
	int64_t id;

	if (!api_deploys_now(a, "promotion", out) || !(root = api_body_object(call, out)))
		return;
	req.service = json_string_value(json_object_get(root, "service"));
	req.from = json_string_value(json_object_get(root, "from"));
	req.proof = json_object_get(root, "proof");
	key = json_object_get(root, "local_key");
	req.local_key = json_string_value(key);
	if (!req.service || !req.from || !json_is_object(req.proof) || (key && !json_is_string(key))) {
		api_reply_error(out, 400, "body: expected {\"service\": NAME, \"from\": ENV, \"proof\": {...} (as "
				      "cutover export-proof writes it), \"local_key\": KEY (optional)}");
		json_decref(root);
		return;
	}
	id = deployer_promote(a->deployer, &req, err, sizeof(err));
	if (id < 0)
		api_reply_error(out, id == -ENOENT ? 404 : id == -EINVAL ? 400 : id == -EPERM ? 403 : 409, "%s", err);
	else
		api_reply_json(out, 202, deployer_deployment_json(a->deployer, id));
	json_decref(root);
}

/* GET /v1/services/NAME/proof: a signed proof of what runs of NAME here. */
static void api_proof(struct admin *a, const struct api_call *call, struct admin_reply *out)
{
	json_t *proof = NULL;
	char err[512];
	int r;

	if (!a->deployer) {
		api_reply_error(out, 409, "this process does not deploy (it is `cutover proxy`, not `cutover daemon`)");
		return;
	}
	r = deployer_proof(a->deployer, call->param, &proof, err, sizeof(err));
	if (r < 0)
		api_reply_error(out, r == -ENOENT ? 404 : 409, "%s", err);
	else
		api_reply_json(out, 200, proof);
}

/* POST /v1/deployments/ID/approve {} and .../reject {"reason"?}: a person's
 * decision on a deployment awaiting approval (202 with it as JSON). */
static void api_decide(struct admin *a, const struct api_call *call, bool approve, struct admin_reply *out)
{
	char *end, err[1024];
	long long id = strtoll(call->param, &end, 10);
	json_t *root, *reason;
	int64_t r;

	if (*end || id <= 0) {
		api_reply_error(out, 404, "no such deployment: '%s' (ids are positive integers)", call->param);
		return;
	}
	if (!api_deploys_now(a, approve ? "approved deploy" : "decision", out) || !(root = api_body_object(call, out)))
		return;
	reason = json_object_get(root, "reason");
	if (reason && (approve || !json_is_string(reason))) {
		api_reply_error(out, 400, approve ? "body: expected {}" : "body: expected {\"reason\": TEXT (optional)}");
		json_decref(root);
		return;
	}
	r = approve ? deployer_approve(a->deployer, id, call->peer_uid, err, sizeof(err))
		    : deployer_reject(a->deployer, id, call->peer_uid, json_string_value(reason), err, sizeof(err));
	if (r < 0)
		api_reply_error(out, r == -ENOENT ? 404 : r == -EPERM ? 403 : 409, "%s", err);
	else
		api_reply_json(out, 202, deployer_deployment_json(a->deployer, id));
	json_decref(root);
}

static void api_approve(struct admin *a, const struct api_call *call, struct admin_reply *out)
{
	api_decide(a, call, true, out);
}

static void api_reject(struct admin *a, const struct api_call *call, struct admin_reply *out)
{
	api_decide(a, call, false, out);
}

/* POST /v1/shutdown {"stop_services": bool}: the daemon drains and exits
 * (the instances keep running unless stop_services). */
static void api_shutdown(struct admin *a, const struct api_call *call, struct admin_reply *out)
{
	json_error_t jerr;
	json_t *root = call->body_len ? json_loadb(call->body, call->body_len, 0, &jerr) : json_object();
	json_t *stop;
	char err[512];

	if (!root) {
		api_reply_error(out, 400, "body: invalid JSON at line %d column %d: %s", jerr.line, jerr.column, jerr.text);
		return;
	}
	stop = json_object_get(root, "stop_services");
	if (stop && !json_is_boolean(stop)) {
		api_reply_error(out, 400, "body: stop_services must be true or false");
		json_decref(root);
		return;
	}
	if (!a->hooks.shutdown) {
		api_reply_error(out, 409, "this process cannot be shut down through the API");
	} else if (a->hooks.shutdown(a->hooks.data, json_is_true(stop), call->peer_uid, err, sizeof(err)) < 0) {
		api_reply_error(out, 409, "%s", err);
	} else {
		api_reply_json(out, 202, json_pack("{s:s, s:b, s:i}", "shutdown", "draining", "stop_services",
					       json_is_true(stop), "pid", (int)getpid()));
	}
	json_decref(root);
}

/* POST /v1/upgrade {"binary": PATH?}: start the new binary, which takes
 * the sockets over; GET /v1/upgrade says how it went. */
static void api_upgrade(struct admin *a, const struct api_call *call, struct admin_reply *out)
{
	json_error_t jerr;
	json_t *root = call->body_len ? json_loadb(call->body, call->body_len, 0, &jerr) : json_object();
	json_t *binary;
	char err[512];

	if (!root) {
		api_reply_error(out, 400, "body: invalid JSON at line %d column %d: %s", jerr.line, jerr.column, jerr.text);
		return;
	}
	binary = json_object_get(root, "binary");
	if (binary && !json_is_string(binary)) {
		api_reply_error(out, 400, "body: binary must be a path (a string)");
	} else if (a->refusing) {
		api_reply_error(out, 503, "%s: no upgrade starts now", a->refusing);
	} else if (!a->hooks.upgrade) {
		api_reply_error(out, 409, "this process cannot be upgraded in place");
	} else if (a->hooks.upgrade(a->hooks.data, json_string_value(binary), call->peer_uid, err, sizeof(err)) < 0) {
		api_reply_error(out, 409, "%s", err);
	} else {
		api_reply_json(out, 202, a->hooks.upgrade_status(a->hooks.data));
	}
	json_decref(root);
}

static void api_upgrade_status(struct admin *a, const struct api_call *call, struct admin_reply *out)
{
	json_t *j = a->hooks.upgrade_status ? a->hooks.upgrade_status(a->hooks.data) : NULL;

	api_reply_json(out, 200, j ? j : json_pack("{s:s}", "state", "none"));
}

/* GET /v1/events: admin.c turns the connection into a stream. */
static void api_events(struct admin *a, const struct api_call *call, struct admin_reply *out)
{
	out->status = 200;
	out->stream = true;
}

/* The endpoints, documented in docs/api.md.  A pattern is a path; a
 * segment "{}" matches one non-empty segment, passed to the handler as
 * call->param. */
static const struct api_route {
	const char *method;
	const char *pattern;
	void (*handler)(struct admin *a, const struct api_call *call, struct admin_reply *out);
} routes[] = {
	{ "GET", "/v1/status", api_status },
	{ "GET", "/v1/events", api_events },
	{ "PUT", "/v1/services/{}/targets", api_set_targets },
	{ "POST", "/v1/deploy", api_deploy },
	{ "POST", "/v1/rollback", api_rollback },
	{ "POST", "/v1/restart", api_restart },
	{ "POST", "/v1/services/{}/pause", api_pause },
	{ "POST", "/v1/services/{}/resume", api_resume },
	{ "POST", "/v1/services/{}/promote", api_promote },
	{ "POST", "/v1/services/{}/abort", api_abort },
	{ "POST", "/v1/services/{}/maintenance", api_maintenance }, /* api-maintenance.c */
	{ "GET", "/v1/deployments/{}", api_deployment },
	{ "POST", "/v1/deployments/{}/approve", api_approve },
	{ "POST", "/v1/deployments/{}/reject", api_reject },
	{ "POST", "/v1/promote", api_promote_env },
	{ "GET", "/v1/services/{}/proof", api_proof },
	{ "POST", "/v1/shutdown", api_shutdown },
	{ "POST", "/v1/upgrade", api_upgrade },
	{ "POST", "/v1/releases", api_release_run },       /* api-releases.c */
	{ "GET", "/v1/releases", api_releases },
	{ "GET", "/v1/releases/{}", api_release },
	{ "POST", "/v1/releases/{}/abort", api_release_abort },
	{ "POST", "/v1/releases/{}/approve", api_release_approve },
	{ "POST", "/v1/releases/{}/reject", api_release_reject },
	{ "GET", "/v1/upgrade", api_upgrade_status },
};

/* Whether path[0..len) matches pattern; the "{}" segment goes to param
 * (NUL-terminated, at most size - 1 bytes, else no match). */
static bool route_match(const char *pattern, const char *path, size_t len, char *param, size_t size)
{
	const char *end = path + len;

	while (*pattern) {
		if (pattern[0] == '{' && pattern[1] == '}') {
			const char *seg = path;
			while (path < end && *path != '/')
				path++;
			if (path == seg || (size_t)(path - seg) >= size)
				return false;
			memcpy(param, seg, (size_t)(path - seg));
			param[path - seg] = 0;
			pattern += 2;
			continue;
		}
		if (path == end || *pattern != *path)
			return false;
		pattern++;
		path++;
	}
	return path == end;
}

void admin_api_handle(struct admin *a, const struct api_call *request, struct admin_reply *out)
{
	struct api_call call = *request;
	const char *allowed = NULL;
	char param[128];
	size_t len = call.path_len;

	out->status = 0;
	out->stream = false;
	out->body = NULL;
	if (memchr(call.path, '?', len))
		len = (size_t)((const char *)memchr(call.path, '?', len) - call.path); /* no query parameters yet */
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (!route_match(routes[i].pattern, call.path, len, param, sizeof(param)))
			continue;
		if (strcmp(call.method, routes[i].method)) {
			allowed = routes[i].method;
			continue;
		}
		call.param = param;
		routes[i].handler(a, &call, out);
		return;
	}
	if (allowed)
		api_reply_error(out, 405, "%s %.*s: use %s", call.method, (int)len, call.path, allowed);
	else
		api_reply_error(out, 404, "no such endpoint: %.*s (try GET /v1/status; docs/api.md lists them all)",
			    (int)len, call.path);
}
